/* A growable byte buffer for device and CPU state, little-endian, in
 * tagged sections. Writers append; readers consume and remember the first
 * short read, so a device's load can read everything it expects and check
 * once at the end: state comes from a file or a peer and is hostile. */
#ifndef CVIRT_VMM_SNAPSHOT_STREAM_H
#define CVIRT_VMM_SNAPSHOT_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct snapbuf {
    uint8_t *data;
    size_t len, cap;         /* writer: bytes used, allocated */
    size_t pos;              /* reader: next byte */
    bool short_read;         /* a read went past the end */
    bool nomem;              /* an append failed; the buffer is unusable */
    bool borrowed;           /* data belongs to someone else (a reader view) */
};

/* Four-character section tags, stored as a little-endian u32. */
#define SNAP_TAG(a, b, c, d) \
    ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)

void snapbuf_init(struct snapbuf *b);
/* A reader over len bytes at data (not copied, not freed). */
void snapbuf_view(struct snapbuf *b, const void *data, size_t len);
void snapbuf_free(struct snapbuf *b);

void snapbuf_put(struct snapbuf *b, const void *p, size_t n);
void snapbuf_put_u8(struct snapbuf *b, uint8_t v);
void snapbuf_put_u16(struct snapbuf *b, uint16_t v);
void snapbuf_put_u32(struct snapbuf *b, uint32_t v);
void snapbuf_put_u64(struct snapbuf *b, uint64_t v);
void snapbuf_put_str(struct snapbuf *b, const char *s);   /* u32 length + bytes */

/* Readers return zeros past the end and set short_read. */
void snapbuf_get(struct snapbuf *b, void *p, size_t n);
uint8_t snapbuf_get_u8(struct snapbuf *b);
uint16_t snapbuf_get_u16(struct snapbuf *b);
uint32_t snapbuf_get_u32(struct snapbuf *b);
uint64_t snapbuf_get_u64(struct snapbuf *b);
bool snapbuf_get_bool(struct snapbuf *b);
/* A NUL-terminated copy (malloc) of a stored string of at most max bytes;
 * NULL on a short read, a longer string or an embedded NUL. */
char *snapbuf_get_str(struct snapbuf *b, size_t max);
size_t snapbuf_left(const struct snapbuf *b);

/* Sections: tag, instance, u32 length, body. begin returns the offset
 * end needs to patch the length in. */
size_t snapbuf_section_begin(struct snapbuf *b, uint32_t tag, uint32_t instance);
void snapbuf_section_end(struct snapbuf *b, size_t start);
/* Next section of a reader into *body (a view); 1 when one was read, 0 at
 * the end, -EINVAL when the header or length runs past the end. */
int snapbuf_section_next(struct snapbuf *b, uint32_t *tag, uint32_t *instance,
                         struct snapbuf *body);

/* CRC-32C (Castagnoli), the checksum of the state sections. */
uint32_t snap_crc32c(uint32_t crc, const void *data, size_t len);

#endif
