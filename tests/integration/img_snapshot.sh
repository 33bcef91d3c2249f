#!/bin/bash
# Internal snapshots made by cvirt-img, judged by qemu-img: every step
# passes `qemu-img check`, applied snapshots read back the data they saved,
# and qemu-img can apply ours (and we can apply its).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/img_lib.sh"
cd "$T" || exit 1

mixed_raw a.raw 6
python3 - <<'PY'
import shutil
shutil.copy("a.raw", "b.raw")
with open("b.raw", "r+b") as f:
    for off in (0, 70000, 3 << 20, (5 << 20) + 17):
        f.seek(off); f.write(b"\x5b" * 100000)
PY
for opts in "cluster_size=65536" "cluster_size=512" "compat=0.10,cluster_size=4096" \
            "lazy_refcounts=on"; do
    rm -f s.qcow2
    "$IMG" convert -O qcow2 -o "$opts" a.raw s.qcow2
    check "snapshot -c ($opts)" "$IMG" snapshot -c first s.qcow2
    check "qemu-img check after create ($opts)" qemu-img check -q s.qcow2
    check "write over a snapshot ($opts)" "$IMG" convert -n -O qcow2 b.raw s.qcow2
    check "qemu-img check after copy-on-write ($opts)" qemu-img check -q s.qcow2
    check "active image holds the new data ($opts)" qemu-img compare -q b.raw s.qcow2
    check "second snapshot ($opts)" "$IMG" snapshot -c second s.qcow2
    check "snapshot list matches qemu-img's ($opts)" \
        diff <("$IMG" snapshot -l s.qcow2) <(qemu-img snapshot -l s.qcow2)
    check "apply first ($opts)" "$IMG" snapshot -a first s.qcow2
    check "qemu-img check after apply ($opts)" qemu-img check -q s.qcow2
    check "applied snapshot reads the saved data ($opts)" qemu-img compare -q a.raw s.qcow2
    check "qemu-img applies our second snapshot ($opts)" qemu-img snapshot -a second s.qcow2
    check "qemu-img sees the second snapshot's data ($opts)" qemu-img compare -q b.raw s.qcow2
    check "delete first ($opts)" "$IMG" snapshot -d first s.qcow2
    check "qemu-img check after delete ($opts)" qemu-img check -q s.qcow2
    check "delete second by id ($opts)" "$IMG" snapshot -d 2 s.qcow2
    check "no snapshots left ($opts)" [ -z "$("$IMG" snapshot -l s.qcow2)" ]
    check "qemu-img check with all snapshots gone ($opts)" qemu-img check -q s.qcow2
    check "data survives the deletes ($opts)" qemu-img compare -q b.raw s.qcow2
done
# A snapshot qemu-img made, applied by us.
rm -f q.qcow2
qemu-img convert -O qcow2 a.raw q.qcow2
qemu-img snapshot -c qs q.qcow2
qemu-io -f qcow2 -c "write -P 0x66 1M 2M" q.qcow2 >/dev/null
check "apply a qemu-img snapshot" "$IMG" snapshot -a qs q.qcow2
check "qemu-img check after applying its snapshot" qemu-img check -q q.qcow2
check "its snapshot's data is back" qemu-img compare -q a.raw q.qcow2
check "refuse a duplicate name" bash -c "! '$IMG' snapshot -c qs q.qcow2 2>/dev/null"
check "refuse an unknown name" bash -c "! '$IMG' snapshot -a nope q.qcow2 2>/dev/null"
tap_done
