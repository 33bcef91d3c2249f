#!/bin/bash
# cvirt-vmm's life cycle around a running guest: SIGTERM and SIGINT stop it
# cleanly (status 0, one line saying why), a guest reset reboots in place
# (same process, the guest starts again), the pty console carries the
# guest's output, and Ctrl-A x on a terminal quits.
source "$(dirname "$0")/lib.sh"

HANG=$CVIRT_BUILD/tiny/tiny-hang.elf   # prints TINY-GUEST-UP, then halts
RESET=$CVIRT_BUILD/tiny/tiny-pvh.elf   # prints TINY-GUEST-UP, then resets
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT

# wait_for FILE TEXT COUNT: until FILE holds COUNT lines with TEXT (10 s).
wait_for() {
    local i
    for ((i = 0; i < 100; i++)); do
        [ "$(grep -c "$2" "$1" 2>/dev/null)" -ge "$3" ] && return 0
        sleep 0.1
    done
    return 1
}

# stop PID DESC: SIGTERM, then up to 10 s for a clean exit; a monitor that
# does not stop is a failure (and gets SIGKILL).
stop() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid"; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid"; wait "$pid"
    return 1
}

# stop_with SIGNAL: the guest runs until the signal, then a clean exit.
stop_with() {
    local sig=$1
    "$VMM" --kernel "$HANG" --memory 64M </dev/null >"$tmp/out" 2>"$tmp/err" &
    local pid=$!
    if ! wait_for "$tmp/out" TINY-GUEST-UP 1; then
        tap_fail "SIG$sig: guest ran before the signal"
        kill -KILL $pid; wait $pid
        return
    fi
    kill -"$sig" $pid
    local rc
    wait $pid; rc=$?
    check "SIG$sig: exit status 0 (got $rc)" [ "$rc" = 0 ]
    check "SIG$sig: one line says why" \
        bash -c '[ "$(wc -l <"$1")" = 1 ] && grep -q "terminating on signal" "$1"' _ "$tmp/err"
}

main() {
    have_kvm || return
    stop_with TERM
    stop_with INT

    # Reboot in place: the resetting guest comes up again and again in the
    # same process until it is stopped.
    "$VMM" --kernel "$RESET" --memory 64M </dev/null >"$tmp/out" 2>"$tmp/err" &
    local pid=$!
    check "guest reset reboots in place (3 boots in one process)" wait_for "$tmp/out" TINY-GUEST-UP 3
    check "the monitor is still running after the resets" kill -0 $pid
    check "SIGTERM stops a guest that keeps resetting" stop $pid

    # The pty console: its path on stderr, the guest's output on it.
    "$VMM" --kernel "$HANG" --memory 64M --console pty </dev/null >"$tmp/out" 2>"$tmp/err" &
    pid=$!
    local pty=""
    wait_for "$tmp/err" "/dev/pts/" 1 && pty=$(grep -o '/dev/pts/[0-9]*' "$tmp/err" | head -n 1)
    check "--console pty names its pseudo-terminal ('$pty')" [ -c "$pty" ]
    if [ -c "$pty" ]; then
        timeout 3 cat "$pty" >"$tmp/pty" 2>/dev/null
        check "the guest's line arrives on the pty" grep -q TINY-GUEST-UP "$tmp/pty"
    fi
    check "nothing of the guest's goes to stdout with --console pty" [ ! -s "$tmp/out" ]
    check "SIGTERM stops the pty-console VM" stop $pid

    # Ctrl-A x on a terminal ends the VM with status 0.
    (sleep 1; printf '\001x') | timeout 20 script -qec "$VMM --kernel $HANG --memory 64M" \
        /dev/null >"$tmp/out" 2>&1
    local rc=$?
    check "Ctrl-A x on a terminal quits (script status $rc)" [ "$rc" = 0 ]
    check "the guest ran on that terminal" grep -q TINY-GUEST-UP "$tmp/out"
}

main
tap_done
