/* A KVM virtual machine: guest memory, vCPUs, the in-kernel irqchip and PIT,
 * the I/O buses and the platform devices. */
#ifndef CVIRT_VMM_VM_H
#define CVIRT_VMM_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iobus.h"
#include "util/err.h"

struct evloop;
struct console;
struct control;
struct pci_bus;
struct vcpu;

#define VM_MAX_CPUS 64
#define VM_MIN_MEM  (16ULL << 20)
#define VM_MAX_MEM  (1ULL << 40)

/* Why the VM stopped running; the first reason requested wins. */
enum vm_exit_reason {
    VM_EXIT_NONE = 0,
    VM_EXIT_POWEROFF,   /* ACPI S5 or equivalent: process exits 0 */
    VM_EXIT_RESET,      /* guest asked for a reset (i8042, 0xcf9, ACPI) */
    VM_EXIT_TRIPLE_FAULT,
    VM_EXIT_SIGNAL,     /* SIGTERM/SIGINT or console escape */
    VM_EXIT_ERROR,      /* emulation failure, internal error, bad state */
};

struct vm_config {
    uint64_t mem_size;
    unsigned ncpus;
    const char *kernel;
    const char *initrd;
    const char *cmdline;
    bool no_reboot;
};

struct mem_slot {
    uint64_t gpa, size;
    uint8_t *hva;
};

/* GSIs above the IOAPIC's pins carry MSI routes (one per MSI-X vector). */
#define VM_GSI_MSI_BASE 24
#define VM_MAX_MSI_ROUTES 512

struct vm_msi_route {
    uint64_t addr;
    uint32_t data;
    bool allocated;
    bool valid;              /* in the routing table */
};

/* Run at the end of every vm_setup: a guest reset recreates the KVM VM fd,
 * dropping every ioeventfd and irqfd, so devices attach them again here. */
struct vm_setup_hook {
    int (*fn)(void *opaque, struct err *e);
    void *opaque;
};
#define VM_MAX_SETUP_HOOKS 32

struct vm {
    struct vm_config cfg;
    int kvm_fd;
    int vm_fd;
    int vcpu_mmap_size;

    uint8_t *ram;            /* one mapping of all guest RAM */
    uint64_t ram_size;
    struct mem_slot slots[2];/* below the 32-bit hole, above 4 GiB */
    unsigned nslots;

    struct iobus pio;
    struct iobus mmio;

    struct vcpu *vcpus[VM_MAX_CPUS];
    unsigned ncpus;

    void *platform_state[16]; /* indexed like the table in hw/platform.c */

    struct pci_bus *pci;     /* the PCI host bridge and its bus 0 */
    struct vm_setup_hook setup_hooks[VM_MAX_SETUP_HOOKS];
    unsigned nsetup_hooks;
    /* MSI routes, GSI VM_GSI_MSI_BASE + index; under route_lock. */
    struct vm_msi_route msi_routes[VM_MAX_MSI_ROUTES];
    pthread_mutex_t route_lock;

    struct evloop *loop;     /* the device/event thread's loop */
    struct console *console; /* serial backend (stdio, pty or file) */
    /* The QMP server (--control), NULL without one; created before the
     * virtio devices so their create ops can register commands. */
    struct control *control;

    uint64_t rsdp_gpa;       /* where acpi_build put the RSDP */
    uint64_t entry;          /* kernel entry point */
    bool entry_pvh;          /* 32-bit PVH entry vs 64-bit Linux entry */

    atomic_int exit_reason;  /* enum vm_exit_reason */
    /* Called once by vm_request_exit (any thread) to wake the main loop. */
    void (*on_exit)(void *opaque);
    void *on_exit_opaque;
    char exit_msg[256];      /* the one line printed for an error exit */
    pthread_mutex_t lock;

    /* Pause: while pause_req is set, vCPU threads park outside KVM_RUN.
     * The counts are under pause_lock; pause_cond signals every change. */
    atomic_bool pause_req;
    unsigned vcpus_running;  /* vCPU threads inside their run loop */
    unsigned vcpus_parked;
    pthread_mutex_t pause_lock;
    pthread_cond_t pause_cond;
};

/* Creates the memory and the devices; no KVM VM yet. */
int vm_create(struct vm **out, const struct vm_config *cfg, struct err *e);
/* Creates the KVM VM, irqchip, PIT and vCPUs and loads the kernel. Called at
 * start and again after each guest reset. */
int vm_setup(struct vm *vm, struct err *e);
/* Destroys vCPUs and the KVM VM, keeps memory (zeroed) and device objects. */
void vm_teardown(struct vm *vm);
void vm_destroy(struct vm *vm);

/* Host pointer to [gpa, gpa+len) or NULL when it is not all guest RAM. */
void *vm_gpa(struct vm *vm, uint64_t gpa, uint64_t len);

/* Raises or lowers an interrupt line on the in-kernel irqchip. */
int vm_irq_line(struct vm *vm, unsigned gsi, int level);

/* Allocates a GSI for an MSI route; returns it or -ENOSPC. */
int vm_gsi_alloc(struct vm *vm);
void vm_gsi_free(struct vm *vm, unsigned gsi);
/* Points an allocated GSI at an MSI message (valid) or takes it out of the
 * routing table, and pushes the table to KVM when a KVM VM exists and
 * something changed. Any thread. */
int vm_msi_route(struct vm *vm, unsigned gsi, uint64_t addr, uint32_t data, bool valid);
/* KVM_IRQFD: writes to fd raise gsi. -ENODEV without a KVM VM. */
int vm_irqfd(struct vm *vm, int fd, unsigned gsi, bool assign);
/* KVM_IOEVENTFD on an MMIO address: guest writes of len bytes (0: any
 * length) signal fd without an exit to user space. */
int vm_ioeventfd(struct vm *vm, int fd, uint64_t gpa, unsigned len, bool assign);
/* Adds a hook run at the end of each vm_setup; -ENOSPC when full. */
int vm_add_setup_hook(struct vm *vm, int (*fn)(void *opaque, struct err *e), void *opaque);

/* Asks every vCPU to stop and the main loop to act; safe from any thread. */
void vm_request_exit(struct vm *vm, enum vm_exit_reason reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
enum vm_exit_reason vm_exit_reason(struct vm *vm);

/* Parks every vCPU outside KVM_RUN and returns once all are parked (or
 * gone, when the VM is stopping or resetting). Devices keep running. A
 * pause outlives a guest reset: the new vCPUs park at once. Any thread
 * but a vCPU's; returns 0. */
int vm_pause(struct vm *vm);
/* Lets parked vCPUs run again; no-op when not paused. */
void vm_resume(struct vm *vm);
bool vm_paused(struct vm *vm);

/* For vcpu.c: a vCPU thread entering and leaving its run loop, and the
 * place it waits while the VM is paused. */
void vm_vcpu_enter(struct vm *vm);
void vm_vcpu_leave(struct vm *vm);
void vm_vcpu_park(struct vm *vm);

#endif
