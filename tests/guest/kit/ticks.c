/* Prints "tick N" with N = 1, 2, 3, ... every period= milliseconds of
 * guest time (default 2) on a PIT tick, forever. The snapshot benchmark
 * runs it: the first line after a restore or a migration tells when the
 * guest runs again, within a period. Not a TAP program. */
#include "kit.h"

void kit_main(void)
{
    struct acpi_info ai;
    char why[80];
    uint32_t period = 2;
    cmdline_get_uint("period", &period);
    if (period == 0)
        period = 1;
    if (acpi_parse(&ai, why, sizeof(why)))
        ticker_start(&ai, 1000 / period < 1 ? 1 : 1000 / period);
    for (uint32_t n = 1;; n++) {
        kit_printf("tick %u\n", n);
        kit_sleep_ms(period);
    }
}
