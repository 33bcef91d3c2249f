#!/bin/bash
# Golden outputs of cvirt-img info, check and map, and the error message
# for each class of corrupt image. REGEN=1 rewrites tests/data/img/*.out
# for review. Each case's image is built here, deterministically.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/img_lib.sh"
DATA=$CVIRT_SRC/tests/data/img
cd "$T" || exit 1

# golden NAME CMD...: stdout+stderr and exit status of CMD against NAME.out.
# "disk size" / "actual-size" depend on the host file system: masked.
golden() {
    local name=$1; shift
    local out
    out=$("$@" 2>&1; echo "[exit $?]")
    out=$(printf '%s\n' "$out" | sed -E 's/^(disk size: ).*/\1SIZE/; s/("actual-size": )[0-9]+/\1SIZE/')
    if [ "${REGEN:-0}" = 1 ]; then
        printf '%s\n' "$out" > "$DATA/$name.out"
        tap_ok "$name (regenerated)"
    elif [ ! -f "$DATA/$name.out" ]; then
        tap_fail "$name: missing $DATA/$name.out (run with REGEN=1)"
    elif diff -u "$DATA/$name.out" <(printf '%s\n' "$out") >&2; then
        tap_ok "$name"
    else
        tap_fail "$name differs from $name.out"
    fi
}

# poke FILE OFFSET HEXBYTES: overwrite bytes in place.
poke() { python3 -c "import sys; f=open(sys.argv[1],'r+b'); f.seek(int(sys.argv[2],0)); f.write(bytes.fromhex(sys.argv[3]))" "$@"; }

python3 - <<'PY'
with open("data.raw", "wb") as f:
    f.truncate(8 << 20)
    f.write(b"\x11" * (1 << 20))
    f.seek(3 << 20); f.write(bytes(range(256)) * 1024)
    f.seek((6 << 20) + 4096); f.write(b"tail" * 1024)
PY
"$IMG" create -q -f qcow2 empty.qcow2 64M
"$IMG" create -q -f qcow2 -o compat=0.10,cluster_size=4096 v2.qcow2 1G
"$IMG" create -q -f qcow2 -o lazy_refcounts=on,compression_type=zstd,refcount_bits=8 lazy.qcow2 10G
"$IMG" convert -O qcow2 data.raw data.qcow2
"$IMG" create -q -f qcow2 -b data.qcow2 -F qcow2 over.qcow2

golden info_empty "$IMG" info empty.qcow2
golden info_v2 "$IMG" info v2.qcow2
golden info_lazy_json "$IMG" info --output=json lazy.qcow2
golden info_chain "$IMG" info --backing-chain over.qcow2
golden info_chain_json "$IMG" info --output=json --backing-chain over.qcow2
golden check_clean "$IMG" check data.qcow2
golden check_clean_json "$IMG" check --output=json data.qcow2
golden map_human "$IMG" map data.qcow2
golden map_json "$IMG" map --output=json over.qcow2

# Leaked cluster: refcount 1 on a cluster nothing uses (inside the file).
cp data.qcow2 leak.qcow2
size=$(stat -c %s leak.qcow2)
truncate -s $((size + 65536)) leak.qcow2
poke leak.qcow2 $((0x20000 + 2 * size / 65536)) 0001
golden check_leak "$IMG" check leak.qcow2
golden check_leak_repair "$IMG" check -r leaks leak.qcow2
check "repaired leak passes qemu-img check" qemu-img check -q leak.qcow2

# Refcount zero on a used cluster (the first data cluster, 0x50000).
cp data.qcow2 rc0.qcow2
poke rc0.qcow2 $((0x20000 + 2 * 5)) 0000
golden corrupt_refcount_zero "$IMG" check rc0.qcow2
golden corrupt_refcount_zero_repair "$IMG" check -r all rc0.qcow2
check "repaired refcount passes qemu-img check" qemu-img check -q rc0.qcow2
check "repaired image still holds the data" qemu-img compare -q data.raw rc0.qcow2

# Header classes: each must be refused with one clear line.
cp empty.qcow2 magic.qcow2; poke magic.qcow2 0 51464958
golden corrupt_bad_magic "$IMG" info -f qcow2 magic.qcow2
cp empty.qcow2 hdrlen.qcow2; poke hdrlen.qcow2 100 00010008
golden corrupt_header_beyond_cluster "$IMG" info hdrlen.qcow2
cp empty.qcow2 l1out.qcow2; poke l1out.qcow2 40 0000000100000000
golden corrupt_table_outside_file "$IMG" info l1out.qcow2
cp empty.qcow2 overlap.qcow2; poke overlap.qcow2 40 0000000000010000
golden corrupt_overlapping_metadata "$IMG" info overlap.qcow2
cp empty.qcow2 incompat.qcow2; poke incompat.qcow2 72 0000000000000020
golden corrupt_unknown_incompatible "$IMG" info incompat.qcow2
cp data.qcow2 marked.qcow2; poke marked.qcow2 72 0000000000000002
golden corrupt_bit_refuses_write "$IMG" resize -f qcow2 marked.qcow2 +1M
tap_done
