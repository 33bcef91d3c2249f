#!/bin/bash
# Builds a Debian 12 (bookworm) minbase root with systemd as a raw ext4
# image for the virtio disk, booted by Debian's stock kernel through
# mk-stock-initramfs.sh. Prints the image's path as its last line.
#
#   mk-debian-root.sh                   builds the image unless it is cached
#   mk-debian-root.sh --no-debootstrap  the same, but exits with status 3
#                                       instead of running debootstrap
#
# Two cached steps under ${CVIRT_CACHE:-~/.cache/cvirt}/debian-root:
#   base/<key>/base.tar   debootstrap --variant=minbase of bookworm with
#                         systemd-sysv, udev and iproute2 (the download,
#                         about 1-3 minutes), kept so that a change of the
#                         configuration below does not download again;
#   <key>/debian.img      that tree plus the files of debian-root/ and the
#                         settings made here, turned into ext4 with
#                         mke2fs -d (no mount, no loop device).
# Each key hashes its inputs; results are written under temporary names and
# renamed when complete. Never boot debian.img itself: boot a copy (the tests
# and `make run` do), so that every boot starts from the same image.
#
# The root: hostname cvirt-debian, /dev/vda on /, root without a password
# and logged in on the serial console, and cvirt-debian-up.service, which
# prints CVIRT-DEBIAN-UP on the console once multi-user.target is reached
# and then acts on cvirt.run= as the busybox guest's init does (see
# debian-root/cvirt-debian-up).
#
# Needs root (debootstrap chroots and makes device nodes) and the packages
# debootstrap and e2fsprogs. Environment: CVIRT_CACHE, DEBIAN_MIRROR
# (default: the first .../debian source of apt, else deb.debian.org),
# ROOT_MB (image size in MiB, default 1024; the file is sparse).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${CVIRT_CACHE:-$HOME/.cache/cvirt}/debian-root
SUITE=bookworm
INCLUDE=systemd-sysv,udev,iproute2
ROOT_MB=${ROOT_MB:-1024}

die() { echo "mk-debian-root.sh: $*" >&2; exit 1; }

case $#:${1:-} in
0: | 1:--no-debootstrap) ;;
*) die "usage: mk-debian-root.sh [--no-debootstrap]" ;;
esac
case $ROOT_MB in
'' | *[!0-9]*) die "ROOT_MB must be a whole number of MiB, not '$ROOT_MB'" ;;
esac

# The mirror apt already uses, so a machine with a local mirror or proxy
# keeps using it.
find_mirror() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        awk '/^[ \t]*#/ { next }
             /^deb[ \t]/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }
             /^URIs:/ { for (i = 2; i <= NF; i++) print $i }' "$f"
    done | grep -E '^https?://[^ ]*/debian/?$' | head -n 1
}
mirror=${DEBIAN_MIRROR:-$(find_mirror || true)}
mirror=${mirror:-http://deb.debian.org/debian}

# Leftovers of interrupted runs (not of a run still going on).
clean_stale() {
    [ -d "$1" ] && find "$1" -maxdepth 1 -name "*.tmp.*" -mmin +120 -exec rm -rf {} +
    return 0
}

# The base tree does not depend on the mirror: the same suite gives the
# same packages from any of them.
base_key=$(echo "$SUITE $INCLUDE minbase" | sha256sum | cut -c1-16)
base=$CACHE/base/$base_key/base.tar

conf_key=$({ echo "$base_key $ROOT_MB"; cat "$0"
             find "$HERE/debian-root" -type f | LC_ALL=C sort | xargs cat
           } | sha256sum | cut -c1-16)
out=$CACHE/$conf_key/debian.img
if [ -f "$out" ]; then
    echo "$out"
    exit 0
fi

[ "$(id -u)" = 0 ] || die "needs root (debootstrap chroots into the new tree)"
command -v mke2fs >/dev/null || die "missing tool 'mke2fs' (apt-get install e2fsprogs)"

tmp=
cleanup() { [ -z "$tmp" ] || rm -rf "$tmp"; }
trap cleanup EXIT

if [ ! -f "$base" ]; then
    [ "${1:-}" != --no-debootstrap ] || exit 3
    command -v debootstrap >/dev/null ||
        die "missing tool 'debootstrap' (apt-get install debootstrap)"
    mkdir -p "$CACHE/base"
    clean_stale "$CACHE/base"
    tmp=$CACHE/base/$base_key.tmp.$$
    mkdir -p "$tmp"
    echo "mk-debian-root.sh: debootstrap $SUITE from $mirror (a few minutes)" >&2
    start=$SECONDS
    if ! debootstrap --variant=minbase --include="$INCLUDE" --components=main \
        "$SUITE" "$tmp/tree" "$mirror" >"$tmp/log" 2>&1; then
        tail -n 30 "$tmp/log" >&2
        die "debootstrap failed (the end of its log above)"
    fi
    # The downloaded packages are in the tree's apt cache: not needed.
    rm -rf "$tmp"/tree/var/cache/apt/archives/*.deb "$tmp"/tree/var/lib/apt/lists/*_Packages
    tar -C "$tmp/tree" --numeric-owner --xattrs -cf "$tmp/base.tar" .
    rm -rf "$tmp/tree"
    echo "mk-debian-root.sh: debootstrap took $((SECONDS - start))s" >&2
    mv -T "$tmp" "$CACHE/base/$base_key" 2>/dev/null || rm -rf "$tmp"
    tmp=
    [ -f "$base" ] || die "could not create $base"
fi

mkdir -p "$CACHE"
clean_stale "$CACHE"
tmp=$CACHE/$conf_key.tmp.$$
mkdir -p "$tmp/tree"
tar -C "$tmp/tree" --numeric-owner --xattrs -xf "$base"
"$HERE/debian-root/configure.sh" "$tmp/tree"

used_kb=$(du -sk "$tmp/tree" | cut -f1)
# ext4's metadata and the journal, and room for the guest to write.
[ $((used_kb / 1024 + 128)) -le "$ROOT_MB" ] ||
    die "the root needs about $((used_kb / 1024 + 128)) MiB: raise ROOT_MB (now $ROOT_MB)"
if ! mke2fs -q -F -t ext4 -L cvirt-debian -E root_owner=0:0 -d "$tmp/tree" \
    "$tmp/debian.img" "${ROOT_MB}M" >"$tmp/mke2fs.log" 2>&1; then
    cat "$tmp/mke2fs.log" >&2
    die "mke2fs failed"
fi
rm -rf "$tmp/tree" "$tmp/mke2fs.log"
mv -T "$tmp" "$CACHE/$conf_key" 2>/dev/null || rm -rf "$tmp"
tmp=
[ -f "$out" ] || die "could not create $out"
# Images of earlier configurations (200 MB each), unless just made.
find "$CACHE" -mindepth 1 -maxdepth 1 -type d -regextype posix-extended \
    -regex '.*/[0-9a-f]{16}' ! -name "$conf_key" -mmin +60 -exec rm -rf {} +
echo "$out"
