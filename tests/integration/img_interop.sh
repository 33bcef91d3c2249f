#!/bin/bash
# cvirt-img against qemu-img: images we write pass `qemu-img check` and
# `qemu-img compare`; images qemu-img writes read back byte-identical
# through us; `info --output=json` agrees on the shared keys.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/img_lib.sh"

mixed_raw "$T/src.raw" 24

INFO_KEYS="virtual-size format cluster-size backing-filename backing-filename-format
  dirty-flag format-specific.type format-specific.data.compat
  format-specific.data.compression-type format-specific.data.lazy-refcounts
  format-specific.data.refcount-bits format-specific.data.corrupt"

# 1. Images we write, over a matrix of options.
for opts in "compat=1.1,cluster_size=65536" "compat=0.10,cluster_size=65536" \
            "compat=1.1,cluster_size=512" "compat=1.1,cluster_size=4096,refcount_bits=1" \
            "compat=1.1,cluster_size=2M,refcount_bits=64" "compat=0.10,cluster_size=16384" \
            "compat=1.1,lazy_refcounts=on,refcount_bits=8" "compat=1.1,compression_type=zstd"; do
    out=$T/ours.qcow2
    rm -f "$out"
    check "convert raw->qcow2 ($opts)" "$IMG" convert -f raw -O qcow2 -o "$opts" "$T/src.raw" "$out"
    check "qemu-img check clean ($opts)" qemu-img check -q "$out"
    check "qemu-img compare equal ($opts)" qemu-img compare -q -f raw -F qcow2 "$T/src.raw" "$out"
    "$IMG" info --output=json "$out" > "$T/a.json"
    qemu-img info --output=json "$out" > "$T/b.json"
    check "info json agrees ($opts)" json_same "$T/a.json" "$T/b.json" $INFO_KEYS
done

# create with preallocation modes, then qemu-img checks the layout.
for p in off metadata falloc full; do
    rm -f "$T/p.qcow2"
    "$IMG" create -q -f qcow2 -o preallocation=$p "$T/p.qcow2" 5M
    check "create preallocation=$p passes qemu-img check" qemu-img check -q "$T/p.qcow2"
    qemu-img map --output=json "$T/p.qcow2" > "$T/qm.json"
    "$IMG" map --output=json "$T/p.qcow2" > "$T/cm.json"
    check "map json equals qemu-img's (preallocation=$p)" \
        json_same "$T/qm.json" "$T/cm.json" start length depth present zero data offset
done

# compressed output (deflate and zstd) is readable by qemu-img.
for ct in zlib zstd; do
    rm -f "$T/c.qcow2" "$T/qc.qcow2"
    check "convert -c ($ct)" "$IMG" convert -c -O qcow2 -o compression_type=$ct "$T/src.raw" "$T/c.qcow2"
    check "qemu-img check clean (-c $ct)" qemu-img check -q "$T/c.qcow2"
    check "qemu-img compare equal (-c $ct)" qemu-img compare -q "$T/src.raw" "$T/c.qcow2"
    qemu-img convert -c -O qcow2 -o compression_type=$ct "$T/src.raw" "$T/qc.qcow2"
    ours=$(stat -c %s "$T/c.qcow2"); theirs=$(stat -c %s "$T/qc.qcow2")
    check "compressed image no larger than qemu-img's ($ct: $ours <= $theirs)" [ "$ours" -le "$theirs" ]
done

# Backing chains we write: -B makes an overlay holding only the difference.
qemu-img convert -O qcow2 "$T/src.raw" "$T/base.qcow2"
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$T/mod.qcow2"
qemu-io -f qcow2 -c "write -P 0xee 0 70000" -c "write -P 0xed 5M 70000" \
    -c "write -z 9M 200k" -c "write -P 0xec 20M 4095" "$T/mod.qcow2" >/dev/null
qemu-img convert -O raw "$T/mod.qcow2" "$T/mod.raw"
check "convert -B base (overlay)" "$IMG" convert -O qcow2 -B base.qcow2 -F qcow2 "$T/mod.qcow2" "$T/over.qcow2"
check "overlay passes qemu-img check" qemu-img check -q "$T/over.qcow2"
check "overlay equals the modified source" qemu-img compare -q "$T/mod.raw" "$T/over.qcow2"
"$IMG" info --output=json --backing-chain "$T/over.qcow2" > "$T/a.json"
qemu-img info --output=json --backing-chain "$T/over.qcow2" > "$T/b.json"
check "info --backing-chain json agrees" json_same "$T/a.json" "$T/b.json" $INFO_KEYS full-backing-filename
ov=$(stat -c %s "$T/over.qcow2")
check "overlay holds only the difference ($ov bytes)" [ "$ov" -lt $((2 << 20)) ]
"$IMG" create -q -f qcow2 -b over.qcow2 -F qcow2 "$T/top.qcow2"
check "three-level chain reads as the modified source" "$IMG" compare -q -f qcow2 -F raw "$T/top.qcow2" "$T/mod.raw"

# 2. Images qemu-img writes read back byte-identical.
for opts in "compat=1.1" "compat=0.10,cluster_size=4096" "cluster_size=512,refcount_bits=4" \
            "cluster_size=2M" "lazy_refcounts=on" "compression_type=zstd"; do
    rm -f "$T/q.qcow2" "$T/q.raw" "$T/c.raw"
    qemu-img convert -O qcow2 -o "$opts" "$T/src.raw" "$T/q.qcow2"
    qemu-io -f qcow2 -c "write -z 1M 3M" -c "write -P 0x77 100k 5k" -c "discard 8M 1M" \
        "$T/q.qcow2" >/dev/null
    qemu-img convert -O raw "$T/q.qcow2" "$T/q.raw"
    check "read qemu-img image ($opts) byte-identical" \
        sh -c "'$IMG' convert -O raw '$T/q.qcow2' '$T/c.raw' && cmp -s '$T/q.raw' '$T/c.raw'"
    check "cvirt-img check of qemu-img image ($opts) is clean" "$IMG" check -q "$T/q.qcow2"
    "$IMG" info --output=json "$T/q.qcow2" > "$T/a.json"
    qemu-img info --output=json "$T/q.qcow2" > "$T/b.json"
    check "info json agrees on qemu-img image ($opts)" json_same "$T/a.json" "$T/b.json" $INFO_KEYS
    qemu-img map --output=json "$T/q.qcow2" > "$T/qm.json"
    "$IMG" map --output=json "$T/q.qcow2" > "$T/cm.json"
    check "map json equals qemu-img's ($opts)" \
        json_same "$T/qm.json" "$T/cm.json" start length depth present zero data offset
done
for ct in zlib zstd; do
    rm -f "$T/qc.qcow2" "$T/c.raw"
    qemu-img convert -c -O qcow2 -o compression_type=$ct "$T/src.raw" "$T/qc.qcow2"
    check "read qemu-img compressed image ($ct)" \
        sh -c "'$IMG' convert -O raw '$T/qc.qcow2' '$T/c.raw' && cmp -s '$T/src.raw' '$T/c.raw'"
done
# qemu-img backing chain and internal snapshot
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$T/qtop.qcow2"
qemu-io -f qcow2 -c "write -P 0x42 2M 200k" "$T/qtop.qcow2" >/dev/null
qemu-img snapshot -c snap1 "$T/qtop.qcow2"
qemu-io -f qcow2 -c "write -P 0x43 2M 100k" "$T/qtop.qcow2" >/dev/null
qemu-img convert -O raw "$T/qtop.qcow2" "$T/q.raw"
rm -f "$T/c.raw"
check "read qemu-img chain with a snapshot byte-identical" \
    sh -c "'$IMG' convert -O raw '$T/qtop.qcow2' '$T/c.raw' && cmp -s '$T/q.raw' '$T/c.raw'"
check "cvirt-img check of an image with a snapshot is clean" "$IMG" check -q "$T/qtop.qcow2"
"$IMG" info --output=json "$T/qtop.qcow2" > "$T/a.json"
qemu-img info --output=json "$T/qtop.qcow2" > "$T/b.json"
check "info json agrees with snapshots" json_same "$T/a.json" "$T/b.json" $INFO_KEYS snapshots
# writing into a snapshotted qemu-img image copies on write correctly
check "write into snapshotted image (convert -n)" \
    "$IMG" convert -n -f raw -O qcow2 "$T/mod.raw" "$T/qtop.qcow2"
check "after our writes qemu-img check is clean" qemu-img check -q "$T/qtop.qcow2"
check "after our writes the image equals the written data" \
    qemu-img compare -q "$T/mod.raw" "$T/qtop.qcow2"

# 3. resize and compare, judged by qemu-img.
"$IMG" create -q -f qcow2 -o cluster_size=512 "$T/r.qcow2" 1M
check "resize +1G" "$IMG" resize -q "$T/r.qcow2" +1G
check "resized size as qemu-img sees it" \
    sh -c "qemu-img info --output=json '$T/r.qcow2' | grep -q '\"virtual-size\": 1074790400'"
check "resized image passes qemu-img check" qemu-img check -q "$T/r.qcow2"
check "shrink without --shrink fails" bash -c "! '$IMG' resize -q '$T/r.qcow2' 512K 2>/dev/null"
check "resize --shrink" "$IMG" resize -q --shrink "$T/r.qcow2" 512K
check "shrunk image passes qemu-img check" qemu-img check -q "$T/r.qcow2"
qemu-img compare -q "$T/src.raw" "$T/mod.raw"; q=$?
"$IMG" compare -q "$T/src.raw" "$T/mod.raw"; c=$?
check "compare exit status on differing images matches qemu-img ($c = $q)" [ "$c" = "$q" ]
q=$(qemu-img compare "$T/src.raw" "$T/mod.raw")
c=$("$IMG" compare "$T/src.raw" "$T/mod.raw")
check "compare reports the same first mismatch ($c)" [ "$c" = "$q" ]
tap_done
