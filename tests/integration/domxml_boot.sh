#!/bin/bash
# The cvirt-vmm command line domain_conf makes from a domain XML runs the
# real Linux guest, and what the XML asked for is what the guest sees.
# The argv is tests/data/domxml/boot-linux.argv, which test_domain_conf
# proves is exactly domain_def_vmm_argv()'s output for boot-linux.xml;
# only the placeholders a daemon fills at start are swapped here: the
# guest's files for /GUEST/..., the control socket, and stdio for the
# serial pty (the daemon reads the pty; this test reads stdout).
source "$(dirname "$0")/lib.sh"

DATA=$CVIRT_SRC/tests/data/domxml
TIMEOUT=${CVIRT_GUEST_TIMEOUT:-240}
WORK=""
trap '[ -n "$WORK" ] && rm -rf "$WORK"' EXIT

encode() {
    python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe="/;=$|<>&-_.,:()"))' "$1"
}
val() { sed -n "s/^$2=//p" "$1" | tail -n 1; }

run_test() {
    WORK=$(mktemp -d --tmpdir cvirt-domxml.XXXXXX)
    local token="CVIRT-DOMXML-DISK-$RANDOM$RANDOM"
    { printf '%s' "$token"; head -c $((1024 * 1024 - ${#token})) /dev/zero; } >"$WORK/disk.raw"
    local run='echo CPUS=$(nproc); grep MemTotal /proc/meminfo;'
    run+=' echo VDA-SERIAL=$(cat /sys/block/vda/serial); echo VDA-RO=$(cat /sys/block/vda/ro);'
    run+=" echo VDA-HEAD=\$(head -c ${#token} /dev/vda);"
    run+=' echo RNG=$(cat /sys/class/misc/hw_random/rng_current);'
    run+=' echo BALLOON=$(ls /sys/bus/virtio/drivers/virtio_balloon | grep -c virtio)'

    local -a av=()
    local line prev="" console=""
    while IFS= read -r line; do
        case $prev in
        --kernel) line=$KERNEL ;;
        --initrd) line=$INITRD ;;
        --append) line="$(cat "$CMDLINE_FILE") cvirt.run=$(encode "$run")" ;;
        --control) line=$WORK/ctl ;;
        --console) console=$line; line=stdio ;;
        --disk) line=${line//\/GUEST\//$WORK/} ;;
        esac
        av+=("$line")
        prev=$line
    done <"$DATA/boot-linux.argv"
    check "the argv asks for the serial port on a pty (got '$console')" [ "$console" = pty ]
    check "the argv starts with cvirt-vmm" [ "${av[0]}" = cvirt-vmm ]
    av[0]=$VMM

    local out=$WORK/console rc
    timeout "$TIMEOUT" "${av[@]}" </dev/null 2>"$out.err" | tr -d '\r' >"$out"
    rc=${PIPESTATUS[0]}
    if [ "$rc" = 124 ]; then
        tap_fail "guest powered off within ${TIMEOUT}s (timed out)"
    else
        check "guest powered off, cvirt-vmm exited 0 (status $rc)" [ "$rc" = 0 ]
    fi
    check "the guest's command ran to its end" grep -qx 'CVIRT-RUN-EXIT=0' "$out"
    check "<vcpu>2</vcpu>: the guest has 2 CPUs" [ "$(val "$out" CPUS)" = 2 ]
    local mem
    mem=$(sed -n 's/^MemTotal: *\([0-9][0-9]*\) kB$/\1/p' "$out")
    check "<memory unit='MiB'>256: MemTotal in (200, 256) MiB (got '$mem' kB)" \
        bash -c "[ -n '$mem' ] && [ '$mem' -gt $((200 * 1024)) ] && [ '$mem' -lt $((256 * 1024)) ]"
    check "<serial>: vda carries CVIRT-DOMXML-1" [ "$(val "$out" VDA-SERIAL)" = CVIRT-DOMXML-1 ]
    check "<readonly/>: vda is read-only in the guest" [ "$(val "$out" VDA-RO)" = 1 ]
    check "<source file=>: vda starts with the host file's token" \
        [ "$(val "$out" VDA-HEAD)" = "$token" ]
    check "<rng model='virtio'>: the guest's hwrng is virtio" \
        bash -c "val() { sed -n \"s/^\$2=//p\" \"\$1\" | tail -n 1; }; val '$out' RNG | grep -q '^virtio_rng'"
    check "<memballoon model='virtio'>: a virtio balloon is bound" [ "$(val "$out" BALLOON)" = 1 ]
    sed 's/^/# /' "$out" | grep -v 'Command line' | tail -n 20
    sed 's/^/# stderr: /' "$out.err"
}

if have_kvm; then
    if [ ! -x "$VMM" ]; then
        tap_fail "cvirt-vmm is built ($VMM)"
    elif env=$("$CVIRT_SRC/tests/guest/linux/prepare.sh"); then
        eval "$env"
        run_test
    else
        tap_fail "building the guest kernel and initramfs (see stderr)"
    fi
fi
tap_done
