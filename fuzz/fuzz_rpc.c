/* Random bytes from a client fed to the daemon's side of the libvirt
 * protocol: the frame reader, the header checks, the XDR decoders of every
 * procedure's arguments and the dispatcher with the connect-level and
 * domain tables, and the migration procedures' typed parameters. A hostile client must get error replies or a closed
 * connection, never a crash, a leak or a malformed reply.
 *
 * Input: byte 0 bit 0 picks the read-only socket, bit 1 opens the
 * connection first (so procedures past the open check are reached); the
 * rest is the byte stream, fed in pieces whose sizes come from byte 1 so
 * the reader's partial-message paths run too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"
#include "daemon/migrate_params.h"
#include "daemon/rpc/server.h"

#ifdef FUZZ_RENAME
#define LLVMFuzzerTestOneInput fuzz_rpc_one
#endif
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct rpc_table table;

/* The migration procedures' arguments (typed parameters, cookies) are
 * decoded and their parameters parsed; the real handlers need a domain
 * driver, so these then refuse. Every argument type starts with what
 * each handler reads: the parameters' offset differs per type. */
#define MIGRATE_FUZZ_HANDLER(fname, type)                                      \
    static int fname(struct rpc_client *c, const void *args, void *ret,        \
                     struct rpc_error *err)                                   \
    {                                                                         \
        const type *a = args;                                                 \
        struct migrate_params p;                                              \
        struct err e = {0};                                                   \
        (void)c; (void)ret;                                                   \
        if (migrate_params_parse(a->params.params_val, a->params.params_len,  \
                                 &p, &e) < 0)                                 \
            return rpc_err_set(err, VIR_ERR_INVALID_ARG, VIR_FROM_QEMU, "%s", e.msg); \
        return rpc_err_set(err, VIR_ERR_NO_SUPPORT, VIR_FROM_QEMU, "%s", "fuzzing"); \
    }
MIGRATE_FUZZ_HANDLER(h_mig_begin, remote_domain_migrate_begin3_params_args)
MIGRATE_FUZZ_HANDLER(h_mig_prepare, remote_domain_migrate_prepare3_params_args)
MIGRATE_FUZZ_HANDLER(h_mig_perform, remote_domain_migrate_perform3_params_args)
MIGRATE_FUZZ_HANDLER(h_mig_finish, remote_domain_migrate_finish3_params_args)
MIGRATE_FUZZ_HANDLER(h_mig_confirm, remote_domain_migrate_confirm3_params_args)

static const struct rpc_proc migrate_procs[] = {
    RPC_PROC(302, "virDomainMigrateBegin3Params", domain_migrate_begin3_params_args,
             domain_migrate_begin3_params_ret, h_mig_begin, 0),
    RPC_PROC(303, "virDomainMigratePrepare3Params", domain_migrate_prepare3_params_args,
             domain_migrate_prepare3_params_ret, h_mig_prepare, 0),
    RPC_PROC(305, "virDomainMigratePerform3Params", domain_migrate_perform3_params_args,
             domain_migrate_perform3_params_ret, h_mig_perform, 0),
    RPC_PROC(306, "virDomainMigrateFinish3Params", domain_migrate_finish3_params_args,
             domain_migrate_finish3_params_ret, h_mig_finish, 0),
    RPC_PROC(307, "virDomainMigrateConfirm3Params", domain_migrate_confirm3_params_args,
             void, h_mig_confirm, 0),
};
static struct daemon d = { .privileged = true, .uri_default = "qemu:///system" };

static void check_output(const struct rpc_buf *out)
{
    /* Every reply is whole: length words chain exactly to the end. */
    size_t off = 0;
    while (off < out->len) {
        if (out->len - off < RPC_HEADER_SIZE)
            abort();
        const uint8_t *p = out->data + off;
        uint32_t n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (n < RPC_HEADER_SIZE || n > out->len - off)
            abort();
        off += n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        struct err e = {0};
        if (rpc_table_add(&table, rpc_connect_procs, rpc_connect_nprocs, &e) < 0 ||
            rpc_table_add(&table, remote_domain_procs, remote_domain_nprocs, &e) < 0 ||
            rpc_table_add(&table, migrate_procs, sizeof(migrate_procs) / sizeof(migrate_procs[0]),
                          &e) < 0)
            abort();
        ready = 1;
    }
    if (size < 2)
        return 0;
    struct err e = {0};
    struct rpc_server *s = rpc_server_new(NULL, &table, &d, &e);
    if (!s)
        abort();
    struct rpc_client *c = rpc_client_new(s, -1, data[0] & 1);
    if (!c)
        abort();
    if (data[0] & 2) {
        /* CONNECT_OPEN(NULL, 0), serial 0. */
        static const uint8_t open_call[] = {
            0, 0, 0, 36, 0x20, 0x00, 0x80, 0x86, 0, 0, 0, 1, 0, 0, 0, 1,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
        rpc_client_feed(c, open_call, sizeof(open_call));
    }
    size_t piece = data[1] ? data[1] : size;
    data += 2;
    size -= 2;
    while (size && !rpc_client_closed(c)) {
        size_t n = piece < size ? piece : size;
        rpc_client_feed(c, data, n);
        data += n;
        size -= n;
    }
    check_output(rpc_client_output(c));
    rpc_server_free(s);
    return 0;
}
