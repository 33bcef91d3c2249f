/* The domain procedures of the remote protocol: lookups, lists, state,
 * XML, definitions and the lifecycle, answered the way libvirtd's QEMU
 * driver answers them (same error codes and wording where virsh shows
 * them). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"
#include "daemon/name_list.h"
#include "daemon/domain.h"
#include "daemon/domain_conf.h"
#include "daemon/domain_rpc.h"
#include "daemon/domain_run.h"
#include "daemon/rpc/dispatch.h"
#include "daemon/rpc/server.h"
#include "util/log.h"

/* virDomainXMLFlags */
#define XML_INACTIVE  2u

struct domain_driver *domain_rpc_driver(struct rpc_client *c)
{
    return rpc_client_daemon(c)->domains;
}

/* One error reply from a lower layer's struct err, by the kind of failure. */
int domain_rpc_fail(struct rpc_error *err, const struct err *e)
{
    const char *msg = e->msg[0] ? e->msg : "unknown error";
    switch (e->code) {
    case EBUSY:
        return rpc_err_set(err, VIR_ERR_OPERATION_INVALID, VIR_FROM_QEMU, "%s", msg);
    case DOMAIN_ERR_UNKILLABLE:
    case ENOENT:
    case EACCES:
        /* A host file a start needs: libvirt reports the system error as is. */
        return rpc_err_set(err, VIR_ERR_SYSTEM_ERROR, VIR_FROM_QEMU, "%s", msg);
    case EEXIST:
        return rpc_err_set(err, VIR_ERR_OPERATION_FAILED, VIR_FROM_QEMU, "%s", msg);
    case ENOTSUP:
        return rpc_err_set(err, VIR_ERR_OPERATION_UNSUPPORTED, VIR_FROM_QEMU,
                           "%s", msg);
    case ETIMEDOUT:
        return rpc_err_set(err, VIR_ERR_OPERATION_TIMEOUT, VIR_FROM_QEMU,
                           "%s", msg);
    case ENOMEM:
        return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_QEMU, "%s", msg);
    default:
        return rpc_err_set(err, VIR_ERR_OPERATION_FAILED, VIR_FROM_QEMU, "%s", msg);
    }
}

/* XML a client sent that we refuse. */
int domain_rpc_fail_xml(struct rpc_error *err, const struct err *e)
{
    if (e->code == ENOMEM)
        return domain_rpc_fail(err, e);
    return rpc_err_set(err, VIR_ERR_XML_ERROR, VIR_FROM_DOMAIN, "%s",
                       e->msg[0] ? e->msg : "invalid XML");
}

static int fill_dom(remote_nonnull_domain *out, const struct domain *d)
{
    out->name = strdup(d->name);
    memcpy(out->uuid, d->uuid, 16);
    out->id = d->id;
    return out->name ? 0 : -ENOMEM;
}

static int fill_dom_reply(remote_nonnull_domain *out, const struct domain *d,
                          struct rpc_error *err)
{
    if (fill_dom(out, d) < 0)
        return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_QEMU, "out of memory");
    return 0;
}

/* The domain a call names: by uuid, as libvirtd's drivers look it up. */
struct domain *domain_rpc_get(struct rpc_client *c, const remote_nonnull_domain *rd,
                              struct rpc_error *err)
{
    const struct domain_table *t = &domain_rpc_driver(c)->table;
    struct domain *d = domain_find_uuid(t, (const uint8_t *)rd->uuid);
    if (!d) {
        char us[37];
        domain_uuid_format((const uint8_t *)rd->uuid, us);
        rpc_err_set(err, VIR_ERR_NO_DOMAIN, VIR_FROM_QEMU,
                    "no domain with matching uuid '%s' (%s)", us, rd->name ? rd->name : "");
    }
    return d;
}

/* ---- lookups ---- */

static int h_lookup_by_id(struct rpc_client *c, const void *args, void *ret,
                          struct rpc_error *err)
{
    const remote_domain_lookup_by_id_args *a = args;
    struct domain *d = domain_find_id(&domain_rpc_driver(c)->table, a->id);
    if (!d)
        return rpc_err_set(err, VIR_ERR_NO_DOMAIN, VIR_FROM_QEMU,
                           "no domain with matching id %d", a->id);
    return fill_dom_reply(&((remote_domain_lookup_by_id_ret *)ret)->dom, d, err);
}

static int h_lookup_by_name(struct rpc_client *c, const void *args, void *ret,
                            struct rpc_error *err)
{
    const remote_domain_lookup_by_name_args *a = args;
    struct domain *d = domain_find_name(&domain_rpc_driver(c)->table, a->name);
    if (!d)
        return rpc_err_set(err, VIR_ERR_NO_DOMAIN, VIR_FROM_QEMU,
                           "no domain with matching name '%s'", a->name);
    return fill_dom_reply(&((remote_domain_lookup_by_name_ret *)ret)->dom, d, err);
}

static int h_lookup_by_uuid(struct rpc_client *c, const void *args, void *ret,
                            struct rpc_error *err)
{
    const remote_domain_lookup_by_uuid_args *a = args;
    const struct domain_table *t = &domain_rpc_driver(c)->table;
    struct domain *d = domain_find_uuid(t, (const uint8_t *)a->uuid);
    if (!d) {
        char us[37];
        domain_uuid_format((const uint8_t *)a->uuid, us);
        return rpc_err_set(err, VIR_ERR_NO_DOMAIN, VIR_FROM_QEMU,
                           "no domain with matching uuid '%s'", us);
    }
    return fill_dom_reply(&((remote_domain_lookup_by_uuid_ret *)ret)->dom, d, err);
}

/* ---- lists ---- */

static int h_list_all(struct rpc_client *c, const void *args, void *ret,
                      struct rpc_error *err)
{
    const remote_connect_list_all_domains_args *a = args;
    remote_connect_list_all_domains_ret *r = ret;
    const struct domain_table *t = &domain_rpc_driver(c)->table;
    unsigned n = 0;
    for (size_t i = 0; i < t->n; i++)
        n += domain_list_match(t->v[i], a->flags);
    r->ret = n;
    if (!a->need_results || n == 0)
        return 0;
    if (n > REMOTE_DOMAIN_LIST_MAX)
        return rpc_err_set(err, VIR_ERR_INTERNAL_ERROR, VIR_FROM_QEMU,
                           "too many domains (%u) for one reply", n);
    r->domains.domains_val = calloc(n, sizeof(remote_nonnull_domain));
    if (!r->domains.domains_val)
        return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_QEMU, "out of memory");
    for (size_t i = 0; i < t->n; i++) {
        if (!domain_list_match(t->v[i], a->flags))
            continue;
        if (fill_dom(&r->domains.domains_val[r->domains.domains_len++], t->v[i]) < 0)
            return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_QEMU, "out of memory");
    }
    return 0;
}

static int count_active(const struct domain_table *t, bool active)
{
    int n = 0;
    for (size_t i = 0; i < t->n; i++)
        n += domain_is_active(t->v[i]) == active;
    return n;
}

static int h_num_of_domains(struct rpc_client *c, const void *args, void *ret,
                            struct rpc_error *err)
{
    ((remote_connect_num_of_domains_ret *)ret)->num =
        count_active(&domain_rpc_driver(c)->table, true);
    return 0;
}

static int h_num_of_defined(struct rpc_client *c, const void *args, void *ret,
                            struct rpc_error *err)
{
    ((remote_connect_num_of_defined_domains_ret *)ret)->num =
        count_active(&domain_rpc_driver(c)->table, false);
    return 0;
}

static int h_list_domains(struct rpc_client *c, const void *args, void *ret,
                          struct rpc_error *err)
{
    const remote_connect_list_domains_args *a = args;
    remote_connect_list_domains_ret *r = ret;
    const struct domain_table *t = &domain_rpc_driver(c)->table;
    if (a->maxids < 0 || a->maxids > REMOTE_DOMAIN_ID_LIST_MAX)
        return rpc_err_set(err, VIR_ERR_RPC, VIR_FROM_RPC, "%s",
                           "maxids > REMOTE_DOMAIN_ID_LIST_MAX");
    r->ids.ids_val = calloc((size_t)a->maxids + 1, sizeof(int));
    if (!r->ids.ids_val)
        return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_QEMU, "out of memory");
    for (size_t i = 0; i < t->n && r->ids.ids_len < (unsigned)a->maxids; i++)
        if (domain_is_active(t->v[i]))
            r->ids.ids_val[r->ids.ids_len++] = t->v[i]->id;
    return 0;
}

static const char *inactive_name(const void *ctx, size_t i)
{
    const struct domain *d = ((const struct domain_table *)ctx)->v[i];
    return domain_is_active(d) ? NULL : d->name;
}

static int h_list_defined(struct rpc_client *c, const void *args, void *ret,
                          struct rpc_error *err)
{
    const remote_connect_list_defined_domains_args *a = args;
    remote_connect_list_defined_domains_ret *r = ret;
    const struct domain_table *t = &domain_rpc_driver(c)->table;
    if (a->maxnames < 0 || a->maxnames > REMOTE_DOMAIN_NAME_LIST_MAX)
        return rpc_err_set(err, VIR_ERR_RPC, VIR_FROM_RPC, "%s",
                           "maxnames > REMOTE_DOMAIN_NAME_LIST_MAX");
    if (name_list_fill(t->n, a->maxnames, inactive_name, t, &r->names.names_val,
                       &r->names.names_len) < 0)
        return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_QEMU, "out of memory");
    return 0;
}

/* ---- state and information ---- */

static int h_get_state(struct rpc_client *c, const void *args, void *ret,
                       struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_get_state_args);
    remote_domain_get_state_ret *r = ret;
    r->state = d->state;
    r->reason = d->reason;
    return 0;
}

static int h_get_info(struct rpc_client *c, const void *args, void *ret,
                      struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_get_info_args);
    remote_domain_get_info_ret *r = ret;
    const struct domain_def *def = domain_current_def(d, false);
    r->state = (unsigned char)d->state;
    r->maxMem = def->memory_kib;
    r->memory = def->current_memory_kib;
    r->nrVirtCpu = (unsigned short)def->vcpus;
    r->cpuTime = domain_cpu_time_ns(d);
    return 0;
}

static int h_get_os_type(struct rpc_client *c, const void *args, void *ret,
                         struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_get_os_type_args);
    (void)d;
    char *s = strdup("hvm");
    if (!s)
        return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_QEMU, "out of memory");
    ((remote_domain_get_os_type_ret *)ret)->type = s;
    return 0;
}

static int h_is_active(struct rpc_client *c, const void *args, void *ret,
                       struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_is_active_args);
    ((remote_domain_is_active_ret *)ret)->active = domain_is_active(d);
    return 0;
}

static int h_is_persistent(struct rpc_client *c, const void *args, void *ret,
                           struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_is_persistent_args);
    ((remote_domain_is_persistent_ret *)ret)->persistent = d->def != NULL;
    return 0;
}

static int h_get_autostart(struct rpc_client *c, const void *args, void *ret,
                           struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_get_autostart_args);
    ((remote_domain_get_autostart_ret *)ret)->autostart = d->autostart;
    return 0;
}

static int h_has_managed_save(struct rpc_client *c, const void *args, void *ret,
                              struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_has_managed_save_image_args);
    ((remote_domain_has_managed_save_image_ret *)ret)->result = d->managed_save;
    return 0;
}

/* Without a security driver libvirtd answers with an empty label: one NUL
 * byte, not enforcing. */
static int h_get_security_label(struct rpc_client *c, const void *args, void *ret,
                                struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_get_security_label_args);
    (void)d;
    remote_domain_get_security_label_ret *r = ret;
    r->label.label_val = calloc(1, 1);
    if (!r->label.label_val)
        return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_QEMU, "out of memory");
    r->label.label_len = 1;
    r->enforcing = 0;
    return 0;
}

static int h_get_messages(struct rpc_client *c, const void *args, void *ret,
                          struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_get_messages_args);
    (void)d;
    return 0;     /* the zeroed result is an empty list */
}

static int h_get_xml_desc(struct rpc_client *c, const void *args, void *ret,
                          struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_get_xml_desc_args);
    const struct domain_def *def = domain_current_def(d, a->flags & XML_INACTIVE);
    char *xml = domain_def_format(def, a->flags);
    if (!xml)
        return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_QEMU, "out of memory");
    ((remote_domain_get_xml_desc_ret *)ret)->xml = xml;
    return 0;
}

/* ---- definitions ---- */

static int h_define_xml(struct rpc_client *c, const void *args, void *ret,
                        struct rpc_error *err)
{
    const remote_domain_define_xml_args *a = args;
    struct domain_driver *drv = domain_rpc_driver(c);
    struct domain_def *def;
    struct err e = { 0 };
    if (domain_def_parse(a->xml, strlen(a->xml), DOMAIN_PARSE_INACTIVE, &def, &e) < 0)
        return domain_rpc_fail_xml(err, &e);
    /* Checked before anything is written, so a refused definition leaves
     * the disk as it was. */
    struct domain *d;
    int r = domain_check_new(&drv->table, def, false, &d, &e);
    char *xml = r == 0 ? domain_def_format(def, DOMAIN_FORMAT_INACTIVE | DOMAIN_FORMAT_SECURE)
                       : NULL;
    if (r == 0 && !xml)
        r = err_set(&e, ENOMEM, "out of memory");
    if (r == 0)
        r = store_save_def(&drv->store, def->name, xml, &e);
    free(xml);
    bool created = false;
    if (r == 0)
        r = domain_define(&drv->table, def, &d, &created, &e);
    if (r < 0) {
        domain_def_free(def);
        return domain_rpc_fail(err, &e);
    }
    log_info("domain '%s' defined", d->name);
    domain_emit(drv, d, DOMAIN_EVENT_DEFINED,
                created ? DOMAIN_EVENT_DEFINED_ADDED : DOMAIN_EVENT_DEFINED_UPDATED);
    return fill_dom_reply(&((remote_domain_define_xml_ret *)ret)->dom, d, err);
}

/* virDomainUndefineFlagsValues */
#define UNDEFINE_MANAGED_SAVE 1u
#define UNDEFINE_SNAPSHOTS_METADATA 2u

static int undefine(struct rpc_client *c, const remote_nonnull_domain *rd, unsigned flags,
                    struct rpc_error *err)
{
    struct domain_driver *drv = domain_rpc_driver(c);
    struct domain *d = domain_rpc_get(c, rd, err);
    if (!d)
        return -1;
    struct err e = { 0 };
    if (!d->def)
        return rpc_err_set(err, VIR_ERR_OPERATION_INVALID, VIR_FROM_QEMU,
                           "cannot undefine transient domain");
    /* A save, start or chain in flight owns the domain (libvirt's undefine
     * takes the job too). */
    if ((d->job || d->migrating) && domain_op_check(d, DOMAIN_OP_LIVE_CHANGE, &e) < 0)
        return domain_rpc_fail(err, &e);
    if (d->managed_save && !(flags & UNDEFINE_MANAGED_SAVE))
        return rpc_err_set(err, VIR_ERR_OPERATION_INVALID, VIR_FROM_QEMU,
                           "Refusing to undefine while domain managed save image exists");
    int nsnap = domain_is_active(d) ? 0 : domain_snapshot_count(drv, d, 0);
    if (nsnap > 0 && !(flags & UNDEFINE_SNAPSHOTS_METADATA))
        return rpc_err_set(err, VIR_ERR_OPERATION_INVALID, VIR_FROM_QEMU,
                           "cannot delete inactive domain with %d snapshots", nsnap);
    if (d->managed_save && domain_managed_save_remove(drv, d, &e) < 0)
        return domain_rpc_fail(err, &e);
    if (nsnap > 0 && domain_snapshot_remove_all(drv, d, &e) < 0)
        return domain_rpc_fail(err, &e);
    if (store_delete_def(&drv->store, d->name, &e) < 0)
        return domain_rpc_fail(err, &e);
    char name[DOMAIN_NAME_MAX + 1];
    uint8_t uuid[16];
    snprintf(name, sizeof(name), "%s", d->name);
    memcpy(uuid, d->uuid, 16);
    int id = d->id;
    bool removed;
    if (domain_undefine(&drv->table, d, &removed, &e) < 0)
        return domain_rpc_fail(err, &e);
    log_info("domain '%s' undefined", name);
    if (drv->emit)
        drv->emit(drv->emit_opaque, name, uuid, id, DOMAIN_EVENT_UNDEFINED,
                  DOMAIN_EVENT_UNDEFINED_REMOVED);
    return 0;
}

static int h_undefine(struct rpc_client *c, const void *args, void *ret,
                      struct rpc_error *err)
{
    return undefine(c, &((const remote_domain_undefine_args *)args)->dom, 0, err);
}

static int h_undefine_flags(struct rpc_client *c, const void *args, void *ret,
                            struct rpc_error *err)
{
    /* NVRAM flags have nothing to remove. */
    const remote_domain_undefine_flags_args *a = args;
    return undefine(c, &a->dom, a->flags, err);
}

static int h_set_autostart(struct rpc_client *c, const void *args, void *ret,
                           struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_set_autostart_args);
    struct domain_driver *drv = domain_rpc_driver(c);
    struct err e = { 0 };
    if (!d->def)
        return rpc_err_set(err, VIR_ERR_OPERATION_INVALID, VIR_FROM_QEMU,
                           "cannot set autostart for transient domain");
    if (store_set_autostart(&drv->store, d->name, a->autostart != 0, &e) < 0)
        return domain_rpc_fail(err, &e);
    d->autostart = a->autostart != 0;
    return 0;
}

/* ---- lifecycle ---- */

/* Start, create, restore, save and destroy wait for a VMM: the reply is
 * deferred and sent from the loop when the operation ends, so the daemon
 * answers other calls meanwhile. */

static void done_error(struct rpc_deferred *dr, const struct err *e)
{
    struct rpc_error err = { 0 };
    domain_rpc_fail(&err, e);
    rpc_deferred_fail(dr, &err);
}

static void done_void(void *opaque, struct domain *d, int rc, const struct err *e)
{
    (void)d;
    if (rc < 0)
        done_error(opaque, e);
    else
        rpc_deferred_reply(opaque, NULL);
}

/* For virDomainCreateXML, whose result is the domain. */
static void done_dom(void *opaque, struct domain *d, int rc, const struct err *e)
{
    remote_domain_create_xml_ret r = { 0 };
    if (rc == 0 && (!d || fill_dom(&r.dom, d) < 0)) {
        struct rpc_error err = { 0 };
        rpc_err_set(&err, VIR_ERR_NO_MEMORY, VIR_FROM_QEMU, "out of memory");
        xdr_free((xdrproc_t)xdr_remote_domain_create_xml_ret, (char *)&r);
        rpc_deferred_fail(opaque, &err);
        return;
    }
    if (rc < 0)
        done_error(opaque, e);
    else
        rpc_deferred_reply(opaque, &r);
}

/* What the deferred operations share: begin takes the deferred reply as
 * its opaque; when it fails at once, the error reply goes out at once. */
enum deferred_op { OP_START, OP_DESTROY, OP_SAVE, OP_MANAGED_SAVE, OP_RESTORE };

static int defer_op(struct rpc_client *c, enum deferred_op op, struct domain *d,
                    const char *path, domain_done_fn done, struct rpc_error *err)
{
    struct domain_driver *drv = domain_rpc_driver(c);
    struct rpc_deferred *dr = rpc_defer(c, err);
    if (!dr)
        return -1;
    /* libvirt names the job's owner after the dispatcher of the call. */
    static const char *const owner[] = {
        [OP_START] = "remoteDispatchDomainCreate",
        [OP_DESTROY] = "remoteDispatchDomainDestroy",
        [OP_SAVE] = "remoteDispatchDomainSave",
        [OP_MANAGED_SAVE] = "remoteDispatchDomainManagedSave",
        [OP_RESTORE] = "remoteDispatchDomainRestore",
    };
    struct err e = { 0 };
    int r;
    switch (op) {
    case OP_START:
        r = domain_start_async(drv, d, owner[op], done, dr, &e);
        break;
    case OP_DESTROY:
        r = domain_destroy_async(drv, d, owner[op], done, dr, &e);
        break;
    case OP_SAVE:
    case OP_MANAGED_SAVE:
        r = domain_save_async(drv, d, path, op == OP_MANAGED_SAVE, owner[op], done, dr, &e);
        break;
    default:
        r = domain_restore_async(drv, path, owner[op], done, dr, &e);
        break;
    }
    if (r < 0 && op == OP_SAVE && e.code == EINVAL) {
        /* A path that is not absolute: a bad argument, as libvirt says. */
        struct rpc_error bad = { 0 };
        rpc_err_set(&bad, VIR_ERR_INVALID_ARG, VIR_FROM_QEMU, "%s", e.msg);
        rpc_deferred_fail(dr, &bad);
    } else if (r < 0) {
        done_error(dr, &e);
    }
    return RPC_HANDLER_DEFERRED;
}

static int h_create(struct rpc_client *c, const void *args, void *ret,
                    struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_create_args);
    return defer_op(c, OP_START, d, NULL, done_void, err);
}

static int h_create_xml(struct rpc_client *c, const void *args, void *ret,
                        struct rpc_error *err)
{
    const remote_domain_create_xml_args *a = args;
    struct domain_driver *drv = domain_rpc_driver(c);
    struct domain_def *def;
    struct err e = { 0 };
    if (domain_def_parse(a->xml_desc, strlen(a->xml_desc), 0, &def, &e) < 0)
        return domain_rpc_fail_xml(err, &e);
    /* The reply is deferred before the table changes: a failure to defer
     * then leaves no shut-off transient domain behind. */
    struct rpc_deferred *dr = rpc_defer(c, err);
    if (!dr) {
        domain_def_free(def);
        return -1;
    }
    struct domain *d;
    if (domain_add_transient(&drv->table, def, &d, &e) < 0) {
        domain_def_free(def);
        done_error(dr, &e);
        return RPC_HANDLER_DEFERRED;
    }
    /* The given XML boots even when d has a managed save image (libvirt
     * starts it cold); a failed start drops the domain, or for a defined
     * one its live definition. */
    if (domain_create_async(drv, d, "remoteDispatchDomainCreateXML", done_dom, dr, &e) < 0)
        done_error(dr, &e);
    return RPC_HANDLER_DEFERRED;
}

static int h_destroy(struct rpc_client *c, const void *args, void *ret,
                     struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_destroy_args);
    return defer_op(c, OP_DESTROY, d, NULL, done_void, err);
}

static int h_save(struct rpc_client *c, const void *args, void *ret, struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_save_args);
    return defer_op(c, OP_SAVE, d, a->to, done_void, err);
}

static int h_managed_save(struct rpc_client *c, const void *args, void *ret,
                          struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_managed_save_args);
    return defer_op(c, OP_MANAGED_SAVE, d, NULL, done_void, err);
}

static int h_restore(struct rpc_client *c, const void *args, void *ret,
                     struct rpc_error *err)
{
    const remote_domain_restore_args *a = args;
    return defer_op(c, OP_RESTORE, NULL, a->from, done_void, err);
}

static int h_shutdown(struct rpc_client *c, const void *args, void *ret,
                      struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_shutdown_args);
    struct err e = { 0 };
    return domain_shutdown(domain_rpc_driver(c), d, &e) < 0 ? domain_rpc_fail(err, &e) : 0;
}

static int h_reboot(struct rpc_client *c, const void *args, void *ret,
                    struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_reboot_args);
    struct err e = { 0 };
    return domain_reboot(domain_rpc_driver(c), d, &e) < 0 ? domain_rpc_fail(err, &e) : 0;
}

static int h_suspend(struct rpc_client *c, const void *args, void *ret,
                     struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_suspend_args);
    struct err e = { 0 };
    return domain_suspend(domain_rpc_driver(c), d, &e) < 0 ? domain_rpc_fail(err, &e) : 0;
}

static int h_resume(struct rpc_client *c, const void *args, void *ret,
                    struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_resume_args);
    struct err e = { 0 };
    return domain_resume(domain_rpc_driver(c), d, &e) < 0 ? domain_rpc_fail(err, &e) : 0;
}

/* ---- the table ---- */



#define RO RPC_PROC_READONLY
const struct rpc_proc remote_domain_procs[] = {
    RPC_PROC(9, "virDomainCreate", domain_create_args, void, h_create, 0),
    RPC_PROC(10, "virDomainCreateXML", domain_create_xml_args, domain_create_xml_ret,
             h_create_xml, 0),
    RPC_PROC(11, "virDomainDefineXML", domain_define_xml_args, domain_define_xml_ret,
             h_define_xml, 0),
    RPC_PROC(12, "virDomainDestroy", domain_destroy_args, void, h_destroy, 0),
    RPC_PROC(14, "virDomainGetXMLDesc", domain_get_xml_desc_args, domain_get_xml_desc_ret,
             h_get_xml_desc, RO),
    RPC_PROC(15, "virDomainGetAutostart", domain_get_autostart_args,
             domain_get_autostart_ret, h_get_autostart, RO),
    RPC_PROC(16, "virDomainGetInfo", domain_get_info_args, domain_get_info_ret,
             h_get_info, RO),
    RPC_PROC(19, "virDomainGetOSType", domain_get_os_type_args, domain_get_os_type_ret,
             h_get_os_type, RO),
    RPC_PROC(21, "virConnectListDefinedDomains", connect_list_defined_domains_args,
             connect_list_defined_domains_ret, h_list_defined, RO),
    RPC_PROC(22, "virDomainLookupByID", domain_lookup_by_id_args, domain_lookup_by_id_ret,
             h_lookup_by_id, RO),
    RPC_PROC(23, "virDomainLookupByName", domain_lookup_by_name_args,
             domain_lookup_by_name_ret, h_lookup_by_name, RO),
    RPC_PROC(24, "virDomainLookupByUUID", domain_lookup_by_uuid_args,
             domain_lookup_by_uuid_ret, h_lookup_by_uuid, RO),
    RPC_PROC(25, "virConnectNumOfDefinedDomains", void, connect_num_of_defined_domains_ret,
             h_num_of_defined, RO),
    RPC_PROC(27, "virDomainReboot", domain_reboot_args, void, h_reboot, 0),
    RPC_PROC(28, "virDomainResume", domain_resume_args, void, h_resume, 0),
    RPC_PROC(29, "virDomainSetAutostart", domain_set_autostart_args, void,
             h_set_autostart, 0),
    RPC_PROC(33, "virDomainShutdown", domain_shutdown_args, void, h_shutdown, 0),
    RPC_PROC(34, "virDomainSuspend", domain_suspend_args, void, h_suspend, 0),
    RPC_PROC(35, "virDomainUndefine", domain_undefine_args, void, h_undefine, 0),
    RPC_PROC(37, "virConnectListDomains", connect_list_domains_args,
             connect_list_domains_ret, h_list_domains, RO),
    RPC_PROC(51, "virConnectNumOfDomains", void, connect_num_of_domains_ret,
             h_num_of_domains, RO),
    RPC_PROC(54, "virDomainRestore", domain_restore_args, void, h_restore, 0),
    RPC_PROC(55, "virDomainSave", domain_save_args, void, h_save, 0),
    RPC_PROC(121, "virDomainGetSecurityLabel", domain_get_security_label_args,
             domain_get_security_label_ret, h_get_security_label, RO),
    RPC_PROC(150, "virDomainIsActive", domain_is_active_args, domain_is_active_ret,
             h_is_active, RO),
    RPC_PROC(151, "virDomainIsPersistent", domain_is_persistent_args,
             domain_is_persistent_ret, h_is_persistent, RO),
    RPC_PROC(160, "virDomainAttachDeviceFlags", domain_attach_device_flags_args, void,
             domain_rpc_attach_device_flags, 0),
    RPC_PROC(161, "virDomainDetachDeviceFlags", domain_detach_device_flags_args, void,
             domain_rpc_detach_device_flags, 0),
    RPC_PROC(182, "virDomainManagedSave", domain_managed_save_args, void,
             h_managed_save, 0),
    RPC_PROC(183, "virDomainHasManagedSaveImage", domain_has_managed_save_image_args,
             domain_has_managed_save_image_ret, h_has_managed_save, RO),
    RPC_PROC(184, "virDomainManagedSaveRemove", domain_managed_save_remove_args, void,
             domain_rpc_managed_save_remove, 0),
    RPC_PROC(185, "virDomainSnapshotCreateXML", domain_snapshot_create_xml_args,
             domain_snapshot_create_xml_ret, domain_rpc_snapshot_create, 0),
    RPC_PROC(186, "virDomainSnapshotGetXMLDesc", domain_snapshot_get_xml_desc_args,
             domain_snapshot_get_xml_desc_ret, domain_rpc_snapshot_get_xml, RO),
    RPC_PROC(187, "virDomainSnapshotNum", domain_snapshot_num_args, domain_snapshot_num_ret,
             domain_rpc_snapshot_num, RO),
    RPC_PROC(189, "virDomainSnapshotLookupByName", domain_snapshot_lookup_by_name_args,
             domain_snapshot_lookup_by_name_ret, domain_rpc_snapshot_lookup, RO),
    RPC_PROC(190, "virDomainHasCurrentSnapshot", domain_has_current_snapshot_args,
             domain_has_current_snapshot_ret, domain_rpc_snapshot_has_current, RO),
    RPC_PROC(191, "virDomainSnapshotCurrent", domain_snapshot_current_args,
             domain_snapshot_current_ret, domain_rpc_snapshot_current, RO),
    RPC_PROC(192, "virDomainRevertToSnapshot", domain_revert_to_snapshot_args, void,
             domain_rpc_snapshot_revert, 0),
    RPC_PROC(193, "virDomainSnapshotDelete", domain_snapshot_delete_args, void,
             domain_rpc_snapshot_delete, 0),
    RPC_PROC(201, "virDomainOpenConsole", domain_open_console_args, void,
             domain_console_open, 0),
    RPC_PROC(204, "virDomainSetMemoryFlags", domain_set_memory_flags_args, void,
             domain_rpc_set_memory_flags, 0),
    RPC_PROC(212, "virDomainGetState", domain_get_state_args, domain_get_state_ret,
             h_get_state, RO),
    RPC_PROC(231, "virDomainUndefineFlags", domain_undefine_flags_args, void,
             h_undefine_flags, 0),
    RPC_PROC(244, "virDomainSnapshotGetParent", domain_snapshot_get_parent_args,
             domain_snapshot_get_parent_ret, domain_rpc_snapshot_get_parent, RO),
    RPC_PROC(246, "virDomainSnapshotNumChildren", domain_snapshot_num_children_args,
             domain_snapshot_num_children_ret, domain_rpc_snapshot_num_children, RO),
    RPC_PROC(271, "virDomainSnapshotIsCurrent", domain_snapshot_is_current_args,
             domain_snapshot_is_current_ret, domain_rpc_snapshot_is_current, RO),
    RPC_PROC(272, "virDomainSnapshotHasMetadata", domain_snapshot_has_metadata_args,
             domain_snapshot_has_metadata_ret, domain_rpc_snapshot_has_metadata, RO),
    RPC_PROC(273, "virConnectListAllDomains", connect_list_all_domains_args,
             connect_list_all_domains_ret, h_list_all, RO),
    RPC_PROC(274, "virDomainListAllSnapshots", domain_list_all_snapshots_args,
             domain_list_all_snapshots_ret, domain_rpc_snapshot_list_all, RO),
    RPC_PROC(275, "virDomainSnapshotListAllChildren", domain_snapshot_list_all_children_args,
             domain_snapshot_list_all_children_ret, domain_rpc_snapshot_list_children, RO),
    RPC_PROC(426, "virDomainGetMessages", domain_get_messages_args, domain_get_messages_ret,
             h_get_messages, RO),
};
const size_t remote_domain_nprocs = sizeof(remote_domain_procs) / sizeof(remote_domain_procs[0]);

/* ---- start-up and shut-down ---- */

static void emit_event(void *opaque, const char *name, const uint8_t uuid[16], int id,
                       int event, int detail)
{
    struct daemon *dm = opaque;
    if (!dm->srv)
        return;
    remote_nonnull_domain dom = { .name = (char *)name, .id = id };
    memcpy(dom.uuid, uuid, 16);
    rpc_server_emit_lifecycle(dm->srv, &dom, event, detail);
}

/* VMM logs go where libvirt keeps its QEMU logs: .../var/log/cvirt beside
 * .../var/lib/cvirt, or a log folder in the state folder otherwise. */
static int log_root(const struct daemon *dm, char *buf, size_t len)
{
    const char *state = dm->paths.state_dir;
    const char *suffix = "/var/lib/cvirt";
    size_t sl = strlen(state), xl = strlen(suffix);
    int n;
    if (sl >= xl && strcmp(state + sl - xl, suffix) == 0)
        n = snprintf(buf, len, "%.*s/var/log/cvirt", (int)(sl - xl), state);
    else
        n = snprintf(buf, len, "%s/log", state);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int remote_domain_init(struct daemon *dm, struct err *e)
{
    char logdir[PATH_MAX];
    if (log_root(dm, logdir, sizeof(logdir)) < 0)
        return err_set(e, ENAMETOOLONG, "%s: path too long", dm->paths.state_dir);
    struct domain_driver *drv = calloc(1, sizeof(*drv));
    if (!drv)
        return err_set(e, ENOMEM, "out of memory");
    int r = domain_driver_init(drv, dm->loop, dm->paths.config_dir, dm->paths.run_dir, logdir,
                               dm->paths.state_dir, dm->vmm_path, e);
    if (r < 0) {
        free(drv);
        return r;
    }
    drv->emit = emit_event;
    drv->emit_opaque = dm;
    dm->domains = drv;
    domain_driver_reattach(drv);
    domain_driver_autostart(drv);
    return 0;
}

void remote_domain_fini(struct daemon *dm)
{
    struct domain_driver *drv = dm->domains;
    if (!drv)
        return;
    domain_driver_fini(drv);
    free(drv);
    dm->domains = NULL;
}
