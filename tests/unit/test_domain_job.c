/* Lifecycle operations driven by the event loop (domain_job.c): a start
 * that fails at each of its steps, one that succeeds, the lock error while
 * one is in flight, destroy (with and without a VMM that obeys quit), and
 * the daemon going away mid-start; chains of a save, work while no VMM
 * runs and a restore (each step failing in turn).
 *
 * The VMM is this program again: started with FAKE_VMM set, it takes the
 * inherited control socket from `--control PATH,fd=N` and plays the step
 * FAKE_VMM names (exit before the greeting, never greet, refuse or drop
 * qmp_capabilities, ignore quit, or behave). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/domain.h"
#include "daemon/domain_conf.h"
#include "daemon/domain_run_priv.h"
#include "util/evloop.h"
#include "store_fixture.h"

/* ---- the fake VMM ---- */

static void fake_put(int fd, const char *s)
{
    size_t len = strlen(s);
    while (len) {
        ssize_t n = write(fd, s, len);
        if (n <= 0)
            _exit(3);
        s += n;
        len -= (size_t)n;
    }
}

/* One request line; its id copied into id (the daemon's ids are numbers). */
static bool fake_get(int fd, char *line, size_t len, char *id, size_t idlen)
{
    size_t n = 0;
    while (n + 1 < len) {
        char ch;
        if (read(fd, &ch, 1) != 1)
            return false;
        if (ch == '\n')
            break;
        line[n++] = ch;
    }
    line[n] = '\0';
    const char *p = strstr(line, "\"id\":");
    snprintf(id, idlen, "%ld", p ? strtol(p + 5, NULL, 10) : 0L);
    return true;
}

static int fake_vmm(const char *mode, int argc, char **argv)
{
    int lfd = -1;
    for (int i = 1; i + 1 < argc; i++) {
        const char *f = strcmp(argv[i], "--control") ? NULL : strstr(argv[i + 1], ",fd=");
        if (f)
            lfd = atoi(f + 4);
    }
    if (lfd < 0) {
        fprintf(stderr, "fake: no control fd\n");
        return 2;
    }
    const char *pids = getenv("FAKE_VMM_PIDS");
    FILE *pf = pids ? fopen(pids, "a") : NULL;
    if (pf) {
        fprintf(pf, "%d\n", (int)getpid());
        fclose(pf);
    }
    if (!strcmp(mode, "exit")) {
        fprintf(stderr, "fake: cannot open /dev/kvm: No such device\n");
        return 1;
    }
    int fd = accept(lfd, NULL, NULL);
    close(lfd);
    if (fd < 0)
        return 2;
    if (!strcmp(mode, "silent")) {
        pause();
        return 0;
    }
    fake_put(fd, "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n");
    char line[4096], id[32], out[256];
    if (!fake_get(fd, line, sizeof(line), id, sizeof(id)))
        return 2;
    if (!strcmp(mode, "hangup"))
        return 1;
    if (!strcmp(mode, "capsfail")) {
        snprintf(out, sizeof(out), "{\"error\": {\"class\": \"GenericError\", "
                 "\"desc\": \"fake refuses\"}, \"id\": %s}\r\n", id);
        fake_put(fd, out);
        pause();
        return 0;
    }
    snprintf(out, sizeof(out), "{\"return\": {}, \"id\": %s}\r\n", id);
    fake_put(fd, out);
    while (fake_get(fd, line, sizeof(line), id, sizeof(id))) {
        if (strstr(line, "\"quit\"") && !strcmp(mode, "stubborn"))
            continue;
        const char *uri = strstr(line, "\"file:");
        if (uri && !strcmp(mode, "savehang"))
            continue;       /* a migration that never ends */
        if (uri && !strcmp(mode, "savefail")) {
            snprintf(out, sizeof(out), "{\"error\": {\"class\": \"GenericError\", "
                     "\"desc\": \"disk full\"}, \"id\": %s}\r\n", id);
            fake_put(fd, out);
            continue;
        }
        if (uri) {
            /* A snapshot as big as cvirt-vmm's header at least. */
            char path[1024];
            size_t n = 0;
            /* json-c writes '/' as "\/". */
            for (const char *p = uri + 6; *p && *p != '"' && n + 1 < sizeof(path); p++)
                if (*p != '\\')
                    path[n++] = *p;
            path[n] = '\0';
            int sfd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            static const char zero[8192];
            if (sfd < 0 || write(sfd, zero, sizeof(zero)) != (ssize_t)sizeof(zero))
                return 4;
            close(sfd);
        }
        snprintf(out, sizeof(out), "{\"return\": {}, \"id\": %s}\r\n", id);
        fake_put(fd, out);
        if (strstr(line, "\"quit\""))
            return 0;
    }
    return 0;
}

/* ---- the daemon side ---- */

struct offline_seen;

struct fx {
    struct store_fixture *sf;
    struct evloop *loop;
    struct domain_driver drv;
    char kernel[300];
    char self[4096];
    /* what done and the events saw */
    int calls;
    int rc;
    char msg[512];
    struct domain *done_d;
    int started, stopped, stop_detail;
    struct offline_seen *offline;
};

static void on_event(void *opaque, const char *name, const uint8_t uuid[16], int id,
                     int event, int detail)
{
    struct fx *f = opaque;
    (void)name; (void)uuid; (void)id;
    if (event == DOMAIN_EVENT_STARTED)
        f->started++;
    if (event == DOMAIN_EVENT_STOPPED) {
        f->stopped++;
        f->stop_detail = detail;
    }
}

static void on_done(void *opaque, struct domain *d, int rc, const struct err *e)
{
    struct fx *f = opaque;
    f->calls++;
    f->rc = rc;
    f->done_d = d;
    snprintf(f->msg, sizeof(f->msg), "%s", rc < 0 && e ? e->msg : "");
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    f->sf = store_fixture_new("test_domain_job");
    assert_non_null(f->sf);
    f->loop = evloop_new();
    assert_non_null(f->loop);
    ssize_t n = readlink("/proc/self/exe", f->self, sizeof(f->self) - 1);
    assert_true(n > 0);
    f->self[n] = '\0';
    snprintf(f->kernel, sizeof(f->kernel), "%s/kernel", f->sf->root);
    int fd = open(f->kernel, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
    struct err e = { 0 };
    assert_int_equal(domain_driver_init(&f->drv, f->loop, f->sf->config, f->sf->run,
                                        f->sf->log, f->sf->state, f->self, &e), 0);
    f->drv.emit = on_event;
    f->drv.emit_opaque = f;
    f->drv.start_timeout_ms = 1500;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    domain_driver_fini(&f->drv);
    evloop_free(f->loop);
    assert_int_equal(store_fixture_free(f->sf), 0);
    unsetenv("FAKE_VMM");
    free(f);
    return 0;
}

static struct domain *define(struct fx *f, const char *name)
{
    char xml[1024];
    snprintf(xml, sizeof(xml),
             "<domain type='kvm'><name>%s</name><memory unit='MiB'>64</memory>"
             "<vcpu>1</vcpu><os><type arch='x86_64'>hvm</type><kernel>%s</kernel></os>"
             "</domain>", name, f->kernel);
    struct domain_def *def;
    struct domain *d;
    bool created;
    struct err e = { 0 };
    assert_int_equal(domain_def_parse(xml, strlen(xml), DOMAIN_PARSE_INACTIVE, &def, &e), 0);
    assert_int_equal(domain_define(&f->drv.table, def, &d, &created, &e), 0);
    return d;
}

/* Runs the loop until done has run n times in all (10 s at most). */
static void run_until(struct fx *f, int n)
{
    time_t end = time(NULL) + 10;
    while (f->calls < n && time(NULL) < end)
        evloop_run_once(f->loop, 100);
    assert_int_equal(f->calls, n);
}

static bool pid_file(struct fx *f, const char *name)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/qemu/%s.pid", f->sf->run, name);
    return access(p, F_OK) == 0;
}

/* Running, not a zombie waiting for whoever reaps orphans. */
static bool alive(pid_t pid)
{
    char p[64], buf[512];
    snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    const char *r = strrchr(buf, ')');
    return r && r[1] == ' ' && r[2] != 'Z' && r[2] != 'X';
}

/* Starts d, which must fail: at once (a VMM that exits before the connect
 * is refused outright) or later from the loop. Either way f->msg has the
 * one error, done ran at most once, and d is unlocked. Returns the VMM's
 * pid (0 when none was spawned). */
static pid_t start_failing(struct fx *f, struct domain *d)
{
    struct err e = { 0 };
    int r = domain_start_async(&f->drv, d, "remoteDispatchDomainCreate", on_done, f, &e);
    if (r < 0) {
        assert_int_equal(f->calls, 0);
        f->rc = r;
        snprintf(f->msg, sizeof(f->msg), "%s", e.msg);
        return 0;
    }
    assert_non_null(d->job);
    /* The pid is known once the VMM has exec'd. */
    for (int i = 0; i < 100 && !d->pid && !f->calls; i++)
        evloop_run_once(f->loop, 100);
    pid_t pid = d->pid;
    run_until(f, 1);
    assert_true(f->rc < 0);
    assert_ptr_equal(f->done_d, d);
    return pid;
}

/* A start that fails after the spawn: one error, nothing left running. */
static void expect_start_failure(struct fx *f, const char *mode, const char *text)
{
    setenv("FAKE_VMM", mode, 1);
    struct domain *d = define(f, "vm");
    pid_t pid = start_failing(f, d);
    if (!strstr(f->msg, text))
        fail_msg("mode %s: message '%s' lacks '%s'", mode, f->msg, text);
    assert_null(d->job);
    assert_int_equal(d->state, DOMAIN_SHUTOFF);
    assert_int_equal(d->reason, DOMAIN_SHUTOFF_FAILED);
    assert_int_equal(d->id, -1);
    assert_null(d->live);
    assert_non_null(d->def);        /* the definition is untouched */
    assert_int_equal(d->pid, 0);
    assert_false(pid_file(f, "vm"));
    assert_true(pid == 0 || !alive(pid));   /* reaped: not even a zombie of ours */
    assert_int_equal(f->started, 0);
}

static void test_start_vmm_exits(void **state)
{
    expect_start_failure(*state, "exit", "cannot open /dev/kvm");
}

static void test_start_no_greeting(void **state)
{
    expect_start_failure(*state, "silent", "did not answer within 1500 ms");
}

static void test_start_caps_refused(void **state)
{
    expect_start_failure(*state, "capsfail", "fake refuses");
}

static void test_start_caps_hangup(void **state)
{
    expect_start_failure(*state, "hangup", "the VMM exited while starting");
}

static void test_start_exec_fails(void **state)
{
    struct fx *f = *state;
    free(f->drv.vmm_path);
    f->drv.vmm_path = strdup("/nonexistent/cvirt-vmm");
    struct domain *d = define(f, "vm");
    assert_int_equal(start_failing(f, d), 0);
    assert_non_null(strstr(f->msg, "cannot execute /nonexistent/cvirt-vmm"));
    assert_true(f->calls <= 1);
    assert_null(d->job);
    assert_int_equal(d->state, DOMAIN_SHUTOFF);
    assert_int_equal(d->reason, DOMAIN_SHUTOFF_FAILED);
}

/* A transient domain whose start fails is gone; done hears NULL. */
static void test_start_transient_failure(void **state)
{
    struct fx *f = *state;
    setenv("FAKE_VMM", "exit", 1);
    struct domain *d = define(f, "tr");
    d->live = d->def;
    d->def = NULL;
    struct err e = { 0 };
    int r = domain_start_async(&f->drv, d, "x", on_done, f, &e);
    if (r == 0) {
        run_until(f, 1);
        assert_true(f->rc < 0);
        assert_null(f->done_d);
    } else {
        assert_non_null(strstr(e.msg, "cannot open /dev/kvm"));
    }
    assert_null(domain_find_name(&f->drv.table, "tr"));
}

static void test_start_then_destroy(void **state)
{
    struct fx *f = *state;
    setenv("FAKE_VMM", "ok", 1);
    struct domain *d = define(f, "vm");
    struct err e = { 0 };
    assert_int_equal(domain_start_async(&f->drv, d, "remoteDispatchDomainCreate", on_done, f,
                                        &e), 0);
    /* Meanwhile every lifecycle operation gets libvirt's lock error. */
    assert_int_equal(domain_op_check(d, DOMAIN_OP_DESTROY, &e), -ETIMEDOUT);
    assert_string_equal(e.msg, "cannot acquire state change lock "
                        "(held by monitor=remoteDispatchDomainCreate)");
    e = (struct err){ 0 };
    assert_int_equal(domain_start_async(&f->drv, d, "y", on_done, f, &e), -ETIMEDOUT);
    assert_int_equal(f->started, 0);        /* not before the VMM answered */
    run_until(f, 1);
    assert_int_equal(f->rc, 0);
    assert_ptr_equal(f->done_d, d);
    assert_null(d->job);
    assert_int_equal(d->state, DOMAIN_RUNNING);
    assert_int_equal(f->started, 1);
    assert_true(pid_file(f, "vm"));
    pid_t pid = d->pid;
    assert_true(alive(pid));

    assert_int_equal(domain_destroy_async(&f->drv, d, "remoteDispatchDomainDestroy", on_done,
                                          f, &e), 0);
    assert_int_equal(domain_op_check(d, DOMAIN_OP_SUSPEND, &e), -ETIMEDOUT);
    run_until(f, 2);
    assert_int_equal(f->rc, 0);
    assert_int_equal(d->state, DOMAIN_SHUTOFF);
    assert_int_equal(d->reason, DOMAIN_SHUTOFF_DESTROYED);
    assert_int_equal(f->stopped, 1);
    assert_int_equal(f->stop_detail, DOMAIN_EVENT_STOPPED_DESTROYED);
    assert_false(pid_file(f, "vm"));
    assert_false(alive(pid));
}

/* The destroy's own done, apart from the operation it ends. */
struct seen2 {
    int calls, rc;
    struct domain *d;
};

static void on_done2(void *opaque, struct domain *d, int rc, const struct err *e)
{
    struct seen2 *s = opaque;
    (void)e;
    s->calls++;
    s->rc = rc;
    s->d = d;
}

/* A destroy during a start does not wait for it: the start ends with an
 * error for its caller, its VMM killed and its files gone, and the
 * destroy succeeds. */
static void test_destroy_ends_start(void **state)
{
    struct fx *f = *state;
    setenv("FAKE_VMM", "silent", 1);
    struct domain *d = define(f, "vm");
    struct err e = { 0 };
    assert_int_equal(domain_start_async(&f->drv, d, "x", on_done, f, &e), 0);
    for (int i = 0; i < 100 && !d->pid; i++)
        evloop_run_once(f->loop, 50);
    pid_t pid = d->pid;
    assert_true(pid > 0);
    struct seen2 s2 = { 0 };
    assert_int_equal(domain_destroy_async(&f->drv, d, "remoteDispatchDomainDestroy", on_done2,
                                          &s2, &e), 0);
    run_until(f, 1);
    assert_int_equal(f->rc, -DOMAIN_ERR_DESTROYED);
    assert_non_null(strstr(f->msg, "destroyed during its start"));
    for (int i = 0; i < 100 && !s2.calls; i++)
        evloop_run_once(f->loop, 50);
    assert_int_equal(s2.calls, 1);
    assert_int_equal(s2.rc, 0);
    assert_null(d->job);
    assert_int_equal(d->id, -1);
    assert_int_equal(d->state, DOMAIN_SHUTOFF);
    assert_false(pid_file(f, "vm"));
    assert_false(alive(pid));
    assert_int_equal(f->started, 0);
}

/* A destroy during a save whose migration hangs: the save fails at once
 * for its caller and leaves no file, the VMM is killed, the destroy ends
 * when it is gone. */
static void test_destroy_ends_hung_save(void **state)
{
    struct fx *f = *state;
    setenv("FAKE_VMM", "savehang", 1);
    struct domain *d = define(f, "vm");
    struct err e = { 0 };
    assert_int_equal(domain_start_async(&f->drv, d, "x", on_done, f, &e), 0);
    run_until(f, 1);
    assert_int_equal(f->rc, 0);
    pid_t pid = d->pid;
    assert_int_equal(domain_save_async(&f->drv, d, NULL, true, "remoteDispatchDomainManagedSave",
                                       on_done, f, &e), 0);
    for (int i = 0; i < 4; i++)
        evloop_run_once(f->loop, 20);
    assert_int_equal(f->calls, 1);            /* still saving */
    struct seen2 s2 = { 0 };
    assert_int_equal(domain_destroy_async(&f->drv, d, "remoteDispatchDomainDestroy", on_done2,
                                          &s2, &e), 0);
    run_until(f, 2);
    assert_int_equal(f->rc, -DOMAIN_ERR_DESTROYED);
    assert_non_null(strstr(f->msg, "destroyed during its save"));
    time_t end = time(NULL) + 10;
    while (!s2.calls && time(NULL) < end)
        evloop_run_once(f->loop, 100);
    assert_int_equal(s2.calls, 1);
    assert_int_equal(s2.rc, 0);
    assert_null(d->job);
    assert_int_equal(d->state, DOMAIN_SHUTOFF);
    assert_int_equal(d->reason, DOMAIN_SHUTOFF_DESTROYED);
    assert_false(d->managed_save);
    char mpath[4096], part[4200];
    assert_int_equal(store_managed_save_path(&f->drv.store, "vm", mpath, sizeof(mpath)), 0);
    snprintf(part, sizeof(part), "%s.part", mpath);
    assert_int_not_equal(access(mpath, F_OK), 0);
    assert_int_not_equal(access(part, F_OK), 0);
    assert_false(alive(pid));
    assert_false(pid_file(f, "vm"));
    assert_int_equal(f->calls, 2);            /* the save heard once */
}

/* A VMM that ignores quit is killed after the quit wait. */
static void test_destroy_kills_stubborn(void **state)
{
    struct fx *f = *state;
    setenv("FAKE_VMM", "stubborn", 1);
    struct domain *d = define(f, "vm");
    struct err e = { 0 };
    assert_int_equal(domain_start_async(&f->drv, d, "x", on_done, f, &e), 0);
    run_until(f, 1);
    assert_int_equal(f->rc, 0);
    pid_t pid = d->pid;
    assert_int_equal(domain_destroy_async(&f->drv, d, "x", on_done, f, &e), 0);
    run_until(f, 2);
    assert_int_equal(f->rc, 0);
    assert_int_equal(d->reason, DOMAIN_SHUTOFF_DESTROYED);
    assert_false(alive(pid));
}

/* Save to a file (the domain stops as saved), restore from it, a managed
 * save taken by the next start, and a save the VMM refuses. */
/* A VMM that outlives SIGKILL is libvirt's system error with EBUSY's
 * text, under a code of its own: EBUSY is a refused operation. */
static void test_unkillable_error(void **state)
{
    struct err e = { 0 };
    (void)state;
    assert_int_equal(domain_err_unkillable(&e, 1234), -DOMAIN_ERR_UNKILLABLE);
    assert_int_not_equal(DOMAIN_ERR_UNKILLABLE, EBUSY);
    assert_string_equal(e.msg, "Failed to terminate process 1234 with SIGKILL: "
                        "Device or resource busy");
}

static void test_save_restore_managed(void **state)
{
    struct fx *f = *state;
    setenv("FAKE_VMM", "ok", 1);
    struct domain *d = define(f, "vm");
    struct err e = { 0 };
    assert_int_equal(domain_start_async(&f->drv, d, "x", on_done, f, &e), 0);
    run_until(f, 1);
    assert_int_equal(f->rc, 0);
    char path[400];
    snprintf(path, sizeof(path), "%s/vm.save", f->sf->root);
    assert_int_equal(domain_save_async(&f->drv, d, path, false, "remoteDispatchDomainSave",
                                       on_done, f, &e), 0);
    assert_int_equal(domain_op_check(d, DOMAIN_OP_START, &e), -ETIMEDOUT);
    assert_non_null(strstr(e.msg, "remoteDispatchDomainSave"));
    run_until(f, 2);
    assert_int_equal(f->rc, 0);
    assert_int_equal(d->state, DOMAIN_SHUTOFF);
    assert_int_equal(d->reason, DOMAIN_SHUTOFF_SAVED);
    assert_int_equal(f->stop_detail, DOMAIN_EVENT_STOPPED_SAVED);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size > 8192 + 16);      /* the snapshot, the XML, the footer */

    assert_int_equal(domain_restore_async(&f->drv, path, "x", on_done, f, &e), 0);
    run_until(f, 3);
    assert_int_equal(f->rc, 0);
    assert_ptr_equal(f->done_d, d);           /* the defined domain, not a new one */
    assert_int_equal(d->state, DOMAIN_RUNNING);
    assert_int_equal(d->reason, DOMAIN_RUNNING_RESTORED);

    assert_int_equal(domain_save_async(&f->drv, d, NULL, true, "x", on_done, f, &e), 0);
    run_until(f, 4);
    assert_int_equal(f->rc, 0);
    assert_true(d->managed_save);
    assert_int_equal(domain_start_async(&f->drv, d, "x", on_done, f, &e), 0);
    run_until(f, 5);
    assert_int_equal(f->rc, 0);
    assert_int_equal(d->reason, DOMAIN_RUNNING_RESTORED);
    assert_false(d->managed_save);
    char mpath[4096];
    assert_int_equal(store_managed_save_path(&f->drv.store, "vm", mpath, sizeof(mpath)), 0);
    assert_int_not_equal(access(mpath, F_OK), 0);
    assert_int_equal(domain_destroy_async(&f->drv, d, "x", on_done, f, &e), 0);
    run_until(f, 6);
    assert_int_equal(f->rc, 0);

    /* A VMM that refuses to save keeps running; no file is left. */
    setenv("FAKE_VMM", "savefail", 1);
    assert_int_equal(domain_start_async(&f->drv, d, "x", on_done, f, &e), 0);
    run_until(f, 7);
    assert_int_equal(f->rc, 0);
    unlink(path);
    assert_int_equal(domain_save_async(&f->drv, d, path, false, "x", on_done, f, &e), 0);
    run_until(f, 8);
    assert_int_equal(f->rc, -EIO);
    assert_string_equal(f->msg, "disk full");
    assert_int_equal(d->state, DOMAIN_RUNNING);
    assert_null(d->job);
    assert_int_not_equal(access(path, F_OK), 0);
    e = (struct err){ 0 };
    assert_int_equal(domain_save_async(&f->drv, d, "relative", false, "x", on_done, f, &e),
                     -EINVAL);
    assert_int_equal(f->calls, 8);
}

/* createXML of a defined domain with a managed save image boots the given
 * XML (the image stays, as with libvirt); the live definition is not
 * replaced while an operation on the domain is in flight. */
static void test_create_xml_over_managed_save(void **state)
{
    struct fx *f = *state;
    setenv("FAKE_VMM", "ok", 1);
    struct domain *d = define(f, "vm");
    struct err e = { 0 };
    assert_int_equal(domain_start_async(&f->drv, d, "x", on_done, f, &e), 0);
    run_until(f, 1);
    assert_int_equal(domain_save_async(&f->drv, d, NULL, true, "x", on_done, f, &e), 0);
    run_until(f, 2);
    assert_int_equal(f->rc, 0);
    assert_true(d->managed_save);
    char *xml = domain_def_format(d->def, DOMAIN_FORMAT_INACTIVE);
    assert_non_null(xml);
    struct domain_def *def, *def2;
    assert_int_equal(domain_def_parse(xml, strlen(xml), 0, &def, &e), 0);
    assert_int_equal(domain_def_parse(xml, strlen(xml), 0, &def2, &e), 0);
    free(xml);
    struct domain *got;
    assert_int_equal(domain_add_transient(&f->drv.table, def, &got, &e), 0);
    assert_ptr_equal(got, d);
    assert_ptr_equal(d->live, def);
    assert_int_equal(domain_create_async(&f->drv, d, "remoteDispatchDomainCreateXML", on_done,
                                         f, &e), 0);
    e = (struct err){ 0 };
    assert_true(domain_add_transient(&f->drv.table, def2, &got, &e) < 0);
    assert_ptr_equal(d->live, def);
    domain_def_free(def2);
    run_until(f, 3);
    assert_int_equal(f->rc, 0);
    assert_int_equal(d->state, DOMAIN_RUNNING);
    assert_int_equal(d->reason, DOMAIN_RUNNING_BOOTED);
    assert_true(d->managed_save);
    char mpath[4096];
    assert_int_equal(store_managed_save_path(&f->drv.store, "vm", mpath, sizeof(mpath)), 0);
    assert_int_equal(access(mpath, F_OK), 0);
    assert_int_equal(domain_destroy_async(&f->drv, d, "x", on_done, f, &e), 0);
    run_until(f, 4);
    assert_int_equal(f->rc, 0);
}

/* The daemon's own starts (autostart, restart after power-off) go on from
 * the loop too, and hold the lock under their own name meanwhile. */
static void test_start_logged(void **state)
{
    struct fx *f = *state;
    setenv("FAKE_VMM", "ok", 1);
    struct domain *d = define(f, "vm");
    domain_start_logged(&f->drv, d, "autostart");
    assert_non_null(d->job);
    struct err e = { 0 };
    assert_int_equal(domain_op_check(d, DOMAIN_OP_DESTROY, &e), -ETIMEDOUT);
    assert_non_null(strstr(e.msg, "monitor=autostart"));
    for (int i = 0; i < 100 && d->job; i++)
        evloop_run_once(f->loop, 100);
    assert_null(d->job);
    assert_int_equal(d->state, DOMAIN_RUNNING);
    assert_int_equal(f->started, 1);
    assert_true(pid_file(f, "vm"));
}

/* The daemon stops while a start waits: the operation ends, the VMM too. */
static void test_cancel_mid_start(void **state)
{
    struct fx *f = *state;
    setenv("FAKE_VMM", "silent", 1);
    struct domain *d = define(f, "vm");
    struct err e = { 0 };
    /* Once while the VMM is being spawned, once while it is connected. */
    for (int waited = 0; waited < 2; waited++) {
        char pids[400];
        snprintf(pids, sizeof(pids), "%s/pids.%d", f->sf->root, waited);
        setenv("FAKE_VMM_PIDS", pids, 1);
        f->calls = 0;
        assert_int_equal(domain_start_async(&f->drv, d, "x", on_done, f, &e), 0);
        for (int i = 0; waited && i < 100 && !d->pid; i++)
            evloop_run_once(f->loop, 50);
        assert_true(waited ? d->pid > 0 : d->pid == 0);
        pid_t known = d->pid;
        domain_jobs_cancel(&f->drv);
        assert_int_equal(f->calls, 1);
        assert_int_equal(f->rc, -ECANCELED);
        assert_int_equal(d->state, DOMAIN_SHUTOFF);
        assert_null(d->job);
        assert_false(pid_file(f, "vm"));
        /* The VMM it had spawned is gone: killed before its main ran (it
         * would have written its pid by now), or after. */
        if (known)
            assert_false(alive(known));
        FILE *pf = fopen(pids, "r");
        if (!pf) {
            usleep(500000);
            pf = fopen(pids, "r");
        }
        int pid = 0;
        if (pf) {
            /* Empty when it was killed between the open and the write. */
            if (fscanf(pf, "%d", &pid) == 1)
                assert_false(alive(pid));
            fclose(pf);
        }
    }
    unsetenv("FAKE_VMM_PIDS");
}

/* ---- chains: save, work with no VMM, restore ---- */

struct offline_seen {
    int calls;
    int state;                  /* d's state while offline ran */
    bool vmm;                   /* a VMM was still attached */
    int fail;                   /* errno to fail with, 0: succeed */
    const char *then_mode;      /* FAKE_VMM for the start that follows */
};

static int offline_step(void *opaque, struct domain *d, struct err *e)
{
    struct fx *f = opaque;
    struct offline_seen *o = f->offline;
    o->calls++;
    o->state = d->state;
    o->vmm = d->vmm != NULL || d->pid != 0;
    if (o->then_mode)
        setenv("FAKE_VMM", o->then_mode, 1);
    if (o->fail)
        return err_set(e, o->fail, "offline step refused");
    return 0;
}

static struct domain *running(struct fx *f)
{
    setenv("FAKE_VMM", "ok", 1);
    struct domain *d = define(f, "vm");
    struct err e = { 0 };
    assert_int_equal(domain_start_async(&f->drv, d, "x", on_done, f, &e), 0);
    run_until(f, 1);
    assert_int_equal(f->rc, 0);
    assert_int_equal(d->state, DOMAIN_RUNNING);
    return d;
}

/* The work runs once, between the stop and the restore, and the lock is
 * held under the chain's name from the first step to the last. */
static void test_chain_save_restore(void **state)
{
    struct fx *f = *state;
    struct offline_seen o = { 0 };
    f->offline = &o;
    struct domain *d = running(f);
    pid_t old = d->pid;
    char path[400];
    snprintf(path, sizeof(path), "%s/chain.state", f->sf->root);
    struct domain_chain ch = { .save = path, .offline = offline_step, .restore = path };
    struct err e = { 0 };
    assert_int_equal(domain_chain_async(&f->drv, d, &ch, "remoteDispatchDomainSnapshotCreateXML",
                                        on_done, f, &e), 0);
    assert_int_equal(domain_op_check(d, DOMAIN_OP_DESTROY, &e), -ETIMEDOUT);
    assert_non_null(strstr(e.msg, "monitor=remoteDispatchDomainSnapshotCreateXML"));
    e = (struct err){ 0 };
    assert_int_equal(domain_chain_async(&f->drv, d, &ch, "y", on_done, f, &e), -ETIMEDOUT);
    /* Still locked between the save's end and the restore's. */
    for (int i = 0; i < 200 && o.calls == 0; i++)
        evloop_run_once(f->loop, 50);
    assert_int_equal(o.calls, 1);
    assert_non_null(d->job);
    run_until(f, 2);
    assert_int_equal(f->rc, 0);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.state, DOMAIN_SHUTOFF);
    assert_false(o.vmm);
    assert_null(d->job);
    assert_int_equal(d->state, DOMAIN_RUNNING);
    assert_int_equal(d->reason, DOMAIN_RUNNING_RESTORED);
    assert_int_not_equal(d->pid, old);
    assert_false(alive(old));
    assert_int_equal(f->stopped, 1);
    assert_int_equal(f->started, 2);
    assert_false(d->managed_save);
}

/* A destroy during a chain's restart ends it with the destroy's error;
 * the saved state is dropped, not kept as a managed save image that the
 * next start would resume. */
static void test_chain_destroyed_mid_restore(void **state)
{
    struct fx *f = *state;
    struct offline_seen o = { .then_mode = "silent" };
    f->offline = &o;
    struct domain *d = running(f);
    char path[400];
    snprintf(path, sizeof(path), "%s/chain.state", f->sf->root);
    struct domain_chain ch = { .save = path, .offline = offline_step, .restore = path };
    struct err e = { 0 };
    assert_int_equal(domain_chain_async(&f->drv, d, &ch, "remoteDispatchDomainSnapshotCreateXML",
                                        on_done, f, &e), 0);
    for (int i = 0; i < 200 && !(o.calls == 1 && d->pid); i++)
        evloop_run_once(f->loop, 50);
    assert_int_equal(o.calls, 1);
    assert_non_null(d->job);
    assert_int_equal(access(path, F_OK), 0);
    struct seen2 s2 = { 0 };
    assert_int_equal(domain_destroy_async(&f->drv, d, "remoteDispatchDomainDestroy", on_done2,
                                          &s2, &e), 0);
    run_until(f, 2);
    assert_int_equal(f->rc, -DOMAIN_ERR_DESTROYED);
    assert_int_equal(s2.calls, 1);
    assert_int_equal(s2.rc, 0);
    assert_null(d->job);
    assert_int_equal(d->id, -1);
    assert_false(d->managed_save);
    assert_int_not_equal(access(path, F_OK), 0);
    char mpath[4096];
    assert_int_equal(store_managed_save_path(&f->drv.store, "vm", mpath, sizeof(mpath)), 0);
    assert_int_not_equal(access(mpath, F_OK), 0);
}

/* A failed step restores the VM as it was; done hears the step's error. */
static void test_chain_offline_fails(void **state)
{
    struct fx *f = *state;
    struct offline_seen o = { .fail = EIO };
    f->offline = &o;
    struct domain *d = running(f);
    char path[400];
    snprintf(path, sizeof(path), "%s/chain.state", f->sf->root);
    struct domain_chain ch = { .save = path, .offline = offline_step, .restore = "/nonexistent" };
    struct err e = { 0 };
    assert_int_equal(domain_chain_async(&f->drv, d, &ch, "x", on_done, f, &e), 0);
    run_until(f, 2);
    assert_int_equal(f->rc, -EIO);
    assert_string_equal(f->msg, "offline step refused");
    assert_int_equal(o.calls, 1);
    assert_int_equal(d->state, DOMAIN_RUNNING);     /* from the save, not the other file */
    assert_int_equal(d->reason, DOMAIN_RUNNING_RESTORED);
    assert_null(d->job);
}

/* A restore that fails keeps the saved state as the managed save image;
 * the next start resumes it. */
static void test_chain_restore_fails(void **state)
{
    struct fx *f = *state;
    struct offline_seen o = { .then_mode = "exit" };
    f->offline = &o;
    struct domain *d = running(f);
    char path[400], mpath[4096];
    snprintf(path, sizeof(path), "%s/chain.state", f->sf->root);
    struct domain_chain ch = { .save = path, .offline = offline_step, .restore = path };
    struct err e = { 0 };
    int r = domain_chain_async(&f->drv, d, &ch, "x", on_done, f, &e);
    assert_int_equal(r, 0);
    run_until(f, 2);
    assert_true(f->rc < 0);
    assert_non_null(strstr(f->msg, "cannot open /dev/kvm"));
    assert_non_null(strstr(f->msg, "managed save image"));
    assert_int_equal(d->state, DOMAIN_SHUTOFF);
    assert_null(d->job);
    assert_true(d->managed_save);
    assert_int_equal(store_managed_save_path(&f->drv.store, "vm", mpath, sizeof(mpath)), 0);
    assert_int_equal(access(mpath, F_OK), 0);
    assert_int_not_equal(access(path, F_OK), 0);
    setenv("FAKE_VMM", "ok", 1);
    assert_int_equal(domain_start_async(&f->drv, d, "x", on_done, f, &e), 0);
    run_until(f, 3);
    assert_int_equal(f->rc, 0);
    assert_int_equal(d->reason, DOMAIN_RUNNING_RESTORED);
    assert_false(d->managed_save);
}

/* A save the VMM refuses: no step runs, the VM runs on. */
static void test_chain_save_fails(void **state)
{
    struct fx *f = *state;
    struct offline_seen o = { 0 };
    f->offline = &o;
    setenv("FAKE_VMM", "savefail", 1);
    struct domain *d = define(f, "vm");
    struct err e = { 0 };
    assert_int_equal(domain_start_async(&f->drv, d, "x", on_done, f, &e), 0);
    run_until(f, 1);
    char path[400];
    snprintf(path, sizeof(path), "%s/chain.state", f->sf->root);
    struct domain_chain ch = { .save = path, .offline = offline_step, .restore = path };
    assert_int_equal(domain_chain_async(&f->drv, d, &ch, "x", on_done, f, &e), 0);
    run_until(f, 2);
    assert_int_equal(f->rc, -EIO);
    assert_string_equal(f->msg, "disk full");
    assert_int_equal(o.calls, 0);
    assert_int_equal(d->state, DOMAIN_RUNNING);
    assert_null(d->job);
}

/* Destroy, the step, a fresh boot; and on a shut-off domain the step runs
 * at once, with nothing more to do when no start is asked (1, no done). */
static void test_chain_destroy_boot_and_offline(void **state)
{
    struct fx *f = *state;
    struct offline_seen o = { 0 };
    f->offline = &o;
    struct domain *d = running(f);
    struct domain_chain ch = { .offline = offline_step, .start = true };
    struct err e = { 0 };
    assert_int_equal(domain_chain_async(&f->drv, d, &ch, "x", on_done, f, &e), 0);
    run_until(f, 2);
    assert_int_equal(f->rc, 0);
    assert_int_equal(o.calls, 1);
    assert_int_equal(f->stop_detail, DOMAIN_EVENT_STOPPED_DESTROYED);
    assert_int_equal(d->reason, DOMAIN_RUNNING_BOOTED);
    assert_int_equal(domain_destroy_async(&f->drv, d, "x", on_done, f, &e), 0);
    run_until(f, 3);

    struct domain_chain off = { .offline = offline_step };
    assert_int_equal(domain_chain_async(&f->drv, d, &off, "x", on_done, f, &e), 1);
    assert_int_equal(o.calls, 2);
    assert_null(d->job);
    o.fail = EPERM;
    assert_int_equal(domain_chain_async(&f->drv, d, &off, "x", on_done, f, &e), -EPERM);
    assert_string_equal(e.msg, "offline step refused");
    assert_int_equal(f->calls, 3);
    assert_int_equal(d->state, DOMAIN_SHUTOFF);
}

/* REVIEW: undefine while a chain's save runs: the domain becomes
 * transient, the save's exit frees it, and done hears rc < 0 with e NULL. */
static int null_err_calls;
static void on_done_check(void *opaque, struct domain *d, int rc, const struct err *e)
{
    if (rc < 0 && !e)
        null_err_calls++;
    on_done(opaque, d, rc, e);
}

static void test_review_undefine_mid_chain(void **state)
{
    struct fx *f = *state;
    struct offline_seen o = { 0 };
    f->offline = &o;
    struct domain *d = running(f);
    char path[400];
    snprintf(path, sizeof(path), "%s/chain.state", f->sf->root);
    struct domain_chain ch = { .save = path, .offline = offline_step, .restore = path };
    struct err e = { 0 };
    assert_int_equal(domain_chain_async(&f->drv, d, &ch, "x", on_done_check, f, &e), 0);
    bool removed;
    /* what remote_domain.c's undefine() does: no job check */
    assert_int_equal(domain_undefine(&f->drv.table, d, &removed, &e), 0);
    assert_false(removed);
    run_until(f, 2);
    fprintf(stderr, "REVIEW: rc=%d null_err_calls=%d offline calls=%d domains=%zu "
            "state file exists=%d\n", f->rc, null_err_calls, o.calls, f->drv.table.n,
            access(path, F_OK) == 0);
    assert_int_equal(null_err_calls, 0);
}

/* REVIEW: the daemon stops after the save of a chain completed and quit
 * was sent: done hears -ECANCELED while the VMM exits as saved. */
static void test_review_cancel_after_save(void **state)
{
    struct fx *f = *state;
    struct offline_seen o = { 0 };
    f->offline = &o;
    struct domain *d = running(f);
    pid_t pid = d->pid;
    char path[400];
    snprintf(path, sizeof(path), "%s/chain.state", f->sf->root);
    struct domain_chain ch = { .save = path, .offline = offline_step, .restore = path };
    struct err e = { 0 };
    assert_int_equal(domain_chain_async(&f->drv, d, &ch, "x", on_done_check, f, &e), 0);
    for (int i = 0; i < 200 && !d->saving; i++)
        evloop_run_once(f->loop, 50);
    assert_true(d->saving);
    domain_jobs_cancel(&f->drv);
    bool active_at_done = domain_is_active(d);
    for (int i = 0; i < 50 && alive(pid); i++)
        usleep(20000);
    fprintf(stderr, "REVIEW: calls=%d rc=%d msg='%s' active=%d vmm alive=%d state file=%d "
            "managed_save=%d offline=%d\n", f->calls, f->rc, f->msg, active_at_done, alive(pid),
            access(path, F_OK) == 0, d->managed_save, o.calls);
}

/* REVIEW: the daemon stops while a managed save's migrate runs. */
static void test_review_cancel_mid_managed_save(void **state)
{
    struct fx *f = *state;
    struct domain *d = running(f);
    struct err e = { 0 };
    assert_int_equal(domain_save_async(&f->drv, d, NULL, true, "x", on_done_check, f, &e), 0);
    domain_jobs_cancel(&f->drv);
    usleep(300000);         /* the fake writes its file and answers */
    char mpath[4096];
    assert_int_equal(store_managed_save_path(&f->drv.store, "vm", mpath, sizeof(mpath)), 0);
    fprintf(stderr, "REVIEW: calls=%d rc=%d active=%d image on disk=%d (a restarted daemon: "
            "managed_save=%d) vmm alive=%d\n", f->calls, f->rc, domain_is_active(d),
            access(mpath, F_OK) == 0, store_has_managed_save(&f->drv.store, "vm"),
            alive(d->pid));
    /* the next start (as after a restart) */
    domain_unwatch(&f->drv, d);
    kill(d->pid, SIGKILL);
    domain_set_stopped(&f->drv.table, d, DOMAIN_SHUTOFF_DESTROYED);
    d->managed_save = store_has_managed_save(&f->drv.store, "vm");
    int r = domain_start_async(&f->drv, d, "x", on_done_check, f, &e);
    fprintf(stderr, "REVIEW: start after restart: %d '%s'\n", r, r < 0 ? e.msg : "");
    if (r == 0)
        run_until(f, 3);
}

int main(int argc, char **argv)
{
    const char *mode = getenv("FAKE_VMM");
    if (mode)
        return fake_vmm(mode, argc, argv);
    /* The fake VMMs are detached: nobody of ours to reap. */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_start_vmm_exits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_no_greeting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_caps_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_caps_hangup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_exec_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_transient_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_then_destroy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_kills_stubborn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_ends_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_ends_hung_save, setup, teardown),
        cmocka_unit_test(test_unkillable_error),
        cmocka_unit_test_setup_teardown(test_save_restore_managed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_xml_over_managed_save, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_logged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_mid_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_save_restore, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_destroyed_mid_restore, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_offline_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_restore_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_save_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_destroy_boot_and_offline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_review_undefine_mid_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_review_cancel_after_save, setup, teardown),
        cmocka_unit_test_setup_teardown(test_review_cancel_mid_managed_save, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
