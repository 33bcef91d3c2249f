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

#include "daemon/domain_conf_xml.h"
#include "daemon/uuid.h"
#include "util/log.h"

/* Definitions are a few KiB; the bound keeps a client from making the
 * daemon build an arbitrarily large tree. */
#define DOMAIN_XML_MAX (4u << 20)
#define DOMAIN_MIN_MEMORY_KIB (16ull << 10)   /* cvirt-vmm's minimum */
#define DOMAIN_MAX_MEMORY_KIB (1ull << 30)    /* 1 TiB */

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

/* ---- <os>, <features>, memory, vcpus, lifecycle actions ---- */

static const char *const os_dropped[] = {
    "boot", "bootmenu", "smbios", "bios", "acpi", NULL,
};

static int parse_os_type(xnode n, struct domain_def *d, struct err *e)
{
    char *t = text_trim(n);
    int r = 0;
    if (!t)
        return dx_oom(e);
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
    char *v = text_trim(n), *unit;
    int r = attr_opt(n, "unit", &unit);
    if (r == 0)
        r = v ? domain_memory_parse(v, unit, kib) : -ENOMEM;
    if (r == -ERANGE)
        err_set(e, ERANGE, "<%s> '%s %s' is too large", el_name(n), v, unit ? unit : "KiB");
    else if (r == -ENOMEM)
        dx_oom(e);
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
        r = dx_oom(e);
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
        return dx_oom(e);
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
        r = dx_oom(e);
    } else {
        xmlDocSetRootElement(doc, copy);
        if (xmlNodeDump(buf, doc, copy, 0, 0) < 0)
            r = dx_oom(e);
        else if (!(d->metadata = strdup((const char *)xmlBufferContent(buf))))
            r = dx_oom(e);
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
        return dx_oom(e);
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
        return d->description ? 0 : dx_oom(e);
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
        return domain_conf_parse_devices(c, d, p);
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
static int read_xml(const char *xml, size_t len, const char *what, xmlDoc **out,
                    struct err *e)
{
    *out = NULL;
    if (len > DOMAIN_XML_MAX)
        return err_set(e, EFBIG, "%s XML is larger than %u bytes", what, DOMAIN_XML_MAX);
    xmlParserCtxt *ctxt = xmlNewParserCtxt();
    if (!ctxt)
        return dx_oom(e);
    int r = 0;
    xmlDoc *doc = xmlCtxtReadMemory(ctxt, xml, (int)len, "domain.xml", NULL,
                                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc || !xmlDocGetRootElement(doc)) {
        const xmlError *xe = xmlCtxtGetLastError(ctxt);
        char msg[256] = "no root element";
        if (xe && xe->message) {
            snprintf(msg, sizeof msg, "%s", xe->message);
            msg[strcspn(msg, "\n")] = '\0';
        }
        r = err_set(e, EINVAL, "%s XML is malformed at line %d: %s", what, xe ? xe->line : 0,
                    msg);
        xmlFreeDoc(doc);
        doc = NULL;
    }
    xmlFreeParserCtxt(ctxt);
    *out = doc;
    return r;
}

int domain_def_parse(const char *xml, size_t len, unsigned flags,
                     struct domain_def **out, struct err *e)
{
    *out = NULL;
    xmlDoc *doc;
    int r = read_xml(xml, len, "domain", &doc, e);
    if (r < 0)
        return r;
    struct domain_def *d = calloc(1, sizeof(*d));
    if (!d) {
        xmlFreeDoc(doc);
        return dx_oom(e);
    }
    d->id = -1;
    d->vcpus = 1;
    d->on_poweroff = DOMAIN_ACTION_DESTROY;
    d->on_reboot = DOMAIN_ACTION_RESTART;
    d->on_crash = DOMAIN_ACTION_DESTROY;
    struct pctx p = { .flags = flags, .e = e };
    r = parse_root(xmlDocGetRootElement(doc), d, &p);
    xmlFreeDoc(doc);
    if (r < 0) {
        domain_def_free(d);
        return r;
    }
    *out = d;
    return 0;
}

/* A device fragment for attach-device / detach-device: one root element,
 * parsed as in an inactive definition. */
static int read_fragment(const char *xml, size_t len, const char *what, xmlDoc **doc,
                         struct err *e)
{
    int r = read_xml(xml, len, what, doc, e);
    if (r < 0)
        return r;
    xnode root = xmlDocGetRootElement(*doc);
    if (!is_el(root, what)) {
        r = err_set(e, EINVAL, "expected <%s>, found <%s>", what, el_name(root));
        xmlFreeDoc(*doc);
        *doc = NULL;
    }
    return r;
}

int domain_disk_parse(const char *xml, size_t len, struct domain_disk **out, struct err *e)
{
    *out = NULL;
    xmlDoc *doc;
    int r = read_fragment(xml, len, "disk", &doc, e);
    if (r < 0)
        return r;
    struct domain_disk *disk = calloc(1, sizeof(*disk));
    struct pctx p = { .flags = DOMAIN_PARSE_INACTIVE, .e = e };
    r = disk ? domain_conf_parse_disk(xmlDocGetRootElement(doc), disk, &p) : dx_oom(e);
    xmlFreeDoc(doc);
    if (r < 0) {
        domain_disk_free(disk);
        return r;
    }
    *out = disk;
    return 0;
}

int domain_net_parse(const char *xml, size_t len, struct domain_net **out, struct err *e)
{
    *out = NULL;
    xmlDoc *doc;
    int r = read_fragment(xml, len, "interface", &doc, e);
    if (r < 0)
        return r;
    struct domain_net *net = calloc(1, sizeof(*net));
    struct pctx p = { .flags = DOMAIN_PARSE_INACTIVE, .e = e };
    r = net ? domain_conf_parse_net(xmlDocGetRootElement(doc), net, &p) : dx_oom(e);
    xmlFreeDoc(doc);
    if (r < 0) {
        domain_net_free(net);
        return r;
    }
    *out = net;
    return 0;
}

const char *domain_device_kind(const char *xml, size_t len)
{
    xmlDoc *doc;
    if (read_xml(xml, len, "device", &doc, NULL) < 0)
        return NULL;
    static const char *const kinds[] = { "disk", "interface", NULL };
    const char *name = el_name(xmlDocGetRootElement(doc)), *kind = NULL;
    for (int i = 0; kinds[i]; i++)
        if (!strcmp(name, kinds[i]))
            kind = kinds[i];
    xmlFreeDoc(doc);
    return kind;
}
