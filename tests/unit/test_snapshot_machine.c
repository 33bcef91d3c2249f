/* The machine options a snapshot or migration records and compares: the
 * host-side parts (a NIC's tap, a destination's inactive disk) are left
 * out of the comparison, --net-tap rewrites the tap in place. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "snapshot/snapshot_int.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int cmp(char **src, int srcc, char **here, int herec, struct err *e)
{
    memset(e, 0, sizeof(*e));
    return snap_machine_compare(srcc, src, herec, here, e);
}

static void test_net_tap_differs_accepted(void **state)
{
    (void)state;
    char *src[] = { "--kernel", "k", "--net", "tap=ta,mac=52:54:00:00:00:01" };
    char *here[] = { "--kernel", "k", "--net=tap=tb,mac=52:54:00:00:00:01" };
    char *here2[] = { "--kernel", "k", "--net", "mac=52:54:00:00:00:01,tap=other" };
    struct err e;
    assert_int_equal(cmp(src, N(src), here, N(here), &e), 0);
    assert_int_equal(cmp(src, N(src), here2, N(here2), &e), 0);
}

static void test_net_mac_differs_refused(void **state)
{
    (void)state;
    char *src[] = { "--kernel", "k", "--net", "tap=t0,mac=52:54:00:00:00:01",
                    "--net", "tap=t1,mac=52:54:00:00:00:02" };
    char *here[] = { "--kernel", "k", "--net", "tap=t0,mac=52:54:00:00:00:01",
                     "--net", "tap=t1,mac=52:54:00:00:00:03" };
    struct err e;
    assert_int_equal(cmp(src, N(src), here, N(here), &e), -EINVAL);
    assert_non_null(strstr(e.msg, "--net 2"));
    assert_non_null(strstr(e.msg, "mac=52:54:00:00:00:02"));
    assert_non_null(strstr(e.msg, "mac=52:54:00:00:00:03"));
    /* A missing NIC is still a difference. */
    assert_int_equal(cmp(src, N(src), here, 4, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "machine options"));
}

static void test_disk_inactive_ignored(void **state)
{
    (void)state;
    char *src[] = { "--kernel", "k", "--disk", "a.qcow2,format=qcow2",
                    "--disk", "b.qcow2,format=qcow2,slot=5" };
    char *here[] = { "--kernel", "k", "--disk", "a.qcow2,format=qcow2,inactive=on",
                     "--disk=b.qcow2,inactive=on,format=qcow2,slot=5" };
    char *other[] = { "--kernel", "k", "--disk", "a.qcow2,format=qcow2,readonly=on,inactive=on",
                      "--disk", "b.qcow2,format=qcow2,slot=5" };
    struct err e;
    assert_int_equal(cmp(src, N(src), here, N(here), &e), 0);
    assert_int_equal(cmp(here, N(here), src, N(src), &e), 0);
    /* Other disk options still count. */
    assert_int_equal(cmp(src, N(src), other, N(other), &e), -EINVAL);
    assert_non_null(strstr(e.msg, "readonly=on"));
    assert_null(strstr(e.msg, "inactive"));
}

/* A malloc'd argv as snapshot_cmdline keeps it. */
static char **dup_argv(char **a, int n)
{
    char **v = calloc((size_t)n + 1, sizeof(char *));
    assert_non_null(v);
    for (int i = 0; i < n; i++)
        assert_non_null(v[i] = strdup(a[i]));
    return v;
}

static void test_set_taps(void **state)
{
    (void)state;
    char *a[] = { "--kernel", "k", "--append", "--net", "--net", "mac=52:54:00:00:00:01,tap=x",
                  "--net=tap=y", "--net", "tap=z" };
    char **v = dup_argv(a, N(a));
    const char *taps[] = { "n1", "n2" };
    struct err e = { 0 };
    assert_int_equal(snap_machine_set_taps(N(a), v, taps, 2, &e), 0);
    /* --append's value "--net" is not a NIC. */
    assert_string_equal(v[3], "--net");
    assert_string_equal(v[5], "tap=n1,mac=52:54:00:00:00:01");
    assert_string_equal(v[6], "--net=tap=n2");
    assert_string_equal(v[8], "tap=z");
    snap_args_free(v, N(a));
}

static void test_set_taps_errors(void **state)
{
    (void)state;
    char *a[] = { "--kernel", "k", "--net", "tap=x" };
    char *b[] = { "--kernel", "k", "--net", "mac=52:54:00:00:00:01" };
    const char *taps[] = { "n1", "n2" };
    struct err e = { 0 };
    char **v = dup_argv(a, N(a));
    assert_int_equal(snap_machine_set_taps(N(a), v, taps, 2, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "--net-tap n2"));
    assert_non_null(strstr(e.msg, "only 1 --net"));
    snap_args_free(v, N(a));
    memset(&e, 0, sizeof(e));
    v = dup_argv(b, N(b));
    assert_int_equal(snap_machine_set_taps(N(b), v, taps, 1, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "no tap="));
    assert_string_equal(v[3], "mac=52:54:00:00:00:01");
    snap_args_free(v, N(b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_net_tap_differs_accepted),
        cmocka_unit_test(test_net_mac_differs_refused),
        cmocka_unit_test(test_disk_inactive_ignored),
        cmocka_unit_test(test_set_taps),
        cmocka_unit_test(test_set_taps_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
