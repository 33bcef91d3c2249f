/* Listening sockets and client connections of cvirtd on the event loop. */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"
#include "util/evloop.h"
#include "util/log.h"

#define MAX_LISTENERS 4
/* Past this much unsent output a client is not read from until it drains:
 * a client that never reads cannot make the daemon buffer without end. */
#define OUT_HIGH_WATER (1u << 20)

struct listener {
    struct rpc_server *srv;
    int fd;
    bool readonly;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

struct rpc_server {
    struct evloop *loop;
    const struct rpc_table *table;
    struct daemon *d;
    struct listener ls[MAX_LISTENERS];
    int nls;
    struct rpc_client *clients;
    int nclients;
    int timer_fd;
    int sweep_fd;               /* one-shot: frees clients closed from outside */
    int ka_interval;
    int ka_count;
};

static time_t now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

struct daemon *rpc_client_daemon(const struct rpc_client *c)
{
    return c->srv->d;
}

bool rpc_client_closed(const struct rpc_client *c)
{
    return c->closed;
}

struct rpc_buf *rpc_client_output(struct rpc_client *c)
{
    return &c->out;
}

static void client_free(struct rpc_client *c)
{
    struct rpc_server *s = c->srv;
    for (struct rpc_client **pp = &s->clients; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            s->nclients--;
            break;
        }
    }
    for (struct rpc_stream *st = c->streams; st; st = st->next)
        if (st->ops->on_close)
            st->ops->on_close(st, true, st->opaque);
    rpc_client_drop_streams(c);
    rpc_client_orphan_deferred(c);
    if (c->fd >= 0) {
        if (s->loop)
            evloop_del(s->loop, c->fd);
        close(c->fd);
    }
    rpc_reader_free(&c->in);
    rpc_buf_free(&c->out);
    free(c->uri);
    free(c);
}

void rpc_client_close(struct rpc_client *c)
{
    client_free(c);
}

static void keepalive_send(struct rpc_client *c, int proc)
{
    struct rpc_header h = {
        .prog = KEEPALIVE_PROGRAM, .vers = KEEPALIVE_PROTOCOL_VERSION, .proc = proc,
        .type = REMOTE_MESSAGE, .serial = 0, .status = REMOTE_OK,
    };
    struct err e = {0};
    if (rpc_msg_append(&c->out, &h, NULL, NULL, &e) < 0)
        c->closed = true;
}

static void handle_keepalive(struct rpc_client *c, const struct rpc_header *h)
{
    if (h->vers != KEEPALIVE_PROTOCOL_VERSION || h->type != REMOTE_MESSAGE)
        return;
    if (h->proc == KEEPALIVE_PROC_PING)
        keepalive_send(c, KEEPALIVE_PROC_PONG);
    /* A PONG only proves the client alive, which receiving it did. */
}

static struct rpc_stream *stream_find(struct rpc_client *c, const struct rpc_header *h)
{
    for (struct rpc_stream *st = c->streams; st; st = st->next)
        if (st->serial == h->serial && st->proc == h->proc)
            return st;
    return NULL;
}

static void stream_unlink(struct rpc_stream *st)
{
    for (struct rpc_stream **pp = &st->c->streams; *pp; pp = &(*pp)->next) {
        if (*pp == st) {
            *pp = st->next;
            break;
        }
    }
    rpc_buf_free(&st->early);
    free(st);
}

void rpc_client_drop_streams(struct rpc_client *c)
{
    while (c->streams) {
        struct rpc_stream *st = c->streams;
        c->streams = st->next;
        rpc_buf_free(&st->early);
        free(st);
    }
}

void rpc_client_streams_started(struct rpc_client *c, uint32_t serial, bool ok)
{
    struct rpc_stream *next;
    for (struct rpc_stream *st = c->streams; st; st = next) {
        next = st->next;
        if (st->started || st->serial != serial)
            continue;
        if (!ok) {
            stream_unlink(st);
            continue;
        }
        st->started = true;
        size_t n = rpc_buf_pending(&st->early);
        if (n && rpc_buf_append(&c->out, st->early.data + st->early.off, n) < 0)
            c->closed = true;
        rpc_buf_free(&st->early);
    }
}

static void handle_stream(struct rpc_client *c, const struct rpc_header *h,
                          const uint8_t *data, size_t len)
{
    struct rpc_stream *st = stream_find(c, h);
    if (!st) {
        /* libvirtd ignores data for a stream it already closed. */
        log_debug("stream message for unknown serial %u ignored", h->serial);
        return;
    }
    if (h->status == REMOTE_CONTINUE) {
        if (len && st->ops->on_data && st->ops->on_data(st, data, len, st->opaque) < 0) {
            struct rpc_error err = {0};
            rpc_err_set(&err, VIR_ERR_RPC, VIR_FROM_RPC, "stream write failed");
            rpc_stream_abort(st, &err);
        }
        return;
    }
    bool aborted = h->status != REMOTE_OK;
    if (st->ops->on_close)
        st->ops->on_close(st, aborted, st->opaque);
    if (!aborted) {
        struct rpc_header rh = *h;
        struct err e = {0};
        if (rpc_msg_append_raw(&c->out, &rh, NULL, 0, &e) < 0)
            c->closed = true;
    }
    stream_unlink(st);
}

/* One whole message from the client. */
static void handle_message(struct rpc_client *c, const uint8_t *buf, size_t len)
{
    struct rpc_header h;
    struct err e = {0};
    if (rpc_header_decode(buf, len, &h, &e) < 0) {
        log_warn("client dropped: %s", e.msg);
        c->closed = true;
        return;
    }
    c->unanswered = 0;
    c->last_rx = now_s();
    if (h.prog == KEEPALIVE_PROGRAM) {
        handle_keepalive(c, &h);
        return;
    }
    if (h.prog == REMOTE_PROGRAM && h.type == REMOTE_STREAM) {
        handle_stream(c, &h, buf + RPC_HEADER_SIZE, len - RPC_HEADER_SIZE);
        return;
    }
    if (h.type != REMOTE_CALL && h.type != REMOTE_CALL_WITH_FDS) {
        log_debug("message of type %u from a client ignored", h.type);
        return;
    }
    if (rpc_dispatch_call(c->srv->table, c, &h, buf + RPC_HEADER_SIZE,
                          len - RPC_HEADER_SIZE, &c->out) < 0)
        c->closed = true;
}

int rpc_client_feed(struct rpc_client *c, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len && !c->closed) {
        uint8_t *dst;
        size_t room;
        struct err e = {0};
        if (rpc_reader_space(&c->in, &dst, &room, &e) < 0) {
            c->closed = true;
            return -ENOMEM;
        }
        size_t n = room < len ? room : len;
        memcpy(dst, p, n);
        p += n;
        len -= n;
        int rc = rpc_reader_commit(&c->in, n, &e);
        if (rc < 0) {
            log_warn("client dropped: %s", e.msg);
            c->closed = true;
            return rc;
        }
        if (rc == 1) {
            handle_message(c, c->in.buf, c->in.want);
            rpc_reader_next(&c->in);
        }
    }
    return c->closed ? -ECONNRESET : 0;
}

static void sweep_arm(struct rpc_server *s);

static void client_update_events(struct rpc_client *c)
{
    if (c->fd < 0 || !c->srv->loop)
        return;
    if (c->closed) {
        /* Closed outside its own I/O (a late reply, an event): its fd may
         * never fire again, so the loop frees it on its next turn. */
        sweep_arm(c->srv);
        return;
    }
    size_t pending = rpc_buf_pending(&c->out);
    uint32_t ev = pending ? EPOLLOUT : 0;
    if (pending < OUT_HIGH_WATER)
        ev |= EPOLLIN;
    evloop_mod(c->srv->loop, c->fd, ev);
}

static void client_flush(struct rpc_client *c)
{
    while (rpc_buf_pending(&c->out)) {
        ssize_t n = send(c->fd, c->out.data + c->out.off, rpc_buf_pending(&c->out),
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                c->closed = true;
            break;
        }
        rpc_buf_consume(&c->out, (size_t)n);
    }
    if (rpc_buf_pending(&c->out) > RPC_CLIENT_OUT_MAX) {
        log_warn("client dropped: %zu bytes of replies unread", rpc_buf_pending(&c->out));
        c->closed = true;
    }
}

void rpc_client_kick(struct rpc_client *c)
{
    if (c->fd < 0 || !c->srv->loop)
        return;
    if (!c->closed)
        client_flush(c);
    client_update_events(c);
}

/* Frees the clients marked closed. Runs from the loop, so never inside a
 * client's own callback nor while a caller holds one. */
static void sweep_run(void *opaque, uint32_t events)
{
    struct rpc_server *s = opaque;
    uint64_t n;
    (void)events;
    if (read(s->sweep_fd, &n, sizeof(n)) < 0)
        return;
    struct rpc_client *next;
    for (struct rpc_client *c = s->clients; c; c = next) {
        next = c->next;
        if (c->closed && c->fd >= 0)
            client_free(c);
    }
}

static void sweep_arm(struct rpc_server *s)
{
    if (!s->loop)
        return;
    if (s->sweep_fd < 0) {
        int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (fd < 0)
            return;
        if (evloop_add(s->loop, fd, EPOLLIN, sweep_run, s) < 0) {
            close(fd);
            return;
        }
        s->sweep_fd = fd;
    }
    struct itimerspec its = { .it_value = { 0, 1 } };
    if (timerfd_settime(s->sweep_fd, 0, &its, NULL) < 0)
        log_warn("cannot arm the closed clients' sweep: %s", strerror(errno));
}

static void client_read(struct rpc_client *c)
{
    /* A bounded number of reads per wakeup keeps one busy client from
     * starving the others. */
    for (int i = 0; i < 64 && !c->closed; i++) {
        if (rpc_buf_pending(&c->out) >= OUT_HIGH_WATER)
            break;
        uint8_t *dst;
        size_t room;
        struct err e = {0};
        if (rpc_reader_space(&c->in, &dst, &room, &e) < 0) {
            c->closed = true;
            break;
        }
        ssize_t n = read(c->fd, dst, room);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                c->closed = true;
            break;
        }
        if (n == 0) {
            c->closed = true;
            break;
        }
        int rc = rpc_reader_commit(&c->in, (size_t)n, &e);
        if (rc < 0) {
            log_warn("client dropped: %s", e.msg);
            c->closed = true;
        } else if (rc == 1) {
            handle_message(c, c->in.buf, c->in.want);
            rpc_reader_next(&c->in);
        }
    }
}

static void client_io(void *opaque, uint32_t events)
{
    struct rpc_client *c = opaque;
    if (events & EPOLLIN)
        client_read(c);
    if (events & (EPOLLERR | EPOLLHUP)) {
        /* Still answer what was read before the peer hung up. */
        client_read(c);
        c->closed = true;
    }
    if (!c->closed)
        client_flush(c);
    if (c->closed) {
        client_free(c);
        return;
    }
    client_update_events(c);
}

struct rpc_client *rpc_client_new(struct rpc_server *s, int fd, bool readonly)
{
    struct rpc_client *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->srv = s;
    c->fd = fd;
    c->readonly = readonly;
    c->last_rx = now_s();
    c->next_cb_id = 1;
    rpc_reader_init(&c->in);
    if (fd >= 0 && s->loop && evloop_add(s->loop, fd, EPOLLIN, client_io, c) < 0) {
        rpc_reader_free(&c->in);
        free(c);
        return NULL;
    }
    c->next = s->clients;
    s->clients = c;
    s->nclients++;
    return c;
}

static void listener_accept(void *opaque, uint32_t events)
{
    struct listener *l = opaque;
    struct rpc_server *s = l->srv;
    (void)events;
    for (;;) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                log_warn("accept on %s: %s", l->path, strerror(errno));
            return;
        }
        if (s->nclients >= RPC_MAX_CLIENTS) {
            log_warn("client refused: already %d clients", s->nclients);
            close(fd);
            continue;
        }
        if (!rpc_client_new(s, fd, l->readonly)) {
            log_warn("client refused: out of memory");
            close(fd);
        }
    }
}

/* Once a second: ping clients that asked for keepalive and went quiet,
 * drop those that stopped answering. */
static void keepalive_tick(void *opaque, uint32_t events)
{
    struct rpc_server *s = opaque;
    uint64_t ticks;
    (void)events;
    if (read(s->timer_fd, &ticks, sizeof(ticks)) < 0)
        return;
    if (s->ka_interval <= 0)
        return;
    time_t now = now_s();
    struct rpc_client *next;
    for (struct rpc_client *c = s->clients; c; c = next) {
        next = c->next;
        if (!c->keepalive || now - c->last_rx < s->ka_interval)
            continue;
        if (c->unanswered >= s->ka_count) {
            log_info("client dropped: no answer to %d keepalive pings", c->unanswered);
            client_free(c);
            continue;
        }
        keepalive_send(c, KEEPALIVE_PROC_PING);
        c->unanswered++;
        c->last_rx = now;
        client_flush(c);
        if (c->closed)
            client_free(c);
        else
            client_update_events(c);
    }
}

struct rpc_server *rpc_server_new(struct evloop *loop, const struct rpc_table *table,
                                  struct daemon *d, struct err *e)
{
    struct rpc_server *s = calloc(1, sizeof(*s));
    if (!s) {
        err_set(e, ENOMEM, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->table = table;
    s->d = d;
    s->timer_fd = -1;
    s->sweep_fd = -1;
    s->ka_interval = RPC_KEEPALIVE_INTERVAL;
    s->ka_count = RPC_KEEPALIVE_COUNT;
    if (!loop)
        return s;
    s->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct itimerspec its = { .it_interval = { 1, 0 }, .it_value = { 1, 0 } };
    if (s->timer_fd < 0 || timerfd_settime(s->timer_fd, 0, &its, NULL) < 0 ||
        evloop_add(loop, s->timer_fd, EPOLLIN, keepalive_tick, s) < 0) {
        err_set_errno(e, errno, "keepalive timer");
        if (s->timer_fd >= 0)
            close(s->timer_fd);
        free(s);
        return NULL;
    }
    return s;
}

void rpc_server_set_keepalive(struct rpc_server *s, int interval, int count)
{
    s->ka_interval = interval;
    s->ka_count = count;
}

void rpc_server_free(struct rpc_server *s)
{
    if (!s)
        return;
    while (s->clients)
        client_free(s->clients);
    for (int i = 0; i < s->nls; i++) {
        if (s->loop)
            evloop_del(s->loop, s->ls[i].fd);
        close(s->ls[i].fd);
        unlink(s->ls[i].path);
    }
    if (s->timer_fd >= 0) {
        evloop_del(s->loop, s->timer_fd);
        close(s->timer_fd);
    }
    if (s->sweep_fd >= 0) {
        evloop_del(s->loop, s->sweep_fd);
        close(s->sweep_fd);
    }
    free(s);
}

int rpc_server_listen_unix(struct rpc_server *s, const char *path, mode_t mode,
                           bool readonly, struct err *e)
{
    /* Also tells GCC's -fsanitize=undefined build that path is not NULL in
     * the messages below (-Werror=format-overflow otherwise). */
    if (!path)
        return err_set(e, EINVAL, "no socket path");
    if (s->nls >= MAX_LISTENERS)
        return err_set(e, ENOSPC, "too many listening sockets");
    struct listener *l = &s->ls[s->nls];
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path))
        return err_set(e, ENAMETOOLONG, "socket path %s is too long", path);
    strcpy(sa.sun_path, path);
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
        return err_set(e, EEXIST, "%s exists and is not a socket", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return err_set_errno(e, errno, "socket for %s", path);
    unlink(path);
    /* Bind under a umask that lets nobody in before the chmod. */
    mode_t old = umask(0077);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0 || chmod(path, mode) < 0 || listen(fd, 64) < 0) {
        rc = err_set_errno(e, errno, "cannot listen on %s", path);
        close(fd);
        unlink(path);
        return rc;
    }
    if (s->loop && evloop_add(s->loop, fd, EPOLLIN, listener_accept, l) < 0) {
        close(fd);
        unlink(path);
        return err_set(e, ENOMEM, "cannot watch %s", path);
    }
    l->srv = s;
    l->fd = fd;
    l->readonly = readonly;
    snprintf(l->path, sizeof(l->path), "%s", path);
    s->nls++;
    return 0;
}

/* ---- events ---- */

static void send_event(struct rpc_client *c, int proc, xdrproc_t xdr_msg, const void *msg)
{
    struct rpc_header h = {
        .prog = REMOTE_PROGRAM, .vers = REMOTE_PROTOCOL_VERSION, .proc = proc,
        .type = REMOTE_MESSAGE, .serial = 0, .status = REMOTE_OK,
    };
    struct err e = {0};
    if (rpc_msg_append(&c->out, &h, xdr_msg, msg, &e) < 0) {
        log_warn("event %d not sent: %s", proc, e.msg);
        return;
    }
    if (c->fd >= 0) {
        client_flush(c);
        client_update_events(c);
    }
}

void rpc_server_emit_lifecycle(struct rpc_server *s, const remote_nonnull_domain *dom,
                               int event, int detail)
{
    remote_domain_event_lifecycle_msg m = {
        .dom = *dom, .event = event, .detail = detail,
    };
    for (struct rpc_client *c = s->clients; c; c = c->next)
        if (c->open && !c->closed && c->legacy_lifecycle)
            send_event(c, 107, (xdrproc_t)xdr_remote_domain_event_lifecycle_msg, &m);
    remote_domain_event_callback_lifecycle_msg cm = { .msg = m };
    rpc_server_emit_event(s, RPC_EVENT_DOMAIN, RPC_DOMAIN_EVENT_ID_LIFECYCLE,
                          (const unsigned char *)dom->uuid, 318,
                          (xdrproc_t)xdr_remote_domain_event_callback_lifecycle_msg, &cm,
                          &cm.callbackID);
}

void rpc_server_emit_event(struct rpc_server *s, enum rpc_event_kind kind, int event_id,
                           const unsigned char uuid[16], int proc, xdrproc_t xdr_msg,
                           void *msg, int *callback_id)
{
    for (struct rpc_client *c = s->clients; c; c = c->next) {
        if (!c->open || c->closed)
            continue;
        for (int i = 0; i < c->ncbs; i++) {
            const struct rpc_event_cb *cb = &c->cbs[i];
            if (cb->kind != kind || cb->event_id != event_id)
                continue;
            if (cb->has_obj && memcmp(cb->uuid, uuid, 16) != 0)
                continue;
            *callback_id = cb->id;
            send_event(c, proc, xdr_msg, msg);
        }
    }
}

/* ---- streams ---- */

struct rpc_stream *rpc_stream_open(struct rpc_client *c, const struct rpc_stream_ops *ops,
                                   void *opaque, struct rpc_error *err)
{
    if (!c->call) {
        rpc_err_set(err, VIR_ERR_INTERNAL_ERROR, VIR_FROM_RPC, "stream opened outside a call");
        return NULL;
    }
    struct rpc_stream *st = calloc(1, sizeof(*st));
    if (!st) {
        rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_RPC, "stream");
        return NULL;
    }
    st->c = c;
    st->proc = c->call->proc;
    st->serial = c->call->serial;
    st->ops = ops;
    st->opaque = opaque;
    st->next = c->streams;
    c->streams = st;
    return st;
}

static int stream_msg(struct rpc_stream *st, uint32_t status, const void *data, size_t len)
{
    struct rpc_header h = {
        .prog = REMOTE_PROGRAM, .vers = REMOTE_PROTOCOL_VERSION, .proc = st->proc,
        .type = REMOTE_STREAM, .serial = st->serial, .status = status,
    };
    struct err e = {0};
    return rpc_msg_append_raw(st->started ? &st->c->out : &st->early, &h, data, len, &e);
}

int rpc_stream_send(struct rpc_stream *st, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len) {
        size_t n = len < RPC_STREAM_CHUNK ? len : RPC_STREAM_CHUNK;
        int rc = stream_msg(st, REMOTE_CONTINUE, p, n);
        if (rc < 0)
            return rc;
        p += n;
        len -= n;
    }
    if (st->started && st->c->fd >= 0) {
        client_flush(st->c);
        client_update_events(st->c);
    }
    return 0;
}

int rpc_stream_send_eof(struct rpc_stream *st)
{
    int rc = stream_msg(st, REMOTE_CONTINUE, NULL, 0);
    if (rc == 0 && st->started && st->c->fd >= 0) {
        client_flush(st->c);
        client_update_events(st->c);
    }
    return rc;
}

void rpc_stream_abort(struct rpc_stream *st, const struct rpc_error *err)
{
    struct rpc_header h = {
        .prog = REMOTE_PROGRAM, .vers = REMOTE_PROTOCOL_VERSION, .proc = st->proc,
        .type = REMOTE_STREAM, .serial = st->serial, .status = REMOTE_ERROR,
    };
    struct err e = {0};
    /* Before its REPLY the client does not know the stream: the failed
     * handler's own error says it all. */
    if (st->started)
        rpc_error_append(&st->c->out, &h, err, &e);
    if (st->ops->on_close)
        st->ops->on_close(st, true, st->opaque);
    stream_unlink(st);
}
