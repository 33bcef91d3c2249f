#!/bin/bash
# The kit's PCI and virtio programs on QEMU (q35, TCG unless
# CVIRT_KIT_ACCEL=kvm) with modern-only virtio-*-pci devices: the oracle for
# the same programs on cvirt-vmm. Each TAP case of a run is one case here,
# plus one per run for a clean power-off. The host side is checked too: the
# disk file holds the guest's sector pattern (read with dd), a read-only run
# leaves the file unchanged, the console line arrives on the host's pipe,
# and the ARP reply carries the tap's MAC. Then deliberately wrong settings
# (wrong mac=, serial=, sectors=, salt=, rx=, peer=, a missing rng, a
# transitional device) must fail.
source "$(dirname "$0")/lib.sh"
source "$CVIRT_SRC/tests/guest/kit/cases.sh"
source "$CVIRT_SRC/tests/guest/kit/virtio_host.sh"

VIRTIO_PROGRAMS="pci virtio_rng virtio_intx virtio_blk virtio_net virtio_console"
DISK_SECTORS=8191               # odd on purpose: no rounding to a block
MAC=52:54:00:6b:69:74
GUEST_IP=10.0.2.15
PEER_IP=10.0.2.2
WORK="" NS="" TAP=kittap0

cleanup() {
    [ -n "$NS" ] && ip netns del "$NS" 2>/dev/null
    [ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT

# expect_failure NAME CASE_PATTERN ARGS...: a failed case must match.
expect_failure() {
    local name=$1 pat=$2
    shift 2
    CVIRT_KIT_TIMEOUT=${CVIRT_KIT_NEG_TIMEOUT:-30} kit_run qemu "$@"
    check "kit detects $name" grep -qE "$pat" <<<"$(grep -E '^not ok' <<<"$KIT_CASES")"
}

# Device arguments, one function per device.
dev_rng() { echo "-device virtio-rng-pci,disable-legacy=on"; }
dev_blk() {   # dev_blk SERIAL [readonly]
    local ro=""
    [ "${2:-}" = readonly ] && ro=,readonly=on
    echo "-drive if=none,id=d0,file=$WORK/disk.raw,format=raw$ro" \
        "-device virtio-blk-pci,disable-legacy=on,drive=d0,serial=$1"
}
dev_con() {
    echo "-device virtio-serial-pci,disable-legacy=on -chardev pipe,id=c0,path=$WORK/con" \
        "-device virtconsole,chardev=c0"
}
dev_net() {   # dev_net MAC
    echo "-netdev tap,id=n0,ifname=$TAP,script=no,downscript=no" \
        "-device virtio-net-pci,disable-legacy=on,netdev=n0,mac=$1"
}

run_blk() {
    local salt=$1 serial=kit-disk-$RANDOM before
    truncate -s $((DISK_SECTORS * 512)) "$WORK/disk.raw"
    CVIRT_KIT_QEMU_ARGS=$(dev_blk "$serial") \
        kit_run qemu "$KIT/virtio_blk.elf" 1 "sectors=$DISK_SECTORS salt=$salt serial=$serial"
    kit_report "virtio_blk read-write"
    check "virtio_blk: the disk file holds the pattern where the guest wrote it" disk_holds "$WORK/disk.raw" "$salt"

    before=$(md5sum <"$WORK/disk.raw")
    CVIRT_KIT_QEMU_ARGS=$(dev_blk "$serial" readonly) \
        kit_run qemu "$KIT/virtio_blk.elf" 1 "sectors=$DISK_SECTORS salt=$salt serial=$serial ro=1"
    kit_report "virtio_blk read-only"
    check "virtio_blk: a read-only run leaves the disk file unchanged" \
        [ "$before" = "$(md5sum <"$WORK/disk.raw")" ]

    CVIRT_KIT_QEMU_ARGS=$(dev_blk "$serial" readonly) expect_failure "a wrong serial= in virtio_blk" \
        $'^not ok\tGET_ID returns serial=' "$KIT/virtio_blk.elf" 1 \
        "sectors=$DISK_SECTORS salt=$salt serial=other ro=1"
    CVIRT_KIT_QEMU_ARGS=$(dev_blk "$serial" readonly) expect_failure "a wrong sectors= in virtio_blk" \
        $'^not ok\tcapacity equals sectors=' "$KIT/virtio_blk.elf" 1 \
        "sectors=$((DISK_SECTORS + 1)) salt=$salt serial=$serial ro=1"
    CVIRT_KIT_QEMU_ARGS=$(dev_blk "$serial" readonly) expect_failure "a wrong salt= in virtio_blk" \
        $'^not ok\treads the same four ways' "$KIT/virtio_blk.elf" 1 \
        "sectors=$DISK_SECTORS salt=$((salt + 1)) serial=$serial ro=1"
    CVIRT_KIT_QEMU_ARGS=$(dev_blk "$serial") expect_failure "ro=1 on a writable disk in virtio_blk" \
        $'^not ok\tVIRTIO_BLK_F_RO offered exactly when ro=1' "$KIT/virtio_blk.elf" 1 \
        "sectors=$DISK_SECTORS salt=$salt serial=$serial ro=1"
}

# run_con NAME TX RX_SENT RX_EXPECTED: one console run through a pipe pair;
# sets CON_GOT to the line the host read back.
run_con() {
    local name=$1 tx=$2 sent=$3 want=$4
    rm -f "$WORK/con.in" "$WORK/con.out"
    mkfifo "$WORK/con.in" "$WORK/con.out"
    # Read-write opens never block; the pipes keep the lines until read.
    exec 7<>"$WORK/con.in" 8<>"$WORK/con.out"
    printf '%s\n' "$sent" >&7
    CVIRT_KIT_QEMU_ARGS=$(dev_con) kit_run qemu "$KIT/virtio_console.elf" 1 "tx=$tx rx=$want"
    CON_GOT=""
    read -r -t 2 CON_GOT <&8
    exec 7>&- 8>&-
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
    local prog
    for prog in $VIRTIO_PROGRAMS; do
        [ -f "$KIT/$prog.elf" ] || { tap_fail "kit program $prog built"; return; }
    done
    tap_ok "guest test kit built with the PCI and virtio programs"
    WORK=$(mktemp -d)
    local salt=$(((RANDOM * 32768 + RANDOM) % 900000000 + 1))

    # Entropy, with the MSI-X interrupt, on one and two vCPUs.
    local cpus
    for cpus in 1 2; do
        CVIRT_KIT_QEMU_ARGS=$(dev_rng) kit_run qemu "$KIT/virtio_rng.elf" "$cpus"
        kit_report "virtio_rng ${cpus}cpu"
    done
    expect_failure "a machine without virtio-rng" $'^not ok\tvirtio-rng found' "$KIT/virtio_rng.elf" 1
    CVIRT_KIT_QEMU_ARGS="-device virtio-rng-pci" expect_failure "a transitional virtio-rng" \
        $'^not ok\tvirtio-rng found' "$KIT/virtio_rng.elf" 1

    # The same device with MSI-X left off: INTx through the IOAPIC.
    CVIRT_KIT_QEMU_ARGS=$(dev_rng) kit_run qemu "$KIT/virtio_intx.elf" 1
    kit_report "virtio_intx"
    check "virtio_intx: the diagnostic names the IOAPIC input that fired" \
        grep -qE '^# INTx pin [1-4] on IOAPIC input (1[6-9]|2[0-3]), Interrupt Line [0-9]+$' \
        <<<"$KIT_CONSOLE"
    expect_failure "a machine without virtio-rng in virtio_intx" $'^not ok\tvirtio-rng found' \
        "$KIT/virtio_intx.elf" 1

    run_blk "$salt"

    local tag=guest-$RANDOM line=host-$RANDOM
    run_con "virtio_console" "$tag" "$line" "$line"
    kit_report "virtio_console"
    check "virtio_console: the guest's line arrives on the host" [ "$CON_GOT" = "kit-console $tag" ]
    run_con "virtio_console wrong rx=" "$tag" "$line" "$line-other"
    check "kit detects a wrong rx= in virtio_console" \
        grep -qE $'^not ok\tthe line read from receiveq equals rx=' <<<"$KIT_CASES"

    # PCI and the network run in a namespace that holds the tap.
    netns_up cvirtkit || return
    local all tapmac
    all="$(dev_rng) $(dev_blk kit-pci) $(dev_con) $(dev_net "$MAC")"
    rm -f "$WORK/con.in" "$WORK/con.out"
    mkfifo "$WORK/con.in" "$WORK/con.out"
    export CVIRT_KIT_WRAP="ip netns exec $NS"
    for cpus in 1 2; do
        CVIRT_KIT_QEMU_ARGS=$all kit_run qemu "$KIT/pci.elf" "$cpus" virtio=4
        kit_report "pci ${cpus}cpu"
    done
    CVIRT_KIT_QEMU_ARGS=$all expect_failure "a wrong virtio= count in pci" \
        $'^not ok\tnumber of virtio devices equals virtio=' "$KIT/pci.elf" 1 virtio=5
    CVIRT_KIT_QEMU_ARGS="$all -device virtio-rng-pci" expect_failure "a transitional device in pci" \
        $'^not ok\tvirtio devices are modern-only' "$KIT/pci.elf" 1 virtio=5

    local netargs="mac=$MAC ip=$GUEST_IP peer=$PEER_IP"
    CVIRT_KIT_QEMU_ARGS=$(dev_net "$MAC") kit_run qemu "$KIT/virtio_net.elf" 1 "$netargs"
    kit_report "virtio_net"
    tapmac=$(ip netns exec "$NS" cat "/sys/class/net/$TAP/address")
    check "virtio_net: the ARP reply carries the tap's MAC" \
        grep -qi "^# peer MAC $tapmac," <<<"$KIT_CONSOLE"
    CVIRT_KIT_QEMU_ARGS=$(dev_net "$MAC") expect_failure "a wrong mac= in virtio_net" \
        $'^not ok\tMAC in the device configuration equals mac=' "$KIT/virtio_net.elf" 1 \
        "$netargs mac=52:54:00:00:00:01"
    CVIRT_KIT_QEMU_ARGS=$(dev_net "$MAC") expect_failure "a peer= nobody answers in virtio_net" \
        $'^not ok\tARP reply from peer= received' "$KIT/virtio_net.elf" 1 "$netargs peer=10.0.2.3"
    unset CVIRT_KIT_WRAP
}

main
tap_done
