/* Live disk attach and detach (virsh attach-disk / detach-disk --live)
 * through the VMM's blockdev-add, device_add and device_del.
 *
 * Names on the VMM side come from the target: node "drive-vdb", device
 * "virtio-disk-vdb", so the daemon needs no table of its own and finds
 * them again after its own restart. Disks the VMM was started with have no
 * device id there unless they have a PCI slot (domain_def_vmm_argv);
 * device_del says so, and the detach is refused.
 *
 * The daemon picks the slot of an attached disk itself (the one its
 * <address> asks for, or the lowest free one) and records it in the live
 * definition, so dumpxml shows it and a restore or a migration destination
 * is started with the disk in the same slot.
 *
 * A detach returns once the guest has ejected the disk or, like libvirt,
 * after DETACH_WAIT_MS with the removal still pending: the disk leaves the
 * live definition when DEVICE_DELETED arrives. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "daemon/domain_conf.h"
#include "daemon/domain_run_priv.h"
#include "daemon/vmm_client.h"
#include "util/log.h"

/* libvirt waits 5 s for the guest to release a device. */
#define DETACH_WAIT_MS 5000
#define DEV_PREFIX DOMAIN_DISK_DEV_PREFIX

/* Target names become QMP ids: letters and digits only, short. */
static int ids_for(const char *target, char *node, char *dev, size_t len, struct err *e)
{
    if (domain_disk_qmp_names(target, node, dev, len) < 0)
        return err_set(e, EINVAL, "disk target '%s' cannot be hot-plugged", target);
    return 0;
}

static const struct domain_disk *live_disk(const struct domain *d, const char *match)
{
    for (size_t i = 0; i < d->live->ndisks; i++) {
        const struct domain_disk *dk = &d->live->disks[i];
        if (strcmp(dk->target_dev, match) == 0 || strcmp(dk->source_file, match) == 0)
            return dk;
    }
    return NULL;
}

static struct json_object *blockdev_args(const struct domain_disk *disk, const char *node)
{
    struct json_object *a = json_object_new_object();
    struct json_object *file = json_object_new_object();
    json_object_object_add(file, "driver", json_object_new_string("file"));
    json_object_object_add(file, "filename", json_object_new_string(disk->source_file));
    json_object_object_add(a, "driver", json_object_new_string(
                               disk->format == DOMAIN_DISK_QCOW2 ? "qcow2" : "raw"));
    json_object_object_add(a, "node-name", json_object_new_string(node));
    json_object_object_add(a, "file", file);
    json_object_object_add(a, "read-only", json_object_new_boolean(disk->readonly));
    if (disk->cache == DOMAIN_CACHE_NONE) {
        struct json_object *cache = json_object_new_object();
        json_object_object_add(cache, "direct", json_object_new_boolean(true));
        json_object_object_add(a, "cache", cache);
    }
    return a;
}

static void blockdev_del(struct domain *d, const char *node)
{
    struct json_object *a = json_object_new_object();
    json_object_object_add(a, "node-name", json_object_new_string(node));
    struct err e = { 0 };
    if (d->vmm)
        vmm_client_execute(d->vmm, "blockdev-del", a, VMM_CLIENT_TIMEOUT_MS, NULL, &e);
    else
        json_object_put(a);
}

/* Slots bus 0 has in use, as a bit mask, from query-pci: devices the VMM
 * placed itself have no slot in the definition. */
static int used_slots(struct domain *d, uint32_t *mask, struct err *e)
{
    struct json_object *ret = NULL;
    *mask = 1;   /* the host bridge */
    int r = vmm_client_execute(d->vmm, "query-pci", NULL, VMM_CLIENT_TIMEOUT_MS, &ret, e);
    if (r < 0)
        return r;
    size_t nb = json_object_is_type(ret, json_type_array) ? json_object_array_length(ret) : 0;
    for (size_t i = 0; i < nb; i++) {
        struct json_object *bus = json_object_array_get_idx(ret, i), *devs, *slot;
        if (!json_object_object_get_ex(bus, "devices", &devs) ||
            !json_object_is_type(devs, json_type_array))
            continue;
        for (size_t j = 0; j < json_object_array_length(devs); j++) {
            struct json_object *dv = json_object_array_get_idx(devs, j);
            if (!json_object_object_get_ex(dv, "slot", &slot))
                continue;
            int64_t s = json_object_get_int64(slot);
            if (s >= 0 && s <= DOMAIN_PCI_SLOT_MAX)
                *mask |= 1u << s;
        }
    }
    json_object_put(ret);
    /* A disk whose removal is pending keeps its slot until the guest
     * releases it. */
    for (size_t i = 0; i < d->live->ndisks; i++)
        if (d->live->disks[i].pci_slot)
            *mask |= 1u << d->live->disks[i].pci_slot;
    return 0;
}

static int pick_slot(struct domain *d, struct domain_disk *disk, struct err *e)
{
    uint32_t used;
    int r = used_slots(d, &used, e);
    if (r < 0)
        return r;
    if (disk->pci_slot) {
        if (used & (1u << disk->pci_slot))
            return err_set(e, EBUSY, "PCI slot %#x of domain '%s' is in use", disk->pci_slot,
                           d->name);
        return 0;
    }
    for (unsigned s = DOMAIN_PCI_SLOT_MIN; s <= DOMAIN_PCI_SLOT_MAX; s++)
        if (!(used & (1u << s))) {
            disk->pci_slot = s;
            return 0;
        }
    return err_set(e, ENOSPC, "domain '%s' has no free PCI slot", d->name);
}

int domain_disk_attach_live(struct domain_driver *drv, struct domain *d,
                            struct domain_disk *disk, struct err *e)
{
    char node[64], dev[64];
    int r = domain_op_check(d, DOMAIN_OP_LIVE_CHANGE, e);
    if (r == 0)
        r = ids_for(disk->target_dev, node, dev, sizeof(node), e);
    if (r < 0)
        return r;
    if (live_disk(d, disk->target_dev))
        return err_set(e, EINVAL, "target %s already exists", disk->target_dev);
    if (!d->vmm)
        return err_set(e, EIO, "the VMM of domain '%s' does not answer", d->name);
    unsigned asked = disk->pci_slot;
    r = pick_slot(d, disk, e);
    if (r < 0)
        return r;
    /* A node left behind by a removal the guest completed late. */
    blockdev_del(d, node);
    r = vmm_client_execute(d->vmm, "blockdev-add", blockdev_args(disk, node),
                           VMM_CLIENT_TIMEOUT_MS, NULL, e);
    if (r < 0) {
        disk->pci_slot = asked;
        return r;
    }
    char addr[16];
    snprintf(addr, sizeof addr, "%#x", disk->pci_slot);
    struct json_object *a = json_object_new_object();
    json_object_object_add(a, "driver", json_object_new_string("virtio-blk-pci"));
    json_object_object_add(a, "addr", json_object_new_string(addr));
    json_object_object_add(a, "drive", json_object_new_string(node));
    json_object_object_add(a, "id", json_object_new_string(dev));
    if (disk->serial)
        json_object_object_add(a, "serial", json_object_new_string(disk->serial));
    r = d->vmm ? vmm_client_execute(d->vmm, "device_add", a, VMM_CLIENT_TIMEOUT_MS, NULL, e)
               : err_set(e, EIO, "the VMM of domain '%s' went away", d->name);
    if (r < 0) {
        blockdev_del(d, node);
        disk->pci_slot = asked;
        return r;
    }
    r = domain_def_add_disk(d->live, disk, e);
    if (r == 0) {
        struct err se = { 0 };
        if (domain_save_run_state(drv, d, &se) < 0)
            log_warn("domain '%s': %s", d->name, se.msg);
        log_info("domain '%s': disk %s attached live in PCI slot %#x", d->name,
                 dev + strlen(DEV_PREFIX), d->live->disks[d->live->ndisks - 1].pci_slot);
    }
    return r;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int domain_disk_detach_live(struct domain_driver *drv, struct domain *d, const char *match,
                            struct err *e)
{
    char node[64], dev[64], target[32];
    int r = domain_op_check(d, DOMAIN_OP_LIVE_CHANGE, e);
    if (r < 0)
        return r;
    const struct domain_disk *dk = live_disk(d, match);
    if (!dk)
        return err_set(e, EINVAL, "disk %s not found", match);
    snprintf(target, sizeof(target), "%s", dk->target_dev);
    r = ids_for(target, node, dev, sizeof(node), e);
    if (r < 0)
        return r;
    if (!d->vmm)
        return err_set(e, EIO, "the VMM of domain '%s' does not answer", d->name);
    struct json_object *a = json_object_new_object();
    json_object_object_add(a, "id", json_object_new_string(dev));
    r = vmm_client_execute(d->vmm, "device_del", a, VMM_CLIENT_TIMEOUT_MS, NULL, e);
    if (r < 0 && strstr(e->msg, "not found")) {
        err_clear(e);
        return err_set(e, ENOTSUP, "live detach of disk %s, which the domain was started "
                       "with, is not supported", target);
    }
    if (r < 0)
        return r;
    /* Events arrive while a command waits for its reply: a cheap query
     * lets DEVICE_DELETED in. */
    int64_t end = now_ms() + DETACH_WAIT_MS;
    while (d->vmm && live_disk(d, target) && now_ms() < end) {
        struct timespec ts = { 0, 100 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        struct err qe = { 0 };
        if (d->vmm)
            vmm_client_execute(d->vmm, "query-status", NULL, VMM_CLIENT_TIMEOUT_MS, NULL, &qe);
    }
    if (live_disk(d, target)) {
        log_info("domain '%s': the guest has not released disk %s yet", d->name, target);
        return 0;
    }
    blockdev_del(d, node);
    return 0;
}

void domain_hotplug_deleted(struct domain_driver *drv, struct domain *d, const char *id)
{
    size_t pl = strlen(DEV_PREFIX);
    if (!id || strncmp(id, DEV_PREFIX, pl) != 0 || !d->live)
        return;
    struct err e = { 0 };
    if (domain_def_remove_disk(d->live, id + pl, NULL, &e) < 0)
        return;
    log_info("domain '%s': disk %s detached", d->name, id + pl);
    if (domain_save_run_state(drv, d, &e) < 0)
        log_warn("domain '%s': %s", d->name, e.msg);
}
