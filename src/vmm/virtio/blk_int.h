/* Inside virtio-blk: what blk.c (requests, worker threads, the device)
 * and blk_ring.c (the io_uring path for raw images) share. Not for other
 * devices. */
#ifndef CVIRT_VMM_VIRTIO_BLK_INT_H
#define CVIRT_VMM_VIRTIO_BLK_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "virtio/virtio.h"

struct blk;
struct io_uring_sqe;
struct io_uring_cqe;

/* Feature bits (5.2.3) */
#define BLK_F_SEG_MAX      2
#define BLK_F_RO           5
#define BLK_F_BLK_SIZE     6
#define BLK_F_FLUSH        9
#define BLK_F_DISCARD      13
#define BLK_F_WRITE_ZEROES 14

/* Request types and status values (5.2.6) */
#define BLK_T_IN           0
#define BLK_T_OUT          1
#define BLK_T_FLUSH        4
#define BLK_T_GET_ID       8
#define BLK_T_DISCARD      11
#define BLK_T_WRITE_ZEROES 13
#define BLK_S_OK     0
#define BLK_S_IOERR  1
#define BLK_S_UNSUPP 2

#define BLK_SECTOR      512u
#define BLK_HDR_SIZE    16u
#define BLK_ID_BYTES    20u
#define BLK_QUEUE_SIZE  256
#define BLK_SEG_MAX     (BLK_QUEUE_SIZE - 2)
/* Enough threads for the queue depth a driver typically keeps (Linux's
 * blk-mq and the bench use 32): each holds one request in the kernel. */
#define BLK_WORKERS     32
#define BLK_RING_WORKERS 4
#define BLK_WAKE_MAX    8       /* workers woken per notification */
#define BLK_CHUNK       (1u << 20)  /* bytes per image call, at most */
/* Discard and write-zeroes: one range per request, at most 2 GiB - 512. */
#define BLK_MAX_RANGE_SECTORS 0x3fffffu
#define BLK_MAX_RANGE_SEGS    1u
#define BLK_RANGE_F_UNMAP     1u
#define BLK_CONFIG_SIZE 60

/* Config space offsets (5.2.4) */
#define CFG_CAPACITY     0
#define CFG_SEG_MAX      12
#define CFG_BLK_SIZE     20
#define CFG_MAX_DISCARD_SECTORS 36
#define CFG_MAX_DISCARD_SEG     40
#define CFG_DISCARD_ALIGN       44
#define CFG_MAX_WZ_SECTORS      48
#define CFG_MAX_WZ_SEG          52

struct blk_req {
    struct blk_req *next;
    unsigned gen;
    bool write;                 /* on the ring: a write of expect bytes */
    uint32_t expect;
    struct virtq_elem elem;
    struct iovec data[VIRTQ_MAX_SEGS];
};

/* A minimal io_uring on the raw system calls (liburing is not among the
 * monitor's dependencies): the submission ring, the completion ring and
 * an eventfd the kernel signals on completions, watched by the event loop.
 * Only the event loop thread touches it, under the device lock. */
struct blk_ring {
    int fd, efd;
    unsigned entries;
    unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
    unsigned *cq_head, *cq_tail, *cq_mask;
    struct io_uring_sqe *sqes;
    struct io_uring_cqe *cqes;
    void *sq_map, *cq_map;
    size_t sq_len, cq_len, sqes_len;
    unsigned queued;            /* prepared, not yet submitted */
    unsigned inflight;          /* submitted, not yet reaped */
};

struct blkdev {
    struct virtio_dev *vd;
    struct blk *img;
    bool readonly;
    bool inactive;              /* opened read-only until the migration's state loads */
    char serial[BLK_ID_BYTES];
    uint8_t config[BLK_CONFIG_SIZE];
    unsigned gen;               /* written under vd->lock, read by workers */

    pthread_mutex_t mu;         /* the request list, free list and stop */
    pthread_cond_t cond;
    struct blk_req *head, *tail, *free_list;
    bool stop;
    unsigned busy;              /* requests handed to the workers, not done */
    char *path, *format;        /* to open the image again after a migration */
    unsigned open_flags;
    pthread_cond_t idle;        /* busy fell to 0 */
    pthread_t workers[BLK_WORKERS];
    unsigned nworkers;
    bool use_ring;
    struct blk_ring ring;
};

/* ---- blk.c ---- */
/* Points dst at bytes [off, off + len) of the n segments in src; returns
 * the segment count. */
unsigned blk_iov_slice(const struct iovec *src, unsigned n, uint64_t off, uint64_t len,
                       struct iovec *dst);
/* Whether [sector, sector + bytes/512) lies within the disk. */
bool blk_in_range(const struct blkdev *d, uint64_t sector, uint64_t bytes);
/* Puts a finished request back on the free list. */
void blk_release(struct blkdev *d, struct blk_req *r);

/* ---- blk_ring.c: the io_uring, used by the event loop under vd->lock ---- */
/* Sets up the ring for a raw image when the monitor has an event loop
 * (d->use_ring); otherwise, or without io_uring, the workers do all. */
void blk_ring_open(struct blkdev *d);
/* Puts a read or write on the ring; false leaves it to the workers. */
bool blk_ring_start(struct blkdev *d, struct blk_req *r);
/* Hands what blk_ring_start prepared to the kernel. */
void blk_ring_submit(struct blkdev *d);
/* Waits until nothing is on the ring, returning the chains; true when
 * some were pushed (the caller interrupts the driver). */
bool blk_ring_wait(struct blkdev *d);
/* Teardown: stops watching, waits for the ring without returning
 * chains, frees it. */
void blk_ring_close(struct blkdev *d);

#endif
