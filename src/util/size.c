#include "size.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int unit_shift(const char *suf, uint64_t default_unit, uint64_t *unit)
{
    static const char units[] = "BKMGTPE";
    if (*suf == '\0') {
        *unit = default_unit;
        return 0;
    }
    const char *p = strchr(units, toupper((unsigned char)*suf));
    if (!p)
        return -EINVAL;
    const char *rest = suf + 1;
    if (*p != 'B' && (!strcasecmp(rest, "iB") || !strcasecmp(rest, "B")))
        rest = "";
    if (*rest != '\0')
        return -EINVAL;
    *unit = 1ULL << (10 * (p - units));
    return 0;
}

int size_parse(const char *s, uint64_t default_unit, uint64_t *out)
{
    if (!s || !*s || isspace((unsigned char)*s) || *s == '-' || *s == '+')
        return -EINVAL;
    char *end;
    errno = 0;
    /* Integers are parsed exactly; a fraction ("1.5G") goes through double. */
    unsigned long long whole = strtoull(s, &end, 10);
    if (end == s || errno)
        return errno == ERANGE ? -ERANGE : -EINVAL;
    double frac = 0;
    if (*end == '.') {
        char *fend;
        frac = strtod(end, &fend);
        if (fend == end + 1)
            return -EINVAL;
        end = fend;
    }
    uint64_t unit;
    if (unit_shift(end, default_unit, &unit) < 0)
        return -EINVAL;
    if (whole > UINT64_MAX / unit)
        return -ERANGE;
    uint64_t v = whole * unit;
    if (frac > 0) {
        double extra = floor(frac * (double)unit);
        if (extra >= (double)(UINT64_MAX - v))
            return -ERANGE;
        v += (uint64_t)extra;
    }
    *out = v;
    return 0;
}

const char *size_format(uint64_t bytes, char *buf, unsigned len)
{
    static const char units[] = "BKMGTPE";
    unsigned i = 0;
    double v = (double)bytes;
    while (v >= 1024 && i < sizeof(units) - 2) {
        v /= 1024;
        i++;
    }
    if (i == 0)
        snprintf(buf, len, "%llu", (unsigned long long)bytes);
    else if (v == floor(v))
        snprintf(buf, len, "%.0f%c", v, units[i]);
    else
        snprintf(buf, len, "%.1f%c", v, units[i]);
    return buf;
}
