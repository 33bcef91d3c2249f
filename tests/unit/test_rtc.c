/* The MC146818 model. The device source is compiled into this program so the
 * test can drive its clock; the VM functions it calls are recorders. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../src/vmm/hw/rtc.c"

static int irq_level = 0;
static int irq_calls = 0;

int vm_irq_line(struct vm *vm, unsigned gsi, int level)
{
    assert_int_equal(gsi, LAYOUT_IRQ_RTC);
    assert_int_not_equal(level, irq_level);
    irq_level = level;
    irq_calls++;
    return 0;
}

void vm_request_exit(struct vm *vm, enum vm_exit_reason reason, const char *fmt, ...) { fail(); }

static struct timespec fake_now;

static int fake_clock(clockid_t id, struct timespec *ts)
{
    assert_int_equal(id, CLOCK_REALTIME);
    *ts = fake_now;
    return 0;
}

static void set_fake_time(int year, int mon, int mday, int h, int m, int s, long nsec)
{
    struct tm tm = { .tm_year = year - 1900, .tm_mon = mon - 1, .tm_mday = mday,
                     .tm_hour = h, .tm_min = m, .tm_sec = s };
    fake_now.tv_sec = timegm(&tm);
    fake_now.tv_nsec = nsec;
}

static void advance_ns(long long ns)
{
    long long t = fake_now.tv_nsec + ns;
    fake_now.tv_sec += t / NSEC;
    fake_now.tv_nsec = t % NSEC;
}

struct fixture {
    struct vm vm;
    struct rtc *dev;
};

static struct fixture fx;

static void fixture_init(struct fixture *f, uint64_t ram)
{
    memset(f, 0, sizeof(*f));
    iobus_init(&f->vm.pio);
    f->vm.ram_size = ram;
    irq_level = irq_calls = 0;
    struct err e = { 0 };
    void *dev;
    assert_int_equal(rtc_dev_ops.create(&f->vm, &dev, &e), 0);
    f->dev = dev;
}

static int setup(void **state)
{
    rtc_clock = fake_clock;
    set_fake_time(2024, 3, 9, 13, 45, 7, 0);   /* a Saturday */
    fixture_init(&fx, 512ULL << 20);
    *state = &fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    rtc_dev_ops.destroy(f->dev);
    assert_int_equal(f->vm.pio.n, 0);
    iobus_destroy(&f->vm.pio);
    rtc_clock = clock_gettime;
    return 0;
}

static uint8_t cmos_rd(struct fixture *f, uint8_t reg)
{
    uint8_t v;
    assert_true(iobus_write(&f->vm.pio, LAYOUT_PORT_RTC, &reg, 1));
    assert_true(iobus_read(&f->vm.pio, LAYOUT_PORT_RTC + 1, &v, 1));
    return v;
}

static void cmos_wr(struct fixture *f, uint8_t reg, uint8_t v)
{
    assert_true(iobus_write(&f->vm.pio, LAYOUT_PORT_RTC, &reg, 1));
    assert_true(iobus_write(&f->vm.pio, LAYOUT_PORT_RTC + 1, &v, 1));
}

static void test_bcd_24h(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(cmos_rd(f, REG_B) & (B_DM | B_24H), B_24H);
    assert_int_equal(cmos_rd(f, REG_SEC), 0x07);
    assert_int_equal(cmos_rd(f, REG_MIN), 0x45);
    assert_int_equal(cmos_rd(f, REG_HOUR), 0x13);
    assert_int_equal(cmos_rd(f, REG_WDAY), 7);
    assert_int_equal(cmos_rd(f, REG_MDAY), 0x09);
    assert_int_equal(cmos_rd(f, REG_MONTH), 0x03);
    assert_int_equal(cmos_rd(f, REG_YEAR), 0x24);
    assert_int_equal(cmos_rd(f, REG_CENTURY), 0x20);
    assert_int_equal(cmos_rd(f, REG_D), D_VRT);
}

static void test_binary(void **state)
{
    struct fixture *f = *state;
    cmos_wr(f, REG_B, B_24H | B_DM);
    assert_int_equal(cmos_rd(f, REG_SEC), 7);
    assert_int_equal(cmos_rd(f, REG_MIN), 45);
    assert_int_equal(cmos_rd(f, REG_HOUR), 13);
    assert_int_equal(cmos_rd(f, REG_YEAR), 24);
    assert_int_equal(cmos_rd(f, REG_CENTURY), 20);
    advance_ns(3 * NSEC);
    assert_int_equal(cmos_rd(f, REG_SEC), 10);
}

static void test_12h(void **state)
{
    struct fixture *f = *state;
    cmos_wr(f, REG_B, 0);                    /* BCD, 12-hour */
    assert_int_equal(cmos_rd(f, REG_HOUR), 0x80 | 0x01);
    set_fake_time(2024, 3, 9, 0, 30, 0, 0);
    assert_int_equal(cmos_rd(f, REG_HOUR), 0x12);          /* 12 AM */
    set_fake_time(2024, 3, 9, 12, 30, 0, 0);
    assert_int_equal(cmos_rd(f, REG_HOUR), 0x80 | 0x12);   /* 12 PM */
    set_fake_time(2024, 3, 9, 23, 30, 0, 0);
    assert_int_equal(cmos_rd(f, REG_HOUR), 0x80 | 0x11);
    cmos_wr(f, REG_B, B_DM);                 /* binary, 12-hour */
    assert_int_equal(cmos_rd(f, REG_HOUR), 0x80 | 11);
    set_fake_time(2024, 3, 9, 10, 30, 0, 0);
    assert_int_equal(cmos_rd(f, REG_HOUR), 10);
}

static void test_set_time_with_set_bit(void **state)
{
    struct fixture *f = *state;
    cmos_wr(f, REG_B, B_SET | B_24H);
    /* Frozen while SET is held. */
    uint8_t sec = cmos_rd(f, REG_SEC);
    advance_ns(5 * NSEC);
    assert_int_equal(cmos_rd(f, REG_SEC), sec);
    assert_int_equal(cmos_rd(f, REG_A) & A_UIP, 0);
    cmos_wr(f, REG_SEC, 0x58);
    cmos_wr(f, REG_MIN, 0x59);
    cmos_wr(f, REG_HOUR, 0x23);
    cmos_wr(f, REG_MDAY, 0x31);
    cmos_wr(f, REG_MONTH, 0x12);
    cmos_wr(f, REG_YEAR, 0x99);
    cmos_wr(f, REG_CENTURY, 0x19);
    cmos_wr(f, REG_B, B_24H);
    assert_int_equal(cmos_rd(f, REG_SEC), 0x58);
    assert_int_equal(cmos_rd(f, REG_YEAR), 0x99);
    assert_int_equal(cmos_rd(f, REG_WDAY), 6);   /* 1999-12-31 was a Friday */
    /* Runs on with the host clock, across the century. */
    advance_ns(3 * NSEC);
    assert_int_equal(cmos_rd(f, REG_SEC), 0x01);
    assert_int_equal(cmos_rd(f, REG_MIN), 0x00);
    assert_int_equal(cmos_rd(f, REG_HOUR), 0x00);
    assert_int_equal(cmos_rd(f, REG_MDAY), 0x01);
    assert_int_equal(cmos_rd(f, REG_MONTH), 0x01);
    assert_int_equal(cmos_rd(f, REG_YEAR), 0x00);
    assert_int_equal(cmos_rd(f, REG_CENTURY), 0x20);
}

static void test_set_hour_12h_binary(void **state)
{
    struct fixture *f = *state;
    cmos_wr(f, REG_B, B_SET | B_DM);
    cmos_wr(f, REG_HOUR, 0x80 | 11);   /* 11 PM */
    cmos_wr(f, REG_B, B_DM);
    cmos_wr(f, REG_B, B_DM | B_24H);
    assert_int_equal(cmos_rd(f, REG_HOUR), 23);
    assert_int_equal(cmos_rd(f, REG_MIN), 45);
}

static void test_write_without_set(void **state)
{
    struct fixture *f = *state;
    cmos_wr(f, REG_MIN, 0x10);
    assert_int_equal(cmos_rd(f, REG_MIN), 0x10);
    assert_int_equal(cmos_rd(f, REG_HOUR), 0x13);
    assert_int_equal(cmos_rd(f, REG_SEC), 0x07);
}

static void test_uip(void **state)
{
    struct fixture *f = *state;
    fake_now.tv_nsec = 500000000;
    assert_int_equal(cmos_rd(f, REG_A) & A_UIP, 0);
    fake_now.tv_nsec = NSEC - UIP_NS - 1000;
    assert_int_equal(cmos_rd(f, REG_A) & A_UIP, 0);
    fake_now.tv_nsec = NSEC - 200000;
    assert_int_equal(cmos_rd(f, REG_A), A_UIP | 0x26);
    /* UIP is read-only. */
    cmos_wr(f, REG_A, 0xa6);
    fake_now.tv_nsec = 0;
    assert_int_equal(cmos_rd(f, REG_A), 0x26);
}

static void test_update_flag_and_irq(void **state)
{
    struct fixture *f = *state;
    cmos_wr(f, REG_A, 0x20);               /* no periodic flag */
    assert_int_equal(cmos_rd(f, REG_C), 0);
    advance_ns(NSEC);
    /* The flag sets without the interrupt enabled, and reading clears it. */
    assert_int_equal(cmos_rd(f, REG_C), C_UF);
    assert_int_equal(cmos_rd(f, REG_C), 0);
    assert_int_equal(irq_calls, 0);
    cmos_wr(f, REG_B, B_24H | B_UIE);
    advance_ns(NSEC / 2);
    rtc_timer_fired(f->dev, EPOLLIN);
    assert_int_equal(irq_level, 0);
    advance_ns(NSEC / 2);
    rtc_timer_fired(f->dev, EPOLLIN);
    assert_int_equal(irq_level, 1);
    assert_int_equal(cmos_rd(f, REG_C), C_IRQF | C_UF);
    assert_int_equal(irq_level, 0);
}

static void test_periodic_flag(void **state)
{
    struct fixture *f = *state;
    (void)cmos_rd(f, REG_C);
    cmos_wr(f, REG_A, 0x26);              /* 1024 Hz */
    cmos_wr(f, REG_B, B_24H | B_PIE);
    advance_ns(500000);                    /* half a period */
    rtc_timer_fired(f->dev, EPOLLIN);
    assert_int_equal(irq_level, 0);
    advance_ns(500000);
    rtc_timer_fired(f->dev, EPOLLIN);
    assert_int_equal(irq_level, 1);
    assert_int_equal(cmos_rd(f, REG_C), C_IRQF | C_PF);
    /* Rate select 0 stops it. */
    cmos_wr(f, REG_A, 0x20);
    advance_ns(2000000);
    assert_int_equal(cmos_rd(f, REG_C) & C_PF, 0);
}

static void test_alarm(void **state)
{
    struct fixture *f = *state;
    cmos_wr(f, REG_A, 0x20);               /* no periodic flag */
    (void)cmos_rd(f, REG_C);
    cmos_wr(f, REG_SEC_ALARM, 0x09);
    cmos_wr(f, REG_MIN_ALARM, 0x45);
    cmos_wr(f, REG_HOUR_ALARM, ALARM_DONT_CARE);
    cmos_wr(f, REG_B, B_24H | B_AIE);
    advance_ns(NSEC);                      /* :08 */
    rtc_timer_fired(f->dev, EPOLLIN);
    assert_int_equal(irq_level, 0);
    advance_ns(NSEC);                      /* :09 */
    rtc_timer_fired(f->dev, EPOLLIN);
    assert_int_equal(irq_level, 1);
    assert_int_equal(cmos_rd(f, REG_C), C_IRQF | C_AF | C_UF);
    advance_ns(NSEC);
    assert_int_equal(cmos_rd(f, REG_C), C_UF);
}

static void test_cmos_ram_survives_reset(void **state)
{
    struct fixture *f = *state;
    cmos_wr(f, 0x0e | 0x80, 0xa5);         /* NMI mask bit is not address */
    cmos_wr(f, 0x7f, 0x5a);
    assert_int_equal(cmos_rd(f, 0x0e), 0xa5);
    cmos_wr(f, REG_B, B_SET | B_24H);
    cmos_wr(f, REG_YEAR, 0x31);
    cmos_wr(f, REG_B, B_24H | B_PIE | B_UIE);
    advance_ns(NSEC);
    rtc_timer_fired(f->dev, EPOLLIN);
    assert_int_equal(irq_level, 1);
    rtc_dev_ops.reset(f->dev);
    irq_level = 0;   /* a reset comes with a new irqchip */
    assert_int_equal(cmos_rd(f, 0x0e), 0xa5);
    assert_int_equal(cmos_rd(f, 0x7f), 0x5a);
    assert_int_equal(cmos_rd(f, REG_B), B_24H);
    assert_int_equal(cmos_rd(f, REG_C), 0);
    assert_int_equal(cmos_rd(f, REG_YEAR), 0x31);   /* the clock is battery backed */
}

static uint64_t rd16(struct fixture *f, uint8_t reg)
{
    return cmos_rd(f, reg) | (uint64_t)cmos_rd(f, reg + 1) << 8;
}

static uint64_t min16(uint64_t v) { return v > 0xffff ? 0xffff : v; }

static void test_memory_size_low(void **state)
{
    struct fixture *f = *state;
    uint64_t ram = f->vm.ram_size;
    assert_int_equal(rd16(f, 0x15), 640);
    assert_int_equal(rd16(f, 0x17), min16((ram - (1 << 20)) / 1024));
    assert_int_equal(rd16(f, 0x30), min16((ram - (1 << 20)) / 1024));
    assert_int_equal(rd16(f, 0x34), (ram - (16 << 20)) / 65536);
    assert_int_equal(cmos_rd(f, 0x5b) | cmos_rd(f, 0x5c) | cmos_rd(f, 0x5d), 0);
}

static void test_memory_size_slots(void **state)
{
    struct fixture f;
    memset(&f, 0, sizeof(f));
    iobus_init(&f.vm.pio);
    f.vm.ram_size = 4ULL << 30;
    f.vm.nslots = 2;
    f.vm.slots[0] = (struct mem_slot){ 0, LAYOUT_MMIO_HOLE_START, NULL };
    f.vm.slots[1] = (struct mem_slot){ LAYOUT_4G, (4ULL << 30) - LAYOUT_MMIO_HOLE_START, NULL };
    void *dev;
    struct err e = { 0 };
    assert_int_equal(rtc_dev_ops.create(&f.vm, &dev, &e), 0);
    assert_int_equal(rd16(&f, 0x34), (LAYOUT_MMIO_HOLE_START - (16 << 20)) >> 16);
    uint64_t high = cmos_rd(&f, 0x5b) | cmos_rd(&f, 0x5c) << 8 | (uint64_t)cmos_rd(&f, 0x5d) << 16;
    assert_int_equal(high, f.vm.slots[1].size >> 16);
    rtc_dev_ops.destroy(dev);
    iobus_destroy(&f.vm.pio);
}

static void test_memory_size_without_slots_above_4g(void **state)
{
    struct fixture f;
    memset(&f, 0, sizeof(f));
    iobus_init(&f.vm.pio);
    f.vm.ram_size = 6ULL << 30;
    void *dev;
    struct err e = { 0 };
    assert_int_equal(rtc_dev_ops.create(&f.vm, &dev, &e), 0);
    assert_int_equal(rd16(&f, 0x34), (LAYOUT_MMIO_HOLE_START - (16 << 20)) >> 16);
    uint64_t high = cmos_rd(&f, 0x5b) | cmos_rd(&f, 0x5c) << 8 | (uint64_t)cmos_rd(&f, 0x5d) << 16;
    assert_int_equal(high, (f.vm.ram_size - LAYOUT_MMIO_HOLE_START) >> 16);
    rtc_dev_ops.destroy(dev);
    iobus_destroy(&f.vm.pio);
}

/* The real clock and timerfd: an update-ended interrupt arrives through
 * the event loop within about a second. */
static void test_update_irq_through_event_loop(void **state)
{
    struct fixture f;
    memset(&f, 0, sizeof(f));
    iobus_init(&f.vm.pio);
    f.vm.ram_size = 64ULL << 20;
    f.vm.loop = evloop_new();
    assert_non_null(f.vm.loop);
    irq_level = irq_calls = 0;
    void *dev;
    struct err e = { 0 };
    assert_int_equal(rtc_dev_ops.create(&f.vm, &dev, &e), 0);
    (void)cmos_rd(&f, REG_C);
    cmos_wr(&f, REG_B, B_24H | B_UIE);
    for (int i = 0; i < 30 && !irq_level; i++)
        evloop_run_once(f.vm.loop, 100);
    assert_int_equal(irq_level, 1);
    assert_int_equal(cmos_rd(&f, REG_C) & (C_IRQF | C_UF), C_IRQF | C_UF);
    assert_int_equal(irq_level, 0);
    rtc_dev_ops.destroy(dev);
    evloop_free(f.vm.loop);
    iobus_destroy(&f.vm.pio);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_bcd_24h),
        T(test_binary),
        T(test_12h),
        T(test_set_time_with_set_bit),
        T(test_set_hour_12h_binary),
        T(test_write_without_set),
        T(test_uip),
        T(test_update_flag_and_irq),
        T(test_periodic_flag),
        T(test_alarm),
        T(test_cmos_ram_survives_reset),
        T(test_memory_size_low),
        cmocka_unit_test(test_memory_size_slots),
        cmocka_unit_test(test_memory_size_without_slots_above_4g),
        cmocka_unit_test(test_update_irq_through_event_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
