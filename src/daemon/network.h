/* Virtual networks, kept as libvirt's network driver keeps them:
 *
 *   CONFIG/networks/NAME.xml             persistent definitions
 *   CONFIG/networks/autostart/NAME.xml   symlinks to ../NAME.xml
 *   RUN/networks/NAME.xml                the definition of a running network,
 *                                        so a restarted daemon reattaches
 *   RUN/networks/NAME.conf, NAME.pid     its dnsmasq's config and pid
 *   STATE/networks/NAME.leases           dnsmasq's lease file
 *
 * Three kinds: NAT (a bridge with an address, dnsmasq for DHCP and DNS, an
 * nftables table "cvirt_NAME" that masquerades the subnet), isolated (the
 * same without the table) and bridged (<forward mode='bridge'/>: an existing
 * host bridge the daemon neither creates nor removes). Domains get one
 * persistent tap per <interface type='network'|'bridge'>, put on the
 * bridge, and removed when the domain stops. */
#ifndef CVIRT_DAEMON_NETWORK_H
#define CVIRT_DAEMON_NETWORK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/err.h"

/* Interface names: IFNAMSIZ - 1. */
#define NETWORK_IFNAME_MAX 15
#define NETWORK_NAME_MAX 200
#define NETWORK_MAX_HOSTS 1024

enum network_forward {
    NETWORK_ISOLATED,   /* no <forward> */
    NETWORK_NAT,        /* <forward/> or <forward mode='nat'/> */
    NETWORK_BRIDGE,     /* <forward mode='bridge'/>: an existing host bridge */
};

struct network_host {
    uint8_t mac[6];
    uint32_t ip;        /* host byte order */
    char *name;         /* NULL when absent */
};

struct network_def {
    char *name;
    uint8_t uuid[16];
    enum network_forward forward;
    char *bridge;       /* NULL until the driver picks virbrN */
    bool stp;           /* stp='on' (libvirt's default) */
    unsigned delay;     /* forward delay, seconds */
    bool has_mac;
    uint8_t mac[6];
    bool has_ip;        /* IPv4 only; addresses in host byte order */
    uint32_t addr;
    unsigned prefix;    /* 1..30 */
    bool has_dhcp;
    uint32_t range_start, range_end;
    struct network_host *hosts;
    size_t nhosts;
};

struct network {
    struct network_def *def;
    bool active;
    bool persistent;
    bool autostart;
    pid_t dnsmasq_pid;  /* 0 when none runs */
};

struct network_driver {
    char *config_dir;   /* CONFIG/networks */
    char *autostart_dir;
    char *run_dir;      /* RUN/networks */
    char *state_dir;    /* STATE/networks */
    struct network **nets;
    size_t nnets;
    /* Host changes off: unit tests exercise the bookkeeping only. */
    bool no_host;
};

/* ---- XML (network_xml.c) ---- */

/* Parses and checks one <network>: a missing uuid is generated, a missing
 * <mac> too for a network that has its own bridge. */
int network_def_parse(const char *xml, struct network_def **out, struct err *e);
/* libvirt's layout. NULL when out of memory. */
char *network_def_format(const struct network_def *d);
void network_def_free(struct network_def *d);
/* The subnet's mask in host byte order. */
uint32_t network_mask(unsigned prefix);
void network_ip_format(uint32_t ip, char buf[16]);

/* ---- the driver (network.c) ---- */

/* Loads definitions and run state: a network whose bridge still exists
 * stays active (its dnsmasq is restarted if it died); then autostarts. */
int network_init(struct network_driver *d, const char *config, const char *run,
                 const char *state, struct err *e);
void network_fini(struct network_driver *d);
/* The driver network_domain_taps() consults (one per process). */
void network_set_default_driver(struct network_driver *d);

struct network *network_find_name(const struct network_driver *d, const char *name);
struct network *network_find_uuid(const struct network_driver *d, const uint8_t uuid[16]);

/* Refuses a def that clashes with another network (name with another
 * uuid, uuid with another name, same bridge, overlapping subnet) with
 * -EEXIST; self is the network being redefined, or NULL. */
int network_check_conflicts(const struct network_driver *d, const struct network_def *def,
                            const struct network *self, struct err *e);
/* Gives a def without a bridge the first free virbrN. */
int network_assign_bridge(const struct network_driver *d, struct network_def *def,
                          struct err *e);

int network_define(struct network_driver *d, const char *xml, struct network **out,
                   struct err *e);
/* A transient network, started at once. */
int network_create_transient(struct network_driver *d, const char *xml,
                             struct network **out, struct err *e);
int network_undefine(struct network_driver *d, struct network *n, struct err *e);
int network_start(struct network_driver *d, struct network *n, struct err *e);
/* Stops the network (a transient one is then freed). */
int network_destroy(struct network_driver *d, struct network *n, struct err *e);
int network_set_autostart(struct network_driver *d, struct network *n, bool on,
                          struct err *e);

struct network_lease {
    int64_t expiry;
    char mac[18];
    char ip[16];
    char hostname[64];
    char clientid[128];
};
/* The leases dnsmasq wrote for a running network (*out malloc'ed). */
int network_leases(const struct network_driver *d, const struct network *n,
                   struct network_lease **out, size_t *count, struct err *e);

/* ---- domains ---- */

struct domain_def;
/* Creates a tap per <interface type='network'|'bridge'> of a starting
 * domain (vnetN, or the name in its target_dev when reattaching a saved
 * one), puts it on the bridge, brings it up and stores its name in
 * target_dev for cvirt-vmm's --net. All or nothing. */
int network_domain_taps(struct domain_def *def, struct err *e);
/* Removes the taps network_domain_taps() made (the domain stopped). */
void network_domain_release(struct domain_def *def);

/* ---- host operations (network_host.c) ---- */

bool network_host_link_exists(const char *ifname);
int network_host_bridge_add(const struct network_def *def, struct err *e);
void network_host_bridge_del(const char *bridge);
/* name: a template with %d ("vnet%d") or a fixed name; the result in out. */
int network_host_tap_add(const char *name, const char *bridge, char out[16], struct err *e);
void network_host_tap_del(const char *name);
int network_host_nat_add(const struct network_driver *drv, const struct network_def *def,
                         struct err *e);
void network_host_nat_del(const struct network_def *def);
int network_host_dnsmasq_start(const struct network_driver *drv,
                               const struct network_def *def, pid_t *pid, struct err *e);
void network_host_dnsmasq_stop(const struct network_driver *drv,
                               const struct network_def *def, pid_t pid);
/* The pid in RUN/networks/NAME.pid if that dnsmasq still runs, else 0. */
pid_t network_host_dnsmasq_pid(const struct network_driver *drv, const char *name);

/* ---- the remote procedures (remote_network.c) ----
 * Declared only where the RPC headers are in (include daemon/daemon.h or
 * rpc/dispatch.h first): the domain code uses this header without them. */
#ifdef CVIRT_DAEMON_RPC_DISPATCH_H
struct daemon;
int remote_network_init(struct daemon *d, struct err *e);
void remote_network_fini(struct daemon *d);
extern const struct rpc_proc remote_network_procs[];
extern const size_t remote_network_nprocs;
#endif

#endif
