/* Snapshot metadata: <domainsnapshot> both ways, names, hostile documents,
 * and the files under CONFIG/qemu/snapshot/DOMAIN (current, listing,
 * removal). */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/domain_snapshot.h"
#include "daemon/store.h"
#include "store_fixture.h"

static int setup(void **state)
{
    *state = store_fixture_new("test_dsnap");
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    return store_fixture_free(*state);
}

static struct snap *make(const char *name, const char *parent, const char *state)
{
    struct snap *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->name = strdup(name);
    s->parent = parent ? strdup(parent) : NULL;
    snprintf(s->state, sizeof(s->state), "%s", state);
    s->ctime = 1700000000;
    s->disks = calloc(1, sizeof(char *));
    s->disks[0] = strdup("vda");
    s->ndisks = 1;
    s->domxml = strdup("<domain type='kvm'><name>d1</name></domain>");
    return s;
}

static void test_roundtrip(void **state)
{
    (void)state;
    struct snap *s = make("s1", "s0", "running");
    s->desc = strdup("a <tricky> & \"quoted\" one");
    s->memory = true;
    char *xml = snap_format(s);
    assert_non_null(xml);
    assert_non_null(strstr(xml, "<name>s1</name>"));
    assert_non_null(strstr(xml, "&lt;tricky&gt; &amp;"));
    assert_non_null(strstr(xml, "<memory snapshot=\"internal\"/>"));
    assert_non_null(strstr(xml, "<creationTime>1700000000</creationTime>"));
    struct snap *p;
    struct err e = { 0 };
    assert_int_equal(snap_parse(xml, strlen(xml), false, &p, &e), 0);
    assert_string_equal(p->name, "s1");
    assert_string_equal(p->parent, "s0");
    assert_string_equal(p->desc, s->desc);
    assert_string_equal(p->state, "running");
    assert_true(p->memory);
    assert_int_equal(p->ctime, 1700000000);
    assert_int_equal(p->ndisks, 1);
    assert_string_equal(p->disks[0], "vda");
    assert_non_null(strstr(p->domxml, "<name>d1</name>"));
    /* Formatting what was parsed gives the same document. */
    char *again = snap_format(p);
    assert_string_equal(again, xml);
    free(again);
    free(xml);
    snap_free(p);
    snap_free(s);
}

static void test_client_input(void **state)
{
    (void)state;
    const char *in = "<domainsnapshot><name>x1</name><description>d</description>"
                     "<memory snapshot='no'/><domain><junk/></domain></domainsnapshot>";
    struct snap *s;
    struct err e = { 0 };
    assert_int_equal(snap_parse(in, strlen(in), true, &s, &e), 0);
    assert_string_equal(s->name, "x1");
    assert_true(s->memory_no);
    assert_null(s->domxml);          /* a client's <domain> is not taken */
    snap_free(s);
    /* A client may leave the name out; a stored file may not. */
    const char *noname = "<domainsnapshot/>";
    assert_int_equal(snap_parse(noname, strlen(noname), true, &s, &e), 0);
    assert_null(s->name);
    snap_free(s);
    assert_int_equal(snap_parse(noname, strlen(noname), false, &s, &e), -EINVAL);
}

static void test_hostile(void **state)
{
    (void)state;
    struct snap *s;
    struct err e = { 0 };
    const char *bad[] = {
        "", "not xml", "<domain/>", "<domainsnapshot><name>../etc</name></domainsnapshot>",
        "<domainsnapshot><name>.hidden</name></domainsnapshot>",
        "<domainsnapshot><name></name></domainsnapshot>",
        "<domainsnapshot><name>a\x01</name></domainsnapshot>",
        "<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><domainsnapshot><name>&e;</name>"
        "</domainsnapshot>",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        e = (struct err){ 0 };
        assert_true(snap_parse(bad[i], strlen(bad[i]), true, &s, &e) < 0);
    }
    /* More disks than the limit. */
    size_t cap = 64 + 40 * (SNAP_DISKS_MAX + 2);
    char *many = malloc(cap);
    size_t n = (size_t)snprintf(many, cap, "<domainsnapshot><name>m</name><disks>");
    for (int i = 0; i < SNAP_DISKS_MAX + 1; i++)
        n += (size_t)snprintf(many + n, cap - n, "<disk name='v%d'/>", i);
    n += (size_t)snprintf(many + n, cap - n, "</disks></domainsnapshot>");
    assert_true(snap_parse(many, n, true, &s, &e) < 0);
    free(many);
}

static void test_names(void **state)
{
    (void)state;
    struct err e = { 0 };
    assert_int_equal(snap_name_check("snap-1 with spaces", &e), 0);
    assert_true(snap_name_check("", &e) < 0);
    assert_true(snap_name_check("a/b", &e) < 0);
    assert_true(snap_name_check(".", &e) < 0);
    assert_true(snap_name_check("..", &e) < 0);
    char longname[SNAP_NAME_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[SNAP_NAME_MAX + 1] = '\0';
    assert_true(snap_name_check(longname, &e) < 0);
    longname[SNAP_NAME_MAX] = '\0';
    assert_int_equal(snap_name_check(longname, &e), 0);
}

static void test_store(void **state)
{
    struct store_fixture *f = *state;
    struct err e = { 0 };
    char **names;
    size_t n;
    assert_int_equal(snap_names(&f->s, "d1", &names, &n), 0);
    assert_int_equal(n, 0);
    assert_null(snap_current(&f->s, "d1"));
    struct snap *a = make("b-second", "a-first", "shutoff");
    struct snap *b = make("a-first", NULL, "shutoff");
    assert_int_equal(snap_save(&f->s, "d1", a, &e), 0);
    assert_int_equal(snap_save(&f->s, "d1", b, &e), 0);
    assert_int_equal(snap_set_current(&f->s, "d1", "b-second", &e), 0);
    assert_int_equal(snap_names(&f->s, "d1", &names, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "a-first");
    assert_string_equal(names[1], "b-second");
    snap_names_free(names, n);
    char *cur = snap_current(&f->s, "d1");
    assert_string_equal(cur, "b-second");
    free(cur);
    struct snap *l;
    assert_int_equal(snap_load(&f->s, "d1", "b-second", &l, &e), 0);
    assert_string_equal(l->parent, "a-first");
    snap_free(l);
    assert_int_equal(snap_load(&f->s, "d1", "nope", &l, &e), -ENOENT);
    assert_int_equal(snap_load(&f->s, "d1", "../d1/a-first", &l, &e), -ENOENT);

    /* A file whose name and content disagree is refused. */
    char dir[PATH_MAX], path[PATH_MAX + 32];
    assert_int_equal(snap_dir(&f->s, "d1", dir, sizeof(dir)), 0);
    snprintf(path, sizeof(path), "%s/other.xml", dir);
    char *xml = snap_format(a);
    FILE *fp = fopen(path, "w");
    fputs(xml, fp);
    fclose(fp);
    free(xml);
    assert_int_equal(snap_load(&f->s, "d1", "other", &l, &e), -EINVAL);
    unlink(path);

    /* current naming a snapshot whose metadata is gone: no current. */
    assert_int_equal(snap_remove(&f->s, "d1", "b-second", &e), 0);
    assert_null(snap_current(&f->s, "d1"));

    /* remove_all drops metadata, state files and both folders. */
    char st[PATH_MAX], sdir[PATH_MAX];
    assert_int_equal(snap_state_path(&f->s, "d1", "a-first", st, sizeof(st)), 0);
    assert_int_equal(snap_state_path(&f->s, "d1", NULL, sdir, sizeof(sdir)), 0);
    assert_non_null(strstr(st, "/lib/cvirt/qemu/snapshot/d1/a-first.state"));
    assert_int_equal(snap_mkdir(sdir, &e), 0);
    fp = fopen(st, "w");
    fclose(fp);
    assert_int_equal(snap_remove_all(&f->s, "d1", &e), 0);
    struct stat sb;
    assert_int_equal(stat(st, &sb), -1);
    assert_int_equal(stat(dir, &sb), -1);
    assert_int_equal(stat(sdir, &sb), -1);
    snap_free(a);
    snap_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_client_input),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_names),
        cmocka_unit_test_setup_teardown(test_store, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
