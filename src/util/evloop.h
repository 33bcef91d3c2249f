/* A small epoll event loop: one per thread that owns devices or sockets. */
#ifndef CVIRT_UTIL_EVLOOP_H
#define CVIRT_UTIL_EVLOOP_H

#include <stdbool.h>
#include <stdint.h>

struct evloop;
/* events is the epoll mask that fired (EPOLLIN, EPOLLHUP, ...). */
typedef void (*evloop_cb)(void *opaque, uint32_t events);

struct evloop *evloop_new(void);
void evloop_free(struct evloop *l);
/* Watches fd for the given epoll events; a second add for the same fd
 * replaces the callback and mask. There is no fixed limit on watches. */
int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_cb cb, void *opaque);
int evloop_mod(struct evloop *l, int fd, uint32_t events);
/* A watch removed while events are dispatched gets no further callback,
 * not even for an event of the same turn, and a new watch on the same
 * descriptor only sees events that epoll reports after it was added. */
int evloop_del(struct evloop *l, int fd);
/* How many descriptors are watched (the loop's own wake-up not counted). */
int evloop_watch_count(const struct evloop *l);
/* Runs callbacks until evloop_stop(); timeout_ms < 0 waits forever per turn. */
int evloop_run(struct evloop *l);
/* One turn: waits at most timeout_ms, dispatches, returns how many fired. */
int evloop_run_once(struct evloop *l, int timeout_ms);
/* Safe from any thread or signal context. */
void evloop_stop(struct evloop *l);
bool evloop_stopped(const struct evloop *l);
/* Lets evloop_run() run again after a stop. */
void evloop_clear_stop(struct evloop *l);

#endif
