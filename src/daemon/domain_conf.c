/* Domain XML -> struct domain_def. Every element cvirt knows has a policy:
 * parsed and kept, dropped with a debug line (harmless for a direct-boot
 * KVM guest), or refused with an error naming it. Anything not listed is
 * refused, so a device cvirt cannot provide never vanishes silently. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "daemon/domain_conf_priv.h"
#include "daemon/uuid.h"
#include "util/log.h"

/* Definitions are a few KiB; the bound keeps a client from making the
 * daemon build an arbitrarily large tree. */
#define DOMAIN_XML_MAX (4u << 20)
#define DOMAIN_MIN_MEMORY_KIB (16ull << 10)   /* cvirt-vmm's minimum */
#define DOMAIN_MAX_MEMORY_KIB (1ull << 30)    /* 1 TiB */
#define DISK_SERIAL_MAX 20                    /* virtio-blk's id field */

typedef xmlNode *xnode;

struct pctx {
    unsigned flags;
    struct err *e;
};

/* ---- small helpers ---- */

static bool is_el(xnode n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name);
}

static const char *el_name(xnode n)
{
    return (const char *)n->name;
}

/* Attribute value (malloc'd) or NULL. */
static char *attr(xnode n, const char *name)
{
    xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)name);
    if (!v)
        return NULL;
    char *s = strdup((const char *)v);
    xmlFree(v);
    return s;
}

/* Compares an attribute without copying it. */
static bool attr_is(xnode n, const char *name, const char *val)
{
    xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)name);
    bool r = v && !strcmp((const char *)v, val);
    xmlFree(v);
    return r;
}

/* Text content with surrounding blanks removed (malloc'd), or NULL on OOM. */
static char *text_trim(xnode n)
{
    xmlChar *v = xmlNodeGetContent(n);
    const char *s = v ? (const char *)v : "";
    while (isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    char *r = strndup(s, len);
    xmlFree(v);
    return r;
}

static xnode first_child(xnode n, const char *name)
{
    for (xnode c = n->children; c; c = c->next)
        if (is_el(c, name))
            return c;
    return NULL;
}

static int oom(struct err *e)
{
    return err_set(e, ENOMEM, "out of memory");
}

/* Replaces *dst with a copy of the element's text; refuses an element
 * given twice, which libvirt would read as a mistake too. */
static int take_text(xnode n, char **dst, struct err *e)
{
    if (*dst)
        return err_set(e, EINVAL, "<%s> is given more than once", el_name(n));
    *dst = text_trim(n);
    return *dst ? 0 : oom(e);
}

int domain_enum_lookup(const char *const *names, int n, const char *s)
{
    for (int i = 0; s && i < n; i++)
        if (names[i] && !strcmp(names[i], s))
            return i;
    return -1;
}

static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end)
        return -EINVAL;
    if (errno == ERANGE || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

/* ---- values shared with the public API ---- */

int domain_memory_parse(const char *value, const char *unit, uint64_t *kib)
{
    uint64_t n, scale = 1024;
    if (unit && *unit && strcmp(unit, "b") && strcmp(unit, "bytes")) {
        /* libvirt's rule: a letter k/m/g/t/p/e, then nothing or "iB" for
         * powers of 1024, "B" for powers of 1000; the letter's case is free. */
        static const char letters[] = "kmgtpe";
        const char *p = strchr(letters, tolower((unsigned char)unit[0]));
        if (!p || !unit[0])
            return -EINVAL;
        unsigned power = (unsigned)(p - letters) + 1;
        uint64_t base;
        if (!unit[1] || !strcmp(unit + 1, "iB") || !strcmp(unit + 1, "ib"))
            base = 1024;
        else if ((unit[1] == 'B' || unit[1] == 'b') && !unit[2])
            base = 1000;
        else
            return -EINVAL;
        scale = 1;
        for (unsigned i = 0; i < power; i++)
            scale *= base;
    } else if (unit && *unit) {
        scale = 1;
    }
    int r = parse_uint(value, UINT64_MAX, &n);
    if (r < 0)
        return r;
    if (n && scale > UINT64_MAX / n)
        return -ERANGE;
    uint64_t bytes = n * scale;
    *kib = bytes / 1024 + (bytes % 1024 ? 1 : 0);
    return 0;
}

int domain_name_check(const char *name, struct err *e)
{
    if (!name || !*name)
        return err_set(e, EINVAL, "domain name is empty");
    if (strchr(name, '/'))
        return err_set(e, EINVAL, "domain name '%s' cannot contain '/'", name);
    if (strlen(name) > DOMAIN_NAME_MAX)
        return err_set(e, EINVAL, "domain name is longer than %d bytes", DOMAIN_NAME_MAX);
    for (const char *p = name; *p; p++)
        if (iscntrl((unsigned char)*p))
            return err_set(e, EINVAL, "domain name cannot contain control characters");
    return 0;
}

void domain_mac_generate(uint8_t mac[6])
{
    /* QEMU's and libvirt's prefix; the rest from getrandom(), falling back
     * to rand() only when the kernel cannot give randomness. */
    uint8_t r[3];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        for (int i = 0; i < 3; i++)
            r[i] = (uint8_t)rand();
    mac[0] = 0x52;
    mac[1] = 0x54;
    mac[2] = 0x00;
    memcpy(mac + 3, r, 3);
}

int domain_mac_parse(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    char tail;
    if (!s || strlen(s) != 17)
        return -EINVAL;
    for (int i = 0; i < 6; i++) {
        if (!isxdigit((unsigned char)s[3 * i]) || !isxdigit((unsigned char)s[3 * i + 1]))
            return -EINVAL;
        if (i < 5 && s[3 * i + 2] != ':')
            return -EINVAL;
    }
    if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
               &tail) != 6)
        return -EINVAL;
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)v[i];
    /* A guest NIC needs a unicast address that is not all zero. */
    if (mac[0] & 1)
        return -EINVAL;
    if (!(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]))
        return -EINVAL;
    return 0;
}

void domain_mac_format(const uint8_t m[6], char buf[18])
{
    snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

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
    char *t = attr(n, "type");
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
        return oom(e);
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
    "address", "alias", "boot", "iotune", "shareable", "encryption", "wwn", "vendor",
    "product", "blockio", "geometry", "transient", NULL,
};

static bool in_list(const char *const *list, const char *name)
{
    for (; *list; list++)
        if (!strcmp(*list, name))
            return true;
    return false;
}

static int parse_disk_target(xnode n, struct domain_disk *disk, struct err *e)
{
    disk->target_dev = attr(n, "dev");
    if (!disk->target_dev)
        return err_set(e, EINVAL, "disk: <target> has no dev attribute");
    int r = target_dev_check(disk->target_dev, e);
    if (r < 0)
        return r;
    char *bus = attr(n, "bus");
    if (!bus && strncmp(disk->target_dev, "vd", 2))
        r = err_set(e, EINVAL, "disk '%s': no bus given and the name does not say virtio "
                    "(cvirt disks are virtio: use bus='virtio' and dev='vdX')", disk->target_dev);
    else if (bus && strcmp(bus, "virtio"))
        r = err_set(e, EINVAL, "disk '%s': bus '%s' is not supported (cvirt disks are "
                    "virtio: use bus='virtio' and dev='vdX')", disk->target_dev, bus);
    free(bus);
    return r;
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
            disk->source_file = attr(c, "file");
        } else if (is_el(c, "driver")) {
            r = parse_disk_driver(c, disk, dev, p->e);
        } else if (is_el(c, "readonly")) {
            disk->readonly = true;
        } else if (is_el(c, "serial")) {
            r = take_text(c, &disk->serial, p->e);
            if (r == 0)
                r = serial_check(dev, disk->serial, p->e);
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

static int parse_disk(xnode n, struct domain_disk *disk, struct pctx *p)
{
    memset(disk, 0, sizeof(*disk));
    xnode t = first_child(n, "target");
    if (!t)
        return err_set(p->e, EINVAL, "disk: missing <target dev=...>");
    int r = parse_disk_target(t, disk, p->e);
    if (r < 0)
        return r;
    const char *dev = disk->target_dev;
    char *type = attr(n, "type"), *device = attr(n, "device");
    if (type && strcmp(type, "file"))
        r = err_set(p->e, EINVAL, "disk '%s': type '%s' is not supported (only type='file')",
                    dev, type);
    else if (device && strcmp(device, "disk"))
        r = err_set(p->e, EINVAL, "disk '%s': device '%s' is not supported (cvirt has "
                    "virtio disks only)", dev, device);
    free(type);
    free(device);
    if (r == 0)
        r = parse_disk_children(n, disk, p);
    if (r == 0 && !disk->source_file)
        r = err_set(p->e, EINVAL, "disk '%s': missing <source file=...>", dev);
    if (r == 0 && !disk->source_file[0])
        r = err_set(p->e, EINVAL, "disk '%s': empty source file", dev);
    return r;
}

/* ---- interfaces ---- */

static const char *const net_dropped[] = {
    "address", "alias", "boot", "driver", "link", "mtu", "filterref", "bandwidth",
    "rom", "coalesce", "virtualport", "guest", "ip", "route", "script", "backend", NULL,
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
        if (m && strcmp(m, "virtio"))
            r = err_set(p->e, EINVAL, "interface: model '%s' is not supported (cvirt has "
                        "virtio-net only: <model type='virtio'/>)", m);
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

static int parse_net(xnode n, struct domain_net *net, struct pctx *p)
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
        return oom(p->e);
    d->disks = nd;
    int r = parse_disk(n, &d->disks[d->ndisks], p);
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
    d->ndisks++;
    return 0;
}

static int add_net(struct domain_def *d, xnode n, struct pctx *p)
{
    if (d->nnets >= DOMAIN_MAX_NETS)
        return err_set(p->e, EINVAL, "too many interfaces (at most %d)", DOMAIN_MAX_NETS);
    struct domain_net *nn = realloc(d->nets, (d->nnets + 1) * sizeof(*nn));
    if (!nn)
        return oom(p->e);
    d->nets = nn;
    int r = parse_net(n, &d->nets[d->nnets], p);
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

static int parse_devices(xnode devs, struct domain_def *d, struct pctx *p)
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

/* ---- <os>, <features>, memory, vcpus, lifecycle actions ---- */

static const char *const os_dropped[] = {
    "boot", "bootmenu", "smbios", "bios", "acpi", NULL,
};

static int parse_os_type(xnode n, struct domain_def *d, struct err *e)
{
    char *t = text_trim(n);
    int r = 0;
    if (!t)
        return oom(e);
    if (strcmp(t, "hvm"))
        r = err_set(e, EINVAL, "os type '%s' is not supported: cvirt runs hvm guests only", t);
    free(t);
    if (r < 0)
        return r;
    free(d->os.arch);
    free(d->os.machine);
    d->os.arch = attr(n, "arch");
    d->os.machine = attr(n, "machine");
    if (d->os.arch && strcmp(d->os.arch, "x86_64"))
        return err_set(e, EINVAL, "os arch '%s' is not supported (x86_64 only)", d->os.arch);
    return 0;
}

static int parse_os(xnode os, struct domain_def *d, struct pctx *p)
{
    xmlChar *fw = xmlGetNoNsProp(os, (const xmlChar *)"firmware");
    if (fw) {
        xmlFree(fw);
        return err_set(p->e, EINVAL, "<os firmware=...> is not supported: cvirt has no "
                       "firmware and boots a kernel directly (<os><kernel>)");
    }
    bool have_type = false;
    int r = 0;
    for (xnode c = os->children; c && r == 0; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (is_el(c, "type")) {
            r = parse_os_type(c, d, p->e);
            have_type = true;
        } else if (is_el(c, "kernel")) {
            r = take_text(c, &d->os.kernel, p->e);
        } else if (is_el(c, "initrd")) {
            r = take_text(c, &d->os.initrd, p->e);
        } else if (is_el(c, "cmdline")) {
            r = take_text(c, &d->os.cmdline, p->e);
        } else if (is_el(c, "loader") || is_el(c, "nvram")) {
            r = err_set(p->e, EINVAL, "<os><%s> is not supported: cvirt has no firmware and "
                        "boots a kernel directly (<os><kernel>)", el_name(c));
        } else if (in_list(os_dropped, el_name(c))) {
            log_debug("os: ignoring <%s>", el_name(c));
        } else {
            r = err_set(p->e, EINVAL, "<os>: unsupported element <%s>", el_name(c));
        }
    }
    if (r == 0 && !have_type)
        r = err_set(p->e, EINVAL, "missing <os><type>hvm</type>");
    /* Empty <kernel/> and the like mean "none", as they do in libvirt. */
    char **strs[] = { &d->os.kernel, &d->os.initrd, &d->os.cmdline };
    for (int i = 0; i < 3; i++)
        if (*strs[i] && !**strs[i]) {
            free(*strs[i]);
            *strs[i] = NULL;
        }
    return r;
}

static void parse_features(xnode f, struct domain_def *d)
{
    for (xnode c = f->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (is_el(c, "acpi"))
            d->acpi = true;
        else if (is_el(c, "apic"))
            d->apic = true;
        else if (is_el(c, "pae"))
            d->pae = true;
        else
            log_debug("features: ignoring <%s>", el_name(c));
    }
}

static int parse_mem(xnode n, uint64_t *kib, struct err *e)
{
    char *v = text_trim(n), *unit = attr(n, "unit");
    int r = v ? domain_memory_parse(v, unit, kib) : -ENOMEM;
    if (r == -ERANGE)
        err_set(e, ERANGE, "<%s> '%s %s' is too large", el_name(n), v, unit ? unit : "KiB");
    else if (r == -ENOMEM)
        oom(e);
    else if (r < 0)
        err_set(e, EINVAL, "<%s> '%s' with unit '%s' is not a memory size (units: b, KB, KiB, "
                "MB, MiB, GB, GiB, TB, TiB...)", el_name(n), v, unit ? unit : "KiB");
    free(v);
    free(unit);
    return r;
}

static int parse_max_memory(xnode n, struct domain_def *d, struct err *e)
{
    int r = parse_mem(n, &d->max_memory_kib, e);
    char *slots = attr(n, "slots");
    uint64_t s = 0;
    if (r == 0 && slots && parse_uint(slots, 255, &s) < 0)
        r = err_set(e, EINVAL, "<maxMemory> slots '%s' is not a number from 0 to 255", slots);
    d->max_memory_slots = (unsigned)s;
    free(slots);
    return r;
}

static int parse_vcpu(xnode n, struct domain_def *d, struct err *e)
{
    char *v = text_trim(n), *cur = attr(n, "current");
    uint64_t x = 0, c = 0;
    int r = 0;
    if (!v)
        r = oom(e);
    else if (parse_uint(v, UINT32_MAX, &x) < 0 || x < 1 || x > DOMAIN_MAX_VCPUS)
        r = err_set(e, EINVAL, "<vcpu> '%s' is not a number from 1 to %d", v, DOMAIN_MAX_VCPUS);
    else if (cur && (parse_uint(cur, UINT32_MAX, &c) < 0 || c < 1 || c > x))
        r = err_set(e, EINVAL, "<vcpu current='%s'> is not a number from 1 to %s", cur, v);
    else if (cur && c != x)
        r = err_set(e, EINVAL, "<vcpu current='%s'> is less than %s: cvirt cannot hot-plug "
                    "vCPUs", cur, v);
    d->vcpus = (unsigned)x;
    free(v);
    free(cur);
    return r;
}

static int parse_action(xnode n, enum domain_action *a, struct err *e)
{
    char *v = text_trim(n);
    if (!v)
        return oom(e);
    int n_ok = is_el(n, "on_crash") ? DOMAIN_ACTION_COUNT : DOMAIN_ACTION_RENAME_RESTART + 1;
    int i = domain_enum_lookup(domain_action_names, n_ok, v), r = 0;
    if (i < 0)
        r = err_set(e, EINVAL, "<%s> '%s' is not an action (destroy, restart, preserve, "
                    "rename-restart%s)", el_name(n), v,
                    is_el(n, "on_crash") ? ", coredump-destroy, coredump-restart" : "");
    else
        *a = (enum domain_action)i;
    free(v);
    return r;
}

/* ---- <domain> ---- */

/* Host tuning and guest details cvirt does not model; a guest runs the
 * same without them. */
static const char *const domain_dropped[] = {
    "genid", "cpu", "clock", "pm", "on_lockfailure", "resource", "seclabel",
    "memoryBacking", "memtune", "blkiotune", "cputune", "numatune", "iothreads",
    "iothreadids", "sysinfo", "keywrap", "perf", "vcpus", "throttlegroups", NULL,
};

/* The subtree as text, in a document of its own so namespaces declared
 * higher up are carried along. */
static int keep_metadata(xnode n, struct domain_def *d, struct err *e)
{
    free(d->metadata);
    d->metadata = NULL;
    xmlDoc *doc = xmlNewDoc((const xmlChar *)"1.0");
    xmlNode *copy = doc ? xmlDocCopyNode(n, doc, 1) : NULL;
    xmlBuffer *buf = xmlBufferCreate();
    int r = 0;
    if (!copy || !buf) {
        r = oom(e);
    } else {
        xmlDocSetRootElement(doc, copy);
        if (xmlNodeDump(buf, doc, copy, 0, 0) < 0)
            r = oom(e);
        else if (!(d->metadata = strdup((const char *)xmlBufferContent(buf))))
            r = oom(e);
    }
    if (!copy || (doc && !doc->children))
        xmlFreeNode(copy);
    xmlBufferFree(buf);
    xmlFreeDoc(doc);
    return r;
}

static int parse_uuid(xnode n, struct domain_def *d, bool *have, struct err *e)
{
    char *v = text_trim(n);
    if (!v)
        return oom(e);
    int r = 0;
    if (uuid_parse(v, d->uuid) < 0)
        r = err_set(e, EINVAL, "<uuid> '%s' is not a UUID (like "
                    "4dea22b3-1d52-d8f3-2516-782e98ab3fa0)", v);
    free(v);
    *have = true;
    return r;
}

struct seen {
    bool uuid, memory, current, os;
};

static int parse_top(xnode c, struct domain_def *d, struct seen *s, struct pctx *p)
{
    struct err *e = p->e;
    if (is_el(c, "name"))
        return take_text(c, &d->name, e);
    if (is_el(c, "uuid"))
        return parse_uuid(c, d, &s->uuid, e);
    if (is_el(c, "title")) {
        int r = take_text(c, &d->title, e);
        if (r == 0 && strchr(d->title, '\n'))
            r = err_set(e, EINVAL, "<title> must be a single line");
        return r;
    }
    if (is_el(c, "description")) {
        free(d->description);
        xmlChar *v = xmlNodeGetContent(c);
        d->description = strdup(v ? (const char *)v : "");
        xmlFree(v);
        return d->description ? 0 : oom(e);
    }
    if (is_el(c, "metadata"))
        return keep_metadata(c, d, e);
    if (is_el(c, "memory")) {
        s->memory = true;
        return parse_mem(c, &d->memory_kib, e);
    }
    if (is_el(c, "currentMemory")) {
        s->current = true;
        return parse_mem(c, &d->current_memory_kib, e);
    }
    if (is_el(c, "maxMemory"))
        return parse_max_memory(c, d, e);
    if (is_el(c, "vcpu"))
        return parse_vcpu(c, d, e);
    if (is_el(c, "os")) {
        s->os = true;
        return parse_os(c, d, p);
    }
    if (is_el(c, "features")) {
        parse_features(c, d);
        return 0;
    }
    if (is_el(c, "on_poweroff"))
        return parse_action(c, &d->on_poweroff, e);
    if (is_el(c, "on_reboot"))
        return parse_action(c, &d->on_reboot, e);
    if (is_el(c, "on_crash"))
        return parse_action(c, &d->on_crash, e);
    if (is_el(c, "devices"))
        return parse_devices(c, d, p);
    if (in_list(domain_dropped, el_name(c))) {
        log_debug("domain: ignoring <%s>", el_name(c));
        return 0;
    }
    if (c->ns && c->ns->prefix)
        return err_set(e, EINVAL, "unsupported element <%s:%s> in <domain>",
                       (const char *)c->ns->prefix, el_name(c));
    return err_set(e, EINVAL, "unsupported element <%s> in <domain>", el_name(c));
}

static int check_memory(struct domain_def *d, const struct seen *s, struct err *e)
{
    if (!s->memory)
        return err_set(e, EINVAL, "missing <memory>");
    if (d->memory_kib < DOMAIN_MIN_MEMORY_KIB)
        return err_set(e, EINVAL, "<memory> %" PRIu64 " KiB is too small: at least %llu KiB "
                       "(16 MiB)", d->memory_kib, DOMAIN_MIN_MEMORY_KIB);
    if (d->memory_kib > DOMAIN_MAX_MEMORY_KIB)
        return err_set(e, EINVAL, "<memory> %" PRIu64 " KiB is too large: at most %llu KiB "
                       "(1 TiB)", d->memory_kib, DOMAIN_MAX_MEMORY_KIB);
    if (!s->current)
        d->current_memory_kib = d->memory_kib;
    if (d->current_memory_kib > d->memory_kib)
        return err_set(e, EINVAL, "<currentMemory> %" PRIu64 " KiB is more than <memory> %"
                       PRIu64 " KiB", d->current_memory_kib, d->memory_kib);
    if (d->current_memory_kib == 0)
        return err_set(e, EINVAL, "<currentMemory> is zero");
    if (d->max_memory_kib && d->max_memory_kib < d->memory_kib)
        return err_set(e, EINVAL, "<maxMemory> %" PRIu64 " KiB is less than <memory> %" PRIu64
                       " KiB", d->max_memory_kib, d->memory_kib);
    return 0;
}

static int parse_root(xnode root, struct domain_def *d, struct pctx *p)
{
    struct err *e = p->e;
    if (!is_el(root, "domain"))
        return err_set(e, EINVAL, "expected a <domain> element, found <%s>", el_name(root));
    char *type = attr(root, "type");
    int r = 0;
    /* Both name hardware virtualization to cvirt: KVM is all it has. */
    if (!type || (strcmp(type, "kvm") && strcmp(type, "qemu")))
        r = err_set(e, EINVAL, "domain type '%s' is not supported (kvm)", type ? type : "");
    free(type);
    if (r == 0 && DOMAIN_LIVE_OK(p->flags)) {
        char *id = attr(root, "id");
        uint64_t v;
        if (id && (parse_uint(id, INT32_MAX, &v) < 0 || v == 0))
            r = err_set(e, EINVAL, "domain id '%s' is not a positive number", id);
        else if (id)
            d->id = (int)v;
        free(id);
    }
    struct seen s = {0};
    for (xnode c = root->children; c && r == 0; c = c->next)
        if (c->type == XML_ELEMENT_NODE)
            r = parse_top(c, d, &s, p);
    if (r < 0)
        return r;
    if (!d->name)
        return err_set(e, EINVAL, "missing <name>");
    if ((r = domain_name_check(d->name, e)) < 0)
        return r;
    if ((r = check_memory(d, &s, e)) < 0)
        return r;
    if (!s.os)
        return err_set(e, EINVAL, "missing <os>: cvirt boots a kernel directly "
                       "(<os><type>hvm</type><kernel>...</kernel></os>)");
    if (!s.uuid && (r = uuid_generate(d->uuid)) < 0)
        return err_set_errno(e, -r, "cannot generate a uuid");
    return 0;
}

/* Reads a document with no network access and no entity expansion;
 * libxml2's own error becomes the message. */
static xmlDoc *read_xml(const char *xml, size_t len, const char *what, struct err *e)
{
    if (len > DOMAIN_XML_MAX) {
        err_set(e, EFBIG, "%s XML is larger than %u bytes", what, DOMAIN_XML_MAX);
        return NULL;
    }
    xmlParserCtxt *ctxt = xmlNewParserCtxt();
    if (!ctxt) {
        oom(e);
        return NULL;
    }
    xmlDoc *doc = xmlCtxtReadMemory(ctxt, xml, (int)len, "domain.xml", NULL,
                                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc || !xmlDocGetRootElement(doc)) {
        const xmlError *xe = xmlCtxtGetLastError(ctxt);
        char msg[256] = "no root element";
        if (xe && xe->message) {
            snprintf(msg, sizeof msg, "%s", xe->message);
            msg[strcspn(msg, "\n")] = '\0';
        }
        err_set(e, EINVAL, "%s XML is malformed at line %d: %s", what, xe ? xe->line : 0, msg);
        xmlFreeDoc(doc);
        doc = NULL;
    }
    xmlFreeParserCtxt(ctxt);
    return doc;
}

int domain_def_parse(const char *xml, size_t len, unsigned flags,
                     struct domain_def **out, struct err *e)
{
    *out = NULL;
    xmlDoc *doc = read_xml(xml, len, "domain", e);
    if (!doc)
        return -e->code;
    struct domain_def *d = calloc(1, sizeof(*d));
    if (!d) {
        xmlFreeDoc(doc);
        return oom(e);
    }
    d->id = -1;
    d->vcpus = 1;
    d->on_poweroff = DOMAIN_ACTION_DESTROY;
    d->on_reboot = DOMAIN_ACTION_RESTART;
    d->on_crash = DOMAIN_ACTION_DESTROY;
    struct pctx p = { .flags = flags, .e = e };
    int r = parse_root(xmlDocGetRootElement(doc), d, &p);
    xmlFreeDoc(doc);
    if (r < 0) {
        domain_def_free(d);
        return r;
    }
    *out = d;
    return 0;
}

int domain_disk_parse(const char *xml, size_t len, struct domain_disk **out, struct err *e)
{
    *out = NULL;
    xmlDoc *doc = read_xml(xml, len, "disk", e);
    if (!doc)
        return -e->code;
    xnode root = xmlDocGetRootElement(doc);
    struct domain_disk *disk = calloc(1, sizeof(*disk));
    struct pctx p = { .flags = DOMAIN_PARSE_INACTIVE, .e = e };
    int r;
    if (!disk)
        r = oom(e);
    else if (!is_el(root, "disk"))
        r = err_set(e, EINVAL, "expected a <disk> element, found <%s>", el_name(root));
    else
        r = parse_disk(root, disk, &p);
    xmlFreeDoc(doc);
    if (r < 0) {
        domain_disk_free(disk);
        return r;
    }
    *out = disk;
    return 0;
}
