/* The QMP control socket. (First cut: the interface; the server follows.) */
#include "control.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

struct control_cmd {
    char *name;
    control_cmd_fn fn;
    void *opaque;
    struct control_cmd *next;
};

struct control {
    struct evloop *loop;
    struct control_cmd *cmds;
};

int control_new(struct control **out, struct evloop *loop, struct err *e)
{
    struct control *c = calloc(1, sizeof(*c));
    if (!c)
        return err_set(e, ENOMEM, "out of memory");
    c->loop = loop;
    *out = c;
    return 0;
}

int control_listen(struct control *c, const char *path, struct err *e)
{
    return err_set(e, ENOTSUP, "%s: the control socket is not ready yet", path);
}

void control_free(struct control *c)
{
    if (!c)
        return;
    while (c->cmds) {
        struct control_cmd *n = c->cmds->next;
        free(c->cmds->name);
        free(c->cmds);
        c->cmds = n;
    }
    free(c);
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
    k->next = c->cmds;
    c->cmds = k;
    return 0;
}

void control_emit_event(struct control *c, const char *name, struct json_object *data)
{
    json_object_put(data);
}

void control_flush(struct control *c) { }
