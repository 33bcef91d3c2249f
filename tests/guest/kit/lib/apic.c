/* Local APIC, IOAPIC and the legacy 8259 pair. */
#include "kit.h"

uint32_t kit_lapic_base = LAPIC_DEFAULT_BASE;

uint32_t lapic_read(uint32_t reg)
{
    return mmio_read32(kit_lapic_base + reg);
}

void lapic_write(uint32_t reg, uint32_t v)
{
    mmio_write32(kit_lapic_base + reg, v);
}

uint8_t lapic_id(void)
{
    return (uint8_t)(lapic_read(LAPIC_ID) >> 24);
}

void lapic_enable(uint8_t spurious_vector)
{
    lapic_write(LAPIC_SVR, 0x100u | spurious_vector);
}

void lapic_eoi(void)
{
    lapic_write(LAPIC_EOI, 0);
}

bool lapic_send_ipi(uint8_t dest, uint32_t icr_lo)
{
    lapic_write(LAPIC_ICR_HI, (uint32_t)dest << 24);
    lapic_write(LAPIC_ICR_LO, icr_lo);
    for (int i = 0; i < 100000; i++)
        if (!(lapic_read(LAPIC_ICR_LO) & (1u << 12)))
            return true;
    return false;
}

uint32_t ioapic_read(uint32_t base, uint8_t reg)
{
    mmio_write32(base, reg);
    return mmio_read32(base + 0x10);
}

void ioapic_write(uint32_t base, uint8_t reg, uint32_t v)
{
    mmio_write32(base, reg);
    mmio_write32(base + 0x10, v);
}

void ioapic_route(uint32_t base, unsigned pin, uint8_t vector, uint8_t dest,
                  bool level, bool active_low)
{
    uint32_t lo = vector | (active_low ? 1u << 13 : 0) | (level ? 1u << 15 : 0);
    ioapic_write(base, (uint8_t)(0x11 + 2 * pin), (uint32_t)dest << 24);
    ioapic_write(base, (uint8_t)(0x10 + 2 * pin), lo);
}

void ioapic_mask(uint32_t base, unsigned pin)
{
    ioapic_write(base, (uint8_t)(0x10 + 2 * pin), 1u << 16);
}

void pic_disable(void)
{
    /* Remap away from the exception vectors first, so a spurious IRQ7 or
     * IRQ15 cannot look like a CPU exception, then mask every line. */
    outb(0x20, 0x11);
    outb(0xa0, 0x11);
    outb(0x21, 0x50);
    outb(0xa1, 0x58);
    outb(0x21, 0x04);
    outb(0xa1, 0x02);
    outb(0x21, 0x01);
    outb(0xa1, 0x01);
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
}
