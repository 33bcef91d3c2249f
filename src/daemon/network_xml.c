/* <network> XML: parse, check and format, in libvirt's layout. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "daemon/domain_conf.h"
#include "daemon/network.h"
#include "daemon/uuid.h"

typedef xmlNode *xnode;

static bool is_el(xnode n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name);
}

static xnode child(xnode n, const char *name)
{
    for (xnode c = n ? n->children : NULL; c; c = c->next)
        if (is_el(c, name))
            return c;
    return NULL;
}

static char *attr(xnode n, const char *name)
{
    xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
    if (!v)
        return NULL;
    char *s = strdup((const char *)v);
    xmlFree(v);
    return s;
}

static char *text(xnode n)
{
    xmlChar *v = xmlNodeGetContent(n);
    if (!v)
        return NULL;
    const char *s = (const char *)v;
    while (*s == ' ' || *s == '\n' || *s == '\t')
        s++;
    size_t l = strlen(s);
    while (l && (s[l - 1] == ' ' || s[l - 1] == '\n' || s[l - 1] == '\t'))
        l--;
    char *r = strndup(s, l);
    xmlFree(v);
    return r;
}

uint32_t network_mask(unsigned prefix)
{
    return prefix == 0 ? 0 : prefix >= 32 ? 0xffffffffu : ~((1u << (32 - prefix)) - 1);
}

void network_ip_format(uint32_t ip, char buf[16])
{
    snprintf(buf, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

static int ip_attr(xnode n, const char *name, bool required, uint32_t *out, bool *found,
                   struct err *e)
{
    char *v = attr(n, name);
    if (found)
        *found = v != NULL;
    if (!v)
        return required ? err_set(e, EINVAL, "<%s>: missing %s", (const char *)n->name, name)
                        : 0;
    struct in_addr a;
    int ok = inet_pton(AF_INET, v, &a) == 1;
    int r = ok ? 0 : err_set(e, EINVAL, "<%s %s='%s'>: not an IPv4 address",
                             (const char *)n->name, name, v);
    free(v);
    if (ok)
        *out = ntohl(a.s_addr);
    return r;
}

/* A contiguous netmask as a prefix length, or -1. */
static int mask_prefix(uint32_t m)
{
    for (unsigned p = 0; p <= 32; p++)
        if (network_mask(p) == m)
            return (int)p;
    return -1;
}

static bool ifname_ok(const char *s)
{
    size_t l = strlen(s);
    if (l == 0 || l > NETWORK_IFNAME_MAX || !strcmp(s, ".") || !strcmp(s, ".."))
        return false;
    for (const char *p = s; *p; p++)
        if (*p <= ' ' || *p == '/' || *p == ':' || *p == ',' || *p == '%' || *p > '~' ||
            strchr("'\"<>&", *p))
            return false;
    return true;
}

/* Network names become file names and parts of the nft table name. */
static bool name_ok(const char *s)
{
    size_t l = strlen(s);
    if (l == 0 || l > NETWORK_NAME_MAX || s[0] == '.')
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
            return false;
    return true;
}

static bool in_subnet(const struct network_def *d, uint32_t ip)
{
    uint32_t m = network_mask(d->prefix);
    return (ip & m) == (d->addr & m) && (ip & ~m) != 0 && (ip & ~m) != ~m;
}

static int parse_host(xnode h, struct network_def *d, struct err *e)
{
    if (d->nhosts >= NETWORK_MAX_HOSTS)
        return err_set(e, EINVAL, "<dhcp>: more than %d <host> entries", NETWORK_MAX_HOSTS);
    struct network_host *nh = realloc(d->hosts, (d->nhosts + 1) * sizeof(*nh));
    if (!nh)
        return err_set(e, ENOMEM, "out of memory");
    d->hosts = nh;
    struct network_host *host = &nh[d->nhosts];
    memset(host, 0, sizeof(*host));
    char *mac = attr(h, "mac");
    if (!mac || domain_mac_parse(mac, host->mac) < 0) {
        int r = err_set(e, EINVAL, "<host>: missing or invalid mac '%s'", mac ? mac : "");
        free(mac);
        return r;
    }
    free(mac);
    if (ip_attr(h, "ip", true, &host->ip, NULL, e) < 0)
        return -1;
    host->name = attr(h, "name");
    d->nhosts++;
    if (host->name && (!*host->name || strpbrk(host->name, ", \t\n/'\"<>&")))
        return err_set(e, EINVAL, "<host name='%s'>: not a host name", host->name);
    if (!in_subnet(d, host->ip)) {
        char b[16];
        network_ip_format(host->ip, b);
        return err_set(e, EINVAL, "<host ip='%s'>: not in the network's subnet", b);
    }
    for (size_t i = 0; i + 1 < d->nhosts; i++)
        if (!memcmp(nh[i].mac, host->mac, 6) || nh[i].ip == host->ip)
            return err_set(e, EINVAL, "<host>: two entries for the same mac or ip");
    return 0;
}

static int parse_dhcp(xnode dh, struct network_def *d, struct err *e)
{
    xnode range = child(dh, "range");
    for (xnode c = dh->children; c; c = c->next) {
        if (is_el(c, "host") && parse_host(c, d, e) < 0)
            return -1;
        if (is_el(c, "range") && c != range)
            return err_set(e, ENOTSUP, "<dhcp>: only one <range> is supported");
    }
    if (!range)
        return d->nhosts ? 0 : err_set(e, EINVAL, "<dhcp>: needs a <range> or <host>");
    if (ip_attr(range, "start", true, &d->range_start, NULL, e) < 0 ||
        ip_attr(range, "end", true, &d->range_end, NULL, e) < 0)
        return -1;
    char s[16], t[16];
    network_ip_format(d->range_start, s);
    network_ip_format(d->range_end, t);
    if (!in_subnet(d, d->range_start) || !in_subnet(d, d->range_end))
        return err_set(e, EINVAL, "DHCP range '%s' to '%s' is not entirely within the "
                       "network's subnet", s, t);
    if (d->range_start > d->range_end)
        return err_set(e, EINVAL, "DHCP range '%s' to '%s' is reversed", s, t);
    if (d->addr >= d->range_start && d->addr <= d->range_end)
        return err_set(e, EINVAL, "DHCP range '%s' to '%s' holds the network's own "
                       "address", s, t);
    d->has_dhcp = true;
    return 0;
}

static int parse_ip(xnode ip, struct network_def *d, struct err *e)
{
    char *fam = attr(ip, "family");
    bool v6 = fam && strcmp(fam, "ipv4") != 0;
    free(fam);
    if (v6)
        return err_set(e, ENOTSUP, "<ip>: only IPv4 networks are supported");
    if (ip_attr(ip, "address", true, &d->addr, NULL, e) < 0)
        return -1;
    uint32_t mask;
    bool has_mask;
    if (ip_attr(ip, "netmask", false, &mask, &has_mask, e) < 0)
        return -1;
    char *pfx = attr(ip, "prefix");
    int p = -1;
    if (has_mask) {
        p = mask_prefix(mask);
    } else if (pfx) {
        char *end;
        long v = strtol(pfx, &end, 10);
        p = *end || end == pfx ? -1 : (int)v;
    } else {
        p = 24;
    }
    free(pfx);
    if (p < 1 || p > 30)
        return err_set(e, EINVAL, "<ip>: netmask or prefix is not a usable IPv4 prefix "
                       "(1 to 30 bits)");
    d->prefix = (unsigned)p;
    d->has_ip = true;
    if (!in_subnet(d, d->addr))
        return err_set(e, EINVAL, "<ip>: address is the subnet's network or broadcast "
                       "address");
    xnode dh = child(ip, "dhcp");
    return dh ? parse_dhcp(dh, d, e) : 0;
}

static int parse_forward_bridge(xnode root, struct network_def *d, struct err *e)
{
    xnode fw = child(root, "forward");
    if (fw) {
        char *mode = attr(fw, "mode");
        if (!mode || !strcmp(mode, "nat"))
            d->forward = NETWORK_NAT;
        else if (!strcmp(mode, "bridge"))
            d->forward = NETWORK_BRIDGE;
        else {
            int r = err_set(e, ENOTSUP, "<forward mode='%s'>: cvirt supports nat, bridge or "
                            "no <forward> (isolated)", mode);
            free(mode);
            return r;
        }
        free(mode);
    }
    xnode br = child(root, "bridge");
    d->stp = true;
    if (br) {
        d->bridge = attr(br, "name");
        if (d->bridge && !ifname_ok(d->bridge))
            return err_set(e, EINVAL, "<bridge name='%s'>: not an interface name (1 to 15 "
                           "bytes)", d->bridge);
        char *stp = attr(br, "stp"), *delay = attr(br, "delay");
        d->stp = !stp || strcmp(stp, "off") != 0;
        bool bad_delay = false;
        if (delay) {
            char *end;
            long v = strtol(delay, &end, 10);
            bad_delay = *end || end == delay || v < 0 || v > 30;
            d->delay = bad_delay ? 0 : (unsigned)v;
        }
        free(stp);
        free(delay);
        if (bad_delay)
            return err_set(e, EINVAL, "<bridge>: delay must be 0 to 30 seconds");
    }
    if (d->forward == NETWORK_BRIDGE && !d->bridge)
        return err_set(e, EINVAL, "<forward mode='bridge'> needs <bridge name='...'/>");
    return 0;
}

static int parse_root(xnode root, struct network_def *d, struct err *e)
{
    xnode n = child(root, "name");
    d->name = n ? text(n) : NULL;
    if (!d->name || !*d->name)
        return err_set(e, EINVAL, "missing <name> in the network definition");
    if (!name_ok(d->name))
        return err_set(e, EINVAL, "network name '%s': use letters, digits, '-', '_' and '.'",
                       d->name);
    xnode u = child(root, "uuid");
    if (u) {
        char *s = text(u);
        int bad = !s || uuid_parse(s, d->uuid) < 0;
        int r = bad ? err_set(e, EINVAL, "<uuid>: malformed uuid '%s'", s ? s : "") : 0;
        free(s);
        if (r < 0)
            return r;
    } else if (uuid_generate(d->uuid) < 0) {
        return err_set(e, EIO, "cannot generate a uuid");
    }
    if (parse_forward_bridge(root, d, e) < 0)
        return -1;
    xnode mac = child(root, "mac");
    if (mac) {
        char *a = attr(mac, "address");
        int bad = !a || domain_mac_parse(a, d->mac) < 0;
        int r = bad ? err_set(e, EINVAL, "<mac address='%s'>: malformed", a ? a : "") : 0;
        free(a);
        if (r < 0)
            return r;
        d->has_mac = true;
    }
    xnode ip = NULL;
    for (xnode c = root->children; c; c = c->next) {
        if (!is_el(c, "ip"))
            continue;
        if (ip)
            return err_set(e, ENOTSUP, "only one <ip> per network is supported");
        ip = c;
    }
    if (ip && parse_ip(ip, d, e) < 0)
        return -1;
    if (d->forward == NETWORK_BRIDGE && (d->has_ip || d->has_mac))
        return err_set(e, EINVAL, "<forward mode='bridge'> uses an existing bridge: no <ip> "
                       "or <mac> can be given");
    if (d->forward == NETWORK_NAT && !d->has_ip)
        return err_set(e, EINVAL, "a NAT network needs an <ip address=... netmask=...>");
    if (d->forward != NETWORK_BRIDGE && !d->has_mac) {
        d->mac[0] = 0x52; d->mac[1] = 0x54; d->mac[2] = 0x00;
        uint8_t rnd[16];
        uuid_generate(rnd);
        memcpy(d->mac + 3, rnd, 3);
        d->has_mac = true;
    }
    return 0;
}

int network_def_parse(const char *xml, struct network_def **out, struct err *e)
{
    xmlDoc *doc = xmlReadMemory(xml, (int)strnlen(xml, 1 << 24), "network.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc)
        return err_set(e, EINVAL, "the network XML is not well-formed");
    xnode root = xmlDocGetRootElement(doc);
    if (!root || !is_el(root, "network")) {
        xmlFreeDoc(doc);
        return err_set(e, EINVAL, "expected a <network> root element");
    }
    struct network_def *d = calloc(1, sizeof(*d));
    int r = d ? parse_root(root, d, e) : err_set(e, ENOMEM, "out of memory");
    xmlFreeDoc(doc);
    if (r < 0) {
        network_def_free(d);
        return e->code ? -e->code : r;
    }
    *out = d;
    return 0;
}

void network_def_free(struct network_def *d)
{
    if (!d)
        return;
    free(d->name);
    free(d->bridge);
    for (size_t i = 0; i < d->nhosts; i++)
        free(d->hosts[i].name);
    free(d->hosts);
    free(d);
}

struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(struct sbuf *b, const char *fmt, ...)
{
    for (int pass = 0; pass < 2 && !b->oom; pass++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? b->cap : 256) * 2 + (size_t)n;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

static void format_ip(struct sbuf *b, const struct network_def *d)
{
    char a[16], m[16], s[16], t[16], mac[18];
    network_ip_format(d->addr, a);
    network_ip_format(network_mask(d->prefix), m);
    sb_add(b, "  <ip address='%s' netmask='%s'%s\n", a, m,
           d->has_dhcp || d->nhosts ? ">" : "/>");
    if (!d->has_dhcp && !d->nhosts)
        return;
    sb_add(b, "    <dhcp>\n");
    if (d->has_dhcp) {
        network_ip_format(d->range_start, s);
        network_ip_format(d->range_end, t);
        sb_add(b, "      <range start='%s' end='%s'/>\n", s, t);
    }
    for (size_t i = 0; i < d->nhosts; i++) {
        domain_mac_format(d->hosts[i].mac, mac);
        network_ip_format(d->hosts[i].ip, a);
        sb_add(b, "      <host mac='%s'", mac);
        if (d->hosts[i].name)
            sb_add(b, " name='%s'", d->hosts[i].name);
        sb_add(b, " ip='%s'/>\n", a);
    }
    sb_add(b, "    </dhcp>\n  </ip>\n");
}

char *network_def_format(const struct network_def *d)
{
    struct sbuf b = { 0 };
    char uuid[UUID_STRING_LEN], mac[18];
    uuid_format(d->uuid, uuid);
    /* Names are restricted to characters that need no escaping. */
    sb_add(&b, "<network>\n  <name>%s</name>\n  <uuid>%s</uuid>\n", d->name, uuid);
    if (d->forward == NETWORK_NAT)
        sb_add(&b, "  <forward mode='nat'>\n    <nat>\n      <port start='1024' "
               "end='65535'/>\n    </nat>\n  </forward>\n");
    else if (d->forward == NETWORK_BRIDGE)
        sb_add(&b, "  <forward mode='bridge'/>\n");
    if (d->forward == NETWORK_BRIDGE)
        sb_add(&b, "  <bridge name='%s'/>\n", d->bridge);
    else if (d->bridge)
        sb_add(&b, "  <bridge name='%s' stp='%s' delay='%u'/>\n", d->bridge,
               d->stp ? "on" : "off", d->delay);
    if (d->has_mac) {
        domain_mac_format(d->mac, mac);
        sb_add(&b, "  <mac address='%s'/>\n", mac);
    }
    if (d->has_ip)
        format_ip(&b, d);
    sb_add(&b, "</network>\n");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
