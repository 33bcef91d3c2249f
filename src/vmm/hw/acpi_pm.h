/* Events the rest of the monitor can raise through the ACPI fixed hardware. */
#ifndef CVIRT_VMM_HW_ACPI_PM_H
#define CVIRT_VMM_HW_ACPI_PM_H

#include <stdint.h>

struct vm;

/* The PM timer is 32 bits wide: the FADT must set TMR_VAL_EXT. */
#define ACPI_PM_TIMER_HZ 3579545
#define ACPI_PM_TMR_BITS 32

/* Presses the fixed-feature power button (PM1 PWRBTN_STS); the guest sees
 * an SCI when it enabled PWRBTN_EN. Any thread. Returns -ENODEV when vm
 * has no ACPI PM device. */
int acpi_pm_power_button(struct vm *vm);

/* Sets a GPE0 status bit (0-31), e.g. for hotplug notifications. */
int acpi_pm_raise_gpe(struct vm *vm, unsigned bit);

/* A write to the reset control register 0xcf9, for a PCI host bridge that
 * owns 0xcf8-0xcff and forwards byte writes at 0xcf9 here. */
void acpi_pm_reset_control(struct vm *vm, uint8_t value);

#endif
