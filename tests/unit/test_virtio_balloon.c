/* virtio-balloon over a recording transport and a fake guest memory of two
 * slots with a hole between them (like RAM below the PCI hole and above
 * 4 GiB): options and features, config space, inflate and deflate through
 * real split virtqueues with good and hostile PFNs, the stats queue's
 * hold-and-return protocol, and reset. Whether a page went back to the
 * host is read from mincore(), not assumed from the device's word. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "control.h"
#include "fake_vm.h"
#include "snapshot/stream.h"
#include "util/evloop.h"
#include "util/le.h"
#include "virtio/balloon.h"
#include "virtio/virtio.h"
#include "vm.h"

#define SLOT_SIZE (16ULL << 20)
#define MEM_SIZE  (2 * SLOT_SIZE)
#define HIGH_GPA  (4ULL << 30)
#define QSIZE 16
/* Rings of queue q at QBASE(q); buffers the device reads at BUF. */
#define QBASE(q) (0x10000ULL * ((q) + 1))
#define BUF      0x80000ULL
#define PAGE     4096ULL

#define F_STATS_VQ 1
#define F_DEFLATE_ON_OOM 2

struct fixture {
    struct vm vm;
    uint8_t *mem;
    struct virtio_dev vd;
    bool up;
    uint16_t avail_idx[3];
    unsigned config_irqs, queue_irqs;
};

static struct fixture *cur;
static void irq_queue(void *opaque, unsigned q) { cur->queue_irqs++; }
static void irq_config(void *opaque) { cur->config_irqs++; }
static const struct virtio_transport_ops transport = {
    .interrupt_queue = irq_queue, .interrupt_config = irq_config,
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->mem = fake_vm_map(&f->vm, MEM_SIZE, HIGH_GPA);
    cur = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->up)
        virtio_dev_fini(&f->vd);
    fake_vm_unmap(&f->vm);
    free(f);
    return 0;
}

static void bring_up(struct fixture *f, const char *arg)
{
    struct err e = { 0 };
    assert_int_equal(virtio_dev_init(&f->vd, &virtio_balloon_ops, &f->vm, NULL, arg, &e), 0);
    f->up = true;
    struct fake_ring rings[3];
    for (unsigned q = 0; q < 3; q++)
        rings[q] = (struct fake_ring){ QBASE(q), QBASE(q) + 0x1000, QBASE(q) + 0x2000 };
    fake_vm_virtio_up(&f->vd, &transport, ~0ULL, 3, rings, QSIZE);
}

/* Guest address -> test pointer, for either slot. */
static uint8_t *g(struct fixture *f, uint64_t gpa)
{
    void *p = vm_gpa(&f->vm, gpa, 1);
    assert_non_null(p);
    return p;
}

static uint16_t used_idx(struct fixture *f, unsigned q)
{
    return le16_get(g(f, QBASE(q) + 0x2000 + 2));
}

static uint32_t used_len(struct fixture *f, unsigned q, uint16_t slot)
{
    return le32_get(g(f, QBASE(q) + 0x2000 + 4 + 8 * (slot % QSIZE) + 4));
}

/* Offers one device-readable buffer of len bytes at BUF on queue q as the
 * chain at descriptor head, and kicks. */
static void offer(struct fixture *f, unsigned q, uint16_t head, uint32_t len, bool writable)
{
    uint8_t *d = g(f, QBASE(q) + 16 * head);
    le64_put(d, BUF + 0x1000 * head);
    le32_put(d + 8, len);
    le16_put(d + 12, writable ? VIRTQ_DESC_F_WRITE : 0);
    le16_put(d + 14, 0);
    uint8_t *avail = g(f, QBASE(q) + 0x1000);
    le16_put(avail + 4 + 2 * (f->avail_idx[q] % QSIZE), head);
    f->avail_idx[q]++;
    le16_put(avail + 2, f->avail_idx[q]);
    fake_vm_kick(&f->vd, q);
}

/* Sends PFNs on the inflate (q 0) or deflate (q 1) queue and checks the
 * buffer came back at once with nothing written. */
static void send_pfns(struct fixture *f, unsigned q, const uint32_t *pfns, unsigned n,
                      unsigned extra_bytes)
{
    uint8_t *buf = g(f, BUF);
    for (unsigned i = 0; i < n; i++)
        le32_put(buf + 4 * i, pfns[i]);
    uint16_t before = used_idx(f, q);
    offer(f, q, 0, 4 * n + extra_bytes, false);
    assert_int_equal(used_idx(f, q), (uint16_t)(before + 1));
    assert_int_equal(used_len(f, q, before), 0);
    assert_true(virtio_running(&f->vd));
}

static bool resident(struct fixture *f, uint64_t gpa)
{
    unsigned char v = 0;
    uint8_t *p = vm_gpa(&f->vm, gpa, PAGE);
    assert_non_null(p);
    assert_int_equal(mincore(p, PAGE, &v), 0);
    return v & 1;
}

/* Pages the test writes before inflating, by guest address. */
static void fill(struct fixture *f, uint64_t gpa, uint8_t v)
{
    memset(g(f, gpa), v, PAGE);
}

static uint32_t cfg32(struct fixture *f, unsigned off)
{
    uint8_t b[4] = { 0 };
    virtio_balloon_ops.config_read(&f->vd, off, b, 4);
    return le32_get(b);
}

static void cfg_write32(struct fixture *f, unsigned off, uint32_t v)
{
    uint8_t b[4];
    le32_put(b, v);
    virtio_lock(&f->vd);
    virtio_balloon_ops.config_write(&f->vd, off, b, 4);
    virtio_unlock(&f->vd);
}

static void test_options_and_features(void **state)
{
    struct fixture *f = *state;
    static const char *bad[] = { "bogus", "deflate-on-oom=maybe", "deflate-on-oom" };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct err e = { 0 };
        struct virtio_dev vd;
        assert_true(virtio_dev_init(&vd, &virtio_balloon_ops, &f->vm, NULL, bad[i], &e) < 0);
        assert_true(err_is_set(&e));
        assert_non_null(strstr(e.msg, bad[i]));
    }
    struct err e = { 0 };
    struct virtio_dev vd;
    assert_int_equal(virtio_dev_init(&vd, &virtio_balloon_ops, &f->vm, NULL,
                                     "deflate-on-oom=on", &e), 0);
    assert_true(vd.host_features & (1ULL << F_DEFLATE_ON_OOM));
    assert_true(vd.host_features & (1ULL << F_STATS_VQ));
    assert_true(vd.host_features & (1ULL << VIRTIO_F_VERSION_1));
    virtio_dev_fini(&vd);

    bring_up(f, NULL);
    assert_false(f->vd.host_features & (1ULL << F_DEFLATE_ON_OOM));
    assert_true(f->vd.host_features & (1ULL << F_STATS_VQ));
    /* MUST_TELL_HOST: not needed, the host drops pages whenever told. */
    assert_false(f->vd.host_features & 1);
    assert_int_equal(virtio_balloon_ops.config_size, 8);
    assert_int_equal(virtio_balloon_ops.device_id, 5);
}

static void test_config(void **state)
{
    struct fixture *f = *state;
    bring_up(f, "");
    struct err e = { 0 };
    assert_int_equal(cfg32(f, 0), 0);
    assert_int_equal(cfg32(f, 4), 0);
    assert_int_equal(balloon_actual_bytes(&f->vd), MEM_SIZE);

    /* Keep all but 1 MiB: 256 pages to give. */
    unsigned irqs = f->config_irqs;
    uint8_t gen = f->vd.config_generation;
    assert_int_equal(balloon_set_target(&f->vd, MEM_SIZE - (1 << 20), &e), 0);
    assert_int_equal(cfg32(f, 0), 256);
    assert_int_equal(f->config_irqs, irqs + 1);
    assert_int_not_equal(f->vd.config_generation, gen);
    assert_int_equal(balloon_target_bytes(&f->vd), MEM_SIZE - (1 << 20));
    /* The same target again changes nothing the driver must see. */
    assert_int_equal(balloon_set_target(&f->vd, MEM_SIZE - (1 << 20), &e), 0);
    assert_int_equal(f->config_irqs, irqs + 1);
    /* A size that is not a page multiple rounds the pages to give down. */
    assert_int_equal(balloon_set_target(&f->vd, MEM_SIZE - 3 * PAGE - 1, &e), 0);
    assert_int_equal(cfg32(f, 0), 3);
    /* More than the RAM: give everything back. Zero: refused. */
    assert_int_equal(balloon_set_target(&f->vd, MEM_SIZE * 4, &e), 0);
    assert_int_equal(cfg32(f, 0), 0);
    assert_true(balloon_set_target(&f->vd, 0, &e) < 0);
    assert_true(err_is_set(&e));

    /* The driver writes actual; its writes to num_pages are ignored. */
    assert_int_equal(balloon_set_target(&f->vd, MEM_SIZE - 40 * PAGE, &e), 0);
    cfg_write32(f, 4, 10);
    assert_int_equal(cfg32(f, 4), 10);
    assert_int_equal(balloon_actual_bytes(&f->vd), MEM_SIZE - 10 * PAGE);
    cfg_write32(f, 0, 12345);
    assert_int_equal(cfg32(f, 0), 40);
    /* Byte-wide accesses, and a write straddling both fields. */
    uint8_t b = 0x02;
    virtio_balloon_ops.config_write(&f->vd, 5, &b, 1);
    assert_int_equal(cfg32(f, 4), 0x20a);
    uint8_t two[2] = { 0, 0 };
    virtio_balloon_ops.config_read(&f->vd, 0, two, 1);
    assert_int_equal(two[0], 40);
    uint8_t span[4] = { 0xff, 0xff, 7, 0 };
    virtio_balloon_ops.config_write(&f->vd, 2, span, 4);
    assert_int_equal(cfg32(f, 0), 40);
    assert_int_equal(cfg32(f, 4), 7);
    /* Out of range accesses do nothing. */
    uint8_t junk[4] = { 1, 2, 3, 4 };
    virtio_balloon_ops.config_write(&f->vd, 6, junk, 4);
    virtio_balloon_ops.config_write(&f->vd, 100, junk, 4);
    assert_int_equal(cfg32(f, 4), 7);
    /* A driver claiming more pages than the RAM holds: no wrap-around. */
    cfg_write32(f, 4, 0xffffffff);
    assert_int_equal(balloon_actual_bytes(&f->vd), 0);
}

static void test_inflate(void **state)
{
    struct fixture *f = *state;
    bring_up(f, NULL);
    /* Low slot: two adjacent pages and a lone one; high slot: one. Their
     * neighbours must survive. */
    const uint64_t low = 0x200000, lone = 0x5000, high = HIGH_GPA + 0x300000;
    for (int i = -1; i <= 2; i++)
        fill(f, low + i * PAGE, 0xaa);
    fill(f, lone, 0xbb);
    fill(f, lone + PAGE, 0xbc);
    fill(f, high - PAGE, 0xcc);
    fill(f, high, 0xcd);
    fill(f, high + PAGE, 0xce);
    const uint32_t pfns[] = { low >> 12, (low >> 12) + 1, lone >> 12, high >> 12 };
    send_pfns(f, 0, pfns, 4, 0);
    /* Gone from the host: not resident until the guest touches them. */
    assert_false(resident(f, low));
    assert_false(resident(f, low + PAGE));
    assert_false(resident(f, lone));
    assert_false(resident(f, high));
    assert_true(resident(f, low - PAGE));
    assert_true(resident(f, low + 2 * PAGE));
    assert_true(resident(f, lone + PAGE));
    assert_true(resident(f, high - PAGE));
    assert_true(resident(f, high + PAGE));
    assert_int_equal(g(f, low - PAGE)[PAGE - 1], 0xaa);
    assert_int_equal(g(f, low + 2 * PAGE)[0], 0xaa);
    assert_int_equal(g(f, lone + PAGE)[0], 0xbc);
    assert_int_equal(g(f, high - PAGE)[PAGE - 1], 0xcc);
    assert_int_equal(g(f, high + PAGE)[0], 0xce);
    /* A touch brings back a zero page. */
    assert_int_equal(g(f, low)[0], 0);
    assert_int_equal(g(f, high)[PAGE - 1], 0);
    assert_true(f->queue_irqs > 0);
}

/* Counts resident pages of the whole fake RAM. */
static unsigned resident_pages(struct fixture *f)
{
    static unsigned char vec[MEM_SIZE / PAGE];
    assert_int_equal(mincore(f->mem, MEM_SIZE, vec), 0);
    unsigned n = 0;
    for (size_t i = 0; i < sizeof(vec); i++)
        n += vec[i] & 1;
    return n;
}

static void test_hostile_pfns(void **state)
{
    struct fixture *f = *state;
    /* Every page is touched (rings zeroed, the rest filled), so any page
     * dropped by mistake shows up in the resident count. */
    memset(f->mem, 0, 0x100000);
    memset(f->mem + 0x100000, 0x5a, MEM_SIZE - 0x100000);
    bring_up(f, NULL);
    unsigned before = resident_pages(f);
    assert_int_equal(before, MEM_SIZE / PAGE);
    const uint64_t good = 0x400000;
    const uint32_t pfns[] = {
        SLOT_SIZE >> 12,                 /* first page of the hole */
        0x80000,                         /* 2 GiB: in the hole */
        (HIGH_GPA >> 12) - 1,            /* last page before the high slot */
        (HIGH_GPA + SLOT_SIZE) >> 12,    /* just past the high slot */
        0xffffffff,                      /* the largest PFN there is */
        good >> 12,                      /* one good page among them */
        0x7fffffff,
    };
    send_pfns(f, 0, pfns, sizeof(pfns) / sizeof(pfns[0]), 3 /* a torn trailing PFN */);
    assert_false(resident(f, good));
    assert_int_equal(resident_pages(f), before - 1);

    /* A buffer the device may write but not read holds no PFNs. */
    fill(f, good, 1);
    le32_put(g(f, BUF), good >> 12);
    uint16_t u = used_idx(f, 0);
    offer(f, 0, 0, 4, true);
    assert_int_equal(used_idx(f, 0), (uint16_t)(u + 1));
    assert_true(resident(f, good));

    /* An empty buffer is fine; one running off the low slot into the
     * hole is refused by the ring before the device sees a PFN. */
    send_pfns(f, 0, NULL, 0, 0);
    assert_true(virtio_running(&f->vd));
    uint8_t *d = g(f, QBASE(0));
    le64_put(d, SLOT_SIZE - 8);
    le32_put(d + 8, 64);
    le16_put(d + 12, 0);
    uint8_t *avail = g(f, QBASE(0) + 0x1000);
    le16_put(avail + 4 + 2 * (f->avail_idx[0] % QSIZE), 0);
    le16_put(avail + 2, ++f->avail_idx[0]);
    fake_vm_kick(&f->vd, 0);
    /* Marked broken, nothing dropped, no crash. */
    assert_false(virtio_running(&f->vd));
    assert_true(resident(f, good));
}

static void test_many_pfns(void **state)
{
    struct fixture *f = *state;
    bring_up(f, NULL);
    /* More PFNs than one read step takes, in two runs with a gap. */
    enum { N = 700 };
    static uint32_t pfns[N];
    const uint64_t base = 0x800000;
    memset(g(f, base), 0x11, (N + 1) * PAGE);
    for (unsigned i = 0; i < N; i++)
        pfns[i] = (uint32_t)((base >> 12) + i + (i >= 300));
    send_pfns(f, 0, pfns, N, 0);
    for (unsigned i = 0; i <= N; i++)
        assert_int_equal(resident(f, base + i * PAGE), i == 300);
}

static void test_deflate(void **state)
{
    struct fixture *f = *state;
    bring_up(f, NULL);
    const uint64_t page = 0x600000;
    fill(f, page, 0x77);
    const uint32_t pfns[] = { page >> 12, 0xfffffff0 };
    send_pfns(f, 1, pfns, 2, 0);
    /* Deflating is the guest taking a page back: the host leaves it be. */
    assert_true(resident(f, page));
    assert_int_equal(g(f, page)[0], 0x77);
}

static void put_stat(uint8_t *p, uint16_t tag, uint64_t v)
{
    le16_put(p, tag);
    le64_put(p + 2, v);
}

static void test_stats(void **state)
{
    struct fixture *f = *state;
    bring_up(f, NULL);
    struct balloon_stats st;
    balloon_get_stats(&f->vd, &st);
    assert_int_equal(st.last_update, 0);
    for (unsigned i = 0; i < BALLOON_S_NR; i++)
        assert_false(st.valid[i]);

    /* The driver's first report: all ten tags, one from a newer spec, and
     * a torn entry at the end. */
    uint8_t *buf = g(f, BUF);
    unsigned n = 0;
    for (uint16_t t = 0; t < BALLOON_S_NR; t++)
        put_stat(buf + 10 * n++, t, 1000ULL * (t + 1) + 0x100000000ULL);
    put_stat(buf + 10 * n++, 42, 5);
    uint16_t u = used_idx(f, 2);
    offer(f, 2, 0, 10 * n + 4, false);
    /* Held, not returned: returning it is how the host asks for more. */
    assert_int_equal(used_idx(f, 2), u);

    balloon_get_stats(&f->vd, &st);
    assert_true(st.last_update > 0);
    for (unsigned t = 0; t < BALLOON_S_NR; t++) {
        assert_true(st.valid[t]);
        assert_int_equal(st.val[t], 1000ULL * (t + 1) + 0x100000000ULL);
    }
    assert_string_equal(balloon_stat_name(BALLOON_S_MEMFREE), "stat-free-memory");
    assert_string_equal(balloon_stat_name(BALLOON_S_MEMTOT), "stat-total-memory");
    /* The read asked for fresh numbers: the buffer went back. */
    assert_int_equal(used_idx(f, 2), (uint16_t)(u + 1));
    balloon_get_stats(&f->vd, &st);
    assert_int_equal(used_idx(f, 2), (uint16_t)(u + 1));

    /* The second report has two tags only; the others are stale now. */
    n = 0;
    put_stat(buf + 0x1000 + 10 * n++, BALLOON_S_MEMFREE, 123456);
    put_stat(buf + 0x1000 + 10 * n++, BALLOON_S_SWAP_OUT, 7);
    offer(f, 2, 1, 10 * n, false);
    balloon_get_stats(&f->vd, &st);
    assert_true(st.valid[BALLOON_S_MEMFREE] && st.valid[BALLOON_S_SWAP_OUT]);
    assert_int_equal(st.val[BALLOON_S_MEMFREE], 123456);
    assert_int_equal(st.val[BALLOON_S_SWAP_OUT], 7);
    assert_false(st.valid[BALLOON_S_MEMTOT]);

    /* A driver offering a second buffer while one is held gets the first
     * one back and the newer report counts. */
    put_stat(buf, BALLOON_S_AVAIL, 1);
    offer(f, 2, 0, 10, false);
    u = used_idx(f, 2);
    put_stat(buf + 0x1000, BALLOON_S_AVAIL, 2);
    offer(f, 2, 1, 10, false);
    assert_int_equal(used_idx(f, 2), (uint16_t)(u + 1));
    balloon_get_stats(&f->vd, &st);
    assert_int_equal(st.val[BALLOON_S_AVAIL], 2);
}

static void test_stats_without_feature(void **state)
{
    struct fixture *f = *state;
    struct err e = { 0 };
    assert_int_equal(virtio_dev_init(&f->vd, &virtio_balloon_ops, &f->vm, NULL, NULL, &e), 0);
    f->up = true;
    f->vd.transport = &transport;
    virtio_set_status(&f->vd, 3);
    f->vd.guest_features = 1ULL << VIRTIO_F_VERSION_1;
    virtio_set_status(&f->vd, 3 | VIRTIO_STATUS_FEATURES_OK);
    for (unsigned q = 0; q < 3; q++)
        assert_int_equal(virtio_queue_enable(&f->vd, q, QSIZE, QBASE(q), QBASE(q) + 0x1000,
                                             QBASE(q) + 0x2000), 0);
    virtio_set_status(&f->vd, 3 | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
    /* Without STATS_VQ there is no stats queue: a buffer there is ignored. */
    put_stat(g(f, BUF), BALLOON_S_MEMFREE, 99);
    offer(f, 2, 0, 10, false);
    struct balloon_stats st;
    balloon_get_stats(&f->vd, &st);
    assert_false(st.valid[BALLOON_S_MEMFREE]);
}

static void test_reset(void **state)
{
    struct fixture *f = *state;
    bring_up(f, NULL);
    struct err e = { 0 };
    assert_int_equal(balloon_set_target(&f->vd, MEM_SIZE / 2, &e), 0);
    cfg_write32(f, 4, 100);
    put_stat(g(f, BUF), BALLOON_S_MEMFREE, 5);
    offer(f, 2, 0, 10, false);
    uint16_t u = used_idx(f, 2);
    virtio_lock(&f->vd);
    virtio_reset(&f->vd);
    virtio_unlock(&f->vd);
    /* The new driver starts with an empty balloon and the same target;
     * the held stats buffer belonged to the old rings. */
    assert_int_equal(cfg32(f, 4), 0);
    assert_int_equal(cfg32(f, 0), (MEM_SIZE / 2) / PAGE);
    assert_int_equal(balloon_actual_bytes(&f->vd), MEM_SIZE);
    struct balloon_stats st;
    balloon_get_stats(&f->vd, &st);
    assert_int_equal(used_idx(f, 2), u);
}

/* The commands, through the control server's own dispatcher. */
static struct json_object *qmp(struct control *c, struct control_session *s, const char *req)
{
    struct json_object *r = control_session_handle(c, s, req, strlen(req));
    assert_non_null(r);
    return r;
}

static void qmp_ok(struct control *c, struct control_session *s, const char *req,
                   struct json_object **ret)
{
    struct json_object *r = qmp(c, s, req), *v;
    if (!json_object_object_get_ex(r, "return", &v))
        fail_msg("%s -> %s", req, json_object_to_json_string(r));
    *ret = json_object_get(v);
    json_object_put(r);
}

static void qmp_error(struct control *c, struct control_session *s, const char *req)
{
    struct json_object *r = qmp(c, s, req), *v;
    if (!json_object_object_get_ex(r, "error", &v))
        fail_msg("%s -> %s, expected an error", req, json_object_to_json_string(r));
    json_object_put(r);
}

static int64_t member(struct json_object *o, const char *name)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, name, &v))
        fail_msg("no '%s' in %s", name, json_object_to_json_string(o));
    return json_object_get_int64(v);
}

static uint64_t umember(struct json_object *o, const char *name)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, name, &v))
        fail_msg("no '%s' in %s", name, json_object_to_json_string(o));
    return json_object_get_uint64(v);
}

static void test_qmp(void **state)
{
    struct fixture *f = *state;
    struct err e = { 0 };
    struct control *c;
    struct control_session s;
    assert_int_equal(control_new(&c, NULL, &e), 0);
    control_session_init(&s);
    f->vm.control = c;
    bring_up(f, NULL);
    struct json_object *ret;
    qmp_ok(c, &s, "{\"execute\": \"qmp_capabilities\"}", &ret);
    json_object_put(ret);

    char req[200];
    snprintf(req, sizeof(req), "{\"execute\": \"balloon\", \"arguments\": {\"value\": %llu}}",
             (unsigned long long)(MEM_SIZE - (1 << 20)));
    qmp_ok(c, &s, req, &ret);
    json_object_put(ret);
    assert_int_equal(cfg32(f, 0), 256);
    qmp_error(c, &s, "{\"execute\": \"balloon\", \"arguments\": {\"value\": 0}}");
    qmp_error(c, &s, "{\"execute\": \"balloon\", \"arguments\": {\"value\": -4096}}");
    qmp_error(c, &s, "{\"execute\": \"balloon\", \"arguments\": {\"value\": \"1G\"}}");
    qmp_error(c, &s, "{\"execute\": \"balloon\"}");
    qmp_error(c, &s, "{\"execute\": \"balloon\", \"arguments\": {\"value\": 1, \"x\": 1}}");
    assert_int_equal(cfg32(f, 0), 256);

    cfg_write32(f, 4, 200);
    qmp_ok(c, &s, "{\"execute\": \"query-balloon\"}", &ret);
    assert_int_equal(member(ret, "actual"), MEM_SIZE - 200 * PAGE);
    json_object_put(ret);

    qmp_ok(c, &s, "{\"execute\": \"query-balloon-stats\"}", &ret);
    struct json_object *st;
    assert_true(json_object_object_get_ex(ret, "stats", &st));
    /* Not reported yet: QEMU's marker, the largest 64-bit number. */
    assert_true(umember(st, "stat-free-memory") == UINT64_MAX);
    assert_int_equal(member(ret, "last-update"), 0);
    assert_int_equal(member(ret, "target"), MEM_SIZE - (1 << 20));
    json_object_put(ret);
    put_stat(g(f, BUF), BALLOON_S_MEMFREE, 5 << 20);
    put_stat(g(f, BUF) + 10, BALLOON_S_MEMTOT, MEM_SIZE);
    offer(f, 2, 0, 20, false);
    const uint32_t bad[] = { 0xfffff };
    send_pfns(f, 0, bad, 1, 0);
    qmp_ok(c, &s, "{\"execute\": \"query-balloon-stats\"}", &ret);
    assert_true(json_object_object_get_ex(ret, "stats", &st));
    assert_int_equal(member(st, "stat-free-memory"), 5 << 20);
    assert_int_equal(member(st, "stat-total-memory"), MEM_SIZE);
    assert_true(umember(st, "stat-swap-in") == UINT64_MAX);
    assert_true(member(ret, "last-update") > 0);
    assert_int_equal(member(ret, "ignored-pfns"), 1);
    json_object_put(ret);

    /* A second balloon device cannot take the same command names. */
    struct virtio_dev vd2;
    assert_true(virtio_dev_init(&vd2, &virtio_balloon_ops, &f->vm, NULL, NULL, &e) < 0);
    assert_non_null(strstr(e.msg, "one balloon"));

    virtio_dev_fini(&f->vd);
    f->up = false;
    control_session_fini(&s);
    control_free(c);
}

/* Without a balloon, QEMU's commands say so with DeviceNotActive. */
static void test_qmp_no_balloon(void **state)
{
    struct err e = { 0 };
    struct json_object *ret;
    struct control *c2;
    struct control_session s2;
    assert_int_equal(control_new(&c2, NULL, &e), 0);
    control_session_init(&s2);
    assert_int_equal(balloon_control_absent(c2, &e), 0);
    qmp_ok(c2, &s2, "{\"execute\": \"qmp_capabilities\"}", &ret);
    json_object_put(ret);
    for (int i = 0; i < 2; i++) {
        const char *req = i ? "{\"execute\": \"query-balloon\"}"
                            : "{\"execute\": \"balloon\", \"arguments\": {\"value\": 1}}";
        struct json_object *r = qmp(c2, &s2, req), *err, *cls;
        assert_true(json_object_object_get_ex(r, "error", &err));
        assert_true(json_object_object_get_ex(err, "class", &cls));
        assert_string_equal(json_object_get_string(cls), "DeviceNotActive");
        json_object_put(r);
    }
    control_session_fini(&s2);
    control_free(c2);
}

/* ---- BALLOON_CHANGE over a real socket, with the event loop ---- */

struct client {
    struct evloop *loop;
    int fd;
    char buf[65536];
    size_t len;
};

/* Runs the loop for about ms and gathers what the server sent. */
static void pump(struct client *cl, int ms)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        evloop_run_once(cl->loop, 10);
        ssize_t n;
        while (cl->len < sizeof(cl->buf) - 1 &&
               (n = recv(cl->fd, cl->buf + cl->len, sizeof(cl->buf) - 1 - cl->len,
                         MSG_DONTWAIT)) > 0)
            cl->len += (size_t)n;
        cl->buf[cl->len] = 0;
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

/* The "actual" values of the BALLOON_CHANGE events received, in order. */
static unsigned events(struct client *cl, int64_t *out, unsigned max)
{
    unsigned n = 0;
    for (char *line = cl->buf, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = 0;
        struct json_object *o = json_tokener_parse(line), *ev, *data;
        *nl = '\n';
        if (o && json_object_object_get_ex(o, "event", &ev) &&
            !strcmp(json_object_get_string(ev), "BALLOON_CHANGE") &&
            json_object_object_get_ex(o, "data", &data) && n < max)
            out[n++] = member(data, "actual");
        json_object_put(o);
    }
    return n;
}

static void test_event_throttle(void **state)
{
    struct fixture *f = *state;
    struct err e = { 0 };
    struct client cl = { .loop = evloop_new() };
    assert_non_null(cl.loop);
    char path[64];
    snprintf(path, sizeof(path), "/tmp/test_balloon.%d.sock", (int)getpid());
    struct control *c;
    assert_int_equal(control_new(&c, cl.loop, &e), 0);
    assert_int_equal(control_listen(c, path, &e), 0);
    f->vm.control = c;
    assert_int_equal(virtio_dev_init(&f->vd, &virtio_balloon_ops, &f->vm, cl.loop, NULL, &e), 0);
    f->up = true;
    f->vd.transport = &transport;

    cl.fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    assert_int_equal(connect(cl.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    pump(&cl, 50);
    const char *caps = "{\"execute\": \"qmp_capabilities\"}\n";
    assert_int_equal(send(cl.fd, caps, strlen(caps), 0), (ssize_t)strlen(caps));
    pump(&cl, 50);
    assert_non_null(strstr(cl.buf, "\"return\""));

    /* A burst: the first change goes out at once, the rest fold into one
     * event with the latest value at the end of the interval. */
    int64_t ev[8];
    for (uint32_t a = 1; a <= 5; a++)
        cfg_write32(f, 4, a);
    pump(&cl, 50);
    /* (At least one: a host stalled past the interval may have sent the
     * second as well.) */
    assert_true(events(&cl, ev, 8) >= 1);
    assert_int_equal(ev[0], MEM_SIZE - PAGE);
    pump(&cl, 1300);
    assert_int_equal(events(&cl, ev, 8), 2);
    assert_int_equal(ev[1], MEM_SIZE - 5 * PAGE);
    /* Out and back within the interval: nothing new to tell. */
    cfg_write32(f, 4, 9);
    cfg_write32(f, 4, 5);
    pump(&cl, 1300);
    assert_int_equal(events(&cl, ev, 8), 2);
    /* Long after the last event, a change goes out at once again. */
    cfg_write32(f, 4, 7);
    pump(&cl, 50);
    assert_int_equal(events(&cl, ev, 8), 3);
    assert_int_equal(ev[2], MEM_SIZE - 7 * PAGE);

    close(cl.fd);
    virtio_dev_fini(&f->vd);
    f->up = false;
    control_free(c);
    evloop_free(cl.loop);
}

/* The device's part of a saved virtio state: the last bytes. */
#define DEV_STATE_LEN (4 + 4 + 1 + 2 + 1 + 9 * BALLOON_S_NR + 8)

static int load_from(struct fixture *f, const struct snapbuf *saved)
{
    struct snapbuf r;
    snapbuf_view(&r, saved->data, saved->len);
    struct err e = { 0 };
    return virtio_dev_load(&f->vd, &r, &e);
}

/* Target, actual, the last report and the held stats buffer come back;
 * the first query after the load hands the held chain (head 3) back to
 * the guest, as the source would have. */
static void test_save_load(void **state)
{
    struct fixture *f = *state;
    bring_up(f, NULL);
    struct err e = { 0 };
    assert_int_equal(balloon_set_target(&f->vd, MEM_SIZE - (1 << 20), &e), 0);
    cfg_write32(f, 4, 100);
    put_stat(g(f, BUF + 0x3000), BALLOON_S_MEMFREE, 777);
    offer(f, 2, 3, 10, false);
    uint16_t u = used_idx(f, 2);
    struct snapbuf sb;
    snapbuf_init(&sb);
    virtio_dev_save(&f->vd, &sb);
    assert_false(sb.nomem);

    /* What a fresh destination device would hold instead. */
    assert_int_equal(balloon_set_target(&f->vd, MEM_SIZE, &e), 0);
    assert_int_equal(load_from(f, &sb), 0);
    assert_int_equal(cfg32(f, 0), 256);
    assert_int_equal(cfg32(f, 4), 100);
    assert_int_equal(balloon_actual_bytes(&f->vd), MEM_SIZE - 100 * PAGE);
    assert_int_equal(used_idx(f, 2), u);
    struct balloon_stats st;
    balloon_get_stats(&f->vd, &st);
    assert_true(st.valid[BALLOON_S_MEMFREE]);
    assert_int_equal(st.val[BALLOON_S_MEMFREE], 777);
    assert_true(st.last_update > 0);
    assert_int_equal(used_idx(f, 2), (uint16_t)(u + 1));
    uint8_t *elem = g(f, QBASE(2) + 0x2000 + 4 + 8 * (u % QSIZE));
    assert_int_equal(le32_get(elem), 3);
    /* Nothing is held any more: a second query returns nothing again. */
    balloon_get_stats(&f->vd, &st);
    assert_int_equal(used_idx(f, 2), (uint16_t)(u + 1));
    snapbuf_free(&sb);
}

static void test_load_refuses_bad_state(void **state)
{
    struct fixture *f = *state;
    bring_up(f, NULL);
    put_stat(g(f, BUF), BALLOON_S_MEMFREE, 1);
    offer(f, 2, 0, 10, false);
    struct snapbuf sb;
    snapbuf_init(&sb);
    virtio_dev_save(&f->vd, &sb);
    size_t dev = sb.len - DEV_STATE_LEN;
    assert_int_equal(le32_get(sb.data + dev - 4), DEV_STATE_LEN);
    assert_int_equal(load_from(f, &sb), 0);

    uint8_t keep[DEV_STATE_LEN];
    memcpy(keep, sb.data + dev, DEV_STATE_LEN);
    le32_put(sb.data + dev, MEM_SIZE / PAGE + 1);         /* target beyond RAM */
    assert_int_equal(load_from(f, &sb), -EINVAL);
    memcpy(sb.data + dev, keep, DEV_STATE_LEN);
    le16_put(sb.data + dev + 9, QSIZE);                   /* held head off the queue */
    assert_int_equal(load_from(f, &sb), -EINVAL);
    memcpy(sb.data + dev, keep, DEV_STATE_LEN);
    sb.data[dev + 11] = BALLOON_S_NR + 1;                 /* stats count */
    assert_int_equal(load_from(f, &sb), -EINVAL);
    memcpy(sb.data + dev, keep, DEV_STATE_LEN);
    /* Cut anywhere in the device's part (its length says more). */
    for (size_t cut = dev; cut < sb.len; cut++) {
        struct snapbuf r;
        snapbuf_view(&r, sb.data, cut);
        assert_int_equal(virtio_dev_load(&f->vd, &r, &(struct err){ 0 }), -EINVAL);
    }
    assert_int_equal(load_from(f, &sb), 0);
    snapbuf_free(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_options_and_features, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inflate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_pfns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_pfns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deflate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_without_feature, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_qmp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_qmp_no_balloon, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_throttle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_refuses_bad_state, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
