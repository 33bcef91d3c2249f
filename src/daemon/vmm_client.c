#include "daemon/vmm_client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "util/evloop.h"
#include "util/log.h"

struct vmm_client {
    int fd;
    struct evloop *loop;
    const struct vmm_client_ops *ops;
    void *opaque;
    struct json_tokener *tok;
    size_t pending;            /* bytes fed into the current message */
    bool dead;
    bool closing_reported;
    unsigned next_id;
    /* While a command waits: the reply that matched its id. */
    unsigned want_id;
    struct json_object *reply;
    /* Driven from the loop: the handshake of connect_async, or one
     * command of execute_async; the timer bounds either. */
    enum { STAGE_READY, STAGE_GREETING, STAGE_CAPS } stage;
    int timer_fd;
    vmm_client_ready_fn ready;
    vmm_client_reply_fn done;
    void *done_opaque;
    char async_cmd[64];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sorts one message: an event goes to on_event, the reply the waiting
 * command expects is kept, anything else is dropped. */
static void handle_message(struct vmm_client *c, struct json_object *msg)
{
    struct json_object *ev, *id;
    if (!json_object_is_type(msg, json_type_object)) {
        json_object_put(msg);
        return;
    }
    if (json_object_object_get_ex(msg, "event", &ev)) {
        struct json_object *data = NULL;
        json_object_object_get_ex(msg, "data", &data);
        /* Dropped during connect_async's handshake: QMP sends no event
         * before qmp_capabilities, and the owner, promised no callback
         * before ready, would change a domain that has not started (a
         * STOP or SHUTDOWN emitted before Started). The start reads the
         * state it needs once ready. One read that holds the reply and
         * an event after it loses that event too: delivering it would come
         * before ready. */
        if (c->stage != STAGE_READY)
            log_debug("VMM event %s before the handshake ended: dropped",
                      json_object_get_string(ev));
        else if (c->ops && c->ops->on_event)
            c->ops->on_event(c->opaque, json_object_get_string(ev), data);
        json_object_put(msg);
        return;
    }
    if (c->want_id && !c->reply && json_object_object_get_ex(msg, "id", &id) &&
        json_object_get_int64(id) == c->want_id) {
        c->reply = msg;
        return;
    }
    /* The greeting has neither: keep it for connect. */
    if (!c->want_id && !c->reply && json_object_object_get_ex(msg, "QMP", NULL)) {
        c->reply = msg;
        return;
    }
    json_object_put(msg);
}

/* Feeds received bytes to the tokenizer, message by message. */
static int feed(struct vmm_client *c, const char *p, size_t len)
{
    while (len) {
        /* Blanks between messages do not count towards a message's size. */
        while (len && c->pending == 0 && (*p == '\r' || *p == '\n' || *p == ' ')) {
            p++;
            len--;
        }
        if (!len)
            break;
        size_t chunk = len > INT32_MAX ? INT32_MAX : len;
        struct json_object *obj = json_tokener_parse_ex(c->tok, p, (int)chunk);
        enum json_tokener_error je = json_tokener_get_error(c->tok);
        if (je == json_tokener_continue) {
            c->pending += chunk;
            if (c->pending > VMM_CLIENT_MAX_MESSAGE)
                return -EMSGSIZE;
            return 0;
        }
        if (je != json_tokener_success)
            return -EPROTO;
        size_t used = json_tokener_get_parse_end(c->tok);
        if (used == 0 || used > chunk)
            used = chunk;
        c->pending += used;
        if (c->pending > VMM_CLIENT_MAX_MESSAGE) {
            json_object_put(obj);
            return -EMSGSIZE;
        }
        json_tokener_reset(c->tok);
        c->pending = 0;
        p += used;
        len -= used;
        handle_message(c, obj);
    }
    return 0;
}

/* Reads what is there without blocking; 0, or -EPIPE/-EPROTO/... when the
 * connection is over (c->dead is then set). */
static int read_some(struct vmm_client *c)
{
    char buf[8192];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0) {
            c->dead = true;
            return n == 0 ? -EPIPE : -errno;
        }
        int r = feed(c, buf, (size_t)n);
        if (r < 0) {
            c->dead = true;
            return r;
        }
        if (c->reply)
            return 0;
    }
}

/* Waits until a message was kept in c->reply, or the deadline passes. */
static int wait_reply(struct vmm_client *c, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    while (!c->reply) {
        if (c->dead)
            return -EPIPE;
        int r = read_some(c);
        if (r < 0)
            return r;
        if (c->reply)
            break;
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
        if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
            return -errno;
    }
    return 0;
}

static int send_all(int fd, const char *p, size_t len, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            int64_t left = deadline - now_ms();
            if (left <= 0)
                return -ETIMEDOUT;
            struct pollfd pfd = { .fd = fd, .events = POLLOUT };
            poll(&pfd, 1, (int)left);
            continue;
        }
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static bool handshake_step(struct vmm_client *c);
static void async_finish(struct vmm_client *c, struct json_object *reply, struct err *e);

/* The end of the connection is judged by recv() alone, not by the event
 * mask: a watch slot freed and reused in the same loop turn may deliver
 * another descriptor's mask. */
static void on_readable(void *opaque, uint32_t events)
{
    struct vmm_client *c = opaque;
    if (!c->dead)
        read_some(c);
    if (c->stage != STAGE_READY) {
        handshake_step(c);
        return;
    }
    if (c->done && (c->reply || c->dead)) {
        struct err e = { 0 };
        struct json_object *reply = c->reply;
        c->reply = NULL;
        if (!reply)
            err_set(&e, EPIPE, "the VMM closed its control connection during '%s'",
                    c->async_cmd);
        async_finish(c, reply, &e);
    }
    /* A reply nobody waits for any more (a timed-out command's). */
    if (c->reply && !c->want_id) {
        json_object_put(c->reply);
        c->reply = NULL;
    }
    if (c->dead && !c->closing_reported) {
        c->closing_reported = true;
        if (c->loop)
            evloop_del(c->loop, c->fd);
        if (c->ops && c->ops->on_close)
            c->ops->on_close(c->opaque);     /* may free c: nothing after */
    }
}

static void timer_stop(struct vmm_client *c);

void vmm_client_cancel_async(struct vmm_client *c)
{
    if (!c || !c->done)
        return;
    /* Its reply, should it come, matches nothing and is dropped. */
    c->done = NULL;
    c->done_opaque = NULL;
    c->want_id = 0;
    json_object_put(c->reply);
    c->reply = NULL;
    timer_stop(c);
}

int vmm_client_peer_pid(const struct vmm_client *c)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return -1;
    return (int)cred.pid;
}

bool vmm_client_alive(const struct vmm_client *c)
{
    return c && !c->dead;
}

/* Sends {"execute": cmd, "arguments": args, "id": N}; args is consumed. */
static int send_command(struct vmm_client *c, const char *cmd, struct json_object *args,
                        int timeout_ms, unsigned *id_out, struct err *e)
{
    if (c->dead) {
        json_object_put(args);
        return err_set(e, EPIPE, "the VMM's control connection is closed");
    }
    struct json_object *req = json_object_new_object();
    unsigned id = ++c->next_id ? c->next_id : ++c->next_id;
    json_object_object_add(req, "execute", json_object_new_string(cmd));
    if (args)
        json_object_object_add(req, "arguments", args);
    json_object_object_add(req, "id", json_object_new_int64(id));
    char *line = NULL;
    int n = asprintf(&line, "%s\r\n", json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN));
    json_object_put(req);
    if (n < 0)
        return err_set(e, ENOMEM, "out of memory");
    int r = send_all(c->fd, line, (size_t)n, timeout_ms);
    free(line);
    if (r < 0) {
        c->dead = r != -ETIMEDOUT;
        return err_set_errno(e, -r, "cannot send '%s' to the VMM", cmd);
    }
    *id_out = id;
    return 0;
}

/* The outcome of a reply (consumed): 0 with *ret (when asked) the
 * "return" value, or the QMP error as -EIO. */
static int take_result(struct json_object *reply, const char *cmd, struct json_object **ret,
                       struct err *e)
{
    struct json_object *v, *desc;
    int r;
    if (json_object_object_get_ex(reply, "return", &v)) {
        if (ret)
            *ret = json_object_get(v);
        json_object_put(reply);
        return 0;
    }
    if (json_object_object_get_ex(reply, "error", &v) &&
        json_object_object_get_ex(v, "desc", &desc))
        r = err_set(e, EIO, "%s", json_object_get_string(desc));
    else
        r = err_set(e, EPROTO, "the VMM's reply to '%s' has neither return nor error", cmd);
    json_object_put(reply);
    return r;
}

int vmm_client_execute(struct vmm_client *c, const char *cmd, struct json_object *args,
                       int timeout_ms, struct json_object **ret, struct err *e)
{
    if (ret)
        *ret = NULL;
    if (c->stage != STAGE_READY || c->done) {
        json_object_put(args);
        return err_set(e, EBUSY, "the VMM is busy with '%s'",
                       c->done ? c->async_cmd : "its start");
    }
    unsigned id;
    int r = send_command(c, cmd, args, timeout_ms, &id, e);
    if (r < 0)
        return r;
    c->want_id = id;
    r = wait_reply(c, timeout_ms);
    c->want_id = 0;
    if (r == -ETIMEDOUT)
        return err_set(e, ETIMEDOUT, "the VMM did not answer '%s' within %d ms", cmd, timeout_ms);
    if (r < 0)
        return err_set(e, EPIPE, "the VMM closed its control connection during '%s'", cmd);
    struct json_object *reply = c->reply;
    c->reply = NULL;
    return take_result(reply, cmd, ret, e);
}

int vmm_client_send(struct vmm_client *c, const char *cmd, struct err *e)
{
    unsigned id;
    return send_command(c, cmd, NULL, VMM_CLIENT_TIMEOUT_MS, &id, e);
}

/* ---- driven from the loop ---- */

static int timer_arm(struct vmm_client *c, int timeout_ms, evloop_cb cb, struct err *e)
{
    if (c->timer_fd < 0) {
        c->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (c->timer_fd < 0)
            return err_set_errno(e, errno, "timerfd");
        int r = evloop_add(c->loop, c->timer_fd, EPOLLIN, cb, c);
        if (r < 0) {
            close(c->timer_fd);
            c->timer_fd = -1;
            return err_set(e, -r, "cannot watch a timer: %s", strerror(-r));
        }
    }
    struct itimerspec its = { .it_value = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000L } };
    if (timeout_ms <= 0)
        its.it_value.tv_nsec = 1;
    if (timerfd_settime(c->timer_fd, 0, &its, NULL) < 0)
        return err_set_errno(e, errno, "timerfd_settime");
    return 0;
}

static void timer_stop(struct vmm_client *c)
{
    if (c->timer_fd < 0)
        return;
    evloop_del(c->loop, c->timer_fd);
    close(c->timer_fd);
    c->timer_fd = -1;
}

/* The handshake failed: the owner learns it once and frees the client. */
static void handshake_fail(struct vmm_client *c, struct err *e)
{
    timer_stop(c);
    c->dead = true;
    c->closing_reported = true;
    evloop_del(c->loop, c->fd);
    vmm_client_ready_fn ready = c->ready;
    c->ready = NULL;
    ready(c->opaque, -e->code, e);      /* may free c */
}

/* Called with a message kept or the connection over; true when a
 * callback that may have freed c ran. */
static bool handshake_step(struct vmm_client *c)
{
    struct err e = { 0 };
    if (c->reply && c->stage == STAGE_GREETING) {
        json_object_put(c->reply);
        c->reply = NULL;
        unsigned id;
        if (send_command(c, "qmp_capabilities", NULL, VMM_CLIENT_TIMEOUT_MS, &id, &e) < 0) {
            handshake_fail(c, &e);
            return true;
        }
        c->want_id = id;
        c->stage = STAGE_CAPS;
        /* The reply may be in the socket already. */
        if (!c->dead)
            read_some(c);
    }
    if (c->reply && c->stage == STAGE_CAPS) {
        struct json_object *reply = c->reply;
        c->reply = NULL;
        c->want_id = 0;
        if (take_result(reply, "qmp_capabilities", NULL, &e) < 0) {
            handshake_fail(c, &e);
            return true;
        }
        timer_stop(c);
        c->stage = STAGE_READY;
        vmm_client_ready_fn ready = c->ready;
        c->ready = NULL;
        ready(c->opaque, 0, NULL);      /* may free c */
        return true;
    }
    if (c->dead) {
        err_set(&e, EPIPE, "the VMM closed its control connection before %s",
                c->stage == STAGE_GREETING ? "its greeting" : "accepting qmp_capabilities");
        handshake_fail(c, &e);
        return true;
    }
    return false;
}

/* The pending command of execute_async is over (reply is NULL when it
 * failed: e says why). */
static void async_finish(struct vmm_client *c, struct json_object *reply, struct err *e)
{
    vmm_client_reply_fn done = c->done;
    void *opaque = c->done_opaque;
    struct json_object *ret = NULL;
    int rc = -e->code;
    c->done = NULL;
    c->want_id = 0;
    timer_stop(c);
    if (reply)
        rc = take_result(reply, c->async_cmd, &ret, e);
    done(opaque, rc, ret, rc < 0 ? e : NULL);
    json_object_put(ret);
}

static void on_timer(void *opaque, uint32_t events)
{
    struct vmm_client *c = opaque;
    uint64_t n;
    (void)events;
    if (c->timer_fd < 0 || read(c->timer_fd, &n, sizeof(n)) != sizeof(n))
        return;
    struct err e = { 0 };
    if (c->stage != STAGE_READY) {
        err_set(&e, ETIMEDOUT, "no %s from the VMM within its start time",
                c->stage == STAGE_GREETING ? "greeting" : "answer to qmp_capabilities");
        handshake_fail(c, &e);
    } else if (c->done) {
        err_set(&e, ETIMEDOUT, "the VMM did not answer '%s' in time", c->async_cmd);
        async_finish(c, NULL, &e);
    }
}

int vmm_client_execute_async(struct vmm_client *c, const char *cmd, struct json_object *args,
                             int timeout_ms, vmm_client_reply_fn done, void *opaque,
                             struct err *e)
{
    if (!c->loop || c->stage != STAGE_READY || c->done) {
        json_object_put(args);
        return err_set(e, EBUSY, "the VMM's control connection is busy");
    }
    if (strlen(cmd) >= sizeof(c->async_cmd)) {
        json_object_put(args);
        return err_set(e, EINVAL, "command name '%s' is too long", cmd);
    }
    int r = timer_arm(c, timeout_ms, on_timer, e);
    unsigned id = 0;
    if (r < 0) {
        json_object_put(args);
        return r;
    }
    r = send_command(c, cmd, args, VMM_CLIENT_TIMEOUT_MS, &id, e);
    if (r < 0) {
        timer_stop(c);
        return r;
    }
    snprintf(c->async_cmd, sizeof(c->async_cmd), "%s", cmd);
    c->want_id = id;
    c->done = done;
    c->done_opaque = opaque;
    return 0;
}

static int connect_unix(const char *path, struct err *e)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path))
        return err_set(e, ENAMETOOLONG, "control socket path %s is too long", path);
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return err_set_errno(e, errno, "socket");
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int r = err_set_errno(e, errno, "cannot connect to %s", path);
        close(fd);
        return r;
    }
    return fd;
}

static struct vmm_client *client_new(const struct vmm_client_ops *ops, void *opaque,
                                     struct err *e)
{
    struct vmm_client *c = calloc(1, sizeof(*c));
    if (!c) {
        err_set(e, ENOMEM, "out of memory");
        return NULL;
    }
    c->fd = -1;
    c->timer_fd = -1;
    c->ops = ops;
    c->opaque = opaque;
    c->tok = json_tokener_new();
    if (!c->tok) {
        free(c);
        err_set(e, ENOMEM, "out of memory");
        return NULL;
    }
    return c;
}

int vmm_client_connect(struct evloop *loop, const char *path, int timeout_ms,
                       const struct vmm_client_ops *ops, void *opaque,
                       struct vmm_client **out, struct err *e)
{
    struct vmm_client *c = client_new(ops, opaque, e);
    if (!c)
        return -e->code;
    int r = connect_unix(path, e);
    if (r >= 0) {
        c->fd = r;
        r = 0;
    }
    if (r == 0) {
        r = wait_reply(c, timeout_ms);
        if (r < 0)
            err_set(e, -r == EPIPE ? EPIPE : -r, "no greeting on %s: %s", path, strerror(-r));
    }
    if (r == 0) {
        json_object_put(c->reply);
        c->reply = NULL;
        r = vmm_client_execute(c, "qmp_capabilities", NULL, timeout_ms, NULL, e);
    }
    if (r == 0 && loop) {
        r = evloop_add(loop, c->fd, EPOLLIN | EPOLLRDHUP, on_readable, c);
        if (r < 0)
            err_set(e, -r, "cannot watch %s: %s", path, strerror(-r));
        else
            c->loop = loop;
    }
    if (r < 0) {
        vmm_client_free(c);
        return r;
    }
    *out = c;
    return 0;
}

int vmm_client_connect_async(struct evloop *loop, const char *path, int timeout_ms,
                             const struct vmm_client_ops *ops, void *opaque,
                             vmm_client_ready_fn ready, struct vmm_client **out,
                             struct err *e)
{
    if (!loop || !ready)
        return err_set(e, EINVAL, "an asynchronous connect needs a loop and a callback");
    struct vmm_client *c = client_new(ops, opaque, e);
    if (!c)
        return -e->code;
    /* A listening UNIX socket takes the connection into its backlog at
     * once: connect() does not wait for the VMM. */
    int r = connect_unix(path, e);
    if (r >= 0) {
        c->fd = r;
        r = evloop_add(loop, c->fd, EPOLLIN | EPOLLRDHUP, on_readable, c);
        if (r < 0)
            err_set(e, -r, "cannot watch %s: %s", path, strerror(-r));
        else
            c->loop = loop;
    }
    if (r == 0) {
        c->stage = STAGE_GREETING;
        c->ready = ready;
        r = timer_arm(c, timeout_ms, on_timer, e);
    }
    if (r < 0) {
        vmm_client_free(c);
        return r;
    }
    *out = c;
    return 0;
}

void vmm_client_free(struct vmm_client *c)
{
    if (!c)
        return;
    timer_stop(c);
    if (c->loop && !c->closing_reported)
        evloop_del(c->loop, c->fd);
    if (c->fd >= 0)
        close(c->fd);
    if (c->tok)
        json_tokener_free(c->tok);
    json_object_put(c->reply);
    free(c);
}
