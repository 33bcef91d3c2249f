/* virtio-blk over a recording transport and a raw file: option parsing,
 * config space, and requests driven through a real split virtqueue in a
 * fake guest memory, good and malformed. Requests complete on the device's
 * I/O threads, so each case waits for the used ring to move. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fake_vm.h"
#include "img/blk.h"
#include "util/evloop.h"
#include "virtio/virtio.h"
#include "vm.h"

#define MEM_SIZE (64ULL << 20)
#define QSIZE 16
#define DESC  0x1000
#define AVAIL 0x2000
#define USED  0x3000
#define HDR   0x10000
#define DATA  0x20000
#define STATUS 0x8000
#define SECTORS 64

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define T_DISCARD 11
#define T_WRITE_ZEROES 13

struct fixture {
    struct vm vm;
    uint8_t *mem;
    struct virtio_dev vd;
    char path[64];
    uint16_t avail_idx;
    struct evloop *loop;        /* for aio=io_uring: completions come here */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->mem = fake_vm_map(&f->vm, MEM_SIZE, 0);
    strcpy(f->path, "/tmp/test_virtio_blk.XXXXXX");
    int fd = mkstemp(f->path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, SECTORS * 512), 0);
    close(fd);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    virtio_dev_fini(&f->vd);
    if (f->loop)
        evloop_free(f->loop);
    unlink(f->path);
    fake_vm_unmap(&f->vm);
    free(f);
    return 0;
}

/* Creates the device with options opts after the path and brings it up. */
static void bring_up(struct fixture *f, const char *opts)
{
    char arg[200];
    struct err e = { 0 };
    snprintf(arg, sizeof(arg), "%s%s", f->path, opts);
    assert_int_equal(virtio_dev_init(&f->vd, &virtio_blk_ops, &f->vm, f->loop, arg, &e), 0);
    static const struct fake_ring ring = { DESC, AVAIL, USED };
    fake_vm_virtio_up(&f->vd, &fake_vm_quiet_transport, ~0ULL, 1, &ring, QSIZE);
}

static void desc(struct fixture *f, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                 uint16_t next)
{
    uint8_t *p = f->mem + DESC + 16 * i;
    memcpy(p, &addr, 8);
    memcpy(p + 8, &len, 4);
    memcpy(p + 12, &flags, 2);
    memcpy(p + 14, &next, 2);
}

static uint16_t used_idx(struct fixture *f)
{
    uint16_t v;
    memcpy(&v, f->mem + USED + 2, 2);
    return v;
}

/* Offers the chain at head 0, kicks and waits for it to come back. */
static void submit(struct fixture *f)
{
    uint16_t want = used_idx(f) + 1, head = 0;
    memcpy(f->mem + AVAIL + 4 + 2 * (f->avail_idx % QSIZE), &head, 2);
    f->avail_idx++;
    memcpy(f->mem + AVAIL + 2, &f->avail_idx, 2);
    fake_vm_kick(&f->vd, 0);
    for (int i = 0; i < 5000 && used_idx(f) != want; i++) {
        struct timespec ts = { 0, 1000000 };
        if (f->loop)
            evloop_run_once(f->loop, 1);
        else
            nanosleep(&ts, NULL);
    }
    assert_int_equal(used_idx(f), want);
}

/* header, data (len bytes, device-writable when dev_writes), status */
static uint8_t request(struct fixture *f, uint32_t type, uint64_t sector, uint32_t len,
                       bool dev_writes)
{
    memcpy(f->mem + HDR, &type, 4);
    memset(f->mem + HDR + 4, 0, 4);
    memcpy(f->mem + HDR + 8, &sector, 8);
    f->mem[STATUS] = 0xff;
    desc(f, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
    if (len) {
        desc(f, 1, DATA, len, VIRTQ_DESC_F_NEXT | (dev_writes ? VIRTQ_DESC_F_WRITE : 0), 2);
        desc(f, 2, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
    } else {
        desc(f, 1, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
    }
    submit(f);
    return f->mem[STATUS];
}

static uint64_t cfg64(struct fixture *f, unsigned off)
{
    uint64_t v = 0;
    virtio_blk_ops.config_read(&f->vd, off, (uint8_t *)&v, 8);
    return v;
}

static uint32_t cfg32(struct fixture *f, unsigned off)
{
    uint32_t v = 0;
    virtio_blk_ops.config_read(&f->vd, off, (uint8_t *)&v, 4);
    return v;
}

static void test_options(void **state)
{
    struct fixture *f = *state;
    static const char *bad[] = { "", ",format=vmdk", ",readonly=maybe", ",bogus=1", ",aio=native",
                                 ",serial=012345678901234567890", ",format=qcow2" };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char arg[200];
        struct err e = { 0 };
        snprintf(arg, sizeof(arg), "%s%s", i ? f->path : "", bad[i]);
        struct virtio_dev vd;
        assert_true(virtio_dev_init(&vd, &virtio_blk_ops, &f->vm, NULL, arg, &e) < 0);
        assert_true(err_is_set(&e));
    }
    struct err e = { 0 };
    struct virtio_dev vd;
    assert_true(virtio_dev_init(&vd, &virtio_blk_ops, &f->vm, NULL, "/nonexistent/disk", &e) < 0);
}

static void test_config_and_features(void **state)
{
    struct fixture *f = *state;
    bring_up(f, ",serial=x,cache=writeback");
    assert_int_equal(cfg64(f, 0), SECTORS);
    assert_int_equal(cfg32(f, 12), 254);
    assert_int_equal(cfg32(f, 20), 512);
    assert_true(cfg32(f, 36) > 0);
    assert_int_equal(cfg32(f, 40), 1);
    assert_true(cfg32(f, 48) > 0);
    uint64_t feat = f->vd.host_features;
    assert_true(feat & (1ULL << 2));    /* SEG_MAX */
    assert_true(feat & (1ULL << 6));    /* BLK_SIZE */
    assert_true(feat & (1ULL << 9));    /* FLUSH */
    assert_true(feat & (1ULL << 13));   /* DISCARD */
    assert_true(feat & (1ULL << 14));   /* WRITE_ZEROES */
    assert_false(feat & (1ULL << 5));   /* RO */
}

static void test_write_read(void **state)
{
    struct fixture *f = *state;
    bring_up(f, "");
    for (unsigned i = 0; i < 1024; i++)
        f->mem[DATA + i] = (uint8_t)(i * 7 + 1);
    assert_int_equal(request(f, T_OUT, 3, 1024, false), 0);
    assert_int_equal(request(f, T_FLUSH, 0, 0, false), 0);
    /* The bytes are in the file where sector 3 starts. */
    FILE *fp = fopen(f->path, "rb");
    uint8_t buf[1024];
    assert_int_equal(fseek(fp, 3 * 512, SEEK_SET), 0);
    assert_int_equal(fread(buf, 1, sizeof(buf), fp), sizeof(buf));
    fclose(fp);
    assert_memory_equal(buf, f->mem + DATA, sizeof(buf));
    memset(f->mem + DATA, 0, 1024);
    assert_int_equal(request(f, T_IN, 3, 1024, true), 0);
    assert_memory_equal(buf, f->mem + DATA, sizeof(buf));
    /* The used length counts the data and the status byte. */
    uint32_t ulen;
    memcpy(&ulen, f->mem + USED + 4 + 8 * ((used_idx(f) - 1) % QSIZE) + 4, 4);
    assert_int_equal(ulen, 1025);
}

static void test_out_of_range_and_odd(void **state)
{
    struct fixture *f = *state;
    bring_up(f, "");
    assert_int_equal(request(f, T_IN, SECTORS, 512, true), 1);
    assert_int_equal(request(f, T_IN, SECTORS - 1, 1024, true), 1);
    assert_int_equal(request(f, T_OUT, UINT64_MAX, 512, false), 1);
    assert_int_equal(request(f, T_IN, SECTORS - 1, 512, true), 0);
    assert_int_equal(request(f, T_IN, 0, 100, true), 1);     /* not whole sectors */
    assert_int_equal(request(f, T_OUT, 0, 513, false), 1);
    assert_int_equal(request(f, 99, 0, 0, false), 2);        /* UNSUPP */
}

static void test_readonly(void **state)
{
    struct fixture *f = *state;
    bring_up(f, ",readonly=on");
    assert_true(f->vd.host_features & (1ULL << 5));
    memset(f->mem + DATA, 0x55, 512);
    assert_int_equal(request(f, T_OUT, 0, 512, false), 1);
    assert_int_equal(request(f, T_IN, 0, 512, true), 0);
    assert_int_equal(f->mem[DATA], 0);
    assert_int_equal(request(f, T_FLUSH, 0, 0, false), 0);
}

static void test_get_id(void **state)
{
    struct fixture *f = *state;
    bring_up(f, ",serial=disk-serial-1");
    memset(f->mem + DATA, 0xee, 20);
    assert_int_equal(request(f, T_GET_ID, 0, 20, true), 0);
    assert_memory_equal(f->mem + DATA, "disk-serial-1\0\0\0\0\0\0\0", 20);
    /* A shorter buffer gets a prefix. */
    memset(f->mem + DATA, 0xee, 20);
    assert_int_equal(request(f, T_GET_ID, 0, 4, true), 0);
    assert_memory_equal(f->mem + DATA, "disk", 4);
    assert_int_equal(f->mem[DATA + 4], 0xee);
}

static void put_range(struct fixture *f, uint64_t sector, uint32_t num, uint32_t flags)
{
    memcpy(f->mem + DATA, &sector, 8);
    memcpy(f->mem + DATA + 8, &num, 4);
    memcpy(f->mem + DATA + 12, &flags, 4);
}

static void test_discard_write_zeroes(void **state)
{
    struct fixture *f = *state;
    bring_up(f, "");
    memset(f->mem + DATA, 0x77, 4096);
    assert_int_equal(request(f, T_OUT, 8, 4096, false), 0);
    put_range(f, 8, 4, 0);
    assert_int_equal(request(f, T_WRITE_ZEROES, 0, 16, false), 0);
    assert_int_equal(request(f, T_IN, 8, 4096, true), 0);
    for (unsigned i = 0; i < 2048; i++)
        assert_int_equal(f->mem[DATA + i], 0);
    assert_int_equal(f->mem[DATA + 2048], 0x77);
    put_range(f, 12, 4, 0);
    assert_int_equal(request(f, T_DISCARD, 0, 16, false), 0);
    put_range(f, 12, 4, 1);     /* unmap on a discard: UNSUPP */
    assert_int_equal(request(f, T_DISCARD, 0, 16, false), 2);
    put_range(f, 12, 4, 4);     /* a reserved flag */
    assert_int_equal(request(f, T_WRITE_ZEROES, 0, 16, false), 2);
    put_range(f, SECTORS - 1, 2, 0);
    assert_int_equal(request(f, T_WRITE_ZEROES, 0, 16, false), 1);
    assert_int_equal(request(f, T_DISCARD, 0, 8, false), 2);   /* not a whole range */
}

/* A request larger than the device's piece size, on raw and qcow2: the
 * pieces land at the right offsets and read back whole. */
static void large_request(struct fixture *f, const char *opts)
{
    const uint32_t len = (3u << 20) + 512;
    bring_up(f, opts);
    for (uint32_t i = 0; i < len; i += 4) {
        uint32_t v = i * 2654435761u;
        memcpy(f->mem + DATA + i, &v, 4);
    }
    assert_int_equal(request(f, T_OUT, 1, len, false), 0);
    uint8_t *copy = malloc(len);
    memcpy(copy, f->mem + DATA, len);
    memset(f->mem + DATA, 0, len);
    assert_int_equal(request(f, T_IN, 1, len, true), 0);
    assert_memory_equal(copy, f->mem + DATA, len);
    free(copy);
}

static void test_large_raw(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(truncate(f->path, 8 << 20), 0);
    large_request(f, "");
}

static void test_large_qcow2(void **state)
{
    struct fixture *f = *state;
    struct blk_create_opts o = { .size = 8 << 20, .size_set = true };
    struct err e = { 0 };
    unlink(f->path);
    assert_int_equal(blk_create("qcow2", f->path, &o, &e), 0);
    large_request(f, ",format=qcow2");
}

static void test_malformed(void **state)
{
    struct fixture *f = *state;
    bring_up(f, "");
    /* A header shorter than 16 bytes: IOERR. */
    desc(f, 0, HDR, 8, VIRTQ_DESC_F_NEXT, 1);
    desc(f, 1, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
    f->mem[STATUS] = 0xff;
    submit(f);
    assert_int_equal(f->mem[STATUS], 1);
    assert_true(virtio_running(&f->vd));
    /* No device-writable status byte: the device needs a reset. */
    desc(f, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
    desc(f, 1, DATA, 512, 0, 0);
    uint16_t before = used_idx(f), head = 0;
    memcpy(f->mem + AVAIL + 4 + 2 * (f->avail_idx % QSIZE), &head, 2);
    f->avail_idx++;
    memcpy(f->mem + AVAIL + 2, &f->avail_idx, 2);
    fake_vm_kick(&f->vd, 0);
    assert_true(f->vd.status & VIRTIO_STATUS_NEEDS_RESET);
    assert_int_equal(used_idx(f), before);
}

/* The open-file flags (from /proc/self/fdinfo) of the descriptor this
 * process holds on path, or -1 when it holds none. */
static long fd_flags_of(const char *path)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    long flags = -1;
    struct dirent *de;
    while (flags < 0 && (de = readdir(d))) {
        char link[300], target[256], info[300];
        snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n < 0)
            continue;
        target[n] = 0;
        if (strcmp(target, path))
            continue;
        snprintf(info, sizeof(info), "/proc/self/fdinfo/%s", de->d_name);
        FILE *fp = fopen(info, "r");
        char line[128];
        while (fp && fgets(line, sizeof(line), fp))
            if (!strncmp(line, "flags:", 6))
                flags = strtol(line + 6, NULL, 8);
        if (fp)
            fclose(fp);
    }
    closedir(d);
    return flags;
}

/* Whether this process holds an io_uring: the device made its ring. */
static bool holds_io_uring(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    bool found = false;
    struct dirent *de;
    while (!found && (de = readdir(d))) {
        char link[300], target[64];
        snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n > 0) {
            target[n] = 0;
            found = strstr(target, "io_uring") != NULL;
        }
    }
    closedir(d);
    return found;
}

static bool fs_takes_direct(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECT);
    if (fd >= 0)
        close(fd);
    return fd >= 0;
}

/* One request whose data sits at guest address data in segments of the
 * given lengths (summing to a whole number of sectors). */
static uint8_t request_segs(struct fixture *f, uint32_t type, uint64_t sector, uint64_t data,
                            const uint32_t *segs, unsigned nsegs)
{
    uint16_t wflag = type == T_IN ? VIRTQ_DESC_F_WRITE : 0;
    memcpy(f->mem + HDR, &type, 4);
    memset(f->mem + HDR + 4, 0, 4);
    memcpy(f->mem + HDR + 8, &sector, 8);
    f->mem[STATUS] = 0xff;
    desc(f, 0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
    for (unsigned i = 0; i < nsegs; i++) {
        desc(f, 1 + i, data, segs[i], VIRTQ_DESC_F_NEXT | wflag, (uint16_t)(2 + i));
        data += segs[i];
    }
    desc(f, 1 + nsegs, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
    submit(f);
    return f->mem[STATUS];
}

/* cache=none: the raw file is opened O_DIRECT where the file system allows
 * it, and guest buffers at any address and of any split still land at the
 * right place (through the bounce buffer) and read back. */
static void test_cache_none(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(truncate(f->path, 1 << 20), 0);
    bring_up(f, ",cache=none");
    long flags = fd_flags_of(f->path);
    assert_true(flags >= 0);
    assert_int_equal(!!(flags & O_DIRECT), fs_takes_direct(f->path));

    static const uint32_t aligned[] = { 4096 }, odd[] = { 100, 3000, 996 };
    static const uint64_t at[] = { DATA, DATA + 8, DATA + 4095 };
    for (unsigned k = 0; k < 3; k++) {
        const uint32_t *segs = k ? odd : aligned;
        unsigned n = k ? 3 : 1;
        for (unsigned i = 0; i < 4096; i++)
            f->mem[at[k] + i] = (uint8_t)(i * 13 + k * 5 + 1);
        assert_int_equal(request_segs(f, T_OUT, 8 + 8 * k, at[k], segs, n), 0);
        uint8_t want[4096], got[4096];
        memcpy(want, f->mem + at[k], sizeof(want));
        FILE *fp = fopen(f->path, "rb");
        assert_int_equal(fseek(fp, (8 + 8 * k) * 512, SEEK_SET), 0);
        assert_int_equal(fread(got, 1, sizeof(got), fp), sizeof(got));
        fclose(fp);
        assert_memory_equal(got, want, sizeof(want));
        memset(f->mem + at[k], 0, 4096);
        assert_int_equal(request_segs(f, T_IN, 8 + 8 * k, at[k], segs, n), 0);
        assert_memory_equal(f->mem + at[k], want, sizeof(want));
    }
    /* Neighbouring sectors were not touched by the odd writes. */
    uint8_t zero[512] = { 0 }, sec[512];
    FILE *fp = fopen(f->path, "rb");
    assert_int_equal(fseek(fp, 7 * 512, SEEK_SET), 0);
    assert_int_equal(fread(sec, 1, sizeof(sec), fp), sizeof(sec));
    assert_memory_equal(sec, zero, sizeof(sec));
    assert_int_equal(fseek(fp, 32 * 512, SEEK_SET), 0);
    assert_int_equal(fread(sec, 1, sizeof(sec), fp), sizeof(sec));
    assert_memory_equal(sec, zero, sizeof(sec));
    fclose(fp);
}

/* A file system without O_DIRECT (tmpfs) still gets a working disk,
 * through the page cache. */
static void test_cache_none_tmpfs(void **state)
{
    struct fixture *f = *state;
    char path[64];
    strcpy(path, "/dev/shm/test_virtio_blk.XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        skip();
    assert_int_equal(ftruncate(fd, SECTORS * 512), 0);
    close(fd);
    if (fs_takes_direct(path)) {
        unlink(path);
        skip();
    }
    unlink(f->path);
    strcpy(f->path, path);
    bring_up(f, ",cache=none");
    long flags = fd_flags_of(f->path);
    assert_true(flags >= 0);
    assert_false(flags & O_DIRECT);
    memset(f->mem + DATA, 0x3c, 512);
    assert_int_equal(request(f, T_OUT, 1, 512, false), 0);
    memset(f->mem + DATA, 0, 512);
    assert_int_equal(request(f, T_IN, 1, 512, true), 0);
    assert_int_equal(f->mem[DATA + 511], 0x3c);
}

/* aio=io_uring with an event loop: reads and writes go through the ring
 * (completions on the loop), on a buffered and an O_DIRECT image, with
 * unaligned buffers and errors left to the threads; results as before. */
static void ring_rounds(struct fixture *f, const char *opts)
{
    bring_up(f, opts);
    assert_true(holds_io_uring());
    for (unsigned k = 0; k < 3; k++) {
        static const uint32_t one[] = { 4096 }, odd[] = { 100, 3000, 996 };
        uint64_t at = k == 2 ? DATA + 8 : DATA;
        const uint32_t *segs = k == 2 ? odd : one;
        unsigned n = k == 2 ? 3 : 1;
        for (unsigned i = 0; i < 4096; i++)
            f->mem[at + i] = (uint8_t)(i * 31 + k);
        uint8_t want[4096];
        memcpy(want, f->mem + at, sizeof(want));
        assert_int_equal(request_segs(f, T_OUT, 8 * k, at, segs, n), 0);
        memset(f->mem + at, 0, 4096);
        assert_int_equal(request_segs(f, T_IN, 8 * k, at, segs, n), 0);
        assert_memory_equal(f->mem + at, want, sizeof(want));
        uint32_t ulen;
        memcpy(&ulen, f->mem + USED + 4 + 8 * ((used_idx(f) - 1) % QSIZE) + 4, 4);
        assert_int_equal(ulen, 4097);
    }
    assert_int_equal(request(f, T_IN, SECTORS, 512, true), 1);
    assert_int_equal(request(f, T_FLUSH, 0, 0, false), 0);
    FILE *fp = fopen(f->path, "rb");
    uint8_t got[4096];
    assert_int_equal(fseek(fp, 8 * 512, SEEK_SET), 0);
    assert_int_equal(fread(got, 1, sizeof(got), fp), sizeof(got));
    fclose(fp);
    for (unsigned i = 0; i < 4096; i++)
        assert_int_equal(got[i], (uint8_t)(i * 31 + 1));
}

static void test_aio_io_uring(void **state)
{
    struct fixture *f = *state;
    f->loop = evloop_new();
    assert_non_null(f->loop);
    ring_rounds(f, ",aio=io_uring");
}

static void test_aio_io_uring_direct(void **state)
{
    struct fixture *f = *state;
    f->loop = evloop_new();
    assert_non_null(f->loop);
    ring_rounds(f, ",aio=io_uring,cache=none");
}

/* The default, aio=threads, makes no ring. */
static void test_aio_default_threads(void **state)
{
    struct fixture *f = *state;
    f->loop = evloop_new();
    assert_non_null(f->loop);
    bring_up(f, "");
    assert_false(holds_io_uring());
}

/* libcvirt-img's O_DIRECT mode on a file whose size is not a multiple of
 * the block: reads stop at the end, a write into the last partial block
 * goes through the bounce buffer and the file keeps its size. */
static void test_direct_unaligned_end(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[1000], got[1000];
    for (unsigned i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 3 + 1);
    FILE *fp = fopen(f->path, "wb");
    assert_int_equal(fwrite(buf, 1, sizeof(buf), fp), sizeof(buf));
    fclose(fp);
    struct blk *b;
    struct err e = { 0 };
    assert_int_equal(blk_open(&b, f->path, "raw", BLK_O_RDWR | BLK_O_DIRECT, NULL, &e), 0);
    assert_int_equal(b->align != 0, fs_takes_direct(f->path));
    assert_int_equal(blk_pread(b, got, sizeof(got), 0, &e), 0);
    assert_memory_equal(got, buf, sizeof(buf));
    assert_int_equal(blk_pread(b, got, 100, 900, &e), 0);
    assert_memory_equal(got, buf + 900, 100);
    assert_int_equal(blk_pwrite(b, "abc", 3, 997, &e), 0);
    assert_int_equal(blk_pwrite(b, "", 0, 0, &e), 0);
    blk_close(b);
    memcpy(buf + 997, "abc", 3);
    fp = fopen(f->path, "rb");
    assert_int_equal(fread(got, 1, sizeof(got), fp), sizeof(got));
    assert_int_equal(fgetc(fp), EOF);
    fclose(fp);
    assert_memory_equal(got, buf, sizeof(buf));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_and_features, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_range_and_odd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discard_write_zeroes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_raw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_qcow2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_none, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_none_tmpfs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_direct_unaligned_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aio_io_uring, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aio_io_uring_direct, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aio_default_threads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
