/* CMOS real-time clock: status registers, field ranges in every data mode
 * register B offers, the date against date=YYYY-MM-DD from the host, and a
 * clock that ticks. */
#include "kit.h"

struct rtc_time {
    int sec, min, hour, mday, mon, year, wday;
};

static uint8_t century_reg = 0x32;

static bool bcd_ok(uint8_t v)
{
    return (v & 0x0f) <= 9 && (v >> 4) <= 9;
}

static int from_bcd(uint8_t v)
{
    return (v >> 4) * 10 + (v & 0x0f);
}

/* Reads the clock in whatever mode register B selects, retrying until two
 * reads agree so an update cannot tear it. False if a field is malformed. */
static bool rtc_read(struct rtc_time *t, char *why, size_t wsz)
{
    static const uint8_t regs[8] = { 0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0 };
    uint8_t a[8], b[8];
    int tries = 0;
    do {
        for (int i = 0; i < 1000 && (cmos_read(0x0a) & 0x80); i++)
            cpu_relax();
        for (int i = 0; i < 8; i++)
            a[i] = cmos_read(i < 7 ? regs[i] : century_reg);
        for (int i = 0; i < 8; i++)
            b[i] = cmos_read(i < 7 ? regs[i] : century_reg);
    } while (memcmp(a, b, sizeof(a)) && ++tries < 5);
    uint8_t mode = cmos_read(0x0b);
    bool binary = mode & 0x04, h24 = mode & 0x02;
    uint8_t hour = a[2] & (h24 ? 0xff : 0x7f);
    bool pm = !h24 && (a[2] & 0x80);
    if (!binary) {
        for (int i = 0; i < 8; i++) {
            if (!bcd_ok(i == 2 ? hour : a[i])) {
                kit_snprintf(why, wsz, "register 0x%x = 0x%x is not BCD", i < 7 ? regs[i] : century_reg, a[i]);
                return false;
            }
        }
    }
    int v[8];
    for (int i = 0; i < 8; i++)
        v[i] = binary ? a[i] : from_bcd(a[i]);
    v[2] = binary ? hour : from_bcd(hour);
    if (!h24) {
        if (v[2] < 1 || v[2] > 12) {
            kit_snprintf(why, wsz, "12-hour mode hour %d", v[2]);
            return false;
        }
        v[2] = v[2] % 12 + (pm ? 12 : 0);
    }
    t->sec = v[0], t->min = v[1], t->hour = v[2], t->wday = v[3];
    t->mday = v[4], t->mon = v[5], t->year = v[7] * 100 + v[6];
    return true;
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int y, int m)
{
    static const uint8_t d[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return d[m - 1] + (m == 2 && leap(y));
}

/* Days since 1970-01-01; callers have range-checked the date. */
static int32_t day_number(int y, int m, int d)
{
    int32_t n = 0;
    for (int i = 1970; i < y; i++)
        n += leap(i) ? 366 : 365;
    for (int i = 1; i < m; i++)
        n += month_days(y, i);
    return n + d - 1;
}

static bool fields_ok(const struct rtc_time *t, char *why, size_t wsz)
{
    if (t->year < 1970 || t->year > 2199 || t->mon < 1 || t->mon > 12 ||
        t->mday < 1 || t->mday > month_days(t->year, t->mon) || t->hour > 23 ||
        t->min > 59 || t->sec > 59 || t->wday < 1 || t->wday > 7) {
        kit_snprintf(why, wsz, "%04d-%02d-%02d %02d:%02d:%02d weekday %d", t->year, t->mon,
                     t->mday, t->hour, t->min, t->sec, t->wday);
        return false;
    }
    return true;
}

static uint32_t epoch(const struct rtc_time *t)
{
    return (uint32_t)day_number(t->year, t->mon, t->mday) * 86400u +
           (uint32_t)(t->hour * 3600 + t->min * 60 + t->sec);
}

static bool parse_date(const char *s, int *y, int *m, int *d)
{
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    int v[3] = { 0, 0, 0 }, idx = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '-') {
            idx++;
            continue;
        }
        if (*p < '0' || *p > '9')
            return false;
        v[idx] = v[idx] * 10 + (*p - '0');
    }
    *y = v[0], *m = v[1], *d = v[2];
    return *y >= 1970 && *y <= 2199 && *m >= 1 && *m <= 12 && *d >= 1 &&
           *d <= month_days(*y, *m);
}

/* Reads the clock in all four data modes; they must agree within 2 s. */
static void check_modes(void)
{
    uint8_t b = cmos_read(0x0b);
    uint32_t lo = 0xffffffffu, hi = 0;
    char why[80] = "";
    bool ok = true;
    for (int mode = 0; mode < 4 && ok; mode++) {
        uint8_t nb = (uint8_t)((b & ~0x06) | (mode & 1 ? 0x04 : 0) | (mode & 2 ? 0x02 : 0));
        cmos_write(0x0b, nb);
        struct rtc_time t;
        ok = rtc_read(&t, why, sizeof(why)) && fields_ok(&t, why, sizeof(why));
        if (ok) {
            uint32_t e = epoch(&t);
            lo = e < lo ? e : lo;
            hi = e > hi ? e : hi;
        } else {
            tap_diag("register B 0x%x: %s", nb, why);
        }
    }
    cmos_write(0x0b, b);
    tap_check(ok && hi - lo <= 2, "same time in BCD/binary and 12/24-hour modes",
              "%s spread %u s", why, hi - lo);
}

static void check_ticking(void)
{
    struct acpi_info ai;
    char why[80];
    acpi_parse(&ai, why, sizeof(why));
    bool ticker = ticker_start(&ai, 100);
    struct rtc_time t0, t;
    bool ok = rtc_read(&t0, why, sizeof(why));
    t = t0;
    int waited = 0;
    /* Up to 3 s of guest time, sampling every 100 ms. */
    for (; ok && waited < 30 && t.sec == t0.sec; waited++) {
        if (ticker)
            ticker_wait(10);
        else
            pit_delay_us(100000);
        if (!rtc_read(&t, why, sizeof(why)))
            break;
    }
    if (ticker)
        ticker_stop();
    tap_check(ok && t.sec != t0.sec, "seconds advance", "still %d after %d00 ms", t.sec, waited);
}

void kit_main(void)
{
    tap_plan(9);
    struct acpi_info ai;
    char why[80];
    acpi_parse(&ai, why, sizeof(why));
    if (ai.century)
        century_reg = ai.century;
    uint8_t ra = cmos_read(0x0a), rb = cmos_read(0x0b), rd = cmos_read(0x0d);
    tap_diag("register A 0x%x B 0x%x D 0x%x, century in 0x%x", ra, rb, rd, century_reg);
    tap_check(rd & 0x80, "register D: valid RAM and time", "D = 0x%x", rd);
    tap_check((ra & 0x70) == 0x20, "register A: 32.768 kHz time base", "A = 0x%x", ra);
    tap_check(!(rb & 0x80), "register B: clock not halted for setting", "B = 0x%x", rb);
    struct rtc_time t;
    bool ok = rtc_read(&t, why, sizeof(why)) && fields_ok(&t, why, sizeof(why));
    tap_check(ok, "time and date fields valid", "%s", why);
    tap_diag("RTC %04d-%02d-%02d %02d:%02d:%02d weekday %d", t.year, t.mon, t.mday, t.hour,
             t.min, t.sec, t.wday);
    int32_t days = ok ? day_number(t.year, t.mon, t.mday) : 0;
    /* 1970-01-01 was a Thursday; the RTC counts Sunday as 1. */
    tap_check(ok && t.wday == (days + 4) % 7 + 1, "day of week matches the date",
              "weekday %d, expected %d", t.wday, (int)((days + 4) % 7 + 1));
    char date[16];
    int y, m, d;
    bool have = cmdline_get("date", date, sizeof(date)) && parse_date(date, &y, &m, &d);
    tap_check(have, "command line has date=YYYY-MM-DD", "cmdline \"%s\"", kit_boot_info.cmdline);
    int32_t diff = have && ok ? days - day_number(y, m, d) : 99;
    /* The host may cross midnight between passing date= and this read. */
    tap_check(diff >= -1 && diff <= 1, "RTC date equals date= (within a day)",
              "RTC %04d-%02d-%02d, date=%s", t.year, t.mon, t.mday, have ? date : "?");
    check_modes();
    check_ticking();
}
