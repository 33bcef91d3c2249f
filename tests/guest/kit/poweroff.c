/* Powers off through ACPI S5 (PM1a_CNT from the FADT, SLP_TYPa from \_S5_).
 * The harness checks the machine then exits on its own: "ok" alone is not
 * the verdict. */
#include "kit.h"

void kit_main(void)
{
    tap_plan(3);
    uint32_t a, b;
    int ta, tb;
    bool have = kit_s5_params(&a, &b, &ta, &tb);
    tap_check(a != 0, "FADT gives a PM1a control block", "PM1a_CNT_BLK is 0");
    tap_check(ta >= 0 && ta <= 7, "DSDT \\_S5_ gives SLP_TYPa", "no usable \\_S5_ package (%d)", ta);
    tap_diag("PM1a_CNT 0x%x SLP_TYPa %d, PM1b_CNT 0x%x SLP_TYPb %d", a, ta, b, tb);
    tap_check(have, "powering off through ACPI S5", "missing S5 parameters");
    kit_poweroff();
}
