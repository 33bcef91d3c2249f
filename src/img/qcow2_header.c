/* qcow2 header: parsing with every field checked against the file, and
 * serializing (header, extensions, backing file name) into cluster 0. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "img/qcow2.h"

struct feature_name { uint8_t type, bit; const char *name; };

/* Names as images carry them in the feature name table extension. */
static const struct feature_name features[] = {
    { 0, 0, "dirty bit" },
    { 0, 1, "corrupt bit" },
    { 0, 2, "external data file" },
    { 0, 3, "compression type" },
    { 0, 4, "extended L2 entries" },
    { 1, 0, "lazy refcounts" },
    { 2, 0, "bitmaps" },
    { 2, 1, "raw external data" },
};
#define NFEATURES (sizeof features / sizeof features[0])
#define FEATURE_ENTRY 48

const char *qcow2_feature_name(int type, int bit)
{
    for (size_t i = 0; i < NFEATURES; i++)
        if (features[i].type == type && features[i].bit == bit)
            return features[i].name;
    return NULL;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return alen && blen && a < b + blen && b < a + alen;
}

/* Reports the first unsupported incompatible bit, by the image's own name
 * for it when its feature table has one. */
static int bad_incompat(uint64_t bits, const uint8_t *table, size_t tlen,
                        struct err *e)
{
    int bit = __builtin_ctzll(bits);
    char name[FEATURE_ENTRY - 1];
    const char *n = qcow2_feature_name(0, bit);
    for (size_t i = 0; table && i + FEATURE_ENTRY <= tlen; i += FEATURE_ENTRY) {
        if (table[i] == 0 && table[i + 1] == bit) {
            memcpy(name, table + i + 2, sizeof name - 1);
            name[sizeof name - 1] = '\0';
            n = name;
            break;
        }
    }
    return err_set(e, ENOTSUP, "Unsupported qcow2 feature(s): incompatible bit %d (%s)",
                   bit, n ? n : "unknown");
}

static int parse_extensions(const uint8_t *buf, size_t len, struct qcow2_header *h,
                            const uint8_t **ftable, size_t *ftlen, struct err *e)
{
    size_t off = h->version >= 3 ? h->header_length : QCOW2_V2_HEADER_LEN;
    size_t end = len;
    if (h->backing_file_offset && h->backing_file_offset < end)
        end = (size_t)h->backing_file_offset;
    while (off + 8 <= end) {
        uint32_t type = qcow2_be32(buf + off);
        uint32_t elen = qcow2_be32(buf + off + 4);
        off += 8;
        if (type == QCOW2_EXT_END)
            return 0;
        if (elen > end - off)
            return err_set(e, EINVAL, "qcow2 header extension 0x%08x (length %u) "
                           "runs past the header cluster", type, elen);
        switch (type) {
        case QCOW2_EXT_BACKING_FMT:
            if (elen >= sizeof h->backing_fmt)
                return err_set(e, EINVAL, "qcow2 backing format name too long (%u)",
                               elen);
            memcpy(h->backing_fmt, buf + off, elen);
            h->backing_fmt[elen] = '\0';
            break;
        case QCOW2_EXT_FEATURE_TABLE:
            *ftable = buf + off;
            *ftlen = elen;
            break;
        case QCOW2_EXT_BITMAPS:
            h->has_bitmaps_ext = true;
            break;
        default:
            break;      /* unknown extensions may be ignored (spec) */
        }
        off += (elen + 7u) & ~7u;
    }
    return 0;
}

static int check_table(const char *what, uint64_t off, uint64_t bytes, uint64_t cs,
                       uint64_t file_size, struct err *e)
{
    if (off % cs)
        return err_set(e, EINVAL, "qcow2 %s offset 0x%llx is not cluster aligned",
                       what, (unsigned long long)off);
    if (bytes && (off == 0 || off > file_size || bytes > file_size - off))
        return err_set(e, EINVAL, "qcow2 %s at 0x%llx (+%llu bytes) lies outside "
                       "the file (%llu bytes)", what, (unsigned long long)off,
                       (unsigned long long)bytes, (unsigned long long)file_size);
    return 0;
}

static int check_layout(const struct qcow2_header *h, uint64_t file_size, struct err *e)
{
    uint64_t cs = 1ull << h->cluster_bits;
    uint64_t l1_bytes = (uint64_t)h->l1_size * 8;
    uint64_t rt_bytes = (uint64_t)h->refcount_table_clusters * cs;
    int r;
    if (l1_bytes > QCOW2_MAX_L1_BYTES)
        return err_set(e, EFBIG, "qcow2 L1 table too large (%u entries)", h->l1_size);
    uint64_t l2_cover = cs * (cs / 8);
    uint64_t need = h->size / l2_cover + (h->size % l2_cover != 0);
    if (h->l1_size < need)
        return err_set(e, EINVAL, "qcow2 L1 table (%u entries) too small for "
                       "virtual size %llu", h->l1_size, (unsigned long long)h->size);
    if (h->refcount_table_clusters == 0)
        return err_set(e, EINVAL, "qcow2 refcount table is empty");
    if (rt_bytes > QCOW2_MAX_REFTABLE_BYTES)
        return err_set(e, EFBIG, "qcow2 refcount table too large (%u clusters)",
                       h->refcount_table_clusters);
    if ((r = check_table("L1 table", h->l1_table_offset, l1_bytes, cs, file_size, e)) < 0 ||
        (r = check_table("refcount table", h->refcount_table_offset, rt_bytes, cs,
                         file_size, e)) < 0)
        return r;
    if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
        return err_set(e, EINVAL, "qcow2 has too many snapshots (%u)", h->nb_snapshots);
    if (h->nb_snapshots &&
        (r = check_table("snapshot table", h->snapshots_offset, 40ull * h->nb_snapshots,
                         cs, file_size, e)) < 0)
        return r;
    /* Metadata regions must not overlap each other or the header. */
    struct { const char *n; uint64_t off, len; } reg[] = {
        { "header", 0, cs },
        { "L1 table", h->l1_table_offset, l1_bytes },
        { "refcount table", h->refcount_table_offset, rt_bytes },
        { "snapshot table", h->snapshots_offset, h->nb_snapshots ? 40ull * h->nb_snapshots : 0 },
    };
    for (size_t i = 0; i < 4; i++)
        for (size_t j = i + 1; j < 4; j++)
            if (ranges_overlap(reg[i].off, reg[i].len, reg[j].off, reg[j].len))
                return err_set(e, EINVAL, "qcow2 metadata overlap: %s (0x%llx) and %s "
                               "(0x%llx)", reg[i].n, (unsigned long long)reg[i].off,
                               reg[j].n, (unsigned long long)reg[j].off);
    return 0;
}

int qcow2_parse_header(const uint8_t *buf, size_t len, uint64_t file_size,
                       struct qcow2_header *h, struct err *e)
{
    memset(h, 0, sizeof *h);
    if (len < QCOW2_V2_HEADER_LEN || qcow2_be32(buf) != QCOW2_MAGIC)
        return err_set(e, EINVAL, "Image is not in qcow2 format (bad magic)");
    h->version = qcow2_be32(buf + 4);
    h->backing_file_offset = qcow2_be64(buf + 8);
    h->backing_file_size = qcow2_be32(buf + 16);
    h->cluster_bits = qcow2_be32(buf + 20);
    h->size = qcow2_be64(buf + 24);
    h->crypt_method = qcow2_be32(buf + 32);
    h->l1_size = qcow2_be32(buf + 36);
    h->l1_table_offset = qcow2_be64(buf + 40);
    h->refcount_table_offset = qcow2_be64(buf + 48);
    h->refcount_table_clusters = qcow2_be32(buf + 56);
    h->nb_snapshots = qcow2_be32(buf + 60);
    h->snapshots_offset = qcow2_be64(buf + 64);
    if (h->version != 2 && h->version != 3)
        return err_set(e, ENOTSUP, "Unsupported qcow2 version %u", h->version);
    if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS || h->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
        return err_set(e, EINVAL, "Unsupported cluster size: 2^%u", h->cluster_bits);
    uint64_t cs = 1ull << h->cluster_bits;
    h->refcount_order = 4;
    h->header_length = QCOW2_V2_HEADER_LEN;
    if (h->version >= 3) {
        if (len < QCOW2_V3_HEADER_LEN)
            return err_set(e, EINVAL, "qcow2 v3 header truncated");
        h->incompatible_features = qcow2_be64(buf + 72);
        h->compatible_features = qcow2_be64(buf + 80);
        h->autoclear_features = qcow2_be64(buf + 88);
        h->refcount_order = qcow2_be32(buf + 96);
        h->header_length = qcow2_be32(buf + 100);
        if (h->header_length < QCOW2_V3_HEADER_LEN || h->header_length % 8)
            return err_set(e, EINVAL, "qcow2 header_length %u is invalid",
                           h->header_length);
        if (h->header_length > cs)
            return err_set(e, EINVAL, "qcow2 header (%u bytes) exceeds the cluster "
                           "size (%llu)", h->header_length, (unsigned long long)cs);
        if (h->header_length > len)
            return err_set(e, EINVAL, "qcow2 header truncated (header_length %u)",
                           h->header_length);
        if (h->header_length > 104)
            h->compression_type = buf[104];
    }
    if (h->refcount_order > 6)
        return err_set(e, EINVAL, "qcow2 refcount_order %u is invalid (max 6)",
                       h->refcount_order);
    if (h->crypt_method)
        return err_set(e, ENOTSUP, "encrypted qcow2 images are not supported");
    size_t hlen = len < cs ? len : (size_t)cs;
    if (h->backing_file_offset) {
        if (h->backing_file_size > QCOW2_MAX_BACKING_NAME)
            return err_set(e, EINVAL, "qcow2 backing file name too long (%u)",
                           h->backing_file_size);
        if (h->backing_file_offset > hlen ||
            h->backing_file_size > hlen - h->backing_file_offset)
            return err_set(e, EINVAL, "qcow2 backing file name lies outside the "
                           "header cluster");
        memcpy(h->backing_file, buf + h->backing_file_offset, h->backing_file_size);
        h->backing_file[h->backing_file_size] = '\0';
        if (strlen(h->backing_file) != h->backing_file_size)
            return err_set(e, EINVAL, "qcow2 backing file name contains a NUL byte");
    }
    const uint8_t *ftable = NULL;
    size_t ftlen = 0;
    int r = parse_extensions(buf, hlen, h, &ftable, &ftlen, e);
    if (r < 0)
        return r;
    uint64_t unknown = h->incompatible_features & ~QCOW2_INCOMPAT_KNOWN;
    if (unknown)
        return bad_incompat(unknown, ftable, ftlen, e);
    if (h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION) {
        if (h->compression_type != 1)
            return err_set(e, ENOTSUP, "qcow2 compression type %u is not supported",
                           h->compression_type);
    } else if (h->compression_type != 0) {
        return err_set(e, EINVAL, "qcow2 compression_type %u set without the "
                       "compression type bit", h->compression_type);
    }
    return check_layout(h, file_size, e);
}

int qcow2_read_header(int fd, const char *name, uint64_t file_size,
                      struct qcow2_header *h, struct err *e)
{
    uint8_t *buf = malloc(1u << QCOW2_MAX_CLUSTER_BITS);
    if (!buf)
        return err_set(e, ENOMEM, "out of memory");
    size_t want = file_size < (1u << QCOW2_MAX_CLUSTER_BITS) ? (size_t)file_size
                                                           : 1u << QCOW2_MAX_CLUSTER_BITS;
    int r = blk_file_pread(fd, buf, want, 0);
    if (r < 0)
        r = err_set_errno(e, -r, "Could not read qcow2 header");
    else
        r = qcow2_parse_header(buf, want, file_size, h, e);
    free(buf);
    return r;
}

static size_t put_ext(uint8_t *p, uint32_t type, const void *data, uint32_t len)
{
    qcow2_put32(p, type);
    qcow2_put32(p + 4, len);
    memcpy(p + 8, data, len);
    size_t padded = (len + 7u) & ~7u;
    memset(p + 8 + len, 0, padded - len);
    return 8 + padded;
}

int qcow2_build_header(const struct qcow2_header *h, uint8_t *buf, size_t cs,
                       struct err *e)
{
    memset(buf, 0, cs);
    size_t hl = h->version >= 3 ? 112 : QCOW2_V2_HEADER_LEN;
    size_t blen = strlen(h->backing_file);
    size_t fmtlen = strlen(h->backing_fmt);
    size_t ftable = h->version >= 3 ? 8 + NFEATURES * FEATURE_ENTRY : 0;
    size_t need = hl + (fmtlen ? 8 + ((fmtlen + 7) & ~7u) : 0) + 8 + blen;
    if (need > cs)
        return err_set(e, ENOSPC, "qcow2 header with backing file name does not fit "
                       "in a %zu byte cluster", cs);
    if (need + ftable > cs)
        ftable = 0;     /* the table is optional; small clusters drop it */
    qcow2_put32(buf, QCOW2_MAGIC);
    qcow2_put32(buf + 4, h->version);
    qcow2_put32(buf + 20, h->cluster_bits);
    qcow2_put64(buf + 24, h->size);
    qcow2_put32(buf + 32, 0);
    qcow2_put32(buf + 36, h->l1_size);
    qcow2_put64(buf + 40, h->l1_table_offset);
    qcow2_put64(buf + 48, h->refcount_table_offset);
    qcow2_put32(buf + 56, h->refcount_table_clusters);
    qcow2_put32(buf + 60, h->nb_snapshots);
    qcow2_put64(buf + 64, h->snapshots_offset);
    if (h->version >= 3) {
        qcow2_put64(buf + 72, h->incompatible_features);
        qcow2_put64(buf + 80, h->compatible_features);
        /* Autoclear bits we do not maintain (bitmaps) must be cleared on write. */
        qcow2_put64(buf + 88, 0);
        qcow2_put32(buf + 96, h->refcount_order);
        qcow2_put32(buf + 100, (uint32_t)hl);
        buf[104] = h->compression_type;
    }
    size_t off = hl;
    if (fmtlen)
        off += put_ext(buf + off, QCOW2_EXT_BACKING_FMT, h->backing_fmt, (uint32_t)fmtlen);
    if (ftable) {
        qcow2_put32(buf + off, QCOW2_EXT_FEATURE_TABLE);
        qcow2_put32(buf + off + 4, NFEATURES * FEATURE_ENTRY);
        off += 8;
        for (size_t i = 0; i < NFEATURES; i++, off += FEATURE_ENTRY) {
            buf[off] = features[i].type;
            buf[off + 1] = features[i].bit;
            memcpy(buf + off + 2, features[i].name, strlen(features[i].name));
        }
    }
    off += 8;   /* end-of-extensions marker: zeros */
    if (blen) {
        qcow2_put64(buf + 8, off);
        qcow2_put32(buf + 16, (uint32_t)blen);
        memcpy(buf + off, h->backing_file, blen);
        off += blen;
    }
    return (int)off;
}

int qcow2_write_header(struct blk *b, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    uint8_t *buf = malloc(s->cluster_size);
    if (!buf)
        return err_set(e, ENOMEM, "out of memory");
    int n = qcow2_build_header(&s->h, buf, s->cluster_size, e);
    int r = n;
    if (n >= 0) {
        r = blk_file_pwrite(b->fd, buf, (size_t)n, 0);
        if (r < 0)
            r = err_set_errno(e, -r, "'%s': cannot write qcow2 header", b->filename);
        else
            s->header_dirty = false;
    }
    free(buf);
    return r < 0 ? r : 0;
}
