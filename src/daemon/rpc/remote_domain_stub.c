/* Domain procedures until the domain code (remote_domain.c) provides them:
 * no domains at all, so lists are empty and every other domain procedure is
 * "not supported", the error that makes libvirt clients fall back or skip
 * a line rather than fail. */
#include "daemon/daemon.h"
#include "dispatch.h"

int remote_domain_init(struct daemon *d, struct err *e)
{
    (void)d; (void)e;
    return 0;
}

void remote_domain_fini(struct daemon *d)
{
    (void)d;
}

static int h_list_all(struct rpc_client *c, const void *args, void *ret, struct rpc_error *err)
{
    remote_connect_list_all_domains_ret *r = ret;
    (void)c; (void)args; (void)err;
    r->domains.domains_len = 0;
    r->ret = 0;
    return 0;
}

static int h_zero(struct rpc_client *c, const void *args, void *ret, struct rpc_error *err)
{
    (void)c; (void)args; (void)err;
    *(int *)ret = 0;    /* remote_connect_num_of_*_ret: one int */
    return 0;
}

static int h_empty(struct rpc_client *c, const void *args, void *ret, struct rpc_error *err)
{
    (void)c; (void)args; (void)ret; (void)err;
    return 0;           /* zeroed ret: an empty list */
}

/* The stub's table line for a procedure it does not implement. */
#define NOSUP(num, api, args, ret, fl)                                        \
    RPC_PROC(num, api, args, ret, h_nosup_##num, fl)
#define NOSUP_FN(num, api)                                                    \
    static int h_nosup_##num(struct rpc_client *c, const void *a, void *r,   \
                             struct rpc_error *err)                             \
    {                                                                         \
        (void)c; (void)a; (void)r;                                            \
        return rpc_err_set(err, VIR_ERR_NO_SUPPORT, VIR_FROM_DOMAIN, "%s", api); \
    }

#define DOMAIN_STUBS(X) \
    X(9, "virDomainCreate", domain_create_args, void, 0) \
    X(10, "virDomainCreateXML", domain_create_xml_args, domain_create_xml_ret, 0) \
    X(11, "virDomainDefineXML", domain_define_xml_args, domain_define_xml_ret, 0) \
    X(12, "virDomainDestroy", domain_destroy_args, void, 0) \
    X(14, "virDomainGetXMLDesc", domain_get_xml_desc_args, domain_get_xml_desc_ret, RPC_PROC_READONLY) \
    X(15, "virDomainGetAutostart", domain_get_autostart_args, domain_get_autostart_ret, RPC_PROC_READONLY) \
    X(16, "virDomainGetInfo", domain_get_info_args, domain_get_info_ret, RPC_PROC_READONLY) \
    X(19, "virDomainGetOSType", domain_get_os_type_args, domain_get_os_type_ret, RPC_PROC_READONLY) \
    X(22, "virDomainLookupByID", domain_lookup_by_id_args, domain_lookup_by_id_ret, RPC_PROC_READONLY) \
    X(23, "virDomainLookupByName", domain_lookup_by_name_args, domain_lookup_by_name_ret, RPC_PROC_READONLY) \
    X(24, "virDomainLookupByUUID", domain_lookup_by_uuid_args, domain_lookup_by_uuid_ret, RPC_PROC_READONLY) \
    X(27, "virDomainReboot", domain_reboot_args, void, 0) \
    X(28, "virDomainResume", domain_resume_args, void, 0) \
    X(29, "virDomainSetAutostart", domain_set_autostart_args, void, 0) \
    X(33, "virDomainShutdown", domain_shutdown_args, void, 0) \
    X(34, "virDomainSuspend", domain_suspend_args, void, 0) \
    X(35, "virDomainUndefine", domain_undefine_args, void, 0) \
    X(54, "virDomainRestore", domain_restore_args, void, 0) \
    X(55, "virDomainSave", domain_save_args, void, 0) \
    X(121, "virDomainGetSecurityLabel", domain_get_security_label_args, domain_get_security_label_ret, RPC_PROC_READONLY) \
    X(150, "virDomainIsActive", domain_is_active_args, domain_is_active_ret, RPC_PROC_READONLY) \
    X(151, "virDomainIsPersistent", domain_is_persistent_args, domain_is_persistent_ret, RPC_PROC_READONLY) \
    X(160, "virDomainAttachDeviceFlags", domain_attach_device_flags_args, void, 0) \
    X(161, "virDomainDetachDeviceFlags", domain_detach_device_flags_args, void, 0) \
    X(183, "virDomainHasManagedSaveImage", domain_has_managed_save_image_args, domain_has_managed_save_image_ret, RPC_PROC_READONLY) \
    X(185, "virDomainSnapshotCreateXML", domain_snapshot_create_xml_args, domain_snapshot_create_xml_ret, 0) \
    X(186, "virDomainSnapshotGetXMLDesc", domain_snapshot_get_xml_desc_args, domain_snapshot_get_xml_desc_ret, RPC_PROC_READONLY) \
    X(187, "virDomainSnapshotNum", domain_snapshot_num_args, domain_snapshot_num_ret, RPC_PROC_READONLY) \
    X(189, "virDomainSnapshotLookupByName", domain_snapshot_lookup_by_name_args, domain_snapshot_lookup_by_name_ret, RPC_PROC_READONLY) \
    X(190, "virDomainHasCurrentSnapshot", domain_has_current_snapshot_args, domain_has_current_snapshot_ret, RPC_PROC_READONLY) \
    X(191, "virDomainSnapshotCurrent", domain_snapshot_current_args, domain_snapshot_current_ret, RPC_PROC_READONLY) \
    X(192, "virDomainRevertToSnapshot", domain_revert_to_snapshot_args, void, 0) \
    X(193, "virDomainSnapshotDelete", domain_snapshot_delete_args, void, 0) \
    X(201, "virDomainOpenConsole", domain_open_console_args, void, 0) \
    X(204, "virDomainSetMemoryFlags", domain_set_memory_flags_args, void, 0) \
    X(212, "virDomainGetState", domain_get_state_args, domain_get_state_ret, RPC_PROC_READONLY) \
    X(231, "virDomainUndefineFlags", domain_undefine_flags_args, void, 0) \
    X(274, "virDomainListAllSnapshots", domain_list_all_snapshots_args, domain_list_all_snapshots_ret, RPC_PROC_READONLY) \
    X(426, "virDomainGetMessages", domain_get_messages_args, domain_get_messages_ret, RPC_PROC_READONLY)

#define STUB_FN(num, api, args, ret, fl) NOSUP_FN(num, api)
DOMAIN_STUBS(STUB_FN)

#define STUB_LINE(num, api, args, ret, fl) NOSUP(num, api, args, ret, fl),

const struct rpc_proc remote_domain_procs[] = {
    RPC_PROC(21, "virConnectListDefinedDomains", connect_list_defined_domains_args,
             connect_list_defined_domains_ret, h_empty, RPC_PROC_READONLY),
    RPC_PROC(25, "virConnectNumOfDefinedDomains", void, connect_num_of_defined_domains_ret,
             h_zero, RPC_PROC_READONLY),
    RPC_PROC(37, "virConnectListDomains", connect_list_domains_args,
             connect_list_domains_ret, h_empty, RPC_PROC_READONLY),
    RPC_PROC(51, "virConnectNumOfDomains", void, connect_num_of_domains_ret, h_zero,
             RPC_PROC_READONLY),
    RPC_PROC(273, "virConnectListAllDomains", connect_list_all_domains_args,
             connect_list_all_domains_ret, h_list_all, RPC_PROC_READONLY),
    DOMAIN_STUBS(STUB_LINE)
};

const size_t remote_domain_nprocs = sizeof(remote_domain_procs) / sizeof(remote_domain_procs[0]);
