/* virtio-blk (virtio 1.x, 5.2) on libcvirt-img: raw or qcow2 images, one
 * request queue, served by worker threads or an io_uring per disk.
 *
 * The event loop only takes chains off the queue, checks that each has a
 * status byte the device may write, and starts the I/O. By default
 * (aio=threads) a pool of worker threads runs every request on
 * libcvirt-img, so a slow disk never holds the event loop or the vCPUs.
 * With aio=io_uring, reads and writes of a raw image go to the kernel
 * through an io_uring instead, submitted in one system call per
 * notification and completed on the event loop through an eventfd (that
 * path is blk_ring.c); the pool keeps the rest (flush, discard, a request
 * the ring cannot take).
 * The threads are the default because they measured faster on the disk
 * benchmark (bench/disk): the ring puts every submission and completion
 * on the one event loop thread. Completions return the chain under the
 * device lock. A reset bumps a generation number:
 * requests taken before it finish their I/O but are never returned to the
 * new queues. */
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/le.h"
#include "img/blk.h"
#include "util/evloop.h"
#include "util/log.h"
#include "virtio/blk_int.h"
#include "virtio/virtio.h"

struct blk_args {
    char *path;
    const char *format;
    bool readonly;
    bool direct;
    bool uring;                 /* aio=io_uring */
    bool inactive;              /* inactive=on: an incoming migration's disk */
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
        } else if (!strcmp(tok, "inactive=on")) {
            a->inactive = true;
        } else if (!strcmp(tok, "inactive=off")) {
            a->inactive = false;
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

unsigned blk_iov_slice(const struct iovec *src, unsigned n, uint64_t off, uint64_t len,
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

bool blk_in_range(const struct blkdev *d, uint64_t sector, uint64_t bytes)
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
            k = blk_iov_slice(el->iov, el->nout, BLK_HDR_SIZE + done, n, r->data);
            rc = blk_pwritev(d->img, r->data, (int)k, at, &e);
        } else {
            k = blk_iov_slice(el->iov + el->nout, el->nin, done, n, r->data);
            rc = blk_preadv(d->img, r->data, (int)k, at, &e);
        }
    }
    if (rc >= 0 && !write)
        *written += (uint32_t)len;
    return blk_status_of(d, rc, &e, write ? "write" : "read");
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

void blk_release(struct blkdev *d, struct blk_req *r)
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
        if (d->use_ring && blk_ring_start(d, r))
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
        blk_ring_submit(d);
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
        if (blk_ring_wait(d))
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
 * last wrote it (read-only with inactive=on), so a format that caches
 * metadata (qcow2) opens it again, now as the options ask.
 * Raw images keep their file (and the ring its descriptor). No state of
 * its own is saved: the drain left nothing in flight. */
static int blk_load(struct virtio_dev *vd, struct snapbuf *b, struct err *e)
{
    struct blkdev *d = vd->priv;
    if (d->img->drv == &blk_raw_driver || !d->path)
        return 0;
    d->inactive = false;
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
    if (d->use_ring)
        blk_ring_close(d);
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
    /* inactive=on: the source of an incoming migration still writes the
     * image. A format with metadata is opened read-only, so that opening
     * writes nothing (no dirty bit, no repair, no header update) and
     * closing neither; blk_load opens it as asked once the source has
     * stopped and flushed. Raw has no metadata to go stale. */
    bool meta = a.format && strcmp(a.format, "raw") != 0;
    d->inactive = a.inactive && meta && !a.readonly;
    r = blk_open(&d->img, a.path, a.format, d->inactive ? flags & ~BLK_O_RDWR : flags, &o, e);
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
        blk_ring_open(d);
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
