/* Pure decoding of qcow2 table entries; no I/O, so unit tests and the
 * checker share exactly the rules the I/O path uses. */
#include <errno.h>

#include "img/qcow2.h"

void qcow2_set_geometry(struct qcow2_state *s)
{
    uint32_t cb = s->h.cluster_bits;
    s->cluster_size = 1u << cb;
    s->l2_bits = cb - 3;
    s->l2_entries = 1u << s->l2_bits;
    s->refcount_bits = 1u << s->h.refcount_order;
    s->rb_bits = cb + 3 - s->h.refcount_order;
    s->rb_entries = 1u << s->rb_bits;
    s->refcount_max = s->refcount_bits == 64 ? UINT64_MAX
                                             : (1ull << s->refcount_bits) - 1;
    s->csize_shift = 62 - (int)(cb - 8);
    s->csize_mask = (1ull << (cb - 8)) - 1;
    s->coffset_mask = (1ull << s->csize_shift) - 1;
}

int qcow2_decode_l2(const struct qcow2_state *s, uint64_t entry,
                    struct qcow2_l2_decoded *d)
{
    d->host = 0;
    d->csize = 0;
    d->copied = (entry & QCOW2_OFLAG_COPIED) != 0;
    if (entry & QCOW2_OFLAG_COMPRESSED) {
        d->type = QCOW2_CL_COMPRESSED;
        if (d->copied)
            return -EINVAL;     /* compressed clusters are never COPIED */
        d->host = entry & s->coffset_mask;
        uint64_t nsect = ((entry >> s->csize_shift) & s->csize_mask) + 1;
        d->csize = nsect * 512 - (d->host & 511);
        if (d->host == 0 || (d->host >> 56))
            return -EINVAL;
        return 0;
    }
    if (entry & QCOW2_L2_RESERVED)
        return -EINVAL;
    d->host = entry & QCOW2_OFFSET_MASK;
    if (d->host & (s->cluster_size - 1))
        return -EINVAL;     /* host offsets are cluster aligned */
    if (entry & QCOW2_OFLAG_ZERO) {
        if (s->h.version < 3)
            return -EINVAL;
        d->type = d->host ? QCOW2_CL_ZERO_ALLOC : QCOW2_CL_ZERO_PLAIN;
        return 0;
    }
    if (!d->host) {
        d->type = QCOW2_CL_UNALLOC;
        return d->copied ? -EINVAL : 0;
    }
    d->type = QCOW2_CL_NORMAL;
    return 0;
}

/* The sector count field holds the sectors touched beyond the first one. */
uint64_t qcow2_encode_compressed(const struct qcow2_state *s, uint64_t off,
                                 uint64_t len)
{
    uint64_t extra = ((off + len - 1) >> 9) - (off >> 9);
    return QCOW2_OFLAG_COMPRESSED | (extra << s->csize_shift) | off;
}

uint64_t qcow2_rb_get(const uint8_t *blk, uint32_t order, uint64_t i)
{
    switch (order) {
    case 0: case 1: case 2: {
        uint32_t bits = 1u << order;
        uint64_t bit = i * bits;
        return (blk[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
    }
    case 3: return blk[i];
    case 4: return ((uint64_t)blk[2 * i] << 8) | blk[2 * i + 1];
    case 5: return qcow2_be32(blk + 4 * i);
    default: return qcow2_be64(blk + 8 * i);
    }
}

void qcow2_rb_set(uint8_t *blk, uint32_t order, uint64_t i, uint64_t v)
{
    switch (order) {
    case 0: case 1: case 2: {
        uint32_t bits = 1u << order;
        uint64_t bit = i * bits;
        uint8_t mask = (uint8_t)(((1u << bits) - 1) << (bit % 8));
        blk[bit / 8] = (uint8_t)((blk[bit / 8] & ~mask) | ((v << (bit % 8)) & mask));
        break;
    }
    case 3: blk[i] = (uint8_t)v; break;
    case 4: blk[2 * i] = (uint8_t)(v >> 8); blk[2 * i + 1] = (uint8_t)v; break;
    case 5: qcow2_put32(blk + 4 * i, (uint32_t)v); break;
    default: qcow2_put64(blk + 8 * i, v); break;
    }
}
