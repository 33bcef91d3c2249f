/* Running domains: one detached cvirt-vmm per domain, watched through a
 * pidfd and its control socket, found again after the daemon restarts.
 *
 * A VMM runs in its own session with stdin on /dev/null and its output in
 * LOG/qemu/NAME.log, and is not the daemon's child once started, so
 * killing the daemon (even with SIGKILL) never kills a VM and the daemon
 * watches VMMs it started and VMMs it reattached to the same way. */
#ifndef CVIRT_DAEMON_DOMAIN_RUN_H
#define CVIRT_DAEMON_DOMAIN_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/domain.h"
#include "daemon/store.h"
#include "util/err.h"

struct evloop;

/* Lifecycle events leave through this (the RPC layer sends them to the
 * clients that registered); id is -1 once the domain has stopped. */
typedef void (*domain_event_fn)(void *opaque, const char *name, const uint8_t uuid[16],
                                int id, int event, int detail);

struct domain_driver {
    struct domain_table table;
    struct store store;
    struct evloop *loop;
    char *vmm_path;             /* resolved cvirt-vmm */
    domain_event_fn emit;       /* may be NULL */
    void *emit_opaque;
    int start_timeout_ms;       /* wait for the control socket */
};

/* Sets up the store under the three roots and loads the persistent
 * definitions (files that fail to parse are logged and skipped). vmm_path
 * NULL: CVIRT_VMM, else cvirt-vmm beside the daemon (../vmm/cvirt-vmm in
 * the build tree, or the same folder), else the PATH. */
int domain_driver_init(struct domain_driver *drv, struct evloop *loop, const char *config,
                       const char *run, const char *log, const char *state,
                       const char *vmm_path, struct err *e);
/* Finds the VMMs that still run (pid file, live process, control socket
 * that answers) and manages them again; cleans up the rest. */
void domain_driver_reattach(struct domain_driver *drv);
/* Starts the inactive domains marked autostart. */
void domain_driver_autostart(struct domain_driver *drv);
/* Lets go of everything; running VMMs are left running. */
void domain_driver_fini(struct domain_driver *drv);

/* Lifecycle. Each checks the state first (libvirt's "Requested operation
 * is not valid" cases come back as -EBUSY) and reports VMM failures with
 * the VMM's own message. */
int domain_start(struct domain_driver *drv, struct domain *d, struct err *e);
/* Asks the VMM to quit, kills it when it has not gone within a few
 * seconds, and returns with the domain shut off (destroyed). */
int domain_destroy(struct domain_driver *drv, struct domain *d, struct err *e);
int domain_shutdown(struct domain_driver *drv, struct domain *d, struct err *e);
int domain_reboot(struct domain_driver *drv, struct domain *d, struct err *e);
int domain_suspend(struct domain_driver *drv, struct domain *d, struct err *e);
int domain_resume(struct domain_driver *drv, struct domain *d, struct err *e);
/* Live memory through the balloon; -ENOTSUP without one. */
int domain_set_live_memory(struct domain_driver *drv, struct domain *d, uint64_t kib,
                           struct err *e);

/* virsh save / restore: the VMM's snapshot of the running domain goes to
 * path (absolute), with the domain's XML after it, and the domain stops
 * (shut off, saved). A restore starts a VMM from such a file: the domain of
 * the XML (its persistent definition when one exists, else a transient
 * one) runs again (running, restored). *out may be NULL. */
int domain_save(struct domain_driver *drv, struct domain *d, const char *path,
                struct err *e);
int domain_restore(struct domain_driver *drv, const char *path, struct domain **out,
                   struct err *e);

/* Managed save (virsh managedsave): domain_save to the store's save
 * folder; the next domain_start restores from it and removes it. */
int domain_managed_save(struct domain_driver *drv, struct domain *d, struct err *e);
int domain_managed_save_remove(struct domain_driver *drv, struct domain *d, struct err *e);

/* Live disk hotplug (domain_hotplug.c). Attach takes ownership of disk on
 * success. Detach matches the target or the source file and returns once
 * the guest released the disk or after a few seconds with the removal
 * pending (as libvirt); -ENOTSUP for a disk the VMM was started with. */
struct domain_disk;
int domain_disk_attach_live(struct domain_driver *drv, struct domain *d,
                            struct domain_disk *disk, struct err *e);
int domain_disk_detach_live(struct domain_driver *drv, struct domain *d, const char *match,
                            struct err *e);

/* ---- the same operations without blocking the event loop ----
 *
 * Each checks and begins the operation and returns 0 when it is under
 * way: done then runs exactly once from the loop, with rc 0 or a negative
 * errno and e (a failed start leaves d shut off, its VMM reaped and its
 * run files removed). d is NULL in done when the domain is gone (a
 * transient one that stopped). A negative return means nothing began and
 * done never runs. While an operation runs, others on the same domain get
 * -ETIMEDOUT from domain_op_check() (libvirt's "cannot acquire state
 * change lock (held by monitor=API)"; api is that name). */
typedef void (*domain_done_fn)(void *opaque, struct domain *d, int rc, const struct err *e);
/* A start (from the managed save image when there is one). */
int domain_start_async(struct domain_driver *drv, struct domain *d, const char *api,
                       domain_done_fn done, void *opaque, struct err *e);
/* A boot of d's live definition that ignores a managed save image (which
 * stays), as libvirt's createXML of a defined inactive domain does. */
int domain_create_async(struct domain_driver *drv, struct domain *d, const char *api,
                        domain_done_fn done, void *opaque, struct err *e);
/* A restore from a save file (the domain is found or added as for
 * domain_restore). */
int domain_restore_async(struct domain_driver *drv, const char *path, const char *api,
                         domain_done_fn done, void *opaque, struct err *e);
/* A destroy ends a start or a save in flight on d instead of waiting for
 * it: that operation's done hears an error (DOMAIN_ERR_DESTROYED) first. A start so
 * ended completes the destroy at once (done runs before this returns; d
 * is NULL in it when the domain was transient and is gone). */
int domain_destroy_async(struct domain_driver *drv, struct domain *d, const char *api,
                         domain_done_fn done, void *opaque, struct err *e);
/* A save to path, or (managed, path ignored) to the managed save image. */
int domain_save_async(struct domain_driver *drv, struct domain *d, const char *path,
                      bool managed, const char *api, domain_done_fn done, void *opaque,
                      struct err *e);
/* A start of a VMM with the same machine that waits for an incoming live
 * migration (domain_migrate.c): as domain_start_async, but no Started
 * event (the migration's end sends it). */
int domain_incoming_async(struct domain_driver *drv, struct domain *d, const char *api,
                          domain_done_fn done, void *opaque, struct err *e);
/* Stop, work on the closed images, start again, as one operation (the
 * snapshots of a running domain): the VMM is saved to save (absolute; NULL:
 * destroyed instead), offline runs once no process holds the images, and
 * a VMM is restored from restore (or, with start, booted; neither: the
 * domain stays off). When offline fails after a save, the VM is restored
 * from save as it was and done gets offline's error; when the restore
 * fails, the saved state becomes the managed save image. paused: suspend
 * the started VM. For a domain that is not running, offline runs at once
 * (its failure is returned) and the start follows; returns 1 when no start
 * was asked: all is done and done does not run. offline gets opaque. */
typedef int (*domain_offline_fn)(void *opaque, struct domain *d, struct err *e);
struct domain_chain {
    const char *save;
    domain_offline_fn offline;
    const char *restore;
    bool start;
    bool paused;
};
int domain_chain_async(struct domain_driver *drv, struct domain *d,
                       const struct domain_chain *c, const char *api, domain_done_fn done,
                       void *opaque, struct err *e);
/* Ends every operation in flight with -ECANCELED (the daemon stops); a
 * VMM still starting is killed. */
void domain_jobs_cancel(struct domain_driver *drv);

/* Writes d's persistent definition to the store. */
int domain_save_config(struct domain_driver *drv, struct domain *d, struct err *e);
/* Emits an event for d through drv->emit. */
void domain_emit(struct domain_driver *drv, struct domain *d, int event, int detail);

/* CPU time of the VMM (user + system, all threads), in nanoseconds; 0 when
 * the domain is not running. */
uint64_t domain_cpu_time_ns(const struct domain *d);

#endif
