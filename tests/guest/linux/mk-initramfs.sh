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
# The archive is written here byte by byte (newc is ASCII headers), so it
# needs no root for the device node and is reproducible (all times zero).
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

key=$({ echo "$COMPRESS"; cat "$HERE/init" "$HERE/mk-initramfs.sh" "$BUSYBOX"
      } | sha256sum | cut -c1-16)
out=$CACHE/$key/initramfs.cpio$suffix
if [ -f "$out" ]; then
    echo "$out"
    exit 0
fi

ino=0
# cpio_entry NAME MODE RDEVMAJOR RDEVMINOR [FILE | -s TARGET]
#   Writes one newc header, the name and the data, each padded to 4 bytes.
cpio_entry() {
    local name=$1 mode=$2 rmaj=$3 rmin=$4 size=0 namesize
    shift 4
    if [ "${1:-}" = -s ]; then
        size=${#2}
    elif [ -n "${1:-}" ]; then
        size=$(stat -c %s "$1")
    fi
    namesize=$((${#name} + 1))
    ino=$((ino + 1))
    printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
        "$ino" "$mode" 0 0 1 0 "$size" 0 0 "$rmaj" "$rmin" "$namesize" 0
    printf '%s\0' "$name"
    # The header is 110 bytes; name and data each end on a 4-byte boundary.
    head -c $(((4 - (110 + namesize) % 4) % 4)) /dev/zero
    if [ "${1:-}" = -s ]; then
        printf '%s' "$2"
    elif [ -n "${1:-}" ]; then
        cat "$1"
    fi
    head -c $(((4 - size % 4) % 4)) /dev/zero
}

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

mkdir -p "$CACHE"
# Leftovers of interrupted runs (not of a run still going on).
find "$CACHE" -maxdepth 1 -name "*.tmp.*" -mmin +60 -exec rm -rf {} +
tmp=$CACHE/$key.tmp.$$
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
if [ "$COMPRESS" = lz4 ]; then
    # -l: the legacy frame format, the one the kernel's unpacker reads.
    write_cpio | lz4 -l -9 -q - "$tmp/initramfs.cpio.lz4"
else
    write_cpio >"$tmp/initramfs.cpio"
fi
trap - EXIT
if ! mv -T "$tmp" "$CACHE/$key" 2>/dev/null; then
    # Someone else finished the same archive first; theirs is identical.
    rm -rf "$tmp"
fi
[ -f "$out" ] || die "could not create $out"
echo "$out"
