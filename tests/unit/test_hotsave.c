/* What lets a disk added at run time come back after a save or a
 * migration: the --disk parser (slot=, id= and the one spelling of the
 * rest), PCI slot reservation and placement, the machine options a
 * snapshot records (hotplug table included) and their comparison on a
 * migration's destination. The guest side is
 * tests/integration/vmm_hotsave.sh. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/evloop.h"
#include "vmm/control_hotplug.h"
#include "vmm/pci/pci.h"
#include "vmm/snapshot/snapshot_int.h"
#include "vmm/vm.h"
#include "vmm/x86/layout.h"

static struct control_hotplug_disk d;

static int parse(const char *arg, struct err *e)
{
    memset(e, 0, sizeof(*e));
    return control_hotplug_disk_parse(arg, &d, e);
}

static void test_parse_plain(void **state)
{
    struct err e;
    assert_int_equal(parse("/img/a.raw", &e), 0);
    assert_string_equal(d.path, "/img/a.raw");
    assert_string_equal(d.blk, "/img/a.raw,format=raw");
    assert_int_equal(d.slot, 0);
    assert_string_equal(d.id, "");
    assert_false(d.ro);
    assert_false(d.direct);
}

/* Defaults dropped, the rest in one order, slot= and id= taken out,
 * options the parser does not know kept for virtio-blk to judge. */
static void test_parse_canonical(void **state)
{
    struct err e;
    assert_int_equal(parse("q.qcow2,id=hd1,serial=S1,cache=none,readonly=on,slot=0x1f,"
                           "format=qcow2,aio=io_uring,frob=1", &e), 0);
    assert_string_equal(d.blk, "q.qcow2,format=qcow2,readonly=on,cache=none,serial=S1,"
                        "aio=io_uring,frob=1");
    assert_int_equal(d.slot, 31);
    assert_string_equal(d.id, "hd1");
    assert_true(d.ro);
    assert_true(d.direct);
    assert_string_equal(d.format, "qcow2");
    assert_int_equal(parse("a,node=drive-vdb,id=virtio-disk-vdb", &e), 0);
    assert_string_equal(d.node, "drive-vdb");
    assert_string_equal(d.id, "virtio-disk-vdb");
    assert_string_equal(d.blk, "a,format=raw");
    assert_int_equal(parse("a,readonly=off,cache=writeback,aio=threads,slot=7", &e), 0);
    assert_string_equal(d.blk, "a,format=raw");
    assert_int_equal(d.slot, 7);
    /* The same disk written two ways: one string. */
    char first[CONTROL_HP_ARG_MAX];
    assert_int_equal(parse("x.img,slot=5,id=z", &e), 0);
    snprintf(first, sizeof(first), "%s", d.blk);
    assert_int_equal(parse("x.img,format=raw,id=z,readonly=off,slot=5", &e), 0);
    assert_string_equal(first, d.blk);
}

static void test_parse_refusals(void **state)
{
    static const struct {
        const char *arg, *msg;
    } bad[] = {
        { "a,slot=0", "--disk a: slot=0: must be a PCI slot number from 1 to 31" },
        { "a,slot=32", "slot=32: must be" },
        { "a,slot=0x20", "slot=0x20: must be" },
        { "a,slot=", "slot=: must be" },
        { "a,slot=0x", "slot=0x: must be" },
        { "a,slot=-3", "slot=-3: must be" },
        { "a,slot=+3", "slot=+3: must be" },
        { "a,slot=3x", "slot=3x: must be" },
        { "a,slot=4,slot=5", "slot= is given twice" },
        { "a,id=1x", "id=1x: an id is a letter" },
        { "a,id=", "id=: an id is a letter" },
        { "a,id=abcdefghijklmnopqrstuvwxyz0123456", "an id is a letter" },
        { "a,id=x,id=y", "id= is given twice" },
        { "a,format=vmdk", "format must be raw or qcow2" },
        { "a,node=n", "node= names the drive of a disk with an id=" },
        { "a,id=x,node=9n", "node=9n: a node name is a letter" },
        { "a,id=x,node=n,node=m", "node= is given twice" },
        { "a,serial=123456789012345678901", "serial is longer than 20 bytes" },
        { "", "--disk needs a path" },
        { ",slot=3", "--disk needs a path" },
    };
    struct err e;
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(bad[i].arg, &e), -EINVAL);
        if (!strstr(e.msg, bad[i].msg))
            fail_msg("'%s': got '%s', expected '%s'", bad[i].arg, e.msg, bad[i].msg);
    }
    char *big = malloc(CONTROL_HP_ARG_MAX + 10);
    memset(big, 'a', CONTROL_HP_ARG_MAX + 9);
    big[CONTROL_HP_ARG_MAX + 9] = '\0';
    assert_int_equal(parse(big, &e), -EINVAL);
    free(big);
}

/* ---- slots on the bus ---- */

static const struct pci_id any_id = { .vendor = 0x1af4, .device = 0x1042, .class_code = 0x010000 };

static void test_slots(void **state)
{
    struct vm *vm = calloc(1, sizeof(*vm));
    vm->vm_fd = -1;
    pthread_mutex_init(&vm->route_lock, NULL);
    struct pci_bus *bus;
    struct pci_dev *a, *b, *c, *h;
    struct err e = { 0 };
    assert_int_equal(pci_bus_create(&bus, vm, LAYOUT_PCI_MMIO_START, LAYOUT_PCI_MMIO_SIZE, &e), 0);
    assert_int_equal(pci_bus_reserve_slot(bus, 1, "kept", &e), 0);
    assert_int_equal(pci_bus_reserve_slot(bus, 1, "again", &e), -EBUSY);
    assert_non_null(strstr(e.msg, "slot 1 is already asked for"));
    assert_int_equal(pci_bus_reserve_slot(bus, 0, "bridge", &e), -EINVAL);
    assert_int_equal(pci_bus_reserve_slot(bus, 32, "far", &e), -EINVAL);
    /* The first free slot passes over the reserved one... */
    assert_int_equal(pci_dev_add(bus, &a, "a", &any_id, NULL, NULL, &e), 0);
    assert_int_equal(a->slot, 2);
    /* ...which its owner then takes. */
    assert_int_equal(pci_dev_add_at(bus, &b, 1, "b", &any_id, NULL, NULL, &e), 0);
    assert_int_equal(b->slot, 1);
    e = (struct err){ 0 };
    assert_int_equal(pci_dev_add_at(bus, &c, 2, "c", &any_id, NULL, NULL, &e), -EBUSY);
    assert_string_equal(e.msg, "c: PCI slot 2 is taken by a");
    e = (struct err){ 0 };
    assert_int_equal(pci_dev_add_at(bus, &c, 32, "c", &any_id, NULL, NULL, &e), -EINVAL);
    assert_string_equal(e.msg, "c: PCI slot 32 is out of range (1 to 31)");
    assert_int_equal(pci_dev_add_hidden_at(bus, &h, 9, "h", &any_id, NULL, NULL, &e), 0);
    assert_int_equal(h->slot, 9);
    assert_true(h->hidden);
    assert_int_equal(pci_dev_add(bus, &c, "c", &any_id, NULL, NULL, &e), 0);
    assert_int_equal(c->slot, 3);
    /* A removed device's slot is free for anyone again. */
    pci_dev_remove(b);
    assert_int_equal(pci_dev_add(bus, &b, "b2", &any_id, NULL, NULL, &e), 0);
    assert_int_equal(b->slot, 1);
    pci_bus_destroy(bus);
    pthread_mutex_destroy(&vm->route_lock);
    free(vm);
}

/* ---- the machine options a snapshot records ---- */

/* Without a hotplug table the --disk options with an id are dropped (no
 * such disk is present); the others stay as given, values with them. */
static void test_machine_args_no_table(void **state)
{
    char *argv[] = { "--kernel", "k", "--disk", "a.img", "--append", "--disk x,id=q",
                     "--disk=b.img,id=hd1", "--disk", "c.img,slot=4,id=hd2", "--rng",
                     "--disk", "d.img,slot=6", NULL };
    int argc = 12;
    struct vm vm = { 0 };
    char **out;
    int n;
    struct err e = { 0 };
    assert_int_equal(snap_machine_args(&vm, argc, argv, &out, &n, &e), 0);
    static const char *const want[] = { "--kernel", "k", "--disk", "a.img", "--append",
                                        "--disk x,id=q", "--rng", "--disk", "d.img,slot=6" };
    assert_int_equal(n, 9);
    for (int i = 0; i < n; i++)
        assert_string_equal(out[i], want[i]);
    assert_null(out[n]);
    snap_args_free(out, n);
    assert_int_equal(snap_machine_args(&vm, 0, NULL, &out, &n, &e), 0);
    assert_int_equal(n, 0);
    assert_null(out[0]);
    snap_args_free(out, n);
}

/* With a hotplug table: an ejectable disk from the command line is
 * recorded as it is now (its slot, its own node name), one gone since the
 * start is not, and the other options stay. */
static void test_machine_args_table(void **state)
{
    char dir[] = "/tmp/test_hotsave.XXXXXX", img[64];
    assert_non_null(mkdtemp(dir));
    snprintf(img, sizeof(img), "%s/d.img", dir);
    int fd = open(img, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 1 << 20), 0);
    close(fd);
    struct vm *vm = calloc(1, sizeof(*vm));
    vm->vm_fd = -1;
    pthread_mutex_init(&vm->route_lock, NULL);
    struct evloop *loop = evloop_new();
    assert_non_null(loop);
    struct err e = { 0 };
    assert_int_equal(pci_bus_create(&vm->pci, vm, LAYOUT_PCI_MMIO_START, LAYOUT_PCI_MMIO_SIZE,
                                    &e), 0);
    assert_int_equal(control_hotplug_register(NULL, vm, loop, &e), 0);
    char arg[128], want[160];
    snprintf(arg, sizeof(arg), "%s,serial=S9,id=hd1,node=drive-vdb,slot=7", img);
    assert_int_equal(control_hotplug_disk_parse(arg, &d, &e), 0);
    assert_int_equal(control_hotplug_add_disk(vm, &d, &e), 0);
    assert_non_null(pci_bus_dev(vm->pci, 7));
    assert_int_equal(control_hotplug_count(vm), 1);
    /* The same id again is refused. */
    assert_int_equal(control_hotplug_add_disk(vm, &d, &e), -EEXIST);
    char *argv[] = { "--kernel", "k", "--disk", arg, "--disk", "gone.img,id=old", NULL };
    char **out;
    int n;
    e = (struct err){ 0 };
    assert_int_equal(snap_machine_args(vm, 6, argv, &out, &n, &e), 0);
    snprintf(want, sizeof(want), "%s,format=raw,serial=S9,slot=7,id=hd1,node=drive-vdb", img);
    assert_int_equal(n, 4);
    assert_string_equal(out[0], "--kernel");
    assert_string_equal(out[1], "k");
    assert_string_equal(out[2], "--disk");
    assert_string_equal(out[3], want);
    /* What the destination compares: the same machine. */
    assert_int_equal(snap_machine_compare(n, out, 4, (char *[]){ "--kernel", "k", "--disk",
                                          arg }, &e), 0);
    snap_args_free(out, n);
    control_hotplug_fini(vm);
    pci_bus_destroy(vm->pci);
    evloop_free(loop);
    pthread_mutex_destroy(&vm->route_lock);
    free(vm);
    unlink(img);
    rmdir(dir);
}

static int compare(char **a, int na, char **b, int nb, struct err *e)
{
    memset(e, 0, sizeof(*e));
    return snap_machine_compare(na, a, nb, b, e);
}

static void test_compare(void **state)
{
    char *src[] = { "--kernel", "k", "--disk", "c.img,format=raw", "--disk",
                    "h1.img,format=raw,slot=5,id=hd1", "--disk", "h2.img,format=raw,slot=9,id=hd2" };
    /* The same disks with slots, in another order and spelling. */
    char *same[] = { "--kernel", "k", "--disk", "h2.img,slot=9,id=hd2", "--disk",
                     "c.img,format=raw", "--disk=h1.img,id=hd1,slot=5" };
    char *missing[] = { "--kernel", "k", "--disk", "c.img,format=raw", "--disk",
                        "h1.img,format=raw,slot=5,id=hd1" };
    char *other[] = { "--kernel", "k", "--disk", "c.img,format=raw", "--disk",
                      "h1.img,format=raw,slot=5,id=hd1", "--disk", "h3.img,slot=9,id=hd2" };
    char *extra[] = { "--kernel", "k", "--disk", "c.img,format=raw", "--disk",
                      "h1.img,format=raw,slot=5,id=hd1", "--disk", "h2.img,format=raw,slot=9,id=hd2",
                      "--disk", "z.img,slot=12,id=z" };
    char *kern[] = { "--kernel", "k2", "--disk", "c.img,format=raw", "--disk",
                     "h1.img,format=raw,slot=5,id=hd1", "--disk", "h2.img,format=raw,slot=9,id=hd2" };
    char *more[] = { "--kernel", "k", "--rng", "--disk", "c.img,format=raw", "--disk",
                     "h1.img,format=raw,slot=5,id=hd1", "--disk", "h2.img,format=raw,slot=9,id=hd2" };
    struct err e;
    assert_int_equal(compare(src, 8, src, 8, &e), 0);
    /* node= naming the id itself is the same disk; another node is not. */
    char *node_same[] = { "--kernel", "k", "--disk", "c.img,format=raw", "--disk",
                          "h1.img,slot=5,id=hd1,node=hd1", "--disk", "h2.img,slot=9,id=hd2" };
    char *node_other[] = { "--kernel", "k", "--disk", "c.img,format=raw", "--disk",
                           "h1.img,slot=5,id=hd1,node=drv", "--disk", "h2.img,slot=9,id=hd2" };
    assert_int_equal(compare(src, 8, node_same, 8, &e), 0);
    assert_int_equal(compare(src, 8, node_other, 8, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "PCI slot 5: "));
    assert_int_equal(compare(src, 8, same, 7, &e), 0);
    assert_int_equal(compare(src, 8, missing, 6, &e), -EINVAL);
    assert_string_equal(e.msg, "PCI slot 9: the source has --disk h2.img,format=raw,slot=9,id=hd2, "
                        "this machine nothing there (start it with that --disk)");
    assert_int_equal(compare(src, 8, other, 8, &e), -EINVAL);
    assert_string_equal(e.msg, "PCI slot 9: the source has --disk h2.img,format=raw,slot=9,id=hd2, "
                        "this machine --disk h3.img,format=raw,slot=9,id=hd2");
    assert_int_equal(compare(src, 8, extra, 10, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "PCI slot 12: this machine has --disk z.img,format=raw,slot=12,id=z, "
                           "the source nothing there"));
    assert_int_equal(compare(src, 8, kern, 8, &e), -EINVAL);
    assert_string_equal(e.msg, "machine option 2 differs: the source has 'k', this machine 'k2'");
    assert_int_equal(compare(src, 8, more, 9, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "machine option 3 differs"));
    assert_int_equal(compare(src, 2, src, 4, &e), -EINVAL);
    assert_string_equal(e.msg, "the source has 2 machine options, this machine 4 (first extra: "
                        "'--disk')");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_plain),
        cmocka_unit_test(test_parse_canonical),
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_slots),
        cmocka_unit_test(test_machine_args_no_table),
        cmocka_unit_test(test_machine_args_table),
        cmocka_unit_test(test_compare),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
