#!/bin/bash
# commit, rebase, amend, measure and bench, each judged by qemu-img.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/img_lib.sh"
cd "$T" || exit 1

mixed_raw base.raw 8
qemu-img convert -O qcow2 base.raw base.qcow2
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
qemu-io -f qcow2 -c "write -P 0x31 1M 300k" -c "write -z 4M 1M" -c "write -P 0x32 7M 64k" \
    top.qcow2 >/dev/null
qemu-img convert -O raw top.qcow2 top.raw

# commit: the base takes the top's data; the top becomes empty.
cp base.qcow2 base0.qcow2
check "commit" "$IMG" commit -q top.qcow2
check "committed base passes qemu-img check" qemu-img check -q base.qcow2
check "committed base holds the top's data" qemu-img compare -q top.raw base.qcow2
check "top still reads the same" qemu-img compare -q top.raw top.qcow2
check "top is empty after commit" \
    sh -c "qemu-img map --output=json top.qcow2 | grep -q '\"depth\": 0' && exit 1 || exit 0"
check "top passes qemu-img check" qemu-img check -q top.qcow2

# rebase (safe): move the top onto a different base; contents stay.
cp base0.qcow2 base.qcow2
rm -f top.qcow2; qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
qemu-io -f qcow2 -c "write -P 0x31 1M 300k" top.qcow2 >/dev/null
qemu-img convert -O raw top.qcow2 top.raw
mixed_raw other.raw 8
python3 -c "
f = open('other.raw', 'r+b'); f.seek(0); f.write(b'\x44' * 4096)"
qemu-img convert -O qcow2 other.raw other.qcow2
check "rebase -b other" "$IMG" rebase -b other.qcow2 -F qcow2 top.qcow2
check "rebased top passes qemu-img check" qemu-img check -q top.qcow2
check "rebased top reads the same" qemu-img compare -q top.raw top.qcow2
check "backing file recorded" \
    sh -c "qemu-img info --output=json top.qcow2 | grep -q '\"backing-filename\": \"other.qcow2\"'"
check "rebase -u back (unsafe: name only)" "$IMG" rebase -u -b base.qcow2 -F qcow2 top.qcow2
check "unsafe rebase reads as before" qemu-img compare -q top.raw top.qcow2
check "rebase -b '' (flatten)" "$IMG" rebase -b "" top.qcow2
check "flattened top has no backing" \
    sh -c "! qemu-img info top.qcow2 | grep -q 'backing file'"
check "flattened top reads the same" qemu-img compare -q top.raw top.qcow2

# amend: compat both ways, lazy refcounts on and off.
rm -f a.qcow2
qemu-img convert -O qcow2 top.raw a.qcow2
qemu-io -f qcow2 -c "write -z 2M 1M" a.qcow2 >/dev/null
qemu-img convert -O raw a.qcow2 a.raw
for o in compat=0.10 compat=1.1 lazy_refcounts=on lazy_refcounts=off; do
    check "amend -o $o" "$IMG" amend -o $o a.qcow2
    check "after amend $o: qemu-img check" qemu-img check -q a.qcow2
    check "after amend $o: data unchanged" qemu-img compare -q -F qcow2 -f raw a.raw a.qcow2
done
check "amend result compat/lazy as qemu-img sees it" \
    sh -c "qemu-img info --output=json a.qcow2 | grep -q '\"compat\": \"1.1\"' &&
           qemu-img info --output=json a.qcow2 | grep -q '\"lazy-refcounts\": false'"

# measure: the same numbers as qemu-img's.
for args in "--size 1G" "--size 100M -o cluster_size=512" "--size 10T -o cluster_size=2M" \
            "--size 3G -o refcount_bits=64" "top.raw" "base.qcow2"; do
    check "measure -O qcow2 $args" diff <("$IMG" measure -O qcow2 $args) <(qemu-img measure -O qcow2 $args)
done
check "measure -O raw --size 5G" diff <("$IMG" measure -O raw --size 5G) <(qemu-img measure -O raw --size 5G)

# bench: writes land where qemu-img bench puts them.
"$IMG" create -q -f qcow2 b1.qcow2 16M
qemu-img create -q -f qcow2 b2.qcow2 16M
check "bench -w" "$IMG" bench -q -w -c 3000 -s 4096 -S 8192 --pattern 0x5a b1.qcow2
qemu-img bench -q -w -c 3000 -s 4096 -S 8192 --pattern 0x5a b2.qcow2 >/dev/null
check "bench -w image passes qemu-img check" qemu-img check -q b1.qcow2
check "bench -w wrote what qemu-img bench writes" qemu-img compare -q b1.qcow2 b2.qcow2
check "bench (read)" "$IMG" bench -q -c 3000 b1.qcow2
tap_done
