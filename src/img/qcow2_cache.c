/* Write-back cache of L2 tables and refcount blocks. Set-associative so a
 * lookup costs a handful of compares whatever the cache size. A buffer
 * returned by qcow2_cache_get stays valid until the next get on the same
 * cache. A dirty L2 table is only written after the refcount blocks (and a
 * barrier), so an L2 entry never reaches the disk before the refcount that
 * makes its cluster in use. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "img/qcow2.h"

#define WAYS 4

int qcow2_cache_init(struct qcow2_cache *c, uint32_t nslots, uint32_t cs)
{
    memset(c, 0, sizeof *c);
    if (nslots < WAYS)
        nslots = WAYS;
    nslots -= nslots % WAYS;
    c->ways = WAYS;
    c->cluster_size = cs;
    c->nslots = nslots;
    c->slots = calloc(nslots, sizeof *c->slots);
    if (!c->slots)
        return -ENOMEM;
    for (uint32_t i = 0; i < nslots; i++) {
        if (!(c->slots[i].buf = malloc(cs))) {
            qcow2_cache_destroy(c);
            return -ENOMEM;
        }
    }
    return 0;
}

void qcow2_cache_destroy(struct qcow2_cache *c)
{
    if (c->slots)
        for (uint32_t i = 0; i < c->nslots; i++)
            free(c->slots[i].buf);
    free(c->slots);
    c->slots = NULL;
}

static struct qcow2_cache_slot *set_of(struct qcow2_cache *c, uint64_t offset,
                                       uint32_t cs)
{
    uint64_t key = offset / cs;
    uint32_t nsets = c->nslots / c->ways;
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    return &c->slots[(uint32_t)((h >> 32) % nsets) * c->ways];
}

static int write_deps(struct blk *b, struct qcow2_cache *c, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    if (c == &s->l2_cache) {
        /* Refcounts first: an L2 entry must never point at a cluster that
         * the on-disk refcounts still call free. */
        int r = qcow2_flush_refcounts(b, e);
        if (r == 0)
            r = qcow2_barrier(b, e);
        return r;
    }
    return 0;
}

static int write_slot(struct blk *b, struct qcow2_cache_slot *sl, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    int r = blk_file_pwrite(b->fd, sl->buf, s->cluster_size, sl->offset);
    if (r < 0)
        return err_set_errno(e, -r, "'%s': cannot write metadata at 0x%llx",
                             b->filename, (unsigned long long)sl->offset);
    sl->dirty = false;
    return 0;
}

int qcow2_cache_get(struct blk *b, struct qcow2_cache *c, uint64_t offset, bool read,
                    uint8_t **buf, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    struct qcow2_cache_slot *set = set_of(c, offset, s->cluster_size);
    struct qcow2_cache_slot *victim = NULL;
    for (uint32_t i = 0; i < c->ways; i++) {
        if (set[i].offset == offset) {
            set[i].lru = ++c->tick;
            *buf = set[i].buf;
            return 0;
        }
        if (!victim || (victim->offset && (!set[i].offset || set[i].lru < victim->lru)))
            victim = &set[i];
    }
    if (victim->dirty) {
        int r = write_deps(b, c, e);
        if (r == 0)
            r = write_slot(b, victim, e);
        if (r < 0)
            return r;
    }
    victim->offset = 0;
    if (read) {
        int r = blk_file_pread(b->fd, victim->buf, s->cluster_size, offset);
        if (r < 0)
            return err_set_errno(e, -r, "'%s': cannot read metadata at 0x%llx",
                                 b->filename, (unsigned long long)offset);
    } else {
        memset(victim->buf, 0, s->cluster_size);
    }
    victim->offset = offset;
    victim->dirty = false;
    victim->lru = ++c->tick;
    *buf = victim->buf;
    return 0;
}

void qcow2_cache_mark_dirty(struct qcow2_cache *c, uint64_t offset)
{
    struct qcow2_cache_slot *set = set_of(c, offset, c->cluster_size);
    for (uint32_t i = 0; i < c->ways; i++) {
        if (set[i].offset == offset) {
            set[i].dirty = true;
            return;
        }
    }
}

int qcow2_cache_flush(struct blk *b, struct qcow2_cache *c, struct err *e)
{
    bool deps = false;
    for (uint32_t i = 0; i < c->nslots; i++) {
        if (c->slots[i].dirty) {
            int r = deps ? 0 : write_deps(b, c, e);
            deps = true;
            if (r == 0)
                r = write_slot(b, &c->slots[i], e);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

void qcow2_cache_forget(struct qcow2_cache *c, uint64_t offset)
{
    struct qcow2_cache_slot *set = set_of(c, offset, c->cluster_size);
    for (uint32_t i = 0; i < c->ways; i++) {
        if (set[i].offset == offset) {
            set[i].offset = 0;
            set[i].dirty = false;
        }
    }
}

void qcow2_cache_drop_all(struct qcow2_cache *c)
{
    for (uint32_t i = 0; i < c->nslots; i++) {
        c->slots[i].offset = 0;
        c->slots[i].dirty = false;
    }
}
