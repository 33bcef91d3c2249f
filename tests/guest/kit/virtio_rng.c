/* virtio-rng (device type 4): one request queue of device-writable buffers.
 * The first request completes with an MSI-X interrupt through the IDT,
 * which proves MSI-X delivery end to end; the second is polled. */
#include "virtio.h"

#define RNG_VEC 0x41
#define RNG_BYTES 64

static volatile uint32_t msix_hits;
static struct acpi_info ai;
static struct virtio_dev dev;
static struct virtq vq;

static void rng_irq(struct kit_frame *f)
{
    (void)f;
    msix_hits++;
    lapic_eoi();
}

static bool all_equal(const uint8_t *b, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++)
        if (b[i] != b[0])
            return false;
    return true;
}

/* Waits for the interrupt with HLT on the PIT tick, at most 3 s. */
static void wait_irq(void)
{
    uint32_t start = kit_ticks;
    while (!msix_hits && kit_ticks - start < 300)
        __asm__ volatile("sti; hlt; cli" ::: "memory");
}

void kit_main(void)
{
    tap_plan(8);
    char why[120] = "";
    if (!acpi_parse(&ai, why, sizeof(why)))
        tap_diag("ACPI walk stopped: %s", why);
    uint32_t bdf;
    bool ok = virtio_find(VIRTIO_ID_RNG, 0, &bdf);
    if (ok)
        ok = virtio_open(&dev, bdf, why, sizeof(why));
    else
        kit_snprintf(why, sizeof(why), "no device 1af4:%04x on bus 0", VIRTIO_PCI_MODERN_BASE + VIRTIO_ID_RNG);
    if (ok)
        ok = virtio_negotiate(&dev, 0, why, sizeof(why));
    if (!tap_check(ok, "virtio-rng found, reset and VERSION_1 negotiated", "%s", why))
        return;
    tap_diag("virtio-rng at 00:%02x.%u, features 0x%llx", PCI_DEV(bdf), PCI_FN(bdf),
             (unsigned long long)dev.features);

    bool ticking = ticker_start(&ai, 100);
    idt_set_handler(RNG_VEC, rng_irq);
    ok = msix_route(bdf, 0, RNG_VEC, why, sizeof(why));
    if (ok) {
        /* Configuration changes get no vector: only the queue may interrupt. */
        *(volatile uint16_t *)(dev.common + VCC_MSIX_CONFIG) = VIRTIO_MSI_NO_VECTOR;
        ok = virtq_setup(&dev, &vq, 0, 8, 0, why, sizeof(why));
    }
    if (ok)
        virtio_driver_ok(&dev);
    if (!tap_check(ok && ticking, "request queue set up with MSI-X vector 0", "%s%s", why,
                   ticking ? "" : " (no PIT tick)"))
        return;

    static uint8_t buf1[RNG_BYTES], buf2[RNG_BYTES];
    struct virtq_buf b = { buf1, RNG_BYTES, true };
    uint32_t id = 0, len = 0;
    int head = virtq_submit(&vq, &b, 1, false);
    wait_irq();
    bool got = virtq_wait(&vq, 1000, &id, &len);
    tap_check(msix_hits > 0, "MSI-X interrupt arrives on the programmed vector",
              "none in 3 s of PIT time (used entry %s)", got ? "present" : "absent");
    tap_check(got && (int)id == head && len == RNG_BYTES, "first request returns the requested byte count",
              "%s, id %u (head %d), len %u of %u", got ? "completed" : "timed out", id, head, len, RNG_BYTES);
    tap_check(got && !all_equal(buf1, len), "first request's bytes are not all equal",
              "all %u bytes are 0x%02x", len, buf1[0]);

    /* The second request is polled with MSI-X off: the device signals
     * through the ISR (INTx itself stays disabled in the command register),
     * and reading the ISR clears it (virtio 1.2, 4.1.4.5). */
    msix_disable(bdf);
    ticker_stop();
    (void)*(volatile uint8_t *)dev.isr;
    b.addr = buf2;
    head = virtq_submit(&vq, &b, 1, false);
    got = virtq_wait(&vq, 3000, &id, &len);
    uint8_t isr1 = *(volatile uint8_t *)dev.isr, isr2 = *(volatile uint8_t *)dev.isr;
    tap_check(got && (isr1 & 1) && !(isr2 & 1), "without MSI-X a completion sets ISR bit 0 and reading clears it",
              "ISR read 0x%x, then 0x%x", isr1, isr2);
    tap_check(got && (int)id == head && len == RNG_BYTES, "second (polled) request returns the requested byte count",
              "%s, id %u (head %d), len %u", got ? "completed" : "timed out", id, head, len);
    tap_check(got && memcmp(buf1, buf2, RNG_BYTES) != 0, "the two requests return different bytes",
              "second request repeated the first");
    virtio_reset(&dev);
}
