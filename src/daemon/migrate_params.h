/* The typed parameters of libvirt's migration calls (virTypedParameter
 * arrays on the wire) decoded into struct migrate_params. */
#ifndef CVIRT_DAEMON_MIGRATE_PARAMS_H
#define CVIRT_DAEMON_MIGRATE_PARAMS_H

#include "cvirt_remote.h"
#include "daemon/domain_migrate.h"

/* Fills out (strings point into v). A parameter this daemon does not know,
 * one with the wrong type, or one given twice is refused with -EINVAL and
 * libvirt's wording; graphics_uri is accepted and ignored. */
int migrate_params_parse(const remote_typed_param *v, unsigned n, struct migrate_params *out,
                         struct err *e);

#endif
