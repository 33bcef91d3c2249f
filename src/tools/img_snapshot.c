/* cvirt-img snapshot: list, create, apply and delete internal snapshots. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/img_cmds.h"

void img_print_snapshots(const struct blk_snapshot_info *sn, int n)
{
    printf("Snapshot list:\n");
    printf("%-9s %-17s %7s%20s%13s%11s\n", "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK",
           "ICOUNT");
    for (int i = 0; i < n; i++) {
        char vs[32], date[32];
        blk_format_size(sn[i].vm_state_size, vs, sizeof vs);
        time_t t = sn[i].date_sec;
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm);
        uint64_t ms = sn[i].vm_clock_nsec / 1000000;
        char clock[48], ic[24];
        snprintf(clock, sizeof clock, "%02llu:%02llu:%02llu.%03llu",
                 (unsigned long long)(ms / 3600000), (unsigned long long)(ms / 60000 % 60),
                 (unsigned long long)(ms / 1000 % 60), (unsigned long long)(ms % 1000));
        if (sn[i].icount != UINT64_MAX)
            snprintf(ic, sizeof ic, "%llu", (unsigned long long)sn[i].icount);
        else
            snprintf(ic, sizeof ic, "--");
        printf("%-9s %-17s %7s%20s%13s%11s\n", sn[i].id, sn[i].name, vs, date, clock, ic);
    }
}

int img_cmd_snapshot(int argc, char **argv)
{
    const char *fmt = NULL, *name = NULL;
    char op = 0;
    int c;
    optind = 1;
    while ((c = getopt(argc, argv, "f:lc:a:d:qU")) != -1) {
        switch (c) {
        case 'f': fmt = optarg; break;
        case 'l': case 'c': case 'a': case 'd':
            if (op)
                return img_fail(1, "Cannot mix '-l', '-a', '-c', '-d'");
            op = (char)c;
            name = optarg;
            break;
        case 'q': case 'U': break;
        default: return img_fail(1, "usage: snapshot [-l | -c name | -a name | -d name] filename");
        }
    }
    if (optind != argc - 1)
        return img_fail(1, "Expecting one image file name");
    if (!op)
        op = 'l';
    struct err e = {0};
    struct blk *b;
    const char *path = argv[optind];
    if (!fmt) {
        const struct blk_driver *d = blk_probe_file(path, &e);
        if (!d)
            return img_fail_err(1, &e);
        fmt = d->name;
    }
    unsigned fl = BLK_O_NO_BACKING | (op == 'l' ? 0 : BLK_O_RDWR);
    if (blk_open(&b, path, fmt, fl, NULL, &e) < 0)
        return img_fail_err(1, &e);
    int r = 0;
    if (op == 'l') {
        struct blk_snapshot_info *sn;
        int n;
        if ((r = blk_snapshot_list(b, &sn, &n, &e)) == 0 && n)
            img_print_snapshots(sn, n);
        if (r == 0)
            free(sn);
    } else if (op == 'c') {
        r = blk_snapshot_create(b, name, &e);
    } else if (op == 'a') {
        r = blk_snapshot_apply(b, name, &e);
    } else {
        r = blk_snapshot_delete(b, name, &e);
    }
    blk_close(b);
    if (r < 0)
        return img_fail(1, "%s", e.msg);
    return 0;
}
