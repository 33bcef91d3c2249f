/* The QMP server's protocol without sockets or a VM: framing, request
 * checks, negotiation, dispatch to a fake command table, argument checks. */
#include <errno.h>
#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/control.h"

/* add {a: int, b: int, scale?: int} -> {"sum": (a+b)*scale} */
static int cmd_add(void *opaque, struct json_object *args, struct json_object **ret,
                   enum control_err_class *cls, struct err *e)
{
    static const char *const allowed[] = { "a", "b", "scale", NULL };
    int64_t a, b, scale = 1;
    int r;
    if ((r = control_args_only(args, allowed, e)) < 0 ||
        (r = control_arg_int(args, "a", true, &a, e)) < 0 ||
        (r = control_arg_int(args, "b", true, &b, e)) < 0)
        return r;
    r = control_arg_int(args, "scale", false, &scale, e);
    if (r < 0 && r != -ENOENT)
        return r;
    *ret = json_object_new_object();
    json_object_object_add(*ret, "sum", json_object_new_int64((a + b) * scale));
    return 0;
}

static int cmd_find(void *opaque, struct json_object *args, struct json_object **ret,
                    enum control_err_class *cls, struct err *e)
{
    const char *name;
    bool strict = false;
    int r = control_arg_str(args, "name", true, &name, e);
    if (r < 0)
        return r;
    r = control_arg_bool(args, "strict", false, &strict, e);
    if (r < 0 && r != -ENOENT)
        return r;
    if (strcmp(name, "disk0") != 0) {
        *cls = CONTROL_ERR_DEVICE_NOT_FOUND;
        return err_set(e, ENODEV, "Device '%s' not found", name);
    }
    return 0;  /* {} */
}

static int cmd_fail_silently(void *opaque, struct json_object *args, struct json_object **ret,
                             enum control_err_class *cls, struct err *e)
{
    return -EIO;
}

struct fixture {
    struct control *c;
    struct control_session s;
    struct json_object *replies[16];
    unsigned n;
};

static void collect(void *opaque, struct json_object *reply)
{
    struct fixture *f = opaque;
    assert_true(f->n < 16);
    f->replies[f->n++] = reply;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct err e = { 0 };
    assert_int_equal(control_new(&f->c, NULL, &e), 0);
    assert_int_equal(control_register(f->c, "add", cmd_add, NULL), 0);
    assert_int_equal(control_register(f->c, "find", cmd_find, NULL), 0);
    assert_int_equal(control_register(f->c, "fail-silently", cmd_fail_silently, NULL), 0);
    control_session_init(&f->s);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    for (unsigned i = 0; i < f->n; i++)
        json_object_put(f->replies[i]);
    control_session_fini(&f->s);
    control_free(f->c);
    free(f);
    return 0;
}

/* Runs one request text; returns the reply (owned by the fixture). */
static struct json_object *run(struct fixture *f, const char *req)
{
    struct json_object *r = control_session_handle(f->c, &f->s, req, strlen(req));
    assert_non_null(r);
    collect(f, r);
    return r;
}

static const char *get_str(struct json_object *o, const char *path1, const char *path2)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, path1, &v))
        return NULL;
    if (path2 && !json_object_object_get_ex(v, path2, &v))
        return NULL;
    return json_object_get_string(v);
}

static void assert_error(struct json_object *r, const char *cls, const char *desc_part)
{
    const char *c = get_str(r, "error", "class"), *d = get_str(r, "error", "desc");
    assert_non_null(c);
    assert_string_equal(c, cls);
    assert_non_null(d);
    if (!strstr(d, desc_part))
        fail_msg("desc '%s' lacks '%s'", d, desc_part);
}

static void negotiate(struct fixture *f)
{
    struct json_object *r = run(f, "{\"execute\": \"qmp_capabilities\"}");
    assert_true(json_object_object_get_ex(r, "return", NULL));
}

static void test_greeting_shape(void **state)
{
    struct json_object *g = control_greeting();
    struct json_object *qmp, *ver, *q, *caps, *v;
    assert_true(json_object_object_get_ex(g, "QMP", &qmp));
    assert_true(json_object_object_get_ex(qmp, "version", &ver));
    assert_true(json_object_object_get_ex(ver, "qemu", &q));
    const char *keys[] = { "major", "minor", "micro" };
    for (unsigned i = 0; i < 3; i++) {
        assert_true(json_object_object_get_ex(q, keys[i], &v));
        assert_true(json_object_is_type(v, json_type_int));
    }
    assert_true(json_object_object_get_ex(ver, "package", &v));
    assert_true(json_object_is_type(v, json_type_string));
    assert_true(json_object_object_get_ex(qmp, "capabilities", &caps));
    assert_true(json_object_is_type(caps, json_type_array));
    json_object_put(g);
}

static void test_negotiation_first(void **state)
{
    struct fixture *f = *state;
    struct json_object *r = run(f, "{\"execute\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}");
    assert_error(r, "CommandNotFound", "qmp_capabilities");
    r = run(f, "{\"execute\": \"query-version\"}");
    assert_error(r, "CommandNotFound", "qmp_capabilities");
    negotiate(f);
    r = run(f, "{\"execute\": \"qmp_capabilities\"}");
    assert_error(r, "CommandNotFound", "already complete");
    /* Negotiation happened once and still holds. */
    r = run(f, "{\"execute\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}");
    struct json_object *ret, *sum;
    assert_true(json_object_object_get_ex(r, "return", &ret));
    assert_true(json_object_object_get_ex(ret, "sum", &sum));
    assert_int_equal(json_object_get_int64(sum), 3);
}

static void test_capabilities_enable(void **state)
{
    struct fixture *f = *state;
    struct json_object *r = run(f, "{\"execute\": \"qmp_capabilities\", "
                                   "\"arguments\": {\"enable\": [\"oob\"]}}");
    assert_error(r, "GenericError", "'oob'");
    assert_false(f->s.negotiated);
    r = run(f, "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": []}}");
    assert_true(json_object_object_get_ex(r, "return", NULL));
    assert_true(f->s.negotiated);
}

static void test_id_echoed(void **state)
{
    struct fixture *f = *state;
    negotiate(f);
    struct json_object *r = run(f, "{\"execute\": \"find\", \"arguments\": {\"name\": \"disk0\"},"
                                   " \"id\": {\"tag\": [1, \"x\"]}}");
    struct json_object *id, *ret;
    assert_true(json_object_object_get_ex(r, "id", &id));
    assert_string_equal(json_object_to_json_string_ext(id, JSON_C_TO_STRING_PLAIN),
                        "{\"tag\":[1,\"x\"]}");
    assert_true(json_object_object_get_ex(r, "return", &ret));
    assert_int_equal(json_object_object_length(ret), 0);
    r = run(f, "{\"id\": 42, \"execute\": \"nope\"}");
    assert_true(json_object_object_get_ex(r, "id", &id));
    assert_int_equal(json_object_get_int(id), 42);
    assert_error(r, "CommandNotFound", "nope");
    /* A request without an id gets a reply without one. */
    r = run(f, "{\"execute\": \"nope\"}");
    assert_false(json_object_object_get_ex(r, "id", NULL));
}

static void test_bad_requests(void **state)
{
    struct fixture *f = *state;
    negotiate(f);
    assert_error(run(f, "{\"execute\": }"), "GenericError", "JSON parse error");
    assert_error(run(f, "[1, 2]"), "GenericError", "must be a JSON object");
    assert_error(run(f, "42"), "GenericError", "QMP input must be a JSON object");
    assert_error(run(f, "\"text\""), "GenericError", "QMP input must be a JSON object");
    assert_error(run(f, "{\"arguments\": {}}"), "GenericError", "lacks member 'execute'");
    assert_error(run(f, "{\"execute\": 5}"), "GenericError", "'execute' must be a string");
    assert_error(run(f, "{\"execute\": \"add\", \"arguments\": [1]}"), "GenericError",
                 "'arguments' must be an object");
    assert_error(run(f, "{\"execute\": \"add\", \"colour\": 1}"), "GenericError",
                 "'colour' is unexpected");
    assert_error(run(f, "{\"execute\": \"add\"} x"), "GenericError", "JSON parse error");
    assert_error(run(f, "{\"execute\": \"add\""), "GenericError", "JSON parse error");
}

static void test_arguments(void **state)
{
    struct fixture *f = *state;
    negotiate(f);
    assert_error(run(f, "{\"execute\": \"add\", \"arguments\": {\"a\": \"1\", \"b\": 2}}"),
                 "GenericError", "Invalid parameter type for 'a', expected: integer");
    assert_error(run(f, "{\"execute\": \"add\", \"arguments\": {\"a\": 1}}"),
                 "GenericError", "Parameter 'b' is missing");
    assert_error(run(f, "{\"execute\": \"add\"}"), "GenericError", "Parameter 'a' is missing");
    assert_error(run(f, "{\"execute\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2, \"c\": 3}}"),
                 "GenericError", "Parameter 'c' is unexpected");
    assert_error(run(f, "{\"execute\": \"add\", \"arguments\": {\"a\": 1.5, \"b\": 2}}"),
                 "GenericError", "expected: integer");
    assert_error(run(f, "{\"execute\": \"find\", \"arguments\": {\"name\": 7}}"),
                 "GenericError", "Invalid parameter type for 'name', expected: string");
    assert_error(run(f, "{\"execute\": \"find\", \"arguments\": {\"name\": \"disk0\", "
                        "\"strict\": \"yes\"}}"),
                 "GenericError", "Invalid parameter type for 'strict', expected: boolean");
    struct json_object *r = run(f, "{\"execute\": \"add\", \"arguments\": "
                                   "{\"a\": 4, \"b\": 3, \"scale\": -2}}");
    struct json_object *ret, *sum;
    assert_true(json_object_object_get_ex(r, "return", &ret));
    assert_true(json_object_object_get_ex(ret, "sum", &sum));
    assert_int_equal(json_object_get_int64(sum), -14);
}

static void test_handler_errors(void **state)
{
    struct fixture *f = *state;
    negotiate(f);
    assert_error(run(f, "{\"execute\": \"find\", \"arguments\": {\"name\": \"disk9\"}}"),
                 "DeviceNotFound", "Device 'disk9' not found");
    /* A handler that forgot its message still gives the client one line. */
    assert_error(run(f, "{\"execute\": \"fail-silently\"}"), "GenericError", "fail-silently");
}

static void test_builtins(void **state)
{
    struct fixture *f = *state;
    negotiate(f);
    struct json_object *r = run(f, "{\"execute\": \"query-commands\"}"), *list;
    assert_true(json_object_object_get_ex(r, "return", &list));
    const char *want[] = { "qmp_capabilities", "query-version", "query-commands", "add", "find" };
    for (unsigned i = 0; i < 5; i++) {
        bool found = false;
        for (size_t j = 0; j < json_object_array_length(list); j++)
            found = found || !strcmp(get_str(json_object_array_get_idx(list, j), "name", NULL), want[i]);
        if (!found)
            fail_msg("query-commands lacks %s", want[i]);
    }
    r = run(f, "{\"execute\": \"query-version\"}");
    assert_non_null(get_str(r, "return", "package"));
    assert_error(run(f, "{\"execute\": \"query-version\", \"arguments\": {\"x\": 1}}"),
                 "GenericError", "'x' is unexpected");
    assert_int_equal(control_register(f->c, "add", cmd_add, NULL), -EEXIST);
}

static int feed(struct fixture *f, const char *data, size_t len)
{
    return control_session_feed(f->c, &f->s, data, len, collect, f);
}

static void test_framing(void **state)
{
    struct fixture *f = *state;
    /* Back to back, no newline, then one split byte by byte, with braces
     * and quotes inside strings. */
    const char *two = "{\"execute\":\"qmp_capabilities\",\"id\":1}"
                      "{\"execute\":\"find\",\"arguments\":{\"name\":\"}{\\\"]\"},\"id\":2}\r\n";
    assert_int_equal(feed(f, two, strlen(two)), 0);
    assert_int_equal(f->n, 2);
    assert_true(json_object_object_get_ex(f->replies[0], "return", NULL));
    assert_error(f->replies[1], "DeviceNotFound", "Device '}{\"]' not found");
    const char *split = "  {\"execute\": \"add\", \"arguments\": {\"a\": 20, \"b\": 22}, \"id\": 3}\n";
    for (size_t i = 0; i < strlen(split); i++) {
        assert_int_equal(feed(f, split + i, 1), 0);
        assert_int_equal(f->n, i + 1 < strlen(split) - 1 ? 2 : 3);
    }
    assert_non_null(strstr(json_object_to_json_string(f->replies[2]), "42"));
    /* Junk becomes one error and the next request still works. */
    const char *junk = "garbage}\n{\"execute\": \"nope\", \"id\": 4}\n";
    assert_int_equal(feed(f, junk, strlen(junk)), 0);
    assert_int_equal(f->n, 5);
    assert_error(f->replies[3], "GenericError", "JSON parse error");
    assert_error(f->replies[4], "CommandNotFound", "nope");
    /* A broken but balanced request: an error, and the stream goes on. */
    const char *broken = "{\"execute\": nope}{\"execute\": \"find\", \"arguments\": {\"name\": \"disk0\"}}";
    assert_int_equal(feed(f, broken, strlen(broken)), 0);
    assert_int_equal(f->n, 7);
    assert_error(f->replies[5], "GenericError", "JSON parse error");
    assert_true(json_object_object_get_ex(f->replies[6], "return", NULL));
    /* Nesting deeper than the parser takes: one error, no crash. */
    char deep[2001];
    memset(deep, '[', 1000);
    memset(deep + 1000, ']', 1000);
    deep[2000] = '\0';
    assert_int_equal(feed(f, deep, 2000), 0);
    assert_int_equal(f->n, 8);
    assert_error(f->replies[7], "GenericError", "JSON parse error");
}

static void test_request_too_long(void **state)
{
    struct fixture *f = *state;
    size_t len = CONTROL_MAX_LINE + 16;
    char *big = malloc(len);
    memset(big, ' ', len);
    memcpy(big, "{\"execute\": \"", 13);
    memset(big + 13, 'x', len - 13);
    assert_int_equal(feed(f, big, len), -E2BIG);
    assert_int_equal(f->n, 0);
    free(big);
    /* Just under the limit is fine. */
    control_session_fini(&f->s);
    control_session_init(&f->s);
    len = CONTROL_MAX_LINE;
    big = malloc(len);
    memset(big, ' ', len);
    const char *req = "{\"execute\": \"qmp_capabilities\", \"id\": \"";
    memcpy(big, req, strlen(req));
    memset(big + strlen(req), 'y', len - strlen(req) - 2);
    memcpy(big + len - 2, "\"}", 2);
    assert_int_equal(feed(f, big, len), 0);
    assert_int_equal(f->n, 1);
    assert_true(json_object_object_get_ex(f->replies[0], "return", NULL));
    free(big);
}

static void test_event_without_clients(void **state)
{
    struct fixture *f = *state;
    struct json_object *data = json_object_new_object();
    json_object_object_add(data, "guest", json_object_new_boolean(true));
    control_emit_event(f->c, "SHUTDOWN", data);     /* takes data: no leak under ASan */
    control_emit_event(f->c, "STOP", NULL);
    control_emit_event(NULL, "STOP", json_object_new_object());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greeting_shape),
        cmocka_unit_test_setup_teardown(test_negotiation_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capabilities_enable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_id_echoed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handler_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_builtins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_framing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_without_clients, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
