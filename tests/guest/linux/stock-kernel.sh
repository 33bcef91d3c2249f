#!/bin/bash
# Fetches Debian's stock kernel, the package linux-image-amd64 depends on,
# into the cache: downloaded and unpacked, never installed. Prints the path
# of its vmlinuz (a bzImage) as the last line. For hosts with VMX or SVM;
# on hosts whose KVM emulates guest kernel mode it does not boot.
#
# Beside vmlinuz, in ${CVIRT_CACHE:-~/.cache/cvirt}/stock/<package>/:
#   config            the package's kernel configuration
#   modules/*.ko      the modules a root on a virtio disk needs, with all
#                     they depend on (resolved with depmod from the package)
#   modules/order     their file names, one a line, in an order insmod can
#                     load them (each after what it needs)
#   modules/wanted    the list below, so that a change of it fetches again
# Debian builds virtio_pci, virtio_blk and ext4 as modules, so without them
# this kernel finds no disk. mk-stock-initramfs.sh puts them in its archive.
set -euo pipefail
cache=${CVIRT_CACHE:-$HOME/.cache/cvirt}/stock

# What the root needs. crc32c_generic: ext4 and jbd2 ask the crypto API for
# "crc32c" (a soft dependency modules.dep does not list) to check metadata
# checksums, and plain insmod has no modprobe to find it. autofs4: systemd
# asks for it at start (for its automount points) and complains without it.
WANTED="virtio_pci virtio_blk crc32c_generic ext4 virtio_net virtio_console
virtio-rng virtio_balloon autofs4"

die() { echo "stock-kernel: $*" >&2; exit 1; }

find_pkg() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}
pkg=$(find_pkg)
if [ -z "$pkg" ]; then
    # A fresh machine has empty package lists.
    apt-get update -qq >/dev/null 2>&1 || sudo apt-get update -qq >/dev/null
    pkg=$(find_pkg)
fi
[ -n "$pkg" ] || die "cannot find linux-image-amd64's kernel package"

# collect_modules TREE: copies the wanted modules and their dependencies
# from the unpacked package TREE into TREE/../out/modules and writes order.
collect_modules() {
    local tree=$1 outdir=$1/../out/modules kver moddir depmod m line deps i
    kver=$(basename "$(echo "$tree"/lib/modules/*)")
    moddir=$tree/lib/modules/$kver
    [ -d "$moddir/kernel" ] || die "no modules in $pkg"
    # The package ships no modules.dep: dpkg's postinst makes it.
    depmod=$(command -v depmod || echo /sbin/depmod)
    [ -x "$depmod" ] || die "missing tool 'depmod' (apt-get install kmod)"
    "$depmod" -b "$tree" "$kver" || die "depmod failed on $pkg"
    mkdir -p "$outdir"
    local -A seen=()
    local order=()
    # add PATH: one module, stored as plain .ko: busybox insmod passes the
    # file to the kernel as it is, and only kernels with MODULE_DECOMPRESS
    # take compressed ones (Debian 12 does not compress; later releases do).
    add() {
        local path=$1 name
        name=$(basename "$path")
        name=${name%.ko*}.ko
        [ -n "${seen[$name]:-}" ] && return 0
        seen[$name]=1
        case $path in
        *.ko) cp "$moddir/$path" "$outdir/$name" ;;
        *.ko.xz) xz -dc "$moddir/$path" >"$outdir/$name" ;;
        *.ko.zst) zstd -q -dc "$moddir/$path" >"$outdir/$name" ;;
        *.ko.gz) gzip -dc "$moddir/$path" >"$outdir/$name" ;;
        *) die "$path: unknown module compression" ;;
        esac || die "could not unpack $path"
        order+=("$name")
    }
    for m in $WANTED; do
        line=$(grep -E "(^|/)$m\.ko(\.[a-z]+)?:" "$moddir/modules.dep" || true)
        if [ -z "$line" ]; then
            # Built in: nothing to load.
            grep -qE "(^|/)$m\.ko\$" "$moddir/modules.builtin" && continue
            die "$pkg has no module $m"
        fi
        # modules.dep lists every dependency, nearest first: load from the end.
        read -r -a deps <<<"${line#*:}"
        for ((i = ${#deps[@]} - 1; i >= 0; i--)); do
            add "${deps[$i]}"
        done
        add "${line%%:*}"
    done
    printf '%s\n' "${order[@]}" >"$outdir/order"
    echo "$WANTED" >"$outdir/wanted"
}

dir=$cache/$pkg
# A cache from before the modules were kept has only vmlinuz: fetch again.
if [ ! -f "$dir/vmlinuz" ] || [ ! -f "$dir/modules/order" ] ||
    [ "$(cat "$dir/modules/wanted" 2>/dev/null)" != "$WANTED" ]; then
    mkdir -p "$cache"
    tmp=$(mktemp -d "$cache/.fetch-XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$pkg" >/dev/null)
    dpkg-deb -x "$tmp"/*.deb "$tmp/pkg"
    mkdir -p "$tmp/out"
    cp "$tmp"/pkg/boot/vmlinuz-* "$tmp/out/vmlinuz"
    cp "$tmp"/pkg/boot/config-* "$tmp/out/config"
    collect_modules "$tmp/pkg"
    rm -rf "$dir"
    mv "$tmp/out" "$dir"
fi
echo "$dir/vmlinuz"
