#!/bin/bash
# The guest test kit on QEMU (q35, TCG unless CVIRT_KIT_ACCEL=kvm), the
# oracle for the same programs on cvirt-vmm: every program with 1 and 2
# vCPUs, each of its TAP cases one case here, plus one case per run for a
# clean power-off with every planned case printed. Then a few runs in a
# deliberately wrong setting, which must fail, so a kit that cannot fail is
# caught.
source "$(dirname "$0")/lib.sh"
source "$CVIRT_SRC/tests/guest/kit/cases.sh"

# expect_failure NAME CASE_PATTERN ARGS...: the run must not pass as a
# whole, and when CASE_PATTERN is given a failed case must match it.
expect_failure() {
    local name=$1 pat=$2
    shift 2
    CVIRT_KIT_TIMEOUT=${CVIRT_KIT_NEG_TIMEOUT:-30} kit_run qemu "$@"
    local failed
    failed=$(grep -E '^not ok' <<<"$KIT_CASES")
    if [ -n "$pat" ]; then
        check "kit detects $name" grep -qE "$pat" <<<"$failed"
    else
        check "kit detects $name" [ "$KIT_VERDICT" != ok ]
    fi
}

main() {
    if ! command -v "${CVIRT_KIT_QEMU:-qemu-system-x86_64}" >/dev/null; then
        tap_fail "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"
        return
    fi
    if [ "${CVIRT_KIT_ACCEL:-tcg}" = kvm ]; then
        have_kvm || return
    fi
    if ! kit_build "$KIT"; then
        tap_fail "building the guest test kit (see stderr)"
        return
    fi
    tap_ok "guest test kit built"

    local prog cpus
    for prog in $KIT_PROGRAMS; do
        for cpus in 1 2; do
            kit_run qemu "$KIT/$prog.elf" "$cpus"
            kit_report "$prog ${cpus}cpu"
        done
    done

    # The BIOS-area scan, the fallback for loaders without rsdp_paddr.
    kit_run qemu "$KIT/acpi.elf" 1 kit.rsdp=scan
    kit_report "acpi 1cpu rsdp-scan"

    # The last cpus= and date= on the command line win.
    expect_failure "a wrong cpus= in acpi" $'^not ok\tMADT lists cpus=N' \
        "$KIT/acpi.elf" 2 cpus=3
    expect_failure "a missing AP in smp" $'^not ok\tcpus=N-1 APs started' \
        "$KIT/smp.elf" 2 cpus=3
    expect_failure "a wrong date= in rtc" $'^not ok\tRTC date equals date=' \
        "$KIT/rtc.elf" 1 date=2001-02-03
    CVIRT_KIT_QEMU_ARGS="-M pit=off" expect_failure "a machine without a PIT in timer" \
        $'^not ok\tPIT interrupts arrive' "$KIT/timer.elf" 1
    CVIRT_KIT_QEMU_ARGS="-no-reboot" expect_failure "a reset that stops the machine" "" \
        "$KIT/reboot_kbd.elf" 1
    CVIRT_KIT_NEG_TIMEOUT=8 CVIRT_KIT_QEMU_ARGS="-no-acpi" expect_failure "a machine without ACPI power-off" "" \
        "$KIT/poweroff.elf" 1
}

main
tap_done
