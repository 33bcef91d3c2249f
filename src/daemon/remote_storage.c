/* The storage pool and volume procedures of the remote protocol, answered
 * the way libvirtd's storage driver answers them for dir pools (same
 * error codes, and the same wording where virsh and virt-install show it). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"
#include "daemon/name_list.h"
#include "daemon/storage.h"
#include "daemon/rpc/dispatch.h"
#include "daemon/rpc/server.h"
#include "util/log.h"

/* virErrorNumber values beyond the ones wire.h names; their libvirt text
 * goes in front of the detail here. */
#define VIR_ERR_INVALID_STORAGE_POOL 46
/* virConnectListAllStoragePoolsFlags beyond the ones name_list.h names */
#define LIST_DIR          (1u << 6)
#define LIST_TYPES        (~0u << 6)   /* dir and every other pool type */

/* virStoragePoolEventLifecycleType (every detail is 0), and a refresh,
 * which has a message of its own. */
enum {
    POOL_EVENT_DEFINED = 0,
    POOL_EVENT_UNDEFINED = 1,
    POOL_EVENT_STARTED = 2,
    POOL_EVENT_STOPPED = 3,
    POOL_EVENT_CREATED = 4,
    POOL_EVENT_DELETED = 5,
    POOL_EVENT_REFRESH = -1,
};

/* virStoragePoolState */
#define POOL_INACTIVE 0
#define POOL_RUNNING  2

/* One daemon per process: struct daemon has no slot for the storage
 * driver, so it lives here between remote_storage_init and _fini. */
static struct storage_driver *the_driver;

struct storage_driver *remote_storage_driver(void)
{
    return the_driver;
}

int remote_storage_no_pool(struct rpc_error *err, const char *what, const char *name)
{
    return rpc_err_set(err, VIR_ERR_NO_STORAGE_POOL, VIR_FROM_STORAGE,
                       "no storage pool with matching %s '%s'",
                       what, name);
}

/* One error reply from a struct err of storage.c, by the kind of failure. */
int remote_storage_fail(struct rpc_error *err, const struct err *e)
{
    const char *msg = e->msg[0] ? e->msg : "unknown error";
    switch (e->code) {
    case EBUSY:
        return rpc_err_set(err, VIR_ERR_OPERATION_INVALID, VIR_FROM_STORAGE, "%s", msg);
    case EEXIST:
        if (strstr(msg, "storage volume name"))
            return rpc_err_set(err, VIR_ERR_STORAGE_VOL_EXIST, VIR_FROM_STORAGE,
                               "%s", msg);
        return rpc_err_set(err, VIR_ERR_OPERATION_FAILED, VIR_FROM_STORAGE, "%s", msg);
    case EINVAL:
    case ERANGE:
        return rpc_err_set(err, VIR_ERR_XML_ERROR, VIR_FROM_STORAGE, "%s", msg);
    case ENOTSUP:
        return rpc_err_set(err, VIR_ERR_CONFIG_UNSUPPORTED, VIR_FROM_STORAGE,
                           "%s", msg);
    case ENOMEM:
        return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_STORAGE, "%s", msg);
    default:
        return rpc_err_set(err, VIR_ERR_SYSTEM_ERROR, VIR_FROM_STORAGE, "%s", msg);
    }
}

/* The pool a client names: by uuid first, as libvirt's driver does, and
 * the name must agree. */
static struct storage_pool *pool_get(struct rpc_client *c, const remote_nonnull_storage_pool *rp,
                                     struct rpc_error *err)
{
    struct storage_pool *p = storage_find_uuid(the_driver, (const uint8_t *)rp->uuid);
    if (!p || strcmp(p->name, rp->name) != 0) {
        remote_storage_no_pool(err, "uuid", rp->name);
        return NULL;
    }
    return p;
}

struct storage_pool *remote_storage_pool_active(struct rpc_client *c,
                                                const remote_nonnull_storage_pool *rp,
                                                struct rpc_error *err)
{
    struct storage_pool *p = pool_get(c, rp, err);
    if (p && !p->active) {
        rpc_err_set(err, VIR_ERR_OPERATION_INVALID, VIR_FROM_STORAGE,
                    "storage pool '%s' is not active", p->name);
        return NULL;
    }
    return p;
}

static int make_pool(remote_nonnull_storage_pool *rp, const struct storage_pool *p,
                     struct rpc_error *err)
{
    rp->name = strdup(p->name);
    if (!rp->name)
        return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_STORAGE, "out of memory");
    memcpy(rp->uuid, p->uuid, 16);
    return 0;
}

/* ---- connect-level pool lists ---- */

static bool list_match(const void *ctx, size_t i, unsigned flags)
{
    const struct storage_pool *p = ((const struct storage_driver *)ctx)->pools[i];
    if ((flags & LIST_TYPES) && !(flags & LIST_DIR))
        return false;
    return name_list_state_match(flags, p->active, p->persistent, p->autostart);
}

static int list_make(void *elem, const void *ctx, size_t i)
{
    remote_nonnull_storage_pool *rp = elem;
    const struct storage_pool *p = ((const struct storage_driver *)ctx)->pools[i];
    if (!(rp->name = strdup(p->name)))
        return -ENOMEM;
    memcpy(rp->uuid, p->uuid, 16);
    return 0;
}

static int h_list_all_pools(struct rpc_client *c, const void *args, void *ret,
                            struct rpc_error *err)
{
    const remote_connect_list_all_storage_pools_args *a = args;
    remote_connect_list_all_storage_pools_ret *r = ret;
    struct storage_driver *d = the_driver;
    void *val = NULL;
    int rc = name_list_objects(d->npools, a->flags, a->need_results,
                               sizeof(*r->pools.pools_val), list_match, list_make, d, &val,
                               &r->pools.pools_len, &r->ret);
    r->pools.pools_val = val;
    if (rc < 0)
        return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_STORAGE, "out of memory");
    return 0;
}

static int count_pools(struct rpc_client *c, bool active)
{
    struct storage_driver *d = the_driver;
    int n = 0;
    for (size_t i = 0; i < d->npools; i++)
        n += d->pools[i]->active == active;
    return n;
}

static int h_num_of_pools(struct rpc_client *c, const void *args, void *ret,
                          struct rpc_error *err)
{
    (void)args; (void)err;
    ((remote_connect_num_of_storage_pools_ret *)ret)->num = count_pools(c, true);
    return 0;
}

static int h_num_of_defined_pools(struct rpc_client *c, const void *args, void *ret,
                                  struct rpc_error *err)
{
    (void)args; (void)err;
    ((remote_connect_num_of_storage_pools_ret *)ret)->num = count_pools(c, false);
    return 0;
}

static const char *active_pool(const void *ctx, size_t i)
{
    const struct storage_pool *p = ((const struct storage_driver *)ctx)->pools[i];
    return p->active ? p->name : NULL;
}

static const char *inactive_pool(const void *ctx, size_t i)
{
    const struct storage_pool *p = ((const struct storage_driver *)ctx)->pools[i];
    return p->active ? NULL : p->name;
}

static int list_names(struct rpc_client *c, int max, bool active,
                      remote_connect_list_storage_pools_ret *r, struct rpc_error *err)
{
    struct storage_driver *d = the_driver;
    if (max < 0 || max > REMOTE_STORAGE_POOL_LIST_MAX)
        return rpc_err_set(err, VIR_ERR_RPC, VIR_FROM_RPC, "maxnames > REMOTE_STORAGE_POOL_LIST_MAX");
    if (name_list_fill(d->npools, max, active ? active_pool : inactive_pool, d,
                       &r->names.names_val, &r->names.names_len) < 0)
        return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_STORAGE, "out of memory");
    return 0;
}

static int h_list_pools(struct rpc_client *c, const void *args, void *ret,
                        struct rpc_error *err)
{
    const remote_connect_list_storage_pools_args *a = args;
    return list_names(c, a->maxnames, true, ret, err);
}

static int h_list_defined_pools(struct rpc_client *c, const void *args, void *ret,
                                struct rpc_error *err)
{
    const remote_connect_list_storage_pools_args *a = args;
    return list_names(c, a->maxnames, false, ret, err);
}

/* ---- pool lookups ---- */

static int h_pool_lookup_by_name(struct rpc_client *c, const void *args, void *ret,
                                 struct rpc_error *err)
{
    const remote_storage_pool_lookup_by_name_args *a = args;
    struct storage_pool *p = storage_find_name(the_driver, a->name);
    if (!p)
        return remote_storage_no_pool(err, "name", a->name);
    return make_pool(&((remote_storage_pool_lookup_ret *)ret)->pool, p, err);
}

static int h_pool_lookup_by_uuid(struct rpc_client *c, const void *args, void *ret,
                                 struct rpc_error *err)
{
    const remote_storage_pool_lookup_by_uuid_args *a = args;
    struct storage_pool *p = storage_find_uuid(the_driver, (const uint8_t *)a->uuid);
    if (!p)
        return rpc_err_set(err, VIR_ERR_NO_STORAGE_POOL, VIR_FROM_STORAGE,
                           "no storage pool with matching uuid");
    return make_pool(&((remote_storage_pool_lookup_ret *)ret)->pool, p, err);
}

static int h_pool_lookup_by_volume(struct rpc_client *c, const void *args, void *ret,
                                   struct rpc_error *err)
{
    const remote_storage_pool_lookup_by_volume_args *a = args;
    struct storage_pool *p = storage_find_name(the_driver, a->vol.pool);
    if (!p)
        return remote_storage_no_pool(err, "name", a->vol.pool);
    return make_pool(&((remote_storage_pool_lookup_ret *)ret)->pool, p, err);
}

static int h_pool_lookup_by_target_path(struct rpc_client *c, const void *args, void *ret,
                                        struct rpc_error *err)
{
    const remote_storage_pool_lookup_by_target_path_args *a = args;
    struct storage_pool *p = storage_find_path(the_driver, a->path);
    if (!p || !p->active)
        return remote_storage_no_pool(err, "target path", a->path);
    return make_pool(&((remote_storage_pool_lookup_ret *)ret)->pool, p, err);
}

/* ---- pool life cycle ---- */

/* Tells every client that registered for it that the pool had event: a
 * lifecycle message (370), or a refresh message (373). */
static void emit(struct daemon *dm, const remote_nonnull_storage_pool *rp, int event)
{
    const unsigned char *uuid = (const unsigned char *)rp->uuid;
    if (!dm || !dm->srv)
        return;
    if (event == POOL_EVENT_REFRESH) {
        remote_storage_pool_event_refresh_msg m = { .pool = *rp };
        rpc_server_emit_event(dm->srv, RPC_EVENT_STORAGE_POOL, RPC_POOL_EVENT_ID_REFRESH,
                              uuid, 373, (xdrproc_t)xdr_remote_storage_pool_event_refresh_msg,
                              &m, &m.callbackID);
        return;
    }
    remote_storage_pool_event_lifecycle_msg m = { .pool = *rp, .event = event };
    rpc_server_emit_event(dm->srv, RPC_EVENT_STORAGE_POOL, RPC_POOL_EVENT_ID_LIFECYCLE, uuid,
                          370, (xdrproc_t)xdr_remote_storage_pool_event_lifecycle_msg, &m,
                          &m.callbackID);
}

void remote_storage_emit_refresh(struct daemon *dm, const char *name, const uint8_t uuid[16])
{
    remote_nonnull_storage_pool rp = { .name = (char *)name };
    memcpy(rp.uuid, uuid, 16);
    emit(dm, &rp, POOL_EVENT_REFRESH);
}

/* Fills the reply with p and tells the clients it had event. */
static int reply_pool(struct rpc_client *c, remote_nonnull_storage_pool *rp,
                      const struct storage_pool *p, int event, struct rpc_error *err)
{
    if (make_pool(rp, p, err) < 0)
        return -1;
    emit(rpc_client_daemon(c), rp, event);
    return 0;
}

static int h_pool_define(struct rpc_client *c, const void *args, void *ret,
                         struct rpc_error *err)
{
    const remote_storage_pool_define_xml_args *a = args;
    struct storage_pool *p;
    struct err e = {0};
    if (a->flags & ~1u)
        return rpc_err_set(err, VIR_ERR_INVALID_ARG, VIR_FROM_STORAGE,
                           "unsupported flags (0x%x)", a->flags);
    if (storage_define(the_driver, a->xml, &p, &e) < 0)
        return remote_storage_fail(err, &e);
    log_info("storage pool '%s' defined (%s)", p->name, p->path);
    return reply_pool(c, &((remote_storage_pool_define_xml_ret *)ret)->pool, p,
                      POOL_EVENT_DEFINED, err);
}

static int h_pool_create_xml(struct rpc_client *c, const void *args, void *ret,
                             struct rpc_error *err)
{
    const remote_storage_pool_create_xml_args *a = args;
    struct storage_pool *p;
    struct err e = {0};
    if (storage_create_transient(the_driver, a->xml, &p, &e) < 0)
        return remote_storage_fail(err, &e);
    return reply_pool(c, &((remote_storage_pool_create_xml_ret *)ret)->pool, p,
                      POOL_EVENT_STARTED, err);
}

/* Runs one operation on a pool (build, create (start), refresh, delete,
 * destroy, undefine) and then sends the event it makes. The event names
 * the pool as the client did: pool_get() checked that name and uuid agree,
 * and a transient pool is gone once destroyed. */
static int pool_op(struct rpc_client *c, const remote_nonnull_storage_pool *rp,
                   struct rpc_error *err,
                   int (*op)(struct storage_driver *, struct storage_pool *, struct err *),
                   int event)
{
    struct storage_pool *p = pool_get(c, rp, err);
    struct err e = {0};
    if (!p)
        return -1;
    if (op(the_driver, p, &e) < 0)
        return remote_storage_fail(err, &e);
    emit(rpc_client_daemon(c), rp, event);
    return 0;
}

static int op_build(struct storage_driver *d, struct storage_pool *p, struct err *e)
{
    (void)d;
    return storage_build(p, e);
}

static int op_delete(struct storage_driver *d, struct storage_pool *p, struct err *e)
{
    (void)d;
    return storage_delete(p, e);
}

static int op_refresh(struct storage_driver *d, struct storage_pool *p, struct err *e)
{
    (void)d;
    /* Volumes are read from the folder on every call: nothing is cached. */
    if (!p->active)
        return err_set(e, EBUSY, "storage pool '%s' is not active", p->name);
    return 0;
}

static int h_pool_build(struct rpc_client *c, const void *args, void *ret,
                        struct rpc_error *err)
{
    (void)ret;
    return pool_op(c, &((const remote_storage_pool_flags_args *)args)->pool, err, op_build,
                   POOL_EVENT_CREATED);
}

static int h_pool_create(struct rpc_client *c, const void *args, void *ret,
                         struct rpc_error *err)
{
    (void)ret;
    return pool_op(c, &((const remote_storage_pool_flags_args *)args)->pool, err, storage_start,
                   POOL_EVENT_STARTED);
}

static int h_pool_refresh(struct rpc_client *c, const void *args, void *ret,
                          struct rpc_error *err)
{
    (void)ret;
    return pool_op(c, &((const remote_storage_pool_flags_args *)args)->pool, err, op_refresh,
                   POOL_EVENT_REFRESH);
}

static int h_pool_delete(struct rpc_client *c, const void *args, void *ret,
                         struct rpc_error *err)
{
    (void)ret;
    return pool_op(c, &((const remote_storage_pool_flags_args *)args)->pool, err, op_delete,
                   POOL_EVENT_DELETED);
}

static int h_pool_destroy(struct rpc_client *c, const void *args, void *ret,
                          struct rpc_error *err)
{
    (void)ret;
    return pool_op(c, &((const remote_storage_pool_args *)args)->pool, err, storage_destroy,
                   POOL_EVENT_STOPPED);
}

static int h_pool_undefine(struct rpc_client *c, const void *args, void *ret,
                           struct rpc_error *err)
{
    (void)ret;
    return pool_op(c, &((const remote_storage_pool_args *)args)->pool, err, storage_undefine,
                   POOL_EVENT_UNDEFINED);
}

/* ---- pool state ---- */

static int h_pool_get_info(struct rpc_client *c, const void *args, void *ret,
                           struct rpc_error *err)
{
    const remote_storage_pool_args *a = args;
    remote_storage_pool_get_info_ret *r = ret;
    struct storage_pool *p = pool_get(c, &a->pool, err);
    struct storage_pool_usage u;
    struct err e = {0};
    if (!p)
        return -1;
    if (storage_usage(p, &u, &e) < 0)
        return remote_storage_fail(err, &e);
    r->state = p->active ? POOL_RUNNING : POOL_INACTIVE;
    r->capacity = u.capacity;
    r->allocation = u.allocation;
    r->available = u.available;
    return 0;
}

static int h_pool_get_xml(struct rpc_client *c, const void *args, void *ret,
                          struct rpc_error *err)
{
    const remote_storage_pool_get_xml_desc_args *a = args;
    struct storage_pool *p = pool_get(c, &a->pool, err);
    struct storage_pool_usage u;
    struct err e = {0};
    if (!p)
        return -1;
    if (storage_usage(p, &u, &e) < 0)
        return remote_storage_fail(err, &e);
    /* Flag 1 (VIR_STORAGE_XML_INACTIVE): the definition as kept on disk. */
    char *xml = storage_pool_format(p, (a->flags & 1) ? NULL : &u);
    if (!xml)
        return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_STORAGE, "out of memory");
    ((remote_storage_xml_ret *)ret)->xml = xml;
    return 0;
}

enum pool_flag { P_AUTOSTART, P_ACTIVE, P_PERSISTENT };

static int pool_flag(struct rpc_client *c, const void *args, void *ret, enum pool_flag f,
                     struct rpc_error *err)
{
    struct storage_pool *p = pool_get(c, &((const remote_storage_pool_args *)args)->pool, err);
    if (!p)
        return -1;
    ((remote_storage_int_ret *)ret)->value =
        f == P_AUTOSTART ? p->autostart : f == P_ACTIVE ? p->active : p->persistent;
    return 0;
}

static int h_pool_get_autostart(struct rpc_client *c, const void *args, void *ret,
                                struct rpc_error *err)
{
    return pool_flag(c, args, ret, P_AUTOSTART, err);
}

static int h_pool_set_autostart(struct rpc_client *c, const void *args, void *ret,
                                struct rpc_error *err)
{
    const remote_storage_pool_set_autostart_args *a = args;
    struct storage_pool *p = pool_get(c, &a->pool, err);
    struct err e = {0};
    (void)ret;
    if (!p)
        return -1;
    if (storage_set_autostart(the_driver, p, a->autostart != 0, &e) < 0)
        return remote_storage_fail(err, &e);
    return 0;
}

static int h_pool_is_active(struct rpc_client *c, const void *args, void *ret,
                            struct rpc_error *err)
{
    return pool_flag(c, args, ret, P_ACTIVE, err);
}

static int h_pool_is_persistent(struct rpc_client *c, const void *args, void *ret,
                                struct rpc_error *err)
{
    return pool_flag(c, args, ret, P_PERSISTENT, err);
}

/* ---- the daemon's side ---- */

int remote_storage_init(struct daemon *dm, struct err *e)
{
    struct storage_driver *d = calloc(1, sizeof(*d));
    if (!d)
        return err_set(e, ENOMEM, "out of memory");
    int r = storage_init(d, dm->paths.config_dir, dm->paths.run_dir, e);
    if (r < 0) {
        free(d);
        return r;
    }
    /* --root DIR shows as a state folder DIR/var/lib/cvirt. */
    const char *tail = "/var/lib/cvirt";
    size_t len = strlen(dm->paths.state_dir), tl = strlen(tail);
    if (dm->privileged && len > tl && !strcmp(dm->paths.state_dir + len - tl, tail)) {
        d->root = strndup(dm->paths.state_dir, len - tl);
        if (!d->root) {
            storage_fini(d);
            free(d);
            return err_set(e, ENOMEM, "out of memory");
        }
    }
    the_driver = d;
    return 0;
}

void remote_storage_fini(struct daemon *dm)
{
    (void)dm;
    if (!the_driver)
        return;
    storage_fini(the_driver);
    free(the_driver);
    the_driver = NULL;
}

#define RO RPC_PROC_READONLY

const struct rpc_proc remote_storage_procs[] = {
    RPC_PROC(71, "virConnectNumOfStoragePools", void, connect_num_of_storage_pools_ret,
             h_num_of_pools, RO),
    RPC_PROC(72, "virConnectListStoragePools", connect_list_storage_pools_args,
             connect_list_storage_pools_ret, h_list_pools, RO),
    RPC_PROC(73, "virConnectNumOfDefinedStoragePools", void,
             connect_num_of_storage_pools_ret, h_num_of_defined_pools, RO),
    RPC_PROC(74, "virConnectListDefinedStoragePools", connect_list_storage_pools_args,
             connect_list_storage_pools_ret, h_list_defined_pools, RO),
    RPC_PROC(76, "virStoragePoolCreateXML", storage_pool_create_xml_args,
             storage_pool_create_xml_ret, h_pool_create_xml, 0),
    RPC_PROC(77, "virStoragePoolDefineXML", storage_pool_define_xml_args,
             storage_pool_define_xml_ret, h_pool_define, 0),
    RPC_PROC(78, "virStoragePoolCreate", storage_pool_flags_args, void, h_pool_create, 0),
    RPC_PROC(79, "virStoragePoolBuild", storage_pool_flags_args, void, h_pool_build, 0),
    RPC_PROC(80, "virStoragePoolDestroy", storage_pool_args, void, h_pool_destroy, 0),
    RPC_PROC(81, "virStoragePoolDelete", storage_pool_flags_args, void, h_pool_delete, 0),
    RPC_PROC(82, "virStoragePoolUndefine", storage_pool_args, void, h_pool_undefine, 0),
    RPC_PROC(83, "virStoragePoolRefresh", storage_pool_flags_args, void, h_pool_refresh, 0),
    RPC_PROC(84, "virStoragePoolLookupByName", storage_pool_lookup_by_name_args,
             storage_pool_lookup_ret, h_pool_lookup_by_name, RO),
    RPC_PROC(85, "virStoragePoolLookupByUUID", storage_pool_lookup_by_uuid_args,
             storage_pool_lookup_ret, h_pool_lookup_by_uuid, RO),
    RPC_PROC(86, "virStoragePoolLookupByVolume", storage_pool_lookup_by_volume_args,
             storage_pool_lookup_ret, h_pool_lookup_by_volume, RO),
    RPC_PROC(87, "virStoragePoolGetInfo", storage_pool_args, storage_pool_get_info_ret,
             h_pool_get_info, RO),
    RPC_PROC(88, "virStoragePoolGetXMLDesc", storage_pool_get_xml_desc_args,
             storage_xml_ret, h_pool_get_xml, RO),
    RPC_PROC(89, "virStoragePoolGetAutostart", storage_pool_args, storage_int_ret,
             h_pool_get_autostart, RO),
    RPC_PROC(90, "virStoragePoolSetAutostart", storage_pool_set_autostart_args, void,
             h_pool_set_autostart, 0),
    RPC_PROC(91, "virStoragePoolNumOfVolumes", storage_pool_args, storage_int_ret,
             remote_storage_pool_num_of_volumes, RO),
    RPC_PROC(92, "virStoragePoolListVolumes", storage_pool_list_volumes_args,
             storage_pool_list_volumes_ret, remote_storage_pool_list_volumes, RO),
    RPC_PROC(93, "virStorageVolCreateXML", storage_vol_create_xml_args, storage_vol_ret,
             remote_storage_vol_create_xml, 0),
    RPC_PROC(94, "virStorageVolDelete", storage_vol_flags_args, void, remote_storage_vol_delete, 0),
    RPC_PROC(95, "virStorageVolLookupByName", storage_vol_lookup_by_name_args,
             storage_vol_ret, remote_storage_vol_lookup_by_name, RO),
    RPC_PROC(96, "virStorageVolLookupByKey", storage_vol_lookup_by_key_args,
             storage_vol_ret, remote_storage_vol_lookup_by_key, RO),
    RPC_PROC(97, "virStorageVolLookupByPath", storage_vol_lookup_by_path_args,
             storage_vol_lookup_by_path_ret, remote_storage_vol_lookup_by_path, RO),
    RPC_PROC(98, "virStorageVolGetInfo", storage_vol_args, storage_vol_get_info_ret,
             remote_storage_vol_get_info, RO),
    RPC_PROC(99, "virStorageVolGetXMLDesc", storage_vol_flags_args, storage_xml_ret,
             remote_storage_vol_get_xml, RO),
    RPC_PROC(100, "virStorageVolGetPath", storage_vol_args, storage_vol_get_path_ret,
             remote_storage_vol_get_path, RO),
    RPC_PROC(125, "virStorageVolCreateXMLFrom", storage_vol_create_xml_from_args,
             storage_vol_ret, remote_storage_vol_create_xml_from, 0),
    RPC_PROC(154, "virStoragePoolIsActive", storage_pool_args, storage_int_ret,
             h_pool_is_active, RO),
    RPC_PROC(155, "virStoragePoolIsPersistent", storage_pool_args, storage_int_ret,
             h_pool_is_persistent, RO),
    RPC_PROC(208, "virStorageVolUpload", storage_vol_upload_args, void,
             remote_storage_upload, 0),
    RPC_PROC(209, "virStorageVolDownload", storage_vol_download_args, void,
             remote_storage_download, 0),
    RPC_PROC(281, "virConnectListAllStoragePools", connect_list_all_storage_pools_args,
             connect_list_all_storage_pools_ret, h_list_all_pools, RO),
    RPC_PROC(282, "virStoragePoolListAllVolumes", storage_pool_list_all_volumes_args,
             storage_pool_list_all_volumes_ret, remote_storage_pool_list_all_volumes, RO),
    RPC_PROC(391, "virStoragePoolLookupByTargetPath", storage_pool_lookup_by_target_path_args,
             storage_pool_lookup_ret, h_pool_lookup_by_target_path, RO),
};

const size_t remote_storage_nprocs = sizeof(remote_storage_procs) / sizeof(remote_storage_procs[0]);
