/* cvirt-img map: allocation of each range through the backing chain. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "tools/img_cmds.h"

struct extent {
    uint64_t start, len, offset;
    int depth;
    bool present, zero, data, has_offset, compressed;
    const char *file;
};

/* Status at off, looked up down the chain until some layer has it. */
static int chain_status(struct blk *top, uint64_t off, uint64_t len, struct extent *x,
                        struct err *e)
{
    struct blk *cur = top;
    memset(x, 0, sizeof *x);
    x->start = off;
    for (int depth = 0; ; depth++) {
        struct blk_status st;
        int r = blk_block_status(cur, off, len, &st, e);
        if (r < 0)
            return r;
        len = st.len;
        x->depth = depth;
        x->file = cur->filename;
        if (st.kind != BLK_ST_UNALLOC || !cur->backing || off >= cur->backing->size) {
            x->present = st.kind != BLK_ST_UNALLOC;
            x->zero = st.kind != BLK_ST_DATA || st.reads_zero;
            x->data = st.kind == BLK_ST_DATA;
            x->has_offset = st.has_offset;
            x->offset = st.host_offset;
            x->compressed = st.compressed;
            x->len = len;
            return 0;
        }
        cur = cur->backing;
        if (len > cur->size - off)
            len = cur->size - off;
    }
}

static bool mergeable(const struct extent *a, const struct extent *b)
{
    return a->depth == b->depth && a->present == b->present && a->zero == b->zero &&
           a->data == b->data && a->has_offset == b->has_offset &&
           a->compressed == b->compressed && a->file == b->file &&
           (!a->has_offset || a->offset + a->len == b->offset);
}

static void emit(const struct extent *x, bool json, bool first)
{
    if (json) {
        printf("%s{ \"start\": %llu, \"length\": %llu, \"depth\": %d, \"present\": %s, "
               "\"zero\": %s, \"data\": %s", first ? "[" : ",\n",
               (unsigned long long)x->start, (unsigned long long)x->len, x->depth,
               x->present ? "true" : "false", x->zero ? "true" : "false",
               x->data ? "true" : "false");
        if (x->has_offset)
            printf(", \"offset\": %llu", (unsigned long long)x->offset);
        printf("}");
    } else if (x->data && x->has_offset) {
        char a[24], b[24], c[24];
        snprintf(a, sizeof a, "%#llx", (unsigned long long)x->start);
        snprintf(b, sizeof b, "%#llx", (unsigned long long)x->len);
        snprintf(c, sizeof c, "%#llx", (unsigned long long)x->offset);
        printf("%-16s%-16s%-16s%s\n", a, b, c, x->file);
    }
}

int img_cmd_map(int argc, char **argv)
{
    static const struct option lo[] = {
        { "output", required_argument, NULL, 'O' },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL;
    bool json = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:U", lo, NULL)) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'O':
            if (!strcmp(optarg, "json")) json = true;
            else if (!strcmp(optarg, "human")) json = false;
            else return img_fail(1, "--output must be used with human or json as argument.");
            break;
        case 'U': break;
        default: return img_fail(1, "usage: map [-f fmt] [--output=human|json] filename");
        }
    }
    if (optind != argc - 1)
        return img_fail(1, "Expecting one image file name");
    struct err e = {0};
    struct blk *b;
    if (img_open(&b, argv[optind], fmt, 0, &e) < 0)
        return img_fail_err(1, &e);
    if (!json)
        printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
    struct extent cur = {0}, nx;
    bool have = false, first = true;
    int ret = 0;
    for (uint64_t off = 0; off < b->size; off += nx.len) {
        if (chain_status(b, off, b->size - off, &nx, &e) < 0) {
            ret = img_fail_err(1, &e);
            break;
        }
        if (!json && nx.compressed) {
            ret = img_fail(1, "File contains external, encrypted or compressed clusters.");
            break;
        }
        if (have && mergeable(&cur, &nx)) {
            cur.len += nx.len;
            continue;
        }
        if (have) {
            emit(&cur, json, first);
            first = false;
        }
        cur = nx;
        have = true;
    }
    if (ret == 0 && have)
        emit(&cur, json, first);
    if (json && ret == 0)
        printf("%s]\n", have ? "" : "[");
    blk_close(b);
    return ret;
}
