#include "pci/msix.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"
#include "vm.h"

static uint64_t entry_addr(const struct msix *m, unsigned n)
{
    const uint8_t *p = &m->table[n * MSIX_ENTRY_SIZE];
    uint64_t lo = (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
                  (uint64_t)p[3] << 24;
    uint64_t hi = (uint64_t)p[4] | (uint64_t)p[5] << 8 | (uint64_t)p[6] << 16 |
                  (uint64_t)p[7] << 24;
    return lo | hi << 32;
}

static uint32_t entry_u32(const struct msix *m, unsigned n, unsigned off)
{
    const uint8_t *p = &m->table[n * MSIX_ENTRY_SIZE + off];
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static bool vec_masked(const struct msix *m, unsigned n)
{
    return m->masked_all || (entry_u32(m, n, 12) & MSIX_VECTOR_MASKED);
}

static void vec_fire(struct msix *m, unsigned n)
{
    uint64_t one = 1;
    if (m->vec[n].efd >= 0 && write(m->vec[n].efd, &one, sizeof(one)) < 0)
        log_debug("msix: vector %u: eventfd write failed", n);
}

/* Makes the routing of vector n follow its entry, and delivers a pending
 * message once it can fire. Only a vector that can fire needs a route, so
 * a driver filling in a masked entry costs no routing update. Lock held. */
static void vec_update(struct msix *m, unsigned n)
{
    struct msix_vec *v = &m->vec[n];
    bool live = m->enabled && !vec_masked(m, n);
    if (live && v->gsi >= 0) {
        if (vm_msi_route(m->vm, (unsigned)v->gsi, entry_addr(m, n), entry_u32(m, n, 8), true) == 0)
            v->routed = true;
    }
    if (live && (m->pba & (1ULL << n))) {
        m->pba &= ~(1ULL << n);
        vec_fire(m, n);
    }
}

int msix_create(struct msix **out, struct vm *vm, unsigned nvec, struct err *e)
{
    if (nvec == 0 || nvec > MSIX_MAX_VECTORS)
        return err_set(e, EINVAL, "MSI-X: %u vectors (1 to %d)", nvec, MSIX_MAX_VECTORS);
    struct msix *m = calloc(1, sizeof(*m));
    if (!m)
        return err_set(e, ENOMEM, "out of memory");
    m->vm = vm;
    m->nvec = nvec;
    pthread_mutex_init(&m->lock, NULL);
    for (unsigned i = 0; i < MSIX_MAX_VECTORS; i++)
        m->vec[i] = (struct msix_vec){ .gsi = -1, .efd = -1 };
    int r = 0;
    for (unsigned i = 0; i < nvec; i++) {
        m->vec[i].efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (m->vec[i].efd < 0) {
            r = err_set_errno(e, errno, "MSI-X: eventfd");
            goto fail;
        }
        m->vec[i].gsi = vm_gsi_alloc(vm);
        if (m->vec[i].gsi < 0) {
            r = err_set(e, ENOSPC, "MSI-X: no free GSI for vector %u (at most %d routes)",
                        i, VM_MAX_MSI_ROUTES);
            goto fail;
        }
    }
    msix_reset(m);
    *out = m;
    return 0;
fail:
    msix_destroy(m);
    return r;
}

void msix_destroy(struct msix *m)
{
    if (!m)
        return;
    for (unsigned i = 0; i < MSIX_MAX_VECTORS; i++) {
        if (m->vec[i].gsi >= 0) {
            vm_irqfd(m->vm, m->vec[i].efd, (unsigned)m->vec[i].gsi, false);
            vm_gsi_free(m->vm, (unsigned)m->vec[i].gsi);
        }
        if (m->vec[i].efd >= 0)
            close(m->vec[i].efd);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void msix_reset(struct msix *m)
{
    pthread_mutex_lock(&m->lock);
    m->enabled = false;
    m->masked_all = false;
    m->pba = 0;
    memset(m->table, 0, sizeof(m->table));
    for (unsigned i = 0; i < m->nvec; i++) {
        m->table[i * MSIX_ENTRY_SIZE + 12] = MSIX_VECTOR_MASKED;
        if (m->vec[i].routed)
            vm_msi_route(m->vm, (unsigned)m->vec[i].gsi, 0, 0, false);
        m->vec[i].routed = false;
    }
    pthread_mutex_unlock(&m->lock);
}

void msix_table_read(struct msix *m, uint64_t off, uint8_t *data, unsigned len)
{
    pthread_mutex_lock(&m->lock);
    for (unsigned i = 0; i < len; i++) {
        uint64_t o = off + i;
        data[i] = o < (uint64_t)m->nvec * MSIX_ENTRY_SIZE ? m->table[o] : 0;
    }
    pthread_mutex_unlock(&m->lock);
}

void msix_table_write(struct msix *m, uint64_t off, const uint8_t *data, unsigned len)
{
    uint64_t end = (uint64_t)m->nvec * MSIX_ENTRY_SIZE;
    pthread_mutex_lock(&m->lock);
    uint64_t touched = 0;
    for (unsigned i = 0; i < len; i++) {
        uint64_t o = off + i;
        if (o >= end)
            continue;
        /* Only the mask bit of vector control is writable. */
        if (o % MSIX_ENTRY_SIZE == 12)
            m->table[o] = data[i] & MSIX_VECTOR_MASKED;
        else if (o % MSIX_ENTRY_SIZE < 12)
            m->table[o] = data[i];
        touched |= 1ULL << (o / MSIX_ENTRY_SIZE);
    }
    for (unsigned n = 0; n < m->nvec; n++)
        if (touched & (1ULL << n))
            vec_update(m, n);
    pthread_mutex_unlock(&m->lock);
}

void msix_pba_read(struct msix *m, uint64_t off, uint8_t *data, unsigned len)
{
    pthread_mutex_lock(&m->lock);
    for (unsigned i = 0; i < len; i++) {
        uint64_t o = off + i;
        data[i] = o < 8 ? (uint8_t)(m->pba >> (8 * o)) : 0;
    }
    pthread_mutex_unlock(&m->lock);
}

void msix_set_control(struct msix *m, uint16_t ctrl)
{
    pthread_mutex_lock(&m->lock);
    bool was = m->enabled;
    m->enabled = (ctrl & MSIX_CTRL_ENABLE) != 0;
    m->masked_all = (ctrl & MSIX_CTRL_MASKALL) != 0;
    for (unsigned n = 0; n < m->nvec; n++)
        vec_update(m, n);
    /* Routes left over from an earlier enable would only be stale. */
    if (was && !m->enabled) {
        for (unsigned n = 0; n < m->nvec; n++) {
            if (m->vec[n].routed)
                vm_msi_route(m->vm, (unsigned)m->vec[n].gsi, 0, 0, false);
            m->vec[n].routed = false;
        }
    }
    pthread_mutex_unlock(&m->lock);
}

bool msix_enabled(struct msix *m)
{
    pthread_mutex_lock(&m->lock);
    bool en = m->enabled;
    pthread_mutex_unlock(&m->lock);
    return en;
}

int msix_notify(struct msix *m, unsigned n)
{
    if (n >= m->nvec)
        return -EINVAL;
    int r = 0;
    pthread_mutex_lock(&m->lock);
    if (!m->enabled)
        r = -ENODEV;
    else if (vec_masked(m, n))
        m->pba |= 1ULL << n;
    else
        vec_fire(m, n);
    pthread_mutex_unlock(&m->lock);
    return r;
}

int msix_attach(struct msix *m, struct err *e)
{
    for (unsigned i = 0; i < m->nvec; i++) {
        int r = vm_irqfd(m->vm, m->vec[i].efd, (unsigned)m->vec[i].gsi, true);
        if (r < 0)
            return err_set_errno(e, -r, "KVM_IRQFD for GSI %d", m->vec[i].gsi);
    }
    return 0;
}

void msix_restore(struct msix *m, const uint8_t *table, uint64_t pba)
{
    msix_table_write(m, 0, table, m->nvec * MSIX_ENTRY_SIZE);
    pthread_mutex_lock(&m->lock);
    m->pba = m->nvec < 64 ? pba & ((1ULL << m->nvec) - 1) : pba;
    pthread_mutex_unlock(&m->lock);
}
