/* cvirt-vmm: one process per virtual machine on /dev/kvm. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <json-c/json.h>

#include "console.h"
#include "control.h"
#include "control_hotplug.h"
#include "hw/platform.h"
#include "pci/pci.h"
#include "snapshot/snapshot.h"
#include "util/evloop.h"
#include "util/log.h"
#include "util/size.h"
#include "vcpu.h"
#include "virtio/balloon.h"
#include "virtio/pci.h"
#include "virtio/virtio.h"
#include "vm.h"
#include "x86/layout.h"

/* Exit statuses: 0 guest powered off (or a clean stop on a signal),
 * 1 an error, 2 bad usage, 3 guest reset under --no-reboot. */
#define EXIT_VMM_ERROR  1
#define EXIT_VMM_USAGE  2
#define EXIT_VMM_REBOOT 3

#define MAX_VIRTIO_DEVS 16

/* One virtio device asked for on the command line. */
struct vdev_req {
    const struct virtio_dev_ops *ops;
    const char *arg;
    struct control_hotplug_disk *disk;   /* --disk: its options parsed */
};

struct opts {
    struct vm_config vm;
    enum console_mode console;
    struct vdev_req vdevs[MAX_VIRTIO_DEVS];
    unsigned nvdevs;
    const char *control;     /* QMP socket path */
};

/* The virtio devices, by option: adding one is a line here and a line in
 * the option table. Each becomes a PCI function in command-line order. */
static const struct {
    int opt;
    const struct virtio_dev_ops *ops;
} virtio_dev_table[] = {
    { 'r', &virtio_rng_ops },
    { 'v', &virtio_console_ops },
    { 'd', &virtio_blk_ops },
    { 'n', &virtio_net_ops },
    { 'b', &virtio_balloon_ops },
};

static void usage(FILE *f)
{
    fprintf(f,
        "usage: cvirt-vmm --kernel FILE [options]\n"
        "  --kernel FILE      Linux bzImage or ELF kernel with a PVH entry point\n"
        "  --initrd FILE      initial ramdisk\n"
        "  --append TEXT      kernel command line\n"
        "  --memory SIZE      guest RAM, e.g. 512M or 2G (default 256M; no suffix means MiB)\n"
        "  --cpus N           number of vCPUs (default 1, at most %d)\n"
        "  --console MODE     stdio (default), pty or none\n"
        "  --no-reboot        exit with status 3 when the guest resets instead of rebooting\n"
        "  --rng              virtio-rng device fed by the host's getrandom()\n"
        "  --vconsole socket=PATH|pty\n"
        "                     virtio console (the guest's hvc0) on a UNIX socket this\n"
        "                     process listens on, or on a new pty\n"
        "  --disk PATH[,format=raw|qcow2][,readonly=on][,serial=TEXT][,cache=none|writeback]\n"
        "         [,slot=N][,id=ID[,node=NAME]][,inactive=on]\n"
        "                     virtio-blk disk (format defaults to raw; repeatable); slot=N:\n"
        "                     in PCI slot N (1-31) of bus 0; id=ID: QMP device_del ID may\n"
        "                     remove it, its drive is the node NAME (default ID);\n"
        "                     inactive=on: with --incoming, read-only until the state loads\n"
        "  --net tap=NAME[,mac=XX:XX:XX:XX:XX:XX]\n"
        "                     virtio-net on a tap device (opened or created)\n"
        "  --net-tap NAME     the k-th replaces the k-th --net's tap= (repeatable; also with\n"
        "                     --restore and --incoming: the host's end, not the machine)\n"
        "  --balloon[=deflate-on-oom=on]\n"
        "                     virtio-balloon (with --control: balloon, query-balloon,\n"
        "                     query-balloon-stats, BALLOON_CHANGE events)\n"
        "  --control PATH     QMP control socket (a UNIX socket this process creates)\n"
        "  --control [PATH,]fd=N\n"
        "                     QMP on an inherited, already listening UNIX socket (PATH:\n"
        "                     the name it is bound to, for ps and the log)\n"
        "  --restore FILE     start from a snapshot saved with QMP migrate file:FILE (machine\n"
        "                     options come from the file; --console, --control and\n"
        "                     --net-tap still apply)\n"
        "  --incoming tcp:HOST:PORT|file:FILE|defer   wait for a migration (or restore\n"
        "                     FILE); defer: until QMP migrate-incoming names the source\n"
        "  --paused           with --restore/--incoming: stay paused until QMP cont\n"
        "  --help, --version\n"
        "On a terminal, Ctrl-A x quits.\n", VM_MAX_CPUS);
}

/* --disk's own options; slot= and id= must not repeat another disk's. */
static int parse_disk(struct opts *o, struct vdev_req *req)
{
    struct err e = { 0 };
    struct control_hotplug_disk *d = malloc(sizeof(*d));
    if (!d) {
        log_error("out of memory");
        return -1;
    }
    req->disk = d;
    if (control_hotplug_disk_parse(req->arg, d, &e) < 0) {
        log_error("%s", e.msg);
        return -1;
    }
    for (unsigned i = 0; i + 1 < o->nvdevs; i++) {
        const struct control_hotplug_disk *p = o->vdevs[i].disk;
        if (p && d->slot && p->slot == d->slot) {
            log_error("--disk %s: slot=%u is taken by --disk %s", d->path, d->slot, p->path);
            return -1;
        }
        if (p && d->id[0] && !strcmp(p->id, d->id)) {
            log_error("--disk %s: id=%s is taken by --disk %s", d->path, d->id, p->path);
            return -1;
        }
        const char *pn = p && p->node[0] ? p->node : p ? p->id : "";
        const char *dn = d->node[0] ? d->node : d->id;
        if (p && dn[0] && !strcmp(pn, dn)) {
            log_error("--disk %s: node %s is taken by --disk %s", d->path, dn, p->path);
            return -1;
        }
    }
    return 0;
}

static void free_opts(struct opts *o)
{
    for (unsigned i = 0; i < o->nvdevs; i++)
        free(o->vdevs[i].disk);
    o->nvdevs = 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        { "kernel", required_argument, NULL, 'k' },
        { "initrd", required_argument, NULL, 'i' },
        { "append", required_argument, NULL, 'a' },
        { "memory", required_argument, NULL, 'm' },
        { "cpus", required_argument, NULL, 'c' },
        { "console", required_argument, NULL, 'C' },
        { "no-reboot", no_argument, NULL, 'R' },
        { "rng", no_argument, NULL, 'r' },
        { "vconsole", required_argument, NULL, 'v' },
        { "disk", required_argument, NULL, 'd' },
        { "net", required_argument, NULL, 'n' },
        { "balloon", optional_argument, NULL, 'b' },
        { "control", required_argument, NULL, 'Q' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    memset(o, 0, sizeof(*o));
    o->vm.mem_size = 256ULL << 20;
    o->vm.ncpus = 1;
    o->console = CONSOLE_STDIO;
    int c;
    char sz[32], sz2[32];
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'k': o->vm.kernel = optarg; break;
        case 'i': o->vm.initrd = optarg; break;
        case 'a': o->vm.cmdline = optarg; break;
        case 'm':
            if (size_parse(optarg, 1ULL << 20, &o->vm.mem_size) < 0) {
                log_error("--memory '%s': not a size (examples: 512M, 2G)", optarg);
                return -1;
            }
            if (o->vm.mem_size < VM_MIN_MEM) {
                log_error("--memory %s is too small: at least %s is needed", optarg,
                          size_format(VM_MIN_MEM, sz, sizeof(sz)));
                return -1;
            }
            if (o->vm.mem_size > VM_MAX_MEM) {
                log_error("--memory %s is too large: at most %s", optarg,
                          size_format(VM_MAX_MEM, sz2, sizeof(sz2)));
                return -1;
            }
            /* KVM maps memory in pages. */
            o->vm.mem_size &= ~0xfffULL;
            break;
        case 'c': {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || n < 1 || n > VM_MAX_CPUS) {
                log_error("--cpus '%s': must be a number from 1 to %d", optarg, VM_MAX_CPUS);
                return -1;
            }
            o->vm.ncpus = (unsigned)n;
            break;
        }
        case 'C':
            if (!strcmp(optarg, "stdio"))
                o->console = CONSOLE_STDIO;
            else if (!strcmp(optarg, "pty"))
                o->console = CONSOLE_PTY;
            else if (!strcmp(optarg, "none"))
                o->console = CONSOLE_NONE;
            else {
                log_error("--console '%s': must be stdio, pty or none", optarg);
                return -1;
            }
            break;
        case 'R': o->vm.no_reboot = true; break;
        case 'Q': o->control = optarg; break;
        case 'r':
        case 'v':
        case 'd':
        case 'n':
        case 'b':
            if (o->nvdevs == MAX_VIRTIO_DEVS) {
                log_error("too many virtio devices (at most %d)", MAX_VIRTIO_DEVS);
                return -1;
            }
            for (unsigned i = 0; i < sizeof(virtio_dev_table) / sizeof(virtio_dev_table[0]); i++)
                if (virtio_dev_table[i].opt == c)
                    o->vdevs[o->nvdevs++] = (struct vdev_req){ virtio_dev_table[i].ops, optarg, NULL };
            if (c == 'd' && parse_disk(o, &o->vdevs[o->nvdevs - 1]) < 0)
                return -1;
            break;
        case 'h': usage(stdout); exit(0);
        case 'V': printf("cvirt-vmm 0.1.0\n"); exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        log_error("unexpected argument '%s'", argv[optind]);
        return -1;
    }
    if (!o->vm.kernel) {
        log_error("no kernel given (--kernel FILE)");
        return -1;
    }
    return 0;
}

/* The main thread runs the event loop: console input, signals, the control
 * socket, and the wake-up when a vCPU or device asks the VM to stop. */
struct runner {
    struct vm *vm;
    struct evloop *loop;
    int sigfd;
    /* Sticky: a stop asked for while the guest was resetting must not be
     * lost to the reset, whose exit reason came first. */
    bool stop_requested;
    char stop_msg[64];
    const char *stop_reason;  /* SHUTDOWN's reason when the host stopped it */
    bool host_reset;          /* the next reset was asked for over QMP */
    struct control_vm_host host;
    struct control_disk disks[MAX_VIRTIO_DEVS];
    struct snapshot *snap;    /* --restore / --incoming and migrate */
};

/* The devices main() creates, destroyed in reverse. */
struct machine {
    struct pci_host *host;
    struct virtio_pci *vdevs[MAX_VIRTIO_DEVS];
};

static void request_stop(struct runner *rn, const char *reason, const char *msg)
{
    if (!rn->stop_requested) {
        snprintf(rn->stop_msg, sizeof(rn->stop_msg), "%s", msg ? msg : "");
        rn->stop_reason = reason;
    }
    rn->stop_requested = true;
    vm_request_exit(rn->vm, VM_EXIT_SIGNAL, "%s", rn->stop_msg);
}

static void on_signal(void *opaque, uint32_t events)
{
    struct runner *rn = opaque;
    struct signalfd_siginfo si;
    while (read(rn->sigfd, &si, sizeof(si)) == sizeof(si)) {
        char msg[64];
        snprintf(msg, sizeof(msg), "terminating on signal %u", si.ssi_signo);
        request_stop(rn, "host-signal", msg);
    }
}

static void on_vm_exit(void *opaque)
{
    struct runner *rn = opaque;
    evloop_stop(rn->loop);
}

static void on_console_quit(void *opaque)
{
    request_stop(opaque, "host-ui", NULL);
}

static void on_qmp_quit(void *opaque)
{
    request_stop(opaque, "host-qmp-quit", NULL);
}

static void on_qmp_reset(void *opaque)
{
    struct runner *rn = opaque;
    if (vm_exit_reason(rn->vm) != VM_EXIT_NONE)
        return;
    rn->host_reset = true;
    vm_request_exit(rn->vm, VM_EXIT_RESET, NULL);
}

/* SHUTDOWN and RESET as QEMU words them: guest says who asked. */
static void emit_run_event(struct runner *rn, const char *name, bool guest, const char *reason)
{
    if (!rn->vm->control)
        return;
    struct json_object *data = json_object_new_object();
    json_object_object_add(data, "guest", json_object_new_boolean(guest));
    json_object_object_add(data, "reason", json_object_new_string(reason));
    control_emit_event(rn->vm->control, name, data);
}

static int setup_signals(struct runner *rn, struct err *e)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGQUIT);
    /* Blocked before any thread starts, so only the signalfd sees them. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    rn->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (rn->sigfd < 0)
        return err_set_errno(e, errno, "signalfd");
    vcpu_signals_init();
    return evloop_add(rn->loop, rn->sigfd, EPOLLIN, on_signal, rn);
}

/* The QMP server comes before the virtio devices, whose create ops may
 * register their own commands on it. */
static int setup_control(struct runner *rn, const struct opts *o, struct err *e)
{
    if (!o->control)
        return 0;
    struct vm *vm = rn->vm;
    int r = control_new(&vm->control, rn->loop, e);
    if (r < 0)
        return r;
    unsigned ndisks = 0;
    for (unsigned i = 0; i < o->nvdevs; i++)
        if (o->vdevs[i].disk)
            control_disk_parse(&rn->disks[ndisks], ndisks, o->vdevs[i].disk->blk), ndisks++;
    rn->host = (struct control_vm_host){
        .vm = vm, .quit = on_qmp_quit, .reset = on_qmp_reset, .opaque = rn,
        .disks = rn->disks, .ndisks = ndisks,
    };
    r = control_vm_register(vm->control, &rn->host, e);
    if (r < 0 || (r = control_hotplug_register(vm->control, vm, rn->loop, e)) < 0)
        return r;
    return control_listen(vm->control, o->control, e);
}

/* The virtio devices in command-line order, each in the first free slot
 * but those asked for by number, which are kept for their device. A disk
 * with an id belongs to the hotplug table, which lets the guest eject it. */
static int create_vdevs(struct runner *rn, const struct opts *o, struct machine *m,
                        struct err *e)
{
    struct vm *vm = rn->vm;
    bool ids = false;
    for (unsigned i = 0; i < o->nvdevs; i++) {
        const struct control_hotplug_disk *d = o->vdevs[i].disk;
        if (d && d->slot && pci_bus_reserve_slot(vm->pci, d->slot, d->path, e) < 0)
            return -1;
        ids |= d && d->id[0];
    }
    if (ids && !vm->control && control_hotplug_register(NULL, vm, rn->loop, e) < 0)
        return -1;
    for (unsigned i = 0; i < o->nvdevs; i++) {
        const struct control_hotplug_disk *d = o->vdevs[i].disk;
        int r;
        if (d && d->id[0])
            r = control_hotplug_add_disk(vm, d, e);
        else
            r = virtio_pci_create_at(&m->vdevs[i], vm->pci, rn->loop, o->vdevs[i].ops,
                                     d ? d->blk : o->vdevs[i].arg, d ? d->slot : 0, e);
        if (r < 0)
            return -1;
    }
    return 0;
}

static int build_machine(struct runner *rn, const struct opts *o, struct machine *m,
                         struct err *e)
{
    struct vm *vm = rn->vm;
    if (console_open(&vm->console, o->console, rn->loop, on_console_quit, rn, e) < 0)
        return -1;
    /* The PCI host first: it owns 0xcf8-0xcff, reset register included.
     * A machine without PCI devices has no PCI at all (and no MCFG), as
     * QEMU's microvm: the guest then spends nothing enumerating a bus.
     * A control socket may hot-add disks later, so it brings the bus. */
    if ((o->nvdevs > 0 || o->control) &&
        (pci_bus_create(&vm->pci, vm, LAYOUT_PCI_MMIO_START, LAYOUT_PCI_MMIO_SIZE, e) < 0 ||
         pci_host_create(&m->host, vm, vm->pci, LAYOUT_PCIE_ECAM_START,
                         (unsigned)(LAYOUT_PCIE_ECAM_SIZE >> 20) - 1, e) < 0))
        return -1;
    if (platform_create_all(vm, e) < 0 || setup_control(rn, o, e) < 0 ||
        create_vdevs(rn, o, m, e) < 0)
        return -1;
    bool balloon = false;
    for (unsigned i = 0; i < o->nvdevs; i++)
        balloon |= o->vdevs[i].ops == &virtio_balloon_ops;
    if (vm->control && !balloon && balloon_control_absent(vm->control, e) < 0)
        return -1;
    if (vm->pci && pci_bus_assign(vm->pci, e) < 0)
        return -1;
    return 0;
}

static void destroy_machine(struct vm *vm, struct machine *m)
{
    if (vm->console)
        console_close(vm->console);
    vm->console = NULL;
    platform_destroy_all(vm);
    /* Hot-added disks before the bus: their I/O threads must be gone
     * before the PCI functions they interrupt through are freed. */
    control_hotplug_fini(vm);
    pci_host_destroy(m->host);
    pci_bus_destroy(vm->pci);
    vm->pci = NULL;
    for (unsigned i = 0; i < MAX_VIRTIO_DEVS; i++)
        virtio_pci_destroy(m->vdevs[i]);
    /* Last: device threads may emit events until their device is gone,
     * and no command runs any more (the loop has stopped). Freeing sends
     * the last replies and SHUTDOWN out. */
    control_free(vm->control);
    vm->control = NULL;
}

/* Runs the guest until it stops; returns the reason. */
static enum vm_exit_reason run_once(struct runner *rn, struct err *e)
{
    struct vm *vm = rn->vm;
    int r = vm_setup(vm, e);
    if (r < 0 || snapshot_restore_apply(rn->snap, e) < 0)
        return VM_EXIT_ERROR;
    /* Asked to stop before the guest ran (a quit while waiting for an
     * incoming migration): no vCPU starts. */
    if (vm_exit_reason(vm) != VM_EXIT_NONE)
        return vm_exit_reason(vm);
    for (unsigned i = 0; i < vm->ncpus; i++) {
        if (vcpu_start(vm->vcpus[i], e) < 0) {
            vm_request_exit(vm, VM_EXIT_ERROR, "%s", e->msg);
            break;
        }
    }
    evloop_clear_stop(rn->loop);
    /* A vCPU may have stopped the VM before the loop was ready. */
    while (vm_exit_reason(vm) == VM_EXIT_NONE && !evloop_stopped(rn->loop))
        evloop_run_once(rn->loop, -1);
    for (unsigned i = 0; i < vm->ncpus; i++)
        vcpu_kick(vm->vcpus[i]);
    for (unsigned i = 0; i < vm->ncpus; i++) {
        vcpu_join(vm->vcpus[i]);
        if (log_get_level() >= LOG_DEBUG)
            vcpu_log_state(vm->vcpus[i]);
    }
    return vm_exit_reason(vm);
}

/* Runs the guest through its resets; returns the exit status. */
static int run_machine(struct runner *rn, const struct opts *o, struct err *e)
{
    struct vm *vm = rn->vm;
    for (;;) {
        enum vm_exit_reason why = run_once(rn, e);
        /* Signals are read on this thread only, so this sees every one. */
        if (rn->stop_requested && why != VM_EXIT_ERROR && why != VM_EXIT_POWEROFF) {
            if (rn->stop_msg[0])
                log_warn("%s", rn->stop_msg);
            emit_run_event(rn, "SHUTDOWN", false, rn->stop_reason);
            return 0;
        }
        if (why == VM_EXIT_RESET || why == VM_EXIT_TRIPLE_FAULT) {
            bool guest = !rn->host_reset;
            const char *reason = guest ? "guest-reset" : "host-qmp-system-reset";
            rn->host_reset = false;
            if (why == VM_EXIT_TRIPLE_FAULT)
                log_warn("%s: resetting the guest", vm->exit_msg);
            if (o->vm.no_reboot) {
                emit_run_event(rn, "SHUTDOWN", guest, reason);
                return EXIT_VMM_REBOOT;
            }
            emit_run_event(rn, "RESET", guest, reason);
            vm_teardown(vm);
            platform_reset_all(vm);
            if (vm->pci)
                pci_bus_reset(vm->pci);
            continue;
        }
        if (why == VM_EXIT_POWEROFF) {
            emit_run_event(rn, "SHUTDOWN", true, "guest-shutdown");
            return 0;
        }
        if (why == VM_EXIT_SIGNAL) {
            if (vm->exit_msg[0])
                log_warn("%s", vm->exit_msg);
            emit_run_event(rn, "SHUTDOWN", false, "host-signal");
            return 0;
        }
        if (!err_is_set(e))
            err_set(e, EIO, "%s", vm->exit_msg[0] ? vm->exit_msg : "guest stopped");
        return EXIT_VMM_ERROR;
    }
}

int main(int argc, char **argv)
{
    log_init(argv[0]);
    struct err e = { 0 };
    struct runner rn = { .sigfd = -1 };
    if (snapshot_cmdline(&argc, &argv, &rn.snap, &e) < 0) {
        log_error("%s", e.msg);
        return EXIT_VMM_USAGE;
    }
    struct opts o;
    if (parse_opts(argc, argv, &o) < 0) {
        free_opts(&o);
        snapshot_free(rn.snap);
        return EXIT_VMM_USAGE;
    }

    struct machine m = { 0 };
    int status = EXIT_VMM_ERROR;

    rn.loop = evloop_new();
    if (!rn.loop) {
        log_error("cannot create the event loop: %s", strerror(errno));
        return EXIT_VMM_ERROR;
    }
    if (setup_signals(&rn, &e) == 0 && vm_create(&rn.vm, &o.vm, &e) == 0) {
        rn.vm->loop = rn.loop;
        rn.vm->on_exit = on_vm_exit;
        rn.vm->on_exit_opaque = &rn;
        if (build_machine(&rn, &o, &m, &e) == 0 && snapshot_attach(rn.snap, rn.vm, &e) == 0)
            status = run_machine(&rn, &o, &e);
    }
    if (err_is_set(&e))
        log_error("%s", e.msg);
    snapshot_free(rn.snap);
    if (rn.vm) {
        destroy_machine(rn.vm, &m);
        vm_destroy(rn.vm);
    }
    if (rn.sigfd >= 0)
        close(rn.sigfd);
    evloop_free(rn.loop);
    free_opts(&o);
    return err_is_set(&e) ? EXIT_VMM_ERROR : status;
}
