/* A 256-entry IDT whose stubs all funnel into one C dispatcher. */
#include "kit.h"

struct idt_gate {
    uint16_t off_lo, sel;
    uint8_t zero, type;
    uint16_t off_hi;
} __attribute__((packed));

extern char kit_isr_stubs[];
static struct idt_gate idt[256] __attribute__((aligned(8)));
static kit_irq_fn handlers[256];

void kit_isr_dispatch(struct kit_frame *f);

void idt_init(void)
{
    for (int i = 0; i < 256; i++) {
        uint32_t a = (uint32_t)(uintptr_t)(kit_isr_stubs + 16 * i);
        idt[i].off_lo = (uint16_t)a;
        idt[i].sel = 0x08;
        idt[i].zero = 0;
        idt[i].type = 0x8e;     /* present, ring 0, 32-bit interrupt gate */
        idt[i].off_hi = (uint16_t)(a >> 16);
    }
    struct {
        uint16_t limit;
        uint32_t base;
    } __attribute__((packed)) idtr = { sizeof(idt) - 1, (uint32_t)(uintptr_t)idt };
    __asm__ volatile("lidt %0" : : "m"(idtr));
}

void idt_set_handler(uint8_t vector, kit_irq_fn fn)
{
    handlers[vector] = fn;
}

void kit_isr_dispatch(struct kit_frame *f)
{
    uint32_t v = f->vector & 0xff;
    if (handlers[v]) {
        handlers[v](f);
        return;
    }
    if (v < 32)
        tap_bail("CPU exception %u at eip 0x%x, error code 0x%x", v, f->eip, f->error);
    /* Spurious LAPIC interrupts (vector 0xff here) take no EOI. */
    if (v != 0xff) {
        tap_diag("unexpected interrupt vector %u", v);
        lapic_eoi();
    }
}
