#!/bin/bash
# The real Linux guest on cvirt-vmm, checked from inside: the PVH vmlinux
# with 1 and 2 vCPUs and the bzImage with 1, each asked (cvirt.run=) for
# nproc and MemTotal; the guest must power itself off and cvirt-vmm exit 0.
# linux_qemu.sh runs the same guest on QEMU, the oracle for the guest itself.
source "$(dirname "$0")/lib.sh"

GUEST=$CVIRT_SRC/tests/guest/linux
TIMEOUT=${CVIRT_GUEST_TIMEOUT:-240}
MEM_MIB=256

in_range() { [ -n "$1" ] && [ "$1" -gt "$2" ] && [ "$1" -lt "$3" ]; }

# boot NAME KERNEL CPUS: one boot and its checks.
boot() {
    local name=$1 kernel=$2 cpus=$3
    local run='echo%20CPUS=$(nproc);grep%20MemTotal%20/proc/meminfo'
    local out rc
    out=$(mktemp)
    timeout "$TIMEOUT" "$VMM" --kernel "$kernel" --initrd "$INITRD" \
        --memory ${MEM_MIB}M --cpus "$cpus" --no-reboot \
        --append "$(cat "$CMDLINE_FILE") cvirt.run=$run" </dev/null 2>"$out.err" | tr -d '\r' >"$out"
    rc=${PIPESTATUS[0]}
    if [ "$rc" = 124 ]; then
        tap_fail "$name: guest powered off within ${TIMEOUT}s (timed out)"
    else
        check "$name: guest powered off, cvirt-vmm exited 0 (status $rc)" [ "$rc" = 0 ]
    fi
    check "$name: CVIRT-GUEST-UP marker on the serial console" grep -qx 'CVIRT-GUEST-UP' "$out"
    check "$name: cvirt.run command exited 0" grep -qx 'CVIRT-RUN-EXIT=0' "$out"
    local got mem_kb
    got=$(sed -n 's/^CPUS=\([0-9][0-9]*\)$/\1/p' "$out")
    check "$name: guest nproc is $cpus (got '$got')" [ "$got" = "$cpus" ]
    mem_kb=$(sed -n 's/^MemTotal: *\([0-9][0-9]*\) kB$/\1/p' "$out")
    check "$name: guest MemTotal in ($((MEM_MIB - 56)), $MEM_MIB) MiB (got '$mem_kb' kB)" \
        in_range "$mem_kb" $(((MEM_MIB - 56) * 1024)) $((MEM_MIB * 1024))
    # The console and stderr help whoever reads a failure.
    sed 's/^/# /' "$out" | tail -n 40
    sed 's/^/# stderr: /' "$out.err"
    rm -f "$out" "$out.err"
}

# The interactive shell (as make run boots it): a command line longer than
# the UART's 16-byte FIFO typed at the prompt must arrive whole.
boot_shell() {
    local out=$(mktemp) fifo=$(mktemp -u) i
    mkfifo "$fifo"
    timeout "$TIMEOUT" "$VMM" --kernel "$KERNEL" --initrd "$INITRD" --memory ${MEM_MIB}M \
        --no-reboot --append "$(cat "$CMDLINE_FILE") cvirt.shell" <"$fifo" >"$out" 2>&1 &
    local pid=$!
    exec 7>"$fifo"
    for ((i = 0; i < TIMEOUT * 2; i++)); do
        grep -q '^/ # ' "$out" && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.5
    done
    check "shell: prompt on the console" grep -q '^/ # ' "$out"
    echo 'echo typed-$((6*7))-after-a-line-longer-than-the-fifo' >&7
    for ((i = 0; i < 120; i++)); do
        grep -q 'typed-42-after' "$out" && break
        sleep 0.5
    done
    check "shell: a 60-byte command line arrives whole and runs" \
        grep -q '^typed-42-after-a-line-longer-than-the-fifo' <(tr -d '\r' <"$out")
    echo 'exit' >&7
    exec 7>&-
    wait $pid
    local rc=$?
    check "shell: exit powers the guest off, cvirt-vmm exits 0 (status $rc)" [ "$rc" = 0 ]
    tr -d '\r' <"$out" | tail -n 8 | sed 's/^/# /'
    rm -f "$out" "$fifo"
}

if have_kvm; then
    if env=$("$GUEST/prepare.sh"); then
        eval "$env"
        boot "pvh 1 vCPU" "$KERNEL" 1
        boot "pvh 2 vCPUs" "$KERNEL" 2
        boot "bzImage 1 vCPU" "$BZIMAGE" 1
        boot_shell
    else
        tap_fail "building the guest kernel and initramfs (see stderr)"
    fi
fi
tap_done
