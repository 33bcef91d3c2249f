#!/bin/bash
# virsh save and restore of a domain with a live-attached disk, against
# cvirtd with Debian's virsh. The real Linux guest (vmm_hotsave_lib.sh)
# waits for vdb; `virsh attach-disk --live` gives it one, it writes a
# pattern, `virsh save` stops the domain, `virsh restore` brings it back:
# the live XML still has vdb, cvirt-vmm has the disk in the same PCI slot
# under the daemon's id (the slot dumpxml shows in vdb's <address>, which
# the daemon chose when attaching; vdc is attached in a slot virsh asks
# for, and keeps it too), and the guest, which only reads a marker the host
# writes after the restore, reads its pattern back through it. Then
# `virsh detach-disk --live` works on the restored domain: the guest
# ejects the disk, it leaves the live XML, and the guest powers off.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"
source "$(dirname "$0")/vmm_hotsave_lib.sh"

daemon_require virsh
daemon_root
TIMEOUT=${CVIRT_GUEST_TIMEOUT:-300}
VIRSH_TIMEOUT=120

daemon_linux_guest

start_daemon
check "cvirtd serves under --root" test -S "$SOCK"

CATS=()
daemon_test_cleanup() {
    local p
    for p in "${CATS[@]}"; do kill "$p" 2>/dev/null; done
}

# console_to FILE: copies the domain's pty to FILE in the background.
console_to() { dom_console_to v hs1 "$1"; }
VSOCK=$ROOT/run/cvirt/qemu/hs1.sock
# The slot cvirt-vmm has the daemon's device for disk TARGET (vdb by
# default) in, "" when none.
vmm_slot() { vmm_disk_slot "$VSOCK" "${1:-vdb}"; }
# xml_slot TARGET: that disk's slot in the live XML (see xml_disk_slot).
xml_slot() { xml_disk_slot v hs1 "$1"; }
# The command line of the VMM serving hs1, one argument per line.
vmm_argv() { dom_vmm_argv "$ROOT" hs1; }

token="dhotsave-$RANDOM$RANDOM"
head -c $((1 << 20)) /dev/zero >"$ROOT/cold.img"
truncate -s 4M "$ROOT/hot.img"
cmdline="$(cat "$CMDLINE_FILE") cvirt.run=$(encode "$(guest_script "$token")")"
linux_domxml hs1 "$cmdline" >"$ROOT/hs1.xml"
out=$(v define "$ROOT/hs1.xml" 2>&1)
check "define the Linux guest domain ($out)" grep -q "Domain 'hs1' defined" <<<"$out"
out=$(v start hs1 2>&1)
check "start it ($out)" grep -q "Domain 'hs1' started" <<<"$out"
console_to "$ROOT/a.out"
if ! console_has "$ROOT/a.out" WAITING-VDB; then
    tap_fail "the guest booted and waits for vdb ($(tail -c 300 "$ROOT/a.out" | tr -d '\r'))"
    tap_done
    exit 1
fi
out=$(v attach-disk hs1 "$ROOT/hot.img" vdb --subdriver raw --live 2>&1)
check "attach-disk --live ($out)" grep -q "Disk attached successfully" <<<"$out"
slot=$(vmm_slot)
pci=$(console_value "$ROOT/a.out" VDB-PCI)
check "cvirt-vmm has virtio-disk-vdb in slot $slot, the guest found it at $pci" \
    [ -n "$slot" ] && [ "$pci" = "$(printf '0000:00:%02x.0' "${slot:-0}")" ]
check "the guest wrote its pattern" console_has "$ROOT/a.out" WROTE
xslot=$(xml_slot vdb)
check "dumpxml shows vdb's <address> in slot ${xslot:-none}, where cvirt-vmm has it" \
    [ -n "$xslot" ] && [ "$xslot" = "$slot" ]
# A slot the client asks for is the one the disk gets.
truncate -s 1M "$ROOT/hot2.img"
out=$(v attach-disk hs1 "$ROOT/hot2.img" vdc --subdriver raw --live \
      --address pci:0000.00.1d.0 2>&1)
check "attach-disk --live --address pci:0000.00.1d.0 ($out)" \
    grep -q "Disk attached successfully" <<<"$out"
check "cvirt-vmm has virtio-disk-vdc in slot 29 ($(vmm_slot vdc))" test "$(vmm_slot vdc)" = 29
check "dumpxml shows vdc's <address> in slot 29 ($(xml_slot vdc))" test "$(xml_slot vdc)" = 29
out=$(v attach-disk hs1 "$ROOT/hot2.img" vde --subdriver raw --live \
      --address "pci:0000.00.$(printf %02x "${slot:-0}").0" 2>&1)
check "attaching another disk in vdb's slot is refused ($out)" \
    grep -q "PCI slot .* is in use" <<<"$out"
check "the refused disk is not in the live XML" \
    bash -c '! grep -q "<target dev=.vde." <<<"$0"' "$(v dumpxml hs1 2>&1)"

out=$(v save hs1 "$ROOT/hs1.save" 2>&1)
check "save with the live-attached disk ($out)" grep -q "Domain 'hs1' saved to $ROOT/hs1.save" <<<"$out"
check "domstate: shut off (saved)" test "$(state hs1)" = "shut off (saved)"
out=$(v restore "$ROOT/hs1.save" 2>&1)
check "restore ($out)" grep -q "Domain restored from $ROOT/hs1.save" <<<"$out"
check "domstate: running (restored)" test "$(state hs1)" = "running (restored)"
check "the restored live XML has vdb" grep -q "<target dev='vdb'" <(v dumpxml hs1)
check "cvirt-vmm has virtio-disk-vdb in the same slot $slot ($(vmm_slot))" \
    [ -n "$slot" ] && [ "$(vmm_slot)" = "$slot" ]
check "the restored live XML shows vdb in slot $slot ($(xml_slot vdb))" \
    [ -n "$slot" ] && [ "$(xml_slot vdb)" = "$slot" ]
check "vdc is back in slot 29 (XML $(xml_slot vdc), cvirt-vmm $(vmm_slot vdc))" \
    [ "$(xml_slot vdc)" = 29 ] && [ "$(vmm_slot vdc)" = 29 ]
console_to "$ROOT/b.out"
sleep 0.5
printf 'GO-%s' "${token:0:9}" | dd of="$ROOT/hot.img" bs=1 seek=4096 conv=notrunc status=none
got=$(console_value "$ROOT/b.out" GOT-MARK)
check "the restored guest read the marker written after the restore ($got polls)" \
    [ -n "$got" ] && [ "$got" -lt 3000 ]
want=$(python3 -c 'import hashlib, sys
t = (sys.argv[1] + "\n").encode()
print(hashlib.sha256((t * (1048576 // len(t) + 1))[:1048576]).hexdigest())' "$token")
check "inside the guest vdb is still at $pci" test "$(console_value "$ROOT/b.out" AFTER-PCI)" = "$pci"
check "the guest reads back the pattern it wrote before the save" \
    test "$(console_value "$ROOT/b.out" AFTER-SHA)" = "$want"

out=$(v detach-disk hs1 vdb --live 2>&1)
check "detach-disk --live on the restored domain ($out)" grep -q "Disk detached successfully" <<<"$out"
for _ in $(seq 100); do grep -q "<target dev='vdb'" <(v dumpxml hs1 2>/dev/null) || break; sleep 0.2; done
check "vdb left the live XML (the guest ejected it)" \
    bash -c '! grep -q "<target dev=.vdb." <<<"$0"' "$(v dumpxml hs1 2>&1)"
check "the guest saw vdb go" console_has "$ROOT/b.out" VDB-GONE
check "the guest powers off: shut off" wait_state hs1 "shut off (shutdown)" "$TIMEOUT"
check "the guest's command exited 0" grep -q "CVIRT-RUN-EXIT=0" "$ROOT/b.out"
tr -d '\r' <"$ROOT/b.out" | grep -E '^(GOT-MARK|AFTER-|VDB-)' | sed 's/^/# /'

# A slot in the persistent definition reaches cvirt-vmm's command line at
# start, with the ids live attach uses, so the disk is ejectable.
out=$(v attach-disk hs1 "$ROOT/hot2.img" vdc --subdriver raw --config \
      --address pci:0000.00.1c.0 2>&1)
check "attach-disk --config --address pci:0000.00.1c.0 ($out)" \
    grep -q "Disk attached successfully" <<<"$out"
out=$(v start hs1 2>&1)
check "start it again ($out)" grep -q "Domain 'hs1' started" <<<"$out"
check "its VMM was given --disk ...,slot=28,id=virtio-disk-vdc,node=drive-vdc" \
    grep -qx -- "$ROOT/hot2.img,format=raw,slot=28,id=virtio-disk-vdc,node=drive-vdc" \
    <(vmm_argv)
check "cvirt-vmm has virtio-disk-vdc in slot 28 ($(vmm_slot vdc))" test "$(vmm_slot vdc)" = 28
check "dumpxml shows vdc's <address> in slot 28 ($(xml_slot vdc))" test "$(xml_slot vdc)" = 28
# Being named, it is ejectable like a disk attached live, once the guest
# runs (it waits for a vdb again).
console_to "$ROOT/c.out"
check "the guest booted again" console_has "$ROOT/c.out" WAITING-VDB
out=$(v detach-disk hs1 vdc --live 2>&1)
check "detach-disk --live of the started-with vdc ($out)" \
    grep -q "Disk detached successfully" <<<"$out"
for _ in $(seq 100); do [ -n "$(vmm_slot vdc)" ] || break; sleep 0.2; done
check "the guest ejected it: cvirt-vmm's bus no longer has it" test -z "$(vmm_slot vdc)"
for _ in $(seq 100); do grep -q "<target dev='vdc'" <(v dumpxml hs1 2>/dev/null) || break; sleep 0.2; done
check "vdc left the live XML" bash -c '! grep -q "<target dev=.vdc." <<<"$0"' "$(v dumpxml hs1 2>&1)"
check "and stays in the persistent definition" grep -q "<target dev='vdc'" <(v dumpxml --inactive hs1)
out=$(v destroy hs1 2>&1)
check "destroy ($out)" grep -q "Domain 'hs1' destroyed" <<<"$out"
tap_done
