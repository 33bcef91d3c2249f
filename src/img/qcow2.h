/* qcow2 driver internals, shared by qcow2*.c. On-disk layout per QEMU's
 * docs/interop/qcow2.txt: big-endian header, L1 -> L2 -> data clusters,
 * refcount table -> refcount blocks. */
#ifndef CVIRT_IMG_QCOW2_H
#define CVIRT_IMG_QCOW2_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "img/blk.h"

#define QCOW2_MAGIC             0x514649fbu     /* "QFI\xfb" */
#define QCOW2_MIN_CLUSTER_BITS  9
#define QCOW2_MAX_CLUSTER_BITS  21
#define QCOW2_MAX_L1_BYTES      (32u << 20)
#define QCOW2_MAX_REFTABLE_BYTES (8u << 20)
#define QCOW2_MAX_BACKING_NAME  1023
#define QCOW2_V2_HEADER_LEN     72
#define QCOW2_V3_HEADER_LEN     104
#define QCOW2_MAX_SNAPSHOTS     65536

/* incompatible feature bits */
#define QCOW2_INCOMPAT_DIRTY        (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT      (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE    (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION  (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2        (1ull << 4)
#define QCOW2_INCOMPAT_KNOWN        (QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT | \
                                     QCOW2_INCOMPAT_COMPRESSION)
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)

/* header extensions */
#define QCOW2_EXT_END           0x00000000u
#define QCOW2_EXT_BACKING_FMT   0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE 0x6803f857u
#define QCOW2_EXT_BITMAPS       0x23852875u

/* L1/L2 entry bits */
#define QCOW2_OFLAG_COPIED      (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED  (1ull << 62)
#define QCOW2_OFLAG_ZERO        (1ull << 0)
#define QCOW2_OFFSET_MASK       0x00fffffffffffe00ull   /* bits 9..55 */
#define QCOW2_L1_RESERVED       0x7f000000000001ffull
#define QCOW2_L2_RESERVED       0x3f000000000001feull
#define QCOW2_REFT_RESERVED     0x00000000000001ffull

/* Parsed header: the fields we use, in host order. */
struct qcow2_header {
    uint32_t version;
    uint64_t backing_file_offset;
    uint32_t backing_file_size;
    uint32_t cluster_bits;
    uint64_t size;
    uint32_t crypt_method;
    uint32_t l1_size;
    uint64_t l1_table_offset;
    uint64_t refcount_table_offset;
    uint32_t refcount_table_clusters;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    uint64_t incompatible_features;
    uint64_t compatible_features;
    uint64_t autoclear_features;
    uint32_t refcount_order;
    uint32_t header_length;
    uint8_t compression_type;
    char backing_file[QCOW2_MAX_BACKING_NAME + 1];
    char backing_fmt[32];
    bool has_bitmaps_ext;
};

/* Decoded L2 entry. */
enum qcow2_cluster_type {
    QCOW2_CL_UNALLOC,           /* falls through to backing */
    QCOW2_CL_ZERO_PLAIN,        /* zero flag, no host cluster */
    QCOW2_CL_ZERO_ALLOC,        /* zero flag over a preallocated cluster */
    QCOW2_CL_NORMAL,
    QCOW2_CL_COMPRESSED,
};

struct qcow2_l2_decoded {
    enum qcow2_cluster_type type;
    uint64_t host;              /* cluster offset, or compressed byte offset */
    uint64_t csize;             /* compressed: bytes spanned (sector rounded) */
    bool copied;
};

/* A small set-associative write-back cache of cluster-sized tables. */
struct qcow2_cache_slot {
    uint64_t offset;            /* 0: empty */
    uint64_t lru;
    bool dirty;
    uint8_t *buf;
};

struct qcow2_cache {
    struct qcow2_cache_slot *slots;
    uint32_t nslots, ways, cluster_size;
    uint64_t tick;
};

struct qcow2_state {
    pthread_mutex_t lock;
    struct qcow2_header h;
    uint32_t cluster_size;
    uint32_t l2_entries;            /* entries per L2 table */
    uint32_t l2_bits;               /* log2(l2_entries) */
    uint32_t refcount_bits;
    uint32_t rb_entries;            /* refcount entries per block */
    uint32_t rb_bits;
    uint64_t refcount_max;
    int csize_shift;                /* compressed descriptor layout */
    uint64_t csize_mask;
    uint64_t coffset_mask;

    uint64_t *l1;                   /* host order */
    uint32_t l1_size;
    bool l1_dirty;
    uint64_t *reftable;             /* host order */
    uint32_t reftable_entries;      /* capacity: clusters * cluster_size / 8 */
    bool reftable_dirty;

    struct qcow2_cache l2_cache;
    struct qcow2_cache rb_cache;

    uint64_t free_hint;             /* lowest cluster index that may be free */
    uint64_t host_end;              /* bytes: end of everything allocated */
    uint64_t *pending_free;         /* clusters whose decrement waits for flush */
    size_t npending, cap_pending;
    uint64_t comp_cursor;           /* byte offset for the next compressed cluster */
    bool writable;
    bool no_barriers;               /* lazy refcounts or an unflushed target */
    bool header_dirty;
    bool corrupt_seen;
    uint8_t *zbuf;                  /* scratch for (de)compression */
    uint8_t *cbuf;
    void *zstd_dctx;
};

/* qcow2_header.c */
int qcow2_parse_header(const uint8_t *buf, size_t len, uint64_t file_size,
                       struct qcow2_header *h, struct err *e);
int qcow2_read_header(int fd, const char *name, uint64_t file_size,
                      struct qcow2_header *h, struct err *e);
/* Serializes h (header, extensions, backing name) into one cluster. */
int qcow2_build_header(const struct qcow2_header *h, uint8_t *buf, size_t cluster_size,
                       struct err *e);
int qcow2_write_header(struct blk *b, struct err *e);
const char *qcow2_feature_name(int type, int bit);

/* qcow2_entry.c: pure decoding, unit-tested */
void qcow2_set_geometry(struct qcow2_state *s);
int qcow2_decode_l2(const struct qcow2_state *s, uint64_t entry,
                    struct qcow2_l2_decoded *d);
uint64_t qcow2_encode_compressed(const struct qcow2_state *s, uint64_t off,
                                 uint64_t len);
uint64_t qcow2_rb_get(const uint8_t *block, uint32_t order, uint64_t idx);
void qcow2_rb_set(uint8_t *block, uint32_t order, uint64_t idx, uint64_t v);
static inline uint64_t qcow2_be64(const uint8_t *p)
{
    return ((uint64_t)p[0] << 56) | ((uint64_t)p[1] << 48) | ((uint64_t)p[2] << 40) |
           ((uint64_t)p[3] << 32) | ((uint64_t)p[4] << 24) | ((uint64_t)p[5] << 16) |
           ((uint64_t)p[6] << 8) | p[7];
}
static inline uint32_t qcow2_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void qcow2_put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}
static inline void qcow2_put32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* qcow2_cache.c */
int qcow2_cache_init(struct qcow2_cache *c, uint32_t nslots, uint32_t cluster_size);
void qcow2_cache_destroy(struct qcow2_cache *c);
/* Returns the slot for offset, reading it when read is set (else zeroed). */
int qcow2_cache_get(struct blk *b, struct qcow2_cache *c, uint64_t offset, bool read,
                    uint8_t **buf, struct err *e);
void qcow2_cache_mark_dirty(struct qcow2_cache *c, uint64_t offset);
int qcow2_cache_flush(struct blk *b, struct qcow2_cache *c, struct err *e);
void qcow2_cache_forget(struct qcow2_cache *c, uint64_t offset);
void qcow2_cache_drop_all(struct qcow2_cache *c);

/* qcow2_refcount.c */
int qcow2_load_reftable(struct blk *b, struct err *e);
int qcow2_get_refcount(struct blk *b, uint64_t cluster, uint64_t *rc, struct err *e);
int qcow2_update_refcount(struct blk *b, uint64_t cluster, int64_t delta,
                          struct err *e);
/* Allocates n contiguous clusters with refcount 1; returns the byte offset. */
int qcow2_alloc_clusters(struct blk *b, uint64_t n, uint64_t *off, struct err *e);
/* Frees a cluster after the next metadata flush (see qcow2_flush_meta). */
int qcow2_free_later(struct blk *b, uint64_t off, struct err *e);
int qcow2_apply_pending_frees(struct blk *b, struct err *e);
/* Writes refcount blocks then (after a barrier) L2 and L1 tables. */
int qcow2_flush_meta(struct blk *b, bool sync, struct err *e);
int qcow2_barrier(struct blk *b, struct err *e);
int qcow2_flush_refcounts(struct blk *b, struct err *e);

/* qcow2_cluster.c */
int qcow2_l2_lookup(struct blk *b, uint64_t voff, uint64_t *entry, struct err *e);
int qcow2_read_range(struct blk *b, uint8_t *buf, uint64_t voff, size_t len,
                     struct err *e);
int qcow2_write_range(struct blk *b, const uint8_t *buf, uint64_t voff, size_t len,
                      struct err *e);
int qcow2_zero_range(struct blk *b, uint64_t voff, uint64_t len, bool discard,
                     struct err *e);
int qcow2_set_l2_entry(struct blk *b, uint64_t voff, uint64_t entry, bool alloc,
                       uint64_t *old, struct err *e);
int qcow2_read_compressed(struct blk *b, const struct qcow2_l2_decoded *d,
                          uint8_t *out, struct err *e);
int qcow2_write_compressed(struct blk *b, uint64_t voff, const void *buf,
                           size_t len, struct err *e);
size_t qcow2_compress_cluster(const struct qcow2_state *s, const uint8_t *in, size_t len,
                              uint8_t *out);
int qcow2_store_compressed(struct blk *b, uint64_t voff, const uint8_t *cdata, size_t clen,
                           const void *raw, size_t len, struct err *e);
int qcow2_grow_l1(struct blk *b, uint32_t min_size, struct err *e);

/* qcow2_check.c */
int qcow2_check(struct blk *b, int fix, struct blk_check_result *r, struct err *e);

/* qcow2_amend.c */
int qcow2_amend(struct blk *b, const struct blk_create_opts *o, struct err *e);

/* qcow2_create.c */
int qcow2_create(const char *path, const struct blk_create_opts *o, struct err *e);

static inline uint64_t qcow2_max_alloc_run(const struct qcow2_state *s)
{
    uint64_t n = s->rb_entries / 4;
    return n > 1024 ? 1024 : n ? n : 1;
}

/* A whole cluster at off lies inside the image (never the header). */
static inline bool qcow2_in_image(const struct qcow2_state *s, uint64_t off)
{
    return off >= s->cluster_size && off <= s->host_end &&
           s->host_end - off >= s->cluster_size;
}

static inline struct qcow2_state *qcow2_s(struct blk *b) { return b->state; }

#endif
