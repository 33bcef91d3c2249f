/* The tiny benchmark guest, PVH flavour: entered in 32-bit protected mode,
 * prints one line on COM1 and resets through a triple fault. Built with
 * -DHANG it halts forever instead (for tests that stop a running VM). */
    .code32
    .section .text
    .globl _start
_start:
    mov $msg, %esi
1:  lodsb
    test %al, %al
    jz 2f
    mov $0x3f8, %dx
    out %al, %dx
    jmp 1b
2:
#ifdef HANG
    cli
4:  hlt
    jmp 4b
#endif
    lidt idt_zero
    xor %ecx, %ecx
    div %ecx                   /* #DE with no IDT: the CPU shuts down */
3:  hlt
    jmp 3b

    .p2align 3
idt_zero: .word 0
    .long 0
msg: .asciz "TINY-GUEST-UP\r\n"

    .section .note.pvh, "a"
    .p2align 2
    .long 4, 4, 18             /* name size, desc size, XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .long _start
