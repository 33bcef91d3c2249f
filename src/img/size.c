/* Size parsing and printing in qemu-img's conventions. */
#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "img/blk.h"
#include "util/size.h"

/* The parsing is util's; qemu-img is stricter in two ways: at most one
 * unit letter ("1M", not "1MiB"), and no fraction of a byte ("1.5" with no
 * unit, or "1.5B"). It also keeps sizes within int64. */
int blk_parse_size(const char *s, uint64_t *out)
{
    if (!s || !*s)
        return -EINVAL;
    size_t n = strlen(s);
    bool unit = isalpha((unsigned char)s[n - 1]);
    if (unit && n > 1 && isalpha((unsigned char)s[n - 2]))
        return -EINVAL;
    if (strchr(s, '.') && (!unit || toupper((unsigned char)s[n - 1]) == 'B'))
        return -EINVAL;
    uint64_t v;
    int r = size_parse(s, 1, &v);
    if (r < 0)
        return r;
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
