/* 16550A UART on COM1.
 *
 * The host side is infinitely fast: a byte written to THR reaches the console
 * at once, so THR and the transmitter are always empty and only the 16-byte
 * receive FIFO holds state. The receiver timeout is modelled as having
 * already expired: bytes below the FIFO trigger level report the "character
 * timeout" interrupt right away, which drivers handle like "data available".
 *
 * The interrupt pin reaches the PIC only while MCR.OUT2 is set, as on PC
 * boards; Linux's 8250 driver depends on that gate. */
#include "hw/platform.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "console.h"
#include "snapshot/stream.h"
#include "vm.h"
#include "x86/layout.h"

enum {
    REG_RBR_THR = 0, REG_IER = 1, REG_IIR_FCR = 2, REG_LCR = 3,
    REG_MCR = 4, REG_LSR = 5, REG_MSR = 6, REG_SCR = 7,
};

#define IER_RDI  0x01  /* receive data available / timeout */
#define IER_THRI 0x02  /* transmit holding register empty */
#define IER_RLSI 0x04  /* receiver line status */
#define IER_MSI  0x08  /* modem status */

#define IIR_NONE    0x01
#define IIR_MSI     0x00
#define IIR_THRI    0x02
#define IIR_RDI     0x04
#define IIR_RLSI    0x06
#define IIR_TIMEOUT 0x0c
#define IIR_FIFO    0xc0

#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02
#define FCR_TRIGGER  0xc0

#define LCR_DLAB 0x80

#define MCR_DTR  0x01
#define MCR_RTS  0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f

#define LSR_DR   0x01
#define LSR_OE   0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define LSR_ERRORS 0x1e  /* OE, PE, FE, BI: cleared by reading LSR */

#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_CTS  0x10
#define MSR_DSR  0x20
#define MSR_RI   0x40
#define MSR_DCD  0x80
#define MSR_DELTAS 0x0f

#define RX_FIFO_SIZE 16

struct serial {
    pthread_mutex_t lock;
    struct vm *vm;

    uint8_t ier, lcr, mcr, scr;
    uint8_t lsr_errors;      /* sticky LSR error bits until LSR is read */
    uint8_t msr_deltas;      /* sticky MSR delta bits until MSR is read */
    uint8_t fcr_trigger;     /* FCR bits 6-7 */
    uint16_t divisor;
    bool fifo_enabled;
    bool thr_pending;        /* THRE interrupt not yet acknowledged */

    uint8_t rx[RX_FIFO_SIZE];
    unsigned rx_head, rx_count;
    bool rx_blocked;         /* told the console we had no room */

    bool irq_level;          /* what the irqchip was last told */
};

static unsigned serial_rx_capacity(const struct serial *s)
{
    /* Without the FIFO the receiver is one holding register. */
    return s->fifo_enabled ? RX_FIFO_SIZE : 1;
}

static unsigned serial_rx_trigger(const struct serial *s)
{
    static const unsigned levels[4] = { 1, 4, 8, 14 };
    return levels[s->fcr_trigger >> 6];
}

static void serial_rx_clear(struct serial *s)
{
    s->rx_head = 0;
    s->rx_count = 0;
}

/* A byte arriving at the receiver, from the console or the loopback path. */
static void serial_rx_push(struct serial *s, uint8_t b)
{
    if (s->rx_count >= serial_rx_capacity(s)) {
        s->lsr_errors |= LSR_OE;
        /* The 8250 holding register is overwritten; a full FIFO keeps its
         * contents and loses the new byte. */
        if (!s->fifo_enabled)
            s->rx[s->rx_head] = b;
        return;
    }
    s->rx[(s->rx_head + s->rx_count) % RX_FIFO_SIZE] = b;
    s->rx_count++;
}

static uint8_t serial_rx_pop(struct serial *s)
{
    if (s->rx_count == 0)
        return 0;
    uint8_t b = s->rx[s->rx_head];
    s->rx_head = (s->rx_head + 1) % RX_FIFO_SIZE;
    s->rx_count--;
    return b;
}

/* Modem status inputs: in loopback they mirror the MCR outputs, otherwise
 * the (virtual) cable always has a peer ready. */
static uint8_t serial_msr_lines(const struct serial *s)
{
    if (!(s->mcr & MCR_LOOP))
        return MSR_CTS | MSR_DSR | MSR_DCD;
    uint8_t v = 0;
    if (s->mcr & MCR_RTS)
        v |= MSR_CTS;
    if (s->mcr & MCR_DTR)
        v |= MSR_DSR;
    if (s->mcr & MCR_OUT1)
        v |= MSR_RI;
    if (s->mcr & MCR_OUT2)
        v |= MSR_DCD;
    return v;
}

static void serial_msr_changed(struct serial *s, uint8_t before, uint8_t after)
{
    uint8_t diff = before ^ after;
    if (diff & MSR_CTS)
        s->msr_deltas |= MSR_DCTS;
    if (diff & MSR_DSR)
        s->msr_deltas |= MSR_DDSR;
    if (diff & MSR_DCD)
        s->msr_deltas |= MSR_DDCD;
    if ((before & MSR_RI) && !(after & MSR_RI))
        s->msr_deltas |= MSR_TERI;
}

/* The highest-priority pending interrupt, as IIR reports it. */
static uint8_t serial_iir_id(const struct serial *s)
{
    if ((s->ier & IER_RLSI) && (s->lsr_errors & LSR_ERRORS))
        return IIR_RLSI;
    if ((s->ier & IER_RDI) && s->rx_count > 0) {
        if (s->fifo_enabled && s->rx_count < serial_rx_trigger(s))
            return IIR_TIMEOUT;
        return IIR_RDI;
    }
    if ((s->ier & IER_THRI) && s->thr_pending)
        return IIR_THRI;
    if ((s->ier & IER_MSI) && (s->msr_deltas & MSR_DELTAS))
        return IIR_MSI;
    return IIR_NONE;
}

/* Called with the lock held after every state change. */
static void serial_update_irq(struct serial *s)
{
    bool level = serial_iir_id(s) != IIR_NONE && (s->mcr & MCR_OUT2);
    if (level == s->irq_level)
        return;
    s->irq_level = level;
    vm_irq_line(s->vm, LAYOUT_IRQ_COM1, level);
}

static void serial_transmit(struct serial *s, uint8_t b)
{
    /* Writing THR acknowledges a THRE interrupt; the byte leaves at once and
     * THR is empty again. Lowering and raising the line gives the
     * edge-triggered PIC a new edge for every byte, like a real UART. */
    s->thr_pending = false;
    serial_update_irq(s);
    if (s->mcr & MCR_LOOP)
        serial_rx_push(s, b);
    else if (s->vm->console)
        console_write(s->vm->console, &b, 1);
    s->thr_pending = true;
}

static void serial_write_ier(struct serial *s, uint8_t val)
{
    uint8_t old = s->ier;
    s->ier = val & 0x0f;
    /* Enabling THRI with THR empty raises the interrupt (Linux tests for
     * this and otherwise falls back to polling). */
    if ((s->ier ^ old) & IER_THRI)
        s->thr_pending = (s->ier & IER_THRI) != 0;
}

static void serial_write_fcr(struct serial *s, uint8_t val)
{
    bool enable = val & FCR_ENABLE;
    if (enable != s->fifo_enabled)
        serial_rx_clear(s);
    s->fifo_enabled = enable;
    /* The other bits only take effect with FCR0 set. */
    if (!enable)
        return;
    if (val & FCR_CLEAR_RX)
        serial_rx_clear(s);
    s->fcr_trigger = val & FCR_TRIGGER;
}

static void serial_write_mcr(struct serial *s, uint8_t val)
{
    uint8_t before = serial_msr_lines(s);
    s->mcr = val & MCR_MASK;
    serial_msr_changed(s, before, serial_msr_lines(s));
}

static void serial_write_reg(struct serial *s, unsigned reg, uint8_t val)
{
    bool dlab = s->lcr & LCR_DLAB;
    switch (reg) {
    case REG_RBR_THR:
        if (dlab)
            s->divisor = (s->divisor & 0xff00) | val;
        else
            serial_transmit(s, val);
        break;
    case REG_IER:
        if (dlab)
            s->divisor = (s->divisor & 0x00ff) | (uint16_t)val << 8;
        else
            serial_write_ier(s, val);
        break;
    case REG_IIR_FCR:
        serial_write_fcr(s, val);
        break;
    case REG_LCR:
        s->lcr = val;
        break;
    case REG_MCR:
        serial_write_mcr(s, val);
        break;
    case REG_SCR:
        s->scr = val;
        break;
    default:
        /* LSR and MSR are read-only; factory test writes are ignored. */
        break;
    }
}

static uint8_t serial_read_reg(struct serial *s, unsigned reg)
{
    bool dlab = s->lcr & LCR_DLAB;
    uint8_t v = 0;
    switch (reg) {
    case REG_RBR_THR:
        v = dlab ? (uint8_t)s->divisor : serial_rx_pop(s);
        break;
    case REG_IER:
        v = dlab ? (uint8_t)(s->divisor >> 8) : s->ier;
        break;
    case REG_IIR_FCR:
        v = serial_iir_id(s);
        /* Reading IIR acknowledges THRE when it is the reported source. */
        if (v == IIR_THRI)
            s->thr_pending = false;
        if (s->fifo_enabled)
            v |= IIR_FIFO;
        break;
    case REG_LCR:
        v = s->lcr;
        break;
    case REG_MCR:
        v = s->mcr;
        break;
    case REG_LSR:
        v = s->lsr_errors | LSR_THRE | LSR_TEMT;
        if (s->rx_count > 0)
            v |= LSR_DR;
        s->lsr_errors = 0;
        break;
    case REG_MSR:
        v = s->msr_deltas | serial_msr_lines(s);
        s->msr_deltas = 0;
        break;
    case REG_SCR:
        v = s->scr;
        break;
    }
    return v;
}

/* Whether the console was told "no room" and the guest has made room (or
 * left loopback); the caller notifies the console after unlocking. */
static bool serial_take_rx_wakeup(struct serial *s)
{
    if (!s->rx_blocked || (s->mcr & MCR_LOOP) || s->rx_count >= serial_rx_capacity(s))
        return false;
    s->rx_blocked = false;
    return true;
}

static void serial_notify_console(struct serial *s, bool wake)
{
    if (wake && s->vm->console)
        console_rx_ready(s->vm->console);
}

static void serial_io_read(void *opaque, uint64_t offset, uint8_t *data, unsigned len)
{
    struct serial *s = opaque;
    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; i < len; i++)
        data[i] = offset + i < 8 ? serial_read_reg(s, offset + i) : 0xff;
    serial_update_irq(s);
    bool wake = serial_take_rx_wakeup(s);
    pthread_mutex_unlock(&s->lock);
    serial_notify_console(s, wake);
}

static void serial_io_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned len)
{
    struct serial *s = opaque;
    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; i < len && offset + i < 8; i++)
        serial_write_reg(s, offset + i, data[i]);
    serial_update_irq(s);
    bool wake = serial_take_rx_wakeup(s);
    pthread_mutex_unlock(&s->lock);
    serial_notify_console(s, wake);
}

static const struct io_ops serial_io_ops = {
    .read = serial_io_read,
    .write = serial_io_write,
};

/* Console side (event-loop thread). */
static size_t serial_can_receive(void *opaque)
{
    struct serial *s = opaque;
    pthread_mutex_lock(&s->lock);
    size_t room = 0;
    if (!(s->mcr & MCR_LOOP))
        room = serial_rx_capacity(s) - s->rx_count;
    if (room == 0)
        s->rx_blocked = true;
    pthread_mutex_unlock(&s->lock);
    return room;
}

static void serial_receive(void *opaque, const uint8_t *buf, size_t len)
{
    struct serial *s = opaque;
    pthread_mutex_lock(&s->lock);
    /* In loopback the receiver is cut off from the line. */
    if (!(s->mcr & MCR_LOOP))
        for (size_t i = 0; i < len; i++)
            serial_rx_push(s, buf[i]);
    serial_update_irq(s);
    pthread_mutex_unlock(&s->lock);
}

/* Power-on register values. The irqchip is recreated on reset, so the line
 * is already low there. */
static void serial_power_on(struct serial *s)
{
    s->ier = 0;
    s->lcr = 0;
    s->mcr = 0;
    s->scr = 0;
    s->lsr_errors = 0;
    s->msr_deltas = 0;
    s->fcr_trigger = 0;
    s->divisor = 12;   /* 9600 baud */
    s->fifo_enabled = false;
    s->thr_pending = false;
    serial_rx_clear(s);
    s->irq_level = false;
}

static void serial_reset(void *state)
{
    struct serial *s = state;
    pthread_mutex_lock(&s->lock);
    serial_power_on(s);
    bool wake = s->rx_blocked;
    s->rx_blocked = false;
    pthread_mutex_unlock(&s->lock);
    serial_notify_console(s, wake);
}

static int serial_create(struct vm *vm, void **state, struct err *e)
{
    struct serial *s = calloc(1, sizeof(*s));
    if (!s)
        return err_set(e, ENOMEM, "out of memory");
    pthread_mutex_init(&s->lock, NULL);
    s->vm = vm;
    serial_power_on(s);
    int r = iobus_register(&vm->pio, LAYOUT_PORT_COM1, 8, &serial_io_ops, s, "serial");
    if (r < 0) {
        pthread_mutex_destroy(&s->lock);
        free(s);
        return err_set(e, -r, "cannot register ports 0x%x-0x%x", LAYOUT_PORT_COM1,
                       LAYOUT_PORT_COM1 + 7);
    }
    if (vm->console) {
        const struct console_sink sink = {
            .can_receive = serial_can_receive,
            .receive = serial_receive,
            .opaque = s,
        };
        console_set_sink(vm->console, &sink);
    }
    *state = s;
    return 0;
}

/* The console must still be open (or vm->console NULL) when this runs. */
static void serial_destroy(void *state)
{
    struct serial *s = state;
    if (!s)
        return;
    if (s->vm->console)
        console_set_sink(s->vm->console, NULL);
    iobus_unregister(&s->vm->pio, LAYOUT_PORT_COM1);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static void serial_save(void *state, struct snapbuf *b)
{
    struct serial *s = state;
    pthread_mutex_lock(&s->lock);
    uint8_t regs[] = { s->ier, s->lcr, s->mcr, s->scr, s->lsr_errors, s->msr_deltas,
                       s->fcr_trigger, s->fifo_enabled, s->thr_pending };
    snapbuf_put(b, regs, sizeof(regs));
    snapbuf_put_u16(b, s->divisor);
    snapbuf_put_u8(b, (uint8_t)s->rx_count);
    for (unsigned i = 0; i < s->rx_count; i++)
        snapbuf_put_u8(b, s->rx[(s->rx_head + i) % RX_FIFO_SIZE]);
    pthread_mutex_unlock(&s->lock);
}

static int serial_load(void *state, struct snapbuf *b, struct err *e)
{
    struct serial *s = state;
    uint8_t regs[9];
    snapbuf_get(b, regs, sizeof(regs));
    uint16_t divisor = snapbuf_get_u16(b);
    unsigned n = snapbuf_get_u8(b);
    uint8_t rx[RX_FIFO_SIZE];
    if (n > RX_FIFO_SIZE)
        return err_set(e, EINVAL, "receive FIFO of %u bytes", n);
    snapbuf_get(b, rx, n);
    if (b->short_read)
        return err_set(e, EINVAL, "state truncated");
    pthread_mutex_lock(&s->lock);
    s->ier = regs[0] & 0x0f;
    s->lcr = regs[1];
    s->mcr = regs[2] & MCR_MASK;
    s->scr = regs[3];
    s->lsr_errors = regs[4];
    s->msr_deltas = regs[5] & MSR_DELTAS;
    s->fcr_trigger = regs[6] & FCR_TRIGGER;
    s->fifo_enabled = regs[7] != 0;
    s->thr_pending = regs[8] != 0;
    s->divisor = divisor;
    serial_rx_clear(s);
    for (unsigned i = 0; i < n; i++)
        s->rx[i] = rx[i];
    s->rx_count = n;
    s->irq_level = false;
    serial_update_irq(s);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

const struct platform_dev_ops serial_dev_ops = {
    .name = "serial",
    .create = serial_create,
    .reset = serial_reset,
    .destroy = serial_destroy,
    .save = serial_save,
    .load = serial_load,
};
