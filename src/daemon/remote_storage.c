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
#include "util/log.h"

/* virErrorNumber values beyond the ones wire.h names; their libvirt text
 * goes in front of the detail here. */
#define VIR_ERR_INVALID_STORAGE_POOL 46
/* virConnectListAllStoragePoolsFlags */
#define LIST_INACTIVE     (1u << 0)
#define LIST_ACTIVE       (1u << 1)
#define LIST_PERSISTENT   (1u << 2)
#define LIST_TRANSIENT    (1u << 3)
#define LIST_AUTOSTART    (1u << 4)
#define LIST_NO_AUTOSTART (1u << 5)
#define LIST_DIR          (1u << 6)
#define LIST_TYPES        (~0u << 6)   /* dir and every other pool type */

/* virStoragePoolState */
#define POOL_INACTIVE 0
#define POOL_RUNNING  2

/* One daemon per process: struct daemon has no slot for the storage
 * driver, so it lives here between remote_storage_init and _fini. */
static struct storage_driver *the_driver;

static struct storage_driver *drv_of(struct rpc_client *c)
{
    (void)c;
    return the_driver;
}

static int no_pool(struct rpc_error *err, const char *what, const char *name)
{
    return rpc_err_set(err, VIR_ERR_NO_STORAGE_POOL, VIR_FROM_STORAGE,
                       "no storage pool with matching %s '%s'",
                       what, name);
}

/* One error reply from a struct err of storage.c, by the kind of failure. */
static int fail(struct rpc_error *err, const struct err *e)
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
    struct storage_pool *p = storage_find_uuid(drv_of(c), (const uint8_t *)rp->uuid);
    if (!p || strcmp(p->name, rp->name) != 0) {
        no_pool(err, "uuid", rp->name);
        return NULL;
    }
    return p;
}

static struct storage_pool *pool_active(struct rpc_client *c,
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

static int make_vol(remote_nonnull_storage_vol *rv, const struct storage_pool *p,
                    const struct storage_vol *v, struct rpc_error *err)
{
    rv->pool = strdup(p->name);
    rv->name = strdup(v->name);
    rv->key = strdup(v->path);
    if (!rv->pool || !rv->name || !rv->key)
        return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_STORAGE, "out of memory");
    return 0;
}

/* The volume a client names: its pool must be active and the file there. */
int remote_storage_vol_get(struct rpc_client *c, const remote_nonnull_storage_vol *rv,
                   struct storage_pool **pool, struct storage_vol *v, struct rpc_error *err)
{
    struct storage_pool *p = storage_find_name(drv_of(c), rv->pool);
    if (!p)
        return no_pool(err, "name", rv->pool);
    if (!p->active)
        return rpc_err_set(err, VIR_ERR_OPERATION_INVALID, VIR_FROM_STORAGE,
                           "storage pool '%s' is not active", p->name);
    struct err e = {0};
    if (storage_vol_get(p->path, rv->name, v, &e) < 0)
        return rpc_err_set(err, VIR_ERR_NO_STORAGE_VOL, VIR_FROM_STORAGE,
                           "no storage vol with matching name '%s'", rv->name);
    if (pool)
        *pool = p;
    return 0;
}

/* ---- connect-level pool lists ---- */

static bool list_match(const struct storage_pool *p, unsigned flags)
{
    if ((flags & (LIST_ACTIVE | LIST_INACTIVE)) &&
        !((flags & LIST_ACTIVE && p->active) || (flags & LIST_INACTIVE && !p->active)))
        return false;
    if ((flags & (LIST_PERSISTENT | LIST_TRANSIENT)) &&
        !((flags & LIST_PERSISTENT && p->persistent) ||
          (flags & LIST_TRANSIENT && !p->persistent)))
        return false;
    if ((flags & (LIST_AUTOSTART | LIST_NO_AUTOSTART)) &&
        !((flags & LIST_AUTOSTART && p->autostart) ||
          (flags & LIST_NO_AUTOSTART && !p->autostart)))
        return false;
    if ((flags & LIST_TYPES) && !(flags & LIST_DIR))
        return false;
    return true;
}

static int h_list_all_pools(struct rpc_client *c, const void *args, void *ret,
                            struct rpc_error *err)
{
    const remote_connect_list_all_storage_pools_args *a = args;
    remote_connect_list_all_storage_pools_ret *r = ret;
    struct storage_driver *d = drv_of(c);
    unsigned n = 0;
    if (a->need_results && d->npools) {
        r->pools.pools_val = calloc(d->npools, sizeof(*r->pools.pools_val));
        if (!r->pools.pools_val)
            return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_STORAGE, "out of memory");
    }
    for (size_t i = 0; i < d->npools; i++) {
        if (!list_match(d->pools[i], a->flags))
            continue;
        if (a->need_results) {
            if (make_pool(&r->pools.pools_val[n], d->pools[i], err) < 0)
                return -1;
            r->pools.pools_len = n + 1;
        }
        n++;
    }
    r->ret = n;
    return 0;
}

static int count_pools(struct rpc_client *c, bool active)
{
    struct storage_driver *d = drv_of(c);
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
    struct storage_driver *d = drv_of(c);
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
    struct storage_pool *p = storage_find_name(drv_of(c), a->name);
    if (!p)
        return no_pool(err, "name", a->name);
    return make_pool(&((remote_storage_pool_lookup_ret *)ret)->pool, p, err);
}

static int h_pool_lookup_by_uuid(struct rpc_client *c, const void *args, void *ret,
                                 struct rpc_error *err)
{
    const remote_storage_pool_lookup_by_uuid_args *a = args;
    struct storage_pool *p = storage_find_uuid(drv_of(c), (const uint8_t *)a->uuid);
    if (!p)
        return rpc_err_set(err, VIR_ERR_NO_STORAGE_POOL, VIR_FROM_STORAGE,
                           "no storage pool with matching uuid");
    return make_pool(&((remote_storage_pool_lookup_ret *)ret)->pool, p, err);
}

static int h_pool_lookup_by_volume(struct rpc_client *c, const void *args, void *ret,
                                   struct rpc_error *err)
{
    const remote_storage_pool_lookup_by_volume_args *a = args;
    struct storage_pool *p = storage_find_name(drv_of(c), a->vol.pool);
    if (!p)
        return no_pool(err, "name", a->vol.pool);
    return make_pool(&((remote_storage_pool_lookup_ret *)ret)->pool, p, err);
}

static int h_pool_lookup_by_target_path(struct rpc_client *c, const void *args, void *ret,
                                        struct rpc_error *err)
{
    const remote_storage_pool_lookup_by_target_path_args *a = args;
    struct storage_pool *p = storage_find_path(drv_of(c), a->path);
    if (!p || !p->active)
        return no_pool(err, "target path", a->path);
    return make_pool(&((remote_storage_pool_lookup_ret *)ret)->pool, p, err);
}

/* ---- pool life cycle ---- */

static int h_pool_define(struct rpc_client *c, const void *args, void *ret,
                         struct rpc_error *err)
{
    const remote_storage_pool_define_xml_args *a = args;
    struct storage_pool *p;
    struct err e = {0};
    if (a->flags & ~1u)
        return rpc_err_set(err, VIR_ERR_INVALID_ARG, VIR_FROM_STORAGE,
                           "unsupported flags (0x%x)", a->flags);
    if (storage_define(drv_of(c), a->xml, &p, &e) < 0)
        return fail(err, &e);
    log_info("storage pool '%s' defined (%s)", p->name, p->path);
    return make_pool(&((remote_storage_pool_define_xml_ret *)ret)->pool, p, err);
}

static int h_pool_create_xml(struct rpc_client *c, const void *args, void *ret,
                             struct rpc_error *err)
{
    const remote_storage_pool_create_xml_args *a = args;
    struct storage_pool *p;
    struct err e = {0};
    if (storage_create_transient(drv_of(c), a->xml, &p, &e) < 0)
        return fail(err, &e);
    return make_pool(&((remote_storage_pool_create_xml_ret *)ret)->pool, p, err);
}

/* Runs one operation on a pool: build, create (start), refresh, delete. */
static int pool_op(struct rpc_client *c, const remote_nonnull_storage_pool *rp,
                   struct rpc_error *err,
                   int (*op)(struct storage_driver *, struct storage_pool *, struct err *))
{
    struct storage_pool *p = pool_get(c, rp, err);
    struct err e = {0};
    if (!p)
        return -1;
    if (op(drv_of(c), p, &e) < 0)
        return fail(err, &e);
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
    return pool_op(c, &((const remote_storage_pool_flags_args *)args)->pool, err, op_build);
}

static int h_pool_create(struct rpc_client *c, const void *args, void *ret,
                         struct rpc_error *err)
{
    (void)ret;
    return pool_op(c, &((const remote_storage_pool_flags_args *)args)->pool, err, storage_start);
}

static int h_pool_refresh(struct rpc_client *c, const void *args, void *ret,
                          struct rpc_error *err)
{
    (void)ret;
    return pool_op(c, &((const remote_storage_pool_flags_args *)args)->pool, err, op_refresh);
}

static int h_pool_delete(struct rpc_client *c, const void *args, void *ret,
                         struct rpc_error *err)
{
    (void)ret;
    return pool_op(c, &((const remote_storage_pool_flags_args *)args)->pool, err, op_delete);
}

static int h_pool_destroy(struct rpc_client *c, const void *args, void *ret,
                          struct rpc_error *err)
{
    (void)ret;
    return pool_op(c, &((const remote_storage_pool_args *)args)->pool, err, storage_destroy);
}

static int h_pool_undefine(struct rpc_client *c, const void *args, void *ret,
                           struct rpc_error *err)
{
    (void)ret;
    return pool_op(c, &((const remote_storage_pool_args *)args)->pool, err, storage_undefine);
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
        return fail(err, &e);
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
        return fail(err, &e);
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
    if (storage_set_autostart(drv_of(c), p, a->autostart != 0, &e) < 0)
        return fail(err, &e);
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

/* ---- volume lists ---- */

static int list_vols(struct rpc_client *c, const remote_nonnull_storage_pool *rp,
                     struct storage_pool **pool, struct storage_vol **v, size_t *n,
                     struct rpc_error *err)
{
    struct storage_pool *p = pool_active(c, rp, err);
    struct err e = {0};
    if (!p)
        return -1;
    if (storage_vol_list(p->path, v, n, &e) < 0)
        return fail(err, &e);
    if (pool)
        *pool = p;
    return 0;
}

static int h_pool_num_of_volumes(struct rpc_client *c, const void *args, void *ret,
                                 struct rpc_error *err)
{
    const remote_storage_pool_args *a = args;
    struct storage_vol *v;
    size_t n;
    if (list_vols(c, &a->pool, NULL, &v, &n, err) < 0)
        return -1;
    storage_vol_list_free(v, n);
    ((remote_storage_int_ret *)ret)->value = n > INT32_MAX ? INT32_MAX : (int)n;
    return 0;
}

static int h_pool_list_volumes(struct rpc_client *c, const void *args, void *ret,
                               struct rpc_error *err)
{
    const remote_storage_pool_list_volumes_args *a = args;
    remote_storage_pool_list_volumes_ret *r = ret;
    struct storage_vol *v;
    size_t n;
    if (a->maxnames < 0 || a->maxnames > REMOTE_STORAGE_VOL_LIST_MAX)
        return rpc_err_set(err, VIR_ERR_RPC, VIR_FROM_RPC,
                           "maxnames > REMOTE_STORAGE_VOL_LIST_MAX");
    if (list_vols(c, &a->pool, NULL, &v, &n, err) < 0)
        return -1;
    if (n > (size_t)a->maxnames)
        n = (size_t)a->maxnames;
    int rc = 0;
    if (n && !(r->names.names_val = calloc(n, sizeof(char *))))
        rc = rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_STORAGE, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!(r->names.names_val[i] = strdup(v[i].name)))
            rc = rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_STORAGE, "out of memory");
        else
            r->names.names_len = (unsigned)i + 1;
    }
    storage_vol_list_free(v, n);
    return rc;
}

static int h_pool_list_all_volumes(struct rpc_client *c, const void *args, void *ret,
                                   struct rpc_error *err)
{
    const remote_storage_pool_list_all_volumes_args *a = args;
    remote_storage_pool_list_all_volumes_ret *r = ret;
    struct storage_pool *p;
    struct storage_vol *v;
    size_t n;
    if (list_vols(c, &a->pool, &p, &v, &n, err) < 0)
        return -1;
    if (n > REMOTE_STORAGE_VOL_LIST_MAX)
        n = REMOTE_STORAGE_VOL_LIST_MAX;
    int rc = 0;
    if (a->need_results && n && !(r->vols.vols_val = calloc(n, sizeof(*r->vols.vols_val))))
        rc = rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_STORAGE, "out of memory");
    for (size_t i = 0; rc == 0 && a->need_results && i < n; i++) {
        r->vols.vols_len = (unsigned)i + 1;
        rc = make_vol(&r->vols.vols_val[i], p, &v[i], err);
    }
    r->ret = (unsigned)n;
    storage_vol_list_free(v, n);
    return rc;
}

/* ---- volume lookups ---- */

static int h_vol_lookup_by_name(struct rpc_client *c, const void *args, void *ret,
                                struct rpc_error *err)
{
    const remote_storage_vol_lookup_by_name_args *a = args;
    struct storage_pool *p = pool_active(c, &a->pool, err);
    struct storage_vol v;
    struct err e = {0};
    if (!p)
        return -1;
    if (storage_vol_get(p->path, a->name, &v, &e) < 0)
        return rpc_err_set(err, VIR_ERR_NO_STORAGE_VOL, VIR_FROM_STORAGE,
                           "no storage vol with matching name '%s'", a->name);
    int rc = make_vol(&((remote_storage_vol_ret *)ret)->vol, p, &v, err);
    storage_vol_clear(&v);
    return rc;
}

/* Keys are paths, so both lookups are one. */
static int lookup_path(struct rpc_client *c, const char *path, const char *what,
                       remote_nonnull_storage_vol *rv, struct rpc_error *err)
{
    const char *name;
    char *clean = storage_clean_path(path);
    if (!clean)
        return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_STORAGE, "out of memory");
    struct storage_pool *p = storage_pool_of_path(drv_of(c), clean, &name);
    struct storage_vol v;
    struct err e = {0};
    int found = p ? storage_vol_get(p->path, name, &v, &e) : -ENOENT;
    free(clean);
    if (found < 0)
        return rpc_err_set(err, VIR_ERR_NO_STORAGE_VOL, VIR_FROM_STORAGE,
                           "no storage vol with matching %s '%s'", what, path);
    int rc = make_vol(rv, p, &v, err);
    storage_vol_clear(&v);
    return rc;
}

static int h_vol_lookup_by_key(struct rpc_client *c, const void *args, void *ret,
                               struct rpc_error *err)
{
    const remote_storage_vol_lookup_by_key_args *a = args;
    return lookup_path(c, a->key, "key", &((remote_storage_vol_ret *)ret)->vol, err);
}

static int h_vol_lookup_by_path(struct rpc_client *c, const void *args, void *ret,
                                struct rpc_error *err)
{
    const remote_storage_vol_lookup_by_path_args *a = args;
    return lookup_path(c, a->path, "path",
                       &((remote_storage_vol_lookup_by_path_ret *)ret)->vol, err);
}

/* ---- volumes ---- */

static int h_vol_create_xml(struct rpc_client *c, const void *args, void *ret,
                            struct rpc_error *err)
{
    const remote_storage_vol_create_xml_args *a = args;
    struct storage_pool *p = pool_active(c, &a->pool, err);
    struct storage_vol_def def;
    struct storage_vol v;
    struct err e = {0};
    if (!p)
        return -1;
    /* VIR_STORAGE_VOL_CREATE_PREALLOC_METADATA; reflinks (2) need a source. */
    if (a->flags & ~1u)
        return rpc_err_set(err, VIR_ERR_INVALID_ARG, VIR_FROM_STORAGE,
                           "invalid argument: unsupported flags (0x%x)", a->flags & ~1u);
    if (storage_vol_parse(a->xml, &def, &e) < 0)
        return fail(err, &e);
    def.prealloc = a->flags & 1u;
    int rc = storage_vol_create(p->path, &def, &v, &e);
    storage_vol_def_clear(&def);
    if (rc < 0)
        return fail(err, &e);
    log_info("volume %s created (%s, %llu bytes)", v.path, v.format,
             (unsigned long long)v.capacity);
    rc = make_vol(&((remote_storage_vol_ret *)ret)->vol, p, &v, err);
    storage_vol_clear(&v);
    return rc;
}

static int h_vol_create_xml_from(struct rpc_client *c, const void *args, void *ret,
                                 struct rpc_error *err)
{
    const remote_storage_vol_create_xml_from_args *a = args;
    struct storage_pool *p = pool_active(c, &a->pool, err);
    struct storage_vol_def def;
    struct storage_vol src, v;
    struct err e = {0};
    if (!p)
        return -1;
    if (a->flags)
        return rpc_err_set(err, VIR_ERR_INVALID_ARG, VIR_FROM_STORAGE,
                           "invalid argument: unsupported flags (0x%x)", a->flags);
    if (remote_storage_vol_get(c, &a->clonevol, NULL, &src, err) < 0)
        return -1;
    int rc = storage_vol_parse(a->xml, &def, &e);
    if (rc == 0) {
        rc = storage_vol_create_from(p->path, &def, src.path, &v, &e);
        storage_vol_def_clear(&def);
    }
    if (rc < 0) {
        storage_vol_clear(&src);
        return fail(err, &e);
    }
    log_info("volume %s created from %s", v.path, src.path);
    storage_vol_clear(&src);
    rc = make_vol(&((remote_storage_vol_ret *)ret)->vol, p, &v, err);
    storage_vol_clear(&v);
    return rc;
}

static int h_vol_delete(struct rpc_client *c, const void *args, void *ret,
                        struct rpc_error *err)
{
    const remote_storage_vol_flags_args *a = args;
    struct storage_pool *p;
    struct storage_vol v;
    struct err e = {0};
    (void)ret;
    if (remote_storage_vol_get(c, &a->vol, &p, &v, err) < 0)
        return -1;
    storage_vol_clear(&v);
    if (storage_vol_delete(p->path, a->vol.name, &e) < 0)
        return fail(err, &e);
    log_info("volume %s/%s deleted", p->path, a->vol.name);
    return 0;
}

static int h_vol_get_info(struct rpc_client *c, const void *args, void *ret,
                          struct rpc_error *err)
{
    const remote_storage_vol_args *a = args;
    remote_storage_vol_get_info_ret *r = ret;
    struct storage_vol v;
    if (remote_storage_vol_get(c, &a->vol, NULL, &v, err) < 0)
        return -1;
    r->type = 0;        /* VIR_STORAGE_VOL_FILE */
    r->capacity = v.capacity;
    r->allocation = v.allocation;
    storage_vol_clear(&v);
    return 0;
}

static int h_vol_get_xml(struct rpc_client *c, const void *args, void *ret,
                         struct rpc_error *err)
{
    const remote_storage_vol_flags_args *a = args;
    struct storage_vol v;
    if (remote_storage_vol_get(c, &a->vol, NULL, &v, err) < 0)
        return -1;
    char *xml = storage_vol_format(&v);
    storage_vol_clear(&v);
    if (!xml)
        return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_STORAGE, "out of memory");
    ((remote_storage_xml_ret *)ret)->xml = xml;
    return 0;
}

static int h_vol_get_path(struct rpc_client *c, const void *args, void *ret,
                          struct rpc_error *err)
{
    const remote_storage_vol_args *a = args;
    struct storage_vol v;
    if (remote_storage_vol_get(c, &a->vol, NULL, &v, err) < 0)
        return -1;
    ((remote_storage_vol_get_path_ret *)ret)->name = v.path;
    v.path = NULL;
    return 0;
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
             h_pool_num_of_volumes, RO),
    RPC_PROC(92, "virStoragePoolListVolumes", storage_pool_list_volumes_args,
             storage_pool_list_volumes_ret, h_pool_list_volumes, RO),
    RPC_PROC(93, "virStorageVolCreateXML", storage_vol_create_xml_args, storage_vol_ret,
             h_vol_create_xml, 0),
    RPC_PROC(94, "virStorageVolDelete", storage_vol_flags_args, void, h_vol_delete, 0),
    RPC_PROC(95, "virStorageVolLookupByName", storage_vol_lookup_by_name_args,
             storage_vol_ret, h_vol_lookup_by_name, RO),
    RPC_PROC(96, "virStorageVolLookupByKey", storage_vol_lookup_by_key_args,
             storage_vol_ret, h_vol_lookup_by_key, RO),
    RPC_PROC(97, "virStorageVolLookupByPath", storage_vol_lookup_by_path_args,
             storage_vol_lookup_by_path_ret, h_vol_lookup_by_path, RO),
    RPC_PROC(98, "virStorageVolGetInfo", storage_vol_args, storage_vol_get_info_ret,
             h_vol_get_info, RO),
    RPC_PROC(99, "virStorageVolGetXMLDesc", storage_vol_flags_args, storage_xml_ret,
             h_vol_get_xml, RO),
    RPC_PROC(100, "virStorageVolGetPath", storage_vol_args, storage_vol_get_path_ret,
             h_vol_get_path, RO),
    RPC_PROC(125, "virStorageVolCreateXMLFrom", storage_vol_create_xml_from_args,
             storage_vol_ret, h_vol_create_xml_from, 0),
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
             storage_pool_list_all_volumes_ret, h_pool_list_all_volumes, RO),
    RPC_PROC(391, "virStoragePoolLookupByTargetPath", storage_pool_lookup_by_target_path_args,
             storage_pool_lookup_ret, h_pool_lookup_by_target_path, RO),
};

const size_t remote_storage_nprocs = sizeof(remote_storage_procs) / sizeof(remote_storage_procs[0]);
