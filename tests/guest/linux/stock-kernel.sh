#!/bin/bash
# Fetches Debian's stock kernel, the package linux-image-amd64 depends on,
# into the cache: downloaded and unpacked, never installed. Prints the path
# of its vmlinuz (a bzImage) as the last line. For hosts with VMX or SVM;
# on hosts whose KVM emulates guest kernel mode it does not boot.
set -euo pipefail
cache=${CVIRT_CACHE:-$HOME/.cache/cvirt}/stock

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
[ -n "$pkg" ] || { echo "stock-kernel: cannot find linux-image-amd64's kernel package" >&2; exit 1; }

dir=$cache/$pkg
if [ ! -f "$dir/vmlinuz" ]; then
    mkdir -p "$cache"
    tmp=$(mktemp -d "$cache/.fetch-XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$pkg" >/dev/null)
    dpkg-deb -x "$tmp"/*.deb "$tmp/pkg"
    mkdir -p "$tmp/out"
    cp "$tmp"/pkg/boot/vmlinuz-* "$tmp/out/vmlinuz"
    rm -rf "$dir"
    mv "$tmp/out" "$dir"
fi
echo "$dir/vmlinuz"
