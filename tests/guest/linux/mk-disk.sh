#!/bin/bash
# Builds a small ext4 image for the test guest's virtio-blk disk, with
# mke2fs -d so that no mount (and no root) is needed. The image holds
# /guest-test.sh, the script the guest runs from the disk; see the usage
# text of that script below for its arguments and output lines.
#
#   mk-disk.sh [IMAGE]   writes IMAGE (default: a new temporary file) and
#                        prints its path as the last line
#
# Environment: DISK_MB, the image size in MiB (default 16).
# Every run builds a fresh image: tests write into it, so it is never shared.
set -euo pipefail

DISK_MB=${DISK_MB:-16}

die() { echo "mk-disk.sh: $*" >&2; exit 1; }

command -v mke2fs >/dev/null || die "missing tool 'mke2fs' (apt-get install e2fsprogs)"
case $DISK_MB in
'' | *[!0-9]*) die "DISK_MB must be a whole number of MiB, not '$DISK_MB'" ;;
esac
[ "$DISK_MB" -ge 4 ] || die "DISK_MB must be at least 4"

out=${1:-}
if [ -z "$out" ]; then
    out=$(mktemp --tmpdir cvirt-disk.XXXXXX.ext4)
fi
tree=$(mktemp -d --tmpdir cvirt-disk-tree.XXXXXX)
trap 'rm -rf "$tree"' EXIT

# The guest side, for busybox sh. Each result is a KEY=VALUE line on the
# console, so the host can judge every step even when one of them fails.
cat >"$tree/guest-test.sh" <<'GUEST'
# Runs inside the test guest with the disk mounted on /mnt. Copy it off
# the disk first (cp /mnt/guest-test.sh /t.sh) so /mnt can be unmounted.
#   sh /t.sh write SEED GUEST_IP PEER_IP
#       writes /mnt/data.txt from SEED (gen below), prints WRITE-SUM, unmounts;
#       tries to write /dev/vdb, prints VDB-RO, VDB-WRITE-RC, VDB-SECTOR0-SUM;
#       prints VDA-SERIAL when /sys has one; brings eth0 up with GUEST_IP/24,
#       prints ETH0-MAC, pings PEER_IP three times and prints PING-REPLIES
#   sh /t.sh read
#       prints READ-SUM of /mnt/data.txt and unmounts
# The host makes the same content with: seq 1 4096 | sed "s/.*/.../"
gen() { seq 1 4096 | sed "s/.*/cvirt disk test seed $1 line &/"; }
sum() { set -- $(sha256sum "$1"); echo "$1"; }

case $1 in
write)
    gen "$2" >/mnt/data.txt
    echo "WRITE-SUM=$(sum /mnt/data.txt)"
    sync
    umount /mnt
    echo "UMOUNT-RC=$?"

    echo "VDB-RO=$(blockdev --getro /dev/vdb)"
    # The same dd on a file must work, so a failure below is the disk's.
    dd if=/dev/zero of=/control bs=512 count=1 conv=notrunc
    echo "CONTROL-WRITE-RC=$?"
    dd if=/dev/zero of=/dev/vdb bs=512 count=1 conv=notrunc
    echo "VDB-WRITE-RC=$?"
    dd if=/dev/vdb of=/sector0 bs=512 count=1
    echo "VDB-SECTOR0-SUM=$(sum /sector0)"

    [ -r /sys/block/vda/serial ] && echo "VDA-SERIAL=$(cat /sys/block/vda/serial)"

    ip link set eth0 up
    ip addr add "$3/24" dev eth0
    echo "ETH0-MAC=$(cat /sys/class/net/eth0/address)"
    # One echo request per ping: without POSIX timers in the guest kernel
    # busybox ping cannot pace a series or time out by itself.
    ok=0
    for i in 1 2 3; do
        timeout 10 ping -c 1 "$4" && ok=$((ok + 1))
    done
    echo "PING-REPLIES=$ok"
    ;;
read)
    echo "READ-SUM=$(sum /mnt/data.txt)"
    umount /mnt
    echo "UMOUNT-RC=$?"
    ;;
*)
    echo "guest-test.sh: unknown step '$1'"
    exit 2
    ;;
esac
exit 0
GUEST

rm -f "$out"
if ! mke2fs -q -F -t ext4 -L cvirt-test -E root_owner=0:0 -d "$tree" "$out" "${DISK_MB}M" \
    >"$tree.log" 2>&1; then
    cat "$tree.log" >&2
    rm -f "$tree.log"
    die "mke2fs failed"
fi
rm -f "$tree.log"
echo "$out"
