/* The snapshot file format: the state stream, CRC-32C, the header, sparse
 * memory, and refusal of truncated, corrupt, foreign and newer files. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "snapshot/format.h"
#include "snapshot/snapshot_int.h"
#include "snapshot/stream.h"

static char dir[] = "/tmp/test_snapshot_XXXXXX";
static char path[256];

static void test_stream_roundtrip(void **state)
{
    (void)state;
    struct snapbuf b;
    snapbuf_init(&b);
    size_t s = snapbuf_section_begin(&b, SNAP_TAG('T', 'E', 'S', 'T'), 7);
    snapbuf_put_u8(&b, 0xab);
    snapbuf_put_u16(&b, 0x1234);
    snapbuf_put_u32(&b, 0xdeadbeef);
    snapbuf_put_u64(&b, 0x0102030405060708ULL);
    snapbuf_put_str(&b, "hello");
    snapbuf_section_end(&b, s);
    /* Little-endian on the wire, whatever the host. */
    assert_int_equal(b.data[12], 0xab);
    assert_int_equal(b.data[13], 0x34);

    struct snapbuf r, body;
    snapbuf_view(&r, b.data, b.len);
    uint32_t tag, inst;
    assert_int_equal(snapbuf_section_next(&r, &tag, &inst, &body), 1);
    assert_int_equal(tag, SNAP_TAG('T', 'E', 'S', 'T'));
    assert_int_equal(inst, 7);
    assert_int_equal(snapbuf_get_u8(&body), 0xab);
    assert_int_equal(snapbuf_get_u16(&body), 0x1234);
    assert_int_equal(snapbuf_get_u32(&body), 0xdeadbeef);
    assert_true(snapbuf_get_u64(&body) == 0x0102030405060708ULL);
    char *str = snapbuf_get_str(&body, 64);
    assert_string_equal(str, "hello");
    free(str);
    assert_false(body.short_read);
    assert_int_equal(snapbuf_left(&body), 0);
    /* Reading past the end gives zeros and remembers it. */
    assert_int_equal(snapbuf_get_u32(&body), 0);
    assert_true(body.short_read);
    assert_int_equal(snapbuf_section_next(&r, &tag, &inst, &body), 0);
    snapbuf_free(&b);
}

static void test_stream_hostile(void **state)
{
    (void)state;
    /* A section whose length runs past the buffer. */
    uint8_t bad[] = { 'T', 'E', 'S', 'T', 0, 0, 0, 0, 100, 0, 0, 0, 1, 2, 3 };
    struct snapbuf r, body;
    uint32_t tag, inst;
    snapbuf_view(&r, bad, sizeof(bad));
    assert_int_equal(snapbuf_section_next(&r, &tag, &inst, &body), -EINVAL);
    /* A header cut short. */
    snapbuf_view(&r, bad, 7);
    assert_int_equal(snapbuf_section_next(&r, &tag, &inst, &body), -EINVAL);
    /* Strings longer than allowed, longer than the buffer, with a NUL. */
    uint8_t s1[] = { 5, 0, 0, 0, 'a', 'b', 'c', 'd', 'e' };
    snapbuf_view(&r, s1, sizeof(s1));
    assert_null(snapbuf_get_str(&r, 4));
    assert_true(r.short_read);
    snapbuf_view(&r, s1, 6);
    assert_null(snapbuf_get_str(&r, 64));
    uint8_t s2[] = { 3, 0, 0, 0, 'a', 0, 'c' };
    snapbuf_view(&r, s2, sizeof(s2));
    assert_null(snapbuf_get_str(&r, 64));
}

static void test_crc32c(void **state)
{
    (void)state;
    /* The check value of CRC-32C (RFC 3720, B.4). */
    assert_int_equal(snap_crc32c(0, "123456789", 9), 0xe3069283);
    /* 32 bytes of zeros, also from RFC 3720. */
    uint8_t z[32] = { 0 };
    assert_int_equal(snap_crc32c(0, z, sizeof(z)), 0x8a9136aa);
    /* Incremental equals one pass. */
    uint32_t c = snap_crc32c(0, "12345", 5);
    assert_int_equal(snap_crc32c(c, "6789", 4), 0xe3069283);
}

#define RAM_PAGES 64
#define PAGE 4096

/* A snapshot with a small state and RAM where only pages 3 and 40 hold
 * data; returns the state's length. */
static size_t write_sample(uint8_t **ram_out)
{
    struct snapbuf st;
    snapbuf_init(&st);
    size_t s = snapbuf_section_begin(&st, SNAP_TAG('A', 'B', 'C', 'D'), 0);
    for (int i = 0; i < 1000; i++)
        snapbuf_put_u32(&st, (uint32_t)i * 2654435761u);
    snapbuf_section_end(&st, s);
    uint8_t *ram = calloc(RAM_PAGES, PAGE);
    assert_non_null(ram);
    memset(ram + 3 * PAGE, 0x5a, PAGE);
    ram[40 * PAGE + 17] = 1;
    struct err e = { 0 };
    assert_int_equal(snap_file_save(path, &st, ram, RAM_PAGES * PAGE, NULL, &e), 0);
    size_t len = st.len;
    snapbuf_free(&st);
    *ram_out = ram;
    return len;
}

static void test_write_read(void **state)
{
    (void)state;
    uint8_t *ram;
    size_t len = write_sample(&ram);
    struct snap_file f;
    struct err e = { 0 };
    assert_int_equal(snap_file_open(&f, path, &e), 0);
    assert_int_equal(f.h.version, SNAP_FILE_VERSION);
    assert_int_equal(f.state.len, len);
    assert_int_equal(f.h.mem_off % SNAP_FILE_PAGE, 0);
    assert_true(f.h.mem_len == RAM_PAGES * PAGE);
    struct snapbuf body;
    uint32_t tag, inst;
    assert_int_equal(snapbuf_section_next(&f.state, &tag, &inst, &body), 1);
    assert_int_equal(tag, SNAP_TAG('A', 'B', 'C', 'D'));
    for (uint32_t i = 0; i < 1000; i++)
        assert_int_equal(snapbuf_get_u32(&body), i * 2654435761u);

    /* Memory maps over an existing region and reads back equal. */
    uint8_t *guest = mmap(NULL, RAM_PAGES * PAGE, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(guest != MAP_FAILED);
    memset(guest, 0xff, RAM_PAGES * PAGE);
    assert_int_equal(snap_file_map_ram(&f, guest, RAM_PAGES * PAGE, &e), 0);
    assert_memory_equal(guest, ram, RAM_PAGES * PAGE);
    /* Copy-on-write: the guest's writes never reach the file. */
    guest[3 * PAGE] = 0;
    uint8_t b;
    assert_int_equal(pread(f.fd, &b, 1, (off_t)(f.h.mem_off + 3 * PAGE)), 1);
    assert_int_equal(b, 0x5a);
    /* A wrong size is refused. */
    assert_int_equal(snap_file_map_ram(&f, guest, (RAM_PAGES - 1) * PAGE, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "memory"));
    munmap(guest, RAM_PAGES * PAGE);

    /* Zero pages are holes: the first data after the memory start is page 3. */
    off_t data = lseek(f.fd, (off_t)f.h.mem_off, SEEK_DATA);
    assert_true(data >= 0);
    assert_true((uint64_t)data == f.h.mem_off + 3 * PAGE);
    struct stat st;
    assert_int_equal(fstat(f.fd, &st), 0);
    assert_true((uint64_t)st.st_blocks * 512 < (uint64_t)st.st_size / 4);
    snap_file_close(&f);
    free(ram);
}

/* Pages never touched are known to be zero without reading them; touched
 * ones (even written with zeros) must be read. */
static void test_zero_map(void **state)
{
    (void)state;
    const uint64_t len = SNAP_SCAN_CHUNK;
    uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    madvise(m, len, MADV_NOHUGEPAGE);
    m[5 * PAGE] = 1;
    m[9 * PAGE] = 0;
    bool zero[SNAP_SCAN_CHUNK / PAGE];
    snap_ram_zero_map(m, 0, len, NULL, zero);
    assert_false(zero[5]);
    assert_false(zero[9]);
    assert_true(zero[0]);
    assert_true(zero[6]);
    assert_true(zero[len / PAGE - 1]);
    munmap(m, len);
}

/* The machine options in the CONF section: read back as saved; a section
 * that is missing, first in the wrong place, or cut short is refused. */
static void test_config_section(void **state)
{
    (void)state;
    struct snapbuf b;
    snapbuf_init(&b);
    size_t s = snapbuf_section_begin(&b, SNAP_SEC_CONFIG, 0);
    snapbuf_put_u32(&b, 3);
    snapbuf_put_str(&b, "--kernel");
    snapbuf_put_str(&b, "k.elf");
    snapbuf_put_str(&b, "--memory=64M");
    snapbuf_section_end(&b, s);
    int argc;
    char **argv;
    struct err e = { 0 };
    assert_int_equal(snap_state_config(&b, &argc, &argv, &e), 0);
    assert_int_equal(argc, 3);
    assert_string_equal(argv[1], "k.elf");
    assert_null(argv[3]);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    free(argv);

    /* Cut inside the last string: the section length no longer fits. */
    struct snapbuf cut;
    snapbuf_view(&cut, b.data, b.len - 2);
    err_clear(&e);
    assert_int_equal(snap_state_config(&cut, &argc, &argv, &e), -EINVAL);
    /* A count larger than the strings present. */
    b.data[12] = 9;
    err_clear(&e);
    assert_int_equal(snap_state_config(&b, &argc, &argv, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "option"));
    /* An absurd count. */
    b.data[15] = 0x7f;
    err_clear(&e);
    assert_int_equal(snap_state_config(&b, &argc, &argv, &e), -EINVAL);
    snapbuf_free(&b);

    /* Another section first. */
    snapbuf_init(&b);
    s = snapbuf_section_begin(&b, SNAP_SEC_END, 0);
    snapbuf_section_end(&b, s);
    err_clear(&e);
    assert_int_equal(snap_state_config(&b, &argc, &argv, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "configuration is missing"));
    snapbuf_free(&b);
}

static int open_fails(const char *want)
{
    struct snap_file f;
    struct err e = { 0 };
    int r = snap_file_open(&f, path, &e);
    if (r == 0) {
        snap_file_close(&f);
        print_error("opened a bad file\n");
        return 0;
    }
    if (!strstr(e.msg, want) || !strstr(e.msg, path)) {
        print_error("message '%s' lacks '%s' or the path\n", e.msg, want);
        return 0;
    }
    return 1;
}

static void patch(off_t off, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, p, n, off), (ssize_t)n);
    close(fd);
}

static void test_truncated(void **state)
{
    (void)state;
    uint8_t *ram;
    write_sample(&ram);
    free(ram);
    assert_int_equal(truncate(path, 8192 + 3 * PAGE), 0);
    assert_true(open_fails("truncated"));
    assert_int_equal(truncate(path, 100), 0);
    assert_true(open_fails("not a cvirt snapshot"));
}

static void test_corrupt_state(void **state)
{
    (void)state;
    uint8_t *ram;
    write_sample(&ram);
    free(ram);
    uint8_t x = 0x77;
    patch(SNAP_HEADER_SIZE + 100, &x, 1);
    assert_true(open_fails("state checksum mismatch"));
}

static void test_corrupt_header(void **state)
{
    (void)state;
    uint8_t *ram;
    write_sample(&ram);
    free(ram);
    uint8_t x = 0x10;
    patch(50, &x, 1);   /* inside the memory length */
    assert_true(open_fails("header checksum mismatch"));
}

static void test_foreign(void **state)
{
    (void)state;
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 2000; i++)
        fputs("QFI\xfb not a snapshot at all\n", f);
    fclose(f);
    assert_true(open_fails("bad magic"));
}

static void test_newer_version(void **state)
{
    (void)state;
    uint8_t *ram;
    write_sample(&ram);
    free(ram);
    /* A well-formed header of version 2: refused for its version, not as
     * corrupt. */
    uint8_t hdr[SNAP_HEADER_SIZE];
    int fd = open(path, O_RDONLY);
    assert_int_equal(read(fd, hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
    close(fd);
    struct snap_header h;
    struct err e = { 0 };
    assert_int_equal(snap_header_decode(hdr, 1ULL << 30, &h, &e), 0);
    h.version = 2;
    snap_header_encode(&h, hdr);
    patch(0, hdr, sizeof(hdr));
    assert_true(open_fails("version 2 is not supported"));
}

static void test_header_layout(void **state)
{
    (void)state;
    struct snap_header h = {
        .version = SNAP_FILE_VERSION, .state_off = SNAP_HEADER_SIZE, .state_len = 10,
        .mem_off = 8192, .mem_len = 4096,
    };
    uint8_t hdr[SNAP_HEADER_SIZE];
    struct snap_header out;
    struct err e = { 0 };
    snap_header_encode(&h, hdr);
    assert_memory_equal(hdr, "CVIRTSNP", 8);
    assert_int_equal(snap_header_decode(hdr, 12288, &out, &e), 0);
    assert_true(out.mem_off == 8192 && out.state_len == 10);
    /* Misaligned memory, overlapping sections. */
    h.mem_off = 8193;
    snap_header_encode(&h, hdr);
    err_clear(&e);
    assert_int_equal(snap_header_decode(hdr, 1 << 20, &out, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "misaligned"));
    h.mem_off = 4096;
    h.state_len = 10;
    snap_header_encode(&h, hdr);
    err_clear(&e);
    assert_int_equal(snap_header_decode(hdr, 1 << 20, &out, &e), -EINVAL);
    /* A state section whose end wraps around must not pass as "before the
     * memory section". */
    h.state_off = 0xFFFFFFFFFFFFF000ULL;
    h.state_len = 0x2000;
    h.mem_off = 0x1000;
    h.mem_len = 0;
    snap_header_encode(&h, hdr);
    err_clear(&e);
    assert_int_equal(snap_header_decode(hdr, 1 << 20, &out, &e), -EINVAL);
}

/* Lengths that are multiples of 8 but not of 64 are read to their end and
 * no further. */
static void test_zero_page_tail(void **state)
{
    (void)state;
    uint64_t *w = calloc(9, sizeof(*w));
    assert_non_null(w);
    assert_true(snap_page_is_zero(w, 72));
    w[8] = 1;
    assert_false(snap_page_is_zero(w, 72));
    assert_true(snap_page_is_zero(w, 64));
    free(w);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/snap", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    rmdir(dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_roundtrip),
        cmocka_unit_test(test_stream_hostile),
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_header_layout),
        cmocka_unit_test(test_write_read),
        cmocka_unit_test(test_zero_map),
        cmocka_unit_test(test_config_section),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_zero_page_tail),
        cmocka_unit_test(test_corrupt_state),
        cmocka_unit_test(test_corrupt_header),
        cmocka_unit_test(test_foreign),
        cmocka_unit_test(test_newer_version),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
