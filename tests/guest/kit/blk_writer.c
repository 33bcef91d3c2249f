/* virtio-blk crash-safety writer: a long pseudo-random sequence of one-sector
 * writes, a FLUSH after every k= writes and a line "flushed N" on COM1 once
 * each flush completed, N being how many writes (counted from 0) it covers.
 * The host kills the machine at any moment and checks that every write
 * covered by the last line it saw is on the disk.
 *
 * Command line: seed= (nonzero), count= (writes; 0 runs until killed), k=
 * (writes per flush, default 16). Write i goes to sector r_i % capacity,
 * r_i being the i-th output of xorshift32 started at seed; its 128 words
 * are w[0] = seed, w[1] = i, w[2] = sector and w[j] = h ^ (j * 0x9e3779b9)
 * for j >= 3, with h = mix(seed, i, sector) below, so the host can tell
 * which write a sector holds and recompute all of it.
 *
 * One request at a time (header, data, status: three descriptors), polled
 * on the used ring, so the guest kernel-mode instructions per write stay in
 * the hundreds: some hosts interpret them one by one. */
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

static struct virtio_dev dev;
static struct virtq vq;
static struct blk_req_hdr hdr;
static volatile uint8_t status;
static uint32_t data[SECTOR / 4];

static uint32_t mix(uint32_t seed, uint32_t i, uint32_t sector)
{
    uint32_t h = seed * 0x85ebca6bu ^ i * 0xc2b2ae35u ^ sector * 0x27d4eb2fu;
    h ^= h >> 15;
    h *= 0x2c1b3c6du;
    h ^= h >> 12;
    return h;
}

static void fill(uint32_t seed, uint32_t i, uint32_t sector)
{
    uint32_t h = mix(seed, i, sector), v = 3 * 0x9e3779b9u;
    data[0] = seed;
    data[1] = i;
    data[2] = sector;
    for (uint32_t j = 3; j < SECTOR / 4; j++, v += 0x9e3779b9u)
        data[j] = h ^ v;
}

/* Submits one request and polls for it; returns the status byte, or
 * BLK_S_TIMEOUT when the device never completes it. */
static int request(uint32_t type, uint64_t sector, bool with_data)
{
    struct virtq_buf b[3];
    int n = 0;
    hdr.type = type;
    hdr.reserved = 0;
    hdr.sector = sector;
    status = 0xff;
    b[n++] = (struct virtq_buf){ &hdr, sizeof(hdr), false };
    if (with_data)
        b[n++] = (struct virtq_buf){ data, SECTOR, false };
    b[n++] = (struct virtq_buf){ (void *)&status, 1, true };
    int head = virtq_submit(&vq, b, n, false);
    uint32_t id, len;
    if (head < 0 || !virtq_wait(&vq, 10000, &id, &len) || (int)id != head)
        return BLK_S_TIMEOUT;
    return status;
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
    if (!tap_check(setup(why, sizeof(why)), "virtio-blk with FLUSH found and set up", "%s", why))
        return;
    uint64_t cap64 = virtio_cfg64(&dev, 0);
    if (!seed || !k || cap64 == 0 || cap64 > 0xffffffffu) {
        tap_check(false, "writes and flushes complete with OK", "seed=%u k=%u capacity 0x%llx", seed, k,
                  (unsigned long long)cap64);
        return;
    }
    uint32_t cap = (uint32_t)cap64, r = seed, i = 0;
    tap_diag("seed %u, k %u, capacity %u sectors", seed, k, cap);
    int st = BLK_S_OK;
    while (count == 0 || i < count) {
        r ^= r << 13;
        r ^= r >> 17;
        r ^= r << 5;
        uint32_t sector = r % cap;
        fill(seed, i, sector);
        st = request(BLK_T_OUT, sector, true);
        if (st != BLK_S_OK)
            break;
        i++;
        if (i % k == 0 || i == count) {
            st = request(BLK_T_FLUSH, 0, false);
            if (st != BLK_S_OK)
                break;
            kit_printf("flushed %u\n", i);
        }
    }
    tap_check(st == BLK_S_OK, "writes and flushes complete with OK", "status 0x%x at write %u", st, i);
    virtio_reset(&dev);
}
