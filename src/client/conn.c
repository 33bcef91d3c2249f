/* The client side of the libvirt remote protocol: socket, serials,
 * replies, keepalive, events and one stream. */
#include "client/client.h"
#include "client/conn_priv.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client/uri.h"
#include "util/log.h"

static int send_buf(struct client_conn *c, struct rpc_buf *b, struct err *e)
{
    while (rpc_buf_pending(b)) {
        ssize_t n = send(c->fd, b->data + b->off, rpc_buf_pending(b), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            c->broken = true;
            return err_set_errno(e, errno, "Cannot write data");
        }
        b->off += (size_t)n;
    }
    return 0;
}

int conn_send(struct client_conn *c, const struct rpc_header *h,
              xdrproc_t x, const void *obj, const void *raw, size_t rawlen,
              struct err *e)
{
    struct rpc_buf b = {0};
    int rc = raw ? rpc_msg_append_raw(&b, h, raw, rawlen, e)
                 : rpc_msg_append(&b, h, x, obj, e);
    if (rc == 0)
        rc = send_buf(c, &b, e);
    rpc_buf_free(&b);
    return rc;
}

/* Reads one whole message into c->in. Returns 1 when one is there, 0 when
 * nothing arrived within timeout_ms, or a negative errno. */
static int read_msg(struct client_conn *c, int timeout_ms, struct err *e)
{
    rpc_reader_next(&c->in);
    for (;;) {
        struct pollfd p = { .fd = c->fd, .events = POLLIN };
        int wait = c->in.have ? -1 : timeout_ms;
        int pr = poll(&p, 1, wait);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            return err_set_errno(e, errno, "poll");
        if (pr == 0)
            return 0;
        uint8_t *dst;
        size_t n;
        int rc = rpc_reader_space(&c->in, &dst, &n, e);
        if (rc < 0)
            return rc;
        ssize_t got = recv(c->fd, dst, n, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            c->broken = true;
            if (got == 0)
                return err_set(e, ECONNRESET,
                               "End of file while reading data: Input/output error");
            return err_set_errno(e, errno, "Cannot recv data");
        }
        rc = rpc_reader_commit(&c->in, (size_t)got, e);
        if (rc < 0) {
            c->broken = true;
            return rc;
        }
        if (rc == 1)
            return 1;
    }
}

static void set_remote_error(struct client_conn *c, const remote_error *re)
{
    c->last.code = re->code;
    c->last.domain = re->domain;
    const char *m = re->message && *re->message ? *re->message : "unknown error";
    snprintf(c->last.message, sizeof(c->last.message), "%s", m);
}

static int decode_error(struct client_conn *c, const uint8_t *p, size_t len,
                        struct err *e)
{
    remote_error re;
    memset(&re, 0, sizeof(re));
    if (rpc_payload_decode(p, len, (xdrproc_t)xdr_remote_error, &re, e) < 0)
        return -EBADMSG;
    set_remote_error(c, &re);
    rpc_payload_free((xdrproc_t)xdr_remote_error, &re);
    return err_set(e, EREMOTEIO, "%s", c->last.message);
}

static void dispatch_event(struct client_conn *c, const struct rpc_header *h,
                           const uint8_t *p, size_t len)
{
    struct err ignore = {0};
    if (!c->lifecycle_cb)
        return;
    if (h->proc == CLIENT_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE) {
        remote_domain_event_callback_lifecycle_msg m;
        memset(&m, 0, sizeof(m));
        if (rpc_payload_decode(p, len,
                (xdrproc_t)xdr_remote_domain_event_callback_lifecycle_msg, &m,
                &ignore) < 0)
            return;
        if (m.callbackID == c->lifecycle_id)
            c->lifecycle_cb(c->lifecycle_opaque, &m.msg.dom, m.msg.event,
                            m.msg.detail);
        rpc_payload_free((xdrproc_t)xdr_remote_domain_event_callback_lifecycle_msg, &m);
    } else if (h->proc == CLIENT_PROC_DOMAIN_EVENT_LIFECYCLE) {
        remote_domain_event_lifecycle_msg m;
        memset(&m, 0, sizeof(m));
        if (rpc_payload_decode(p, len,
                (xdrproc_t)xdr_remote_domain_event_lifecycle_msg, &m, &ignore) < 0)
            return;
        c->lifecycle_cb(c->lifecycle_opaque, &m.dom, m.event, m.detail);
        rpc_payload_free((xdrproc_t)xdr_remote_domain_event_lifecycle_msg, &m);
    }
}

static int queue_stream(struct client_conn *c, const struct rpc_header *h,
                        const uint8_t *p, size_t len, struct err *e)
{
    struct client_stream *s = &c->stream;
    if (h->status == REMOTE_ERROR) {
        s->failed = true;
        s->eof = true;
        struct err tmp = {0};
        decode_error(c, p, len, &tmp);
        return 0;
    }
    if (h->status == REMOTE_OK) {
        s->finished = true;
        s->eof = true;
        return 0;
    }
    if (len == 0) {
        s->eof = true;
        return 0;
    }
    if (s->len + len > CLIENT_STREAM_QUEUE_MAX)
        return err_set(e, ENOBUFS, "console stream data is not being read");
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + len)
            cap *= 2;
        uint8_t *nb = realloc(s->buf, cap);
        if (!nb)
            return err_set(e, ENOMEM, "out of memory");
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, len);
    s->len += len;
    return 0;
}

/* Reads and handles one message. Returns 1 and fills *h when it is a
 * REPLY (left in c->in for the caller), 2 when something else was
 * handled, 0 on timeout, or a negative errno. */
int conn_pump(struct client_conn *c, int timeout_ms, struct rpc_header *h,
              struct err *e)
{
    int rc = read_msg(c, timeout_ms, e);
    if (rc <= 0)
        return rc;
    rc = rpc_header_decode(c->in.buf, c->in.want, h, e);
    if (rc < 0) {
        c->broken = true;
        return rc;
    }
    const uint8_t *p = c->in.buf + RPC_HEADER_SIZE;
    size_t len = c->in.want - RPC_HEADER_SIZE;
    if (h->prog == KEEPALIVE_PROGRAM) {
        if (h->proc == KEEPALIVE_PROC_PING) {
            struct rpc_header pong = {
                .prog = KEEPALIVE_PROGRAM, .vers = KEEPALIVE_PROTOCOL_VERSION,
                .proc = KEEPALIVE_PROC_PONG, .type = REMOTE_MESSAGE,
            };
            rc = conn_send(c, &pong, NULL, NULL, NULL, 0, e);
            if (rc < 0)
                return rc;
        }
        return 2;
    }
    if (h->prog != REMOTE_PROGRAM || h->vers != REMOTE_PROTOCOL_VERSION) {
        c->broken = true;
        return err_set(e, EPROTO, "unexpected program %#x version %u from the daemon",
                       h->prog, h->vers);
    }
    switch (h->type) {
    case REMOTE_REPLY:
        return 1;
    case REMOTE_MESSAGE:
        dispatch_event(c, h, p, len);
        return 2;
    case REMOTE_STREAM:
        if (c->stream.open && h->serial == c->stream.serial &&
            h->proc == c->stream.proc) {
            rc = queue_stream(c, h, p, len, e);
            return rc < 0 ? rc : 2;
        }
        return 2;       /* data of a stream already given up */
    default:
        c->broken = true;
        return err_set(e, EPROTO, "unexpected message type %u from the daemon",
                       h->type);
    }
}

int client_call(struct client_conn *c, int proc, xdrproc_t xargs,
                const void *args, xdrproc_t xret, void *ret, struct err *e)
{
    if (c->broken)
        return err_set(e, ENOTCONN, "client socket is closed");
    memset(&c->last, 0, sizeof(c->last));
    struct rpc_header h = {
        .prog = REMOTE_PROGRAM, .vers = REMOTE_PROTOCOL_VERSION,
        .proc = proc, .type = REMOTE_CALL, .serial = c->serial++,
        .status = REMOTE_OK,
    };
    log_debug("call proc=%d serial=%u", proc, h.serial);
    int rc = conn_send(c, &h, xargs, args, NULL, 0, e);
    if (rc < 0)
        return rc;
    for (;;) {
        struct rpc_header r;
        rc = conn_pump(c, -1, &r, e);
        if (rc < 0)
            return rc;
        if (rc != 1)
            continue;
        if (r.serial != h.serial || r.proc != proc)
            continue;   /* a late reply to nothing we wait for */
        const uint8_t *p = c->in.buf + RPC_HEADER_SIZE;
        size_t len = c->in.want - RPC_HEADER_SIZE;
        if (r.status == REMOTE_ERROR)
            return decode_error(c, p, len, e);
        if (r.status != REMOTE_OK)
            return err_set(e, EPROTO, "unexpected reply status %u", r.status);
        if (!xret) {
            if (len != 0)
                return err_set(e, EBADMSG, "unexpected payload in reply to %d", proc);
            return 0;
        }
        return rpc_payload_decode(p, len, xret, ret, e);
    }
}

void client_free_ret(xdrproc_t xret, void *ret)
{
    if (xret)
        rpc_payload_free(xret, ret);
}

const struct client_error *client_last_error(const struct client_conn *c)
{
    return &c->last;
}

bool client_error_is_unsupported(const struct client_conn *c)
{
    if (c->last.code == VIR_ERR_NO_SUPPORT)
        return true;
    return c->last.code == VIR_ERR_RPC &&
           strncmp(c->last.message, "unknown procedure", 17) == 0;
}

const char *client_get_uri(const struct client_conn *c) { return c->uri; }
int client_fd(const struct client_conn *c) { return c->fd; }
bool client_is_broken(const struct client_conn *c) { return c->broken; }

static int connect_unix(const char *path, struct err *e)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(a.sun_path))
        return err_set(e, ENAMETOOLONG, "socket path '%s' is too long", path);
    strcpy(a.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return err_set_errno(e, errno, "Failed to create socket");
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int saved = errno;
        close(fd);
        return err_set_errno(e, saved, "Failed to connect socket to '%s'", path);
    }
    return fd;
}

int client_open(struct client_conn **out, const char *uri, unsigned flags,
                struct err *e)
{
    struct client_uri u;
    if (!uri)
        uri = client_uri_default();
    int rc = client_uri_parse(uri, &u, e);
    if (rc < 0)
        return rc;
    char path[CLIENT_SOCK_MAX];
    rc = client_uri_socket(&u, flags & CLIENT_OPEN_READONLY, path, sizeof(path), e);
    if (rc < 0)
        return rc;
    int fd = connect_unix(path, e);
    if (fd < 0)
        return fd;
    struct client_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return err_set(e, ENOMEM, "out of memory");
    }
    c->fd = fd;
    snprintf(c->uri, sizeof(c->uri), "%s", u.uri);
    rpc_reader_init(&c->in);
    rc = conn_handshake(c, u.name, flags, e);
    if (rc < 0) {
        conn_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void conn_free(struct client_conn *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    rpc_reader_free(&c->in);
    free(c->stream.buf);
    free(c);
}

void client_close(struct client_conn *c)
{
    if (!c)
        return;
    struct err ignore = {0};
    if (!c->broken && c->close_cb)
        client_call(c, CLIENT_PROC_CONNECT_UNREGISTER_CLOSE_CALLBACK,
                    NULL, NULL, NULL, NULL, &ignore);
    if (!c->broken)
        client_call(c, CLIENT_PROC_CONNECT_CLOSE, NULL, NULL, NULL, NULL, &ignore);
    conn_free(c);
}
