/* Arbitrary bytes as storage pool XML and as volume XML, both from clients:
 * errors are fine; a crash, a leak, or an accepted pool whose formatted XML
 * does not parse back to the same pool and the same text is a bug. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/storage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_pool(const struct storage_pool *p)
{
    struct storage_pool_usage u = { 1, 2, 3 };
    char *x1 = storage_pool_format(p, &u);
    if (!x1)
        return;
    struct storage_pool *q = NULL;
    struct err e = {0};
    if (storage_pool_parse(x1, &q, &e) < 0) {
        fprintf(stderr, "formatted pool XML does not parse: %s\n%s", e.msg, x1);
        abort();
    }
    if (strcmp(p->name, q->name) || strcmp(p->path, q->path) ||
        memcmp(p->uuid, q->uuid, 16)) {
        fprintf(stderr, "pool changed through its XML:\n%s", x1);
        abort();
    }
    char *x2 = storage_pool_format(q, &u);
    if (x2 && strcmp(x1, x2)) {
        fprintf(stderr, "format is not a fixed point:\n%s---\n%s", x1, x2);
        abort();
    }
    free(x1);
    free(x2);
    storage_pool_free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The procedures hand the parsers NUL-terminated XDR strings. */
    char *xml = malloc(size + 1);
    if (!xml)
        return 0;
    memcpy(xml, data, size);
    xml[size] = '\0';
    struct storage_pool *p = NULL;
    struct err e = {0};
    if (storage_pool_parse(xml, &p, &e) == 0) {
        if (!storage_name_valid(p->name) || p->path[0] != '/') {
            fprintf(stderr, "accepted pool name '%s' or path '%s'\n", p->name, p->path);
            abort();
        }
        check_pool(p);
        storage_pool_free(p);
    }
    struct storage_vol_def d;
    err_clear(&e);
    if (storage_vol_parse(xml, &d, &e) == 0) {
        if (!storage_name_valid(d.name)) {
            fprintf(stderr, "accepted volume name '%s'\n", d.name);
            abort();
        }
        storage_vol_def_clear(&d);
    }
    free(xml);
    return 0;
}
