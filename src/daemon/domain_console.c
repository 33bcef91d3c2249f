/* virDomainOpenConsole: the guest's serial port as a duplex stream. The
 * VMM opened a pty for COM1 and keeps its slave open; the daemon opens the
 * same slave and relays bytes between it and the client's stream. One
 * session per domain, as libvirt allows (a forced open ends the old one). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/domain.h"
#include "daemon/domain_conf.h"
#include "daemon/domain_rpc.h"
#include "daemon/domain_run.h"
#include "daemon/rpc/dispatch.h"
#include "daemon/rpc/server.h"
#include "util/evloop.h"
#include "util/log.h"

/* virDomainConsoleFlags */
#define CONSOLE_FORCE 1u

struct console {
    struct console *next;
    struct evloop *loop;
    struct rpc_stream *st;     /* NULL once the client side is gone */
    int fd;                    /* the pty; -1 once it hung up */
    uint8_t uuid[16];
};

/* Open sessions, to refuse a second one for the same domain. */
static struct console *consoles;

static void console_unwatch(struct console *con)
{
    if (con->fd < 0)
        return;
    if (con->loop)
        evloop_del(con->loop, con->fd);
    close(con->fd);
    con->fd = -1;
}

static void console_free(struct console *con)
{
    for (struct console **pp = &consoles; *pp; pp = &(*pp)->next) {
        if (*pp == con) {
            *pp = con->next;
            break;
        }
    }
    console_unwatch(con);
    free(con);
}

/* Guest output: to the client. A hang-up (the VMM is gone) ends the
 * stream from our side. */
static void on_pty(void *opaque, uint32_t events)
{
    struct console *con = opaque;
    char buf[4096];
    ssize_t n = read(con->fd, buf, sizeof(buf));
    if (n > 0) {
        if (rpc_stream_send(con->st, buf, (size_t)n) < 0)
            log_debug("console: the client is not keeping up");
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    console_unwatch(con);
    rpc_stream_send_eof(con->st);
}

/* Keystrokes: to the guest. A full pty drops them, as a serial line would. */
static int on_data(struct rpc_stream *st, const uint8_t *data, size_t len, void *opaque)
{
    struct console *con = opaque;
    if (con->fd < 0)
        return 0;
    while (len) {
        ssize_t n = write(con->fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static void on_close(struct rpc_stream *st, bool aborted, void *opaque)
{
    console_free(opaque);
}

static const struct rpc_stream_ops console_ops = {
    .on_data = on_data,
    .on_close = on_close,
};

static struct console *console_find(const uint8_t uuid[16])
{
    for (struct console *con = consoles; con; con = con->next)
        if (con->fd >= 0 && memcmp(con->uuid, uuid, 16) == 0)
            return con;
    return NULL;
}

int domain_console_open(struct rpc_client *c, const void *args, void *ret,
                        struct rpc_error *err)
{
    const remote_domain_open_console_args *a = args;
    struct daemon *dm = rpc_client_daemon(c);
    struct domain_driver *drv = dm->domains;
    struct domain *d = domain_find_uuid(&drv->table, (const uint8_t *)a->dom.uuid);
    if (!d)
        return rpc_err_set(err, VIR_ERR_NO_DOMAIN, VIR_FROM_QEMU,
                           "no domain with matching uuid (%s)", a->dom.name);
    if (!domain_is_active(d))
        return rpc_err_set(err, VIR_ERR_OPERATION_INVALID, VIR_FROM_QEMU,
                           "domain is not running");
    const char *dev = a->dev_name ? *a->dev_name : NULL;
    if (dev && strcmp(dev, "serial0") && strcmp(dev, "console0"))
        return rpc_err_set(err, VIR_ERR_INTERNAL_ERROR, VIR_FROM_QEMU,
                           "cannot find character device %s", dev);
    const char *pty = d->live->serial.pty_path;
    if (!pty)
        return rpc_err_set(err, VIR_ERR_OPERATION_FAILED, VIR_FROM_QEMU,
                           "character device %s is not using a PTY", dev ? dev : "console0");
    struct console *old = console_find(d->uuid);
    if (old && !(a->flags & CONSOLE_FORCE))
        return rpc_err_set(err, VIR_ERR_OPERATION_FAILED, VIR_FROM_QEMU,
                           "Active console session exists for this domain");
    struct console *con = calloc(1, sizeof(*con));
    if (!con)
        return rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_QEMU, "out of memory");
    con->loop = dm->loop;
    memcpy(con->uuid, d->uuid, 16);
    con->fd = open(pty, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (con->fd < 0) {
        int r = errno;
        free(con);
        return rpc_err_set(err, VIR_ERR_SYSTEM_ERROR, VIR_FROM_QEMU,
                           "Unable to open tty %s: %s", pty, strerror(r));
    }
    if (con->loop && evloop_add(con->loop, con->fd, EPOLLIN, on_pty, con) < 0) {
        close(con->fd);
        free(con);
        return rpc_err_set(err, VIR_ERR_INTERNAL_ERROR, VIR_FROM_QEMU,
                           "cannot watch the console of domain '%s'", d->name);
    }
    con->st = rpc_stream_open(c, &console_ops, con, err);
    if (!con->st) {
        console_unwatch(con);
        free(con);
        return -1;
    }
    if (old) {
        /* The forced takeover: the old client sees its console end. */
        console_unwatch(old);
        rpc_stream_send_eof(old->st);
    }
    con->next = consoles;
    consoles = con;
    return 0;
}
