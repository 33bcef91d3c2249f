/* list: the filters virsh turns into CONNECT_LIST_ALL_DOMAINS flags, and
 * its table or plain forms. */
#include <stdlib.h>
#include <string.h>

#include "client/cvirsh_cmds.h"
#include "client/cvirsh_dom.h"

/* virConnectListAllDomainsFlags */
enum {
    LIST_ACTIVE = 1 << 0,
    LIST_INACTIVE = 1 << 1,
};

static const struct { const char *opt; unsigned flag; } filters[] = {
    { "persistent", 1 << 2 }, { "transient", 1 << 3 },
    { "state-running", 1 << 4 }, { "state-paused", 1 << 5 },
    { "state-shutoff", 1 << 6 }, { "state-other", 1 << 7 },
    { "with-managed-save", 1 << 8 }, { "without-managed-save", 1 << 9 },
    { "autostart", 1 << 10 }, { "no-autostart", 1 << 11 },
    { "with-snapshot", 1 << 12 }, { "without-snapshot", 1 << 13 },
    { "with-checkpoint", 1 << 14 }, { "without-checkpoint", 1 << 15 },
};

/* The flags virsh sends (observed on the wire): shut-off domains are
 * inactive, so --state-shutoff without --all asks for inactive ones. */
static unsigned list_flags(const struct cvirsh_cmd *cmd)
{
    bool all = cvirsh_opt_bool(cmd, "all");
    unsigned flags = LIST_ACTIVE;
    if (cvirsh_opt_bool(cmd, "inactive"))
        flags = LIST_INACTIVE;
    if (all)
        flags = LIST_ACTIVE | LIST_INACTIVE;
    if (cvirsh_opt_bool(cmd, "state-shutoff") && !all)
        flags = LIST_INACTIVE;
    for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
        if (cvirsh_opt_bool(cmd, filters[i].opt))
            flags |= filters[i].flag;
    return flags;
}

static int dom_cmp(const void *pa, const void *pb)
{
    const remote_nonnull_domain *a = pa, *b = pb;
    /* Running domains first by id, then the others by name, as virsh. */
    if (a->id >= 0 && b->id >= 0)
        return (a->id > b->id) - (a->id < b->id);
    if (a->id >= 0 || b->id >= 0)
        return a->id >= 0 ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* "uuid id name", each part only when asked, one space apart. */
static void print_plain(struct cvirsh *ctl, const struct cvirsh_cmd *cmd,
                        const remote_nonnull_domain *d)
{
    bool name = cvirsh_opt_bool(cmd, "name"), uuid = cvirsh_opt_bool(cmd, "uuid");
    bool id = cvirsh_opt_bool(cmd, "id");
    if (id && !name && !uuid && d->id < 0)
        return;     /* an inactive domain has no id: nothing to show */
    char u[37];
    cvirsh_uuid_format((const unsigned char *)d->uuid, u);
    const char *sep = "";
    if (uuid) {
        cvirsh_print(ctl, "%s", u);
        sep = " ";
    }
    if (id && d->id >= 0) {
        cvirsh_print(ctl, "%s%d", sep, d->id);
        sep = " ";
    } else if (id) {
        cvirsh_print(ctl, "%s-", sep);
        sep = " ";
    }
    if (name)
        cvirsh_print(ctl, "%s%s", sep, d->name);
    cvirsh_print(ctl, "\n");
}

/* The state column; "saved" for an inactive domain with a managed save
 * image when --managed-save asks. Returns NULL when the state can't be
 * read: virsh leaves such a domain out. */
static const char *state_column(struct cvirsh *ctl, const struct cvirsh_cmd *cmd,
                                const remote_nonnull_domain *d)
{
    int state, reason;
    struct err e = {0};
    if (!cvirsh_get_state(ctl, d, &state, &reason, &e))
        return NULL;
    if (state == 5 && cvirsh_opt_bool(cmd, "managed-save")) {
        remote_domain_has_managed_save_image_args a = { .dom = *d, .flags = 0 };
        int has = 0;
        if (client_call(ctl->conn, CLIENT_PROC_DOMAIN_HAS_MANAGED_SAVE_IMAGE,
                        (xdrproc_t)xdr_remote_domain_has_managed_save_image_args, &a,
                        (xdrproc_t)xdr_remote_domain_has_managed_save_image_ret, &has,
                        &e) == 0 && has > 0)
            return "saved";
    }
    return cvirsh_state_str(state);
}

static bool check_exclusive(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    static const char *const plain[] = { "name", "uuid", "id" };
    if (!cvirsh_opt_bool(cmd, "table"))
        return true;
    for (int i = 0; i < 3; i++) {
        if (cvirsh_opt_bool(cmd, plain[i])) {
            cvirsh_error(ctl, "Options --table and --%s are mutually exclusive", plain[i]);
            return false;
        }
    }
    return true;
}

bool cvirsh_cmd_list(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    if (!check_exclusive(ctl, cmd))
        return false;
    remote_connect_list_all_domains_args a = { .need_results = 1, .flags = list_flags(cmd) };
    remote_connect_list_all_domains_ret r;
    memset(&r, 0, sizeof(r));
    struct err e = {0};
    if (client_call(ctl->conn, CLIENT_PROC_CONNECT_LIST_ALL_DOMAINS,
                    (xdrproc_t)xdr_remote_connect_list_all_domains_args, &a,
                    (xdrproc_t)xdr_remote_connect_list_all_domains_ret, &r, &e) < 0) {
        cvirsh_error(ctl, "Failed to list domains");
        cvirsh_report(ctl, &e);
        return false;
    }
    remote_nonnull_domain *doms = r.domains.domains_val;
    unsigned n = r.domains.domains_len;
    /* qsort wants a non-NULL base even for no elements (C11 7.22.5). */
    if (n > 1)
        qsort(doms, n, sizeof(*doms), dom_cmp);
    bool plain = cvirsh_opt_bool(cmd, "name") || cvirsh_opt_bool(cmd, "uuid") ||
                 cvirsh_opt_bool(cmd, "id");
    struct cvirsh_table t = {0};
    const char *head[] = { "Id", "Name", "State" };
    if (!plain)
        cvirsh_table_add(&t, 3, head);
    for (unsigned i = 0; i < n; i++) {
        if (plain) {
            print_plain(ctl, cmd, &doms[i]);
            continue;
        }
        const char *st = state_column(ctl, cmd, &doms[i]);
        if (!st)
            continue;
        char ids[16];
        if (doms[i].id >= 0)
            snprintf(ids, sizeof(ids), "%d", doms[i].id);
        else
            snprintf(ids, sizeof(ids), "-");
        const char *row[] = { ids, doms[i].name, st };
        cvirsh_table_add(&t, 3, row);
    }
    if (!plain)
        cvirsh_table_print(ctl, &t);
    cvirsh_table_free(&t);
    client_free_ret((xdrproc_t)xdr_remote_connect_list_all_domains_ret, &r);
    return true;
}
