/* Connect-level procedures: opening the connection, what the daemon and the
 * host are, features, authentication, event and close-callback
 * registration. */
#include "dispatch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "client.h"
#include "daemon/daemon.h"
#include "util/log.h"

/* The hypervisor type and versions clients see. "QEMU" because tools
 * (virt-install, virt-manager) key their behaviour on it and cvirt accepts
 * the QEMU driver's URIs and XML; the library version is the libvirt
 * release whose protocol this is. */
#define HV_TYPE "QEMU"
#define HV_VERSION 7002000ull     /* 7.2.0: the QEMU whose devices cvirt-vmm offers */
#define LIB_VERSION 9000000ull    /* 9.0.0 */

/* libvirt's virDrvFeature numbers the clients ask about. */
enum {
    FEATURE_MIGRATION_V3 = 6,
    FEATURE_MIGRATE_CHANGE_PROTECTION = 7,
    FEATURE_TYPED_PARAM_STRING = 9,
    FEATURE_PROGRAM_KEEPALIVE = 10,
    FEATURE_XML_MIGRATABLE = 11,
    FEATURE_MIGRATION_PARAMS = 13,
    FEATURE_REMOTE_EVENT_CALLBACK = 14,
    FEATURE_REMOTE_CLOSE_CALLBACK = 15,
};

static char *dupstr(const char *s, struct rpc_error *err)
{
    char *d = strdup(s);
    if (!d)
        rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_RPC, "%s", "string");
    return d;
}

/* Which URIs this daemon serves: both URI schemes, for this daemon's mode. */
static int check_uri(const struct daemon *d, const char *uri, struct rpc_error *err)
{
    const char *path = NULL;
    if (strncmp(uri, "qemu:///", 8) == 0)
        path = uri + 7;
    else if (strncmp(uri, "cvirt:///", 9) == 0)
        path = uri + 8;
    if (!path)
        return rpc_err_set(err, VIR_ERR_NO_CONNECT, VIR_FROM_NONE, "%s", uri);
    const char *want = d && !d->privileged ? "/session" : "/system";
    if (strcmp(path, want) != 0)
        return rpc_err_set(err, VIR_ERR_INTERNAL_ERROR, VIR_FROM_QEMU,
                           "unexpected QEMU URI path '%s', try qemu://%s", path, want);
    return 0;
}

static int h_open(struct rpc_client *c, const void *args, void *ret, struct rpc_error *err)
{
    const remote_connect_open_args *a = args;
    const struct daemon *d = rpc_client_daemon(c);
    (void)ret;
    if (c->open)
        return rpc_err_set(err, VIR_ERR_INTERNAL_ERROR, VIR_FROM_RPC, "connection already open");
    const char *name = a->name && **a->name ? *a->name : NULL;
    const char *def = d && d->uri_default ? d->uri_default : "qemu:///system";
    if (name && check_uri(d, name, err) < 0)
        return -1;
    c->uri = dupstr(name ? name : def, err);
    if (!c->uri)
        return -1;
    c->open = true;
    c->conn_readonly = c->readonly || (a->flags & 1);   /* VIR_CONNECT_RO */
    return 0;
}

static int h_close(struct rpc_client *c, const void *args, void *ret, struct rpc_error *err)
{
    (void)args; (void)ret; (void)err;
    c->open = false;
    c->close_cb = false;
    c->legacy_lifecycle = false;
    c->ncbs = 0;
    free(c->uri);
    c->uri = NULL;
    return 0;
}

static int h_get_type(struct rpc_client *c, const void *args, void *ret, struct rpc_error *err)
{
    remote_connect_get_type_ret *r = ret;
    (void)c; (void)args;
    r->type = dupstr(HV_TYPE, err);
    return r->type ? 0 : -1;
}

static int h_get_version(struct rpc_client *c, const void *args, void *ret, struct rpc_error *err)
{
    (void)c; (void)args; (void)err;
    ((remote_connect_get_version_ret *)ret)->hv_ver = HV_VERSION;
    return 0;
}

static int h_get_lib_version(struct rpc_client *c, const void *args, void *ret,
                             struct rpc_error *err)
{
    (void)c; (void)args; (void)err;
    ((remote_connect_get_lib_version_ret *)ret)->lib_ver = LIB_VERSION;
    return 0;
}

static int h_get_hostname(struct rpc_client *c, const void *args, void *ret,
                          struct rpc_error *err)
{
    remote_connect_get_hostname_ret *r = ret;
    char host[256] = "";
    (void)c; (void)args;
    if (gethostname(host, sizeof(host) - 1) < 0)
        return rpc_err_set(err, VIR_ERR_SYSTEM_ERROR, VIR_FROM_NONE,
                           "Cannot find the host name: %s", strerror(errno));
    r->hostname = dupstr(host, err);
    return r->hostname ? 0 : -1;
}

static int h_get_uri(struct rpc_client *c, const void *args, void *ret, struct rpc_error *err)
{
    remote_connect_get_uri_ret *r = ret;
    (void)args;
    r->uri = dupstr(c->uri ? c->uri : "qemu:///system", err);
    return r->uri ? 0 : -1;
}

/* The first "cpu MHz" line of /proc/cpuinfo, 0 when there is none. */
static int cpu_mhz(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return 0;
    char line[256];
    double mhz = 0;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "cpu MHz", 7) == 0) {
            const char *colon = strchr(line, ':');
            if (colon)
                mhz = strtod(colon + 1, NULL);
            break;
        }
    }
    fclose(f);
    return (int)mhz;
}

static int h_node_get_info(struct rpc_client *c, const void *args, void *ret,
                           struct rpc_error *err)
{
    remote_node_get_info_ret *r = ret;
    struct utsname u;
    struct sysinfo si;
    (void)c; (void)args;
    if (uname(&u) < 0 || sysinfo(&si) < 0)
        return rpc_err_set(err, VIR_ERR_SYSTEM_ERROR, VIR_FROM_NONE,
                           "cannot read host information: %s", strerror(errno));
    memset(r->model, 0, sizeof(r->model));
    memcpy(r->model, u.machine, strnlen(u.machine, sizeof(r->model) - 1));
    r->memory = (uint64_t)si.totalram * si.mem_unit / 1024;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    r->cpus = cpus > 0 ? (int)cpus : 1;
    r->mhz = cpu_mhz();
    r->nodes = 1;
    r->sockets = 1;
    r->cores = r->cpus;
    r->threads = 1;
    return 0;
}

/* The host's UUID line from /etc/machine-id (32 hex digits), as libvirt
 * falls back to when SMBIOS gives none; empty when there is no id. */
static void host_uuid(char out[40])
{
    char id[64] = "";
    FILE *f = fopen("/etc/machine-id", "r");
    if (!f)
        return;
    bool ok = fgets(id, sizeof(id), f) != NULL;
    fclose(f);
    if (!ok || strspn(id, "0123456789abcdef") != 32)
        return;
    snprintf(out, 40, "%.8s-%.4s-%.4s-%.4s-%.12s", id, id + 8, id + 12, id + 16, id + 20);
}

static int h_get_capabilities(struct rpc_client *c, const void *args, void *ret,
                              struct rpc_error *err)
{
    remote_connect_get_capabilities_ret *r = ret;
    const struct daemon *d = rpc_client_daemon(c);
    struct utsname u;
    (void)args;
    if (uname(&u) < 0)
        return rpc_err_set(err, VIR_ERR_SYSTEM_ERROR, VIR_FROM_NONE, "uname: %s",
                           strerror(errno));
    const char *vmm = d && d->vmm_path ? d->vmm_path : "/usr/bin/cvirt-vmm";
    char uuid[40] = "", uuid_line[64] = "";
    host_uuid(uuid);
    if (uuid[0])
        snprintf(uuid_line, sizeof(uuid_line), "    <uuid>%s</uuid>\n", uuid);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    char *xml = NULL;
    int n = asprintf(&xml,
        "<capabilities>\n"
        "  <host>\n"
        "%s"
        "    <cpu>\n"
        "      <arch>%s</arch>\n"
        "      <topology sockets='1' dies='1' cores='%ld' threads='1'/>\n"
        "    </cpu>\n"
        "    <power_management/>\n"
        "    <secmodel>\n"
        "      <model>none</model>\n"
        "      <doi>0</doi>\n"
        "    </secmodel>\n"
        "  </host>\n"
        "  <guest>\n"
        "    <os_type>hvm</os_type>\n"
        "    <arch name='x86_64'>\n"
        "      <wordsize>64</wordsize>\n"
        "      <emulator>%s</emulator>\n"
        "      <machine maxCpus='255'>pc</machine>\n"
        "      <domain type='kvm'/>\n"
        "    </arch>\n"
        "    <features>\n"
        "      <acpi default='on' toggle='yes'/>\n"
        "      <apic default='on' toggle='no'/>\n"
        "    </features>\n"
        "  </guest>\n"
        "</capabilities>\n", uuid_line, u.machine, cpus > 0 ? cpus : 1, vmm);
    if (n < 0)
        return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_RPC, "capabilities");
    r->capabilities = xml;
    return 0;
}

static int h_get_domain_capabilities(struct rpc_client *c, const void *args, void *ret,
                                     struct rpc_error *err)
{
    const remote_connect_get_domain_capabilities_args *a = args;
    remote_connect_get_domain_capabilities_ret *r = ret;
    const struct daemon *d = rpc_client_daemon(c);
    const char *arch = a->arch && *a->arch ? *a->arch : "x86_64";
    const char *virt = a->virttype && *a->virttype ? *a->virttype : "kvm";
    if (strcmp(arch, "x86_64") != 0)
        return rpc_err_set(err, VIR_ERR_INVALID_ARG, VIR_FROM_QEMU,
                           "architecture '%s' is not supported", arch);
    if (strcmp(virt, "kvm") != 0)
        return rpc_err_set(err, VIR_ERR_INVALID_ARG, VIR_FROM_QEMU,
                           "virttype '%s' is not supported", virt);
    const char *vmm = d && d->vmm_path ? d->vmm_path : "/usr/bin/cvirt-vmm";
    char *xml = NULL;
    int n = asprintf(&xml,
        "<domainCapabilities>\n"
        "  <path>%s</path>\n"
        "  <domain>kvm</domain>\n"
        "  <machine>pc</machine>\n"
        "  <arch>x86_64</arch>\n"
        "  <vcpu max='255'/>\n"
        "  <os supported='yes'>\n"
        "    <enum name='firmware'/>\n"
        "  </os>\n"
        "  <devices>\n"
        "    <disk supported='yes'>\n"
        "      <enum name='diskDevice'><value>disk</value></enum>\n"
        "      <enum name='bus'><value>virtio</value></enum>\n"
        "    </disk>\n"
        "    <graphics supported='no'/>\n"
        "    <video supported='no'/>\n"
        "  </devices>\n"
        "  <features>\n"
        "    <vmcoreinfo supported='no'/>\n"
        "  </features>\n"
        "</domainCapabilities>\n", vmm);
    if (n < 0)
        return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_RPC, "domain capabilities");
    r->capabilities = xml;
    return 0;
}

static int h_supports_feature(struct rpc_client *c, const void *args, void *ret,
                              struct rpc_error *err)
{
    const remote_connect_supports_feature_args *a = args;
    remote_connect_supports_feature_ret *r = ret;
    (void)err;
    switch (a->feature) {
    case FEATURE_PROGRAM_KEEPALIVE:
        /* Asking is how a client turns on the daemon's pings, as with
         * libvirtd. */
        c->keepalive = true;
        r->supported = 1;
        break;
    case FEATURE_REMOTE_EVENT_CALLBACK:
    case FEATURE_REMOTE_CLOSE_CALLBACK:
    /* Live migration as virsh drives it: the v3 sequence with typed
     * parameters (no peer-to-peer, tunnelled or offline migration). */
    case FEATURE_MIGRATION_V3:
    case FEATURE_MIGRATE_CHANGE_PROTECTION:
    case FEATURE_TYPED_PARAM_STRING:
    case FEATURE_XML_MIGRATABLE:
    case FEATURE_MIGRATION_PARAMS:
        r->supported = 1;
        break;
    default:
        r->supported = 0;
    }
    return 0;
}

static int h_auth_list(struct rpc_client *c, const void *args, void *ret, struct rpc_error *err)
{
    remote_auth_list_ret *r = ret;
    (void)c; (void)args;
    r->types.types_val = calloc(1, sizeof(remote_auth_type));
    if (!r->types.types_val)
        return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_RPC, "auth list");
    r->types.types_len = 1;
    r->types.types_val[0] = REMOTE_AUTH_NONE;
    return 0;
}

/* A char<> array of the string and its NUL, as libvirt sends these. */
static int char_array(const char *s, char **val, u_int *len, struct rpc_error *err)
{
    *val = dupstr(s, err);
    if (!*val)
        return -1;
    *len = (u_int)strlen(s) + 1;
    return 0;
}

static int h_node_get_security_model(struct rpc_client *c, const void *args, void *ret,
                                     struct rpc_error *err)
{
    remote_node_get_security_model_ret *r = ret;
    (void)c; (void)args;
    if (char_array("none", &r->model.model_val, &r->model.model_len, err) < 0 ||
        char_array("0", &r->doi.doi_val, &r->doi.doi_len, err) < 0)
        return -1;
    return 0;
}

static int h_register_close_callback(struct rpc_client *c, const void *args, void *ret,
                                     struct rpc_error *err)
{
    (void)args; (void)ret; (void)err;
    c->close_cb = true;
    return 0;
}

static int h_unregister_close_callback(struct rpc_client *c, const void *args, void *ret,
                                       struct rpc_error *err)
{
    (void)args; (void)ret; (void)err;
    c->close_cb = false;
    return 0;
}

/* libvirt 9.0's VIR_*_EVENT_ID_LAST per kind: ids below it are valid
 * even when this daemon never emits them. */
#define DOMAIN_EVENT_ID_LAST 27
#define NETWORK_EVENT_ID_LAST 1
#define POOL_EVENT_ID_LAST 2

static const int event_id_last[] = {
    [RPC_EVENT_DOMAIN] = DOMAIN_EVENT_ID_LAST,
    [RPC_EVENT_NETWORK] = NETWORK_EVENT_ID_LAST,
    [RPC_EVENT_STORAGE_POOL] = POOL_EVENT_ID_LAST,
};

/* Adds a callback of c for events event_id of kind on the object with
 * uuid (NULL: every object) and returns its new callbackID in *id. */
static int callback_add(struct rpc_client *c, enum rpc_event_kind kind, int event_id,
                        const char *uuid, int *id, struct rpc_error *err)
{
    if (event_id < 0 || event_id >= event_id_last[kind])
        return rpc_err_set(err, VIR_ERR_INVALID_ARG, VIR_FROM_RPC,
                           "unsupported event ID %d", event_id);
    if (c->ncbs >= RPC_CLIENT_CALLBACKS_MAX)
        return rpc_err_set(err, VIR_ERR_OPERATION_FAILED, VIR_FROM_RPC,
                           "too many event callbacks (%d)", c->ncbs);
    struct rpc_event_cb *cb = &c->cbs[c->ncbs++];
    memset(cb, 0, sizeof(*cb));
    cb->id = c->next_cb_id++;
    cb->kind = kind;
    cb->event_id = event_id;
    if (uuid) {
        cb->has_obj = true;
        memcpy(cb->uuid, uuid, 16);
    }
    *id = cb->id;
    return 0;
}

/* Removes callback id, which must be one of kind: a network callback's id
 * does not deregister a domain callback. */
static int callback_remove(struct rpc_client *c, enum rpc_event_kind kind, int id,
                           struct rpc_error *err)
{
    for (int i = 0; i < c->ncbs; i++) {
        if (c->cbs[i].id == id && c->cbs[i].kind == kind) {
            c->cbs[i] = c->cbs[--c->ncbs];
            return 0;
        }
    }
    return rpc_err_set(err, VIR_ERR_INVALID_ARG, VIR_FROM_RPC,
                       "callback %d not registered", id);
}

static int h_event_callback_register(struct rpc_client *c, const void *args, void *ret,
                                     struct rpc_error *err)
{
    const remote_connect_domain_event_callback_register_any_args *a = args;
    remote_connect_domain_event_callback_register_any_ret *r = ret;
    return callback_add(c, RPC_EVENT_DOMAIN, a->eventID, a->dom ? a->dom->uuid : NULL,
                        &r->callbackID, err);
}

static int h_event_callback_deregister(struct rpc_client *c, const void *args, void *ret,
                                       struct rpc_error *err)
{
    const remote_connect_domain_event_callback_deregister_any_args *a = args;
    (void)ret;
    return callback_remove(c, RPC_EVENT_DOMAIN, a->callbackID, err);
}

static int h_network_event_register(struct rpc_client *c, const void *args, void *ret,
                                    struct rpc_error *err)
{
    const remote_connect_network_event_register_any_args *a = args;
    remote_connect_network_event_register_any_ret *r = ret;
    return callback_add(c, RPC_EVENT_NETWORK, a->eventID, a->net ? a->net->uuid : NULL,
                        &r->callbackID, err);
}

static int h_network_event_deregister(struct rpc_client *c, const void *args, void *ret,
                                      struct rpc_error *err)
{
    const remote_connect_network_event_deregister_any_args *a = args;
    (void)ret;
    return callback_remove(c, RPC_EVENT_NETWORK, a->callbackID, err);
}

static int h_pool_event_register(struct rpc_client *c, const void *args, void *ret,
                                 struct rpc_error *err)
{
    const remote_connect_storage_pool_event_register_any_args *a = args;
    remote_connect_storage_pool_event_register_any_ret *r = ret;
    return callback_add(c, RPC_EVENT_STORAGE_POOL, a->eventID,
                        a->pool ? a->pool->uuid : NULL, &r->callbackID, err);
}

static int h_pool_event_deregister(struct rpc_client *c, const void *args, void *ret,
                                   struct rpc_error *err)
{
    const remote_connect_storage_pool_event_deregister_any_args *a = args;
    (void)ret;
    return callback_remove(c, RPC_EVENT_STORAGE_POOL, a->callbackID, err);
}

static int h_event_register_any(struct rpc_client *c, const void *args, void *ret,
                                struct rpc_error *err)
{
    const remote_connect_domain_event_register_any_args *a = args;
    (void)ret;
    if (a->eventID < 0 || a->eventID >= DOMAIN_EVENT_ID_LAST)
        return rpc_err_set(err, VIR_ERR_INVALID_ARG, VIR_FROM_RPC,
                           "unsupported event ID %d", a->eventID);
    if (a->eventID == RPC_DOMAIN_EVENT_ID_LIFECYCLE)
        c->legacy_lifecycle = true;
    return 0;
}

static int h_event_deregister_any(struct rpc_client *c, const void *args, void *ret,
                                  struct rpc_error *err)
{
    const remote_connect_domain_event_deregister_any_args *a = args;
    (void)ret; (void)err;
    if (a->eventID == RPC_DOMAIN_EVENT_ID_LIFECYCLE)
        c->legacy_lifecycle = false;
    return 0;
}

#define RO RPC_PROC_READONLY
#define NC RPC_PROC_NO_CONN

const struct rpc_proc rpc_connect_procs[] = {
    RPC_PROC(1, "virConnectOpen", connect_open_args, void, h_open, RO | NC),
    RPC_PROC(2, "virConnectClose", void, void, h_close, RO | NC),
    RPC_PROC(3, "virConnectGetType", void, connect_get_type_ret, h_get_type, RO),
    RPC_PROC(4, "virConnectGetVersion", void, connect_get_version_ret, h_get_version, RO),
    RPC_PROC(6, "virNodeGetInfo", void, node_get_info_ret, h_node_get_info, RO),
    RPC_PROC(7, "virConnectGetCapabilities", void, connect_get_capabilities_ret,
             h_get_capabilities, RO),
    RPC_PROC(59, "virConnectGetHostname", void, connect_get_hostname_ret, h_get_hostname, RO),
    RPC_PROC(60, "virConnectSupportsFeature", connect_supports_feature_args,
             connect_supports_feature_ret, h_supports_feature, RO | NC),
    RPC_PROC(66, "virConnectAuthList", void, auth_list_ret, h_auth_list, RO | NC),
    RPC_PROC(110, "virConnectGetURI", void, connect_get_uri_ret, h_get_uri, RO),
    RPC_PROC(122, "virNodeGetSecurityModel", void, node_get_security_model_ret,
             h_node_get_security_model, RO),
    RPC_PROC(157, "virConnectGetLibVersion", void, connect_get_lib_version_ret,
             h_get_lib_version, RO),
    RPC_PROC(167, "virConnectDomainEventRegisterAny", connect_domain_event_register_any_args,
             void, h_event_register_any, RO),
    RPC_PROC(168, "virConnectDomainEventDeregisterAny",
             connect_domain_event_deregister_any_args, void, h_event_deregister_any, RO),
    RPC_PROC(313, "virConnectNetworkEventRegisterAny",
             connect_network_event_register_any_args,
             connect_network_event_register_any_ret, h_network_event_register, RO),
    RPC_PROC(314, "virConnectNetworkEventDeregisterAny",
             connect_network_event_deregister_any_args, void, h_network_event_deregister, RO),
    RPC_PROC(316, "virConnectDomainEventRegisterAny",
             connect_domain_event_callback_register_any_args,
             connect_domain_event_callback_register_any_ret, h_event_callback_register, RO),
    RPC_PROC(317, "virConnectDomainEventDeregisterAny",
             connect_domain_event_callback_deregister_any_args, void,
             h_event_callback_deregister, RO),
    RPC_PROC(342, "virConnectGetDomainCapabilities", connect_get_domain_capabilities_args,
             connect_get_domain_capabilities_ret, h_get_domain_capabilities, RO),
    RPC_PROC(360, "virConnectRegisterCloseCallback", void, void, h_register_close_callback, RO),
    RPC_PROC(361, "virConnectUnregisterCloseCallback", void, void,
             h_unregister_close_callback, RO),
    RPC_PROC(368, "virConnectStoragePoolEventRegisterAny",
             connect_storage_pool_event_register_any_args,
             connect_storage_pool_event_register_any_ret, h_pool_event_register, RO),
    RPC_PROC(369, "virConnectStoragePoolEventDeregisterAny",
             connect_storage_pool_event_deregister_any_args, void, h_pool_event_deregister, RO),
};

const size_t rpc_connect_nprocs = sizeof(rpc_connect_procs) / sizeof(rpc_connect_procs[0]);
