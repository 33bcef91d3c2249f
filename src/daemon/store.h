/* Where the daemon keeps domains on disk, laid out as libvirt's QEMU
 * driver does:
 *
 *   CONFIG/qemu/NAME.xml                 persistent definitions
 *   CONFIG/qemu/autostart/NAME.xml       symlinks to ../NAME.xml
 *   RUN/qemu/NAME.pid, NAME.xml          a running domain's VMM pid and
 *                                        live definition (for reattach)
 *   RUN/qemu/NAME.sock                   its VMM's control socket
 *   LOG/qemu/NAME.log                    the VMM's stdout and stderr
 *
 * Files are replaced atomically (temp file, fsync, rename, fsync of the
 * directory) so a crash leaves either the old or the new content. A file
 * that cannot be loaded is reported in one log line and left in place. */
#ifndef CVIRT_DAEMON_STORE_H
#define CVIRT_DAEMON_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/err.h"

struct store {
    char *config_dir;       /* CONFIG/qemu */
    char *autostart_dir;    /* CONFIG/qemu/autostart */
    char *run_dir;          /* RUN/qemu */
    char *log_dir;          /* LOG/qemu */
    char *save_dir;         /* STATE/qemu/save: managed save images */
};

/* Creates the directories (mode 0700, like libvirt's root-only state)
 * when missing. config, run, log and state are the daemon's roots, e.g.
 * /etc/cvirt, /run/cvirt, /var/log/cvirt, /var/lib/cvirt. */
int store_init(struct store *s, const char *config, const char *run, const char *log,
               const char *state, struct err *e);
void store_fini(struct store *s);

/* Writes data to dir/name atomically, mode 0600. */
int store_write_atomic(const char *dir, const char *name, const void *data, size_t len,
                       struct err *e);

/* Reads a whole file (at most max bytes; -EFBIG beyond), NUL-terminated. */
int store_read_file(const char *path, size_t max, char **out, size_t *len, struct err *e);

/* Persistent definitions. */
int store_save_def(const struct store *s, const char *name, const char *xml, struct err *e);
/* Removes the definition and its autostart link; a missing file is fine. */
int store_delete_def(const struct store *s, const char *name, struct err *e);
int store_set_autostart(const struct store *s, const char *name, bool on, struct err *e);
bool store_get_autostart(const struct store *s, const char *name);

/* Called for each CONFIG/qemu/NAME.xml (name without ".xml"); a negative
 * return with e set makes store_load_defs log one line naming the file and
 * go on. */
typedef int (*store_def_cb)(void *opaque, const char *name, const char *path,
                            const char *xml, size_t len, bool autostart, struct err *e);
/* Returns how many files were accepted. */
int store_load_defs(const struct store *s, store_def_cb cb, void *opaque);

/* Run-time state of a running domain. */
int store_save_run(const struct store *s, const char *name, pid_t pid, const char *live_xml,
                   struct err *e);
/* Called for each RUN/qemu/NAME.pid with its pid and NAME.xml's content
 * (NULL when unreadable); the callback decides whether the VMM is alive. */
typedef void (*store_run_cb)(void *opaque, const char *name, pid_t pid,
                             const char *xml, size_t len);
void store_load_runs(const struct store *s, store_run_cb cb, void *opaque);
/* Removes NAME.pid, NAME.xml and NAME.sock. */
void store_clear_run(const struct store *s, const char *name);

/* Paths of one domain's files; -ENAMETOOLONG when they do not fit. A
 * socket path too long for a socket address uses the uuid instead of the
 * name. */
int store_sock_path(const struct store *s, const char *name, const uint8_t uuid[16],
                    char *buf, size_t len);
int store_log_path(const struct store *s, const char *name, char *buf, size_t len);
/* STATE/qemu/save/NAME.save, where a managed save goes. */
int store_managed_save_path(const struct store *s, const char *name, char *buf, size_t len);
bool store_has_managed_save(const struct store *s, const char *name);

#endif
