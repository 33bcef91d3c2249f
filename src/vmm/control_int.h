/* Inside the control socket: shared by control.c (sockets, clients,
 * events) and control_proto.c (framing, dispatch, built-in commands). */
#ifndef CVIRT_VMM_CONTROL_INT_H
#define CVIRT_VMM_CONTROL_INT_H

#include <pthread.h>
#include <sys/types.h>

#include "control.h"

#define CONTROL_VERSION_MAJOR 0
#define CONTROL_VERSION_MINOR 1
#define CONTROL_VERSION_MICRO 0
#define CONTROL_PACKAGE "cvirt-vmm 0.1.0"

struct control_cmd {
    char *name;
    control_cmd_fn fn;
    void *opaque;
    struct control_cmd *next;   /* in registration order */
};

struct control_client;

struct control {
    struct evloop *loop;
    struct control_cmd *cmds, **cmds_tail;
    /* Guards the client list and every output buffer: events come from
     * any thread, everything else happens on the loop thread. */
    pthread_mutex_t lock;
    struct control_client *clients;
    unsigned nclients;
    int listen_fd;
    int wake_fd;                /* eventfd: output queued by another thread */
    char *path;
    dev_t dev;                  /* the socket file we made, so we remove */
    ino_t ino;                  /* only that one */
};

/* control_proto.c */
int control_register_builtins(struct control *c);
void control_cmds_free(struct control *c);

#endif
