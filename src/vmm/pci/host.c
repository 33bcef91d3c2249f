/* The host bridge's front ends: configuration mechanism #1 on ports
 * 0xcf8-0xcff, PCIe ECAM in MMIO, and the MMIO window BARs live in.
 *
 * 0xcf9 sits inside the config port block but is the reset control
 * register; the bridge owns the whole block (so the ACPI PM device's own
 * registration of 0xcf9 steps aside) and forwards byte accesses there.
 *
 * The ACPI PCI hotplug registers (the DSDT's PCST region) sit here too,
 * as on boards where the chipset's PCI glue carries them. */
#include "pci/pci.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hw/acpi_pm.h"
#include "iobus.h"
#include "vm.h"
#include "x86/layout.h"

#define CF8_ENABLE 0x80000000u

struct pci_host {
    struct vm *vm;
    struct pci_bus *bus;
    uint64_t ecam_base, ecam_size;
    pthread_mutex_t lock;    /* the address register */
    uint32_t cf8;
    bool pio_done, ecam_done, win_done, hp_done;
};

/* Decodes the address latched in 0xcf8 for an access at data port byte
 * k; false when the access should go nowhere. */
static bool cf8_target(struct pci_host *h, unsigned k, unsigned len, unsigned *busno,
                       unsigned *devfn, unsigned *reg)
{
    pthread_mutex_lock(&h->lock);
    uint32_t a = h->cf8;
    pthread_mutex_unlock(&h->lock);
    if (!(a & CF8_ENABLE) || k + len > 4)
        return false;
    *busno = (a >> 16) & 0xff;
    *devfn = (a >> 8) & 0xff;
    *reg = (a & 0xfc) + k;
    return true;
}

static void pio_read(void *opaque, uint64_t off, uint8_t *data, unsigned len)
{
    struct pci_host *h = opaque;
    unsigned busno, devfn, reg;
    if (off == 0 && len == 4) {
        pthread_mutex_lock(&h->lock);
        io_data_put(data, 4, h->cf8);
        pthread_mutex_unlock(&h->lock);
    } else if (off >= 4 && cf8_target(h, (unsigned)off - 4, len, &busno, &devfn, &reg)) {
        pci_config_read(h->bus, busno, devfn, reg, data, len);
    } else if (off == 1 && len == 1) {
        data[0] = 0;   /* the reset control register reads as zero */
    } else {
        memset(data, 0xff, len);
    }
}

static void pio_write(void *opaque, uint64_t off, const uint8_t *data, unsigned len)
{
    struct pci_host *h = opaque;
    unsigned busno, devfn, reg;
    if (off == 0 && len == 4) {
        pthread_mutex_lock(&h->lock);
        h->cf8 = (uint32_t)io_data_get(data, 4) & 0x80fffffcu;
        pthread_mutex_unlock(&h->lock);
    } else if (off >= 4 && cf8_target(h, (unsigned)off - 4, len, &busno, &devfn, &reg)) {
        pci_config_write(h->bus, busno, devfn, reg, data, len);
    } else if (off == 1 && len == 1) {
        acpi_pm_reset_control(h->vm, data[0]);
    }
}

static const struct io_ops pio_ops = { .read = pio_read, .write = pio_write };

/* ECAM: bus in bits 27:20, devfn in 19:12, register in 11:0. An access
 * must stay inside one dword of one function. */
static bool ecam_decode(uint64_t off, unsigned len, unsigned *busno, unsigned *devfn,
                        unsigned *reg)
{
    *busno = (unsigned)(off >> 20) & 0xff;
    *devfn = (unsigned)(off >> 12) & 0xff;
    *reg = (unsigned)off & 0xfff;
    return len <= 4 && (*reg & 3) + len <= 4;
}

static void ecam_read(void *opaque, uint64_t off, uint8_t *data, unsigned len)
{
    struct pci_host *h = opaque;
    unsigned busno, devfn, reg;
    if (ecam_decode(off, len, &busno, &devfn, &reg))
        pci_config_read(h->bus, busno, devfn, reg, data, len);
    else
        memset(data, 0xff, len);
}

static void ecam_write(void *opaque, uint64_t off, const uint8_t *data, unsigned len)
{
    struct pci_host *h = opaque;
    unsigned busno, devfn, reg;
    if (ecam_decode(off, len, &busno, &devfn, &reg))
        pci_config_write(h->bus, busno, devfn, reg, data, len);
}

static const struct io_ops ecam_ops = { .read = ecam_read, .write = ecam_write };

static void win_read(void *opaque, uint64_t off, uint8_t *data, unsigned len)
{
    struct pci_host *h = opaque;
    pci_mmio_read(h->bus, LAYOUT_PCI_MMIO_START + off, data, len);
}

static void win_write(void *opaque, uint64_t off, const uint8_t *data, unsigned len)
{
    struct pci_host *h = opaque;
    pci_mmio_write(h->bus, LAYOUT_PCI_MMIO_START + off, data, len);
}

static const struct io_ops win_ops = { .read = win_read, .write = win_write };

static void hp_read(void *opaque, uint64_t off, uint8_t *data, unsigned len)
{
    struct pci_host *h = opaque;
    pci_hotplug_read(h->bus, (unsigned)off, data, len);
}

static void hp_write(void *opaque, uint64_t off, const uint8_t *data, unsigned len)
{
    struct pci_host *h = opaque;
    pci_hotplug_write(h->bus, (unsigned)off, data, len);
}

static const struct io_ops hp_ops = { .read = hp_read, .write = hp_write };

int pci_host_create(struct pci_host **out, struct vm *vm, struct pci_bus *bus,
                    uint64_t ecam_base, unsigned ecam_end_bus, struct err *e)
{
    if (ecam_end_bus > 255)
        return err_set(e, EINVAL, "ECAM end bus %u is over 255", ecam_end_bus);
    struct pci_host *h = calloc(1, sizeof(*h));
    if (!h)
        return err_set(e, ENOMEM, "out of memory");
    h->vm = vm;
    h->bus = bus;
    h->ecam_base = ecam_base;
    h->ecam_size = (uint64_t)(ecam_end_bus + 1) << 20;
    pthread_mutex_init(&h->lock, NULL);
    int r = iobus_register(&vm->pio, LAYOUT_PORT_PCI_CONFIG, 8, &pio_ops, h, "pci_config");
    if (r < 0) {
        err_set(e, -r, "cannot register PCI config ports 0x%x-0x%x", LAYOUT_PORT_PCI_CONFIG,
                LAYOUT_PORT_PCI_CONFIG + 7);
        goto fail;
    }
    h->pio_done = true;
    r = iobus_register(&vm->mmio, ecam_base, h->ecam_size, &ecam_ops, h, "pci_ecam");
    if (r < 0) {
        err_set(e, -r, "cannot register the ECAM window at %#llx",
                (unsigned long long)ecam_base);
        goto fail;
    }
    h->ecam_done = true;
    r = iobus_register(&vm->mmio, LAYOUT_PCI_MMIO_START, LAYOUT_PCI_MMIO_SIZE, &win_ops, h,
                       "pci_window");
    if (r < 0) {
        err_set(e, -r, "cannot register the PCI MMIO window");
        goto fail;
    }
    h->win_done = true;
    r = iobus_register(&vm->pio, LAYOUT_PORT_PCI_HOTPLUG, LAYOUT_PCI_HOTPLUG_LEN, &hp_ops, h,
                       "pci_hotplug");
    if (r < 0) {
        err_set(e, -r, "cannot register PCI hotplug ports 0x%x-0x%x", LAYOUT_PORT_PCI_HOTPLUG,
                LAYOUT_PORT_PCI_HOTPLUG + LAYOUT_PCI_HOTPLUG_LEN - 1);
        goto fail;
    }
    h->hp_done = true;
    *out = h;
    return 0;
fail:
    pci_host_destroy(h);
    return r;
}

void pci_host_destroy(struct pci_host *h)
{
    if (!h)
        return;
    if (h->pio_done)
        iobus_unregister(&h->vm->pio, LAYOUT_PORT_PCI_CONFIG);
    if (h->ecam_done)
        iobus_unregister(&h->vm->mmio, h->ecam_base);
    if (h->win_done)
        iobus_unregister(&h->vm->mmio, LAYOUT_PCI_MMIO_START);
    if (h->hp_done)
        iobus_unregister(&h->vm->pio, LAYOUT_PORT_PCI_HOTPLUG);
    pthread_mutex_destroy(&h->lock);
    free(h);
}
