/* cvirsh: global options, the interactive shell, output helpers and the
 * command loop, with the layout and exit codes of Debian's virsh 9.0. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/cvirsh.h"
#include "client/cvirsh_cmds.h"
#include "util/log.h"

#ifndef CVIRT_VERSION
#define CVIRT_VERSION "0.0.0"
#endif

/* ---- output ---- */

void cvirsh_print(struct cvirsh *ctl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
}

void cvirsh_print_extra(struct cvirsh *ctl, const char *fmt, ...)
{
    if (ctl->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
}

void cvirsh_error(struct cvirsh *ctl, const char *fmt, ...)
{
    /* stdout first, so that an error lands after what was printed. */
    fflush(stdout);
    fputs("error: ", stderr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void cvirsh_report(struct cvirsh *ctl, const struct err *e)
{
    cvirsh_error(ctl, "%s", e->msg[0] ? e->msg : "unknown error");
}

int cvirsh_table_add(struct cvirsh_table *t, int ncols, const char *const *cells)
{
    char ***rows = realloc(t->cells, sizeof(char **) * (size_t)(t->nrows + 1));
    if (!rows)
        return -ENOMEM;
    t->cells = rows;
    char **row = calloc((size_t)ncols, sizeof(char *));
    if (!row)
        return -ENOMEM;
    for (int i = 0; i < ncols; i++) {
        row[i] = strdup(cells[i] ? cells[i] : "");
        if (!row[i]) {
            while (i--)
                free(row[i]);
            free(row);
            return -ENOMEM;
        }
    }
    t->ncols = ncols;
    t->cells[t->nrows++] = row;
    return 0;
}

static void print_row(char **row, const int *w, int ncols)
{
    putchar(' ');
    for (int c = 0; c < ncols; c++) {
        if (c == ncols - 1)
            fputs(row[c], stdout);
        else
            printf("%-*s   ", w[c], row[c]);
    }
    putchar('\n');
}

/* Row 0 is the header; -q leaves it and the dashes out, and the columns
 * are then as wide as the data alone, as in virsh. */
void cvirsh_table_print(struct cvirsh *ctl, const struct cvirsh_table *t)
{
    int w[16] = {0};
    int ncols = t->ncols < 16 ? t->ncols : 16;
    int first = ctl->quiet ? 1 : 0;
    for (int r = first; r < t->nrows; r++)
        for (int c = 0; c < ncols; c++) {
            int l = (int)strlen(t->cells[r][c]);
            if (l > w[c])
                w[c] = l;
        }
    for (int r = first; r < t->nrows; r++) {
        print_row(t->cells[r], w, ncols);
        if (r == 0) {
            int dashes = 0;
            for (int c = 0; c < ncols; c++)
                dashes += w[c] + 3;
            for (int i = 0; i < dashes; i++)
                putchar('-');
            putchar('\n');
        }
    }
}

void cvirsh_table_free(struct cvirsh_table *t)
{
    for (int r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++)
            free(t->cells[r][c]);
        free(t->cells[r]);
    }
    free(t->cells);
    memset(t, 0, sizeof(*t));
}

/* ---- connection and commands ---- */

static bool ensure_connected(struct cvirsh *ctl)
{
    if (ctl->conn)
        return true;
    struct err e = {0};
    if (client_open(&ctl->conn, ctl->uri, ctl->readonly ? CLIENT_OPEN_READONLY : 0,
                    &e) < 0) {
        ctl->conn = NULL;
        cvirsh_error(ctl, ctl->disconnected ? "Failed to reconnect to the hypervisor"
                                            : "failed to connect to the hypervisor");
        cvirsh_report(ctl, &e);
        return false;
    }
    ctl->disconnected = false;
    return true;
}

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Runs one parsed command line. Returns true on success. */
static bool run_argv(struct cvirsh *ctl, int argc, char **argv)
{
    struct cvirsh_cmd cmd;
    struct err e = {0};
    if (cvirsh_cmd_parse(cvirsh_commands, argc, argv, &cmd, &e) < 0) {
        cvirsh_report(ctl, &e);
        return false;
    }
    bool ok;
    ctl->no_blank = false;
    long long start = now_us();
    /* virsh connects before the first command and gives up when it can't;
     * only a shell that lost its connection tries again, per command. */
    if (!(cmd.def->flags & CVIRSH_CMD_NOCONNECT) && !ensure_connected(ctl)) {
        if (!ctl->disconnected)
            return false;
        ok = false;
    } else {
        ok = cmd.def->run(ctl, &cmd);
        if (!ok && ctl->interactive && ctl->conn && client_is_broken(ctl->conn)) {
            /* The next command connects again. */
            client_close(ctl->conn);
            ctl->conn = NULL;
            ctl->disconnected = true;
        }
    }
    if (ctl->quit)
        return ok;
    if (ctl->timing) {
        double ms = (double)(now_us() - start) / 1000.0;
        cvirsh_print(ctl, "\n(Time: %.3f ms)\n\n", ms);
    } else if (!ctl->no_blank) {
        cvirsh_print_extra(ctl, "\n");
    }
    fflush(stdout);
    return ok;
}

static bool run_line(struct cvirsh *ctl, const char *line)
{
    struct cvirsh_line l;
    struct err e = {0};
    if (cvirsh_line_split(line, &l, &e) < 0) {
        cvirsh_report(ctl, &e);
        return false;
    }
    /* A command string with no command in it fails, as in virsh. */
    bool ok = l.ncmds > 0;
    for (int c = 0; c < l.ncmds && !ctl->quit; c++)
        ok = run_argv(ctl, l.argc[c], l.argv[c]);
    cvirsh_line_free(&l);
    return ok;
}

/* Input read straight from the descriptor, so that poll() sees all of it
 * (a stdio buffer would hide lines already read). */
struct linebuf {
    char *buf;
    size_t len, cap;
    bool eof;
};

/* Takes the first line out of lb into *line (malloc'd, no newline).
 * Returns 1 with a line, 0 when none is complete yet. */
static int take_line(struct linebuf *lb, char **line)
{
    char *nl = lb->len ? memchr(lb->buf, '\n', lb->len) : NULL;
    if (!nl && !(lb->eof && lb->len))
        return 0;
    size_t n = nl ? (size_t)(nl - lb->buf) : lb->len;
    *line = strndup(lb->buf, n);
    size_t used = nl ? n + 1 : n;
    memmove(lb->buf, lb->buf + used, lb->len - used);
    lb->len -= used;
    return *line ? 1 : -ENOMEM;
}

/* Waits for a line while answering the daemon's keepalive PINGs and
 * taking its events, as virsh's event loop does between commands; an
 * idle shell is not dropped. Returns 1 with a line, 0 at the end of input. */
static int shell_readline(struct cvirsh *ctl, struct linebuf *lb, char **line)
{
    for (;;) {
        int rc = take_line(lb, line);
        if (rc != 0)
            return rc;
        if (lb->eof)
            return 0;
        struct pollfd p[2] = {
            { .fd = STDIN_FILENO, .events = POLLIN },
            { .fd = ctl->conn ? client_fd(ctl->conn) : -1, .events = POLLIN },
        };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 0;
        }
        if (p[1].revents) {
            struct err e = {0};
            if (client_event_wait(ctl->conn, 0, &e) < 0) {
                cvirsh_error(ctl, "Disconnected from %s due to %s",
                             client_get_uri(ctl->conn),
                             e.code == ECONNRESET ? "end of file" : e.msg);
                client_close(ctl->conn);
                ctl->conn = NULL;
                ctl->disconnected = true;
            }
        }
        if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        if (lb->len + 4096 > lb->cap) {
            size_t cap = lb->cap ? lb->cap * 2 : 8192;
            char *nb = realloc(lb->buf, cap);
            if (!nb)
                return -ENOMEM;
            lb->buf = nb;
            lb->cap = cap;
        }
        ssize_t n = read(STDIN_FILENO, lb->buf + lb->len, lb->cap - lb->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            lb->eof = true;
        else
            lb->len += (size_t)n;
    }
}

static int shell(struct cvirsh *ctl)
{
    bool tty = isatty(STDIN_FILENO);
    ctl->interactive = true;
    /* virsh connects before it says anything, and quits when it can't. */
    if (!ensure_connected(ctl))
        return 1;
    cvirsh_print_extra(ctl, "Welcome to cvirsh, the virtualization interactive terminal.\n\n"
                       "Type:  'help' for help with commands\n"
                       "       'quit' to quit\n\n");
    struct linebuf lb = {0};
    char *line = NULL;
    while (!ctl->quit) {
        fputs("cvirsh # ", stdout);
        fflush(stdout);
        if (shell_readline(ctl, &lb, &line) <= 0)
            break;
        if (!tty)
            printf("%s\n", line);   /* what readline shows for piped input */
        run_line(ctl, line);
        free(line);
        line = NULL;
    }
    free(lb.buf);
    putchar('\n');
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
        "\n"
        "cvirsh [options]... [<command_string>]\n"
        "cvirsh [options]... <command> [args...]\n"
        "\n"
        "  options:\n"
        "    -c | --connect=URI      hypervisor connection URI\n"
        "    -h | --help             this help\n"
        "    -q | --quiet            quiet mode\n"
        "    -r | --readonly         connect readonly\n"
        "    -v                      short version\n"
        "    -V                      long version\n"
        "         --version[=TYPE]   version, TYPE is short or long (default short)\n"
        "  commands (non interactive mode):\n"
        "\n");
    for (const struct cvirsh_cmd_def *d = cvirsh_commands; d->name; d++)
        fprintf(f, "    %-30s %s\n", d->name, d->info);
    fprintf(f, "\n  (specify help <group> for details about the commands in the group)\n"
               "\n  (specify help <command> for details about the command)\n\n");
}

static bool number_in(const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return *s && !*end && !errno && v >= lo && v <= hi;
}

/* "^X" (a control character) or one character, as virsh takes -e. */
static bool parse_escape(struct cvirsh *ctl, const char *s)
{
    if (s[0] == '^' && s[1] && !s[2]) {
        char c = (char)(s[1] & ~0x20);
        if (c < '@' || c > '_')
            return false;
        ctl->escape = (char)(c ^ 0x40);
    } else if (s[0] && !s[1]) {
        ctl->escape = s[0];
    } else {
        return false;
    }
    ctl->escape_str = s;
    return true;
}

static const char *long_name(const struct option *opts, int val)
{
    for (const struct option *o = opts; o->name; o++)
        if (o->val == val)
            return o->name;
    return "";
}

/* Parses the global options; returns the index of the first command word,
 * or -1 when cvirsh should exit with *rc. */
static int global_options(struct cvirsh *ctl, int argc, char **argv, int *rc)
{
    static const struct option longopts[] = {
        { "connect", required_argument, NULL, 'c' },
        { "readonly", no_argument, NULL, 'r' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { "version", optional_argument, NULL, 'v' },
        { "debug", required_argument, NULL, 'd' },
        { "escape", required_argument, NULL, 'e' },
        { "keepalive-interval", required_argument, NULL, 'k' },
        { "keepalive-count", required_argument, NULL, 'K' },
        { "log", required_argument, NULL, 'l' },
        { "timing", no_argument, NULL, 't' },
        { NULL, 0, NULL, 0 },
    };
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+:c:d:e:hk:K:l:qrtvV", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c': ctl->uri = optarg; break;
        case 'r': ctl->readonly = true; break;
        case 'q': ctl->quiet = true; break;
        case 't': ctl->timing = true; break;
        case 'l': break;    /* cvirsh logs with CVIRT_LOG=debug to stderr */
        case 'd':
            if (!number_in(optarg, 0, 4))
                cvirsh_error(ctl, "ignoring debug level %s out of range [0-4]", optarg);
            break;
        case 'k': case 'K':
            /* The daemon's pings are always answered; the client sends
             * none of its own, so the values are only checked. */
            if (!number_in(optarg, 0, 1 << 30)) {
                cvirsh_error(ctl, "Invalid value for option -%c", ch);
                *rc = 1;
                return -1;
            }
            break;
        case 'e':
            if (!parse_escape(ctl, optarg)) {
                cvirsh_error(ctl, "Invalid string '%s' for escape sequence", optarg);
                *rc = 1;
                return -1;
            }
            break;
        case 'h': usage(stdout); *rc = 0; return -1;
        case 'v':
            if (optarg && strcmp(optarg, "short") != 0 && strcmp(optarg, "long") != 0) {
                cvirsh_error(ctl, "unknown version type '%s'", optarg);
                *rc = 1;
                return -1;
            }
            if (!optarg || strcmp(optarg, "short") == 0) {
                printf("%s\n", CVIRT_VERSION);
                *rc = 0;
                return -1;
            }
            __attribute__((fallthrough));   /* --version=long */
        case 'V':
            printf("cvirsh command line tool of cvirt %s\n", CVIRT_VERSION);
            *rc = 0;
            return -1;
        case ':':
            cvirsh_error(ctl, "option '-%c'/'--%s' requires an argument", optopt,
                         long_name(longopts, optopt));
            *rc = 1;
            return -1;
        default:
            if (optopt)
                cvirsh_error(ctl, "unsupported option '-%c'. See --help.", optopt);
            else
                cvirsh_error(ctl, "unsupported option '%s'. See --help.",
                             argv[optind - 1]);
            *rc = 1;
            return -1;
        }
    }
    return optind;
}

int cvirsh_main(int argc, char **argv)
{
    struct cvirsh ctl = {0};
    int rc = 0;
    log_init("cvirsh");
    int first = global_options(&ctl, argc, argv, &rc);
    if (first < 0)
        return rc;
    bool ok;
    if (first >= argc) {
        rc = shell(&ctl);
        ok = rc == 0;
    } else if (first == argc - 1 && (!argv[first][0] || strpbrk(argv[first], " \t;"))) {
        /* One word with blanks is a command string, as in virsh. */
        ok = run_line(&ctl, argv[first]);
    } else {
        ok = run_argv(&ctl, argc - first, argv + first);
    }
    client_close(ctl.conn);
    fflush(stdout);
    return ok ? 0 : 1;
}

/* ---- commands of the shell itself ---- */

bool cvirsh_cmd_quit(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    ctl->quit = true;
    return true;
}

/* In the full listing a blank line ends each group; alone it has none. */
static void print_group(struct cvirsh *ctl, const struct cvirsh_group *g, bool blank)
{
    cvirsh_print(ctl, " %s (help keyword '%s'):\n", g->title, g->keyword);
    for (int i = 0; g->names[i]; i++) {
        const struct cvirsh_cmd_def *d = cvirsh_cmd_find(cvirsh_commands, g->names[i]);
        if (d)
            cvirsh_print(ctl, "    %-30s %s\n", d->name, d->info);
    }
    if (blank)
        cvirsh_print(ctl, "\n");
}

bool cvirsh_cmd_help(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    const char *name = cvirsh_opt_str(cmd, "command");
    if (!name) {
        cvirsh_print(ctl, "Grouped commands:\n\n");
        for (const struct cvirsh_group *g = cvirsh_groups; g->title; g++)
            print_group(ctl, g, true);
        return true;
    }
    for (const struct cvirsh_group *g = cvirsh_groups; g->title; g++) {
        if (strcmp(g->keyword, name) == 0) {
            print_group(ctl, g, false);
            return true;
        }
    }
    const struct cvirsh_cmd_def *d = cvirsh_cmd_find(cvirsh_commands, name);
    if (!d) {
        cvirsh_error(ctl, "command or command group '%s' doesn't exist", name);
        return false;
    }
    fflush(stdout);
    cvirsh_print_cmd_help(stdout, d);
    return true;
}

bool cvirsh_cmd_uri(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)
{
    cvirsh_print(ctl, "%s\n", client_get_uri(ctl->conn));
    return true;
}
