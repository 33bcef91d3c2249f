/* cvirtd's shared state, and the interface between the daemon skeleton
 * (main.c, rpc/) and the domain code (remote_domain.c). */
#ifndef CVIRT_DAEMON_DAEMON_H
#define CVIRT_DAEMON_DAEMON_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "daemon/rpc/dispatch.h"
#include "util/err.h"

struct evloop;
struct rpc_server;

/* Where the daemon keeps things. System mode: /var/lib/cvirt, /etc/cvirt,
 * /run/cvirt. Session mode: $XDG_DATA_HOME/cvirt, $XDG_CONFIG_HOME/cvirt,
 * $XDG_RUNTIME_DIR/cvirt. --root DIR puts the system layout under DIR. */
struct daemon_paths {
    char state_dir[PATH_MAX];     /* persistent state: domain definitions */
    char config_dir[PATH_MAX];
    char run_dir[PATH_MAX];       /* sockets, pid file, per-VM control sockets */
    char sock_rw[PATH_MAX];       /* run_dir/cvirt-sock */
    char sock_ro[PATH_MAX];       /* run_dir/cvirt-sock-ro */
    char pidfile[PATH_MAX];
};

struct daemon {
    struct daemon_paths paths;
    bool privileged;              /* system mode (root, or --root) */
    const char *uri_default;      /* "qemu:///system" or "qemu:///session" */
    const char *vmm_path;         /* cvirt-vmm, for capabilities and starts */
    struct evloop *loop;
    struct rpc_server *srv;       /* to emit events: rpc_server_emit_lifecycle() */
    void *domains;                /* owned by the domain code */
};

/* ---- implemented by the domain code (remote_domain.c) ----
 * Until it exists, rpc/remote_domain_stub.c provides these: an empty
 * domain list and "not supported" for every other domain procedure. */

/* Loads persistent definitions from d->paths.state_dir and reattaches to
 * running VMs; called once before the sockets open. */
int remote_domain_init(struct daemon *d, struct err *e);
/* Called on SIGTERM after the sockets are closed; running VMs stay up. */
void remote_domain_fini(struct daemon *d);
/* The domain procedures (lookups, lifecycle, XML, lists, snapshots,
 * console), added to the dispatch table after the connect-level ones. */
extern const struct rpc_proc remote_domain_procs[];
extern const size_t remote_domain_nprocs;
/* Live migration, libvirt's v3 sequence (remote_migrate.c). */
extern const struct rpc_proc remote_migrate_procs[];
extern const size_t remote_migrate_nprocs;

#endif
