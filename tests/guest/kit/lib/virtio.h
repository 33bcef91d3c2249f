/* PCI configuration access and a small virtio 1.x (modern PCI) driver for kit
 * programs. Everything is polled and physical; device registers, BARs and
 * rings all live below 4 GiB because the kit runs without paging. */
#ifndef KIT_VIRTIO_H
#define KIT_VIRTIO_H

#include "kit.h"

/* ---- PCI ---- */
#define PCI_BDF(bus, dev, fn) ((uint32_t)(bus) << 8 | (uint32_t)(dev) << 3 | (uint32_t)(fn))
#define PCI_BUS(bdf) ((bdf) >> 8 & 0xff)
#define PCI_DEV(bdf) ((bdf) >> 3 & 0x1f)
#define PCI_FN(bdf) ((bdf) & 7)

#define PCI_VENDOR 0x00
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION 0x08
#define PCI_CLASS 0x09          /* prog-if, subclass, class: 3 bytes */
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_CAP_PTR 0x34
#define PCI_CMD_IO 0x1
#define PCI_CMD_MEM 0x2
#define PCI_CMD_MASTER 0x4
#define PCI_CMD_INTX_OFF 0x400
#define PCI_STATUS_CAPS 0x10
#define PCI_CAP_MSIX 0x11
#define PCI_CAP_VNDR 0x09

uint32_t pci_read32(uint32_t bdf, uint32_t off);
uint16_t pci_read16(uint32_t bdf, uint32_t off);
uint8_t pci_read8(uint32_t bdf, uint32_t off);
void pci_write32(uint32_t bdf, uint32_t off, uint32_t v);
void pci_write16(uint32_t bdf, uint32_t off, uint16_t v);

/* ECAM from the MCFG (segment 0); returns false when there is none. */
bool pci_ecam_find(const struct acpi_info *ai, uint32_t *base, uint8_t *bus_end);
uint32_t pci_ecam_read32(uint32_t base, uint32_t bdf, uint32_t off);

/* Walks the capability list from `after` (0: from the start); returns the
 * offset of the next capability with this id, 0 at the end. The walk is
 * bounded so a looping list cannot hang the program. */
uint8_t pci_find_cap(uint32_t bdf, uint8_t id, uint8_t after);

struct pci_bar {
    uint64_t addr;              /* as programmed, flags masked off */
    uint64_t size;              /* 0: not implemented */
    bool io, is64, prefetch;
};
/* Reads BAR n and sizes it with the write-all-ones protocol (decoding off
 * meanwhile, the original value and command register restored). For a
 * 64-bit BAR, n+1 is its upper half and must be skipped by the caller. */
void pci_bar_probe(uint32_t bdf, int n, struct pci_bar *bar);
/* The BAR's address without sizing it; 0 if not a memory BAR. */
uint64_t pci_bar_addr(uint32_t bdf, int n);

/* Memory windows (from the _CRS of the DSDT's devices) that PCI BARs may
 * use; returns how many were found, at most max. */
int pci_crs_windows(const struct acpi_info *ai, uint64_t *base, uint64_t *len, int max);

/* ---- virtio over PCI (virtio 1.2, 4.1) ---- */
#define VIRTIO_VENDOR 0x1af4
#define VIRTIO_PCI_MODERN_BASE 0x1040
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4

#define VIRTIO_PCI_CAP_COMMON 1
#define VIRTIO_PCI_CAP_NOTIFY 2
#define VIRTIO_PCI_CAP_ISR 3
#define VIRTIO_PCI_CAP_DEVICE 4

#define VIRTIO_STATUS_ACK 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_BIT(n) (1ull << (n))

#define VIRTIO_MSI_NO_VECTOR 0xffff

/* Common configuration structure offsets. */
#define VCC_DFSELECT 0
#define VCC_DF 4
#define VCC_GFSELECT 8
#define VCC_GF 12
#define VCC_MSIX_CONFIG 16
#define VCC_NUM_QUEUES 18
#define VCC_STATUS 20
#define VCC_CFG_GEN 21
#define VCC_Q_SELECT 22
#define VCC_Q_SIZE 24
#define VCC_Q_MSIX 26
#define VCC_Q_ENABLE 28
#define VCC_Q_NOTIFY_OFF 30
#define VCC_Q_DESC 32
#define VCC_Q_DRIVER 40
#define VCC_Q_DEVICE 48

/* Where the four structures are, from the vendor capabilities. */
struct virtio_caps {
    uint8_t found;              /* bit per VIRTIO_PCI_CAP_* type */
    uint8_t bar[5];
    uint32_t offset[5], length[5];
    uint32_t notify_mult;
};
/* Reads the virtio vendor capabilities; the first of each type counts. */
void virtio_read_caps(uint32_t bdf, struct virtio_caps *c);

struct virtio_dev {
    uint32_t bdf;
    uint16_t device_id;
    uintptr_t common, notify, isr, devcfg;
    uint32_t notify_len, devcfg_len;
    uint32_t notify_mult;
    uint64_t features;          /* offered by the device */
    uint64_t accepted;          /* negotiated */
};

/* Finds the nth (from 0) modern virtio device of this type on bus 0. */
bool virtio_find(int type, int nth, uint32_t *bdf);
/* Enables memory decoding and bus mastering, maps the four structures and
 * resets the device. why gets the reason on failure. */
bool virtio_open(struct virtio_dev *d, uint32_t bdf, char *why, size_t why_size);
void virtio_reset(struct virtio_dev *d);
uint8_t virtio_status(struct virtio_dev *d);
/* ACKNOWLEDGE, DRIVER, features (device's & wanted; VERSION_1 is always
 * wanted), FEATURES_OK; false when the device clears FEATURES_OK. */
bool virtio_negotiate(struct virtio_dev *d, uint64_t wanted, char *why, size_t why_size);
void virtio_driver_ok(struct virtio_dev *d);
uint8_t virtio_cfg8(struct virtio_dev *d, uint32_t off);
uint16_t virtio_cfg16(struct virtio_dev *d, uint32_t off);
uint32_t virtio_cfg32(struct virtio_dev *d, uint32_t off);
uint64_t virtio_cfg64(struct virtio_dev *d, uint32_t off);

/* ---- split virtqueues ---- */
#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_MAX 64

struct vring_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
} __attribute__((packed));

struct virtq {
    struct virtio_dev *dev;
    uint16_t index, size;
    struct vring_desc *desc;
    volatile uint16_t *avail;   /* flags, idx, ring[size], used_event */
    volatile uint32_t *used;    /* flags|idx, then {id, len} pairs */
    uintptr_t notify_addr;
    struct vring_desc *indirect;   /* 8 entries per head */
    uint16_t avail_idx, last_used;
    uint16_t free_head, num_free;
    uint16_t chain_len[VIRTQ_MAX];  /* 0 for an indirect head */
    uint16_t msix_vector;
    bool event_idx;             /* VIRTIO_F_EVENT_IDX negotiated */
    uint16_t kicked_idx;        /* avail idx at the last notification */
    uint32_t kicks, kicks_skipped;
};
#define VIRTQ_INDIRECT_MAX 8

struct virtq_buf {
    void *addr;
    uint32_t len;
    bool write;                 /* device writes it */
};

/* Sets up queue `index` with at most max entries (rounded down to a power
 * of two); msix is the MSI-X vector or VIRTIO_MSI_NO_VECTOR. False with a
 * reason when the device has no such queue or refuses it. */
bool virtq_setup(struct virtio_dev *d, struct virtq *q, uint16_t index, uint16_t max,
                 uint16_t msix, char *why, size_t why_size);
/* Queues one chain (n buffers) and notifies the device; with indirect the
 * chain goes into an indirect table behind one descriptor. Returns the head
 * or -1 when the ring is full. */
int virtq_submit(struct virtq *q, const struct virtq_buf *bufs, int n, bool indirect);
/* Adds the chain without notifying (to batch); virtq_kick notifies, or with
 * VIRTIO_F_EVENT_IDX only when the device's avail_event asks for it. */
int virtq_add(struct virtq *q, const struct virtq_buf *bufs, int n, bool indirect);
void virtq_kick(struct virtq *q);
/* Takes the next used entry; false if none arrives within timeout_ms. */
bool virtq_wait(struct virtq *q, uint32_t timeout_ms, uint32_t *id, uint32_t *len);
bool virtq_poll(struct virtq *q, uint32_t *id, uint32_t *len);

/* Zeroed memory that stays put for the program's life (rings, buffers). */
void *kit_dma_alloc(uint32_t size, uint32_t align);

/* ---- MSI-X ---- */
/* Programs entry n of the device's MSI-X table for a fixed, edge interrupt
 * to this CPU's LAPIC and enables MSI-X; false if the device has none. */
bool msix_route(uint32_t bdf, unsigned entry, uint8_t vector, char *why, size_t why_size);
void msix_disable(uint32_t bdf);

/* Parses the hex MAC "aa:bb:cc:dd:ee:ff". */
bool kit_parse_mac(const char *s, uint8_t mac[6]);
bool kit_parse_ipv4(const char *s, uint8_t ip[4]);

#endif
