/* Disk hotplug commands, a documented subset of QEMU's shapes:
 *
 *   blockdev-add  {"driver": "raw"|"qcow2", "node-name": N,
 *                  "file": {"driver": "file", "filename": PATH} | PATH,
 *                  "read-only": bool, "cache": {"direct": bool}}
 *   blockdev-del  {"node-name": N}
 *   device_add    {"driver": "virtio-blk-pci", "drive": N, "id": ID,
 *                  "serial": TEXT, "bus": "pci.0", "addr": "SLOT[.0]" (hex)}
 *   device_del    {"id": ID}  ->  later DEVICE_DELETED {"device", "path"}
 *
 * A node is only a name for an image the next device_add opens: the file
 * is opened once here to report a missing or malformed image at once,
 * then again by the device, so a node has no state of its own to share.
 * Everything here runs on the event-loop thread (commands, the setup
 * hook, the devices' gone callbacks), so nothing is locked. */
#include "control_hotplug.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "img/blk.h"
#include "pci/pci.h"
#include "snapshot/snapshot.h"
#include "util/log.h"
#include "virtio/pci.h"
#include "virtio/virtio.h"
#include "vm.h"

#define HP_NAME_MAX CONTROL_HP_NAME_MAX  /* QEMU's limit on names and ids (with the NUL) */
#define HP_PATH_MAX 4096

struct hp_node {
    char name[HP_NAME_MAX];
    char path[HP_PATH_MAX];
    char format[8];
    bool ro, direct;
    struct hp_dev *user;          /* the device using it, NULL if none */
    struct hp_node *next;
};

struct hp_dev {
    struct hotplug *hp;
    char id[HP_NAME_MAX];
    char arg[CONTROL_HP_ARG_MAX];  /* its virtio-blk options, for a saved --disk */
    struct hp_node *node;
    struct virtio_pci *vp;
    bool unplug_requested;
    struct hp_dev *next;
};

struct hotplug {
    struct control *control;
    struct vm *vm;
    struct evloop *loop;
    struct hp_node *nodes;
    struct hp_dev *devs;
};

/* One VM per process: fini finds the state through here. */
static struct hotplug *hp_state;

/* QEMU's rule for node names and ids: a letter, then letters, digits,
 * '-', '.' and '_', at most 31 characters. */
static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= HP_NAME_MAX)
        return false;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_'))
            return false;
    }
    return true;
}

static struct hp_node *find_node(struct hotplug *hp, const char *name)
{
    for (struct hp_node *n = hp->nodes; n; n = n->next)
        if (!strcmp(n->name, name))
            return n;
    return NULL;
}

static struct hp_dev *find_dev(struct hotplug *hp, const char *id)
{
    for (struct hp_dev *d = hp->devs; d; d = d->next)
        if (!strcmp(d->id, id))
            return d;
    return NULL;
}

/* "file": {"driver": "file", "filename": PATH} or the string PATH. */
static int file_arg(struct json_object *args, const char **path, struct err *e)
{
    struct json_object *f;
    if (!json_object_object_get_ex(args, "file", &f))
        return err_set(e, EINVAL, "Parameter 'file' is missing");
    if (json_object_is_type(f, json_type_string)) {
        *path = json_object_get_string(f);
        return 0;
    }
    if (!json_object_is_type(f, json_type_object))
        return err_set(e, EINVAL, "Invalid parameter type for 'file', expected: BlockdevRef");
    static const char *const allowed[] = { "driver", "filename", NULL };
    const char *drv;
    int r = control_args_only(f, allowed, e);
    if (r < 0 || (r = control_arg_str(f, "driver", true, &drv, e)) < 0 ||
        (r = control_arg_str(f, "filename", true, path, e)) < 0)
        return err_set(e, EINVAL, "file: %s", e->msg);
    if (strcmp(drv, "file"))
        return err_set(e, EINVAL, "file: driver '%s' is not supported (only 'file')", drv);
    return 0;
}

/* "cache": {"direct": bool, "no-flush": false} */
static int cache_arg(struct json_object *args, bool *direct, struct err *e)
{
    struct json_object *c;
    if (!json_object_object_get_ex(args, "cache", &c))
        return 0;
    if (!json_object_is_type(c, json_type_object))
        return err_set(e, EINVAL, "Invalid parameter type for 'cache', expected: object");
    static const char *const allowed[] = { "direct", "no-flush", NULL };
    bool no_flush = false;
    int r = control_args_only(c, allowed, e);
    if (r < 0 || ((r = control_arg_bool(c, "direct", false, direct, e)) < 0 && r != -ENOENT) ||
        ((r = control_arg_bool(c, "no-flush", false, &no_flush, e)) < 0 && r != -ENOENT))
        return err_set(e, EINVAL, "cache: %s", e->msg);
    if (no_flush)
        return err_set(e, EINVAL, "cache: no-flush is not supported");
    return 0;
}

static int cmd_blockdev_add(void *opaque, struct json_object *args, struct json_object **ret,
                            enum control_err_class *cls, struct err *e)
{
    struct hotplug *hp = opaque;
    static const char *const allowed[] = { "driver", "node-name", "file", "read-only",
                                           "cache", "discard", "auto-read-only", NULL };
    const char *drv, *name, *path;
    struct hp_node n = { .format = "raw" };
    int r = control_args_only(args, allowed, e);
    if (r < 0 || (r = control_arg_str(args, "driver", true, &drv, e)) < 0 ||
        (r = control_arg_str(args, "node-name", true, &name, e)) < 0 ||
        (r = file_arg(args, &path, e)) < 0 || (r = cache_arg(args, &n.direct, e)) < 0)
        return r;
    r = control_arg_bool(args, "read-only", false, &n.ro, e);
    if (r < 0 && r != -ENOENT)
        return r;
    if (strcmp(drv, "raw") && strcmp(drv, "qcow2"))
        return err_set(e, EINVAL, "Invalid parameter '%s' for 'driver': raw or qcow2", drv);
    if (!valid_name(name))
        return err_set(e, EINVAL, "Invalid node-name: '%s'", name);
    if (find_node(hp, name))
        return err_set(e, EEXIST, "Duplicate nodes with node-name='%s'", name);
    /* The device takes its options as one comma-separated string. */
    if (!*path || strchr(path, ',') || strlen(path) >= sizeof(n.path))
        return err_set(e, EINVAL, "'%s': an empty file name, one with a ',' or one longer "
                       "than %d bytes is not supported", path, HP_PATH_MAX - 1);
    struct blk *b;
    r = blk_open(&b, path, drv, n.ro ? 0 : BLK_O_RDWR, &(struct blk_open_opts){ 0 }, e);
    if (r < 0) {
        if (r == -ENOENT || r == -EACCES)
            err_set(e, -r, "Could not open '%s': %s", path, strerror(-r));
        return r;
    }
    blk_close(b);
    struct hp_node *node = malloc(sizeof(*node));
    if (!node)
        return err_set(e, ENOMEM, "out of memory");
    *node = n;
    snprintf(node->name, sizeof(node->name), "%s", name);
    snprintf(node->path, sizeof(node->path), "%s", path);
    snprintf(node->format, sizeof(node->format), "%s", drv);
    node->next = hp->nodes;
    hp->nodes = node;
    return 0;
}

static int cmd_blockdev_del(void *opaque, struct json_object *args, struct json_object **ret,
                            enum control_err_class *cls, struct err *e)
{
    struct hotplug *hp = opaque;
    static const char *const allowed[] = { "node-name", NULL };
    const char *name;
    int r = control_args_only(args, allowed, e);
    if (r < 0 || (r = control_arg_str(args, "node-name", true, &name, e)) < 0)
        return r;
    struct hp_node **p = &hp->nodes;
    while (*p && strcmp((*p)->name, name))
        p = &(*p)->next;
    if (!*p)
        return err_set(e, ENOENT, "Failed to find node with node-name='%s'", name);
    if ((*p)->user)
        return err_set(e, EBUSY, "Node '%s' is busy: in use by device '%s'", name,
                       (*p)->user->id);
    struct hp_node *n = *p;
    *p = n->next;
    free(n);
    return 0;
}

static void dev_unlink(struct hotplug *hp, struct hp_dev *d)
{
    for (struct hp_dev **p = &hp->devs; *p; p = &(*p)->next) {
        if (*p == d) {
            *p = d->next;
            break;
        }
    }
    if (d->node)
        d->node->user = NULL;
}

/* The guest ejected the device and its model is gone (event loop). */
static void dev_gone(void *opaque)
{
    struct hp_dev *d = opaque;
    struct hotplug *hp = d->hp;
    log_info("device '%s' deleted", d->id);
    dev_unlink(hp, d);
    if (hp->control) {
        char path[64 + HP_NAME_MAX];
        snprintf(path, sizeof(path), "/machine/peripheral/%s", d->id);
        struct json_object *data = json_object_new_object();
        json_object_object_add(data, "device", json_object_new_string(d->id));
        json_object_object_add(data, "path", json_object_new_string(path));
        control_emit_event(hp->control, "DEVICE_DELETED", data);
    }
    free(d);
}

/* The virtio-blk option string for a node (its path has no comma). */
static int blk_arg(char *buf, size_t size, const struct hp_node *n, const char *serial,
                   struct err *e)
{
    int len = snprintf(buf, size, "%s,format=%s%s%s%s%s", n->path, n->format,
                       n->ro ? ",readonly=on" : "", n->direct ? ",cache=none" : "",
                       serial ? ",serial=" : "", serial ? serial : "");
    if (len < 0 || (size_t)len >= size)
        return err_set(e, ENAMETOOLONG, "drive '%s': options too long", n->name);
    return 0;
}

/* QEMU's PCI address property: "SLOT[.FUNCTION]" in hex; only function 0
 * exists here. */
static int parse_addr(const char *addr, unsigned *slot, struct err *e)
{
    char *end;
    const char *p = addr[0] == '0' && (addr[1] == 'x' || addr[1] == 'X') ? addr + 2 : addr;
    unsigned long s = strtoul(p, &end, 16);
    if (end == p || *p == '-' || *p == '+' || (*end && strcmp(end, ".0")) || s < 1 ||
        s >= PCI_MAX_SLOTS)
        return err_set(e, EINVAL, "Property 'virtio-blk-pci.addr' doesn't take value '%s' "
                       "(a slot from 0x1 to 0x%x, function 0)", addr, PCI_MAX_SLOTS - 1);
    *slot = (unsigned)s;
    return 0;
}

static int cmd_device_add(void *opaque, struct json_object *args, struct json_object **ret,
                          enum control_err_class *cls, struct err *e)
{
    struct hotplug *hp = opaque;
    static const char *const allowed[] = { "driver", "drive", "id", "serial", "bus", "addr",
                                           NULL };
    const char *drv, *drive, *id, *serial = NULL, *bus = NULL, *addr = NULL;
    unsigned slot = 0;
    int r = control_args_only(args, allowed, e);
    if (r < 0 || (r = control_arg_str(args, "driver", true, &drv, e)) < 0)
        return r;
    if (strcmp(drv, "virtio-blk-pci"))
        return err_set(e, EINVAL, "'%s' is not a valid device model name", drv);
    if ((r = control_arg_str(args, "id", true, &id, e)) < 0 ||
        (r = control_arg_str(args, "drive", true, &drive, e)) < 0 ||
        ((r = control_arg_str(args, "serial", false, &serial, e)) < 0 && r != -ENOENT) ||
        ((r = control_arg_str(args, "bus", false, &bus, e)) < 0 && r != -ENOENT) ||
        ((r = control_arg_str(args, "addr", false, &addr, e)) < 0 && r != -ENOENT))
        return r;
    if (bus && strcmp(bus, "pci.0"))
        return err_set(e, EINVAL, "Bus '%s' not found", bus);
    if (addr && (r = parse_addr(addr, &slot, e)) < 0)
        return r;
    if (!valid_name(id))
        return err_set(e, EINVAL, "Invalid device ID '%s'", id);
    if (find_dev(hp, id))
        return err_set(e, EEXIST, "Duplicate device ID '%s'", id);
    if (serial && (strchr(serial, ',') || strlen(serial) > 20))
        return err_set(e, EINVAL, "serial '%s': at most 20 bytes and no ','", serial);
    struct hp_node *n = find_node(hp, drive);
    if (!n)
        return err_set(e, ENOENT, "Property 'virtio-blk-pci.drive' can't find value '%s'",
                       drive);
    if (n->user)
        return err_set(e, EBUSY, "Drive '%s' is already in use by device '%s'", drive,
                       n->user->id);
    if (!hp->vm->pci)
        return err_set(e, ENODEV, "this machine has no PCI bus to plug '%s' into", id);
    /* The machine the migration sends is fixed when it starts. */
    if (snapshot_migration_active(hp->vm))
        return err_set(e, EBUSY, "device_add not allowed while migrating");
    char arg[CONTROL_HP_ARG_MAX];
    if ((r = blk_arg(arg, sizeof(arg), n, serial, e)) < 0)
        return r;
    struct hp_dev *d = calloc(1, sizeof(*d));
    if (!d)
        return err_set(e, ENOMEM, "out of memory");
    d->hp = hp;
    d->node = n;
    snprintf(d->id, sizeof(d->id), "%s", id);
    snprintf(d->arg, sizeof(d->arg), "%s", arg);
    r = virtio_pci_hotplug(&d->vp, hp->vm->pci, hp->loop, &virtio_blk_ops, arg, slot,
                           dev_gone, d, e);
    if (r < 0) {
        err_prefix(e, "%s: ", id);
        free(d);
        return r;
    }
    n->user = d;
    d->next = hp->devs;
    hp->devs = d;
    log_info("device '%s' (%s) added in slot %d", id, n->path, virtio_pci_slot(d->vp));
    return 0;
}

static int cmd_device_del(void *opaque, struct json_object *args, struct json_object **ret,
                          enum control_err_class *cls, struct err *e)
{
    struct hotplug *hp = opaque;
    static const char *const allowed[] = { "id", NULL };
    const char *id;
    int r = control_args_only(args, allowed, e);
    if (r < 0 || (r = control_arg_str(args, "id", true, &id, e)) < 0)
        return r;
    struct hp_dev *d = find_dev(hp, id);
    if (!d) {
        *cls = CONTROL_ERR_DEVICE_NOT_FOUND;
        return err_set(e, ENOENT, "Device '%s' not found", id);
    }
    if (d->unplug_requested)
        return err_set(e, EALREADY, "Device %s is already in the process of unplug", id);
    if (snapshot_migration_active(hp->vm))
        return err_set(e, EBUSY, "device_del not allowed while migrating");
    r = virtio_pci_unplug(d->vp, e);
    if (r == -EALREADY) {
        /* A removal pending since before a restore, which the bus keeps:
         * QEMU's words, not the bus's. */
        err_clear(e);
        return err_set(e, EALREADY, "Device %s is already in the process of unplug", id);
    }
    if (r < 0)
        return r;
    d->unplug_requested = true;
    return 0;
}

/* One function's identity as the guest would read it: through the
 * locked config path, which also shows a hidden or ejected slot as empty. */
static struct json_object *pci_function(struct hotplug *hp, unsigned slot)
{
    uint8_t cfg[0x40];
    pci_config_read(hp->vm->pci, 0, slot << 3, 0, cfg, sizeof(cfg));
    if (pci_get16(cfg + PCI_VENDOR_ID) == 0xffff)
        return NULL;
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "bus", json_object_new_int(0));
    json_object_object_add(o, "slot", json_object_new_int((int)slot));
    json_object_object_add(o, "function", json_object_new_int(0));
    struct json_object *cls = json_object_new_object();
    json_object_object_add(cls, "class", json_object_new_int(pci_get16(cfg + 0x0a)));
    json_object_object_add(o, "class_info", cls);
    struct json_object *id = json_object_new_object();
    json_object_object_add(id, "device", json_object_new_int(pci_get16(cfg + PCI_DEVICE_ID)));
    json_object_object_add(id, "vendor", json_object_new_int(pci_get16(cfg + PCI_VENDOR_ID)));
    json_object_object_add(id, "subsystem",
                           json_object_new_int(pci_get16(cfg + PCI_SUBSYSTEM_ID)));
    json_object_object_add(id, "subsystem-vendor",
                           json_object_new_int(pci_get16(cfg + PCI_SUBSYSTEM_VENDOR)));
    json_object_object_add(o, "id", id);
    if (cfg[PCI_INTERRUPT_PIN]) {
        json_object_object_add(o, "irq", json_object_new_int(cfg[PCI_INTERRUPT_LINE]));
        json_object_object_add(o, "irq_pin", json_object_new_int(cfg[PCI_INTERRUPT_PIN]));
    }
    const char *qdev = "";
    for (struct hp_dev *d = hp->devs; d; d = d->next)
        if (virtio_pci_slot(d->vp) == (int)slot)
            qdev = d->id;
    json_object_object_add(o, "qdev_id", json_object_new_string(qdev));
    json_object_object_add(o, "regions", json_object_new_array());
    return o;
}

/* query-pci: bus 0 as the guest can see it now; "regions" is left empty. */
static int cmd_query_pci(void *opaque, struct json_object *args, struct json_object **ret,
                         enum control_err_class *cls, struct err *e)
{
    struct hotplug *hp = opaque;
    int r = control_args_only(args, NULL, e);
    if (r < 0)
        return r;
    struct json_object *list = json_object_new_array();
    if (hp->vm->pci) {
        struct json_object *devs = json_object_new_array();
        for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
            struct json_object *f = pci_function(hp, s);
            if (f)
                json_object_array_add(devs, f);
        }
        struct json_object *bus = json_object_new_object();
        json_object_object_add(bus, "bus", json_object_new_int(0));
        json_object_object_add(bus, "devices", devs);
        json_object_array_add(list, bus);
    }
    *ret = list;
    return 0;
}

/* A reset made a new KVM VM: hot-added devices bind their eventfds again
 * (those made at start have their own hooks). */
static int hp_setup_hook(void *opaque, struct err *e)
{
    struct hotplug *hp = opaque;
    for (struct hp_dev *d = hp->devs; d; d = d->next) {
        int r = virtio_pci_attach(d->vp, e);
        if (r < 0) {
            err_prefix(e, "device '%s': ", d->id);
            return r;
        }
    }
    return 0;
}

int control_hotplug_register(struct control *c, struct vm *vm, struct evloop *loop,
                             struct err *e)
{
    if (hp_state)
        return err_set(e, EEXIST, "hotplug: already registered");
    struct hotplug *hp = calloc(1, sizeof(*hp));
    if (!hp)
        return err_set(e, ENOMEM, "out of memory");
    *hp = (struct hotplug){ .control = c, .vm = vm, .loop = loop };
    int r = vm_add_setup_hook(vm, hp_setup_hook, hp);
    if (r < 0) {
        free(hp);
        return err_set(e, -r, "hotplug: no room for a setup hook");
    }
    hp_state = hp;
    if (!c)
        return 0;
    static const struct {
        const char *name;
        control_cmd_fn fn;
    } cmds[] = {
        { "blockdev-add", cmd_blockdev_add },
        { "blockdev-del", cmd_blockdev_del },
        { "device_add", cmd_device_add },
        { "device_del", cmd_device_del },
        { "query-pci", cmd_query_pci },
    };
    for (unsigned i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        r = control_register(c, cmds[i].name, cmds[i].fn, hp);
        if (r < 0)
            return err_set(e, -r, "control: cannot register %s", cmds[i].name);
    }
    return 0;
}

unsigned control_hotplug_count(const struct vm *vm)
{
    unsigned n = 0;
    if (hp_state && hp_state->vm == vm)
        for (struct hp_dev *d = hp_state->devs; d; d = d->next)
            n++;
    return n;
}

void control_hotplug_fini(struct vm *vm)
{
    struct hotplug *hp = hp_state;
    if (!hp || hp->vm != vm)
        return;
    /* The setup hook stays registered with the VM, which must not run
     * again: this is for the end of the process. */
    while (hp->devs) {
        struct hp_dev *d = hp->devs;
        hp->devs = d->next;
        virtio_pci_destroy(d->vp);
        free(d);
    }
    while (hp->nodes) {
        struct hp_node *n = hp->nodes;
        hp->nodes = n->next;
        free(n);
    }
    free(hp);
    hp_state = NULL;
}

/* ---- disks from the command line --------------------------------------- */

/* "slot=N": decimal, or hex with 0x as QEMU's addr= is written. */
static int parse_slot(const char *path, const char *v, unsigned *slot, struct err *e)
{
    char *end;
    bool hex = v[0] == '0' && (v[1] == 'x' || v[1] == 'X');
    unsigned long n = strtoul(hex ? v + 2 : v, &end, hex ? 16 : 10);
    if (!*v || (hex && !v[2]) || *end || v[hex ? 2 : 0] == '-' || v[hex ? 2 : 0] == '+' ||
        n < 1 || n >= PCI_MAX_SLOTS)
        return err_set(e, EINVAL, "--disk %s: slot=%s: must be a PCI slot number from 1 to %d "
                       "(slot 0 is the host bridge)", path, v, PCI_MAX_SLOTS - 1);
    *slot = (unsigned)n;
    return 0;
}

/* One option of a --disk argument into d (and serial/uring/extra). */
static int disk_opt(struct control_hotplug_disk *d, const char *tok, const char **serial,
                    bool *uring, char *extra, size_t extra_size, struct err *e)
{
    const char *p = d->path;
    if (!strncmp(tok, "format=", 7)) {
        if (strcmp(tok + 7, "raw") && strcmp(tok + 7, "qcow2"))
            return err_set(e, EINVAL, "--disk %s: format must be raw or qcow2", p);
        snprintf(d->format, sizeof(d->format), "%s", tok + 7);
    } else if (!strcmp(tok, "readonly=on") || !strcmp(tok, "readonly=off")) {
        d->ro = tok[10] == 'n';
    } else if (!strcmp(tok, "cache=none") || !strcmp(tok, "cache=writeback")) {
        d->direct = tok[6] == 'n';
    } else if (!strcmp(tok, "aio=threads") || !strcmp(tok, "aio=io_uring")) {
        *uring = tok[4] == 'i';
    } else if (!strncmp(tok, "serial=", 7)) {
        if (strlen(tok + 7) > 20)
            return err_set(e, EINVAL, "--disk %s: serial is longer than 20 bytes", p);
        *serial = tok + 7;
    } else if (!strncmp(tok, "slot=", 5)) {
        if (d->slot)
            return err_set(e, EINVAL, "--disk %s: slot= is given twice", p);
        return parse_slot(p, tok + 5, &d->slot, e);
    } else if (!strncmp(tok, "node=", 5)) {
        if (d->node[0])
            return err_set(e, EINVAL, "--disk %s: node= is given twice", p);
        if (!valid_name(tok + 5))
            return err_set(e, EINVAL, "--disk %s: node=%s: a node name is a letter, then "
                           "letters, digits, '-', '.' or '_', at most %d in all", p, tok + 5,
                           HP_NAME_MAX - 1);
        snprintf(d->node, sizeof(d->node), "%s", tok + 5);
    } else if (!strncmp(tok, "id=", 3)) {
        if (d->id[0])
            return err_set(e, EINVAL, "--disk %s: id= is given twice", p);
        if (!valid_name(tok + 3))
            return err_set(e, EINVAL, "--disk %s: id=%s: an id is a letter, then letters, "
                           "digits, '-', '.' or '_', at most %d in all", p, tok + 3,
                           HP_NAME_MAX - 1);
        snprintf(d->id, sizeof(d->id), "%s", tok + 3);
    } else {
        /* virtio-blk judges it. */
        size_t n = strlen(extra);
        if (n + 1 + strlen(tok) >= extra_size)
            return err_set(e, EINVAL, "--disk %s: too many options", p);
        snprintf(extra + n, extra_size - n, ",%s", tok);
    }
    return 0;
}

int control_hotplug_disk_parse(const char *arg, struct control_hotplug_disk *d, struct err *e)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->format, sizeof(d->format), "raw");
    char buf[CONTROL_HP_ARG_MAX], extra[CONTROL_HP_ARG_MAX] = "";
    if (strlen(arg) >= sizeof(buf))
        return err_set(e, EINVAL, "--disk: the argument is longer than %zu bytes",
                       sizeof(buf) - 1);
    memcpy(buf, arg, strlen(arg) + 1);
    char *save = NULL, *tok = strchr(buf, ',');
    if (tok)
        *tok++ = '\0';
    if (!buf[0])
        return err_set(e, EINVAL, "--disk needs a path");
    if (strlen(buf) >= sizeof(d->path))
        return err_set(e, EINVAL, "--disk: the path is longer than %zu bytes",
                       sizeof(d->path) - 1);
    snprintf(d->path, sizeof(d->path), "%s", buf);
    const char *serial = NULL;
    bool uring = false;
    for (tok = tok ? strtok_r(tok, ",", &save) : NULL; tok; tok = strtok_r(NULL, ",", &save)) {
        int r = disk_opt(d, tok, &serial, &uring, extra, sizeof(extra), e);
        if (r < 0)
            return r;
    }
    int len = snprintf(d->blk, sizeof(d->blk), "%s,format=%s%s%s%s%s%s%s", d->path, d->format,
                       d->ro ? ",readonly=on" : "", d->direct ? ",cache=none" : "",
                       serial ? ",serial=" : "", serial ? serial : "",
                       uring ? ",aio=io_uring" : "", extra);
    if (len < 0 || (size_t)len >= sizeof(d->blk))
        return err_set(e, EINVAL, "--disk %s: options too long", d->path);
    if (d->node[0] && !d->id[0])
        return err_set(e, EINVAL, "--disk %s: node= names the drive of a disk with an id= "
                       "(one that can be removed)", d->path);
    return 0;
}

int control_hotplug_add_disk(struct vm *vm, const struct control_hotplug_disk *dk,
                             struct err *e)
{
    struct hotplug *hp = hp_state;
    if (!hp || hp->vm != vm || !vm->pci || !dk->id[0])
        return err_set(e, EINVAL, "--disk %s: no hotplug state for an id", dk->path);
    const char *node = dk->node[0] ? dk->node : dk->id;
    if (find_dev(hp, dk->id))
        return err_set(e, EEXIST, "--disk %s: id=%s is taken", dk->path, dk->id);
    if (find_node(hp, node))
        return err_set(e, EEXIST, "--disk %s: node %s is taken", dk->path, node);
    struct hp_node *n = calloc(1, sizeof(*n));
    struct hp_dev *d = calloc(1, sizeof(*d));
    if (!n || !d) {
        free(n);
        free(d);
        return err_set(e, ENOMEM, "out of memory");
    }
    snprintf(n->name, sizeof(n->name), "%s", node);
    snprintf(n->path, sizeof(n->path), "%s", dk->path);
    snprintf(n->format, sizeof(n->format), "%s", dk->format);
    n->ro = dk->ro;
    n->direct = dk->direct;
    d->hp = hp;
    d->node = n;
    snprintf(d->id, sizeof(d->id), "%s", dk->id);
    snprintf(d->arg, sizeof(d->arg), "%s", dk->blk);
    int r = virtio_pci_create_unpluggable(&d->vp, vm->pci, hp->loop, &virtio_blk_ops, dk->blk,
                                          dk->slot, dev_gone, d, e);
    if (r < 0) {
        free(n);
        free(d);
        return r;
    }
    n->user = d;
    n->next = hp->nodes;
    hp->nodes = n;
    d->next = hp->devs;
    hp->devs = d;
    return 0;
}

int control_hotplug_disk_args(const struct vm *vm, char ***out, unsigned *n, struct err *e)
{
    struct hotplug *hp = hp_state && hp_state->vm == vm ? hp_state : NULL;
    char **v = calloc(PCI_MAX_SLOTS + 1, sizeof(char *));
    if (!v)
        return err_set(e, ENOMEM, "out of memory");
    unsigned k = 0;
    /* Slot order: the same machine gives the same list. */
    for (int slot = 1; hp && slot < PCI_MAX_SLOTS; slot++) {
        for (struct hp_dev *d = hp->devs; d; d = d->next) {
            if (virtio_pci_slot(d->vp) != slot)
                continue;
            bool own = d->node && strcmp(d->node->name, d->id);
            size_t size = strlen(d->arg) + strlen(d->id) + HP_NAME_MAX + 24;
            v[k] = malloc(size);
            if (!v[k]) {
                for (unsigned i = 0; i < k; i++)
                    free(v[i]);
                free(v);
                return err_set(e, ENOMEM, "out of memory");
            }
            snprintf(v[k++], size, "%s,slot=%d,id=%s%s%s", d->arg, slot, d->id,
                     own ? ",node=" : "", own ? d->node->name : "");
        }
    }
    *out = v;
    *n = k;
    return 0;
}
