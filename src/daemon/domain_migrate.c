/* Live migration between two daemons (see domain_migrate.h). What waits
 * on a VMM (the transfer on the source, its arrival on the destination)
 * is polled from the event loop with query-migrate / query-status every
 * MIG_POLL_MS, so the daemon answers other calls meanwhile. A wait holds
 * the domain's uuid, not the domain, and looks it up on every tick: the
 * domain may go meanwhile (a destroy, a crash). */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <json-c/json.h>

#include "daemon/domain_conf.h"
#include "daemon/domain_migrate.h"
#include "daemon/domain_run_priv.h"
#include "util/evloop.h"
#include "util/log.h"

#define MIG_POLL_MS 100
/* A transfer the source reports neither done nor failed for this long is
 * given up (the source then runs on). */
#define MIG_PERFORM_MAX_MS (30 * 60 * 1000)
/* The destination has everything once the source said completed. */
#define MIG_FINISH_MAX_MS 60000
/* From migrate-incoming to the VMM's listening socket. */
#define MIG_LISTEN_MAX_MS 10000

#define MIG_SUPPORTED (MIGRATE_LIVE | MIGRATE_PERSIST_DEST | MIGRATE_UNDEFINE_SOURCE |      \
                       MIGRATE_PAUSED | MIGRATE_CHANGE_PROTECTION | MIGRATE_UNSAFE |       \
                       MIGRATE_ABORT_ON_ERROR)

int migrate_check_flags(unsigned flags, struct err *e)
{
    if (flags & (MIGRATE_PEER2PEER | MIGRATE_TUNNELLED))
        return err_set(e, ENOTSUP, "peer-to-peer and tunnelled migration are not supported "
                       "(use the default client-driven migration)");
    if (flags & (MIGRATE_NON_SHARED_DISK | MIGRATE_NON_SHARED_INC))
        return err_set(e, ENOTSUP, "copying storage (--copy-storage-all/-inc) is not "
                       "supported: disks must be on storage both hosts share");
    if (flags & MIGRATE_OFFLINE)
        return err_set(e, ENOTSUP, "offline migration is not supported");
    if (flags & MIGRATE_POSTCOPY)
        return err_set(e, ENOTSUP, "post-copy migration is not supported");
    if (flags & ~MIG_SUPPORTED)
        return err_set(e, EINVAL, "unsupported flags (0x%x) in function %s",
                       flags & ~MIG_SUPPORTED, "qemuMigrationSrcBegin");
    return 0;
}

/* Ends a VMM at once, before the daemon's usual quit: a VMM that closes
 * its images writes to them (a qcow2 header's dirty bit), and the other
 * side of the migration owns them now. The pidfd's watch sees the exit. */
static void kill_vmm(struct domain *d)
{
    if (d->pidfd >= 0)
        syscall(SYS_pidfd_send_signal, d->pidfd, SIGKILL, NULL, 0);
}

/* The lock other lifecycle calls meet while a migration runs (libvirt's
 * migration job); api names the step that holds it. */
static void mig_lock(struct domain *d, const char *api)
{
    d->migrating = true;
    d->job_api = api;
}

static void mig_unlock(struct domain *d)
{
    if (!d || !d->migrating)
        return;
    d->migrating = false;
    if (!d->job)
        d->job_api = NULL;
}

/* ---- waits polled from the loop ---- */

enum mig_kind { MIG_PERFORM, MIG_FINISH, MIG_INCOMING };

/* One migration this daemon takes part in. MIG_INCOMING: a prepared
 * destination waiting for Finish (no timer); the other two poll. */
struct mig {
    struct mig *next;
    struct domain_driver *drv;
    enum mig_kind kind;
    uint8_t uuid[16];
    unsigned flags;
    int port;                   /* MIG_INCOMING: the port it listens on */
    int timer_fd;
    int waited_ms, max_ms;
    char *persist_xml;          /* MIG_FINISH */
    domain_done_fn done;
    void *opaque;
    /* MIG_INCOMING, until its VMM listens: Prepare's reply. */
    domain_prepared_fn prepared;
    char *uri;
};

static struct mig *migs;

static void mig_free(struct mig *m)
{
    for (struct mig **p = &migs; *p; p = &(*p)->next)
        if (*p == m) {
            *p = m->next;
            break;
        }
    if (m->timer_fd >= 0) {
        evloop_del(m->drv->loop, m->timer_fd);
        close(m->timer_fd);
    }
    free(m->persist_xml);
    free(m->uri);
    free(m);
}

static struct mig *mig_find(const uint8_t uuid[16], enum mig_kind kind)
{
    for (struct mig *m = migs; m; m = m->next)
        if (m->kind == kind && !memcmp(m->uuid, uuid, 16))
            return m;
    return NULL;
}

static struct mig *mig_new(struct domain_driver *drv, struct domain *d, enum mig_kind kind,
                           unsigned flags, struct err *e)
{
    struct mig *m = calloc(1, sizeof(*m));
    if (!m) {
        err_set(e, ENOMEM, "out of memory");
        return NULL;
    }
    m->drv = drv;
    m->kind = kind;
    memcpy(m->uuid, d->uuid, 16);
    m->flags = flags;
    m->timer_fd = -1;
    m->next = migs;
    migs = m;
    return m;
}

static void on_mig_timer(void *opaque, uint32_t events);

static int mig_poll_start(struct mig *m, int max_ms, struct err *e)
{
    if (!m->drv->loop)
        return err_set(e, EINVAL, "no event loop for a migration");
    m->max_ms = max_ms;
    m->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (m->timer_fd < 0)
        return err_set_errno(e, errno, "timerfd");
    struct itimerspec its = {
        .it_value = { 0, MIG_POLL_MS * 1000000L },
        .it_interval = { 0, MIG_POLL_MS * 1000000L },
    };
    int r = evloop_add(m->drv->loop, m->timer_fd, EPOLLIN, on_mig_timer, m);
    if (r < 0) {
        close(m->timer_fd);
        m->timer_fd = -1;
        return err_set(e, -r, "cannot watch a timer: %s", strerror(-r));
    }
    if (timerfd_settime(m->timer_fd, 0, &its, NULL) < 0)
        return err_set_errno(e, errno, "timerfd_settime");
    return 0;
}

/* Ends a polled wait: done hears rc once. */
static void mig_end(struct mig *m, struct domain *d, int rc, const struct err *e)
{
    domain_done_fn done = m->done;
    void *opaque = m->opaque;
    mig_free(m);
    if (done)
        done(opaque, d, rc, rc < 0 ? e : NULL);
}

/* A string member of a QMP reply, or "". */
static const char *jstr(struct json_object *o, const char *key)
{
    struct json_object *v;
    if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return "";
}

/* Source: 1 when the transfer is done, 0 while it runs, <0 failed. */
static int perform_tick(struct domain *d, struct err *e)
{
    struct json_object *ret = NULL;
    int r = vmm_client_execute(d->vmm, "query-migrate", NULL, VMM_CLIENT_TIMEOUT_MS, &ret, e);
    if (r < 0)
        return r;
    const char *st = jstr(ret, "status");
    if (!strcmp(st, "completed")) {
        /* Paused by the migration, as libvirt reports it until Confirm. */
        if (d->state == DOMAIN_PAUSED)
            d->reason = DOMAIN_PAUSED_MIGRATION;
        r = 1;
    }
    else if (!strcmp(st, "failed") || !strcmp(st, "cancelled")) {
        const char *why = jstr(ret, "error-desc");
        r = err_set(e, EIO, "migration out of domain '%s' %s%s%s", d->name, st,
                    *why ? ": " : "", why);
    }
    json_object_put(ret);
    return r;
}

static int finish_complete(struct mig *m, struct domain *d, struct err *e);

/* Destination: 1 when the VM has arrived (paused), 0 while it arrives. */
static int finish_tick(struct domain *d, struct err *e)
{
    struct json_object *ret = NULL;
    int r = vmm_client_execute(d->vmm, "query-status", NULL, VMM_CLIENT_TIMEOUT_MS, &ret, e);
    if (r < 0)
        return r;
    r = strcmp(jstr(ret, "status"), "inmigrate") != 0;
    json_object_put(ret);
    return r;
}

/* True once a socket listens on port here (migrate-incoming returns
 * before the VMM listens; a source that connected earlier would be
 * refused). Probing with a connection would be taken for the source's. */
static bool port_listens(int port)
{
    static const char *const files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
    bool found = false;
    for (size_t i = 0; i < 2 && !found; i++) {
        FILE *f = fopen(files[i], "re");
        char line[512];
        while (f && !found && fgets(line, sizeof(line), f)) {
            unsigned lport, st;
            /* "  0: 00000000:C000 00000000:0000 0A ..." */
            char *c = strchr(line, ':');
            c = c ? strchr(c + 1, ':') : NULL;
            if (c && sscanf(c + 1, "%x %*s %x", &lport, &st) == 2)
                found = (int)lport == port && st == 0x0A;
        }
        if (f)
            fclose(f);
    }
    return found;
}

/* A prepared destination: Prepare replies once its VMM listens. */
static void incoming_tick(struct mig *m, struct domain *d)
{
    struct err e = { 0 };
    int r = 0;
    if (!d || !domain_is_active(d) || !d->vmm)
        r = err_set(&e, EIO, "the destination VMM exited before it listened (see its log)");
    else if (!port_listens(m->port) && m->waited_ms <= m->max_ms)
        return;
    else if (!port_listens(m->port))
        r = err_set(&e, ETIMEDOUT, "the destination VMM did not listen on port %d", m->port);
    domain_prepared_fn prepared = m->prepared;
    void *opaque = m->opaque;
    m->prepared = NULL;
    if (r < 0) {
        struct domain_driver *drv = m->drv;
        log_warn("migration: %s", e.msg);
        mig_free(m);
        if (d && domain_is_active(d)) {
            struct err de = { 0 };
            mig_unlock(d);
            kill_vmm(d);
            domain_destroy(drv, d, &de);
        }
        prepared(opaque, NULL, NULL, r, &e);
        return;
    }
    evloop_del(m->drv->loop, m->timer_fd);
    close(m->timer_fd);
    m->timer_fd = -1;
    log_info("domain '%s': waiting for its migration on %s", d->name, m->uri);
    prepared(opaque, d, m->uri, 0, NULL);
}

static void on_mig_timer(void *opaque, uint32_t events)
{
    struct mig *m = opaque;
    uint64_t n;
    (void)events;
    if (read(m->timer_fd, &n, sizeof(n)) != sizeof(n))
        return;
    struct domain *d = domain_find_uuid(&m->drv->table, m->uuid);
    struct err e = { 0 };
    int r;
    m->waited_ms += MIG_POLL_MS;
    if (m->kind == MIG_INCOMING) {
        incoming_tick(m, d);
        return;
    }
    if (!d || !domain_is_active(d) || !d->vmm) {
        r = err_set(&e, EIO, m->kind == MIG_PERFORM ?
                    "the source VMM exited during the migration" :
                    "the incoming migration failed: the destination VMM exited (see its log)");
    } else if (m->waited_ms > m->max_ms) {
        r = err_set(&e, ETIMEDOUT, "the migration of domain '%s' did not complete in %d s",
                    d->name, m->max_ms / 1000);
        if (m->kind == MIG_PERFORM)
            vmm_client_execute(d->vmm, "migrate_cancel", NULL, VMM_CLIENT_TIMEOUT_MS, NULL,
                               &(struct err){ 0 });
    } else {
        r = m->kind == MIG_PERFORM ? perform_tick(d, &e) : finish_tick(d, &e);
        if (r == 0)
            return;
        if (r > 0)
            r = m->kind == MIG_FINISH ? finish_complete(m, d, &e) : 0;
    }
    if (r < 0)
        log_warn("migration: %s", e.msg);
    mig_unlock(d);
    if (r < 0 && m->kind == MIG_FINISH && d && domain_is_active(d)) {
        /* The guest runs on the source: this copy goes. */
        struct err de = { 0 };
        kill_vmm(d);
        domain_destroy(m->drv, d, &de);
        d = domain_find_uuid(&m->drv->table, m->uuid);
    }
    mig_end(m, d, r < 0 ? r : 0, &e);
}

/* ---- source ---- */

int domain_migrate_begin(struct domain_driver *drv, struct domain *d, unsigned flags,
                         char **xml, struct err *e)
{
    (void)drv;
    int r = migrate_check_flags(flags, e);
    if (r < 0)
        return r;
    if (!domain_is_active(d))
        return err_set(e, EBUSY, "domain is not running");
    r = domain_op_check(d, DOMAIN_OP_LIVE_CHANGE, e);
    if (r < 0)
        return r;
    if (mig_find(d->uuid, MIG_PERFORM) || mig_find(d->uuid, MIG_INCOMING))
        return err_set(e, EBUSY, "domain '%s' is already being migrated", d->name);
    if (!d->vmm || !d->live)
        return err_set(e, EIO, "the VMM of domain '%s' does not answer", d->name);
    if ((flags & MIGRATE_UNDEFINE_SOURCE) && !d->def)
        return err_set(e, EBUSY, "cannot undefine the source of a transient domain");
    *xml = domain_def_format(d->live, DOMAIN_FORMAT_INACTIVE | DOMAIN_FORMAT_SECURE);
    return *xml ? 0 : err_set(e, ENOMEM, "out of memory");
}

int domain_migrate_perform_async(struct domain_driver *drv, struct domain *d, const char *uri,
                                 unsigned flags, domain_done_fn done, void *opaque,
                                 struct err *e)
{
    int r = migrate_check_flags(flags, e);
    if (r < 0)
        return r;
    if (!domain_is_active(d))
        return err_set(e, EBUSY, "domain is not running");
    if ((r = domain_op_check(d, DOMAIN_OP_LIVE_CHANGE, e)) < 0)
        return r;
    if (!uri || strncmp(uri, "tcp:", 4) != 0)
        return err_set(e, EINVAL, "migration URI '%s' is not tcp:HOST:PORT",
                       uri ? uri : "(none)");
    if (mig_find(d->uuid, MIG_PERFORM))
        return err_set(e, EBUSY, "domain '%s' is already being migrated", d->name);
    if (!d->vmm)
        return err_set(e, EIO, "the VMM of domain '%s' does not answer", d->name);
    struct json_object *args = json_object_new_object();
    json_object_object_add(args, "uri", json_object_new_string(uri));
    r = vmm_client_execute(d->vmm, "migrate", args, VMM_CLIENT_TIMEOUT_MS, NULL, e);
    if (r < 0)
        return r;
    struct mig *m = mig_new(drv, d, MIG_PERFORM, flags, e);
    if (!m || mig_poll_start(m, MIG_PERFORM_MAX_MS, e) < 0) {
        if (m)
            mig_free(m);
        vmm_client_execute(d->vmm, "migrate_cancel", NULL, VMM_CLIENT_TIMEOUT_MS, NULL,
                           &(struct err){ 0 });
        return -e->code;
    }
    m->done = done;
    m->opaque = opaque;
    mig_lock(d, "remoteDispatchDomainMigratePerform3Params");
    log_info("domain '%s': migrating to %s", d->name, uri);
    return 0;
}

/* What Confirm does after the VMM went: the definition with it. */
struct confirm {
    struct domain_driver *drv;
    unsigned flags;
    domain_done_fn done;
    void *opaque;
};

static void on_source_gone(void *opaque, struct domain *d, int rc, const struct err *e)
{
    struct confirm *c = opaque;
    struct err ue = { 0 };
    if (rc == 0 && d && d->def && !domain_is_active(d) && (c->flags & MIGRATE_UNDEFINE_SOURCE)) {
        char name[DOMAIN_NAME_MAX + 1];
        uint8_t uuid[16];
        snprintf(name, sizeof(name), "%s", d->name);
        memcpy(uuid, d->uuid, 16);
        bool removed;
        if (store_delete_def(&c->drv->store, d->name, &ue) == 0 &&
            domain_undefine(&c->drv->table, d, &removed, &ue) == 0) {
            log_info("domain '%s' undefined after its migration", name);
            d = NULL;
            if (c->drv->emit)
                c->drv->emit(c->drv->emit_opaque, name, uuid, -1, DOMAIN_EVENT_UNDEFINED,
                             DOMAIN_EVENT_UNDEFINED_REMOVED);
        } else {
            rc = -ue.code;
            e = &ue;
        }
    }
    if (c->done)
        c->done(c->opaque, d, rc, e);
    free(c);
}

int domain_migrate_confirm_async(struct domain_driver *drv, struct domain *d, unsigned flags,
                                 bool cancelled, domain_done_fn done, void *opaque,
                                 struct err *e)
{
    if (cancelled) {
        /* A transfer that completed leaves the source paused
         * ("postmigrate"); one that failed has resumed it already. */
        struct json_object *ret = NULL;
        if (d->vmm && vmm_client_execute(d->vmm, "query-status", NULL, VMM_CLIENT_TIMEOUT_MS,
                                         &ret, e) == 0 &&
            !strcmp(jstr(ret, "status"), "postmigrate") &&
            vmm_client_execute(d->vmm, "cont", NULL, VMM_CLIENT_TIMEOUT_MS, NULL, e) < 0) {
            json_object_put(ret);
            return -e->code;
        }
        json_object_put(ret);
        log_info("domain '%s': migration cancelled, it runs on here", d->name);
        done(opaque, d, 0, NULL);
        return 0;
    }
    if (!domain_is_active(d))
        return err_set(e, EBUSY, "domain is not running");
    struct confirm *c = calloc(1, sizeof(*c));
    if (!c)
        return err_set(e, ENOMEM, "out of memory");
    *c = (struct confirm){ .drv = drv, .flags = flags, .done = done, .opaque = opaque };
    d->migrated = true;
    kill_vmm(d);
    int r = domain_destroy_async(drv, d, "remoteDispatchDomainMigrateConfirm3Params",
                                 on_source_gone, c, e);
    if (r < 0) {
        d->migrated = false;
        free(c);
    }
    return r;
}

/* ---- destination ---- */

struct prepare {
    struct domain_driver *drv;
    unsigned flags;
    char *listen;               /* address the VMM listens on */
    char *host;                 /* what the source connects to */
    int port;                   /* 0: pick one */
    domain_prepared_fn done;
    void *opaque;
};

static void prepare_free(struct prepare *p)
{
    free(p->listen);
    free(p->host);
    free(p);
}

/* Drops the prepared migrations whose domain stopped meanwhile (a
 * destroy, a transfer that failed), so their ports are free again. */
static void purge_incoming(struct domain_driver *drv)
{
    for (struct mig *m = migs, *next; m; m = next) {
        next = m->next;
        struct domain *d = m->kind == MIG_INCOMING ? domain_find_uuid(&drv->table, m->uuid)
                                                   : NULL;
        /* One still waiting to answer Prepare answers from its timer. */
        if (m->kind == MIG_INCOMING && !m->prepared && (!d || !domain_is_active(d)))
            mig_free(m);
    }
}

/* A free port of libvirt's migration range (one no migration here holds
 * and the host lets us bind), or -1. */
static int pick_port(const char *listen)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai;
    for (int port = MIGRATE_PORT_MIN; port <= MIGRATE_PORT_MAX; port++) {
        bool held = false;
        for (struct mig *m = migs; m; m = m->next)
            held |= m->kind == MIG_INCOMING && m->port == port;
        char ps[8];
        snprintf(ps, sizeof(ps), "%d", port);
        if (held || getaddrinfo(listen, ps, &hints, &ai) != 0)
            continue;
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool ok = fd >= 0 && bind(fd, ai->ai_addr, ai->ai_addrlen) == 0;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        if (ok)
            return port;
    }
    return -1;
}

/* A host part for a URI: brackets around an IPv6 address. */
static int host_uri(const char *host, int port, char **out)
{
    bool v6 = strchr(host, ':') != NULL;
    return asprintf(out, "tcp:%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", port) < 0 ?
           -ENOMEM : 0;
}

static int incoming_listen(struct prepare *p, struct domain *d, struct err *e)
{
    int port = p->port ? p->port : pick_port(p->listen);
    if (port < 0)
        return err_set(e, EBUSY, "no free migration port in %d-%d", MIGRATE_PORT_MIN,
                       MIGRATE_PORT_MAX);
    char *luri;
    if (host_uri(p->listen, port, &luri) < 0)
        return err_set(e, ENOMEM, "out of memory");
    struct json_object *args = json_object_new_object();
    json_object_object_add(args, "uri", json_object_new_string(luri));
    free(luri);
    int r = vmm_client_execute(d->vmm, "migrate-incoming", args, VMM_CLIENT_TIMEOUT_MS, NULL, e);
    if (r < 0)
        return r;
    struct mig *m = mig_new(p->drv, d, MIG_INCOMING, p->flags, e);
    if (!m)
        return -e->code;
    m->port = port;
    if (host_uri(p->host, port, &m->uri) < 0) {
        m->uri = NULL;
        mig_free(m);
        return err_set(e, ENOMEM, "out of memory");
    }
    if (mig_poll_start(m, MIG_LISTEN_MAX_MS, e) < 0) {
        mig_free(m);
        return -e->code;
    }
    m->prepared = p->done;
    m->opaque = p->opaque;
    mig_lock(d, "remoteDispatchDomainMigratePrepare3Params");
    return 0;
}

static void on_incoming_started(void *opaque, struct domain *d, int rc, const struct err *se)
{
    struct prepare *p = opaque;
    struct err e = { 0 };
    if (rc == 0 && d) {
        domain_set_state(d, DOMAIN_PAUSED, DOMAIN_PAUSED_MIGRATION);
        /* On success Prepare's reply goes once the VMM listens. */
        rc = incoming_listen(p, d, &e);
        if (rc < 0) {
            struct err de = { 0 };
            kill_vmm(d);
            domain_destroy(p->drv, d, &de);
        }
        se = &e;
    } else if (rc == 0) {
        rc = err_set(&e, EIO, "the destination domain went away while starting");
        se = &e;
    }
    if (rc < 0)
        p->done(p->opaque, NULL, NULL, rc, se);
    prepare_free(p);
}

/* Where the source connects: the host of migrate_uri (tcp:HOST[:PORT] or
 * tcp://HOST[:PORT]) or this host's name. */
static int prepare_target(struct prepare *p, const struct migrate_params *mp, struct err *e)
{
    p->listen = strdup(mp->listen_address && *mp->listen_address ? mp->listen_address :
                       "0.0.0.0");
    if (mp->uri) {
        const char *h = mp->uri;
        if (strncmp(h, "tcp:", 4) != 0)
            return err_set(e, EINVAL, "migration URI '%s': only tcp:HOST[:PORT] is supported",
                           mp->uri);
        h += 4;
        if (!strncmp(h, "//", 2))
            h += 2;
        const char *end = *h == '[' ? strchr(h, ']') : strrchr(h, ':');
        if (*h == '[') {
            if (!end)
                return err_set(e, EINVAL, "migration URI '%s': no ']'", mp->uri);
            p->host = strndup(h + 1, (size_t)(end - h - 1));
            end = end[1] == ':' ? end + 1 : NULL;
        } else {
            p->host = end ? strndup(h, (size_t)(end - h)) : strdup(h);
        }
        if (end) {
            char *x;
            long port = strtol(end + 1, &x, 10);
            if (*x || port < 1 || port > 65535)
                return err_set(e, EINVAL, "migration URI '%s': bad port", mp->uri);
            p->port = (int)port;
        }
        if (p->host && !*p->host)
            return err_set(e, EINVAL, "migration URI '%s' has no host", mp->uri);
    } else {
        char name[256] = "";
        if (gethostname(name, sizeof(name) - 1) < 0 || !*name)
            return err_set_errno(e, errno, "cannot get this host's name");
        p->host = strdup(name);
    }
    return p->host && p->listen ? 0 : err_set(e, ENOMEM, "out of memory");
}

int domain_migrate_prepare_async(struct domain_driver *drv, const char *xml, unsigned flags,
                                 const struct migrate_params *mp, domain_prepared_fn done,
                                 void *opaque, struct err *e)
{
    int r = migrate_check_flags(flags, e);
    if (r < 0)
        return r;
    if (!xml)
        return err_set(e, EINVAL, "no domain XML for the incoming migration");
    purge_incoming(drv);
    struct prepare *p = calloc(1, sizeof(*p));
    if (!p)
        return err_set(e, ENOMEM, "out of memory");
    *p = (struct prepare){ .drv = drv, .flags = flags, .done = done, .opaque = opaque };
    if ((r = prepare_target(p, mp, e)) < 0) {
        prepare_free(p);
        return r;
    }
    struct domain_def *def;
    r = domain_def_parse(xml, strlen(xml), 0, &def, e);
    if (r < 0) {
        prepare_free(p);
        /* The XML is at fault (libvirt's XML error), unless memory is. */
        if (r != -ENOMEM)
            e->code = EBADMSG;
        return r == -ENOMEM ? r : -EBADMSG;
    }
    if (mp->dest_name && strcmp(mp->dest_name, def->name)) {
        domain_def_free(def);
        prepare_free(p);
        return err_set(e, ENOTSUP, "renaming a domain while migrating it is not supported");
    }
    struct domain *d = NULL;
    r = domain_check_new(&drv->table, def, true, &d, e);
    if (r == 0 && d && !d->live)
        d->live = def;          /* the inactive definition of the same domain */
    else if (r == 0 && d)
        r = err_set(e, EBUSY, "domain '%s' is already being set up here", d->name);
    else if (r == 0)
        r = domain_add_transient(&drv->table, def, &d, e);
    if (r < 0) {
        domain_def_free(def);
        prepare_free(p);
        return r;
    }
    r = domain_incoming_async(drv, d, "remoteDispatchDomainMigratePrepare3Params",
                              on_incoming_started, p, e);
    if (r < 0)
        prepare_free(p);
    return r;
}

/* The VM is here, paused: it runs (unless asked to stay paused), becomes
 * persistent when asked, and the events say it migrated. */
static int finish_complete(struct mig *m, struct domain *d, struct err *e)
{
    struct domain_driver *drv = m->drv;
    int r = 0;
    domain_emit(drv, d, DOMAIN_EVENT_STARTED, DOMAIN_EVENT_STARTED_MIGRATED);
    if (!(m->flags & MIGRATE_PAUSED)) {
        /* Set first, so the VMM's RESUME event finds it running already. */
        domain_set_state(d, DOMAIN_RUNNING, DOMAIN_RUNNING_MIGRATED);
        r = vmm_client_execute(d->vmm, "cont", NULL, VMM_CLIENT_TIMEOUT_MS, NULL, e);
        if (r < 0)
            return r;
        domain_emit(drv, d, DOMAIN_EVENT_RESUMED, DOMAIN_EVENT_RESUMED_MIGRATED);
    } else {
        domain_set_state(d, DOMAIN_PAUSED, DOMAIN_PAUSED_MIGRATION);
    }
    if (m->flags & MIGRATE_PERSIST_DEST) {
        struct domain_def *def = NULL;
        if (m->persist_xml)
            r = domain_def_parse(m->persist_xml, strlen(m->persist_xml), 0, &def, e);
        else if (!(def = domain_def_copy(d->live)))
            r = err_set(e, ENOMEM, "out of memory");
        if (r == 0 && (strcmp(def->name, d->name) || memcmp(def->uuid, d->uuid, 16))) {
            domain_def_free(def);
            r = err_set(e, EINVAL, "the persistent XML is for another domain");
        }
        if (r < 0) {
            /* The guest runs here now: keep it, transient, and say why. */
            log_warn("domain '%s': not made persistent: %s", d->name, e->msg);
            return 0;
        }
        bool created = false, was = d->def != NULL;
        struct domain *out;
        r = domain_define(&drv->table, def, &out, &created, e);
        if (r < 0) {
            domain_def_free(def);
            log_warn("domain '%s': not made persistent: %s", d->name, e->msg);
            return 0;
        }
        if (domain_save_config(drv, d, e) < 0)
            log_warn("domain '%s': definition not saved: %s", d->name, e->msg);
        domain_emit(drv, d, DOMAIN_EVENT_DEFINED,
                    was ? DOMAIN_EVENT_DEFINED_UPDATED : DOMAIN_EVENT_DEFINED_ADDED);
    }
    log_info("domain '%s': incoming migration complete", d->name);
    return 0;
}

int domain_migrate_finish_async(struct domain_driver *drv, const char *name, unsigned flags,
                                bool cancelled, const char *persist_xml, domain_done_fn done,
                                void *opaque, struct err *e)
{
    struct domain *d = name ? domain_find_name(&drv->table, name) : NULL;
    struct mig *in = d ? mig_find(d->uuid, MIG_INCOMING) : NULL;
    if (in && in->prepared)
        return err_set(e, EBUSY, "the incoming migration of domain '%s' is not prepared yet",
                       name);
    if (!in)
        return err_set(e, EINVAL, "no incoming migration of domain '%s' is prepared here",
                       name ? name : "(unnamed)");
    mig_free(in);
    if (cancelled) {
        mig_unlock(d);
        struct err de = { 0 };
        if (domain_is_active(d)) {
            kill_vmm(d);
            domain_destroy(drv, d, &de);
        }
        log_info("migration of domain '%s' cancelled", name);
        return err_set(e, ECANCELED, "migration of domain '%s' was cancelled", name);
    }
    struct mig *m = mig_new(drv, d, MIG_FINISH, flags, e);
    if (m && persist_xml && !(m->persist_xml = strdup(persist_xml)))
        err_set(e, ENOMEM, "out of memory");
    if (!m || e->code || mig_poll_start(m, MIG_FINISH_MAX_MS, e) < 0) {
        /* The guest runs on the source: this copy goes. */
        if (m)
            mig_free(m);
        mig_unlock(d);
        struct err de = { 0 };
        kill_vmm(d);
        domain_destroy(drv, d, &de);
        return -e->code;
    }
    d->job_api = "remoteDispatchDomainMigrateFinish3Params";
    m->done = done;
    m->opaque = opaque;
    return 0;
}
