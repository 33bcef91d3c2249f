#!/bin/bash
# Builds (or finds in the cache) the test guest's kernel and initramfs and
# prints shell assignments for the Makefile and the tests:
#   KERNEL=...        uncompressed vmlinux, booted through its PVH entry
#   BZIMAGE=...       the same kernel as a bzImage
#   INITRD=...        the initramfs
#   CMDLINE_FILE=...  the boot switches every boot needs (file: cmdline)
# Use: eval "$(tests/guest/linux/prepare.sh)". Build failures go to stderr
# and make this script fail.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)

kdir=$("$HERE/build-kernel.sh" | tail -n 1)
initrd=$("$HERE/mk-initramfs.sh" | tail -n 1)
[ -f "$kdir/vmlinux" ] && [ -f "$kdir/bzImage" ] && [ -f "$initrd" ] || {
    echo "prepare.sh: the builds did not produce their files" >&2
    exit 1
}
printf 'KERNEL=%q\n' "$kdir/vmlinux"
printf 'BZIMAGE=%q\n' "$kdir/bzImage"
printf 'INITRD=%q\n' "$initrd"
printf 'CMDLINE_FILE=%q\n' "$HERE/cmdline"
