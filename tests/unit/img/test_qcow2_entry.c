/* qcow2 L2 entry decoding, compressed descriptors and refcount entries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "img/qcow2.h"

static struct qcow2_state geom(uint32_t cbits, uint32_t version, uint32_t order)
{
    struct qcow2_state s;
    memset(&s, 0, sizeof s);
    s.h.cluster_bits = cbits;
    s.h.version = version;
    s.h.refcount_order = order;
    qcow2_set_geometry(&s);
    return s;
}

static void test_geometry(void **st)
{
    struct qcow2_state s = geom(16, 3, 4);
    assert_int_equal(s.cluster_size, 65536);
    assert_int_equal(s.l2_entries, 8192);
    assert_int_equal(s.rb_entries, 32768);
    assert_int_equal(s.refcount_max, 65535);
    /* x = 62 - (cluster_bits - 8) from the spec */
    assert_int_equal(s.csize_shift, 54);
    s = geom(9, 3, 6);
    assert_int_equal(s.rb_entries, 64);
    assert_true(s.refcount_max == UINT64_MAX);
}

static void test_decode_standard(void **st)
{
    struct qcow2_state s = geom(16, 3, 4);
    struct qcow2_l2_decoded d;
    assert_int_equal(qcow2_decode_l2(&s, 0, &d), 0);
    assert_int_equal(d.type, QCOW2_CL_UNALLOC);
    assert_int_equal(qcow2_decode_l2(&s, QCOW2_OFLAG_COPIED | 0x50000, &d), 0);
    assert_int_equal(d.type, QCOW2_CL_NORMAL);
    assert_true(d.copied);
    assert_int_equal(d.host, 0x50000);
    assert_int_equal(qcow2_decode_l2(&s, QCOW2_OFLAG_ZERO, &d), 0);
    assert_int_equal(d.type, QCOW2_CL_ZERO_PLAIN);
    assert_int_equal(qcow2_decode_l2(&s, QCOW2_OFLAG_ZERO | 0x70000, &d), 0);
    assert_int_equal(d.type, QCOW2_CL_ZERO_ALLOC);
    /* unaligned host offset, reserved bits, COPIED without offset */
    assert_true(qcow2_decode_l2(&s, 0x50200, &d) < 0);
    assert_true(qcow2_decode_l2(&s, 0x50000 | (1ull << 57), &d) < 0);
    assert_true(qcow2_decode_l2(&s, QCOW2_OFLAG_COPIED, &d) < 0);
    /* the zero flag does not exist in version 2 */
    struct qcow2_state v2 = geom(16, 2, 4);
    assert_true(qcow2_decode_l2(&v2, QCOW2_OFLAG_ZERO, &d) < 0);
}

static void test_compressed_roundtrip(void **st)
{
    for (uint32_t cb = 9; cb <= 21; cb++) {
        struct qcow2_state s = geom(cb, 3, 4);
        uint64_t off = 0x123456789ull & s.coffset_mask & ((1ull << 48) - 1);
        if (!off)
            off = 777;
        uint64_t len = s.cluster_size / 3 + 1;
        uint64_t ent = qcow2_encode_compressed(&s, off, len);
        struct qcow2_l2_decoded d;
        assert_int_equal(qcow2_decode_l2(&s, ent, &d), 0);
        assert_int_equal(d.type, QCOW2_CL_COMPRESSED);
        assert_int_equal(d.host, off);
        /* the descriptor covers the data, rounded to its last sector */
        assert_true(d.csize >= len);
        assert_int_equal((d.host + d.csize) % 512, 0);
        assert_true(d.host + d.csize - (off + len) < 512);
    }
}

static void test_refcount_widths(void **st)
{
    uint8_t blk[512];
    for (uint32_t order = 0; order <= 6; order++) {
        memset(blk, 0, sizeof blk);
        uint32_t bits = 1u << order;
        uint64_t n = sizeof blk * 8 / bits;
        uint64_t max = bits == 64 ? UINT64_MAX : (1ull << bits) - 1;
        for (uint64_t i = 0; i < n; i++)
            qcow2_rb_set(blk, order, i, (i * 7 + 3) & max);
        for (uint64_t i = 0; i < n; i++)
            assert_true(qcow2_rb_get(blk, order, i) == ((i * 7 + 3) & max));
    }
    /* 16-bit entries are big-endian; sub-byte entries start at bit 0 */
    memset(blk, 0, sizeof blk);
    qcow2_rb_set(blk, 4, 1, 0x1234);
    assert_int_equal(blk[2], 0x12);
    assert_int_equal(blk[3], 0x34);
    memset(blk, 0, sizeof blk);
    qcow2_rb_set(blk, 0, 0, 1);
    qcow2_rb_set(blk, 0, 3, 1);
    assert_int_equal(blk[0], 0x09);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geometry),
        cmocka_unit_test(test_decode_standard),
        cmocka_unit_test(test_compressed_roundtrip),
        cmocka_unit_test(test_refcount_widths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
