/* cvirt-img check: exit status 0 clean, 1 check failed, 2 corruptions,
 * 3 leaks only, 63 format without checks (as qemu-img). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "tools/img_cmds.h"

static void human(const struct blk_check_result *r)
{
    if (!r->corruptions && !r->leaks && !r->check_errors) {
        printf("No errors were found on the image.\n");
    } else {
        if (r->corruptions)
            printf("\n%llu errors were found on the image.\nData may be corrupted, or "
                   "further writes to the image may corrupt it.\n",
                   (unsigned long long)r->corruptions);
        if (r->leaks)
            printf("\n%llu leaked clusters were found on the image.\nThis means waste of "
                   "disk space, but no harm to data.\n", (unsigned long long)r->leaks);
        if (r->check_errors)
            printf("\n%llu internal errors have occurred during the check.\n",
                   (unsigned long long)r->check_errors);
    }
    if (r->total_clusters && r->allocated_clusters)
        printf("%llu/%llu = %0.2f%% allocated, %0.2f%% fragmented, %0.2f%% compressed "
               "clusters\n", (unsigned long long)r->allocated_clusters,
               (unsigned long long)r->total_clusters,
               100.0 * (double)r->allocated_clusters / (double)r->total_clusters,
               100.0 * (double)r->fragmented_clusters / (double)r->allocated_clusters,
               100.0 * (double)r->compressed_clusters / (double)r->allocated_clusters);
    if (r->image_end_offset)
        printf("Image end offset: %llu\n", (unsigned long long)r->image_end_offset);
}

static void json(const struct blk_check_result *r, const char *file, const char *fmt)
{
    printf("{\n");
    if (r->image_end_offset)
        printf("    \"image-end-offset\": %llu,\n", (unsigned long long)r->image_end_offset);
    printf("    \"total-clusters\": %llu,\n", (unsigned long long)r->total_clusters);
    if (r->corruptions)
        printf("    \"corruptions\": %llu,\n", (unsigned long long)r->corruptions);
    printf("    \"check-errors\": %llu,\n", (unsigned long long)r->check_errors);
    if (r->leaks)
        printf("    \"leaks\": %llu,\n", (unsigned long long)r->leaks);
    if (r->leaks_fixed)
        printf("    \"leaks-fixed\": %llu,\n", (unsigned long long)r->leaks_fixed);
    if (r->corruptions_fixed)
        printf("    \"corruptions-fixed\": %llu,\n", (unsigned long long)r->corruptions_fixed);
    printf("    \"allocated-clusters\": %llu,\n", (unsigned long long)r->allocated_clusters);
    if (r->fragmented_clusters)
        printf("    \"fragmented-clusters\": %llu,\n", (unsigned long long)r->fragmented_clusters);
    if (r->compressed_clusters)
        printf("    \"compressed-clusters\": %llu,\n", (unsigned long long)r->compressed_clusters);
    printf("    \"filename\": ");
    img_json_str(file);
    printf(",\n    \"format\": ");
    img_json_str(fmt);
    printf("\n}\n");
}

static void print_finding(void *opaque, const char *line)
{
    fprintf(stderr, "%s\n", line);
}

int img_cmd_check(int argc, char **argv)
{
    static const struct option lo[] = {
        { "output", required_argument, NULL, 'O' },
        { "repair", required_argument, NULL, 'r' },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL;
    bool js = false, quiet = false;
    int fix = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:r:qU", lo, NULL)) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'O':
            if (!strcmp(optarg, "json")) js = true;
            else if (!strcmp(optarg, "human")) js = false;
            else return img_fail(1, "--output must be used with human or json as argument.");
            break;
        case 'r':
            if (!strcmp(optarg, "leaks"))
                fix = BLK_CHECK_FIX_LEAKS;
            else if (!strcmp(optarg, "all"))
                fix = BLK_CHECK_FIX_LEAKS | BLK_CHECK_FIX_ERRORS;
            else
                return img_fail(1, "Unknown option value for -r (expecting 'leaks' or 'all'): %s",
                                optarg);
            break;
        case 'q': quiet = true; break;
        case 'U': break;
        default: return img_fail(1, "usage: check [-f fmt] [-r leaks|all] filename");
        }
    }
    if (optind != argc - 1)
        return img_fail(1, "Expecting one image file name");
    const char *path = argv[optind];
    struct err e = {0};
    struct blk *b;
    unsigned fl = BLK_O_CHECK | BLK_O_NO_BACKING | (fix ? BLK_O_RDWR : 0);
    if (img_open(&b, path, fmt, fl, &e) < 0)
        return img_fail_err(1, &e);
    struct blk_check_result r = { .report = print_finding };
    if (blk_check(b, fix, &r, &e) < 0) {
        blk_close(b);
        if (e.code == ENOTSUP)
            return img_fail(63, "This image format does not support checks");
        return img_fail(1, "Check failed: %s", e.msg);
    }
    if ((r.leaks_fixed || r.corruptions_fixed) && !js && !quiet)
        printf("The following inconsistencies were found and repaired:\n\n"
               "    %llu leaked clusters\n    %llu corruptions\n\n"
               "Double checking the fixed image now...\n",
               (unsigned long long)r.leaks_fixed, (unsigned long long)r.corruptions_fixed);
    if (r.leaks_fixed || r.corruptions_fixed) {
        struct blk_check_result r2 = { .report = print_finding };
        if (blk_check(b, 0, &r2, &e) < 0) {
            blk_close(b);
            return img_fail(1, "Check failed: %s", e.msg);
        }
        r2.leaks_fixed = r.leaks_fixed;
        r2.corruptions_fixed = r.corruptions_fixed;
        r = r2;
    }
    const char *fname = b->drv->name;
    blk_close(b);
    if (!quiet) {
        if (js)
            json(&r, path, fname);
        else
            human(&r);
    }
    if (r.check_errors)
        return 1;
    if (r.corruptions)
        return 2;
    if (r.leaks)
        return 3;
    return 0;
}
