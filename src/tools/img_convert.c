/* cvirt-img convert: copy an image (through its backing chain) into a new
 * or existing one, skipping zeros (-S), optionally compressing (-c). */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/img_cmds.h"

#define CHUNK (4u << 20)

struct conv {
    struct blk *src, *dst;
    bool compress, progress, existing, target_backing;
    uint64_t min_sparse;        /* 0: no sparse detection */
    uint64_t gran;              /* granularity of zero skipping */
    uint64_t cluster;           /* compression unit */
    uint8_t *buf;
    uint64_t done;
    uint8_t *cout;              /* compressed clusters of one chunk */
    size_t *clen;
    int nworkers;
};

#define SKIP_ZERO ((size_t)-1)

struct cjob {
    struct conv *c;
    const uint8_t *buf;
    uint64_t len;
    int index;
};

/* Compresses every nworkers-th cluster of the chunk, starting at index. */
static void *compress_worker(void *arg)
{
    struct cjob *j = arg;
    struct conv *c = j->c;
    uint64_t ncl = (j->len + c->cluster - 1) / c->cluster;
    for (uint64_t i = (uint64_t)j->index; i < ncl; i += (uint64_t)c->nworkers) {
        uint64_t p = i * c->cluster;
        uint64_t n = j->len - p < c->cluster ? j->len - p : c->cluster;
        if (c->min_sparse && blk_is_zero(j->buf + p, n))
            c->clen[i] = SKIP_ZERO;
        else
            c->clen[i] = blk_compress(c->dst, j->buf + p, n, c->cout + p);
    }
    return NULL;
}

/* Deflate is the cost of -c: spread it over the cores, write in order. */
static int write_compressed_chunk(struct conv *c, const uint8_t *buf, uint64_t off,
                                  uint64_t len, struct err *e)
{
    pthread_t th[16];
    struct cjob jobs[16];
    int started = 0;
    for (int t = 0; t < c->nworkers; t++)
        jobs[t] = (struct cjob){ c, buf, len, t };
    for (int t = 1; t < c->nworkers; t++)
        if (pthread_create(&th[t], NULL, compress_worker, &jobs[t]) == 0)
            started |= 1 << t;
        else
            compress_worker(&jobs[t]);
    compress_worker(&jobs[0]);
    for (int t = 1; t < c->nworkers; t++)
        if (started & (1 << t))
            pthread_join(th[t], NULL);
    uint64_t ncl = (len + c->cluster - 1) / c->cluster;
    for (uint64_t i = 0; i < ncl; i++) {
        uint64_t p = i * c->cluster;
        uint64_t n = len - p < c->cluster ? len - p : c->cluster;
        if (c->clen[i] == SKIP_ZERO)
            continue;
        int r = blk_write_precompressed(c->dst, off + p, c->cout + p, c->clen[i], buf + p, n, e);
        if (r < 0)
            return r;
    }
    return 0;
}

static void show_progress(struct conv *c)
{
    if (c->progress)
        printf("    (%.2f/100%%)\r", c->src->size ? 100.0 * (double)c->done /
                                                   (double)c->src->size : 100.0),
        fflush(stdout);
}

/* Status of [off, off+len) in the source: 0 data, 1 zero, 2 skip (backing). */
static int src_kind(struct conv *c, uint64_t off, uint64_t *len, struct err *e)
{
    struct blk *cur = c->src;
    for (int depth = 0; ; depth++) {
        struct blk_status st;
        int r = blk_block_status(cur, off, *len, &st, e);
        if (r < 0)
            return r;
        *len = st.len;
        if (st.kind == BLK_ST_DATA)
            return st.reads_zero ? 1 : 0;
        if (st.kind == BLK_ST_ZERO)
            return 1;
        if (c->target_backing && depth == 0)
            return 2;           /* left to the target's backing file */
        if (!cur->backing || off >= cur->backing->size)
            return 1;
        cur = cur->backing;
        if (*len > cur->size - off)
            *len = cur->size - off;
    }
}

static int write_data(struct conv *c, const uint8_t *buf, uint64_t off, uint64_t len,
                      struct err *e)
{
    if (c->compress)
        return write_compressed_chunk(c, buf, off, len, e);
    if (!c->min_sparse)
        return blk_pwrite(c->dst, buf, len, off, e);
    /* Write runs of non-zero granules; zero ones stay holes (or get
     * explicit zeroes when the target already held data). */
    uint64_t p = 0;
    while (p < len) {
        uint64_t g = c->gran - (off + p) % c->gran;
        if (g > len - p)
            g = len - p;
        bool zero = blk_is_zero(buf + p, g);
        uint64_t q = p + g;
        while (q < len) {
            uint64_t g2 = len - q < c->gran ? len - q : c->gran;
            if (blk_is_zero(buf + q, g2) != zero)
                break;
            q += g2;
        }
        int r = 0;
        if (!zero)
            r = blk_pwrite(c->dst, buf + p, q - p, off + p, e);
        else if (c->existing || c->target_backing)
            r = blk_write_zeroes(c->dst, off + p, q - p, e);
        if (r < 0)
            return r;
        p = q;
    }
    return 0;
}

static int copy_all(struct conv *c, struct err *e)
{
    uint64_t size = c->src->size;
    for (uint64_t off = 0; off < size; ) {
        uint64_t len = size - off;
        if (len > CHUNK)
            len = CHUNK;
        int kind;
        if (c->compress) {
            /* Whole clusters: read everything, zero clusters are skipped. */
            kind = 0;
            if (len > c->cluster && len % c->cluster)
                len -= len % c->cluster;
        } else if ((kind = src_kind(c, off, &len, e)) < 0) {
            return kind;
        }
        int r = 0;
        if (kind == 0) {
            if ((r = blk_pread(c->src, c->buf, len, off, e)) == 0)
                r = write_data(c, c->buf, off, len, e);
        } else if (kind == 1 && (c->existing || c->target_backing)) {
            r = blk_write_zeroes(c->dst, off, len, e);
        }
        if (r < 0)
            return r;
        off += len;
        c->done = off;
        show_progress(c);
    }
    return 0;
}

int img_cmd_convert(int argc, char **argv)
{
    const char *fmt = NULL, *ofmt = "raw", *backing = NULL, *backing_fmt = NULL;
    struct blk_create_opts o = {0};
    struct conv c = { .min_sparse = 4096 };
    struct err e = {0};
    bool unsafe = true;
    int ch;
    optind = 1;
    while ((ch = getopt(argc, argv, "f:O:cpS:B:F:no:qWm:t:T:U")) != -1) {
        switch (ch) {
        case 'f': fmt = optarg; break;
        case 'O': ofmt = optarg; break;
        case 'c': c.compress = true; break;
        case 'p': c.progress = true; break;
        case 'S':
            if (blk_parse_size(optarg, &c.min_sparse) < 0)
                return img_fail(1, "Invalid buffer size for sparse output specified. "
                                "Valid sizes are multiples of 512 up to 2097152.");
            break;
        case 'B': backing = optarg; break;
        case 'F': backing_fmt = optarg; break;
        case 'n': c.existing = true; break;
        case 'o':
            if (img_parse_create_opts(optarg, &o, &e) < 0)
                return img_fail_err(1, &e);
            break;
        case 'q': c.progress = false; break;
        case 't':
            /* like qemu-img, the target's cache defaults to unsafe */
            unsafe = !strcmp(optarg, "unsafe");
            break;
        case 'W': case 'm': case 'T': case 'U': break;
        default: return img_fail(1, "usage: convert [-f fmt] [-O fmt] src dst");
        }
    }
    if (argc - optind != 2)
        return img_fail(1, "Expecting one source and one target image name");
    if (c.min_sparse % 512 || c.min_sparse > (2u << 20))
        return img_fail(1, "Invalid buffer size for sparse output specified. Valid sizes "
                        "are multiples of 512 up to 2097152.");
    const char *src = argv[optind], *dst = argv[optind + 1];
    if (c.compress && strcmp(ofmt, "qcow2"))
        return img_fail(1, "Compression not supported for this file format");
    if (blk_open(&c.src, src, fmt, 0, NULL, &e) < 0)
        return img_fail_err(1, &e);
    int ret = 1;
    if (backing) {
        o.backing_file = backing;
        o.backing_fmt = backing_fmt;
        if (!o.backing_fmt) {
            char bp[BLK_PATH_MAX];
            blk_backing_path(dst, backing, bp, sizeof bp);
            const struct blk_driver *d = blk_probe_file(bp, &e);
            if (!d)
                goto out;
            o.backing_fmt = d->name;
        }
        c.target_backing = true;
    }
    if (!c.existing) {
        o.size = c.src->size;
        o.size_set = true;
        if (blk_create(ofmt, dst, &o, &e) < 0)
            goto out;
    }
    struct blk_open_opts oo = { .no_barriers = true };
    unsigned fl = BLK_O_RDWR | (c.target_backing ? 0 : BLK_O_NO_BACKING) |
                  (unsafe ? BLK_O_UNSAFE : 0);
    if (blk_open(&c.dst, dst, ofmt, fl, &oo, &e) < 0)
        goto out;
    if (c.dst->size < c.src->size) {
        err_set(&e, EINVAL, "Target image is smaller than the source");
        goto out;
    }
    struct blk_info info;
    if (blk_get_info(c.dst, &info, &e) < 0)
        goto out;
    c.cluster = info.cluster_size ? info.cluster_size : 65536;
    c.gran = c.min_sparse;
    if (info.cluster_size && c.gran < info.cluster_size)
        c.gran = info.cluster_size;
    c.buf = malloc(CHUNK);
    if (c.compress) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c.nworkers = n < 1 ? 1 : n > 16 ? 16 : (int)n;
        c.cout = malloc(CHUNK + c.cluster);
        c.clen = calloc(CHUNK / c.cluster + 1, sizeof *c.clen);
        if (!c.cout || !c.clen) {
            err_set(&e, ENOMEM, "out of memory");
            goto out;
        }
    }
    if (!c.buf) {
        err_set(&e, ENOMEM, "out of memory");
        goto out;
    }
    show_progress(&c);
    if (copy_all(&c, &e) < 0 || blk_flush(c.dst, &e) < 0)
        goto out;
    if (c.progress)
        printf("    (100.00/100%%)\n");
    ret = 0;
out:
    if (ret)
        img_fail(1, "%s", e.msg);
    free(c.buf);
    free(c.cout);
    free(c.clen);
    blk_close(c.dst);
    blk_close(c.src);
    return ret;
}
