/* Reset through the i8042 keyboard controller's pulse-reset command. */
#include "kit.h"

static void reset_kbd(void)
{
    /* Wait (bounded) until the controller's input buffer is empty. */
    for (int i = 0; i < 10000 && (inb(0x64) & 0x02); i++)
        cpu_relax();
    outb(0x64, 0xfe);
}

void kit_main(void)
{
    kit_reboot_test("the i8042", 'K', reset_kbd);
}
