/* cvirsh: virsh's command table, argument rules and output on
 * libcvirt-client. */
#ifndef CVIRT_CLIENT_CVIRSH_H
#define CVIRT_CLIENT_CVIRSH_H

#include <stdbool.h>
#include <stdio.h>

#include "client/client.h"
#include "util/err.h"

enum cvirsh_opt_type {
    CVIRSH_OT_BOOL,     /* --flag */
    CVIRSH_OT_STRING,   /* --opt <string> */
    CVIRSH_OT_DATA,     /* like STRING; shown as <opt> in messages */
    CVIRSH_OT_INT,      /* --opt <number>; parsed by the command */
};

enum {
    CVIRSH_OPT_REQ = 1 << 0,     /* must be given */
    CVIRSH_OPT_NOPOS = 1 << 1,   /* only as --opt value, never positional */
};

struct cvirsh_opt {
    const char *name;
    enum cvirsh_opt_type type;
    unsigned flags;
    const char *help;
};

#define CVIRSH_OPTS_MAX 32

struct cvirsh;
struct cvirsh_cmd;

enum {
    CVIRSH_CMD_NOCONNECT = 1 << 0,   /* runs without a connection */
};

struct cvirsh_cmd_def {
    const char *name;
    bool (*run)(struct cvirsh *ctl, const struct cvirsh_cmd *cmd);
    const struct cvirsh_opt *opts;  /* ends with a NULL name */
    const char *info;               /* one line for help lists */
    const char *desc;               /* help CMD's DESCRIPTION */
    unsigned flags;
};

/* A parsed command: one value per option of def (NULL: not given; "" for
 * a given bool). Values point into the argument vector. */
struct cvirsh_cmd {
    const struct cvirsh_cmd_def *def;
    const char *val[CVIRSH_OPTS_MAX];
};

/* The state of one cvirsh run. */
struct cvirsh {
    const char *uri;            /* -c, or NULL for the default */
    bool readonly;
    bool quiet;
    struct client_conn *conn;
    bool disconnected;          /* the shell lost its connection */
    bool no_blank;              /* the command asks for no trailing blank line */
    bool quit;                  /* quit/exit in the shell */
    bool interactive;
    bool timing;                /* -t */
    char escape;                /* console escape character, 0: ^] */
    const char *escape_str;     /* as given to -e, for the banner */
};

/* The whole program: global options, then one command, a command string
 * or the shell. Returns the exit status. */
int cvirsh_main(int argc, char **argv);

/* ---- argument rules (cvirsh_args.c) ---- */

/* The commands, ending with a NULL name. */
extern const struct cvirsh_cmd_def cvirsh_commands[];

/* help's groups, as virsh shows them; names end with NULL. */
struct cvirsh_group {
    const char *title;
    const char *keyword;
    const char *const *names;
};
extern const struct cvirsh_group cvirsh_groups[];   /* ends with a NULL title */

const struct cvirsh_cmd_def *cvirsh_cmd_find(const struct cvirsh_cmd_def *table,
                                             const char *name);
/* Parses argv (argv[0] is the command) with virsh's rules: --opt value,
 * --opt=value, bools never take '=', values without -- fill the
 * positional options in order, "--" ends options. Messages are virsh's
 * (without "error: "). */
int cvirsh_cmd_parse(const struct cvirsh_cmd_def *table, int argc, char **argv,
                     struct cvirsh_cmd *cmd, struct err *e);
const char *cvirsh_opt_str(const struct cvirsh_cmd *cmd, const char *name);
bool cvirsh_opt_bool(const struct cvirsh_cmd *cmd, const char *name);

/* Splits a shell line into words as virsh does: blanks separate, '...' and
 * "..." quote, backslash escapes, '#' at a word start comments out the
 * rest, and ';' ends a command. Each command becomes one argv in cmds.
 * The caller frees with cvirsh_line_free. */
struct cvirsh_line {
    int ncmds;
    int *argc;
    char ***argv;
};
int cvirsh_line_split(const char *line, struct cvirsh_line *out, struct err *e);
void cvirsh_line_free(struct cvirsh_line *l);

/* "128M" etc. with a default unit of KiB, as virsh's scaled integers. */
int cvirsh_parse_scaled_kib(const char *s, unsigned long long *kib);

/* Prints help for one command in virsh's layout. */
void cvirsh_print_cmd_help(FILE *f, const struct cvirsh_cmd_def *def);

/* ---- output (cvirsh.c) ---- */

void cvirsh_print(struct cvirsh *ctl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Suppressed by -q, like virsh's vshPrintExtra. */
void cvirsh_print_extra(struct cvirsh *ctl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cvirsh_error(struct cvirsh *ctl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints the daemon's message for the last failed call. */
void cvirsh_report(struct cvirsh *ctl, const struct err *e);

/* A table as virsh's list prints it: header, dashes, rows. */
struct cvirsh_table {
    int ncols;
    int nrows;          /* header included */
    char ***cells;
};
int cvirsh_table_add(struct cvirsh_table *t, int ncols, const char *const *cells);
void cvirsh_table_print(struct cvirsh *ctl, const struct cvirsh_table *t);
void cvirsh_table_free(struct cvirsh_table *t);

/* ---- domains (cvirsh_dom.c) ---- */

/* Looks up the domain named by --domain (id, uuid or name, as virsh
 * tries them); prints "failed to get domain" when none matches. */
bool cvirsh_lookup_domain(struct cvirsh *ctl, const struct cvirsh_cmd *cmd,
                          remote_nonnull_domain *dom);
void cvirsh_domain_free(remote_nonnull_domain *dom);
const char *cvirsh_state_str(int state);
const char *cvirsh_reason_str(int state, int reason);

#endif
