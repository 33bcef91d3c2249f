/* Inside the snapshot module: section tags and the state pieces. */
#ifndef CVIRT_VMM_SNAPSHOT_INT_H
#define CVIRT_VMM_SNAPSHOT_INT_H

#include <stdint.h>

#include "snapshot/stream.h"
#include "util/err.h"

struct vm;
struct vcpu;

/* Top-level sections of the state (docs/snapshot.md). */
#define SNAP_SEC_CONFIG   SNAP_TAG('C', 'O', 'N', 'F')  /* the machine's options */
#define SNAP_SEC_CPU      SNAP_TAG('C', 'P', 'U', ' ')  /* instance: vCPU id */
#define SNAP_SEC_IRQCHIP  SNAP_TAG('I', 'R', 'Q', 'C')  /* instance: KVM chip id */
#define SNAP_SEC_PIT      SNAP_TAG('P', 'I', 'T', ' ')
#define SNAP_SEC_CLOCK    SNAP_TAG('C', 'L', 'C', 'K')
#define SNAP_SEC_PLATFORM SNAP_TAG('P', 'L', 'A', 'T')  /* instance: table index */
#define SNAP_SEC_PCI      SNAP_TAG('P', 'C', 'I', ' ')  /* bus 0: every function */
#define SNAP_SEC_END      SNAP_TAG('E', 'N', 'D', ' ')

/* vCPU v's registers and KVM state into one SNAP_SEC_CPU section. The
 * vCPU must not be running (paused or never started). */
int snap_cpu_save(struct snapbuf *b, struct vcpu *v, struct err *e);
/* Applies the body of a SNAP_SEC_CPU section to a created vCPU. */
int snap_cpu_load(struct snapbuf *sec, struct vcpu *v, struct err *e);
/* IRQCHIP x3, PIT and CLOCK sections. */
int snap_chips_save(struct snapbuf *b, struct vm *vm, struct err *e);
int snap_chip_load(uint32_t tag, uint32_t inst, struct snapbuf *body, struct vm *vm,
                   struct err *e);

/* The whole device and CPU state of a paused VM (not its memory), config
 * first: args are the machine's options. */
int snap_state_save(struct snapbuf *b, struct vm *vm, int argc, char **argv, struct err *e);
/* Reads the CONF section of a state: a malloc'd argv (NULL-terminated,
 * every string malloc'd) in *argv_out. */
int snap_state_config(const struct snapbuf *state, int *argc_out, char ***argv_out,
                      struct err *e);
/* Applies everything but the config to a set-up VM whose vCPUs have not
 * started; memory is the caller's business. */
int snap_state_load(const struct snapbuf *state, struct vm *vm, struct err *e);

/* The machine options a snapshot or migration records (machine.c): argv
 * (the command line's machine options) with each --disk that has an id
 * replaced by the ejectable disks present now, one --disk
 * "BLK,slot=N,id=ID" each at the end in slot order. A malloc'd,
 * NULL-terminated copy; free with snap_args_free. Loop thread. */
int snap_machine_args(struct vm *vm, int argc, char **argv, char ***out, int *outc,
                      struct err *e);
void snap_args_free(char **argv, int argc);
/* --net-tap: the tap= of the k-th --net in argv (the machine's options,
 * every string malloc'd) becomes taps[k], in place. -EINVAL naming the
 * option when there are more taps than --net or that --net has no tap=. */
int snap_machine_set_taps(int argc, char **argv, const char *const *taps, int ntaps,
                          struct err *e);
/* -EINVAL with one line naming the first difference between a source's
 * machine options and these (a --disk with a slot is compared by slot,
 * in whatever order it was given; a --net without its tap=, the host's
 * business; a --disk without inactive=, which only a destination has). */
int snap_machine_compare(int srcc, char **src, int herec, char **here, struct err *e);

#endif
