/* The command handlers the table in cvirsh_cmds.c lists. */
#ifndef CVIRT_CLIENT_CVIRSH_CMDS_H
#define CVIRT_CLIENT_CVIRSH_CMDS_H

#include "client/cvirsh.h"

#define CVIRSH_HANDLER(n) bool cvirsh_cmd_##n(struct cvirsh *ctl, const struct cvirsh_cmd *cmd)

/* cvirsh.c */
CVIRSH_HANDLER(help);
CVIRSH_HANDLER(quit);
CVIRSH_HANDLER(uri);
/* cvirsh_host.c */
CVIRSH_HANDLER(version);
CVIRSH_HANDLER(nodeinfo);
CVIRSH_HANDLER(hostname);
CVIRSH_HANDLER(capabilities);
/* cvirsh_dom.c */
CVIRSH_HANDLER(list);
CVIRSH_HANDLER(dominfo);
CVIRSH_HANDLER(domstate);
CVIRSH_HANDLER(domid);
CVIRSH_HANDLER(domuuid);
CVIRSH_HANDLER(domname);
CVIRSH_HANDLER(dumpxml);
/* cvirsh_domctl.c */
CVIRSH_HANDLER(start);
CVIRSH_HANDLER(shutdown);
CVIRSH_HANDLER(destroy);
CVIRSH_HANDLER(reboot);
CVIRSH_HANDLER(suspend);
CVIRSH_HANDLER(resume);
CVIRSH_HANDLER(save);
CVIRSH_HANDLER(restore);
CVIRSH_HANDLER(autostart);
CVIRSH_HANDLER(define);
CVIRSH_HANDLER(undefine);
CVIRSH_HANDLER(setmem);
CVIRSH_HANDLER(setmaxmem);
CVIRSH_HANDLER(migrate);
/* cvirsh_disk.c */
CVIRSH_HANDLER(attach_disk);
CVIRSH_HANDLER(detach_disk);
/* cvirsh_console.c */
CVIRSH_HANDLER(console);
/* cvirsh_event.c */
CVIRSH_HANDLER(event);
/* cvirsh_snap.c */
CVIRSH_HANDLER(snapshot_create_as);
CVIRSH_HANDLER(snapshot_list);
CVIRSH_HANDLER(snapshot_revert);
CVIRSH_HANDLER(snapshot_delete);
CVIRSH_HANDLER(snapshot_current);

#endif
