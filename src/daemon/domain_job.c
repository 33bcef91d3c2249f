/* Lifecycle operations that wait for a VMM, driven by the event loop: a
 * start (spawn, greeting, qmp_capabilities, run files), a save (migrate
 * to a file, then the exit) and a destroy (quit, then the exit, SIGKILL
 * when it does not come). The daemon goes on serving other clients while
 * one waits; the operation's owner hears of the end once, through done.
 *
 * One job per domain: while it runs, domain_op_check() refuses the other
 * lifecycle operations on that domain with libvirt's lock error. Except
 * destroy, which (as libvirt's, which kills the process before it takes
 * the job) ends a start or a save in flight and takes its place. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <json-c/json.h>

#include "daemon/domain_conf.h"
#include "daemon/domain_run_priv.h"
#include "util/evloop.h"
#include "util/log.h"

/* As the synchronous destroy: quit, then SIGKILL, then give up. */
#define JOB_QUIT_MS 3000
#define JOB_KILL_MS 5000
/* Writing guest memory to disk: seconds per GiB at worst. */
#define JOB_SAVE_MS 120000

enum job_kind { JOB_START, JOB_SAVE, JOB_DESTROY };
enum job_stage {
    STAGE_SPAWN,        /* start: waiting for the VMM's exec */
    STAGE_CONNECT,      /* start: waiting for greeting + qmp_capabilities */
    STAGE_MIGRATE,      /* save: waiting for migrate's reply */
    STAGE_QUIT,         /* destroy/save: quit sent, waiting for the exit */
    STAGE_KILL,         /* ... SIGKILL sent */
};

struct domain_job {
    struct domain_driver *drv;
    struct domain *d;
    enum job_kind kind;
    enum job_stage stage;
    domain_done_fn done;
    void *opaque;
    int timer_fd;
    /* start */
    struct domain_spawn sp;
    struct vmm_client *conn;
    bool restored;
    bool incoming;              /* waits for a live migration */
    bool managed;               /* start from / save to the managed image */
    char path[PATH_MAX];        /* restore or save file */
    /* save */
    bool was_running;
    char part[PATH_MAX + 8];    /* what the VMM writes: path, or path.part (managed) */
};

static struct domain_job *job_new(struct domain_driver *drv, struct domain *d,
                                  enum job_kind kind, const char *api, domain_done_fn done,
                                  void *opaque, struct err *e)
{
    if (!drv->loop) {
        err_set(e, EINVAL, "no event loop for an asynchronous operation");
        return NULL;
    }
    struct domain_job *j = calloc(1, sizeof(*j));
    if (!j) {
        err_set(e, ENOMEM, "out of memory");
        return NULL;
    }
    j->drv = drv;
    j->d = d;
    j->kind = kind;
    j->done = done;
    j->opaque = opaque;
    j->timer_fd = -1;
    j->sp.pidfd = -1;
    d->job = j;
    d->job_api = api;
    return j;
}

static void timer_stop(struct domain_job *j)
{
    if (j->timer_fd < 0)
        return;
    evloop_del(j->drv->loop, j->timer_fd);
    close(j->timer_fd);
    j->timer_fd = -1;
}

/* Ends j: d (NULL when it is gone) is released, done hears rc. */
static void job_end(struct domain_job *j, struct domain *d, int rc, const struct err *e)
{
    timer_stop(j);
    if (d && d->job == j) {
        d->job = NULL;
        d->job_api = NULL;
    }
    vmm_client_free(j->conn);
    if (j->sp.pidfd >= 0)
        close(j->sp.pidfd);
    if (j->done)
        j->done(j->opaque, d, rc, rc < 0 ? e : NULL);
    free(j);
}

static void on_job_timer(void *opaque, uint32_t events);

static int timer_arm(struct domain_job *j, int ms, struct err *e)
{
    if (j->timer_fd < 0) {
        j->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (j->timer_fd < 0)
            return err_set_errno(e, errno, "timerfd");
        int r = evloop_add(j->drv->loop, j->timer_fd, EPOLLIN, on_job_timer, j);
        if (r < 0) {
            close(j->timer_fd);
            j->timer_fd = -1;
            return err_set(e, -r, "cannot watch a timer: %s", strerror(-r));
        }
    }
    struct itimerspec its = { .it_value = { ms / 1000, (ms % 1000) * 1000000L } };
    if (timerfd_settime(j->timer_fd, 0, &its, NULL) < 0)
        return err_set_errno(e, errno, "timerfd_settime");
    return 0;
}

/* ---- start ---- */

/* Returns true when d was a transient domain and is gone. */
static bool start_fail(struct domain_job *j, int rc, const struct err *e)
{
    struct domain *d = j->d;
    log_warn("domain '%s': start failed: %s", d->name, e->msg);
    vmm_client_free(j->conn);
    j->conn = NULL;
    if (j->sp.pipefd >= 0) {
        /* Still spawning (the daemon stops): learn the pid to kill it. */
        struct err se = { 0 };
        evloop_del(j->drv->loop, j->sp.pipefd);
        domain_spawn_wait(&j->sp);
        domain_spawn_end(j->drv, d, &j->sp, &se);
    }
    domain_start_abort(j->drv, d, &j->sp);
    d->job = NULL;
    d->job_api = NULL;
    bool gone = domain_start_failed(j->drv, d);
    job_end(j, gone ? NULL : d, rc, e);
    return gone;
}

static void on_start_ready(void *opaque, int rc, const struct err *ce)
{
    struct domain *d = opaque;
    struct domain_job *j = d->job;
    struct err e = { 0 };
    if (rc < 0) {
        domain_start_conn_error(j->drv, d, &j->sp, rc, ce, &e);
        start_fail(j, -e.code, &e);
        return;
    }
    d->vmm = j->conn;
    j->conn = NULL;
    if (domain_start_finish(j->drv, d, &j->sp, &e) < 0) {
        /* finish killed the VMM and dropped d->vmm. */
        d->job = NULL;
        d->job_api = NULL;
        bool gone = domain_start_failed(j->drv, d);
        job_end(j, gone ? NULL : d, -e.code, &e);
        return;
    }
    if (j->managed) {
        /* The restored VM maps the image's memory: unlinking keeps it. */
        unlink(j->path);
        d->managed_save = false;
    }
    d->job = NULL;
    d->job_api = NULL;
    if (!j->incoming)
        domain_start_started(j->drv, d, j->restored);
    job_end(j, d, 0, NULL);
}

/* The VMM has exec'd (or failed to): connect to it. */
static void on_spawned(void *opaque, uint32_t events)
{
    struct domain_job *j = opaque;
    struct domain *d = j->d;
    (void)events;
    if (j->sp.pipefd < 0 || !domain_spawn_poll(&j->sp))
        return;
    evloop_del(j->drv->loop, j->sp.pipefd);
    struct err e = { 0 };
    int r = domain_spawn_end(j->drv, d, &j->sp, &e);
    if (r == 0) {
        /* A VMM that died already refuses the connection: its log says why. */
        struct err ce = { 0 };
        j->stage = STAGE_CONNECT;
        r = domain_connect_new_vmm_async(j->drv, d, on_start_ready, &j->conn, &ce);
        if (r < 0)
            r = domain_start_conn_error(j->drv, d, &j->sp, r, &ce, &e);
    }
    if (r < 0)
        start_fail(j, r, &e);
}

static int start_job(struct domain_driver *drv, struct domain *d, const char *restore,
                     bool managed, const char *api, domain_done_fn done, void *opaque,
                     struct err *e)
{
    int r = domain_start_prepare(drv, d, restore, e);
    if (r < 0)
        return r;
    struct domain_job *j = job_new(drv, d, JOB_START, api, done, opaque, e);
    if (!j) {
        domain_start_failed(drv, d);
        return -e->code;
    }
    j->incoming = restore && !strcmp(restore, DOMAIN_RESTORE_INCOMING);
    j->restored = restore != NULL && !j->incoming;
    j->managed = managed;
    if (restore)
        snprintf(j->path, sizeof(j->path), "%s", restore);
    j->stage = STAGE_SPAWN;
    r = domain_spawn_begin(drv, d, restore, &j->sp, e);
    if (r == 0) {
        r = evloop_add(drv->loop, j->sp.pipefd, EPOLLIN, on_spawned, j);
        if (r < 0) {
            err_set(e, -r, "cannot watch the VMM's start: %s", strerror(-r));
            domain_spawn_wait(&j->sp);
            struct err se = { 0 };
            if (domain_spawn_end(drv, d, &j->sp, &se) == 0)
                domain_start_abort(drv, d, &j->sp);
        }
    }
    if (r < 0) {
        d->job = NULL;
        d->job_api = NULL;
        j->done = NULL;
        job_end(j, NULL, r, e);
        domain_start_failed(drv, d);
        return r;
    }
    return 0;
}

int domain_start_async(struct domain_driver *drv, struct domain *d, const char *api,
                       domain_done_fn done, void *opaque, struct err *e)
{
    if (d->managed_save && !domain_is_active(d) && !d->job) {
        char path[PATH_MAX];
        int r = domain_managed_prepare(drv, d, path, sizeof(path), e);
        return r < 0 ? r : start_job(drv, d, path, true, api, done, opaque, e);
    }
    return start_job(drv, d, NULL, false, api, done, opaque, e);
}

int domain_create_async(struct domain_driver *drv, struct domain *d, const char *api,
                        domain_done_fn done, void *opaque, struct err *e)
{
    return start_job(drv, d, NULL, false, api, done, opaque, e);
}

static void log_start_done(void *opaque, struct domain *d, int rc, const struct err *e)
{
    if (rc < 0)
        log_error("%s of domain '%s' failed: %s", (const char *)opaque, d ? d->name : "?",
                  e->msg);
}

void domain_start_logged(struct domain_driver *drv, struct domain *d, const char *what)
{
    struct err e = { 0 };
    int r = drv->loop ? domain_start_async(drv, d, what, log_start_done,
                                           (void *)what, &e)
                      : domain_start(drv, d, &e);
    if (r < 0)
        log_error("%s of domain '%s' failed: %s", what, d->name, e.msg);
}

int domain_restore_async(struct domain_driver *drv, const char *path, const char *api,
                         domain_done_fn done, void *opaque, struct err *e)
{
    struct domain *d;
    int r = domain_restore_lookup(drv, path, &d, e);
    return r < 0 ? r : start_job(drv, d, path, false, api, done, opaque, e);
}

int domain_incoming_async(struct domain_driver *drv, struct domain *d, const char *api,
                          domain_done_fn done, void *opaque, struct err *e)
{
    return start_job(drv, d, DOMAIN_RESTORE_INCOMING, false, api, done, opaque, e);
}

/* ---- waiting for the VMM to exit (destroy, and the end of a save) ---- */

static int pidfd_kill(int pidfd, int sig)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* Asks the VMM to go; the pidfd's watch (on_pidfd in domain_run.c) ends
 * the job through domain_job_vmm_gone(). */
static int ask_quit(struct domain_job *j, struct err *e)
{
    struct domain *d = j->d;
    /* The timer first: once quit is sent there is no going back. */
    int r = timer_arm(j, JOB_QUIT_MS, e);
    if (r < 0)
        return r;
    d->destroying = true;
    j->stage = STAGE_QUIT;
    if (d->vmm) {
        struct err qe = { 0 };
        if (vmm_client_send(d->vmm, "quit", &qe) < 0)
            log_debug("domain '%s': quit not sent: %s", d->name, qe.msg);
    }
    return 0;
}

void domain_job_vmm_gone(struct domain_job *j, struct domain *d)
{
    struct err e = { 0 };
    if (j->kind == JOB_START) {
        /* Not watched during a start; nothing else ends it this way. */
        job_end(j, d, 0, NULL);
        return;
    }
    if (j->stage == STAGE_MIGRATE) {
        err_set(&e, EIO, "the VMM exited while saving");
        unlink(j->part);
        job_end(j, d, -EIO, &e);
        return;
    }
    if (j->kind == JOB_SAVE) {
        log_info("domain saved to %s", j->path);
        if (j->managed && d)
            d->managed_save = true;
    }
    job_end(j, d, 0, NULL);
}

static void on_job_timer(void *opaque, uint32_t events)
{
    struct domain_job *j = opaque;
    struct domain *d = j->d;
    uint64_t n;
    (void)events;
    if (j->timer_fd < 0 || read(j->timer_fd, &n, sizeof(n)) != sizeof(n))
        return;
    struct err e = { 0 };
    if (j->stage == STAGE_QUIT) {
        log_warn("domain '%s': the VMM did not quit, killing pid %d", d->name, (int)d->pid);
        pidfd_kill(d->pidfd, SIGKILL);
        j->stage = STAGE_KILL;
        if (timer_arm(j, JOB_KILL_MS, &e) == 0)
            return;
    } else {
        domain_err_unkillable(&e, d->pid);
    }
    d->destroying = d->saving = false;
    job_end(j, d, -e.code, &e);
}

/* The save in flight on d becomes a destroy: its own caller hears an
 * error now and its file goes, even when already whole and the VMM
 * quitting (a snapshot chain then ends before its offline step instead of
 * working on images whose VM it could not start again), and the VMM is
 * killed at once, as quit may wait behind the migration. */
static int save_to_destroy(struct domain_job *j, const char *api, domain_done_fn done,
                           void *opaque, struct err *e)
{
    struct domain *d = j->d;
    int r = timer_arm(j, JOB_KILL_MS, e);
    if (r < 0)
        return r;
    struct err se = { 0 };
    int rc = err_set(&se, DOMAIN_ERR_DESTROYED, "domain '%s' was destroyed during its save", d->name);
    if (j->stage == STAGE_MIGRATE)
        vmm_client_cancel_async(d->vmm);
    unlink(j->part);
    if (strcmp(j->part, j->path))
        unlink(j->path);
    d->saving = false;
    domain_done_fn save_done = j->done;
    void *save_opaque = j->opaque;
    j->kind = JOB_DESTROY;
    j->stage = STAGE_KILL;
    j->done = done;
    j->opaque = opaque;
    d->job_api = api;
    d->destroying = true;
    log_warn("domain '%s': destroyed during its save, killing pid %d", d->name, (int)d->pid);
    pidfd_kill(d->pidfd, SIGKILL);
    if (save_done)
        save_done(save_opaque, d, rc, &se);
    return 0;
}

int domain_destroy_async(struct domain_driver *drv, struct domain *d, const char *api,
                         domain_done_fn done, void *opaque, struct err *e)
{
    struct domain_job *cur = d->job;
    if (cur && cur->kind == JOB_START) {
        /* The start's caller gets the error; the destroy is done with it,
         * as libvirt's of a domain that had not got as far as running. */
        struct err se = { 0 };
        err_set(&se, DOMAIN_ERR_DESTROYED, "domain '%s' was destroyed during its start", d->name);
        bool gone = start_fail(cur, -DOMAIN_ERR_DESTROYED, &se);
        if (done)
            done(opaque, gone ? NULL : d, 0, NULL);
        return 0;
    }
    if (cur && cur->kind == JOB_SAVE)
        return save_to_destroy(cur, api, done, opaque, e);
    int r = domain_op_check(d, DOMAIN_OP_DESTROY, e);
    if (r < 0)
        return r;
    struct domain_job *j = job_new(drv, d, JOB_DESTROY, api, done, opaque, e);
    if (!j)
        return -e->code;
    r = ask_quit(j, e);
    if (r < 0) {
        j->done = NULL;
        job_end(j, d, r, e);
        d->destroying = false;
    }
    return r;
}

/* ---- save ---- */

static void on_migrated(void *opaque, int rc, struct json_object *ret, const struct err *me)
{
    struct domain_job *j = opaque;
    struct domain *d = j->d;
    struct err e = { 0 };
    (void)ret;
    char *xml = NULL;
    if (rc == 0) {
        xml = domain_def_format(d->live, DOMAIN_FORMAT_INACTIVE | DOMAIN_FORMAT_SECURE);
        rc = xml ? domain_save_append_xml(j->part, xml, &e) : err_set(&e, ENOMEM,
                                                                      "out of memory");
        free(xml);
        /* Only a whole image may carry the managed save's name. */
        if (rc == 0 && strcmp(j->part, j->path) && rename(j->part, j->path) < 0)
            rc = err_set_errno(&e, errno, "cannot rename %s", j->part);
    } else {
        e = *me;
    }
    if (rc == 0) {
        d->saving = true;
        rc = ask_quit(j, &e);
        if (rc == 0)
            return;
        d->saving = d->destroying = false;
    }
    /* The VMM stays paused after a save: a failed one resumes it. */
    struct err ce = { 0 };
    if (j->was_running && d->vmm && vmm_client_alive(d->vmm))
        vmm_client_send(d->vmm, "cont", &ce);
    unlink(j->part);
    if (strcmp(j->part, j->path))
        unlink(j->path);
    job_end(j, d, rc, &e);
}

int domain_save_async(struct domain_driver *drv, struct domain *d, const char *path,
                      bool managed, const char *api, domain_done_fn done, void *opaque,
                      struct err *e)
{
    char mpath[PATH_MAX];
    if (managed) {
        if (!d->def)
            return err_set(e, EBUSY, "cannot do managed save for transient domain");
        if (store_managed_save_path(&drv->store, d->name, mpath, sizeof(mpath)) < 0)
            return err_set(e, ENAMETOOLONG, "domain name '%s' is too long", d->name);
        path = mpath;
    }
    int r = domain_op_check(d, DOMAIN_OP_LIVE_CHANGE, e);
    if (r < 0)
        return r;
    if (path[0] != '/')
        return err_set(e, EINVAL, "save path '%s' is not absolute", path);
    if (strlen(path) >= PATH_MAX)
        return err_set(e, ENAMETOOLONG, "save path is too long");
    if (!d->vmm)
        return err_set(e, EIO, "the VMM of domain '%s' does not answer", d->name);
    struct domain_job *j = job_new(drv, d, JOB_SAVE, api, done, opaque, e);
    if (!j)
        return -e->code;
    snprintf(j->path, sizeof(j->path), "%s", path);
    snprintf(j->part, sizeof(j->part), "%s%s", path, managed ? ".part" : "");
    j->managed = managed;
    j->was_running = d->state == DOMAIN_RUNNING;
    j->stage = STAGE_MIGRATE;
    char *uri;
    if (asprintf(&uri, "file:%s", j->part) < 0) {
        j->done = NULL;
        job_end(j, d, -ENOMEM, e);
        return err_set(e, ENOMEM, "out of memory");
    }
    struct json_object *args = json_object_new_object();
    json_object_object_add(args, "uri", json_object_new_string(uri));
    free(uri);
    r = vmm_client_execute_async(d->vmm, "migrate", args, JOB_SAVE_MS, on_migrated, j, e);
    if (r < 0) {
        j->done = NULL;
        job_end(j, d, r, e);
    }
    return r;
}

/* ---- chains: stop the VMM, work on the closed images, start again ----
 *
 * The steps are the jobs above, each begun from the end of the one before
 * in the same loop turn, so no other call comes between them. */

struct chain {
    struct domain_driver *drv;
    struct domain_chain c;
    char save[PATH_MAX];
    char restore[PATH_MAX];
    const char *api;
    domain_done_fn done;
    void *opaque;
    bool saved;                 /* the VM's state is in save */
    bool was_paused;
    int rc;                     /* the offline step's failure, kept for the end */
    struct err e;
};

static void chain_end(struct chain *ch, struct domain *d, int rc, const struct err *e)
{
    if (ch->done)
        ch->done(ch->opaque, d, rc, rc < 0 ? e : NULL);
    free(ch);
}

/* The saved state would be lost with a VMM that cannot restore it: it
 * becomes the managed save image, which the next start resumes. */
static void chain_keep_state(struct chain *ch, struct domain *d, struct err *e)
{
    char mpath[PATH_MAX];
    if (!d || !d->def ||
        store_managed_save_path(&ch->drv->store, d->name, mpath, sizeof(mpath)) < 0 ||
        rename(ch->save, mpath) < 0) {
        log_error("domain '%s': its saved state stays in %s", d ? d->name : "?", ch->save);
        return;
    }
    d->managed_save = true;
    size_t n = strlen(e->msg);
    snprintf(e->msg + n, sizeof(e->msg) - n, " (the guest's state is kept as the managed "
             "save image: start resumes it)");
}

static void chain_started(void *opaque, struct domain *d, int rc, const struct err *se)
{
    struct chain *ch = opaque;
    struct err e = { 0 };
    if (rc < 0) {
        e = *se;
        /* Only the state of the images as they are now is worth keeping,
         * and not past a destroy, which ends the VM as it was. */
        if (ch->saved && rc == -DOMAIN_ERR_DESTROYED)
            unlink(ch->save);
        else if (ch->saved && strcmp(ch->save, ch->restore) == 0)
            chain_keep_state(ch, d, &e);
        chain_end(ch, d, rc, &e);
        return;
    }
    if (ch->c.paused && d && domain_suspend(ch->drv, d, &e) < 0)
        log_warn("domain '%s': not paused again: %s", d->name, e.msg);
    chain_end(ch, d, ch->rc, &ch->e);
}

/* After the stop: the offline work, then the start it asks for. Returns
 * the start's failure when it cannot begin (done not run). */
static int chain_offline(struct chain *ch, struct domain *d, struct err *e)
{
    if (ch->c.offline) {
        int r = ch->c.offline(ch->opaque, d, &ch->e);
        if (r < 0) {
            ch->rc = r;
            if (!ch->saved)
                return 1;       /* nothing to give back */
            /* The VM runs on from its saved state, untouched. */
            snprintf(ch->restore, sizeof(ch->restore), "%s", ch->save);
            ch->c.paused = ch->was_paused;
        }
    }
    if (!ch->restore[0] && !ch->c.start)
        return 1;
    int r = ch->restore[0] ? domain_restore_async(ch->drv, ch->restore, ch->api, chain_started,
                                                  ch, e)
                           : domain_start_async(ch->drv, d, ch->api, chain_started, ch, e);
    return r;
}

static void chain_stopped(void *opaque, struct domain *d, int rc, const struct err *e)
{
    struct chain *ch = opaque;
    if (rc < 0 || !d) {
        /* A failed save leaves the VM running as it was. */
        struct err ge = { 0 };
        if (rc >= 0 || !e) {
            err_set(&ge, ENOENT, "the domain went away during the operation%s%s",
                    ch->save[0] ? "; its saved state is in " : "", ch->save);
            e = &ge;
        }
        chain_end(ch, d, rc < 0 ? rc : -ENOENT, e);
        return;
    }
    ch->saved = ch->save[0] != '\0';
    struct err se = { 0 };
    int r = chain_offline(ch, d, &se);
    if (r > 0)
        chain_end(ch, d, ch->rc, &ch->e);
    else if (r < 0)
        chain_started(ch, d, r, &se);
}

int domain_chain_async(struct domain_driver *drv, struct domain *d,
                       const struct domain_chain *c, const char *api, domain_done_fn done,
                       void *opaque, struct err *e)
{
    if (d->job)
        return domain_op_check(d, DOMAIN_OP_LIVE_CHANGE, e);
    if ((c->save && strlen(c->save) >= PATH_MAX) ||
        (c->restore && strlen(c->restore) >= PATH_MAX))
        return err_set(e, ENAMETOOLONG, "path too long");
    struct chain *ch = calloc(1, sizeof(*ch));
    if (!ch)
        return err_set(e, ENOMEM, "out of memory");
    ch->drv = drv;
    ch->c = *c;
    snprintf(ch->save, sizeof(ch->save), "%s", c->save ? c->save : "");
    snprintf(ch->restore, sizeof(ch->restore), "%s", c->restore ? c->restore : "");
    ch->c.save = ch->c.restore = NULL;
    ch->api = api;
    ch->done = done;
    ch->opaque = opaque;
    ch->was_paused = d->state == DOMAIN_PAUSED;
    int r;
    if (!domain_is_active(d)) {
        /* Nothing to stop: the rest begins now, or nothing does. */
        ch->save[0] = '\0';
        r = chain_offline(ch, d, e);
        if (r > 0 && ch->rc < 0) {
            *e = ch->e;
            r = ch->rc;
        }
        if (r != 0)
            free(ch);
        return r;
    }
    if (ch->save[0])
        r = domain_save_async(drv, d, ch->save, false, api, chain_stopped, ch, e);
    else
        r = domain_destroy_async(drv, d, api, chain_stopped, ch, e);
    if (r < 0)
        free(ch);
    return r;
}

/* ---- the daemon goes ---- */

void domain_jobs_cancel(struct domain_driver *drv)
{
    struct err e = { 0 };
    err_set(&e, ECANCELED, "the daemon is shutting down");
    /* A failed start may drop a transient domain: look again each time. */
    for (;;) {
        struct domain *d = NULL;
        for (size_t i = 0; i < drv->table.n && !d; i++)
            if (drv->table.v[i]->job)
                d = drv->table.v[i];
        if (!d)
            return;
        struct domain_job *j = d->job;
        if (j->kind == JOB_SAVE && j->stage >= STAGE_QUIT) {
            /* Saved, quit sent: the exit ends the save as such (a chain
             * then keeps the state instead of losing it). */
            struct err se = { 0 };
            if (domain_stop_vmm(drv, d, &se) == 0)
                continue;
        }
        if (j->kind == JOB_SAVE && j->stage == STAGE_MIGRATE) {
            /* No image without its definition is left behind (a restarted
             * daemon would take it for a managed save), nor a paused guest. */
            struct err ce = { 0 };
            if (d->vmm && j->was_running)
                vmm_client_send(d->vmm, "cont", &ce);
            unlink(j->part);
        }
        if (j->kind == JOB_START) {
            /* No run files yet: a restarted daemon would not find it. */
            start_fail(j, -ECANCELED, &e);
            continue;
        }
        d->destroying = d->saving = false;
        job_end(j, d, -ECANCELED, &e);
    }
}
