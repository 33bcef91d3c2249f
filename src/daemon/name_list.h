/* The names lists of the remote protocol (list defined/active domains,
 * networks, pools): one copy of the "first max names that pass a filter"
 * loop for every kind of object. */
#ifndef CVIRT_DAEMON_NAME_LIST_H
#define CVIRT_DAEMON_NAME_LIST_H

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* name_at(ctx, i): the name of object i, or NULL to leave it out. */
typedef const char *(*name_list_at)(const void *ctx, size_t i);

/* Copies the names of up to max of the n objects into a new array *val
 * of *len names.  -ENOMEM when out of memory; what was copied stays in
 * *val / *len so the reply's XDR free releases it. max is checked by the
 * caller (each protocol call has its own limit and error text). */
static inline int name_list_fill(size_t n, int max, name_list_at name_at, const void *ctx,
                                 char ***val, unsigned *len)
{
    if (n == 0 || max <= 0)
        return 0;
    if (!(*val = calloc(n, sizeof(char *))))
        return -ENOMEM;
    for (size_t i = 0; i < n && *len < (unsigned)max; i++) {
        const char *name = name_at(ctx, i);
        if (!name)
            continue;
        if (!((*val)[*len] = strdup(name)))
            return -ENOMEM;
        (*len)++;
    }
    return 0;
}

#endif
