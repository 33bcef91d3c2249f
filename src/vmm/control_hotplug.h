/* Disk hotplug over the control socket: blockdev-add, blockdev-del,
 * device_add and device_del (virtio-blk-pci on bus 0, ACPI PCI hotplug),
 * with DEVICE_DELETED once the guest has ejected the device. */
#ifndef CVIRT_VMM_CONTROL_HOTPLUG_H
#define CVIRT_VMM_CONTROL_HOTPLUG_H

#include "util/err.h"

struct control;
struct evloop;
struct vm;

#include <stdbool.h>

#define CONTROL_HP_NAME_MAX 32          /* an id or node name with its NUL */
#define CONTROL_HP_ARG_MAX  (4096 + 160) /* a virtio-blk option string */

/* A --disk argument: PATH[,format=raw|qcow2][,readonly=on|off]
 * [,cache=none|writeback][,serial=TEXT][,aio=threads|io_uring][,slot=N][,id=ID]
 * [,node=NAME]. slot= places it in PCI slot N (1..31) of bus 0; id= makes
 * it a device the guest may eject (device_del ID, query-pci's qdev_id)
 * whose drive is the node NAME, or ID without node= (blockdev-del it once
 * the device is gone). */
struct control_hotplug_disk {
    unsigned slot;                      /* 0: the first free one */
    char id[CONTROL_HP_NAME_MAX];       /* "" without id= */
    char node[CONTROL_HP_NAME_MAX];     /* "" without node= */
    /* The options for virtio-blk in one spelling (defaults left out, the
     * rest in the order above, options this parser does not know kept at
     * the end as given): equal strings, equal disks. */
    char blk[CONTROL_HP_ARG_MAX];
    char path[4096];
    char format[8];
    bool ro, direct;
};
/* Parses arg; -EINVAL with e naming the option at fault ("--disk PATH:
 * slot=40: ...") for a bad slot= or id= or a malformed known option. */
int control_hotplug_disk_parse(const char *arg, struct control_hotplug_disk *d, struct err *e);

/* Registers the four commands and query-pci on c (none when c is NULL:
 * a machine with --disk ...,id= but no control) and a setup hook on vm (hot-added
 * devices bind their eventfds again after each guest reset). The state
 * lives until control_hotplug_fini. Devices go on vm->pci, looked up at
 * each device_add: a machine without a PCI bus refuses them. */
int control_hotplug_register(struct control *c, struct vm *vm, struct evloop *loop,
                             struct err *e);
/* Makes a --disk with an id (d->id set) as an ejectable function on
 * vm->pci, before pci_bus_assign; it joins the devices added at run time.
 * Needs control_hotplug_register first (with or without a control). */
int control_hotplug_add_disk(struct vm *vm, const struct control_hotplug_disk *d,
                             struct err *e);
/* The --disk values that rebuild the ejectable disks present now (added at
 * run time or from --disk ...,id=; one whose removal is pending counts as
 * present, as QEMU migrates it), in slot order: "BLK,slot=N,id=ID" and
 * ",node=NAME" when its node is not named ID, BLK as in struct
 * control_hotplug_disk. A malloc'd array of malloc'd strings in
 * *out, their count in *n; 0 strings when never registered. */
int control_hotplug_disk_args(const struct vm *vm, char ***out, unsigned *n, struct err *e);
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
