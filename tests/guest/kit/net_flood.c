/* Frame flood (virtio-net, device type 1): frames= minimal Ethernet frames
 * (60 bytes, ethertype 0x88b5, "local experimental") sent as fast as the
 * transmit queue takes them, every descriptor of the queue in flight,
 * timed with the ACPI PM timer. The host counts them on its side of the
 * tap; this program reports what it sent and how long that took as
 * "# bench flood frames=N ticks=T hz=H kicks=K".
 *
 * Command line: mac= (our source address), frames= (default 100000).
 * Every frame is set up once; the hot loop only moves completed heads back
 * into the avail ring, polls the used ring (no interrupts) and notifies
 * the device when VIRTIO_F_EVENT_IDX says it waits for one. */
#include "virtio.h"

#define NET_F_MAC 5
#define NET_HDR 12              /* struct virtio_net_hdr with num_buffers */
#define FRAME 60
#define ETH_TYPE 0x88b5
#define TXQ_MAX 64

static struct virtio_dev dev;
static struct virtq rxq, txq;
static struct acpi_info ai;
static uint8_t rxbuf[1536] __attribute__((aligned(16)));
static uint8_t frames[TXQ_MAX][NET_HDR + FRAME] __attribute__((aligned(16)));
static uint8_t mac[6];

static bool setup(char *why, size_t sz)
{
    uint32_t bdf;
    if (!acpi_parse(&ai, why, sz))
        return false;
    if (!ai.pm_tmr) {
        kit_snprintf(why, sz, "no ACPI PM timer");
        return false;
    }
    if (!virtio_find(VIRTIO_ID_NET, 0, &bdf)) {
        kit_snprintf(why, sz, "no device 1af4:%04x on bus 0", VIRTIO_PCI_MODERN_BASE + VIRTIO_ID_NET);
        return false;
    }
    if (!virtio_open(&dev, bdf, why, sz) ||
        !virtio_negotiate(&dev, VIRTIO_BIT(NET_F_MAC) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX), why, sz))
        return false;
    /* A receive queue with one buffer: the device needs both queues, and
     * whatever the host sends meanwhile lands there unread. */
    if (!virtq_setup(&dev, &rxq, 0, 1, VIRTIO_MSI_NO_VECTOR, why, sz) ||
        !virtq_setup(&dev, &txq, 1, TXQ_MAX, VIRTIO_MSI_NO_VECTOR, why, sz))
        return false;
    struct virtq_buf b = { rxbuf, sizeof(rxbuf), true };
    virtq_add(&rxq, &b, 1, false);
    for (uint16_t i = 0; i < txq.size; i++) {
        uint8_t *f = frames[i] + NET_HDR;
        memset(frames[i], 0, sizeof(frames[i]));
        memset(f, 0xff, 6);
        memcpy(f + 6, mac, 6);
        f[12] = ETH_TYPE >> 8;
        f[13] = ETH_TYPE & 0xff;
        f[14] = (uint8_t)i;
        txq.desc[i] = (struct vring_desc){ (uintptr_t)frames[i], sizeof(frames[i]), 0, 0 };
    }
    virtio_driver_ok(&dev);
    virtq_kick(&rxq);
    return true;
}

static void clock_sample(uint32_t *ticks, uint32_t *last)
{
    uint32_t now = inl((uint16_t)ai.pm_tmr);
    *ticks += pmtmr_delta(&ai, *last, now);
    *last = now;
}

/* Sends total frames; returns how many the device gave back. */
static uint32_t flood(uint32_t total, uint32_t *ticks)
{
    uint32_t issued = 0, done = 0, spins = 0, last = inl((uint16_t)ai.pm_tmr), progress = 0;
    uint16_t size = txq.size;
    for (; issued < size && issued < total; issued++)
        txq.avail[2 + txq.avail_idx++ % size] = (uint16_t)issued;
    txq.avail[1] = txq.avail_idx;
    virtq_kick(&txq);
    while (done < total) {
        uint16_t idx = ((volatile uint16_t *)txq.used)[1];
        if (idx == txq.last_used) {
            if (++spins == 4096) {
                spins = 0;
                clock_sample(ticks, &last);
                /* Nothing back for two seconds: the device stopped. */
                if (*ticks - progress > 2 * PMTMR_HZ)
                    break;
            }
            cpu_relax();
            continue;
        }
        bool more = false;
        while (txq.last_used != idx) {
            uint32_t id = txq.used[1 + 2 * (txq.last_used % size)];
            txq.last_used++;
            done++;
            if (id < size && issued < total) {
                txq.avail[2 + txq.avail_idx++ % size] = (uint16_t)id;
                issued++;
                more = true;
            }
        }
        txq.avail[2 + size] = (uint16_t)(txq.last_used - 0x8000);
        progress = *ticks;
        if (more) {
            txq.avail[1] = txq.avail_idx;
            virtq_kick(&txq);
        }
    }
    clock_sample(ticks, &last);
    return done;
}

void kit_main(void)
{
    tap_plan(3);
    char why[120] = "", s[32] = "";
    uint32_t total = 100000;
    cmdline_get_uint("frames", &total);
    bool args = cmdline_get("mac", s, sizeof(s)) && kit_parse_mac(s, mac) && total;
    bool ok = args && setup(why, sizeof(why));
    if (!args)
        kit_snprintf(why, sizeof(why), "mac= and a non-zero frames= are needed");
    if (!tap_check(ok, "virtio-net found, transmit queue set up", "%s", why))
        return;
    tap_check(dev.accepted & VIRTIO_BIT(VIRTIO_F_EVENT_IDX), "VIRTIO_F_EVENT_IDX negotiated",
              "features 0x%llx", (unsigned long long)dev.features);
    uint32_t ticks = 0, kicks0 = txq.kicks;
    uint32_t done = flood(total, &ticks);
    tap_check(done == total, "every frame came back on the used ring", "%u of %u", done, total);
    tap_diag("bench flood frames=%u ticks=%u hz=%u kicks=%u", done, ticks, PMTMR_HZ, txq.kicks - kicks0);
    virtio_reset(&dev);
}
