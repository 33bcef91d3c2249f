#include "snapshot/format.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Header field offsets; everything after HDR_END is zero. */
enum {
    HDR_MAGIC = 0, HDR_VERSION = 8, HDR_HEADER_SIZE = 12, HDR_STATE_OFF = 16,
    HDR_STATE_LEN = 24, HDR_STATE_CRC = 32, HDR_PAGE_SIZE = 36, HDR_MEM_OFF = 40,
    HDR_MEM_LEN = 48, HDR_FLAGS = 56, HDR_CRC = 60, HDR_END = 64,
};

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return get32(p) | (uint64_t)get32(p + 4) << 32;
}

void snap_header_encode(const struct snap_header *h, uint8_t out[SNAP_HEADER_SIZE])
{
    memset(out, 0, SNAP_HEADER_SIZE);
    memcpy(out + HDR_MAGIC, SNAP_FILE_MAGIC, 8);
    put32(out + HDR_VERSION, h->version);
    put32(out + HDR_HEADER_SIZE, SNAP_HEADER_SIZE);
    put64(out + HDR_STATE_OFF, h->state_off);
    put64(out + HDR_STATE_LEN, h->state_len);
    put32(out + HDR_STATE_CRC, h->state_crc);
    put32(out + HDR_PAGE_SIZE, SNAP_FILE_PAGE);
    put64(out + HDR_MEM_OFF, h->mem_off);
    put64(out + HDR_MEM_LEN, h->mem_len);
    put32(out + HDR_CRC, snap_crc32c(0, out, HDR_CRC));
}

int snap_header_decode(const uint8_t in[SNAP_HEADER_SIZE], uint64_t file_size,
                       struct snap_header *h, struct err *e)
{
    if (memcmp(in + HDR_MAGIC, SNAP_FILE_MAGIC, 8) != 0)
        return err_set(e, EINVAL, "not a cvirt snapshot (bad magic)");
    h->version = get32(in + HDR_VERSION);
    if (h->version != SNAP_FILE_VERSION)
        return err_set(e, ENOTSUP, "snapshot format version %u is not supported (this cvirt-vmm reads version %u)",
                       h->version, SNAP_FILE_VERSION);
    if (get32(in + HDR_CRC) != snap_crc32c(0, in, HDR_CRC))
        return err_set(e, EINVAL, "corrupt snapshot: header checksum mismatch");
    if (get32(in + HDR_HEADER_SIZE) != SNAP_HEADER_SIZE || get32(in + HDR_PAGE_SIZE) != SNAP_FILE_PAGE ||
        get32(in + HDR_FLAGS) != 0)
        return err_set(e, EINVAL, "corrupt snapshot: unexpected header size, page size or flags");
    h->state_off = get64(in + HDR_STATE_OFF);
    h->state_len = get64(in + HDR_STATE_LEN);
    h->state_crc = get32(in + HDR_STATE_CRC);
    h->mem_off = get64(in + HDR_MEM_OFF);
    h->mem_len = get64(in + HDR_MEM_LEN);
    if (h->state_off < SNAP_HEADER_SIZE || h->state_len > SNAP_MAX_STATE ||
        h->mem_off % SNAP_FILE_PAGE || h->mem_len % SNAP_FILE_PAGE ||
        h->state_len > UINT64_MAX - h->state_off ||
        h->mem_off < h->state_off + h->state_len || h->mem_len > UINT64_MAX - h->mem_off)
        return err_set(e, EINVAL, "corrupt snapshot: sections overlap or are misaligned");
    if (file_size < h->mem_off + h->mem_len)
        return err_set(e, EINVAL, "truncated snapshot: %llu bytes, the header says %llu",
                       (unsigned long long)file_size, (unsigned long long)(h->mem_off + h->mem_len));
    return 0;
}

bool snap_page_is_zero(const void *p, size_t len)
{
    const uint64_t *w = p;
    size_t n = len / 8, i = 0;
    uint64_t acc = 0;
    /* Eight words a step for speed, then whatever is left of a length
     * that is a multiple of 8 but not of 64. */
    for (; i + 8 <= n; i += 8) {
        acc |= w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7];
        if (acc)
            return false;
    }
    for (; i < n; i++)
        acc |= w[i];
    return acc == 0;
}

static int write_all(int fd, const void *p, size_t n, uint64_t off, struct err *e)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = pwrite(fd, b, n > (1u << 30) ? 1u << 30 : n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return err_set_errno(e, errno, "cannot write the snapshot");
        }
        b += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* The file's data extents in [from, from + len), as one flag per page. */
static void file_data_pages(int fd, uint64_t from, uint64_t len, bool *data)
{
    memset(data, 0, (size_t)(len / SNAP_FILE_PAGE) * sizeof(bool));
    uint64_t pos = from;
    while (pos < from + len) {
        off_t d = lseek(fd, (off_t)pos, SEEK_DATA);
        if (d < 0 || (uint64_t)d >= from + len)
            return;
        off_t h = lseek(fd, d, SEEK_HOLE);
        uint64_t end = h < 0 || (uint64_t)h > from + len ? from + len : (uint64_t)h;
        for (uint64_t p = ((uint64_t)d - from) / SNAP_FILE_PAGE; p * SNAP_FILE_PAGE < end - from; p++)
            data[p] = true;
        pos = end;
    }
}

void snap_ram_zero_map(const uint8_t *ram, uint64_t base, uint64_t len,
                       const struct snap_file *backing, bool *zero)
{
    static int pagemap = -2;
    uint64_t n = len / SNAP_FILE_PAGE;
    memset(zero, 0, (size_t)n * sizeof(bool));
    if (pagemap == -2)
        pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (pagemap < 0 || n > SNAP_SCAN_CHUNK / SNAP_FILE_PAGE)
        return;
    uint64_t ent[SNAP_SCAN_CHUNK / SNAP_FILE_PAGE];
    uint64_t vpage = (uint64_t)(uintptr_t)(ram + base) / SNAP_FILE_PAGE;
    if (pread(pagemap, ent, (size_t)n * 8, (off_t)(vpage * 8)) != (ssize_t)(n * 8))
        return;
    bool data[SNAP_SCAN_CHUNK / SNAP_FILE_PAGE];
    if (backing)
        file_data_pages(backing->fd, backing->h.mem_off + base, len, data);
    for (uint64_t i = 0; i < n; i++) {
        bool touched = (ent[i] >> 63) & 1 || (ent[i] >> 62) & 1;
        zero[i] = !touched && !(backing && data[i]);
    }
}

int snap_file_write(int fd, const struct snapbuf *state, const uint8_t *ram,
                    uint64_t ram_size, const struct snap_file *backing, struct err *e)
{
    if (state->nomem)
        return err_set(e, ENOMEM, "out of memory for the snapshot state");
    if (state->len > SNAP_MAX_STATE)
        return err_set(e, EFBIG, "snapshot state too large (%zu bytes)", state->len);
    struct snap_header h = {
        .version = SNAP_FILE_VERSION,
        .state_off = SNAP_HEADER_SIZE,
        .state_len = state->len,
        .state_crc = snap_crc32c(0, state->data, state->len),
        .mem_len = (ram_size + SNAP_FILE_PAGE - 1) & ~(uint64_t)(SNAP_FILE_PAGE - 1),
    };
    h.mem_off = (SNAP_HEADER_SIZE + state->len + SNAP_FILE_PAGE - 1) & ~(uint64_t)(SNAP_FILE_PAGE - 1);
    uint8_t hdr[SNAP_HEADER_SIZE];
    snap_header_encode(&h, hdr);
    int r = write_all(fd, hdr, sizeof(hdr), 0, e);
    if (r == 0)
        r = write_all(fd, state->data, state->len, h.state_off, e);
    /* Runs of non-zero pages in one write each; zero pages stay holes,
     * and pages never touched are not even read. */
    uint64_t run = 0, nrun = 0;
    bool known[SNAP_SCAN_CHUNK / SNAP_FILE_PAGE];
    for (uint64_t off = 0; r == 0 && off < ram_size; off += SNAP_FILE_PAGE) {
        uint64_t n = ram_size - off < SNAP_FILE_PAGE ? ram_size - off : SNAP_FILE_PAGE;
        if (off % SNAP_SCAN_CHUNK == 0) {
            uint64_t len = ram_size - off < SNAP_SCAN_CHUNK ? ram_size - off : SNAP_SCAN_CHUNK;
            snap_ram_zero_map(ram, off, len & ~(uint64_t)(SNAP_FILE_PAGE - 1), backing, known);
        }
        bool zero = n == SNAP_FILE_PAGE ? (known[(off % SNAP_SCAN_CHUNK) / SNAP_FILE_PAGE] ||
                                           snap_page_is_zero(ram + off, n)) : false;
        if (!zero) {
            if (nrun == 0)
                run = off;
            nrun += n;
        }
        if ((zero || off + n >= ram_size || nrun >= (64u << 20)) && nrun) {
            r = write_all(fd, ram + run, nrun, h.mem_off + run, e);
            nrun = 0;
        }
    }
    if (r == 0 && ftruncate(fd, (off_t)(h.mem_off + h.mem_len)) < 0)
        r = err_set_errno(e, errno, "cannot size the snapshot");
    return r;
}

int snap_file_save(const char *path, const struct snapbuf *state, const uint8_t *ram,
                   uint64_t ram_size, const struct snap_file *backing, struct err *e)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return err_set(e, ENAMETOOLONG, "snapshot path too long");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_set_errno(e, errno, "cannot create %s", tmp);
    int r = snap_file_write(fd, state, ram, ram_size, backing, e);
    if (close(fd) < 0 && r == 0)
        r = err_set_errno(e, errno, "cannot write %s", tmp);
    if (r == 0 && rename(tmp, path) < 0)
        r = err_set_errno(e, errno, "cannot rename %s to %s", tmp, path);
    if (r < 0)
        unlink(tmp);
    return r;
}

static int read_all(int fd, void *p, size_t n, uint64_t off)
{
    uint8_t *b = p;
    while (n > 0) {
        ssize_t got = pread(fd, b, n, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return got < 0 ? -errno : -EIO;
        b += got;
        n -= (size_t)got;
        off += (uint64_t)got;
    }
    return 0;
}

int snap_file_open(struct snap_file *f, const char *path, struct err *e)
{
    memset(f, 0, sizeof(*f));
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0)
        return err_set_errno(e, errno, "cannot open snapshot %s", path);
    int r;
    struct stat st;
    uint8_t hdr[SNAP_HEADER_SIZE];
    if (fstat(f->fd, &st) < 0) {
        r = err_set_errno(e, errno, "snapshot %s", path);
        goto fail;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < SNAP_HEADER_SIZE) {
        r = err_set(e, EINVAL, "snapshot %s: not a cvirt snapshot (%s)", path,
                    S_ISREG(st.st_mode) ? "shorter than its header" : "not a regular file");
        goto fail;
    }
    if ((r = read_all(f->fd, hdr, sizeof(hdr), 0)) < 0) {
        err_set_errno(e, -r, "snapshot %s: cannot read the header", path);
        goto fail;
    }
    if ((r = snap_header_decode(hdr, (uint64_t)st.st_size, &f->h, e)) < 0) {
        err_prefix(e, "snapshot %s: ", path);
        goto fail;
    }
    snapbuf_init(&f->state);
    f->state.data = malloc(f->h.state_len ? f->h.state_len : 1);
    if (!f->state.data) {
        r = err_set(e, ENOMEM, "snapshot %s: out of memory for its state", path);
        goto fail;
    }
    f->state.len = f->state.cap = f->h.state_len;
    if ((r = read_all(f->fd, f->state.data, f->h.state_len, f->h.state_off)) < 0) {
        err_set_errno(e, -r, "snapshot %s: cannot read the state", path);
        goto fail;
    }
    if (snap_crc32c(0, f->state.data, f->state.len) != f->h.state_crc) {
        r = err_set(e, EINVAL, "snapshot %s: corrupt snapshot: state checksum mismatch", path);
        goto fail;
    }
    return 0;
fail:
    snap_file_close(f);
    return r;
}

int snap_file_map_ram(struct snap_file *f, uint8_t *ram, uint64_t ram_size, struct err *e)
{
    uint64_t want = (ram_size + SNAP_FILE_PAGE - 1) & ~(uint64_t)(SNAP_FILE_PAGE - 1);
    if (want != f->h.mem_len)
        return err_set(e, EINVAL, "snapshot memory is %llu bytes, the VM has %llu",
                       (unsigned long long)f->h.mem_len, (unsigned long long)want);
    void *p = mmap(ram, ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE,
                   f->fd, (off_t)f->h.mem_off);
    if (p == MAP_FAILED)
        return err_set_errno(e, errno, "cannot map the snapshot's memory");
    return 0;
}

void snap_file_close(struct snap_file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    snapbuf_free(&f->state);
}
