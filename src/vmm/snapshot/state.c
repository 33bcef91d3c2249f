/* The state sections of a VM in order: config, vCPUs, chips, devices. */
#include "snapshot/snapshot_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hw/platform.h"
#include "pci/pci.h"
#include "vcpu.h"
#include "vm.h"

#define SNAP_MAX_ARGS 256
#define SNAP_MAX_ARG  8192

int snap_state_save(struct snapbuf *b, struct vm *vm, int argc, char **argv, struct err *e)
{
    size_t s = snapbuf_section_begin(b, SNAP_SEC_CONFIG, 0);
    snapbuf_put_u32(b, (uint32_t)argc);
    for (int i = 0; i < argc; i++)
        snapbuf_put_str(b, argv[i]);
    snapbuf_section_end(b, s);
    for (unsigned i = 0; i < vm->ncpus; i++) {
        int r = snap_cpu_save(b, vm->vcpus[i], e);
        if (r < 0)
            return r;
    }
    int r = snap_chips_save(b, vm, e);
    if (r < 0)
        return r;
    platform_save_all(vm, b, SNAP_SEC_PLATFORM);
    if (vm->pci) {
        s = snapbuf_section_begin(b, SNAP_SEC_PCI, 0);
        pci_bus_save(vm->pci, b);
        snapbuf_section_end(b, s);
    }
    s = snapbuf_section_begin(b, SNAP_SEC_END, 0);
    snapbuf_section_end(b, s);
    if (b->nomem)
        return err_set(e, ENOMEM, "out of memory for the VM state");
    return 0;
}

static void free_argv(int argc, char **argv)
{
    if (!argv)
        return;
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    free(argv);
}

int snap_state_config(const struct snapbuf *state, int *argc_out, char ***argv_out,
                      struct err *e)
{
    struct snapbuf it, body;
    snapbuf_view(&it, state->data, state->len);
    uint32_t tag, inst;
    if (snapbuf_section_next(&it, &tag, &inst, &body) != 1 || tag != SNAP_SEC_CONFIG)
        return err_set(e, EINVAL, "the machine configuration is missing");
    uint32_t n = snapbuf_get_u32(&body);
    if (body.short_read || n > SNAP_MAX_ARGS)
        return err_set(e, EINVAL, "bad machine configuration (%u options)", n);
    char **argv = calloc((size_t)n + 1, sizeof(char *));
    if (!argv)
        return err_set(e, ENOMEM, "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        argv[i] = snapbuf_get_str(&body, SNAP_MAX_ARG);
        if (!argv[i]) {
            free_argv((int)i, argv);
            return err_set(e, EINVAL, "bad machine configuration (option %u)", i);
        }
    }
    *argc_out = (int)n;
    *argv_out = argv;
    return 0;
}

static int load_section(uint32_t tag, uint32_t inst, struct snapbuf *body, struct vm *vm,
                        bool *cpu_seen, struct err *e)
{
    switch (tag) {
    case SNAP_SEC_CONFIG:
    case SNAP_SEC_END:
        return 0;
    case SNAP_SEC_CPU:
        if (inst >= vm->ncpus || !vm->vcpus[inst])
            return err_set(e, EINVAL, "state for vCPU %u, the VM has %u", inst, vm->ncpus);
        cpu_seen[inst] = true;
        return snap_cpu_load(body, vm->vcpus[inst], e);
    case SNAP_SEC_IRQCHIP:
    case SNAP_SEC_PIT:
    case SNAP_SEC_CLOCK:
        return snap_chip_load(tag, inst, body, vm, e);
    case SNAP_SEC_PLATFORM:
        return platform_load(vm, inst, body, e);
    case SNAP_SEC_PCI:
        if (!vm->pci)
            return err_set(e, EINVAL, "the snapshot has PCI devices, this machine none");
        return pci_bus_load(vm->pci, body, e);
    default:
        return err_set(e, EINVAL, "unknown state section %08x", tag);
    }
}

int snap_state_load(const struct snapbuf *state, struct vm *vm, struct err *e)
{
    struct snapbuf it, body;
    snapbuf_view(&it, state->data, state->len);
    uint32_t tag, inst;
    bool cpu_seen[VM_MAX_CPUS] = { false };
    bool ended = false, pci_seen = false;
    int r;
    /* CPUs before the chips and devices, which may raise lines into them. */
    static const uint32_t passes[][2] = { { SNAP_SEC_CPU, 0 }, { 0, SNAP_SEC_CPU } };
    for (unsigned p = 0; p < 2; p++) {
        snapbuf_view(&it, state->data, state->len);
        while ((r = snapbuf_section_next(&it, &tag, &inst, &body)) == 1) {
            if (tag == SNAP_SEC_END)
                ended = true;
            if (tag == SNAP_SEC_PCI)
                pci_seen = true;
            bool want = passes[p][0] ? tag == passes[p][0] : tag != passes[p][1];
            if (!want)
                continue;
            r = load_section(tag, inst, &body, vm, cpu_seen, e);
            if (r < 0)
                return r;
        }
        if (r < 0)
            return err_set(e, EINVAL, "state sections run past their end");
    }
    if (!ended)
        return err_set(e, EINVAL, "state has no end marker");
    for (unsigned i = 0; i < vm->ncpus; i++)
        if (!cpu_seen[i])
            return err_set(e, EINVAL, "no state for vCPU %u", i);
    if (vm->pci && !pci_seen)
        return err_set(e, EINVAL, "the machine has PCI devices, the snapshot none");
    return 0;
}
