/* ACPI fixed hardware: PM1a event and control blocks, the PM timer and GPE0,
 * all in one port block, plus the reset control register at 0xcf9.
 *
 * There is no SMI_CMD port, so the machine is always in ACPI mode and
 * SCI_EN reads as 1. The block is modelled byte by byte so that any access
 * width the guest picks behaves the same. */
#include "hw/acpi_pm.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "hw/platform.h"
#include "snapshot/stream.h"
#include "util/log.h"
#include "vm.h"
#include "x86/layout.h"

/* Offsets in the block at LAYOUT_PORT_ACPI_PM_BASE. */
#define OFF_PM1_STS (LAYOUT_PORT_PM1A_EVT - LAYOUT_PORT_ACPI_PM_BASE)
#define OFF_PM1_EN  (OFF_PM1_STS + 2)
#define OFF_PM1_CNT (LAYOUT_PORT_PM1A_CNT - LAYOUT_PORT_ACPI_PM_BASE)
#define OFF_PM_TMR  (LAYOUT_PORT_PM_TMR - LAYOUT_PORT_ACPI_PM_BASE)
#define OFF_GPE_STS (LAYOUT_PORT_GPE0_BLK - LAYOUT_PORT_ACPI_PM_BASE)
#define OFF_GPE_EN  (OFF_GPE_STS + 4)

_Static_assert(OFF_GPE_EN + 4 <= LAYOUT_PORT_ACPI_PM_LEN, "GPE0 outside the PM block");

#define PM1_TMR_STS    0x0001
#define PM1_PWRBTN_STS 0x0100
#define PM1_EN_MASK    0x4721   /* TMR GBL PWRBTN SLPBTN RTC PCIEXP_WAKE_DIS */
#define PM1_EN_SCI     0x0721   /* the enables that route to the SCI */

#define CNT_SCI_EN   0x0001
#define CNT_SLP_TYP  0x1c00
#define CNT_SLP_SHIFT 10
#define CNT_SLP_EN   0x2000
#define CNT_KEEP     0x1c02     /* BM_RLD and SLP_TYP; the rest are one-shot */

#define CF9_RST_CPU  0x04

struct acpi_pm {
    pthread_mutex_t lock;
    struct vm *vm;
    uint16_t pm1_sts, pm1_en, pm1_cnt;
    uint32_t gpe_sts, gpe_en;
    uint32_t tmr_last_msb;   /* timer wraps seen, for TMR_STS */
    bool sci_level;
    bool cf9_registered;
    struct acpi_pm *next;    /* in the list acpi_pm_power_button searches */
};

static pthread_mutex_t instances_lock = PTHREAD_MUTEX_INITIALIZER;
static struct acpi_pm *instances;
static atomic_bool warned_sleep;

static uint32_t pm_timer_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ticks = (uint64_t)ts.tv_sec * ACPI_PM_TIMER_HZ +
                     (uint64_t)ts.tv_nsec * ACPI_PM_TIMER_HZ / 1000000000u;
    return (uint32_t)ticks;
}

/* TMR_STS latches each time the timer's top bit flips; this model notices
 * it when the status is read rather than by a timer, so TMR_EN raises no
 * SCI on its own. */
static void pm_timer_catch_up(struct acpi_pm *p)
{
    uint32_t msb = pm_timer_now() >> (ACPI_PM_TMR_BITS - 1);
    if (msb != p->tmr_last_msb)
        p->pm1_sts |= PM1_TMR_STS;
    p->tmr_last_msb = msb;
}

static void pm_update_sci(struct acpi_pm *p)
{
    bool level = (p->pm1_sts & p->pm1_en & PM1_EN_SCI) || (p->gpe_sts & p->gpe_en);
    if (level == p->sci_level)
        return;
    p->sci_level = level;
    vm_irq_line(p->vm, LAYOUT_IRQ_SCI, level);
}

static uint8_t byte_of(uint64_t v, unsigned i) { return (uint8_t)(v >> (8 * i)); }

static uint8_t pm_read_byte(struct acpi_pm *p, unsigned off, uint32_t tmr)
{
    if (off - OFF_PM1_STS < 2)
        return byte_of(p->pm1_sts, off - OFF_PM1_STS);
    if (off - OFF_PM1_EN < 2)
        return byte_of(p->pm1_en, off - OFF_PM1_EN);
    if (off - OFF_PM1_CNT < 2)
        return byte_of((p->pm1_cnt & ~CNT_SLP_EN) | CNT_SCI_EN, off - OFF_PM1_CNT);
    if (off - OFF_PM_TMR < 4)
        return byte_of(tmr, off - OFF_PM_TMR);
    if (off - OFF_GPE_STS < 4)
        return byte_of(p->gpe_sts, off - OFF_GPE_STS);
    if (off - OFF_GPE_EN < 4)
        return byte_of(p->gpe_en, off - OFF_GPE_EN);
    return 0;
}

static uint32_t set_byte(uint32_t reg, unsigned i, uint8_t v)
{
    return (reg & ~(0xffu << (8 * i))) | (uint32_t)v << (8 * i);
}

/* Returns true when PM1_CNT was written. */
static bool pm_write_byte(struct acpi_pm *p, unsigned off, uint8_t v)
{
    if (off - OFF_PM1_STS < 2) {
        p->pm1_sts &= ~((uint16_t)v << (8 * (off - OFF_PM1_STS)));  /* write 1 to clear */
    } else if (off - OFF_PM1_EN < 2) {
        p->pm1_en = (uint16_t)set_byte(p->pm1_en, off - OFF_PM1_EN, v) & PM1_EN_MASK;
    } else if (off - OFF_PM1_CNT < 2) {
        p->pm1_cnt = (uint16_t)set_byte(p->pm1_cnt, off - OFF_PM1_CNT, v);
        return true;
    } else if (off - OFF_GPE_STS < 4) {
        p->gpe_sts &= ~((uint32_t)v << (8 * (off - OFF_GPE_STS)));
    } else if (off - OFF_GPE_EN < 4) {
        p->gpe_en = set_byte(p->gpe_en, off - OFF_GPE_EN, v);
    }
    /* The timer and the gaps are read-only. */
    return false;
}

/* Acts on SLP_EN; returns true when the guest entered S5. */
static bool pm_sleep_request(struct acpi_pm *p)
{
    uint16_t cnt = p->pm1_cnt;
    /* SLP_EN is write-only; GBL_RLS is a request with no firmware to hear
     * it. */
    p->pm1_cnt &= CNT_KEEP;
    if (!(cnt & CNT_SLP_EN))
        return false;
    unsigned typ = (cnt & CNT_SLP_TYP) >> CNT_SLP_SHIFT;
    if (typ == LAYOUT_S5_SLP_TYP)
        return true;
    if (!atomic_exchange(&warned_sleep, true))
        log_warn("acpi: guest asked for sleep state SLP_TYP=%u, which is not supported; ignored",
                 typ);
    return false;
}

static void pm_io_read(void *opaque, uint64_t offset, uint8_t *data, unsigned len)
{
    struct acpi_pm *p = opaque;
    uint32_t tmr = pm_timer_now();   /* one sample for a multi-byte read */
    pthread_mutex_lock(&p->lock);
    pm_timer_catch_up(p);
    for (unsigned i = 0; i < len; i++)
        data[i] = pm_read_byte(p, (unsigned)offset + i, tmr);
    pm_update_sci(p);
    pthread_mutex_unlock(&p->lock);
}

static void pm_io_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned len)
{
    struct acpi_pm *p = opaque;
    bool cnt_written = false, poweroff = false;
    pthread_mutex_lock(&p->lock);
    for (unsigned i = 0; i < len; i++)
        cnt_written |= pm_write_byte(p, (unsigned)offset + i, data[i]);
    if (cnt_written)
        poweroff = pm_sleep_request(p);
    pm_update_sci(p);
    pthread_mutex_unlock(&p->lock);
    if (poweroff)
        vm_request_exit(p->vm, VM_EXIT_POWEROFF, "guest powered off (ACPI S5)");
}

static const struct io_ops pm_io_ops = { .read = pm_io_read, .write = pm_io_write };

void acpi_pm_reset_control(struct vm *vm, uint8_t value)
{
    /* RST_CPU starts the reset; SYS_RST and FULL_RST only choose its kind,
     * and every kind restarts this machine the same way. */
    if (value & CF9_RST_CPU)
        vm_request_exit(vm, VM_EXIT_RESET, "guest reset through port 0xcf9");
}

static void cf9_read(void *opaque, uint64_t offset, uint8_t *data, unsigned len)
{
    for (unsigned i = 0; i < len; i++)
        data[i] = 0;
}

static void cf9_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned len)
{
    struct acpi_pm *p = opaque;
    acpi_pm_reset_control(p->vm, data[0]);
}

static const struct io_ops cf9_io_ops = { .read = cf9_read, .write = cf9_write };

static struct acpi_pm *pm_find(struct vm *vm)
{
    struct acpi_pm *p;
    for (p = instances; p; p = p->next)
        if (p->vm == vm)
            break;
    return p;
}

/* Sets status bits and re-evaluates the SCI; the instance stays alive
 * while instances_lock is held. */
static int pm_raise(struct vm *vm, uint16_t pm1, uint32_t gpe)
{
    pthread_mutex_lock(&instances_lock);
    struct acpi_pm *p = pm_find(vm);
    if (p) {
        pthread_mutex_lock(&p->lock);
        p->pm1_sts |= pm1;
        p->gpe_sts |= gpe;
        pm_update_sci(p);
        pthread_mutex_unlock(&p->lock);
    }
    pthread_mutex_unlock(&instances_lock);
    return p ? 0 : -ENODEV;
}

int acpi_pm_power_button(struct vm *vm)
{
    return pm_raise(vm, PM1_PWRBTN_STS, 0);
}

int acpi_pm_raise_gpe(struct vm *vm, unsigned bit)
{
    if (bit >= 32)
        return -EINVAL;
    return pm_raise(vm, 0, 1u << bit);
}

static void pm_power_on(struct acpi_pm *p)
{
    p->pm1_sts = 0;
    p->pm1_en = 0;
    p->pm1_cnt = 0;
    p->gpe_sts = 0;
    p->gpe_en = 0;
    p->tmr_last_msb = pm_timer_now() >> (ACPI_PM_TMR_BITS - 1);
    p->sci_level = false;   /* the irqchip is new after a reset */
}

static void pm_reset(void *state)
{
    struct acpi_pm *p = state;
    pthread_mutex_lock(&p->lock);
    pm_power_on(p);
    pthread_mutex_unlock(&p->lock);
}

static int pm_create(struct vm *vm, void **state, struct err *e)
{
    struct acpi_pm *p = calloc(1, sizeof(*p));
    if (!p)
        return err_set(e, ENOMEM, "out of memory");
    pthread_mutex_init(&p->lock, NULL);
    p->vm = vm;
    pm_power_on(p);
    int r = iobus_register(&vm->pio, LAYOUT_PORT_ACPI_PM_BASE, LAYOUT_PORT_ACPI_PM_LEN,
                           &pm_io_ops, p, "acpi_pm");
    if (r < 0) {
        pthread_mutex_destroy(&p->lock);
        free(p);
        return err_set(e, -r, "cannot register ports 0x%x-0x%x", LAYOUT_PORT_ACPI_PM_BASE,
                       LAYOUT_PORT_ACPI_PM_BASE + LAYOUT_PORT_ACPI_PM_LEN - 1);
    }
    /* A PCI host bridge claiming all of 0xcf8-0xcff forwards 0xcf9 itself. */
    r = iobus_register(&vm->pio, LAYOUT_PORT_RESET_CF9, 1, &cf9_io_ops, p, "reset_cf9");
    p->cf9_registered = r == 0;
    if (r < 0)
        log_debug("acpi: port 0x%x already claimed; expecting it to be forwarded",
                  LAYOUT_PORT_RESET_CF9);
    pthread_mutex_lock(&instances_lock);
    p->next = instances;
    instances = p;
    pthread_mutex_unlock(&instances_lock);
    *state = p;
    return 0;
}

static void pm_destroy(void *state)
{
    struct acpi_pm *p = state;
    if (!p)
        return;
    pthread_mutex_lock(&instances_lock);
    for (struct acpi_pm **pp = &instances; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    pthread_mutex_unlock(&instances_lock);
    if (p->cf9_registered)
        iobus_unregister(&p->vm->pio, LAYOUT_PORT_RESET_CF9);
    iobus_unregister(&p->vm->pio, LAYOUT_PORT_ACPI_PM_BASE);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* The PM timer is not saved: it follows the host clock, as it does across
 * a reset. The SCI level is derived again rather than trusted. */
static void pm_save(void *state, struct snapbuf *b)
{
    struct acpi_pm *p = state;
    pthread_mutex_lock(&p->lock);
    snapbuf_put_u16(b, p->pm1_sts);
    snapbuf_put_u16(b, p->pm1_en);
    snapbuf_put_u16(b, p->pm1_cnt);
    snapbuf_put_u32(b, p->gpe_sts);
    snapbuf_put_u32(b, p->gpe_en);
    pthread_mutex_unlock(&p->lock);
}

static int pm_load(void *state, struct snapbuf *b, struct err *e)
{
    struct acpi_pm *p = state;
    uint16_t sts = snapbuf_get_u16(b), en = snapbuf_get_u16(b), cnt = snapbuf_get_u16(b);
    uint32_t gsts = snapbuf_get_u32(b), gen = snapbuf_get_u32(b);
    if (b->short_read)
        return err_set(e, EINVAL, "state truncated");
    if (en & ~PM1_EN_MASK)
        return err_set(e, EINVAL, "PM1 enable 0x%x has reserved bits", en);
    pthread_mutex_lock(&p->lock);
    p->pm1_sts = sts;
    p->pm1_en = en;
    p->pm1_cnt = cnt & CNT_KEEP;   /* a saved SLP_EN must not act again */
    p->gpe_sts = gsts;
    p->gpe_en = gen;
    p->tmr_last_msb = pm_timer_now() >> (ACPI_PM_TMR_BITS - 1);
    /* Drive the line once from the registers whatever the restored
     * irqchip holds, so that both agree from here on. */
    p->sci_level = !((sts & en & PM1_EN_SCI) || (gsts & gen));
    pm_update_sci(p);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

const struct platform_dev_ops acpi_pm_dev_ops = {
    .name = "acpi_pm",
    .create = pm_create,
    .reset = pm_reset,
    .destroy = pm_destroy,
    .save = pm_save,
    .load = pm_load,
};
