#include <stdio.h>
#include <stdlib.h>

#include "store_fixture.h"

struct store_fixture *store_fixture_new(const char *name)
{
    struct store_fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    snprintf(f->root, sizeof(f->root), "/tmp/%s.XXXXXX", name);
    if (!mkdtemp(f->root)) {
        free(f);
        return NULL;
    }
    snprintf(f->config, sizeof(f->config), "%s/etc/cvirt", f->root);
    snprintf(f->run, sizeof(f->run), "%s/run/cvirt", f->root);
    snprintf(f->log, sizeof(f->log), "%s/log/cvirt", f->root);
    snprintf(f->state, sizeof(f->state), "%s/lib/cvirt", f->root);
    struct err e = { 0 };
    if (store_init(&f->s, f->config, f->run, f->log, f->state, &e) < 0) {
        free(f);
        return NULL;
    }
    return f;
}

int store_fixture_free(struct store_fixture *f)
{
    char cmd[128];
    store_fini(&f->s);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
    int rc = system(cmd) == 0 ? 0 : -1;
    free(f);
    return rc;
}
