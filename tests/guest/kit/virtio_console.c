/* virtio-console (device type 3) without MULTIPORT: port 0 on receiveq 0 and
 * transmitq 1. Writes "kit-console <tx=>" as a line for the host to check,
 * then reads a line from the host and compares it with rx=. */
#include "virtio.h"

#define RX_BUFS 4
#define RX_BUF_SIZE 64
#define LINE_MAX 128

static struct virtio_dev dev;
static struct virtq rxq, txq;
static uint8_t rxbuf[RX_BUFS][RX_BUF_SIZE];
static char txline[LINE_MAX], line[LINE_MAX];

static bool setup(char *why, size_t sz)
{
    uint32_t bdf;
    if (!virtio_find(VIRTIO_ID_CONSOLE, 0, &bdf)) {
        kit_snprintf(why, sz, "no device 1af4:%04x on bus 0", VIRTIO_PCI_MODERN_BASE + VIRTIO_ID_CONSOLE);
        return false;
    }
    if (!virtio_open(&dev, bdf, why, sz) || !virtio_negotiate(&dev, 0, why, sz))
        return false;
    tap_diag("virtio-console at 00:%02x.%u, features 0x%llx", PCI_DEV(bdf), PCI_FN(bdf),
             (unsigned long long)dev.features);
    return true;
}

/* Gathers received bytes until a newline, at most timeout_ms per chunk;
 * each used buffer goes straight back to the device. */
static bool read_line(uint32_t timeout_ms, uint32_t *n)
{
    *n = 0;
    for (;;) {
        uint32_t id, len;
        line[*n] = 0;
        if (!virtq_wait(&rxq, timeout_ms, &id, &len) || id >= RX_BUFS || len > RX_BUF_SIZE)
            return false;
        for (uint32_t i = 0; i < len; i++) {
            char c = (char)rxbuf[id][i];
            if (c == '\n') {
                line[*n] = 0;
                return true;
            }
            if (*n + 1 < LINE_MAX)
                line[(*n)++] = c;
        }
        struct virtq_buf b = { rxbuf[id], RX_BUF_SIZE, true };
        virtq_submit(&rxq, &b, 1, false);
    }
}

void kit_main(void)
{
    tap_plan(4);
    char why[120] = "";
    bool ok = setup(why, sizeof(why));
    if (!tap_check(ok, "virtio-console found, reset and VERSION_1 negotiated", "%s", why))
        return;
    ok = virtq_setup(&dev, &rxq, 0, RX_BUFS, VIRTIO_MSI_NO_VECTOR, why, sizeof(why)) &&
         virtq_setup(&dev, &txq, 1, 4, VIRTIO_MSI_NO_VECTOR, why, sizeof(why));
    if (ok && rxq.size != RX_BUFS) {
        kit_snprintf(why, sizeof(why), "receive queue of %u entries", rxq.size);
        ok = false;
    }
    /* Descriptor i holds buffer i: the used id names the buffer. */
    for (int i = 0; ok && i < RX_BUFS; i++) {
        struct virtq_buf b = { rxbuf[i], RX_BUF_SIZE, true };
        ok = virtq_add(&rxq, &b, 1, false) == i;
    }
    if (ok) {
        virtio_driver_ok(&dev);
        virtq_kick(&rxq);
    }
    if (!tap_check(ok, "receiveq and transmitq of port 0 set up", "%s", why))
        return;

    char tag[64] = "";
    cmdline_get("tx", tag, sizeof(tag));
    int n = kit_snprintf(txline, sizeof(txline), "kit-console %s\n", tag);
    struct virtq_buf b = { txline, (uint32_t)n, false };
    uint32_t id, len;
    int head = virtq_submit(&txq, &b, 1, false);
    bool sent = head >= 0 && virtq_wait(&txq, 5000, &id, &len) && (int)id == head;
    tap_check(sent, "a line written to transmitq is consumed", "no used entry in 5 s");

    char want[64] = "";
    bool have_want = cmdline_get("rx", want, sizeof(want));
    uint32_t got = 0;
    bool rx = read_line(10000, &got);
    tap_check(rx && have_want && !strncmp(line, want, sizeof(want)), "the line read from receiveq equals rx=",
              "%s \"%s\" (%u bytes), rx=%s", rx ? "read" : "no full line in time, got", line, got,
              have_want ? "given" : "missing");
    virtio_reset(&dev);
}
