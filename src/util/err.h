/* Error reporting: functions return 0 or a negative errno and fill a
 * struct err with one line for the user. */
#ifndef CVIRT_UTIL_ERR_H
#define CVIRT_UTIL_ERR_H

#include <stdarg.h>

#define ERR_MSG_MAX 512

struct err {
    int code;               /* positive errno, 0 when unset */
    char msg[ERR_MSG_MAX];  /* one line, no trailing newline */
};

/* Sets e (when non-NULL) and returns -code so callers can
 * `return err_set(e, EINVAL, "...")`. The first error set wins: a message
 * already present is kept, because the innermost cause is the useful one. */
int err_set(struct err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like err_set, appending ": strerror(code)". */
int err_set_errno(struct err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes context to an already set message ("disk vda: " + msg). */
void err_prefix(struct err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline void err_clear(struct err *e) { e->code = 0; e->msg[0] = '\0'; }
static inline int err_is_set(const struct err *e) { return e->code != 0; }

#endif
