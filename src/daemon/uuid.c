#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "daemon/uuid.h"

int uuid_generate(uint8_t uuid[16])
{
    size_t got = 0;
    while (got < 16) {
        ssize_t n = getrandom(uuid + got, 16 - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)n;
    }
    uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40);   /* version 4 */
    uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);   /* RFC 4122 variant */
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int uuid_parse(const char *s, uint8_t uuid[16])
{
    uint8_t tmp[16];
    int n = 0;
    while (isspace((unsigned char)*s))
        s++;
    while (n < 16) {
        while (n > 0 && (*s == '-' || *s == ' '))
            s++;
        int hi = hexval((unsigned char)s[0]);
        int lo = hi < 0 ? -1 : hexval((unsigned char)s[1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        tmp[n++] = (uint8_t)(hi << 4 | lo);
        s += 2;
    }
    while (isspace((unsigned char)*s))
        s++;
    if (*s)
        return -EINVAL;
    memcpy(uuid, tmp, 16);
    return 0;
}

void uuid_format(const uint8_t u[16], char buf[UUID_STRING_LEN])
{
    snprintf(buf, UUID_STRING_LEN,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7],
             u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

int uuid_is_null(const uint8_t uuid[16])
{
    for (int i = 0; i < 16; i++)
        if (uuid[i])
            return 0;
    return 1;
}
