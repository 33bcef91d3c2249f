/* The daemon's side of the wire: listening UNIX sockets, one non-blocking
 * connection per client on the event loop, keepalive, events and streams.
 * Everything runs on the event loop's thread. */
#ifndef CVIRT_DAEMON_RPC_SERVER_H
#define CVIRT_DAEMON_RPC_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "dispatch.h"

struct evloop;
struct rpc_server;

/* Keepalive as libvirtd does it: once a client asked for feature 10, it is
 * pinged after RPC_KEEPALIVE_INTERVAL seconds of silence and dropped after
 * RPC_KEEPALIVE_COUNT pings without any answer. */
#define RPC_KEEPALIVE_INTERVAL 5
#define RPC_KEEPALIVE_COUNT 6
/* Replies waiting for a slow reader beyond this drop the client instead of
 * growing the daemon without bound. */
#define RPC_CLIENT_OUT_MAX (64u << 20)
#define RPC_MAX_CLIENTS 256

/* loop may be NULL for a server driven only through rpc_client_feed()
 * (tests, fuzzing). table and opaque (the struct daemon) must outlive it. */
struct rpc_server *rpc_server_new(struct evloop *loop, const struct rpc_table *table,
                                  struct daemon *d, struct err *e);
/* Closes every client and listener and unlinks the socket files. */
void rpc_server_free(struct rpc_server *s);
/* Listens on a new UNIX socket at path with the given mode (a stale socket
 * file is replaced; the caller holds the pid-file lock that makes that
 * safe). Clients of a read-only socket may only run RPC_PROC_READONLY
 * procedures. */
int rpc_server_listen_unix(struct rpc_server *s, const char *path, mode_t mode,
                           bool readonly, struct err *e);
/* Overrides the keepalive interval in seconds (tests); 0 disables it. */
void rpc_server_set_keepalive(struct rpc_server *s, int interval, int count);

/* A client on an already connected socket (fd < 0: no socket; replies
 * then accumulate and are read with rpc_client_output()). */
struct rpc_client *rpc_client_new(struct rpc_server *s, int fd, bool readonly);
void rpc_client_close(struct rpc_client *c);
/* Feeds received bytes as if read from the socket; dispatches each whole
 * message. Returns 0, or a negative errno when the client must be dropped
 * (bad framing); the client is then marked closed, not freed. */
int rpc_client_feed(struct rpc_client *c, const void *data, size_t len);
struct rpc_buf *rpc_client_output(struct rpc_client *c);
bool rpc_client_closed(const struct rpc_client *c);

/* ---- events ---- */

/* libvirt's virDomainEventID value for lifecycle events. */
#define RPC_DOMAIN_EVENT_ID_LIFECYCLE 0

/* Sends a lifecycle event (virDomainEventType event, detail) for dom to
 * every client that registered for it: a 318 message per callback
 * registered with 316, a 107 message to clients registered with 167. */
void rpc_server_emit_lifecycle(struct rpc_server *s, const remote_nonnull_domain *dom,
                               int event, int detail);

/* The kinds of object clients register event callbacks for; each has its
 * own event id numbers (RPC_DOMAIN_EVENT_ID_LIFECYCLE, ...). */
enum rpc_event_kind {
    RPC_EVENT_DOMAIN,
    RPC_EVENT_NETWORK,
    RPC_EVENT_STORAGE_POOL,
};

/* libvirt's virNetworkEventID and virStoragePoolEventID values. */
#define RPC_NETWORK_EVENT_ID_LIFECYCLE 0
#define RPC_POOL_EVENT_ID_LIFECYCLE 0
#define RPC_POOL_EVENT_ID_REFRESH 1

/* Sends message proc (encoded with xdr_msg from msg) once per callback
 * registered for (kind, event_id) on the object with this uuid or on all
 * objects. callback_id points at msg's callbackID member, which is set to
 * each callback's id before its copy is encoded. */
void rpc_server_emit_event(struct rpc_server *s, enum rpc_event_kind kind, int event_id,
                           const unsigned char uuid[16], int proc, xdrproc_t xdr_msg,
                           void *msg, int *callback_id);

/* ---- streams (type 3 messages on the serial of the CALL that opened them) ---- */

struct rpc_stream;
struct rpc_stream_ops {
    /* Data from the client (status CONTINUE); len 0 never reaches it. */
    int (*on_data)(struct rpc_stream *st, const uint8_t *data, size_t len, void *opaque);
    /* The client finished (OK) or aborted (ERROR); the stream is then
     * freed right after this returns. */
    void (*on_close)(struct rpc_stream *st, bool aborted, void *opaque);
};
/* Called from a handler of a streaming procedure, before it returns 0:
 * its REPLY goes out first, stream messages follow on the same serial.
 * Data sent from inside that handler waits and follows the REPLY; if the
 * handler fails after opening, the stream is freed without callback. When
 * the client disconnects, on_close(aborted=true) runs and the stream is
 * gone. */
struct rpc_stream *rpc_stream_open(struct rpc_client *c, const struct rpc_stream_ops *ops,
                                   void *opaque, struct rpc_error *err);
/* Sends data (split into RPC_STREAM_CHUNK pieces). */
int rpc_stream_send(struct rpc_stream *st, const void *data, size_t len);
/* End of data from our side: an empty CONTINUE; the stream closes when
 * the client confirms with OK. */
int rpc_stream_send_eof(struct rpc_stream *st);
/* Aborts the stream with an error message to the client and frees it. */
void rpc_stream_abort(struct rpc_stream *st, const struct rpc_error *err);

#endif
