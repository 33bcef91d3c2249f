#!/bin/bash
# Builds the test guest kernel from Debian's linux-source-6.1 with the
# fragment kernel.config (on top of tinyconfig) and the patches in patches/.
#
#   build-kernel.sh            prints the output directory as its last line
#
# Output: $CVIRT_CACHE/linux/<key>/{vmlinux,bzImage,config}, where <key>
# hashes everything the result depends on (source package version, compiler,
# config fragment, patches and this script): a change rebuilds, an unchanged
# tree reuses the cache. Quiet unless it fails; then the build log's tail
# goes to stderr.
#
# The patched source tree (tree-<srckey>) and the object tree (obj-<srckey>)
# stay in the cache so a config change builds incrementally. The tree is
# unpacked into a temporary directory and renamed when complete, the kernel
# files are copied to <key>.tmp.* and renamed when complete: an interrupted
# run leaves nothing that a later run mistakes for a finished result.
#
# Environment: CVIRT_CACHE (default ~/.cache/cvirt), LINUX_SOURCE_TAR
# (default: the file installed by the linux-source-6.1 package), JOBS
# (default 2).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${CVIRT_CACHE:-$HOME/.cache/cvirt}/linux
SRC_PKG=linux-source-6.1
SRC_TAR=${LINUX_SOURCE_TAR:-/usr/src/$SRC_PKG.tar.xz}
JOBS=${JOBS:-2}

die() { echo "build-kernel.sh: $*" >&2; exit 1; }

for tool in make gcc flex bison bc lz4 perl xz sha256sum patch; do
    command -v "$tool" >/dev/null || die "missing tool '$tool' (install it with apt-get)"
done
[ -r "$SRC_TAR" ] || die "no kernel source at $SRC_TAR (apt-get install $SRC_PKG)"
[ -e /usr/include/libelf.h ] || die "missing libelf.h (apt-get install libelf-dev)"

pkg_version=$(dpkg-query -W -f='${Version}' "$SRC_PKG" 2>/dev/null || true)
[ -n "$pkg_version" ] || pkg_version=$(stat -c '%s-%Y' "$SRC_TAR")

mapfile -t patches < <(find "$HERE/patches" -maxdepth 1 -name '*.patch' | LC_ALL=C sort)

# srckey: what the patched tree depends on; key: what the kernel depends on.
srckey=$({ echo "$SRC_PKG $pkg_version"
           for p in "${patches[@]}"; do basename "$p"; cat "$p"; done
         } | sha256sum | cut -c1-16)
key=$({ echo "$srckey"; gcc --version | head -1
        cat "$HERE/kernel.config" "$HERE/build-kernel.sh"
      } | sha256sum | cut -c1-16)

out=$CACHE/$key
if [ -f "$out/vmlinux" ] && [ -f "$out/bzImage" ]; then
    echo "$out"
    exit 0
fi

mkdir -p "$CACHE"
# One build at a time per cache: a second caller waits, then reuses.
exec 9>"$CACHE/.lock"
flock 9
if [ -f "$out/vmlinux" ] && [ -f "$out/bzImage" ]; then
    echo "$out"
    exit 0
fi

# Leftovers of interrupted runs (we hold the lock, nobody else is working).
rm -rf "$CACHE"/*.tmp.* "$CACHE"/build-*.log

log=$CACHE/build-$key.log
: >"$log"
fail() {
    echo "build-kernel.sh: $* (log: $log)" >&2
    tail -n 40 "$log" >&2
    exit 1
}

tree=$CACHE/tree-$srckey
obj=$CACHE/obj-$srckey
if [ ! -d "$tree" ]; then
    # A new source tree makes the old trees and object trees useless.
    rm -rf "$CACHE"/tree-* "$CACHE"/obj-*
    tmp=$CACHE/tree-$srckey.tmp.$$
    mkdir -p "$tmp"
    tar -xf "$SRC_TAR" -C "$tmp" --strip-components=1 >>"$log" 2>&1 \
        || fail "cannot unpack $SRC_TAR"
    for p in "${patches[@]}"; do
        echo "applying $(basename "$p")" >>"$log"
        patch -d "$tmp" -p1 --forward --batch <"$p" >>"$log" 2>&1 \
            || fail "patch $(basename "$p") does not apply"
    done
    mv "$tmp" "$tree"
fi

kmake() { nice -n 10 make -C "$tree" O="$obj" "$@" >>"$log" 2>&1; }

configure() {
    mkdir -p "$obj"
    kmake tinyconfig || return 1
    (cd "$obj" && "$tree/scripts/kconfig/merge_config.sh" -m .config \
        "$HERE/kernel.config") >>"$log" 2>&1 || return 1
    kmake olddefconfig || return 1
}

configure || fail "configuring the kernel failed"

# A symbol the fragment asks for but Kconfig refused (a missing dependency)
# would silently give a different kernel: refuse instead.
bad=0
while IFS= read -r line; do
    case $line in
    CONFIG_*=*) want=$line ;;
    "# CONFIG_"*" is not set") want=$line ;;
    *) continue ;;
    esac
    sym=${want#\# }; sym=${sym%%[= ]*}
    have=$(grep -E "^($sym=|# $sym is not set)" "$obj/.config" || true)
    if [ "$want" != "$have" ] && ! { [ -z "$have" ] && [[ $want == "# "* ]]; }; then
        echo "config: wanted '$want', got '${have:-nothing}'" >>"$log"
        bad=1
    fi
done <"$HERE/kernel.config"
[ "$bad" = 0 ] || fail "kernel.config asks for values Kconfig did not accept"

if ! kmake -j"$JOBS" bzImage; then
    # An object tree left by an interrupted build may hold a truncated
    # file that make believes is up to date: retry once from scratch.
    echo "retrying from an empty object tree" >>"$log"
    rm -rf "$obj"
    configure || fail "configuring the kernel failed"
    kmake -j"$JOBS" bzImage || fail "kernel build failed"
fi

tmp=$CACHE/$key.tmp.$$
mkdir -p "$tmp"
cp "$obj/vmlinux" "$obj/arch/x86/boot/bzImage" "$tmp/"
cp "$obj/.config" "$tmp/config"
cp "$obj/System.map" "$tmp/System.map"
mv "$tmp" "$out"
rm -f "$log"
# Keep the three newest kernels (other checkouts may still use one).
ls -dt "$CACHE"/[0-9a-f]*[0-9a-f] 2>/dev/null | grep -E '/[0-9a-f]{16}$' |
    tail -n +4 | xargs -r rm -rf
echo "$out"
