/* virtio-rng with MSI-X left disabled: the device must interrupt through
 * its PCI INTx pin, a level-triggered IOAPIC input, and the driver's read
 * of the ISR register must acknowledge it and lower the line (virtio 1.2,
 * 4.1.4.5). The command register's Interrupt Disable bit must hold the
 * interrupt back while set (the status register's Interrupt Status bit
 * still showing it) and let it through when cleared.
 *
 * Which IOAPIC input a slot's pin reaches is the board's business (QEMU's
 * q35 goes through its PIRQ routers, cvirt-vmm wires it directly), so
 * every input from 16 up gets its own vector and the one that fires is
 * reported, next to the Interrupt Line register, as a diagnostic line:
 *   # INTx pin P on IOAPIC input G, Interrupt Line L
 *
 * Like Linux's handler, one that reads an ISR of 0 claims nothing. Under
 * KVM (QEMU's as well as cvirt-vmm's) the handler runs a second time after
 * some deliveries and reads 0 there, though the line was lowered before
 * the EOI (QEMU's TCG delivers exactly once), so the cases count claims:
 * one per completion, and no delivery at all once things settle, which a
 * line left high would make endless. */
#include "virtio.h"

#define INTX_VEC_BASE 0x50      /* vector of IOAPIC input 16 + n */
#define INTX_FIRST_GSI 16
#define INTX_MAX_GSI 24         /* a 24-input IOAPIC at most is probed */
#define RNG_BYTES 64
#define PCI_INT_LINE 0x3c
#define PCI_INT_PIN 0x3d
#define PCI_STATUS_INTX 0x08
#define IOAPIC_REMOTE_IRR (1u << 14)

static struct acpi_info ai;
static struct virtio_dev dev;
static struct virtq vq;
static volatile uint32_t hits, claims, last_gsi;
static volatile uint8_t last_isr;
static unsigned ngsi;           /* inputs the IOAPIC has */

/* What a driver's INTx handler does: read (and so acknowledge) the ISR,
 * then EOI. Were the line still high, the level-triggered input would
 * deliver again right after the EOI. */
static void intx_irq(struct kit_frame *f)
{
    last_gsi = f->vector - INTX_VEC_BASE + INTX_FIRST_GSI;
    last_isr = *(volatile uint8_t *)dev.isr;
    hits++;
    if (last_isr & 1)
        claims++;
    lapic_eoi();
}

/* HLT on the PIT tick until `want` claims or ticks run out. */
static bool wait_claims(uint32_t want, uint32_t ticks)
{
    uint32_t start = kit_ticks;
    while (claims < want && kit_ticks - start < ticks)
        __asm__ volatile("sti; hlt; cli" ::: "memory");
    return claims >= want;
}


/* Lets ticks pass with interrupts on (anything pending is delivered). */
static void settle(uint32_t ticks)
{
    uint32_t start = kit_ticks;
    while (kit_ticks - start < ticks)
        __asm__ volatile("sti; hlt; cli" ::: "memory");
}

/* Settles, then checks that nothing more arrives: the line is low. */
static bool quiet(void)
{
    settle(10);
    uint32_t h = hits;
    settle(20);
    return hits == h;
}

static void route_inputs(void)
{
    ngsi = ((ioapic_read(ai.ioapic_addr, 1) >> 16) & 0xff) + 1;
    if (ngsi > INTX_MAX_GSI)
        ngsi = INTX_MAX_GSI;
    for (unsigned g = INTX_FIRST_GSI; g < ngsi; g++) {
        uint8_t vec = (uint8_t)(INTX_VEC_BASE + g - INTX_FIRST_GSI);
        idt_set_handler(vec, intx_irq);
        ioapic_route(ai.ioapic_addr, g - ai.ioapic_gsi_base, vec, lapic_id(), true, false);
    }
}

static bool remote_irr_clear(void)
{
    for (unsigned g = INTX_FIRST_GSI; g < ngsi; g++)
        if (ioapic_read(ai.ioapic_addr, (uint8_t)(0x10 + 2 * (g - ai.ioapic_gsi_base))) &
            IOAPIC_REMOTE_IRR)
            return false;
    return true;
}

static bool msix_is_off(uint32_t bdf)
{
    uint8_t c = pci_find_cap(bdf, PCI_CAP_MSIX, 0);
    return c && !(pci_read16(bdf, c + 2u) & 0x8000);
}

static bool intx_status(uint32_t bdf)
{
    return pci_read16(bdf, PCI_STATUS) & PCI_STATUS_INTX;
}

static bool open_rng(uint32_t *bdf, char *why, size_t n)
{
    if (!virtio_find(VIRTIO_ID_RNG, 0, bdf)) {
        kit_snprintf(why, n, "no device 1af4:%04x on bus 0", VIRTIO_PCI_MODERN_BASE + VIRTIO_ID_RNG);
        return false;
    }
    return virtio_open(&dev, *bdf, why, n) && virtio_negotiate(&dev, 0, why, n);
}

void kit_main(void)
{
    tap_plan(10);
    char why[120] = "";
    if (!acpi_parse(&ai, why, sizeof(why)))
        tap_diag("ACPI walk stopped: %s", why);
    uint32_t bdf = 0;
    if (!tap_check(open_rng(&bdf, why, sizeof(why)), "virtio-rng found, reset and VERSION_1 negotiated",
                   "%s", why))
        return;
    uint8_t pin = pci_read8(bdf, PCI_INT_PIN), line = pci_read8(bdf, PCI_INT_LINE);
    tap_check(pin >= 1 && pin <= 4 && msix_is_off(bdf),
              "the function has an INTx pin and MSI-X is disabled", "pin %u, MSI-X %s", pin,
              msix_is_off(bdf) ? "off" : "on or absent");

    bool ticking = ticker_start(&ai, 100);
    bool ok = ticking && ai.ioapic_gsi_base == 0;
    if (ok) {
        route_inputs();
        /* No vector anywhere: with MSI-X off the ISR and INTx carry it. */
        *(volatile uint16_t *)(dev.common + VCC_MSIX_CONFIG) = VIRTIO_MSI_NO_VECTOR;
        ok = virtq_setup(&dev, &vq, 0, 8, VIRTIO_MSI_NO_VECTOR, why, sizeof(why));
    }
    if (ok) {
        /* The library asks a vector-less queue for no interrupts; this
         * driver wants them, through INTx. */
        vq.avail[0] = 0;
        virtio_driver_ok(&dev);
        /* virtio_open left INTx disabled; this driver wants it. */
        pci_write16(bdf, PCI_COMMAND, pci_read16(bdf, PCI_COMMAND) & ~PCI_CMD_INTX_OFF);
    }
    if (!tap_check(ok && ngsi > INTX_FIRST_GSI, "request queue set up without MSI-X vectors",
                   "%s%s, IOAPIC inputs %u", why, ticking ? "" : " (no PIT tick)", ngsi))
        return;

    static uint8_t buf1[RNG_BYTES], buf2[RNG_BYTES];
    struct virtq_buf b = { buf1, RNG_BYTES, true };
    uint32_t id = 0, len = 0;
    int head = virtq_submit(&vq, &b, 1, false);
    bool irq = wait_claims(1, 300);
    tap_check(irq, "the completion interrupts through an IOAPIC input from 16 up",
              "none in 3 s of PIT time");
    if (irq)
        tap_diag("INTx pin %u on IOAPIC input %u, Interrupt Line %u", pin, last_gsi, line);
    tap_check(irq && (last_isr & 1), "the handler's ISR read shows the queue interrupt (bit 0)",
              "ISR read 0x%x", last_isr);
    bool still = quiet();
    tap_check(irq && still && claims == 1 && remote_irr_clear() && !intx_status(bdf),
              "reading the ISR lowered the line: one claim, then quiet, Remote IRR and Interrupt Status clear",
              "%u claims of %u deliveries, %s, Remote IRR %s, Interrupt Status %u", claims, hits,
              still ? "quiet" : "still interrupting", remote_irr_clear() ? "clear" : "set",
              intx_status(bdf));
    if (hits != claims)
        tap_diag("%u deliveries that read ISR 0", hits - claims);
    bool got = virtq_wait(&vq, 1000, &id, &len);
    tap_check(got && (int)id == head && len == RNG_BYTES, "first request returns the requested byte count",
              "%s, id %u (head %d), len %u", got ? "completed" : "timed out", id, head, len);

    /* Interrupt Disable: the device still asks (Interrupt Status), the
     * line stays low until the bit is cleared. */
    pci_write16(bdf, PCI_COMMAND, pci_read16(bdf, PCI_COMMAND) | PCI_CMD_INTX_OFF);
    uint32_t before = claims, hits_before = hits;
    b.addr = buf2;
    head = virtq_submit(&vq, &b, 1, false);
    got = virtq_wait(&vq, 3000, &id, &len);
    settle(10);
    bool held = hits == hits_before && intx_status(bdf);
    tap_check(got && held, "with Interrupt Disable set a completion shows in Interrupt Status only",
              "%s, %u interrupts, Interrupt Status %u", got ? "completed" : "timed out",
              hits - hits_before, intx_status(bdf));
    pci_write16(bdf, PCI_COMMAND, pci_read16(bdf, PCI_COMMAND) & ~PCI_CMD_INTX_OFF);
    irq = wait_claims(before + 1, 100);
    still = quiet();
    tap_check(irq && still && claims == before + 1 && !intx_status(bdf),
              "clearing Interrupt Disable delivers the held interrupt, claimed once, then quiet",
              "%u claims of %u deliveries, %s, Interrupt Status %u", claims - before,
              hits - hits_before, still ? "quiet" : "still interrupting", intx_status(bdf));
    tap_check(got && (int)id == head && len == RNG_BYTES && memcmp(buf1, buf2, RNG_BYTES) != 0,
              "second request returns new bytes", "%s, id %u (head %d), len %u",
              got ? "completed" : "timed out", id, head, len);
    ticker_stop();
    virtio_reset(&dev);
}
