#!/bin/bash
# Live migration between two cvirtd daemons on this host (shared storage:
# the same files), driven by Debian's virsh (`migrate --live`, libvirt's
# client-driven v3 sequence) and back by cvirsh: the kit's counter guest
# counts on at the destination instead of starting over, the source ends
# shut off (migrated) or undefined, the destination runs and is persistent
# when asked. Failures leave the source running and its definition in
# place: the destination refuses a name it runs, unsupported options, a
# destination VMM that cannot start.
source "$(dirname "$0")/lib.sh"
source "$CVIRT_SRC/tests/guest/kit/cases.sh"
source "$(dirname "$0")/daemon_lib.sh"

daemon_require virsh qemu-img
daemon_root
VIRSH_TIMEOUT=120
CVIRSH=$CVIRT_BUILD/src/client/cvirsh
daemon_b_init
daemon_test_cleanup() { daemon_b_cleanup; }
counters() { sed -n 's/^counter \([0-9]*\)\r*$/\1/p' "$1"; }
# pty_of VIRSH_FN NAME: the console's pty.
pty_of() { "$1" dumpxml "$2" | sed -n "s|.*<source path='\(/dev/pts/[0-9]*\)'/>.*|\1|p" | head -1; }
# watch VIRSH_FN NAME FILE SECONDS: copies the console to FILE meanwhile.
watch_console() {
    local pty
    pty=$(pty_of "$1" "$2")
    [ -n "$pty" ] || return 1
    timeout "$4" cat "$pty" > "$3" 2>/dev/null &
    CATPID=$!
}

daemon_counter_kit

check "daemon A serves" start_daemon
check "daemon B serves" start_daemon_b

# A raw disk (shared storage: both daemons see the same file), and a
# qcow2 one on a second domain, which is refused.
DISK=$ROOT/mig.img
qemu-img create -q -f raw "$DISK" 16M
DISKXML="<disk type='file' device='disk'><driver name='qemu' type='raw'/>
      <source file='$DISK'/><target dev='vda' bus='virtio'/></disk>"
counter_domxml mig "" "$DISKXML" > "$ROOT/mig.xml"
v define "$ROOT/mig.xml" >/dev/null 2>&1
v start mig >/dev/null 2>&1
check "the domain runs on A" test "$(state mig)" = "running (booted)"

# ---- refusals: the source runs on, nothing is lost ----
out=$(v migrate --live --p2p mig "$URIB" 2>&1); rc=$?
echo "# $out"
check "--p2p: refused (exit status and message)" \
    bash -c '[ "$1" != 0 ] && grep -q "^error: .*p2p migration is not supported" <<<"$0"' "$out" "$rc"
# cvirsh's refusals are virsh's, byte for byte (same exit status).
for opts in "--live --p2p" "--live --copy-storage-all" "--live --tunnelled" \
            "--live --postcopy" "--live --offline" "--offline --persistent"; do
    vout=$(v migrate $opts mig "$URIB" 2>&1); vrc=$?
    cout=$(timeout 60 "$CVIRSH" -c "$URI" migrate $opts mig "$URIB" 2>&1); crc=$?
    echo "# virsh $opts: $vrc $vout"
    check "migrate $opts: cvirsh prints what virsh prints (exit $vrc)" \
        test "$vout" = "$cout" -a "$vrc" = "$crc" -a "$vrc" != 0
done
out=$(v migrate --live --copy-storage-all mig "$URIB" 2>&1); rc=$?
check "--copy-storage-all: refused, naming shared storage" \
    bash -c '[ "$1" != 0 ] && grep -q "storage both hosts share" <<<"$0"' "$out" "$rc"
check "... A still runs it" test "$(state mig)" = "running (booted)"
check "... B has no domain" test -z "$(vb list --all --name | sed '/^$/d')"

# virsh migrate --xml and --dname: refused (the destination would start
# another machine, or another name, than the source sends).
v dumpxml mig > "$ROOT/dest.xml"
out=$(v migrate --live --xml "$ROOT/dest.xml" mig "$URIB" 2>&1); rc=$?
check "--xml: refused" \
    bash -c '[ "$1" != 0 ] && grep -q "^error: Operation not supported: a destination XML (--xml) is not supported" <<<"$0"' "$out" "$rc"
out=$(v migrate --live --dname other mig "$URIB" 2>&1); rc=$?
check "--dname: refused" \
    bash -c '[ "$1" != 0 ] && grep -q "^error: Operation not supported: renaming a domain while migrating it is not supported" <<<"$0"' "$out" "$rc"
echo "# $out"
check "... A still runs it, B has nothing" \
    bash -c 'grep -q "^running" <<<"$0" && [ -z "$1" ]' "$(state mig)" "$(vb list --all --name | sed '/^$/d')"

# A writable qcow2 disk: the destination opens it read-only until the
# source's last writes are in (inactive=on), then as asked.
qemu-img create -q -f qcow2 "$ROOT/q.qcow2" 16M
counter_domxml migq "" "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='$ROOT/q.qcow2'/><target dev='vda' bus='virtio'/></disk>" > "$ROOT/migq.xml"
v create "$ROOT/migq.xml" >/dev/null 2>&1
out=$(v migrate --live migq "$URIB" 2>&1); rc=$?
check "a writable qcow2 disk migrates" test "$rc" = 0
echo "# $out"
check "... B runs it (running, migrated)" test "$(stateb migq)" = "running (migrated)"
check "... A no longer has it (transient, gone)" \
    bash -c '! grep -qx migq <<<"$0"' "$(v list --all --name)"
vb destroy migq >/dev/null 2>&1
check "... qemu-img check after B's VMM ends: the image is clean" qemu-img check -q "$ROOT/q.qcow2"

# The destination runs a domain of that name already.
counter_domxml mig > "$ROOT/migb.xml"
vb create "$ROOT/migb.xml" >/dev/null 2>&1
out=$(v migrate --live mig "$URIB" 2>&1); rc=$?
check "destination runs the name: refused" \
    bash -c '[ "$1" != 0 ] && grep -q "^error: " <<<"$0"' "$out" "$rc"
echo "# $out"
check "... A still runs it" test "$(state mig)" = "running (booted)"
vb destroy mig >/dev/null 2>&1

# A destination whose VMM cannot start.
stop_b() { kill "$PIDB" && wait "$PIDB" 2>/dev/null; PIDB=; }
stop_b
VMM_B=/bin/false start_daemon_b
out=$(v migrate --live mig "$URIB" 2>&1); rc=$?
check "destination VMM fails to start: an error" \
    bash -c '[ "$1" != 0 ] && grep -q "^error: " <<<"$0"' "$out" "$rc"
echo "# $out"
check "... A still runs it" test "$(state mig)" = "running (booted)"
check "... B has nothing left" test -z "$(vb list --all --name | sed '/^$/d')"
stop_b
start_daemon_b

# The destination listens where the source cannot reach it: Perform
# fails, Finish is cancelled (B's copy goes), Confirm lets A run on.
out=$(v migrate --live --listen-address 127.0.0.2 --migrateuri tcp:127.0.0.1 mig "$URIB" 2>&1); rc=$?
echo "# $out"
check "a transfer that fails: the source's one error (not the cancelled Finish's)" \
    bash -c '[ "$1" != 0 ] && [ "$(grep -c "^error: " <<<"$0")" = 1 ] &&
             grep -q "^error: operation failed: .*tcp:127.0.0.1:[0-9]*: Connection refused" <<<"$0"' "$out" "$rc"
check "... A runs it on (running)" bash -c 'grep -q "^running" <<<"$0"' "$(state mig)"
cout=$(timeout 60 "$CVIRSH" -c "$URI" migrate --live --listen-address 127.0.0.2 \
       --migrateuri tcp:127.0.0.1 mig "$URIB" 2>&1); crc=$?
check "... cvirsh reports the same (exit status, message but the port)" \
    test "$crc" = "$rc" -a "$(sed 's/:[0-9]*:/:PORT:/' <<<"$cout")" = "$(sed 's/:[0-9]*:/:PORT:/' <<<"$out")"
check "... A still runs it, B has nothing" \
    bash -c 'grep -q "^running" <<<"$0" && [ -z "$1" ]' "$(state mig)" "$(vb list --all --name | sed '/^$/d')"
check "... B has nothing left" test -z "$(vb list --all --name | sed '/^$/d')"

# ---- virsh migrate --live --persistent --undefinesource A -> B ----
# Lifecycle events on both sides, as virsh event prints them.
timeout 60 virsh -c "$URI" event --all --loop > "$ROOT/ev_a.txt" 2>&1 &
EVA=$!
timeout 60 virsh -c "$URIB" event --all --loop > "$ROOT/ev_b.txt" 2>&1 &
EVB=$!
sleep 1
watch_console v mig "$ROOT/a.txt" 4
sleep 3
wait "$CATPID"
before=$(counters "$ROOT/a.txt" | tail -1)
check "the guest counts on A" test -n "$before"
v migrate --live --persistent --undefinesource mig "$URIB" > "$ROOT/virsh.out" 2>&1; rc=$?
out=$(cat "$ROOT/virsh.out")
check "virsh migrate --live --persistent --undefinesource: exit 0, no output" \
    bash -c '[ "$1" = 0 ] && [ -z "$0" ]' "$out" "$rc"
echo "# $out"
sleep 1
kill "$EVA" "$EVB" 2>/dev/null
wait "$EVA" "$EVB" 2>/dev/null
echo "# A: $(tr '\n' '|' < "$ROOT/ev_a.txt")"
echo "# B: $(tr '\n' '|' < "$ROOT/ev_b.txt")"
check "A's events: Suspended Migrated, Stopped Migrated, Undefined Removed" \
    bash -c 'grep -A9 "for domain .mig.: Suspended Migrated" "$0" | grep -A9 "Stopped Migrated" |
             grep -q "for domain .mig.: Undefined Removed"' "$ROOT/ev_a.txt"
check "B's events: Started Migrated, Resumed Migrated, Defined Added" \
    bash -c 'grep -A9 "for domain .mig.: Started Migrated" "$0" | grep -A9 "Resumed Migrated" |
             grep -q "for domain .mig.: Defined Added"' "$ROOT/ev_b.txt"
check "B runs it (running, migrated)" test "$(stateb mig)" = "running (migrated)"
check "B has it persistent" grep -q "^Persistent: *yes" <(vb dominfo mig)
check "A has undefined it" bash -c '! virsh -c "$0" dominfo mig >/dev/null 2>&1' "$URI"
watch_console vb mig "$ROOT/b.txt" 4
sleep 3
wait "$CATPID"
first=$(counters "$ROOT/b.txt" | head -1)
check "the counter continues on B (it was $before on A, B shows $first)" \
    test -n "$first" -a "${first:-0}" -gt "${before:-0}"
check "B's config dir has the definition" test -f "$ROOTB/etc/cvirt/qemu/mig.xml"

# ---- cvirsh migrate --live B -> A (transient on A, B shut off) ----
timeout 120 "$CVIRSH" -c "$URIB" migrate --live mig "$URI" > "$ROOT/cvirsh.out" 2>&1; rc=$?
out=$(cat "$ROOT/cvirsh.out")
check "cvirsh migrate --live back to A: exit 0" test "$rc" = 0
check "... it prints what virsh printed, byte for byte" cmp -s "$ROOT/virsh.out" "$ROOT/cvirsh.out"
echo "# $out"
check "A runs it (running, migrated)" test "$(state mig)" = "running (migrated)"
check "A has it transient" grep -q "^Persistent: *no" <(v dominfo mig)
check "B has it shut off (migrated), still defined" test "$(stateb mig)" = "shut off (migrated)"
watch_console v mig "$ROOT/a2.txt" 4
sleep 3
wait "$CATPID"
again=$(counters "$ROOT/a2.txt" | head -1)
check "the counter continues on A ($first on B, then $again)" \
    test -n "$again" -a "${again:-0}" -gt "${first:-0}"

v destroy mig >/dev/null 2>&1

# Both daemons stop cleanly, with no sanitizer report in their logs or in
# the logs of the VMMs they ran (a sanitizer build reports there).
stop_daemon
stop_b
check "both daemons and the VMMs wrote their logs" \
    test -s "$ROOT/cvirtd.log" -a -s "$ROOTB/cvirtd.log" -a -s "$ROOTB/var/log/cvirt/qemu/mig.log"
check "no sanitizer report from the daemons or their VMMs" \
    bash -c '! cat "$0"/cvirtd.log "$0"/b/cvirtd.log "$0"/var/log/cvirt/qemu/*.log \
               "$0"/b/var/log/cvirt/qemu/*.log 2>/dev/null | grep -Eq "runtime error|Sanitizer"' "$ROOT"
tap_done
