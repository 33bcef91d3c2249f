/* PCI bus 0 behind the host bridge: device registry, type 0 config space,
 * memory BARs placed in the PCI MMIO window, capability lists and MSI-X.
 *
 * Threads: config-space and BAR accesses arrive on vCPU threads. The bus
 * read-write lock guards the device table and the BAR map (config writes
 * that move a BAR take it for writing, BAR accesses for reading); device
 * code called from a BAR access takes its own lock. */
#ifndef CVIRT_VMM_PCI_PCI_H
#define CVIRT_VMM_PCI_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

struct vm;
struct msix;
struct pci_bus;
struct snapbuf;

#define PCI_MAX_SLOTS   32     /* devices 0..31 on bus 0, function 0 each */
#define PCI_CFG_SIZE    256    /* conventional config space; ECAM reads 0 above */
#define PCI_NUM_BARS    6

/* Config space offsets */
#define PCI_VENDOR_ID        0x00
#define PCI_DEVICE_ID        0x02
#define PCI_COMMAND          0x04
#define PCI_STATUS           0x06
#define PCI_REVISION_ID      0x08
#define PCI_CLASS_PROG       0x09
#define PCI_HEADER_TYPE      0x0e
#define PCI_BAR0             0x10
#define PCI_SUBSYSTEM_VENDOR 0x2c
#define PCI_SUBSYSTEM_ID     0x2e
#define PCI_CAP_PTR          0x34
#define PCI_INTERRUPT_LINE   0x3c
#define PCI_INTERRUPT_PIN    0x3d

#define PCI_COMMAND_MEMORY   0x0002
#define PCI_COMMAND_MASTER   0x0004
#define PCI_COMMAND_INTX_OFF 0x0400
#define PCI_STATUS_CAP_LIST  0x0010
#define PCI_STATUS_INTX      0x0008

#define PCI_INTX_PIN_A       1     /* Interrupt Pin values: 0 none, 1..4 INTA#..INTD# */

#define PCI_BAR_MEM64        0x04
#define PCI_BAR_PREFETCH     0x08

#define PCI_CAP_ID_MSIX      0x11
#define PCI_CAP_ID_VNDR      0x09

/* What a device model supplies. All callbacks run on vCPU threads with the
 * bus lock held (for reading for BAR accesses, for writing otherwise). */
struct pci_dev_ops {
    /* A guest access to a memory BAR the device owns; offset is into the
     * BAR, len 1, 2, 4 or 8. Reads must fill data. */
    void (*bar_read)(void *opaque, unsigned bar, uint64_t offset, uint8_t *data, unsigned len);
    void (*bar_write)(void *opaque, unsigned bar, uint64_t offset, const uint8_t *data,
                      unsigned len);
    /* Where the guest sees a BAR changed: gpa is 0 while the BAR is not
     * decoded (memory decoding off or outside the window). May be NULL. */
    void (*bar_moved)(void *opaque, unsigned bar, uint64_t old_gpa, uint64_t gpa);
    /* Reads or writes of config bytes the device claimed with
     * pci_claim_config (e.g. a capability with side effects). The write
     * hook sees the config space after the write; the read hook may
     * refresh cfg[] before the bytes are returned. May be NULL. */
    void (*config_read)(void *opaque, unsigned offset, unsigned len);
    void (*config_write)(void *opaque, unsigned offset, unsigned len);
    /* Machine reset: the device model's own power-on state (its PCI
     * config space is reset by the bus). vCPUs are stopped. May be NULL. */
    void (*reset)(void *opaque);
    /* The function left the bus: the guest ejected its slot (a vCPU
     * thread) or a machine reset completed a pending removal (vCPUs
     * stopped). Its BARs were reported unmapped and INTx lowered; the
     * struct pci_dev is freed when this returns, so the owner must drop
     * its pointer and tear its model down (possibly later, on its own
     * thread). No bus lock is held. May be NULL. */
    void (*unplugged)(void *opaque);
    /* Save/restore of the model's own state (snapshot/stream.h); the bus
     * saves config space, BAR addresses, INTx and MSI-X. load runs after
     * those are back (BARs decoded where the guest put them, vectors
     * routed). quiesce(true) stops the model taking new work and waits for
     * what is in flight; quiesce(false) lets it go on. Each may be NULL. */
    void (*save)(void *opaque, struct snapbuf *b);
    int (*load)(void *opaque, struct snapbuf *b, struct err *e);
    void (*quiesce)(void *opaque, bool on);
};

struct pci_bar {
    uint64_t size;     /* power of two, 0 when unused */
    uint64_t addr;     /* programmed address (bits above the size mask) */
    uint64_t mapped;   /* gpa the guest sees now, 0 when not decoded */
    bool mem64;        /* takes two BAR slots */
    bool prefetch;
};

struct pci_dev {
    struct pci_bus *bus;
    unsigned slot;
    const char *name;
    uint8_t cfg[PCI_CFG_SIZE];
    uint8_t wmask[PCI_CFG_SIZE];   /* bits the guest may write */
    uint8_t w1c[PCI_CFG_SIZE];     /* bits a guest write of 1 clears */
    uint8_t claimed[PCI_CFG_SIZE]; /* bytes routed to config_read/write */
    struct pci_bar bars[PCI_NUM_BARS];
    unsigned cap_end;              /* next free config offset for a capability */
    uint8_t last_cap;              /* offset of the last capability, 0 if none */
    struct msix *msix;
    int msix_bar;                  /* -1 when no MSI-X */
    uint8_t msix_cap;              /* config offset of its capability */
    uint32_t msix_pba_off;
    /* INTx, under the bus's intx lock: what the device asks for, whether
     * the command register lets it through, and what it drives now. */
    bool intx_level, intx_disabled, intx_out;
    bool hidden;                   /* not yet announced: config reads all-ones */
    const struct pci_dev_ops *ops;
    void *opaque;
};

/* The identity of a function: what lspci shows. */
struct pci_id {
    uint16_t vendor, device;
    uint16_t subsys_vendor, subsys;
    uint8_t revision;
    uint32_t class_code;   /* base << 16 | sub << 8 | prog-if */
};

/* Creates the empty bus with the host bridge at 00:00.0. Window is the
 * guest-physical range BARs are placed in. Does not touch vm->pio/mmio;
 * pci_host_create does. */
int pci_bus_create(struct pci_bus **out, struct vm *vm, uint64_t win_base, uint64_t win_size,
                   struct err *e);
void pci_bus_destroy(struct pci_bus *bus);

/* Adds a device in the first free slot with its identity; BARs and
 * capabilities follow, then pci_dev_realize places the BARs. */
int pci_dev_add(struct pci_bus *bus, struct pci_dev **out, const char *name,
                const struct pci_id *id, const struct pci_dev_ops *ops, void *opaque,
                struct err *e);
/* The same in a given slot (1..31; 0 is the first free one as above):
 * -EINVAL out of range, -EBUSY when taken (the message names the slot and
 * its device). A slot asked for this way may have been reserved first. */
int pci_dev_add_at(struct pci_bus *bus, struct pci_dev **out, unsigned slot, const char *name,
                   const struct pci_id *id, const struct pci_dev_ops *ops, void *opaque,
                   struct err *e);
/* Keeps slot free for a later pci_dev_add_at: pci_dev_add and
 * pci_dev_add_hidden (device_add) pass it over. -EINVAL out of range,
 * -EBUSY when taken or already reserved; name is the asker, for the
 * message. */
int pci_bus_reserve_slot(struct pci_bus *bus, unsigned slot, const char *name, struct err *e);
/* The same for a device added while the guest runs: it takes a slot but
 * stays invisible (config reads all-ones, BARs decode nothing) while the
 * caller declares its BARs and capabilities, until pci_hotplug_add
 * announces it, so a guest scanning the bus never sees half a function. */
int pci_dev_add_hidden(struct pci_bus *bus, struct pci_dev **out, const char *name,
                       const struct pci_id *id, const struct pci_dev_ops *ops, void *opaque,
                       struct err *e);
/* The same in a given slot, checked as pci_dev_add_at's. */
int pci_dev_add_hidden_at(struct pci_bus *bus, struct pci_dev **out, unsigned slot,
                          const char *name, const struct pci_id *id,
                          const struct pci_dev_ops *ops, void *opaque, struct err *e);
/* Takes a device off the bus again (for a device whose creation failed
 * after pci_dev_add) and frees it. */
void pci_dev_remove(struct pci_dev *d);
/* Declares memory BAR n (size a power of two, at least 4 KiB is advised). */
int pci_dev_set_bar(struct pci_dev *d, unsigned n, uint64_t size, bool mem64, bool prefetch,
                    struct err *e);
/* Appends a capability of len bytes (including id and next) and returns its
 * config offset, or -ENOSPC. The caller fills cfg[] and wmask[]. */
int pci_dev_add_cap(struct pci_dev *d, uint8_t id, unsigned len);
/* Routes config bytes [off, off+len) to the device's config hooks. */
void pci_dev_claim_config(struct pci_dev *d, unsigned off, unsigned len);
/* Adds an MSI-X capability with nvec vectors whose table and PBA live in
 * BAR n (which this declares, 32-bit, 4 KiB or more). */
int pci_dev_add_msix(struct pci_dev *d, unsigned nvec, unsigned bar, struct err *e);
/* Places every BAR in the window as firmware would and turns memory
 * decoding on; called once all devices are added and on every reset. */
int pci_bus_assign(struct pci_bus *bus, struct err *e);
/* Power-on state for every device's PCI part (BARs re-placed, MSI-X off);
 * the device models reset their own state. vCPUs are stopped. */
void pci_bus_reset(struct pci_bus *bus);

/* Type 0 config access for bus 0 (other buses read all-ones). The host
 * bridge front ends (0xcf8/0xcfc, ECAM) call these. */
void pci_config_read(struct pci_bus *bus, unsigned busno, unsigned devfn, unsigned off,
                     uint8_t *data, unsigned len);
void pci_config_write(struct pci_bus *bus, unsigned busno, unsigned devfn, unsigned off,
                      const uint8_t *data, unsigned len);
/* A guest access to the PCI MMIO window; false when no BAR decodes it. */
bool pci_mmio_read(struct pci_bus *bus, uint64_t gpa, uint8_t *data, unsigned len);
bool pci_mmio_write(struct pci_bus *bus, uint64_t gpa, const uint8_t *data, unsigned len);

/* INTx (the fallback when the driver leaves MSI-X off). A device raises
 * or lowers its pin with pci_dev_set_intx, from any thread, without the
 * bus lock; the status register's Interrupt Status bit follows the
 * request and the command register's Interrupt Disable bit keeps it off
 * the line. Each of the four lines is the OR of every device on it and
 * drives a level-triggered IOAPIC pin (layout_pci_intx_gsi). */
void pci_dev_set_intx(struct pci_dev *d, bool level);
/* The GSI the device's pin is wired to; -1 when it has no pin. */
int pci_dev_intx_gsi(const struct pci_dev *d);
/* Line i (0..3, GSI LAYOUT_GSI_PCI_INTX + i) as last driven. */
bool pci_bus_intx_line(struct pci_bus *bus, unsigned i);

/* ACPI PCI hotplug (the scheme of QEMU's piix4 "acpi-pci-hotplug"): the
 * DSDT declares every slot 1..31 with _ADR, _SUN and _EJ0, and a GPE
 * method that reads two bitmaps from the register block at
 * LAYOUT_PORT_PCI_HOTPLUG and notifies the slots: "up" (device check,
 * read clears it) and "down" (eject request, kept until the eject). The
 * guest's _EJ0 writes the slot's bit to the eject register, which takes
 * the function off the bus (ops->unplugged). Only functions whose model
 * has ops->unplugged are hotpluggable; the guest's eject of any other
 * slot is ignored.
 *
 * Slot states: empty, present, inserting (added, the guest has not read
 * "up" yet), removing (removal requested, waiting for _EJ0). A guest may
 * also eject a present slot on its own (Linux: slots/N/power). A reset
 * completes pending removals and forgets pending insertions (the guest
 * enumerates the bus again). */
enum pci_slot_state {
    PCI_SLOT_EMPTY,
    PCI_SLOT_PRESENT,
    PCI_SLOT_INSERTING,
    PCI_SLOT_REMOVING,
};
/* Announces d, added with pci_dev_add_hidden (or pci_dev_add) and fully
 * declared, and raises the hotplug GPE; its BARs are left for the guest
 * to place. -EINVAL for the host
 * bridge or a device not on bus, -EOPNOTSUPP for a model without
 * ops->unplugged, -EBUSY while its slot has a hotplug event pending. */
int pci_hotplug_add(struct pci_bus *bus, struct pci_dev *d, struct err *e);
/* Asks the guest to eject d and raises the GPE; d stays on the bus until
 * the guest's _EJ0 (or a reset). -EINVAL as above or for a device never
 * announced, -EALREADY when a removal is already pending. A hidden
 * device reads as an empty slot in pci_hotplug_slot_state. */
int pci_hotplug_remove(struct pci_bus *bus, struct pci_dev *d, struct err *e);
enum pci_slot_state pci_hotplug_slot_state(struct pci_bus *bus, unsigned slot);
/* The register block (dword accesses at 0, 4, 8), for the host bridge. */
void pci_hotplug_read(struct pci_bus *bus, unsigned off, uint8_t *data, unsigned len);
void pci_hotplug_write(struct pci_bus *bus, unsigned off, const uint8_t *data, unsigned len);

/* Save/restore of every function on the bus and of the hotplug events
 * the guest has not taken (vCPUs stopped; pci_save.c). load wants the
 * same functions in the same slots (a disk added at run time comes back
 * from --disk ...,slot=N) and names the first difference. */
void pci_bus_save(struct pci_bus *bus, struct snapbuf *b);
int pci_bus_load(struct pci_bus *bus, struct snapbuf *b, struct err *e);
/* ops->quiesce of every function. */
void pci_bus_quiesce(struct pci_bus *bus, bool on);

struct vm *pci_bus_vm(struct pci_bus *bus);
struct pci_dev *pci_bus_dev(struct pci_bus *bus, unsigned slot);

/* Little-endian config helpers. */
static inline void pci_set16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void pci_set32(uint8_t *p, uint32_t v)
{
    pci_set16(p, (uint16_t)v);
    pci_set16(p + 2, (uint16_t)(v >> 16));
}
static inline uint16_t pci_get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t pci_get32(const uint8_t *p)
{
    return (uint32_t)pci_get16(p) | (uint32_t)pci_get16(p + 2) << 16;
}

/* The host bridge front ends on vm->pio (0xcf8-0xcff, with byte accesses
 * at 0xcf9 forwarded to the reset control register) and vm->mmio (ECAM for
 * buses 0..end_bus, and the PCI MMIO window). */
struct pci_host;
int pci_host_create(struct pci_host **out, struct vm *vm, struct pci_bus *bus,
                    uint64_t ecam_base, unsigned ecam_end_bus, struct err *e);
void pci_host_destroy(struct pci_host *h);

#endif
