/* qcow2 refcounts: lookup, update, cluster allocation, refcount table
 * growth, deferred frees and the ordered metadata flush.
 *
 * Ordering rules (what keeps a crashed image consistent):
 *  - a cluster's refcount is raised (and written) before any L2/L1 entry
 *    that points at it is written;
 *  - a cluster's refcount is lowered only after the tables that stopped
 *    pointing at it are on disk (qcow2_free_later defers it to the flush).
 * A crash between the two steps leaks clusters; it never corrupts. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "img/qcow2.h"

int qcow2_barrier(struct blk *b, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    if (s->no_barriers || (b->flags & BLK_O_UNSAFE))
        return 0;
    if (fdatasync(b->fd) < 0)
        return err_set_errno(e, errno, "'%s': flush", b->filename);
    return 0;
}

int qcow2_load_reftable(struct blk *b, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    uint64_t bytes = (uint64_t)s->h.refcount_table_clusters * s->cluster_size;
    uint8_t *raw = malloc(bytes);
    s->reftable_entries = (uint32_t)(bytes / 8);
    s->reftable = calloc(s->reftable_entries, 8);
    if (!raw || !s->reftable) {
        free(raw);
        return err_set(e, ENOMEM, "out of memory");
    }
    int r = blk_file_pread(b->fd, raw, bytes, s->h.refcount_table_offset);
    if (r < 0) {
        free(raw);
        return err_set_errno(e, -r, "'%s': cannot read refcount table", b->filename);
    }
    for (uint32_t i = 0; i < s->reftable_entries; i++)
        s->reftable[i] = qcow2_be64(raw + 8 * i);
    free(raw);
    return 0;
}

/* Returns the refcount block's offset for a block index, 0 when absent. */
static int rb_offset(struct blk *b, uint64_t block, uint64_t *off, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    *off = 0;
    if (block >= s->reftable_entries)
        return 0;
    uint64_t ent = s->reftable[block];
    if ((ent & QCOW2_REFT_RESERVED) || (ent & (s->cluster_size - 1)) ||
        (ent && !qcow2_in_image(s, ent)))
        return err_set(e, EINVAL, "'%s': refcount table entry %llu (0x%llx) is "
                       "invalid", b->filename, (unsigned long long)block,
                       (unsigned long long)ent);
    *off = ent;
    return 0;
}

int qcow2_get_refcount(struct blk *b, uint64_t cluster, uint64_t *rc, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    uint64_t off;
    int r = rb_offset(b, cluster >> s->rb_bits, &off, e);
    *rc = 0;
    if (r < 0 || off == 0)
        return r;
    uint8_t *blk;
    if ((r = qcow2_cache_get(b, &s->rb_cache, off, true, &blk, e)) < 0)
        return r;
    *rc = qcow2_rb_get(blk, s->h.refcount_order, cluster & (s->rb_entries - 1));
    return 0;
}

int qcow2_update_refcount(struct blk *b, uint64_t cluster, int64_t delta,
                          struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    uint64_t off;
    int r = rb_offset(b, cluster >> s->rb_bits, &off, e);
    if (r < 0)
        return r;
    if (off == 0)
        return err_set(e, EIO, "'%s': no refcount block for cluster %llu",
                       b->filename, (unsigned long long)cluster);
    uint8_t *blk;
    if ((r = qcow2_cache_get(b, &s->rb_cache, off, true, &blk, e)) < 0)
        return r;
    uint64_t idx = cluster & (s->rb_entries - 1);
    uint64_t v = qcow2_rb_get(blk, s->h.refcount_order, idx);
    if (delta < 0 && v < (uint64_t)-delta)
        return err_set(e, EIO, "'%s': refcount of cluster %llu would drop below "
                       "zero", b->filename, (unsigned long long)cluster);
    if (delta > 0 && s->refcount_max - v < (uint64_t)delta)
        return err_set(e, ERANGE, "'%s': refcount of cluster %llu overflows %u bits",
                       b->filename, (unsigned long long)cluster, s->refcount_bits);
    v += (uint64_t)delta;
    qcow2_rb_set(blk, s->h.refcount_order, idx, v);
    qcow2_cache_mark_dirty(&s->rb_cache, off);
    if (v == 0) {
        /* a freed L2 table must not come back from the cache */
        qcow2_cache_forget(&s->l2_cache, cluster * s->cluster_size);
        if (cluster < s->free_hint)
            s->free_hint = cluster;
    }
    return 0;
}

static uint64_t file_clusters(struct blk *b)
{
    struct qcow2_state *s = qcow2_s(b);
    struct stat st;
    uint64_t end = s->host_end;
    if (fstat(b->fd, &st) == 0 && (uint64_t)st.st_size > end)
        end = (uint64_t)st.st_size;
    return (end + s->cluster_size - 1) / s->cluster_size;
}

struct reftable_plan {
    uint64_t start, tc, end;    /* clusters: table at start, blocks after it */
};

/* Sizes a table covering need_block and the region [start, end) that holds
 * the table itself and the refcount blocks the region lacks. */
static int plan_reftable(struct blk *b, uint64_t need_block, struct reftable_plan *p,
                         struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    uint64_t cs = s->cluster_size, old_n = s->reftable_entries;
    uint64_t want = old_n + old_n / 2 + 1;
    if (want <= need_block)
        want = need_block + 1;
    p->start = file_clusters(b);
    for (;;) {
        uint64_t nb = 0;
        p->tc = (want * 8 + cs - 1) / cs;
        for (;;) {
            p->end = p->start + p->tc + nb;
            uint64_t cnt = 0;
            for (uint64_t blk = p->start >> s->rb_bits; blk <= (p->end - 1) >> s->rb_bits; blk++)
                if (blk >= old_n || s->reftable[blk] == 0)
                    cnt++;
            if (cnt == nb)
                break;
            nb = cnt;
        }
        if (((p->end - 1) >> s->rb_bits) < p->tc * cs / 8)
            break;
        want = ((p->end - 1) >> s->rb_bits) + 1;
    }
    if (p->tc * cs > QCOW2_MAX_REFTABLE_BYTES)
        return err_set(e, EFBIG, "'%s': refcount table would exceed %u bytes",
                       b->filename, QCOW2_MAX_REFTABLE_BYTES);
    return 0;
}

/* Places a bigger refcount table and the refcount blocks that describe it
 * past the end of everything, then switches the header to it. */
static int grow_reftable(struct blk *b, uint64_t need_block, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    uint64_t cs = s->cluster_size, old_n = s->reftable_entries;
    struct reftable_plan pl;
    int r = plan_reftable(b, need_block, &pl, e);
    if (r < 0)
        return r;
    uint64_t start = pl.start, tc = pl.tc, end = pl.end;
    uint64_t new_n = tc * cs / 8;
    uint64_t *nt = calloc(new_n, 8);
    uint8_t *raw = calloc(1, tc * cs > cs ? tc * cs : cs);
    if (!nt || !raw) {
        r = err_set(e, ENOMEM, "out of memory");
        goto out;
    }
    memcpy(nt, s->reftable, old_n * 8);
    /* Refcount blocks for the blocks of the new region that have none. */
    uint64_t next_rb = start + tc;
    for (uint64_t blk = start >> s->rb_bits; blk <= (end - 1) >> s->rb_bits; blk++) {
        if (blk < old_n && s->reftable[blk])
            continue;
        nt[blk] = (next_rb++) * cs;
        memset(raw, 0, cs);
        for (uint64_t c = start; c < end; c++)
            if ((c >> s->rb_bits) == blk)
                qcow2_rb_set(raw, s->h.refcount_order, c & (s->rb_entries - 1), 1);
        if ((r = blk_file_pwrite(b->fd, raw, cs, nt[blk])) < 0) {
            r = err_set_errno(e, -r, "'%s': cannot write refcount block", b->filename);
            goto out;
        }
    }
    /* Region clusters inside blocks that already exist count there. */
    for (uint64_t c = start; c < end; c++) {
        uint64_t blk = c >> s->rb_bits;
        if (blk < old_n && s->reftable[blk] && (r = qcow2_update_refcount(b, c, 1, e)) < 0)
            goto out;
    }
    if ((r = qcow2_cache_flush(b, &s->rb_cache, e)) < 0)
        goto out;
    memset(raw, 0, tc * cs);
    for (uint64_t i = 0; i < new_n; i++)
        qcow2_put64(raw + 8 * i, nt[i]);
    if ((r = blk_file_pwrite(b->fd, raw, tc * cs, start * cs)) < 0) {
        r = err_set_errno(e, -r, "'%s': cannot write refcount table", b->filename);
        goto out;
    }
    if ((r = qcow2_barrier(b, e)) < 0)
        goto out;
    uint8_t hdr[12];
    qcow2_put64(hdr, start * cs);
    qcow2_put32(hdr + 8, (uint32_t)tc);
    if ((r = blk_file_pwrite(b->fd, hdr, sizeof hdr, 48)) < 0) {
        r = err_set_errno(e, -r, "'%s': cannot update header", b->filename);
        goto out;
    }
    if ((r = qcow2_barrier(b, e)) < 0)
        goto out;
    uint64_t old_off = s->h.refcount_table_offset;
    uint32_t old_clusters = s->h.refcount_table_clusters;
    free(s->reftable);
    s->reftable = nt;
    nt = NULL;
    s->reftable_entries = (uint32_t)new_n;
    s->reftable_dirty = false;
    s->h.refcount_table_offset = start * cs;
    s->h.refcount_table_clusters = (uint32_t)tc;
    if (end * cs > s->host_end)
        s->host_end = end * cs;
    for (uint32_t i = 0; i < old_clusters && r == 0; i++)
        r = qcow2_free_later(b, old_off + i * cs, e);
out:
    free(nt);
    free(raw);
    return r;
}

/* Gives block `blk` a refcount block stored at cluster c (which lies in
 * blk's own range, so it counts itself). */
static int new_refblock(struct blk *b, uint64_t blk, uint64_t c, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    uint8_t *buf;
    uint64_t off = c * s->cluster_size;
    qcow2_cache_forget(&s->l2_cache, off);
    int r = qcow2_cache_get(b, &s->rb_cache, off, false, &buf, e);
    if (r < 0)
        return r;
    qcow2_rb_set(buf, s->h.refcount_order, c & (s->rb_entries - 1), 1);
    qcow2_cache_mark_dirty(&s->rb_cache, off);
    s->reftable[blk] = off;
    s->reftable_dirty = true;
    if (off + s->cluster_size > s->host_end)
        s->host_end = off + s->cluster_size;
    return 0;
}

/* n clusters past everything, followed by the refcount blocks their range
 * lacks; each of those lies in a block that then has a refcount block. */
static int alloc_at_end(struct blk *b, uint64_t n, uint64_t *out, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    int r;
    for (;;) {
        uint64_t start = file_clusters(b), nrb = 0, end;
        for (;;) {
            end = start + n + nrb;
            uint64_t cnt = 0;
            for (uint64_t blk = start >> s->rb_bits; blk <= (end - 1) >> s->rb_bits; blk++)
                if (blk >= s->reftable_entries || s->reftable[blk] == 0)
                    cnt++;
            if (cnt == nrb)
                break;
            nrb = cnt;
        }
        uint64_t last = (end - 1) >> s->rb_bits;
        if (last >= s->reftable_entries) {
            if ((r = grow_reftable(b, last, e)) < 0)
                return r;
            continue;
        }
        uint64_t next = start + n;
        for (uint64_t blk = start >> s->rb_bits; blk <= last; blk++) {
            if (s->reftable[blk])
                continue;
            uint8_t *buf;
            uint64_t off = (next++) * s->cluster_size;
            qcow2_cache_forget(&s->l2_cache, off);
            if ((r = qcow2_cache_get(b, &s->rb_cache, off, false, &buf, e)) < 0)
                return r;
            qcow2_cache_mark_dirty(&s->rb_cache, off);
            s->reftable[blk] = off;
            s->reftable_dirty = true;
        }
        if (end * s->cluster_size > s->host_end)
            s->host_end = end * s->cluster_size;
        for (uint64_t c = start; c < end; c++)
            if ((r = qcow2_update_refcount(b, c, 1, e)) < 0)
                return r;
        *out = start * s->cluster_size;
        return 0;
    }
}

int qcow2_alloc_clusters(struct blk *b, uint64_t n, uint64_t *out, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    uint64_t start = s->free_hint;
    int r;
    /* Refcount blocks describe themselves, so a long run may never find
     * room between them: put it past the end instead. */
    if (n > qcow2_max_alloc_run(s))
        return alloc_at_end(b, n, out, e);
restart:
    for (uint64_t cnt = 0; cnt < n; ) {
        uint64_t rc;
        if ((r = qcow2_get_refcount(b, start + cnt, &rc, e)) < 0)
            return r;
        if (rc) {
            start += cnt + 1;
            cnt = 0;
        } else {
            cnt++;
        }
    }
    if ((start + n) * s->cluster_size > (1ull << 56))
        return err_set(e, EFBIG, "'%s': image file would exceed 64 PiB", b->filename);
    for (uint64_t c = start; c < start + n; c++) {
        uint64_t blk = c >> s->rb_bits;
        if (blk >= s->reftable_entries) {
            if ((r = grow_reftable(b, blk, e)) < 0)
                return r;
            goto restart;
        }
        if (s->reftable[blk] == 0) {
            /* Right behind the run when that is in the same block, so the
             * run itself stays put; otherwise at the run's first cluster
             * there, and search again. */
            uint64_t after = start + n;
            bool behind = (after >> s->rb_bits) == blk;
            if ((r = new_refblock(b, blk, behind ? after : c, e)) < 0)
                return r;
            if (!behind)
                goto restart;
        }
    }
    for (uint64_t c = start; c < start + n; c++)
        if ((r = qcow2_update_refcount(b, c, 1, e)) < 0)
            return r;
    if (n == 1 || start == s->free_hint)
        s->free_hint = start + n;
    if ((start + n) * s->cluster_size > s->host_end)
        s->host_end = (start + n) * s->cluster_size;
    *out = start * s->cluster_size;
    return 0;
}

int qcow2_free_later(struct blk *b, uint64_t off, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    if (s->npending == s->cap_pending) {
        size_t cap = s->cap_pending ? s->cap_pending * 2 : 64;
        uint64_t *p = realloc(s->pending_free, cap * sizeof *p);
        if (!p)
            return err_set(e, ENOMEM, "out of memory");
        s->pending_free = p;
        s->cap_pending = cap;
    }
    s->pending_free[s->npending++] = off / s->cluster_size;
    return 0;
}

int qcow2_apply_pending_frees(struct blk *b, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    for (size_t i = 0; i < s->npending; i++) {
        uint64_t c = s->pending_free[i];
        int r = qcow2_update_refcount(b, c, -1, e);
        if (r < 0)
            return r;
        uint64_t rc;
        if ((r = qcow2_get_refcount(b, c, &rc, e)) < 0)
            return r;
        if (rc == 0) {
            qcow2_cache_forget(&s->l2_cache, c * s->cluster_size);
            if (s->comp_cursor / s->cluster_size == c)
                s->comp_cursor = 0;
        }
    }
    s->npending = 0;
    return 0;
}

static int write_reftable(struct blk *b, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    size_t bytes = (size_t)s->reftable_entries * 8;
    uint8_t *raw = malloc(bytes);
    if (!raw)
        return err_set(e, ENOMEM, "out of memory");
    for (uint32_t i = 0; i < s->reftable_entries; i++)
        qcow2_put64(raw + 8 * i, s->reftable[i]);
    int r = blk_file_pwrite(b->fd, raw, bytes, s->h.refcount_table_offset);
    free(raw);
    if (r < 0)
        return err_set_errno(e, -r, "'%s': cannot write refcount table", b->filename);
    s->reftable_dirty = false;
    return 0;
}

static int write_l1(struct blk *b, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    size_t bytes = (size_t)s->l1_size * 8;
    uint8_t *raw = malloc(bytes ? bytes : 1);
    if (!raw)
        return err_set(e, ENOMEM, "out of memory");
    for (uint32_t i = 0; i < s->l1_size; i++)
        qcow2_put64(raw + 8 * i, s->l1[i]);
    int r = blk_file_pwrite(b->fd, raw, bytes, s->h.l1_table_offset);
    free(raw);
    if (r < 0)
        return err_set_errno(e, -r, "'%s': cannot write L1 table", b->filename);
    s->l1_dirty = false;
    return 0;
}

int qcow2_flush_refcounts(struct blk *b, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    int r = qcow2_cache_flush(b, &s->rb_cache, e);
    if (r == 0 && s->reftable_dirty)
        r = write_reftable(b, e);
    return r;
}

int qcow2_flush_meta(struct blk *b, bool sync, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    int r;
    if ((r = qcow2_flush_refcounts(b, e)) < 0 || (r = qcow2_barrier(b, e)) < 0)
        return r;
    if ((r = qcow2_cache_flush(b, &s->l2_cache, e)) < 0)
        return r;
    if (s->l1_dirty &&
        ((r = qcow2_barrier(b, e)) < 0 || (r = write_l1(b, e)) < 0))
        return r;
    if (s->header_dirty &&
        ((r = qcow2_barrier(b, e)) < 0 || (r = qcow2_write_header(b, e)) < 0))
        return r;
    if (s->npending) {
        if ((r = qcow2_barrier(b, e)) < 0 || (r = qcow2_apply_pending_frees(b, e)) < 0 ||
            (r = qcow2_flush_refcounts(b, e)) < 0)
            return r;
    }
    if (sync && !(b->flags & BLK_O_UNSAFE) && fdatasync(b->fd) < 0)
        return err_set_errno(e, errno, "'%s': flush", b->filename);
    return 0;
}
