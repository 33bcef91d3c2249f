/* vCPU and in-kernel chip state: what KVM holds for a VM, saved as KVM's
 * own x86-64 structures (each blob carries its length, checked on load). */
#include "snapshot/snapshot_int.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "util/log.h"
#include "vcpu.h"
#include "vm.h"

enum {
    CPU_REGS = SNAP_TAG('R', 'E', 'G', 'S'),
    CPU_SREGS = SNAP_TAG('S', 'R', 'E', 'G'),
    CPU_XSAVE = SNAP_TAG('X', 'S', 'A', 'V'),
    CPU_FPU = SNAP_TAG('F', 'P', 'U', ' '),
    CPU_XCRS = SNAP_TAG('X', 'C', 'R', 'S'),
    CPU_MSRS = SNAP_TAG('M', 'S', 'R', 'S'),
    CPU_MPSTATE = SNAP_TAG('M', 'P', 'S', 'T'),
    CPU_LAPIC = SNAP_TAG('L', 'A', 'P', 'I'),
    CPU_EVENTS = SNAP_TAG('E', 'V', 'N', 'T'),
    CPU_DEBUG = SNAP_TAG('D', 'B', 'G', 'R'),
};

/* The MSRs KVM lists and also lets us read, probed once per process. */
static uint32_t *msr_list;
static unsigned msr_count;

static int probe_msrs(struct vm *vm, int vcpu_fd, struct err *e)
{
    if (msr_list)
        return 0;
    struct kvm_msr_list probe = { .nmsrs = 0 };
    ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe); /* E2BIG, with the count */
    if (probe.nmsrs == 0 || probe.nmsrs > 4096)
        return err_set(e, EIO, "KVM_GET_MSR_INDEX_LIST gave %u MSRs", probe.nmsrs);
    struct kvm_msr_list *l = calloc(1, sizeof(*l) + probe.nmsrs * sizeof(uint32_t));
    uint32_t *out = calloc(probe.nmsrs, sizeof(uint32_t));
    if (!l || !out) {
        free(l);
        free(out);
        return err_set(e, ENOMEM, "out of memory");
    }
    l->nmsrs = probe.nmsrs;
    if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
        free(l);
        free(out);
        return err_set_errno(e, errno, "KVM_GET_MSR_INDEX_LIST");
    }
    unsigned n = 0;
    for (unsigned i = 0; i < l->nmsrs; i++) {
        struct { struct kvm_msrs h; struct kvm_msr_entry en; } one = { 0 };
        one.h.nmsrs = 1;
        one.en.index = l->indices[i];
        if (ioctl(vcpu_fd, KVM_GET_MSRS, &one) == 1)
            out[n++] = l->indices[i];
    }
    free(l);
    msr_list = out;
    msr_count = n;
    log_debug("snapshot: %u MSRs saved per vCPU", n);
    return 0;
}

static int put_ioctl_blob(struct snapbuf *b, int fd, unsigned long req, uint32_t tag,
                          size_t size, unsigned id, bool optional, const char *what,
                          struct err *e)
{
    void *p = calloc(1, size);
    if (!p)
        return err_set(e, ENOMEM, "out of memory");
    int r = 0;
    if (ioctl(fd, req, p) < 0) {
        if (!optional)
            r = err_set_errno(e, errno, "vCPU %u: %s", id, what);
        else
            log_debug("vCPU %u: %s: %s (not saved)", id, what, strerror(errno));
    } else {
        size_t s = snapbuf_section_begin(b, tag, 0);
        snapbuf_put(b, p, size);
        snapbuf_section_end(b, s);
    }
    free(p);
    return r;
}

static int save_msrs(struct snapbuf *b, struct vcpu *v, struct err *e)
{
    struct kvm_msrs *m = calloc(1, sizeof(*m) + msr_count * sizeof(struct kvm_msr_entry));
    if (!m)
        return err_set(e, ENOMEM, "out of memory");
    m->nmsrs = msr_count;
    for (unsigned i = 0; i < msr_count; i++)
        m->entries[i].index = msr_list[i];
    int got = ioctl(v->fd, KVM_GET_MSRS, m);
    if (got < 0) {
        free(m);
        return err_set_errno(e, errno, "vCPU %u: KVM_GET_MSRS", v->id);
    }
    size_t s = snapbuf_section_begin(b, CPU_MSRS, 0);
    snapbuf_put_u32(b, (uint32_t)got);
    for (int i = 0; i < got; i++) {
        snapbuf_put_u32(b, m->entries[i].index);
        snapbuf_put_u64(b, m->entries[i].data);
    }
    snapbuf_section_end(b, s);
    free(m);
    return 0;
}

/* A vCPU parked after an I/O exit has not finished the instruction (an IN
 * has not written its register yet); a KVM_RUN that exits at once
 * completes it, so the registers saved are those after the instruction. */
static void complete_pending_io(struct vcpu *v)
{
    v->run->immediate_exit = 1;
    if (ioctl(v->fd, KVM_RUN, 0) == 0)
        log_debug("vCPU %u: exit %u while completing I/O", v->id, v->run->exit_reason);
    v->run->immediate_exit = 0;
}

int snap_cpu_save(struct snapbuf *b, struct vcpu *v, struct err *e)
{
    struct vm *vm = v->vm;
    int r = probe_msrs(vm, v->fd, e);
    if (r < 0)
        return r;
    complete_pending_io(v);
    size_t top = snapbuf_section_begin(b, SNAP_SEC_CPU, v->id);
    int xsave2 = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
    size_t xsize = xsave2 > (int)sizeof(struct kvm_xsave) ? (size_t)xsave2 : sizeof(struct kvm_xsave);
    unsigned id = v->id;
    if ((r = put_ioctl_blob(b, v->fd, KVM_GET_REGS, CPU_REGS, sizeof(struct kvm_regs), id, false, "KVM_GET_REGS", e)) < 0 ||
        (r = put_ioctl_blob(b, v->fd, KVM_GET_SREGS, CPU_SREGS, sizeof(struct kvm_sregs), id, false, "KVM_GET_SREGS", e)) < 0 ||
        (r = put_ioctl_blob(b, v->fd, xsave2 > 0 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, CPU_XSAVE, xsize, id, true, "KVM_GET_XSAVE", e)) < 0 ||
        (r = put_ioctl_blob(b, v->fd, KVM_GET_FPU, CPU_FPU, sizeof(struct kvm_fpu), id, true, "KVM_GET_FPU", e)) < 0 ||
        (r = put_ioctl_blob(b, v->fd, KVM_GET_XCRS, CPU_XCRS, sizeof(struct kvm_xcrs), id, true, "KVM_GET_XCRS", e)) < 0 ||
        (r = save_msrs(b, v, e)) < 0 ||
        (r = put_ioctl_blob(b, v->fd, KVM_GET_MP_STATE, CPU_MPSTATE, sizeof(struct kvm_mp_state), id, false, "KVM_GET_MP_STATE", e)) < 0 ||
        (r = put_ioctl_blob(b, v->fd, KVM_GET_LAPIC, CPU_LAPIC, sizeof(struct kvm_lapic_state), id, false, "KVM_GET_LAPIC", e)) < 0 ||
        (r = put_ioctl_blob(b, v->fd, KVM_GET_VCPU_EVENTS, CPU_EVENTS, sizeof(struct kvm_vcpu_events), id, false, "KVM_GET_VCPU_EVENTS", e)) < 0 ||
        (r = put_ioctl_blob(b, v->fd, KVM_GET_DEBUGREGS, CPU_DEBUG, sizeof(struct kvm_debugregs), id, true, "KVM_GET_DEBUGREGS", e)) < 0)
        return r;
    snapbuf_section_end(b, top);
    return 0;
}

static int load_msrs(struct vcpu *v, struct snapbuf *body, struct err *e)
{
    uint32_t n = snapbuf_get_u32(body);
    if (body->short_read || n > 4096 || snapbuf_left(body) != (size_t)n * 12)
        return err_set(e, EINVAL, "vCPU %u: bad MSR list in the snapshot", v->id);
    struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(struct kvm_msr_entry));
    if (!m)
        return err_set(e, ENOMEM, "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        m->entries[i].index = snapbuf_get_u32(body);
        m->entries[i].data = snapbuf_get_u64(body);
    }
    /* KVM stops at the first MSR it refuses; skip it and go on, so one MSR
     * this host lacks does not drop the rest. */
    uint32_t done = 0;
    while (done < n) {
        struct kvm_msrs *rest = calloc(1, sizeof(*rest) + (n - done) * sizeof(struct kvm_msr_entry));
        if (!rest)
            break;
        rest->nmsrs = n - done;
        memcpy(rest->entries, m->entries + done, (n - done) * sizeof(struct kvm_msr_entry));
        int r = ioctl(v->fd, KVM_SET_MSRS, rest);
        free(rest);
        if (r < 0) {
            free(m);
            return err_set_errno(e, errno, "vCPU %u: KVM_SET_MSRS", v->id);
        }
        done += (uint32_t)r;
        if (done < n) {
            log_warn("vCPU %u: this host refused MSR %#x from the snapshot", v->id,
                     m->entries[done].index);
            done++;
        }
    }
    free(m);
    return 0;
}

/* The order QEMU also keeps: MP state before the LAPIC, events after it. */
static const struct { uint32_t tag; unsigned long req; size_t size; const char *name; } cpu_load_order[] = {
    { CPU_REGS, KVM_SET_REGS, sizeof(struct kvm_regs), "KVM_SET_REGS" },
    { CPU_XSAVE, KVM_SET_XSAVE, 0, "KVM_SET_XSAVE" },
    { CPU_FPU, KVM_SET_FPU, sizeof(struct kvm_fpu), "KVM_SET_FPU" },
    { CPU_XCRS, KVM_SET_XCRS, sizeof(struct kvm_xcrs), "KVM_SET_XCRS" },
    { CPU_SREGS, KVM_SET_SREGS, sizeof(struct kvm_sregs), "KVM_SET_SREGS" },
    { CPU_MSRS, 0, 0, "MSRs" },
    { CPU_MPSTATE, KVM_SET_MP_STATE, sizeof(struct kvm_mp_state), "KVM_SET_MP_STATE" },
    { CPU_LAPIC, KVM_SET_LAPIC, sizeof(struct kvm_lapic_state), "KVM_SET_LAPIC" },
    { CPU_EVENTS, KVM_SET_VCPU_EVENTS, sizeof(struct kvm_vcpu_events), "KVM_SET_VCPU_EVENTS" },
    { CPU_DEBUG, KVM_SET_DEBUGREGS, sizeof(struct kvm_debugregs), "KVM_SET_DEBUGREGS" },
};

#define MSR_IA32_TSC_DEADLINE 0x6e0

/* KVM ignores a TSC deadline written while the LAPIC timer is not in
 * TSC-deadline mode, and a fresh LAPIC is not: set it again once the LAPIC
 * is back (QEMU orders it the same way). */
static int reload_tsc_deadline(struct vcpu *v, struct snapbuf *msrs, struct err *e)
{
    struct snapbuf it;
    snapbuf_view(&it, msrs->data, msrs->len);
    uint32_t n = snapbuf_get_u32(&it);
    for (uint32_t i = 0; i < n && !it.short_read; i++) {
        uint32_t index = snapbuf_get_u32(&it);
        uint64_t data = snapbuf_get_u64(&it);
        if (index != MSR_IA32_TSC_DEADLINE)
            continue;
        struct { struct kvm_msrs h; struct kvm_msr_entry en; } one;
        memset(&one, 0, sizeof(one));
        one.h.nmsrs = 1;
        one.en.index = index;
        one.en.data = data;
        if (ioctl(v->fd, KVM_SET_MSRS, &one) != 1)
            return err_set(e, EIO, "vCPU %u: cannot set the TSC deadline", v->id);
    }
    return 0;
}

static bool find_sub(const struct snapbuf *sec, uint32_t want, struct snapbuf *body)
{
    struct snapbuf it;
    snapbuf_view(&it, sec->data, sec->len);
    uint32_t tag, inst;
    while (snapbuf_section_next(&it, &tag, &inst, body) == 1)
        if (tag == want)
            return true;
    return false;
}

int snap_cpu_load(struct snapbuf *sec, struct vcpu *v, struct err *e)
{
    /* XSAVE supersedes FPU; both are saved for hosts without XSAVE. */
    struct snapbuf body, msrs;
    bool have_xsave = find_sub(sec, CPU_XSAVE, &body);
    if (!find_sub(sec, CPU_MSRS, &msrs))
        snapbuf_view(&msrs, NULL, 0);
    for (size_t i = 0; i < sizeof(cpu_load_order) / sizeof(cpu_load_order[0]); i++) {
        uint32_t tag = cpu_load_order[i].tag;
        if (!find_sub(sec, tag, &body)) {
            if (tag == CPU_REGS || tag == CPU_SREGS || tag == CPU_MSRS || tag == CPU_LAPIC)
                return err_set(e, EINVAL, "vCPU %u: %s state missing from the snapshot", v->id,
                               cpu_load_order[i].name);
            continue;
        }
        if (tag == CPU_FPU && have_xsave)
            continue;
        if (tag == CPU_MSRS) {
            int r = load_msrs(v, &body, e);
            if (r < 0)
                return r;
            continue;
        }
        size_t need = cpu_load_order[i].size;
        if (tag == CPU_XSAVE) {
            if (body.len < sizeof(struct kvm_xsave))
                return err_set(e, EINVAL, "vCPU %u: XSAVE state too short", v->id);
        } else if (body.len != need) {
            return err_set(e, EINVAL, "vCPU %u: %s state is %zu bytes, expected %zu", v->id,
                           cpu_load_order[i].name, body.len, need);
        }
        /* A copy: ioctls want aligned, writable memory. */
        void *p = malloc(body.len);
        if (!p)
            return err_set(e, ENOMEM, "out of memory");
        memcpy(p, body.data, body.len);
        int r = ioctl(v->fd, cpu_load_order[i].req, p);
        free(p);
        if (r < 0) {
            if (tag == CPU_DEBUG || tag == CPU_XCRS)
                log_warn("vCPU %u: %s: %s", v->id, cpu_load_order[i].name, strerror(errno));
            else
                return err_set_errno(e, errno, "vCPU %u: %s", v->id, cpu_load_order[i].name);
        }
        if (tag == CPU_LAPIC && (r = reload_tsc_deadline(v, &msrs, e)) < 0)
            return r;
    }
    return 0;
}

/* ---- the VM-wide chips ---- */

int snap_chips_save(struct snapbuf *b, struct vm *vm, struct err *e)
{
    for (unsigned chip = 0; chip < 3; chip++) {
        struct kvm_irqchip ic = { .chip_id = chip };
        if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &ic) < 0)
            return err_set_errno(e, errno, "KVM_GET_IRQCHIP %u", chip);
        size_t s = snapbuf_section_begin(b, SNAP_SEC_IRQCHIP, chip);
        snapbuf_put(b, &ic, sizeof(ic));
        snapbuf_section_end(b, s);
    }
    struct kvm_pit_state2 pit;
    memset(&pit, 0, sizeof(pit));
    if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0)
        return err_set_errno(e, errno, "KVM_GET_PIT2");
    size_t s = snapbuf_section_begin(b, SNAP_SEC_PIT, 0);
    snapbuf_put(b, &pit, sizeof(pit));
    snapbuf_section_end(b, s);
    struct kvm_clock_data clk;
    memset(&clk, 0, sizeof(clk));
    if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &clk) < 0)
        return err_set_errno(e, errno, "KVM_GET_CLOCK");
    s = snapbuf_section_begin(b, SNAP_SEC_CLOCK, 0);
    snapbuf_put_u64(b, clk.clock);
    snapbuf_section_end(b, s);
    return 0;
}

int snap_chip_load(uint32_t tag, uint32_t inst, struct snapbuf *body, struct vm *vm,
                   struct err *e)
{
    if (tag == SNAP_SEC_IRQCHIP) {
        struct kvm_irqchip ic;
        if (body->len != sizeof(ic) || inst > 2)
            return err_set(e, EINVAL, "bad irqchip %u state in the snapshot", inst);
        memcpy(&ic, body->data, sizeof(ic));
        if (ic.chip_id != inst)
            return err_set(e, EINVAL, "bad irqchip %u state in the snapshot", inst);
        if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &ic) < 0)
            return err_set_errno(e, errno, "KVM_SET_IRQCHIP %u", inst);
        return 0;
    }
    if (tag == SNAP_SEC_PIT) {
        struct kvm_pit_state2 pit;
        if (body->len != sizeof(pit))
            return err_set(e, EINVAL, "bad PIT state in the snapshot");
        memcpy(&pit, body->data, sizeof(pit));
        if (ioctl(vm->vm_fd, KVM_SET_PIT2, &pit) < 0)
            return err_set_errno(e, errno, "KVM_SET_PIT2");
        return 0;
    }
    /* The guest's clock goes on from the value saved: time the VM spent in
     * the file does not exist for it, as with QEMU's kvmclock. */
    struct kvm_clock_data clk;
    memset(&clk, 0, sizeof(clk));
    clk.clock = snapbuf_get_u64(body);
    if (body->short_read)
        return err_set(e, EINVAL, "bad clock state in the snapshot");
    if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &clk) < 0)
        return err_set_errno(e, errno, "KVM_SET_CLOCK");
    return 0;
}
