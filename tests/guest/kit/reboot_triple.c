/* Reset through a triple fault: with an empty IDT an exception cannot be
 * delivered, nor can the double fault that follows. The exception is a
 * divide error rather than INT3 or UD2, which KVM's instruction emulator
 * (used for guest kernel code on some hosts) fails to emulate instead of
 * raising the exception. */
#include "kit.h"

static void reset_triple(void)
{
    struct {
        uint16_t limit;
        uint32_t base;
    } __attribute__((packed)) idtr = { 0, 0 };
    __asm__ volatile("lidt %0\n\t"
                     "xorl %%ecx, %%ecx\n\t"
                     "xorl %%edx, %%edx\n\t"
                     "divl %%ecx"
                     : : "m"(idtr) : "eax", "ecx", "edx", "memory");
}

void kit_main(void)
{
    kit_reboot_test("a triple fault", 'T', reset_triple);
}
