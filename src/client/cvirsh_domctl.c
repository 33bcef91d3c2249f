/* Domain commands that change things: lifecycle, save/restore, autostart,
 * define/undefine, memory (migrate: cvirsh_migrate.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cvirsh_cmds.h"
#include "client/cvirsh_dom.h"

/* The common shape: look up, one call with just the domain, a message. */
static bool simple_action(struct cvirsh *ctl, const struct cvirsh_cmd *cmd,
                          int proc, xdrproc_t xa,
                          const char *done, const char *failed)
{
    remote_nonnull_domain dom;
    if (!cvirsh_lookup_domain(ctl, cmd, &dom))
        return false;
    /* Every *_args used here starts with the domain; some add flags 0. */
    struct { remote_nonnull_domain dom; unsigned int flags; } a = { dom, 0 };
    struct err e = {0};
    bool ok = client_call(ctl->conn, proc, xa, &a, NULL, NULL, &e) == 0;
    if (ok) {
        cvirsh_print_extra(ctl, done, dom.name);
    } else {
        cvirsh_error(ctl, failed, dom.name);
        cvirsh_report(ctl, &e);
    }
    cvirsh_domain_free(&dom);
    return ok;
}

bool cvirsh_cmd_shutdown(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    return simple_action(ctl, cmd, CLIENT_PROC_DOMAIN_SHUTDOWN,
                         (xdrproc_t)xdr_remote_domain_shutdown_args,
                         "Domain '%s' is being shutdown\n",
                         "Failed to shutdown domain '%s'");
}

bool cvirsh_cmd_destroy(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    return simple_action(ctl, cmd, CLIENT_PROC_DOMAIN_DESTROY,
                         (xdrproc_t)xdr_remote_domain_destroy_args,
                         "Domain '%s' destroyed\n", "Failed to destroy domain '%s'");
}

bool cvirsh_cmd_reboot(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    return simple_action(ctl, cmd, CLIENT_PROC_DOMAIN_REBOOT,
                         (xdrproc_t)xdr_remote_domain_reboot_args,
                         "Domain '%s' is being rebooted\n",
                         "Failed to reboot domain '%s'");
}

bool cvirsh_cmd_suspend(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    return simple_action(ctl, cmd, CLIENT_PROC_DOMAIN_SUSPEND,
                         (xdrproc_t)xdr_remote_domain_suspend_args,
                         "Domain '%s' suspended\n", "Failed to suspend domain '%s'");
}

bool cvirsh_cmd_resume(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    return simple_action(ctl, cmd, CLIENT_PROC_DOMAIN_RESUME,
                         (xdrproc_t)xdr_remote_domain_resume_args,
                         "Domain '%s' resumed\n", "Failed to resume domain '%s'");
}

bool cvirsh_cmd_start(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    remote_nonnull_domain dom;
    if (!cvirsh_lookup_by(ctl, cvirsh_opt_str(cmd, "domain"),
                          CVIRSH_BY_NAME | CVIRSH_BY_UUID, &dom))
        return false;
    bool ok = false;
    if (dom.id >= 0) {
        cvirsh_error(ctl, "Domain is already active");
        goto out;
    }
    remote_domain_create_args a = { .dom = dom };
    struct err e = {0};
    if (client_call(ctl->conn, CLIENT_PROC_DOMAIN_CREATE,
                    (xdrproc_t)xdr_remote_domain_create_args, &a, NULL, NULL, &e) == 0) {
        /* The id changed: refetch it, as libvirt's remote driver does. */
        remote_domain_lookup_by_uuid_args ua;
        memcpy(ua.uuid, dom.uuid, sizeof(ua.uuid));
        remote_domain_lookup_by_uuid_ret r;
        memset(&r, 0, sizeof(r));
        if (client_call(ctl->conn, CLIENT_PROC_DOMAIN_LOOKUP_BY_UUID,
                        (xdrproc_t)xdr_remote_domain_lookup_by_uuid_args, &ua,
                        (xdrproc_t)xdr_remote_domain_lookup_by_uuid_ret, &r, &e) == 0) {
            client_free_ret((xdrproc_t)xdr_remote_domain_lookup_by_uuid_ret, &r);
            ok = true;
        }
    }
    if (ok) {
        cvirsh_print_extra(ctl, "Domain '%s' started\n", dom.name);
    } else {
        cvirsh_error(ctl, "Failed to start domain '%s'", dom.name);
        cvirsh_report(ctl, &e);
    }
out:
    cvirsh_domain_free(&dom);
    return ok;
}

bool cvirsh_cmd_save(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    remote_nonnull_domain dom;
    if (!cvirsh_lookup_domain(ctl, cmd, &dom))
        return false;
    const char *to = cvirsh_opt_str(cmd, "file");
    remote_domain_save_args a = { .dom = dom, .to = (char *)to };
    struct err e = {0};
    bool ok = client_call(ctl->conn, CLIENT_PROC_DOMAIN_SAVE,
                          (xdrproc_t)xdr_remote_domain_save_args, &a,
                          NULL, NULL, &e) == 0;
    if (ok) {
        cvirsh_print_extra(ctl, "\nDomain '%s' saved to %s\n", dom.name, to);
    } else {
        cvirsh_error(ctl, "Failed to save domain '%s' to %s", dom.name, to);
        cvirsh_report(ctl, &e);
    }
    cvirsh_domain_free(&dom);
    return ok;
}

bool cvirsh_cmd_restore(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    const char *from = cvirsh_opt_str(cmd, "file");
    remote_domain_restore_args a = { .from = (char *)from };
    struct err e = {0};
    if (client_call(ctl->conn, CLIENT_PROC_DOMAIN_RESTORE,
                    (xdrproc_t)xdr_remote_domain_restore_args, &a,
                    NULL, NULL, &e) < 0) {
        cvirsh_error(ctl, "Failed to restore domain from %s", from);
        cvirsh_report(ctl, &e);
        return false;
    }
    cvirsh_print_extra(ctl, "Domain restored from %s\n", from);
    return true;
}

bool cvirsh_cmd_autostart(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    remote_nonnull_domain dom;
    if (!cvirsh_lookup_domain(ctl, cmd, &dom))
        return false;
    bool on = !cvirsh_opt_bool(cmd, "disable");
    remote_domain_set_autostart_args a = { .dom = dom, .autostart = on };
    struct err e = {0};
    bool ok = client_call(ctl->conn, CLIENT_PROC_DOMAIN_SET_AUTOSTART,
                          (xdrproc_t)xdr_remote_domain_set_autostart_args, &a,
                          NULL, NULL, &e) == 0;
    if (ok) {
        cvirsh_print_extra(ctl, on ? "Domain '%s' marked as autostarted\n"
                                   : "Domain '%s' unmarked as autostarted\n", dom.name);
    } else {
        cvirsh_error(ctl, on ? "Failed to mark domain '%s' as autostarted"
                             : "Failed to unmark domain '%s' as autostarted", dom.name);
        cvirsh_report(ctl, &e);
    }
    cvirsh_domain_free(&dom);
    return ok;
}

/* Reads a whole file, as virsh does before define. */
static char *read_file(struct cvirsh *ctl, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        cvirsh_error(ctl, "Failed to open file '%s': %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            if (cap > 10u << 20) {
                cvirsh_error(ctl, "file '%s' is too large", path);
                goto fail;
            }
            char *nb = realloc(buf, cap);
            if (!nb) {
                cvirsh_error(ctl, "out of memory");
                goto fail;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, 4096, f);
        len += n;
        if (n < 4096) {
            if (ferror(f)) {
                cvirsh_error(ctl, "Failed to read file '%s': %s", path, strerror(errno));
                goto fail;
            }
            break;
        }
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
fail:
    fclose(f);
    free(buf);
    return NULL;
}

bool cvirsh_cmd_define(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    const char *file = cvirsh_opt_str(cmd, "file");
    char *xml = read_file(ctl, file);
    if (!xml)
        return false;
    remote_domain_define_xml_args a = { .xml = xml };
    remote_domain_define_xml_ret r;
    memset(&r, 0, sizeof(r));
    struct err e = {0};
    bool ok = client_call(ctl->conn, CLIENT_PROC_DOMAIN_DEFINE_XML,
                          (xdrproc_t)xdr_remote_domain_define_xml_args, &a,
                          (xdrproc_t)xdr_remote_domain_define_xml_ret, &r, &e) == 0;
    if (ok) {
        cvirsh_print_extra(ctl, "Domain '%s' defined from %s\n", r.dom.name, file);
        client_free_ret((xdrproc_t)xdr_remote_domain_define_xml_ret, &r);
    } else {
        cvirsh_error(ctl, "Failed to define domain from %s", file);
        cvirsh_report(ctl, &e);
    }
    free(xml);
    return ok;
}

bool cvirsh_cmd_undefine(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    remote_nonnull_domain dom;
    if (!cvirsh_lookup_domain(ctl, cmd, &dom))
        return false;
    remote_domain_undefine_flags_args a = { .dom = dom, .flags = 0 };
    struct err e = {0};
    bool ok = client_call(ctl->conn, CLIENT_PROC_DOMAIN_UNDEFINE_FLAGS,
                          (xdrproc_t)xdr_remote_domain_undefine_flags_args, &a,
                          NULL, NULL, &e) == 0;
    if (ok) {
        cvirsh_print_extra(ctl, "Domain '%s' has been undefined\n", dom.name);
    } else {
        cvirsh_error(ctl, "Failed to undefine domain '%s'", dom.name);
        cvirsh_report(ctl, &e);
    }
    cvirsh_domain_free(&dom);
    return ok;
}

/* --config, --live and --current as virsh turns them into AFFECT flags. */
bool cvirsh_affect_flags(struct cvirsh *ctl, const struct cvirsh_cmd *cmd,
                         unsigned *flags)
{
    bool cur = cvirsh_opt_bool(cmd, "current");
    bool live = cvirsh_opt_bool(cmd, "live");
    bool config = cvirsh_opt_bool(cmd, "config");
    if (cur && live) {
        cvirsh_error(ctl, "Options --current and --live are mutually exclusive");
        return false;
    }
    if (cur && config) {
        cvirsh_error(ctl, "Options --current and --config are mutually exclusive");
        return false;
    }
    *flags = (live ? 1u : 0u) | (config ? 2u : 0u);
    return true;
}

static bool set_memory(struct cvirsh *ctl, const struct cvirsh_cmd *cmd, bool max)
{
    unsigned flags;
    if (!cvirsh_affect_flags(ctl, cmd, &flags))
        return false;
    remote_nonnull_domain dom;
    if (!cvirsh_lookup_domain(ctl, cmd, &dom))
        return false;
    /* virsh reads the size after the lookup: an unknown domain wins. */
    unsigned long long kib;
    const char *size = cvirsh_opt_str(cmd, "size");
    if (cvirsh_parse_scaled_kib(size, &kib) < 0 || kib > (~0ULL >> 10)) {
        cvirsh_error(ctl, "Scaled numeric value '%s' for <size> option is malformed or out of range",
                     size);
        cvirsh_domain_free(&dom);
        return false;
    }
    /* Without --config, --live or --current virsh calls virDomainSetMemory
     * (the running domain only: LIVE) or virDomainSetMaxMemory (CURRENT),
     * which libvirt's client sends as these flags. */
    bool none = !cvirsh_opt_bool(cmd, "current") && flags == 0;
    if (none && !max)
        flags = 1;      /* VIR_DOMAIN_AFFECT_LIVE */
    if (max)
        flags |= 4;     /* VIR_DOMAIN_MEM_MAXIMUM */
    remote_domain_set_memory_flags_args a = { .dom = dom, .memory = kib, .flags = flags };
    struct err e = {0};
    bool ok = client_call(ctl->conn, CLIENT_PROC_DOMAIN_SET_MEMORY_FLAGS,
                          (xdrproc_t)xdr_remote_domain_set_memory_flags_args, &a,
                          NULL, NULL, &e) == 0;
    if (!ok) {
        if (max)
            cvirsh_error(ctl, "Unable to change MaxMemorySize");
        cvirsh_report(ctl, &e);
    }
    cvirsh_domain_free(&dom);
    return ok;
}

bool cvirsh_cmd_setmem(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    return set_memory(ctl, cmd, false);
}

bool cvirsh_cmd_setmaxmem(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    return set_memory(ctl, cmd, true);
}
