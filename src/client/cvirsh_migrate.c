/* cvirsh migrate: libvirt's client-driven live migration ("v3 with
 * parameters"), the sequence virsh runs through libvirt's
 * virDomainMigrate3: Begin on the source (the XML), Prepare on the
 * destination (the URI it listens on), Perform on the source, Finish on
 * the destination (cancelled when Perform failed), Confirm on the source
 * (cancelled when Finish failed). The cookies pass through unread. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/cvirsh_cmds.h"
#include "client/cvirsh_dom.h"

enum {
    PROC_BEGIN = 302,
    PROC_PREPARE = 303,
    PROC_PERFORM = 305,
    PROC_FINISH = 306,
    PROC_CONFIRM = 307,
};

/* virDomainMigrateFlags */
#define F_LIVE (1u << 0)
#define F_P2P (1u << 1)
#define F_TUNNELLED (1u << 2)
#define F_PERSIST (1u << 3)
#define F_UNDEFINE (1u << 4)
#define F_PAUSED (1u << 5)
#define F_NON_SHARED_DISK (1u << 6)
#define F_NON_SHARED_INC (1u << 7)
#define F_CHANGE_PROTECTION (1u << 8)
#define F_OFFLINE (1u << 10)
#define F_POSTCOPY (1u << 15)

#define MAX_PARAMS 8

struct params {
    remote_typed_param v[MAX_PARAMS];
    unsigned n;
};

/* Sets (or replaces) a string parameter; the strings are borrowed. */
static void param_set(struct params *p, const char *name, const char *value)
{
    unsigned i = 0;
    while (i < p->n && strcmp(p->v[i].field, name))
        i++;
    if (i == MAX_PARAMS)
        return;
    if (i == p->n)
        p->n++;
    p->v[i].field = (char *)name;
    p->v[i].value.type = REMOTE_TYPED_PARAM_STRING;
    p->v[i].value.remote_typed_param_value_u.s = (char *)value;
}

static unsigned migrate_flags(const struct cvirsh_cmd *cmd)
{
    static const struct { const char *opt; unsigned flag; } map[] = {
        { "live", F_LIVE }, { "p2p", F_P2P }, { "tunnelled", F_TUNNELLED },
        { "persistent", F_PERSIST }, { "undefinesource", F_UNDEFINE },
        { "suspend", F_PAUSED }, { "copy-storage-all", F_NON_SHARED_DISK },
        { "copy-storage-inc", F_NON_SHARED_INC }, { "offline", F_OFFLINE },
        { "postcopy", F_POSTCOPY },
    };
    unsigned f = 0;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (cvirsh_opt_bool(cmd, map[i].opt))
            f |= map[i].flag;
    return f;
}

/* The part before Perform: the XML from the source, the URI from the
 * destination. */
static int begin_prepare(struct client_conn *src, struct client_conn *dst,
                         const remote_nonnull_domain *dom, struct params *p, unsigned flags,
                         remote_domain_migrate_prepare3_params_ret *prep,
                         remote_domain_migrate_begin3_params_ret *beg, struct err *e)
{
    remote_domain_migrate_begin3_params_args ba = {
        .dom = *dom, .params = { p->n, p->v }, .flags = flags | F_CHANGE_PROTECTION,
    };
    int r = client_call(src, PROC_BEGIN, (xdrproc_t)xdr_remote_domain_migrate_begin3_params_args,
                        &ba, (xdrproc_t)xdr_remote_domain_migrate_begin3_params_ret, beg, e);
    if (r < 0)
        return r;
    param_set(p, "destination_xml", beg->xml);
    remote_domain_migrate_prepare3_params_args pa = {
        .params = { p->n, p->v },
        .cookie_in = { beg->cookie_out.cookie_out_len, beg->cookie_out.cookie_out_val },
        .flags = flags,
    };
    return client_call(dst, PROC_PREPARE,
                       (xdrproc_t)xdr_remote_domain_migrate_prepare3_params_args, &pa,
                       (xdrproc_t)xdr_remote_domain_migrate_prepare3_params_ret, prep, e);
}

/* Perform, Finish, Confirm; the first error is the one reported. */
static int perform_finish(struct client_conn *src, struct client_conn *dst,
                          const remote_nonnull_domain *dom, struct params *p, unsigned flags,
                          const remote_domain_migrate_prepare3_params_ret *prep, struct err *e)
{
    if (prep->uri_out && *prep->uri_out)
        param_set(p, "migrate_uri", *prep->uri_out);
    remote_domain_migrate_perform3_params_args pa = {
        .dom = *dom, .params = { p->n, p->v },
        .cookie_in = { prep->cookie_out.cookie_out_len, prep->cookie_out.cookie_out_val },
        .flags = flags | F_CHANGE_PROTECTION,
    };
    remote_domain_migrate_perform3_params_ret pr = { 0 };
    int rc = client_call(src, PROC_PERFORM,
                         (xdrproc_t)xdr_remote_domain_migrate_perform3_params_args, &pa,
                         (xdrproc_t)xdr_remote_domain_migrate_perform3_params_ret, &pr, e);
    param_set(p, "destination_name", dom->name);
    remote_domain_migrate_finish3_params_args fa = {
        .params = { p->n, p->v },
        .cookie_in = { pr.cookie_out.cookie_out_len, pr.cookie_out.cookie_out_val },
        .flags = flags, .cancelled = rc < 0,
    };
    remote_domain_migrate_finish3_params_ret fr = { 0 };
    struct err fe = { 0 };
    int frc = client_call(dst, PROC_FINISH,
                          (xdrproc_t)xdr_remote_domain_migrate_finish3_params_args, &fa,
                          (xdrproc_t)xdr_remote_domain_migrate_finish3_params_ret, &fr, &fe);
    if (rc == 0 && frc < 0) {
        *e = fe;
        rc = frc;
    }
    remote_domain_migrate_confirm3_params_args ca = {
        .dom = *dom, .params = { p->n, p->v },
        .cookie_in = { fr.cookie_out.cookie_out_len, fr.cookie_out.cookie_out_val },
        .flags = flags | F_CHANGE_PROTECTION, .cancelled = rc < 0,
    };
    struct err ce = { 0 };
    int crc = client_call(src, PROC_CONFIRM,
                          (xdrproc_t)xdr_remote_domain_migrate_confirm3_params_args, &ca,
                          NULL, NULL, &ce);
    if (rc == 0 && crc < 0) {
        *e = ce;
        rc = crc;
    }
    client_free_ret((xdrproc_t)xdr_remote_domain_migrate_perform3_params_ret, &pr);
    client_free_ret((xdrproc_t)xdr_remote_domain_migrate_finish3_params_ret, &fr);
    return rc;
}

bool cvirsh_cmd_migrate(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    unsigned flags = migrate_flags(cmd);
    struct err e = { 0 };
    if ((flags & F_LIVE) && (flags & F_OFFLINE)) {
        cvirsh_error(ctl, "Options --live and --offline are mutually exclusive");
        return false;
    }
    if ((flags & F_TUNNELLED) && !(flags & F_P2P)) {
        cvirsh_error(ctl, "cannot perform tunnelled migration without using peer2peer flag");
        return false;
    }
    /* What libvirt says when the source lacks a kind of migration. */
    if (flags & F_OFFLINE) {
        cvirsh_error(ctl, "argument unsupported: offline migration is not supported by "
                     "the source host");
        return false;
    }
    if (flags & F_P2P) {
        cvirsh_error(ctl, "argument unsupported: p2p migration is not supported by the "
                     "source host");
        return false;
    }
    remote_nonnull_domain dom;
    if (!cvirsh_lookup_domain(ctl, cmd, &dom))
        return false;
    struct client_conn *dst = NULL;
    bool ok = false;
    if (client_open(&dst, cvirsh_opt_str(cmd, "desturi"), 0, &e) < 0) {
        cvirsh_report(ctl, &e);
        goto out;
    }
    struct params p = { .n = 0 };
    const char *muri = cvirsh_opt_str(cmd, "migrateuri");
    const char *listen = cvirsh_opt_str(cmd, "listen-address");
    if (muri)
        param_set(&p, "migrate_uri", muri);
    if (listen)
        param_set(&p, "listen_address", listen);
    remote_domain_migrate_begin3_params_ret beg = { 0 };
    remote_domain_migrate_prepare3_params_ret prep = { 0 };
    if (begin_prepare(ctl->conn, dst, &dom, &p, flags, &prep, &beg, &e) == 0 &&
        perform_finish(ctl->conn, dst, &dom, &p, flags, &prep, &e) == 0)
        ok = true;
    else
        cvirsh_report(ctl, &e);
    client_free_ret((xdrproc_t)xdr_remote_domain_migrate_prepare3_params_ret, &prep);
    client_free_ret((xdrproc_t)xdr_remote_domain_migrate_begin3_params_ret, &beg);
out:
    if (dst)
        client_close(dst);
    cvirsh_domain_free(&dom);
    return ok;
}
