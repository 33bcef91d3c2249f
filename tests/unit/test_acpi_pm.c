/* ACPI fixed hardware and the 0xcf9 reset register, driven through the port
 * bus; the VM functions it calls are recorders here. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "hw/acpi_pm.h"
#include "hw/platform.h"
#include "snapshot/stream.h"
#include "vm.h"
#include "x86/layout.h"

static int sci_level = 0;
static int sci_calls = 0;
static int exit_calls = 0;
static enum vm_exit_reason last_exit = VM_EXIT_NONE;

int vm_irq_line(struct vm *vm, unsigned gsi, int level)
{
    assert_int_equal(gsi, LAYOUT_IRQ_SCI);
    assert_int_not_equal(level, sci_level);
    sci_level = level;
    sci_calls++;
    return 0;
}

void vm_request_exit(struct vm *vm, enum vm_exit_reason reason, const char *fmt, ...)
{
    exit_calls++;
    last_exit = reason;
}

struct fixture {
    struct vm vm;
    void *dev;
};

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    iobus_init(&f.vm.pio);
    sci_level = sci_calls = exit_calls = 0;
    last_exit = VM_EXIT_NONE;
    struct err e = { 0 };
    assert_int_equal(acpi_pm_dev_ops.create(&f.vm, &f.dev, &e), 0);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    acpi_pm_dev_ops.destroy(f->dev);
    assert_int_equal(f->vm.pio.n, 0);
    /* Gone from the lookup as well. */
    assert_int_equal(acpi_pm_power_button(&f->vm), -ENODEV);
    iobus_destroy(&f->vm.pio);
    return 0;
}

static uint32_t in(struct fixture *f, uint16_t port, unsigned len)
{
    uint8_t d[4];
    assert_true(iobus_read(&f->vm.pio, port, d, len));
    return (uint32_t)io_data_get(d, len);
}

static void out(struct fixture *f, uint16_t port, unsigned len, uint32_t v)
{
    uint8_t d[4];
    io_data_put(d, len, v);
    assert_true(iobus_write(&f->vm.pio, port, d, len));
}

#define PM1_STS LAYOUT_PORT_PM1A_EVT
#define PM1_EN  (LAYOUT_PORT_PM1A_EVT + 2)
#define PM1_CNT LAYOUT_PORT_PM1A_CNT
#define GPE_STS LAYOUT_PORT_GPE0_BLK
#define GPE_EN  (LAYOUT_PORT_GPE0_BLK + 4)
#define SLP_EN  0x2000
#define SLP_TYP(t) ((unsigned)(t) << 10)

static void test_s5_powers_off(void **state)
{
    struct fixture *f = *state;
    /* ACPICA writes SLP_TYP first, then adds SLP_EN. */
    out(f, PM1_CNT, 2, SLP_TYP(LAYOUT_S5_SLP_TYP) | 1);
    assert_int_equal(exit_calls, 0);
    out(f, PM1_CNT, 2, SLP_TYP(LAYOUT_S5_SLP_TYP) | SLP_EN | 1);
    assert_int_equal(exit_calls, 1);
    assert_int_equal(last_exit, VM_EXIT_POWEROFF);
}

static void test_s5_by_byte_write(void **state)
{
    struct fixture *f = *state;
    out(f, PM1_CNT + 1, 1, (SLP_TYP(LAYOUT_S5_SLP_TYP) | SLP_EN) >> 8);
    assert_int_equal(exit_calls, 1);
    assert_int_equal(last_exit, VM_EXIT_POWEROFF);
}

static void test_other_sleep_types_ignored(void **state)
{
    struct fixture *f = *state;
    for (unsigned t = 0; t < 8; t++) {
        if (t == LAYOUT_S5_SLP_TYP)
            continue;
        out(f, PM1_CNT, 2, SLP_TYP(t) | SLP_EN);
        /* SLP_EN is write-only; SLP_TYP stays. */
        assert_int_equal(in(f, PM1_CNT, 2), SLP_TYP(t) | 1);
    }
    assert_int_equal(exit_calls, 0);
}

static void test_sci_en_always_set(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(in(f, PM1_CNT, 2) & 1, 1);
    out(f, PM1_CNT, 2, 0);
    assert_int_equal(in(f, PM1_CNT, 2) & 1, 1);
}

static void test_power_button_sci(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(acpi_pm_power_button(&f->vm), 0);
    assert_int_equal(in(f, PM1_STS, 2), 0x0100);
    assert_int_equal(sci_level, 0);           /* not enabled yet */
    out(f, PM1_EN, 2, 0x0100);
    assert_int_equal(sci_level, 1);
    assert_int_equal(in(f, PM1_EN, 2), 0x0100);
    out(f, PM1_STS, 2, 0x0000);               /* writing 0 clears nothing */
    assert_int_equal(sci_level, 1);
    out(f, PM1_STS, 2, 0x0100);               /* write 1 to clear */
    assert_int_equal(sci_level, 0);
    assert_int_equal(in(f, PM1_STS, 2) & 0x0100, 0);
    /* Enabled first, then pressed. */
    assert_int_equal(acpi_pm_power_button(&f->vm), 0);
    assert_int_equal(sci_level, 1);
    out(f, PM1_EN, 2, 0);
    assert_int_equal(sci_level, 0);
    assert_int_equal(sci_calls, 4);
}

static void test_pm1_evt_dword(void **state)
{
    struct fixture *f = *state;
    out(f, PM1_EN, 2, 0x0100);
    acpi_pm_power_button(&f->vm);
    uint32_t v = in(f, PM1_STS, 4);
    assert_int_equal(v & 0xffff0100, 0x01000100);
    /* One dword write clears the status and keeps the enable. */
    out(f, PM1_STS, 4, 0x01000100);
    assert_int_equal(in(f, PM1_STS, 2) & 0x0100, 0);
    assert_int_equal(in(f, PM1_EN, 2), 0x0100);
    assert_int_equal(sci_level, 0);
}

static void test_gpe_sci(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(acpi_pm_raise_gpe(&f->vm, 32), -EINVAL);
    assert_int_equal(acpi_pm_raise_gpe(&f->vm, 17), 0);
    assert_int_equal(in(f, GPE_STS, 4), 1u << 17);
    assert_int_equal(sci_level, 0);
    out(f, GPE_EN + 2, 1, 0x02);              /* byte enable of bit 17 */
    assert_int_equal(in(f, GPE_EN, 4), 1u << 17);
    assert_int_equal(sci_level, 1);
    out(f, GPE_STS, 4, 1u << 16);             /* another bit: no effect */
    assert_int_equal(sci_level, 1);
    out(f, GPE_STS + 2, 1, 0x02);
    assert_int_equal(sci_level, 0);
    assert_int_equal(in(f, GPE_STS, 4), 0);
}

static void test_sci_any_source(void **state)
{
    struct fixture *f = *state;
    out(f, GPE_EN, 4, 1);
    out(f, PM1_EN, 2, 0x0100);
    acpi_pm_raise_gpe(&f->vm, 0);
    acpi_pm_power_button(&f->vm);
    assert_int_equal(sci_level, 1);
    out(f, GPE_STS, 4, 1);
    assert_int_equal(sci_level, 1);           /* PM1 still pending */
    out(f, PM1_STS, 2, 0x0100);
    assert_int_equal(sci_level, 0);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_timer_rate(void **state)
{
    struct fixture *f = *state;
    double t0 = now_s();
    uint32_t a = in(f, LAYOUT_PORT_PM_TMR, 4);
    struct timespec nap = { 0, 50 * 1000 * 1000 };
    nanosleep(&nap, NULL);
    uint32_t b = in(f, LAYOUT_PORT_PM_TMR, 4);
    double t1 = now_s();
    /* The two reads lie inside [t0, t1] and at least 50 ms apart, which
     * bounds the rate from both sides. */
    double ticks = (double)(uint32_t)(b - a);
    double rate_low = ticks / (t1 - t0);
    double rate_high = ticks / 0.050;
    assert_true(rate_low <= ACPI_PM_TIMER_HZ * 1.001);
    assert_true(rate_high >= ACPI_PM_TIMER_HZ * 0.999);
}

static void test_timer_monotonic(void **state)
{
    struct fixture *f = *state;
    uint32_t prev = in(f, LAYOUT_PORT_PM_TMR, 4);
    for (int i = 0; i < 10000; i++) {
        uint32_t v = in(f, LAYOUT_PORT_PM_TMR, 4);
        /* Modulo 2^32: never goes back. */
        assert_true((uint32_t)(v - prev) < 0x80000000u);
        prev = v;
    }
    /* Writes do not change it. */
    out(f, LAYOUT_PORT_PM_TMR, 4, 0);
    assert_true((uint32_t)(in(f, LAYOUT_PORT_PM_TMR, 4) - prev) < 0x80000000u);
}

static void test_cf9(void **state)
{
    struct fixture *f = *state;
    out(f, LAYOUT_PORT_RESET_CF9, 1, 0x02);   /* SYS_RST alone only selects */
    out(f, LAYOUT_PORT_RESET_CF9, 1, 0x08);
    assert_int_equal(exit_calls, 0);
    const uint8_t resets[] = { 0x04, LAYOUT_ACPI_RESET_VALUE, 0x0e };
    for (unsigned i = 0; i < sizeof(resets); i++) {
        out(f, LAYOUT_PORT_RESET_CF9, 1, resets[i]);
        assert_int_equal(exit_calls, (int)i + 1);
        assert_int_equal(last_exit, VM_EXIT_RESET);
    }
}

static void test_reset_clears(void **state)
{
    struct fixture *f = *state;
    out(f, PM1_EN, 2, 0x0100);
    out(f, GPE_EN, 4, 0xff);
    out(f, PM1_CNT, 2, SLP_TYP(1));
    acpi_pm_power_button(&f->vm);
    acpi_pm_raise_gpe(&f->vm, 1);
    acpi_pm_dev_ops.reset(f->dev);
    sci_level = 0;   /* a reset comes with a new irqchip */
    assert_int_equal(in(f, PM1_STS, 2) & 0x0100, 0);
    assert_int_equal(in(f, PM1_EN, 2), 0);
    assert_int_equal(in(f, PM1_CNT, 2), 1);
    assert_int_equal(in(f, GPE_STS, 4), 0);
    assert_int_equal(in(f, GPE_EN, 4), 0);
}

/* Enables, status and SLP_TYP survive a save and a load into a device
 * just powered on; the SCI is driven again from them, and a power button
 * press after the load still reaches the guest. */
static void test_save_load(void **state)
{
    struct fixture *f = *state;
    out(f, PM1_EN, 2, 0x0100);
    out(f, GPE_EN, 4, 0x0a);
    out(f, PM1_CNT, 2, SLP_TYP(1));
    acpi_pm_raise_gpe(&f->vm, 1);
    assert_int_equal(sci_level, 1);
    struct snapbuf b;
    snapbuf_init(&b);
    acpi_pm_dev_ops.save(f->dev, &b);
    assert_false(b.nomem);

    acpi_pm_dev_ops.reset(f->dev);
    sci_level = 0;   /* a new irqchip; the load must raise the line */
    int calls = sci_calls;
    struct snapbuf r;
    snapbuf_view(&r, b.data, b.len);
    struct err e = { 0 };
    assert_int_equal(acpi_pm_dev_ops.load(f->dev, &r, &e), 0);
    assert_int_equal(snapbuf_left(&r), 0);
    assert_int_equal(sci_calls, calls + 1);   /* driven once, to the saved level */
    assert_int_equal(sci_level, 1);
    assert_int_equal(in(f, PM1_EN, 2), 0x0100);
    assert_int_equal(in(f, GPE_EN, 4), 0x0a);
    assert_int_equal(in(f, GPE_STS, 4), 0x02);
    assert_int_equal(in(f, PM1_CNT, 2), SLP_TYP(1) | 1);
    out(f, GPE_STS, 4, 0x02);
    assert_int_equal(sci_level, 0);
    assert_int_equal(acpi_pm_power_button(&f->vm), 0);
    assert_int_equal(sci_level, 1);
    snapbuf_free(&b);
}

/* A load with nothing pending lowers a line the irqchip left high. */
static void test_load_lowers_line(void **state)
{
    struct fixture *f = *state;
    struct snapbuf b;
    snapbuf_init(&b);
    acpi_pm_dev_ops.save(f->dev, &b);
    sci_level = 1;
    struct snapbuf r;
    snapbuf_view(&r, b.data, b.len);
    struct err e = { 0 };
    assert_int_equal(acpi_pm_dev_ops.load(f->dev, &r, &e), 0);
    assert_int_equal(sci_level, 0);
    snapbuf_free(&b);
}

static void test_load_refuses_bad_state(void **state)
{
    struct fixture *f = *state;
    struct snapbuf b;
    snapbuf_init(&b);
    acpi_pm_dev_ops.save(f->dev, &b);
    struct err e = { 0 };
    struct snapbuf r;
    for (size_t cut = 0; cut < b.len; cut++) {
        snapbuf_view(&r, b.data, cut);
        assert_int_equal(acpi_pm_dev_ops.load(f->dev, &r, &e), -EINVAL);
    }
    b.data[2] = 0x02;   /* PM1_EN bit 1 is reserved */
    snapbuf_view(&r, b.data, b.len);
    assert_int_equal(acpi_pm_dev_ops.load(f->dev, &r, &e), -EINVAL);
    assert_int_equal(in(f, PM1_EN, 2), 0);
    snapbuf_free(&b);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_s5_powers_off),
        T(test_s5_by_byte_write),
        T(test_other_sleep_types_ignored),
        T(test_sci_en_always_set),
        T(test_power_button_sci),
        T(test_pm1_evt_dword),
        T(test_gpe_sci),
        T(test_sci_any_source),
        T(test_timer_rate),
        T(test_timer_monotonic),
        T(test_cf9),
        T(test_reset_clears),
        T(test_save_load),
        T(test_load_lowers_line),
        T(test_load_refuses_bad_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
