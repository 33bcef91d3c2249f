/* virtio-net (device type 1): the MAC from the device configuration, a
 * receive and a transmit queue, then an ARP request for peer= answered by
 * the host and an ICMP echo request answered with the same identifier,
 * sequence and payload. Command line: mac= (expected in the configuration),
 * ip= (ours), peer= (the host's address on the tap). */
#include "virtio.h"

#define NET_F_MAC 5
#define NET_HDR 12              /* struct virtio_net_hdr with num_buffers */
#define FRAME_MAX 1514
#define BUF_SIZE 1536
#define RX_BUFS 8
#define ETH_ARP 0x0806
#define ETH_IP 0x0800
#define PING_ID 0x4b49
#define PING_SEQ 1
#define PAYLOAD "kit virtio-net echo payload 0123456789"

static struct virtio_dev dev;
static struct virtq rxq, txq;
static uint8_t rxbuf[RX_BUFS][BUF_SIZE] __attribute__((aligned(16)));
static uint8_t txbuf[BUF_SIZE] __attribute__((aligned(16)));
static uint8_t mac[6], peer_mac[6], ip[4], peer[4];
static const uint8_t *frame;    /* the last received frame, after the header */
static uint32_t frame_len;

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }

static uint16_t inet_csum(const uint8_t *p, uint32_t n)
{
    uint32_t sum = 0;
    for (uint32_t i = 0; i + 1 < n; i += 2)
        sum += be16(p + i);
    if (n & 1)
        sum += (uint32_t)p[n - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static bool setup(char *why, size_t sz)
{
    uint32_t bdf;
    if (!virtio_find(VIRTIO_ID_NET, 0, &bdf)) {
        kit_snprintf(why, sz, "no device 1af4:%04x on bus 0", VIRTIO_PCI_MODERN_BASE + VIRTIO_ID_NET);
        return false;
    }
    if (!virtio_open(&dev, bdf, why, sz) || !virtio_negotiate(&dev, VIRTIO_BIT(NET_F_MAC) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX), why, sz))
        return false;
    tap_diag("virtio-net at 00:%02x.%u, features 0x%llx", PCI_DEV(bdf), PCI_FN(bdf),
             (unsigned long long)dev.features);
    return true;
}

static bool setup_queues(char *why, size_t sz)
{
    if (!virtq_setup(&dev, &rxq, 0, RX_BUFS, VIRTIO_MSI_NO_VECTOR, why, sz) ||
        !virtq_setup(&dev, &txq, 1, 4, VIRTIO_MSI_NO_VECTOR, why, sz))
        return false;
    for (int i = 0; i < RX_BUFS && rxq.num_free; i++) {
        struct virtq_buf b = { rxbuf[i], BUF_SIZE, true };
        virtq_add(&rxq, &b, 1, false);
    }
    virtio_driver_ok(&dev);
    virtq_kick(&rxq);
    return true;
}

static bool send_frame(uint32_t len)
{
    memset(txbuf, 0, NET_HDR);
    struct virtq_buf b = { txbuf, NET_HDR + len, false };
    uint32_t id, ulen;
    int head = virtq_submit(&txq, &b, 1, false);
    return head >= 0 && virtq_wait(&txq, 2000, &id, &ulen) && (int)id == head;
}

/* Takes the next received frame (timeout_ms at most) into frame/frame_len
 * and gives its buffer back to the device at once: the frame is only read
 * before the next call, and the device fills buffers in order. */
static bool recv_frame(uint32_t timeout_ms)
{
    uint32_t id, len;
    if (!virtq_wait(&rxq, timeout_ms, &id, &len))
        return false;
    if (id >= rxq.size || len < NET_HDR || len > BUF_SIZE)
        tap_bail("receive queue: used id %u len %u", id, len);
    uint8_t *buf = (uint8_t *)(uintptr_t)rxq.desc[id].addr;
    static uint8_t copy[BUF_SIZE];
    memcpy(copy, buf + NET_HDR, len - NET_HDR);
    frame = copy;
    frame_len = len - NET_HDR;
    struct virtq_buf b = { buf, BUF_SIZE, true };
    virtq_submit(&rxq, &b, 1, false);
    return true;
}

static uint32_t build_arp(void)
{
    uint8_t *f = txbuf + NET_HDR;
    memset(f, 0xff, 6);
    memcpy(f + 6, mac, 6);
    put16(f + 12, ETH_ARP);
    uint8_t *a = f + 14;
    put16(a, 1);                /* Ethernet */
    put16(a + 2, ETH_IP);
    a[4] = 6;
    a[5] = 4;
    put16(a + 6, 1);            /* request */
    memcpy(a + 8, mac, 6);
    memcpy(a + 14, ip, 4);
    memset(a + 18, 0, 6);
    memcpy(a + 24, peer, 4);
    memset(f + 42, 0, 18);      /* pad to the 60-byte minimum */
    return 60;
}

static bool is_arp_reply(void)
{
    const uint8_t *a = frame + 14;
    return frame_len >= 42 && be16(frame + 12) == ETH_ARP && be16(a + 6) == 2 &&
           !memcmp(a + 14, peer, 4) && !memcmp(a + 24, ip, 4) && !memcmp(frame, mac, 6);
}

static uint32_t build_ping(void)
{
    uint8_t *f = txbuf + NET_HDR, *h = f + 14, *icmp = h + 20;
    uint32_t plen = sizeof(PAYLOAD) - 1;
    memcpy(f, peer_mac, 6);
    memcpy(f + 6, mac, 6);
    put16(f + 12, ETH_IP);
    memset(h, 0, 20);
    h[0] = 0x45;
    put16(h + 2, (uint16_t)(20 + 8 + plen));
    put16(h + 4, 0x1234);
    put16(h + 6, 0x4000);       /* don't fragment */
    h[8] = 64;
    h[9] = 1;                   /* ICMP */
    memcpy(h + 12, ip, 4);
    memcpy(h + 16, peer, 4);
    put16(h + 10, inet_csum(h, 20));
    memset(icmp, 0, 8);
    icmp[0] = 8;                /* echo request */
    put16(icmp + 4, PING_ID);
    put16(icmp + 6, PING_SEQ);
    memcpy(icmp + 8, PAYLOAD, plen);
    put16(icmp + 2, inet_csum(icmp, 8 + plen));
    return 14 + 20 + 8 + plen;
}

/* An echo reply from peer to us with our identifier, sequence, payload. */
static bool is_ping_reply(void)
{
    const uint8_t *h = frame + 14;
    if (frame_len < 34 || be16(frame + 12) != ETH_IP || (h[0] >> 4) != 4 || h[9] != 1 ||
        memcmp(h + 12, peer, 4) || memcmp(h + 16, ip, 4))
        return false;
    uint32_t ihl = (h[0] & 15) * 4u, tot = be16(h + 2), plen = sizeof(PAYLOAD) - 1;
    if (ihl < 20 || tot > frame_len - 14 || tot < ihl + 8 + plen)
        return false;
    const uint8_t *icmp = h + ihl;
    return icmp[0] == 0 && be16(icmp + 4) == PING_ID && be16(icmp + 6) == PING_SEQ &&
           !memcmp(icmp + 8, PAYLOAD, plen);
}

/* Sends a frame up to tries times, each time waiting up to 1 s for a frame
 * that match() accepts; counts frames that did not match. */
static bool exchange(uint32_t (*build)(void), bool (*match)(void), int tries, bool *sent,
                     uint32_t *others)
{
    for (int t = 0; t < tries; t++) {
        *sent = send_frame(build()) || *sent;
        for (int w = 0; w < 10; w++) {
            if (!recv_frame(100))
                continue;
            if (match())
                return true;
            ++*others;
            w--;                /* unrelated frames do not use up the wait */
            if (*others > 200)
                return false;
        }
    }
    return false;
}

void kit_main(void)
{
    tap_plan(7);
    char why[120] = "", s[32] = "";
    bool args = cmdline_get("mac", s, sizeof(s)) && kit_parse_mac(s, mac);
    args = cmdline_get("ip", s, sizeof(s)) && kit_parse_ipv4(s, ip) && args;
    args = cmdline_get("peer", s, sizeof(s)) && kit_parse_ipv4(s, peer) && args;
    if (!args)
        tap_diag("mac=, ip= and peer= are needed on the command line");
    bool ok = setup(why, sizeof(why));
    if (!tap_check(ok && (dev.accepted & VIRTIO_BIT(NET_F_MAC)),
                   "virtio-net found, VERSION_1 and VIRTIO_NET_F_MAC negotiated", "%s",
                   ok ? "MAC feature not offered" : why))
        return;
    uint8_t cfg_mac[6];
    for (int i = 0; i < 6; i++)
        cfg_mac[i] = virtio_cfg8(&dev, (uint32_t)i);
    tap_check(args && !memcmp(cfg_mac, mac, 6), "MAC in the device configuration equals mac=",
              "config %02x:%02x:%02x:%02x:%02x:%02x", cfg_mac[0], cfg_mac[1], cfg_mac[2], cfg_mac[3],
              cfg_mac[4], cfg_mac[5]);
    if (!tap_check(setup_queues(why, sizeof(why)), "receive and transmit queues set up", "%s", why))
        return;

    bool sent = false;
    uint32_t others = 0;
    bool got = args && exchange(build_arp, is_arp_reply, 5, &sent, &others);
    tap_check(sent, "ARP request transmitted", "transmit queue returned nothing");
    if (got)
        memcpy(peer_mac, frame + 22, 6);
    tap_check(got, "ARP reply from peer= received", "none in 5 tries, %u other frames", others);
    tap_diag("peer MAC %02x:%02x:%02x:%02x:%02x:%02x, %u other frames", peer_mac[0], peer_mac[1],
             peer_mac[2], peer_mac[3], peer_mac[4], peer_mac[5], others);
    if (!got)
        return;

    sent = false;
    others = 0;
    got = exchange(build_ping, is_ping_reply, 3, &sent, &others);
    tap_check(got, "ICMP echo reply with our identifier, sequence and payload",
              "none in 3 tries (%s), %u other frames", sent ? "sent" : "not sent", others);
    const uint8_t *h = frame + 14;
    uint32_t ihl = (h[0] & 15) * 4u, tot = be16(h + 2);
    tap_check(got && inet_csum(h, ihl) == 0 && inet_csum(h + ihl, tot - ihl) == 0,
              "echo reply's IPv4 and ICMP checksums verify", "%s", got ? "bad checksum" : "no reply");
    tap_diag("EVENT_IDX %s: rx %u notifications, %u left out; tx %u, %u left out",
             rxq.event_idx ? "on" : "off", rxq.kicks, rxq.kicks_skipped, txq.kicks, txq.kicks_skipped);
    virtio_reset(&dev);
}
