/* A domain store under a fresh temporary root, for the tests of the
 * daemon's on-disk state. */
#ifndef CVIRT_TESTS_STORE_FIXTURE_H
#define CVIRT_TESTS_STORE_FIXTURE_H

#include "daemon/store.h"

struct store_fixture {
    char root[64];
    char config[128], run[128], log[128], state[128];
    struct store s;
};

/* A store initialised under /tmp/NAME.XXXXXX (etc/, run/, log/, lib/
 * beneath it); NULL on failure. */
struct store_fixture *store_fixture_new(const char *name);
/* Closes the store and removes the whole root; -1 if that failed. */
int store_fixture_free(struct store_fixture *f);

#endif
