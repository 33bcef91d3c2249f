/* PIT (8254) and CMOS access. */
#include "kit.h"

#define PIT_CH0 0x40
#define PIT_CH2 0x42
#define PIT_CMD 0x43
#define PORT_61 0x61

void pit_periodic(uint32_t hz)
{
    uint32_t div = PIT_HZ / hz;
    if (div > 0xffff)
        div = 0xffff;
    outb(PIT_CMD, 0x34);        /* channel 0, lobyte/hibyte, mode 2 */
    outb(PIT_CH0, (uint8_t)div);
    outb(PIT_CH0, (uint8_t)(div >> 8));
}

void pit_stop(void)
{
    /* Mode 0 with the longest count: one more edge in 55 ms, then silence. */
    outb(PIT_CMD, 0x30);
    outb(PIT_CH0, 0xff);
    outb(PIT_CH0, 0xff);
}

static void pit_oneshot_wait(uint32_t count)
{
    uint8_t p = inb(PORT_61);
    outb(PORT_61, (uint8_t)(p & ~0x03));            /* gate low, speaker off */
    outb(PIT_CMD, 0xb0);                            /* channel 2, mode 0 */
    outb(PIT_CH2, (uint8_t)count);
    outb(PIT_CH2, (uint8_t)(count >> 8));
    outb(PORT_61, (uint8_t)((p & ~0x02) | 0x01));   /* gate high: count */
    while (!(inb(PORT_61) & 0x20))
        cpu_relax();
}

void pit_delay_us(uint32_t us)
{
    while (us) {
        uint32_t chunk = us > 50000 ? 50000 : us;
        /* 1.193182 ticks per microsecond, kept in 32 bits. */
        uint32_t count = chunk * 1193u / 1000u + 1;
        pit_oneshot_wait(count);
        us -= chunk;
    }
}

uint8_t cmos_read(uint8_t reg)
{
    outb(0x70, reg & 0x7f);
    return inb(0x71);
}

void cmos_write(uint8_t reg, uint8_t v)
{
    outb(0x70, reg & 0x7f);
    outb(0x71, v);
}
