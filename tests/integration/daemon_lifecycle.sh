#!/bin/bash
# Domains through Debian's real virsh against cvirtd --root: define, list,
# dominfo, start, domstate --reason, console output, suspend/resume,
# dumpxml, reboot, autostart, setmem/attach-disk in the config, destroy,
# undefine, a guest that powers itself off, a cvirt-vmm killed under the
# daemon (shut off, crashed, with the event delivered to `virsh event`),
# and the bad inputs each answered with one clear error while nothing on
# disk changes. The guest is the kit's counter program, which prints a
# numbered line every 100 ms of guest time until it is told to stop.
source "$(dirname "$0")/lib.sh"
source "$CVIRT_SRC/tests/guest/kit/cases.sh"

source "$(dirname "$0")/daemon_lib.sh"

daemon_require virsh
daemon_root
EVPID=
daemon_test_cleanup() { [ -n "$EVPID" ] && kill "$EVPID" 2>/dev/null; }
CONF=$ROOT/etc/cvirt/qemu
RUN=$ROOT/run/cvirt/qemu

start_daemon
check "cvirtd serves under --root" test -S "$SOCK"


# The serial pty of a running domain, from its live XML.
pty_of() { v dumpxml "$1" | sed -n "s|.*<source path='\(/dev/pts/[0-9]*\)'/>.*|\1|p" | head -1; }
# Reads a pty for S seconds (what the guest printed meanwhile).
read_pty() { timeout "$2" cat "$1" 2>/dev/null; true; }
# True when a process has exited: gone, or a zombie its new parent (not
# the daemon: VMMs are detached) has not reaped yet.
vmm_gone() { [ ! -e /proc/$1 ] || [ "$(awk '{print $3}' /proc/$1/stat 2>/dev/null)" = Z ]; }
# Every file under the config folder with its content hash.
conf_snapshot() { (cd "$CONF" && find . -type f -o -type l | sort | xargs -r sha256sum); }

daemon_counter_kit

# ---- define, list, dominfo ----
counter_domxml lc1 > "$ROOT/lc1.xml"
out=$(v define "$ROOT/lc1.xml" 2>&1)
check "define: virsh reports the domain defined" grep -q "Domain 'lc1' defined" <<<"$out"
check "define: the definition is saved under CONFIG/qemu" test -f "$CONF/lc1.xml"
out=$(v list --all 2>&1)
check "list --all shows the defined domain shut off" grep -qE '^ -  +lc1 +shut off' <<<"$out"
out=$(v list 2>&1)
check "list (active only) leaves it out" bash -c '! grep -q lc1 <<<"$0"' "$out"
out=$(v dominfo lc1 2>&1)
check "dominfo: shut off, 1 CPU, 65536 KiB, persistent, no autostart" \
    bash -c 'grep -qE "^State: +shut off" <<<"$0" && grep -qE "^CPU\(s\): +1$" <<<"$0" &&
             grep -qE "^Max memory: +65536 KiB" <<<"$0" && grep -qE "^Persistent: +yes" <<<"$0" &&
             grep -qE "^Autostart: +disable" <<<"$0"' "$out"
uuid=$(v domuuid lc1 | head -1)
check "dumpxml --inactive carries the generated uuid" \
    bash -c 'virsh -c "$0" dumpxml --inactive lc1 | grep -q "<uuid>$1</uuid>"' "$URI" "$uuid"
check "domstate --reason of a never started domain" test "$(state lc1)" = "shut off (unknown)"

# ---- start, console, suspend/resume ----
out=$(v start lc1 2>&1)
check "start: virsh reports the domain started" grep -q "Domain 'lc1' started" <<<"$out"
check "domstate --reason: running (booted)" test "$(state lc1)" = "running (booted)"
out=$(v list 2>&1)
check "list shows it running with id 1" grep -qE '^ 1 +lc1 +running' <<<"$out"
vmm_pid=$(cat "$RUN/lc1.pid" 2>/dev/null)
check "the pid file names a live cvirt-vmm with a control socket" \
    bash -c 'tr "\0" " " < /proc/$0/cmdline | grep -q "cvirt-vmm.*--control $1/lc1.sock"' \
    "$vmm_pid" "$RUN"
check "the VMM is detached: not the daemon's child, its own session" \
    bash -c '[ "$(ps -o ppid= -p $0 | tr -d " ")" != "$1" ] &&
             [ "$(ps -o sid= -p $0 | tr -d " ")" != "$(ps -o sid= -p $1 | tr -d " ")" ]' \
    "$vmm_pid" "$PID"
pty=$(pty_of lc1)
check "live XML has the serial pty the VMM opened" test -c "$pty"
check "the console shows the guest counting" grep -q '^counter [0-9]' <(read_pty "$pty" 2)
# virsh console needs a terminal: script(1) gives it one; ^] (0x1d) ends it.
console() { (sleep "$2"; printf '\035') | timeout 30 script -qec "virsh -c '$URI' console $1" /dev/null 2>&1; }
out=$(console lc1 2); rc=$?
check "virsh console shows the guest counting, ^] leaves it with exit 0" \
    bash -c '[ $1 = 0 ] && grep -q "Connected to domain .lc1." <<<"$0" &&
             grep -q "^counter [0-9]" <<<"$(tr -d "\r" <<<"$0")"' "$out" "$rc"
console lc1 3 >/dev/null &
cpid=$!
sleep 1
out=$(console lc1 0.5)
wait $cpid
check "a second console while one is open: libvirt's error" \
    grep -q "Active console session exists for this domain" <<<"$out"
out=$(v dumpxml lc1 2>&1)
check "live XML has the domain id" grep -q "<domain type='kvm' id='1'>" <<<"$out"
out=$(v dominfo lc1 2>&1)
check "dominfo while running: id 1, state running" \
    bash -c 'grep -qE "^Id: +1$" <<<"$0" && grep -qE "^State: +running" <<<"$0"' "$out"

out=$(v suspend lc1 2>&1)
check "suspend" grep -q "Domain 'lc1' suspended" <<<"$out"
check "domstate --reason: paused (user)" test "$(state lc1)" = "paused (user)"
read_pty "$pty" 0.5 >/dev/null     # what was printed before the pause
check "a paused guest prints nothing" test -z "$(read_pty "$pty" 1.5)"
out=$(v resume lc1 2>&1)
check "resume" grep -q "Domain 'lc1' resumed" <<<"$out"
check "domstate --reason: running (unpaused)" test "$(state lc1)" = "running (unpaused)"
check "the resumed guest counts again" grep -q '^counter [0-9]' <(read_pty "$pty" 2)

# ---- reboot: the counter starts again from 1 ----
read_pty "$pty" 0.3 >/dev/null
out=$(v reboot lc1 2>&1)
check "reboot is accepted" grep -q "Domain 'lc1' is being rebooted" <<<"$out"
check "after the reset the guest counts from 1 again" grep -q '^counter 1$' <(read_pty "$pty" 3)
check "still running after reboot, same VMM" \
    bash -c '[ "$(cat $0)" = "$1" ] && kill -0 $1' "$RUN/lc1.pid" "$vmm_pid"

# ---- autostart ----
out=$(v autostart lc1 2>&1)
check "autostart: a link in CONFIG/qemu/autostart" \
    bash -c '[ "$(readlink "$0/autostart/lc1.xml")" = "$0/lc1.xml" ]' "$CONF"
check "dominfo shows autostart enabled" grep -qE "^Autostart: +enable" <(v dominfo lc1)
v autostart --disable lc1 >/dev/null 2>&1
check "autostart --disable removes the link" test ! -e "$CONF/autostart/lc1.xml"

# ---- config changes while running ----
qemu-img create -f qcow2 "$ROOT/extra.qcow2" 16M >/dev/null
out=$(v attach-disk lc1 "$ROOT/extra.qcow2" vdb --subdriver qcow2 --config 2>&1)
check "attach-disk --config" grep -q "Disk attached successfully" <<<"$out"
check "the disk is in the saved definition, not in the live one" \
    bash -c 'grep -q "extra.qcow2" "$0/lc1.xml" && ! virsh -c "$1" dumpxml lc1 | grep -q extra.qcow2' \
    "$CONF" "$URI"
# A VMM with a control socket always has a PCI bus, so a live attach
# plugs the disk in (the guest sees it or not: this one has no driver).
qemu-img create -f qcow2 "$ROOT/extra2.qcow2" 16M >/dev/null
out=$(v attach-disk lc1 "$ROOT/extra2.qcow2" vdc --subdriver qcow2 --live 2>&1)
check "attach-disk --live: in the live XML, not in the saved definition" \
    bash -c 'grep -q "Disk attached successfully" <<<"$0" &&
             virsh -c "$1" dumpxml lc1 | grep -q "dev=.vdc." && ! grep -q "extra2.qcow2" "$2/lc1.xml"' \
    "$out" "$URI" "$CONF"
out=$(v detach-disk lc1 vdb --config 2>&1)
check "detach-disk --config" \
    bash -c 'grep -q "Disk detached successfully" <<<"$0" && ! grep -q extra.qcow2 "$1/lc1.xml"' \
    "$out" "$CONF"
v setmem lc1 32M --config >/dev/null 2>&1
check "setmem --config changes currentMemory of the saved definition only" \
    bash -c 'grep -q "<currentMemory unit=.KiB.>32768</currentMemory>" "$0/lc1.xml" &&
             virsh -c "$1" dominfo lc1 | grep -qE "^Used memory: +65536 KiB"' "$CONF" "$URI"
v setmaxmem lc1 96M --config >/dev/null 2>&1
check "setmaxmem --config changes <memory> of the saved definition" \
    grep -q "<memory unit=.KiB.>98304</memory>" "$CONF/lc1.xml"
out=$(v setmaxmem lc1 8P --config 2>&1)
check "setmaxmem beyond what cvirt-vmm boots: refused" \
    grep -q "error: invalid argument: maximum memory must be between" <<<"$out"
out=$(v setmem lc1 32M --live 2>&1)
check "setmem --live without a balloon: libvirt's error" \
    grep -q "without the balloon device" <<<"$out"

counter_domxml lcb "" "<memballoon model='virtio'/>" > "$ROOT/lcb.xml"
v define "$ROOT/lcb.xml" >/dev/null 2>&1
v start lcb >/dev/null 2>&1
out=$(v setmem lcb 32M --live 2>&1); rc=$?
check "setmem --live with a balloon: the new size is reported" \
    bash -c '[ $1 = 0 ] && virsh -c "$2" dominfo lcb | grep -qE "^Used memory: +32768 KiB"' \
    "$out" "$rc" "$URI"
out=$(v setmem lcb 128M --live 2>&1)
check "setmem --live above the maximum: refused" \
    grep -q "cannot set memory higher than max memory" <<<"$out"
v destroy lcb >/dev/null 2>&1
v undefine lcb >/dev/null 2>&1

# ---- errors: the daemon refuses, nothing on disk changes ----
before=$(conf_snapshot)
printf '<domain><name>broken' > "$ROOT/bad.xml"
out=$(v define "$ROOT/bad.xml" 2>&1); rc=$?
check "malformed XML: exit 1 and an XML error" \
    bash -c '[ $1 = 1 ] && grep -q "^error: XML error: " <<<"$0"' "$out" "$rc"
counter_domxml lc1 "" "" "<uuid>11111111-2222-3333-4444-555555555555</uuid>" > "$ROOT/dupname.xml"
out=$(v define "$ROOT/dupname.xml" 2>&1)
check "duplicate name with another uuid: refused" \
    grep -q "error: operation failed: domain 'lc1' already exists with uuid $uuid" <<<"$out"
counter_domxml other "" "" "<uuid>$uuid</uuid>" > "$ROOT/dupuuid.xml"
out=$(v define "$ROOT/dupuuid.xml" 2>&1)
check "duplicate uuid with another name: refused" \
    grep -q "error: operation failed: domain 'lc1' is already defined with uuid $uuid" <<<"$out"
out=$(v dominfo nosuch 2>&1); rc=$?
check "unknown domain: exit 1, failed to get domain" \
    bash -c '[ $1 = 1 ] && grep -q "error: failed to get domain .nosuch." <<<"$0"' "$out" "$rc"
out=$(v start lc1 2>&1)
check "start of a running domain: already active (virsh checks the id)" \
    grep -q "error: Domain is already active" <<<"$out"
out=$(timeout 30 virsh -r -c "$URI_RO" destroy lc1 2>&1); rc=$?
check "destroy on the read-only socket: access denied, exit 1" \
    bash -c '[ $1 = 1 ] && grep -q "read only access prevents virDomainDestroy" <<<"$0"' "$out" "$rc"
check "... and the domain still runs" grep -q "^running" <<<"$(state lc1)"
check "the refused calls changed nothing under CONFIG" test "$before" = "$(conf_snapshot)"
counter_domxml lc3 "" "<disk type='file' device='disk'><source file='$ROOT/missing.img'/><target dev='vda' bus='virtio'/></disk>" > "$ROOT/lc3.xml"
v define "$ROOT/lc3.xml" >/dev/null 2>&1
out=$(v start lc3 2>&1); rc=$?
check "missing disk file at start: exit 1, names the file" \
    bash -c '[ $1 = 1 ] && grep -q "Cannot access storage file .$2/missing.img.: No such file or directory" <<<"$0"' \
    "$out" "$rc" "$ROOT"
check "... the domain stays shut off with no run-time files" \
    bash -c '[ "$(virsh -c "$0" domstate lc3 | head -1)" = "shut off" ] && [ ! -e "$1/lc3.pid" ]' \
    "$URI" "$RUN"
v undefine lc3 >/dev/null 2>&1
check "undefine of an inactive domain removes it and its file" \
    bash -c '! virsh -c "$0" list --all --name | grep -qx lc3 && [ ! -e "$1/lc3.xml" ]' "$URI" "$CONF"

# ---- a VMM killed under the daemon: crashed, and the event ----
timeout 300 virsh -c "$URI" event --all --loop >"$ROOT/events.txt" 2>&1 &
EVPID=$!
sleep 1
kill -9 "$vmm_pid"
check "a killed VMM: shut off (crashed)" wait_state lc1 "shut off (crashed)" 10
for _ in $(seq 30); do grep -q "Stopped Failed" "$ROOT/events.txt" && break; sleep 0.1; done
check "virsh event got the lifecycle event" \
    grep -q "event 'lifecycle' for domain 'lc1': Stopped Failed" "$ROOT/events.txt"
check "its run-time files are gone" test ! -e "$RUN/lc1.pid" -a ! -e "$RUN/lc1.xml"

# ---- destroy ----
v start lc1 >/dev/null 2>&1
vmm_pid=$(cat "$RUN/lc1.pid" 2>/dev/null)
out=$(v destroy lc1 2>&1)
check "destroy" grep -q "Domain 'lc1' destroyed" <<<"$out"
check "domstate --reason: shut off (destroyed)" test "$(state lc1)" = "shut off (destroyed)"
check "the VMM process is gone" vmm_gone "$vmm_pid"
for _ in $(seq 30); do grep -q "Stopped Destroyed" "$ROOT/events.txt" && break; sleep 0.1; done
check "virsh event saw start and destroy" \
    bash -c 'grep -q "lc1.: Started Booted" "$0" && grep -q "lc1.: Stopped Destroyed" "$0"' \
    "$ROOT/events.txt"

# ---- save and restore: the guest counts on from where it was ----
v start lc1 >/dev/null 2>&1
pty=$(pty_of lc1)
timeout 60 cat "$pty" > "$ROOT/before.txt" 2>/dev/null &
catpid=$!
sleep 1.5
out=$(v save lc1 "$ROOT/lc1.save" 2>&1)
wait "$catpid"     # the pty ends with the VMM
check "save" grep -q "Domain 'lc1' saved to $ROOT/lc1.save" <<<"$out"
check "domstate --reason: shut off (saved)" test "$(state lc1)" = "shut off (saved)"
last=$(sed -n 's/^counter \([0-9]*\)\r*$/\1/p' "$ROOT/before.txt" | tail -1)
out=$(v restore "$ROOT/lc1.save" 2>&1)
check "restore" grep -q "Domain restored from $ROOT/lc1.save" <<<"$out"
check "domstate --reason: running (restored)" test "$(state lc1)" = "running (restored)"
first=$(read_pty "$(pty_of lc1)" 2 | sed -n 's/^counter \([0-9]*\)\r*$/\1/p' | head -1)
check "the restored guest counts on ($last before the save, $first after)" \
    test -n "$last" -a -n "$first" -a "${first:-0}" -gt "${last:-0}" -a "${first:-0}" -le "$((${last:-0} + 2))"
out=$(v restore "$ROOT/lc1.save" 2>&1)
check "restore while it runs: already active" \
    grep -q "error: Requested operation is not valid: domain 'lc1' is already active" <<<"$out"
out=$(v restore "$ROOT/lc1.xml" 2>&1)
check "restore of a file that is not a save file: refused" \
    grep -q "is not a cvirt save file" <<<"$out"
{ head -c 8192 /dev/zero; printf 'CVIRTDOM\xff\xff\xff\xff\0\0\0\0'; } > "$ROOT/forged.save"
out=$(v restore "$ROOT/forged.save" 2>&1)
check "restore of a file whose footer claims too much XML: refused" \
    grep -q "the domain XML length 4294967295 does not fit the file" <<<"$out"
for _ in $(seq 30); do grep -q "lc1.: Started Restored" "$ROOT/events.txt" && break; sleep 0.1; done
check "events: Stopped Saved, Started Restored" \
    bash -c 'grep -q "lc1.: Stopped Saved" "$0" && grep -q "lc1.: Started Restored" "$0"' \
    "$ROOT/events.txt"
v destroy lc1 >/dev/null 2>&1

# ---- managed save: kept by the daemon, restored by the next start ----
v start lc1 >/dev/null 2>&1
sleep 1
out=$(v managedsave lc1 2>&1)
check "managedsave" grep -q "Domain 'lc1' state saved by libvirt" <<<"$out"
check "... the image is under the state folder, dominfo says so" \
    bash -c '[ -f "$0/var/lib/cvirt/qemu/save/lc1.save" ] &&
             virsh -c "$1" dominfo lc1 | grep -qE "^Managed save: +yes"' "$ROOT" "$URI"
check "list --managed-save shows it saved" grep -qE '^ - +lc1 +saved' <(v list --all --managed-save)
out=$(v start lc1 2>&1)
check "start restores the managed save" \
    bash -c 'grep -q "started" <<<"$0" && [ "$(virsh -c "$1" domstate --reason lc1 | head -1)" = "running (restored)" ]' \
    "$out" "$URI"
check "... and removes the image" test ! -e "$ROOT/var/lib/cvirt/qemu/save/lc1.save"
v managedsave lc1 >/dev/null 2>&1
out=$(v managedsave-remove lc1 2>&1)
check "managedsave-remove" \
    bash -c 'grep -q "Removed managedsave image" <<<"$0" && [ ! -e "$1/var/lib/cvirt/qemu/save/lc1.save" ]' \
    "$out" "$ROOT"

# ---- create: a transient domain ----
counter_domxml tr1 > "$ROOT/tr1.xml"
out=$(v create "$ROOT/tr1.xml" 2>&1)
check "create starts a transient domain" grep -q "Domain 'tr1' created" <<<"$out"
check "... listed as transient and running, with no definition file" \
    bash -c 'virsh -c "$0" list --transient | grep -qE " tr1 +running" && [ ! -e "$1/tr1.xml" ]' \
    "$URI" "$CONF"
v destroy tr1 >/dev/null 2>&1
check "... and gone from list --all once destroyed" \
    bash -c '! virsh -c "$0" list --all --name | grep -qx tr1' "$URI"

# ---- a name too long for a socket path (the control socket uses the uuid) ----
long=$(printf 'n%.0s' $(seq 150))
counter_domxml "$long" > "$ROOT/long.xml"
v define "$ROOT/long.xml" >/dev/null 2>&1
v start "$long" >/dev/null 2>&1
check "a domain with a 150-byte name runs" test "$(state "$long")" = "running (booted)"
v destroy "$long" >/dev/null 2>&1
v undefine "$long" >/dev/null 2>&1
check "... and is destroyed and undefined" \
    bash -c '! virsh -c "$0" list --all --name | grep -q nnnn && [ -z "$(ls "$1")" ]' "$URI" "$RUN"

# ---- a guest that powers itself off ----
counter_domxml lc2 count=5 > "$ROOT/lc2.xml"
v define "$ROOT/lc2.xml" >/dev/null 2>&1
v start lc2 >/dev/null 2>&1
check "a guest that powers off: shut off (shutdown)" wait_state lc2 "shut off (shutdown)" 30
for _ in $(seq 30); do grep -q "lc2.: Stopped Shutdown" "$ROOT/events.txt" && break; sleep 0.1; done
check "... with its Shutdown and Stopped events" \
    bash -c 'grep -q "lc2.: Shutdown Finished\|lc2.: Shutdown Guest" "$0" &&
             grep -q "lc2.: Stopped Shutdown" "$0"' "$ROOT/events.txt"

# ---- <on_poweroff>restart</on_poweroff>: the guest boots again ----
counter_domxml lc4 count=3 > "$ROOT/lc4.xml"
sed -i "s|</os>|</os><on_poweroff>restart</on_poweroff>|" "$ROOT/lc4.xml"
v define "$ROOT/lc4.xml" >/dev/null 2>&1
v start lc4 >/dev/null 2>&1
for _ in $(seq 300); do
    [ "$(grep -c "lc4.: Started Booted" "$ROOT/events.txt")" -ge 3 ] && break
    sleep 0.1
done
check "on_poweroff=restart: each power-off is followed by a new start" \
    bash -c '[ "$(grep -c "lc4.: Stopped Shutdown" "$0")" -ge 2 ] &&
             [ "$(grep -c "lc4.: Started Booted" "$0")" -ge 3 ]' "$ROOT/events.txt"
v destroy lc4 >/dev/null 2>&1
check "... until it is destroyed" test "$(state lc4)" = "shut off (destroyed)"

# ---- undefine of a running domain: transient until it stops ----
v start lc1 >/dev/null 2>&1
out=$(v undefine lc1 2>&1)
check "undefine of a running domain succeeds" grep -q "Domain 'lc1' has been undefined" <<<"$out"
check "... it keeps running, no longer persistent, its file removed" \
    bash -c 'virsh -c "$0" dominfo lc1 | grep -qE "^Persistent: +no" && [ ! -e "$1/lc1.xml" ]' \
    "$URI" "$CONF"
v destroy lc1 >/dev/null 2>&1
check "... and is gone once destroyed" bash -c '! virsh -c "$0" list --all --name | grep -qx lc1' "$URI"

# ---- shutdown: the real Linux guest presses its ACPI power button ----
linux_shutdown() {
    local env
    if ! env=$("$CVIRT_SRC/tests/guest/linux/prepare.sh"); then
        tap_fail "building the Linux guest (see stderr)"
        return
    fi
    eval "$env"
    cat > "$ROOT/lx.xml" <<EOF
<domain type='kvm'>
  <name>lx</name>
  <memory unit='MiB'>256</memory>
  <os><type>hvm</type><kernel>$KERNEL</kernel><initrd>$INITRD</initrd>
      <cmdline>$(cat "$CMDLINE_FILE") cvirt.run=echo%20SLEEPING;sleep%20600</cmdline></os>
  <features><acpi/></features>
  <devices><serial type='pty'/></devices>
</domain>
EOF
    v define "$ROOT/lx.xml" >/dev/null 2>&1
    out=$(v start lx 2>&1)
    check "the Linux guest starts" grep -q "Domain 'lx' started" <<<"$out"
    local pty
    pty=$(pty_of lx)
    timeout "${CVIRT_GUEST_TIMEOUT:-240}" cat "$pty" > "$ROOT/lx.console" 2>/dev/null &
    local cat_pid=$! up=0
    for _ in $(seq $((${CVIRT_GUEST_TIMEOUT:-240} * 2))); do
        grep -q SLEEPING "$ROOT/lx.console" && { up=1; break; }
        sleep 0.5
    done
    check "the Linux guest boots and runs its command" test "$up" = 1
    out=$(v shutdown lx 2>&1)
    check "virsh shutdown is accepted" grep -q "Domain 'lx' is being shutdown" <<<"$out"
    check "the guest powers off: shut off (shutdown)" wait_state lx "shut off (shutdown)" 120
    for _ in $(seq 30); do grep -q "lx.: Stopped Shutdown" "$ROOT/events.txt" && break; sleep 0.1; done
    check "events: shutdown after guest request, then stopped" \
        bash -c 'grep -q "lx.: Shutdown Finished after guest request" "$0" &&
                 grep -q "lx.: Stopped Shutdown" "$0"' "$ROOT/events.txt"
    kill "$cat_pid" 2>/dev/null
}
linux_shutdown

check "the daemon is still up" kill -0 "$PID"
tap_done
