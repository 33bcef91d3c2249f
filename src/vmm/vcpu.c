#include "vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/log.h"
#include "vm.h"
#include "x86/cpuid.h"

#define MSR_IA32_SYSENTER_CS   0x174
#define MSR_IA32_SYSENTER_ESP  0x175
#define MSR_IA32_SYSENTER_EIP  0x176
#define MSR_IA32_MISC_ENABLE   0x1a0
#define MSR_MTRR_DEF_TYPE      0x2ff
#define MSR_STAR               0xc0000081
#define MSR_LSTAR              0xc0000082
#define MSR_CSTAR              0xc0000083
#define MSR_SYSCALL_MASK       0xc0000084
#define MSR_KERNEL_GS_BASE     0xc0000102

#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_MODE_EXTINT 0x7
#define APIC_MODE_NMI    0x4

static void kick_handler(int sig) { (void)sig; }

void vcpu_signals_init(void)
{
    struct sigaction sa = { .sa_handler = kick_handler };
    sigemptyset(&sa.sa_mask);
    sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
}

static int vcpu_set_cpuid(struct vcpu *v, struct err *e)
{
    static struct cpuid_table supported;
    static int have_supported;
    struct vm *vm = v->vm;
    if (!have_supported) {
        int r = cpuid_get_supported(vm->kvm_fd, &supported, e);
        if (r < 0)
            return r;
        have_supported = 1;
    }
    struct cpuid_table *t = malloc(sizeof(*t));
    if (!t)
        return err_set(e, ENOMEM, "out of memory");
    memcpy(t, &supported, sizeof(*t));
    struct cpuid_policy pol = {
        .tsc_deadline = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0,
        .hypercalls = cpuid_host_has_hw_virt(),
    };
    cpuid_shape(t, v->id, vm->cfg.ncpus, &pol);
    int r = 0;
    if (ioctl(v->fd, KVM_SET_CPUID2, &t->hdr) < 0)
        r = err_set_errno(e, errno, "vCPU %u: KVM_SET_CPUID2", v->id);
    free(t);
    return r;
}

static int vcpu_set_msrs(struct vcpu *v, struct err *e)
{
    static const struct { uint32_t index; uint64_t data; } boot_msrs[] = {
        { MSR_IA32_SYSENTER_CS, 0 }, { MSR_IA32_SYSENTER_ESP, 0 },
        { MSR_IA32_SYSENTER_EIP, 0 }, { MSR_STAR, 0 }, { MSR_CSTAR, 0 },
        { MSR_KERNEL_GS_BASE, 0 }, { MSR_SYSCALL_MASK, 0 }, { MSR_LSTAR, 0 },
        { MSR_IA32_MISC_ENABLE, 1 /* fast strings */ },
        /* MTRRs enabled, default type write-back: all RAM cacheable. */
        { MSR_MTRR_DEF_TYPE, (1u << 11) | 6 },
    };
    const unsigned n = sizeof(boot_msrs) / sizeof(boot_msrs[0]);
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry entries[sizeof(boot_msrs) / sizeof(boot_msrs[0])];
    } msrs;
    memset(&msrs, 0, sizeof(msrs));
    msrs.hdr.nmsrs = n;
    for (unsigned i = 0; i < n; i++) {
        msrs.entries[i].index = boot_msrs[i].index;
        msrs.entries[i].data = boot_msrs[i].data;
    }
    int r = ioctl(v->fd, KVM_SET_MSRS, &msrs);
    if (r < 0)
        return err_set_errno(e, errno, "vCPU %u: KVM_SET_MSRS", v->id);
    if ((unsigned)r != n)
        log_debug("vCPU %u: KVM took %d of %u boot MSRs (first refused: %#x)", v->id, r, n,
                  boot_msrs[r].index);
    return 0;
}

/* LINT0 as ExtINT and LINT1 as NMI: the virtual-wire setup firmware leaves
 * for an OS that starts in PIC mode. */
static int vcpu_set_lapic(struct vcpu *v, struct err *e)
{
    struct kvm_lapic_state la;
    if (ioctl(v->fd, KVM_GET_LAPIC, &la) < 0)
        return err_set_errno(e, errno, "vCPU %u: KVM_GET_LAPIC", v->id);
    uint32_t *lint0 = (uint32_t *)&la.regs[APIC_LVT_LINT0];
    uint32_t *lint1 = (uint32_t *)&la.regs[APIC_LVT_LINT1];
    *lint0 = (*lint0 & ~0x700u) | (APIC_MODE_EXTINT << 8);
    *lint1 = (*lint1 & ~0x700u) | (APIC_MODE_NMI << 8);
    if (ioctl(v->fd, KVM_SET_LAPIC, &la) < 0)
        return err_set_errno(e, errno, "vCPU %u: KVM_SET_LAPIC", v->id);
    return 0;
}

int vcpu_create(struct vm *vm, unsigned id, struct vcpu **out, struct err *e)
{
    struct vcpu *v = calloc(1, sizeof(*v));
    if (!v)
        return err_set(e, ENOMEM, "out of memory");
    v->vm = vm;
    v->id = id;
    v->run = MAP_FAILED;
    int r;
    v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
    if (v->fd < 0) {
        r = err_set_errno(e, errno, "KVM_CREATE_VCPU %u", id);
        goto fail;
    }
    v->run = mmap(NULL, vm->vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
    if (v->run == MAP_FAILED) {
        r = err_set_errno(e, errno, "vCPU %u: mmap of kvm_run", id);
        goto fail;
    }
    if ((r = vcpu_set_cpuid(v, e)) < 0 || (r = vcpu_set_msrs(v, e)) < 0 ||
        (r = vcpu_set_lapic(v, e)) < 0)
        goto fail;
    *out = v;
    return 0;
fail:
    vcpu_destroy(v);
    return r;
}

static void vcpu_handle_io(struct vcpu *v)
{
    struct kvm_run *run = v->run;
    uint8_t *p = (uint8_t *)run + run->io.data_offset;
    unsigned size = run->io.size;
    for (uint32_t i = 0; i < run->io.count; i++, p += size) {
        bool hit;
        if (run->io.direction == KVM_EXIT_IO_OUT)
            hit = iobus_write(&v->vm->pio, run->io.port, p, size);
        else
            hit = iobus_read(&v->vm->pio, run->io.port, p, size);
        if (!hit)
            log_debug("vCPU %u: unhandled port %s %#x size %u", v->id,
                      run->io.direction == KVM_EXIT_IO_OUT ? "write" : "read",
                      run->io.port, size);
    }
}

static void vcpu_handle_mmio(struct vcpu *v)
{
    struct kvm_run *run = v->run;
    unsigned len = run->mmio.len;
    if (len > sizeof(run->mmio.data))
        len = sizeof(run->mmio.data);
    bool hit;
    if (run->mmio.is_write)
        hit = iobus_write(&v->vm->mmio, run->mmio.phys_addr, run->mmio.data, len);
    else
        hit = iobus_read(&v->vm->mmio, run->mmio.phys_addr, run->mmio.data, len);
    if (!hit)
        log_debug("vCPU %u: unhandled MMIO %s %#llx len %u", v->id,
                  run->mmio.is_write ? "write" : "read",
                  (unsigned long long)run->mmio.phys_addr, len);
}

static void vcpu_report_failure(struct vcpu *v, const char *what)
{
    struct kvm_regs regs;
    unsigned long long rip = 0;
    if (ioctl(v->fd, KVM_GET_REGS, &regs) == 0)
        rip = regs.rip;
    vm_request_exit(v->vm, VM_EXIT_ERROR, "vCPU %u: %s at rip %#llx", v->id, what, rip);
}

/* Returns false when the vCPU must stop. */
static bool vcpu_handle_exit(struct vcpu *v)
{
    struct kvm_run *run = v->run;
    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        vcpu_handle_io(v);
        return true;
    case KVM_EXIT_MMIO:
        vcpu_handle_mmio(v);
        return true;
    case KVM_EXIT_HLT:
        /* Only without an in-kernel LAPIC; ours has one. */
        return true;
    case KVM_EXIT_INTR:
        return true;
    case KVM_EXIT_SHUTDOWN:
        vm_request_exit(v->vm, VM_EXIT_TRIPLE_FAULT, "vCPU %u: triple fault", v->id);
        return false;
    case KVM_EXIT_SYSTEM_EVENT:
        if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
            vm_request_exit(v->vm, VM_EXIT_RESET, NULL);
        else
            vm_request_exit(v->vm, VM_EXIT_POWEROFF, NULL);
        return false;
    case KVM_EXIT_INTERNAL_ERROR:
        if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION)
            vcpu_report_failure(v, "KVM emulation failure (an instruction this KVM cannot emulate)");
        else {
            char what[64];
            snprintf(what, sizeof(what), "KVM internal error %u", run->internal.suberror);
            vcpu_report_failure(v, what);
        }
        return false;
    case KVM_EXIT_FAIL_ENTRY: {
        char what[96];
        snprintf(what, sizeof(what), "VM entry failed (hardware reason %#llx)",
                 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
        vcpu_report_failure(v, what);
        return false;
    }
    default: {
        char what[64];
        snprintf(what, sizeof(what), "unexpected KVM exit %u", run->exit_reason);
        vcpu_report_failure(v, what);
        return false;
    }
    }
}

static void *vcpu_thread(void *arg)
{
    struct vcpu *v = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, VCPU_KICK_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    __atomic_store_n(&v->tid, (int)gettid(), __ATOMIC_RELAXED);
    while (vm_exit_reason(v->vm) == VM_EXIT_NONE) {
        if (atomic_load(&v->vm->pause_req)) {
            vm_vcpu_park(v->vm);
            continue;
        }
        int r = ioctl(v->fd, KVM_RUN, 0);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                v->run->immediate_exit = 0;
                continue;
            }
            char what[96];
            snprintf(what, sizeof(what), "KVM_RUN failed: %s", strerror(errno));
            vcpu_report_failure(v, what);
            break;
        }
        v->nexits++;
        if (!vcpu_handle_exit(v))
            break;
    }
    vm_vcpu_leave(v->vm);
    return NULL;
}

int vcpu_start(struct vcpu *v, struct err *e)
{
    /* Start with the kick signal blocked; the thread unblocks it itself. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, VCPU_KICK_SIGNAL);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    /* Counted before it runs, so a pause never misses a starting vCPU. */
    vm_vcpu_enter(v->vm);
    int r = pthread_create(&v->thread, NULL, vcpu_thread, v);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        vm_vcpu_leave(v->vm);
        return err_set_errno(e, r, "cannot start vCPU %u thread", v->id);
    }
    v->thread_started = true;
    char name[16];
    snprintf(name, sizeof(name), "vcpu%u", v->id);
    pthread_setname_np(v->thread, name);
    return 0;
}

void vcpu_kick(struct vcpu *v)
{
    if (v->run != MAP_FAILED)
        v->run->immediate_exit = 1;
    if (v->thread_started)
        pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

void vcpu_join(struct vcpu *v)
{
    if (!v->thread_started)
        return;
    pthread_join(v->thread, NULL);
    v->thread_started = false;
}

void vcpu_destroy(struct vcpu *v)
{
    if (!v)
        return;
    vcpu_join(v);
    if (v->run != MAP_FAILED)
        munmap(v->run, v->vm->vcpu_mmap_size);
    if (v->fd >= 0)
        close(v->fd);
    free(v);
}

void vcpu_log_state(struct vcpu *v)
{
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0 || ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
        return;
    struct kvm_mp_state mp = { 0 };
    ioctl(v->fd, KVM_GET_MP_STATE, &mp);
    log_msg(LOG_DEBUG, "vCPU %u: rip %#llx rsp %#llx rflags %#llx cr0 %#llx cr3 %#llx mp_state %u exits %lu",
            v->id, (unsigned long long)regs.rip, (unsigned long long)regs.rsp,
            (unsigned long long)regs.rflags, (unsigned long long)sregs.cr0,
            (unsigned long long)sregs.cr3, mp.mp_state, v->nexits);
}
