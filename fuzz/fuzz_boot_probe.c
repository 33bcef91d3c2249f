/* libFuzzer target: kernel image headers (bzImage setup header, ELF program
 * headers and notes) as cvirt-vmm reads them from a user's --kernel file. */
#include <stddef.h>
#include <stdint.h>

#include "x86/boot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct boot_image img;
    struct err e = { 0 };
    if (boot_probe(data, size, &img, &e) == 0) {
        /* What a successful probe promises the loader. */
        if (img.kind == BOOT_BZIMAGE && img.setup_size >= size)
            __builtin_trap();
        if (img.kind == BOOT_PVH_ELF && (img.load_lo > img.load_hi || img.pvh_entry >> 32))
            __builtin_trap();
    } else if (e.msg[0] == '\0') {
        __builtin_trap(); /* every refusal says why */
    }
    return 0;
}
