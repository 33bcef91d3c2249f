#include "hw/platform.h"

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
