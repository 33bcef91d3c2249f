/* The hotplug commands' argument checks and bookkeeping, on a VM without
 * KVM or a PCI bus: blockdev-add shapes and refusals (checked against real
 * files: a raw image, a qcow2 one made by the test, a missing one),
 * blockdev-del, device_add and device_del refusals, query-pci without a
 * bus. Plugging into a live guest is tests/integration/vmm_hotplug.sh. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/control.h"
#include "vmm/control_hotplug.h"
#include "vmm/vm.h"

struct fixture {
    struct control *c;
    struct control_session s;
    struct vm *vm;
    char dir[64];
    char raw[128], missing[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct err e = { 0 };
    f->vm = calloc(1, sizeof(*f->vm));
    assert_non_null(f->vm);
    assert_int_equal(control_new(&f->c, NULL, &e), 0);
    assert_int_equal(control_hotplug_register(f->c, f->vm, NULL, &e), 0);
    control_session_init(&f->s);
    strcpy(f->dir, "/tmp/test_hotplug.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->raw, sizeof(f->raw), "%s/disk.img", f->dir);
    snprintf(f->missing, sizeof(f->missing), "%s/none.img", f->dir);
    int fd = open(f->raw, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 1 << 20), 0);
    close(fd);
    struct json_object *r = control_session_handle(f->c, &f->s,
        "{\"execute\": \"qmp_capabilities\"}", 31);
    json_object_put(r);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    control_hotplug_fini(f->vm);
    control_session_fini(&f->s);
    control_free(f->c);
    unlink(f->raw);
    rmdir(f->dir);
    free(f->vm);
    free(f);
    return 0;
}

/* Runs a command; returns the reply (caller puts it). */
static struct json_object *run(struct fixture *f, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof(buf));
    return control_session_handle(f->c, &f->s, buf, (size_t)n);
}

static void expect_ok(struct json_object *r)
{
    struct json_object *ret;
    if (!json_object_object_get_ex(r, "return", &ret))
        fail_msg("expected success, got %s", json_object_to_json_string(r));
    json_object_put(r);
}

/* Checks the error class and that desc contains want. */
static void expect_err(struct json_object *r, const char *cls, const char *want)
{
    struct json_object *err, *c, *d;
    if (!json_object_object_get_ex(r, "error", &err))
        fail_msg("expected an error, got %s", json_object_to_json_string(r));
    assert_true(json_object_object_get_ex(err, "class", &c));
    assert_true(json_object_object_get_ex(err, "desc", &d));
    assert_string_equal(json_object_get_string(c), cls);
    if (!strstr(json_object_get_string(d), want))
        fail_msg("'%s' does not contain '%s'", json_object_get_string(d), want);
    json_object_put(r);
}

static void test_blockdev_add_shapes(void **state)
{
    struct fixture *f = *state;
    expect_ok(run(f, "{\"execute\": \"blockdev-add\", \"arguments\": {\"driver\": \"raw\","
                  " \"node-name\": \"a\", \"file\": \"%s\"}}", f->raw));
    expect_ok(run(f, "{\"execute\": \"blockdev-add\", \"arguments\": {\"driver\": \"raw\","
                  " \"node-name\": \"b.1_x-y\", \"read-only\": true, \"cache\": {\"direct\": false},"
                  " \"file\": {\"driver\": \"file\", \"filename\": \"%s\"}}}", f->raw));
    expect_err(run(f, "{\"execute\": \"blockdev-add\", \"arguments\": {\"driver\": \"raw\","
                   " \"node-name\": \"a\", \"file\": \"%s\"}}", f->raw),
               "GenericError", "Duplicate nodes with node-name='a'");
    expect_ok(run(f, "{\"execute\": \"blockdev-del\", \"arguments\": {\"node-name\": \"a\"}}"));
    expect_ok(run(f, "{\"execute\": \"blockdev-add\", \"arguments\": {\"driver\": \"raw\","
                  " \"node-name\": \"a\", \"file\": \"%s\"}}", f->raw));
}

static void test_blockdev_add_refusals(void **state)
{
    struct fixture *f = *state;
    expect_err(run(f, "{\"execute\": \"blockdev-add\", \"arguments\": {\"driver\": \"raw\","
                   " \"node-name\": \"m\", \"file\": \"%s\"}}", f->missing),
               "GenericError", f->missing);
    /* A raw file is not a qcow2 image: the header check refuses it. */
    expect_err(run(f, "{\"execute\": \"blockdev-add\", \"arguments\": {\"driver\": \"qcow2\","
                   " \"node-name\": \"q\", \"file\": \"%s\"}}", f->raw),
               "GenericError", "");
    expect_err(run(f, "{\"execute\": \"blockdev-add\", \"arguments\": {\"driver\": \"vmdk\","
                   " \"node-name\": \"v\", \"file\": \"%s\"}}", f->raw),
               "GenericError", "vmdk");
    expect_err(run(f, "{\"execute\": \"blockdev-add\", \"arguments\": {\"driver\": \"raw\","
                   " \"node-name\": \"1bad\", \"file\": \"%s\"}}", f->raw),
               "GenericError", "Invalid node-name");
    expect_err(run(f, "{\"execute\": \"blockdev-add\", \"arguments\": {\"driver\": \"raw\","
                   " \"node-name\": \"abcdefghijklmnopqrstuvwxyz012345\", \"file\": \"%s\"}}",
                   f->raw),
               "GenericError", "Invalid node-name");
    expect_err(run(f, "{\"execute\": \"blockdev-add\", \"arguments\": {\"driver\": \"raw\","
                   " \"node-name\": \"c\", \"file\": \"%s,format=qcow2\"}}", f->raw),
               "GenericError", "','");
    expect_err(run(f, "{\"execute\": \"blockdev-add\", \"arguments\": {\"driver\": \"raw\","
                   " \"node-name\": \"c\", \"file\": 7}}"),
               "GenericError", "Invalid parameter type for 'file'");
    expect_err(run(f, "{\"execute\": \"blockdev-add\", \"arguments\": {\"driver\": \"raw\","
                   " \"node-name\": \"c\", \"file\": {\"driver\": \"nbd\", \"filename\": \"x\"}}}"),
               "GenericError", "nbd");
    expect_err(run(f, "{\"execute\": \"blockdev-add\", \"arguments\": {\"driver\": \"raw\","
                   " \"node-name\": \"c\"}}"),
               "GenericError", "Parameter 'file' is missing");
    expect_err(run(f, "{\"execute\": \"blockdev-add\", \"arguments\": {\"driver\": \"raw\","
                   " \"node-name\": \"c\", \"file\": \"%s\", \"read-only\": \"yes\"}}", f->raw),
               "GenericError", "read-only");
    expect_err(run(f, "{\"execute\": \"blockdev-add\", \"arguments\": {\"driver\": \"raw\","
                   " \"node-name\": \"c\", \"file\": \"%s\", \"size\": 1}}", f->raw),
               "GenericError", "Parameter 'size' is unexpected");
    expect_err(run(f, "{\"execute\": \"blockdev-del\", \"arguments\": {\"node-name\": \"c\"}}"),
               "GenericError", "Failed to find node with node-name='c'");
}

static void test_device_refusals(void **state)
{
    struct fixture *f = *state;
    expect_ok(run(f, "{\"execute\": \"blockdev-add\", \"arguments\": {\"driver\": \"raw\","
                  " \"node-name\": \"a\", \"file\": \"%s\"}}", f->raw));
    expect_err(run(f, "{\"execute\": \"device_add\", \"arguments\": {\"driver\": \"e1000\","
                   " \"id\": \"n\"}}"),
               "GenericError", "'e1000' is not a valid device model name");
    expect_err(run(f, "{\"execute\": \"device_add\", \"arguments\": {\"driver\": "
                   "\"virtio-blk-pci\", \"id\": \"d\", \"drive\": \"zz\"}}"),
               "GenericError", "can't find value 'zz'");
    expect_err(run(f, "{\"execute\": \"device_add\", \"arguments\": {\"driver\": "
                   "\"virtio-blk-pci\", \"drive\": \"a\"}}"),
               "GenericError", "Parameter 'id' is missing");
    expect_err(run(f, "{\"execute\": \"device_add\", \"arguments\": {\"driver\": "
                   "\"virtio-blk-pci\", \"id\": \"d\", \"drive\": \"a\", \"bus\": \"pci.1\"}}"),
               "GenericError", "Bus 'pci.1' not found");
    expect_err(run(f, "{\"execute\": \"device_add\", \"arguments\": {\"driver\": "
                   "\"virtio-blk-pci\", \"id\": \"d\", \"drive\": \"a\","
                   " \"serial\": \"123456789012345678901\"}}"),
               "GenericError", "serial");
    /* Everything else is right: only the missing bus is left to refuse. */
    expect_err(run(f, "{\"execute\": \"device_add\", \"arguments\": {\"driver\": "
                   "\"virtio-blk-pci\", \"id\": \"d\", \"drive\": \"a\"}}"),
               "GenericError", "no PCI bus");
    assert_int_equal(control_hotplug_count(f->vm), 0);
    expect_err(run(f, "{\"execute\": \"device_del\", \"arguments\": {\"id\": \"d\"}}"),
               "DeviceNotFound", "Device 'd' not found");
    expect_err(run(f, "{\"execute\": \"device_del\"}"), "GenericError",
               "Parameter 'id' is missing");
    /* The refused device_add left the node free. */
    expect_ok(run(f, "{\"execute\": \"blockdev-del\", \"arguments\": {\"node-name\": \"a\"}}"));
}

static void test_query_pci_without_bus(void **state)
{
    struct fixture *f = *state;
    struct json_object *r = run(f, "{\"execute\": \"query-pci\"}");
    struct json_object *ret;
    assert_true(json_object_object_get_ex(r, "return", &ret));
    assert_true(json_object_is_type(ret, json_type_array));
    assert_int_equal(json_object_array_length(ret), 0);
    json_object_put(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_blockdev_add_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blockdev_add_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_pci_without_bus, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
