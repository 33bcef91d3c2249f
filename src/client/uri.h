/* Connection URIs as libvirt writes them: driver[+transport]://[host]/path
 * [?param=value&...]. cvirt serves the "cvirt" and "qemu" drivers (so that
 * clients written for qemu:/// reach cvirtd unchanged) over a local UNIX
 * socket only. */
#ifndef CVIRT_CLIENT_URI_H
#define CVIRT_CLIENT_URI_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

#define CLIENT_URI_MAX      1024
#define CLIENT_SOCK_MAX     108     /* sun_path */

/* The system daemon's sockets; a session daemon's lives under
 * $XDG_RUNTIME_DIR (see docs/cvirtd.md). */
#define CLIENT_SYSTEM_SOCK     "/run/cvirt/cvirt-sock"
#define CLIENT_SYSTEM_SOCK_RO  "/run/cvirt/cvirt-sock-ro"

struct client_uri {
    char uri[CLIENT_URI_MAX];       /* as given by the user */
    char driver[32];                /* "cvirt" or "qemu" */
    char transport[16];             /* "" or "unix" */
    char path[256];                 /* "/system" or "/session" */
    char socket[CLIENT_SOCK_MAX];   /* ?socket=, decoded; "" when absent */
    /* What CONNECT_OPEN carries: the URI without the transport and without
     * the parameters that only the client uses (socket=). */
    char name[CLIENT_URI_MAX];
};

/* Parses s into u. Unsupported drivers, transports and remote hosts are
 * refused with one line naming the part at fault. */
int client_uri_parse(const char *s, struct client_uri *u, struct err *e);

/* The URI to use when none was given: LIBVIRT_DEFAULT_URI, then
 * CVIRT_DEFAULT_URI, then cvirt:///system for root and cvirt:///session for
 * everyone else. The result points to the environment or a literal. */
const char *client_uri_default(void);

/* The socket path to connect to: ?socket= when given, else the well-known
 * path for /system (read-only one when readonly) or /session. */
int client_uri_socket(const struct client_uri *u, bool readonly,
                      char *buf, size_t n, struct err *e);

#endif
