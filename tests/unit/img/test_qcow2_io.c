/* qcow2 read/write through the block layer against an in-memory shadow,
 * across versions, cluster sizes and refcount widths; backing chains;
 * zeroes; compression; check and repair. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "img/blk.h"

static char dir[] = "/tmp/cvirt-img-test-XXXXXX";

static const char *path(const char *name)
{
    static char p[4][256];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof p[i], "%s/%s", dir, name);
    return p[i];
}

static uint64_t rnd_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

static void fill(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rnd();
}

static struct blk *open_img(const char *p, unsigned flags)
{
    struct blk *b = NULL;
    struct err e = {0};
    int r = blk_open(&b, p, "qcow2", flags, NULL, &e);
    if (r < 0)
        fail_msg("open %s: %s", p, e.msg);
    return b;
}

static void expect_clean(const char *p)
{
    struct blk *b = open_img(p, BLK_O_CHECK | BLK_O_NO_BACKING);
    struct blk_check_result r = {0};
    struct err e = {0};
    assert_int_equal(blk_check(b, 0, &r, &e), 0);
    assert_int_equal(r.corruptions, 0);
    assert_int_equal(r.leaks, 0);
    blk_close(b);
}

/* Random writes of random sizes, then reads compared with the shadow,
 * before and after reopening. */
static void random_io(uint32_t cs, int compat, int rbits)
{
    const uint64_t size = 8ull << 20;
    struct blk_create_opts o = { .size = size, .cluster_size = cs, .compat = compat,
                                 .refcount_bits = rbits };
    struct err e = {0};
    const char *p = path("rio.qcow2");
    assert_int_equal(blk_create("qcow2", p, &o, &e), 0);
    uint8_t *shadow = calloc(1, size), *buf = malloc(1 << 20);
    struct blk *b = open_img(p, BLK_O_RDWR);
    for (int i = 0; i < 60; i++) {
        uint64_t len = 1 + rnd() % (3 * cs < (1u << 20) ? 3 * cs : (1u << 20));
        uint64_t off = rnd() % (size - len);
        if (i % 7 == 3) {
            assert_int_equal(blk_write_zeroes(b, off, len, &e), 0);
            memset(shadow + off, 0, len);
        } else {
            fill(buf, len);
            assert_int_equal(blk_pwrite(b, buf, len, off, &e), 0);
            memcpy(shadow + off, buf, len);
        }
        if (i % 20 == 19)
            assert_int_equal(blk_flush(b, &e), 0);
    }
    uint8_t *rd = malloc(size);
    assert_int_equal(blk_pread(b, rd, size, 0, &e), 0);
    assert_memory_equal(rd, shadow, size);
    blk_close(b);
    expect_clean(p);
    b = open_img(p, 0);
    memset(rd, 0xaa, size);
    assert_int_equal(blk_pread(b, rd, size, 0, &e), 0);
    assert_memory_equal(rd, shadow, size);
    blk_close(b);
    free(rd);
    free(buf);
    free(shadow);
}

static void test_matrix(void **st)
{
    static const uint32_t sizes[] = { 512, 4096, 65536, 2u << 20 };
    for (size_t i = 0; i < 4; i++) {
        random_io(sizes[i], 3, 16);
        random_io(sizes[i], 2, 16);
    }
    for (int rb = 1; rb <= 64; rb *= 2)
        random_io(rb >= 8 ? 512 : 4096, 3, rb);
}

static void test_backing_chain(void **st)
{
    struct err e = {0};
    struct blk_create_opts o = { .size = 4 << 20, .cluster_size = 65536 };
    assert_int_equal(blk_create("raw", path("base.raw"), &(struct blk_create_opts){ .size = 4 << 20 }, &e), 0);
    struct blk *b;
    assert_int_equal(blk_open(&b, path("base.raw"), "raw", BLK_O_RDWR, NULL, &e), 0);
    uint8_t *base = malloc(4 << 20);
    fill(base, 4 << 20);
    assert_int_equal(blk_pwrite(b, base, 4 << 20, 0, &e), 0);
    blk_close(b);
    o.backing_file = "base.raw";
    o.backing_fmt = "raw";
    assert_int_equal(blk_create("qcow2", path("mid.qcow2"), &o, &e), 0);
    o.backing_file = "mid.qcow2";
    o.backing_fmt = "qcow2";
    assert_int_equal(blk_create("qcow2", path("top.qcow2"), &o, &e), 0);
    b = open_img(path("mid.qcow2"), BLK_O_RDWR);
    uint8_t patch[1000];
    fill(patch, sizeof patch);
    assert_int_equal(blk_pwrite(b, patch, sizeof patch, 100000, &e), 0);
    memcpy(base + 100000, patch, sizeof patch);
    blk_close(b);
    b = open_img(path("top.qcow2"), BLK_O_RDWR);
    assert_non_null(b->backing);
    assert_non_null(b->backing->backing);
    assert_int_equal(blk_write_zeroes(b, 65536, 65536, &e), 0);
    memset(base + 65536, 0, 65536);
    fill(patch, sizeof patch);
    assert_int_equal(blk_pwrite(b, patch, 10, 3 * 65536 - 5, &e), 0);
    memcpy(base + 3 * 65536 - 5, patch, 10);
    uint8_t *rd = malloc(4 << 20);
    assert_int_equal(blk_pread(b, rd, 4 << 20, 0, &e), 0);
    assert_memory_equal(rd, base, 4 << 20);
    blk_close(b);
    expect_clean(path("top.qcow2"));
    free(rd);
    free(base);
}

static void test_backing_loop(void **st)
{
    struct err e = {0};
    struct blk_create_opts o = { .size = 1 << 20, .backing_file = "loop2.qcow2",
                                 .backing_fmt = "qcow2", .unsafe_backing = true };
    assert_int_equal(blk_create("qcow2", path("loop1.qcow2"), &o, &e), 0);
    o.backing_file = "loop1.qcow2";
    assert_int_equal(blk_create("qcow2", path("loop2.qcow2"), &o, &e), 0);
    struct blk *b = NULL;
    assert_true(blk_open(&b, path("loop1.qcow2"), "qcow2", 0, NULL, &e) < 0);
    assert_int_equal(e.code, ELOOP);
    assert_null(b);
}

static void test_compressed(void **st)
{
    for (int type = 0; type < 2; type++) {
        struct err e = {0};
        struct blk_create_opts o = { .size = 1 << 20, .cluster_size = 65536,
                                     .compression = type ? BLK_COMPRESS_ZSTD : BLK_COMPRESS_ZLIB };
        const char *p = path("c.qcow2");
        assert_int_equal(blk_create("qcow2", p, &o, &e), 0);
        struct blk *b = open_img(p, BLK_O_RDWR);
        uint8_t *data = malloc(1 << 20);
        for (int i = 0; i < (1 << 20); i++)     /* compressible text-like data */
            data[i] = (uint8_t)("abcdefgh"[rnd() % 8]);
        for (uint64_t off = 0; off < (1 << 20); off += 65536)
            assert_int_equal(blk_write_compressed(b, off, data + off, 65536, &e), 0);
        struct blk_status s;
        assert_int_equal(blk_block_status(b, 0, 65536, &s, &e), 0);
        assert_true(s.compressed);
        /* overwriting part of a compressed cluster decompresses it */
        memset(data + 70000, 0x5a, 100);
        assert_int_equal(blk_pwrite(b, data + 70000, 100, 70000, &e), 0);
        blk_close(b);
        expect_clean(p);
        b = open_img(p, 0);
        uint8_t *rd = malloc(1 << 20);
        assert_int_equal(blk_pread(b, rd, 1 << 20, 0, &e), 0);
        assert_memory_equal(rd, data, 1 << 20);
        blk_close(b);
        free(rd);
        free(data);
    }
}

static void test_lazy_refcounts_crash(void **st)
{
    struct err e = {0};
    struct blk_create_opts o = { .size = 4 << 20, .lazy_refcounts = true };
    const char *p = path("lazy.qcow2");
    assert_int_equal(blk_create("qcow2", p, &o, &e), 0);
    pid_t pid = fork();
    if (pid == 0) {
        struct blk *b;
        if (blk_open(&b, p, "qcow2", BLK_O_RDWR, NULL, &e) < 0)
            _exit(1);
        uint8_t buf[65536];
        memset(buf, 7, sizeof buf);
        for (int i = 0; i < 20; i++)
            blk_pwrite(b, buf, sizeof buf, (uint64_t)i * 131072, &e);
        blk_flush(b, &e);
        _exit(0);   /* no close: the dirty bit stays set */
    }
    int status;
    waitpid(pid, &status, 0);
    assert_int_equal(WEXITSTATUS(status), 0);
    struct blk *b = open_img(p, 0);
    struct blk_info info;
    assert_int_equal(blk_get_info(b, &info, &e), 0);
    assert_true(info.dirty);
    uint8_t rd[65536];
    assert_int_equal(blk_pread(b, rd, sizeof rd, 19 * 131072, &e), 0);
    assert_int_equal(rd[100], 7);
    blk_close(b);
    b = open_img(p, BLK_O_RDWR);    /* repairs */
    blk_close(b);
    expect_clean(p);
}

static void test_repair_leak(void **st)
{
    struct err e = {0};
    struct blk_create_opts o = { .size = 1 << 20, .cluster_size = 4096 };
    const char *p = path("leak.qcow2");
    assert_int_equal(blk_create("qcow2", p, &o, &e), 0);
    /* raise the refcount of an unused cluster inside the file */
    int fd = open(p, O_RDWR);
    uint8_t one[2] = { 0, 1 }, zero[4096] = {0};
    assert_int_equal(pwrite(fd, zero, sizeof zero, 4 * 4096), 4096);
    assert_int_equal(pwrite(fd, one, 2, 2 * 4096 + 2 * 4), 2);
    close(fd);
    struct blk *b = open_img(p, BLK_O_CHECK | BLK_O_NO_BACKING);
    struct blk_check_result r = {0};
    assert_int_equal(blk_check(b, 0, &r, &e), 0);
    assert_int_equal(r.leaks, 1);
    assert_int_equal(r.corruptions, 0);
    blk_close(b);
    b = open_img(p, BLK_O_CHECK | BLK_O_NO_BACKING | BLK_O_RDWR);
    assert_int_equal(blk_check(b, BLK_CHECK_FIX_LEAKS, &r, &e), 0);
    assert_int_equal(r.leaks_fixed, 1);
    blk_close(b);
    expect_clean(p);
}

static void test_resize(void **st)
{
    struct err e = {0};
    struct blk_create_opts o = { .size = 1 << 20, .cluster_size = 512 };
    const char *p = path("grow.qcow2");
    assert_int_equal(blk_create("qcow2", p, &o, &e), 0);
    struct blk *b = open_img(p, BLK_O_RDWR);
    assert_int_equal(blk_truncate(b, 64 << 20, false, &e), 0);
    uint8_t buf[4096];
    fill(buf, sizeof buf);
    assert_int_equal(blk_pwrite(b, buf, sizeof buf, (64 << 20) - 4096, &e), 0);
    assert_true(blk_truncate(b, 1 << 20, false, &e) < 0);
    blk_close(b);
    expect_clean(p);
    b = open_img(p, 0);
    assert_true(b->size == 64 << 20);
    uint8_t rd[4096];
    assert_int_equal(blk_pread(b, rd, sizeof rd, (64 << 20) - 4096, &e), 0);
    assert_memory_equal(rd, buf, sizeof buf);
    blk_close(b);
}

static int setup(void **st) { return mkdtemp(dir) ? 0 : -1; }
static int teardown(void **st)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matrix),
        cmocka_unit_test(test_backing_chain),
        cmocka_unit_test(test_backing_loop),
        cmocka_unit_test(test_compressed),
        cmocka_unit_test(test_lazy_refcounts_crash),
        cmocka_unit_test(test_repair_leak),
        cmocka_unit_test(test_resize),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
