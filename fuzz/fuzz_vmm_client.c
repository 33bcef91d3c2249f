/* Replies and events from a cvirt-vmm fed to the daemon's QMP client: the
 * greeting, replies matched by id, events, blanks, oversized or malformed
 * JSON. A broken VMM must end the connection or fail a command, never
 * crash the daemon.
 *
 * Input: the whole byte stream the VMM sends. A thread plays the VMM on a
 * UNIX socket: it sends the input, ends its output and drains what the
 * client sends; the client connects (greeting, qmp_capabilities with id
 * 1) and runs a few commands (ids 2, 3, ...), collecting events. */
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/vmm_client.h"

#ifdef FUZZ_RENAME
#define LLVMFuzzerTestOneInput fuzz_vmm_client_one
#endif
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char sock_path[108];
static int listen_fd = -1;

struct feed {
    const uint8_t *data;
    size_t len;
};

static void remove_socket(void)
{
    unlink(sock_path);
}

static void setup(void)
{
    if (listen_fd >= 0)
        return;
    snprintf(sock_path, sizeof sock_path, "/tmp/fuzz_vmm_client.%d.sock", (int)getpid());
    unlink(sock_path);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    strcpy(sa.sun_path, sock_path);
    listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        listen(listen_fd, 4) < 0)
        abort();
    atexit(remove_socket);
}

static void *vmm_side(void *arg)
{
    struct feed *f = arg;
    int fd = accept(listen_fd, NULL, NULL);
    if (fd < 0)
        abort();
    const uint8_t *p = f->data;
    size_t n = f->len;
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        p += k;
        n -= (size_t)k;
    }
    shutdown(fd, SHUT_WR);
    char buf[4096];
    while (recv(fd, buf, sizeof buf, 0) > 0)
        ;
    close(fd);
    return NULL;
}

static void on_event(void *opaque, const char *name, struct json_object *data)
{
    (void)data;
    (*(unsigned *)opaque)++;
    if (name)
        (void)strlen(name);
}

static const struct vmm_client_ops ops = { .on_event = on_event };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 2 * VMM_CLIENT_MAX_MESSAGE)
        return 0;
    setup();
    struct feed f = { data, size };
    pthread_t t;
    if (pthread_create(&t, NULL, vmm_side, &f) != 0)
        abort();
    unsigned events = 0;
    struct vmm_client *c = NULL;
    struct err e = { 0 };
    /* the peer always ends its output, so no wait reaches the timeout */
    int r = vmm_client_connect(NULL, sock_path, 10000, &ops, &events, &c, &e);
    if (r < 0 && !e.msg[0])
        abort();
    if (r == 0) {
        static const char *const cmds[] = { "query-status", "stop", "cont", "balloon" };
        for (unsigned i = 0; i < 4; i++) {
            struct json_object *ret = NULL;
            struct err ce = { 0 };
            r = vmm_client_execute(c, cmds[i], NULL, 10000, &ret, &ce);
            if (r < 0 && !ce.msg[0])
                abort();
            if (r == 0 && ret)
                (void)json_object_to_json_string(ret);
            json_object_put(ret);
            if (r == -ETIMEDOUT)
                abort();        /* the peer closed: a wait must end at once */
        }
        vmm_client_free(c);
    }
    pthread_join(t, NULL);
    return 0;
}
