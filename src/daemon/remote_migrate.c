/* The migration procedures of the remote program (libvirt's "v3 with
 * parameters": Begin 302, Prepare 303, Perform 305, Finish 306, Confirm
 * 307), answered from domain_migrate.c. Debian's virsh drives them from
 * the client: it asks the source for the XML, the destination to prepare,
 * the source to send, the destination to finish and the source to
 * confirm. Our cookies are empty: everything the other side needs is in
 * the XML and the parameters. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"
#include "daemon/domain_conf.h"
#include "daemon/domain_migrate.h"
#include "daemon/domain_rpc.h"
#include "daemon/migrate_params.h"
#include "util/log.h"

static int fail(struct rpc_error *err, const struct err *e)
{
    if (e->code == EINVAL)
        return rpc_err_set(err, VIR_ERR_INVALID_ARG, VIR_FROM_QEMU, "%s", e->msg);
    return domain_rpc_fail(err, e);
}

/* virErrorNumber VIR_ERR_MIGRATE_FINISH_OK: what a cancelled Finish
 * answers, so that libvirt's client reports the error of the step that
 * failed (Perform's) rather than this one. */
#define ERR_MIGRATE_FINISH_OK 93

static void deferred_fail(struct rpc_deferred *dr, const struct err *e)
{
    struct rpc_error err = { 0 };
    fail(&err, e);
    rpc_deferred_fail(dr, &err);
}

static int fill(remote_nonnull_domain *out, const struct domain *d)
{
    out->name = strdup(d->name);
    memcpy(out->uuid, d->uuid, 16);
    out->id = d->id;
    return out->name ? 0 : -ENOMEM;
}

static int h_begin(struct rpc_client *c, const void *args, void *ret, struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_migrate_begin3_params_args);
    remote_domain_migrate_begin3_params_ret *r = ret;
    struct migrate_params p;
    struct err e = { 0 };
    if (migrate_params_parse(a->params.params_val, a->params.params_len, &p, &e) < 0)
        return fail(err, &e);
    /* virsh migrate --xml: the destination would start another machine
     * than the one the source sends. */
    if (p.dest_xml)
        return rpc_err_set(err, VIR_ERR_OPERATION_UNSUPPORTED, VIR_FROM_QEMU, "%s",
                           "a destination XML (--xml) is not supported: the domain "
                           "migrates with its own definition");
    if (domain_migrate_begin(domain_rpc_driver(c), d, a->flags, &r->xml, &e) < 0)
        return fail(err, &e);
    return 0;
}

static void prepared(void *opaque, struct domain *d, const char *uri, int rc,
                     const struct err *e)
{
    (void)d;
    if (rc < 0) {
        deferred_fail(opaque, e);
        return;
    }
    remote_domain_migrate_prepare3_params_ret r = { 0 };
    r.uri_out = malloc(sizeof(*r.uri_out));
    if (r.uri_out && !(*r.uri_out = strdup(uri))) {
        free(r.uri_out);
        r.uri_out = NULL;
    }
    if (!r.uri_out) {
        struct err me = { 0 };
        err_set(&me, ENOMEM, "out of memory");
        deferred_fail(opaque, &me);
        return;
    }
    rpc_deferred_reply(opaque, &r);
}

static int h_prepare(struct rpc_client *c, const void *args, void *ret, struct rpc_error *err)
{
    const remote_domain_migrate_prepare3_params_args *a = args;
    struct migrate_params p;
    struct err e = { 0 };
    (void)ret;
    if (migrate_params_parse(a->params.params_val, a->params.params_len, &p, &e) < 0)
        return fail(err, &e);
    if (!p.dest_xml)
        return rpc_err_set(err, VIR_ERR_INVALID_ARG, VIR_FROM_QEMU, "%s",
                           "no domain XML passed");
    struct rpc_deferred *dr = rpc_defer(c, err);
    if (!dr)
        return -1;
    if (domain_migrate_prepare_async(domain_rpc_driver(c), p.dest_xml, a->flags, &p, prepared,
                                     dr, &e) < 0) {
        if (e.code == EBADMSG) {
            /* The XML the source sent: libvirt's XML error. */
            struct rpc_error xe = { 0 };
            domain_rpc_fail_xml(&xe, &e);
            rpc_deferred_fail(dr, &xe);
        } else {
            deferred_fail(dr, &e);
        }
    }
    return RPC_HANDLER_DEFERRED;
}

static void performed(void *opaque, struct domain *d, int rc, const struct err *e)
{
    (void)d;
    if (rc < 0) {
        deferred_fail(opaque, e);
        return;
    }
    remote_domain_migrate_perform3_params_ret r = { 0 };
    rpc_deferred_reply(opaque, &r);
}

static int h_perform(struct rpc_client *c, const void *args, void *ret, struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_migrate_perform3_params_args);
    struct migrate_params p;
    struct err e = { 0 };
    (void)ret;
    if (migrate_params_parse(a->params.params_val, a->params.params_len, &p, &e) < 0)
        return fail(err, &e);
    if (a->dconnuri && *a->dconnuri)
        return rpc_err_set(err, VIR_ERR_OPERATION_UNSUPPORTED, VIR_FROM_QEMU, "%s",
                           "peer-to-peer migration is not supported");
    struct rpc_deferred *dr = rpc_defer(c, err);
    if (!dr)
        return -1;
    if (domain_migrate_perform_async(domain_rpc_driver(c), d, p.uri, a->flags, performed, dr,
                                     &e) < 0)
        deferred_fail(dr, &e);
    return RPC_HANDLER_DEFERRED;
}

static void finished(void *opaque, struct domain *d, int rc, const struct err *e)
{
    if (rc == 0 && !d) {
        struct err ge = { 0 };
        err_set(&ge, EIO, "the migrated domain went away");
        deferred_fail(opaque, &ge);
        return;
    }
    if (rc < 0) {
        deferred_fail(opaque, e);
        return;
    }
    remote_domain_migrate_finish3_params_ret r = { 0 };
    if (fill(&r.dom, d) < 0) {
        struct err me = { 0 };
        err_set(&me, ENOMEM, "out of memory");
        deferred_fail(opaque, &me);
        return;
    }
    rpc_deferred_reply(opaque, &r);
}

static int h_finish(struct rpc_client *c, const void *args, void *ret, struct rpc_error *err)
{
    const remote_domain_migrate_finish3_params_args *a = args;
    struct migrate_params p;
    struct err e = { 0 };
    (void)ret;
    if (migrate_params_parse(a->params.params_val, a->params.params_len, &p, &e) < 0)
        return fail(err, &e);
    const char *name = p.dest_name;
    struct domain_def *def = NULL;
    if (!name && p.dest_xml && domain_def_parse(p.dest_xml, strlen(p.dest_xml), 0, &def, &e) == 0)
        name = def->name;
    struct rpc_deferred *dr = rpc_defer(c, err);
    if (!dr) {
        domain_def_free(def);
        return -1;
    }
    if (domain_migrate_finish_async(domain_rpc_driver(c), name, a->flags, a->cancelled != 0,
                                    p.persist_xml, finished, dr, &e) < 0) {
        if (e.code == ECANCELED) {
            struct rpc_error ce = { 0 };
            rpc_err_set(&ce, ERR_MIGRATE_FINISH_OK, VIR_FROM_QEMU, "%s",
                        "migration successfully aborted");
            rpc_deferred_fail(dr, &ce);
        } else {
            deferred_fail(dr, &e);
        }
    }
    domain_def_free(def);
    return RPC_HANDLER_DEFERRED;
}

static void confirmed(void *opaque, struct domain *d, int rc, const struct err *e)
{
    (void)d;
    if (rc < 0)
        deferred_fail(opaque, e);
    else
        rpc_deferred_reply(opaque, NULL);
}

static int h_confirm(struct rpc_client *c, const void *args, void *ret, struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_migrate_confirm3_params_args);
    struct migrate_params p;
    struct err e = { 0 };
    (void)ret;
    if (migrate_params_parse(a->params.params_val, a->params.params_len, &p, &e) < 0)
        return fail(err, &e);
    struct rpc_deferred *dr = rpc_defer(c, err);
    if (!dr)
        return -1;
    if (domain_migrate_confirm_async(domain_rpc_driver(c), d, a->flags, a->cancelled != 0,
                                     confirmed, dr, &e) < 0)
        deferred_fail(dr, &e);
    return RPC_HANDLER_DEFERRED;
}

const struct rpc_proc remote_migrate_procs[] = {
    RPC_PROC(302, "virDomainMigrateBegin3Params", domain_migrate_begin3_params_args,
             domain_migrate_begin3_params_ret, h_begin, 0),
    RPC_PROC(303, "virDomainMigratePrepare3Params", domain_migrate_prepare3_params_args,
             domain_migrate_prepare3_params_ret, h_prepare, 0),
    RPC_PROC(305, "virDomainMigratePerform3Params", domain_migrate_perform3_params_args,
             domain_migrate_perform3_params_ret, h_perform, 0),
    RPC_PROC(306, "virDomainMigrateFinish3Params", domain_migrate_finish3_params_args,
             domain_migrate_finish3_params_ret, h_finish, 0),
    RPC_PROC(307, "virDomainMigrateConfirm3Params", domain_migrate_confirm3_params_args,
             void, h_confirm, 0),
};
const size_t remote_migrate_nprocs = sizeof(remote_migrate_procs) / sizeof(remote_migrate_procs[0]);
