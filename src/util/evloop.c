#include "evloop.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define EVLOOP_MAX_WATCH 256

struct watch {
    int fd;
    evloop_cb cb;
    void *opaque;
};

struct evloop {
    int epfd;
    int stopfd;                /* eventfd that wakes epoll_wait on stop */
    atomic_bool stop;
    struct watch watches[EVLOOP_MAX_WATCH];
};

struct evloop *evloop_new(void)
{
    struct evloop *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    for (int i = 0; i < EVLOOP_MAX_WATCH; i++)
        l->watches[i].fd = -1;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->epfd < 0 || l->stopfd < 0)
        goto fail;
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->stopfd, &ev) < 0)
        goto fail;
    return l;
fail:
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->stopfd >= 0)
        close(l->stopfd);
    free(l);
    return NULL;
}

void evloop_free(struct evloop *l)
{
    if (!l)
        return;
    close(l->epfd);
    close(l->stopfd);
    free(l);
}

static struct watch *watch_find(struct evloop *l, int fd)
{
    for (int i = 0; i < EVLOOP_MAX_WATCH; i++)
        if (l->watches[i].fd == fd)
            return &l->watches[i];
    return NULL;
}

int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_cb cb, void *opaque)
{
    struct watch *w = watch_find(l, fd);
    int op = EPOLL_CTL_MOD;
    if (!w) {
        w = watch_find(l, -1);
        if (!w)
            return -ENOSPC;
        op = EPOLL_CTL_ADD;
    }
    struct epoll_event ev = { .events = events, .data.ptr = w };
    if (epoll_ctl(l->epfd, op, fd, &ev) < 0)
        return -errno;
    w->fd = fd;
    w->cb = cb;
    w->opaque = opaque;
    return 0;
}

int evloop_mod(struct evloop *l, int fd, uint32_t events)
{
    struct watch *w = watch_find(l, fd);
    if (!w)
        return -ENOENT;
    struct epoll_event ev = { .events = events, .data.ptr = w };
    return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

int evloop_del(struct evloop *l, int fd)
{
    struct watch *w = watch_find(l, fd);
    if (!w)
        return -ENOENT;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    w->fd = -1;
    w->cb = NULL;
    return 0;
}

int evloop_run_once(struct evloop *l, int timeout_ms)
{
    struct epoll_event evs[32];
    int n = epoll_wait(l->epfd, evs, 32, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        struct watch *w = evs[i].data.ptr;
        if (!w) {
            uint64_t v;
            ssize_t r = read(l->stopfd, &v, sizeof(v));
            (void)r;
            continue;
        }
        /* A callback may have removed this watch during this turn. */
        if (w->fd >= 0 && w->cb)
            w->cb(w->opaque, evs[i].events);
    }
    return n;
}

int evloop_run(struct evloop *l)
{
    while (!atomic_load(&l->stop)) {
        int r = evloop_run_once(l, -1);
        if (r < 0)
            return r;
    }
    return 0;
}

void evloop_stop(struct evloop *l)
{
    atomic_store(&l->stop, true);
    uint64_t one = 1;
    ssize_t r = write(l->stopfd, &one, sizeof(one));
    (void)r;
}

bool evloop_stopped(const struct evloop *l) { return atomic_load(&l->stop); }

void evloop_clear_stop(struct evloop *l) { atomic_store(&l->stop, false); }
