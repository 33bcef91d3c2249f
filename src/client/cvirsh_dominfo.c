/* dominfo: the calls and lines of virsh's, each optional line left out
 * when the daemon lacks what it needs. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "client/cvirsh_cmds.h"
#include "client/cvirsh_dom.h"

/* One call whose reply is a single int; returns false when it failed. */
static bool int_call(struct cvirsh *ctl, int proc, xdrproc_t xa, const void *a,
                     xdrproc_t xr, int *out)
{
    int r = 0;
    struct err e = {0};
    if (client_call(ctl->conn, proc, xa, a, xr, &r, &e) < 0)
        return false;
    *out = r;
    return true;
}

static void print_flags(struct cvirsh *ctl, const remote_nonnull_domain *dom)
{
    int v;
    remote_domain_is_persistent_args pa = { .dom = *dom };
    if (int_call(ctl, CLIENT_PROC_DOMAIN_IS_PERSISTENT,
                 (xdrproc_t)xdr_remote_domain_is_persistent_args, &pa,
                 (xdrproc_t)xdr_remote_domain_is_persistent_ret, &v))
        cvirsh_print(ctl, "%-15s %s\n", "Persistent:", v < 0 ? "unknown" : v ? "yes" : "no");
    remote_domain_get_autostart_args aa = { .dom = *dom };
    if (int_call(ctl, CLIENT_PROC_DOMAIN_GET_AUTOSTART,
                 (xdrproc_t)xdr_remote_domain_get_autostart_args, &aa,
                 (xdrproc_t)xdr_remote_domain_get_autostart_ret, &v))
        cvirsh_print(ctl, "%-15s %s\n", "Autostart:", v ? "enable" : "disable");
    remote_domain_has_managed_save_image_args ma = { .dom = *dom, .flags = 0 };
    if (int_call(ctl, CLIENT_PROC_DOMAIN_HAS_MANAGED_SAVE_IMAGE,
                 (xdrproc_t)xdr_remote_domain_has_managed_save_image_args, &ma,
                 (xdrproc_t)xdr_remote_domain_has_managed_save_image_ret, &v))
        cvirsh_print(ctl, "%-15s %s\n", "Managed save:", v ? "yes" : "no");
}

/* Returns false only when the security label can't be read while a model
 * is active: virsh fails dominfo then. */
static bool print_security(struct cvirsh *ctl, const remote_nonnull_domain *dom)
{
    remote_node_get_security_model_ret m;
    memset(&m, 0, sizeof(m));
    struct err e = {0};
    if (client_call(ctl->conn, CLIENT_PROC_NODE_GET_SECURITY_MODEL, NULL, NULL,
                    (xdrproc_t)xdr_remote_node_get_security_model_ret, &m, &e) < 0)
        return true;
    bool ok = true;
    if (m.model.model_len > 0 && m.model.model_val[0]) {
        /* Both strings arrive with their NUL; bound them anyway. */
        cvirsh_print(ctl, "%-15s %.*s\n", "Security model:", (int)strnlen(m.model.model_val, m.model.model_len), m.model.model_val);
        cvirsh_print(ctl, "%-15s %.*s\n", "Security DOI:", (int)strnlen(m.doi.doi_val ? m.doi.doi_val : "", m.doi.doi_len), m.doi.doi_val ? m.doi.doi_val : "");
        remote_domain_get_security_label_args la = { .dom = *dom };
        remote_domain_get_security_label_ret l;
        memset(&l, 0, sizeof(l));
        if (client_call(ctl->conn, CLIENT_PROC_DOMAIN_GET_SECURITY_LABEL,
                        (xdrproc_t)xdr_remote_domain_get_security_label_args, &la,
                        (xdrproc_t)xdr_remote_domain_get_security_label_ret, &l,
                        &e) < 0) {
            cvirsh_report(ctl, &e);
            ok = false;
        } else {
            if (l.label.label_len > 0 && l.label.label_val[0])
                cvirsh_print(ctl, "%-15s %.*s (%s)\n", "Security label:",
                             (int)strnlen(l.label.label_val, l.label.label_len),
                             l.label.label_val, l.enforcing ? "enforcing" : "permissive");
            client_free_ret((xdrproc_t)xdr_remote_domain_get_security_label_ret, &l);
        }
    }
    client_free_ret((xdrproc_t)xdr_remote_node_get_security_model_ret, &m);
    return ok;
}

static void print_messages(struct cvirsh *ctl, const remote_nonnull_domain *dom)
{
    remote_domain_get_messages_args a = { .dom = *dom, .flags = 0 };
    remote_domain_get_messages_ret r;
    memset(&r, 0, sizeof(r));
    struct err e = {0};
    if (client_call(ctl->conn, CLIENT_PROC_DOMAIN_GET_MESSAGES,
                    (xdrproc_t)xdr_remote_domain_get_messages_args, &a,
                    (xdrproc_t)xdr_remote_domain_get_messages_ret, &r, &e) < 0)
        return;
    for (unsigned i = 0; i < r.msgs.msgs_len; i++)
        cvirsh_print(ctl, "%-15s %s\n", i == 0 ? "Messages:" : "", r.msgs.msgs_val[i]);
    client_free_ret((xdrproc_t)xdr_remote_domain_get_messages_ret, &r);
}

bool cvirsh_cmd_dominfo(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    remote_nonnull_domain dom;
    if (!cvirsh_lookup_domain(ctl, cmd, &dom))
        return false;
    char u[37];
    cvirsh_uuid_format((const unsigned char *)dom.uuid, u);
    if (dom.id < 0)
        cvirsh_print(ctl, "%-15s %s\n", "Id:", "-");
    else
        cvirsh_print(ctl, "%-15s %d\n", "Id:", dom.id);
    cvirsh_print(ctl, "%-15s %s\n", "Name:", dom.name);
    cvirsh_print(ctl, "%-15s %s\n", "UUID:", u);

    struct err e = {0};
    remote_domain_get_os_type_args oa = { .dom = dom };
    remote_domain_get_os_type_ret ot;
    memset(&ot, 0, sizeof(ot));
    if (client_call(ctl->conn, CLIENT_PROC_DOMAIN_GET_OS_TYPE,
                    (xdrproc_t)xdr_remote_domain_get_os_type_args, &oa,
                    (xdrproc_t)xdr_remote_domain_get_os_type_ret, &ot, &e) == 0) {
        cvirsh_print(ctl, "%-15s %s\n", "OS Type:", ot.type);
        client_free_ret((xdrproc_t)xdr_remote_domain_get_os_type_ret, &ot);
    }

    remote_domain_get_info_args ia = { .dom = dom };
    remote_domain_get_info_ret info;
    memset(&info, 0, sizeof(info));
    if (client_call(ctl->conn, CLIENT_PROC_DOMAIN_GET_INFO,
                    (xdrproc_t)xdr_remote_domain_get_info_args, &ia,
                    (xdrproc_t)xdr_remote_domain_get_info_ret, &info, &e) == 0) {
        cvirsh_print(ctl, "%-15s %s\n", "State:", cvirsh_state_str(info.state));
        cvirsh_print(ctl, "%-15s %d\n", "CPU(s):", info.nrVirtCpu);
        if (info.cpuTime != 0)
            cvirsh_print(ctl, "%-15s %.1lfs\n", "CPU time:", (double)info.cpuTime / 1e9);
        if (info.maxMem != ULONG_MAX)
            cvirsh_print(ctl, "%-15s %llu KiB\n", "Max memory:",
                         (unsigned long long)info.maxMem);
        else
            cvirsh_print(ctl, "%-15s %s\n", "Max memory:", "no limit");
        cvirsh_print(ctl, "%-15s %llu KiB\n", "Used memory:",
                     (unsigned long long)info.memory);
    }
    print_flags(ctl, &dom);
    bool ok = print_security(ctl, &dom);
    if (ok)
        print_messages(ctl, &dom);
    cvirsh_domain_free(&dom);
    return ok;
}
