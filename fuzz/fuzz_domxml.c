/* Arbitrary bytes as domain XML and as device fragments: errors are fine;
 * a crash, a leak, or an accepted definition whose formatted XML does not
 * parse back to the same text is a bug. Seeds: the .xml files in
 * tests/data/domxml. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/domain_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_fixed_point(const struct domain_def *d, unsigned flags)
{
    char *x1 = domain_def_format(d, flags);
    if (!x1)
        return;
    struct domain_def *d2 = NULL;
    struct err e = {0};
    if (domain_def_parse(x1, strlen(x1), 0, &d2, &e) < 0) {
        fprintf(stderr, "formatted XML does not parse: %s\n%s", e.msg, x1);
        abort();
    }
    char *x2 = domain_def_format(d2, flags);
    if (x2 && strcmp(x1, x2)) {
        fprintf(stderr, "format is not a fixed point:\n%s---\n%s", x1, x2);
        abort();
    }
    free(x1);
    free(x2);
    domain_def_free(d2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *xml = (const char *)data;
    struct domain_def *d = NULL;
    struct err e = {0};
    if (domain_def_parse(xml, size, 0, &d, &e) == 0) {
        check_fixed_point(d, 0);
        check_fixed_point(d, DOMAIN_FORMAT_INACTIVE);
        struct domain_def *c = domain_def_copy(d);
        char **argv = NULL;
        static const char *const taps[] = { "t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7" };
        struct domain_vmm_env env = { .tap_names = taps, .ntap_names = 8 };
        err_clear(&e);
        if (domain_def_vmm_argv(c ? c : d, &env, &argv, &e) == 0)
            domain_argv_free(argv);
        if (c && c->ndisks) {
            struct domain_disk *k = NULL;
            err_clear(&e);
            domain_def_remove_disk(c, c->disks[0].target_dev, &k, &e);
            domain_disk_free(k);
        }
        domain_def_free(c);
        domain_def_free(d);
    }
    const char *kind = domain_device_kind(xml, size);
    struct domain_disk *disk = NULL;
    err_clear(&e);
    if (domain_disk_parse(xml, size, &disk, &e) == 0) {
        if (!kind || strcmp(kind, "disk"))
            abort();
        domain_disk_free(disk);
    }
    struct domain_net *net = NULL;
    err_clear(&e);
    if (domain_net_parse(xml, size, &net, &e) == 0) {
        if (!kind || strcmp(kind, "interface"))
            abort();
        domain_net_free(net);
    }
    return 0;
}
