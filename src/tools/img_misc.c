/* cvirt-img amend, measure, rebase and commit. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/img_cmds.h"

static const char *probe_name(const char *path, const char *fmt, struct err *e)
{
    if (fmt)
        return fmt;
    const struct blk_driver *d = blk_probe_file(path, e);
    return d ? d->name : NULL;
}

int img_cmd_amend(int argc, char **argv)
{
    const char *fmt = NULL;
    struct blk_create_opts o = {0};
    struct err e = {0};
    bool have = false;
    int c;
    optind = 1;
    while ((c = getopt(argc, argv, "f:o:qp")) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'o':
            if (img_parse_create_opts(optarg, &o, &e) < 0)
                return img_fail_err(1, &e);
            have = true;
            break;
        case 'q': case 'p': break;
        default: return img_fail(1, "usage: amend [-f fmt] -o options filename");
        }
    }
    if (!have)
        return img_fail(1, "Must specify options (-o)");
    if (optind != argc - 1)
        return img_fail(1, "Expecting one image file name");
    const char *path = argv[optind];
    struct blk *b;
    if (!(fmt = probe_name(path, fmt, &e)) ||
        blk_open(&b, path, fmt, BLK_O_RDWR, NULL, &e) < 0)
        return img_fail_err(1, &e);
    int r = blk_amend(b, &o, &e);
    blk_close(b);
    return r < 0 ? img_fail_err(1, &e) : 0;
}

/* Metadata for a fully allocated qcow2 of size bytes (header, L1, L2,
 * refcount table and blocks), plus the data itself. */
static uint64_t qcow2_full_size(uint64_t size, uint64_t cs, int rbits)
{
    uint64_t l2e = cs / 8, data = (size + cs - 1) / cs * cs;
    uint64_t meta = cs;
    uint64_t nl2e = (data / cs + l2e - 1) / l2e * l2e;
    meta += nl2e * 8;
    uint64_t nl1e = (nl2e * 8 / cs + l2e - 1) / l2e * l2e;
    meta += nl1e * 8;
    uint64_t clusters = (data + meta + cs - 1) / cs;
    uint64_t rb_entries = cs * 8 / (uint64_t)rbits, blocks = 0, table = 0;
    for (;;) {
        uint64_t nb = (clusters + blocks + table + rb_entries - 1) / rb_entries;
        uint64_t nt = (nb + l2e - 1) / l2e;
        if (nb == blocks && nt == table)
            break;
        blocks = nb;
        table = nt;
    }
    return meta + (blocks + table) * cs + data;
}

int img_cmd_measure(int argc, char **argv)
{
    static const struct option lo[] = {
        { "output", required_argument, NULL, 'J' },
        { "size", required_argument, NULL, 'z' },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *ofmt = "raw";
    struct blk_create_opts o = {0};
    struct err e = {0};
    uint64_t size = 0;
    bool have_size = false, json = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:O:o:U", lo, NULL)) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'O': ofmt = optarg; break;
        case 'o':
            if (img_parse_create_opts(optarg, &o, &e) < 0)
                return img_fail_err(1, &e);
            break;
        case 'J': json = !strcmp(optarg, "json"); break;
        case 'z':
            if (blk_parse_size(optarg, &size) < 0)
                return img_fail(1, "Invalid image size specified");
            have_size = true;
            break;
        case 'U': break;
        default: return img_fail(1, "usage: measure [-O fmt] [-o opts] [--size N | filename]");
        }
    }
    if (have_size == (optind < argc))
        return img_fail(1, "Either --size N or one filename must be specified.");
    uint64_t allocated = 0;
    bool bitmaps = false;       /* a qcow2 source reports its (absent) bitmaps */
    if (!have_size) {
        struct blk *b;
        if (blk_open(&b, argv[optind], fmt, 0, NULL, &e) < 0)
            return img_fail_err(1, &e);
        size = b->size;
        bitmaps = !strcmp(b->drv->name, "qcow2") && !strcmp(ofmt, "qcow2");
        uint64_t cs = o.cluster_size ? o.cluster_size : 65536;
        if (strcmp(ofmt, "qcow2"))
            cs = 512;
        /* Data clusters a copy needs: anything that does not read as zero. */
        uint8_t *buf = malloc(cs);
        for (uint64_t off = 0; buf && off < size; off += cs) {
            uint64_t n = size - off < cs ? size - off : cs;
            if (blk_pread(b, buf, n, off, &e) < 0) {
                free(buf);
                blk_close(b);
                return img_fail_err(1, &e);
            }
            if (!blk_is_zero(buf, n))
                allocated += cs;
        }
        free(buf);
        blk_close(b);
    }
    uint64_t full, req;
    if (!strcmp(ofmt, "qcow2")) {
        uint64_t cs = o.cluster_size ? o.cluster_size : 65536;
        int rb = o.refcount_bits ? o.refcount_bits : 16;
        full = qcow2_full_size(size, cs, rb);
        req = full - (size + cs - 1) / cs * cs + allocated;
    } else if (!strcmp(ofmt, "raw")) {
        full = size;
        req = have_size ? size : allocated;
    } else {
        return img_fail(1, "Unknown file format '%s'", ofmt);
    }
    if (json && bitmaps)
        printf("{\n    \"bitmaps\": 0,\n    \"required\": %llu,\n    \"fully-allocated\": %llu\n}\n",
               (unsigned long long)req, (unsigned long long)full);
    else if (json)
        printf("{\n    \"required\": %llu,\n    \"fully-allocated\": %llu\n}\n",
               (unsigned long long)req, (unsigned long long)full);
    else
        printf("required size: %llu\nfully allocated size: %llu\n%s",
               (unsigned long long)req, (unsigned long long)full,
               bitmaps ? "bitmaps size: 0\n" : "");
    return 0;
}

/* Copies into top every cluster whose content would change when its
 * backing changes from old (top's chain) to nw. */
static int rebase_copy(struct blk *top, struct blk *nw, struct err *e)
{
    struct blk_info info;
    if (blk_get_info(top, &info, e) < 0)
        return -1;
    uint64_t cs = info.cluster_size ? info.cluster_size : 65536;
    uint8_t *a = malloc(cs), *b = malloc(cs);
    int r = a && b ? 0 : err_set(e, ENOMEM, "out of memory");
    for (uint64_t off = 0; r == 0 && off < top->size; ) {
        struct blk_status st;
        if ((r = blk_block_status(top, off, top->size - off, &st, e)) < 0)
            break;
        if (st.kind != BLK_ST_UNALLOC) {
            off += st.len;
            continue;
        }
        uint64_t end = off + st.len;
        while (r == 0 && off < end) {
            uint64_t n = end - off < cs - off % cs ? end - off : cs - off % cs;
            r = blk_read_backing(top, a, n, off, e);
            if (r == 0) {
                if (nw && off < nw->size) {
                    uint64_t m = nw->size - off < n ? nw->size - off : n;
                    r = blk_pread(nw, b, m, off, e);
                    memset(b + m, 0, n - m);
                } else {
                    memset(b, 0, n);
                }
            }
            if (r == 0 && memcmp(a, b, n))
                r = blk_pwrite(top, a, n, off, e);
            off += n;
        }
    }
    free(a);
    free(b);
    return r;
}

int img_cmd_rebase(int argc, char **argv)
{
    const char *fmt = NULL, *bname = NULL, *bfmt = NULL;
    bool unsafe = false, have_b = false;
    int c;
    optind = 1;
    while ((c = getopt(argc, argv, "f:b:F:uqpt:T:U")) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'b': bname = optarg; have_b = true; break;
        case 'F': bfmt = optarg; break;
        case 'u': unsafe = true; break;
        case 'q': case 'p': case 't': case 'T': case 'U': break;
        default: return img_fail(1, "usage: rebase [-u] -b backing [-F fmt] filename");
        }
    }
    if (!have_b || optind != argc - 1)
        return img_fail(1, "Expecting -b backing and one image file name");
    const char *path = argv[optind];
    struct err e = {0};
    if (!*bname)
        bname = NULL;
    if (!(fmt = probe_name(path, fmt, &e)))
        return img_fail_err(1, &e);
    struct blk *top, *nw = NULL;
    unsigned fl = BLK_O_RDWR | (unsafe ? BLK_O_NO_BACKING : 0);
    if (blk_open(&top, path, fmt, fl, NULL, &e) < 0)
        return img_fail_err(1, &e);
    int r = 0;
    if (bname && (!unsafe || !bfmt)) {
        char bp[BLK_PATH_MAX];
        blk_backing_path(path, bname, bp, sizeof bp);
        if (!bfmt) {
            const struct blk_driver *d = blk_probe_file(bp, &e);
            bfmt = d ? d->name : NULL;
            r = d ? 0 : -1;
        }
        if (r == 0 && !unsafe)
            r = blk_open(&nw, bp, bfmt, 0, NULL, &e);
    }
    if (r == 0 && !unsafe)
        r = rebase_copy(top, nw, &e);
    if (r == 0)
        r = blk_set_backing(top, bname, bfmt, &e);
    blk_close(nw);
    blk_close(top);
    return r < 0 ? img_fail_err(1, &e) : 0;
}

int img_cmd_commit(int argc, char **argv)
{
    const char *fmt = NULL;
    bool quiet = false, keep = false;
    int c;
    optind = 1;
    while ((c = getopt(argc, argv, "f:qdpt:b:r:")) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'q': quiet = true; break;
        case 'd': keep = true; break;
        case 'p': case 't': case 'b': case 'r': break;
        default: return img_fail(1, "usage: commit [-f fmt] [-d] filename");
        }
    }
    if (optind != argc - 1)
        return img_fail(1, "Expecting one image file name");
    const char *path = argv[optind];
    struct err e = {0};
    struct blk *top, *base;
    struct blk_info info;
    if (!(fmt = probe_name(path, fmt, &e)) || blk_open(&top, path, fmt, 0, NULL, &e) < 0)
        return img_fail_err(1, &e);
    if (blk_get_info(top, &info, &e) < 0 || !top->backing) {
        blk_close(top);
        return img_fail(1, "Image does not have a backing file");
    }
    char bp[BLK_PATH_MAX];
    blk_backing_path(path, info.backing_file, bp, sizeof bp);
    if (blk_open(&base, bp, top->backing->drv->name, BLK_O_RDWR | BLK_O_NO_BACKING, NULL,
                 &e) < 0) {
        blk_close(top);
        return img_fail_err(1, &e);
    }
    const char *base_fmt = base->drv->name;     /* static: survives close */
    int r = 0;
    if (top->size > base->size)
        r = blk_truncate(base, top->size, false, &e);
    uint8_t *buf = malloc(4u << 20);
    if (!buf)
        r = err_set(&e, ENOMEM, "out of memory");
    for (uint64_t off = 0; r == 0 && off < top->size; ) {
        struct blk_status st;
        uint64_t len = top->size - off < (4u << 20) ? top->size - off : (4u << 20);
        if ((r = blk_block_status(top, off, len, &st, &e)) < 0)
            break;
        if (st.kind == BLK_ST_DATA) {
            if ((r = blk_pread(top, buf, st.len, off, &e)) == 0)
                r = blk_pwrite(base, buf, st.len, off, &e);
        } else if (st.kind == BLK_ST_ZERO) {
            r = blk_write_zeroes(base, off, st.len, &e);
        }
        off += st.len;
    }
    free(buf);
    if (r == 0)
        r = blk_flush(base, &e);
    blk_close(base);
    blk_close(top);
    if (r == 0 && !keep && !strcmp(fmt, "qcow2") && !info.nb_snapshots) {
        /* Empty the top image: the same image again, with nothing allocated. */
        struct blk_create_opts o = {
            .size = info.virtual_size, .size_set = true, .cluster_size = (uint32_t)info.cluster_size,
            .compat = info.version, .refcount_bits = info.refcount_bits,
            .lazy_refcounts = info.lazy_refcounts, .compression = info.compression,
            .backing_file = info.backing_file, .backing_fmt = info.backing_fmt[0] ? info.backing_fmt : NULL,
            .unsafe_backing = true,
        };
        if (!o.backing_fmt)
            o.backing_fmt = base_fmt;
        r = blk_create("qcow2", path, &o, &e);
    }
    if (r < 0)
        return img_fail_err(1, &e);
    if (!quiet)
        printf("Image committed.\n");
    return 0;
}
