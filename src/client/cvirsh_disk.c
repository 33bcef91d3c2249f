/* attach-disk and detach-disk: the <disk> XML virsh writes or finds. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "client/cvirsh_cmds.h"
#include "client/cvirsh_dom.h"

bool cvirsh_affect_flags(struct cvirsh *ctl, const struct cvirsh_cmd *cmd,
                         unsigned *flags);

struct sbuf {
    char *s;
    size_t len, cap;
    bool oom;
};

static void sb_add(struct sbuf *b, const char *t, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = true;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, t, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *t) { sb_add(b, t, strlen(t)); }

/* Attribute values come from the user: quote what XML needs quoted. */
static void sb_attr(struct sbuf *b, const char *name, const char *v)
{
    sb_str(b, " ");
    sb_str(b, name);
    sb_str(b, "='");
    for (const char *p = v; *p; p++) {
        switch (*p) {
        case '&': sb_str(b, "&amp;"); break;
        case '<': sb_str(b, "&lt;"); break;
        case '>': sb_str(b, "&gt;"); break;
        case '\'': sb_str(b, "&apos;"); break;
        case '"': sb_str(b, "&quot;"); break;
        default: sb_add(b, p, 1);
        }
    }
    sb_str(b, "'");
}

static bool disk_xml(struct cvirsh *ctl, const struct cvirsh_cmd *cmd, struct sbuf *b)
{
    const char *src = cvirsh_opt_str(cmd, "source");
    const char *stype = cvirsh_opt_str(cmd, "sourcetype");
    const char *mode = cvirsh_opt_str(cmd, "mode");
    struct stat st;
    if (!stype)
        stype = stat(src, &st) == 0 && S_ISBLK(st.st_mode) ? "block" : "file";
    if (strcmp(stype, "file") != 0 && strcmp(stype, "block") != 0) {
        cvirsh_error(ctl, "Unknown source type: '%s'", stype);
        return false;
    }
    if (mode && strcmp(mode, "readonly") != 0 && strcmp(mode, "shareable") != 0) {
        cvirsh_error(ctl, "No support for %s in command 'attach-disk'", mode);
        return false;
    }
    const char *dev = cvirsh_opt_str(cmd, "type");
    sb_str(b, "<disk");
    sb_attr(b, "type", stype);
    if (dev)
        sb_attr(b, "device", dev);  /* virsh leaves the default out */
    sb_str(b, ">\n");
    const char *drv = cvirsh_opt_str(cmd, "driver");
    const char *sub = cvirsh_opt_str(cmd, "subdriver");
    const char *cache = cvirsh_opt_str(cmd, "cache");
    if (drv || sub || cache) {
        sb_str(b, "  <driver");
        if (drv)
            sb_attr(b, "name", drv);
        if (sub)
            sb_attr(b, "type", sub);
        if (cache)
            sb_attr(b, "cache", cache);
        sb_str(b, "/>\n");
    }
    sb_str(b, "  <source");
    sb_attr(b, strcmp(stype, "block") == 0 ? "dev" : "file", src);
    sb_str(b, "/>\n  <target");
    sb_attr(b, "dev", cvirsh_opt_str(cmd, "target"));
    if (cvirsh_opt_str(cmd, "targetbus"))
        sb_attr(b, "bus", cvirsh_opt_str(cmd, "targetbus"));
    sb_str(b, "/>\n");
    if (mode) {
        sb_str(b, "  <");
        sb_str(b, mode);
        sb_str(b, "/>\n");
    }
    if (cvirsh_opt_str(cmd, "serial")) {
        sb_str(b, "  <serial>");
        sb_str(b, cvirsh_opt_str(cmd, "serial"));
        sb_str(b, "</serial>\n");
    }
    sb_str(b, "</disk>\n");
    if (b->oom) {
        cvirsh_error(ctl, "out of memory");
        return false;
    }
    return true;
}

static bool no_affect(const struct cvirsh_cmd *cmd)
{
    return !cvirsh_opt_bool(cmd, "config") && !cvirsh_opt_bool(cmd, "live") &&
           !cvirsh_opt_bool(cmd, "current") && !cvirsh_opt_bool(cmd, "persistent");
}

/* --persistent means the config and, if running, the live domain too. */
static bool device_flags(struct cvirsh *ctl, const struct cvirsh_cmd *cmd,
                         const remote_nonnull_domain *dom, unsigned *flags)
{
    if (!cvirsh_affect_flags(ctl, cmd, flags))
        return false;
    if (cvirsh_opt_bool(cmd, "persistent")) {
        remote_domain_is_active_args a = { .dom = *dom };
        int active = 0;
        struct err e = {0};
        if (client_call(ctl->conn, CLIENT_PROC_DOMAIN_IS_ACTIVE,
                        (xdrproc_t)xdr_remote_domain_is_active_args, &a,
                        (xdrproc_t)xdr_remote_domain_is_active_ret, &active, &e) < 0) {
            cvirsh_report(ctl, &e);
            return false;
        }
        *flags |= 2u | (active == 1 ? 1u : 0u);
    }
    return true;
}

/* DOMAIN_ATTACH_DEVICE (8) and DETACH_DEVICE (13) take the domain and the
 * XML without flags; the shared .x lacks them, so they are encoded here. */
struct dom_xml_args {
    remote_nonnull_domain dom;
    char *xml;
};

static bool_t xdr_dom_xml_args(XDR *x, struct dom_xml_args *a)
{
    return xdr_remote_nonnull_domain(x, &a->dom) && xdr_remote_nonnull_string(x, &a->xml);
}

/* virsh uses the calls without flags when no --config, --live, --current
 * or --persistent was given, and so does cvirsh (the daemon sees the same). */
static bool device_call(struct cvirsh *ctl, int proc, const remote_nonnull_domain *dom,
                        const char *xml, unsigned flags, bool no_flags,
                        const char *done, const char *failed)
{
    /* attach and detach args have the same shape. */
    remote_domain_attach_device_flags_args a = {
        .dom = *dom, .xml = (char *)xml, .flags = flags,
    };
    struct dom_xml_args na = { .dom = *dom, .xml = (char *)xml };
    struct err e = {0};
    int rc;
    if (no_flags)
        rc = client_call(ctl->conn, proc == CLIENT_PROC_DOMAIN_ATTACH_DEVICE_FLAGS
                                        ? CLIENT_PROC_DOMAIN_ATTACH_DEVICE
                                        : CLIENT_PROC_DOMAIN_DETACH_DEVICE,
                         (xdrproc_t)xdr_dom_xml_args, &na, NULL, NULL, &e);
    else
        rc = client_call(ctl->conn, proc,
                         (xdrproc_t)xdr_remote_domain_attach_device_flags_args, &a,
                         NULL, NULL, &e);
    if (rc < 0) {
        cvirsh_error(ctl, "%s", failed);
        cvirsh_report(ctl, &e);
        return false;
    }
    cvirsh_print_extra(ctl, "%s\n", done);
    return true;
}

bool cvirsh_cmd_attach_disk(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    remote_nonnull_domain dom;
    if (!cvirsh_lookup_domain(ctl, cmd, &dom))
        return false;
    struct sbuf b = {0};
    unsigned flags = 0;
    bool ok = disk_xml(ctl, cmd, &b);
    if (ok && cvirsh_opt_bool(cmd, "print-xml")) {
        cvirsh_print(ctl, "%s", b.s);
    } else if (ok) {
        ok = device_flags(ctl, cmd, &dom, &flags) &&
             device_call(ctl, CLIENT_PROC_DOMAIN_ATTACH_DEVICE_FLAGS, &dom, b.s, flags,
                         no_affect(cmd), "Disk attached successfully", "Failed to attach disk");
    }
    free(b.s);
    cvirsh_domain_free(&dom);
    return ok;
}

static bool attr_is(xmlNode *n, const char *child, const char *attr, const char *v)
{
    for (xmlNode *c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, child) != 0)
            continue;
        xmlChar *a = xmlGetProp(c, (const xmlChar *)attr);
        bool eq = a && strcmp((const char *)a, v) == 0;
        xmlFree(a);
        if (eq)
            return true;
    }
    return false;
}

/* The <disk> element of the domain XML whose target or source is `what`,
 * serialized for DETACH_DEVICE; NULL when there is none, with *any false
 * when the domain has no disk at all (virsh says so differently). */
static char *find_disk(const char *domxml, const char *what, bool *any)
{
    *any = false;
    xmlDoc *doc = xmlReadMemory(domxml, (int)strlen(domxml), "domain.xml", NULL,
                                XML_PARSE_NONET);
    if (!doc)
        return NULL;
    char *out = NULL;
    xmlNode *root = xmlDocGetRootElement(doc);
    for (xmlNode *d = root ? root->children : NULL; d && !out; d = d->next) {
        if (d->type != XML_ELEMENT_NODE || strcmp((const char *)d->name, "devices") != 0)
            continue;
        for (xmlNode *k = d->children; k; k = k->next) {
            if (k->type != XML_ELEMENT_NODE || strcmp((const char *)k->name, "disk") != 0)
                continue;
            *any = true;
            if (!attr_is(k, "target", "dev", what) && !attr_is(k, "source", "file", what) &&
                !attr_is(k, "source", "dev", what))
                continue;
            xmlBuffer *xb = xmlBufferCreate();
            if (xb && xmlNodeDump(xb, doc, k, 0, 0) >= 0)
                out = strdup((const char *)xmlBufferContent(xb));
            xmlBufferFree(xb);
            break;
        }
    }
    xmlFreeDoc(doc);
    return out;
}

bool cvirsh_cmd_detach_disk(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    remote_nonnull_domain dom;
    if (!cvirsh_lookup_domain(ctl, cmd, &dom))
        return false;
    unsigned flags = 0;
    char *xml = NULL, *disk = NULL;
    struct err e = {0};
    const char *target = cvirsh_opt_str(cmd, "target");
    bool ok = cvirsh_affect_flags(ctl, cmd, &flags);
    bool config = (cvirsh_opt_bool(cmd, "config") || cvirsh_opt_bool(cmd, "persistent")) &&
                  !cvirsh_opt_bool(cmd, "live");
    if (ok && !cvirsh_get_xml(ctl, &dom, config ? 2 : 0, &xml, &e)) {
        cvirsh_report(ctl, &e);
        ok = false;
    }
    bool any = false;
    if (ok && !(disk = find_disk(xml, target, &any))) {
        if (any)
            cvirsh_error(ctl, "No disk found whose source path or target is %s", target);
        else
            cvirsh_error(ctl, "Failed to get disk information");
        ok = false;
    }
    if (ok && cvirsh_opt_bool(cmd, "print-xml")) {
        cvirsh_print(ctl, "%s\n", disk);
    } else if (ok) {
        ok = device_flags(ctl, cmd, &dom, &flags) &&
             device_call(ctl, CLIENT_PROC_DOMAIN_DETACH_DEVICE_FLAGS, &dom, disk, flags,
                         no_affect(cmd), "Disk detached successfully", "Failed to detach disk");
    }
    free(disk);
    free(xml);
    cvirsh_domain_free(&dom);
    return ok;
}
