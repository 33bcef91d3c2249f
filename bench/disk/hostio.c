/* hostio: the host's own figure for the disk benchmark's pattern on a
 * file, with O_DIRECT: sequential writes, sequential reads of the same
 * range, then 4 KiB random reads in it, each with a fixed number of
 * requests in flight, through io_uring or through a pool of threads doing
 * pread/pwrite (one request each at a time).
 *
 *   hostio FILE [--mb N] [--bs KIB] [--qd N] [--ops N] [--engine uring|threads]
 *
 * Prints one line per phase: "PHASE bytes=B ops=N seconds=S". */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE     /* O_DIRECT */
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_LIBURING
#include <liburing.h>
#endif

#define BLOCK 4096u
#define QD_MAX 256u

struct phase {
    const char *name;
    bool write, random;
    uint32_t total, bytes, nblocks;
};

static int fd;
static uint32_t qd = 32;
static uint8_t *bufs[QD_MAX];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Offset of request n: in order, or a block from a per-phase sequence. */
static uint64_t offset_of(const struct phase *p, uint32_t n, uint32_t *rnd)
{
    if (!p->random)
        return (uint64_t)n * p->bytes;
    *rnd ^= *rnd << 13;
    *rnd ^= *rnd >> 17;
    *rnd ^= *rnd << 5;
    return (uint64_t)(*rnd % p->nblocks) * BLOCK;
}

#ifdef HAVE_LIBURING
static int run_uring(const struct phase *p)
{
    struct io_uring ring;
    int r = io_uring_queue_init(qd, &ring, 0);
    if (r < 0) {
        fprintf(stderr, "hostio: io_uring_queue_init: %s\n", strerror(-r));
        return -1;
    }
    uint32_t issued = 0, done = 0, rnd = 2463534242u;
    for (; issued < qd && issued < p->total; issued++) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
        uint64_t off = offset_of(p, issued, &rnd);
        if (p->write)
            io_uring_prep_write(sqe, fd, bufs[issued], p->bytes, off);
        else
            io_uring_prep_read(sqe, fd, bufs[issued], p->bytes, off);
        io_uring_sqe_set_data64(sqe, issued);
    }
    io_uring_submit(&ring);
    while (done < p->total) {
        struct io_uring_cqe *cqe;
        if ((r = io_uring_wait_cqe(&ring, &cqe)) < 0)
            break;
        unsigned head, n = 0;
        bool more = false;
        io_uring_for_each_cqe(&ring, head, cqe) {
            n++;
            if (cqe->res != (int)p->bytes) {
                r = cqe->res < 0 ? cqe->res : -EIO;
                break;
            }
            done++;
            uint64_t slot = io_uring_cqe_get_data64(cqe);
            if (issued < p->total) {
                struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
                uint64_t off = offset_of(p, issued++, &rnd);
                if (p->write)
                    io_uring_prep_write(sqe, fd, bufs[slot], p->bytes, off);
                else
                    io_uring_prep_read(sqe, fd, bufs[slot], p->bytes, off);
                io_uring_sqe_set_data64(sqe, slot);
                more = true;
            }
        }
        io_uring_cq_advance(&ring, n);
        if (r < 0)
            break;
        if (more)
            io_uring_submit(&ring);
    }
    io_uring_queue_exit(&ring);
    if (r < 0) {
        fprintf(stderr, "hostio: %s: %s\n", p->name, strerror(-r));
        return -1;
    }
    return 0;
}
#endif

struct worker {
    const struct phase *p;
    uint32_t *next;             /* shared request counter */
    uint8_t *buf;
    int err;
};

static pthread_mutex_t next_mu = PTHREAD_MUTEX_INITIALIZER;

static void *worker_main(void *opaque)
{
    struct worker *w = opaque;
    uint32_t rnd = 2463534242u ^ (uint32_t)(uintptr_t)w;
    for (;;) {
        pthread_mutex_lock(&next_mu);
        uint32_t n = (*w->next)++;
        pthread_mutex_unlock(&next_mu);
        if (n >= w->p->total)
            return NULL;
        uint64_t off = offset_of(w->p, n, &rnd);
        ssize_t r = w->p->write ? pwrite(fd, w->buf, w->p->bytes, (off_t)off)
                                : pread(fd, w->buf, w->p->bytes, (off_t)off);
        if (r != (ssize_t)w->p->bytes) {
            w->err = r < 0 ? errno : EIO;
            return NULL;
        }
    }
}

static int run_threads(const struct phase *p)
{
    pthread_t t[QD_MAX];
    struct worker w[QD_MAX];
    uint32_t next = 0;
    int bad = 0;
    for (uint32_t i = 0; i < qd; i++) {
        w[i] = (struct worker){ p, &next, bufs[i], 0 };
        if (pthread_create(&t[i], NULL, worker_main, &w[i])) {
            fprintf(stderr, "hostio: cannot start a thread\n");
            exit(1);
        }
    }
    for (uint32_t i = 0; i < qd; i++) {
        pthread_join(t[i], NULL);
        if (w[i].err && !bad) {
            fprintf(stderr, "hostio: %s: %s\n", p->name, strerror(w[i].err));
            bad = -1;
        }
    }
    return bad;
}

static void usage(void)
{
    fprintf(stderr, "usage: hostio FILE [--mb N] [--bs KIB] [--qd N] [--ops N] "
                    "[--engine uring|threads]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *path = NULL, *engine = "uring";
    uint32_t mb = 256, kb = 128, ops = 20000;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] != '-') {
            path = argv[i];
            continue;
        }
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (!strcmp(argv[i - 1], "--mb"))
            mb = (uint32_t)strtoul(v, NULL, 0);
        else if (!strcmp(argv[i - 1], "--bs"))
            kb = (uint32_t)strtoul(v, NULL, 0);
        else if (!strcmp(argv[i - 1], "--qd"))
            qd = (uint32_t)strtoul(v, NULL, 0);
        else if (!strcmp(argv[i - 1], "--ops"))
            ops = (uint32_t)strtoul(v, NULL, 0);
        else if (!strcmp(argv[i - 1], "--engine"))
            engine = v;
        else
            usage();
    }
    uint64_t bytes = (uint64_t)mb << 20, bs = (uint64_t)kb << 10;
    if (!path || !mb || !bs || bs % BLOCK || bytes % bs || !qd || qd > QD_MAX || !ops)
        usage();
    bool uring = !strcmp(engine, "uring");
    if (!uring && strcmp(engine, "threads"))
        usage();
#ifndef HAVE_LIBURING
    if (uring) {
        fprintf(stderr, "hostio: built without liburing\n");
        return 1;
    }
#endif
    fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "hostio: %s: %s (O_DIRECT)\n", path, strerror(errno));
        return 1;
    }
    off_t end = lseek(fd, 0, SEEK_END);
    if (end < 0 || (uint64_t)end < bytes) {
        fprintf(stderr, "hostio: %s is smaller than %u MiB\n", path, mb);
        return 1;
    }
    for (uint32_t i = 0; i < qd; i++) {
        if (posix_memalign((void **)&bufs[i], BLOCK, bs)) {
            fprintf(stderr, "hostio: out of memory\n");
            return 1;
        }
        memset(bufs[i], 0x5a, bs);
    }
    const struct phase phases[] = {
        { "seqwrite", true, false, (uint32_t)(bytes / bs), (uint32_t)bs, 0 },
        { "seqread", false, false, (uint32_t)(bytes / bs), (uint32_t)bs, 0 },
        { "randread", false, true, ops, BLOCK, (uint32_t)(bytes / BLOCK) },
    };
    for (unsigned i = 0; i < sizeof(phases) / sizeof(phases[0]); i++) {
        const struct phase *p = &phases[i];
        double t0 = now();
#ifdef HAVE_LIBURING
        int r = uring ? run_uring(p) : run_threads(p);
#else
        int r = run_threads(p);
#endif
        double t = now() - t0;
        if (r < 0)
            return 1;
        printf("%s bytes=%llu ops=%u seconds=%.6f\n", p->name,
               (unsigned long long)p->total * p->bytes, p->total, t);
        if (p->write && fdatasync(fd) < 0) {
            fprintf(stderr, "hostio: fdatasync: %s\n", strerror(errno));
            return 1;
        }
    }
    close(fd);
    return 0;
}
