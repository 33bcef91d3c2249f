/* The control socket of one cvirt-vmm: a QMP server on a UNIX socket.
 *
 * Commands are registered by name; each handler runs on the event-loop
 * thread (the main thread). Events may be emitted from any thread. */
#ifndef CVIRT_VMM_CONTROL_H
#define CVIRT_VMM_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct control;                 /* the QMP server of one cvirt-vmm */
struct evloop;
struct json_object;

/* QMP error classes */
enum control_err_class {
    CONTROL_ERR_GENERIC,
    CONTROL_ERR_COMMAND_NOT_FOUND,
    CONTROL_ERR_DEVICE_NOT_FOUND,
    CONTROL_ERR_DEVICE_NOT_ACTIVE,
};

/* A command handler runs on the event-loop thread. It returns 0 and may set
 * *ret (NULL means {}), or returns a negative errno with e set; the message
 * goes to the client with class *cls, which is CONTROL_ERR_GENERIC unless
 * the handler changes it. args is NULL when the request had none. */
typedef int (*control_cmd_fn)(void *opaque, struct json_object *args,
                              struct json_object **ret, enum control_err_class *cls,
                              struct err *e);

/* Limits: a request line longer than this drops the client; so does a
 * client whose unsent output grows beyond CONTROL_MAX_OUTPUT. */
#define CONTROL_MAX_LINE    (64 * 1024)
#define CONTROL_MAX_OUTPUT  (1024 * 1024)
#define CONTROL_MAX_CLIENTS 16

/* A server with the built-in commands (qmp_capabilities, query-version,
 * query-commands) and no socket; loop may be NULL for a server only driven
 * through control_session_* (tests). */
int control_new(struct control **out, struct evloop *loop, struct err *e);
/* Listens on a UNIX socket at path (mode 0600). A stale socket file is
 * replaced; one a live process still listens on is refused (-EADDRINUSE). */
int control_listen(struct control *c, const char *path, struct err *e);
/* Closes every client and the socket, removes the socket file. */
void control_free(struct control *c);

/* Adds a command; -EEXIST when the name is taken, -ENOMEM. Call from the
 * event-loop thread (or before the loop runs). */
int control_register(struct control *c, const char *name, control_cmd_fn fn, void *opaque);

/* Sends {"event": name, "data": data, "timestamp": {...}} to every client
 * that finished qmp_capabilities; takes ownership of data (may be NULL).
 * Any thread. */
void control_emit_event(struct control *c, const char *name, struct json_object *data);

/* Sends what is queued and drops clients that overflowed; runs on the loop
 * thread after events from other threads (done internally with an eventfd,
 * exposed for callers that need the output out before they block). */
void control_flush(struct control *c);

/* The protocol state of one client, apart from its socket, so tests can
 * drive the parser and dispatcher directly. */
struct control_session {
    bool negotiated;            /* qmp_capabilities done */
};
/* The greeting a new client gets; caller puts it. */
struct json_object *control_greeting(void);
/* Handles one request (a JSON text of len bytes). Returns the reply (caller
 * puts it), or NULL when the request wants none. Never fails: every
 * problem becomes an error reply. */
struct json_object *control_session_handle(struct control *c, struct control_session *s,
                                           const char *req, size_t len);

/* QMP's name for a class ("GenericError", "CommandNotFound", ...). */
const char *control_err_class_name(enum control_err_class cls);

/* Argument checking for handlers. Each returns 0 and fills *out, -ENOENT
 * when the argument is absent and not required (out untouched), or
 * -EINVAL with e set ("Invalid parameter type for 'value', expected:
 * integer", "Parameter 'value' is missing"). */
int control_arg_int(struct json_object *args, const char *name, bool required,
                    int64_t *out, struct err *e);
int control_arg_bool(struct json_object *args, const char *name, bool required,
                     bool *out, struct err *e);
/* *out points into args: valid while args lives. */
int control_arg_str(struct json_object *args, const char *name, bool required,
                    const char **out, struct err *e);
/* -EINVAL with e set when args has a member not in the NULL-terminated list
 * ("Parameter 'x' is unexpected"); args may be NULL. */
int control_args_only(struct json_object *args, const char *const *allowed, struct err *e);

#endif
