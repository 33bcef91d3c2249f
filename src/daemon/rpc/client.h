/* The per-connection state shared by the server, the dispatcher and the
 * connect-level procedures. Private to rpc/: other parts use the accessors
 * in dispatch.h and server.h. */
#ifndef CVIRT_DAEMON_RPC_CLIENT_H
#define CVIRT_DAEMON_RPC_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "server.h"

#define RPC_CLIENT_CALLBACKS_MAX 64

struct rpc_event_cb {
    int id;                     /* callbackID given to the client */
    enum rpc_event_kind kind;   /* what event_id numbers */
    int event_id;               /* virDomainEventID, virNetworkEventID, ... */
    bool has_obj;               /* only for this object (by uuid) */
    uint8_t uuid[16];
};

struct rpc_client {
    struct rpc_server *srv;
    struct rpc_client *next;
    int fd;
    bool readonly;              /* came in on the read-only socket */
    bool open;                  /* CONNECT_OPEN done */
    bool conn_readonly;         /* opened read-only (socket, or flag 1) */
    bool closed;                /* to be dropped */
    bool keepalive;             /* asked for feature 10 */
    bool close_cb;              /* 360 registered */
    bool legacy_lifecycle;      /* 167 registered for lifecycle */
    int unanswered;             /* pings sent since the last message */
    time_t last_rx;
    char *uri;
    struct rpc_reader in;
    struct rpc_buf out;
    const struct rpc_header *call;  /* the CALL being dispatched */
    const struct rpc_proc *call_proc;   /* ... and its procedure */
    bool call_deferred;         /* its handler called rpc_defer() */
    struct rpc_deferred *deferred;  /* calls answered later (dispatch.c) */
    struct rpc_event_cb cbs[RPC_CLIENT_CALLBACKS_MAX];
    int ncbs;
    int next_cb_id;
    struct rpc_stream *streams;
};

struct rpc_stream {
    struct rpc_client *c;
    struct rpc_stream *next;
    int32_t proc;
    uint32_t serial;
    const struct rpc_stream_ops *ops;
    void *opaque;
    /* Until the opening CALL's REPLY is out, stream messages wait here. */
    bool started;
    struct rpc_buf early;
};

/* server.c: frees every stream of c without calling back. */
void rpc_client_drop_streams(struct rpc_client *c);
/* server.c, from the dispatcher once the REPLY to the CALL with this serial
 * is queued: the streams it opened start, messages sent early follow the
 * REPLY. With ok false (an error reply) they are freed without callback. */
void rpc_client_streams_started(struct rpc_client *c, uint32_t serial, bool ok);
/* dispatch.c, when c goes: its deferred calls lose their client. */
void rpc_client_orphan_deferred(struct rpc_client *c);
/* server.c: sends what was queued on c outside of its own I/O callback. */
void rpc_client_kick(struct rpc_client *c);

#endif
