/* Domain persistence on disk: atomic writes, loading, files that cannot be
 * loaded, autostart links and run-time state. */
#include <dirent.h>
#include <errno.h>
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

#include "daemon/store.h"
#include "store_fixture.h"

static int setup(void **state)
{
    *state = store_fixture_new("test_store");
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    return store_fixture_free(*state);
}

static char *slurp(const char *path)
{
    char *buf = NULL;
    size_t len;
    struct err e = { 0 };
    if (store_read_file(path, 1 << 20, &buf, &len, &e) < 0)
        return NULL;
    return buf;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    if (d)
        closedir(d);
    return n;
}

static void test_layout(void **state)
{
    struct store_fixture *f = *state;
    struct stat st;
    char p[256];
    snprintf(p, sizeof(p), "%s/qemu/autostart", f->config);
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_string_equal(f->s.run_dir + strlen(f->run), "/qemu");
    snprintf(p, sizeof(p), "%s/qemu/save", f->state);
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    char save[256];
    assert_int_equal(store_managed_save_path(&f->s, "vm1", save, sizeof(save)), 0);
    snprintf(p, sizeof(p), "%s/qemu/save/vm1.save", f->state);
    assert_string_equal(save, p);
    assert_false(store_has_managed_save(&f->s, "vm1"));
    FILE *fp = fopen(save, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_true(store_has_managed_save(&f->s, "vm1"));
    char sock[108];
    uint8_t uuid[16];
    memset(uuid, 0xab, sizeof(uuid));
    assert_int_equal(store_sock_path(&f->s, "vm1", uuid, sock, sizeof(sock)), 0);
    snprintf(p, sizeof(p), "%s/qemu/vm1.sock", f->run);
    assert_string_equal(sock, p);
    /* A name too long for a socket address: the uuid stands in. */
    char longname[200];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(store_sock_path(&f->s, longname, uuid, sock, sizeof(sock)), 0);
    snprintf(p, sizeof(p), "%s/qemu/abababab-abab-abab-abab-abababababab.sock", f->run);
    assert_string_equal(sock, p);
}

static void test_atomic_replace(void **state)
{
    struct store_fixture *f = *state;
    struct err e = { 0 };
    char p[256];
    assert_int_equal(store_save_def(&f->s, "vm1", "<domain>one</domain>", &e), 0);
    assert_int_equal(store_save_def(&f->s, "vm1", "<domain>two</domain>", &e), 0);
    snprintf(p, sizeof(p), "%s/qemu/vm1.xml", f->config);
    char *text = slurp(p);
    assert_non_null(text);
    assert_string_equal(text, "<domain>two</domain>");
    free(text);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* No temporary file is left behind: the folder holds the definition
     * and the autostart folder only. */
    snprintf(p, sizeof(p), "%s/qemu", f->config);
    assert_int_equal(count_entries(p), 2);
}

static void test_bad_names(void **state)
{
    struct store_fixture *f = *state;
    struct err e = { 0 };
    assert_int_equal(store_save_def(&f->s, "../evil", "x", &e), -EINVAL);
    err_clear(&e);
    assert_int_equal(store_save_def(&f->s, ".hidden", "x", &e), -EINVAL);
    err_clear(&e);
    assert_int_equal(store_save_def(&f->s, "", "x", &e), -EINVAL);
}

struct seen {
    int n;
    char names[8][32];
    bool autostart[8];
};

/* Accepts <domain>, refuses anything else as a parser would. */
static int load_cb(void *opaque, const char *name, const char *path, const char *xml,
                   size_t len, bool autostart, struct err *e)
{
    struct seen *s = opaque;
    if (strncmp(xml, "<domain>", 8) != 0)
        return err_set(e, EINVAL, "not a domain");
    assert_true(s->n < 8);
    snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
    s->autostart[s->n] = autostart;
    s->n++;
    return 0;
}

static void test_load_and_corrupt(void **state)
{
    struct store_fixture *f = *state;
    struct err e = { 0 };
    char p[256];
    assert_int_equal(store_save_def(&f->s, "good", "<domain>g</domain>", &e), 0);
    assert_int_equal(store_save_def(&f->s, "bad", "garbage", &e), 0);
    assert_int_equal(store_set_autostart(&f->s, "good", true, &e), 0);
    /* Not a definition: ignored. */
    snprintf(p, sizeof(p), "%s/qemu/notes.txt", f->config);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs("hello", fp);
    fclose(fp);

    struct seen s = { 0 };
    assert_int_equal(store_load_defs(&f->s, load_cb, &s), 1);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.names[0], "good");
    assert_true(s.autostart[0]);
    /* The file that could not be loaded is still there. */
    snprintf(p, sizeof(p), "%s/qemu/bad.xml", f->config);
    char *text = slurp(p);
    assert_non_null(text);
    assert_string_equal(text, "garbage");
    free(text);
}

static void test_autostart_links(void **state)
{
    struct store_fixture *f = *state;
    struct err e = { 0 };
    char link[256], target[256], buf[256];
    assert_int_equal(store_save_def(&f->s, "vm1", "<domain/>", &e), 0);
    assert_false(store_get_autostart(&f->s, "vm1"));
    assert_int_equal(store_set_autostart(&f->s, "vm1", true, &e), 0);
    /* Twice is fine. */
    assert_int_equal(store_set_autostart(&f->s, "vm1", true, &e), 0);
    assert_true(store_get_autostart(&f->s, "vm1"));
    snprintf(link, sizeof(link), "%s/qemu/autostart/vm1.xml", f->config);
    snprintf(target, sizeof(target), "%s/qemu/vm1.xml", f->config);
    ssize_t n = readlink(link, buf, sizeof(buf) - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, target);
    assert_int_equal(store_set_autostart(&f->s, "vm1", false, &e), 0);
    assert_false(store_get_autostart(&f->s, "vm1"));
    assert_int_equal(store_set_autostart(&f->s, "vm1", false, &e), 0);

    /* Deleting a definition removes its link too. */
    assert_int_equal(store_set_autostart(&f->s, "vm1", true, &e), 0);
    assert_int_equal(store_delete_def(&f->s, "vm1", &e), 0);
    assert_false(store_get_autostart(&f->s, "vm1"));
    assert_int_equal(access(target, F_OK), -1);
    /* Deleting what is not there is not an error. */
    assert_int_equal(store_delete_def(&f->s, "vm1", &e), 0);
}

struct runs {
    int n;
    pid_t pid[4];
    char name[4][32];
    char xml[4][64];
};

static void run_cb(void *opaque, const char *name, pid_t pid, const char *xml, size_t len)
{
    struct runs *r = opaque;
    assert_true(r->n < 4);
    r->pid[r->n] = pid;
    snprintf(r->name[r->n], sizeof(r->name[0]), "%s", name);
    snprintf(r->xml[r->n], sizeof(r->xml[0]), "%s", xml ? xml : "(null)");
    r->n++;
}

static void test_run_state(void **state)
{
    struct store_fixture *f = *state;
    struct err e = { 0 };
    char p[256];
    assert_int_equal(store_save_run(&f->s, "vm1", 4242, "<domain id='1'/>", &e), 0);
    struct runs r = { 0 };
    store_load_runs(&f->s, run_cb, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.pid[0], 4242);
    assert_string_equal(r.name[0], "vm1");
    assert_string_equal(r.xml[0], "<domain id='1'/>");

    /* A pid file with junk gives pid 0, for the caller to clean up. */
    snprintf(p, sizeof(p), "%s/qemu/vm1.pid", f->run);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs("12abc\n", fp);
    fclose(fp);
    memset(&r, 0, sizeof(r));
    store_load_runs(&f->s, run_cb, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.pid[0], 0);

    store_clear_run(&f->s, "vm1");
    memset(&r, 0, sizeof(r));
    store_load_runs(&f->s, run_cb, &r);
    assert_int_equal(r.n, 0);
    snprintf(p, sizeof(p), "%s/qemu", f->run);
    assert_int_equal(count_entries(p), 0);
}

static void test_read_limits(void **state)
{
    struct store_fixture *f = *state;
    struct err e = { 0 };
    char p[256], *buf;
    size_t len;
    assert_int_equal(store_write_atomic(f->s.run_dir, "big", "0123456789", 10, &e), 0);
    snprintf(p, sizeof(p), "%s/big", f->s.run_dir);
    assert_int_equal(store_read_file(p, 9, &buf, &len, &e), -EFBIG);
    err_clear(&e);
    assert_int_equal(store_read_file(p, 10, &buf, &len, &e), 0);
    assert_int_equal(len, 10);
    free(buf);
    err_clear(&e);
    assert_int_equal(store_read_file(f->s.run_dir, 10, &buf, &len, &e), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_and_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_autostart_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_limits, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
