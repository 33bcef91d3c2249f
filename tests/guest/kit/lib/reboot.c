/* Shared body of the reboot programs. CMOS RAM survives a reset but not a
 * new machine, so a marker there tells the second boot from the first. The
 * registers used are ones firmware leaves alone (0x5b-0x5f carry memory
 * size and CPU count for SeaBIOS). */
#include "kit.h"

#define MARK_REG 0x50
#define MARK_CHECK_REG 0x51

void kit_reboot_test(const char *how, uint8_t tag, void (*do_reset)(void))
{
    uint8_t inv = (uint8_t)(tag ^ 0xff);
    uint8_t m = cmos_read(MARK_REG), c = cmos_read(MARK_CHECK_REG);
    if (m != tag || c != inv) {
        cmos_write(MARK_REG, tag);
        cmos_write(MARK_CHECK_REG, inv);
        tap_diag("first boot: marker written, resetting through %s", how);
        do_reset();
        /* Still here: the reset did nothing. */
        pit_delay_us(200000);
        cmos_write(MARK_REG, 0);
        cmos_write(MARK_CHECK_REG, 0);
        tap_plan(1);
        tap_check(false, "machine reset and booted again", "still running after the %s reset", how);
        return;
    }
    tap_plan(3);
    tap_check(true, "machine reset and booted again", "-");
    uint32_t cpus;
    tap_check(kit_boot_info.start_info_ok && cmdline_get_uint("cpus", &cpus),
              "second boot has start info and command line",
              "start info %s, cmdline \"%s\"", kit_boot_info.start_info_ok ? "ok" : "missing",
              kit_boot_info.cmdline);
    cmos_write(MARK_REG, 0);
    cmos_write(MARK_CHECK_REG, 0);
    m = cmos_read(MARK_REG);
    c = cmos_read(MARK_CHECK_REG);
    tap_check(m == 0 && c == 0, "CMOS marker cleared", "read back 0x%x 0x%x", m, c);
}
