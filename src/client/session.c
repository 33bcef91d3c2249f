/* The connection's life above single calls: the handshake virsh does,
 * the console stream and lifecycle events. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/conn_priv.h"

static int supports(struct client_conn *c, int feature)
{
    remote_connect_supports_feature_args a = { .feature = feature };
    remote_connect_supports_feature_ret r;
    memset(&r, 0, sizeof(r));
    struct err ignore = {0};
    /* Any failure means "no": virsh carries on without the feature. */
    if (client_call(c, CLIENT_PROC_CONNECT_SUPPORTS_FEATURE,
                    (xdrproc_t)xdr_remote_connect_supports_feature_args, &a,
                    (xdrproc_t)xdr_remote_connect_supports_feature_ret, &r,
                    &ignore) < 0)
        return 0;
    return r.supported == 1;
}

static int check_auth(struct client_conn *c, struct err *e)
{
    remote_auth_list_ret r;
    memset(&r, 0, sizeof(r));
    struct err tmp = {0};
    if (client_call(c, CLIENT_PROC_AUTH_LIST, NULL, NULL,
                    (xdrproc_t)xdr_remote_auth_list_ret, &r, &tmp) < 0) {
        /* An old daemon without the procedure needs no authentication. */
        if (client_error_is_unsupported(c))
            return 0;
        return err_set(e, tmp.code ? tmp.code : EIO, "%s", tmp.msg);
    }
    bool none = r.types.types_len == 0;
    for (unsigned i = 0; i < r.types.types_len; i++)
        if (r.types.types_val[i] == REMOTE_AUTH_NONE)
            none = true;
    client_free_ret((xdrproc_t)xdr_remote_auth_list_ret, &r);
    if (!none)
        return err_set(e, EACCES,
                       "authentication failed: the daemon requires an authentication method this client lacks");
    return 0;
}

int conn_handshake(struct client_conn *c, const char *name, unsigned flags,
                   struct err *e)
{
    int rc = check_auth(c, e);
    if (rc < 0)
        return rc;
    (void)supports(c, CLIENT_FEATURE_PROGRAM_KEEPALIVE);

    char *n = (char *)name;
    remote_connect_open_args oa = { .name = &n, .flags = flags & CLIENT_OPEN_READONLY };
    rc = client_call(c, CLIENT_PROC_CONNECT_OPEN,
                     (xdrproc_t)xdr_remote_connect_open_args, &oa, NULL, NULL, e);
    if (rc < 0)
        return rc;

    (void)supports(c, CLIENT_FEATURE_REMOTE_EVENT_CALLBACK);
    if (supports(c, CLIENT_FEATURE_REMOTE_CLOSE_CALLBACK)) {
        struct err tmp = {0};
        /* Not fatal, as for virsh: the connection works without it. */
        if (client_call(c, CLIENT_PROC_CONNECT_REGISTER_CLOSE_CALLBACK,
                        NULL, NULL, NULL, NULL, &tmp) == 0)
            c->close_cb = true;
    }
    return 0;
}

/* ---- stream ---- */

int client_stream_open(struct client_conn *c, int proc, xdrproc_t xargs,
                       const void *args, struct err *e)
{
    if (c->stream.open)
        return err_set(e, EBUSY, "a stream is already open on this connection");
    struct client_stream *s = &c->stream;
    uint32_t serial = c->serial;
    /* Marked open before the call so data that follows the reply right
     * away is queued, not dropped. */
    s->open = true;
    s->proc = proc;
    s->serial = serial;
    s->eof = s->finished = s->failed = false;
    s->len = 0;
    int rc = client_call(c, proc, xargs, args, NULL, NULL, e);
    if (rc < 0)
        s->open = false;
    return rc;
}

static struct rpc_header stream_header(const struct client_conn *c, uint32_t status)
{
    struct rpc_header h = {
        .prog = REMOTE_PROGRAM, .vers = REMOTE_PROTOCOL_VERSION,
        .proc = c->stream.proc, .type = REMOTE_STREAM,
        .serial = c->stream.serial, .status = status,
    };
    return h;
}

int client_stream_send(struct client_conn *c, const void *data, size_t len,
                       struct err *e)
{
    if (!c->stream.open)
        return err_set(e, EINVAL, "no stream is open");
    const uint8_t *p = data;
    while (len) {
        size_t n = len < RPC_STREAM_CHUNK ? len : RPC_STREAM_CHUNK;
        struct rpc_header h = stream_header(c, REMOTE_CONTINUE);
        int rc = conn_send(c, &h, NULL, NULL, p, n, e);
        if (rc < 0)
            return rc;
        p += n;
        len -= n;
    }
    return 0;
}

int client_stream_recv(struct client_conn *c, void *buf, size_t cap,
                       int timeout_ms, struct err *e)
{
    struct client_stream *s = &c->stream;
    if (!s->open)
        return err_set(e, EINVAL, "no stream is open");
    while (s->len == 0 && !s->eof) {
        struct rpc_header h;
        int rc = conn_pump(c, timeout_ms, &h, e);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return -EAGAIN;
    }
    if (s->len == 0) {
        if (s->failed)
            return err_set(e, EREMOTEIO, "%s", c->last.message);
        return 0;
    }
    size_t n = s->len < cap ? s->len : cap;
    memcpy(buf, s->buf, n);
    memmove(s->buf, s->buf + n, s->len - n);
    s->len -= n;
    return (int)n;
}

int client_stream_finish(struct client_conn *c, struct err *e)
{
    struct client_stream *s = &c->stream;
    if (!s->open)
        return 0;
    int rc = 0;
    if (!s->finished && !c->broken) {
        struct rpc_header h = stream_header(c, REMOTE_OK);
        rc = conn_send(c, &h, NULL, NULL, NULL, 0, e);
        /* Wait for the daemon's own OK (or error), a bounded while: a
         * daemon that never confirms must not hang the user. */
        for (int i = 0; rc == 0 && !s->finished && !s->failed && i < 50; i++) {
            struct rpc_header r;
            int pr = conn_pump(c, 100, &r, e);
            if (pr < 0)
                rc = pr;
        }
    }
    if (rc == 0 && s->failed)
        rc = err_set(e, EREMOTEIO, "%s", c->last.message);
    s->open = false;
    s->len = 0;
    return rc;
}

/* ---- events ---- */

int client_event_lifecycle_register(struct client_conn *c,
                                    const remote_nonnull_domain *dom,
                                    client_lifecycle_cb cb, void *opaque,
                                    struct err *e)
{
    remote_connect_domain_event_callback_register_any_args a = {
        .eventID = 0,   /* VIR_DOMAIN_EVENT_ID_LIFECYCLE */
        .dom = (remote_nonnull_domain *)dom,
    };
    remote_connect_domain_event_callback_register_any_ret r;
    memset(&r, 0, sizeof(r));
    int rc = client_call(c, CLIENT_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY,
            (xdrproc_t)xdr_remote_connect_domain_event_callback_register_any_args, &a,
            (xdrproc_t)xdr_remote_connect_domain_event_callback_register_any_ret, &r, e);
    if (rc < 0)
        return rc;
    c->lifecycle_cb = cb;
    c->lifecycle_opaque = opaque;
    c->lifecycle_id = r.callbackID;
    return 0;
}

int client_event_lifecycle_deregister(struct client_conn *c, struct err *e)
{
    if (!c->lifecycle_cb)
        return 0;
    remote_connect_domain_event_callback_deregister_any_args a = {
        .callbackID = c->lifecycle_id,
    };
    c->lifecycle_cb = NULL;
    return client_call(c, CLIENT_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY,
            (xdrproc_t)xdr_remote_connect_domain_event_callback_deregister_any_args, &a,
            NULL, NULL, e);
}

int client_event_wait(struct client_conn *c, int timeout_ms, struct err *e)
{
    struct rpc_header h;
    int rc = conn_pump(c, timeout_ms, &h, e);
    return rc < 0 ? rc : 0;
}
