/* qcow2 snapshot table: reading it with every length bounded. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "img/qcow2.h"
#include "img/qcow2_snapshot.h"

#define SNAP_TABLE_MAX (64u << 20)

void qcow2_free_snapshots(struct qcow2_snap *sn, int n)
{
    for (int i = 0; sn && i < n; i++) {
        free(sn[i].id);
        free(sn[i].name);
    }
    free(sn);
}

static char *dup_str(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

int qcow2_read_snapshots(struct blk *b, struct qcow2_snap **out, uint64_t *table_len,
                         struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    uint32_t n = s->h.nb_snapshots;
    *out = NULL;
    *table_len = 0;
    if (!n)
        return 0;
    struct stat st;
    if (fstat(b->fd, &st) < 0)
        return err_set_errno(e, errno, "'%s': stat", b->filename);
    uint64_t avail = (uint64_t)st.st_size > s->h.snapshots_offset
                   ? (uint64_t)st.st_size - s->h.snapshots_offset : 0;
    if (avail > SNAP_TABLE_MAX)
        avail = SNAP_TABLE_MAX;
    uint8_t *buf = malloc(avail ? avail : 1);
    struct qcow2_snap *sn = calloc(n, sizeof *sn);
    int r = 0;
    if (!buf || !sn) {
        r = err_set(e, ENOMEM, "out of memory");
        goto fail;
    }
    if ((r = blk_file_pread(b->fd, buf, avail, s->h.snapshots_offset)) < 0) {
        r = err_set_errno(e, -r, "'%s': cannot read snapshot table", b->filename);
        goto fail;
    }
    uint64_t off = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (avail - off < 40) {
            r = err_set(e, EINVAL, "'%s': snapshot table is truncated", b->filename);
            goto fail;
        }
        const uint8_t *p = buf + off;
        struct qcow2_snap *q = &sn[i];
        q->l1_offset = qcow2_be64(p);
        q->l1_size = qcow2_be32(p + 8);
        uint32_t id_len = (uint32_t)p[12] << 8 | p[13];
        uint32_t name_len = (uint32_t)p[14] << 8 | p[15];
        q->date_sec = qcow2_be32(p + 16);
        q->date_nsec = qcow2_be32(p + 20);
        q->vm_clock_nsec = qcow2_be64(p + 24);
        q->vm_state_size = qcow2_be32(p + 32);
        q->extra_size = qcow2_be32(p + 36);
        uint64_t len = 40ull + q->extra_size + id_len + name_len;
        if (len > avail - off) {
            r = err_set(e, EINVAL, "'%s': snapshot table entry %u runs past the file",
                        b->filename, i);
            goto fail;
        }
        if (q->extra_size >= 8)
            q->vm_state_size = qcow2_be64(p + 40);
        q->disk_size = q->extra_size >= 16 ? qcow2_be64(p + 48) : s->h.size;
        q->icount = q->extra_size >= 24 ? qcow2_be64(p + 56) : UINT64_MAX;
        q->id = dup_str(p + 40 + q->extra_size, id_len);
        q->name = dup_str(p + 40 + q->extra_size + id_len, name_len);
        if (!q->id || !q->name) {
            r = err_set(e, ENOMEM, "out of memory");
            goto fail;
        }
        if ((q->l1_offset & (s->cluster_size - 1)) ||
            (uint64_t)q->l1_size * 8 > QCOW2_MAX_L1_BYTES) {
            r = err_set(e, EINVAL, "'%s': snapshot %s has an invalid L1 table",
                        b->filename, q->id);
            goto fail;
        }
        off += (len + 7) & ~7ull;
        if (off > avail)
            off = avail;
    }
    free(buf);
    *out = sn;
    *table_len = off;
    return (int)n;
fail:
    free(buf);
    qcow2_free_snapshots(sn, (int)n);
    return r;
}

int qcow2_read_snap_l1(struct blk *b, const struct qcow2_snap *sn, uint64_t **l1,
                       struct err *e)
{
    struct stat st;
    uint64_t bytes = (uint64_t)sn->l1_size * 8;
    if (fstat(b->fd, &st) < 0)
        return err_set_errno(e, errno, "'%s': stat", b->filename);
    if (sn->l1_offset > (uint64_t)st.st_size || bytes > (uint64_t)st.st_size - sn->l1_offset)
        return err_set(e, EINVAL, "snapshot L1 table lies outside the file");
    uint8_t *raw = malloc(bytes ? bytes : 1);
    uint64_t *t = calloc(sn->l1_size ? sn->l1_size : 1, 8);
    if (!raw || !t) {
        free(raw);
        free(t);
        return err_set(e, ENOMEM, "out of memory");
    }
    int r = blk_file_pread(b->fd, raw, bytes, sn->l1_offset);
    for (uint32_t i = 0; r == 0 && i < sn->l1_size; i++)
        t[i] = qcow2_be64(raw + 8 * i);
    free(raw);
    if (r < 0) {
        free(t);
        return err_set_errno(e, -r, "cannot read snapshot L1 table");
    }
    *l1 = t;
    return 0;
}

int qcow2_snapshot_list(struct blk *b, struct blk_snapshot_info **out, int *n,
                        struct err *e)
{
    struct qcow2_snap *sn;
    uint64_t tl;
    int cnt = qcow2_read_snapshots(b, &sn, &tl, e);
    if (cnt <= 0)
        return cnt;
    struct blk_snapshot_info *v = calloc((size_t)cnt, sizeof *v);
    if (!v) {
        qcow2_free_snapshots(sn, cnt);
        return err_set(e, ENOMEM, "out of memory");
    }
    for (int i = 0; i < cnt; i++) {
        snprintf(v[i].id, sizeof v[i].id, "%s", sn[i].id);
        snprintf(v[i].name, sizeof v[i].name, "%s", sn[i].name);
        v[i].vm_state_size = sn[i].vm_state_size;
        v[i].date_sec = sn[i].date_sec;
        v[i].date_nsec = sn[i].date_nsec;
        v[i].vm_clock_nsec = sn[i].vm_clock_nsec;
        v[i].icount = sn[i].icount;
    }
    qcow2_free_snapshots(sn, cnt);
    *out = v;
    *n = cnt;
    return 0;
}

/* ---- creating, applying and deleting snapshots ---- */

/* Adds delta to the refcount of every L2 table and data cluster reachable
 * from l1 (each L1 that reaches a cluster holds one reference to it). */
static int update_tree(struct blk *b, const uint64_t *l1, uint32_t n, int delta,
                       struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    uint64_t cs = s->cluster_size;
    uint8_t *tbl = malloc(cs);
    if (!tbl)
        return err_set(e, ENOMEM, "out of memory");
    int r = 0;
    for (uint32_t i = 0; r == 0 && i < n; i++) {
        uint64_t off = l1[i] & QCOW2_OFFSET_MASK;
        if (!off)
            continue;
        if (!qcow2_in_image(s, off)) {
            r = err_set(e, EIO, "'%s': L1 entry %u points outside the image", b->filename, i);
            break;
        }
        uint8_t *l2;
        if ((r = qcow2_cache_get(b, &s->l2_cache, off, true, &l2, e)) < 0)
            break;
        memcpy(tbl, l2, cs);
        for (uint32_t j = 0; r == 0 && j < s->l2_entries; j++) {
            struct qcow2_l2_decoded d;
            if (qcow2_decode_l2(s, qcow2_be64(tbl + 8 * j), &d) < 0 || !d.host)
                continue;
            uint64_t first = d.host / cs, last = first;
            if (d.type == QCOW2_CL_COMPRESSED)
                last = (d.host + d.csize - 1) / cs;
            for (uint64_t c = first; r == 0 && c <= last; c++)
                r = qcow2_update_refcount(b, c, delta, e);
        }
        if (r == 0)
            r = qcow2_update_refcount(b, off / cs, delta, e);
    }
    free(tbl);
    return r;
}

/* COPIED in the active tables follows the refcounts (after any change). */
static int fix_copied(struct blk *b, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    uint64_t cs = s->cluster_size, rc;
    int r;
    for (uint32_t i = 0; i < s->l1_size; i++) {
        uint64_t off = s->l1[i] & QCOW2_OFFSET_MASK;
        if (!off)
            continue;
        if ((r = qcow2_get_refcount(b, off / cs, &rc, e)) < 0)
            return r;
        uint64_t want = rc == 1 ? s->l1[i] | QCOW2_OFLAG_COPIED : s->l1[i] & ~QCOW2_OFLAG_COPIED;
        if (want != s->l1[i]) {
            s->l1[i] = want;
            s->l1_dirty = true;
        }
        for (uint32_t j = 0; j < s->l2_entries; j++) {
            uint8_t *l2;
            if ((r = qcow2_cache_get(b, &s->l2_cache, off, true, &l2, e)) < 0)
                return r;
            uint64_t ent = qcow2_be64(l2 + 8 * j);
            struct qcow2_l2_decoded d;
            if (qcow2_decode_l2(s, ent, &d) < 0 || !d.host || d.type == QCOW2_CL_COMPRESSED)
                continue;
            if ((r = qcow2_get_refcount(b, d.host / cs, &rc, e)) < 0)
                return r;
            uint64_t nent = rc == 1 ? ent | QCOW2_OFLAG_COPIED : ent & ~QCOW2_OFLAG_COPIED;
            if (nent != ent) {
                if ((r = qcow2_cache_get(b, &s->l2_cache, off, true, &l2, e)) < 0)
                    return r;
                qcow2_put64(l2 + 8 * j, nent);
                qcow2_cache_mark_dirty(&s->l2_cache, off);
            }
        }
    }
    return 0;
}

static size_t entry_len(const struct qcow2_snap *q)
{
    return (40 + 24 + strlen(q->id) + strlen(q->name) + 7) & ~(size_t)7;
}

/* Writes the table to new clusters and points the header at it. */
static int write_table(struct blk *b, struct qcow2_snap *sn, int n, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    uint64_t cs = s->cluster_size, old_off = s->h.snapshots_offset, old_len = 0;
    struct qcow2_snap *old;
    int on = qcow2_read_snapshots(b, &old, &old_len, e);
    if (on < 0)
        return on;
    qcow2_free_snapshots(old, on);
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += entry_len(&sn[i]);
    uint8_t *buf = calloc(1, len ? len : 1);
    if (!buf)
        return err_set(e, ENOMEM, "out of memory");
    size_t p = 0;
    for (int i = 0; i < n; i++) {
        struct qcow2_snap *q = &sn[i];
        size_t il = strlen(q->id), nl = strlen(q->name);
        qcow2_put64(buf + p, q->l1_offset);
        qcow2_put32(buf + p + 8, q->l1_size);
        buf[p + 12] = (uint8_t)(il >> 8); buf[p + 13] = (uint8_t)il;
        buf[p + 14] = (uint8_t)(nl >> 8); buf[p + 15] = (uint8_t)nl;
        qcow2_put32(buf + p + 16, q->date_sec);
        qcow2_put32(buf + p + 20, q->date_nsec);
        qcow2_put64(buf + p + 24, q->vm_clock_nsec);
        qcow2_put32(buf + p + 32, (uint32_t)q->vm_state_size);
        qcow2_put32(buf + p + 36, 24);
        qcow2_put64(buf + p + 40, q->vm_state_size);
        qcow2_put64(buf + p + 48, q->disk_size);
        qcow2_put64(buf + p + 56, q->icount == UINT64_MAX ? 0 : q->icount);
        memcpy(buf + p + 64, q->id, il);
        memcpy(buf + p + 64 + il, q->name, nl);
        p += entry_len(q);
    }
    uint64_t off = 0;
    int r = 0;
    if (len) {
        uint64_t nclus = (len + cs - 1) / cs;
        r = qcow2_alloc_clusters(b, nclus, &off, e);
        if (r == 0 && (r = blk_file_pwrite(b->fd, buf, len, off)) < 0)
            r = err_set_errno(e, -r, "'%s': cannot write snapshot table", b->filename);
    }
    free(buf);
    /* Everything the new table names must be on disk before the header. */
    if (r == 0)
        r = qcow2_flush_meta(b, true, e);
    if (r < 0)
        return r;
    uint8_t hdr[12];
    qcow2_put32(hdr, (uint32_t)n);
    qcow2_put64(hdr + 4, off);
    if ((r = blk_file_pwrite(b->fd, hdr, sizeof hdr, 60)) < 0)
        return err_set_errno(e, -r, "'%s': cannot update header", b->filename);
    if (fdatasync(b->fd) < 0)
        return err_set_errno(e, errno, "'%s': flush", b->filename);
    s->h.nb_snapshots = (uint32_t)n;
    s->h.snapshots_offset = off;
    for (uint64_t c = 0; old_len && c < (old_len + cs - 1) / cs && r == 0; c++)
        r = qcow2_free_later(b, old_off + c * cs, e);
    return r;
}

static int find(struct qcow2_snap *sn, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(sn[i].id, name))
            return i;
    for (int i = 0; i < n; i++)
        if (!strcmp(sn[i].name, name))
            return i;
    return -1;
}

static int write_l1_copy(struct blk *b, const uint64_t *l1, uint32_t n, uint64_t *off,
                         struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    size_t bytes = (size_t)n * 8;
    uint64_t nclus = (bytes + s->cluster_size - 1) / s->cluster_size;
    *off = 0;
    if (!n)
        return 0;
    uint8_t *raw = malloc(bytes);
    if (!raw)
        return err_set(e, ENOMEM, "out of memory");
    for (uint32_t i = 0; i < n; i++)
        qcow2_put64(raw + 8 * i, l1[i] & ~QCOW2_OFLAG_COPIED);
    int r = qcow2_alloc_clusters(b, nclus, off, e);
    if (r == 0 && (r = blk_file_pwrite(b->fd, raw, bytes, *off)) < 0)
        r = err_set_errno(e, -r, "'%s': cannot write snapshot L1", b->filename);
    free(raw);
    return r;
}

static int snap_create(struct blk *b, const char *name, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    struct qcow2_snap *sn;
    uint64_t tl;
    int n = qcow2_read_snapshots(b, &sn, &tl, e);
    if (n < 0)
        return n;
    int r = 0;
    if (find(sn, n, name) >= 0) {
        r = err_set(e, EEXIST, "Snapshot '%s' already exists", name);
        goto out;
    }
    struct qcow2_snap *nsn = realloc(sn, (size_t)(n + 1) * sizeof *sn);
    if (!nsn) {
        r = err_set(e, ENOMEM, "out of memory");
        goto out;
    }
    sn = nsn;
    struct qcow2_snap *q = &sn[n];
    memset(q, 0, sizeof *q);
    long maxid = 0;
    for (int i = 0; i < n; i++)
        if (atol(sn[i].id) > maxid)
            maxid = atol(sn[i].id);
    char id[32];
    snprintf(id, sizeof id, "%ld", maxid + 1);
    q->id = strdup(id);
    q->name = strdup(name);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    q->date_sec = (uint32_t)ts.tv_sec;
    q->date_nsec = (uint32_t)ts.tv_nsec;
    q->disk_size = b->size;
    q->icount = UINT64_MAX;
    q->l1_size = s->l1_size;
    if (!q->id || !q->name) {
        r = err_set(e, ENOMEM, "out of memory");
        n++;
        goto out;
    }
    n++;
    if ((r = qcow2_flush_meta(b, true, e)) < 0 ||
        (r = write_l1_copy(b, s->l1, s->l1_size, &q->l1_offset, e)) < 0 ||
        (r = update_tree(b, s->l1, s->l1_size, 1, e)) < 0 ||
        (r = fix_copied(b, e)) < 0)
        goto out;
    r = write_table(b, sn, n, e);
out:
    qcow2_free_snapshots(sn, n);
    return r;
}

/* Reads the snapshot table, finds NAME (by id, then by name) and reads that
 * snapshot's L1 table, with the cached metadata flushed first. Returns the
 * index, or a negative errno; either way *sn, *n and *sl1 are the caller's
 * to free. */
static int load_named(struct blk *b, const char *name, struct qcow2_snap **sn, int *n,
                      uint64_t **sl1, struct err *e)
{
    uint64_t tl;
    *n = 0;
    *sl1 = NULL;
    int cnt = qcow2_read_snapshots(b, sn, &tl, e);
    if (cnt < 0)
        return cnt;
    *n = cnt;
    int i = find(*sn, cnt, name), r;
    if (i < 0)
        return err_set(e, ENOENT, "Could not find snapshot '%s'", name);
    if ((r = qcow2_read_snap_l1(b, &(*sn)[i], sl1, e)) < 0 || (r = qcow2_flush_meta(b, true, e)) < 0)
        return r;
    return i;
}

static int snap_apply(struct blk *b, const char *name, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    struct qcow2_snap *sn;
    uint64_t *sl1, *old = NULL;
    int n, r, i = load_named(b, name, &sn, &n, &sl1, e);
    if (i < 0) {
        r = i;
        goto out;
    }
    if (sn[i].l1_size > s->l1_size && (r = qcow2_grow_l1(b, sn[i].l1_size, e)) < 0)
        goto out;
    uint32_t n_old = s->l1_size;
    old = malloc((size_t)n_old * 8 + 8);
    if (!old) {
        r = err_set(e, ENOMEM, "out of memory");
        goto out;
    }
    memcpy(old, s->l1, (size_t)n_old * 8);
    /* References for the new active tables first: a crash leaks, never frees. */
    if ((r = update_tree(b, sl1, sn[i].l1_size, 1, e)) < 0)
        goto out;
    memset(s->l1, 0, (size_t)s->l1_size * 8);
    memcpy(s->l1, sl1, (size_t)sn[i].l1_size * 8);
    s->l1_dirty = true;
    if (sn[i].disk_size != b->size) {
        b->size = s->h.size = sn[i].disk_size;
        s->header_dirty = true;
    }
    if ((r = qcow2_flush_meta(b, true, e)) < 0 || (r = update_tree(b, old, n_old, -1, e)) < 0 ||
        (r = fix_copied(b, e)) < 0)
        goto out;
    r = qcow2_flush_meta(b, true, e);
out:
    free(sl1);
    free(old);
    qcow2_free_snapshots(sn, n);
    return r;
}

static int snap_delete(struct blk *b, const char *name, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    struct qcow2_snap *sn;
    uint64_t *sl1;
    int n, r, i = load_named(b, name, &sn, &n, &sl1, e);
    if (i < 0) {
        r = i;
        goto out;
    }
    struct qcow2_snap gone = sn[i];
    memmove(&sn[i], &sn[i + 1], (size_t)(n - i - 1) * sizeof *sn);
    sn[n - 1] = gone;   /* keep it to free its strings */
    if ((r = write_table(b, sn, n - 1, e)) < 0)
        goto out;
    /* The table no longer names it: drop its references. */
    if ((r = update_tree(b, sl1, gone.l1_size, -1, e)) < 0)
        goto out;
    uint64_t cs = s->cluster_size;
    for (uint64_t c = 0; c < ((uint64_t)gone.l1_size * 8 + cs - 1) / cs && r == 0; c++)
        r = qcow2_update_refcount(b, gone.l1_offset / cs + c, -1, e);
    if (r == 0 && (r = fix_copied(b, e)) == 0)
        r = qcow2_flush_meta(b, true, e);
out:
    free(sl1);
    qcow2_free_snapshots(sn, n);
    return r;
}

#define LOCKED(fn, inner) \
    int fn(struct blk *b, const char *name, struct err *e) \
    { \
        struct qcow2_state *s = qcow2_s(b); \
        pthread_mutex_lock(&s->lock); \
        int r = inner(b, name, e); \
        pthread_mutex_unlock(&s->lock); \
        return r; \
    }

LOCKED(qcow2_snapshot_create, snap_create)
LOCKED(qcow2_snapshot_apply, snap_apply)
LOCKED(qcow2_snapshot_delete, snap_delete)
