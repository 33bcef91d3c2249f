/* The procedure table of the remote program and the dispatcher that runs
 * one CALL against it.
 *
 * A part of the daemon adds procedures by exporting an array of struct
 * rpc_proc (RPC_PROC() lines) and listing it in the daemon's table (see
 * daemon.h: connect-level procedures live in rpc/dispatch.c, domain ones
 * in remote_domain.c). A handler gets the decoded arguments and a zeroed
 * result; it returns 0 with ret filled (the dispatcher encodes and then
 * frees it with xdr_free, so strings and arrays in ret must be malloc'ed),
 * or -1 with err set, or RPC_HANDLER_DEFERRED after rpc_defer() when the
 * reply comes later (see below). */
#ifndef CVIRT_DAEMON_RPC_DISPATCH_H
#define CVIRT_DAEMON_RPC_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "wire.h"

struct rpc_client;
struct daemon;

typedef int (*rpc_handler)(struct rpc_client *c, const void *args, void *ret,
                           struct rpc_error *err);

enum {
    RPC_PROC_READONLY = 1 << 0,   /* allowed on the read-only socket */
    RPC_PROC_NO_CONN = 1 << 1,    /* allowed before CONNECT_OPEN */
};

struct rpc_proc {
    int proc;                     /* REMOTE_PROC_* number */
    const char *api;              /* libvirt's API name, for messages */
    xdrproc_t args_xdr;           /* xdr_void when there are no arguments */
    size_t args_size;
    xdrproc_t ret_xdr;            /* xdr_void when there is no result */
    size_t ret_size;
    rpc_handler fn;
    unsigned flags;               /* RPC_PROC_* */
};

/* One table line. ARGS and RET are type names of cvirt_remote.x without
 * the remote_ prefix, or void:
 *   RPC_PROC(23, "virDomainLookupByName", domain_lookup_by_name_args,
 *            domain_lookup_by_name_ret, h_lookup_by_name, RPC_PROC_READONLY) */
#define RPC_PROC(num, apiname, args, ret, handler, fl)                        \
    { .proc = (num), .api = (apiname),                                        \
      .args_xdr = (xdrproc_t)xdr_remote_##args, .args_size = sizeof(remote_##args), \
      .ret_xdr = (xdrproc_t)xdr_remote_##ret, .ret_size = sizeof(remote_##ret), \
      .fn = (handler), .flags = (fl) }
/* "No arguments" / "no result" for RPC_PROC(). */
typedef int remote_void;
bool_t xdr_remote_void(XDR *xdrs, void *unused);

/* Procedure numbers fit in this; the table is indexed by them. */
#define RPC_PROC_NUM_MAX 512

struct rpc_table {
    const struct rpc_proc *by_num[RPC_PROC_NUM_MAX];
};

/* Adds n procedures; a number out of range or listed twice is a
 * programming error reported as -EINVAL. */
int rpc_table_add(struct rpc_table *t, const struct rpc_proc *procs, size_t n,
                  struct err *e);
const struct rpc_proc *rpc_table_find(const struct rpc_table *t, int proc);

/* Runs one message of the remote program received by c (call carries the
 * decoded header, payload what follows it) and appends the reply to out.
 * Every CALL gets exactly one reply: unknown procedures, refused calls and
 * undecodable arguments get libvirt's error replies. Returns 0, or a
 * negative errno when the reply itself could not be built. */
int rpc_dispatch_call(const struct rpc_table *t, struct rpc_client *c,
                      const struct rpc_header *call, const uint8_t *payload,
                      size_t len, struct rpc_buf *out);

/* The connect-level procedures (open/close, type, versions, host, node,
 * capabilities, features, auth, events registration, close callbacks). */
extern const struct rpc_proc rpc_connect_procs[];
extern const size_t rpc_connect_nprocs;

/* ---- replies that come later ----
 *
 * A handler whose work waits on something outside the daemon (a VMM
 * starting, saving or exiting) takes the call's place with rpc_defer(),
 * starts the work on the event loop and returns RPC_HANDLER_DEFERRED with
 * ret untouched. The client's other calls, events and keepalive go on
 * meanwhile; libvirt's clients match replies by serial, so a later call
 * may be answered first. Exactly one of rpc_deferred_reply() /
 * rpc_deferred_fail() ends each deferred call, also when the client has
 * gone meanwhile: the reply is then dropped. */
#define RPC_HANDLER_DEFERRED 1
struct rpc_deferred;
/* NULL (with err set) when out of memory; only from inside a handler. */
struct rpc_deferred *rpc_defer(struct rpc_client *c, struct rpc_error *err);
/* The success reply: ret is a result of the procedure's type, encoded and
 * then freed with xdr_free as a handler's would be (NULL for a procedure
 * without result). Frees dr. */
void rpc_deferred_reply(struct rpc_deferred *dr, void *ret);
/* The error reply (err unset: a generic "API failed"). Frees dr. */
void rpc_deferred_fail(struct rpc_deferred *dr, const struct rpc_error *err);
/* False once the client that made the call has disconnected. */
bool rpc_deferred_connected(const struct rpc_deferred *dr);
/* Calls of c still waiting for their reply (tests, statistics). */
int rpc_client_deferred_count(const struct rpc_client *c);

/* ---- what handlers may ask of their client ---- */
struct daemon *rpc_client_daemon(const struct rpc_client *c);
bool rpc_client_readonly(const struct rpc_client *c);
/* The URI the client opened (after CONNECT_OPEN), e.g. "qemu:///system". */
const char *rpc_client_uri(const struct rpc_client *c);

#endif
