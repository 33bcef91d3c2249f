/* virtio-blk crash-safety writer: a long pseudo-random sequence of one-sector
 * writes, a FLUSH after every k= writes and a line "flushed N" on COM1 once
 * each flush completed, N being how many writes (counted from 0) it covers.
 * The host kills the machine at any moment and checks that every write
 * covered by the last line it saw is on the disk.
 *
 * Command line: seed= (nonzero), count= (writes; 0 runs until killed), k=
 * (writes per flush, default 16), depth= (writes in flight, 1-4, default
 * 1; two in flight never share a sector, and every earlier write has
 * completed before a flush is sent). Write i goes to sector r_i % capacity,
 * r_i being the i-th output of xorshift32 started at seed; its 128 words
 * are w[0] = seed, w[1] = i, w[2] = sector and w[j] = h ^ (j * 0x9e3779b9)
 * for j >= 3, with h = mix(seed, i, sector) below, so the host can tell
 * which write a sector holds and recompute all of it.
 *
 * Each request is three descriptors (header, data, status) and completions
 * are polled on the used ring, so the guest kernel-mode instructions per
 * write stay in the hundreds: some hosts interpret them one by one. */
#include "virtio.h"

#define BLK_F_FLUSH 9
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_S_OK 0
#define BLK_S_TIMEOUT 0x100
#define SECTOR 512

struct blk_req_hdr {
    uint32_t type, reserved;
    uint64_t sector;
} __attribute__((packed));

#define MAX_DEPTH 4           /* 3 descriptors each in a 16-entry ring */

/* One request in flight: its buffers and what it writes. */
struct slot {
    struct blk_req_hdr hdr;
    volatile uint8_t status;
    bool busy;
    int head;
    uint32_t sector;
    uint32_t data[SECTOR / 4];
};

static struct virtio_dev dev;
static struct virtq vq;
static struct slot slots[MAX_DEPTH];
static uint32_t depth = 1;

static uint32_t mix(uint32_t seed, uint32_t i, uint32_t sector)
{
    uint32_t h = seed * 0x85ebca6bu ^ i * 0xc2b2ae35u ^ sector * 0x27d4eb2fu;
    h ^= h >> 15;
    h *= 0x2c1b3c6du;
    h ^= h >> 12;
    return h;
}

static void fill(uint32_t *data, uint32_t seed, uint32_t i, uint32_t sector)
{
    uint32_t h = mix(seed, i, sector), v = 3 * 0x9e3779b9u;
    data[0] = seed;
    data[1] = i;
    data[2] = sector;
    for (uint32_t j = 3; j < SECTOR / 4; j++, v += 0x9e3779b9u)
        data[j] = h ^ v;
}

/* Queues a write of the slot's data (or a flush) and notifies the device. */
static bool submit(struct slot *sl, uint32_t type)
{
    struct virtq_buf b[3];
    int n = 0;
    sl->hdr.type = type;
    sl->hdr.reserved = 0;
    sl->hdr.sector = type == BLK_T_OUT ? sl->sector : 0;
    sl->status = 0xff;
    b[n++] = (struct virtq_buf){ &sl->hdr, sizeof(sl->hdr), false };
    if (type == BLK_T_OUT)
        b[n++] = (struct virtq_buf){ sl->data, SECTOR, false };
    b[n++] = (struct virtq_buf){ (void *)&sl->status, 1, true };
    sl->head = virtq_submit(&vq, b, n, false);
    sl->busy = sl->head >= 0;
    return sl->busy;
}

/* Waits for one completion and frees its slot; returns its status, or
 * BLK_S_TIMEOUT when nothing completes or the id is not one in flight. */
static int reap(void)
{
    uint32_t id, len;
    if (!virtq_wait(&vq, 10000, &id, &len))
        return BLK_S_TIMEOUT;
    for (uint32_t k = 0; k < MAX_DEPTH; k++) {
        if (slots[k].busy && (uint32_t)slots[k].head == id) {
            slots[k].busy = false;
            return slots[k].status;
        }
    }
    return BLK_S_TIMEOUT;
}

static int reap_all(void)
{
    int st = BLK_S_OK;
    for (uint32_t k = 0; k < depth; k++)
        while (slots[k].busy && st == BLK_S_OK)
            st = reap();
    return st;
}

/* A free slot, or NULL when all are busy or one in flight writes the same
 * sector (same-sector writes stay in order, so "the last write" of a
 * sector is well defined for the host). */
static struct slot *free_slot(uint32_t sector)
{
    struct slot *f = NULL;
    for (uint32_t k = 0; k < depth; k++) {
        if (!slots[k].busy)
            f = f ? f : &slots[k];
        else if (slots[k].sector == sector)
            return NULL;
    }
    return f;
}

static bool setup(char *why, size_t sz)
{
    uint32_t bdf;
    if (!virtio_find(VIRTIO_ID_BLOCK, 0, &bdf)) {
        kit_snprintf(why, sz, "no virtio-blk device on bus 0");
        return false;
    }
    if (!virtio_open(&dev, bdf, why, sz) || !virtio_negotiate(&dev, VIRTIO_BIT(BLK_F_FLUSH), why, sz) ||
        !virtq_setup(&dev, &vq, 0, 16, VIRTIO_MSI_NO_VECTOR, why, sz))
        return false;
    if (!(dev.accepted & VIRTIO_BIT(BLK_F_FLUSH))) {
        kit_snprintf(why, sz, "VIRTIO_BLK_F_FLUSH not offered");
        return false;
    }
    virtio_driver_ok(&dev);
    return true;
}

void kit_main(void)
{
    tap_plan(2);
    char why[120] = "";
    uint32_t seed = 0, count = 0, k = 16;
    cmdline_get_uint("seed", &seed);
    cmdline_get_uint("count", &count);
    cmdline_get_uint("k", &k);
    cmdline_get_uint("depth", &depth);
    if (!tap_check(setup(why, sizeof(why)), "virtio-blk with FLUSH found and set up", "%s", why))
        return;
    uint64_t cap64 = virtio_cfg64(&dev, 0);
    if (!seed || !k || !depth || depth > MAX_DEPTH || cap64 == 0 || cap64 > 0xffffffffu) {
        tap_check(false, "writes and flushes complete with OK", "seed=%u k=%u depth=%u capacity 0x%llx", seed, k, depth,
                  (unsigned long long)cap64);
        return;
    }
    uint32_t cap = (uint32_t)cap64, r = seed, i = 0;
    tap_diag("seed %u, k %u, depth %u, capacity %u sectors", seed, k, depth, cap);
    int st = BLK_S_OK;
    r ^= r << 13;
    r ^= r >> 17;
    r ^= r << 5;
    while (st == BLK_S_OK && (count == 0 || i < count)) {
        uint32_t sector = r % cap;
        struct slot *sl = free_slot(sector);
        if (!sl) {
            st = reap();
            continue;
        }
        sl->sector = sector;
        fill(sl->data, seed, i, sector);
        if (!submit(sl, BLK_T_OUT)) {
            st = BLK_S_TIMEOUT;
            break;
        }
        i++;
        r ^= r << 13;
        r ^= r >> 17;
        r ^= r << 5;
        if (i % k == 0 || i == count) {
            /* Every write so far has completed before the flush starts. */
            if ((st = reap_all()) != BLK_S_OK)
                break;
            if (!submit(&slots[0], BLK_T_FLUSH) || (st = reap()) != BLK_S_OK)
                break;
            kit_printf("flushed %u\n", i);
        }
    }
    tap_check(st == BLK_S_OK, "writes and flushes complete with OK", "status 0x%x at write %u", st, i);
    virtio_reset(&dev);
}
