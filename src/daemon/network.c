/* The network driver: definitions on disk, start and stop, reattach after
 * a daemon restart, and the taps of domains. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/domain_conf.h"
#include "daemon/network.h"
#include "util/log.h"

#define NETWORK_XML_MAX (1 << 20)

static struct network_driver *default_driver;

void network_set_default_driver(struct network_driver *d)
{
    default_driver = d;
}

struct network *network_find_name(const struct network_driver *d, const char *name)
{
    for (size_t i = 0; i < d->nnets; i++)
        if (!strcmp(d->nets[i]->def->name, name))
            return d->nets[i];
    return NULL;
}

struct network *network_find_uuid(const struct network_driver *d, const uint8_t uuid[16])
{
    for (size_t i = 0; i < d->nnets; i++)
        if (!memcmp(d->nets[i]->def->uuid, uuid, 16))
            return d->nets[i];
    return NULL;
}

int network_check_conflicts(const struct network_driver *d, const struct network_def *def,
                            const struct network *self, struct err *e)
{
    for (size_t i = 0; i < d->nnets; i++) {
        const struct network_def *o = d->nets[i]->def;
        if (d->nets[i] == self)
            continue;
        if (!strcmp(o->name, def->name))
            return err_set(e, EEXIST, "network '%s' already exists with another uuid",
                           def->name);
        if (!memcmp(o->uuid, def->uuid, 16))
            return err_set(e, EEXIST, "network '%s' already has this uuid", o->name);
        /* Bridged networks may share a host bridge; no two own one. */
        if (def->bridge && o->bridge && !strcmp(o->bridge, def->bridge) &&
            (def->forward != NETWORK_BRIDGE || o->forward != NETWORK_BRIDGE))
            return err_set(e, EEXIST, "bridge name '%s' is already in use by network '%s'",
                           def->bridge, o->name);
        if (def->has_ip && o->has_ip) {
            unsigned p = def->prefix < o->prefix ? def->prefix : o->prefix;
            uint32_t m = network_mask(p);
            if ((def->addr & m) == (o->addr & m))
                return err_set(e, EEXIST, "the subnet of network '%s' overlaps network '%s'",
                               def->name, o->name);
        }
    }
    return 0;
}

int network_assign_bridge(const struct network_driver *d, struct network_def *def,
                          struct err *e)
{
    if (def->bridge)
        return 0;
    for (int n = 0; n < 1024; n++) {
        char name[16];
        snprintf(name, sizeof(name), "virbr%d", n);
        bool used = !d->no_host && network_host_link_exists(name);
        for (size_t i = 0; i < d->nnets && !used; i++)
            used = d->nets[i]->def->bridge && !strcmp(d->nets[i]->def->bridge, name);
        if (!used) {
            def->bridge = strdup(name);
            return def->bridge ? 0 : err_set(e, ENOMEM, "out of memory");
        }
    }
    return err_set(e, ENOSPC, "no free virbrN bridge name");
}

/* ---- files ---- */

static int path_of(char *buf, size_t len, const char *dir, const char *name, const char *ext)
{
    int n = snprintf(buf, len, "%s/%s%s", dir, name, ext);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int save_xml(const char *dir, const struct network_def *def, struct err *e)
{
    char path[4096], tmp[4200];
    if (path_of(path, sizeof(path), dir, def->name, ".xml") < 0)
        return err_set(e, ENAMETOOLONG, "network name too long");
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    char *xml = network_def_format(def);
    if (!xml)
        return err_set(e, ENOMEM, "out of memory");
    FILE *f = fopen(tmp, "we");
    int bad = !f || fputs(xml, f) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0;
    if (f && fclose(f) != 0)
        bad = 1;
    free(xml);
    if (bad || rename(tmp, path) < 0) {
        int r = err_set_errno(e, errno ? errno : EIO, "cannot write %s", path);
        unlink(tmp);
        return r;
    }
    return 0;
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *buf = malloc(NETWORK_XML_MAX + 1);
    size_t n = buf ? fread(buf, 1, NETWORK_XML_MAX, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

static void remove_file(const char *dir, const char *name, const char *ext)
{
    char path[4096];
    if (path_of(path, sizeof(path), dir, name, ext) == 0)
        unlink(path);
}

static int mkdir_p(const char *path, struct err *e)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *s = buf + 1;; s++) {
        if (*s == '/' || !*s) {
            char c = *s;
            *s = '\0';
            if (mkdir(buf, 0700) < 0 && errno != EEXIST)
                return err_set_errno(e, errno, "cannot create %s", buf);
            *s = c;
            if (!c)
                return 0;
        }
    }
}

/* ---- table ---- */

static int add_net(struct network_driver *d, struct network_def *def, struct network **out,
                   struct err *e)
{
    struct network **nn = realloc(d->nets, (d->nnets + 1) * sizeof(*nn));
    struct network *n = calloc(1, sizeof(*n));
    if (nn)
        d->nets = nn;
    if (!nn || !n) {
        free(n);
        return err_set(e, ENOMEM, "out of memory");
    }
    n->def = def;
    d->nets[d->nnets++] = n;
    *out = n;
    return 0;
}

static void remove_net(struct network_driver *d, struct network *n)
{
    for (size_t i = 0; i < d->nnets; i++) {
        if (d->nets[i] == n) {
            memmove(&d->nets[i], &d->nets[i + 1], (d->nnets - i - 1) * sizeof(*d->nets));
            d->nnets--;
            break;
        }
    }
    network_def_free(n->def);
    free(n);
}

static int parse_new(struct network_driver *d, const char *xml, struct network **existing,
                     struct network_def **out, struct err *e)
{
    struct network_def *def;
    if (network_def_parse(xml, &def, e) < 0)
        return -e->code;
    struct network *old = network_find_name(d, def->name);
    if (old && !memcmp(old->def->uuid, def->uuid, 16)) {
        /* Redefining keeps the bridge the running network has. */
        if (!def->bridge && old->def->bridge && !(def->bridge = strdup(old->def->bridge))) {
            network_def_free(def);
            return err_set(e, ENOMEM, "out of memory");
        }
    } else {
        old = NULL;
    }
    if (network_check_conflicts(d, def, old, e) < 0 ||
        (def->forward != NETWORK_BRIDGE && network_assign_bridge(d, def, e) < 0)) {
        network_def_free(def);
        return -e->code;
    }
    *existing = old;
    *out = def;
    return 0;
}

int network_define(struct network_driver *d, const char *xml, struct network **out,
                   struct err *e)
{
    struct network *old;
    struct network_def *def;
    if (parse_new(d, xml, &old, &def, e) < 0)
        return -e->code;
    if (save_xml(d->config_dir, def, e) < 0) {
        network_def_free(def);
        return -e->code;
    }
    if (old) {
        /* A running network keeps its live definition until it stops. */
        if (old->active) {
            network_def_free(def);
        } else {
            network_def_free(old->def);
            old->def = def;
        }
        old->persistent = true;
        *out = old;
        return 0;
    }
    if (add_net(d, def, out, e) < 0) {
        remove_file(d->config_dir, def->name, ".xml");
        network_def_free(def);
        return -e->code;
    }
    (*out)->persistent = true;
    return 0;
}

int network_create_transient(struct network_driver *d, const char *xml,
                             struct network **out, struct err *e)
{
    struct network *old;
    struct network_def *def;
    if (parse_new(d, xml, &old, &def, e) < 0)
        return -e->code;
    if (old) {
        network_def_free(def);
        return err_set(e, EEXIST, "network '%s' already exists", old->def->name);
    }
    if (add_net(d, def, out, e) < 0) {
        network_def_free(def);
        return -e->code;
    }
    if (network_start(d, *out, e) < 0) {
        remove_net(d, *out);
        return -e->code;
    }
    return 0;
}

int network_undefine(struct network_driver *d, struct network *n, struct err *e)
{
    if (!n->persistent)
        return err_set(e, EBUSY, "network '%s' is not persistent", n->def->name);
    remove_file(d->autostart_dir, n->def->name, ".xml");
    remove_file(d->config_dir, n->def->name, ".xml");
    n->persistent = false;
    n->autostart = false;
    if (!n->active)
        remove_net(d, n);
    return 0;
}

int network_set_autostart(struct network_driver *d, struct network *n, bool on,
                          struct err *e)
{
    if (!n->persistent)
        return err_set(e, EBUSY, "cannot set autostart for transient network");
    char link[4096], target[4096];
    if (path_of(link, sizeof(link), d->autostart_dir, n->def->name, ".xml") < 0 ||
        path_of(target, sizeof(target), "..", n->def->name, ".xml") < 0)
        return err_set(e, ENAMETOOLONG, "network name too long");
    if (!on) {
        if (unlink(link) < 0 && errno != ENOENT)
            return err_set_errno(e, errno, "cannot remove %s", link);
    } else if (symlink(target, link) < 0 && errno != EEXIST) {
        return err_set_errno(e, errno, "cannot create %s", link);
    }
    n->autostart = on;
    return 0;
}

/* ---- start and stop ---- */

static void undo_host(struct network_driver *d, struct network *n)
{
    const struct network_def *def = n->def;
    if (d->no_host || def->forward == NETWORK_BRIDGE)
        return;
    if (n->dnsmasq_pid || network_host_dnsmasq_pid(d, def->name))
        network_host_dnsmasq_stop(d, def, n->dnsmasq_pid ? n->dnsmasq_pid :
                                  network_host_dnsmasq_pid(d, def->name));
    n->dnsmasq_pid = 0;
    if (def->forward == NETWORK_NAT)
        network_host_nat_del(def);
    network_host_bridge_del(def->bridge);
    remove_file(d->run_dir, def->name, ".nft");
}

static int start_host(struct network_driver *d, struct network *n, struct err *e)
{
    const struct network_def *def = n->def;
    if (d->no_host)
        return 0;
    if (def->forward == NETWORK_BRIDGE) {
        if (!network_host_link_exists(def->bridge))
            return err_set(e, ENODEV, "bridge '%s' of network '%s' does not exist",
                           def->bridge, def->name);
        return 0;
    }
    if (network_host_link_exists(def->bridge))
        return err_set(e, EEXIST, "interface '%s' already exists", def->bridge);
    if (network_host_bridge_add(def, e) < 0)
        return -e->code;
    int r = 0;
    if (def->forward == NETWORK_NAT)
        r = network_host_nat_add(d, def, e);
    if (r == 0 && def->has_ip)
        r = network_host_dnsmasq_start(d, def, &n->dnsmasq_pid, e);
    if (r < 0)
        undo_host(d, n);
    return r;
}

int network_start(struct network_driver *d, struct network *n, struct err *e)
{
    if (n->active)
        return err_set(e, EBUSY, "network is already active");
    if (start_host(d, n, e) < 0)
        return -e->code;
    if (save_xml(d->run_dir, n->def, e) < 0) {
        undo_host(d, n);
        return -e->code;
    }
    n->active = true;
    log_info("network '%s' started on %s", n->def->name, n->def->bridge);
    return 0;
}

int network_destroy(struct network_driver *d, struct network *n, struct err *e)
{
    if (!n->active)
        return err_set(e, EBUSY, "network '%s' is not active", n->def->name);
    undo_host(d, n);
    remove_file(d->run_dir, n->def->name, ".xml");
    n->active = false;
    log_info("network '%s' stopped", n->def->name);
    if (!n->persistent) {
        remove_net(d, n);
        return 0;
    }
    /* The definition saved while it ran takes effect now. */
    char path[4096];
    if (path_of(path, sizeof(path), d->config_dir, n->def->name, ".xml") == 0) {
        char *xml = read_all(path);
        struct network_def *def;
        struct err pe = { 0 };
        if (xml && network_def_parse(xml, &def, &pe) == 0) {
            network_def_free(n->def);
            n->def = def;
        }
        free(xml);
    }
    return 0;
}

/* ---- loading ---- */

typedef void (*xml_file_cb)(struct network_driver *d, const char *name, const char *xml);

static void for_each_xml(struct network_driver *d, const char *dir, xml_file_cb cb)
{
    DIR *dh = opendir(dir);
    if (!dh)
        return;
    struct dirent *de;
    while ((de = readdir(dh))) {
        size_t l = strlen(de->d_name);
        if (de->d_name[0] == '.' || l < 5 || strcmp(de->d_name + l - 4, ".xml"))
            continue;
        char path[4096], name[NETWORK_NAME_MAX + 1];
        snprintf(name, sizeof(name), "%.*s", (int)(l - 4), de->d_name);
        if (path_of(path, sizeof(path), dir, name, ".xml") < 0)
            continue;
        char *xml = read_all(path);
        if (xml)
            cb(d, name, xml);
        free(xml);
    }
    closedir(dh);
}

static void load_config(struct network_driver *d, const char *name, const char *xml)
{
    struct network_def *def = NULL;
    struct network *n;
    struct err e = { 0 };
    if (network_def_parse(xml, &def, &e) < 0) {
        log_error("%s/%s.xml: %s", d->config_dir, name, e.msg);
        return;
    }
    if (strcmp(def->name, name) != 0 || network_check_conflicts(d, def, NULL, &e) < 0 ||
        (def->forward != NETWORK_BRIDGE && network_assign_bridge(d, def, &e) < 0) ||
        add_net(d, def, &n, &e) < 0) {
        network_def_free(def);
        log_error("%s/%s.xml: %s", d->config_dir, name,
                  e.code ? e.msg : "the name inside is not the file's");
        return;
    }
    n->persistent = true;
    char link[4096];
    n->autostart = path_of(link, sizeof(link), d->autostart_dir, name, ".xml") == 0 &&
                   access(link, F_OK) == 0;
}

/* A network that ran when the daemon stopped: it is still up if its bridge
 * is; a dnsmasq that died meanwhile is started again. */
static void load_run(struct network_driver *d, const char *name, const char *xml)
{
    struct network_def *def;
    struct err e = { 0 };
    if (network_def_parse(xml, &def, &e) < 0) {
        log_error("%s/%s.xml: %s", d->run_dir, name, e.msg);
        return;
    }
    struct network tmp = { .def = def };
    bool alive = d->no_host || network_host_link_exists(def->bridge);
    if (!alive) {
        log_warn("network '%s': bridge %s is gone; the network is stopped", name, def->bridge);
        undo_host(d, &tmp);
        remove_file(d->run_dir, name, ".xml");
        network_def_free(def);
        return;
    }
    struct network *n = network_find_name(d, name);
    if (n && !memcmp(n->def->uuid, def->uuid, 16)) {
        network_def_free(n->def);   /* the live definition rules while it runs */
        n->def = def;
    } else if (n || add_net(d, def, &n, &e) < 0) {
        log_error("network '%s': cannot reattach: %s", name, n ? "uuid differs" : e.msg);
        network_def_free(def);
        return;
    }
    n->active = true;
    if (d->no_host || def->forward == NETWORK_BRIDGE || !def->has_ip)
        return;
    n->dnsmasq_pid = network_host_dnsmasq_pid(d, name);
    if (!n->dnsmasq_pid && network_host_dnsmasq_start(d, def, &n->dnsmasq_pid, &e) < 0)
        log_error("network '%s': %s", name, e.msg);
    log_info("network '%s' reattached (dnsmasq pid %d)", name, (int)n->dnsmasq_pid);
}

static int dup_path(char **out, const char *a, const char *b, struct err *e)
{
    size_t l = strlen(a) + strlen(b) + 1;
    *out = malloc(l);
    if (!*out)
        return err_set(e, ENOMEM, "out of memory");
    snprintf(*out, l, "%s%s", a, b);
    return mkdir_p(*out, e);
}

int network_init(struct network_driver *d, const char *config, const char *run,
                 const char *state, struct err *e)
{
    if (dup_path(&d->config_dir, config, "/networks", e) < 0 ||
        dup_path(&d->autostart_dir, config, "/networks/autostart", e) < 0 ||
        dup_path(&d->run_dir, run, "/networks", e) < 0 ||
        dup_path(&d->state_dir, state, "/networks", e) < 0) {
        network_fini(d);
        return -e->code;
    }
    for_each_xml(d, d->config_dir, load_config);
    for_each_xml(d, d->run_dir, load_run);
    for (size_t i = 0; i < d->nnets; i++) {
        struct network *n = d->nets[i];
        struct err se = { 0 };
        if (n->autostart && !n->active && network_start(d, n, &se) < 0)
            log_error("network '%s': autostart failed: %s", n->def->name, se.msg);
    }
    return 0;
}

/* Running networks stay up, as domains do: the next daemon reattaches. */
void network_fini(struct network_driver *d)
{
    for (size_t i = 0; i < d->nnets; i++) {
        network_def_free(d->nets[i]->def);
        free(d->nets[i]);
    }
    free(d->nets);
    free(d->config_dir);
    free(d->autostart_dir);
    free(d->run_dir);
    free(d->state_dir);
    if (default_driver == d)
        default_driver = NULL;
    memset(d, 0, sizeof(*d));
}

int network_leases(const struct network_driver *d, const struct network *n,
                   struct network_lease **out, size_t *count, struct err *e)
{
    char path[4096];
    *out = NULL;
    *count = 0;
    if (path_of(path, sizeof(path), d->state_dir, n->def->name, ".leases") < 0)
        return err_set(e, ENAMETOOLONG, "network name too long");
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    char line[512];
    size_t cap = 0;
    int r = 0;
    while (fgets(line, sizeof(line), f)) {
        struct network_lease l = { 0 };
        long long exp;
        /* dnsmasq: expiry mac ip hostname client-id ("*" when unknown). */
        if (sscanf(line, "%lld %17s %15s %63s %127s", &exp, l.mac, l.ip, l.hostname,
                   l.clientid) < 3 || strchr(l.mac, ':') == NULL)
            continue;
        l.expiry = exp;
        if (!strcmp(l.hostname, "*"))
            l.hostname[0] = '\0';
        if (!strcmp(l.clientid, "*"))
            l.clientid[0] = '\0';
        if (*count == cap) {
            cap = cap ? cap * 2 : 8;
            struct network_lease *nl = realloc(*out, cap * sizeof(*nl));
            if (!nl) {
                r = err_set(e, ENOMEM, "out of memory");
                break;
            }
            *out = nl;
        }
        (*out)[(*count)++] = l;
    }
    fclose(f);
    return r;
}

/* ---- the taps of domains ---- */

static int bridge_of(const struct domain_net *net, const char **bridge, struct err *e)
{
    if (net->type == DOMAIN_NET_BRIDGE) {
        *bridge = net->source;
        return 0;
    }
    struct network *n = default_driver ? network_find_name(default_driver, net->source) : NULL;
    if (!n)
        return err_set(e, ENOENT, "Network not found: no network with matching name '%s'",
                       net->source);
    if (!n->active)
        return err_set(e, EBUSY, "network '%s' is not active", net->source);
    *bridge = n->def->bridge;
    return 0;
}

int network_domain_taps(struct domain_def *def, struct err *e)
{
    for (size_t i = 0; i < def->nnets; i++) {
        struct domain_net *net = &def->nets[i];
        if (net->type == DOMAIN_NET_ETHERNET)
            continue;
        const char *bridge = NULL;
        char name[16];
        if (bridge_of(net, &bridge, e) < 0 ||
            network_host_tap_add(net->target_dev ? net->target_dev : "vnet%d", bridge, name,
                                 e) < 0)
            goto fail;
        free(net->target_dev);
        net->target_dev = strdup(name);
        if (!net->target_dev) {
            network_host_tap_del(name);
            err_set(e, ENOMEM, "out of memory");
            goto fail;
        }
        log_info("tap %s on bridge %s", name, bridge);
    }
    return 0;
fail:
    network_domain_release(def);
    return -e->code;
}

void network_domain_release(struct domain_def *def)
{
    if (!def)
        return;
    for (size_t i = 0; i < def->nnets; i++) {
        struct domain_net *net = &def->nets[i];
        if (net->type == DOMAIN_NET_ETHERNET || !net->target_dev)
            continue;
        network_host_tap_del(net->target_dev);
        free(net->target_dev);
        net->target_dev = NULL;
    }
}
