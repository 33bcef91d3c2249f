/* virtio-balloon (device type 5) with the stats queue: a driver doing what
 * the host asks. It leaves one statistics report with the device, waits
 * for the host to set num_pages (the host's `balloon` command over its
 * control socket, given pages=N here so the program can check the value),
 * inflates that many pages of its own, writes actual, checks the pages
 * came back empty (the host dropped them), deflates them all, writes
 * actual 0, and finally waits for the device to hand the statistics
 * buffer back, which is how the host asks for fresh numbers. In between
 * it sends page numbers that are not RAM (the PCI hole, just past the
 * end of RAM, the largest PFN): the device must return them and go on.
 *
 *   pages=N      the num_pages the host will set (at most MAX_PAGES)
 *   memfree=P    free memory to report, in 4 KiB pages
 *   memtot=P     total memory to report, in 4 KiB pages
 *   swapin=V     the swap-in count to report */
#include "virtio.h"

#define VIRTIO_ID_BALLOON 5
#define F_STATS_VQ 1
#define MAX_PAGES 512
#define PFNS_PER_BUF 256
#define NUM_PAGES 0
#define ACTUAL 4

#define S_SWAP_IN 0
#define S_MEMFREE 4
#define S_MEMTOT 5

struct stat_entry {
    uint16_t tag;
    uint64_t val;
} __attribute__((packed));

static struct virtio_dev dev;
static struct virtq inflq, deflq, statq;
static uint8_t pages[MAX_PAGES][4096] __attribute__((aligned(4096)));
static uint32_t pfns[MAX_PAGES];
static struct stat_entry stats[3];

static bool setup(char *why, size_t sz)
{
    uint32_t bdf;
    if (!virtio_find(VIRTIO_ID_BALLOON, 0, &bdf)) {
        kit_snprintf(why, sz, "no device 1af4:%04x on bus 0", VIRTIO_PCI_MODERN_BASE + VIRTIO_ID_BALLOON);
        return false;
    }
    if (!virtio_open(&dev, bdf, why, sz) || !virtio_negotiate(&dev, VIRTIO_BIT(F_STATS_VQ), why, sz))
        return false;
    tap_diag("virtio-balloon at 00:%02x.%u, features 0x%llx", PCI_DEV(bdf), PCI_FN(bdf),
             (unsigned long long)dev.features);
    if (!(dev.accepted & VIRTIO_BIT(F_STATS_VQ))) {
        kit_snprintf(why, sz, "STATS_VQ not offered");
        return false;
    }
    return true;
}

static void write_actual(uint32_t v)
{
    *(volatile uint32_t *)(dev.devcfg + ACTUAL) = v;
}

/* Sends pfns[0..n) on q in buffers of PFNS_PER_BUF; true when every
 * buffer came back with nothing written. */
static bool send_pfns(struct virtq *q, uint32_t n, char *why, size_t sz)
{
    uint32_t nbufs = 0;
    for (uint32_t i = 0; i < n; i += PFNS_PER_BUF) {
        uint32_t k = n - i < PFNS_PER_BUF ? n - i : PFNS_PER_BUF;
        struct virtq_buf b = { &pfns[i], 4 * k, false };
        if (virtq_submit(q, &b, 1, false) < 0) {
            kit_snprintf(why, sz, "queue %u full", q->index);
            return false;
        }
        nbufs++;
    }
    for (uint32_t i = 0; i < nbufs; i++) {
        uint32_t id, len;
        if (!virtq_wait(q, 5000, &id, &len)) {
            kit_snprintf(why, sz, "%u of %u buffers back after 5 s", i, nbufs);
            return false;
        }
        if (len != 0) {
            kit_snprintf(why, sz, "used length %u, not 0", len);
            return false;
        }
    }
    return true;
}

/* Waits up to timeout_ms of guest time for num_pages to become want. */
static uint32_t wait_num_pages(uint32_t want, uint32_t timeout_ms)
{
    uint32_t v = virtio_cfg32(&dev, NUM_PAGES);
    for (uint32_t t = 0; v != want && t < timeout_ms / 10; t++) {
        pit_delay_us(10000);
        v = virtio_cfg32(&dev, NUM_PAGES);
    }
    return v;
}

static void run(uint32_t n)
{
    char why[120] = "";
    uint32_t id, len;

    /* Statistics first: the device keeps the buffer until it wants more. */
    uint32_t memfree = 0, memtot = 0, swapin = 0;
    cmdline_get_uint("memfree", &memfree);
    cmdline_get_uint("memtot", &memtot);
    cmdline_get_uint("swapin", &swapin);
    stats[0] = (struct stat_entry){ S_SWAP_IN, swapin };
    stats[1] = (struct stat_entry){ S_MEMFREE, (uint64_t)memfree * 4096 };
    stats[2] = (struct stat_entry){ S_MEMTOT, (uint64_t)memtot * 4096 };
    struct virtq_buf sb = { stats, sizeof(stats), false };
    int shead = virtq_submit(&statq, &sb, 1, false);
    bool back = virtq_wait(&statq, 200, &id, &len);
    tap_check(shead >= 0 && !back, "the device keeps the statistics buffer",
              "%s", shead < 0 ? "queue full" : "returned at once");

    tap_diag("ready: waiting for num_pages=%u", n);
    uint32_t got = wait_num_pages(n, 30000);
    if (!tap_check(got == n, "num_pages becomes pages= (the host's target)",
                   "num_pages %u after 30 s, expected %u", got, n))
        return;

    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < 4096; j += 4)
            *(volatile uint32_t *)&pages[i][j] = 0xa5a50000u | i;
        pfns[i] = (uint32_t)((uintptr_t)pages[i] >> 12);
    }
    bool ok = send_pfns(&inflq, n, why, sizeof(why));
    tap_check(ok, "inflate buffers of the page numbers come back", "%s", why);
    write_actual(n);
    uint32_t actual = virtio_cfg32(&dev, ACTUAL);
    tap_check(actual == n, "actual reads back what the driver wrote", "actual %u, wrote %u", actual, n);

    /* The host dropped the pages: they read as zero now. Not a promise of
     * the spec (the content is the device's business) but what an
     * anonymous-memory host gives, QEMU included. */
    uint32_t kept = 0, first = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (*(volatile uint32_t *)&pages[i][0] || *(volatile uint32_t *)&pages[i][4092]) {
            if (!kept++)
                first = i;
        }
    }
    tap_check(ok && kept == 0, "inflated pages read back empty (the host freed them)",
              "%u of %u pages kept their content, first %u", kept, n, first);

    /* Not RAM: 3 GiB (the PCI hole), the first page past the end of the
     * 64 MiB run.sh gives both machines (the boot memory map would not do:
     * its RAM ranges leave out reserved RAM such as the ACPI tables), the
     * largest PFN. */
    static const uint32_t bad[] = { 0xc0000, (64u << 20) >> 12, 0xffffffff };
    uint32_t saved[3];
    for (int i = 0; i < 3; i++)
        saved[i] = pfns[i];
    for (int i = 0; i < 3; i++)
        pfns[i] = bad[i];
    ok = send_pfns(&inflq, 3, why, sizeof(why));
    uint8_t status = virtio_status(&dev);
    tap_check(ok && !(status & VIRTIO_STATUS_NEEDS_RESET),
              "page numbers outside RAM come back and the device keeps working",
              "%s status 0x%02x", why, status);
    for (int i = 0; i < 3; i++)
        pfns[i] = saved[i];

    ok = send_pfns(&deflq, n, why, sizeof(why));
    write_actual(0);
    actual = virtio_cfg32(&dev, ACTUAL);
    tap_check(ok && actual == 0, "deflate buffers come back and actual returns to 0",
              "%s actual %u", why, actual);

    back = virtq_wait(&statq, 20000, &id, &len);
    tap_check(back && (int)id == shead && len == 0,
              "the device hands the statistics buffer back to ask for fresh ones",
              "%s id %u len %u", back ? "returned" : "not returned in 20 s", id, len);
}

void kit_main(void)
{
    tap_plan(10);
    char why[120] = "";
    uint32_t n = 0;
    if (!cmdline_get_uint("pages", &n) || n == 0 || n > MAX_PAGES)
        tap_bail("pages=N (1 to %u) is required", MAX_PAGES);
    bool ok = setup(why, sizeof(why));
    if (!tap_check(ok, "virtio-balloon found, VERSION_1 and STATS_VQ negotiated", "%s", why))
        return;
    ok = virtq_setup(&dev, &inflq, 0, 8, VIRTIO_MSI_NO_VECTOR, why, sizeof(why)) &&
         virtq_setup(&dev, &deflq, 1, 8, VIRTIO_MSI_NO_VECTOR, why, sizeof(why)) &&
         virtq_setup(&dev, &statq, 2, 2, VIRTIO_MSI_NO_VECTOR, why, sizeof(why));
    if (ok)
        virtio_driver_ok(&dev);
    if (!tap_check(ok, "inflateq, deflateq and statsq set up", "%s", why))
        return;
    run(n);
    virtio_reset(&dev);
}
