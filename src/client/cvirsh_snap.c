/* Snapshot commands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "client/cvirsh_cmds.h"
#include "client/cvirsh_dom.h"

static void xml_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        default: fputc(*s, f);
        }
    }
}

bool cvirsh_cmd_snapshot_create_as(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    const char *name = cvirsh_opt_str(cmd, "name");
    const char *desc = cvirsh_opt_str(cmd, "description");
    char *xml = NULL;
    size_t xlen = 0;
    FILE *f = open_memstream(&xml, &xlen);
    if (!f) {
        cvirsh_error(ctl, "out of memory");
        return false;
    }
    fputs("<domainsnapshot>\n", f);
    if (name) {
        fputs("  <name>", f);
        xml_escape(f, name);
        fputs("</name>\n", f);
    }
    if (desc) {
        fputs("  <description>", f);
        xml_escape(f, desc);
        fputs("</description>\n", f);
    }
    fputs("</domainsnapshot>\n", f);
    fclose(f);
    if (cvirsh_opt_bool(cmd, "print-xml")) {
        cvirsh_print(ctl, "%s", xml);
        free(xml);
        return true;
    }
    remote_nonnull_domain dom;
    if (!cvirsh_lookup_domain(ctl, cmd, &dom)) {
        free(xml);
        return false;
    }
    remote_domain_snapshot_create_xml_args a = { .dom = dom, .xml_desc = xml, .flags = 0 };
    remote_domain_snapshot_create_xml_ret r;
    memset(&r, 0, sizeof(r));
    struct err e = {0};
    bool ok = client_call(ctl->conn, CLIENT_PROC_DOMAIN_SNAPSHOT_CREATE_XML,
                          (xdrproc_t)xdr_remote_domain_snapshot_create_xml_args, &a,
                          (xdrproc_t)xdr_remote_domain_snapshot_create_xml_ret, &r, &e) == 0;
    if (ok) {
        /* virsh ends this message without the usual blank line. */
        cvirsh_print(ctl, "Domain snapshot %s created\n", r.snap.name);
        ctl->no_blank = true;
        client_free_ret((xdrproc_t)xdr_remote_domain_snapshot_create_xml_ret, &r);
    } else {
        cvirsh_report(ctl, &e);
    }
    free(xml);
    cvirsh_domain_free(&dom);
    return ok;
}

static char *snap_xml(struct cvirsh *ctl, const remote_nonnull_domain_snapshot *s,
                      struct err *e)
{
    remote_domain_snapshot_get_xml_desc_args a = { .snap = *s, .flags = 0 };
    remote_domain_snapshot_get_xml_desc_ret r;
    memset(&r, 0, sizeof(r));
    if (client_call(ctl->conn, CLIENT_PROC_DOMAIN_SNAPSHOT_GET_XML_DESC,
                    (xdrproc_t)xdr_remote_domain_snapshot_get_xml_desc_args, &a,
                    (xdrproc_t)xdr_remote_domain_snapshot_get_xml_desc_ret, &r, e) < 0)
        return NULL;
    return r.xml;
}

/* The creation time and state of a snapshot, from its XML. */
static void snap_fields(const char *xml, char *when, size_t wn, char *state, size_t sn)
{
    when[0] = state[0] = '\0';
    xmlDoc *doc = xmlReadMemory(xml, (int)strlen(xml), "snapshot.xml", NULL, XML_PARSE_NONET);
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    for (xmlNode *n = root ? root->children : NULL; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        xmlChar *t = xmlNodeGetContent(n);
        if (strcmp((const char *)n->name, "creationTime") == 0 && t) {
            time_t secs = (time_t)strtoll((const char *)t, NULL, 10);
            struct tm tm;
            if (localtime_r(&secs, &tm))
                strftime(when, wn, "%Y-%m-%d %H:%M:%S %z", &tm);
        } else if (strcmp((const char *)n->name, "state") == 0 && t) {
            snprintf(state, sn, "%s", (const char *)t);
        }
        xmlFree(t);
    }
    xmlFreeDoc(doc);
}

static int snap_cmp(const void *pa, const void *pb)
{
    const remote_nonnull_domain_snapshot *a = pa, *b = pb;
    return strcmp(a->name, b->name);
}

bool cvirsh_cmd_snapshot_list(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    remote_nonnull_domain dom;
    if (!cvirsh_lookup_domain(ctl, cmd, &dom))
        return false;
    remote_domain_list_all_snapshots_args a = { .dom = dom, .need_results = 1, .flags = 0 };
    remote_domain_list_all_snapshots_ret r;
    memset(&r, 0, sizeof(r));
    struct err e = {0};
    if (client_call(ctl->conn, CLIENT_PROC_DOMAIN_LIST_ALL_SNAPSHOTS,
                    (xdrproc_t)xdr_remote_domain_list_all_snapshots_args, &a,
                    (xdrproc_t)xdr_remote_domain_list_all_snapshots_ret, &r, &e) < 0) {
        cvirsh_report(ctl, &e);
        cvirsh_domain_free(&dom);
        return false;
    }
    /* qsort wants a non-NULL base even for no elements (C11 7.22.5). */
    if (r.snapshots.snapshots_len > 1)
        qsort(r.snapshots.snapshots_val, r.snapshots.snapshots_len,
              sizeof(remote_nonnull_domain_snapshot), snap_cmp);
    bool ok = true;
    bool names = cvirsh_opt_bool(cmd, "name");
    struct cvirsh_table t = {0};
    const char *head[] = { "Name", "Creation Time", "State" };
    if (!names)
        cvirsh_table_add(&t, 3, head);
    for (unsigned i = 0; ok && i < r.snapshots.snapshots_len; i++) {
        remote_nonnull_domain_snapshot *s = &r.snapshots.snapshots_val[i];
        if (names) {
            cvirsh_print(ctl, "%s\n", s->name);
            continue;
        }
        char *xml = snap_xml(ctl, s, &e);
        if (!xml) {
            cvirsh_report(ctl, &e);
            ok = false;
            break;
        }
        char when[64], state[64];
        snap_fields(xml, when, sizeof(when), state, sizeof(state));
        free(xml);
        const char *row[] = { s->name, when, state };
        cvirsh_table_add(&t, 3, row);
    }
    if (ok && !names)
        cvirsh_table_print(ctl, &t);
    cvirsh_table_free(&t);
    client_free_ret((xdrproc_t)xdr_remote_domain_list_all_snapshots_ret, &r);
    cvirsh_domain_free(&dom);
    return ok;
}

/* The snapshot named by --snapshotname, or the current one with
 * --current (or when use_current and no name was given). */
static bool get_snapshot(struct cvirsh *ctl, const struct cvirsh_cmd *cmd,
                         const remote_nonnull_domain *dom, bool use_current,
                         remote_nonnull_domain_snapshot *snap)
{
    const char *name = cvirsh_opt_str(cmd, "snapshotname");
    struct err e = {0};
    memset(snap, 0, sizeof(*snap));
    if (name && cvirsh_opt_bool(cmd, "current")) {
        cvirsh_error(ctl, "Options --current and --snapshotname are mutually exclusive");
        return false;
    }
    if (!name && !cvirsh_opt_bool(cmd, "current") && !use_current) {
        cvirsh_error(ctl, "--snapshotname or --current is required");
        return false;
    }
    if (name) {
        remote_domain_snapshot_lookup_by_name_args a = { .dom = *dom, .name = (char *)name };
        remote_domain_snapshot_lookup_by_name_ret r;
        memset(&r, 0, sizeof(r));
        if (client_call(ctl->conn, CLIENT_PROC_DOMAIN_SNAPSHOT_LOOKUP_BY_NAME,
                        (xdrproc_t)xdr_remote_domain_snapshot_lookup_by_name_args, &a,
                        (xdrproc_t)xdr_remote_domain_snapshot_lookup_by_name_ret, &r,
                        &e) < 0) {
            cvirsh_report(ctl, &e);
            return false;
        }
        *snap = r.snap;
        return true;
    }
    remote_domain_has_current_snapshot_args ha = { .dom = *dom, .flags = 0 };
    int has = 0;
    if (client_call(ctl->conn, CLIENT_PROC_DOMAIN_HAS_CURRENT_SNAPSHOT,
                    (xdrproc_t)xdr_remote_domain_has_current_snapshot_args, &ha,
                    (xdrproc_t)xdr_remote_domain_has_current_snapshot_ret, &has, &e) < 0) {
        cvirsh_report(ctl, &e);
        return false;
    }
    if (!has) {
        cvirsh_error(ctl, "domain '%s' has no current snapshot", dom->name);
        return false;
    }
    remote_domain_snapshot_current_args ca = { .dom = *dom, .flags = 0 };
    remote_domain_snapshot_current_ret cr;
    memset(&cr, 0, sizeof(cr));
    if (client_call(ctl->conn, CLIENT_PROC_DOMAIN_SNAPSHOT_CURRENT,
                    (xdrproc_t)xdr_remote_domain_snapshot_current_args, &ca,
                    (xdrproc_t)xdr_remote_domain_snapshot_current_ret, &cr, &e) < 0) {
        cvirsh_report(ctl, &e);
        return false;
    }
    *snap = cr.snap;
    return true;
}

static void snap_free(remote_nonnull_domain_snapshot *s)
{
    xdr_free((xdrproc_t)xdr_remote_nonnull_domain_snapshot, (char *)s);
}

static bool snap_action(struct cvirsh *ctl, const struct cvirsh_cmd *cmd, int proc,
                        unsigned flags, const char *done)
{
    remote_nonnull_domain dom;
    if (!cvirsh_lookup_domain(ctl, cmd, &dom))
        return false;
    remote_nonnull_domain_snapshot snap;
    bool ok = get_snapshot(ctl, cmd, &dom, false, &snap);
    if (ok) {
        /* revert and delete args have the same shape. */
        remote_domain_snapshot_delete_args a = { .snap = snap, .flags = flags };
        struct err e = {0};
        ok = client_call(ctl->conn, proc,
                         (xdrproc_t)xdr_remote_domain_snapshot_delete_args, &a,
                         NULL, NULL, &e) == 0;
        if (ok)
            cvirsh_print_extra(ctl, done, snap.name);
        else
            cvirsh_report(ctl, &e);
        snap_free(&snap);
    }
    cvirsh_domain_free(&dom);
    return ok;
}

bool cvirsh_cmd_snapshot_revert(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    unsigned flags = (cvirsh_opt_bool(cmd, "running") ? 1u : 0u) |
                     (cvirsh_opt_bool(cmd, "paused") ? 2u : 0u);
    return snap_action(ctl, cmd, CLIENT_PROC_DOMAIN_REVERT_TO_SNAPSHOT, flags,
                       "Domain snapshot %s reverted\n");
}

bool cvirsh_cmd_snapshot_delete(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    return snap_action(ctl, cmd, CLIENT_PROC_DOMAIN_SNAPSHOT_DELETE, 0,
                       "Domain snapshot %s deleted\n");
}

bool cvirsh_cmd_snapshot_current(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    remote_nonnull_domain dom;
    if (!cvirsh_lookup_domain(ctl, cmd, &dom))
        return false;
    remote_nonnull_domain_snapshot snap;
    bool ok = get_snapshot(ctl, cmd, &dom, true, &snap);
    if (ok && cvirsh_opt_bool(cmd, "name")) {
        cvirsh_print(ctl, "%s\n", snap.name);
        ctl->no_blank = true;   /* as virsh */
    } else if (ok) {
        struct err e = {0};
        char *xml = snap_xml(ctl, &snap, &e);
        if (xml)
            cvirsh_print(ctl, "%s", xml);
        else
            cvirsh_report(ctl, &e);
        ok = xml != NULL;
        free(xml);
    }
    if (ok || snap.name)
        snap_free(&snap);
    cvirsh_domain_free(&dom);
    return ok;
}
