/* The event callback table of a connection: network and storage pool
 * registrations (313/314, 368/369) next to the domain ones (316/317), what
 * each callback receives from rpc_server_emit_event(), and the refusals
 * (event ids past libvirt 9.0's, callback ids of another kind). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/rpc/server.h"

/* The connect-level procedures, which hold the registrations; every test
 * gets a server of its own on this table. */
static struct rpc_table table;

struct fixture {
    struct rpc_server *srv;
    uint32_t serial;
};

static int group_setup(void **state)
{
    struct err e = {0};
    (void)state;
    return rpc_table_add(&table, rpc_connect_procs, rpc_connect_nprocs, &e);
}

static int setup(void **state)
{
    static struct fixture f;
    struct err e = {0};
    f.serial = 0;
    f.srv = rpc_server_new(NULL, &table, NULL, &e);
    *state = &f;
    return f.srv ? 0 : -1;
}

static int teardown(void **state)
{
    rpc_server_free(((struct fixture *)*state)->srv);
    return 0;
}

/* Drops whatever c has been sent so far. */
static void drain(struct rpc_client *c)
{
    struct rpc_buf *out = rpc_client_output(c);
    rpc_buf_consume(out, rpc_buf_pending(out));
}

/* Decodes the message at *off of c's output into obj (xdr_obj) and moves
 * *off past it; returns its header. */
static struct rpc_header take(struct rpc_client *c, size_t *off, xdrproc_t xdr_obj, void *obj)
{
    struct rpc_buf *out = rpc_client_output(c);
    const uint8_t *p = out->data + out->off + *off;
    size_t left = rpc_buf_pending(out) - *off;
    struct rpc_header h;
    struct err e = {0};
    assert_true(left >= RPC_HEADER_SIZE);
    size_t len = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
    assert_true(len >= RPC_HEADER_SIZE && len <= left);
    assert_int_equal(rpc_header_decode(p, len, &h, &e), 0);
    assert_int_equal(rpc_payload_decode(p + RPC_HEADER_SIZE, len - RPC_HEADER_SIZE, xdr_obj,
                                        obj, &e), 0);
    *off += len;
    return h;
}

/* Calls proc with args (encoded by xa) and decodes its reply into ret (by
 * xr) when it succeeded, or into *error when it failed. Returns the
 * reply's status. */
static uint32_t call(struct fixture *f, struct rpc_client *c, int proc, xdrproc_t xa,
                     void *args, xdrproc_t xr, void *ret, remote_error *error)
{
    struct rpc_header h = {
        .prog = REMOTE_PROGRAM, .vers = REMOTE_PROTOCOL_VERSION, .proc = proc,
        .type = REMOTE_CALL, .serial = ++f->serial, .status = REMOTE_OK,
    };
    struct rpc_buf msg = {0};
    struct err e = {0};
    assert_int_equal(rpc_msg_append(&msg, &h, xa, args, &e), 0);
    drain(c);
    assert_int_equal(rpc_client_feed(c, msg.data, msg.len), 0);
    rpc_buf_free(&msg);
    /* The reply alone is in the output: its header says how to decode it. */
    struct rpc_buf *out = rpc_client_output(c);
    struct rpc_header peek;
    assert_int_equal(rpc_header_decode(out->data + out->off, rpc_buf_pending(out), &peek, &e), 0);
    size_t off = 0;
    remote_error scratch = {0};
    struct rpc_header r = peek.status == REMOTE_OK ? take(c, &off, xr, ret)
                             : take(c, &off, (xdrproc_t)xdr_remote_error,
                                    error ? (void *)error : (void *)&scratch);
    if (!error)
        xdr_free((xdrproc_t)xdr_remote_error, (char *)&scratch);
    assert_int_equal(r.type, REMOTE_REPLY);
    assert_int_equal(r.serial, h.serial);
    assert_int_equal(off, rpc_buf_pending(rpc_client_output(c)));
    drain(c);
    return r.status;
}

/* Calls proc, which must fail; returns the error's code and, when want
 * is not NULL, checks that the message holds it. */
static int refused(struct fixture *f, struct rpc_client *c, int proc, xdrproc_t xa, void *args,
                   const char *want)
{
    remote_error err = {0};
    assert_int_equal(call(f, c, proc, xa, args, (xdrproc_t)xdr_remote_void, NULL, &err),
                     REMOTE_ERROR);
    assert_non_null(err.message);
    if (want)
        assert_non_null(strstr(*err.message, want));
    int code = err.code;
    xdr_free((xdrproc_t)xdr_remote_error, (char *)&err);
    return code;
}

static struct rpc_client *open_client(struct fixture *f)
{
    struct rpc_client *c = rpc_client_new(f->srv, -1, false);
    remote_connect_open_args a = {0};
    assert_non_null(c);
    assert_int_equal(call(f, c, 1, (xdrproc_t)xdr_remote_connect_open_args, &a,
                          (xdrproc_t)xdr_remote_void, NULL, NULL), REMOTE_OK);
    return c;
}

static int net_register(struct fixture *f, struct rpc_client *c, int event_id,
                        remote_nonnull_network *net)
{
    remote_connect_network_event_register_any_args a = { .eventID = event_id, .net = net };
    remote_connect_network_event_register_any_ret r = {0};
    assert_int_equal(call(f, c, 313, (xdrproc_t)xdr_remote_connect_network_event_register_any_args,
                          &a, (xdrproc_t)xdr_remote_connect_network_event_register_any_ret, &r,
                          NULL), REMOTE_OK);
    return r.callbackID;
}

static int pool_register(struct fixture *f, struct rpc_client *c, int event_id,
                         remote_nonnull_storage_pool *pool)
{
    remote_connect_storage_pool_event_register_any_args a = { .eventID = event_id,
                                                               .pool = pool };
    remote_connect_storage_pool_event_register_any_ret r = {0};
    assert_int_equal(call(f, c, 368,
                          (xdrproc_t)xdr_remote_connect_storage_pool_event_register_any_args,
                          &a, (xdrproc_t)xdr_remote_connect_storage_pool_event_register_any_ret,
                          &r, NULL), REMOTE_OK);
    return r.callbackID;
}

static void emit_net(struct fixture *f, const char *name, uint8_t fill, int event)
{
    remote_network_event_lifecycle_msg m = { .net.name = (char *)name, .event = event };
    memset(m.net.uuid, fill, 16);
    rpc_server_emit_event(f->srv, RPC_EVENT_NETWORK, RPC_NETWORK_EVENT_ID_LIFECYCLE,
                          (const unsigned char *)m.net.uuid, 315,
                          (xdrproc_t)xdr_remote_network_event_lifecycle_msg, &m, &m.callbackID);
}

/* The callbackIDs of the 315 messages in c's output, in order (at most
 * max), each checked to carry name and event; returns how many. */
static int net_events(struct rpc_client *c, const char *name, int event, int *ids, int max)
{
    size_t off = 0;
    int n = 0;
    while (off < rpc_buf_pending(rpc_client_output(c))) {
        remote_network_event_lifecycle_msg m = {0};
        struct rpc_header h = take(c, &off, (xdrproc_t)xdr_remote_network_event_lifecycle_msg,
                                   &m);
        assert_int_equal(h.proc, 315);
        assert_int_equal(h.type, REMOTE_MESSAGE);
        assert_int_equal(h.serial, 0);
        assert_string_equal(m.net.name, name);
        assert_int_equal(m.event, event);
        assert_int_equal(m.detail, 0);
        assert_true(n < max);
        ids[n++] = m.callbackID;
        xdr_free((xdrproc_t)xdr_remote_network_event_lifecycle_msg, (char *)&m);
    }
    drain(c);
    return n;
}

static void test_network_callbacks(void **state)
{
    struct fixture *f = *state;
    struct rpc_client *c = open_client(f);
    struct rpc_client *other = open_client(f);
    remote_nonnull_network one = { .name = (char *)"one" };
    memset(one.uuid, 0x11, 16);
    int all = net_register(f, c, 0, NULL);
    int only_one = net_register(f, c, 0, &one);
    int other_all = net_register(f, other, 0, NULL);
    assert_int_not_equal(all, only_one);

    int ids[4];
    emit_net(f, "one", 0x11, 2);
    assert_int_equal(net_events(c, "one", 2, ids, 4), 2);
    assert_int_equal(ids[0] == all ? ids[1] : ids[0], only_one);
    assert_true(ids[0] == all || ids[1] == all);
    assert_int_equal(net_events(other, "one", 2, ids, 4), 1);
    assert_int_equal(ids[0], other_all);

    /* Another network: only the callbacks for every network. */
    emit_net(f, "two", 0x22, 3);
    assert_int_equal(net_events(c, "two", 3, ids, 4), 1);
    assert_int_equal(ids[0], all);

    /* A pool event reaches none of the network callbacks. */
    remote_storage_pool_event_lifecycle_msg pm = { .pool.name = (char *)"one" };
    memset(pm.pool.uuid, 0x11, 16);
    rpc_server_emit_event(f->srv, RPC_EVENT_STORAGE_POOL, RPC_POOL_EVENT_ID_LIFECYCLE,
                          (const unsigned char *)pm.pool.uuid, 370,
                          (xdrproc_t)xdr_remote_storage_pool_event_lifecycle_msg, &pm,
                          &pm.callbackID);
    assert_int_equal(rpc_buf_pending(rpc_client_output(c)), 0);

    /* Deregistered, the callback for every network is silent. */
    remote_connect_network_event_deregister_any_args d = { .callbackID = all };
    assert_int_equal(call(f, c, 314,
                          (xdrproc_t)xdr_remote_connect_network_event_deregister_any_args, &d,
                          (xdrproc_t)xdr_remote_void, NULL, NULL), REMOTE_OK);
    emit_net(f, "one", 0x11, 0);
    assert_int_equal(net_events(c, "one", 0, ids, 4), 1);
    assert_int_equal(ids[0], only_one);
    /* ... and cannot be deregistered twice. */
    assert_int_equal(refused(f, c, 314,
                             (xdrproc_t)xdr_remote_connect_network_event_deregister_any_args,
                             &d, "not registered"), VIR_ERR_INVALID_ARG);

    /* Closing the connection drops its callbacks. */
    assert_int_equal(call(f, other, 2, (xdrproc_t)xdr_remote_void, NULL,
                          (xdrproc_t)xdr_remote_void, NULL, NULL), REMOTE_OK);
    emit_net(f, "one", 0x11, 1);
    assert_int_equal(rpc_buf_pending(rpc_client_output(other)), 0);
    drain(c);
    rpc_client_close(c);
    rpc_client_close(other);
}

static void test_pool_callbacks(void **state)
{
    struct fixture *f = *state;
    struct rpc_client *c = open_client(f);
    remote_nonnull_storage_pool pool = { .name = (char *)"p" };
    memset(pool.uuid, 0x33, 16);
    int life = pool_register(f, c, RPC_POOL_EVENT_ID_LIFECYCLE, &pool);
    int refresh = pool_register(f, c, RPC_POOL_EVENT_ID_REFRESH, NULL);

    remote_storage_pool_event_refresh_msg rm = { .pool = pool };
    rpc_server_emit_event(f->srv, RPC_EVENT_STORAGE_POOL, RPC_POOL_EVENT_ID_REFRESH,
                          (const unsigned char *)pool.uuid, 373,
                          (xdrproc_t)xdr_remote_storage_pool_event_refresh_msg, &rm,
                          &rm.callbackID);
    remote_storage_pool_event_lifecycle_msg lm = { .pool = pool, .event = 4 };
    rpc_server_emit_event(f->srv, RPC_EVENT_STORAGE_POOL, RPC_POOL_EVENT_ID_LIFECYCLE,
                          (const unsigned char *)pool.uuid, 370,
                          (xdrproc_t)xdr_remote_storage_pool_event_lifecycle_msg, &lm,
                          &lm.callbackID);

    size_t off = 0;
    remote_storage_pool_event_refresh_msg r = {0};
    struct rpc_header h = take(c, &off, (xdrproc_t)xdr_remote_storage_pool_event_refresh_msg, &r);
    assert_int_equal(h.proc, 373);
    assert_int_equal(r.callbackID, refresh);
    assert_string_equal(r.pool.name, "p");
    assert_memory_equal(r.pool.uuid, pool.uuid, 16);
    xdr_free((xdrproc_t)xdr_remote_storage_pool_event_refresh_msg, (char *)&r);
    remote_storage_pool_event_lifecycle_msg l = {0};
    h = take(c, &off, (xdrproc_t)xdr_remote_storage_pool_event_lifecycle_msg, &l);
    assert_int_equal(h.proc, 370);
    assert_int_equal(l.callbackID, life);
    assert_int_equal(l.event, 4);
    xdr_free((xdrproc_t)xdr_remote_storage_pool_event_lifecycle_msg, (char *)&l);
    assert_int_equal(off, rpc_buf_pending(rpc_client_output(c)));
    drain(c);

    /* A pool callback id does not deregister through the network call. */
    remote_connect_network_event_deregister_any_args nd = { .callbackID = life };
    refused(f, c, 314, (xdrproc_t)xdr_remote_connect_network_event_deregister_any_args, &nd,
            "not registered");
    remote_connect_storage_pool_event_deregister_any_args pd = { .callbackID = life };
    assert_int_equal(call(f, c, 369,
                          (xdrproc_t)xdr_remote_connect_storage_pool_event_deregister_any_args,
                          &pd, (xdrproc_t)xdr_remote_void, NULL, NULL), REMOTE_OK);
    rpc_server_emit_event(f->srv, RPC_EVENT_STORAGE_POOL, RPC_POOL_EVENT_ID_LIFECYCLE,
                          (const unsigned char *)pool.uuid, 370,
                          (xdrproc_t)xdr_remote_storage_pool_event_lifecycle_msg, &lm,
                          &lm.callbackID);
    assert_int_equal(rpc_buf_pending(rpc_client_output(c)), 0);
    rpc_client_close(c);
}

/* libvirt 9.0 knows one network event id and two pool event ids. */
static void test_event_ids_checked(void **state)
{
    struct fixture *f = *state;
    struct rpc_client *c = open_client(f);
    const xdrproc_t net = (xdrproc_t)xdr_remote_connect_network_event_register_any_args;
    const xdrproc_t pool = (xdrproc_t)xdr_remote_connect_storage_pool_event_register_any_args;
    remote_connect_network_event_register_any_args na = { .eventID = 1 };
    assert_int_equal(refused(f, c, 313, net, &na, "unsupported event ID 1"),
                     VIR_ERR_INVALID_ARG);
    remote_connect_storage_pool_event_register_any_args pa = { .eventID = 2 };
    assert_int_equal(refused(f, c, 368, pool, &pa, "unsupported event ID 2"),
                     VIR_ERR_INVALID_ARG);
    pa.eventID = -1;
    assert_int_equal(refused(f, c, 368, pool, &pa, "unsupported event ID -1"),
                     VIR_ERR_INVALID_ARG);
    rpc_client_close(c);
}

/* Callbacks of every kind share one table of RPC_CLIENT_CALLBACKS_MAX
 * slots per connection, and ids stay unique across kinds. */
static void test_table_full(void **state)
{
    struct fixture *f = *state;
    struct rpc_client *c = open_client(f);
    int last = 0;
    for (int i = 0; i < 64; i++) {     /* RPC_CLIENT_CALLBACKS_MAX */
        int id = i % 2 ? net_register(f, c, 0, NULL) : pool_register(f, c, i % 4 ? 1 : 0, NULL);
        assert_true(id > last);
        last = id;
    }
    remote_connect_network_event_register_any_args na = { .eventID = 0 };
    assert_int_equal(refused(f, c, 313,
                             (xdrproc_t)xdr_remote_connect_network_event_register_any_args, &na,
                             "too many event callbacks"), VIR_ERR_OPERATION_FAILED);
    rpc_client_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_network_callbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_callbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_ids_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_table_full, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
