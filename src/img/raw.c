/* raw: the image file is the disk. */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "img/blk.h"

static int raw_probe(const uint8_t *buf, size_t len)
{
    return 1;   /* anything is a raw image; every other format wins */
}

static int raw_open(struct blk *b, const struct blk_open_opts *o, struct err *e)
{
    off_t end = lseek(b->fd, 0, SEEK_END);
    if (end < 0)
        return err_set_errno(e, errno, "'%s': cannot get size", b->filename);
    b->size = (uint64_t)end;
    return 0;
}

/* The whole of iov at off, in as few system calls as the kernel allows:
 * a short transfer continues where it stopped; reading past the end of
 * the file gives zeros. */
static int raw_xfer(int fd, const struct iovec *iov, int n, uint64_t off, bool write)
{
    struct iovec v[64];
    int i = 0;
    size_t skip = 0;            /* bytes of iov[i] already done */
    bool was_short = false;
    for (;;) {
        while (i < n && iov[i].iov_len == skip) {
            i++;
            skip = 0;
        }
        if (i == n)
            return 0;
        int k = 0;
        for (int j = i; j < n && k < (int)(sizeof v / sizeof v[0]); j++, k++) {
            size_t s = j == i ? skip : 0;
            v[k] = (struct iovec){ (uint8_t *)iov[j].iov_base + s, iov[j].iov_len - s };
        }
        ssize_t r = write ? pwritev(fd, v, k, (off_t)off) : preadv(fd, v, k, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        /* O_DIRECT stops short at an end of file that is not aligned, and
         * refuses to go on from there: that is the end of the file too. */
        bool eof = r == 0 || (r < 0 && errno == EINVAL && was_short);
        if (r < 0 && !(eof && !write))
            return -errno;
        size_t want = 0;
        for (int j = 0; j < k; j++)
            want += v[j].iov_len;
        was_short = r >= 0 && (size_t)r < want;
        if (eof && !write) {
            for (int j = 0; j < k; j++)
                memset(v[j].iov_base, 0, v[j].iov_len);
            r = (ssize_t)want;
        } else if (r == 0) {
            return -EIO;
        }
        off += (uint64_t)r;
        for (size_t left = (size_t)r; left && i < n; ) {
            size_t rest = iov[i].iov_len - skip;
            if (left < rest) {
                skip += left;
                left = 0;
            } else {
                left -= rest;
                i++;
                skip = 0;
            }
        }
    }
}

/* Whether an O_DIRECT transfer can use the caller's buffers as they are. */
static bool raw_aligned(const struct blk *b, const struct iovec *iov, int n, uint64_t off)
{
    uintptr_t m = b->align - 1;
    if (off & m)
        return false;
    for (int i = 0; i < n; i++)
        if (((uintptr_t)iov[i].iov_base | iov[i].iov_len) & m)
            return false;
    return true;
}

static size_t iov_bytes(const struct iovec *iov, int n)
{
    size_t t = 0;
    for (int i = 0; i < n; i++)
        t += iov[i].iov_len;
    return t;
}

/* O_DIRECT with buffers, offset or length off the alignment: the enclosing
 * aligned range goes through one aligned buffer. A write reads the partial
 * blocks at either end first (only when off or len is unaligned, which the
 * virtio-blk sector size avoids on 512-byte devices). */
static int raw_bounce(struct blk *b, const struct iovec *iov, int n, uint64_t off, bool write)
{
    size_t len = iov_bytes(iov, n);
    uint64_t a = b->align, start = off & ~(a - 1);
    uint64_t end = (off + len + a - 1) & ~(a - 1);
    size_t span = (size_t)(end - start), lead = (size_t)(off - start);
    uint8_t *buf;
    if (posix_memalign((void **)&buf, a < 4096 ? 4096 : a, span ? span : a))
        return -ENOMEM;
    struct iovec whole = { buf, span };
    int r = 0;
    if (!write || lead || (off + len) % a) {
        if (write && span > 2 * a) {
            struct iovec head = { buf, a }, tail = { buf + span - a, a };
            r = raw_xfer(b->fd, &head, 1, start, false);
            if (r == 0)
                r = raw_xfer(b->fd, &tail, 1, end - a, false);
        } else {
            r = raw_xfer(b->fd, &whole, 1, start, false);
        }
    }
    uint8_t *p = buf + lead;
    for (int i = 0; r == 0 && i < n; p += iov[i].iov_len, i++) {
        if (write)
            memcpy(p, iov[i].iov_base, iov[i].iov_len);
        else
            memcpy(iov[i].iov_base, p, iov[i].iov_len);
    }
    if (r == 0 && write)
        r = raw_xfer(b->fd, &whole, 1, start, true);
    /* A whole last block went out where the file ends inside it: cut the
     * file back to its size, or the image would grow by the padding. */
    if (r == 0 && write && end > b->size && off + len <= b->size &&
        ftruncate(b->fd, (off_t)b->size) < 0)
        r = -errno;
    free(buf);
    return r;
}

static int raw_io(struct blk *b, const struct iovec *iov, int n, uint64_t off, bool write)
{
    if (b->align && !raw_aligned(b, iov, n, off))
        return raw_bounce(b, iov, n, off, write);
    return raw_xfer(b->fd, iov, n, off, write);
}

static int raw_preadv(struct blk *b, const struct iovec *iov, int n, uint64_t off,
                      struct err *e)
{
    int r = raw_io(b, iov, n, off, false);
    if (r < 0)
        return err_set_errno(e, -r, "'%s': read at %llu", b->filename,
                             (unsigned long long)off);
    return 0;
}

static int raw_pwritev(struct blk *b, const struct iovec *iov, int n, uint64_t off,
                       struct err *e)
{
    int r = raw_io(b, iov, n, off, true);
    if (r < 0)
        return err_set_errno(e, -r, "'%s': write at %llu", b->filename,
                             (unsigned long long)off);
    return 0;
}

static int raw_flush(struct blk *b, struct err *e)
{
    if (!(b->flags & BLK_O_UNSAFE) && fdatasync(b->fd) < 0)
        return err_set_errno(e, errno, "'%s': flush", b->filename);
    return 0;
}

static int raw_discard(struct blk *b, uint64_t off, uint64_t len, struct err *e)
{
    /* Discard is advisory: a file system without hole punching keeps data. */
    if (fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  (off_t)off, (off_t)len) < 0 && errno != EOPNOTSUPP)
        return err_set_errno(e, errno, "'%s': discard", b->filename);
    return 0;
}

static int raw_write_zeroes(struct blk *b, uint64_t off, uint64_t len, struct err *e)
{
    if (fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  (off_t)off, (off_t)len) == 0)
        return 0;
    if (fallocate(b->fd, FALLOC_FL_ZERO_RANGE, (off_t)off, (off_t)len) == 0)
        return 0;
    static const uint8_t zeros[65536];
    while (len) {
        size_t n = len < sizeof zeros ? (size_t)len : sizeof zeros;
        struct iovec v = { (void *)zeros, n };
        int r = raw_io(b, &v, 1, off, true);
        if (r < 0)
            return err_set_errno(e, -r, "'%s': write zeroes", b->filename);
        off += n; len -= n;
    }
    return 0;
}

static int raw_truncate(struct blk *b, uint64_t size, bool shrink, struct err *e)
{
    if (ftruncate(b->fd, (off_t)size) < 0)
        return err_set_errno(e, errno, "'%s': resize", b->filename);
    b->size = size;
    return 0;
}

static int raw_create(const char *path, const struct blk_create_opts *o,
                      struct err *e)
{
    if (o->backing_file)
        return err_set(e, EINVAL, "raw images have no backing file");
    if (o->cluster_size || o->compat || o->lazy_refcounts || o->refcount_bits)
        return err_set(e, EINVAL, "raw images take no qcow2 options");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return err_set_errno(e, errno, "Could not create '%s'", path);
    int r = 0;
    if (ftruncate(fd, (off_t)o->size) < 0) {
        r = err_set_errno(e, errno, "Could not resize '%s'", path);
    } else if (o->prealloc == BLK_PREALLOC_FALLOC && o->size) {
        if (fallocate(fd, 0, 0, (off_t)o->size) < 0)
            r = err_set_errno(e, errno, "Could not preallocate '%s'", path);
    } else if (o->prealloc == BLK_PREALLOC_FULL) {
        static const uint8_t zeros[1 << 16];
        for (uint64_t off = 0; off < o->size && r == 0; off += sizeof zeros) {
            size_t n = o->size - off < sizeof zeros ? (size_t)(o->size - off)
                                                    : sizeof zeros;
            if (blk_file_pwrite(fd, zeros, n, off) < 0)
                r = err_set_errno(e, errno, "Could not preallocate '%s'", path);
        }
    }
    close(fd);
    return r;
}

static int raw_block_status(struct blk *b, uint64_t off, uint64_t len,
                            struct blk_status *st, struct err *e)
{
    memset(st, 0, sizeof *st);
    off_t data = lseek(b->fd, (off_t)off, SEEK_DATA);
    if (data < 0 && errno == ENXIO) {
        st->kind = BLK_ST_ZERO;     /* a hole up to the end */
        st->len = len;
        return 0;
    }
    if (data < 0) {                 /* no hole support: all data */
        st->kind = BLK_ST_DATA;
        st->len = len;
        st->has_offset = true;
        st->host_offset = off;
        return 0;
    }
    if ((uint64_t)data > off) {
        st->kind = BLK_ST_ZERO;
        st->len = (uint64_t)data - off < len ? (uint64_t)data - off : len;
        return 0;
    }
    off_t hole = lseek(b->fd, (off_t)off, SEEK_HOLE);
    uint64_t n = hole < 0 ? len : (uint64_t)hole - off;
    st->kind = BLK_ST_DATA;
    st->len = n < len && n > 0 ? n : len;
    st->has_offset = true;
    st->host_offset = off;
    return 0;
}

static void raw_close(struct blk *b) { }

const struct blk_driver blk_raw_driver = {
    .name = "raw",
    .state_size = 0,
    .probe = raw_probe,
    .open = raw_open,
    .preadv = raw_preadv,
    .pwritev = raw_pwritev,
    .flush = raw_flush,
    .discard = raw_discard,
    .write_zeroes = raw_write_zeroes,
    .truncate = raw_truncate,
    .create = raw_create,
    .check = NULL,
    .close = raw_close,
    .get_info = NULL,
    .block_status = raw_block_status,
};
