/* virtio-net's save and load (the device's own bytes after the core's):
 * a frame read from the tap while the guest had no receive buffer is
 * saved, and the device loaded from that state on a new tap gives it to
 * the guest; a load announces the MAC on the tap (five RARP frames, the
 * rest paced by the event loop); states with another MAC, a cut or an
 * impossible frame are refused. Runs in a private network namespace with
 * real taps; without root the cases skip and say so. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fake_vm.h"
#include "snapshot/stream.h"
#include "util/evloop.h"
#include "virtio/virtio.h"
#include "vm.h"

#define MEM_SIZE (16ULL << 20)
#define QSIZE 16
#define RXQ 0
#define TXQ 1
#define RING(q) (0x1000u + 0x3000u * (q))
#define DESC(q) RING(q)
#define AVAIL(q) (RING(q) + 0x1000u)
#define USED(q) (RING(q) + 0x2000u)
#define BUF 0x10000u
#define HDR 12
#define ETH_TYPE 0x88b5
#define ETH_RARP 0x8035
#define TAPNAME "cvus0"
#define MACSTR "52:54:00:aa:bb:cc"

static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc };
static bool have_netns;

struct fixture {
    struct vm vm;
    uint8_t *mem;
    struct virtio_dev vd;
    struct evloop *loop;
    bool up;
    uint16_t avail_idx;         /* the receive queue's */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->mem = fake_vm_map(&f->vm, MEM_SIZE, 0);
    *state = f;
    return 0;
}

static void down(struct fixture *f)
{
    if (f->up)
        virtio_dev_fini(&f->vd);
    f->up = false;
    if (f->loop)
        evloop_free(f->loop);
    f->loop = NULL;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    down(f);
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

/* A packet socket on the tap for one ethertype. */
static int wire_open(uint16_t type)
{
    int s = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(type));
    assert_true(s >= 0);
    struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(type),
                               .sll_ifindex = (int)if_nametoindex(TAPNAME) };
    assert_true(sll.sll_ifindex > 0);
    assert_int_equal(bind(s, (struct sockaddr *)&sll, sizeof(sll)), 0);
    return s;
}

/* The device on the tap (created anew when it does not exist), with or
 * without an event loop; with driver, the driver's bring-up too. */
static void create(struct fixture *f, const char *macopt, bool loop, bool driver)
{
    if (!have_netns)
        skip();
    char arg[100];
    struct err e = { 0 };
    snprintf(arg, sizeof(arg), "tap=" TAPNAME ",mac=%s", macopt);
    f->loop = loop ? evloop_new() : NULL;
    assert_int_equal(virtio_dev_init(&f->vd, &virtio_net_ops, &f->vm, f->loop, arg, &e), 0);
    f->up = true;
    link_up(TAPNAME);
    /* A loaded device has its transport from the start, as in the monitor. */
    f->vd.transport = &fake_vm_quiet_transport;
    if (driver) {
        static const struct fake_ring rings[2] = {
            { DESC(RXQ), AVAIL(RXQ), USED(RXQ) }, { DESC(TXQ), AVAIL(TXQ), USED(TXQ) },
        };
        fake_vm_virtio_up(&f->vd, &fake_vm_quiet_transport, ~0ULL, 2, rings, QSIZE);
    }
}

static void kick(struct fixture *f)
{
    fake_vm_kick(&f->vd, RXQ);
}

static uint16_t used_idx(struct fixture *f)
{
    uint16_t v;
    memcpy(&v, f->mem + USED(RXQ) + 2, 2);
    return v;
}

/* One device-writable receive buffer of len bytes at BUF, offered. */
static void offer_rx(struct fixture *f, uint32_t len)
{
    uint8_t *d = f->mem + DESC(RXQ);
    uint64_t addr = BUF;
    uint16_t flags = 2, next = 0;       /* VIRTQ_DESC_F_WRITE */
    memcpy(d, &addr, 8);
    memcpy(d + 8, &len, 4);
    memcpy(d + 12, &flags, 2);
    memcpy(d + 14, &next, 2);
    uint16_t head = 0;
    memcpy(f->mem + AVAIL(RXQ) + 4 + 2 * (f->avail_idx % QSIZE), &head, 2);
    f->avail_idx++;
    memcpy(f->mem + AVAIL(RXQ) + 2, &f->avail_idx, 2);
}

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

/* Where the device's own bytes start in a saved state, read the way the
 * core lays it out; *n is their count. */
static size_t dev_bytes(const struct snapbuf *saved, uint32_t *n)
{
    struct snapbuf b;
    snapbuf_view(&b, saved->data, saved->len);
    snapbuf_get_u64(&b);
    snapbuf_get_u64(&b);
    snapbuf_get_u8(&b);
    snapbuf_get_u8(&b);
    unsigned nq = snapbuf_get_u8(&b);
    for (unsigned q = 0; q < nq; q++) {
        uint8_t skip[1 + 1 + 2 + 24 + 2 + 2 + 2 + 1];
        snapbuf_get(&b, skip, sizeof(skip));
    }
    *n = snapbuf_get_u32(&b);
    assert_false(b.short_read);
    assert_int_equal(*n, snapbuf_left(&b));
    return b.pos;
}

/* The state with the device's own bytes replaced by dev (n bytes). */
static void with_dev_bytes(const struct snapbuf *saved, const void *dev, uint32_t n,
                           struct snapbuf *out)
{
    uint32_t old;
    size_t at = dev_bytes(saved, &old);
    snapbuf_init(out);
    snapbuf_put(out, saved->data, at - 4);
    snapbuf_put_u32(out, n);
    snapbuf_put(out, dev, n);
}

static int load(struct fixture *f, const struct snapbuf *state, struct err *e)
{
    struct snapbuf b;
    snapbuf_view(&b, state->data, state->len);
    return virtio_dev_load(&f->vd, &b, e);
}

static void assert_rarp(const uint8_t *p, ssize_t len)
{
    assert_int_equal(len, 60);
    static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    assert_memory_equal(p, bcast, 6);
    assert_memory_equal(p + 6, mac, 6);
    assert_int_equal(p[12] << 8 | p[13], ETH_RARP);
    const uint8_t *a = p + 14;
    assert_int_equal(a[0] << 8 | a[1], 1);          /* Ethernet */
    assert_int_equal(a[2] << 8 | a[3], 0x0800);     /* IPv4 */
    assert_int_equal(a[4], 6);
    assert_int_equal(a[5], 4);
    assert_int_equal(a[6] << 8 | a[7], 3);          /* request reverse */
    assert_memory_equal(a + 8, mac, 6);
    assert_memory_equal(a + 18, mac, 6);
}

/* A frame the guest had no room for moves with the state: saved by the
 * first device, given to the guest by a new one on a new tap once the
 * guest posts a buffer, and the new one announces the MAC. */
static void test_waiting_frame_moves(void **state)
{
    struct fixture *f = *state;
    create(f, MACSTR, false, true);
    int wire = wire_open(ETH_TYPE);
    uint8_t frame[300];
    make_frame(frame, sizeof(frame), 7);
    assert_int_equal(send(wire, frame, sizeof(frame), 0), (ssize_t)sizeof(frame));
    struct snapbuf saved;
    uint32_t n = 0;
    size_t at = 0;
    /* The frame travels through the kernel; each kick reads the tap. */
    for (int i = 0; i < 1000 && n <= 10; i++) {
        kick(f);
        snapbuf_init(&saved);
        virtio_dev_save(&f->vd, &saved);
        at = dev_bytes(&saved, &n);
        if (n <= 10) {
            snapbuf_free(&saved);
            usleep(1000);
        }
    }
    assert_int_equal(n, 6 + 4 + HDR + sizeof(frame));
    assert_memory_equal(saved.data + at, mac, 6);
    uint32_t len;
    memcpy(&len, saved.data + at + 6, 4);
    assert_int_equal(len, HDR + sizeof(frame));
    static const uint8_t zero[HDR] = { 0 };
    assert_memory_equal(saved.data + at + 10, zero, HDR);
    assert_memory_equal(saved.data + at + 10 + HDR, frame, sizeof(frame));
    assert_int_equal(used_idx(f), 0);
    close(wire);

    /* The old process goes (its tap with it), a new one comes. */
    down(f);
    create(f, MACSTR, false, false);
    int rarp = wire_open(ETH_RARP);
    struct err e = { 0 };
    assert_int_equal(load(f, &saved, &e), 0);
    snapbuf_free(&saved);
    uint8_t got[128];
    struct pollfd p = { rarp, POLLIN, 0 };
    assert_int_equal(poll(&p, 1, 1000), 1);
    assert_rarp(got, recv(rarp, got, sizeof(got), 0));
    close(rarp);

    offer_rx(f, 2048);
    kick(f);
    assert_int_equal(used_idx(f), 1);
    uint32_t id, ulen;
    memcpy(&id, f->mem + USED(RXQ) + 4, 4);
    memcpy(&ulen, f->mem + USED(RXQ) + 8, 4);
    assert_int_equal(id, 0);
    assert_int_equal(ulen, HDR + sizeof(frame));
    uint16_t nbufs;
    memcpy(&nbufs, f->mem + BUF + 10, 2);
    assert_int_equal(nbufs, 1);
    assert_memory_equal(f->mem + BUF + HDR, frame, sizeof(frame));
}

/* With an event loop the announce is five frames, then the timer goes. */
static void test_announce_series(void **state)
{
    struct fixture *f = *state;
    create(f, MACSTR, true, true);
    struct snapbuf saved;
    snapbuf_init(&saved);
    virtio_dev_save(&f->vd, &saved);
    int watches = evloop_watch_count(f->loop);
    int rarp = wire_open(ETH_RARP);
    struct err e = { 0 };
    assert_int_equal(load(f, &saved, &e), 0);
    snapbuf_free(&saved);
    assert_int_equal(evloop_watch_count(f->loop), watches + 1);
    int count = 0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        evloop_run_once(f->loop, 50);
        uint8_t got[128];
        ssize_t r;
        while ((r = recv(rarp, got, sizeof(got), 0)) > 0) {
            assert_rarp(got, r);
            count++;
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (t.tv_sec - t0.tv_sec < 2);
    close(rarp);
    assert_int_equal(count, 5);
    assert_int_equal(evloop_watch_count(f->loop), watches);
}

/* States a load must refuse, each with one line, and the empty state of
 * a device that kept nothing, which loads. */
static void test_load_refuses(void **state)
{
    struct fixture *f = *state;
    create(f, MACSTR, false, true);
    struct snapbuf saved, bad;
    snapbuf_init(&saved);
    virtio_dev_save(&f->vd, &saved);
    uint8_t dev[6 + 4 + HDR + 64] = { 0 };
    uint32_t len;
    static const struct {
        const char *what;
        uint8_t mac5;
        uint32_t len;           /* the length field */
        uint32_t n;             /* bytes stored */
    } cases[] = {
        { "is not this device's", 0xcd, 0, 10 },
        { "state truncated", 0xcc, 0, 8 },
        { "a waiting frame of 5 bytes", 0xcc, 5, 15 },
        { "a waiting frame of 70000 bytes", 0xcc, 70000, 10 },
        { "with 20 bytes stored", 0xcc, 76, 30 },
        { "with 0 bytes stored", 0xcc, 76, 10 },
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(dev, mac, 6);
        dev[5] = cases[i].mac5;
        len = cases[i].len;
        memcpy(dev + 6, &len, 4);
        with_dev_bytes(&saved, dev, cases[i].n, &bad);
        struct err e = { 0 };
        assert_int_equal(load(f, &bad, &e), -EINVAL);
        if (!strstr(e.msg, cases[i].what))
            fail_msg("case %u: '%s' does not say '%s'", i, e.msg, cases[i].what);
        snapbuf_free(&bad);
    }
    with_dev_bytes(&saved, dev, 0, &bad);
    struct err e = { 0 };
    assert_int_equal(load(f, &bad, &e), 0);
    snapbuf_free(&bad);
    snapbuf_free(&saved);
}

int main(void)
{
    have_netns = unshare(CLONE_NEWNET) == 0 && access("/dev/net/tun", R_OK | W_OK) == 0;
    /* No IPv6 on new links: its router solicitations would reach the tap. */
    FILE *fp = have_netns ? fopen("/proc/sys/net/ipv6/conf/default/disable_ipv6", "w") : NULL;
    if (fp) {
        fputs("1\n", fp);
        fclose(fp);
    }
    if (!have_netns)
        printf("# tap cases skip: no private network namespace or /dev/net/tun (needs root)\n");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_waiting_frame_moves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_announce_series, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_refuses, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
