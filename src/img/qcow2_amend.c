/* qcow2 amend: change compat (0.10 <-> 1.1) and lazy_refcounts in place. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "img/qcow2.h"

/* Version 2 has no zero flag: zero clusters become unallocated (no
 * backing) or real clusters of zeros. */
static int drop_zero_clusters(struct blk *b, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    uint64_t cs = s->cluster_size;
    for (uint64_t v = 0; v < b->size; v += cs) {
        uint64_t ent, old;
        struct qcow2_l2_decoded d;
        int r = qcow2_l2_lookup(b, v, &ent, e);
        if (r < 0)
            return r;
        if (qcow2_decode_l2(s, ent, &d) < 0)
            return err_set(e, EIO, "'%s': invalid L2 entry", b->filename);
        if (d.type == QCOW2_CL_ZERO_ALLOC) {
            memset(s->zbuf, 0, cs);
            if ((r = blk_file_pwrite(b->fd, s->zbuf, cs, d.host)) < 0)
                return err_set_errno(e, -r, "'%s': write", b->filename);
            uint64_t rc;
            if ((r = qcow2_get_refcount(b, d.host / cs, &rc, e)) < 0)
                return r;
            r = qcow2_set_l2_entry(b, v, d.host | (rc == 1 ? QCOW2_OFLAG_COPIED : 0), true,
                                   &old, e);
        } else if (d.type == QCOW2_CL_ZERO_PLAIN) {
            r = qcow2_set_l2_entry(b, v, 0, true, &old, e);
            if (r == 0 && b->backing) {
                memset(s->cbuf, 0, cs);
                size_t n = b->size - v < cs ? (size_t)(b->size - v) : cs;
                r = qcow2_write_range(b, s->cbuf, v, n, e);
            }
        }
        if (r < 0)
            return r;
    }
    return 0;
}

static int amend(struct blk *b, const struct blk_create_opts *o, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    int compat = o->compat ? o->compat : (int)s->h.version;
    bool lazy = o->lazy_refcounts_set ? o->lazy_refcounts
                                      : (s->h.compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS) != 0;
    if (compat == 2 && !o->lazy_refcounts_set)
        lazy = false;
    if (o->cluster_size || o->refcount_bits || o->backing_file || o->prealloc ||
        o->compression != BLK_COMPRESS_ZLIB || o->size_set)
        return err_set(e, ENOTSUP, "amend supports only compat and lazy_refcounts");
    if (compat == 2 && lazy)
        return err_set(e, EINVAL, "Lazy refcounts only supported with compatibility level "
                       "1.1 and above (use compat=1.1 or greater)");
    int r;
    if (compat == 2 && s->h.version >= 3) {
        if (s->h.refcount_order != 4)
            return err_set(e, EINVAL, "compat=0.10 requires refcount_bits=16");
        if (s->h.compression_type)
            return err_set(e, EINVAL, "compat=0.10 requires compression_type=zlib");
        if (s->h.nb_snapshots)
            return err_set(e, ENOTSUP, "cannot downgrade an image with snapshots");
        if ((r = drop_zero_clusters(b, e)) < 0)
            return r;
    }
    /* Everything consistent on disk before the header changes meaning. */
    s->no_barriers = false;
    if ((r = qcow2_flush_meta(b, true, e)) < 0)
        return r;
    s->h.version = (uint32_t)compat;
    if (compat == 2) {
        s->h.incompatible_features = 0;
        s->h.compatible_features = 0;
        s->h.autoclear_features = 0;
        s->h.header_length = 72;
    } else {
        s->h.incompatible_features &= ~QCOW2_INCOMPAT_DIRTY;
        if (lazy)
            s->h.compatible_features |= QCOW2_COMPAT_LAZY_REFCOUNTS;
        else
            s->h.compatible_features &= ~QCOW2_COMPAT_LAZY_REFCOUNTS;
        s->h.header_length = 112;
    }
    if ((r = qcow2_write_header(b, e)) < 0)
        return r;
    if (fdatasync(b->fd) < 0)
        return err_set_errno(e, errno, "'%s': flush", b->filename);
    /* With lazy refcounts now on, keep the dirty-bit protocol of an open image. */
    if (lazy && compat == 3) {
        uint8_t v[8];
        s->h.incompatible_features |= QCOW2_INCOMPAT_DIRTY;
        qcow2_put64(v, s->h.incompatible_features);
        if ((r = blk_file_pwrite(b->fd, v, 8, 72)) < 0 || fdatasync(b->fd) < 0)
            return err_set_errno(e, errno, "'%s': cannot update header", b->filename);
        s->no_barriers = true;
    }
    return 0;
}

int qcow2_amend(struct blk *b, const struct blk_create_opts *o, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    pthread_mutex_lock(&s->lock);
    int r = amend(b, o, e);
    pthread_mutex_unlock(&s->lock);
    return r;
}
