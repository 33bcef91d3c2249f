#!/bin/bash
# Crash safety of qcow2 behind cvirt-vmm's virtio-blk: the kit's blk_writer
# writes pseudo-random sectors through the device, flushing every K writes
# and printing "flushed N" after each flush. cvirt-vmm is killed with
# SIGKILL at a random moment after the first such line, several times per
# image, each run starting from the image the last one left with a new
# seed. After every kill `qemu-img check` finds no corruption (leaks
# allowed; a lazy-refcount image gets the repair qemu itself does on open)
# and the image, read by qemu-img, holds every write the last "flushed"
# line covers: per sector the last covered write, or a later one of that
# run, or (if no covered write touched it) what the previous state had or
# a later write of the run. The previous state starts as zeros (or the
# backing file) and becomes what the image held after each verified kill.
# Runs alternate one write in flight and four. The writer and the check are
# proven on QEMU first, and the check is shown to notice a lost write.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/img_lib.sh"
source "$CVIRT_SRC/tests/guest/kit/cases.sh"
cd "$T" || exit 1

SIZE_MB=32
K=16
KILLS=4

# verify REF NEW SEED FLUSHED [lose]: NEW (raw) is REF after a run of
# blk_writer with SEED of which the first FLUSHED writes were flushed. With
# "lose" the last flushed write is taken out of NEW first (its sector gets
# REF's content back), which the check must notice.
verify() {
    python3 - "$@" <<'PY'
import struct, sys
ref_path, new_path, seed, flushed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ref, new = open(ref_path, "rb").read(), bytearray(open(new_path, "rb").read())
if len(ref) != len(new):
    sys.exit("size %d, expected %d" % (len(new), len(ref)))
cap = len(ref) // 512
M = 0xffffffff
seq, r = [], seed
def extend(n):
    global r
    while len(seq) < n:
        r ^= (r << 13) & M; r ^= r >> 17; r ^= (r << 5) & M
        seq.append(r % cap)
def content(i, sector):
    h = (seed * 0x85ebca6b ^ i * 0xc2b2ae35 ^ sector * 0x27d4eb2f) & M
    h ^= h >> 15; h = (h * 0x2c1b3c6d) & M; h ^= h >> 12
    words = [seed, i, sector] + [h ^ ((j * 0x9e3779b9) & M) for j in range(3, 128)]
    return struct.pack("<128I", *words)
extend(flushed)
if len(sys.argv) > 5 and sys.argv[5] == "lose" and flushed:
    s = seq[flushed - 1]
    new[s * 512:(s + 1) * 512] = ref[s * 512:(s + 1) * 512]
last = {}                       # sector -> last flushed write
for i, s in enumerate(seq):
    last[s] = i
bad = later = 0
def complain(msg):
    global bad
    bad += 1
    if bad <= 5:
        print("# " + msg)
for s in range(cap):
    got = new[s * 512:(s + 1) * 512]
    want = last.get(s)
    if want is not None and got == content(want, s):
        continue
    if want is None and got == ref[s * 512:(s + 1) * 512]:
        continue
    # Otherwise only a later, unflushed write of this run to this sector.
    gseed, gi, gsec = struct.unpack("<3I", got[:12])
    if gseed == seed and gsec == s and gi >= flushed and gi < flushed + 10000000:
        extend(gi + 1)
        if seq[gi] == s and got == content(gi, s):
            later += 1
            continue
    complain("sector %d: holds (seed %d, write %d, sector %d), last flushed write %s"
             % (s, gseed, gi, gsec, want))
print("# %d flushed writes over %d sectors, %d sectors hold later writes, %d bad"
      % (flushed, len(last), later, bad))
sys.exit(1 if bad else 0)
PY
}

# run_writer IMAGE SEED DEPTH LOG: boots blk_writer on IMAGE (count=0) and kills
# it with SIGKILL at a random moment after the first "flushed" line.
# Fails when the machine stopped on its own or never flushed.
run_writer() {
    local img=$1 seed=$2 depth=$3 log=$4 pid t
    : >"$log"
    "$VMM" --kernel "$KIT/blk_writer.elf" --memory 64M --cpus 1 --no-reboot \
        --append "cpus=1 seed=$seed count=0 k=$K depth=$depth" --disk "$img,format=qcow2" \
        >"$log" 2>"$log.err" </dev/null &
    pid=$!
    for ((t = 0; t < 300; t++)); do
        grep -q '^flushed ' "$log" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    sleep "$((RANDOM % 2)).$((RANDOM % 10))$((RANDOM % 10))"
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid"
        echo "# cvirt-vmm stopped on its own (status $?) before the kill"
        sed 's/^/#   /' "$log" "$log.err" | tail -n 8
        return 1
    fi
    kill -9 "$pid"
    wait "$pid" 2>/dev/null
    grep -q '^flushed ' "$log" || { echo "# no flushed line within 15 s"; return 1; }
}

not() { ! "$@" >/dev/null; }

# last_flushed LOG: N of the last complete "flushed N" line (a line the
# kill cut short, without its newline, does not count).
last_flushed() {
    local drop=cat
    [ -n "$(tail -c 1 "$1")" ] && drop="sed \$d"
    $drop "$1" | tr -d '\r' | grep -E '^flushed [0-9]+$' | tail -n 1 | cut -d' ' -f2
}

# crash_series NAME CREATE-OPTS [backing]: a fresh image, KILLS killed runs.
crash_series() {
    local name=$1 opts=$2 backing=${3:-} n seed rc flushed depth
    rm -f c.qcow2 chk.qcow2 ref.raw new.raw base.raw
    if [ -n "$backing" ]; then
        mixed_raw base.raw "$SIZE_MB"
        cp base.raw ref.raw
        "$IMG" create -q -f qcow2 -o "$opts" -b "$T/base.raw" -F raw c.qcow2 ||
            { tap_fail "$name: cvirt-img create"; return; }
    else
        truncate -s "${SIZE_MB}M" ref.raw
        "$IMG" create -q -f qcow2 -o "$opts" c.qcow2 "${SIZE_MB}M" ||
            { tap_fail "$name: cvirt-img create"; return; }
    fi
    local base_sum=""
    [ -n "$backing" ] && base_sum=$(md5sum <base.raw)
    for ((n = 1; n <= KILLS; n++)); do
        seed=$(((RANDOM << 15 | RANDOM) % 999999999 + 1))   # the kit parses up to 1e9
        # one write in flight, then four (the device's workers in parallel)
        depth=$((n % 2 ? 1 : 4))
        if ! run_writer c.qcow2 "$seed" "$depth" w.log; then
            tap_fail "$name kill #$n (depth $depth): the writer ran until killed after a flush"
            return
        fi
        flushed=$(last_flushed w.log)
        flushed=${flushed:-0}
        # The checks look at a copy: the next run must start from the image
        # exactly as the kill left it (dirty, for lazy refcounts).
        cp c.qcow2 chk.qcow2
        if [[ $opts == *lazy_refcounts=on* ]]; then
            # a dirty lazy-refcount image is repaired on open, by qemu too
            qemu-img check -q -r all chk.qcow2 >/dev/null 2>&1
        fi
        qemu-img check -q chk.qcow2 >check.out 2>&1
        rc=$?
        check "$name kill #$n (depth $depth): qemu-img check finds no corruption (status $rc)" [ $rc = 0 -o $rc = 3 ]
        [ $rc = 0 ] || [ $rc = 3 ] || { sed 's/^/#   /' check.out | head -n 10; return; }
        if ! qemu-img convert -f qcow2 -O raw chk.qcow2 new.raw; then
            tap_fail "$name kill #$n: qemu-img convert"
            return
        fi
        if ! verify ref.raw new.raw "$seed" "$flushed"; then
            tap_fail "$name kill #$n (depth $depth): every write up to the last flush is present ($flushed flushed)"
            return
        fi
        tap_ok "$name kill #$n (depth $depth): every write up to the last flush is present ($flushed flushed)"
        if [ "$n" = 1 ]; then
            check "$name: the check notices a lost flushed write" \
                not verify ref.raw new.raw "$seed" "$flushed" lose
        fi
        mv new.raw ref.raw
    done
    if [ -n "$backing" ]; then
        check "$name: the raw backing file is unchanged" [ "$base_sum" = "$(md5sum <base.raw)" ]
    fi
}

# The writer and the check proven on QEMU first: a run of COUNT writes that
# ends on its own must leave all of them on the disk.
oracle_run() {
    local count=200 seed=$((RANDOM + 1)) flushed
    rm -f q.qcow2 ref.raw new.raw
    truncate -s "${SIZE_MB}M" ref.raw
    qemu-img create -q -f qcow2 q.qcow2 "${SIZE_MB}M"
    CVIRT_KIT_QEMU_ARGS="-drive if=none,id=d0,file=$T/q.qcow2,format=qcow2 -device virtio-blk-pci,disable-legacy=on,drive=d0" \
        kit_run qemu "$KIT/blk_writer.elf" 1 "seed=$seed count=$count k=$K depth=4"
    echo "$KIT_CONSOLE" >q.log
    flushed=$(last_flushed q.log)
    if [ "$KIT_VERDICT" != ok ] || grep -q '^not ok' <<<"$KIT_CASES" || [ "$flushed" != "$count" ]; then
        tap_fail "QEMU: blk_writer runs $count writes and flushes them # ${KIT_WHY:-last flushed ${flushed:-none}}"
        sed 's/^/#   /' <<<"$KIT_CONSOLE" | tail -n 5
        return
    fi
    tap_ok "QEMU: blk_writer runs $count writes and flushes them"
    qemu-img convert -f qcow2 -O raw q.qcow2 new.raw &&
        check "QEMU: the check finds all $count writes" verify ref.raw new.raw "$seed" "$count"
}

main() {
    have_kvm || return
    [ -x "$VMM" ] || { tap_fail "cvirt-vmm built at $VMM"; return; }
    if ! kit_build "$KIT" || [ ! -f "$KIT/blk_writer.elf" ]; then
        tap_fail "building the guest test kit with blk_writer (see stderr)"
        return
    fi
    if ! command -v "${CVIRT_KIT_QEMU:-qemu-system-x86_64}" >/dev/null; then
        tap_fail "qemu-system-x86_64 is installed (the oracle for the writer)"
        return
    fi
    oracle_run
    crash_series "qcow2 64K clusters" "cluster_size=65536"
    crash_series "qcow2 4K clusters" "cluster_size=4096"
    crash_series "qcow2 512-byte clusters" "cluster_size=512"
    crash_series "qcow2 lazy refcounts" "lazy_refcounts=on"
    crash_series "qcow2 overlay on raw" "cluster_size=65536" backing
}

main
tap_done
