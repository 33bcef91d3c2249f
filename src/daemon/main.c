/* cvirtd: the management daemon. Serves the libvirt remote protocol on a
 * read-write and a read-only UNIX socket, in the foreground, one thread. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "storage.h"
#include "network.h"
#include "rpc/server.h"
#include "util/evloop.h"
#include "util/log.h"

struct options {
    const char *root;
    const char *pidfile;
    bool verbose;
    int keepalive;          /* seconds; -1: the default */
};

static void usage(FILE *f)
{
    fprintf(f,
        "usage: cvirtd [--root DIR] [--pidfile FILE] [--verbose]\n"
        "  --root DIR        keep state, config and sockets under DIR\n"
        "                    (sockets DIR/run/cvirt/cvirt-sock and cvirt-sock-ro)\n"
        "  --pidfile FILE    pid file (default: RUNDIR/cvirtd.pid); it is also the\n"
        "                    lock that keeps a second daemon off the same sockets\n"
        "  --keepalive SECS  ping interval for clients that ask for keepalive (0: off)\n"
        "  --verbose         log requests to stderr\n"
        "Run as root without --root: system mode (/var/lib/cvirt, /etc/cvirt,\n"
        "/run/cvirt). As another user: session mode under the XDG directories.\n");
}

static int parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        { "root", required_argument, NULL, 'r' },
        { "pidfile", required_argument, NULL, 'p' },
        { "keepalive", required_argument, NULL, 'k' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    memset(o, 0, sizeof(*o));
    o->keepalive = -1;
    int opt;
    while ((opt = getopt_long(argc, argv, "r:p:k:vh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'r': o->root = optarg; break;
        case 'p': o->pidfile = optarg; break;
        case 'v': o->verbose = true; break;
        case 'k': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 3600) {
                fprintf(stderr, "cvirtd: --keepalive %s: not a number of seconds\n", optarg);
                return -1;
            }
            o->keepalive = (int)v;
            break;
        }
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "cvirtd: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

static int path_join(char *out, const char *a, const char *b, struct err *e)
{
    int n = snprintf(out, PATH_MAX, "%s%s", a, b);
    if (n < 0 || n >= PATH_MAX)
        return err_set(e, ENAMETOOLONG, "path %s%s is too long", a, b);
    return 0;
}

/* $VAR, or $HOME/fallback when VAR is unset or empty. */
static int xdg_dir(char *out, const char *var, const char *fallback, struct err *e)
{
    const char *v = getenv(var);
    if (v && *v)
        return path_join(out, v, "/cvirt", e);
    const char *home = getenv("HOME");
    if (!home || !*home)
        return err_set(e, ENOENT, "neither $%s nor $HOME is set", var);
    char base[PATH_MAX];
    if (path_join(base, home, fallback, e) < 0)
        return -1;
    return path_join(out, base, "/cvirt", e);
}

static int setup_paths(struct daemon *d, const struct options *o, struct err *e)
{
    struct daemon_paths *p = &d->paths;
    d->privileged = o->root || geteuid() == 0;
    if (d->privileged) {
        const char *root = o->root ? o->root : "";
        if (path_join(p->state_dir, root, "/var/lib/cvirt", e) < 0 ||
            path_join(p->config_dir, root, "/etc/cvirt", e) < 0 ||
            path_join(p->run_dir, root, "/run/cvirt", e) < 0)
            return -1;
        d->uri_default = "qemu:///system";
    } else {
        if (xdg_dir(p->state_dir, "XDG_DATA_HOME", "/.local/share", e) < 0 ||
            xdg_dir(p->config_dir, "XDG_CONFIG_HOME", "/.config", e) < 0)
            return -1;
        /* Without a runtime directory libvirt uses the cache folder. */
        if (getenv("XDG_RUNTIME_DIR") && *getenv("XDG_RUNTIME_DIR")) {
            if (xdg_dir(p->run_dir, "XDG_RUNTIME_DIR", "", e) < 0)
                return -1;
        } else if (xdg_dir(p->run_dir, "XDG_CACHE_HOME", "/.cache", e) < 0) {
            return -1;
        }
        d->uri_default = "qemu:///session";
    }
    if (path_join(p->sock_rw, p->run_dir, "/cvirt-sock", e) < 0 ||
        path_join(p->sock_ro, p->run_dir, "/cvirt-sock-ro", e) < 0)
        return -1;
    if (o->pidfile) {
        if (strlen(o->pidfile) >= PATH_MAX)
            return err_set(e, ENAMETOOLONG, "pid file path is too long");
        strcpy(p->pidfile, o->pidfile);
    } else if (path_join(p->pidfile, p->run_dir, "/cvirtd.pid", e) < 0) {
        return -1;
    }
    return 0;
}

/* mkdir -p with mode for the folders created. */
static int mkdirs(const char *path, mode_t mode, struct err *e)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *s = buf + 1; ; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(buf, mode) < 0 && errno != EEXIST)
                return err_set_errno(e, errno, "cannot create %s", buf);
            *s = c;
            if (!c)
                break;
        }
    }
    return 0;
}

/* Takes the pid-file lock for the daemon's lifetime (the fd stays open).
 * A lock rather than a pid check, so a stale file from a crash never
 * blocks a restart. */
static int pidfile_lock(const char *path, struct err *e)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return err_set_errno(e, errno, "cannot open pid file %s", path);
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int saved = errno;
        char pid[32] = "";
        ssize_t n = read(fd, pid, sizeof(pid) - 1);
        if (n > 0)
            pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        if (saved == EWOULDBLOCK)
            return err_set(e, EBUSY, "another cvirtd (pid %s) already runs with %s",
                           n > 0 ? pid : "?", path);
        return err_set_errno(e, saved, "cannot lock pid file %s", path);
    }
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)len, 0) != len) {
        int rc = err_set_errno(e, errno, "cannot write pid file %s", path);
        close(fd);
        return rc;
    }
    return fd;
}

/* cvirt-vmm next to cvirtd when installed, or in the build tree's
 * src/vmm beside src/daemon; $CVIRT_VMM overrides both. */
static char *find_vmm(void)
{
    const char *env = getenv("CVIRT_VMM");
    if (env && *env)
        return strdup(env);
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return strdup("/usr/bin/cvirt-vmm");
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    static const char *const rel[] = { "/../vmm/cvirt-vmm", "/cvirt-vmm" };
    for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
        char cand[PATH_MAX];
        if (snprintf(cand, sizeof(cand), "%s%s", self, rel[i]) < (int)sizeof(cand) &&
            access(cand, X_OK) == 0) {
            char *real = realpath(cand, NULL);
            if (real)
                return real;
        }
    }
    return strdup("/usr/bin/cvirt-vmm");
}

struct sigctx {
    int fd;
    struct evloop *loop;
};

static void on_signal(void *opaque, uint32_t events)
{
    struct sigctx *s = opaque;
    struct signalfd_siginfo si;
    (void)events;
    while (read(s->fd, &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            log_info("SIGHUP: nothing to reload yet");
            continue;
        }
        log_info("signal %u: shutting down", si.ssi_signo);
        evloop_stop(s->loop);
    }
}

static int run(struct daemon *d, const struct options *o, struct err *e)
{
    struct rpc_table table = {0};
    struct sigctx sig = { .fd = -1 };
    int rc = -1;
    if (rpc_table_add(&table, rpc_connect_procs, rpc_connect_nprocs, e) < 0 ||
        rpc_table_add(&table, remote_domain_procs, remote_domain_nprocs, e) < 0 ||
        rpc_table_add(&table, remote_migrate_procs, remote_migrate_nprocs, e) < 0 ||
        rpc_table_add(&table, remote_storage_procs, remote_storage_nprocs, e) < 0 ||
        rpc_table_add(&table, remote_network_procs, remote_network_nprocs, e) < 0)
        return -1;
    d->loop = evloop_new();
    if (!d->loop)
        return err_set(e, ENOMEM, "cannot create the event loop");
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    sig.loop = d->loop;
    sig.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sig.fd < 0 || evloop_add(d->loop, sig.fd, EPOLLIN, on_signal, &sig) < 0) {
        err_set_errno(e, errno, "cannot watch signals");
        goto out;
    }
    /* Networks first: domains reattached below may sit on their bridges. */
    if (remote_network_init(d, e) < 0)
        goto out;
    if (remote_domain_init(d, e) < 0)
        goto out_networks;
    if (remote_storage_init(d, e) < 0)
        goto out_domains;
    d->srv = rpc_server_new(d->loop, &table, d, e);
    if (!d->srv)
        goto out_storage;
    if (o->keepalive >= 0)
        rpc_server_set_keepalive(d->srv, o->keepalive, RPC_KEEPALIVE_COUNT);
    if (rpc_server_listen_unix(d->srv, d->paths.sock_rw, 0700, false, e) < 0 ||
        rpc_server_listen_unix(d->srv, d->paths.sock_ro, 0777, true, e) < 0)
        goto out_srv;
    log_info("listening on %s and %s", d->paths.sock_rw, d->paths.sock_ro);
    evloop_run(d->loop);
    rc = 0;
out_srv:
    rpc_server_free(d->srv);
    d->srv = NULL;
out_storage:
    remote_storage_fini(d);
out_domains:
    remote_domain_fini(d);
out_networks:
    remote_network_fini(d);
out:
    if (sig.fd >= 0) {
        evloop_del(d->loop, sig.fd);
        close(sig.fd);
    }
    evloop_free(d->loop);
    d->loop = NULL;
    return rc;
}

int main(int argc, char **argv)
{
    struct options o;
    struct daemon d = {0};
    struct err e = {0};
    log_init("cvirtd");
    if (parse_args(argc, argv, &o) < 0)
        return 2;
    if (o.verbose && log_get_level() < LOG_INFO)
        log_set_level(LOG_INFO);
    if (setup_paths(&d, &o, &e) < 0 ||
        mkdirs(d.paths.state_dir, 0755, &e) < 0 ||
        mkdirs(d.paths.config_dir, 0755, &e) < 0 ||
        mkdirs(d.paths.run_dir, d.privileged ? 0755 : 0700, &e) < 0) {
        log_error("%s", e.msg);
        return 1;
    }
    int lock = pidfile_lock(d.paths.pidfile, &e);
    if (lock < 0) {
        log_error("%s", e.msg);
        return 1;
    }
    char *vmm = find_vmm();
    d.vmm_path = vmm;
    int rc = run(&d, &o, &e);
    if (rc < 0)
        log_error("%s", e.msg);
    unlink(d.paths.pidfile);
    close(lock);
    free(vmm);
    return rc < 0 ? 1 : 0;
}
