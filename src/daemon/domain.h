/* The daemon's domains: a table of defined and running domains, their
 * state as libvirt reports it (virDomainState + reason), and the rules for
 * which lifecycle operation is valid in which state.
 *
 * The table knows nothing of processes or sockets: domain_run.c starts,
 * watches and stops VMMs and calls domain_set_running() /
 * domain_set_stopped() here, so the state machine can be tested without
 * KVM. */
#ifndef CVIRT_DAEMON_DOMAIN_H
#define CVIRT_DAEMON_DOMAIN_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/err.h"

struct domain_def;
struct domain_driver;
struct vmm_client;

/* virDomainState */
enum domain_state {
    DOMAIN_NOSTATE = 0,
    DOMAIN_RUNNING = 1,
    DOMAIN_BLOCKED = 2,
    DOMAIN_PAUSED = 3,
    DOMAIN_SHUTDOWN = 4,       /* being shut down */
    DOMAIN_SHUTOFF = 5,
    DOMAIN_CRASHED = 6,
    DOMAIN_PMSUSPENDED = 7,
};

/* The reasons libvirt gives for each state (virDomain*Reason). */
enum {
    DOMAIN_RUNNING_UNKNOWN = 0,
    DOMAIN_RUNNING_BOOTED = 1,
    DOMAIN_RUNNING_MIGRATED = 2,
    DOMAIN_RUNNING_RESTORED = 3,
    DOMAIN_RUNNING_FROM_SNAPSHOT = 4,
    DOMAIN_RUNNING_UNPAUSED = 5,
};
enum {
    DOMAIN_PAUSED_UNKNOWN = 0,
    DOMAIN_PAUSED_USER = 1,
    DOMAIN_PAUSED_MIGRATION = 2,
    DOMAIN_PAUSED_SAVE = 3,
};
enum {
    DOMAIN_SHUTDOWN_UNKNOWN = 0,
    DOMAIN_SHUTDOWN_USER = 1,
};
enum {
    DOMAIN_SHUTOFF_UNKNOWN = 0,
    DOMAIN_SHUTOFF_SHUTDOWN = 1,
    DOMAIN_SHUTOFF_DESTROYED = 2,
    DOMAIN_SHUTOFF_CRASHED = 3,
    DOMAIN_SHUTOFF_MIGRATED = 4,
    DOMAIN_SHUTOFF_SAVED = 5,
    DOMAIN_SHUTOFF_FAILED = 6,
    DOMAIN_SHUTOFF_DAEMON = 8,
};

/* virDomainEventType and the details virsh prints for them. */
enum domain_event {
    DOMAIN_EVENT_DEFINED = 0,
    DOMAIN_EVENT_UNDEFINED = 1,
    DOMAIN_EVENT_STARTED = 2,
    DOMAIN_EVENT_SUSPENDED = 3,
    DOMAIN_EVENT_RESUMED = 4,
    DOMAIN_EVENT_STOPPED = 5,
    DOMAIN_EVENT_SHUTDOWN = 6,
};
enum {
    DOMAIN_EVENT_DEFINED_ADDED = 0,
    DOMAIN_EVENT_DEFINED_UPDATED = 1,
    DOMAIN_EVENT_UNDEFINED_REMOVED = 0,
    DOMAIN_EVENT_STARTED_BOOTED = 0,
    DOMAIN_EVENT_STARTED_MIGRATED = 1,
    DOMAIN_EVENT_STARTED_RESTORED = 2,
    DOMAIN_EVENT_SUSPENDED_PAUSED = 0,
    DOMAIN_EVENT_SUSPENDED_MIGRATED = 1,
    DOMAIN_EVENT_RESUMED_UNPAUSED = 0,
    DOMAIN_EVENT_RESUMED_MIGRATED = 1,
    DOMAIN_EVENT_STOPPED_SHUTDOWN = 0,
    DOMAIN_EVENT_STOPPED_DESTROYED = 1,
    DOMAIN_EVENT_STOPPED_CRASHED = 2,
    DOMAIN_EVENT_STOPPED_MIGRATED = 3,
    DOMAIN_EVENT_STOPPED_SAVED = 4,
    DOMAIN_EVENT_STOPPED_FAILED = 5,
    DOMAIN_EVENT_SHUTDOWN_FINISHED = 0,
    DOMAIN_EVENT_SHUTDOWN_GUEST = 1,
    DOMAIN_EVENT_SHUTDOWN_HOST = 2,
};

/* One domain. Persistent domains have def; a running domain has live
 * (the definition it was started with, updated by live changes). A
 * transient domain (create_xml) has live only and leaves the table when
 * it stops. */
struct domain {
    char *name;                 /* owned; equals def's / live's name */
    uint8_t uuid[16];
    int id;                     /* -1 while inactive */
    enum domain_state state;
    int reason;
    struct domain_def *def;     /* persistent definition, or NULL */
    struct domain_def *live;    /* running definition, or NULL */
    bool autostart;
    bool managed_save;          /* a managed save image waits for the next start */

    /* Run-time data, owned by domain_run.c. */
    struct domain_driver *drv;  /* for the VMM's callbacks */
    pid_t pid;                  /* 0 while inactive */
    int pidfd;                  /* -1 while inactive */
    struct vmm_client *vmm;
    bool got_shutdown;          /* the VMM reported SHUTDOWN */
    bool shutdown_by_guest;     /* ... with guest=true */
    bool destroying;            /* we asked it to go */
    bool saving;                /* ... after saving it to a file */
    bool migrated;              /* ... after it migrated to another host */
    /* The lifecycle operation in flight on the event loop (a start waiting
     * for the VMM's greeting, a save, a destroy waiting for the exit), and
     * the API that began it, for the lock error others get meanwhile. */
    struct domain_job *job;
    const char *job_api;
    /* A live migration in or out is under way (domain_migrate.c); it holds
     * the same lock, job_api naming its step. */
    bool migrating;
};

struct domain_table {
    struct domain **v;
    size_t n, cap;
    int next_id;                /* ids are never reused while we run */
};

void domain_table_init(struct domain_table *t);
/* Frees every domain (defs included); processes are not touched. */
void domain_table_clear(struct domain_table *t);

struct domain *domain_find_name(const struct domain_table *t, const char *name);
struct domain *domain_find_uuid(const struct domain_table *t, const uint8_t uuid[16]);
struct domain *domain_find_id(const struct domain_table *t, int id);

/* Checks def against the table as libvirt does when it adds a domain:
 * -EEXIST when another domain has the name or the uuid ("operation failed"
 * in libvirt's words), -EBUSY when live is set and the matching domain is
 * already active. Sets *match to the domain with the same name and uuid,
 * or NULL. */
int domain_check_new(const struct domain_table *t, const struct domain_def *def,
                     bool live, struct domain **match, struct err *e);

/* Defines: takes ownership of def on success. A new name becomes a new,
 * shut-off domain; an existing one (same name and uuid) gets def as its
 * persistent definition. *created says which. */
int domain_define(struct domain_table *t, struct domain_def *def,
                  struct domain **out, bool *created, struct err *e);

/* Adds a transient domain for def (create_xml); takes ownership of def.
 * The domain is shut off until domain_set_running(). */
int domain_add_transient(struct domain_table *t, struct domain_def *def,
                         struct domain **out, struct err *e);

/* Undefines: an inactive domain leaves the table (and is freed; *removed
 * is set), a running one only loses its persistent definition and
 * autostart. -EBUSY for a transient domain. */
int domain_undefine(struct domain_table *t, struct domain *d, bool *removed,
                    struct err *e);

/* Removes d from the table and frees it. */
void domain_remove(struct domain_table *t, struct domain *d);

/* Lifecycle operations, checked against the state before the VMM is asked. */
enum domain_op {
    DOMAIN_OP_START,
    DOMAIN_OP_DESTROY,
    DOMAIN_OP_SHUTDOWN,
    DOMAIN_OP_REBOOT,
    DOMAIN_OP_SUSPEND,
    DOMAIN_OP_RESUME,
    DOMAIN_OP_LIVE_CHANGE,     /* setmem --live, attach --live, ... */
};
/* 0 when op is valid now (suspend of a paused domain is valid: libvirt
 * treats it as done); -EBUSY with libvirt's message otherwise, and
 * -ETIMEDOUT (libvirt's "cannot acquire state change lock") while another
 * operation is in flight on d. */
int domain_op_check(const struct domain *d, enum domain_op op, struct err *e);

/* The code of the error a VMM that outlives SIGKILL gives: libvirt's
 * system error "Failed to terminate process N with SIGKILL: Device or
 * resource busy". Not EBUSY, which means a refused operation here. */
#define DOMAIN_ERR_UNKILLABLE ENOTRECOVERABLE
/* The code of the error an operation ends with when a destroy ends it. */
#define DOMAIN_ERR_DESTROYED ESHUTDOWN
/* Fills e with that error for pid; returns -DOMAIN_ERR_UNKILLABLE. */
int domain_err_unkillable(struct err *e, pid_t pid);

bool domain_is_active(const struct domain *d);
/* The definition to show: live while running (unless inactive is asked),
 * else the persistent one. */
const struct domain_def *domain_current_def(const struct domain *d, bool inactive);

/* State changes. set_running takes ownership of live and gives d an id. */
void domain_set_running(struct domain_table *t, struct domain *d,
                        struct domain_def *live, int reason);
void domain_set_state(struct domain *d, enum domain_state state, int reason);
/* The VMM is gone: shut off with reason, id -1, live def dropped. Returns
 * true when d was transient and has been removed and freed. */
bool domain_set_stopped(struct domain_table *t, struct domain *d, int reason);

/* virConnectListAllDomainsFlags; each pair filters only when one of its
 * two bits is given, the four states when any of them is. */
#define DOMAIN_LIST_ACTIVE        (1u << 0)
#define DOMAIN_LIST_INACTIVE      (1u << 1)
#define DOMAIN_LIST_PERSISTENT    (1u << 2)
#define DOMAIN_LIST_TRANSIENT     (1u << 3)
#define DOMAIN_LIST_RUNNING       (1u << 4)
#define DOMAIN_LIST_PAUSED        (1u << 5)
#define DOMAIN_LIST_SHUTOFF       (1u << 6)
#define DOMAIN_LIST_OTHER         (1u << 7)
#define DOMAIN_LIST_MANAGEDSAVE   (1u << 8)
#define DOMAIN_LIST_NO_MANAGEDSAVE (1u << 9)
#define DOMAIN_LIST_AUTOSTART     (1u << 10)
#define DOMAIN_LIST_NO_AUTOSTART  (1u << 11)
#define DOMAIN_LIST_HAS_SNAPSHOT  (1u << 12)
#define DOMAIN_LIST_NO_SNAPSHOT   (1u << 13)
bool domain_list_match(const struct domain *d, unsigned flags);

/* Formats uuid as 8-4-4-4-12 lowercase hex into buf (37 bytes). */
void domain_uuid_format(const uint8_t uuid[16], char buf[37]);

#endif
