/* cvirt-img subcommands and the helpers they share. */
#ifndef CVIRT_TOOLS_IMG_CMDS_H
#define CVIRT_TOOLS_IMG_CMDS_H

#include <stdbool.h>
#include <stdint.h>

#include "img/blk.h"

int img_cmd_create(int argc, char **argv);
int img_cmd_info(int argc, char **argv);
int img_cmd_check(int argc, char **argv);
int img_cmd_convert(int argc, char **argv);
int img_cmd_resize(int argc, char **argv);
int img_cmd_map(int argc, char **argv);
int img_cmd_compare(int argc, char **argv);
int img_cmd_snapshot(int argc, char **argv);
int img_cmd_commit(int argc, char **argv);
int img_cmd_rebase(int argc, char **argv);
int img_cmd_amend(int argc, char **argv);
int img_cmd_measure(int argc, char **argv);
int img_cmd_bench(int argc, char **argv);

/* Prints "cvirt-img: msg" to stderr and returns status. */
int img_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int img_fail_err(int status, const struct err *e);

/* Parses "-o key=val,key=val" into create options; qcow2-only keys are
 * refused for other formats by the driver. */
int img_parse_create_opts(const char *s, struct blk_create_opts *o, struct err *e);
const char *img_prealloc_name(enum blk_prealloc p);

/* Opens an image the way every verb does (explicit format or probe). */
int img_open(struct blk **b, const char *path, const char *fmt, unsigned flags,
             struct err *e);

void img_print_snapshots(const struct blk_snapshot_info *sn, int n);

/* JSON output in qemu-img's layout: 4-space indentation. */
void img_json_str(const char *s);

#endif
