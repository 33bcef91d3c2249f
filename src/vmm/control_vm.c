/* The QMP commands about the VM itself: run state, pause, reset, power,
 * vCPUs and disks. Shapes follow QEMU's schema so existing clients parse
 * them unchanged. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "control.h"
#include "hw/acpi_pm.h"
#include "snapshot/snapshot.h"
#include "vcpu.h"
#include "vm.h"

/* Copies len bytes of src, cut to fit, as a string. */
static void copy_field(char *dst, size_t size, const char *src, size_t len)
{
    if (len >= size)
        len = size - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

void control_disk_parse(struct control_disk *d, unsigned index, const char *arg)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->device, sizeof(d->device), "virtio%u", index);
    snprintf(d->format, sizeof(d->format), "raw");
    const char *comma = strchr(arg, ',');
    size_t n = comma ? (size_t)(comma - arg) : strlen(arg);
    copy_field(d->file, sizeof(d->file), arg, n);
    while (comma) {
        const char *opt = comma + 1;
        comma = strchr(opt, ',');
        size_t len = comma ? (size_t)(comma - opt) : strlen(opt);
        if (len > 7 && !strncmp(opt, "format=", 7))
            copy_field(d->format, sizeof(d->format), opt + 7, len - 7);
        else if (len == 11 && !strncmp(opt, "readonly=on", 11))
            d->ro = true;
        else if (len == 10 && !strncmp(opt, "cache=none", 10))
            d->direct = true;
    }
}

static int no_args(struct json_object *args, struct err *e)
{
    return control_args_only(args, NULL, e);
}

static int cmd_query_status(void *opaque, struct json_object *args, struct json_object **ret,
                            enum control_err_class *cls, struct err *e)
{
    const struct control_vm_host *h = opaque;
    int r = no_args(args, e);
    if (r < 0)
        return r;
    /* QEMU's RunState: a destination waiting for its migration is not
     * running (its vCPUs have not started), a source after it is paused
     * in "postmigrate". */
    const char *state = snapshot_run_state(h->vm);
    bool running = !state && !vm_paused(h->vm);
    if (!state)
        state = running ? "running" : "paused";
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "status", json_object_new_string(state));
    json_object_object_add(o, "singlestep", json_object_new_boolean(false));
    json_object_object_add(o, "running", json_object_new_boolean(running));
    *ret = o;
    return 0;
}

/* STOP goes out once every vCPU is parked, RESUME once they may run:
 * a client that sees the event can trust the state. */
static int cmd_stop(void *opaque, struct json_object *args, struct json_object **ret,
                    enum control_err_class *cls, struct err *e)
{
    const struct control_vm_host *h = opaque;
    int r = no_args(args, e);
    if (r < 0)
        return r;
    if (vm_paused(h->vm))
        return 0;
    vm_pause(h->vm);
    control_emit_event(h->vm->control, "STOP", NULL);
    return 0;
}

static int cmd_cont(void *opaque, struct json_object *args, struct json_object **ret,
                    enum control_err_class *cls, struct err *e)
{
    const struct control_vm_host *h = opaque;
    int r = no_args(args, e);
    if (r < 0)
        return r;
    if (!vm_paused(h->vm))
        return 0;
    snapshot_note_cont(h->vm);
    vm_resume(h->vm);
    control_emit_event(h->vm->control, "RESUME", NULL);
    return 0;
}

static int cmd_system_reset(void *opaque, struct json_object *args, struct json_object **ret,
                            enum control_err_class *cls, struct err *e)
{
    const struct control_vm_host *h = opaque;
    int r = no_args(args, e);
    if (r < 0)
        return r;
    /* A reset would end the wait and boot the kernel instead. */
    const char *state = snapshot_run_state(h->vm);
    if (state && !strcmp(state, "inmigrate"))
        return err_set(e, EBUSY, "Guest is waiting for an incoming migration");
    h->reset(h->opaque);
    return 0;
}

static int cmd_system_powerdown(void *opaque, struct json_object *args,
                                struct json_object **ret, enum control_err_class *cls,
                                struct err *e)
{
    const struct control_vm_host *h = opaque;
    int r = no_args(args, e);
    if (r < 0)
        return r;
    r = acpi_pm_power_button(h->vm);
    if (r < 0)
        return err_set(e, -r, "this machine has no ACPI power button");
    control_emit_event(h->vm->control, "POWERDOWN", NULL);
    return 0;
}

static int cmd_quit(void *opaque, struct json_object *args, struct json_object **ret,
                    enum control_err_class *cls, struct err *e)
{
    const struct control_vm_host *h = opaque;
    int r = no_args(args, e);
    if (r < 0)
        return r;
    h->quit(h->opaque);
    return 0;
}

/* One socket, one core per vCPU, one thread per core: the topology the
 * CPUID leaves describe. */
static int cmd_query_cpus_fast(void *opaque, struct json_object *args,
                               struct json_object **ret, enum control_err_class *cls,
                               struct err *e)
{
    const struct control_vm_host *h = opaque;
    int r = no_args(args, e);
    if (r < 0)
        return r;
    struct json_object *list = json_object_new_array();
    for (unsigned i = 0; i < h->vm->ncpus; i++) {
        struct vcpu *v = h->vm->vcpus[i];
        struct json_object *o = json_object_new_object();
        struct json_object *props = json_object_new_object();
        char path[64];
        snprintf(path, sizeof(path), "/machine/unattached/device[%u]", i);
        json_object_object_add(props, "core-id", json_object_new_int((int)i));
        json_object_object_add(props, "thread-id", json_object_new_int(0));
        json_object_object_add(props, "socket-id", json_object_new_int(0));
        json_object_object_add(o, "thread-id",
                               json_object_new_int(v ? __atomic_load_n(&v->tid, __ATOMIC_RELAXED) : 0));
        json_object_object_add(o, "props", props);
        json_object_object_add(o, "qom-path", json_object_new_string(path));
        json_object_object_add(o, "cpu-index", json_object_new_int((int)i));
        json_object_object_add(o, "target", json_object_new_string("x86_64"));
        json_object_array_add(list, o);
    }
    *ret = list;
    return 0;
}

static struct json_object *block_inserted(const struct control_disk *d)
{
    struct json_object *ins = json_object_new_object();
    json_object_object_add(ins, "file", json_object_new_string(d->file));
    json_object_object_add(ins, "node-name", json_object_new_string(d->device));
    json_object_object_add(ins, "ro", json_object_new_boolean(d->ro));
    json_object_object_add(ins, "drv", json_object_new_string(d->format));
    json_object_object_add(ins, "encrypted", json_object_new_boolean(false));
    json_object_object_add(ins, "backing_file_depth", json_object_new_int(0));
    json_object_object_add(ins, "detect_zeroes", json_object_new_string("off"));
    static const char *const limits[] = { "bps", "bps_rd", "bps_wr", "iops", "iops_rd",
                                          "iops_wr", "write_threshold" };
    for (unsigned i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
        json_object_object_add(ins, limits[i], json_object_new_int(0));
    struct json_object *cache = json_object_new_object();
    json_object_object_add(cache, "writeback", json_object_new_boolean(true));
    json_object_object_add(cache, "direct", json_object_new_boolean(d->direct));
    json_object_object_add(cache, "no-flush", json_object_new_boolean(false));
    json_object_object_add(ins, "cache", cache);
    return ins;
}

static int cmd_query_block(void *opaque, struct json_object *args, struct json_object **ret,
                           enum control_err_class *cls, struct err *e)
{
    const struct control_vm_host *h = opaque;
    int r = no_args(args, e);
    if (r < 0)
        return r;
    struct json_object *list = json_object_new_array();
    for (unsigned i = 0; i < h->ndisks; i++) {
        const struct control_disk *d = &h->disks[i];
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "device", json_object_new_string(d->device));
        json_object_object_add(o, "locked", json_object_new_boolean(false));
        json_object_object_add(o, "removable", json_object_new_boolean(false));
        json_object_object_add(o, "type", json_object_new_string("unknown"));
        json_object_object_add(o, "io-status", json_object_new_string("ok"));
        json_object_object_add(o, "inserted", block_inserted(d));
        json_object_array_add(list, o);
    }
    *ret = list;
    return 0;
}

int control_vm_register(struct control *c, const struct control_vm_host *h, struct err *e)
{
    static const struct {
        const char *name;
        control_cmd_fn fn;
    } cmds[] = {
        { "query-status", cmd_query_status },
        { "stop", cmd_stop },
        { "cont", cmd_cont },
        { "system_reset", cmd_system_reset },
        { "system_powerdown", cmd_system_powerdown },
        { "quit", cmd_quit },
        { "query-cpus-fast", cmd_query_cpus_fast },
        { "query-block", cmd_query_block },
    };
    for (unsigned i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        int r = control_register(c, cmds[i].name, cmds[i].fn, (void *)h);
        if (r < 0)
            return err_set(e, -r, "control: cannot register %s", cmds[i].name);
    }
    return 0;
}
