/* The volume procedures of the remote protocol: listing a pool's volumes,
 * finding, creating, copying and deleting them, their info and XML. The
 * pool must be active, as for libvirtd's storage driver. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"
#include "daemon/storage.h"
#include "daemon/rpc/dispatch.h"
#include "util/log.h"

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
                           struct storage_pool **pool, struct storage_vol *v,
                           struct rpc_error *err)
{
    struct storage_pool *p = storage_find_name(remote_storage_driver(), rv->pool);
    if (!p)
        return remote_storage_no_pool(err, "name", rv->pool);
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

/* ---- volume lists ---- */

static int list_vols(struct rpc_client *c, const remote_nonnull_storage_pool *rp,
                     struct storage_pool **pool, struct storage_vol **v, size_t *n,
                     struct rpc_error *err)
{
    struct storage_pool *p = remote_storage_pool_active(c, rp, err);
    struct err e = {0};
    if (!p)
        return -1;
    if (storage_vol_list(p->path, v, n, &e) < 0)
        return remote_storage_fail(err, &e);
    if (pool)
        *pool = p;
    return 0;
}

int remote_storage_pool_num_of_volumes(struct rpc_client *c, const void *args, void *ret,
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

int remote_storage_pool_list_volumes(struct rpc_client *c, const void *args, void *ret,
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

int remote_storage_pool_list_all_volumes(struct rpc_client *c, const void *args, void *ret,
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

int remote_storage_vol_lookup_by_name(struct rpc_client *c, const void *args, void *ret,
                                      struct rpc_error *err)
{
    const remote_storage_vol_lookup_by_name_args *a = args;
    struct storage_pool *p = remote_storage_pool_active(c, &a->pool, err);
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
    struct storage_pool *p = storage_pool_of_path(remote_storage_driver(), clean, &name);
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

int remote_storage_vol_lookup_by_key(struct rpc_client *c, const void *args, void *ret,
                                     struct rpc_error *err)
{
    const remote_storage_vol_lookup_by_key_args *a = args;
    return lookup_path(c, a->key, "key", &((remote_storage_vol_ret *)ret)->vol, err);
}

int remote_storage_vol_lookup_by_path(struct rpc_client *c, const void *args, void *ret,
                                      struct rpc_error *err)
{
    const remote_storage_vol_lookup_by_path_args *a = args;
    return lookup_path(c, a->path, "path",
                       &((remote_storage_vol_lookup_by_path_ret *)ret)->vol, err);
}

/* ---- volumes ---- */

int remote_storage_vol_create_xml(struct rpc_client *c, const void *args, void *ret,
                                  struct rpc_error *err)
{
    const remote_storage_vol_create_xml_args *a = args;
    struct storage_pool *p = remote_storage_pool_active(c, &a->pool, err);
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
        return remote_storage_fail(err, &e);
    def.prealloc = a->flags & 1u;
    int rc = storage_vol_create(p->path, &def, &v, &e);
    storage_vol_def_clear(&def);
    if (rc < 0)
        return remote_storage_fail(err, &e);
    log_info("volume %s created (%s, %llu bytes)", v.path, v.format,
             (unsigned long long)v.capacity);
    rc = make_vol(&((remote_storage_vol_ret *)ret)->vol, p, &v, err);
    storage_vol_clear(&v);
    return rc;
}

int remote_storage_vol_create_xml_from(struct rpc_client *c, const void *args, void *ret,
                                       struct rpc_error *err)
{
    const remote_storage_vol_create_xml_from_args *a = args;
    struct storage_pool *p = remote_storage_pool_active(c, &a->pool, err);
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
        return remote_storage_fail(err, &e);
    }
    log_info("volume %s created from %s", v.path, src.path);
    storage_vol_clear(&src);
    rc = make_vol(&((remote_storage_vol_ret *)ret)->vol, p, &v, err);
    storage_vol_clear(&v);
    return rc;
}

int remote_storage_vol_delete(struct rpc_client *c, const void *args, void *ret,
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
        return remote_storage_fail(err, &e);
    log_info("volume %s/%s deleted", p->path, a->vol.name);
    return 0;
}

int remote_storage_vol_get_info(struct rpc_client *c, const void *args, void *ret,
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

int remote_storage_vol_get_xml(struct rpc_client *c, const void *args, void *ret,
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

int remote_storage_vol_get_path(struct rpc_client *c, const void *args, void *ret,
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
