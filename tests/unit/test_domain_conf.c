/* Domain XML: units, uuid and MAC helpers, exact error messages, round
 * trips, disk attach/detach, and the golden files in tests/data/domxml
 * (NAME.xml -> NAME.out.xml and NAME.argv, or NAME.err for a refused
 * definition). REGEN=1 rewrites the expected files for review. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/domain_conf.h"
#include "daemon/uuid.h"

static struct domain_def *parse_ok(const char *xml, unsigned flags)
{
    struct domain_def *d = NULL;
    struct err e = {0};
    int r = domain_def_parse(xml, strlen(xml), flags, &d, &e);
    if (r != 0)
        fail_msg("parse failed: %s", e.msg);
    return d;
}

static void expect_error(const char *xml, const char *msg)
{
    struct domain_def *d = NULL;
    struct err e = {0};
    int r = domain_def_parse(xml, strlen(xml), 0, &d, &e);
    if (r == 0)
        fail_msg("parse accepted XML that should fail with: %s", msg);
    assert_null(d);
    assert_int_equal(r, -e.code);
    assert_string_equal(e.msg, msg);
}

#define MIN_HEAD "<domain type='kvm'><name>t</name><memory unit='MiB'>64</memory>" \
                 "<os><type>hvm</type><kernel>/k</kernel></os>"
#define MIN_XML(devices) MIN_HEAD "<devices>" devices "</devices></domain>"

/* ---- units ---- */

static void test_memory_units(void **state)
{
    static const struct { const char *v, *unit; uint64_t kib; } ok[] = {
        { "1", NULL, 1 }, { "1", "", 1 }, { "7", "KiB", 7 }, { "7", "k", 7 },
        { "1024", "b", 1 }, { "1024", "bytes", 1 }, { "1025", "b", 2 },
        { "1", "KB", 1 },                 /* 1000 bytes round up to 1 KiB */
        { "1", "MB", 977 },               /* 1e6 / 1024 = 976.6 */
        { "1", "M", 1024 }, { "1", "MiB", 1024 }, { "3", "m", 3072 },
        { "2", "G", 2097152 }, { "2", "GiB", 2097152 },
        { "1", "GB", 976563 },            /* 1e9 / 1024 = 976562.5 */
        { "1", "T", 1073741824 }, { "1", "TiB", 1073741824 },
        { "1", "TB", 976562500 },
        { "0", "G", 0 },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t kib = 12345;
        assert_int_equal(domain_memory_parse(ok[i].v, ok[i].unit, &kib), 0);
        if (kib != ok[i].kib)
            fail_msg("%s %s: %llu KiB, expected %llu", ok[i].v, ok[i].unit ? ok[i].unit : "-",
                     (unsigned long long)kib, (unsigned long long)ok[i].kib);
    }
    static const struct { const char *v, *unit; int r; } bad[] = {
        { "1", "X", -EINVAL }, { "1", "KiBB", -EINVAL }, { "1", "MiBs", -EINVAL },
        { "-1", NULL, -EINVAL }, { "1.5", "G", -EINVAL }, { "", NULL, -EINVAL },
        { "12abc", NULL, -EINVAL }, { " 1", NULL, -EINVAL },
        { "18446744073709551615", "KiB", -ERANGE }, { "99999999999999999999", NULL, -ERANGE },
        { "17179869184", "G", -ERANGE },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t kib;
        int r = domain_memory_parse(bad[i].v, bad[i].unit, &kib);
        if (r != bad[i].r)
            fail_msg("'%s' '%s': %d, expected %d", bad[i].v, bad[i].unit ? bad[i].unit : "-",
                     r, bad[i].r);
    }
}

static void test_memory_in_xml(void **state)
{
    struct domain_def *d = parse_ok(
        "<domain type='kvm'><name>m</name><memory unit='GB'>1</memory>"
        "<currentMemory unit='MB'>500</currentMemory>"
        "<maxMemory slots='4' unit='G'>4</maxMemory>"
        "<os><type>hvm</type></os></domain>", 0);
    assert_int_equal(d->memory_kib, 976563);
    assert_int_equal(d->current_memory_kib, 488282);
    assert_int_equal(d->max_memory_kib, 4194304);
    assert_int_equal(d->max_memory_slots, 4);
    domain_def_free(d);
    /* currentMemory defaults to memory. */
    d = parse_ok(MIN_XML(""), 0);
    assert_int_equal(d->memory_kib, 65536);
    assert_int_equal(d->current_memory_kib, 65536);
    assert_int_equal(d->vcpus, 1);
    domain_def_free(d);
}

/* ---- uuid and MAC ---- */

static void test_uuid(void **state)
{
    uint8_t u[16], v[16];
    char s[UUID_STRING_LEN];
    assert_int_equal(uuid_parse("4dea22b3-1d52-d8f3-2516-782e98ab3fa0", u), 0);
    uuid_format(u, s);
    assert_string_equal(s, "4dea22b3-1d52-d8f3-2516-782e98ab3fa0");
    assert_int_equal(uuid_parse("4DEA22B31D52D8F32516782E98AB3FA0", v), 0);
    assert_memory_equal(u, v, 16);
    assert_int_equal(uuid_parse("  4dea22b3-1d52-d8f3-2516-782e98ab3fa0\n", v), 0);
    assert_memory_equal(u, v, 16);
    static const char *const bad[] = {
        "", "4dea22b3-1d52-d8f3-2516-782e98ab3fa", "4dea22b3-1d52-d8f3-2516-782e98ab3fa0a",
        "4dea22b3-1d52-d8f3-2516-782e98ab3fg0", "-4dea22b31d52d8f32516782e98ab3fa0",
        "4dea22b3-1d52-d8f3-2516-782e98ab3fa0 x", "4dea22b3-1d52-d8f3-2516-782e98ab3f-a-0",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (uuid_parse(bad[i], v) != -EINVAL)
            fail_msg("uuid '%s' accepted", bad[i]);
    assert_int_equal(uuid_generate(u), 0);
    assert_int_equal(uuid_generate(v), 0);
    assert_memory_not_equal(u, v, 16);
    assert_int_equal(u[6] >> 4, 4);          /* version 4 */
    assert_int_equal(u[8] & 0xc0, 0x80);     /* RFC 4122 variant */
    assert_false(uuid_is_null(u));
    memset(v, 0, 16);
    assert_true(uuid_is_null(v));
}

static void test_mac(void **state)
{
    uint8_t m[6];
    char s[18];
    assert_int_equal(domain_mac_parse("52:54:00:AB:cd:0f", m), 0);
    domain_mac_format(m, s);
    assert_string_equal(s, "52:54:00:ab:cd:0f");
    static const char *const bad[] = {
        "", "52:54:00:ab:cd", "52:54:00:ab:cd:0f:00", "01:00:5e:00:00:01" /* multicast */,
        "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00", "52-54-00-ab-cd-0f", "52:54:00:ab:cd:0g",
        "5:54:00:ab:cd:0f0", " 52:54:00:ab:cd:0",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (domain_mac_parse(bad[i], m) != -EINVAL)
            fail_msg("mac '%s' accepted", bad[i]);
    uint8_t a[6], b[6];
    domain_mac_generate(a);
    domain_mac_generate(b);
    assert_int_equal(a[0], 0x52);
    assert_int_equal(a[1], 0x54);
    assert_int_equal(a[2], 0x00);
    assert_memory_not_equal(a, b, 6);   /* 1 in 2^24 to fail by chance */
}

static void test_generated_ids(void **state)
{
    const char *xml = MIN_XML("<interface type='network'><source network='default'/>"
                              "</interface>");
    struct domain_def *d1 = parse_ok(xml, 0), *d2 = parse_ok(xml, 0);
    assert_false(uuid_is_null(d1->uuid));
    assert_memory_not_equal(d1->uuid, d2->uuid, 16);
    assert_int_equal(d1->nnets, 1);
    assert_int_equal(d1->nets[0].mac[0], 0x52);
    assert_memory_not_equal(d1->nets[0].mac, d2->nets[0].mac, 6);
    /* Formatted and parsed again, the generated values stay. */
    char *x = domain_def_format(d1, 0);
    struct domain_def *d3 = parse_ok(x, 0);
    assert_memory_equal(d1->uuid, d3->uuid, 16);
    assert_memory_equal(d1->nets[0].mac, d3->nets[0].mac, 6);
    free(x);
    domain_def_free(d1);
    domain_def_free(d2);
    domain_def_free(d3);
}

/* ---- errors: one line naming the element or value at fault ---- */

static void test_errors(void **state)
{
    static const struct { const char *xml, *msg; } cases[] = {
        { "<domain type='kvm'><name>t</name", "domain XML is malformed at line 1: "
          "Premature end of data in tag domain line 1" },
        { "", "domain XML is malformed at line 1: Document is empty" },
        { "<vm/>", "expected a <domain> element, found <vm>" },
        { "<domain type='xen'/>", "domain type 'xen' is not supported (kvm)" },
        { "<domain/>", "domain type '' is not supported (kvm)" },
        { "<domain type='kvm'><memory>65536</memory><os><type>hvm</type></os></domain>",
          "missing <name>" },
        { "<domain type='kvm'><name>a/b</name><memory>65536</memory></domain>",
          "domain name 'a/b' cannot contain '/'" },
        { "<domain type='kvm'><name></name><memory>65536</memory></domain>",
          "domain name is empty" },
        { "<domain type='kvm'><name>a</name><name>b</name></domain>",
          "<name> is given more than once" },
        { "<domain type='kvm'><name>t</name><os><type>hvm</type></os></domain>",
          "missing <memory>" },
        { "<domain type='kvm'><name>t</name><memory unit='MiB'>64</memory></domain>",
          "missing <os>: cvirt boots a kernel directly "
          "(<os><type>hvm</type><kernel>...</kernel></os>)" },
        { MIN_HEAD "<uuid>not-a-uuid</uuid></domain>",
          "<uuid> 'not-a-uuid' is not a UUID (like 4dea22b3-1d52-d8f3-2516-782e98ab3fa0)" },
        { MIN_HEAD "<title>a\nb</title></domain>", "<title> must be a single line" },
        { "<domain type='kvm'><name>t</name><memory unit='parsecs'>1</memory></domain>",
          "<memory> '1' with unit 'parsecs' is not a memory size (units: b, KB, KiB, MB, "
          "MiB, GB, GiB, TB, TiB...)" },
        { "<domain type='kvm'><name>t</name><memory unit='EiB'>100</memory></domain>",
          "<memory> '100 EiB' is too large" },
        { "<domain type='kvm'><name>t</name><memory unit='MiB'>8</memory>"
          "<os><type>hvm</type></os></domain>",
          "<memory> 8192 KiB is too small: at least 16384 KiB (16 MiB)" },
        { "<domain type='kvm'><name>t</name><memory unit='TiB'>2</memory>"
          "<os><type>hvm</type></os></domain>",
          "<memory> 2147483648 KiB is too large: at most 1073741824 KiB (1 TiB)" },
        { MIN_HEAD "<currentMemory unit='MiB'>128</currentMemory></domain>",
          "<currentMemory> 131072 KiB is more than <memory> 65536 KiB" },
        { MIN_HEAD "<vcpu>0</vcpu></domain>", "<vcpu> '0' is not a number from 1 to 64" },
        { MIN_HEAD "<vcpu>65</vcpu></domain>", "<vcpu> '65' is not a number from 1 to 64" },
        { MIN_HEAD "<vcpu>two</vcpu></domain>", "<vcpu> 'two' is not a number from 1 to 64" },
        { MIN_HEAD "<vcpu current='1'>2</vcpu></domain>",
          "<vcpu current='1'> is less than 2: cvirt cannot hot-plug vCPUs" },
        { "<domain type='kvm'><name>t</name><memory>65536</memory>"
          "<os><type>linux</type></os></domain>",
          "os type 'linux' is not supported: cvirt runs hvm guests only" },
        { "<domain type='kvm'><name>t</name><memory>65536</memory>"
          "<os><type arch='aarch64'>hvm</type></os></domain>",
          "os arch 'aarch64' is not supported (x86_64 only)" },
        { "<domain type='kvm'><name>t</name><memory>65536</memory>"
          "<os><type>hvm</type><loader>/usr/share/OVMF/OVMF_CODE.fd</loader></os></domain>",
          "<os><loader> is not supported: cvirt has no firmware and boots a kernel directly "
          "(<os><kernel>)" },
        { "<domain type='kvm'><name>t</name><memory>65536</memory>"
          "<os firmware='efi'><type>hvm</type></os></domain>",
          "<os firmware=...> is not supported: cvirt has no firmware and boots a kernel "
          "directly (<os><kernel>)" },
        { "<domain type='kvm'><name>t</name><memory>65536</memory><os></os></domain>",
          "missing <os><type>hvm</type>" },
        { MIN_HEAD "<on_reboot>explode</on_reboot></domain>",
          "<on_reboot> 'explode' is not an action (destroy, restart, preserve, "
          "rename-restart)" },
        { MIN_HEAD "<on_poweroff>coredump-destroy</on_poweroff></domain>",
          "<on_poweroff> 'coredump-destroy' is not an action (destroy, restart, preserve, "
          "rename-restart)" },
        { MIN_HEAD "<bootloader>/usr/bin/pygrub</bootloader></domain>",
          "unsupported element <bootloader> in <domain>" },
        { "<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"
          "<name>t</name><qemu:commandline/></domain>",
          "unsupported element <qemu:commandline> in <domain>" },
        /* devices */
        { MIN_XML("<graphics type='vnc'/>"), "unsupported device <graphics>: cvirt has no "
          "display; use a serial or virtio console (virt-install --graphics none)" },
        { MIN_XML("<video><model type='qxl'/></video>"), "unsupported device <video>: cvirt "
          "has no display; use a serial or virtio console (virt-install --graphics none)" },
        { MIN_XML("<hostdev mode='subsystem' type='pci'/>"),
          "unsupported device <hostdev>: cvirt cannot provide it" },
        { MIN_XML("<sound model='ich6'/>"), "unsupported device <sound>: cvirt cannot "
          "provide it" },
        { MIN_XML("<disk type='file'><source file='/a'/></disk>"),
          "disk: missing <target dev=...>" },
        { MIN_XML("<disk type='file'><target dev='vda'/></disk>"),
          "disk 'vda': missing <source file=...>" },
        { MIN_XML("<disk type='file'><source file=''/><target dev='vda'/></disk>"),
          "disk 'vda': empty source file" },
        { MIN_XML("<disk type='file'><source file='/a'/><target dev='sda' bus='usb'/></disk>"),
          "disk 'sda': bus 'usb' is not supported (cvirt disks are virtio: use bus='virtio' "
          "and dev='vdX')" },
        { MIN_XML("<disk type='file' device='cdrom'><source file='/a.iso'/>"
                  "<target dev='vdb'/></disk>"),
          "disk 'vdb': device 'cdrom' is not supported (cvirt has virtio disks only)" },
        { MIN_XML("<disk type='network'><source protocol='nbd'/><target dev='vdb'/></disk>"),
          "disk 'vdb': type 'network' is not supported (file or block)" },
        { MIN_XML("<disk type='block'><source file='/dev/sdb'/><target dev='vdb'/></disk>"),
          "disk 'vdb': missing <source dev=...>" },
        { MIN_XML("<disk type='file'><driver name='qemu' type='vmdk'/><source file='/a'/>"
                  "<target dev='vda'/></disk>"),
          "disk 'vda': format type 'vmdk' is not supported (raw or qcow2)" },
        { MIN_XML("<disk type='file'><driver name='qemu' cache='unsafe'/><source file='/a'/>"
                  "<target dev='vda'/></disk>"),
          "disk 'vda': cache 'unsafe' is not supported (none or writeback)" },
        { MIN_XML("<disk type='file'><source file='/a'/><target dev='vda'/>"
                  "<serial>a,b</serial></disk>"),
          "disk 'vda': serial 'a,b' may only contain letters, digits, '_', ' ', '.', '+' "
          "and '-'" },
        { MIN_XML("<disk type='file'><source file='/a'/><target dev='vda'/>"
                  "<serial>123456789012345678901</serial></disk>"),
          "disk 'vda': serial '123456789012345678901' is longer than 20 bytes" },
        { MIN_XML("<disk type='file'><source file='/a'/><target dev='vd-a'/></disk>"),
          "disk target dev 'vd-a': only letters and digits allowed" },
        { MIN_XML("<disk type='file'><source file='/a'/><target dev='vda'/></disk>"
                  "<disk type='file'><source file='/b'/><target dev='vda'/></disk>"),
          "disk target dev 'vda' is used twice" },
        { MIN_XML("<disk type='file'><source file='/a'/><target dev='vda'/><mirror/></disk>"),
          "disk 'vda': unsupported element <mirror>" },
        { MIN_XML("<interface type='user'/>"),
          "interface type 'user' is not supported (network, bridge or ethernet)" },
        { MIN_XML("<interface type='bridge'><mac address='52:54:00:00:00:01'/></interface>"),
          "interface type 'bridge': missing <source bridge='NAME'/>" },
        { MIN_XML("<interface type='network'><source bridge='br0'/></interface>"),
          "interface type 'network': <source> needs network='NAME'" },
        { MIN_XML("<interface type='network'><source network='default'/>"
                  "<mac address='01:00:5e:00:00:01'/></interface>"),
          "interface: mac address '01:00:5e:00:00:01' is not a unicast MAC "
          "(like 52:54:00:12:34:56)" },
        { MIN_XML("<interface type='network'><source network='default'/>"
                  "<model type='vmxnet3'/></interface>"),
          "interface: model 'vmxnet3' is not supported (cvirt has virtio-net only: "
          "<model type='virtio'/>)" },
        { MIN_XML("<interface type='ethernet'><target dev='tap,0'/></interface>"),
          "interface: target dev 'tap,0' is not a valid tap name (1 to 15 bytes, "
          "no ',' or '/')" },
        { MIN_XML("<serial type='tcp'/>"),
          "<serial> type 'tcp' is not supported (only type='pty')" },
        { MIN_XML("<serial type='pty'/><serial type='pty'/>"),
          "more than one <serial>: cvirt has one serial port (COM1)" },
        { MIN_XML("<serial type='pty'><target port='1'/></serial>"),
          "<serial> port '1': cvirt has one serial port (port 0)" },
        { MIN_XML("<console type='pty'><target type='sclp'/></console>"),
          "<console> target type 'sclp' is not supported (serial or virtio)" },
        { MIN_XML("<console type='pty'><target type='virtio'/></console>"
                  "<console type='pty'><target type='virtio'/></console>"),
          "more than one virtio <console>: cvirt has one (hvc0)" },
        { MIN_XML("<rng model='virtio'><backend model='egd' type='tcp'/></rng>"),
          "<rng> backend model 'egd' is not supported (random or builtin)" },
        { MIN_XML("<rng model='virtio'><backend model='random'>/dev/hwrng</backend></rng>"),
          "<rng> backend '/dev/hwrng' is not supported (/dev/random or /dev/urandom)" },
        { MIN_XML("<memballoon model='xen'/>"),
          "<memballoon> model 'xen' is not supported (virtio or none)" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_error(cases[i].xml, cases[i].msg);
}

static void test_too_many_disks(void **state)
{
    char xml[8192], *p = xml;
    p += sprintf(p, MIN_HEAD "<devices>");
    for (int i = 0; i < DOMAIN_MAX_DISKS + 1; i++)
        p += sprintf(p, "<disk type='file'><source file='/d%d'/><target dev='vd%c'/></disk>",
                     i, 'a' + i);
    sprintf(p, "</devices></domain>");
    expect_error(xml, "too many disks (at most 16)");
}

/* Entities are not expanded: a definition cannot read host files. */
static void test_no_external_entities(void **state)
{
    const char *xml = "<?xml version='1.0'?><!DOCTYPE d [<!ENTITY x SYSTEM "
                      "'file:///etc/hostname'>]>" MIN_HEAD "<title>&x;</title></domain>";
    struct domain_def *d = NULL;
    struct err e = {0};
    if (domain_def_parse(xml, strlen(xml), 0, &d, &e) == 0) {
        assert_true(d->title == NULL || d->title[0] == '\0');
        domain_def_free(d);
    }
}

/* ---- round trips, live data, copies ---- */

static const char *const full_xml =
    "<domain type='kvm' id='7'>"
    "<name>full &amp; 'quoted'</name><uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>"
    "<title>A &lt;test&gt;</title><description>line one\nline two</description>"
    "<metadata><app:x xmlns:app='http://example.org/app'><app:y a='1'/></app:x></metadata>"
    "<memory unit='GiB'>1</memory><currentMemory unit='MiB'>512</currentMemory>"
    "<vcpu placement='static'>2</vcpu>"
    "<os><type arch='x86_64' machine='pc'>hvm</type><kernel>/boot/vmlinuz</kernel>"
    "<initrd>/boot/initrd.img</initrd><cmdline>console=ttyS0 root=/dev/vda</cmdline></os>"
    "<features><acpi/><apic/></features>"
    "<on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot>"
    "<on_crash>coredump-restart</on_crash>"
    "<devices>"
    "<disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none'/>"
    "<source file='/var/lib/cvirt/a.qcow2'/>"
    "<backingStore type='file'><format type='raw'/><source file='/base.raw'/>"
    "<backingStore/></backingStore>"
    "<target dev='vda' bus='virtio'/><serial>S1</serial></disk>"
    "<disk type='file'><source file='/b.img'/><target dev='vdb'/><readonly/></disk>"
    "<interface type='bridge'><mac address='52:54:00:01:02:03'/><source bridge='br0'/>"
    "<target dev='vnet3'/><model type='virtio'/></interface>"
    "<serial type='pty'><source path='/dev/pts/4'/><target port='0'/></serial>"
    "<console type='pty' tty='/dev/pts/4'><target type='serial' port='0'/></console>"
    "<console type='pty'><source path='/dev/pts/5'/><target type='virtio' port='1'/>"
    "</console>"
    "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>"
    "<memballoon model='virtio'/>"
    "</devices></domain>";

static void test_round_trip(void **state)
{
    struct domain_def *d = parse_ok(full_xml, 0);
    assert_string_equal(d->name, "full & 'quoted'");
    assert_int_equal(d->id, 7);
    assert_int_equal(d->vcpus, 2);
    assert_true(d->acpi && d->apic && !d->pae);
    assert_int_equal(d->on_reboot, DOMAIN_ACTION_DESTROY);
    assert_int_equal(d->on_crash, DOMAIN_ACTION_COREDUMP_RESTART);
    assert_int_equal(d->ndisks, 2);
    assert_int_equal(d->disks[0].format, DOMAIN_DISK_QCOW2);
    assert_int_equal(d->disks[0].cache, DOMAIN_CACHE_NONE);
    assert_non_null(d->disks[0].backing);
    assert_string_equal(d->disks[0].backing->file, "/base.raw");
    assert_null(d->disks[0].backing->next);
    assert_true(d->disks[1].readonly);
    assert_int_equal(d->disks[1].format, DOMAIN_DISK_RAW);
    assert_string_equal(d->nets[0].target_dev, "vnet3");
    assert_string_equal(d->serial.pty_path, "/dev/pts/4");
    assert_string_equal(d->vconsole.pty_path, "/dev/pts/5");
    assert_true(d->rng);
    assert_int_equal(d->balloon, DOMAIN_BALLOON_VIRTIO);
    assert_non_null(strstr(d->metadata, "xmlns:app=\"http://example.org/app\""));

    char *x1 = domain_def_format(d, 0);
    struct domain_def *d2 = parse_ok(x1, 0);
    char *x2 = domain_def_format(d2, 0);
    assert_string_equal(x1, x2);
    assert_non_null(strstr(x1, "<name>full &amp; &apos;quoted&apos;</name>"));
    assert_non_null(strstr(x1, "<description>line one&#10;line two</description>"));
    assert_non_null(strstr(x1, "<domain type='kvm' id='7'>"));
    assert_non_null(strstr(x1, "<source path='/dev/pts/4'/>"));

    /* A copy formats the same. */
    struct domain_def *c = domain_def_copy(d);
    char *x3 = domain_def_format(c, 0);
    assert_string_equal(x1, x3);

    /* Inactive output leaves out what only a running domain has. */
    char *xi = domain_def_format(d, DOMAIN_FORMAT_INACTIVE);
    assert_null(strstr(xi, "id='7'"));
    assert_null(strstr(xi, "/dev/pts"));
    assert_null(strstr(xi, "vnet3"));
    assert_null(strstr(xi, "backingStore"));
    struct domain_def *di = parse_ok(x1, DOMAIN_PARSE_INACTIVE);
    char *xi2 = domain_def_format(di, 0);
    assert_string_equal(xi, xi2);
    assert_int_equal(di->id, -1);

    free(x1); free(x2); free(x3); free(xi); free(xi2);
    domain_def_free(d); domain_def_free(d2); domain_def_free(c); domain_def_free(di);
}

/* Line breaks and tabs in values survive a round trip, in attributes too. */
static void test_odd_characters(void **state)
{
    struct domain_def *d = parse_ok(MIN_HEAD "<description>a&#13;&#10;b\tc</description>"
        "<devices><disk type='file'><source file='/x&#10;y&#9;z&quot;&lt;'/>"
        "<target dev='vda'/></disk></devices></domain>", 0);
    assert_string_equal(d->description, "a\r\nb\tc");
    assert_string_equal(d->disks[0].source_file, "/x\ny\tz\"<");
    char *x = domain_def_format(d, 0);
    struct domain_def *d2 = parse_ok(x, 0);
    assert_string_equal(d2->description, d->description);
    assert_string_equal(d2->disks[0].source_file, d->disks[0].source_file);
    free(x);
    domain_def_free(d);
    domain_def_free(d2);
}

/* What virt-install and older clients send that cvirt drops quietly. */
static void test_dropped_elements(void **state)
{
    struct domain_def *d = parse_ok(
        "<domain type='kvm'><name>t</name><memory>65536</memory>"
        "<os><type arch='x86_64' machine='q35'>hvm</type><boot dev='hd'/></os>"
        "<features><acpi/><apic/><vmport state='off'/></features>"
        "<cpu mode='host-passthrough'/><clock offset='utc'/>"
        "<pm><suspend-to-mem enabled='no'/></pm>"
        "<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>"
        "<controller type='usb' model='qemu-xhci'/><input type='tablet' bus='usb'/>"
        "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"
        "<video><model type='none'/></video>"
        "<console type='pty'/></devices></domain>", 0);
    assert_true(d->serial.present);
    assert_false(d->vconsole.present);
    assert_null(d->os.kernel);
    domain_def_free(d);
}

/* What virt-install picks for an OS it does not know becomes virtio, and
 * the output says so; a disk without a format is raw and remembers it. */
static void test_given_as_virtio(void **state)
{
    struct domain_def *d = parse_ok(MIN_XML(
        "<disk type='file'><driver name='qemu'/><source file='/a'/>"
        "<target dev='hda' bus='ide'/></disk>"
        "<disk type='file'><source file='/b'/><target dev='sdb'/></disk>"
        "<disk type='file'><driver name='qemu' type='raw'/><source file='/c'/>"
        "<target dev='sdc' bus='sata'/></disk>"
        "<interface type='bridge'><source bridge='br0'/><model type='e1000'/></interface>"), 0);
    assert_int_equal(d->ndisks, 3);
    assert_true(d->disks[0].format_absent);
    assert_true(d->disks[1].format_absent);
    assert_false(d->disks[2].format_absent);
    assert_int_equal(d->disks[0].format, DOMAIN_DISK_RAW);
    char *x = domain_def_format(d, 0);
    assert_non_null(strstr(x, "<target dev='hda' bus='virtio'/>"));
    assert_non_null(strstr(x, "<model type='virtio'/>"));
    assert_null(strstr(x, "e1000"));
    assert_null(strstr(x, "ide"));
    assert_non_null(strstr(x, "<driver name='qemu'/>\n      <source file='/a'/>"));
    assert_non_null(strstr(x, "<driver name='qemu' type='raw'/>\n      <source file='/c'/>"));
    struct domain_def *d2 = parse_ok(x, 0);
    assert_true(d2->disks[0].format_absent);
    assert_false(d2->disks[2].format_absent);
    free(x);
    domain_def_free(d);
    domain_def_free(d2);
}

/* ---- disk attach/detach ---- */

static void test_disk_edit(void **state)
{
    struct domain_def *d = parse_ok(MIN_XML(
        "<disk type='file'><source file='/a.img'/><target dev='vda'/></disk>"), 0);
    struct domain_disk *k = NULL;
    struct err e = {0};
    const char *frag = "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                       "<source file='/b.qcow2'/><target dev='vdb' bus='virtio'/></disk>";
    assert_int_equal(domain_disk_parse(frag, strlen(frag), &k, &e), 0);
    assert_int_equal(domain_def_add_disk(d, k, &e), 0);
    assert_int_equal(d->ndisks, 2);
    assert_string_equal(domain_def_find_disk(d, "/b.qcow2")->target_dev, "vdb");

    /* The same target again is refused, and the caller keeps the disk. */
    assert_int_equal(domain_disk_parse(frag, strlen(frag), &k, &e), 0);
    assert_int_equal(domain_def_add_disk(d, k, &e), -EEXIST);
    assert_string_equal(e.msg, "disk target dev 'vdb' is already in use");
    domain_disk_free(k);

    err_clear(&e);
    const char *bad = "<interface type='network'/>";
    assert_int_equal(domain_disk_parse(bad, strlen(bad), &k, &e), -EINVAL);
    assert_string_equal(e.msg, "expected <disk>, found <interface>");

    /* Detach by source file or by target. */
    err_clear(&e);
    struct domain_disk *out = NULL;
    assert_int_equal(domain_def_remove_disk(d, "/a.img", &out, &e), 0);
    assert_string_equal(out->target_dev, "vda");
    domain_disk_free(out);
    assert_int_equal(d->ndisks, 1);
    assert_int_equal(domain_def_remove_disk(d, "vdb", NULL, &e), 0);
    assert_int_equal(d->ndisks, 0);
    assert_int_equal(domain_def_remove_disk(d, "vdb", NULL, &e), -ENOENT);
    assert_string_equal(e.msg, "no disk with target dev or source file 'vdb'");
    domain_def_free(d);
}

static void test_net_edit(void **state)
{
    struct domain_def *d = parse_ok(MIN_XML(
        "<interface type='network'><source network='default'/>"
        "<mac address='52:54:00:00:00:01'/></interface>"), 0);
    struct domain_net *n = NULL;
    struct err e = {0};
    const char *frag = "<interface type='bridge'><source bridge='br0'/>"
                       "<mac address='52:54:00:00:00:02'/><model type='virtio'/></interface>";
    assert_string_equal(domain_device_kind(frag, strlen(frag)), "interface");
    assert_int_equal(domain_net_parse(frag, strlen(frag), &n, &e), 0);
    assert_int_equal(domain_def_add_net(d, n, &e), 0);
    assert_int_equal(d->nnets, 2);
    assert_string_equal(d->nets[1].source, "br0");

    assert_int_equal(domain_net_parse(frag, strlen(frag), &n, &e), 0);
    assert_int_equal(domain_def_add_net(d, n, &e), -EEXIST);
    assert_string_equal(e.msg, "an interface with MAC 52:54:00:00:00:02 already exists");
    domain_net_free(n);

    err_clear(&e);
    struct domain_net *out = NULL;
    assert_int_equal(domain_def_remove_net(d, (const uint8_t *)"\x52\x54\x00\x00\x00\x01",
                                           &out, &e), 0);
    assert_string_equal(out->source, "default");
    domain_net_free(out);
    assert_int_equal(d->nnets, 1);
    assert_int_equal(domain_def_remove_net(d, (const uint8_t *)"\x52\x54\x00\x00\x00\x01",
                                           NULL, &e), -ENOENT);
    assert_string_equal(e.msg, "no interface with MAC 52:54:00:00:00:01");

    const char *disk = "<disk type='file'><source file='/a'/><target dev='vda'/></disk>";
    assert_string_equal(domain_device_kind(disk, strlen(disk)), "disk");
    const char *other = "<hostdev mode='subsystem'/>";
    assert_null(domain_device_kind(other, strlen(other)));
    assert_null(domain_device_kind("<disk", 5));
    err_clear(&e);
    assert_int_equal(domain_net_parse(disk, strlen(disk), &n, &e), -EINVAL);
    assert_string_equal(e.msg, "expected <interface>, found <disk>");
    domain_def_free(d);
}

/* ---- cvirt-vmm argv ---- */

static void test_argv_errors(void **state)
{
    struct err e = {0};
    char **argv;
    struct domain_def *d = parse_ok("<domain type='kvm'><name>nokernel</name>"
                                    "<memory>65536</memory><os><type>hvm</type></os>"
                                    "</domain>", 0);
    assert_int_equal(domain_def_vmm_argv(d, NULL, &argv, &e), -EINVAL);
    assert_string_equal(e.msg, "domain 'nokernel' has no <os><kernel>: cvirt has no firmware "
                        "to boot a disk and starts a kernel directly");
    domain_def_free(d);

    err_clear(&e);
    d = parse_ok(MIN_XML("<disk type='file'><source file='/a,b.img'/><target dev='vda'/>"
                         "</disk>"), 0);
    assert_int_equal(domain_def_vmm_argv(d, NULL, &argv, &e), -EINVAL);
    assert_string_equal(e.msg, "disk 'vda': source file '/a,b.img' contains ',', which "
                        "cvirt-vmm's --disk option cannot carry");
    domain_def_free(d);

    err_clear(&e);
    d = parse_ok(MIN_XML("<interface type='network'><source network='default'/>"
                         "<mac address='52:54:00:00:00:01'/></interface>"), 0);
    assert_int_equal(domain_def_vmm_argv(d, NULL, &argv, &e), -EINVAL);
    assert_string_equal(e.msg, "interface 52:54:00:00:00:01: no tap device was given for it");
    const char *taps[] = { "vnet0" };
    struct domain_vmm_env env = { .tap_names = taps, .ntap_names = 1 };
    assert_int_equal(domain_def_vmm_argv(d, &env, &argv, &e), 0);
    int n = 0;
    while (argv[n])
        n++;
    assert_string_equal(argv[0], "cvirt-vmm");
    assert_string_equal(argv[n - 2], "--net");
    assert_string_equal(argv[n - 1], "tap=vnet0,mac=52:54:00:00:00:01");
    domain_argv_free(argv);
    domain_def_free(d);

    /* The virtio console on a socket the caller chose. */
    d = parse_ok(MIN_XML("<console type='pty'><target type='virtio'/></console>"), 0);
    struct domain_vmm_env env2 = { .vconsole_socket = "/run/cvirt/t.hvc0" };
    assert_int_equal(domain_def_vmm_argv(d, &env2, &argv, &e), 0);
    n = 0;
    while (argv[n] && strcmp(argv[n], "--vconsole"))
        n++;
    assert_non_null(argv[n]);
    assert_string_equal(argv[n + 1], "socket=/run/cvirt/t.hvc0");
    assert_string_equal(argv[n - 1], "none");   /* no serial port: --console none */
    domain_argv_free(argv);
    domain_def_free(d);
}

/* ---- PCI addresses of disks ---- */

#define ADDR(attrs) "<address " attrs "/>"
#define DISK_AT(dev, addr) "<disk type='file'><source file='/" dev ".img'/>" \
                           "<target dev='" dev "'/>" addr "</disk>"

static void test_disk_address(void **state)
{
    /* libvirt's own form, decimal and omitted zero attributes alike. */
    struct domain_def *d = parse_ok(MIN_XML(
        DISK_AT("vda", ADDR("type='pci' domain='0x0000' bus='0x00' slot='0x1f' function='0x0'"))
        DISK_AT("vdb", ADDR("type='pci' slot='9'"))
        DISK_AT("vdc", "")), 0);
    assert_int_equal(d->disks[0].pci_slot, 31);
    assert_int_equal(d->disks[1].pci_slot, 9);
    assert_int_equal(d->disks[2].pci_slot, 0);
    char *out = domain_def_format(d, DOMAIN_FORMAT_INACTIVE);
    assert_non_null(strstr(out, "<target dev='vda' bus='virtio'/>\n      <address type='pci' "
                           "domain='0x0000' bus='0x00' slot='0x1f' function='0x0'/>\n"));
    assert_non_null(strstr(out, "<address type='pci' domain='0x0000' bus='0x00' "
                           "slot='0x09' function='0x0'/>"));
    /* One address per disk that has one, in both the live and inactive form. */
    const char *p = out;
    int n = 0;
    while ((p = strstr(p, "<address ")))
        n++, p++;
    assert_int_equal(n, 2);
    char *live = domain_def_format(d, 0);
    assert_non_null(strstr(live, "slot='0x1f'"));
    /* The inactive form is a fixed point, and the copy keeps the slots. */
    struct domain_def *d2 = parse_ok(out, DOMAIN_PARSE_INACTIVE);
    char *out2 = domain_def_format(d2, DOMAIN_FORMAT_INACTIVE);
    assert_string_equal(out, out2);
    struct domain_def *c = domain_def_copy(d);
    assert_int_equal(c->disks[1].pci_slot, 9);

    /* A disk with a slot is named on --disk as the hot-plug code names it;
     * one without is left to the VMM. */
    char **argv;
    struct err e = {0};
    assert_int_equal(domain_def_vmm_argv(d, NULL, &argv, &e), 0);
    int i = 0;
    while (argv[i] && strcmp(argv[i], "--disk"))
        i++;
    assert_non_null(argv[i]);
    assert_string_equal(argv[i + 1], "/vda.img,format=raw,slot=31,id=virtio-disk-vda,"
                        "node=drive-vda");
    assert_string_equal(argv[i + 3], "/vdb.img,format=raw,slot=9,id=virtio-disk-vdb,"
                        "node=drive-vdb");
    assert_string_equal(argv[i + 5], "/vdc.img,format=raw");
    domain_argv_free(argv);

    /* A target that cannot name a QMP id still gets its slot. */
    domain_def_free(d);
    d = parse_ok(MIN_XML(DISK_AT("VDA", ADDR("type='pci' slot='0x3'"))), 0);
    assert_int_equal(domain_def_vmm_argv(d, NULL, &argv, &e), 0);
    for (i = 0; argv[i] && strcmp(argv[i], "--disk"); i++)
        ;
    assert_string_equal(argv[i + 1], "/VDA.img,format=raw,slot=3");
    domain_argv_free(argv);

    /* attach --config: a slot another disk has is refused, the caller
     * keeps the disk. */
    struct domain_disk *k = NULL;
    const char *frag = DISK_AT("vdz", ADDR("type='pci' slot='0x03'"));
    assert_int_equal(domain_disk_parse(frag, strlen(frag), &k, &e), 0);
    assert_int_equal(k->pci_slot, 3);
    assert_int_equal(domain_def_add_disk(d, k, &e), -EEXIST);
    assert_string_equal(e.msg, "PCI slot 0x3 is already used by disk 'VDA'");
    k->pci_slot = 4;
    assert_int_equal(domain_def_add_disk(d, k, &e), 0);
    assert_int_equal(d->disks[1].pci_slot, 4);

    free(out);
    free(out2);
    free(live);
    domain_def_free(d);
    domain_def_free(d2);
    domain_def_free(c);
}

static void test_disk_address_refused(void **state)
{
    static const struct { const char *addr, *msg; } cases[] = {
        { ADDR("type='drive' controller='0' bus='0' target='0' unit='0'"),
          "disk 'vda': <address> type 'drive' is not supported (cvirt disks are virtio PCI "
          "devices: type='pci')" },
        { ADDR("slot='0x05'"), "disk 'vda': <address> type '' is not supported (cvirt disks "
          "are virtio PCI devices: type='pci')" },
        { ADDR("type='pci' domain='0x0001' bus='0x00' slot='0x05' function='0x0'"),
          "disk 'vda': PCI address 0001:00:05.0: cvirt has one PCI bus (domain 0, bus 0) "
          "and puts a disk at function 0" },
        { ADDR("type='pci' bus='0x01' slot='0x05'"),
          "disk 'vda': PCI address 0000:01:05.0: cvirt has one PCI bus (domain 0, bus 0) "
          "and puts a disk at function 0" },
        { ADDR("type='pci' slot='0x05' function='0x1'"),
          "disk 'vda': PCI address 0000:00:05.1: cvirt has one PCI bus (domain 0, bus 0) "
          "and puts a disk at function 0" },
        { ADDR("type='pci' slot='0x05' multifunction='on'"),
          "disk 'vda': multifunction PCI devices are not supported" },
        { ADDR("type='pci' slot='0x00'"),
          "disk 'vda': PCI slot 0 is not available (slots 1 to 31 of bus 0)" },
        { ADDR("type='pci'"),
          "disk 'vda': PCI slot 0 is not available (slots 1 to 31 of bus 0)" },
        { ADDR("type='pci' slot='0x20'"),
          "disk 'vda': <address> slot '0x20' is not a number from 0 to 0x1f" },
        { ADDR("type='pci' slot='-1'"),
          "disk 'vda': <address> slot '-1' is not a number from 0 to 0x1f" },
        { ADDR("type='pci' slot='5x'"),
          "disk 'vda': <address> slot '5x' is not a number from 0 to 0x1f" },
        { ADDR("type='pci' slot=''"),
          "disk 'vda': <address> slot '' is not a number from 0 to 0x1f" },
        { ADDR("type='pci' slot='0x99999999999999999999'"),
          "disk 'vda': <address> slot '0x99999999999999999999' is not a number from 0 to 0x1f" },
        { ADDR("type='pci' slot='2'") ADDR("type='pci' slot='3'"),
          "disk 'vda': <address> is given more than once" },
    };
    char xml[1024];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(xml, sizeof xml, MIN_XML("<disk type='file'><source file='/a.img'/>"
                                          "<target dev='vda'/>%s</disk>"), cases[i].addr);
        expect_error(xml, cases[i].msg);
    }
    expect_error(MIN_XML(DISK_AT("vda", ADDR("type='pci' slot='0x05'"))
                         DISK_AT("vdb", ADDR("type='pci' slot='5'"))),
                 "disks 'vda' and 'vdb' are both on PCI slot 0x5");
}

/* ---- golden files ---- */

static char data_dir[PATH_MAX + 64];

/* tests/run-tests exports CVIRT_SRC; by hand, the build directory is
 * assumed to sit in the source tree (BUILD/tests/unit/THIS). */
static int find_data_dir(void)
{
    const char *src = getenv("CVIRT_SRC");
    if (src) {
        snprintf(data_dir, sizeof data_dir, "%s/tests/data/domxml", src);
        return 0;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n < 0)
        return -1;
    exe[n] = '\0';
    for (int i = 0; i < 4; i++)
        *strrchr(exe, '/') = '\0';
    snprintf(data_dir, sizeof data_dir, "%s/tests/data/domxml", exe);
    return 0;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        fwrite(tmp, 1, n, m);
    fclose(f);
    fclose(m);
    return buf;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        fail_msg("cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

static bool regen(void)
{
    const char *r = getenv("REGEN");
    return r && !strcmp(r, "1");
}

/* Compares text with the expected file, or rewrites it under REGEN=1. A
 * NULL text means the file must not exist. */
static void golden_check(const char *name, const char *ext, const char *text)
{
    char path[PATH_MAX + 160];
    snprintf(path, sizeof path, "%s/%s%s", data_dir, name, ext);
    if (regen()) {
        if (text)
            write_file(path, text);
        else
            unlink(path);
        return;
    }
    char *want = read_file(path);
    if (!text && want)
        fail_msg("%s%s exists but the input now fails to parse (REGEN=1 removes it)", name, ext);
    if (text && !want)
        fail_msg("%s%s is missing (REGEN=1 writes it)", name, ext);
    if (text && strcmp(text, want)) {
        fprintf(stderr, "--- expected %s%s\n%s--- got\n%s", name, ext, want, text);
        fail_msg("%s%s differs from the output", name, ext);
    }
    free(want);
}

/* Generated UUIDs and MACs are random; once checked for shape they are
 * replaced by fixed values so the expected output stays stable. */
static void pin_generated(struct domain_def *d, const char *input)
{
    char s[UUID_STRING_LEN], hex[33];
    uuid_format(d->uuid, s);
    for (int i = 0; i < 16; i++)
        sprintf(hex + 2 * i, "%02x", d->uuid[i]);
    if (!strcasestr(input, s) && !strcasestr(input, hex)) {
        assert_int_equal(d->uuid[6] >> 4, 4);
        uuid_parse("00000000-0000-4000-8000-000000000000", d->uuid);
    }
    for (size_t i = 0; i < d->nnets; i++) {
        char mac[18];
        domain_mac_format(d->nets[i].mac, mac);
        if (!strcasestr(input, mac)) {
            assert_memory_equal(d->nets[i].mac, "\x52\x54\x00", 3);
            memcpy(d->nets[i].mac, "\x52\x54\x00\xff\xff", 5);
            d->nets[i].mac[5] = (uint8_t)i;
        }
    }
}

static char *argv_text(const struct domain_def *d, const char *name)
{
    static const char *const taps[DOMAIN_MAX_NETS] = {
        "vnet0", "vnet1", "vnet2", "vnet3", "vnet4", "vnet5", "vnet6", "vnet7",
    };
    char ctl[256];
    snprintf(ctl, sizeof ctl, "/run/cvirt/%s.ctl", name);
    struct domain_vmm_env env = { .vmm_path = "cvirt-vmm", .control_path = ctl,
                                  .tap_names = taps, .ntap_names = DOMAIN_MAX_NETS };
    char **argv = NULL, *out = NULL;
    size_t len = 0;
    struct err e = {0};
    FILE *m = open_memstream(&out, &len);
    if (domain_def_vmm_argv(d, &env, &argv, &e) < 0)
        fprintf(m, "error: %s\n", e.msg);
    for (char **p = argv; p && *p; p++)
        fprintf(m, "%s\n", *p);
    fclose(m);
    domain_argv_free(argv);
    return out;
}

static void test_golden(void **state)
{
    const char *name = *state;
    char path[PATH_MAX + 160];
    snprintf(path, sizeof path, "%s/%s.xml", data_dir, name);
    char *in = read_file(path);
    assert_non_null(in);
    struct domain_def *d = NULL;
    struct err e = {0};
    if (domain_def_parse(in, strlen(in), 0, &d, &e) < 0) {
        char msg[ERR_MSG_MAX + 2];
        snprintf(msg, sizeof msg, "%s\n", e.msg);
        golden_check(name, ".err", msg);
        golden_check(name, ".out.xml", NULL);
        golden_check(name, ".argv", NULL);
        free(in);
        return;
    }
    golden_check(name, ".err", NULL);
    pin_generated(d, in);
    char *out = domain_def_format(d, 0);
    assert_non_null(out);
    golden_check(name, ".out.xml", out);
    /* The output is a fixed point: parsed and formatted again, unchanged. */
    struct domain_def *d2 = NULL;
    if (domain_def_parse(out, strlen(out), 0, &d2, &e) < 0)
        fail_msg("%s.out.xml does not parse: %s", name, e.msg);
    char *out2 = domain_def_format(d2, 0);
    assert_string_equal(out, out2);
    /* So is the inactive form, read back as a definition. */
    char *ina = domain_def_format(d, DOMAIN_FORMAT_INACTIVE);
    struct domain_def *d3 = NULL;
    if (domain_def_parse(ina, strlen(ina), DOMAIN_PARSE_INACTIVE, &d3, &e) < 0)
        fail_msg("%s: inactive XML does not parse: %s", name, e.msg);
    char *ina2 = domain_def_format(d3, DOMAIN_FORMAT_INACTIVE);
    assert_string_equal(ina, ina2);
    free(ina);
    free(ina2);
    domain_def_free(d3);
    char *av = argv_text(d, name);
    golden_check(name, ".argv", av);
    free(av);
    free(out2);
    free(out);
    free(in);
    domain_def_free(d);
    domain_def_free(d2);
}

static int golden_names(char ***names)
{
    DIR *dir = opendir(data_dir);
    if (!dir)
        return -1;
    int n = 0;
    *names = NULL;
    struct dirent *de;
    while ((de = readdir(dir))) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".xml") ||
            (len > 8 && !strcmp(de->d_name + len - 8, ".out.xml")))
            continue;
        *names = realloc(*names, (size_t)(n + 1) * sizeof(char *));
        (*names)[n++] = strndup(de->d_name, len - 4);
    }
    closedir(dir);
    /* readdir order is arbitrary; sorted output is stable across hosts. */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp((*names)[j - 1], (*names)[j]) > 0; j--) {
            char *t = (*names)[j];
            (*names)[j] = (*names)[j - 1];
            (*names)[j - 1] = t;
        }
    return n;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_units),
        cmocka_unit_test(test_memory_in_xml),
        cmocka_unit_test(test_uuid),
        cmocka_unit_test(test_mac),
        cmocka_unit_test(test_generated_ids),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_too_many_disks),
        cmocka_unit_test(test_no_external_entities),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_odd_characters),
        cmocka_unit_test(test_dropped_elements),
        cmocka_unit_test(test_given_as_virtio),
        cmocka_unit_test(test_disk_edit),
        cmocka_unit_test(test_net_edit),
        cmocka_unit_test(test_argv_errors),
        cmocka_unit_test(test_disk_address),
        cmocka_unit_test(test_disk_address_refused),
    };
    int fails = cmocka_run_group_tests_name("domain_conf", tests, NULL, NULL);

    char **names = NULL;
    int n = find_data_dir() < 0 ? -1 : golden_names(&names);
    if (n <= 0) {
        /* A golden suite that finds nothing must not pass quietly. */
        fprintf(stderr, "no golden files found in %s\n", data_dir);
        return 1;
    }
    struct CMUnitTest *g = calloc((size_t)n, sizeof(*g));
    for (int i = 0; i < n; i++) {
        g[i].name = names[i];
        g[i].test_func = test_golden;
        g[i].initial_state = names[i];
    }
    fails += _cmocka_run_group_tests("domxml_golden", g, (size_t)n, NULL, NULL);
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(g);
    return fails;
}
