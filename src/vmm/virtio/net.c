/* virtio-net (virtio 1.x, 5.1) on a tap device: one receive and one
 * transmit queue, no control queue; checksum and TCP segmentation
 * offloads both ways, which the tap understands through the same header.
 *
 * The tap is opened with IFF_VNET_HDR and a 12-byte header, the size of
 * the 1.x virtio_net_hdr (num_buffers included), so a transmitted chain
 * goes to the tap as it is and a frame read from the tap is already laid
 * out as the guest expects; only num_buffers is ours to fill in. Received
 * frames pass through one bounce buffer, which lets a frame spread over
 * several receive buffers with VIRTIO_NET_F_MRG_RXBUF. The tap is read on
 * the event loop only while the guest has posted receive buffers; a frame
 * that found none waits in the bounce buffer.
 *
 * Save/restore and migration keep that waiting frame (the device's own
 * bytes: the MAC, then the frame), so a frame the source had taken from
 * its tap still reaches the guest. Nothing else of the device needs
 * saving: a transmitted chain is written to the tap and returned within
 * one call, receive chains taken for a frame that did not fit are given
 * back at once, and the config space follows from the MAC. A loaded
 * device announces the guest's MAC on its tap (RARP, as QEMU's
 * self-announce does) so that switches learn the guest's new port at
 * once, without waiting for the guest to send anything. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "snapshot/stream.h"
#include "util/evloop.h"
#include "util/log.h"
#include "virtio/virtio.h"

#define NET_F_CSUM       0
#define NET_F_GUEST_CSUM 1
#define NET_F_MAC        5
#define NET_F_GUEST_TSO4 7
#define NET_F_GUEST_TSO6 8
#define NET_F_HOST_TSO4  11
#define NET_F_HOST_TSO6  12
#define NET_F_MRG_RXBUF  15
#define NET_F_STATUS     16
#define NET_S_LINK_UP    1

#define NET_RXQ 0
#define NET_TXQ 1
#define NET_HDR_SIZE 12
#define NET_NUM_BUFFERS_OFF 10
#define NET_CONFIG_SIZE 12      /* mac, status, max_virtqueue_pairs, mtu */
/* The largest TSO frame the tap makes: 64 KiB of IP plus link headers. */
#define NET_FRAME_MAX (NET_HDR_SIZE + 65536 + 64)
/* Receive buffers one frame may take with MRG_RXBUF, at most. */
#define NET_RX_MAX_BUFS 64
/* Announcements after a load, and the first gap and its growth (ms):
 * 50, 150, 250, 350 after the first, QEMU's defaults. */
#define NET_ANNOUNCE_ROUNDS 5
#define NET_ANNOUNCE_FIRST_MS 50
#define NET_ANNOUNCE_STEP_MS 100
#define NET_RARP_LEN 60         /* the minimum Ethernet frame, FCS left out */

struct net {
    struct virtio_dev *vd;
    int tap;
    char ifname[IFNAMSIZ];
    uint8_t mac[6];
    uint32_t watched;           /* epoll events registered for the tap */
    bool offload_set;           /* the tap's offloads follow the driver's features */
    bool tap_gone;              /* no longer watched after an error */

    uint8_t rx[NET_FRAME_MAX];  /* a frame read from the tap, not yet given */
    size_t rx_len;
    unsigned long rx_dropped;

    struct virtq_elem first;    /* the receive chain holding the header */
    struct virtq_elem elem;
    uint16_t heads[NET_RX_MAX_BUFS];
    uint32_t lens[NET_RX_MAX_BUFS];

    int announce_fd;            /* timerfd between announcements, or -1 */
    unsigned announce_left;     /* announcements still to send */
};

static int net_parse_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    char end;
    if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
               &end) != 6)
        return -EINVAL;
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)v[i];
    /* A multicast address cannot be a station's. */
    return (mac[0] & 1) ? -EINVAL : 0;
}

static int net_parse_args(struct net *n, const char *arg, struct err *e)
{
    static const uint8_t default_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
    memcpy(n->mac, default_mac, 6);
    char *s = strdup(arg ? arg : ""), *save = NULL, *tok;
    if (!s)
        return err_set(e, ENOMEM, "out of memory");
    int r = 0;
    for (tok = strtok_r(s, ",", &save); tok && r == 0; tok = strtok_r(NULL, ",", &save)) {
        if (!strncmp(tok, "tap=", 4)) {
            if (!tok[4] || strlen(tok + 4) >= IFNAMSIZ)
                r = err_set(e, EINVAL, "--net tap='%s': empty or longer than %d bytes", tok + 4,
                            IFNAMSIZ - 1);
            else
                strcpy(n->ifname, tok + 4);
        } else if (!strncmp(tok, "mac=", 4)) {
            if (net_parse_mac(tok + 4, n->mac) < 0)
                r = err_set(e, EINVAL, "--net mac='%s': not a unicast MAC address", tok + 4);
        } else {
            r = err_set(e, EINVAL, "--net: unknown option '%s'", tok);
        }
    }
    free(s);
    if (r == 0 && !n->ifname[0])
        r = err_set(e, EINVAL, "--net needs tap=NAME");
    return r;
}

static int net_open_tap(struct net *n, struct err *e)
{
    n->tap = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (n->tap < 0)
        return err_set_errno(e, errno, "--net: cannot open /dev/net/tun");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    memcpy(ifr.ifr_name, n->ifname, strlen(n->ifname));
    if (ioctl(n->tap, TUNSETIFF, &ifr) < 0)
        return err_set_errno(e, errno, "--net: cannot open tap %s", n->ifname);
    int hdr = NET_HDR_SIZE;
    if (ioctl(n->tap, TUNSETVNETHDRSZ, &hdr) < 0)
        return err_set_errno(e, errno, "--net: tap %s: cannot set the header size", n->ifname);
    /* No offloads until a driver accepts them: complete frames only. */
    if (ioctl(n->tap, TUNSETOFFLOAD, 0) < 0)
        return err_set_errno(e, errno, "--net: tap %s: cannot turn offloads off", n->ifname);
    return 0;
}

static void net_watch(struct net *n, uint32_t want)
{
    if (want != n->watched && n->vd->loop && !n->tap_gone &&
        evloop_mod(n->vd->loop, n->tap, want) == 0)
        n->watched = want;
}

static void net_rx_rewind(struct net *n, unsigned popped)
{
    /* Chains taken but not pushed go back: the driver cannot tell, since
     * only the used ring tells it anything. */
    n->vd->vqs[NET_RXQ].last_avail -= (uint16_t)popped;
    /* And the event index names the first of them again. */
    virtq_enable_notify(&n->vd->vqs[NET_RXQ]);
}

/* Gives the frame in n->rx to the guest. Returns true when it is gone
 * (delivered or dropped), false when it waits for receive buffers. */
static bool net_rx_deliver(struct net *n)
{
    struct virtio_dev *vd = n->vd;
    bool mrg = virtio_has_feature(vd, NET_F_MRG_RXBUF);
    size_t off = 0;
    unsigned nbufs = 0;
    while (off < n->rx_len) {
        struct virtq_elem *el = nbufs ? &n->elem : &n->first;
        if (nbufs == NET_RX_MAX_BUFS) {
            net_rx_rewind(n, nbufs);
            n->rx_dropped++;
            return true;
        }
        int r = virtio_pop(vd, NET_RXQ, el);
        if (r < 0)
            return true;        /* the device is broken now: drop */
        if (r == 0) {
            net_rx_rewind(n, nbufs);
            return false;
        }
        if (!nbufs && el->in_len < NET_HDR_SIZE) {
            virtio_dev_broken(vd, "a receive buffer shorter than the header");
            return true;
        }
        size_t put = virtq_elem_write(el, 0, n->rx + off, n->rx_len - off);
        n->heads[nbufs] = el->head;
        n->lens[nbufs] = (uint32_t)put;
        nbufs++;
        off += put;
        if (!mrg)
            break;              /* the frame is cut to its one buffer */
    }
    uint16_t count = (uint16_t)nbufs;
    virtq_elem_write(&n->first, NET_NUM_BUFFERS_OFF, &count, 2);
    for (unsigned i = 0; i < nbufs; i++)
        virtio_push(vd, NET_RXQ, n->heads[i], n->lens[i]);
    return true;
}

/* What the tap may hand us is what the driver accepted: partial checksums
 * with GUEST_CSUM, TCP super-frames with GUEST_TSO4/6. */
static void net_set_offload(struct net *n)
{
    struct virtio_dev *vd = n->vd;
    unsigned long f = 0;
    if (virtio_has_feature(vd, NET_F_GUEST_CSUM)) {
        f |= TUN_F_CSUM;
        if (virtio_has_feature(vd, NET_F_GUEST_TSO4))
            f |= TUN_F_TSO4;
        if (virtio_has_feature(vd, NET_F_GUEST_TSO6))
            f |= TUN_F_TSO6;
    }
    if (ioctl(n->tap, TUNSETOFFLOAD, f) < 0)
        log_warn("virtio-net: tap %s: cannot set offloads 0x%lx: %s", n->ifname, f,
                 strerror(errno));
    n->offload_set = true;
}

/* Moves frames from the tap into the guest while it has room. */
static void net_receive(struct net *n)
{
    bool pushed = false;
    if (!n->offload_set)
        net_set_offload(n);
    for (;;) {
        if (!n->rx_len) {
            ssize_t r = read(n->tap, n->rx, sizeof(n->rx));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= NET_HDR_SIZE)
                break;          /* EAGAIN, or nothing a guest could use */
            n->rx_len = (size_t)r;
        }
        if (!net_rx_deliver(n))
            break;
        pushed = true;
        n->rx_len = 0;
        if (!virtio_running(n->vd))
            break;
    }
    if (pushed)
        virtio_queue_interrupt(n->vd, NET_RXQ);
    /* Read the tap again only once a waiting frame has somewhere to go. */
    net_watch(n, n->rx_len ? 0 : EPOLLIN);
}

static void net_on_tap(void *opaque, uint32_t events)
{
    struct net *n = opaque;
    virtio_lock(n->vd);
    if (events & (EPOLLERR | EPOLLHUP)) {
        /* The tap went away under us: stop watching it rather than spin on
         * an error epoll reports whatever we ask for. Writes just fail. */
        log_warn("virtio-net: tap %s failed; no more receiving", n->ifname);
        evloop_del(n->vd->loop, n->tap);
        n->tap_gone = true;
    } else if (virtio_running(n->vd))
        net_receive(n);
    else
        net_watch(n, 0);        /* until the driver is ready */
    virtio_unlock(n->vd);
}

static void net_transmit(struct net *n)
{
    struct virtio_dev *vd = n->vd;
    struct virtq *vq = &vd->vqs[NET_TXQ];
    bool pushed = false;
    virtq_disable_notify(vq);
again:
    while (virtio_pop(vd, NET_TXQ, &n->elem) > 0) {
        if (n->elem.out_len > NET_HDR_SIZE && n->elem.out_len <= NET_FRAME_MAX) {
            ssize_t r;
            do {
                r = writev(n->tap, n->elem.iov, (int)n->elem.nout);
            } while (r < 0 && errno == EINTR);
            /* A full tap queue drops, like a busy wire. */
            if (r < 0)
                log_debug("virtio-net: tap %s: write failed: %s", n->ifname, strerror(errno));
        }
        virtio_push(vd, NET_TXQ, n->elem.head, 0);
        pushed = true;
    }
    /* Chains the driver added after the last pop, without a kick. */
    if (virtq_enable_notify(vq)) {
        virtq_disable_notify(vq);
        goto again;
    }
    if (pushed)
        virtio_queue_interrupt(vd, NET_TXQ);
}

static void net_queue_notify(struct virtio_dev *vd, unsigned q)
{
    struct net *n = vd->priv;
    if (q == NET_TXQ)
        net_transmit(n);
    else if (q == NET_RXQ)
        net_receive(n);
}

static void net_reset(struct virtio_dev *vd)
{
    struct net *n = vd->priv;
    n->rx_len = 0;
    net_watch(n, 0);
    if (n->offload_set && ioctl(n->tap, TUNSETOFFLOAD, 0) < 0)
        log_warn("virtio-net: tap %s: cannot turn offloads off", n->ifname);
    n->offload_set = false;
}

static void net_config_read(struct virtio_dev *vd, unsigned off, uint8_t *data, unsigned len)
{
    struct net *n = vd->priv;
    uint8_t cfg[NET_CONFIG_SIZE] = { 0 };
    memcpy(cfg, n->mac, 6);
    cfg[6] = NET_S_LINK_UP;
    cfg[8] = 1;                 /* max_virtqueue_pairs */
    memcpy(data, cfg + off, len);
}

static void net_config_write(struct virtio_dev *vd, unsigned off, const uint8_t *data,
                             unsigned len)
{
    /* The MAC is writable only in legacy devices; nothing else is. */
}

/* One RARP "request reverse" from the guest's MAC to everyone (RFC 903):
 * a frame no host answers and every bridge learns the source port from. */
static void net_announce_send(struct net *n)
{
    uint8_t f[NET_HDR_SIZE + NET_RARP_LEN] = { 0 };
    uint8_t *eth = f + NET_HDR_SIZE, *arp = eth + 14;
    memset(eth, 0xff, 6);
    memcpy(eth + 6, n->mac, 6);
    eth[12] = 0x80;             /* ethertype 0x8035, RARP */
    eth[13] = 0x35;
    arp[1] = 1;                 /* hardware type: Ethernet */
    arp[2] = 0x08;              /* protocol type: IPv4 */
    arp[4] = 6;                 /* hardware address length */
    arp[5] = 4;                 /* protocol address length */
    arp[7] = 3;                 /* operation: request reverse */
    memcpy(arp + 8, n->mac, 6);         /* sender hardware address */
    memcpy(arp + 18, n->mac, 6);        /* target hardware address */
    /* The 12-byte header of zeros: no offload, nothing to finish. */
    ssize_t r;
    do {
        r = write(n->tap, f, sizeof(f));
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        log_debug("virtio-net: tap %s: announce not sent: %s", n->ifname, strerror(errno));
}

static void net_announce_stop(struct net *n)
{
    if (n->announce_fd < 0)
        return;
    if (n->vd->loop)
        evloop_del(n->vd->loop, n->announce_fd);
    close(n->announce_fd);
    n->announce_fd = -1;
    n->announce_left = 0;
}

static void net_announce_arm(struct net *n)
{
    unsigned done = NET_ANNOUNCE_ROUNDS - n->announce_left;
    unsigned ms = NET_ANNOUNCE_FIRST_MS + (done - 1) * NET_ANNOUNCE_STEP_MS;
    struct itimerspec its = { .it_value = { ms / 1000, (long)(ms % 1000) * 1000000 } };
    if (timerfd_settime(n->announce_fd, 0, &its, NULL) < 0)
        net_announce_stop(n);
}

static void net_on_announce(void *opaque, uint32_t events)
{
    struct net *n = opaque;
    uint64_t ticks;
    virtio_lock(n->vd);
    if (read(n->announce_fd, &ticks, sizeof(ticks)) < 0 && errno == EAGAIN) {
        virtio_unlock(n->vd);
        return;
    }
    net_announce_send(n);
    if (--n->announce_left == 0)
        net_announce_stop(n);
    else
        net_announce_arm(n);
    virtio_unlock(n->vd);
}

/* The first announcement goes now, the others from the event loop: one
 * frame can be lost while the new port settles, a series rarely is. */
static void net_announce_start(struct net *n)
{
    net_announce_stop(n);
    net_announce_send(n);
    if (!n->vd->loop)
        return;
    n->announce_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (n->announce_fd < 0)
        return;
    if (evloop_add(n->vd->loop, n->announce_fd, EPOLLIN, net_on_announce, n) < 0) {
        close(n->announce_fd);
        n->announce_fd = -1;
        return;
    }
    n->announce_left = NET_ANNOUNCE_ROUNDS - 1;
    net_announce_arm(n);
}

static void net_save(struct virtio_dev *vd, struct snapbuf *b)
{
    struct net *n = vd->priv;
    snapbuf_put(b, n->mac, 6);
    snapbuf_put_u32(b, (uint32_t)n->rx_len);
    snapbuf_put(b, n->rx, n->rx_len);
}

static int net_load(struct virtio_dev *vd, struct snapbuf *b, struct err *e)
{
    struct net *n = vd->priv;
    uint8_t mac[6];
    /* A snapshot from before the device kept anything has no bytes. */
    if (snapbuf_left(b) > 0) {
        snapbuf_get(b, mac, 6);
        uint32_t len = snapbuf_get_u32(b);
        if (b->short_read)
            return err_set(e, EINVAL, "state truncated");
        if (memcmp(mac, n->mac, 6) != 0)
            return err_set(e, EINVAL, "the snapshot's MAC %02x:%02x:%02x:%02x:%02x:%02x is not "
                           "this device's", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
        if (len != 0 && (len <= NET_HDR_SIZE || len > NET_FRAME_MAX))
            return err_set(e, EINVAL, "a waiting frame of %u bytes", len);
        if (len != snapbuf_left(b))
            return err_set(e, EINVAL, "a waiting frame of %u bytes with %zu bytes stored", len,
                           snapbuf_left(b));
        snapbuf_get(b, n->rx, len);
        n->rx_len = len;
    }
    net_announce_start(n);
    return 0;
}

static void net_destroy(struct virtio_dev *vd)
{
    struct net *n = vd->priv;
    if (!n)
        return;
    net_announce_stop(n);
    if (n->tap >= 0) {
        if (n->vd->loop && !n->tap_gone)
            evloop_del(n->vd->loop, n->tap);
        close(n->tap);
    }
    free(n);
    vd->priv = NULL;
}

static int net_create(struct virtio_dev *vd, const char *arg, struct err *e)
{
    struct net *n = calloc(1, sizeof(*n));
    if (!n)
        return err_set(e, ENOMEM, "out of memory");
    n->vd = vd;
    n->tap = -1;
    n->announce_fd = -1;
    vd->priv = n;
    int r = net_parse_args(n, arg, e);
    if (r == 0)
        r = net_open_tap(n, e);
    if (r == 0 && vd->loop) {
        r = evloop_add(vd->loop, n->tap, 0, net_on_tap, n);
        if (r < 0)
            r = err_set(e, -r, "--net: cannot watch tap %s", n->ifname);
    }
    if (r < 0) {
        if (n->tap >= 0 && r != 0)
            close(n->tap);
        n->tap = -1;
        net_destroy(vd);
        return r;
    }
    vd->device_features = (1ULL << NET_F_MAC) | (1ULL << NET_F_MRG_RXBUF) |
                          (1ULL << NET_F_STATUS) | (1ULL << NET_F_CSUM) |
                          (1ULL << NET_F_HOST_TSO4) | (1ULL << NET_F_HOST_TSO6) |
                          (1ULL << NET_F_GUEST_CSUM) | (1ULL << NET_F_GUEST_TSO4) |
                          (1ULL << NET_F_GUEST_TSO6);
    return 0;
}

const struct virtio_dev_ops virtio_net_ops = {
    .name = "net",
    .device_id = VIRTIO_ID_NET,
    .nqueues = 2,
    .queue_size = 256,
    .config_size = NET_CONFIG_SIZE,
    .create = net_create,
    .destroy = net_destroy,
    .config_read = net_config_read,
    .config_write = net_config_write,
    .queue_notify = net_queue_notify,
    .reset = net_reset,
    .save = net_save,
    .load = net_load,
};
