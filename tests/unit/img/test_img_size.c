/* Size parsing and printing (qemu-img conventions). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "img/blk.h"

static void parse_ok(const char *s, uint64_t want)
{
    uint64_t v = 0;
    assert_int_equal(blk_parse_size(s, &v), 0);
    assert_int_equal(v, want);
}

static void test_suffixes(void **st)
{
    parse_ok("0", 0);
    parse_ok("512", 512);
    parse_ok("1K", 1024);
    parse_ok("1k", 1024);
    parse_ok("64M", 64ull << 20);
    parse_ok("10G", 10ull << 30);
    parse_ok("1T", 1ull << 40);
    parse_ok("2P", 2ull << 50);
    parse_ok("1.5G", 3ull << 29);
    parse_ok("100B", 100);
}

static void test_rejects(void **st)
{
    uint64_t v;
    assert_true(blk_parse_size("", &v) < 0);
    assert_true(blk_parse_size("-1", &v) < 0);
    assert_true(blk_parse_size("12X", &v) < 0);
    assert_true(blk_parse_size("1KK", &v) < 0);
    assert_true(blk_parse_size("1.5", &v) < 0);
    assert_true(blk_parse_size("16E", &v) < 0);     /* beyond int64 */
    assert_true(blk_parse_size("99999999999999999999", &v) < 0);
}

static void fmt_is(uint64_t v, const char *want)
{
    char buf[32];
    blk_format_size(v, buf, sizeof buf);
    assert_string_equal(buf, want);
}

static void test_format(void **st)
{
    fmt_is(0, "0 B");
    fmt_is(999, "999 B");
    fmt_is(1000, "0.977 KiB");
    fmt_is(200704, "196 KiB");
    fmt_is(1314816, "1.25 MiB");
    fmt_is(64ull << 20, "64 MiB");
    fmt_is(1ull << 40, "1 TiB");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suffixes),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
