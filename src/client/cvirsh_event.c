/* event: waits for domain lifecycle events and prints them as virsh does. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "client/cvirsh_cmds.h"
#include "client/cvirsh_dom.h"

static const char *const event_names[] = {
    "Defined", "Undefined", "Started", "Suspended", "Resumed", "Stopped",
    "Shutdown", "PMSuspended", "Crashed",
};
static const char *const d_defined[] = { "Added", "Updated", "Renamed", "Snapshot" };
static const char *const d_undefined[] = { "Removed", "Renamed" };
static const char *const d_started[] = { "Booted", "Migrated", "Restored", "Snapshot", "Event wakeup" };
static const char *const d_suspended[] = {
    "Paused", "Migrated", "I/O Error", "Watchdog", "Restored", "Snapshot",
    "API error", "Post-copy", "Post-copy Error",
};
static const char *const d_resumed[] = { "Unpaused", "Migrated", "Snapshot", "Post-copy", "Post-copy Error" };
static const char *const d_stopped[] = {
    "Shutdown", "Destroyed", "Crashed", "Migrated", "Saved", "Failed", "Snapshot",
};
static const char *const d_shutdown[] = {
    "Finished", "Finished after guest request", "Finished after host request",
};
static const char *const d_pmsuspended[] = { "Memory", "Disk" };
static const char *const d_crashed[] = { "Panicked", "Crashloaded" };

#define N(a) ((int)(sizeof(a) / sizeof(a[0])))
#define DETAIL(a) (detail >= 0 && detail < N(a) ? a[detail] : "unknown")

static const char *detail_str(int event, int detail)
{
    switch (event) {
    case 0: return DETAIL(d_defined);
    case 1: return DETAIL(d_undefined);
    case 2: return DETAIL(d_started);
    case 3: return DETAIL(d_suspended);
    case 4: return DETAIL(d_resumed);
    case 5: return DETAIL(d_stopped);
    case 6: return DETAIL(d_shutdown);
    case 7: return DETAIL(d_pmsuspended);
    case 8: return DETAIL(d_crashed);
    default: return "unknown";
    }
}

struct event_state {
    struct cvirsh *ctl;
    bool has_dom;
    unsigned char uuid[16];
    bool timestamp;
    int count;
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    interrupted = 1;
}

static void on_lifecycle(void *opaque, const remote_nonnull_domain *dom,
                         int event, int detail)
{
    struct event_state *st = opaque;
    if (st->has_dom && memcmp(st->uuid, dom->uuid, 16) != 0)
        return;
    if (st->timestamp) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        struct tm tm;
        char when[32];
        gmtime_r(&tv.tv_sec, &tm);
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
        cvirsh_print(st->ctl, "%s.%03d+0000: ", when, (int)(tv.tv_usec / 1000));
    }
    cvirsh_print(st->ctl, "event 'lifecycle' for domain '%s': %s %s\n", dom->name,
                 event >= 0 && event < N(event_names) ? event_names[event] : "unknown",
                 detail_str(event, detail));
    fflush(stdout);
    st->count++;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Options as virsh checks them; false after printing the error. */
static bool event_options(struct cvirsh *ctl, const struct cvirsh_cmd *cmd, int *timeout_s)
{
    const char *ev = cvirsh_opt_str(cmd, "event");
    if (cvirsh_opt_bool(cmd, "list")) {
        cvirsh_print(ctl, "lifecycle\n");
        return false;
    }
    if (!ev && !cvirsh_opt_bool(cmd, "all")) {
        cvirsh_error(ctl, "one of --list, --all, or --event <type> is required");
        return false;
    }
    if (ev && strcmp(ev, "lifecycle") != 0) {
        cvirsh_error(ctl, "unknown event type %s", ev);
        return false;
    }
    *timeout_s = 0;
    const char *t = cvirsh_opt_str(cmd, "timeout");
    if (t) {
        char *end;
        errno = 0;
        long v = strtol(t, &end, 10);
        if (errno || *end || !*t || v < 1 || v > 0x7fffffff / 1000) {
            cvirsh_error(ctl, "Numeric value '%s' for <timeout> option is malformed or out of range", t);
            return false;
        }
        *timeout_s = (int)v;
    }
    return true;
}

bool cvirsh_cmd_event(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    int timeout_s;
    if (!event_options(ctl, cmd, &timeout_s))
        return cvirsh_opt_bool(cmd, "list");
    struct event_state st = { .ctl = ctl, .timestamp = cvirsh_opt_bool(cmd, "timestamp") };
    remote_nonnull_domain dom = {0};
    if (cvirsh_opt_str(cmd, "domain")) {
        if (!cvirsh_lookup_domain(ctl, cmd, &dom))
            return false;
        memcpy(st.uuid, dom.uuid, 16);
        st.has_dom = true;
    }
    struct err e = {0};
    /* The daemon filters by domain; the callback checks again. */
    int rc = client_event_lifecycle_register(ctl->conn, st.has_dom ? &dom : NULL,
                                             on_lifecycle, &st, &e);
    cvirsh_domain_free(&dom);
    if (rc < 0) {
        cvirsh_report(ctl, &e);
        return false;
    }
    bool loop = cvirsh_opt_bool(cmd, "loop");
    long long deadline = timeout_s ? now_ms() + timeout_s * 1000LL : 0;
    struct sigaction sa = { .sa_handler = on_sigint }, old;
    sigaction(SIGINT, &sa, &old);
    interrupted = 0;
    bool ok = true, timed_out = false;
    while (!interrupted && (loop || st.count == 0)) {
        int wait = 500;     /* short, so that ^C is noticed */
        if (deadline) {
            long long left = deadline - now_ms();
            if (left <= 0) {
                timed_out = true;
                break;
            }
            if (left < wait)
                wait = (int)left;
        }
        if (client_event_wait(ctl->conn, wait, &e) < 0) {
            cvirsh_report(ctl, &e);
            ok = false;
            break;
        }
    }
    sigaction(SIGINT, &old, NULL);
    if (timed_out)
        cvirsh_print(ctl, "event loop timed out\n");
    struct err de = {0};
    if (ok)
        client_event_lifecycle_deregister(ctl->conn, &de);
    cvirsh_print(ctl, "events received: %d\n", st.count);
    return ok;
}
