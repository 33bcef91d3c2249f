/* The virtio device model, apart from any transport.
 *
 * A device (rng, console, blk, net, ...) is one file with one const
 * struct virtio_dev_ops, listed in the device table in main.c. It sees a
 * struct virtio_dev: its queues, the negotiated features, the VM (guest
 * memory) and the event loop, and it calls the virtio_* functions below
 * to take chains, return them and interrupt the driver. It never learns
 * which transport carries it: the transport (virtio/pci.c today, an MMIO
 * transport later) owns registers, notifications and interrupts and
 * reaches the device only through these ops.
 *
 * Threads and locking: every op is called with vd->lock held. Config
 * reads and writes come from vCPU threads; queue_notify from the event
 * loop thread. A device's own event-loop callbacks (host backends) take
 * the lock with virtio_lock()/virtio_unlock() around their work. */
#ifndef CVIRT_VMM_VIRTIO_VIRTIO_H
#define CVIRT_VMM_VIRTIO_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"
#include "virtio/virtq.h"

struct vm;
struct evloop;
struct snapbuf;

/* Device IDs (virtio 1.x, 5) */
#define VIRTIO_ID_NET      1
#define VIRTIO_ID_BLOCK    2
#define VIRTIO_ID_CONSOLE  3
#define VIRTIO_ID_RNG      4
#define VIRTIO_ID_BALLOON  5

/* Feature bits the core and transport handle */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32

/* Device status bits */
#define VIRTIO_STATUS_ACKNOWLEDGE  0x01
#define VIRTIO_STATUS_DRIVER       0x02
#define VIRTIO_STATUS_DRIVER_OK    0x04
#define VIRTIO_STATUS_FEATURES_OK  0x08
#define VIRTIO_STATUS_NEEDS_RESET  0x40
#define VIRTIO_STATUS_FAILED       0x80

#define VIRTIO_MAX_QUEUES 16

struct virtio_dev;

struct virtio_dev_ops {
    const char *name;          /* "rng", "console": log lines and errors */
    uint16_t device_id;        /* VIRTIO_ID_* */
    unsigned nqueues;          /* at most VIRTIO_MAX_QUEUES */
    uint16_t queue_size;       /* largest size offered, a power of two */
    uint32_t config_size;      /* bytes of device-specific config */
    /* Parses arg (the text after the option, may be NULL), opens host
     * backends, sets vd->priv and the device's feature bits in
     * vd->device_features. Called once, before the guest runs. */
    int (*create)(struct virtio_dev *vd, const char *arg, struct err *e);
    void (*destroy)(struct virtio_dev *vd);
    /* Device config space; off + len is within config_size. read fills data. */
    void (*config_read)(struct virtio_dev *vd, unsigned off, uint8_t *data, unsigned len);
    void (*config_write)(struct virtio_dev *vd, unsigned off, const uint8_t *data,
                         unsigned len);
    /* The driver made buffers available on queue q (or DRIVER_OK was just
     * set). Only called while the device is running, on the event loop. */
    void (*queue_notify)(struct virtio_dev *vd, unsigned q);
    /* A device reset by the driver or the machine: back to the state after
     * create. The core has already reset the queues. May be NULL. */
    void (*reset)(struct virtio_dev *vd);
    /* Save/restore (snapshot/stream.h), lock held: the device's own state
     * beyond its queues and features; NULL saves nothing extra. load runs
     * on a created device and must check what it reads. */
    void (*save)(struct virtio_dev *vd, struct snapbuf *b);
    int (*load)(struct virtio_dev *vd, struct snapbuf *b, struct err *e);
    /* Waits, without the lock held, until every chain the device took has
     * been returned (or its I/O finished); called once the core stopped
     * handing it new chains (virtio_quiesce). NULL: nothing is ever left
     * in flight between two calls of its ops. */
    void (*drain)(struct virtio_dev *vd);
};

/* The transport's side, called by the core. */
struct virtio_transport_ops {
    void (*interrupt_queue)(void *opaque, unsigned q);
    void (*interrupt_config)(void *opaque);
};

struct virtio_dev {
    const struct virtio_dev_ops *ops;
    void *priv;                 /* the device's state */
    struct vm *vm;
    struct evloop *loop;
    pthread_mutex_t lock;

    uint64_t device_features;   /* set by create: the device's own bits */
    uint64_t host_features;     /* offered: device bits + the core's */
    uint64_t guest_features;    /* accepted by the driver */
    uint8_t status;
    uint8_t config_generation;
    bool reported_broken;       /* a malformed queue was logged */
    bool quiesced;              /* virtio_pop hands out nothing (migration) */
    struct virtq vqs[VIRTIO_MAX_QUEUES];

    const struct virtio_transport_ops *transport;
    void *transport_opaque;
};

/* Device table entries */
extern const struct virtio_dev_ops virtio_rng_ops;
extern const struct virtio_dev_ops virtio_console_ops;
extern const struct virtio_dev_ops virtio_blk_ops;
extern const struct virtio_dev_ops virtio_net_ops;
extern const struct virtio_dev_ops virtio_balloon_ops;

/* ---- for transports ---- */
/* Creates the device: fills vd and calls ops->create. */
int virtio_dev_init(struct virtio_dev *vd, const struct virtio_dev_ops *ops, struct vm *vm,
                    struct evloop *loop, const char *arg, struct err *e);
void virtio_dev_fini(struct virtio_dev *vd);
/* Driver status write (lock held); 0 resets. Returns the new status. When
 * it turns DRIVER_OK on, the transport should kick every live queue (on
 * the event loop): buffers added before it went unnoticed. */
uint8_t virtio_set_status(struct virtio_dev *vd, uint8_t status);
/* Back to the power-on state (lock held). */
void virtio_reset(struct virtio_dev *vd);
/* Makes queue q live from the addresses the driver gave (lock held); on bad
 * addresses the device is marked NEEDS_RESET and -EINVAL returned. */
int virtio_queue_enable(struct virtio_dev *vd, unsigned q, uint16_t size, uint64_t desc,
                        uint64_t driver, uint64_t device);
/* A notification for queue q arrived (lock held). */
void virtio_queue_kicked(struct virtio_dev *vd, unsigned q);

/* Save/restore of the core state (features, status, queues with their
 * positions) and the device's own (ops->save), lock taken inside. load
 * makes the saved queues live again (addresses re-checked against guest
 * memory). */
void virtio_dev_save(struct virtio_dev *vd, struct snapbuf *b);
int virtio_dev_load(struct virtio_dev *vd, struct snapbuf *b, struct err *e);
/* on: no more chains go to the device, then waits for those in flight
 * (ops->drain); off: chains flow again (the transport should kick the
 * queues: notifications may have come meanwhile). Lock not held. */
void virtio_quiesce(struct virtio_dev *vd, bool on);

/* ---- for devices (lock held) ---- */
static inline bool virtio_has_feature(const struct virtio_dev *vd, unsigned bit)
{
    return (vd->guest_features >> bit) & 1;
}
bool virtio_running(const struct virtio_dev *vd);
/* virtq_pop on queue q; a malformed chain marks the device NEEDS_RESET,
 * logs once and returns -EINVAL. */
int virtio_pop(struct virtio_dev *vd, unsigned q, struct virtq_elem *elem);
/* Returns a chain to the driver; call virtio_queue_interrupt after a batch. */
void virtio_push(struct virtio_dev *vd, unsigned q, uint16_t head, uint32_t written);
/* Interrupts the driver for queue q when it wants one (after pushes). */
void virtio_queue_interrupt(struct virtio_dev *vd, unsigned q);
/* The device config changed. */
void virtio_config_changed(struct virtio_dev *vd);
/* Marks the device NEEDS_RESET with a one-time log line. */
void virtio_dev_broken(struct virtio_dev *vd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline void virtio_lock(struct virtio_dev *vd) { pthread_mutex_lock(&vd->lock); }
static inline void virtio_unlock(struct virtio_dev *vd) { pthread_mutex_unlock(&vd->lock); }

#endif
