/* Compressed clusters: raw deflate (zlib type, 4 KiB window as images in the
 * wild use) and zstd frames. Reading must produce exactly one cluster. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>
#include <zstd.h>

#include "img/qcow2.h"

static int inflate_cluster(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -12) != Z_OK)
        return -ENOMEM;
    z.next_in = (uint8_t *)in;
    z.avail_in = (uInt)inlen;
    z.next_out = out;
    z.avail_out = (uInt)outlen;
    int zr = inflate(&z, Z_FINISH);
    /* Trailing bytes of the last sector may belong to the next cluster, so
     * running out of input after a full cluster is success too. */
    bool ok = (zr == Z_STREAM_END || zr == Z_BUF_ERROR || zr == Z_OK) && z.avail_out == 0;
    inflateEnd(&z);
    return ok ? 0 : -EIO;
}

static int zstd_cluster(struct qcow2_state *s, const uint8_t *in, size_t inlen,
                        uint8_t *out, size_t outlen)
{
    if (!s->zstd_dctx && !(s->zstd_dctx = ZSTD_createDCtx()))
        return -ENOMEM;
    ZSTD_DCtx *d = s->zstd_dctx;
    ZSTD_DCtx_reset(d, ZSTD_reset_session_only);
    ZSTD_inBuffer ib = { in, inlen, 0 };
    ZSTD_outBuffer ob = { out, outlen, 0 };
    while (ob.pos < ob.size) {
        size_t before_in = ib.pos, before_out = ob.pos;
        size_t zr = ZSTD_decompressStream(d, &ob, &ib);
        if (ZSTD_isError(zr))
            return -EIO;
        if (zr == 0 && ob.pos < ob.size)
            return -EIO;    /* frame ended short of a cluster */
        if (ib.pos == before_in && ob.pos == before_out)
            return -EIO;    /* no progress: truncated input */
    }
    return 0;
}

int qcow2_read_compressed(struct blk *b, const struct qcow2_l2_decoded *d,
                          uint8_t *out, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    uint64_t len = d->csize;
    if (len > 2ull * s->cluster_size + 512)
        return err_set(e, EIO, "'%s': compressed cluster at 0x%llx is too large",
                       b->filename, (unsigned long long)d->host);
    int r = blk_file_pread(b->fd, s->cbuf, (size_t)len, d->host);
    if (r < 0)
        return err_set_errno(e, -r, "'%s': cannot read compressed cluster", b->filename);
    if (s->h.compression_type == 1)
        r = zstd_cluster(s, s->cbuf, (size_t)len, out, s->cluster_size);
    else
        r = inflate_cluster(s->cbuf, (size_t)len, out, s->cluster_size);
    if (r < 0)
        return err_set(e, EIO, "'%s': compressed cluster at 0x%llx does not decompress",
                       b->filename, (unsigned long long)d->host);
    return 0;
}

/* Compresses one cluster (zero padded when short); returns the length, or
 * 0 when it does not shrink enough to be worth a compressed descriptor.
 * Touches no image state, so workers may call it concurrently. */
size_t qcow2_compress_cluster(const struct qcow2_state *s, const uint8_t *in, size_t len,
                              uint8_t *out)
{
    size_t cap = s->cluster_size - 512;
    uint8_t *pad = NULL;
    if (len < s->cluster_size) {
        if (!(pad = calloc(1, s->cluster_size)))
            return 0;
        memcpy(pad, in, len);
        in = pad;
    }
    size_t n = 0;
    if (s->h.compression_type == 1) {
        n = ZSTD_compress(out, cap, in, s->cluster_size, 3);
        n = ZSTD_isError(n) ? 0 : n;
    } else {
        z_stream z;
        memset(&z, 0, sizeof z);
        if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9,
                         Z_DEFAULT_STRATEGY) == Z_OK) {
            z.next_in = (uint8_t *)in;
            z.avail_in = s->cluster_size;
            z.next_out = out;
            z.avail_out = (uInt)cap;
            int zr = deflate(&z, Z_FINISH);
            n = zr == Z_STREAM_END ? cap - z.avail_out : 0;
            deflateEnd(&z);
        }
    }
    free(pad);
    return n;
}

/* Finds room for len compressed bytes, packing behind the previous one. */
static int alloc_bytes(struct blk *b, size_t len, uint64_t *off, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    uint64_t cs = s->cluster_size;
    uint64_t cur = s->comp_cursor;
    uint64_t room = (cur && cur % cs) ? cs - cur % cs : 0;
    int r;
    if (room && len <= room) {
        if ((r = qcow2_update_refcount(b, cur / cs, 1, e)) < 0)
            return r;
        *off = cur;
        s->comp_cursor = cur + len;
        return 0;
    }
    uint64_t n = (len + cs - 1) / cs, got;
    if ((r = qcow2_alloc_clusters(b, n, &got, e)) < 0)
        return r;
    if (room && got == (cur / cs + 1) * cs) {
        /* Contiguous: start in the tail of the current cluster. */
        if ((r = qcow2_update_refcount(b, cur / cs, 1, e)) < 0)
            return r;
        uint64_t used = (len - room + cs - 1) / cs;
        for (uint64_t i = used; i < n; i++)     /* never referenced: drop now */
            if ((r = qcow2_update_refcount(b, got / cs + i, -1, e)) < 0)
                return r;
        *off = cur;
    } else {
        *off = got;
    }
    s->comp_cursor = *off + len;
    return 0;
}

int qcow2_store_compressed(struct blk *b, uint64_t voff, const uint8_t *cdata, size_t clen,
                           const void *raw, size_t len, struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    if (voff % s->cluster_size || (len != s->cluster_size && voff + len != b->size))
        return err_set(e, EINVAL, "compressed writes must cover whole clusters");
    if (clen == 0 || clen > s->cluster_size - 512)
        return qcow2_write_range(b, raw, voff, len, e);
    uint64_t off;
    int r = alloc_bytes(b, clen, &off, e);
    if (r < 0)
        return r;
    if ((r = blk_file_pwrite(b->fd, cdata, clen, off)) < 0)
        return err_set_errno(e, -r, "'%s': write", b->filename);
    uint64_t old;
    r = qcow2_set_l2_entry(b, voff, qcow2_encode_compressed(s, off, clen), true, &old, e);
    if (r < 0)
        return r;
    if (old) {      /* the caller overwrote allocated data: release it */
        struct qcow2_l2_decoded d;
        if (qcow2_decode_l2(s, old, &d) == 0 && d.host) {
            uint64_t first = d.host / s->cluster_size;
            uint64_t last = d.type == QCOW2_CL_COMPRESSED
                ? (((d.host + d.csize - 1) | 511) / s->cluster_size) : first;
            for (uint64_t c = first; c <= last && r == 0; c++)
                r = qcow2_free_later(b, c * s->cluster_size, e);
        }
    }
    return r;
}

int qcow2_write_compressed(struct blk *b, uint64_t voff, const void *buf, size_t len,
                           struct err *e)
{
    struct qcow2_state *s = qcow2_s(b);
    if (len > s->cluster_size)
        return err_set(e, EINVAL, "compressed writes must cover whole clusters");
    size_t clen = qcow2_compress_cluster(s, buf, len, s->cbuf);
    return qcow2_store_compressed(b, voff, s->cbuf, clen, buf, len, e);
}
