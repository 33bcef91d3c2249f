/* AML builder: encodings checked against the ACPI spec's grammar, and a
 * whole block checked byte for byte against iasl's compiler output. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "x86/aml.h"

/* Independent PkgLength decoder following the spec's description:
 * bits 7:6 of the lead byte count the following bytes. */
static uint32_t decode_pkglen(const uint8_t *p, unsigned *nbytes)
{
    unsigned follow = p[0] >> 6;
    *nbytes = follow + 1;
    if (follow == 0)
        return p[0] & 0x3f;
    uint32_t v = p[0] & 0x0f;
    for (unsigned i = 0; i < follow; i++)
        v |= (uint32_t)p[1 + i] << (4 + 8 * i);
    return v;
}

static void expect_pkglen(uint32_t len, const uint8_t *want, unsigned n)
{
    uint8_t out[4];
    unsigned got = aml_pkglen_encode(len, out);
    assert_int_equal(got, n);
    assert_memory_equal(out, want, n);
}

static void test_pkglen_boundaries(void **state)
{
    (void)state;
    expect_pkglen(0, (const uint8_t[]){ 0x00 }, 1);
    expect_pkglen(63, (const uint8_t[]){ 0x3f }, 1);
    expect_pkglen(64, (const uint8_t[]){ 0x40, 0x04 }, 2);
    expect_pkglen(4095, (const uint8_t[]){ 0x4f, 0xff }, 2);
    expect_pkglen(4096, (const uint8_t[]){ 0x80, 0x00, 0x01 }, 3);
    expect_pkglen(0xfffff, (const uint8_t[]){ 0x8f, 0xff, 0xff }, 3);
    expect_pkglen(0x100000, (const uint8_t[]){ 0xc0, 0x00, 0x00, 0x01 }, 4);
    expect_pkglen(0xfffffff, (const uint8_t[]){ 0xcf, 0xff, 0xff, 0xff }, 4);
    uint8_t out[4];
    assert_int_equal(aml_pkglen_encode(0x10000000, out), 0);
}

static void test_pkglen_roundtrip(void **state)
{
    (void)state;
    uint8_t out[4];
    for (uint32_t v = 0; v < 0x30000; v += 7) {
        unsigned n = aml_pkglen_encode(v, out), m;
        assert_true(n >= 1 && n <= 4);
        assert_int_equal(decode_pkglen(out, &m), v);
        assert_int_equal(m, n);
    }
}

/* A scope whose whole body (PkgLength excluded) is body bytes long. */
static void check_scope_body(size_t body)
{
    struct aml_buf b;
    aml_init(&b);
    assert_int_equal(aml_scope_begin(&b, "SCOP"), 0);
    size_t fill = body - 4; /* the name takes 4 bytes */
    uint8_t *junk = calloc(1, fill);
    assert_non_null(junk);
    assert_int_equal(aml_bytes(&b, junk, fill), 0);
    free(junk);
    assert_int_equal(aml_end(&b), 0);

    unsigned n;
    assert_int_equal(b.data[0], 0x10);
    uint32_t v = decode_pkglen(b.data + 1, &n);
    /* The value counts itself and the body, and nothing else. */
    assert_int_equal(v, b.len - 1);
    assert_int_equal(v, body + n);
    /* Shortest encoding: one byte less would not have fit. */
    if (n > 1) {
        uint8_t out[4];
        assert_int_not_equal(aml_pkglen_encode((uint32_t)(body + n - 1),
                                               out), n - 1);
    }
    assert_memory_equal(b.data + 1 + n, "SCOP", 4);
    aml_free(&b);
}

static void test_backpatch_boundaries(void **state)
{
    (void)state;
    static const size_t bodies[] = {
        4, 61, 62, 63, 64, 65, 4092, 4093, 4094, 4095,
        0xffffc, 0xffffd, 0xffffe, 0x100000, 0x100010,
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        check_scope_body(bodies[i]);
}

/* Walks nested Scope objects and checks each PkgLength spans exactly
 * its children; returns the end offset. */
static size_t walk_scopes(const uint8_t *p, size_t off, size_t end,
                          unsigned *count)
{
    while (off < end) {
        assert_int_equal(p[off], 0x10);
        unsigned n;
        uint32_t v = decode_pkglen(p + off + 1, &n);
        size_t inner_end = off + 1 + v;
        assert_true(inner_end <= end);
        (*count)++;
        size_t q = off + 1 + n + 4;
        /* Each test scope holds one filler Name, then child scopes. */
        assert_int_equal(p[q], 0x08);
        q += 1 + 4 + 1 + 1;
        off = walk_scopes(p, q, inner_end, count);
    }
    assert_int_equal(off, end);
    return off;
}

static void test_nested_scopes(void **state)
{
    (void)state;
    struct aml_buf b;
    aml_init(&b);
    /* Deep enough that inner growth pushes outer lengths over the one-
     * and two-byte limits after they were opened. */
    for (int i = 0; i < 20; i++) {
        aml_scope_begin(&b, "S");
        aml_name_int(&b, "N", 0x42);
    }
    for (int i = 0; i < 20; i++) {
        for (int k = 0; k < 50 && i % 7 == 0; k++) {
            aml_scope_begin(&b, "L");
            aml_name_int(&b, "N", 0x43);
            aml_end(&b);
        }
        aml_end(&b);
    }
    assert_int_equal(aml_error(&b), 0);
    assert_int_equal(b.depth, 0);
    unsigned count = 0;
    walk_scopes(b.data, 0, b.len, &count);
    assert_int_equal(count, 20 + 3 * 50);
    aml_free(&b);
}

static void expect_int(uint64_t v, const uint8_t *want, size_t n)
{
    struct aml_buf b;
    aml_init(&b);
    assert_int_equal(aml_int(&b, v), 0);
    assert_int_equal(b.len, n);
    assert_memory_equal(b.data, want, n);
    aml_free(&b);
}

static void test_integers(void **state)
{
    (void)state;
    expect_int(0, (const uint8_t[]){ 0x00 }, 1);
    expect_int(1, (const uint8_t[]){ 0x01 }, 1);
    expect_int(UINT64_MAX, (const uint8_t[]){ 0xff }, 1);
    expect_int(2, (const uint8_t[]){ 0x0a, 0x02 }, 2);
    expect_int(0xff, (const uint8_t[]){ 0x0a, 0xff }, 2);
    expect_int(0x100, (const uint8_t[]){ 0x0b, 0x00, 0x01 }, 3);
    expect_int(0xffff, (const uint8_t[]){ 0x0b, 0xff, 0xff }, 3);
    expect_int(0x10000, (const uint8_t[]){ 0x0c, 0x00, 0x00, 0x01, 0x00 }, 5);
    expect_int(0xffffffff, (const uint8_t[]){ 0x0c, 0xff, 0xff, 0xff, 0xff },
               5);
    expect_int(0x100000000ULL, (const uint8_t[]){ 0x0e, 0, 0, 0, 0, 1, 0, 0,
                                                  0 }, 9);
    expect_int(UINT64_MAX - 1, (const uint8_t[]){ 0x0e, 0xfe, 0xff, 0xff,
                                                  0xff, 0xff, 0xff, 0xff,
                                                  0xff }, 9);
}

static void test_strings(void **state)
{
    (void)state;
    struct aml_buf b;
    aml_init(&b);
    assert_int_equal(aml_string(&b, "ACPI0007"), 0);
    assert_int_equal(b.len, 10);
    assert_int_equal(b.data[0], 0x0d);
    assert_memory_equal(b.data + 1, "ACPI0007", 9);
    assert_int_equal(aml_string(&b, "bad\xc3\xa9"), -EINVAL);
    /* Sticky: later calls keep failing and do not write. */
    size_t len = b.len;
    assert_int_equal(aml_int(&b, 5), -EINVAL);
    assert_int_equal(b.len, len);
    aml_free(&b);
}

static void expect_name(const char *path, const uint8_t *want, size_t n)
{
    struct aml_buf b;
    aml_init(&b);
    assert_int_equal(aml_namestring(&b, path), 0);
    assert_int_equal(b.len, n);
    assert_memory_equal(b.data, want, n);
    aml_free(&b);
}

static void expect_bad_name(const char *path)
{
    struct aml_buf b;
    aml_init(&b);
    assert_int_equal(aml_namestring(&b, path), -EINVAL);
    aml_free(&b);
}

static void test_name_strings(void **state)
{
    (void)state;
    expect_name("ABCD", (const uint8_t *)"ABCD", 4);
    expect_name("AB", (const uint8_t *)"AB__", 4);
    expect_name("\\_SB", (const uint8_t *)"\\_SB_", 5);
    expect_name("^^FOO", (const uint8_t *)"^^FOO_", 6);
    expect_name("\\_SB.PCI0", (const uint8_t *)"\\\x2e_SB_PCI0", 10);
    expect_name("\\_SB.PCI0.S08", (const uint8_t *)"\\\x2f\x03_SB_PCI0S08_",
                15);
    expect_name("^A.B.C.D", (const uint8_t *)"^\x2f\x04"
                "A___B___C___D___", 19);
    expect_name("", (const uint8_t[]){ 0x00 }, 1);
    expect_name("\\", (const uint8_t[]){ 0x5c, 0x00 }, 2);
    expect_bad_name("1ABC");
    expect_bad_name("ABCDE");
    expect_bad_name("A..B");
    expect_bad_name("abc");
    expect_bad_name("A.");
    expect_bad_name(".A");
    expect_bad_name("\\^A");
}

static void test_eisaid(void **state)
{
    (void)state;
    uint32_t v;
    assert_int_equal(aml_eisaid_value("PNP0A03", &v), 0);
    assert_int_equal(v, 0x030AD041);
    assert_int_equal(aml_eisaid_value("pnp0a03", &v), -EINVAL);
    assert_int_equal(aml_eisaid_value("PNP0A0", &v), -EINVAL);
    assert_int_equal(aml_eisaid_value("PNP0A0G", &v), -EINVAL);

    struct aml_buf b;
    aml_init(&b);
    assert_int_equal(aml_eisaid(&b, "PNP0A03"), 0);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data, ((const uint8_t[]){ 0x0c, 0x41, 0xd0, 0x0a,
                                                    0x03 }), 5);
    aml_free(&b);
}

static void test_restemplate(void **state)
{
    (void)state;
    struct aml_buf b;
    aml_init(&b);
    aml_name(&b, "_CRS");
    assert_int_equal(aml_restemplate_begin(&b), 0);
    aml_res_io(&b, 0x3f8, 8);
    aml_res_irq_noflags(&b, 4);
    aml_res_memory32_fixed(&b, 0xe0000000, 0x10000000, true);
    aml_res_word_bus(&b, 0, 255);
    aml_res_word_io(&b, 0xd00, 0xffff);
    aml_res_dword_memory(&b, 0xc0000000, 0xdfffffff, false, false);
    aml_res_qword_memory(&b, 0x100000000ULL, 0x1ffffffffULL, false, true);
    assert_int_equal(aml_restemplate_end(&b), 0);
    assert_int_equal(b.depth, 0);

    /* Name op + 4 bytes of name, then BufferOp PkgLength BufferSize. */
    size_t descs = 8 + 3 + 12 + 16 + 16 + 26 + 46;
    const uint8_t *p = b.data + 5;
    assert_int_equal(p[0], 0x11);
    unsigned n;
    uint32_t pkg = decode_pkglen(p + 1, &n);
    assert_int_equal(pkg, b.len - 6);
    const uint8_t *sz = p + 1 + n;
    assert_int_equal(sz[0], 0x0a);     /* fits a byte */
    assert_int_equal(sz[1], descs + 2);
    const uint8_t *res = sz + 2;
    assert_ptr_equal(res + descs + 2, b.data + b.len);
    /* End tag, and the checksum makes the template sum to zero. */
    assert_int_equal(res[descs], 0x79);
    uint8_t sum = 0;
    for (size_t i = 0; i < descs + 2; i++)
        sum = (uint8_t)(sum + res[i]);
    assert_int_equal(sum, 0);
    /* Spot checks against the descriptor layouts. */
    assert_memory_equal(res, ((const uint8_t[]){ 0x47, 0x01, 0xf8, 0x03,
                                                 0xf8, 0x03, 0x01, 0x08 }), 8);
    assert_memory_equal(res + 8, ((const uint8_t[]){ 0x22, 0x10, 0x00 }), 3);
    assert_int_equal(res[11], 0x86);
    assert_int_equal(res[23], 0x88);
    assert_int_equal(res[23 + 3], 2);              /* bus number range */
    assert_int_equal(res[39 + 3], 1);              /* I/O range */
    assert_int_equal(res[55], 0x87);
    assert_int_equal(res[81], 0x8a);
    aml_free(&b);
}

static void test_misuse(void **state)
{
    (void)state;
    struct aml_buf b;

    aml_init(&b);
    assert_int_equal(aml_end(&b), -EINVAL);
    aml_free(&b);

    aml_init(&b);
    assert_int_equal(aml_res_io(&b, 0x60, 1), -EINVAL);
    aml_free(&b);

    aml_init(&b);
    aml_restemplate_begin(&b);
    assert_int_equal(aml_end(&b), -EINVAL);   /* needs restemplate_end */
    aml_free(&b);

    aml_init(&b);
    aml_scope_begin(&b, "A");
    assert_int_equal(aml_restemplate_end(&b), -EINVAL);
    aml_free(&b);

    aml_init(&b);
    assert_int_equal(aml_method_begin(&b, "M", 8, false), -EINVAL);
    aml_free(&b);

    aml_init(&b);
    assert_int_equal(aml_package_begin(&b, 256), -EINVAL);
    aml_free(&b);

    aml_init(&b);
    assert_int_equal(aml_local(&b, 8), -EINVAL);
    aml_free(&b);

    /* A field unit is one NameSeg of at least one bit. */
    static const struct aml_field_unit two_segs[] = { { "A.B", 8 } };
    static const struct aml_field_unit no_bits[] = { { "A", 0 } };
    aml_init(&b);
    assert_int_equal(aml_field(&b, "R", 0, two_segs, 1), -EINVAL);
    aml_free(&b);
    aml_init(&b);
    assert_int_equal(aml_field(&b, "R", 0, no_bits, 1), -EINVAL);
    aml_free(&b);

    aml_init(&b);
    for (int i = 0; i < AML_MAX_DEPTH; i++)
        assert_int_equal(aml_scope_begin(&b, "A"), 0);
    assert_int_equal(aml_scope_begin(&b, "A"), -E2BIG);
    aml_free(&b);

    aml_init(&b);
    b.max = 64;
    uint8_t junk[65] = { 0 };
    assert_int_equal(aml_bytes(&b, junk, 64), 0);
    assert_int_equal(aml_byte(&b, 0), -E2BIG);
    assert_int_equal(b.len, 64);
    aml_free(&b);
}

/* ---- byte-for-byte comparison with iasl ---- */

static int have_iasl(void)
{
    return system("command -v iasl >/dev/null 2>&1") == 0;
}

static void emit_fill_buffer(struct aml_buf *b, FILE *asl, const char *name,
                             size_t n)
{
    uint8_t *data = malloc(n);
    assert_non_null(data);
    fprintf(asl, "Name (%s, Buffer (0x%zx) {", name, n);
    for (size_t i = 0; i < n; i++) {
        data[i] = (uint8_t)(i * 7 + 3);
        fprintf(asl, "%s0x%02x", i ? "," : "", data[i]);
    }
    fprintf(asl, "})\n");
    aml_name(b, name);
    aml_buffer(b, data, n);
    free(data);
}

/* The same namespace in ASL and through the builder. */
static void build_both(struct aml_buf *b, FILE *asl)
{
    fprintf(asl, "DefinitionBlock (\"\", \"DSDT\", 2, \"CVIRT \", "
                 "\"CVIRTTST\", 1) {\n");
    fprintf(asl, "Name (\\_S5, Package (0x04) { 5, 5, 0, 0 })\n");
    aml_name(b, "\\_S5");
    aml_package_begin(b, 4);
    aml_int(b, 5);
    aml_int(b, 5);
    aml_int(b, 0);
    aml_int(b, 0);
    aml_end(b);
    fprintf(asl, "Name (INTO, 0xFFFFFFFFFFFFFFFF)\nName (INTQ, 0x123456789A)\n"
                 "Name (INTW, 0x1234)\nName (STR1, \"hello\")\n");
    aml_name_int(b, "INTO", UINT64_MAX);
    aml_name_int(b, "INTQ", 0x123456789aULL);
    aml_name_int(b, "INTW", 0x1234);
    aml_name_string(b, "STR1", "hello");
    fprintf(asl, "Scope (\\_SB) { Device (PCI0) {\n"
                 "Name (_HID, EisaId (\"PNP0A08\"))\n"
                 "Method (_STA, 0, NotSerialized) { Return (0x0F) }\n"
                 "Method (M2, 2, Serialized) { Return (One) }\n"
                 "Name (^ROOT, 2)\nName (\\_SB.PCI0.NAM3, 3)\n"
                 "Name (PK, Package (2) { Package (1) { \"a\" }, 7 })\n");
    aml_scope_begin(b, "\\_SB");
    aml_device_begin(b, "PCI0");
    aml_name_eisaid(b, "_HID", "PNP0A08");
    aml_method_begin(b, "_STA", 0, false);
    aml_return_int(b, 0x0f);
    aml_end(b);
    aml_method_begin(b, "M2", 2, true);
    aml_return_int(b, 1);
    aml_end(b);
    aml_name_int(b, "^ROOT", 2);
    aml_name_int(b, "\\_SB.PCI0.NAM3", 3);
    aml_name(b, "PK");
    aml_package_begin(b, 2);
    aml_package_begin(b, 1);
    aml_string(b, "a");
    aml_end(b);
    aml_int(b, 7);
    aml_end(b);
    /* Region, field and the statements of the hotplug methods. */
    fprintf(asl, "OperationRegion (PCST, SystemIO, 0xAE00, 0x40)\n"
                 "Field (PCST, DWordAcc, NoLock, WriteAsZeros) { PCIU, 32, PCID, 32, B0EJ, 200 }\n"
                 "Device (S01) { Name (_ADR, 0x00010000)\n"
                 "Method (_EJ0, 1, NotSerialized) { Store (0x02, B0EJ) } }\n"
                 "Method (PCNT, 0, Serialized) { Store (PCIU, Local0) Store (PCID, Local7)\n"
                 "If (And (Local0, 0x80000000)) { Notify (S01, One) }\n"
                 "If (And (Local7, 0x02)) { Notify (S01, 0x03) } }\n");
    static const struct aml_field_unit regs[] = {
        { "PCIU", 32 }, { "PCID", 32 }, { "B0EJ", 200 },
    };
    aml_opregion(b, "PCST", AML_SPACE_SYSTEM_IO, 0xae00, 0x40);
    aml_field(b, "PCST", AML_FIELD_DWORD_ACC | AML_FIELD_WRITE_ZEROS, regs, 3);
    aml_device_begin(b, "S01");
    aml_name_int(b, "_ADR", 0x10000);
    aml_method_begin(b, "_EJ0", 1, false);
    aml_store(b);
    aml_int(b, 2);
    aml_namestring(b, "B0EJ");
    aml_end(b);
    aml_end(b);
    aml_method_begin(b, "PCNT", 0, true);
    aml_store(b);
    aml_namestring(b, "PCIU");
    aml_local(b, 0);
    aml_store(b);
    aml_namestring(b, "PCID");
    aml_local(b, 7);
    aml_if_begin(b);
    aml_and(b);
    aml_local(b, 0);
    aml_int(b, 0x80000000u);
    aml_null_target(b);
    aml_notify(b);
    aml_namestring(b, "S01");
    aml_int(b, 1);
    aml_end(b);
    aml_if_begin(b);
    aml_and(b);
    aml_local(b, 7);
    aml_int(b, 2);
    aml_null_target(b);
    aml_notify(b);
    aml_namestring(b, "S01");
    aml_int(b, 3);
    aml_end(b);
    aml_end(b);
    /* Buffers whose PkgLength needs one, two and three bytes. */
    emit_fill_buffer(b, asl, "BUF1", 40);
    emit_fill_buffer(b, asl, "BUF2", 3000);
    emit_fill_buffer(b, asl, "BUF3", 4200); /* >= 4096: three bytes; iasl is slow on big literals */
    fprintf(asl, "} }\n}\n");
    aml_end(b);
    aml_end(b);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    uint8_t *p = malloc((size_t)n);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static void test_matches_iasl(void **state)
{
    (void)state;
    if (!have_iasl()) {
        const char *allow = getenv("CVIRT_ALLOW_NO_IASL");
        static const char msg[] = "# iasl NOT FOUND on PATH: AML not "
            "compared with the reference compiler (install acpica-tools)\n";
        fputs(msg, stdout);
        fflush(stdout);
        fputs(msg, stderr);
        if (allow && strcmp(allow, "1") == 0)
            skip();
        fail_msg("iasl missing; set CVIRT_ALLOW_NO_IASL=1 to skip");
    }
    char dir[] = "/tmp/cvirt-aml-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char asl_path[64], aml_path[64], cmd[256];
    snprintf(asl_path, sizeof(asl_path), "%s/t.asl", dir);
    snprintf(aml_path, sizeof(aml_path), "%s/t.aml", dir);

    FILE *asl = fopen(asl_path, "w");
    assert_non_null(asl);
    struct aml_buf b;
    aml_init(&b);
    build_both(&b, asl);
    fclose(asl);
    assert_int_equal(aml_error(&b), 0);

    /* -on: no name-path shortening, so both sides spell names in full. */
    snprintf(cmd, sizeof(cmd), "iasl -on -p %s/t %s >%s/log 2>&1",
             dir, asl_path, dir);
    int st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    size_t len;
    uint8_t *ref = slurp(aml_path, &len);
    assert_true(len > 36);
    assert_int_equal(len - 36, b.len);
    assert_memory_equal(ref + 36, b.data, b.len);
    free(ref);
    aml_free(&b);

    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pkglen_boundaries),
        cmocka_unit_test(test_pkglen_roundtrip),
        cmocka_unit_test(test_backpatch_boundaries),
        cmocka_unit_test(test_nested_scopes),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_name_strings),
        cmocka_unit_test(test_eisaid),
        cmocka_unit_test(test_restemplate),
        cmocka_unit_test(test_misuse),
        cmocka_unit_test(test_matches_iasl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
