/* Platform (non-PCI) devices of the x86 machine, one file each, created in
 * the order of the table in platform.c. */
#ifndef CVIRT_VMM_HW_PLATFORM_H
#define CVIRT_VMM_HW_PLATFORM_H

#include <stdint.h>

#include "util/err.h"

struct vm;
struct snapbuf;

struct platform_dev_ops {
    const char *name;
    /* Allocates the state, registers its ranges on vm->pio / vm->mmio.
     * Called once per process, before the first vm_setup(). */
    int (*create)(struct vm *vm, void **state, struct err *e);
    /* Back to the power-on state after a guest reset; CMOS RAM survives,
     * as on real hardware. May be NULL. */
    void (*reset)(void *state);
    void (*destroy)(void *state);
    /* Save/restore (snapshot/stream.h); both NULL for a device with no
     * state beyond its power-on one. load runs on a created device before
     * any vCPU runs, after the irqchip state is back, and must check
     * everything it reads: the state comes from a file or a peer. */
    void (*save)(void *state, struct snapbuf *b);
    int (*load)(void *state, struct snapbuf *b, struct err *e);
};

extern const struct platform_dev_ops serial_dev_ops;   /* 8250 UART on COM1 */
extern const struct platform_dev_ops i8042_dev_ops;    /* reset line, A20 */
extern const struct platform_dev_ops rtc_dev_ops;      /* MC146818 CMOS RTC */
extern const struct platform_dev_ops acpi_pm_dev_ops;  /* PM1a, PM timer, GPE0, 0xcf9 */
extern const struct platform_dev_ops port_misc_dev_ops;/* POST port 0x80 and friends */

#define PLATFORM_MAX_DEVS 16

int platform_create_all(struct vm *vm, struct err *e);
void platform_reset_all(struct vm *vm);
void platform_destroy_all(struct vm *vm);
/* One snapshot section per device with a save op (instance: its table
 * index), and the loader for such a section. */
void platform_save_all(struct vm *vm, struct snapbuf *b, uint32_t tag);
int platform_load(struct vm *vm, uint32_t instance, struct snapbuf *body, struct err *e);

#endif
