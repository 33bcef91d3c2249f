/* cvirt-img bench: qemu-img bench's sequential I/O loop, plus a seeded
 * random-offset mode and a progress file recording how many requests were
 * flushed, for crash tests that kill the writer. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tools/img_cmds.h"

/* The same generator as the crash test's checker (xorshift64). */
static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int record(int fd, uint64_t n)
{
    char line[32];
    int len = snprintf(line, sizeof line, "%llu\n", (unsigned long long)n);
    if (pwrite(fd, line, (size_t)len, 0) != len || fdatasync(fd) < 0)
        return -errno;
    return 0;
}

int img_cmd_bench(int argc, char **argv)
{
    static const struct option lo[] = {
        { "flush-interval", required_argument, NULL, 'F' },
        { "no-drain", no_argument, NULL, 'N' },
        { "pattern", required_argument, NULL, 'P' },
        { "random-seed", required_argument, NULL, 'R' },
        { "progress-file", required_argument, NULL, 'L' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *progress = NULL;
    uint64_t count = 75000, bufsize = 4096, step = 0, offset = 0, flush_every = 0, seed = 0;
    int depth = 64, pattern = 0;
    bool write = false, quiet = false, unsafe = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:d:f:no:qs:S:t:wi:U", lo, NULL)) != -1) {
        uint64_t v = 0;
        if (optarg && c == 'P')
            v = strtoull(optarg, NULL, 0);
        else if (optarg && strchr("cdosSFR", c) && blk_parse_size(optarg, &v) < 0)
            return img_fail(1, "Invalid number '%s'", optarg);
        switch (c) {
        case 'c': count = v; break;
        case 'd': depth = (int)v; break;
        case 'f': fmt = optarg; break;
        case 'o': offset = v; break;
        case 'q': quiet = true; break;
        case 's': bufsize = v; break;
        case 'S': step = v; break;
        case 't': unsafe = !strcmp(optarg, "unsafe"); break;
        case 'w': write = true; break;
        case 'F': flush_every = v; break;
        case 'P': pattern = (int)v; break;
        case 'R': seed = v ? v : 1; break;
        case 'L': progress = optarg; break;
        case 'n': case 'i': case 'N': case 'U': break;
        default: return img_fail(1, "usage: bench [-c count] [-s size] [-S step] [-w] filename");
        }
    }
    if (optind != argc - 1)
        return img_fail(1, "Expecting one image file name");
    if (!bufsize || bufsize > (64u << 20))
        return img_fail(1, "Invalid buffer size");
    if (!step)
        step = bufsize;
    const char *path = argv[optind];
    struct err e = {0};
    if (!fmt) {
        const struct blk_driver *d = blk_probe_file(path, &e);
        if (!d)
            return img_fail_err(1, &e);
        fmt = d->name;
    }
    struct blk *b;
    unsigned fl = (write ? BLK_O_RDWR : 0) | (unsafe ? BLK_O_UNSAFE : 0);
    if (blk_open(&b, path, fmt, fl, NULL, &e) < 0)
        return img_fail_err(1, &e);
    if (b->size < bufsize) {
        blk_close(b);
        return img_fail(1, "Image is smaller than the buffer");
    }
    int pfd = -1;
    if (progress && (pfd = open(progress, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
        blk_close(b);
        return img_fail(1, "Could not open '%s'", progress);
    }
    uint8_t *buf = malloc(bufsize);
    memset(buf, pattern, bufsize);
    if (!quiet)
        printf("Sending %llu %s requests, %llu bytes each, %d in parallel (starting at offset "
               "%llu, step size %llu)\n", (unsigned long long)count, write ? "write" : "read",
               (unsigned long long)bufsize, depth, (unsigned long long)offset,
               (unsigned long long)step);
    fflush(stdout);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t off = offset, slots = (b->size - offset) / bufsize, rs = seed;
    int r = 0;
    for (uint64_t i = 0; r == 0 && i < count; i++) {
        if (seed) {
            off = offset + next_rand(&rs) % slots * bufsize;
            /* each request stamps its index into every sector, so a
             * checker knows which write each sector holds */
            memset(buf, (int)(i * 7 + 1) & 0xff, bufsize);
            for (uint64_t p = 0; p + 8 <= bufsize; p += 512)
                memcpy(buf + p, &i, 8);
        } else if (off + bufsize > b->size) {
            off = offset;
        }
        r = write ? blk_pwrite(b, buf, bufsize, off, &e) : blk_pread(b, buf, bufsize, off, &e);
        if (!seed)
            off += step;
        if (r == 0 && write && flush_every && (i + 1) % flush_every == 0) {
            r = blk_flush(b, &e);
            if (r == 0 && pfd >= 0 && record(pfd, i + 1) < 0)
                r = err_set(&e, EIO, "cannot write the progress file");
        }
    }
    if (r == 0 && write)
        r = blk_flush(b, &e);
    if (r == 0 && pfd >= 0)
        record(pfd, count);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    free(buf);
    blk_close(b);
    if (pfd >= 0)
        close(pfd);
    if (r < 0)
        return img_fail_err(1, &e);
    if (!quiet)
        printf("Run completed in %.3f seconds.\n",
               (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    return 0;
}
