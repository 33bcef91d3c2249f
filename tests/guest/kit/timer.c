/* PIT (through the IOAPIC, IRQ0 -> GSI per the MADT override) and the LAPIC
 * timer, both taken as interrupts, compared with each other and with the
 * ACPI PM timer. Bounds are loose: only gross errors (a wrong divisor, a
 * missing interrupt, a timer running at the wrong clock) should fail. */
#include "kit.h"

#define PIT_RATE 100            /* Hz */
#define LAPIC_RATE 50           /* Hz */
#define RUN_PIT_TICKS 50        /* 0.5 s of guest time */

static volatile uint32_t lapic_ticks;
static struct acpi_info ai;

static void lapic_timer_irq(struct kit_frame *f)
{
    (void)f;
    lapic_ticks++;
    lapic_eoi();
}

static uint32_t pm_read(void)
{
    return inl((uint16_t)ai.pm_tmr);
}

/* Spins until the PM timer says `ticks` elapsed or cond becomes true. */
static uint32_t pm_spin(uint32_t ticks, volatile uint32_t *counter, uint32_t until)
{
    uint32_t start = pm_read(), elapsed = 0, last = start;
    while (elapsed < ticks && (!counter || *counter < until)) {
        uint32_t now = pm_read();
        elapsed += pmtmr_delta(&ai, last, now);
        last = now;
    }
    return elapsed;
}

/* LAPIC timer counts per 10 ms of PM-timer time, divide-by-16, masked. */
static uint32_t lapic_calibrate(void)
{
    lapic_write(LAPIC_TIMER_DIV, 0x3);
    lapic_write(LAPIC_LVT_TIMER, 1u << 16 | KIT_VEC_LAPIC_TIMER);
    lapic_write(LAPIC_TIMER_INIT, 0xffffffffu);
    uint32_t c0 = lapic_read(LAPIC_TIMER_CUR);
    uint32_t el = pm_spin(PMTMR_HZ / 100, NULL, 0);
    uint32_t c1 = lapic_read(LAPIC_TIMER_CUR);
    lapic_write(LAPIC_TIMER_INIT, 0);
    uint32_t counts = c0 - c1;
    /* Scale to exactly 10 ms in case the spin overshot. */
    return el ? (uint32_t)kit_udiv64((uint64_t)counts * (PMTMR_HZ / 100), el) : 0;
}

/* 100 * a / b, saturating, for ratio checks in percent. */
static uint32_t pct(uint32_t a, uint32_t b)
{
    if (!b)
        return 0xffffffffu;
    uint64_t q = kit_udiv64((uint64_t)a * 100, b);
    return q > 0xffffffffu ? 0xffffffffu : (uint32_t)q;
}

void kit_main(void)
{
    tap_plan(7);
    char why[64];
    if (!acpi_parse(&ai, why, sizeof(why)))
        tap_diag("ACPI walk stopped: %s", why);
    tap_check(ai.nioapics && ai.pm_tmr, "MADT has an IOAPIC and FADT a PM timer",
              "%d IOAPICs, PM timer port 0x%x", ai.nioapics, ai.pm_tmr);
    tap_diag("IRQ0 -> GSI %u (flags 0x%x), IOAPIC 0x%x", ai.irq0_gsi, ai.irq0_flags, ai.ioapic_addr);
    if (!ai.nioapics || !ai.pm_tmr)
        return;

    bool started = ticker_start(&ai, PIT_RATE);
    idt_set_handler(KIT_VEC_LAPIC_TIMER, lapic_timer_irq);
    irq_enable();
    uint32_t el = started ? pm_spin(PMTMR_HZ, &kit_ticks, 2) : 0;
    irq_disable();
    tap_check(started && kit_ticks >= 2, "PIT interrupts arrive through the IOAPIC",
              "%u ticks in %u PM-timer counts", kit_ticks, el);
    if (kit_ticks < 2)
        return;

    uint32_t per10ms = lapic_calibrate();
    tap_check(per10ms > 0, "LAPIC timer counts down", "no count change in 10 ms");
    tap_diag("LAPIC timer: %u counts per 10 ms at divide-by-16", per10ms);
    if (!per10ms)
        return;

    uint32_t period = per10ms * (100 / LAPIC_RATE);
    lapic_write(LAPIC_LVT_TIMER, 1u << 17 | KIT_VEC_LAPIC_TIMER);   /* periodic */
    lapic_write(LAPIC_TIMER_INIT, period);
    uint32_t p0 = kit_ticks, l0 = lapic_ticks, t0 = pm_read(), last = t0, pm = 0;
    /* HLT between interrupts; the PM timer caps the wait at 5 s. */
    while (kit_ticks - p0 < RUN_PIT_TICKS && pm < 5 * PMTMR_HZ) {
        __asm__ volatile("sti; hlt; cli" ::: "memory");
        uint32_t now = pm_read();
        pm += pmtmr_delta(&ai, last, now);
        last = now;
    }
    lapic_write(LAPIC_TIMER_INIT, 0);
    ticker_stop();
    uint32_t np = kit_ticks - p0, nl = lapic_ticks - l0;
    tap_diag("%u PIT ticks, %u LAPIC ticks, %u PM-timer counts", np, nl, pm);
    tap_check(nl > 0, "LAPIC timer interrupts arrive", "none in %u PIT ticks", np);
    uint32_t r = pct(pm, np * (PMTMR_HZ / PIT_RATE));
    tap_check(np && r >= 50 && r <= 200, "PIT rate agrees with the PM timer",
              "PM timer ran %u%% of the PIT's time", r);
    r = pct(nl * PIT_RATE, np * LAPIC_RATE);
    tap_check(np && r >= 50 && r <= 200, "LAPIC timer rate agrees with the PIT",
              "LAPIC ticks %u%% of expected", r);
    r = pct(nl * (PMTMR_HZ / LAPIC_RATE), pm);
    tap_check(pm && r >= 50 && r <= 200, "LAPIC timer rate agrees with the PM timer",
              "LAPIC ticks %u%% of expected", r);
}
