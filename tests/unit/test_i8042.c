/* The keyboard controller model (and the claimed delay ports), driven through
 * the port bus; the VM functions it calls are recorders here. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "hw/platform.h"
#include "vm.h"
#include "x86/layout.h"

static int irq_level = 0;
static int irq_calls = 0;
static int exit_calls = 0;
static enum vm_exit_reason last_exit = VM_EXIT_NONE;

int vm_irq_line(struct vm *vm, unsigned gsi, int level)
{
    assert_int_equal(gsi, LAYOUT_IRQ_KBD);
    assert_int_not_equal(level, irq_level);
    irq_level = level;
    irq_calls++;
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
    void *misc;
};

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    iobus_init(&f.vm.pio);
    irq_level = irq_calls = exit_calls = 0;
    last_exit = VM_EXIT_NONE;
    struct err e = { 0 };
    assert_int_equal(i8042_dev_ops.create(&f.vm, &f.dev, &e), 0);
    assert_int_equal(port_misc_dev_ops.create(&f.vm, &f.misc, &e), 0);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    port_misc_dev_ops.destroy(f->misc);
    i8042_dev_ops.destroy(f->dev);
    assert_int_equal(f->vm.pio.n, 0);
    iobus_destroy(&f->vm.pio);
    return 0;
}

static uint8_t in8(struct fixture *f, uint16_t port)
{
    uint8_t v;
    assert_true(iobus_read(&f->vm.pio, port, &v, 1));
    return v;
}

static void out8(struct fixture *f, uint16_t port, uint8_t v)
{
    assert_true(iobus_write(&f->vm.pio, port, &v, 1));
}

#define DATA LAYOUT_PORT_I8042_DATA
#define CMD  LAYOUT_PORT_I8042_CMD

/* Sends a command and returns its one-byte answer, checking OBF. */
static uint8_t query(struct fixture *f, uint8_t cmd)
{
    out8(f, CMD, cmd);
    assert_int_equal(in8(f, CMD) & 0x03, 0x01);   /* OBF, never IBF */
    uint8_t v = in8(f, DATA);
    assert_int_equal(in8(f, CMD) & 0x01, 0);
    return v;
}

static void test_status_power_on(void **state)
{
    struct fixture *f = *state;
    uint8_t st = in8(f, CMD);
    assert_int_equal(st & 0x01, 0);      /* nothing to read */
    assert_int_equal(st & 0x02, 0);      /* always ready for input */
    assert_int_equal(st & 0x04, 0x04);   /* POST passed */
}

static void test_self_tests(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(query(f, 0xaa), 0x55);
    assert_int_equal(query(f, 0xab), 0x00);
    assert_int_equal(exit_calls, 0);
}

static void test_command_byte(void **state)
{
    struct fixture *f = *state;
    uint8_t ctr = query(f, 0x20);
    assert_int_equal(ctr & 0x04, 0x04);
    out8(f, CMD, 0x60);
    assert_int_equal(in8(f, CMD) & 0x08, 0x08);   /* last write was a command */
    out8(f, DATA, 0x34);
    assert_int_equal(in8(f, CMD) & 0x08, 0x00);
    assert_int_equal(query(f, 0x20), 0x34);
    assert_int_equal(in8(f, CMD) & 0x04, 0x04);
    out8(f, CMD, 0x60);
    out8(f, DATA, 0x30);
    assert_int_equal(in8(f, CMD) & 0x04, 0x00);   /* SYS follows the byte */
}

static void test_port_enable_bits(void **state)
{
    struct fixture *f = *state;
    out8(f, CMD, 0x60);
    out8(f, DATA, 0x00);
    out8(f, CMD, 0xad);
    assert_int_equal(query(f, 0x20), 0x10);
    out8(f, CMD, 0xa7);
    assert_int_equal(query(f, 0x20), 0x30);
    out8(f, CMD, 0xae);
    assert_int_equal(query(f, 0x20), 0x20);
    out8(f, CMD, 0xa8);
    assert_int_equal(query(f, 0x20), 0x00);
}

static void test_reset_command(void **state)
{
    struct fixture *f = *state;
    out8(f, CMD, 0xff);   /* pulses no line */
    assert_int_equal(exit_calls, 0);
    out8(f, CMD, 0xfe);
    assert_int_equal(exit_calls, 1);
    assert_int_equal(last_exit, VM_EXIT_RESET);
}

static void test_output_port(void **state)
{
    struct fixture *f = *state;
    uint8_t outp = query(f, 0xd0);
    assert_int_equal(outp & 0x03, 0x03);
    out8(f, CMD, 0xd1);
    out8(f, DATA, 0x03);
    assert_int_equal(exit_calls, 0);
    assert_int_equal(query(f, 0xd0) & 0x03, 0x03);
    /* A20 cannot be turned off; the reset bit at 0 resets. */
    out8(f, CMD, 0xd1);
    out8(f, DATA, 0x01);
    assert_int_equal(exit_calls, 0);
    assert_int_equal(query(f, 0xd0) & 0x03, 0x03);
    out8(f, CMD, 0xd1);
    out8(f, DATA, 0x02);
    assert_int_equal(exit_calls, 1);
    assert_int_equal(last_exit, VM_EXIT_RESET);
}

static void test_no_devices(void **state)
{
    struct fixture *f = *state;
    /* AUX loopback and AUX test get no answer: no mouse port. */
    out8(f, CMD, 0xd3);
    out8(f, DATA, 0x5a);
    assert_int_equal(in8(f, CMD) & 0x21, 0);
    out8(f, CMD, 0xa9);
    assert_int_equal(in8(f, CMD) & 0x01, 0);
    /* A keyboard reset goes nowhere. */
    out8(f, DATA, 0xff);
    assert_int_equal(in8(f, CMD) & 0x01, 0);
    assert_int_equal(exit_calls, 0);
}

static void test_irq_follows_output_buffer(void **state)
{
    struct fixture *f = *state;
    out8(f, CMD, 0xaa);
    assert_int_equal(irq_level, 1);
    assert_int_equal(in8(f, DATA), 0x55);
    assert_int_equal(irq_level, 0);
    out8(f, CMD, 0x60);
    out8(f, DATA, 0x00);     /* keyboard interrupt off */
    out8(f, CMD, 0xaa);
    assert_int_equal(in8(f, DATA), 0x55);
    assert_int_equal(irq_calls, 2);
}

static void test_reset_restores(void **state)
{
    struct fixture *f = *state;
    uint8_t ctr = query(f, 0x20);
    out8(f, CMD, 0x60);
    out8(f, DATA, 0x00);
    out8(f, CMD, 0xd1);     /* left waiting for its byte */
    i8042_dev_ops.reset(f->dev);
    out8(f, DATA, 0x00);    /* must not be taken as output port data */
    assert_int_equal(exit_calls, 0);
    irq_level = 0;
    assert_int_equal(query(f, 0x20), ctr);
}

static void test_delay_ports(void **state)
{
    struct fixture *f = *state;
    out8(f, 0x80, 0x12);
    out8(f, 0xed, 0x34);
    assert_int_equal(in8(f, 0x80), 0);
    assert_int_equal(in8(f, 0xed), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_status_power_on),
        T(test_self_tests),
        T(test_command_byte),
        T(test_port_enable_bits),
        T(test_reset_command),
        T(test_output_port),
        T(test_no_devices),
        T(test_irq_follows_output_buffer),
        T(test_reset_restores),
        T(test_delay_ports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
