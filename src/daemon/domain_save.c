/* virsh save and restore. The file is cvirt-vmm's snapshot (written by its
 * QMP `migrate file:`, read back by `--restore`) followed by a trailer the
 * VMM ignores: the domain XML, then a footer
 *
 *   "CVIRTDOM"  8 bytes
 *   u64 LE      length of the XML
 *
 * so one file carries both the machine and the definition, as libvirt's
 * save image does. The file comes from a client: the footer is checked
 * against the file size before anything is read. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "daemon/domain_conf.h"
#include "daemon/domain_run_priv.h"
#include "daemon/vmm_client.h"
#include "util/le.h"
#include "util/log.h"

#define SAVE_MAGIC "CVIRTDOM"
#define SAVE_FOOTER 16u
#define SAVE_XML_MAX (4u << 20)
/* cvirt-vmm's snapshot header: a save file is at least that big. */
#define SAVE_VMM_MIN 4096u
/* Writing guest memory to disk: seconds per GiB at worst. */
#define SAVE_TIMEOUT_MS 120000

static int write_all(int fd, const void *p, size_t len)
{
    const uint8_t *b = p;
    while (len) {
        ssize_t n = write(fd, b, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        b += n;
        len -= (size_t)n;
    }
    return 0;
}

int domain_save_append_xml(const char *path, const char *xml, struct err *e)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0)
        return err_set_errno(e, errno, "cannot open %s", path);
    uint8_t foot[SAVE_FOOTER];
    size_t len = strlen(xml);
    memcpy(foot, SAVE_MAGIC, 8);
    le64_put(foot + 8, len);
    int r = write_all(fd, xml, len);
    if (r == 0)
        r = write_all(fd, foot, sizeof(foot));
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    close(fd);
    return r < 0 ? err_set_errno(e, -r, "cannot write %s", path) : 0;
}

int domain_save(struct domain_driver *drv, struct domain *d, const char *path,
                struct err *e)
{
    int r = domain_op_check(d, DOMAIN_OP_LIVE_CHANGE, e);
    if (r < 0)
        return r;
    if (path[0] != '/')
        return err_set(e, EINVAL, "save path '%s' is not absolute", path);
    if (!d->vmm)
        return err_set(e, EIO, "the VMM of domain '%s' does not answer", d->name);
    char *xml = domain_def_format(d->live, DOMAIN_FORMAT_INACTIVE | DOMAIN_FORMAT_SECURE);
    if (!xml)
        return err_set(e, ENOMEM, "out of memory");
    char *uri;
    if (asprintf(&uri, "file:%s", path) < 0) {
        free(xml);
        return err_set(e, ENOMEM, "out of memory");
    }
    struct json_object *args = json_object_new_object();
    json_object_object_add(args, "uri", json_object_new_string(uri));
    free(uri);
    bool was_running = d->state == DOMAIN_RUNNING;
    r = vmm_client_execute(d->vmm, "migrate", args, SAVE_TIMEOUT_MS, NULL, e);
    if (r == 0)
        r = domain_save_append_xml(path, xml, e);
    free(xml);
    if (r < 0) {
        /* The VMM stays paused after a save: a failed one resumes it. */
        struct err ce = { 0 };
        if (was_running && d->vmm)
            vmm_client_execute(d->vmm, "cont", NULL, VMM_CLIENT_TIMEOUT_MS, NULL, &ce);
        unlink(path);
        return r;
    }
    d->saving = true;
    r = domain_stop_vmm(drv, d, e);
    if (r == 0)
        log_info("domain saved to %s", path);
    return r;
}

/* The XML of a save file (malloc'd). */
static int read_xml(const char *path, char **out, struct err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set_errno(e, errno, "cannot open %s", path);
    struct stat st;
    uint8_t foot[SAVE_FOOTER];
    int r = 0;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size < SAVE_VMM_MIN + SAVE_FOOTER)
        r = err_set(e, EINVAL, "%s is not a cvirt save file (too small)", path);
    else if (pread(fd, foot, sizeof(foot), st.st_size - SAVE_FOOTER) != (ssize_t)sizeof(foot) ||
             memcmp(foot, SAVE_MAGIC, 8) != 0)
        r = err_set(e, EINVAL, "%s is not a cvirt save file (no domain XML at its end)", path);
    uint64_t len = r == 0 ? le64_get(foot + 8) : 0;
    if (r == 0 && (len == 0 || len > SAVE_XML_MAX ||
                   len > (uint64_t)st.st_size - SAVE_VMM_MIN - SAVE_FOOTER))
        r = err_set(e, EINVAL, "%s: the domain XML length %llu does not fit the file", path,
                    (unsigned long long)len);
    char *xml = r == 0 ? malloc(len + 1) : NULL;
    if (r == 0 && !xml)
        r = err_set(e, ENOMEM, "out of memory");
    if (r == 0 && pread(fd, xml, len, st.st_size - SAVE_FOOTER - (off_t)len) != (ssize_t)len)
        r = err_set_errno(e, errno ? errno : EIO, "cannot read %s", path);
    close(fd);
    if (r < 0) {
        free(xml);
        return r;
    }
    xml[len] = '\0';
    *out = xml;
    return 0;
}

int domain_restore_lookup(struct domain_driver *drv, const char *path, struct domain **out,
                          struct err *e)
{
    if (path[0] != '/')
        return err_set(e, EINVAL, "restore path '%s' is not absolute", path);
    char *xml = NULL;
    int r = read_xml(path, &xml, e);
    if (r < 0)
        return r;
    struct domain_def *def;
    r = domain_def_parse(xml, strlen(xml), 0, &def, e);
    free(xml);
    if (r < 0) {
        err_prefix(e, "%s: ", path);
        return r;
    }
    r = domain_add_transient(&drv->table, def, out, e);
    if (r < 0)
        domain_def_free(def);
    return r;
}

int domain_restore(struct domain_driver *drv, const char *path, struct domain **out,
                   struct err *e)
{
    struct domain *d;
    int r = domain_restore_lookup(drv, path, &d, e);
    if (r < 0)
        return r;
    /* A start that fails drops d when it is transient. */
    r = domain_start_from(drv, d, path, e);
    if (r == 0 && out)
        *out = d;
    return r;
}

/* ---- managed save: a save image the daemon keeps for the next start ---- */

int domain_managed_save(struct domain_driver *drv, struct domain *d, struct err *e)
{
    char path[PATH_MAX];
    if (!d->def)
        return err_set(e, EBUSY, "cannot do managed save for transient domain");
    if (store_managed_save_path(&drv->store, d->name, path, sizeof(path)) < 0)
        return err_set(e, ENAMETOOLONG, "domain name '%s' is too long", d->name);
    int r = domain_save(drv, d, path, e);
    if (r == 0)
        d->managed_save = true;
    return r;
}

int domain_managed_save_remove(struct domain_driver *drv, struct domain *d, struct err *e)
{
    char path[PATH_MAX];
    if (store_managed_save_path(&drv->store, d->name, path, sizeof(path)) == 0 &&
        unlink(path) < 0 && errno != ENOENT)
        return err_set_errno(e, errno, "Failed to remove managed save file '%s'", path);
    d->managed_save = false;
    return 0;
}

/* A start of a domain with a managed save image restores it, with the
 * definition saved in the image, and drops the image once it runs. */
int domain_managed_prepare(struct domain_driver *drv, struct domain *d, char *path,
                           size_t len, struct err *e)
{
    char *xml = NULL;
    struct domain_def *def;
    int r = domain_op_check(d, DOMAIN_OP_START, e);
    if (r == 0 && store_managed_save_path(&drv->store, d->name, path, len) < 0)
        r = err_set(e, ENAMETOOLONG, "domain name '%s' is too long", d->name);
    if (r == 0)
        r = read_xml(path, &xml, e);
    if (r == 0) {
        r = domain_def_parse(xml, strlen(xml), 0, &def, e);
        free(xml);
    }
    if (r == 0 && memcmp(def->uuid, d->uuid, 16) != 0) {
        domain_def_free(def);
        r = err_set(e, EINVAL, "%s belongs to another domain", path);
    }
    if (r < 0)
        return r;
    domain_def_free(d->live);
    d->live = def;
    return 0;
}

int domain_start_managed(struct domain_driver *drv, struct domain *d, struct err *e)
{
    char path[PATH_MAX];
    int r = domain_managed_prepare(drv, d, path, sizeof(path), e);
    if (r < 0)
        return r;
    r = domain_start_from(drv, d, path, e);
    if (r == 0) {
        /* The restored VM maps the image's memory: unlinking keeps it. */
        unlink(path);
        d->managed_save = false;
    }
    return r;
}
