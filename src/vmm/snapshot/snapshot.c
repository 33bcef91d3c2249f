/* Command line, QMP commands and restore for save/restore and migration. */
#include "snapshot/snapshot.h"

#include <errno.h>
#include <json-c/json.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control.h"
#include "pci/pci.h"
#include "snapshot/format.h"
#include "snapshot/migrate.h"
#include "snapshot/snapshot_int.h"
#include "util/evloop.h"
#include "util/log.h"
#include "vm.h"

/* One VM per process: the QMP commands of other modules find it here. */
static struct snapshot *the_snapshot;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Options that describe the host side, not the machine: never saved, and
 * the only ones --restore accepts. All take a value. */
static const char *const host_opts[] = { "--console", "--control", NULL };

/* Matches "--name VALUE" or "--name=VALUE" at argv[*i]; advances *i past
 * the value and returns it, or NULL when argv[*i] is not that option. */
static const char *match_opt(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    (*i)++;
    return argv[*i];
}

static int push_arg(struct snapshot *s, char ***v, int *n, const char *a)
{
    char **nv = realloc(*v, ((size_t)*n + 2) * sizeof(char *));
    if (!nv)
        return -ENOMEM;
    *v = nv;
    nv[*n] = strdup(a);
    if (!nv[*n])
        return -ENOMEM;
    nv[++*n] = NULL;
    (void)s;
    return 0;
}

static void free_args(char **v, int n)
{
    for (int i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

void snapshot_free(struct snapshot *s)
{
    if (!s)
        return;
    if (the_snapshot == s)
        the_snapshot = NULL;
    snap_migrate_free(s);
    if (s->have_file)
        snap_file_close(&s->file);
    free_args(s->mach_argv, s->mach_argc);
    free_args(s->run_argv, s->run_argc);
    free(s);
}

/* A tap name goes into the --net value as a token: no comma may smuggle
 * in another option. */
static int add_net_tap(struct snapshot *s, const char *name, struct err *e)
{
    if (!name[0] || strlen(name) >= IFNAMSIZ || strchr(name, ',') || strchr(name, '/'))
        return err_set(e, EINVAL, "--net-tap '%s': not an interface name (1 to %d bytes, "
                       "no ',' or '/')", name, IFNAMSIZ - 1);
    if (s->nnet_taps == SNAP_NET_TAPS_MAX)
        return err_set(e, EINVAL, "--net-tap %s: at most %d may be given", name,
                       SNAP_NET_TAPS_MAX);
    s->net_taps[s->nnet_taps++] = name;
    return 0;
}

/* Splits the command line into machine options (saved in snapshots) and
 * host options, taking out ours. */
static int split_cmdline(struct snapshot *s, int argc, char **argv, char ***host, int *nhost,
                         struct err *e)
{
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if ((v = match_opt(argc, argv, &i, "--restore", &missing))) {
            s->restore_path = v;
            continue;
        }
        if ((v = match_opt(argc, argv, &i, "--incoming", &missing))) {
            if (!strcmp(v, "defer"))
                s->defer = true;
            else if (!strncmp(v, "file:", 5))
                s->restore_path = v + 5;
            else if (!strncmp(v, "tcp:", 4))
                s->incoming = v + 4;
            else
                return err_set(e, EINVAL,
                               "--incoming '%s': expected file:PATH, tcp:HOST:PORT or defer", v);
            continue;
        }
        if ((v = match_opt(argc, argv, &i, "--net-tap", &missing))) {
            int r = add_net_tap(s, v, e);
            if (r < 0)
                return r;
            continue;
        }
        if (!strcmp(argv[i], "--paused")) {
            s->paused = true;
            continue;
        }
        bool is_host = false;
        for (unsigned k = 0; host_opts[k] && !missing; k++) {
            int j = i;
            if ((v = match_opt(argc, argv, &j, host_opts[k], &missing))) {
                if (push_arg(s, host, nhost, host_opts[k]) < 0 || push_arg(s, host, nhost, v) < 0)
                    return err_set(e, ENOMEM, "out of memory");
                i = j;
                is_host = true;
                break;
            }
        }
        if (missing)
            return err_set(e, EINVAL, "option '%s' needs a value", argv[i]);
        if (!is_host && push_arg(s, &s->mach_argv, &s->mach_argc, argv[i]) < 0)
            return err_set(e, ENOMEM, "out of memory");
    }
    if ((s->restore_path != NULL) + (s->incoming != NULL) + s->defer > 1)
        return err_set(e, EINVAL, "--restore and the forms of --incoming exclude each other");
    return 0;
}

/* --restore: the machine options come from the file. */
static int cmdline_from_file(struct snapshot *s, struct err *e)
{
    if (s->mach_argc > 0)
        return err_set(e, EINVAL, "--restore takes the machine from %s; '%s' cannot be given with it "
                       "(only --console, --control, --net-tap and --paused)", s->restore_path, s->mach_argv[0]);
    int r = snap_file_open(&s->file, s->restore_path, e);
    if (r < 0)
        return r;
    s->have_file = true;
    int n;
    char **saved;
    r = snap_state_config(&s->file.state, &n, &saved, e);
    if (r < 0) {
        err_prefix(e, "snapshot %s: ", s->restore_path);
        return r;
    }
    free_args(s->mach_argv, s->mach_argc);
    s->mach_argv = saved;
    s->mach_argc = n;
    return 0;
}

int snapshot_cmdline(int *argc, char ***argv, struct snapshot **out, struct err *e)
{
    struct snapshot *s = calloc(1, sizeof(*s));
    if (!s)
        return err_set(e, ENOMEM, "out of memory");
    s->downtime_limit_ms = 300;
    s->mig_fd = -1;
    s->in_lfd = s->in_wake = -1;
    atomic_store(&s->in_fd, -1);
    char **host = NULL;
    int nhost = 0;
    int r = split_cmdline(s, *argc, *argv, &host, &nhost, e);
    if (r == 0 && s->restore_path)
        r = cmdline_from_file(s, e);
    /* The new taps go where the machine's options are kept, so that a
     * later save or migration records them too. */
    if (r == 0)
        r = snap_machine_set_taps(s->mach_argc, s->mach_argv, s->net_taps, s->nnet_taps, e);
    if (r == 0) {
        r = push_arg(s, &s->run_argv, &s->run_argc, (*argv)[0]);
        for (int i = 0; r == 0 && i < s->mach_argc; i++)
            r = push_arg(s, &s->run_argv, &s->run_argc, s->mach_argv[i]);
        for (int i = 0; r == 0 && i < nhost; i++)
            r = push_arg(s, &s->run_argv, &s->run_argc, host[i]);
        if (r < 0)
            err_set(e, ENOMEM, "out of memory");
    }
    free_args(host, nhost);
    if (r < 0) {
        snapshot_free(s);
        return r;
    }
    *argc = s->run_argc;
    *argv = s->run_argv;
    *out = s;
    return 0;
}

void snap_emit_migration(struct snapshot *s, const char *status)
{
    snap_migrate_lock(s);
    snprintf(s->status, sizeof(s->status), "%s", status);
    snap_migrate_unlock(s);
    if (!s->vm->control)
        return;
    struct json_object *d = json_object_new_object();
    json_object_object_add(d, "status", json_object_new_string(status));
    control_emit_event(s->vm->control, "MIGRATION", d);
}

/* Parks the vCPUs (STOP as the stop command sends it); true when this
 * call stopped a running VM. */
bool snap_stop_vm(struct snapshot *s)
{
    if (vm_paused(s->vm))
        return false;
    vm_pause(s->vm);
    if (s->vm->control)
        control_emit_event(s->vm->control, "STOP", NULL);
    return true;
}

void snap_resume_vm(struct snapshot *s)
{
    vm_resume(s->vm);
    if (s->vm->control)
        control_emit_event(s->vm->control, "RESUME", NULL);
}

/* Save to a file: stop, write, stay paused (QEMU's "postmigrate"). */
static int save_to_file(struct snapshot *s, const char *path, struct err *e)
{
    int64_t t0 = now_ms();
    snap_emit_migration(s, "setup");
    bool stopped = snap_stop_vm(s);
    snap_emit_migration(s, "active");
    struct snapbuf b;
    snapbuf_init(&b);
    /* Requests the devices took finish first: the queues are saved with
     * every chain either returned or still available to the driver. They
     * stay quiesced until memory is in the file too: a chain the driver
     * made available before the pause is taken when the devices wake up,
     * and its data and used-ring entry would then reach the saved memory
     * while the saved queue state still has it available, so the
     * restored device would run it, and complete its head, a second time. */
    if (s->vm->pci)
        pci_bus_quiesce(s->vm->pci, true);
    char **args = NULL;
    int nargs = 0;
    int r = snap_machine_args(s->vm, s->mach_argc, s->mach_argv, &args, &nargs, e);
    if (r == 0)
        r = snap_state_save(&b, s->vm, nargs, args, e);
    snap_args_free(args, nargs);
    if (r == 0)
        r = snap_file_save(path, &b, s->vm->ram, s->vm->ram_size,
                           s->have_file ? &s->file : NULL, e);
    if (s->vm->pci)
        pci_bus_quiesce(s->vm->pci, false);
    snapbuf_free(&b);
    s->total_ms = now_ms() - t0;
    s->downtime_ms = s->total_ms;
    s->ram_total = s->vm->ram_size;
    s->ram_transferred = r == 0 ? s->vm->ram_size : 0;
    if (r < 0) {
        snprintf(s->error, sizeof(s->error), "%s", e->msg);
        snap_emit_migration(s, "failed");
        /* A failed save leaves the VM as it found it. */
        if (stopped)
            snap_resume_vm(s);
        return r;
    }
    s->error[0] = '\0';
    atomic_store(&s->postmigrate, true);
    snap_emit_migration(s, "completed");
    log_info("saved the VM to %s in %lld ms", path, (long long)s->total_ms);
    return 0;
}

static int cmd_migrate(void *opaque, struct json_object *args, struct json_object **ret,
                       enum control_err_class *cls, struct err *e)
{
    struct snapshot *s = opaque;
    static const char *const allowed[] = { "uri", "blk", "inc", "detach", "resume", NULL };
    int r = control_args_only(args, allowed, e);
    const char *uri;
    if (r == 0)
        r = control_arg_str(args, "uri", true, &uri, e);
    if (r < 0)
        return r;
    if (snap_migrate_active(s))
        return err_set(e, EBUSY, "There's a migration process in progress");
    if (atomic_load(&s->inmigrate))
        return err_set(e, EBUSY, "Guest is waiting for an incoming migration");
    if (!strncmp(uri, "file:", 5) && uri[5])
        return save_to_file(s, uri + 5, e);
    if (!strncmp(uri, "tcp:", 4))
        return snap_migrate_start(s, uri + 4, e);
    return err_set(e, EINVAL, "Invalid parameter 'uri': expected file:PATH or tcp:HOST:PORT");
}

/* QEMU's migrate-incoming, for a destination started with --incoming
 * defer: the machine waits, its control socket serving, until this names
 * where the migration comes from. */
static int cmd_migrate_incoming(void *opaque, struct json_object *args, struct json_object **ret,
                                enum control_err_class *cls, struct err *e)
{
    struct snapshot *s = opaque;
    static const char *const allowed[] = { "uri", NULL };
    int r = control_args_only(args, allowed, e);
    const char *uri;
    if (r == 0)
        r = control_arg_str(args, "uri", true, &uri, e);
    if (r < 0)
        return r;
    if (!s->defer)
        return err_set(e, EINVAL, "'-incoming' was not specified on the command line");
    if (s->incoming)
        return err_set(e, EBUSY, "The incoming migration has already been started");
    if (strncmp(uri, "tcp:", 4) || !uri[4] || strlen(uri) >= sizeof(s->incoming_uri))
        return err_set(e, EINVAL, "Invalid parameter 'uri': expected tcp:HOST:PORT");
    snprintf(s->incoming_uri, sizeof(s->incoming_uri), "%s", uri);
    s->incoming = s->incoming_uri + 4;
    return 0;
}

static int cmd_query_migrate(void *opaque, struct json_object *args, struct json_object **ret,
                             enum control_err_class *cls, struct err *e)
{
    struct snapshot *s = opaque;
    int r = control_args_only(args, NULL, e);
    if (r < 0)
        return r;
    struct json_object *o = json_object_new_object();
    *ret = o;
    if (!s->status[0])
        return 0;   /* no migration yet: QEMU answers {} too */
    snap_migrate_lock(s);
    json_object_object_add(o, "status", json_object_new_string(s->status));
    bool done = !strcmp(s->status, "completed");
    json_object_object_add(o, "total-time", json_object_new_int64(done ? s->total_ms : now_ms() - s->start_ms));
    if (done)
        json_object_object_add(o, "downtime", json_object_new_int64(s->downtime_ms));
    struct json_object *ram = json_object_new_object();
    json_object_object_add(ram, "transferred", json_object_new_int64((int64_t)s->ram_transferred));
    json_object_object_add(ram, "total", json_object_new_int64((int64_t)s->ram_total));
    json_object_object_add(ram, "remaining", json_object_new_int64((int64_t)s->ram_remaining));
    json_object_object_add(ram, "dirty-sync-count", json_object_new_int64((int64_t)s->iterations));
    json_object_object_add(o, "ram", ram);
    if (!strcmp(s->status, "failed") && s->error[0])
        json_object_object_add(o, "error-desc", json_object_new_string(s->error));
    snap_migrate_unlock(s);
    return 0;
}

static int cmd_migrate_cancel(void *opaque, struct json_object *args, struct json_object **ret,
                              enum control_err_class *cls, struct err *e)
{
    struct snapshot *s = opaque;
    int r = control_args_only(args, NULL, e);
    if (r < 0)
        return r;
    snap_migrate_cancel(s);
    return 0;
}

static int cmd_set_params(void *opaque, struct json_object *args, struct json_object **ret,
                          enum control_err_class *cls, struct err *e)
{
    struct snapshot *s = opaque;
    static const char *const allowed[] = { "downtime-limit", "max-bandwidth", NULL };
    int64_t v;
    int r = control_args_only(args, allowed, e);
    if (r < 0)
        return r;
    r = control_arg_int(args, "downtime-limit", false, &v, e);
    if (r == -EINVAL)
        return r;
    if (r == 0) {
        if (v < 1 || v > 2000000)
            return err_set(e, EINVAL, "Parameter 'downtime-limit' expects an integer in the range of 1 to 2000000 milliseconds");
        s->downtime_limit_ms = v;
    }
    r = control_arg_int(args, "max-bandwidth", false, &v, e);
    return r == -EINVAL ? r : 0;
}


static struct snapshot *snapshot_of(const struct vm *vm)
{
    return the_snapshot && the_snapshot->vm == vm ? the_snapshot : NULL;
}

bool snapshot_migration_active(const struct vm *vm)
{
    struct snapshot *s = snapshot_of(vm);
    return s && (snap_migrate_active(s) || atomic_load(&s->inmigrate));
}

const char *snapshot_run_state(const struct vm *vm)
{
    struct snapshot *s = snapshot_of(vm);
    if (s && atomic_load(&s->inmigrate))
        return "inmigrate";
    if (s && atomic_load(&s->postmigrate) && vm_paused(s->vm))
        return "postmigrate";
    return NULL;
}

void snapshot_note_cont(const struct vm *vm)
{
    struct snapshot *s = snapshot_of(vm);
    if (s)
        atomic_store(&s->postmigrate, false);
}

int snapshot_attach(struct snapshot *s, struct vm *vm, struct err *e)
{
    s->vm = vm;
    the_snapshot = s;
    atomic_store(&s->inmigrate, s->incoming || s->defer);
    if (!vm->control)
        return s->defer ? err_set(e, EINVAL, "--incoming defer needs --control: "
                                             "migrate-incoming comes over it") : 0;
    static const struct { const char *name; control_cmd_fn fn; } cmds[] = {
        { "migrate", cmd_migrate },
        { "query-migrate", cmd_query_migrate },
        { "migrate_cancel", cmd_migrate_cancel },
        { "migrate-set-parameters", cmd_set_params },
        { "migrate-incoming", cmd_migrate_incoming },
    };
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        int r = control_register(vm->control, cmds[i].name, cmds[i].fn, s);
        if (r < 0)
            return err_set(e, -r, "cannot register QMP command %s", cmds[i].name);
    }
    return 0;
}

int snapshot_restore_apply(struct snapshot *s, struct err *e)
{
    if (!s || s->applied || (!s->restore_path && !s->incoming && !s->defer))
        return 0;
    struct vm *vm = s->vm;
    /* --incoming defer: serve the control socket until migrate-incoming
     * (or a stop, after which the caller starts no vCPU) comes. */
    while (s->defer && !s->incoming) {
        if (vm_exit_reason(vm) != VM_EXIT_NONE)
            return 0;
        evloop_run_once(vm->loop, -1);
    }
    s->applied = true;
    if (s->incoming) {
        int r = snap_migrate_incoming(s, e);
        atomic_store(&s->inmigrate, false);
        return r;
    }
    atomic_store(&s->inmigrate, false);
    int64_t t0 = now_ms();
    /* The file's pages replace whatever loading the kernel put there. */
    int r = snap_file_map_ram(&s->file, vm->ram, vm->ram_size, e);
    if (r == 0)
        r = snap_state_load(&s->file.state, vm, e);
    if (r < 0) {
        err_prefix(e, "snapshot %s: ", s->restore_path);
        return r;
    }
    if (s->paused)
        vm_pause(vm);
    log_info("restored the VM from %s in %lld ms", s->restore_path, (long long)(now_ms() - t0));
    return 0;
}
