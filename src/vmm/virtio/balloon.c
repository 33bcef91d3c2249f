/* virtio-balloon (virtio 1.x, 5.5): the host asks the guest to give back
 * memory by raising num_pages; the guest hands over 4 KiB page frame
 * numbers on the inflate queue and takes them back on the deflate queue,
 * writing its running count to actual. An optional stats queue carries the
 * guest's memory statistics.
 *
 * Freeing inflated pages: guest RAM is private anonymous memory (vm.c), so
 * MADV_DONTNEED drops the pages and their RSS at once, and the next guest
 * touch faults in a zero page. MADV_REMOVE only works on shared or file
 * memory that can punch holes and fails with EINVAL here; MADV_FREE would
 * keep the RSS until the host is short of memory. Above the first 2 MiB
 * the RAM is backed by transparent huge pages: a 4 KiB DONTNEED inside one
 * splits its mapping and lowers RSS by 4 KiB; the huge page itself goes
 * back when all of it is dropped or when the kernel's deferred split runs.
 * khugepaged may later collapse a partly ballooned 2 MiB range into a new
 * huge page again (max_ptes_none), refilling the holes with zeros.
 *
 * Deflated pages need nothing: the driver must not rely on the content of
 * a page it gave away (it gets zeros), and without MUST_TELL_HOST it may
 * even use a page before telling. */
#include "virtio/balloon.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "control.h"
#include "snapshot/stream.h"
#include "util/evloop.h"
#include "util/le.h"
#include "util/log.h"
#include "virtio/virtio.h"
#include "vm.h"

#define BALLOON_F_MUST_TELL_HOST  0
#define BALLOON_F_STATS_VQ        1
#define BALLOON_F_DEFLATE_ON_OOM  2

#define Q_INFLATE 0
#define Q_DEFLATE 1
#define Q_STATS   2

#define CFG_NUM_PAGES 0
#define CFG_ACTUAL    4
#define CFG_SIZE      8

/* PFNs read from a buffer per step: a buffer can be as large as the guest
 * likes, so it is walked in bounded pieces. */
#define PFN_CHUNK 256
/* One stats entry: le16 tag, le64 value, packed. */
#define STAT_ENTRY 10
/* Entries read from one stats buffer at most; the spec defines ten tags,
 * a longer buffer is a confused or hostile driver. */
#define STAT_MAX_ENTRIES 64
/* BALLOON_CHANGE at most this often, the latest value winning, as QEMU
 * throttles it: Linux writes actual after every 256 pages, and a large
 * inflation must not flood (and so drop) a slow client. */
#define EVENT_INTERVAL_NS 1000000000LL

struct balloon {
    struct virtio_dev *vd;
    bool deflate_on_oom;
    uint32_t num_pages;          /* what the host asks for */
    uint32_t actual;             /* what the driver says it gave */
    /* The stats buffer the driver left with us: returning it asks for
     * fresh numbers. */
    bool stats_held;
    uint16_t stats_head;
    struct balloon_stats stats;
    uint64_t bad_pfns;           /* PFNs outside RAM, ignored */
    bool bad_pfn_logged;
    /* Event throttling: when the last BALLOON_CHANGE went out and with
     * which value; the timer sends the latest one at the end of the
     * interval. Without an event loop (tests) every change is sent. */
    int64_t last_event_ns;
    uint64_t last_event_actual;
    bool event_pending;
    int timer_fd;
    struct virtq_elem elem;
};

static const char *const stat_names[BALLOON_S_NR] = {
    [BALLOON_S_SWAP_IN] = "stat-swap-in",
    [BALLOON_S_SWAP_OUT] = "stat-swap-out",
    [BALLOON_S_MAJFLT] = "stat-major-faults",
    [BALLOON_S_MINFLT] = "stat-minor-faults",
    [BALLOON_S_MEMFREE] = "stat-free-memory",
    [BALLOON_S_MEMTOT] = "stat-total-memory",
    [BALLOON_S_AVAIL] = "stat-available-memory",
    [BALLOON_S_CACHES] = "stat-disk-caches",
    [BALLOON_S_HTLB_PGALLOC] = "stat-htlb-pgalloc",
    [BALLOON_S_HTLB_PGFAIL] = "stat-htlb-pgfail",
};

const char *balloon_stat_name(enum balloon_stat s)
{
    return (unsigned)s < BALLOON_S_NR ? stat_names[s] : "?";
}

static uint64_t actual_bytes(const struct balloon *b)
{
    uint64_t ram = b->vd->vm->ram_size;
    uint64_t given = (uint64_t)b->actual << BALLOON_PAGE_SHIFT;
    /* The driver may claim more than there is. */
    return given < ram ? ram - given : 0;
}

/* ---- PFN queues ---- */

/* Host address of balloon page pfn, or NULL when it is not guest RAM. */
static uint8_t *pfn_hva(struct vm *vm, uint32_t pfn)
{
    return vm_gpa(vm, (uint64_t)pfn << BALLOON_PAGE_SHIFT, BALLOON_PAGE_SIZE);
}

static void drop_range(uint8_t *start, size_t len)
{
    if (len && madvise(start, len, MADV_DONTNEED) < 0)
        log_warn("virtio-balloon: madvise(DONTNEED) of %zu bytes failed", len);
}

static void note_bad_pfn(struct balloon *b, uint32_t pfn, bool inflate)
{
    b->bad_pfns++;
    /* One line for the first; a guest sending thousands must not flood
     * the log. query-balloon-stats counts them all. */
    if (!b->bad_pfn_logged) {
        log_warn("virtio-balloon: %s PFN %#x is outside guest RAM; ignored (later ones "
                 "are counted, not logged)", inflate ? "inflate" : "deflate", pfn);
        b->bad_pfn_logged = true;
    } else {
        log_debug("virtio-balloon: ignored PFN %#x outside guest RAM", pfn);
    }
}

/* Walks the PFN array of one inflate or deflate buffer. Inflated pages are
 * dropped in runs of host-contiguous pages, one madvise per run. */
static void handle_pfns(struct balloon *b, const struct virtq_elem *elem, bool inflate)
{
    uint8_t raw[PFN_CHUNK * 4];
    uint8_t *run = NULL;
    size_t run_len = 0;
    /* A trailing partial PFN is ignored. */
    uint64_t total = elem->out_len / 4 * 4;
    for (uint64_t off = 0; off < total; off += sizeof(raw)) {
        size_t want = total - off < sizeof(raw) ? (size_t)(total - off) : sizeof(raw);
        size_t got = virtq_elem_read(elem, (size_t)off, raw, want);
        for (size_t i = 0; i + 4 <= got; i += 4) {
            uint32_t pfn = le32_get(raw + i);
            uint8_t *hva = pfn_hva(b->vd->vm, pfn);
            if (!hva) {
                note_bad_pfn(b, pfn, inflate);
                continue;
            }
            if (!inflate)
                continue;
            if (run && hva == run + run_len) {
                run_len += BALLOON_PAGE_SIZE;
                continue;
            }
            drop_range(run, run_len);
            run = hva;
            run_len = BALLOON_PAGE_SIZE;
        }
        if (got < want)
            break;
    }
    drop_range(run, run_len);
}

static void drain_pfn_queue(struct balloon *b, unsigned q)
{
    struct virtio_dev *vd = b->vd;
    bool pushed = false;
    while (virtio_pop(vd, q, &b->elem) > 0) {
        handle_pfns(b, &b->elem, q == Q_INFLATE);
        virtio_push(vd, q, b->elem.head, 0);
        pushed = true;
    }
    if (pushed)
        virtio_queue_interrupt(vd, q);
}

/* ---- stats queue ---- */

static void parse_stats(struct balloon *b, const struct virtq_elem *elem)
{
    uint8_t raw[STAT_MAX_ENTRIES * STAT_ENTRY];
    size_t got = virtq_elem_read(elem, 0, raw, sizeof(raw));
    struct balloon_stats *st = &b->stats;
    /* A report replaces the last one: a tag the guest stopped sending is
     * not current any more. */
    memset(st->valid, 0, sizeof(st->valid));
    for (size_t i = 0; i + STAT_ENTRY <= got; i += STAT_ENTRY) {
        uint16_t tag = le16_get(raw + i);
        /* Tags from newer specs are skipped, as the spec asks. */
        if (tag >= BALLOON_S_NR)
            continue;
        st->val[tag] = le64_get(raw + i + 2);
        st->valid[tag] = true;
    }
    st->last_update = time(NULL);
}

static void stats_notify(struct balloon *b)
{
    struct virtio_dev *vd = b->vd;
    bool pushed = false;
    while (virtio_pop(vd, Q_STATS, &b->elem) > 0) {
        /* The protocol has one buffer in flight; a driver that sends
         * another gets the older one back rather than leaking it. */
        if (b->stats_held) {
            virtio_push(vd, Q_STATS, b->stats_head, 0);
            pushed = true;
        }
        parse_stats(b, &b->elem);
        b->stats_held = true;
        b->stats_head = b->elem.head;
    }
    if (pushed)
        virtio_queue_interrupt(vd, Q_STATS);
}

/* Lock held. */
static void request_stats(struct balloon *b)
{
    if (!b->stats_held)
        return;
    b->stats_held = false;
    virtio_push(b->vd, Q_STATS, b->stats_head, 0);
    virtio_queue_interrupt(b->vd, Q_STATS);
}

static void balloon_queue_notify(struct virtio_dev *vd, unsigned q)
{
    struct balloon *b = vd->priv;
    if (q == Q_INFLATE || q == Q_DEFLATE)
        drain_pfn_queue(b, q);
    else if (q == Q_STATS && virtio_has_feature(vd, BALLOON_F_STATS_VQ))
        stats_notify(b);
}

/* ---- config space ---- */

static void config_bytes(const struct balloon *b, uint8_t cfg[CFG_SIZE])
{
    le32_put(cfg + CFG_NUM_PAGES, b->num_pages);
    le32_put(cfg + CFG_ACTUAL, b->actual);
}

static void balloon_config_read(struct virtio_dev *vd, unsigned off, uint8_t *data, unsigned len)
{
    uint8_t cfg[CFG_SIZE];
    config_bytes(vd->priv, cfg);
    if (off < CFG_SIZE && len <= CFG_SIZE - off)
        memcpy(data, cfg + off, len);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Lock held. */
static void send_change(struct balloon *b)
{
    struct control *c = b->vd->vm->control;
    uint64_t actual = actual_bytes(b);
    b->last_event_ns = now_ns();
    b->last_event_actual = actual;
    struct json_object *data = json_object_new_object();
    if (!data)
        return;
    json_object_object_add(data, "actual", json_object_new_int64((int64_t)actual));
    control_emit_event(c, "BALLOON_CHANGE", data);
}

/* actual changed (lock held). */
static void emit_change(struct balloon *b)
{
    if (!b->vd->vm->control || b->event_pending)
        return;
    int64_t since = now_ns() - b->last_event_ns;
    if (b->timer_fd < 0 || b->last_event_ns == 0 || since >= EVENT_INTERVAL_NS) {
        send_change(b);
        return;
    }
    int64_t left = EVENT_INTERVAL_NS - since;
    struct itimerspec its = { .it_value = { left / 1000000000LL, left % 1000000000LL } };
    if (timerfd_settime(b->timer_fd, 0, &its, NULL) == 0)
        b->event_pending = true;
    else
        send_change(b);
}

static void on_event_timer(void *opaque, uint32_t events)
{
    struct balloon *b = opaque;
    uint64_t n;
    if (read(b->timer_fd, &n, sizeof(n)) < 0)
        return;
    virtio_lock(b->vd);
    b->event_pending = false;
    /* Back where it was at the last event: nothing to tell. */
    if (actual_bytes(b) != b->last_event_actual)
        send_change(b);
    virtio_unlock(b->vd);
}

/* Only actual is the driver's to write; num_pages belongs to the device. */
static void balloon_config_write(struct virtio_dev *vd, unsigned off, const uint8_t *data,
                                 unsigned len)
{
    struct balloon *b = vd->priv;
    uint8_t cfg[CFG_SIZE];
    config_bytes(b, cfg);
    if (off >= CFG_SIZE || len > CFG_SIZE - off)
        return;
    for (unsigned i = 0; i < len; i++)
        if (off + i >= CFG_ACTUAL)
            cfg[off + i] = data[i];
    uint32_t actual = le32_get(cfg + CFG_ACTUAL);
    if (actual == b->actual)
        return;
    b->actual = actual;
    log_debug("virtio-balloon: guest has %u pages in the balloon (target %u)", actual,
              b->num_pages);
    emit_change(b);
}

/* ---- host side ---- */

int balloon_set_target(struct virtio_dev *vd, uint64_t guest_bytes, struct err *e)
{
    if (guest_bytes == 0)
        return err_set(e, EINVAL, "Parameter 'value' expects a size");
    virtio_lock(vd);
    struct balloon *b = vd->priv;
    uint64_t ram = vd->vm->ram_size;
    uint64_t give = guest_bytes < ram ? ram - guest_bytes : 0;
    /* VM_MAX_MEM keeps this within num_pages' 32 bits. */
    uint32_t pages = (uint32_t)(give >> BALLOON_PAGE_SHIFT);
    if (pages != b->num_pages) {
        b->num_pages = pages;
        virtio_config_changed(vd);
    }
    virtio_unlock(vd);
    return 0;
}

uint64_t balloon_actual_bytes(struct virtio_dev *vd)
{
    virtio_lock(vd);
    uint64_t v = actual_bytes(vd->priv);
    virtio_unlock(vd);
    return v;
}

uint64_t balloon_target_bytes(struct virtio_dev *vd)
{
    virtio_lock(vd);
    struct balloon *b = vd->priv;
    uint64_t give = (uint64_t)b->num_pages << BALLOON_PAGE_SHIFT;
    uint64_t v = vd->vm->ram_size - give;
    virtio_unlock(vd);
    return v;
}

void balloon_get_stats(struct virtio_dev *vd, struct balloon_stats *out)
{
    virtio_lock(vd);
    struct balloon *b = vd->priv;
    *out = b->stats;
    if (virtio_running(vd))
        request_stats(b);
    virtio_unlock(vd);
}

/* ---- control-socket commands ---- */

static int cmd_balloon(void *opaque, struct json_object *args, struct json_object **ret,
                       enum control_err_class *cls, struct err *e)
{
    static const char *const allowed[] = { "value", NULL };
    int64_t value;
    int r = control_args_only(args, allowed, e);
    if (r == 0)
        r = control_arg_int(args, "value", true, &value, e);
    if (r < 0)
        return r;
    if (value <= 0)
        return err_set(e, EINVAL, "Parameter 'value' expects a size");
    return balloon_set_target(opaque, (uint64_t)value, e);
}

static int cmd_query_balloon(void *opaque, struct json_object *args, struct json_object **ret,
                             enum control_err_class *cls, struct err *e)
{
    int r = control_args_only(args, (const char *const[]){ NULL }, e);
    if (r < 0)
        return r;
    struct json_object *o = json_object_new_object();
    if (!o)
        return err_set(e, ENOMEM, "out of memory");
    json_object_object_add(o, "actual", json_object_new_int64((int64_t)balloon_actual_bytes(opaque)));
    *ret = o;
    return 0;
}

/* cvirt's own: QEMU has these only through qom-get of guest-stats. The
 * shape matches that property (stats by QEMU's names, 2^64-1 for what the
 * guest did not report, as QEMU sends it, last-update in seconds since the
 * epoch) plus the ballooning counters. */
static int cmd_query_balloon_stats(void *opaque, struct json_object *args,
                                   struct json_object **ret, enum control_err_class *cls,
                                   struct err *e)
{
    struct virtio_dev *vd = opaque;
    int r = control_args_only(args, (const char *const[]){ NULL }, e);
    if (r < 0)
        return r;
    struct balloon_stats st;
    balloon_get_stats(vd, &st);
    virtio_lock(vd);
    struct balloon *b = vd->priv;
    uint64_t bad = b->bad_pfns;
    uint64_t actual = actual_bytes(b);
    uint64_t target = vd->vm->ram_size - ((uint64_t)b->num_pages << BALLOON_PAGE_SHIFT);
    virtio_unlock(vd);

    struct json_object *o = json_object_new_object(), *s = json_object_new_object();
    if (!o || !s) {
        json_object_put(o);
        json_object_put(s);
        return err_set(e, ENOMEM, "out of memory");
    }
    for (unsigned i = 0; i < BALLOON_S_NR; i++)
        json_object_object_add(s, stat_names[i],
                               json_object_new_uint64(st.valid[i] ? st.val[i] : UINT64_MAX));
    json_object_object_add(o, "stats", s);
    json_object_object_add(o, "last-update", json_object_new_int64((int64_t)st.last_update));
    json_object_object_add(o, "actual", json_object_new_int64((int64_t)actual));
    json_object_object_add(o, "target", json_object_new_int64((int64_t)target));
    json_object_object_add(o, "ignored-pfns", json_object_new_int64((int64_t)bad));
    *ret = o;
    return 0;
}

static int cmd_inactive(void *opaque, struct json_object *args, struct json_object **ret,
                        enum control_err_class *cls, struct err *e)
{
    *cls = CONTROL_ERR_DEVICE_NOT_ACTIVE;
    return err_set(e, ENODEV, "No balloon device has been activated");
}

int balloon_control_absent(struct control *c, struct err *e)
{
    static const char *const names[] = { "balloon", "query-balloon" };
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        int r = control_register(c, names[i], cmd_inactive, NULL);
        if (r < 0)
            return err_set_errno(e, -r, "cannot register %s", names[i]);
    }
    return 0;
}

static int register_commands(struct virtio_dev *vd, struct err *e)
{
    struct control *c = vd->vm->control;
    if (!c)
        return 0;
    static const struct {
        const char *name;
        control_cmd_fn fn;
    } cmds[] = {
        { "balloon", cmd_balloon },
        { "query-balloon", cmd_query_balloon },
        { "query-balloon-stats", cmd_query_balloon_stats },
    };
    for (unsigned i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        int r = control_register(c, cmds[i].name, cmds[i].fn, vd);
        if (r == -EEXIST)
            return err_set(e, EEXIST, "--balloon: only one balloon device is supported");
        if (r < 0)
            return err_set_errno(e, -r, "--balloon: cannot register %s", cmds[i].name);
    }
    return 0;
}

/* ---- device ops ---- */

static void balloon_destroy(struct virtio_dev *vd)
{
    struct balloon *b = vd->priv;
    if (!b)
        return;
    if (b->timer_fd >= 0) {
        evloop_del(vd->loop, b->timer_fd);
        close(b->timer_fd);
    }
    free(b);
    vd->priv = NULL;
}

static int parse_arg(struct balloon *b, const char *arg, struct err *e)
{
    if (!arg || !*arg)
        return 0;
    if (!strcmp(arg, "deflate-on-oom=on"))
        b->deflate_on_oom = true;
    else if (strcmp(arg, "deflate-on-oom=off"))
        return err_set(e, EINVAL, "--balloon '%s': the only option is deflate-on-oom=on|off",
                       arg);
    return 0;
}

static int balloon_create(struct virtio_dev *vd, const char *arg, struct err *e)
{
    struct balloon *b = calloc(1, sizeof(*b));
    if (!b)
        return err_set(e, ENOMEM, "out of memory");
    b->vd = vd;
    b->timer_fd = -1;
    b->last_event_actual = vd->vm->ram_size;
    int r = parse_arg(b, arg, e);
    if (r < 0) {
        free(b);
        return r;
    }
    vd->priv = b;
    vd->device_features = 1ULL << BALLOON_F_STATS_VQ;
    if (b->deflate_on_oom)
        vd->device_features |= 1ULL << BALLOON_F_DEFLATE_ON_OOM;
    if (vd->vm->control && vd->loop) {
        b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (b->timer_fd < 0)
            r = err_set_errno(e, errno, "--balloon: timerfd");
        else if ((r = evloop_add(vd->loop, b->timer_fd, EPOLLIN, on_event_timer, b)) < 0)
            err_set_errno(e, -r, "--balloon: cannot watch its timer");
    }
    if (r == 0)
        r = register_commands(vd, e);
    if (r < 0) {
        balloon_destroy(vd);
    }
    return r;
}

/* The driver starts over with an empty balloon (after a machine reset the
 * memory was wiped anyway); the host's target stays, so the new driver
 * inflates to it again. */
static void balloon_reset(struct virtio_dev *vd)
{
    struct balloon *b = vd->priv;
    b->stats_held = false;
    b->bad_pfn_logged = false;
    if (b->actual) {
        b->actual = 0;
        emit_change(b);
    }
}

/* ---- save/restore ---- */

/* The held stats buffer stays the guest's chain in the restored memory:
 * its head is enough to hand it back on the next query. The last report
 * goes along so that query-balloon-stats answers the same right away. */
static void balloon_save(struct virtio_dev *vd, struct snapbuf *sb)
{
    struct balloon *b = vd->priv;
    snapbuf_put_u32(sb, b->num_pages);
    snapbuf_put_u32(sb, b->actual);
    snapbuf_put_u8(sb, b->stats_held);
    snapbuf_put_u16(sb, b->stats_head);
    snapbuf_put_u8(sb, BALLOON_S_NR);
    for (unsigned i = 0; i < BALLOON_S_NR; i++) {
        snapbuf_put_u8(sb, b->stats.valid[i]);
        snapbuf_put_u64(sb, b->stats.val[i]);
    }
    snapbuf_put_u64(sb, (uint64_t)b->stats.last_update);
}

static int balloon_load(struct virtio_dev *vd, struct snapbuf *sb, struct err *e)
{
    struct balloon *b = vd->priv;
    uint32_t num_pages = snapbuf_get_u32(sb), actual = snapbuf_get_u32(sb);
    bool held = snapbuf_get_bool(sb);
    uint16_t head = snapbuf_get_u16(sb);
    unsigned nstats = snapbuf_get_u8(sb);
    if (sb->short_read)
        return err_set(e, EINVAL, "state truncated");
    if (nstats != BALLOON_S_NR)
        return err_set(e, EINVAL, "%u statistics saved, this device keeps %u", nstats,
                       BALLOON_S_NR);
    struct balloon_stats st = { 0 };
    for (unsigned i = 0; i < BALLOON_S_NR; i++) {
        st.valid[i] = snapbuf_get_bool(sb);
        st.val[i] = snapbuf_get_u64(sb);
    }
    st.last_update = (time_t)snapbuf_get_u64(sb);
    if (sb->short_read)
        return err_set(e, EINVAL, "state truncated");
    if ((uint64_t)num_pages > vd->vm->ram_size / BALLOON_PAGE_SIZE)
        return err_set(e, EINVAL, "target of %u pages is more than the RAM", num_pages);
    if (held && (!vd->vqs[Q_STATS].ready || head >= vd->vqs[Q_STATS].size))
        return err_set(e, EINVAL, "held stats buffer %u is outside its queue", head);
    b->num_pages = num_pages;
    b->actual = actual;
    b->stats_held = held;
    b->stats_head = held ? head : 0;
    b->stats = st;
    /* The source already told its clients about this value. */
    b->last_event_actual = actual_bytes(b);
    return 0;
}

const struct virtio_dev_ops virtio_balloon_ops = {
    .name = "balloon",
    .device_id = VIRTIO_ID_BALLOON,
    .nqueues = 3,
    .queue_size = 128,
    .config_size = CFG_SIZE,
    .create = balloon_create,
    .destroy = balloon_destroy,
    .config_read = balloon_config_read,
    .config_write = balloon_config_write,
    .queue_notify = balloon_queue_notify,
    .reset = balloon_reset,
    .save = balloon_save,
    .load = balloon_load,
};
