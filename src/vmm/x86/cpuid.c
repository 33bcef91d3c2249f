#include "x86/cpuid.h"

#include <cpuid.h>
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID_1_ECX_OSXSAVE      (1u << 27)
#define CPUID_1_ECX_HYPERVISOR   (1u << 31)
#define CPUID_1_EDX_HTT          (1u << 28)
#define CPUID_6_EAX_ARAT         (1u << 2)
#define KVM_CPUID_SIGNATURE      0x40000000u
#define KVM_CPUID_FEATURES       0x40000001u
/* KVM PV features that are hypercalls (Documentation/virt/kvm/x86/cpuid.rst) */
#define KVM_FEATURE_PV_UNHALT      (1u << 7)   /* KVM_HC_KICK_CPU */
#define KVM_FEATURE_PV_SEND_IPI    (1u << 11)  /* KVM_HC_SEND_IPI */
#define KVM_FEATURE_PV_SCHED_YIELD (1u << 13)  /* KVM_HC_SCHED_YIELD */

int cpuid_get_supported(int kvm_fd, struct cpuid_table *t, struct err *e)
{
    memset(t, 0, sizeof(*t));
    t->hdr.nent = CPUID_MAX_ENTRIES;
    if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, &t->hdr) < 0)
        return err_set_errno(e, errno, "KVM_GET_SUPPORTED_CPUID");
    return 0;
}

struct kvm_cpuid_entry2 *cpuid_find(struct cpuid_table *t, unsigned function, unsigned index)
{
    for (unsigned i = 0; i < t->hdr.nent; i++) {
        struct kvm_cpuid_entry2 *en = &t->entries[i];
        if (en->function != function)
            continue;
        if ((en->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && en->index != index)
            continue;
        return en;
    }
    return NULL;
}

/* Number of bits needed to hold ids 0..n-1. */
static unsigned id_bits(unsigned n)
{
    unsigned b = 0;
    while ((1u << b) < n)
        b++;
    return b;
}

/* Leaves 0xB and 0x1F: level 0 is SMT (1 thread), level 1 is core (ncpus). */
static void shape_topology(struct kvm_cpuid_entry2 *en, unsigned apic_id, unsigned ncpus)
{
    unsigned shift = id_bits(ncpus);
    en->edx = apic_id;
    switch (en->index) {
    case 0:
        en->eax = 0;
        en->ebx = 1;
        en->ecx = (1u << 8) | 0;
        break;
    case 1:
        en->eax = shift;
        en->ebx = ncpus;
        en->ecx = (2u << 8) | 1;
        break;
    default:
        en->eax = 0;
        en->ebx = 0;
        en->ecx = en->index; /* level type 0: invalid, ends the enumeration */
        break;
    }
}

bool cpuid_host_has_hw_virt(void)
{
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 5)))
        return true; /* VMX */
    if (__get_cpuid(0x80000001, &a, &b, &c, &d) && (c & (1u << 2)))
        return true; /* SVM */
    return false;
}

void cpuid_shape(struct cpuid_table *t, unsigned index, unsigned ncpus,
                 const struct cpuid_policy *pol)
{
    bool tsc_deadline = pol->tsc_deadline;
    unsigned apic_id = index;
    for (unsigned i = 0; i < t->hdr.nent; i++) {
        struct kvm_cpuid_entry2 *en = &t->entries[i];
        switch (en->function) {
        case 1:
            en->ebx = (en->ebx & 0x0000ffffu) | (apic_id << 24) | ((ncpus & 0xff) << 16);
            en->ecx |= CPUID_1_ECX_HYPERVISOR;
            /* OSXSAVE mirrors CR4.OSXSAVE; KVM updates it at run time. */
            en->ecx &= ~CPUID_1_ECX_OSXSAVE;
            if (tsc_deadline)
                en->ecx |= CPUID_1_ECX_TSC_DEADLINE;
            if (ncpus > 1)
                en->edx |= CPUID_1_EDX_HTT;
            else
                en->edx &= ~CPUID_1_EDX_HTT;
            break;
        case 4:
            /* Cache sharing: each core has its own L1/L2, all share the rest. */
            if ((en->eax & 0x1f) == 0)
                break;
            {
                unsigned level = (en->eax >> 5) & 7;
                unsigned sharing = level >= 3 ? ncpus : 1;
                unsigned cores = 1u << id_bits(ncpus);
                en->eax &= 0x3ff;
                en->eax |= ((sharing - 1) & 0xfff) << 14;
                en->eax |= ((cores - 1) & 0x3f) << 26;
            }
            break;
        case 6:
            /* No thermal/power management MSRs behind these bits; only
             * ARAT stays: KVM's LAPIC timer never stops in idle, and a
             * guest that is not told so keeps a broadcast timer ticking. */
            en->eax &= CPUID_6_EAX_ARAT;
            en->ebx = en->ecx = en->edx = 0;
            break;
        case 0xa:
            /* No virtual PMU: its MSRs are not provided. */
            en->eax = en->ebx = en->ecx = en->edx = 0;
            break;
        case 0xb:
        case 0x1f:
            shape_topology(en, apic_id, ncpus);
            break;
        case 0x80000007:
            /* No invariant TSC, as QEMU by default: Linux then keeps
             * kvm-clock, which survives a restore or a migration to a host
             * whose TSC differs; a raw TSC would jump. */
            en->edx &= ~(1u << 8);
            break;
        case KVM_CPUID_SIGNATURE:
            en->eax = KVM_CPUID_FEATURES;
            memcpy(&en->ebx, "KVMK", 4);
            memcpy(&en->ecx, "VMKV", 4);
            memcpy(&en->edx, "M\0\0\0", 4);
            break;
        case KVM_CPUID_FEATURES:
            if (!pol->hypercalls)
                en->eax &= ~(KVM_FEATURE_PV_UNHALT | KVM_FEATURE_PV_SEND_IPI |
                             KVM_FEATURE_PV_SCHED_YIELD);
            break;
        default:
            break;
        }
    }
}
