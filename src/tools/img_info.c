/* cvirt-img info: human and JSON output in qemu-img's shapes. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "tools/img_cmds.h"

static void ind(int n) { printf("%*s", n, ""); }

static uint64_t disk_usage(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

static void json_snapshots(const struct blk_snapshot_info *sn, int n, int in)
{
    ind(in); printf("\"snapshots\": [\n");
    for (int i = 0; i < n; i++) {
        ind(in + 4); printf("{\n");
        if (sn[i].icount != UINT64_MAX) {
            ind(in + 8); printf("\"icount\": %llu,\n", (unsigned long long)sn[i].icount);
        }
        ind(in + 8); printf("\"vm-clock-nsec\": %llu,\n",
                            (unsigned long long)(sn[i].vm_clock_nsec % 1000000000ull));
        ind(in + 8); printf("\"name\": "); img_json_str(sn[i].name); printf(",\n");
        ind(in + 8); printf("\"date-sec\": %u,\n", sn[i].date_sec);
        ind(in + 8); printf("\"date-nsec\": %u,\n", sn[i].date_nsec);
        ind(in + 8); printf("\"vm-clock-sec\": %llu,\n",
                            (unsigned long long)(sn[i].vm_clock_nsec / 1000000000ull));
        ind(in + 8); printf("\"id\": "); img_json_str(sn[i].id); printf(",\n");
        ind(in + 8); printf("\"vm-state-size\": %llu\n", (unsigned long long)sn[i].vm_state_size);
        ind(in + 4); printf("}%s\n", i + 1 < n ? "," : "");
    }
    ind(in); printf("],\n");
}

static void json_one(struct blk *b, const struct blk_info *i,
                     const struct blk_snapshot_info *sn, int nsn, int in)
{
    ind(in); printf("{\n");
    in += 4;
    if (nsn)
        json_snapshots(sn, nsn, in);
    if (i->backing_file[0] && i->backing_fmt[0]) {
        ind(in); printf("\"backing-filename-format\": "); img_json_str(i->backing_fmt);
        printf(",\n");
    }
    ind(in); printf("\"virtual-size\": %llu,\n", (unsigned long long)i->virtual_size);
    ind(in); printf("\"filename\": "); img_json_str(b->filename); printf(",\n");
    if (i->cluster_size) {
        ind(in); printf("\"cluster-size\": %llu,\n", (unsigned long long)i->cluster_size);
    }
    ind(in); printf("\"format\": "); img_json_str(i->format); printf(",\n");
    ind(in); printf("\"actual-size\": %llu,\n", (unsigned long long)disk_usage(b->filename));
    if (i->is_qcow2) {
        ind(in); printf("\"format-specific\": {\n");
        ind(in + 4); printf("\"type\": \"qcow2\",\n");
        ind(in + 4); printf("\"data\": {\n");
        int d = in + 8;
        ind(d); printf("\"compat\": \"%s\",\n", i->version >= 3 ? "1.1" : "0.10");
        ind(d); printf("\"compression-type\": \"%s\",\n",
                       i->compression == BLK_COMPRESS_ZSTD ? "zstd" : "zlib");
        if (i->version >= 3) {
            ind(d); printf("\"lazy-refcounts\": %s,\n", i->lazy_refcounts ? "true" : "false");
            ind(d); printf("\"refcount-bits\": %d,\n", i->refcount_bits);
            ind(d); printf("\"corrupt\": %s,\n", i->corrupt ? "true" : "false");
            ind(d); printf("\"extended-l2\": false\n");
        } else {
            ind(d); printf("\"refcount-bits\": %d\n", i->refcount_bits);
        }
        ind(in + 4); printf("}\n");
        ind(in); printf("},\n");
    }
    if (i->backing_file[0]) {
        char full[BLK_PATH_MAX];
        blk_backing_path(b->filename, i->backing_file, full, sizeof full);
        ind(in); printf("\"full-backing-filename\": "); img_json_str(full); printf(",\n");
        ind(in); printf("\"backing-filename\": "); img_json_str(i->backing_file); printf(",\n");
    }
    ind(in); printf("\"dirty-flag\": %s\n", i->dirty ? "true" : "false");
    ind(in - 4); printf("}");
}

static void human_one(struct blk *b, const struct blk_info *i,
                      const struct blk_snapshot_info *sn, int nsn)
{
    char v[32], d[32];
    blk_format_size(i->virtual_size, v, sizeof v);
    blk_format_size(disk_usage(b->filename), d, sizeof d);
    printf("image: %s\nfile format: %s\n", b->filename, i->format);
    printf("virtual size: %s (%llu bytes)\n", v, (unsigned long long)i->virtual_size);
    printf("disk size: %s\n", d);
    if (i->cluster_size)
        printf("cluster_size: %llu\n", (unsigned long long)i->cluster_size);
    if (i->backing_file[0]) {
        char full[BLK_PATH_MAX];
        blk_backing_path(b->filename, i->backing_file, full, sizeof full);
        if (strcmp(full, i->backing_file))
            printf("backing file: %s (actual path: %s)\n", i->backing_file, full);
        else
            printf("backing file: %s\n", i->backing_file);
        if (i->backing_fmt[0])
            printf("backing file format: %s\n", i->backing_fmt);
    }
    if (i->dirty)
        printf("cleanly shut down: no\n");
    if (nsn)
        img_print_snapshots(sn, nsn);
    if (i->is_qcow2) {
        printf("Format specific information:\n");
        printf("    compat: %s\n", i->version >= 3 ? "1.1" : "0.10");
        printf("    compression type: %s\n",
               i->compression == BLK_COMPRESS_ZSTD ? "zstd" : "zlib");
        if (i->version >= 3)
            printf("    lazy refcounts: %s\n", i->lazy_refcounts ? "true" : "false");
        printf("    refcount bits: %d\n", i->refcount_bits);
        if (i->version >= 3)
            printf("    corrupt: %s\n    extended l2: false\n", i->corrupt ? "true" : "false");
    }
}

int img_cmd_info(int argc, char **argv)
{
    static const struct option lo[] = {
        { "output", required_argument, NULL, 'O' },
        { "backing-chain", no_argument, NULL, 'B' },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL;
    bool json = false, chain = false;
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
        case 'B': chain = true; break;
        case 'U': break;
        default: return img_fail(1, "usage: info [-f fmt] [--output=human|json] filename");
        }
    }
    if (optind != argc - 1)
        return img_fail(1, "Expecting one image file name");
    struct err e = {0};
    struct blk *top;
    unsigned fl = chain ? 0 : BLK_O_NO_BACKING;
    if (img_open(&top, argv[optind], fmt, fl, &e) < 0)
        return img_fail_err(1, &e);
    if (json && chain)
        printf("[\n");
    for (struct blk *b = top; b; b = chain ? b->backing : NULL) {
        struct blk_info info;
        struct blk_snapshot_info *sn = NULL;
        int nsn = 0;
        if (blk_get_info(b, &info, &e) < 0 || blk_snapshot_list(b, &sn, &nsn, &e) < 0) {
            blk_close(top);
            return img_fail_err(1, &e);
        }
        if (json) {
            json_one(b, &info, sn, nsn, chain ? 4 : 0);
            printf("%s\n", chain && b->backing ? "," : "");
        } else {
            if (b != top)
                printf("\n");
            human_one(b, &info, sn, nsn);
        }
        free(sn);
    }
    if (json && chain)
        printf("]\n");
    blk_close(top);
    return 0;
}
