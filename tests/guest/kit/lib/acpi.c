/* ACPI table walk: RSDP -> XSDT/RSDT -> FADT (-> DSDT, FACS) and MADT. All
 * addresses are physical and identity-mapped; tables come from the monitor
 * under test, so every length is checked before it is used. */
#include "kit.h"

#define ACPI_MAX_TABLE (1u << 20)

/* Tables need not be aligned; the builtin compiles to plain loads. */
static uint32_t rd32(const void *p)
{
    uint32_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}

static uint64_t rd64(const void *p)
{
    uint64_t v;
    __builtin_memcpy(&v, p, 8);
    return v;
}

bool acpi_checksum_ok(const void *p, uint32_t len)
{
    const uint8_t *b = p;
    uint8_t sum = 0;
    while (len--)
        sum = (uint8_t)(sum + *b++);
    return sum == 0;
}

static bool rsdp_ok(const uint8_t *p)
{
    /* The first word is compared inline: the BIOS-area scan calls this
     * thousands of times, and guest instructions can be expensive. */
    return rd32(p) == 0x20445352u /* "RSD " */ && !memcmp(p, "RSD PTR ", 8) &&
           acpi_checksum_ok(p, 20);
}

uint32_t acpi_find_rsdp_legacy(void)
{
    /* ACPI 5.2.5.1: on a 16-byte boundary in the BIOS area; the EBDA is not
     * searched because PVH guests have no real-mode BIOS data to point at it. */
    for (uint32_t a = 0xe0000; a < 0x100000; a += 16)
        if (rsdp_ok((const uint8_t *)(uintptr_t)a))
            return a;
    return 0;
}

uint32_t acpi_table_ok(uint64_t addr, const char *sig)
{
    if (!addr || addr >= 0x100000000ull - sizeof(struct acpi_sdt))
        return 0;
    const struct acpi_sdt *h = (const void *)(uintptr_t)addr;
    if (memcmp(h->sig, sig, 4))
        return 0;
    if (h->length < sizeof(*h) || h->length > ACPI_MAX_TABLE ||
        addr + h->length > 0x100000000ull)
        return 0;
    return (uint32_t)addr;
}

uint32_t acpi_find_table(const struct acpi_info *ai, const char *sig)
{
    uint32_t root = ai->xsdt ? ai->xsdt : ai->rsdt;
    if (!root)
        return 0;
    const struct acpi_sdt *h = (const void *)(uintptr_t)root;
    uint32_t esz = ai->xsdt ? 8 : 4;
    const uint8_t *ent = (const uint8_t *)h + sizeof(*h);
    uint32_t n = (h->length - sizeof(*h)) / esz;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t a = esz == 8 ? rd64(ent + i * 8) : rd32(ent + i * 4);
        uint32_t t = acpi_table_ok(a, sig);
        if (t)
            return t;
    }
    return 0;
}

static uint32_t aml_pkglen_size(const uint8_t *p, const uint8_t *end)
{
    if (p >= end)
        return 0;
    return 1u + (*p >> 6);
}

/* Decodes one integer data object; returns bytes used, 0 if not an integer. */
static uint32_t aml_int(const uint8_t *p, const uint8_t *end, int *out)
{
    if (p >= end)
        return 0;
    switch (*p) {
    case 0x00: *out = 0; return 1;            /* ZeroOp */
    case 0x01: *out = 1; return 1;            /* OneOp */
    case 0x0a:                                /* BytePrefix */
        if (p + 2 > end)
            return 0;
        *out = p[1];
        return 2;
    case 0x0b:                                /* WordPrefix */
        if (p + 3 > end)
            return 0;
        *out = p[1] | p[2] << 8;
        return 3;
    case 0x0c:                                /* DWordPrefix, values fit 3 bits */
        if (p + 5 > end)
            return 0;
        *out = (int)(rd32(p + 1) & 0x7fffffff);
        return 5;
    default:
        return 0;
    }
}

bool acpi_find_s5(const uint8_t *aml, uint32_t len, int *typa, int *typb)
{
    const uint8_t *end = aml + len;
    *typa = *typb = -1;
    for (const uint8_t *p = aml + 1; p + 4 <= end; p++) {
        if (rd32(p) != 0x5f35535fu)   /* "_S5_" */
            continue;
        /* NameOp, optionally followed by the root prefix '\'. */
        bool named = p[-1] == 0x08 || (p[-1] == '\\' && p - 2 >= aml && p[-2] == 0x08);
        const uint8_t *q = p + 4;
        if (!named || q >= end || *q != 0x12)  /* PackageOp */
            continue;
        q++;
        uint32_t pl = aml_pkglen_size(q, end);
        if (!pl)
            continue;
        q += pl;
        if (q >= end)
            continue;
        uint8_t nelem = *q++;
        uint32_t used = nelem >= 1 ? aml_int(q, end, typa) : 0;
        if (!used)
            continue;
        if (nelem >= 2 && !aml_int(q + used, end, typb))
            *typb = -1;
        return true;
    }
    return false;
}

static void madt_parse(struct acpi_info *ai)
{
    const uint8_t *t = (const uint8_t *)(uintptr_t)ai->madt;
    uint32_t len = ((const struct acpi_sdt *)t)->length;
    ai->irq0_gsi = 0;
    ai->irq0_flags = 0;
    if (len < 44)
        return;
    ai->lapic_addr = rd32(t + 36);
    for (uint32_t off = 44; off + 2 <= len;) {
        uint8_t type = t[off], elen = t[off + 1];
        if (elen < 2 || off + elen > len)
            break;
        const uint8_t *e = t + off;
        if (type == 0 && elen >= 8 && (rd32(e + 4) & 1)) {
            if (ai->ncpus < ACPI_MAX_CPUS)
                ai->apic_ids[ai->ncpus] = e[3];
            ai->ncpus++;
        } else if (type == 9 && elen >= 16 && (rd32(e + 8) & 1)) {
            if (ai->ncpus < ACPI_MAX_CPUS)
                ai->apic_ids[ai->ncpus] = (uint8_t)rd32(e + 4);
            ai->ncpus++;
        } else if (type == 1 && elen >= 12) {
            if (!ai->nioapics) {
                ai->ioapic_addr = rd32(e + 4);
                ai->ioapic_gsi_base = rd32(e + 8);
            }
            ai->nioapics++;
        } else if (type == 2 && elen >= 10 && e[2] == 0 && e[3] == 0) {
            ai->irq0_gsi = rd32(e + 4);
            ai->irq0_flags = (uint16_t)(e[8] | e[9] << 8);
        } else if (type == 5 && elen >= 12) {
            uint64_t a = rd64(e + 4);
            if (a < 0x100000000ull)
                ai->lapic_addr = (uint32_t)a;
        }
        off += elen;
    }
}

static void fadt_parse(struct acpi_info *ai)
{
    const uint8_t *f = (const uint8_t *)(uintptr_t)ai->fadt;
    uint32_t len = ((const struct acpi_sdt *)f)->length;
    uint64_t dsdt = len >= 44 ? rd32(f + 40) : 0;
    uint64_t facs = len >= 40 ? rd32(f + 36) : 0;
    if (len >= 148 && rd64(f + 140))
        dsdt = rd64(f + 140);
    if (len >= 140 && rd64(f + 132))
        facs = rd64(f + 132);
    ai->dsdt = acpi_table_ok(dsdt, "DSDT");
    ai->facs_ptr = facs < 0x100000000ull ? (uint32_t)facs : 0xffffffffu;
    /* The FACS has a signature and length but no checksum. */
    if (facs && facs < 0xffffff00u && !memcmp((const void *)(uintptr_t)facs, "FACS", 4))
        ai->facs = (uint32_t)facs;
    if (len >= 80) {
        ai->pm1a_cnt = rd32(f + 64);
        ai->pm1b_cnt = rd32(f + 68);
        ai->pm_tmr = rd32(f + 76);
    }
    /* X_PM1a_CNT_BLK in system I/O space when the legacy field is empty. */
    if (!ai->pm1a_cnt && len >= 184 && f[172] == 1)
        ai->pm1a_cnt = (uint32_t)rd64(f + 176);
    if (len >= 109)
        ai->century = f[108];
    if (len >= 116)
        ai->pm_tmr_32bit = rd32(f + 112) & (1u << 8);
    if (ai->pm1a_cnt > 0xffff)
        ai->pm1a_cnt = 0;
    if (ai->pm_tmr > 0xffff)
        ai->pm_tmr = 0;
}

static bool acpi_walk(struct acpi_info *ai, char *why, size_t why_size);

/* Tables and command line do not change while a program runs, so the walk
 * (whose \_S5_ scan is the costly part) is done once. */
bool acpi_parse(struct acpi_info *ai, char *why, size_t why_size)
{
    static struct acpi_info cache;
    static char cache_why[64];
    static bool done, cache_ok;
    if (!done) {
        cache_ok = acpi_walk(&cache, cache_why, sizeof(cache_why));
        done = true;
    }
    *ai = cache;
    kit_snprintf(why, why_size, "%s", cache_why);
    return cache_ok;
}

static bool acpi_walk(struct acpi_info *ai, char *why, size_t why_size)
{
    memset(ai, 0, sizeof(*ai));
    ai->slp_typa = ai->slp_typb = -1;
    const struct kit_boot_info *b = &kit_boot_info;
    uint64_t r = b->si.rsdp_paddr;
    /* kit.rsdp=scan exercises the fallback on loaders that give a pointer. */
    char how[8];
    bool scan = cmdline_get("kit.rsdp", how, sizeof(how)) && !strncmp(how, "scan", 5);
    if (!scan && b->si.version >= 1 && r && r < 0xfffff000u &&
        rsdp_ok((const uint8_t *)(uintptr_t)r)) {
        ai->rsdp = (uint32_t)r;
        ai->rsdp_from_start_info = true;
    } else {
        ai->rsdp = acpi_find_rsdp_legacy();
    }
    if (!ai->rsdp) {
        kit_snprintf(why, why_size, "no RSDP");
        return false;
    }
    const uint8_t *rp = (const uint8_t *)(uintptr_t)ai->rsdp;
    ai->rsdp_revision = rp[15];
    if (ai->rsdp_revision >= 2 && rd32(rp + 20) >= 36 && acpi_checksum_ok(rp, 36))
        ai->xsdt = acpi_table_ok(rd64(rp + 24), "XSDT");
    if (!ai->xsdt)
        ai->rsdt = acpi_table_ok(rd32(rp + 16), "RSDT");
    if (!ai->xsdt && !ai->rsdt) {
        kit_snprintf(why, why_size, "no XSDT or RSDT");
        return false;
    }
    ai->fadt = acpi_find_table(ai, "FACP");
    ai->madt = acpi_find_table(ai, "APIC");
    if (ai->madt)
        madt_parse(ai);
    if (!ai->fadt) {
        kit_snprintf(why, why_size, "no FADT");
        return false;
    }
    fadt_parse(ai);
    if (ai->dsdt) {
        const struct acpi_sdt *d = (const void *)(uintptr_t)ai->dsdt;
        acpi_find_s5((const uint8_t *)d + sizeof(*d), d->length - sizeof(*d),
                     &ai->slp_typa, &ai->slp_typb);
    }
    if (!ai->madt) {
        kit_snprintf(why, why_size, "no MADT");
        return false;
    }
    if (!ai->dsdt) {
        kit_snprintf(why, why_size, "no DSDT");
        return false;
    }
    return true;
}

uint32_t pmtmr_delta(const struct acpi_info *ai, uint32_t from, uint32_t to)
{
    return ai->pm_tmr_32bit ? to - from : (to - from) & 0xffffffu;
}
