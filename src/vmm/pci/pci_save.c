/* Save/restore of PCI bus 0: every function's config space, INTx
 * request, MSI-X table and the model's own bytes, then the hotplug
 * events the guest has not taken yet (docs/snapshot.md). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pci/msix.h"
#include "pci/pci_int.h"
#include "snapshot/stream.h"

#define SAVE_END 0xff

void pci_bus_save(struct pci_bus *bus, struct snapbuf *b)
{
    pthread_rwlock_rdlock(&bus->lock);
    for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
        struct pci_dev *d = bus->devs[s];
        if (!d)
            continue;
        snapbuf_put_u8(b, (uint8_t)s);
        snapbuf_put_str(b, d->name);
        snapbuf_put_u8(b, d->hidden);
        snapbuf_put(b, d->cfg, PCI_CFG_SIZE);
        pthread_mutex_lock(&bus->intx_lock);
        snapbuf_put_u8(b, d->intx_level);
        pthread_mutex_unlock(&bus->intx_lock);
        snapbuf_put_u8(b, d->msix ? (uint8_t)d->msix->nvec : 0);
        if (d->msix) {
            uint8_t table[MSIX_MAX_VECTORS * MSIX_ENTRY_SIZE], pba[8];
            msix_table_read(d->msix, 0, table, d->msix->nvec * MSIX_ENTRY_SIZE);
            msix_pba_read(d->msix, 0, pba, 8);
            snapbuf_put(b, table, d->msix->nvec * MSIX_ENTRY_SIZE);
            snapbuf_put(b, pba, 8);
        }
        struct snapbuf own;
        snapbuf_init(&own);
        if (d->ops && d->ops->save)
            d->ops->save(d->opaque, &own);
        snapbuf_put_u32(b, (uint32_t)own.len);
        snapbuf_put(b, own.data, own.len);
        if (own.nomem)
            b->nomem = true;
        snapbuf_free(&own);
    }
    snapbuf_put_u8(b, SAVE_END);
    /* After the end mark, so a loader that predates them stops before. */
    snapbuf_put_u32(b, bus->hp_up);
    snapbuf_put_u32(b, bus->hp_down);
    pthread_rwlock_unlock(&bus->lock);
}

/* One function's saved state into d (the same model, checked by name). */
static int dev_load(struct pci_dev *d, struct snapbuf *b, struct err *e)
{
    uint8_t cfg[PCI_CFG_SIZE], table[MSIX_MAX_VECTORS * MSIX_ENTRY_SIZE] = { 0 }, pba[8] = { 0 };
    snapbuf_get(b, cfg, sizeof(cfg));
    bool intx = snapbuf_get_bool(b);
    unsigned nvec = snapbuf_get_u8(b);
    if (nvec != (d->msix ? d->msix->nvec : 0))
        return err_set(e, EINVAL, "%u MSI-X vectors saved, the function has %u", nvec,
                       d->msix ? d->msix->nvec : 0);
    snapbuf_get(b, table, nvec * MSIX_ENTRY_SIZE);
    if (nvec)
        snapbuf_get(b, pba, 8);
    uint32_t own = snapbuf_get_u32(b);
    if (b->short_read || own > snapbuf_left(b))
        return err_set(e, EINVAL, "state truncated");
    /* Bytes the guest cannot change (identity, capabilities) must match:
     * the same model; the status register follows the device. */
    for (unsigned i = 0; i < PCI_CFG_SIZE; i++)
        if (cfg[i] != d->cfg[i] && !d->wmask[i] && !d->w1c[i] && !d->claimed[i] &&
            i != PCI_STATUS && i != PCI_STATUS + 1)
            return err_set(e, EINVAL, "config byte %#x differs from this model's", i);
    pthread_rwlock_wrlock(&d->bus->lock);
    memcpy(d->cfg, cfg, sizeof(cfg));
    pci_dev_remap(d);
    pthread_rwlock_unlock(&d->bus->lock);
    pci_dev_intx_disable(d, pci_get16(&d->cfg[PCI_COMMAND]) & PCI_COMMAND_INTX_OFF);
    if (d->msix) {
        msix_restore(d->msix, table, (uint64_t)pba[0] | (uint64_t)pba[1] << 8 |
                     (uint64_t)pba[2] << 16 | (uint64_t)pba[3] << 24 | (uint64_t)pba[4] << 32 |
                     (uint64_t)pba[5] << 40 | (uint64_t)pba[6] << 48 | (uint64_t)pba[7] << 56);
        msix_set_control(d->msix, pci_get16(&d->cfg[d->msix_cap + 2]));
    }
    pci_dev_set_intx(d, intx);
    struct snapbuf body;
    snapbuf_view(&body, b->data + b->pos, own);
    b->pos += own;
    if (d->ops && d->ops->load)
        return d->ops->load(d->opaque, &body, e);
    return own ? err_set(e, EINVAL, "state for a model that keeps none") : 0;
}

/* The pending hotplug events (absent from older snapshots: none then).
 * Only for loaded functions the guest may eject, never the host bridge. */
static int load_hotplug_events(struct pci_bus *bus, struct snapbuf *b, uint32_t seen,
                               struct err *e)
{
    if (snapbuf_left(b) == 0)
        return 0;
    uint32_t up = snapbuf_get_u32(b), down = snapbuf_get_u32(b);
    if (b->short_read)
        return err_set(e, EINVAL, "PCI hotplug state truncated");
    uint32_t hot = 0;
    for (unsigned s = 1; s < PCI_MAX_SLOTS; s++) {
        struct pci_dev *d = bus->devs[s];
        if ((seen >> s & 1) && d->ops && d->ops->unplugged)
            hot |= 1u << s;
    }
    if ((up | down) & ~hot)
        return err_set(e, EINVAL, "hotplug events pending for slots %#x, which hold no "
                       "hotpluggable function here", (up | down) & ~hot);
    pthread_rwlock_wrlock(&bus->lock);
    bus->hp_up = up & ~down;
    bus->hp_down = down;
    pthread_rwlock_unlock(&bus->lock);
    return 0;
}

int pci_bus_load(struct pci_bus *bus, struct snapbuf *b, struct err *e)
{
    uint32_t seen = 0;
    for (;;) {
        unsigned s = snapbuf_get_u8(b);
        if (b->short_read)
            return err_set(e, EINVAL, "PCI state truncated");
        if (s == SAVE_END)
            break;
        char *name = snapbuf_get_str(b, 64);
        bool hidden = snapbuf_get_bool(b);
        struct pci_dev *d = s < PCI_MAX_SLOTS ? bus->devs[s] : NULL;
        int r = 0;
        if (!name)
            r = err_set(e, EINVAL, "PCI state truncated");
        else if (!d || strcmp(d->name, name) || hidden || d->hidden || (seen >> s & 1))
            r = err_set(e, EINVAL, "slot %u: the snapshot has %s%s, this machine %s", s, name,
                        hidden ? " (not yet announced)" : "", d ? d->name : "nothing");
        free(name);
        if (r == 0 && (r = dev_load(d, b, e)) < 0)
            err_prefix(e, "PCI slot %u (%s): ", s, d->name);
        if (r < 0)
            return r;
        seen |= 1u << s;
    }
    for (unsigned s = 0; s < PCI_MAX_SLOTS; s++)
        if (bus->devs[s] && !(seen >> s & 1))
            return err_set(e, EINVAL, "slot %u: this machine has %s, the snapshot nothing "
                           "(a disk added at run time needs --disk ...,slot=N,id=ID)", s,
                           bus->devs[s]->name);
    return load_hotplug_events(bus, b, seen, e);
}

void pci_bus_quiesce(struct pci_bus *bus, bool on)
{
    /* Not under the bus lock: draining waits for device threads, which
     * may need it (a completion raising INTx does not, a BAR access would). */
    for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
        struct pci_dev *d = bus->devs[s];
        if (d && d->ops && d->ops->quiesce)
            d->ops->quiesce(d->opaque, on);
    }
}
