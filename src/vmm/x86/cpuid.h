/* CPUID the guest sees: what KVM supports, shaped per vCPU (APIC id,
 * topology: one socket, one thread per core, N cores) with the KVM
 * paravirtual leaves so the guest uses kvm-clock. */
#ifndef CVIRT_VMM_X86_CPUID_H
#define CVIRT_VMM_X86_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>

#include "util/err.h"

#define CPUID_MAX_ENTRIES 256

struct cpuid_table {
    struct kvm_cpuid2 hdr;
    struct kvm_cpuid_entry2 entries[CPUID_MAX_ENTRIES];
};

/* Reads KVM_GET_SUPPORTED_CPUID from the /dev/kvm fd. */
int cpuid_get_supported(int kvm_fd, struct cpuid_table *t, struct err *e);
struct cpuid_policy {
    bool tsc_deadline;   /* the in-kernel LAPIC offers the TSC-deadline timer */
    /* Guest hypercalls (VMCALL/VMMCALL) work. Where KVM runs guest kernel
     * code through its instruction emulator (no VMX/SVM on the host), they
     * do not: the emulator keeps rewriting the instruction and the vCPU
     * spins. The PV features built on them are then hidden. */
    bool hypercalls;
};

/* Rewrites t in place for vCPU `index` of `ncpus` (APIC id == index). */
void cpuid_shape(struct cpuid_table *t, unsigned index, unsigned ncpus,
                 const struct cpuid_policy *pol);
/* Whether this host CPU has VMX or SVM, i.e. KVM runs guests in hardware. */
bool cpuid_host_has_hw_virt(void);
/* The entry for (function, index), or NULL. */
struct kvm_cpuid_entry2 *cpuid_find(struct cpuid_table *t, unsigned function, unsigned index);

#endif
