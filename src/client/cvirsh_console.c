/* console: the guest's serial console over a duplex stream (procedure
 * 201), the terminal in raw mode, ^] to leave. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "client/cvirsh_cmds.h"
#include "client/cvirsh_dom.h"

#define ESCAPE_CHAR 0x1d    /* ^] */

static bool write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Copies both ways until ^], the end of the stream or an error. */
static bool console_loop(struct cvirsh *ctl, struct err *e)
{
    char escape = ctl->escape ? ctl->escape : ESCAPE_CHAR;
    char buf[4096];
    for (;;) {
        /* Drain what is queued first: poll on the socket can't see it. */
        int n = client_stream_recv(ctl->conn, buf, sizeof(buf), 0, e);
        if (n > 0) {
            if (!write_all(STDOUT_FILENO, buf, (size_t)n))
                return true;
            continue;
        }
        if (n == 0)
            return true;
        if (n != -EAGAIN)
            return false;
        struct pollfd p[2] = {
            { .fd = STDIN_FILENO, .events = POLLIN },
            { .fd = client_fd(ctl->conn), .events = POLLIN },
        };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            err_set_errno(e, errno, "poll");
            return false;
        }
        if (p[0].revents & (POLLIN | POLLHUP)) {
            ssize_t r = read(STDIN_FILENO, buf, sizeof(buf));
            if (r <= 0)
                return true;
            char *esc = memchr(buf, escape, (size_t)r);
            size_t len = esc ? (size_t)(esc - buf) : (size_t)r;
            if (len && client_stream_send(ctl->conn, buf, len, e) < 0)
                return false;
            if (esc)
                return true;
        }
    }
}

bool cvirsh_cmd_console(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    remote_nonnull_domain dom;
    if (!cvirsh_lookup_domain(ctl, cmd, &dom))
        return false;
    bool ok = false;
    int state, reason;
    struct err e = {0};
    struct termios saved;
    bool raw = false;
    if (!cvirsh_get_state(ctl, &dom, &state, &reason, &e)) {
        cvirsh_error(ctl, "Unable to get domain status");
        goto out;
    }
    if (state != 1 && state != 3 && state != 2) {
        cvirsh_error(ctl, "The domain is not running");
        goto out;
    }
    if (!isatty(STDIN_FILENO) && !getenv("CVIRSH_CONSOLE_NO_TTY")) {
        cvirsh_error(ctl, "Cannot run interactive console without a controlling TTY");
        goto out;
    }
    cvirsh_print_extra(ctl, "Connected to domain '%s'\n", dom.name);
    if (ctl->escape_str && ctl->escape_str[0] == '^')
        cvirsh_print_extra(ctl, "Escape character is %s (Ctrl + %c)\n",
                           ctl->escape_str, ctl->escape_str[1]);
    else if (ctl->escape_str)
        cvirsh_print_extra(ctl, "Escape character is %s\n", ctl->escape_str);
    else
        cvirsh_print_extra(ctl, "Escape character is ^] (Ctrl + ])\n");
    fflush(stdout);
    const char *dev = cvirsh_opt_str(cmd, "devname");
    char *devname = (char *)dev;
    remote_domain_open_console_args a = {
        .dom = dom, .dev_name = dev ? &devname : NULL,
        .flags = (cvirsh_opt_bool(cmd, "force") ? 1u : 0u) |
                 (cvirsh_opt_bool(cmd, "safe") ? 2u : 0u),
    };
    if (client_stream_open(ctl->conn, CLIENT_PROC_DOMAIN_OPEN_CONSOLE,
                           (xdrproc_t)xdr_remote_domain_open_console_args, &a, &e) < 0) {
        cvirsh_report(ctl, &e);
        goto out;
    }
    if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0) {
        struct termios t = saved;
        cfmakeraw(&t);
        raw = tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) == 0;
    }
    ok = console_loop(ctl, &e);
    if (raw)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    struct err fe = {0};
    if (client_stream_finish(ctl->conn, &fe) < 0 && ok) {
        e = fe;
        ok = false;
    }
    if (!ok)
        cvirsh_report(ctl, &e);
out:
    cvirsh_domain_free(&dom);
    return ok;
}
