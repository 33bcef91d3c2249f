#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <cmocka.h>

#include "fake_vm.h"

static void quiet_queue(void *opaque, unsigned q) { (void)opaque; (void)q; }
static void quiet_config(void *opaque) { (void)opaque; }
const struct virtio_transport_ops fake_vm_quiet_transport = {
    .interrupt_queue = quiet_queue, .interrupt_config = quiet_config,
};

uint8_t *fake_vm_map(struct vm *vm, uint64_t size, uint64_t high_gpa)
{
    uint8_t *mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    assert_true(mem != MAP_FAILED);
    if (high_gpa) {
        vm->slots[0] = (struct mem_slot){ 0, size / 2, mem };
        vm->slots[1] = (struct mem_slot){ high_gpa, size / 2, mem + size / 2 };
        vm->nslots = 2;
    } else {
        vm->slots[0] = (struct mem_slot){ 0, size, mem };
        vm->nslots = 1;
    }
    vm->ram = mem;
    vm->ram_size = size;
    return mem;
}

void fake_vm_unmap(struct vm *vm)
{
    munmap(vm->ram, vm->ram_size);
}

void fake_vm_virtio_up(struct virtio_dev *vd, const struct virtio_transport_ops *transport,
                       uint64_t mask, unsigned nq, const struct fake_ring *rings,
                       unsigned qsize)
{
    vd->transport = transport;
    virtio_set_status(vd, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    vd->guest_features = vd->host_features & mask;
    virtio_set_status(vd, 3 | VIRTIO_STATUS_FEATURES_OK);
    for (unsigned q = 0; q < nq; q++)
        assert_int_equal(virtio_queue_enable(vd, q, qsize, rings[q].desc, rings[q].avail,
                                             rings[q].used), 0);
    virtio_set_status(vd, 3 | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
    assert_true(virtio_running(vd));
}

void fake_vm_kick(struct virtio_dev *vd, unsigned q)
{
    virtio_lock(vd);
    virtio_queue_kicked(vd, q);
    virtio_unlock(vd);
}
