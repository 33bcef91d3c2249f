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
void virtio_pci_destroy(struct virtio_pci *vp);

#endif
