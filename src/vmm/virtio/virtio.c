/* The transport-independent part of a virtio device: feature negotiation,
 * status, reset, queue activation and the calls devices make. */
#include "virtio/virtio.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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
    if (q >= vd->ops->nqueues || !virtio_running(vd))
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
