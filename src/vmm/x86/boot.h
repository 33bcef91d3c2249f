/* Loading a kernel into guest memory and setting up the boot vCPU:
 * Linux bzImage (x86 boot protocol, 64-bit entry) and PVH ELF kernels
 * (XEN_ELFNOTE_PHYS32_ENTRY, hvm_start_info). */
#ifndef CVIRT_VMM_X86_BOOT_H
#define CVIRT_VMM_X86_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct vm;
struct vcpu;

#define E820_RAM      1
#define E820_RESERVED 2
#define E820_ACPI     3

struct e820_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
} __attribute__((packed));

#define BOOT_E820_MAX 16

/* The guest's memory map for a VM with mem_size bytes of RAM laid out as in
 * layout.h. Returns the number of entries. */
unsigned boot_e820(uint64_t mem_size, struct e820_entry *out, unsigned max);

enum boot_kind { BOOT_BZIMAGE, BOOT_PVH_ELF };

/* What the parsers learn about a kernel file before anything is loaded. */
struct boot_image {
    enum boot_kind kind;
    /* bzImage */
    uint16_t protocol;         /* e.g. 0x020f */
    size_t setup_size;         /* bytes of real-mode setup (incl. boot sector) */
    uint32_t init_size;        /* memory the kernel needs from its load address */
    uint32_t initrd_addr_max;
    uint32_t cmdline_size;
    /* PVH ELF */
    uint64_t pvh_entry;        /* 32-bit physical entry point */
    uint64_t load_lo, load_hi; /* physical range the segments occupy */
};

/* Recognises the file: a bzImage (boot protocol >= 2.12 with a 64-bit
 * entry) or an ELF with a PVH entry note. Every offset is checked against
 * len; a file that is neither gets an error naming what is missing. */
int boot_probe(const uint8_t *buf, size_t len, struct boot_image *img, struct err *e);

/* Reads the kernel, initrd and command line of vm->cfg into guest memory,
 * builds the ACPI tables and the boot_params or hvm_start_info. */
int boot_load(struct vm *vm, struct err *e);
/* Sets the boot vCPU's registers for the entry chosen by boot_load. */
int boot_setup_bsp(struct vm *vm, struct vcpu *bsp, struct err *e);

/* Offsets in struct boot_params (Documentation/arch/x86/zero-page.rst). */
#define BP_ACPI_RSDP_ADDR   0x070
#define BP_EXT_RAMDISK_IMG  0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES     0x1e8
#define BP_SETUP_SECTS      0x1f1
#define BP_BOOT_FLAG        0x1fe
#define BP_HEADER           0x202
#define BP_VERSION          0x206
#define BP_TYPE_OF_LOADER   0x210
#define BP_LOADFLAGS        0x211
#define BP_CODE32_START     0x214
#define BP_RAMDISK_IMAGE    0x218
#define BP_RAMDISK_SIZE     0x21c
#define BP_HEAP_END_PTR     0x224
#define BP_CMD_LINE_PTR     0x228
#define BP_INITRD_ADDR_MAX  0x22c
#define BP_XLOADFLAGS       0x236
#define BP_CMDLINE_SIZE     0x238
#define BP_INIT_SIZE        0x260
#define BP_E820_TABLE       0x2d0
#define BP_E820_MAX         128
#define BP_SIZE             0x1000

#define PVH_START_MAGIC     0x336ec578u
#define XEN_ELFNOTE_PHYS32_ENTRY 18

#endif
