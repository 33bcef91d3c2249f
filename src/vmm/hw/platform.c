#include "hw/platform.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/stream.h"
#include "vm.h"

/* Creation order; reset and destroy follow it too (destroy in reverse). */
static const struct platform_dev_ops *const platform_devs[] = {
    &port_misc_dev_ops,
    &i8042_dev_ops,
    &rtc_dev_ops,
    &acpi_pm_dev_ops,
    &serial_dev_ops,
};

#define NDEVS (sizeof(platform_devs) / sizeof(platform_devs[0]))
_Static_assert(NDEVS <= PLATFORM_MAX_DEVS, "platform device table too long");

int platform_create_all(struct vm *vm, struct err *e)
{
    for (unsigned i = 0; i < NDEVS; i++) {
        int r = platform_devs[i]->create(vm, &vm->platform_state[i], e);
        if (r < 0) {
            err_prefix(e, "%s: ", platform_devs[i]->name);
            while (i-- > 0)
                platform_devs[i]->destroy(vm->platform_state[i]);
            return r;
        }
    }
    return 0;
}

void platform_reset_all(struct vm *vm)
{
    for (unsigned i = 0; i < NDEVS; i++)
        if (platform_devs[i]->reset)
            platform_devs[i]->reset(vm->platform_state[i]);
}

void platform_destroy_all(struct vm *vm)
{
    for (unsigned i = NDEVS; i-- > 0;) {
        platform_devs[i]->destroy(vm->platform_state[i]);
        vm->platform_state[i] = NULL;
    }
}

void platform_save_all(struct vm *vm, struct snapbuf *b, uint32_t tag)
{
    for (unsigned i = 0; i < NDEVS; i++) {
        if (!platform_devs[i]->save)
            continue;
        size_t s = snapbuf_section_begin(b, tag, i);
        snapbuf_put_str(b, platform_devs[i]->name);
        platform_devs[i]->save(vm->platform_state[i], b);
        snapbuf_section_end(b, s);
    }
}

int platform_load(struct vm *vm, uint32_t instance, struct snapbuf *body, struct err *e)
{
    if (instance >= NDEVS || !platform_devs[instance]->load)
        return err_set(e, EINVAL, "snapshot has state for platform device %u, which this machine lacks",
                       instance);
    const struct platform_dev_ops *ops = platform_devs[instance];
    char *name = snapbuf_get_str(body, 64);
    bool same = name && !strcmp(name, ops->name);
    free(name);
    if (!same)
        return err_set(e, EINVAL, "snapshot's platform device %u is not %s", instance, ops->name);
    int r = ops->load(vm->platform_state[instance], body, e);
    if (r < 0)
        err_prefix(e, "%s: ", ops->name);
    return r;
}
