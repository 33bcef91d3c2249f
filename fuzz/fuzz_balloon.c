/* A hostile balloon driver: PFN arrays on the inflate and deflate queues
 * and stats buffers, as random guest memory, on top of random rings. The
 * device must ignore PFNs outside RAM, drop only pages inside it, keep one
 * stats buffer at most, and never crash or touch memory past guest RAM.
 *
 * Input: byte 0 is the kick order (two bits per kick: inflate, deflate,
 * stats, or a config write of actual), byte 1 the features the driver
 * accepts (bit 1 stats queue, bit 2 deflate-on-oom); the rest is guest
 * memory, low slot first: queue q's descriptor table at 0x1000 * q (16
 * entries), its available ring at +0x100 and used ring at +0x200; the
 * buffers anywhere. RAM has a hole between its two slots, and a guard page
 * on each side of each slot. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "util/le.h"
#include "virtio/balloon.h"
#include "virtio/virtio.h"
#include "vm.h"

#ifdef FUZZ_RENAME
#define LLVMFuzzerTestOneInput fuzz_balloon_one
#endif
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SLOT_SIZE 0x10000u
#define HIGH_GPA  (1ULL << 32)
#define QSIZE     16
#define PAGE      4096u

static uint8_t *low, *high;

static void irq_queue(void *opaque, unsigned q) { (void)opaque; (void)q; }
static void irq_config(void *opaque) { (void)opaque; }
static const struct virtio_transport_ops transport = {
    .interrupt_queue = irq_queue, .interrupt_config = irq_config,
};

/* A slot between two PROT_NONE pages. */
static uint8_t *guarded_slot(void)
{
    uint8_t *m = mmap(NULL, SLOT_SIZE + 2 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || mprotect(m + PAGE, SLOT_SIZE, PROT_READ | PROT_WRITE) < 0)
        abort();
    return m + PAGE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    if (!low) {
        low = guarded_slot();
        high = guarded_slot();
    }
    uint8_t order = data[0], feat = data[1];
    data += 2;
    size -= 2;
    memset(low, 0, SLOT_SIZE);
    memset(high, 0, SLOT_SIZE);
    size_t n = size < SLOT_SIZE ? size : SLOT_SIZE;
    memcpy(low, data, n);
    if (size > SLOT_SIZE)
        memcpy(high, data + SLOT_SIZE, size - SLOT_SIZE < SLOT_SIZE ? size - SLOT_SIZE : SLOT_SIZE);

    struct vm vm;
    memset(&vm, 0, sizeof(vm));
    vm.slots[0] = (struct mem_slot){ 0, SLOT_SIZE, low };
    vm.slots[1] = (struct mem_slot){ HIGH_GPA, SLOT_SIZE, high };
    vm.nslots = 2;
    vm.ram = low;
    vm.ram_size = 2 * SLOT_SIZE;

    struct virtio_dev vd;
    struct err e = { 0 };
    if (virtio_dev_init(&vd, &virtio_balloon_ops, &vm, NULL,
                        (feat & 4) ? "deflate-on-oom=on" : NULL, &e) < 0)
        abort();
    vd.transport = &transport;
    virtio_set_status(&vd, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    vd.guest_features = vd.host_features & ~(uint64_t)(~feat & 6);
    virtio_set_status(&vd, 3 | VIRTIO_STATUS_FEATURES_OK);
    for (unsigned q = 0; q < 3; q++)
        if (virtio_queue_enable(&vd, q, QSIZE, 0x1000ULL * q, 0x1000ULL * q + 0x100,
                                0x1000ULL * q + 0x200) < 0)
            abort();    /* the rings are always inside the low slot */
    virtio_set_status(&vd, 3 | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);

    for (unsigned k = 0; k < 4; k++) {
        unsigned op = (order >> (2 * k)) & 3;
        if (op < 3) {
            virtio_lock(&vd);
            virtio_queue_kicked(&vd, op);
            virtio_unlock(&vd);
        } else {
            uint8_t cfg[4];
            memcpy(cfg, low + 0x3000, 4);      /* "actual", from the input */
            virtio_balloon_ops.config_write(&vd, 4, cfg, 4);
        }
    }
    struct balloon_stats st;
    balloon_get_stats(&vd, &st);
    uint64_t actual = balloon_actual_bytes(&vd);
    if (actual > vm.ram_size)
        abort();
    if (balloon_set_target(&vd, vm.ram_size / 2, &e) < 0 && !e.msg[0])
        abort();
    uint8_t cfg[8];
    virtio_balloon_ops.config_read(&vd, 0, cfg, 4);
    virtio_balloon_ops.config_read(&vd, 4, cfg + 4, 4);
    virtio_dev_fini(&vd);
    return 0;
}
