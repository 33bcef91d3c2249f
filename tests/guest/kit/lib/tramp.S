/*
 * Real-mode start-up code for application processors. It is linked into the
 * image but runs from a copy at KIT_TRAMP_BASE (a SIPI can only start a CPU
 * below 1 MiB), so memory operands are computed against that base.
 */
#define KIT_TRAMP_BASE 0x8000
#define TRAMP(sym) (KIT_TRAMP_BASE + (sym) - kit_tramp_start)

    .section .text
    .code16
    .globl kit_tramp_start, kit_tramp_end
kit_tramp_start:
    cli
    cld
    xorw %ax, %ax
    movw %ax, %ds
    lgdtl TRAMP(tramp_gdtr)
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x08, $kit_ap_entry32
    .balign 4
tramp_gdtr:
    .word 23
    .long kit_gdt
kit_tramp_end:
    .code32
