/* Network definitions: XML parse and format, the refusals of bad input,
 * conflicts between networks, and the driver's files (define, autostart,
 * undefine) with host changes off. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/network.h"
#include "daemon/uuid.h"

static const char nat_xml[] =
    "<network>\n"
    "  <name>default</name>\n"
    "  <uuid>0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0</uuid>\n"
    "  <forward mode='nat'/>\n"
    "  <bridge name='virbr0' stp='on' delay='0'/>\n"
    "  <mac address='52:54:00:0a:0b:0c'/>\n"
    "  <ip address='192.168.122.1' netmask='255.255.255.0'>\n"
    "    <dhcp>\n"
    "      <range start='192.168.122.2' end='192.168.122.254'/>\n"
    "      <host mac='52:54:00:00:00:01' name='web' ip='192.168.122.10'/>\n"
    "    </dhcp>\n"
    "  </ip>\n"
    "</network>\n";

static struct network_def *parse_ok(const char *xml)
{
    struct network_def *d = NULL;
    struct err e = { 0 };
    int r = network_def_parse(xml, &d, &e);
    if (r < 0)
        fail_msg("parse failed: %s", e.msg);
    return d;
}

/* The error message of a refused document, or "" if it was accepted. */
static const char *parse_err(const char *xml)
{
    static struct err e;
    struct network_def *d = NULL;
    memset(&e, 0, sizeof(e));
    if (network_def_parse(xml, &d, &e) == 0) {
        network_def_free(d);
        return "";
    }
    assert_null(d);
    assert_true(e.code != 0);
    return e.msg;
}

static void test_parse_nat(void **state)
{
    (void)state;
    struct network_def *d = parse_ok(nat_xml);
    assert_string_equal(d->name, "default");
    assert_int_equal(d->forward, NETWORK_NAT);
    assert_string_equal(d->bridge, "virbr0");
    assert_true(d->stp);
    assert_int_equal(d->addr, 0xc0a87a01);
    assert_int_equal(d->prefix, 24);
    assert_true(d->has_dhcp);
    assert_int_equal(d->range_start, 0xc0a87a02);
    assert_int_equal(d->range_end, 0xc0a87afe);
    assert_int_equal(d->nhosts, 1);
    assert_string_equal(d->hosts[0].name, "web");
    assert_int_equal(d->hosts[0].ip, 0xc0a87a0a);
    char uuid[UUID_STRING_LEN];
    uuid_format(d->uuid, uuid);
    assert_string_equal(uuid, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
    network_def_free(d);
}

/* Format, parse again, format again: the same text, carrying every field. */
static void test_format_roundtrip(void **state)
{
    (void)state;
    struct network_def *d = parse_ok(nat_xml);
    char *x1 = network_def_format(d);
    assert_non_null(x1);
    assert_non_null(strstr(x1, "<forward mode='nat'>"));
    assert_non_null(strstr(x1, "<bridge name='virbr0' stp='on' delay='0'/>"));
    assert_non_null(strstr(x1, "<mac address='52:54:00:0a:0b:0c'/>"));
    assert_non_null(strstr(x1, "<ip address='192.168.122.1' netmask='255.255.255.0'>"));
    assert_non_null(strstr(x1, "<range start='192.168.122.2' end='192.168.122.254'/>"));
    assert_non_null(strstr(x1, "<host mac='52:54:00:00:00:01' name='web' ip='192.168.122.10'/>"));
    struct network_def *d2 = parse_ok(x1);
    char *x2 = network_def_format(d2);
    assert_string_equal(x1, x2);
    free(x1);
    free(x2);
    network_def_free(d);
    network_def_free(d2);
}

static void test_parse_isolated_and_bridge(void **state)
{
    (void)state;
    struct network_def *d = parse_ok("<network><name>iso</name>"
                                     "<ip address='10.0.0.1' prefix='16'/></network>");
    assert_int_equal(d->forward, NETWORK_ISOLATED);
    assert_null(d->bridge);        /* the driver picks virbrN */
    assert_true(d->has_mac);       /* generated, libvirt's prefix */
    assert_int_equal(d->mac[0], 0x52);
    assert_int_equal(d->prefix, 16);
    assert_false(uuid_is_null(d->uuid));
    char *x = network_def_format(d);
    assert_null(strstr(x, "<forward"));
    assert_non_null(strstr(x, "netmask='255.255.0.0'"));
    free(x);
    network_def_free(d);

    d = parse_ok("<network><name>host</name><forward mode='bridge'/>"
                 "<bridge name='br0'/></network>");
    assert_int_equal(d->forward, NETWORK_BRIDGE);
    assert_string_equal(d->bridge, "br0");
    assert_false(d->has_mac);
    x = network_def_format(d);
    assert_non_null(strstr(x, "<forward mode='bridge'/>\n  <bridge name='br0'/>"));
    free(x);
    network_def_free(d);
}

static void test_refusals(void **state)
{
    (void)state;
    assert_non_null(strstr(parse_err("<network><name>x</name>"), "not well-formed"));
    assert_non_null(strstr(parse_err("<pool/>"), "<network>"));
    assert_non_null(strstr(parse_err("<network/>"), "missing <name>"));
    assert_non_null(strstr(parse_err("<network><name>a/b</name></network>"), "a/b"));
    assert_non_null(strstr(parse_err("<network><name>n</name><uuid>zz</uuid></network>"),
                           "malformed uuid"));
    assert_non_null(strstr(parse_err("<network><name>n</name><forward mode='route'/>"
                                     "<ip address='10.1.0.1' prefix='24'/></network>"),
                           "route"));
    assert_non_null(strstr(parse_err("<network><name>n</name><forward mode='bridge'/>"
                                     "</network>"), "needs <bridge"));
    assert_non_null(strstr(parse_err("<network><name>n</name><forward mode='nat'/>"
                                     "</network>"), "needs an <ip"));
    assert_non_null(strstr(parse_err("<network><name>n</name>"
                                     "<bridge name='waytoolongbridgename0'/></network>"),
                           "not an interface name"));
    assert_non_null(strstr(parse_err("<network><name>n</name>"
                                     "<ip address='10.1.0.1' netmask='255.0.255.0'/>"
                                     "</network>"), "prefix"));
    assert_non_null(strstr(parse_err("<network><name>n</name>"
                                     "<ip address='10.1.0.0' prefix='24'/></network>"),
                           "network or broadcast"));
    assert_non_null(strstr(parse_err("<network><name>n</name>"
                                     "<ip address='300.1.0.1' prefix='24'/></network>"),
                           "not an IPv4 address"));
    assert_non_null(strstr(parse_err("<network><name>n</name><ip family='ipv6' "
                                     "address='fd00::1' prefix='64'/></network>"), "IPv4"));
}

static void test_bad_ranges(void **state)
{
    (void)state;
#define NET_RANGE(s, e) "<network><name>r</name><ip address='10.2.0.1' prefix='24'><dhcp>" \
                        "<range start='" s "' end='" e "'/></dhcp></ip></network>"
    assert_string_equal(parse_err(NET_RANGE("10.2.0.10", "10.2.0.20")), "");
    assert_non_null(strstr(parse_err(NET_RANGE("10.2.0.10", "10.2.1.20")),
                           "not entirely within"));
    assert_non_null(strstr(parse_err(NET_RANGE("10.3.0.10", "10.3.0.20")),
                           "not entirely within"));
    assert_non_null(strstr(parse_err(NET_RANGE("10.2.0.20", "10.2.0.10")), "reversed"));
    assert_non_null(strstr(parse_err(NET_RANGE("10.2.0.1", "10.2.0.20")), "own address"));
    assert_non_null(strstr(parse_err(NET_RANGE("10.2.0.10", "10.2.0.255")),
                           "not entirely within"));
    assert_non_null(strstr(parse_err("<network><name>r</name><ip address='10.2.0.1' "
                                     "prefix='24'><dhcp><host mac='52:54:00:00:00:01' "
                                     "ip='10.9.0.5'/></dhcp></ip></network>"),
                           "not in the network's subnet"));
    assert_non_null(strstr(parse_err("<network><name>r</name><ip address='10.2.0.1' "
                                     "prefix='24'><dhcp><host mac='nope' ip='10.2.0.5'/>"
                                     "</dhcp></ip></network>"), "mac"));
#undef NET_RANGE
}

struct fixture {
    char root[64], config[128], run[128], state[128];
    struct network_driver d;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->root, sizeof(f->root), "/tmp/test_network.XXXXXX");
    if (!f || !mkdtemp(f->root))
        return -1;
    snprintf(f->config, sizeof(f->config), "%s/etc", f->root);
    snprintf(f->run, sizeof(f->run), "%s/run", f->root);
    snprintf(f->state, sizeof(f->state), "%s/lib", f->root);
    f->d.no_host = true;
    struct err e = { 0 };
    if (network_init(&f->d, f->config, f->run, f->state, &e) < 0)
        return -1;
    f->d.no_host = true;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    network_fini(&f->d);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->root);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static int define(struct fixture *f, const char *xml, struct err *e)
{
    struct network *n;
    return network_define(&f->d, xml, &n, e);
}

static void test_conflicts(void **state)
{
    struct fixture *f = *state;
    struct err e = { 0 };
    assert_int_equal(define(f, nat_xml, &e), 0);
    /* Same subnet, another name. */
    memset(&e, 0, sizeof(e));
    assert_int_equal(define(f, "<network><name>b</name><bridge name='virbr5'/>"
                               "<ip address='192.168.122.129' prefix='25'/></network>", &e),
                     -EEXIST);
    assert_non_null(strstr(e.msg, "overlaps network 'default'"));
    /* A wider subnet holding it overlaps too. */
    memset(&e, 0, sizeof(e));
    assert_int_equal(define(f, "<network><name>c</name>"
                               "<ip address='192.168.1.1' prefix='16'/></network>", &e),
                     -EEXIST);
    /* The bridge of another network. */
    memset(&e, 0, sizeof(e));
    assert_int_equal(define(f, "<network><name>d</name><bridge name='virbr0'/>"
                               "<ip address='10.5.0.1' prefix='24'/></network>", &e),
                     -EEXIST);
    assert_non_null(strstr(e.msg, "bridge name 'virbr0' is already in use"));
    /* The uuid of another network under a new name. */
    memset(&e, 0, sizeof(e));
    assert_int_equal(define(f, "<network><name>e</name>"
                               "<uuid>0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0</uuid></network>",
                            &e), -EEXIST);
    /* The same name with another uuid. */
    memset(&e, 0, sizeof(e));
    assert_int_equal(define(f, "<network><name>default</name>"
                               "<uuid>11111111-2222-3333-4444-555555555555</uuid></network>",
                            &e), -EEXIST);
    /* A disjoint network gets the next free bridge. */
    memset(&e, 0, sizeof(e));
    struct network *n;
    assert_int_equal(network_define(&f->d, "<network><name>iso</name>"
                                    "<ip address='10.6.0.1' prefix='24'/></network>", &n, &e),
                     0);
    assert_string_equal(n->def->bridge, "virbr1");
    assert_int_equal(f->d.nnets, 2);
    /* Redefining with the same name and uuid replaces the definition. */
    assert_int_equal(define(f, "<network><name>default</name>"
                               "<uuid>0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0</uuid>"
                               "<bridge name='virbr0'/>"
                               "<ip address='192.168.123.1' prefix='24'/></network>", &e), 0);
    assert_int_equal(f->d.nnets, 2);
    assert_int_equal(network_find_name(&f->d, "default")->def->addr, 0xc0a87b01);
}

static void test_files(void **state)
{
    struct fixture *f = *state;
    struct err e = { 0 };
    struct network *n;
    char path[256];
    assert_int_equal(network_define(&f->d, nat_xml, &n, &e), 0);
    snprintf(path, sizeof(path), "%s/networks/default.xml", f->config);
    assert_int_equal(access(path, R_OK), 0);
    assert_int_equal(network_set_autostart(&f->d, n, true, &e), 0);
    snprintf(path, sizeof(path), "%s/networks/autostart/default.xml", f->config);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    /* Starting with host changes off still records the run state. */
    assert_int_equal(network_start(&f->d, n, &e), 0);
    assert_true(n->active);
    assert_int_equal(network_start(&f->d, n, &e), -EBUSY);

    /* A second driver on the same folders sees it defined, autostarted
     * and (its bridge not checked) still running. */
    struct network_driver d2 = { .no_host = true };
    assert_int_equal(network_init(&d2, f->config, f->run, f->state, &e), 0);
    struct network *n2 = network_find_name(&d2, "default");
    assert_non_null(n2);
    assert_true(n2->persistent && n2->autostart && n2->active);
    assert_memory_equal(n2->def->uuid, n->def->uuid, 16);
    network_fini(&d2);

    assert_int_equal(network_destroy(&f->d, n, &e), 0);
    assert_false(n->active);
    assert_int_equal(network_undefine(&f->d, n, &e), 0);
    assert_int_equal(lstat(path, &st), -1);
    snprintf(path, sizeof(path), "%s/networks/default.xml", f->config);
    assert_int_equal(access(path, F_OK), -1);
    assert_null(network_find_name(&f->d, "default"));
}

static void test_leases(void **state)
{
    struct fixture *f = *state;
    struct err e = { 0 };
    struct network *n;
    assert_int_equal(network_define(&f->d, nat_xml, &n, &e), 0);
    char path[256];
    snprintf(path, sizeof(path), "%s/networks/default.leases", f->state);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp, "1700000000 52:54:00:00:00:01 192.168.122.10 web 01:52:54:00:00:00:01\n"
                "garbage line\n"
                "1700000100 52:54:00:00:00:02 192.168.122.77 * *\n");
    fclose(fp);
    struct network_lease *l;
    size_t cnt;
    assert_int_equal(network_leases(&f->d, n, &l, &cnt, &e), 0);
    assert_int_equal(cnt, 2);
    assert_int_equal(l[0].expiry, 1700000000);
    assert_string_equal(l[0].ip, "192.168.122.10");
    assert_string_equal(l[0].hostname, "web");
    assert_string_equal(l[1].mac, "52:54:00:00:00:02");
    assert_string_equal(l[1].hostname, "");
    assert_string_equal(l[1].clientid, "");
    free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_nat),
        cmocka_unit_test(test_format_roundtrip),
        cmocka_unit_test(test_parse_isolated_and_bridge),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_bad_ranges),
        cmocka_unit_test_setup_teardown(test_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leases, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
