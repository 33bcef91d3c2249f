/* Split virtqueues (virtio 1.x, section 2.7) in guest memory.
 *
 * Everything the guest wrote is hostile: ring indices, descriptor indices,
 * addresses, lengths and flags are checked before use, and each descriptor
 * is copied out of guest memory once so a racing guest cannot change it
 * between the check and the use. A malformed ring or chain makes the queue
 * "broken": it is not touched again until the driver resets the device. */
#ifndef CVIRT_VMM_VIRTIO_VIRTQ_H
#define CVIRT_VMM_VIRTIO_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct vm;

#define VIRTQ_MAX_SIZE      1024   /* largest queue size a device may offer */
#define VIRTQ_MAX_SEGS      1024   /* descriptors in one chain, indirect included */

#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY     1

struct virtq {
    struct vm *vm;
    uint16_t size;           /* entries; a power of two */
    bool ready;              /* addresses checked, the queue is live */
    bool broken;
    bool event_idx;          /* VIRTIO_F_EVENT_IDX negotiated */
    bool indirect;           /* VIRTIO_F_INDIRECT_DESC negotiated */
    uint64_t desc_gpa, avail_gpa, used_gpa;
    /* Host views of the three areas, valid while ready. */
    uint8_t *desc, *avail, *used;
    uint16_t last_avail;     /* next avail ring slot to take */
    uint16_t used_idx;       /* our copy of used->idx */
    uint16_t signalled_used; /* used_idx when the driver was last interrupted */
    bool signalled_valid;
    bool notify_off;         /* the device is draining: no kicks wanted */
    const char *error;       /* why it broke, for the one log line */
};

/* One descriptor chain: device-readable segments first (out), then
 * device-writable ones (in), each a host view of guest memory. */
struct virtq_elem {
    uint16_t head;
    unsigned nout, nin;
    uint64_t out_len, in_len; /* byte totals of each side */
    struct iovec iov[VIRTQ_MAX_SEGS];
};

/* Sets up vq from the driver's addresses; size must be a power of two up to
 * VIRTQ_MAX_SIZE. Returns -EINVAL (and leaves the queue not ready) when
 * an area is misaligned or not entirely in guest RAM. */
int virtq_init(struct virtq *vq, struct vm *vm, uint16_t size, uint64_t desc_gpa,
               uint64_t avail_gpa, uint64_t used_gpa, bool event_idx, bool indirect);
void virtq_reset(struct virtq *vq);

/* Tells the driver the device is busy draining the queue, so it need not
 * kick for new chains until virtq_enable_notify; each kick would be a VM
 * exit while the device is already working through the queue. */
void virtq_disable_notify(struct virtq *vq);

/* Takes the next available chain into elem. Returns 1 with elem filled, 0
 * when the ring is empty (or the queue not ready or broken), or -EINVAL
 * when the ring or the chain is malformed; the queue is broken then and
 * vq->error says why. */
int virtq_pop(struct virtq *vq, struct virtq_elem *elem);
/* Gives a chain back to the driver with written bytes in its in side. */
void virtq_push(struct virtq *vq, uint16_t head, uint32_t written);
/* Whether the driver wants an interrupt for what was pushed since the last
 * one (VIRTQ_AVAIL_F_NO_INTERRUPT or, with event-idx, used_event). */
bool virtq_need_interrupt(struct virtq *vq);
/* Before sleeping on the queue: asks the driver for a notification at the
 * next chain it adds and returns true when one has been added meanwhile
 * (the caller should pop again). */
bool virtq_enable_notify(struct virtq *vq);

/* Copies up to len bytes from the out side starting at byte off into buf;
 * returns the count copied. */
size_t virtq_elem_read(const struct virtq_elem *elem, size_t off, void *buf, size_t len);
/* Copies len bytes into the in side starting at byte off; returns the
 * count copied (less when the in side is shorter). */
size_t virtq_elem_write(const struct virtq_elem *elem, size_t off, const void *buf, size_t len);

/* Device writes to guest memory, which KVM's dirty log cannot see, for
 * live migration: while a hook is set, every host range of guest RAM a
 * device may write through a virtqueue (the used ring, each writable
 * buffer of a chain it takes) is passed to fn before the device can write
 * it. fn runs on device threads; NULL turns tracking off. */
void virtq_set_write_hook(void (*fn)(void *opaque, const void *hva, size_t len), void *opaque);

#endif
