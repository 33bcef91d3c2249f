/* MSI-X table and pending-bit array of one PCI function.
 *
 * Each vector owns a GSI and an eventfd bound to it with KVM_IRQFD; the
 * GSI's MSI route follows the table entry while the vector can fire. A
 * device raises a vector with msix_notify (any thread): delivered through
 * the eventfd when enabled and unmasked, otherwise remembered in the PBA
 * and delivered on unmask. */
#ifndef CVIRT_VMM_PCI_MSIX_H
#define CVIRT_VMM_PCI_MSIX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

struct vm;

#define MSIX_MAX_VECTORS   64
#define MSIX_ENTRY_SIZE    16
#define MSIX_NO_VECTOR     0xffff

/* Message control bits (capability offset 2) */
#define MSIX_CTRL_ENABLE   0x8000
#define MSIX_CTRL_MASKALL  0x4000
#define MSIX_VECTOR_MASKED 0x1

struct msix_vec {
    int gsi;                 /* -1 when not allocated */
    int efd;
    bool routed;             /* the GSI's route holds this entry's message */
};

struct msix {
    struct vm *vm;
    unsigned nvec;
    pthread_mutex_t lock;
    bool enabled, masked_all;
    uint8_t table[MSIX_MAX_VECTORS * MSIX_ENTRY_SIZE];
    uint64_t pba;
    struct msix_vec vec[MSIX_MAX_VECTORS];
};

int msix_create(struct msix **out, struct vm *vm, unsigned nvec, struct err *e);
void msix_destroy(struct msix *m);
/* Table bytes [0, nvec*16) and PBA bytes [0, 8); other offsets read 0. */
void msix_table_read(struct msix *m, uint64_t off, uint8_t *data, unsigned len);
void msix_table_write(struct msix *m, uint64_t off, const uint8_t *data, unsigned len);
void msix_pba_read(struct msix *m, uint64_t off, uint8_t *data, unsigned len);
/* The capability's message control word as the guest wrote it. */
void msix_set_control(struct msix *m, uint16_t ctrl);
bool msix_enabled(struct msix *m);
/* Raises vector n; returns 0 when delivered or made pending, -EINVAL for a
 * vector outside the table, -ENODEV when MSI-X is off (use INTx then). */
int msix_notify(struct msix *m, unsigned n);
/* Binds every vector's eventfd to its GSI on the current KVM VM. */
int msix_attach(struct msix *m, struct err *e);
/* Power-on state: disabled, every entry masked, nothing pending. */
void msix_reset(struct msix *m);
/* Restore: the table (nvec entries) and pending bits as saved; the
 * caller then applies the control word (msix_set_control), which routes
 * the vectors. */
void msix_restore(struct msix *m, const uint8_t *table, uint64_t pba);

#endif
