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
# the inputs; written under a temporary name and renamed, by cpio.sh (no
# root needed, reproducible).
#
# Environment: CVIRT_CACHE (default ~/.cache/cvirt), BUSYBOX (default
# /bin/busybox from busybox-static).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${CVIRT_CACHE:-$HOME/.cache/cvirt}/stock-initramfs
BUSYBOX=${BUSYBOX:-/bin/busybox}

die() { echo "mk-stock-initramfs.sh: $*" >&2; exit 1; }
source "$HERE/cpio.sh"

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

key=$({ cat "$HERE/stock-init" "$HERE/init" "$0" "$HERE/cpio.sh" "$BUSYBOX" "$mods/order"
        for m in "${order[@]}"; do cat "$mods/$m"; done
      } | sha256sum | cut -c1-16)
out=$CACHE/$key/initramfs.cpio
if [ -f "$out" ]; then
    echo "$out"
    exit 0
fi

write_cpio() {
    local d m
    for d in bin dev proc sys tmp newroot lib lib/modules lib/cvirt; do
        cpio_entry "$d" $((0040755)) 0 0
    done
    cpio_entry dev/console $((0020600)) 5 1
    cpio_entry bin/busybox $((0100755)) 0 0 "$BUSYBOX"
    cpio_entry bin/sh $((0120777)) 0 0 -s busybox
    cpio_entry init $((0100755)) 0 0 "$HERE/stock-init"
    cpio_entry lib/cvirt/init $((0100755)) 0 0 "$HERE/init"
    cpio_entry lib/modules/order $((0100644)) 0 0 "$mods/order"
    for m in "${order[@]}"; do
        cpio_entry "lib/modules/$m" $((0100644)) 0 0 "$mods/$m"
    done
    cpio_entry TRAILER!!! 0 0 0
}

cpio_publish "$CACHE" "$key" initramfs.cpio write_cpio || die "could not create $out"
echo "$out"
