/* Inside the domain XML parser: the libxml2 helpers the element parsers
 * share, and the <devices> parser's entry points. */
#ifndef CVIRT_DAEMON_DOMAIN_CONF_XML_H
#define CVIRT_DAEMON_DOMAIN_CONF_XML_H

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#include "daemon/domain_conf_priv.h"

typedef xmlNode *xnode;

struct pctx {
    unsigned flags;
    struct err *e;
};

/* ---- small helpers ---- */

static inline bool is_el(xnode n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name);
}

static inline const char *el_name(xnode n)
{
    return (const char *)n->name;
}

/* Attribute value (malloc'd) or NULL. */
static inline char *attr(xnode n, const char *name)
{
    xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)name);
    if (!v)
        return NULL;
    char *s = strdup((const char *)v);
    xmlFree(v);
    return s;
}

/* For attributes whose absence means a default that would be wrong to
 * assume when only the copy failed (a disk's format, a memory unit): 0 with
 * *out NULL when absent, -ENOMEM when present but not copied. */
static inline int attr_opt(xnode n, const char *name, char **out)
{
    *out = attr(n, name);
    if (!*out && xmlHasProp(n, (const xmlChar *)name))
        return -ENOMEM;
    return 0;
}

/* Compares an attribute without copying it. */
static inline bool attr_is(xnode n, const char *name, const char *val)
{
    xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)name);
    bool r = v && !strcmp((const char *)v, val);
    xmlFree(v);
    return r;
}

/* Text content with surrounding blanks removed (malloc'd), or NULL on OOM. */
static inline char *text_trim(xnode n)
{
    xmlChar *v = xmlNodeGetContent(n);
    const char *s = v ? (const char *)v : "";
    while (isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    char *r = strndup(s, len);
    xmlFree(v);
    return r;
}

static inline xnode first_child(xnode n, const char *name)
{
    for (xnode c = n->children; c; c = c->next)
        if (is_el(c, name))
            return c;
    return NULL;
}

static inline int dx_oom(struct err *e)
{
    return err_set(e, ENOMEM, "out of memory");
}

/* Replaces *dst with a copy of the element's text; refuses an element
 * given twice, which libvirt would read as a mistake too. */
static inline int take_text(xnode n, char **dst, struct err *e)
{
    if (*dst)
        return err_set(e, EINVAL, "<%s> is given more than once", el_name(n));
    *dst = text_trim(n);
    return *dst ? 0 : dx_oom(e);
}


static inline bool in_list(const char *const *list, const char *name)
{
    for (; *list; list++)
        if (!strcmp(*list, name))
            return true;
    return false;
}

/* <devices> into d; <disk> alone for attach-device. */
int domain_conf_parse_devices(xnode devs, struct domain_def *d, struct pctx *p);
int domain_conf_parse_disk(xnode n, struct domain_disk *disk, struct pctx *p);
int domain_conf_parse_net(xnode n, struct domain_net *net, struct pctx *p);

#endif
