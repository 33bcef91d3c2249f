/* Inside the virtio PCI transport: the device state shared by pci.c (the
 * transport) and pci_hot.c (functions the guest may eject). */
#ifndef CVIRT_VMM_VIRTIO_PCI_INT_H
#define CVIRT_VMM_VIRTIO_PCI_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"
#include "virtio/virtio.h"

struct evloop;
struct pci_bus;
struct pci_dev;
struct vm;

struct virtio_pci;

struct vp_queue {
    struct virtio_pci *vp;
    unsigned index;
    uint16_t size, vector;
    bool enabled;
    uint64_t desc, driver, device;
    int efd;
    uint64_t ioeventfd_gpa;     /* where KVM watches for us, 0 if nowhere */
    unsigned ioeventfd_len;
};

struct virtio_pci {
    struct virtio_dev vd;
    struct pci_dev *pdev;
    struct vm *vm;
    struct evloop *loop;
    uint32_t dfselect, gfselect;
    uint16_t msix_config, queue_select;
    uint8_t isr;
    uint8_t cfg_cap;            /* offset of the PCI configuration access capability */
    uint64_t bar_gpa;           /* where BAR 0 is decoded, 0 when not */
    struct vp_queue q[VIRTIO_MAX_QUEUES];
    /* A function added at run time: the guest's eject signals gone_efd
     * and the event loop destroys the model, then tells its owner. */
    int gone_efd;
    void (*gone)(void *opaque);
    void *gone_opaque;
};

enum vp_kind {
    VP_COLD,          /* made at start, never unplugged */
    VP_HOT,           /* added at run time: hidden until announced */
    VP_UNPLUGGABLE,   /* made at start, visible at once, ejectable later */
};

/* The model, its notification eventfds and its PCI function in slot
 * (0: the first free; hidden for VP_HOT); on failure nothing is left
 * behind. */
int virtio_pci_build(struct virtio_pci **out, struct pci_bus *bus, struct evloop *loop,
                     const struct virtio_dev_ops *ops, const char *arg, unsigned slot,
                     enum vp_kind kind, struct err *e);
/* Binds MSI-X and the notify ioeventfds on the current KVM VM (a setup
 * hook's shape). */
int virtio_pci_bind(void *opaque, struct err *e);

#endif
