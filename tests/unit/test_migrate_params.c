/* The migration calls' typed parameters (migrate_params.c), decoded from
 * the bytes libvirt's client sends, the flag checks (domain_migrate.c)
 * and the lock a migration holds (domain.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <rpc/rpc.h>

#include "daemon/domain.h"
#include "daemon/domain_migrate.h"
#include "daemon/migrate_params.h"

static remote_typed_param str_param(const char *name, const char *v)
{
    remote_typed_param p = { .field = (char *)name };
    p.value.type = REMOTE_TYPED_PARAM_STRING;
    p.value.remote_typed_param_value_u.s = (char *)v;
    return p;
}

/* Encodes Prepare's arguments as a client would and decodes them as the
 * daemon does: the parameters come through the XDR types unchanged. */
static void test_wire_round_trip(void **state)
{
    (void)state;
    remote_typed_param v[3] = {
        str_param("destination_xml", "<domain/>"),
        str_param("migrate_uri", "tcp:host-b:49152"),
    };
    v[2].field = "bandwidth";
    v[2].value.type = REMOTE_TYPED_PARAM_ULLONG;
    v[2].value.remote_typed_param_value_u.ul = 1ull << 40;
    char cookie[3] = "abc";
    remote_domain_migrate_prepare3_params_args in = {
        .params = { 3, v }, .cookie_in = { 3, cookie }, .flags = MIGRATE_LIVE,
    };
    char buf[4096];
    XDR x;
    xdrmem_create(&x, buf, sizeof(buf), XDR_ENCODE);
    assert_true(xdr_remote_domain_migrate_prepare3_params_args(&x, &in));
    unsigned len = xdr_getpos(&x);
    xdr_destroy(&x);

    remote_domain_migrate_prepare3_params_args out;
    memset(&out, 0, sizeof(out));
    xdrmem_create(&x, buf, len, XDR_DECODE);
    assert_true(xdr_remote_domain_migrate_prepare3_params_args(&x, &out));
    xdr_destroy(&x);
    assert_int_equal(out.flags, MIGRATE_LIVE);
    assert_int_equal(out.cookie_in.cookie_in_len, 3);

    struct migrate_params p;
    struct err e = { 0 };
    assert_int_equal(migrate_params_parse(out.params.params_val, out.params.params_len, &p, &e),
                     0);
    assert_string_equal(p.dest_xml, "<domain/>");
    assert_string_equal(p.uri, "tcp:host-b:49152");
    assert_true(p.bandwidth == 1ull << 40);
    assert_null(p.dest_name);
    assert_null(p.persist_xml);
    xdr_free((xdrproc_t)xdr_remote_domain_migrate_prepare3_params_args, (char *)&out);
}

/* A typed parameter whose union type is not one of libvirt's seven is an
 * XDR error, not a value. */
static void test_wire_bad_type(void **state)
{
    (void)state;
    /* params<1>: field "x", type 99 */
    static const uint8_t bytes[] = { 0, 0, 0, 1, 0, 0, 0, 1, 'x', 0, 0, 0, 0, 0, 0, 99 };
    remote_domain_migrate_finish3_params_args out;
    memset(&out, 0, sizeof(out));
    XDR x;
    xdrmem_create(&x, (char *)bytes, sizeof(bytes), XDR_DECODE);
    assert_false(xdr_remote_domain_migrate_finish3_params_args(&x, &out));
    xdr_destroy(&x);
    xdr_free((xdrproc_t)xdr_remote_domain_migrate_finish3_params_args, (char *)&out);
}

static void test_all_strings(void **state)
{
    (void)state;
    remote_typed_param v[] = {
        str_param("destination_name", "vm1"), str_param("persistent_xml", "<p/>"),
        str_param("listen_address", "::"), str_param("graphics_uri", "spice://x"),
    };
    struct migrate_params p;
    struct err e = { 0 };
    assert_int_equal(migrate_params_parse(v, 4, &p, &e), 0);
    assert_string_equal(p.dest_name, "vm1");
    assert_string_equal(p.persist_xml, "<p/>");
    assert_string_equal(p.listen_address, "::");
    assert_null(p.uri);
    assert_int_equal(migrate_params_parse(NULL, 0, &p, &e), 0);
    assert_null(p.dest_name);
}

static void test_refused(void **state)
{
    (void)state;
    struct migrate_params p;
    struct err e = { 0 };
    remote_typed_param unknown[] = { str_param("compression", "xbzrle") };
    assert_int_equal(migrate_params_parse(unknown, 1, &p, &e), -EINVAL);
    assert_string_equal(e.msg, "parameter 'compression' not supported");

    remote_typed_param twice[] = { str_param("migrate_uri", "tcp:a"),
                                   str_param("migrate_uri", "tcp:b") };
    e = (struct err){ 0 };
    assert_int_equal(migrate_params_parse(twice, 2, &p, &e), -EINVAL);
    assert_string_equal(e.msg, "parameter 'migrate_uri' occurs multiple times");

    remote_typed_param wrong = str_param("bandwidth", "1");
    e = (struct err){ 0 };
    assert_int_equal(migrate_params_parse(&wrong, 1, &p, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "bandwidth"));
    remote_typed_param num = { .field = "destination_xml" };
    num.value.type = REMOTE_TYPED_PARAM_INT;
    assert_int_equal(migrate_params_parse(&num, 1, &p, &e), -EINVAL);
    remote_typed_param noname = str_param(NULL, "x");
    assert_int_equal(migrate_params_parse(&noname, 1, &p, &e), -EINVAL);
}

static void test_flags(void **state)
{
    (void)state;
    struct err e = { 0 };
    assert_int_equal(migrate_check_flags(0, &e), 0);
    assert_int_equal(migrate_check_flags(MIGRATE_LIVE | MIGRATE_PERSIST_DEST |
                                         MIGRATE_UNDEFINE_SOURCE | MIGRATE_PAUSED |
                                         MIGRATE_CHANGE_PROTECTION, &e), 0);
    assert_int_equal(migrate_check_flags(MIGRATE_LIVE | MIGRATE_PEER2PEER, &e), -ENOTSUP);
    assert_int_equal(migrate_check_flags(MIGRATE_TUNNELLED, &e), -ENOTSUP);
    e = (struct err){ 0 };
    assert_int_equal(migrate_check_flags(MIGRATE_NON_SHARED_INC, &e), -ENOTSUP);
    assert_non_null(strstr(e.msg, "storage"));
    assert_int_equal(migrate_check_flags(MIGRATE_OFFLINE, &e), -ENOTSUP);
    assert_int_equal(migrate_check_flags(MIGRATE_POSTCOPY, &e), -ENOTSUP);
    e = (struct err){ 0 };
    assert_int_equal(migrate_check_flags(MIGRATE_COMPRESSED, &e), -EINVAL);
    assert_string_equal(e.msg, "unsupported flags (0x800) in function qemuMigrationSrcBegin");
}

/* A migration holds the domain's lock: lifecycle calls get libvirt's lock
 * error naming the step, but a destroy goes through (it ends the
 * migration with the VMM). */
static void test_lock(void **state)
{
    (void)state;
    struct domain d = { .name = "vm", .id = 3, .state = DOMAIN_RUNNING, .pidfd = -1 };
    struct err e = { 0 };
    assert_int_equal(domain_op_check(&d, DOMAIN_OP_SUSPEND, &e), 0);
    d.migrating = true;
    d.job_api = "remoteDispatchDomainMigratePerform3Params";
    assert_int_equal(domain_op_check(&d, DOMAIN_OP_SUSPEND, &e), -ETIMEDOUT);
    assert_string_equal(e.msg, "cannot acquire state change lock (held by "
                               "monitor=remoteDispatchDomainMigratePerform3Params)");
    e = (struct err){ 0 };
    assert_int_equal(domain_op_check(&d, DOMAIN_OP_LIVE_CHANGE, &e), -ETIMEDOUT);
    e = (struct err){ 0 };
    assert_int_equal(domain_op_check(&d, DOMAIN_OP_DESTROY, &e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_round_trip),
        cmocka_unit_test(test_wire_bad_type),
        cmocka_unit_test(test_all_strings),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_lock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
