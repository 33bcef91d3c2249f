/* Open arbitrary bytes as qcow2 and read from it: errors are fine, a crash,
 * a hang or unbounded memory is a bug. */
#include <stdlib.h>
#include <string.h>

#include "img/blk.h"
#include "fuzz_img.h"

#ifdef FUZZ_RENAME   /* linked together into the replay unit test */
#define LLVMFuzzerTestOneInput fuzz_read_one
#endif
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_memfile(data, size, path, sizeof path);
    if (fd < 0)
        return 0;
    struct blk *b;
    struct err e = {0};
    if (blk_open(&b, path, "qcow2", BLK_O_NO_BACKING, NULL, &e) == 0) {
        static uint8_t buf[1 << 20];
        struct blk_info info;
        blk_get_info(b, &info, &e);
        struct blk_snapshot_info *sn;
        int nsn;
        if (blk_snapshot_list(b, &sn, &nsn, &e) == 0)
            free(sn);
        /* The start, the end, and offsets the input itself chooses. */
        uint64_t offs[4] = { 0, b->size > sizeof buf ? b->size - sizeof buf : 0, 0, 0 };
        if (size >= 16) {
            memcpy(&offs[2], data + size - 8, 8);
            memcpy(&offs[3], data + size - 16, 8);
        }
        for (int i = 0; i < 4; i++) {
            uint64_t off = b->size ? offs[i] % b->size : 0;
            size_t len = b->size - off < sizeof buf ? (size_t)(b->size - off) : sizeof buf;
            err_clear(&e);
            blk_pread(b, buf, len, off, &e);
            struct blk_status st;
            if (len) {
                err_clear(&e);
                blk_block_status(b, off, len, &st, &e);
            }
        }
        blk_close(b);
    }
    close(fd);
    return 0;
}
