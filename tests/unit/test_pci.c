/* PCI bus 0 through both host bridge front ends (ports 0xcf8/0xcfc and
 * ECAM): identity, read-only and writable bits, BAR sizing and placement,
 * the capability list, BAR dispatch in the MMIO window and the 0xcf9
 * forwarding. No KVM VM exists: routes are only recorded. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hw/acpi_pm.h"
#include "pci/msix.h"
#include "pci/pci.h"
#include "vm.h"
#include "x86/layout.h"

static int reset_writes;
static uint8_t reset_value;

/* The reset control register's owner, recorded. */
void acpi_pm_reset_control(struct vm *vm, uint8_t value)
{
    reset_writes++;
    reset_value = value;
}

static uint32_t gpes_raised;
static int gpe_raises;

/* The GPE block's owner, recorded: the hotplug notification. */
int acpi_pm_raise_gpe(struct vm *vm, unsigned bit)
{
    (void)vm;
    gpe_raises++;
    gpes_raised |= 1u << bit;
    return 0;
}

struct access {
    unsigned bar;
    uint64_t off;
    unsigned len;
    uint64_t val;
    bool write;
};

struct fixture {
    struct vm *vm;
    struct pci_bus *bus;
    struct pci_host *host;
    struct pci_dev *dev;
    struct access last;
    int accesses;
    int moves;
    uint64_t moved_to[PCI_NUM_BARS];
};

static void dev_bar_read(void *opaque, unsigned bar, uint64_t off, uint8_t *data, unsigned len)
{
    struct fixture *f = opaque;
    f->last = (struct access){ bar, off, len, 0, false };
    f->accesses++;
    io_data_put(data, len, 0xa5a5a5a5a5a5a5a5ULL ^ off);
}

static void dev_bar_write(void *opaque, unsigned bar, uint64_t off, const uint8_t *data,
                          unsigned len)
{
    struct fixture *f = opaque;
    f->last = (struct access){ bar, off, len, io_data_get(data, len), true };
    f->accesses++;
}

static void dev_bar_moved(void *opaque, unsigned bar, uint64_t old, uint64_t gpa)
{
    struct fixture *f = opaque;
    f->moves++;
    f->moved_to[bar] = gpa;
}

static const struct pci_dev_ops dev_ops = {
    .bar_read = dev_bar_read, .bar_write = dev_bar_write, .bar_moved = dev_bar_moved,
};

static const struct pci_id dev_id = {
    .vendor = 0x1af4, .device = 0x1044, .subsys_vendor = 0x1af4, .subsys = 0x0040,
    .revision = 1, .class_code = 0x00ff00,
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->vm = calloc(1, sizeof(*f->vm));
    f->vm->vm_fd = -1;
    pthread_mutex_init(&f->vm->route_lock, NULL);
    iobus_init(&f->vm->pio);
    iobus_init(&f->vm->mmio);
    struct err e = { 0 };
    assert_int_equal(pci_bus_create(&f->bus, f->vm, LAYOUT_PCI_MMIO_START,
                                    LAYOUT_PCI_MMIO_SIZE, &e), 0);
    assert_int_equal(pci_host_create(&f->host, f->vm, f->bus, LAYOUT_PCIE_ECAM_START, 255, &e), 0);
    assert_int_equal(pci_dev_add(f->bus, &f->dev, "test", &dev_id, &dev_ops, f, &e), 0);
    assert_int_equal(f->dev->slot, 1);
    assert_int_equal(pci_dev_set_bar(f->dev, 0, 0x4000, false, false, &e), 0);
    assert_int_equal(pci_dev_add_msix(f->dev, 3, 2, &e), 0);
    assert_int_equal(pci_dev_set_bar(f->dev, 4, 0x100000, true, true, &e), 0);
    assert_int_equal(pci_bus_assign(f->bus, &e), 0);
    reset_writes = 0;
    gpe_raises = 0;
    gpes_raised = 0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    pci_host_destroy(f->host);
    assert_int_equal(f->vm->pio.n, 0);
    assert_int_equal(f->vm->mmio.n, 0);
    pci_bus_destroy(f->bus);
    /* Every GSI the MSI-X vectors took is free again. */
    for (unsigned i = 0; i < VM_MAX_MSI_ROUTES; i++)
        assert_false(f->vm->msi_routes[i].allocated);
    iobus_destroy(&f->vm->pio);
    iobus_destroy(&f->vm->mmio);
    pthread_mutex_destroy(&f->vm->route_lock);
    free(f->vm);
    free(f);
    return 0;
}

static uint32_t cf8_addr(unsigned bus, unsigned dev, unsigned fn, unsigned reg)
{
    return 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (reg & 0xfc);
}

static uint32_t pio_in(struct fixture *f, uint16_t port, unsigned len)
{
    uint8_t d[4];
    assert_true(iobus_read(&f->vm->pio, port, d, len));
    return (uint32_t)io_data_get(d, len);
}

static void pio_out(struct fixture *f, uint16_t port, unsigned len, uint32_t v)
{
    uint8_t d[4];
    io_data_put(d, len, v);
    assert_true(iobus_write(&f->vm->pio, port, d, len));
}

/* Mechanism #1: address in 0xcf8, data at 0xcfc + (reg & 3). */
static uint32_t cfg_in(struct fixture *f, unsigned dev, unsigned reg, unsigned len)
{
    pio_out(f, 0xcf8, 4, cf8_addr(0, dev, 0, reg));
    return pio_in(f, (uint16_t)(0xcfc + (reg & 3)), len);
}

static void cfg_out(struct fixture *f, unsigned dev, unsigned reg, unsigned len, uint32_t v)
{
    pio_out(f, 0xcf8, 4, cf8_addr(0, dev, 0, reg));
    pio_out(f, (uint16_t)(0xcfc + (reg & 3)), len, v);
}

static uint64_t ecam_in(struct fixture *f, unsigned bus, unsigned dev, unsigned fn, unsigned reg,
                        unsigned len)
{
    uint8_t d[8];
    uint64_t a = LAYOUT_PCIE_ECAM_START + ((uint64_t)bus << 20) + (dev << 15) + (fn << 12) + reg;
    assert_true(iobus_read(&f->vm->mmio, a, d, len));
    return io_data_get(d, len);
}

static void ecam_out(struct fixture *f, unsigned dev, unsigned reg, unsigned len, uint32_t v)
{
    uint8_t d[4];
    io_data_put(d, len, v);
    assert_true(iobus_write(&f->vm->mmio, LAYOUT_PCIE_ECAM_START + (dev << 15) + reg, d, len));
}

static void test_enumeration(void **state)
{
    struct fixture *f = *state;
    /* The host bridge at 00:00.0 and the device at 00:01.0, both ways. */
    assert_int_equal(cfg_in(f, 0, 0, 4), 0x00081b36);
    assert_int_equal(cfg_in(f, 0, 0x08, 4) >> 8, 0x060000);
    assert_int_equal(cfg_in(f, 1, 0, 4), 0x10441af4);
    assert_int_equal(ecam_in(f, 0, 1, 0, 0, 4), 0x10441af4);
    assert_int_equal(cfg_in(f, 1, 0x08, 4), 0x00ff0001);
    assert_int_equal(cfg_in(f, 1, 0x2c, 4), 0x00401af4);
    assert_int_equal(cfg_in(f, 1, 0x02, 2), 0x1044);
    assert_int_equal(cfg_in(f, 1, 0x03, 1), 0x10);
    /* Empty slots, other functions and other buses read all-ones. */
    assert_int_equal(cfg_in(f, 2, 0, 4), 0xffffffff);
    assert_int_equal(cfg_in(f, 31, 0, 4), 0xffffffff);
    pio_out(f, 0xcf8, 4, cf8_addr(0, 1, 1, 0));
    assert_int_equal(pio_in(f, 0xcfc, 4), 0xffffffff);
    assert_int_equal(ecam_in(f, 0, 1, 3, 0, 4), 0xffffffff);
    assert_int_equal(ecam_in(f, 7, 1, 0, 0, 4), 0xffffffff);
    /* The enable bit off: nothing is addressed. */
    pio_out(f, 0xcf8, 4, 0x00000800);
    assert_int_equal(pio_in(f, 0xcfc, 4), 0xffffffff);
    /* The address register keeps what was written, minus bits 0-1 and 24-30. */
    pio_out(f, 0xcf8, 4, 0xff0008ff);
    assert_int_equal(pio_in(f, 0xcf8, 4), 0x800008fc);
    /* A dword access straddling ECAM registers goes nowhere. */
    assert_int_equal(ecam_in(f, 0, 1, 0, 2, 4), 0xffffffff);
    /* Above the conventional 256 bytes: no extended capabilities. */
    assert_int_equal(ecam_in(f, 0, 1, 0, 0x100, 4), 0);
    /* 64-bit ECAM reads are not single config cycles. */
    assert_int_equal(ecam_in(f, 0, 1, 0, 0, 8), 0xffffffffffffffffULL);
}

static void test_readonly_bits(void **state)
{
    struct fixture *f = *state;
    cfg_out(f, 1, 0x00, 4, 0x12345678);
    assert_int_equal(cfg_in(f, 1, 0, 4), 0x10441af4);
    ecam_out(f, 1, 0x08, 4, 0);
    assert_int_equal(cfg_in(f, 1, 0x08, 4), 0x00ff0001);
    /* Command: only memory, bus master and INTx disable are writable. */
    cfg_out(f, 1, 0x04, 2, 0xffff);
    assert_int_equal(cfg_in(f, 1, 0x04, 2), 0x0406);
    cfg_out(f, 1, 0x04, 2, 0x0002);
    assert_int_equal(cfg_in(f, 1, 0x04, 2), 0x0002);
    /* Interrupt line is scratch, interrupt pin is not. */
    cfg_out(f, 1, 0x3c, 2, 0xffff);
    assert_int_equal(cfg_in(f, 1, 0x3c, 1), 0xff);
    assert_int_equal(cfg_in(f, 1, 0x3d, 1), PCI_INTX_PIN_A);
    /* Status: capability list bit set and read-only. */
    assert_true(cfg_in(f, 1, 0x06, 2) & PCI_STATUS_CAP_LIST);
    cfg_out(f, 1, 0x06, 2, 0xffff);
    assert_int_equal(cfg_in(f, 1, 0x06, 2), PCI_STATUS_CAP_LIST);
}

static void test_bar_sizing(void **state)
{
    struct fixture *f = *state;
    /* Placed by size, largest first, inside the window, decoding on. */
    uint32_t bar0 = cfg_in(f, 1, 0x10, 4), bar2 = cfg_in(f, 1, 0x18, 4);
    uint32_t bar4 = cfg_in(f, 1, 0x20, 4), bar5 = cfg_in(f, 1, 0x24, 4);
    assert_int_equal(bar4 & 0xf, PCI_BAR_MEM64 | PCI_BAR_PREFETCH);
    assert_int_equal(bar5, 0);
    assert_int_equal(bar4 & ~0xfu, LAYOUT_PCI_MMIO_START);
    assert_int_equal(bar0, LAYOUT_PCI_MMIO_START + 0x100000);
    assert_int_equal(bar2, LAYOUT_PCI_MMIO_START + 0x104000);
    assert_int_equal(cfg_in(f, 1, 0x04, 2) & PCI_COMMAND_MEMORY, PCI_COMMAND_MEMORY);
    /* Unused BARs stay zero even when written. */
    cfg_out(f, 1, 0x14, 4, 0xffffffff);
    assert_int_equal(cfg_in(f, 1, 0x14, 4), 0);
    /* Sizing the 32-bit BAR the way Linux does. */
    cfg_out(f, 1, 0x04, 2, 0);
    cfg_out(f, 1, 0x10, 4, 0xffffffff);
    assert_int_equal(cfg_in(f, 1, 0x10, 4), 0xffffc000);
    cfg_out(f, 1, 0x10, 4, bar0);
    assert_int_equal(cfg_in(f, 1, 0x10, 4), bar0);
    /* The 64-bit BAR: both halves. */
    ecam_out(f, 1, 0x20, 4, 0xffffffff);
    ecam_out(f, 1, 0x24, 4, 0xffffffff);
    assert_int_equal(cfg_in(f, 1, 0x20, 4), 0xfff00000 | PCI_BAR_MEM64 | PCI_BAR_PREFETCH);
    assert_int_equal(cfg_in(f, 1, 0x24, 4), 0xffffffff);
    ecam_out(f, 1, 0x20, 4, bar4);
    ecam_out(f, 1, 0x24, 4, 0);
    assert_int_equal(cfg_in(f, 1, 0x20, 4), bar4);
    /* Bad declarations are refused. */
    struct err e = { 0 };
    assert_int_equal(pci_dev_set_bar(f->dev, 0, 0x1000, false, false, &e), -EBUSY);
    assert_int_equal(pci_dev_set_bar(f->dev, 5, 0x1000, false, false, NULL), -EBUSY);
    assert_int_equal(pci_dev_set_bar(f->dev, 1, 0x3000, false, false, NULL), -EINVAL);
    assert_int_equal(pci_dev_set_bar(f->dev, 5, 0x1000, true, false, NULL), -EINVAL);
    assert_int_equal(pci_dev_set_bar(f->dev, 6, 0x1000, false, false, NULL), -EINVAL);
}

static void test_capabilities(void **state)
{
    struct fixture *f = *state;
    unsigned ptr = cfg_in(f, 1, PCI_CAP_PTR, 1);
    assert_int_equal(ptr, 0x40);
    assert_int_equal(cfg_in(f, 1, ptr, 1), PCI_CAP_ID_MSIX);
    assert_int_equal(cfg_in(f, 1, ptr + 1, 1), 0);   /* the last one */
    /* Table size N-1 = 2, table and PBA in BAR 2. */
    assert_int_equal(cfg_in(f, 1, ptr + 2, 2), 2);
    assert_int_equal(cfg_in(f, 1, ptr + 4, 4), 2);
    assert_int_equal(cfg_in(f, 1, ptr + 8, 4), 48 | 2);
    /* A second capability links behind it. */
    int off = pci_dev_add_cap(f->dev, PCI_CAP_ID_VNDR, 16);
    assert_int_equal(off, 0x4c);
    assert_int_equal(cfg_in(f, 1, ptr + 1, 1), 0x4c);
    assert_int_equal(cfg_in(f, 1, 0x4c, 2), PCI_CAP_ID_VNDR);
    /* Config space runs out eventually. */
    int n = 0;
    while (pci_dev_add_cap(f->dev, PCI_CAP_ID_VNDR, 16) > 0)
        n++;
    assert_int_equal(n, (256 - 0x5c) / 16);
    assert_int_equal(pci_dev_add_cap(f->dev, PCI_CAP_ID_VNDR, 16), -ENOSPC);
    /* MSI-X enable through the control word reaches the table's owner. */
    assert_false(msix_enabled(f->dev->msix));
    cfg_out(f, 1, ptr + 2, 2, MSIX_CTRL_ENABLE | 0x3ff);
    assert_true(msix_enabled(f->dev->msix));
    assert_int_equal(cfg_in(f, 1, ptr + 2, 2), MSIX_CTRL_ENABLE | 2);
}

static void mmio_out(struct fixture *f, uint64_t a, unsigned len, uint64_t v)
{
    uint8_t d[8];
    io_data_put(d, len, v);
    iobus_write(&f->vm->mmio, a, d, len);
}

static uint64_t mmio_in(struct fixture *f, uint64_t a, unsigned len)
{
    uint8_t d[8];
    iobus_read(&f->vm->mmio, a, d, len);
    return io_data_get(d, len);
}

static void test_bar_dispatch(void **state)
{
    struct fixture *f = *state;
    uint64_t bar0 = cfg_in(f, 1, 0x10, 4);
    assert_int_equal(f->moved_to[0], bar0);
    mmio_out(f, bar0 + 0x1234, 2, 0xbeef);
    assert_int_equal(f->accesses, 1);
    assert_true(f->last.write);
    assert_int_equal(f->last.bar, 0);
    assert_int_equal(f->last.off, 0x1234);
    assert_int_equal(f->last.len, 2);
    assert_int_equal(f->last.val, 0xbeef);
    assert_int_equal(mmio_in(f, bar0 + 8, 4), 0xa5a5a5ad);
    /* An access running past the BAR's end goes nowhere. */
    f->accesses = 0;
    mmio_out(f, bar0 + 0x3ffe, 4, 1);
    assert_int_equal(f->accesses, 0);
    /* The MSI-X BAR is the bus's own business: entry 0's message data. */
    uint64_t bar2 = cfg_in(f, 1, 0x18, 4);
    mmio_out(f, bar2 + 8, 4, 0x4041);
    assert_int_equal(mmio_in(f, bar2 + 8, 4), 0x4041);
    assert_int_equal(mmio_in(f, bar2 + 12, 4), MSIX_VECTOR_MASKED);
    assert_int_equal(f->accesses, 0);
    /* Memory decoding off: the BAR is gone, reads float high. */
    f->moves = 0;
    cfg_out(f, 1, 0x04, 2, 0);
    assert_int_equal(f->moves, 3);
    assert_int_equal(f->moved_to[0], 0);
    assert_int_equal(mmio_in(f, bar0 + 8, 4), 0xffffffff);
    assert_int_equal(f->accesses, 0);
    /* Moved while off, then on again at the new place. */
    cfg_out(f, 1, 0x10, 4, (uint32_t)(bar0 + 0x10000));
    assert_int_equal(f->moves, 3);
    cfg_out(f, 1, 0x04, 2, PCI_COMMAND_MEMORY);
    assert_int_equal(f->moved_to[0], bar0 + 0x10000);
    mmio_out(f, bar0 + 0x10010, 4, 7);
    assert_int_equal(f->last.off, 0x10);
    f->accesses = 0;
    mmio_out(f, bar0 + 0x10, 4, 7);
    assert_int_equal(f->accesses, 0);
    /* Outside the window (as while sizing with decoding on): not decoded. */
    cfg_out(f, 1, 0x10, 4, 0xffffffff);
    assert_int_equal(f->moved_to[0], 0);
}

static void test_reset_cf9(void **state)
{
    struct fixture *f = *state;
    pio_out(f, 0xcf9, 1, 0x06);
    assert_int_equal(reset_writes, 1);
    assert_int_equal(reset_value, 0x06);
    assert_int_equal(pio_in(f, 0xcf9, 1), 0);
    /* A dword write at 0xcf8 is the address register, not a reset. */
    pio_out(f, 0xcf8, 4, 0x80000600);
    assert_int_equal(reset_writes, 1);
    /* Other byte ports of the address register are not decoded. */
    pio_out(f, 0xcfa, 1, 0x06);
    assert_int_equal(reset_writes, 1);
    assert_int_equal(pio_in(f, 0xcfb, 1), 0xff);
}

static void test_bus_reset(void **state)
{
    struct fixture *f = *state;
    uint32_t bar0 = cfg_in(f, 1, 0x10, 4);
    cfg_out(f, 1, 0x10, 4, bar0 + 0x20000);
    cfg_out(f, 1, 0x04, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    cfg_out(f, 1, 0x3c, 1, 11);
    cfg_out(f, 1, 0x42, 2, MSIX_CTRL_ENABLE);
    assert_true(msix_enabled(f->dev->msix));
    pci_bus_reset(f->bus);
    /* Back where firmware put it, decoding on, master off, MSI-X off. */
    assert_int_equal(cfg_in(f, 1, 0x10, 4), bar0);
    assert_int_equal(cfg_in(f, 1, 0x04, 2), PCI_COMMAND_MEMORY);
    /* The Interrupt Line is the IOAPIC input again, as firmware leaves it. */
    assert_int_equal(cfg_in(f, 1, 0x3c, 1), 17);
    assert_int_equal(cfg_in(f, 1, 0x42, 2), 2);
    assert_false(msix_enabled(f->dev->msix));
    assert_int_equal(f->moved_to[0], bar0);
}

/* Interrupt Pin and Line: INTA# for devices, none for the host bridge;
 * the line rotates with the slot over GSIs 16..19. */
static void test_intx_pin_line(void **state)
{
    struct fixture *f = *state;
    struct err e = { 0 };
    assert_int_equal(cfg_in(f, 0, 0x3c, 2), 0x0000);
    assert_int_equal(pci_dev_intx_gsi(pci_bus_dev(f->bus, 0)), -1);
    assert_int_equal(cfg_in(f, 1, 0x3c, 2), 0x0100 | 17);
    struct pci_dev *d;
    for (unsigned slot = 2; slot < PCI_MAX_SLOTS; slot++) {
        assert_int_equal(pci_dev_add(f->bus, &d, "filler", &dev_id, NULL, NULL, &e), 0);
        unsigned gsi = 16 + slot % 4;
        assert_int_equal(cfg_in(f, slot, 0x3c, 2), 0x0100 | gsi);
        assert_int_equal(pci_dev_intx_gsi(d), gsi);
    }
}

static bool status_intx(struct fixture *f, unsigned slot)
{
    return cfg_in(f, slot, 0x06, 2) & PCI_STATUS_INTX;
}

/* The device's request shows in Interrupt Status; Interrupt Disable keeps
 * it off the line and lets it through again when cleared. */
static void test_intx_status_and_disable(void **state)
{
    struct fixture *f = *state;
    for (unsigned i = 0; i < 4; i++)
        assert_false(pci_bus_intx_line(f->bus, i));
    assert_false(status_intx(f, 1));
    pci_dev_set_intx(f->dev, true);
    assert_true(status_intx(f, 1));
    assert_true(pci_bus_intx_line(f->bus, 1));      /* slot 1 INTA# -> GSI 17 */
    assert_false(pci_bus_intx_line(f->bus, 0));
    /* The status byte as a whole and through ECAM. */
    assert_true(ecam_in(f, 0, 1, 0, 0x04, 4) & (uint32_t)PCI_STATUS_INTX << 16);
    assert_true(cfg_in(f, 1, 0x06, 1) & PCI_STATUS_INTX);
    assert_false(cfg_in(f, 1, 0x07, 1) & PCI_STATUS_INTX);
    /* Interrupt Status is read-only: writing it changes nothing. */
    cfg_out(f, 1, 0x06, 2, PCI_STATUS_INTX);
    assert_true(status_intx(f, 1));

    cfg_out(f, 1, 0x04, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_INTX_OFF);
    assert_false(pci_bus_intx_line(f->bus, 1));
    assert_true(status_intx(f, 1));
    /* Raised while disabled: still off the line, still in the status. */
    pci_dev_set_intx(f->dev, false);
    pci_dev_set_intx(f->dev, true);
    assert_false(pci_bus_intx_line(f->bus, 1));
    cfg_out(f, 1, 0x04, 2, PCI_COMMAND_MEMORY);
    assert_true(pci_bus_intx_line(f->bus, 1));
    pci_dev_set_intx(f->dev, false);
    assert_false(pci_bus_intx_line(f->bus, 1));
    assert_false(status_intx(f, 1));
}

/* Devices on the same line: the line is their OR (wired, level). */
static void test_intx_shared_line(void **state)
{
    struct fixture *f = *state;
    struct err e = { 0 };
    struct pci_dev *d[4];
    for (unsigned i = 0; i < 4; i++)
        assert_int_equal(pci_dev_add(f->bus, &d[i], "filler", &dev_id, NULL, NULL, &e), 0);
    /* Slots 2..5; slot 5 shares GSI 17 with slot 1. */
    assert_int_equal(d[3]->slot, 5);
    pci_dev_set_intx(f->dev, true);
    pci_dev_set_intx(d[3], true);
    pci_dev_set_intx(d[0], true);                  /* slot 2 -> GSI 18 */
    assert_true(pci_bus_intx_line(f->bus, 1));
    assert_true(pci_bus_intx_line(f->bus, 2));
    assert_false(pci_bus_intx_line(f->bus, 3));
    pci_dev_set_intx(f->dev, false);
    assert_true(pci_bus_intx_line(f->bus, 1));     /* slot 5 still holds it */
    assert_false(status_intx(f, 1));
    assert_true(status_intx(f, 5));
    /* Disabling the other holder drops the line; raising twice is one request. */
    cfg_out(f, 5, 0x04, 2, PCI_COMMAND_INTX_OFF);
    assert_false(pci_bus_intx_line(f->bus, 1));
    pci_dev_set_intx(f->dev, true);
    pci_dev_set_intx(f->dev, true);
    assert_true(pci_bus_intx_line(f->bus, 1));
    pci_dev_set_intx(f->dev, false);
    assert_false(pci_bus_intx_line(f->bus, 1));
    /* A device taken off the bus lets go of its line. */
    pci_dev_remove(d[0]);
    assert_false(pci_bus_intx_line(f->bus, 2));
}

/* MSI-X on: the pin is dropped; a machine reset lowers every line. */
static void test_intx_msix_and_reset(void **state)
{
    struct fixture *f = *state;
    pci_dev_set_intx(f->dev, true);
    assert_true(pci_bus_intx_line(f->bus, 1));
    cfg_out(f, 1, 0x42, 2, MSIX_CTRL_ENABLE);
    assert_false(pci_bus_intx_line(f->bus, 1));
    assert_false(status_intx(f, 1));
    cfg_out(f, 1, 0x42, 2, 0);
    pci_dev_set_intx(f->dev, true);
    cfg_out(f, 1, 0x04, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_INTX_OFF);
    pci_bus_reset(f->bus);
    assert_false(pci_bus_intx_line(f->bus, 1));
    assert_false(status_intx(f, 1));
    /* Interrupt Disable is off after reset: a new request reaches the line. */
    pci_dev_set_intx(f->dev, true);
    assert_true(pci_bus_intx_line(f->bus, 1));
}

/* ---- hotplug ---- */

static int unplugs;
static void *unplugged_opaque;
static void dev_unplugged(void *opaque)
{
    unplugs++;
    unplugged_opaque = opaque;
}

static const struct pci_dev_ops hp_ops = { .unplugged = dev_unplugged };
static const struct pci_dev_ops hp_bar_ops = {
    .bar_moved = dev_bar_moved, .unplugged = dev_unplugged,
};

static uint32_t hp_in(struct fixture *f, unsigned off)
{
    return pio_in(f, (uint16_t)(LAYOUT_PORT_PCI_HOTPLUG + off), 4);
}

static void hp_eject(struct fixture *f, uint32_t slots)
{
    pio_out(f, LAYOUT_PORT_PCI_HOTPLUG + 8, 4, slots);
}

/* Insert: announced by the GPE, "up" read once (then present), the
 * function visible in config space with its BARs unplaced. */
static void test_hotplug_insert(void **state)
{
    struct fixture *f = *state;
    struct err e = { 0 };
    struct pci_dev *d;
    int tag;
    unplugs = 0;
    assert_int_equal(pci_hotplug_slot_state(f->bus, 2), PCI_SLOT_EMPTY);
    assert_int_equal(pci_hotplug_slot_state(f->bus, 1), PCI_SLOT_PRESENT);
    assert_int_equal(pci_dev_add(f->bus, &d, "hot", &dev_id, &hp_ops, &tag, &e), 0);
    assert_int_equal(pci_dev_set_bar(d, 0, 0x1000, false, false, &e), 0);
    assert_int_equal(pci_hotplug_add(f->bus, d, &e), 0);
    assert_int_equal(gpe_raises, 1);
    assert_int_equal(gpes_raised, 1u << LAYOUT_GPE_PCI_HOTPLUG);
    assert_int_equal(pci_hotplug_slot_state(f->bus, 2), PCI_SLOT_INSERTING);
    /* A second event on a busy slot is refused. */
    assert_int_equal(pci_hotplug_add(f->bus, d, &e), -EBUSY);
    assert_int_equal(gpe_raises, 1);
    assert_int_equal(cfg_in(f, 2, 0, 4), 0x10441af4);
    assert_int_equal(cfg_in(f, 2, 0x10, 4), 0);       /* the guest places it */
    assert_int_equal(hp_in(f, 0), 1u << 2);
    assert_int_equal(hp_in(f, 0), 0);                 /* read clears "up" */
    assert_int_equal(hp_in(f, 4), 0);
    assert_int_equal(pci_hotplug_slot_state(f->bus, 2), PCI_SLOT_PRESENT);
    assert_int_equal(unplugs, 0);
}

/* Remove: requested, "down" kept until the guest ejects; the eject takes
 * the function off the bus and tells its owner. */
static void test_hotplug_remove(void **state)
{
    struct fixture *f = *state;
    struct err e = { 0 };
    struct pci_dev *d;
    int tag;
    unplugs = 0;
    assert_int_equal(pci_dev_add(f->bus, &d, "hot", &dev_id, &hp_ops, &tag, &e), 0);
    assert_int_equal(pci_hotplug_remove(f->bus, d, &e), 0);
    assert_int_equal(gpe_raises, 1);
    assert_int_equal(pci_hotplug_slot_state(f->bus, 2), PCI_SLOT_REMOVING);
    assert_int_equal(pci_hotplug_remove(f->bus, d, &e), -EALREADY);
    assert_int_equal(pci_hotplug_add(f->bus, d, &e), -EBUSY);
    assert_int_equal(hp_in(f, 4), 1u << 2);
    assert_int_equal(hp_in(f, 4), 1u << 2);           /* kept until ejected */
    assert_int_equal(hp_in(f, 0), 0);
    pci_dev_set_intx(d, true);
    assert_true(pci_bus_intx_line(f->bus, 2));
    /* Slot 0 and empty slots are ignored; slot 2 goes. */
    hp_eject(f, 1u << 0 | 1u << 2 | 1u << 9);
    assert_int_equal(unplugs, 1);
    assert_ptr_equal(unplugged_opaque, &tag);
    assert_false(pci_bus_intx_line(f->bus, 2));
    assert_int_equal(hp_in(f, 4), 0);
    assert_int_equal(pci_hotplug_slot_state(f->bus, 2), PCI_SLOT_EMPTY);
    assert_int_equal(cfg_in(f, 2, 0, 4), 0xffffffff);
    assert_int_equal(cfg_in(f, 0, 0, 4), 0x00081b36);
    /* The slot is free for the next device. */
    assert_int_equal(pci_dev_add(f->bus, &d, "next", &dev_id, &hp_ops, &tag, &e), 0);
    assert_int_equal(d->slot, 2);
}

/* The guest may eject a present slot on its own; the host bridge and
 * devices elsewhere are refused; a removal overtakes an untaken insert. */
static void test_hotplug_edges(void **state)
{
    struct fixture *f = *state;
    struct err e = { 0 };
    struct pci_dev *d;
    int tag;
    unplugs = 0;
    assert_int_equal(pci_hotplug_add(f->bus, pci_bus_dev(f->bus, 0), &e), -EINVAL);
    assert_non_null(strstr(e.msg, "not hotpluggable"));
    assert_int_equal(pci_dev_add(f->bus, &d, "hot", &dev_id, &hp_ops, &tag, &e), 0);
    assert_int_equal(pci_hotplug_add(f->bus, d, &e), 0);
    assert_int_equal(pci_hotplug_remove(f->bus, d, &e), 0);
    assert_int_equal(hp_in(f, 0), 0);
    assert_int_equal(hp_in(f, 4), 1u << 2);
    /* The device in slot 1 has no unplugged hook: not hotpluggable, and
     * the guest's eject of its slot is ignored. */
    f->moves = 0;
    assert_int_equal(pci_hotplug_remove(f->bus, f->dev, &e), -EOPNOTSUPP);
    assert_int_equal(pci_hotplug_add(f->bus, f->dev, &e), -EOPNOTSUPP);
    hp_eject(f, 1u << 1);
    assert_int_equal(f->moves, 0);
    assert_int_equal(pci_hotplug_slot_state(f->bus, 1), PCI_SLOT_PRESENT);
    assert_int_equal(cfg_in(f, 1, 0, 4), 0x10441af4);
    /* Guest-initiated eject of a present hotpluggable function, with a
     * BAR decoded: it is reported unmapped first. */
    struct pci_dev *c;
    assert_int_equal(pci_dev_add(f->bus, &c, "cold", &dev_id, &hp_bar_ops, f, &e), 0);
    assert_int_equal(pci_dev_set_bar(c, 0, 0x1000, false, false, &e), 0);
    assert_int_equal(pci_bus_assign(f->bus, &e), 0);
    f->moves = 0;
    unplugs = 0;
    hp_eject(f, 1u << 3);
    assert_int_equal(f->moves, 1);
    assert_int_equal(f->moved_to[0], 0);
    assert_int_equal(unplugs, 1);
    assert_int_equal(pci_hotplug_slot_state(f->bus, 3), PCI_SLOT_EMPTY);
    assert_int_equal(pci_hotplug_slot_state(f->bus, 2), PCI_SLOT_REMOVING);
    /* Narrow or misplaced accesses do nothing. */
    pio_out(f, LAYOUT_PORT_PCI_HOTPLUG + 8, 2, 0xffff);
    assert_int_equal(pci_hotplug_slot_state(f->bus, 2), PCI_SLOT_REMOVING);
    assert_int_equal(pio_in(f, LAYOUT_PORT_PCI_HOTPLUG + 4, 2), 0);
}

/* A device built while the guest runs stays invisible until announced. */
static void test_hotplug_hidden(void **state)
{
    struct fixture *f = *state;
    struct err e = { 0 };
    struct pci_dev *d;
    int tag;
    unplugs = 0;
    assert_int_equal(pci_dev_add_hidden(f->bus, &d, "hot", &dev_id, &hp_ops, &tag, &e), 0);
    assert_int_equal(d->slot, 2);
    assert_int_equal(pci_dev_set_bar(d, 0, 0x1000, false, false, &e), 0);
    assert_int_equal(cfg_in(f, 2, 0, 4), 0xffffffff);
    assert_int_equal(ecam_in(f, 0, 2, 0, 0, 4), 0xffffffff);
    assert_int_equal(pci_hotplug_slot_state(f->bus, 2), PCI_SLOT_EMPTY);
    /* Not the guest's to eject, not the host's to remove by hotplug. */
    hp_eject(f, 1u << 2);
    assert_int_equal(unplugs, 0);
    assert_int_equal(pci_hotplug_remove(f->bus, d, &e), -EINVAL);
    assert_int_equal(gpe_raises, 0);
    assert_int_equal(pci_hotplug_add(f->bus, d, &e), 0);
    assert_int_equal(cfg_in(f, 2, 0, 4), 0x10441af4);
    assert_int_equal(pci_hotplug_slot_state(f->bus, 2), PCI_SLOT_INSERTING);
    /* One that is never announced is simply taken off again. */
    struct pci_dev *h;
    assert_int_equal(pci_dev_add_hidden(f->bus, &h, "late", &dev_id, &hp_ops, &tag, &e), 0);
    pci_dev_remove(h);
    assert_null(pci_bus_dev(f->bus, 3));
}

/* A reset completes pending removals and forgets untaken insertions. */
static void test_hotplug_reset(void **state)
{
    struct fixture *f = *state;
    struct err e = { 0 };
    struct pci_dev *a, *b;
    int ta, tb;
    unplugs = 0;
    assert_int_equal(pci_dev_add(f->bus, &a, "a", &dev_id, &hp_ops, &ta, &e), 0);
    assert_int_equal(pci_dev_add(f->bus, &b, "b", &dev_id, &hp_ops, &tb, &e), 0);
    assert_int_equal(pci_hotplug_add(f->bus, a, &e), 0);
    assert_int_equal(pci_hotplug_remove(f->bus, b, &e), 0);
    pci_bus_reset(f->bus);
    assert_int_equal(unplugs, 1);
    assert_ptr_equal(unplugged_opaque, &tb);
    assert_int_equal(pci_hotplug_slot_state(f->bus, 2), PCI_SLOT_PRESENT);
    assert_int_equal(pci_hotplug_slot_state(f->bus, 3), PCI_SLOT_EMPTY);
    assert_int_equal(hp_in(f, 0), 0);
    assert_int_equal(hp_in(f, 4), 0);
    /* Firmware-style placement after reset covers the hotplugged one too. */
    assert_int_equal(cfg_in(f, 2, 0x04, 2), PCI_COMMAND_MEMORY);
}

static void test_full_bus(void **state)
{
    struct fixture *f = *state;
    struct err e = { 0 };
    struct pci_dev *d;
    for (unsigned i = 2; i < PCI_MAX_SLOTS; i++)
        assert_int_equal(pci_dev_add(f->bus, &d, "filler", &dev_id, NULL, NULL, &e), 0);
    assert_int_equal(pci_dev_add(f->bus, &d, "one too many", &dev_id, NULL, NULL, &e), -ENOSPC);
    assert_non_null(strstr(e.msg, "no free PCI slot"));
    /* A BAR larger than what is left of the window cannot be placed. */
    struct pci_dev *big = pci_bus_dev(f->bus, 31);
    assert_int_equal(pci_dev_set_bar(big, 0, 1ULL << 31, false, false, &e), 0);
    assert_int_equal(pci_dev_set_bar(big, 2, 1ULL << 32, true, false, &e), 0);
    err_clear(&e);
    assert_int_equal(pci_bus_assign(f->bus, &e), -ENOSPC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_enumeration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly_bits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bar_sizing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capabilities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bar_dispatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_cf9, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bus_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intx_pin_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intx_status_and_disable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intx_shared_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intx_msix_and_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hotplug_insert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hotplug_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hotplug_edges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hotplug_hidden, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hotplug_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_bus, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
