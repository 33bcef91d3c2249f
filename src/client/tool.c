/* Helpers shared by cvirt-install and cvirt-clone. */
#include "client/tool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client.h"
#include "client/cvirsh.h"

/* The copies the pairs point into, kept (and reachable, for leak
 * checkers) until the program exits, as tool.h promises. */
static char **kept;
static size_t nkept;

static char *keep_copy(const char *arg)
{
    char **k = realloc(kept, (nkept + 1) * sizeof(*kept));
    if (!k)
        return NULL;
    kept = k;
    char *s = strdup(arg);
    if (s)
        kept[nkept++] = s;
    return s;
}

int tool_split_kv(const char *arg, struct tool_kv *kv, int max, const char *first_key,
                  struct err *e)
{
    char *s = keep_copy(arg);
    if (!s)
        return err_set(e, ENOMEM, "out of memory");
    int n = 0;
    for (char *save = NULL, *item = strtok_r(s, ",", &save); item;
         item = strtok_r(NULL, ",", &save)) {
        if (n == max)
            return err_set(e, E2BIG, "'%s': too many options", arg);
        char *eq = strchr(item, '=');
        if (eq) {
            *eq = '\0';
            kv[n].key = item;
            kv[n].val = eq + 1;
        } else if (n == 0) {
            kv[n].key = first_key;
            kv[n].val = item;
        } else {
            kv[n].key = item;
            kv[n].val = "";
        }
        n++;
    }
    return n;
}

static void escape(FILE *f, const char *v, bool attr)
{
    for (; *v; v++) {
        switch (*v) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '\'':
            fputs(attr ? "&apos;" : "'", f);
            break;
        default: fputc(*v, f);
        }
    }
}

void tool_xml_attr(FILE *f, const char *v)
{
    fputc('\'', f);
    escape(f, v, true);
    fputc('\'', f);
}

void tool_xml_text(FILE *f, const char *v)
{
    escape(f, v, false);
}

bool tool_probe_qcow2(const char *path)
{
    unsigned char m[4];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool q = pread(fd, m, 4, 0) == 4 && memcmp(m, "QFI\xfb", 4) == 0;
    close(fd);
    return q;
}

static int console(const char *uri, const char *name)
{
    char *argv[] = { "cvirsh", "-c", (char *)uri, "console", (char *)name, NULL };
    return cvirsh_main(5, argv);
}

int tool_define_and_start(const char *uri, const char *xml, bool autostart,
                          bool want_console, struct err *e)
{
    struct client_conn *c;
    int rc = client_open(&c, uri, 0, e);
    if (rc < 0)
        return rc;
    printf("\nStarting install...\n");
    remote_domain_define_xml_args da = { .xml = (char *)xml };
    remote_domain_define_xml_ret dr;
    memset(&dr, 0, sizeof(dr));
    rc = client_call(c, CLIENT_PROC_DOMAIN_DEFINE_XML,
                     (xdrproc_t)xdr_remote_domain_define_xml_args, &da,
                     (xdrproc_t)xdr_remote_domain_define_xml_ret, &dr, e);
    if (rc < 0)
        goto out;
    if (autostart) {
        remote_domain_set_autostart_args aa = { .dom = dr.dom, .autostart = 1 };
        rc = client_call(c, CLIENT_PROC_DOMAIN_SET_AUTOSTART,
                         (xdrproc_t)xdr_remote_domain_set_autostart_args, &aa,
                         NULL, NULL, e);
        if (rc < 0)
            goto out_dom;
    }
    printf("Creating domain...\n");
    fflush(stdout);
    remote_domain_create_args ca = { .dom = dr.dom };
    rc = client_call(c, CLIENT_PROC_DOMAIN_CREATE,
                     (xdrproc_t)xdr_remote_domain_create_args, &ca, NULL, NULL, e);
    if (rc < 0)
        goto out_dom;
    if (want_console) {
        fflush(stdout);
        console(uri ? uri : client_get_uri(c), dr.dom.name);
    }
    printf("Domain creation completed.\n");
out_dom:
    client_free_ret((xdrproc_t)xdr_remote_domain_define_xml_ret, &dr);
out:
    client_close(c);
    return rc;
}

void tool_usage_install(FILE *f)
{
    fputs("usage: cvirt-install --name NAME --memory MiB --boot kernel=PATH[,initrd=PATH,kernel_args=ARGS]\n"
          "                     [--vcpus N] [--disk path=PATH[,size=GiB,format=qcow2|raw,readonly=on]]...\n"
          "                     [--network network=NAME|bridge=BR[,mac=MAC,model=virtio]|none]...\n"
          "                     [--import] [--noautoconsole] [--autostart] [--print-xml]\n"
          "                     [--connect URI]\n"
          "Defines a domain from virt-install's common options and starts it.\n"
          "A --disk with size= that does not exist yet is created (qcow2 unless format=raw).\n", f);
}
