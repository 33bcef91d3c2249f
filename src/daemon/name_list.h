/* The lists of the remote protocol (list defined/active domains,
 * networks, pools, and list all networks/pools): one copy of the "first
 * max names that pass a filter" loop and of the "every object that
 * matches the flags" loop for every kind of object. */
#ifndef CVIRT_DAEMON_NAME_LIST_H
#define CVIRT_DAEMON_NAME_LIST_H

#include <errno.h>
#include <stdbool.h>
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

/* The flags virConnectListAllNetworks and virConnectListAllStoragePools
 * share (libvirt gives both the same values). */
#define NAME_LIST_INACTIVE     (1u << 0)
#define NAME_LIST_ACTIVE       (1u << 1)
#define NAME_LIST_PERSISTENT   (1u << 2)
#define NAME_LIST_TRANSIENT    (1u << 3)
#define NAME_LIST_AUTOSTART    (1u << 4)
#define NAME_LIST_NO_AUTOSTART (1u << 5)

/* Whether an object in that state passes flags: each pair of bits filters
 * only when at least one of the two is set. */
static inline bool name_list_state_match(unsigned flags, bool active, bool persistent,
                                         bool autostart)
{
    const struct { unsigned yes, no; bool is; } pairs[] = {
        { NAME_LIST_ACTIVE, NAME_LIST_INACTIVE, active },
        { NAME_LIST_PERSISTENT, NAME_LIST_TRANSIENT, persistent },
        { NAME_LIST_AUTOSTART, NAME_LIST_NO_AUTOSTART, autostart },
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        if (!(flags & (pairs[i].yes | pairs[i].no)))
            continue;
        if (!(flags & (pairs[i].is ? pairs[i].yes : pairs[i].no)))
            return false;
    }
    return true;
}

/* match(ctx, i, flags): whether object i is listed; make(elem, ctx, i):
 * fills the zeroed reply element for object i, or returns -ENOMEM having
 * allocated nothing that stays in elem. */
typedef bool (*name_list_match)(const void *ctx, size_t i, unsigned flags);
typedef int (*name_list_make)(void *elem, const void *ctx, size_t i);

/* A "list all" reply over n objects: *count is how many match flags and,
 * with need_results, *val a new array of that many elements of elem_size
 * bytes (*len of them filled). -ENOMEM when out of memory; what was filled
 * stays in *val / *len so the reply's XDR free releases it. */
static inline int name_list_objects(size_t n, unsigned flags, bool need_results,
                                    size_t elem_size, name_list_match match,
                                    name_list_make make, const void *ctx, void **val,
                                    unsigned *len, unsigned *count)
{
    unsigned char *arr = NULL;
    *count = 0;
    if (need_results && n && !(arr = calloc(n, elem_size)))
        return -ENOMEM;
    *val = arr;
    for (size_t i = 0; i < n; i++) {
        if (!match(ctx, i, flags))
            continue;
        if (arr) {
            if (make(arr + (size_t)*len * elem_size, ctx, i) < 0)
                return -ENOMEM;
            (*len)++;
        }
        (*count)++;
    }
    return 0;
}

#endif
