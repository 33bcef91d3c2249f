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

/* The value of a --net at argv[i], else NULL. */
static const char *net_value(int argc, char **argv, int i)
{
    if (!strncmp(argv[i], "--net=", 6))
        return argv[i] + 6;
    if (!strcmp(argv[i], "--net") && i + 1 < argc)
        return argv[i + 1];
    return NULL;
}

/* VAL without its comma-separated tokens that begin with DROP, the first
 * token kept when it is a path (skip_first). A malloc'd string or NULL. */
static char *drop_tokens(const char *val, const char *drop, bool skip_first)
{
    size_t len = strlen(val), dl = strlen(drop);
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    bool first = true;
    for (const char *p = val;; first = false) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if ((first && skip_first) || n < dl || strncmp(p, drop, dl)) {
            if (o)
                out[o++] = ',';
            memcpy(out + o, p, n);
            o += n;
        }
        if (!end)
            break;
        p = end + 1;
    }
    out[o] = '\0';
    return out;
}

/* An incoming migration's disk is inactive=on only until its state
 * loads: the option belongs to that one start, never to the machine. */
static char *disk_clean(const char *val)
{
    return drop_tokens(val, "inactive=", true);
}

static int push_owned(char ***v, int *n, char *a)
{
    if (!a)
        return -ENOMEM;
    char **nv = realloc(*v, ((size_t)*n + 2) * sizeof(char *));
    if (!nv) {
        free(a);
        return -ENOMEM;
    }
    *v = nv;
    nv[*n] = a;
    nv[++*n] = NULL;
    return 0;
}

int snap_machine_set_taps(int argc, char **argv, const char *const *taps, int ntaps,
                          struct err *e)
{
    int k = 0;
    for (int i = 0; i < argc && k < ntaps; i++) {
        const char *val = net_value(argc, argv, i);
        if (!val) {
            i += takes_value(argv[i]);
            continue;
        }
        bool pair = argv[i][5] == '\0';
        i += pair;
        if (strncmp(val, "tap=", 4) && !strstr(val, ",tap="))
            return err_set(e, EINVAL, "--net-tap %s: --net %d ('%s') has no tap= to replace",
                           taps[k], k + 1, val);
        char *rest = drop_tokens(val, "tap=", false);
        size_t n = rest ? strlen(rest) + strlen(taps[k]) + 12 : 0;
        char *nv = rest ? malloc(n) : NULL;
        if (!nv) {
            free(rest);
            return err_set(e, ENOMEM, "out of memory");
        }
        /* The tap first, as the options are written elsewhere. */
        snprintf(nv, n, "%stap=%s%s%s", pair ? "" : "--net=", taps[k], rest[0] ? "," : "",
                 rest);
        free(rest);
        free(argv[i]);
        argv[i] = nv;
        k++;
    }
    if (k < ntaps)
        return err_set(e, EINVAL, "--net-tap %s: %d --net-tap given, but the machine has only %d --net",
                       taps[k], ntaps, k);
    return 0;
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
        if (val && !pair) {
            size_t n2 = strlen(argv[i]) + 1;
            char *c = disk_clean(val), *o = c ? malloc(n2) : NULL;
            if (o)
                snprintf(o, n2, "--disk=%s", c);
            free(c);
            r = push_owned(&v, &n, o);
            continue;
        }
        r = push(&v, &n, argv[i]);
        if (r == 0 && pair && i + 1 < argc)
            r = push_owned(&v, &n, disk_clean(argv[++i]));
        else if (r == 0 && !val && takes_value(argv[i]) && i + 1 < argc)
            r = push(&v, &n, argv[++i]);
    }
    free(dk);
    if (r == 0)
        r = control_hotplug_disk_args(vm, &disks, &nd, e);
    else
        err_set(e, ENOMEM, "out of memory");
    for (unsigned i = 0; r == 0 && i < nd; i++)
        if ((r = push(&v, &n, "--disk")) < 0 || (r = push_owned(&v, &n, disk_clean(disks[i]))) < 0)
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
 * the other options in order, each --net as "--net" and its value without
 * tap= (net marks those values). */
struct split {
    char *slot[32];
    char **rest;
    bool *net;
    int nrest;
};

static void split_free(struct split *sp)
{
    for (unsigned s = 0; s < 32; s++)
        free(sp->slot[s]);
    for (int i = 0; sp->rest && i < sp->nrest; i++)
        free(sp->rest[i]);
    free(sp->rest);
    free(sp->net);
}

static int split_slot(struct split *sp, const struct control_hotplug_disk *dk)
{
    /* node= only when it differs from the id, as saved. */
    bool node = dk->node[0] && strcmp(dk->node, dk->id);
    char *blk = disk_clean(dk->blk);
    size_t n = blk ? strlen(blk) + strlen(dk->id) + strlen(dk->node) + 24 : 0;
    if (blk && (sp->slot[dk->slot] = malloc(n)))
        snprintf(sp->slot[dk->slot], n, "%s,slot=%u%s%s%s%s", blk, dk->slot,
                 dk->id[0] ? ",id=" : "", dk->id, node ? ",node=" : "", node ? dk->node : "");
    free(blk);
    return sp->slot[dk->slot] ? 0 : -ENOMEM;
}

static int split_machine(int argc, char **argv, struct split *sp, struct control_hotplug_disk *dk)
{
    /* "--opt=V" may become two entries. */
    sp->rest = calloc((size_t)argc * 2 + 1, sizeof(char *));
    sp->net = calloc((size_t)argc * 2 + 1, sizeof(bool));
    if (!sp->rest || !sp->net)
        return -ENOMEM;
    struct err ignore = { 0 };
    for (int i = 0; i < argc; i++) {
        const char *val = disk_value(argc, argv, i), *net = net_value(argc, argv, i);
        if (val && control_hotplug_disk_parse(val, dk, &ignore) == 0 && dk->slot &&
            dk->slot < 32 && !sp->slot[dk->slot]) {
            if (split_slot(sp, dk) < 0)
                return -ENOMEM;
            i += argv[i][6] == '\0';
            continue;
        }
        char *a = NULL, *b = NULL;
        if (net) {
            a = strdup("--net");
            b = drop_tokens(net, "tap=", false);
            i += argv[i][5] == '\0';
        } else if (val) {
            a = strdup("--disk");
            b = disk_clean(val);
            i += argv[i][6] == '\0';
        } else {
            a = strdup(argv[i]);
        }
        if (a)
            sp->rest[sp->nrest++] = a;
        if (!a || ((net || val) && !b)) {
            free(b);
            return -ENOMEM;
        }
        if (b) {
            sp->net[sp->nrest] = net != NULL;
            sp->rest[sp->nrest++] = b;
        }
    }
    return 0;
}

static int compare_slots(const struct split *src, const struct split *here, struct err *e)
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
    return 0;
}

static int compare_split(const struct split *src, const struct split *here, struct err *e)
{
    int r = compare_slots(src, here, e);
    if (r < 0)
        return r;
    int nets = 0;
    for (int i = 0; i < src->nrest && i < here->nrest; i++) {
        nets += src->net[i];
        if (!strcmp(src->rest[i], here->rest[i]))
            continue;
        /* The tap is the host's: only the NIC as the guest sees it counts. */
        if (src->net[i] && here->net[i])
            return err_set(e, EINVAL, "--net %d differs: the source has '%s', this machine "
                           "'%s' (only tap= may differ)", nets, src->rest[i], here->rest[i]);
        return err_set(e, EINVAL, "machine option %d differs: the source has '%s', this "
                       "machine '%s'", i + 1, src->rest[i], here->rest[i]);
    }
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
