/* The same work as pvh.S for a machine that starts at the reset vector in
 * real mode (QEMU microvm with -bios): a 64 KiB flat image whose last 16
 * bytes hold the first instruction. It switches to 32-bit protected mode
 * first, so the fault that ends it is delivered the same way as in pvh.S
 * (KVM's emulator here cannot deliver real-mode exceptions). The image is
 * seen at 0xf0000 through the BIOS alias below 1 MiB. */
#define BASE 0xf0000
    .code16
    .section .text
    .globl _start
_start:
    cli
    lgdtl %cs:gdt_desc
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl $0x08, $(BASE + pm32)

    .code32
pm32:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %ss
    mov $(BASE + msg), %esi
1:  lodsb
    test %al, %al
    jz 2f
    mov $0x3f8, %dx
    out %al, %dx
    jmp 1b
2:  lidt BASE + idt_zero
    xor %ecx, %ecx
    div %ecx                   /* #DE with no IDT: the CPU shuts down */
3:  hlt
    jmp 3b

    .p2align 3
gdt:
    .quad 0
    .quad 0x00cf9b000000ffff   /* 0x08: flat 32-bit code */
    .quad 0x00cf93000000ffff   /* 0x10: flat data */
gdt_desc:
    .word gdt_desc - gdt - 1
    .long BASE + gdt
idt_zero:
    .word 0
    .long 0
msg: .asciz "TINY-GUEST-UP\r\n"

    .org 0xfff0
    .code16
reset:
    ljmp $0xf000, $_start
    .org 0x10000
