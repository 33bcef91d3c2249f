/* Size parsing and printing in qemu-img's conventions. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "img/blk.h"

int blk_parse_size(const char *s, uint64_t *out)
{
    static const char units[] = "BKMGTPE";
    if (!s || !*s || *s == '-' || isspace((unsigned char)*s))
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long whole = strtoull(s, &end, 10);
    if (errno || end == s)
        return -EINVAL;
    double frac = 0;
    if (*end == '.') {
        char *fend;
        frac = strtod(end, &fend);
        if (fend == end + 1)
            return -EINVAL;
        end = fend;
    }
    int shift = 0;
    if (*end) {
        const char *u = strchr(units, toupper((unsigned char)*end));
        if (!u || end[1])
            return -EINVAL;
        shift = (int)(u - units) * 10;
        end++;
    }
    if (frac != 0 && shift == 0)
        return -EINVAL;     /* fractional bytes make no sense */
    if (shift && whole > (UINT64_MAX >> shift))
        return -ERANGE;
    uint64_t v = (uint64_t)whole << shift;
    if (frac != 0) {
        double f = frac * (double)(1ULL << shift);
        if ((double)(UINT64_MAX - v) < f)
            return -ERANGE;
        v += (uint64_t)f;
    }
    /* qemu-img keeps sizes within int64 */
    if (v > (uint64_t)INT64_MAX)
        return -ERANGE;
    *out = v;
    return 0;
}

void blk_format_size(uint64_t v, char *out, size_t n)
{
    static const char *const names[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    int i = 0;
    double d = (double)v;
    /* Switch unit once the value would print as 1000 or more, so sizes
     * read like "0.977 MiB" instead of "1e+03 KiB". */
    while (i < 6 && d >= 1000.0) {
        d /= 1024.0;
        i++;
    }
    snprintf(out, n, "%0.3g %s", d, names[i]);
}
