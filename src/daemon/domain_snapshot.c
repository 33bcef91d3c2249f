/* Domain snapshots through the remote protocol, as libvirt's QEMU driver
 * takes internal snapshots: every disk must be qcow2 and gets a qcow2
 * internal snapshot of the snapshot's name; the daemon keeps the metadata.
 *
 * A shut-off domain's images are closed, so the daemon snapshots them
 * itself through libcvirt-img. A running or paused domain's images are
 * held by its VMM: the daemon saves the VM (the VMM's `migrate file:`, the
 * same path as virsh save) to STATE/qemu/snapshot/DOMAIN/NAME.state, which
 * stops the VMM with every disk flushed; snapshots the now closed images;
 * and starts a new VMM from the state file, so the guest runs on from the
 * instant of the snapshot. Revert of such a snapshot is the same restore
 * after the images are put back. The domain keeps its name and uuid but
 * gets a new id, and clients see stopped/started events around it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "daemon/domain.h"
#include "daemon/domain_conf.h"
#include "daemon/domain_rpc.h"
#include "daemon/domain_run.h"
#include "daemon/domain_run_priv.h"
#include "daemon/domain_snapshot.h"
#include "daemon/rpc/server.h"
#include "daemon/vmm_client.h"
#include "img/blk.h"
#include "util/log.h"

/* virDomainSnapshotCreateFlags */
#define CREATE_ATOMIC   (1u << 7)
#define CREATE_VALIDATE (1u << 9)
/* virDomainSnapshotRevertFlags */
#define REVERT_RUNNING  (1u << 0)
#define REVERT_PAUSED   (1u << 1)
#define REVERT_FORCE    (1u << 2)
/* virDomainSnapshotDeleteFlags */
#define DELETE_METADATA_ONLY (1u << 1)
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

static const struct store *store_of(struct rpc_client *c)
{
    return &domain_rpc_driver(c)->store;
}

/* ---- the images ---- */

enum disk_op { DISK_CREATE, DISK_APPLY, DISK_DELETE };

static int disk_op(const struct domain_disk *dk, const char *name, enum disk_op op,
                   struct err *e)
{
    struct blk *b;
    int r = blk_open(&b, dk->source_file, "qcow2", BLK_O_RDWR, NULL, e);
    if (r < 0)
        return r;
    if (op == DISK_CREATE)
        r = blk_snapshot_create(b, name, e);
    else if (op == DISK_APPLY)
        r = blk_snapshot_apply(b, name, e);
    else
        r = blk_snapshot_delete(b, name, e);
    if (r == 0)
        r = blk_flush(b, e);
    blk_close(b);
    if (r < 0)
        err_prefix(e, "disk '%s': ", dk->target_dev);
    return r;
}

static bool disk_taken(const struct domain_disk *dk)
{
    return !dk->readonly;
}

/* libvirt's refusal of internal snapshots of anything but qcow2. */
static int check_disks(const struct domain_def *def, struct rpc_error *err)
{
    for (size_t i = 0; i < def->ndisks; i++) {
        const struct domain_disk *dk = &def->disks[i];
        if (!disk_taken(dk))
            continue;
        if (dk->block || dk->format != DOMAIN_DISK_QCOW2)
            return rpc_err_set(err, VIR_ERR_CONFIG_UNSUPPORTED, VIR_FROM_QEMU,
                               "internal snapshot for disk %s unsupported for storage type %s",
                               dk->target_dev, dk->block ? "block" : "raw");
    }
    return 0;
}

/* All disks or none: a failure deletes what was created. */
static int disks_create(const struct domain_def *def, const char *name, struct err *e)
{
    size_t i;
    int r = 0;
    for (i = 0; i < def->ndisks && r == 0; i++)
        if (disk_taken(&def->disks[i]))
            r = disk_op(&def->disks[i], name, DISK_CREATE, e);
    if (r < 0) {
        struct err ie = { 0 };
        for (size_t j = 0; j + 1 < i; j++)
            if (disk_taken(&def->disks[j]))
                disk_op(&def->disks[j], name, DISK_DELETE, &ie);
    }
    return r;
}

static int disks_apply(const struct domain_def *def, const char *name, struct err *e)
{
    for (size_t i = 0; i < def->ndisks; i++)
        if (disk_taken(&def->disks[i])) {
            int r = disk_op(&def->disks[i], name, DISK_APPLY, e);
            if (r < 0)
                return r;
        }
    return 0;
}

/* A disk that lacks the snapshot (added later, or already cleaned by
 * hand) is no reason to keep the metadata. */
static void disks_delete(const struct domain_def *def, const char *name)
{
    for (size_t i = 0; i < def->ndisks; i++) {
        struct err e = { 0 };
        if (disk_taken(&def->disks[i]) &&
            disk_op(&def->disks[i], name, DISK_DELETE, &e) < 0)
            log_warn("snapshot '%s': %s", name, e.msg);
    }
}

/* ---- replies ---- */

static int fill_snap(remote_nonnull_domain_snapshot *out, const struct domain *d,
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

static int no_snap(struct rpc_error *err, const char *name)
{
    return rpc_err_set(err, VIR_ERR_NO_DOMAIN_SNAPSHOT, VIR_FROM_DOMAIN_SNAPSHOT,
                       "no domain snapshot with matching name '%s'", name);
}

/* The snapshot a call names, with its domain. */
static struct snap *get_snap(struct rpc_client *c, const remote_nonnull_domain_snapshot *rs,
                             struct domain **dp, struct rpc_error *err)
{
    struct domain *d = domain_rpc_get(c, &rs->dom, err);
    if (!d)
        return NULL;
    struct snap *s;
    struct err e = { 0 };
    int r = snap_load(store_of(c), d->name, rs->name, &s, &e);
    if (r == -ENOENT) {
        no_snap(err, rs->name);
        return NULL;
    }
    if (r < 0) {
        domain_rpc_fail(err, &e);
        return NULL;
    }
    *dp = d;
    return s;
}

/* ---- create ---- */

/* A saved VM holds only the devices it was started with: a hot-plugged
 * disk would be missing after the restore. */
static int check_no_hotplug(struct domain *d, struct err *e)
{
    struct json_object *pci = NULL;
    if (!d->vmm)
        return err_set(e, EIO, "the VMM of domain '%s' does not answer", d->name);
    int r = vmm_client_execute(d->vmm, "query-pci", NULL, VMM_CLIENT_TIMEOUT_MS, &pci, e);
    if (r < 0)
        return r;
    size_t nb = json_object_is_type(pci, json_type_array) ? json_object_array_length(pci) : 0;
    for (size_t i = 0; r == 0 && i < nb; i++) {
        struct json_object *devs, *dev, *id;
        if (!json_object_object_get_ex(json_object_array_get_idx(pci, i), "devices", &devs) ||
            !json_object_is_type(devs, json_type_array))
            continue;
        for (size_t j = 0; r == 0 && j < json_object_array_length(devs); j++) {
            dev = json_object_array_get_idx(devs, j);
            if (json_object_object_get_ex(dev, "qdev_id", &id) &&
                json_object_get_string_len(id) > 0)
                r = err_set(e, ENOTSUP, "snapshot of a running domain with the hot-plugged "
                            "device '%s'", json_object_get_string(id));
        }
    }
    json_object_put(pci);
    return r;
}

static int take_running(struct domain_driver *drv, struct domain *d, struct snap *s,
                        struct err *e)
{
    char path[PATH_MAX], dir[PATH_MAX];
    if (snap_state_path(&drv->store, d->name, s->name, path, sizeof(path)) < 0 ||
        snap_state_path(&drv->store, d->name, NULL, dir, sizeof(dir)) < 0)
        return err_set(e, ENAMETOOLONG, "snapshot path too long");
    int r = check_no_hotplug(d, e);
    if (r == 0)
        r = snap_mkdir(dir, e);
    if (r < 0)
        return r;
    bool paused = d->state == DOMAIN_PAUSED;
    struct domain_def *live;
    r = domain_def_parse(s->domxml, strlen(s->domxml), 0, &live, e);
    if (r < 0)
        return r;
    r = domain_save(drv, d, path, e);
    if (r < 0) {
        domain_def_free(live);
        return r;
    }
    /* The VMM is gone and every image closed: the daemon may write them. */
    int dr = disks_create(live, s->name, e);
    struct err se = { 0 };
    d->live = live;
    r = domain_start_from(drv, d, path, &se);
    if (r == 0 && paused)
        r = domain_suspend(drv, d, &se);
    if (r < 0 && dr == 0) {
        *e = se;
        return r;
    }
    if (dr < 0)
        unlink(path);
    return dr;
}

static int create_args(const char *xml, unsigned flags, struct snap **out,
                       struct rpc_error *err)
{
    if (flags & ~(CREATE_ATOMIC | CREATE_VALIDATE))
        return rpc_err_set(err, VIR_ERR_OPERATION_UNSUPPORTED, VIR_FROM_QEMU,
                           "snapshot flags 0x%x: only internal snapshots with metadata "
                           "are supported", flags);
    struct err e = { 0 };
    if (snap_parse(xml, strlen(xml), true, out, &e) < 0)
        return rpc_err_set(err, VIR_ERR_XML_ERROR, VIR_FROM_DOMAIN_SNAPSHOT, "%s", e.msg);
    struct snap *s = *out;
    s->ctime = (long long)time(NULL);
    if (!s->name && asprintf(&s->name, "%lld", s->ctime) < 0) {
        s->name = NULL;
        return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_QEMU, "out of memory");
    }
    return 0;
}

int domain_rpc_snapshot_create(struct rpc_client *c, const void *args, void *ret,
                               struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_snapshot_create_xml_args);
    struct domain_driver *drv = domain_rpc_driver(c);
    struct snap *s = NULL, *old = NULL;
    struct err e = { 0 };
    if (create_args(a->xml_desc, a->flags, &s, err) < 0) {
        snap_free(s);
        return -1;
    }
    int r = -1;
    bool active = domain_is_active(d);
    const struct domain_def *def = domain_current_def(d, false);
    if (!d->def)
        rpc_err_set(err, VIR_ERR_OPERATION_INVALID, VIR_FROM_QEMU,
                    "cannot take a snapshot of transient domain '%s'", d->name);
    else if (active && d->state != DOMAIN_RUNNING && d->state != DOMAIN_PAUSED)
        rpc_err_set(err, VIR_ERR_OPERATION_INVALID, VIR_FROM_QEMU,
                    "domain '%s' is changing state", d->name);
    else if (snap_load(&drv->store, d->name, s->name, &old, &e) == 0)
        rpc_err_set(err, VIR_ERR_OPERATION_INVALID, VIR_FROM_DOMAIN_SNAPSHOT,
                    "domain snapshot '%s' already exists", s->name);
    else if (active && s->memory_no)
        rpc_err_set(err, VIR_ERR_OPERATION_UNSUPPORTED, VIR_FROM_QEMU,
                    "internal snapshot of a running VM must include the memory state");
    else if (check_disks(def, err) == 0)
        r = 0;
    snap_free(old);
    e = (struct err){ 0 };
    if (r == 0) {
        snprintf(s->state, sizeof(s->state), "%s",
                 !active ? "shutoff" : d->state == DOMAIN_PAUSED ? "paused" : "running");
        s->memory = active;
        s->parent = snap_current(&drv->store, d->name);
        s->domxml = domain_def_format(def, DOMAIN_FORMAT_INACTIVE | DOMAIN_FORMAT_SECURE);
        for (size_t i = 0; i < s->ndisks; i++)
            free(s->disks[i]);
        s->ndisks = 0;
        s->disks = calloc(def->ndisks ? def->ndisks : 1, sizeof(char *));
        for (size_t i = 0; s->disks && i < def->ndisks; i++)
            if (disk_taken(&def->disks[i]) &&
                (s->disks[s->ndisks] = strdup(def->disks[i].target_dev)))
                s->ndisks++;
        if (!s->domxml || !s->disks)
            r = err_set(&e, ENOMEM, "out of memory");
    }
    if (r == 0)
        r = active ? take_running(drv, d, s, &e) : disks_create(def, s->name, &e);
    if (r == 0)
        r = snap_save(&drv->store, d->name, s, &e);
    if (r == 0)
        r = snap_set_current(&drv->store, d->name, s->name, &e);
    if (r < 0 && e.code)
        domain_rpc_fail(err, &e);
    if (r == 0) {
        log_info("domain '%s': snapshot '%s' taken (%s)", d->name, s->name, s->state);
        r = fill_snap(&((remote_domain_snapshot_create_xml_ret *)ret)->snap, d, s->name, err);
    }
    snap_free(s);
    return r;
}

/* ---- queries ---- */

int domain_rpc_snapshot_get_xml(struct rpc_client *c, const void *args, void *ret,
                                struct rpc_error *err)
{
    const remote_domain_snapshot_get_xml_desc_args *a = args;
    struct domain *d;
    struct snap *s = get_snap(c, &a->snap, &d, err);
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
    if (load_matching(store_of(c), d, a->flags, &v, &n, &count) < 0)
        return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_QEMU, "out of memory");
    r->ret = count;
    int rc = 0;
    if (a->need_results && count > 0) {
        r->snapshots.snapshots_val = calloc((size_t)count, sizeof(remote_nonnull_domain_snapshot));
        if (!r->snapshots.snapshots_val)
            rc = rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_QEMU, "out of memory");
        for (size_t i = 0; rc == 0 && i < n; i++)
            if (v[i])
                rc = fill_snap(&r->snapshots.snapshots_val[r->snapshots.snapshots_len++], d,
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
    int r = snap_load(store_of(c), d->name, a->name, &s, &e);
    if (r == -ENOENT)
        return no_snap(err, a->name);
    if (r < 0)
        return domain_rpc_fail(err, &e);
    snap_free(s);
    return fill_snap(&((remote_domain_snapshot_lookup_by_name_ret *)ret)->snap, d, a->name,
                     err);
}

int domain_rpc_snapshot_has_current(struct rpc_client *c, const void *args, void *ret,
                                    struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_has_current_snapshot_args);
    char *cur = snap_current(store_of(c), d->name);
    ((remote_domain_has_current_snapshot_ret *)ret)->result = cur != NULL;
    free(cur);
    return 0;
}

int domain_rpc_snapshot_current(struct rpc_client *c, const void *args, void *ret,
                                struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_snapshot_current_args);
    char *cur = snap_current(store_of(c), d->name);
    if (!cur)
        return rpc_err_set(err, VIR_ERR_NO_DOMAIN_SNAPSHOT, VIR_FROM_DOMAIN_SNAPSHOT,
                           "the domain does not have a current snapshot");
    int r = fill_snap(&((remote_domain_snapshot_current_ret *)ret)->snap, d, cur, err);
    free(cur);
    return r;
}

/* ---- revert ---- */

/* The snapshot's definition becomes the domain's again, as libvirt does. */
static int restore_def(struct domain_driver *drv, struct domain *d, const struct snap *s,
                       struct err *e)
{
    struct domain_def *def;
    int r = domain_def_parse(s->domxml, strlen(s->domxml), DOMAIN_PARSE_INACTIVE, &def, e);
    if (r < 0)
        return r;
    if (memcmp(def->uuid, d->uuid, 16) != 0 || strcmp(def->name, d->name) != 0) {
        domain_def_free(def);
        return err_set(e, EINVAL, "snapshot '%s' belongs to another domain", s->name);
    }
    struct domain_def *old = d->def;
    d->def = def;
    r = domain_save_config(drv, d, e);
    if (r < 0) {
        d->def = old;
        domain_def_free(def);
        return r;
    }
    domain_def_free(old);
    return 0;
}

static int revert(struct domain_driver *drv, struct domain *d, const struct snap *s,
                  unsigned flags, struct err *e)
{
    int r = 0;
    if (domain_is_active(d))
        r = domain_destroy(drv, d, e);
    if (r == 0)
        r = restore_def(drv, d, s, e);
    if (r == 0)
        r = disks_apply(d->def, s->name, e);
    if (r < 0)
        return r;
    bool off = strcmp(s->state, "shutoff") == 0;
    bool pause = (flags & REVERT_PAUSED) ||
                 (strcmp(s->state, "paused") == 0 && !(flags & REVERT_RUNNING));
    if (off && !(flags & (REVERT_RUNNING | REVERT_PAUSED)))
        return 0;
    if (off) {
        r = domain_start(drv, d, e);
    } else {
        char path[PATH_MAX];
        if (snap_state_path(&drv->store, d->name, s->name, path, sizeof(path)) < 0)
            return err_set(e, ENAMETOOLONG, "snapshot path too long");
        if (access(path, R_OK) < 0)
            return err_set_errno(e, errno, "the memory state of snapshot '%s' (%s)",
                                 s->name, path);
        struct domain_def *live;
        r = domain_def_parse(s->domxml, strlen(s->domxml), 0, &live, e);
        if (r < 0)
            return r;
        domain_def_free(d->live);
        d->live = live;
        r = domain_start_from(drv, d, path, e);
    }
    if (r == 0 && pause)
        r = domain_suspend(drv, d, e);
    return r;
}

int domain_rpc_snapshot_revert(struct rpc_client *c, const void *args, void *ret,
                               struct rpc_error *err)
{
    const remote_domain_revert_to_snapshot_args *a = args;
    struct domain_driver *drv = domain_rpc_driver(c);
    struct domain *d;
    if ((a->flags & ~(REVERT_RUNNING | REVERT_PAUSED | REVERT_FORCE)) ||
        (a->flags & REVERT_RUNNING && a->flags & REVERT_PAUSED))
        return rpc_err_set(err, VIR_ERR_INVALID_ARG, VIR_FROM_QEMU,
                           "unsupported flags (0x%x)", a->flags);
    struct snap *s = get_snap(c, &a->snap, &d, err);
    if (!s)
        return -1;
    struct err e = { 0 };
    int r;
    if (!d->def)
        r = rpc_err_set(err, VIR_ERR_OPERATION_INVALID, VIR_FROM_QEMU,
                        "cannot revert transient domain '%s'", d->name);
    else
        r = revert(drv, d, s, a->flags, &e);
    if (r == 0)
        r = snap_set_current(&drv->store, d->name, s->name, &e);
    if (r < 0 && e.code)
        domain_rpc_fail(err, &e);
    if (r == 0)
        log_info("domain '%s' reverted to snapshot '%s'", d->name, s->name);
    snap_free(s);
    return r < 0 ? -1 : 0;
}

/* ---- delete ---- */

/* The children of name get its parent, and so does "current". */
static int reparent(const struct store *st, const struct domain *d, const struct snap *gone,
                    struct err *e)
{
    char **names;
    size_t n;
    int r = snap_names(st, d->name, &names, &n);
    if (r < 0)
        return err_set(e, -r, "cannot list the snapshots of '%s'", d->name);
    for (size_t i = 0; r == 0 && i < n; i++) {
        struct snap *s;
        struct err le = { 0 };
        if (snap_load(st, d->name, names[i], &s, &le) < 0)
            continue;
        if (s->parent && strcmp(s->parent, gone->name) == 0) {
            free(s->parent);
            s->parent = gone->parent ? strdup(gone->parent) : NULL;
            r = snap_save(st, d->name, s, e);
        }
        snap_free(s);
    }
    snap_names_free(names, n);
    char *cur = snap_current(st, d->name);
    if (r == 0 && cur && strcmp(cur, gone->name) == 0)
        r = snap_set_current(st, d->name, gone->parent, e);
    free(cur);
    return r;
}

int domain_rpc_snapshot_delete(struct rpc_client *c, const void *args, void *ret,
                               struct rpc_error *err)
{
    const remote_domain_snapshot_delete_args *a = args;
    struct domain_driver *drv = domain_rpc_driver(c);
    struct domain *d;
    if (a->flags & ~DELETE_METADATA_ONLY)
        return rpc_err_set(err, VIR_ERR_OPERATION_UNSUPPORTED, VIR_FROM_QEMU,
                           "deleting a snapshot with its children (flags 0x%x)", a->flags);
    struct snap *s = get_snap(c, &a->snap, &d, err);
    if (!s)
        return -1;
    struct err e = { 0 };
    int r = 0;
    bool images = !(a->flags & DELETE_METADATA_ONLY);
    if (images && domain_is_active(d))
        r = rpc_err_set(err, VIR_ERR_OPERATION_UNSUPPORTED, VIR_FROM_QEMU,
                        "deleting the internal snapshot '%s' of a running domain: "
                        "shut it off first", s->name);
    if (r == 0 && images && d->def)
        disks_delete(d->def, s->name);
    if (r == 0)
        r = reparent(&drv->store, d, s, &e);
    if (r == 0)
        r = snap_remove(&drv->store, d->name, s->name, &e);
    char path[PATH_MAX];
    if (r == 0 && snap_state_path(&drv->store, d->name, s->name, path, sizeof(path)) == 0)
        unlink(path);
    if (r < 0 && e.code)
        domain_rpc_fail(err, &e);
    if (r == 0)
        log_info("domain '%s': snapshot '%s' deleted", d->name, s->name);
    snap_free(s);
    return r < 0 ? -1 : 0;
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
    struct snap *s = get_snap(c, &a->snap, &d, err);
    if (!s)
        return -1;
    int r = s->parent ? fill_snap(&((remote_domain_snapshot_get_parent_ret *)ret)->snap, d,
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
    struct snap *s = get_snap(c, &a->snap, &d, err);
    if (!s)
        return -1;
    char *cur = snap_current(store_of(c), d->name);
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
    struct snap *s = get_snap(c, &a->snap, &d, err);
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
    struct snap *s = get_snap(c, rs, &d, err);
    if (!s)
        return -1;
    struct snap **v;
    size_t n;
    int count;
    if (load_matching(store_of(c), d, flags & ~LIST_ROOTS, &v, &n, &count) < 0) {
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
                r = fill_snap(&out->snapshots.snapshots_val[out->snapshots.snapshots_len++], d,
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
