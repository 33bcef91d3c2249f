/* The command table: names, options, help texts and handlers, in the
 * order `help` lists them. Options keep virsh's names, types and order,
 * because the order decides which option a bare word fills. */
#include "client/cvirsh_cmds.h"

#define END { NULL, 0, 0, NULL }
#define DOMAIN_OPT { "domain", CVIRSH_OT_DATA, CVIRSH_OPT_REQ, "domain name, id or uuid" }
#define B(n, h) { n, CVIRSH_OT_BOOL, 0, h }
#define S(n, h) { n, CVIRSH_OT_STRING, 0, h }
#define AFFECT_OPTS \
    B("config", "affect next boot"), \
    B("live", "affect running domain"), \
    B("current", "affect current domain")

static const struct cvirsh_opt opts_none[] = { END };
static const struct cvirsh_opt opts_domain[] = { DOMAIN_OPT, END };
static const struct cvirsh_opt opts_help[] = {
    S("command", "Prints global help, command specific help, or help for a group of related commands"),
    END,
};
static const struct cvirsh_opt opts_version[] = {
    B("daemon", "report daemon version too"), END,
};
static const struct cvirsh_opt opts_list[] = {
    B("inactive", "list inactive domains"),
    B("all", "list inactive & active domains"),
    B("transient", "list transient domains"),
    B("persistent", "list persistent domains"),
    B("with-snapshot", "list domains with existing snapshot"),
    B("without-snapshot", "list domains without a snapshot"),
    B("with-checkpoint", "list domains with existing checkpoint"),
    B("without-checkpoint", "list domains without a checkpoint"),
    B("state-running", "list domains in running state"),
    B("state-paused", "list domains in paused state"),
    B("state-shutoff", "list domains in shutoff state"),
    B("state-other", "list domains in other states"),
    B("autostart", "list domains with autostart enabled"),
    B("no-autostart", "list domains with autostart disabled"),
    B("with-managed-save", "list domains with managed save state"),
    B("without-managed-save", "list domains without managed save"),
    B("uuid", "list uuid's only"),
    B("name", "list domain names only"),
    B("id", "list domain IDs only"),
    B("table", "list table (default)"),
    B("managed-save", "mark inactive domains with managed save state"),
    END,
};
static const struct cvirsh_opt opts_domname[] = {
    { "domain", CVIRSH_OT_DATA, CVIRSH_OPT_REQ, "domain id or uuid" }, END,
};
static const struct cvirsh_opt opts_domstate[] = {
    DOMAIN_OPT, B("reason", "also print reason for the state"), END,
};
static const struct cvirsh_opt opts_dumpxml[] = {
    DOMAIN_OPT,
    B("inactive", "show inactive defined XML"),
    B("security-info", "include security sensitive information in XML dump"),
    END,
};
static const struct cvirsh_opt opts_start[] = {
    { "domain", CVIRSH_OT_DATA, CVIRSH_OPT_REQ, "name of the inactive domain" }, END,
};
static const struct cvirsh_opt opts_save[] = {
    DOMAIN_OPT,
    { "file", CVIRSH_OT_DATA, CVIRSH_OPT_REQ, "where to save the data" },
    END,
};
static const struct cvirsh_opt opts_restore[] = {
    { "file", CVIRSH_OT_DATA, CVIRSH_OPT_REQ, "the state to restore" }, END,
};
static const struct cvirsh_opt opts_autostart[] = {
    DOMAIN_OPT, B("disable", "disable autostarting"), END,
};
static const struct cvirsh_opt opts_define[] = {
    { "file", CVIRSH_OT_DATA, CVIRSH_OPT_REQ, "file containing an XML domain description" },
    END,
};
static const struct cvirsh_opt opts_setmem[] = {
    DOMAIN_OPT,
    { "size", CVIRSH_OT_INT, CVIRSH_OPT_REQ, "new memory size, as scaled integer (default KiB)" },
    AFFECT_OPTS,
    END,
};
static const struct cvirsh_opt opts_setmaxmem[] = {
    DOMAIN_OPT,
    { "size", CVIRSH_OT_INT, CVIRSH_OPT_REQ, "new maximum memory size, as scaled integer (default KiB)" },
    AFFECT_OPTS,
    END,
};
static const struct cvirsh_opt opts_migrate[] = {
    B("live", "live migration"),
    B("offline", "offline migration"),
    B("p2p", "peer-2-peer migration"),
    B("tunnelled", "tunnelled migration"),
    B("persistent", "persist VM on destination"),
    B("undefinesource", "undefine VM on source"),
    B("suspend", "do not restart the domain on the destination host"),
    B("copy-storage-all", "migration with non-shared storage with full disk copy"),
    B("copy-storage-inc", "migration with non-shared storage with incremental copy (same base image shared between source and destination)"),
    B("postcopy", "enable post-copy migration; switch to it using migrate-postcopy command"),
    DOMAIN_OPT,
    { "desturi", CVIRSH_OT_DATA, CVIRSH_OPT_REQ,
      "connection URI of the destination host as seen from the client(normal migration) or source(p2p migration)" },
    S("migrateuri", "migration URI, usually can be omitted"),
    S("listen-address", "listen address that destination should bind to for incoming migration"),
    END,
};
static const struct cvirsh_opt opts_attach_disk[] = {
    DOMAIN_OPT,
    { "source", CVIRSH_OT_DATA, CVIRSH_OPT_REQ, "source of disk device or name of network disk" },
    { "target", CVIRSH_OT_DATA, CVIRSH_OPT_REQ, "target of disk device" },
    S("targetbus", "target bus of disk device"),
    S("driver", "driver of disk device"),
    S("subdriver", "subdriver of disk device"),
    S("cache", "cache mode of disk device"),
    S("type", "target device type"),
    S("mode", "mode of device reading and writing"),
    S("sourcetype", "type of source (block|file|network)"),
    S("serial", "serial of disk device"),
    B("print-xml", "print XML document rather than attach the disk"),
    B("persistent", "make live change persistent"),
    AFFECT_OPTS,
    END,
};
static const struct cvirsh_opt opts_detach_disk[] = {
    DOMAIN_OPT,
    { "target", CVIRSH_OT_DATA, CVIRSH_OPT_REQ, "target of disk device" },
    B("persistent", "make live change persistent"),
    AFFECT_OPTS,
    B("print-xml", "print XML document rather than detach the disk"),
    END,
};
static const struct cvirsh_opt opts_console[] = {
    DOMAIN_OPT,
    S("devname", "character device name"),
    B("force", "force console connection (disconnect already connected sessions)"),
    B("safe", "only connect if safe console handling is supported"),
    END,
};
static const struct cvirsh_opt opts_snap_create_as[] = {
    DOMAIN_OPT,
    S("name", "name of snapshot"),
    S("description", "description of snapshot"),
    B("print-xml", "print XML document rather than create"),
    END,
};
static const struct cvirsh_opt opts_snap_list[] = {
    DOMAIN_OPT, B("name", "list snapshot names only"), END,
};
static const struct cvirsh_opt opts_snap_revert[] = {
    DOMAIN_OPT,
    S("snapshotname", "snapshot name"),
    B("current", "revert to current snapshot"),
    B("running", "after reverting, change state to running"),
    B("paused", "after reverting, change state to paused"),
    END,
};
static const struct cvirsh_opt opts_snap_delete[] = {
    DOMAIN_OPT,
    S("snapshotname", "snapshot name"),
    B("current", "delete current snapshot"),
    END,
};
static const struct cvirsh_opt opts_snap_current[] = {
    DOMAIN_OPT,
    B("name", "list the name, rather than the full xml"),
    B("security-info", "include security sensitive information in XML dump"),
    END,
};

static const struct cvirsh_opt opts_event[] = {
    { "domain", CVIRSH_OT_STRING, 0, "filter by domain name, id or uuid" },
    S("event", "which event type to wait for"),
    B("all", "wait for all events instead of just one type"),
    B("loop", "loop until timeout or interrupt, rather than one-shot"),
    { "timeout", CVIRSH_OT_INT, 0, "timeout seconds" },
    B("list", "list valid event types"),
    B("timestamp", "show timestamp for each printed event"),
    END,
};

#define NC CVIRSH_CMD_NOCONNECT
const struct cvirsh_cmd_def cvirsh_commands[] = {
    /* domain management */
    { "attach-disk", cvirsh_cmd_attach_disk, opts_attach_disk, "attach disk device", "Attach new disk device.", 0 },
    { "autostart", cvirsh_cmd_autostart, opts_autostart, "autostart a domain", "Configure a domain to be automatically started at boot.", 0 },
    { "console", cvirsh_cmd_console, opts_console, "connect to the guest console", "Connect the virtual serial console for the guest", 0 },
    { "define", cvirsh_cmd_define, opts_define, "define (but don't start) a domain from an XML file", "Define a domain.", 0 },
    { "destroy", cvirsh_cmd_destroy, opts_domain, "destroy (stop) a domain", "Forcefully stop a given domain, but leave its resources intact.", 0 },
    { "detach-disk", cvirsh_cmd_detach_disk, opts_detach_disk, "detach disk device", "Detach disk device.", 0 },
    { "dumpxml", cvirsh_cmd_dumpxml, opts_dumpxml, "domain information in XML", "Output the domain information as an XML dump to stdout.", 0 },
    { "migrate", cvirsh_cmd_migrate, opts_migrate, "migrate domain to another host", "Migrate domain to another host.  Add --live for live migration.", 0 },
    { "reboot", cvirsh_cmd_reboot, opts_domain, "reboot a domain", "Run a reboot command in the target domain.", 0 },
    { "restore", cvirsh_cmd_restore, opts_restore, "restore a domain from a saved state in a file", "Restore a domain.", 0 },
    { "resume", cvirsh_cmd_resume, opts_domain, "resume a domain", "Resume a previously suspended domain.", 0 },
    { "save", cvirsh_cmd_save, opts_save, "save a domain state to a file", "Save the RAM state of a running domain.", 0 },
    { "setmaxmem", cvirsh_cmd_setmaxmem, opts_setmaxmem, "change maximum memory limit", "Change the maximum memory allocation limit in the guest domain.", 0 },
    { "setmem", cvirsh_cmd_setmem, opts_setmem, "change memory allocation", "Change the current memory allocation in the guest domain.", 0 },
    { "shutdown", cvirsh_cmd_shutdown, opts_domain, "gracefully shutdown a domain", "Run shutdown in the target domain.", 0 },
    { "start", cvirsh_cmd_start, opts_start, "start a (previously defined) inactive domain", "Start a domain, either from the last managedsave\n    state, or via a fresh boot if no managedsave state\n    is present.", 0 },
    { "suspend", cvirsh_cmd_suspend, opts_domain, "suspend a domain", "Suspend a running domain.", 0 },
    { "undefine", cvirsh_cmd_undefine, opts_domain, "undefine a domain", "Undefine an inactive domain, or convert persistent to transient.", 0 },
    /* domain monitoring */
    { "domid", cvirsh_cmd_domid, opts_domain, "convert a domain name or UUID to domain id", NULL, 0 },
    { "dominfo", cvirsh_cmd_dominfo, opts_domain, "domain information", "Returns basic information about the domain.", 0 },
    { "domname", cvirsh_cmd_domname, opts_domname, "convert a domain id or UUID to domain name", NULL, 0 },
    { "domstate", cvirsh_cmd_domstate, opts_domstate, "domain state", "Returns state about a domain.", 0 },
    { "event", cvirsh_cmd_event, opts_event, "Domain Events", "List event types, or wait for domain events to occur", 0 },
    { "domuuid", cvirsh_cmd_domuuid, opts_domain, "convert a domain name or id to domain UUID", NULL, 0 },
    { "list", cvirsh_cmd_list, opts_list, "list domains", "Returns list of domains.", 0 },
    /* host and hypervisor */
    { "capabilities", cvirsh_cmd_capabilities, opts_none, "capabilities", "Returns capabilities of hypervisor/driver.", 0 },
    { "hostname", cvirsh_cmd_hostname, opts_none, "print the hypervisor hostname", NULL, 0 },
    { "nodeinfo", cvirsh_cmd_nodeinfo, opts_none, "node information", "Returns basic information about the node.", 0 },
    { "uri", cvirsh_cmd_uri, opts_none, "print the hypervisor canonical URI", NULL, 0 },
    { "version", cvirsh_cmd_version, opts_version, "show version", "Display the system version information.", 0 },
    /* snapshots */
    { "snapshot-create-as", cvirsh_cmd_snapshot_create_as, opts_snap_create_as, "Create a snapshot from a set of args", "Create a snapshot (disk and RAM) from arguments", 0 },
    { "snapshot-current", cvirsh_cmd_snapshot_current, opts_snap_current, "Get or set the current snapshot", "Get or set the current snapshot", 0 },
    { "snapshot-delete", cvirsh_cmd_snapshot_delete, opts_snap_delete, "Delete a domain snapshot", "Snapshot Delete", 0 },
    { "snapshot-list", cvirsh_cmd_snapshot_list, opts_snap_list, "List snapshots for a domain", "Snapshot List", 0 },
    { "snapshot-revert", cvirsh_cmd_snapshot_revert, opts_snap_revert, "Revert a domain to a snapshot", "Revert domain to snapshot", 0 },
    /* the shell itself */
    { "exit", cvirsh_cmd_quit, opts_none, "quit this interactive terminal", NULL, NC },
    { "help", cvirsh_cmd_help, opts_help, "print help", "Prints global help, command specific help, or help for a\n    group of related commands", NC },
    { "quit", cvirsh_cmd_quit, opts_none, "quit this interactive terminal", NULL, NC },
    { NULL, NULL, NULL, NULL, NULL, 0 },
};

static const char *const g_domain[] = {
    "attach-disk", "autostart", "console", "define", "destroy", "detach-disk",
    "domid", "domname", "domuuid", "dumpxml", "migrate", "reboot", "restore",
    "resume", "save", "setmaxmem", "setmem", "shutdown", "start", "suspend",
    "undefine", NULL,
};
static const char *const g_monitor[] = { "dominfo", "domstate", "list", NULL };
static const char *const g_events[] = { "event", NULL };
static const char *const g_host[] = {
    "capabilities", "hostname", "nodeinfo", "uri", "version", NULL,
};
static const char *const g_snapshot[] = {
    "snapshot-create-as", "snapshot-current", "snapshot-delete", "snapshot-list",
    "snapshot-revert", NULL,
};
static const char *const g_virsh[] = { "exit", "help", "quit", NULL };

const struct cvirsh_group cvirsh_groups[] = {
    { "Domain Management", "domain", g_domain },
    { "Domain Monitoring", "monitor", g_monitor },
    { "Domain Events", "events", g_events },
    { "Host and Hypervisor", "host", g_host },
    { "Snapshot", "snapshot", g_snapshot },
    { "Virsh itself", "virsh", g_virsh },
    { NULL, NULL, NULL },
};
