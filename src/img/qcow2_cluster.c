/* qcow2 guest-to-host mapping: L1/L2 lookup, the read path, and the write
 * path with allocation and copy-on-write. Data is written before the L2
 * entry that points at it is updated (in the cache); the cache writes L2
 * tables only after refcounts (see qcow2_cache.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "img/qcow2.h"

static int bad_l1(struct blk *b, uint32_t idx, uint64_t ent, struct err *e)
{
    qcow2_s(b)->corrupt_seen = true;
    return err_set(e, EIO, "'%s': L1 entry %u (0x%llx) is invalid", b->filename, idx,
                   (unsigned long long)ent);
}

/* Copies a shared L2 table so the active image may change it, with COPIED
 * recomputed from the refcounts. */
static int cow_l2(struct blk *b, uint32_t idx, uint64_t old, uint8_t **out,
                  struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    uint8_t *tmp = malloc(s->cluster_size), *buf;
    if (!tmp)
        return err_set(e, ENOMEM, "out of memory");
    uint64_t nw;
    int r = qcow2_cache_get(b, &s->l2_cache, old, true, &buf, e);
    if (r == 0) {
        memcpy(tmp, buf, s->cluster_size);
        r = qcow2_alloc_clusters(b, 1, &nw, e);
    }
    for (uint32_t i = 0; r == 0 && i < s->l2_entries; i++) {
        uint64_t ent = qcow2_be64(tmp + 8 * i);
        struct qcow2_l2_decoded d;
        if (qcow2_decode_l2(s, ent, &d) < 0 || d.type == QCOW2_CL_COMPRESSED || !d.host)
            continue;
        uint64_t rc;
        if ((r = qcow2_get_refcount(b, d.host / s->cluster_size, &rc, e)) < 0)
            break;
        ent = rc == 1 ? ent | QCOW2_OFLAG_COPIED : ent & ~QCOW2_OFLAG_COPIED;
        qcow2_put64(tmp + 8 * i, ent);
    }
    if (r == 0)
        r = qcow2_cache_get(b, &s->l2_cache, nw, false, &buf, e);
    if (r == 0) {
        memcpy(buf, tmp, s->cluster_size);
        qcow2_cache_mark_dirty(&s->l2_cache, nw);
        s->l1[idx] = nw | QCOW2_OFLAG_COPIED;
        s->l1_dirty = true;
        r = qcow2_free_later(b, old, e);
        *out = buf;
    }
    free(tmp);
    return r;
}

/* Returns the L2 table covering voff, or NULL (no table) unless alloc. */
static int get_l2(struct blk *b, uint64_t voff, bool alloc, uint8_t **l2, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    uint64_t l1i = voff >> (s->l2_bits + s->h.cluster_bits);
    *l2 = NULL;
    if (l1i >= s->l1_size) {
        if (!alloc)
            return 0;
        return err_set(e, EIO, "'%s': offset beyond the L1 table", b->filename);
    }
    uint64_t ent = s->l1[l1i];
    uint64_t off = ent & QCOW2_OFFSET_MASK;
    if ((ent & QCOW2_L1_RESERVED) || (off & (s->cluster_size - 1)))
        return bad_l1(b, (uint32_t)l1i, ent, e);
    if (off == 0) {
        if (!alloc)
            return 0;
        int r = qcow2_alloc_clusters(b, 1, &off, e);
        if (r == 0)
            r = qcow2_cache_get(b, &s->l2_cache, off, false, l2, e);
        if (r < 0)
            return r;
        qcow2_cache_mark_dirty(&s->l2_cache, off);
        s->l1[l1i] = off | QCOW2_OFLAG_COPIED;
        s->l1_dirty = true;
        return 0;
    }
    /* Tables live inside the image; never extend the file to reach one. */
    if (!qcow2_in_image(s, off))
        return bad_l1(b, (uint32_t)l1i, ent, e);
    if (alloc && !(ent & QCOW2_OFLAG_COPIED))
        return cow_l2(b, (uint32_t)l1i, off, l2, e);
    return qcow2_cache_get(b, &s->l2_cache, off, true, l2, e);
}

int qcow2_l2_lookup(struct blk *b, uint64_t voff, uint64_t *entry, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    uint8_t *l2;
    int r = get_l2(b, voff, false, &l2, e);
    *entry = 0;
    if (r == 0 && l2)
        *entry = qcow2_be64(l2 + 8 * ((voff >> s->h.cluster_bits) & (s->l2_entries - 1)));
    return r;
}

int qcow2_set_l2_entry(struct blk *b, uint64_t voff, uint64_t entry, bool alloc,
                       uint64_t *old, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    uint8_t *l2;
    int r = get_l2(b, voff, alloc, &l2, e);
    *old = 0;
    if (r < 0 || !l2)
        return r;
    uint64_t i = (voff >> s->h.cluster_bits) & (s->l2_entries - 1);
    *old = qcow2_be64(l2 + 8 * i);
    qcow2_put64(l2 + 8 * i, entry);
    qcow2_cache_mark_dirty(&s->l2_cache, s->l1[voff >> (s->l2_bits + s->h.cluster_bits)]
                                         & QCOW2_OFFSET_MASK);
    return 0;
}

static int decode(struct blk *b, uint64_t voff, uint64_t ent, struct qcow2_l2_decoded *d,
                  struct err *e)
{
    if (qcow2_decode_l2(qcow2_s(b), ent, d) < 0) {
        qcow2_s(b)->corrupt_seen = true;
        return err_set(e, EIO, "'%s': L2 entry for guest offset 0x%llx (0x%llx) is "
                       "invalid", b->filename, (unsigned long long)voff,
                       (unsigned long long)ent);
    }
    return 0;
}

/* Reads one guest cluster's worth (or less) at voff into buf. */
static int read_chunk(struct blk *b, uint8_t *buf, uint64_t voff, size_t n,
                      struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    uint64_t ent;
    struct qcow2_l2_decoded d;
    int r = qcow2_l2_lookup(b, voff, &ent, e);
    if (r == 0)
        r = decode(b, voff, ent, &d, e);
    if (r < 0)
        return r;
    uint64_t in = voff & (s->cluster_size - 1);
    switch (d.type) {
    case QCOW2_CL_UNALLOC:
        return blk_read_backing(b, buf, n, voff, e);
    case QCOW2_CL_ZERO_PLAIN:
    case QCOW2_CL_ZERO_ALLOC:
        memset(buf, 0, n);
        return 0;
    case QCOW2_CL_COMPRESSED:
        if ((r = qcow2_read_compressed(b, &d, s->zbuf, e)) < 0)
            return r;
        memcpy(buf, s->zbuf + in, n);
        return 0;
    case QCOW2_CL_NORMAL:
        r = blk_file_pread(b->fd, buf, n, d.host + in);
        if (r < 0)
            return err_set_errno(e, -r, "'%s': read", b->filename);
        return 0;
    }
    return 0;
}

int qcow2_read_range(struct blk *b, uint8_t *buf, uint64_t voff, size_t len,
                     struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    while (len) {
        uint64_t in = voff & (s->cluster_size - 1);
        size_t n = s->cluster_size - in;
        if (n > len)
            n = len;
        /* Merge clusters that are contiguous on the host into one read. */
        uint64_t ent;
        struct qcow2_l2_decoded d;
        int r = qcow2_l2_lookup(b, voff, &ent, e);
        if (r == 0)
            r = decode(b, voff, ent, &d, e);
        if (r < 0)
            return r;
        if (d.type == QCOW2_CL_NORMAL) {
            size_t run = n;
            uint64_t next_host = d.host + s->cluster_size;
            while (run < len && run < (8u << 20)) {
                uint64_t ent2;
                struct qcow2_l2_decoded d2;
                if (qcow2_l2_lookup(b, voff + run, &ent2, e) < 0 ||
                    qcow2_decode_l2(s, ent2, &d2) < 0 || d2.type != QCOW2_CL_NORMAL ||
                    d2.host != next_host) {
                    err_clear(e);
                    break;
                }
                size_t add = len - run < s->cluster_size ? len - run : s->cluster_size;
                run += add;
                next_host += s->cluster_size;
            }
            r = blk_file_pread(b->fd, buf, run, d.host + in);
            if (r < 0)
                return err_set_errno(e, -r, "'%s': read", b->filename);
            n = run;
        } else if ((r = read_chunk(b, buf, voff, n, e)) < 0) {
            return r;
        }
        buf += n; voff += n; len -= n;
    }
    return 0;
}

/* Current contents of the guest cluster at cvoff, for copy-on-write. */
static int old_cluster(struct blk *b, uint64_t cvoff, const struct qcow2_l2_decoded *d,
                       uint8_t *out, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    size_t n = s->cluster_size;
    if (cvoff + n > b->size)
        n = (size_t)(b->size - cvoff);
    memset(out, 0, s->cluster_size);
    switch (d->type) {
    case QCOW2_CL_UNALLOC:
        return blk_read_backing(b, out, n, cvoff, e);
    case QCOW2_CL_COMPRESSED:
        return qcow2_read_compressed(b, d, out, e);
    case QCOW2_CL_NORMAL: {
        int r = blk_file_pread(b->fd, out, n, d->host);
        return r < 0 ? err_set_errno(e, -r, "'%s': read", b->filename) : 0;
    }
    default:
        return 0;
    }
}

/* Releases the host clusters an overwritten L2 entry pointed at. */
static int release_entry(struct blk *b, const struct qcow2_l2_decoded *d, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    if (!d->host)
        return 0;
    uint64_t first = d->host / s->cluster_size, last = first;
    if (d->type == QCOW2_CL_COMPRESSED)
        last = (d->host + d->csize - 1) / s->cluster_size;
    for (uint64_t c = first; c <= last; c++) {
        int r = qcow2_free_later(b, c * s->cluster_size, e);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Writes the part of one guest cluster at voff that needs a new host cluster. */
static int write_alloc(struct blk *b, const uint8_t *buf, uint64_t voff, size_t n,
                       const struct qcow2_l2_decoded *d, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    uint64_t cvoff = voff & ~(uint64_t)(s->cluster_size - 1);
    uint64_t in = voff - cvoff;
    uint64_t host;
    int r;
    const uint8_t *src = buf;
    if (n != s->cluster_size) {
        if ((r = old_cluster(b, cvoff, d, s->zbuf, e)) < 0)
            return r;
        memcpy(s->zbuf + in, buf, n);
        src = s->zbuf;
    }
    uint8_t *l2;
    if ((r = get_l2(b, cvoff, true, &l2, e)) < 0 ||
        (r = qcow2_alloc_clusters(b, 1, &host, e)) < 0)
        return r;
    if ((r = blk_file_pwrite(b->fd, src, s->cluster_size, host)) < 0)
        return err_set_errno(e, -r, "'%s': write", b->filename);
    uint64_t old;
    if ((r = qcow2_set_l2_entry(b, cvoff, host | QCOW2_OFLAG_COPIED, true, &old, e)) < 0)
        return r;
    return release_entry(b, d, e);
}

/* Allocates a run of whole, not-in-place clusters with one host write. */
static int write_run(struct blk *b, const uint8_t *buf, uint64_t voff, size_t nclus,
                     struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    uint64_t host;
    uint8_t *l2;
    /* The L2 table first, so the data that follows stays contiguous. */
    int r = get_l2(b, voff, true, &l2, e);
    if (r == 0)
        r = qcow2_alloc_clusters(b, nclus, &host, e);
    if (r < 0)
        return r;
    if ((r = blk_file_pwrite(b->fd, buf, nclus * s->cluster_size, host)) < 0)
        return err_set_errno(e, -r, "'%s': write", b->filename);
    for (size_t i = 0; i < nclus; i++) {
        uint64_t old;
        struct qcow2_l2_decoded d;
        r = qcow2_set_l2_entry(b, voff + i * s->cluster_size,
                               (host + i * s->cluster_size) | QCOW2_OFLAG_COPIED, true,
                               &old, e);
        if (r == 0 && old && qcow2_decode_l2(s, old, &d) == 0)
            r = release_entry(b, &d, e);
        if (r < 0)
            return r;
    }
    return 0;
}

/* How many whole clusters from voff (aligned) need allocation, up to max. */
static int count_alloc_run(struct blk *b, uint64_t voff, size_t max, size_t *count,
                           struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    size_t i = 0;
    for (; i < max; i++) {
        uint64_t ent;
        struct qcow2_l2_decoded d;
        int r = qcow2_l2_lookup(b, voff + i * s->cluster_size, &ent, e);
        if (r < 0)
            return r;
        if (qcow2_decode_l2(s, ent, &d) < 0 || (d.type == QCOW2_CL_NORMAL && d.copied))
            break;
    }
    *count = i;
    return 0;
}

int qcow2_write_range(struct blk *b, const uint8_t *buf, uint64_t voff, size_t len,
                      struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    while (len) {
        uint64_t in = voff & (s->cluster_size - 1);
        size_t n = s->cluster_size - in;
        if (n > len)
            n = len;
        int r;
        if (in == 0 && len >= 2 * (size_t)s->cluster_size) {
            size_t cnt, max = len / s->cluster_size;
            if (max > qcow2_max_alloc_run(s))
                max = qcow2_max_alloc_run(s);
            if ((r = count_alloc_run(b, voff, max, &cnt, e)) < 0)
                return r;
            if (cnt >= 2) {
                if ((r = write_run(b, buf, voff, cnt, e)) < 0)
                    return r;
                n = cnt * s->cluster_size;
                buf += n; voff += n; len -= n;
                continue;
            }
        }
        uint64_t ent;
        struct qcow2_l2_decoded d;
        r = qcow2_l2_lookup(b, voff, &ent, e);
        if (r == 0)
            r = decode(b, voff, ent, &d, e);
        if (r < 0)
            return r;
        if (d.type == QCOW2_CL_NORMAL && d.copied && !qcow2_in_image(s, d.host)) {
            s->corrupt_seen = true;
            return err_set(e, EIO, "'%s': data cluster 0x%llx lies outside the image",
                           b->filename, (unsigned long long)d.host);
        } else if (d.type == QCOW2_CL_NORMAL && d.copied) {
            /* Extend over following in-place clusters contiguous on the host. */
            uint64_t next = d.host + s->cluster_size;
            while (n < len && n < (8u << 20)) {
                uint64_t ent2;
                struct qcow2_l2_decoded d2;
                if (qcow2_l2_lookup(b, voff + n, &ent2, e) < 0 ||
                    qcow2_decode_l2(s, ent2, &d2) < 0 || d2.type != QCOW2_CL_NORMAL ||
                    !d2.copied || d2.host != next || !qcow2_in_image(s, d2.host)) {
                    err_clear(e);
                    break;
                }
                n += len - n < s->cluster_size ? len - n : s->cluster_size;
                next += s->cluster_size;
            }
            r = blk_file_pwrite(b->fd, buf, n, d.host + in);
            if (r < 0)
                return err_set_errno(e, -r, "'%s': write", b->filename);
        } else if ((r = write_alloc(b, buf, voff, n, &d, e)) < 0) {
            return r;
        }
        buf += n; voff += n; len -= n;
    }
    return 0;
}

/* Whole clusters become zero clusters (v3) or unallocated (no backing);
 * partial ones get zeros written. */
int qcow2_zero_range(struct blk *b, uint64_t voff, uint64_t len, bool discard,
                     struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    bool v3 = s->h.version >= 3;
    while (len) {
        uint64_t in = voff & (s->cluster_size - 1);
        uint64_t n = s->cluster_size - in;
        if (n > len)
            n = len;
        bool whole = in == 0 && (n == s->cluster_size || voff + n == b->size);
        uint64_t ent;
        struct qcow2_l2_decoded d;
        int r = qcow2_l2_lookup(b, voff, &ent, e);
        if (r == 0)
            r = decode(b, voff, ent, &d, e);
        if (r < 0)
            return r;
        bool reads_zero = d.type == QCOW2_CL_ZERO_PLAIN || d.type == QCOW2_CL_ZERO_ALLOC ||
                          (d.type == QCOW2_CL_UNALLOC && !b->backing);
        uint64_t nent = 0;
        bool set = false;
        if (reads_zero) {
            /* nothing to do */
        } else if (whole && !b->backing) {
            nent = discard || !v3 ? 0 : QCOW2_OFLAG_ZERO;
            set = true;
        } else if (whole && v3) {
            nent = QCOW2_OFLAG_ZERO;
            set = true;
        } else if (!discard) {
            memset(s->cbuf, 0, n);
            if ((r = qcow2_write_range(b, s->cbuf, voff, (size_t)n, e)) < 0)
                return r;
        }
        if (set) {
            uint64_t old;
            if ((r = qcow2_set_l2_entry(b, voff, nent, true, &old, e)) < 0 ||
                (r = release_entry(b, &d, e)) < 0)
                return r;
        }
        voff += n; len -= n;
    }
    return 0;
}

int qcow2_grow_l1(struct blk *b, uint32_t min_size, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    if (min_size <= s->l1_size)
        return 0;
    uint64_t cs = s->cluster_size;
    if ((uint64_t)min_size * 8 > QCOW2_MAX_L1_BYTES)
        return err_set(e, EFBIG, "'%s': L1 table would exceed %u bytes", b->filename,
                       QCOW2_MAX_L1_BYTES);
    uint64_t nclus = ((uint64_t)min_size * 8 + cs - 1) / cs;
    uint32_t cap = (uint32_t)(nclus * cs / 8);
    uint64_t *nl1 = calloc(cap, 8);
    if (!nl1)
        return err_set(e, ENOMEM, "out of memory");
    memcpy(nl1, s->l1, (size_t)s->l1_size * 8);
    uint64_t off;
    int r = qcow2_alloc_clusters(b, nclus, &off, e);
    /* Everything the new table points at must be on disk before it is. */
    if (r == 0)
        r = qcow2_flush_meta(b, false, e);
    if (r < 0) {
        free(nl1);
        return r;
    }
    uint64_t old_off = s->h.l1_table_offset;
    uint64_t old_clusters = ((uint64_t)s->l1_size * 8 + cs - 1) / cs;
    free(s->l1);
    s->l1 = nl1;
    s->l1_size = min_size;
    s->h.l1_size = min_size;
    s->h.l1_table_offset = off;
    s->l1_dirty = true;
    s->header_dirty = true;
    for (uint64_t i = 0; i < old_clusters && r == 0; i++)
        r = qcow2_free_later(b, old_off + i * cs, e);
    return r;
}
