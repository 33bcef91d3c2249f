/* Domain snapshots through the remote protocol: the queries and the tree
 * of snapshots, from the metadata the daemon keeps (domain_snapshot_meta.c).
 * Create, revert and delete, which change the images, are in
 * domain_snapshot_ops.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/domain.h"
#include "daemon/domain_rpc.h"
#include "daemon/domain_run.h"
#include "daemon/domain_snapshot_priv.h"
#include "daemon/rpc/server.h"
#include "util/log.h"

/* virDomainSnapshotListFlags */
#define LIST_ROOTS       (1u << 0)
#define LIST_METADATA    (1u << 1)
#define LIST_LEAVES      (1u << 2)
#define LIST_NO_LEAVES   (1u << 3)
#define LIST_NO_METADATA (1u << 4)
#define LIST_INACTIVE    (1u << 5)
#define LIST_ACTIVE      (1u << 6)
#define LIST_DISK_ONLY   (1u << 7)
#define LIST_INTERNAL    (1u << 8)
#define LIST_EXTERNAL    (1u << 9)

const struct store *domain_snapshot_store(struct rpc_client *c)
{
    return &domain_rpc_driver(c)->store;
}

/* ---- replies ---- */

int domain_snapshot_fill(remote_nonnull_domain_snapshot *out, const struct domain *d,
                     const char *name, struct rpc_error *err)
{
    out->name = strdup(name);
    out->dom.name = strdup(d->name);
    memcpy(out->dom.uuid, d->uuid, 16);
    out->dom.id = d->id;
    if (!out->name || !out->dom.name)
        return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_QEMU, "out of memory");
    return 0;
}

int domain_snapshot_none(struct rpc_error *err, const char *name)
{
    return rpc_err_set(err, VIR_ERR_NO_DOMAIN_SNAPSHOT, VIR_FROM_DOMAIN_SNAPSHOT,
                       "no domain snapshot with matching name '%s'", name);
}

/* The snapshot a call names, with its domain. */
struct snap *domain_snapshot_get(struct rpc_client *c, const remote_nonnull_domain_snapshot *rs,
                             struct domain **dp, struct rpc_error *err)
{
    struct domain *d = domain_rpc_get(c, &rs->dom, err);
    if (!d)
        return NULL;
    struct snap *s;
    struct err e = { 0 };
    int r = snap_load(domain_snapshot_store(c), d->name, rs->name, &s, &e);
    if (r == -ENOENT) {
        domain_snapshot_none(err, rs->name);
        return NULL;
    }
    if (r < 0) {
        domain_rpc_fail(err, &e);
        return NULL;
    }
    *dp = d;
    return s;
}

/* ---- queries ---- */

int domain_rpc_snapshot_get_xml(struct rpc_client *c, const void *args, void *ret,
                                struct rpc_error *err)
{
    const remote_domain_snapshot_get_xml_desc_args *a = args;
    struct domain *d;
    struct snap *s = domain_snapshot_get(c, &a->snap, &d, err);
    if (!s)
        return -1;
    char *xml = snap_format(s);
    snap_free(s);
    if (!xml)
        return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_QEMU, "out of memory");
    ((remote_domain_snapshot_get_xml_desc_ret *)ret)->xml = xml;
    return 0;
}

static bool has_children(struct snap **v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] && v[i]->parent && strcmp(v[i]->parent, name) == 0)
            return true;
    return false;
}

static bool list_match(struct snap **v, size_t n, const struct snap *s, unsigned flags)
{
    if ((flags & LIST_ROOTS) && s->parent)
        return false;
    if ((flags & (LIST_METADATA | LIST_NO_METADATA)) == LIST_NO_METADATA)
        return false;
    if ((flags & (LIST_EXTERNAL | LIST_INTERNAL)) == LIST_EXTERNAL)
        return false;
    bool leaf = !has_children(v, n, s->name);
    if ((flags & (LIST_LEAVES | LIST_NO_LEAVES)) == LIST_LEAVES && !leaf)
        return false;
    if ((flags & (LIST_LEAVES | LIST_NO_LEAVES)) == LIST_NO_LEAVES && leaf)
        return false;
    unsigned states = flags & (LIST_INACTIVE | LIST_ACTIVE | LIST_DISK_ONLY);
    if (states) {
        bool off = strcmp(s->state, "shutoff") == 0;
        if (!((off && (states & LIST_INACTIVE)) || (!off && (states & LIST_ACTIVE))))
            return false;
    }
    return true;
}

/* The domain's snapshots that match flags; v[i] NULL for the others. */
static int load_matching(const struct store *st, const struct domain *d, unsigned flags,
                         struct snap ***out, size_t *n, int *count)
{
    char **names;
    int r = snap_names(st, d->name, &names, n);
    if (r < 0)
        return r;
    struct snap **v = calloc(*n ? *n : 1, sizeof(*v));
    if (!v) {
        snap_names_free(names, *n);
        return -ENOMEM;
    }
    for (size_t i = 0; i < *n; i++) {
        struct err e = { 0 };
        if (snap_load(st, d->name, names[i], &v[i], &e) < 0) {
            log_warn("domain '%s': snapshot metadata '%s' skipped: %s", d->name, names[i],
                     e.msg);
            v[i] = NULL;
        }
    }
    snap_names_free(names, *n);
    /* Decided for all before any is dropped: leaves depend on the others. */
    bool *keep = calloc(*n ? *n : 1, sizeof(bool));
    if (!keep) {
        for (size_t i = 0; i < *n; i++)
            snap_free(v[i]);
        free(v);
        return -ENOMEM;
    }
    *count = 0;
    for (size_t i = 0; i < *n; i++) {
        keep[i] = v[i] && list_match(v, *n, v[i], flags);
        *count += keep[i];
    }
    for (size_t i = 0; i < *n; i++)
        if (!keep[i]) {
            snap_free(v[i]);
            v[i] = NULL;
        }
    free(keep);
    *out = v;
    return 0;
}

static void free_all(struct snap **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        snap_free(v[i]);
    free(v);
}

int domain_snapshot_count(struct domain_driver *drv, struct domain *d, unsigned flags)
{
    struct snap **v;
    size_t n;
    int count;
    if (load_matching(&drv->store, d, flags, &v, &n, &count) < 0)
        return 0;
    free_all(v, n);
    return count;
}

int domain_rpc_snapshot_num(struct rpc_client *c, const void *args, void *ret,
                            struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_snapshot_num_args);
    ((remote_domain_snapshot_num_ret *)ret)->num =
        domain_snapshot_count(domain_rpc_driver(c), d, a->flags);
    return 0;
}

int domain_rpc_snapshot_list_all(struct rpc_client *c, const void *args, void *ret,
                                 struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_list_all_snapshots_args);
    remote_domain_list_all_snapshots_ret *r = ret;
    struct snap **v;
    size_t n;
    int count;
    if (load_matching(domain_snapshot_store(c), d, a->flags, &v, &n, &count) < 0)
        return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_QEMU, "out of memory");
    r->ret = count;
    int rc = 0;
    if (a->need_results && count > 0) {
        r->snapshots.snapshots_val = calloc((size_t)count, sizeof(remote_nonnull_domain_snapshot));
        if (!r->snapshots.snapshots_val)
            rc = rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_QEMU, "out of memory");
        for (size_t i = 0; rc == 0 && i < n; i++)
            if (v[i])
                rc = domain_snapshot_fill(&r->snapshots.snapshots_val[r->snapshots.snapshots_len++], d,
                               v[i]->name, err);
    }
    free_all(v, n);
    return rc;
}

int domain_rpc_snapshot_lookup(struct rpc_client *c, const void *args, void *ret,
                               struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_snapshot_lookup_by_name_args);
    struct snap *s;
    struct err e = { 0 };
    int r = snap_load(domain_snapshot_store(c), d->name, a->name, &s, &e);
    if (r == -ENOENT)
        return domain_snapshot_none(err, a->name);
    if (r < 0)
        return domain_rpc_fail(err, &e);
    snap_free(s);
    return domain_snapshot_fill(&((remote_domain_snapshot_lookup_by_name_ret *)ret)->snap, d, a->name,
                     err);
}

int domain_rpc_snapshot_has_current(struct rpc_client *c, const void *args, void *ret,
                                    struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_has_current_snapshot_args);
    char *cur = snap_current(domain_snapshot_store(c), d->name);
    ((remote_domain_has_current_snapshot_ret *)ret)->result = cur != NULL;
    free(cur);
    return 0;
}

int domain_rpc_snapshot_current(struct rpc_client *c, const void *args, void *ret,
                                struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_snapshot_current_args);
    char *cur = snap_current(domain_snapshot_store(c), d->name);
    if (!cur)
        return rpc_err_set(err, VIR_ERR_NO_DOMAIN_SNAPSHOT, VIR_FROM_DOMAIN_SNAPSHOT,
                           "the domain does not have a current snapshot");
    int r = domain_snapshot_fill(&((remote_domain_snapshot_current_ret *)ret)->snap, d, cur, err);
    free(cur);
    return r;
}

int domain_snapshot_remove_all(struct domain_driver *drv, struct domain *d, struct err *e)
{
    return snap_remove_all(&drv->store, d->name, e);
}

/* ---- the tree ---- */

int domain_rpc_snapshot_get_parent(struct rpc_client *c, const void *args, void *ret,
                                   struct rpc_error *err)
{
    const remote_domain_snapshot_get_parent_args *a = args;
    struct domain *d;
    struct snap *s = domain_snapshot_get(c, &a->snap, &d, err);
    if (!s)
        return -1;
    int r = s->parent ? domain_snapshot_fill(&((remote_domain_snapshot_get_parent_ret *)ret)->snap, d,
                                  s->parent, err)
                      : rpc_err_set(err, VIR_ERR_NO_DOMAIN_SNAPSHOT, VIR_FROM_DOMAIN_SNAPSHOT,
                                    "snapshot '%s' does not have a parent", s->name);
    snap_free(s);
    return r;
}

int domain_rpc_snapshot_is_current(struct rpc_client *c, const void *args, void *ret,
                                   struct rpc_error *err)
{
    const remote_domain_snapshot_is_current_args *a = args;
    struct domain *d;
    struct snap *s = domain_snapshot_get(c, &a->snap, &d, err);
    if (!s)
        return -1;
    char *cur = snap_current(domain_snapshot_store(c), d->name);
    ((remote_domain_snapshot_is_current_ret *)ret)->current = cur && strcmp(cur, s->name) == 0;
    free(cur);
    snap_free(s);
    return 0;
}

int domain_rpc_snapshot_has_metadata(struct rpc_client *c, const void *args, void *ret,
                                     struct rpc_error *err)
{
    const remote_domain_snapshot_has_metadata_args *a = args;
    struct domain *d;
    struct snap *s = domain_snapshot_get(c, &a->snap, &d, err);
    if (!s)
        return -1;
    ((remote_domain_snapshot_has_metadata_ret *)ret)->metadata = 1;
    snap_free(s);
    return 0;
}

/* Marks in keep[] the children of root (all descendants when deep). */
static int mark_children(struct snap **v, size_t n, const char *root, bool deep, bool *keep)
{
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        if (!v[i] || keep[i] || !v[i]->parent || strcmp(v[i]->parent, root) != 0)
            continue;
        keep[i] = true;
        count++;
        if (deep)
            count += mark_children(v, n, v[i]->name, deep, keep);
    }
    return count;
}

/* The children of the snapshot a call names; flags as for a list, with
 * bit 0 meaning all descendants. */
static int children(struct rpc_client *c, const remote_nonnull_domain_snapshot *rs,
                    unsigned flags, bool fill,
                    remote_domain_snapshot_list_all_children_ret *out, struct rpc_error *err)
{
    struct domain *d;
    struct snap *s = domain_snapshot_get(c, rs, &d, err);
    if (!s)
        return -1;
    struct snap **v;
    size_t n;
    int count;
    if (load_matching(domain_snapshot_store(c), d, flags & ~LIST_ROOTS, &v, &n, &count) < 0) {
        snap_free(s);
        return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_QEMU, "out of memory");
    }
    bool *keep = calloc(n ? n : 1, sizeof(bool));
    int r = keep ? 0 : rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_QEMU, "out of memory");
    /* A loop in hand-edited parents ends because each node is marked once. */
    count = keep ? mark_children(v, n, s->name, flags & LIST_ROOTS, keep) : 0;
    out->ret = count;
    if (r == 0 && fill && count > 0) {
        out->snapshots.snapshots_val = calloc((size_t)count,
                                              sizeof(remote_nonnull_domain_snapshot));
        if (!out->snapshots.snapshots_val)
            r = rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_QEMU, "out of memory");
        for (size_t i = 0; r == 0 && i < n; i++)
            if (keep[i])
                r = domain_snapshot_fill(&out->snapshots.snapshots_val[out->snapshots.snapshots_len++], d,
                              v[i]->name, err);
    }
    free(keep);
    free_all(v, n);
    snap_free(s);
    return r;
}

int domain_rpc_snapshot_num_children(struct rpc_client *c, const void *args, void *ret,
                                     struct rpc_error *err)
{
    const remote_domain_snapshot_num_children_args *a = args;
    remote_domain_snapshot_list_all_children_ret tmp = { 0 };
    int r = children(c, &a->snap, a->flags, false, &tmp, err);
    if (r == 0)
        ((remote_domain_snapshot_num_children_ret *)ret)->num = tmp.ret;
    return r;
}

int domain_rpc_snapshot_list_children(struct rpc_client *c, const void *args, void *ret,
                                      struct rpc_error *err)
{
    const remote_domain_snapshot_list_all_children_args *a = args;
    return children(c, &a->snapshot, a->flags, a->need_results != 0, ret, err);
}
