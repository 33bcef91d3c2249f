/* Creating qcow2 images: header, refcount table and blocks, and an empty L1
 * (the same layout qemu-img uses); preallocation then goes through the
 * normal allocation path of an opened image. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "img/qcow2.h"

static int check_opts(const struct blk_create_opts *o, int *cbits, int *rorder,
                      struct err *e)
{
    uint32_t cs = o->cluster_size ? o->cluster_size : 65536;
    if (cs < 512 || cs > (2u << 20) || (cs & (cs - 1)))
        return err_set(e, EINVAL, "Cluster size must be a power of two between 512 "
                       "and 2048k");
    *cbits = __builtin_ctz(cs);
    int compat = o->compat ? o->compat : 3;
    if (compat != 2 && compat != 3)
        return err_set(e, EINVAL, "Invalid compat version");
    int rb = o->refcount_bits ? o->refcount_bits : 16;
    if (rb < 1 || rb > 64 || (rb & (rb - 1)))
        return err_set(e, EINVAL, "Refcount width must be a power of two and may not "
                       "exceed 64 bits");
    if (compat == 2 && rb != 16)
        return err_set(e, EINVAL, "Different refcount widths than 16 bits require "
                       "compatibility level 1.1 or above (use compat=1.1 or greater)");
    if (compat == 2 && o->lazy_refcounts)
        return err_set(e, EINVAL, "Lazy refcounts only supported with compatibility "
                       "level 1.1 and above (use compat=1.1 or greater)");
    if (compat == 2 && o->compression == BLK_COMPRESS_ZSTD)
        return err_set(e, EINVAL, "Compression type selection is only supported with "
                       "compatibility level 1.1 and above (use compat=1.1 or greater)");
    if (o->backing_file && strlen(o->backing_file) > QCOW2_MAX_BACKING_NAME)
        return err_set(e, EINVAL, "Backing file name too long");
    if (o->backing_file && !o->backing_fmt)
        return err_set(e, EINVAL, "Backing file specified without backing format");
    if (o->backing_fmt && !o->backing_file)
        return err_set(e, EINVAL, "Backing format given without a backing file");
    if (o->backing_file && o->prealloc != BLK_PREALLOC_OFF)
        return err_set(e, EINVAL, "Backing file and preallocation can only be used at "
                       "the same time if extended_l2 is on");
    *rorder = __builtin_ctz((unsigned)rb);
    return 0;
}

static int write_skeleton(int fd, struct qcow2_header *h, struct err *e)
{
    uint64_t cs = 1ull << h->cluster_bits;
    uint64_t l2_cover = cs * (cs / 8);
    uint64_t l1_size = h->size / l2_cover + (h->size % l2_cover != 0);
    if (l1_size * 8 > QCOW2_MAX_L1_BYTES)
        return err_set(e, EFBIG, "Could not resize image: Image size too large for "
                       "this cluster size");
    uint64_t l1c = (l1_size * 8 + cs - 1) / cs;
    if (l1c == 0)
        l1c = 1;
    uint64_t rb_entries = cs * 8 >> h->refcount_order;
    /* header, refcount table, refcount blocks, L1: solve for the sizes */
    uint64_t rtc = 1, nrb = 1;
    for (;;) {
        uint64_t total = 1 + rtc + nrb + l1c;
        uint64_t nrb2 = (total + rb_entries - 1) / rb_entries;
        uint64_t rtc2 = (nrb2 * 8 + cs - 1) / cs;
        if (nrb2 == nrb && rtc2 == rtc)
            break;
        nrb = nrb2;
        rtc = rtc2;
    }
    uint64_t total = 1 + rtc + nrb + l1c;
    h->l1_size = (uint32_t)l1_size;
    h->refcount_table_offset = cs;
    h->refcount_table_clusters = (uint32_t)rtc;
    h->l1_table_offset = (1 + rtc + nrb) * cs;
    uint8_t *buf = calloc(1, cs);
    if (!buf)
        return err_set(e, ENOMEM, "out of memory");
    int r = qcow2_build_header(h, buf, cs, e);
    if (r >= 0)
        r = blk_file_pwrite(fd, buf, cs, 0);
    /* refcount table */
    for (uint64_t i = 0; r >= 0 && i < rtc; i++) {
        memset(buf, 0, cs);
        for (uint64_t j = 0; j < cs / 8 && i * (cs / 8) + j < nrb; j++)
            qcow2_put64(buf + 8 * j, (1 + rtc + i * (cs / 8) + j) * cs);
        r = blk_file_pwrite(fd, buf, cs, (1 + i) * cs);
    }
    for (uint64_t i = 0; r >= 0 && i < nrb; i++) {
        memset(buf, 0, cs);
        for (uint64_t c = i * rb_entries; c < total && c < (i + 1) * rb_entries; c++)
            qcow2_rb_set(buf, h->refcount_order, c - i * rb_entries, 1);
        r = blk_file_pwrite(fd, buf, cs, (1 + rtc + i) * cs);
    }
    free(buf);
    /* The file ends with the L1 table's last entry, as qemu-img's do. */
    if (r >= 0 && ftruncate(fd, (off_t)(h->l1_table_offset + (l1_size ? l1_size * 8 : cs))) < 0)
        r = -errno;
    if (r < 0 && !err_is_set(e))
        err_set_errno(e, -r, "Could not write image");
    return r < 0 ? r : 0;
}

static int preallocate(const char *path, enum blk_prealloc mode, struct err *e)
{
    struct blk *b;
    int r = blk_open(&b, path, "qcow2", BLK_O_RDWR | BLK_O_NO_BACKING, NULL, e);
    if (r < 0)
        return r;
    struct qcow2_state *s = qcow2_s(b);
    uint64_t cs = s->cluster_size;
    uint64_t nclus = (b->size + cs - 1) / cs;
    pthread_mutex_lock(&s->lock);
    for (uint64_t c = 0; r == 0 && c < nclus; ) {
        uint64_t n = s->l2_entries - (c & (s->l2_entries - 1));
        if (n > nclus - c)
            n = nclus - c;
        if (n > qcow2_max_alloc_run(s))
            n = qcow2_max_alloc_run(s);
        uint64_t host, old;
        /* The L2 table first, so data clusters follow it contiguously. */
        r = qcow2_set_l2_entry(b, c * cs, 0, true, &old, e);
        if (r == 0)
            r = qcow2_alloc_clusters(b, n, &host, e);
        for (uint64_t i = 0; r == 0 && i < n; i++)
            r = qcow2_set_l2_entry(b, (c + i) * cs, (host + i * cs) | QCOW2_OFLAG_COPIED,
                                   true, &old, e);
        if (r == 0 && mode == BLK_PREALLOC_FALLOC &&
            fallocate(b->fd, 0, (off_t)host, (off_t)(n * cs)) < 0)
            r = err_set_errno(e, errno, "Could not preallocate data");
        if (r == 0 && mode == BLK_PREALLOC_FULL) {
            static const uint8_t zeros[1 << 16];
            for (uint64_t o = 0; r == 0 && o < n * cs; o += sizeof zeros) {
                size_t len = n * cs - o < sizeof zeros ? (size_t)(n * cs - o) : sizeof zeros;
                if ((r = blk_file_pwrite(b->fd, zeros, len, host + o)) < 0)
                    r = err_set_errno(e, -r, "Could not preallocate data");
            }
        }
        c += n;
    }
    if (r == 0 && ftruncate(b->fd, (off_t)s->host_end) < 0)
        r = err_set_errno(e, errno, "Could not resize image");
    pthread_mutex_unlock(&s->lock);
    if (r == 0)
        r = blk_flush(b, e);
    blk_close(b);
    return r;
}

int qcow2_create(const char *path, const struct blk_create_opts *o, struct err *e)
{
    int cbits = 16, rorder = 4;
    int r = check_opts(o, &cbits, &rorder, e);
    if (r < 0)
        return r;
    struct qcow2_header h;
    memset(&h, 0, sizeof h);
    h.version = o->compat == 2 ? 2 : 3;
    h.cluster_bits = (uint32_t)cbits;
    h.refcount_order = (uint32_t)rorder;
    h.size = o->size;
    if (h.size % 512)
        h.size = (h.size + 511) & ~511ull;  /* as qemu-img rounds */
    if (o->lazy_refcounts)
        h.compatible_features |= QCOW2_COMPAT_LAZY_REFCOUNTS;
    if (o->compression == BLK_COMPRESS_ZSTD) {
        h.incompatible_features |= QCOW2_INCOMPAT_COMPRESSION;
        h.compression_type = 1;
    }
    if (o->backing_file) {
        snprintf(h.backing_file, sizeof h.backing_file, "%s", o->backing_file);
        snprintf(h.backing_fmt, sizeof h.backing_fmt, "%s", o->backing_fmt);
    }
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return err_set_errno(e, errno, "Could not create '%s'", path);
    r = write_skeleton(fd, &h, e);
    if (r == 0 && fdatasync(fd) < 0)
        r = err_set_errno(e, errno, "Could not flush '%s'", path);
    close(fd);
    if (r == 0 && o->prealloc != BLK_PREALLOC_OFF)
        r = preallocate(path, o->prealloc, e);
    return r;
}
