/* virtio-net over a recording transport and a real tap in a private
 * network namespace: option parsing, config space, the 12-byte header on
 * transmit (stripped before the wire) and on receive (zeroed, num_buffers
 * filled in), frames spread over mergeable receive buffers or cut to one
 * buffer without them, and malformed chains. Frames reach the wire and
 * come from it through a packet socket on the tap. Creating the namespace
 * and the tap needs root (CAP_NET_ADMIN); without it the tap cases skip
 * and say so. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "fake_vm.h"
#include "virtio/virtio.h"
#include "vm.h"

#define MEM_SIZE (16ULL << 20)
#define QSIZE 16
#define RXQ 0
#define TXQ 1
/* Rings: receive at 0x1000, transmit at 0x4000. */
#define RING(q) (0x1000u + 0x3000u * (q))
#define DESC(q) RING(q)
#define AVAIL(q) (RING(q) + 0x1000u)
#define USED(q) (RING(q) + 0x2000u)
#define BUF 0x10000u
#define HDR 12
#define ETH_TYPE 0x88b5
#define TAPNAME "cvut0"

#define F_MAC 5
#define F_MRG_RXBUF 15
#define F_STATUS 16

static bool have_netns;

struct fixture {
    struct vm vm;
    uint8_t *mem;
    struct virtio_dev vd;
    bool up;
    uint16_t avail_idx[2];
    int pkt;                    /* packet socket on the tap */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->mem = fake_vm_map(&f->vm, MEM_SIZE, 0);
    f->pkt = -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->up)
        virtio_dev_fini(&f->vd);
    if (f->pkt >= 0)
        close(f->pkt);
    fake_vm_unmap(&f->vm);
    free(f);
    return 0;
}

static void link_up(const char *name)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(s >= 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    strcpy(ifr.ifr_name, name);
    assert_int_equal(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
    ifr.ifr_flags |= IFF_UP;
    assert_int_equal(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
    close(s);
}

/* Creates the device on a new tap (features: the device's, or only those
 * in mask), brings both queues up and opens a packet socket on the tap. */
static void bring_up(struct fixture *f, const char *opts, uint64_t mask)
{
    if (!have_netns)
        skip();
    char arg[200];
    struct err e = { 0 };
    snprintf(arg, sizeof(arg), "tap=" TAPNAME "%s", opts);
    assert_int_equal(virtio_dev_init(&f->vd, &virtio_net_ops, &f->vm, NULL, arg, &e), 0);
    f->up = true;
    static const struct fake_ring rings[2] = {
        { DESC(RXQ), AVAIL(RXQ), USED(RXQ) }, { DESC(TXQ), AVAIL(TXQ), USED(TXQ) },
    };
    fake_vm_virtio_up(&f->vd, &fake_vm_quiet_transport, mask, 2, rings, QSIZE);

    link_up(TAPNAME);
    f->pkt = socket(AF_PACKET, SOCK_RAW, htons(ETH_TYPE));
    assert_true(f->pkt >= 0);
    struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_TYPE),
                               .sll_ifindex = (int)if_nametoindex(TAPNAME) };
    assert_true(sll.sll_ifindex > 0);
    assert_int_equal(bind(f->pkt, (struct sockaddr *)&sll, sizeof(sll)), 0);
}

static void desc(struct fixture *f, unsigned q, unsigned i, uint64_t addr, uint32_t len,
                 uint16_t flags, uint16_t next)
{
    uint8_t *p = f->mem + DESC(q) + 16 * i;
    memcpy(p, &addr, 8);
    memcpy(p + 8, &len, 4);
    memcpy(p + 12, &flags, 2);
    memcpy(p + 14, &next, 2);
}

static uint16_t used_idx(struct fixture *f, unsigned q)
{
    uint16_t v;
    memcpy(&v, f->mem + USED(q) + 2, 2);
    return v;
}

/* The n-th used entry (counting from 0) of queue q: id and length. */
static void used_entry(struct fixture *f, unsigned q, uint16_t n, uint32_t *id, uint32_t *len)
{
    const uint8_t *e = f->mem + USED(q) + 4 + 8 * (n % QSIZE);
    memcpy(id, e, 4);
    memcpy(len, e + 4, 4);
}

static void offer(struct fixture *f, unsigned q, uint16_t head)
{
    memcpy(f->mem + AVAIL(q) + 4 + 2 * (f->avail_idx[q] % QSIZE), &head, 2);
    f->avail_idx[q]++;
    memcpy(f->mem + AVAIL(q) + 2, &f->avail_idx[q], 2);
}

static void kick(struct fixture *f, unsigned q)
{
    fake_vm_kick(&f->vd, q);
}

/* A frame to everyone from a local address with our ethertype, its
 * payload numbered from seed. */
static void make_frame(uint8_t *p, uint32_t len, uint8_t seed)
{
    memset(p, 0xff, 6);
    static const uint8_t src[6] = { 0x02, 0, 0, 0, 0, 0x01 };
    memcpy(p + 6, src, 6);
    p[12] = ETH_TYPE >> 8;
    p[13] = ETH_TYPE & 0xff;
    for (uint32_t i = 14; i < len; i++)
        p[i] = (uint8_t)(seed + i);
}

/* The next frame on the wire within a second; its length, -1 if none. */
static int wire_recv(struct fixture *f, uint8_t *buf, size_t size)
{
    struct pollfd p = { f->pkt, POLLIN, 0 };
    if (poll(&p, 1, 1000) != 1)
        return -1;
    return (int)recv(f->pkt, buf, size, 0);
}

static void wire_send(struct fixture *f, const uint8_t *frame, size_t len)
{
    assert_int_equal(send(f->pkt, frame, len, 0), (ssize_t)len);
}

/* Kicks the receive queue until the used ring moves past want - 1 (the
 * frame travels through the kernel first). */
static void rx_until(struct fixture *f, uint16_t want)
{
    for (int i = 0; i < 1000 && (uint16_t)(used_idx(f, RXQ) - want) > 0x8000; i++) {
        kick(f, RXQ);
        usleep(1000);
    }
    assert_int_equal(used_idx(f, RXQ), want);
}

static void test_options(void **state)
{
    struct fixture *f = *state;
    static const char *bad[] = { "", "mac=52:54:00:00:00:01", "tap=", "tap=a-name-longer-than-15",
                                 "tap=x,mac=01:00:00:00:00:01", "tap=x,mac=52:54:00:00:00",
                                 "tap=x,mac=zz:54:00:00:00:01", "tap=x,bogus=1" };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct err e = { 0 };
        struct virtio_dev vd;
        assert_true(virtio_dev_init(&vd, &virtio_net_ops, &f->vm, NULL, bad[i], &e) < 0);
        assert_true(err_is_set(&e));
    }
}

static void test_config(void **state)
{
    struct fixture *f = *state;
    bring_up(f, ",mac=52:54:00:ab:cd:ef", ~0ULL);
    uint8_t cfg[12];
    virtio_net_ops.config_read(&f->vd, 0, cfg, sizeof(cfg));
    static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };
    assert_memory_equal(cfg, mac, 6);
    assert_int_equal(cfg[6] & 1, 1);       /* link up */
    assert_int_equal(cfg[8], 1);           /* one queue pair */
    uint64_t feat = f->vd.host_features;
    assert_true(feat & (1ULL << F_MAC));
    assert_true(feat & (1ULL << F_MRG_RXBUF));
    assert_true(feat & (1ULL << F_STATUS));
}

/* Transmit: the header goes to the tap, not onto the wire; a frame split
 * over several descriptors arrives whole, and so does one whose header
 * shares a descriptor with the frame. */
static void test_transmit(void **state)
{
    struct fixture *f = *state;
    bring_up(f, "", ~0ULL);
    uint8_t frame[200], got[2048];
    make_frame(frame, sizeof(frame), 7);
    memset(f->mem + BUF, 0, HDR);
    memcpy(f->mem + BUF + 0x100, frame, 50);
    memcpy(f->mem + BUF + 0x400, frame + 50, sizeof(frame) - 50);
    desc(f, TXQ, 0, BUF, HDR, VIRTQ_DESC_F_NEXT, 1);
    desc(f, TXQ, 1, BUF + 0x100, 50, VIRTQ_DESC_F_NEXT, 2);
    desc(f, TXQ, 2, BUF + 0x400, sizeof(frame) - 50, 0, 0);
    offer(f, TXQ, 0);
    kick(f, TXQ);
    assert_int_equal(used_idx(f, TXQ), 1);
    uint32_t id, len;
    used_entry(f, TXQ, 0, &id, &len);
    assert_int_equal(id, 0);
    assert_int_equal(len, 0);               /* the device writes nothing */
    assert_int_equal(wire_recv(f, got, sizeof(got)), sizeof(frame));
    assert_memory_equal(got, frame, sizeof(frame));

    make_frame(frame, 60, 99);
    memset(f->mem + BUF + 0x800, 0, HDR);
    memcpy(f->mem + BUF + 0x800 + HDR, frame, 60);
    desc(f, TXQ, 3, BUF + 0x800, HDR + 60, 0, 0);
    offer(f, TXQ, 3);
    kick(f, TXQ);
    assert_int_equal(used_idx(f, TXQ), 2);
    assert_int_equal(wire_recv(f, got, sizeof(got)), 60);
    assert_memory_equal(got, frame, 60);
}

/* A transmit chain with nothing after the header, or only device-writable
 * buffers, is returned unsent; the device keeps running. */
static void test_transmit_malformed(void **state)
{
    struct fixture *f = *state;
    bring_up(f, "", ~0ULL);
    uint8_t got[2048];
    desc(f, TXQ, 0, BUF, HDR, 0, 0);
    offer(f, TXQ, 0);
    desc(f, TXQ, 1, BUF, 100, VIRTQ_DESC_F_WRITE, 0);
    offer(f, TXQ, 1);
    kick(f, TXQ);
    assert_int_equal(used_idx(f, TXQ), 2);
    assert_true(virtio_running(&f->vd));
    assert_int_equal(wire_recv(f, got, sizeof(got)), -1);
    /* A descriptor outside guest memory breaks the queue: needs reset. */
    desc(f, TXQ, 2, MEM_SIZE - 8, 64, 0, 0);
    offer(f, TXQ, 2);
    kick(f, TXQ);
    assert_true(f->vd.status & VIRTIO_STATUS_NEEDS_RESET);
    assert_int_equal(used_idx(f, TXQ), 2);
}

/* Receive with mergeable buffers: a frame larger than one buffer spreads
 * over several, the first header says how many, the rest are zero. */
static void test_receive_mergeable(void **state)
{
    struct fixture *f = *state;
    bring_up(f, "", ~0ULL);
    assert_true(virtio_has_feature(&f->vd, F_MRG_RXBUF));
    for (unsigned i = 0; i < 4; i++) {
        memset(f->mem + BUF + 0x1000 * i, 0xee, 0x1000);
        desc(f, RXQ, i, BUF + 0x1000 * i, 100, VIRTQ_DESC_F_WRITE, 0);
        offer(f, RXQ, (uint16_t)i);
    }
    uint8_t frame[250];
    make_frame(frame, sizeof(frame), 3);
    wire_send(f, frame, sizeof(frame));
    rx_until(f, 3);
    /* 12 + 250 bytes: 100 + 100 + 62 in the first three buffers. */
    uint32_t id, len, total = 0;
    uint8_t got[HDR + sizeof(frame)];
    for (uint16_t n = 0; n < 3; n++) {
        used_entry(f, RXQ, n, &id, &len);
        assert_int_equal(id, n);
        assert_true(len <= 100);
        memcpy(got + total, f->mem + BUF + 0x1000 * id, len);
        total += len;
    }
    assert_int_equal(total, HDR + sizeof(frame));
    static const uint8_t zero[10] = { 0 };
    assert_memory_equal(got, zero, 10);     /* flags, gso, no offload asked */
    uint16_t nbuf;
    memcpy(&nbuf, got + 10, 2);
    assert_int_equal(nbuf, 3);
    assert_memory_equal(got + HDR, frame, sizeof(frame));
    assert_int_equal(f->mem[BUF + 0x3000], 0xee);   /* the fourth is untouched */
}

/* Without mergeable buffers a frame takes one buffer, cut to its size. */
static void test_receive_single(void **state)
{
    struct fixture *f = *state;
    bring_up(f, "", ~(1ULL << F_MRG_RXBUF));
    assert_false(virtio_has_feature(&f->vd, F_MRG_RXBUF));
    desc(f, RXQ, 0, BUF, 1526, VIRTQ_DESC_F_WRITE, 0);
    offer(f, RXQ, 0);
    desc(f, RXQ, 1, BUF + 0x1000, 80, VIRTQ_DESC_F_WRITE, 0);
    offer(f, RXQ, 1);
    uint8_t frame[300];
    make_frame(frame, sizeof(frame), 11);
    wire_send(f, frame, sizeof(frame));
    rx_until(f, 1);
    uint32_t id, len;
    used_entry(f, RXQ, 0, &id, &len);
    assert_int_equal(id, 0);
    assert_int_equal(len, HDR + sizeof(frame));
    assert_memory_equal(f->mem + BUF + HDR, frame, sizeof(frame));
    uint16_t nbuf;
    memcpy(&nbuf, f->mem + BUF + 10, 2);
    assert_int_equal(nbuf, 1);
    /* Into the 80-byte buffer: the first 68 bytes of the frame. */
    make_frame(frame, sizeof(frame), 12);
    wire_send(f, frame, sizeof(frame));
    rx_until(f, 2);
    used_entry(f, RXQ, 1, &id, &len);
    assert_int_equal(id, 1);
    assert_int_equal(len, 80);
    assert_memory_equal(f->mem + BUF + 0x1000 + HDR, frame, 80 - HDR);
}

/* A receive buffer too short for the header is a driver bug: the device
 * stops and asks for a reset rather than deliver half a header. */
static void test_receive_malformed(void **state)
{
    struct fixture *f = *state;
    bring_up(f, "", ~0ULL);
    desc(f, RXQ, 0, BUF, 8, VIRTQ_DESC_F_WRITE, 0);
    offer(f, RXQ, 0);
    uint8_t frame[64];
    make_frame(frame, sizeof(frame), 1);
    wire_send(f, frame, sizeof(frame));
    for (int i = 0; i < 1000 && !(f->vd.status & VIRTIO_STATUS_NEEDS_RESET); i++) {
        kick(f, RXQ);
        usleep(1000);
    }
    assert_true(f->vd.status & VIRTIO_STATUS_NEEDS_RESET);
    assert_int_equal(used_idx(f, RXQ), 0);
}

/* A receive descriptor the device may not write (no WRITE flag): the
 * chain has no room for a frame, the device stops. */
static void test_receive_readonly_buffer(void **state)
{
    struct fixture *f = *state;
    bring_up(f, "", ~0ULL);
    desc(f, RXQ, 0, BUF, 1526, 0, 0);
    offer(f, RXQ, 0);
    uint8_t frame[64];
    make_frame(frame, sizeof(frame), 2);
    wire_send(f, frame, sizeof(frame));
    for (int i = 0; i < 1000 && !(f->vd.status & VIRTIO_STATUS_NEEDS_RESET); i++) {
        kick(f, RXQ);
        usleep(1000);
    }
    assert_true(f->vd.status & VIRTIO_STATUS_NEEDS_RESET);
    assert_int_equal(used_idx(f, RXQ), 0);
}

int main(void)
{
    /* A namespace of our own: the tap sees no traffic but ours. */
    have_netns = unshare(CLONE_NEWNET) == 0 && access("/dev/net/tun", R_OK | W_OK) == 0;
    /* No IPv6 on new links: its router solicitations would be frames of
     * their own in the receive queue. */
    FILE *fp = have_netns ? fopen("/proc/sys/net/ipv6/conf/default/disable_ipv6", "w") : NULL;
    if (fp) {
        fputs("1\n", fp);
        fclose(fp);
    }
    if (!have_netns)
        printf("# tap cases skip: no private network namespace or /dev/net/tun (needs root)\n");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transmit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transmit_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receive_mergeable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receive_single, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receive_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receive_readonly_buffer, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
