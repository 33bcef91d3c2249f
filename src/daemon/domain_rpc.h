/* What the files answering domain procedures share: remote_domain.c (the
 * table, lookups, lists, definitions, lifecycle), domain_rpc_changes.c
 * (memory, disks, save and restore) and domain_console.c. */
#ifndef CVIRT_DAEMON_DOMAIN_RPC_H
#define CVIRT_DAEMON_DOMAIN_RPC_H

#include "daemon/rpc/dispatch.h"
#include "util/err.h"

struct domain;
struct domain_driver;

struct domain_driver *domain_rpc_driver(struct rpc_client *c);
/* One error reply from a lower layer's struct err, chosen by its errno
 * (EBUSY: operation invalid, EEXIST: operation failed, ENOENT/EACCES: the
 * system error as is, ...). Returns -1. */
int domain_rpc_fail(struct rpc_error *err, const struct err *e);
/* XML a client sent that is refused: libvirt's XML error. */
int domain_rpc_fail_xml(struct rpc_error *err, const struct err *e);
/* The domain a call names, by uuid; NULL with "Domain not found" set. */
struct domain *domain_rpc_get(struct rpc_client *c, const remote_nonnull_domain *rd,
                              struct rpc_error *err);

/* Declares `a` (the arguments) and `var` (their domain), or returns the
 * not-found error. */
#define DOMAIN_RPC_GET(var, args_type)                                        \
    const args_type *a = args;                                                \
    struct domain *var = domain_rpc_get(c, &a->dom, err);                     \
    if (!var)                                                                 \
        return -1

/* Handlers, with the rpc_handler signature. */
int domain_rpc_set_memory_flags(struct rpc_client *c, const void *args, void *ret,
                                struct rpc_error *err);
/* Snapshots (domain_snapshot.c, domain_snapshot_ops.c). */
int domain_rpc_snapshot_create(struct rpc_client *c, const void *args, void *ret,
                               struct rpc_error *err);
int domain_rpc_snapshot_get_xml(struct rpc_client *c, const void *args, void *ret,
                                struct rpc_error *err);
int domain_rpc_snapshot_num(struct rpc_client *c, const void *args, void *ret,
                            struct rpc_error *err);
int domain_rpc_snapshot_list_all(struct rpc_client *c, const void *args, void *ret,
                                 struct rpc_error *err);
int domain_rpc_snapshot_lookup(struct rpc_client *c, const void *args, void *ret,
                               struct rpc_error *err);
int domain_rpc_snapshot_has_current(struct rpc_client *c, const void *args, void *ret,
                                    struct rpc_error *err);
int domain_rpc_snapshot_current(struct rpc_client *c, const void *args, void *ret,
                                struct rpc_error *err);
int domain_rpc_snapshot_revert(struct rpc_client *c, const void *args, void *ret,
                               struct rpc_error *err);
int domain_rpc_snapshot_delete(struct rpc_client *c, const void *args, void *ret,
                               struct rpc_error *err);
int domain_rpc_snapshot_get_parent(struct rpc_client *c, const void *args, void *ret,
                                   struct rpc_error *err);
int domain_rpc_snapshot_num_children(struct rpc_client *c, const void *args, void *ret,
                                     struct rpc_error *err);
int domain_rpc_snapshot_is_current(struct rpc_client *c, const void *args, void *ret,
                                   struct rpc_error *err);
int domain_rpc_snapshot_has_metadata(struct rpc_client *c, const void *args, void *ret,
                                     struct rpc_error *err);
int domain_rpc_snapshot_list_children(struct rpc_client *c, const void *args, void *ret,
                                      struct rpc_error *err);
/* How many snapshots of d match virDomainSnapshotListFlags flags. */
int domain_snapshot_count(struct domain_driver *drv, struct domain *d, unsigned flags);
/* Drops all of d's snapshot metadata (undefine --snapshots-metadata). */
int domain_snapshot_remove_all(struct domain_driver *drv, struct domain *d, struct err *e);

int domain_rpc_attach_device_flags(struct rpc_client *c, const void *args, void *ret,
                                   struct rpc_error *err);
int domain_rpc_detach_device_flags(struct rpc_client *c, const void *args, void *ret,
                                   struct rpc_error *err);
int domain_rpc_managed_save_remove(struct rpc_client *c, const void *args, void *ret,
                                   struct rpc_error *err);
int domain_console_open(struct rpc_client *c, const void *args, void *ret,
                        struct rpc_error *err);

#endif
