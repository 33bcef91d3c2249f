#!/bin/bash
# The kit's PCI and virtio programs on cvirt-vmm, judged against QEMU with
# the same device set in the same run (as kit_vmm.sh does for the base
# programs). Each cvirt-vmm case is reported, plus one case per run that
# cvirt-vmm gave the same cases and results as QEMU; a QEMU failure marks
# the kit untrusted there. The host side is checked as well: the raw disk
# holds the guest's sector pattern where it wrote it, a read-only run
# leaves it unchanged, a qcow2 overlay takes the writes (qemu-img check
# passes, the raw backing file is unchanged), the console line arrives on
# the socket cvirt-vmm listens on, and the ARP reply over the tap (in a
# network namespace this test makes) carries the tap's MAC.
source "$(dirname "$0")/lib.sh"
source "$CVIRT_SRC/tests/guest/kit/cases.sh"
source "$CVIRT_SRC/tests/guest/kit/virtio_host.sh"

DISK_SECTORS=8191               # odd on purpose: no rounding to a block
MAC=52:54:00:6b:69:74
GUEST_IP=10.0.2.15
PEER_IP=10.0.2.2
WORK="" NS="" TAP=kittap0
IMG=$CVIRT_BUILD/src/tools/cvirt-img

cleanup() {
    [ -n "$NS" ] && ip netns del "$NS" 2>/dev/null
    [ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT

# Device arguments: QEMU's and cvirt-vmm's for the same device.
q_rng() { echo "-device virtio-rng-pci,disable-legacy=on"; }
v_rng() { echo "--rng"; }
q_blk() {   # q_blk FILE FORMAT SERIAL [readonly]
    local ro=""
    [ "${4:-}" = readonly ] && ro=,readonly=on
    echo "-drive if=none,id=d0,file=$1,format=$2$ro" \
        "-device virtio-blk-pci,disable-legacy=on,drive=d0,serial=$3"
}
v_blk() {
    local ro=""
    [ "${4:-}" = readonly ] && ro=,readonly=on
    echo "--disk $1,format=$2,serial=$3$ro"
}
q_con() {
    echo "-device virtio-serial-pci,disable-legacy=on -chardev pipe,id=c0,path=$WORK/con" \
        "-device virtconsole,chardev=c0"
}
v_con() { echo "--vconsole socket=$WORK/vcon.sock"; }
q_net() {   # q_net MAC
    echo "-netdev tap,id=n0,ifname=$TAP,script=no,downscript=no" \
        "-device virtio-net-pci,disable-legacy=on,netdev=n0,mac=$1"
}
v_net() { echo "--net tap=$TAP,mac=$1"; }

# blk_pair NAME FMT QFILE VFILE SERIAL SALT [readonly]: the same program on both.
blk_pair() {
    local name=$1 fmt=$2 qf=$3 vf=$4 serial=$5 salt=$6 ro=${7:-} extra
    extra="sectors=$DISK_SECTORS salt=$salt serial=$serial"
    [ "$ro" = readonly ] && extra="$extra ro=1"
    CVIRT_KIT_QEMU_ARGS=$(q_blk "$qf" "$fmt" "$serial" "$ro") kit_oracle virtio_blk 1 "$extra"
    CVIRT_KIT_VMM_ARGS=$(v_blk "$vf" "$fmt" "$serial" "$ro") kit_subject "$name" virtio_blk 1 "$extra"
}

# overlay_has_data FILE: some guest data is allocated in the overlay itself.
overlay_has_data() {
    qemu-img map --output=json "$1" | grep -q '"depth": 0, "present": true, "zero": false, "data": true'
}

run_blk() {
    local salt=$1 serial=kit-disk-$RANDOM before base
    mkdir -p "$WORK/q" "$WORK/v"
    truncate -s $((DISK_SECTORS * 512)) "$WORK/q/disk.raw" "$WORK/v/disk.raw"
    blk_pair "virtio_blk raw read-write" raw "$WORK/q/disk.raw" "$WORK/v/disk.raw" "$serial" "$salt"
    check "virtio_blk raw: the disk file holds the pattern where the guest wrote it" \
        disk_holds "$WORK/v/disk.raw" "$salt"

    before=$(md5sum <"$WORK/v/disk.raw")
    blk_pair "virtio_blk raw read-only" raw "$WORK/q/disk.raw" "$WORK/v/disk.raw" "$serial" \
        "$salt" readonly
    check "virtio_blk raw: a read-only run leaves the disk file unchanged" \
        [ "$before" = "$(md5sum <"$WORK/v/disk.raw")" ]

    # The kit must see a wrong serial on cvirt-vmm too.
    CVIRT_KIT_VMM_ARGS=$(v_blk "$WORK/v/disk.raw" raw other readonly) CVIRT_KIT_TIMEOUT=30 \
        kit_run vmm "$KIT/virtio_blk.elf" 1 "sectors=$DISK_SECTORS salt=$salt serial=$serial ro=1"
    check "kit detects a wrong serial on cvirt-vmm" \
        grep -qE $'^not ok\tGET_ID returns serial=' <<<"$KIT_CASES"

    # A qcow2 overlay on a raw backing file full of zeros.
    local d
    for d in q v; do
        truncate -s $((DISK_SECTORS * 512)) "$WORK/$d/base.raw"
        if ! "$IMG" create -f qcow2 -b "$WORK/$d/base.raw" -F raw "$WORK/$d/over.qcow2" >/dev/null; then
            tap_fail "cvirt-img create -f qcow2 -b base.raw -F raw over.qcow2"
            return
        fi
    done
    base=$(md5sum <"$WORK/v/base.raw")
    blk_pair "virtio_blk qcow2 overlay" qcow2 "$WORK/q/over.qcow2" "$WORK/v/over.qcow2" \
        "$serial" "$salt"
    check "virtio_blk qcow2: qemu-img check passes on the overlay" \
        qemu-img check -q "$WORK/v/over.qcow2"
    check "virtio_blk qcow2: the raw backing file is unchanged" \
        [ "$base" = "$(md5sum <"$WORK/v/base.raw")" ]
    check "virtio_blk qcow2: the guest's writes are allocated in the overlay" \
        overlay_has_data "$WORK/v/over.qcow2"
    if qemu-img convert -f qcow2 -O raw "$WORK/v/over.qcow2" "$WORK/v/flat.raw"; then
        check "virtio_blk qcow2: the image reads the pattern where the guest wrote it" \
            disk_holds "$WORK/v/flat.raw" "$salt"
    else
        tap_fail "virtio_blk qcow2: qemu-img convert of the overlay"
    fi
}

# virtio-rng with MSI-X left off, on QEMU and cvirt-vmm: the interrupt
# comes through INTx and the IOAPIC. On cvirt-vmm the input that fired must
# be the one the Interrupt Line register names (QEMU's firmware puts a
# PIC IRQ there instead).
run_intx() {
    local line gsi
    CVIRT_KIT_QEMU_ARGS=$(q_rng) kit_oracle virtio_intx 1 ""
    CVIRT_KIT_VMM_ARGS=$(v_rng) kit_subject "virtio_intx" virtio_intx 1 ""
    line=$(grep -E '^# INTx pin [1-4] on IOAPIC input' <<<"$KIT_CONSOLE")
    gsi=$(sed -nE 's/.*IOAPIC input ([0-9]+),.*/\1/p' <<<"$line")
    check "virtio_intx: cvirt-vmm's INTx fires on the input the Interrupt Line names ($line)" \
        grep -qE "^# INTx pin [1-4] on IOAPIC input ${gsi:-none}, Interrupt Line ${gsi:-none}\$" \
        <<<"$line"
}

# Connects to cvirt-vmm's console socket once it exists, sends one line
# and writes the first line it receives to OUT.
console_peer() {   # console_peer SOCK LINE OUT
    python3 - "$@" <<'EOF'
import socket, sys, time
path, line, out = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
deadline = time.time() + 30
while True:
    try:
        s.connect(path)
        break
    except OSError:
        if time.time() > deadline:
            sys.exit(1)
        time.sleep(0.05)
s.sendall((line + "\n").encode())
s.settimeout(max(1, deadline - time.time()))
got = b""
try:
    while b"\n" not in got:
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
except OSError:
    pass
open(out, "w").write(got.split(b"\n")[0].decode(errors="replace"))
EOF
}

run_con() {
    local tag=guest-$RANDOM line=host-$RANDOM got=""
    rm -f "$WORK/con.in" "$WORK/con.out"
    mkfifo "$WORK/con.in" "$WORK/con.out"
    exec 7<>"$WORK/con.in" 8<>"$WORK/con.out"
    printf '%s\n' "$line" >&7
    CVIRT_KIT_QEMU_ARGS=$(q_con) kit_oracle virtio_console 1 "tx=$tag rx=$line"
    exec 7>&- 8>&-

    rm -f "$WORK/vcon.sock" "$WORK/vcon.got"
    console_peer "$WORK/vcon.sock" "$line" "$WORK/vcon.got" &
    local peer=$!
    CVIRT_KIT_VMM_ARGS=$(v_con) kit_subject "virtio_console" virtio_console 1 "tx=$tag rx=$line"
    wait "$peer"
    [ -f "$WORK/vcon.got" ] && got=$(cat "$WORK/vcon.got")
    check "virtio_console: the guest's line arrives on the socket (got '$got')" \
        [ "$got" = "kit-console $tag" ]
}

# The network runs, inside the namespace that holds the tap.
run_net() {
    netns_up cvirtkitv || return
    export CVIRT_KIT_WRAP="ip netns exec $NS"
    local netargs="mac=$MAC ip=$GUEST_IP peer=$PEER_IP" tapmac
    CVIRT_KIT_QEMU_ARGS=$(q_net "$MAC") kit_oracle virtio_net 1 "$netargs"
    CVIRT_KIT_VMM_ARGS=$(v_net "$MAC") kit_subject "virtio_net" virtio_net 1 "$netargs"
    tapmac=$(ip netns exec "$NS" cat "/sys/class/net/$TAP/address")
    check "virtio_net: the ARP reply carries the tap's MAC" \
        grep -qi "^# peer MAC $tapmac," <<<"$KIT_CONSOLE"
    CVIRT_KIT_VMM_ARGS=$(v_net 52:54:00:00:00:01) CVIRT_KIT_TIMEOUT=30 \
        kit_run vmm "$KIT/virtio_net.elf" 1 "$netargs"
    check "kit detects a wrong mac= on cvirt-vmm" \
        grep -qE $'^not ok\tMAC in the device configuration equals mac=' <<<"$KIT_CASES"

    # The whole device set at once, as PCI functions.
    local cpus
    for cpus in 1 2; do
        CVIRT_KIT_QEMU_ARGS="$(q_rng) $(q_blk "$WORK/q/pci.raw" raw kit-pci) $(q_con) $(q_net "$MAC")" \
            kit_oracle pci "$cpus" virtio=4
        CVIRT_KIT_VMM_ARGS="$(v_rng) $(v_blk "$WORK/v/pci.raw" raw kit-pci) $(v_con) $(v_net "$MAC")" \
            kit_subject "pci with net ${cpus}cpu" pci "$cpus" virtio=4
    done
    unset CVIRT_KIT_WRAP
}

main() {
    have_kvm || return
    if ! command -v "${CVIRT_KIT_QEMU:-qemu-system-x86_64}" >/dev/null || ! command -v qemu-img >/dev/null; then
        tap_fail "qemu-system-x86_64 and qemu-img are installed (apt-get install qemu-system-x86 qemu-utils)"
        return
    fi
    if ! command -v python3 >/dev/null; then
        tap_fail "python3 is installed (the console peer)"
        return
    fi
    if ! kit_build "$KIT"; then
        tap_fail "building the guest test kit (see stderr)"
        return
    fi
    local prog
    for prog in $KIT_VIRTIO_PROGRAMS; do
        [ -f "$KIT/$prog.elf" ] || { tap_fail "kit program $prog built"; return; }
    done
    [ -x "$IMG" ] || { tap_fail "cvirt-img built at $IMG"; return; }
    tap_ok "guest test kit built with the PCI and virtio programs"
    WORK=$(mktemp -d)
    local salt=$(((RANDOM * 32768 + RANDOM) % 900000000 + 1)) cpus

    for cpus in 1 2; do
        CVIRT_KIT_QEMU_ARGS=$(q_rng) kit_oracle virtio_rng "$cpus" ""
        CVIRT_KIT_VMM_ARGS=$(v_rng) kit_subject "virtio_rng ${cpus}cpu" virtio_rng "$cpus" ""
    done

    run_intx
    run_blk "$salt"
    run_con

    # The whole device set at once, as PCI functions.
    mkdir -p "$WORK/q" "$WORK/v"
    truncate -s 1M "$WORK/q/pci.raw" "$WORK/v/pci.raw"
    rm -f "$WORK/con.in" "$WORK/con.out"
    mkfifo "$WORK/con.in" "$WORK/con.out"
    for cpus in 1 2; do
        CVIRT_KIT_QEMU_ARGS="$(q_rng) $(q_blk "$WORK/q/pci.raw" raw kit-pci) $(q_con)" \
            kit_oracle pci "$cpus" virtio=3
        CVIRT_KIT_VMM_ARGS="$(v_rng) $(v_blk "$WORK/v/pci.raw" raw kit-pci) $(v_con)" \
            kit_subject "pci ${cpus}cpu" pci "$cpus" virtio=3
    done
    run_net
}

main
tap_done
