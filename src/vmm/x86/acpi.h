/* ACPI tables generated at VM start: RSDP, XSDT, FADT (+FACS), DSDT,
 * MADT and MCFG. */
#ifndef CVIRT_VMM_X86_ACPI_H
#define CVIRT_VMM_X86_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* LAPIC ids are 8 bits in the MADT, 0xff is the broadcast id and the
 * IOAPIC takes the id after the last vCPU. */
#define ACPI_MAX_CPUS 254

struct acpi_config {
    unsigned ncpus;          /* LAPIC ids 0..ncpus-1, processor uids likewise */
    bool pci;                /* MCFG + PCI root bridge in the DSDT */
    uint64_t ecam_base;      /* used when pci */
    unsigned ecam_end_bus;   /* last bus number covered by ECAM */
};

/* Writes all tables into buf, which the guest sees at guest-physical
 * gpa_base (inside the 0xe0000..0xfffff legacy scan area, so that a kernel
 * booted without a pointer still finds the RSDP on a 16-byte boundary).
 * The RSDP is at buf[0]; the other tables follow contiguously, each
 * aligned (FACS to 64 bytes). gpa_base must be 16-byte aligned and the
 * area below 4 GiB. Returns 0 and the RSDP's guest address, -ENOSPC when
 * len is too small, or -EINVAL for a configuration it cannot describe
 * (ncpus outside 1..ACPI_MAX_CPUS, ECAM base not 1 MiB aligned, end bus
 * over 255). */
int acpi_build(const struct acpi_config *cfg, uint8_t *buf, size_t len,
               uint64_t gpa_base, uint64_t *rsdp_gpa, struct err *e);

/* 8-bit checksum helper: returns the byte that makes the sum of buf zero. */
uint8_t acpi_checksum(const uint8_t *buf, size_t len);

#endif
