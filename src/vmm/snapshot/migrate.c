/* Live migration over TCP: pre-copy with KVM dirty logging.
 *
 * The source thread sends every non-zero page while the guest runs, then
 * the pages KVM logged dirty, round after round, until what is left would
 * go out within the downtime limit at the rate measured; then it parks the
 * vCPUs, sends the last dirty pages and the device state, and waits for
 * the destination's acknowledgement. Only after it does the source count
 * the migration as completed (and stays paused, as QEMU's "postmigrate");
 * a failure or migrate_cancel before that leaves the source running.
 *
 * Wire (little-endian): "CVIRTMIG", u32 version, u64 RAM size, the machine
 * options (u32 count, strings), then records: u32 type + body. */
#include "snapshot/migrate.h"

#include <errno.h>
#include <linux/kvm.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pci/pci.h"
#include "snapshot/snapshot_int.h"
#include "util/evloop.h"
#include "util/log.h"
#include "virtio/virtq.h"
#include "vm.h"

#define MIG_MAGIC   "CVIRTMIG"
#define MIG_VERSION 1
#define MIG_PAGE    4096u
#define MIG_MAX_ROUNDS 30

enum { REC_PAGE = 1, REC_ZERO = 2, REC_STATE = 3, REC_END = 4 };

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void snap_migrate_lock(struct snapshot *s)
{
    if (s->lock_ready)
        pthread_mutex_lock(&s->lock);
}

void snap_migrate_unlock(struct snapshot *s)
{
    if (s->lock_ready)
        pthread_mutex_unlock(&s->lock);
}

/* ---- a buffered socket writer ---- */

struct wbuf {
    int fd;
    uint8_t buf[256 * 1024];
    size_t len;
    int err;                  /* first failure, negative errno */
    uint64_t sent;
};

static void wflush(struct wbuf *w)
{
    size_t off = 0;
    while (!w->err && off < w->len) {
        ssize_t n = send(w->fd, w->buf + off, w->len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            w->err = n < 0 ? -errno : -EPIPE;
            break;
        }
        off += (size_t)n;
    }
    w->sent += off;
    w->len = 0;
}

static void wput(struct wbuf *w, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0 && !w->err) {
        if (w->len == sizeof(w->buf))
            wflush(w);
        size_t k = sizeof(w->buf) - w->len < n ? sizeof(w->buf) - w->len : n;
        memcpy(w->buf + w->len, b, k);
        w->len += k;
        b += k;
        n -= k;
    }
}

static void wput32(struct wbuf *w, uint32_t v)
{
    uint8_t x[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    wput(w, x, 4);
}

static void wput64(struct wbuf *w, uint64_t v)
{
    wput32(w, (uint32_t)v);
    wput32(w, (uint32_t)(v >> 32));
}

/* ---- the source ---- */

static int set_dirty_log(struct vm *vm, bool on)
{
    for (unsigned i = 0; i < vm->nslots; i++) {
        struct kvm_userspace_memory_region reg = {
            .slot = i,
            .flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0,
            .guest_phys_addr = vm->slots[i].gpa,
            .memory_size = vm->slots[i].size,
            .userspace_addr = (uintptr_t)vm->slots[i].hva,
        };
        if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &reg) < 0)
            return -errno;
    }
    return 0;
}

static void send_page(struct wbuf *w, struct vm *vm, uint64_t off)
{
    const uint8_t *p = vm->ram + off;
    if (snap_page_is_zero(p, MIG_PAGE)) {
        wput32(w, REC_ZERO);
        wput64(w, off);
    } else {
        wput32(w, REC_PAGE);
        wput64(w, off);
        wput(w, p, MIG_PAGE);
    }
}

/* Sends the pages KVM logged dirty since the last call (which clears the
 * log); returns how many, or a negative errno. */
static int64_t send_dirty(struct snapshot *s, struct wbuf *w, uint64_t *bitmap)
{
    struct vm *vm = s->vm;
    int64_t n = 0;
    for (unsigned i = 0; i < vm->nslots; i++) {
        uint64_t pages = vm->slots[i].size / MIG_PAGE;
        memset(bitmap, 0, (pages + 63) / 64 * 8);
        struct kvm_dirty_log log = { .slot = i, .dirty_bitmap = bitmap };
        if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
            return -errno;
        uint64_t base = (uint64_t)(vm->slots[i].hva - vm->ram);
        for (uint64_t wd = 0; wd < (pages + 63) / 64; wd++) {
            for (uint64_t bits = bitmap[wd]; bits; bits &= bits - 1) {
                uint64_t pg = wd * 64 + (uint64_t)__builtin_ctzll(bits);
                if (pg < pages) {
                    send_page(w, vm, base + pg * MIG_PAGE);
                    n++;
                }
            }
            if (w->err || atomic_load(&s->cancel))
                return w->err ? w->err : -ECANCELED;
        }
    }
    return n;
}

/* The virtqueue write hook: pages a device may write. */
static void mark_device_write(void *opaque, const void *hva, size_t len)
{
    struct snapshot *s = opaque;
    const uint8_t *p = hva, *ram = s->vm->ram;
    if (len == 0 || p < ram || (uint64_t)(p - ram) >= s->vm->ram_size)
        return;
    uint64_t first = (uint64_t)(p - ram) / MIG_PAGE;
    uint64_t last = ((uint64_t)(p - ram) + len - 1) / MIG_PAGE;
    for (uint64_t pg = first; pg <= last && pg / 64 < s->dev_dirty_words; pg++)
        __atomic_fetch_or(&s->dev_dirty[pg / 64], 1ULL << (pg % 64), __ATOMIC_RELAXED);
}

/* Every page a device may have written since the migration began; the
 * devices are drained, so none of them changes any more. */
static int64_t send_device_pages(struct snapshot *s, struct wbuf *w)
{
    int64_t n = 0;
    for (uint64_t wd = 0; wd < s->dev_dirty_words && !w->err; wd++)
        for (uint64_t bits = __atomic_load_n(&s->dev_dirty[wd], __ATOMIC_RELAXED); bits;
             bits &= bits - 1) {
            uint64_t pg = wd * 64 + (uint64_t)__builtin_ctzll(bits);
            if (pg * MIG_PAGE < s->vm->ram_size) {
                send_page(w, s->vm, pg * MIG_PAGE);
                n++;
            }
        }
    return w->err ? w->err : n;
}

static int connect_to(const char *hostport, struct err *e)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    if (!colon || colon == hostport || (size_t)(colon - hostport) >= sizeof(host) || !colon[1])
        return err_set(e, EINVAL, "Invalid parameter 'uri': expected tcp:HOST:PORT");
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
    int g = getaddrinfo(host, colon + 1, &hints, &ai);
    if (g != 0)
        return err_set(e, EINVAL, "tcp:%s: %s", hostport, gai_strerror(g));
    int fd = -1, r = -ECONNREFUSED;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        r = -errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return err_set_errno(e, -r, "cannot connect to tcp:%s", hostport);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static void set_status(struct snapshot *s, const char *status)
{
    snap_emit_migration(s, status);
}

/* The stop-and-copy phase: last dirty pages, device state, acknowledgement. */
static int final_phase(struct snapshot *s, struct wbuf *w, uint64_t *bitmap, int64_t *paused_at,
                       struct err *e)
{
    *paused_at = mono_ms();
    s->was_running = snap_stop_vm(s);
    /* Devices finish what they took (virtio-blk completes its requests)
     * and take nothing more; their writes are in dev_dirty. */
    if (s->vm->pci) {
        pci_bus_quiesce(s->vm->pci, true);
        s->quiesced = true;
    }
    int64_t n = send_dirty(s, w, bitmap);
    if (n >= 0)
        n = send_device_pages(s, w);
    if (n < 0)
        return err_set_errno(e, (int)-n, "sending the last dirty pages");
    struct snapbuf st;
    snapbuf_init(&st);
    int r = snap_state_save(&st, s->vm, s->mig_argc, s->mig_argv, e);
    if (r == 0) {
        wput32(w, REC_STATE);
        wput32(w, (uint32_t)st.len);
        wput(w, st.data, st.len);
        wput32(w, snap_crc32c(0, st.data, st.len));
        wput32(w, REC_END);
        wflush(w);
    }
    snapbuf_free(&st);
    if (r < 0)
        return r;
    if (w->err)
        return err_set_errno(e, -w->err, "sending the device state");
    char ack[4];
    size_t got = 0;
    while (got < sizeof(ack)) {
        ssize_t k = recv(w->fd, ack + got, sizeof(ack) - got, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return atomic_load(&s->cancel) ? -ECANCELED
                                           : err_set(e, EPIPE, "the destination closed without taking the VM");
        got += (size_t)k;
    }
    if (memcmp(ack, "DONE", 4) != 0)
        return err_set(e, EPROTO, "the destination refused the VM");
    return 0;
}

/* Round 0: every page that may hold data; pages never touched (and, for
 * memory restored from a snapshot, not in the file either) are zero and
 * are neither read, which would fault them in, nor sent. */
static void send_all(struct snapshot *s, struct wbuf *w)
{
    struct vm *vm = s->vm;
    bool zero[SNAP_SCAN_CHUNK / MIG_PAGE];
    for (uint64_t base = 0; base < vm->ram_size && !w->err && !atomic_load(&s->cancel);
         base += SNAP_SCAN_CHUNK) {
        uint64_t len = vm->ram_size - base < SNAP_SCAN_CHUNK ? vm->ram_size - base : SNAP_SCAN_CHUNK;
        snap_ram_zero_map(vm->ram, base, len, s->have_file ? &s->file : NULL, zero);
        for (uint64_t off = 0; off < len; off += MIG_PAGE)
            if (!zero[off / MIG_PAGE] && !snap_page_is_zero(vm->ram + base + off, MIG_PAGE))
                send_page(w, vm, base + off);
    }
}

/* Magic, version, RAM size and the machine options. */
static void send_header(struct snapshot *s, struct wbuf *w)
{
    wput(w, MIG_MAGIC, 8);
    wput32(w, MIG_VERSION);
    wput64(w, s->vm->ram_size);
    wput32(w, (uint32_t)s->mig_argc);
    for (int i = 0; i < s->mig_argc; i++) {
        uint32_t n = (uint32_t)strlen(s->mig_argv[i]);
        wput32(w, n);
        wput(w, s->mig_argv[i], n);
    }
}

static int run_migration(struct snapshot *s, struct wbuf *w, struct err *e)
{
    struct vm *vm = s->vm;
    send_header(s, w);
    uint64_t words = (vm->ram_size / MIG_PAGE + 63) / 64;
    if (!s->dev_dirty) {
        s->dev_dirty = calloc(words, 8);
        if (!s->dev_dirty)
            return err_set(e, ENOMEM, "out of memory for the device dirty bitmap");
        s->dev_dirty_words = words;
    }
    memset(s->dev_dirty, 0, words * 8);
    virtq_set_write_hook(mark_device_write, s);
    int r = set_dirty_log(vm, true);
    if (r < 0)
        return err_set_errno(e, -r, "cannot turn on dirty logging");
    /* Chains taken before the hook was set finish now, before round 0
     * copies what they wrote. */
    if (vm->pci) {
        pci_bus_quiesce(vm->pci, true);
        pci_bus_quiesce(vm->pci, false);
    }
    uint64_t max_pages = 0;
    for (unsigned i = 0; i < vm->nslots; i++)
        if (vm->slots[i].size / MIG_PAGE > max_pages)
            max_pages = vm->slots[i].size / MIG_PAGE;
    uint64_t *bitmap = calloc((max_pages + 63) / 64, 8);
    if (!bitmap)
        return err_set(e, ENOMEM, "out of memory for the dirty bitmap");
    set_status(s, "active");
    /* Round 0: everything; zero pages are not sent, the destination starts
     * from zeroed memory. */
    int64_t t0 = mono_ms();
    send_all(s, w);
    wflush(w);
    int64_t paused_at = 0;
    r = 0;
    for (unsigned round = 1; r == 0; round++) {
        if (w->err || atomic_load(&s->cancel)) {
            r = w->err ? err_set_errno(e, -w->err, "sending memory") : -ECANCELED;
            break;
        }
        int64_t elapsed = mono_ms() - t0;
        double rate = (double)w->sent / (elapsed > 0 ? (double)elapsed : 1.0); /* bytes/ms */
        int64_t n = send_dirty(s, w, bitmap);
        wflush(w);
        if (n < 0) {
            r = n == -ECANCELED ? -ECANCELED : err_set_errno(e, (int)-n, "KVM_GET_DIRTY_LOG");
            break;
        }
        snap_migrate_lock(s);
        s->iterations = round;
        s->ram_transferred = w->sent;
        s->ram_remaining = (uint64_t)n * MIG_PAGE;
        snap_migrate_unlock(s);
        /* What the guest dirtied during this round must go out within the
         * downtime limit at the rate seen so far. */
        double expect_ms = (double)n * MIG_PAGE / (rate > 1 ? rate : 1);
        if (expect_ms <= (double)s->downtime_limit_ms / 2 || round >= MIG_MAX_ROUNDS) {
            r = final_phase(s, w, bitmap, &paused_at, e);
            break;
        }
    }
    free(bitmap);
    if (r < 0) {
        set_dirty_log(vm, false);
        return r;
    }
    snap_migrate_lock(s);
    s->downtime_ms = mono_ms() - paused_at;
    s->ram_transferred = w->sent;
    s->ram_remaining = 0;
    snap_migrate_unlock(s);
    set_dirty_log(vm, false);
    return 0;
}

static void *migration_thread(void *arg)
{
    struct snapshot *s = arg;
    struct err e = { 0 };
    struct wbuf *w = calloc(1, sizeof(*w));
    int r = w ? 0 : err_set(&e, ENOMEM, "out of memory");
    if (r == 0) {
        w->fd = s->mig_fd;
        r = run_migration(s, w, &e);
    }
    /* A cancel shuts the socket down: whatever failed after it was it. */
    if (r < 0 && atomic_load(&s->cancel))
        r = -ECANCELED;
    free(w);
    virtq_set_write_hook(NULL, NULL);
    if (r < 0 && s->quiesced)
        pci_bus_quiesce(s->vm->pci, false);
    s->quiesced = false;
    snap_migrate_lock(s);
    s->total_ms = mono_ms() - s->start_ms;
    if (r < 0 && r != -ECANCELED)
        snprintf(s->error, sizeof(s->error), "%s", e.msg);
    snap_migrate_unlock(s);
    if (r < 0) {
        /* The source keeps the VM: it runs on if it ran before. */
        if (s->was_running)
            snap_resume_vm(s);
        s->was_running = false;
        if (r == -ECANCELED) {
            set_status(s, "cancelled");
        } else {
            log_warn("migration failed: %s", e.msg);
            set_status(s, "failed");
        }
    } else {
        atomic_store(&s->postmigrate, true);
        set_status(s, "completed");
        log_info("migrated in %lld ms, downtime %lld ms", (long long)s->total_ms,
                 (long long)s->downtime_ms);
    }
    atomic_store(&s->active, false);
    return NULL;
}

static void join_previous(struct snapshot *s)
{
    if (s->thread_started) {
        pthread_join(s->thread, NULL);
        s->thread_started = false;
    }
    if (s->mig_fd >= 0)
        close(s->mig_fd);
    s->mig_fd = -1;
}

int snap_migrate_start(struct snapshot *s, const char *hostport, struct err *e)
{
    if (!s->lock_ready) {
        pthread_mutex_init(&s->lock, NULL);
        s->lock_ready = true;
    }
    join_previous(s);
    snap_args_free(s->mig_argv, s->mig_argc);
    s->mig_argv = NULL;
    s->mig_argc = 0;
    int r = snap_machine_args(s->vm, s->mach_argc, s->mach_argv, &s->mig_argv, &s->mig_argc, e);
    if (r < 0)
        return r;
    int fd = connect_to(hostport, e);
    if (fd < 0)
        return fd;
    s->mig_fd = fd;
    atomic_store(&s->cancel, false);
    s->was_running = false;
    s->error[0] = '\0';
    s->start_ms = mono_ms();
    s->ram_total = s->vm->ram_size;
    s->ram_transferred = s->ram_remaining = s->iterations = 0;
    s->downtime_ms = 0;
    atomic_store(&s->active, true);
    set_status(s, "setup");
    r = pthread_create(&s->thread, NULL, migration_thread, s);
    if (r != 0) {
        atomic_store(&s->active, false);
        set_status(s, "failed");
        return err_set_errno(e, r, "cannot start the migration thread");
    }
    s->thread_started = true;
    return 0;
}

bool snap_migrate_active(struct snapshot *s)
{
    return atomic_load(&s->active);
}

void snap_migrate_cancel(struct snapshot *s)
{
    if (!atomic_load(&s->active))
        return;
    atomic_store(&s->cancel, true);
    /* Wakes a thread blocked sending or waiting for the acknowledgement. */
    if (s->mig_fd >= 0)
        shutdown(s->mig_fd, SHUT_RDWR);
}

void snap_migrate_free(struct snapshot *s)
{
    snap_migrate_cancel(s);
    join_previous(s);
    if (s->lock_ready)
        pthread_mutex_destroy(&s->lock);
    s->lock_ready = false;
    /* Tracking is off and the thread gone; device threads may still run,
     * but no longer call the hook. */
    free(s->dev_dirty);
    s->dev_dirty = NULL;
    snap_args_free(s->mig_argv, s->mig_argc);
    s->mig_argv = NULL;
    s->mig_argc = 0;
    snap_args_free(s->in_argv, s->in_argc);
    s->in_argv = NULL;
    s->in_argc = 0;
    snapbuf_free(&s->in_state);
}

/* ---- the destination ---- */

static int rfull(int fd, void *p, size_t n)
{
    uint8_t *b = p;
    while (n > 0) {
        ssize_t k = recv(fd, b, n, MSG_WAITALL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k < 0 ? -errno : -EPIPE;
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

static int r32(int fd, uint32_t *v)
{
    uint8_t x[4];
    int r = rfull(fd, x, 4);
    *v = (uint32_t)x[0] | (uint32_t)x[1] << 8 | (uint32_t)x[2] << 16 | (uint32_t)x[3] << 24;
    return r;
}

static int r64(int fd, uint64_t *v)
{
    uint32_t lo, hi;
    int r = r32(fd, &lo);
    if (r == 0)
        r = r32(fd, &hi);
    *v = r == 0 ? ((uint64_t)hi << 32 | lo) : 0;
    return r;
}

static int listen_on(const char *hostport, struct err *e)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    if (!colon || (size_t)(colon - hostport) >= sizeof(host) || !colon[1])
        return err_set(e, EINVAL, "--incoming tcp:%s: expected tcp:HOST:PORT", hostport);
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai;
    int g = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai);
    if (g != 0)
        return err_set(e, EINVAL, "--incoming tcp:%s: %s", hostport, gai_strerror(g));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1) < 0) {
        int r = err_set_errno(e, errno, "--incoming tcp:%s: cannot listen", hostport);
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return r;
    }
    freeaddrinfo(ai);
    return fd;
}

static int recv_header(struct snapshot *s, int fd, struct err *e)
{
    char magic[8];
    uint32_t version, argc;
    uint64_t ram;
    if (rfull(fd, magic, 8) < 0 || memcmp(magic, MIG_MAGIC, 8) != 0)
        return err_set(e, EPROTO, "the source is not a cvirt-vmm migration stream");
    if (r32(fd, &version) < 0 || version != MIG_VERSION)
        return err_set(e, EPROTO, "migration stream version %u is not supported (this cvirt-vmm takes %u)",
                       version, MIG_VERSION);
    if (r64(fd, &ram) < 0 || r32(fd, &argc) < 0)
        return err_set(e, EPROTO, "migration stream cut short");
    if (ram != s->vm->ram_size)
        return err_set(e, EINVAL, "the source VM has %llu MiB of memory, this one %llu MiB",
                       (unsigned long long)(ram >> 20), (unsigned long long)(s->vm->ram_size >> 20));
    /* The same machine, as QEMU also requires: option for option, and the
     * same disks in the same PCI slots. */
    if (argc > 4096)
        return err_set(e, EPROTO, "migration stream: bad machine options");
    char **src = calloc((size_t)argc + 1, sizeof(char *));
    if (!src)
        return err_set(e, ENOMEM, "out of memory");
    int r = 0;
    for (uint32_t i = 0; i < argc && r == 0; i++) {
        uint32_t n;
        if (r32(fd, &n) < 0 || n >= 8192 || !(src[i] = malloc(n + 1)) || rfull(fd, src[i], n) < 0)
            r = err_set(e, EPROTO, "migration stream: bad machine options");
        else
            src[i][n] = '\0';
    }
    if (r == 0)
        r = snap_machine_compare((int)argc, src, s->in_argc, s->in_argv, e);
    snap_args_free(src, (int)argc);
    return r;
}

static int recv_records(struct snapshot *s, int fd, struct err *e)
{
    struct vm *vm = s->vm;
    for (;;) {
        uint32_t type;
        uint64_t off;
        if (r32(fd, &type) < 0)
            return err_set(e, EPIPE, "the source went away during the migration");
        if (type == REC_PAGE || type == REC_ZERO) {
            if (r64(fd, &off) < 0 || off % MIG_PAGE || off >= vm->ram_size ||
                vm->ram_size - off < MIG_PAGE)
                return err_set(e, EPROTO, "migration stream: bad page offset");
            int r = type == REC_PAGE ? rfull(fd, vm->ram + off, MIG_PAGE) : 0;
            if (type == REC_ZERO)
                memset(vm->ram + off, 0, MIG_PAGE);
            if (r < 0)
                return err_set(e, EPIPE, "the source went away during the migration");
        } else if (type == REC_STATE) {
            uint32_t len, crc;
            if (r32(fd, &len) < 0 || len > SNAP_MAX_STATE)
                return err_set(e, EPROTO, "migration stream: bad state length");
            struct snapbuf st;
            snapbuf_init(&st);
            st.data = malloc(len ? len : 1);
            if (!st.data)
                return err_set(e, ENOMEM, "out of memory");
            st.len = st.cap = len;
            int r = rfull(fd, st.data, len);
            if (r == 0)
                r = r32(fd, &crc);
            if (r == 0 && crc != snap_crc32c(0, st.data, len))
                r = err_set(e, EPROTO, "migration stream: state checksum mismatch");
            else if (r < 0)
                r = err_set(e, EPIPE, "the source went away during the migration");
            /* Loaded on the loop thread once the stream has ended. */
            if (r < 0) {
                snapbuf_free(&st);
                return r;
            }
            snapbuf_free(&s->in_state);
            s->in_state = st;
            s->have_state = true;
        } else if (type == REC_END) {
            if (!s->have_state)
                return err_set(e, EPROTO, "migration stream ended without the VM state");
            return 0;
        } else {
            return err_set(e, EPROTO, "migration stream: unknown record %u", type);
        }
    }
}

/* The receiving thread: the stream into guest memory and s->in_state.
 * The VM is not touched otherwise: the loop thread loads the state. */
static void *incoming_thread(void *arg)
{
    struct snapshot *s = arg;
    int r, fd = accept4(s->in_lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        r = err_set_errno(&s->in_err, errno, "--incoming: accept");
    } else {
        atomic_store(&s->in_fd, fd);
        /* Pages the source never sends are zero there: start from zero,
         * not from the kernel image vm_setup loaded. */
        r = atomic_load(&s->in_abort) ? -ECANCELED : 0;
        if (r == 0)
            madvise(s->vm->ram, s->vm->ram_size, MADV_DONTNEED);
        if (r == 0)
            r = recv_header(s, fd, &s->in_err);
        if (r == 0)
            r = recv_records(s, fd, &s->in_err);
    }
    s->in_r = r;
    atomic_store(&s->in_done, true);
    uint64_t one = 1;
    if (write(s->in_wake, &one, sizeof(one)) < 0)
        log_warn("incoming migration: cannot wake the event loop");
    return NULL;
}

static void on_incoming_wake(void *opaque, uint32_t events)
{
    struct snapshot *s = opaque;
    uint64_t n;
    if (read(s->in_wake, &n, sizeof(n)) < 0)
        return;
}

/* Waits on the event loop (QMP answers, "inmigrate"; a quit or a signal
 * ends the wait) while the thread takes the stream. 1 when it ended, 0
 * when the VM was stopped first. */
static int incoming_wait(struct snapshot *s, struct err *e)
{
    struct vm *vm = s->vm;
    s->in_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->in_wake < 0)
        return err_set_errno(e, errno, "incoming migration: eventfd");
    int r = evloop_add(vm->loop, s->in_wake, EPOLLIN, on_incoming_wake, s);
    if (r == 0 && (r = pthread_create(&s->in_thread, NULL, incoming_thread, s)) != 0) {
        evloop_del(vm->loop, s->in_wake);
        r = -r;
    }
    if (r < 0) {
        close(s->in_wake);
        return err_set(e, -r, "incoming migration: cannot start receiving");
    }
    while (!atomic_load(&s->in_done) && vm_exit_reason(vm) == VM_EXIT_NONE)
        evloop_run_once(vm->loop, -1);
    bool done = atomic_load(&s->in_done);
    if (!done) {
        /* Wakes accept() or recv() in the thread, whichever it is in. */
        atomic_store(&s->in_abort, true);
        shutdown(s->in_lfd, SHUT_RDWR);
        int fd = atomic_load(&s->in_fd);
        if (fd >= 0)
            shutdown(fd, SHUT_RDWR);
    }
    pthread_join(s->in_thread, NULL);
    evloop_del(vm->loop, s->in_wake);
    close(s->in_wake);
    return done ? 1 : 0;
}

int snap_migrate_incoming(struct snapshot *s, struct err *e)
{
    /* What this side is, for the source's options to be checked against:
     * taken here, on the loop thread, which owns the hotplug table. */
    int r = snap_machine_args(s->vm, s->mach_argc, s->mach_argv, &s->in_argv, &s->in_argc, e);
    if (r < 0)
        return r;
    s->in_lfd = listen_on(s->incoming, e);
    if (s->in_lfd < 0) {
        snap_args_free(s->in_argv, s->in_argc);
        s->in_argv = NULL;
        s->in_argc = 0;
        return s->in_lfd;
    }
    log_info("waiting for a migration on tcp:%s", s->incoming);
    atomic_store(&s->in_fd, -1);
    r = incoming_wait(s, e);
    close(s->in_lfd);
    s->in_lfd = -1;
    int fd = atomic_load(&s->in_fd);
    bool arrived = r == 1;
    if (arrived) {
        r = s->in_r < 0 ? err_set(e, -s->in_r, "%s", s->in_err.msg) : 0;
        if (r == 0)
            r = snap_state_load(&s->in_state, s->vm, e);
        if (r == 0 && send(fd, "DONE", 4, MSG_NOSIGNAL) != 4)
            r = err_set_errno(e, errno, "cannot acknowledge the migration");
    }
    snapbuf_free(&s->in_state);
    snap_args_free(s->in_argv, s->in_argc);
    s->in_argv = NULL;
    s->in_argc = 0;
    if (fd >= 0)
        close(fd);
    if (r < 0) {
        err_prefix(e, "incoming migration: ");
        return r;
    }
    if (!arrived)
        return 0;   /* stopped while waiting: no vCPU will start */
    if (s->paused)
        vm_pause(s->vm);
    log_info("incoming migration complete");
    return 0;
}
