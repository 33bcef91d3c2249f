/* qcow2 snapshot table: reading it with every length bounded. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
