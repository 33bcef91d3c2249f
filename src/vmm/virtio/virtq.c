/* Split virtqueue processing. Layout in guest memory:
 *   descriptor table: size x { le64 addr; le32 len; le16 flags; le16 next }
 *   available ring:   le16 flags; le16 idx; le16 ring[size]; le16 used_event
 *   used ring:        le16 flags; le16 idx; { le32 id; le32 len }[size];
 *                     le16 avail_event
 * The indices are free-running 16-bit counters; slots are idx % size. */
#include "virtio/virtq.h"

#include <endian.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "vm.h"

#define DESC_SIZE 16

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
};

static uint16_t load16(const uint8_t *p)
{
    return le16toh(__atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED));
}

static void store16(uint8_t *p, uint16_t v)
{
    __atomic_store_n((uint16_t *)p, htole16(v), __ATOMIC_RELAXED);
}

static void (*_Atomic write_hook)(void *, const void *, size_t);
static void *_Atomic write_hook_opaque;

void virtq_set_write_hook(void (*fn)(void *opaque, const void *hva, size_t len), void *opaque)
{
    if (fn)
        atomic_store(&write_hook_opaque, opaque);
    atomic_store(&write_hook, fn);
}

static void note_write(const void *hva, size_t len)
{
    void (*fn)(void *, const void *, size_t) = atomic_load(&write_hook);
    if (fn)
        fn(atomic_load(&write_hook_opaque), hva, len);
}

/* The used ring: its entries, idx and avail_event. */
static void note_used(const struct virtq *vq)
{
    note_write(vq->used, 6 + 8 * (size_t)vq->size);
}

int virtq_init(struct virtq *vq, struct vm *vm, uint16_t size, uint64_t desc_gpa,
               uint64_t avail_gpa, uint64_t used_gpa, bool event_idx, bool indirect)
{
    virtq_reset(vq);
    if (size == 0 || size > VIRTQ_MAX_SIZE || (size & (size - 1)))
        return -EINVAL;
    /* The alignments virtio 1.x requires of the driver (2.7). */
    if ((desc_gpa & 15) || (avail_gpa & 1) || (used_gpa & 3))
        return -EINVAL;
    uint8_t *d = vm_gpa(vm, desc_gpa, (uint64_t)DESC_SIZE * size);
    uint8_t *a = vm_gpa(vm, avail_gpa, 6 + 2ULL * size);
    uint8_t *u = vm_gpa(vm, used_gpa, 6 + 8ULL * size);
    if (!d || !a || !u)
        return -EINVAL;
    vq->vm = vm;
    vq->size = size;
    vq->desc_gpa = desc_gpa;
    vq->avail_gpa = avail_gpa;
    vq->used_gpa = used_gpa;
    vq->desc = d;
    vq->avail = a;
    vq->used = u;
    vq->event_idx = event_idx;
    vq->indirect = indirect;
    vq->ready = true;
    return 0;
}

void virtq_reset(struct virtq *vq)
{
    memset(vq, 0, sizeof(*vq));
}

static int vq_fail(struct virtq *vq, const char *why)
{
    vq->broken = true;
    vq->error = why;
    return -EINVAL;
}

static void read_desc(const uint8_t *table, unsigned i, struct desc *d)
{
    const uint8_t *p = table + (size_t)i * DESC_SIZE;
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
    /* One copy: later checks and uses see the same values. */
    memcpy(&addr, p, 8);
    memcpy(&len, p + 8, 4);
    memcpy(&flags, p + 12, 2);
    memcpy(&next, p + 14, 2);
    d->addr = le64toh(addr);
    d->len = le32toh(len);
    d->flags = le16toh(flags);
    d->next = le16toh(next);
}

/* Appends one buffer to elem; readable ones must all come first. */
static int add_segment(struct virtq *vq, struct virtq_elem *elem, const struct desc *d)
{
    bool writable = d->flags & VIRTQ_DESC_F_WRITE;
    if (!writable && elem->nin)
        return vq_fail(vq, "a device-readable descriptor follows a writable one");
    if (d->len == 0)
        return 0;
    if (elem->nout + elem->nin == VIRTQ_MAX_SEGS)
        return vq_fail(vq, "descriptor chain too long");
    void *p = vm_gpa(vq->vm, d->addr, d->len);
    if (!p)
        return vq_fail(vq, "descriptor buffer outside guest memory");
    uint64_t *total = writable ? &elem->in_len : &elem->out_len;
    /* The used ring reports lengths in 32 bits. */
    if (*total + d->len > UINT32_MAX)
        return vq_fail(vq, "descriptor chain longer than 4 GiB");
    *total += d->len;
    elem->iov[elem->nout + elem->nin] = (struct iovec){ p, d->len };
    if (writable)
        elem->nin++;
    else
        elem->nout++;
    return 0;
}

/* Walks the chain at head: direct descriptors, or one indirect table.
 * A table of n entries can be walked at most n steps: more is a loop. */
static int walk_chain(struct virtq *vq, struct virtq_elem *elem, uint16_t head)
{
    const uint8_t *table = vq->desc;
    unsigned tsize = vq->size, idx = head, steps = 0;
    bool in_indirect = false;
    for (;;) {
        if (idx >= tsize)
            return vq_fail(vq, "descriptor index beyond the table");
        if (++steps > tsize)
            return vq_fail(vq, "descriptor chain loops");
        struct desc d;
        read_desc(table, idx, &d);
        if (d.flags & VIRTQ_DESC_F_INDIRECT) {
            if (!vq->indirect)
                return vq_fail(vq, "indirect descriptor without VIRTIO_F_INDIRECT_DESC");
            if (in_indirect)
                return vq_fail(vq, "indirect descriptor inside an indirect table");
            if (d.flags & VIRTQ_DESC_F_NEXT)
                return vq_fail(vq, "indirect descriptor with the NEXT flag");
            if (d.len == 0 || d.len % DESC_SIZE || d.len / DESC_SIZE > VIRTQ_MAX_SEGS)
                return vq_fail(vq, "indirect table length not a whole number of descriptors");
            table = vm_gpa(vq->vm, d.addr, d.len);
            if (!table)
                return vq_fail(vq, "indirect table outside guest memory");
            tsize = d.len / DESC_SIZE;
            idx = 0;
            steps = 0;
            in_indirect = true;
            continue;
        }
        int r = add_segment(vq, elem, &d);
        if (r < 0)
            return r;
        if (!(d.flags & VIRTQ_DESC_F_NEXT))
            return 0;
        idx = d.next;
    }
}

int virtq_pop(struct virtq *vq, struct virtq_elem *elem)
{
    if (!vq->ready || vq->broken)
        return 0;
    uint16_t avail_idx = le16toh(__atomic_load_n((const uint16_t *)(vq->avail + 2),
                                                 __ATOMIC_ACQUIRE));
    uint16_t pending = (uint16_t)(avail_idx - vq->last_avail);
    if (pending == 0)
        return 0;
    if (pending > vq->size)
        return vq_fail(vq, "available index ran more than a queue ahead");
    uint16_t head = load16(vq->avail + 4 + 2 * (vq->last_avail & (vq->size - 1)));
    elem->head = head;
    elem->nout = elem->nin = 0;
    elem->out_len = elem->in_len = 0;
    int r = walk_chain(vq, elem, head);
    if (r < 0)
        return r;
    if (atomic_load(&write_hook)) {
        for (unsigned i = 0; i < elem->nin; i++)
            note_write(elem->iov[elem->nout + i].iov_base, elem->iov[elem->nout + i].iov_len);
        note_used(vq);
    }
    vq->last_avail++;
    /* With event-idx, ask to be kicked for the very next chain, unless
     * the device drains the queue anyway. */
    if (vq->event_idx && !vq->notify_off)
        store16(vq->used + 4 + 8 * (size_t)vq->size, vq->last_avail);
    return 1;
}

void virtq_push(struct virtq *vq, uint16_t head, uint32_t written)
{
    if (!vq->ready || vq->broken)
        return;
    note_used(vq);
    uint8_t *e = vq->used + 4 + 8 * (size_t)(vq->used_idx & (vq->size - 1));
    uint32_t id = htole32(head), len = htole32(written);
    memcpy(e, &id, 4);
    memcpy(e + 4, &len, 4);
    vq->used_idx++;
    /* The entry must be visible before the index that publishes it. */
    __atomic_store_n((uint16_t *)(vq->used + 2), htole16(vq->used_idx), __ATOMIC_RELEASE);
}

bool virtq_need_interrupt(struct virtq *vq)
{
    if (!vq->ready)
        return false;
    /* Order our used->idx store before reading the driver's flags. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!vq->event_idx)
        return !(load16(vq->avail) & VIRTQ_AVAIL_F_NO_INTERRUPT);
    uint16_t event = load16(vq->avail + 4 + 2 * (size_t)vq->size);
    uint16_t old = vq->signalled_used, now = vq->used_idx;
    bool valid = vq->signalled_valid;
    vq->signalled_used = now;
    vq->signalled_valid = true;
    if (!valid)
        return true;
    /* Interrupt when used_event lies in (old, now]. */
    return (uint16_t)(now - event - 1) < (uint16_t)(now - old);
}

void virtq_disable_notify(struct virtq *vq)
{
    if (!vq->ready || vq->broken)
        return;
    vq->notify_off = true;
    /* With event-idx, avail_event simply stays behind; without it the
     * flag says so. */
    if (!vq->event_idx) {
        note_used(vq);
        store16(vq->used, VIRTQ_USED_F_NO_NOTIFY);
    }
}

bool virtq_enable_notify(struct virtq *vq)
{
    vq->notify_off = false;
    if (!vq->ready || vq->broken)
        return false;
    note_used(vq);
    if (vq->event_idx)
        store16(vq->used + 4 + 8 * (size_t)vq->size, vq->last_avail);
    else
        store16(vq->used, 0);
    /* Our request must be visible before we look at avail->idx again. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint16_t avail_idx = load16(vq->avail + 2);
    return avail_idx != vq->last_avail;
}

/* Copies between buf and the byte stream of iov[0..cnt) from offset off;
 * to_iov picks the direction. Returns how many bytes were copied. */
static size_t iov_copy(const struct iovec *iov, unsigned cnt, size_t off, void *buf, size_t len,
                       bool to_iov)
{
    size_t done = 0;
    for (unsigned i = 0; i < cnt && done < len; i++) {
        if (off >= iov[i].iov_len) {
            off -= iov[i].iov_len;
            continue;
        }
        size_t n = iov[i].iov_len - off;
        if (n > len - done)
            n = len - done;
        uint8_t *mem = (uint8_t *)iov[i].iov_base + off, *b = (uint8_t *)buf + done;
        if (to_iov)
            memcpy(mem, b, n);
        else
            memcpy(b, mem, n);
        done += n;
        off = 0;
    }
    return done;
}

size_t virtq_elem_read(const struct virtq_elem *elem, size_t off, void *buf, size_t len)
{
    return iov_copy(elem->iov, elem->nout, off, buf, len, false);
}

size_t virtq_elem_write(const struct virtq_elem *elem, size_t off, const void *buf, size_t len)
{
    return iov_copy(elem->iov + elem->nout, elem->nin, off, (void *)buf, len, true);
}
