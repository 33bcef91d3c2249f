/* Random descriptor tables and rings fed to the split virtqueue code: a
 * hostile driver must get a broken queue, never a crash, a hang or a
 * buffer outside guest memory.
 *
 * Input: byte 0 picks the queue size (a power of two up to 1024), byte 1
 * the negotiated features (bit 0 event-idx, bit 1 indirect descriptors);
 * the rest is guest memory: the descriptor table at 0, the available ring
 * right after it, then the used ring, so that short inputs already reach
 * the rings; everything else is data or indirect tables.
 * A second small slot at 4 GiB gives chains a hole to fall into. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/virtq.h"
#include "vm.h"

#ifdef FUZZ_RENAME
#define LLVMFuzzerTestOneInput fuzz_virtq_one
#endif
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM_SIZE  0x10000
#define HIGH_SIZE 0x1000

static uint8_t mem[MEM_SIZE];
static uint8_t high[HIGH_SIZE];
static struct virtq_elem elem;

static int inside(const void *p, size_t len, const uint8_t *base, size_t size)
{
    const uint8_t *b = p;
    return b >= base && (size_t)(b - base) <= size && len <= size - (size_t)(b - base);
}

/* Every segment must lie in one of the slots and add up to the totals. */
static void check_elem(const struct virtq_elem *e)
{
    uint64_t out = 0, in = 0;
    if (e->nout + e->nin > VIRTQ_MAX_SEGS)
        abort();
    for (unsigned i = 0; i < e->nout + e->nin; i++) {
        const struct iovec *v = &e->iov[i];
        if (!inside(v->iov_base, v->iov_len, mem, MEM_SIZE) &&
            !inside(v->iov_base, v->iov_len, high, HIGH_SIZE))
            abort();
        if (i < e->nout)
            out += v->iov_len;
        else
            in += v->iov_len;
    }
    if (out != e->out_len || in != e->in_len || in > UINT32_MAX)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint16_t qsize = (uint16_t)(1u << (data[0] % 11));
    bool event_idx = data[1] & 1, indirect = data[1] & 2;
    memset(mem, 0, sizeof(mem));
    memset(high, 0, sizeof(high));
    size_t n = size - 2 < MEM_SIZE ? size - 2 : MEM_SIZE;
    memcpy(mem, data + 2, n);
    if (size - 2 > MEM_SIZE) {
        size_t h = size - 2 - MEM_SIZE;
        memcpy(high, data + 2 + MEM_SIZE, h < HIGH_SIZE ? h : HIGH_SIZE);
    }

    struct vm vm;
    memset(&vm, 0, sizeof(vm));
    vm.slots[0] = (struct mem_slot){ 0, MEM_SIZE, mem };
    vm.slots[1] = (struct mem_slot){ 1ULL << 32, HIGH_SIZE, high };
    vm.nslots = 2;
    struct virtq vq;
    uint64_t avail = 16ULL * qsize, used = (avail + 6 + 2ULL * qsize + 3) & ~3ULL;
    if (virtq_init(&vq, &vm, qsize, 0, avail, used, event_idx, indirect) < 0)
        abort();   /* these addresses are always valid */
    /* A well-behaved queue yields at most a queue's worth per avail idx
     * value; bound the loop anyway so a bug shows as a failure, not a hang. */
    for (unsigned i = 0; i < 2u * qsize + 2; i++) {
        int r = virtq_pop(&vq, &elem);
        if (r < 0) {
            if (!vq.broken || !vq.error)
                abort();
            if (virtq_pop(&vq, &elem) != 0)
                abort();
            break;
        }
        if (r == 0)
            break;
        check_elem(&elem);
        uint8_t byte = 0xa5;
        virtq_elem_write(&elem, 0, &byte, 1);
        virtq_push(&vq, elem.head, (uint32_t)elem.in_len);
        virtq_need_interrupt(&vq);
    }
    virtq_enable_notify(&vq);
    return 0;
}
