/* Domain configuration: libvirt's domain XML, the subset cvirt can honour,
 * parsed into structs, formatted back, and turned into a cvirt-vmm command
 * line. docs/domain-xml.md lists what is kept, dropped and refused.
 *
 * XML comes from clients (virsh, virt-install, python3-libvirt) and is
 * treated as hostile: every value is checked, and every error is one line
 * naming the element or attribute at fault. */
#ifndef CVIRT_DAEMON_DOMAIN_CONF_H
#define CVIRT_DAEMON_DOMAIN_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define DOMAIN_MAX_VCPUS  64
#define DOMAIN_MAX_DISKS  16
#define DOMAIN_MAX_NETS   8
#define DOMAIN_NAME_MAX   200
#define DOMAIN_PCI_SLOT_MIN 1     /* slot 0 of bus 0 is the host bridge */
#define DOMAIN_PCI_SLOT_MAX 31

/* on_poweroff / on_reboot / on_crash. Parsed and formatted for all three;
 * what the daemon does with each is the lifecycle's business. */
enum domain_action {
    DOMAIN_ACTION_DESTROY,
    DOMAIN_ACTION_RESTART,
    DOMAIN_ACTION_PRESERVE,
    DOMAIN_ACTION_RENAME_RESTART,
    DOMAIN_ACTION_COREDUMP_DESTROY,   /* on_crash only */
    DOMAIN_ACTION_COREDUMP_RESTART,   /* on_crash only */
};

enum domain_disk_format { DOMAIN_DISK_RAW, DOMAIN_DISK_QCOW2 };

enum domain_disk_cache {
    DOMAIN_CACHE_DEFAULT,       /* no cache= attribute */
    DOMAIN_CACHE_NONE,
    DOMAIN_CACHE_WRITEBACK,
};

/* One image of a disk's backing chain (<backingStore>), as found by the
 * daemon when it opens the chain; shown in live XML only. */
struct domain_backing {
    char *file;
    enum domain_disk_format format;
    struct domain_backing *next;   /* its own backing file, NULL at the end */
};

struct domain_disk {
    char *source_file;               /* required: the file, or the device
                                      * node of a type='block' disk */
    bool block;                      /* <disk type='block'>, <source dev=> */
    enum domain_disk_format format;  /* <driver type=>, raw when absent */
    bool format_absent;              /* no <driver type=> was given: the
                                      * daemon may learn the format from the
                                      * image once, at define time (clients
                                      * like virt-install leave it out when
                                      * they cannot read the file) */
    enum domain_disk_cache cache;
    char *target_dev;                /* "vda": unique within the domain */
    bool readonly;
    char *serial;                    /* NULL when absent */
    struct domain_backing *backing;  /* live only; NULL when unknown */
    unsigned pci_slot;               /* <address type='pci' slot=>: 1..31
                                      * on bus 0; 0 when absent (cvirt-vmm
                                      * then picks a free slot). A disk with
                                      * a slot is ejectable on the VMM side
                                      * (domain_disk_qmp_names) */
};

enum domain_net_type {
    DOMAIN_NET_NETWORK,    /* <source network='default'/> */
    DOMAIN_NET_BRIDGE,     /* <source bridge='br0'/> */
    DOMAIN_NET_ETHERNET,   /* an existing or named tap, <target dev=> */
};

struct domain_net {
    enum domain_net_type type;
    char *source;          /* network or bridge name; NULL for ethernet */
    uint8_t mac[6];        /* generated (52:54:00:...) when absent */
    char *target_dev;      /* tap name: set by the daemon while running,
                            * or given by the user for ethernet */
};

enum domain_chr_type { DOMAIN_CHR_PTY };

/* A character device cvirt-vmm can back: the COM1 serial port or the
 * virtio console (hvc0). */
struct domain_chr {
    bool present;
    enum domain_chr_type type;
    char *pty_path;        /* live only: the pty the VMM opened */
};

enum domain_balloon { DOMAIN_BALLOON_NONE, DOMAIN_BALLOON_VIRTIO };

struct domain_os {
    char *arch;            /* "x86_64" or NULL (absent) */
    char *machine;         /* kept as given; cvirt has one machine */
    char *kernel;          /* NULL: definable but not startable */
    char *initrd;
    char *cmdline;
};

struct domain_def {
    int id;                         /* -1 when not running */
    char *name;
    uint8_t uuid[16];
    char *title;
    char *description;
    char *metadata;                 /* <metadata> subtree as XML text, or NULL */

    uint64_t memory_kib;            /* <memory>: boot-time maximum */
    uint64_t current_memory_kib;    /* <currentMemory>: <= memory_kib */
    uint64_t max_memory_kib;        /* <maxMemory>: 0 when absent */
    unsigned max_memory_slots;

    unsigned vcpus;                 /* 1..DOMAIN_MAX_VCPUS */

    struct domain_os os;
    bool acpi, apic, pae;           /* <features> */

    enum domain_action on_poweroff, on_reboot, on_crash;

    struct domain_disk *disks;      /* in XML order */
    size_t ndisks;
    struct domain_net *nets;
    size_t nnets;

    struct domain_chr serial;       /* <serial type='pty'>, COM1 */
    struct domain_chr vconsole;     /* <console><target type='virtio'/> */
    bool rng;                       /* <rng model='virtio'> */
    enum domain_balloon balloon;
};

/* Parse flags. */
#define DOMAIN_PARSE_INACTIVE  (1u << 0)   /* drop live-only data (id, ptys,
                                            * tap names of bridge/network
                                            * interfaces, backing chains) */

/* Format flags (virDomainXMLFlags values, so the RPC layer can pass them
 * through): live-only data is left out of an inactive definition. */
#define DOMAIN_FORMAT_SECURE   (1u << 0)
#define DOMAIN_FORMAT_INACTIVE (1u << 1)

/* Parses a <domain> document; generates the uuid and MACs when absent and
 * fills defaults (currentMemory = memory, vcpu 1, virtio models). */
int domain_def_parse(const char *xml, size_t len, unsigned flags,
                     struct domain_def **out, struct err *e);

/* The definition as libvirt-style XML (malloc'd, NUL-terminated), or NULL
 * when out of memory. */
char *domain_def_format(const struct domain_def *d, unsigned flags);

void domain_def_free(struct domain_def *d);

/* A deep copy, or NULL when out of memory. */
struct domain_def *domain_def_copy(const struct domain_def *d);

/* What the caller resolved at start time; the definition alone does not say. */
struct domain_vmm_env {
    const char *vmm_path;          /* argv[0]; "cvirt-vmm" when NULL */
    const char *control_path;      /* --control PATH, omitted when NULL */
    const char *vconsole_socket;   /* virtio console on this UNIX socket
                                    * instead of a pty, when non-NULL */
    const char *const *tap_names;  /* one per d->nets[i], in order; entries
                                    * may be NULL only when nnets is 0 */
    size_t ntap_names;
};

/* The cvirt-vmm command line for d: a NULL-terminated, malloc'd array of
 * malloc'd strings (free with domain_argv_free). Refuses definitions that
 * cannot start (no kernel, a value cvirt-vmm's option syntax cannot carry). */
int domain_def_vmm_argv(const struct domain_def *d, const struct domain_vmm_env *env,
                        char ***argv, struct err *e);
void domain_argv_free(char **argv);

/* Device fragments for attach-device / detach-device / attach-disk. */
int domain_disk_parse(const char *xml, size_t len, struct domain_disk **out,
                      struct err *e);
void domain_disk_free(struct domain_disk *disk);

/* Takes ownership of *disk (freed on success, kept by the caller on
 * error); refuses a duplicate target dev or too many disks. */
int domain_def_add_disk(struct domain_def *d, struct domain_disk *disk, struct err *e);

/* Removes the disk whose target dev or source file equals match (as virsh
 * detach-disk accepts either); -ENOENT when none does. When out is non-NULL
 * the removed disk is handed to the caller, otherwise freed. */
int domain_def_remove_disk(struct domain_def *d, const char *match,
                           struct domain_disk **out, struct err *e);

/* Interfaces, for attach-interface / detach-interface --config. */
int domain_net_parse(const char *xml, size_t len, struct domain_net **out,
                     struct err *e);
void domain_net_free(struct domain_net *net);
/* Takes ownership of *net on success; refuses a MAC already in use. */
int domain_def_add_net(struct domain_def *d, struct domain_net *net, struct err *e);
/* Removes the interface with this MAC (what virsh detach-interface --mac
 * and detach-device match on); -ENOENT when none has it. */
int domain_def_remove_net(struct domain_def *d, const uint8_t mac[6],
                          struct domain_net **out, struct err *e);

/* "disk" or "interface" for a device fragment of a kind cvirt can attach,
 * NULL for anything else (including XML that does not parse), so the
 * caller can dispatch attach-device. */
const char *domain_device_kind(const char *xml, size_t len);

/* The QMP names of a disk's drive node ("drive-vdb") and device
 * ("virtio-disk-vdb"), as the hot-plug code gives them and as the VMM is
 * told on --disk for a disk with a PCI slot, so that a restored or migrated
 * VM rebuilds the same ejectable disk. -EINVAL for a target that cannot
 * name one (not 1..16 lowercase letters and digits). */
#define DOMAIN_DISK_NODE_PREFIX "drive-"
#define DOMAIN_DISK_DEV_PREFIX  "virtio-disk-"
int domain_disk_qmp_names(const char *target, char *node, char *dev, size_t len);

/* Lookups; NULL when absent. */
const struct domain_disk *domain_def_find_disk(const struct domain_def *d,
                                               const char *match);

/* Name rules as libvirt's: non-empty, no '/', at most DOMAIN_NAME_MAX bytes,
 * no control characters. */
int domain_name_check(const char *name, struct err *e);

/* MAC addresses: "52:54:00:xx:xx:xx" generated as QEMU and libvirt do. */
void domain_mac_generate(uint8_t mac[6]);
int domain_mac_parse(const char *s, uint8_t mac[6]);          /* 0 or -EINVAL */
void domain_mac_format(const uint8_t mac[6], char buf[18]);

/* Memory sizes: value with a libvirt unit (b, bytes, KB, k, KiB, MB, M,
 * MiB, GB, G, GiB, TB, T, TiB, ...; default KiB) to KiB, rounded up. */
int domain_memory_parse(const char *value, const char *unit, uint64_t *kib);

#endif
