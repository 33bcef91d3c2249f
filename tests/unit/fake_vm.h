/* A fake guest for virtio device tests: anonymous memory in struct vm's
 * slots, a transport that drops interrupts, and the driver's bring-up
 * sequence. */
#ifndef CVIRT_TESTS_FAKE_VM_H
#define CVIRT_TESTS_FAKE_VM_H

#include <stdint.h>

#include "virtio/virtio.h"
#include "vm.h"

/* Where one queue's rings sit in guest memory. */
struct fake_ring {
    uint64_t desc, avail, used;
};

extern const struct virtio_transport_ops fake_vm_quiet_transport;

/* Maps size bytes of guest RAM: one slot at 0, or, with high_gpa nonzero,
 * two equal slots with the second at high_gpa (a hole between them).
 * Returns the host address of the first byte. */
uint8_t *fake_vm_map(struct vm *vm, uint64_t size, uint64_t high_gpa);
void fake_vm_unmap(struct vm *vm);

/* Does what a driver does to an initialised device: ACKNOWLEDGE|DRIVER,
 * accepts host_features & mask, FEATURES_OK, enables queues 0..nq-1 of
 * qsize at rings[q], DRIVER_OK; asserts the device runs. */
void fake_vm_virtio_up(struct virtio_dev *vd, const struct virtio_transport_ops *transport,
                       uint64_t mask, unsigned nq, const struct fake_ring *rings,
                       unsigned qsize);

/* A guest's notification of queue q. */
void fake_vm_kick(struct virtio_dev *vd, unsigned q);

#endif
