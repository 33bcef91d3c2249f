/* A pool's XML must read back as the same pool: regressions found by
 * fuzz/fuzz_storage_xml.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "daemon/storage.h"

static struct storage_pool *parse(const char *xml)
{
    struct storage_pool *p = NULL;
    struct err e = { 0 };
    if (storage_pool_parse(xml, &p, &e) < 0)
        fail_msg("pool XML refused: %s", e.msg);
    return p;
}

/* Removing the trailing '/' of "/var/lib/x   /" left blanks at the end,
 * which the parser trims when it reads the pool's own XML. */
static void test_path_blanks_before_slash(void **st)
{
    struct storage_pool *p = parse("<pool type='dir'><name>p</name>"
                                   "<uuid>0f7c3d0e-1111-4222-8333-944455556666</uuid>"
                                   "<target><path>/var/lib/x   /  </path></target></pool>");
    assert_string_equal(p->path, "/var/lib/x");
    struct storage_pool_usage u = { 1, 2, 3 };
    char *xml = storage_pool_format(p, &u);
    assert_non_null(xml);
    struct storage_pool *q = parse(xml);
    assert_string_equal(q->path, p->path);
    char *again = storage_pool_format(q, &u);
    assert_string_equal(again, xml);
    free(again);
    free(xml);
    storage_pool_free(q);
    storage_pool_free(p);
}

/* Blanks inside a path are kept. */
static void test_path_inner_blanks_kept(void **st)
{
    struct storage_pool *p = parse("<pool type='dir'><name>p</name>"
                                   "<target><path>/srv/my pool//a/</path></target></pool>");
    assert_string_equal(p->path, "/srv/my pool/a");
    storage_pool_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_blanks_before_slash),
        cmocka_unit_test(test_path_inner_blanks_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
