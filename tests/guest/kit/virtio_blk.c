/* virtio-blk (device type 2): capacity from the device configuration, a
 * sector pattern written with one data descriptor, with several, through an
 * indirect table and at the last sector, a flush, the pattern read back the
 * same ways, GET_ID, and requests past the end. Command line: sectors= (the
 * disk's size in 512-byte sectors), salt= (part of the pattern), serial=,
 * and ro=1 for a read-only disk, where every write must fail with IOERR and
 * reads must find the pattern an earlier read-write run left. */
#include "virtio.h"

#define BLK_F_SEG_MAX 2
#define BLK_F_RO 5
#define BLK_F_BLK_SIZE 6
#define BLK_F_FLUSH 9

#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_T_GET_ID 8
#define BLK_S_OK 0
#define BLK_S_IOERR 1
#define BLK_S_TIMEOUT 0x100     /* no completion at all */

#define SECTOR 512
#define BUF_SECTORS 8

struct blk_req_hdr {
    uint32_t type, reserved;
    uint64_t sector;
} __attribute__((packed));

static struct virtio_dev dev;
static struct virtq vq;
static struct blk_req_hdr hdr;
static volatile uint8_t status;
static uint8_t wbuf[BUF_SECTORS * SECTOR], rbuf[BUF_SECTORS * SECTOR];
static uint32_t salt;
static bool readonly;
static uint64_t capacity;

/* Sector buffers are bytes; these loops read and write them as words. */
typedef uint32_t __attribute__((may_alias)) word_t;

static void put_hex8(char *p, uint32_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 4)
        p[i] = "0123456789abcdef"[v & 15];
}

/* 16 lines of 32 bytes per sector, "sec SSSSSSSS salt TTTTTTTT ln L\n",
 * naming the sector and the salt, so the host can check the file with dd.
 * Built without printf and copied by words: guest instructions can be
 * costly, and this runs for every sector written and compared. */
static void fill_pattern(uint8_t *buf, uint64_t sector, uint32_t nsec, uint32_t s)
{
    static const char tmpl[33] = "sec 00000000 salt 00000000 ln 0\n";
    for (uint32_t k = 0; k < nsec; k++) {
        uint32_t line[8];
        char *c = (char *)line;
        __builtin_memcpy(line, tmpl, 32);
        put_hex8(c + 4, (uint32_t)(sector + k));
        put_hex8(c + 18, s);
        word_t *w = (word_t *)(buf + k * SECTOR);
        for (uint32_t l = 0; l < SECTOR / 32; l++, w += 8) {
            c[30] = "0123456789abcdef"[l];
            for (int i = 0; i < 8; i++)
                w[i] = line[i];
        }
    }
}

static bool words_equal(const void *a, const void *b, uint32_t n)
{
    const word_t *x = a, *y = b;
    for (uint32_t i = 0; i < n / 4; i++)
        if (x[i] != y[i])
            return false;
    return true;
}

static void fill_words(void *d, uint32_t v, uint32_t n)
{
    word_t *w = d;
    for (uint32_t i = 0; i < n / 4; i++)
        w[i] = v;
}

/* One request: header, nseg data segments splitting len bytes at the given
 * cut points, status. Returns the status byte or BLK_S_TIMEOUT. */
static int blk_request(uint32_t type, uint64_t sector, uint8_t *data, uint32_t len,
                       const uint32_t *cuts, int ncuts, bool indirect)
{
    struct virtq_buf b[VIRTQ_INDIRECT_MAX];
    int n = 0;
    bool dev_writes = type == BLK_T_IN || type == BLK_T_GET_ID;
    hdr.type = type;
    hdr.reserved = 0;
    hdr.sector = sector;
    status = 0xff;
    b[n++] = (struct virtq_buf){ &hdr, sizeof(hdr), false };
    uint32_t at = 0;
    for (int i = 0; i <= ncuts && len; i++) {
        uint32_t end = i < ncuts ? cuts[i] : len;
        b[n++] = (struct virtq_buf){ data + at, end - at, dev_writes };
        at = end;
    }
    b[n++] = (struct virtq_buf){ (void *)&status, 1, true };
    int head = virtq_submit(&vq, b, n, indirect);
    uint32_t id, ulen;
    if (head < 0 || !virtq_wait(&vq, 5000, &id, &ulen) || (int)id != head)
        return BLK_S_TIMEOUT;
    return status;
}

struct io {
    const char *what;
    uint64_t sector;
    uint32_t nsec;
    uint32_t cuts[4];
    int ncuts;
    bool indirect;
};

static bool check_write(const struct io *io)
{
    /* A read-only run writes a different pattern, so a write that went
     * through anyway shows up in the read-back as well. */
    fill_pattern(wbuf, io->sector, io->nsec, readonly ? ~salt : salt);
    int st = blk_request(BLK_T_OUT, io->sector, wbuf, io->nsec * SECTOR, io->cuts, io->ncuts,
                         io->indirect);
    char desc[100];
    if (readonly) {
        kit_snprintf(desc, sizeof(desc), "%s write to a read-only disk fails with IOERR", io->what);
        return tap_check(st == BLK_S_IOERR, desc, "status 0x%x", st);
    }
    kit_snprintf(desc, sizeof(desc), "%s write completes with OK", io->what);
    return tap_check(st == BLK_S_OK, desc, "status 0x%x", st);
}

static bool check_read(const struct io *io, char *why, size_t sz)
{
    fill_words(rbuf, 0xa5a5a5a5u, io->nsec * SECTOR);
    int st = blk_request(BLK_T_IN, io->sector, rbuf, io->nsec * SECTOR, io->cuts, io->ncuts,
                         io->indirect);
    fill_pattern(wbuf, io->sector, io->nsec, salt);
    if (st != BLK_S_OK) {
        kit_snprintf(why, sz, "%s read: status 0x%x", io->what, st);
        return false;
    }
    for (uint32_t k = 0; k < io->nsec; k++) {
        if (!words_equal(rbuf + k * SECTOR, wbuf + k * SECTOR, SECTOR)) {
            char got[32];
            memcpy(got, rbuf + k * SECTOR, 31);
            got[31] = 0;
            for (int i = 0; i < 31; i++)
                if (got[i] < ' ' || got[i] > '~')
                    got[i] = '.';
            kit_snprintf(why, sz, "%s read: sector 0x%x holds \"%s\"", io->what,
                         (uint32_t)(io->sector + k), got);
            return false;
        }
    }
    return true;
}

static bool setup(char *why, size_t sz)
{
    uint32_t bdf;
    if (!virtio_find(VIRTIO_ID_BLOCK, 0, &bdf)) {
        kit_snprintf(why, sz, "no device 1af4:%04x on bus 0", VIRTIO_PCI_MODERN_BASE + VIRTIO_ID_BLOCK);
        return false;
    }
    uint64_t want = VIRTIO_BIT(BLK_F_RO) | VIRTIO_BIT(BLK_F_FLUSH) | VIRTIO_BIT(BLK_F_BLK_SIZE) |
                    VIRTIO_BIT(BLK_F_SEG_MAX) | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |
                    VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
    if (!virtio_open(&dev, bdf, why, sz) || !virtio_negotiate(&dev, want, why, sz) ||
        !virtq_setup(&dev, &vq, 0, 16, VIRTIO_MSI_NO_VECTOR, why, sz))
        return false;
    virtio_driver_ok(&dev);
    tap_diag("virtio-blk at 00:%02x.%u, features 0x%llx, queue size %u", PCI_DEV(bdf), PCI_FN(bdf),
             (unsigned long long)dev.features, vq.size);
    return true;
}

void kit_main(void)
{
    tap_plan(11);
    char why[120] = "";
    uint32_t v = 0, want_sectors = 0;
    readonly = cmdline_get_uint("ro", &v) && v == 1;
    cmdline_get_uint("salt", &salt);
    bool have_sectors = cmdline_get_uint("sectors", &want_sectors);
    if (!tap_check(setup(why, sizeof(why)), "virtio-blk found, reset and VERSION_1 negotiated", "%s", why))
        return;

    capacity = virtio_cfg64(&dev, 0);
    tap_diag("capacity %u sectors, seg_max %u, blk_size %u", (uint32_t)capacity,
             virtio_cfg32(&dev, 12), virtio_cfg32(&dev, 20));
    tap_check(have_sectors && capacity == want_sectors, "capacity equals sectors=",
              "capacity 0x%llx, sectors=%s", (unsigned long long)capacity, have_sectors ? "given" : "missing");
    bool ro_offered = dev.features & VIRTIO_BIT(BLK_F_RO);
    tap_check(ro_offered == readonly, "VIRTIO_BLK_F_RO offered exactly when ro=1", "RO %s, ro=%u",
              ro_offered ? "offered" : "not offered", readonly);
    if (capacity < 32 || capacity > 0xffffffffu) {
        tap_diag("capacity out of the range this program handles");
        return;
    }

    bool indirect = dev.accepted & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
    if (!indirect)
        tap_diag("VIRTIO_RING_F_INDIRECT_DESC not offered: the indirect request uses a plain chain");
    const struct io ios[] = {
        { "single-descriptor", 2, 4, { 0 }, 0, false },
        { "multi-descriptor", 8, 8, { 512, 1536, 3584 }, 3, false },
        { "last-sector", capacity - 1, 1, { 0 }, 0, false },
        { "indirect-table", 20, 4, { 1024 }, 1, indirect },
    };
    for (unsigned i = 0; i < KIT_ARRAY_SIZE(ios); i++)
        check_write(&ios[i]);

    int st = BLK_S_TIMEOUT;
    if (dev.accepted & VIRTIO_BIT(BLK_F_FLUSH))
        st = blk_request(BLK_T_FLUSH, 0, NULL, 0, NULL, 0, false);
    tap_check(st == BLK_S_OK, "VIRTIO_BLK_F_FLUSH offered and a flush completes with OK", "%s, status 0x%x",
              dev.accepted & VIRTIO_BIT(BLK_F_FLUSH) ? "offered" : "not offered", st);

    bool ok = true;
    for (unsigned i = 0; i < KIT_ARRAY_SIZE(ios) && ok; i++)
        ok = check_read(&ios[i], why, sizeof(why));
    tap_check(ok, "reads the same four ways return the salt= pattern", "%s", why);

    char serial[24] = "", want_serial[24] = "";
    cmdline_get("serial", want_serial, sizeof(want_serial));
    memset(rbuf, 0, 20);
    st = blk_request(BLK_T_GET_ID, 0, rbuf, 20, NULL, 0, false);
    memcpy(serial, rbuf, 20);
    serial[20] = 0;
    tap_check(st == BLK_S_OK && !strncmp(serial, want_serial, 21), "GET_ID returns serial=",
              "status 0x%x, id \"%s\"", st, st == BLK_S_OK ? serial : "");

    int st1 = blk_request(BLK_T_IN, capacity, rbuf, SECTOR, NULL, 0, false);
    int st2 = blk_request(BLK_T_IN, capacity - 1, rbuf, 2 * SECTOR, NULL, 0, false);
    tap_check(st1 == BLK_S_IOERR && st2 == BLK_S_IOERR, "reads past the last sector fail with IOERR",
              "status 0x%x at the end, 0x%x across it", st1, st2);
    tap_diag("EVENT_IDX %s: %u notifications, %u left out", vq.event_idx ? "on" : "off", vq.kicks,
             vq.kicks_skipped);
    virtio_reset(&dev);
}
