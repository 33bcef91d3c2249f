/* Replies that come later (rpc_defer): other calls are answered meanwhile,
 * the late reply carries its call's serial and procedure, an error reply
 * works the same, a client that disconnects first loses the reply without
 * anything leaking, and a handler that defers without rpc_defer() gets an
 * error reply instead of leaving the call unanswered. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/daemon.h"
#include "daemon/rpc/client.h"
#include "daemon/rpc/server.h"
#include "util/evloop.h"

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}

/* A CALL of the remote program without payload. */
static size_t make_call(uint8_t *buf, int proc, uint32_t serial)
{
    put32(buf, 28);
    put32(buf + 4, REMOTE_PROGRAM);
    put32(buf + 8, REMOTE_PROTOCOL_VERSION);
    put32(buf + 12, (uint32_t)proc);
    put32(buf + 16, REMOTE_CALL);
    put32(buf + 20, serial);
    put32(buf + 24, REMOTE_OK);
    return 28;
}

/* The deferred calls the handler took, in order. */
static struct rpc_deferred *pending[8];
static int npending;

static int h_later(struct rpc_client *c, const void *args, void *ret, struct rpc_error *err)
{
    (void)args; (void)ret;
    struct rpc_deferred *dr = rpc_defer(c, err);
    if (!dr)
        return -1;
    assert_true(npending < 8);
    pending[npending++] = dr;
    return RPC_HANDLER_DEFERRED;
}

static int h_now(struct rpc_client *c, const void *args, void *ret, struct rpc_error *err)
{
    (void)c; (void)args; (void)err;
    ((remote_connect_get_version_ret *)ret)->hv_ver = 7;
    return 0;
}

/* Claims to defer but never called rpc_defer(). */
static int h_liar(struct rpc_client *c, const void *args, void *ret, struct rpc_error *err)
{
    (void)c; (void)args; (void)ret; (void)err;
    return RPC_HANDLER_DEFERRED;
}

static const struct rpc_proc procs[] = {
    RPC_PROC(9, "virDomainCreate", void, connect_get_version_ret, h_later, RPC_PROC_NO_CONN),
    RPC_PROC(4, "virConnectGetVersion", void, connect_get_version_ret, h_now,
             RPC_PROC_NO_CONN),
    RPC_PROC(12, "virDomainDestroy", void, void, h_liar, RPC_PROC_NO_CONN),
};

struct fixture {
    struct rpc_table table;
    struct rpc_server *srv;
    struct daemon d;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct err e = {0};
    assert_int_equal(rpc_table_add(&f->table, procs, 3, &e), 0);
    f->srv = rpc_server_new(NULL, &f->table, &f->d, &e);
    assert_non_null(f->srv);
    npending = 0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    rpc_server_free(f->srv);
    free(f);
    return 0;
}

/* The next message of c's output from *off: its header, and its payload
 * decoded with xdr into obj (when given). */
static struct rpc_header next_reply(struct rpc_client *c, size_t *off, xdrproc_t xdr, void *obj)
{
    struct rpc_buf *out = rpc_client_output(c);
    struct rpc_header h;
    struct err e = {0};
    assert_true(out->len >= *off + RPC_HEADER_SIZE);
    size_t len = (size_t)out->data[*off] << 24 | (size_t)out->data[*off + 1] << 16 |
                 (size_t)out->data[*off + 2] << 8 | out->data[*off + 3];
    assert_true(len >= RPC_HEADER_SIZE && *off + len <= out->len);
    assert_int_equal(rpc_header_decode(out->data + *off, len, &h, &e), 0);
    if (xdr)
        assert_int_equal(rpc_payload_decode(out->data + *off + RPC_HEADER_SIZE,
                                            len - RPC_HEADER_SIZE, xdr, obj, &e), 0);
    *off += len;
    return h;
}

static void test_later_reply_after_other_calls(void **state)
{
    struct fixture *f = *state;
    struct rpc_client *c = rpc_client_new(f->srv, -1, false);
    uint8_t msg[28];
    assert_int_equal(rpc_client_feed(c, msg, make_call(msg, 9, 100)), 0);
    assert_int_equal(rpc_client_feed(c, msg, make_call(msg, 9, 101)), 0);
    /* Nothing yet for either; they wait. */
    assert_int_equal(rpc_client_output(c)->len, 0);
    assert_int_equal(rpc_client_deferred_count(c), 2);
    assert_int_equal(npending, 2);
    assert_true(rpc_deferred_connected(pending[0]));

    /* Another call is answered at once. */
    assert_int_equal(rpc_client_feed(c, msg, make_call(msg, 4, 102)), 0);
    size_t off = 0;
    remote_connect_get_version_ret v = {0};
    struct rpc_header h = next_reply(c, &off, (xdrproc_t)xdr_remote_connect_get_version_ret, &v);
    assert_int_equal(h.serial, 102);
    assert_int_equal(v.hv_ver, 7);

    /* The second deferred call ends first, with an error; then the first. */
    struct rpc_error err = {0};
    rpc_err_set(&err, VIR_ERR_OPERATION_FAILED, VIR_FROM_QEMU, "the VMM exited");
    rpc_deferred_fail(pending[1], &err);
    remote_connect_get_version_ret r = { .hv_ver = 42 };
    rpc_deferred_reply(pending[0], &r);
    assert_int_equal(rpc_client_deferred_count(c), 0);

    remote_error re = {0};
    h = next_reply(c, &off, (xdrproc_t)xdr_remote_error, &re);
    assert_int_equal(h.serial, 101);
    assert_int_equal(h.proc, 9);
    assert_int_equal(h.type, REMOTE_REPLY);
    assert_int_equal(h.status, REMOTE_ERROR);
    assert_int_equal(re.code, VIR_ERR_OPERATION_FAILED);
    assert_string_equal(*re.message, "operation failed: the VMM exited");
    xdr_free((xdrproc_t)xdr_remote_error, (char *)&re);

    memset(&v, 0, sizeof(v));
    h = next_reply(c, &off, (xdrproc_t)xdr_remote_connect_get_version_ret, &v);
    assert_int_equal(h.serial, 100);
    assert_int_equal(h.proc, 9);
    assert_int_equal(h.status, REMOTE_OK);
    assert_int_equal(v.hv_ver, 42);
    assert_int_equal(off, rpc_client_output(c)->len);
    rpc_client_close(c);
}

/* The client goes while its call waits: the operation still ends it, and
 * nothing is sent or leaked (ASan's leak check covers the latter). */
static void test_client_gone_first(void **state)
{
    struct fixture *f = *state;
    struct rpc_client *c = rpc_client_new(f->srv, -1, false);
    struct rpc_client *other = rpc_client_new(f->srv, -1, false);
    uint8_t msg[28];
    assert_int_equal(rpc_client_feed(c, msg, make_call(msg, 9, 1)), 0);
    assert_int_equal(rpc_client_feed(c, msg, make_call(msg, 9, 2)), 0);
    assert_int_equal(rpc_client_feed(other, msg, make_call(msg, 9, 3)), 0);
    assert_int_equal(npending, 3);
    rpc_client_close(c);
    assert_false(rpc_deferred_connected(pending[0]));
    assert_false(rpc_deferred_connected(pending[1]));
    assert_true(rpc_deferred_connected(pending[2]));
    remote_connect_get_version_ret r = { .hv_ver = 1 };
    rpc_deferred_reply(pending[0], &r);
    rpc_deferred_fail(pending[1], NULL);
    /* The other client's call is unaffected. */
    rpc_deferred_reply(pending[2], &r);
    size_t off = 0;
    struct rpc_header h = next_reply(other, &off, NULL, NULL);
    assert_int_equal(h.serial, 3);
    assert_int_equal(h.status, REMOTE_OK);
    assert_int_equal(rpc_client_deferred_count(other), 0);
    rpc_client_close(other);
}

/* A client closed outside its own I/O, with nothing left to send (a late
 * reply that could not be encoded: dispatch.c marks it closed and kicks
 * it), has an fd that may never fire again: the loop still frees it, and
 * the peer sees the connection end instead of waiting for ever. A reply
 * the peer cannot take (it stopped reading) ends the same way. */
static void hup_after(struct evloop *l, int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLOUT };
    bool hup = false;
    for (int i = 0; i < 20 && !hup; i++) {
        evloop_run_once(l, 50);
        hup = poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR));
    }
    assert_true(hup);
}

static void test_closed_by_late_reply_is_freed(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    struct evloop *l = evloop_new();
    assert_non_null(l);
    struct rpc_server *srv = rpc_server_new(l, &f->table, &f->d, &e);
    assert_non_null(srv);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    struct rpc_client *c = rpc_client_new(srv, sv[0], false);
    assert_non_null(c);
    c->closed = true;
    rpc_client_kick(c);
    hup_after(l, sv[1]);
    close(sv[1]);

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    assert_non_null(rpc_client_new(srv, sv[0], false));
    uint8_t msg[28];
    size_t n = make_call(msg, 9, 5);
    assert_int_equal(write(sv[1], msg, n), (ssize_t)n);
    for (int i = 0; i < 20 && npending == 0; i++)
        evloop_run_once(l, 50);
    assert_int_equal(npending, 1);
    assert_int_equal(shutdown(sv[1], SHUT_RD), 0);
    rpc_deferred_fail(pending[0], NULL);
    hup_after(l, sv[1]);
    close(sv[1]);
    rpc_server_free(srv);
    evloop_free(l);
}

/* The whole server goes with a call waiting (the daemon stops). */
static void test_server_gone_first(void **state)
{
    struct fixture *f = *state;
    struct rpc_client *c = rpc_client_new(f->srv, -1, false);
    uint8_t msg[28];
    assert_int_equal(rpc_client_feed(c, msg, make_call(msg, 9, 5)), 0);
    rpc_server_free(f->srv);
    f->srv = NULL;
    assert_false(rpc_deferred_connected(pending[0]));
    rpc_deferred_fail(pending[0], NULL);
    struct err e = {0};
    f->srv = rpc_server_new(NULL, &f->table, &f->d, &e);
    assert_non_null(f->srv);
}

/* A generic error when the operation gives none; a handler that lies about
 * deferring still answers its call. */
static void test_generic_error_and_liar(void **state)
{
    struct fixture *f = *state;
    struct rpc_client *c = rpc_client_new(f->srv, -1, false);
    uint8_t msg[28];
    assert_int_equal(rpc_client_feed(c, msg, make_call(msg, 9, 8)), 0);
    rpc_deferred_fail(pending[0], NULL);
    assert_int_equal(rpc_client_feed(c, msg, make_call(msg, 12, 9)), 0);
    size_t off = 0;
    remote_error re = {0};
    struct rpc_header h = next_reply(c, &off, (xdrproc_t)xdr_remote_error, &re);
    assert_int_equal(h.serial, 8);
    assert_int_equal(re.code, VIR_ERR_INTERNAL_ERROR);
    assert_string_equal(*re.message, "internal error: virDomainCreate failed");
    xdr_free((xdrproc_t)xdr_remote_error, (char *)&re);
    memset(&re, 0, sizeof(re));
    h = next_reply(c, &off, (xdrproc_t)xdr_remote_error, &re);
    assert_int_equal(h.serial, 9);
    assert_int_equal(h.status, REMOTE_ERROR);
    assert_int_equal(re.code, VIR_ERR_INTERNAL_ERROR);
    xdr_free((xdrproc_t)xdr_remote_error, (char *)&re);
    assert_int_equal(rpc_client_deferred_count(c), 0);
    rpc_client_close(c);
}

/* Outside a handler there is no call to defer. */
static void test_defer_outside_call(void **state)
{
    struct fixture *f = *state;
    struct rpc_client *c = rpc_client_new(f->srv, -1, false);
    struct rpc_error err = {0};
    assert_null(rpc_defer(c, &err));
    assert_int_equal(err.code, VIR_ERR_INTERNAL_ERROR);
    rpc_client_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_later_reply_after_other_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_gone_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_gone_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed_by_late_reply_is_freed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generic_error_and_liar, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defer_outside_call, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
