/* The control socket: a UNIX socket serving QMP to several clients at once
 * on the event loop. Every socket is non-blocking and every client's
 * unsent output is bounded, so a client that stops reading is dropped
 * instead of stalling the VM or the other clients. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control_int.h"
#include "util/evloop.h"
#include "util/log.h"

/* How much one readiness callback reads, so one busy client cannot keep
 * the loop from the others. */
#define READ_BUDGET (64 * 1024)
/* How long control_free waits for the last replies and events to leave. */
#define DRAIN_MS 500

struct control_client {
    struct control *c;
    int fd;
    unsigned id;
    struct control_session s;
    char *out;                  /* unsent output, under c->lock */
    size_t out_len, out_cap;
    bool want_out;              /* EPOLLOUT is being watched */
    bool eof;                   /* the peer sent all it will: answer, close */
    bool events_on;             /* s.negotiated as other threads may read it */
    bool dead;                  /* overflowed or failed: drop on the loop */
    struct control_client *next;
};

static void client_free(struct control_client *cl)
{
    if (cl->c->loop)
        evloop_del(cl->c->loop, cl->fd);
    close(cl->fd);
    control_session_fini(&cl->s);
    free(cl->out);
    free(cl);
}

/* Appends one JSON text and its newline; marks the client dead when its
 * backlog would pass the limit. Caller holds c->lock. */
static void client_queue(struct control_client *cl, const char *text, size_t len)
{
    if (cl->dead)
        return;
    if (cl->out_len + len + 2 > CONTROL_MAX_OUTPUT) {
        log_warn("control: client %u does not read its replies: dropping it", cl->id);
        cl->dead = true;
        return;
    }
    if (cl->out_len + len + 2 > cl->out_cap) {
        size_t cap = cl->out_cap ? cl->out_cap : 4096;
        while (cap < cl->out_len + len + 2)
            cap *= 2;
        char *b = realloc(cl->out, cap);
        if (!b) {
            cl->dead = true;
            return;
        }
        cl->out = b;
        cl->out_cap = cap;
    }
    memcpy(cl->out + cl->out_len, text, len);
    cl->out_len += len;
    cl->out[cl->out_len++] = '\r';
    cl->out[cl->out_len++] = '\n';
}

/* Writes what the socket takes now; watches EPOLLOUT for the rest.
 * Caller holds c->lock; loop thread only (epoll changes). */
static void client_send(struct control_client *cl)
{
    while (!cl->dead && cl->out_len > 0) {
        ssize_t n = send(cl->fd, cl->out, cl->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                cl->dead = true;
            break;
        }
        memmove(cl->out, cl->out + n, cl->out_len - (size_t)n);
        cl->out_len -= (size_t)n;
    }
    /* A client that shut down its side gets its replies, then is closed. */
    if (cl->eof && cl->out_len == 0)
        cl->dead = true;
    bool want = !cl->dead && cl->out_len > 0;
    if (want != cl->want_out && cl->c->loop) {
        uint32_t in = cl->eof ? 0 : EPOLLIN | EPOLLRDHUP;
        evloop_mod(cl->c->loop, cl->fd, in | (want ? EPOLLOUT : 0));
        cl->want_out = want;
    }
}

/* Drops dead clients; loop thread. */
static void reap_clients(struct control *c)
{
    pthread_mutex_lock(&c->lock);
    for (struct control_client **p = &c->clients; *p;) {
        struct control_client *cl = *p;
        if (cl->dead) {
            *p = cl->next;
            c->nclients--;
            log_info("control: client %u gone", cl->id);
            client_free(cl);
        } else {
            p = &cl->next;
        }
    }
    pthread_mutex_unlock(&c->lock);
}

void control_flush(struct control *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    for (struct control_client *cl = c->clients; cl; cl = cl->next)
        client_send(cl);
    pthread_mutex_unlock(&c->lock);
    reap_clients(c);
}

static void queue_json(struct control_client *cl, struct json_object *o)
{
    size_t len;
    const char *text = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
    pthread_mutex_lock(&cl->c->lock);
    client_queue(cl, text, len);
    pthread_mutex_unlock(&cl->c->lock);
}

static void on_reply(void *opaque, struct json_object *reply)
{
    queue_json(opaque, reply);
    json_object_put(reply);
}

static void on_client(void *opaque, uint32_t events)
{
    struct control_client *cl = opaque;
    struct control *c = cl->c;
    char buf[4096];
    size_t budget = READ_BUDGET;
    bool more = !cl->eof && (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR)) != 0;
    while (more && budget > 0 && !cl->dead) {
        ssize_t n = recv(cl->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0) {
            cl->dead = true;
            break;
        }
        if (n == 0) {
            /* Stop watching input (it would fire forever); the output
             * still goes out, or fails and drops the client. */
            cl->eof = true;
            if (c->loop)
                evloop_mod(c->loop, cl->fd, EPOLLOUT);
            cl->want_out = true;
            break;
        }
        budget -= (size_t)n < budget ? (size_t)n : budget;
        if (control_session_feed(c, &cl->s, buf, (size_t)n, on_reply, cl) < 0) {
            log_warn("control: client %u sent a request over %d bytes: dropping it",
                     cl->id, CONTROL_MAX_LINE);
            cl->dead = true;
        }
    }
    pthread_mutex_lock(&c->lock);
    /* After the qmp_capabilities reply was queued: events follow it. */
    cl->events_on = cl->s.negotiated;
    client_send(cl);
    pthread_mutex_unlock(&c->lock);
    reap_clients(c);
}

static void on_accept(void *opaque, uint32_t events)
{
    struct control *c = opaque;
    static unsigned next_id;
    for (;;) {
        int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_warn("control: accept: %s", strerror(errno));
            return;
        }
        if (c->nclients >= CONTROL_MAX_CLIENTS) {
            log_warn("control: %d clients already connected: refusing another",
                     CONTROL_MAX_CLIENTS);
            close(fd);
            continue;
        }
        struct control_client *cl = calloc(1, sizeof(*cl));
        if (!cl) {
            close(fd);
            continue;
        }
        cl->c = c;
        cl->fd = fd;
        cl->id = ++next_id;
        control_session_init(&cl->s);
        if (evloop_add(c->loop, fd, EPOLLIN | EPOLLRDHUP, on_client, cl) < 0) {
            close(fd);
            free(cl);
            continue;
        }
        struct json_object *g = control_greeting();
        pthread_mutex_lock(&c->lock);
        cl->next = c->clients;
        c->clients = cl;
        c->nclients++;
        pthread_mutex_unlock(&c->lock);
        queue_json(cl, g);
        json_object_put(g);
        log_info("control: client %u connected", cl->id);
        control_flush(c);
    }
}

static void on_wake(void *opaque, uint32_t events)
{
    struct control *c = opaque;
    uint64_t v;
    while (read(c->wake_fd, &v, sizeof(v)) == sizeof(v))
        ;
    control_flush(c);
}

int control_new(struct control **out, struct evloop *loop, struct err *e)
{
    struct control *c = calloc(1, sizeof(*c));
    if (!c)
        return err_set(e, ENOMEM, "out of memory");
    c->loop = loop;
    c->cmds_tail = &c->cmds;
    c->listen_fd = -1;
    c->wake_fd = -1;
    pthread_mutex_init(&c->lock, NULL);
    int r = control_register_builtins(c);
    if (r < 0) {
        control_free(c);
        return err_set(e, -r, "control: cannot register the built-in commands");
    }
    if (loop) {
        c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (c->wake_fd < 0 || evloop_add(loop, c->wake_fd, EPOLLIN, on_wake, c) < 0) {
            r = err_set_errno(e, errno, "control: eventfd");
            control_free(c);
            return r;
        }
    }
    *out = c;
    return 0;
}

/* A socket file nobody listens on is left over from a process that died:
 * replace it. One somebody answers on belongs to a live VM: refuse. */
static int clear_stale(const char *path, struct err *e)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : err_set_errno(e, errno, "--control %s", path);
    if (!S_ISSOCK(st.st_mode))
        return err_set(e, EEXIST, "--control %s: exists and is not a socket", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return err_set_errno(e, errno, "socket");
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    int err = errno;
    close(fd);
    if (r == 0)
        return err_set(e, EADDRINUSE, "--control %s: another process is listening on it", path);
    if (err != ECONNREFUSED)
        return err_set_errno(e, err, "--control %s: cannot tell whether it is in use", path);
    log_info("control: replacing the stale socket %s", path);
    if (unlink(path) < 0 && errno != ENOENT)
        return err_set_errno(e, errno, "--control %s: cannot remove the stale socket", path);
    return 0;
}

/* "fd=N" or "PATH,fd=N": a listening UNIX socket the parent created,
 * bound and passed down (PATH only names it in ps and the logs). The parent
 * can connect before this process is ready (the backlog holds the
 * connection), so it never polls for the socket to appear. The socket file
 * belongs to the parent: it is not removed at exit. */
static int adopt_fd(struct control *c, const char *spec, struct err *e)
{
    char *end;
    errno = 0;
    long n = strtol(spec, &end, 10);
    if (errno || end == spec || *end || n < 0 || n > INT_MAX)
        return err_set(e, EINVAL, "--control fd=%s: not a file descriptor number", spec);
    int fd = (int)n, type = 0, acc = 0;
    socklen_t len = sizeof(type);
    struct sockaddr_un sa;
    socklen_t salen = sizeof(sa);
    if (fcntl(fd, F_GETFD) < 0)
        return err_set_errno(e, errno, "--control fd=%d", fd);
    int r = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
    len = sizeof(acc);
    if (r < 0 || type != SOCK_STREAM || getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) < 0 ||
        !acc || getsockname(fd, (struct sockaddr *)&sa, &salen) < 0 || sa.sun_family != AF_UNIX)
        return err_set(e, EINVAL, "--control fd=%d: not a listening UNIX stream socket", fd);
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return err_set_errno(e, errno, "--control fd=%d", fd);
    /* Listening again makes SO_PEERCRED name this process, not the parent
     * that called listen() first: a restarted daemon checks the peer. */
    if (listen(fd, 8) < 0)
        return err_set_errno(e, errno, "--control fd=%d", fd);
    if (evloop_add(c->loop, fd, EPOLLIN, on_accept, c) < 0)
        return err_set(e, EIO, "--control fd=%d: cannot watch the socket", fd);
    c->listen_fd = fd;
    return 0;
}

int control_listen(struct control *c, const char *path, struct err *e)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (!c->loop)
        return err_set(e, EINVAL, "control: no event loop to listen on");
    if (strncmp(path, "fd=", 3) == 0)
        return adopt_fd(c, path + 3, e);
    const char *fdopt = NULL;
    for (const char *p = strstr(path, ",fd="); p; p = strstr(p + 1, ",fd="))
        fdopt = p;
    if (fdopt)
        return adopt_fd(c, fdopt + 4, e);
    if (strlen(path) >= sizeof(sa.sun_path))
        return err_set(e, ENAMETOOLONG, "--control %s: path longer than %zu bytes", path,
                       sizeof(sa.sun_path) - 1);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int r = clear_stale(path, e);
    if (r < 0)
        return r;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return err_set_errno(e, errno, "socket");
    /* The socket is born 0600: nobody else gets a window to connect. Only
     * the main thread runs yet, so the process-wide umask is ours. */
    mode_t old = umask(0177);
    r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    int err = errno;
    umask(old);
    struct stat st;
    if (r < 0 || listen(fd, 8) < 0 || stat(path, &st) < 0) {
        if (r == 0)
            err = errno, unlink(path);
        close(fd);
        return err_set_errno(e, err, "--control %s", path);
    }
    if (evloop_add(c->loop, fd, EPOLLIN, on_accept, c) < 0) {
        unlink(path);
        close(fd);
        return err_set(e, EIO, "--control %s: cannot watch the socket", path);
    }
    c->listen_fd = fd;
    c->path = strdup(path);
    c->dev = st.st_dev;
    c->ino = st.st_ino;
    return 0;
}

/* The last replies and the SHUTDOWN event should reach the clients: wait
 * a little for slow readers, never long. */
static void drain(struct control *c)
{
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        control_flush(c);
        struct pollfd pfd[CONTROL_MAX_CLIENTS];
        unsigned n = 0;
        pthread_mutex_lock(&c->lock);
        for (struct control_client *cl = c->clients; cl && n < CONTROL_MAX_CLIENTS; cl = cl->next)
            if (cl->out_len > 0 && !cl->dead)
                pfd[n++] = (struct pollfd){ .fd = cl->fd, .events = POLLOUT };
        pthread_mutex_unlock(&c->lock);
        clock_gettime(CLOCK_MONOTONIC, &now);
        long ms = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (n == 0 || ms >= DRAIN_MS)
            return;
        poll(pfd, n, (int)(DRAIN_MS - ms));
    }
}

void control_free(struct control *c)
{
    if (!c)
        return;
    drain(c);
    while (c->clients) {
        struct control_client *cl = c->clients;
        c->clients = cl->next;
        client_free(cl);
    }
    if (c->listen_fd >= 0) {
        if (c->loop)
            evloop_del(c->loop, c->listen_fd);
        close(c->listen_fd);
        /* Only our own socket: a successor may already have replaced it. */
        struct stat st;
        if (c->path && stat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
            unlink(c->path);
    }
    if (c->wake_fd >= 0) {
        if (c->loop)
            evloop_del(c->loop, c->wake_fd);
        close(c->wake_fd);
    }
    free(c->path);
    control_cmds_free(c);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void control_emit_event(struct control *c, const char *name, struct json_object *data)
{
    if (!c) {
        json_object_put(data);
        return;
    }
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct json_object *ev = json_object_new_object();
    json_object_object_add(ev, "event", json_object_new_string(name));
    if (data)
        json_object_object_add(ev, "data", data);
    struct json_object *ts = json_object_new_object();
    json_object_object_add(ts, "seconds", json_object_new_int64(tv.tv_sec));
    json_object_object_add(ts, "microseconds", json_object_new_int64(tv.tv_usec));
    json_object_object_add(ev, "timestamp", ts);
    size_t len;
    const char *text = json_object_to_json_string_length(ev, JSON_C_TO_STRING_PLAIN, &len);
    pthread_mutex_lock(&c->lock);
    for (struct control_client *cl = c->clients; cl; cl = cl->next)
        if (cl->events_on)
            client_queue(cl, text, len);
    pthread_mutex_unlock(&c->lock);
    json_object_put(ev);
    /* The loop thread sends it: only it changes epoll watches and drops
     * clients. */
    if (c->wake_fd >= 0) {
        uint64_t one = 1;
        ssize_t n = write(c->wake_fd, &one, sizeof(one));
        (void)n;
    }
}
