/* The procedure table and the dispatch of one CALL, with libvirtd's
 * replies for everything refused before a handler runs. */
#include "dispatch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "util/log.h"

int rpc_table_add(struct rpc_table *t, const struct rpc_proc *procs, size_t n,
                  struct err *e)
{
    for (size_t i = 0; i < n; i++) {
        int p = procs[i].proc;
        if (p <= 0 || p >= RPC_PROC_NUM_MAX)
            return err_set(e, EINVAL, "procedure %d is out of the table's range", p);
        if (t->by_num[p])
            return err_set(e, EINVAL, "procedure %d (%s) is listed twice", p, procs[i].api);
        if (!procs[i].fn || !procs[i].args_xdr || !procs[i].ret_xdr)
            return err_set(e, EINVAL, "procedure %d (%s) is incomplete", p, procs[i].api);
        t->by_num[p] = &procs[i];
    }
    return 0;
}

const struct rpc_proc *rpc_table_find(const struct rpc_table *t, int proc)
{
    if (proc <= 0 || proc >= RPC_PROC_NUM_MAX)
        return NULL;
    return t->by_num[proc];
}

bool rpc_client_readonly(const struct rpc_client *c)
{
    return c->readonly || c->conn_readonly;
}

const char *rpc_client_uri(const struct rpc_client *c)
{
    return c->uri;
}

/* The checks libvirtd makes before a procedure runs; fills err when the
 * call is refused. */
static const struct rpc_proc *admit(const struct rpc_table *t, struct rpc_client *c,
                                    const struct rpc_header *call, struct rpc_error *err)
{
    if (call->prog != REMOTE_PROGRAM || call->vers != REMOTE_PROTOCOL_VERSION) {
        rpc_err_set(err, VIR_ERR_RPC, VIR_FROM_RPC, "Cannot find program %d version %d",
                    (int)call->prog, (int)call->vers);
        return NULL;
    }
    if (call->type != REMOTE_CALL) {
        rpc_err_set(err, VIR_ERR_RPC, VIR_FROM_RPC, "Unexpected message type %u", call->type);
        return NULL;
    }
    if (call->status != REMOTE_OK) {
        rpc_err_set(err, VIR_ERR_RPC, VIR_FROM_RPC, "Unexpected message status %u",
                    call->status);
        return NULL;
    }
    const struct rpc_proc *p = rpc_table_find(t, call->proc);
    if (!p) {
        rpc_err_set(err, VIR_ERR_RPC, VIR_FROM_RPC, "unknown procedure: %d", call->proc);
        return NULL;
    }
    if (!(p->flags & RPC_PROC_NO_CONN) && !c->open) {
        rpc_err_set(err, VIR_ERR_INTERNAL_ERROR, VIR_FROM_RPC,
                    "hypervisor connection not open");
        return NULL;
    }
    if (!(p->flags & RPC_PROC_READONLY) && rpc_client_readonly(c)) {
        int dom = strncmp(p->api, "virDomain", 9) == 0 ? VIR_FROM_DOMAIN : VIR_FROM_NONE;
        rpc_err_set(err, VIR_ERR_OPERATION_DENIED, dom, "read only access prevents %s",
                    p->api);
        return NULL;
    }
    return p;
}

struct rpc_deferred {
    struct rpc_client *c;       /* NULL once the client has gone */
    struct rpc_deferred *next;
    const struct rpc_proc *p;
    struct rpc_header call;
};

struct rpc_deferred *rpc_defer(struct rpc_client *c, struct rpc_error *err)
{
    if (!c->call || !c->call_proc) {
        rpc_err_set(err, VIR_ERR_INTERNAL_ERROR, VIR_FROM_RPC, "reply deferred outside a call");
        return NULL;
    }
    struct rpc_deferred *dr = calloc(1, sizeof(*dr));
    if (!dr) {
        rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_RPC, "%s", c->call_proc->api);
        return NULL;
    }
    dr->c = c;
    dr->p = c->call_proc;
    dr->call = *c->call;
    dr->next = c->deferred;
    c->deferred = dr;
    c->call_deferred = true;
    return dr;
}

bool rpc_deferred_connected(const struct rpc_deferred *dr)
{
    return dr && dr->c && !dr->c->closed;
}

int rpc_client_deferred_count(const struct rpc_client *c)
{
    int n = 0;
    for (const struct rpc_deferred *dr = c->deferred; dr; dr = dr->next)
        n++;
    return n;
}

void rpc_client_orphan_deferred(struct rpc_client *c)
{
    while (c->deferred) {
        struct rpc_deferred *dr = c->deferred;
        c->deferred = dr->next;
        dr->next = NULL;
        dr->c = NULL;
        log_debug("client gone before the reply to procedure %d serial %u", dr->call.proc,
                  dr->call.serial);
    }
}

/* Takes dr off its client's list; returns the client, or NULL when it has
 * gone or is being dropped (nothing to send then). */
static struct rpc_client *deferred_detach(struct rpc_deferred *dr)
{
    struct rpc_client *c = dr->c;
    if (!c)
        return NULL;
    for (struct rpc_deferred **pp = &c->deferred; *pp; pp = &(*pp)->next) {
        if (*pp == dr) {
            *pp = dr->next;
            break;
        }
    }
    return c->closed ? NULL : c;
}

static int reply_error(const struct rpc_header *call, const struct rpc_error *err,
                       struct rpc_buf *out);

void rpc_deferred_fail(struct rpc_deferred *dr, const struct rpc_error *err)
{
    if (!dr)
        return;
    struct rpc_client *c = deferred_detach(dr);
    if (c) {
        struct rpc_error generic = {0};
        if (!err || !rpc_err_is_set(err)) {
            rpc_err_set(&generic, VIR_ERR_INTERNAL_ERROR, VIR_FROM_RPC, "%s failed",
                        dr->p->api);
            err = &generic;
        }
        if (reply_error(&dr->call, err, &c->out) < 0)
            c->closed = true;
        rpc_client_kick(c);
    }
    free(dr);
}

void rpc_deferred_reply(struct rpc_deferred *dr, void *ret)
{
    if (!dr)
        return;
    struct rpc_client *c = deferred_detach(dr);
    struct rpc_header h = dr->call;
    h.type = REMOTE_REPLY;
    h.status = REMOTE_OK;
    struct err e = {0};
    int rc = 0;
    if (c)
        rc = rpc_msg_append(&c->out, &h, dr->p->ret_xdr, ret, &e);
    if (ret)
        xdr_free(dr->p->ret_xdr, ret);
    if (c && rc < 0) {
        log_error("procedure %d (%s): %s", h.proc, dr->p->api, e.msg);
        struct rpc_error err = {0};
        rpc_err_set(&err, VIR_ERR_RPC, VIR_FROM_RPC, "Unable to encode message payload");
        if (reply_error(&dr->call, &err, &c->out) < 0)
            c->closed = true;
    }
    if (c)
        rpc_client_kick(c);
    free(dr);
}

static int reply_error(const struct rpc_header *call, const struct rpc_error *err,
                       struct rpc_buf *out)
{
    struct err e = {0};
    int rc = rpc_error_append(out, call, err, &e);
    if (rc < 0)
        log_error("cannot send an error reply to procedure %d: %s", call->proc, e.msg);
    return rc;
}

/* Decodes, runs and encodes; args and ret are zeroed buffers of the
 * procedure's sizes. */
static int run(const struct rpc_proc *p, struct rpc_client *c, const struct rpc_header *call,
               const uint8_t *payload, size_t len, void *args, void *ret,
               struct rpc_buf *out)
{
    struct rpc_error err = {0};
    struct err e = {0};
    if (rpc_payload_decode(payload, len, p->args_xdr, args, &e) < 0) {
        log_debug("procedure %d: %s", call->proc, e.msg);
        rpc_err_set(&err, VIR_ERR_RPC, VIR_FROM_RPC, "Unable to decode message payload");
        return reply_error(call, &err, out);
    }
    c->call = call;
    c->call_proc = p;
    c->call_deferred = false;
    int rc = p->fn(c, args, ret, &err);
    c->call = NULL;
    c->call_proc = NULL;
    xdr_free(p->args_xdr, args);
    if (rc == RPC_HANDLER_DEFERRED && c->call_deferred) {
        xdr_free(p->ret_xdr, ret);
        return 0;
    }
    if (rc == RPC_HANDLER_DEFERRED) {
        /* Without rpc_defer() nobody would ever answer: a handler bug. */
        log_error("procedure %d (%s) deferred its reply without rpc_defer()", call->proc,
                  p->api);
        rc = -1;
    }
    if (rc < 0) {
        xdr_free(p->ret_xdr, ret);
        if (!rpc_err_is_set(&err))
            rpc_err_set(&err, VIR_ERR_INTERNAL_ERROR, VIR_FROM_RPC, "%s failed", p->api);
        rc = reply_error(call, &err, out);
        rpc_client_streams_started(c, call->serial, false);
        return rc;
    }
    /* Whatever table is in use, a successful CONNECT_OPEN is what lets the
     * other procedures run. */
    if (call->proc == 1)
        c->open = true;
    struct rpc_header h = *call;
    h.type = REMOTE_REPLY;
    h.status = REMOTE_OK;
    rc = rpc_msg_append(out, &h, p->ret_xdr, ret, &e);
    xdr_free(p->ret_xdr, ret);
    if (rc < 0) {
        log_error("procedure %d (%s): %s", call->proc, p->api, e.msg);
        rpc_err_set(&err, VIR_ERR_RPC, VIR_FROM_RPC, "Unable to encode message payload");
        rc = reply_error(call, &err, out);
        rpc_client_streams_started(c, call->serial, false);
        return rc;
    }
    rpc_client_streams_started(c, call->serial, true);
    return 0;
}

int rpc_dispatch_call(const struct rpc_table *t, struct rpc_client *c,
                      const struct rpc_header *call, const uint8_t *payload,
                      size_t len, struct rpc_buf *out)
{
    struct rpc_error err = {0};
    const struct rpc_proc *p = admit(t, c, call, &err);
    if (!p) {
        log_debug("call %d serial %u refused: %s", call->proc, call->serial, err.message);
        return reply_error(call, &err, out);
    }
    log_debug("call %d %s serial %u", call->proc, p->api, call->serial);

    /* Most argument and result structs are small; the stack saves two
     * allocations per call for them. */
    uint64_t small_args[32], small_ret[32];
    void *args = p->args_size <= sizeof(small_args) ? small_args : calloc(1, p->args_size);
    void *ret = p->ret_size <= sizeof(small_ret) ? small_ret : calloc(1, p->ret_size);
    int rc;
    if (!args || !ret) {
        rpc_err_set(&err, VIR_ERR_NO_MEMORY, VIR_FROM_RPC, "%s", p->api);
        rc = reply_error(call, &err, out);
    } else {
        memset(args, 0, p->args_size);
        memset(ret, 0, p->ret_size);
        rc = run(p, c, call, payload, len, args, ret, out);
    }
    if (args != small_args)
        free(args);
    if (ret != small_ret)
        free(ret);
    return rc;
}
