#!/bin/bash
# Crash safety: `cvirt-img bench -w` writes random 4 KiB blocks into a fresh
# qcow2 (allocating as it goes) and records how many requests were flushed;
# it is killed with SIGKILL at a random moment, many times. Afterwards
# `qemu-img check` finds no corruption (leaks allowed, and for lazy
# refcounts the repair qemu-img itself would do) and every flushed write
# is present (or overwritten by a later write).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/img_lib.sh"
cd "$T" || exit 1

verify() {  # IMAGE_RAW PROGRESS SEED COUNT SLOTS
    python3 - "$@" <<'PY'
import struct, sys
raw, prog, seed, count, slots = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
flushed = int(open(prog).read().strip() or 0)
M = (1 << 64) - 1
s = seed
writes = {}                      # slot -> list of request indexes in order
for i in range(count):
    s ^= (s << 13) & M; s ^= s >> 7; s ^= (s << 17) & M
    writes.setdefault(s % slots, []).append(i)
bad = 0
with open(raw, "rb") as f:
    for slot, idx in writes.items():
        f.seek(slot * 4096); blk = f.read(4096)
        done = [i for i in idx if i < flushed]
        ok = set(i for i in idx if i >= flushed)
        if done:
            ok.add(done[-1])
        # Sectors of an unflushed request may be torn; each sector must
        # hold one acceptable write (or zeros if none was flushed).
        for sec in range(8):
            b = blk[sec * 512:(sec + 1) * 512]
            got = struct.unpack("<Q", b[:8])[0]
            if b == bytes(512):
                good = not done
            else:
                good = got in ok and b[8:] == bytes([(got * 7 + 1) & 0xff]) * 504
            if not good:
                bad += 1
                if bad < 5:
                    print("slot %d sector %d: found %d, flushed writes %s" % (slot, sec, got, done[-3:]),
                          file=sys.stderr)
print("flushed=%d checked=%d bad=%d" % (flushed, len(writes), bad))
sys.exit(1 if bad else 0)
PY
}

COUNT=400000
SIZE_MB=32
SLOTS=$((SIZE_MB * 256))
i=0
for opts in "cluster_size=65536" "cluster_size=4096" "cluster_size=512" "lazy_refcounts=on" \
            "compat=0.10" "refcount_bits=1,cluster_size=16384"; do
    for round in 1 2 3; do
        i=$((i + 1))
        seed=$((i * 7919))
        rm -f c.qcow2 p.txt c.raw
        "$IMG" create -q -f qcow2 -o "$opts" c.qcow2 ${SIZE_MB}M
        echo 0 > p.txt
        "$IMG" bench -q -w -c $COUNT -s 4096 --random-seed $seed --flush-interval 64 \
            --progress-file p.txt c.qcow2 &
        pid=$!
        sleep "0.$((RANDOM % 8 + 2))"
        kill -9 $pid 2>/dev/null
        wait $pid 2>/dev/null
        if [[ $opts == *lazy* ]]; then
            # a dirty lazy-refcount image is repaired on open, by qemu too
            qemu-img check -q -r all c.qcow2 >/dev/null 2>&1
        fi
        qemu-img check -q c.qcow2 >/dev/null 2>&1; rc=$?
        check "killed writer #$i ($opts): qemu-img check finds no corruption (status $rc)" \
            [ $rc = 0 -o $rc = 3 ]
        qemu-img convert -O raw c.qcow2 c.raw
        check "killed writer #$i ($opts): flushed writes present ($(cat p.txt) flushed)" \
            verify c.raw p.txt $seed $COUNT $SLOTS
    done
done
tap_done
