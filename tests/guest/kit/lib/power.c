/* Power-off through ACPI S5: every program ends here so that both QEMU and
 * the monitor under test exit when the guest is done. */
#include "kit.h"

static struct acpi_info power_acpi;
static bool power_parsed;

bool kit_s5_params(uint32_t *pm1a_cnt, uint32_t *pm1b_cnt, int *typa, int *typb)
{
    if (!power_parsed) {
        char why[64];
        acpi_parse(&power_acpi, why, sizeof(why));
        power_parsed = true;
    }
    *pm1a_cnt = power_acpi.pm1a_cnt;
    *pm1b_cnt = power_acpi.pm1b_cnt;
    *typa = power_acpi.slp_typa;
    *typb = power_acpi.slp_typb;
    return *pm1a_cnt && *typa >= 0;
}

void kit_poweroff(void)
{
    uint32_t a, b;
    int ta, tb;
    irq_disable();
    if (kit_s5_params(&a, &b, &ta, &tb)) {
        /* SLP_TYP in bits 10-12, SLP_EN in bit 13 (ACPI 4.8.4.2.1). */
        outw((uint16_t)a, (uint16_t)((ta & 7) << 10 | 1u << 13));
        if (b && tb >= 0)
            outw((uint16_t)b, (uint16_t)((tb & 7) << 10 | 1u << 13));
        /* Power-off may take effect a little after the write; wait half a
         * second of PM-timer time before saying it did not. */
        if (power_acpi.pm_tmr) {
            uint32_t last = inl((uint16_t)power_acpi.pm_tmr), waited = 0;
            while (waited < PMTMR_HZ / 2) {
                uint32_t now = inl((uint16_t)power_acpi.pm_tmr);
                waited += pmtmr_delta(&power_acpi, last, now);
                last = now;
            }
            uart_puts("# ACPI S5 write did not power off\n");
        }
    } else {
        uart_puts("# no PM1a_CNT or \\_S5_: cannot power off\n");
    }
    for (;;) {
        irq_disable();
        cpu_halt();
    }
}
