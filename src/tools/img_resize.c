/* cvirt-img resize and compare. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/img_cmds.h"

/* The tool acts on the user's request, so a probed format may be written
 * here; the guest-facing open path never does this. */
static int open_rw_probed(struct blk **b, const char *path, const char *fmt,
                          struct err *e)
{
    if (!fmt) {
        const struct blk_driver *d = blk_probe_file(path, e);
        if (!d)
            return -EINVAL;
        fmt = d->name;
    }
    return blk_open(b, path, fmt, BLK_O_RDWR | BLK_O_NO_BACKING, NULL, e);
}

int img_cmd_resize(int argc, char **argv)
{
    static const struct option lo[] = {
        { "shrink", no_argument, NULL, 's' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL;
    bool shrink = false, quiet = false;
    int c;
    optind = 1;
    /* A leading '-' in the size ("-1G") must not parse as an option. */
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-' && argv[i][1] >= '0' && argv[i][1] <= '9')
            argv[i][0] = '\x01';
    while ((c = getopt_long(argc, argv, "f:q", lo, NULL)) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'q': quiet = true; break;
        case 's': shrink = true; break;
        default: return img_fail(1, "usage: resize [-f fmt] [--shrink] filename [+|-]size");
        }
    }
    if (argc - optind != 2)
        return img_fail(1, "Expecting image file name and size");
    const char *path = argv[optind], *sz = argv[optind + 1];
    int sign = 0;
    if (*sz == '+') { sign = 1; sz++; }
    else if (*sz == '\x01') { sign = -1; sz++; }
    uint64_t n;
    if (blk_parse_size(sz, &n) < 0)
        return img_fail(1, "Invalid image size specified.");
    struct err e = {0};
    struct blk *b;
    if (open_rw_probed(&b, path, fmt, &e) < 0)
        return img_fail_err(1, &e);
    uint64_t size = sign > 0 ? b->size + n : sign < 0 ? b->size - n : n;
    if (sign < 0 && n > b->size) {
        blk_close(b);
        return img_fail(1, "New image size must be positive");
    }
    int r = blk_truncate(b, size, shrink, &e);
    if (r == 0)
        r = blk_flush(b, &e);
    blk_close(b);
    if (r < 0)
        return img_fail_err(1, &e);
    if (!quiet)
        printf("Image resized.\n");
    return 0;
}

/* Returns the first byte offset where a and b differ, or len. */
static uint64_t first_diff(const uint8_t *a, const uint8_t *b, uint64_t len)
{
    uint64_t i = 0;
    while (i + 4096 <= len && !memcmp(a + i, b + i, 4096))
        i += 4096;
    while (i < len && a[i] == b[i])
        i++;
    return i;
}

static int zero_tail(struct blk *b, uint64_t from, uint8_t *buf, uint64_t *where,
                     struct err *e)
{
    for (uint64_t off = from; off < b->size; ) {
        uint64_t n = b->size - off < (1u << 20) ? b->size - off : (1u << 20);
        if (blk_pread(b, buf, n, off, e) < 0)
            return -1;
        for (uint64_t i = 0; i < n; i++)
            if (buf[i]) {
                *where = (off + i) & ~511ull;
                return 1;
            }
        off += n;
    }
    return 0;
}

int img_cmd_compare(int argc, char **argv)
{
    const char *f1 = NULL, *f2 = NULL;
    bool quiet = false, strict = false;
    int c;
    optind = 1;
    while ((c = getopt(argc, argv, "f:F:sqpU")) != -1) {
        switch (c) {
        case 'f': f1 = optarg; break;
        case 'F': f2 = optarg; break;
        case 's': strict = true; break;
        case 'q': quiet = true; break;
        case 'p': case 'U': break;
        default: return img_fail(2, "usage: compare [-f fmt] [-F fmt] file1 file2");
        }
    }
    if (argc - optind != 2)
        return img_fail(2, "Expecting two image file names");
    struct err e = {0};
    struct blk *a = NULL, *b = NULL;
    if (blk_open(&a, argv[optind], f1, 0, NULL, &e) < 0 ||
        blk_open(&b, argv[optind + 1], f2 ? f2 : f1, 0, NULL, &e) < 0) {
        blk_close(a);
        return img_fail_err(2, &e);
    }
    uint8_t *ba = malloc(1u << 20), *bb = malloc(1u << 20);
    int ret = 0;
    uint64_t common = a->size < b->size ? a->size : b->size;
    for (uint64_t off = 0; ba && bb && off < common && ret == 0; ) {
        uint64_t n = common - off < (1u << 20) ? common - off : (1u << 20);
        if (blk_pread(a, ba, n, off, &e) < 0 || blk_pread(b, bb, n, off, &e) < 0) {
            ret = img_fail_err(2, &e);
            break;
        }
        uint64_t d = first_diff(ba, bb, n);
        if (d < n) {
            if (!quiet)
                printf("Content mismatch at offset %llu!\n",
                       (unsigned long long)((off + d) & ~511ull));
            ret = 1;
        }
        off += n;
    }
    if (!ba || !bb)
        ret = img_fail(2, "out of memory");
    if (ret == 0 && a->size != b->size) {
        if (strict) {
            if (!quiet)
                printf("Strict mode: Image size mismatch!\n");
            ret = 1;
        } else {
            if (!quiet)
                printf("Warning: Image size mismatch!\n");
            uint64_t where;
            int z = zero_tail(a->size > b->size ? a : b, common, ba, &where, &e);
            if (z < 0)
                ret = img_fail_err(2, &e);
            else if (z > 0) {
                if (!quiet)
                    printf("Content mismatch at offset %llu!\n", (unsigned long long)where);
                ret = 1;
            }
        }
    }
    if (ret == 0 && !quiet)
        printf("Images are identical.\n");
    free(ba);
    free(bb);
    blk_close(a);
    blk_close(b);
    return ret;
}
