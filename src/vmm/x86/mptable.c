/* The MP tables describe the same machine as the MADT (CPUs, the IOAPIC,
 * ISA interrupt routing) for guests that boot without ACPI. Guests with
 * ACPI only look for the floating pointer, but they look hard: Linux maps
 * and unmaps the rest of the 64 KiB BIOS area for every 16-byte step of
 * its search, which costs over a second where KVM emulates guest kernel
 * code. Finding the pointer in the first place searched ends that. */
#include "util/le.h"
#include "x86/mptable.h"

#include <errno.h>
#include <string.h>

#include "x86/acpi.h"
#include "x86/layout.h"

#define MP_SPEC_REV      4
#define MP_LAPIC_VERSION 0x14
#define MP_IOAPIC_VERSION 0x11
#define MPC_HEADER_LEN   44
#define MP_FP_LEN        16

enum { MP_PROCESSOR = 0, MP_BUS = 1, MP_IOAPIC = 2, MP_IOINTR = 3, MP_LINTR = 4 };
enum { MP_INT = 0, MP_NMI = 1, MP_EXTINT = 3 };
/* Interrupt entry flags: polarity in bits 1:0, trigger in bits 3:2. */
#define MP_IRQ_ACTIVE_HIGH 1
#define MP_IRQ_LEVEL       (3 << 2)


static size_t intr_entry(uint8_t *p, uint8_t type, uint8_t kind, uint16_t flags, uint8_t src_irq,
                         uint8_t dst_id, uint8_t dst_pin)
{
    p[0] = type;
    p[1] = kind;
    le16_put(p + 2, flags);
    p[4] = 0; /* source bus: ISA */
    p[5] = src_irq;
    p[6] = dst_id;
    p[7] = dst_pin;
    return 8;
}

int mptable_build(unsigned ncpus, uint8_t *buf, size_t len, uint64_t gpa_base,
                  size_t fp_offset, struct err *e)
{
    const uint8_t ioapic_id = (uint8_t)ncpus; /* as in the MADT */
    size_t need = MPC_HEADER_LEN + 20 * (size_t)ncpus + 8 + 8 + 16 * 8 + 2 * 8;
    if (ncpus == 0 || ncpus > 254 || need > fp_offset || fp_offset + MP_FP_LEN > len ||
        fp_offset % 16)
        return err_set(e, ENOSPC, "MP tables for %u CPUs do not fit in %zu bytes", ncpus, len);
    memset(buf, 0, len);
    uint8_t *p = buf + MPC_HEADER_LEN;
    uint16_t count = 0;
    for (unsigned i = 0; i < ncpus; i++, p += 20, count++) {
        p[0] = MP_PROCESSOR;
        p[1] = (uint8_t)i;
        p[2] = MP_LAPIC_VERSION;
        p[3] = 1 | (i == 0 ? 2 : 0);      /* enabled; bootstrap processor */
        le32_put(p + 4, 0x600);              /* family 6 */
        le32_put(p + 8, (1u << 9) | 1);      /* APIC, FPU */
    }
    p[0] = MP_BUS;
    memcpy(p + 2, "ISA   ", 6);
    p += 8, count++;
    p[0] = MP_IOAPIC;
    p[1] = ioapic_id;
    p[2] = MP_IOAPIC_VERSION;
    p[3] = 1;
    le32_put(p + 4, (uint32_t)LAYOUT_IOAPIC_ADDR);
    p += 8, count++;
    p += intr_entry(p, MP_IOINTR, MP_EXTINT, 0, 0, ioapic_id, 0), count++;
    for (uint8_t irq = 0; irq < 16; irq++) {
        if (irq == 2)
            continue; /* the cascade; its pin carries IRQ0 */
        uint16_t flags = irq == LAYOUT_IRQ_SCI ? MP_IRQ_ACTIVE_HIGH | MP_IRQ_LEVEL : 0;
        p += intr_entry(p, MP_IOINTR, MP_INT, flags, irq, ioapic_id, irq == 0 ? 2 : irq);
        count++;
    }
    p += intr_entry(p, MP_LINTR, MP_EXTINT, 0, 0, 0xff, 0), count++;
    p += intr_entry(p, MP_LINTR, MP_NMI, 0, 0, 0xff, 1), count++;

    uint16_t table_len = (uint16_t)(p - buf);
    memcpy(buf, "PCMP", 4);
    le16_put(buf + 4, table_len);
    buf[6] = MP_SPEC_REV;
    memcpy(buf + 8, "CVIRT   ", 8);
    memcpy(buf + 16, "CVIRT-VMM   ", 12);
    le16_put(buf + 34, count);
    le32_put(buf + 36, (uint32_t)LAYOUT_LAPIC_ADDR);
    buf[7] = acpi_checksum(buf, table_len);

    uint8_t *fp = buf + fp_offset;
    memcpy(fp, "_MP_", 4);
    le32_put(fp + 4, (uint32_t)gpa_base);
    fp[8] = 1;                            /* length in 16-byte units */
    fp[9] = MP_SPEC_REV;
    fp[10] = acpi_checksum(fp, MP_FP_LEN);
    return 0;
}
