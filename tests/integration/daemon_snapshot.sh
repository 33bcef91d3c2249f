#!/bin/bash
# Domain snapshots through Debian's real virsh against cvirtd --root:
# snapshot-create-as on a shut-off and on a running domain, snapshot-list,
# snapshot-current, snapshot-dumpxml, snapshot-revert (disk content and,
# for a running snapshot, the guest's memory: the counter guest counts on
# from the snapshot, not from later), snapshot-delete (of a shut-off and of
# a running domain, whose guest counts on), undefine with
# snapshots, and libvirt's refusal of a raw disk. Debian's qemu-img and
# qemu-io are the oracle for what is on the images.
source "$(dirname "$0")/lib.sh"
source "$CVIRT_SRC/tests/guest/kit/cases.sh"

source "$(dirname "$0")/daemon_lib.sh"

daemon_require virsh qemu-img qemu-io
daemon_root
CONF=$ROOT/etc/cvirt/qemu
VIRSH_TIMEOUT=120

start_daemon
check "cvirtd serves under --root" test -S "$SOCK"

# domxml NAME DISK FORMAT
domxml() {
    counter_domxml "$1" "" "
    <disk type='file' device='disk'><driver name='qemu' type='$3'/>
      <source file='$2'/><target dev='vda' bus='virtio'/></disk>
  "
}
pty_of() { v dumpxml "$1" | sed -n "s|.*<source path='\(/dev/pts/[0-9]*\)'/>.*|\1|p" | head -1; }
# counters FILE: the counter values the guest printed, one a line.
counters() { sed -n 's/^counter \([0-9]*\)\r*$/\1/p' "$1"; }
# snaps_on IMAGE: the snapshot names qemu-img lists on an image.
snaps_on() { qemu-img snapshot -U -l "$1" | awk 'NR > 2 { print $2 }' | sort | tr '\n' ' '; }
# pattern IMAGE BYTE: qemu-io reads the first 64 KiB back as BYTE.
pattern() { qemu-io -f qcow2 -c "read -P $2 0 64k" "$1" 2>&1 | grep -q "read 65536/65536"; }

daemon_counter_kit

DISK=$ROOT/sn1.qcow2
qemu-img create -q -f qcow2 "$DISK" 64M
qemu-io -f qcow2 -c "write -P 0xaa 0 64k" "$DISK" >/dev/null
domxml sn1 "$DISK" qcow2 > "$ROOT/sn1.xml"
v define "$ROOT/sn1.xml" >/dev/null 2>&1
check "define a domain with a qcow2 disk" grep -q "sn1" <(v list --all --name)

# ---- a raw disk: libvirt's refusal ----
qemu-img create -q -f raw "$ROOT/raw.img" 16M
domxml rawdom "$ROOT/raw.img" raw > "$ROOT/raw.xml"
v define "$ROOT/raw.xml" >/dev/null 2>&1
out=$(v snapshot-create-as rawdom r0 2>&1)
check "a raw disk: internal snapshot unsupported for storage type raw" \
    grep -q "unsupported configuration: internal snapshot for disk vda unsupported for storage type raw" <<<"$out"
check "... and no metadata is left" test ! -e "$CONF/snapshot/rawdom/r0.xml"

# ---- shut-off snapshots ----
out=$(v snapshot-current --name sn1 2>&1)
check "snapshot-current without snapshots: an error" \
    grep -q "error: domain 'sn1' has no current snapshot" <<<"$out"
out=$(v snapshot-create-as sn1 s1 --description "first one" 2>&1)
check "snapshot-create-as on a shut-off domain" grep -q "Domain snapshot s1 created" <<<"$out"
check "qemu-img snapshot -l lists s1 on the disk" test "$(snaps_on "$DISK")" = "s1 "
check "qemu-img check passes after the snapshot" qemu-img check -q "$DISK"
check "the metadata is kept under CONFIG/qemu/snapshot/DOMAIN" test -f "$CONF/snapshot/sn1/s1.xml"
xml=$(v snapshot-dumpxml sn1 s1 2>&1)
check "snapshot-dumpxml: name, description, state shutoff, no memory, the domain" \
    bash -c 'grep -q "<name>s1</name>" <<<"$0" && grep -q "<description>first one</description>" <<<"$0" &&
             grep -q "<state>shutoff</state>" <<<"$0" && grep -q "<memory snapshot=.no./>" <<<"$0" &&
             grep -q "<disk name=.vda. snapshot=.internal./>" <<<"$0" && grep -q "<name>sn1</name>" <<<"$0" &&
             ! grep -q "<parent>" <<<"$0"' "$xml"

qemu-io -f qcow2 -c "write -P 0xbb 0 64k" "$DISK" >/dev/null
out=$(v snapshot-create-as sn1 s2 2>&1)
check "a second snapshot" grep -q "Domain snapshot s2 created" <<<"$out"
check "qemu-img lists both" test "$(snaps_on "$DISK")" = "s1 s2 "
check "s2's parent is s1" grep -q "<parent>" <(v snapshot-dumpxml sn1 s2)
check "snapshot-current --name: s2" test "$(v snapshot-current --name sn1)" = "s2"
check "snapshot-list --name lists what was created" \
    test "$(v snapshot-list --name sn1 | sed '/^$/d' | sort | tr '\n' ' ')" = "s1 s2 "
check "snapshot-list shows both as shutoff" \
    test "$(v snapshot-list sn1 | grep -cE '^ s[12] .* shutoff$')" = 2
info=$(v snapshot-info sn1 s2 2>&1)
check "snapshot-info s2: current, internal, parent s1, no children" \
    bash -c 'grep -qE "^Current: +yes" <<<"$0" && grep -qE "^Parent: +s1$" <<<"$0" &&
             grep -qE "^Location: +internal" <<<"$0" && grep -qE "^Children: +0$" <<<"$0"' "$info"
info=$(v snapshot-info sn1 s1 2>&1)
check "snapshot-info s1: not current, a root with one child" \
    bash -c 'grep -qE "^Current: +no" <<<"$0" && grep -qE "^Parent: +-$" <<<"$0" &&
             grep -qE "^Children: +1$" <<<"$0" && grep -qE "^Descendants: +1$" <<<"$0"' "$info"
check "snapshot-list --parent: s2's parent is s1" grep -qE '^ s2 .* shutoff +s1$' <(v snapshot-list --parent sn1)
check "snapshot-list --roots: s1 only" \
    test "$(v snapshot-list --roots --name sn1 | sed '/^$/d' | tr '\n' ' ')" = "s1 "
out=$(v snapshot-create-as sn1 s1 2>&1)
check "a name that exists: refused" grep -q "domain snapshot 's1' already exists" <<<"$out"
out=$(v snapshot-create-as sn1 ../x 2>&1)
check "a name with a slash: refused" grep -q "invalid snapshot name" <<<"$out"

out=$(v snapshot-revert sn1 s1 2>&1)
check "snapshot-revert to s1" grep -q "Domain snapshot s1 reverted" <<<"$out"
check "the disk has s1's content again (qemu-io reads 0xaa)" pattern "$DISK" 0xaa
check "snapshot-current --name: s1 after the revert" test "$(v snapshot-current --name sn1)" = "s1"
check "shut off after reverting to a shut-off snapshot" test "$(v domstate sn1 | head -1)" = "shut off"
out=$(v snapshot-revert sn1 nope 2>&1)
check "revert to a snapshot that does not exist: not found" \
    grep -q "Domain snapshot not found: no domain snapshot with matching name 'nope'" <<<"$out"

# ---- a running snapshot: memory and disks ----
v start sn1 >/dev/null 2>&1
check "start" test "$(v domstate sn1 | head -1)" = "running"
pty=$(pty_of sn1)
timeout 60 cat "$pty" > "$ROOT/before.txt" 2>/dev/null &
catpid=$!
sleep 2
out=$(v snapshot-create-as sn1 r1 2>&1)
wait "$catpid"
check "snapshot-create-as on a running domain" grep -q "Domain snapshot r1 created" <<<"$out"
at_snap=$(counters "$ROOT/before.txt" | tail -1)
check "the domain runs on after the snapshot" test "$(v domstate sn1 | head -1)" = "running"
check "r1 is a running snapshot with its memory" \
    bash -c 'grep -q "<state>running</state>" <<<"$0" && grep -q "<memory snapshot=.internal./>" <<<"$0"' \
    "$(v snapshot-dumpxml sn1 r1)"
check "its memory state is under STATE/qemu/snapshot" test -s "$ROOT/var/lib/cvirt/qemu/snapshot/sn1/r1.state"
check "qemu-img lists r1 on the disk" test "$(snaps_on "$DISK")" = "r1 s1 s2 "
pty=$(pty_of sn1)
timeout 6 cat "$pty" > "$ROOT/later.txt" 2>/dev/null
later=$(counters "$ROOT/later.txt" | tail -1)
check "the guest counted on after the snapshot ($at_snap at the snapshot, $later later)" \
    test -n "$at_snap" -a -n "$later" -a "${later:-0}" -gt "$((${at_snap:-0} + 10))"
out=$(v snapshot-revert sn1 r1 2>&1)
check "snapshot-revert to the running snapshot" grep -q "Domain snapshot r1 reverted" <<<"$out"
check "running after the revert" test "$(v domstate sn1 | head -1)" = "running"
timeout 3 cat "$(pty_of sn1)" > "$ROOT/after.txt" 2>/dev/null
first=$(counters "$ROOT/after.txt" | head -1)
check "the guest counts on from the snapshot ($at_snap), not from later ($later): $first" \
    test -n "$first" -a "${first:-0}" -gt "${at_snap:-0}" -a "${first:-0}" -le "$((${at_snap:-0} + 3))"

# ---- a paused domain: the snapshot and its revert stay paused ----
v suspend sn1 >/dev/null 2>&1
out=$(v snapshot-create-as sn1 p1 2>&1)
check "snapshot-create-as on a paused domain" grep -q "Domain snapshot p1 created" <<<"$out"
check "still paused afterwards" test "$(v domstate sn1 | head -1)" = "paused"
check "p1's state is paused" grep -q "<state>paused</state>" <(v snapshot-dumpxml sn1 p1)
v resume sn1 >/dev/null 2>&1
out=$(v snapshot-revert sn1 p1 2>&1)
check "revert to the paused snapshot: paused again" \
    bash -c 'grep -q "Domain snapshot p1 reverted" <<<"$0" && [ "$(virsh -c "$1" domstate sn1 | head -1)" = paused ]' \
    "$out" "$URI"
out=$(v snapshot-revert sn1 p1 --running 2>&1)
check "revert --running to the paused snapshot: running" \
    bash -c 'grep -q "Domain snapshot p1 reverted" <<<"$0" && [ "$(virsh -c "$1" domstate sn1 | head -1)" = running ]' \
    "$out" "$URI"
check "p1 is current" test "$(v snapshot-current --name sn1)" = "p1"

# ---- delete while running: save, delete on the closed images, restore ----
timeout 4 cat "$(pty_of sn1)" > "$ROOT/del-before.txt" 2>/dev/null
before_del=$(counters "$ROOT/del-before.txt" | tail -1)
out=$(v snapshot-delete sn1 s2 2>&1)
check "snapshot-delete of a running domain's snapshot" grep -q "Domain snapshot s2 deleted" <<<"$out"
check "running after it" test "$(v domstate sn1 | head -1)" = "running"
timeout 4 cat "$(pty_of sn1)" > "$ROOT/del-after.txt" 2>/dev/null
after_del=$(counters "$ROOT/del-after.txt" | head -1)
check "the guest counts on across the delete ($before_del before, $after_del after)" \
    test -n "$before_del" -a -n "$after_del" -a "${after_del:-0}" -gt "${before_del:-0}"
check "qemu-img no longer lists s2" test "$(snaps_on "$DISK")" = "p1 r1 s1 "
check "qemu-img check passes on the running domain's image" qemu-img check -U -q "$DISK"
check "s2's metadata is gone, p1 still current" \
    bash -c '[ ! -e "$0/snapshot/sn1/s2.xml" ] && [ "$(virsh -c "$1" snapshot-current --name sn1)" = p1 ]' \
    "$CONF" "$URI"

# ---- live attach-disk / detach-disk ----
# The VMM's own view of its PCI bus, through its control socket.
QMP_PY=$(dirname "$0")/qmp.py
VSOCK=$ROOT/run/cvirt/qemu/sn1.sock
qdev_ids() { python3 "$QMP_PY" "$VSOCK" query-pci |
             python3 -c 'import json,sys; print(" ".join(sorted(d["qdev_id"] for b in json.load(sys.stdin) for d in b["devices"] if d["qdev_id"])))'; }
EXTRA=$ROOT/extra.qcow2
qemu-img create -q -f qcow2 "$EXTRA" 16M
out=$(v attach-disk sn1 "$EXTRA" vdb --subdriver qcow2 --live 2>&1)
check "attach-disk --live" grep -q "Disk attached successfully" <<<"$out"
check "the live XML has vdb" grep -q "<target dev='vdb'" <(v dumpxml sn1)
check "the saved definition does not" bash -c '! grep -q "<target dev=.vdb." <<<"$0"' "$(v dumpxml --inactive sn1)"
check "the VMM has the disk on its PCI bus (query-pci)" test "$(qdev_ids)" = "virtio-disk-vdb"
out=$(v attach-disk sn1 "$EXTRA" vdb --subdriver qcow2 --live 2>&1)
check "a second vdb: refused" grep -q "target vdb already exists" <<<"$out"
EXTRA2=$ROOT/extra2.qcow2
qemu-img create -q -f qcow2 "$EXTRA2" 16M
out=$(v attach-disk sn1 "$EXTRA2" vdc --subdriver qcow2 --live --config 2>&1)
check "attach-disk --live --config" grep -q "Disk attached successfully" <<<"$out"
check "vdc in both definitions" \
    bash -c 'grep -q "<target dev=.vdc." <<<"$0" && grep -q "<target dev=.vdc." <<<"$1"' \
    "$(v dumpxml sn1)" "$(v dumpxml --inactive sn1)"
check "the VMM has both" test "$(qdev_ids)" = "virtio-disk-vdb virtio-disk-vdc"
out=$(v snapshot-create-as sn1 hp 2>&1)
check "a running snapshot with hot-plugged disks: refused, nothing left" \
    bash -c 'grep -q "hot-plugged device" <<<"$0" && [ ! -e "$1/snapshot/sn1/hp.xml" ] &&
             [ "$(virsh -c "$2" domstate sn1)" = running ]' "$out" "$CONF" "$URI"
out=$(v detach-disk sn1 vda --live 2>&1)
check "detach of a disk the domain was started with: not supported" \
    grep -q "Operation not supported: live detach of disk vda" <<<"$out"
# The counter guest has no hotplug driver: it never ejects, so the removal
# stays pending and the command returns after libvirt's wait, as libvirt
# does with a guest that does not answer.
out=$(v detach-disk sn1 vdb --live 2>&1)
check "detach-disk --live returns for a guest that does not eject" \
    grep -q "Disk detached successfully" <<<"$out"
out=$(python3 "$QMP_PY" "$VSOCK" device_del '{"id": "virtio-disk-vdb"}' 2>&1)
check "... with the unplug pending in the VMM" grep -q "already in the process of unplug" <<<"$out"
v destroy sn1 >/dev/null 2>&1
v detach-disk sn1 vdc --config >/dev/null 2>&1

# ---- delete ----
out=$(v snapshot-delete sn1 r1 2>&1)
check "deleting the running snapshot drops its state file" \
    bash -c 'grep -q "Domain snapshot r1 deleted" <<<"$0" && [ ! -e "$1" ]' \
    "$out" "$ROOT/var/lib/cvirt/qemu/snapshot/sn1/r1.state"
check "qemu-img no longer lists r1" test "$(snaps_on "$DISK")" = "p1 s1 "
check "qemu-img check passes after the delete" qemu-img check -q "$DISK"
check "snapshot-list no longer shows r1" \
    test "$(v snapshot-list --name sn1 | sed '/^$/d' | sort | tr '\n' ' ')" = "p1 s1 "
out=$(v snapshot-delete sn1 p1 2>&1)
check "deleting the current snapshot p1" grep -q "Domain snapshot p1 deleted" <<<"$out"
check "current falls back to its parent" test "$(v snapshot-current --name sn1)" = "s1"

# ---- undefine with snapshots ----
out=$(v undefine sn1 2>&1)
check "undefine with a snapshot: refused as libvirt does" \
    grep -q "cannot delete inactive domain with 1 snapshots" <<<"$out"
check "... and the domain is still defined" grep -q sn1 <(v list --all --name)
out=$(v undefine sn1 --snapshots-metadata 2>&1)
check "undefine --snapshots-metadata" \
    bash -c 'grep -q "Domain .sn1. has been undefined" <<<"$0" && [ ! -e "$1" ]' \
    "$out" "$CONF/snapshot/sn1"
check "the image keeps its internal snapshot" test "$(snaps_on "$DISK")" = "s1 "

check "the daemon is still up" kill -0 "$PID"
tap_done
