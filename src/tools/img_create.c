/* cvirt-img create, and the -o option parser shared with convert/amend. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/img_cmds.h"

const char *img_prealloc_name(enum blk_prealloc p)
{
    static const char *const n[] = { "off", "metadata", "falloc", "full" };
    return n[p];
}

static int parse_bool(const char *k, const char *v, bool *out, struct err *e)
{
    if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes"))
        *out = true;
    else if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "no"))
        *out = false;
    else
        return err_set(e, EINVAL, "Parameter '%s' expects 'on' or 'off'", k);
    return 0;
}

static int set_opt(struct blk_create_opts *o, const char *k, const char *v, struct err *e)
{
    uint64_t n;
    if (!strcmp(k, "size")) {
        if (blk_parse_size(v, &o->size) < 0)
            return err_set(e, EINVAL, "Invalid size '%s'", v);
        o->size_set = true;
    } else if (!strcmp(k, "cluster_size")) {
        if (blk_parse_size(v, &n) < 0 || n > UINT32_MAX)
            return err_set(e, EINVAL, "Invalid cluster_size '%s'", v);
        o->cluster_size = (uint32_t)n;
    } else if (!strcmp(k, "backing_file")) {
        o->backing_file = v;
    } else if (!strcmp(k, "backing_fmt")) {
        o->backing_fmt = v;
    } else if (!strcmp(k, "compat")) {
        if (!strcmp(v, "0.10") || !strcmp(v, "v2"))
            o->compat = 2;
        else if (!strcmp(v, "1.1") || !strcmp(v, "v3"))
            o->compat = 3;
        else
            return err_set(e, EINVAL, "Invalid compat version '%s'", v);
    } else if (!strcmp(k, "lazy_refcounts")) {
        o->lazy_refcounts_set = true;
        return parse_bool(k, v, &o->lazy_refcounts, e);
    } else if (!strcmp(k, "preallocation")) {
        if (!strcmp(v, "off")) o->prealloc = BLK_PREALLOC_OFF;
        else if (!strcmp(v, "metadata")) o->prealloc = BLK_PREALLOC_METADATA;
        else if (!strcmp(v, "falloc")) o->prealloc = BLK_PREALLOC_FALLOC;
        else if (!strcmp(v, "full")) o->prealloc = BLK_PREALLOC_FULL;
        else return err_set(e, EINVAL, "Invalid preallocation mode '%s'", v);
    } else if (!strcmp(k, "compression_type")) {
        if (!strcmp(v, "zlib")) o->compression = BLK_COMPRESS_ZLIB;
        else if (!strcmp(v, "zstd")) o->compression = BLK_COMPRESS_ZSTD;
        else return err_set(e, EINVAL, "Invalid compression type '%s'", v);
    } else if (!strcmp(k, "refcount_bits")) {
        if (blk_parse_size(v, &n) < 0 || n > 64)
            return err_set(e, EINVAL, "Invalid refcount_bits '%s'", v);
        o->refcount_bits = (int)n;
    } else if (!strcmp(k, "extended_l2")) {
        bool on;
        int r = parse_bool(k, v, &on, e);
        if (r == 0 && on)
            return err_set(e, ENOTSUP, "extended_l2=on is not supported");
        return r;
    } else {
        return err_set(e, EINVAL, "Invalid parameter '%s'", k);
    }
    return 0;
}

/* Option strings (backing_file=...) point into copies of the -o text that
 * must live as long as the command; they are freed at exit. */
#define OPT_COPIES_MAX 16
static char *opt_copies[OPT_COPIES_MAX];
static unsigned opt_ncopies;

static void free_opt_copies(void)
{
    while (opt_ncopies > 0)
        free(opt_copies[--opt_ncopies]);
}

int img_parse_create_opts(const char *s, struct blk_create_opts *o, struct err *e)
{
    if (opt_ncopies == OPT_COPIES_MAX)
        return err_set(e, E2BIG, "too many -o options");
    char *copy = strdup(s), *save = NULL;
    if (!copy)
        return err_set(e, ENOMEM, "out of memory");
    if (opt_ncopies == 0)
        atexit(free_opt_copies);
    opt_copies[opt_ncopies++] = copy;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            return err_set(e, EINVAL, "Invalid option '%s' (expected key=value)", tok);
        *eq = '\0';
        int r = set_opt(o, tok, eq + 1, e);
        if (r < 0)
            return r;
    }
    return 0;
}

static void print_formatting(const char *path, const char *fmt,
                             const struct blk_create_opts *o)
{
    printf("Formatting '%s', fmt=%s", path, fmt);
    if (!strcmp(fmt, "qcow2")) {
        printf(" cluster_size=%u extended_l2=off", o->cluster_size ? o->cluster_size : 65536);
        if (o->prealloc != BLK_PREALLOC_OFF)
            printf(" preallocation=%s", img_prealloc_name(o->prealloc));
        printf(" compression_type=%s size=%llu",
               o->compression == BLK_COMPRESS_ZSTD ? "zstd" : "zlib",
               (unsigned long long)o->size);
        if (o->backing_file)
            printf(" backing_file=%s", o->backing_file);
        if (o->backing_fmt)
            printf(" backing_fmt=%s", o->backing_fmt);
        if (o->compat == 2)
            printf(" compat=0.10");
        printf(" lazy_refcounts=%s refcount_bits=%d", o->lazy_refcounts ? "on" : "off",
               o->refcount_bits ? o->refcount_bits : 16);
    } else {
        printf(" size=%llu", (unsigned long long)o->size);
        if (o->prealloc != BLK_PREALLOC_OFF)
            printf(" preallocation=%s", img_prealloc_name(o->prealloc));
    }
    printf("\n");
}

int img_cmd_create(int argc, char **argv)
{
    const char *fmt = "raw";
    struct blk_create_opts o = {0};
    struct err e = {0};
    bool quiet = false;
    int c;
    optind = 1;
    while ((c = getopt(argc, argv, "f:o:b:F:uq")) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'o':
            if (img_parse_create_opts(optarg, &o, &e) < 0)
                return img_fail_err(1, &e);
            break;
        case 'b': o.backing_file = optarg; break;
        case 'F': o.backing_fmt = optarg; break;
        case 'u': o.unsafe_backing = true; break;
        case 'q': quiet = true; break;
        default: return img_fail(1, "usage: create [-f fmt] [-o options] filename [size]");
        }
    }
    if (optind >= argc)
        return img_fail(1, "Expecting image file name");
    const char *path = argv[optind++];
    if (optind < argc) {
        if (blk_parse_size(argv[optind], &o.size) < 0)
            return img_fail(1, "Invalid image size specified. Must be between 0 and "
                            "9223372036854775807.");
        o.size_set = true;
        optind++;
    }
    if (optind < argc)
        return img_fail(1, "Unexpected argument: %s", argv[optind]);
    if (!blk_find_driver(fmt))
        return img_fail(1, "Unknown file format '%s'", fmt);
    if (o.backing_file && !o.size_set && !o.unsafe_backing) {
        struct blk *bk;
        char bpath[BLK_PATH_MAX];
        blk_backing_path(path, o.backing_file, bpath, sizeof bpath);
        if (blk_open(&bk, bpath, o.backing_fmt, 0, NULL, &e) < 0)
            return img_fail_err(1, &e);
        o.size = bk->size;
        blk_close(bk);
    } else if (!o.size_set && !o.backing_file) {
        return img_fail(1, "Image creation needs a size parameter");
    } else if (o.backing_file && !o.size_set) {
        return img_fail(1, "Image creation needs a size parameter");
    }
    if (!quiet)
        print_formatting(path, fmt, &o);
    if (blk_create(fmt, path, &o, &e) < 0)
        return img_fail(1, "%s: %s", path, e.msg);
    return 0;
}
