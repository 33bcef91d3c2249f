#!/bin/bash
# Builds the test guest's initramfs: a newc cpio archive with /init (the
# script beside this one), the static busybox as /bin/busybox, /bin/sh and
# /dev/console. Nothing else: the kernel spends seconds per megabyte
# unpacking it when its code is emulated, and busybox alone is 2 MB.
#
#   mk-initramfs.sh            prints the archive's path as its last line
#
# Output: $CVIRT_CACHE/initramfs/<key>/initramfs.cpio[.lz4], <key> hashing
# the inputs (init, busybox, this script, compression); written to a
# temporary name and renamed, so an interrupted run leaves no result.
# The archive is written by cpio.sh (no root needed, reproducible).
#
# Environment: CVIRT_CACHE (default ~/.cache/cvirt), BUSYBOX (default
# /bin/busybox from busybox-static), INITRAMFS_COMPRESS=none|lz4 (default
# none: see README.md for the measurement).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${CVIRT_CACHE:-$HOME/.cache/cvirt}/initramfs
BUSYBOX=${BUSYBOX:-/bin/busybox}
COMPRESS=${INITRAMFS_COMPRESS:-none}

die() { echo "mk-initramfs.sh: $*" >&2; exit 1; }
source "$HERE/cpio.sh"

[ -x "$BUSYBOX" ] || die "no busybox at $BUSYBOX (apt-get install busybox-static)"
# A dynamic busybox would need its libraries in the archive.
if ! LC_ALL=C od -A n -t x1 -j 0 -N 4 "$BUSYBOX" | grep -q '7f 45 4c 46'; then
    die "$BUSYBOX is not an ELF executable"
fi
if command -v readelf >/dev/null && readelf -l "$BUSYBOX" | grep -q INTERP; then
    die "$BUSYBOX is dynamically linked (apt-get install busybox-static)"
fi
case $COMPRESS in
none) suffix= ;;
lz4) suffix=.lz4; command -v lz4 >/dev/null || die "missing tool 'lz4'" ;;
*) die "INITRAMFS_COMPRESS must be none or lz4, not '$COMPRESS'" ;;
esac

key=$({ echo "$COMPRESS"; cat "$HERE/init" "$HERE/mk-initramfs.sh" "$HERE/cpio.sh" "$BUSYBOX"
      } | sha256sum | cut -c1-16)
out=$CACHE/$key/initramfs.cpio$suffix
if [ -f "$out" ]; then
    echo "$out"
    exit 0
fi

write_cpio() {
    local d
    for d in bin dev proc sys tmp; do
        cpio_entry "$d" $((0040755)) 0 0
    done
    cpio_entry dev/console $((0020600)) 5 1
    cpio_entry bin/busybox $((0100755)) 0 0 "$BUSYBOX"
    cpio_entry bin/sh $((0120777)) 0 0 -s busybox
    cpio_entry init $((0100755)) 0 0 "$HERE/init"
    cpio_entry TRAILER!!! 0 0 0
}

# -l: the legacy lz4 frame format, the one the kernel's unpacker reads.
write_lz4() { write_cpio | lz4 -l -9 -q -c; }
if [ "$COMPRESS" = lz4 ]; then
    cpio_publish "$CACHE" "$key" initramfs.cpio.lz4 write_lz4 || die "could not create $out"
else
    cpio_publish "$CACHE" "$key" initramfs.cpio write_cpio || die "could not create $out"
fi
echo "$out"
