/* Port I/O and MMIO dispatch for exits the in-kernel devices don't handle.
 * A device registers a range and one ops struct; the vCPU thread calls it
 * with the offset into that range. */
#ifndef CVIRT_VMM_IOBUS_H
#define CVIRT_VMM_IOBUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct io_ops {
    /* len is 1, 2, 4 or 8; data is little-endian, len bytes. A read must
     * fill data; unhandled bytes read as 0xff. */
    void (*read)(void *opaque, uint64_t offset, uint8_t *data, unsigned len);
    void (*write)(void *opaque, uint64_t offset, const uint8_t *data, unsigned len);
};

struct io_range {
    uint64_t base, len;
    const struct io_ops *ops;
    void *opaque;
    const char *name;
};

#define IOBUS_MAX_RANGES 64

struct iobus {
    pthread_rwlock_t lock;
    struct io_range ranges[IOBUS_MAX_RANGES]; /* sorted by base */
    unsigned n;
};

void iobus_init(struct iobus *bus);
void iobus_destroy(struct iobus *bus);
/* Returns -EBUSY when the range overlaps one already there, -ENOSPC when full. */
int iobus_register(struct iobus *bus, uint64_t base, uint64_t len,
                   const struct io_ops *ops, void *opaque, const char *name);
int iobus_unregister(struct iobus *bus, uint64_t base);
/* Returns false when nothing is mapped there (reads then give all-ones). */
bool iobus_read(struct iobus *bus, uint64_t addr, uint8_t *data, unsigned len);
bool iobus_write(struct iobus *bus, uint64_t addr, const uint8_t *data, unsigned len);

/* Little-endian helpers for device code. */
static inline uint64_t io_data_get(const uint8_t *d, unsigned len)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < len && i < 8; i++)
        v |= (uint64_t)d[i] << (8 * i);
    return v;
}
static inline void io_data_put(uint8_t *d, unsigned len, uint64_t v)
{
    for (unsigned i = 0; i < len && i < 8; i++)
        d[i] = (uint8_t)(v >> (8 * i));
}

#endif
