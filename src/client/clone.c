/* cvirt-clone: virt-clone's common options. The definition is copied
 * with a new name, no UUID and no MAC addresses (the daemon makes fresh
 * ones), and each writable file disk gets a new image: a full copy as
 * virt-clone makes, or with --overlay a qcow2 overlay on the original. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "client/client.h"
#include "client/tool.h"
#include "img/blk.h"

#define CLONE_MAX_FILES 16
#define CLONE_MAX_CREATED 64

/* Images made so far, removed again when the clone fails. */
static char *created[CLONE_MAX_CREATED];
static int ncreated;

struct clone_opts {
    const char *uri;
    const char *original;
    const char *name;
    const char *files[CLONE_MAX_FILES];
    int nfiles;
    bool auto_clone, overlay, print_xml;
};

static int parse_args(struct clone_opts *o, int argc, char **argv, struct err *e)
{
    static const struct option lo[] = {
        { "connect", required_argument, NULL, 'c' },
        { "original", required_argument, NULL, 'o' },
        { "name", required_argument, NULL, 'n' },
        { "file", required_argument, NULL, 'f' },
        { "auto-clone", no_argument, NULL, 'A' },
        { "overlay", no_argument, NULL, 'O' },
        { "print-xml", no_argument, NULL, 'P' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:o:n:f:h", lo, NULL)) != -1) {
        switch (ch) {
        case 'c': o->uri = optarg; break;
        case 'o': o->original = optarg; break;
        case 'n': o->name = optarg; break;
        case 'f':
            if (o->nfiles == CLONE_MAX_FILES)
                return err_set(e, E2BIG, "--file: at most %d", CLONE_MAX_FILES);
            o->files[o->nfiles++] = optarg;
            break;
        case 'A': o->auto_clone = true; break;
        case 'O': o->overlay = true; break;
        case 'P': o->print_xml = true; break;
        case 'h':
            printf("usage: cvirt-clone --original NAME [--name NEW] [--file PATH]... "
                   "[--auto-clone] [--overlay] [--print-xml] [--connect URI]\n"
                   "Copies a shut-off domain's definition with a fresh UUID and MAC addresses;\n"
                   "its disks are copied in full, or with --overlay become qcow2 overlays\n"
                   "backed by the original images (which must then stay unchanged).\n");
            exit(0);
        default:
            return err_set(e, EINVAL, "unrecognized arguments: %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return err_set(e, EINVAL, "unrecognized arguments: %s", argv[optind]);
    if (!o->original)
        return err_set(e, EINVAL, "--original is required");
    if (!o->name && !o->auto_clone)
        return err_set(e, EINVAL, "A name is required for the new virtual machine, use '--name NEW_VM_NAME' to specify one.");
    return 0;
}

/* The original must not change under the copy. */
static int fetch_original(struct client_conn *c, const char *name, char **xml,
                          struct err *e)
{
    remote_domain_lookup_by_name_args la = { .name = (char *)name };
    remote_domain_lookup_by_name_ret lr;
    memset(&lr, 0, sizeof(lr));
    int rc = client_call(c, CLIENT_PROC_DOMAIN_LOOKUP_BY_NAME,
                         (xdrproc_t)xdr_remote_domain_lookup_by_name_args, &la,
                         (xdrproc_t)xdr_remote_domain_lookup_by_name_ret, &lr, e);
    if (rc < 0)
        return rc;
    remote_domain_get_state_args sa = { .dom = lr.dom, .flags = 0 };
    remote_domain_get_state_ret sr = {0};
    rc = client_call(c, CLIENT_PROC_DOMAIN_GET_STATE,
                     (xdrproc_t)xdr_remote_domain_get_state_args, &sa,
                     (xdrproc_t)xdr_remote_domain_get_state_ret, &sr, e);
    if (rc == 0 && sr.state != 5 /* shut off */ && sr.state != 3 /* paused */)
        rc = err_set(e, EBUSY, "Domain with devices to clone must be paused or shutoff.");
    if (rc == 0) {
        remote_domain_get_xml_desc_args xa = { .dom = lr.dom, .flags = 2 /* INACTIVE */ };
        remote_domain_get_xml_desc_ret xr;
        memset(&xr, 0, sizeof(xr));
        rc = client_call(c, CLIENT_PROC_DOMAIN_GET_XML_DESC,
                         (xdrproc_t)xdr_remote_domain_get_xml_desc_args, &xa,
                         (xdrproc_t)xdr_remote_domain_get_xml_desc_ret, &xr, e);
        if (rc == 0)
            *xml = xr.xml;
    }
    client_free_ret((xdrproc_t)xdr_remote_domain_lookup_by_name_ret, &lr);
    return rc;
}

static xmlNode *child(xmlNode *n, const char *name)
{
    for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, name) == 0)
            return c;
    return NULL;
}

/* DIR/NEWNAME.EXT (or DIR/BASE-clone.EXT without a name), as virt-clone
 * names auto-cloned images. */
static int auto_path(const char *orig, const char *newname, char *out, size_t n,
                     struct err *e)
{
    char a[BLK_PATH_MAX], b[BLK_PATH_MAX];
    snprintf(a, sizeof(a), "%s", orig);
    snprintf(b, sizeof(b), "%s", orig);
    const char *dir = dirname(a);
    char *base = basename(b);
    char ext[64] = "";
    char *dot = strrchr(base, '.');
    if (dot && strlen(dot) < sizeof(ext)) {
        strcpy(ext, dot);
        *dot = '\0';
    }
    int w = newname ? snprintf(out, n, "%s/%s%s", dir, newname, ext)
                    : snprintf(out, n, "%s/%s-clone%s", dir, base, ext);
    if (w < 0 || (size_t)w >= n)
        return err_set(e, ENAMETOOLONG, "clone path for %s is too long", orig);
    return 0;
}

/* A sparse copy: blocks of zeros become holes. */
static int copy_file(const char *from, const char *to, struct err *e)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return err_set_errno(e, errno, "cannot open %s", from);
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) {
        int saved = errno;
        close(in);
        return err_set_errno(e, saved, "cannot create %s", to);
    }
    static char buf[1 << 16];
    off_t off = 0;
    int rc = 0;
    for (;;) {
        ssize_t r = pread(in, buf, sizeof(buf), off);
        if (r < 0) {
            rc = err_set_errno(e, errno, "cannot read %s", from);
            break;
        }
        if (r == 0)
            break;
        if (!blk_is_zero(buf, (size_t)r) && blk_file_pwrite(out, buf, (size_t)r, (uint64_t)off) < 0) {
            rc = err_set_errno(e, errno, "cannot write %s", to);
            break;
        }
        off += r;
    }
    if (rc == 0 && (ftruncate(out, off) < 0 || fsync(out) < 0))
        rc = err_set_errno(e, errno, "cannot finish %s", to);
    close(in);
    close(out);
    if (rc < 0)
        unlink(to);
    return rc;
}

/* Gives one writable file disk its new image (created only when create);
 * an overlay makes the disk qcow2 whatever the original's format. */
static int clone_disk(const struct clone_opts *o, xmlNode *disk, int index,
                      bool create, struct err *e)
{
    xmlNode *src = child(disk, "source");
    xmlChar *file = src ? xmlGetProp(src, (const xmlChar *)"file") : NULL;
    if (!file || child(disk, "readonly") || child(disk, "shareable")) {
        xmlFree(file);
        return 0;   /* shared with the original, as virt-clone does */
    }
    char path[BLK_PATH_MAX];
    int rc = 0;
    if (index < o->nfiles)
        snprintf(path, sizeof(path), "%s", o->files[index]);
    else if (o->auto_clone || o->name)
        rc = auto_path((const char *)file, o->name, path, sizeof(path), e);
    if (rc == 0 && access(path, F_OK) == 0)
        rc = err_set(e, EEXIST, "Clone onto existing storage volume is not currently supported: '%s'", path);
    xmlNode *drv = child(disk, "driver");
    xmlChar *fmt = drv ? xmlGetProp(drv, (const xmlChar *)"type") : NULL;
    if (rc == 0 && create && o->overlay) {
        struct blk_create_opts co = {
            .backing_file = (const char *)file,
            .backing_fmt = fmt ? (const char *)fmt : "raw",
        };
        rc = blk_create("qcow2", path, &co, e);
    } else if (rc == 0 && create) {
        rc = copy_file((const char *)file, path, e);
    }
    if (rc == 0 && create) {
        printf("Allocating '%s'\n", path);
        if (ncreated < CLONE_MAX_CREATED)
            created[ncreated++] = strdup(path);
    }
    if (rc == 0) {
        xmlSetProp(src, (const xmlChar *)"file", (const xmlChar *)path);
        if (o->overlay) {
            if (!drv) {
                drv = xmlNewChild(disk, NULL, (const xmlChar *)"driver", NULL);
                xmlSetProp(drv, (const xmlChar *)"name", (const xmlChar *)"qemu");
            }
            xmlSetProp(drv, (const xmlChar *)"type", (const xmlChar *)"qcow2");
        }
    }
    xmlFree(fmt);
    xmlFree(file);
    return rc;
}

/* Rewrites the definition: name, no uuid, no MACs, new disks. */
static int clone_xml(const struct clone_opts *o, const char *in, char **out, struct err *e)
{
    xmlDoc *doc = xmlReadMemory(in, (int)strlen(in), "domain.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOBLANKS);
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!root) {
        xmlFreeDoc(doc);
        return err_set(e, EBADMSG, "the daemon sent a domain XML that does not parse");
    }
    char auto_name[256];
    const char *name = o->name;
    if (!name) {
        snprintf(auto_name, sizeof(auto_name), "%s-clone", o->original);
        name = auto_name;
    }
    xmlNode *n = child(root, "name"), *u = child(root, "uuid");
    if (n) {
        /* AddContent escapes; SetContent would read entities in name. */
        xmlNodeSetContent(n, (const xmlChar *)"");
        xmlNodeAddContent(n, (const xmlChar *)name);
    }
    if (u) {
        xmlUnlinkNode(u);
        xmlFreeNode(u);
    }
    xmlNode *devs = child(root, "devices");
    int rc = 0, index = 0;
    for (xmlNode *d = devs ? devs->children : NULL; d && rc == 0; d = d->next) {
        if (d->type != XML_ELEMENT_NODE)
            continue;
        if (strcmp((const char *)d->name, "interface") == 0) {
            xmlNode *mac = child(d, "mac");
            if (mac) {
                xmlUnlinkNode(mac);
                xmlFreeNode(mac);
            }
        } else if (strcmp((const char *)d->name, "disk") == 0) {
            bool had = child(d, "source") && !child(d, "readonly") && !child(d, "shareable");
            rc = clone_disk(o, d, index, !o->print_xml, e);
            if (had)
                index++;
        }
    }
    if (rc == 0) {
        xmlChar *mem = NULL;
        int len = 0;
        xmlDocDumpFormatMemory(doc, &mem, &len, 1);
        *out = mem ? strdup((const char *)mem) : NULL;
        xmlFree(mem);
        if (!*out)
            rc = err_set(e, ENOMEM, "out of memory");
    }
    xmlFreeDoc(doc);
    return rc;
}

int main(int argc, char **argv)
{
    struct clone_opts o = {0};
    struct err e = {0};
    struct client_conn *c = NULL;
    char *orig = NULL, *xml = NULL;
    int rc = parse_args(&o, argc, argv, &e);
    if (rc == 0)
        rc = client_open(&c, o.uri, 0, &e);
    if (rc == 0)
        rc = fetch_original(c, o.original, &orig, &e);
    if (rc == 0)
        rc = clone_xml(&o, orig, &xml, &e);
    if (rc == 0 && o.print_xml) {
        fputs(xml, stdout);
    } else if (rc == 0) {
        remote_domain_define_xml_args da = { .xml = xml };
        remote_domain_define_xml_ret dr;
        memset(&dr, 0, sizeof(dr));
        rc = client_call(c, CLIENT_PROC_DOMAIN_DEFINE_XML,
                         (xdrproc_t)xdr_remote_domain_define_xml_args, &da,
                         (xdrproc_t)xdr_remote_domain_define_xml_ret, &dr, &e);
        if (rc == 0) {
            printf("\nClone '%s' created successfully.\n", dr.dom.name);
            client_free_ret((xdrproc_t)xdr_remote_domain_define_xml_ret, &dr);
        }
    }
    if (rc < 0)
        fprintf(stderr, "ERROR    %s\n", e.msg);
    for (int i = 0; i < ncreated; i++) {
        if (rc < 0 && created[i])
            unlink(created[i]);
        free(created[i]);
    }
    free(orig);
    free(xml);
    client_close(c);
    return rc < 0 ? 1 : 0;
}
