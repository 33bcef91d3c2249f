/* C side of the PVH entry: copy what the loader handed over before any test
 * touches memory, then run the program. */
#include "kit.h"

struct kit_boot_info kit_boot_info;

KIT_NORETURN void kit_boot(uint32_t start_info);

void kit_boot(uint32_t start_info)
{
    struct kit_boot_info *b = &kit_boot_info;
    uart_init();
    b->start_info_paddr = start_info;
    if (start_info && start_info < 0xfffff000u) {
        const struct hvm_start_info *si = (const void *)(uintptr_t)start_info;
        if (si->magic == HVM_START_MAGIC) {
            b->start_info_ok = true;
            /* Fields after rsdp_paddr exist only from version 1 on. */
            size_t n = si->version >= 1 ? sizeof(*si)
                                        : offsetof(struct hvm_start_info, memmap_paddr);
            memcpy(&b->si, si, n);
        }
    }
    if (!b->start_info_ok)
        tap_diag("no hvm_start_info at 0x%x (ebx)", start_info);
    uint64_t cl = b->si.cmdline_paddr;
    if (cl && cl < 0xfffff000u) {
        const char *s = (const char *)(uintptr_t)cl;
        size_t i;
        for (i = 0; i + 1 < sizeof(b->cmdline) && s[i]; i++)
            b->cmdline[i] = s[i];
        b->cmdline[i] = '\0';
    }
    kit_main();
    tap_finish();
}

/* The last key=value wins, so an extra argument can override the harness's. */
bool cmdline_get(const char *key, char *out, size_t size)
{
    const char *p = kit_boot_info.cmdline, *val = NULL;
    size_t klen = strlen(key), vlen = 0;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *w = p;
        while (*p && *p != ' ')
            p++;
        if ((size_t)(p - w) > klen && !strncmp(w, key, klen) && w[klen] == '=') {
            val = w + klen + 1;
            vlen = (size_t)(p - val);
        }
    }
    if (!val || vlen + 1 > size)
        return false;
    memcpy(out, val, vlen);
    out[vlen] = '\0';
    return true;
}

bool cmdline_get_uint(const char *key, uint32_t *out)
{
    char buf[16];
    if (!cmdline_get(key, buf, sizeof(buf)) || !buf[0])
        return false;
    uint32_t v = 0;
    for (const char *p = buf; *p; p++) {
        if (*p < '0' || *p > '9' || v > 100000000u)
            return false;
        v = v * 10 + (uint32_t)(*p - '0');
    }
    *out = v;
    return true;
}
