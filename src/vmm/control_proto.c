/* QMP's protocol: framing a byte stream into requests, checking their
 * shape, dispatching to registered commands, argument helpers and the
 * commands every server has. Error texts follow QEMU's where a client may
 * match on them. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_int.h"

const char *control_err_class_name(enum control_err_class cls)
{
    switch (cls) {
    case CONTROL_ERR_COMMAND_NOT_FOUND: return "CommandNotFound";
    case CONTROL_ERR_DEVICE_NOT_FOUND: return "DeviceNotFound";
    case CONTROL_ERR_DEVICE_NOT_ACTIVE: return "DeviceNotActive";
    case CONTROL_ERR_GENERIC: break;
    }
    return "GenericError";
}

int control_register(struct control *c, const char *name, control_cmd_fn fn, void *opaque)
{
    for (struct control_cmd *k = c->cmds; k; k = k->next)
        if (!strcmp(k->name, name))
            return -EEXIST;
    struct control_cmd *k = calloc(1, sizeof(*k));
    if (!k || !(k->name = strdup(name))) {
        free(k);
        return -ENOMEM;
    }
    k->fn = fn;
    k->opaque = opaque;
    *c->cmds_tail = k;
    c->cmds_tail = &k->next;
    return 0;
}

void control_cmds_free(struct control *c)
{
    while (c->cmds) {
        struct control_cmd *n = c->cmds->next;
        free(c->cmds->name);
        free(c->cmds);
        c->cmds = n;
    }
    c->cmds_tail = &c->cmds;
}

static struct control_cmd *find_cmd(struct control *c, const char *name)
{
    for (struct control_cmd *k = c->cmds; k; k = k->next)
        if (!strcmp(k->name, name))
            return k;
    return NULL;
}

/* ---- argument helpers ---- */

static int arg_get(struct json_object *args, const char *name, bool required,
                   enum json_type type, const char *tname, struct json_object **v,
                   struct err *e)
{
    if (!args || !json_object_object_get_ex(args, name, v)) {
        if (required)
            return err_set(e, EINVAL, "Parameter '%s' is missing", name);
        return -ENOENT;
    }
    if (!json_object_is_type(*v, type))
        return err_set(e, EINVAL, "Invalid parameter type for '%s', expected: %s", name, tname);
    return 0;
}

int control_arg_int(struct json_object *args, const char *name, bool required,
                    int64_t *out, struct err *e)
{
    struct json_object *v;
    int r = arg_get(args, name, required, json_type_int, "integer", &v, e);
    if (r == 0)
        *out = json_object_get_int64(v);
    return r;
}

int control_arg_bool(struct json_object *args, const char *name, bool required,
                     bool *out, struct err *e)
{
    struct json_object *v;
    int r = arg_get(args, name, required, json_type_boolean, "boolean", &v, e);
    if (r == 0)
        *out = json_object_get_boolean(v);
    return r;
}

int control_arg_str(struct json_object *args, const char *name, bool required,
                    const char **out, struct err *e)
{
    struct json_object *v;
    int r = arg_get(args, name, required, json_type_string, "string", &v, e);
    if (r == 0)
        *out = json_object_get_string(v);
    return r;
}

int control_args_only(struct json_object *args, const char *const *allowed, struct err *e)
{
    if (!args)
        return 0;
    json_object_object_foreach(args, key, val) {
        (void)val;
        bool ok = false;
        for (unsigned i = 0; allowed && allowed[i]; i++)
            ok = ok || !strcmp(allowed[i], key);
        if (!ok)
            return err_set(e, EINVAL, "Parameter '%s' is unexpected", key);
    }
    return 0;
}

/* ---- replies ---- */

static struct json_object *error_reply(enum control_err_class cls, const char *desc,
                                       struct json_object *id)
{
    struct json_object *r = json_object_new_object();
    struct json_object *err = json_object_new_object();
    json_object_object_add(err, "class", json_object_new_string(control_err_class_name(cls)));
    json_object_object_add(err, "desc", json_object_new_string(desc));
    json_object_object_add(r, "error", err);
    if (id)
        json_object_object_add(r, "id", json_object_get(id));
    return r;
}

struct json_object *control_greeting(void)
{
    struct json_object *ver = json_object_new_object();
    struct json_object *q = json_object_new_object();
    json_object_object_add(q, "micro", json_object_new_int(CONTROL_VERSION_MICRO));
    json_object_object_add(q, "minor", json_object_new_int(CONTROL_VERSION_MINOR));
    json_object_object_add(q, "major", json_object_new_int(CONTROL_VERSION_MAJOR));
    json_object_object_add(ver, "qemu", q);
    json_object_object_add(ver, "package", json_object_new_string(CONTROL_PACKAGE));
    struct json_object *qmp = json_object_new_object();
    json_object_object_add(qmp, "version", ver);
    json_object_object_add(qmp, "capabilities", json_object_new_array());
    struct json_object *g = json_object_new_object();
    json_object_object_add(g, "QMP", qmp);
    return g;
}

/* The members a request may have; QEMU names the first one it does not
 * know and so do we. */
static const char *check_request(struct json_object *req, const char **name,
                                 struct json_object **args)
{
    if (!json_object_is_type(req, json_type_object))
        return "QMP input must be a JSON object";
    struct json_object *exec = NULL;
    *args = NULL;
    json_object_object_foreach(req, key, val) {
        if (!strcmp(key, "execute")) {
            if (!json_object_is_type(val, json_type_string))
                return "QMP input member 'execute' must be a string";
            exec = val;
        } else if (!strcmp(key, "arguments")) {
            if (!json_object_is_type(val, json_type_object))
                return "QMP input member 'arguments' must be an object";
            *args = val;
        } else if (!strcmp(key, "exec-oob")) {
            return "QMP input member 'exec-oob' is not supported (no out-of-band capability)";
        } else if (strcmp(key, "id") != 0) {
            static __thread char msg[160];
            snprintf(msg, sizeof(msg), "QMP input member '%.100s' is unexpected", key);
            return msg;
        }
    }
    if (!exec)
        return "QMP input lacks member 'execute'";
    *name = json_object_get_string(exec);
    return NULL;
}

static struct json_object *dispatch(struct control *c, struct control_session *s,
                                    struct json_object *req)
{
    struct json_object *id = NULL;
    if (json_object_is_type(req, json_type_object))
        json_object_object_get_ex(req, "id", &id);
    const char *name = NULL;
    struct json_object *args;
    const char *bad = check_request(req, &name, &args);
    if (bad)
        return error_reply(CONTROL_ERR_GENERIC, bad, id);
    bool caps = !strcmp(name, "qmp_capabilities");
    if (!s->negotiated && !caps)
        return error_reply(CONTROL_ERR_COMMAND_NOT_FOUND,
                           "Expecting capabilities negotiation with 'qmp_capabilities'", id);
    if (s->negotiated && caps)
        return error_reply(CONTROL_ERR_COMMAND_NOT_FOUND,
                           "Capabilities negotiation is already complete, command ignored", id);
    struct control_cmd *k = find_cmd(c, name);
    if (!k) {
        char msg[200];
        snprintf(msg, sizeof(msg), "The command %.150s has not been found", name);
        return error_reply(CONTROL_ERR_COMMAND_NOT_FOUND, msg, id);
    }
    struct json_object *ret = NULL;
    enum control_err_class cls = CONTROL_ERR_GENERIC;
    struct err e = { 0 };
    int r = k->fn(k->opaque, args, &ret, &cls, &e);
    if (r < 0) {
        json_object_put(ret);
        if (!err_is_set(&e))
            err_set(&e, -r, "%s failed: %s", name, strerror(-r));
        return error_reply(cls, e.msg, id);
    }
    if (caps)
        s->negotiated = true;
    struct json_object *reply = json_object_new_object();
    json_object_object_add(reply, "return", ret ? ret : json_object_new_object());
    if (id)
        json_object_object_add(reply, "id", json_object_get(id));
    return reply;
}

struct json_object *control_session_handle(struct control *c, struct control_session *s,
                                           const char *req, size_t len)
{
    struct json_tokener *tok = json_tokener_new();
    if (!tok)
        return error_reply(CONTROL_ERR_GENERIC, "out of memory", NULL);
    struct json_object *obj = json_tokener_parse_ex(tok, req, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    /* A bare number could go on; a NUL tells the tokener the text ended. */
    if (jerr == json_tokener_continue) {
        obj = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
        end = len;
    }
    /* Anything but blanks after the value is as bad as a broken value. */
    while (jerr == json_tokener_success && end < len &&
           (req[end] == ' ' || req[end] == '\t' || req[end] == '\r' || req[end] == '\n'))
        end++;
    json_tokener_free(tok);
    struct json_object *reply;
    if (jerr == json_tokener_continue) {
        reply = error_reply(CONTROL_ERR_GENERIC, "JSON parse error, unexpected end of input", NULL);
    } else if (jerr != json_tokener_success || end < len) {
        char msg[160];
        snprintf(msg, sizeof(msg), "JSON parse error, %s",
                 jerr != json_tokener_success ? json_tokener_error_desc(jerr)
                                              : "trailing characters after a value");
        reply = error_reply(CONTROL_ERR_GENERIC, msg, NULL);
    } else {
        reply = dispatch(c, s, obj);
    }
    json_object_put(obj);
    return reply;
}

/* ---- framing ---- */

void control_session_init(struct control_session *s)
{
    memset(s, 0, sizeof(*s));
}

void control_session_fini(struct control_session *s)
{
    free(s->buf);
    memset(s, 0, sizeof(*s));
}

static int session_put(struct control_session *s, char ch)
{
    if (s->len == CONTROL_MAX_LINE)
        return -E2BIG;
    if (s->len == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        if (cap > CONTROL_MAX_LINE)
            cap = CONTROL_MAX_LINE;
        char *b = realloc(s->buf, cap);
        if (!b)
            return -ENOMEM;
        s->buf = b;
        s->cap = cap;
    }
    s->buf[s->len++] = ch;
    return 0;
}

static void session_complete(struct control *c, struct control_session *s,
                             control_reply_fn reply, void *opaque)
{
    struct json_object *r = control_session_handle(c, s, s->buf, s->len);
    s->len = 0;
    s->depth = 0;
    s->quote = 0;
    s->esc = s->scalar = false;
    reply(opaque, r);
}

/* Tracks strings and nesting the way QEMU's streamer does: a request ends
 * when its outermost brace closes; a stray value outside braces ends at
 * blank space, and becomes an error reply. */
int control_session_feed(struct control *c, struct control_session *s, const char *data,
                         size_t len, control_reply_fn reply, void *opaque)
{
    for (size_t i = 0; i < len; i++) {
        char ch = data[i];
        bool blank = ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
        if (s->depth == 0 && !s->quote && blank) {
            if (s->scalar)
                session_complete(c, s, reply, opaque);
            continue;
        }
        if (s->depth == 0 && !s->quote && s->scalar && (ch == '{' || ch == '['))
            session_complete(c, s, reply, opaque);
        int r = session_put(s, ch);
        if (r < 0)
            return r;
        if (s->quote) {
            if (s->esc)
                s->esc = false;
            else if (ch == '\\')
                s->esc = true;
            else if (ch == s->quote)
                s->quote = 0;
            continue;
        }
        switch (ch) {
        case '{':
        case '[':
            s->depth++;
            break;
        case '}':
        case ']':
            if (s->depth > 0)
                s->depth--;
            else
                s->scalar = true;   /* a stray closer: junk up to a blank */
            break;
        case '"':
        case '\'':
            s->quote = ch;
            /* fall through */
        default:
            if (s->depth == 0)
                s->scalar = true;
            break;
        }
        if (s->depth == 0 && !s->scalar)
            session_complete(c, s, reply, opaque);
    }
    return 0;
}

/* ---- the commands every server has ---- */

static int cmd_qmp_capabilities(void *opaque, struct json_object *args,
                                struct json_object **ret, enum control_err_class *cls,
                                struct err *e)
{
    static const char *const allowed[] = { "enable", NULL };
    int r = control_args_only(args, allowed, e);
    if (r < 0)
        return r;
    struct json_object *en;
    if (!args || !json_object_object_get_ex(args, "enable", &en))
        return 0;
    if (!json_object_is_type(en, json_type_array))
        return err_set(e, EINVAL, "Invalid parameter type for 'enable', expected: array");
    for (size_t i = 0; i < json_object_array_length(en); i++) {
        struct json_object *cap = json_object_array_get_idx(en, i);
        if (!json_object_is_type(cap, json_type_string))
            return err_set(e, EINVAL, "Invalid parameter type for 'enable[%zu]', expected: string", i);
        return err_set(e, EINVAL, "Capability '%.100s' not available", json_object_get_string(cap));
    }
    return 0;
}

static int cmd_query_version(void *opaque, struct json_object *args,
                             struct json_object **ret, enum control_err_class *cls,
                             struct err *e)
{
    int r = control_args_only(args, NULL, e);
    if (r < 0)
        return r;
    struct json_object *g = control_greeting();
    struct json_object *qmp, *ver;
    json_object_object_get_ex(g, "QMP", &qmp);
    json_object_object_get_ex(qmp, "version", &ver);
    *ret = json_object_get(ver);
    json_object_put(g);
    return 0;
}

static int cmd_query_commands(void *opaque, struct json_object *args,
                              struct json_object **ret, enum control_err_class *cls,
                              struct err *e)
{
    struct control *c = opaque;
    int r = control_args_only(args, NULL, e);
    if (r < 0)
        return r;
    struct json_object *list = json_object_new_array();
    for (struct control_cmd *k = c->cmds; k; k = k->next) {
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(k->name));
        json_object_array_add(list, o);
    }
    *ret = list;
    return 0;
}

int control_register_builtins(struct control *c)
{
    int r;
    if ((r = control_register(c, "qmp_capabilities", cmd_qmp_capabilities, c)) < 0 ||
        (r = control_register(c, "query-version", cmd_query_version, c)) < 0 ||
        (r = control_register(c, "query-commands", cmd_query_commands, c)) < 0)
        return r;
    return 0;
}
