/* Intel MultiProcessor Specification 1.4 tables: the floating pointer in
 * the last KiB of base memory and the configuration table it points at. */
#ifndef CVIRT_VMM_X86_MPTABLE_H
#define CVIRT_VMM_X86_MPTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* Writes the tables for ncpus CPUs into buf, which the guest sees at
 * gpa_base: the floating pointer at buf + fp_offset (16-byte aligned), the
 * configuration table at buf + 0. Returns -ENOSPC when they do not fit. */
int mptable_build(unsigned ncpus, uint8_t *buf, size_t len, uint64_t gpa_base,
                  size_t fp_offset, struct err *e);

#endif
