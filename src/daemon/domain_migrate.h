/* Live migration between two daemons, the way libvirt's QEMU driver does
 * it with the client-driven "v3" sequence: Begin (source: the XML),
 * Prepare (destination: a VMM with the same machine waiting on a port),
 * Perform (source: the VMM sends itself there), Finish (destination: the
 * guest runs, or the VMM goes when the transfer failed) and Confirm
 * (source: its VMM goes, or the guest runs on when something failed).
 *
 * Disks are shared storage: both VMMs open the same files. The source
 * flushes its images when it stops for the last copy, and the VMM that
 * loses the guest is killed, not asked to quit, so that it does not close
 * (and write to) images the other side owns. Writable qcow2 disks are
 * refused: the destination VMM would open them, and write their dirty
 * bit, while the source still runs. */
#ifndef CVIRT_DAEMON_DOMAIN_MIGRATE_H
#define CVIRT_DAEMON_DOMAIN_MIGRATE_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/domain_run.h"

/* virDomainMigrateFlags */
#define MIGRATE_LIVE              (1u << 0)
#define MIGRATE_PEER2PEER         (1u << 1)
#define MIGRATE_TUNNELLED         (1u << 2)
#define MIGRATE_PERSIST_DEST      (1u << 3)
#define MIGRATE_UNDEFINE_SOURCE   (1u << 4)
#define MIGRATE_PAUSED            (1u << 5)
#define MIGRATE_NON_SHARED_DISK   (1u << 6)
#define MIGRATE_NON_SHARED_INC    (1u << 7)
#define MIGRATE_CHANGE_PROTECTION (1u << 8)
#define MIGRATE_UNSAFE            (1u << 9)
#define MIGRATE_OFFLINE           (1u << 10)
#define MIGRATE_COMPRESSED        (1u << 11)
#define MIGRATE_ABORT_ON_ERROR    (1u << 12)
#define MIGRATE_AUTO_CONVERGE     (1u << 13)
#define MIGRATE_POSTCOPY          (1u << 15)

/* The typed parameters the sequence carries (VIR_MIGRATE_PARAM_*); NULL
 * or 0 when absent. Strings point into the decoded call. */
struct migrate_params {
    const char *uri;            /* migrate_uri: tcp:HOST[:PORT] */
    const char *dest_name;      /* destination_name */
    const char *dest_xml;       /* destination_xml */
    const char *persist_xml;    /* persistent_xml */
    const char *listen_address; /* listen_address */
    uint64_t bandwidth;         /* bandwidth, MiB/s (accepted, not enforced) */
};

/* -EINVAL (as libvirt's "unsupported flags") or -ENOTSUP with a message
 * naming what is not supported. */
int migrate_check_flags(unsigned flags, struct err *e);

/* Source. Begin: checks that d can go and returns the XML the destination
 * starts from (malloc'd). */
int domain_migrate_begin(struct domain_driver *drv, struct domain *d, unsigned flags,
                         char **xml, struct err *e);
/* Perform: sends the guest to uri (tcp:HOST:PORT) and runs done once the
 * transfer has completed (the source VMM then waits, paused) or failed
 * (the source runs on). */
int domain_migrate_perform_async(struct domain_driver *drv, struct domain *d, const char *uri,
                                 unsigned flags, domain_done_fn done, void *opaque,
                                 struct err *e);
/* Confirm: after a success the source VMM goes (shut off, migrated) and,
 * with MIGRATE_UNDEFINE_SOURCE, the definition; cancelled: the guest runs
 * on. done runs once. */
int domain_migrate_confirm_async(struct domain_driver *drv, struct domain *d, unsigned flags,
                                 bool cancelled, domain_done_fn done, void *opaque,
                                 struct err *e);

/* Destination. Prepare: a domain for xml (-EBADMSG when the XML is
 * refused; refused when its name or uuid runs here), its VMM started waiting, listening on a port of
 * 49152-49215; done gets the domain, and *uri_out (malloc'd, set before
 * done runs) the URI the source sends to. */
typedef void (*domain_prepared_fn)(void *opaque, struct domain *d, const char *uri, int rc,
                                   const struct err *e);
int domain_migrate_prepare_async(struct domain_driver *drv, const char *xml, unsigned flags,
                                 const struct migrate_params *p, domain_prepared_fn done,
                                 void *opaque, struct err *e);
/* Finish: waits for the transfer into the domain called name; a complete
 * one runs the guest (paused with MIGRATE_PAUSED) and, with
 * MIGRATE_PERSIST_DEST, defines it (persist_xml or the migrated XML);
 * cancelled or failed: the domain's VMM goes. */
int domain_migrate_finish_async(struct domain_driver *drv, const char *name, unsigned flags,
                                bool cancelled, const char *persist_xml, domain_done_fn done,
                                void *opaque, struct err *e);

/* The port range libvirt's QEMU driver uses for migrations. */
#define MIGRATE_PORT_MIN 49152
#define MIGRATE_PORT_MAX 49215

#endif
