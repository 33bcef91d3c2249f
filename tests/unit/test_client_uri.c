/* Connection URIs of the client library: what is accepted, what CONNECT_OPEN
 * is sent, which socket is used, and what is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/uri.h"

static void test_uri_system(void **state)
{
    struct client_uri u;
    struct err e = {0};
    assert_int_equal(client_uri_parse("cvirt:///system", &u, &e), 0);
    assert_string_equal(u.driver, "cvirt");
    assert_string_equal(u.transport, "");
    assert_string_equal(u.path, "/system");
    assert_string_equal(u.name, "cvirt:///system");
    char sock[CLIENT_SOCK_MAX];
    assert_int_equal(client_uri_socket(&u, false, sock, sizeof(sock), &e), 0);
    assert_string_equal(sock, "/run/cvirt/cvirt-sock");
    assert_int_equal(client_uri_socket(&u, true, sock, sizeof(sock), &e), 0);
    assert_string_equal(sock, "/run/cvirt/cvirt-sock-ro");
}

static void test_uri_qemu_unix_socket(void **state)
{
    struct client_uri u;
    struct err e = {0};
    const char *s = "qemu+unix:///system?socket=/tmp/a%20b/cvirt-sock";
    assert_int_equal(client_uri_parse(s, &u, &e), 0);
    assert_string_equal(u.uri, s);
    assert_string_equal(u.driver, "qemu");
    assert_string_equal(u.transport, "unix");
    assert_string_equal(u.socket, "/tmp/a b/cvirt-sock");
    /* The transport and socket= stay on this side, as libvirt does. */
    assert_string_equal(u.name, "qemu:///system");
    char sock[CLIENT_SOCK_MAX];
    /* An explicit socket wins even for a read-only connection. */
    assert_int_equal(client_uri_socket(&u, true, sock, sizeof(sock), &e), 0);
    assert_string_equal(sock, "/tmp/a b/cvirt-sock");
}

static void test_uri_other_params_kept(void **state)
{
    struct client_uri u;
    struct err e = {0};
    assert_int_equal(client_uri_parse("cvirt+unix:///session?mode=legacy&socket=/s&x=1",
                                      &u, &e), 0);
    assert_string_equal(u.socket, "/s");
    assert_string_equal(u.name, "cvirt:///session?mode=legacy&x=1");
}

static void test_uri_session_socket(void **state)
{
    struct client_uri u;
    struct err e = {0};
    char sock[CLIENT_SOCK_MAX];
    assert_int_equal(client_uri_parse("cvirt:///session", &u, &e), 0);
    setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
    assert_int_equal(client_uri_socket(&u, false, sock, sizeof(sock), &e), 0);
    assert_string_equal(sock, "/run/user/1000/cvirt/cvirt-sock");
    unsetenv("XDG_RUNTIME_DIR");
    setenv("HOME", "/home/u", 1);
    assert_int_equal(client_uri_socket(&u, false, sock, sizeof(sock), &e), 0);
    assert_string_equal(sock, "/home/u/.cache/cvirt/cvirt-sock");
}

static void expect_refused(const char *s, int code, const char *part)
{
    struct client_uri u;
    struct err e = {0};
    assert_int_equal(client_uri_parse(s, &u, &e), -code);
    if (!strstr(e.msg, part))
        fail_msg("'%s': message '%s' does not name '%s'", s, e.msg, part);
}

static void test_uri_refused(void **state)
{
    expect_refused("xen:///system", EPROTONOSUPPORT, "'xen'");
    expect_refused("qemu+ssh://host/system", EPROTONOSUPPORT, "'ssh'");
    expect_refused("qemu+tcp:///system", EPROTONOSUPPORT, "'tcp'");
    expect_refused("qemu://host/system", EPROTONOSUPPORT, "'host'");
    expect_refused("qemu:///embed", EINVAL, "'/embed'");
    expect_refused("qemu:///", EINVAL, "'/'");
    expect_refused("qemu:/system", EINVAL, "malformed");
    expect_refused("://system", EINVAL, "malformed");
    expect_refused("", EINVAL, "empty");
    expect_refused("qemu+unix:///system?socket=/a%2", EINVAL, "%-escape");
    expect_refused("qemu+unix:///system?socket=/a%00b", EINVAL, "NUL");
}

static void test_uri_too_long(void **state)
{
    char s[2 * CLIENT_URI_MAX];
    int n = snprintf(s, sizeof(s), "qemu+unix:///system?socket=/");
    memset(s + n, 'a', 300);
    s[n + 300] = '\0';
    struct client_uri u;
    struct err e = {0};
    /* sun_path is 108 bytes: a longer socket path can't be used. */
    assert_int_equal(client_uri_parse(s, &u, &e), -ENAMETOOLONG);
    memset(s, 'a', sizeof(s) - 1);
    s[sizeof(s) - 1] = '\0';
    assert_int_equal(client_uri_parse(s, &u, &e), -ENAMETOOLONG);
}

static void test_uri_default(void **state)
{
    unsetenv("LIBVIRT_DEFAULT_URI");
    unsetenv("CVIRT_DEFAULT_URI");
    assert_string_equal(client_uri_default(),
                        geteuid() == 0 ? "cvirt:///system" : "cvirt:///session");
    setenv("CVIRT_DEFAULT_URI", "qemu:///session", 1);
    assert_string_equal(client_uri_default(), "qemu:///session");
    /* libvirt's variable comes first, so existing setups keep working. */
    setenv("LIBVIRT_DEFAULT_URI", "qemu:///system", 1);
    assert_string_equal(client_uri_default(), "qemu:///system");
    setenv("LIBVIRT_DEFAULT_URI", "", 1);
    assert_string_equal(client_uri_default(), "qemu:///session");
    unsetenv("LIBVIRT_DEFAULT_URI");
    unsetenv("CVIRT_DEFAULT_URI");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uri_system),
        cmocka_unit_test(test_uri_qemu_unix_socket),
        cmocka_unit_test(test_uri_other_params_kept),
        cmocka_unit_test(test_uri_session_socket),
        cmocka_unit_test(test_uri_refused),
        cmocka_unit_test(test_uri_too_long),
        cmocka_unit_test(test_uri_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
