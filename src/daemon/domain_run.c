/* Starting, watching and stopping cvirt-vmm processes. */
#include "daemon/domain_run.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "daemon/domain_conf.h"
#include "daemon/domain_run_priv.h"
#include "daemon/network.h"
#include "daemon/vmm_client.h"
#include "util/evloop.h"
#include "util/log.h"

/* How long destroy waits for the VMM to go after quit, then after SIGKILL. */
#define DESTROY_QUIT_MS 3000
#define DESTROY_KILL_MS 5000
#define LOG_MARKER "cvirt-vmm: console is "

int domain_pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int pidfd_kill(int pidfd, int sig)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* True when the process behind pidfd has exited within timeout_ms. */
static bool pidfd_wait(int pidfd, int timeout_ms)
{
    struct pollfd p = { .fd = pidfd, .events = POLLIN };
    int r;
    do
        r = poll(&p, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    return r > 0;
}

void domain_emit(struct domain_driver *drv, struct domain *d, int event, int detail)
{
    if (drv->emit)
        drv->emit(drv->emit_opaque, d->name, d->uuid, d->id, event, detail);
}

int domain_save_config(struct domain_driver *drv, struct domain *d, struct err *e)
{
    if (!d->def)
        return 0;
    char *xml = domain_def_format(d->def, DOMAIN_FORMAT_INACTIVE | DOMAIN_FORMAT_SECURE);
    if (!xml)
        return err_set(e, ENOMEM, "out of memory");
    int r = store_save_def(&drv->store, d->name, xml, e);
    free(xml);
    return r;
}

int domain_save_run_state(struct domain_driver *drv, struct domain *d, struct err *e)
{
    char *xml = domain_def_format(d->live, DOMAIN_FORMAT_SECURE);
    if (!xml)
        return err_set(e, ENOMEM, "out of memory");
    int r = store_save_run(&drv->store, d->name, d->pid, xml, e);
    free(xml);
    return r;
}

/* ---- the VMM is gone ---- */

/* Drops the watches of a running domain (the VMM is left alone). */
void domain_unwatch(struct domain_driver *drv, struct domain *d)
{
    if (d->pidfd >= 0) {
        if (drv->loop)
            evloop_del(drv->loop, d->pidfd);
        close(d->pidfd);
        d->pidfd = -1;
    }
    vmm_client_free(d->vmm);
    d->vmm = NULL;
}

/* The VMM exited: the reason is ours (destroy), the guest's (a SHUTDOWN
 * event came first) or nobody's (a crash). */
static void vmm_exited(struct domain_driver *drv, struct domain *d)
{
    int reason, detail;
    if (d->migrated) {
        reason = DOMAIN_SHUTOFF_MIGRATED;
        detail = DOMAIN_EVENT_STOPPED_MIGRATED;
    } else if (d->saving) {
        reason = DOMAIN_SHUTOFF_SAVED;
        detail = DOMAIN_EVENT_STOPPED_SAVED;
    } else if (d->destroying) {
        reason = DOMAIN_SHUTOFF_DESTROYED;
        detail = DOMAIN_EVENT_STOPPED_DESTROYED;
    } else if (d->got_shutdown) {
        reason = DOMAIN_SHUTOFF_SHUTDOWN;
        detail = DOMAIN_EVENT_STOPPED_SHUTDOWN;
    } else {
        reason = DOMAIN_SHUTOFF_CRASHED;
        detail = DOMAIN_EVENT_STOPPED_FAILED;
        log_warn("domain '%s': its VMM (pid %d) exited without a shutdown; see %s/%s.log",
                 d->name, (int)d->pid, drv->store.log_dir, d->name);
    }
    struct domain_job *job = d->job;
    domain_unwatch(drv, d);
    store_clear_run(&drv->store, d->name);
    char sock[108];
    if (store_sock_path(&drv->store, d->name, d->uuid, sock, sizeof(sock)) == 0)
        unlink(sock);
    char name[DOMAIN_NAME_MAX + 1];
    uint8_t uuid[16];
    snprintf(name, sizeof(name), "%s", d->name);
    memcpy(uuid, d->uuid, 16);
    network_domain_release(d->live);
    d->job = NULL;
    d->job_api = NULL;
    bool freed = domain_set_stopped(&drv->table, d, reason);
    if (drv->emit)
        drv->emit(drv->emit_opaque, name, uuid, -1, DOMAIN_EVENT_STOPPED, detail);
    /* A destroy or save waiting for this exit is done. */
    if (job)
        domain_job_vmm_gone(job, freed ? NULL : d);
}

static void on_pidfd(void *opaque, uint32_t events)
{
    struct domain *d = opaque;
    struct domain_driver *drv = d->drv;
    /* Only a pidfd that polls readable means an exit: an event of a watch
     * freed and reused in the same loop turn can land here. */
    if (d->pidfd < 0 || !pidfd_wait(d->pidfd, 0))
        return;
    /* <on_poweroff>restart</on_poweroff>: a guest that powers off boots
     * again (a persistent domain only, so d outlives the stop). */
    bool restart = !d->destroying && d->shutdown_by_guest && d->def && d->live &&
                   d->live->on_poweroff == DOMAIN_ACTION_RESTART;
    vmm_exited(drv, d);
    if (restart)
        domain_start_logged(drv, d, "the restart after power-off");
}

/* ---- events from the VMM ---- */

void domain_note_paused(struct domain_driver *drv, struct domain *d, int reason)
{
    if (d->state == DOMAIN_PAUSED) {
        /* The VMM's STOP event may come before the reply to our stop. */
        if (reason != DOMAIN_PAUSED_UNKNOWN)
            d->reason = reason;
        return;
    }
    domain_set_state(d, DOMAIN_PAUSED, reason);
    domain_emit(drv, d, DOMAIN_EVENT_SUSPENDED, reason == DOMAIN_PAUSED_MIGRATION ?
                DOMAIN_EVENT_SUSPENDED_MIGRATED : DOMAIN_EVENT_SUSPENDED_PAUSED);
}

void domain_note_resumed(struct domain_driver *drv, struct domain *d)
{
    if (d->state == DOMAIN_RUNNING)
        return;
    domain_set_state(d, DOMAIN_RUNNING, DOMAIN_RUNNING_UNPAUSED);
    domain_emit(drv, d, DOMAIN_EVENT_RESUMED, DOMAIN_EVENT_RESUMED_UNPAUSED);
}

static void on_vmm_event(void *opaque, const char *name, struct json_object *data)
{
    struct domain *d = opaque;
    struct domain_driver *drv = d->drv;
    log_debug("domain '%s': event %s", d->name, name);
    if (!strcmp(name, "SHUTDOWN")) {
        struct json_object *g;
        d->got_shutdown = true;
        d->shutdown_by_guest = data && json_object_object_get_ex(data, "guest", &g) &&
                               json_object_get_boolean(g);
        if (!d->destroying) {
            domain_set_state(d, DOMAIN_SHUTDOWN, DOMAIN_SHUTDOWN_USER);
            domain_emit(drv, d, DOMAIN_EVENT_SHUTDOWN, d->shutdown_by_guest ?
                        DOMAIN_EVENT_SHUTDOWN_GUEST : DOMAIN_EVENT_SHUTDOWN_HOST);
        }
    } else if (!strcmp(name, "STOP")) {
        /* A migration stops the source for its last copy. */
        domain_note_paused(drv, d, d->migrating ? DOMAIN_PAUSED_MIGRATION :
                           DOMAIN_PAUSED_UNKNOWN);
    } else if (!strcmp(name, "RESUME")) {
        domain_note_resumed(drv, d);
    } else if (!strcmp(name, "DEVICE_DELETED")) {
        struct json_object *id;
        if (data && json_object_object_get_ex(data, "device", &id))
            domain_hotplug_deleted(drv, d, json_object_get_string(id));
    }
}

static void on_vmm_close(void *opaque)
{
    struct domain *d = opaque;
    /* The pidfd says when the process is gone; the socket only tells us we
     * cannot talk to it any more. */
    log_debug("domain '%s': control connection closed", d->name);
    vmm_client_free(d->vmm);
    d->vmm = NULL;
}

static const struct vmm_client_ops vmm_ops = {
    .on_event = on_vmm_event,
    .on_close = on_vmm_close,
};

int domain_watch(struct domain_driver *drv, struct domain *d, int pidfd, int timeout_ms,
                 struct err *e)
{
    char sock[108];
    d->drv = drv;
    d->pidfd = pidfd;
    if (drv->loop) {
        int r = evloop_add(drv->loop, pidfd, EPOLLIN, on_pidfd, d);
        if (r < 0)
            return err_set(e, -r, "cannot watch the VMM of '%s': %s", d->name, strerror(-r));
    }
    if (store_sock_path(&drv->store, d->name, d->uuid, sock, sizeof(sock)) < 0)
        return err_set(e, ENAMETOOLONG, "domain name '%s' is too long for a socket path",
                       d->name);
    return vmm_client_connect(drv->loop, sock, timeout_ms, &vmm_ops, d, &d->vmm, e);
}

/* ---- start ---- */

/* The pty cvirt-vmm opened for the serial port, from its log line. */
static char *find_pty(const char *path, off_t offset)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    char buf[8192];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, offset);
    close(fd);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    char *p = strstr(buf, LOG_MARKER);
    if (!p)
        return NULL;
    p += strlen(LOG_MARKER);
    size_t l = strcspn(p, "\r\n");
    if (!p[l] || strncmp(p, "/dev/pts/", 9) != 0)
        return NULL;
    return strndup(p, l);
}

/* A connection to the new VMM failed: it died while starting (the error
 * is the last line of its log) or did not answer. */
int domain_start_conn_error(struct domain_driver *drv, struct domain *d,
                            const struct domain_spawn *sp, int rc, const struct err *ce,
                            struct err *e)
{
    /* The socket closes a moment before the process is gone. */
    if (pidfd_wait(sp->pidfd, 200)) {
        char tail[512];
        domain_log_tail(sp->log_path, sp->log_off, tail, sizeof(tail));
        return err_set(e, EIO, "the VMM exited while starting: %s",
                       tail[0] ? tail : "(no message)");
    }
    char sock[108];
    store_sock_path(&drv->store, d->name, d->uuid, sock, sizeof(sock));
    if (rc != -ETIMEDOUT)
        return err_set(e, -rc, "the VMM's control socket %s: %s", sock, ce->msg);
    return err_set(e, -rc, "the VMM's control socket %s did not answer within %d ms: %s", sock,
                   drv->start_timeout_ms, ce->msg);
}

/* The control socket listened before the VMM ran, so a single connect
 * lands in its backlog and the greeting comes once the VMM is ready. The
 * VMM holds the only listening copy: if it dies first, the connection is
 * reset at once instead of timing out. */
static int connect_new_vmm(struct domain_driver *drv, struct domain *d,
                           const struct domain_spawn *sp, struct err *e)
{
    char sock[108];
    store_sock_path(&drv->store, d->name, d->uuid, sock, sizeof(sock));
    struct err ce = { 0 };
    int r = vmm_client_connect(drv->loop, sock, drv->start_timeout_ms, &vmm_ops, d, &d->vmm,
                               &ce);
    return r == 0 ? 0 : domain_start_conn_error(drv, d, sp, r, &ce, e);
}

int domain_connect_new_vmm_async(struct domain_driver *drv, struct domain *d,
                                 vmm_client_ready_fn ready, struct vmm_client **out,
                                 struct err *e)
{
    char sock[108];
    store_sock_path(&drv->store, d->name, d->uuid, sock, sizeof(sock));
    /* Events and ready both get d: its job follows the handshake. */
    return vmm_client_connect_async(drv->loop, sock, drv->start_timeout_ms, &vmm_ops, d,
                                    ready, out, e);
}

/* Checks what a start needs from the host before spawning, so the common
 * mistakes get libvirt-like messages instead of the VMM's. */
static int check_files(const struct domain_def *def, struct err *e)
{
    if (def->os.kernel && access(def->os.kernel, R_OK) < 0)
        return err_set_errno(e, errno, "Cannot access kernel file '%s'", def->os.kernel);
    if (def->os.initrd && access(def->os.initrd, R_OK) < 0)
        return err_set_errno(e, errno, "Cannot access initrd file '%s'", def->os.initrd);
    for (size_t i = 0; i < def->ndisks; i++)
        if (access(def->disks[i].source_file, R_OK) < 0)
            return err_set_errno(e, errno, "Cannot access storage file '%s'",
                                 def->disks[i].source_file);
    return 0;
}

void domain_start_abort(struct domain_driver *drv, struct domain *d, struct domain_spawn *sp)
{
    if (sp->pidfd >= 0 && d->pidfd != sp->pidfd) {
        pidfd_kill(sp->pidfd, SIGKILL);
        pidfd_wait(sp->pidfd, DESTROY_KILL_MS);
        close(sp->pidfd);
    } else if (d->pidfd >= 0) {
        pidfd_kill(d->pidfd, SIGKILL);
        pidfd_wait(d->pidfd, DESTROY_KILL_MS);
    }
    sp->pidfd = -1;
    domain_unwatch(drv, d);
    store_clear_run(&drv->store, d->name);
    char sock[108];
    if (store_sock_path(&drv->store, d->name, d->uuid, sock, sizeof(sock)) == 0)
        unlink(sock);
    d->pid = 0;
}

/* The VMM answers: watch its exit, note its console and write the run
 * files. On failure the VMM is killed. */
int domain_start_finish(struct domain_driver *drv, struct domain *d, struct domain_spawn *sp,
                        struct err *e)
{
    int r = 0;
    if (drv->loop) {
        r = evloop_add(drv->loop, sp->pidfd, EPOLLIN, on_pidfd, d);
        if (r < 0)
            err_set(e, -r, "cannot watch the VMM: %s", strerror(-r));
    }
    d->pidfd = sp->pidfd;
    if (r == 0) {
        free(d->live->serial.pty_path);
        d->live->serial.pty_path = d->live->serial.present ?
                                   find_pty(sp->log_path, sp->log_off) : NULL;
        r = domain_save_run_state(drv, d, e);
    }
    if (r < 0)
        domain_start_abort(drv, d, sp);
    sp->pidfd = -1;
    return r;
}

int domain_start_prepare(struct domain_driver *drv, struct domain *d, const char *restore,
                         struct err *e)
{
    int r = domain_op_check(d, DOMAIN_OP_START, e);
    if (r < 0)
        return r;
    /* create_xml gives the live definition; start copies the persistent one. */
    if (!d->live) {
        d->live = domain_def_copy(d->def);
        if (!d->live)
            return err_set(e, ENOMEM, "out of memory");
    }
    r = check_files(d->live, e);
    if (r < 0) {
        domain_start_failed(drv, d);
        return r;
    }
    domain_set_running(&drv->table, d, d->live,
                       restore ? DOMAIN_RUNNING_RESTORED : DOMAIN_RUNNING_BOOTED);
    return 0;
}

bool domain_start_failed(struct domain_driver *drv, struct domain *d)
{
    /* A transient domain that never ran leaves the table. */
    network_domain_release(d->live);
    return domain_set_stopped(&drv->table, d, DOMAIN_SHUTOFF_FAILED);
}

void domain_start_started(struct domain_driver *drv, struct domain *d, bool restored)
{
    log_info("domain '%s' %s, pid %d", d->name, restored ? "restored" : "started", (int)d->pid);
    domain_emit(drv, d, DOMAIN_EVENT_STARTED,
                restored ? DOMAIN_EVENT_STARTED_RESTORED : DOMAIN_EVENT_STARTED_BOOTED);
}

int domain_start_from(struct domain_driver *drv, struct domain *d, const char *restore,
                      struct err *e)
{
    int r = domain_start_prepare(drv, d, restore, e);
    if (r < 0)
        return r;
    struct domain_spawn sp;
    r = domain_spawn_vmm(drv, d, restore, &sp, e);
    if (r == 0) {
        r = connect_new_vmm(drv, d, &sp, e);
        if (r == 0)
            r = domain_start_finish(drv, d, &sp, e);
        else
            domain_start_abort(drv, d, &sp);
    }
    if (r < 0) {
        domain_start_failed(drv, d);
        return r;
    }
    domain_start_started(drv, d, restore != NULL);
    return 0;
}

int domain_start(struct domain_driver *drv, struct domain *d, struct err *e)
{
    if (d->managed_save && !domain_is_active(d))
        return domain_start_managed(drv, d, e);
    return domain_start_from(drv, d, NULL, e);
}

/* ---- stop and the others ---- */

int domain_stop_vmm(struct domain_driver *drv, struct domain *d, struct err *e)
{
    d->destroying = true;
    if (d->vmm) {
        struct err qe = { 0 };
        vmm_client_execute(d->vmm, "quit", NULL, DESTROY_QUIT_MS, NULL, &qe);
    }
    if (d->pidfd >= 0 && !pidfd_wait(d->pidfd, DESTROY_QUIT_MS)) {
        log_warn("domain '%s': the VMM did not quit, killing pid %d", d->name, (int)d->pid);
        pidfd_kill(d->pidfd, SIGKILL);
        if (!pidfd_wait(d->pidfd, DESTROY_KILL_MS)) {
            d->destroying = d->saving = false;
            return domain_err_unkillable(e, d->pid);
        }
    }
    vmm_exited(drv, d);
    return 0;
}

int domain_destroy(struct domain_driver *drv, struct domain *d, struct err *e)
{
    int r = domain_op_check(d, DOMAIN_OP_DESTROY, e);
    return r < 0 ? r : domain_stop_vmm(drv, d, e);
}

/* Runs a command that needs no answer beyond "done". */
static int simple_command(struct domain *d, const char *cmd, struct err *e)
{
    if (!d->vmm)
        return err_set(e, EIO, "the VMM of domain '%s' does not answer on its control socket",
                       d->name);
    return vmm_client_execute(d->vmm, cmd, NULL, VMM_CLIENT_TIMEOUT_MS, NULL, e);
}

int domain_shutdown(struct domain_driver *drv, struct domain *d, struct err *e)
{
    int r = domain_op_check(d, DOMAIN_OP_SHUTDOWN, e);
    return r < 0 ? r : simple_command(d, "system_powerdown", e);
}

int domain_reboot(struct domain_driver *drv, struct domain *d, struct err *e)
{
    int r = domain_op_check(d, DOMAIN_OP_REBOOT, e);
    return r < 0 ? r : simple_command(d, "system_reset", e);
}

int domain_suspend(struct domain_driver *drv, struct domain *d, struct err *e)
{
    int r = domain_op_check(d, DOMAIN_OP_SUSPEND, e);
    if (r < 0 || d->state == DOMAIN_PAUSED)
        return r;
    r = simple_command(d, "stop", e);
    if (r == 0 && domain_is_active(d))
        domain_note_paused(drv, d, DOMAIN_PAUSED_USER);
    return r;
}

int domain_resume(struct domain_driver *drv, struct domain *d, struct err *e)
{
    int r = domain_op_check(d, DOMAIN_OP_RESUME, e);
    if (r < 0)
        return r;
    r = simple_command(d, "cont", e);
    if (r == 0 && domain_is_active(d))
        domain_note_resumed(drv, d);
    return r;
}

int domain_set_live_memory(struct domain_driver *drv, struct domain *d, uint64_t kib,
                           struct err *e)
{
    int r = domain_op_check(d, DOMAIN_OP_LIVE_CHANGE, e);
    if (r < 0)
        return r;
    if (d->live->balloon != DOMAIN_BALLOON_VIRTIO)
        return err_set(e, EBUSY, "Unable to change memory of active domain without the "
                       "balloon device and guest OS balloon driver");
    if (kib > d->live->memory_kib)
        return err_set(e, EINVAL, "cannot set memory higher than max memory");
    if (!d->vmm)
        return err_set(e, EIO, "the VMM of domain '%s' does not answer", d->name);
    struct json_object *args = json_object_new_object();
    json_object_object_add(args, "value", json_object_new_int64((int64_t)(kib * 1024)));
    r = vmm_client_execute(d->vmm, "balloon", args, VMM_CLIENT_TIMEOUT_MS, NULL, e);
    if (r < 0)
        return r;
    d->live->current_memory_kib = kib;
    /* A daemon that restarts shows the size it set. */
    return domain_save_run_state(drv, d, e);
}

uint64_t domain_cpu_time_ns(const struct domain *d)
{
    if (!d->pid)
        return 0;
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)d->pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields count from
     * the last ')'. utime and stime are fields 14 and 15. */
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                     &ut, &st) != 2)
        return 0;
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        hz = 100;
    return (ut + st) * (1000000000ull / (unsigned long long)hz);
}
