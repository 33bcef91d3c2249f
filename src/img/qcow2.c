/* qcow2 driver: open/close, the vtable entry points and their locking. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "img/qcow2.h"
#include "img/qcow2_snapshot.h"

static int qcow2_probe(const uint8_t *buf, size_t len)
{
    if (len >= 8 && qcow2_be32(buf) == QCOW2_MAGIC) {
        uint32_t v = qcow2_be32(buf + 4);
        return v == 2 || v == 3 ? 100 : 50;
    }
    return 0;
}

static int load_l1(struct blk *b, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    size_t bytes = (size_t)s->h.l1_size * 8;
    uint8_t *raw = malloc(bytes ? bytes : 1);
    s->l1 = calloc(s->h.l1_size ? s->h.l1_size : 1, 8);
    s->l1_size = s->h.l1_size;
    if (!raw || !s->l1) {
        free(raw);
        return err_set(e, ENOMEM, "out of memory");
    }
    int r = blk_file_pread(b->fd, raw, bytes, s->h.l1_table_offset);
    if (r < 0) {
        free(raw);
        return err_set_errno(e, -r, "'%s': cannot read L1 table", b->filename);
    }
    for (uint32_t i = 0; i < s->l1_size; i++)
        s->l1[i] = qcow2_be64(raw + 8 * i);
    free(raw);
    return 0;
}

static int set_dirty_bit(struct blk *b, bool on, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    if (on)
        s->h.incompatible_features |= QCOW2_INCOMPAT_DIRTY;
    else
        s->h.incompatible_features &= ~QCOW2_INCOMPAT_DIRTY;
    uint8_t v[8];
    qcow2_put64(v, s->h.incompatible_features);
    int r = blk_file_pwrite(b->fd, v, 8, 72);
    if (r < 0)
        return err_set_errno(e, -r, "'%s': cannot update header", b->filename);
    if (fdatasync(b->fd) < 0)
        return err_set_errno(e, errno, "'%s': flush", b->filename);
    return 0;
}

static int open_writable(struct blk *b, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    uint64_t inc = s->h.incompatible_features;
    if ((inc & QCOW2_INCOMPAT_CORRUPT) && !(b->flags & BLK_O_CHECK))
        return err_set(e, EROFS, "'%s': image is marked corrupt (incompatible "
                       "feature bit 1, corrupt bit); it may only be opened read-only "
                       "or repaired with check -r", b->filename);
    s->writable = true;
    int r;
    if (s->h.autoclear_features && s->h.version >= 3) {
        /* Bitmaps we do not maintain become stale once we write. */
        s->h.autoclear_features = 0;
        if ((r = qcow2_write_header(b, e)) < 0)
            return r;
    }
    if ((inc & QCOW2_INCOMPAT_DIRTY) && !(b->flags & BLK_O_CHECK)) {
        struct blk_check_result res = {0};
        r = qcow2_check(b, BLK_CHECK_FIX_LEAKS | BLK_CHECK_FIX_ERRORS, &res, e);
        if (r < 0)
            return r;
        if (res.corruptions || (r = set_dirty_bit(b, false, e)) < 0)
            return r < 0 ? r : err_set(e, EIO, "'%s': could not repair the dirty image",
                                       b->filename);
    }
    if ((s->h.compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS) &&
        !(b->flags & BLK_O_CHECK)) {
        if ((r = set_dirty_bit(b, true, e)) < 0)
            return r;
        s->no_barriers = true;
    }
    return 0;
}

static int qcow2_open(struct blk *b, const struct blk_open_opts *o, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    struct stat st;
    if (fstat(b->fd, &st) < 0)
        return err_set_errno(e, errno, "'%s': stat", b->filename);
    int r = qcow2_read_header(b->fd, b->filename, (uint64_t)st.st_size, &s->h, e);
    if (r < 0) {
        err_prefix(e, "'%s': ", b->filename);
        return r;
    }
    pthread_mutex_init(&s->lock, NULL);
    qcow2_set_geometry(s);
    b->size = s->h.size;
    s->no_barriers = o->no_barriers;
    s->host_end = ((uint64_t)st.st_size + s->cluster_size - 1) & ~(uint64_t)(s->cluster_size - 1);
    uint64_t l2_bytes = o->l2_cache_bytes;
    if (!l2_bytes) {    /* cover the whole disk, within 32 MiB */
        l2_bytes = (uint64_t)s->h.l1_size * s->cluster_size;
        if (l2_bytes > (32u << 20))
            l2_bytes = 32u << 20;
    }
    uint64_t rb_bytes = o->refcount_cache_bytes ? o->refcount_cache_bytes : l2_bytes / 4;
    uint64_t l2_slots = l2_bytes / s->cluster_size, rb_slots = rb_bytes / s->cluster_size;
    if (l2_slots < 16) l2_slots = 16;
    if (rb_slots < 16) rb_slots = 16;
    if (l2_slots > 65536) l2_slots = 65536;
    if (rb_slots > 65536) rb_slots = 65536;
    s->zbuf = malloc(s->cluster_size);
    s->cbuf = malloc(2 * (size_t)s->cluster_size + 512);
    if (!s->zbuf || !s->cbuf ||
        qcow2_cache_init(&s->l2_cache, (uint32_t)l2_slots, s->cluster_size) < 0 ||
        qcow2_cache_init(&s->rb_cache, (uint32_t)rb_slots, s->cluster_size) < 0) {
        r = err_set(e, ENOMEM, "out of memory");
        goto fail;
    }
    if ((r = load_l1(b, e)) < 0 || (r = qcow2_load_reftable(b, e)) < 0)
        goto fail;
    if ((b->flags & BLK_O_RDWR) && (r = open_writable(b, e)) < 0)
        goto fail;
    return 0;
fail:
    s->writable = false;
    b->drv->close(b);
    return r;
}

static void qcow2_close(struct blk *b)
{
    struct qcow2_state *s = qcow2_s(b);
    if (s->writable) {
        struct err e = {0};
        s->no_barriers = false;
        if (qcow2_flush_meta(b, true, &e) == 0 &&
            (s->h.incompatible_features & QCOW2_INCOMPAT_DIRTY) &&
            !(b->flags & BLK_O_CHECK))
            set_dirty_bit(b, false, &e);
    }
    qcow2_cache_destroy(&s->l2_cache);
    qcow2_cache_destroy(&s->rb_cache);
    free(s->l1);
    free(s->reftable);
    free(s->pending_free);
    free(s->zbuf);
    free(s->cbuf);
    if (s->zstd_dctx)
        ZSTD_freeDCtx(s->zstd_dctx);
    s->l1 = NULL;
    s->reftable = NULL;
}

static uint8_t *gather(const struct iovec *iov, int n, size_t *len)
{
    size_t t = 0;
    for (int i = 0; i < n; i++)
        t += iov[i].iov_len;
    *len = t;
    return malloc(t ? t : 1);
}

static int qcow2_preadv(struct blk *b, const struct iovec *iov, int n, uint64_t off,
                        struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    int r;
    pthread_mutex_lock(&s->lock);
    if (n == 1) {
        r = qcow2_read_range(b, iov[0].iov_base, off, iov[0].iov_len, e);
    } else {
        size_t len;
        uint8_t *buf = gather(iov, n, &len), *p = buf;
        r = buf ? qcow2_read_range(b, buf, off, len, e) : err_set(e, ENOMEM, "out of memory");
        for (int i = 0; r == 0 && i < n; p += iov[i].iov_len, i++)
            memcpy(iov[i].iov_base, p, iov[i].iov_len);
        free(buf);
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

static int qcow2_pwritev(struct blk *b, const struct iovec *iov, int n, uint64_t off,
                         struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    int r;
    pthread_mutex_lock(&s->lock);
    if (n == 1) {
        r = qcow2_write_range(b, iov[0].iov_base, off, iov[0].iov_len, e);
    } else {
        size_t len;
        uint8_t *buf = gather(iov, n, &len), *p = buf;
        for (int i = 0; buf && i < n; p += iov[i].iov_len, i++)
            memcpy(p, iov[i].iov_base, iov[i].iov_len);
        r = buf ? qcow2_write_range(b, buf, off, len, e) : err_set(e, ENOMEM, "out of memory");
        free(buf);
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

static int qcow2_flush(struct blk *b, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    pthread_mutex_lock(&s->lock);
    int r = qcow2_flush_meta(b, true, e);
    pthread_mutex_unlock(&s->lock);
    return r;
}

static int qcow2_discard(struct blk *b, uint64_t off, uint64_t len, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    pthread_mutex_lock(&s->lock);
    int r = qcow2_zero_range(b, off, len, true, e);
    pthread_mutex_unlock(&s->lock);
    return r;
}

static int qcow2_write_zeroes(struct blk *b, uint64_t off, uint64_t len, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    pthread_mutex_lock(&s->lock);
    int r = qcow2_zero_range(b, off, len, false, e);
    pthread_mutex_unlock(&s->lock);
    return r;
}

static int qcow2_truncate(struct blk *b, uint64_t size, bool shrink, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    if (s->h.nb_snapshots)
        return err_set(e, ENOTSUP, "Can't resize an image which has snapshots");
    if (size % 512)
        return err_set(e, EINVAL, "The new size must be a multiple of 512");
    pthread_mutex_lock(&s->lock);
    int r = 0;
    uint64_t cover = (uint64_t)s->cluster_size * s->l2_entries;
    uint64_t need = size / cover + (size % cover != 0);
    if (need > UINT32_MAX / 8)
        r = err_set(e, EFBIG, "'%s': size too large for this cluster size", b->filename);
    if (r == 0 && size < b->size) {
        uint64_t from = (size + s->cluster_size - 1) & ~(uint64_t)(s->cluster_size - 1);
        for (uint64_t v = from; r == 0 && v < b->size; v += s->cluster_size) {
            uint64_t old;
            struct qcow2_l2_decoded d;
            r = qcow2_l2_lookup(b, v, &old, e);
            if (r == 0 && old && (r = qcow2_set_l2_entry(b, v, 0, true, &old, e)) == 0 &&
                qcow2_decode_l2(s, old, &d) == 0 && d.host && d.type != QCOW2_CL_COMPRESSED)
                r = qcow2_free_later(b, d.host, e);
        }
    }
    if (r == 0)
        r = qcow2_grow_l1(b, (uint32_t)need, e);
    if (r == 0) {
        s->h.size = size;
        b->size = size;
        s->header_dirty = true;
        r = qcow2_flush_meta(b, true, e);
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

static int qcow2_get_info(struct blk *b, struct blk_info *info, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    info->cluster_size = s->cluster_size;
    snprintf(info->backing_file, sizeof info->backing_file, "%s", s->h.backing_file);
    snprintf(info->backing_fmt, sizeof info->backing_fmt, "%s", s->h.backing_fmt);
    info->is_qcow2 = true;
    info->version = (int)s->h.version;
    info->dirty = (s->h.incompatible_features & QCOW2_INCOMPAT_DIRTY) != 0;
    info->lazy_refcounts = (s->h.compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS) != 0;
    info->refcount_bits = (int)s->refcount_bits;
    info->corrupt = (s->h.incompatible_features & QCOW2_INCOMPAT_CORRUPT) != 0;
    info->compression = s->h.compression_type == 1 ? BLK_COMPRESS_ZSTD : BLK_COMPRESS_ZLIB;
    info->nb_snapshots = (int)s->h.nb_snapshots;
    /* A lazy-refcount image we hold open is dirty by design; report what
     * the file will say once we close it. */
    if (s->writable && info->lazy_refcounts)
        info->dirty = false;
    return 0;
}

static int status_of(struct blk *b, uint64_t off, struct blk_status *st, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    uint64_t ent;
    struct qcow2_l2_decoded d;
    int r = qcow2_l2_lookup(b, off, &ent, e);
    if (r < 0)
        return r;
    if (qcow2_decode_l2(s, ent, &d) < 0)
        return err_set(e, EIO, "'%s': invalid L2 entry 0x%llx", b->filename,
                       (unsigned long long)ent);
    memset(st, 0, sizeof *st);
    switch (d.type) {
    case QCOW2_CL_UNALLOC: st->kind = BLK_ST_UNALLOC; break;
    case QCOW2_CL_ZERO_PLAIN: st->kind = BLK_ST_ZERO; break;
    case QCOW2_CL_ZERO_ALLOC:
        st->kind = BLK_ST_ZERO;
        st->has_offset = true;
        st->host_offset = d.host;
        break;
    case QCOW2_CL_COMPRESSED: st->kind = BLK_ST_DATA; st->compressed = true; break;
    case QCOW2_CL_NORMAL:
        st->kind = BLK_ST_DATA;
        st->has_offset = true;
        st->host_offset = d.host;
        break;
    }
    return 0;
}

static int qcow2_block_status(struct blk *b, uint64_t off, uint64_t len,
                              struct blk_status *st, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    pthread_mutex_lock(&s->lock);
    uint64_t in = off & (s->cluster_size - 1);
    int r = status_of(b, off, st, e);
    uint64_t n = s->cluster_size - in;
    while (r == 0 && n < len) {
        struct blk_status nx;
        if ((r = status_of(b, off + n, &nx, e)) < 0)
            break;
        if (nx.kind != st->kind || nx.compressed != st->compressed ||
            nx.has_offset != st->has_offset ||
            (st->has_offset && nx.host_offset != st->host_offset + in + n))
            break;
        n += s->cluster_size;
    }
    if (st->has_offset)
        st->host_offset += in;
    st->len = n < len ? n : len;
    if (r == 0 && st->kind == BLK_ST_DATA && st->has_offset) {
        /* Preallocated metadata over a sparse file reads as zeros. */
        off_t d = lseek(b->fd, (off_t)st->host_offset, SEEK_DATA);
        if (d < 0 && errno == ENXIO)
            st->reads_zero = true;
        else if (d > (off_t)st->host_offset) {
            st->reads_zero = true;
            if ((uint64_t)d - st->host_offset < st->len)
                st->len = ((uint64_t)d - st->host_offset + s->cluster_size - 1 - in) /
                          s->cluster_size * s->cluster_size + in;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

static int qcow2_write_compressed_op(struct blk *b, uint64_t off, const void *buf,
                                     size_t len, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    pthread_mutex_lock(&s->lock);
    int r = qcow2_write_compressed(b, off, buf, len, e);
    pthread_mutex_unlock(&s->lock);
    return r;
}

static size_t qcow2_compress_op(struct blk *b, const void *in, size_t len, void *out)
{
    return qcow2_compress_cluster(qcow2_s(b), in, len, out);
}

static int qcow2_write_precompressed(struct blk *b, uint64_t off, const void *cdata,
                                     size_t clen, const void *raw, size_t len, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    pthread_mutex_lock(&s->lock);
    int r = qcow2_store_compressed(b, off, cdata, clen, raw, len, e);
    pthread_mutex_unlock(&s->lock);
    return r;
}

static int qcow2_set_backing(struct blk *b, const char *name, const char *fmt,
                             struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    if (name && strlen(name) > QCOW2_MAX_BACKING_NAME)
        return err_set(e, EINVAL, "backing file name too long");
    if (fmt && strlen(fmt) >= sizeof s->h.backing_fmt)
        return err_set(e, EINVAL, "backing format name too long");
    pthread_mutex_lock(&s->lock);
    struct qcow2_header saved = s->h;
    snprintf(s->h.backing_file, sizeof s->h.backing_file, "%s", name ? name : "");
    snprintf(s->h.backing_fmt, sizeof s->h.backing_fmt, "%s", name && fmt ? fmt : "");
    s->h.backing_file_offset = 0;
    s->h.backing_file_size = 0;
    int r = qcow2_flush_meta(b, true, e);
    if (r == 0)
        r = qcow2_write_header(b, e);
    if (r < 0)
        s->h = saved;
    else if (fdatasync(b->fd) < 0)
        r = err_set_errno(e, errno, "'%s': flush", b->filename);
    pthread_mutex_unlock(&s->lock);
    return r;
}

static int qcow2_check_op(struct blk *b, int fix, struct blk_check_result *res,
                          struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    pthread_mutex_lock(&s->lock);
    int r = qcow2_check(b, fix, res, e);
    pthread_mutex_unlock(&s->lock);
    return r;
}

const struct blk_driver blk_qcow2_driver = {
    .name = "qcow2",
    .state_size = sizeof(struct qcow2_state),
    .probe = qcow2_probe,
    .open = qcow2_open,
    .preadv = qcow2_preadv,
    .pwritev = qcow2_pwritev,
    .flush = qcow2_flush,
    .discard = qcow2_discard,
    .write_zeroes = qcow2_write_zeroes,
    .truncate = qcow2_truncate,
    .create = qcow2_create,
    .check = qcow2_check_op,
    .close = qcow2_close,
    .get_info = qcow2_get_info,
    .block_status = qcow2_block_status,
    .write_compressed = qcow2_write_compressed_op,
    .compress = qcow2_compress_op,
    .write_precompressed = qcow2_write_precompressed,
    .set_backing = qcow2_set_backing,
    .snapshot_list = qcow2_snapshot_list,
    .snapshot_create = qcow2_snapshot_create,
    .snapshot_apply = qcow2_snapshot_apply,
    .snapshot_delete = qcow2_snapshot_delete,
    .amend = qcow2_amend,
};
