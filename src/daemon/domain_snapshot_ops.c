/* The snapshot procedures that change something: create, revert, delete.
 *
 * Every disk must be qcow2 and gets a qcow2 internal snapshot of the
 * snapshot's name; the daemon keeps the metadata. A shut-off domain's
 * images are closed, so the daemon works on them itself through
 * libcvirt-img, at once. A running or paused domain's images are held by
 * its VMM, and a second writer would corrupt them: the work runs as one
 * operation on the event loop (domain_chain_async) that saves the VM to a
 * file (the VMM's `migrate file:`, as virsh save), which stops the VMM
 * with every disk flushed; works on the closed images; and restores a VMM
 * from the file, so the guest runs on from where it was. The guest is
 * paused for the save and the restore; the domain keeps its name and uuid
 * but gets a new id, and clients see stopped/started events around it.
 * The reply waits for the end; other clients are served meanwhile.
 *
 * Create keeps the save file as the snapshot's memory state
 * (STATE/qemu/snapshot/DOMAIN/NAME.state); revert of such a snapshot
 * destroys the running VMM, puts the images back and restores that file;
 * delete saves to a scratch file (.delete.state there: snapshot names
 * never begin with a dot) that goes once the VM runs again. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "daemon/domain.h"
#include "daemon/domain_conf.h"
#include "daemon/domain_run.h"
#include "daemon/domain_snapshot_priv.h"
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

/* Each disk must hold the snapshot before any is put back: a revert that
 * stops halfway would leave a mix of two times. */
static int disk_has(const struct domain_disk *dk, const char *name, struct err *e)
{
    struct blk *b;
    int r = blk_open(&b, dk->source_file, "qcow2", BLK_O_NO_BACKING, NULL, e);
    if (r < 0)
        return r;
    struct blk_snapshot_info *v = NULL;
    int n = 0;
    r = blk_snapshot_list(b, &v, &n, e);
    bool found = false;
    for (int i = 0; r == 0 && i < n; i++)
        found |= strcmp(v[i].name, name) == 0;
    free(v);
    blk_close(b);
    if (r == 0 && !found)
        r = err_set(e, ENOENT, "disk '%s' (%s) has no internal snapshot '%s'",
                    dk->target_dev, dk->source_file, name);
    return r;
}

static int disks_apply(const struct domain_def *def, const char *name, struct err *e)
{
    for (size_t i = 0; i < def->ndisks; i++)
        if (disk_taken(&def->disks[i])) {
            int r = disk_has(&def->disks[i], name, e);
            if (r < 0)
                return r;
        }
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

/* ---- one operation on the loop ---- */

enum op_kind { OP_CREATE, OP_REVERT, OP_DELETE };

struct snap_op {
    enum op_kind kind;
    struct domain_driver *drv;
    struct rpc_deferred *dr;
    struct snap *s;
    bool changed;               /* create: the snapshot exists (images, metadata) */
    char *old_current;          /* create: the current snapshot before */
    char scratch[PATH_MAX];     /* delete: the save file */
};

static struct snap_op *op_new(enum op_kind kind, struct domain_driver *drv, struct snap *s)
{
    struct snap_op *op = calloc(1, sizeof(*op));
    if (!op)
        return NULL;
    op->kind = kind;
    op->drv = drv;
    op->s = s;
    return op;
}

static void op_free(struct snap_op *op)
{
    snap_free(op->s);
    free(op->old_current);
    free(op);
}

/* A call that fails before its operation begins: the snapshot goes with
 * the operation that took it, or alone when there was none yet. */
static int op_drop(struct snap_op *op, struct snap *s)
{
    if (op)
        op_free(op);
    else
        snap_free(s);
    return -1;
}

/* libvirt names the job's owner after the dispatcher of the call. */
static const char *const op_api[] = {
    [OP_CREATE] = "remoteDispatchDomainSnapshotCreateXML",
    [OP_REVERT] = "remoteDispatchDomainRevertToSnapshot",
    [OP_DELETE] = "remoteDispatchDomainSnapshotDelete",
};

static void op_fail(struct snap_op *op, const struct err *e)
{
    struct rpc_error err = { 0 };
    domain_rpc_fail(&err, e);
    rpc_deferred_fail(op->dr, &err);
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

/* The images and the metadata, all or nothing. */
static int take(struct domain_driver *drv, struct domain *d, struct snap *s,
                const struct domain_def *def, struct err *e)
{
    int r = disks_create(def, s->name, e);
    if (r < 0)
        return r;
    r = snap_save(&drv->store, d->name, s, e);
    if (r == 0)
        r = snap_set_current(&drv->store, d->name, s->name, e);
    if (r < 0) {
        struct err ie = { 0 };
        snap_remove(&drv->store, d->name, s->name, &ie);
        disks_delete(def, s->name);
    }
    return r;
}

/* The VMM is gone and every image closed: the daemon may write them. */
static int create_offline(void *opaque, struct domain *d, struct err *e)
{
    struct snap_op *op = opaque;
    struct domain_def *def;
    int r = domain_def_parse(op->s->domxml, strlen(op->s->domxml), 0, &def, e);
    if (r < 0)
        return r;
    r = take(op->drv, d, op->s, def, e);
    domain_def_free(def);
    op->changed = r == 0;
    return r;
}

/* Undoes a snapshot whose VM could not be restored: its memory state went
 * to the managed save image, so what is left would not revert. */
static void create_undo(struct snap_op *op, struct domain *d)
{
    struct err e = { 0 };
    struct domain_def *def;
    if (domain_def_parse(op->s->domxml, strlen(op->s->domxml), 0, &def, &e) == 0) {
        disks_delete(def, op->s->name);
        domain_def_free(def);
    }
    if (snap_remove(&op->drv->store, d->name, op->s->name, &e) < 0 ||
        snap_set_current(&op->drv->store, d->name, op->old_current, &e) < 0)
        log_warn("domain '%s': snapshot '%s': %s", d->name, op->s->name, e.msg);
}

static void create_done(void *opaque, struct domain *d, int rc, const struct err *e)
{
    struct snap_op *op = opaque;
    char path[PATH_MAX];
    bool restored = d && domain_is_active(d);
    if (rc < 0 && d && snap_state_path(&op->drv->store, d->name, op->s->name, path,
                                       sizeof(path)) == 0 && restored)
        unlink(path);
    if (rc < 0 && op->changed && d)
        create_undo(op, d);
    if (rc < 0) {
        struct err fe = *e;
        err_prefix(&fe, "snapshot '%s' not taken: ", op->s->name);
        op_fail(op, &fe);
    } else {
        log_info("domain '%s': snapshot '%s' taken (%s)", d->name, op->s->name, op->s->state);
        remote_domain_snapshot_create_xml_ret r = { 0 };
        struct rpc_error err = { 0 };
        if (domain_snapshot_fill(&r.snap, d, op->s->name, &err) < 0) {
            xdr_free((xdrproc_t)xdr_remote_domain_snapshot_create_xml_ret, (char *)&r);
            rpc_deferred_fail(op->dr, &err);
        } else {
            rpc_deferred_reply(op->dr, &r);
        }
    }
    op_free(op);
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

/* The refusals before anything is done, as libvirt words them. */
static int create_check(struct domain_driver *drv, struct domain *d, const struct snap *s,
                        const struct domain_def *def, struct rpc_error *err)
{
    struct err e = { 0 };
    struct snap *old = NULL;
    bool active = domain_is_active(d);
    if (d->job && domain_op_check(d, DOMAIN_OP_LIVE_CHANGE, &e) < 0)
        return domain_rpc_fail(err, &e);
    if (!d->def)
        return rpc_err_set(err, VIR_ERR_OPERATION_INVALID, VIR_FROM_QEMU,
                           "cannot take a snapshot of transient domain '%s'", d->name);
    if (active && d->state != DOMAIN_RUNNING && d->state != DOMAIN_PAUSED)
        return rpc_err_set(err, VIR_ERR_OPERATION_INVALID, VIR_FROM_QEMU,
                           "domain '%s' is changing state", d->name);
    if (snap_load(&drv->store, d->name, s->name, &old, &e) == 0) {
        snap_free(old);
        return rpc_err_set(err, VIR_ERR_OPERATION_INVALID, VIR_FROM_DOMAIN_SNAPSHOT,
                           "domain snapshot '%s' already exists", s->name);
    }
    if (active && s->memory_no)
        return rpc_err_set(err, VIR_ERR_OPERATION_UNSUPPORTED, VIR_FROM_QEMU,
                           "internal snapshot of a running VM must include the memory state");
    return check_disks(def, err);
}

/* What the snapshot records of the domain as it is now. */
static int describe(struct domain_driver *drv, struct domain *d, struct snap *s,
                    const struct domain_def *def, struct err *e)
{
    bool active = domain_is_active(d);
    snprintf(s->state, sizeof(s->state), "%s",
             !active ? "shutoff" : d->state == DOMAIN_PAUSED ? "paused" : "running");
    s->memory = active;
    s->parent = snap_current(&drv->store, d->name);
    s->domxml = domain_def_format(def, DOMAIN_FORMAT_INACTIVE | DOMAIN_FORMAT_SECURE);
    for (size_t i = 0; i < s->ndisks; i++)
        free(s->disks[i]);
    free(s->disks);
    s->ndisks = 0;
    s->disks = calloc(def->ndisks ? def->ndisks : 1, sizeof(char *));
    for (size_t i = 0; s->disks && i < def->ndisks; i++)
        if (disk_taken(&def->disks[i]) &&
            (s->disks[s->ndisks] = strdup(def->disks[i].target_dev)))
            s->ndisks++;
    if (!s->domxml || !s->disks)
        return err_set(e, ENOMEM, "out of memory");
    return 0;
}

/* A running domain's snapshot: save, take, restore, on the loop. */
static int create_running(struct rpc_client *c, struct domain *d, struct snap *s,
                          struct rpc_error *err)
{
    struct domain_driver *drv = domain_rpc_driver(c);
    char path[PATH_MAX], dir[PATH_MAX];
    struct err e = { 0 };
    int r = 0;
    if (snap_state_path(&drv->store, d->name, s->name, path, sizeof(path)) < 0 ||
        snap_state_path(&drv->store, d->name, NULL, dir, sizeof(dir)) < 0)
        r = err_set(&e, ENAMETOOLONG, "snapshot path too long");
    if (r == 0)
        r = check_no_hotplug(d, &e);
    if (r == 0)
        r = snap_mkdir(dir, &e);
    struct snap_op *op = r < 0 ? NULL : op_new(OP_CREATE, drv, s);
    if (r == 0 && !op)
        r = err_set(&e, ENOMEM, "out of memory");
    if (r < 0) {
        snap_free(s);
        return domain_rpc_fail(err, &e);
    }
    op->old_current = snap_current(&drv->store, d->name);
    op->dr = rpc_defer(c, err);
    if (!op->dr) {
        op_free(op);
        return -1;
    }
    struct domain_chain ch = {
        .save = path, .offline = create_offline, .restore = path,
        .paused = d->state == DOMAIN_PAUSED,
    };
    if (domain_chain_async(drv, d, &ch, op_api[OP_CREATE], create_done, op, &e) < 0) {
        op_fail(op, &e);
        op_free(op);
    }
    return RPC_HANDLER_DEFERRED;
}

int domain_rpc_snapshot_create(struct rpc_client *c, const void *args, void *ret,
                               struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_snapshot_create_xml_args);
    struct domain_driver *drv = domain_rpc_driver(c);
    struct snap *s = NULL;
    struct err e = { 0 };
    if (create_args(a->xml_desc, a->flags, &s, err) < 0) {
        snap_free(s);
        return -1;
    }
    const struct domain_def *def = domain_current_def(d, false);
    int r = create_check(drv, d, s, def, err);
    if (r == 0 && describe(drv, d, s, def, &e) < 0)
        r = domain_rpc_fail(err, &e);
    if (r < 0) {
        snap_free(s);
        return -1;
    }
    if (domain_is_active(d))
        return create_running(c, d, s, err);
    r = take(drv, d, s, def, &e);
    if (r < 0)
        domain_rpc_fail(err, &e);
    if (r == 0) {
        log_info("domain '%s': snapshot '%s' taken (%s)", d->name, s->name, s->state);
        r = domain_snapshot_fill(&((remote_domain_snapshot_create_xml_ret *)ret)->snap, d,
                                 s->name, err);
    }
    snap_free(s);
    return r < 0 ? -1 : 0;
}

/* ---- revert ---- */

/* The images go back first, each checked beforehand; then the snapshot's
 * definition becomes the domain's again, as libvirt does. */
static int revert_offline(void *opaque, struct domain *d, struct err *e)
{
    struct snap_op *op = opaque;
    const struct snap *s = op->s;
    struct domain_def *def;
    int r = domain_def_parse(s->domxml, strlen(s->domxml), DOMAIN_PARSE_INACTIVE, &def, e);
    if (r < 0)
        return r;
    if (memcmp(def->uuid, d->uuid, 16) != 0 || strcmp(def->name, d->name) != 0) {
        domain_def_free(def);
        return err_set(e, EINVAL, "snapshot '%s' belongs to another domain", s->name);
    }
    r = disks_apply(def, s->name, e);
    /* A managed save image holds memory of disks that are gone now: the
     * next start must boot the snapshot, not resume that. */
    if (r == 0 && d->managed_save)
        r = domain_managed_save_remove(op->drv, d, e);
    if (r < 0) {
        domain_def_free(def);
        return r;
    }
    struct domain_def *old = d->def;
    d->def = def;
    r = domain_save_config(op->drv, d, e);
    if (r < 0) {
        d->def = old;
        domain_def_free(def);
        return r;
    }
    domain_def_free(old);
    return snap_set_current(&op->drv->store, d->name, s->name, e);
}

static void op_done_void(void *opaque, struct domain *d, int rc, const struct err *e)
{
    struct snap_op *op = opaque;
    if (op->scratch[0])
        unlink(op->scratch);
    if (rc < 0) {
        op_fail(op, e);
    } else {
        log_info("domain '%s': snapshot '%s' %s", d ? d->name : "?", op->s->name,
                 op->kind == OP_REVERT ? "reverted to" : "deleted");
        rpc_deferred_reply(op->dr, NULL);
    }
    op_free(op);
}

/* Another operation on the domain holds it: libvirt's lock error. */
static int locked(struct domain *d, struct rpc_error *err)
{
    struct err e = { 0 };
    if (d->job && domain_op_check(d, DOMAIN_OP_LIVE_CHANGE, &e) < 0)
        return domain_rpc_fail(err, &e);
    return 0;
}

/* Runs op as a chain with the reply deferred; op is taken. */
static int op_begin(struct rpc_client *c, struct domain *d, struct snap_op *op,
                    const struct domain_chain *ch, struct rpc_error *err)
{
    struct err e = { 0 };
    op->dr = rpc_defer(c, err);
    if (!op->dr) {
        op_free(op);
        return -1;
    }
    int r = domain_chain_async(op->drv, d, ch, op_api[op->kind], op_done_void, op, &e);
    if (r != 0) {
        /* Done at once (1), or refused. */
        op_done_void(op, d, r < 0 ? r : 0, &e);
    }
    return RPC_HANDLER_DEFERRED;
}

/* The scratch save file of a running domain's operation. */
static int scratch_path(struct domain_driver *drv, struct domain *d, const char *what,
                        char *path, size_t len, struct err *e)
{
    char dir[PATH_MAX];
    if (snap_state_path(&drv->store, d->name, what, path, len) < 0 ||
        snap_state_path(&drv->store, d->name, NULL, dir, sizeof(dir)) < 0)
        return err_set(e, ENAMETOOLONG, "snapshot path too long");
    return snap_mkdir(dir, e);
}

int domain_rpc_snapshot_revert(struct rpc_client *c, const void *args, void *ret,
                               struct rpc_error *err)
{
    const remote_domain_revert_to_snapshot_args *a = args;
    struct domain_driver *drv = domain_rpc_driver(c);
    struct domain *d;
    (void)ret;
    if ((a->flags & ~(REVERT_RUNNING | REVERT_PAUSED | REVERT_FORCE)) ||
        (a->flags & REVERT_RUNNING && a->flags & REVERT_PAUSED))
        return rpc_err_set(err, VIR_ERR_INVALID_ARG, VIR_FROM_QEMU,
                           "unsupported flags (0x%x)", a->flags);
    struct snap *s = domain_snapshot_get(c, &a->snap, &d, err);
    if (!s)
        return -1;
    struct err e = { 0 };
    char path[PATH_MAX] = "";
    bool off = strcmp(s->state, "shutoff") == 0;
    int r = locked(d, err);
    if (r == 0 && !d->def)
        r = rpc_err_set(err, VIR_ERR_OPERATION_INVALID, VIR_FROM_QEMU,
                        "cannot revert transient domain '%s'", d->name);
    if (r == 0 && !off) {
        if (snap_state_path(&drv->store, d->name, s->name, path, sizeof(path)) < 0)
            err_set(&e, ENAMETOOLONG, "snapshot path too long");
        else if (access(path, R_OK) < 0)
            err_set_errno(&e, errno, "the memory state of snapshot '%s' (%s)", s->name, path);
        if (e.code)
            r = domain_rpc_fail(err, &e);
    }
    struct snap_op *op = r < 0 ? NULL : op_new(OP_REVERT, drv, s);
    if (r == 0 && !op)
        r = rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_QEMU, "out of memory");
    /* The VM's state before, for a revert that cannot put the images back. */
    if (r == 0 && domain_is_active(d) &&
        scratch_path(drv, d, ".revert", op->scratch, sizeof(op->scratch), &e) < 0)
        r = domain_rpc_fail(err, &e);
    if (r < 0)
        return op_drop(op, s);
    struct domain_chain ch = {
        .save = op->scratch[0] ? op->scratch : NULL, .offline = revert_offline,
        .restore = off ? NULL : path,
        .start = off && (a->flags & (REVERT_RUNNING | REVERT_PAUSED)),
        .paused = (a->flags & REVERT_PAUSED) ||
                  (strcmp(s->state, "paused") == 0 && !(a->flags & REVERT_RUNNING)),
    };
    return op_begin(c, d, op, &ch, err);
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

/* The metadata goes after the images, so a failure leaves it for a retry. */
static int forget(struct domain_driver *drv, struct domain *d, const struct snap *s,
                  bool images, struct err *e)
{
    if (images && d->def)
        disks_delete(d->def, s->name);
    int r = reparent(&drv->store, d, s, e);
    if (r == 0)
        r = snap_remove(&drv->store, d->name, s->name, e);
    char path[PATH_MAX];
    if (r == 0 && snap_state_path(&drv->store, d->name, s->name, path, sizeof(path)) == 0)
        unlink(path);
    return r;
}

static int delete_offline(void *opaque, struct domain *d, struct err *e)
{
    struct snap_op *op = opaque;
    return forget(op->drv, d, op->s, true, e);
}

int domain_rpc_snapshot_delete(struct rpc_client *c, const void *args, void *ret,
                               struct rpc_error *err)
{
    const remote_domain_snapshot_delete_args *a = args;
    struct domain_driver *drv = domain_rpc_driver(c);
    struct domain *d;
    (void)ret;
    if (a->flags & ~DELETE_METADATA_ONLY)
        return rpc_err_set(err, VIR_ERR_OPERATION_UNSUPPORTED, VIR_FROM_QEMU,
                           "deleting a snapshot with its children (flags 0x%x)", a->flags);
    struct snap *s = domain_snapshot_get(c, &a->snap, &d, err);
    if (!s)
        return -1;
    struct err e = { 0 };
    bool images = !(a->flags & DELETE_METADATA_ONLY);
    int r = images ? locked(d, err) : 0;
    if (r == 0 && images && domain_is_active(d)) {
        /* The VMM holds the images: they are written with no VMM at all. */
        struct snap_op *op = op_new(OP_DELETE, drv, s);
        if (!op)
            r = rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_QEMU, "out of memory");
        else if (scratch_path(drv, d, ".delete", op->scratch, sizeof(op->scratch), &e) < 0)
            r = domain_rpc_fail(err, &e);
        if (r < 0)
            return op_drop(op, s);
        struct domain_chain ch = {
            .save = op->scratch, .offline = delete_offline, .restore = op->scratch,
            .paused = d->state == DOMAIN_PAUSED,
        };
        return op_begin(c, d, op, &ch, err);
    }
    if (r == 0)
        r = forget(drv, d, s, images, &e);
    if (r < 0 && e.code)
        domain_rpc_fail(err, &e);
    if (r == 0)
        log_info("domain '%s': snapshot '%s' deleted", d->name, s->name);
    snap_free(s);
    return r < 0 ? -1 : 0;
}
