/* Framing, XDR payloads and error replies of the libvirt remote protocol. */
#include "wire.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"

bool_t xdr_remote_void(XDR *xdrs, void *unused)
{
    (void)xdrs;
    (void)unused;
    return TRUE;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void rpc_buf_free(struct rpc_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void rpc_buf_consume(struct rpc_buf *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len) {
        b->off = b->len = 0;
    } else if (b->off > (1u << 20) && b->off > b->len / 2) {
        /* Sliding only when it pays keeps big replies from being copied
         * once per partial write. */
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
}

static int buf_reserve(struct rpc_buf *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra)
        cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int rpc_buf_append(struct rpc_buf *b, const void *data, size_t len)
{
    if (buf_reserve(b, len) < 0)
        return -ENOMEM;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

void rpc_header_encode(uint8_t out[RPC_HEADER_SIZE], const struct rpc_header *h,
                       uint32_t total_len)
{
    put_be32(out, total_len);
    put_be32(out + 4, h->prog);
    put_be32(out + 8, h->vers);
    put_be32(out + 12, (uint32_t)h->proc);
    put_be32(out + 16, h->type);
    put_be32(out + 20, h->serial);
    put_be32(out + 24, h->status);
}

int rpc_header_decode(const uint8_t *buf, size_t len, struct rpc_header *h,
                      struct err *e)
{
    if (len < RPC_HEADER_SIZE)
        return err_set(e, EBADMSG, "message of %zu bytes is shorter than its header", len);
    uint32_t total = get_be32(buf);
    if (total != len)
        return err_set(e, EBADMSG, "message length word %u does not match its %zu bytes",
                       total, len);
    if (total > RPC_MESSAGE_MAX)
        return err_set(e, EMSGSIZE, "message of %u bytes is over the %u byte limit",
                       total, RPC_MESSAGE_MAX);
    h->prog = get_be32(buf + 4);
    h->vers = get_be32(buf + 8);
    h->proc = (int32_t)get_be32(buf + 12);
    h->type = get_be32(buf + 16);
    h->serial = get_be32(buf + 20);
    h->status = get_be32(buf + 24);
    return 0;
}

int rpc_msg_append(struct rpc_buf *b, const struct rpc_header *h,
                   xdrproc_t xdr_obj, const void *obj, struct err *e)
{
    size_t start = b->len;
    size_t room = 0;
    if (xdr_obj && xdr_obj != (xdrproc_t)xdr_remote_void) {
        /* xdr_sizeof walks obj once so the buffer is sized exactly. */
        room = xdr_sizeof(xdr_obj, (void *)obj);
        if (room == 0)
            return err_set(e, EINVAL, "payload cannot be encoded");
    }
    if (room > RPC_PAYLOAD_MAX)
        return err_set(e, EMSGSIZE, "message payload of %zu bytes is over the %u byte limit",
                       room, RPC_PAYLOAD_MAX);
    if (buf_reserve(b, RPC_HEADER_SIZE + room) < 0)
        return err_set(e, ENOMEM, "out of memory for a %zu byte message", room);
    if (room) {
        XDR x;
        xdrmem_create(&x, (char *)b->data + start + RPC_HEADER_SIZE, room, XDR_ENCODE);
        bool_t ok = xdr_obj(&x, (void *)obj, 0);
        size_t used = xdr_getpos(&x);
        xdr_destroy(&x);
        if (!ok || used != room)
            return err_set(e, EINVAL, "payload cannot be encoded (a value over its limit?)");
    }
    rpc_header_encode(b->data + start, h, (uint32_t)(RPC_HEADER_SIZE + room));
    b->len = start + RPC_HEADER_SIZE + room;
    return 0;
}

int rpc_msg_append_raw(struct rpc_buf *b, const struct rpc_header *h,
                       const void *data, size_t len, struct err *e)
{
    if (len > RPC_PAYLOAD_MAX)
        return err_set(e, EMSGSIZE, "stream chunk of %zu bytes is over the %u byte limit",
                       len, RPC_PAYLOAD_MAX);
    if (buf_reserve(b, RPC_HEADER_SIZE + len) < 0)
        return err_set(e, ENOMEM, "out of memory for a %zu byte message", len);
    rpc_header_encode(b->data + b->len, h, (uint32_t)(RPC_HEADER_SIZE + len));
    if (len)
        memcpy(b->data + b->len + RPC_HEADER_SIZE, data, len);
    b->len += RPC_HEADER_SIZE + len;
    return 0;
}

int rpc_payload_decode(const uint8_t *p, size_t len, xdrproc_t xdr_obj,
                       void *obj, struct err *e)
{
    XDR x;
    xdrmem_create(&x, (char *)p, (u_int)len, XDR_DECODE);
    bool_t ok = xdr_obj(&x, obj, 0);
    size_t used = xdr_getpos(&x);
    xdr_destroy(&x);
    if (!ok) {
        xdr_free(xdr_obj, obj);
        return err_set(e, EBADMSG, "cannot decode the %zu byte payload", len);
    }
    if (used != len) {
        xdr_free(xdr_obj, obj);
        return err_set(e, EBADMSG, "%zu bytes left over after the payload", len - used);
    }
    return 0;
}

void rpc_payload_free(xdrproc_t xdr_obj, void *obj)
{
    xdr_free(xdr_obj, obj);
}

void rpc_reader_init(struct rpc_reader *r)
{
    memset(r, 0, sizeof(*r));
    r->want = RPC_LEN_SIZE;
}

void rpc_reader_free(struct rpc_reader *r)
{
    free(r->buf);
    memset(r, 0, sizeof(*r));
}

int rpc_reader_space(struct rpc_reader *r, uint8_t **p, size_t *n, struct err *e)
{
    if (r->cap < r->want) {
        /* Grow to what this message needs: the length word was checked
         * against RPC_MESSAGE_MAX before want was set. */
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->want)
            cap *= 2;
        uint8_t *nb = realloc(r->buf, cap);
        if (!nb)
            return err_set(e, ENOMEM, "out of memory for a %zu byte message", r->want);
        r->buf = nb;
        r->cap = cap;
    }
    *p = r->buf + r->have;
    *n = r->want - r->have;
    return 0;
}

int rpc_reader_commit(struct rpc_reader *r, size_t n, struct err *e)
{
    r->have += n;
    if (r->have < r->want)
        return 0;
    if (r->want == RPC_LEN_SIZE) {
        uint32_t total = get_be32(r->buf);
        if (total < RPC_HEADER_SIZE)
            return err_set(e, EPROTO, "message length %u is shorter than a header", total);
        if (total > RPC_MESSAGE_MAX)
            return err_set(e, EPROTO, "message length %u is over the %u byte limit",
                           total, RPC_MESSAGE_MAX);
        r->want = total;
        return 0;
    }
    return 1;
}

void rpc_reader_next(struct rpc_reader *r)
{
    r->have = 0;
    r->want = RPC_LEN_SIZE;
    /* A huge message's buffer is not kept for the rest of the connection. */
    if (r->cap > (1u << 20)) {
        free(r->buf);
        r->buf = NULL;
        r->cap = 0;
    }
}

/* libvirt's message text per code; the detail goes in for %s. */
static const char *err_format(int code)
{
    switch (code) {
    case VIR_ERR_INTERNAL_ERROR: return "internal error: %s";
    case VIR_ERR_NO_MEMORY: return "cannot allocate memory: %s";
    case VIR_ERR_NO_SUPPORT: return "this function is not supported by the connection driver: %s";
    case VIR_ERR_NO_CONNECT: return "no connection driver available for %s";
    case VIR_ERR_INVALID_ARG: return "invalid argument: %s";
    case VIR_ERR_OPERATION_FAILED: return "operation failed: %s";
    case VIR_ERR_XML_ERROR: return "XML error: %s";
    case VIR_ERR_OPERATION_DENIED: return "operation forbidden: %s";
    case VIR_ERR_NO_DOMAIN: return "Domain not found: %s";
    case VIR_ERR_NO_STORAGE_POOL: return "Storage pool not found: %s";
    case VIR_ERR_NO_STORAGE_VOL: return "Storage volume not found: %s";
    case VIR_ERR_OPERATION_INVALID: return "Requested operation is not valid: %s";
    case VIR_ERR_CONFIG_UNSUPPORTED: return "unsupported configuration: %s";
    case VIR_ERR_OPERATION_TIMEOUT: return "Timed out during operation: %s";
    case VIR_ERR_NO_DOMAIN_SNAPSHOT: return "Domain snapshot not found: %s";
    case VIR_ERR_OPERATION_UNSUPPORTED: return "Operation not supported: %s";
    case VIR_ERR_STORAGE_VOL_EXIST: return "storage volume already exists: %s";
    default: return "%s";   /* VIR_ERR_RPC, VIR_ERR_SYSTEM_ERROR and the rest */
    }
}

static void err_fill(struct rpc_error *e, int code, int domain, const char *detail)
{
    e->code = code;
    e->domain = domain;
    e->level = 2;
    const char *fmt = err_format(code);
    snprintf(e->str1, sizeof(e->str1), "%s", fmt);
    snprintf(e->str2, sizeof(e->str2), "%s", detail);
    const char *pct = strstr(fmt, "%s");
    snprintf(e->message, sizeof(e->message), "%.*s%s%s", (int)(pct - fmt), fmt,
             detail, pct + 2);
}

int rpc_err_set(struct rpc_error *e, int code, int domain, const char *fmt, ...)
{
    if (!e || e->code)
        return -1;
    char detail[RPC_ERR_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    err_fill(e, code, domain, detail);
    return -1;
}

int rpc_err_from(struct rpc_error *e, int code, int domain, const struct err *cause)
{
    if (!e || e->code)
        return -1;
    err_fill(e, code, domain, cause && cause->msg[0] ? cause->msg : "unknown error");
    return -1;
}

void rpc_err_to_remote(const struct rpc_error *e, struct rpc_err_wire *w)
{
    /* The casts only satisfy rpcgen's non-const char *: encoding reads. */
    memset(w, 0, sizeof(*w));
    w->str[0] = (char *)e->message;
    w->str[1] = (char *)e->str1;
    w->str[2] = (char *)e->str2;
    w->re.code = e->code;
    w->re.domain = e->domain;
    w->re.level = e->level ? e->level : 2;
    w->re.message = &w->str[0];
    w->re.str1 = &w->str[1];
    w->re.str2 = &w->str[2];
    w->re.int1 = -1;
    w->re.int2 = -1;
}

int rpc_error_append(struct rpc_buf *b, const struct rpc_header *call,
                     const struct rpc_error *err, struct err *e)
{
    struct rpc_header h = {
        .prog = call->prog, .vers = call->vers, .proc = call->proc,
        .type = call->type == REMOTE_STREAM ? REMOTE_STREAM : REMOTE_REPLY,
        .serial = call->serial, .status = REMOTE_ERROR,
    };
    struct rpc_err_wire w;
    rpc_err_to_remote(err, &w);
    return rpc_msg_append(b, &h, (xdrproc_t)xdr_remote_error, &w.re, e);
}
