/* Kernel probing and loading: e820, bzImage headers, PVH ELF notes, the
 * boot_params and hvm_start_info written into a fake guest memory. */
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

#include "util/le.h"
#include "vm.h"
#include "x86/boot.h"
#include "x86/layout.h"
#include "x86/mptable.h"


static void test_e820_layouts(void **state)
{
    struct e820_entry m[BOOT_E820_MAX];
    uint64_t sizes[] = { 64ULL << 20, 3ULL << 30, 5ULL << 30 };
    for (unsigned s = 0; s < 3; s++) {
        unsigned n = boot_e820(sizes[s], m, BOOT_E820_MAX);
        uint64_t ram = 0, prev_end = 0;
        for (unsigned i = 0; i < n; i++) {
            assert_true(m[i].addr >= prev_end); /* sorted, no overlap */
            prev_end = m[i].addr + m[i].size;
            if (m[i].type == E820_RAM)
                ram += m[i].size;
            /* Nothing may claim the 32-bit hole as RAM. */
            if (m[i].type == E820_RAM)
                assert_true(prev_end <= LAYOUT_MMIO_HOLE_START || m[i].addr >= LAYOUT_4G);
        }
        /* All RAM but the EBDA and BIOS area (0x9fc00..1 MiB) is usable. */
        assert_true(ram == sizes[s] - (LAYOUT_HIMEM_START - LAYOUT_EBDA_START));
    }
    assert_int_equal(boot_e820(5ULL << 30, m, 2), 2);
}

/* A minimal bzImage: boot sector + setup + a payload. */
static size_t make_bzimage(uint8_t *b, size_t cap, uint16_t proto, uint16_t xlf)
{
    memset(b, 0, cap);
    b[BP_SETUP_SECTS] = 1;
    le16_put(b + BP_BOOT_FLAG, 0xaa55);
    memcpy(b + BP_HEADER, "HdrS", 4);
    b[0x201] = 0x66; /* header ends at 0x268 */
    le16_put(b + BP_VERSION, proto);
    le16_put(b + BP_XLOADFLAGS, xlf);
    le32_put(b + BP_CMDLINE_SIZE, 64);
    le32_put(b + BP_INITRD_ADDR_MAX, 0x7fffffff);
    le32_put(b + BP_INIT_SIZE, 0x10000);
    for (size_t i = 1024; i < cap; i++)
        b[i] = (uint8_t)i;
    return cap;
}

static void test_probe_bzimage(void **state)
{
    uint8_t b[4096];
    struct boot_image img;
    struct err e = { 0 };
    make_bzimage(b, sizeof(b), 0x020f, 1);
    assert_int_equal(boot_probe(b, sizeof(b), &img, &e), 0);
    assert_int_equal(img.kind, BOOT_BZIMAGE);
    assert_int_equal(img.setup_size, 1024);
    assert_int_equal(img.init_size, 0x10000);

    make_bzimage(b, sizeof(b), 0x0204, 1);
    err_clear(&e);
    assert_int_equal(boot_probe(b, sizeof(b), &img, &e), -ENOEXEC);
    assert_non_null(strstr(e.msg, "too old"));

    make_bzimage(b, sizeof(b), 0x020f, 0);
    err_clear(&e);
    assert_int_equal(boot_probe(b, sizeof(b), &img, &e), -ENOEXEC);
    assert_non_null(strstr(e.msg, "64-bit"));

    make_bzimage(b, sizeof(b), 0x020f, 1);
    b[BP_SETUP_SECTS] = 200; /* setup beyond the file */
    err_clear(&e);
    assert_int_equal(boot_probe(b, sizeof(b), &img, &e), -ENOEXEC);

    err_clear(&e);
    assert_int_equal(boot_probe(b, 0x300, &img, &e), -ENOEXEC);
    memset(b, 0x5a, sizeof(b));
    err_clear(&e);
    assert_int_equal(boot_probe(b, sizeof(b), &img, &e), -ENOEXEC);
    assert_non_null(strstr(e.msg, "not a Linux bzImage"));
}

/* An ELF32 or ELF64 with one PT_LOAD at paddr and, optionally, a PVH note. */
static size_t make_elf(uint8_t *b, size_t cap, bool is64, uint64_t paddr, uint64_t entry,
                       unsigned descsz, bool note)
{
    memset(b, 0, cap);
    memcpy(b, "\x7f" "ELF", 4);
    b[4] = is64 ? 2 : 1;
    b[5] = 1;
    le16_put(b + 18, is64 ? 62 : 3);
    size_t ph = is64 ? 64 : 52, phsz = is64 ? 56 : 32;
    unsigned phnum = note ? 2 : 1;
    if (is64) {
        le64_put(b + 32, ph);
        le16_put(b + 54, (uint16_t)phsz);
        le16_put(b + 56, (uint16_t)phnum);
    } else {
        le32_put(b + 28, (uint32_t)ph);
        le16_put(b + 42, (uint16_t)phsz);
        le16_put(b + 44, (uint16_t)phnum);
    }
    size_t data = 512, notes = 256;
    uint8_t *p = b + ph;
    le32_put(p, 1); /* PT_LOAD */
    if (is64) {
        le64_put(p + 8, data); le64_put(p + 24, paddr); le64_put(p + 32, 128); le64_put(p + 40, 4096);
    } else {
        le32_put(p + 4, (uint32_t)data); le32_put(p + 12, (uint32_t)paddr);
        le32_put(p + 16, 128); le32_put(p + 20, 4096);
    }
    for (int i = 0; i < 128; i++)
        b[data + i] = (uint8_t)(0x80 + i);
    if (note) {
        p += phsz;
        size_t nlen = 12 + 4 + ((descsz + 3) & ~3u);
        le32_put(p, 4); /* PT_NOTE */
        if (is64) { le64_put(p + 8, notes); le64_put(p + 32, nlen); }
        else { le32_put(p + 4, (uint32_t)notes); le32_put(p + 16, (uint32_t)nlen); }
        uint8_t *n = b + notes;
        le32_put(n, 4); le32_put(n + 4, descsz); le32_put(n + 8, XEN_ELFNOTE_PHYS32_ENTRY);
        memcpy(n + 12, "Xen", 4);
        if (descsz == 8) le64_put(n + 16, entry); else le32_put(n + 16, (uint32_t)entry);
    }
    return cap;
}

static void test_probe_pvh(void **state)
{
    uint8_t b[2048];
    struct boot_image img;
    struct err e = { 0 };
    make_elf(b, sizeof(b), false, 0x100000, 0x100010, 4, true);
    assert_int_equal(boot_probe(b, sizeof(b), &img, &e), 0);
    assert_int_equal(img.kind, BOOT_PVH_ELF);
    assert_int_equal(img.pvh_entry, 0x100010);
    assert_int_equal(img.load_lo, 0x100000);
    assert_int_equal(img.load_hi, 0x101000);

    make_elf(b, sizeof(b), true, 0x1000000, 0x1000040, 8, true);
    assert_int_equal(boot_probe(b, sizeof(b), &img, &e), 0);
    assert_int_equal(img.pvh_entry, 0x1000040);

    make_elf(b, sizeof(b), true, 0x1000000, 0, 8, false);
    assert_int_equal(boot_probe(b, sizeof(b), &img, &e), -ENOEXEC);
    assert_non_null(strstr(e.msg, "PVH"));

    /* Note whose descriptor runs past the segment. */
    make_elf(b, sizeof(b), false, 0x100000, 0x100010, 4, true);
    le32_put(b + 256 + 4, 4000);
    err_clear(&e);
    assert_int_equal(boot_probe(b, sizeof(b), &img, &e), -ENOEXEC);

    /* Program headers beyond the end of the file. */
    make_elf(b, sizeof(b), false, 0x100000, 0x100010, 4, true);
    le32_put(b + 28, 0xfffffff0u);
    err_clear(&e);
    assert_int_equal(boot_probe(b, sizeof(b), &img, &e), -ENOEXEC);

    /* Not x86. */
    make_elf(b, sizeof(b), false, 0x100000, 0x100010, 4, true);
    le16_put(b + 18, 40);
    err_clear(&e);
    assert_int_equal(boot_probe(b, sizeof(b), &img, &e), -ENOEXEC);
    assert_non_null(strstr(e.msg, "machine"));

    /* Truncated after the magic. */
    err_clear(&e);
    assert_int_equal(boot_probe(b, 8, &img, &e), -ENOEXEC);
}

static char *write_tmp(const void *data, size_t len)
{
    char *path = strdup("/tmp/cvirt-test-boot-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
    return path;
}

static struct vm *fake_vm(uint64_t mem)
{
    struct vm *vm = calloc(1, sizeof(*vm));
    vm->ram_size = mem;
    vm->ram = calloc(1, mem);
    assert_non_null(vm->ram);
    vm->slots[0] = (struct mem_slot){ 0, mem, vm->ram };
    vm->nslots = 1;
    vm->cfg.mem_size = mem;
    vm->cfg.ncpus = 2;
    return vm;
}

static void free_vm(struct vm *vm)
{
    free(vm->ram);
    free(vm);
}

static void test_load_pvh(void **state)
{
    uint8_t b[2048];
    make_elf(b, sizeof(b), false, 0x100000, 0x100010, 4, true);
    char *kpath = write_tmp(b, sizeof(b));
    uint8_t initrd[10000];
    for (size_t i = 0; i < sizeof(initrd); i++)
        initrd[i] = (uint8_t)(i * 7);
    char *ipath = write_tmp(initrd, sizeof(initrd));

    struct vm *vm = fake_vm(32ULL << 20);
    vm->cfg.kernel = kpath;
    vm->cfg.initrd = ipath;
    vm->cfg.cmdline = "console=ttyS0 cpus=2";
    struct err e = { 0 };
    assert_int_equal(boot_load(vm, &e), 0);
    assert_true(vm->entry_pvh);
    assert_int_equal(vm->entry, 0x100010);
    assert_memory_equal(vm->ram + 0x100000, b + 512, 128);
    assert_int_equal(vm->ram[0x100000 + 200], 0); /* bss zeroed */
    const uint8_t *si = vm->ram + LAYOUT_START_INFO_ADDR;
    assert_int_equal(le32_get(si), PVH_START_MAGIC);
    assert_int_equal(le32_get(si + 12), 1);
    assert_string_equal((const char *)vm->ram + le64_get(si + 24), "console=ttyS0 cpus=2");
    assert_int_equal(le64_get(si + 32), vm->rsdp_gpa);
    assert_memory_equal(vm->ram + le64_get(si + 32), "RSD PTR ", 8);
    const uint8_t *mod = vm->ram + le64_get(si + 16);
    uint64_t iaddr = le64_get(mod), isize = le64_get(mod + 8);
    assert_int_equal(isize, sizeof(initrd));
    assert_int_equal(iaddr & 0xfff, 0);
    assert_true(iaddr + isize <= vm->ram_size && iaddr >= 0x101000);
    assert_memory_equal(vm->ram + iaddr, initrd, sizeof(initrd));
    unsigned n = le32_get(si + 48);
    assert_true(n >= 3);
    const uint8_t *mm = vm->ram + le64_get(si + 40);
    uint64_t ram = 0;
    for (unsigned i = 0; i < n; i++)
        if (le32_get(mm + 24 * i + 16) == E820_RAM)
            ram += le64_get(mm + 24 * i + 8);
    assert_true(ram == vm->ram_size - (LAYOUT_HIMEM_START - LAYOUT_EBDA_START));

    /* An initrd bigger than the memory is refused with a clear message. */
    free_vm(vm);
    vm = fake_vm(16ULL << 20);
    uint8_t *huge = calloc(1, 17 << 20);
    char *hpath = write_tmp(huge, 17 << 20);
    vm->cfg.kernel = kpath;
    vm->cfg.initrd = hpath;
    err_clear(&e);
    assert_int_equal(boot_load(vm, &e), -ENOSPC);
    assert_non_null(strstr(e.msg, "does not fit"));
    unlink(hpath);
    free(hpath);
    free(huge);

    /* A missing kernel file names the path. */
    vm->cfg.kernel = "/nonexistent/kernel";
    vm->cfg.initrd = NULL;
    err_clear(&e);
    assert_int_equal(boot_load(vm, &e), -ENOENT);
    assert_non_null(strstr(e.msg, "/nonexistent/kernel"));
    free_vm(vm);
    unlink(kpath);
    unlink(ipath);
    free(kpath);
    free(ipath);
}

static void test_load_bzimage(void **state)
{
    static uint8_t b[8192];
    make_bzimage(b, sizeof(b), 0x020f, 1);
    char *kpath = write_tmp(b, sizeof(b));
    struct vm *vm = fake_vm(32ULL << 20);
    vm->cfg.kernel = kpath;
    vm->cfg.cmdline = "quiet";
    struct err e = { 0 };
    assert_int_equal(boot_load(vm, &e), 0);
    assert_false(vm->entry_pvh);
    assert_int_equal(vm->entry, 0x100200);
    const uint8_t *bp = vm->ram + LAYOUT_BOOT_PARAMS_ADDR;
    assert_memory_equal(bp + BP_HEADER, "HdrS", 4);
    assert_int_equal(bp[BP_TYPE_OF_LOADER], 0xff);
    assert_true(bp[BP_LOADFLAGS] & 1);
    assert_string_equal((const char *)vm->ram + le32_get(bp + BP_CMD_LINE_PTR), "quiet");
    assert_int_equal(le64_get(bp + BP_ACPI_RSDP_ADDR), vm->rsdp_gpa);
    assert_true(bp[BP_E820_ENTRIES] >= 3);
    assert_memory_equal(vm->ram + 0x100000, b + 1024, sizeof(b) - 1024);

    /* The command line limit comes from the kernel's header (64 here). */
    char longcmd[100];
    memset(longcmd, 'a', sizeof(longcmd) - 1);
    longcmd[sizeof(longcmd) - 1] = '\0';
    vm->cfg.cmdline = longcmd;
    err_clear(&e);
    assert_int_equal(boot_load(vm, &e), -E2BIG);
    assert_non_null(strstr(e.msg, "command line"));
    free_vm(vm);
    unlink(kpath);
    free(kpath);
}

static uint8_t sum8(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    while (n--)
        s += *p++;
    return s;
}

static void test_mptable(void **state)
{
    static uint8_t buf[3072 + 16];
    struct err e = { 0 };
    for (unsigned n = 1; n <= 64; n *= 4) {
        assert_int_equal(mptable_build(n, buf, sizeof(buf), 0x9f000, 3072, &e), 0);
        const uint8_t *fp = buf + 3072;
        assert_memory_equal(fp, "_MP_", 4);
        assert_int_equal(le32_get(fp + 4), 0x9f000);
        assert_int_equal(sum8(fp, 16), 0);
        assert_memory_equal(buf, "PCMP", 4);
        unsigned len = buf[4] | buf[5] << 8, count = buf[34] | buf[35] << 8;
        assert_int_equal(sum8(buf, len), 0);
        assert_int_equal(le32_get(buf + 36), LAYOUT_LAPIC_ADDR);
        /* Walk the entries: n processors (the first is the BSP), one IOAPIC. */
        unsigned cpus = 0, bsp = 0, ioapics = 0, irq0_pin = 0, off = 44;
        for (unsigned i = 0; i < count; i++) {
            assert_true(off < len);
            const uint8_t *en = buf + off;
            if (en[0] == 0) {
                assert_int_equal(en[1], cpus);
                cpus++;
                bsp += (en[3] & 2) != 0;
                off += 20;
                continue;
            }
            if (en[0] == 2) {
                ioapics++;
                assert_int_equal(le32_get(en + 4), LAYOUT_IOAPIC_ADDR);
            }
            if (en[0] == 3 && en[1] == 0 && en[5] == 0)
                irq0_pin = en[7];
            off += 8;
        }
        assert_int_equal(off, len);
        assert_int_equal(cpus, n);
        assert_int_equal(bsp, 1);
        assert_int_equal(ioapics, 1);
        assert_int_equal(irq0_pin, 2); /* as the MADT's override */
    }
    err_clear(&e);
    assert_int_equal(mptable_build(64, buf, 600, 0x9f000, 512, &e), -ENOSPC);
    assert_non_null(strstr(e.msg, "do not fit"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_e820_layouts),
        cmocka_unit_test(test_probe_bzimage),
        cmocka_unit_test(test_probe_pvh),
        cmocka_unit_test(test_load_pvh),
        cmocka_unit_test(test_load_bzimage),
        cmocka_unit_test(test_mptable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
