#!/bin/bash
# The benchmark kit programs (disk_bench, net_flood; bench/disk and
# bench/net time them) kept honest with short runs: each on QEMU, the
# oracle, then on cvirt-vmm with the same device (disk_bench with both
# I/O engines, aio=threads and aio=io_uring), the cases compared. The
# host side is checked too: the raw file holds the stamp disk_bench wrote
# into every 4 KiB block (block number xor salt), and the tap in a network
# namespace counted exactly the frames net_flood sent.
source "$(dirname "$0")/lib.sh"
source "$CVIRT_SRC/tests/guest/kit/cases.sh"
source "$CVIRT_SRC/tests/guest/kit/virtio_host.sh"

MB=4                # disk_bench's range; the disk is one MiB larger
FRAMES=3000
MAC=52:54:00:62:6e:63
TAP=kitbench0 PEER_IP=10.0.7.1
WORK="" NS=""
cleanup() {
    [ -n "$NS" ] && ip netns del "$NS" 2>/dev/null
    [ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT

# stamps_hold FILE SALT: every 4 KiB block of the first MB MiB starts with
# its block number xor SALT (little-endian), as disk_bench wrote it.
stamps_hold() {
    python3 - "$1" "$2" "$MB" <<'PY'
import struct, sys
path, salt, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "rb") as f:
    for block in range(mb * 256):
        f.seek(block * 4096)
        got = struct.unpack("<I", f.read(4))[0]
        if got != block ^ salt:
            print("# block %d holds 0x%x, not 0x%x" % (block, got, block ^ salt))
            sys.exit(1)
PY
}

# rx_packets: what the tap has received (the guest's transmissions).
rx_packets() { ip netns exec "$NS" cat "/sys/class/net/$TAP/statistics/rx_packets"; }

disk() {
    local salt=$((RANDOM * 32768 + RANDOM)) mode args
    args="mb=$MB bs=64 qd=32 ops=500"
    for mode in qemu vmm; do
        # Written around the page cache: a dirty cached page the guest's
        # O_DIRECT writes could not invalidate would later read back as zeros.
        dd if=/dev/zero of="$WORK/$mode.raw" bs=1M count=$((MB + 1)) oflag=direct status=none
    done
    CVIRT_KIT_QEMU_ARGS="-drive if=none,id=d0,file=$WORK/qemu.raw,format=raw,cache=none -device virtio-blk-pci,disable-legacy=on,drive=d0" \
        kit_oracle disk_bench 1 "$args salt=$salt"
    check "disk_bench on QEMU: every block holds its stamp" stamps_hold "$WORK/qemu.raw" "$salt"
    CVIRT_KIT_VMM_ARGS="--disk $WORK/vmm.raw,format=raw,cache=none" \
        kit_subject "disk_bench" disk_bench 1 "$args salt=$salt"
    check "disk_bench on cvirt-vmm: every block holds its stamp" stamps_hold "$WORK/vmm.raw" "$salt"
    if grep -q '^# bench randread bytes=[0-9]* ops=500 ticks=[1-9]' <<<"$KIT_CONSOLE"; then
        tap_ok "disk_bench on cvirt-vmm: reports its timings"
    else
        tap_fail "disk_bench on cvirt-vmm: reports its timings"
    fi
    # The other I/O engine, a new salt over the same file.
    salt=$((salt ^ 0x5a5a5a))
    CVIRT_KIT_VMM_ARGS="--disk $WORK/vmm.raw,format=raw,cache=none,aio=io_uring" \
        kit_subject "disk_bench aio=io_uring" disk_bench 1 "$args salt=$salt"
    check "disk_bench on cvirt-vmm, aio=io_uring: every block holds its stamp" \
        stamps_hold "$WORK/vmm.raw" "$salt"
}

net() {
    netns_up cvirtbench || return
    local before q_count v_count
    local args="mac=$MAC frames=$FRAMES"
    before=$(rx_packets)
    CVIRT_KIT_WRAP="ip netns exec $NS" \
    CVIRT_KIT_QEMU_ARGS="-netdev tap,id=n0,ifname=$TAP,script=no,downscript=no -device virtio-net-pci,disable-legacy=on,netdev=n0,mac=$MAC" \
        kit_oracle net_flood 1 "$args"
    q_count=$(($(rx_packets) - before))
    # The tap's receive count is what came from the monitor: only the
    # guest's frames, so the count is exact.
    check "net_flood on QEMU: the tap counted the $FRAMES frames # counted $q_count" \
        test "$q_count" = "$FRAMES"
    before=$(rx_packets)
    CVIRT_KIT_WRAP="ip netns exec $NS" CVIRT_KIT_VMM_ARGS="--net tap=$TAP,mac=$MAC" \
        kit_subject "net_flood" net_flood 1 "$args"
    v_count=$(($(rx_packets) - before))
    check "net_flood on cvirt-vmm: the tap counted the $FRAMES frames # counted $v_count" \
        test "$v_count" = "$FRAMES"
}

if ! command -v qemu-system-x86_64 >/dev/null; then
    tap_fail "qemu-system-x86_64 is installed (the oracle)"
elif [ ! -x "$VMM" ]; then
    tap_fail "cvirt-vmm is built at $VMM"
elif have_kvm; then
    if ! make -s -C "$CVIRT_SRC/tests/guest/kit" OUT="$KIT" "$KIT/disk_bench.elf" "$KIT/net_flood.elf" >&2; then
        tap_fail "the kit's disk_bench and net_flood build"
    else
        WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/cvirt-kit-bench.XXXXXX")
        disk
        net
    fi
fi
tap_done
