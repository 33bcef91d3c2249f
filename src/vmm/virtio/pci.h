/* virtio over PCI, modern interface only (virtio 1.x, 4.1): one PCI
 * function per device, its registers in a memory BAR, MSI-X interrupts
 * (INTx when the driver leaves MSI-X off),
 * queue notifications through KVM ioeventfds handled on the event loop. */
#ifndef CVIRT_VMM_VIRTIO_PCI_H
#define CVIRT_VMM_VIRTIO_PCI_H

#include "util/err.h"

struct evloop;
struct pci_bus;
struct virtio_dev_ops;
struct virtio_pci;

/* Creates the device model (ops->create with arg) and its PCI function on
 * bus. Call before pci_bus_assign. */
int virtio_pci_create(struct virtio_pci **out, struct pci_bus *bus, struct evloop *loop,
                      const struct virtio_dev_ops *ops, const char *arg, struct err *e);
/* The same in PCI slot `slot` on bus 0 (0: the first free). */
int virtio_pci_create_at(struct virtio_pci **out, struct pci_bus *bus, struct evloop *loop,
                         const struct virtio_dev_ops *ops, const char *arg, unsigned slot,
                         struct err *e);
void virtio_pci_destroy(struct virtio_pci *vp);

/* A device present from power-on (before pci_bus_assign, slot as above)
 * that the guest may eject later, as one from virtio_pci_hotplug: gone,
 * virtio_pci_unplug and virtio_pci_attach (no setup hook of its own, so
 * the owner's runs for the first vm_setup too) work the same way. QEMU's
 * -device on a hotpluggable bus. */
int virtio_pci_create_unpluggable(struct virtio_pci **out, struct pci_bus *bus,
                                  struct evloop *loop, const struct virtio_dev_ops *ops,
                                  const char *arg, unsigned slot, void (*gone)(void *opaque),
                                  void *opaque, struct err *e);

/* Run-time addition on the live VM (event-loop thread, guest running or
 * paused): the model and a hidden PCI function with its BARs and
 * capabilities, MSI-X bound on the current KVM VM, then announced to the
 * guest with pci_hotplug_add (the hotplug GPE), in `slot` (0: the first
 * free one). When the guest ejects it
 * (or a reset completes a pending removal), the event loop destroys the
 * device, blk's in-flight requests drained, then calls gone(opaque).
 * The owner calls virtio_pci_attach for each such device after every
 * vm_setup (one setup hook for all: hooks cannot be removed) and
 * virtio_pci_destroy for those left at exit, before pci_bus_destroy. */
int virtio_pci_hotplug(struct virtio_pci **out, struct pci_bus *bus, struct evloop *loop,
                       const struct virtio_dev_ops *ops, const char *arg, unsigned slot,
                       void (*gone)(void *opaque), void *opaque, struct err *e);
/* Asks the guest to eject a device from virtio_pci_hotplug: -EALREADY when
 * a removal is pending or done, -EOPNOTSUPP for a device made at start. */
int virtio_pci_unplug(struct virtio_pci *vp, struct err *e);
/* Binds the eventfds on the KVM VM vm_setup just made; a no-op once
 * ejected. */
int virtio_pci_attach(struct virtio_pci *vp, struct err *e);
/* The PCI slot on bus 0, -1 once ejected. */
int virtio_pci_slot(const struct virtio_pci *vp);

#endif
