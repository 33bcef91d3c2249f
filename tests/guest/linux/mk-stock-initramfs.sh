#!/bin/bash
# Builds the initramfs for Debian's stock kernel: the busybox test guest's
# archive (see mk-initramfs.sh) plus the kernel's modules for a root on a
# virtio disk, with stock-init as /init. stock-init loads the modules,
# mounts /dev/vda and switches to its /sbin/init; without a disk it runs the
# busybox guest's init (kept as /lib/cvirt/init), so cvirt.run= and
# cvirt.shell work as with our own kernel.
#
#   mk-stock-initramfs.sh [VMLINUZ]   prints the archive's path as its last line
#
# VMLINUZ defaults to what stock-kernel.sh fetches; its modules are the
# directory modules/ beside it (made by stock-kernel.sh).
# Output: $CVIRT_CACHE/stock-initramfs/<key>/initramfs.cpio, <key> hashing
# the inputs; written under a temporary name and renamed. The archive is
# written byte by byte (newc headers are ASCII), so no root is needed for
# the device node, and it is reproducible (all times zero).
#
# Environment: CVIRT_CACHE (default ~/.cache/cvirt), BUSYBOX (default
# /bin/busybox from busybox-static).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${CVIRT_CACHE:-$HOME/.cache/cvirt}/stock-initramfs
BUSYBOX=${BUSYBOX:-/bin/busybox}

die() { echo "mk-stock-initramfs.sh: $*" >&2; exit 1; }

[ -x "$BUSYBOX" ] || die "no busybox at $BUSYBOX (apt-get install busybox-static)"
if command -v readelf >/dev/null && readelf -l "$BUSYBOX" | grep -q INTERP; then
    die "$BUSYBOX is dynamically linked (apt-get install busybox-static)"
fi

vmlinuz=${1:-}
if [ -z "$vmlinuz" ]; then
    vmlinuz=$("$HERE/stock-kernel.sh" | tail -n 1)
fi
mods=$(dirname "$vmlinuz")/modules
[ -f "$mods/order" ] || die "no $mods/order (stock-kernel.sh makes it)"
mapfile -t order <"$mods/order"
for m in "${order[@]}"; do
    case $m in
    '' | */* | .*) die "bad module name '$m' in $mods/order" ;;
    esac
    [ -f "$mods/$m" ] || die "$mods/order names $m, which is missing"
done

key=$({ cat "$HERE/stock-init" "$HERE/init" "$0" "$BUSYBOX" "$mods/order"
        for m in "${order[@]}"; do cat "$mods/$m"; done
      } | sha256sum | cut -c1-16)
out=$CACHE/$key/initramfs.cpio
if [ -f "$out" ]; then
    echo "$out"
    exit 0
fi

ino=0
# entry NAME MODE RDEVMAJOR RDEVMINOR [FILE | -s TARGET]
#   One newc member: the 110-byte header, the name and the data, the name
#   and the data each padded with zeros to a multiple of 4 bytes.
entry() {
    local name=$1 mode=$2 rmaj=$3 rmin=$4 size=0 nlen
    shift 4
    case ${1:-} in
    -s) size=${#2} ;;
    '') ;;
    *) size=$(stat -L -c %s "$1") ;;
    esac
    nlen=$((${#name} + 1))
    ino=$((ino + 1))
    # magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
    # devminor, rdevmajor, rdevminor, namesize, check
    printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
        "$ino" "$mode" 0 0 1 0 "$size" 0 0 "$rmaj" "$rmin" "$nlen" 0
    printf '%s\0' "$name"
    head -c $(((4 - (110 + nlen) % 4) % 4)) /dev/zero
    case ${1:-} in
    -s) printf '%s' "$2" ;;
    '') ;;
    *) cat "$1" ;;
    esac
    head -c $(((4 - size % 4) % 4)) /dev/zero
}

write_cpio() {
    local d m
    for d in bin dev proc sys tmp newroot lib lib/modules lib/cvirt; do
        entry "$d" $((0040755)) 0 0
    done
    entry dev/console $((0020600)) 5 1
    entry bin/busybox $((0100755)) 0 0 "$BUSYBOX"
    entry bin/sh $((0120777)) 0 0 -s busybox
    entry init $((0100755)) 0 0 "$HERE/stock-init"
    entry lib/cvirt/init $((0100755)) 0 0 "$HERE/init"
    entry lib/modules/order $((0100644)) 0 0 "$mods/order"
    for m in "${order[@]}"; do
        entry "lib/modules/$m" $((0100644)) 0 0 "$mods/$m"
    done
    entry TRAILER!!! 0 0 0
}

mkdir -p "$CACHE"
# Leftovers of interrupted runs (not of a run still going on).
find "$CACHE" -maxdepth 1 -name "*.tmp.*" -mmin +60 -exec rm -rf {} +
tmp=$CACHE/$key.tmp.$$
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
write_cpio >"$tmp/initramfs.cpio"
trap - EXIT
if ! mv -T "$tmp" "$CACHE/$key" 2>/dev/null; then
    # Someone else finished the same archive first; theirs is identical.
    rm -rf "$tmp"
fi
[ -f "$out" ] || die "could not create $out"
echo "$out"
