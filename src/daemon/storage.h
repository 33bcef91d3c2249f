/* Storage pools of type "dir" and their volumes, kept as libvirt's storage
 * driver keeps them:
 *
 *   CONFIG/storage/NAME.xml              persistent pool definitions
 *   CONFIG/storage/autostart/NAME.xml    symlinks to ../NAME.xml
 *   RUN/storage/NAME.xml                 the pools that are running, so a
 *                                        restarted daemon starts them again
 *
 * A pool is a folder; its volumes are the regular files in it, raw or
 * qcow2 as libcvirt-img's probe reads them. Nothing about volumes is kept
 * apart from the files: a listing is always what the folder holds. A
 * volume's key is its path, as for libvirt's dir pools. */
#ifndef CVIRT_DAEMON_STORAGE_H
#define CVIRT_DAEMON_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/rpc/dispatch.h"
#include "daemon/store.h"
#include "util/err.h"

/* Names libvirt accepts for pools and volumes are file names. */
#define STORAGE_NAME_MAX 255

struct storage_pool {
    char *name;
    uint8_t uuid[16];
    char *path;             /* <target><path>, absolute, no trailing '/' */
    bool active;
    bool persistent;        /* defined (has CONFIG/storage/NAME.xml) */
    bool autostart;
};

struct storage_driver {
    struct store store;     /* config_dir: CONFIG/storage; run_dir: RUN/storage */
    struct storage_pool **pools;
    size_t npools;
    /* The daemon's --root DIR, or NULL. Tools compute libvirt's own data
     * folder (/var/lib/libvirt, e.g. virt-install's default pool) on the
     * client side; with --root such target paths are put under DIR so a
     * daemon kept in a folder stays there. */
    char *root;
};

/* Usage of a running pool's file system, in bytes (zero when inactive). */
struct storage_pool_usage {
    uint64_t capacity, allocation, available;
};

struct storage_vol {
    char name[STORAGE_NAME_MAX + 1];
    char *path;             /* malloc'ed: pool path / name */
    const char *format;     /* "raw" or "qcow2" (static) */
    uint64_t capacity;      /* virtual size */
    uint64_t allocation;    /* bytes the file occupies on disk */
    uint64_t physical;      /* the file's size */
};

/* What a <volume> XML asks for. */
struct storage_vol_def {
    char *name;
    uint64_t capacity;
    uint64_t allocation;
    bool allocation_set;
    char *format;           /* NULL: raw */
    /* qcow2 only: preallocated metadata, or the whole image when the
     * allocation covers the capacity (libvirt's PREALLOC_METADATA flag). */
    bool prealloc;
};

/* ---- XML ---- */

/* Parses <pool type='dir'> (name, uuid, target/path). A missing uuid is
 * generated. The result's active/persistent/autostart are false. */
int storage_pool_parse(const char *xml, struct storage_pool **out, struct err *e);
/* The pool's XML; usage NULL leaves capacity, allocation and available out
 * (the form kept on disk). NULL when out of memory. */
char *storage_pool_format(const struct storage_pool *p, const struct storage_pool_usage *u);
void storage_pool_free(struct storage_pool *p);

int storage_vol_parse(const char *xml, struct storage_vol_def *out, struct err *e);
void storage_vol_def_clear(struct storage_vol_def *d);
char *storage_vol_format(const struct storage_vol *v);

/* ---- pools ---- */

/* Loads the definitions and starts the pools that are autostarted or were
 * running when the daemon stopped. config and run are the daemon's roots. */
int storage_init(struct storage_driver *d, const char *config, const char *run,
                 struct err *e);
void storage_fini(struct storage_driver *d);

struct storage_pool *storage_find_name(const struct storage_driver *d, const char *name);
struct storage_pool *storage_find_uuid(const struct storage_driver *d, const uint8_t uuid[16]);
struct storage_pool *storage_find_path(const struct storage_driver *d, const char *path);

/* Defines (or redefines, same name and uuid) a persistent pool. A name
 * taken by another uuid, a uuid taken by another name and a target path
 * another pool uses are refused with -EEXIST. */
int storage_define(struct storage_driver *d, const char *xml, struct storage_pool **out,
                   struct err *e);
/* A transient pool, started at once; it disappears when destroyed. */
int storage_create_transient(struct storage_driver *d, const char *xml,
                             struct storage_pool **out, struct err *e);
/* Refuses an active or transient pool with -EBUSY (the operation is not
 * valid in that state, as for every -EBUSY here). */
int storage_undefine(struct storage_driver *d, struct storage_pool *p, struct err *e);
/* Creates the target folder (and its parents). */
int storage_build(struct storage_pool *p, struct err *e);
/* Starts a pool: its folder must exist. -EBUSY when already active. */
int storage_start(struct storage_driver *d, struct storage_pool *p, struct err *e);
/* Stops a pool (a transient one is removed: p is then freed). */
int storage_destroy(struct storage_driver *d, struct storage_pool *p, struct err *e);
/* Removes the (empty) target folder of an inactive pool. */
int storage_delete(struct storage_pool *p, struct err *e);
int storage_set_autostart(struct storage_driver *d, struct storage_pool *p, bool on,
                          struct err *e);
int storage_usage(const struct storage_pool *p, struct storage_pool_usage *u, struct err *e);

/* ---- volumes (the pool must be active; the handlers check) ---- */

/* The volumes of a folder, sorted by name; files that cannot be read are
 * left out with a log line. */
int storage_vol_list(const char *dir, struct storage_vol **out, size_t *n, struct err *e);
void storage_vol_list_free(struct storage_vol *v, size_t n);
void storage_vol_clear(struct storage_vol *v);
/* One volume by name (-ENOENT when no such file; a name with '/' or a
 * dot-name is -EINVAL). */
int storage_vol_get(const char *dir, const char *name, struct storage_vol *out,
                    struct err *e);
/* The active pool holding path (written as storage_clean_path() leaves
 * it) as one of its volumes, and the volume's name (a pointer into path). */
struct storage_pool *storage_pool_of_path(const struct storage_driver *d, const char *path,
                                          const char **name);
/* Creates a raw (sparse; fully allocated when allocation >= capacity) or
 * qcow2 volume. -EEXIST when the name is taken. */
int storage_vol_create(const char *dir, const struct storage_vol_def *def,
                       struct storage_vol *out, struct err *e);
/* A new volume holding a copy of the image at src (its guest-visible
 * content, converted to def's format; zeros stay holes). The capacity is
 * the larger of def's and src's. -EEXIST when the name is taken. */
int storage_vol_create_from(const char *dir, const struct storage_vol_def *def,
                            const char *src, struct storage_vol *out, struct err *e);
int storage_vol_delete(const char *dir, const char *name, struct err *e);

/* path without repeated or trailing '/' (malloc'ed), or NULL. */
char *storage_clean_path(const char *path);
/* True for a name that is a single path component other than . and .. */
bool storage_name_valid(const char *name);

/* ---- XML helpers shared by storage.c and storage_vol.c ---- */

struct _xmlNode;
struct _xmlDoc;
/* The first child element with that name, or NULL (n may be NULL). */
struct _xmlNode *storage_xml_child(struct _xmlNode *n, const char *name);
/* An element's text without surrounding blanks (malloc'ed), or NULL. */
char *storage_xml_text(struct _xmlNode *n);
/* Parses a document whose root element must be root; NULL with e set. */
struct _xmlDoc *storage_xml_read(const char *xml, const char *root, struct err *e);
/* Text with XML's special characters escaped (malloc'ed), or NULL. */
char *storage_xml_escape(const char *s);

/* ---- the remote procedures (remote_storage.c) ---- */

struct daemon;
/* Loads the pools under the daemon's config folder and starts the
 * autostarted and previously running ones; called before the sockets open. */
int remote_storage_init(struct daemon *d, struct err *e);
void remote_storage_fini(struct daemon *d);
extern const struct rpc_proc remote_storage_procs[];
extern const size_t remote_storage_nprocs;
/* Shared by remote_storage.c and remote_storage_vol.c: the daemon's
 * driver, one error reply from a struct err of storage.c by the kind of
 * failure, "no storage pool with matching WHAT 'NAME'", and the active pool
 * a client names (NULL with err set). */
struct storage_driver *remote_storage_driver(void);
int remote_storage_fail(struct rpc_error *err, const struct err *e);
int remote_storage_no_pool(struct rpc_error *err, const char *what, const char *name);
struct storage_pool *remote_storage_pool_active(struct rpc_client *c,
                                                const remote_nonnull_storage_pool *rp,
                                                struct rpc_error *err);
/* Sends a pool refresh event (373) to the clients registered for it. */
void remote_storage_emit_refresh(struct daemon *dm, const char *name, const uint8_t uuid[16]);
/* The volume procedures (remote_storage_vol.c), listed in
 * remote_storage_procs. */
#define REMOTE_STORAGE_HANDLER(name)                                          \
    int remote_storage_##name(struct rpc_client *c, const void *args, void *ret, \
                              struct rpc_error *err)
REMOTE_STORAGE_HANDLER(pool_num_of_volumes);
REMOTE_STORAGE_HANDLER(pool_list_volumes);
REMOTE_STORAGE_HANDLER(pool_list_all_volumes);
REMOTE_STORAGE_HANDLER(vol_lookup_by_name);
REMOTE_STORAGE_HANDLER(vol_lookup_by_key);
REMOTE_STORAGE_HANDLER(vol_lookup_by_path);
REMOTE_STORAGE_HANDLER(vol_create_xml);
REMOTE_STORAGE_HANDLER(vol_create_xml_from);
REMOTE_STORAGE_HANDLER(vol_delete);
REMOTE_STORAGE_HANDLER(vol_get_info);
REMOTE_STORAGE_HANDLER(vol_get_xml);
REMOTE_STORAGE_HANDLER(vol_get_path);
#undef REMOTE_STORAGE_HANDLER
/* The volume a client names, in an active pool (remote_storage_vol.c). */
int remote_storage_vol_get(struct rpc_client *c, const remote_nonnull_storage_vol *rv,
                           struct storage_pool **pool, struct storage_vol *v,
                           struct rpc_error *err);
/* 208 and 209 (remote_storage_stream.c). */
int remote_storage_upload(struct rpc_client *c, const void *args, void *ret,
                          struct rpc_error *err);
int remote_storage_download(struct rpc_client *c, const void *args, void *ret,
                            struct rpc_error *err);

#endif
