/* The machine a snapshot or a migration describes: the command line the
 * process was started with, its ejectable disks as they are now. A disk
 * added at run time (device_add) becomes the --disk that rebuilds it in
 * the same slot, as libvirt restarts QEMU with -device ...,addr= for a
 * live-attached disk; one ejected since the start is left out. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_hotplug.h"
#include "snapshot/snapshot_int.h"

/* The machine options that take their value in the next argument when
 * not written --name=VALUE (main.c's table): the scan must not take a
 * value for an option. */
static const char *const value_opts[] = {
    "--kernel", "--initrd", "--append", "--memory", "--cpus", "--vconsole", "--disk",
    "--net", NULL,
};

static bool takes_value(const char *a)
{
    for (unsigned i = 0; value_opts[i]; i++)
        if (!strcmp(a, value_opts[i]))
            return true;
    return false;
}

/* The value of a --disk at argv[i] ("--disk V" or "--disk=V"), else NULL. */
static const char *disk_value(int argc, char **argv, int i)
{
    if (!strncmp(argv[i], "--disk=", 7))
        return argv[i] + 7;
    if (!strcmp(argv[i], "--disk") && i + 1 < argc)
        return argv[i + 1];
    return NULL;
}

static int push(char ***v, int *n, const char *a)
{
    char **nv = realloc(*v, ((size_t)*n + 2) * sizeof(char *));
    if (!nv)
        return -ENOMEM;
    *v = nv;
    if (!(nv[*n] = strdup(a)))
        return -ENOMEM;
    nv[++*n] = NULL;
    return 0;
}

void snap_args_free(char **argv, int argc)
{
    for (int i = 0; argv && i < argc; i++)
        free(argv[i]);
    free(argv);
}

int snap_machine_args(struct vm *vm, int argc, char **argv, char ***out, int *outc,
                      struct err *e)
{
    char **v = NULL, **disks = NULL;
    int n = 0, r = 0;
    unsigned nd = 0;
    struct control_hotplug_disk *dk = malloc(sizeof(*dk));
    if (!dk)
        return err_set(e, ENOMEM, "out of memory");
    struct err ignore = { 0 };
    for (int i = 0; i < argc && r == 0; i++) {
        const char *val = disk_value(argc, argv, i);
        bool pair = val && argv[i][6] == '\0';
        /* Ejectable disks come from the hotplug table, as they are now. */
        if (val && control_hotplug_disk_parse(val, dk, &ignore) == 0 && dk->id[0]) {
            i += pair;
            continue;
        }
        r = push(&v, &n, argv[i]);
        if (r == 0 && (pair || (!val && takes_value(argv[i]))) && i + 1 < argc)
            r = push(&v, &n, argv[++i]);
    }
    free(dk);
    if (r == 0)
        r = control_hotplug_disk_args(vm, &disks, &nd, e);
    else
        err_set(e, ENOMEM, "out of memory");
    for (unsigned i = 0; r == 0 && i < nd; i++)
        if ((r = push(&v, &n, "--disk")) < 0 || (r = push(&v, &n, disks[i])) < 0)
            err_set(e, ENOMEM, "out of memory");
    snap_args_free(disks, (int)nd);
    if (r == 0 && !v && !(v = calloc(1, sizeof(char *))))
        r = err_set(e, ENOMEM, "out of memory");
    if (r < 0) {
        snap_args_free(v, n);
        return r;
    }
    *out = v;
    *outc = n;
    return 0;
}

/* The --disk values with a slot, by slot, each written the one way, and
 * the other options in order. */
struct split {
    char *slot[32];
    const char **rest;
    int nrest;
};

static void split_free(struct split *sp)
{
    for (unsigned s = 0; s < 32; s++)
        free(sp->slot[s]);
    free(sp->rest);
}

static int split_machine(int argc, char **argv, struct split *sp, struct control_hotplug_disk *dk)
{
    sp->rest = calloc((size_t)argc + 1, sizeof(char *));
    if (!sp->rest)
        return -ENOMEM;
    struct err ignore = { 0 };
    for (int i = 0; i < argc; i++) {
        const char *val = disk_value(argc, argv, i);
        if (val && control_hotplug_disk_parse(val, dk, &ignore) == 0 && dk->slot &&
            dk->slot < 32 && !sp->slot[dk->slot]) {
            /* node= only when it differs from the id, as saved. */
            bool node = dk->node[0] && strcmp(dk->node, dk->id);
            size_t n = strlen(dk->blk) + strlen(dk->id) + strlen(dk->node) + 24;
            if (!(sp->slot[dk->slot] = malloc(n)))
                return -ENOMEM;
            snprintf(sp->slot[dk->slot], n, "%s,slot=%u%s%s%s%s", dk->blk, dk->slot,
                     dk->id[0] ? ",id=" : "", dk->id, node ? ",node=" : "",
                     node ? dk->node : "");
            i += argv[i][6] == '\0';
            continue;
        }
        sp->rest[sp->nrest++] = argv[i];
    }
    return 0;
}

static int compare_split(const struct split *src, const struct split *here, struct err *e)
{
    for (unsigned s = 1; s < 32; s++) {
        const char *a = src->slot[s], *b = here->slot[s];
        if (!a && !b)
            continue;
        if (!b)
            return err_set(e, EINVAL, "PCI slot %u: the source has --disk %s, this machine "
                           "nothing there (start it with that --disk)", s, a);
        if (!a)
            return err_set(e, EINVAL, "PCI slot %u: this machine has --disk %s, the source "
                           "nothing there", s, b);
        if (strcmp(a, b))
            return err_set(e, EINVAL, "PCI slot %u: the source has --disk %s, this machine "
                           "--disk %s", s, a, b);
    }
    for (int i = 0; i < src->nrest && i < here->nrest; i++)
        if (strcmp(src->rest[i], here->rest[i]))
            return err_set(e, EINVAL, "machine option %d differs: the source has '%s', this "
                           "machine '%s'", i + 1, src->rest[i], here->rest[i]);
    if (src->nrest != here->nrest)
        return err_set(e, EINVAL, "the source has %d machine options, this machine %d "
                       "(first extra: '%s')", src->nrest, here->nrest,
                       src->nrest > here->nrest ? src->rest[here->nrest]
                                                : here->rest[src->nrest]);
    return 0;
}

int snap_machine_compare(int srcc, char **src, int herec, char **here, struct err *e)
{
    struct control_hotplug_disk *dk = malloc(sizeof(*dk));
    struct split a, b;
    int r = dk ? 0 : -ENOMEM;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    if (r == 0 && (r = split_machine(srcc, src, &a, dk)) == 0)
        r = split_machine(herec, here, &b, dk);
    if (r < 0)
        err_set(e, ENOMEM, "out of memory");
    else
        r = compare_split(&a, &b, e);
    split_free(&a);
    split_free(&b);
    free(dk);
    return r;
}
