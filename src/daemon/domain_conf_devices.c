/* The <devices> of a domain: disks, interfaces, serial port and consoles,
 * rng and memballoon parsed; controllers and the like dropped; devices
 * cvirt cannot provide refused by name. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/domain_conf_xml.h"
#include "util/log.h"

#define DISK_SERIAL_MAX 20                    /* virtio-blk's id field */

/* ---- disks ---- */

static int target_dev_check(const char *dev, struct err *e)
{
    size_t len = strlen(dev);
    if (!len || len > 32)
        return err_set(e, EINVAL, "disk target dev '%s': empty or longer than 32 bytes", dev);
    for (const char *p = dev; *p; p++)
        if (!isalnum((unsigned char)*p))
            return err_set(e, EINVAL, "disk target dev '%s': only letters and digits allowed", dev);
    return 0;
}

/* libvirt's character set for disk serials; it also keeps the value safe
 * inside cvirt-vmm's comma-separated --disk option. */
static int serial_check(const char *dev, const char *s, struct err *e)
{
    if (strlen(s) > DISK_SERIAL_MAX)
        return err_set(e, EINVAL, "disk '%s': serial '%s' is longer than %d bytes", dev, s,
                       DISK_SERIAL_MAX);
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("_ .+-", *p))
            return err_set(e, EINVAL, "disk '%s': serial '%s' may only contain letters, "
                           "digits, '_', ' ', '.', '+' and '-'", dev, s);
    return 0;
}

static int parse_format(xnode n, const char *dev, enum domain_disk_format *f, struct err *e)
{
    char *t;
    if (attr_opt(n, "type", &t) < 0)
        return dx_oom(e);
    int r = 0, i = domain_enum_lookup(domain_disk_format_names, 2, t);
    if (!t)
        *f = DOMAIN_DISK_RAW;
    else if (i < 0)
        r = err_set(e, EINVAL, "disk '%s': format type '%s' is not supported (raw or qcow2)",
                    dev, t);
    else
        *f = (enum domain_disk_format)i;
    free(t);
    return r;
}

/* <backingStore type='file'><format type=/><source file=/><backingStore/>...
 * An empty <backingStore/> ends the chain. */
static int parse_backing(xnode n, const char *dev, struct domain_backing **out, struct err *e)
{
    *out = NULL;
    xnode src = first_child(n, "source");
    if (!src)
        return 0;
    if (!attr_is(n, "type", "file"))
        return err_set(e, EINVAL, "disk '%s': <backingStore> must have type='file'", dev);
    struct domain_backing *b = calloc(1, sizeof(*b));
    if (!b)
        return dx_oom(e);
    int r = 0;
    b->file = attr(src, "file");
    if (!b->file)
        r = err_set(e, EINVAL, "disk '%s': <backingStore><source> has no file", dev);
    xnode fmt = first_child(n, "format");
    if (r == 0 && fmt)
        r = parse_format(fmt, dev, &b->format, e);
    xnode next = first_child(n, "backingStore");
    if (r == 0 && next)
        r = parse_backing(next, dev, &b->next, e);
    if (r < 0) {
        domain_backing_free(b);
        return r;
    }
    *out = b;
    return 0;
}

static int parse_disk_driver(xnode n, struct domain_disk *disk, const char *dev, struct err *e)
{
    int r = parse_format(n, dev, &disk->format, e);
    if (xmlHasProp(n, (const xmlChar *)"type"))
        disk->format_absent = false;
    char *cache = attr(n, "cache");
    if (r == 0 && cache && strcmp(cache, "default")) {
        int i = domain_enum_lookup(domain_cache_names, 3, cache);
        if (i < 0)
            r = err_set(e, EINVAL, "disk '%s': cache '%s' is not supported (none or writeback)",
                        dev, cache);
        else
            disk->cache = (enum domain_disk_cache)i;
    }
    free(cache);
    return r;
}

/* Children of <disk> beyond the ones cvirt uses, all of which describe host
 * or guest details cvirt-vmm does not model. */
static const char *const disk_dropped[] = {
    "alias", "boot", "iotune", "shareable", "encryption", "wwn", "vendor",
    "product", "blockio", "geometry", "transient", NULL,
};

/* The buses virt-install picks for an x86 guest whose OS it does not know.
 * cvirt has only virtio-blk, and a guest cvirt can run has its driver, so
 * such a disk is given as virtio rather than refused; the formatted XML says
 * bus='virtio'. The name stays, as it is only a hint to the guest. */
static const char *const disk_buses_as_virtio[] = { "ide", "sata", "scsi", NULL };

static int parse_disk_target(xnode n, struct domain_disk *disk, struct err *e)
{
    disk->target_dev = attr(n, "dev");
    if (!disk->target_dev)
        return err_set(e, EINVAL, "disk: <target> has no dev attribute");
    int r = target_dev_check(disk->target_dev, e);
    if (r < 0)
        return r;
    char *bus = attr(n, "bus");
    if (bus && strcmp(bus, "virtio") && !in_list(disk_buses_as_virtio, bus))
        r = err_set(e, EINVAL, "disk '%s': bus '%s' is not supported (cvirt disks are "
                    "virtio: use bus='virtio' and dev='vdX')", disk->target_dev, bus);
    else if (bus && strcmp(bus, "virtio"))
        log_warn("disk '%s': bus '%s' is given as virtio, the only disk bus cvirt has",
                 disk->target_dev, bus);
    free(bus);
    return r;
}

/* One attribute of a PCI <address>, as libvirt reads it: C syntax ("0x05",
 * "5"), absent meaning 0. */
static int pci_attr(xnode n, const char *dev, const char *name, unsigned max,
                    unsigned *out, struct err *e)
{
    char *v;
    if (attr_opt(n, name, &v) < 0)
        return dx_oom(e);
    *out = 0;
    if (!v)
        return 0;
    char *end;
    errno = 0;
    unsigned long x = strtoul(v, &end, 0);
    int r = 0;
    if (!*v || *end || errno || v[0] == '-' || isspace((unsigned char)v[0]) || x > max)
        r = err_set(e, EINVAL, "disk '%s': <address> %s '%s' is not a number from 0 to %#x",
                    dev, name, v, max);
    else
        *out = (unsigned)x;
    free(v);
    return r;
}

/* <address type='pci' domain='0x0000' bus='0x00' slot='0xN' function='0x0'/>:
 * cvirt-vmm has one PCI bus and single-function devices, so only the slot
 * can vary. */
static int parse_disk_address(xnode n, struct domain_disk *disk, struct err *e)
{
    const char *dev = disk->target_dev;
    char *type = attr(n, "type");
    int r = 0;
    if (!type || strcmp(type, "pci"))
        r = err_set(e, EINVAL, "disk '%s': <address> type '%s' is not supported (cvirt disks "
                    "are virtio PCI devices: type='pci')", dev, type ? type : "");
    free(type);
    if (r < 0)
        return r;
    if (disk->pci_slot)
        return err_set(e, EINVAL, "disk '%s': <address> is given more than once", dev);
    unsigned dom, bus, slot, fn;
    r = pci_attr(n, dev, "domain", 0xffff, &dom, e);
    if (r == 0)
        r = pci_attr(n, dev, "bus", 0xff, &bus, e);
    if (r == 0)
        r = pci_attr(n, dev, "slot", 0x1f, &slot, e);
    if (r == 0)
        r = pci_attr(n, dev, "function", 0x7, &fn, e);
    if (r < 0)
        return r;
    if (dom || bus || fn)
        return err_set(e, EINVAL, "disk '%s': PCI address %04x:%02x:%02x.%x: cvirt has one "
                       "PCI bus (domain 0, bus 0) and puts a disk at function 0", dev, dom,
                       bus, slot, fn);
    if (attr_is(n, "multifunction", "on"))
        return err_set(e, EINVAL, "disk '%s': multifunction PCI devices are not supported",
                       dev);
    if (slot < DOMAIN_PCI_SLOT_MIN)
        return err_set(e, EINVAL, "disk '%s': PCI slot %u is not available (slots %d to %d "
                       "of bus 0)", dev, slot, DOMAIN_PCI_SLOT_MIN, DOMAIN_PCI_SLOT_MAX);
    disk->pci_slot = slot;
    return 0;
}

static int parse_disk_children(xnode n, struct domain_disk *disk, struct pctx *p)
{
    const char *dev = disk->target_dev;
    int r = 0;
    for (xnode c = n->children; c && r == 0; c = c->next) {
        if (c->type != XML_ELEMENT_NODE || is_el(c, "target"))
            continue;
        if (is_el(c, "source")) {
            free(disk->source_file);
            disk->source_file = attr(c, disk->block ? "dev" : "file");
        } else if (is_el(c, "driver")) {
            r = parse_disk_driver(c, disk, dev, p->e);
        } else if (is_el(c, "readonly")) {
            disk->readonly = true;
        } else if (is_el(c, "serial")) {
            r = take_text(c, &disk->serial, p->e);
            if (r == 0)
                r = serial_check(dev, disk->serial, p->e);
        } else if (is_el(c, "address")) {
            r = parse_disk_address(c, disk, p->e);
        } else if (is_el(c, "backingStore")) {
            if (DOMAIN_LIVE_OK(p->flags) && !disk->backing)
                r = parse_backing(c, dev, &disk->backing, p->e);
        } else if (in_list(disk_dropped, el_name(c))) {
            log_debug("disk '%s': ignoring <%s>", dev, el_name(c));
        } else {
            r = err_set(p->e, EINVAL, "disk '%s': unsupported element <%s>", dev, el_name(c));
        }
    }
    return r;
}

int domain_conf_parse_disk(xnode n, struct domain_disk *disk, struct pctx *p)
{
    memset(disk, 0, sizeof(*disk));
    disk->format_absent = true;
    xnode t = first_child(n, "target");
    if (!t)
        return err_set(p->e, EINVAL, "disk: missing <target dev=...>");
    int r = parse_disk_target(t, disk, p->e);
    if (r < 0)
        return r;
    const char *dev = disk->target_dev;
    char *type = attr(n, "type"), *device = attr(n, "device");
    /* A block device is read and written like a raw file. */
    disk->block = type && !strcmp(type, "block");
    if (type && strcmp(type, "file") && !disk->block)
        r = err_set(p->e, EINVAL, "disk '%s': type '%s' is not supported (file or block)",
                    dev, type);
    else if (device && strcmp(device, "disk"))
        r = err_set(p->e, EINVAL, "disk '%s': device '%s' is not supported (cvirt has "
                    "virtio disks only)", dev, device);
    free(type);
    free(device);
    if (r == 0)
        r = parse_disk_children(n, disk, p);
    const char *key = disk->block ? "dev" : "file";
    if (r == 0 && !disk->source_file)
        r = err_set(p->e, EINVAL, "disk '%s': missing <source %s=...>", dev, key);
    if (r == 0 && !disk->source_file[0])
        r = err_set(p->e, EINVAL, "disk '%s': empty source %s", dev, key);
    return r;
}

/* ---- interfaces ---- */

static const char *const net_dropped[] = {
    "address", "alias", "boot", "driver", "link", "mtu", "filterref", "bandwidth",
    "rom", "coalesce", "virtualport", "guest", "ip", "route", "script", "backend", NULL,
};

/* virtio and its variants, and the emulated NICs virt-install picks when it
 * does not know the guest OS: given as virtio-net (the formatted XML says
 * so), for the same reason as disk buses. */
static const char *const net_models_as_virtio[] = {
    "virtio", "virtio-transitional", "virtio-non-transitional",
    "e1000", "e1000e", "rtl8139", "ne2k_pci", "pcnet", NULL,
};

static int parse_net_child(xnode c, struct domain_net *net, bool *have_mac, struct pctx *p)
{
    const char *what = domain_net_type_names[net->type];
    if (is_el(c, "source")) {
        const char *key = net->type == DOMAIN_NET_BRIDGE ? "bridge" : "network";
        if (net->type == DOMAIN_NET_ETHERNET)
            return 0;
        free(net->source);
        net->source = attr(c, key);
        if (!net->source || !net->source[0])
            return err_set(p->e, EINVAL, "interface type '%s': <source> needs %s='NAME'",
                           what, key);
    } else if (is_el(c, "mac")) {
        char *a = attr(c, "address");
        int r = domain_mac_parse(a, net->mac);
        if (r < 0)
            err_set(p->e, EINVAL, "interface: mac address '%s' is not a unicast MAC "
                    "(like 52:54:00:12:34:56)", a ? a : "");
        free(a);
        *have_mac = true;
        return r;
    } else if (is_el(c, "model")) {
        char *m = attr(c, "type");
        int r = 0;
        if (m && !in_list(net_models_as_virtio, m))
            r = err_set(p->e, EINVAL, "interface: model '%s' is not supported (cvirt has "
                        "virtio-net only: <model type='virtio'/>)", m);
        else if (m && strncmp(m, "virtio", 6))
            log_warn("interface: model '%s' is given as virtio, the only NIC cvirt has", m);
        free(m);
        return r;
    } else if (is_el(c, "target")) {
        if (net->type == DOMAIN_NET_ETHERNET || DOMAIN_LIVE_OK(p->flags)) {
            free(net->target_dev);
            net->target_dev = attr(c, "dev");
            if (net->target_dev && (!net->target_dev[0] || strlen(net->target_dev) > 15 ||
                                    strchr(net->target_dev, ',') ||
                                    strchr(net->target_dev, '/')))
                return err_set(p->e, EINVAL, "interface: target dev '%s' is not a valid tap "
                               "name (1 to 15 bytes, no ',' or '/')", net->target_dev);
        }
    } else if (in_list(net_dropped, el_name(c))) {
        log_debug("interface: ignoring <%s>", el_name(c));
    } else {
        return err_set(p->e, EINVAL, "interface: unsupported element <%s>", el_name(c));
    }
    return 0;
}

int domain_conf_parse_net(xnode n, struct domain_net *net, struct pctx *p)
{
    memset(net, 0, sizeof(*net));
    char *type = attr(n, "type");
    int i = domain_enum_lookup(domain_net_type_names, 3, type);
    int r = 0;
    if (i < 0)
        r = err_set(p->e, EINVAL, "interface type '%s' is not supported (network, bridge or "
                    "ethernet)", type ? type : "");
    free(type);
    if (r < 0)
        return r;
    net->type = (enum domain_net_type)i;
    bool have_mac = false;
    for (xnode c = n->children; c && r == 0; c = c->next)
        if (c->type == XML_ELEMENT_NODE)
            r = parse_net_child(c, net, &have_mac, p);
    if (r == 0 && net->type != DOMAIN_NET_ETHERNET && !net->source)
        r = err_set(p->e, EINVAL, "interface type '%s': missing <source %s='NAME'/>",
                    domain_net_type_names[net->type],
                    net->type == DOMAIN_NET_BRIDGE ? "bridge" : "network");
    if (r == 0 && !have_mac)
        domain_mac_generate(net->mac);
    return r;
}

/* ---- serial, console, rng, memballoon ---- */

static const char *const chr_dropped[] = { "alias", "address", "log", NULL };

/* Common part of <serial> and <console>: type='pty', the live pty path,
 * and the <target> element handed back for the caller to read. */
static int parse_chr(xnode n, const char *what, struct domain_chr *chr, xnode *target,
                     struct pctx *p)
{
    char *type = attr(n, "type");
    int r = 0;
    if (!type || strcmp(type, "pty"))
        r = err_set(p->e, EINVAL, "<%s> type '%s' is not supported (only type='pty')", what,
                    type ? type : "");
    free(type);
    *target = NULL;
    for (xnode c = n->children; c && r == 0; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (is_el(c, "source")) {
            if (DOMAIN_LIVE_OK(p->flags)) {
                free(chr->pty_path);
                chr->pty_path = attr(c, "path");
            }
        } else if (is_el(c, "target")) {
            *target = c;
        } else if (in_list(chr_dropped, el_name(c))) {
            log_debug("<%s>: ignoring <%s>", what, el_name(c));
        } else {
            r = err_set(p->e, EINVAL, "<%s>: unsupported element <%s>", what, el_name(c));
        }
    }
    if (r == 0 && !chr->pty_path && DOMAIN_LIVE_OK(p->flags))
        chr->pty_path = attr(n, "tty");
    if (r == 0) {
        chr->present = true;
        chr->type = DOMAIN_CHR_PTY;
    }
    return r;
}

static int check_port0(xnode target, const char *what, struct err *e)
{
    char *port = target ? attr(target, "port") : NULL;
    int r = 0;
    if (port && strcmp(port, "0"))
        r = err_set(e, EINVAL, "<%s> port '%s': cvirt has one serial port (port 0)", what, port);
    free(port);
    return r;
}

static int parse_serial(xnode n, struct domain_def *d, struct pctx *p)
{
    if (d->serial.present)
        return err_set(p->e, EINVAL, "more than one <serial>: cvirt has one serial port (COM1)");
    xnode target;
    int r = parse_chr(n, "serial", &d->serial, &target, p);
    if (r == 0 && target) {
        char *t = attr(target, "type");
        if (t && strcmp(t, "isa-serial"))
            r = err_set(p->e, EINVAL, "<serial> target type '%s' is not supported "
                        "(isa-serial)", t);
        free(t);
    }
    if (r == 0)
        r = check_port0(target, "serial", p->e);
    return r;
}

/* A console with a serial target is another name for serial port 0 (and
 * creates it when no <serial> is given); a virtio console is hvc0. */
static int parse_console(xnode n, struct domain_def *d, bool *serial_console, struct pctx *p)
{
    struct domain_chr chr = {0};
    xnode target;
    int r = parse_chr(n, "console", &chr, &target, p);
    char *t = (r == 0 && target) ? attr(target, "type") : NULL;
    if (r < 0) {
        /* nothing */
    } else if (!t || !strcmp(t, "serial")) {
        if (*serial_console)
            r = err_set(p->e, EINVAL, "more than one serial <console>: cvirt has one serial "
                        "port (COM1)");
        else
            r = check_port0(target, "console", p->e);
        if (r == 0) {
            *serial_console = true;
            if (!d->serial.pty_path) {
                d->serial.pty_path = chr.pty_path;
                chr.pty_path = NULL;
            }
        }
    } else if (!strcmp(t, "virtio")) {
        if (d->vconsole.present) {
            r = err_set(p->e, EINVAL, "more than one virtio <console>: cvirt has one (hvc0)");
        } else {
            d->vconsole = chr;
            chr.pty_path = NULL;
        }
    } else {
        r = err_set(p->e, EINVAL, "<console> target type '%s' is not supported (serial or "
                    "virtio)", t);
    }
    free(t);
    free(chr.pty_path);
    return r;
}

static int parse_rng(xnode n, struct domain_def *d, struct pctx *p)
{
    if (d->rng)
        return err_set(p->e, EINVAL, "more than one <rng>: cvirt has one virtio-rng");
    if (!attr_is(n, "model", "virtio"))
        return err_set(p->e, EINVAL, "<rng> needs model='virtio'");
    xnode b = first_child(n, "backend");
    if (b) {
        /* cvirt-vmm feeds the guest from getrandom(): equivalent to any
         * of the host's random devices, not to an EGD daemon. */
        char *m = attr(b, "model"), *dev = text_trim(b);
        int r = 0;
        if (!m || (strcmp(m, "random") && strcmp(m, "builtin")))
            r = err_set(p->e, EINVAL, "<rng> backend model '%s' is not supported (random or "
                        "builtin)", m ? m : "");
        else if (!strcmp(m, "random") && dev && *dev && strcmp(dev, "/dev/random") &&
                 strcmp(dev, "/dev/urandom"))
            r = err_set(p->e, EINVAL, "<rng> backend '%s' is not supported (/dev/random or "
                        "/dev/urandom)", dev);
        free(m);
        free(dev);
        if (r < 0)
            return r;
    }
    d->rng = true;
    return 0;
}

static int parse_balloon(xnode n, struct domain_def *d, bool *seen, struct pctx *p)
{
    if (*seen)
        return err_set(p->e, EINVAL, "more than one <memballoon>");
    *seen = true;
    char *m = attr(n, "model");
    int r = 0;
    if (m && !strcmp(m, "virtio"))
        d->balloon = DOMAIN_BALLOON_VIRTIO;
    else if (m && !strcmp(m, "none"))
        d->balloon = DOMAIN_BALLOON_NONE;
    else
        r = err_set(p->e, EINVAL, "<memballoon> model '%s' is not supported (virtio or none)",
                    m ? m : "");
    free(m);
    return r;
}

/* ---- <devices> ---- */

/* Devices that a guest started without them is no worse off for: host
 * controllers cvirt does not emulate (its virtio devices sit on the PCI
 * root), input devices beyond the built-in keyboard controller, the
 * emulator path, audio backends and agent channels. */
static const char *const devices_dropped[] = {
    "emulator", "controller", "input", "channel", "audio", "panic", NULL,
};

static int add_disk(struct domain_def *d, xnode n, struct pctx *p)
{
    if (d->ndisks >= DOMAIN_MAX_DISKS)
        return err_set(p->e, EINVAL, "too many disks (at most %d)", DOMAIN_MAX_DISKS);
    struct domain_disk *nd = realloc(d->disks, (d->ndisks + 1) * sizeof(*nd));
    if (!nd)
        return dx_oom(p->e);
    d->disks = nd;
    int r = domain_conf_parse_disk(n, &d->disks[d->ndisks], p);
    if (r < 0) {
        domain_disk_clear(&d->disks[d->ndisks]);
        return r;
    }
    for (size_t i = 0; i < d->ndisks; i++)
        if (!strcmp(d->disks[i].target_dev, d->disks[d->ndisks].target_dev)) {
            r = err_set(p->e, EINVAL, "disk target dev '%s' is used twice",
                        d->disks[i].target_dev);
            domain_disk_clear(&d->disks[d->ndisks]);
            return r;
        }
    unsigned slot = d->disks[d->ndisks].pci_slot;
    for (size_t i = 0; slot && i < d->ndisks; i++)
        if (d->disks[i].pci_slot == slot) {
            r = err_set(p->e, EINVAL, "disks '%s' and '%s' are both on PCI slot %#x",
                        d->disks[i].target_dev, d->disks[d->ndisks].target_dev, slot);
            domain_disk_clear(&d->disks[d->ndisks]);
            return r;
        }
    d->ndisks++;
    return 0;
}

static int add_net(struct domain_def *d, xnode n, struct pctx *p)
{
    if (d->nnets >= DOMAIN_MAX_NETS)
        return err_set(p->e, EINVAL, "too many interfaces (at most %d)", DOMAIN_MAX_NETS);
    struct domain_net *nn = realloc(d->nets, (d->nnets + 1) * sizeof(*nn));
    if (!nn)
        return dx_oom(p->e);
    d->nets = nn;
    int r = domain_conf_parse_net(n, &d->nets[d->nnets], p);
    if (r < 0) {
        free(d->nets[d->nnets].source);
        free(d->nets[d->nnets].target_dev);
        return r;
    }
    d->nnets++;
    return 0;
}

static int video_check(xnode n, struct err *e)
{
    xnode m = first_child(n, "model");
    if (m && attr_is(m, "type", "none"))
        return 0;
    return err_set(e, EINVAL, "unsupported device <video>: cvirt has no display; use a "
                   "serial or virtio console (virt-install --graphics none)");
}

int domain_conf_parse_devices(xnode devs, struct domain_def *d, struct pctx *p)
{
    bool serial_console = false, balloon_seen = false;
    int r = 0;
    for (xnode c = devs->children; c && r == 0; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (is_el(c, "disk"))
            r = add_disk(d, c, p);
        else if (is_el(c, "interface"))
            r = add_net(d, c, p);
        else if (is_el(c, "serial"))
            r = parse_serial(c, d, p);
        else if (is_el(c, "console"))
            r = parse_console(c, d, &serial_console, p);
        else if (is_el(c, "rng"))
            r = parse_rng(c, d, p);
        else if (is_el(c, "memballoon"))
            r = parse_balloon(c, d, &balloon_seen, p);
        else if (is_el(c, "video"))
            r = video_check(c, p->e);
        else if (is_el(c, "graphics"))
            r = err_set(p->e, EINVAL, "unsupported device <graphics>: cvirt has no display; "
                        "use a serial or virtio console (virt-install --graphics none)");
        else if (in_list(devices_dropped, el_name(c)))
            log_debug("devices: ignoring <%s>", el_name(c));
        else
            r = err_set(p->e, EINVAL, "unsupported device <%s>: cvirt cannot provide it",
                        el_name(c));
    }
    if (r == 0 && serial_console)
        d->serial.present = true;
    return r;
}
