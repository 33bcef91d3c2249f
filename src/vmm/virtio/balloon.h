/* virtio-balloon's host side: what the control socket (and tests) ask of
 * the device. Each call takes the device lock itself. */
#ifndef CVIRT_VMM_VIRTIO_BALLOON_H
#define CVIRT_VMM_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "util/err.h"

struct virtio_dev;

/* Balloon pages are 4 KiB whatever the host's or the guest's page size. */
#define BALLOON_PAGE_SHIFT 12
#define BALLOON_PAGE_SIZE  (1u << BALLOON_PAGE_SHIFT)

/* Memory statistics tags (virtio 1.x, 5.5.6.3), in the order of the spec. */
enum balloon_stat {
    BALLOON_S_SWAP_IN,
    BALLOON_S_SWAP_OUT,
    BALLOON_S_MAJFLT,
    BALLOON_S_MINFLT,
    BALLOON_S_MEMFREE,
    BALLOON_S_MEMTOT,
    BALLOON_S_AVAIL,
    BALLOON_S_CACHES,
    BALLOON_S_HTLB_PGALLOC,
    BALLOON_S_HTLB_PGFAIL,
    BALLOON_S_NR,
};

struct balloon_stats {
    uint64_t val[BALLOON_S_NR];
    bool valid[BALLOON_S_NR];   /* the guest reported this tag */
    time_t last_update;         /* wall clock of the last report, 0: none yet */
};

/* Asks the guest to shrink to guest_bytes of memory (QEMU's `balloon`
 * semantics: the size the guest should keep, not the size to take). More
 * than the guest's RAM means "give everything back". 0 is refused. */
int balloon_set_target(struct virtio_dev *vd, uint64_t guest_bytes, struct err *e);
/* The guest's memory as its driver reports it: RAM minus the pages in the
 * balloon, in bytes. */
uint64_t balloon_actual_bytes(struct virtio_dev *vd);
/* The target set last, in bytes of guest memory. */
uint64_t balloon_target_bytes(struct virtio_dev *vd);
/* The last statistics the guest sent; also asks it for fresh ones when it
 * left a buffer with the device, so the next call sees newer numbers. */
void balloon_get_stats(struct virtio_dev *vd, struct balloon_stats *out);
/* QMP-style name of a statistic ("stat-free-memory"). */
const char *balloon_stat_name(enum balloon_stat s);

struct control;
/* For a machine without a balloon: `balloon` and `query-balloon` answer
 * DeviceNotActive, as QEMU's do, which clients read as "no balloon"
 * rather than as an unknown command. */
int balloon_control_absent(struct control *c, struct err *e);

#endif
