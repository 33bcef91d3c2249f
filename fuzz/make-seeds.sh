#!/bin/bash
# Writes a seed corpus of small qcow2 images (made by qemu-img) into DIR,
# or with TARGET the seeds of that fuzz target (see seeds_for below).
#   fuzz/make-seeds.sh DIR [TARGET]
set -eu
out=${1:?usage: make-seeds.sh DIR [TARGET]}
mkdir -p "$out"
if [ -n "${2:-}" ]; then
    # shellcheck source=fuzz/seeds-proto.sh
    source "$(dirname "$0")/seeds-proto.sh"
    seeds_for "$2" "$out"
    exit 0
fi
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
i=0
for opts in "cluster_size=512" "cluster_size=512,compat=0.10" "cluster_size=512,refcount_bits=1" \
            "cluster_size=1024,lazy_refcounts=on" "cluster_size=512,compression_type=zstd"; do
    qemu-img create -q -f qcow2 -o "$opts" "$t/a.qcow2" 256K
    qemu-io -f qcow2 -c "write -P 0x11 0 3k" -c "write -z 8k 4k" -c "write -P 7 100k 1k" \
        "$t/a.qcow2" >/dev/null
    cp "$t/a.qcow2" "$out/seed$((i++))"
    qemu-img convert -c -O qcow2 -o "$opts" "$t/a.qcow2" "$t/c.qcow2"
    cp "$t/c.qcow2" "$out/seed$((i++))"
    # 1-bit refcounts cannot hold a snapshot's second reference
    if qemu-img snapshot -c s "$t/a.qcow2" 2>/dev/null; then
        cp "$t/a.qcow2" "$out/seed$((i++))"
    fi
done
echo "$i seeds in $out"
