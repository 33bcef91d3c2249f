/* A PIT-driven tick delivered through the IOAPIC, so programs can wait with
 * HLT instead of spinning: spinning costs emulated instructions on hosts
 * where guest kernel code is interpreted. */
#include "kit.h"

volatile uint32_t kit_ticks;
static uint32_t ticker_ioapic, ticker_hz;
static unsigned ticker_pin;

static void ticker_irq(struct kit_frame *f)
{
    (void)f;
    kit_ticks++;
    lapic_eoi();
}

bool ticker_start(const struct acpi_info *ai, uint32_t hz)
{
    if (!ai->nioapics || ai->irq0_gsi < ai->ioapic_gsi_base)
        return false;
    /* The ISA default (no override) is GSI 0, edge, active high. */
    uint32_t gsi = ai->irq0_gsi;
    bool active_low = (ai->irq0_flags & 3) == 3;
    bool level = ((ai->irq0_flags >> 2) & 3) == 3;
    if (ai->lapic_addr)
        kit_lapic_base = ai->lapic_addr;
    idt_init();
    pic_disable();
    lapic_enable(0xff);
    idt_set_handler(KIT_VEC_PIT, ticker_irq);
    ticker_ioapic = ai->ioapic_addr;
    ticker_pin = gsi - ai->ioapic_gsi_base;
    pit_periodic(hz);
    ioapic_route(ticker_ioapic, ticker_pin, KIT_VEC_PIT, lapic_id(), level, active_low);
    ticker_hz = hz;
    return true;
}

void ticker_stop(void)
{
    irq_disable();
    ioapic_mask(ticker_ioapic, ticker_pin);
    pit_stop();
    ticker_hz = 0;
}

bool ticker_wait(uint32_t n)
{
    uint32_t start = kit_ticks;
    while (kit_ticks - start < n) {
        /* STI's one-instruction shadow covers HLT: no lost wake-up. */
        __asm__ volatile("sti; hlt; cli" ::: "memory");
    }
    return true;
}

void kit_sleep_ms(uint32_t ms)
{
    /* One tick more than the quotient: the first tick may come at once. */
    if (ticker_hz)
        ticker_wait(ms * ticker_hz / 1000 + 1);
    else
        pit_delay_us(ms * 1000);
}
