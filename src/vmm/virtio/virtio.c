/* The transport-independent part of a virtio device: feature negotiation,
 * status, reset, queue activation and the calls devices make. */
#include "virtio/virtio.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "snapshot/stream.h"
#include "util/log.h"

/* Features every device gets from the core. */
#define CORE_FEATURES ((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_INDIRECT_DESC) | \
                       (1ULL << VIRTIO_F_EVENT_IDX))

int virtio_dev_init(struct virtio_dev *vd, const struct virtio_dev_ops *ops, struct vm *vm,
                    struct evloop *loop, const char *arg, struct err *e)
{
    memset(vd, 0, sizeof(*vd));
    if (ops->nqueues == 0 || ops->nqueues > VIRTIO_MAX_QUEUES || ops->queue_size == 0 ||
        ops->queue_size > VIRTQ_MAX_SIZE || (ops->queue_size & (ops->queue_size - 1)))
        return err_set(e, EINVAL, "virtio-%s: bad queue layout", ops->name);
    vd->ops = ops;
    vd->vm = vm;
    vd->loop = loop;
    pthread_mutex_init(&vd->lock, NULL);
    int r = ops->create(vd, arg, e);
    if (r < 0) {
        pthread_mutex_destroy(&vd->lock);
        return r;
    }
    /* The device must not claim the transport's bits for itself. */
    vd->host_features = (vd->device_features & ~CORE_FEATURES) | CORE_FEATURES;
    return 0;
}

void virtio_dev_fini(struct virtio_dev *vd)
{
    if (!vd->ops)
        return;
    vd->ops->destroy(vd);
    pthread_mutex_destroy(&vd->lock);
    vd->ops = NULL;
}

bool virtio_running(const struct virtio_dev *vd)
{
    return (vd->status & VIRTIO_STATUS_DRIVER_OK) &&
           !(vd->status & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED));
}

void virtio_reset(struct virtio_dev *vd)
{
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
        virtq_reset(&vd->vqs[q]);
    vd->guest_features = 0;
    vd->status = 0;
    vd->reported_broken = false;
    if (vd->ops->reset)
        vd->ops->reset(vd);
}

uint8_t virtio_set_status(struct virtio_dev *vd, uint8_t status)
{
    if (status == 0) {
        virtio_reset(vd);
        return 0;
    }
    uint8_t old = vd->status;
    /* FEATURES_OK only sticks for a subset of what was offered that
     * includes VERSION_1 (this transport is modern only). */
    if ((status & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
        bool ok = !(vd->guest_features & ~vd->host_features) &&
                  virtio_has_feature(vd, VIRTIO_F_VERSION_1);
        if (!ok)
            status &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
    }
    /* NEEDS_RESET is the device's to set, never the driver's. */
    vd->status = (uint8_t)((status & ~VIRTIO_STATUS_NEEDS_RESET) |
                           (old & VIRTIO_STATUS_NEEDS_RESET));
    return vd->status;
}

void virtio_dev_broken(struct virtio_dev *vd, const char *fmt, ...)
{
    if (!vd->reported_broken) {
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        log_warn("virtio-%s: %s; the device needs a reset", vd->ops->name, msg);
        vd->reported_broken = true;
    }
    if (!(vd->status & VIRTIO_STATUS_NEEDS_RESET)) {
        vd->status |= VIRTIO_STATUS_NEEDS_RESET;
        if (vd->status & VIRTIO_STATUS_DRIVER_OK)
            vd->transport->interrupt_config(vd->transport_opaque);
    }
}

int virtio_queue_enable(struct virtio_dev *vd, unsigned q, uint16_t size, uint64_t desc,
                        uint64_t driver, uint64_t device)
{
    if (q >= vd->ops->nqueues)
        return -EINVAL;
    int r = virtq_init(&vd->vqs[q], vd->vm, size, desc, driver, device,
                       virtio_has_feature(vd, VIRTIO_F_EVENT_IDX),
                       virtio_has_feature(vd, VIRTIO_F_INDIRECT_DESC));
    if (r < 0)
        virtio_dev_broken(vd, "queue %u: size %u or ring addresses %#llx/%#llx/%#llx are "
                          "not valid guest memory", q, size, (unsigned long long)desc,
                          (unsigned long long)driver, (unsigned long long)device);
    return r;
}

void virtio_queue_kicked(struct virtio_dev *vd, unsigned q)
{
    if (q < vd->ops->nqueues && vd->vqs[q].ready && virtio_running(vd))
        vd->ops->queue_notify(vd, q);
}

int virtio_pop(struct virtio_dev *vd, unsigned q, struct virtq_elem *elem)
{
    if (q >= vd->ops->nqueues || !virtio_running(vd) || vd->quiesced)
        return 0;
    int r = virtq_pop(&vd->vqs[q], elem);
    if (r < 0)
        virtio_dev_broken(vd, "queue %u: %s", q, vd->vqs[q].error);
    return r;
}

void virtio_push(struct virtio_dev *vd, unsigned q, uint16_t head, uint32_t written)
{
    if (q < vd->ops->nqueues)
        virtq_push(&vd->vqs[q], head, written);
}

void virtio_queue_interrupt(struct virtio_dev *vd, unsigned q)
{
    if (q < vd->ops->nqueues && virtio_running(vd) && virtq_need_interrupt(&vd->vqs[q]))
        vd->transport->interrupt_queue(vd->transport_opaque, q);
}

void virtio_config_changed(struct virtio_dev *vd)
{
    vd->config_generation++;
    if (vd->status & VIRTIO_STATUS_DRIVER_OK)
        vd->transport->interrupt_config(vd->transport_opaque);
}

/* ---- save/restore ---- */

void virtio_dev_save(struct virtio_dev *vd, struct snapbuf *b)
{
    virtio_lock(vd);
    snapbuf_put_u64(b, vd->host_features);
    snapbuf_put_u64(b, vd->guest_features);
    snapbuf_put_u8(b, vd->status);
    snapbuf_put_u8(b, vd->config_generation);
    snapbuf_put_u8(b, (uint8_t)vd->ops->nqueues);
    for (unsigned q = 0; q < vd->ops->nqueues; q++) {
        const struct virtq *vq = &vd->vqs[q];
        snapbuf_put_u8(b, vq->ready);
        snapbuf_put_u8(b, vq->broken);
        snapbuf_put_u16(b, vq->size);
        snapbuf_put_u64(b, vq->desc_gpa);
        snapbuf_put_u64(b, vq->avail_gpa);
        snapbuf_put_u64(b, vq->used_gpa);
        snapbuf_put_u16(b, vq->last_avail);
        snapbuf_put_u16(b, vq->used_idx);
        snapbuf_put_u16(b, vq->signalled_used);
        snapbuf_put_u8(b, vq->signalled_valid);
    }
    struct snapbuf dev;
    snapbuf_init(&dev);
    if (vd->ops->save)
        vd->ops->save(vd, &dev);
    snapbuf_put_u32(b, (uint32_t)dev.len);
    snapbuf_put(b, dev.data, dev.len);
    if (dev.nomem)
        b->nomem = true;
    snapbuf_free(&dev);
    virtio_unlock(vd);
}

static int load_queues(struct virtio_dev *vd, struct snapbuf *b, struct err *e)
{
    unsigned n = snapbuf_get_u8(b);
    if (n != vd->ops->nqueues)
        return err_set(e, EINVAL, "%u queues saved, the device has %u", n, vd->ops->nqueues);
    for (unsigned q = 0; q < n; q++) {
        bool ready = snapbuf_get_bool(b), broken = snapbuf_get_bool(b);
        uint16_t size = snapbuf_get_u16(b);
        uint64_t desc = snapbuf_get_u64(b), avail = snapbuf_get_u64(b), used = snapbuf_get_u64(b);
        uint16_t last_avail = snapbuf_get_u16(b), used_idx = snapbuf_get_u16(b);
        uint16_t sig = snapbuf_get_u16(b);
        bool sig_valid = snapbuf_get_bool(b);
        if (b->short_read)
            return err_set(e, EINVAL, "queue state truncated");
        struct virtq *vq = &vd->vqs[q];
        virtq_reset(vq);
        if (!ready)
            continue;
        if (size > vd->ops->queue_size ||
            virtq_init(vq, vd->vm, size, desc, avail, used,
                       virtio_has_feature(vd, VIRTIO_F_EVENT_IDX),
                       virtio_has_feature(vd, VIRTIO_F_INDIRECT_DESC)) < 0)
            return err_set(e, EINVAL, "queue %u: size %u or ring addresses are not valid", q, size);
        vq->broken = broken;
        vq->last_avail = last_avail;
        vq->used_idx = used_idx;
        vq->signalled_used = sig;
        vq->signalled_valid = sig_valid;
    }
    return 0;
}

int virtio_dev_load(struct virtio_dev *vd, struct snapbuf *b, struct err *e)
{
    uint64_t host = snapbuf_get_u64(b), guest = snapbuf_get_u64(b);
    uint8_t status = snapbuf_get_u8(b), gen = snapbuf_get_u8(b);
    if (b->short_read)
        return err_set(e, EINVAL, "virtio-%s: state truncated", vd->ops->name);
    if (host != vd->host_features || (guest & ~host))
        return err_set(e, EINVAL, "virtio-%s: features %#llx were offered, this device offers %#llx",
                       vd->ops->name, (unsigned long long)host, (unsigned long long)vd->host_features);
    virtio_lock(vd);
    virtio_reset(vd);
    vd->guest_features = guest;
    vd->status = status;
    vd->config_generation = gen;
    int r = load_queues(vd, b, e);
    uint32_t n = r == 0 ? snapbuf_get_u32(b) : 0;
    if (r == 0 && (b->short_read || n > snapbuf_left(b)))
        r = err_set(e, EINVAL, "device state truncated");
    if (r == 0 && n && !vd->ops->load)
        r = err_set(e, EINVAL, "state for a device that keeps none");
    if (r == 0 && vd->ops->load) {
        struct snapbuf dev;
        snapbuf_view(&dev, b->data + b->pos, n);
        r = vd->ops->load(vd, &dev, e);
    }
    b->pos += n;
    virtio_unlock(vd);
    if (r < 0)
        err_prefix(e, "virtio-%s: ", vd->ops->name);
    return r;
}

void virtio_quiesce(struct virtio_dev *vd, bool on)
{
    virtio_lock(vd);
    vd->quiesced = on;
    virtio_unlock(vd);
    if (on && vd->ops->drain)
        vd->ops->drain(vd);
}
