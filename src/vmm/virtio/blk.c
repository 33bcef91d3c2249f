/* virtio-blk (virtio 1.x, 5.2) on libcvirt-img: raw or qcow2 images, one
 * request queue, served by worker threads or an io_uring per disk.
 *
 * The event loop only takes chains off the queue, checks that each has a
 * status byte the device may write, and starts the I/O. By default
 * (aio=threads) a pool of worker threads runs every request on
 * libcvirt-img, so a slow disk never holds the event loop or the vCPUs.
 * With aio=io_uring, reads and writes of a raw image go to the kernel
 * through an io_uring instead, submitted in one system call per
 * notification and completed on the event loop through an eventfd; the
 * pool keeps the rest (flush, discard, a request the ring cannot take).
 * The threads are the default because they measured faster on the disk
 * benchmark (bench/disk): the ring puts every submission and completion
 * on the one event loop thread. Completions return the chain under the
 * device lock. A reset bumps a generation number:
 * requests taken before it finish their I/O but are never returned to the
 * new queues. */
#include <endian.h>
#include <errno.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/le.h"
#include "img/blk.h"
#include "util/evloop.h"
#include "util/log.h"
#include "virtio/virtio.h"

/* Feature bits (5.2.3) */
#define BLK_F_SEG_MAX      2
#define BLK_F_RO           5
#define BLK_F_BLK_SIZE     6
#define BLK_F_FLUSH        9
#define BLK_F_DISCARD      13
#define BLK_F_WRITE_ZEROES 14

/* Request types and status values (5.2.6) */
#define BLK_T_IN           0
#define BLK_T_OUT          1
#define BLK_T_FLUSH        4
#define BLK_T_GET_ID       8
#define BLK_T_DISCARD      11
#define BLK_T_WRITE_ZEROES 13
#define BLK_S_OK     0
#define BLK_S_IOERR  1
#define BLK_S_UNSUPP 2

#define BLK_SECTOR      512u
#define BLK_HDR_SIZE    16u
#define BLK_ID_BYTES    20u
#define BLK_QUEUE_SIZE  256
#define BLK_SEG_MAX     (BLK_QUEUE_SIZE - 2)
/* Enough threads for the queue depth a driver typically keeps (Linux's
 * blk-mq and the bench use 32): each holds one request in the kernel. */
#define BLK_WORKERS     32
#define BLK_RING_WORKERS 4
#define BLK_WAKE_MAX    8       /* workers woken per notification */
#define BLK_CHUNK       (1u << 20)  /* bytes per image call, at most */
/* Discard and write-zeroes: one range per request, at most 2 GiB - 512. */
#define BLK_MAX_RANGE_SECTORS 0x3fffffu
#define BLK_MAX_RANGE_SEGS    1u
#define BLK_RANGE_F_UNMAP     1u
#define BLK_CONFIG_SIZE 60

/* Config space offsets (5.2.4) */
#define CFG_CAPACITY     0
#define CFG_SEG_MAX      12
#define CFG_BLK_SIZE     20
#define CFG_MAX_DISCARD_SECTORS 36
#define CFG_MAX_DISCARD_SEG     40
#define CFG_DISCARD_ALIGN       44
#define CFG_MAX_WZ_SECTORS      48
#define CFG_MAX_WZ_SEG          52

struct blk_req {
    struct blk_req *next;
    unsigned gen;
    bool write;                 /* on the ring: a write of expect bytes */
    uint32_t expect;
    struct virtq_elem elem;
    struct iovec data[VIRTQ_MAX_SEGS];
};

/* A minimal io_uring on the raw system calls (liburing is not among the
 * monitor's dependencies): the submission ring, the completion ring and
 * an eventfd the kernel signals on completions, watched by the event loop.
 * Only the event loop thread touches it, under the device lock. */
struct blk_ring {
    int fd, efd;
    unsigned entries;
    unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
    unsigned *cq_head, *cq_tail, *cq_mask;
    struct io_uring_sqe *sqes;
    struct io_uring_cqe *cqes;
    void *sq_map, *cq_map;
    size_t sq_len, cq_len, sqes_len;
    unsigned queued;            /* prepared, not yet submitted */
    unsigned inflight;          /* submitted, not yet reaped */
};

struct blkdev {
    struct virtio_dev *vd;
    struct blk *img;
    bool readonly;
    char serial[BLK_ID_BYTES];
    uint8_t config[BLK_CONFIG_SIZE];
    unsigned gen;               /* written under vd->lock, read by workers */

    pthread_mutex_t mu;         /* the request list, free list and stop */
    pthread_cond_t cond;
    struct blk_req *head, *tail, *free_list;
    bool stop;
    unsigned busy;              /* requests handed to the workers, not done */
    char *path, *format;        /* to open the image again after a migration */
    unsigned open_flags;
    pthread_cond_t idle;        /* busy fell to 0 */
    pthread_t workers[BLK_WORKERS];
    unsigned nworkers;
    bool use_ring;
    struct blk_ring ring;
};

struct blk_args {
    char *path;
    const char *format;
    bool readonly;
    bool direct;
    bool uring;                 /* aio=io_uring */
    const char *serial;
};

static int blk_parse_args(char *s, struct blk_args *a, struct err *e)
{
    char *save = NULL, *tok = strtok_r(s, ",", &save);
    if (!tok || !*tok)
        return err_set(e, EINVAL, "--disk needs a path");
    a->path = tok;
    a->format = "raw";
    while ((tok = strtok_r(NULL, ",", &save))) {
        if (!strncmp(tok, "format=", 7)) {
            a->format = tok + 7;
            if (strcmp(a->format, "raw") && strcmp(a->format, "qcow2"))
                return err_set(e, EINVAL, "--disk %s: format must be raw or qcow2", a->path);
        } else if (!strcmp(tok, "readonly=on")) {
            a->readonly = true;
        } else if (!strcmp(tok, "readonly=off")) {
            a->readonly = false;
        } else if (!strncmp(tok, "serial=", 7)) {
            a->serial = tok + 7;
            if (strlen(a->serial) > BLK_ID_BYTES)
                return err_set(e, EINVAL, "--disk %s: serial is longer than %u bytes",
                               a->path, BLK_ID_BYTES);
        } else if (!strcmp(tok, "cache=none")) {
            a->direct = true;
        } else if (!strcmp(tok, "cache=writeback")) {
            a->direct = false;
        } else if (!strcmp(tok, "aio=threads")) {
            a->uring = false;
        } else if (!strcmp(tok, "aio=io_uring")) {
            a->uring = true;
        } else {
            return err_set(e, EINVAL, "--disk %s: unknown option '%s'", a->path, tok);
        }
    }
    return 0;
}


static void blk_fill_config(struct blkdev *d)
{
    memset(d->config, 0, sizeof(d->config));
    le64_put(d->config + CFG_CAPACITY, d->img->size / BLK_SECTOR);
    le32_put(d->config + CFG_SEG_MAX, BLK_SEG_MAX);
    le32_put(d->config + CFG_BLK_SIZE, BLK_SECTOR);
    le32_put(d->config + CFG_MAX_DISCARD_SECTORS, BLK_MAX_RANGE_SECTORS);
    le32_put(d->config + CFG_MAX_DISCARD_SEG, BLK_MAX_RANGE_SEGS);
    le32_put(d->config + CFG_DISCARD_ALIGN, 1);
    le32_put(d->config + CFG_MAX_WZ_SECTORS, BLK_MAX_RANGE_SECTORS);
    le32_put(d->config + CFG_MAX_WZ_SEG, BLK_MAX_RANGE_SEGS);
    /* write_zeroes_may_unmap stays 0: zeroes are always written. */
}

/* Points dst at bytes [off, off + len) of the n segments in src; returns
 * the segment count. */
static unsigned iov_slice(const struct iovec *src, unsigned n, uint64_t off, uint64_t len,
                          struct iovec *dst)
{
    unsigned k = 0;
    for (unsigned i = 0; i < n && len; i++) {
        if (off >= src[i].iov_len) {
            off -= src[i].iov_len;
            continue;
        }
        size_t take = src[i].iov_len - off;
        if (take > len)
            take = len;
        dst[k++] = (struct iovec){ (uint8_t *)src[i].iov_base + off, take };
        len -= take;
        off = 0;
    }
    return k;
}

/* Whether [sector, sector + bytes/512) lies within the disk. */
static bool blk_in_range(const struct blkdev *d, uint64_t sector, uint64_t bytes)
{
    uint64_t nsec = d->img->size / BLK_SECTOR;
    return sector <= nsec && bytes / BLK_SECTOR <= nsec - sector;
}

static uint8_t blk_status_of(const struct blkdev *d, int r, const struct err *e,
                             const char *what)
{
    if (r >= 0)
        return BLK_S_OK;
    log_debug("virtio-blk %s: %s failed: %s", d->img->filename, what, e->msg);
    return BLK_S_IOERR;
}

static uint8_t blk_rw(struct blkdev *d, struct blk_req *r, bool write, uint64_t sector,
                      uint32_t *written)
{
    struct virtq_elem *el = &r->elem;
    uint64_t len = write ? el->out_len - BLK_HDR_SIZE : el->in_len - 1;
    if (len % BLK_SECTOR || !blk_in_range(d, sector, len))
        return BLK_S_IOERR;
    if (write && d->readonly)
        return BLK_S_IOERR;
    if (!len)
        return BLK_S_OK;
    struct err e = { 0 };
    int rc = 0;
    /* In pieces: a format may stage a request in one host buffer, and the
     * guest's segments can name the same memory many times over. */
    for (uint64_t done = 0; done < len && rc >= 0; done += BLK_CHUNK) {
        uint64_t n = len - done < BLK_CHUNK ? len - done : BLK_CHUNK;
        uint64_t at = sector * BLK_SECTOR + done;
        unsigned k;
        if (write) {
            k = iov_slice(el->iov, el->nout, BLK_HDR_SIZE + done, n, r->data);
            rc = blk_pwritev(d->img, r->data, (int)k, at, &e);
        } else {
            k = iov_slice(el->iov + el->nout, el->nin, done, n, r->data);
            rc = blk_preadv(d->img, r->data, (int)k, at, &e);
        }
    }
    if (rc >= 0 && !write)
        *written += (uint32_t)len;
    return blk_status_of(d, rc, &e, write ? "write" : "read");
}

/* ---- io_uring ---- */

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
static void ring_submit(struct blkdev *d)
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

/* Puts a read or write of a raw image on the ring. False leaves the
 * request to the worker threads: other types, errors to report, pieces
 * larger than one image call, buffers O_DIRECT cannot take, a full ring. */
static bool ring_start(struct blkdev *d, struct blk_req *r)
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
    unsigned k = write ? iov_slice(el->iov, el->nout, BLK_HDR_SIZE, len, r->data)
                       : iov_slice(el->iov + el->nout, el->nin, 0, len, r->data);
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

static void blk_release(struct blkdev *d, struct blk_req *r);

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
    ring_submit(d);
    if (pushed)
        virtio_queue_interrupt(d->vd, 0);
    virtio_unlock(d->vd);
}

/* Waits for everything on the ring (device teardown). */
static void ring_drain(struct blkdev *d)
{
    struct blk_ring *rg = &d->ring;
    ring_submit(d);
    while (rg->inflight) {
        long n = syscall(__NR_io_uring_enter, rg->fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0);
        if (n < 0 && errno != EINTR)
            break;
        ring_reap(d, false);
    }
}

/* The ring for a raw image when the monitor has an event loop to watch
 * its completions; otherwise (or if the kernel has no io_uring) the
 * worker threads do everything. */
static void ring_open(struct blkdev *d)
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

/* DISCARD and WRITE_ZEROES: an array of 16-byte ranges after the header. */
static uint8_t blk_ranges(struct blkdev *d, struct blk_req *r, uint32_t type)
{
    uint64_t len = r->elem.out_len - BLK_HDR_SIZE;
    if (d->readonly)
        return BLK_S_IOERR;
    if (!len || len % 16 || len / 16 > BLK_MAX_RANGE_SEGS)
        return BLK_S_UNSUPP;
    for (uint64_t off = BLK_HDR_SIZE; off < r->elem.out_len; off += 16) {
        uint8_t seg[16];
        if (virtq_elem_read(&r->elem, off, seg, 16) != 16)
            return BLK_S_IOERR;
        uint64_t sector;
        uint32_t num, flags;
        memcpy(&sector, seg, 8);
        memcpy(&num, seg + 8, 4);
        memcpy(&flags, seg + 12, 4);
        sector = le64toh(sector);
        num = le32toh(num);
        flags = le32toh(flags);
        /* Unmap is only a hint for write-zeroes; discard must refuse it. */
        if ((flags & ~BLK_RANGE_F_UNMAP) || (type == BLK_T_DISCARD && flags))
            return BLK_S_UNSUPP;
        if (num > BLK_MAX_RANGE_SECTORS || !blk_in_range(d, sector, (uint64_t)num * BLK_SECTOR))
            return BLK_S_IOERR;
        struct err e = { 0 };
        int rc = type == BLK_T_DISCARD
            ? blk_discard(d->img, sector * BLK_SECTOR, (uint64_t)num * BLK_SECTOR, &e)
            : blk_write_zeroes(d->img, sector * BLK_SECTOR, (uint64_t)num * BLK_SECTOR, &e);
        /* A format that cannot discard has done nothing wrong: discard is a hint. */
        if (rc == -ENOTSUP || rc == -EOPNOTSUPP)
            rc = type == BLK_T_DISCARD ? 0 : rc;
        if (rc < 0)
            return blk_status_of(d, rc, &e, type == BLK_T_DISCARD ? "discard" : "write-zeroes");
    }
    return BLK_S_OK;
}

/* Runs one request on a worker; returns its status and adds the data
 * bytes written into the guest's buffers to *written. */
static uint8_t blk_execute(struct blkdev *d, struct blk_req *r, uint32_t *written)
{
    uint8_t hdr[BLK_HDR_SIZE];
    if (virtq_elem_read(&r->elem, 0, hdr, sizeof(hdr)) != sizeof(hdr))
        return BLK_S_IOERR;
    uint32_t type;
    uint64_t sector;
    memcpy(&type, hdr, 4);
    memcpy(&sector, hdr + 8, 8);
    type = le32toh(type);
    sector = le64toh(sector);
    switch (type) {
    case BLK_T_IN:
        return blk_rw(d, r, false, sector, written);
    case BLK_T_OUT:
        return blk_rw(d, r, true, sector, written);
    case BLK_T_FLUSH: {
        if (d->readonly)
            return BLK_S_OK;
        struct err e = { 0 };
        return blk_status_of(d, blk_flush(d->img, &e), &e, "flush");
    }
    case BLK_T_GET_ID: {
        size_t room = r->elem.in_len - 1;
        size_t n = virtq_elem_write(&r->elem, 0, d->serial, room < BLK_ID_BYTES ? room : BLK_ID_BYTES);
        *written += (uint32_t)n;
        return BLK_S_OK;
    }
    case BLK_T_DISCARD:
    case BLK_T_WRITE_ZEROES:
        return blk_ranges(d, r, type);
    default:
        return BLK_S_UNSUPP;
    }
}

static void blk_release(struct blkdev *d, struct blk_req *r)
{
    pthread_mutex_lock(&d->mu);
    r->next = d->free_list;
    d->free_list = r;
    pthread_mutex_unlock(&d->mu);
}

static void blk_complete(struct blkdev *d, struct blk_req *r)
{
    uint32_t written = 0;
    uint8_t st = blk_execute(d, r, &written);
    /* The status byte is the last byte of the writable side. */
    virtq_elem_write(&r->elem, r->elem.in_len - 1, &st, 1);
    struct virtio_dev *vd = d->vd;
    virtio_lock(vd);
    if (r->gen == d->gen && virtio_running(vd)) {
        virtio_push(vd, 0, r->elem.head, written + 1);
        virtio_queue_interrupt(vd, 0);
    }
    virtio_unlock(vd);
}

static void *blk_worker(void *opaque)
{
    struct blkdev *d = opaque;
    for (;;) {
        pthread_mutex_lock(&d->mu);
        while (!d->stop && !d->head)
            pthread_cond_wait(&d->cond, &d->mu);
        if (d->stop) {
            pthread_mutex_unlock(&d->mu);
            return NULL;
        }
        struct blk_req *r = d->head;
        d->head = r->next;
        if (!d->head)
            d->tail = NULL;
        pthread_mutex_unlock(&d->mu);
        /* Requests from before a reset are not started at all. */
        if (r->gen == __atomic_load_n(&d->gen, __ATOMIC_ACQUIRE))
            blk_complete(d, r);
        blk_release(d, r);
        pthread_mutex_lock(&d->mu);
        if (--d->busy == 0)
            pthread_cond_broadcast(&d->idle);
        pthread_mutex_unlock(&d->mu);
    }
}

static struct blk_req *blk_get_req(struct blkdev *d)
{
    pthread_mutex_lock(&d->mu);
    struct blk_req *r = d->free_list;
    if (r)
        d->free_list = r->next;
    pthread_mutex_unlock(&d->mu);
    return r ? r : malloc(sizeof(*r));
}

static void blk_queue_notify(struct virtio_dev *vd, unsigned q)
{
    struct blkdev *d = vd->priv;
    struct blk_req *r;
    unsigned queued = 0;
    while ((r = blk_get_req(d))) {
        if (virtio_pop(vd, 0, &r->elem) <= 0) {
            blk_release(d, r);
            break;
        }
        if (r->elem.in_len == 0) {
            /* Nowhere to put a status: the driver broke the protocol (5.2.6.1). */
            virtio_dev_broken(vd, "a request without a writable status byte");
            blk_release(d, r);
            break;
        }
        r->gen = d->gen;
        if (d->use_ring && ring_start(d, r))
            continue;
        r->next = NULL;
        pthread_mutex_lock(&d->mu);
        d->busy++;
        if (d->tail)
            d->tail->next = r;
        else
            d->head = r;
        d->tail = r;
        pthread_mutex_unlock(&d->mu);
        queued++;
    }
    if (d->use_ring)
        ring_submit(d);
    /* One worker per request, but at most BLK_WAKE_MAX at a time: a woken
     * worker takes requests until the list is empty, and each wake-up is
     * two context switches, which on a small host cost more than the
     * parallel I/O gains (measured with bench/disk). */
    if (queued) {
        pthread_mutex_lock(&d->mu);
        for (unsigned i = 0; i < queued && i < BLK_WAKE_MAX; i++)
            pthread_cond_signal(&d->cond);
        pthread_mutex_unlock(&d->mu);
    }
}

/* Migration and save: every request taken off the queue completes and
 * its chain goes back to the driver before the queues are saved. The
 * core has stopped handing out chains; the ring is reaped here under the
 * device lock (the event loop takes the same lock to touch it). */
static void blk_drain(struct virtio_dev *vd)
{
    struct blkdev *d = vd->priv;
    if (d->use_ring) {
        virtio_lock(vd);
        struct blk_ring *rg = &d->ring;
        ring_submit(d);
        bool pushed = false;
        while (rg->inflight) {
            long n = syscall(__NR_io_uring_enter, rg->fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0);
            if (n < 0 && errno != EINTR)
                break;
            pushed |= ring_reap(d, true);
        }
        if (pushed)
            virtio_queue_interrupt(vd, 0);
        virtio_unlock(vd);
    }
    pthread_mutex_lock(&d->mu);
    while (d->busy)
        pthread_cond_wait(&d->idle, &d->mu);
    pthread_mutex_unlock(&d->mu);
    /* What the format layer caches (qcow2 tables) goes to the file, for
     * the destination that opens it next. */
    struct err e = { 0 };
    if (!d->readonly && blk_flush(d->img, &e) < 0)
        log_warn("virtio-blk %s: flush before migration: %s", d->img->filename, e.msg);
}

/* On a restored or migrated VM: the image was opened before the source
 * last wrote it, so a format that caches metadata (qcow2) opens it again.
 * Raw images keep their file (and the ring its descriptor). No state of
 * its own is saved: the drain left nothing in flight. */
static int blk_load(struct virtio_dev *vd, struct snapbuf *b, struct err *e)
{
    struct blkdev *d = vd->priv;
    if (d->img->drv == &blk_raw_driver || !d->path)
        return 0;
    struct blk *img;
    struct blk_open_opts o = { 0 };
    int r = blk_open(&img, d->path, d->format, d->open_flags, &o, e);
    if (r < 0) {
        err_prefix(e, "--disk %s: ", d->path);
        return r;
    }
    blk_close(d->img);
    d->img = img;
    return 0;
}

static void blk_reset(struct virtio_dev *vd)
{
    struct blkdev *d = vd->priv;
    __atomic_store_n(&d->gen, d->gen + 1, __ATOMIC_RELEASE);
}

static void blk_config_read(struct virtio_dev *vd, unsigned off, uint8_t *data, unsigned len)
{
    struct blkdev *d = vd->priv;
    memcpy(data, d->config + off, len);
}

static void blk_config_write(struct virtio_dev *vd, unsigned off, const uint8_t *data,
                             unsigned len)
{
    /* Only writeback is writable, and only with CONFIG_WCE, not offered. */
}

static void blk_free_list(struct blk_req *r)
{
    while (r) {
        struct blk_req *n = r->next;
        free(r);
        r = n;
    }
}

static void blk_destroy(struct virtio_dev *vd)
{
    struct blkdev *d = vd->priv;
    if (!d)
        return;
    if (d->use_ring) {
        evloop_del(vd->loop, d->ring.efd);
        ring_drain(d);
        ring_free(&d->ring);
        d->use_ring = false;
    }
    pthread_mutex_lock(&d->mu);
    d->stop = true;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->mu);
    for (unsigned i = 0; i < d->nworkers; i++)
        pthread_join(d->workers[i], NULL);
    blk_free_list(d->head);
    blk_free_list(d->free_list);
    if (d->img)
        blk_close(d->img);
    pthread_cond_destroy(&d->cond);
    pthread_cond_destroy(&d->idle);
    free(d->path);
    free(d->format);
    pthread_mutex_destroy(&d->mu);
    free(d);
    vd->priv = NULL;
}

static int blk_create_dev(struct virtio_dev *vd, const char *arg, struct err *e)
{
    struct blk_args a = { 0 };
    char *s = strdup(arg ? arg : "");
    if (!s)
        return err_set(e, ENOMEM, "out of memory");
    int r = blk_parse_args(s, &a, e);
    struct blkdev *d = r < 0 ? NULL : calloc(1, sizeof(*d));
    if (r == 0 && !d)
        r = err_set(e, ENOMEM, "out of memory");
    if (r < 0) {
        free(s);
        return r;
    }
    d->vd = vd;
    d->readonly = a.readonly;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cond, NULL);
    pthread_cond_init(&d->idle, NULL);
    vd->priv = d;
    if (a.serial)
        memcpy(d->serial, a.serial, strlen(a.serial));
    struct blk_open_opts o = { 0 };
    unsigned flags = (a.readonly ? 0 : BLK_O_RDWR) | (a.direct ? BLK_O_DIRECT : 0);
    r = blk_open(&d->img, a.path, a.format, flags, &o, e);
    if (r < 0)
        err_prefix(e, "--disk %s: ", a.path);
    d->path = strdup(a.path);
    d->format = a.format ? strdup(a.format) : NULL;
    d->open_flags = flags;
    free(s);
    if (r < 0) {
        d->img = NULL;
        blk_destroy(vd);
        return r;
    }
    if (a.uring)
        ring_open(d);
    blk_fill_config(d);
    vd->device_features = (1ULL << BLK_F_SEG_MAX) | (1ULL << BLK_F_BLK_SIZE) |
                          (1ULL << BLK_F_FLUSH) | (1ULL << BLK_F_DISCARD) |
                          (1ULL << BLK_F_WRITE_ZEROES);
    if (a.readonly)
        vd->device_features = (vd->device_features & ~((1ULL << BLK_F_DISCARD) |
                                                       (1ULL << BLK_F_WRITE_ZEROES))) |
                              (1ULL << BLK_F_RO);
    /* With the ring the threads only see flushes and the odd request. */
    unsigned nworkers = d->use_ring ? BLK_RING_WORKERS : BLK_WORKERS;
    for (; d->nworkers < nworkers; d->nworkers++) {
        int rc = pthread_create(&d->workers[d->nworkers], NULL, blk_worker, d);
        if (rc) {
            blk_destroy(vd);
            return err_set(e, rc, "--disk: cannot start an I/O thread");
        }
    }
    return 0;
}

const struct virtio_dev_ops virtio_blk_ops = {
    .name = "blk",
    .device_id = VIRTIO_ID_BLOCK,
    .nqueues = 1,
    .queue_size = BLK_QUEUE_SIZE,
    .config_size = BLK_CONFIG_SIZE,
    .create = blk_create_dev,
    .destroy = blk_destroy,
    .config_read = blk_config_read,
    .config_write = blk_config_write,
    .queue_notify = blk_queue_notify,
    .reset = blk_reset,
    .drain = blk_drain,
    .load = blk_load,
};
