/* The snapshot file (docs/snapshot.md): a 4 KiB header, the state
 * sections with their CRC-32C, then guest memory page-aligned and sparse so
 * that a restore can map it copy-on-write instead of reading it. */
#ifndef CVIRT_VMM_SNAPSHOT_FORMAT_H
#define CVIRT_VMM_SNAPSHOT_FORMAT_H

#include <stdint.h>

#include "snapshot/stream.h"
#include "util/err.h"

#define SNAP_FILE_MAGIC   "CVIRTSNP"
#define SNAP_FILE_VERSION 1
#define SNAP_FILE_PAGE    4096u
#define SNAP_HEADER_SIZE  4096u
/* State is registers and device registers: far below this. */
#define SNAP_MAX_STATE    (64u << 20)

struct snap_header {
    uint32_t version;
    uint64_t state_off, state_len;
    uint32_t state_crc;
    uint64_t mem_off, mem_len;
};

/* The 4 KiB header for h (header checksum included). */
void snap_header_encode(const struct snap_header *h, uint8_t out[SNAP_HEADER_SIZE]);
/* Checks magic, version, header checksum and that the layout fits in a
 * file of file_size bytes; what is at fault goes into e. */
int snap_header_decode(const uint8_t in[SNAP_HEADER_SIZE], uint64_t file_size,
                       struct snap_header *h, struct err *e);

struct snap_file;

/* Writes a whole snapshot to fd (an empty regular file): header, state,
 * and ram_size bytes of memory with all-zero pages left as holes. backing
 * is the snapshot ram was restored from (mapped over it), or NULL. */
int snap_file_write(int fd, const struct snapbuf *state, const uint8_t *ram,
                    uint64_t ram_size, const struct snap_file *backing, struct err *e);
/* Writes to PATH.tmp and renames it over path, so that a VM restored
 * from the old file at path (whose memory maps it) keeps its pages. */
int snap_file_save(const char *path, const struct snapbuf *state, const uint8_t *ram,
                   uint64_t ram_size, const struct snap_file *backing, struct err *e);

/* Guest RAM is scanned in chunks of this size. */
#define SNAP_SCAN_CHUNK (2u << 20)
/* For the pages of [ram + base, + len) (len at most SNAP_SCAN_CHUNK, a page
 * multiple), sets zero[i] when page i is certainly all zeros without
 * reading it, which would fault it in: never touched (neither present nor
 * swapped, per /proc/self/pagemap) and, for memory mapped from a snapshot
 * (backing), in a hole of the file's memory section. Other pages, and all
 * of them when pagemap cannot be read, are left false. */
void snap_ram_zero_map(const uint8_t *ram, uint64_t base, uint64_t len,
                       const struct snap_file *backing, bool *zero);

/* An opened, verified snapshot: its state sections are in memory, its
 * guest memory stays in the file. */
struct snap_file {
    int fd;
    struct snap_header h;
    struct snapbuf state;
};
/* Opens and verifies path; a truncated, corrupt or foreign file fails with
 * one line naming the file and the fault. */
int snap_file_open(struct snap_file *f, const char *path, struct err *e);
/* Maps the memory section over ram (which must be ram_size bytes, the
 * size in the file) privately: pages are read on first touch and copied on
 * first write. */
int snap_file_map_ram(struct snap_file *f, uint8_t *ram, uint64_t ram_size, struct err *e);
void snap_file_close(struct snap_file *f);

/* True when the len bytes at p (a multiple of 8) are all zero. */
bool snap_page_is_zero(const void *p, size_t len);

#endif
