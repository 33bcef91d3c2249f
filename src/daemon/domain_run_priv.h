/* Shared by domain_run.c and domain_driver.c only. */
#ifndef CVIRT_DAEMON_DOMAIN_RUN_PRIV_H
#define CVIRT_DAEMON_DOMAIN_RUN_PRIV_H

#include <stdint.h>
#include <sys/types.h>

#include "daemon/domain_run.h"
#include "daemon/vmm_client.h"

int domain_pidfd_open(pid_t pid);
/* Watches a VMM that runs already: its pidfd (taken over) and its control
 * socket, which must answer within timeout_ms. */
int domain_watch(struct domain_driver *drv, struct domain *d, int pidfd, int timeout_ms,
                 struct err *e);
void domain_unwatch(struct domain_driver *drv, struct domain *d);
/* State changes the VMM reports or we caused; each emits its event once. */
void domain_note_paused(struct domain_driver *drv, struct domain *d, int reason);
void domain_note_resumed(struct domain_driver *drv, struct domain *d);
/* Starts d, from a save file when restore is non-NULL. */
int domain_start_from(struct domain_driver *drv, struct domain *d, const char *restore,
                      struct err *e);
/* Makes the VMM quit (SIGKILL when it does not) and records the stop
 * (reason from d->saving / d->destroying). */
int domain_stop_vmm(struct domain_driver *drv, struct domain *d, struct err *e);
/* domain_start for a domain with a managed save image. */
int domain_start_managed(struct domain_driver *drv, struct domain *d, struct err *e);
/* Writes the live definition beside the pid file (for reattach). */
int domain_save_run_state(struct domain_driver *drv, struct domain *d, struct err *e);
/* The VMM reported DEVICE_DELETED for id (domain_hotplug.c). */
void domain_hotplug_deleted(struct domain_driver *drv, struct domain *d, const char *id);
/* The restore argument of the start steps for a VMM that waits for an
 * incoming live migration (--incoming defer) instead of reading a file;
 * save files are absolute paths, so it cannot name one. */
#define DOMAIN_RESTORE_INCOMING "incoming:defer"
/* ---- the steps of a start (domain_run.c), run in a row by
 * domain_start_from() or one by one on the loop by domain_job.c ---- */
struct domain_spawn {
    pid_t child;                /* the intermediate child, until reaped */
    int pipefd;                 /* its pipe, until the spawn is over */
    uint8_t buf[8];             /* what came through it: pid, errno */
    size_t got;
    int pidfd;                  /* the new VMM; -1 once handed on */
    char log_path[4096];
    off_t log_off;              /* where this start's log lines begin */
};
/* Checks the state, takes the live definition, checks the host files and
 * marks d running (with an id); on failure d is as before, or stopped. */
int domain_start_prepare(struct domain_driver *drv, struct domain *d, const char *restore,
                         struct err *e);
int domain_spawn_vmm(struct domain_driver *drv, struct domain *d, const char *restore,
                     struct domain_spawn *sp, struct err *e);
/* The same in steps: begin forks (sp->pipefd then tells when the VMM has
 * exec'd or failed to: poll returns 1 once it has, 0 while not yet), end
 * reaps the intermediate child and opens the VMM's pidfd, wait blocks
 * until poll would say 1. */
int domain_spawn_begin(struct domain_driver *drv, struct domain *d, const char *restore,
                       struct domain_spawn *sp, struct err *e);
int domain_spawn_poll(struct domain_spawn *sp);
void domain_spawn_wait(struct domain_spawn *sp);
int domain_spawn_end(struct domain_driver *drv, struct domain *d, struct domain_spawn *sp,
                     struct err *e);
/* Connects to the VMM being started without blocking (vmm_client_connect_async
 * with d as opaque: ready gets d). */
int domain_connect_new_vmm_async(struct domain_driver *drv, struct domain *d,
                                 vmm_client_ready_fn ready, struct vmm_client **out,
                                 struct err *e);
/* The last non-empty line a VMM wrote to its log since offset (for error
 * messages; domain_spawn.c). */
void domain_log_tail(const char *path, off_t offset, char *buf, size_t len);
/* The message for a failed connection to a starting VMM (rc, ce: the
 * client's error). */
int domain_start_conn_error(struct domain_driver *drv, struct domain *d,
                            const struct domain_spawn *sp, int rc, const struct err *ce,
                            struct err *e);
/* d->vmm is set: watches the pidfd, writes the run files; kills on failure. */
int domain_start_finish(struct domain_driver *drv, struct domain *d, struct domain_spawn *sp,
                        struct err *e);
/* Kills and reaps the VMM and removes its run files and socket. */
void domain_start_abort(struct domain_driver *drv, struct domain *d, struct domain_spawn *sp);
/* Shuts d off as failed (taps released); true when d was transient and is
 * gone. */
bool domain_start_failed(struct domain_driver *drv, struct domain *d);
/* Logs and emits the Started event. */
void domain_start_started(struct domain_driver *drv, struct domain *d, bool restored);

/* ---- jobs (domain_job.c) ---- */
struct domain_job;
/* Starts a persistent domain for the daemon itself (autostart, a restart
 * after power-off; what names it in the log): from the loop when there is
 * one, failures only logged. */
void domain_start_logged(struct domain_driver *drv, struct domain *d, const char *what);
/* The VMM of the job's domain exited (d NULL: a transient domain, gone). */
void domain_job_vmm_gone(struct domain_job *j, struct domain *d);
/* Reads the managed save image's definition into d->live and puts its path
 * in path (domain_save.c). */
int domain_managed_prepare(struct domain_driver *drv, struct domain *d, char *path,
                           size_t len, struct err *e);
/* Appends the domain XML trailer to a save file (domain_save.c). */
int domain_save_append_xml(const char *path, const char *xml, struct err *e);
/* The domain of a save file, added as transient when unknown (domain_save.c). */
int domain_restore_lookup(struct domain_driver *drv, const char *path, struct domain **out,
                          struct err *e);

/* malloc'd path of cvirt-vmm, see domain_driver_init. */
char *domain_find_vmm(void);

#endif
