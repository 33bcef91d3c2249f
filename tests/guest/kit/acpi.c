/* ACPI tables as a guest OS sees them: RSDP, root table, FADT, DSDT, MADT,
 * FACS; the CPU count against cpus=N; \_S5_; IOAPIC; PM1a control block. */
#include "kit.h"

static bool table_sum_ok(uint32_t addr)
{
    const struct acpi_sdt *h = (const void *)(uintptr_t)addr;
    return addr && acpi_checksum_ok(h, h->length);
}

static void check_table(uint32_t addr, const char *name)
{
    char desc[64];
    kit_snprintf(desc, sizeof(desc), "%s found with a valid checksum", name);
    if (!addr) {
        tap_check(false, desc, "%s not found", name);
        return;
    }
    const struct acpi_sdt *h = (const void *)(uintptr_t)addr;
    tap_check(table_sum_ok(addr), desc, "checksum mismatch at 0x%x, length %u",
              addr, h->length);
}

static void check_rsdp(const struct acpi_info *ai)
{
    const struct kit_boot_info *b = &kit_boot_info;
    char how[8];
    bool scan = cmdline_get("kit.rsdp", how, sizeof(how)) && !strncmp(how, "scan", 5);
    bool given = !scan && b->si.version >= 1 && b->si.rsdp_paddr;
    tap_check(ai->rsdp != 0, "RSDP found", "no RSDP (start info rsdp_paddr 0x%llx, version %u)",
              (unsigned long long)b->si.rsdp_paddr, b->si.version);
    /* A pointer the loader gave must be the one in use: acpi_parse only
     * falls back to the BIOS-area scan when that pointer is unusable. */
    tap_check(!given || ai->rsdp_from_start_info, "start info rsdp_paddr points at a valid RSDP",
              "rsdp_paddr 0x%llx is not a valid RSDP", (unsigned long long)b->si.rsdp_paddr);
    tap_diag("RSDP at 0x%x (%s), revision %u; the BIOS-area scan finds 0x%x", ai->rsdp,
             ai->rsdp_from_start_info ? "start info" : "BIOS-area scan", ai->rsdp_revision,
             acpi_find_rsdp_legacy());
    const uint8_t *r = (const uint8_t *)(uintptr_t)ai->rsdp;
    tap_check(ai->rsdp && acpi_checksum_ok(r, 20), "RSDP checksum (first 20 bytes)", "bad");
    uint32_t len = 0;
    if (ai->rsdp)
        memcpy(&len, r + 20, 4);
    tap_check(ai->rsdp && (r[15] < 2 || (len >= 36 && len <= 4096 && acpi_checksum_ok(r, len))),
              "RSDP extended checksum", "revision %u, length %u", ai->rsdp ? r[15] : 0, len);
}

static void check_cpus(const struct acpi_info *ai)
{
    uint32_t want = 0;
    bool have = cmdline_get_uint("cpus", &want);
    tap_check(have, "command line has cpus=N", "cmdline \"%s\"", kit_boot_info.cmdline);
    tap_check(have && ai->ncpus == (int)want, "MADT lists cpus=N enabled local APICs",
              "MADT has %d, cpus=%u", ai->ncpus, want);
}

void kit_main(void)
{
    tap_plan(15);
    tap_check(kit_boot_info.start_info_ok, "hvm_start_info magic",
              "EBX 0x%x", kit_boot_info.start_info_paddr);
    struct acpi_info ai;
    char why[64];
    if (!acpi_parse(&ai, why, sizeof(why)))
        tap_diag("ACPI walk stopped: %s", why);
    check_rsdp(&ai);
    /* Which root table a machine offers (QEMU's q35: RSDT; cvirt: XSDT)
     * goes in a diagnostic, so the case reads the same on both. */
    uint32_t root = ai.xsdt ? ai.xsdt : ai.rsdt;
    tap_diag("root table: %s", ai.xsdt ? "XSDT" : "RSDT");
    check_table(root, "root table (XSDT or RSDT)");
    check_table(ai.fadt, "FADT");
    check_table(ai.dsdt, "DSDT");
    check_table(ai.madt, "MADT");
    uint32_t facs_len = 0;
    if (ai.facs)
        memcpy(&facs_len, (const uint8_t *)(uintptr_t)ai.facs + 4, 4);
    tap_check(ai.fadt && (!ai.facs_ptr || (ai.facs && facs_len >= 64)),
              "FACS, if present, has its signature and length",
              "FADT 0x%x, FACS pointer 0x%x, length %u", ai.fadt, ai.facs_ptr, facs_len);
    check_cpus(&ai);
    tap_check(ai.slp_typa >= 0 && ai.slp_typa <= 7, "DSDT has \\_S5_ with SLP_TYPa",
              "SLP_TYPa %d", ai.slp_typa);
    tap_diag("\\_S5_ SLP_TYPa %d SLP_TYPb %d", ai.slp_typa, ai.slp_typb);
    tap_check(ai.nioapics > 0 && ai.ioapic_addr, "MADT has an IOAPIC", "%d IOAPICs", ai.nioapics);
    tap_check(ai.pm1a_cnt != 0, "FADT points at a PM1a control block", "PM1a_CNT_BLK 0");
    tap_diag("IOAPIC 0x%x GSI base %u, IRQ0 -> GSI %u, PM1a_CNT 0x%x, PM timer 0x%x (%s-bit)",
             ai.ioapic_addr, ai.ioapic_gsi_base, ai.irq0_gsi, ai.pm1a_cnt, ai.pm_tmr,
             ai.pm_tmr_32bit ? "32" : "24");
}
