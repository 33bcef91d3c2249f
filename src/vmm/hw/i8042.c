/* The 8042 keyboard controller, reduced to what a guest without keyboard or
 * mouse still needs: the reset line (command 0xfe, output port bit 0), the
 * A20 gate, the command byte and the self-tests drivers run at probe time.
 * Commands this model does not know get no answer, which drivers read as
 * "no such device"; in particular there is no AUX loopback, so Linux decides
 * there is no mouse port. */
#include "hw/platform.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "util/log.h"
#include "snapshot/stream.h"
#include "vm.h"
#include "x86/layout.h"

#define STS_OBF     0x01  /* output buffer full */
#define STS_SYS     0x04  /* system flag, mirrors the command byte */
#define STS_CMD     0x08  /* last write went to the command port */
#define STS_UNLOCK  0x10  /* keyboard not inhibited */
#define STS_AUX_OBF 0x20  /* output buffer holds AUX data */

#define CTR_KBD_INT  0x01
#define CTR_SYS      0x04
#define CTR_KBD_DIS  0x10
#define CTR_AUX_DIS  0x20
#define CTR_XLATE    0x40

#define OUTP_RESET 0x01   /* active low: 0 holds the CPU in reset */
#define OUTP_A20   0x02

/* After firmware: translation on, keyboard interrupt on, POST passed. */
#define CTR_POWER_ON  (CTR_KBD_INT | CTR_SYS | CTR_XLATE)
#define OUTP_POWER_ON (OUTP_RESET | OUTP_A20)

enum { PENDING_NONE, PENDING_CTR, PENDING_OUTP };

struct i8042 {
    pthread_mutex_t lock;
    struct vm *vm;
    uint8_t ctr;        /* command byte */
    uint8_t outp;       /* output port */
    uint8_t status;     /* STS_CMD and STS_OBF */
    uint8_t data;       /* output buffer (kept after reading, like hardware) */
    int pending;        /* which command waits for its data byte */
    bool irq_level;
};

static void i8042_update_irq(struct i8042 *k)
{
    bool level = (k->status & STS_OBF) && (k->ctr & CTR_KBD_INT);
    if (level == k->irq_level)
        return;
    k->irq_level = level;
    vm_irq_line(k->vm, LAYOUT_IRQ_KBD, level);
}

static void i8042_respond(struct i8042 *k, uint8_t v)
{
    k->data = v;
    k->status |= STS_OBF;
}

/* Returns true when the guest asked for a reset. */
static bool i8042_command(struct i8042 *k, uint8_t cmd)
{
    k->pending = PENDING_NONE;
    switch (cmd) {
    case 0x20: i8042_respond(k, k->ctr); break;
    case 0x60: k->pending = PENDING_CTR; break;
    case 0xa7: k->ctr |= CTR_AUX_DIS; break;
    case 0xa8: k->ctr &= ~CTR_AUX_DIS; break;
    case 0xaa: i8042_respond(k, 0x55); k->ctr |= CTR_SYS; break;
    case 0xab: i8042_respond(k, 0x00); break;
    case 0xad: k->ctr |= CTR_KBD_DIS; break;
    case 0xae: k->ctr &= ~CTR_KBD_DIS; break;
    case 0xd0: i8042_respond(k, k->outp); break;
    case 0xd1: k->pending = PENDING_OUTP; break;
    default:
        /* 0xf0-0xff pulse the output port lines whose bits are 0; bit 0 is
         * the CPU reset line. */
        if ((cmd & 0xf0) == 0xf0)
            return !(cmd & OUTP_RESET);
        log_debug("i8042: command 0x%02x ignored", cmd);
        break;
    }
    return false;
}

/* Returns true when the guest asked for a reset. */
static bool i8042_data(struct i8042 *k, uint8_t v)
{
    int pending = k->pending;
    k->pending = PENDING_NONE;
    switch (pending) {
    case PENDING_CTR:
        k->ctr = v;
        return false;
    case PENDING_OUTP:
        /* The guest cannot disable A20 on this machine; it stays on. */
        k->outp = v | OUTP_A20;
        return !(v & OUTP_RESET);
    default:
        /* A byte for the keyboard, and there is no keyboard. */
        return false;
    }
}

/* is_data: port 0x60 rather than 0x64 (two one-byte ranges). */
static void i8042_read(struct i8042 *k, bool is_data, uint8_t *data, unsigned len)
{
    uint8_t v;
    pthread_mutex_lock(&k->lock);
    if (is_data) {
        v = k->data;
        k->status &= ~STS_OBF;
    } else {
        v = k->status | STS_UNLOCK | ((k->ctr & CTR_SYS) ? STS_SYS : 0);
    }
    i8042_update_irq(k);
    pthread_mutex_unlock(&k->lock);
    for (unsigned i = 0; i < len; i++)
        data[i] = i == 0 ? v : 0xff;
}

static void i8042_write(struct i8042 *k, bool is_data, uint8_t v)
{
    bool reset;
    pthread_mutex_lock(&k->lock);
    if (is_data) {
        k->status &= ~STS_CMD;
        reset = i8042_data(k, v);
    } else {
        k->status |= STS_CMD;
        reset = i8042_command(k, v);
    }
    i8042_update_irq(k);
    pthread_mutex_unlock(&k->lock);
    if (reset)
        vm_request_exit(k->vm, VM_EXIT_RESET, "guest reset through the keyboard controller");
}

static void i8042_data_read(void *opaque, uint64_t offset, uint8_t *data, unsigned len)
{
    i8042_read(opaque, true, data, len);
}

static void i8042_data_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned len)
{
    i8042_write(opaque, true, data[0]);
}

static void i8042_cmd_read(void *opaque, uint64_t offset, uint8_t *data, unsigned len)
{
    i8042_read(opaque, false, data, len);
}

static void i8042_cmd_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned len)
{
    i8042_write(opaque, false, data[0]);
}

static const struct io_ops i8042_data_ops = { .read = i8042_data_read, .write = i8042_data_write };
static const struct io_ops i8042_cmd_ops = { .read = i8042_cmd_read, .write = i8042_cmd_write };

static void i8042_power_on(struct i8042 *k)
{
    k->ctr = CTR_POWER_ON;
    k->outp = OUTP_POWER_ON;
    k->status = 0;
    k->data = 0;
    k->pending = PENDING_NONE;
    k->irq_level = false;   /* the irqchip is new after a reset */
}

static void i8042_reset(void *state)
{
    struct i8042 *k = state;
    pthread_mutex_lock(&k->lock);
    i8042_power_on(k);
    pthread_mutex_unlock(&k->lock);
}

static int i8042_create(struct vm *vm, void **state, struct err *e)
{
    struct i8042 *k = calloc(1, sizeof(*k));
    if (!k)
        return err_set(e, ENOMEM, "out of memory");
    pthread_mutex_init(&k->lock, NULL);
    k->vm = vm;
    i8042_power_on(k);
    int r = iobus_register(&vm->pio, LAYOUT_PORT_I8042_DATA, 1, &i8042_data_ops, k, "i8042");
    if (r == 0) {
        r = iobus_register(&vm->pio, LAYOUT_PORT_I8042_CMD, 1, &i8042_cmd_ops, k, "i8042");
        if (r < 0)
            iobus_unregister(&vm->pio, LAYOUT_PORT_I8042_DATA);
    }
    if (r < 0) {
        pthread_mutex_destroy(&k->lock);
        free(k);
        return err_set(e, -r, "cannot register ports 0x%x/0x%x",
                       LAYOUT_PORT_I8042_DATA, LAYOUT_PORT_I8042_CMD);
    }
    *state = k;
    return 0;
}

static void i8042_destroy(void *state)
{
    struct i8042 *k = state;
    if (!k)
        return;
    iobus_unregister(&k->vm->pio, LAYOUT_PORT_I8042_CMD);
    iobus_unregister(&k->vm->pio, LAYOUT_PORT_I8042_DATA);
    pthread_mutex_destroy(&k->lock);
    free(k);
}

static void i8042_save(void *state, struct snapbuf *b)
{
    struct i8042 *k = state;
    pthread_mutex_lock(&k->lock);
    uint8_t regs[] = { k->ctr, k->outp, k->status, k->data, (uint8_t)k->pending };
    snapbuf_put(b, regs, sizeof(regs));
    pthread_mutex_unlock(&k->lock);
}

static int i8042_load(void *state, struct snapbuf *b, struct err *e)
{
    struct i8042 *k = state;
    uint8_t regs[5];
    snapbuf_get(b, regs, sizeof(regs));
    if (b->short_read)
        return err_set(e, EINVAL, "state truncated");
    if (regs[4] != PENDING_NONE && regs[4] != PENDING_CTR && regs[4] != PENDING_OUTP)
        return err_set(e, EINVAL, "unknown pending command %u", regs[4]);
    pthread_mutex_lock(&k->lock);
    k->ctr = regs[0];
    k->outp = regs[1];
    k->status = regs[2] & (STS_CMD | STS_OBF);
    k->data = regs[3];
    k->pending = regs[4];
    k->irq_level = false;
    i8042_update_irq(k);
    pthread_mutex_unlock(&k->lock);
    return 0;
}

const struct platform_dev_ops i8042_dev_ops = {
    .name = "i8042",
    .create = i8042_create,
    .reset = i8042_reset,
    .destroy = i8042_destroy,
    .save = i8042_save,
    .load = i8042_load,
};
