#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int err_vset(struct err *e, int code, int with_errno, const char *fmt, va_list ap)
{
    if (code <= 0)
        code = EINVAL;
    if (!e || e->code)
        return -code;
    e->code = code;
    int n = vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    if (with_errno && n >= 0 && (size_t)n < sizeof(e->msg))
        snprintf(e->msg + n, sizeof(e->msg) - n, ": %s", strerror(code));
    return -code;
}

int err_set(struct err *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = err_vset(e, code, 0, fmt, ap);
    va_end(ap);
    return r;
}

int err_set_errno(struct err *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = err_vset(e, code, 1, fmt, ap);
    va_end(ap);
    return r;
}

void err_prefix(struct err *e, const char *fmt, ...)
{
    if (!e || !e->code)
        return;
    char pre[ERR_MSG_MAX], old[ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof(pre), fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof(old));
    size_t n = strlen(pre);
    if (n >= sizeof(e->msg))
        n = sizeof(e->msg) - 1;
    memcpy(e->msg, pre, n);
    size_t m = strlen(old);
    if (m > sizeof(e->msg) - 1 - n)
        m = sizeof(e->msg) - 1 - n;
    memcpy(e->msg + n, old, m);
    e->msg[n + m] = '\0';
}
