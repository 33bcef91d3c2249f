/* One vCPU: its KVM fd, the shared kvm_run page and its thread. */
#ifndef CVIRT_VMM_VCPU_H
#define CVIRT_VMM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>

#include "util/err.h"

struct vm;

struct vcpu {
    struct vm *vm;
    unsigned id;
    int fd;
    struct kvm_run *run;
    pthread_t thread;
    bool thread_started;
    int tid;                 /* the thread's kernel id, once it runs */
    unsigned long nexits;
};

/* Creates the vCPU with its CPUID, MSRs and LAPIC set up; the BSP's
 * registers are set later by the boot code. */
int vcpu_create(struct vm *vm, unsigned id, struct vcpu **out, struct err *e);
int vcpu_start(struct vcpu *v, struct err *e);
/* Makes a running KVM_RUN return soon; safe from any thread. */
void vcpu_kick(struct vcpu *v);
void vcpu_join(struct vcpu *v);
void vcpu_destroy(struct vcpu *v);
/* Logs registers and run state at debug level (why a guest hangs). */
void vcpu_log_state(struct vcpu *v);
/* Installs the (empty) signal handler used for kicks; once per process. */
void vcpu_signals_init(void);

#define VCPU_KICK_SIGNAL SIGUSR1

#endif
