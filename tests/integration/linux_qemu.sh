#!/bin/bash
# The real Linux test guest on QEMU/KVM: the oracle telling whether a later
# failure under cvirt-vmm is the monitor's or the guest's. Boots the PVH
# vmlinux on QEMU's microvm (2 vCPUs, 256 MiB) with a cvirt.run= command
# and checks what the guest reports from inside.
source "$(dirname "$0")/lib.sh"

GUEST=$CVIRT_SRC/tests/guest/linux
TIMEOUT=${CVIRT_GUEST_TIMEOUT:-240}

# in_range N LOW HIGH: N is a number strictly between LOW and HIGH.
in_range() { [ -n "$1" ] && [ "$1" -gt "$2" ] && [ "$1" -lt "$3" ]; }

run_test() {
    if ! command -v qemu-system-x86_64 >/dev/null; then
        tap_fail "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"
        return
    fi
    have_kvm || return

    local env
    if ! env=$("$GUEST/prepare.sh"); then
        tap_fail "building the guest kernel and initramfs (see stderr)"
        return
    fi
    local KERNEL BZIMAGE INITRD CMDLINE_FILE
    eval "$env"
    tap_ok "guest kernel and initramfs built"

    # Percent-encoded for the guest's /init (see tests/guest/linux/init).
    local run='echo%20CPUS=$(nproc);grep%20MemTotal%20/proc/meminfo'
    local out rc
    out=$(mktemp)
    # PV IPIs and PV yield are hypercalls, which PVM hosts do not complete.
    timeout "$TIMEOUT" qemu-system-x86_64 -accel kvm \
        -cpu host,kvm-pv-ipi=off,kvm-pv-sched-yield=off \
        -M microvm -smp 2 -m 256M -nodefaults -no-user-config \
        -display none -serial "file:$out" -no-reboot \
        -kernel "$KERNEL" -initrd "$INITRD" \
        -append "$(cat "$CMDLINE_FILE") cvirt.run=$run" </dev/null >&2
    rc=$?
    tr -d '\r' <"$out" >"$out.txt"
    # The console log helps whoever reads the failure.
    sed 's/^/# /' "$out.txt"

    if [ "$rc" = 124 ]; then
        tap_fail "guest powered off within ${TIMEOUT}s (timed out)"
    else
        check "guest powered off, QEMU exited 0 (status $rc)" [ "$rc" = 0 ]
    fi
    check "guest printed the CVIRT-GUEST-UP marker" \
        grep -qx 'CVIRT-GUEST-UP' "$out.txt"
    check "cvirt.run command exited 0" grep -qx 'CVIRT-RUN-EXIT=0' "$out.txt"

    local cpus mem_kb
    cpus=$(sed -n 's/^CPUS=\([0-9][0-9]*\)$/\1/p' "$out.txt")
    check "guest sees 2 CPUs (nproc: '${cpus}')" [ "$cpus" = 2 ]
    mem_kb=$(sed -n 's/^MemTotal: *\([0-9][0-9]*\) kB$/\1/p' "$out.txt")
    # 256 MiB minus what firmware tables and the kernel image reserve.
    check "guest MemTotal in (200, 256) MiB ('${mem_kb}' kB)" \
        in_range "$mem_kb" $((200 * 1024)) $((256 * 1024))
    rm -f "$out" "$out.txt"
}

run_test
tap_done
