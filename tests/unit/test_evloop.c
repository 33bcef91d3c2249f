/* The event loop: callbacks, removal during a turn, reuse of a descriptor
 * number within one turn, and more watches than the old fixed table. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/evloop.h"

struct hit {
    int calls;
    uint32_t events;
};

static void count_cb(void *opaque, uint32_t events)
{
    struct hit *h = opaque;
    h->calls++;
    h->events = events;
}

static int ready_efd(void)
{
    int fd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_true(fd >= 0);
    return fd;
}

static void test_basic_dispatch(void **state)
{
    (void)state;
    struct evloop *l = evloop_new();
    assert_non_null(l);
    int fd = ready_efd();
    struct hit h = { 0 };
    assert_int_equal(evloop_add(l, fd, EPOLLIN, count_cb, &h), 0);
    assert_int_equal(evloop_watch_count(l), 1);
    assert_int_equal(evloop_run_once(l, 1000), 1);
    assert_int_equal(h.calls, 1);
    assert_true(h.events & EPOLLIN);
    /* Not interested any more: nothing fires. */
    assert_int_equal(evloop_mod(l, fd, 0), 0);
    assert_int_equal(evloop_run_once(l, 0), 0);
    assert_int_equal(h.calls, 1);
    assert_int_equal(evloop_del(l, fd), 0);
    assert_int_equal(evloop_del(l, fd), -ENOENT);
    assert_int_equal(evloop_mod(l, fd, EPOLLIN), -ENOENT);
    assert_int_equal(evloop_add(l, -1, EPOLLIN, count_cb, &h), -EBADF);
    assert_int_equal(evloop_watch_count(l), 0);
    close(fd);
    evloop_free(l);
}

/* Two ready descriptors: whichever callback runs first closes the other
 * one and opens a fresh descriptor that gets the same number and a new
 * watch. The event epoll already reported for the closed descriptor must
 * not reach the new watch's callback. */
struct reuse {
    struct evloop *l;
    int fd[2];
    struct hit h[2];
    struct hit fresh;
    int fresh_fd;
    int first;
};

static void reuse_cb(struct reuse *r, int me, uint32_t events)
{
    r->h[me].calls++;
    r->h[me].events = events;
    if (r->first >= 0)
        return;
    r->first = me;
    int other = 1 - me;
    assert_int_equal(evloop_del(r->l, r->fd[other]), 0);
    close(r->fd[other]);
    /* Not ready: any callback for it in this turn is the stale event. */
    r->fresh_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_int_equal(r->fresh_fd, r->fd[other]);
    assert_int_equal(evloop_add(r->l, r->fresh_fd, EPOLLIN, count_cb, &r->fresh), 0);
}

static void reuse_cb0(void *o, uint32_t ev) { reuse_cb(o, 0, ev); }
static void reuse_cb1(void *o, uint32_t ev) { reuse_cb(o, 1, ev); }

static void test_reuse_within_turn(void **state)
{
    (void)state;
    struct reuse r = { .first = -1, .fresh_fd = -1 };
    r.l = evloop_new();
    assert_non_null(r.l);
    r.fd[0] = ready_efd();
    r.fd[1] = ready_efd();
    assert_int_equal(evloop_add(r.l, r.fd[0], EPOLLIN, reuse_cb0, &r), 0);
    assert_int_equal(evloop_add(r.l, r.fd[1], EPOLLIN, reuse_cb1, &r), 0);
    /* Both are ready, so one epoll_wait reports both events. */
    assert_int_equal(evloop_run_once(r.l, 1000), 2);
    assert_true(r.first == 0 || r.first == 1);
    assert_int_equal(r.h[r.first].calls, 1);
    assert_int_equal(r.h[1 - r.first].calls, 0);
    assert_int_equal(r.fresh.calls, 0);
    /* The new watch works once its descriptor becomes ready. */
    uint64_t one = 1;
    assert_int_equal(write(r.fresh_fd, &one, sizeof(one)), (int)sizeof(one));
    assert_int_equal(evloop_mod(r.l, r.fd[r.first], 0), 0);
    assert_int_equal(evloop_run_once(r.l, 1000), 1);
    assert_int_equal(r.fresh.calls, 1);
    assert_int_equal(r.h[1 - r.first].calls, 0);
    close(r.fd[r.first]);
    close(r.fresh_fd);
    evloop_free(r.l);
}

/* A callback removes its own watch: no use after free, no second call. */
struct self {
    struct evloop *l;
    int fd;
    int calls;
};

static void self_del_cb(void *opaque, uint32_t events)
{
    (void)events;
    struct self *s = opaque;
    s->calls++;
    assert_int_equal(evloop_del(s->l, s->fd), 0);
}

static void test_self_delete(void **state)
{
    (void)state;
    struct self s = { .l = evloop_new() };
    assert_non_null(s.l);
    s.fd = ready_efd();
    assert_int_equal(evloop_add(s.l, s.fd, EPOLLIN, self_del_cb, &s), 0);
    assert_int_equal(evloop_run_once(s.l, 1000), 1);
    assert_int_equal(evloop_run_once(s.l, 0), 0);
    assert_int_equal(s.calls, 1);
    close(s.fd);
    evloop_free(s.l);
}

/* Far more watches than the 256 the table used to hold, on descriptor
 * numbers well above 256 too; each fires once. */
#define MANY 600

static void test_many_watches(void **state)
{
    (void)state;
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < MANY + 64) {
        rl.rlim_cur = rl.rlim_max < MANY + 64 ? rl.rlim_max : MANY + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
        assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    /* The hard limit of the runner's environment decides, never silently. */
    assert_true(rl.rlim_cur >= MANY + 64);
    struct evloop *l = evloop_new();
    assert_non_null(l);
    static int fds[MANY];
    static struct hit hits[MANY];
    for (int i = 0; i < MANY; i++) {
        fds[i] = ready_efd();
        hits[i] = (struct hit){ 0 };
        assert_int_equal(evloop_add(l, fds[i], EPOLLIN | EPOLLONESHOT, count_cb, &hits[i]), 0);
    }
    assert_int_equal(evloop_watch_count(l), MANY);
    int total = 0;
    for (int turn = 0; turn < 100 && total < MANY; turn++)
        total += evloop_run_once(l, 1000);
    assert_int_equal(total, MANY);
    for (int i = 0; i < MANY; i++)
        assert_int_equal(hits[i].calls, 1);
    for (int i = 0; i < MANY; i += 2)
        assert_int_equal(evloop_del(l, fds[i]), 0);
    assert_int_equal(evloop_watch_count(l), MANY / 2);
    evloop_free(l);     /* frees the watches still registered */
    for (int i = 0; i < MANY; i++)
        close(fds[i]);
}

static void stop_cb(void *opaque, uint32_t events)
{
    (void)events;
    evloop_stop(opaque);
}

static void test_stop(void **state)
{
    (void)state;
    struct evloop *l = evloop_new();
    assert_non_null(l);
    int fd = ready_efd();
    assert_int_equal(evloop_add(l, fd, EPOLLIN, stop_cb, l), 0);
    assert_int_equal(evloop_run(l), 0);
    assert_true(evloop_stopped(l));
    evloop_clear_stop(l);
    assert_false(evloop_stopped(l));
    close(fd);
    evloop_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_dispatch),
        cmocka_unit_test(test_reuse_within_turn),
        cmocka_unit_test(test_self_delete),
        cmocka_unit_test(test_many_watches),
        cmocka_unit_test(test_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
