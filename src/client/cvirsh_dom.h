/* Helpers the domain commands share. */
#ifndef CVIRT_CLIENT_CVIRSH_DOM_H
#define CVIRT_CLIENT_CVIRSH_DOM_H

#include "client/cvirsh.h"

enum {
    CVIRSH_BY_ID = 1,
    CVIRSH_BY_UUID = 2,
    CVIRSH_BY_NAME = 4,
    CVIRSH_BY_ANY = 7,
};

/* Tries an id, then a UUID, then a name (those allowed by `by`), and
 * prints virsh's "failed to get domain" when none matches. */
bool cvirsh_lookup_by(struct cvirsh *ctl, const char *n, unsigned by,
                      remote_nonnull_domain *dom);
bool cvirsh_get_state(struct cvirsh *ctl, const remote_nonnull_domain *dom,
                      int *state, int *reason, struct err *e);
/* DOMAIN_GET_XML_DESC; *xml is the caller's to free. */
bool cvirsh_get_xml(struct cvirsh *ctl, const remote_nonnull_domain *dom,
                    unsigned flags, char **xml, struct err *e);
int cvirsh_uuid_parse(const char *s, unsigned char uuid[16]);
void cvirsh_uuid_format(const unsigned char *u, char out[37]);

#endif
