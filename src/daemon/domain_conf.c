#include <errno.h>
#include <stdlib.h>

#include "daemon/domain_conf.h"

int domain_def_parse(const char *xml, size_t len, unsigned flags,
                     struct domain_def **out, struct err *e)
{
    return err_set(e, ENOSYS, "domain XML parsing is not written yet");
}

char *domain_def_format(const struct domain_def *d, unsigned flags) { return NULL; }
void domain_def_free(struct domain_def *d) { free(d); }
struct domain_def *domain_def_copy(const struct domain_def *d) { return NULL; }
int domain_def_vmm_argv(const struct domain_def *d, const struct domain_vmm_env *env,
                        char ***argv, struct err *e)
{
    return err_set(e, ENOSYS, "not written yet");
}
void domain_argv_free(char **argv) { free(argv); }
int domain_disk_parse(const char *xml, size_t len, struct domain_disk **out, struct err *e)
{
    return err_set(e, ENOSYS, "not written yet");
}
void domain_disk_free(struct domain_disk *disk) { free(disk); }
int domain_def_add_disk(struct domain_def *d, struct domain_disk *disk, struct err *e)
{
    return err_set(e, ENOSYS, "not written yet");
}
int domain_def_remove_disk(struct domain_def *d, const char *match,
                           struct domain_disk **out, struct err *e)
{
    return err_set(e, ENOSYS, "not written yet");
}
const struct domain_disk *domain_def_find_disk(const struct domain_def *d, const char *match)
{
    return NULL;
}
int domain_name_check(const char *name, struct err *e) { return 0; }
void domain_mac_generate(uint8_t mac[6]) { }
int domain_mac_parse(const char *s, uint8_t mac[6]) { return -EINVAL; }
void domain_mac_format(const uint8_t mac[6], char buf[18]) { buf[0] = 0; }
int domain_memory_parse(const char *value, const char *unit, uint64_t *kib) { return -EINVAL; }
