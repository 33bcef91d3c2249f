/* UUIDs as libvirt writes them: 16 bytes, shown as 8-4-4-4-12 hex. */
#ifndef CVIRT_DAEMON_UUID_H
#define CVIRT_DAEMON_UUID_H

#include <stdint.h>

#define UUID_STRING_LEN 37   /* 36 characters and the NUL */

/* A random (version 4, RFC 4122 variant) UUID from getrandom(). Returns 0
 * or a negative errno when the kernel has no randomness to give. */
int uuid_generate(uint8_t uuid[16]);

/* Accepts 32 hex digits with or without the four dashes, and, as libvirt
 * does, dashes or spaces anywhere between pairs of digits; surrounding
 * blanks are ignored. Returns 0 or -EINVAL. */
int uuid_parse(const char *s, uint8_t uuid[16]);

/* Lower-case 8-4-4-4-12 form. */
void uuid_format(const uint8_t uuid[16], char buf[UUID_STRING_LEN]);

/* True when all 16 bytes are zero (an unset UUID). */
int uuid_is_null(const uint8_t uuid[16]);

#endif
