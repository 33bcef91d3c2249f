/* Domain procedures that change a domain in place: memory, disks, and the
 * removal of a managed save image. */
#include <errno.h>
#include <string.h>

#include "daemon/domain.h"
#include "daemon/domain_conf.h"
#include "daemon/domain_rpc.h"
#include "daemon/domain_run.h"

/* virDomainModificationImpact / virDomainMemoryModFlags */
#define AFFECT_LIVE   1u
#define AFFECT_CONFIG 2u
#define MEM_MAXIMUM   4u
/* What cvirt-vmm can boot, as domain_conf accepts in <memory>. */
#define MEM_MIN_KIB   (16ull << 10)
#define MEM_MAX_KIB   (1ull << 30)

int domain_rpc_managed_save_remove(struct rpc_client *c, const void *args, void *ret,
                                   struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_managed_save_remove_args);
    struct err e = { 0 };
    if (domain_managed_save_remove(domain_rpc_driver(c), d, &e) < 0)
        return domain_rpc_fail(err, &e);
    return 0;
}

/* ---- changes: memory and disks ---- */

/* AFFECT_CURRENT (0) means live when running, else the config; live needs
 * a running domain, config a persistent one. */
static int resolve_impact(const struct domain *d, unsigned *flags, struct rpc_error *err)
{
    if (!(*flags & (AFFECT_LIVE | AFFECT_CONFIG)))
        *flags |= domain_is_active(d) ? AFFECT_LIVE : AFFECT_CONFIG;
    if ((*flags & AFFECT_LIVE) && !domain_is_active(d))
        return rpc_err_set(err, VIR_ERR_OPERATION_INVALID, VIR_FROM_QEMU,
                           "domain is not running");
    if ((*flags & AFFECT_CONFIG) && !d->def)
        return rpc_err_set(err, VIR_ERR_OPERATION_INVALID, VIR_FROM_QEMU,
                           "transient domains do not have any persistent config");
    return 0;
}

int domain_rpc_set_memory_flags(struct rpc_client *c, const void *args, void *ret,
                                struct rpc_error *err)
{
    DOMAIN_RPC_GET(d, remote_domain_set_memory_flags_args);
    struct domain_driver *drv = domain_rpc_driver(c);
    unsigned flags = a->flags;
    struct err e = { 0 };
    if (resolve_impact(d, &flags, err) < 0)
        return -1;
    uint64_t kib = a->memory;
    if (flags & MEM_MAXIMUM) {
        if (flags & AFFECT_LIVE)
            return rpc_err_set(err, VIR_ERR_OPERATION_INVALID, VIR_FROM_QEMU,
                               "cannot resize the maximum memory on an active domain");
        if (kib < MEM_MIN_KIB || kib > MEM_MAX_KIB)
            return rpc_err_set(err, VIR_ERR_INVALID_ARG, VIR_FROM_QEMU,
                               "maximum memory must be between %llu and %llu KiB",
                               (unsigned long long)MEM_MIN_KIB,
                               (unsigned long long)MEM_MAX_KIB);
        d->def->memory_kib = kib;
        if (d->def->current_memory_kib > kib)
            d->def->current_memory_kib = kib;
    } else {
        const struct domain_def *cur = (flags & AFFECT_LIVE) ? d->live : d->def;
        if (kib > cur->memory_kib)
            return rpc_err_set(err, VIR_ERR_INVALID_ARG, VIR_FROM_QEMU,
                               "cannot set memory higher than max memory");
        if ((flags & AFFECT_LIVE) && domain_set_live_memory(drv, d, kib, &e) < 0)
            return domain_rpc_fail(err, &e);
        if (flags & AFFECT_CONFIG)
            d->def->current_memory_kib = kib;
    }
    if ((flags & AFFECT_CONFIG) && domain_save_config(drv, d, &e) < 0)
        return domain_rpc_fail(err, &e);
    return 0;
}

/* The live half of an attach or detach; disk is consumed. */
static int change_disk_live(struct domain_driver *drv, struct domain *d,
                            struct domain_disk *disk, bool attach, struct err *e)
{
    int r;
    if (attach) {
        r = domain_disk_attach_live(drv, d, disk, e);
        if (r < 0)
            domain_disk_free(disk);
    } else {
        r = domain_disk_detach_live(drv, d, disk->target_dev, e);
        domain_disk_free(disk);
    }
    return r;
}

static int change_disk_config(struct domain_driver *drv, struct domain *d,
                              struct domain_disk *disk, bool attach, struct err *e)
{
    int r;
    if (attach) {
        r = domain_def_add_disk(d->def, disk, e);
        if (r < 0)
            domain_disk_free(disk);
    } else {
        r = domain_def_remove_disk(d->def, disk->target_dev, NULL, e);
        if (r == -ENOENT) {
            err_clear(e);
            err_set(e, EINVAL, "disk %s not found", disk->target_dev);
        }
        domain_disk_free(disk);
    }
    return r == 0 ? domain_save_config(drv, d, e) : r;
}

static int change_disk(struct rpc_client *c, const remote_nonnull_domain *rd,
                       const char *xml, unsigned flags, bool attach, struct rpc_error *err)
{
    struct domain_driver *drv = domain_rpc_driver(c);
    struct domain *d = domain_rpc_get(c, rd, err);
    if (!d || resolve_impact(d, &flags, err) < 0)
        return -1;
    struct domain_disk *live = NULL, *conf = NULL;
    struct err e = { 0 };
    /* One copy per definition it goes into. */
    if (((flags & AFFECT_LIVE) && domain_disk_parse(xml, strlen(xml), &live, &e) < 0) ||
        ((flags & AFFECT_CONFIG) && domain_disk_parse(xml, strlen(xml), &conf, &e) < 0)) {
        domain_disk_free(live);
        return domain_rpc_fail_xml(err, &e);
    }
    int r = 0;
    /* The config changes only when the live change worked, as libvirt. */
    if (live)
        r = change_disk_live(drv, d, live, attach, &e);
    if (conf && r == 0)
        r = change_disk_config(drv, d, conf, attach, &e);
    else
        domain_disk_free(conf);
    if (r < 0)
        return e.code == EINVAL ? rpc_err_set(err, VIR_ERR_OPERATION_FAILED, VIR_FROM_QEMU,
                                              "%s", e.msg)
                                : domain_rpc_fail(err, &e);
    if (flags & AFFECT_CONFIG)
        domain_emit(drv, d, DOMAIN_EVENT_DEFINED, DOMAIN_EVENT_DEFINED_UPDATED);
    return 0;
}

int domain_rpc_attach_device_flags(struct rpc_client *c, const void *args, void *ret,
                                   struct rpc_error *err)
{
    const remote_domain_attach_device_flags_args *a = args;
    return change_disk(c, &a->dom, a->xml, a->flags, true, err);
}

int domain_rpc_detach_device_flags(struct rpc_client *c, const void *args, void *ret,
                                   struct rpc_error *err)
{
    const remote_domain_detach_device_flags_args *a = args;
    return change_disk(c, &a->dom, a->xml, a->flags, false, err);
}
