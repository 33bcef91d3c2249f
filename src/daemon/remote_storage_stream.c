/* vol-upload and vol-download: a volume's file, byte for byte, over a
 * stream of the remote protocol. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/storage.h"
#include "daemon/rpc/dispatch.h"
#include "daemon/rpc/server.h"
#include "util/evloop.h"
#include "util/log.h"

/* How much download data may wait in a client's output before we stop
 * reading the file, and how often we look again. */
#define DOWNLOAD_WINDOW (4u << 20)
#define DOWNLOAD_TICK_NS 2000000

struct xfer {
    struct rpc_client *c;
    struct rpc_stream *st;
    struct evloop *loop;
    int fd;
    int timer;                  /* download: paces reads by the client's backlog */
    uint64_t off, end;          /* bytes [off, end) still to move */
    char *path;
    /* Upload: the pool, told of as refreshed when the stream closes. */
    bool upload;
    struct daemon *dm;
    char pool[STORAGE_NAME_MAX + 1];
    uint8_t pool_uuid[16];
};

static void xfer_free(struct xfer *x)
{
    if (x->timer >= 0) {
        evloop_del(x->loop, x->timer);
        close(x->timer);
    }
    if (x->fd >= 0)
        close(x->fd);
    free(x->path);
    free(x);
}

/* Opens the volume's file and works out the byte range a transfer covers
 * (length 0: to the end; for uploads, as much as the client sends). */
static struct xfer *xfer_new(struct rpc_client *c, const remote_nonnull_storage_vol *rv,
                             uint64_t offset, uint64_t length, bool upload,
                             struct rpc_error *err)
{
    struct storage_vol v;
    struct storage_pool *p;
    if (remote_storage_vol_get(c, rv, &p, &v, err) < 0)
        return NULL;
    struct xfer *x = calloc(1, sizeof(*x));
    if (!x) {
        storage_vol_clear(&v);
        rpc_err_set(err, VIR_ERR_NO_MEMORY, VIR_FROM_STORAGE, "out of memory");
        return NULL;
    }
    x->c = c;
    x->dm = rpc_client_daemon(c);
    x->loop = x->dm->loop;
    x->upload = upload;
    snprintf(x->pool, sizeof(x->pool), "%s", p->name);
    memcpy(x->pool_uuid, p->uuid, 16);
    x->timer = -1;
    x->path = v.path;
    x->fd = open(x->path, (upload ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
    if (x->fd < 0) {
        rpc_err_set(err, VIR_ERR_SYSTEM_ERROR, VIR_FROM_STORAGE, "cannot open '%s': %s",
                    x->path, strerror(errno));
        xfer_free(x);
        return NULL;
    }
    uint64_t size = v.physical;
    if (offset > size || (length && length > UINT64_MAX - offset) ||
        (!upload && length && offset + length > size)) {
        rpc_err_set(err, VIR_ERR_INVALID_ARG, VIR_FROM_STORAGE,
                    "range %llu+%llu lies beyond the end of '%s' (%llu bytes)",
                    (unsigned long long)offset, (unsigned long long)length, x->path,
                    (unsigned long long)size);
        xfer_free(x);
        return NULL;
    }
    x->off = offset;
    x->end = length ? offset + length : (upload ? UINT64_MAX : size);
    return x;
}

static int upload_data(struct rpc_stream *st, const uint8_t *data, size_t len, void *opaque)
{
    struct xfer *x = opaque;
    (void)st;
    if (len > x->end - x->off) {
        log_warn("upload to %s: more data than the %llu bytes announced", x->path,
                 (unsigned long long)(x->end - x->off));
        return -1;
    }
    while (len) {
        ssize_t n = pwrite(x->fd, data, len, (off_t)x->off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            log_warn("upload to %s: %s", x->path, n < 0 ? strerror(errno) : "short write");
            return -1;
        }
        data += n;
        len -= (size_t)n;
        x->off += (uint64_t)n;
    }
    return 0;
}

static void xfer_close(struct rpc_stream *st, bool aborted, void *opaque)
{
    struct xfer *x = opaque;
    (void)st;
    if (!aborted && fsync(x->fd) < 0)
        log_warn("%s: cannot sync: %s", x->path, strerror(errno));
    log_info("transfer of %s %s", x->path, aborted ? "aborted" : "finished");
    /* As libvirtd refreshes the pool once an upload's stream closes, even
     * an aborted one: the file changed either way. */
    if (x->upload)
        remote_storage_emit_refresh(x->dm, x->pool, x->pool_uuid);
    xfer_free(x);
}

static const struct rpc_stream_ops upload_ops = {
    .on_data = upload_data,
    .on_close = xfer_close,
};

static const struct rpc_stream_ops download_ops = {
    .on_close = xfer_close,
};

static void download_tick(void *opaque, uint32_t events)
{
    struct xfer *x = opaque;
    uint64_t ticks;
    (void)events;
    if (read(x->timer, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
        return;
    static uint8_t buf[1u << 20];
    while (x->off < x->end && rpc_buf_pending(rpc_client_output(x->c)) < DOWNLOAD_WINDOW) {
        size_t want = x->end - x->off < sizeof(buf) ? (size_t)(x->end - x->off) : sizeof(buf);
        ssize_t n = pread(x->fd, buf, want, (off_t)x->off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            struct rpc_error err = {0};
            rpc_err_set(&err, VIR_ERR_SYSTEM_ERROR, VIR_FROM_STORAGE, "cannot read '%s': %s",
                        x->path, n < 0 ? strerror(errno) : "the file shrank");
            rpc_stream_abort(x->st, &err);     /* frees x through xfer_close */
            return;
        }
        x->off += (uint64_t)n;
        if (rpc_stream_send(x->st, buf, (size_t)n) < 0) {
            struct rpc_error err = {0};
            rpc_err_set(&err, VIR_ERR_NO_MEMORY, VIR_FROM_STORAGE, "out of memory");
            rpc_stream_abort(x->st, &err);
            return;
        }
    }
    if (x->off >= x->end) {
        /* All sent: the client's OK closes the stream. */
        rpc_stream_send_eof(x->st);
        evloop_del(x->loop, x->timer);
        close(x->timer);
        x->timer = -1;
    }
}

int remote_storage_upload(struct rpc_client *c, const void *args, void *ret,
                        struct rpc_error *err)
{
    const remote_storage_vol_upload_args *a = args;
    (void)ret;
    if (a->flags)
        return rpc_err_set(err, VIR_ERR_INVALID_ARG, VIR_FROM_STORAGE,
                           "unsupported flags (0x%x): sparse streams are not served",
                           a->flags);
    struct xfer *x = xfer_new(c, &a->vol, a->offset, a->length, true, err);
    if (!x)
        return -1;
    x->st = rpc_stream_open(c, &upload_ops, x, err);
    if (!x->st) {
        xfer_free(x);
        return -1;
    }
    return 0;
}

int remote_storage_download(struct rpc_client *c, const void *args, void *ret,
                          struct rpc_error *err)
{
    const remote_storage_vol_download_args *a = args;
    (void)ret;
    if (a->flags)
        return rpc_err_set(err, VIR_ERR_INVALID_ARG, VIR_FROM_STORAGE,
                           "unsupported flags (0x%x): sparse streams are not served",
                           a->flags);
    if (!rpc_client_daemon(c)->loop)
        return rpc_err_set(err, VIR_ERR_NO_SUPPORT, VIR_FROM_STORAGE,
                           "virStorageVolDownload needs the daemon's event loop");
    struct xfer *x = xfer_new(c, &a->vol, a->offset, a->length, false, err);
    if (!x)
        return -1;
    struct itimerspec its = { .it_interval = { 0, DOWNLOAD_TICK_NS },
                              .it_value = { 0, DOWNLOAD_TICK_NS } };
    x->timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (x->timer < 0 || timerfd_settime(x->timer, 0, &its, NULL) < 0 ||
        evloop_add(x->loop, x->timer, EPOLLIN, download_tick, x) < 0) {
        if (x->timer >= 0)
            close(x->timer);
        x->timer = -1;
        xfer_free(x);
        return rpc_err_set(err, VIR_ERR_SYSTEM_ERROR, VIR_FROM_STORAGE,
                           "cannot start the download: %s", strerror(errno));
    }
    x->st = rpc_stream_open(c, &download_ops, x, err);
    if (!x->st) {
        xfer_free(x);
        return -1;
    }
    return 0;
}
