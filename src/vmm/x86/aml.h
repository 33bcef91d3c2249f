/* A small AML (ACPI Machine Language) builder for the DSDT.
 *
 * Output goes to a growable byte buffer. Objects that carry a PkgLength
 * (Scope, Device, Method, Package, Buffer) are opened with *_begin and
 * closed with aml_end(); the length is back-patched on close in the
 * shortest of the 1..4 byte encodings.
 *
 * Errors are sticky: every call returns 0 or a negative errno, and after
 * the first failure (out of memory, bad name, unbalanced nesting) every
 * later call returns that same error without touching the buffer. A
 * caller can therefore emit a whole block and check aml_error() once.
 * Out of memory is reported as -ENOMEM, never by aborting. */
#ifndef CVIRT_VMM_X86_AML_H
#define CVIRT_VMM_X86_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AML_MAX_DEPTH 32
/* Largest value a PkgLength can express (28 bits). */
#define AML_PKGLEN_MAX 0x0fffffffu

struct aml_open {
    size_t at;        /* offset right after the opcode: PkgLength goes here */
    uint8_t kind;     /* enum aml_open_kind in aml.c, checked on close */
};

struct aml_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t max;       /* refuse to grow beyond this (0: AML_PKGLEN_MAX) */
    int err;          /* first error, 0 when none */
    unsigned depth;
    struct aml_open open[AML_MAX_DEPTH];
};

void aml_init(struct aml_buf *b);
void aml_free(struct aml_buf *b);
static inline int aml_error(const struct aml_buf *b) { return b->err; }

/* Raw output. */
int aml_byte(struct aml_buf *b, uint8_t v);
int aml_bytes(struct aml_buf *b, const void *p, size_t n);

/* Encodes a PkgLength whose value (which counts its own bytes) is len.
 * Returns the number of bytes written to out (1..4), or 0 when len does
 * not fit in 28 bits. */
unsigned aml_pkglen_encode(uint32_t len, uint8_t out[4]);

/* Data objects. aml_int picks the shortest of ZeroOp, OneOp, OnesOp and
 * the Byte/Word/DWord/QWord prefixes. aml_string takes printable ASCII. */
int aml_int(struct aml_buf *b, uint64_t v);
int aml_string(struct aml_buf *b, const char *s);

/* Compressed EISA id ("PNP0A03" -> 0x030AD041): three upper-case letters
 * and four hex digits. aml_eisaid emits it as a DWord integer. */
int aml_eisaid_value(const char *id, uint32_t *out);
int aml_eisaid(struct aml_buf *b, const char *id);

/* NameString: optional '\' or '^'... prefix, then dot-separated segments
 * of 1..4 characters (padded with '_'); "" is the null name. */
int aml_namestring(struct aml_buf *b, const char *path);

/* Name(path, <object>): emits NameOp and the name; the caller emits the
 * object next. The helpers below do both. */
int aml_name(struct aml_buf *b, const char *path);
int aml_name_int(struct aml_buf *b, const char *path, uint64_t v);
int aml_name_string(struct aml_buf *b, const char *path, const char *s);
int aml_name_eisaid(struct aml_buf *b, const char *path, const char *id);

/* Nesting. Each *_begin must be matched by aml_end(). */
int aml_scope_begin(struct aml_buf *b, const char *path);
int aml_device_begin(struct aml_buf *b, const char *path);
int aml_method_begin(struct aml_buf *b, const char *path, unsigned nargs,
                     bool serialized);
int aml_package_begin(struct aml_buf *b, unsigned nelems);
int aml_end(struct aml_buf *b);

/* Return(<object>): emits ReturnOp; the caller emits the object next. */
int aml_return(struct aml_buf *b);
int aml_return_int(struct aml_buf *b, uint64_t v);

/* Buffer() with fixed contents. */
int aml_buffer(struct aml_buf *b, const void *p, size_t n);

/* ResourceTemplate(): a Buffer of resource descriptors. The EndTag and
 * its checksum (making the bytes of the template sum to zero) are added
 * by aml_restemplate_end(), which closes the Buffer. */
int aml_restemplate_begin(struct aml_buf *b);
int aml_restemplate_end(struct aml_buf *b);

/* Resource descriptors, valid inside a ResourceTemplate. Address-space
 * windows are written as a producer (a bridge window) with fixed min and
 * max and positive decode; consumer variants take `consumer`. */
int aml_res_io(struct aml_buf *b, uint16_t base, uint8_t len);
int aml_res_irq_noflags(struct aml_buf *b, unsigned irq);
int aml_res_memory32_fixed(struct aml_buf *b, uint32_t base, uint32_t len,
                           bool writable);
int aml_res_word_bus(struct aml_buf *b, uint16_t min, uint16_t max);
int aml_res_word_io(struct aml_buf *b, uint16_t min, uint16_t max);
int aml_res_dword_memory(struct aml_buf *b, uint32_t min, uint32_t max,
                         bool consumer, bool cacheable);
int aml_res_qword_memory(struct aml_buf *b, uint64_t min, uint64_t max,
                         bool consumer, bool cacheable);

/* Control flow and expressions, as statements inside a Method. Each
 * emits its opcode; the caller emits the operands next, in AML order:
 *   If (predicate) { body }   aml_if_begin, predicate, body, aml_end
 *   Store (src, dst)          aml_store, src, dst
 *   And (a, b, target)        aml_and, a, b, target (aml_null_target: none)
 *   Notify (object, value)    aml_notify, object's name, value
 * A method call is its name followed by its arguments. */
int aml_if_begin(struct aml_buf *b);
int aml_store(struct aml_buf *b);
int aml_and(struct aml_buf *b);
int aml_notify(struct aml_buf *b);
int aml_null_target(struct aml_buf *b);
int aml_local(struct aml_buf *b, unsigned n);   /* Local0..Local7 */

/* OperationRegion(name, space, offset, len). */
#define AML_SPACE_SYSTEM_IO 1
int aml_opregion(struct aml_buf *b, const char *name, uint8_t space, uint64_t offset,
                 uint64_t len);

/* Field(region, flags) { name, bits; ... }: consecutive units from bit 0.
 * Flags: access type in bits 3:0, lock in bit 4, update rule in 6:5. */
#define AML_FIELD_DWORD_ACC    0x03
#define AML_FIELD_WRITE_ZEROS  0x40
struct aml_field_unit {
    const char *name;    /* one NameSeg */
    uint32_t bits;
};
int aml_field(struct aml_buf *b, const char *region, uint8_t flags,
              const struct aml_field_unit *units, unsigned n);

#endif
