/* Storage pools: definitions, their XML and their life cycle, and the
 * XML helpers storage_vol.c shares. */
#include "daemon/storage.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "daemon/uuid.h"
#include "util/log.h"

/* libvirt's data folder, where tools put its default pool. */
#define LIBVIRT_DATA_ROOT "/var/lib/libvirt"

bool storage_name_valid(const char *name)
{
    return name && *name && !strchr(name, '/') && strcmp(name, ".") != 0 &&
           strcmp(name, "..") != 0 && strlen(name) <= STORAGE_NAME_MAX;
}

/* Pool names also name files under CONFIG/storage, so the hidden ones that
 * store.c keeps for its temporary files are refused too. */
static bool pool_name_valid(const char *name)
{
    return storage_name_valid(name) && name[0] != '.';
}

void storage_pool_free(struct storage_pool *p)
{
    if (!p)
        return;
    free(p->name);
    free(p->path);
    free(p);
}

/* ---- XML helpers ---- */

xmlNode *storage_xml_child(xmlNode *n, const char *name)
{
    for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, name))
            return c;
    return NULL;
}

/* Text of an element (malloc'ed, surrounding blanks removed) or NULL. */
char *storage_xml_text(xmlNode *n)
{
    if (!n)
        return NULL;
    xmlChar *t = xmlNodeGetContent(n);
    if (!t)
        return NULL;
    const char *s = (const char *)t;
    while (isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    char *out = strndup(s, len);
    xmlFree(t);
    return out;
}

xmlDoc *storage_xml_read(const char *xml, const char *root, struct err *e)
{
    size_t len = strlen(xml);
    if (len > INT_MAX)
        return err_set(e, EINVAL, "XML document too large"), NULL;
    xmlDoc *doc = xmlReadMemory(xml, (int)len, NULL, NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) {
        const xmlError *x = xmlGetLastError();
        err_set(e, EINVAL, "(%s_definition):%d: %s", root, x ? x->line : 0,
                x && x->message ? x->message : "malformed XML");
        e->msg[strcspn(e->msg, "\n")] = '\0';
        return NULL;
    }
    xmlNode *r = xmlDocGetRootElement(doc);
    if (!r || strcmp((const char *)r->name, root) != 0) {
        err_set(e, EINVAL, "unexpected root element <%s>, expecting <%s>",
                r ? (const char *)r->name : "", root);
        xmlFreeDoc(doc);
        return NULL;
    }
    return doc;
}

/* A path as libvirt keeps it: absolute, no repeated or trailing '/'. */
char *storage_clean_path(const char *in)
{
    char *out = malloc(strlen(in) + 1);
    if (!out)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; in[i]; i++) {
        if (in[i] == '/' && j > 0 && out[j - 1] == '/')
            continue;
        out[j++] = in[i];
    }
    while (j > 1 && out[j - 1] == '/')
        j--;
    out[j] = '\0';
    return out;
}

/* ---- pool XML ---- */

/* The cleaned path, also without the blanks a removed trailing '/' may
 * have uncovered ("/p  /" -> "/p"): the parser trims blanks, so anything
 * else would not read back as the same pool from its own XML. */
static char *pool_path_canonical(const char *path)
{
    char *p = storage_clean_path(path);
    for (;;) {
        if (!p)
            return NULL;
        size_t n = strlen(p), m = n;
        while (m > 1 && isspace((unsigned char)p[m - 1]))
            m--;
        if (m == n)
            return p;
        p[m] = '\0';
        char *q = storage_clean_path(p);
        free(p);
        p = q;
    }
}

static int pool_from_doc(xmlNode *root, struct storage_pool *p, struct err *e)
{
    xmlChar *type = xmlGetNoNsProp(root, (const xmlChar *)"type");
    if (!type)
        return err_set(e, EINVAL, "storage pool type is missing");
    bool dir = !strcmp((const char *)type, "dir");
    if (!dir) {
        err_set(e, ENOTSUP, "unsupported storage pool type '%s' (only 'dir' pools are served)",
                (const char *)type);
        xmlFree(type);
        return -ENOTSUP;
    }
    xmlFree(type);
    p->name = storage_xml_text(storage_xml_child(root, "name"));
    if (!p->name || !*p->name)
        return err_set(e, EINVAL, "missing pool source name element");
    if (!pool_name_valid(p->name))
        return err_set(e, EINVAL, "pool name '%s' cannot contain '/' or start with '.'",
                       p->name);
    char *u = storage_xml_text(storage_xml_child(root, "uuid"));
    if (u && *u) {
        int r = uuid_parse(u, p->uuid);
        if (r < 0) {
            err_set(e, EINVAL, "malformed uuid element '%s'", u);
            free(u);
            return r;
        }
    } else if (uuid_generate(p->uuid) < 0) {
        free(u);
        return err_set(e, EIO, "cannot generate a uuid");
    }
    free(u);
    char *path = storage_xml_text(storage_xml_child(storage_xml_child(root, "target"), "path"));
    if (!path || !*path) {
        free(path);
        return err_set(e, EINVAL, "missing storage pool target path");
    }
    if (path[0] != '/' || strlen(path) >= PATH_MAX - STORAGE_NAME_MAX - 2) {
        err_set(e, EINVAL, "storage pool target path '%s' must be absolute and shorter "
                "than %d bytes", path, PATH_MAX - STORAGE_NAME_MAX - 2);
        free(path);
        return -EINVAL;
    }
    p->path = pool_path_canonical(path);
    free(path);
    if (!p->path)
        return err_set(e, ENOMEM, "out of memory");
    return 0;
}

int storage_pool_parse(const char *xml, struct storage_pool **out, struct err *e)
{
    xmlDoc *doc = storage_xml_read(xml, "pool", e);
    if (!doc)
        return -e->code;
    struct storage_pool *p = calloc(1, sizeof(*p));
    int r = p ? pool_from_doc(xmlDocGetRootElement(doc), p, e)
              : err_set(e, ENOMEM, "out of memory");
    xmlFreeDoc(doc);
    if (r < 0) {
        storage_pool_free(p);
        return r;
    }
    *out = p;
    return 0;
}

/* Text with &, < and > (and quotes) escaped; NULL when out of memory. */
char *storage_xml_escape(const char *s)
{
    xmlChar *x = xmlEncodeSpecialChars(NULL, (const xmlChar *)s);
    if (!x)
        return NULL;
    char *out = strdup((const char *)x);
    xmlFree(x);
    return out;
}

char *storage_pool_format(const struct storage_pool *p, const struct storage_pool_usage *u)
{
    char uuid[UUID_STRING_LEN], sizes[256] = "";
    uuid_format(p->uuid, uuid);
    if (u)
        snprintf(sizes, sizeof(sizes),
                 "  <capacity unit='bytes'>%" PRIu64 "</capacity>\n"
                 "  <allocation unit='bytes'>%" PRIu64 "</allocation>\n"
                 "  <available unit='bytes'>%" PRIu64 "</available>\n",
                 u->capacity, u->allocation, u->available);
    char *name = storage_xml_escape(p->name), *path = storage_xml_escape(p->path), *out = NULL;
    if (name && path &&
        asprintf(&out, "<pool type='dir'>\n  <name>%s</name>\n  <uuid>%s</uuid>\n%s"
                 "  <source>\n  </source>\n  <target>\n    <path>%s</path>\n  </target>\n"
                 "</pool>\n", name, uuid, sizes, path) < 0)
        out = NULL;
    free(name);
    free(path);
    return out;
}

/* ---- the pool table ---- */

struct storage_pool *storage_find_name(const struct storage_driver *d, const char *name)
{
    for (size_t i = 0; i < d->npools; i++)
        if (!strcmp(d->pools[i]->name, name))
            return d->pools[i];
    return NULL;
}

struct storage_pool *storage_find_uuid(const struct storage_driver *d, const uint8_t uuid[16])
{
    for (size_t i = 0; i < d->npools; i++)
        if (!memcmp(d->pools[i]->uuid, uuid, 16))
            return d->pools[i];
    return NULL;
}

static struct storage_pool *find_clean_path(const struct storage_driver *d, const char *path)
{
    for (size_t i = 0; i < d->npools; i++)
        if (!strcmp(d->pools[i]->path, path))
            return d->pools[i];
    return NULL;
}

static int map_root(const struct storage_driver *d, char **path, struct err *e);

struct storage_pool *storage_find_path(const struct storage_driver *d, const char *path)
{
    char *clean = storage_clean_path(path);
    struct err e = {0};
    if (!clean)
        return NULL;
    struct storage_pool *found = find_clean_path(d, clean);
    /* A client's idea of libvirt's data folder, as map_root() stores it. */
    if (!found && map_root(d, &clean, &e) == 0)
        found = find_clean_path(d, clean);
    free(clean);
    return found;
}

static int table_add(struct storage_driver *d, struct storage_pool *p, struct err *e)
{
    struct storage_pool **n = realloc(d->pools, (d->npools + 1) * sizeof(*n));
    if (!n)
        return err_set(e, ENOMEM, "out of memory");
    d->pools = n;
    d->pools[d->npools++] = p;
    return 0;
}

static void table_remove(struct storage_driver *d, struct storage_pool *p)
{
    for (size_t i = 0; i < d->npools; i++) {
        if (d->pools[i] == p) {
            memmove(&d->pools[i], &d->pools[i + 1], (d->npools - i - 1) * sizeof(p));
            d->npools--;
            break;
        }
    }
    storage_pool_free(p);
}

/* The pool np would replace (same name and uuid), NULL for a new one, or
 * -EEXIST through e when it clashes with another pool. */
static int check_clash(const struct storage_driver *d, const struct storage_pool *np,
                       struct storage_pool **same, struct err *e)
{
    char uuid[UUID_STRING_LEN];
    struct storage_pool *by_name = storage_find_name(d, np->name);
    struct storage_pool *by_uuid = storage_find_uuid(d, np->uuid);
    *same = NULL;
    if (by_name && memcmp(by_name->uuid, np->uuid, 16) != 0) {
        uuid_format(by_name->uuid, uuid);
        return err_set(e, EEXIST, "pool '%s' already exists with uuid %s", np->name, uuid);
    }
    if (by_uuid && by_uuid != by_name) {
        uuid_format(np->uuid, uuid);
        return err_set(e, EEXIST, "pool '%s' is already defined with uuid %s",
                       by_uuid->name, uuid);
    }
    struct storage_pool *by_path = storage_find_path(d, np->path);
    if (by_path && by_path != by_name)
        return err_set(e, EEXIST, "Storage source conflict with pool: '%s'", by_path->name);
    *same = by_name;
    return 0;
}

static int save_def(const struct storage_driver *d, const struct storage_pool *p,
                    struct err *e)
{
    char *xml = storage_pool_format(p, NULL);
    if (!xml)
        return err_set(e, ENOMEM, "out of memory");
    int r = store_save_def(&d->store, p->name, xml, e);
    free(xml);
    return r;
}

/* Marks a pool running (or not) under RUN/storage for the next start. */
static void save_running(const struct storage_driver *d, const struct storage_pool *p)
{
    struct err e = {0};
    char file[STORAGE_NAME_MAX + 8];
    snprintf(file, sizeof(file), "%s.xml", p->name);
    if (p->active) {
        char *xml = storage_pool_format(p, NULL);
        if (!xml || store_write_atomic(d->store.run_dir, file, xml, strlen(xml), &e) < 0)
            log_warn("pool '%s': cannot record its state: %s", p->name,
                     xml ? e.msg : "out of memory");
        free(xml);
    } else {
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", d->store.run_dir, file) < (int)sizeof(path))
            unlink(path);
    }
}

/* Puts a target path under libvirt's data folder below d->root. */
static int map_root(const struct storage_driver *d, char **path, struct err *e)
{
    size_t n = strlen(LIBVIRT_DATA_ROOT);
    if (!d->root || strncmp(*path, LIBVIRT_DATA_ROOT, n) != 0 ||
        ((*path)[n] != '/' && (*path)[n] != '\0'))
        return 0;
    char *mapped;
    if (asprintf(&mapped, "%s%s", d->root, *path) < 0)
        return err_set(e, ENOMEM, "out of memory");
    if (strlen(mapped) >= PATH_MAX - STORAGE_NAME_MAX - 2) {
        free(mapped);
        return err_set(e, ENAMETOOLONG, "storage pool target path '%s%s' is too long",
                       d->root, *path);
    }
    free(*path);
    *path = mapped;
    return 0;
}

static int parse_new(const struct storage_driver *d, const char *xml,
                     struct storage_pool **out, struct err *e)
{
    int r = storage_pool_parse(xml, out, e);
    if (r == 0 && (r = map_root(d, &(*out)->path, e)) < 0) {
        storage_pool_free(*out);
        *out = NULL;
    }
    return r;
}

int storage_define(struct storage_driver *d, const char *xml, struct storage_pool **out,
                   struct err *e)
{
    struct storage_pool *np, *old;
    int r = parse_new(d, xml, &np, e);
    if (r < 0)
        return r;
    if ((r = check_clash(d, np, &old, e)) < 0 || (r = save_def(d, np, e)) < 0) {
        storage_pool_free(np);
        return r;
    }
    if (old) {
        /* A running pool keeps the folder it runs on until it restarts, as
         * libvirt keeps the live definition. */
        if (!old->active) {
            free(old->path);
            old->path = np->path;
            np->path = NULL;
        }
        old->persistent = true;
        storage_pool_free(np);
        *out = old;
        return 0;
    }
    np->persistent = true;
    if ((r = table_add(d, np, e)) < 0) {
        struct err ignore = {0};
        store_delete_def(&d->store, np->name, &ignore);
        storage_pool_free(np);
        return r;
    }
    *out = np;
    return 0;
}

static int check_dir(const char *path, struct err *e)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return err_set_errno(e, errno, "cannot open directory '%s'", path);
    if (!S_ISDIR(st.st_mode))
        return err_set(e, ENOTDIR, "'%s' is not a directory", path);
    return 0;
}

int storage_create_transient(struct storage_driver *d, const char *xml,
                             struct storage_pool **out, struct err *e)
{
    struct storage_pool *np, *old;
    int r = parse_new(d, xml, &np, e);
    if (r < 0)
        return r;
    if ((r = check_clash(d, np, &old, e)) == 0 && old)
        r = err_set(e, EEXIST, "storage pool '%s' already exists", np->name);
    if (r == 0)
        r = check_dir(np->path, e);
    if (r == 0)
        r = table_add(d, np, e);
    if (r < 0) {
        storage_pool_free(np);
        return r;
    }
    np->active = true;
    *out = np;
    return 0;
}

int storage_undefine(struct storage_driver *d, struct storage_pool *p, struct err *e)
{
    if (p->active)
        return err_set(e, EBUSY, "storage pool '%s' is still active", p->name);
    if (!p->persistent)
        return err_set(e, EBUSY, "storage pool '%s' is not persistent", p->name);
    int r = store_delete_def(&d->store, p->name, e);
    if (r < 0)
        return r;
    table_remove(d, p);
    return 0;
}

static int mkdir_parents(const char *path, struct err *e)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return err_set(e, ENAMETOOLONG, "%s: path too long", path);
    for (char *s = buf + 1; ; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return err_set_errno(e, errno, "cannot create directory '%s'", buf);
        *s = c;
        if (!c)
            break;
    }
    return check_dir(path, e);
}

int storage_build(struct storage_pool *p, struct err *e)
{
    if (p->active)
        return err_set(e, EBUSY, "storage pool '%s' is already active", p->name);
    return mkdir_parents(p->path, e);
}

int storage_start(struct storage_driver *d, struct storage_pool *p, struct err *e)
{
    if (p->active)
        return err_set(e, EBUSY, "storage pool '%s' is already active", p->name);
    int r = check_dir(p->path, e);
    if (r < 0)
        return r;
    p->active = true;
    save_running(d, p);
    return 0;
}

int storage_destroy(struct storage_driver *d, struct storage_pool *p, struct err *e)
{
    if (!p->active)
        return err_set(e, EBUSY, "storage pool '%s' is not active", p->name);
    p->active = false;
    save_running(d, p);
    if (!p->persistent)
        table_remove(d, p);
    return 0;
}

int storage_delete(struct storage_pool *p, struct err *e)
{
    if (p->active)
        return err_set(e, EBUSY, "storage pool '%s' is still active", p->name);
    if (rmdir(p->path) < 0)
        return err_set_errno(e, errno, "cannot remove directory '%s'", p->path);
    return 0;
}

int storage_set_autostart(struct storage_driver *d, struct storage_pool *p, bool on,
                          struct err *e)
{
    if (!p->persistent)
        return err_set(e, EBUSY, "cannot set autostart for transient pool '%s'", p->name);
    int r = store_set_autostart(&d->store, p->name, on, e);
    if (r == 0)
        p->autostart = on;
    return r;
}

int storage_usage(const struct storage_pool *p, struct storage_pool_usage *u, struct err *e)
{
    memset(u, 0, sizeof(*u));
    if (!p->active)
        return 0;
    struct statvfs sv;
    if (statvfs(p->path, &sv) < 0)
        return err_set_errno(e, errno, "cannot statvfs path '%s'", p->path);
    u->capacity = (uint64_t)sv.f_frsize * sv.f_blocks;
    u->available = (uint64_t)sv.f_frsize * sv.f_bavail;
    u->allocation = u->capacity - (uint64_t)sv.f_frsize * sv.f_bfree;
    return 0;
}

/* ---- loading ---- */

static int load_one(void *opaque, const char *name, const char *path, const char *xml,
                    size_t len, bool autostart, struct err *e)
{
    struct storage_driver *d = opaque;
    struct storage_pool *p, *old;
    (void)len;
    int r = storage_pool_parse(xml, &p, e);
    if (r < 0)
        return r;
    if (strcmp(p->name, name) != 0) {
        r = err_set(e, EINVAL, "%s defines pool '%s', not '%s'", path, p->name, name);
    } else if ((r = check_clash(d, p, &old, e)) == 0 && old) {
        r = err_set(e, EEXIST, "pool '%s' is defined twice", name);
    }
    if (r == 0)
        r = table_add(d, p, e);
    if (r < 0) {
        storage_pool_free(p);
        return r;
    }
    p->persistent = true;
    p->autostart = autostart;
    return 0;
}

static char *join(const char *a, const char *b)
{
    char *s;
    return asprintf(&s, "%s/%s", a, b) < 0 ? NULL : s;
}

int storage_init(struct storage_driver *d, const char *config, const char *run,
                 struct err *e)
{
    memset(d, 0, sizeof(*d));
    struct store *s = &d->store;
    s->config_dir = join(config, "storage");
    s->autostart_dir = join(config, "storage/autostart");
    s->run_dir = join(run, "storage");
    if (!s->config_dir || !s->autostart_dir || !s->run_dir) {
        storage_fini(d);
        return err_set(e, ENOMEM, "out of memory");
    }
    int r = mkdir_parents(s->autostart_dir, e);
    if (r == 0)
        r = mkdir_parents(s->run_dir, e);
    if (r < 0) {
        storage_fini(d);
        return r;
    }
    store_load_defs(s, load_one, d);
    for (size_t i = 0; i < d->npools; i++) {
        struct storage_pool *p = d->pools[i];
        char run_file[PATH_MAX];
        snprintf(run_file, sizeof(run_file), "%s/%s.xml", s->run_dir, p->name);
        if (!p->autostart && access(run_file, F_OK) != 0)
            continue;
        struct err se = {0};
        if (storage_start(d, p, &se) < 0)
            log_warn("pool '%s' not started: %s", p->name, se.msg);
    }
    return 0;
}

void storage_fini(struct storage_driver *d)
{
    for (size_t i = 0; i < d->npools; i++)
        storage_pool_free(d->pools[i]);
    free(d->pools);
    free(d->store.config_dir);
    free(d->store.autostart_dir);
    free(d->store.run_dir);
    free(d->root);
    memset(d, 0, sizeof(*d));
}
