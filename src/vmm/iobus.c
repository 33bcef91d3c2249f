#include "iobus.h"

#include <errno.h>
#include <string.h>

void iobus_init(struct iobus *bus)
{
    memset(bus, 0, sizeof(*bus));
    pthread_rwlock_init(&bus->lock, NULL);
}

void iobus_destroy(struct iobus *bus)
{
    pthread_rwlock_destroy(&bus->lock);
}

int iobus_register(struct iobus *bus, uint64_t base, uint64_t len,
                   const struct io_ops *ops, void *opaque, const char *name)
{
    if (len == 0 || base + len < base)
        return -EINVAL;
    pthread_rwlock_wrlock(&bus->lock);
    int r = 0;
    if (bus->n == IOBUS_MAX_RANGES) {
        r = -ENOSPC;
        goto out;
    }
    unsigned pos = 0;
    while (pos < bus->n && bus->ranges[pos].base < base)
        pos++;
    if (pos > 0) {
        const struct io_range *p = &bus->ranges[pos - 1];
        if (p->base + p->len > base) {
            r = -EBUSY;
            goto out;
        }
    }
    if (pos < bus->n && base + len > bus->ranges[pos].base) {
        r = -EBUSY;
        goto out;
    }
    memmove(&bus->ranges[pos + 1], &bus->ranges[pos],
            (bus->n - pos) * sizeof(bus->ranges[0]));
    bus->ranges[pos] = (struct io_range){ base, len, ops, opaque, name };
    bus->n++;
out:
    pthread_rwlock_unlock(&bus->lock);
    return r;
}

int iobus_unregister(struct iobus *bus, uint64_t base)
{
    pthread_rwlock_wrlock(&bus->lock);
    int r = -ENOENT;
    for (unsigned i = 0; i < bus->n; i++) {
        if (bus->ranges[i].base == base) {
            memmove(&bus->ranges[i], &bus->ranges[i + 1],
                    (bus->n - i - 1) * sizeof(bus->ranges[0]));
            bus->n--;
            r = 0;
            break;
        }
    }
    pthread_rwlock_unlock(&bus->lock);
    return r;
}

/* Binary search; caller holds the lock. */
static const struct io_range *iobus_find(const struct iobus *bus, uint64_t addr, unsigned len)
{
    unsigned lo = 0, hi = bus->n;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        const struct io_range *r = &bus->ranges[mid];
        if (addr < r->base)
            hi = mid;
        else if (addr - r->base >= r->len)
            lo = mid + 1;
        else
            return (addr - r->base) + len <= r->len ? r : NULL;
    }
    return NULL;
}

bool iobus_read(struct iobus *bus, uint64_t addr, uint8_t *data, unsigned len)
{
    pthread_rwlock_rdlock(&bus->lock);
    const struct io_range *r = iobus_find(bus, addr, len);
    if (r && r->ops->read)
        r->ops->read(r->opaque, addr - r->base, data, len);
    else
        memset(data, 0xff, len);
    pthread_rwlock_unlock(&bus->lock);
    return r != NULL;
}

bool iobus_write(struct iobus *bus, uint64_t addr, const uint8_t *data, unsigned len)
{
    pthread_rwlock_rdlock(&bus->lock);
    const struct io_range *r = iobus_find(bus, addr, len);
    if (r && r->ops->write)
        r->ops->write(r->opaque, addr - r->base, data, len);
    pthread_rwlock_unlock(&bus->lock);
    return r != NULL;
}
