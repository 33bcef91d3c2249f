/* libcvirt-img: the block layer. One driver vtable (struct blk_driver), an
 * explicit driver table in blk.c, raw and qcow2 drivers, backing chains.
 *
 * Every I/O entry point takes byte offsets and is safe to call from one I/O
 * thread while another thread holds a different image: each image carries
 * its own lock, taken by the driver around metadata updates. */
#ifndef CVIRT_IMG_BLK_H
#define CVIRT_IMG_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "util/err.h"

struct blk;

/* blk_open flags */
#define BLK_O_RDWR        0x1u
#define BLK_O_NO_BACKING  0x2u  /* do not open the backing chain */
#define BLK_O_CHECK       0x4u  /* opened for check: skip automatic repair */
#define BLK_O_NO_REPAIR   BLK_O_CHECK
#define BLK_O_UNSAFE      0x8u  /* cache=unsafe: flushes never reach the disk */
/* cache=none: raw files bypass the host page cache (O_DIRECT); buffers,
 * offsets and lengths that are not aligned go through a bounce buffer.
 * qcow2 keeps buffered I/O (its metadata I/O is not block-aligned). A file
 * system that refuses O_DIRECT (tmpfs) gets buffered I/O and one info log
 * line; blk->align then stays 0. */
#define BLK_O_DIRECT      0x10u

#define BLK_MAX_CHAIN     64    /* deepest backing chain we follow */
#define BLK_PATH_MAX      4096

struct blk_open_opts {
    uint64_t l2_cache_bytes;        /* 0: driver default */
    uint64_t refcount_cache_bytes;  /* 0: driver default */
    bool no_barriers;               /* skip fsync ordering (convert targets) */
};

/* Creation options, the union of what the drivers understand; the driver
 * rejects options it does not know. Strings may be NULL. */
enum blk_prealloc { BLK_PREALLOC_OFF, BLK_PREALLOC_METADATA, BLK_PREALLOC_FALLOC,
                    BLK_PREALLOC_FULL };
enum blk_compress { BLK_COMPRESS_ZLIB, BLK_COMPRESS_ZSTD };

struct blk_create_opts {
    uint64_t size;                  /* virtual size; 0 with a backing: take its size */
    bool size_set;
    uint32_t cluster_size;          /* 0: 64 KiB */
    int compat;                     /* 2 (0.10) or 3 (1.1); 0: 3 */
    int refcount_bits;              /* 0: 16 */
    bool lazy_refcounts;
    bool lazy_refcounts_set;        /* given explicitly (amend keeps it otherwise) */
    enum blk_prealloc prealloc;
    enum blk_compress compression;
    const char *backing_file;
    const char *backing_fmt;
    bool unsafe_backing;            /* do not open the backing file */
};

/* Status of a byte range, as `map` and sparse convert need it. */
enum blk_status_kind {
    BLK_ST_DATA,        /* allocated data; host_offset valid when has_offset */
    BLK_ST_ZERO,        /* reads as zeros, allocated in this layer */
    BLK_ST_UNALLOC,     /* not allocated in this layer (falls through) */
};

struct blk_status {
    enum blk_status_kind kind;
    uint64_t len;           /* bytes from the queried offset with this status */
    bool has_offset;
    uint64_t host_offset;
    bool compressed;
    bool reads_zero;        /* data whose host range is a hole in the file */
};

struct blk_check_result {
    uint64_t corruptions, leaks, check_errors;
    uint64_t corruptions_fixed, leaks_fixed;
    uint64_t image_end_offset;
    uint64_t total_clusters, allocated_clusters;
    uint64_t fragmented_clusters, compressed_clusters;
    bool rebuilt;
    /* Set by the caller, kept by blk_check: one call per finding (a line
     * without newline); NULL keeps the check silent. */
    void (*report)(void *opaque, const char *line);
    void *report_opaque;
};

#define BLK_CHECK_FIX_LEAKS   0x1
#define BLK_CHECK_FIX_ERRORS  0x2

struct blk_info {
    const char *format;
    uint64_t virtual_size;
    uint64_t cluster_size;      /* 0 when the format has none */
    char backing_file[BLK_PATH_MAX];    /* as stored; empty when none */
    char backing_fmt[32];
    bool dirty;
    /* qcow2 specific */
    bool is_qcow2;
    int version;
    bool lazy_refcounts;
    int refcount_bits;
    bool corrupt;
    bool extended_l2;
    enum blk_compress compression;
    int nb_snapshots;
};

struct blk_snapshot_info {
    char id[128];
    char name[256];
    uint64_t vm_state_size;
    uint32_t date_sec, date_nsec;
    uint64_t vm_clock_nsec;
    uint64_t icount;        /* UINT64_MAX when not recorded */
};

struct blk_driver {
    const char *name;
    size_t state_size;
    /* Score 0..100 that buf (the first bytes of a file) is in this format. */
    int (*probe)(const uint8_t *buf, size_t len);
    int (*open)(struct blk *b, const struct blk_open_opts *o, struct err *e);
    int (*preadv)(struct blk *b, const struct iovec *iov, int iovcnt,
                  uint64_t off, struct err *e);
    int (*pwritev)(struct blk *b, const struct iovec *iov, int iovcnt,
                   uint64_t off, struct err *e);
    int (*flush)(struct blk *b, struct err *e);
    int (*discard)(struct blk *b, uint64_t off, uint64_t len, struct err *e);
    int (*write_zeroes)(struct blk *b, uint64_t off, uint64_t len, struct err *e);
    int (*truncate)(struct blk *b, uint64_t size, bool shrink, struct err *e);
    int (*create)(const char *path, const struct blk_create_opts *o, struct err *e);
    int (*check)(struct blk *b, int fix, struct blk_check_result *r, struct err *e);
    void (*close)(struct blk *b);
    int (*get_info)(struct blk *b, struct blk_info *info, struct err *e);
    int (*block_status)(struct blk *b, uint64_t off, uint64_t len,
                        struct blk_status *st, struct err *e);
    /* Writes one full cluster compressed (optional). */
    int (*write_compressed)(struct blk *b, uint64_t off, const void *buf,
                            size_t len, struct err *e);
    /* Compresses one cluster without touching the image (any thread);
     * returns the compressed length, or 0 when it does not shrink. */
    size_t (*compress)(struct blk *b, const void *in, size_t len, void *out);
    /* Stores a cluster compressed by ->compress (raw when clen is 0). */
    int (*write_precompressed)(struct blk *b, uint64_t off, const void *cdata,
                               size_t clen, const void *raw, size_t len, struct err *e);
    /* Changes the recorded backing file (optional; NULL name removes it). */
    int (*set_backing)(struct blk *b, const char *name, const char *fmt,
                       struct err *e);
    /* Internal snapshots (optional). list returns a malloc'ed array. */
    int (*snapshot_list)(struct blk *b, struct blk_snapshot_info **out, int *n,
                         struct err *e);
    int (*snapshot_create)(struct blk *b, const char *name, struct err *e);
    int (*snapshot_apply)(struct blk *b, const char *name, struct err *e);
    int (*snapshot_delete)(struct blk *b, const char *name, struct err *e);
    /* Changes header options in place (optional): compat, lazy_refcounts. */
    int (*amend)(struct blk *b, const struct blk_create_opts *o, struct err *e);
};

/* Public view of an open image; drivers keep their state behind ->state. */
struct blk {
    const struct blk_driver *drv;
    void *state;
    int fd;
    unsigned flags;
    char *filename;
    uint64_t size;              /* virtual size in bytes */
    struct blk *backing;        /* NULL when none or not opened */
    uint64_t dev, ino;          /* for the chain loop check */
    unsigned align;             /* O_DIRECT alignment in bytes; 0: buffered */
};

/* Driver table (blk.c) in probe order, raw last. */
const struct blk_driver *blk_find_driver(const char *name);
const struct blk_driver *const *blk_drivers(void);

/* Probes a file's format; only for reading an image whose format was not
 * given. Returns the driver or NULL with e set. */
const struct blk_driver *blk_probe_file(const char *path, struct err *e);

/* Opens an image. fmt NULL probes (and then refuses BLK_O_RDWR unless the
 * probe found a non-raw format, so a guest's bytes never decide it). */
int blk_open(struct blk **out, const char *path, const char *fmt, unsigned flags,
             const struct blk_open_opts *o, struct err *e);
void blk_close(struct blk *b);

int blk_preadv(struct blk *b, const struct iovec *iov, int iovcnt, uint64_t off,
               struct err *e);
int blk_pwritev(struct blk *b, const struct iovec *iov, int iovcnt, uint64_t off,
                struct err *e);
int blk_pread(struct blk *b, void *buf, size_t len, uint64_t off, struct err *e);
int blk_pwrite(struct blk *b, const void *buf, size_t len, uint64_t off,
               struct err *e);
int blk_flush(struct blk *b, struct err *e);
int blk_discard(struct blk *b, uint64_t off, uint64_t len, struct err *e);
int blk_write_zeroes(struct blk *b, uint64_t off, uint64_t len, struct err *e);
int blk_truncate(struct blk *b, uint64_t size, bool shrink, struct err *e);
int blk_write_compressed(struct blk *b, uint64_t off, const void *buf, size_t len,
                         struct err *e);
/* Parallel compression: blk_compress may run in worker threads (out holds
 * blk_compress_bound bytes); blk_write_precompressed stores the result. */
size_t blk_compress_bound(struct blk *b);
size_t blk_compress(struct blk *b, const void *in, size_t len, void *out);
int blk_write_precompressed(struct blk *b, uint64_t off, const void *cdata, size_t clen,
                            const void *raw, size_t len, struct err *e);
int blk_block_status(struct blk *b, uint64_t off, uint64_t len,
                     struct blk_status *st, struct err *e);
int blk_check(struct blk *b, int fix, struct blk_check_result *r, struct err *e);
int blk_get_info(struct blk *b, struct blk_info *info, struct err *e);
int blk_set_backing(struct blk *b, const char *name, const char *fmt, struct err *e);
int blk_snapshot_list(struct blk *b, struct blk_snapshot_info **out, int *n,
                      struct err *e);
int blk_snapshot_create(struct blk *b, const char *name, struct err *e);
int blk_snapshot_apply(struct blk *b, const char *name, struct err *e);
int blk_snapshot_delete(struct blk *b, const char *name, struct err *e);
int blk_amend(struct blk *b, const struct blk_create_opts *o, struct err *e);
int blk_create(const char *fmt, const char *path, const struct blk_create_opts *o,
               struct err *e);

/* Reads [off, off+len) of b's backing chain below b into buf (zeros past
 * the end of the chain or where nothing is allocated). */
int blk_read_backing(struct blk *b, void *buf, size_t len, uint64_t off,
                     struct err *e);

/* Resolves a backing name relative to the directory of the image naming it. */
void blk_backing_path(const char *image, const char *name, char *out, size_t n);

/* Raw file helpers shared by drivers: full-length pread/pwrite. */
int blk_file_pread(int fd, void *buf, size_t len, uint64_t off);
int blk_file_pwrite(int fd, const void *buf, size_t len, uint64_t off);
bool blk_is_zero(const void *buf, size_t len);

/* Sizes with K/M/G/T/P/E suffixes (binary, as qemu-img), "1.5G" allowed. */
int blk_parse_size(const char *s, uint64_t *out);
/* "64 MiB", "1.25 MiB" like qemu-img's human sizes. */
void blk_format_size(uint64_t v, char *out, size_t n);

extern const struct blk_driver blk_raw_driver;
extern const struct blk_driver blk_qcow2_driver;

#endif
