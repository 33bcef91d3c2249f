/* cvirsh's argument rules (virsh's): options, positional words, required
 * options, error messages; shell line splitting; scaled sizes; and the
 * real command table's option lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cvirsh.h"

static bool nop(struct cvirsh *ctl, const struct cvirsh_cmd *cmd) { return true; }

static const struct cvirsh_opt t_opts[] = {
    { "domain", CVIRSH_OT_DATA, CVIRSH_OPT_REQ, "domain" },
    { "size", CVIRSH_OT_INT, CVIRSH_OPT_REQ, "size" },
    { "config", CVIRSH_OT_BOOL, 0, "config" },
    { "bus", CVIRSH_OT_STRING, 0, "bus" },
    { "only-named", CVIRSH_OT_STRING, CVIRSH_OPT_NOPOS, "named" },
    { NULL, 0, 0, NULL },
};
static const struct cvirsh_cmd_def t_table[] = {
    { "setx", nop, t_opts, "set x", NULL, 0 },
    { NULL, NULL, NULL, NULL, NULL, 0 },
};

/* Parses a space-separated line against table; returns the rc. */
static int parse(const struct cvirsh_cmd_def *table, const char *line,
                 struct cvirsh_cmd *cmd, struct err *e, struct cvirsh_line *l)
{
    struct err se = {0};
    assert_int_equal(cvirsh_line_split(line, l, &se), 0);
    assert_int_equal(l->ncmds, 1);
    return cvirsh_cmd_parse(table, l->argc[0], l->argv[0], cmd, e);
}

static void expect_error(const struct cvirsh_cmd_def *table, const char *line,
                         const char *msg)
{
    struct cvirsh_cmd cmd;
    struct err e = {0};
    struct cvirsh_line l;
    assert_true(parse(table, line, &cmd, &e, &l) < 0);
    assert_string_equal(e.msg, msg);
    cvirsh_line_free(&l);
}

static void test_positional_and_named(void **state)
{
    struct cvirsh_cmd cmd;
    struct err e = {0};
    struct cvirsh_line l;
    assert_int_equal(parse(t_table, "setx vm1 128M --config", &cmd, &e, &l), 0);
    assert_string_equal(cvirsh_opt_str(&cmd, "domain"), "vm1");
    assert_string_equal(cvirsh_opt_str(&cmd, "size"), "128M");
    assert_true(cvirsh_opt_bool(&cmd, "config"));
    assert_null(cvirsh_opt_str(&cmd, "bus"));
    cvirsh_line_free(&l);

    /* A named option leaves the positional slots to the others. */
    assert_int_equal(parse(t_table, "setx --size=1G vm2 virtio", &cmd, &e, &l), 0);
    assert_string_equal(cvirsh_opt_str(&cmd, "domain"), "vm2");
    assert_string_equal(cvirsh_opt_str(&cmd, "size"), "1G");
    assert_string_equal(cvirsh_opt_str(&cmd, "bus"), "virtio");
    assert_false(cvirsh_opt_bool(&cmd, "config"));
    cvirsh_line_free(&l);

    /* After "--" everything is data, even what looks like an option. */
    assert_int_equal(parse(t_table, "setx --domain d -- --5", &cmd, &e, &l), 0);
    assert_string_equal(cvirsh_opt_str(&cmd, "size"), "--5");
    cvirsh_line_free(&l);

    assert_int_equal(parse(t_table, "setx d 1 --only-named x", &cmd, &e, &l), 0);
    assert_string_equal(cvirsh_opt_str(&cmd, "only-named"), "x");
    cvirsh_line_free(&l);
}

static void test_errors_as_virsh(void **state)
{
    expect_error(t_table, "nosuch", "unknown command: 'nosuch'");
    expect_error(t_table, "setx", "command 'setx' requires <domain> option");
    expect_error(t_table, "setx vm", "command 'setx' requires --size option");
    expect_error(t_table, "setx vm 1 --foo", "command 'setx' doesn't support option --foo");
    expect_error(t_table, "setx vm 1 --config --config", "option --config already seen");
    expect_error(t_table, "setx vm 1 --config=yes", "invalid '=' after option --config");
    expect_error(t_table, "setx vm --size", "expected syntax: --size <number>");
    expect_error(t_table, "setx vm 1 --bus", "expected syntax: --bus <string>");
    /* NOPOS options are never filled by a bare word. */
    expect_error(t_table, "setx vm 1 pci extra", "unexpected data 'extra'");
}

static void test_line_split(void **state)
{
    struct cvirsh_line l;
    struct err e = {0};
    assert_int_equal(cvirsh_line_split(
        "  list --all; dominfo 'my vm' ;start \"a b\"\\ c # comment; x", &l, &e), 0);
    assert_int_equal(l.ncmds, 3);
    assert_int_equal(l.argc[0], 2);
    assert_string_equal(l.argv[0][0], "list");
    assert_string_equal(l.argv[0][1], "--all");
    assert_int_equal(l.argc[1], 2);
    assert_string_equal(l.argv[1][1], "my vm");
    assert_int_equal(l.argc[2], 2);
    assert_string_equal(l.argv[2][1], "a b c");
    assert_null(l.argv[2][2]);
    cvirsh_line_free(&l);

    assert_int_equal(cvirsh_line_split("   ", &l, &e), 0);
    assert_int_equal(l.ncmds, 0);
    cvirsh_line_free(&l);

    /* An empty quoted word is still a word. */
    assert_int_equal(cvirsh_line_split("define ''", &l, &e), 0);
    assert_int_equal(l.argc[0], 2);
    assert_string_equal(l.argv[0][1], "");
    cvirsh_line_free(&l);

    /* virsh: an open double quote is an error, an open single quote runs
     * to the end of the line. */
    assert_int_equal(cvirsh_line_split("dominfo \"open", &l, &e), -EINVAL);
    assert_string_equal(e.msg, "missing \"");
    assert_int_equal(l.ncmds, 0);
    assert_int_equal(cvirsh_line_split("dominfo 'open vm", &l, &e), 0);
    assert_int_equal(l.argc[0], 2);
    assert_string_equal(l.argv[0][1], "open vm");
    cvirsh_line_free(&l);
}

static void test_scaled(void **state)
{
    unsigned long long k;
    assert_int_equal(cvirsh_parse_scaled_kib("1024", &k), 0);
    assert_int_equal(k, 1024);
    assert_int_equal(cvirsh_parse_scaled_kib("128M", &k), 0);
    assert_int_equal(k, 131072);
    assert_int_equal(cvirsh_parse_scaled_kib("1GiB", &k), 0);
    assert_int_equal(k, 1048576);
    assert_int_equal(cvirsh_parse_scaled_kib("1MB", &k), 0);
    assert_int_equal(k, 976);
    assert_int_equal(cvirsh_parse_scaled_kib("4096b", &k), 0);
    assert_int_equal(k, 4);
    assert_int_equal(cvirsh_parse_scaled_kib("abc", &k), -EINVAL);
    assert_int_equal(cvirsh_parse_scaled_kib("-1", &k), -EINVAL);
    assert_int_equal(cvirsh_parse_scaled_kib("1X", &k), -EINVAL);
    assert_int_equal(cvirsh_parse_scaled_kib("99999999999E", &k), -ERANGE);
}

/* The real table: the option forms virsh's users type must parse. */
static void test_real_table(void **state)
{
    static const char *const ok_lines[] = {
        "list --all --name", "list --inactive --uuid", "dominfo vm",
        "domstate vm --reason", "domstate --domain=vm", "start vm",
        "setmem vm 128M --config", "setmaxmem vm 1G --live",
        "attach-disk vm /img.qcow2 vdb --targetbus virtio --driver qemu "
            "--subdriver qcow2 --mode readonly --sourcetype file --persistent",
        "detach-disk vm vdb --config", "snapshot-create-as vm s1",
        "snapshot-create-as vm --name s1 --description 'first one'",
        "snapshot-revert vm s1", "snapshot-delete vm --snapshotname s1",
        "snapshot-current vm --name", "snapshot-list vm",
        "save vm /tmp/f", "restore /tmp/f", "autostart vm --disable",
        "define /tmp/x.xml", "undefine vm", "dumpxml vm --inactive",
        "console vm", "migrate vm qemu+ssh://h/system --live", "version --daemon",
        "nodeinfo", "hostname", "uri", "capabilities", "help", "help list",
        "quit", "exit", "domid vm", "domuuid vm", "domname 1",
        "shutdown vm", "destroy vm", "reboot vm", "suspend vm", "resume vm",
        NULL,
    };
    for (int i = 0; ok_lines[i]; i++) {
        struct cvirsh_cmd cmd;
        struct err e = {0};
        struct cvirsh_line l;
        if (parse(cvirsh_commands, ok_lines[i], &cmd, &e, &l) != 0)
            fail_msg("'%s': %s", ok_lines[i], e.msg);
        cvirsh_line_free(&l);
    }
    expect_error(cvirsh_commands, "dominfo", "command 'dominfo' requires <domain> option");
    expect_error(cvirsh_commands, "setmem vm", "command 'setmem' requires --size option");
    expect_error(cvirsh_commands, "save vm", "command 'save' requires <file> option");
    expect_error(cvirsh_commands, "dominfo vm extra", "unexpected data 'extra'");
    expect_error(cvirsh_commands, "list --foo", "command 'list' doesn't support option --foo");
    expect_error(cvirsh_commands, "list --all --all", "option --all already seen");
    expect_error(cvirsh_commands, "dominfo --domain", "expected syntax: --domain <string>");
}

/* Every command's options are unique and fit the parsed-command array. */
static void test_table_sane(void **state)
{
    for (const struct cvirsh_cmd_def *d = cvirsh_commands; d->name; d++) {
        assert_non_null(d->run);
        assert_non_null(d->info);
        assert_ptr_equal(cvirsh_cmd_find(cvirsh_commands, d->name), d);
        int k = 0;
        for (; d->opts[k].name; k++)
            for (int j = 0; j < k; j++)
                if (strcmp(d->opts[j].name, d->opts[k].name) == 0)
                    fail_msg("%s: option --%s twice", d->name, d->opts[k].name);
        assert_true(k <= CVIRSH_OPTS_MAX);
    }
    /* The commands cvirsh promises (docs/cvirsh.md). */
    static const char *const promised[] = {
        "list", "start", "shutdown", "destroy", "reboot", "suspend", "resume",
        "save", "restore", "console", "autostart", "dominfo", "domstate",
        "domid", "domuuid", "domname", "setmem", "setmaxmem", "attach-disk",
        "detach-disk", "snapshot-create-as", "snapshot-list", "snapshot-revert",
        "snapshot-delete", "snapshot-current", "define", "undefine", "dumpxml",
        "migrate", "version", "nodeinfo", "hostname", "uri", "capabilities",
        "help", "quit", "exit", NULL,
    };
    for (int i = 0; promised[i]; i++)
        if (!cvirsh_cmd_find(cvirsh_commands, promised[i]))
            fail_msg("command %s is missing", promised[i]);
}

static void test_help_layout(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    cvirsh_print_cmd_help(f, cvirsh_cmd_find(cvirsh_commands, "domstate"));
    fclose(f);
    /* virsh 9.0's `help domstate`, byte for byte (before its final blank
     * line, which the command loop prints). */
    assert_string_equal(buf,
        "  NAME\n    domstate - domain state\n\n"
        "  SYNOPSIS\n    domstate <domain> [--reason]\n\n"
        "  DESCRIPTION\n    Returns state about a domain.\n\n"
        "  OPTIONS\n"
        "    [--domain] <string>  domain name, id or uuid\n"
        "    --reason         also print reason for the state\n\n");
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_positional_and_named),
        cmocka_unit_test(test_errors_as_virsh),
        cmocka_unit_test(test_line_split),
        cmocka_unit_test(test_scaled),
        cmocka_unit_test(test_real_table),
        cmocka_unit_test(test_table_sane),
        cmocka_unit_test(test_help_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
