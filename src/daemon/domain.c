#include "daemon/domain.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/domain_conf.h"

void domain_uuid_format(const uint8_t u[16], char buf[37])
{
    snprintf(buf, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7],
             u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

void domain_table_init(struct domain_table *t)
{
    memset(t, 0, sizeof(*t));
    t->next_id = 1;
}

static void domain_free(struct domain *d)
{
    if (!d)
        return;
    domain_def_free(d->def);
    domain_def_free(d->live);
    free(d->name);
    free(d);
}

void domain_table_clear(struct domain_table *t)
{
    for (size_t i = 0; i < t->n; i++)
        domain_free(t->v[i]);
    free(t->v);
    t->v = NULL;
    t->n = t->cap = 0;
}

struct domain *domain_find_name(const struct domain_table *t, const char *name)
{
    for (size_t i = 0; name && i < t->n; i++)
        if (strcmp(t->v[i]->name, name) == 0)
            return t->v[i];
    return NULL;
}

struct domain *domain_find_uuid(const struct domain_table *t, const uint8_t uuid[16])
{
    for (size_t i = 0; i < t->n; i++)
        if (memcmp(t->v[i]->uuid, uuid, 16) == 0)
            return t->v[i];
    return NULL;
}

struct domain *domain_find_id(const struct domain_table *t, int id)
{
    if (id < 0)
        return NULL;
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i]->id == id)
            return t->v[i];
    return NULL;
}

bool domain_is_active(const struct domain *d)
{
    return d->id >= 0;
}

int domain_check_new(const struct domain_table *t, const struct domain_def *def,
                     bool live, struct domain **match, struct err *e)
{
    char us[37];
    *match = NULL;
    struct domain *byuuid = domain_find_uuid(t, def->uuid);
    if (byuuid) {
        if (strcmp(byuuid->name, def->name) != 0) {
            domain_uuid_format(byuuid->uuid, us);
            return err_set(e, EEXIST, "domain '%s' is already defined with uuid %s",
                           byuuid->name, us);
        }
        if (live && domain_is_active(byuuid))
            return err_set(e, EBUSY, "domain '%s' is already active", byuuid->name);
        *match = byuuid;
        return 0;
    }
    struct domain *byname = domain_find_name(t, def->name);
    if (byname) {
        domain_uuid_format(byname->uuid, us);
        return err_set(e, EEXIST, "domain '%s' already exists with uuid %s",
                       byname->name, us);
    }
    return 0;
}

static int domain_insert(struct domain_table *t, const struct domain_def *def,
                         struct domain **out, struct err *e)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct domain **v = realloc(t->v, cap * sizeof(*v));
        if (!v)
            return err_set(e, ENOMEM, "out of memory");
        t->v = v;
        t->cap = cap;
    }
    struct domain *d = calloc(1, sizeof(*d));
    if (!d || !(d->name = strdup(def->name))) {
        free(d);
        return err_set(e, ENOMEM, "out of memory");
    }
    memcpy(d->uuid, def->uuid, 16);
    d->id = -1;
    d->pidfd = -1;
    d->state = DOMAIN_SHUTOFF;
    d->reason = DOMAIN_SHUTOFF_UNKNOWN;
    t->v[t->n++] = d;
    *out = d;
    return 0;
}

int domain_define(struct domain_table *t, struct domain_def *def,
                  struct domain **out, bool *created, struct err *e)
{
    struct domain *d;
    int r = domain_check_new(t, def, false, &d, e);
    if (r < 0)
        return r;
    *created = !d;
    if (!d) {
        r = domain_insert(t, def, &d, e);
        if (r < 0)
            return r;
    }
    domain_def_free(d->def);
    d->def = def;
    *out = d;
    return 0;
}

int domain_add_transient(struct domain_table *t, struct domain_def *def,
                         struct domain **out, struct err *e)
{
    struct domain *d;
    int r = domain_check_new(t, def, true, &d, e);
    if (r < 0)
        return r;
    if (d) {
        /* A defined, inactive domain of that name: libvirt starts it with
         * the given XML as its live definition and keeps it persistent.
         * Not under an operation in flight, which owns d->live. */
        r = domain_op_check(d, DOMAIN_OP_START, e);
        if (r < 0)
            return r;
        domain_def_free(d->live);
        d->live = def;
        *out = d;
        return 0;
    }
    r = domain_insert(t, def, &d, e);
    if (r < 0)
        return r;
    d->live = def;
    *out = d;
    return 0;
}

void domain_remove(struct domain_table *t, struct domain *d)
{
    for (size_t i = 0; i < t->n; i++) {
        if (t->v[i] == d) {
            memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof(*t->v));
            t->n--;
            break;
        }
    }
    domain_free(d);
}

int domain_undefine(struct domain_table *t, struct domain *d, bool *removed,
                    struct err *e)
{
    *removed = false;
    if (!d->def)
        return err_set(e, EBUSY, "cannot undefine transient domain");
    if (domain_is_active(d)) {
        domain_def_free(d->def);
        d->def = NULL;
        d->autostart = false;
        return 0;
    }
    domain_remove(t, d);
    *removed = true;
    return 0;
}

int domain_op_check(const struct domain *d, enum domain_op op, struct err *e)
{
    /* libvirtd waits up to 30 s for the job lock and then fails with this
     * message; the daemon's jobs run on its one loop, so waiting would only
     * delay the same answer: it comes at once. */
    /* A destroy ends a migration as it ends the VMM (as libvirt's). */
    if (d->job || (d->migrating && op != DOMAIN_OP_DESTROY))
        return err_set(e, ETIMEDOUT, "cannot acquire state change lock (held by monitor=%s)",
                       d->job_api ? d->job_api : "remoteDispatchDomainCreate");
    bool active = domain_is_active(d);
    switch (op) {
    case DOMAIN_OP_START:
        if (active)
            return err_set(e, EBUSY, "domain is already running");
        if (!d->def && !d->live)
            return err_set(e, EBUSY, "domain has no definition");
        return 0;
    case DOMAIN_OP_RESUME:
        if (!active)
            return err_set(e, EBUSY, "domain is not running");
        if (d->state == DOMAIN_RUNNING)
            return err_set(e, EBUSY, "domain is already running");
        if (d->state != DOMAIN_PAUSED)
            return err_set(e, EBUSY, "domain is not paused");
        return 0;
    case DOMAIN_OP_SHUTDOWN:
    case DOMAIN_OP_REBOOT:
        /* Paused is fine, as for libvirt: the request waits in the guest. */
    case DOMAIN_OP_DESTROY:
    case DOMAIN_OP_SUSPEND:
    case DOMAIN_OP_LIVE_CHANGE:
        if (!active)
            return err_set(e, EBUSY, "domain is not running");
        return 0;
    }
    return err_set(e, EINVAL, "unknown operation %d", (int)op);
}

int domain_err_unkillable(struct err *e, pid_t pid)
{
    return err_set(e, DOMAIN_ERR_UNKILLABLE, "Failed to terminate process %d with SIGKILL: %s",
                   (int)pid, strerror(EBUSY));
}

const struct domain_def *domain_current_def(const struct domain *d, bool inactive)
{
    if (d->live && (!inactive || !d->def))
        return d->live;
    return d->def;
}

void domain_set_running(struct domain_table *t, struct domain *d,
                        struct domain_def *live, int reason)
{
    if (live != d->live) {
        domain_def_free(d->live);
        d->live = live;
    }
    if (d->id < 0)
        d->id = t->next_id++;
    if (d->live)
        d->live->id = d->id;
    d->state = DOMAIN_RUNNING;
    d->reason = reason;
    d->got_shutdown = d->shutdown_by_guest = d->destroying = d->saving = false;
    d->migrated = d->migrating = false;
}

void domain_set_state(struct domain *d, enum domain_state state, int reason)
{
    d->state = state;
    d->reason = reason;
}

bool domain_set_stopped(struct domain_table *t, struct domain *d, int reason)
{
    d->state = DOMAIN_SHUTOFF;
    d->reason = reason;
    d->id = -1;
    d->pid = 0;
    domain_def_free(d->live);
    d->live = NULL;
    if (!d->def) {
        domain_remove(t, d);
        return true;
    }
    return false;
}

static bool pair_ok(unsigned flags, unsigned yes, unsigned no, bool v)
{
    if (!(flags & (yes | no)))
        return true;
    return v ? (flags & yes) != 0 : (flags & no) != 0;
}

bool domain_list_match(const struct domain *d, unsigned f)
{
    bool active = domain_is_active(d);
    if (!pair_ok(f, DOMAIN_LIST_ACTIVE, DOMAIN_LIST_INACTIVE, active) ||
        !pair_ok(f, DOMAIN_LIST_PERSISTENT, DOMAIN_LIST_TRANSIENT, d->def != NULL) ||
        !pair_ok(f, DOMAIN_LIST_MANAGEDSAVE, DOMAIN_LIST_NO_MANAGEDSAVE, d->managed_save) ||
        !pair_ok(f, DOMAIN_LIST_AUTOSTART, DOMAIN_LIST_NO_AUTOSTART, d->autostart) ||
        !pair_ok(f, DOMAIN_LIST_HAS_SNAPSHOT, DOMAIN_LIST_NO_SNAPSHOT, false))
        return false;
    unsigned states = f & (DOMAIN_LIST_RUNNING | DOMAIN_LIST_PAUSED | DOMAIN_LIST_SHUTOFF |
                           DOMAIN_LIST_OTHER);
    if (!states)
        return true;
    return ((states & DOMAIN_LIST_RUNNING) && d->state == DOMAIN_RUNNING) ||
           ((states & DOMAIN_LIST_PAUSED) && d->state == DOMAIN_PAUSED) ||
           ((states & DOMAIN_LIST_SHUTOFF) && d->state == DOMAIN_SHUTOFF) ||
           ((states & DOMAIN_LIST_OTHER) && d->state != DOMAIN_RUNNING &&
            d->state != DOMAIN_PAUSED && d->state != DOMAIN_SHUTOFF);
}
