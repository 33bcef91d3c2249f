/* Inside the PCI bus module: the bus itself, shared by pci.c (devices,
 * config space, BARs, INTx, hotplug) and pci_save.c (save/restore). */
#ifndef CVIRT_VMM_PCI_PCI_INT_H
#define CVIRT_VMM_PCI_PCI_INT_H

#include "pci/pci.h"
#include "x86/layout.h"

struct pci_bus {
    struct vm *vm;
    uint64_t win_base, win_size;
    pthread_rwlock_t lock;
    struct pci_dev *devs[PCI_MAX_SLOTS];
    /* Slots kept for a device that asked for one by number, so that the
     * devices placed in the first free slot before it go elsewhere. */
    uint32_t reserved;
    /* INTx: a separate lock because devices raise their pin from the
     * event loop and from inside BAR accesses (bus lock held for reading).
     * Order: bus lock, then the device's own lock, then this one. */
    pthread_mutex_t intx_lock;
    uint32_t intx_slots[LAYOUT_PCI_INTX_LINES];  /* slots driving each line */
    bool intx_line[LAYOUT_PCI_INTX_LINES];       /* as told to the irqchip */
    /* Hotplug events the guest has not taken yet, a bit per slot; under
     * the bus lock. */
    uint32_t hp_up, hp_down;
};

/* Recomputes where each BAR of d is decoded and tells the device about
 * moves. Bus lock held for writing. */
void pci_dev_remap(struct pci_dev *d);
/* The command register's Interrupt Disable bit as the guest left it. */
void pci_dev_intx_disable(struct pci_dev *d, bool disabled);

#endif
