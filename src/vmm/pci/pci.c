/* PCI bus 0: config space semantics (read-only, writable and
 * write-one-to-clear bits), BAR sizing and placement, capabilities and the
 * dispatch of the PCI MMIO window to whichever BAR decodes an address. */
#include "pci/pci.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hw/acpi_pm.h"
#include "pci/msix.h"
#include "pci/pci_int.h"
#include "util/log.h"
#include "vm.h"
#include "x86/layout.h"


/* The host bridge: an identity and nothing else. Linux is content with
 * any bridge class; this one says "host bridge". */
static const struct pci_id host_bridge_id = {
    .vendor = 0x1b36, .device = 0x0008, .subsys_vendor = 0x1b36, .subsys = 0x0008,
    .class_code = 0x060000,
};

int pci_bus_create(struct pci_bus **out, struct vm *vm, uint64_t win_base, uint64_t win_size,
                   struct err *e)
{
    struct pci_bus *bus = calloc(1, sizeof(*bus));
    if (!bus)
        return err_set(e, ENOMEM, "out of memory");
    bus->vm = vm;
    bus->win_base = win_base;
    bus->win_size = win_size;
    pthread_rwlock_init(&bus->lock, NULL);
    pthread_mutex_init(&bus->intx_lock, NULL);
    struct pci_dev *hb;
    int r = pci_dev_add(bus, &hb, "host bridge", &host_bridge_id, NULL, NULL, e);
    if (r < 0) {
        pci_bus_destroy(bus);
        return r;
    }
    /* The bridge never interrupts. */
    hb->cfg[PCI_INTERRUPT_PIN] = 0;
    hb->cfg[PCI_INTERRUPT_LINE] = 0;
    *out = bus;
    return 0;
}

void pci_bus_destroy(struct pci_bus *bus)
{
    if (!bus)
        return;
    for (unsigned i = 0; i < PCI_MAX_SLOTS; i++) {
        if (bus->devs[i]) {
            msix_destroy(bus->devs[i]->msix);
            free(bus->devs[i]);
        }
    }
    pthread_rwlock_destroy(&bus->lock);
    pthread_mutex_destroy(&bus->intx_lock);
    free(bus);
}

struct vm *pci_bus_vm(struct pci_bus *bus) { return bus->vm; }

struct pci_dev *pci_bus_dev(struct pci_bus *bus, unsigned slot)
{
    return slot < PCI_MAX_SLOTS ? bus->devs[slot] : NULL;
}

/* Slot 0 is the host bridge's, made with the bus. */
static int slot_check(struct pci_bus *bus, unsigned slot, const char *name, struct err *e)
{
    if (slot < 1 || slot >= PCI_MAX_SLOTS)
        return err_set(e, EINVAL, "%s: PCI slot %u is out of range (1 to %d)", name, slot,
                       PCI_MAX_SLOTS - 1);
    if (bus->devs[slot])
        return err_set(e, EBUSY, "%s: PCI slot %u is taken by %s", name, slot,
                       bus->devs[slot]->name);
    return 0;
}

int pci_bus_reserve_slot(struct pci_bus *bus, unsigned slot, const char *name, struct err *e)
{
    int r = slot_check(bus, slot, name, e);
    if (r == 0 && (bus->reserved >> slot & 1))
        r = err_set(e, EBUSY, "%s: PCI slot %u is already asked for", name, slot);
    if (r == 0)
        bus->reserved |= 1u << slot;
    return r;
}

/* want: the slot asked for, or 0 for the first one neither taken nor
 * reserved. */
static int dev_add(struct pci_bus *bus, struct pci_dev **out, unsigned want, const char *name,
                   const struct pci_id *id, const struct pci_dev_ops *ops, void *opaque,
                   bool hidden, struct err *e)
{
    unsigned slot = want;
    if (want) {
        int r = slot_check(bus, want, name, e);
        if (r < 0)
            return r;
    } else {
        while (slot < PCI_MAX_SLOTS && (bus->devs[slot] || (bus->reserved >> slot & 1)))
            slot++;
        if (slot == PCI_MAX_SLOTS)
            return err_set(e, ENOSPC, "%s: no free PCI slot (at most %d devices)", name,
                           PCI_MAX_SLOTS);
    }
    struct pci_dev *d = calloc(1, sizeof(*d));
    if (!d)
        return err_set(e, ENOMEM, "out of memory");
    d->bus = bus;
    d->slot = slot;
    d->name = name;
    d->ops = ops;
    d->opaque = opaque;
    d->msix_bar = -1;
    d->cap_end = 0x40;
    pci_set16(&d->cfg[PCI_VENDOR_ID], id->vendor);
    pci_set16(&d->cfg[PCI_DEVICE_ID], id->device);
    d->cfg[PCI_REVISION_ID] = id->revision;
    d->cfg[PCI_CLASS_PROG] = (uint8_t)id->class_code;
    d->cfg[PCI_CLASS_PROG + 1] = (uint8_t)(id->class_code >> 8);
    d->cfg[PCI_CLASS_PROG + 2] = (uint8_t)(id->class_code >> 16);
    pci_set16(&d->cfg[PCI_SUBSYSTEM_VENDOR], id->subsys_vendor);
    pci_set16(&d->cfg[PCI_SUBSYSTEM_ID], id->subsys);
    pci_set16(&d->wmask[PCI_COMMAND], PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
                                      PCI_COMMAND_INTX_OFF);
    /* Error bits of the status register are write-one-to-clear. */
    pci_set16(&d->w1c[PCI_STATUS], 0xf900);
    d->wmask[PCI_INTERRUPT_LINE] = 0xff;
    /* Single-function devices use INTA#, as on real boards; the slot
     * rotates it onto one of the four lines. The Interrupt Line is what
     * firmware would leave there: the IOAPIC input (no firmware runs). */
    d->cfg[PCI_INTERRUPT_PIN] = PCI_INTX_PIN_A;
    d->cfg[PCI_INTERRUPT_LINE] = (uint8_t)layout_pci_intx_gsi(slot, 0);
    d->hidden = hidden;
    pthread_rwlock_wrlock(&bus->lock);
    bus->devs[slot] = d;
    bus->reserved &= ~(1u << slot);
    pthread_rwlock_unlock(&bus->lock);
    *out = d;
    return 0;
}

int pci_dev_add(struct pci_bus *bus, struct pci_dev **out, const char *name,
                const struct pci_id *id, const struct pci_dev_ops *ops, void *opaque,
                struct err *e)
{
    return dev_add(bus, out, 0, name, id, ops, opaque, false, e);
}

int pci_dev_add_at(struct pci_bus *bus, struct pci_dev **out, unsigned slot, const char *name,
                   const struct pci_id *id, const struct pci_dev_ops *ops, void *opaque,
                   struct err *e)
{
    return dev_add(bus, out, slot, name, id, ops, opaque, false, e);
}

int pci_dev_add_hidden(struct pci_bus *bus, struct pci_dev **out, const char *name,
                       const struct pci_id *id, const struct pci_dev_ops *ops, void *opaque,
                       struct err *e)
{
    return dev_add(bus, out, 0, name, id, ops, opaque, true, e);
}

int pci_dev_add_hidden_at(struct pci_bus *bus, struct pci_dev **out, unsigned slot,
                          const char *name, const struct pci_id *id,
                          const struct pci_dev_ops *ops, void *opaque, struct err *e)
{
    return dev_add(bus, out, slot, name, id, ops, opaque, true, e);
}

void pci_dev_remove(struct pci_dev *d)
{
    if (!d)
        return;
    struct pci_bus *bus = d->bus;
    pci_dev_set_intx(d, false);
    pthread_rwlock_wrlock(&bus->lock);
    bus->devs[d->slot] = NULL;
    pthread_rwlock_unlock(&bus->lock);
    msix_destroy(d->msix);
    free(d);
}

int pci_dev_set_bar(struct pci_dev *d, unsigned n, uint64_t size, bool mem64, bool prefetch,
                    struct err *e)
{
    if (n >= PCI_NUM_BARS || (mem64 && n + 1 >= PCI_NUM_BARS))
        return err_set(e, EINVAL, "%s: no BAR %u", d->name, n);
    if (size < 16 || (size & (size - 1)) || (!mem64 && size > (1ULL << 31)))
        return err_set(e, EINVAL, "%s: BAR %u size %#llx is not a power of two from 16",
                       d->name, n, (unsigned long long)size);
    if (d->bars[n].size || (n > 0 && d->bars[n - 1].mem64) || (mem64 && d->bars[n + 1].size))
        return err_set(e, EBUSY, "%s: BAR %u is already in use", d->name, n);
    d->bars[n] = (struct pci_bar){ .size = size, .mem64 = mem64, .prefetch = prefetch };
    uint32_t flags = (mem64 ? PCI_BAR_MEM64 : 0) | (prefetch ? PCI_BAR_PREFETCH : 0);
    uint64_t mask = ~(size - 1);
    pci_set32(&d->cfg[PCI_BAR0 + 4 * n], flags);
    pci_set32(&d->wmask[PCI_BAR0 + 4 * n], (uint32_t)mask & ~0xfu);
    if (mem64)
        pci_set32(&d->wmask[PCI_BAR0 + 4 * (n + 1)], (uint32_t)(mask >> 32));
    return 0;
}

int pci_dev_add_cap(struct pci_dev *d, uint8_t id, unsigned len)
{
    unsigned off = d->cap_end;
    if (len < 2 || off + len > PCI_CFG_SIZE)
        return -ENOSPC;
    d->cfg[off] = id;
    d->cfg[off + 1] = 0;
    if (d->last_cap)
        d->cfg[d->last_cap + 1] = (uint8_t)off;
    else
        d->cfg[PCI_CAP_PTR] = (uint8_t)off;
    d->last_cap = (uint8_t)off;
    d->cap_end = (off + len + 3) & ~3u;
    pci_set16(&d->cfg[PCI_STATUS], pci_get16(&d->cfg[PCI_STATUS]) | PCI_STATUS_CAP_LIST);
    return (int)off;
}

void pci_dev_claim_config(struct pci_dev *d, unsigned off, unsigned len)
{
    for (unsigned i = off; i < off + len && i < PCI_CFG_SIZE; i++)
        d->claimed[i] = 1;
}

int pci_dev_add_msix(struct pci_dev *d, unsigned nvec, unsigned bar, struct err *e)
{
    if (d->msix)
        return err_set(e, EBUSY, "%s: MSI-X already present", d->name);
    uint32_t table_len = nvec * MSIX_ENTRY_SIZE;
    uint32_t pba_off = (table_len + 7) & ~7u;
    uint64_t size = 4096;
    while (size < pba_off + 8)
        size <<= 1;
    int r = pci_dev_set_bar(d, bar, size, false, false, e);
    if (r < 0)
        return r;
    int off = pci_dev_add_cap(d, PCI_CAP_ID_MSIX, 12);
    if (off < 0)
        return err_set(e, ENOSPC, "%s: no room for the MSI-X capability", d->name);
    r = msix_create(&d->msix, d->bus->vm, nvec, e);
    if (r < 0)
        return r;
    pci_set16(&d->cfg[off + 2], (uint16_t)(nvec - 1));
    pci_set16(&d->wmask[off + 2], MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL);
    pci_set32(&d->cfg[off + 4], 0 | bar);
    pci_set32(&d->cfg[off + 8], pba_off | bar);
    d->msix_bar = (int)bar;
    d->msix_cap = (uint8_t)off;
    d->msix_pba_off = pba_off;
    return 0;
}

/* ---- BAR decoding ------------------------------------------------------ */

static uint64_t bar_programmed(const struct pci_dev *d, unsigned n)
{
    uint64_t a = pci_get32(&d->cfg[PCI_BAR0 + 4 * n]) & ~0xfULL;
    if (d->bars[n].mem64)
        a |= (uint64_t)pci_get32(&d->cfg[PCI_BAR0 + 4 * (n + 1)]) << 32;
    return a;
}

/* Recomputes where each BAR is decoded and tells the device about moves.
 * A BAR outside the window (e.g. all-ones while being sized) or with
 * memory decoding off decodes nothing. Bus lock held for writing. */
void pci_dev_remap(struct pci_dev *d)
{
    struct pci_bus *bus = d->bus;
    bool mem_on = pci_get16(&d->cfg[PCI_COMMAND]) & PCI_COMMAND_MEMORY;
    for (unsigned n = 0; n < PCI_NUM_BARS; n++) {
        struct pci_bar *b = &d->bars[n];
        if (!b->size)
            continue;
        uint64_t a = bar_programmed(d, n);
        b->addr = a;
        uint64_t gpa = 0;
        if (mem_on && a >= bus->win_base && a - bus->win_base < bus->win_size &&
            b->size <= bus->win_size - (a - bus->win_base))
            gpa = a;
        if (gpa != b->mapped) {
            uint64_t old = b->mapped;
            b->mapped = gpa;
            if (d->ops && d->ops->bar_moved)
                d->ops->bar_moved(d->opaque, n, old, gpa);
        }
    }
}

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

int pci_bus_assign(struct pci_bus *bus, struct err *e)
{
    pthread_rwlock_wrlock(&bus->lock);
    uint64_t next = bus->win_base;
    int r = 0;
    /* Largest BARs first keeps the natural alignment from wasting space. */
    for (unsigned shift = 63; shift >= 4 && r == 0; shift--) {
        for (unsigned s = 0; s < PCI_MAX_SLOTS && r == 0; s++) {
            struct pci_dev *d = bus->devs[s];
            for (unsigned n = 0; d && n < PCI_NUM_BARS; n++) {
                if (d->bars[n].size != 1ULL << shift)
                    continue;
                uint64_t a = align_up(next, d->bars[n].size);
                if (a - bus->win_base + d->bars[n].size > bus->win_size) {
                    r = err_set(e, ENOSPC, "%s: BAR %u does not fit in the PCI window",
                                d->name, n);
                    break;
                }
                pci_set32(&d->cfg[PCI_BAR0 + 4 * n],
                          (uint32_t)a | (pci_get32(&d->cfg[PCI_BAR0 + 4 * n]) & 0xf));
                if (d->bars[n].mem64)
                    pci_set32(&d->cfg[PCI_BAR0 + 4 * (n + 1)], (uint32_t)(a >> 32));
                next = a + d->bars[n].size;
            }
        }
    }
    for (unsigned s = 0; s < PCI_MAX_SLOTS && r == 0; s++) {
        struct pci_dev *d = bus->devs[s];
        if (!d)
            continue;
        uint16_t cmd = pci_get16(&d->cfg[PCI_COMMAND]);
        pci_set16(&d->cfg[PCI_COMMAND], cmd | PCI_COMMAND_MEMORY);
        pci_dev_remap(d);
    }
    pthread_rwlock_unlock(&bus->lock);
    return r;
}

static void hotplug_eject(struct pci_bus *bus, uint32_t slots);

void pci_bus_reset(struct pci_bus *bus)
{
    /* As if the guest had ejected them: the new boot must not find them. */
    pthread_rwlock_wrlock(&bus->lock);
    uint32_t down = bus->hp_down;
    bus->hp_up = 0;
    pthread_rwlock_unlock(&bus->lock);
    hotplug_eject(bus, down);
    pthread_rwlock_wrlock(&bus->lock);
    for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
        struct pci_dev *d = bus->devs[s];
        if (!d)
            continue;
        pci_set16(&d->cfg[PCI_COMMAND], 0);
        pci_set16(&d->cfg[PCI_STATUS], pci_get16(&d->cfg[PCI_STATUS]) & PCI_STATUS_CAP_LIST);
        if (d->cfg[PCI_INTERRUPT_PIN])
            d->cfg[PCI_INTERRUPT_LINE] = (uint8_t)layout_pci_intx_gsi(s, 0);
        pci_dev_remap(d);
        if (d->msix) {
            uint16_t ctrl = pci_get16(&d->cfg[d->msix_cap + 2]);
            pci_set16(&d->cfg[d->msix_cap + 2], ctrl & ~(MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL));
            msix_reset(d->msix);
        }
    }
    pthread_rwlock_unlock(&bus->lock);
    for (unsigned s = 0; s < PCI_MAX_SLOTS; s++)
        if (bus->devs[s] && bus->devs[s]->ops && bus->devs[s]->ops->reset)
            bus->devs[s]->ops->reset(bus->devs[s]->opaque);
    /* After the devices: none raises its pin again once reset. The
     * irqchip is recreated with every line low, so it is not told. */
    pthread_mutex_lock(&bus->intx_lock);
    for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
        struct pci_dev *d = bus->devs[s];
        if (d)
            d->intx_level = d->intx_disabled = d->intx_out = false;
    }
    memset(bus->intx_slots, 0, sizeof(bus->intx_slots));
    memset(bus->intx_line, 0, sizeof(bus->intx_line));
    pthread_mutex_unlock(&bus->intx_lock);
    if (pci_bus_assign(bus, NULL) < 0)
        log_warn("pci: BARs no longer fit the window after reset");
}

/* ---- INTx --------------------------------------------------------------- */

int pci_dev_intx_gsi(const struct pci_dev *d)
{
    uint8_t pin = d->cfg[PCI_INTERRUPT_PIN];
    if (pin < 1 || pin > 4)
        return -1;
    return (int)layout_pci_intx_gsi(d->slot, pin - 1u);
}

/* Drives the device's output from its request and the Interrupt Disable
 * bit, and the line from every device on it. intx_lock held. */
static void intx_update(struct pci_dev *d)
{
    struct pci_bus *bus = d->bus;
    int gsi = pci_dev_intx_gsi(d);
    bool out = d->intx_level && !d->intx_disabled && gsi >= 0;
    if (out == d->intx_out)
        return;
    d->intx_out = out;
    unsigned line = (unsigned)gsi - LAYOUT_GSI_PCI_INTX;
    if (out)
        bus->intx_slots[line] |= 1u << d->slot;
    else
        bus->intx_slots[line] &= ~(1u << d->slot);
    bool level = bus->intx_slots[line] != 0;
    if (level == bus->intx_line[line])
        return;
    bus->intx_line[line] = level;
    /* No KVM VM (between a reset's teardown and setup, or in tests):
     * the new irqchip starts with the line low anyway. */
    int r = vm_irq_line(bus->vm, (unsigned)gsi, level);
    if (r < 0 && r != -ENODEV)
        log_warn("pci: GSI %d: KVM_IRQ_LINE failed (%d)", gsi, r);
}

void pci_dev_set_intx(struct pci_dev *d, bool level)
{
    pthread_mutex_lock(&d->bus->intx_lock);
    d->intx_level = level;
    intx_update(d);
    pthread_mutex_unlock(&d->bus->intx_lock);
}

void pci_dev_intx_disable(struct pci_dev *d, bool disabled)
{
    pthread_mutex_lock(&d->bus->intx_lock);
    d->intx_disabled = disabled;
    intx_update(d);
    pthread_mutex_unlock(&d->bus->intx_lock);
}

bool pci_bus_intx_line(struct pci_bus *bus, unsigned i)
{
    if (i >= LAYOUT_PCI_INTX_LINES)
        return false;
    pthread_mutex_lock(&bus->intx_lock);
    bool v = bus->intx_line[i];
    pthread_mutex_unlock(&bus->intx_lock);
    return v;
}

/* ---- config space ------------------------------------------------------ */

static struct pci_dev *cfg_target(struct pci_bus *bus, unsigned busno, unsigned devfn)
{
    if (busno != 0 || (devfn & 7) != 0)
        return NULL;
    struct pci_dev *d = bus->devs[devfn >> 3];
    return d && !d->hidden ? d : NULL;
}

static bool range_claimed(const struct pci_dev *d, unsigned off, unsigned len)
{
    for (unsigned i = 0; i < len; i++)
        if (d->claimed[off + i])
            return true;
    return false;
}

void pci_config_read(struct pci_bus *bus, unsigned busno, unsigned devfn, unsigned off,
                     uint8_t *data, unsigned len)
{
    pthread_rwlock_wrlock(&bus->lock);
    struct pci_dev *d = cfg_target(bus, busno, devfn);
    if (!d) {
        memset(data, 0xff, len);
    } else if (off >= PCI_CFG_SIZE || len > PCI_CFG_SIZE - off) {
        /* Extended space of a conventional function: no capabilities. */
        memset(data, 0, len);
    } else {
        if (d->ops && d->ops->config_read && range_claimed(d, off, len))
            d->ops->config_read(d->opaque, off, len);
        memcpy(data, &d->cfg[off], len);
        /* Interrupt Status lives outside cfg[]: the device thread sets it
         * without the bus lock. It shows the request even when Interrupt
         * Disable keeps it off the line. */
        if (off <= PCI_STATUS && PCI_STATUS < off + len) {
            pthread_mutex_lock(&bus->intx_lock);
            if (d->intx_level)
                data[PCI_STATUS - off] |= PCI_STATUS_INTX;
            pthread_mutex_unlock(&bus->intx_lock);
        }
    }
    pthread_rwlock_unlock(&bus->lock);
}

static bool overlaps(unsigned off, unsigned len, unsigned start, unsigned n)
{
    return off < start + n && start < off + len;
}

void pci_config_write(struct pci_bus *bus, unsigned busno, unsigned devfn, unsigned off,
                      const uint8_t *data, unsigned len)
{
    pthread_rwlock_wrlock(&bus->lock);
    struct pci_dev *d = cfg_target(bus, busno, devfn);
    if (!d || off >= PCI_CFG_SIZE || len > PCI_CFG_SIZE - off)
        goto out;
    for (unsigned i = 0; i < len; i++) {
        unsigned o = off + i;
        uint8_t v = (uint8_t)((d->cfg[o] & ~d->wmask[o]) | (data[i] & d->wmask[o]));
        v &= (uint8_t)~(data[i] & d->w1c[o]);
        d->cfg[o] = v;
    }
    if (overlaps(off, len, PCI_COMMAND, 2) || overlaps(off, len, PCI_BAR0, 4 * PCI_NUM_BARS))
        pci_dev_remap(d);
    if (overlaps(off, len, PCI_COMMAND, 2))
        pci_dev_intx_disable(d, pci_get16(&d->cfg[PCI_COMMAND]) & PCI_COMMAND_INTX_OFF);
    if (d->msix && overlaps(off, len, d->msix_cap + 2u, 2)) {
        uint16_t ctrl = pci_get16(&d->cfg[d->msix_cap + 2]);
        msix_set_control(d->msix, ctrl);
        /* A function with MSI-X on never uses its pin (PCI 3.0, 6.8.2);
         * whatever it held is dropped, as the interrupt now goes by message. */
        if (ctrl & MSIX_CTRL_ENABLE)
            pci_dev_set_intx(d, false);
    }
    if (d->ops && d->ops->config_write && range_claimed(d, off, len))
        d->ops->config_write(d->opaque, off, len);
out:
    pthread_rwlock_unlock(&bus->lock);
}

/* ---- the MMIO window --------------------------------------------------- */

static struct pci_dev *bar_find(struct pci_bus *bus, uint64_t gpa, unsigned len, unsigned *bar,
                                uint64_t *off)
{
    for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
        struct pci_dev *d = bus->devs[s];
        for (unsigned n = 0; d && !d->hidden && n < PCI_NUM_BARS; n++) {
            const struct pci_bar *b = &d->bars[n];
            if (!b->mapped || gpa < b->mapped || gpa - b->mapped >= b->size)
                continue;
            if (len > b->size - (gpa - b->mapped))
                return NULL;
            *bar = n;
            *off = gpa - b->mapped;
            return d;
        }
    }
    return NULL;
}

static bool bar_access(struct pci_bus *bus, uint64_t gpa, uint8_t *rdata, const uint8_t *wdata,
                       unsigned len)
{
    unsigned bar;
    uint64_t off;
    pthread_rwlock_rdlock(&bus->lock);
    struct pci_dev *d = bar_find(bus, gpa, len, &bar, &off);
    if (d && d->msix && (int)bar == d->msix_bar) {
        if (off >= d->msix_pba_off) {
            if (rdata)
                msix_pba_read(d->msix, off - d->msix_pba_off, rdata, len);
        } else if (rdata) {
            msix_table_read(d->msix, off, rdata, len);
        } else {
            msix_table_write(d->msix, off, wdata, len);
        }
    } else if (d && d->ops) {
        if (rdata && d->ops->bar_read)
            d->ops->bar_read(d->opaque, bar, off, rdata, len);
        else if (rdata)
            memset(rdata, 0, len);
        else if (d->ops->bar_write)
            d->ops->bar_write(d->opaque, bar, off, wdata, len);
    } else if (rdata) {
        memset(rdata, 0xff, len);
    }
    pthread_rwlock_unlock(&bus->lock);
    return d != NULL;
}

bool pci_mmio_read(struct pci_bus *bus, uint64_t gpa, uint8_t *data, unsigned len)
{
    return bar_access(bus, gpa, data, NULL, len);
}

bool pci_mmio_write(struct pci_bus *bus, uint64_t gpa, const uint8_t *data, unsigned len)
{
    return bar_access(bus, gpa, NULL, data, len);
}

/* ---- ACPI PCI hotplug ------------------------------------------------- */

static int hotplug_check(struct pci_bus *bus, struct pci_dev *d, struct err *e)
{
    if (d->bus != bus || d->slot >= PCI_MAX_SLOTS || bus->devs[d->slot] != d)
        return err_set(e, EINVAL, "%s: not on this PCI bus", d->name);
    if (d->slot == 0)
        return err_set(e, EINVAL, "%s: slot 0 (the host bridge) is not hotpluggable", d->name);
    if (!d->ops || !d->ops->unplugged)
        return err_set(e, EOPNOTSUPP, "%s: the device model cannot be unplugged", d->name);
    return 0;
}

static void hotplug_notify(struct pci_bus *bus)
{
    int r = acpi_pm_raise_gpe(bus->vm, LAYOUT_GPE_PCI_HOTPLUG);
    if (r < 0)
        log_warn("pci: cannot raise the hotplug GPE (%d)", r);
}

int pci_hotplug_add(struct pci_bus *bus, struct pci_dev *d, struct err *e)
{
    pthread_rwlock_wrlock(&bus->lock);
    int r = hotplug_check(bus, d, e);
    uint32_t bit = 1u << (d->slot % PCI_MAX_SLOTS);
    if (r == 0 && ((bus->hp_up | bus->hp_down) & bit))
        r = err_set(e, EBUSY, "%s: slot %u has a hotplug event pending", d->name, d->slot);
    if (r == 0) {
        d->hidden = false;
        bus->hp_up |= bit;
    }
    pthread_rwlock_unlock(&bus->lock);
    if (r == 0)
        hotplug_notify(bus);
    return r;
}

int pci_hotplug_remove(struct pci_bus *bus, struct pci_dev *d, struct err *e)
{
    pthread_rwlock_wrlock(&bus->lock);
    int r = hotplug_check(bus, d, e);
    uint32_t bit = 1u << (d->slot % PCI_MAX_SLOTS);
    if (r == 0 && d->hidden)
        r = err_set(e, EINVAL, "%s: never announced (take it off with pci_dev_remove)",
                    d->name);
    if (r == 0 && (bus->hp_down & bit))
        r = err_set(e, EALREADY, "%s: removal from slot %u is already pending", d->name,
                    d->slot);
    if (r == 0) {
        /* An insertion the guest never took is overtaken by the removal. */
        bus->hp_up &= ~bit;
        bus->hp_down |= bit;
    }
    pthread_rwlock_unlock(&bus->lock);
    if (r == 0)
        hotplug_notify(bus);
    return r;
}

enum pci_slot_state pci_hotplug_slot_state(struct pci_bus *bus, unsigned slot)
{
    if (slot >= PCI_MAX_SLOTS)
        return PCI_SLOT_EMPTY;
    pthread_rwlock_rdlock(&bus->lock);
    enum pci_slot_state st = PCI_SLOT_EMPTY;
    if (bus->hp_down & (1u << slot))
        st = PCI_SLOT_REMOVING;
    else if (bus->hp_up & (1u << slot))
        st = PCI_SLOT_INSERTING;
    else if (bus->devs[slot] && !bus->devs[slot]->hidden)
        st = PCI_SLOT_PRESENT;
    pthread_rwlock_unlock(&bus->lock);
    return st;
}

/* Takes the functions in `slots` off the bus, then tells each owner and
 * frees it. Called without the bus lock. */
static void hotplug_eject(struct pci_bus *bus, uint32_t slots)
{
    struct pci_dev *gone[PCI_MAX_SLOTS];
    unsigned n = 0;
    pthread_rwlock_wrlock(&bus->lock);
    for (unsigned s = 1; s < PCI_MAX_SLOTS; s++) {
        struct pci_dev *d = bus->devs[s];
        /* A model that cannot let go of its function keeps it, whatever
         * the guest writes: freeing it under the model would be a
         * use-after-free the guest could trigger. */
        if (!(slots & (1u << s)) || !d || d->hidden || !d->ops || !d->ops->unplugged)
            continue;
        bus->hp_up &= ~(1u << s);
        bus->hp_down &= ~(1u << s);
        for (unsigned b = 0; b < PCI_NUM_BARS; b++) {
            if (d->bars[b].mapped && d->ops && d->ops->bar_moved)
                d->ops->bar_moved(d->opaque, b, d->bars[b].mapped, 0);
            d->bars[b].mapped = 0;
        }
        bus->devs[s] = NULL;
        gone[n++] = d;
    }
    pthread_rwlock_unlock(&bus->lock);
    for (unsigned i = 0; i < n; i++) {
        struct pci_dev *d = gone[i];
        log_info("pci: %s left slot %u", d->name, d->slot);
        pci_dev_set_intx(d, false);
        if (d->ops && d->ops->unplugged)
            d->ops->unplugged(d->opaque);
        msix_destroy(d->msix);
        free(d);
    }
}

void pci_hotplug_read(struct pci_bus *bus, unsigned off, uint8_t *data, unsigned len)
{
    uint32_t v = 0;
    if (len == 4 && (off == 0 || off == 4)) {
        pthread_rwlock_wrlock(&bus->lock);
        if (off == 0) {
            /* Read once by the GPE method, which notifies each slot. */
            v = bus->hp_up;
            bus->hp_up = 0;
        } else {
            v = bus->hp_down;
        }
        pthread_rwlock_unlock(&bus->lock);
    }
    for (unsigned i = 0; i < len; i++)
        data[i] = (uint8_t)(v >> (8 * (i % 4)));
}

void pci_hotplug_write(struct pci_bus *bus, unsigned off, const uint8_t *data, unsigned len)
{
    if (len != 4 || off != 8)
        return;
    /* Slot 0 is the host bridge: never ejected. */
    hotplug_eject(bus, pci_get32(data) & ~1u);
}
