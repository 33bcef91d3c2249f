/* Live migration over TCP: pre-copy with KVM dirty logging. */
#include "snapshot/migrate.h"

#include <errno.h>

void snap_migrate_lock(struct snapshot *s)
{
    if (s->lock_ready)
        pthread_mutex_lock(&s->lock);
}

void snap_migrate_unlock(struct snapshot *s)
{
    if (s->lock_ready)
        pthread_mutex_unlock(&s->lock);
}

int snap_migrate_start(struct snapshot *s, const char *hostport, struct err *e)
{
    (void)s;
    return err_set(e, ENOTSUP, "migration to tcp:%s is not supported yet", hostport);
}

bool snap_migrate_active(struct snapshot *s)
{
    return s->thread_started;
}

void snap_migrate_cancel(struct snapshot *s)
{
    atomic_store(&s->cancel, true);
}

void snap_migrate_free(struct snapshot *s)
{
    (void)s;
}

int snap_migrate_incoming(struct snapshot *s, struct err *e)
{
    return err_set(e, ENOTSUP, "--incoming tcp:%s is not supported yet", s->incoming);
}
