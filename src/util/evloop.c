#include "evloop.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Watches are allocated one by one and indexed by descriptor, so the
 * table can grow without moving a watch that epoll still points at. */
struct watch {
    int fd;
    evloop_cb cb;
    void *opaque;
    struct watch *next_dead;
};

struct evloop {
    int epfd;
    int stopfd;                /* eventfd that wakes epoll_wait on stop */
    atomic_bool stop;
    struct watch **byfd;       /* indexed by fd; NULL when not watched */
    size_t nfd;
    bool in_turn;              /* dispatching the events of one epoll_wait */
    /* Watches removed during a turn: epoll may already have handed us an
     * event that points at one, so they are freed only when the turn ends
     * and a new watch for the same fd never shares their memory. */
    struct watch *dead;
};

struct evloop *evloop_new(void)
{
    struct evloop *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
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

static void free_dead(struct evloop *l)
{
    while (l->dead) {
        struct watch *w = l->dead;
        l->dead = w->next_dead;
        free(w);
    }
}

void evloop_free(struct evloop *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->nfd; i++)
        free(l->byfd[i]);
    free(l->byfd);
    free_dead(l);
    close(l->epfd);
    close(l->stopfd);
    free(l);
}

static struct watch *watch_find(struct evloop *l, int fd)
{
    return fd >= 0 && (size_t)fd < l->nfd ? l->byfd[fd] : NULL;
}

static int grow(struct evloop *l, int fd)
{
    if ((size_t)fd < l->nfd)
        return 0;
    size_t n = l->nfd ? l->nfd : 64;
    while (n <= (size_t)fd)
        n *= 2;
    struct watch **v = realloc(l->byfd, n * sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (size_t i = l->nfd; i < n; i++)
        v[i] = NULL;
    l->byfd = v;
    l->nfd = n;
    return 0;
}

int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_cb cb, void *opaque)
{
    if (fd < 0)
        return -EBADF;
    struct watch *w = watch_find(l, fd);
    if (w) {
        struct epoll_event ev = { .events = events, .data.ptr = w };
        if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
            return -errno;
        w->cb = cb;
        w->opaque = opaque;
        return 0;
    }
    if (grow(l, fd) < 0)
        return -ENOMEM;
    w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->fd = fd;
    w->cb = cb;
    w->opaque = opaque;
    struct epoll_event ev = { .events = events, .data.ptr = w };
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int r = -errno;
        free(w);
        return r;
    }
    l->byfd[fd] = w;
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
    l->byfd[fd] = NULL;
    w->fd = -1;
    w->cb = NULL;
    if (l->in_turn) {
        w->next_dead = l->dead;
        l->dead = w;
    } else {
        free(w);
    }
    return 0;
}

int evloop_watch_count(const struct evloop *l)
{
    int n = 0;
    for (size_t i = 0; i < l->nfd; i++)
        n += l->byfd[i] != NULL;
    return n;
}

int evloop_run_once(struct evloop *l, int timeout_ms)
{
    struct epoll_event evs[32];
    int n = epoll_wait(l->epfd, evs, 32, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    bool outer = !l->in_turn;
    l->in_turn = true;
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
    /* A callback that runs a nested turn must not free what the outer
     * turn's event list still points at. */
    if (outer) {
        l->in_turn = false;
        free_dead(l);
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
