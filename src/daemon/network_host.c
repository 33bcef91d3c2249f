/* What a network changes on the host: bridges and taps (ioctls), the
 * nftables table of a NAT network and dnsmasq (both run as programs). */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/domain_conf.h"
#include "daemon/network.h"
#include "util/log.h"

bool network_host_link_exists(const char *ifname)
{
    return if_nametoindex(ifname) != 0;
}

static int ifreq_ioctl(unsigned long req, struct ifreq *ifr)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    int r = ioctl(s, req, ifr) < 0 ? -errno : 0;
    close(s);
    return r;
}

static void ifr_init(struct ifreq *ifr, const char *name)
{
    memset(ifr, 0, sizeof(*ifr));
    snprintf(ifr->ifr_name, IFNAMSIZ, "%s", name);
}

static int link_set_up(const char *name, bool up)
{
    struct ifreq ifr;
    ifr_init(&ifr, name);
    int r = ifreq_ioctl(SIOCGIFFLAGS, &ifr);
    if (r < 0)
        return r;
    if (up)
        ifr.ifr_flags |= IFF_UP;
    else
        ifr.ifr_flags &= ~IFF_UP;
    return ifreq_ioctl(SIOCSIFFLAGS, &ifr);
}

static int set_ipv4(const char *name, unsigned long req, uint32_t ip)
{
    struct ifreq ifr;
    ifr_init(&ifr, name);
    struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(ip);
    return ifreq_ioctl(req, &ifr);
}

/* Runs argv, waits, and puts the first line of its stderr in e on failure. */
static int run_prog(char *const argv[], struct err *e)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return err_set_errno(e, errno, "pipe");
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return err_set_errno(e, errno, "fork");
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
        }
        dup2(pfd[1], 2);
        execvp(argv[0], argv);
        dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    char msg[512];
    size_t n = 0;
    ssize_t k;
    while ((k = read(pfd[0], msg + n, sizeof(msg) - 1 - n)) > 0 && n + (size_t)k < sizeof(msg) - 1)
        n += (size_t)k;
    if (k > 0)
        n += (size_t)k;
    msg[n] = '\0';
    close(pfd[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    msg[strcspn(msg, "\n")] = '\0';
    return err_set(e, EIO, "%s failed: %s", argv[0], msg[0] ? msg : "(no message)");
}

int network_host_bridge_add(const struct network_def *def, struct err *e)
{
    const char *br = def->bridge;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return err_set_errno(e, errno, "socket");
    int r = ioctl(s, SIOCBRADDBR, br) < 0 ? -errno : 0;
    close(s);
    if (r < 0)
        return err_set(e, -r, "cannot create bridge %s: %s", br, strerror(-r));
    struct ifreq ifr;
    ifr_init(&ifr, br);
    ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    memcpy(ifr.ifr_hwaddr.sa_data, def->mac, 6);
    const char *what = "set the mac address of";
    r = ifreq_ioctl(SIOCSIFHWADDR, &ifr);
    if (r == 0 && def->has_ip) {
        what = "address";
        r = set_ipv4(br, SIOCSIFADDR, def->addr);
        if (r == 0)
            r = set_ipv4(br, SIOCSIFNETMASK, network_mask(def->prefix));
    }
    if (r == 0) {
        /* STP and the delay go through ip(8): no ioctl carries them. */
        char delay[16], *argv[] = { "ip", "link", "set", "dev", (char *)br, "type", "bridge",
                                    "stp_state", def->stp ? "1" : "0", "forward_delay",
                                    delay, NULL };
        snprintf(delay, sizeof(delay), "%u", def->delay * 100);
        struct err ie = { 0 };
        if (run_prog(argv, &ie) < 0)
            log_warn("bridge %s: stp/delay not set: %s", br, ie.msg);
        what = "bring up";
        r = link_set_up(br, true);
    }
    if (r < 0) {
        network_host_bridge_del(br);
        return err_set(e, -r, "cannot %s bridge %s: %s", what, br, strerror(-r));
    }
    return 0;
}

void network_host_bridge_del(const char *bridge)
{
    link_set_up(bridge, false);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return;
    if (ioctl(s, SIOCBRDELBR, bridge) < 0 && errno != ENXIO)
        log_warn("cannot remove bridge %s: %s", bridge, strerror(errno));
    close(s);
}

static int tun_open(const char *name, char out[16], bool persist, struct err *e)
{
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return err_set_errno(e, errno, "cannot open /dev/net/tun");
    struct ifreq ifr;
    ifr_init(&ifr, name);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    int r = 0;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0)
        r = err_set_errno(e, errno, "cannot create tap %s", name);
    else if (ioctl(fd, TUNSETPERSIST, persist ? 1 : 0) < 0)
        r = err_set_errno(e, errno, "cannot make tap %s persistent", ifr.ifr_name);
    if (r == 0 && out)
        snprintf(out, 16, "%s", ifr.ifr_name);
    close(fd);
    return r;
}

int network_host_tap_add(const char *name, const char *bridge, char out[16], struct err *e)
{
    if (tun_open(name, out, true, e) < 0)
        return -e->code;
    struct ifreq ifr;
    ifr_init(&ifr, bridge);
    ifr.ifr_ifindex = (int)if_nametoindex(out);
    const char *what = "add";
    int r = ifr.ifr_ifindex ? ifreq_ioctl(SIOCBRADDIF, &ifr) : -ENODEV;
    if (r == 0) {
        what = "bring up";
        r = link_set_up(out, true);
    }
    if (r < 0) {
        network_host_tap_del(out);
        return err_set(e, -r, "cannot %s tap %s on bridge %s: %s", what, out, bridge,
                       strerror(-r));
    }
    return 0;
}

void network_host_tap_del(const char *name)
{
    struct err e = { 0 };
    if (!network_host_link_exists(name))
        return;
    if (tun_open(name, NULL, false, &e) < 0)
        log_warn("%s", e.msg);
}

/* The nft table name: network names may hold '-' and '.', nft's bare
 * words may not. */
static void table_name(const char *net, char *buf, size_t len)
{
    int n = snprintf(buf, len, "cvirt_%s", net);
    for (int i = 0; i < n && (size_t)i < len; i++)
        if (buf[i] == '-' || buf[i] == '.')
            buf[i] = '_';
}

static int write_file(const char *path, const char *data, struct err *e)
{
    FILE *f = fopen(path, "we");
    if (!f)
        return err_set_errno(e, errno, "cannot write %s", path);
    int bad = fputs(data, f) < 0;
    bad |= fclose(f) != 0;
    return bad ? err_set(e, EIO, "cannot write %s", path) : 0;
}

int network_host_nat_add(const struct network_driver *drv, const struct network_def *def,
                         struct err *e)
{
    char table[NETWORK_NAME_MAX + 8], net[16], path[4096], rules[2048];
    table_name(def->name, table, sizeof(table));
    network_ip_format(def->addr & network_mask(def->prefix), net);
    if (write_file("/proc/sys/net/ipv4/ip_forward", "1\n", e) < 0)
        return -e->code;
    /* Re-creating from scratch: a table left by a crash goes first. */
    network_host_nat_del(def);
    snprintf(rules, sizeof(rules),
             "table ip %s {\n"
             "  chain forward {\n"
             "    type filter hook forward priority 0; policy accept;\n"
             "    iifname \"%s\" ip saddr %s/%u accept\n"
             "    oifname \"%s\" ip daddr %s/%u ct state related,established accept\n"
             "    oifname \"%s\" reject\n"
             "    iifname \"%s\" reject\n"
             "  }\n"
             "  chain postrouting {\n"
             "    type nat hook postrouting priority 100; policy accept;\n"
             "    ip saddr %s/%u ip daddr != %s/%u masquerade\n"
             "  }\n"
             "}\n",
             table, def->bridge, net, def->prefix, def->bridge, net, def->prefix,
             def->bridge, def->bridge, net, def->prefix, net, def->prefix);
    snprintf(path, sizeof(path), "%s/%s.nft", drv->run_dir, def->name);
    if (write_file(path, rules, e) < 0)
        return -e->code;
    char *argv[] = { "nft", "-f", path, NULL };
    return run_prog(argv, e);
}

void network_host_nat_del(const struct network_def *def)
{
    char table[NETWORK_NAME_MAX + 8];
    table_name(def->name, table, sizeof(table));
    char *list[] = { "nft", "list", "table", "ip", table, NULL };
    char *del[] = { "nft", "delete", "table", "ip", table, NULL };
    struct err e = { 0 };
    if (run_prog(list, &e) == 0 && run_prog(del, &e) < 0)
        log_warn("network '%s': %s", def->name, e.msg);
}

static void run_path(const struct network_driver *drv, const char *name, const char *ext,
                     char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s.%s", drv->run_dir, name, ext);
}

static int dnsmasq_conf(const struct network_driver *drv, const struct network_def *def,
                        const char *conf, struct err *e)
{
    char pid[4096], leases[4096], a[16], b[16], m[16], mac[18];
    run_path(drv, def->name, "pid", pid, sizeof(pid));
    snprintf(leases, sizeof(leases), "%s/%s.leases", drv->state_dir, def->name);
    size_t cap = 1024 + 3 * 4096 + def->nhosts * 128;
    char *s = malloc(cap);
    if (!s)
        return err_set(e, ENOMEM, "out of memory");
    int n = snprintf(s, cap,
                     "# generated by cvirtd for network %s; changes are overwritten\n"
                     "strict-order\npid-file=%s\nexcept-interface=lo\nbind-dynamic\n"
                     "interface=%s\nuser=root\ndhcp-leasefile=%s\n",
                     def->name, pid, def->bridge, leases);
    if (def->has_dhcp) {
        network_ip_format(def->range_start, a);
        network_ip_format(def->range_end, b);
        network_ip_format(network_mask(def->prefix), m);
        n += snprintf(s + n, cap - (size_t)n,
                      "dhcp-range=%s,%s,%s\ndhcp-no-override\ndhcp-authoritative\n"
                      "dhcp-lease-max=%u\n", a, b, m, def->range_end - def->range_start + 1);
    } else if (def->nhosts) {
        network_ip_format(def->addr & network_mask(def->prefix), a);
        n += snprintf(s + n, cap - (size_t)n, "dhcp-range=%s,static\n", a);
    }
    for (size_t i = 0; i < def->nhosts; i++) {
        domain_mac_format(def->hosts[i].mac, mac);
        network_ip_format(def->hosts[i].ip, a);
        n += snprintf(s + n, cap - (size_t)n, "dhcp-host=%s,%s%s%s\n", mac, a,
                      def->hosts[i].name ? "," : "",
                      def->hosts[i].name ? def->hosts[i].name : "");
    }
    int r = write_file(conf, s, e);
    free(s);
    return r;
}

/* A live dnsmasq: an exited one may linger as a zombie when whatever
 * adopted it does not reap. */
static bool is_dnsmasq(pid_t pid)
{
    char path[64], stat[256] = "";
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    bool ok = fgets(stat, sizeof(stat), f) != NULL;
    fclose(f);
    char *close_paren = strrchr(stat, ')');
    return ok && strstr(stat, "(dnsmasq)") && close_paren && close_paren[1] == ' ' &&
           close_paren[2] != 'Z' && close_paren[2] != 'X';
}

pid_t network_host_dnsmasq_pid(const struct network_driver *drv, const char *name)
{
    char path[4096];
    run_path(drv, name, "pid", path, sizeof(path));
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    long pid = 0;
    if (fscanf(f, "%ld", &pid) != 1 || pid <= 1 || pid > 1 << 22)
        pid = 0;
    fclose(f);
    return pid && is_dnsmasq((pid_t)pid) ? (pid_t)pid : 0;
}

int network_host_dnsmasq_start(const struct network_driver *drv,
                               const struct network_def *def, pid_t *pid, struct err *e)
{
    char conf[4096], pidf[4096], arg[4200];
    run_path(drv, def->name, "conf", conf, sizeof(conf));
    run_path(drv, def->name, "pid", pidf, sizeof(pidf));
    unlink(pidf);
    if (dnsmasq_conf(drv, def, conf, e) < 0)
        return -e->code;
    snprintf(arg, sizeof(arg), "--conf-file=%s", conf);
    /* dnsmasq forks into the background and its first process exits once
     * the pid file is written and the sockets are bound. */
    char *argv[] = { "dnsmasq", arg, NULL };
    if (run_prog(argv, e) < 0)
        return -e->code;
    *pid = network_host_dnsmasq_pid(drv, def->name);
    if (!*pid)
        return err_set(e, EIO, "dnsmasq for network '%s' did not stay up", def->name);
    return 0;
}

void network_host_dnsmasq_stop(const struct network_driver *drv,
                               const struct network_def *def, pid_t pid)
{
    char path[4096];
    if (pid > 1 && is_dnsmasq(pid)) {
        kill(pid, SIGTERM);
        /* Not our child: wait for /proc to let it go, up to 2 s. */
        for (int i = 0; i < 200 && is_dnsmasq(pid); i++)
            nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
        if (is_dnsmasq(pid))
            kill(pid, SIGKILL);
    }
    run_path(drv, def->name, "pid", path, sizeof(path));
    unlink(path);
    run_path(drv, def->name, "conf", path, sizeof(path));
    unlink(path);
}
