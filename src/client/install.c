/* cvirt-install: virt-install's common options turned into domain XML,
 * new disks created with libcvirt-img, the domain defined and started
 * through libcvirt-client. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client.h"
#include "client/tool.h"
#include "img/blk.h"

#define INSTALL_MAX_DISKS 16
#define INSTALL_MAX_NETS  8

struct install_disk {
    char path[4096];
    const char *format;     /* NULL: probed, or qcow2 when created */
    const char *bus;
    double size_gib;        /* 0: use the file as it is */
    bool readonly;
};

struct install_net {
    char type[16];          /* network, bridge */
    char source[256];
    char mac[32];
    char model[32];
};

struct install_opts {
    const char *uri;
    const char *name;
    unsigned long long memory_kib;
    int vcpus;
    struct install_disk disks[INSTALL_MAX_DISKS];
    int ndisks;
    struct install_net nets[INSTALL_MAX_NETS];
    int nnets;
    const char *kernel, *initrd, *cmdline;
    bool import, autoconsole, autostart, print_xml;
};

/* The leading number of "512" or "memory=512,maxmemory=1024". */
static int first_number(const char *s, const char *key, double *out)
{
    size_t kl = strlen(key);
    if (strncmp(s, key, kl) == 0 && s[kl] == '=')
        s += kl + 1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || (*end && *end != ',') || v <= 0)
        return -EINVAL;
    *out = v;
    return 0;
}

static int parse_disk(struct install_opts *o, const char *arg, struct err *e)
{
    if (strcmp(arg, "none") == 0)
        return 0;
    if (o->ndisks == INSTALL_MAX_DISKS)
        return err_set(e, E2BIG, "--disk: at most %d disks", INSTALL_MAX_DISKS);
    struct install_disk *d = &o->disks[o->ndisks];
    memset(d, 0, sizeof(*d));
    struct tool_kv kv[8];
    int n = tool_split_kv(arg, kv, 8, "path", e);
    if (n < 0)
        return n;
    for (int i = 0; i < n; i++) {
        const char *k = kv[i].key, *v = kv[i].val;
        if (strcmp(k, "path") == 0) {
            if (snprintf(d->path, sizeof(d->path), "%s", v) >= (int)sizeof(d->path))
                return err_set(e, ENAMETOOLONG, "--disk: path is too long");
        } else if (strcmp(k, "size") == 0) {
            if (first_number(v, "size", &d->size_gib) < 0)
                return err_set(e, EINVAL, "--disk: size '%s' is not a number of GiB", v);
        } else if (strcmp(k, "format") == 0) {
            if (strcmp(v, "qcow2") != 0 && strcmp(v, "raw") != 0)
                return err_set(e, EINVAL, "--disk: format '%s' (raw or qcow2)", v);
            d->format = strcmp(v, "qcow2") == 0 ? "qcow2" : "raw";
        } else if (strcmp(k, "bus") == 0) {
            d->bus = strcmp(v, "virtio") == 0 ? "virtio" : NULL;
            if (!d->bus)
                return err_set(e, EINVAL, "--disk: bus '%s' (only virtio)", v);
        } else if (strcmp(k, "readonly") == 0) {
            d->readonly = strcmp(v, "on") == 0 || strcmp(v, "yes") == 0 || !*v;
        } else if (strcmp(k, "device") == 0 && strcmp(v, "disk") == 0) {
            continue;
        } else {
            return err_set(e, EINVAL, "--disk: unknown option '%s'", k);
        }
    }
    if (!d->path[0])
        return err_set(e, EINVAL, "--disk: a path is required");
    o->ndisks++;
    return 0;
}

static int set_field(char *dst, size_t n, const char *k, const char *v, struct err *e)
{
    if (snprintf(dst, n, "%s", v) >= (int)n)
        return err_set(e, EINVAL, "--network: %s '%s' is too long", k, v);
    return 0;
}

static int parse_net(struct install_opts *o, const char *arg, struct err *e)
{
    if (strcmp(arg, "none") == 0)
        return 0;
    if (o->nnets == INSTALL_MAX_NETS)
        return err_set(e, E2BIG, "--network: at most %d interfaces", INSTALL_MAX_NETS);
    struct install_net *nt = &o->nets[o->nnets];
    memset(nt, 0, sizeof(*nt));
    strcpy(nt->type, "network");
    strcpy(nt->source, "default");
    strcpy(nt->model, "virtio");
    struct tool_kv kv[8];
    int n = tool_split_kv(arg, kv, 8, "network", e);
    if (n < 0)
        return n;
    for (int i = 0; i < n; i++) {
        const char *k = kv[i].key, *v = kv[i].val;
        int rc;
        if (i == 0 && strcmp(k, "network") == 0 && strcmp(v, "default") == 0) {
            rc = 0;     /* virt-install's "--network default" */
        } else if (strcmp(k, "network") == 0 || strcmp(k, "bridge") == 0) {
            strcpy(nt->type, k);
            rc = set_field(nt->source, sizeof(nt->source), k, v, e);
        } else if (strcmp(k, "mac") == 0) {
            rc = set_field(nt->mac, sizeof(nt->mac), k, v, e);
        } else if (strcmp(k, "model") == 0) {
            rc = set_field(nt->model, sizeof(nt->model), k, v, e);
        } else {
            rc = err_set(e, EINVAL, "--network: unknown option '%s'", k);
        }
        if (rc < 0)
            return rc;
    }
    o->nnets++;
    return 0;
}

static int parse_boot(struct install_opts *o, const char *arg, struct err *e)
{
    struct tool_kv kv[8];
    int n = tool_split_kv(arg, kv, 8, "dev", e);
    if (n < 0)
        return n;
    for (int i = 0; i < n; i++) {
        const char *k = kv[i].key;
        if (strcmp(k, "kernel") == 0)
            o->kernel = kv[i].val;
        else if (strcmp(k, "initrd") == 0)
            o->initrd = kv[i].val;
        else if (strcmp(k, "kernel_args") == 0 || strcmp(k, "cmdline") == 0)
            o->cmdline = kv[i].val;
        else if (strcmp(k, "dev") == 0)
            continue;   /* hd, network...: cvirt-vmm boots kernels directly */
        else
            return err_set(e, EINVAL, "--boot: unknown option '%s'", k);
    }
    return 0;
}

enum {
    OPT_NOAUTOCONSOLE = 256, OPT_AUTOSTART, OPT_PRINT_XML, OPT_IMPORT,
    OPT_OSINFO, OPT_GRAPHICS, OPT_CONSOLE, OPT_MEMORY, OPT_VCPUS,
};

static int parse_args(struct install_opts *o, int argc, char **argv, struct err *e)
{
    static const struct option lo[] = {
        { "connect", required_argument, NULL, 'c' },
        { "name", required_argument, NULL, 'n' },
        { "memory", required_argument, NULL, OPT_MEMORY },
        { "ram", required_argument, NULL, 'r' },
        { "vcpus", required_argument, NULL, OPT_VCPUS },
        { "disk", required_argument, NULL, 'd' },
        { "boot", required_argument, NULL, 'b' },
        { "network", required_argument, NULL, 'w' },
        { "import", no_argument, NULL, OPT_IMPORT },
        { "noautoconsole", no_argument, NULL, OPT_NOAUTOCONSOLE },
        { "autostart", no_argument, NULL, OPT_AUTOSTART },
        { "print-xml", no_argument, NULL, OPT_PRINT_XML },
        { "osinfo", required_argument, NULL, OPT_OSINFO },
        { "os-variant", required_argument, NULL, OPT_OSINFO },
        { "graphics", required_argument, NULL, OPT_GRAPHICS },
        { "console", required_argument, NULL, OPT_CONSOLE },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    o->autoconsole = true;
    opterr = 0;
    int ch;
    double v;
    int rc = 0;
    while (rc == 0 && (ch = getopt_long(argc, argv, "c:n:r:d:b:w:h", lo, NULL)) != -1) {
        switch (ch) {
        case 'c': o->uri = optarg; break;
        case 'n': o->name = optarg; break;
        case OPT_MEMORY: case 'r':
            if (first_number(optarg, "memory", &v) < 0 || v > (1 << 20))
                return err_set(e, EINVAL, "--memory: '%s' is not a size in MiB", optarg);
            o->memory_kib = (unsigned long long)(v * 1024);
            break;
        case OPT_VCPUS:
            if (first_number(optarg, "vcpus", &v) < 0 || v > 64 || v != (int)v)
                return err_set(e, EINVAL, "--vcpus: '%s' is not a count from 1 to 64", optarg);
            o->vcpus = (int)v;
            break;
        case 'd': rc = parse_disk(o, optarg, e); break;
        case 'w': rc = parse_net(o, optarg, e); break;
        case 'b': rc = parse_boot(o, optarg, e); break;
        case OPT_IMPORT: o->import = true; break;
        case OPT_NOAUTOCONSOLE: o->autoconsole = false; break;
        case OPT_AUTOSTART: o->autostart = true; break;
        case OPT_PRINT_XML: o->print_xml = true; break;
        case OPT_OSINFO: break;     /* no per-OS defaults: every guest gets virtio */
        case OPT_GRAPHICS:
            if (strncmp(optarg, "none", 4) != 0)
                return err_set(e, EINVAL, "--graphics %s: cvirt has no display, use --graphics none", optarg);
            break;
        case OPT_CONSOLE: break;   /* a pty serial console is always there */
        case 'h':
            tool_usage_install(stdout);
            exit(0);
        default:
            return err_set(e, EINVAL, "unrecognized arguments: %s", argv[optind - 1]);
        }
    }
    if (rc < 0)
        return rc;
    if (optind < argc)
        return err_set(e, EINVAL, "unrecognized arguments: %s", argv[optind]);
    if (!o->name)
        return err_set(e, EINVAL, "--name is required");
    if (!o->memory_kib)
        return err_set(e, EINVAL, "--memory amount in MiB is required");
    if (!o->kernel)
        return err_set(e, EINVAL,
                       "--boot kernel=PATH is required: cvirt-vmm boots a kernel directly");
    return 0;
}

static void xml_disk(FILE *f, const struct install_disk *d, int index)
{
    fprintf(f, "    <disk type='file' device='disk'>\n      <driver name='qemu' type='%s'/>\n",
            d->format);
    fputs("      <source file=", f);
    tool_xml_attr(f, d->path);
    fprintf(f, "/>\n      <target dev='vd%c' bus='virtio'/>\n", 'a' + index);
    if (d->readonly)
        fputs("      <readonly/>\n", f);
    fputs("    </disk>\n", f);
}

static void xml_net(FILE *f, const struct install_net *n)
{
    fprintf(f, "    <interface type='%s'>\n      <source %s=", n->type, n->type);
    tool_xml_attr(f, n->source);
    fputs("/>\n", f);
    if (n->mac[0]) {
        fputs("      <mac address=", f);
        tool_xml_attr(f, n->mac);
        fputs("/>\n", f);
    }
    fputs("      <model type=", f);
    tool_xml_attr(f, n->model);
    fputs("/>\n    </interface>\n", f);
}

static char *domain_xml(const struct install_opts *o)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    fputs("<domain type='kvm'>\n  <name>", f);
    tool_xml_text(f, o->name);
    fprintf(f, "</name>\n  <memory unit='KiB'>%llu</memory>\n"
               "  <currentMemory unit='KiB'>%llu</currentMemory>\n"
               "  <vcpu>%d</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n",
            o->memory_kib, o->memory_kib, o->vcpus ? o->vcpus : 1);
    const char *tags[] = { "kernel", "initrd", "cmdline" };
    const char *vals[] = { o->kernel, o->initrd, o->cmdline };
    for (int i = 0; i < 3; i++) {
        if (!vals[i])
            continue;
        fprintf(f, "    <%s>", tags[i]);
        tool_xml_text(f, vals[i]);
        fprintf(f, "</%s>\n", tags[i]);
    }
    fputs("  </os>\n  <features>\n    <acpi/>\n    <apic/>\n  </features>\n"
          "  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n"
          "  <on_crash>destroy</on_crash>\n  <devices>\n", f);
    for (int i = 0; i < o->ndisks; i++)
        xml_disk(f, &o->disks[i], i);
    for (int i = 0; i < o->nnets; i++)
        xml_net(f, &o->nets[i]);
    fputs("    <serial type='pty'/>\n    <console type='pty'/>\n  </devices>\n</domain>\n", f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Creates the disks that have a size and do not exist yet; settles the
 * format of the others from their first bytes. */
static int prepare_disks(struct install_opts *o, bool create, struct err *e)
{
    for (int i = 0; i < o->ndisks; i++) {
        struct install_disk *d = &o->disks[i];
        bool exists = access(d->path, F_OK) == 0;
        if (!exists && d->size_gib > 0) {
            if (!d->format)
                d->format = "qcow2";
            if (!create)
                continue;
            struct blk_create_opts co = {
                .size = (uint64_t)(d->size_gib * 1073741824.0),
                .size_set = true,
            };
            co.size = (co.size + 511) & ~511ull;
            int rc = blk_create(d->format, d->path, &co, e);
            if (rc < 0) {
                err_prefix(e, "--disk %s: ", d->path);
                return rc;
            }
            printf("Created %s disk %s\n", d->format, d->path);
        } else if (!exists) {
            return err_set(e, ENOENT, "--disk %s: no such file (add size=GiB to create it)",
                           d->path);
        } else if (!d->format) {
            /* Safe here and not in the daemon: the user names this file
             * now, before any guest has written to it. */
            d->format = tool_probe_qcow2(d->path) ? "qcow2" : "raw";
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct install_opts *o = calloc(1, sizeof(*o));
    struct err e = {0};
    if (!o || parse_args(o, argc, argv, &e) < 0 ||
        prepare_disks(o, !(o && o->print_xml), &e) < 0) {
        fprintf(stderr, "ERROR    %s\n", o ? e.msg : "out of memory");
        free(o);
        return 1;
    }
    char *xml = domain_xml(o);
    if (!xml) {
        fprintf(stderr, "ERROR    out of memory\n");
        free(o);
        return 1;
    }
    int rc = 0;
    if (o->print_xml) {
        fputs(xml, stdout);
    } else {
        rc = tool_define_and_start(o->uri, xml, o->autostart,
                                   o->autoconsole && isatty(STDIN_FILENO), &e);
        if (rc < 0)
            fprintf(stderr, "ERROR    %s\n", e.msg);
    }
    free(xml);
    free(o);
    return rc < 0 ? 1 : 0;
}
