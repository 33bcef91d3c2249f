/* cvirt-img: create, inspect, check and convert disk images (qemu-img's
 * verbs, options and output shapes). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/img_cmds.h"

struct img_cmd {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *usage;
};

static const struct img_cmd cmds[] = {
    { "create", img_cmd_create, "create [-f fmt] [-o options] [-b backing] [-F backing_fmt] [-u] filename [size]" },
    { "info", img_cmd_info, "info [-f fmt] [--output=human|json] [--backing-chain] filename" },
    { "check", img_cmd_check, "check [-f fmt] [--output=human|json] [-r leaks|all] [-q] filename" },
    { "convert", img_cmd_convert, "convert [-f fmt] [-O fmt] [-c] [-p] [-S size] [-B backing] [-n] [-o options] src dst" },
    { "resize", img_cmd_resize, "resize [-f fmt] [--shrink] [-q] filename [+|-]size" },
    { "map", img_cmd_map, "map [-f fmt] [--output=human|json] filename" },
    { "compare", img_cmd_compare, "compare [-f fmt] [-F fmt] [-s] [-q] file1 file2" },
    { "snapshot", img_cmd_snapshot, "snapshot [-l | -c name | -a name | -d name] filename" },
    { "commit", img_cmd_commit, "commit [-f fmt] [-q] filename" },
    { "rebase", img_cmd_rebase, "rebase [-f fmt] [-u] -b backing [-F backing_fmt] filename" },
    { "amend", img_cmd_amend, "amend [-f fmt] -o options filename" },
    { "measure", img_cmd_measure, "measure [-O fmt] [-o options] [--size N | [-f fmt] filename]" },
    { "bench", img_cmd_bench, "bench [-c count] [-d depth] [-f fmt] [-s size] [-S step] [-t cache] [-w] [--flush-interval N] filename" },
};
#define NCMDS (sizeof cmds / sizeof cmds[0])

int img_fail(int status, const char *fmt, ...)
{
    va_list ap;
    fputs("cvirt-img: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return status;
}

int img_fail_err(int status, const struct err *e)
{
    return img_fail(status, "%s", e->msg[0] ? e->msg : "unknown error");
}

int img_open(struct blk **b, const char *path, const char *fmt, unsigned flags,
             struct err *e)
{
    return blk_open(b, path, fmt, flags, NULL, e);
}

void img_json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void usage(FILE *f)
{
    fprintf(f, "usage: cvirt-img COMMAND [options]\n\nCommands:\n");
    for (size_t i = 0; i < NCMDS; i++)
        fprintf(f, "  %s\n", cmds[i].usage);
    fprintf(f, "\nSizes take K, M, G, T, P, E suffixes (powers of 1024).\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        printf("cvirt-img version 0.1.0\n");
        return 0;
    }
    for (size_t i = 0; i < NCMDS; i++)
        if (!strcmp(argv[1], cmds[i].name))
            return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "cvirt-img: Command not found: %s\n", argv[1]);
    usage(stderr);
    return 1;
}
