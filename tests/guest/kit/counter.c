/* Prints "counter N" with N = 1, 2, 3, ... about ten times a second of
 * guest time, forever (or up to count=N lines, then powers off; or up to
 * reset=N lines, then resets through the i8042). A host
 * that pauses the guest sees the numbers stop; one that saves and restores
 * it sees them carry on from where they were. Not a TAP program: the
 * harness judges the sequence. */
#include "kit.h"

void kit_main(void)
{
    struct acpi_info ai;
    char why[80];
    uint32_t limit = 0, reset = 0;
    cmdline_get_uint("count", &limit);
    cmdline_get_uint("reset", &reset);
    /* With ACPI the ticker sleeps in HLT; without it, PIT polling still
     * paces the lines. */
    if (acpi_parse(&ai, why, sizeof(why)))
        ticker_start(&ai, 100);
    for (uint32_t n = 1; limit == 0 || n <= limit; n++) {
        kit_printf("counter %u\n", n);
        if (n == reset) {
            for (int i = 0; i < 10000 && (inb(0x64) & 0x02); i++)
                cpu_relax();
            outb(0x64, 0xfe);   /* pulse the reset line */
        }
        kit_sleep_ms(100);
    }
    kit_poweroff();
}
