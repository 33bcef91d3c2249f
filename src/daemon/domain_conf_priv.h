/* Shared between the parser and the formatter of domain XML: the names of
 * enum values as they appear in the XML. */
#ifndef CVIRT_DAEMON_DOMAIN_CONF_PRIV_H
#define CVIRT_DAEMON_DOMAIN_CONF_PRIV_H

#include "daemon/domain_conf.h"

#define DOMAIN_ACTION_COUNT 6
extern const char *const domain_action_names[DOMAIN_ACTION_COUNT];
extern const char *const domain_disk_format_names[2];
extern const char *const domain_cache_names[3];     /* [DEFAULT] is NULL */
extern const char *const domain_net_type_names[3];

/* Index of s in names[0..n), or -1. */
int domain_enum_lookup(const char *const *names, int n, const char *s);

/* Frees what a disk owns, not the disk itself. */
void domain_disk_clear(struct domain_disk *disk);
void domain_backing_free(struct domain_backing *b);

/* Parse flags understood only inside the module: a disk fragment given to
 * attach-device is parsed as an inactive definition's disk. */
#define DOMAIN_LIVE_OK(flags) (!((flags) & DOMAIN_PARSE_INACTIVE))

#endif
