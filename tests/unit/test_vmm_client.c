/* The daemon's QMP client against a scripted server on a real UNIX socket:
 * negotiation, replies matched by id with events in between and messages
 * split across reads, error replies, timeouts, a server that goes away,
 * and messages too big to buffer; the same driven from an event loop
 * (connect_async, execute_async). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "daemon/vmm_client.h"
#include "util/evloop.h"

#define GREETING "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, " \
                 "\"major\": 7}, \"package\": \"cvirt\"}, \"capabilities\": []}}\r\n"

struct server {
    char path[108];
    int lfd;
    pthread_t thread;
    void (*script)(int fd);
};

static void put(int fd, const char *s)
{
    size_t len = strlen(s);
    while (len) {
        ssize_t n = write(fd, s, len);
        if (n <= 0)
            return;
        s += n;
        len -= (size_t)n;
    }
}

/* Reads one request line and returns its id (-1 when none). */
static long get_request(int fd, char *cmd, size_t cmdlen)
{
    char line[4096];
    size_t n = 0;
    while (n < sizeof(line) - 1) {
        ssize_t k = read(fd, line + n, 1);
        if (k <= 0)
            return -1;
        if (line[n++] == '\n')
            break;
    }
    line[n] = '\0';
    struct json_object *o = json_tokener_parse(line), *v;
    long id = -1;
    if (o && json_object_object_get_ex(o, "id", &v))
        id = (long)json_object_get_int64(v);
    if (cmd && o && json_object_object_get_ex(o, "execute", &v))
        snprintf(cmd, cmdlen, "%s", json_object_get_string(v));
    json_object_put(o);
    return id;
}

static void reply(int fd, long id, const char *ret)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "{\"return\": %s, \"id\": %ld}\r\n", ret, id);
    put(fd, buf);
}

/* Greeting and qmp_capabilities, as every script starts. */
static void negotiate(int fd)
{
    put(fd, GREETING);
    long id = get_request(fd, NULL, 0);
    reply(fd, id, "{}");
}

static void *server_main(void *opaque)
{
    struct server *s = opaque;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd >= 0) {
        s->script(fd);
        close(fd);
    }
    return NULL;
}

static void server_start(struct server *s, void (*script)(int fd))
{
    static int seq;
    memset(s, 0, sizeof(*s));
    snprintf(s->path, sizeof(s->path), "/tmp/test_vmm_client.%d.%d.sock", (int)getpid(), seq++);
    unlink(s->path);
    s->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    strcpy(sa.sun_path, s->path);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s->lfd, 1), 0);
    s->script = script;
    assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
}

static void server_stop(struct server *s)
{
    pthread_join(s->thread, NULL);
    close(s->lfd);
    unlink(s->path);
}

struct seen {
    int events;
    char last[64];
    bool closed;
};

static void on_event(void *opaque, const char *name, struct json_object *data)
{
    struct seen *s = opaque;
    s->events++;
    snprintf(s->last, sizeof(s->last), "%s", name);
}

static void on_close(void *opaque)
{
    ((struct seen *)opaque)->closed = true;
}

static const struct vmm_client_ops ops = { .on_event = on_event, .on_close = on_close };

/* An event before the reply, a stale reply with another id, and the reply
 * itself split in two writes. */
static void script_status(int fd)
{
    negotiate(fd);
    char cmd[64] = "";
    long id = get_request(fd, cmd, sizeof(cmd));
    if (strcmp(cmd, "query-status"))
        return;
    put(fd, "{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\r\n");
    reply(fd, id + 100, "{\"status\": \"wrong\"}");
    char buf[128];
    snprintf(buf, sizeof(buf), "{\"return\": {\"status\": \"paused\", \"running\": false}, "
             "\"id\": %ld}\r\n", id);
    size_t half = strlen(buf) / 2;
    char first[128];
    memcpy(first, buf, half);
    first[half] = '\0';
    put(fd, first);
    usleep(20000);
    put(fd, buf + half);
    get_request(fd, NULL, 0);     /* until the client hangs up */
}

static void test_execute_with_event(void **state)
{
    struct server srv;
    struct seen seen = { 0 };
    struct vmm_client *c;
    struct err e = { 0 };
    server_start(&srv, script_status);
    assert_int_equal(vmm_client_connect(NULL, srv.path, 2000, &ops, &seen, &c, &e), 0);
    struct json_object *ret = NULL, *st;
    assert_int_equal(vmm_client_execute(c, "query-status", NULL, 2000, &ret, &e), 0);
    assert_true(json_object_object_get_ex(ret, "status", &st));
    assert_string_equal(json_object_get_string(st), "paused");
    json_object_put(ret);
    assert_int_equal(seen.events, 1);
    assert_string_equal(seen.last, "STOP");
    /* The scripted server is a thread of this process. */
    assert_int_equal(vmm_client_peer_pid(c), getpid());
    vmm_client_free(c);
    server_stop(&srv);
}

static void script_error(int fd)
{
    negotiate(fd);
    long id = get_request(fd, NULL, 0);
    char buf[256];
    snprintf(buf, sizeof(buf), "{\"error\": {\"class\": \"GenericError\", \"desc\": "
             "\"No balloon device has been activated\"}, \"id\": %ld}\r\n", id);
    put(fd, buf);
    get_request(fd, NULL, 0);
}

static void test_error_reply(void **state)
{
    struct server srv;
    struct vmm_client *c;
    struct err e = { 0 };
    server_start(&srv, script_error);
    assert_int_equal(vmm_client_connect(NULL, srv.path, 2000, NULL, NULL, &c, &e), 0);
    struct json_object *args = json_object_new_object();
    json_object_object_add(args, "value", json_object_new_int64(1 << 20));
    assert_int_equal(vmm_client_execute(c, "balloon", args, 2000, NULL, &e), -EIO);
    assert_string_equal(e.msg, "No balloon device has been activated");
    assert_true(vmm_client_alive(c));
    vmm_client_free(c);
    server_stop(&srv);
}

static void script_silent(int fd)
{
    negotiate(fd);
    get_request(fd, NULL, 0);
    get_request(fd, NULL, 0);     /* never answers; waits for the hang-up */
}

static void test_timeout(void **state)
{
    struct server srv;
    struct vmm_client *c;
    struct err e = { 0 };
    server_start(&srv, script_silent);
    assert_int_equal(vmm_client_connect(NULL, srv.path, 2000, NULL, NULL, &c, &e), 0);
    assert_int_equal(vmm_client_execute(c, "stop", NULL, 200, NULL, &e), -ETIMEDOUT);
    assert_non_null(strstr(e.msg, "did not answer 'stop'"));
    vmm_client_free(c);
    server_stop(&srv);
}

static void script_hangup(int fd)
{
    negotiate(fd);
    get_request(fd, NULL, 0);
    put(fd, "{\"event\": \"SHUTDOWN\", \"data\": {\"guest\": false, \"reason\": \"host-qmp-quit\"}}\r\n");
    /* and closes without a reply, as a VMM that exits on quit may */
}

static void test_hangup(void **state)
{
    struct server srv;
    struct seen seen = { 0 };
    struct vmm_client *c;
    struct err e = { 0 };
    struct evloop *loop = evloop_new();
    assert_non_null(loop);
    server_start(&srv, script_hangup);
    assert_int_equal(vmm_client_connect(loop, srv.path, 2000, &ops, &seen, &c, &e), 0);
    assert_int_equal(vmm_client_execute(c, "quit", NULL, 2000, NULL, &e), -EPIPE);
    assert_int_equal(seen.events, 1);
    assert_string_equal(seen.last, "SHUTDOWN");
    assert_false(vmm_client_alive(c));
    /* The loop reports the end once. */
    for (int i = 0; i < 10 && !seen.closed; i++)
        evloop_run_once(loop, 100);
    assert_true(seen.closed);
    err_clear(&e);
    assert_int_equal(vmm_client_execute(c, "cont", NULL, 100, NULL, &e), -EPIPE);
    vmm_client_free(c);
    server_stop(&srv);
    evloop_free(loop);
}

static void script_flood(int fd)
{
    negotiate(fd);
    get_request(fd, NULL, 0);
    /* An object that never ends: 2 MiB of one string. */
    put(fd, "{\"return\": \"");
    char chunk[4096];
    memset(chunk, 'x', sizeof(chunk) - 1);
    chunk[sizeof(chunk) - 1] = '\0';
    for (int i = 0; i < 512; i++)
        put(fd, chunk);
    get_request(fd, NULL, 0);
}

static void test_oversized(void **state)
{
    struct server srv;
    struct vmm_client *c;
    struct err e = { 0 };
    server_start(&srv, script_flood);
    assert_int_equal(vmm_client_connect(NULL, srv.path, 2000, NULL, NULL, &c, &e), 0);
    int r = vmm_client_execute(c, "query-status", NULL, 5000, NULL, &e);
    assert_int_equal(r, -EPIPE);
    assert_false(vmm_client_alive(c));
    vmm_client_free(c);
    server_stop(&srv);
}

static void script_no_greeting(int fd)
{
    char b;
    (void)!read(fd, &b, 1);     /* waits for the client to give up */
}

static void test_no_greeting(void **state)
{
    struct server srv;
    struct vmm_client *c = NULL;
    struct err e = { 0 };
    server_start(&srv, script_no_greeting);
    assert_int_equal(vmm_client_connect(NULL, srv.path, 200, NULL, NULL, &c, &e), -ETIMEDOUT);
    assert_non_null(strstr(e.msg, "no greeting"));
    assert_null(c);
    server_stop(&srv);
}

static void test_no_socket(void **state)
{
    struct vmm_client *c = NULL;
    struct err e = { 0 };
    assert_int_equal(vmm_client_connect(NULL, "/tmp/test_vmm_client.none.sock", 200, NULL,
                                        NULL, &c, &e), -ENOENT);
    assert_null(c);
}

/* ---- driven from the loop ---- */

struct async_seen {
    struct seen ev;
    int ready_calls, ready_rc;
    int done_calls, done_rc;
    char msg[sizeof(((struct err *)0)->msg)];
    char ret[128];
};

static void on_ready(void *opaque, int rc, const struct err *e)
{
    struct async_seen *a = opaque;
    a->ready_calls++;
    a->ready_rc = rc;
    snprintf(a->msg, sizeof(a->msg), "%s", rc < 0 ? e->msg : "");
}

static void on_async_event(void *opaque, const char *name, struct json_object *data)
{
    on_event(&((struct async_seen *)opaque)->ev, name, data);
}

static void on_async_close(void *opaque)
{
    ((struct async_seen *)opaque)->ev.closed = true;
}

static const struct vmm_client_ops async_ops = { .on_event = on_async_event,
                                                 .on_close = on_async_close };

static void on_done(void *opaque, int rc, struct json_object *ret, const struct err *e)
{
    struct async_seen *a = opaque;
    a->done_calls++;
    a->done_rc = rc;
    snprintf(a->msg, sizeof(a->msg), "%s", rc < 0 ? e->msg : "");
    snprintf(a->ret, sizeof(a->ret), "%s", ret ? json_object_to_json_string(ret) : "");
}

static void spin(struct evloop *l, const int *counter, int want)
{
    for (int i = 0; i < 100 && *counter < want; i++)
        evloop_run_once(l, 50);
    assert_int_equal(*counter, want);
}

/* A slow greeting, then migrate answered late with an event first, then
 * quit sent without waiting. */
static void script_slow(int fd)
{
    usleep(100000);
    negotiate(fd);
    char cmd[64] = "";
    long id = get_request(fd, cmd, sizeof(cmd));
    if (strcmp(cmd, "migrate"))
        return;
    put(fd, "{\"event\": \"STOP\"}\r\n");
    usleep(100000);
    reply(fd, id, "{\"written\": 1}");
    get_request(fd, cmd, sizeof(cmd));
    if (!strcmp(cmd, "quit"))
        return;     /* closes: the client sees the hang-up */
    get_request(fd, NULL, 0);
}

static void test_async_connect_and_execute(void **state)
{
    struct server srv;
    struct async_seen a = { 0 };
    struct vmm_client *c = NULL;
    struct err e = { 0 };
    struct evloop *l = evloop_new();
    server_start(&srv, script_slow);
    assert_int_equal(vmm_client_connect_async(l, srv.path, 2000, &async_ops, &a, on_ready, &c,
                                              &e), 0);
    assert_non_null(c);
    assert_int_equal(a.ready_calls, 0);       /* nothing before the loop runs */
    /* Nothing may run on a client still negotiating. */
    assert_int_equal(vmm_client_execute(c, "query-status", NULL, 100, NULL, &e), -EBUSY);
    spin(l, &a.ready_calls, 1);
    assert_int_equal(a.ready_rc, 0);
    assert_int_equal(vmm_client_execute_async(c, "migrate", NULL, 2000, on_done, &a, &e), 0);
    e = (struct err){ 0 };
    assert_int_equal(vmm_client_execute(c, "query-status", NULL, 100, NULL, &e), -EBUSY);
    assert_int_equal(vmm_client_execute_async(c, "cont", NULL, 100, on_done, &a, &e), -EBUSY);
    spin(l, &a.done_calls, 1);
    assert_int_equal(a.done_rc, 0);
    assert_non_null(strstr(a.ret, "\"written\""));
    assert_int_equal(a.ev.events, 1);         /* STOP, delivered before the reply */
    assert_int_equal(vmm_client_send(c, "quit", &e), 0);
    for (int i = 0; i < 100 && !a.ev.closed; i++)
        evloop_run_once(l, 50);
    assert_true(a.ev.closed);
    vmm_client_free(c);
    server_stop(&srv);
    evloop_free(l);
}

/* Events before the greeting and before qmp_capabilities' reply, then
 * one once the client is ready. */
static void script_early_events(int fd)
{
    put(fd, "{\"event\": \"STOP\"}\r\n");
    put(fd, GREETING);
    long id = get_request(fd, NULL, 0);
    put(fd, "{\"event\": \"SHUTDOWN\", \"data\": {\"guest\": true}}\r\n");
    reply(fd, id, "{}");
    usleep(100000);
    put(fd, "{\"event\": \"RESUME\"}\r\n");
    char buf[16];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

/* The owner hears no event before ready; those after it it does. */
static void test_async_no_event_before_ready(void **state)
{
    struct server srv;
    struct async_seen a = { 0 };
    struct vmm_client *c = NULL;
    struct err e = { 0 };
    struct evloop *l = evloop_new();
    (void)state;
    server_start(&srv, script_early_events);
    assert_int_equal(vmm_client_connect_async(l, srv.path, 2000, &async_ops, &a, on_ready, &c,
                                              &e), 0);
    spin(l, &a.ready_calls, 1);
    assert_int_equal(a.ready_rc, 0);
    spin(l, &a.ev.events, 1);
    assert_string_equal(a.ev.last, "RESUME");
    for (int i = 0; i < 4; i++)
        evloop_run_once(l, 20);
    assert_int_equal(a.ev.events, 1);
    vmm_client_free(c);
    server_stop(&srv);
    evloop_free(l);
}

static void script_caps_refused(int fd)
{
    put(fd, GREETING);
    long id = get_request(fd, NULL, 0);
    char buf[256];
    snprintf(buf, sizeof(buf), "{\"error\": {\"class\": \"GenericError\", \"desc\": "
             "\"not now\"}, \"id\": %ld}\r\n", id);
    put(fd, buf);
    get_request(fd, NULL, 0);
}

static void script_migrate_hangup(int fd)
{
    negotiate(fd);
    get_request(fd, NULL, 0);
}

/* The handshake's failures each reach ready once, and a command whose
 * VMM goes away reaches done once. */
static void test_async_failures(void **state)
{
    struct server srv;
    struct vmm_client *c = NULL;
    struct err e = { 0 };
    struct evloop *l = evloop_new();

    struct async_seen a = { 0 };
    server_start(&srv, script_caps_refused);
    assert_int_equal(vmm_client_connect_async(l, srv.path, 2000, &async_ops, &a, on_ready, &c,
                                              &e), 0);
    spin(l, &a.ready_calls, 1);
    assert_int_equal(a.ready_rc, -EIO);
    assert_string_equal(a.msg, "not now");
    vmm_client_free(c);
    server_stop(&srv);

    memset(&a, 0, sizeof(a));
    server_start(&srv, script_no_greeting);
    assert_int_equal(vmm_client_connect_async(l, srv.path, 200, &async_ops, &a, on_ready, &c,
                                              &e), 0);
    spin(l, &a.ready_calls, 1);
    assert_int_equal(a.ready_rc, -ETIMEDOUT);
    assert_non_null(strstr(a.msg, "no greeting"));
    vmm_client_free(c);
    server_stop(&srv);

    memset(&a, 0, sizeof(a));
    server_start(&srv, script_migrate_hangup);
    assert_int_equal(vmm_client_connect_async(l, srv.path, 2000, &async_ops, &a, on_ready, &c,
                                              &e), 0);
    spin(l, &a.ready_calls, 1);
    assert_int_equal(a.ready_rc, 0);
    assert_int_equal(vmm_client_execute_async(c, "migrate", NULL, 2000, on_done, &a, &e), 0);
    spin(l, &a.done_calls, 1);
    assert_int_equal(a.done_rc, -EPIPE);
    assert_non_null(strstr(a.msg, "during 'migrate'"));
    assert_true(a.ev.closed);                 /* and the close is reported as usual */
    assert_int_equal(a.ready_calls, 1);
    vmm_client_free(c);
    server_stop(&srv);

    e = (struct err){ 0 };
    assert_int_equal(vmm_client_connect_async(l, "/tmp/test_vmm_client.none.sock", 200,
                                              &async_ops, &a, on_ready, &c, &e), -ENOENT);
    evloop_free(l);
}

int main(void)
{
    /* The scripted server writes on after the client gave up. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_execute_with_event),
        cmocka_unit_test(test_error_reply),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_hangup),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_no_greeting),
        cmocka_unit_test(test_no_socket),
        cmocka_unit_test(test_async_connect_and_execute),
        cmocka_unit_test(test_async_failures),
        cmocka_unit_test(test_async_no_event_before_ready),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
