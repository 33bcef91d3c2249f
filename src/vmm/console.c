/* The host end of the serial console.
 *
 * Input is read on the event-loop thread into a small pending buffer and
 * handed to the sink (the UART) as far as it has room. While bytes wait,
 * the input fd is not watched, so a guest that stops reading cannot make the
 * loop spin or lose keystrokes; console_rx_ready() (any thread) wakes the
 * loop through an eventfd to carry on. Inputs epoll cannot watch (a regular
 * file or /dev/null as stdin) are read through the same eventfd instead.
 *
 * A pty console keeps its own slave fd open: otherwise the master reports
 * a hang-up until someone attaches, and output before that would be lost. */
#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <termios.h>
#include <unistd.h>

#include "util/evloop.h"
#include "util/log.h"

#define ESCAPE_CHAR 0x01   /* Ctrl-A */
#define READ_CHUNK 256

struct console {
    enum console_mode mode;
    struct evloop *loop;
    void (*quit)(void *opaque);
    void *quit_opaque;

    int in_fd, out_fd;     /* -1 when absent; the same fd for a pty */
    int pty_slave_fd;      /* held open so the master never sees a hang-up */
    char pty_path[64];
    int wake_fd;           /* eventfd: rx_ready, new sink, unpollable input */
    bool in_pollable;
    bool watching;         /* in_fd is registered on the loop */
    bool in_eof;
    bool escapes;          /* stdin is a terminal: Ctrl-A commands */
    bool escape_pending;
    bool raw_stdin;        /* stdin was put into raw mode */

    uint8_t pending[2 * READ_CHUNK];  /* escape handling may double bytes */
    size_t pending_off, pending_len;

    pthread_mutex_t sink_lock;
    struct console_sink sink;
    bool have_sink;

    pthread_mutex_t out_lock;
    unsigned long dropped;   /* output bytes a full pty could not take */
};

/* The terminal settings to restore, also from atexit(). */
static struct termios saved_termios;
static bool termios_saved;

static void console_restore_tty(void)
{
    if (termios_saved) {
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
        termios_saved = false;
    }
}

static int console_raw_stdin(struct err *e)
{
    static bool atexit_done;
    struct termios t;
    if (tcgetattr(STDIN_FILENO, &t) < 0)
        return err_set_errno(e, errno, "cannot read the terminal settings");
    saved_termios = t;
    termios_saved = true;
    if (!atexit_done) {
        atexit(console_restore_tty);
        atexit_done = true;
    }
    /* Raw in both directions: the guest sends \r\n itself. */
    cfmakeraw(&t);
    if (tcsetattr(STDIN_FILENO, TCSANOW, &t) < 0) {
        termios_saved = false;
        return err_set_errno(e, errno, "cannot put the terminal into raw mode");
    }
    return 0;
}

static void console_wake(struct console *c)
{
    if (c->wake_fd < 0)
        return;
    uint64_t one = 1;
    ssize_t r = write(c->wake_fd, &one, sizeof(one));
    (void)r;   /* a full counter is still a pending wake-up */
}

static void console_on_input(void *opaque, uint32_t events);

static void console_watch(struct console *c, bool on)
{
    if (!c->in_pollable || on == c->watching)
        return;
    if (on) {
        int r = evloop_add(c->loop, c->in_fd, EPOLLIN, console_on_input, c);
        if (r < 0) {
            log_warn("console: cannot watch input: %s", strerror(-r));
            c->in_eof = true;
            return;
        }
    } else {
        evloop_del(c->loop, c->in_fd);
    }
    c->watching = on;
}

/* Moves what the sink can take; returns true when all of it went. */
static bool console_deliver(struct console *c)
{
    pthread_mutex_lock(&c->sink_lock);
    /* Until the sink says "no room" (0): only that answer promises a
     * console_rx_ready() later. Stopping after a partial delivery would
     * leave input stuck forever. */
    while (c->have_sink && c->pending_len > 0) {
        size_t room = c->sink.can_receive(c->sink.opaque);
        if (room == 0)
            break;
        size_t n = room < c->pending_len ? room : c->pending_len;
        c->sink.receive(c->sink.opaque, c->pending + c->pending_off, n);
        c->pending_off += n;
        c->pending_len -= n;
    }
    pthread_mutex_unlock(&c->sink_lock);
    if (c->pending_len == 0)
        c->pending_off = 0;
    return c->pending_len == 0;
}

/* Filters the Ctrl-A commands out of terminal input into the pending
 * buffer; returns false when the user asked to quit. */
static bool console_take_input(struct console *c, const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t b = buf[i];
        if (!c->escapes) {
            c->pending[c->pending_len++] = b;
            continue;
        }
        if (c->escape_pending) {
            c->escape_pending = false;
            if (b == 'x' || b == 'X')
                return false;
            /* Ctrl-A Ctrl-A sends one; an unknown command sends both. */
            c->pending[c->pending_len++] = ESCAPE_CHAR;
            if (b == ESCAPE_CHAR)
                continue;
        } else if (b == ESCAPE_CHAR) {
            c->escape_pending = true;
            continue;
        }
        c->pending[c->pending_len++] = b;
    }
    return true;
}

/* Reads one chunk; returns false at end of input or on quit. */
static bool console_read_chunk(struct console *c)
{
    if (c->pending_len > 0)
        return true;   /* only read once everything before went out */
    c->pending_off = 0;
    uint8_t buf[READ_CHUNK];
    ssize_t n = read(c->in_fd, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (n <= 0) {
        /* End of a pipe or file just ends input; the guest keeps running. */
        if (n < 0)
            log_debug("console: input: %s", strerror(errno));
        c->in_eof = true;
        return false;
    }
    if (!console_take_input(c, buf, (size_t)n)) {
        c->in_eof = true;
        if (c->quit)
            c->quit(c->quit_opaque);
        return false;
    }
    return true;
}

/* Decides whether to read more: only once everything read so far has been
 * delivered. */
static void console_pump(struct console *c)
{
    if (!console_deliver(c) || c->in_eof || c->in_fd < 0) {
        console_watch(c, false);
        return;
    }
    if (c->in_pollable) {
        console_watch(c, true);
        return;
    }
    /* Unpollable input is always "ready": read a chunk per loop turn. */
    if (console_read_chunk(c) && console_deliver(c))
        console_wake(c);
}

static void console_on_input(void *opaque, uint32_t events)
{
    struct console *c = opaque;
    console_read_chunk(c);
    console_pump(c);
}

static void console_on_wake(void *opaque, uint32_t events)
{
    struct console *c = opaque;
    uint64_t v;
    ssize_t r = read(c->wake_fd, &v, sizeof(v));
    (void)r;
    console_pump(c);
}

static int console_open_pty(struct console *c, struct err *e)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0)
        return err_set_errno(e, errno, "cannot open a pseudo-terminal");
    c->in_fd = c->out_fd = m;
    if (grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, c->pty_path, sizeof(c->pty_path)))
        return err_set_errno(e, errno, "cannot set up the pseudo-terminal");
    c->pty_slave_fd = open(c->pty_path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (c->pty_slave_fd < 0)
        return err_set_errno(e, errno, "cannot open %s", c->pty_path);
    struct termios t;
    if (tcgetattr(c->pty_slave_fd, &t) < 0)
        return err_set_errno(e, errno, "cannot read the settings of %s", c->pty_path);
    cfmakeraw(&t);
    if (tcsetattr(c->pty_slave_fd, TCSANOW, &t) < 0)
        return err_set_errno(e, errno, "cannot put %s into raw mode", c->pty_path);
    /* Output must never wait for a reader. */
    if (fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK) < 0)
        return err_set_errno(e, errno, "cannot make the pseudo-terminal non-blocking");
    fprintf(stderr, "cvirt-vmm: console is %s\n", c->pty_path);
    return 0;
}

static int console_open_stdio(struct console *c, struct err *e)
{
    c->in_fd = STDIN_FILENO;
    c->out_fd = STDOUT_FILENO;
    if (!isatty(STDIN_FILENO))
        return 0;
    c->escapes = true;
    fprintf(stderr, "cvirt-vmm: Ctrl-A x quits\n");
    int r = console_raw_stdin(e);
    if (r < 0)
        return r;
    c->raw_stdin = true;
    return 0;
}

/* Registers the wake-up and, when possible, the input fd. */
static int console_start_input(struct console *c, struct err *e)
{
    c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->wake_fd < 0)
        return err_set_errno(e, errno, "eventfd");
    int r = evloop_add(c->loop, c->wake_fd, EPOLLIN, console_on_wake, c);
    if (r < 0) {
        close(c->wake_fd);
        c->wake_fd = -1;
        return err_set_errno(e, -r, "cannot watch the console wake-up");
    }
    if (c->in_fd < 0)
        return 0;
    /* epoll refuses regular files and /dev/null: those are pumped. */
    c->in_pollable = true;
    r = evloop_add(c->loop, c->in_fd, EPOLLIN, console_on_input, c);
    if (r == -EPERM) {
        c->in_pollable = false;
        console_wake(c);
        return 0;
    }
    if (r < 0) {
        /* A closed stdin, say: run without console input. */
        log_debug("console: no input: %s", strerror(-r));
        c->in_eof = true;
        return 0;
    }
    c->watching = true;
    return 0;
}

int console_open(struct console **out, enum console_mode mode, struct evloop *loop,
                 void (*quit)(void *opaque), void *quit_opaque, struct err *e)
{
    struct console *c = calloc(1, sizeof(*c));
    if (!c)
        return err_set(e, ENOMEM, "out of memory");
    c->mode = mode;
    c->loop = loop;
    c->quit = quit;
    c->quit_opaque = quit_opaque;
    c->in_fd = c->out_fd = c->pty_slave_fd = c->wake_fd = -1;
    pthread_mutex_init(&c->sink_lock, NULL);
    pthread_mutex_init(&c->out_lock, NULL);
    int r = 0;
    if (mode == CONSOLE_STDIO)
        r = console_open_stdio(c, e);
    else if (mode == CONSOLE_PTY)
        r = console_open_pty(c, e);
    if (r == 0 && loop)
        r = console_start_input(c, e);
    if (r < 0) {
        console_close(c);
        return r;
    }
    *out = c;
    return 0;
}

void console_set_sink(struct console *c, const struct console_sink *sink)
{
    pthread_mutex_lock(&c->sink_lock);
    c->have_sink = sink != NULL;
    if (sink)
        c->sink = *sink;
    pthread_mutex_unlock(&c->sink_lock);
    /* Input that arrived before the device existed can flow now. */
    if (sink)
        console_wake(c);
}

void console_rx_ready(struct console *c)
{
    console_wake(c);
}

const char *console_pty_path(const struct console *c)
{
    return c->mode == CONSOLE_PTY && c->pty_path[0] ? c->pty_path : NULL;
}

/* Blocks until all of buf is written; only for stdout, which the user
 * chose to be the console. */
static void console_write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            /* Someone made our stdout non-blocking: wait for room. */
            struct pollfd p = { .fd = fd, .events = POLLOUT };
            poll(&p, 1, 100);
        } else {
            return;   /* closed or broken: the guest's output goes nowhere */
        }
    }
}

static void console_write_pty(struct console *c, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(c->out_fd, buf, len);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            /* Nobody is reading and the buffer is full: drop. */
            if (c->dropped == 0)
                log_debug("console: %s is full, dropping output", c->pty_path);
            c->dropped += len;
            return;
        }
    }
}

void console_write(struct console *c, const uint8_t *buf, size_t len)
{
    if (!c || c->out_fd < 0 || len == 0)
        return;
    pthread_mutex_lock(&c->out_lock);
    if (c->mode == CONSOLE_PTY)
        console_write_pty(c, buf, len);
    else
        console_write_all(c->out_fd, buf, len);
    pthread_mutex_unlock(&c->out_lock);
}

void console_close(struct console *c)
{
    if (!c)
        return;
    if (c->loop) {
        if (c->watching)
            evloop_del(c->loop, c->in_fd);
        if (c->wake_fd >= 0)
            evloop_del(c->loop, c->wake_fd);
    }
    if (c->wake_fd >= 0)
        close(c->wake_fd);
    if (c->raw_stdin)
        console_restore_tty();
    if (c->mode == CONSOLE_PTY) {
        if (c->in_fd >= 0)
            close(c->in_fd);
        if (c->pty_slave_fd >= 0)
            close(c->pty_slave_fd);
    }
    pthread_mutex_destroy(&c->sink_lock);
    pthread_mutex_destroy(&c->out_lock);
    free(c);
}
