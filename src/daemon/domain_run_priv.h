/* Shared by domain_run.c and domain_driver.c only. */
#ifndef CVIRT_DAEMON_DOMAIN_RUN_PRIV_H
#define CVIRT_DAEMON_DOMAIN_RUN_PRIV_H

#include <sys/types.h>

#include "daemon/domain_run.h"

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
/* malloc'd path of cvirt-vmm, see domain_driver_init. */
char *domain_find_vmm(void);

#endif
