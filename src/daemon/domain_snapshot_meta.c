/* Snapshot metadata as libvirt's QEMU driver keeps it: one <domainsnapshot>
 * document per snapshot under CONFIG/qemu/snapshot/DOMAIN/NAME.xml, and the
 * name of the current snapshot in CONFIG/qemu/snapshot/DOMAIN/current (a
 * name without ".xml", so no snapshot file can take its place). The files
 * are ours, but a hand-edited one is parsed as hostile input all the same. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "daemon/domain_snapshot.h"
#include "daemon/store.h"

#define SNAP_FILE_MAX (4u << 20)

void snap_free(struct snap *s)
{
    if (!s)
        return;
    free(s->name);
    free(s->parent);
    free(s->desc);
    free(s->domxml);
    for (size_t i = 0; i < s->ndisks; i++)
        free(s->disks[i]);
    free(s->disks);
    free(s);
}

int snap_name_check(const char *name, struct err *e)
{
    size_t len = strlen(name);
    if (len == 0 || len > SNAP_NAME_MAX)
        return err_set(e, EINVAL, "invalid snapshot name length %zu", len);
    if (name[0] == '.' || strchr(name, '/'))
        return err_set(e, EINVAL, "invalid snapshot name '%s': it cannot start with '.' "
                       "or contain '/'", name);
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20)
            return err_set(e, EINVAL, "invalid snapshot name: control character");
    return 0;
}

int snap_dir(const struct store *st, const char *dom, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/snapshot/%s", st->config_dir, dom);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* STATE/qemu/snapshot/DOMAIN: beside STATE/qemu/save. */
int snap_state_path(const struct store *st, const char *dom, const char *name, char *buf,
                    size_t len)
{
    const char *slash = strrchr(st->save_dir, '/');
    if (!slash)
        return -EINVAL;
    int n = snprintf(buf, len, "%.*s/snapshot/%s%s%s%s", (int)(slash - st->save_dir),
                     st->save_dir, dom, name ? "/" : "", name ? name : "",
                     name ? ".state" : "");
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int snap_mkdir(const char *path, struct err *e)
{
    char buf[PATH_MAX];
    int n = snprintf(buf, sizeof(buf), "%s", path);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return err_set(e, ENAMETOOLONG, "%s: path too long", path);
    for (char *p = buf + 1; ; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0700) < 0 && errno != EEXIST)
            return err_set_errno(e, errno, "cannot create %s", buf);
        *p = c;
        if (!c)
            return 0;
    }
}

static char *node_text(xmlNodePtr n)
{
    xmlChar *t = xmlNodeGetContent(n);
    char *s = strdup(t ? (const char *)t : "");
    xmlFree(t);
    return s;
}

static xmlNodePtr child(xmlNodePtr n, const char *name)
{
    for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, name) == 0)
            return c;
    return NULL;
}

static int parse_disks(struct snap *s, xmlNodePtr disks)
{
    for (xmlNodePtr c = disks ? disks->children : NULL; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "disk") != 0)
            continue;
        if (s->ndisks >= SNAP_DISKS_MAX)
            return -E2BIG;
        xmlChar *nm = xmlGetProp(c, (const xmlChar *)"name");
        if (!nm)
            continue;
        char **v = realloc(s->disks, (s->ndisks + 1) * sizeof(*v));
        if (v)
            s->disks = v;
        char *copy = v ? strdup((const char *)nm) : NULL;
        xmlFree(nm);
        if (!copy)
            return -ENOMEM;
        s->disks[s->ndisks++] = copy;
    }
    return 0;
}

static int parse_domain(struct snap *s, xmlDocPtr doc, xmlNodePtr dom)
{
    if (!dom)
        return 0;
    xmlBufferPtr buf = xmlBufferCreate();
    if (!buf)
        return -ENOMEM;
    int r = xmlNodeDump(buf, doc, dom, 0, 0) < 0 ? -EINVAL : 0;
    if (r == 0 && !(s->domxml = strdup((const char *)xmlBufferContent(buf))))
        r = -ENOMEM;
    xmlBufferFree(buf);
    return r;
}

int snap_parse(const char *xml, size_t len, bool input, struct snap **out, struct err *e)
{
    if (len > SNAP_FILE_MAX)
        return err_set(e, EFBIG, "snapshot XML too large");
    xmlDocPtr doc = xmlReadMemory(xml, (int)len, "domainsnapshot.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!root || strcmp((const char *)root->name, "domainsnapshot") != 0) {
        xmlFreeDoc(doc);
        return err_set(e, EINVAL, "missing element <domainsnapshot>");
    }
    struct snap *s = calloc(1, sizeof(*s));
    int r = s ? 0 : -ENOMEM;
    xmlNodePtr n;
    if (r == 0 && (n = child(root, "name")) && !(s->name = node_text(n)))
        r = -ENOMEM;
    if (r == 0 && (n = child(root, "description")) && !(s->desc = node_text(n)))
        r = -ENOMEM;
    if (r == 0 && (n = child(child(root, "parent"), "name")) && !(s->parent = node_text(n)))
        r = -ENOMEM;
    if (r == 0 && (n = child(root, "state"))) {
        char *t = node_text(n);
        snprintf(s->state, sizeof(s->state), "%s", t ? t : "");
        free(t);
    }
    if (r == 0 && (n = child(root, "creationTime"))) {
        char *t = node_text(n);
        s->ctime = t ? strtoll(t, NULL, 10) : 0;
        free(t);
    }
    if (r == 0 && (n = child(root, "memory"))) {
        xmlChar *m = xmlGetProp(n, (const xmlChar *)"snapshot");
        s->memory = m && strcmp((const char *)m, "internal") == 0;
        s->memory_no = m && strcmp((const char *)m, "no") == 0;
        xmlFree(m);
    }
    if (r == 0)
        r = parse_disks(s, child(root, "disks"));
    if (r == 0 && !input)
        r = parse_domain(s, doc, child(root, "domain"));
    xmlFreeDoc(doc);
    if (r == 0 && s->name && snap_name_check(s->name, e) < 0)
        r = -EINVAL;
    else if (r == 0 && !input && (!s->name || !s->state[0]))
        r = err_set(e, EINVAL, "snapshot metadata without a name or a state");
    else if (r < 0 && r != -EINVAL)
        err_set(e, -r, "cannot parse snapshot XML");
    if (r < 0) {
        snap_free(s);
        return r;
    }
    *out = s;
    return 0;
}

static int add_text(xmlNodePtr parent, const char *name, const char *text)
{
    return xmlNewTextChild(parent, NULL, (const xmlChar *)name, (const xmlChar *)text)
               ? 0 : -ENOMEM;
}

static int add_domain(xmlDocPtr doc, xmlNodePtr root, const char *domxml)
{
    xmlDocPtr d = xmlReadMemory(domxml, (int)strlen(domxml), "domain.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                                XML_PARSE_NOBLANKS);
    xmlNodePtr dr = d ? xmlDocGetRootElement(d) : NULL;
    xmlNodePtr copy = dr ? xmlDocCopyNode(dr, doc, 1) : NULL;
    xmlFreeDoc(d);
    if (!copy)
        return -EINVAL;
    xmlAddChild(root, copy);
    return 0;
}

char *snap_format(const struct snap *s)
{
    xmlDocPtr doc = xmlNewDoc((const xmlChar *)"1.0");
    xmlNodePtr root = doc ? xmlNewNode(NULL, (const xmlChar *)"domainsnapshot") : NULL;
    if (!root) {
        xmlFreeDoc(doc);
        return NULL;
    }
    xmlDocSetRootElement(doc, root);
    char num[32];
    snprintf(num, sizeof(num), "%lld", s->ctime);
    int r = add_text(root, "name", s->name);
    if (r == 0 && s->desc)
        r = add_text(root, "description", s->desc);
    if (r == 0)
        r = add_text(root, "state", s->state);
    if (r == 0 && s->parent) {
        xmlNodePtr p = xmlNewChild(root, NULL, (const xmlChar *)"parent", NULL);
        r = p ? add_text(p, "name", s->parent) : -ENOMEM;
    }
    if (r == 0)
        r = add_text(root, "creationTime", num);
    xmlNodePtr m = r == 0 ? xmlNewChild(root, NULL, (const xmlChar *)"memory", NULL) : NULL;
    if (!m || !xmlNewProp(m, (const xmlChar *)"snapshot",
                          (const xmlChar *)(s->memory ? "internal" : "no")))
        r = -ENOMEM;
    xmlNodePtr ds = r == 0 ? xmlNewChild(root, NULL, (const xmlChar *)"disks", NULL) : NULL;
    if (!ds)
        r = -ENOMEM;
    for (size_t i = 0; r == 0 && i < s->ndisks; i++) {
        xmlNodePtr dk = xmlNewChild(ds, NULL, (const xmlChar *)"disk", NULL);
        if (!dk || !xmlNewProp(dk, (const xmlChar *)"name", (const xmlChar *)s->disks[i]) ||
            !xmlNewProp(dk, (const xmlChar *)"snapshot", (const xmlChar *)"internal"))
            r = -ENOMEM;
    }
    if (r == 0 && s->domxml)
        r = add_domain(doc, root, s->domxml);
    char *out = NULL;
    if (r == 0) {
        xmlNodePtr top = xmlDocGetRootElement(doc);
        xmlBufferPtr buf = xmlBufferCreate();
        /* The document without an XML declaration, as libvirt prints it. */
        if (buf && xmlNodeDump(buf, doc, top, 0, 1) >= 0 &&
            asprintf(&out, "%s\n", (const char *)xmlBufferContent(buf)) < 0)
            out = NULL;
        xmlBufferFree(buf);
    }
    xmlFreeDoc(doc);
    return out;
}

static int file_path(const struct store *st, const char *dom, const char *name,
                     char *buf, size_t len)
{
    char dir[PATH_MAX];
    if (snap_dir(st, dom, dir, sizeof(dir)) < 0)
        return -ENAMETOOLONG;
    int n = snprintf(buf, len, "%s/%s.xml", dir, name);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int snap_load(const struct store *st, const char *dom, const char *name, struct snap **out,
              struct err *e)
{
    char path[PATH_MAX];
    if (snap_name_check(name, e) < 0)
        return -ENOENT;
    if (file_path(st, dom, name, path, sizeof(path)) < 0)
        return err_set(e, ENAMETOOLONG, "snapshot path too long");
    char *xml = NULL;
    size_t len = 0;
    int r = store_read_file(path, SNAP_FILE_MAX, &xml, &len, e);
    if (r < 0)
        return r;
    r = snap_parse(xml, len, false, out, e);
    free(xml);
    if (r == 0 && strcmp((*out)->name, name) != 0) {
        snap_free(*out);
        return err_set(e, EINVAL, "%s names another snapshot", path);
    }
    return r;
}

int snap_save(const struct store *st, const char *dom, const struct snap *s, struct err *e)
{
    char dir[PATH_MAX], file[SNAP_NAME_MAX + 8];
    if (snap_dir(st, dom, dir, sizeof(dir)) < 0)
        return err_set(e, ENAMETOOLONG, "snapshot path too long");
    int r = snap_mkdir(dir, e);
    if (r < 0)
        return r;
    char *xml = snap_format(s);
    if (!xml)
        return err_set(e, ENOMEM, "cannot format snapshot '%s'", s->name);
    snprintf(file, sizeof(file), "%s.xml", s->name);
    r = store_write_atomic(dir, file, xml, strlen(xml), e);
    free(xml);
    return r;
}

int snap_remove(const struct store *st, const char *dom, const char *name, struct err *e)
{
    char path[PATH_MAX];
    if (file_path(st, dom, name, path, sizeof(path)) < 0)
        return err_set(e, ENAMETOOLONG, "snapshot path too long");
    if (unlink(path) < 0 && errno != ENOENT)
        return err_set_errno(e, errno, "cannot remove %s", path);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int snap_names(const struct store *st, const char *dom, char ***out, size_t *n)
{
    char dir[PATH_MAX];
    *out = NULL;
    *n = 0;
    if (snap_dir(st, dom, dir, sizeof(dir)) < 0)
        return -ENAMETOOLONG;
    DIR *dp = opendir(dir);
    if (!dp)
        return errno == ENOENT ? 0 : -errno;
    struct dirent *de;
    int r = 0;
    char **v = NULL;
    size_t cnt = 0;
    while (r == 0 && (de = readdir(dp))) {
        size_t len = strlen(de->d_name);
        if (len <= 4 || strcmp(de->d_name + len - 4, ".xml") != 0 || de->d_name[0] == '.')
            continue;
        char **nv = realloc(v, (cnt + 1) * sizeof(*v));
        if (!nv) {
            r = -ENOMEM;
            break;
        }
        v = nv;
        if (!(v[cnt] = strndup(de->d_name, len - 4)))
            r = -ENOMEM;
        else
            cnt++;
    }
    closedir(dp);
    if (r < 0) {
        snap_names_free(v, cnt);
        return r;
    }
    if (cnt)
        qsort(v, cnt, sizeof(*v), cmp_str);
    *out = v;
    *n = cnt;
    return 0;
}

void snap_names_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* The current snapshot's name (malloc'd), or NULL when there is none or
 * its metadata is gone. */
char *snap_current(const struct store *st, const char *dom)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    if (snap_dir(st, dom, dir, sizeof(dir)) < 0)
        return NULL;
    snprintf(path, sizeof(path), "%s/current", dir);
    char *name = NULL;
    size_t len = 0;
    struct err e = { 0 };
    if (store_read_file(path, SNAP_NAME_MAX + 1, &name, &len, &e) < 0)
        return NULL;
    char xml[PATH_MAX];
    struct stat sb;
    if (snap_name_check(name, &e) < 0 || file_path(st, dom, name, xml, sizeof(xml)) < 0 ||
        stat(xml, &sb) < 0) {
        free(name);
        return NULL;
    }
    return name;
}

int snap_set_current(const struct store *st, const char *dom, const char *name,
                     struct err *e)
{
    char dir[PATH_MAX];
    if (snap_dir(st, dom, dir, sizeof(dir)) < 0)
        return err_set(e, ENAMETOOLONG, "snapshot path too long");
    if (!name) {
        char path[PATH_MAX + 16];
        snprintf(path, sizeof(path), "%s/current", dir);
        if (unlink(path) < 0 && errno != ENOENT)
            return err_set_errno(e, errno, "cannot remove %s", path);
        return 0;
    }
    int r = snap_mkdir(dir, e);
    return r < 0 ? r : store_write_atomic(dir, "current", name, strlen(name), e);
}

int snap_remove_all(const struct store *st, const char *dom, struct err *e)
{
    char **names;
    size_t n;
    int r = snap_names(st, dom, &names, &n);
    if (r < 0)
        return err_set(e, -r, "cannot list the snapshots of '%s'", dom);
    for (size_t i = 0; r == 0 && i < n; i++) {
        char path[PATH_MAX];
        r = snap_remove(st, dom, names[i], e);
        if (r == 0 && snap_state_path(st, dom, names[i], path, sizeof(path)) == 0)
            unlink(path);
    }
    snap_names_free(names, n);
    if (r == 0)
        r = snap_set_current(st, dom, NULL, e);
    char dir[PATH_MAX];
    if (r == 0 && snap_dir(st, dom, dir, sizeof(dir)) == 0)
        rmdir(dir);
    if (r == 0 && snap_state_path(st, dom, NULL, dir, sizeof(dir)) == 0)
        rmdir(dir);
    return r;
}
