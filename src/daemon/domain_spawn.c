/* Spawning cvirt-vmm: its command line, the control socket it inherits
 * listening, the double fork that detaches it, and the pipe that tells
 * when it has exec'd (or why it could not). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/domain_conf.h"
#include "daemon/domain_run_priv.h"
#include "daemon/network.h"
#include "util/log.h"

/* The VMM's path: see domain_driver_init. */
char *domain_find_vmm(void)
{
    const char *env = getenv("CVIRT_VMM");
    if (env && *env)
        return strdup(env);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            char *p;
            if (asprintf(&p, "%s/../vmm/cvirt-vmm", self) >= 0) {
                if (access(p, X_OK) == 0)
                    return p;
                free(p);
            }
            if (asprintf(&p, "%s/cvirt-vmm", self) >= 0) {
                if (access(p, X_OK) == 0)
                    return p;
                free(p);
            }
        }
    }
    return strdup("cvirt-vmm");   /* execvp looks it up in PATH */
}

static void log_header(int fd, char *const *argv)
{
    char when[64];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S+0000", &tm);
    dprintf(fd, "%s: starting up\n", when);
    for (size_t i = 0; argv[i]; i++)
        dprintf(fd, "%s%s", i ? " " : "", argv[i]);
    dprintf(fd, "\n");
}

/* In the grandchild: become the VMM. Only async-signal-safe calls. */
static void exec_vmm(char *const *argv, int logfd, int nullfd, int keepfd, int errpipe)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int s = 1; s < 32; s++)
        if (s != SIGKILL && s != SIGSTOP)
            signal(s, SIG_DFL);
    if (dup2(nullfd, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0 ||
        (keepfd > 2 && fcntl(keepfd, F_SETFD, 0) < 0)) {
        int err = errno;
        (void)!write(errpipe, &err, sizeof(err));
        _exit(127);
    }
    execvp(argv[0], argv);
    int err = errno;
    (void)!write(errpipe, &err, sizeof(err));
    _exit(127);
}

/* In the intermediate child: the VMM's pid, with a pidfd for it attached
 * when one can be had. The pidfd is opened here because only here is the
 * pid certain to be the VMM's: it is our child, which nobody else can
 * reap, so even a VMM that died at once is still a zombie holding its
 * pid. Once we exit it is init's to reap, and the pid may be reused
 * before the daemon could open a pidfd by number. */
static void send_vmm_pid(int sock, pid_t g)
{
    int32_t v = g;
    struct iovec iov = { .iov_base = &v, .iov_len = sizeof(v) };
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    int pidfd = g > 0 ? domain_pidfd_open(g) : -1;
    if (pidfd >= 0) {
        memset(&u, 0, sizeof(u));
        m.msg_control = u.buf;
        m.msg_controllen = sizeof(u.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pidfd, sizeof(int));
    }
    (void)!sendmsg(sock, &m, MSG_NOSIGNAL);
}

/* Starts argv detached: its own session, not our child (a double fork), so
 * it outlives the daemon. keepfd (when > 2) is inherited as it is numbered.
 * The intermediate child sends the VMM's pid and a pidfd for it on a
 * socket pair, the VMM its errno when exec fails; the end of the stream
 * (all writers gone: the intermediate exited, the VMM exec'd) says the
 * spawn is over, and sp->pipefd watches for it without blocking. */
static int spawn_begin(char *const *argv, int logfd, int keepfd, struct domain_spawn *sp,
                       struct err *e)
{
    int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int pfd[2];
    if (nullfd < 0)
        return err_set_errno(e, errno, "cannot open /dev/null");
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pfd) < 0) {
        close(nullfd);
        return err_set_errno(e, errno, "socketpair");
    }
    pid_t child = fork();
    if (child == 0) {
        close(pfd[0]);
        setsid();
        pid_t g = fork();
        if (g == 0)
            exec_vmm(argv, logfd, nullfd, keepfd, pfd[1]);
        send_vmm_pid(pfd[1], g);
        _exit(g < 0 ? 1 : 0);
    }
    close(pfd[1]);
    close(nullfd);
    if (child < 0) {
        close(pfd[0]);
        return err_set_errno(e, errno, "fork");
    }
    sp->child = child;
    sp->pipefd = pfd[0];
    sp->got = 0;
    return 0;
}

/* Keeps the first descriptor m carries in sp->pidfd; closes any other. */
static void take_fds(struct domain_spawn *sp, struct msghdr *m)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (sp->pidfd < 0)
                sp->pidfd = fd;
            else
                close(fd);
        }
    }
}

int domain_spawn_poll(struct domain_spawn *sp)
{
    for (;;) {
        uint8_t tmp[16];
        union {
            struct cmsghdr h;
            char buf[CMSG_SPACE(2 * sizeof(int))];
        } u;
        struct iovec iov = { .iov_base = tmp, .iov_len = sizeof(tmp) };
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                            .msg_controllen = sizeof(u.buf) };
        ssize_t n = recvmsg(sp->pipefd, &m, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? 0 : 1;
        take_fds(sp, &m);
        if (n == 0)
            return 1;
        size_t room = sizeof(sp->buf) - sp->got;
        size_t k = (size_t)n < room ? (size_t)n : room;
        memcpy(sp->buf + sp->got, tmp, k);
        sp->got += k;
    }
}

/* After the pipe's end: reaps the intermediate child and says what became
 * of the VMM. */
static int spawn_result(struct domain_spawn *sp, const char *prog, pid_t *out, struct err *e)
{
    close(sp->pipefd);
    sp->pipefd = -1;
    /* It closed the pipe by exiting: this wait is over at once. */
    while (waitpid(sp->child, NULL, 0) < 0 && errno == EINTR)
        ;
    sp->child = 0;
    int32_t pid = -1, child_errno = 0;
    if (sp->got >= sizeof(pid))
        memcpy(&pid, sp->buf, sizeof(pid));
    if (sp->got >= sizeof(pid) + sizeof(child_errno))
        memcpy(&child_errno, sp->buf + sizeof(pid), sizeof(child_errno));
    if (pid <= 0)
        return err_set(e, EAGAIN, "cannot start %s: fork failed", prog);
    if (child_errno)
        return err_set_errno(e, child_errno, "cannot execute %s", prog);
    *out = pid;
    return 0;
}

/* The last non-empty line the VMM wrote to its log since offset, for
 * error messages. */
void domain_log_tail(const char *path, off_t offset, char *buf, size_t len)
{
    buf[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char tmp[4096];
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size - (off_t)sizeof(tmp) + 1 > offset ? size - (off_t)sizeof(tmp) + 1 : offset;
    ssize_t n = from < size ? pread(fd, tmp, (size_t)(size - from), from) : 0;
    close(fd);
    if (n <= 0)
        return;
    tmp[n] = '\0';
    while (n > 0 && (tmp[n - 1] == '\n' || tmp[n - 1] == '\r'))
        tmp[--n] = '\0';
    char *line = strrchr(tmp, '\n');
    const char *src = line ? line + 1 : tmp;
    size_t l = strlen(src);
    if (l >= len)
        l = len - 1;
    memcpy(buf, src, l);
    buf[l] = '\0';
}

/* Binds and listens on the VMM's control socket (mode 0600) for it to
 * inherit: as libvirtd does with QEMU's monitor, nothing polls for the
 * socket to appear. */
static int listen_control(const char *sock, struct err *e)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(sock) >= sizeof(sa.sun_path))
        return err_set(e, ENAMETOOLONG, "%s: path too long for a socket", sock);
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    unlink(sock);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return err_set_errno(e, errno, "socket");
    /* The daemon's loop is single-threaded: the umask is briefly ours. */
    mode_t old = umask(0177);
    int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (r < 0 || listen(fd, 8) < 0 || fd <= 2) {
        r = err_set_errno(e, fd <= 2 ? EBADF : errno, "cannot listen on %s", sock);
        close(fd);
        unlink(sock);
        return r;
    }
    return fd;
}

/* The VMM gets the listening socket; the path stays for ps and the log. */
static int control_arg_to_fd(char **argv, const char *sock, int fd, struct err *e)
{
    for (size_t i = 0; argv[i] && argv[i + 1]; i++) {
        if (strcmp(argv[i], "--control") || strcmp(argv[i + 1], sock))
            continue;
        char *v = NULL;
        if (asprintf(&v, "%s,fd=%d", sock, fd) < 0)
            return err_set(e, ENOMEM, "out of memory");
        free(argv[i + 1]);
        argv[i + 1] = v;
        return 0;
    }
    return err_set(e, EINVAL, "no --control %s in the VMM's arguments", sock);
}

/* A restore takes the machine from the file: only the host side (control
 * socket, console) is given again. */
static int restore_argv(struct domain_driver *drv, struct domain *d, const char *sock,
                        const char *restore, char ***argv, struct err *e)
{
    const char *v[] = { drv->vmm_path, "--restore", restore, "--control", sock, "--console",
                        d->live->serial.present ? "pty" : "none" };
    size_t nv = sizeof(v) / sizeof(v[0]), nn = d->live->nnets;
    /* The taps are this start's (network_domain_taps made them): the save
     * file names the ones the domain had then, which may be gone or
     * another domain's by now. */
    char **a = calloc(nv + 2 * nn + 1, sizeof(char *));
    if (!a)
        return err_set(e, ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < nv; i++)
        if (!(a[k++] = strdup(v[i])))
            goto oom;
    for (size_t i = 0; i < nn; i++) {
        const char *tap = d->live->nets[i].target_dev;
        if (!tap || !*tap) {
            domain_argv_free(a);
            return err_set(e, EINVAL, "interface %zu of domain '%s' has no tap", i, d->name);
        }
        if (!(a[k++] = strdup("--net-tap")) || !(a[k++] = strdup(tap)))
            goto oom;
    }
    *argv = a;
    return 0;
oom:
    domain_argv_free(a);
    return err_set(e, ENOMEM, "out of memory");
}

/* A writable qcow2 disk of an incoming migration opens read-only until
 * the source's last writes are in (virtio-blk's inactive=on): the source
 * still writes the image, header and tables included, while this one
 * starts. */
static int argv_inactive_disks(char **argv)
{
    for (size_t i = 0; argv[i] && argv[i + 1]; i++) {
        if (strcmp(argv[i], "--disk") || !strstr(argv[i + 1], ",format=qcow2") ||
            strstr(argv[i + 1], ",readonly=on"))
            continue;
        size_t len = strlen(argv[++i]);
        char *v = realloc(argv[i], len + sizeof(",inactive=on"));
        if (!v)
            return -ENOMEM;
        memcpy(v + len, ",inactive=on", sizeof(",inactive=on"));
        argv[i] = v;
    }
    return 0;
}

/* The same machine, waiting for a live migration that QMP
 * migrate-incoming points at a port, and paused once it is in (the
 * daemon lets it run when the migration finishes). */
static int argv_add_incoming(char ***argv, struct err *e)
{
    if (argv_inactive_disks(*argv) < 0) {
        domain_argv_free(*argv);
        *argv = NULL;
        return err_set(e, ENOMEM, "out of memory");
    }
    static const char *const add[] = { "--incoming", "defer", "--paused" };
    size_t n = 0, k = sizeof(add) / sizeof(add[0]);
    while ((*argv)[n])
        n++;
    char **a = realloc(*argv, (n + k + 1) * sizeof(*a));
    if (a)
        *argv = a;
    for (size_t i = 0; a && i <= k; i++)
        a[n + i] = NULL;
    for (size_t i = 0; a && i < k; i++)
        if (!(a[n + i] = strdup(add[i])))
            a = NULL;
    if (!a) {
        domain_argv_free(*argv);
        *argv = NULL;
        return err_set(e, ENOMEM, "out of memory");
    }
    return 0;
}

static int build_argv(struct domain_driver *drv, struct domain *d, const char *sock,
                      const char *restore, char ***argv, struct err *e)
{
    /* Taps for network and bridge interfaces; their names land in the
     * live definition, so a restarted daemon and the release see them. */
    int r = network_domain_taps(d->live, e);
    if (r < 0)
        return r;
    bool incoming = restore && !strcmp(restore, DOMAIN_RESTORE_INCOMING);
    if (restore && !incoming)
        return restore_argv(drv, d, sock, restore, argv, e);
    struct domain_vmm_env env = { .vmm_path = drv->vmm_path, .control_path = sock };
    r = domain_def_vmm_argv(d->live, &env, argv, e);
    return r == 0 && incoming ? argv_add_incoming(argv, e) : r;
}

int domain_spawn_begin(struct domain_driver *drv, struct domain *d, const char *restore,
                       struct domain_spawn *sp, struct err *e)
{
    char sock[108];
    sp->pidfd = -1;
    sp->pipefd = -1;
    sp->child = 0;
    if (store_sock_path(&drv->store, d->name, d->uuid, sock, sizeof(sock)) < 0 ||
        store_log_path(&drv->store, d->name, sp->log_path, sizeof(sp->log_path)) < 0)
        return err_set(e, ENAMETOOLONG, "domain name '%s' is too long for its socket path",
                       d->name);
    char **argv = NULL;
    int r = build_argv(drv, d, sock, restore, &argv, e);
    if (r < 0)
        return r;
    int lfd = listen_control(sock, e);
    if (lfd < 0) {
        domain_argv_free(argv);
        return lfd;
    }
    int logfd = -1;
    r = control_arg_to_fd(argv, sock, lfd, e);
    if (r == 0 && (logfd = open(sp->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                                0600)) < 0)
        r = err_set_errno(e, errno, "cannot open %s", sp->log_path);
    if (r == 0) {
        sp->log_off = lseek(logfd, 0, SEEK_END);
        log_header(logfd, argv);
        r = spawn_begin(argv, logfd, lfd, sp, e);
        close(logfd);
    }
    close(lfd);
    domain_argv_free(argv);
    if (r < 0)
        unlink(sock);
    return r;
}

int domain_spawn_end(struct domain_driver *drv, struct domain *d, struct domain_spawn *sp,
                     struct err *e)
{
    pid_t pid = 0;
    int r = spawn_result(sp, drv->vmm_path, &pid, e);
    /* The pidfd came from the intermediate child (send_vmm_pid): opening
     * one here by number could name another process by now. */
    int pidfd = sp->pidfd;
    sp->pidfd = -1;
    struct pollfd pp = { .fd = pidfd, .events = POLLIN };
    if (r == 0 && pidfd >= 0 && poll(&pp, 1, 0) == 1) {
        char tail[512];
        domain_log_tail(sp->log_path, sp->log_off, tail, sizeof(tail));
        r = err_set(e, EIO, "the VMM exited at once: %s", tail[0] ? tail : "(no message)");
    } else if (r == 0 && pidfd < 0) {
        /* Unwatchable (a kernel before 5.3): it must not run unmanaged;
         * by pid, as there is nothing better there. */
        r = err_set(e, ENOSYS, "cannot watch the VMM (no pidfd)");
        kill(pid, SIGKILL);
    }
    if (r < 0) {
        if (pidfd >= 0) {
            /* Exited, or never ran: the pidfd still names it. */
            syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
            close(pidfd);
        }
        char sock[108];
        if (store_sock_path(&drv->store, d->name, d->uuid, sock, sizeof(sock)) == 0)
            unlink(sock);
        return r;
    }
    d->pid = pid;
    d->drv = drv;
    sp->pidfd = pidfd;
    return 0;
}

void domain_spawn_wait(struct domain_spawn *sp)
{
    while (sp->pipefd >= 0 && !domain_spawn_poll(sp)) {
        struct pollfd p = { .fd = sp->pipefd, .events = POLLIN };
        if (poll(&p, 1, -1) < 0 && errno != EINTR)
            break;
    }
}

/* Spawns the VMM and waits for its exec; on failure nothing runs and
 * d->live is kept for the caller to drop. */
int domain_spawn_vmm(struct domain_driver *drv, struct domain *d, const char *restore,
                     struct domain_spawn *sp, struct err *e)
{
    int r = domain_spawn_begin(drv, d, restore, sp, e);
    if (r < 0)
        return r;
    domain_spawn_wait(sp);
    return domain_spawn_end(drv, d, sp, e);
}
