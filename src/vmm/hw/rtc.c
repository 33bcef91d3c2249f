/* MC146818 real-time clock and CMOS RAM at ports 0x70/0x71.
 *
 * The clock is not stepped by a timer: every read of a time register
 * converts the host's UTC clock plus a per-VM offset (in whole seconds, so
 * the guest's seconds tick with the host's). Setting the time (with or
 * without register B's SET bit) only changes that offset. The status flags
 * of register C are likewise brought up to date from the clock whenever they
 * are looked at; a timerfd on the event loop does so at the next second or
 * periodic boundary only while an enabled interrupt is waiting to fire.
 *
 * CMOS RAM is battery backed: it and the time offset survive a guest reset;
 * only the interrupt enables and flags go back to their reset state. */
#include "hw/platform.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "snapshot/stream.h"
#include "util/evloop.h"
#include "util/log.h"
#include "vm.h"
#include "x86/layout.h"

enum {
    REG_SEC = 0x00, REG_SEC_ALARM = 0x01, REG_MIN = 0x02, REG_MIN_ALARM = 0x03,
    REG_HOUR = 0x04, REG_HOUR_ALARM = 0x05, REG_WDAY = 0x06, REG_MDAY = 0x07,
    REG_MONTH = 0x08, REG_YEAR = 0x09, REG_A = 0x0a, REG_B = 0x0b, REG_C = 0x0c,
    REG_D = 0x0d, REG_CENTURY = 0x32,
};

#define A_UIP   0x80
#define A_RS    0x0f
#define B_SET   0x80
#define B_PIE   0x40
#define B_AIE   0x20
#define B_UIE   0x10
#define B_SQWE  0x08
#define B_DM    0x04   /* 1: binary, 0: BCD */
#define B_24H   0x02
#define C_IRQF  0x80
#define C_PF    0x40
#define C_AF    0x20
#define C_UF    0x10
#define D_VRT   0x80

#define HOUR_PM 0x80
#define ALARM_DONT_CARE 0xc0

#define CMOS_SIZE 128
#define TICK_HZ 32768         /* the time base the rate select divides */
#define UIP_NS  244141        /* UIP is high this long before each update */
#define NSEC 1000000000LL

/* Host UTC; the unit test replaces it to control time. */
static int (*rtc_clock)(clockid_t, struct timespec *) = clock_gettime;

struct rtc {
    pthread_mutex_t lock;
    struct vm *vm;
    uint8_t cmos[CMOS_SIZE];  /* RAM, alarms, A, B; time bytes while SET */
    uint8_t index;
    uint8_t flags;            /* register C's PF, AF, UF */
    int64_t offset;           /* guest seconds minus host seconds */
    struct timespec last;     /* host time the flags were brought up to */
    int timerfd;
    bool irq_level;
};

static struct timespec rtc_now(void)
{
    struct timespec ts;
    rtc_clock(CLOCK_REALTIME, &ts);
    return ts;
}

static uint8_t rtc_to_reg(const struct rtc *r, unsigned v)
{
    if (r->cmos[REG_B] & B_DM)
        return (uint8_t)v;
    return (uint8_t)(((v / 10) % 10) << 4 | v % 10);
}

static unsigned rtc_from_reg(const struct rtc *r, uint8_t v)
{
    if (r->cmos[REG_B] & B_DM)
        return v;
    return (v >> 4) * 10 + (v & 0x0f);
}

static uint8_t rtc_hour_to_reg(const struct rtc *r, unsigned h)
{
    if (r->cmos[REG_B] & B_24H)
        return rtc_to_reg(r, h);
    unsigned h12 = h % 12 ? h % 12 : 12;
    return rtc_to_reg(r, h12) | (h >= 12 ? HOUR_PM : 0);
}

static unsigned rtc_hour_from_reg(const struct rtc *r, uint8_t v)
{
    if (r->cmos[REG_B] & B_24H)
        return rtc_from_reg(r, v);
    return rtc_from_reg(r, v & ~HOUR_PM) % 12 + (v & HOUR_PM ? 12 : 0);
}

static bool rtc_is_time_reg(unsigned reg)
{
    return reg == REG_SEC || reg == REG_MIN || reg == REG_HOUR ||
           (reg >= REG_WDAY && reg <= REG_YEAR) || reg == REG_CENTURY;
}

static uint8_t rtc_encode(const struct rtc *r, const struct tm *tm, unsigned reg)
{
    unsigned year = (unsigned)tm->tm_year + 1900;
    switch (reg) {
    case REG_SEC:     return rtc_to_reg(r, tm->tm_sec);
    case REG_MIN:     return rtc_to_reg(r, tm->tm_min);
    case REG_HOUR:    return rtc_hour_to_reg(r, tm->tm_hour);
    case REG_WDAY:    return rtc_to_reg(r, tm->tm_wday + 1);
    case REG_MDAY:    return rtc_to_reg(r, tm->tm_mday);
    case REG_MONTH:   return rtc_to_reg(r, tm->tm_mon + 1);
    case REG_YEAR:    return rtc_to_reg(r, year % 100);
    case REG_CENTURY: return rtc_to_reg(r, year / 100);
    }
    return 0;
}

static void rtc_guest_tm(const struct rtc *r, const struct timespec *now, struct tm *tm)
{
    time_t t = (time_t)(now->tv_sec + r->offset);
    gmtime_r(&t, tm);
}

/* Freezes the current time into the time bytes, as SET does. */
static void rtc_snapshot(struct rtc *r, const struct timespec *now)
{
    struct tm tm;
    rtc_guest_tm(r, now, &tm);
    static const uint8_t regs[] = { REG_SEC, REG_MIN, REG_HOUR, REG_WDAY, REG_MDAY,
                                    REG_MONTH, REG_YEAR, REG_CENTURY };
    for (unsigned i = 0; i < sizeof(regs); i++)
        r->cmos[regs[i]] = rtc_encode(r, &tm, regs[i]);
}

/* Makes the time bytes the current time. Out-of-range values from the guest
 * are normalised by timegm like any other date arithmetic. */
static void rtc_apply(struct rtc *r, const struct timespec *now)
{
    unsigned yy = rtc_from_reg(r, r->cmos[REG_YEAR]) % 100;
    unsigned century = rtc_from_reg(r, r->cmos[REG_CENTURY]);
    if (century < 19 || century > 99)
        century = yy < 70 ? 20 : 19;
    struct tm tm = {
        .tm_sec = (int)rtc_from_reg(r, r->cmos[REG_SEC]),
        .tm_min = (int)rtc_from_reg(r, r->cmos[REG_MIN]),
        .tm_hour = (int)rtc_hour_from_reg(r, r->cmos[REG_HOUR]),
        .tm_mday = (int)rtc_from_reg(r, r->cmos[REG_MDAY]),
        .tm_mon = (int)rtc_from_reg(r, r->cmos[REG_MONTH]) - 1,
        .tm_year = (int)(century * 100 + yy) - 1900,
    };
    time_t t = timegm(&tm);
    if (t == (time_t)-1) {
        log_warn("rtc: guest set an invalid date, clock unchanged");
        return;
    }
    r->offset = (int64_t)t - now->tv_sec;
}

static bool rtc_alarm_field(const struct rtc *r, uint8_t alarm, unsigned value, bool hour)
{
    if ((alarm & ALARM_DONT_CARE) == ALARM_DONT_CARE)
        return true;
    return (hour ? rtc_hour_from_reg(r, alarm) : rtc_from_reg(r, alarm)) == value;
}

/* Whether the alarm matches any guest second in (from, to]. */
static bool rtc_alarm_between(const struct rtc *r, int64_t from, int64_t to)
{
    if (to - from >= 86400)
        to = from + 86400;   /* every time of day has come round */
    for (int64_t s = from + 1; s <= to; s++) {
        time_t t = (time_t)(s + r->offset);
        struct tm tm;
        gmtime_r(&t, &tm);
        if (rtc_alarm_field(r, r->cmos[REG_SEC_ALARM], tm.tm_sec, false) &&
            rtc_alarm_field(r, r->cmos[REG_MIN_ALARM], tm.tm_min, false) &&
            rtc_alarm_field(r, r->cmos[REG_HOUR_ALARM], tm.tm_hour, true))
            return true;
    }
    return false;
}

/* Periodic interrupt period in 32768 Hz ticks, 0 when off. */
static int64_t rtc_period_ticks(const struct rtc *r)
{
    unsigned rs = r->cmos[REG_A] & A_RS;
    if (rs == 0)
        return 0;
    /* Rates 1 and 2 repeat rates 8 and 9 on a 32.768 kHz time base. */
    if (rs < 3)
        rs += 7;
    return 1LL << (rs - 1);
}

static int64_t rtc_ticks(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * TICK_HZ + (int64_t)ts->tv_nsec * TICK_HZ / NSEC;
}

/* Sets the flags for every update, alarm and periodic tick since the last
 * call; nothing updates while SET holds the clock. */
static void rtc_catch_up(struct rtc *r, const struct timespec *now)
{
    const struct timespec last = r->last;
    r->last = *now;
    if (r->cmos[REG_B] & B_SET)
        return;
    if (now->tv_sec > last.tv_sec) {
        r->flags |= C_UF;
        if (!(r->flags & C_AF) && rtc_alarm_between(r, last.tv_sec, now->tv_sec))
            r->flags |= C_AF;
    }
    int64_t p = rtc_period_ticks(r);
    if (p && rtc_ticks(now) / p > rtc_ticks(&last) / p)
        r->flags |= C_PF;
}

static uint8_t rtc_reg_c(const struct rtc *r)
{
    uint8_t enabled = r->cmos[REG_B] & (B_PIE | B_AIE | B_UIE);
    /* The enable bits of B line up with the flag bits of C. */
    return r->flags | ((r->flags & enabled) ? C_IRQF : 0);
}

static void rtc_update_irq(struct rtc *r)
{
    bool level = rtc_reg_c(r) & C_IRQF;
    if (level == r->irq_level)
        return;
    r->irq_level = level;
    vm_irq_line(r->vm, LAYOUT_IRQ_RTC, level);
}

/* Arms the timer for the next moment an enabled, not yet raised flag would
 * be set; disarms it when there is none. */
static void rtc_rearm(struct rtc *r, const struct timespec *now)
{
    if (r->timerfd < 0)
        return;
    uint8_t waiting = r->cmos[REG_B] & (B_PIE | B_AIE | B_UIE) & ~r->flags;
    struct itimerspec its = { 0 };
    if (!(r->cmos[REG_B] & B_SET)) {
        if (waiting & (B_AIE | B_UIE))
            its.it_value = (struct timespec){ now->tv_sec + 1, 0 };
        int64_t p = rtc_period_ticks(r);
        if ((waiting & B_PIE) && p) {
            int64_t next = (rtc_ticks(now) / p + 1) * p;
            /* Round up so the timer never fires just before the boundary. */
            struct timespec ts = { next / TICK_HZ,
                                   ((next % TICK_HZ) * NSEC + TICK_HZ - 1) / TICK_HZ };
            if (its.it_value.tv_sec == 0 || ts.tv_sec < its.it_value.tv_sec ||
                (ts.tv_sec == its.it_value.tv_sec && ts.tv_nsec < its.it_value.tv_nsec))
                its.it_value = ts;
        }
    }
    if (timerfd_settime(r->timerfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
        log_warn("rtc: cannot arm timer: %s", strerror(errno));
}

/* After any change to B, C or the clock. */
static void rtc_refresh(struct rtc *r, const struct timespec *now)
{
    rtc_update_irq(r);
    rtc_rearm(r, now);
}

static uint8_t rtc_read_reg(struct rtc *r, unsigned reg)
{
    struct timespec now = rtc_now();
    if (rtc_is_time_reg(reg) && !(r->cmos[REG_B] & B_SET)) {
        struct tm tm;
        rtc_guest_tm(r, &now, &tm);
        return rtc_encode(r, &tm, reg);
    }
    switch (reg) {
    case REG_A: {
        uint8_t v = r->cmos[REG_A] & ~A_UIP;
        if (!(r->cmos[REG_B] & B_SET) && now.tv_nsec >= NSEC - UIP_NS)
            v |= A_UIP;
        return v;
    }
    case REG_C: {
        rtc_catch_up(r, &now);
        uint8_t v = rtc_reg_c(r);
        r->flags = 0;
        rtc_refresh(r, &now);
        return v;
    }
    case REG_D:
        return D_VRT;
    default:
        return r->cmos[reg];
    }
}

static void rtc_write_b(struct rtc *r, uint8_t v, const struct timespec *now)
{
    uint8_t old = r->cmos[REG_B];
    rtc_catch_up(r, now);
    if (v & B_SET)
        v &= ~B_UIE;   /* the chip clears UIE while SET is held */
    r->cmos[REG_B] = v;
    /* Frozen in the format just chosen, so a guest switching format and
     * setting the time in one go reads back what it expects. */
    if ((v & B_SET) && !(old & B_SET))
        rtc_snapshot(r, now);
    if ((old & B_SET) && !(v & B_SET)) {
        rtc_apply(r, now);
        r->last = *now;
    }
    rtc_refresh(r, now);
}

static void rtc_write_reg(struct rtc *r, unsigned reg, uint8_t v)
{
    struct timespec now = rtc_now();
    if (rtc_is_time_reg(reg)) {
        if (r->cmos[REG_B] & B_SET) {
            r->cmos[reg] = v;
            return;
        }
        /* Without SET the new field takes effect at once. */
        rtc_catch_up(r, &now);
        rtc_snapshot(r, &now);
        r->cmos[reg] = v;
        rtc_apply(r, &now);
        return;
    }
    switch (reg) {
    case REG_A:
        rtc_catch_up(r, &now);
        r->cmos[REG_A] = v & ~A_UIP;
        rtc_refresh(r, &now);
        break;
    case REG_B:
        rtc_write_b(r, v, &now);
        break;
    case REG_C:
    case REG_D:
        break;   /* read-only */
    default:
        r->cmos[reg] = v;
        break;
    }
}

static void rtc_io_read(void *opaque, uint64_t offset, uint8_t *data, unsigned len)
{
    struct rtc *r = opaque;
    pthread_mutex_lock(&r->lock);
    for (unsigned i = 0; i < len; i++) {
        if (offset + i == 1)
            data[i] = rtc_read_reg(r, r->index);
        else
            data[i] = 0xff;   /* the index port is write-only */
    }
    pthread_mutex_unlock(&r->lock);
}

static void rtc_io_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned len)
{
    struct rtc *r = opaque;
    pthread_mutex_lock(&r->lock);
    for (unsigned i = 0; i < len && offset + i < 2; i++) {
        if (offset + i == 0)
            r->index = data[i] & 0x7f;   /* bit 7 is the NMI mask */
        else
            rtc_write_reg(r, r->index, data[i]);
    }
    pthread_mutex_unlock(&r->lock);
}

static const struct io_ops rtc_io_ops = {
    .read = rtc_io_read,
    .write = rtc_io_write,
};

static void rtc_timer_fired(void *opaque, uint32_t events)
{
    struct rtc *r = opaque;
    uint64_t expirations;
    ssize_t n = read(r->timerfd, &expirations, sizeof(expirations));
    (void)n;
    struct timespec now = rtc_now();
    pthread_mutex_lock(&r->lock);
    rtc_catch_up(r, &now);
    rtc_refresh(r, &now);
    pthread_mutex_unlock(&r->lock);
}

static void rtc_put16(uint8_t *cmos, unsigned reg, uint64_t v)
{
    if (v > 0xffff)
        v = 0xffff;
    cmos[reg] = (uint8_t)v;
    cmos[reg + 1] = (uint8_t)(v >> 8);
}

/* The memory sizes firmware-style consumers read from CMOS. */
static void rtc_fill_memory_size(struct rtc *r, const struct vm *vm)
{
    uint64_t low = 0, high = 0;
    if (vm->nslots > 0) {
        for (unsigned i = 0; i < vm->nslots && i < 2; i++) {
            if (vm->slots[i].gpa >= LAYOUT_4G)
                high += vm->slots[i].size;
            else
                low += vm->slots[i].size;
        }
    } else {
        low = vm->ram_size < LAYOUT_MMIO_HOLE_START ? vm->ram_size : LAYOUT_MMIO_HOLE_START;
        high = vm->ram_size - low;
    }
    rtc_put16(r->cmos, 0x15, 640);                        /* base memory, KiB */
    uint64_t ext_kib = low > (1u << 20) ? (low - (1u << 20)) >> 10 : 0;
    rtc_put16(r->cmos, 0x17, ext_kib);                    /* above 1 MiB, KiB */
    rtc_put16(r->cmos, 0x30, ext_kib);
    uint64_t above16 = low > (16u << 20) ? (low - (16u << 20)) >> 16 : 0;
    rtc_put16(r->cmos, 0x34, above16);                    /* 16 MiB..4 GiB, 64 KiB */
    uint64_t above4g = high >> 16;
    if (above4g > 0xffffff)
        above4g = 0xffffff;
    r->cmos[0x5b] = (uint8_t)above4g;
    r->cmos[0x5c] = (uint8_t)(above4g >> 8);
    r->cmos[0x5d] = (uint8_t)(above4g >> 16);
}

/* What the RESET pin clears; RAM, the clock and the data mode stay. */
static void rtc_reset(void *state)
{
    struct rtc *r = state;
    pthread_mutex_lock(&r->lock);
    struct timespec now = rtc_now();
    r->cmos[REG_B] &= ~(B_PIE | B_AIE | B_UIE | B_SQWE);
    r->flags = 0;
    r->last = now;
    r->index = 0;
    r->irq_level = false;   /* the irqchip is new after a reset */
    rtc_rearm(r, &now);
    pthread_mutex_unlock(&r->lock);
}

static void rtc_free(struct rtc *r)
{
    if (r->timerfd >= 0) {
        if (r->vm->loop)
            evloop_del(r->vm->loop, r->timerfd);
        close(r->timerfd);
    }
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static int rtc_create(struct vm *vm, void **state, struct err *e)
{
    struct rtc *r = calloc(1, sizeof(*r));
    if (!r)
        return err_set(e, ENOMEM, "out of memory");
    pthread_mutex_init(&r->lock, NULL);
    r->vm = vm;
    r->timerfd = -1;
    r->cmos[REG_A] = 0x26;           /* 32.768 kHz time base, 1024 Hz rate */
    r->cmos[REG_B] = B_24H;          /* BCD, 24-hour, as firmware leaves it */
    r->last = rtc_now();
    rtc_fill_memory_size(r, vm);
    int ret;
    if (vm->loop) {
        r->timerfd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
        if (r->timerfd < 0) {
            ret = err_set_errno(e, errno, "timerfd_create");
            goto fail;
        }
        ret = evloop_add(vm->loop, r->timerfd, EPOLLIN, rtc_timer_fired, r);
        if (ret < 0) {
            close(r->timerfd);
            r->timerfd = -1;
            err_set_errno(e, -ret, "cannot watch the RTC timer");
            goto fail;
        }
    }
    ret = iobus_register(&vm->pio, LAYOUT_PORT_RTC, 2, &rtc_io_ops, r, "rtc");
    if (ret < 0) {
        err_set(e, -ret, "cannot register ports 0x%x-0x%x", LAYOUT_PORT_RTC,
                LAYOUT_PORT_RTC + 1);
        goto fail;
    }
    *state = r;
    return 0;
fail:
    rtc_free(r);
    return ret;
}

static void rtc_destroy(void *state)
{
    struct rtc *r = state;
    if (!r)
        return;
    iobus_unregister(&r->vm->pio, LAYOUT_PORT_RTC);
    rtc_free(r);
}

/* The offset is saved, not the time: the RTC shows host time plus the
 * guest's offset, so after a restore it has moved on like a battery-backed
 * clock in a machine that was switched off. */
static void rtc_save(void *state, struct snapbuf *b)
{
    struct rtc *r = state;
    pthread_mutex_lock(&r->lock);
    snapbuf_put(b, r->cmos, CMOS_SIZE);
    snapbuf_put_u8(b, r->index);
    snapbuf_put_u8(b, r->flags);
    snapbuf_put_u64(b, (uint64_t)r->offset);
    pthread_mutex_unlock(&r->lock);
}

static int rtc_load(void *state, struct snapbuf *b, struct err *e)
{
    struct rtc *r = state;
    uint8_t cmos[CMOS_SIZE];
    snapbuf_get(b, cmos, CMOS_SIZE);
    uint8_t index = snapbuf_get_u8(b);
    uint8_t flags = snapbuf_get_u8(b);
    int64_t offset = (int64_t)snapbuf_get_u64(b);
    if (b->short_read)
        return err_set(e, EINVAL, "state truncated");
    pthread_mutex_lock(&r->lock);
    memcpy(r->cmos, cmos, CMOS_SIZE);
    r->index = index % CMOS_SIZE;
    r->flags = flags & (B_PIE | B_AIE | B_UIE);
    r->offset = offset;
    struct timespec now = rtc_now();
    r->last = now;
    r->irq_level = false;
    rtc_refresh(r, &now);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

const struct platform_dev_ops rtc_dev_ops = {
    .name = "rtc",
    .create = rtc_create,
    .reset = rtc_reset,
    .destroy = rtc_destroy,
    .save = rtc_save,
    .load = rtc_load,
};
