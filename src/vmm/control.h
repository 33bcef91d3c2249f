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
 * replaced; one a live process still listens on is refused (-EADDRINUSE).
 * "fd=N" or "PATH,fd=N" takes over an inherited listening socket instead
 * (the parent, e.g. cvirtd, owns the file and removes it); PATH then only
 * names it in messages. */
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
 * drive the framing, parser and dispatcher directly. Requests are JSON
 * objects, back to back or one per line; a request is complete when its
 * braces balance (QEMU frames its input the same way). */
struct control_session {
    bool negotiated;            /* qmp_capabilities done */
    char *buf;                  /* the request being framed */
    size_t len, cap;
    int depth;                  /* open braces and brackets */
    char quote;                 /* inside a string opened by this quote */
    bool esc, scalar;
};
void control_session_init(struct control_session *s);
void control_session_fini(struct control_session *s);
/* Receives each reply; takes ownership of it. */
typedef void (*control_reply_fn)(void *opaque, struct json_object *reply);
/* Frames and handles what a client sent, calling reply for each response.
 * Returns -E2BIG when one request grows beyond CONTROL_MAX_LINE: the
 * caller drops the client. */
int control_session_feed(struct control *c, struct control_session *s, const char *data,
                         size_t len, control_reply_fn reply, void *opaque);
/* The greeting a new client gets; caller puts it. */
struct json_object *control_greeting(void);
/* Handles one complete request text of len bytes. Returns the reply
 * (caller puts it). Never fails: every problem becomes an error reply. */
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

/* ---- the VM's own commands (control_vm.c) ---- */

struct vm;

/* A disk as the command line described it, for query-block. */
struct control_disk {
    char device[16];            /* "virtio0", "virtio1", ... */
    char file[4096];
    char format[16];            /* "raw" or "qcow2" */
    bool ro;
    bool direct;                /* cache=none */
};
/* Fills d from a --disk argument (PATH[,format=..][,readonly=on][,cache=..]);
 * only what query-block reports, the device checks the rest. */
void control_disk_parse(struct control_disk *d, unsigned index, const char *arg);

/* What the VM commands need from the process running the VM; must outlive
 * the server. quit and reset are called on the loop thread; they stop the
 * VM run (for good, or for a reset) and remember that the host asked. */
struct control_vm_host {
    struct vm *vm;
    void (*quit)(void *opaque);
    void (*reset)(void *opaque);
    void *opaque;
    const struct control_disk *disks;
    unsigned ndisks;
};
/* Registers query-status, stop, cont, system_reset, system_powerdown, quit,
 * query-cpus-fast and query-block. */
int control_vm_register(struct control *c, const struct control_vm_host *h, struct err *e);

#endif
