#include "daemon/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/uuid.h"
#include "util/log.h"

/* Definitions are small; anything bigger is not one of ours. */
#define STORE_MAX_XML (4u << 20)

static int mkdir_p(const char *path, mode_t mode, struct err *e)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return err_set(e, ENAMETOOLONG, "%s: path too long", path);
    for (char *p = buf + 1; ; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return err_set_errno(e, errno, "cannot create %s", buf);
        *p = c;
        if (c == '\0')
            break;
    }
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return err_set(e, ENOTDIR, "%s is not a directory", path);
    return 0;
}

static char *join(const char *a, const char *b)
{
    char *s;
    if (asprintf(&s, "%s/%s", a, b) < 0)
        return NULL;
    return s;
}

int store_init(struct store *s, const char *config, const char *run, const char *log,
               const char *state, struct err *e)
{
    memset(s, 0, sizeof(*s));
    s->config_dir = join(config, "qemu");
    s->autostart_dir = join(config, "qemu/autostart");
    s->run_dir = join(run, "qemu");
    s->log_dir = join(log, "qemu");
    s->save_dir = join(state, "qemu/save");
    if (!s->config_dir || !s->autostart_dir || !s->run_dir || !s->log_dir || !s->save_dir) {
        store_fini(s);
        return err_set(e, ENOMEM, "out of memory");
    }
    int r = mkdir_p(s->autostart_dir, 0700, e);
    if (r == 0)
        r = mkdir_p(s->run_dir, 0700, e);
    if (r == 0)
        r = mkdir_p(s->log_dir, 0700, e);
    if (r == 0)
        r = mkdir_p(s->save_dir, 0700, e);
    if (r < 0)
        store_fini(s);
    return r;
}

void store_fini(struct store *s)
{
    free(s->config_dir);
    free(s->autostart_dir);
    free(s->run_dir);
    free(s->log_dir);
    free(s->save_dir);
    memset(s, 0, sizeof(*s));
}

static int fsync_dir(const char *dir, struct err *e)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return err_set_errno(e, errno, "cannot open %s", dir);
    int r = fsync(fd) < 0 ? err_set_errno(e, errno, "cannot sync %s", dir) : 0;
    close(fd);
    return r;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int store_write_atomic(const char *dir, const char *name, const void *data, size_t len,
                       struct err *e)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) ||
        snprintf(tmp, sizeof(tmp), "%s/.%s.tmpXXXXXX", dir, name) >= (int)sizeof(tmp))
        return err_set(e, ENAMETOOLONG, "%s/%s: path too long", dir, name);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return err_set_errno(e, errno, "cannot create a file in %s", dir);
    int r = write_all(fd, data, len);
    if (r < 0)
        err_set_errno(e, -r, "cannot write %s", tmp);
    else if (fsync(fd) < 0)
        r = err_set_errno(e, errno, "cannot sync %s", tmp);
    if (close(fd) < 0 && r == 0)
        r = err_set_errno(e, errno, "cannot write %s", tmp);
    if (r == 0 && rename(tmp, path) < 0)
        r = err_set_errno(e, errno, "cannot rename %s to %s", tmp, path);
    if (r < 0) {
        unlink(tmp);
        return r;
    }
    return fsync_dir(dir, e);
}

int store_read_file(const char *path, size_t max, char **out, size_t *len, struct err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set_errno(e, errno, "cannot open %s", path);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(e, EINVAL, "%s is not a regular file", path);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return err_set(e, EFBIG, "%s is larger than %zu bytes", path, max);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return err_set(e, ENOMEM, "out of memory");
    }
    size_t n = 0;
    while (n < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + n, (size_t)st.st_size - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            int r = err_set_errno(e, errno, "cannot read %s", path);
            free(buf);
            close(fd);
            return r;
        }
        if (k == 0)
            break;     /* it shrank under us: take what is there */
        n += (size_t)k;
    }
    close(fd);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* Names come from clients: refuse anything that could leave the folder. */
static int name_ok(const char *name, struct err *e)
{
    if (!name || !*name || strchr(name, '/') || name[0] == '.')
        return err_set(e, EINVAL, "invalid domain name '%s'", name ? name : "");
    return 0;
}

int store_save_def(const struct store *s, const char *name, const char *xml, struct err *e)
{
    char file[NAME_MAX + 1];
    int r = name_ok(name, e);
    if (r < 0)
        return r;
    if (snprintf(file, sizeof(file), "%s.xml", name) >= (int)sizeof(file))
        return err_set(e, ENAMETOOLONG, "domain name '%s' is too long for a file name", name);
    return store_write_atomic(s->config_dir, file, xml, strlen(xml), e);
}

static int unlink_in(const char *dir, const char *name, const char *suffix, struct err *e)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s%s", dir, name, suffix) >= (int)sizeof(path))
        return err_set(e, ENAMETOOLONG, "%s/%s%s: path too long", dir, name, suffix);
    if (unlink(path) < 0 && errno != ENOENT)
        return err_set_errno(e, errno, "cannot remove %s", path);
    return 0;
}

int store_delete_def(const struct store *s, const char *name, struct err *e)
{
    int r = name_ok(name, e);
    if (r == 0)
        r = unlink_in(s->autostart_dir, name, ".xml", e);
    /* No directory fsync: it costs a journal commit per undefine, and an
     * unlink lost in a crash only brings back a definition the user had
     * deleted, which libvirt accepts too.  Writes keep fsync + rename. */
    if (r == 0)
        r = unlink_in(s->config_dir, name, ".xml", e);
    return r;
}

int store_set_autostart(const struct store *s, const char *name, bool on, struct err *e)
{
    int r = name_ok(name, e);
    if (r < 0)
        return r;
    if (!on) {
        r = unlink_in(s->autostart_dir, name, ".xml", e);
        return r < 0 ? r : fsync_dir(s->autostart_dir, e);
    }
    char link[PATH_MAX], target[PATH_MAX];
    if (snprintf(link, sizeof(link), "%s/%s.xml", s->autostart_dir, name) >= (int)sizeof(link) ||
        snprintf(target, sizeof(target), "%s/%s.xml", s->config_dir, name) >= (int)sizeof(target))
        return err_set(e, ENAMETOOLONG, "domain name '%s' is too long", name);
    /* libvirt links to the absolute path of the definition. */
    if (symlink(target, link) < 0 && errno != EEXIST)
        return err_set_errno(e, errno, "cannot create autostart link %s", link);
    return fsync_dir(s->autostart_dir, e);
}

bool store_get_autostart(const struct store *s, const char *name)
{
    char link[PATH_MAX];
    struct stat st;
    if (snprintf(link, sizeof(link), "%s/%s.xml", s->autostart_dir, name) >= (int)sizeof(link))
        return false;
    return lstat(link, &st) == 0;
}

/* "NAME.suffix" -> NAME in buf; false when the entry does not end so. */
static bool strip_suffix(const char *file, const char *suffix, char *buf, size_t len)
{
    size_t fl = strlen(file), sl = strlen(suffix);
    if (file[0] == '.' || fl <= sl || strcmp(file + fl - sl, suffix) != 0 || fl - sl >= len)
        return false;
    memcpy(buf, file, fl - sl);
    buf[fl - sl] = '\0';
    return true;
}

int store_load_defs(const struct store *s, store_def_cb cb, void *opaque)
{
    DIR *dir = opendir(s->config_dir);
    if (!dir) {
        log_error("cannot read %s: %s", s->config_dir, strerror(errno));
        return 0;
    }
    int accepted = 0;
    struct dirent *de;
    while ((de = readdir(dir))) {
        char name[NAME_MAX + 1], path[PATH_MAX];
        if (!strip_suffix(de->d_name, ".xml", name, sizeof(name)))
            continue;
        if (snprintf(path, sizeof(path), "%s/%s", s->config_dir, de->d_name) >= (int)sizeof(path))
            continue;
        struct err e = { 0 };
        char *xml = NULL;
        size_t len = 0;
        int r = store_read_file(path, STORE_MAX_XML, &xml, &len, &e);
        if (r == 0)
            r = cb(opaque, name, path, xml, len, store_get_autostart(s, name), &e);
        if (r < 0)
            log_error("%s: %s; skipped (the file is kept)", path,
                      e.msg[0] ? e.msg : strerror(-r));
        else
            accepted++;
        free(xml);
    }
    closedir(dir);
    return accepted;
}

int store_save_run(const struct store *s, const char *name, pid_t pid, const char *live_xml,
                   struct err *e)
{
    char file[NAME_MAX + 1], num[32];
    int r = name_ok(name, e);
    if (r < 0)
        return r;
    if (snprintf(file, sizeof(file), "%s.xml", name) >= (int)sizeof(file))
        return err_set(e, ENAMETOOLONG, "domain name '%s' is too long", name);
    /* The definition first: a pid file always has its XML beside it. */
    r = store_write_atomic(s->run_dir, file, live_xml, strlen(live_xml), e);
    if (r < 0)
        return r;
    snprintf(file, sizeof(file), "%s.pid", name);
    int n = snprintf(num, sizeof(num), "%d\n", (int)pid);
    return store_write_atomic(s->run_dir, file, num, (size_t)n, e);
}

static pid_t parse_pid(const char *text)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    while (*end == '\n' || *end == ' ')
        end++;
    if (errno || end == text || *end || v <= 1 || v > INT32_MAX)
        return 0;
    return (pid_t)v;
}

void store_load_runs(const struct store *s, store_run_cb cb, void *opaque)
{
    DIR *dir = opendir(s->run_dir);
    if (!dir)
        return;
    struct dirent *de;
    while ((de = readdir(dir))) {
        char name[NAME_MAX + 1], path[PATH_MAX];
        if (!strip_suffix(de->d_name, ".pid", name, sizeof(name)))
            continue;
        struct err e = { 0 };
        char *text = NULL, *xml = NULL;
        size_t len = 0, xlen = 0;
        snprintf(path, sizeof(path), "%s/%s", s->run_dir, de->d_name);
        pid_t pid = 0;
        if (store_read_file(path, 64, &text, &len, &e) == 0)
            pid = parse_pid(text);
        if (!pid)
            log_error("%s: not a pid file", path);
        snprintf(path, sizeof(path), "%s/%s.xml", s->run_dir, name);
        err_clear(&e);
        if (store_read_file(path, STORE_MAX_XML, &xml, &xlen, &e) < 0)
            log_error("%s", e.msg);
        cb(opaque, name, pid, xml, xlen);
        free(text);
        free(xml);
    }
    closedir(dir);
}

void store_clear_run(const struct store *s, const char *name)
{
    struct err e = { 0 };
    unlink_in(s->run_dir, name, ".pid", &e);
    unlink_in(s->run_dir, name, ".xml", &e);
    unlink_in(s->run_dir, name, ".sock", &e);
}

int store_sock_path(const struct store *s, const char *name, const uint8_t uuid[16],
                    char *buf, size_t len)
{
    size_t max = sizeof(((struct sockaddr_un *)0)->sun_path);
    if (len > max)
        len = max;
    int n = snprintf(buf, len, "%s/%s.sock", s->run_dir, name);
    if (n >= 0 && (size_t)n < len)
        return 0;
    /* A long name does not fit in a socket address; the uuid is short. */
    char us[UUID_STRING_LEN];
    uuid_format(uuid, us);
    n = snprintf(buf, len, "%s/%s.sock", s->run_dir, us);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int store_log_path(const struct store *s, const char *name, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%s.log", s->log_dir, name);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int store_managed_save_path(const struct store *s, const char *name, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%s.save", s->save_dir, name);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

bool store_has_managed_save(const struct store *s, const char *name)
{
    char path[PATH_MAX];
    struct stat st;
    return store_managed_save_path(s, name, path, sizeof(path)) == 0 && stat(path, &st) == 0 &&
           S_ISREG(st.st_mode);
}
