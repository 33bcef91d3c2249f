/* Storage volumes: the files of a pool's folder, their XML, creation
 * (raw, or qcow2 through libcvirt-img) and removal. */
#include "daemon/storage.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/tree.h>

#include "img/blk.h"
#include "util/log.h"

/* ---- volume XML ---- */

void storage_vol_def_clear(struct storage_vol_def *d)
{
    free(d->name);
    free(d->format);
    memset(d, 0, sizeof(*d));
}

/* A size element: a number and libvirt's unit attribute (bytes by
 * default; k/K/KiB and up are powers of 1024, KB and up powers of 1000). */
static int parse_size(xmlNode *n, const char *what, uint64_t *out, struct err *e)
{
    static const struct { const char *unit; uint64_t mul; } units[] = {
        { "b", 1 }, { "bytes", 1 },
        { "k", 1ull << 10 }, { "KiB", 1ull << 10 }, { "KB", 1000ull },
        { "M", 1ull << 20 }, { "MiB", 1ull << 20 }, { "MB", 1000000ull },
        { "G", 1ull << 30 }, { "GiB", 1ull << 30 }, { "GB", 1000000000ull },
        { "T", 1ull << 40 }, { "TiB", 1ull << 40 }, { "TB", 1000000000000ull },
        { "P", 1ull << 50 }, { "PiB", 1ull << 50 }, { "PB", 1000000000000000ull },
    };
    char *t = storage_xml_text(n);
    xmlChar *u = xmlGetNoNsProp(n, (const xmlChar *)"unit");
    uint64_t mul = 0;
    int r = 0;
    if (!u) {
        mul = 1;
    } else {
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && !mul; i++)
            if (!strcmp((const char *)u, units[i].unit) ||
                (units[i].unit[1] == '\0' && u[0] && u[1] == '\0' &&
                 tolower((unsigned char)u[0]) == tolower((unsigned char)units[i].unit[0])))
                mul = units[i].mul;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long v = t && isdigit((unsigned char)t[0]) ? strtoull(t, &end, 10) : 0;
    if (!mul)
        r = err_set(e, EINVAL, "unknown unit '%s' of the volume %s", (const char *)u, what);
    else if (!t || !end || *end || errno)
        r = err_set(e, EINVAL, "malformed volume %s '%s'", what, t ? t : "");
    else if (v > UINT64_MAX / mul)
        r = err_set(e, ERANGE, "volume %s %s%s is too large", what, t, u ? (char *)u : "");
    else
        *out = v * mul;
    free(t);
    xmlFree(u);
    return r;
}

static int vol_from_doc(xmlNode *root, struct storage_vol_def *d, struct err *e)
{
    d->name = storage_xml_text(storage_xml_child(root, "name"));
    if (!d->name || !*d->name)
        return err_set(e, EINVAL, "missing volume name element");
    if (!storage_name_valid(d->name))
        return err_set(e, EINVAL, "volume name '%s' cannot contain '/'", d->name);
    xmlNode *cap = storage_xml_child(root, "capacity");
    if (!cap)
        return err_set(e, EINVAL, "missing capacity element");
    int r = parse_size(cap, "capacity", &d->capacity, e);
    xmlNode *alloc = storage_xml_child(root, "allocation");
    if (r == 0 && alloc) {
        d->allocation_set = true;
        r = parse_size(alloc, "allocation", &d->allocation, e);
    }
    xmlNode *fmt = storage_xml_child(storage_xml_child(root, "target"), "format");
    if (r == 0 && fmt) {
        xmlChar *t = xmlGetNoNsProp(fmt, (const xmlChar *)"type");
        if (t) {
            d->format = strdup((const char *)t);
            xmlFree(t);
            if (!d->format)
                return err_set(e, ENOMEM, "out of memory");
        }
    }
    if (r == 0 && d->format && strcmp(d->format, "raw") && strcmp(d->format, "qcow2"))
        r = err_set(e, ENOTSUP, "unsupported volume format '%s' (raw or qcow2)", d->format);
    return r;
}

int storage_vol_parse(const char *xml, struct storage_vol_def *out, struct err *e)
{
    memset(out, 0, sizeof(*out));
    xmlDoc *doc = storage_xml_read(xml, "volume", e);
    if (!doc)
        return -e->code;
    int r = vol_from_doc(xmlDocGetRootElement(doc), out, e);
    xmlFreeDoc(doc);
    if (r < 0)
        storage_vol_def_clear(out);
    return r;
}

char *storage_vol_format(const struct storage_vol *v)
{
    char *name = storage_xml_escape(v->name), *path = storage_xml_escape(v->path), *out = NULL;
    if (name && path &&
        asprintf(&out, "<volume type='file'>\n  <name>%s</name>\n  <key>%s</key>\n"
                 "  <capacity unit='bytes'>%" PRIu64 "</capacity>\n"
                 "  <allocation unit='bytes'>%" PRIu64 "</allocation>\n"
                 "  <physical unit='bytes'>%" PRIu64 "</physical>\n"
                 "  <target>\n    <path>%s</path>\n    <format type='%s'/>\n  </target>\n"
                 "</volume>\n", name, path, v->capacity, v->allocation, v->physical,
                 path, v->format) < 0)
        out = NULL;
    free(name);
    free(path);
    return out;
}

/* ---- volumes ---- */

void storage_vol_clear(struct storage_vol *v)
{
    free(v->path);
    v->path = NULL;
}

void storage_vol_list_free(struct storage_vol *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        storage_vol_clear(&v[i]);
    free(v);
}

/* Fills v from the file at v->path: its format and virtual size come from
 * the image's own header, read as hostile input by libcvirt-img. */
static int vol_stat(struct storage_vol *v, struct err *e)
{
    struct stat st;
    if (stat(v->path, &st) < 0)
        return err_set_errno(e, errno, "cannot stat file '%s'", v->path);
    if (!S_ISREG(st.st_mode))
        return err_set(e, ENOENT, "'%s' is not a regular file", v->path);
    struct blk *b;
    int r = blk_open(&b, v->path, NULL, BLK_O_NO_BACKING, NULL, e);
    if (r < 0)
        return r;
    v->format = b->drv == &blk_qcow2_driver ? "qcow2" : "raw";
    v->capacity = b->size;
    blk_close(b);
    v->physical = (uint64_t)st.st_size;
    v->allocation = (uint64_t)st.st_blocks * 512;
    return 0;
}

int storage_vol_get(const char *dir, const char *name, struct storage_vol *out,
                    struct err *e)
{
    memset(out, 0, sizeof(*out));
    if (!storage_name_valid(name))
        return err_set(e, EINVAL, "invalid volume name '%s'", name);
    snprintf(out->name, sizeof(out->name), "%s", name);
    if (asprintf(&out->path, "%s/%s", dir, name) < 0) {
        out->path = NULL;
        return err_set(e, ENOMEM, "out of memory");
    }
    int r = vol_stat(out, e);
    if (r < 0)
        storage_vol_clear(out);
    return r;
}

static int vol_cmp(const void *a, const void *b)
{
    return strcmp(((const struct storage_vol *)a)->name, ((const struct storage_vol *)b)->name);
}

int storage_vol_list(const char *dir, struct storage_vol **out, size_t *n, struct err *e)
{
    DIR *dh = opendir(dir);
    if (!dh)
        return err_set_errno(e, errno, "cannot open directory '%s'", dir);
    struct storage_vol *v = NULL;
    size_t count = 0, cap = 0;
    int r = 0;
    struct dirent *de;
    while ((de = readdir(dh)) != NULL) {
        if (!storage_name_valid(de->d_name))
            continue;
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct storage_vol *nv = realloc(v, ncap * sizeof(*nv));
            if (!nv) {
                r = err_set(e, ENOMEM, "out of memory");
                break;
            }
            v = nv;
            cap = ncap;
        }
        struct err ve = {0};
        if (storage_vol_get(dir, de->d_name, &v[count], &ve) == 0)
            count++;
        else if (ve.code != ENOENT)
            log_info("%s/%s left out of the volumes: %s", dir, de->d_name, ve.msg);
    }
    closedir(dh);
    if (r < 0) {
        storage_vol_list_free(v, count);
        return r;
    }
    if (count)
        qsort(v, count, sizeof(*v), vol_cmp);
    *out = v;
    *n = count;
    return 0;
}

struct storage_pool *storage_pool_of_path(const struct storage_driver *d, const char *path,
                                          const char **name)
{
    const char *slash = strrchr(path, '/');
    if (!slash || !storage_name_valid(slash + 1))
        return NULL;
    for (size_t i = 0; i < d->npools; i++) {
        struct storage_pool *p = d->pools[i];
        size_t len = strlen(p->path);
        /* The root folder as a pool: its files are "/NAME". */
        size_t dirlen = (size_t)(slash - path);
        bool match = len == 1 ? dirlen == 0 : dirlen == len && !strncmp(path, p->path, len);
        if (p->active && match) {
            *name = slash + 1;
            return p;
        }
    }
    return NULL;
}

static int create_raw(int fd, const char *path, const struct storage_vol_def *def,
                      struct err *e)
{
    if (ftruncate(fd, (off_t)def->capacity) < 0)
        return err_set_errno(e, errno, "cannot resize '%s'", path);
    /* Fully allocated only when asked for all of it, as libvirt does. */
    if (def->allocation_set && def->allocation >= def->capacity && def->capacity) {
        int r = posix_fallocate(fd, 0, (off_t)def->capacity);
        if (r)
            return err_set_errno(e, r, "cannot allocate %" PRIu64 " bytes for '%s'",
                                 def->capacity, path);
    }
    return 0;
}

int storage_vol_create(const char *dir, const struct storage_vol_def *def,
                       struct storage_vol *out, struct err *e)
{
    if (!storage_name_valid(def->name))
        return err_set(e, EINVAL, "invalid volume name '%s'", def->name);
    if (def->prealloc && !(def->format && !strcmp(def->format, "qcow2")))
        return err_set(e, EINVAL, "metadata preallocation only available with qcow2");
    if (def->capacity > (uint64_t)INT64_MAX)
        return err_set(e, ERANGE, "volume capacity %" PRIu64 " is too large", def->capacity);
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", dir, def->name) >= (int)sizeof(path))
        return err_set(e, ENAMETOOLONG, "%s/%s: path too long", dir, def->name);
    /* O_EXCL claims the name; the image is then written over the empty file. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return err_set(e, EEXIST, "storage volume name '%s' already in use.", def->name);
        return err_set_errno(e, errno, "cannot create volume '%s'", path);
    }
    int r;
    if (def->format && !strcmp(def->format, "qcow2")) {
        close(fd);
        fd = -1;
        struct blk_create_opts o = { .size = def->capacity, .size_set = true };
        if (def->prealloc)
            o.prealloc = def->allocation_set && def->allocation >= def->capacity
                         ? BLK_PREALLOC_FALLOC : BLK_PREALLOC_METADATA;
        r = blk_create("qcow2", path, &o, e);
    } else {
        r = create_raw(fd, path, def, e);
    }
    if (fd >= 0 && close(fd) < 0 && r == 0)
        r = err_set_errno(e, errno, "cannot write '%s'", path);
    if (r == 0)
        r = storage_vol_get(dir, def->name, out, e);
    if (r < 0)
        unlink(path);
    return r;
}

/* Copies what a guest would read from src into dst, a MiB at a time.
 * Ranges src reports as zeros or unallocated (with nothing below) and
 * chunks that read as zeros are not written, so the copy stays sparse. */
static int copy_image(struct blk *src, struct blk *dst, struct err *e)
{
    const size_t chunk = 1u << 20;
    uint8_t *buf = malloc(chunk);
    if (!buf)
        return err_set(e, ENOMEM, "out of memory");
    int r = 0;
    uint64_t off = 0;
    while (off < src->size && r == 0) {
        size_t n = src->size - off < chunk ? (size_t)(src->size - off) : chunk;
        struct blk_status st;
        struct err se = {0};
        if (blk_block_status(src, off, n, &st, &se) == 0 && st.len &&
            (st.kind == BLK_ST_ZERO || (st.kind == BLK_ST_UNALLOC && !src->backing))) {
            off += st.len < n ? st.len : n;
            continue;
        }
        r = blk_pread(src, buf, n, off, e);
        if (r == 0 && !blk_is_zero(buf, n))
            r = blk_pwrite(dst, buf, n, off, e);
        off += n;
    }
    if (r == 0)
        r = blk_flush(dst, e);
    free(buf);
    return r;
}

int storage_vol_create_from(const char *dir, const struct storage_vol_def *def,
                            const char *src, struct storage_vol *out, struct err *e)
{
    struct blk *in, *copy;
    int r = blk_open(&in, src, NULL, 0, NULL, e);
    if (r < 0)
        return r;
    struct storage_vol_def d = *def;
    if (d.capacity < in->size)
        d.capacity = in->size;
    struct storage_vol made;
    r = storage_vol_create(dir, &d, &made, e);
    if (r < 0) {
        blk_close(in);
        return r;
    }
    r = blk_open(&copy, made.path, made.format, BLK_O_RDWR, NULL, e);
    if (r == 0) {
        r = copy_image(in, copy, e);
        blk_close(copy);
    }
    blk_close(in);
    if (r == 0)
        r = storage_vol_get(dir, made.name, out, e);
    if (r < 0)
        unlink(made.path);
    storage_vol_clear(&made);
    return r;
}

int storage_vol_delete(const char *dir, const char *name, struct err *e)
{
    if (!storage_name_valid(name))
        return err_set(e, EINVAL, "invalid volume name '%s'", name);
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
        return err_set(e, ENAMETOOLONG, "%s/%s: path too long", dir, name);
    struct stat st;
    if (lstat(path, &st) < 0)
        return err_set_errno(e, errno, "cannot remove '%s'", path);
    if (!S_ISREG(st.st_mode))
        return err_set(e, EINVAL, "'%s' is not a volume file", path);
    if (unlink(path) < 0)
        return err_set_errno(e, errno, "cannot remove '%s'", path);
    return 0;
}
