/* The virtio PCI transport (modern). BAR 0 holds, 4 KiB apart, the common
 * configuration, the ISR byte, the device configuration and the queue
 * notification addresses (one dword per queue); BAR 1 holds the MSI-X
 * table and PBA. Vendor capabilities in config space point at each
 * region, plus the PCI configuration access capability.
 *
 * Notifications: each queue's notify address has a KVM ioeventfd, read on
 * the event loop, which runs the device's queue_notify. A notify write
 * KVM did not catch (a length the ioeventfd does not match, or no
 * ioeventfd support) reaches bar_write and signals the same eventfd.
 *
 * Interrupts: with MSI-X enabled, the queue's or config's vector (none
 * for VIRTIO_MSI_NO_VECTOR, as the spec and QEMU have it). With MSI-X off
 * the device sets the ISR bit and raises INTA#, a level interrupt that
 * stays up until the driver reads the ISR, which clears it (4.1.4.5).
 * The line is driven with KVM_IRQ_LINE rather than a resampling irqfd:
 * the deassert point is the ISR read, an MMIO exit the driver makes
 * anyway, so the resampler's EOI notification would add an eventfd round
 * trip per interrupt and save nothing; raising it is one ioctl on the
 * VM fd from the event loop, no vCPU exit involved. */
#include "util/le.h"
#include "virtio/pci.h"
#include "virtio/pci_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "pci/msix.h"
#include "pci/pci.h"
#include "snapshot/stream.h"
#include "util/evloop.h"
#include "util/log.h"
#include "virtio/virtio.h"
#include "vm.h"

#define VP_COMMON_OFF   0x0000
#define VP_COMMON_LEN   0x38
#define VP_ISR_OFF      0x1000
#define VP_DEVICE_OFF   0x2000
#define VP_DEVICE_MAX   0x1000
#define VP_NOTIFY_OFF   0x3000
#define VP_NOTIFY_MULT  4
#define VP_BAR_SIZE     0x4000
#define VP_BAR          0
#define VP_MSIX_BAR     1

/* virtio_pci_cap cfg_type */
#define VP_CAP_COMMON   1
#define VP_CAP_NOTIFY   2
#define VP_CAP_ISR      3
#define VP_CAP_DEVICE   4
#define VP_CAP_PCI_CFG  5

#define ISR_QUEUE  0x1
#define ISR_CONFIG 0x2

static uint32_t pci_class_of(uint16_t device_id)
{
    switch (device_id) {
    case VIRTIO_ID_NET:     return 0x020000;
    case VIRTIO_ID_BLOCK:   return 0x010000;
    case VIRTIO_ID_CONSOLE: return 0x078000;
    default:                return 0x00ff00;
    }
}

/* ---- interrupts -------------------------------------------------------- */

/* Device lock held. */
static void vp_interrupt(struct virtio_pci *vp, uint8_t isr_bit, uint16_t vector)
{
    if (!vp->pdev)
        return;   /* ejected: a worker finishing late has no one to tell */
    vp->isr |= isr_bit;
    if (vector != MSIX_NO_VECTOR && msix_notify(vp->pdev->msix, vector) != -ENODEV)
        return;
    if (!msix_enabled(vp->pdev->msix))
        pci_dev_set_intx(vp->pdev, true);
}

static void vp_interrupt_queue(void *opaque, unsigned q)
{
    struct virtio_pci *vp = opaque;
    vp_interrupt(vp, ISR_QUEUE, vp->q[q].vector);
}

static void vp_interrupt_config(void *opaque)
{
    struct virtio_pci *vp = opaque;
    vp_interrupt(vp, ISR_CONFIG, vp->msix_config);
}

static const struct virtio_transport_ops vp_transport = {
    .interrupt_queue = vp_interrupt_queue,
    .interrupt_config = vp_interrupt_config,
};

/* ---- notifications ----------------------------------------------------- */

static void vp_kick(void *opaque, uint32_t events)
{
    struct vp_queue *q = opaque;
    uint64_t n;
    if (read(q->efd, &n, sizeof(n)) < 0)
        return;
    virtio_lock(&q->vp->vd);
    virtio_queue_kicked(&q->vp->vd, q->index);
    virtio_unlock(&q->vp->vd);
}

static void ioeventfd_detach(struct virtio_pci *vp, struct vp_queue *q)
{
    if (q->ioeventfd_gpa)
        vm_ioeventfd(vp->vm, q->efd, q->ioeventfd_gpa, q->ioeventfd_len, false);
    q->ioeventfd_gpa = 0;
}

/* Binds queue q's notify address, trying "any length" first: drivers
 * notify with 16-bit writes, but nothing stops one from using 32. */
static void ioeventfd_attach(struct virtio_pci *vp, struct vp_queue *q)
{
    if (!vp->bar_gpa)
        return;
    uint64_t gpa = vp->bar_gpa + VP_NOTIFY_OFF + (uint64_t)q->index * VP_NOTIFY_MULT;
    static const unsigned lens[] = { 0, 2 };
    for (unsigned i = 0; i < 2; i++) {
        if (vm_ioeventfd(vp->vm, q->efd, gpa, lens[i], true) == 0) {
            q->ioeventfd_gpa = gpa;
            q->ioeventfd_len = lens[i];
            return;
        }
    }
    log_debug("virtio-%s: no ioeventfd for queue %u; notifications exit to user space",
              vp->vd.ops->name, q->index);
}

static void vp_bar_moved(void *opaque, unsigned bar, uint64_t old, uint64_t gpa)
{
    struct virtio_pci *vp = opaque;
    if (bar != VP_BAR)
        return;
    virtio_lock(&vp->vd);
    for (unsigned i = 0; i < vp->vd.ops->nqueues; i++)
        ioeventfd_detach(vp, &vp->q[i]);
    vp->bar_gpa = gpa;
    if (vp->vm->vm_fd >= 0)
        for (unsigned i = 0; i < vp->vd.ops->nqueues; i++)
            ioeventfd_attach(vp, &vp->q[i]);
    virtio_unlock(&vp->vd);
}

/* After each vm_setup: the new KVM VM has no eventfds bound yet. */
int virtio_pci_bind(void *opaque, struct err *e)
{
    struct virtio_pci *vp = opaque;
    int r = msix_attach(vp->pdev->msix, e);
    if (r < 0) {
        err_prefix(e, "virtio-%s: ", vp->vd.ops->name);
        return r;
    }
    virtio_lock(&vp->vd);
    for (unsigned i = 0; i < vp->vd.ops->nqueues; i++) {
        vp->q[i].ioeventfd_gpa = 0;   /* gone with the old VM */
        ioeventfd_attach(vp, &vp->q[i]);
    }
    virtio_unlock(&vp->vd);
    return 0;
}

/* ---- common configuration ---------------------------------------------- */


static struct vp_queue *selected(struct virtio_pci *vp)
{
    return vp->queue_select < vp->vd.ops->nqueues ? &vp->q[vp->queue_select] : NULL;
}

/* The register block as the driver would read it now. */
static void common_snapshot(struct virtio_pci *vp, uint8_t *b)
{
    struct virtio_dev *vd = &vp->vd;
    memset(b, 0, VP_COMMON_LEN);
    le32_put(b + 0x00, vp->dfselect);
    le32_put(b + 0x04, vp->dfselect < 2 ? (uint32_t)(vd->host_features >> (32 * vp->dfselect)) : 0);
    le32_put(b + 0x08, vp->gfselect);
    le32_put(b + 0x0c, vp->gfselect < 2 ? (uint32_t)(vd->guest_features >> (32 * vp->gfselect)) : 0);
    le16_put(b + 0x10, vp->msix_config);
    le16_put(b + 0x12, (uint16_t)vd->ops->nqueues);
    b[0x14] = vd->status;
    b[0x15] = vd->config_generation;
    le16_put(b + 0x16, vp->queue_select);
    struct vp_queue *q = selected(vp);
    if (q) {
        le16_put(b + 0x18, q->size);
        le16_put(b + 0x1a, q->vector);
        le16_put(b + 0x1c, q->enabled);
        le16_put(b + 0x1e, (uint16_t)q->index);
        le64_put(b + 0x20, q->desc);
        le64_put(b + 0x28, q->driver);
        le64_put(b + 0x30, q->device);
    }
}

static void transport_reset(struct virtio_pci *vp)
{
    vp->dfselect = vp->gfselect = 0;
    vp->msix_config = MSIX_NO_VECTOR;
    vp->queue_select = 0;
    vp->isr = 0;
    if (vp->pdev)
        pci_dev_set_intx(vp->pdev, false);
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
        struct vp_queue *q = &vp->q[i];
        q->size = vp->vd.ops->queue_size;
        q->vector = MSIX_NO_VECTOR;
        q->enabled = false;
        q->desc = q->driver = q->device = 0;
    }
}

static uint16_t valid_vector(struct virtio_pci *vp, uint16_t v)
{
    /* Reading back NO_VECTOR tells the driver the vector was refused. */
    return v < vp->pdev->msix->nvec ? v : MSIX_NO_VECTOR;
}

static bool touched(unsigned off, unsigned len, unsigned field, unsigned flen)
{
    return off < field + flen && field < off + len;
}

static void queue_fields_write(struct virtio_pci *vp, const uint8_t *b, unsigned off, unsigned len)
{
    struct vp_queue *q = selected(vp);
    if (!q)
        return;
    if (touched(off, len, 0x1a, 2))
        q->vector = valid_vector(vp, pci_get16(b + 0x1a));
    if (q->enabled)
        return;   /* size and addresses are fixed once the queue is live */
    if (touched(off, len, 0x18, 2))
        q->size = pci_get16(b + 0x18);
    if (touched(off, len, 0x20, 8))
        q->desc = le64_get(b + 0x20);
    if (touched(off, len, 0x28, 8))
        q->driver = le64_get(b + 0x28);
    if (touched(off, len, 0x30, 8))
        q->device = le64_get(b + 0x30);
    if (touched(off, len, 0x1c, 2) && pci_get16(b + 0x1c) == 1) {
        if (q->size > vp->vd.ops->queue_size)
            virtio_dev_broken(&vp->vd, "queue %u: size %u is over the %u offered", q->index,
                              q->size, vp->vd.ops->queue_size);
        else if (virtio_queue_enable(&vp->vd, q->index, q->size, q->desc, q->driver,
                                     q->device) == 0)
            q->enabled = true;
    }
}

/* Buffers added before DRIVER_OK had no kick the device acted on. */
static void kick_all(struct virtio_pci *vp)
{
    uint64_t one = 1;
    for (unsigned i = 0; i < vp->vd.ops->nqueues; i++)
        if (vp->q[i].enabled && write(vp->q[i].efd, &one, sizeof(one)) < 0)
            log_debug("virtio-%s: notify eventfd write failed", vp->vd.ops->name);
}

/* Writes of any width: applied to a snapshot, then each field the write
 * touched takes effect. */
static void common_write(struct virtio_pci *vp, unsigned off, const uint8_t *data, unsigned len)
{
    struct virtio_dev *vd = &vp->vd;
    uint8_t b[VP_COMMON_LEN];
    common_snapshot(vp, b);
    memcpy(b + off, data, len);
    if (touched(off, len, 0x00, 4))
        vp->dfselect = pci_get32(b);
    if (touched(off, len, 0x08, 4))
        vp->gfselect = pci_get32(b + 0x08);
    if (touched(off, len, 0x0c, 4) && vp->gfselect < 2 &&
        !(vd->status & VIRTIO_STATUS_FEATURES_OK)) {
        unsigned sh = 32 * vp->gfselect;
        vd->guest_features = (vd->guest_features & ~(0xffffffffULL << sh)) |
                             (uint64_t)pci_get32(b + 0x0c) << sh;
    }
    if (touched(off, len, 0x10, 2))
        vp->msix_config = valid_vector(vp, pci_get16(b + 0x10));
    if (touched(off, len, 0x16, 2))
        vp->queue_select = pci_get16(b + 0x16);
    queue_fields_write(vp, b, off, len);
    /* Status last: a write of 0 resets everything above too. */
    if (touched(off, len, 0x14, 1)) {
        bool was_running = virtio_running(vd);
        if (virtio_set_status(vd, b[0x14]) == 0)
            transport_reset(vp);
        if (!was_running && virtio_running(vd))
            kick_all(vp);
    }
}

/* ---- BAR 0 ------------------------------------------------------------- */

static void vp_bar_read(void *opaque, unsigned bar, uint64_t off, uint8_t *data, unsigned len)
{
    struct virtio_pci *vp = opaque;
    struct virtio_dev *vd = &vp->vd;
    memset(data, 0, len);
    if (bar != VP_BAR)
        return;
    virtio_lock(vd);
    if (off < VP_COMMON_LEN && len <= VP_COMMON_LEN - off) {
        uint8_t b[VP_COMMON_LEN];
        common_snapshot(vp, b);
        memcpy(data, b + off, len);
    } else if (off == VP_ISR_OFF) {
        /* Reading the ISR acknowledges it and lowers INTx. */
        data[0] = vp->isr;
        vp->isr = 0;
        pci_dev_set_intx(vp->pdev, false);
    } else if (off >= VP_DEVICE_OFF && off - VP_DEVICE_OFF < vd->ops->config_size &&
               len <= vd->ops->config_size - (off - VP_DEVICE_OFF)) {
        vd->ops->config_read(vd, (unsigned)(off - VP_DEVICE_OFF), data, len);
    }
    virtio_unlock(vd);
}

static void vp_bar_write(void *opaque, unsigned bar, uint64_t off, const uint8_t *data,
                         unsigned len)
{
    struct virtio_pci *vp = opaque;
    struct virtio_dev *vd = &vp->vd;
    if (bar != VP_BAR)
        return;
    if (off >= VP_NOTIFY_OFF) {
        uint64_t q = (off - VP_NOTIFY_OFF) / VP_NOTIFY_MULT;
        uint64_t one = 1;
        if (q < vd->ops->nqueues && write(vp->q[q].efd, &one, sizeof(one)) < 0)
            log_debug("virtio-%s: notify eventfd write failed", vd->ops->name);
        return;
    }
    virtio_lock(vd);
    if (off < VP_COMMON_LEN && len <= VP_COMMON_LEN - off)
        common_write(vp, (unsigned)off, data, len);
    else if (off >= VP_DEVICE_OFF && off - VP_DEVICE_OFF < vd->ops->config_size &&
             len <= vd->ops->config_size - (off - VP_DEVICE_OFF) && vd->ops->config_write)
        vd->ops->config_write(vd, (unsigned)(off - VP_DEVICE_OFF), data, len);
    virtio_unlock(vd);
}

/* ---- config space: the PCI configuration access capability ------------- */

static bool cfg_cap_target(struct virtio_pci *vp, uint32_t *off, uint32_t *len)
{
    const uint8_t *c = &vp->pdev->cfg[vp->cfg_cap];
    *off = pci_get32(c + 8);
    *len = pci_get32(c + 12);
    return c[4] == VP_BAR && (*len == 1 || *len == 2 || *len == 4) && *off < VP_BAR_SIZE &&
           *len <= VP_BAR_SIZE - *off;
}

static void vp_config_read(void *opaque, unsigned offset, unsigned len)
{
    struct virtio_pci *vp = opaque;
    uint32_t off, n;
    uint8_t *d = &vp->pdev->cfg[vp->cfg_cap + 16];
    memset(d, 0, 4);
    if (cfg_cap_target(vp, &off, &n))
        vp_bar_read(vp, VP_BAR, off, d, n);
}

static void vp_config_write(void *opaque, unsigned offset, unsigned len)
{
    struct virtio_pci *vp = opaque;
    uint32_t off, n;
    if (cfg_cap_target(vp, &off, &n))
        vp_bar_write(vp, VP_BAR, off, &vp->pdev->cfg[vp->cfg_cap + 16], n);
}

static void vp_reset(void *opaque)
{
    struct virtio_pci *vp = opaque;
    virtio_lock(&vp->vd);
    virtio_reset(&vp->vd);
    transport_reset(vp);
    virtio_unlock(&vp->vd);
}

/* ---- save/restore ----------------------------------------------------- */

static void vp_save(void *opaque, struct snapbuf *b)
{
    struct virtio_pci *vp = opaque;
    virtio_lock(&vp->vd);
    snapbuf_put_str(b, vp->vd.ops->name);
    snapbuf_put_u32(b, vp->dfselect);
    snapbuf_put_u32(b, vp->gfselect);
    snapbuf_put_u16(b, vp->msix_config);
    snapbuf_put_u16(b, vp->queue_select);
    snapbuf_put_u8(b, vp->isr);
    snapbuf_put_u8(b, (uint8_t)vp->vd.ops->nqueues);
    for (unsigned i = 0; i < vp->vd.ops->nqueues; i++) {
        const struct vp_queue *q = &vp->q[i];
        snapbuf_put_u16(b, q->size);
        snapbuf_put_u16(b, q->vector);
        snapbuf_put_u8(b, q->enabled);
        snapbuf_put_u64(b, q->desc);
        snapbuf_put_u64(b, q->driver);
        snapbuf_put_u64(b, q->device);
    }
    virtio_unlock(&vp->vd);
    virtio_dev_save(&vp->vd, b);
}

static int vp_load_transport(struct virtio_pci *vp, struct snapbuf *b, struct err *e)
{
    char *name = snapbuf_get_str(b, 32);
    bool same = name && !strcmp(name, vp->vd.ops->name);
    free(name);
    if (!same)
        return err_set(e, EINVAL, "not a virtio-%s in the snapshot", vp->vd.ops->name);
    uint32_t dfs = snapbuf_get_u32(b), gfs = snapbuf_get_u32(b);
    uint16_t mcfg = snapbuf_get_u16(b), qsel = snapbuf_get_u16(b);
    uint8_t isr = snapbuf_get_u8(b);
    unsigned n = snapbuf_get_u8(b);
    if (n != vp->vd.ops->nqueues)
        return err_set(e, EINVAL, "%u queues saved, virtio-%s has %u", n, vp->vd.ops->name,
                       vp->vd.ops->nqueues);
    struct vp_queue qs[VIRTIO_MAX_QUEUES];
    for (unsigned i = 0; i < n; i++) {
        qs[i].size = snapbuf_get_u16(b);
        qs[i].vector = snapbuf_get_u16(b);
        qs[i].enabled = snapbuf_get_bool(b);
        qs[i].desc = snapbuf_get_u64(b);
        qs[i].driver = snapbuf_get_u64(b);
        qs[i].device = snapbuf_get_u64(b);
    }
    if (b->short_read)
        return err_set(e, EINVAL, "virtio-%s: transport state truncated", vp->vd.ops->name);
    virtio_lock(&vp->vd);
    vp->dfselect = dfs;
    vp->gfselect = gfs;
    vp->msix_config = valid_vector(vp, mcfg);
    vp->queue_select = qsel;
    vp->isr = isr & (ISR_QUEUE | ISR_CONFIG);
    for (unsigned i = 0; i < n; i++) {
        struct vp_queue *q = &vp->q[i];
        q->size = qs[i].size;
        q->vector = valid_vector(vp, qs[i].vector);
        q->enabled = qs[i].enabled;
        q->desc = qs[i].desc;
        q->driver = qs[i].driver;
        q->device = qs[i].device;
    }
    virtio_unlock(&vp->vd);
    return 0;
}

/* The bus has put config space, BARs (so the notify ioeventfds) and
 * MSI-X back; the transport registers and the device follow. Chains the
 * driver made available but the device never took are looked at again. */
static int vp_load(void *opaque, struct snapbuf *b, struct err *e)
{
    struct virtio_pci *vp = opaque;
    int r = vp_load_transport(vp, b, e);
    if (r == 0)
        r = virtio_dev_load(&vp->vd, b, e);
    if (r < 0)
        return r;
    for (unsigned i = 0; i < vp->vd.ops->nqueues; i++)
        if (vp->q[i].enabled != vp->vd.vqs[i].ready)
            return err_set(e, EINVAL, "virtio-%s: queue %u enable state disagrees", vp->vd.ops->name, i);
    virtio_lock(&vp->vd);
    if (virtio_running(&vp->vd))
        kick_all(vp);
    virtio_unlock(&vp->vd);
    return 0;
}

static void vp_quiesce(void *opaque, bool on)
{
    struct virtio_pci *vp = opaque;
    virtio_quiesce(&vp->vd, on);
    if (!on) {
        virtio_lock(&vp->vd);
        if (virtio_running(&vp->vd))
            kick_all(vp);
        virtio_unlock(&vp->vd);
    }
}

static const struct pci_dev_ops vp_pci_ops = {
    .bar_read = vp_bar_read,
    .bar_write = vp_bar_write,
    .bar_moved = vp_bar_moved,
    .config_read = vp_config_read,
    .config_write = vp_config_write,
    .reset = vp_reset,
    .save = vp_save,
    .load = vp_load,
    .quiesce = vp_quiesce,
};

/* The guest ejected the function (vCPU thread) or a reset completed its
 * removal (vCPUs stopped); the struct pci_dev is freed when this returns.
 * The model is reset so that requests still in flight on worker threads
 * complete into nothing, and the rest of the teardown goes to the event
 * loop, which watches the queue eventfds and must not see them vanish
 * under a callback. */
static void vp_unplugged(void *opaque)
{
    struct virtio_pci *vp = opaque;
    virtio_lock(&vp->vd);
    virtio_reset(&vp->vd);
    vp->pdev = NULL;
    transport_reset(vp);
    virtio_unlock(&vp->vd);
    uint64_t one = 1;
    if (write(vp->gone_efd, &one, sizeof(one)) < 0)
        log_warn("virtio-%s: cannot hand its teardown to the event loop", vp->vd.ops->name);
}

/* The same as vp_pci_ops plus unplugged: only functions whose owner lets
 * them go (added at run time, or a --disk with an id) are hotpluggable;
 * main() keeps its own pointers to the others. */
static const struct pci_dev_ops vp_pci_hot_ops = {
    .bar_read = vp_bar_read,
    .bar_write = vp_bar_write,
    .bar_moved = vp_bar_moved,
    .config_read = vp_config_read,
    .config_write = vp_config_write,
    .reset = vp_reset,
    .unplugged = vp_unplugged,
    .save = vp_save,
    .load = vp_load,
    .quiesce = vp_quiesce,
};

/* A virtio_pci_cap: cfg_type, BAR, offset and length of a region. */
static int add_vcap(struct pci_dev *d, uint8_t type, uint32_t off, uint32_t len,
                    unsigned extra)
{
    int c = pci_dev_add_cap(d, PCI_CAP_ID_VNDR, 16 + extra);
    if (c < 0)
        return c;
    d->cfg[c + 2] = (uint8_t)(16 + extra);
    d->cfg[c + 3] = type;
    d->cfg[c + 4] = VP_BAR;
    pci_set32(&d->cfg[c + 8], off);
    pci_set32(&d->cfg[c + 12], len);
    return c;
}

static int add_caps(struct virtio_pci *vp, struct err *e)
{
    struct pci_dev *d = vp->pdev;
    const struct virtio_dev_ops *ops = vp->vd.ops;
    int r = pci_dev_add_msix(d, ops->nqueues + 1, VP_MSIX_BAR, e);
    if (r < 0)
        return r;
    int c;
    if (add_vcap(d, VP_CAP_COMMON, VP_COMMON_OFF, VP_COMMON_LEN, 0) < 0 ||
        add_vcap(d, VP_CAP_ISR, VP_ISR_OFF, 1, 0) < 0 ||
        /* Present even without device config (as QEMU does): some drivers
         * look for all four structures. */
        add_vcap(d, VP_CAP_DEVICE, VP_DEVICE_OFF, ops->config_size ? ops->config_size : 4,
                 0) < 0)
        return err_set(e, ENOSPC, "virtio-%s: config space full", ops->name);
    c = add_vcap(d, VP_CAP_NOTIFY, VP_NOTIFY_OFF, ops->nqueues * VP_NOTIFY_MULT, 4);
    if (c < 0)
        return err_set(e, ENOSPC, "virtio-%s: config space full", ops->name);
    pci_set32(&d->cfg[c + 16], VP_NOTIFY_MULT);
    c = add_vcap(d, VP_CAP_PCI_CFG, 0, 0, 4);
    if (c < 0)
        return err_set(e, ENOSPC, "virtio-%s: config space full", ops->name);
    d->cfg[c + 4] = 0;
    /* bar, offset, length and data are the driver's to write. */
    d->wmask[c + 4] = 0xff;
    memset(&d->wmask[c + 8], 0xff, 12);
    pci_dev_claim_config(d, (unsigned)c + 16, 4);
    vp->cfg_cap = (uint8_t)c;
    return 0;
}

/* The model, its notification eventfds and its PCI function (hidden for
 * a run-time addition); on failure nothing is left behind. */
int virtio_pci_build(struct virtio_pci **out, struct pci_bus *bus, struct evloop *loop,
                    const struct virtio_dev_ops *ops, const char *arg, unsigned slot,
                    enum vp_kind kind, struct err *e)
{
    if (ops->config_size > VP_DEVICE_MAX || ops->nqueues + 1 > MSIX_MAX_VECTORS)
        return err_set(e, EINVAL, "virtio-%s: does not fit the PCI transport", ops->name);
    struct virtio_pci *vp = calloc(1, sizeof(*vp));
    if (!vp)
        return err_set(e, ENOMEM, "out of memory");
    vp->vm = pci_bus_vm(bus);
    vp->loop = loop;
    vp->gone_efd = -1;
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
        vp->q[i] = (struct vp_queue){ .vp = vp, .index = i, .efd = -1 };
    int r = virtio_dev_init(&vp->vd, ops, vp->vm, loop, arg, e);
    if (r < 0) {
        free(vp);
        return r;
    }
    vp->vd.transport = &vp_transport;
    vp->vd.transport_opaque = vp;
    transport_reset(vp);
    for (unsigned i = 0; i < ops->nqueues; i++) {
        vp->q[i].efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (vp->q[i].efd < 0) {
            r = err_set_errno(e, errno, "virtio-%s: eventfd", ops->name);
            goto fail;
        }
        r = evloop_add(loop, vp->q[i].efd, EPOLLIN, vp_kick, &vp->q[i]);
        if (r < 0) {
            err_set(e, -r, "virtio-%s: cannot watch its notifications", ops->name);
            goto fail;
        }
    }
    const struct pci_id id = {
        .vendor = 0x1af4, .device = (uint16_t)(0x1040 + ops->device_id),
        .subsys_vendor = 0x1af4, .subsys = 0x1100, .revision = 1,
        .class_code = pci_class_of(ops->device_id),
    };
    const struct pci_dev_ops *pops = kind == VP_COLD ? &vp_pci_ops : &vp_pci_hot_ops;
    if (kind == VP_HOT)
        r = pci_dev_add_hidden_at(bus, &vp->pdev, slot, ops->name, &id, pops, vp, e);
    else if (slot)
        r = pci_dev_add_at(bus, &vp->pdev, slot, ops->name, &id, pops, vp, e);
    else
        r = pci_dev_add(bus, &vp->pdev, ops->name, &id, pops, vp, e);
    if (r < 0)
        goto fail;
    r = pci_dev_set_bar(vp->pdev, VP_BAR, VP_BAR_SIZE, false, false, e);
    if (r < 0 || (r = add_caps(vp, e)) < 0)
        goto fail;
    *out = vp;
    return 0;
fail:
    pci_dev_remove(vp->pdev);
    vp->pdev = NULL;
    virtio_pci_destroy(vp);
    return r;
}

int virtio_pci_create(struct virtio_pci **out, struct pci_bus *bus, struct evloop *loop,
                      const struct virtio_dev_ops *ops, const char *arg, struct err *e)
{
    return virtio_pci_create_at(out, bus, loop, ops, arg, 0, e);
}

int virtio_pci_create_at(struct virtio_pci **out, struct pci_bus *bus, struct evloop *loop,
                         const struct virtio_dev_ops *ops, const char *arg, unsigned slot,
                         struct err *e)
{
    struct virtio_pci *vp;
    int r = virtio_pci_build(&vp, bus, loop, ops, arg, slot, VP_COLD, e);
    if (r < 0)
        return r;
    r = vm_add_setup_hook(vp->vm, virtio_pci_bind, vp);
    if (r < 0) {
        err_set(e, -r, "virtio-%s: too many devices", ops->name);
        pci_dev_remove(vp->pdev);
        vp->pdev = NULL;
        virtio_pci_destroy(vp);
        return r;
    }
    *out = vp;
    return 0;
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
    if (!vp)
        return;
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
        if (vp->q[i].efd < 0)
            continue;
        ioeventfd_detach(vp, &vp->q[i]);
        evloop_del(vp->loop, vp->q[i].efd);
        close(vp->q[i].efd);
    }
    if (vp->gone_efd >= 0) {
        evloop_del(vp->loop, vp->gone_efd);
        close(vp->gone_efd);
    }
    virtio_dev_fini(&vp->vd);
    /* The PCI function belongs to the bus and goes with it: destroy the
     * bus (after the host) before its devices. */
    free(vp);
}
