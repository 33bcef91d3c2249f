/* Driver table, opening images and their backing chains, and the thin
 * dispatch wrappers every caller goes through. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "img/blk.h"
#include "util/log.h"

/* Probe order: formats with a magic first, raw last (it matches anything). */
static const struct blk_driver *const drivers[] = {
    &blk_qcow2_driver,
    &blk_raw_driver,
    NULL,
};

const struct blk_driver *const *blk_drivers(void) { return drivers; }

const struct blk_driver *blk_find_driver(const char *name)
{
    for (int i = 0; drivers[i]; i++)
        if (strcmp(drivers[i]->name, name) == 0)
            return drivers[i];
    return NULL;
}

int blk_file_pread(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t r = pread(fd, p, len, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0) {           /* past EOF reads as zeros */
            memset(p, 0, len);
            return 0;
        }
        p += r; len -= (size_t)r; off += (uint64_t)r;
    }
    return 0;
}

int blk_file_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t r = pwrite(fd, p, len, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += r; len -= (size_t)r; off += (uint64_t)r;
    }
    return 0;
}

bool blk_is_zero(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len && ((uintptr_t)p & 7)) {
        if (*p)
            return false;
        p++; len--;
    }
    const uint64_t *q = (const uint64_t *)p;
    for (; len >= 32; len -= 32, q += 4)
        if (q[0] | q[1] | q[2] | q[3])
            return false;
    p = (const uint8_t *)q;
    for (; len; len--, p++)
        if (*p)
            return false;
    return true;
}

const struct blk_driver *blk_probe_file(const char *path, struct err *e)
{
    uint8_t buf[512];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set_errno(e, errno, "Could not open '%s'", path), NULL;
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    int saved = errno;
    close(fd);
    if (n < 0)
        return err_set_errno(e, saved, "Could not read '%s'", path), NULL;
    const struct blk_driver *best = NULL;
    int score = 0;
    for (int i = 0; drivers[i]; i++) {
        int s = drivers[i]->probe ? drivers[i]->probe(buf, (size_t)n) : 0;
        if (s > score) {
            score = s;
            best = drivers[i];
        }
    }
    if (!best)
        err_set(e, EINVAL, "Could not determine the format of '%s'", path);
    return best;
}

void blk_backing_path(const char *image, const char *name, char *out, size_t n)
{
    const char *slash = strrchr(image, '/');
    if (name[0] == '/' || !slash)
        snprintf(out, n, "%s", name);
    else
        snprintf(out, n, "%.*s/%s", (int)(slash - image), image, name);
}

/* The smallest O_DIRECT transfer the file accepts: the file system's and
 * the device's logical block size, which fstat does not tell. */
static unsigned probe_direct_align(int fd)
{
    void *buf;
    if (posix_memalign(&buf, 4096, 4096))
        return 4096;
    unsigned a = 512;
    for (; a < 4096; a *= 2)
        if (pread(fd, buf, a, 0) >= 0 || errno != EINVAL)
            break;
    free(buf);
    return a;
}

/* Opens the image file; with BLK_O_DIRECT a raw image bypasses the page
 * cache, unless the file system refuses, where the image still opens
 * (buffered) because a VM that will not start over a cache mode surprises
 * more than one that runs through the page cache. */
static int open_image_fd(struct blk *b, const char *path, const struct blk_driver *drv,
                         unsigned flags)
{
    int mode = ((flags & BLK_O_RDWR) ? O_RDWR : O_RDONLY) | O_CLOEXEC;
    if (!(flags & BLK_O_DIRECT) || drv != &blk_raw_driver)
        return open(path, mode);
    int fd = open(path, mode | O_DIRECT);
    if (fd >= 0) {
        b->align = probe_direct_align(fd);
        return fd;
    }
    if (errno != EINVAL)
        return -1;
    log_info("'%s': the file system refuses O_DIRECT (cache=none); "
             "using the host page cache", path);
    return open(path, mode);
}

static int open_one(struct blk **out, const char *path, const char *fmt,
                    unsigned flags, const struct blk_open_opts *o, struct err *e)
{
    const struct blk_driver *drv;
    if (fmt) {
        drv = blk_find_driver(fmt);
        if (!drv)
            return err_set(e, EINVAL, "Unknown driver '%s'", fmt);
    } else {
        drv = blk_probe_file(path, e);
        if (!drv)
            return -e->code;
        /* A raw image's first bytes belong to its guest; never let them
         * choose a format we would then write metadata into. */
        if (drv == &blk_raw_driver && (flags & BLK_O_RDWR))
            return err_set(e, EINVAL, "'%s': refusing to write an image whose "
                           "format was probed as raw; give the format explicitly",
                           path);
    }
    struct blk *b = calloc(1, sizeof *b);
    if (!b)
        return err_set(e, ENOMEM, "out of memory");
    b->drv = drv;
    b->flags = flags;
    b->filename = strdup(path);
    b->fd = open_image_fd(b, path, drv, flags);
    int r;
    if (b->fd < 0) {
        r = err_set_errno(e, errno, "Could not open '%s'", path);
        goto fail;
    }
    struct stat st;
    if (fstat(b->fd, &st) < 0) {
        r = err_set_errno(e, errno, "Could not stat '%s'", path);
        goto fail;
    }
    b->dev = st.st_dev;
    b->ino = st.st_ino;
    if (drv->state_size && !(b->state = calloc(1, drv->state_size))) {
        r = err_set(e, ENOMEM, "out of memory");
        goto fail;
    }
    struct blk_open_opts defaults = {0};
    r = drv->open(b, o ? o : &defaults, e);
    if (r < 0) {
        free(b->state);
        b->state = NULL;
        goto fail;
    }
    *out = b;
    return 0;
fail:
    if (b->fd >= 0)
        close(b->fd);
    free(b->filename);
    free(b);
    return r;
}

int blk_open(struct blk **out, const char *path, const char *fmt, unsigned flags,
             const struct blk_open_opts *o, struct err *e)
{
    struct blk *top;
    int r = open_one(&top, path, fmt, flags, o, e);
    if (r < 0)
        return r;
    if (flags & BLK_O_NO_BACKING) {
        *out = top;
        return 0;
    }
    struct blk *cur = top;
    for (int depth = 1; ; depth++) {
        struct blk_info info;
        if ((r = blk_get_info(cur, &info, e)) < 0)
            goto fail;
        if (!info.backing_file[0])
            break;
        if (depth >= BLK_MAX_CHAIN) {
            r = err_set(e, ELOOP, "'%s': backing chain deeper than %d", path,
                        BLK_MAX_CHAIN);
            goto fail;
        }
        char bpath[BLK_PATH_MAX];
        blk_backing_path(cur->filename, info.backing_file, bpath, sizeof bpath);
        struct blk *nb;
        r = open_one(&nb, bpath, info.backing_fmt[0] ? info.backing_fmt : NULL,
                     flags & ~(unsigned)BLK_O_RDWR, o, e);
        if (r < 0) {
            err_prefix(e, "Could not open backing file of '%s': ", cur->filename);
            goto fail;
        }
        for (struct blk *p = top; p; p = p->backing) {
            if (p->dev == nb->dev && p->ino == nb->ino) {
                blk_close(nb);
                r = err_set(e, ELOOP, "'%s': backing chain loops back to '%s'",
                            path, bpath);
                goto fail;
            }
        }
        cur->backing = nb;
        cur = nb;
    }
    *out = top;
    return 0;
fail:
    blk_close(top);
    return r;
}

void blk_close(struct blk *b)
{
    while (b) {
        struct blk *next = b->backing;
        if (b->state)
            b->drv->close(b);
        free(b->state);
        if (b->fd >= 0)
            close(b->fd);
        free(b->filename);
        free(b);
        b = next;
    }
}

static int check_range(struct blk *b, uint64_t off, uint64_t len, struct err *e)
{
    if (off > b->size || len > b->size - off)
        return err_set(e, EINVAL, "'%s': request at %llu+%llu beyond end %llu",
                       b->filename, (unsigned long long)off,
                       (unsigned long long)len, (unsigned long long)b->size);
    return 0;
}

static uint64_t iov_total(const struct iovec *iov, int n)
{
    uint64_t t = 0;
    for (int i = 0; i < n; i++)
        t += iov[i].iov_len;
    return t;
}

int blk_preadv(struct blk *b, const struct iovec *iov, int iovcnt, uint64_t off,
               struct err *e)
{
    int r = check_range(b, off, iov_total(iov, iovcnt), e);
    return r < 0 ? r : b->drv->preadv(b, iov, iovcnt, off, e);
}

static int need_rw(struct blk *b, struct err *e)
{
    if (!(b->flags & BLK_O_RDWR))
        return err_set(e, EROFS, "'%s' is opened read-only", b->filename);
    return 0;
}

int blk_pwritev(struct blk *b, const struct iovec *iov, int iovcnt, uint64_t off,
                struct err *e)
{
    int r = need_rw(b, e);
    if (r == 0)
        r = check_range(b, off, iov_total(iov, iovcnt), e);
    return r < 0 ? r : b->drv->pwritev(b, iov, iovcnt, off, e);
}

int blk_pread(struct blk *b, void *buf, size_t len, uint64_t off, struct err *e)
{
    struct iovec v = { buf, len };
    return blk_preadv(b, &v, 1, off, e);
}

int blk_pwrite(struct blk *b, const void *buf, size_t len, uint64_t off,
               struct err *e)
{
    struct iovec v = { (void *)buf, len };
    return blk_pwritev(b, &v, 1, off, e);
}

int blk_flush(struct blk *b, struct err *e)
{
    if (!(b->flags & BLK_O_RDWR))
        return 0;
    return b->drv->flush(b, e);
}

int blk_discard(struct blk *b, uint64_t off, uint64_t len, struct err *e)
{
    int r = need_rw(b, e);
    if (r == 0)
        r = check_range(b, off, len, e);
    if (r < 0 || !b->drv->discard)
        return r;
    return b->drv->discard(b, off, len, e);
}

int blk_write_zeroes(struct blk *b, uint64_t off, uint64_t len, struct err *e)
{
    int r = need_rw(b, e);
    if (r == 0)
        r = check_range(b, off, len, e);
    return r < 0 ? r : b->drv->write_zeroes(b, off, len, e);
}

int blk_truncate(struct blk *b, uint64_t size, bool shrink, struct err *e)
{
    int r = need_rw(b, e);
    if (r < 0)
        return r;
    if (size < b->size && !shrink)
        return err_set(e, EINVAL, "Use the --shrink option to perform a shrink "
                       "operation.");
    if (!b->drv->truncate)
        return err_set(e, ENOTSUP, "format %s cannot be resized", b->drv->name);
    return b->drv->truncate(b, size, shrink, e);
}

int blk_write_compressed(struct blk *b, uint64_t off, const void *buf, size_t len,
                         struct err *e)
{
    int r = need_rw(b, e);
    if (r < 0)
        return r;
    if (!b->drv->write_compressed)
        return err_set(e, ENOTSUP, "format %s does not support compression",
                       b->drv->name);
    return b->drv->write_compressed(b, off, buf, len, e);
}

int blk_block_status(struct blk *b, uint64_t off, uint64_t len,
                     struct blk_status *st, struct err *e)
{
    int r = check_range(b, off, len, e);
    return r < 0 ? r : b->drv->block_status(b, off, len, st, e);
}

int blk_check(struct blk *b, int fix, struct blk_check_result *r, struct err *e)
{
    void (*report)(void *, const char *) = r->report;
    void *opaque = r->report_opaque;
    memset(r, 0, sizeof *r);
    r->report = report;
    r->report_opaque = opaque;
    if (!b->drv->check)
        return err_set(e, ENOTSUP, "This image format does not support checks");
    if (fix && !(b->flags & BLK_O_RDWR))
        return err_set(e, EROFS, "'%s' is opened read-only", b->filename);
    return b->drv->check(b, fix, r, e);
}

int blk_get_info(struct blk *b, struct blk_info *info, struct err *e)
{
    memset(info, 0, sizeof *info);
    info->format = b->drv->name;
    info->virtual_size = b->size;
    return b->drv->get_info ? b->drv->get_info(b, info, e) : 0;
}

int blk_set_backing(struct blk *b, const char *name, const char *fmt, struct err *e)
{
    int r = need_rw(b, e);
    if (r < 0)
        return r;
    if (!b->drv->set_backing)
        return err_set(e, ENOTSUP, "format %s has no backing file", b->drv->name);
    return b->drv->set_backing(b, name, fmt, e);
}

int blk_create(const char *fmt, const char *path, const struct blk_create_opts *o,
               struct err *e)
{
    const struct blk_driver *drv = blk_find_driver(fmt);
    if (!drv)
        return err_set(e, EINVAL, "Unknown file format '%s'", fmt);
    return drv->create(path, o, e);
}

int blk_read_backing(struct blk *b, void *buf, size_t len, uint64_t off,
                     struct err *e)
{
    struct blk *bk = b->backing;
    if (!bk || off >= bk->size) {
        memset(buf, 0, len);
        return 0;
    }
    size_t n = len;
    if (off + n > bk->size)
        n = (size_t)(bk->size - off);
    int r = blk_pread(bk, buf, n, off, e);
    if (r == 0 && n < len)
        memset((uint8_t *)buf + n, 0, len - n);
    return r;
}

int blk_snapshot_list(struct blk *b, struct blk_snapshot_info **out, int *n,
                      struct err *e)
{
    *out = NULL;
    *n = 0;
    return b->drv->snapshot_list ? b->drv->snapshot_list(b, out, n, e) : 0;
}

static int snap_op(struct blk *b, int (*op)(struct blk *, const char *, struct err *),
                   const char *name, struct err *e)
{
    int r = need_rw(b, e);
    if (r < 0)
        return r;
    if (!op)
        return err_set(e, ENOTSUP, "format %s does not support internal snapshots",
                       b->drv->name);
    return op(b, name, e);
}

int blk_snapshot_create(struct blk *b, const char *name, struct err *e)
{
    return snap_op(b, b->drv->snapshot_create, name, e);
}

int blk_snapshot_apply(struct blk *b, const char *name, struct err *e)
{
    return snap_op(b, b->drv->snapshot_apply, name, e);
}

int blk_snapshot_delete(struct blk *b, const char *name, struct err *e)
{
    return snap_op(b, b->drv->snapshot_delete, name, e);
}

int blk_amend(struct blk *b, const struct blk_create_opts *o, struct err *e)
{
    int r = need_rw(b, e);
    if (r < 0)
        return r;
    if (!b->drv->amend)
        return err_set(e, ENOTSUP, "format %s does not support amend", b->drv->name);
    return b->drv->amend(b, o, e);
}

size_t blk_compress_bound(struct blk *b)
{
    struct blk_info info;
    struct err e = {0};
    blk_get_info(b, &info, &e);
    return info.cluster_size ? info.cluster_size : 65536;
}

size_t blk_compress(struct blk *b, const void *in, size_t len, void *out)
{
    return b->drv->compress ? b->drv->compress(b, in, len, out) : 0;
}

int blk_write_precompressed(struct blk *b, uint64_t off, const void *cdata, size_t clen,
                            const void *raw, size_t len, struct err *e)
{
    int r = need_rw(b, e);
    if (r < 0)
        return r;
    if (!b->drv->write_precompressed)
        return err_set(e, ENOTSUP, "format %s does not support compression", b->drv->name);
    return b->drv->write_precompressed(b, off, cdata, clen, raw, len, e);
}
