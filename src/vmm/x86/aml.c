#include "x86/aml.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Opcodes and prefixes (ACPI 6.x, section 20 "ACPI Machine Language"). */
enum {
    AML_ZERO_OP = 0x00,
    AML_ONE_OP = 0x01,
    AML_NAME_OP = 0x08,
    AML_BYTE_PREFIX = 0x0a,
    AML_WORD_PREFIX = 0x0b,
    AML_DWORD_PREFIX = 0x0c,
    AML_STRING_PREFIX = 0x0d,
    AML_QWORD_PREFIX = 0x0e,
    AML_SCOPE_OP = 0x10,
    AML_BUFFER_OP = 0x11,
    AML_PACKAGE_OP = 0x12,
    AML_METHOD_OP = 0x14,
    AML_LOCAL0_OP = 0x60,
    AML_STORE_OP = 0x70,
    AML_AND_OP = 0x7b,
    AML_NOTIFY_OP = 0x86,
    AML_IF_OP = 0xa0,
    AML_DUAL_NAME_PREFIX = 0x2e,
    AML_MULTI_NAME_PREFIX = 0x2f,
    AML_EXT_OP_PREFIX = 0x5b,
    AML_ROOT_CHAR = 0x5c,
    AML_PARENT_PREFIX = 0x5e,
    AML_OPREGION_OP = 0x80, /* after AML_EXT_OP_PREFIX */
    AML_FIELD_OP = 0x81,    /* after AML_EXT_OP_PREFIX */
    AML_DEVICE_OP = 0x82,   /* after AML_EXT_OP_PREFIX */
    AML_RETURN_OP = 0xa4,
    AML_ONES_OP = 0xff,
};

/* Resource descriptor tags (ACPI 6.x, section 6.4). */
enum {
    RES_IRQ_NOFLAGS = 0x22,   /* small item 0x04, length 2 */
    RES_IO = 0x47,            /* small item 0x08, length 7 */
    RES_END_TAG = 0x79,       /* small item 0x0f, length 1 */
    RES_MEMORY32_FIXED = 0x86,
    RES_DWORD_ADDR = 0x87,
    RES_WORD_ADDR = 0x88,
    RES_QWORD_ADDR = 0x8a,
};

/* Address space descriptor fields. */
enum {
    ADDR_TYPE_MEMORY = 0,
    ADDR_TYPE_IO = 1,
    ADDR_TYPE_BUS = 2,
    ADDR_GEN_CONSUMER = 1u << 0,
    ADDR_GEN_MIN_FIXED = 1u << 2,
    ADDR_GEN_MAX_FIXED = 1u << 3,
    ADDR_MEM_RW = 1u << 0,
    ADDR_MEM_CACHEABLE = 1u << 1,
    ADDR_IO_ENTIRE_RANGE = 3,
};

enum aml_open_kind {
    OPEN_SCOPE = 1,
    OPEN_DEVICE,
    OPEN_METHOD,
    OPEN_PACKAGE,
    OPEN_BUFFER,
    OPEN_BUFFER_TEMPLATE,
    OPEN_IF,
};

void aml_init(struct aml_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void aml_free(struct aml_buf *b)
{
    free(b->data);
    aml_init(b);
}

static int fail(struct aml_buf *b, int err)
{
    if (!b->err)
        b->err = err;
    return b->err;
}

static int reserve(struct aml_buf *b, size_t extra)
{
    size_t limit = b->max ? b->max : AML_PKGLEN_MAX;
    if (extra > limit || b->len > limit - extra)
        return fail(b, -E2BIG);
    if (b->len + extra <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return fail(b, -ENOMEM);
    b->data = p;
    b->cap = cap;
    return 0;
}

int aml_bytes(struct aml_buf *b, const void *p, size_t n)
{
    if (b->err)
        return b->err;
    if (reserve(b, n) < 0)
        return b->err;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int aml_byte(struct aml_buf *b, uint8_t v)
{
    return aml_bytes(b, &v, 1);
}

/* Little-endian integer of n bytes. */
static int put_le(struct aml_buf *b, uint64_t v, unsigned n)
{
    uint8_t tmp[8];
    for (unsigned i = 0; i < n; i++)
        tmp[i] = (uint8_t)(v >> (8 * i));
    return aml_bytes(b, tmp, n);
}

/* Inserts n bytes at offset at, moving what follows. */
static int insert(struct aml_buf *b, size_t at, const uint8_t *p, size_t n)
{
    if (b->err)
        return b->err;
    if (reserve(b, n) < 0)
        return b->err;
    memmove(b->data + at + n, b->data + at, b->len - at);
    memcpy(b->data + at, p, n);
    b->len += n;
    return 0;
}

unsigned aml_pkglen_encode(uint32_t len, uint8_t out[4])
{
    unsigned n;
    if (len <= 0x3f) {
        out[0] = (uint8_t)len;
        return 1;
    }
    if (len <= 0xfff)
        n = 2;
    else if (len <= 0xfffff)
        n = 3;
    else if (len <= AML_PKGLEN_MAX)
        n = 4;
    else
        return 0;
    /* Multi-byte form: the lead byte holds the count of following bytes
     * in bits 7:6 and the low nibble; the rest follows 8 bits a byte. */
    out[0] = (uint8_t)(((n - 1) << 6) | (len & 0x0f));
    for (unsigned i = 1; i < n; i++)
        out[i] = (uint8_t)(len >> (4 + 8 * (i - 1)));
    return n;
}

/* Encodes an integer object into out; returns its size. */
static unsigned encode_int(uint64_t v, uint8_t out[9])
{
    unsigned n;
    if (v == 0 || v == 1 || v == UINT64_MAX) {
        out[0] = v == 0 ? AML_ZERO_OP : v == 1 ? AML_ONE_OP : AML_ONES_OP;
        return 1;
    }
    if (v <= 0xff) {
        out[0] = AML_BYTE_PREFIX;
        n = 1;
    } else if (v <= 0xffff) {
        out[0] = AML_WORD_PREFIX;
        n = 2;
    } else if (v <= 0xffffffffu) {
        out[0] = AML_DWORD_PREFIX;
        n = 4;
    } else {
        out[0] = AML_QWORD_PREFIX;
        n = 8;
    }
    for (unsigned i = 0; i < n; i++)
        out[1 + i] = (uint8_t)(v >> (8 * i));
    return n + 1;
}

int aml_int(struct aml_buf *b, uint64_t v)
{
    uint8_t enc[9];
    return aml_bytes(b, enc, encode_int(v, enc));
}

int aml_string(struct aml_buf *b, const char *s)
{
    if (b->err)
        return b->err;
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] > 0x7f)
            return fail(b, -EINVAL);
    aml_byte(b, AML_STRING_PREFIX);
    aml_bytes(b, s, n);
    return aml_byte(b, 0);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int aml_eisaid_value(const char *id, uint32_t *out)
{
    if (strlen(id) != 7)
        return -EINVAL;
    uint32_t v = 0;
    for (int i = 0; i < 3; i++) {
        if (id[i] < 'A' || id[i] > 'Z')
            return -EINVAL;
        v = (v << 5) | (uint32_t)(id[i] - 0x40);
    }
    for (int i = 3; i < 7; i++) {
        int h = hexval(id[i]);
        if (h < 0)
            return -EINVAL;
        v = (v << 4) | (uint32_t)h;
    }
    /* The 32-bit id is stored big-endian (vendor letters first), and AML
     * integers are little-endian: the value is the byte swap. */
    *out = __builtin_bswap32(v);
    return 0;
}

int aml_eisaid(struct aml_buf *b, const char *id)
{
    uint32_t v;
    if (b->err)
        return b->err;
    if (aml_eisaid_value(id, &v) < 0)
        return fail(b, -EINVAL);
    /* Always a DWord, as ASL compilers emit it, even if v would fit in
     * fewer bytes: readers expect the fixed form. */
    aml_byte(b, AML_DWORD_PREFIX);
    return put_le(b, v, 4);
}

static bool seg_char_ok(char c, bool lead)
{
    if ((c >= 'A' && c <= 'Z') || c == '_')
        return true;
    return !lead && c >= '0' && c <= '9';
}

/* Splits a dotted path into 4-byte segments. Returns the count or -1. */
static int parse_segs(const char *p, char segs[255][4])
{
    int n = 0;
    while (*p) {
        if (n == 255)
            return -1;
        size_t l = 0;
        while (p[l] && p[l] != '.')
            l++;
        if (l == 0 || l > 4)
            return -1;
        for (size_t i = 0; i < 4; i++) {
            char c = i < l ? p[i] : '_';
            if (!seg_char_ok(c, i == 0))
                return -1;
            segs[n][i] = c;
        }
        n++;
        p += l;
        if (*p == '.' && !*++p)
            return -1;
    }
    return n;
}

int aml_namestring(struct aml_buf *b, const char *path)
{
    char segs[255][4];
    if (b->err)
        return b->err;
    const char *p = path;
    if (*p == '\\') {
        aml_byte(b, AML_ROOT_CHAR);
        p++;
    } else {
        while (*p == '^') {
            aml_byte(b, AML_PARENT_PREFIX);
            p++;
        }
    }
    int n = parse_segs(p, segs);
    if (n < 0)
        return fail(b, -EINVAL);
    if (n == 0)
        return aml_byte(b, 0x00); /* NullName */
    if (n == 2)
        aml_byte(b, AML_DUAL_NAME_PREFIX);
    else if (n > 2) {
        aml_byte(b, AML_MULTI_NAME_PREFIX);
        aml_byte(b, (uint8_t)n);
    }
    return aml_bytes(b, segs, (size_t)n * 4);
}

int aml_name(struct aml_buf *b, const char *path)
{
    aml_byte(b, AML_NAME_OP);
    return aml_namestring(b, path);
}

int aml_name_int(struct aml_buf *b, const char *path, uint64_t v)
{
    aml_name(b, path);
    return aml_int(b, v);
}

int aml_name_string(struct aml_buf *b, const char *path, const char *s)
{
    aml_name(b, path);
    return aml_string(b, s);
}

int aml_name_eisaid(struct aml_buf *b, const char *path, const char *id)
{
    aml_name(b, path);
    return aml_eisaid(b, id);
}

/* Marks the spot for a PkgLength that aml_end() fills in. */
static int open_pkg(struct aml_buf *b, enum aml_open_kind kind)
{
    if (b->err)
        return b->err;
    if (b->depth == AML_MAX_DEPTH)
        return fail(b, -E2BIG);
    b->open[b->depth].at = b->len;
    b->open[b->depth].kind = (uint8_t)kind;
    b->depth++;
    return 0;
}

static int close_pkg(struct aml_buf *b)
{
    if (b->err)
        return b->err;
    uint8_t enc[4];
    size_t at = b->open[b->depth - 1].at;
    size_t body = b->len - at;
    unsigned n = 0;
    /* The value counts its own bytes, so try each width in turn. */
    for (unsigned w = 1; w <= 4 && !n; w++) {
        if (body + w > AML_PKGLEN_MAX)
            break;
        n = aml_pkglen_encode((uint32_t)(body + w), enc);
        if (n != w)
            n = 0;
    }
    if (!n)
        return fail(b, -E2BIG);
    if (insert(b, at, enc, n) < 0)
        return b->err;
    b->depth--;
    return 0;
}

int aml_end(struct aml_buf *b)
{
    if (b->err)
        return b->err;
    if (b->depth == 0 || b->open[b->depth - 1].kind == OPEN_BUFFER_TEMPLATE)
        return fail(b, -EINVAL);
    return close_pkg(b);
}

int aml_scope_begin(struct aml_buf *b, const char *path)
{
    aml_byte(b, AML_SCOPE_OP);
    open_pkg(b, OPEN_SCOPE);
    return aml_namestring(b, path);
}

int aml_device_begin(struct aml_buf *b, const char *path)
{
    aml_byte(b, AML_EXT_OP_PREFIX);
    aml_byte(b, AML_DEVICE_OP);
    open_pkg(b, OPEN_DEVICE);
    return aml_namestring(b, path);
}

int aml_method_begin(struct aml_buf *b, const char *path, unsigned nargs,
                     bool serialized)
{
    if (nargs > 7)
        return fail(b, -EINVAL);
    aml_byte(b, AML_METHOD_OP);
    open_pkg(b, OPEN_METHOD);
    aml_namestring(b, path);
    /* MethodFlags: ArgCount in bits 2:0, SerializeFlag in bit 3,
     * SyncLevel 0. */
    return aml_byte(b, (uint8_t)(nargs | (serialized ? 0x08 : 0)));
}

int aml_package_begin(struct aml_buf *b, unsigned nelems)
{
    /* NumElements is one byte; larger packages need VarPackageOp, which
     * nothing here uses. */
    if (nelems > 255)
        return fail(b, -EINVAL);
    aml_byte(b, AML_PACKAGE_OP);
    open_pkg(b, OPEN_PACKAGE);
    return aml_byte(b, (uint8_t)nelems);
}

int aml_return(struct aml_buf *b)
{
    return aml_byte(b, AML_RETURN_OP);
}

int aml_return_int(struct aml_buf *b, uint64_t v)
{
    aml_return(b);
    return aml_int(b, v);
}

int aml_buffer(struct aml_buf *b, const void *p, size_t n)
{
    aml_byte(b, AML_BUFFER_OP);
    open_pkg(b, OPEN_BUFFER);
    aml_int(b, n);
    aml_bytes(b, p, n);
    return close_pkg(b);
}

int aml_restemplate_begin(struct aml_buf *b)
{
    aml_byte(b, AML_BUFFER_OP);
    /* BufferSize is only known at the end; it is inserted then, right
     * after the PkgLength, like the PkgLength itself. */
    return open_pkg(b, OPEN_BUFFER_TEMPLATE);
}

static bool in_template(const struct aml_buf *b)
{
    return b->depth > 0 &&
           b->open[b->depth - 1].kind == OPEN_BUFFER_TEMPLATE;
}

int aml_restemplate_end(struct aml_buf *b)
{
    if (b->err)
        return b->err;
    if (!in_template(b))
        return fail(b, -EINVAL);
    size_t at = b->open[b->depth - 1].at;
    uint8_t sum = RES_END_TAG;
    for (size_t i = at; i < b->len; i++)
        sum = (uint8_t)(sum + b->data[i]);
    uint8_t end[2] = { RES_END_TAG, (uint8_t)-sum };
    if (aml_bytes(b, end, sizeof(end)) < 0)
        return b->err;
    uint8_t enc[9];
    unsigned n = encode_int(b->len - at, enc);
    if (insert(b, at, enc, n) < 0)
        return b->err;
    return close_pkg(b);
}

/* Starts a descriptor: checks that a template is open. */
static int res_check(struct aml_buf *b)
{
    if (b->err)
        return b->err;
    return in_template(b) ? 0 : fail(b, -EINVAL);
}

int aml_res_io(struct aml_buf *b, uint16_t base, uint8_t len)
{
    if (res_check(b) < 0)
        return b->err;
    /* IO(Decode16, base, base, 1, len): a fixed range. */
    aml_byte(b, RES_IO);
    aml_byte(b, 0x01);
    put_le(b, base, 2);
    put_le(b, base, 2);
    aml_byte(b, 1);
    return aml_byte(b, len);
}

int aml_res_irq_noflags(struct aml_buf *b, unsigned irq)
{
    if (res_check(b) < 0)
        return b->err;
    if (irq > 15)
        return fail(b, -EINVAL);
    aml_byte(b, RES_IRQ_NOFLAGS);
    return put_le(b, 1u << irq, 2);
}

int aml_res_memory32_fixed(struct aml_buf *b, uint32_t base, uint32_t len,
                           bool writable)
{
    if (res_check(b) < 0)
        return b->err;
    aml_byte(b, RES_MEMORY32_FIXED);
    put_le(b, 9, 2);
    aml_byte(b, writable ? 1 : 0);
    put_le(b, base, 4);
    return put_le(b, len, 4);
}

/* Word, DWord and QWord address space descriptors differ only in the
 * width of their five numeric fields. */
static int res_addr(struct aml_buf *b, unsigned width, uint8_t type,
                    uint8_t gen, uint8_t tflags, uint64_t min, uint64_t max)
{
    static const uint8_t tag[9] = {
        [2] = RES_WORD_ADDR, [4] = RES_DWORD_ADDR, [8] = RES_QWORD_ADDR,
    };
    if (res_check(b) < 0)
        return b->err;
    if (max < min)
        return fail(b, -EINVAL);
    aml_byte(b, tag[width]);
    put_le(b, 3 + 5 * width, 2);
    aml_byte(b, type);
    aml_byte(b, gen);
    aml_byte(b, tflags);
    put_le(b, 0, width);              /* granularity */
    put_le(b, min, width);
    put_le(b, max, width);
    put_le(b, 0, width);              /* translation offset */
    return put_le(b, max - min + 1, width);
}

int aml_res_word_bus(struct aml_buf *b, uint16_t min, uint16_t max)
{
    return res_addr(b, 2, ADDR_TYPE_BUS, ADDR_GEN_MIN_FIXED |
                    ADDR_GEN_MAX_FIXED, 0, min, max);
}

int aml_res_word_io(struct aml_buf *b, uint16_t min, uint16_t max)
{
    return res_addr(b, 2, ADDR_TYPE_IO, ADDR_GEN_MIN_FIXED |
                    ADDR_GEN_MAX_FIXED, ADDR_IO_ENTIRE_RANGE, min, max);
}

static uint8_t mem_gen(bool consumer)
{
    return (uint8_t)(ADDR_GEN_MIN_FIXED | ADDR_GEN_MAX_FIXED |
                     (consumer ? ADDR_GEN_CONSUMER : 0));
}

static uint8_t mem_flags(bool cacheable)
{
    return (uint8_t)(ADDR_MEM_RW | (cacheable ? ADDR_MEM_CACHEABLE : 0));
}

int aml_res_dword_memory(struct aml_buf *b, uint32_t min, uint32_t max,
                         bool consumer, bool cacheable)
{
    return res_addr(b, 4, ADDR_TYPE_MEMORY, mem_gen(consumer),
                    mem_flags(cacheable), min, max);
}

int aml_res_qword_memory(struct aml_buf *b, uint64_t min, uint64_t max,
                         bool consumer, bool cacheable)
{
    /* The length field cannot hold 2^64. */
    if (min == 0 && max == UINT64_MAX)
        return fail(b, -EINVAL);
    return res_addr(b, 8, ADDR_TYPE_MEMORY, mem_gen(consumer),
                    mem_flags(cacheable), min, max);
}

/* ---- statements and expressions ---------------------------------------- */

int aml_if_begin(struct aml_buf *b)
{
    aml_byte(b, AML_IF_OP);
    return open_pkg(b, OPEN_IF);
}

int aml_store(struct aml_buf *b) { return aml_byte(b, AML_STORE_OP); }
int aml_and(struct aml_buf *b) { return aml_byte(b, AML_AND_OP); }
int aml_notify(struct aml_buf *b) { return aml_byte(b, AML_NOTIFY_OP); }
int aml_null_target(struct aml_buf *b) { return aml_byte(b, 0x00); }

int aml_local(struct aml_buf *b, unsigned n)
{
    if (n > 7)
        return fail(b, -EINVAL);
    return aml_byte(b, (uint8_t)(AML_LOCAL0_OP + n));
}

/* ---- operation regions and fields -------------------------------------- */

int aml_opregion(struct aml_buf *b, const char *name, uint8_t space, uint64_t offset,
                 uint64_t len)
{
    aml_byte(b, AML_EXT_OP_PREFIX);
    aml_byte(b, AML_OPREGION_OP);
    aml_namestring(b, name);
    aml_byte(b, space);
    aml_int(b, offset);
    return aml_int(b, len);
}

int aml_field(struct aml_buf *b, const char *region, uint8_t flags,
              const struct aml_field_unit *units, unsigned n)
{
    aml_byte(b, AML_EXT_OP_PREFIX);
    aml_byte(b, AML_FIELD_OP);
    open_pkg(b, OPEN_SCOPE);
    aml_namestring(b, region);
    aml_byte(b, flags);
    for (unsigned i = 0; i < n && !b->err; i++) {
        char segs[255][4];
        uint8_t enc[4];
        /* A NamedField is a bare NameSeg, then its width in bits as a
         * PkgLength (the value does not count its own bytes here). */
        unsigned w = aml_pkglen_encode(units[i].bits, enc);
        if (parse_segs(units[i].name, segs) != 1 || units[i].bits == 0 || !w)
            return fail(b, -EINVAL);
        aml_bytes(b, segs[0], 4);
        aml_bytes(b, enc, w);
    }
    if (b->err)
        return b->err;
    return close_pkg(b);
}
