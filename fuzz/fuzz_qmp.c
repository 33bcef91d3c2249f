/* A control-socket client's bytes fed to the QMP framing and dispatcher:
 * whatever a client sends, the server must answer with well-formed replies
 * or drop it, never crash, leak or read past what it was given.
 *
 * Input: byte 0 is how many bytes go into each feed call (1..256, so that
 * requests split across reads are covered); the rest is the client's
 * stream. A fake command table stands in for the VM's commands so the
 * argument checkers see typed, missing and unexpected members. */
#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/control.h"

#ifdef FUZZ_RENAME
#define LLVMFuzzerTestOneInput fuzz_qmp_one
#endif
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int cmd_typed(void *opaque, struct json_object *args, struct json_object **ret,
                     enum control_err_class *cls, struct err *e)
{
    static const char *const allowed[] = { "n", "flag", "name", NULL };
    int64_t n = 0;
    bool flag = false;
    const char *name = "";
    int r;
    (void)opaque;
    if ((r = control_args_only(args, allowed, e)) < 0)
        return r;
    if ((r = control_arg_int(args, "n", true, &n, e)) < 0)
        return r;
    r = control_arg_bool(args, "flag", false, &flag, e);
    if (r < 0 && r != -ENOENT)
        return r;
    r = control_arg_str(args, "name", false, &name, e);
    if (r < 0 && r != -ENOENT)
        return r;
    if (flag && strcmp(name, "dev0") != 0) {
        *cls = CONTROL_ERR_DEVICE_NOT_FOUND;
        return err_set(e, ENODEV, "Device '%s' not found", name);
    }
    *ret = json_object_new_object();
    json_object_object_add(*ret, "n", json_object_new_int64(n));
    json_object_object_add(*ret, "name", json_object_new_string(name));
    return 0;
}

static int cmd_fail(void *opaque, struct json_object *args, struct json_object **ret,
                    enum control_err_class *cls, struct err *e)
{
    (void)opaque; (void)args; (void)ret; (void)cls; (void)e;
    return -EIO;
}

/* Every reply is an object with exactly one of return, error, QMP. */
static void check_reply(void *opaque, struct json_object *reply)
{
    unsigned *n = opaque;
    if (!reply || !json_object_is_type(reply, json_type_object))
        abort();
    int kinds = json_object_object_get_ex(reply, "return", NULL) +
                json_object_object_get_ex(reply, "error", NULL) +
                json_object_object_get_ex(reply, "QMP", NULL);
    if (kinds != 1)
        abort();
    struct json_object *err, *cls, *desc;
    if (json_object_object_get_ex(reply, "error", &err) &&
        (!json_object_object_get_ex(err, "class", &cls) ||
         !json_object_object_get_ex(err, "desc", &desc) ||
         !json_object_is_type(cls, json_type_string) ||
         !json_object_is_type(desc, json_type_string)))
        abort();
    /* serialising walks the whole reply */
    if (!json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN))
        abort();
    json_object_put(reply);
    (*n)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = (size_t)data[0] + 1;
    data++;
    size--;

    struct control *c;
    struct err e = { 0 };
    if (control_new(&c, NULL, &e) < 0)
        abort();
    if (control_register(c, "typed", cmd_typed, NULL) < 0 ||
        control_register(c, "fail", cmd_fail, NULL) < 0)
        abort();
    struct control_session s;
    control_session_init(&s);
    unsigned replies = 0;
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        int r = control_session_feed(c, &s, (const char *)data + off, n, check_reply, &replies);
        if (r == -E2BIG)
            break;              /* the server drops this client */
        if (r < 0)
            abort();            /* no other failure is documented */
    }
    /* Every reply consumes at least one byte of the stream. */
    if (replies > size)
        abort();
    control_session_fini(&s);
    control_free(c);
    return 0;
}
