/* A minimal virtio 1.x driver over the modern PCI transport (virtio 1.2,
 * 4.1): vendor capabilities, common configuration, feature negotiation,
 * split virtqueues with optional indirect tables, MSI-X routing. Polled by
 * default; the device is the thing under test, so its answers (queue sizes,
 * used ids, capability offsets) are checked before they are trusted. */
#include "virtio.h"

#define DMA_POOL_SIZE (32u * 1024)

static uint8_t dma_pool[DMA_POOL_SIZE] __attribute__((aligned(4096)));
static uint32_t dma_used;

void *kit_dma_alloc(uint32_t size, uint32_t align)
{
    uint32_t at = (dma_used + align - 1) & ~(align - 1);
    if (at > DMA_POOL_SIZE || size > DMA_POOL_SIZE - at)
        tap_bail("DMA pool exhausted (%u bytes asked, %u used)", size, dma_used);
    dma_used = at + size;
    return dma_pool + at;
}

static inline uint8_t rd8(uintptr_t a) { return *(volatile uint8_t *)a; }
static inline uint16_t rd16(uintptr_t a) { return *(volatile uint16_t *)a; }
static inline void wr8(uintptr_t a, uint8_t v) { *(volatile uint8_t *)a = v; }
static inline void wr16(uintptr_t a, uint16_t v) { *(volatile uint16_t *)a = v; }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }

void virtio_read_caps(uint32_t bdf, struct virtio_caps *c)
{
    memset(c, 0, sizeof(*c));
    for (uint8_t p = pci_find_cap(bdf, PCI_CAP_VNDR, 0); p; p = pci_find_cap(bdf, PCI_CAP_VNDR, p)) {
        uint8_t len = pci_read8(bdf, p + 2u), type = pci_read8(bdf, p + 3u);
        if (len < 16 || type < VIRTIO_PCI_CAP_COMMON || type > VIRTIO_PCI_CAP_DEVICE ||
            (c->found & 1u << type))
            continue;
        c->found |= (uint8_t)(1u << type);
        c->bar[type] = pci_read8(bdf, p + 4u);
        c->offset[type] = pci_read32(bdf, p + 8u);
        c->length[type] = pci_read32(bdf, p + 12u);
        if (type == VIRTIO_PCI_CAP_NOTIFY && len >= 20)
            c->notify_mult = pci_read32(bdf, p + 16u);
    }
}

bool virtio_find(int type, int nth, uint32_t *bdf)
{
    for (uint32_t dev = 0; dev < 32; dev++) {
        for (uint32_t fn = 0; fn < 8; fn++) {
            uint32_t b = PCI_BDF(0, dev, fn), id = pci_read32(b, PCI_VENDOR);
            if ((id & 0xffff) == 0xffff) {
                if (fn == 0)
                    break;
                continue;
            }
            if ((id & 0xffff) == VIRTIO_VENDOR && id >> 16 == VIRTIO_PCI_MODERN_BASE + (uint32_t)type &&
                nth-- == 0) {
                *bdf = b;
                return true;
            }
            if (fn == 0 && !(pci_read8(b, PCI_HEADER_TYPE) & 0x80))
                break;
        }
    }
    return false;
}

/* A structure's address: a 32-bit-reachable memory BAR plus the offset. */
static uintptr_t cap_addr(uint32_t bdf, const struct virtio_caps *c, int type)
{
    if (c->bar[type] > 5)
        return 0;
    uint64_t base = pci_bar_addr(bdf, c->bar[type]);
    uint64_t a = base + c->offset[type];
    if (!base || a + c->length[type] > 0x100000000ull || a < base)
        return 0;
    return (uintptr_t)a;
}

bool virtio_open(struct virtio_dev *d, uint32_t bdf, char *why, size_t why_size)
{
    static const char *const names[] = { "", "common", "notify", "ISR", "device" };
    memset(d, 0, sizeof(*d));
    d->bdf = bdf;
    d->device_id = pci_read16(bdf, PCI_VENDOR + 2);
    struct virtio_caps c;
    virtio_read_caps(bdf, &c);
    for (int t = VIRTIO_PCI_CAP_COMMON; t <= VIRTIO_PCI_CAP_DEVICE; t++) {
        if (!(c.found & 1u << t)) {
            kit_snprintf(why, why_size, "no %s capability", names[t]);
            return false;
        }
        if (!cap_addr(bdf, &c, t)) {
            kit_snprintf(why, why_size, "%s structure (BAR %u + 0x%x) not below 4 GiB",
                         names[t], c.bar[t], c.offset[t]);
            return false;
        }
    }
    if (c.length[VIRTIO_PCI_CAP_COMMON] < 56) {
        kit_snprintf(why, why_size, "common structure only %u bytes", c.length[VIRTIO_PCI_CAP_COMMON]);
        return false;
    }
    uint16_t cmd = pci_read16(bdf, PCI_COMMAND);
    pci_write16(bdf, PCI_COMMAND, cmd | PCI_CMD_MEM | PCI_CMD_MASTER | PCI_CMD_INTX_OFF);
    d->common = cap_addr(bdf, &c, VIRTIO_PCI_CAP_COMMON);
    d->notify = cap_addr(bdf, &c, VIRTIO_PCI_CAP_NOTIFY);
    d->notify_len = c.length[VIRTIO_PCI_CAP_NOTIFY];
    d->notify_mult = c.notify_mult;
    d->isr = cap_addr(bdf, &c, VIRTIO_PCI_CAP_ISR);
    d->devcfg = cap_addr(bdf, &c, VIRTIO_PCI_CAP_DEVICE);
    d->devcfg_len = c.length[VIRTIO_PCI_CAP_DEVICE];
    virtio_reset(d);
    if (virtio_status(d) != 0) {
        kit_snprintf(why, why_size, "status 0x%x after reset", virtio_status(d));
        return false;
    }
    return true;
}

void virtio_reset(struct virtio_dev *d)
{
    wr8(d->common + VCC_STATUS, 0);
    /* The reset is complete when status reads back 0 (virtio 1.2, 4.1.4.3.2). */
    for (int i = 0; i < 1000 && rd8(d->common + VCC_STATUS); i++)
        pit_delay_us(100);
}

uint8_t virtio_status(struct virtio_dev *d)
{
    return rd8(d->common + VCC_STATUS);
}

static void status_set(struct virtio_dev *d, uint8_t bits)
{
    wr8(d->common + VCC_STATUS, (uint8_t)(rd8(d->common + VCC_STATUS) | bits));
}

bool virtio_negotiate(struct virtio_dev *d, uint64_t wanted, char *why, size_t why_size)
{
    status_set(d, VIRTIO_STATUS_ACK);
    status_set(d, VIRTIO_STATUS_DRIVER);
    mmio_write32(d->common + VCC_DFSELECT, 0);
    uint32_t lo = mmio_read32(d->common + VCC_DF);
    mmio_write32(d->common + VCC_DFSELECT, 1);
    uint32_t hi = mmio_read32(d->common + VCC_DF);
    d->features = (uint64_t)hi << 32 | lo;
    if (!(d->features & VIRTIO_BIT(VIRTIO_F_VERSION_1))) {
        kit_snprintf(why, why_size, "VERSION_1 not offered (features 0x%llx)",
                     (unsigned long long)d->features);
        status_set(d, VIRTIO_STATUS_FAILED);
        return false;
    }
    d->accepted = d->features & (wanted | VIRTIO_BIT(VIRTIO_F_VERSION_1));
    mmio_write32(d->common + VCC_GFSELECT, 0);
    mmio_write32(d->common + VCC_GF, (uint32_t)d->accepted);
    mmio_write32(d->common + VCC_GFSELECT, 1);
    mmio_write32(d->common + VCC_GF, (uint32_t)(d->accepted >> 32));
    status_set(d, VIRTIO_STATUS_FEATURES_OK);
    uint8_t st = virtio_status(d);
    if (!(st & VIRTIO_STATUS_FEATURES_OK)) {
        kit_snprintf(why, why_size, "FEATURES_OK cleared (status 0x%x, features 0x%llx)",
                     st, (unsigned long long)d->accepted);
        status_set(d, VIRTIO_STATUS_FAILED);
        return false;
    }
    return true;
}

void virtio_driver_ok(struct virtio_dev *d)
{
    status_set(d, VIRTIO_STATUS_DRIVER_OK);
}

uint8_t virtio_cfg8(struct virtio_dev *d, uint32_t off)
{
    return off < d->devcfg_len ? rd8(d->devcfg + off) : 0xff;
}

uint16_t virtio_cfg16(struct virtio_dev *d, uint32_t off)
{
    return off + 2 <= d->devcfg_len ? rd16(d->devcfg + off) : 0xffff;
}

uint32_t virtio_cfg32(struct virtio_dev *d, uint32_t off)
{
    return off + 4 <= d->devcfg_len ? mmio_read32(d->devcfg + off) : 0xffffffffu;
}

uint64_t virtio_cfg64(struct virtio_dev *d, uint32_t off)
{
    /* Two 32-bit reads; config_generation tells a torn read (4.1.4.3). */
    uint8_t gen;
    uint32_t lo, hi;
    int tries = 0;
    do {
        gen = rd8(d->common + VCC_CFG_GEN);
        lo = virtio_cfg32(d, off);
        hi = virtio_cfg32(d, off + 4);
    } while (gen != rd8(d->common + VCC_CFG_GEN) && ++tries < 10);
    return (uint64_t)hi << 32 | lo;
}

static void wr64(uintptr_t a, uint64_t v)
{
    mmio_write32(a, (uint32_t)v);
    mmio_write32(a + 4, (uint32_t)(v >> 32));
}

bool virtq_setup(struct virtio_dev *d, struct virtq *q, uint16_t index, uint16_t max,
                 uint16_t msix, char *why, size_t why_size)
{
    memset(q, 0, sizeof(*q));
    uint16_t nq = rd16(d->common + VCC_NUM_QUEUES);
    if (index >= nq) {
        kit_snprintf(why, why_size, "queue %u of %u", index, nq);
        return false;
    }
    wr16(d->common + VCC_Q_SELECT, index);
    uint16_t dsize = rd16(d->common + VCC_Q_SIZE);
    if (!dsize) {
        kit_snprintf(why, why_size, "queue %u has size 0", index);
        return false;
    }
    uint16_t size = 1;
    while ((uint32_t)size * 2 <= dsize && size * 2u <= max && size * 2u <= VIRTQ_MAX)
        size = (uint16_t)(size * 2);
    q->dev = d;
    q->index = index;
    q->size = size;
    q->desc = kit_dma_alloc(16u * size, 16);
    q->avail = kit_dma_alloc(6u + 2u * size, 2);
    q->used = kit_dma_alloc(6u + 8u * size, 4);
    q->indirect = kit_dma_alloc(16u * VIRTQ_INDIRECT_MAX * size, 16);
    for (uint16_t i = 0; i < size; i++)
        q->desc[i].next = (uint16_t)(i + 1);
    q->num_free = size;
    q->msix_vector = msix;
    q->event_idx = d->accepted & VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
    /* Without a vector nothing can take the interrupt; with EVENT_IDX the
     * flag is ignored and used_event (0) stays where the ring starts. */
    if (msix == VIRTIO_MSI_NO_VECTOR)
        q->avail[0] = VRING_AVAIL_F_NO_INTERRUPT;
    wr16(d->common + VCC_Q_SIZE, size);
    wr16(d->common + VCC_Q_MSIX, msix);
    if (rd16(d->common + VCC_Q_MSIX) != msix) {
        kit_snprintf(why, why_size, "queue %u MSI-X vector reads 0x%x, not 0x%x", index,
                     rd16(d->common + VCC_Q_MSIX), msix);
        return false;
    }
    wr64(d->common + VCC_Q_DESC, (uintptr_t)q->desc);
    wr64(d->common + VCC_Q_DRIVER, (uintptr_t)q->avail);
    wr64(d->common + VCC_Q_DEVICE, (uintptr_t)q->used);
    uint32_t noff = (uint32_t)rd16(d->common + VCC_Q_NOTIFY_OFF) * d->notify_mult;
    if (noff + 2 > d->notify_len) {
        kit_snprintf(why, why_size, "queue %u notify offset 0x%x past the notify structure", index, noff);
        return false;
    }
    q->notify_addr = d->notify + noff;
    wr16(d->common + VCC_Q_ENABLE, 1);
    if (rd16(d->common + VCC_Q_ENABLE) != 1) {
        kit_snprintf(why, why_size, "queue %u not enabled", index);
        return false;
    }
    return true;
}

int virtq_add(struct virtq *q, const struct virtq_buf *bufs, int n, bool indirect)
{
    if (n < 1 || (indirect && n > VIRTQ_INDIRECT_MAX) || q->num_free < (indirect ? 1 : n))
        return -1;
    uint16_t head = q->free_head;
    if (indirect) {
        struct vring_desc *t = q->indirect + head * VIRTQ_INDIRECT_MAX;
        for (int i = 0; i < n; i++) {
            t[i].addr = (uintptr_t)bufs[i].addr;
            t[i].len = bufs[i].len;
            t[i].flags = (uint16_t)((bufs[i].write ? VRING_DESC_F_WRITE : 0) |
                                    (i + 1 < n ? VRING_DESC_F_NEXT : 0));
            t[i].next = (uint16_t)(i + 1);
        }
        q->desc[head].addr = (uintptr_t)t;
        q->desc[head].len = 16u * (uint32_t)n;
        q->desc[head].flags = VRING_DESC_F_INDIRECT;
        q->free_head = q->desc[head].next;
        q->num_free--;
        q->chain_len[head] = 1;
    } else {
        uint16_t i = head, last = head;
        for (int k = 0; k < n; k++) {
            struct vring_desc *dd = &q->desc[i];
            dd->addr = (uintptr_t)bufs[k].addr;
            dd->len = bufs[k].len;
            dd->flags = (uint16_t)(bufs[k].write ? VRING_DESC_F_WRITE : 0);
            if (k + 1 < n)
                dd->flags |= VRING_DESC_F_NEXT;
            last = i;
            i = dd->next;
        }
        q->free_head = q->desc[last].next;
        q->num_free = (uint16_t)(q->num_free - n);
        q->chain_len[head] = (uint16_t)n;
    }
    q->avail[2 + q->avail_idx % q->size] = head;
    barrier();
    q->avail_idx++;
    q->avail[1] = q->avail_idx;
    return head;
}

void virtq_kick(struct virtq *q)
{
    /* x86 keeps stores in order; the compiler must too. */
    barrier();
    if (q->event_idx) {
        /* The avail idx store must be visible before avail_event is read
         * (virtio 1.2, 2.7.10): a locked instruction orders store and load,
         * and unlike MFENCE every x86 instruction emulator knows it. */
        __asm__ volatile("lock; orl $0, (%%esp)" ::: "memory", "cc");
        uint16_t event = ((volatile uint16_t *)q->used)[2 + 4 * q->size];
        uint16_t old = q->kicked_idx, now = q->avail_idx;
        q->kicked_idx = now;
        if ((uint16_t)(now - event - 1) >= (uint16_t)(now - old)) {
            q->kicks_skipped++;
            return;
        }
    }
    q->kicks++;
    wr16(q->notify_addr, q->index);
}

int virtq_submit(struct virtq *q, const struct virtq_buf *bufs, int n, bool indirect)
{
    int head = virtq_add(q, bufs, n, indirect);
    if (head >= 0)
        virtq_kick(q);
    return head;
}

bool virtq_poll(struct virtq *q, uint32_t *id, uint32_t *len)
{
    uint16_t idx = ((volatile uint16_t *)q->used)[1];
    if (idx == q->last_used)
        return false;
    barrier();
    uint32_t slot = q->last_used % q->size;
    uint32_t uid = q->used[1 + 2 * slot], ulen = q->used[2 + 2 * slot];
    q->last_used++;
    *id = uid;
    *len = ulen;
    /* Give the chain back only if the id names one we handed out. */
    if (uid < q->size && q->chain_len[uid]) {
        uint16_t i = (uint16_t)uid, n = q->chain_len[uid];
        q->chain_len[uid] = 0;
        uint16_t last = i;
        for (uint16_t k = 1; k < n; k++)
            last = q->desc[last].next;
        q->desc[last].next = q->free_head;
        q->free_head = i;
        q->num_free = (uint16_t)(q->num_free + n);
    }
    return true;
}

bool virtq_wait(struct virtq *q, uint32_t timeout_ms, uint32_t *id, uint32_t *len)
{
    /* Spin briefly (completions usually come fast), then poll every 0.5 ms
     * of PIT time so a device that never answers cannot hang the run. */
    for (int i = 0; i < 2000; i++) {
        if (virtq_poll(q, id, len))
            return true;
        cpu_relax();
    }
    for (uint32_t t = 0; t < timeout_ms * 2; t++) {
        if (virtq_poll(q, id, len))
            return true;
        pit_delay_us(500);
    }
    return virtq_poll(q, id, len);
}

bool msix_route(uint32_t bdf, unsigned entry, uint8_t vector, char *why, size_t why_size)
{
    uint8_t c = pci_find_cap(bdf, PCI_CAP_MSIX, 0);
    if (!c) {
        kit_snprintf(why, why_size, "no MSI-X capability");
        return false;
    }
    uint16_t ctrl = pci_read16(bdf, c + 2u);
    uint32_t tsize = (ctrl & 0x7ffu) + 1, tab = pci_read32(bdf, c + 4u);
    uint64_t bar = (tab & 7) <= 5 ? pci_bar_addr(bdf, (int)(tab & 7)) : 0;
    uint64_t a = bar + (tab & ~7u) + 16ull * entry;
    if (entry >= tsize || !bar || a + 16 > 0x100000000ull) {
        kit_snprintf(why, why_size, "MSI-X entry %u of %u, table BAR %u at 0x%llx", entry, tsize,
                     tab & 7, (unsigned long long)bar);
        return false;
    }
    uintptr_t e = (uintptr_t)a;
    mmio_write32(e + 0, 0xfee00000u | (uint32_t)lapic_id() << 12);
    mmio_write32(e + 4, 0);
    mmio_write32(e + 8, vector);            /* fixed, edge */
    mmio_write32(e + 12, 0);                /* unmasked */
    pci_write16(bdf, c + 2u, (uint16_t)((ctrl | 0x8000u) & ~0x4000u));
    return true;
}

void msix_disable(uint32_t bdf)
{
    uint8_t c = pci_find_cap(bdf, PCI_CAP_MSIX, 0);
    if (c)
        pci_write16(bdf, c + 2u, (uint16_t)(pci_read16(bdf, c + 2u) & ~0x8000u));
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool kit_parse_mac(const char *s, uint8_t mac[6])
{
    for (int i = 0; i < 6; i++) {
        int h = hexval(s[0]), l = h < 0 ? -1 : hexval(s[1]);
        if (l < 0 || (i < 5 ? s[2] != ':' : s[2] != '\0'))
            return false;
        mac[i] = (uint8_t)(h << 4 | l);
        s += 3;
    }
    return true;
}

bool kit_parse_ipv4(const char *s, uint8_t ip[4])
{
    for (int i = 0; i < 4; i++) {
        uint32_t v = 0;
        int digits = 0;
        for (; *s >= '0' && *s <= '9' && digits < 4; s++, digits++)
            v = v * 10 + (uint32_t)(*s - '0');
        if (!digits || v > 255 || (i < 3 ? *s != '.' : *s != '\0'))
            return false;
        ip[i] = (uint8_t)v;
        s++;
    }
    return true;
}
