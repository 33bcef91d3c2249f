/* The host end of the guest's serial console: the terminal (raw mode, with
 * an escape key), a pseudo-terminal, or nothing. */
#ifndef CVIRT_VMM_CONSOLE_H
#define CVIRT_VMM_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct evloop;
struct console;

enum console_mode {
    CONSOLE_STDIO,  /* stdin/stdout; raw mode when stdin is a terminal */
    CONSOLE_PTY,    /* a new /dev/pts/N, its path printed on stderr */
    CONSOLE_NONE,   /* output dropped, no input */
};

/* Where received bytes go (the UART). can_receive tells how many bytes the
 * device can take now; when it had no room, the device calls
 * console_rx_ready() once room frees up. Called on the event-loop thread. */
struct console_sink {
    size_t (*can_receive)(void *opaque);
    void (*receive)(void *opaque, const uint8_t *buf, size_t len);
    void *opaque;
};

/* quit is called (event-loop thread) when the user types the escape
 * sequence Ctrl-A x. */
int console_open(struct console **out, enum console_mode mode, struct evloop *loop,
                 void (*quit)(void *opaque), void *quit_opaque, struct err *e);
void console_set_sink(struct console *c, const struct console_sink *sink);
/* Guest output; any thread. Never blocks the guest on a slow pty reader. */
void console_write(struct console *c, const uint8_t *buf, size_t len);
void console_rx_ready(struct console *c);
/* The /dev/pts/N path of a CONSOLE_PTY console, NULL for other modes. */
const char *console_pty_path(const struct console *c);
/* Restores the terminal. */
void console_close(struct console *c);

#endif
