/*
 * PVH entry for kit programs. The loader enters kit_start in 32-bit protected
 * mode with paging off and EBX pointing at struct hvm_start_info. We load a
 * GDT of our own because the loader's one may live in memory we overwrite.
 */
#define PVH_NOTE_PHYS32_ENTRY 18
#define KIT_AP_STACKS 16

    .section .note.pvh, "a"
    .balign 4
    .long 4                     /* name size: "Xen\0" */
    .long 4                     /* descriptor size: a 32-bit address */
    .long PVH_NOTE_PHYS32_ENTRY
    .asciz "Xen"
    .balign 4
    .long kit_start

    .section .text.entry, "ax"
    .code32
    .globl kit_start
kit_start:
    cli
    cld
    movl %ebx, %edx
    lgdt kit_gdtr
    ljmp $0x08, $1f
1:  movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    /* After a reset the image is reloaded, but zero .bss anyway: the
     * loader is one of the things under test. */
    movl $kit_bss_start, %edi
    movl $kit_bss_end, %ecx
    subl %edi, %ecx
    shrl $2, %ecx
    xorl %eax, %eax
    rep stosl
    movl $kit_stack_top, %esp
    xorl %ebp, %ebp
    pushl %edx
    call kit_boot
2:  cli
    hlt
    jmp 2b

/* Application processors arrive here from the real-mode trampoline, already
 * in protected mode with the flat GDT. Each takes the next stack slot. */
    .globl kit_ap_entry32
kit_ap_entry32:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movl $1, %eax
    lock xaddl %eax, kit_ap_next_stack
    incl %eax
    cmpl $KIT_AP_STACKS, %eax
    ja 3f
    shll $12, %eax
    addl $kit_ap_stacks, %eax
    movl %eax, %esp
    xorl %ebp, %ebp
    call kit_ap_main
3:  cli
    hlt
    jmp 3b

/* One 16-byte stub per vector so C can compute a stub's address. Vectors
 * where the CPU pushes an error code skip the dummy push. */
    .balign 16
    .globl kit_isr_stubs
kit_isr_stubs:
    .set vec, 0
    .rept 256
    .balign 16
    .if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    .else
    pushl $0
    .endif
    pushl $vec
    jmp kit_isr_common
    .set vec, vec + 1
    .endr

kit_isr_common:
    pushal
    movl %esp, %eax
    pushl %eax
    call kit_isr_dispatch
    addl $4, %esp
    popal
    addl $8, %esp
    /* Return without IRET: KVM's instruction emulator, which interprets all
     * guest kernel code on some hosts, only implements real-mode IRET. Same
     * privilege level, so POPF + far return does the job; when IF was set,
     * STI's one-instruction shadow covers the LRET, so no interrupt can nest
     * before the return. LRET $4 also drops the saved EFLAGS. */
    btrl $9, 8(%esp)
    jc 4f
    pushl 8(%esp)
    popfl
    lret $4
4:  pushl 8(%esp)
    popfl
    sti
    lret $4

    .section .rodata
    .balign 8
    .globl kit_gdt
kit_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff    /* 0x08: flat 32-bit code */
    .quad 0x00cf92000000ffff    /* 0x10: flat 32-bit data */
kit_gdt_end:
    .globl kit_gdtr
    .balign 4
    .word 0
kit_gdtr:
    .word kit_gdt_end - kit_gdt - 1
    .long kit_gdt

    .section .bss
    .balign 4096
    .globl kit_stack_top
kit_stack:
    .skip 16384
kit_stack_top:
    .globl kit_ap_stacks
kit_ap_stacks:
    .skip 4096 * KIT_AP_STACKS
    .globl kit_ap_next_stack
    .balign 4
kit_ap_next_stack:
    .skip 4
