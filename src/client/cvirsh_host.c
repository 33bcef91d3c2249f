/* Host commands: version, nodeinfo, hostname, capabilities. */
#include <string.h>

#include "client/cvirsh_cmds.h"

#ifndef CVIRT_VERSION
#define CVIRT_VERSION "0.0.0"
#endif

/* libvirt packs versions as major * 1000000 + minor * 1000 + micro. */
static void print_version(struct cvirsh *ctl, const char *what, const char *name,
                          unsigned long long v)
{
    cvirsh_print(ctl, "%s %s %llu.%llu.%llu\n", what, name, v / 1000000,
                 (v / 1000) % 1000, v % 1000);
}

bool cvirsh_cmd_version(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    struct err e = {0};
    remote_connect_get_type_ret t;
    memset(&t, 0, sizeof(t));
    if (client_call(ctl->conn, CLIENT_PROC_CONNECT_GET_TYPE, NULL, NULL,
                    (xdrproc_t)xdr_remote_connect_get_type_ret, &t, &e) < 0) {
        cvirsh_error(ctl, "failed to get hypervisor type");
        cvirsh_report(ctl, &e);
        return false;
    }
    cvirsh_print(ctl, "Compiled against library: cvirt %s\n", CVIRT_VERSION);
    cvirsh_print(ctl, "Using library: cvirt %s\n", CVIRT_VERSION);
    cvirsh_print(ctl, "Using API: %s %s\n", t.type, CVIRT_VERSION);

    remote_connect_get_version_ret v;
    memset(&v, 0, sizeof(v));
    bool ok = true;
    if (client_call(ctl->conn, CLIENT_PROC_CONNECT_GET_VERSION, NULL, NULL,
                    (xdrproc_t)xdr_remote_connect_get_version_ret, &v, &e) < 0) {
        cvirsh_error(ctl, "failed to get the hypervisor version");
        ok = false;
    } else if (v.hv_ver == 0) {
        cvirsh_print(ctl, "Cannot extract running %s hypervisor version\n", t.type);
    } else {
        print_version(ctl, "Running hypervisor:", t.type, v.hv_ver);
    }
    client_free_ret((xdrproc_t)xdr_remote_connect_get_type_ret, &t);
    if (ok && cvirsh_opt_bool(cmd, "daemon")) {
        remote_connect_get_lib_version_ret lv;
        memset(&lv, 0, sizeof(lv));
        if (client_call(ctl->conn, CLIENT_PROC_CONNECT_GET_LIB_VERSION, NULL, NULL,
                        (xdrproc_t)xdr_remote_connect_get_lib_version_ret, &lv,
                        &e) < 0) {
            cvirsh_error(ctl, "failed to get the daemon version");
            ok = false;
        } else {
            cvirsh_print(ctl, "Running against daemon: %llu.%llu.%llu\n",
                         (unsigned long long)lv.lib_ver / 1000000,
                         ((unsigned long long)lv.lib_ver / 1000) % 1000,
                         (unsigned long long)lv.lib_ver % 1000);
        }
    }
    return ok;
}

bool cvirsh_cmd_nodeinfo(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    struct err e = {0};
    remote_node_get_info_ret r;
    memset(&r, 0, sizeof(r));
    if (client_call(ctl->conn, CLIENT_PROC_NODE_GET_INFO, NULL, NULL,
                    (xdrproc_t)xdr_remote_node_get_info_ret, &r, &e) < 0) {
        cvirsh_error(ctl, "failed to get node information");
        cvirsh_report(ctl, &e);
        return false;
    }
    char model[33];
    memcpy(model, r.model, 32);
    model[32] = '\0';
    cvirsh_print(ctl, "%-20s %s\n", "CPU model:", model);
    cvirsh_print(ctl, "%-20s %d\n", "CPU(s):", r.cpus);
    if (r.mhz)
        cvirsh_print(ctl, "%-20s %d MHz\n", "CPU frequency:", r.mhz);
    cvirsh_print(ctl, "%-20s %d\n", "CPU socket(s):", r.sockets);
    cvirsh_print(ctl, "%-20s %d\n", "Core(s) per socket:", r.cores);
    cvirsh_print(ctl, "%-20s %d\n", "Thread(s) per core:", r.threads);
    cvirsh_print(ctl, "%-20s %d\n", "NUMA cell(s):", r.nodes);
    cvirsh_print(ctl, "%-20s %llu KiB\n", "Memory size:", (unsigned long long)r.memory);
    return true;
}

static bool print_string_call(struct cvirsh *ctl, int proc, xdrproc_t x,
                              const char *failure)
{
    struct err e = {0};
    /* Both replies are one non-NULL string. */
    remote_connect_get_hostname_ret r;
    memset(&r, 0, sizeof(r));
    if (client_call(ctl->conn, proc, NULL, NULL, x, &r, &e) < 0) {
        cvirsh_error(ctl, "%s", failure);
        cvirsh_report(ctl, &e);
        return false;
    }
    cvirsh_print(ctl, "%s\n", r.hostname);
    client_free_ret(x, &r);
    return true;
}

bool cvirsh_cmd_hostname(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    return print_string_call(ctl, CLIENT_PROC_CONNECT_GET_HOSTNAME,
                             (xdrproc_t)xdr_remote_connect_get_hostname_ret,
                             "failed to get hostname");
}

bool cvirsh_cmd_capabilities(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    _Static_assert(sizeof(remote_connect_get_capabilities_ret) ==
                   sizeof(remote_connect_get_hostname_ret), "one string each");
    return print_string_call(ctl, CLIENT_PROC_CONNECT_GET_CAPABILITIES,
                             (xdrproc_t)xdr_remote_connect_get_capabilities_ret,
                             "failed to get capabilities");
}
