/* ACPI tables for a cvirt-vmm x86 machine (ACPI 6.0 layouts).
 *
 * Everything is written field by field in little-endian through the put*
 * helpers, so the layout is visible here and does not depend on the host's
 * struct packing. The DSDT (the namespace: sleep states, legacy devices,
 * PCI root bridge, processors) is generated with the AML builder. */
#include "util/le.h"
#include "x86/acpi.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "x86/aml.h"
#include "x86/layout.h"

#define OEM_ID          "CVIRT "
#define CREATOR_ID      "CVRT"
#define OEM_REVISION    1
#define CREATOR_REV     1

#define HDR_LEN         36
#define RSDP_LEN        36
#define FADT_LEN        276
#define FACS_LEN        64
#define MCFG_LEN        60

/* MADT entry types and sizes. */
#define MADT_LAPIC      0
#define MADT_IOAPIC     1
#define MADT_ISO        2
#define MADT_LAPIC_NMI  4
#define MADT_LAPIC_LEN  8
#define MADT_IOAPIC_LEN 12
#define MADT_ISO_LEN    10
#define MADT_NMI_LEN    6
#define MADT_PCAT_COMPAT 1u
#define MADT_LAPIC_ENABLED 1u
/* MPS INTI flags: polarity in bits 1:0, trigger mode in bits 3:2. */
#define MPS_ACTIVE_HIGH 0x1u
#define MPS_LEVEL       0xcu

/* FADT feature flags (ACPI 6.0, table 5-35). */
#define FADT_WBINVD         (1u << 0)
#define FADT_PROC_C1        (1u << 2)
#define FADT_SLP_BUTTON     (1u << 5)
#define FADT_TMR_VAL_EXT    (1u << 8)
#define FADT_RESET_REG_SUP  (1u << 10)
/* IA-PC boot architecture flags (table 5-36). */
#define BOOT_LEGACY_DEVICES (1u << 0)
#define BOOT_8042           (1u << 1)
#define BOOT_VGA_NOT_PRESENT (1u << 2)

/* CMOS index of the RTC's century byte (the RTC model keeps it there). */
#define RTC_CENTURY_INDEX 0x32

/* Generic Address Structure: address space and access size codes. */
#define GAS_IO          1
#define GAS_ACC_BYTE    1
#define GAS_ACC_WORD    2
#define GAS_ACC_DWORD   3

/* The PIT's IRQ0 is wired to IOAPIC pin 2, as on PC chipsets. */
#define IRQ0_GSI        2

static void put8(uint8_t *p, uint8_t v) { p[0] = v; }




uint8_t acpi_checksum(const uint8_t *buf, size_t len)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum += buf[i];
    return (uint8_t)-sum;
}

/* The output area: tables are carved out of buf in order. */
struct area {
    uint8_t *buf;
    size_t len;
    size_t pos;
    uint64_t gpa;
    struct err *e;
};

/* Reserves size zeroed bytes at a gpa aligned to align. */
static int area_alloc(struct area *a, size_t size, size_t align,
                      uint8_t **p, uint64_t *gpa)
{
    uint64_t g = (a->gpa + a->pos + align - 1) & ~(uint64_t)(align - 1);
    size_t off = (size_t)(g - a->gpa);
    if (off > a->len || size > a->len - off)
        return err_set(a->e, ENOSPC,
                       "ACPI tables do not fit in %zu bytes", a->len);
    memset(a->buf + a->pos, 0, off + size - a->pos);
    a->pos = off + size;
    *p = a->buf + off;
    *gpa = g;
    return 0;
}

/* Standard description header; the checksum is filled by seal(). */
static void put_header(uint8_t *p, const char *sig, uint32_t len,
                       uint8_t rev, const char *table_id)
{
    memcpy(p, sig, 4);
    le32_put(p + 4, len);
    put8(p + 8, rev);
    memcpy(p + 10, OEM_ID, 6);
    memcpy(p + 16, table_id, 8);
    le32_put(p + 24, OEM_REVISION);
    memcpy(p + 28, CREATOR_ID, 4);
    le32_put(p + 32, CREATOR_REV);
}

static void seal(uint8_t *p, size_t len)
{
    p[9] = 0;
    p[9] = acpi_checksum(p, len);
}

/* Generic Address Structure for a system I/O register block. */
static void put_gas_io(uint8_t *p, uint8_t bits, uint8_t access,
                       uint64_t port)
{
    put8(p, GAS_IO);
    put8(p + 1, bits);
    put8(p + 2, 0);
    put8(p + 3, access);
    le64_put(p + 4, port);
}

/* ---- DSDT ---- */

static void dsdt_sleep_states(struct aml_buf *b)
{
    /* \_S5: PM1a and PM1b SLP_TYP values, then two reserved entries. */
    aml_name(b, "\\_S5");
    aml_package_begin(b, 4);
    aml_int(b, LAYOUT_S5_SLP_TYP);
    aml_int(b, LAYOUT_S5_SLP_TYP);
    aml_int(b, 0);
    aml_int(b, 0);
    aml_end(b);
}

/* A legacy ISA device with one fixed I/O range and one IRQ. */
static void dsdt_isa_device(struct aml_buf *b, const char *name,
                            const char *hid, unsigned uid, uint16_t port,
                            uint8_t nports, unsigned irq)
{
    aml_device_begin(b, name);
    aml_name_eisaid(b, "_HID", hid);
    aml_name_int(b, "_UID", uid);
    aml_name(b, "_CRS");
    aml_restemplate_begin(b);
    aml_res_io(b, port, nports);
    aml_res_irq_noflags(b, irq);
    aml_restemplate_end(b);
    aml_end(b);
}

/* Motherboard resources: ranges no PCI BAR may be placed on. The ECAM
 * window listed here is also how Linux accepts the MCFG region. */
static void dsdt_motherboard(struct aml_buf *b, const struct acpi_config *cfg)
{
    aml_device_begin(b, "MBRS");
    aml_name_eisaid(b, "_HID", "PNP0C02");
    aml_name_int(b, "_UID", 0);
    aml_name(b, "_CRS");
    aml_restemplate_begin(b);
    aml_res_io(b, LAYOUT_PORT_ACPI_PM_BASE, LAYOUT_PORT_ACPI_PM_LEN);
    if (cfg->pci) {
        aml_res_io(b, LAYOUT_PORT_PCI_HOTPLUG, LAYOUT_PCI_HOTPLUG_LEN);
        uint64_t size = (uint64_t)(cfg->ecam_end_bus + 1) << 20;
        if (cfg->ecam_base + size <= LAYOUT_4G)
            aml_res_memory32_fixed(b, (uint32_t)cfg->ecam_base,
                                   (uint32_t)size, true);
        else
            aml_res_qword_memory(b, cfg->ecam_base,
                                 cfg->ecam_base + size - 1, true, false);
    }
    aml_restemplate_end(b);
    aml_end(b);
}

/* INTx routing for every slot of bus 0, occupied or not (a device added
 * later needs no new table): static GSIs, i.e. Source 0 and the GSI as
 * Source Index, no link devices to arbitrate. Each entry is
 * Package { slot << 16 | 0xffff, pin (0 = INTA#), 0, GSI }. ACPI takes a
 * static GSI in a _PRT as level-triggered, active-low; KVM's IOAPIC
 * ignores polarity, so the device model simply raises the line. */
static void dsdt_pci_routing(struct aml_buf *b)
{
    aml_name(b, "_PRT");
    aml_package_begin(b, 32 * 4);
    for (unsigned slot = 0; slot < 32; slot++) {
        for (unsigned pin = 0; pin < 4; pin++) {
            aml_package_begin(b, 4);
            aml_int(b, (uint64_t)slot << 16 | 0xffff);
            aml_int(b, pin);
            aml_int(b, 0);
            aml_int(b, layout_pci_intx_gsi(slot, pin));
            aml_end(b);
        }
    }
    aml_end(b);
}

/* ACPI PCI hotplug (pci/pci.c has the registers and the slot states):
 *   OperationRegion (PCST, SystemIO, port, 12)
 *   Field (PCST, DWordAcc, NoLock, WriteAsZeros) { PCIU, 32, PCID, 32, B0EJ, 32 }
 *   Device (Snn) { _ADR, _SUN, Method (_EJ0, 1) { B0EJ = 1 << nn } }  for nn in 1..31
 *   Method (PCNT) { Local0 = PCIU; Local1 = PCID;
 *                   If (Local0 & bit) { Notify (Snn, 1) } ...   device check
 *                   If (Local1 & bit) { Notify (Snn, 3) } ... } eject request
 * and \_GPE._E01 calls PCNT. The slot objects exist whether or not a
 * device is there: the OS reads the vendor ID to tell. */
static void dsdt_pci_hotplug(struct aml_buf *b)
{
    static const struct aml_field_unit regs[] = {
        { "PCIU", 32 }, { "PCID", 32 }, { "B0EJ", 32 },
    };
    char name[8];
    aml_opregion(b, "PCST", AML_SPACE_SYSTEM_IO, LAYOUT_PORT_PCI_HOTPLUG,
                 LAYOUT_PCI_HOTPLUG_LEN);
    aml_field(b, "PCST", AML_FIELD_DWORD_ACC | AML_FIELD_WRITE_ZEROS, regs, 3);
    for (unsigned slot = 1; slot < 32; slot++) {
        snprintf(name, sizeof(name), "S%02X", slot);
        aml_device_begin(b, name);
        aml_name_int(b, "_ADR", (uint64_t)slot << 16);
        aml_name_int(b, "_SUN", slot);
        aml_method_begin(b, "_EJ0", 1, false);
        aml_store(b);
        aml_int(b, 1u << slot);
        aml_namestring(b, "B0EJ");
        aml_end(b);
        aml_end(b);
    }
    aml_method_begin(b, "PCNT", 0, true);
    aml_store(b);
    aml_namestring(b, "PCIU");
    aml_local(b, 0);
    aml_store(b);
    aml_namestring(b, "PCID");
    aml_local(b, 1);
    for (unsigned local = 0; local < 2; local++) {
        for (unsigned slot = 1; slot < 32; slot++) {
            snprintf(name, sizeof(name), "S%02X", slot);
            aml_if_begin(b);
            aml_and(b);
            aml_local(b, local);
            aml_int(b, 1u << slot);
            aml_null_target(b);
            aml_notify(b);
            aml_namestring(b, name);
            aml_int(b, local == 0 ? 1 : 3);
            aml_end(b);
        }
    }
    aml_end(b);
}

/* The hotplug GPE's handler: edge-style (_Exx), as the PM block latches
 * the status bit once per event. */
static void dsdt_gpe(struct aml_buf *b)
{
    char name[8];
    snprintf(name, sizeof(name), "_E%02X", LAYOUT_GPE_PCI_HOTPLUG);
    aml_scope_begin(b, "\\_GPE");
    aml_method_begin(b, name, 0, false);
    aml_namestring(b, "\\_SB.PCI0.PCNT");
    aml_end(b);
    aml_end(b);
}

static void dsdt_pci_root(struct aml_buf *b, const struct acpi_config *cfg)
{
    aml_device_begin(b, "PCI0");
    aml_name_eisaid(b, "_HID", "PNP0A08");
    aml_name_eisaid(b, "_CID", "PNP0A03");
    aml_name_int(b, "_SEG", 0);
    aml_name_int(b, "_BBN", 0);
    aml_name_int(b, "_UID", 0);
    aml_name(b, "_CRS");
    aml_restemplate_begin(b);
    aml_res_word_bus(b, 0, (uint16_t)cfg->ecam_end_bus);
    /* The config ports are consumed by the bridge itself; the windows
     * around them are what it forwards to the bus. */
    aml_res_io(b, LAYOUT_PORT_PCI_CONFIG, 8);
    aml_res_word_io(b, 0x0000, 0x0cf7);
    aml_res_word_io(b, 0x0d00, 0xffff);
    aml_res_dword_memory(b, (uint32_t)LAYOUT_PCI_MMIO_START,
                         (uint32_t)(LAYOUT_PCI_MMIO_START +
                                    LAYOUT_PCI_MMIO_SIZE - 1),
                         false, false);
    aml_restemplate_end(b);
    dsdt_pci_routing(b);
    dsdt_pci_hotplug(b);
    aml_end(b);
}

/* Processor devices whose _UID matches the MADT's processor uid. */
static void dsdt_cpus(struct aml_buf *b, unsigned ncpus)
{
    for (unsigned i = 0; i < ncpus; i++) {
        char name[12];
        snprintf(name, sizeof(name), "C%03X", i & 0xfff);
        aml_device_begin(b, name);
        aml_name_string(b, "_HID", "ACPI0007");
        aml_name_int(b, "_UID", i);
        aml_end(b);
    }
}

static int build_dsdt_body(const struct acpi_config *cfg, struct aml_buf *b)
{
    dsdt_sleep_states(b);
    aml_scope_begin(b, "\\_SB");
    dsdt_cpus(b, cfg->ncpus);
    dsdt_isa_device(b, "COM1", "PNP0501", 1, LAYOUT_PORT_COM1, 8,
                    LAYOUT_IRQ_COM1);
    dsdt_isa_device(b, "RTC", "PNP0B00", 0, LAYOUT_PORT_RTC, 2,
                    LAYOUT_IRQ_RTC);
    dsdt_motherboard(b, cfg);
    if (cfg->pci)
        dsdt_pci_root(b, cfg);
    aml_end(b);
    if (cfg->pci)
        dsdt_gpe(b);
    if (!aml_error(b) && b->depth != 0)
        return -EINVAL;
    return aml_error(b);
}

/* ---- fixed tables ---- */

static void fill_fadt(uint8_t *p, uint64_t facs, uint64_t dsdt)
{
    put_header(p, "FACP", FADT_LEN, 6, "CVIRTFAC");
    /* The FACS sits below 4 GiB, so only the 32-bit pointer is set: the
     * spec allows at most one of FIRMWARE_CTRL and X_FIRMWARE_CTRL. */
    le32_put(p + 36, (uint32_t)facs);
    le32_put(p + 40, (uint32_t)dsdt);
    le16_put(p + 46, LAYOUT_IRQ_SCI);
    le32_put(p + 48, 0);   /* SMI_CMD 0: always in ACPI mode, no handoff */
    le32_put(p + 56, LAYOUT_PORT_PM1A_EVT);
    le32_put(p + 64, LAYOUT_PORT_PM1A_CNT);
    le32_put(p + 76, LAYOUT_PORT_PM_TMR);
    le32_put(p + 80, LAYOUT_PORT_GPE0_BLK);
    put8(p + 88, 4);    /* PM1_EVT_LEN */
    put8(p + 89, 2);    /* PM1_CNT_LEN */
    put8(p + 91, 4);    /* PM_TMR_LEN */
    put8(p + 92, 8);    /* GPE0_BLK_LEN */
    /* Latencies above 100 and 1000 us say C2 and C3 do not exist. */
    le16_put(p + 96, 0x0fff);
    le16_put(p + 98, 0x0fff);
    put8(p + 108, RTC_CENTURY_INDEX);
    le16_put(p + 109, BOOT_LEGACY_DEVICES | BOOT_8042 | BOOT_VGA_NOT_PRESENT);
    /* PWR_BUTTON stays clear: the power button is the fixed-feature one
     * in PM1, which is how a graceful shutdown request reaches the guest. */
    le32_put(p + 112, FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON |
                   FADT_TMR_VAL_EXT | FADT_RESET_REG_SUP);
    put_gas_io(p + 116, 8, GAS_ACC_BYTE, LAYOUT_PORT_RESET_CF9);
    put8(p + 128, LAYOUT_ACPI_RESET_VALUE);
    put8(p + 131, 0);   /* FADT minor version: 6.0 */
    le64_put(p + 140, dsdt);
    put_gas_io(p + 148, 32, GAS_ACC_WORD, LAYOUT_PORT_PM1A_EVT);
    put_gas_io(p + 172, 16, GAS_ACC_WORD, LAYOUT_PORT_PM1A_CNT);
    put_gas_io(p + 208, 32, GAS_ACC_DWORD, LAYOUT_PORT_PM_TMR);
    put_gas_io(p + 220, 64, GAS_ACC_BYTE, LAYOUT_PORT_GPE0_BLK);
    memcpy(p + 268, "CVIRTVMM", 8); /* hypervisor vendor identity */
    seal(p, FADT_LEN);
}

static void fill_facs(uint8_t *p)
{
    memcpy(p, "FACS", 4);
    le32_put(p + 4, FACS_LEN);
    put8(p + 32, 2);    /* version */
}

static size_t madt_len(unsigned ncpus)
{
    return HDR_LEN + 8 + (size_t)ncpus * MADT_LAPIC_LEN + MADT_IOAPIC_LEN +
           2 * MADT_ISO_LEN + MADT_NMI_LEN;
}

static uint8_t *put_iso(uint8_t *p, uint8_t irq, uint32_t gsi,
                        uint16_t flags)
{
    put8(p, MADT_ISO);
    put8(p + 1, MADT_ISO_LEN);
    put8(p + 2, 0);     /* bus: ISA */
    put8(p + 3, irq);
    le32_put(p + 4, gsi);
    le16_put(p + 8, flags);
    return p + MADT_ISO_LEN;
}

static void fill_madt(uint8_t *t, unsigned ncpus)
{
    size_t len = madt_len(ncpus);
    put_header(t, "APIC", (uint32_t)len, 4, "CVIRTAPI");
    le32_put(t + 36, (uint32_t)LAYOUT_LAPIC_ADDR);
    le32_put(t + 40, MADT_PCAT_COMPAT);
    uint8_t *p = t + 44;
    for (unsigned i = 0; i < ncpus; i++, p += MADT_LAPIC_LEN) {
        put8(p, MADT_LAPIC);
        put8(p + 1, MADT_LAPIC_LEN);
        put8(p + 2, (uint8_t)i);    /* processor uid */
        put8(p + 3, (uint8_t)i);    /* APIC id */
        le32_put(p + 4, MADT_LAPIC_ENABLED);
    }
    put8(p, MADT_IOAPIC);
    put8(p + 1, MADT_IOAPIC_LEN);
    /* The IOAPIC id must not collide with a LAPIC id: it takes the first
     * id after the vCPUs. */
    put8(p + 2, (uint8_t)ncpus);
    le32_put(p + 4, (uint32_t)LAYOUT_IOAPIC_ADDR);
    le32_put(p + 8, 0);    /* GSI base */
    p += MADT_IOAPIC_LEN;
    p = put_iso(p, 0, IRQ0_GSI, 0);
    /* The SCI is level-triggered; the PM device drives it active high,
     * unlike the ISA default the OS would otherwise assume. */
    p = put_iso(p, LAYOUT_IRQ_SCI, LAYOUT_IRQ_SCI,
                MPS_ACTIVE_HIGH | MPS_LEVEL);
    put8(p, MADT_LAPIC_NMI);
    put8(p + 1, MADT_NMI_LEN);
    put8(p + 2, 0xff);  /* all processors */
    le16_put(p + 3, 0);    /* flags: conforms to the bus */
    put8(p + 5, 1);     /* LINT1 */
    seal(t, len);
}

static void fill_mcfg(uint8_t *p, const struct acpi_config *cfg)
{
    put_header(p, "MCFG", MCFG_LEN, 1, "CVIRTMCF");
    le64_put(p + 44, cfg->ecam_base);
    le16_put(p + 52, 0);   /* segment */
    put8(p + 54, 0);    /* start bus */
    put8(p + 55, (uint8_t)cfg->ecam_end_bus);
    seal(p, MCFG_LEN);
}

static int check_config(const struct acpi_config *cfg, size_t len,
                        uint64_t gpa_base, struct err *e)
{
    if (cfg->ncpus == 0 || cfg->ncpus > ACPI_MAX_CPUS)
        return err_set(e, EINVAL, "ACPI: %u vCPUs, supported 1..%u",
                       cfg->ncpus, ACPI_MAX_CPUS);
    if (gpa_base & 15)
        return err_set(e, EINVAL, "ACPI: table base 0x%llx is not "
                       "16-byte aligned", (unsigned long long)gpa_base);
    /* RSDT and the FADT's 32-bit pointers need every table below 4 GiB. */
    if (gpa_base >= LAYOUT_4G || len > LAYOUT_4G - gpa_base)
        return err_set(e, EINVAL, "ACPI: table area 0x%llx+0x%zx is not "
                       "below 4 GiB", (unsigned long long)gpa_base, len);
    if (cfg->pci) {
        if (cfg->ecam_end_bus > 255)
            return err_set(e, EINVAL, "ACPI: ECAM end bus %u is over 255",
                           cfg->ecam_end_bus);
        uint64_t size = (uint64_t)(cfg->ecam_end_bus + 1) << 20;
        if ((cfg->ecam_base & 0xfffff) || cfg->ecam_base + size <
            cfg->ecam_base)
            return err_set(e, EINVAL, "ACPI: bad ECAM base 0x%llx",
                           (unsigned long long)cfg->ecam_base);
    }
    return 0;
}

/* Gpa and pointer of each table, so the roots can refer to them. */
struct tables {
    uint8_t *rsdp, *xsdt, *rsdt, *fadt, *facs, *dsdt, *madt, *mcfg;
    uint64_t xsdt_gpa, rsdt_gpa, fadt_gpa, facs_gpa, dsdt_gpa, madt_gpa,
             mcfg_gpa;
};

static int place_tables(struct area *a, const struct acpi_config *cfg,
                        size_t dsdt_len, struct tables *t)
{
    unsigned n = cfg->pci ? 3 : 2;
    uint64_t rsdp_gpa;
    if (area_alloc(a, RSDP_LEN, 16, &t->rsdp, &rsdp_gpa) < 0 ||
        area_alloc(a, HDR_LEN + 8 * n, 16, &t->xsdt, &t->xsdt_gpa) < 0 ||
        area_alloc(a, HDR_LEN + 4 * n, 16, &t->rsdt, &t->rsdt_gpa) < 0 ||
        area_alloc(a, FADT_LEN, 16, &t->fadt, &t->fadt_gpa) < 0 ||
        area_alloc(a, FACS_LEN, 64, &t->facs, &t->facs_gpa) < 0 ||
        area_alloc(a, dsdt_len, 16, &t->dsdt, &t->dsdt_gpa) < 0 ||
        area_alloc(a, madt_len(cfg->ncpus), 16, &t->madt, &t->madt_gpa) < 0)
        return -ENOSPC;
    if (cfg->pci &&
        area_alloc(a, MCFG_LEN, 16, &t->mcfg, &t->mcfg_gpa) < 0)
        return -ENOSPC;
    return 0;
}

static void fill_roots(const struct acpi_config *cfg, struct tables *t)
{
    unsigned n = cfg->pci ? 3 : 2;
    uint64_t entries[3] = { t->fadt_gpa, t->madt_gpa, t->mcfg_gpa };

    put_header(t->xsdt, "XSDT", HDR_LEN + 8 * n, 1, "CVIRTXSD");
    put_header(t->rsdt, "RSDT", HDR_LEN + 4 * n, 1, "CVIRTRSD");
    for (unsigned i = 0; i < n; i++) {
        le64_put(t->xsdt + HDR_LEN + 8 * i, entries[i]);
        le32_put(t->rsdt + HDR_LEN + 4 * i, (uint32_t)entries[i]);
    }
    seal(t->xsdt, HDR_LEN + 8 * n);
    seal(t->rsdt, HDR_LEN + 4 * n);

    uint8_t *r = t->rsdp;
    memcpy(r, "RSD PTR ", 8);
    memcpy(r + 9, OEM_ID, 6);
    put8(r + 15, 2);
    le32_put(r + 16, (uint32_t)t->rsdt_gpa);
    le32_put(r + 20, RSDP_LEN);
    le64_put(r + 24, t->xsdt_gpa);
    /* The first checksum covers the ACPI 1.0 part (20 bytes), the
     * extended one the whole structure. */
    put8(r + 8, acpi_checksum(r, 20));
    put8(r + 32, acpi_checksum(r, RSDP_LEN));
}

int acpi_build(const struct acpi_config *cfg, uint8_t *buf, size_t len,
               uint64_t gpa_base, uint64_t *rsdp_gpa, struct err *e)
{
    struct aml_buf aml;
    struct tables t = { 0 };
    struct area a = { .buf = buf, .len = len, .gpa = gpa_base, .e = e };
    int r;

    *rsdp_gpa = 0;
    r = check_config(cfg, len, gpa_base, e);
    if (r < 0)
        return r;

    aml_init(&aml);
    r = build_dsdt_body(cfg, &aml);
    if (r < 0) {
        aml_free(&aml);
        return err_set(e, -r, "ACPI: building the DSDT failed");
    }
    r = place_tables(&a, cfg, HDR_LEN + aml.len, &t);
    if (r < 0) {
        aml_free(&aml);
        return r;
    }
    put_header(t.dsdt, "DSDT", (uint32_t)(HDR_LEN + aml.len), 2, "CVIRTDSD");
    memcpy(t.dsdt + HDR_LEN, aml.data, aml.len);
    seal(t.dsdt, HDR_LEN + aml.len);
    aml_free(&aml);

    fill_fadt(t.fadt, t.facs_gpa, t.dsdt_gpa);
    fill_facs(t.facs);
    fill_madt(t.madt, cfg->ncpus);
    if (cfg->pci)
        fill_mcfg(t.mcfg, cfg);
    fill_roots(cfg, &t);
    *rsdp_gpa = gpa_base;
    return 0;
}
