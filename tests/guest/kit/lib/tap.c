/* TAP output on COM1. Every program plans its cases up front so a harness
 * can tell a program that stopped early from one that passed. */
#include "kit.h"

static int tap_planned, tap_done_n;

void tap_plan(int n)
{
    tap_planned = n;
    kit_printf("1..%d\n", n);
}

bool tap_check(bool ok, const char *desc, const char *detail, ...)
{
    tap_done_n++;
    if (ok) {
        kit_printf("ok %d - %s\n", tap_done_n, desc);
        return true;
    }
    char buf[200];
    va_list ap;
    va_start(ap, detail);
    kit_vsnprintf(buf, sizeof(buf), detail, ap);
    va_end(ap);
    kit_printf("not ok %d - %s # %s\n", tap_done_n, desc, buf);
    return false;
}

void tap_diag(const char *fmt, ...)
{
    char buf[200];
    va_list ap;
    va_start(ap, fmt);
    kit_vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    kit_printf("# %s\n", buf);
}

void tap_finish(void)
{
    while (tap_done_n < tap_planned)
        tap_check(false, "case not reached", "program ended after %d of %d cases",
                  tap_done_n, tap_planned);
    if (tap_done_n > tap_planned)
        tap_bail("%d cases run but %d planned", tap_done_n, tap_planned);
    kit_poweroff();
}

void tap_bail(const char *fmt, ...)
{
    char buf[200];
    va_list ap;
    va_start(ap, fmt);
    kit_vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    kit_printf("Bail out! %s\n", buf);
    kit_poweroff();
}
