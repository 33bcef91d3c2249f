/* COM1 output and a small printf: enough for TAP lines and diagnostics. */
#include "kit.h"

#define COM1 0x3f8
#define UART_LSR_THRE 0x20

void uart_init(void)
{
    outb(COM1 + 1, 0x00);       /* no interrupts: output is polled */
    outb(COM1 + 3, 0x80);       /* DLAB on to set the divisor */
    outb(COM1 + 0, 0x01);       /* 115200 baud */
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03);       /* 8N1, DLAB off */
    outb(COM1 + 2, 0x07);       /* FIFO on and cleared */
    outb(COM1 + 4, 0x03);       /* DTR, RTS */
}

void uart_putc(char c)
{
    /* Bounded so a monitor that never reports THRE cannot hang the test;
     * the byte is sent anyway and the harness sees what arrives. */
    for (int i = 0; i < 100000; i++)
        if (inb(COM1 + 5) & UART_LSR_THRE)
            break;
    outb(COM1, (uint8_t)c);
}

void uart_puts(const char *s)
{
    while (*s)
        uart_putc(*s++);
}

struct out {
    char *buf;
    size_t size, len;
};

static void put(struct out *o, char c)
{
    if (o->len + 1 < o->size)
        o->buf[o->len] = c;
    o->len++;
}

static void put_num(struct out *o, uint64_t v, unsigned base, bool neg,
                    int width, char pad, bool left, bool upper)
{
    char tmp[24];
    int n = 0;
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    do {
        /* 64-bit division needs libgcc; only hex may be wider than 32 bits. */
        if (base == 16) {
            tmp[n++] = digits[v & 15];
            v >>= 4;
        } else {
            uint32_t w = (uint32_t)v;
            tmp[n++] = digits[w % base];
            v = w / base;
        }
    } while (v && n < (int)sizeof(tmp));
    int len = n + (neg ? 1 : 0);
    if (neg && pad == '0')
        put(o, '-');
    if (!left)
        for (; width > len; width--)
            put(o, pad);
    if (neg && pad != '0')
        put(o, '-');
    while (n)
        put(o, tmp[--n]);
    for (; width > len; width--)
        put(o, ' ');
}

int kit_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct out o = { buf, size, 0 };
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            put(&o, *fmt);
            continue;
        }
        fmt++;
        bool left = false;
        char pad = ' ';
        int width = 0, lng = 0;
        for (; *fmt == '-' || *fmt == '0'; fmt++) {
            if (*fmt == '-')
                left = true;
            else
                pad = '0';
        }
        for (; *fmt >= '0' && *fmt <= '9'; fmt++)
            width = width * 10 + (*fmt - '0');
        for (; *fmt == 'l'; fmt++)
            lng++;
        switch (*fmt) {
        case 'd':
        case 'i': {
            int32_t v = va_arg(ap, int32_t);
            uint32_t m = v < 0 ? -(uint32_t)v : (uint32_t)v;
            put_num(&o, m, 10, v < 0, width, pad, left, false);
            break;
        }
        case 'u':
            put_num(&o, va_arg(ap, uint32_t), 10, false, width, pad, left, false);
            break;
        case 'x':
        case 'X': {
            uint64_t v = lng >= 2 ? va_arg(ap, uint64_t) : va_arg(ap, uint32_t);
            put_num(&o, v, 16, false, width, pad, left, *fmt == 'X');
            break;
        }
        case 'p':
            put(&o, '0');
            put(&o, 'x');
            put_num(&o, (uintptr_t)va_arg(ap, void *), 16, false, 8, '0', false, false);
            break;
        case 'c':
            put(&o, (char)va_arg(ap, int));
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s)
                s = "(null)";
            int len = (int)strlen(s);
            if (!left)
                for (; width > len; width--)
                    put(&o, ' ');
            while (*s)
                put(&o, *s++);
            for (; width > len; width--)
                put(&o, ' ');
            break;
        }
        case '%':
            put(&o, '%');
            break;
        default:
            put(&o, '?');
            if (!*fmt)
                fmt--;
            break;
        }
    }
    if (size)
        buf[o.len < size ? o.len : size - 1] = '\0';
    return (int)o.len;
}

int kit_snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = kit_vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

void kit_printf(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    kit_vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    uart_puts(buf);
}
