/* Replays the protocol fuzz targets (fuzz/fuzz_*.c: QMP server, snapshot
 * file, migration receiver, balloon queues, the daemon's QMP client, the
 * client library) over their saved seeds and regressions and over
 * deterministic byte mutations of them, so every build checks what the
 * fuzzers check: a target aborts when an invariant breaks, and a crash or
 * abort fails this test. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#ifndef FUZZ_DATA_DIR
#error FUZZ_DATA_DIR must name tests/data/fuzz
#endif

int fuzz_qmp_one(const uint8_t *data, size_t size);
int fuzz_snapshot_file_one(const uint8_t *data, size_t size);
int fuzz_migrate_stream_one(const uint8_t *data, size_t size);
int fuzz_balloon_one(const uint8_t *data, size_t size);
int fuzz_vmm_client_one(const uint8_t *data, size_t size);
int fuzz_client_reply_one(const uint8_t *data, size_t size);

typedef int (*fuzz_fn)(const uint8_t *data, size_t size);

static uint64_t rs = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

/* Runs fn over every file in FUZZ_DATA_DIR/sub, then over `mutations`
 * copies of each with a few bytes changed. Returns the number of files. */
static int replay(const char *sub, fuzz_fn fn, int mutations)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", FUZZ_DATA_DIR, sub);
    DIR *d = opendir(dir);
    assert_non_null(d);
    static uint8_t buf[1 << 17], mut[1 << 17];
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char p[2048];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        FILE *f = fopen(p, "rb");
        assert_non_null(f);
        size_t len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        fn(buf, len);
        for (int i = 0; i < mutations && len > 0; i++) {
            memcpy(mut, buf, len);
            unsigned flips = 1 + (unsigned)(rnd() % 4);
            for (unsigned k = 0; k < flips; k++)
                mut[rnd() % len] ^= (uint8_t)(1u << (rnd() % 8));
            /* sometimes cut the input short too */
            size_t l = (rnd() % 4 == 0) ? (size_t)(rnd() % len) : len;
            fn(mut, l);
        }
        n++;
    }
    closedir(d);
    return n;
}

static void test_qmp(void **st) { assert_true(replay("qmp", fuzz_qmp_one, 200) >= 3); }
static void test_snapshot_file(void **st)
{
    assert_true(replay("snapshot_file", fuzz_snapshot_file_one, 200) >= 2);
}
static void test_migrate_stream(void **st)
{
    assert_true(replay("migrate_stream", fuzz_migrate_stream_one, 30) >= 3);
}
static void test_balloon(void **st) { assert_true(replay("balloon", fuzz_balloon_one, 100) >= 1); }
static void test_vmm_client(void **st)
{
    assert_true(replay("vmm_client", fuzz_vmm_client_one, 50) >= 2);
}
static void test_client_reply(void **st)
{
    assert_true(replay("client_reply", fuzz_client_reply_one, 100) >= 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qmp),
        cmocka_unit_test(test_snapshot_file),
        cmocka_unit_test(test_migrate_stream),
        cmocka_unit_test(test_balloon),
        cmocka_unit_test(test_vmm_client),
        cmocka_unit_test(test_client_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
