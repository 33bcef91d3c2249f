/* qcow2 header parsing: a valid header round-trips, and each class of
 * corrupt header gives an error naming the fault. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "img/qcow2.h"

#define CS 65536

static uint8_t buf[CS];

static void make(struct qcow2_header *h, uint32_t version)
{
    memset(h, 0, sizeof *h);
    h->version = version;
    h->cluster_bits = 16;
    h->size = 1ull << 30;
    h->l1_size = 2;
    h->l1_table_offset = 3 * CS;
    h->refcount_table_offset = CS;
    h->refcount_table_clusters = 1;
    h->refcount_order = 4;
    strcpy(h->backing_file, "base.img");
    strcpy(h->backing_fmt, "raw");
    assert_true(qcow2_build_header(h, buf, CS, NULL) > 0);
}

static void test_roundtrip(void **st)
{
    for (uint32_t v = 2; v <= 3; v++) {
        struct qcow2_header h, p;
        make(&h, v);
        struct err e = {0};
        assert_int_equal(qcow2_parse_header(buf, CS, 4 * CS, &p, &e), 0);
        assert_int_equal(p.version, v);
        assert_int_equal(p.cluster_bits, 16);
        assert_true(p.size == 1ull << 30);
        assert_int_equal(p.l1_size, 2);
        assert_true(p.l1_table_offset == 3 * CS);
        assert_int_equal(p.refcount_order, 4);
        assert_string_equal(p.backing_file, "base.img");
        assert_string_equal(p.backing_fmt, "raw");
        assert_int_equal(p.header_length, v == 3 ? 112 : 72);
    }
}

static int parse_err(struct err *e)
{
    struct qcow2_header p;
    err_clear(e);
    return qcow2_parse_header(buf, CS, 4 * CS, &p, e);
}

static void test_bad_magic(void **st)
{
    struct qcow2_header h;
    struct err e;
    make(&h, 3);
    buf[0] = 'X';
    assert_true(parse_err(&e) < 0);
    assert_non_null(strstr(e.msg, "magic"));
}

static void test_header_beyond_cluster(void **st)
{
    struct qcow2_header h;
    struct err e;
    make(&h, 3);
    qcow2_put32(buf + 100, CS + 8);     /* header_length */
    assert_true(parse_err(&e) < 0);
    assert_non_null(strstr(e.msg, "exceeds the cluster size"));
}

static void test_table_outside_file(void **st)
{
    struct qcow2_header h;
    struct err e;
    make(&h, 3);
    qcow2_put64(buf + 40, 100ull * CS);  /* L1 past the 4-cluster file */
    assert_true(parse_err(&e) < 0);
    assert_non_null(strstr(e.msg, "L1 table"));
    assert_non_null(strstr(e.msg, "outside the file"));
    make(&h, 3);
    qcow2_put64(buf + 48, 3 * CS + 512); /* unaligned refcount table */
    assert_true(parse_err(&e) < 0);
    assert_non_null(strstr(e.msg, "not cluster aligned"));
}

static void test_overlap(void **st)
{
    struct qcow2_header h;
    struct err e;
    make(&h, 3);
    qcow2_put64(buf + 40, CS);           /* L1 on top of the refcount table */
    assert_true(parse_err(&e) < 0);
    assert_non_null(strstr(e.msg, "overlap"));
}

static void test_incompatible_bits(void **st)
{
    struct qcow2_header h;
    struct err e;
    make(&h, 3);
    qcow2_put64(buf + 72, 1ull << 5);
    assert_true(parse_err(&e) < 0);
    assert_non_null(strstr(e.msg, "bit 5"));
    make(&h, 3);
    qcow2_put64(buf + 72, QCOW2_INCOMPAT_EXTL2);
    assert_true(parse_err(&e) < 0);
    assert_non_null(strstr(e.msg, "extended L2 entries"));
}

static void test_small_tables(void **st)
{
    struct qcow2_header h;
    struct err e;
    make(&h, 3);
    qcow2_put32(buf + 36, 1);   /* L1 too small for 1 GiB with 64 KiB clusters */
    assert_true(parse_err(&e) < 0);
    assert_non_null(strstr(e.msg, "too small"));
    make(&h, 3);
    qcow2_put32(buf + 20, 22);  /* 4 MiB clusters */
    assert_true(parse_err(&e) < 0);
    make(&h, 3);
    qcow2_put32(buf + 96, 7);   /* refcount_order */
    assert_true(parse_err(&e) < 0);
    assert_non_null(strstr(e.msg, "refcount_order"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_header_beyond_cluster),
        cmocka_unit_test(test_table_outside_file),
        cmocka_unit_test(test_overlap),
        cmocka_unit_test(test_incompatible_bits),
        cmocka_unit_test(test_small_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
