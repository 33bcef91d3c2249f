/* virtio-blk's io_uring path (aio=io_uring, raw images): a minimal
 * io_uring on the raw system calls (liburing is not among the monitor's
 * dependencies). Reads and writes are prepared on the submission ring,
 * submitted in one system call per notification, and completed on the
 * event loop through an eventfd the kernel signals; requests the ring
 * cannot take stay with the worker threads (blk.c). Only the event loop
 * thread touches the ring, under the device lock, except the waits of a
 * migration's drain and of teardown, which take the same lock or run
 * after the loop stopped watching. */
#include <errno.h>
#include <linux/io_uring.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "img/blk.h"
#include "util/evloop.h"
#include "util/le.h"
#include "util/log.h"
#include "virtio/blk_int.h"

static void *ring_map(int fd, size_t len, uint64_t off)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, (off_t)off);
    return p == MAP_FAILED ? NULL : p;
}

static void ring_free(struct blk_ring *rg)
{
    if (rg->sqes)
        munmap(rg->sqes, rg->sqes_len);
    if (rg->cq_map && rg->cq_map != rg->sq_map)
        munmap(rg->cq_map, rg->cq_len);
    if (rg->sq_map)
        munmap(rg->sq_map, rg->sq_len);
    if (rg->efd >= 0)
        close(rg->efd);
    if (rg->fd >= 0)
        close(rg->fd);
    memset(rg, 0, sizeof(*rg));
    rg->fd = rg->efd = -1;
}

static int ring_setup(struct blk_ring *rg, unsigned entries)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    memset(rg, 0, sizeof(*rg));
    rg->efd = -1;
    rg->fd = (int)syscall(__NR_io_uring_setup, entries, &p);
    if (rg->fd < 0) {
        rg->fd = -1;
        return -errno;
    }
    rg->entries = p.sq_entries;
    rg->sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    rg->cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    bool single = p.features & IORING_FEAT_SINGLE_MMAP;
    if (single)
        rg->sq_len = rg->cq_len = rg->sq_len > rg->cq_len ? rg->sq_len : rg->cq_len;
    rg->sq_map = ring_map(rg->fd, rg->sq_len, IORING_OFF_SQ_RING);
    rg->cq_map = single ? rg->sq_map : ring_map(rg->fd, rg->cq_len, IORING_OFF_CQ_RING);
    rg->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
    rg->sqes = ring_map(rg->fd, rg->sqes_len, IORING_OFF_SQES);
    if (!rg->sq_map || !rg->cq_map || !rg->sqes)
        goto fail;
    uint8_t *sq = rg->sq_map, *cq = rg->cq_map;
    rg->sq_head = (unsigned *)(sq + p.sq_off.head);
    rg->sq_tail = (unsigned *)(sq + p.sq_off.tail);
    rg->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
    rg->sq_array = (unsigned *)(sq + p.sq_off.array);
    rg->cq_head = (unsigned *)(cq + p.cq_off.head);
    rg->cq_tail = (unsigned *)(cq + p.cq_off.tail);
    rg->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
    rg->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    rg->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (rg->efd < 0 ||
        syscall(__NR_io_uring_register, rg->fd, IORING_REGISTER_EVENTFD, &rg->efd, 1) < 0)
        goto fail;
    return 0;
fail:;
    int r = -errno;
    ring_free(rg);
    return r ? r : -ENOMEM;
}

/* Hands what was prepared to the kernel; what it does not take now (a
 * transient EAGAIN or EBUSY) stays queued for the next call. */
void blk_ring_submit(struct blkdev *d)
{
    struct blk_ring *rg = &d->ring;
    while (rg->queued) {
        long n = syscall(__NR_io_uring_enter, rg->fd, rg->queued, 0, 0, NULL, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            log_debug("virtio-blk %s: io_uring_enter: %s", d->img->filename,
                      n < 0 ? strerror(errno) : "nothing taken");
            return;
        }
        rg->queued -= (unsigned)n;
        rg->inflight += (unsigned)n;
    }
}

static bool iov_aligned(const struct iovec *v, unsigned n, uint64_t off, unsigned align)
{
    uintptr_t m = align - 1;
    if (off & m)
        return false;
    for (unsigned i = 0; i < n; i++)
        if (((uintptr_t)v[i].iov_base | v[i].iov_len) & m)
            return false;
    return true;
}

/* A read or write of a raw image. False leaves the
 * request to the worker threads: other types, errors to report, pieces
 * larger than one image call, buffers O_DIRECT cannot take, a full ring. */
bool blk_ring_start(struct blkdev *d, struct blk_req *r)
{
    struct virtq_elem *el = &r->elem;
    struct blk_ring *rg = &d->ring;
    uint8_t hdr[BLK_HDR_SIZE];
    if (virtq_elem_read(el, 0, hdr, sizeof(hdr)) != sizeof(hdr))
        return false;
    uint32_t type = le32_get(hdr);
    uint64_t sector = le64_get(hdr + 8);
    if (type != BLK_T_IN && type != BLK_T_OUT)
        return false;
    bool write = type == BLK_T_OUT;
    uint64_t len = write ? el->out_len - BLK_HDR_SIZE : el->in_len - 1;
    if (!len || len > BLK_CHUNK || len % BLK_SECTOR || !blk_in_range(d, sector, len) ||
        (write && d->readonly))
        return false;
    unsigned k = write ? blk_iov_slice(el->iov, el->nout, BLK_HDR_SIZE, len, r->data)
                       : blk_iov_slice(el->iov + el->nout, el->nin, 0, len, r->data);
    if (d->img->align && !iov_aligned(r->data, k, sector * BLK_SECTOR, d->img->align))
        return false;
    unsigned tail = *rg->sq_tail;
    if (tail - __atomic_load_n(rg->sq_head, __ATOMIC_ACQUIRE) >= rg->entries ||
        rg->queued + rg->inflight >= rg->entries)
        return false;
    unsigned i = tail & *rg->sq_mask;
    struct io_uring_sqe *sqe = &rg->sqes[i];
    memset(sqe, 0, sizeof(*sqe));
    sqe->opcode = write ? IORING_OP_WRITEV : IORING_OP_READV;
    sqe->fd = d->img->fd;
    sqe->addr = (uintptr_t)r->data;
    sqe->len = k;
    sqe->off = sector * BLK_SECTOR;
    sqe->user_data = (uintptr_t)r;
    rg->sq_array[i] = i;
    __atomic_store_n(rg->sq_tail, tail + 1, __ATOMIC_RELEASE);
    rg->queued++;
    r->write = write;
    r->expect = (uint32_t)len;
    return true;
}

/* Takes the completions; with push, returns their chains (requests from
 * before a reset are only freed). True when something was pushed. */
static bool ring_reap(struct blkdev *d, bool push)
{
    struct blk_ring *rg = &d->ring;
    unsigned head = *rg->cq_head, tail = __atomic_load_n(rg->cq_tail, __ATOMIC_ACQUIRE);
    bool pushed = false;
    for (; head != tail; head++) {
        const struct io_uring_cqe *c = &rg->cqes[head & *rg->cq_mask];
        struct blk_req *r = (struct blk_req *)(uintptr_t)c->user_data;
        rg->inflight--;
        uint8_t st = BLK_S_OK;
        /* A regular file only transfers less at its end, which the range
         * check keeps requests from: anything short is an error. */
        if (c->res != (int32_t)r->expect) {
            st = BLK_S_IOERR;
            log_debug("virtio-blk %s: %s of %u bytes: %s", d->img->filename,
                      r->write ? "write" : "read", r->expect,
                      c->res < 0 ? strerror(-c->res) : "short transfer");
        }
        if (push && r->gen == d->gen && virtio_running(d->vd)) {
            virtq_elem_write(&r->elem, r->elem.in_len - 1, &st, 1);
            uint32_t written = st == BLK_S_OK && !r->write ? r->expect : 0;
            virtio_push(d->vd, 0, r->elem.head, written + 1);
            pushed = true;
        }
        blk_release(d, r);
    }
    __atomic_store_n(rg->cq_head, head, __ATOMIC_RELEASE);
    return pushed;
}

static void blk_on_ring(void *opaque, uint32_t events)
{
    struct blkdev *d = opaque;
    uint64_t v;
    if (read(d->ring.efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        log_debug("virtio-blk: completion eventfd: %s", strerror(errno));
    virtio_lock(d->vd);
    bool pushed = ring_reap(d, true);
    blk_ring_submit(d);
    if (pushed)
        virtio_queue_interrupt(d->vd, 0);
    virtio_unlock(d->vd);
}

/* Submits what is queued and reaps until nothing is in flight. */
static bool ring_settle(struct blkdev *d, bool push)
{
    struct blk_ring *rg = &d->ring;
    bool pushed = false;
    blk_ring_submit(d);
    while (rg->inflight) {
        long n = syscall(__NR_io_uring_enter, rg->fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0);
        if (n < 0 && errno != EINTR)
            break;
        pushed |= ring_reap(d, push);
    }
    return pushed;
}

bool blk_ring_wait(struct blkdev *d)
{
    return ring_settle(d, true);
}

void blk_ring_close(struct blkdev *d)
{
    evloop_del(d->vd->loop, d->ring.efd);
    ring_settle(d, false);
    ring_free(&d->ring);
    d->use_ring = false;
}

void blk_ring_open(struct blkdev *d)
{
    if (!d->vd->loop || d->img->drv != &blk_raw_driver)
        return;
    int r = ring_setup(&d->ring, BLK_QUEUE_SIZE);
    if (r == 0 && (r = evloop_add(d->vd->loop, d->ring.efd, EPOLLIN, blk_on_ring, d)) == 0) {
        d->use_ring = true;
        return;
    }
    log_warn("virtio-blk %s: aio=io_uring: no io_uring (%s); using I/O threads", d->img->filename,
             strerror(-r));
    ring_free(&d->ring);
}
