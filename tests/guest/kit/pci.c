/* PCI bus 0 as the guest sees it: configuration mechanism #1 and ECAM agree,
 * a host bridge at 00:00.0, every modern virtio device carries the four
 * virtio structures and MSI-X inside its BARs, and BARs sized with the
 * write-all-ones protocol are aligned, disjoint and inside the host
 * bridge's _CRS windows. `virtio=N` gives the number of virtio devices the
 * harness attached. */
#include "virtio.h"

#define MAX_FUNCS 64
#define MAX_BARS 128
#define MAX_WINDOWS 16

struct func {
    uint32_t bdf, id;
    uint32_t class_rev;
};

struct bar_rec {
    uint32_t bdf;
    int n;
    struct pci_bar b;
};

static struct func funcs[MAX_FUNCS];
static int nfuncs;
static struct bar_rec bars[MAX_BARS];
static int nbars;
static struct acpi_info ai;

static void enumerate(void)
{
    for (uint32_t dev = 0; dev < 32; dev++) {
        for (uint32_t fn = 0; fn < 8; fn++) {
            uint32_t bdf = PCI_BDF(0, dev, fn), id = pci_read32(bdf, PCI_VENDOR);
            if ((id & 0xffff) == 0xffff) {
                if (fn == 0)
                    break;
                continue;
            }
            if (nfuncs < MAX_FUNCS) {
                struct func *f = &funcs[nfuncs++];
                f->bdf = bdf;
                f->id = id;
                f->class_rev = pci_read32(bdf, PCI_REVISION);
                tap_diag("%02x:%02x.%u %04x:%04x class %06x rev %u", 0, dev, fn, id & 0xffff,
                         id >> 16, f->class_rev >> 8, f->class_rev & 0xff);
            }
            if (fn == 0 && !(pci_read8(bdf, PCI_HEADER_TYPE) & 0x80))
                break;
        }
    }
}

static bool is_virtio(const struct func *f)
{
    uint32_t dev = f->id >> 16;
    return (f->id & 0xffff) == VIRTIO_VENDOR && dev >= 0x1000 && dev <= 0x107f;
}

/* Sizes every BAR of every type-0 function that is not a bridge. */
static void probe_bars(void)
{
    for (int i = 0; i < nfuncs; i++) {
        uint32_t bdf = funcs[i].bdf;
        if ((pci_read8(bdf, PCI_HEADER_TYPE) & 0x7f) != 0 || funcs[i].class_rev >> 24 == 0x06)
            continue;
        for (int n = 0; n < 6; n++) {
            struct pci_bar b;
            pci_bar_probe(bdf, n, &b);
            if (b.size && nbars < MAX_BARS) {
                bars[nbars].bdf = bdf;
                bars[nbars].n = n;
                bars[nbars++].b = b;
                tap_diag("  %02x.%u BAR%d %s 0x%llx size 0x%llx%s", PCI_DEV(bdf), PCI_FN(bdf), n,
                         b.io ? "io " : "mem", (unsigned long long)b.addr,
                         (unsigned long long)b.size, b.is64 ? " 64-bit" : "");
            }
            if (b.is64)
                n++;
        }
    }
}

static const struct bar_rec *find_bar(uint32_t bdf, int n)
{
    for (int i = 0; i < nbars; i++)
        if (bars[i].bdf == bdf && bars[i].n == n && !bars[i].b.io)
            return &bars[i];
    return NULL;
}

/* Is [off, off+len) inside memory BAR n of bdf? */
static bool in_bar(uint32_t bdf, uint32_t n, uint64_t off, uint64_t len)
{
    const struct bar_rec *r = n <= 5 ? find_bar(bdf, (int)n) : NULL;
    return r && len && off + len <= r->b.size;
}

static bool check_ecam(char *why, size_t sz)
{
    uint32_t base;
    uint8_t bus_end;
    if (!pci_ecam_find(&ai, &base, &bus_end)) {
        kit_snprintf(why, sz, "no MCFG entry for segment 0 bus 0 below 4 GiB");
        return false;
    }
    tap_diag("ECAM at 0x%x, buses 0-%u", base, bus_end);
    for (int i = 0; i < nfuncs; i++) {
        uint32_t e = pci_ecam_read32(base, funcs[i].bdf, PCI_VENDOR);
        uint32_t cr = pci_ecam_read32(base, funcs[i].bdf, PCI_REVISION);
        if (e != funcs[i].id || cr != funcs[i].class_rev) {
            kit_snprintf(why, sz, "%02x.%u: ECAM 0x%08x/0x%08x, CF8 0x%08x/0x%08x",
                         PCI_DEV(funcs[i].bdf), PCI_FN(funcs[i].bdf), e, cr, funcs[i].id,
                         funcs[i].class_rev);
            return false;
        }
    }
    /* An empty slot reads all ones through ECAM too. */
    for (uint32_t dev = 0; dev < 32; dev++) {
        if ((pci_read32(PCI_BDF(0, dev, 0), PCI_VENDOR) & 0xffff) != 0xffff)
            continue;
        uint32_t e = pci_ecam_read32(base, PCI_BDF(0, dev, 0), PCI_VENDOR);
        if (e != 0xffffffffu) {
            kit_snprintf(why, sz, "empty slot %02x reads 0x%08x through ECAM", dev, e);
            return false;
        }
        break;
    }
    return true;
}

static bool check_virtio_caps(char *why, size_t sz)
{
    static const char *const names[] = { "", "common", "notify", "ISR", "device" };
    for (int i = 0; i < nfuncs; i++) {
        if (!is_virtio(&funcs[i]))
            continue;
        struct virtio_caps c;
        uint32_t bdf = funcs[i].bdf;
        virtio_read_caps(bdf, &c);
        for (int t = VIRTIO_PCI_CAP_COMMON; t <= VIRTIO_PCI_CAP_DEVICE; t++) {
            if (!(c.found & 1u << t)) {
                kit_snprintf(why, sz, "%02x.%u: no %s capability", PCI_DEV(bdf), PCI_FN(bdf), names[t]);
                return false;
            }
            if (!in_bar(bdf, c.bar[t], c.offset[t], c.length[t])) {
                kit_snprintf(why, sz, "%02x.%u: %s structure BAR %u +0x%x len 0x%x outside the BAR",
                             PCI_DEV(bdf), PCI_FN(bdf), names[t], c.bar[t], c.offset[t], c.length[t]);
                return false;
            }
        }
        if (c.length[VIRTIO_PCI_CAP_COMMON] < 56 || (c.notify_mult & 1)) {
            kit_snprintf(why, sz, "%02x.%u: common length %u, notify multiplier %u", PCI_DEV(bdf),
                         PCI_FN(bdf), c.length[VIRTIO_PCI_CAP_COMMON], c.notify_mult);
            return false;
        }
    }
    return true;
}

static bool check_msix(char *why, size_t sz)
{
    for (int i = 0; i < nfuncs; i++) {
        if (!is_virtio(&funcs[i]))
            continue;
        uint32_t bdf = funcs[i].bdf;
        uint8_t c = pci_find_cap(bdf, PCI_CAP_MSIX, 0);
        if (!c) {
            kit_snprintf(why, sz, "%02x.%u: no MSI-X capability", PCI_DEV(bdf), PCI_FN(bdf));
            return false;
        }
        uint32_t n = (pci_read16(bdf, c + 2u) & 0x7ffu) + 1;
        uint32_t tab = pci_read32(bdf, c + 4u), pba = pci_read32(bdf, c + 8u);
        if (!in_bar(bdf, tab & 7, tab & ~7u, 16ull * n) ||
            !in_bar(bdf, pba & 7, pba & ~7u, ((n + 63) / 64) * 8ull)) {
            kit_snprintf(why, sz, "%02x.%u: %u vectors, table 0x%x, PBA 0x%x outside BARs",
                         PCI_DEV(bdf), PCI_FN(bdf), n, tab, pba);
            return false;
        }
    }
    return true;
}

static bool check_bar_layout(char *why, size_t sz)
{
    for (int i = 0; i < nbars; i++) {
        const struct pci_bar *b = &bars[i].b;
        if ((b->size & (b->size - 1)) || (b->addr & (b->size - 1)) || !b->addr) {
            kit_snprintf(why, sz, "%02x.%u BAR%d at 0x%llx size 0x%llx", PCI_DEV(bars[i].bdf),
                         PCI_FN(bars[i].bdf), bars[i].n, (unsigned long long)b->addr,
                         (unsigned long long)b->size);
            return false;
        }
    }
    return true;
}

static bool check_overlap(char *why, size_t sz)
{
    for (int i = 0; i < nbars; i++) {
        for (int j = i + 1; j < nbars; j++) {
            const struct pci_bar *a = &bars[i].b, *b = &bars[j].b;
            if (a->io != b->io || a->addr + a->size <= b->addr || b->addr + b->size <= a->addr)
                continue;
            kit_snprintf(why, sz, "%02x.%u BAR%d and %02x.%u BAR%d overlap at 0x%llx",
                         PCI_DEV(bars[i].bdf), PCI_FN(bars[i].bdf), bars[i].n,
                         PCI_DEV(bars[j].bdf), PCI_FN(bars[j].bdf), bars[j].n,
                         (unsigned long long)b->addr);
            return false;
        }
    }
    return true;
}

static bool check_windows(char *why, size_t sz)
{
    static uint64_t wb[MAX_WINDOWS], wl[MAX_WINDOWS];
    int nw = pci_crs_windows(&ai, wb, wl, MAX_WINDOWS);
    for (int k = 0; k < nw; k++)
        tap_diag("_CRS memory window 0x%llx-0x%llx", (unsigned long long)wb[k],
                 (unsigned long long)(wb[k] + wl[k] - 1));
    if (!nw) {
        kit_snprintf(why, sz, "no memory window in any _CRS of the DSDT");
        return false;
    }
    for (int i = 0; i < nbars; i++) {
        const struct pci_bar *b = &bars[i].b;
        if (b->io)
            continue;
        bool in = false;
        for (int k = 0; k < nw && !in; k++)
            in = b->addr >= wb[k] && b->addr + b->size <= wb[k] + wl[k];
        if (!in) {
            kit_snprintf(why, sz, "%02x.%u BAR%d 0x%llx+0x%llx in no window", PCI_DEV(bars[i].bdf),
                         PCI_FN(bars[i].bdf), bars[i].n, (unsigned long long)b->addr,
                         (unsigned long long)b->size);
            return false;
        }
    }
    return true;
}

void kit_main(void)
{
    tap_plan(9);
    char why[120];
    if (!acpi_parse(&ai, why, sizeof(why)))
        tap_diag("ACPI walk stopped: %s", why);
    enumerate();

    uint32_t host = funcs[0].class_rev >> 8;
    tap_check(nfuncs && funcs[0].bdf == 0 && host >> 8 == 0x0600,
              "host bridge at 00:00.0 through ports 0xcf8/0xcfc",
              "first function %02x.%u class %06x", nfuncs ? PCI_DEV(funcs[0].bdf) : 0xff,
              nfuncs ? PCI_FN(funcs[0].bdf) : 0, host);
    why[0] = 0;
    tap_check(check_ecam(why, sizeof(why)), "ECAM from the MCFG reads what ports 0xcf8/0xcfc read", "%s", why);

    uint32_t want = 0, nv = 0, legacy = 0;
    for (int i = 0; i < nfuncs; i++) {
        if (!is_virtio(&funcs[i]))
            continue;
        nv++;
        if (funcs[i].id >> 16 < VIRTIO_PCI_MODERN_BASE || (funcs[i].class_rev & 0xff) < 1)
            legacy++;
    }
    bool have_want = cmdline_get_uint("virtio", &want);
    tap_check(have_want ? nv == want : nv > 0, "number of virtio devices equals virtio=",
              "%u found, virtio=%s", nv, have_want ? "given" : "missing");
    tap_check(nv && !legacy, "virtio devices are modern-only (id 0x1040+type, revision 1)",
              "%u of %u are transitional", legacy, nv);

    probe_bars();
    tap_check(check_virtio_caps(why, sizeof(why)),
              "virtio devices have common, notify, ISR and device structures inside BARs", "%s", why);
    tap_check(check_msix(why, sizeof(why)), "virtio devices have MSI-X with table and PBA inside BARs",
              "%s", why);
    tap_check(nbars && check_bar_layout(why, sizeof(why)),
              "BARs sized by writing all ones are powers of two and naturally aligned", "%s",
              nbars ? why : "no BARs");
    tap_check(check_overlap(why, sizeof(why)), "BARs do not overlap", "%s", why);
    tap_check(check_windows(why, sizeof(why)), "memory BARs lie inside the host bridge's _CRS windows",
              "%s", why);
}
