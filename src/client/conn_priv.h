/* Connection internals shared by the client library's files. */
#ifndef CVIRT_CLIENT_CONN_PRIV_H
#define CVIRT_CLIENT_CONN_PRIV_H

#include "client/client.h"
#include "client/uri.h"

/* Console output the user is not reading is bounded, not buffered without
 * end. */
#define CLIENT_STREAM_QUEUE_MAX (4u << 20)

struct client_stream {
    bool open;
    int proc;
    uint32_t serial;
    bool eof;           /* the daemon sent its end (empty data or OK) */
    bool finished;      /* the daemon confirmed the end (status OK) */
    bool failed;        /* an error came on the stream: see last */
    uint8_t *buf;       /* received, not yet read */
    size_t len, cap;
};

struct client_conn {
    int fd;
    uint32_t serial;
    bool broken;        /* the socket or the protocol failed: no more calls */
    bool close_cb;      /* 360 registered */
    char uri[CLIENT_URI_MAX];
    struct rpc_reader in;
    struct client_error last;
    struct client_stream stream;
    client_lifecycle_cb lifecycle_cb;
    void *lifecycle_opaque;
    int lifecycle_id;
};

/* Sends one message: obj through x, or raw bytes when raw is non-NULL. */
int conn_send(struct client_conn *c, const struct rpc_header *h,
              xdrproc_t x, const void *obj, const void *raw, size_t rawlen,
              struct err *e);
int conn_pump(struct client_conn *c, int timeout_ms, struct rpc_header *h,
              struct err *e);
int conn_handshake(struct client_conn *c, const char *name, unsigned flags,
                   struct err *e);
void conn_free(struct client_conn *c);

#endif
