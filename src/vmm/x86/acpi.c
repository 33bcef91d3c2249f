#include "x86/acpi.h"

#include <errno.h>
#include <string.h>

uint8_t acpi_checksum(const uint8_t *buf, size_t len)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum += buf[i];
    return (uint8_t)-sum;
}

int acpi_build(const struct acpi_config *cfg, uint8_t *buf, size_t len,
               uint64_t gpa_base, uint64_t *rsdp_gpa, struct err *e)
{
    (void)cfg; (void)buf; (void)len; (void)gpa_base;
    *rsdp_gpa = 0;
    return err_set(e, ENOSYS, "ACPI tables not implemented");
}
