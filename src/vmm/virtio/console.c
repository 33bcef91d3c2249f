/* virtio-console (virtio 1.x, 5.3) with one port and no multiport: the
 * guest's hvc0. Queue 0 carries host input to the guest, queue 1 guest
 * output to the host.
 *
 * Backends: a UNIX stream socket this process listens on (one client at
 * a time; a second is turned away), or a pty whose slave side the user
 * opens. Guest output is always taken off the queue at once, because
 * Linux's hvc driver spins until its buffer comes back; while nobody is
 * connected or the peer is slow it waits in a ring buffer, and what does
 * not fit is dropped. Host input is read only while the guest has posted
 * receive buffers for it, so a guest that stops reading stops the reads. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "util/evloop.h"
#include "util/log.h"
#include "virtio/virtio.h"

#define VCON_RXQ 0
#define VCON_TXQ 1
#define VCON_OUT_RING (64 * 1024)
#define VCON_IN_CHUNK 4096
#define VCON_CONFIG_SIZE 12   /* cols, rows, max_nr_ports, emerg_wr */

struct vcon {
    struct virtio_dev *vd;
    bool is_pty;
    int listen_fd;             /* socket mode */
    struct sockaddr_un addr;
    int fd;                    /* the client or the pty master; -1 when none */
    int pty_slave_fd;          /* held open so the master never hangs up */
    char pty_path[64];
    uint32_t watched;          /* epoll events registered for fd */

    uint8_t in[VCON_IN_CHUNK]; /* read from the host, not yet in the guest */
    size_t in_off, in_len;

    uint8_t out[VCON_OUT_RING];/* from the guest, not yet written */
    size_t out_head, out_len;
    unsigned long dropped;

    struct virtq_elem elem;
};

static void vcon_update_watch(struct vcon *c);

static void vcon_disconnect(struct vcon *c)
{
    if (c->fd < 0 || c->is_pty)
        return;
    evloop_del(c->vd->loop, c->fd);
    close(c->fd);
    c->fd = -1;
    c->watched = 0;
    /* Input already read still goes to the guest. */
}

/* Writes what the ring holds until the peer would block. */
static void vcon_flush(struct vcon *c)
{
    while (c->fd >= 0 && c->out_len) {
        size_t chunk = VCON_OUT_RING - c->out_head;
        if (chunk > c->out_len)
            chunk = c->out_len;
        ssize_t n = write(c->fd, c->out + c->out_head, chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            vcon_disconnect(c);
            break;
        }
        c->out_head = (c->out_head + (size_t)n) % VCON_OUT_RING;
        c->out_len -= (size_t)n;
    }
}

static void vcon_queue_output(struct vcon *c, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (c->out_len == VCON_OUT_RING) {
            c->dropped += len - i;
            log_debug("virtio-console: output buffer full, %zu bytes dropped", len - i);
            return;
        }
        c->out[(c->out_head + c->out_len) % VCON_OUT_RING] = p[i];
        c->out_len++;
    }
}

static void vcon_transmit(struct vcon *c)
{
    struct virtio_dev *vd = c->vd;
    bool pushed = false;
    while (virtio_pop(vd, VCON_TXQ, &c->elem) > 0) {
        for (unsigned i = 0; i < c->elem.nout; i++)
            vcon_queue_output(c, c->elem.iov[i].iov_base, c->elem.iov[i].iov_len);
        virtio_push(vd, VCON_TXQ, c->elem.head, 0);
        pushed = true;
    }
    if (pushed)
        virtio_queue_interrupt(vd, VCON_TXQ);
    vcon_flush(c);
}

/* Moves pending host input into the guest's receive buffers. */
static void vcon_receive(struct vcon *c)
{
    struct virtio_dev *vd = c->vd;
    bool pushed = false;
    while (c->in_len && virtio_pop(vd, VCON_RXQ, &c->elem) > 0) {
        size_t n = virtq_elem_write(&c->elem, 0, c->in + c->in_off, c->in_len);
        c->in_off += n;
        c->in_len -= n;
        virtio_push(vd, VCON_RXQ, c->elem.head, (uint32_t)n);
        pushed = true;
    }
    if (pushed)
        virtio_queue_interrupt(vd, VCON_RXQ);
}

static void vcon_read_host(struct vcon *c)
{
    if (c->in_len || c->fd < 0)
        return;
    ssize_t n = read(c->fd, c->in, sizeof(c->in));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        /* EOF or an error: the client left (a pty master never does while
         * we hold its slave). */
        if (!c->is_pty)
            vcon_disconnect(c);
        return;
    }
    c->in_off = 0;
    c->in_len = (size_t)n;
    vcon_receive(c);
}

static void vcon_on_fd(void *opaque, uint32_t events)
{
    struct vcon *c = opaque;
    virtio_lock(c->vd);
    if (events & EPOLLOUT)
        vcon_flush(c);
    /* A hang-up is reported whatever we watch: with input still pending
     * there is nothing to read it with, so let the client go now. */
    if ((events & (EPOLLHUP | EPOLLERR)) && c->in_len)
        vcon_disconnect(c);
    else if (c->fd >= 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        vcon_read_host(c);
    vcon_update_watch(c);
    virtio_unlock(c->vd);
}

/* Reads only while input can go somewhere, writes only while output waits. */
static void vcon_update_watch(struct vcon *c)
{
    if (c->fd < 0)
        return;
    uint32_t want = (c->in_len ? 0 : EPOLLIN) | (c->out_len ? EPOLLOUT : 0);
    if (want == c->watched)
        return;
    if (evloop_mod(c->vd->loop, c->fd, want) == 0)
        c->watched = want;
}

static void vcon_on_accept(void *opaque, uint32_t events)
{
    struct vcon *c = opaque;
    int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    virtio_lock(c->vd);
    if (c->fd >= 0) {
        static const char busy[] = "cvirt-vmm: this console already has a client\n";
        if (write(fd, busy, sizeof(busy) - 1) < 0)
            log_debug("virtio-console: turning a second client away");
        close(fd);
    } else if (evloop_add(c->vd->loop, fd, EPOLLIN, vcon_on_fd, c) < 0) {
        close(fd);
    } else {
        c->fd = fd;
        c->watched = EPOLLIN;
        vcon_flush(c);
        vcon_update_watch(c);
    }
    virtio_unlock(c->vd);
}

static int vcon_open_socket(struct vcon *c, const char *path, struct err *e)
{
    if (!*path || strlen(path) >= sizeof(c->addr.sun_path))
        return err_set(e, EINVAL, "--vconsole socket='%s': empty or longer than %zu bytes",
                       path, sizeof(c->addr.sun_path) - 1);
    c->addr.sun_family = AF_UNIX;
    strcpy(c->addr.sun_path, path);
    /* A socket left by an earlier run is ours to replace; nothing else is. */
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->listen_fd < 0)
        return err_set_errno(e, errno, "--vconsole: socket");
    if (bind(c->listen_fd, (struct sockaddr *)&c->addr, sizeof(c->addr)) < 0)
        return err_set_errno(e, errno, "--vconsole: cannot listen on %s", path);
    if (listen(c->listen_fd, 1) < 0)
        return err_set_errno(e, errno, "--vconsole: cannot listen on %s", path);
    int r = evloop_add(c->vd->loop, c->listen_fd, EPOLLIN, vcon_on_accept, c);
    if (r < 0)
        return err_set(e, -r, "--vconsole: cannot watch %s", path);
    return 0;
}

static int vcon_open_pty(struct vcon *c, struct err *e)
{
    c->fd = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (c->fd < 0)
        return err_set_errno(e, errno, "--vconsole pty: cannot open a pty");
    if (grantpt(c->fd) < 0 || unlockpt(c->fd) < 0 ||
        ptsname_r(c->fd, c->pty_path, sizeof(c->pty_path)))
        return err_set_errno(e, errno, "--vconsole pty: cannot set up the pty");
    c->pty_slave_fd = open(c->pty_path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (c->pty_slave_fd < 0)
        return err_set_errno(e, errno, "--vconsole pty: cannot open %s", c->pty_path);
    struct termios t;
    if (tcgetattr(c->pty_slave_fd, &t) == 0) {
        cfmakeraw(&t);
        tcsetattr(c->pty_slave_fd, TCSANOW, &t);
    }
    int r = evloop_add(c->vd->loop, c->fd, EPOLLIN, vcon_on_fd, c);
    if (r < 0)
        return err_set(e, -r, "--vconsole: cannot watch %s", c->pty_path);
    c->watched = EPOLLIN;
    fprintf(stderr, "cvirt-vmm: virtio console is %s\n", c->pty_path);
    return 0;
}

static void vcon_destroy(struct virtio_dev *vd)
{
    struct vcon *c = vd->priv;
    if (!c)
        return;
    if (c->fd >= 0) {
        evloop_del(vd->loop, c->fd);
        close(c->fd);
    }
    if (c->pty_slave_fd >= 0)
        close(c->pty_slave_fd);
    if (c->listen_fd >= 0) {
        evloop_del(vd->loop, c->listen_fd);
        close(c->listen_fd);
        unlink(c->addr.sun_path);
    }
    free(c);
    vd->priv = NULL;
}

static int vcon_create(struct virtio_dev *vd, const char *arg, struct err *e)
{
    struct vcon *c = calloc(1, sizeof(*c));
    if (!c)
        return err_set(e, ENOMEM, "out of memory");
    c->vd = vd;
    c->fd = c->listen_fd = c->pty_slave_fd = -1;
    vd->priv = c;
    vd->device_features = 0;
    int r;
    if (arg && !strncmp(arg, "socket=", 7)) {
        r = vcon_open_socket(c, arg + 7, e);
    } else if (arg && !strcmp(arg, "pty")) {
        c->is_pty = true;
        r = vcon_open_pty(c, e);
    } else {
        r = err_set(e, EINVAL, "--vconsole '%s': must be socket=PATH or pty", arg ? arg : "");
    }
    if (r < 0)
        vcon_destroy(vd);
    return r;
}

static void vcon_config_read(struct virtio_dev *vd, unsigned off, uint8_t *data, unsigned len)
{
    /* No size, one port, no emergency write: all zero. */
    memset(data, 0, len);
}

static void vcon_config_write(struct virtio_dev *vd, unsigned off, const uint8_t *data,
                              unsigned len)
{
    /* emerg_wr is only valid with VIRTIO_CONSOLE_F_EMERG_WRITE, not offered. */
}

static void vcon_queue_notify(struct virtio_dev *vd, unsigned q)
{
    struct vcon *c = vd->priv;
    if (q == VCON_TXQ) {
        vcon_transmit(c);
    } else {
        vcon_receive(c);
        /* Room again: read more if the host had more. */
        if (!c->in_len && c->fd >= 0)
            vcon_read_host(c);
    }
    vcon_update_watch(c);
}

const struct virtio_dev_ops virtio_console_ops = {
    .name = "console",
    .device_id = VIRTIO_ID_CONSOLE,
    .nqueues = 2,
    .queue_size = 256,
    .config_size = VCON_CONFIG_SIZE,
    .create = vcon_create,
    .destroy = vcon_destroy,
    .config_read = vcon_config_read,
    .config_write = vcon_config_write,
    .queue_notify = vcon_queue_notify,
};
