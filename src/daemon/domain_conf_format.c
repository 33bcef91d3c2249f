/* struct domain_def -> domain XML and -> cvirt-vmm's command line; copies,
 * frees and disk hot-plug edits of a definition. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/domain_conf_priv.h"
#include "daemon/uuid.h"

const char *const domain_action_names[DOMAIN_ACTION_COUNT] = {
    [DOMAIN_ACTION_DESTROY] = "destroy",
    [DOMAIN_ACTION_RESTART] = "restart",
    [DOMAIN_ACTION_PRESERVE] = "preserve",
    [DOMAIN_ACTION_RENAME_RESTART] = "rename-restart",
    [DOMAIN_ACTION_COREDUMP_DESTROY] = "coredump-destroy",
    [DOMAIN_ACTION_COREDUMP_RESTART] = "coredump-restart",
};
const char *const domain_disk_format_names[2] = {
    [DOMAIN_DISK_RAW] = "raw",
    [DOMAIN_DISK_QCOW2] = "qcow2",
};
const char *const domain_cache_names[3] = {
    [DOMAIN_CACHE_DEFAULT] = NULL,
    [DOMAIN_CACHE_NONE] = "none",
    [DOMAIN_CACHE_WRITEBACK] = "writeback",
};
const char *const domain_net_type_names[3] = {
    [DOMAIN_NET_NETWORK] = "network",
    [DOMAIN_NET_BRIDGE] = "bridge",
    [DOMAIN_NET_ETHERNET] = "ethernet",
};

/* ---- freeing and copying ---- */

void domain_backing_free(struct domain_backing *b)
{
    while (b) {
        struct domain_backing *next = b->next;
        free(b->file);
        free(b);
        b = next;
    }
}

void domain_disk_clear(struct domain_disk *disk)
{
    free(disk->source_file);
    free(disk->target_dev);
    free(disk->serial);
    domain_backing_free(disk->backing);
    memset(disk, 0, sizeof(*disk));
}

void domain_disk_free(struct domain_disk *disk)
{
    if (!disk)
        return;
    domain_disk_clear(disk);
    free(disk);
}

void domain_net_free(struct domain_net *net)
{
    if (!net)
        return;
    free(net->source);
    free(net->target_dev);
    free(net);
}

void domain_def_free(struct domain_def *d)
{
    if (!d)
        return;
    free(d->name);
    free(d->title);
    free(d->description);
    free(d->metadata);
    free(d->os.arch);
    free(d->os.machine);
    free(d->os.kernel);
    free(d->os.initrd);
    free(d->os.cmdline);
    for (size_t i = 0; i < d->ndisks; i++)
        domain_disk_clear(&d->disks[i]);
    free(d->disks);
    for (size_t i = 0; i < d->nnets; i++) {
        free(d->nets[i].source);
        free(d->nets[i].target_dev);
    }
    free(d->nets);
    free(d->serial.pty_path);
    free(d->vconsole.pty_path);
    free(d);
}

/* strdup that keeps NULL and reports failure through *ok. */
static char *dup_opt(const char *s, bool *ok)
{
    if (!s)
        return NULL;
    char *r = strdup(s);
    if (!r)
        *ok = false;
    return r;
}

static bool copy_disk(struct domain_disk *dst, const struct domain_disk *src)
{
    bool ok = true;
    *dst = *src;
    dst->source_file = dup_opt(src->source_file, &ok);
    dst->target_dev = dup_opt(src->target_dev, &ok);
    dst->serial = dup_opt(src->serial, &ok);
    dst->backing = NULL;
    struct domain_backing **tail = &dst->backing;
    for (const struct domain_backing *b = src->backing; b && ok; b = b->next) {
        struct domain_backing *nb = calloc(1, sizeof(*nb));
        if (!nb) {
            ok = false;
            break;
        }
        nb->format = b->format;
        nb->file = dup_opt(b->file, &ok);
        *tail = nb;
        tail = &nb->next;
    }
    return ok;
}

struct domain_def *domain_def_copy(const struct domain_def *s)
{
    struct domain_def *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    bool ok = true;
    *d = *s;
    d->name = dup_opt(s->name, &ok);
    d->title = dup_opt(s->title, &ok);
    d->description = dup_opt(s->description, &ok);
    d->metadata = dup_opt(s->metadata, &ok);
    d->os.arch = dup_opt(s->os.arch, &ok);
    d->os.machine = dup_opt(s->os.machine, &ok);
    d->os.kernel = dup_opt(s->os.kernel, &ok);
    d->os.initrd = dup_opt(s->os.initrd, &ok);
    d->os.cmdline = dup_opt(s->os.cmdline, &ok);
    d->serial.pty_path = dup_opt(s->serial.pty_path, &ok);
    d->vconsole.pty_path = dup_opt(s->vconsole.pty_path, &ok);
    d->disks = NULL;
    d->nets = NULL;
    d->ndisks = d->nnets = 0;
    if (s->ndisks && !(d->disks = calloc(s->ndisks, sizeof(*d->disks))))
        ok = false;
    for (size_t i = 0; ok && i < s->ndisks; i++) {
        d->ndisks++;
        ok = copy_disk(&d->disks[i], &s->disks[i]);
    }
    if (ok && s->nnets && !(d->nets = calloc(s->nnets, sizeof(*d->nets))))
        ok = false;
    for (size_t i = 0; ok && i < s->nnets; i++) {
        d->nnets++;
        d->nets[i] = s->nets[i];
        d->nets[i].source = dup_opt(s->nets[i].source, &ok);
        d->nets[i].target_dev = dup_opt(s->nets[i].target_dev, &ok);
    }
    if (!ok) {
        domain_def_free(d);
        return NULL;
    }
    return d;
}

/* ---- XML output ---- */

struct sbuf {
    char *s;
    size_t len, cap;
    bool failed;
};

static void sb_putn(struct sbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->failed = true;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

/* Escapes XML's specials and line breaks in text and attribute values alike. */
static void sb_esc(struct sbuf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': sb_puts(b, "&amp;"); break;
        case '<': sb_puts(b, "&lt;"); break;
        case '>': sb_puts(b, "&gt;"); break;
        case '\'': sb_puts(b, "&apos;"); break;
        case '"': sb_puts(b, "&quot;"); break;
        /* As references, or a parser would fold them into spaces (in
         * attributes) or turn \r\n into \n. */
        case '\n': sb_puts(b, "&#10;"); break;
        case '\r': sb_puts(b, "&#13;"); break;
        case '\t': sb_puts(b, "&#9;"); break;
        default: sb_putn(b, s, 1);
        }
    }
}

/* For markup and numbers only: strings from the user go through sb_esc. */
static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        b->failed = true;
    else
        sb_putn(b, tmp, (size_t)n);
}

/* <tag>escaped text</tag> at an indent. */
static void sb_elem(struct sbuf *b, int indent, const char *tag, const char *text)
{
    sb_printf(b, "%*s<%s>", indent, "", tag);
    sb_esc(b, text);
    sb_printf(b, "</%s>\n", tag);
}

/* indent + prefix + escaped value + suffix, for one attribute. */
static void sb_attr_line(struct sbuf *b, int indent, const char *pre, const char *val,
                         const char *post)
{
    sb_printf(b, "%*s%s", indent, "", pre);
    sb_esc(b, val);
    sb_puts(b, post);
}

static void fmt_backing(struct sbuf *b, const struct domain_backing *bs, int ind)
{
    if (!bs) {
        sb_printf(b, "%*s<backingStore/>\n", ind, "");
        return;
    }
    sb_printf(b, "%*s<backingStore type='file'>\n", ind, "");
    sb_printf(b, "%*s<format type='%s'/>\n", ind + 2, "", domain_disk_format_names[bs->format]);
    sb_attr_line(b, ind + 2, "<source file='", bs->file, "'/>\n");
    fmt_backing(b, bs->next, ind + 2);
    sb_printf(b, "%*s</backingStore>\n", ind, "");
}

static void fmt_disk(struct sbuf *b, const struct domain_disk *k, unsigned flags)
{
    sb_printf(b, "    <disk type='%s' device='disk'>\n", k->block ? "block" : "file");
    sb_puts(b, "      <driver name='qemu'");
    if (!k->format_absent)
        sb_printf(b, " type='%s'", domain_disk_format_names[k->format]);
    if (k->cache != DOMAIN_CACHE_DEFAULT)
        sb_printf(b, " cache='%s'", domain_cache_names[k->cache]);
    sb_puts(b, "/>\n");
    sb_attr_line(b, 6, k->block ? "<source dev='" : "<source file='", k->source_file, "'/>\n");
    /* libvirt shows the chain of a running domain; an empty element says
     * the chain ends here. */
    if (!(flags & DOMAIN_FORMAT_INACTIVE) && k->backing)
        fmt_backing(b, k->backing, 6);
    sb_attr_line(b, 6, "<target dev='", k->target_dev, "' bus='virtio'/>\n");
    if (k->readonly)
        sb_puts(b, "      <readonly/>\n");
    if (k->serial)
        sb_elem(b, 6, "serial", k->serial);
    if (k->pci_slot)
        sb_printf(b, "      <address type='pci' domain='0x0000' bus='0x00' slot='0x%02x' "
                  "function='0x0'/>\n", k->pci_slot);
    sb_puts(b, "    </disk>\n");
}

static void fmt_net(struct sbuf *b, const struct domain_net *n, unsigned flags)
{
    char mac[18];
    domain_mac_format(n->mac, mac);
    sb_printf(b, "    <interface type='%s'>\n", domain_net_type_names[n->type]);
    sb_printf(b, "      <mac address='%s'/>\n", mac);
    if (n->type == DOMAIN_NET_NETWORK)
        sb_attr_line(b, 6, "<source network='", n->source, "'/>\n");
    else if (n->type == DOMAIN_NET_BRIDGE)
        sb_attr_line(b, 6, "<source bridge='", n->source, "'/>\n");
    if (n->target_dev && (n->type == DOMAIN_NET_ETHERNET || !(flags & DOMAIN_FORMAT_INACTIVE)))
        sb_attr_line(b, 6, "<target dev='", n->target_dev, "'/>\n");
    sb_puts(b, "      <model type='virtio'/>\n");
    sb_puts(b, "    </interface>\n");
}

static void fmt_chr_open(struct sbuf *b, const char *tag, const struct domain_chr *c,
                         unsigned flags)
{
    bool live = c->pty_path && !(flags & DOMAIN_FORMAT_INACTIVE);
    if (live && !strcmp(tag, "console"))
        sb_attr_line(b, 4, "<console type='pty' tty='", c->pty_path, "'>\n");
    else
        sb_printf(b, "    <%s type='pty'>\n", tag);
    if (live)
        sb_attr_line(b, 6, "<source path='", c->pty_path, "'/>\n");
}

static void fmt_chars(struct sbuf *b, const struct domain_def *d, unsigned flags)
{
    if (d->serial.present) {
        fmt_chr_open(b, "serial", &d->serial, flags);
        sb_puts(b, "      <target type='isa-serial' port='0'>\n"
                   "        <model name='isa-serial'/>\n"
                   "      </target>\n"
                   "    </serial>\n");
        fmt_chr_open(b, "console", &d->serial, flags);
        sb_puts(b, "      <target type='serial' port='0'/>\n"
                   "    </console>\n");
    }
    if (d->vconsole.present) {
        fmt_chr_open(b, "console", &d->vconsole, flags);
        sb_printf(b, "      <target type='virtio' port='%d'/>\n", d->serial.present ? 1 : 0);
        sb_puts(b, "    </console>\n");
    }
}

static void fmt_devices(struct sbuf *b, const struct domain_def *d, unsigned flags)
{
    sb_puts(b, "  <devices>\n");
    for (size_t i = 0; i < d->ndisks; i++)
        fmt_disk(b, &d->disks[i], flags);
    for (size_t i = 0; i < d->nnets; i++)
        fmt_net(b, &d->nets[i], flags);
    fmt_chars(b, d, flags);
    if (d->rng)
        sb_puts(b, "    <rng model='virtio'>\n"
                   "      <backend model='random'>/dev/urandom</backend>\n"
                   "    </rng>\n");
    sb_printf(b, "    <memballoon model='%s'/>\n",
              d->balloon == DOMAIN_BALLOON_VIRTIO ? "virtio" : "none");
    sb_puts(b, "  </devices>\n");
}

static void fmt_os(struct sbuf *b, const struct domain_def *d)
{
    sb_puts(b, "  <os>\n    <type");
    if (d->os.arch)
        sb_attr_line(b, 0, " arch='", d->os.arch, "'");
    if (d->os.machine)
        sb_attr_line(b, 0, " machine='", d->os.machine, "'");
    sb_puts(b, ">hvm</type>\n");
    if (d->os.kernel)
        sb_elem(b, 4, "kernel", d->os.kernel);
    if (d->os.initrd)
        sb_elem(b, 4, "initrd", d->os.initrd);
    if (d->os.cmdline)
        sb_elem(b, 4, "cmdline", d->os.cmdline);
    sb_puts(b, "  </os>\n");
    if (d->acpi || d->apic || d->pae) {
        sb_puts(b, "  <features>\n");
        if (d->acpi)
            sb_puts(b, "    <acpi/>\n");
        if (d->apic)
            sb_puts(b, "    <apic/>\n");
        if (d->pae)
            sb_puts(b, "    <pae/>\n");
        sb_puts(b, "  </features>\n");
    }
}

char *domain_def_format(const struct domain_def *d, unsigned flags)
{
    struct sbuf b = {0};
    char uuid[UUID_STRING_LEN];
    if (d->id > 0 && !(flags & DOMAIN_FORMAT_INACTIVE))
        sb_printf(&b, "<domain type='kvm' id='%d'>\n", d->id);
    else
        sb_puts(&b, "<domain type='kvm'>\n");
    sb_elem(&b, 2, "name", d->name);
    uuid_format(d->uuid, uuid);
    sb_printf(&b, "  <uuid>%s</uuid>\n", uuid);
    if (d->title)
        sb_elem(&b, 2, "title", d->title);
    if (d->description)
        sb_elem(&b, 2, "description", d->description);
    if (d->metadata) {
        sb_puts(&b, "  ");
        sb_puts(&b, d->metadata);   /* serialized by libxml2, already escaped */
        sb_puts(&b, "\n");
    }
    if (d->max_memory_kib)
        sb_printf(&b, "  <maxMemory slots='%u' unit='KiB'>%" PRIu64 "</maxMemory>\n",
                  d->max_memory_slots, d->max_memory_kib);
    sb_printf(&b, "  <memory unit='KiB'>%" PRIu64 "</memory>\n", d->memory_kib);
    sb_printf(&b, "  <currentMemory unit='KiB'>%" PRIu64 "</currentMemory>\n",
              d->current_memory_kib);
    sb_printf(&b, "  <vcpu placement='static'>%u</vcpu>\n", d->vcpus);
    fmt_os(&b, d);
    sb_printf(&b, "  <on_poweroff>%s</on_poweroff>\n", domain_action_names[d->on_poweroff]);
    sb_printf(&b, "  <on_reboot>%s</on_reboot>\n", domain_action_names[d->on_reboot]);
    sb_printf(&b, "  <on_crash>%s</on_crash>\n", domain_action_names[d->on_crash]);
    fmt_devices(&b, d, flags);
    sb_puts(&b, "</domain>\n");
    if (b.failed) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* ---- cvirt-vmm command line ---- */

struct argv_b {
    char **v;
    size_t n, cap;
    bool failed;
};

static void av_add(struct argv_b *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void av_add(struct argv_b *a, const char *fmt, ...)
{
    if (a->failed)
        return;
    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 32;
        char **nv = realloc(a->v, cap * sizeof(*nv));
        if (!nv) {
            a->failed = true;
            return;
        }
        a->v = nv;
        a->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&a->v[a->n], fmt, ap);
    va_end(ap);
    if (r < 0) {
        a->failed = true;
        return;
    }
    a->v[++a->n] = NULL;
}

void domain_argv_free(char **argv)
{
    for (char **p = argv; p && *p; p++)
        free(*p);
    free(argv);
}

static int argv_disks(struct argv_b *a, const struct domain_def *d, struct err *e)
{
    for (size_t i = 0; i < d->ndisks; i++) {
        const struct domain_disk *k = &d->disks[i];
        /* cvirt-vmm splits --disk at commas, and a path cannot be quoted. */
        if (strchr(k->source_file, ','))
            return err_set(e, EINVAL, "disk '%s': source file '%s' contains ',', which "
                           "cvirt-vmm's --disk option cannot carry", k->target_dev,
                           k->source_file);
        /* A disk in a fixed slot is named as the hot-plug code names it,
         * so a disk attached live comes back ejectable, with the same ids,
         * when the domain is restored or migrated. */
        char slot[24] = "", node[64], dev[64], ids[160] = "";
        if (k->pci_slot)
            snprintf(slot, sizeof slot, ",slot=%u", k->pci_slot);
        if (k->pci_slot && domain_disk_qmp_names(k->target_dev, node, dev, sizeof node) == 0)
            snprintf(ids, sizeof ids, ",id=%s,node=%s", dev, node);
        av_add(a, "--disk");
        av_add(a, "%s,format=%s%s%s%s%s%s%s%s", k->source_file,
               domain_disk_format_names[k->format], k->readonly ? ",readonly=on" : "",
               k->serial ? ",serial=" : "", k->serial ? k->serial : "",
               k->cache != DOMAIN_CACHE_DEFAULT ? ",cache=" : "",
               k->cache != DOMAIN_CACHE_DEFAULT ? domain_cache_names[k->cache] : "",
               slot, ids);
    }
    return 0;
}

static int argv_nets(struct argv_b *a, const struct domain_def *d,
                     const struct domain_vmm_env *env, struct err *e)
{
    for (size_t i = 0; i < d->nnets; i++) {
        const struct domain_net *n = &d->nets[i];
        const char *tap = i < env->ntap_names && env->tap_names ? env->tap_names[i] : NULL;
        char mac[18];
        if (!tap)
            tap = n->target_dev;
        domain_mac_format(n->mac, mac);
        if (!tap || !*tap)
            return err_set(e, EINVAL, "interface %s: no tap device was given for it", mac);
        if (strchr(tap, ','))
            return err_set(e, EINVAL, "interface %s: tap name '%s' contains ','", mac, tap);
        av_add(a, "--net");
        av_add(a, "tap=%s,mac=%s", tap, mac);
    }
    return 0;
}

int domain_def_vmm_argv(const struct domain_def *d, const struct domain_vmm_env *env,
                        char ***argv, struct err *e)
{
    static const struct domain_vmm_env no_env;
    struct argv_b a = {0};
    *argv = NULL;
    if (!env)
        env = &no_env;
    if (!d->os.kernel)
        return err_set(e, EINVAL, "domain '%s' has no <os><kernel>: cvirt has no firmware "
                       "to boot a disk and starts a kernel directly", d->name);
    av_add(&a, "%s", env->vmm_path ? env->vmm_path : "cvirt-vmm");
    av_add(&a, "--kernel");
    av_add(&a, "%s", d->os.kernel);
    if (d->os.initrd) {
        av_add(&a, "--initrd");
        av_add(&a, "%s", d->os.initrd);
    }
    if (d->os.cmdline) {
        av_add(&a, "--append");
        av_add(&a, "%s", d->os.cmdline);
    }
    av_add(&a, "--memory");
    if (d->memory_kib % 1024 == 0)
        av_add(&a, "%" PRIu64 "M", d->memory_kib / 1024);
    else
        av_add(&a, "%" PRIu64 "K", d->memory_kib);
    av_add(&a, "--cpus");
    av_add(&a, "%u", d->vcpus);
    av_add(&a, "--console");
    av_add(&a, "%s", d->serial.present ? "pty" : "none");
    if (d->on_reboot == DOMAIN_ACTION_DESTROY)
        av_add(&a, "--no-reboot");
    if (env->control_path) {
        av_add(&a, "--control");
        av_add(&a, "%s", env->control_path);
    }
    if (d->rng)
        av_add(&a, "--rng");
    if (d->vconsole.present) {
        av_add(&a, "--vconsole");
        if (env->vconsole_socket)
            av_add(&a, "socket=%s", env->vconsole_socket);
        else
            av_add(&a, "pty");
    }
    if (d->balloon == DOMAIN_BALLOON_VIRTIO)
        av_add(&a, "--balloon");
    int r = argv_disks(&a, d, e);
    if (r == 0)
        r = argv_nets(&a, d, env, e);
    if (r == 0 && a.failed)
        r = err_set(e, ENOMEM, "out of memory");
    if (r < 0) {
        domain_argv_free(a.v);
        return r;
    }
    *argv = a.v;
    return 0;
}

/* ---- disk hot-plug edits ---- */

int domain_disk_qmp_names(const char *target, char *node, char *dev, size_t len)
{
    size_t n = strlen(target);
    if (n == 0 || n > 16)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!((target[i] >= 'a' && target[i] <= 'z') || (target[i] >= '0' && target[i] <= '9')))
            return -EINVAL;
    int a = snprintf(node, len, DOMAIN_DISK_NODE_PREFIX "%s", target);
    int b = snprintf(dev, len, DOMAIN_DISK_DEV_PREFIX "%s", target);
    return a < 0 || b < 0 || (size_t)a >= len || (size_t)b >= len ? -EINVAL : 0;
}

static int disk_index(const struct domain_def *d, const char *match)
{
    for (size_t i = 0; i < d->ndisks; i++)
        if (!strcmp(d->disks[i].target_dev, match))
            return (int)i;
    for (size_t i = 0; i < d->ndisks; i++)
        if (!strcmp(d->disks[i].source_file, match))
            return (int)i;
    return -1;
}

const struct domain_disk *domain_def_find_disk(const struct domain_def *d, const char *match)
{
    int i = disk_index(d, match);
    return i < 0 ? NULL : &d->disks[i];
}

int domain_def_add_disk(struct domain_def *d, struct domain_disk *disk, struct err *e)
{
    if (d->ndisks >= DOMAIN_MAX_DISKS)
        return err_set(e, EINVAL, "too many disks (at most %d)", DOMAIN_MAX_DISKS);
    for (size_t i = 0; i < d->ndisks; i++)
        if (!strcmp(d->disks[i].target_dev, disk->target_dev))
            return err_set(e, EEXIST, "disk target dev '%s' is already in use",
                           disk->target_dev);
    for (size_t i = 0; disk->pci_slot && i < d->ndisks; i++)
        if (d->disks[i].pci_slot == disk->pci_slot)
            return err_set(e, EEXIST, "PCI slot %#x is already used by disk '%s'",
                           disk->pci_slot, d->disks[i].target_dev);
    struct domain_disk *nd = realloc(d->disks, (d->ndisks + 1) * sizeof(*nd));
    if (!nd)
        return err_set(e, ENOMEM, "out of memory");
    d->disks = nd;
    d->disks[d->ndisks++] = *disk;
    free(disk);
    return 0;
}

int domain_def_remove_disk(struct domain_def *d, const char *match,
                           struct domain_disk **out, struct err *e)
{
    if (out)
        *out = NULL;
    int i = disk_index(d, match);
    if (i < 0)
        return err_set(e, ENOENT, "no disk with target dev or source file '%s'", match);
    struct domain_disk removed = d->disks[i];
    memmove(&d->disks[i], &d->disks[i + 1], (d->ndisks - (size_t)i - 1) * sizeof(*d->disks));
    d->ndisks--;
    if (out) {
        struct domain_disk *k = malloc(sizeof(*k));
        if (!k) {
            /* Put it back: the caller sees no change on failure. */
            memmove(&d->disks[i + 1], &d->disks[i], (d->ndisks - (size_t)i) * sizeof(*d->disks));
            d->disks[i] = removed;
            d->ndisks++;
            return err_set(e, ENOMEM, "out of memory");
        }
        *k = removed;
        *out = k;
    } else {
        domain_disk_clear(&removed);
    }
    return 0;
}

/* ---- interface edits ---- */

int domain_def_add_net(struct domain_def *d, struct domain_net *net, struct err *e)
{
    char mac[18];
    domain_mac_format(net->mac, mac);
    if (d->nnets >= DOMAIN_MAX_NETS)
        return err_set(e, EINVAL, "too many interfaces (at most %d)", DOMAIN_MAX_NETS);
    for (size_t i = 0; i < d->nnets; i++)
        if (!memcmp(d->nets[i].mac, net->mac, 6))
            return err_set(e, EEXIST, "an interface with MAC %s already exists", mac);
    struct domain_net *nn = realloc(d->nets, (d->nnets + 1) * sizeof(*nn));
    if (!nn)
        return err_set(e, ENOMEM, "out of memory");
    d->nets = nn;
    d->nets[d->nnets++] = *net;
    free(net);
    return 0;
}

int domain_def_remove_net(struct domain_def *d, const uint8_t mac[6],
                          struct domain_net **out, struct err *e)
{
    if (out)
        *out = NULL;
    size_t i;
    for (i = 0; i < d->nnets && memcmp(d->nets[i].mac, mac, 6); i++)
        ;
    if (i == d->nnets) {
        char s[18];
        domain_mac_format(mac, s);
        return err_set(e, ENOENT, "no interface with MAC %s", s);
    }
    struct domain_net *k = NULL;
    if (out && !(k = malloc(sizeof(*k))))
        return err_set(e, ENOMEM, "out of memory");
    struct domain_net removed = d->nets[i];
    memmove(&d->nets[i], &d->nets[i + 1], (d->nnets - i - 1) * sizeof(*d->nets));
    d->nnets--;
    if (k) {
        *k = removed;
        *out = k;
    } else {
        free(removed.source);
        free(removed.target_dev);
    }
    return 0;
}
