/* Application-processor start-up support: the trampoline copy and the C
 * landing point that runs a program's hook. */
#include "kit.h"

extern const char kit_tramp_start[], kit_tramp_end[];
void (*kit_ap_hook)(void);
KIT_NORETURN void kit_ap_main(void);

uint8_t smp_install_trampoline(void)
{
    volatile uint8_t *dst = (volatile uint8_t *)(uintptr_t)KIT_TRAMP_BASE;
    size_t n = (size_t)(kit_tramp_end - kit_tramp_start);
    for (size_t i = 0; i < n; i++)
        dst[i] = (uint8_t)kit_tramp_start[i];
    return (uint8_t)(KIT_TRAMP_BASE >> 12);
}

void kit_ap_main(void)
{
    if (kit_ap_hook)
        kit_ap_hook();
    for (;;) {
        irq_disable();
        cpu_halt();
    }
}
