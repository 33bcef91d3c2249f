/* The migration destination reads a stream from the network: its header,
 * page records and the state record must be refused cleanly, and pages may
 * only land inside guest RAM.
 *
 * The receiver only takes a socket, so each input goes through a real
 * loopback connection: a thread connects to the port snap_migrate_incoming
 * listens on and sends the input. Byte 0 picks the mode: with bit 0 set a
 * valid header for this VM (magic, version, RAM size, its machine options)
 * comes first, so that the records after it are reached. The VM is a
 * stand-in without KVM (vm_fd -1, no vCPUs, no PCI bus) but with an event
 * loop, which the destination runs while a thread takes the stream. Page
 * records are checked against a guard mapping on each side of RAM. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hw/platform.h"
#include "snapshot/migrate.h"
#include "snapshot/snapshot_int.h"
#include "util/evloop.h"
#include "vm.h"

#ifdef FUZZ_RENAME
#define LLVMFuzzerTestOneInput fuzz_migrate_stream_one
#endif
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RAM_SIZE (16u * 4096u)
#define MAX_INPUT (1u << 20)

static struct vm vm;
static bool have_platform;
static char *mach_argv[] = { (char *)"--memory", (char *)"64K", NULL };
static char hostport[32];
static unsigned port;
/* Set when the receiver returned: a sender still trying to connect stops. */
static atomic_bool receiver_done;

struct feed {
    const uint8_t *hdr, *data;
    size_t hdr_len, len;
};

static void setup(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    memset(&vm, 0, sizeof(vm));
    vm.kvm_fd = vm.vm_fd = -1;
    /* guard pages on both sides of RAM catch a page written outside it */
    uint8_t *m = mmap(NULL, RAM_SIZE + 2 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || mprotect(m + 4096, RAM_SIZE, PROT_READ | PROT_WRITE) < 0)
        abort();
    vm.ram = m + 4096;
    vm.ram_size = RAM_SIZE;
    vm.loop = evloop_new();
    if (!vm.loop)
        abort();
    struct err e = { 0 };
    have_platform = platform_create_all(&vm, &e) == 0;
    if (!have_platform)
        fprintf(stderr, "fuzz_migrate_stream: no platform devices (%s)\n", e.msg);
    /* below the kernel's ephemeral range, so no connection holds it */
    port = 10000 + (unsigned)getpid() % 20000;
    snprintf(hostport, sizeof hostport, "127.0.0.1:%u", port);
}

static void send_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return;             /* the receiver gave up: fine */
        p += k;
        n -= (size_t)k;
    }
}

static void *sender(void *arg)
{
    struct feed *f = arg;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = -1;
    while (!atomic_load(&receiver_done)) {
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            abort();
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
            break;
        close(fd);
        fd = -1;
        usleep(100);
    }
    if (fd < 0)
        return NULL;            /* the receiver failed before it listened */
    send_all(fd, f->hdr, f->hdr_len);
    send_all(fd, f->data, f->len);
    shutdown(fd, SHUT_WR);
    char buf[64];
    while (recv(fd, buf, sizeof buf, 0) > 0)
        ;
    close(fd);
    return NULL;
}

static size_t put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return 4;
}

/* A valid header for this VM. */
static size_t make_header(uint8_t *h)
{
    size_t n = 0;
    memcpy(h, "CVIRTMIG", 8);
    n += 8;
    n += put32(h + n, 1);
    n += put32(h + n, RAM_SIZE);
    n += put32(h + n, 0);
    n += put32(h + n, 2);
    for (int i = 0; i < 2; i++) {
        size_t l = strlen(mach_argv[i]);
        n += put32(h + n, (uint32_t)l);
        memcpy(h + n, mach_argv[i], l);
        n += l;
    }
    return n;
}

/* Without platform devices a PLATFORM section in a state record would
 * reach a NULL device, which a real VM never has: skip those inputs. */
static bool has_platform_tag(const uint8_t *p, size_t n)
{
    static const uint8_t tag[4] = { 'P', 'L', 'A', 'T' };
    return !have_platform && memmem(p, n, tag, 4) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > MAX_INPUT)
        return 0;
    setup();
    if (has_platform_tag(data, size))
        return 0;
    uint8_t hdr[64];
    struct feed f = { .hdr = hdr, .data = data + 1, .len = size - 1 };
    f.hdr_len = (data[0] & 1) ? make_header(hdr) : 0;

    struct snapshot s;
    memset(&s, 0, sizeof(s));
    s.vm = &vm;
    s.mach_argv = mach_argv;
    s.mach_argc = 2;
    s.incoming = hostport;
    s.mig_fd = -1;
    pthread_t t;
    atomic_store(&receiver_done, false);
    if (pthread_create(&t, NULL, sender, &f) != 0)
        abort();
    struct err e = { 0 };
    int r = snap_migrate_incoming(&s, &e);
    atomic_store(&receiver_done, true);
    pthread_join(t, NULL);
    if (r < 0 && !e.msg[0])
        abort();
    if (r == 0 && !s.have_state)
        abort();                /* the end record needs the state first */
    return 0;
}
