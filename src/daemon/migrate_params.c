/* Migration typed parameters (VIR_MIGRATE_PARAM_*): the names and types
 * libvirt's QEMU driver accepts for what this daemon does. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "daemon/migrate_params.h"

enum pkind { P_STR, P_ULL };

static const struct {
    const char *name;
    enum pkind kind;
    size_t off;                 /* in struct migrate_params; SIZE_MAX: ignored */
} known[] = {
    { "migrate_uri", P_STR, offsetof(struct migrate_params, uri) },
    { "destination_name", P_STR, offsetof(struct migrate_params, dest_name) },
    { "destination_xml", P_STR, offsetof(struct migrate_params, dest_xml) },
    { "persistent_xml", P_STR, offsetof(struct migrate_params, persist_xml) },
    { "listen_address", P_STR, offsetof(struct migrate_params, listen_address) },
    { "bandwidth", P_ULL, offsetof(struct migrate_params, bandwidth) },
    { "graphics_uri", P_STR, (size_t)-1 },
};

int migrate_params_parse(const remote_typed_param *v, unsigned n, struct migrate_params *out,
                         struct err *e)
{
    unsigned seen = 0;
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < n; i++) {
        const char *name = v[i].field ? v[i].field : "";
        size_t k = 0;
        while (k < sizeof(known) / sizeof(known[0]) && strcmp(known[k].name, name))
            k++;
        if (k == sizeof(known) / sizeof(known[0]))
            return err_set(e, EINVAL, "parameter '%s' not supported", name);
        int want = known[k].kind == P_STR ? REMOTE_TYPED_PARAM_STRING : REMOTE_TYPED_PARAM_ULLONG;
        if (v[i].value.type != want)
            return err_set(e, EINVAL, "invalid type '%d' for parameter '%s', expected '%s'",
                           v[i].value.type, name, known[k].kind == P_STR ? "string" : "ullong");
        if (seen & (1u << k))
            return err_set(e, EINVAL, "parameter '%s' occurs multiple times", name);
        seen |= 1u << k;
        if (known[k].off == (size_t)-1)
            continue;
        char *dst = (char *)out + known[k].off;
        if (known[k].kind == P_STR) {
            const char *s = v[i].value.remote_typed_param_value_u.s;
            memcpy(dst, &s, sizeof(s));
        } else {
            uint64_t u = v[i].value.remote_typed_param_value_u.ul;
            memcpy(dst, &u, sizeof(u));
        }
    }
    return 0;
}
