/* Check and repair arbitrary bytes as qcow2: a corrupt image must give
 * an error or a repaired image, never a crash or a hang. */
#include <unistd.h>

#include "img/blk.h"
#include "fuzz_img.h"

#ifdef FUZZ_RENAME   /* linked together into the replay unit test */
#define LLVMFuzzerTestOneInput fuzz_check_one
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
    struct blk_check_result r = {0};     /* no report callback: silent */
    if (blk_open(&b, path, "qcow2", BLK_O_NO_BACKING | BLK_O_CHECK, NULL, &e) == 0) {
        blk_check(b, 0, &r, &e);
        blk_close(b);
    }
    err_clear(&e);
    /* Repair writes into the anonymous file; then the result must open. */
    if (blk_open(&b, path, "qcow2", BLK_O_NO_BACKING | BLK_O_CHECK | BLK_O_RDWR,
                 NULL, &e) == 0) {
        if (blk_check(b, BLK_CHECK_FIX_LEAKS | BLK_CHECK_FIX_ERRORS, &r, &e) == 0) {
            err_clear(&e);
            blk_check(b, 0, &r, &e);
        }
        blk_close(b);
    }
    close(fd);
    return 0;
}
