/* virsh's rules for command lines and shell lines. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/cvirsh.h"

const struct cvirsh_cmd_def *cvirsh_cmd_find(const struct cvirsh_cmd_def *table,
                                             const char *name)
{
    for (const struct cvirsh_cmd_def *d = table; d->name; d++)
        if (strcmp(d->name, name) == 0)
            return d;
    return NULL;
}

static int opt_index(const struct cvirsh_cmd_def *def, const char *name, size_t len)
{
    for (int i = 0; def->opts && def->opts[i].name; i++)
        if (strlen(def->opts[i].name) == len &&
            strncmp(def->opts[i].name, name, len) == 0)
            return i;
    return -1;
}

static bool positional(const struct cvirsh_opt *o)
{
    return o->type != CVIRSH_OT_BOOL && !(o->flags & CVIRSH_OPT_NOPOS);
}

/* The next option a bare word fills: the first positional one not given. */
static int next_positional(const struct cvirsh_cmd *cmd)
{
    const struct cvirsh_opt *opts = cmd->def->opts;
    for (int i = 0; opts && opts[i].name; i++)
        if (positional(&opts[i]) && !cmd->val[i])
            return i;
    return -1;
}

static int parse_option(struct cvirsh_cmd *cmd, int argc, char **argv, int *ip,
                        struct err *e)
{
    const char *arg = argv[*ip] + 2;
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    int i = opt_index(cmd->def, arg, len);
    if (i < 0)
        return err_set(e, EINVAL, "command '%s' doesn't support option --%.*s",
                       cmd->def->name, (int)len, arg);
    const struct cvirsh_opt *o = &cmd->def->opts[i];
    if (cmd->val[i])
        return err_set(e, EINVAL, "option --%s already seen", o->name);
    if (o->type == CVIRSH_OT_BOOL) {
        if (eq)
            return err_set(e, EINVAL, "invalid '=' after option --%s", o->name);
        cmd->val[i] = "";
        return 0;
    }
    if (eq) {
        cmd->val[i] = eq + 1;
        return 0;
    }
    if (*ip + 1 >= argc)
        return err_set(e, EINVAL, "expected syntax: --%s <%s>", o->name,
                       o->type == CVIRSH_OT_INT ? "number" : "string");
    cmd->val[i] = argv[++*ip];
    return 0;
}

static int check_required(const struct cvirsh_cmd *cmd, struct err *e)
{
    const struct cvirsh_opt *opts = cmd->def->opts;
    for (int i = 0; opts && opts[i].name; i++) {
        if (!(opts[i].flags & CVIRSH_OPT_REQ) || cmd->val[i])
            continue;
        if (opts[i].type == CVIRSH_OT_DATA)
            return err_set(e, EINVAL, "command '%s' requires <%s> option",
                           cmd->def->name, opts[i].name);
        return err_set(e, EINVAL, "command '%s' requires --%s option",
                       cmd->def->name, opts[i].name);
    }
    return 0;
}

int cvirsh_cmd_parse(const struct cvirsh_cmd_def *table, int argc, char **argv,
                     struct cvirsh_cmd *cmd, struct err *e)
{
    memset(cmd, 0, sizeof(*cmd));
    if (argc < 1)
        return err_set(e, EINVAL, "no command given");
    cmd->def = cvirsh_cmd_find(table, argv[0]);
    if (!cmd->def)
        return err_set(e, ENOENT, "unknown command: '%s'", argv[0]);
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!options_done && strcmp(a, "--") == 0) {
            options_done = true;
            continue;
        }
        if (!options_done && a[0] == '-' && a[1] == '-' && a[2]) {
            int rc = parse_option(cmd, argc, argv, &i, e);
            if (rc < 0)
                return rc;
            continue;
        }
        int p = next_positional(cmd);
        if (p < 0)
            return err_set(e, EINVAL, "unexpected data '%s'", a);
        cmd->val[p] = a;
    }
    return check_required(cmd, e);
}

const char *cvirsh_opt_str(const struct cvirsh_cmd *cmd, const char *name)
{
    int i = opt_index(cmd->def, name, strlen(name));
    return i < 0 ? NULL : cmd->val[i];
}

bool cvirsh_opt_bool(const struct cvirsh_cmd *cmd, const char *name)
{
    return cvirsh_opt_str(cmd, name) != NULL;
}

/* ---- shell lines ---- */

struct wordbuf {
    char *s;
    size_t len, cap;
};

static int wb_put(struct wordbuf *w, char c)
{
    if (w->len + 2 > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 32;
        char *n = realloc(w->s, cap);
        if (!n)
            return -ENOMEM;
        w->s = n;
        w->cap = cap;
    }
    w->s[w->len++] = c;
    w->s[w->len] = '\0';
    return 0;
}

static int add_word(struct cvirsh_line *l, char *word)
{
    int c = l->ncmds - 1;
    char **nv = realloc(l->argv[c], sizeof(char *) * (size_t)(l->argc[c] + 2));
    if (!nv)
        return -ENOMEM;
    l->argv[c] = nv;
    nv[l->argc[c]++] = word;
    nv[l->argc[c]] = NULL;
    return 0;
}

static int new_command(struct cvirsh_line *l)
{
    int n = l->ncmds + 1;
    int *na = realloc(l->argc, sizeof(int) * (size_t)n);
    if (!na)
        return -ENOMEM;
    l->argc = na;
    char ***nv = realloc(l->argv, sizeof(char **) * (size_t)n);
    if (!nv)
        return -ENOMEM;
    l->argv = nv;
    l->argc[n - 1] = 0;
    l->argv[n - 1] = NULL;
    l->ncmds = n;
    return 0;
}

/* Reads one word starting at *pp (not a blank). Returns 1 with the word, 0
 * when the rest is a comment, or a negative errno. */
static int read_word(const char **pp, struct wordbuf *w, struct err *e)
{
    const char *p = *pp;
    char quote = 0;
    if (*p == '#') {
        *pp = p + strlen(p);
        return 0;
    }
    for (; *p; p++) {
        if (quote) {
            if (*p == quote) {
                quote = 0;
                continue;
            }
        } else if (*p == '\'' || *p == '"') {
            quote = *p;
            continue;
        } else if (isblank((unsigned char)*p) || *p == ';' || *p == '\n') {
            break;
        }
        if (*p == '\\' && quote != '\'' && p[1])
            p++;
        if (wb_put(w, *p) < 0)
            return err_set(e, ENOMEM, "out of memory");
    }
    /* virsh lets a single quote run to the end of the line, not a double. */
    if (quote == '"')
        return err_set(e, EINVAL, "missing %c", quote);
    *pp = p;
    if (!w->s && wb_put(w, '\0') == 0)
        w->len = 0;
    return w->s ? 1 : err_set(e, ENOMEM, "out of memory");
}

int cvirsh_line_split(const char *line, struct cvirsh_line *l, struct err *e)
{
    memset(l, 0, sizeof(*l));
    const char *p = line;
    bool need_cmd = true;
    while (*p) {
        if (isblank((unsigned char)*p) || *p == '\n' || *p == '\r') {
            p++;
            continue;
        }
        if (*p == ';') {
            need_cmd = true;
            p++;
            continue;
        }
        struct wordbuf w = {0};
        int rc = read_word(&p, &w, e);
        if (rc < 0) {
            free(w.s);
            cvirsh_line_free(l);
            return rc;
        }
        if (rc == 0)
            break;
        if ((need_cmd && new_command(l) < 0) || add_word(l, w.s) < 0) {
            free(w.s);
            cvirsh_line_free(l);
            return err_set(e, ENOMEM, "out of memory");
        }
        need_cmd = false;
    }
    return 0;
}

void cvirsh_line_free(struct cvirsh_line *l)
{
    for (int c = 0; c < l->ncmds; c++) {
        for (int i = 0; i < l->argc[c]; i++)
            free(l->argv[c][i]);
        free(l->argv[c]);
    }
    free(l->argv);
    free(l->argc);
    memset(l, 0, sizeof(*l));
}

/* ---- numbers ---- */

int cvirsh_parse_scaled_kib(const char *s, unsigned long long *kib)
{
    if (!s || !isdigit((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -ERANGE;
    static const struct { const char *suffix; unsigned long long mult; } units[] = {
        { "", 1024ULL }, { "b", 1 }, { "bytes", 1 },
        { "k", 1ULL << 10 }, { "kib", 1ULL << 10 }, { "kb", 1000ULL },
        { "m", 1ULL << 20 }, { "mib", 1ULL << 20 }, { "mb", 1000000ULL },
        { "g", 1ULL << 30 }, { "gib", 1ULL << 30 }, { "gb", 1000000000ULL },
        { "t", 1ULL << 40 }, { "tib", 1ULL << 40 }, { "tb", 1000000000000ULL },
        { "p", 1ULL << 50 }, { "pib", 1ULL << 50 }, { "pb", 1000000000000000ULL },
        { "e", 1ULL << 60 }, { "eib", 1ULL << 60 }, { "eb", 1000000000000000000ULL },
    };
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(end, units[i].suffix) != 0)
            continue;
        if (v > ~0ULL / units[i].mult)
            return -ERANGE;
        *kib = v * units[i].mult / 1024;
        return 0;
    }
    return -EINVAL;
}

/* ---- help ---- */

static void synopsis(FILE *f, const struct cvirsh_cmd_def *def)
{
    fprintf(f, "    %s", def->name);
    for (int i = 0; def->opts && def->opts[i].name; i++) {
        const struct cvirsh_opt *o = &def->opts[i];
        bool req = o->flags & CVIRSH_OPT_REQ;
        if (o->type == CVIRSH_OT_BOOL)
            fprintf(f, " [--%s]", o->name);
        else if (req && positional(o))
            fprintf(f, " <%s>", o->name);
        else
            fprintf(f, req ? " --%s <%s>" : " [--%s <%s>]", o->name,
                    o->type == CVIRSH_OT_INT ? "number" : "string");
    }
    fputc('\n', f);
}

void cvirsh_print_cmd_help(FILE *f, const struct cvirsh_cmd_def *def)
{
    fprintf(f, "  NAME\n    %s - %s\n\n  SYNOPSIS\n", def->name, def->info);
    synopsis(f, def);
    if (def->desc)
        fprintf(f, "\n  DESCRIPTION\n    %s\n", def->desc);
    if (def->opts && def->opts[0].name) {
        fprintf(f, "\n  OPTIONS\n");
        for (int i = 0; def->opts[i].name; i++) {
            const struct cvirsh_opt *o = &def->opts[i];
            char head[96];
            const char *kind = o->type == CVIRSH_OT_INT ? "number" : "string";
            if (o->type == CVIRSH_OT_BOOL)
                snprintf(head, sizeof(head), "--%s", o->name);
            else if (o->flags & CVIRSH_OPT_REQ)
                snprintf(head, sizeof(head), "[--%s] <%s>", o->name, kind);
            else
                snprintf(head, sizeof(head), "--%s <%s>", o->name, kind);
            fprintf(f, "    %-15s  %s\n", head, o->help);
        }
    }
    fputc('\n', f);
}
