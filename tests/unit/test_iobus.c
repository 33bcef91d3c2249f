/* I/O range registration and dispatch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "iobus.h"

struct fake { uint64_t last_off; uint64_t last_val; unsigned reads, writes; };

static void fake_read(void *o, uint64_t off, uint8_t *d, unsigned len)
{
    struct fake *f = o;
    f->reads++;
    f->last_off = off;
    io_data_put(d, len, 0x1122334455667788ULL);
}

static void fake_write(void *o, uint64_t off, const uint8_t *d, unsigned len)
{
    struct fake *f = o;
    f->writes++;
    f->last_off = off;
    f->last_val = io_data_get(d, len);
}

static const struct io_ops fake_ops = { fake_read, fake_write };

static void test_register_overlap(void **state)
{
    struct iobus bus;
    struct fake a = { 0 }, b = { 0 };
    iobus_init(&bus);
    assert_int_equal(iobus_register(&bus, 0x3f8, 8, &fake_ops, &a, "a"), 0);
    assert_int_equal(iobus_register(&bus, 0x3f0, 9, &fake_ops, &b, "b"), -EBUSY);
    assert_int_equal(iobus_register(&bus, 0x3ff, 1, &fake_ops, &b, "b"), -EBUSY);
    assert_int_equal(iobus_register(&bus, 0x3f0, 8, &fake_ops, &b, "b"), 0);
    assert_int_equal(iobus_register(&bus, 0x400, 0, &fake_ops, &b, "b"), -EINVAL);
    assert_int_equal(iobus_register(&bus, UINT64_MAX, 2, &fake_ops, &b, "b"), -EINVAL);
    assert_int_equal(iobus_unregister(&bus, 0x3f0), 0);
    assert_int_equal(iobus_unregister(&bus, 0x3f0), -ENOENT);
    iobus_destroy(&bus);
}

static void test_dispatch(void **state)
{
    struct iobus bus;
    struct fake f[10] = { 0 };
    iobus_init(&bus);
    /* Registered out of order: lookups must still find each. */
    for (int i = 9; i >= 0; i--)
        assert_int_equal(iobus_register(&bus, 0x100 * (uint64_t)i, 0x10, &fake_ops, &f[i], "f"), 0);
    for (int i = 0; i < 10; i++) {
        uint8_t d[4];
        io_data_put(d, 4, 0xabcd0000u + (unsigned)i);
        assert_true(iobus_write(&bus, 0x100 * (uint64_t)i + 4, d, 4));
        assert_int_equal(f[i].writes, 1);
        assert_int_equal(f[i].last_off, 4);
        assert_int_equal(f[i].last_val, 0xabcd0000u + (unsigned)i);
    }
    uint8_t d[2];
    assert_true(iobus_read(&bus, 0x30e, d, 2));
    assert_int_equal(io_data_get(d, 2), 0x7788);
    /* A gap, and an access straddling the end of a range, hit nothing. */
    assert_false(iobus_read(&bus, 0x380, d, 2));
    assert_int_equal(d[0], 0xff);
    assert_false(iobus_read(&bus, 0x30f, d, 2));
    assert_false(iobus_write(&bus, 0x1000, d, 1));
    iobus_destroy(&bus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_overlap),
        cmocka_unit_test(test_dispatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
