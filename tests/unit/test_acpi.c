/* ACPI tables: parsed back from the buffer the way a guest would find
 * them (RSDP -> XSDT/RSDT -> FADT/MADT/MCFG -> DSDT/FACS), and the DSDT
 * disassembled with iasl as an independent AML reader. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "x86/acpi.h"
#include "x86/layout.h"

#define BUF_LEN 0x20000
#define GPA_BASE LAYOUT_ACPI_START

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16;
}
static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static uint8_t sum8(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    for (size_t i = 0; i < n; i++)
        s = (uint8_t)(s + p[i]);
    return s;
}

struct image {
    uint8_t *buf;
    size_t len;
    uint64_t gpa;
    size_t used;     /* end of the last table seen */
};

/* Maps a guest address of a table to the buffer, checking it lies inside
 * and that its length and checksum are right. */
static const uint8_t *table_at(struct image *im, uint64_t gpa,
                               const char *sig, size_t min_len)
{
    assert_true(gpa >= im->gpa);
    uint64_t off = gpa - im->gpa;
    assert_true(off + 36 <= im->len);
    const uint8_t *t = im->buf + off;
    assert_memory_equal(t, sig, 4);
    uint32_t len = rd32(t + 4);
    assert_true(len >= min_len);
    assert_true(off + len <= im->len);
    assert_int_equal(off % 8, 0);
    if (strcmp(sig, "FACS") != 0) {
        assert_int_equal(sum8(t, len), 0);
        assert_memory_equal(t + 10, "CVIRT ", 6);
        assert_memory_equal(t + 16, "CVIRT", 5);
        assert_memory_equal(t + 28, "CVRT", 4);
    }
    if (off + len > im->used)
        im->used = off + len;
    return t;
}

static void check_gas_io(const uint8_t *g, unsigned bits, uint64_t port)
{
    assert_int_equal(g[0], 1);          /* system I/O */
    assert_int_equal(g[1], bits);
    assert_int_equal(g[2], 0);
    assert_int_equal(rd64(g + 4), port);
}

static void check_fadt(struct image *im, const uint8_t *f,
                       const uint8_t **dsdt)
{
    assert_int_equal(rd32(f + 4), 276);
    assert_int_equal(f[8], 6);
    assert_int_equal(rd16(f + 46), LAYOUT_IRQ_SCI);
    assert_int_equal(rd32(f + 48), 0);   /* no SMI handoff */
    assert_int_equal(rd32(f + 56), LAYOUT_PORT_PM1A_EVT);
    assert_int_equal(rd32(f + 64), LAYOUT_PORT_PM1A_CNT);
    assert_int_equal(rd32(f + 76), LAYOUT_PORT_PM_TMR);
    assert_int_equal(rd32(f + 80), LAYOUT_PORT_GPE0_BLK);
    assert_int_equal(f[88], 4);
    assert_int_equal(f[89], 2);
    assert_int_equal(f[91], 4);
    assert_int_equal(f[92], 8);
    assert_int_equal(f[108], 0x32);                 /* RTC century */
    uint16_t boot = rd16(f + 109);
    assert_true(boot & (1u << 1));                  /* 8042 */
    assert_false(boot & (1u << 5));                 /* CMOS RTC present */
    uint32_t flags = rd32(f + 112);
    assert_true(flags & (1u << 10));                /* RESET_REG_SUP */
    assert_true(flags & (1u << 8));                 /* TMR_VAL_EXT */
    assert_false(flags & (1u << 20));               /* not HW-reduced */
    check_gas_io(f + 116, 8, LAYOUT_PORT_RESET_CF9);
    assert_int_equal(f[128], LAYOUT_ACPI_RESET_VALUE);
    check_gas_io(f + 148, 32, LAYOUT_PORT_PM1A_EVT);
    check_gas_io(f + 172, 16, LAYOUT_PORT_PM1A_CNT);
    check_gas_io(f + 208, 32, LAYOUT_PORT_PM_TMR);
    check_gas_io(f + 220, 64, LAYOUT_PORT_GPE0_BLK);

    /* FACS through exactly one of the two pointers, 64-byte aligned. */
    uint64_t facs = rd32(f + 36), xfacs = rd64(f + 132);
    assert_true((facs != 0) != (xfacs != 0));
    facs = facs ? facs : xfacs;
    assert_int_equal(facs % 64, 0);
    const uint8_t *fc = table_at(im, facs, "FACS", 64);
    assert_int_equal(rd32(fc + 4), 64);

    assert_int_equal(rd32(f + 40), rd64(f + 140));
    *dsdt = table_at(im, rd64(f + 140), "DSDT", 37);
}

static void check_madt(const uint8_t *m, unsigned ncpus)
{
    uint32_t len = rd32(m + 4);
    assert_int_equal(rd32(m + 36), LAYOUT_LAPIC_ADDR);
    assert_true(rd32(m + 40) & 1);                  /* PCAT_COMPAT */
    unsigned lapics = 0, ioapics = 0, nmis = 0;
    bool irq0 = false, sci = false;
    uint8_t ioapic_id = 0;
    size_t off = 44;
    while (off < len) {
        const uint8_t *e = m + off;
        assert_true(e[1] >= 2 && off + e[1] <= len);
        switch (e[0]) {
        case 0:
            assert_int_equal(e[1], 8);
            assert_int_equal(e[2], lapics);         /* uid */
            assert_int_equal(e[3], lapics);         /* APIC id */
            assert_int_equal(rd32(e + 4) & 1, 1);   /* enabled */
            lapics++;
            break;
        case 1:
            assert_int_equal(e[1], 12);
            ioapic_id = e[2];
            assert_int_equal(rd32(e + 4), LAYOUT_IOAPIC_ADDR);
            assert_int_equal(rd32(e + 8), 0);
            ioapics++;
            break;
        case 2:
            assert_int_equal(e[1], 10);
            assert_int_equal(e[2], 0);
            if (e[3] == 0) {
                assert_int_equal(rd32(e + 4), 2);
                irq0 = true;
            } else {
                assert_int_equal(e[3], LAYOUT_IRQ_SCI);
                assert_int_equal(rd32(e + 4), LAYOUT_IRQ_SCI);
                assert_int_equal(rd16(e + 8) & 3, 1);        /* high */
                assert_int_equal((rd16(e + 8) >> 2) & 3, 3); /* level */
                sci = true;
            }
            break;
        case 4:
            assert_int_equal(e[1], 6);
            assert_int_equal(e[2], 0xff);
            assert_int_equal(e[5], 1);              /* LINT1 */
            nmis++;
            break;
        default:
            fail_msg("unexpected MADT entry type %u", e[0]);
        }
        off += e[1];
    }
    assert_int_equal(off, len);
    assert_int_equal(lapics, ncpus);
    assert_int_equal(ioapics, 1);
    assert_true(ioapic_id >= ncpus);
    assert_int_equal(nmis, 1);
    assert_true(irq0 && sci);
}

static void check_mcfg(const uint8_t *m, const struct acpi_config *cfg)
{
    assert_int_equal(rd32(m + 4), 60);
    assert_int_equal(rd64(m + 44), cfg->ecam_base);
    assert_int_equal(rd16(m + 52), 0);
    assert_int_equal(m[54], 0);
    assert_int_equal(m[55], cfg->ecam_end_bus);
}

/* Follows the whole tree; returns the DSDT. */
static const uint8_t *check_image(struct image *im,
                                  const struct acpi_config *cfg)
{
    const uint8_t *r = im->buf;
    assert_memory_equal(r, "RSD PTR ", 8);
    assert_int_equal(sum8(r, 20), 0);
    assert_int_equal(sum8(r, 36), 0);
    assert_int_equal(r[15], 2);
    assert_int_equal(rd32(r + 20), 36);
    assert_memory_equal(r + 9, "CVIRT ", 6);

    const uint8_t *x = table_at(im, rd64(r + 24), "XSDT", 36);
    const uint8_t *rs = table_at(im, rd32(r + 16), "RSDT", 36);
    unsigned n = (rd32(x + 4) - 36) / 8;
    assert_int_equal(rd32(x + 4), 36 + 8 * n);
    assert_int_equal(rd32(rs + 4), 36 + 4 * n);
    assert_int_equal(n, cfg->pci ? 3 : 2);

    const uint8_t *fadt = NULL, *madt = NULL, *mcfg = NULL, *dsdt = NULL;
    for (unsigned i = 0; i < n; i++) {
        uint64_t a = rd64(x + 36 + 8 * i);
        assert_int_equal(rd32(rs + 36 + 4 * i), a);
        const uint8_t *t = im->buf + (a - im->gpa);
        if (!memcmp(t, "FACP", 4) && !fadt)
            fadt = table_at(im, a, "FACP", 276);
        else if (!memcmp(t, "APIC", 4) && !madt)
            madt = table_at(im, a, "APIC", 44);
        else if (!memcmp(t, "MCFG", 4) && !mcfg)
            mcfg = table_at(im, a, "MCFG", 60);
        else
            fail_msg("unexpected or repeated XSDT entry %.4s", t);
    }
    assert_non_null(fadt);
    assert_non_null(madt);
    check_fadt(im, fadt, &dsdt);
    check_madt(madt, cfg->ncpus);
    if (cfg->pci) {
        assert_non_null(mcfg);
        check_mcfg(mcfg, cfg);
    } else {
        assert_null(mcfg);
    }
    return dsdt;
}

static const struct acpi_config *cfg_for(unsigned ncpus, bool pci,
                                         struct acpi_config *c)
{
    memset(c, 0, sizeof(*c));
    c->ncpus = ncpus;
    c->pci = pci;
    c->ecam_base = LAYOUT_PCIE_ECAM_START;
    c->ecam_end_bus = 255;
    return c;
}

/* iasl and acpiexec (ACPICA, the interpreter Linux uses) come together
 * in acpica-tools. Missing tools fail the test unless explicitly allowed,
 * and say so loudly either way. */
static void require_tool(const char *tool)
{
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
    if (system(cmd) == 0)
        return;
    /* Both streams: the runner keeps stdout as the TAP log. */
    char msg[160];
    snprintf(msg, sizeof(msg), "# %s NOT FOUND on PATH: ACPI tables not "
             "checked by ACPICA (install acpica-tools)\n", tool);
    fputs(msg, stdout);
    fflush(stdout);
    fputs(msg, stderr);
    const char *allow = getenv("CVIRT_ALLOW_NO_IASL");
    if (allow && strcmp(allow, "1") == 0)
        skip();
    fail_msg("%s missing; set CVIRT_ALLOW_NO_IASL=1 to skip", tool);
}

static void require_iasl(void)
{
    require_tool("iasl");
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *s = NULL;
    size_t cap = 0, len = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 65536;
            s = realloc(s, cap);
            assert_non_null(s);
        }
        size_t got = fread(s + len, 1, 4096, f);
        len += got;
        if (got == 0)
            break;
    }
    fclose(f);
    s[len] = '\0';
    return s;
}

static void write_table(const char *dir, const char *name, const uint8_t *t)
{
    char path[96];
    snprintf(path, sizeof(path), "%s/%s.dat", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(t, 1, rd32(t + 4), f), rd32(t + 4));
    fclose(f);
}

/* Disassembles one table with iasl; returns the .dsl text. */
static char *disassemble(const uint8_t *t, const char *name)
{
    char dir[] = "/tmp/cvirt-acpi-XXXXXX", path[96], cmd[400];
    assert_non_null(mkdtemp(dir));
    write_table(dir, name, t);
    snprintf(cmd, sizeof(cmd), "cd %s && iasl -d %s.dat >log 2>&1", dir,
             name);
    int st = system(cmd);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        snprintf(cmd, sizeof(cmd), "cat %s/log >&2", dir);
        (void)system(cmd);
        fail_msg("iasl -d %s failed", name);
    }
    snprintf(path, sizeof(path), "%s/%s.dsl", dir, name);
    char *text = read_text(path);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    return text;
}

static void check_dsdt_iasl(const uint8_t *dsdt, const struct acpi_config *c)
{
    char *dsl = disassemble(dsdt, "dsdt");
    assert_non_null(strstr(dsl, "_S5_"));
    assert_non_null(strstr(dsl, "PNP0501"));
    assert_non_null(strstr(dsl, "PNP0B00"));
    assert_non_null(strstr(dsl, "0x03F8"));
    if (c->pci) {
        assert_non_null(strstr(dsl, "PNP0A08"));
        assert_non_null(strstr(dsl, "PNP0A03"));
        assert_non_null(strstr(dsl, "WordBusNumber"));
        assert_non_null(strstr(dsl, "0xDFFFFFFF"));
        /* The INTx routing, as iasl reads it back. */
        assert_non_null(strstr(dsl, "Name (_PRT, Package (0x80)"));
        /* Hotplug: the register block, every slot, the GPE method. */
        assert_non_null(strstr(dsl, "OperationRegion (PCST, SystemIO, 0xAE00, 0x0C)"));
        assert_non_null(strstr(dsl, "B0EJ,   32"));
        assert_non_null(strstr(dsl, "Device (S01)"));
        assert_non_null(strstr(dsl, "Device (S1F)"));
        assert_null(strstr(dsl, "Device (S00)"));
        assert_non_null(strstr(dsl, "B0EJ = 0x80000000"));
        assert_non_null(strstr(dsl, "If ((Local0 & 0x02))"));
        assert_non_null(strstr(dsl, "Notify (S01, One)"));
        assert_non_null(strstr(dsl, "Notify (S1F, 0x03)"));
        assert_non_null(strstr(dsl, "Method (_E01, 0, NotSerialized)"));
        assert_non_null(strstr(dsl, "\\_SB.PCI0.PCNT ()"));
    } else {
        assert_null(strstr(dsl, "PNP0A08"));
    }
    /* One processor device per vCPU. */
    unsigned cpus = 0;
    for (const char *p = dsl; (p = strstr(p, "\"ACPI0007\"")); p++)
        cpus++;
    assert_int_equal(cpus, c->ncpus);
    free(dsl);
}

static void run_config(unsigned ncpus, bool pci, bool disasm)
{
    struct acpi_config c;
    struct err e = { 0 };
    uint64_t rsdp = 0;
    struct image im = { .len = BUF_LEN, .gpa = GPA_BASE };
    im.buf = malloc(BUF_LEN);
    assert_non_null(im.buf);
    memset(im.buf, 0xa5, BUF_LEN);
    cfg_for(ncpus, pci, &c);
    assert_int_equal(acpi_build(&c, im.buf, im.len, im.gpa, &rsdp, &e), 0);
    assert_int_equal(rsdp, GPA_BASE);
    const uint8_t *dsdt = check_image(&im, &c);
    if (disasm) {
        require_iasl();
        check_dsdt_iasl(dsdt, &c);
    }
    free(im.buf);
}

static void test_1cpu(void **s) { (void)s; run_config(1, false, false); }
static void test_1cpu_pci(void **s) { (void)s; run_config(1, true, false); }
static void test_2cpu(void **s) { (void)s; run_config(2, false, false); }
static void test_2cpu_pci(void **s) { (void)s; run_config(2, true, false); }
static void test_64cpu(void **s) { (void)s; run_config(64, false, false); }
static void test_64cpu_pci(void **s) { (void)s; run_config(64, true, false); }

/* The same configurations, with the DSDT read back by iasl. */
static void test_dsdt_iasl_1cpu(void **s)
{
    (void)s;
    run_config(1, false, true);
}

static void test_dsdt_iasl_1cpu_pci(void **s)
{
    (void)s;
    run_config(1, true, true);
}

static void test_dsdt_iasl_2cpu(void **s)
{
    (void)s;
    run_config(2, false, true);
}

static void test_dsdt_iasl_2cpu_pci(void **s)
{
    (void)s;
    run_config(2, true, true);
}

static void test_dsdt_iasl_64cpu(void **s)
{
    (void)s;
    run_config(64, false, true);
}

static void test_dsdt_iasl_64cpu_pci(void **s)
{
    (void)s;
    run_config(64, true, true);
}

/* Every table of the real tree must also be readable by iasl's
 * data-table disassembler. */
static void test_iasl_reads_tables(void **state)
{
    (void)state;
    require_iasl();
    struct acpi_config c;
    struct err e = { 0 };
    uint64_t rsdp;
    uint8_t *buf = calloc(1, BUF_LEN);
    assert_non_null(buf);
    assert_int_equal(acpi_build(cfg_for(4, true, &c), buf, BUF_LEN,
                                GPA_BASE, &rsdp, &e), 0);
    const uint8_t *x = buf + (rd64(buf + 24) - GPA_BASE);
    char *dsl = disassemble(x, "xsdt");
    free(dsl);
    for (unsigned i = 0; i < 3; i++) {
        const uint8_t *t = buf + (rd64(x + 36 + 8 * i) - GPA_BASE);
        char name[5] = { 0 };
        memcpy(name, t, 4);
        dsl = disassemble(t, name);
        if (!strcmp(name, "APIC"))
            assert_non_null(strstr(dsl, "FEC00000"));
        if (!strcmp(name, "FACP"))
            assert_non_null(strstr(dsl, "0000000000000CF9"));
        if (!strcmp(name, "MCFG"))
            assert_non_null(strstr(dsl, "00000000E0000000"));
        /* iasl flags checksum trouble in its output. */
        assert_null(strstr(dsl, "Incorrect checksum"));
        free(dsl);
    }
    free(buf);
}

/* Collapses runs of blanks so expectations do not depend on how acpiexec
 * aligns its columns. */
static void squeeze(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == ' ' && w > s && w[-1] == ' ')
            continue;
        *w++ = *r;
    }
    *w = '\0';
}

/* Whether acpiexec's line for the notify on device dev carries what. */
static bool notify_is(const char *out, const char *dev, const char *what)
{
    char key[64];
    snprintf(key, sizeof(key), "Received a System Notify on [%s]", dev);
    const char *line = strstr(out, key);
    if (!line)
        return false;
    const char *end = strchr(line, '\n');
    size_t n = end ? (size_t)(end - line) : strlen(line);
    const char *hit = strstr(line, what);
    return hit && (size_t)(hit - line) < n;
}

/* ACPICA's own reading of \\_SB.PCI0._PRT: every slot's four pins, each a
 * static GSI (no link device) on IOAPIC inputs 16..19, rotating by slot
 * so INTA# of adjacent slots lands on different lines. */
static void check_prt(const char *out)
{
    assert_non_null(strstr(out, "Evaluating \\_SB.PCI0._PRT"));
    assert_non_null(strstr(out, "[Package] Contains 128 Elements:"));
    for (unsigned slot = 0; slot < 32; slot++) {
        for (unsigned pin = 0; pin < 4; pin++) {
            char want[200];
            snprintf(want, sizeof(want),
                     "[%02X] PCI IRQ Routing Table Package\n Address : %016X\n"
                     " Pin : %08X\n Source : [NULL NAMESTRING]\n Source Index : %08X\n",
                     slot * 4 + pin, slot << 16 | 0xffff, pin, 16 + (slot + pin) % 4);
            if (!strstr(out, want))
                fail_msg("_PRT lacks slot %u pin %u -> GSI %u", slot, pin,
                         16 + (slot + pin) % 4);
        }
    }
}

/* Loads the FADT, DSDT, MADT and MCFG into ACPICA's acpiexec and
 * evaluates the namespace objects an OS reads. */
static void test_acpiexec_loads_tables(void **state)
{
    (void)state;
    require_tool("acpiexec");
    struct acpi_config c;
    struct err e = { 0 };
    uint64_t rsdp;
    struct image im = { .len = BUF_LEN, .gpa = GPA_BASE };
    im.buf = calloc(1, BUF_LEN);
    assert_non_null(im.buf);
    cfg_for(2, true, &c);
    assert_int_equal(acpi_build(&c, im.buf, im.len, im.gpa, &rsdp, &e), 0);
    const uint8_t *dsdt = check_image(&im, &c);
    const uint8_t *x = im.buf + (rd64(im.buf + 24) - GPA_BASE);

    char dir[] = "/tmp/cvirt-acpi-XXXXXX", cmd[1024], path[96];
    assert_non_null(mkdtemp(dir));
    write_table(dir, "DSDT", dsdt);
    for (unsigned i = 0; i < 3; i++) {
        const uint8_t *t = im.buf + (rd64(x + 36 + 8 * i) - GPA_BASE);
        char name[5] = { 0 };
        memcpy(name, t, 4);
        write_table(dir, name, t);
    }
    snprintf(cmd, sizeof(cmd),
             "cd %s && acpiexec -b 'evaluate \\_S5; "
             "resources \\_SB.COM1; resources \\_SB.RTC; "
             "resources \\_SB.MBRS; resources \\_SB.PCI0; "
             "evaluate \\_SB.PCI0._PRT; evaluate \\_GPE._E01; "
             "evaluate \\_SB.PCI0.S03._EJ0 1; evaluate \\_SB.PCI0.S1F._SUN' "
             "FACP.dat DSDT.dat APIC.dat MCFG.dat >out 2>&1", dir);
    int st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    snprintf(path, sizeof(path), "%s/out", dir);
    char *out = read_text(path);
    squeeze(out);

    /* ACPICA validates the FADT (32-bit vs GAS blocks) and checksums as
     * it loads; any complaint fails the test. */
    assert_null(strstr(out, "Firmware Warning"));
    assert_null(strstr(out, "Firmware Error"));
    assert_null(strstr(out, "ACPI Error"));
    assert_null(strstr(out, "ACPI Warning"));
    assert_non_null(strstr(out, "ACPI: FACP"));
    assert_non_null(strstr(out, "CVIRTFAC"));
    /* GPE0 block of 8 bytes = 32 GPEs, on the SCI. */
    assert_non_null(strstr(out, "GPE 00 to 1F [_GPE] 4 regs on interrupt "
                                "0x9 (SCI)"));
    assert_non_null(strstr(out, "Contains 4 Elements:\n [Integer] = "
                                "0000000000000005\n [Integer] = "
                                "0000000000000005\n"));
    assert_non_null(strstr(out, "Address Minimum : 03F8"));
    assert_non_null(strstr(out, "Interrupt List : 4"));
    assert_non_null(strstr(out, "Address Minimum : 0070"));
    assert_non_null(strstr(out, "Interrupt List : 8"));
    assert_non_null(strstr(out, "Address Minimum : 0600"));
    assert_non_null(strstr(out, "Address : E0000000"));
    assert_non_null(strstr(out, "Resource Type : Bus Number Range"));
    assert_non_null(strstr(out, "Address Maximum : 0CF7"));
    assert_non_null(strstr(out, "Address Minimum : 0D00"));
    assert_non_null(strstr(out, "Address Maximum : DFFFFFFF"));
    check_prt(out);
    /* The hotplug methods run to the end in ACPICA (the simulated I/O
     * region reads zero, so PCNT notifies nothing). */
    assert_non_null(strstr(out, "No object was returned from evaluation of \\_GPE._E01"));
    assert_non_null(strstr(out, "No object was returned from evaluation of "
                                "\\_SB.PCI0.S03._EJ0"));
    assert_non_null(strstr(out, "Evaluation of \\_SB.PCI0.S1F._SUN returned object"));
    assert_non_null(strstr(out, "[Integer] = 000000000000001F"));
    free(out);
    free(im.buf);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static unsigned count_of(const char *s, const char *needle)
{
    unsigned n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* The hotplug GPE method as ACPICA runs it, with the registers preset
 * through acpiexec's namespace init file: each slot bit of PCIU gets a
 * device check, each bit of PCID an eject request, nothing else; _EJ0
 * writes its slot's bit to B0EJ. */
static void test_acpiexec_hotplug_notifies(void **state)
{
    (void)state;
    require_tool("acpiexec");
    struct acpi_config c;
    struct err e = { 0 };
    uint64_t rsdp;
    struct image im = { .len = BUF_LEN, .gpa = GPA_BASE };
    im.buf = calloc(1, BUF_LEN);
    assert_non_null(im.buf);
    cfg_for(1, true, &c);
    assert_int_equal(acpi_build(&c, im.buf, im.len, im.gpa, &rsdp, &e), 0);
    const uint8_t *dsdt = check_image(&im, &c);

    char dir[] = "/tmp/cvirt-acpi-XXXXXX", cmd[1024], path[96];
    assert_non_null(mkdtemp(dir));
    write_table(dir, "DSDT", dsdt);
    snprintf(path, sizeof(path), "%s/init", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "\\_SB.PCI0.PCIU 0x%x\n\\_SB.PCI0.PCID 0x%x\n", 1u << 3 | 1u << 31, 1u << 4);
    fclose(f);
    snprintf(cmd, sizeof(cmd),
             "cd %s && acpiexec -fi init -b 'evaluate \\_GPE._E01; "
             "evaluate \\_SB.PCI0.S05._EJ0 1; evaluate \\_SB.PCI0.B0EJ' "
             "DSDT.dat >out 2>&1", dir);
    int st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    snprintf(path, sizeof(path), "%s/out", dir);
    char *out = read_text(path);
    squeeze(out);
    assert_null(strstr(out, "ACPI Error"));
    assert_null(strstr(out, "ACPI Warning"));
    /* acpiexec's notify handler may print in any order: each slot's own
     * line must name its kind. */
    assert_true(notify_is(out, "S03_", "Value 0x01 (Device Check)"));
    assert_true(notify_is(out, "S1F_", "Value 0x01 (Device Check)"));
    assert_true(notify_is(out, "S04_", "Value 0x03 (Eject Request)"));
    assert_int_equal(count_of(out, "Received a System Notify"), 3);
    assert_int_equal(count_of(out, "(Device Check)"), 2);
    assert_non_null(strstr(out, "[Integer] = 0000000000000020"));
    free(out);
    free(im.buf);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Exactly the space the tables need succeeds; one byte less is ENOSPC. */
static void test_enospc(void **state)
{
    (void)state;
    struct acpi_config c;
    struct err e = { 0 };
    uint64_t rsdp;
    struct image im = { .len = BUF_LEN, .gpa = GPA_BASE };
    im.buf = calloc(1, BUF_LEN);
    assert_non_null(im.buf);
    cfg_for(64, true, &c);
    assert_int_equal(acpi_build(&c, im.buf, im.len, im.gpa, &rsdp, &e), 0);
    check_image(&im, &c);
    size_t need = im.used;
    assert_true(need > 36 && need < BUF_LEN);

    memset(im.buf, 0, BUF_LEN);
    assert_int_equal(acpi_build(&c, im.buf, need, im.gpa, &rsdp, &e), 0);

    assert_int_equal(acpi_build(&c, im.buf, need - 1, im.gpa, &rsdp, &e),
                     -ENOSPC);
    assert_int_equal(e.code, ENOSPC);
    assert_true(strlen(e.msg) > 0);
    err_clear(&e);
    assert_int_equal(acpi_build(&c, im.buf, 16, im.gpa, &rsdp, &e), -ENOSPC);
    assert_true(strlen(e.msg) > 0);
    free(im.buf);
}

static void test_bad_config(void **state)
{
    (void)state;
    struct acpi_config c;
    struct err e = { 0 };
    uint64_t rsdp;
    uint8_t *buf = calloc(1, BUF_LEN);
    assert_non_null(buf);
    assert_int_equal(acpi_build(cfg_for(0, false, &c), buf, BUF_LEN,
                                GPA_BASE, &rsdp, &e), -EINVAL);
    err_clear(&e);
    assert_int_equal(acpi_build(cfg_for(ACPI_MAX_CPUS + 1, false, &c), buf,
                                BUF_LEN,
                                GPA_BASE, &rsdp, &e), -EINVAL);
    err_clear(&e);
    assert_int_equal(acpi_build(cfg_for(1, false, &c), buf, BUF_LEN,
                                GPA_BASE + 8, &rsdp, &e), -EINVAL);
    err_clear(&e);
    cfg_for(1, true, &c);
    c.ecam_end_bus = 256;
    assert_int_equal(acpi_build(&c, buf, BUF_LEN, GPA_BASE, &rsdp, &e),
                     -EINVAL);
    err_clear(&e);
    cfg_for(1, true, &c);
    c.ecam_base = LAYOUT_PCIE_ECAM_START + 0x1000;
    assert_int_equal(acpi_build(&c, buf, BUF_LEN, GPA_BASE, &rsdp, &e),
                     -EINVAL);
    free(buf);
}

/* A base that is 16- but not 64-byte aligned still yields an aligned
 * FACS, and a smaller ECAM range is described as such. */
static void test_unaligned_base_small_ecam(void **state)
{
    (void)state;
    struct acpi_config c;
    struct err e = { 0 };
    uint64_t rsdp;
    struct image im = { .len = BUF_LEN, .gpa = GPA_BASE + 0x10 };
    im.buf = calloc(1, BUF_LEN);
    assert_non_null(im.buf);
    cfg_for(3, true, &c);
    c.ecam_end_bus = 15;
    assert_int_equal(acpi_build(&c, im.buf, im.len, im.gpa, &rsdp, &e), 0);
    assert_int_equal(rsdp, im.gpa);
    check_image(&im, &c);
    free(im.buf);
}

/* The largest machine still fits the legacy area the boot code uses. */
static void test_max_cpus_fit_legacy_area(void **state)
{
    (void)state;
    struct acpi_config c;
    struct err e = { 0 };
    uint64_t rsdp;
    struct image im = { .len = LAYOUT_ACPI_END - LAYOUT_ACPI_START,
                        .gpa = LAYOUT_ACPI_START };
    im.buf = calloc(1, im.len);
    assert_non_null(im.buf);
    cfg_for(ACPI_MAX_CPUS, true, &c);
    assert_int_equal(acpi_build(&c, im.buf, im.len, im.gpa, &rsdp, &e), 0);
    check_image(&im, &c);
    free(im.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_1cpu),
        cmocka_unit_test(test_1cpu_pci),
        cmocka_unit_test(test_2cpu),
        cmocka_unit_test(test_2cpu_pci),
        cmocka_unit_test(test_64cpu),
        cmocka_unit_test(test_64cpu_pci),
        cmocka_unit_test(test_dsdt_iasl_1cpu),
        cmocka_unit_test(test_dsdt_iasl_1cpu_pci),
        cmocka_unit_test(test_dsdt_iasl_2cpu),
        cmocka_unit_test(test_dsdt_iasl_2cpu_pci),
        cmocka_unit_test(test_dsdt_iasl_64cpu),
        cmocka_unit_test(test_dsdt_iasl_64cpu_pci),
        cmocka_unit_test(test_iasl_reads_tables),
        cmocka_unit_test(test_acpiexec_loads_tables),
        cmocka_unit_test(test_acpiexec_hotplug_notifies),
        cmocka_unit_test(test_enospc),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_unaligned_base_small_ecam),
        cmocka_unit_test(test_max_cpus_fit_legacy_area),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
