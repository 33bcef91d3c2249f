/* The daemon's start-up and shut-down of the domain side: definitions from
 * the store, reattaching to VMMs that kept running, autostart. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "daemon/domain_conf.h"
#include "daemon/domain_run_priv.h"
#include "daemon/vmm_client.h"
#include "util/log.h"

#define START_TIMEOUT_MS 30000
/* A VMM that is alive answers at once; a pid file whose socket does not is
 * stale. */
#define REATTACH_TIMEOUT_MS 3000

static int load_def(void *opaque, const char *name, const char *path, const char *xml,
                    size_t len, bool autostart, struct err *e)
{
    struct domain_driver *drv = opaque;
    struct domain_def *def;
    int r = domain_def_parse(xml, len, DOMAIN_PARSE_INACTIVE, &def, e);
    if (r < 0)
        return r;
    if (strcmp(def->name, name) != 0) {
        r = err_set(e, EINVAL, "the domain in the file is named '%s', not '%s'", def->name,
                    name);
        domain_def_free(def);
        return r;
    }
    struct domain *d;
    bool created;
    r = domain_define(&drv->table, def, &d, &created, e);
    if (r < 0) {
        domain_def_free(def);
        return r;
    }
    d->autostart = autostart;
    d->managed_save = store_has_managed_save(&drv->store, name);
    return 0;
}

int domain_driver_init(struct domain_driver *drv, struct evloop *loop, const char *config,
                       const char *run, const char *log, const char *state,
                       const char *vmm_path, struct err *e)
{
    memset(drv, 0, sizeof(*drv));
    domain_table_init(&drv->table);
    drv->loop = loop;
    drv->start_timeout_ms = START_TIMEOUT_MS;
    drv->vmm_path = vmm_path ? strdup(vmm_path) : domain_find_vmm();
    if (!drv->vmm_path)
        return err_set(e, ENOMEM, "out of memory");
    int r = store_init(&drv->store, config, run, log, state, e);
    if (r < 0) {
        free(drv->vmm_path);
        drv->vmm_path = NULL;
        return r;
    }
    int n = store_load_defs(&drv->store, load_def, drv);
    log_info("%d domain definition(s) loaded from %s", n, drv->store.config_dir);
    return 0;
}

/* What query-status says: running or not. The status string has more
 * values than "paused" for a VM that is not running (a migration's
 * "inmigrate" and "postmigrate"); the boolean covers them all. */
static void restore_run_state(struct domain_driver *drv, struct domain *d)
{
    struct json_object *ret = NULL, *run;
    struct err e = { 0 };
    if (vmm_client_execute(d->vmm, "query-status", NULL, REATTACH_TIMEOUT_MS, &ret, &e) < 0) {
        log_warn("domain '%s': query-status: %s", d->name, e.msg);
        return;
    }
    if (json_object_object_get_ex(ret, "running", &run) &&
        json_object_is_type(run, json_type_boolean) && !json_object_get_boolean(run))
        domain_set_state(d, DOMAIN_PAUSED, DOMAIN_PAUSED_USER);
    json_object_put(ret);
}

/* The domain a run file belongs to, taking the live definition. */
static struct domain *adopt(struct domain_driver *drv, struct domain_def *live,
                            struct err *e)
{
    struct domain *d = domain_find_uuid(&drv->table, live->uuid);
    if (d && strcmp(d->name, live->name) != 0) {
        err_set(e, EEXIST, "its uuid belongs to domain '%s'", d->name);
        return NULL;
    }
    if (!d && domain_find_name(&drv->table, live->name)) {
        err_set(e, EEXIST, "a defined domain of that name has another uuid");
        return NULL;
    }
    if (d) {
        domain_def_free(d->live);
        d->live = live;
        return d;
    }
    if (domain_add_transient(&drv->table, live, &d, e) < 0)
        return NULL;
    return d;
}

static void reattach_one(void *opaque, const char *name, pid_t pid, const char *xml,
                         size_t len)
{
    struct domain_driver *drv = opaque;
    struct err e = { 0 };
    int pidfd = pid > 0 ? domain_pidfd_open(pid) : -1;
    if (pidfd < 0 || !xml) {
        log_info("domain '%s': VMM pid %d is gone; cleaning up its run-time files",
                 name, (int)pid);
        if (pidfd >= 0)
            close(pidfd);
        store_clear_run(&drv->store, name);
        return;
    }
    struct domain_def *live;
    if (domain_def_parse(xml, len, 0, &live, &e) < 0) {
        log_error("%s/%s.xml: %s; VMM pid %d left alone", drv->store.run_dir, name, e.msg,
                  (int)pid);
        close(pidfd);
        return;
    }
    struct domain *d = adopt(drv, live, &e);
    if (!d) {
        log_error("%s/%s.xml: %s; VMM pid %d left alone", drv->store.run_dir, name, e.msg,
                  (int)pid);
        domain_def_free(live);
        close(pidfd);
        return;
    }
    /* Keep the id the clients know. */
    if (live->id > 0 && !domain_find_id(&drv->table, live->id)) {
        d->id = live->id;
        if (drv->table.next_id <= d->id)
            drv->table.next_id = d->id + 1;
    }
    d->pid = pid;
    domain_set_running(&drv->table, d, live, DOMAIN_RUNNING_BOOTED);
    if (domain_watch(drv, d, pidfd, REATTACH_TIMEOUT_MS, &e) < 0) {
        log_info("domain '%s': VMM pid %d does not answer (%s); cleaning up", name,
                 (int)pid, e.msg);
        domain_unwatch(drv, d);
        store_clear_run(&drv->store, name);
        domain_set_stopped(&drv->table, d, DOMAIN_SHUTOFF_UNKNOWN);
        return;
    }
    /* The socket must be the pid file's process, not a stranger that
     * reuses a stale pid while another VMM owns the socket. */
    int peer = vmm_client_peer_pid(d->vmm);
    if (peer != (int)pid) {
        log_error("domain '%s': its control socket belongs to pid %d, not %d; not reattached",
                  name, peer, (int)pid);
        domain_unwatch(drv, d);
        domain_set_stopped(&drv->table, d, DOMAIN_SHUTOFF_UNKNOWN);
        return;
    }
    restore_run_state(drv, d);
    log_info("domain '%s': reattached to VMM pid %d", d->name, (int)pid);
}

void domain_driver_reattach(struct domain_driver *drv)
{
    store_load_runs(&drv->store, reattach_one, drv);
}

void domain_driver_autostart(struct domain_driver *drv)
{
    /* Starting never removes a persistent domain, so the indices hold; the
     * starts go on from the loop while clients are served. */
    for (size_t i = 0; i < drv->table.n; i++) {
        struct domain *d = drv->table.v[i];
        if (!d->autostart || domain_is_active(d))
            continue;
        domain_start_logged(drv, d, "autostart");
    }
}

void domain_driver_fini(struct domain_driver *drv)
{
    domain_jobs_cancel(drv);
    for (size_t i = 0; i < drv->table.n; i++)
        domain_unwatch(drv, drv->table.v[i]);
    domain_table_clear(&drv->table);
    store_fini(&drv->store);
    free(drv->vmm_path);
    drv->vmm_path = NULL;
}
