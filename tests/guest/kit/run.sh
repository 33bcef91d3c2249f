#!/bin/bash
# Runs one kit program and prints the guest's serial output on stdout.
#
#   run.sh qemu|vmm PROG.elf CPUS [extra-append]
#
# Exit status: 0 when the guest powered itself off, 124 on timeout, other
# values from the emulator or monitor otherwise. The command line always
# carries cpus=N and date=YYYY-MM-DD (the host's UTC date).
#
# Environment:
#   CVIRT_KIT_TIMEOUT  seconds before the run is killed (default 60)
#   CVIRT_KIT_ACCEL    qemu accelerator: tcg (default) or kvm
#   CVIRT_BUILD        build directory holding src/vmm/cvirt-vmm (vmm mode)
#   CVIRT_KIT_QEMU     qemu-system-x86_64 binary to use
#   CVIRT_KIT_QEMU_ARGS extra QEMU arguments, split on spaces (tests use it to
#                      break the machine on purpose, or to add devices)
#   CVIRT_KIT_VMM_ARGS  extra cvirt-vmm arguments, split on spaces (devices)
#   CVIRT_KIT_WRAP     a command prefix for QEMU or cvirt-vmm, split on spaces
#                      (e.g. "ip netns exec NS" to reach a tap in a namespace)
set -u

usage() {
    echo "usage: $0 qemu|vmm PROG.elf CPUS [extra-append]" >&2
    exit 2
}
[ $# -ge 3 ] || usage
mode=$1 prog=$2 cpus=$3 extra=${4:-}
[ -f "$prog" ] || { echo "$0: $prog: no such file" >&2; exit 2; }
case $cpus in ''|*[!0-9]*) usage ;; esac

append="cpus=$cpus date=$(date -u +%Y-%m-%d)"
[ -n "$extra" ] && append="$append $extra"
timeout=${CVIRT_KIT_TIMEOUT:-60}
src=$(cd "$(dirname "$0")/../../.." && pwd)

case $mode in
qemu)
    # TCG by default: with this kind of guest KVM gains nothing, and on hosts
    # whose KVM interprets guest kernel code, SeaBIOS alone costs seconds.
    accel=${CVIRT_KIT_ACCEL:-tcg}
    exec timeout --kill-after=5 "$timeout" ${CVIRT_KIT_WRAP:-} "${CVIRT_KIT_QEMU:-qemu-system-x86_64}" \
        -M q35 -accel "$accel" -no-user-config -nodefaults -display none \
        -serial stdio -m 64 -smp "$cpus" \
        -kernel "$prog" -append "$append" ${CVIRT_KIT_QEMU_ARGS:-} </dev/null
    ;;
vmm)
    vmm=${CVIRT_BUILD:-$src/build}/src/vmm/cvirt-vmm
    [ -x "$vmm" ] || { echo "$0: $vmm not built" >&2; exit 2; }
    # Only the reboot programs may reset; for the others a reset is a bug
    # and --no-reboot turns it into exit status 3 instead of a boot loop.
    noreboot=--no-reboot
    case $(basename "$prog") in reboot_*) noreboot= ;; esac
    exec timeout --kill-after=5 "$timeout" ${CVIRT_KIT_WRAP:-} "$vmm" --kernel "$prog" \
        --append "$append" --memory 64M --cpus "$cpus" $noreboot ${CVIRT_KIT_VMM_ARGS:-} </dev/null
    ;;
*)
    usage
    ;;
esac
