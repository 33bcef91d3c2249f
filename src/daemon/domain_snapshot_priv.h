/* Shared by domain_snapshot.c (queries, the tree) and domain_snapshot_ops.c
 * (create, revert, delete). */
#ifndef CVIRT_DAEMON_DOMAIN_SNAPSHOT_PRIV_H
#define CVIRT_DAEMON_DOMAIN_SNAPSHOT_PRIV_H

#include "daemon/domain.h"
#include "daemon/domain_rpc.h"
#include "daemon/domain_snapshot.h"
#include "daemon/rpc/server.h"

const struct store *domain_snapshot_store(struct rpc_client *c);
int domain_snapshot_fill(remote_nonnull_domain_snapshot *out, const struct domain *d,
                         const char *name, struct rpc_error *err);
/* libvirt's "no domain snapshot with matching name". */
int domain_snapshot_none(struct rpc_error *err, const char *name);
/* The snapshot a call names, with its domain in *dp; NULL with err set. */
struct snap *domain_snapshot_get(struct rpc_client *c, const remote_nonnull_domain_snapshot *rs,
                                 struct domain **dp, struct rpc_error *err);

#endif
