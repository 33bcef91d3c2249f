#!/bin/bash
# cvirt-vmm refuses bad input with one clear line on stderr and a non-zero
# exit status, before touching the guest: missing or malformed kernels,
# initrds that do not fit, memory too small or too large, bad vCPU counts,
# bad options. The guest-facing cases need /dev/kvm to get that far.
source "$(dirname "$0")/lib.sh"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tiny=$CVIRT_BUILD/tiny/tiny-pvh.elf

# expect NAME STATUS PATTERN ARGS...: runs cvirt-vmm ARGS, wants exit STATUS,
# exactly one line on stderr, matching PATTERN (extended regex).
expect() {
    local name=$1 want=$2 pat=$3
    shift 3
    timeout 20 "$VMM" "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
    local rc=$? lines
    lines=$(wc -l <"$tmp/err")
    if [ "$rc" = "$want" ] && [ "$lines" = 1 ] && grep -qE -e "$pat" "$tmp/err"; then
        tap_ok "$name"
    else
        tap_fail "$name # exit $rc (want $want), $lines stderr lines: $(head -c 300 "$tmp/err" | tr '\n' '|')"
    fi
}

# Usage errors: no KVM needed.
expect "no kernel" 2 "no kernel given" --memory 64M
expect "memory not a size" 2 "--memory 'lots': not a size" --kernel "$tiny" --memory lots
expect "memory too small" 2 "--memory 1M is too small" --kernel "$tiny" --memory 1M
expect "memory too large" 2 "--memory 4T is too large" --kernel "$tiny" --memory 4T
expect "zero cpus" 2 "--cpus '0': must be a number from 1 to" --kernel "$tiny" --cpus 0
expect "too many cpus" 2 "--cpus '65'" --kernel "$tiny" --cpus 65
expect "cpus not a number" 2 "--cpus 'two'" --kernel "$tiny" --cpus two
expect "bad console" 2 "--console 'serial'" --kernel "$tiny" --console serial
expect "stray argument" 2 "unexpected argument 'extra'" --kernel "$tiny" extra

if have_kvm; then
    head -c 100000 /dev/urandom >"$tmp/random.bin"
    printf '\177ELF\002\001\001' >"$tmp/short.elf"
    : >"$tmp/empty"
    head -c $((40 << 20)) /dev/zero >"$tmp/big.initrd"
    long=$(head -c 70000 /dev/zero | tr '\0' a)

    expect "missing kernel file" 1 "cannot open kernel '$tmp/nope'" --kernel "$tmp/nope"
    expect "kernel is a directory" 1 "is not a regular file" --kernel "$tmp"
    expect "random bytes as kernel" 1 "not a Linux bzImage nor an ELF kernel" --kernel "$tmp/random.bin"
    expect "empty kernel" 1 "not a Linux bzImage nor an ELF kernel" --kernel "$tmp/empty"
    expect "truncated ELF" 1 "ELF header truncated" --kernel "$tmp/short.elf"
    # A real ELF program without a PVH note: this very shell.
    expect "ELF without PVH note" 1 "no PVH entry point" --kernel "$(command -v bash)"
    expect "missing initrd" 1 "cannot open initrd '$tmp/nope'" --kernel "$tiny" --initrd "$tmp/nope"
    expect "initrd larger than memory" 1 "initrd '.*' \\(40960 KiB\\) does not fit" \
        --kernel "$tiny" --initrd "$tmp/big.initrd" --memory 32M
    expect "command line too long" 1 "command line is 70000 bytes" --kernel "$tiny" --append "$long"
fi
tap_done
