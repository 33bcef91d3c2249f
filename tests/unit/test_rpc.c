/* The libvirt wire layer: framing, size limits, error replies byte for byte
 * against what libvirtd 9.0 sends, dispatch and its refusals, keepalive. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/daemon.h"
#include "daemon/rpc/server.h"

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A bare CALL frame (28 bytes) plus optional payload words. */
static size_t make_call(uint8_t *buf, uint32_t prog, uint32_t vers, int proc, uint32_t serial,
                        const uint32_t *words, size_t nwords)
{
    size_t len = 28 + 4 * nwords;
    put32(buf, (uint32_t)len);
    put32(buf + 4, prog);
    put32(buf + 8, vers);
    put32(buf + 12, (uint32_t)proc);
    put32(buf + 16, 0);
    put32(buf + 20, serial);
    put32(buf + 24, 0);
    for (size_t i = 0; i < nwords; i++)
        put32(buf + 28 + 4 * i, words[i]);
    return len;
}

static void test_header_roundtrip(void **state)
{
    (void)state;
    struct rpc_header h = { REMOTE_PROGRAM, 1, 273, REMOTE_REPLY, 6, REMOTE_OK }, d;
    uint8_t buf[RPC_HEADER_SIZE];
    rpc_header_encode(buf, &h, RPC_HEADER_SIZE);
    /* The first message virsh sends, from the capture. */
    static const uint8_t auth_list[] = {
        0x00, 0x00, 0x00, 0x1c, 0x20, 0x00, 0x80, 0x86, 0x00, 0x00, 0x00, 0x01,
        0x00, 0x00, 0x00, 0x42, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00 };
    struct err e = {0};
    assert_int_equal(rpc_header_decode(auth_list, sizeof(auth_list), &d, &e), 0);
    assert_int_equal(d.prog, REMOTE_PROGRAM);
    assert_int_equal(d.proc, 66);
    assert_int_equal(d.type, REMOTE_CALL);
    assert_int_equal(rpc_header_decode(buf, sizeof(buf), &d, &e), 0);
    assert_memory_equal(&h, &d, sizeof(h));
}

static void test_header_bad_lengths(void **state)
{
    (void)state;
    uint8_t buf[40] = {0};
    struct rpc_header h;
    struct err e = {0};
    assert_int_equal(rpc_header_decode(buf, 20, &h, &e), -EBADMSG);
    put32(buf, 40);
    err_clear(&e);
    assert_int_equal(rpc_header_decode(buf, 36, &h, &e), -EBADMSG);
    assert_non_null(strstr(e.msg, "does not match"));
}

/* Feeds a reader one byte at a time, as a slow socket would. */
static int feed_bytes(struct rpc_reader *r, const uint8_t *p, size_t n, struct err *e)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t *dst;
        size_t room;
        assert_int_equal(rpc_reader_space(r, &dst, &room, e), 0);
        assert_true(room >= 1);
        *dst = p[i];
        rc = rpc_reader_commit(r, 1, e);
        if (rc != 0)
            return rc == 1 && i + 1 == n ? 1 : (rc < 0 ? rc : -1000);
    }
    return rc;
}

static void test_reader_limits(void **state)
{
    (void)state;
    struct rpc_reader r;
    struct err e = {0};
    uint8_t msg[36];
    uint32_t w[2] = { 7, 9 };
    make_call(msg, REMOTE_PROGRAM, 1, 3, 0, w, 2);
    rpc_reader_init(&r);
    assert_int_equal(feed_bytes(&r, msg, sizeof(msg), &e), 1);
    assert_int_equal(r.want, 36);
    assert_memory_equal(r.buf, msg, 36);
    rpc_reader_next(&r);

    /* Shorter than a header: refused on the length word alone. */
    uint8_t small[4] = { 0, 0, 0, 27 };
    assert_int_equal(feed_bytes(&r, small, 4, &e), -EPROTO);
    rpc_reader_free(&r);

    /* Larger than libvirt's maximum: refused before anything is buffered. */
    rpc_reader_init(&r);
    err_clear(&e);
    uint8_t big[4];
    put32(big, RPC_MESSAGE_MAX + 1);
    assert_int_equal(feed_bytes(&r, big, 4, &e), -EPROTO);
    assert_true(r.cap < 65536);
    rpc_reader_free(&r);

    /* Exactly the maximum is a valid length. */
    rpc_reader_init(&r);
    put32(big, RPC_MESSAGE_MAX);
    assert_int_equal(feed_bytes(&r, big, 4, &e), 0);
    assert_int_equal(r.want, RPC_MESSAGE_MAX);
    rpc_reader_free(&r);
}

static void test_payload_roundtrip_and_limits(void **state)
{
    (void)state;
    struct rpc_buf b = {0};
    struct err e = {0};
    struct rpc_header h = { REMOTE_PROGRAM, 1, 23, REMOTE_CALL, 5, REMOTE_OK };
    remote_domain_lookup_by_name_args a = { .name = (char *)"vm1" };
    assert_int_equal(rpc_msg_append(&b, &h, (xdrproc_t)xdr_remote_domain_lookup_by_name_args,
                                    &a, &e), 0);
    assert_int_equal(b.len, 28 + 4 + 4);
    assert_int_equal(get32(b.data), 36);
    assert_int_equal(get32(b.data + 28), 3);
    assert_memory_equal(b.data + 32, "vm1\0", 4);

    remote_domain_lookup_by_name_args d = {0};
    assert_int_equal(rpc_payload_decode(b.data + 28, 8,
                     (xdrproc_t)xdr_remote_domain_lookup_by_name_args, &d, &e), 0);
    assert_string_equal(d.name, "vm1");
    rpc_payload_free((xdrproc_t)xdr_remote_domain_lookup_by_name_args, &d);

    /* Trailing bytes and a string length past the payload are refused. */
    uint8_t bad[12];
    memcpy(bad, b.data + 28, 8);
    memset(bad + 8, 0, 4);
    memset(&d, 0, sizeof(d));
    assert_int_equal(rpc_payload_decode(bad, 12,
                     (xdrproc_t)xdr_remote_domain_lookup_by_name_args, &d, &e), -EBADMSG);
    put32(bad, 1000);
    memset(&d, 0, sizeof(d));
    assert_int_equal(rpc_payload_decode(bad, 8,
                     (xdrproc_t)xdr_remote_domain_lookup_by_name_args, &d, &e), -EBADMSG);
    /* A string over the .x limit (REMOTE_STRING_MAX) is refused on decode
     * even when the bytes claim to be there. */
    put32(bad, REMOTE_STRING_MAX + 1);
    memset(&d, 0, sizeof(d));
    assert_int_equal(rpc_payload_decode(bad, 8,
                     (xdrproc_t)xdr_remote_domain_lookup_by_name_args, &d, &e), -EBADMSG);

    /* ... and on encode the message is not appended. */
    size_t before = b.len;
    char *huge = malloc(REMOTE_STRING_MAX + 2);
    assert_non_null(huge);
    memset(huge, 'x', REMOTE_STRING_MAX + 1);
    huge[REMOTE_STRING_MAX + 1] = '\0';
    a.name = huge;
    err_clear(&e);
    assert_true(rpc_msg_append(&b, &h, (xdrproc_t)xdr_remote_domain_lookup_by_name_args,
                               &a, &e) < 0);
    assert_int_equal(b.len, before);
    free(huge);
    rpc_buf_free(&b);
}

/* libvirtd's reply to proc 9999 on serial 4, from the capture. */
static const uint8_t unknown_proc_reply[] = {
    0x00, 0x00, 0x00, 0x88, 0x20, 0x00, 0x80, 0x86, 0x00, 0x00, 0x00, 0x01,
    0x00, 0x00, 0x27, 0x0f, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x04,
    0x00, 0x00, 0x00, 0x01,
    0x00, 0x00, 0x00, 0x27, 0x00, 0x00, 0x00, 0x07,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x17,
    'u', 'n', 'k', 'n', 'o', 'w', 'n', ' ', 'p', 'r', 'o', 'c', 'e', 'd', 'u', 'r',
    'e', ':', ' ', '9', '9', '9', '9', 0x00,
    0x00, 0x00, 0x00, 0x02,
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, '%', 's', 0x00, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x17,
    'u', 'n', 'k', 'n', 'o', 'w', 'n', ' ', 'p', 'r', 'o', 'c', 'e', 'd', 'u', 'r',
    'e', ':', ' ', '9', '9', '9', '9', 0x00,
    0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x00, 0x00, 0x00, 0x00,
};

/* ---- dispatch with a fake table ---- */

static int calls;

static int h_echo(struct rpc_client *c, const void *args, void *ret, struct rpc_error *err)
{
    const remote_connect_supports_feature_args *a = args;
    remote_connect_supports_feature_ret *r = ret;
    (void)c;
    calls++;
    if (a->feature < 0)
        return rpc_err_set(err, VIR_ERR_INVALID_ARG, VIR_FROM_QEMU, "negative %d", a->feature);
    r->supported = a->feature * 2;
    return 0;
}

static int h_open(struct rpc_client *c, const void *args, void *ret, struct rpc_error *err)
{
    (void)c; (void)args; (void)ret; (void)err;
    return 0;
}

/* Returns a list over its .x limit (REMOTE_AUTH_TYPE_LIST_MAX). */
static int h_overfull(struct rpc_client *c, const void *args, void *ret, struct rpc_error *err)
{
    remote_auth_list_ret *r = ret;
    (void)c; (void)args; (void)err;
    r->types.types_len = REMOTE_AUTH_TYPE_LIST_MAX + 1;
    r->types.types_val = calloc(r->types.types_len, sizeof(remote_auth_type));
    return 0;
}

/* A duplex stream like the console's. */
static struct rpc_stream *stream;
static char stream_in[64];
static size_t stream_in_len;
static int stream_closed;   /* 1 finished, 2 aborted */

static int st_data(struct rpc_stream *st, const uint8_t *data, size_t len, void *opaque)
{
    (void)st; (void)opaque;
    if (stream_in_len + len > sizeof(stream_in))
        return -1;
    memcpy(stream_in + stream_in_len, data, len);
    stream_in_len += len;
    return 0;
}

static void st_close(struct rpc_stream *st, bool aborted, void *opaque)
{
    (void)st; (void)opaque;
    stream_closed = aborted ? 2 : 1;
    stream = NULL;
}

static const struct rpc_stream_ops st_ops = { st_data, st_close };

static int h_stream(struct rpc_client *c, const void *args, void *ret, struct rpc_error *err)
{
    (void)args; (void)ret;
    stream = rpc_stream_open(c, &st_ops, NULL, err);
    return stream ? 0 : -1;
}

/* Sends data before returning, or fails after opening. */
static int h_stream_eager(struct rpc_client *c, const void *args, void *ret,
                          struct rpc_error *err)
{
    (void)args; (void)ret;
    stream = rpc_stream_open(c, &st_ops, NULL, err);
    if (!stream)
        return -1;
    return rpc_stream_send(stream, "early", 5);
}

static int h_stream_fails(struct rpc_client *c, const void *args, void *ret,
                          struct rpc_error *err)
{
    (void)args; (void)ret;
    struct rpc_stream *st = rpc_stream_open(c, &st_ops, NULL, err);
    assert_non_null(st);
    rpc_stream_send(st, "lost", 4);
    return rpc_err_set(err, VIR_ERR_OPERATION_FAILED, VIR_FROM_QEMU, "no console");
}

static const struct rpc_proc fake_procs[] = {
    RPC_PROC(1, "virConnectOpen", connect_open_args, void, h_open,
             RPC_PROC_NO_CONN | RPC_PROC_READONLY),
    RPC_PROC(100, "virDomainEcho", connect_supports_feature_args,
             connect_supports_feature_ret, h_echo, 0),
    RPC_PROC(101, "virConnectEchoRO", connect_supports_feature_args,
             connect_supports_feature_ret, h_echo, RPC_PROC_READONLY),
    RPC_PROC(201, "virDomainOpenConsole", domain_open_console_args, void, h_stream,
             RPC_PROC_NO_CONN),
    RPC_PROC(66, "virConnectAuthList", void, auth_list_ret, h_overfull, RPC_PROC_NO_CONN),
    RPC_PROC(209, "virStorageVolDownload", domain_open_console_args, void, h_stream_eager,
             RPC_PROC_NO_CONN),
    RPC_PROC(208, "virStorageVolUpload", domain_open_console_args, void, h_stream_fails,
             RPC_PROC_NO_CONN),
};

struct fixture {
    struct rpc_table table;
    struct rpc_server *srv;
    struct daemon d;
};

static int setup_fake(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct err e = {0};
    assert_int_equal(rpc_table_add(&f->table, fake_procs, 7, &e), 0);
    f->srv = rpc_server_new(NULL, &f->table, &f->d, &e);
    assert_non_null(f->srv);
    *state = f;
    return 0;
}

static int setup_real(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct err e = {0};
    f->d.privileged = true;
    f->d.uri_default = "qemu:///system";
    assert_int_equal(rpc_table_add(&f->table, rpc_connect_procs, rpc_connect_nprocs, &e), 0);
    f->srv = rpc_server_new(NULL, &f->table, &f->d, &e);
    assert_non_null(f->srv);
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

/* The single message in c's output: checks its framing and returns its
 * header; the payload starts at out->data + 28. */
static struct rpc_header one_reply(struct rpc_client *c, size_t *plen)
{
    struct rpc_buf *out = rpc_client_output(c);
    struct rpc_header h;
    struct err e = {0};
    assert_true(out->len >= RPC_HEADER_SIZE);
    assert_int_equal(rpc_header_decode(out->data, out->len, &h, &e), 0);
    *plen = out->len - RPC_HEADER_SIZE;
    return h;
}

static void reset_output(struct rpc_client *c)
{
    struct rpc_buf *out = rpc_client_output(c);
    out->len = out->off = 0;
}

/* Decodes an error reply and checks code, domain and message. */
static void expect_error(struct rpc_client *c, int proc, uint32_t serial, int code, int domain,
                         const char *message)
{
    size_t plen;
    struct rpc_header h = one_reply(c, &plen);
    assert_int_equal(h.type, REMOTE_REPLY);
    assert_int_equal(h.status, REMOTE_ERROR);
    assert_int_equal(h.proc, proc);
    assert_int_equal(h.serial, serial);
    remote_error re = {0};
    struct err e = {0};
    assert_int_equal(rpc_payload_decode(rpc_client_output(c)->data + 28, plen,
                                        (xdrproc_t)xdr_remote_error, &re, &e), 0);
    assert_int_equal(re.code, code);
    assert_int_equal(re.domain, domain);
    assert_int_equal(re.level, 2);
    assert_non_null(re.message);
    assert_string_equal(*re.message, message);
    rpc_payload_free((xdrproc_t)xdr_remote_error, &re);
    reset_output(c);
}

static void test_unknown_procedure_bytes(void **state)
{
    struct fixture *f = *state;
    struct rpc_client *c = rpc_client_new(f->srv, -1, false);
    uint8_t msg[28];
    make_call(msg, REMOTE_PROGRAM, 1, 9999, 4, NULL, 0);
    assert_int_equal(rpc_client_feed(c, msg, 28), 0);
    struct rpc_buf *out = rpc_client_output(c);
    assert_int_equal(out->len, sizeof(unknown_proc_reply));
    assert_memory_equal(out->data, unknown_proc_reply, sizeof(unknown_proc_reply));
    rpc_client_close(c);
}

static void test_unknown_program(void **state)
{
    struct fixture *f = *state;
    struct rpc_client *c = rpc_client_new(f->srv, -1, false);
    uint8_t msg[28];
    make_call(msg, 0x12345678, 1, 1, 0, NULL, 0);
    assert_int_equal(rpc_client_feed(c, msg, 28), 0);
    size_t plen;
    struct rpc_header h = one_reply(c, &plen);
    assert_int_equal(h.prog, 0x12345678);   /* echoed, as libvirtd does */
    expect_error(c, 1, 0, VIR_ERR_RPC, VIR_FROM_RPC, "Cannot find program 305419896 version 1");
    make_call(msg, REMOTE_PROGRAM, 2, 1, 1, NULL, 0);
    assert_int_equal(rpc_client_feed(c, msg, 28), 0);
    expect_error(c, 1, 1, VIR_ERR_RPC, VIR_FROM_RPC,
                 "Cannot find program 536903814 version 2");
    rpc_client_close(c);
}

static void test_dispatch_open_and_readonly(void **state)
{
    struct fixture *f = *state;
    struct rpc_client *c = rpc_client_new(f->srv, -1, true);
    uint8_t msg[64];
    uint32_t w[2] = { 21, 0 };

    /* Before CONNECT_OPEN. */
    size_t n = make_call(msg, REMOTE_PROGRAM, 1, 101, 0, w, 1);
    assert_int_equal(rpc_client_feed(c, msg, n), 0);
    expect_error(c, 101, 0, VIR_ERR_INTERNAL_ERROR, VIR_FROM_RPC,
                 "internal error: hypervisor connection not open");
    assert_int_equal(calls, 0);

    uint32_t open_args[2] = { 0, 0 };   /* name NULL, flags 0 */
    n = make_call(msg, REMOTE_PROGRAM, 1, 1, 1, open_args, 2);
    assert_int_equal(rpc_client_feed(c, msg, n), 0);
    size_t plen;
    struct rpc_header h = one_reply(c, &plen);
    assert_int_equal(h.status, REMOTE_OK);
    assert_int_equal(plen, 0);
    reset_output(c);

    /* A read-write procedure on the read-only socket: refused... */
    n = make_call(msg, REMOTE_PROGRAM, 1, 100, 2, w, 1);
    assert_int_equal(rpc_client_feed(c, msg, n), 0);
    expect_error(c, 100, 2, VIR_ERR_OPERATION_DENIED, VIR_FROM_DOMAIN,
                 "operation forbidden: read only access prevents virDomainEcho");
    assert_int_equal(calls, 0);
    assert_false(rpc_client_closed(c));

    /* ... and the connection still serves read-only ones. */
    n = make_call(msg, REMOTE_PROGRAM, 1, 101, 3, w, 1);
    assert_int_equal(rpc_client_feed(c, msg, n), 0);
    h = one_reply(c, &plen);
    assert_int_equal(h.status, REMOTE_OK);
    assert_int_equal(h.serial, 3);
    assert_int_equal(plen, 4);
    assert_int_equal(get32(rpc_client_output(c)->data + 28), 42);
    assert_int_equal(calls, 1);
    reset_output(c);

    /* A handler's own error reaches the client as it set it. */
    w[0] = (uint32_t)-5;
    n = make_call(msg, REMOTE_PROGRAM, 1, 101, 4, w, 1);
    assert_int_equal(rpc_client_feed(c, msg, n), 0);
    expect_error(c, 101, 4, VIR_ERR_INVALID_ARG, VIR_FROM_QEMU, "invalid argument: negative -5");

    /* Arguments that do not decode (missing word, extra word). */
    n = make_call(msg, REMOTE_PROGRAM, 1, 101, 5, w, 0);
    assert_int_equal(rpc_client_feed(c, msg, n), 0);
    expect_error(c, 101, 5, VIR_ERR_RPC, VIR_FROM_RPC, "Unable to decode message payload");
    n = make_call(msg, REMOTE_PROGRAM, 1, 101, 6, w, 2);
    assert_int_equal(rpc_client_feed(c, msg, n), 0);
    expect_error(c, 101, 6, VIR_ERR_RPC, VIR_FROM_RPC, "Unable to decode message payload");
    assert_int_equal(calls, 2);
    rpc_client_close(c);
}

static void test_unencodable_result(void **state)
{
    struct fixture *f = *state;
    struct rpc_client *c = rpc_client_new(f->srv, -1, false);
    uint8_t msg[28];
    make_call(msg, REMOTE_PROGRAM, 1, 66, 9, NULL, 0);
    assert_int_equal(rpc_client_feed(c, msg, 28), 0);
    /* A reply that cannot be built still gets an answer, not a crash. */
    expect_error(c, 66, 9, VIR_ERR_RPC, VIR_FROM_RPC, "Unable to encode message payload");
    assert_false(rpc_client_closed(c));
    rpc_client_close(c);
}

static void test_table_rejects_duplicates(void **state)
{
    (void)state;
    struct rpc_table t = {0};
    struct err e = {0};
    assert_int_equal(rpc_table_add(&t, fake_procs, 7, &e), 0);
    assert_int_equal(rpc_table_add(&t, fake_procs + 1, 1, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "twice"));
}

static void test_bad_frames_drop_client(void **state)
{
    struct fixture *f = *state;
    struct rpc_client *c = rpc_client_new(f->srv, -1, false);
    uint8_t len[4];
    put32(len, 12);
    assert_true(rpc_client_feed(c, len, 4) < 0);
    assert_true(rpc_client_closed(c));
    assert_int_equal(rpc_client_output(c)->len, 0);
    rpc_client_close(c);

    c = rpc_client_new(f->srv, -1, false);
    put32(len, 0x7fffffff);
    assert_true(rpc_client_feed(c, len, 4) < 0);
    assert_true(rpc_client_closed(c));
    rpc_client_close(c);
}

static size_t make_stream(uint8_t *buf, int proc, uint32_t serial, uint32_t status,
                          const char *data, size_t len)
{
    put32(buf, (uint32_t)(28 + len));
    put32(buf + 4, REMOTE_PROGRAM);
    put32(buf + 8, 1);
    put32(buf + 12, (uint32_t)proc);
    put32(buf + 16, REMOTE_STREAM);
    put32(buf + 20, serial);
    put32(buf + 24, status);
    memcpy(buf + 28, data, len);
    return 28 + len;
}

static void test_stream_duplex(void **state)
{
    struct fixture *f = *state;
    struct rpc_client *c = rpc_client_new(f->srv, -1, false);
    uint8_t msg[128];
    /* dom ("vm", 16-byte uuid, id 1), dev_name NULL, flags 0 */
    uint32_t w[] = { 2, 0x766d0000, 0, 0, 0, 0, 1, 0, 0 };
    size_t n = make_call(msg, REMOTE_PROGRAM, 1, 201, 7, w, 9);
    assert_int_equal(rpc_client_feed(c, msg, n), 0);
    size_t plen;
    struct rpc_header h = one_reply(c, &plen);
    assert_int_equal(h.status, REMOTE_OK);
    assert_int_equal(plen, 0);
    reset_output(c);
    assert_non_null(stream);

    /* Server to client: raw bytes, no XDR length, on the call's serial. */
    assert_int_equal(rpc_stream_send(stream, "login: ", 7), 0);
    h = one_reply(c, &plen);
    assert_int_equal(h.type, REMOTE_STREAM);
    assert_int_equal(h.status, REMOTE_CONTINUE);
    assert_int_equal(h.serial, 7);
    assert_int_equal(h.proc, 201);
    assert_int_equal(plen, 7);
    assert_memory_equal(rpc_client_output(c)->data + 28, "login: ", 7);
    reset_output(c);

    /* Client to server, then the client finishes; the server confirms. */
    n = make_stream(msg, 201, 7, REMOTE_CONTINUE, "root\n", 5);
    assert_int_equal(rpc_client_feed(c, msg, n), 0);
    n = make_stream(msg, 201, 99, REMOTE_CONTINUE, "lost", 4);   /* no such stream */
    assert_int_equal(rpc_client_feed(c, msg, n), 0);
    assert_int_equal(stream_in_len, 5);
    assert_memory_equal(stream_in, "root\n", 5);
    assert_int_equal(rpc_client_output(c)->len, 0);
    n = make_stream(msg, 201, 7, REMOTE_OK, "", 0);
    assert_int_equal(rpc_client_feed(c, msg, n), 0);
    assert_int_equal(stream_closed, 1);
    h = one_reply(c, &plen);
    assert_int_equal(h.type, REMOTE_STREAM);
    assert_int_equal(h.status, REMOTE_OK);
    assert_int_equal(h.serial, 7);
    assert_int_equal(plen, 0);
    rpc_client_close(c);
}

static void test_stream_abort_on_close(void **state)
{
    struct fixture *f = *state;
    struct rpc_client *c = rpc_client_new(f->srv, -1, false);
    uint8_t msg[128];
    uint32_t w[] = { 2, 0x766d0000, 0, 0, 0, 0, 1, 0, 0 };
    size_t n = make_call(msg, REMOTE_PROGRAM, 1, 201, 3, w, 9);
    stream_closed = 0;
    assert_int_equal(rpc_client_feed(c, msg, n), 0);
    assert_non_null(stream);
    /* A client that goes away aborts its streams. */
    rpc_client_close(c);
    assert_int_equal(stream_closed, 2);
}

static void test_stream_early_data_follows_reply(void **state)
{
    struct fixture *f = *state;
    struct rpc_client *c = rpc_client_new(f->srv, -1, false);
    uint8_t msg[128];
    uint32_t w[] = { 2, 0x766d0000, 0, 0, 0, 0, 1, 0, 0 };
    size_t n = make_call(msg, REMOTE_PROGRAM, 1, 209, 11, w, 9);
    assert_int_equal(rpc_client_feed(c, msg, n), 0);
    struct rpc_buf *out = rpc_client_output(c);
    /* REPLY (28 bytes) first, then the data sent inside the handler. */
    assert_int_equal(out->len, 28 + 28 + 5);
    assert_int_equal(get32(out->data + 16), REMOTE_REPLY);
    assert_int_equal(get32(out->data + 28 + 16), REMOTE_STREAM);
    assert_int_equal(get32(out->data + 28 + 20), 11);
    assert_memory_equal(out->data + 56, "early", 5);
    reset_output(c);

    /* A handler that fails after opening: only its error goes out. */
    stream_closed = 0;
    n = make_call(msg, REMOTE_PROGRAM, 1, 208, 12, w, 9);
    assert_int_equal(rpc_client_feed(c, msg, n), 0);
    expect_error(c, 208, 12, VIR_ERR_OPERATION_FAILED, VIR_FROM_QEMU,
                 "operation failed: no console");
    assert_int_equal(stream_closed, 0);
    rpc_client_close(c);
}

/* ---- the real connect-level procedures ---- */

static void test_keepalive_ping_pong(void **state)
{
    struct fixture *f = *state;
    struct rpc_client *c = rpc_client_new(f->srv, -1, false);
    static const uint8_t ping[] = {
        0x00, 0x00, 0x00, 0x1c, 0x6b, 0x65, 0x65, 0x70, 0x00, 0x00, 0x00, 0x01,
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00 };
    uint8_t pong[sizeof(ping)];
    memcpy(pong, ping, sizeof(ping));
    pong[15] = 2;
    assert_int_equal(rpc_client_feed(c, ping, sizeof(ping)), 0);
    struct rpc_buf *out = rpc_client_output(c);
    assert_int_equal(out->len, sizeof(pong));
    assert_memory_equal(out->data, pong, sizeof(pong));
    reset_output(c);
    /* A PONG gets no answer. */
    assert_int_equal(rpc_client_feed(c, pong, sizeof(pong)), 0);
    assert_int_equal(out->len, 0);
    rpc_client_close(c);
}

static uint32_t call_int(struct rpc_client *c, int proc, uint32_t serial, const uint32_t *w,
                         size_t nw)
{
    uint8_t msg[64];
    size_t n = make_call(msg, REMOTE_PROGRAM, 1, proc, serial, w, nw);
    assert_int_equal(rpc_client_feed(c, msg, n), 0);
    size_t plen;
    struct rpc_header h = one_reply(c, &plen);
    assert_int_equal(h.status, REMOTE_OK);
    assert_int_equal(h.serial, serial);
    uint32_t v = plen >= 4 ? get32(rpc_client_output(c)->data + 28) : 0;
    reset_output(c);
    return v;
}

static void test_handshake(void **state)
{
    struct fixture *f = *state;
    struct rpc_client *c = rpc_client_new(f->srv, -1, false);
    /* AUTH_LIST: one type, NONE. */
    uint8_t msg[64];
    size_t n = make_call(msg, REMOTE_PROGRAM, 1, 66, 0, NULL, 0);
    assert_int_equal(rpc_client_feed(c, msg, n), 0);
    struct rpc_buf *out = rpc_client_output(c);
    assert_int_equal(out->len, 36);
    assert_int_equal(get32(out->data + 28), 1);
    assert_int_equal(get32(out->data + 32), 0);
    reset_output(c);

    uint32_t feat = 10;
    assert_int_equal(call_int(c, 60, 1, &feat, 1), 1);
    feat = 9999;
    assert_int_equal(call_int(c, 60, 2, &feat, 1), 0);

    /* A URI that is not ours. */
    /* make_call writes words; the string bytes go in by hand. */
    n = make_call(msg, REMOTE_PROGRAM, 1, 1, 3, NULL, 0);
    uint8_t *p = msg + 28;
    put32(p, 1); put32(p + 4, 7); memcpy(p + 8, "xen:///\0", 8); put32(p + 16, 0);
    put32(msg, 28 + 20);
    assert_int_equal(rpc_client_feed(c, msg, 48), 0);
    expect_error(c, 1, 3, VIR_ERR_NO_CONNECT, VIR_FROM_NONE,
                 "no connection driver available for xen:///");

    /* qemu:///system opens; GET_URI gives it back. */
    put32(p, 1); put32(p + 4, 14); memcpy(p + 8, "qemu:///system\0\0", 16); put32(p + 24, 0);
    put32(msg, 28 + 28);
    put32(msg + 20, 4);
    assert_int_equal(rpc_client_feed(c, msg, 56), 0);
    size_t plen;
    assert_int_equal(one_reply(c, &plen).status, REMOTE_OK);
    reset_output(c);
    assert_int_equal(call_int(c, 360, 5, NULL, 0), 0);
    n = make_call(msg, REMOTE_PROGRAM, 1, 110, 6, NULL, 0);
    assert_int_equal(rpc_client_feed(c, msg, n), 0);
    assert_int_equal(get32(out->data + 28), 14);
    assert_memory_equal(out->data + 32, "qemu:///system", 14);
    reset_output(c);
    rpc_client_close(c);
}

static void open_conn(struct rpc_client *c, uint32_t serial)
{
    uint32_t open_args[2] = { 0, 0 };
    assert_int_equal(call_int(c, 1, serial, open_args, 2), 0);
}

/* The next message in c's output, decoded with xdr_msg into obj. */
static struct rpc_header next_message(struct rpc_client *c, size_t *off, xdrproc_t xdr_msg,
                                      void *obj)
{
    struct rpc_buf *out = rpc_client_output(c);
    struct rpc_header h;
    struct err e = {0};
    assert_true(out->len - *off >= 28);
    uint32_t n = get32(out->data + *off);
    assert_true(n <= out->len - *off);
    assert_int_equal(rpc_header_decode(out->data + *off, n, &h, &e), 0);
    assert_int_equal(rpc_payload_decode(out->data + *off + 28, n - 28, xdr_msg, obj, &e), 0);
    *off += n;
    return h;
}

static void test_lifecycle_events(void **state)
{
    struct fixture *f = *state;
    struct rpc_client *c = rpc_client_new(f->srv, -1, false);
    struct rpc_client *quiet = rpc_client_new(f->srv, -1, false);
    open_conn(c, 0);
    open_conn(quiet, 0);
    /* 316 for every domain, 316 for one other domain, 167 (legacy). */
    uint32_t any[2] = { 0, 0 };
    assert_int_equal(call_int(c, 316, 1, any, 2), 1);
    /* eventID 0, dom "x" with an all-zero uuid, id 0 */
    uint32_t other[9] = { 0, 1, 1, 0x78000000, 0, 0, 0, 0, 0 };
    uint8_t msg[80];
    size_t n = make_call(msg, REMOTE_PROGRAM, 1, 316, 2, other, 9);
    assert_int_equal(rpc_client_feed(c, msg, n), 0);
    size_t plen;
    assert_int_equal(one_reply(c, &plen).status, REMOTE_OK);
    reset_output(c);
    uint32_t lifecycle = 0;
    assert_int_equal(call_int(c, 167, 3, &lifecycle, 1), 0);

    remote_nonnull_domain dom = { .name = (char *)"vm1", .id = 3 };
    memset(dom.uuid, 0x11, sizeof(dom.uuid));
    rpc_server_emit_lifecycle(f->srv, &dom, 2, 0);   /* STARTED, BOOTED */

    size_t off = 0;
    remote_domain_event_lifecycle_msg legacy = {0};
    struct rpc_header h = next_message(c, &off, (xdrproc_t)xdr_remote_domain_event_lifecycle_msg,
                                       &legacy);
    assert_int_equal(h.proc, 107);
    assert_int_equal(h.type, REMOTE_MESSAGE);
    assert_int_equal(h.serial, 0);
    assert_string_equal(legacy.dom.name, "vm1");
    assert_int_equal(legacy.dom.id, 3);
    assert_int_equal(legacy.event, 2);
    xdr_free((xdrproc_t)xdr_remote_domain_event_lifecycle_msg, &legacy);
    remote_domain_event_callback_lifecycle_msg cb = {0};
    h = next_message(c, &off, (xdrproc_t)xdr_remote_domain_event_callback_lifecycle_msg, &cb);
    assert_int_equal(h.proc, 318);
    assert_int_equal(cb.callbackID, 1);
    assert_memory_equal(cb.msg.dom.uuid, dom.uuid, 16);
    xdr_free((xdrproc_t)xdr_remote_domain_event_callback_lifecycle_msg, &cb);
    /* Nothing for the callback on the other domain, nor for a client that
     * registered nothing. */
    assert_int_equal(off, rpc_client_output(c)->len);
    assert_int_equal(rpc_client_output(quiet)->len, 0);

    /* After deregistering 1, only the legacy registration is left. */
    reset_output(c);
    uint32_t id = 1;
    assert_int_equal(call_int(c, 317, 5, &id, 1), 0);
    rpc_server_emit_lifecycle(f->srv, &dom, 5, 0);
    off = 0;
    memset(&legacy, 0, sizeof(legacy));
    h = next_message(c, &off, (xdrproc_t)xdr_remote_domain_event_lifecycle_msg, &legacy);
    assert_int_equal(h.proc, 107);
    assert_int_equal(legacy.event, 5);
    xdr_free((xdrproc_t)xdr_remote_domain_event_lifecycle_msg, &legacy);
    assert_int_equal(off, rpc_client_output(c)->len);
    rpc_client_close(c);
    rpc_client_close(quiet);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_roundtrip),
        cmocka_unit_test(test_header_bad_lengths),
        cmocka_unit_test(test_reader_limits),
        cmocka_unit_test(test_payload_roundtrip_and_limits),
        cmocka_unit_test(test_table_rejects_duplicates),
        cmocka_unit_test_setup_teardown(test_unknown_procedure_bytes, setup_fake, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_program, setup_fake, teardown),
        cmocka_unit_test_setup_teardown(test_dispatch_open_and_readonly, setup_fake, teardown),
        cmocka_unit_test_setup_teardown(test_bad_frames_drop_client, setup_fake, teardown),
        cmocka_unit_test_setup_teardown(test_unencodable_result, setup_fake, teardown),
        cmocka_unit_test_setup_teardown(test_stream_duplex, setup_fake, teardown),
        cmocka_unit_test_setup_teardown(test_stream_abort_on_close, setup_fake, teardown),
        cmocka_unit_test_setup_teardown(test_stream_early_data_follows_reply, setup_fake,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_ping_pong, setup_real, teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle_events, setup_real, teardown),
        cmocka_unit_test_setup_teardown(test_handshake, setup_real, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
