/* The daemon's side of one cvirt-vmm control socket (QMP, docs/qmp.md).
 *
 * Commands cvirt-vmm answers at once from its event loop (query-status,
 * stop, cont, system_powerdown, system_reset, balloon) are synchronous
 * with a timeout: waiting a few milliseconds in the RPC handler is simpler
 * than keeping continuations, and the timeout bounds a VMM that hangs.
 * What waits on the VMM itself is driven from the daemon's loop instead:
 * the greeting and negotiation of a VMM still starting
 * (vmm_client_connect_async) and a command that runs for seconds
 * (vmm_client_execute_async: migrate to a file). Events that arrive while
 * a command waits are delivered before it returns; between commands the
 * socket is watched on the daemon's event loop, which delivers events and
 * notices a hang-up. */
#ifndef CVIRT_DAEMON_VMM_CLIENT_H
#define CVIRT_DAEMON_VMM_CLIENT_H

#include <stdbool.h>

#include "util/err.h"

struct evloop;
struct json_object;
struct vmm_client;

/* A reply or event bigger than this ends the connection. */
#define VMM_CLIENT_MAX_MESSAGE (1u << 20)
/* Default wait for the greeting and for a command's reply. */
#define VMM_CLIENT_TIMEOUT_MS 5000

struct vmm_client_ops {
    /* An event (name, data or NULL); must not free the client. */
    void (*on_event)(void *opaque, const char *name, struct json_object *data);
    /* The connection ended (VMM gone or protocol error), called once from
     * the event loop; the client may be freed from here. */
    void (*on_close)(void *opaque);
};

/* Connects to a control socket, reads the greeting and negotiates
 * (qmp_capabilities), then watches the socket on loop (NULL: no watch,
 * for tools and tests). */
int vmm_client_connect(struct evloop *loop, const char *path, int timeout_ms,
                       const struct vmm_client_ops *ops, void *opaque,
                       struct vmm_client **out, struct err *e);

/* The same without blocking the loop, for a VMM that is still starting:
 * connects (the socket must be listening: the connection waits in its
 * backlog), then the greeting and qmp_capabilities are driven by loop
 * (required), and ready runs once: rc 0 when the client is ready to use
 * (watched as after vmm_client_connect), or a negative errno with e
 * filled, after which the caller frees the client. No other callback runs
 * before ready: an event the VMM sends before then is dropped (QMP has
 * none before qmp_capabilities is accepted). ready may free the client. Returns 0 with *out set, or a
 * negative errno (nothing to free, ready never runs). */
typedef void (*vmm_client_ready_fn)(void *opaque, int rc, const struct err *e);
int vmm_client_connect_async(struct evloop *loop, const char *path, int timeout_ms,
                             const struct vmm_client_ops *ops, void *opaque,
                             vmm_client_ready_fn ready, struct vmm_client **out,
                             struct err *e);

/* One command whose reply comes later (a save that writes guest memory
 * for seconds): done runs once from the loop with rc and, on success, the
 * "return" value (borrowed: get it to keep it); on failure e says why, as
 * for vmm_client_execute. done must not free the client. One such command
 * at a time; a synchronous command meanwhile gets -EBUSY. args (may be
 * NULL) is consumed. */
typedef void (*vmm_client_reply_fn)(void *opaque, int rc, struct json_object *ret,
                                    const struct err *e);
int vmm_client_execute_async(struct vmm_client *c, const char *cmd, struct json_object *args,
                             int timeout_ms, vmm_client_reply_fn done, void *opaque,
                             struct err *e);
/* Forgets the command of execute_async in flight (its owner is going):
 * done never runs for it, its reply is dropped. Nothing when none is. */
void vmm_client_cancel_async(struct vmm_client *c);
/* Sends a command and forgets it (quit on destroy: the exit answers). */
int vmm_client_send(struct vmm_client *c, const char *cmd, struct err *e);

/* Runs one command; args (may be NULL) is consumed. On success *ret (when
 * non-NULL) gets the "return" value (caller puts it). A QMP error reply
 * becomes -EIO with its desc as message; a timeout -ETIMEDOUT; a closed
 * connection -EPIPE. */
int vmm_client_execute(struct vmm_client *c, const char *cmd, struct json_object *args,
                       int timeout_ms, struct json_object **ret, struct err *e);

/* The pid of the process at the other end (SO_PEERCRED), or -1. */
int vmm_client_peer_pid(const struct vmm_client *c);

/* False once the connection has ended. */
bool vmm_client_alive(const struct vmm_client *c);

/* Stops watching and closes; no callback runs afterwards. */
void vmm_client_free(struct vmm_client *c);

#endif
