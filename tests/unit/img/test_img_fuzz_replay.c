/* Replays the fuzz targets over saved regression inputs and over
 * deterministic mutations of real images: no crash, no hang, no runaway
 * file growth (the file size after repair stays bounded). */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "img/blk.h"

int fuzz_read_one(const uint8_t *data, size_t size);
int fuzz_check_one(const uint8_t *data, size_t size);

#ifndef FUZZ_DATA_DIR
#error FUZZ_DATA_DIR must name tests/data/img/fuzz
#endif

static void test_regressions(void **st)
{
    DIR *d = opendir(FUZZ_DATA_DIR);
    assert_non_null(d);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", FUZZ_DATA_DIR, de->d_name);
        FILE *f = fopen(p, "rb");
        assert_non_null(f);
        static uint8_t buf[1 << 20];
        size_t len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        fuzz_read_one(buf, len);
        fuzz_check_one(buf, len);
        n++;
    }
    closedir(d);
    assert_true(n > 0);
}

static uint64_t rs = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

/* Flips bytes of the metadata of small images in every layout. */
static void test_mutations(void **st)
{
    char dir[] = "/tmp/cvirt-fuzz-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p[256];
    snprintf(p, sizeof p, "%s/seed.qcow2", dir);
    static const uint32_t cs[] = { 512, 1024, 4096 };
    for (size_t k = 0; k < 3; k++) {
        struct blk_create_opts o = { .size = 256 << 10, .cluster_size = cs[k],
                                     .refcount_bits = k == 1 ? 1 : 16, .compat = k == 2 ? 2 : 3 };
        struct err e = {0};
        assert_int_equal(blk_create("qcow2", p, &o, &e), 0);
        struct blk *b;
        assert_int_equal(blk_open(&b, p, "qcow2", BLK_O_RDWR, NULL, &e), 0);
        uint8_t data[4096]; /* a whole cluster for the compressed write */
        memset(data, 0x5a, sizeof data);
        assert_int_equal(blk_pwrite(b, data, sizeof data, 5000, &e), 0);
        assert_int_equal(blk_write_compressed(b, 64 * cs[k], data, cs[k], &e), 0);
        blk_close(b);
        FILE *f = fopen(p, "rb");
        static uint8_t img[1 << 16], mut[1 << 16];
        size_t len = fread(img, 1, sizeof img, f);
        fclose(f);
        for (int i = 0; i < 400; i++) {
            memcpy(mut, img, len);
            int flips = 1 + (int)(rnd() % 4);
            for (int j = 0; j < flips; j++) {
                /* mostly the header and the first tables */
                size_t at = rnd() % (i % 2 ? len : (len < 8 * cs[k] ? len : 8 * cs[k]));
                mut[at] ^= (uint8_t)(1u << (rnd() % 8));
            }
            fuzz_read_one(mut, len);
            fuzz_check_one(mut, len);
        }
    }
    remove(p);
    remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regressions),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
