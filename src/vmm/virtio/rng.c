/* virtio-rng (virtio 1.x, 5.4): one request queue whose device-writable
 * buffers are filled from the host's getrandom(). */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "util/log.h"
#include "virtio/virtio.h"

/* Bytes given per request at most: a driver asking for more gets a
 * short answer and asks again, so one greedy request cannot hold the
 * event loop. */
#define RNG_MAX_PER_REQUEST 4096

struct rng {
    struct virtq_elem elem;
};

static int rng_create(struct virtio_dev *vd, const char *arg, struct err *e)
{
    if (arg && *arg)
        return err_set(e, EINVAL, "--rng takes no options (got '%s')", arg);
    struct rng *r = calloc(1, sizeof(*r));
    if (!r)
        return err_set(e, ENOMEM, "out of memory");
    vd->priv = r;
    vd->device_features = 0;
    return 0;
}

static void rng_destroy(struct virtio_dev *vd)
{
    free(vd->priv);
    vd->priv = NULL;
}

static void rng_config_read(struct virtio_dev *vd, unsigned off, uint8_t *data, unsigned len)
{
    /* No device configuration. */
}

/* Fills the in side of elem; returns the bytes written. */
static uint32_t rng_fill(const struct virtq_elem *elem)
{
    uint32_t done = 0;
    for (unsigned i = elem->nout; i < elem->nout + elem->nin && done < RNG_MAX_PER_REQUEST; i++) {
        size_t want = elem->iov[i].iov_len;
        if (want > RNG_MAX_PER_REQUEST - done)
            want = RNG_MAX_PER_REQUEST - done;
        size_t got = 0;
        while (got < want) {
            ssize_t n = getrandom((uint8_t *)elem->iov[i].iov_base + got, want - got, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                log_warn("virtio-rng: getrandom failed");
                return done + (uint32_t)got;
            }
            got += (size_t)n;
        }
        done += (uint32_t)got;
    }
    return done;
}

static void rng_queue_notify(struct virtio_dev *vd, unsigned q)
{
    struct rng *r = vd->priv;
    bool pushed = false;
    int n;
    while ((n = virtio_pop(vd, 0, &r->elem)) > 0) {
        virtio_push(vd, 0, r->elem.head, rng_fill(&r->elem));
        pushed = true;
    }
    if (pushed)
        virtio_queue_interrupt(vd, 0);
}

const struct virtio_dev_ops virtio_rng_ops = {
    .name = "rng",
    .device_id = VIRTIO_ID_RNG,
    .nqueues = 1,
    .queue_size = 256,
    .config_size = 0,
    .create = rng_create,
    .destroy = rng_destroy,
    .config_read = rng_config_read,
    .queue_notify = rng_queue_notify,
};
