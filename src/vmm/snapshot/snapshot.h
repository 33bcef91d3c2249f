/* Save/restore and migration of a whole VM (docs/snapshot.md).
 *
 * main() hands its command line to snapshot_cmdline first: with
 * --restore FILE the machine's options come from the file and only host
 * options (--console, --control, --net-tap, --paused) from the command
 * line. Once the
 * machine is built, snapshot_attach registers the QMP commands (migrate,
 * query-migrate, migrate_cancel, migrate-set-parameters); after each
 * vm_setup, snapshot_restore_apply puts the saved state in place (once)
 * before any vCPU runs. */
#ifndef CVIRT_VMM_SNAPSHOT_SNAPSHOT_H
#define CVIRT_VMM_SNAPSHOT_SNAPSHOT_H

#include <stdbool.h>

#include "util/err.h"

struct snapshot;
struct vm;

/* Consumes --restore FILE, --incoming URI, --net-tap NAME and --paused
 * from the command line; *argv becomes the machine's options (with a
 * restore, the saved ones), each --net-tap's tap put in its --net, plus
 * the host options given (the new array lives until snapshot_free).
 * -EINVAL with e set on a bad file, a machine option given with
 * --restore, or a --net-tap without its --net. */
int snapshot_cmdline(int *argc, char ***argv, struct snapshot **out, struct err *e);
/* The VM built from the options; registers the QMP commands when the VM
 * has a control socket. */
int snapshot_attach(struct snapshot *s, struct vm *vm, struct err *e);
/* Restores the saved state into the set-up VM the first time it is called
 * (no-op without a restore, and on later calls: a guest reset after a
 * restore boots afresh). Leaves the VM paused with --paused. */
int snapshot_restore_apply(struct snapshot *s, struct err *e);
void snapshot_free(struct snapshot *s);

/* For the other QMP commands (loop thread). True while an outgoing
 * migration runs or an incoming one is awaited: the machine must not
 * change (device_add, device_del). */
bool snapshot_migration_active(const struct vm *vm);
/* QEMU's RunState beyond "running"/"paused": "inmigrate" while an
 * --incoming destination waits for or takes the stream, "postmigrate"
 * while paused after a completed migration or save; NULL otherwise. */
const char *snapshot_run_state(const struct vm *vm);
/* QMP cont: the VM leaves "postmigrate". */
void snapshot_note_cont(const struct vm *vm);

#endif
