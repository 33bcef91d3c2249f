/* Domain snapshots (libvirt's internal snapshots): the metadata the daemon
 * keeps per snapshot (domain_snapshot_meta.c) and the procedures that take,
 * revert and delete them (domain_snapshot.c). */
#ifndef CVIRT_DAEMON_DOMAIN_SNAPSHOT_H
#define CVIRT_DAEMON_DOMAIN_SNAPSHOT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

struct store;

#define SNAP_NAME_MAX 200
#define SNAP_DISKS_MAX 256

/* One <domainsnapshot>. state is libvirt's word for the domain's state when
 * it was taken: "shutoff", "running" or "paused". */
struct snap {
    char *name;
    char *parent;       /* NULL for a root */
    char *desc;         /* NULL when absent */
    char state[16];
    long long ctime;    /* seconds since the epoch */
    bool memory;        /* <memory snapshot='internal'/>: a state file exists */
    bool memory_no;     /* input only: <memory snapshot='no'/> was asked */
    char **disks;       /* target names */
    size_t ndisks;
    char *domxml;       /* the <domain> it was taken of */
};

void snap_free(struct snap *s);
/* Names become file names: non-empty, no '/', no leading '.', no control
 * characters, at most SNAP_NAME_MAX bytes. */
int snap_name_check(const char *name, struct err *e);
/* input: a client's document (name may be missing, <domain> ignored);
 * else a stored one (name and state required). */
int snap_parse(const char *xml, size_t len, bool input, struct snap **out, struct err *e);
char *snap_format(const struct snap *s);

/* CONFIG/qemu/snapshot/DOMAIN */
int snap_dir(const struct store *st, const char *dom, char *buf, size_t len);
/* STATE/qemu/snapshot/DOMAIN/NAME.state, or the folder when name is NULL. */
int snap_state_path(const struct store *st, const char *dom, const char *name, char *buf,
                    size_t len);
int snap_mkdir(const char *path, struct err *e);

/* -ENOENT (e set) when there is no such snapshot. */
int snap_load(const struct store *st, const char *dom, const char *name, struct snap **out,
              struct err *e);
int snap_save(const struct store *st, const char *dom, const struct snap *s, struct err *e);
int snap_remove(const struct store *st, const char *dom, const char *name, struct err *e);
/* Sorted names of a domain's snapshots. */
int snap_names(const struct store *st, const char *dom, char ***out, size_t *n);
void snap_names_free(char **v, size_t n);
char *snap_current(const struct store *st, const char *dom);
/* name NULL: no current snapshot. */
int snap_set_current(const struct store *st, const char *dom, const char *name,
                     struct err *e);
/* Drops every snapshot's metadata and state file (undefine
 * --snapshots-metadata); the images keep their internal snapshots. */
int snap_remove_all(const struct store *st, const char *dom, struct err *e);

#endif
