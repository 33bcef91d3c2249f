/* virtio-pci functions the guest may eject: added at run time (hidden
 * until announced through ACPI PCI hotplug) or present from the start
 * with an owner that lets them go. The guest's eject (or a reset that
 * completes a removal) reaches vp_unplugged in pci.c on a vCPU thread;
 * the teardown itself happens here, on the event loop. */
#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "pci/pci.h"
#include "util/evloop.h"
#include "virtio/pci.h"
#include "virtio/pci_int.h"
#include "virtio/virtio.h"

static void vp_gone(void *opaque, uint32_t events)
{
    struct virtio_pci *vp = opaque;
    uint64_t n;
    if (read(vp->gone_efd, &n, sizeof(n)) < 0)
        return;
    void (*gone)(void *) = vp->gone;
    void *gone_opaque = vp->gone_opaque;
    /* blk's destroy joins its workers: nothing of the model runs after. */
    virtio_pci_destroy(vp);
    if (gone)
        gone(gone_opaque);
}

/* A function the guest may eject: its removal is finished on the loop. */
static int vp_build_hot(struct virtio_pci **out, struct pci_bus *bus, struct evloop *loop,
                        const struct virtio_dev_ops *ops, const char *arg, unsigned slot,
                        enum vp_kind kind, void (*gone)(void *opaque), void *opaque,
                        struct err *e)
{
    struct virtio_pci *vp;
    int r = virtio_pci_build(&vp, bus, loop, ops, arg, slot, kind, e);
    if (r < 0)
        return r;
    vp->gone = gone;
    vp->gone_opaque = opaque;
    vp->gone_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (vp->gone_efd < 0) {
        r = err_set_errno(e, errno, "virtio-%s: eventfd", ops->name);
        goto fail;
    }
    r = evloop_add(loop, vp->gone_efd, EPOLLIN, vp_gone, vp);
    if (r < 0) {
        close(vp->gone_efd);
        vp->gone_efd = -1;
        err_set(e, -r, "virtio-%s: cannot watch its removal", ops->name);
        goto fail;
    }
    *out = vp;
    return 0;
fail:
    pci_dev_remove(vp->pdev);
    vp->pdev = NULL;
    virtio_pci_destroy(vp);
    return r;
}

int virtio_pci_hotplug(struct virtio_pci **out, struct pci_bus *bus, struct evloop *loop,
                       const struct virtio_dev_ops *ops, const char *arg, unsigned slot,
                       void (*gone)(void *opaque), void *opaque, struct err *e)
{
    struct virtio_pci *vp;
    int r = vp_build_hot(&vp, bus, loop, ops, arg, slot, VP_HOT, gone, opaque, e);
    if (r < 0)
        return r;
    /* The VM is live: bind the MSI-X irqfds now. The notify ioeventfds
     * follow when the guest places BAR 0 (bar_moved). */
    r = virtio_pci_bind(vp, e);
    if (r < 0 || (r = pci_hotplug_add(bus, vp->pdev, e)) < 0) {
        pci_dev_remove(vp->pdev);
        vp->pdev = NULL;
        virtio_pci_destroy(vp);
        return r;
    }
    *out = vp;
    return 0;
}

int virtio_pci_create_unpluggable(struct virtio_pci **out, struct pci_bus *bus,
                                  struct evloop *loop, const struct virtio_dev_ops *ops,
                                  const char *arg, unsigned slot, void (*gone)(void *opaque),
                                  void *opaque, struct err *e)
{
    return vp_build_hot(out, bus, loop, ops, arg, slot, VP_UNPLUGGABLE, gone, opaque, e);
}

int virtio_pci_unplug(struct virtio_pci *vp, struct err *e)
{
    if (!vp->pdev)
        return err_set(e, EALREADY, "virtio-%s: already ejected", vp->vd.ops->name);
    return pci_hotplug_remove(vp->pdev->bus, vp->pdev, e);
}

int virtio_pci_attach(struct virtio_pci *vp, struct err *e)
{
    return vp->pdev ? virtio_pci_bind(vp, e) : 0;
}

int virtio_pci_slot(const struct virtio_pci *vp)
{
    return vp->pdev ? (int)vp->pdev->slot : -1;
}
