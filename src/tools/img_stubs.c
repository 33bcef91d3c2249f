/* Verbs not implemented yet report so plainly. */
#include "tools/img_cmds.h"

#define STUB(fn, name) \
    int fn(int argc, char **argv) { return img_fail(1, "'%s' is not implemented yet", name); }

STUB(img_cmd_commit, "commit")
STUB(img_cmd_rebase, "rebase")
STUB(img_cmd_amend, "amend")
STUB(img_cmd_measure, "measure")
STUB(img_cmd_bench, "bench")
