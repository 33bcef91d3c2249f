#ifndef CVIRT_UTIL_SIZE_H
#define CVIRT_UTIL_SIZE_H

#include <stdint.h>

/* Parses "512", "512M", "1.5G", "2T", "4096K", "10B" (binary units, case
 * insensitive, optional trailing "iB"/"B"). A number without a suffix is in
 * units of default_unit bytes (1 for images, 1 MiB for memory, as QEMU does).
 * Returns 0, -EINVAL for malformed text, -ERANGE on overflow. */
int size_parse(const char *s, uint64_t default_unit, uint64_t *out);

/* Formats a size as "256M", "1.5G" etc. for messages. */
const char *size_format(uint64_t bytes, char *buf, unsigned len);

#endif
