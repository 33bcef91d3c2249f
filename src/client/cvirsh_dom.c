/* Domain lookup and the read-only domain commands. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "client/cvirsh_cmds.h"
#include "client/cvirsh_dom.h"

static const char *const state_names[] = {
    "no state", "running", "idle", "paused", "in shutdown", "shut off",
    "crashed", "pmsuspended",
};

const char *cvirsh_state_str(int state)
{
    if (state < 0 || state >= (int)(sizeof(state_names) / sizeof(state_names[0])))
        return "no state";
    return state_names[state];
}

static const char *const running_reasons[] = {
    "unknown", "booted", "migrated", "restored", "from snapshot", "unpaused",
    "migration canceled", "save canceled", "event wakeup", "crashed",
    "post-copy", "post-copy failed",
};
static const char *const paused_reasons[] = {
    "unknown", "user", "migrating", "saving", "dumping", "I/O error",
    "watchdog", "from snapshot", "shutting down", "creating snapshot",
    "crashed", "starting up", "post-copy", "post-copy failed", "api error",
};
static const char *const shutdown_reasons[] = { "unknown", "user" };
static const char *const shutoff_reasons[] = {
    "unknown", "shutdown", "destroyed", "crashed", "migrated", "saved",
    "failed", "from snapshot", "daemon",
};
static const char *const crashed_reasons[] = { "unknown", "panicked" };

#define PICK(tbl) \
    (reason >= 0 && reason < (int)(sizeof(tbl) / sizeof(tbl[0])) ? tbl[reason] : "unknown")

const char *cvirsh_reason_str(int state, int reason)
{
    switch (state) {
    case 1: return PICK(running_reasons);
    case 3: return PICK(paused_reasons);
    case 4: return PICK(shutdown_reasons);
    case 5: return PICK(shutoff_reasons);
    case 6: return PICK(crashed_reasons);
    default: return "unknown";
    }
}

int cvirsh_uuid_parse(const char *s, unsigned char uuid[16])
{
    int n = 0;
    for (const char *p = s; *p; ) {
        if (*p == '-') {
            p++;
            continue;
        }
        if (n == 16 || !isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]))
            return -EINVAL;
        char hex[3] = { p[0], p[1], 0 };
        uuid[n++] = (unsigned char)strtoul(hex, NULL, 16);
        p += 2;
    }
    return n == 16 ? 0 : -EINVAL;
}

void cvirsh_uuid_format(const unsigned char *u, char out[37])
{
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
             u[10], u[11], u[12], u[13], u[14], u[15]);
}

void cvirsh_domain_free(remote_nonnull_domain *dom)
{
    free(dom->name);
    dom->name = NULL;
}

static bool lookup_call(struct cvirsh *ctl, int proc, xdrproc_t xa, const void *a,
                        remote_nonnull_domain *dom)
{
    /* The three lookup replies are one remote_nonnull_domain each. */
    remote_domain_lookup_by_name_ret r;
    memset(&r, 0, sizeof(r));
    struct err e = {0};
    if (client_call(ctl->conn, proc, xa, a,
                    (xdrproc_t)xdr_remote_domain_lookup_by_name_ret, &r, &e) < 0)
        return false;
    *dom = r.dom;
    return true;
}

bool cvirsh_lookup_by(struct cvirsh *ctl, const char *n, unsigned by,
                      remote_nonnull_domain *dom)
{
    memset(dom, 0, sizeof(*dom));
    char *end;
    errno = 0;
    long id = strtol(n, &end, 10);
    if ((by & CVIRSH_BY_ID) && *n && !*end && !errno && id >= 0 && id <= INT_MAX) {
        remote_domain_lookup_by_id_args a = { .id = (int)id };
        if (lookup_call(ctl, CLIENT_PROC_DOMAIN_LOOKUP_BY_ID,
                        (xdrproc_t)xdr_remote_domain_lookup_by_id_args, &a, dom))
            return true;
    }
    remote_domain_lookup_by_uuid_args ua;
    if ((by & CVIRSH_BY_UUID) && strlen(n) == 36 &&
        cvirsh_uuid_parse(n, (unsigned char *)ua.uuid) == 0 &&
        lookup_call(ctl, CLIENT_PROC_DOMAIN_LOOKUP_BY_UUID,
                    (xdrproc_t)xdr_remote_domain_lookup_by_uuid_args, &ua, dom))
        return true;
    if (by & CVIRSH_BY_NAME) {
        remote_domain_lookup_by_name_args a = { .name = (char *)n };
        if (lookup_call(ctl, CLIENT_PROC_DOMAIN_LOOKUP_BY_NAME,
                        (xdrproc_t)xdr_remote_domain_lookup_by_name_args, &a, dom))
            return true;
    }
    cvirsh_error(ctl, "failed to get domain '%s'", n);
    return false;
}

bool cvirsh_lookup_domain(struct cvirsh *ctl, const struct cvirsh_cmd *cmd,
                          remote_nonnull_domain *dom)
{
    return cvirsh_lookup_by(ctl, cvirsh_opt_str(cmd, "domain"), CVIRSH_BY_ANY, dom);
}

bool cvirsh_get_state(struct cvirsh *ctl, const remote_nonnull_domain *dom,
                      int *state, int *reason, struct err *e)
{
    remote_domain_get_state_args a = { .dom = *dom, .flags = 0 };
    remote_domain_get_state_ret r;
    memset(&r, 0, sizeof(r));
    if (client_call(ctl->conn, CLIENT_PROC_DOMAIN_GET_STATE,
                    (xdrproc_t)xdr_remote_domain_get_state_args, &a,
                    (xdrproc_t)xdr_remote_domain_get_state_ret, &r, e) < 0)
        return false;
    *state = r.state;
    *reason = r.reason;
    return true;
}

/* ---- single-domain information ---- */

bool cvirsh_cmd_domstate(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    remote_nonnull_domain dom;
    if (!cvirsh_lookup_domain(ctl, cmd, &dom))
        return false;
    int state, reason;
    struct err e = {0};
    bool ok = cvirsh_get_state(ctl, &dom, &state, &reason, &e);
    if (!ok)
        cvirsh_report(ctl, &e);
    else if (cvirsh_opt_bool(cmd, "reason"))
        cvirsh_print(ctl, "%s (%s)\n", cvirsh_state_str(state),
                     cvirsh_reason_str(state, reason));
    else
        cvirsh_print(ctl, "%s\n", cvirsh_state_str(state));
    cvirsh_domain_free(&dom);
    return ok;
}

bool cvirsh_cmd_domid(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    remote_nonnull_domain dom;
    if (!cvirsh_lookup_by(ctl, cvirsh_opt_str(cmd, "domain"),
                          CVIRSH_BY_NAME | CVIRSH_BY_UUID, &dom))
        return false;
    if (dom.id < 0)
        cvirsh_print(ctl, "-\n");
    else
        cvirsh_print(ctl, "%d\n", dom.id);
    cvirsh_domain_free(&dom);
    return true;
}

bool cvirsh_cmd_domuuid(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    remote_nonnull_domain dom;
    if (!cvirsh_lookup_by(ctl, cvirsh_opt_str(cmd, "domain"),
                          CVIRSH_BY_NAME | CVIRSH_BY_ID, &dom))
        return false;
    char u[37];
    cvirsh_uuid_format((const unsigned char *)dom.uuid, u);
    cvirsh_print(ctl, "%s\n", u);
    cvirsh_domain_free(&dom);
    return true;
}

bool cvirsh_cmd_domname(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    remote_nonnull_domain dom;
    if (!cvirsh_lookup_by(ctl, cvirsh_opt_str(cmd, "domain"),
                          CVIRSH_BY_ID | CVIRSH_BY_UUID, &dom))
        return false;
    cvirsh_print(ctl, "%s\n", dom.name);
    cvirsh_domain_free(&dom);
    return true;
}

bool cvirsh_get_xml(struct cvirsh *ctl, const remote_nonnull_domain *dom,
                    unsigned flags, char **xml, struct err *e)
{
    remote_domain_get_xml_desc_args a = { .dom = *dom, .flags = flags };
    remote_domain_get_xml_desc_ret r;
    memset(&r, 0, sizeof(r));
    if (client_call(ctl->conn, CLIENT_PROC_DOMAIN_GET_XML_DESC,
                    (xdrproc_t)xdr_remote_domain_get_xml_desc_args, &a,
                    (xdrproc_t)xdr_remote_domain_get_xml_desc_ret, &r, e) < 0)
        return false;
    *xml = r.xml;
    return true;
}

bool cvirsh_cmd_dumpxml(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    remote_nonnull_domain dom;
    if (!cvirsh_lookup_domain(ctl, cmd, &dom))
        return false;
    unsigned flags = 0;
    if (cvirsh_opt_bool(cmd, "security-info"))
        flags |= 1;     /* VIR_DOMAIN_XML_SECURE */
    if (cvirsh_opt_bool(cmd, "inactive"))
        flags |= 2;     /* VIR_DOMAIN_XML_INACTIVE */
    char *xml = NULL;
    struct err e = {0};
    bool ok = cvirsh_get_xml(ctl, &dom, flags, &xml, &e);
    if (ok)
        cvirsh_print(ctl, "%s", xml);
    else
        cvirsh_report(ctl, &e);
    free(xml);
    cvirsh_domain_free(&dom);
    return ok;
}
