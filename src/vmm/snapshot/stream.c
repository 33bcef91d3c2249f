#include "snapshot/stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void snapbuf_init(struct snapbuf *b)
{
    memset(b, 0, sizeof(*b));
}

void snapbuf_view(struct snapbuf *b, const void *data, size_t len)
{
    memset(b, 0, sizeof(*b));
    b->data = (uint8_t *)data;
    b->len = b->cap = len;
    b->borrowed = true;
}

void snapbuf_free(struct snapbuf *b)
{
    if (!b->borrowed)
        free(b->data);
    memset(b, 0, sizeof(*b));
}

static bool snapbuf_reserve(struct snapbuf *b, size_t n)
{
    if (b->nomem || b->borrowed)
        return false;
    if (b->cap - b->len >= n)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            b->nomem = true;
            return false;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (!p) {
        b->nomem = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void snapbuf_put(struct snapbuf *b, const void *p, size_t n)
{
    if (n == 0 || !snapbuf_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void snapbuf_put_u8(struct snapbuf *b, uint8_t v)
{
    snapbuf_put(b, &v, 1);
}

void snapbuf_put_u16(struct snapbuf *b, uint16_t v)
{
    uint8_t x[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
    snapbuf_put(b, x, 2);
}

void snapbuf_put_u32(struct snapbuf *b, uint32_t v)
{
    uint8_t x[4];
    for (int i = 0; i < 4; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    snapbuf_put(b, x, 4);
}

void snapbuf_put_u64(struct snapbuf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    snapbuf_put(b, x, 8);
}

void snapbuf_put_str(struct snapbuf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    snapbuf_put_u32(b, (uint32_t)n);
    snapbuf_put(b, s, n);
}

size_t snapbuf_left(const struct snapbuf *b)
{
    return b->len - b->pos;
}

void snapbuf_get(struct snapbuf *b, void *p, size_t n)
{
    if (n > snapbuf_left(b)) {
        b->short_read = true;
        b->pos = b->len;
        memset(p, 0, n);
        return;
    }
    memcpy(p, b->data + b->pos, n);
    b->pos += n;
}

uint8_t snapbuf_get_u8(struct snapbuf *b)
{
    uint8_t v;
    snapbuf_get(b, &v, 1);
    return v;
}

uint16_t snapbuf_get_u16(struct snapbuf *b)
{
    uint8_t x[2];
    snapbuf_get(b, x, 2);
    return (uint16_t)(x[0] | x[1] << 8);
}

uint32_t snapbuf_get_u32(struct snapbuf *b)
{
    uint8_t x[4];
    snapbuf_get(b, x, 4);
    return (uint32_t)x[0] | (uint32_t)x[1] << 8 | (uint32_t)x[2] << 16 | (uint32_t)x[3] << 24;
}

uint64_t snapbuf_get_u64(struct snapbuf *b)
{
    uint64_t lo = snapbuf_get_u32(b);
    uint64_t hi = snapbuf_get_u32(b);
    return lo | hi << 32;
}

bool snapbuf_get_bool(struct snapbuf *b)
{
    return snapbuf_get_u8(b) != 0;
}

char *snapbuf_get_str(struct snapbuf *b, size_t max)
{
    uint32_t n = snapbuf_get_u32(b);
    if (b->short_read || n > max || n > snapbuf_left(b)) {
        b->short_read = true;
        return NULL;
    }
    if (memchr(b->data + b->pos, '\0', n)) {
        b->short_read = true;
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    memcpy(s, b->data + b->pos, n);
    s[n] = '\0';
    b->pos += n;
    return s;
}

size_t snapbuf_section_begin(struct snapbuf *b, uint32_t tag, uint32_t instance)
{
    snapbuf_put_u32(b, tag);
    snapbuf_put_u32(b, instance);
    size_t at = b->len;
    snapbuf_put_u32(b, 0);
    return at;
}

void snapbuf_section_end(struct snapbuf *b, size_t start)
{
    if (b->nomem || start + 4 > b->len)
        return;
    size_t n = b->len - start - 4;
    for (int i = 0; i < 4; i++)
        b->data[start + i] = (uint8_t)(n >> (8 * i));
}

int snapbuf_section_next(struct snapbuf *b, uint32_t *tag, uint32_t *instance,
                         struct snapbuf *body)
{
    if (snapbuf_left(b) == 0)
        return 0;
    if (snapbuf_left(b) < 12)
        return -EINVAL;
    *tag = snapbuf_get_u32(b);
    *instance = snapbuf_get_u32(b);
    uint32_t n = snapbuf_get_u32(b);
    if (n > snapbuf_left(b))
        return -EINVAL;
    snapbuf_view(body, b->data + b->pos, n);
    b->pos += n;
    return 1;
}

/* Table-driven, reflected polynomial 0x82f63b78; the table is built on
 * first use (a race builds it twice with the same values). */
uint32_t snap_crc32c(uint32_t crc, const void *data, size_t len)
{
    static uint32_t table[256];
    static volatile int ready;
    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    const uint8_t *p = data;
    crc = ~crc;
    while (len--)
        crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}
