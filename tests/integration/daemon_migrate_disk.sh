#!/bin/bash
# Live migration of a domain with a live-attached qcow2 disk between two
# cvirtd daemons on this host (shared storage), driven by Debian's virsh.
# The real Linux guest (vmm_hotsave_lib.sh) waits for vdb; `virsh
# attach-disk --live --subdriver qcow2` gives it one on daemon A and it
# writes a pattern (qcow2 clusters allocated by A's VMM); `virsh migrate
# --live` moves it to daemon B, whose VMM starts with the disk in its slot
# (`--disk ...,slot=N,id=...,node=...,inactive=on`). B's live XML shows the
# disk at that <address>, B's VMM has it in that PCI slot, and the guest,
# which only reads a marker the host writes once B runs it, reads its
# pattern back through the disk. `virsh detach-disk --live` on B ejects
# it; once B's domain is gone, qemu-img finds the image clean and holding
# the guest's pattern.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"
source "$(dirname "$0")/vmm_hotsave_lib.sh"

daemon_require virsh qemu-img
daemon_root
TIMEOUT=${CVIRT_GUEST_TIMEOUT:-300}
VIRSH_TIMEOUT=120
daemon_b_init
CATS=()

daemon_test_cleanup() {
    local p
    for p in "${CATS[@]}"; do kill "$p" 2>/dev/null; done
    daemon_b_cleanup
}

# console_to VIRSH_FN FILE: copies md1's console to FILE in the
# background.
console_to() { dom_console_to "$1" md1 "$2"; }
# vmm_slot ROOT: the slot the VMM under ROOT has virtio-disk-vdb in, ""
# when none.
vmm_slot() { vmm_disk_slot "$1/run/cvirt/qemu/md1.sock" vdb; }
# xml_slot VIRSH_FN: vdb's slot in md1's live XML (see xml_disk_slot).
xml_slot() { xml_disk_slot "$1" md1 vdb; }
# vmm_argv ROOT: the command line of the VMM under ROOT, one argument a
# line.
vmm_argv() { dom_vmm_argv "$1" md1; }

daemon_linux_guest

check "daemon A serves" start_daemon
check "daemon B serves" start_daemon_b

# The qcow2 disk: only its first cluster is allocated (it holds the
# sector the host writes the marker into, at a host offset qemu-img map
# gives, so the host never touches the image's metadata); the guest's
# pattern at 1 MiB lands in clusters A's VMM allocates.
token="dmigdisk-$RANDOM$RANDOM"
IMG=$ROOT/hot.qcow2
truncate -s 4M "$ROOT/seed.raw"
printf 'no-marker-yet' | dd of="$ROOT/seed.raw" bs=1 seek=4096 conv=notrunc status=none
qemu-img convert -q -f raw -O qcow2 "$ROOT/seed.raw" "$IMG"
host_off=$(qemu-img map --output=json -f qcow2 "$IMG" | python3 -c 'import json, sys
for m in json.load(sys.stdin):
    if m["start"] <= 4096 < m["start"] + m["length"] and m.get("data") and "offset" in m:
        print(m["offset"] + 4096 - m["start"])')
check "qemu-img map: guest offset 4096 is at host offset ${host_off:-none}" \
    [ -n "$host_off" ]
head -c $((1 << 20)) /dev/zero >"$ROOT/cold.img"
cmdline="$(cat "$CMDLINE_FILE") cvirt.run=$(encode "$(guest_script "$token")")"
linux_domxml md1 "$cmdline" >"$ROOT/md1.xml"
out=$(v create "$ROOT/md1.xml" 2>&1)
check "create the Linux guest domain on A ($out)" grep -q "Domain 'md1' created" <<<"$out"
console_to v "$ROOT/a.out"
if ! console_has "$ROOT/a.out" WAITING-VDB; then
    tap_fail "the guest booted and waits for vdb ($(tail -c 300 "$ROOT/a.out" | tr -d '\r'))"
    tap_done
    exit 1
fi
out=$(v attach-disk md1 "$IMG" vdb --subdriver qcow2 --live 2>&1)
check "attach-disk --live --subdriver qcow2 on A ($out)" grep -q "Disk attached successfully" <<<"$out"
slot=$(vmm_slot "$ROOT")
pci=$(console_value "$ROOT/a.out" VDB-PCI)
check "A's VMM has virtio-disk-vdb in slot $slot, the guest found it at $pci" \
    [ -n "$slot" ] && [ "$pci" = "$(printf '0000:00:%02x.0' "${slot:-0}")" ]
check "A's dumpxml shows vdb's <address> in that slot ($(xml_slot v))" \
    [ -n "$slot" ] && [ "$(xml_slot v)" = "$slot" ]
check "the guest wrote its pattern" console_has "$ROOT/a.out" WROTE

apid=$(cat "$ROOT/run/cvirt/qemu/md1.pid" 2>/dev/null)
out=$(v migrate --live md1 "$URIB" 2>&1); rc=$?
check "virsh migrate --live with the live-attached qcow2 disk: exit 0 ($out)" test "$rc" = 0
check "B runs it (running, migrated)" test "$(stateb md1)" = "running (migrated)"
bpid=$(cat "$ROOTB/run/cvirt/qemu/md1.pid" 2>/dev/null)
check "A no longer has it (transient, gone)" \
    bash -c '! grep -qx md1 <<<"$0"' "$(v list --all --name)"
check "B's live XML has vdb as qcow2 on the image" \
    bash -c 'grep -q "<driver name=.qemu. type=.qcow2./>" <<<"$0" && grep -q "<source file=.$1./>" <<<"$0" &&
             grep -q "<target dev=.vdb." <<<"$0"' "$(vb dumpxml md1 2>&1)" "$IMG"
check "B's dumpxml shows vdb's <address> in slot $slot ($(xml_slot vb))" \
    [ -n "$slot" ] && [ "$(xml_slot vb)" = "$slot" ]
check "B's VMM has virtio-disk-vdb in the same slot $slot ($(vmm_slot "$ROOTB"))" \
    [ -n "$slot" ] && [ "$(vmm_slot "$ROOTB")" = "$slot" ]
echo "# B's VMM: $(vmm_argv "$ROOTB" | grep -F -- "$IMG")"
check "B's VMM was given --disk ...,slot=$slot,id=virtio-disk-vdb,node=drive-vdb,inactive=on" \
    grep -qx -- "$IMG,format=qcow2,slot=$slot,id=virtio-disk-vdb,node=drive-vdb,inactive=on" \
    <(vmm_argv "$ROOTB")

console_to vb "$ROOT/b.out"
sleep 0.5
printf 'GO-%s' "${token:0:9}" | dd of="$IMG" bs=1 seek="${host_off:-4096}" conv=notrunc status=none
got=$(console_value "$ROOT/b.out" GOT-MARK)
check "the guest on B read the marker written after the migration ($got polls)" \
    [ -n "$got" ] && [ "$got" -lt 3000 ]
want=$(python3 -c 'import hashlib, sys
t = (sys.argv[1] + "\n").encode()
print(hashlib.sha256((t * (1048576 // len(t) + 1))[:1048576]).hexdigest())' "$token")
check "inside the guest vdb is still at $pci" test "$(console_value "$ROOT/b.out" AFTER-PCI)" = "$pci"
check "the guest on B reads back the pattern it wrote on A" \
    test "$(console_value "$ROOT/b.out" AFTER-SHA)" = "$want"

out=$(vb detach-disk md1 vdb --live 2>&1)
check "detach-disk --live on B ($out)" grep -q "Disk detached successfully" <<<"$out"
check "the guest saw vdb go" console_has "$ROOT/b.out" VDB-GONE
check "the guest's command exited 0" console_has "$ROOT/b.out" CVIRT-RUN-EXIT=0
tr -d '\r' <"$ROOT/b.out" | grep -E '^(GOT-MARK|AFTER-|VDB-)' | sed 's/^/# /'
# The guest powers off once its command is done; destroy ends it if it
# has not yet. Either way the transient domain leaves B, its VMM gone.
vb destroy md1 >/dev/null 2>&1
for _ in $(seq 100); do grep -qx md1 <(vb list --all --name 2>/dev/null) || break; sleep 0.2; done
check "B no longer has the domain" bash -c '! grep -qx md1 <<<"$0"' "$(vb list --all --name 2>&1)"
for _ in $(seq 50); do kill -0 "$apid" 2>/dev/null || kill -0 "$bpid" 2>/dev/null || break; sleep 0.1; done
check "A's VMM ($apid) and B's ($bpid) have ended" \
    bash -c '[ -n "$0" ] && [ -n "$1" ] && ! kill -0 "$0" && ! kill -0 "$1"' "$apid" "$bpid" 2>/dev/null
out=$(qemu-img check "$IMG" 2>&1)
check "qemu-img check: the image is clean ($(tr '\n' ' ' <<<"$out"))" qemu-img check -q "$IMG"
qemu-img convert -f qcow2 -O raw "$IMG" "$ROOT/out.raw"
check "qemu-img reads the guest's pattern at 1 MiB" \
    test "$(dd if="$ROOT/out.raw" bs=65536 skip=16 count=16 2>/dev/null | sha256sum | cut -d' ' -f1)" = "$want"

stop_daemon
kill "$PIDB" && wait "$PIDB" 2>/dev/null
PIDB=
check "no sanitizer report from the daemons or their VMMs" \
    bash -c '! cat "$0"/cvirtd.log "$0"/b/cvirtd.log "$0"/var/log/cvirt/qemu/*.log \
               "$0"/b/var/log/cvirt/qemu/*.log 2>/dev/null | grep -Eq "runtime error|Sanitizer"' "$ROOT"
tap_done
