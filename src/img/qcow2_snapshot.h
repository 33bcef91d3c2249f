/* qcow2 internal snapshots: the snapshot table and its operations. */
#ifndef CVIRT_IMG_QCOW2_SNAPSHOT_H
#define CVIRT_IMG_QCOW2_SNAPSHOT_H

#include <stdint.h>

#include "img/blk.h"

struct qcow2_snap {
    uint64_t l1_offset;
    uint32_t l1_size;
    char *id, *name;
    uint32_t date_sec, date_nsec;
    uint64_t vm_clock_nsec;
    uint64_t vm_state_size;
    uint64_t disk_size;
    uint64_t icount;
    uint32_t extra_size;
};

/* Returns the number of snapshots (array in *out) and the table's byte size. */
int qcow2_read_snapshots(struct blk *b, struct qcow2_snap **out, uint64_t *table_len,
                         struct err *e);
int qcow2_read_snap_l1(struct blk *b, const struct qcow2_snap *sn, uint64_t **l1,
                       struct err *e);
void qcow2_free_snapshots(struct qcow2_snap *sn, int n);
int qcow2_snapshot_create(struct blk *b, const char *name, struct err *e);
int qcow2_snapshot_apply(struct blk *b, const char *name, struct err *e);
int qcow2_snapshot_delete(struct blk *b, const char *name, struct err *e);
int qcow2_snapshot_list(struct blk *b, struct blk_snapshot_info **out, int *n,
                        struct err *e);

#endif
