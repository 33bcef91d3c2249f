/* Split virtqueue chain walking against a hostile driver: good chains,
 * indirect tables, loops, buffers outside guest memory, lengths that
 * overflow, chains that are too long, indices beyond the queue, and the
 * event-idx and flag rules for notifications. Guest memory is a 1 GiB
 * reservation of which only the touched pages exist. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <cmocka.h>

#include "virtio/virtio.h"
#include "virtio/virtq.h"
#include "vm.h"

#define MEM_SIZE (1ULL << 30)
#define QSIZE 8
#define DESC  0x1000
#define AVAIL 0x2000
#define USED  0x3000
#define IND   0x4000    /* an indirect table */
#define BUF   0x100000  /* data buffers */

struct fixture {
    struct vm vm;
    uint8_t *mem;
    struct virtq vq;
    struct virtq_elem elem;
    uint16_t avail_idx;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    assert_true(f->mem != MAP_FAILED);
    f->vm.slots[0] = (struct mem_slot){ 0, MEM_SIZE, f->mem };
    f->vm.nslots = 1;
    assert_int_equal(virtq_init(&f->vq, &f->vm, QSIZE, DESC, AVAIL, USED, false, true), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    munmap(f->mem, MEM_SIZE);
    free(f);
    return 0;
}

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

static void desc_at(struct fixture *f, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
                    uint16_t flags, uint16_t next)
{
    uint8_t *p = f->mem + table + 16 * i;
    memcpy(p, &addr, 8);
    memcpy(p + 8, &len, 4);
    memcpy(p + 12, &flags, 2);
    memcpy(p + 14, &next, 2);
}

static void desc(struct fixture *f, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                 uint16_t next)
{
    desc_at(f, DESC, i, addr, len, flags, next);
}

static void offer(struct fixture *f, uint16_t head)
{
    put16(f->mem + AVAIL + 4 + 2 * (f->avail_idx % QSIZE), head);
    f->avail_idx++;
    put16(f->mem + AVAIL + 2, f->avail_idx);
}

static int pop(struct fixture *f) { return virtq_pop(&f->vq, &f->elem); }

/* Pops expecting a malformed chain with a reason containing what. */
static void expect_broken(struct fixture *f, const char *what)
{
    assert_int_equal(pop(f), -EINVAL);
    assert_true(f->vq.broken);
    assert_non_null(f->vq.error);
    if (!strstr(f->vq.error, what))
        fail_msg("error '%s' does not mention '%s'", f->vq.error, what);
    /* Broken stays broken: nothing more is taken or given back. */
    assert_int_equal(pop(f), 0);
    virtq_push(&f->vq, 0, 1);
    assert_int_equal(get16(f->mem + USED + 2), 0);
}

static void test_init_checks(void **state)
{
    struct fixture *f = *state;
    struct virtq vq;
    assert_int_equal(virtq_init(&vq, &f->vm, 0, DESC, AVAIL, USED, false, false), -EINVAL);
    assert_int_equal(virtq_init(&vq, &f->vm, 3, DESC, AVAIL, USED, false, false), -EINVAL);
    assert_int_equal(virtq_init(&vq, &f->vm, 2048, DESC, AVAIL, USED, false, false), -EINVAL);
    assert_false(vq.ready);
    /* Misaligned areas. */
    assert_int_equal(virtq_init(&vq, &f->vm, 8, DESC + 8, AVAIL, USED, false, false), -EINVAL);
    assert_int_equal(virtq_init(&vq, &f->vm, 8, DESC, AVAIL + 1, USED, false, false), -EINVAL);
    assert_int_equal(virtq_init(&vq, &f->vm, 8, DESC, AVAIL, USED + 2, false, false), -EINVAL);
    /* Areas running off guest memory, or far outside it. */
    assert_int_equal(virtq_init(&vq, &f->vm, 8, MEM_SIZE - 64, AVAIL, USED, false, false),
                     -EINVAL);
    assert_int_equal(virtq_init(&vq, &f->vm, 8, DESC, MEM_SIZE - 4, USED, false, false),
                     -EINVAL);
    assert_int_equal(virtq_init(&vq, &f->vm, 8, DESC, AVAIL, 0xfffffffffffffff0ULL, false,
                                false), -EINVAL);
    assert_false(vq.ready);
    /* Not ready: nothing to pop, nothing to push. */
    assert_int_equal(virtq_pop(&vq, &f->elem), 0);
    /* The largest size at the very end of memory is fine. */
    assert_int_equal(virtq_init(&vq, &f->vm, 1024, MEM_SIZE - 16 * 1024, AVAIL, USED, false,
                                false), 0);
}

static void test_simple_chain(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(pop(f), 0);   /* empty */
    /* A request header, a data buffer, and a status byte to write. */
    desc(f, 5, BUF, 16, VIRTQ_DESC_F_NEXT, 2);
    desc(f, 2, BUF + 0x1000, 512, VIRTQ_DESC_F_NEXT, 7);
    desc(f, 7, BUF + 0x2000, 1, VIRTQ_DESC_F_WRITE, 0);
    offer(f, 5);
    assert_int_equal(pop(f), 1);
    assert_int_equal(f->elem.head, 5);
    assert_int_equal(f->elem.nout, 2);
    assert_int_equal(f->elem.nin, 1);
    assert_int_equal(f->elem.out_len, 528);
    assert_int_equal(f->elem.in_len, 1);
    assert_ptr_equal(f->elem.iov[0].iov_base, f->mem + BUF);
    assert_int_equal(f->elem.iov[1].iov_len, 512);
    assert_ptr_equal(f->elem.iov[2].iov_base, f->mem + BUF + 0x2000);
    assert_int_equal(pop(f), 0);
    /* Reading across segments, writing the in side. */
    memset(f->mem + BUF, 'a', 16);
    memset(f->mem + BUF + 0x1000, 'b', 512);
    char buf[32];
    assert_int_equal(virtq_elem_read(&f->elem, 10, buf, 12), 12);
    assert_memory_equal(buf, "aaaaaabbbbbb", 12);
    assert_int_equal(virtq_elem_read(&f->elem, 520, buf, 32), 8);
    uint8_t st[2] = { 0x42, 0x43 };
    assert_int_equal(virtq_elem_write(&f->elem, 0, st, 2), 1);
    assert_int_equal(f->mem[BUF + 0x2000], 0x42);
    /* Given back: used ring entry, then the index. */
    virtq_push(&f->vq, 5, 1);
    assert_int_equal(get16(f->mem + USED + 2), 1);
    assert_int_equal(get32(f->mem + USED + 4), 5);
    assert_int_equal(get32(f->mem + USED + 8), 1);
    /* Zero-length descriptors carry nothing and are skipped. */
    desc(f, 0, BUF, 0, VIRTQ_DESC_F_NEXT, 1);
    desc(f, 1, BUF, 8, 0, 0);
    offer(f, 0);
    assert_int_equal(pop(f), 1);
    assert_int_equal(f->elem.nout, 1);
    assert_int_equal(f->elem.out_len, 8);
}

static void test_wraparound(void **state)
{
    struct fixture *f = *state;
    desc(f, 3, BUF, 4, VIRTQ_DESC_F_WRITE, 0);
    /* Free-running indices across the 16-bit wrap. */
    f->vq.last_avail = f->vq.used_idx = 65533;
    f->avail_idx = 65533;
    for (unsigned i = 0; i < 6; i++) {
        offer(f, 3);
        assert_int_equal(pop(f), 1);
        virtq_push(&f->vq, 3, 4);
    }
    assert_int_equal(f->vq.last_avail, 3);
    assert_int_equal(get16(f->mem + USED + 2), 3);
}

static void test_indirect(void **state)
{
    struct fixture *f = *state;
    desc_at(f, IND, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 2);
    desc_at(f, IND, 2, BUF + 0x100, 100, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
    desc_at(f, IND, 1, BUF + 0x200, 200, VIRTQ_DESC_F_WRITE, 0);
    desc(f, 4, IND, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
    offer(f, 4);
    assert_int_equal(pop(f), 1);
    assert_int_equal(f->elem.head, 4);
    assert_int_equal(f->elem.nout, 1);
    assert_int_equal(f->elem.nin, 2);
    assert_int_equal(f->elem.in_len, 300);
    assert_ptr_equal(f->elem.iov[2].iov_base, f->mem + BUF + 0x200);
    /* Direct descriptors may lead into one indirect table. */
    desc(f, 0, BUF + 0x300, 8, VIRTQ_DESC_F_NEXT, 4);
    offer(f, 0);
    assert_int_equal(pop(f), 1);
    assert_int_equal(f->elem.nout, 2);
    assert_int_equal(f->elem.nin, 2);
}

static void test_indirect_malformed(void **state)
{
    struct {
        const char *what;
        uint64_t addr;
        uint32_t len;
        uint16_t flags;
        bool feature;
    } cases[] = {
        { "without VIRTIO_F_INDIRECT_DESC", IND, 32, VIRTQ_DESC_F_INDIRECT, false },
        { "NEXT", IND, 32, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, true },
        { "whole number", IND, 24, VIRTQ_DESC_F_INDIRECT, true },
        { "whole number", IND, 0, VIRTQ_DESC_F_INDIRECT, true },
        { "whole number", IND, 16 * (VIRTQ_MAX_SEGS + 1), VIRTQ_DESC_F_INDIRECT, true },
        { "outside guest memory", MEM_SIZE - 16, 32, VIRTQ_DESC_F_INDIRECT, true },
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fixture *f;
        setup((void **)&f);
        f->vq.indirect = cases[i].feature;
        desc_at(f, IND, 0, BUF, 16, 0, 0);
        desc_at(f, IND, 1, BUF, 16, 0, 0);
        desc(f, 1, cases[i].addr, cases[i].len, cases[i].flags, 2);
        desc(f, 2, BUF, 16, 0, 0);
        offer(f, 1);
        expect_broken(f, cases[i].what);
        teardown((void **)&f);
    }
}

static void test_nested_indirect(void **state)
{
    struct fixture *f = *state;
    desc_at(f, IND, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
    desc_at(f, IND, 1, IND + 0x100, 32, VIRTQ_DESC_F_INDIRECT, 0);
    desc(f, 0, IND, 32, VIRTQ_DESC_F_INDIRECT, 0);
    offer(f, 0);
    expect_broken(f, "inside an indirect table");
}

static void test_loops(void **state)
{
    struct fixture *f = *state;
    desc(f, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
    desc(f, 1, BUF, 16, VIRTQ_DESC_F_NEXT, 0);
    offer(f, 0);
    expect_broken(f, "loops");
}

static void test_loop_in_indirect(void **state)
{
    struct fixture *f = *state;
    desc_at(f, IND, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
    desc_at(f, IND, 1, BUF, 16, VIRTQ_DESC_F_NEXT, 1);   /* points at itself */
    desc(f, 6, IND, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
    offer(f, 6);
    expect_broken(f, "loops");
}

static void test_self_loop(void **state)
{
    struct fixture *f = *state;
    desc(f, 3, BUF, 16, VIRTQ_DESC_F_NEXT, 3);
    offer(f, 3);
    expect_broken(f, "loops");
}

static void test_bad_addresses(void **state)
{
    struct {
        uint64_t addr;
        uint32_t len;
    } cases[] = {
        { MEM_SIZE, 1 },                    /* just past the end */
        { MEM_SIZE - 8, 16 },               /* straddling the end */
        { 0xfffffffffffff000ULL, 0x2000 },  /* addr + len wraps */
        { 0xffffffffffffffffULL, 1 },
        { 1ULL << 40, 4096 },
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fixture *f;
        setup((void **)&f);
        desc(f, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
        desc(f, 1, cases[i].addr, cases[i].len, VIRTQ_DESC_F_WRITE, 0);
        offer(f, 0);
        expect_broken(f, "outside guest memory");
        teardown((void **)&f);
    }
}

static void test_length_overflow(void **state)
{
    struct fixture *f = *state;
    /* Five writable 1 GiB buffers (the same memory): over 4 GiB in all,
     * which the used ring's 32-bit length cannot report. */
    for (unsigned i = 0; i < 5; i++)
        desc(f, i, 0, 1U << 30, VIRTQ_DESC_F_WRITE | (i < 4 ? VIRTQ_DESC_F_NEXT : 0), i + 1);
    offer(f, 0);
    expect_broken(f, "longer than 4 GiB");
}

static void test_length_at_limit(void **state)
{
    struct fixture *f = *state;
    /* Three GiB and a bit, still under 4 GiB: accepted. */
    for (unsigned i = 0; i < 4; i++)
        desc(f, i, 0, i < 3 ? 1U << 30 : 4096, VIRTQ_DESC_F_NEXT * (i < 3), i + 1);
    offer(f, 0);
    assert_int_equal(pop(f), 1);
    assert_int_equal(f->elem.out_len, 3ULL * (1U << 30) + 4096);
}

static void test_too_long(void **state)
{
    struct fixture *f = *state;
    /* A full indirect table after direct descriptors: more segments than
     * one element holds. */
    for (unsigned i = 0; i < VIRTQ_MAX_SEGS; i++)
        desc_at(f, 0x200000, i, BUF, 1, i + 1 < VIRTQ_MAX_SEGS ? VIRTQ_DESC_F_NEXT : 0, i + 1);
    desc(f, 0, BUF, 1, VIRTQ_DESC_F_NEXT, 1);
    desc(f, 1, 0x200000, 16 * VIRTQ_MAX_SEGS, VIRTQ_DESC_F_INDIRECT, 0);
    offer(f, 0);
    expect_broken(f, "too long");
}

static void test_longest_chain(void **state)
{
    struct fixture *f = *state;
    /* Exactly VIRTQ_MAX_SEGS in one indirect table is fine. */
    for (unsigned i = 0; i < VIRTQ_MAX_SEGS; i++)
        desc_at(f, 0x200000, i, BUF, 1, i + 1 < VIRTQ_MAX_SEGS ? VIRTQ_DESC_F_NEXT : 0, i + 1);
    desc(f, 0, 0x200000, 16 * VIRTQ_MAX_SEGS, VIRTQ_DESC_F_INDIRECT, 0);
    offer(f, 0);
    assert_int_equal(pop(f), 1);
    assert_int_equal(f->elem.nout, VIRTQ_MAX_SEGS);
}

static void test_index_beyond_queue(void **state)
{
    struct fixture *f = *state;
    desc(f, 0, BUF, 16, 0, 0);
    offer(f, QSIZE);            /* head outside the table */
    expect_broken(f, "beyond the table");
}

static void test_next_beyond_queue(void **state)
{
    struct fixture *f = *state;
    desc(f, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 0xffff);
    offer(f, 0);
    expect_broken(f, "beyond the table");
}

static void test_next_beyond_indirect(void **state)
{
    struct fixture *f = *state;
    desc_at(f, IND, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 2);   /* the table has 2 entries */
    desc(f, 0, IND, 32, VIRTQ_DESC_F_INDIRECT, 0);
    offer(f, 0);
    expect_broken(f, "beyond the table");
}

static void test_avail_idx_runaway(void **state)
{
    struct fixture *f = *state;
    desc(f, 0, BUF, 16, 0, 0);
    put16(f->mem + AVAIL + 2, QSIZE + 1);   /* more than a queue's worth */
    expect_broken(f, "ahead");
}

static void test_readable_after_writable(void **state)
{
    struct fixture *f = *state;
    desc(f, 0, BUF, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    desc(f, 1, BUF, 16, 0, 0);
    offer(f, 0);
    expect_broken(f, "follows a writable");
}

static void test_interrupt_flags(void **state)
{
    struct fixture *f = *state;
    desc(f, 0, BUF, 16, VIRTQ_DESC_F_WRITE, 0);
    offer(f, 0);
    assert_int_equal(pop(f), 1);
    virtq_push(&f->vq, 0, 0);
    assert_true(virtq_need_interrupt(&f->vq));
    put16(f->mem + AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
    assert_false(virtq_need_interrupt(&f->vq));
    /* Without event-idx the device asks for every notification. */
    put16(f->mem + USED, VIRTQ_USED_F_NO_NOTIFY);
    assert_false(virtq_enable_notify(&f->vq));
    assert_int_equal(get16(f->mem + USED), 0);
    offer(f, 0);
    assert_true(virtq_enable_notify(&f->vq));
}

static void test_event_idx(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(virtq_init(&f->vq, &f->vm, QSIZE, DESC, AVAIL, USED, true, false), 0);
    uint8_t *used_event = f->mem + AVAIL + 4 + 2 * QSIZE;
    uint8_t *avail_event = f->mem + USED + 4 + 8 * QSIZE;
    desc(f, 0, BUF, 16, VIRTQ_DESC_F_WRITE, 0);
    /* Each pop asks to be kicked for the next chain. */
    offer(f, 0);
    assert_int_equal(pop(f), 1);
    assert_int_equal(get16(avail_event), 1);
    virtq_push(&f->vq, 0, 0);
    /* The first interrupt always goes. */
    assert_true(virtq_need_interrupt(&f->vq));
    /* used_event 2: interrupt once the entry at index 2 is used, i.e.
     * when used idx reaches 3, not at 2. */
    put16(used_event, 2);
    offer(f, 0);
    assert_int_equal(pop(f), 1);
    virtq_push(&f->vq, 0, 0);          /* used idx 2 */
    assert_false(virtq_need_interrupt(&f->vq));
    offer(f, 0);
    assert_int_equal(pop(f), 1);
    virtq_push(&f->vq, 0, 0);          /* 3 */
    assert_true(virtq_need_interrupt(&f->vq));
    put16(used_event, 5);
    for (unsigned i = 0; i < 2; i++) { /* 4, 5 */
        offer(f, 0);
        assert_int_equal(pop(f), 1);
        virtq_push(&f->vq, 0, 0);
        assert_false(virtq_need_interrupt(&f->vq));
    }
    offer(f, 0);
    assert_int_equal(pop(f), 1);
    virtq_push(&f->vq, 0, 0);          /* 6 */
    assert_true(virtq_need_interrupt(&f->vq));   /* passed 5 */
    assert_false(virtq_need_interrupt(&f->vq));  /* nothing new */
    /* Enabling notifications publishes last_avail and sees late chains. */
    assert_false(virtq_enable_notify(&f->vq));
    assert_int_equal(get16(avail_event), 6);
    offer(f, 0);
    assert_true(virtq_enable_notify(&f->vq));
}

/* While the device drains a queue it wants no kicks: avail_event stays
 * where it was (event-idx) or the flag says so, until it asks again. */
static void test_disable_notify(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(virtq_init(&f->vq, &f->vm, QSIZE, DESC, AVAIL, USED, true, false), 0);
    uint8_t *avail_event = f->mem + USED + 4 + 8 * QSIZE;
    desc(f, 0, BUF, 16, VIRTQ_DESC_F_WRITE, 0);
    virtq_disable_notify(&f->vq);
    for (unsigned i = 0; i < 3; i++) {
        offer(f, 0);
        assert_int_equal(pop(f), 1);
        virtq_push(&f->vq, 0, 0);
    }
    assert_int_equal(get16(avail_event), 0);
    offer(f, 0);                       /* added while draining, no kick */
    assert_true(virtq_enable_notify(&f->vq));
    assert_int_equal(get16(avail_event), 3);
    assert_int_equal(pop(f), 1);
    assert_int_equal(get16(avail_event), 4);
    /* Without event-idx: the NO_NOTIFY flag, cleared again on enable. */
    assert_int_equal(virtq_init(&f->vq, &f->vm, QSIZE, DESC, AVAIL, USED, false, false), 0);
    virtq_disable_notify(&f->vq);
    assert_int_equal(get16(f->mem + USED), VIRTQ_USED_F_NO_NOTIFY);
    virtq_enable_notify(&f->vq);
    assert_int_equal(get16(f->mem + USED), 0);
}

/* ---- the virtio core over a recording transport ---- */

static int queue_irqs, config_irqs, notifies, resets;

static void rec_irq_queue(void *opaque, unsigned q) { queue_irqs++; }
static void rec_irq_config(void *opaque) { config_irqs++; }
static const struct virtio_transport_ops rec_transport = {
    .interrupt_queue = rec_irq_queue, .interrupt_config = rec_irq_config,
};

static int fake_create(struct virtio_dev *vd, const char *arg, struct err *e)
{
    /* Tries to claim a core bit too: the core decides those. */
    vd->device_features = (1ULL << 5) | (1ULL << VIRTIO_F_VERSION_1);
    return 0;
}
static void fake_destroy(struct virtio_dev *vd) {}
static void fake_config_read(struct virtio_dev *vd, unsigned off, uint8_t *d, unsigned len) {}
static void fake_notify(struct virtio_dev *vd, unsigned q)
{
    struct virtq_elem *elem = malloc(sizeof(*elem));
    notifies++;
    while (virtio_pop(vd, q, elem) > 0)
        virtio_push(vd, q, elem->head, 0);
    virtio_queue_interrupt(vd, q);
    free(elem);
}
static void fake_reset(struct virtio_dev *vd) { resets++; }

static const struct virtio_dev_ops fake_ops = {
    .name = "fake", .device_id = 42, .nqueues = 2, .queue_size = QSIZE,
    .create = fake_create, .destroy = fake_destroy, .config_read = fake_config_read,
    .queue_notify = fake_notify, .reset = fake_reset,
};

static void bring_up(struct fixture *f, struct virtio_dev *vd, uint64_t features)
{
    queue_irqs = config_irqs = notifies = resets = 0;
    assert_int_equal(virtio_dev_init(vd, &fake_ops, &f->vm, NULL, NULL, NULL), 0);
    vd->transport = &rec_transport;
    assert_int_equal(virtio_set_status(vd, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER),
                     3);
    vd->guest_features = features;
    virtio_set_status(vd, 3 | VIRTIO_STATUS_FEATURES_OK);
}

static void test_core_features(void **state)
{
    struct fixture *f = *state;
    struct virtio_dev vd;
    bring_up(f, &vd, 1ULL << VIRTIO_F_VERSION_1);
    assert_int_equal(vd.host_features, (1ULL << 5) | (1ULL << VIRTIO_F_VERSION_1) |
                     (1ULL << VIRTIO_F_INDIRECT_DESC) | (1ULL << VIRTIO_F_EVENT_IDX));
    assert_true(vd.status & VIRTIO_STATUS_FEATURES_OK);
    /* Without VERSION_1, or with a bit never offered: FEATURES_OK refused. */
    virtio_set_status(&vd, 0);
    assert_int_equal(resets, 1);
    assert_int_equal(vd.guest_features, 0);
    vd.guest_features = 1ULL << 5;
    assert_int_equal(virtio_set_status(&vd, 3 | VIRTIO_STATUS_FEATURES_OK), 3);
    virtio_set_status(&vd, 0);
    vd.guest_features = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << 7);
    assert_int_equal(virtio_set_status(&vd, 3 | VIRTIO_STATUS_FEATURES_OK), 3);
    /* The driver cannot set NEEDS_RESET itself. */
    virtio_set_status(&vd, 0);
    assert_int_equal(virtio_set_status(&vd, 3 | VIRTIO_STATUS_NEEDS_RESET), 3);
    virtio_dev_fini(&vd);
}

static void test_core_broken_chain(void **state)
{
    struct fixture *f = *state;
    struct virtio_dev vd;
    bring_up(f, &vd, (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_EVENT_IDX));
    assert_int_equal(virtio_queue_enable(&vd, 0, QSIZE, DESC, AVAIL, USED), 0);
    assert_true(vd.vqs[0].event_idx);
    assert_false(vd.vqs[0].indirect);
    virtio_set_status(&vd, 3 | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
    assert_true(virtio_running(&vd));
    /* A good chain is served and interrupts. */
    desc(f, 0, BUF, 16, VIRTQ_DESC_F_WRITE, 0);
    offer(f, 0);
    virtio_queue_kicked(&vd, 0);
    assert_int_equal(notifies, 1);
    assert_int_equal(queue_irqs, 1);
    assert_int_equal(get16(f->mem + USED + 2), 1);
    /* An indirect descriptor without the feature: NEEDS_RESET, one config
     * interrupt, and the device stops. */
    desc(f, 1, IND, 32, VIRTQ_DESC_F_INDIRECT, 0);
    offer(f, 1);
    virtio_queue_kicked(&vd, 0);
    assert_true(vd.status & VIRTIO_STATUS_NEEDS_RESET);
    assert_true(vd.reported_broken);
    assert_int_equal(config_irqs, 1);
    assert_false(virtio_running(&vd));
    offer(f, 0);
    virtio_queue_kicked(&vd, 0);
    assert_int_equal(notifies, 2);
    assert_int_equal(config_irqs, 1);
    assert_int_equal(get16(f->mem + USED + 2), 1);
    /* The driver's other status writes keep NEEDS_RESET; a reset clears it. */
    virtio_set_status(&vd, 0x0f);
    assert_true(vd.status & VIRTIO_STATUS_NEEDS_RESET);
    virtio_set_status(&vd, 0);
    assert_int_equal(vd.status, 0);
    assert_false(vd.vqs[0].ready);
    assert_false(vd.reported_broken);
    virtio_dev_fini(&vd);
}

static void test_core_bad_queue(void **state)
{
    struct fixture *f = *state;
    struct virtio_dev vd;
    bring_up(f, &vd, 1ULL << VIRTIO_F_VERSION_1);
    /* Rings outside guest memory: refused, device needs a reset. */
    assert_int_equal(virtio_queue_enable(&vd, 1, QSIZE, MEM_SIZE, AVAIL, USED), -EINVAL);
    assert_true(vd.status & VIRTIO_STATUS_NEEDS_RESET);
    assert_false(vd.vqs[1].ready);
    /* No DRIVER_OK yet: no interrupt for it. */
    assert_int_equal(config_irqs, 0);
    assert_int_equal(virtio_queue_enable(&vd, 2, QSIZE, DESC, AVAIL, USED), -EINVAL);
    virtio_dev_fini(&vd);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_init_checks),
        T(test_simple_chain),
        T(test_wraparound),
        T(test_indirect),
        cmocka_unit_test(test_indirect_malformed),
        T(test_nested_indirect),
        T(test_loops),
        T(test_loop_in_indirect),
        T(test_self_loop),
        cmocka_unit_test(test_bad_addresses),
        T(test_length_overflow),
        T(test_length_at_limit),
        T(test_too_long),
        T(test_longest_chain),
        T(test_index_beyond_queue),
        T(test_next_beyond_queue),
        T(test_next_beyond_indirect),
        T(test_avail_idx_runaway),
        T(test_readable_after_writable),
        T(test_interrupt_flags),
        T(test_event_idx),
        T(test_disable_notify),
        T(test_core_features),
        T(test_core_broken_chain),
        T(test_core_bad_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
