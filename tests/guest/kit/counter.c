/* Prints "counter N" with N = 1, 2, 3, ... about ten times a second of
 * guest time, forever (or up to count=N lines, then powers off). A host
 * that pauses the guest sees the numbers stop; one that saves and restores
 * it sees them carry on from where they were. Not a TAP program: the
 * harness judges the sequence. */
#include "kit.h"

void kit_main(void)
{
    struct acpi_info ai;
    char why[80];
    uint32_t limit = 0;
    cmdline_get_uint("count", &limit);
    /* With ACPI the ticker sleeps in HLT; without it, PIT polling still
     * paces the lines. */
    if (acpi_parse(&ai, why, sizeof(why)))
        ticker_start(&ai, 100);
    for (uint32_t n = 1; limit == 0 || n <= limit; n++) {
        kit_printf("counter %u\n", n);
        kit_sleep_ms(100);
    }
    kit_poweroff();
}
