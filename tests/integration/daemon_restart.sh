#!/bin/bash
# cvirtd killed with SIGKILL while two VMs run: the VMs keep running, and a
# new cvirtd finds them again (same ids, the paused one still paused),
# manages them (suspend, resume, destroy, a crash noticed), starts the
# autostart domain, skips a corrupt definition without deleting it, and
# cleans up the run-time files of a VMM that is gone. Real virsh is the
# client; the kit's counter program is the guest.
source "$(dirname "$0")/lib.sh"
source "$CVIRT_SRC/tests/guest/kit/cases.sh"

source "$(dirname "$0")/daemon_lib.sh"

daemon_require virsh
daemon_root
CONF=$ROOT/etc/cvirt/qemu
RUN=$ROOT/run/cvirt/qemu
# An exited VMM may stay a zombie of whoever adopted it (not the daemon).
gone() { [ ! -e /proc/$1 ] || [ "$(awk '{print $3}' /proc/$1/stat 2>/dev/null)" = Z ]; }

daemon_counter_kit

check "cvirtd starts" start_daemon
for n in r1 r2 r3; do
    counter_domxml $n > "$ROOT/$n.xml"
    v define "$ROOT/$n.xml" >/dev/null 2>&1
done
v start r1 >/dev/null 2>&1
v start r2 >/dev/null 2>&1
v suspend r2 >/dev/null 2>&1
check "two domains run, one of them paused" \
    bash -c '[ "$(virsh -c "$0" domstate r1)" = running ] && [ "$(virsh -c "$0" domstate r2)" = paused ]' \
    "$URI"
id1=$(v domid r1 | head -1)
id2=$(v domid r2 | head -1)
pid1=$(cat "$RUN/r1.pid")
pid2=$(cat "$RUN/r2.pid")
v autostart r3 >/dev/null 2>&1

kill -9 "$PID"
wait "$PID" 2>/dev/null
PID=
sleep 0.5
check "SIGKILL of cvirtd leaves both VMMs running" bash -c 'kill -0 $0 && kill -0 $1' "$pid1" "$pid2"

# While the daemon is down: a corrupt definition, and the run-time files of
# a VMM that is gone (a pid that no longer exists).
printf '<domain><name>corrupt</name><memory>nonsense' > "$CONF/corrupt.xml"
sleep 0 & dead=$!
wait "$dead"
echo "$dead" > "$RUN/ghost.pid"
cp "$RUN/r1.xml" "$RUN/ghost.xml"

check "cvirtd starts again" start_daemon
out=$(v list --all 2>&1)
check "r1 is running again with its old id" grep -qE "^ $id1 +r1 +running" <<<"$out"
check "r2 is paused again with its old id" grep -qE "^ $id2 +r2 +paused" <<<"$out"
check "the autostart domain r3 was started" grep -qE "^ [0-9]+ +r3 +running" <<<"$out"
check "the VMMs are the same processes" \
    bash -c '[ "$(cat $0/r1.pid)" = $1 ] && [ "$(cat $0/r2.pid)" = $2 ]' "$RUN" "$pid1" "$pid2"
check "the corrupt definition is logged once and skipped" \
    test "$(grep -c "corrupt.xml: .*skipped" "$ROOT/cvirtd.log")" = 1
check "... and kept on disk" test -f "$CONF/corrupt.xml"
check "the gone VMM's run-time files are cleaned up" test ! -e "$RUN/ghost.pid" -a ! -e "$RUN/ghost.xml"
check "... and no domain appeared for it" bash -c '! virsh -c "$0" list --all --name | grep -qx ghost' "$URI"

# Managed as before.
v resume r2 >/dev/null 2>&1
check "resume of the reattached paused domain" test "$(state r2)" = "running (unpaused)"
v suspend r1 >/dev/null 2>&1
check "suspend of a reattached domain" test "$(state r1)" = "paused (user)"
v resume r1 >/dev/null 2>&1
out=$(v destroy r1 2>&1)
check "destroy of a reattached domain" \
    bash -c 'grep -q "destroyed" <<<"$0" && [ "$(virsh -c "$1" domstate --reason r1 | head -1)" = "shut off (destroyed)" ]' \
    "$out" "$URI"
check "... its VMM is gone" gone "$pid1"
kill -9 "$pid2"
check "a reattached VMM that dies is noticed: shut off (crashed)" wait_state r2 "shut off (crashed)" 10

# A plain SIGTERM of the daemon leaves VMMs running too.
pid3=$(cat "$RUN/r3.pid")
kill "$PID"
wait "$PID" 2>/dev/null
PID=
check "SIGTERM of cvirtd leaves the VMM running" kill -0 "$pid3"
check "cvirtd starts a third time" start_daemon
check "r3 still running and manageable" \
    bash -c '[ "$(virsh -c "$0" domstate r3)" = running ] && virsh -c "$0" destroy r3 >/dev/null &&
             [ "$(virsh -c "$0" domstate r3)" = "shut off" ]' "$URI"
tap_done
