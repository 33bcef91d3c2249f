#!/bin/bash
# Snapshots of a running domain do not hold cvirtd up: cvirtd runs a
# wrapper as its VMM that stops at a gate (a file the test creates) before
# running the real cvirt-vmm, so the restore that ends a snapshot (save,
# qcow2 snapshots on the closed images, restore) stays in flight for as
# long as the test wants. Meanwhile another client's list --all is answered
# and a suspend gets libvirt's state change lock error (a destroy would end
# the snapshot, as libvirt's does); only then is the
# gate opened, and the snapshot's reply must come after the list's (the
# order is checked, not any timing). Then a restore that fails at the gate:
# one clear error, no snapshot metadata, the image without the snapshot and
# clean for qemu-img check, the guest's state kept as the managed save
# image that the next start resumes (the counter guest counts on). Then the
# same held for a snapshot-delete and a snapshot-revert of the running
# domain, and a revert that must boot rather than resume a managed save. Debian's virsh and qemu-img are the clients and the oracle.
source "$(dirname "$0")/lib.sh"
source "$CVIRT_SRC/tests/guest/kit/cases.sh"
source "$(dirname "$0")/daemon_lib.sh"

daemon_require virsh qemu-img
daemon_root
daemon_counter_kit

start_gated_daemon
check "cvirtd serves with the gated VMM" test -S "$SOCK"
VIRSH_TIMEOUT=120

pty_of() { v dumpxml "$1" | sed -n "s|.*<source path='\(/dev/pts/[0-9]*\)'/>.*|\1|p" | head -1; }
counters() { sed -n 's/^counter \([0-9]*\)\r*$/\1/p' "$1"; }
snaps_on() { qemu-img snapshot -U -l "$1" | awk 'NR > 2 { print $2 }' | sort | tr '\n' ' '; }

DISK=$ROOT/as.qcow2
qemu-img create -q -f qcow2 "$DISK" 64M
counter_domxml as "" "
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='$DISK'/><target dev='vda' bus='virtio'/></disk>
  " >"$ROOT/as.xml"
check "define" v define "$ROOT/as.xml"
gate_open
v start as >/dev/null 2>&1
check "start through the open gate" test "$(v domstate as | head -1)" = running

# held NAME CMD...: runs a virsh command in the background with the gate
# closed; once its restore waits at the gate, another client lists and a
# suspend is refused, each noted in ORDER; then the gate opens. The
# command's output lands in $ROOT/NAME.out and its end in ORDER.
held() {
    local name=$1 api=$2
    shift 2
    gate_close
    : >"$ROOT/order"
    (v "$@" >"$ROOT/$name.out" 2>&1; echo "$name" >>"$ROOT/order") &
    local bg=$!
    check "$name: its restore waits at the gate" wait_started
    if timeout 30 virsh -c "$URI" list --all --name >"$ROOT/list.out" 2>&1; then
        echo list >>"$ROOT/order"
    fi
    timeout 30 virsh -c "$URI" suspend as >"$ROOT/suspend.out" 2>&1
    echo suspend >>"$ROOT/order"
    gate_open
    wait "$bg"
    sed "s/^/# $name: /" "$ROOT/$name.out" "$ROOT/suspend.out" "$ROOT/order"
    check "$name: another client's list --all is answered before it ends" \
        test "$(tr '\n' ' ' <"$ROOT/order")" = "list suspend $name "
    check "$name: ... and lists the domain" grep -qx as "$ROOT/list.out"
    check "$name: a suspend meanwhile gets libvirt's lock error" \
        grep -q "cannot acquire state change lock (held by monitor=$api)" "$ROOT/suspend.out"
}

# ---- a snapshot held at its restore ----
held create remoteDispatchDomainSnapshotCreateXML snapshot-create-as as a1
check "create: the snapshot is taken" grep -q "Domain snapshot a1 created" "$ROOT/create.out"
check "create: running after it" test "$(v domstate as | head -1)" = running
check "create: qemu-img lists a1" test "$(snaps_on "$DISK")" = "a1 "
check "create: qemu-img check is clean" qemu-img check -U -q "$DISK"

# ---- a snapshot whose restore fails ----
timeout 4 cat "$(pty_of as)" >"$ROOT/fail-before.txt" 2>/dev/null
before=$(counters "$ROOT/fail-before.txt" | tail -1)
gate_close
touch "$GATE/fail"
(wait_started; touch "$GATE/go") &
opener=$!
out=$(v snapshot-create-as as f1 2>&1)
wait "$opener"
gate_open
check "a restore that fails: one error naming the snapshot and the VMM's failure" \
    bash -c 'grep -q "snapshot .f1. not taken" <<<"$0" && [ "$(grep -c "^error:" <<<"$0")" = 1 ] &&
             grep -q "managed save image" <<<"$0"' "$out"
sed "s/^/# /" <<<"$out"
check "no metadata for f1" bash -c '[ ! -e "$0/etc/cvirt/qemu/snapshot/as/f1.xml" ] &&
    ! virsh -c "$1" snapshot-list --name as | grep -qx f1' "$ROOT" "$URI"
check "the image has a1 and not f1" test "$(snaps_on "$DISK")" = "a1 "
check "qemu-img check is clean" qemu-img check -q "$DISK"
check "the domain is defined as before, shut off" \
    bash -c 'grep -q "<source file=.$0./>" <<<"$1" && [ "$(virsh -c "$2" domstate as | head -1)" = "shut off" ]' \
    "$DISK" "$(v dumpxml --inactive as)" "$URI"
check "its state is kept as a managed save image" grep -q "Managed save: *yes" <(v dominfo as)
v start as >/dev/null 2>&1
check "start resumes it" test "$(v domstate as | head -1)" = running
timeout 4 cat "$(pty_of as)" >"$ROOT/fail-after.txt" 2>/dev/null
after=$(counters "$ROOT/fail-after.txt" | head -1)
check "the guest counts on from before the failed snapshot ($before, then $after)" \
    test -n "$before" -a -n "$after" -a "${after:-0}" -gt "${before:-0}"

# ---- a snapshot-delete held at its restore ----
v snapshot-create-as as a2 >/dev/null 2>&1
check "a second snapshot" test "$(snaps_on "$DISK")" = "a1 a2 "
timeout 4 cat "$(pty_of as)" >"$ROOT/del-before.txt" 2>/dev/null
before=$(counters "$ROOT/del-before.txt" | tail -1)
held delete remoteDispatchDomainSnapshotDelete snapshot-delete as a1
check "delete: a1 is deleted" grep -q "Domain snapshot a1 deleted" "$ROOT/delete.out"
check "delete: qemu-img no longer lists it" test "$(snaps_on "$DISK")" = "a2 "
check "delete: qemu-img check is clean" qemu-img check -U -q "$DISK"
check "delete: its metadata is gone" test ! -e "$ROOT/etc/cvirt/qemu/snapshot/as/a1.xml"
timeout 4 cat "$(pty_of as)" >"$ROOT/del-after.txt" 2>/dev/null
after=$(counters "$ROOT/del-after.txt" | head -1)
check "delete: the guest counts on ($before, then $after)" \
    test -n "$before" -a -n "$after" -a "${after:-0}" -gt "${before:-0}"

# ---- a snapshot-revert held at its restore ----
held revert remoteDispatchDomainRevertToSnapshot snapshot-revert as a2
check "revert: reverted" grep -q "Domain snapshot a2 reverted" "$ROOT/revert.out"
check "revert: running" test "$(v domstate as | head -1)" = running
check "revert: a2 is current" test "$(v snapshot-current --name as)" = a2

# ---- a revert drops a managed save image: its memory is of other disks ----
v managedsave as >/dev/null 2>&1
check "managedsave" grep -q "Managed save: *yes" <(v dominfo as)
v snapshot-create-as as off1 >/dev/null 2>&1
check "a shut-off snapshot" grep -q "<state>shutoff</state>" <(v snapshot-dumpxml as off1)
out=$(v snapshot-revert as off1 --running 2>&1)
check "revert --running to it boots (not the managed save image)" \
    bash -c 'grep -q "Domain snapshot off1 reverted" <<<"$0" &&
             [ "$(virsh -c "$1" domstate --reason as | head -1)" = "running (booted)" ]' "$out" "$URI"
check "... and the managed save image is gone" grep -q "Managed save: *no" <(v dominfo as)

v destroy as >/dev/null 2>&1
check "qemu-img check is clean at the end" qemu-img check -q "$DISK"
check "cvirtd still runs" kill -0 "$PID"
kill "$PID" && wait "$PID"
PID=
check "no sanitizer report in cvirtd's log (sanitized builds)" \
    bash -c '! grep -qE "Sanitizer|runtime error" "$0"' "$ROOT/cvirtd.log"
tap_done
