/* libcvirt-client: a connection to cvirtd (or to any libvirt daemon) over
 * the libvirt remote protocol, on the framing shared with the daemon
 * (daemon/rpc/wire.h).
 *
 * One connection is used by one thread. Calls are synchronous; while a
 * call waits for its reply the connection answers the daemon's keepalive
 * PINGs, hands lifecycle events to the registered callback and queues the
 * data of the open stream. */
#ifndef CVIRT_CLIENT_CLIENT_H
#define CVIRT_CLIENT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/rpc/wire.h"
#include "util/err.h"

/* Procedure numbers of libvirt's remote program that the client sends. */
enum client_proc {
    CLIENT_PROC_CONNECT_OPEN = 1,
    CLIENT_PROC_CONNECT_CLOSE = 2,
    CLIENT_PROC_CONNECT_GET_TYPE = 3,
    CLIENT_PROC_CONNECT_GET_VERSION = 4,
    CLIENT_PROC_NODE_GET_INFO = 6,
    CLIENT_PROC_CONNECT_GET_CAPABILITIES = 7,
    CLIENT_PROC_DOMAIN_ATTACH_DEVICE = 8,
    CLIENT_PROC_DOMAIN_CREATE = 9,
    CLIENT_PROC_DOMAIN_DEFINE_XML = 11,
    CLIENT_PROC_DOMAIN_DESTROY = 12,
    CLIENT_PROC_DOMAIN_DETACH_DEVICE = 13,
    CLIENT_PROC_DOMAIN_GET_XML_DESC = 14,
    CLIENT_PROC_DOMAIN_GET_AUTOSTART = 15,
    CLIENT_PROC_DOMAIN_GET_INFO = 16,
    CLIENT_PROC_DOMAIN_GET_OS_TYPE = 19,
    CLIENT_PROC_DOMAIN_LOOKUP_BY_ID = 22,
    CLIENT_PROC_DOMAIN_LOOKUP_BY_NAME = 23,
    CLIENT_PROC_DOMAIN_LOOKUP_BY_UUID = 24,
    CLIENT_PROC_DOMAIN_REBOOT = 27,
    CLIENT_PROC_DOMAIN_RESUME = 28,
    CLIENT_PROC_DOMAIN_SET_AUTOSTART = 29,
    CLIENT_PROC_DOMAIN_SHUTDOWN = 33,
    CLIENT_PROC_DOMAIN_SUSPEND = 34,
    CLIENT_PROC_DOMAIN_RESTORE = 54,
    CLIENT_PROC_DOMAIN_SAVE = 55,
    CLIENT_PROC_CONNECT_GET_HOSTNAME = 59,
    CLIENT_PROC_CONNECT_SUPPORTS_FEATURE = 60,
    CLIENT_PROC_AUTH_LIST = 66,
    CLIENT_PROC_DOMAIN_EVENT_LIFECYCLE = 107,
    CLIENT_PROC_DOMAIN_GET_SECURITY_LABEL = 121,
    CLIENT_PROC_NODE_GET_SECURITY_MODEL = 122,
    CLIENT_PROC_DOMAIN_IS_ACTIVE = 150,
    CLIENT_PROC_DOMAIN_IS_PERSISTENT = 151,
    CLIENT_PROC_CONNECT_GET_LIB_VERSION = 157,
    CLIENT_PROC_DOMAIN_ATTACH_DEVICE_FLAGS = 160,
    CLIENT_PROC_DOMAIN_DETACH_DEVICE_FLAGS = 161,
    CLIENT_PROC_DOMAIN_HAS_MANAGED_SAVE_IMAGE = 183,
    CLIENT_PROC_DOMAIN_SNAPSHOT_CREATE_XML = 185,
    CLIENT_PROC_DOMAIN_SNAPSHOT_GET_XML_DESC = 186,
    CLIENT_PROC_DOMAIN_SNAPSHOT_NUM = 187,
    CLIENT_PROC_DOMAIN_SNAPSHOT_LOOKUP_BY_NAME = 189,
    CLIENT_PROC_DOMAIN_HAS_CURRENT_SNAPSHOT = 190,
    CLIENT_PROC_DOMAIN_SNAPSHOT_CURRENT = 191,
    CLIENT_PROC_DOMAIN_REVERT_TO_SNAPSHOT = 192,
    CLIENT_PROC_DOMAIN_SNAPSHOT_DELETE = 193,
    CLIENT_PROC_DOMAIN_OPEN_CONSOLE = 201,
    CLIENT_PROC_DOMAIN_SET_MEMORY_FLAGS = 204,
    CLIENT_PROC_DOMAIN_GET_STATE = 212,
    CLIENT_PROC_DOMAIN_UNDEFINE_FLAGS = 231,
    CLIENT_PROC_CONNECT_LIST_ALL_DOMAINS = 273,
    CLIENT_PROC_DOMAIN_LIST_ALL_SNAPSHOTS = 274,
    CLIENT_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY = 316,
    CLIENT_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY = 317,
    CLIENT_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE = 318,
    CLIENT_PROC_CONNECT_REGISTER_CLOSE_CALLBACK = 360,
    CLIENT_PROC_CONNECT_UNREGISTER_CLOSE_CALLBACK = 361,
    CLIENT_PROC_DOMAIN_GET_MESSAGES = 426,
};

/* CONNECT_SUPPORTS_FEATURE numbers virsh asks about. */
enum {
    CLIENT_FEATURE_PROGRAM_KEEPALIVE = 10,
    CLIENT_FEATURE_REMOTE_EVENT_CALLBACK = 14,
    CLIENT_FEATURE_REMOTE_CLOSE_CALLBACK = 15,
};

#define CLIENT_OPEN_READONLY 1u     /* VIR_CONNECT_RO */

/* The last error the daemon sent, as libvirt reports it. */
struct client_error {
    int code;           /* virErrorNumber, 0 when the error was local */
    int domain;         /* virErrorDomain */
    char message[RPC_ERR_TEXT_MAX];
};

struct client_conn;

/* Lifecycle event (virDomainEventType / detail). */
typedef void (*client_lifecycle_cb)(void *opaque, const remote_nonnull_domain *dom,
                                    int event, int detail);

/* Connects to the daemon for uri (NULL: client_uri_default()), runs the
 * handshake virsh does (auth list, keepalive feature, open, event and
 * close-callback features, close callback) and returns the connection.
 * Errors name the socket or carry the daemon's message. */
int client_open(struct client_conn **out, const char *uri, unsigned flags,
                struct err *e);
/* Unregisters the close callback, sends CONNECT_CLOSE and frees c. */
void client_close(struct client_conn *c);

/* The URI as given (what `uri` prints) and the socket's descriptor (for
 * poll in a stream loop). */
const char *client_get_uri(const struct client_conn *c);
/* True once the socket or the protocol failed: no call can succeed. */
bool client_is_broken(const struct client_conn *c);
int client_fd(const struct client_conn *c);

/* One call: encodes args with xargs (NULL: no payload), waits for the
 * reply to its serial and decodes it into ret (zeroed by the caller; free
 * with client_free_ret) with xret (NULL: empty reply). An error reply
 * fills e with the daemon's message and client_last_error(). */
int client_call(struct client_conn *c, int proc, xdrproc_t xargs,
                const void *args, xdrproc_t xret, void *ret, struct err *e);
void client_free_ret(xdrproc_t xret, void *ret);
const struct client_error *client_last_error(const struct client_conn *c);
/* True when the last failure means "the daemon doesn't have this"
 * (NO_SUPPORT, or RPC "unknown procedure"): callers may fall back. */
bool client_error_is_unsupported(const struct client_conn *c);

/* ---- streams (one at a time per connection) ---- */

/* Makes the call that opens a stream (e.g. DOMAIN_OPEN_CONSOLE) and, on
 * success, keeps its serial so that stream messages are queued. */
int client_stream_open(struct client_conn *c, int proc, xdrproc_t xargs,
                       const void *args, struct err *e);
/* Sends data on the open stream. */
int client_stream_send(struct client_conn *c, const void *data, size_t len,
                       struct err *e);
/* Receives stream data into buf: returns the byte count, 0 at the end of
 * the stream, -EAGAIN when nothing arrived within timeout_ms (-1: wait).
 * Keepalive and events are handled meanwhile. */
int client_stream_recv(struct client_conn *c, void *buf, size_t cap,
                       int timeout_ms, struct err *e);
/* Tells the daemon this side is done and waits for its confirmation. */
int client_stream_finish(struct client_conn *c, struct err *e);

/* ---- events ---- */

/* Registers cb for lifecycle events (procedure 316) of dom, or of every
 * domain when dom is NULL. */
int client_event_lifecycle_register(struct client_conn *c,
                                    const remote_nonnull_domain *dom,
                                    client_lifecycle_cb cb, void *opaque,
                                    struct err *e);
/* Deregisters the callback (procedure 317). */
int client_event_lifecycle_deregister(struct client_conn *c, struct err *e);
/* Waits up to timeout_ms for messages and dispatches events. Returns 0, or
 * a negative errno when the connection broke. */
int client_event_wait(struct client_conn *c, int timeout_ms, struct err *e);

#endif
