/* Ports that guests poke for timing or progress and that need no model:
 * the POST code port 0x80 (Linux's default I/O delay) and 0xed (the
 * alternative delay port). Claiming them keeps the unhandled-port log quiet
 * and avoids a full exit to user space being reported as an error. */
#include "hw/platform.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vm.h"

static const uint16_t misc_ports[] = { 0x80, 0xed };
#define NPORTS (sizeof(misc_ports) / sizeof(misc_ports[0]))

struct port_misc {
    struct vm *vm;
    unsigned nregistered;
};

static void misc_read(void *opaque, uint64_t offset, uint8_t *data, unsigned len)
{
    memset(data, 0, len);
}

static void misc_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned len)
{
}

static const struct io_ops misc_ops = { .read = misc_read, .write = misc_write };

static void misc_unregister(struct port_misc *m)
{
    while (m->nregistered > 0)
        iobus_unregister(&m->vm->pio, misc_ports[--m->nregistered]);
}

static int misc_create(struct vm *vm, void **state, struct err *e)
{
    struct port_misc *m = calloc(1, sizeof(*m));
    if (!m)
        return err_set(e, ENOMEM, "out of memory");
    m->vm = vm;
    for (unsigned i = 0; i < NPORTS; i++) {
        int r = iobus_register(&vm->pio, misc_ports[i], 1, &misc_ops, m, "port_misc");
        if (r < 0) {
            misc_unregister(m);
            free(m);
            return err_set(e, -r, "cannot register port 0x%x", misc_ports[i]);
        }
        m->nregistered++;
    }
    *state = m;
    return 0;
}

static void misc_destroy(void *state)
{
    struct port_misc *m = state;
    if (!m)
        return;
    misc_unregister(m);
    free(m);
}

const struct platform_dev_ops port_misc_dev_ops = {
    .name = "port_misc",
    .create = misc_create,
    .destroy = misc_destroy,
};
