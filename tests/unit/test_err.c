/* err and size helpers from src/util. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util/err.h"
#include "util/size.h"

static void test_err_first_wins(void **state)
{
    struct err e = { 0 };
    assert_int_equal(err_set(&e, ENOENT, "disk '%s' missing", "a.img"), -ENOENT);
    assert_int_equal(err_set(&e, EIO, "later error"), -EIO);
    assert_int_equal(e.code, ENOENT);
    assert_string_equal(e.msg, "disk 'a.img' missing");
    err_prefix(&e, "vda: ");
    assert_string_equal(e.msg, "vda: disk 'a.img' missing");
}

static void test_err_errno_suffix(void **state)
{
    struct err e = { 0 };
    err_set_errno(&e, ENOENT, "cannot open %s", "/x");
    char want[128];
    snprintf(want, sizeof(want), "cannot open /x: %s", strerror(ENOENT));
    assert_string_equal(e.msg, want);
    assert_int_equal(err_set(NULL, 0, "no struct"), -EINVAL);
}

static void test_err_prefix_truncates(void **state)
{
    struct err e = { 0 };
    char big[600];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    err_set(&e, EINVAL, "%s", big);
    err_prefix(&e, "p: ");
    assert_int_equal(strlen(e.msg), ERR_MSG_MAX - 1);
    assert_memory_equal(e.msg, "p: x", 4);
}

static void test_size_parse(void **state)
{
    static const struct { const char *in; uint64_t unit; uint64_t want; } ok[] = {
        { "512", 1, 512 }, { "512", 1 << 20, 512ULL << 20 }, { "1K", 1, 1024 },
        { "1k", 1, 1024 }, { "2M", 1, 2 << 20 }, { "1G", 1, 1ULL << 30 },
        { "1T", 1, 1ULL << 40 }, { "1.5G", 1, 3ULL << 29 }, { "4MiB", 1, 4 << 20 },
        { "10B", 1 << 20, 10 }, { "0", 1, 0 }, { "1E", 1, 1ULL << 60 },
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t v = 1234;
        assert_int_equal(size_parse(ok[i].in, ok[i].unit, &v), 0);
        assert_true(v == ok[i].want);
    }
    static const char *const bad[] = { "", "M", "-1", "12Q", "1.G", "1 M", " 1", "1MM", "+5" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v;
        assert_int_equal(size_parse(bad[i], 1, &v), -EINVAL);
    }
    uint64_t v;
    assert_int_equal(size_parse("16E", 1, &v), -ERANGE);
    assert_int_equal(size_parse("99999999999999999999", 1, &v), -ERANGE);
}

static void test_size_format(void **state)
{
    char b[32];
    assert_string_equal(size_format(512, b, sizeof(b)), "512");
    assert_string_equal(size_format(256ULL << 20, b, sizeof(b)), "256M");
    assert_string_equal(size_format(3ULL << 29, b, sizeof(b)), "1.5G");
    assert_string_equal(size_format(1ULL << 40, b, sizeof(b)), "1T");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_first_wins),
        cmocka_unit_test(test_err_errno_suffix),
        cmocka_unit_test(test_err_prefix_truncates),
        cmocka_unit_test(test_size_parse),
        cmocka_unit_test(test_size_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
