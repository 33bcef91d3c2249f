/* qcow2 check and repair: recount every reference from the metadata, compare
 * with the stored refcounts, verify COPIED flags, and optionally repair
 * (leaks in place; errors in place or by rebuilding the refcount structure). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "img/qcow2.h"
#include "img/qcow2_snapshot.h"

struct ctx {
    struct blk *b;
    struct qcow2_state *s;
    struct blk_check_result *r;
    uint32_t *refs;         /* references per host cluster, within the file */
    uint64_t nclusters;
    uint64_t file_size;
    uint64_t next_contig;
    int fix;
    uint8_t *tbl;
};

static void report(struct ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void report(struct ctx *c, const char *fmt, ...)
{
    struct blk_check_result *reporting = c->r;
    if (!reporting->report)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    reporting->report(reporting->report_opaque, line);
}

/* Counts one reference to each cluster of [off, off+len). */
static void inc_refs(struct ctx *c, uint64_t off, uint64_t len, const char *what)
{
    if (!len)
        return;
    uint64_t cs = c->s->cluster_size;
    uint64_t first = off / cs, last = (off + len - 1) / cs;
    for (uint64_t i = first; i <= last; i++) {
        if (i >= c->nclusters) {
            report(c, "ERROR %s at 0x%llx lies beyond the end of the image file",
                   what, (unsigned long long)(i * cs));
            c->r->corruptions++;
            return;
        }
        if (c->refs[i] < UINT32_MAX)
            c->refs[i]++;
    }
}

static int read_table(struct ctx *c, uint64_t off, uint64_t bytes, uint8_t *buf)
{
    if (off + bytes > c->file_size) {
        memset(buf, 0, bytes);
        return -EIO;
    }
    return blk_file_pread(c->b->fd, buf, bytes, off);
}

static void walk_l2(struct ctx *c, uint64_t l2off, bool active, uint64_t vbase)
{
    struct qcow2_state *s = c->s;
    uint64_t cs = s->cluster_size;
    if (read_table(c, l2off, cs, c->tbl) < 0) {
        report(c, "ERROR L2 table at 0x%llx cannot be read", (unsigned long long)l2off);
        c->r->corruptions++;
        return;
    }
    for (uint32_t i = 0; i < s->l2_entries; i++) {
        uint64_t ent = qcow2_be64(c->tbl + 8 * i);
        struct qcow2_l2_decoded d;
        if (qcow2_decode_l2(s, ent, &d) < 0) {
            report(c, "ERROR invalid L2 entry 0x%llx (guest offset 0x%llx)",
                   (unsigned long long)ent, (unsigned long long)(vbase + i * cs));
            c->r->corruptions++;
            continue;
        }
        if (d.type == QCOW2_CL_COMPRESSED) {
            inc_refs(c, d.host & ~511ull, d.csize + (d.host & 511), "compressed cluster");
            if (active) {
                c->r->allocated_clusters++;
                c->r->compressed_clusters++;
                c->r->fragmented_clusters++;
            }
        } else if (d.host) {
            inc_refs(c, d.host, cs, "data cluster");
            if (active && d.type == QCOW2_CL_NORMAL) {
                c->r->allocated_clusters++;
                if (c->next_contig && d.host != c->next_contig)
                    c->r->fragmented_clusters++;
                c->next_contig = d.host + cs;
            } else if (active) {
                c->r->allocated_clusters++;
            }
        }
    }
}

static void walk_l1(struct ctx *c, const uint64_t *l1, uint32_t n, uint64_t l1off,
                    bool active)
{
    struct qcow2_state *s = c->s;
    uint64_t cs = s->cluster_size;
    inc_refs(c, l1off, (uint64_t)n * 8, "L1 table");
    for (uint32_t i = 0; i < n; i++) {
        uint64_t off = l1[i] & QCOW2_OFFSET_MASK;
        if ((l1[i] & QCOW2_L1_RESERVED) || (off & (cs - 1))) {
            report(c, "ERROR invalid L1 entry %u: 0x%llx", i, (unsigned long long)l1[i]);
            c->r->corruptions++;
            continue;
        }
        if (!off)
            continue;
        inc_refs(c, off, cs, "L2 table");
        walk_l2(c, off, active, (uint64_t)i * cs * s->l2_entries);
    }
}

static void walk_snapshots(struct ctx *c)
{
    struct qcow2_state *s = c->s;
    if (!s->h.nb_snapshots)
        return;
    struct qcow2_snap *sn = NULL;
    int n;
    struct err e = {0};
    uint64_t tbl_len;
    n = qcow2_read_snapshots(c->b, &sn, &tbl_len, &e);
    if (n < 0) {
        report(c, "ERROR %s", e.msg);
        c->r->corruptions++;
        return;
    }
    inc_refs(c, s->h.snapshots_offset, tbl_len, "snapshot table");
    for (int i = 0; i < n; i++) {
        uint64_t *l1 = NULL;
        if (qcow2_read_snap_l1(c->b, &sn[i], &l1, &e) < 0) {
            report(c, "ERROR snapshot %s: %s", sn[i].id, e.msg);
            err_clear(&e);
            c->r->corruptions++;
            continue;
        }
        walk_l1(c, l1, sn[i].l1_size, sn[i].l1_offset, false);
        free(l1);
    }
    qcow2_free_snapshots(sn, n);
}

/* References from everything but the refcount structure itself. */
static void count_all(struct ctx *c)
{
    inc_refs(c, 0, c->s->cluster_size, "header");
    walk_l1(c, c->s->l1, c->s->l1_size, c->s->h.l1_table_offset, true);
    walk_snapshots(c);
}

static void count_refcount_structure(struct ctx *c)
{
    struct qcow2_state *s = c->s;
    inc_refs(c, s->h.refcount_table_offset,
             (uint64_t)s->h.refcount_table_clusters * s->cluster_size, "refcount table");
    for (uint32_t i = 0; i < s->reftable_entries; i++) {
        uint64_t off = s->reftable[i];
        if (!off)
            continue;
        if ((off & QCOW2_REFT_RESERVED) || (off & (s->cluster_size - 1)) ||
            off >= c->file_size) {
            report(c, "ERROR refcount block %u has an invalid offset 0x%llx", i,
                   (unsigned long long)off);
            c->r->corruptions++;
            continue;
        }
        inc_refs(c, off, s->cluster_size, "refcount block");
    }
}

static int rebuild(struct ctx *c, const uint32_t *data_refs, struct err *e)
{
    struct blk *b = c->b;
    struct qcow2_state *s = c->s;
    uint64_t cs = s->cluster_size, start = c->nclusters;
    if (s->host_end / cs > start)
        start = s->host_end / cs;
    uint64_t rtc = 1, nrb = 1;
    for (;;) {
        uint64_t total = start + rtc + nrb;
        uint64_t nrb2 = (total + s->rb_entries - 1) / s->rb_entries;
        uint64_t rtc2 = (nrb2 * 8 + cs - 1) / cs;
        if (nrb2 == nrb && rtc2 == rtc)
            break;
        nrb = nrb2;
        rtc = rtc2;
    }
    if (rtc * cs > QCOW2_MAX_REFTABLE_BYTES)
        return err_set(e, EFBIG, "'%s': refcount table too large to rebuild", b->filename);
    report(c, "Rebuilding refcount structure");
    uint64_t total = start + rtc + nrb;
    uint8_t *buf = calloc(1, rtc * cs > cs ? rtc * cs : cs);
    if (!buf)
        return err_set(e, ENOMEM, "out of memory");
    int r = 0;
    for (uint64_t k = 0; r == 0 && k < nrb; k++) {
        memset(buf, 0, cs);
        for (uint64_t i = k * s->rb_entries; i < total && i < (k + 1) * s->rb_entries; i++) {
            uint64_t v = i >= start ? 1 : i < c->nclusters ? data_refs[i] : 0;
            if (v > s->refcount_max)
                v = s->refcount_max;
            qcow2_rb_set(buf, s->h.refcount_order, i - k * s->rb_entries, v);
        }
        r = blk_file_pwrite(b->fd, buf, cs, (start + rtc + k) * cs);
    }
    memset(buf, 0, rtc * cs);
    for (uint64_t k = 0; k < nrb; k++)
        qcow2_put64(buf + 8 * k, (start + rtc + k) * cs);
    if (r == 0)
        r = blk_file_pwrite(b->fd, buf, rtc * cs, start * cs);
    if (r == 0 && fdatasync(b->fd) < 0)
        r = -errno;
    uint8_t hdr[12];
    qcow2_put64(hdr, start * cs);
    qcow2_put32(hdr + 8, (uint32_t)rtc);
    if (r == 0)
        r = blk_file_pwrite(b->fd, hdr, sizeof hdr, 48);
    if (r == 0 && fdatasync(b->fd) < 0)
        r = -errno;
    free(buf);
    if (r < 0)
        return err_set_errno(e, -r, "'%s': cannot write the rebuilt refcounts", b->filename);
    s->h.refcount_table_offset = start * cs;
    s->h.refcount_table_clusters = (uint32_t)rtc;
    qcow2_cache_drop_all(&s->rb_cache);
    free(s->reftable);
    s->reftable = NULL;
    s->host_end = total * cs;
    s->free_hint = 0;
    s->npending = 0;
    return qcow2_load_reftable(b, e);
}

static int compare_and_fix(struct ctx *c, const uint32_t *data_refs, struct err *e)
{
    struct blk *b = c->b;
    struct qcow2_state *s = c->s;
    struct blk_check_result *res = c->r;
    uint64_t highest = 0;
    bool need_rebuild = false;
    for (uint64_t i = 0; i < c->nclusters; i++) {
        uint64_t disk;
        struct err le = {0};
        if (qcow2_get_refcount(b, i, &disk, &le) < 0) {
            report(c, "ERROR cannot get refcount of cluster %llu: %s",
                   (unsigned long long)i, le.msg);
            res->corruptions++;
            need_rebuild = true;
            continue;
        }
        uint64_t want = c->refs[i];
        if (disk || want)
            highest = i;
        if (disk == want)
            continue;
        bool leak = disk > want;
        report(c, "%s cluster %llu refcount=%llu reference=%llu",
               leak ? "Leaked" : "ERROR", (unsigned long long)i,
               (unsigned long long)disk, (unsigned long long)want);
        if (leak)
            res->leaks++;
        else
            res->corruptions++;
        bool fix = leak ? (c->fix & BLK_CHECK_FIX_LEAKS) : (c->fix & BLK_CHECK_FIX_ERRORS);
        if (!fix)
            continue;
        uint64_t rbo = (i >> s->rb_bits) < s->reftable_entries ? s->reftable[i >> s->rb_bits] : 0;
        if (!rbo || want > s->refcount_max) {
            need_rebuild = true;
            continue;
        }
        int r = qcow2_update_refcount(b, i, (int64_t)want - (int64_t)disk, &le);
        if (r < 0) {
            need_rebuild = true;
            continue;
        }
        report(c, "Repairing cluster %llu refcount=%llu reference=%llu",
               (unsigned long long)i, (unsigned long long)disk, (unsigned long long)want);
        if (leak)
            res->leaks_fixed++;
        else
            res->corruptions_fixed++;
    }
    res->image_end_offset = (highest + 1) * s->cluster_size;
    if (need_rebuild && (c->fix & BLK_CHECK_FIX_ERRORS)) {
        if (!data_refs)
            return err_set(e, ENOMEM, "out of memory");
        int r = rebuild(c, data_refs, e);
        if (r < 0)
            return r;
        res->rebuilt = true;
        res->corruptions_fixed = res->corruptions;
        res->leaks_fixed = res->leaks;
        return 0;
    }
    if (c->fix)
        return qcow2_flush_meta(b, true, e);
    return 0;
}

/* COPIED must be set exactly when the refcount is one (active tables). */
static int check_copied(struct ctx *c, struct err *e)
{
    struct blk *b = c->b;
    struct qcow2_state *s = c->s;
    bool fix = c->fix & BLK_CHECK_FIX_ERRORS;
    uint64_t cs = s->cluster_size;
    int r;
    for (uint32_t i = 0; i < s->l1_size; i++) {
        uint64_t off = s->l1[i] & QCOW2_OFFSET_MASK, rc;
        if (!off || (off & (cs - 1)) || (s->l1[i] & QCOW2_L1_RESERVED) || off >= c->file_size)
            continue;
        if ((r = qcow2_get_refcount(b, off / cs, &rc, e)) < 0)
            return r;
        bool want = rc == 1;
        if (want != ((s->l1[i] & QCOW2_OFLAG_COPIED) != 0)) {
            report(c, "ERROR OFLAG_COPIED L2 cluster: l1_index=%u l1_entry=%llx refcount=%llu",
                   i, (unsigned long long)s->l1[i], (unsigned long long)rc);
            c->r->corruptions++;
            if (fix) {
                s->l1[i] = want ? s->l1[i] | QCOW2_OFLAG_COPIED : s->l1[i] & ~QCOW2_OFLAG_COPIED;
                s->l1_dirty = true;
                c->r->corruptions_fixed++;
            }
        }
        for (uint32_t j = 0; j < s->l2_entries; j++) {
            uint8_t *l2;
            if ((r = qcow2_cache_get(b, &s->l2_cache, off, true, &l2, e)) < 0)
                return r;
            uint64_t ent = qcow2_be64(l2 + 8 * j);
            struct qcow2_l2_decoded d;
            if (qcow2_decode_l2(s, ent, &d) < 0 || d.type == QCOW2_CL_COMPRESSED ||
                !d.host || d.host >= c->file_size)
                continue;
            if ((r = qcow2_get_refcount(b, d.host / cs, &rc, e)) < 0)
                return r;
            want = rc == 1;
            if (want == d.copied)
                continue;
            report(c, "ERROR OFLAG_COPIED data cluster: l2_entry=%llx refcount=%llu",
                   (unsigned long long)ent, (unsigned long long)rc);
            c->r->corruptions++;
            if (fix) {
                if ((r = qcow2_cache_get(b, &s->l2_cache, off, true, &l2, e)) < 0)
                    return r;
                qcow2_put64(l2 + 8 * j, want ? ent | QCOW2_OFLAG_COPIED
                                             : ent & ~QCOW2_OFLAG_COPIED);
                qcow2_cache_mark_dirty(&s->l2_cache, off);
                c->r->corruptions_fixed++;
            }
        }
    }
    if (fix && (r = qcow2_flush_meta(b, true, e)) < 0)
        return r;
    return 0;
}

int qcow2_check(struct blk *b, int fix, struct blk_check_result *res, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    struct stat st;
    if (fstat(b->fd, &st) < 0)
        return err_set_errno(e, errno, "'%s': stat", b->filename);
    int r;
    if (s->writable && (r = qcow2_flush_meta(b, true, e)) < 0)
        return r;
    struct ctx c = { .b = b, .s = s, .r = res, .fix = fix };
    c.file_size = (uint64_t)st.st_size;
    c.nclusters = (c.file_size + s->cluster_size - 1) / s->cluster_size;
    c.refs = calloc(c.nclusters ? c.nclusters : 1, sizeof *c.refs);
    c.tbl = malloc(s->cluster_size);
    if (!c.refs || !c.tbl) {
        free(c.refs);
        free(c.tbl);
        return err_set(e, ENOMEM, "out of memory");
    }
    res->total_clusters = (b->size + s->cluster_size - 1) / s->cluster_size;
    count_all(&c);
    uint32_t *data_refs = NULL;
    if (fix & BLK_CHECK_FIX_ERRORS) {
        data_refs = malloc(c.nclusters * sizeof *c.refs + 1);
        if (data_refs)
            memcpy(data_refs, c.refs, c.nclusters * sizeof *c.refs);
    }
    count_refcount_structure(&c);
    r = compare_and_fix(&c, data_refs, e);
    if (r == 0)
        r = check_copied(&c, e);
    free(data_refs);
    free(c.refs);
    free(c.tbl);
    uint64_t bad = QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT;
    if (r == 0 && fix && res->corruptions == res->corruptions_fixed &&
        (s->h.incompatible_features & bad) && (b->flags & BLK_O_CHECK)) {
        uint8_t v[8];
        s->h.incompatible_features &= ~bad;
        qcow2_put64(v, s->h.incompatible_features);
        if (blk_file_pwrite(b->fd, v, 8, 72) < 0 || fdatasync(b->fd) < 0)
            r = err_set_errno(e, errno, "'%s': cannot update header", b->filename);
    }
    return r;
}
