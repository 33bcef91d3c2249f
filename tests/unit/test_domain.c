/* The domain table and its state machine, without any VMM. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/domain.h"
#include "daemon/domain_conf.h"

static struct domain_def *mkdef(const char *name, uint8_t uuid_byte)
{
    struct domain_def *d = calloc(1, sizeof(*d));
    assert_non_null(d);
    d->id = -1;
    d->name = strdup(name);
    memset(d->uuid, uuid_byte, 16);
    d->memory_kib = d->current_memory_kib = 65536;
    d->vcpus = 1;
    return d;
}

static void test_define_and_lookup(void **state)
{
    struct domain_table t;
    struct err e = { 0 };
    struct domain *d, *d2;
    bool created;
    domain_table_init(&t);
    assert_int_equal(domain_define(&t, mkdef("a", 1), &d, &created, &e), 0);
    assert_true(created);
    assert_int_equal(domain_define(&t, mkdef("b", 2), &d2, &created, &e), 0);
    assert_true(created);
    assert_ptr_equal(domain_find_name(&t, "a"), d);
    assert_ptr_equal(domain_find_name(&t, "b"), d2);
    assert_null(domain_find_name(&t, "c"));
    uint8_t u[16];
    memset(u, 2, 16);
    assert_ptr_equal(domain_find_uuid(&t, u), d2);
    memset(u, 3, 16);
    assert_null(domain_find_uuid(&t, u));
    /* Inactive domains have no id. */
    assert_int_equal(d->id, -1);
    assert_null(domain_find_id(&t, -1));
    assert_int_equal(d->state, DOMAIN_SHUTOFF);
    assert_false(domain_is_active(d));
    domain_table_clear(&t);
}

static void test_define_duplicates(void **state)
{
    struct domain_table t;
    struct err e = { 0 };
    struct domain *d, *x;
    bool created;
    domain_table_init(&t);
    assert_int_equal(domain_define(&t, mkdef("a", 1), &d, &created, &e), 0);

    /* Same name, another uuid. */
    struct domain_def *dup = mkdef("a", 9);
    assert_int_equal(domain_define(&t, dup, &x, &created, &e), -EEXIST);
    assert_non_null(strstr(e.msg, "domain 'a' already exists with uuid 01010101-"));
    domain_def_free(dup);

    /* Same uuid, another name. */
    err_clear(&e);
    dup = mkdef("z", 1);
    assert_int_equal(domain_define(&t, dup, &x, &created, &e), -EEXIST);
    assert_non_null(strstr(e.msg, "domain 'a' is already defined with uuid"));
    domain_def_free(dup);

    /* Same name and uuid: the definition is replaced. */
    err_clear(&e);
    struct domain_def *upd = mkdef("a", 1);
    upd->vcpus = 4;
    assert_int_equal(domain_define(&t, upd, &x, &created, &e), 0);
    assert_false(created);
    assert_ptr_equal(x, d);
    assert_int_equal(d->def->vcpus, 4);
    assert_int_equal(t.n, 1);
    domain_table_clear(&t);
}

static void test_start_stop_ids(void **state)
{
    struct domain_table t;
    struct err e = { 0 };
    struct domain *a, *b;
    bool created;
    domain_table_init(&t);
    assert_int_equal(domain_define(&t, mkdef("a", 1), &a, &created, &e), 0);
    assert_int_equal(domain_define(&t, mkdef("b", 2), &b, &created, &e), 0);

    assert_int_equal(domain_op_check(a, DOMAIN_OP_START, &e), 0);
    assert_int_equal(domain_op_check(a, DOMAIN_OP_DESTROY, &e), -EBUSY);
    assert_string_equal(e.msg, "domain is not running");

    domain_set_running(&t, a, mkdef("a", 1), DOMAIN_RUNNING_BOOTED);
    domain_set_running(&t, b, mkdef("b", 2), DOMAIN_RUNNING_BOOTED);
    assert_true(domain_is_active(a));
    assert_int_equal(a->id, 1);
    assert_int_equal(b->id, 2);
    assert_int_equal(a->live->id, 1);
    assert_ptr_equal(domain_find_id(&t, 2), b);
    assert_int_equal(a->state, DOMAIN_RUNNING);
    assert_int_equal(a->reason, DOMAIN_RUNNING_BOOTED);

    err_clear(&e);
    assert_int_equal(domain_op_check(a, DOMAIN_OP_START, &e), -EBUSY);
    assert_string_equal(e.msg, "domain is already running");

    /* Suspend/resume rules as libvirt's. */
    assert_int_equal(domain_op_check(a, DOMAIN_OP_SUSPEND, &e), 0);
    err_clear(&e);
    assert_int_equal(domain_op_check(a, DOMAIN_OP_RESUME, &e), -EBUSY);
    assert_string_equal(e.msg, "domain is already running");
    domain_set_state(a, DOMAIN_PAUSED, DOMAIN_PAUSED_USER);
    assert_int_equal(domain_op_check(a, DOMAIN_OP_RESUME, &e), 0);
    assert_int_equal(domain_op_check(a, DOMAIN_OP_SUSPEND, &e), 0);

    /* The live definition is shown unless the inactive one is asked for. */
    assert_ptr_equal(domain_current_def(a, false), a->live);
    assert_ptr_equal(domain_current_def(a, true), a->def);

    assert_false(domain_set_stopped(&t, a, DOMAIN_SHUTOFF_CRASHED));
    assert_int_equal(a->state, DOMAIN_SHUTOFF);
    assert_int_equal(a->reason, DOMAIN_SHUTOFF_CRASHED);
    assert_int_equal(a->id, -1);
    assert_null(a->live);
    assert_null(domain_find_id(&t, 1));

    /* A restart gets a new id: libvirt never reuses one while it runs. */
    domain_set_running(&t, a, mkdef("a", 1), DOMAIN_RUNNING_BOOTED);
    assert_int_equal(a->id, 3);
    domain_table_clear(&t);
}

static void test_transient(void **state)
{
    struct domain_table t;
    struct err e = { 0 };
    struct domain *d, *x;
    bool removed;
    domain_table_init(&t);
    assert_int_equal(domain_add_transient(&t, mkdef("tr", 5), &d, &e), 0);
    assert_null(d->def);
    domain_set_running(&t, d, d->live, DOMAIN_RUNNING_BOOTED);
    assert_ptr_equal(domain_current_def(d, true), d->live);

    /* A second create of the same running domain is refused. */
    struct domain_def *dup = mkdef("tr", 5);
    assert_int_equal(domain_add_transient(&t, dup, &x, &e), -EBUSY);
    assert_string_equal(e.msg, "domain 'tr' is already active");
    domain_def_free(dup);

    err_clear(&e);
    assert_int_equal(domain_undefine(&t, d, &removed, &e), -EBUSY);
    assert_string_equal(e.msg, "cannot undefine transient domain");

    /* Stopping a transient domain removes it. */
    assert_true(domain_set_stopped(&t, d, DOMAIN_SHUTOFF_DESTROYED));
    assert_null(domain_find_name(&t, "tr"));
    assert_int_equal(t.n, 0);
    domain_table_clear(&t);
}

static void test_undefine(void **state)
{
    struct domain_table t;
    struct err e = { 0 };
    struct domain *a, *b;
    bool created, removed;
    domain_table_init(&t);
    assert_int_equal(domain_define(&t, mkdef("a", 1), &a, &created, &e), 0);
    assert_int_equal(domain_define(&t, mkdef("b", 2), &b, &created, &e), 0);

    /* An inactive domain goes away. */
    assert_int_equal(domain_undefine(&t, a, &removed, &e), 0);
    assert_true(removed);
    assert_null(domain_find_name(&t, "a"));

    /* A running one becomes transient and stays until it stops. */
    domain_set_running(&t, b, mkdef("b", 2), DOMAIN_RUNNING_BOOTED);
    b->autostart = true;
    assert_int_equal(domain_undefine(&t, b, &removed, &e), 0);
    assert_false(removed);
    assert_null(b->def);
    assert_false(b->autostart);
    assert_ptr_equal(domain_find_name(&t, "b"), b);
    assert_true(domain_set_stopped(&t, b, DOMAIN_SHUTOFF_SHUTDOWN));
    assert_int_equal(t.n, 0);
    domain_table_clear(&t);
}

static void test_uuid_format(void **state)
{
    uint8_t u[16];
    char buf[37];
    for (int i = 0; i < 16; i++)
        u[i] = (uint8_t)(0xf0 + i);
    domain_uuid_format(u, buf);
    assert_string_equal(buf, "f0f1f2f3-f4f5-f6f7-f8f9-fafbfcfdfeff");
}

static void test_list_filter(void **state)
{
    struct domain_table t;
    struct err e = { 0 };
    struct domain *off, *run, *paused, *tr;
    bool created;
    domain_table_init(&t);
    assert_int_equal(domain_define(&t, mkdef("off", 1), &off, &created, &e), 0);
    assert_int_equal(domain_define(&t, mkdef("run", 2), &run, &created, &e), 0);
    assert_int_equal(domain_define(&t, mkdef("paused", 3), &paused, &created, &e), 0);
    assert_int_equal(domain_add_transient(&t, mkdef("tr", 4), &tr, &e), 0);
    domain_set_running(&t, run, mkdef("run", 2), DOMAIN_RUNNING_BOOTED);
    domain_set_running(&t, paused, mkdef("paused", 3), DOMAIN_RUNNING_BOOTED);
    domain_set_state(paused, DOMAIN_PAUSED, DOMAIN_PAUSED_USER);
    domain_set_running(&t, tr, tr->live, DOMAIN_RUNNING_BOOTED);
    off->autostart = true;
    off->managed_save = true;

    /* Which of off, run, paused, tr each filter keeps, as a bit mask. */
    static const struct { unsigned flags; unsigned want; } cases[] = {
        { 0, 0xf },
        { DOMAIN_LIST_ACTIVE | DOMAIN_LIST_INACTIVE, 0xf },   /* virsh list --all */
        { DOMAIN_LIST_ACTIVE, 0xe },                          /* virsh list */
        { DOMAIN_LIST_INACTIVE, 0x1 },
        { DOMAIN_LIST_PERSISTENT, 0x7 },
        { DOMAIN_LIST_TRANSIENT, 0x8 },
        { DOMAIN_LIST_RUNNING, 0xa },
        { DOMAIN_LIST_PAUSED, 0x4 },
        { DOMAIN_LIST_SHUTOFF, 0x1 },
        { DOMAIN_LIST_RUNNING | DOMAIN_LIST_PAUSED, 0xe },
        { DOMAIN_LIST_OTHER, 0x0 },
        { DOMAIN_LIST_AUTOSTART, 0x1 },
        { DOMAIN_LIST_NO_AUTOSTART, 0xe },
        { DOMAIN_LIST_MANAGEDSAVE, 0x1 },
        { DOMAIN_LIST_NO_MANAGEDSAVE, 0xe },
        { DOMAIN_LIST_NO_SNAPSHOT | DOMAIN_LIST_PERSISTENT | DOMAIN_LIST_ACTIVE, 0x6 },
    };
    struct domain *doms[4] = { off, run, paused, tr };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned got = 0;
        for (int k = 0; k < 4; k++)
            got |= (unsigned)domain_list_match(doms[k], cases[i].flags) << k;
        if (got != cases[i].want)
            fail_msg("flags 0x%x: got 0x%x, want 0x%x", cases[i].flags, got, cases[i].want);
    }
    domain_table_clear(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_define_and_lookup),
        cmocka_unit_test(test_define_duplicates),
        cmocka_unit_test(test_start_stop_ids),
        cmocka_unit_test(test_transient),
        cmocka_unit_test(test_undefine),
        cmocka_unit_test(test_uuid_format),
        cmocka_unit_test(test_list_filter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
