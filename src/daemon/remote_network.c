/* The network procedures of the remote protocol, answered as libvirtd's
 * network driver answers them (codes, and wording where virsh shows it). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"
#include "daemon/name_list.h"
#include "daemon/network.h"
#include "daemon/rpc/dispatch.h"
#include "daemon/rpc/server.h"
#include "util/log.h"

#define VIR_FROM_NETWORK 19
#define VIR_ERR_NO_NETWORK 43

/* virNetworkEventLifecycleType; every detail is 0. */
enum {
    NET_EVENT_DEFINED = 0,
    NET_EVENT_UNDEFINED = 1,
    NET_EVENT_STARTED = 2,
    NET_EVENT_STOPPED = 3,
};

/* One daemon per process, as for storage. */
static struct network_driver *the_driver;

static int fail(struct rpc_error *err, const struct err *e)
{
    const char *msg = e->msg[0] ? e->msg : "unknown error";
    int code;
    switch (e->code) {
    case EBUSY: code = VIR_ERR_OPERATION_INVALID; break;
    case EEXIST: code = VIR_ERR_OPERATION_FAILED; break;
    case ENOENT: code = VIR_ERR_NO_NETWORK; break;
    case EINVAL:
    case ERANGE: code = VIR_ERR_XML_ERROR; break;
    case ENOTSUP: code = VIR_ERR_CONFIG_UNSUPPORTED; break;
    case ENOMEM: code = VIR_ERR_NO_MEMORY; break;
    default: code = VIR_ERR_SYSTEM_ERROR; break;
    }
    return rpc_err_set(err, code, VIR_FROM_NETWORK, "%s", msg);
}

static int oom(struct rpc_error *err)
{
    return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_NETWORK, "out of memory");
}

static struct network *net_get(const remote_nonnull_network *rn, struct rpc_error *err)
{
    struct network *n = network_find_uuid(the_driver, (const uint8_t *)rn->uuid);
    if (!n || strcmp(n->def->name, rn->name) != 0) {
        rpc_err_set(err, VIR_ERR_NO_NETWORK, VIR_FROM_NETWORK,
                    "Network not found: no network with matching uuid '%s'", rn->name);
        return NULL;
    }
    return n;
}

static int make_net(remote_nonnull_network *rn, const struct network *n, struct rpc_error *err)
{
    rn->name = strdup(n->def->name);
    if (!rn->name)
        return oom(err);
    memcpy(rn->uuid, n->def->uuid, 16);
    return 0;
}

/* ---- lists ---- */

static bool list_match(const void *ctx, size_t i, unsigned flags)
{
    const struct network *n = ((const struct network_driver *)ctx)->nets[i];
    return name_list_state_match(flags, n->active, n->persistent, n->autostart);
}

static int list_make(void *elem, const void *ctx, size_t i)
{
    remote_nonnull_network *rn = elem;
    const struct network *n = ((const struct network_driver *)ctx)->nets[i];
    if (!(rn->name = strdup(n->def->name)))
        return -ENOMEM;
    memcpy(rn->uuid, n->def->uuid, 16);
    return 0;
}

static int h_list_all(struct rpc_client *c, const void *args, void *ret, struct rpc_error *err)
{
    const remote_connect_list_all_networks_args *a = args;
    remote_connect_list_all_networks_ret *r = ret;
    void *val = NULL;
    (void)c;
    int rc = name_list_objects(the_driver->nnets, a->flags, a->need_results,
                               sizeof(*r->nets.nets_val), list_match, list_make, the_driver,
                               &val, &r->nets.nets_len, &r->ret);
    r->nets.nets_val = val;
    return rc < 0 ? oom(err) : 0;
}

static int count(bool active)
{
    int n = 0;
    for (size_t i = 0; i < the_driver->nnets; i++)
        n += the_driver->nets[i]->active == active;
    return n;
}

static int h_num_active(struct rpc_client *c, const void *args, void *ret,
                        struct rpc_error *err)
{
    (void)c; (void)args; (void)err;
    ((remote_network_int_ret *)ret)->value = count(true);
    return 0;
}

static int h_num_defined(struct rpc_client *c, const void *args, void *ret,
                         struct rpc_error *err)
{
    (void)c; (void)args; (void)err;
    ((remote_network_int_ret *)ret)->value = count(false);
    return 0;
}

static const char *active_name(const void *ctx, size_t i)
{
    const struct network *n = ((const struct network_driver *)ctx)->nets[i];
    return n->active ? n->def->name : NULL;
}

static const char *inactive_name(const void *ctx, size_t i)
{
    const struct network *n = ((const struct network_driver *)ctx)->nets[i];
    return n->active ? NULL : n->def->name;
}

static int list_names(const void *args, void *ret, bool active, struct rpc_error *err)
{
    const remote_connect_list_networks_args *a = args;
    remote_connect_list_networks_ret *r = ret;
    if (a->maxnames < 0 || a->maxnames > REMOTE_NETWORK_LIST_MAX)
        return rpc_err_set(err, VIR_ERR_RPC, VIR_FROM_NETWORK, "maxnames > %d",
                           REMOTE_NETWORK_LIST_MAX);
    if (name_list_fill(the_driver->nnets, a->maxnames, active ? active_name : inactive_name,
                       the_driver, &r->names.names_val, &r->names.names_len) < 0)
        return oom(err);
    return 0;
}

static int h_list_active(struct rpc_client *c, const void *args, void *ret,
                         struct rpc_error *err)
{
    (void)c;
    return list_names(args, ret, true, err);
}

static int h_list_defined(struct rpc_client *c, const void *args, void *ret,
                          struct rpc_error *err)
{
    (void)c;
    return list_names(args, ret, false, err);
}

/* ---- lookups ---- */

static int h_lookup_by_name(struct rpc_client *c, const void *args, void *ret,
                            struct rpc_error *err)
{
    const remote_network_lookup_by_name_args *a = args;
    struct network *n = network_find_name(the_driver, a->name);
    (void)c;
    if (!n)
        return rpc_err_set(err, VIR_ERR_NO_NETWORK, VIR_FROM_NETWORK,
                           "Network not found: no network with matching name '%s'", a->name);
    return make_net(&((remote_network_ret *)ret)->net, n, err);
}

static int h_lookup_by_uuid(struct rpc_client *c, const void *args, void *ret,
                            struct rpc_error *err)
{
    const remote_network_lookup_by_uuid_args *a = args;
    struct network *n = network_find_uuid(the_driver, (const uint8_t *)a->uuid);
    (void)c;
    if (!n)
        return rpc_err_set(err, VIR_ERR_NO_NETWORK, VIR_FROM_NETWORK,
                           "Network not found: no network with matching uuid");
    return make_net(&((remote_network_ret *)ret)->net, n, err);
}

/* ---- lifecycle ---- */

/* A lifecycle event (315) to every client that registered for it. The
 * name and uuid are passed, not the network: a transient network is gone
 * once it stopped. */
static void emit(struct rpc_client *c, const char *name, const char *uuid, int event)
{
    struct daemon *dm = rpc_client_daemon(c);
    if (!dm || !dm->srv)
        return;
    remote_network_event_lifecycle_msg m = { .net.name = (char *)name, .event = event };
    memcpy(m.net.uuid, uuid, 16);
    rpc_server_emit_event(dm->srv, RPC_EVENT_NETWORK, RPC_NETWORK_EVENT_ID_LIFECYCLE,
                          (const unsigned char *)uuid, 315,
                          (xdrproc_t)xdr_remote_network_event_lifecycle_msg, &m, &m.callbackID);
}

/* Fills ret with n and tells the clients it had event. */
static int reply_net(struct rpc_client *c, void *ret, const struct network *n, int event,
                     struct rpc_error *err)
{
    remote_nonnull_network *rn = &((remote_network_ret *)ret)->net;
    if (make_net(rn, n, err) < 0)
        return -1;
    emit(c, rn->name, rn->uuid, event);
    return 0;
}

static int define(struct rpc_client *c, const char *xml, void *ret, struct rpc_error *err)
{
    struct network *n;
    struct err e = { 0 };
    if (network_define(the_driver, xml, &n, &e) < 0)
        return fail(err, &e);
    log_info("network '%s' defined", n->def->name);
    return reply_net(c, ret, n, NET_EVENT_DEFINED, err);
}

static int h_define(struct rpc_client *c, const void *args, void *ret, struct rpc_error *err)
{
    return define(c, ((const remote_network_xml_args *)args)->xml, ret, err);
}

static int h_define_flags(struct rpc_client *c, const void *args, void *ret,
                          struct rpc_error *err)
{
    const remote_network_define_xml_flags_args *a = args;
    /* VIR_NETWORK_DEFINE_VALIDATE (1): the parser checks everything anyway. */
    if (a->flags & ~1u)
        return rpc_err_set(err, VIR_ERR_INVALID_ARG, VIR_FROM_NETWORK,
                           "unsupported flags (0x%x)", a->flags & ~1u);
    return define(c, a->xml, ret, err);
}

static int h_create_xml(struct rpc_client *c, const void *args, void *ret,
                        struct rpc_error *err)
{
    struct network *n;
    struct err e = { 0 };
    if (network_create_transient(the_driver, ((const remote_network_xml_args *)args)->xml,
                                 &n, &e) < 0)
        return fail(err, &e);
    return reply_net(c, ret, n, NET_EVENT_STARTED, err);
}

typedef int (*net_op)(struct network_driver *d, struct network *n, struct err *e);

/* Runs op on the network the client named and sends event once it did. */
static int run_op(struct rpc_client *c, const void *args, net_op op, int event,
                  struct rpc_error *err)
{
    const remote_nonnull_network *rn = &((const remote_network_args *)args)->net;
    struct network *n = net_get(rn, err);
    struct err e = { 0 };
    if (!n)
        return -1;
    if (op(the_driver, n, &e) < 0)
        return fail(err, &e);
    /* net_get() checked that the client's name and uuid are the network's. */
    emit(c, rn->name, rn->uuid, event);
    return 0;
}

static int h_create(struct rpc_client *c, const void *args, void *ret, struct rpc_error *err)
{
    (void)ret;
    return run_op(c, args, network_start, NET_EVENT_STARTED, err);
}

static int h_destroy(struct rpc_client *c, const void *args, void *ret, struct rpc_error *err)
{
    (void)ret;
    return run_op(c, args, network_destroy, NET_EVENT_STOPPED, err);
}

static int h_undefine(struct rpc_client *c, const void *args, void *ret,
                      struct rpc_error *err)
{
    (void)ret;
    return run_op(c, args, network_undefine, NET_EVENT_UNDEFINED, err);
}

static int h_set_autostart(struct rpc_client *c, const void *args, void *ret,
                           struct rpc_error *err)
{
    const remote_network_set_autostart_args *a = args;
    struct network *n = net_get(&a->net, err);
    struct err e = { 0 };
    (void)c; (void)ret;
    if (!n)
        return -1;
    return network_set_autostart(the_driver, n, a->autostart != 0, &e) < 0 ? fail(err, &e) : 0;
}

/* ---- queries ---- */

static int h_get_xml(struct rpc_client *c, const void *args, void *ret, struct rpc_error *err)
{
    const remote_network_get_xml_desc_args *a = args;
    struct network *n = net_get(&a->net, err);
    (void)c;
    if (!n)
        return -1;
    char *xml = network_def_format(n->def);
    if (!xml)
        return oom(err);
    ((remote_network_string_ret *)ret)->str = xml;
    return 0;
}

static int h_get_bridge(struct rpc_client *c, const void *args, void *ret,
                        struct rpc_error *err)
{
    struct network *n = net_get(&((const remote_network_args *)args)->net, err);
    (void)c;
    if (!n)
        return -1;
    if (!n->def->bridge)
        return rpc_err_set(err, VIR_ERR_INTERNAL_ERROR, VIR_FROM_NETWORK,
                           "network '%s' does not have a bridge name.", n->def->name);
    char *s = strdup(n->def->bridge);
    if (!s)
        return oom(err);
    ((remote_network_string_ret *)ret)->str = s;
    return 0;
}

enum query { Q_AUTOSTART, Q_ACTIVE, Q_PERSISTENT };

static int query(const void *args, void *ret, enum query q, struct rpc_error *err)
{
    struct network *n = net_get(&((const remote_network_args *)args)->net, err);
    if (!n)
        return -1;
    ((remote_network_int_ret *)ret)->value =
        q == Q_AUTOSTART ? n->autostart : q == Q_ACTIVE ? n->active : n->persistent;
    return 0;
}

static int h_get_autostart(struct rpc_client *c, const void *args, void *ret,
                           struct rpc_error *err)
{
    (void)c;
    return query(args, ret, Q_AUTOSTART, err);
}

static int h_is_active(struct rpc_client *c, const void *args, void *ret,
                       struct rpc_error *err)
{
    (void)c;
    return query(args, ret, Q_ACTIVE, err);
}

static int h_is_persistent(struct rpc_client *c, const void *args, void *ret,
                           struct rpc_error *err)
{
    (void)c;
    return query(args, ret, Q_PERSISTENT, err);
}

static char *opt_str(const char *s, bool *ok)
{
    if (!*s)
        return NULL;
    char **p = malloc(sizeof(char *));
    if (p && !(*p = strdup(s))) {
        free(p);
        p = NULL;
    }
    if (!p)
        *ok = false;
    return (char *)p;
}

static int fill_lease(remote_network_dhcp_lease *rl, const struct network *n,
                      const struct network_lease *l, struct rpc_error *err)
{
    bool ok = true;
    rl->iface = strdup(n->def->bridge ? n->def->bridge : "");
    rl->ipaddr = strdup(l->ip);
    rl->expirytime = l->expiry;
    rl->type = 0;                    /* VIR_IP_ADDR_TYPE_IPV4 */
    rl->prefix = n->def->prefix;
    rl->mac = (remote_string)opt_str(l->mac, &ok);
    rl->hostname = (remote_string)opt_str(l->hostname, &ok);
    rl->clientid = (remote_string)opt_str(l->clientid, &ok);
    return ok && rl->iface && rl->ipaddr ? 0 : oom(err);
}

static int h_dhcp_leases(struct rpc_client *c, const void *args, void *ret,
                         struct rpc_error *err)
{
    const remote_network_get_dhcp_leases_args *a = args;
    remote_network_get_dhcp_leases_ret *r = ret;
    struct network *n = net_get(&a->net, err);
    (void)c;
    if (!n)
        return -1;
    if (!n->active)
        return rpc_err_set(err, VIR_ERR_OPERATION_INVALID, VIR_FROM_NETWORK,
                           "network '%s' is not active", n->def->name);
    struct network_lease *ls;
    size_t nl;
    struct err e = { 0 };
    if (network_leases(the_driver, n, &ls, &nl, &e) < 0)
        return fail(err, &e);
    int rc = 0;
    if (a->need_results && nl && !(r->leases.leases_val = calloc(nl, sizeof(*r->leases.leases_val))))
        rc = oom(err);
    for (size_t i = 0; i < nl && rc == 0; i++) {
        if (a->mac && strcasecmp(*a->mac, ls[i].mac) != 0)
            continue;
        if (a->need_results) {
            rc = fill_lease(&r->leases.leases_val[r->leases.leases_len], n, &ls[i], err);
            r->leases.leases_len++;
        }
        r->ret++;
    }
    free(ls);
    return rc;
}

/* ---- the daemon's side ---- */

int remote_network_init(struct daemon *dm, struct err *e)
{
    struct network_driver *d = calloc(1, sizeof(*d));
    if (!d)
        return err_set(e, ENOMEM, "out of memory");
    if (network_init(d, dm->paths.config_dir, dm->paths.run_dir, dm->paths.state_dir, e) < 0) {
        free(d);
        return -1;
    }
    the_driver = d;
    network_set_default_driver(d);
    return 0;
}

void remote_network_fini(struct daemon *dm)
{
    (void)dm;
    if (!the_driver)
        return;
    network_fini(the_driver);
    free(the_driver);
    the_driver = NULL;
}

#define RO RPC_PROC_READONLY

const struct rpc_proc remote_network_procs[] = {
    RPC_PROC(36, "virConnectListDefinedNetworks", connect_list_networks_args,
             connect_list_networks_ret, h_list_defined, RO),
    RPC_PROC(38, "virConnectListNetworks", connect_list_networks_args,
             connect_list_networks_ret, h_list_active, RO),
    RPC_PROC(39, "virNetworkCreate", network_args, void, h_create, 0),
    RPC_PROC(40, "virNetworkCreateXML", network_xml_args, network_ret, h_create_xml, 0),
    RPC_PROC(41, "virNetworkDefineXML", network_xml_args, network_ret, h_define, 0),
    RPC_PROC(42, "virNetworkDestroy", network_args, void, h_destroy, 0),
    RPC_PROC(43, "virNetworkGetXMLDesc", network_get_xml_desc_args, network_string_ret,
             h_get_xml, RO),
    RPC_PROC(44, "virNetworkGetAutostart", network_args, network_int_ret,
             h_get_autostart, RO),
    RPC_PROC(45, "virNetworkGetBridgeName", network_args, network_string_ret,
             h_get_bridge, RO),
    RPC_PROC(46, "virNetworkLookupByName", network_lookup_by_name_args, network_ret,
             h_lookup_by_name, RO),
    RPC_PROC(47, "virNetworkLookupByUUID", network_lookup_by_uuid_args, network_ret,
             h_lookup_by_uuid, RO),
    RPC_PROC(48, "virNetworkSetAutostart", network_set_autostart_args, void,
             h_set_autostart, 0),
    RPC_PROC(49, "virNetworkUndefine", network_args, void, h_undefine, 0),
    RPC_PROC(50, "virConnectNumOfDefinedNetworks", void, network_int_ret, h_num_defined, RO),
    RPC_PROC(52, "virConnectNumOfNetworks", void, network_int_ret, h_num_active, RO),
    RPC_PROC(152, "virNetworkIsActive", network_args, network_int_ret, h_is_active, RO),
    RPC_PROC(153, "virNetworkIsPersistent", network_args, network_int_ret,
             h_is_persistent, RO),
    RPC_PROC(283, "virConnectListAllNetworks", connect_list_all_networks_args,
             connect_list_all_networks_ret, h_list_all, RO),
    RPC_PROC(341, "virNetworkGetDHCPLeases", network_get_dhcp_leases_args,
             network_get_dhcp_leases_ret, h_dhcp_leases, RO),
    RPC_PROC(432, "virNetworkDefineXMLFlags", network_define_xml_flags_args, network_ret,
             h_define_flags, 0),
};

const size_t remote_network_nprocs = sizeof(remote_network_procs) / sizeof(remote_network_procs[0]);
