/* Storage pools and volumes: pool and volume XML, definitions on disk,
 * the life cycle, the volumes of a folder, and the refusals. */
#include <errno.h>
#include <fcntl.h>
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

#include "daemon/storage.h"
#include "daemon/uuid.h"
#include "img/blk.h"

struct fixture {
    char root[64];
    char config[128], run[128], pool[128];
    struct storage_driver d;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->root, sizeof(f->root), "/tmp/test_storage.XXXXXX");
    if (!f || !mkdtemp(f->root))
        return -1;
    snprintf(f->config, sizeof(f->config), "%s/etc/cvirt", f->root);
    snprintf(f->run, sizeof(f->run), "%s/run/cvirt", f->root);
    snprintf(f->pool, sizeof(f->pool), "%s/pool", f->root);
    struct err e = { 0 };
    if (storage_init(&f->d, f->config, f->run, &e) < 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    storage_fini(&f->d);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static char *pool_xml(const char *name, const char *uuid, const char *path)
{
    char *s;
    if (asprintf(&s, "<pool type='dir'><name>%s</name>%s%s%s<target><path>%s</path>"
                 "</target></pool>", name, uuid ? "<uuid>" : "", uuid ? uuid : "",
                 uuid ? "</uuid>" : "", path) < 0)
        return NULL;
    return s;
}

/* ---- pool XML ---- */

static void test_pool_parse_format(void **state)
{
    (void)state;
    struct storage_pool *p, *q;
    struct err e = { 0 };
    const char *xml =
        "<pool type='dir'>\n  <name>images</name>\n"
        "  <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>\n"
        "  <source/>\n  <target>\n    <path>/var//lib/images/</path>\n"
        "    <permissions><mode>0711</mode></permissions>\n  </target>\n</pool>\n";
    assert_int_equal(storage_pool_parse(xml, &p, &e), 0);
    assert_string_equal(p->name, "images");
    assert_string_equal(p->path, "/var/lib/images");
    char u[UUID_STRING_LEN];
    uuid_format(p->uuid, u);
    assert_string_equal(u, "6695eb01-f6a4-8304-79aa-97f2502e193f");
    assert_false(p->active);

    struct storage_pool_usage usage = { 3, 2, 1 };
    char *out = storage_pool_format(p, &usage);
    assert_non_null(out);
    assert_non_null(strstr(out, "<pool type='dir'>"));
    assert_non_null(strstr(out, "<capacity unit='bytes'>3</capacity>"));
    assert_non_null(strstr(out, "<allocation unit='bytes'>2</allocation>"));
    assert_non_null(strstr(out, "<available unit='bytes'>1</available>"));
    assert_non_null(strstr(out, "<path>/var/lib/images</path>"));
    /* What is formatted parses back to the same pool. */
    assert_int_equal(storage_pool_parse(out, &q, &e), 0);
    assert_string_equal(q->name, p->name);
    assert_string_equal(q->path, p->path);
    assert_memory_equal(q->uuid, p->uuid, 16);
    free(out);
    storage_pool_free(q);

    /* The on-disk form has no sizes. */
    out = storage_pool_format(p, NULL);
    assert_null(strstr(out, "capacity"));
    free(out);
    storage_pool_free(p);
}

static void test_pool_parse_escapes_and_uuid(void **state)
{
    (void)state;
    struct storage_pool *p;
    struct err e = { 0 };
    char *xml = pool_xml("a&amp;b", NULL, "/srv/x&lt;y");
    assert_int_equal(storage_pool_parse(xml, &p, &e), 0);
    free(xml);
    assert_string_equal(p->name, "a&b");
    assert_string_equal(p->path, "/srv/x<y");
    assert_false(uuid_is_null(p->uuid));    /* generated */
    char *out = storage_pool_format(p, NULL);
    assert_non_null(strstr(out, "<name>a&amp;b</name>"));
    assert_non_null(strstr(out, "<path>/srv/x&lt;y</path>"));
    free(out);
    storage_pool_free(p);
}

static void test_pool_parse_refusals(void **state)
{
    (void)state;
    static const struct { const char *xml; int code; const char *msg; } bad[] = {
        { "<pool type='logical'><name>a</name><target><path>/x</path></target></pool>",
          ENOTSUP, "unsupported storage pool type 'logical'" },
        { "<pool><name>a</name><target><path>/x</path></target></pool>",
          EINVAL, "type is missing" },
        { "<pool type='dir'><target><path>/x</path></target></pool>",
          EINVAL, "missing pool source name" },
        { "<pool type='dir'><name>a/b</name><target><path>/x</path></target></pool>",
          EINVAL, "cannot contain '/'" },
        { "<pool type='dir'><name>..</name><target><path>/x</path></target></pool>",
          EINVAL, "cannot contain '/'" },
        { "<pool type='dir'><name>a</name></pool>", EINVAL, "missing storage pool target" },
        { "<pool type='dir'><name>a</name><target><path>rel/x</path></target></pool>",
          EINVAL, "must be absolute" },
        { "<pool type='dir'><name>a</name><uuid>nope</uuid><target><path>/x</path>"
          "</target></pool>", EINVAL, "malformed uuid element 'nope'" },
        { "<pool type='dir'><name>a</name>", EINVAL, "(pool_definition)" },
        { "<volume><name>a</name></volume>", EINVAL, "expecting <pool>" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct storage_pool *p = NULL;
        struct err e = { 0 };
        assert_int_equal(storage_pool_parse(bad[i].xml, &p, &e), -bad[i].code);
        assert_null(p);
        if (!strstr(e.msg, bad[i].msg))
            fail_msg("case %zu: '%s' lacks '%s'", i, e.msg, bad[i].msg);
    }
}

/* ---- volume XML ---- */

static void test_vol_parse(void **state)
{
    (void)state;
    struct storage_vol_def d;
    struct err e = { 0 };
    assert_int_equal(storage_vol_parse(
        "<volume><name>k1.qcow2</name><capacity unit='G'>2</capacity>"
        "<allocation unit='KB'>3</allocation>"
        "<target><format type='qcow2'/></target></volume>", &d, &e), 0);
    assert_string_equal(d.name, "k1.qcow2");
    assert_int_equal(d.capacity, 2ull << 30);
    assert_true(d.allocation_set);
    assert_int_equal(d.allocation, 3000);
    assert_string_equal(d.format, "qcow2");
    storage_vol_def_clear(&d);

    /* virsh vol-create-as: bytes without a unit, no format (raw). */
    assert_int_equal(storage_vol_parse(
        "<volume><name>a</name><capacity>1048576</capacity></volume>", &d, &e), 0);
    assert_int_equal(d.capacity, 1048576);
    assert_false(d.allocation_set);
    assert_null(d.format);
    storage_vol_def_clear(&d);
}

static void test_vol_parse_refusals(void **state)
{
    (void)state;
    static const struct { const char *xml; int code; const char *msg; } bad[] = {
        { "<volume><name>a/b</name><capacity>1</capacity></volume>", EINVAL,
          "volume name 'a/b' cannot contain '/'" },
        { "<volume><name></name><capacity>1</capacity></volume>", EINVAL,
          "missing volume name" },
        { "<volume><name>a</name></volume>", EINVAL, "missing capacity" },
        { "<volume><name>a</name><capacity unit='parsec'>1</capacity></volume>", EINVAL,
          "unknown unit 'parsec'" },
        { "<volume><name>a</name><capacity>-1</capacity></volume>", EINVAL,
          "malformed volume capacity '-1'" },
        { "<volume><name>a</name><capacity>12x</capacity></volume>", EINVAL,
          "malformed volume capacity" },
        { "<volume><name>a</name><capacity unit='PiB'>99999</capacity></volume>", ERANGE,
          "too large" },
        { "<volume><name>a</name><capacity>1</capacity><target><format type='vmdk'/>"
          "</target></volume>", ENOTSUP, "unsupported volume format 'vmdk'" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct storage_vol_def d;
        struct err e = { 0 };
        assert_int_equal(storage_vol_parse(bad[i].xml, &d, &e), -bad[i].code);
        assert_null(d.name);
        if (!strstr(e.msg, bad[i].msg))
            fail_msg("case %zu: '%s' lacks '%s'", i, e.msg, bad[i].msg);
    }
}

/* ---- volumes of a folder ---- */

static void write_file(const char *dir, const char *name, const void *data, size_t len,
                       off_t size)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(ftruncate(fd, size), 0);
    close(fd);
}

static void test_vol_list(void **state)
{
    struct fixture *f = *state;
    struct err e = { 0 };
    char path[256], sub[256];
    assert_int_equal(mkdir(f->pool, 0755), 0);
    write_file(f->pool, "b.raw", "hello", 5, 3 << 20);
    snprintf(path, sizeof(path), "%s/a.qcow2", f->pool);
    struct blk_create_opts o = { .size = 5ull << 30, .size_set = true };
    assert_int_equal(blk_create("qcow2", path, &o, &e), 0);
    /* Not volumes: a folder, and a qcow2 header whose tables lie. */
    snprintf(sub, sizeof(sub), "%s/subdir", f->pool);
    assert_int_equal(mkdir(sub, 0755), 0);
    uint8_t hdr[104] = { 'Q', 'F', 'I', 0xfb, 0, 0, 0, 3 };
    hdr[23] = 64;       /* cluster_bits 64 */
    write_file(f->pool, "broken.qcow2", hdr, sizeof(hdr), sizeof(hdr));

    struct storage_vol *v;
    size_t n;
    assert_int_equal(storage_vol_list(f->pool, &v, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].name, "a.qcow2");
    assert_string_equal(v[0].format, "qcow2");
    assert_int_equal(v[0].capacity, 5ull << 30);
    assert_string_equal(v[0].path, path);
    assert_true(v[0].allocation < (1u << 20));
    assert_string_equal(v[1].name, "b.raw");
    assert_string_equal(v[1].format, "raw");
    assert_int_equal(v[1].capacity, 3 << 20);
    assert_int_equal(v[1].physical, 3 << 20);
    assert_true(v[1].allocation < (3u << 20));   /* sparse */

    char *xml = storage_vol_format(&v[0]);
    assert_non_null(strstr(xml, "<format type='qcow2'/>"));
    assert_non_null(strstr(xml, "<capacity unit='bytes'>5368709120</capacity>"));
    free(xml);
    storage_vol_list_free(v, n);

    struct storage_vol one;
    assert_int_equal(storage_vol_get(f->pool, "subdir", &one, &e), -ENOENT);
    assert_int_equal(storage_vol_get(f->pool, "../pool/b.raw", &one, &e), -EINVAL);
    assert_int_equal(storage_vol_get(f->pool, "missing", &one, &e), -ENOENT);
    assert_int_equal(storage_vol_get(f->pool, "b.raw", &one, &e), 0);
    assert_int_equal(one.capacity, 3 << 20);
    storage_vol_clear(&one);
}

static void test_vol_create_delete(void **state)
{
    struct fixture *f = *state;
    struct err e = { 0 };
    assert_int_equal(mkdir(f->pool, 0755), 0);
    struct storage_vol_def d = { .name = "v.qcow2", .capacity = 1ull << 30, .format = "qcow2" };
    struct storage_vol v;
    assert_int_equal(storage_vol_create(f->pool, &d, &v, &e), 0);
    assert_string_equal(v.format, "qcow2");
    assert_int_equal(v.capacity, 1ull << 30);
    storage_vol_clear(&v);
    /* The same name again is refused and the image stays. */
    d.capacity = 4096;
    assert_int_equal(storage_vol_create(f->pool, &d, &v, &e), -EEXIST);
    assert_non_null(strstr(e.msg, "'v.qcow2' already in use"));
    assert_int_equal(storage_vol_get(f->pool, "v.qcow2", &v, &e), 0);
    assert_int_equal(v.capacity, 1ull << 30);
    storage_vol_clear(&v);

    struct storage_vol_def r = { .name = "full.raw", .capacity = 65536,
                                 .allocation = 65536, .allocation_set = true };
    assert_int_equal(storage_vol_create(f->pool, &r, &v, &e), 0);
    assert_string_equal(v.format, "raw");
    assert_int_equal(v.capacity, 65536);
    assert_true(v.allocation >= 65536);
    storage_vol_clear(&v);

    /* Preallocated qcow2: metadata only, or the whole image. */
    struct storage_vol_def pm = { .name = "pm.qcow2", .capacity = 64ull << 20,
                                  .format = "qcow2", .prealloc = true };
    assert_int_equal(storage_vol_create(f->pool, &pm, &v, &e), 0);
    uint64_t meta_alloc = v.allocation;
    assert_true(meta_alloc < (64u << 20));
    storage_vol_clear(&v);
    struct storage_vol_def pf = { .name = "pf.qcow2", .capacity = 64ull << 20,
                                  .allocation = 64ull << 20, .allocation_set = true,
                                  .format = "qcow2", .prealloc = true };
    assert_int_equal(storage_vol_create(f->pool, &pf, &v, &e), 0);
    assert_true(v.allocation >= (64u << 20));
    assert_true(v.allocation > meta_alloc);
    storage_vol_clear(&v);
    struct storage_vol_def praw = { .name = "p.raw", .capacity = 4096, .prealloc = true };
    err_clear(&e);
    assert_int_equal(storage_vol_create(f->pool, &praw, &v, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "only available with qcow2"));

    struct storage_vol_def slash = { .name = "../escape", .capacity = 1 };
    assert_int_equal(storage_vol_create(f->pool, &slash, &v, &e), -EINVAL);
    char path[256];
    snprintf(path, sizeof(path), "%s/escape", f->root);
    assert_int_equal(access(path, F_OK), -1);

    assert_int_equal(storage_vol_delete(f->pool, "full.raw", &e), 0);
    assert_int_equal(storage_vol_get(f->pool, "full.raw", &v, &e), -ENOENT);
    assert_int_equal(storage_vol_delete(f->pool, "full.raw", &e), -ENOENT);
    assert_int_equal(storage_vol_delete(f->pool, "a/b", &e), -EINVAL);
}

static void test_vol_create_from(void **state)
{
    struct fixture *f = *state;
    struct err e = { 0 };
    assert_int_equal(mkdir(f->pool, 0755), 0);
    /* A raw source with data in two places and a hole between. */
    write_file(f->pool, "src.raw", "start", 5, 8 << 20);
    char path[256];
    snprintf(path, sizeof(path), "%s/src.raw", f->pool);
    int fd = open(path, O_WRONLY);
    assert_int_equal(pwrite(fd, "end", 3, (8 << 20) - 3), 3);
    close(fd);

    struct storage_vol_def d = { .name = "copy.qcow2", .capacity = 4096, .format = "qcow2" };
    struct storage_vol v;
    assert_int_equal(storage_vol_create_from(f->pool, &d, path, &v, &e), 0);
    assert_string_equal(v.format, "qcow2");
    assert_int_equal(v.capacity, 8 << 20);      /* the larger of the two */
    assert_true(v.allocation < (4u << 20));     /* the hole stayed a hole */
    struct blk *b;
    assert_int_equal(blk_open(&b, v.path, "qcow2", 0, NULL, &e), 0);
    char buf[8] = "";
    assert_int_equal(blk_pread(b, buf, 5, 0, &e), 0);
    assert_memory_equal(buf, "start", 5);
    assert_int_equal(blk_pread(b, buf, 3, (8 << 20) - 3, &e), 0);
    assert_memory_equal(buf, "end", 3);
    assert_int_equal(blk_pread(b, buf, 8, 4 << 20, &e), 0);
    assert_true(blk_is_zero(buf, 8));
    blk_close(b);
    storage_vol_clear(&v);

    /* A taken name fails and leaves the file; so does a missing source. */
    assert_int_equal(storage_vol_create_from(f->pool, &d, path, &v, &e), -EEXIST);
    struct storage_vol_def d2 = { .name = "other.raw", .capacity = 1 };
    snprintf(path, sizeof(path), "%s/missing", f->pool);
    assert_true(storage_vol_create_from(f->pool, &d2, path, &v, &e) < 0);
    assert_int_equal(storage_vol_get(f->pool, "other.raw", &v, &e), -ENOENT);
}

/* ---- pools ---- */

static void test_define_refusals(void **state)
{
    struct fixture *f = *state;
    struct err e = { 0 };
    struct storage_pool *p, *q;
    char *xml = pool_xml("one", "11111111-2222-3333-4444-555555555555", f->pool);
    assert_int_equal(storage_define(&f->d, xml, &p, &e), 0);
    free(xml);
    /* The same name with another uuid. */
    xml = pool_xml("one", "11111111-2222-3333-4444-666666666666", "/elsewhere");
    assert_int_equal(storage_define(&f->d, xml, &q, &e), -EEXIST);
    assert_non_null(strstr(e.msg, "pool 'one' already exists with uuid "
                                  "11111111-2222-3333-4444-555555555555"));
    free(xml);
    /* The same uuid under another name. */
    memset(&e, 0, sizeof(e));
    xml = pool_xml("two", "11111111-2222-3333-4444-555555555555", "/elsewhere");
    assert_int_equal(storage_define(&f->d, xml, &q, &e), -EEXIST);
    assert_non_null(strstr(e.msg, "already defined with uuid"));
    free(xml);
    /* Another pool on the same folder (written differently). */
    memset(&e, 0, sizeof(e));
    char path2[200];
    snprintf(path2, sizeof(path2), "%s//", f->pool);
    xml = pool_xml("three", NULL, path2);
    assert_int_equal(storage_define(&f->d, xml, &q, &e), -EEXIST);
    assert_non_null(strstr(e.msg, "Storage source conflict with pool: 'one'"));
    free(xml);
    assert_int_equal(f->d.npools, 1);

    /* Redefining with the same name and uuid moves an inactive pool. */
    xml = pool_xml("one", "11111111-2222-3333-4444-555555555555", "/moved");
    assert_int_equal(storage_define(&f->d, xml, &q, &e), 0);
    free(xml);
    assert_ptr_equal(p, q);
    assert_string_equal(p->path, "/moved");
    assert_int_equal(f->d.npools, 1);
}

static void test_lifecycle(void **state)
{
    struct fixture *f = *state;
    struct err e = { 0 };
    struct storage_pool *p;
    char *xml = pool_xml("images", NULL, f->pool);
    assert_int_equal(storage_define(&f->d, xml, &p, &e), 0);
    free(xml);
    assert_true(p->persistent);
    /* Starting a pool whose folder does not exist fails, naming it. */
    assert_int_equal(storage_start(&f->d, p, &e), -ENOENT);
    assert_non_null(strstr(e.msg, f->pool));
    assert_false(p->active);
    memset(&e, 0, sizeof(e));
    assert_int_equal(storage_build(p, &e), 0);
    assert_int_equal(storage_start(&f->d, p, &e), 0);
    assert_true(p->active);
    assert_int_equal(storage_start(&f->d, p, &e), -EBUSY);
    struct storage_pool_usage u;
    assert_int_equal(storage_usage(p, &u, &e), 0);
    assert_true(u.capacity > 0 && u.available <= u.capacity);
    assert_int_equal(storage_set_autostart(&f->d, p, true, &e), 0);
    memset(&e, 0, sizeof(e));
    assert_int_equal(storage_undefine(&f->d, p, &e), -EBUSY);
    assert_non_null(strstr(e.msg, "still active"));

    /* A path inside the running pool finds it. */
    char vpath[256];
    const char *name;
    snprintf(vpath, sizeof(vpath), "%s/disk.img", f->pool);
    assert_ptr_equal(storage_pool_of_path(&f->d, vpath, &name), p);
    assert_string_equal(name, "disk.img");
    snprintf(vpath, sizeof(vpath), "%s/sub/disk.img", f->pool);
    assert_null(storage_pool_of_path(&f->d, vpath, &name));

    /* A restarted daemon finds the pool defined, autostarted, running. */
    storage_fini(&f->d);
    assert_int_equal(storage_init(&f->d, f->config, f->run, &e), 0);
    assert_int_equal(f->d.npools, 1);
    p = storage_find_name(&f->d, "images");
    assert_non_null(p);
    assert_true(p->active && p->autostart && p->persistent);

    assert_int_equal(storage_destroy(&f->d, p, &e), 0);
    assert_null(storage_pool_of_path(&f->d, vpath, &name));
    assert_int_equal(storage_set_autostart(&f->d, p, false, &e), 0);
    storage_fini(&f->d);
    assert_int_equal(storage_init(&f->d, f->config, f->run, &e), 0);
    p = storage_find_name(&f->d, "images");
    assert_non_null(p);
    assert_false(p->active || p->autostart);
    assert_int_equal(storage_undefine(&f->d, p, &e), 0);
    assert_int_equal(f->d.npools, 0);
    char def[256];
    snprintf(def, sizeof(def), "%s/storage/images.xml", f->config);
    assert_int_equal(access(def, F_OK), -1);
}

static void test_transient(void **state)
{
    struct fixture *f = *state;
    struct err e = { 0 };
    struct storage_pool *p;
    char *xml = pool_xml("tmp", NULL, f->pool);
    assert_int_equal(storage_create_transient(&f->d, xml, &p, &e), -ENOENT);
    assert_int_equal(mkdir(f->pool, 0755), 0);
    assert_int_equal(storage_create_transient(&f->d, xml, &p, &e), 0);
    free(xml);
    assert_true(p->active);
    assert_false(p->persistent);
    assert_int_equal(storage_set_autostart(&f->d, p, true, &e), -EBUSY);
    assert_int_equal(storage_undefine(&f->d, p, &e), -EBUSY);
    assert_int_equal(storage_destroy(&f->d, p, &e), 0);
    assert_null(storage_find_name(&f->d, "tmp"));
}

/* With --root, a pool in libvirt's data folder is kept under the root. */
static void test_root_mapping(void **state)
{
    struct fixture *f = *state;
    struct err e = { 0 };
    struct storage_pool *p;
    f->d.root = strdup(f->root);
    char *xml = pool_xml("default", NULL, "/var/lib/libvirt/images");
    assert_int_equal(storage_define(&f->d, xml, &p, &e), 0);
    free(xml);
    char want[256];
    snprintf(want, sizeof(want), "%s/var/lib/libvirt/images", f->root);
    assert_string_equal(p->path, want);
    /* Both spellings find it; other folders are left as they are. */
    assert_ptr_equal(storage_find_path(&f->d, "/var/lib/libvirt/images/"), p);
    assert_ptr_equal(storage_find_path(&f->d, want), p);
    xml = pool_xml("other", NULL, "/var/lib/libvirtual");
    assert_int_equal(storage_define(&f->d, xml, &p, &e), 0);
    free(xml);
    assert_string_equal(p->path, "/var/lib/libvirtual");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_parse_format),
        cmocka_unit_test(test_pool_parse_escapes_and_uuid),
        cmocka_unit_test(test_pool_parse_refusals),
        cmocka_unit_test(test_vol_parse),
        cmocka_unit_test(test_vol_parse_refusals),
        cmocka_unit_test_setup_teardown(test_vol_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vol_create_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vol_create_from, setup, teardown),
        cmocka_unit_test_setup_teardown(test_define_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transient, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_mapping, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
