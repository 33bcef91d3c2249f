/* The 16550A model, driven through the port bus and the console sink as the
 * guest and the console would. The VM and console functions it calls are
 * replaced here by recorders. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "console.h"
#include "hw/platform.h"
#include "vm.h"
#include "x86/layout.h"

/* ---- recorders standing in for the VM and the console ---- */

static int irq_level = 0;
static int irq_calls = 0;
static int irq_rises = 0;
static uint8_t out_buf[256];
static size_t out_len = 0;
static int rx_ready_calls = 0;
static struct console_sink sink;
static bool have_sink = false;

int vm_irq_line(struct vm *vm, unsigned gsi, int level)
{
    assert_int_equal(gsi, LAYOUT_IRQ_COM1);
    /* The device reports only changes. */
    assert_int_not_equal(level, irq_level);
    if (level)
        irq_rises++;
    irq_level = level;
    irq_calls++;
    return 0;
}

void vm_request_exit(struct vm *vm, enum vm_exit_reason reason, const char *fmt, ...) { fail(); }

void console_write(struct console *c, const uint8_t *buf, size_t len)
{
    assert_true(out_len + len <= sizeof(out_buf));
    memcpy(out_buf + out_len, buf, len);
    out_len += len;
}

void console_rx_ready(struct console *c) { rx_ready_calls++; }

void console_set_sink(struct console *c, const struct console_sink *s)
{
    have_sink = s != NULL;
    if (s)
        sink = *s;
}

/* ---- fixture ---- */

#define COM1 LAYOUT_PORT_COM1
enum { RBR = 0, THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3,
       MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

struct fixture {
    struct vm vm;
    void *dev;
};

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    iobus_init(&f.vm.pio);
    f.vm.console = (struct console *)&f;  /* any non-NULL handle */
    irq_level = irq_calls = irq_rises = 0;
    out_len = 0;
    rx_ready_calls = 0;
    have_sink = false;
    struct err e = { 0 };
    assert_int_equal(serial_dev_ops.create(&f.vm, &f.dev, &e), 0);
    assert_true(have_sink);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    serial_dev_ops.destroy(f->dev);
    assert_false(have_sink);
    iobus_destroy(&f->vm.pio);
    return 0;
}

static uint8_t rd(struct fixture *f, unsigned reg)
{
    uint8_t v;
    assert_true(iobus_read(&f->vm.pio, COM1 + reg, &v, 1));
    return v;
}

static void wr(struct fixture *f, unsigned reg, uint8_t v)
{
    assert_true(iobus_write(&f->vm.pio, COM1 + reg, &v, 1));
}

static void feed(const char *s)
{
    sink.receive(sink.opaque, (const uint8_t *)s, strlen(s));
}

/* ---- cases ---- */

static void test_power_on_values(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(rd(f, IER), 0x00);
    assert_int_equal(rd(f, IIR), 0x01);
    assert_int_equal(rd(f, LCR), 0x00);
    assert_int_equal(rd(f, MCR), 0x00);
    assert_int_equal(rd(f, LSR), 0x60);
    assert_int_equal(rd(f, MSR), 0xb0);
    assert_int_equal(irq_calls, 0);
}

static void test_dlab_divisor(void **state)
{
    struct fixture *f = *state;
    wr(f, IER, 0x05);
    wr(f, LCR, 0x83);
    wr(f, DLL, 0x01);
    wr(f, DLM, 0x02);
    assert_int_equal(rd(f, DLL), 0x01);
    assert_int_equal(rd(f, DLM), 0x02);
    assert_int_equal(out_len, 0);   /* DLL write is not a transmit */
    wr(f, LCR, 0x03);
    assert_int_equal(rd(f, LCR), 0x03);
    assert_int_equal(rd(f, IER), 0x05);
    wr(f, LCR, 0x80);
    assert_int_equal(rd(f, DLL) | rd(f, DLM) << 8, 0x0201);
}

static void test_transmit_reaches_console(void **state)
{
    struct fixture *f = *state;
    wr(f, THR, 'h');
    wr(f, THR, 'i');
    assert_int_equal(out_len, 2);
    assert_memory_equal(out_buf, "hi", 2);
    assert_int_equal(rd(f, LSR) & 0x60, 0x60);
}

static void test_thre_interrupt_on_enable(void **state)
{
    struct fixture *f = *state;
    wr(f, MCR, 0x08);
    wr(f, IER, 0x02);
    assert_int_equal(irq_level, 1);
    assert_int_equal(rd(f, IIR), 0x02);
    /* Reading IIR acknowledged it. */
    assert_int_equal(irq_level, 0);
    assert_int_equal(rd(f, IIR), 0x01);
    /* Disable and enable again: THR is still empty, so it comes back. */
    wr(f, IER, 0x00);
    wr(f, IER, 0x02);
    assert_int_equal(irq_level, 1);
    assert_int_equal(rd(f, IIR), 0x02);
    assert_int_equal(irq_rises, 2);
}

static void test_thre_edge_per_byte(void **state)
{
    struct fixture *f = *state;
    wr(f, MCR, 0x08);
    wr(f, IER, 0x02);
    assert_int_equal(irq_rises, 1);
    /* The line stays up, yet each byte must give the PIC a new edge. */
    wr(f, THR, 'a');
    wr(f, THR, 'b');
    assert_int_equal(irq_level, 1);
    assert_int_equal(irq_rises, 3);
    assert_int_equal(rd(f, IIR), 0x02);
    assert_int_equal(irq_level, 0);
}

static void test_out2_gates_irq(void **state)
{
    struct fixture *f = *state;
    wr(f, IER, 0x02);
    assert_int_equal(rd(f, IIR) & 0x0f, 0x02);
    wr(f, IER, 0x00);
    wr(f, IER, 0x02);
    assert_int_equal(irq_calls, 0);
    wr(f, MCR, 0x08);
    assert_int_equal(irq_level, 1);
    wr(f, MCR, 0x00);
    assert_int_equal(irq_level, 0);
    assert_int_equal(irq_calls, 2);
}

static void test_rx_without_fifo(void **state)
{
    struct fixture *f = *state;
    wr(f, MCR, 0x08);
    wr(f, IER, 0x01);
    assert_int_equal(sink.can_receive(sink.opaque), 1);
    feed("x");
    assert_int_equal(irq_level, 1);
    assert_int_equal(rd(f, IIR), 0x04);
    assert_int_equal(rd(f, LSR) & 0x01, 0x01);
    assert_int_equal(sink.can_receive(sink.opaque), 0);
    assert_int_equal(rd(f, RBR), 'x');
    assert_int_equal(irq_level, 0);
    assert_int_equal(rx_ready_calls, 1);
    assert_int_equal(rd(f, LSR) & 0x01, 0x00);
    assert_int_equal(rd(f, IIR), 0x01);
}

static void test_fifo_fill_and_drain(void **state)
{
    struct fixture *f = *state;
    wr(f, FCR, 0x07);
    assert_int_equal(rd(f, IIR), 0xc1);
    assert_int_equal(sink.can_receive(sink.opaque), 16);
    feed("0123456789abcdef");
    assert_int_equal(sink.can_receive(sink.opaque), 0);
    assert_int_equal(rx_ready_calls, 0);
    char got[17] = { 0 };
    for (int i = 0; i < 16; i++) {
        assert_int_equal(rd(f, LSR) & 0x01, 0x01);
        got[i] = (char)rd(f, RBR);
        /* Room freed after the console was refused: one wakeup only. */
        assert_int_equal(rx_ready_calls, 1);
    }
    assert_string_equal(got, "0123456789abcdef");
    assert_int_equal(rd(f, LSR) & 0x03, 0x00);
    assert_int_equal(sink.can_receive(sink.opaque), 16);
}

static void test_fifo_trigger_level(void **state)
{
    struct fixture *f = *state;
    wr(f, FCR, 0x81);   /* trigger at 8 bytes */
    wr(f, IER, 0x01);
    feed("abc");
    assert_int_equal(rd(f, IIR), 0xcc);   /* below trigger: timeout */
    feed("defgh");
    assert_int_equal(rd(f, IIR), 0xc4);   /* at trigger: data available */
    /* Disabling the FIFO discards its contents. */
    wr(f, FCR, 0x00);
    assert_int_equal(rd(f, LSR) & 0x01, 0);
    assert_int_equal(rd(f, IIR), 0x01);
}

static void test_fcr_clear_rx(void **state)
{
    struct fixture *f = *state;
    wr(f, FCR, 0x01);
    feed("abc");
    wr(f, FCR, 0x03);
    assert_int_equal(rd(f, LSR) & 0x01, 0);
    assert_int_equal(rd(f, IIR), 0xc1);
}

static void test_loopback_msr(void **state)
{
    struct fixture *f = *state;
    /* Linux's probe: RTS|OUT2 in loopback must read back as CTS|DCD. */
    wr(f, MCR, 0x1a);
    assert_int_equal(rd(f, MSR) & 0xf0, 0x90);
    wr(f, MCR, 0x1f);
    assert_int_equal(rd(f, MSR) & 0xf0, 0xf0);
    wr(f, MCR, 0x10);
    /* All four dropped: delta bits, RI trailing edge included. */
    assert_int_equal(rd(f, MSR), 0x0f);
    assert_int_equal(rd(f, MSR), 0x00);
    wr(f, MCR, 0x00);
    assert_int_equal(rd(f, MSR), 0xbb);
    assert_int_equal(rd(f, MSR), 0xb0);
}

static void test_loopback_data(void **state)
{
    struct fixture *f = *state;
    wr(f, MCR, 0x10);
    assert_int_equal(sink.can_receive(sink.opaque), 0);
    wr(f, THR, 'L');
    assert_int_equal(out_len, 0);
    assert_int_equal(rd(f, LSR) & 0x01, 0x01);
    assert_int_equal(rd(f, RBR), 'L');
    /* Leaving loopback wakes the console that was refused. */
    assert_int_equal(rx_ready_calls, 0);
    wr(f, MCR, 0x00);
    assert_int_equal(rx_ready_calls, 1);
    assert_int_equal(sink.can_receive(sink.opaque), 1);
}

static void test_fifo_overrun(void **state)
{
    struct fixture *f = *state;
    wr(f, FCR, 0x01);
    wr(f, MCR, 0x10);
    for (int i = 0; i < 17; i++)
        wr(f, THR, (uint8_t)('A' + i));
    uint8_t lsr = rd(f, LSR);
    assert_int_equal(lsr & 0x03, 0x03);
    /* OE is cleared by the read, the data stays. */
    assert_int_equal(rd(f, LSR) & 0x03, 0x01);
    for (int i = 0; i < 16; i++)
        assert_int_equal(rd(f, RBR), 'A' + i);
    assert_int_equal(rd(f, LSR) & 0x01, 0);
}

static void test_holding_register_overrun(void **state)
{
    struct fixture *f = *state;
    wr(f, MCR, 0x10);
    wr(f, THR, '1');
    wr(f, THR, '2');
    assert_int_equal(rd(f, LSR) & 0x03, 0x03);
    assert_int_equal(rd(f, RBR), '2');
    assert_int_equal(rd(f, LSR) & 0x03, 0x00);
}

static void test_iir_priority(void **state)
{
    struct fixture *f = *state;
    wr(f, FCR, 0x01);
    wr(f, MCR, 0x18);          /* loopback, OUT2 */
    (void)rd(f, MSR);          /* drop the deltas from entering loopback */
    wr(f, MCR, 0x19);          /* DTR up -> DSR delta */
    for (int i = 0; i < 17; i++)
        wr(f, THR, 'z');       /* fills the FIFO and overruns */
    wr(f, IER, 0x0f);
    assert_int_equal(irq_level, 1);
    assert_int_equal(rd(f, IIR), 0xc6);   /* line status first */
    assert_int_equal(rd(f, LSR) & 0x02, 0x02);
    assert_int_equal(rd(f, IIR), 0xc4);   /* then received data */
    for (int i = 0; i < 16; i++)
        (void)rd(f, RBR);
    assert_int_equal(rd(f, IIR), 0xc2);   /* then THR empty, acked by this read */
    assert_int_equal(rd(f, IIR), 0xc0);   /* then modem status */
    assert_int_equal(irq_level, 1);
    assert_int_equal(rd(f, MSR) & 0x02, 0x02);
    assert_int_equal(rd(f, IIR), 0xc1);
    assert_int_equal(irq_level, 0);
}

static void test_ier_masks_sources(void **state)
{
    struct fixture *f = *state;
    wr(f, MCR, 0x08);
    feed("q");
    assert_int_equal(rd(f, IIR), 0x01);
    assert_int_equal(irq_calls, 0);
    wr(f, IER, 0x01);
    assert_int_equal(irq_level, 1);
    wr(f, IER, 0x00);
    assert_int_equal(irq_level, 0);
    /* Upper IER bits don't exist on a 16550A. */
    wr(f, IER, 0xf0);
    assert_int_equal(rd(f, IER), 0x00);
}

static void test_scratch(void **state)
{
    struct fixture *f = *state;
    wr(f, SCR, 0x5a);
    assert_int_equal(rd(f, SCR), 0x5a);
}

static void test_reset(void **state)
{
    struct fixture *f = *state;
    wr(f, LCR, 0x83);
    wr(f, DLL, 0x03);
    wr(f, LCR, 0x03);
    wr(f, FCR, 0x01);
    wr(f, MCR, 0x1b);
    wr(f, IER, 0x0f);
    wr(f, SCR, 0x11);
    wr(f, THR, 'x');
    serial_dev_ops.reset(f->dev);
    irq_level = 0;   /* a reset comes with a new irqchip, all lines low */
    assert_int_equal(rd(f, IER), 0x00);
    assert_int_equal(rd(f, IIR), 0x01);
    assert_int_equal(rd(f, LCR), 0x00);
    assert_int_equal(rd(f, MCR), 0x00);
    assert_int_equal(rd(f, LSR), 0x60);
    assert_int_equal(rd(f, MSR), 0xb0);
    assert_int_equal(rd(f, SCR), 0x00);
    assert_int_equal(sink.can_receive(sink.opaque), 1);
}

static void test_wide_access(void **state)
{
    struct fixture *f = *state;
    /* A 2-byte read of LCR/MCR gives both registers. */
    wr(f, LCR, 0x03);
    wr(f, MCR, 0x0b);
    uint8_t d[2];
    assert_true(iobus_read(&f->vm.pio, COM1 + LCR, d, 2));
    assert_int_equal(d[0], 0x03);
    assert_int_equal(d[1], 0x0b);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_power_on_values),
        T(test_dlab_divisor),
        T(test_transmit_reaches_console),
        T(test_thre_interrupt_on_enable),
        T(test_thre_edge_per_byte),
        T(test_out2_gates_irq),
        T(test_rx_without_fifo),
        T(test_fifo_fill_and_drain),
        T(test_fifo_trigger_level),
        T(test_fcr_clear_rx),
        T(test_loopback_msr),
        T(test_loopback_data),
        T(test_fifo_overrun),
        T(test_holding_register_overrun),
        T(test_iir_priority),
        T(test_ier_masks_sources),
        T(test_scratch),
        T(test_reset),
        T(test_wide_access),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
