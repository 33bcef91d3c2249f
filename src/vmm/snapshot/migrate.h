/* The state of save/restore and migration in one process, shared by
 * snapshot.c (command line, QMP, files) and migrate.c (live migration). */
#ifndef CVIRT_VMM_SNAPSHOT_MIGRATE_H
#define CVIRT_VMM_SNAPSHOT_MIGRATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "snapshot/format.h"
#include "util/err.h"

struct vm;

#define SNAP_NET_TAPS_MAX 16

struct snapshot {
    struct vm *vm;
    /* The machine's options (saved into snapshots) and the argv main()
     * parses. */
    char **mach_argv, **run_argv;
    int mach_argc, run_argc;
    const char *restore_path;    /* --restore / --incoming file: */
    const char *incoming;        /* --incoming tcp:HOST:PORT, after "tcp:" */
    bool defer;                  /* --incoming defer: wait for migrate-incoming */
    char incoming_uri[256];      /* what migrate-incoming gave */
    bool paused;                 /* --paused */
    /* --net-tap NAME, in order: the k-th replaces the k-th --net's tap. */
    const char *net_taps[SNAP_NET_TAPS_MAX];
    int nnet_taps;
    /* The run states QEMU reports beyond running/paused: waiting for or
     * taking an incoming migration; paused after a completed one (until
     * cont). */
    atomic_bool inmigrate, postmigrate;
    /* The machine options an outgoing migration sends (snap_machine_args
     * when it starts; device_add and device_del wait until it ends). */
    char **mig_argv;
    int mig_argc;
    bool have_file, applied;
    struct snap_file file;

    /* The last or current outgoing migration, for query-migrate. Written
     * by the migration thread under lock. */
    pthread_mutex_t lock;
    bool lock_ready;
    char status[16];             /* "" before the first migration */
    char error[ERR_MSG_MAX];
    int64_t start_ms, total_ms, downtime_ms;
    uint64_t ram_total, ram_transferred, ram_remaining, iterations;
    int64_t downtime_limit_ms;

    /* Live migration (migrate.c). */
    pthread_t thread;
    bool thread_started;
    atomic_bool cancel;
    atomic_bool active;          /* between migrate and its last event */
    bool have_state;             /* destination: the state arrived */
    bool quiesced;               /* the final phase stopped the devices */
    /* Pages devices may have written since the migration began (a bit per
     * RAM page), kept until the process ends: a device thread may still
     * be marking when tracking is turned off. */
    uint64_t *dev_dirty;
    uint64_t dev_dirty_words;
    int mig_fd;
    bool was_running;

    /* Destination (migrate.c): a thread takes the stream while the event
     * loop serves QMP; the state it brings is loaded on the loop thread. */
    pthread_t in_thread;
    int in_lfd, in_wake;
    atomic_int in_fd;            /* the accepted connection, -1 before */
    atomic_bool in_abort, in_done;
    int in_r;                    /* the thread's result, e set in in_err */
    struct err in_err;
    struct snapbuf in_state;
    char **in_argv;              /* this side's machine options */
    int in_argc;
};

/* MIGRATION event with status, remembered for query-migrate. Any thread. */
void snap_emit_migration(struct snapshot *s, const char *status);
bool snap_stop_vm(struct snapshot *s);
void snap_resume_vm(struct snapshot *s);

/* Outgoing live migration to "HOST:PORT" on a thread; returns at once. */
int snap_migrate_start(struct snapshot *s, const char *hostport, struct err *e);
bool snap_migrate_active(struct snapshot *s);
void snap_migrate_cancel(struct snapshot *s);
void snap_migrate_lock(struct snapshot *s);
void snap_migrate_unlock(struct snapshot *s);
/* Waits for the thread and closes what migration opened. */
void snap_migrate_free(struct snapshot *s);
/* Destination side: listens on s->incoming, takes memory and state on a
 * thread while the loop thread runs the event loop (QMP, signals), and
 * returns once the VM can start: 0, or 0 with the VM's exit requested
 * (quit, a signal) before the stream ended; negative with e set when the
 * stream was bad. */
int snap_migrate_incoming(struct snapshot *s, struct err *e);

#endif
