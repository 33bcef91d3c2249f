#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static enum log_level level = LOG_WARN;
static const char *progname = "cvirt";

void log_init(const char *prog)
{
    const char *slash = strrchr(prog, '/');
    progname = slash ? slash + 1 : prog;
    const char *env = getenv("CVIRT_LOG");
    if (!env)
        return;
    if (!strcmp(env, "error"))
        level = LOG_ERROR;
    else if (!strcmp(env, "info"))
        level = LOG_INFO;
    else if (!strcmp(env, "debug"))
        level = LOG_DEBUG;
    else
        level = LOG_WARN;
}

void log_set_level(enum log_level lvl) { level = lvl; }
enum log_level log_get_level(void) { return level; }

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    static const char *const names[] = { "error", "warning", "info", "debug" };
    if (lvl > level)
        return;
    char line[1024];
    int n = snprintf(line, sizeof(line), "%s: %s: ", progname, names[lvl]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - n - 2, fmt, ap);
    va_end(ap);
    size_t len = strlen(line);
    /* A raw-mode terminal needs \r\n to start the next line at column 0. */
    if (isatty(STDERR_FILENO))
        line[len++] = '\r';
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
