/* Helpers shared by cvirt-install and cvirt-clone. */
#ifndef CVIRT_CLIENT_TOOL_H
#define CVIRT_CLIENT_TOOL_H

#include <stdbool.h>
#include <stdio.h>

#include "util/err.h"

struct tool_kv {
    const char *key;
    const char *val;    /* "" for a key without '=' */
};

/* Splits "a,k=v,k2=v2" into pairs; a first item without '=' gets
 * first_key ("path" for --disk). The strings live until the program
 * exits. Returns the count or a negative errno. */
int tool_split_kv(const char *arg, struct tool_kv *kv, int max, const char *first_key,
                  struct err *e);

/* XML output with what must be escaped escaped: an attribute value in
 * single quotes (quotes included), and element text. */
void tool_xml_attr(FILE *f, const char *v);
void tool_xml_text(FILE *f, const char *v);

/* True when the file starts with the qcow2 magic. */
bool tool_probe_qcow2(const char *path);

/* Defines the domain from xml, marks it autostarted when asked, starts it
 * and, with console, attaches the terminal to its console. Prints
 * virt-install's progress lines. */
int tool_define_and_start(const char *uri, const char *xml, bool autostart,
                          bool console, struct err *e);

void tool_usage_install(FILE *f);

#endif
