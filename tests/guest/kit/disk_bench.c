/* Disk benchmark (virtio-blk, device type 2): sequential writes, then
 * sequential reads of what was written, then 4 KiB random reads in it,
 * each phase with up to qd= requests in flight, timed with the ACPI PM
 * timer. The same program runs on every monitor, so its own cost (guest
 * kernel code may be interpreted) weighs the same on each side.
 *
 * Command line: mb= (MiB written and read, default 16), bs= (KiB per
 * sequential request, default 128), qd= (requests in flight, default 32,
 * at most 32), ops= (random reads, default 2000), salt= (stamped into
 * every 4 KiB block, so data from an earlier run does not pass).
 *
 * Each phase prints "# bench PHASE bytes=B ops=N ticks=T hz=H kicks=K"
 * after its case; the harness turns those into MB/s and IOPS.
 *
 * Requests use one indirect descriptor each, set up once per slot, so the
 * hot loop only writes a sector number and an avail entry per request and
 * polls the used ring: no interrupts, and a notification only when the
 * device asks for one (VIRTIO_F_EVENT_IDX). */
#include "virtio.h"

#define BLK_F_FLUSH 9
#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_S_OK 0

#define SECTOR 512u
#define BLOCK 4096u
#define QD_MAX 32u
/* Data buffers live in plain RAM above the program; both monitors give
 * the kit 64 MiB, and their ACPI tables sit near its top. */
#define BUF_BASE 0x1000000u
#define BUF_SPACE (32u << 20)

struct blk_req_hdr {
    uint32_t type, reserved;
    uint64_t sector;
} __attribute__((packed));

struct slot {
    struct blk_req_hdr hdr;
    uint8_t status;
    uint32_t block;             /* first 4 KiB block of the request */
} __attribute__((aligned(32)));

static struct virtio_dev dev;
static struct virtq vq;
static struct acpi_info ai;
static struct slot slots[QD_MAX];
static struct vring_desc tables[QD_MAX][3] __attribute__((aligned(16)));
static uint32_t qd, bs, nblocks, salt, rnd = 2463534242u;
static uint32_t bad_status, bad_data, bad_where, lost;

struct run {
    uint32_t type;
    uint32_t total;             /* requests */
    uint32_t bytes;             /* per request */
    bool random;
    uint32_t issued, done;
    uint32_t ticks, last_pm;
    uint32_t progress;          /* ticks at the last completion */
};

typedef uint32_t __attribute__((may_alias)) word_t;

static uint8_t *buf_of(uint32_t i) { return (uint8_t *)(BUF_BASE + i * bs); }

static uint32_t next_rand(void)
{
    rnd ^= rnd << 13;
    rnd ^= rnd >> 17;
    rnd ^= rnd << 5;
    return rnd;
}

static void clock_sample(struct run *r)
{
    uint32_t now = inl((uint16_t)ai.pm_tmr);
    r->ticks += pmtmr_delta(&ai, r->last_pm, now);
    r->last_pm = now;
}

/* Puts request n of the run into slot i's descriptors and the avail ring. */
static void issue(struct run *r, uint32_t i)
{
    struct slot *s = &slots[i];
    uint32_t n = r->issued++;
    uint32_t blocks = r->bytes / BLOCK;
    s->block = r->random ? next_rand() % nblocks : n * blocks;
    s->hdr.type = r->type;
    s->hdr.sector = (uint64_t)s->block * (BLOCK / SECTOR);
    s->status = 0xff;
    if (r->type == BLK_T_OUT) {
        uint8_t *b = buf_of(i);
        for (uint32_t k = 0; k < blocks; k++)
            *(word_t *)(b + k * BLOCK) = (s->block + k) ^ salt;
    }
    vq.avail[2 + vq.avail_idx % vq.size] = (uint16_t)i;
    vq.avail_idx++;
}

/* A completed request: its status, and for reads the stamp of each block. */
static void check(struct run *r, uint32_t i)
{
    struct slot *s = &slots[i];
    if (s->status != BLK_S_OK) {
        if (!bad_status++)
            bad_where = s->block;
        return;
    }
    if (r->type != BLK_T_IN)
        return;
    uint8_t *b = buf_of(i);
    for (uint32_t k = 0; k < r->bytes / BLOCK; k++) {
        if (*(word_t *)(b + k * BLOCK) != ((s->block + k) ^ salt)) {
            if (!bad_data++)
                bad_where = s->block + k;
            return;
        }
    }
}

static void run_phase(struct run *r)
{
    uint32_t depth = qd < r->total ? qd : r->total;
    for (uint32_t i = 0; i < depth; i++) {
        tables[i][1].len = r->bytes;
        tables[i][1].flags = (uint16_t)(VRING_DESC_F_NEXT | (r->type == BLK_T_IN ? VRING_DESC_F_WRITE : 0));
    }
    uint32_t kicks0 = vq.kicks;
    r->last_pm = inl((uint16_t)ai.pm_tmr);
    for (uint32_t i = 0; i < depth; i++)
        issue(r, i);
    vq.avail[1] = vq.avail_idx;
    virtq_kick(&vq);
    uint32_t spins = 0;
    while (r->done < r->total) {
        uint16_t idx = ((volatile uint16_t *)vq.used)[1];
        if (idx == vq.last_used) {
            /* Keep the 24-bit PM timer from wrapping unseen while waiting. */
            if (++spins == 4096) {
                spins = 0;
                clock_sample(r);
                /* Nothing back for five seconds: the device lost requests. */
                if (r->ticks - r->progress > 5 * PMTMR_HZ)
                    break;
            }
            cpu_relax();
            continue;
        }
        bool more = false;
        while (vq.last_used != idx) {
            uint32_t id = vq.used[1 + 2 * (vq.last_used % vq.size)];
            vq.last_used++;
            if (id >= depth)
                continue;
            r->done++;
            check(r, id);
            if (r->issued < r->total) {
                issue(r, id);
                more = true;
            }
        }
        r->progress = r->ticks;
        /* No interrupts wanted: keep used_event half a ring behind. */
        vq.avail[2 + vq.size] = (uint16_t)(vq.last_used - 0x8000);
        if (more) {
            vq.avail[1] = vq.avail_idx;
            virtq_kick(&vq);
        }
        clock_sample(r);
    }
    clock_sample(r);
    tap_diag("bench %s bytes=%u ops=%u ticks=%u hz=%u kicks=%u",
             r->random ? "randread" : r->type == BLK_T_IN ? "seqread" : "seqwrite",
             r->total * r->bytes, r->total, r->ticks, PMTMR_HZ, vq.kicks - kicks0);
}

static bool setup(char *why, size_t sz)
{
    uint32_t bdf;
    if (!acpi_parse(&ai, why, sz))
        return false;
    if (!ai.pm_tmr) {
        kit_snprintf(why, sz, "no ACPI PM timer");
        return false;
    }
    if (!virtio_find(VIRTIO_ID_BLOCK, 0, &bdf)) {
        kit_snprintf(why, sz, "no device 1af4:%04x on bus 0", VIRTIO_PCI_MODERN_BASE + VIRTIO_ID_BLOCK);
        return false;
    }
    uint64_t want = VIRTIO_BIT(BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |
                    VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
    if (!virtio_open(&dev, bdf, why, sz) || !virtio_negotiate(&dev, want, why, sz))
        return false;
    if (!(dev.accepted & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC))) {
        kit_snprintf(why, sz, "VIRTIO_RING_F_INDIRECT_DESC not offered");
        return false;
    }
    if (!virtq_setup(&dev, &vq, 0, 2 * QD_MAX, VIRTIO_MSI_NO_VECTOR, why, sz))
        return false;
    if (qd > vq.size)
        qd = vq.size;
    for (uint32_t i = 0; i < qd; i++) {
        tables[i][0] = (struct vring_desc){ (uintptr_t)&slots[i].hdr, sizeof(slots[i].hdr),
                                            VRING_DESC_F_NEXT, 1 };
        tables[i][1] = (struct vring_desc){ (uintptr_t)buf_of(i), bs, VRING_DESC_F_NEXT, 2 };
        tables[i][2] = (struct vring_desc){ (uintptr_t)&slots[i].status, 1, VRING_DESC_F_WRITE, 0 };
        vq.desc[i] = (struct vring_desc){ (uintptr_t)tables[i], sizeof(tables[i]),
                                          VRING_DESC_F_INDIRECT, 0 };
    }
    virtio_driver_ok(&dev);
    return true;
}

static bool flush(void)
{
    struct blk_req_hdr h = { BLK_T_FLUSH, 0, 0 };
    volatile uint8_t st = 0xff;
    struct virtq_buf b[2] = { { &h, sizeof(h), false }, { (void *)&st, 1, true } };
    /* Slot 0's table is idle once every phase has completed. */
    tables[0][0] = (struct vring_desc){ (uintptr_t)b[0].addr, b[0].len, VRING_DESC_F_NEXT, 1 };
    tables[0][1] = (struct vring_desc){ (uintptr_t)b[1].addr, 1, VRING_DESC_F_WRITE, 0 };
    vq.avail[2 + vq.avail_idx % vq.size] = 0;
    vq.avail_idx++;
    vq.avail[1] = vq.avail_idx;
    virtq_kick(&vq);
    for (uint32_t t = 0; t < 20000; t++) {
        if (((volatile uint16_t *)vq.used)[1] != vq.last_used)
            return st == BLK_S_OK;
        pit_delay_us(500);
    }
    return false;
}

static bool phase(uint32_t type, bool random, uint32_t total, uint32_t bytes)
{
    struct run r = { .type = type, .total = total, .bytes = bytes, .random = random };
    bad_status = bad_data = 0;
    run_phase(&r);
    lost = r.total - r.done;
    return !bad_status && !bad_data && !lost;
}

void kit_main(void)
{
    tap_plan(6);
    char why[120] = "";
    uint32_t mb = 16, kb = 128, ops = 2000;
    qd = QD_MAX;
    cmdline_get_uint("mb", &mb);
    cmdline_get_uint("bs", &kb);
    cmdline_get_uint("qd", &qd);
    cmdline_get_uint("ops", &ops);
    cmdline_get_uint("salt", &salt);
    bs = kb * 1024;
    bool args = mb && kb && qd && qd <= QD_MAX && bs % BLOCK == 0 && (uint64_t)qd * bs <= BUF_SPACE &&
                mb <= 2048 && (mb << 20) % bs == 0;
    bool ok = args && setup(why, sizeof(why));
    if (!args)
        kit_snprintf(why, sizeof(why), "bad mb=%u bs=%u qd=%u", mb, kb, qd);
    if (!tap_check(ok, "virtio-blk found with indirect descriptors and a polled queue", "%s", why))
        return;
    uint64_t cap = virtio_cfg64(&dev, 0);
    if (!tap_check(cap * SECTOR >= (uint64_t)mb << 20, "the disk holds mb= MiB",
                   "capacity %llu sectors", (unsigned long long)cap))
        return;
    tap_diag("queue size %u, depth %u, %u KiB requests, %u MiB", vq.size, qd, kb, mb);
    nblocks = (mb << 20) / BLOCK;
    uint32_t nreq = (mb << 20) / bs;

    tap_check(phase(BLK_T_OUT, false, nreq, bs), "sequential writes complete with OK",
              "%u failed, first at block %u, %u never completed", bad_status, bad_where, lost);
    tap_check(phase(BLK_T_IN, false, nreq, bs), "sequential reads return the blocks written",
              "%u failed, %u with wrong data, first at block %u, %u never completed", bad_status,
              bad_data, bad_where, lost);
    bool rd = phase(BLK_T_IN, true, ops, BLOCK);
    tap_check(rd, "random 4 KiB reads return the blocks written",
              "%u failed, %u with wrong data, first at block %u, %u never completed", bad_status,
              bad_data, bad_where, lost);
    tap_check((dev.accepted & VIRTIO_BIT(BLK_F_FLUSH)) && flush(), "VIRTIO_BLK_F_FLUSH offered and a flush completes with OK",
              "%s", dev.accepted & VIRTIO_BIT(BLK_F_FLUSH) ? "flush failed" : "not offered");
    virtio_reset(&dev);
}
