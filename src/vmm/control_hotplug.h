/* Disk hotplug over the control socket: blockdev-add, blockdev-del,
 * device_add and device_del (virtio-blk-pci on bus 0, ACPI PCI hotplug),
 * with DEVICE_DELETED once the guest has ejected the device. */
#ifndef CVIRT_VMM_CONTROL_HOTPLUG_H
#define CVIRT_VMM_CONTROL_HOTPLUG_H

#include "util/err.h"

struct control;
struct evloop;
struct vm;

/* Registers the four commands and query-pci on c and a setup hook on vm (hot-added
 * devices bind their eventfds again after each guest reset). The state
 * lives until control_hotplug_fini. Devices go on vm->pci, looked up at
 * each device_add: a machine without a PCI bus refuses them. */
int control_hotplug_register(struct control *c, struct vm *vm, struct evloop *loop,
                             struct err *e);
/* How many hot-added devices the VM has now (pending removals included);
 * 0 when never registered. A snapshot of the VM does not describe them,
 * so save and migration should refuse while this is not 0. Loop thread. */
unsigned control_hotplug_count(const struct vm *vm);
/* Destroys the hot-added devices still present and frees the state; a
 * no-op when never registered. Call once the VM will not run again and
 * before pci_bus_destroy (their I/O threads may still raise interrupts
 * through their PCI functions until then). */
void control_hotplug_fini(struct vm *vm);

#endif
