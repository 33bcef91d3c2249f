/* Starts the other vCPUs with INIT-SIPI-SIPI to all but self; each marks its
 * APIC id. The set of ids that checked in must be the MADT's minus the BSP. */
#include "kit.h"

static volatile uint32_t ap_count;
static volatile uint8_t ap_seen[256];

static void ap_hook(void)
{
    uint8_t id = lapic_id();
    __atomic_fetch_add(&ap_seen[id], 1, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&ap_count, 1, __ATOMIC_SEQ_CST);
}

static bool start_aps(void)
{
    uint8_t vec = smp_install_trampoline();
    kit_ap_hook = ap_hook;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    /* Destination shorthand "all excluding self" (bits 18-19). */
    bool ok = lapic_send_ipi(0, 0xc0000 | 0x4000 | 0x500);     /* INIT, assert */
    kit_sleep_ms(10);
    ok &= lapic_send_ipi(0, 0xc0000 | 0x4000 | 0x600 | vec);   /* SIPI */
    pit_delay_us(200);
    ok &= lapic_send_ipi(0, 0xc0000 | 0x4000 | 0x600 | vec);   /* SIPI again */
    return ok;
}

static void wait_aps(uint32_t want)
{
    /* 10 ms steps, up to 2 s of guest time; then a grace period for any
     * extra CPU that should not exist. */
    for (int i = 0; i < 200 && ap_count < want; i++)
        kit_sleep_ms(10);
    kit_sleep_ms(50);
}

static void check_ids(const struct acpi_info *ai, uint8_t bsp)
{
    int bad = -1, missing = -1, twice = -1;
    for (int id = 0; id < 256; id++) {
        bool listed = false;
        for (int i = 0; i < ai->ncpus && i < ACPI_MAX_CPUS; i++)
            listed |= ai->apic_ids[i] == id;
        if (ap_seen[id] && (!listed || id == bsp))
            bad = id;
        if (listed && id != bsp && !ap_seen[id])
            missing = id;
        if (ap_seen[id] > 1)
            twice = id;
    }
    tap_check(bad < 0, "every AP's APIC id is in the MADT", "APIC id %d ran but is not an AP in the MADT", bad);
    tap_check(missing < 0, "every MADT AP started", "APIC id %d never checked in", missing);
    tap_check(twice < 0, "no AP ran the start-up code twice", "APIC id %d checked in %u times",
              twice, twice >= 0 ? ap_seen[twice] : 0);
}

void kit_main(void)
{
    tap_plan(7);
    uint32_t cpus = 0;
    bool have = cmdline_get_uint("cpus", &cpus);
    tap_check(have && cpus >= 1, "command line has cpus=N", "cmdline \"%s\"", kit_boot_info.cmdline);
    struct acpi_info ai;
    char why[64];
    if (!acpi_parse(&ai, why, sizeof(why)))
        tap_diag("ACPI walk stopped: %s", why);
    if (ai.lapic_addr)
        kit_lapic_base = ai.lapic_addr;
    lapic_enable(0xff);
    /* Waits sleep on the PIT tick rather than spin (see kit_sleep_ms). */
    if (!ticker_start(&ai, 100))
        tap_diag("no IOAPIC route for the PIT: waits will spin");
    uint8_t bsp = lapic_id();
    bool bsp_listed = false;
    for (int i = 0; i < ai.ncpus && i < ACPI_MAX_CPUS; i++)
        bsp_listed |= ai.apic_ids[i] == bsp;
    tap_check(bsp_listed, "BSP APIC id is in the MADT", "BSP id %u, MADT has %d CPUs", bsp, ai.ncpus);
    tap_check(start_aps(), "INIT and SIPI IPIs delivered", "ICR delivery status stuck");
    uint32_t want = cpus ? cpus - 1 : 0;
    wait_aps(want);
    uint32_t n = ap_count;
    tap_check(n == want, "cpus=N-1 APs started", "%u started, expected %u", n, want);
    check_ids(&ai, bsp);
    ticker_stop();
    tap_diag("BSP APIC id %u, %u APs started", bsp, n);
}
