/* PCI configuration space through mechanism #1 (ports 0xCF8/0xCFC) and
 * ECAM, BAR sizing, and the host bridge's memory windows from ACPI. The
 * monitor under test supplies all of it, so lengths and pointers are checked
 * before use. */
#include "virtio.h"

#define PCI_ADDR 0xcf8
#define PCI_DATA 0xcfc

static void pci_select(uint32_t bdf, uint32_t off)
{
    outl(PCI_ADDR, 0x80000000u | bdf << 8 | (off & 0xfc));
}

uint32_t pci_read32(uint32_t bdf, uint32_t off)
{
    pci_select(bdf, off);
    return inl(PCI_DATA);
}

uint16_t pci_read16(uint32_t bdf, uint32_t off)
{
    pci_select(bdf, off);
    return inw((uint16_t)(PCI_DATA + (off & 2)));
}

uint8_t pci_read8(uint32_t bdf, uint32_t off)
{
    pci_select(bdf, off);
    return inb((uint16_t)(PCI_DATA + (off & 3)));
}

void pci_write32(uint32_t bdf, uint32_t off, uint32_t v)
{
    pci_select(bdf, off);
    outl(PCI_DATA, v);
}

void pci_write16(uint32_t bdf, uint32_t off, uint16_t v)
{
    pci_select(bdf, off);
    outw((uint16_t)(PCI_DATA + (off & 2)), v);
}

bool pci_ecam_find(const struct acpi_info *ai, uint32_t *base, uint8_t *bus_end)
{
    uint32_t t = acpi_find_table(ai, "MCFG");
    if (!t)
        return false;
    const uint8_t *p = (const uint8_t *)(uintptr_t)t;
    uint32_t len = ((const struct acpi_sdt *)p)->length;
    /* Header, 8 reserved bytes, then 16-byte allocation entries. */
    for (uint32_t off = 44; off + 16 <= len; off += 16) {
        uint64_t b;
        uint16_t seg;
        __builtin_memcpy(&b, p + off, 8);
        __builtin_memcpy(&seg, p + off + 8, 2);
        uint8_t start = p[off + 10], end = p[off + 11];
        if (seg != 0 || start != 0 || b >= 0x100000000ull || b + ((uint64_t)end + 1) * 0x100000 > 0x100000000ull)
            continue;
        *base = (uint32_t)b;
        *bus_end = end;
        return true;
    }
    return false;
}

uint32_t pci_ecam_read32(uint32_t base, uint32_t bdf, uint32_t off)
{
    return mmio_read32(base + (bdf << 12) + (off & 0xffc));
}

uint8_t pci_find_cap(uint32_t bdf, uint8_t id, uint8_t after)
{
    if (!(pci_read16(bdf, PCI_STATUS) & PCI_STATUS_CAPS))
        return 0;
    uint8_t p = after ? pci_read8(bdf, after + 1u) : pci_read8(bdf, PCI_CAP_PTR);
    /* At most 48 capabilities fit in the 192 bytes after the header. */
    for (int i = 0; i < 48 && p >= 0x40; i++) {
        p &= 0xfc;
        if (pci_read8(bdf, p) == id)
            return p;
        p = pci_read8(bdf, p + 1u);
    }
    return 0;
}

uint64_t pci_bar_addr(uint32_t bdf, int n)
{
    uint32_t off = PCI_BAR0 + 4u * (uint32_t)n, lo = pci_read32(bdf, off);
    if (lo & 1)
        return 0;
    uint64_t a = lo & ~0xfu;
    if ((lo & 6) == 4 && n < 5)
        a |= (uint64_t)pci_read32(bdf, off + 4) << 32;
    return a;
}

void pci_bar_probe(uint32_t bdf, int n, struct pci_bar *bar)
{
    memset(bar, 0, sizeof(*bar));
    uint32_t off = PCI_BAR0 + 4u * (uint32_t)n;
    uint16_t cmd = pci_read16(bdf, PCI_COMMAND);
    pci_write16(bdf, PCI_COMMAND, cmd & ~(PCI_CMD_IO | PCI_CMD_MEM));
    uint32_t lo = pci_read32(bdf, off), hi = 0, szlo, szhi = 0;
    bar->io = lo & 1;
    bar->is64 = !bar->io && (lo & 6) == 4 && n < 5;
    bar->prefetch = !bar->io && (lo & 8);
    pci_write32(bdf, off, 0xffffffffu);
    szlo = pci_read32(bdf, off);
    pci_write32(bdf, off, lo);
    if (bar->is64) {
        hi = pci_read32(bdf, off + 4);
        pci_write32(bdf, off + 4, 0xffffffffu);
        szhi = pci_read32(bdf, off + 4);
        pci_write32(bdf, off + 4, hi);
    }
    pci_write16(bdf, PCI_COMMAND, cmd);
    uint64_t mask;
    if (bar->io) {
        bar->addr = lo & ~3u;
        /* I/O BARs may implement only the low 16 address bits. */
        mask = (szlo & ~3u) ? 0xffffffffffff0000ull | (szlo & ~3u) : 0;
    } else {
        bar->addr = (uint64_t)hi << 32 | (lo & ~0xfu);
        mask = (uint64_t)(bar->is64 ? szhi : 0xffffffffu) << 32 | (szlo & ~0xfu);
        if (!(szlo & ~0xfu) && !(bar->is64 && szhi))
            mask = 0;
    }
    bar->size = mask ? ~mask + 1 : 0;
}

/* The AML name "_CRS" followed by a buffer: Name(_CRS, ResourceTemplate()). */
static const uint8_t *crs_buffer(const uint8_t *p, const uint8_t *end, uint32_t *len)
{
    /* BufferOp, PkgLength, then the size as an integer, then the bytes. */
    if (p >= end || *p != 0x11)
        return NULL;
    p++;
    if (p >= end)
        return NULL;
    uint32_t pl = 1u + (*p >> 6);
    p += pl;
    if (p + 1 > end)
        return NULL;
    uint32_t size;
    if (*p == 0x0a && p + 2 <= end) {
        size = p[1];
        p += 2;
    } else if (*p == 0x0b && p + 3 <= end) {
        size = p[1] | p[2] << 8;
        p += 3;
    } else {
        return NULL;
    }
    if (size > (uint32_t)(end - p))
        return NULL;
    *len = size;
    return p;
}

/* Memory ranges from DWord (0x87) and QWord (0x8a) address space
 * descriptors of resource type 0 (memory). Only a template that also holds
 * a bus number range (resource type 2) belongs to a host bridge: other
 * devices (the ECAM reservation, say) describe memory the same way. */
static int crs_decode(const uint8_t *r, uint32_t len, uint64_t *base, uint64_t *wlen,
                      int n, int max)
{
    int first = n;
    bool bridge = false;
    for (uint32_t off = 0; off < len && n < max;) {
        uint8_t tag = r[off];
        if (!(tag & 0x80)) {                    /* small item */
            if ((tag >> 3) == 0xf)              /* end tag */
                break;
            off += 1u + (tag & 7);
            continue;
        }
        if (off + 3 > len)
            break;
        uint32_t ilen = r[off + 1] | r[off + 2] << 8;
        const uint8_t *d = r + off + 3;
        if (off + 3 + ilen > len)
            break;
        if ((tag == 0x87 || tag == 0x88 || tag == 0x8a) && ilen >= 1 && d[0] == 2)
            bridge = true;
        if (tag == 0x87 && ilen >= 23 && d[0] == 0) {
            uint32_t mn, ln;
            __builtin_memcpy(&mn, d + 7, 4);
            __builtin_memcpy(&ln, d + 19, 4);
            if (ln) {
                base[n] = mn;
                wlen[n++] = ln;
            }
        } else if (tag == 0x8a && ilen >= 43 && d[0] == 0) {
            uint64_t mn, ln;
            __builtin_memcpy(&mn, d + 11, 8);
            __builtin_memcpy(&ln, d + 35, 8);
            if (ln) {
                base[n] = mn;
                wlen[n++] = ln;
            }
        }
        off += 3 + ilen;
    }
    return bridge ? n : first;
}

int pci_crs_windows(const struct acpi_info *ai, uint64_t *base, uint64_t *len, int max)
{
    if (!ai->dsdt)
        return 0;
    const struct acpi_sdt *h = (const void *)(uintptr_t)ai->dsdt;
    const uint8_t *aml = (const uint8_t *)h + sizeof(*h), *end = (const uint8_t *)h + h->length;
    int n = 0;
    for (const uint8_t *p = aml + 1; p + 5 <= end && n < max; p++) {
        /* One compare per byte first: guest instructions can be costly. */
        if (*p != '_' || p[-1] != 0x08)
            continue;
        uint32_t w;
        __builtin_memcpy(&w, p, 4);
        if (w != 0x5352435fu)                   /* NameOp "_CRS" */
            continue;
        uint32_t blen;
        const uint8_t *r = crs_buffer(p + 4, end, &blen);
        if (r)
            n = crs_decode(r, blen, base, len, n, max);
    }
    return n;
}
