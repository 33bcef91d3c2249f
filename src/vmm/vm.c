#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hw/platform.h"
#include "util/log.h"
#include "vcpu.h"
#include "x86/boot.h"
#include "x86/layout.h"

#define HUGE_2M (2ULL << 20)

static int vm_map_ram(struct vm *vm, struct err *e)
{
    vm->ram_size = vm->cfg.mem_size;
    /* NORESERVE: the guest's untouched memory costs the host nothing. */
    vm->ram = mmap(NULL, vm->ram_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (vm->ram == MAP_FAILED) {
        vm->ram = NULL;
        return err_set_errno(e, errno, "cannot map %llu MiB of guest memory",
                             (unsigned long long)(vm->ram_size >> 20));
    }
    /* Huge pages for all but the first 2 MiB: a guest kernel touches its
     * memory in large runs, and each host fault costs an exit. The first
     * 2 MiB (boot structures, a small guest's whole world) stay in 4 KiB
     * pages so a small VM costs the host little. */
    if (vm->ram_size > HUGE_2M)
        madvise(vm->ram + HUGE_2M, vm->ram_size - HUGE_2M, MADV_HUGEPAGE);
    uint64_t low = vm->ram_size < LAYOUT_MMIO_HOLE_START ? vm->ram_size : LAYOUT_MMIO_HOLE_START;
    vm->slots[0] = (struct mem_slot){ 0, low, vm->ram };
    vm->nslots = 1;
    if (vm->ram_size > low) {
        vm->slots[1] = (struct mem_slot){ LAYOUT_4G, vm->ram_size - low, vm->ram + low };
        vm->nslots = 2;
    }
    return 0;
}

void *vm_gpa(struct vm *vm, uint64_t gpa, uint64_t len)
{
    for (unsigned i = 0; i < vm->nslots; i++) {
        const struct mem_slot *s = &vm->slots[i];
        if (gpa >= s->gpa && gpa - s->gpa <= s->size && len <= s->size - (gpa - s->gpa))
            return s->hva + (gpa - s->gpa);
    }
    return NULL;
}

int vm_create(struct vm **out, const struct vm_config *cfg, struct err *e)
{
    struct vm *vm = calloc(1, sizeof(*vm));
    if (!vm)
        return err_set(e, ENOMEM, "out of memory");
    vm->cfg = *cfg;
    vm->kvm_fd = -1;
    vm->vm_fd = -1;
    pthread_mutex_init(&vm->lock, NULL);
    pthread_mutex_init(&vm->route_lock, NULL);
    pthread_mutex_init(&vm->pause_lock, NULL);
    pthread_cond_init(&vm->pause_cond, NULL);
    iobus_init(&vm->pio);
    iobus_init(&vm->mmio);
    int r;

    vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (vm->kvm_fd < 0) {
        r = err_set_errno(e, errno, "cannot open /dev/kvm");
        goto fail;
    }
    int api = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
    if (api != KVM_API_VERSION) {
        r = err_set(e, ENOTSUP, "/dev/kvm speaks API version %d, not %d", api, KVM_API_VERSION);
        goto fail;
    }
    vm->vcpu_mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (vm->vcpu_mmap_size < (int)sizeof(struct kvm_run)) {
        r = err_set_errno(e, errno, "KVM_GET_VCPU_MMAP_SIZE");
        goto fail;
    }
    r = vm_map_ram(vm, e);
    if (r < 0)
        goto fail;
    *out = vm;
    return 0;
fail:
    vm_destroy(vm);
    return r;
}

static int vm_set_memory(struct vm *vm, struct err *e)
{
    for (unsigned i = 0; i < vm->nslots; i++) {
        struct kvm_userspace_memory_region reg = {
            .slot = i,
            .guest_phys_addr = vm->slots[i].gpa,
            .memory_size = vm->slots[i].size,
            .userspace_addr = (uintptr_t)vm->slots[i].hva,
        };
        if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &reg) < 0)
            return err_set_errno(e, errno, "KVM_SET_USER_MEMORY_REGION slot %u", i);
    }
    return 0;
}

/* ISA IRQs go to both the PIC and the IOAPIC; IRQ0 (the PIT) lands on
 * IOAPIC pin 2, as the MADT's interrupt source override tells the guest.
 * KVM's default table would put it on pin 0. MSI routes follow; KVM only
 * takes the whole table at once, so every MSI change sends all of it.
 * Caller holds route_lock. */
static int vm_set_gsi_routing(struct vm *vm, struct err *e)
{
    enum { NPIC = 16, NIOAPIC = 24, MAX = NPIC + NIOAPIC + VM_MAX_MSI_ROUTES };
    struct kvm_irq_routing *rt = calloc(1, sizeof(*rt) + MAX * sizeof(rt->entries[0]));
    if (!rt)
        return err_set(e, ENOMEM, "out of memory for the GSI routing table");
    unsigned n = 0;
    for (unsigned irq = 0; irq < NPIC; irq++) {
        if (irq == 2)
            continue; /* the cascade */
        struct kvm_irq_routing_entry *en = &rt->entries[n++];
        en->gsi = irq;
        en->type = KVM_IRQ_ROUTING_IRQCHIP;
        en->u.irqchip.irqchip = irq < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
        en->u.irqchip.pin = irq % 8;
    }
    for (unsigned gsi = 0; gsi < NIOAPIC; gsi++) {
        if (gsi == 2)
            continue; /* nothing raises GSI 2; its pin carries IRQ0 */
        struct kvm_irq_routing_entry *en = &rt->entries[n++];
        en->gsi = gsi;
        en->type = KVM_IRQ_ROUTING_IRQCHIP;
        en->u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
        en->u.irqchip.pin = gsi == 0 ? 2 : gsi;
    }
    for (unsigned i = 0; i < VM_MAX_MSI_ROUTES; i++) {
        const struct vm_msi_route *m = &vm->msi_routes[i];
        if (!m->allocated || !m->valid)
            continue;
        struct kvm_irq_routing_entry *en = &rt->entries[n++];
        en->gsi = VM_GSI_MSI_BASE + i;
        en->type = KVM_IRQ_ROUTING_MSI;
        en->u.msi.address_lo = (uint32_t)m->addr;
        en->u.msi.address_hi = (uint32_t)(m->addr >> 32);
        en->u.msi.data = m->data;
    }
    rt->nr = n;
    int r = 0;
    if (ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, rt) < 0)
        r = err_set_errno(e, errno, "KVM_SET_GSI_ROUTING");
    free(rt);
    return r;
}

int vm_gsi_alloc(struct vm *vm)
{
    int gsi = -ENOSPC;
    pthread_mutex_lock(&vm->route_lock);
    for (unsigned i = 0; i < VM_MAX_MSI_ROUTES; i++) {
        if (!vm->msi_routes[i].allocated) {
            vm->msi_routes[i] = (struct vm_msi_route){ .allocated = true };
            gsi = (int)(VM_GSI_MSI_BASE + i);
            break;
        }
    }
    pthread_mutex_unlock(&vm->route_lock);
    return gsi;
}

void vm_gsi_free(struct vm *vm, unsigned gsi)
{
    if (gsi < VM_GSI_MSI_BASE || gsi - VM_GSI_MSI_BASE >= VM_MAX_MSI_ROUTES)
        return;
    pthread_mutex_lock(&vm->route_lock);
    struct vm_msi_route *m = &vm->msi_routes[gsi - VM_GSI_MSI_BASE];
    bool was_valid = m->valid;
    *m = (struct vm_msi_route){ 0 };
    if (was_valid && vm->vm_fd >= 0)
        vm_set_gsi_routing(vm, NULL);
    pthread_mutex_unlock(&vm->route_lock);
}

int vm_msi_route(struct vm *vm, unsigned gsi, uint64_t addr, uint32_t data, bool valid)
{
    if (gsi < VM_GSI_MSI_BASE || gsi - VM_GSI_MSI_BASE >= VM_MAX_MSI_ROUTES)
        return -EINVAL;
    int r = 0;
    pthread_mutex_lock(&vm->route_lock);
    struct vm_msi_route *m = &vm->msi_routes[gsi - VM_GSI_MSI_BASE];
    if (!m->allocated) {
        r = -EINVAL;
    } else if (m->valid != valid || (valid && (m->addr != addr || m->data != data))) {
        m->valid = valid;
        m->addr = valid ? addr : 0;
        m->data = valid ? data : 0;
        if (vm->vm_fd >= 0) {
            struct err e = { 0 };
            r = vm_set_gsi_routing(vm, &e);
            if (r < 0)
                log_warn("%s", e.msg);
        }
    }
    pthread_mutex_unlock(&vm->route_lock);
    return r;
}

int vm_irqfd(struct vm *vm, int fd, unsigned gsi, bool assign)
{
    if (vm->vm_fd < 0)
        return -ENODEV;
    struct kvm_irqfd req = {
        .fd = (uint32_t)fd, .gsi = gsi, .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
    };
    return ioctl(vm->vm_fd, KVM_IRQFD, &req) < 0 ? -errno : 0;
}

int vm_ioeventfd(struct vm *vm, int fd, uint64_t gpa, unsigned len, bool assign)
{
    if (vm->vm_fd < 0)
        return -ENODEV;
    struct kvm_ioeventfd req = {
        .addr = gpa, .len = len, .fd = fd,
        .flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
    };
    return ioctl(vm->vm_fd, KVM_IOEVENTFD, &req) < 0 ? -errno : 0;
}

int vm_add_setup_hook(struct vm *vm, int (*fn)(void *opaque, struct err *e), void *opaque)
{
    if (vm->nsetup_hooks == VM_MAX_SETUP_HOOKS)
        return -ENOSPC;
    vm->setup_hooks[vm->nsetup_hooks++] = (struct vm_setup_hook){ fn, opaque };
    return 0;
}

static int vm_create_kvm(struct vm *vm, struct err *e)
{
    vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
    if (vm->vm_fd < 0)
        return err_set_errno(e, errno, "KVM_CREATE_VM");
    fcntl(vm->vm_fd, F_SETFD, FD_CLOEXEC);
    /* Memory first: once the irqchip or vCPUs exist, each memslot change
     * waits for an SRCU grace period (milliseconds at start-up). */
    int r = vm_set_memory(vm, e);
    if (r < 0)
        return r;
    /* Both are only needed by VMX; other KVM flavours may refuse them. */
    if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_TSS_ADDR) < 0)
        log_debug("KVM_SET_TSS_ADDR: %s", strerror(errno));
    uint64_t idmap = LAYOUT_IDENTITY_MAP_ADDR;
    if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
        log_debug("KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
    if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
        return err_set_errno(e, errno, "KVM_CREATE_IRQCHIP");
    pthread_mutex_lock(&vm->route_lock);
    r = vm_set_gsi_routing(vm, e);
    pthread_mutex_unlock(&vm->route_lock);
    if (r < 0)
        return r;
    /* No SPEAKER_DUMMY: KVM then also runs port 0x61, the PIT channel 2
     * gate and output that guests use to time short waits. */
    struct kvm_pit_config pit = { .flags = 0 };
    if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
        return err_set_errno(e, errno, "KVM_CREATE_PIT2");
    return 0;
}

int vm_setup(struct vm *vm, struct err *e)
{
    atomic_store(&vm->exit_reason, VM_EXIT_NONE);
    vm->exit_msg[0] = '\0';
    int r = vm_create_kvm(vm, e);
    if (r < 0)
        return r;
    for (unsigned i = 0; i < vm->cfg.ncpus; i++) {
        struct vcpu *v;
        r = vcpu_create(vm, i, &v, e);
        if (r < 0)
            return r;
        /* Under pause_lock: another thread may be kicking every vCPU. */
        pthread_mutex_lock(&vm->pause_lock);
        vm->vcpus[i] = v;
        vm->ncpus = i + 1;
        pthread_mutex_unlock(&vm->pause_lock);
    }
    r = boot_load(vm, e);
    if (r < 0)
        return r;
    for (unsigned i = 0; i < vm->nsetup_hooks; i++) {
        r = vm->setup_hooks[i].fn(vm->setup_hooks[i].opaque, e);
        if (r < 0)
            return r;
    }
    return boot_setup_bsp(vm, vm->vcpus[0], e);
}

/* Ends the vCPUs and the KVM VM; guest memory stays as it is. */
static void vm_close_kvm(struct vm *vm)
{
    /* Out of the table first, under the lock kickers take; destroyed
     * after, since a vCPU thread still leaving takes that lock too. */
    struct vcpu *gone[VM_MAX_CPUS];
    pthread_mutex_lock(&vm->pause_lock);
    unsigned n = vm->ncpus;
    for (unsigned i = 0; i < n; i++) {
        gone[i] = vm->vcpus[i];
        vm->vcpus[i] = NULL;
    }
    vm->ncpus = 0;
    pthread_mutex_unlock(&vm->pause_lock);
    for (unsigned i = 0; i < n; i++)
        vcpu_destroy(gone[i]);
    if (vm->vm_fd >= 0)
        close(vm->vm_fd);
    vm->vm_fd = -1;
}

void vm_teardown(struct vm *vm)
{
    vm_close_kvm(vm);
    /* A reset starts from zeroed memory, as a power cycle would. After a
     * restore the RAM is a private mapping of the snapshot file, where
     * MADV_DONTNEED would bring the file's pages back: fresh anonymous
     * pages go over the same range instead, with the advice vm_map_ram
     * gives them. */
    if (!vm->ram)
        return;
    void *p = mmap(vm->ram, vm->ram_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
    if (p == MAP_FAILED) {
        log_warn("cannot map fresh guest memory (%s); clearing it in place", strerror(errno));
        memset(vm->ram, 0, vm->ram_size);
        return;
    }
    if (vm->ram_size > HUGE_2M)
        madvise(vm->ram + HUGE_2M, vm->ram_size - HUGE_2M, MADV_HUGEPAGE);
}

void vm_destroy(struct vm *vm)
{
    if (!vm)
        return;
    vm_close_kvm(vm);
    if (vm->ram)
        munmap(vm->ram, vm->ram_size);
    if (vm->kvm_fd >= 0)
        close(vm->kvm_fd);
    iobus_destroy(&vm->pio);
    iobus_destroy(&vm->mmio);
    pthread_mutex_destroy(&vm->lock);
    pthread_mutex_destroy(&vm->route_lock);
    pthread_mutex_destroy(&vm->pause_lock);
    pthread_cond_destroy(&vm->pause_cond);
    free(vm);
}

int vm_irq_line(struct vm *vm, unsigned gsi, int level)
{
    struct kvm_irq_level irq = { .irq = gsi, .level = level ? 1 : 0 };
    if (vm->vm_fd < 0)
        return -ENODEV;
    if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
        return -errno;
    return 0;
}

/* Caller holds pause_lock, which keeps the vCPU table still. */
static void kick_all(struct vm *vm)
{
    for (unsigned i = 0; i < vm->ncpus; i++)
        if (vm->vcpus[i])
            vcpu_kick(vm->vcpus[i]);
}

void vm_request_exit(struct vm *vm, enum vm_exit_reason reason, const char *fmt, ...)
{
    int none = VM_EXIT_NONE;
    if (!atomic_compare_exchange_strong(&vm->exit_reason, &none, (int)reason))
        return;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(vm->exit_msg, sizeof(vm->exit_msg), fmt, ap);
        va_end(ap);
    }
    /* Running vCPUs leave KVM_RUN, parked ones wake: all see the exit. */
    pthread_mutex_lock(&vm->pause_lock);
    kick_all(vm);
    pthread_cond_broadcast(&vm->pause_cond);
    pthread_mutex_unlock(&vm->pause_lock);
    if (vm->on_exit)
        vm->on_exit(vm->on_exit_opaque);
}

enum vm_exit_reason vm_exit_reason(struct vm *vm)
{
    return (enum vm_exit_reason)atomic_load(&vm->exit_reason);
}

int vm_pause(struct vm *vm)
{
    pthread_mutex_lock(&vm->pause_lock);
    /* The flag is set before the kick, so a vCPU the kick takes out of
     * KVM_RUN (or that was outside it) sees it at the top of its loop. */
    atomic_store(&vm->pause_req, true);
    kick_all(vm);
    while (vm->vcpus_parked < vm->vcpus_running)
        pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
    pthread_mutex_unlock(&vm->pause_lock);
    return 0;
}

void vm_resume(struct vm *vm)
{
    pthread_mutex_lock(&vm->pause_lock);
    atomic_store(&vm->pause_req, false);
    pthread_cond_broadcast(&vm->pause_cond);
    pthread_mutex_unlock(&vm->pause_lock);
}

bool vm_paused(struct vm *vm)
{
    return atomic_load(&vm->pause_req);
}

void vm_vcpu_enter(struct vm *vm)
{
    pthread_mutex_lock(&vm->pause_lock);
    vm->vcpus_running++;
    pthread_mutex_unlock(&vm->pause_lock);
}

void vm_vcpu_leave(struct vm *vm)
{
    pthread_mutex_lock(&vm->pause_lock);
    vm->vcpus_running--;
    pthread_cond_broadcast(&vm->pause_cond);
    pthread_mutex_unlock(&vm->pause_lock);
}

void vm_vcpu_park(struct vm *vm)
{
    pthread_mutex_lock(&vm->pause_lock);
    vm->vcpus_parked++;
    pthread_cond_broadcast(&vm->pause_cond);
    while (atomic_load(&vm->pause_req) && vm_exit_reason(vm) == VM_EXIT_NONE)
        pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
    vm->vcpus_parked--;
    pthread_mutex_unlock(&vm->pause_lock);
}
