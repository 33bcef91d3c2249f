#!/bin/bash
# cvirtd answers other calls while a start waits for its VMM: cvirtd runs a
# wrapper as its VMM that stops at a gate (a file the test creates) before
# running the real cvirt-vmm, so a start stays in flight for as long as the
# test wants. Meanwhile python3-libvirt and Debian's virsh list, count and
# ask for versions (from another client and from the starting client
# itself), a suspend of the same domain gets libvirt's state change lock
# error, and only then is the gate opened: the completion order is
# checked, not any timing. Then a VMM that fails at the gate (one error,
# the domain shut off as failed), a client that disconnects mid-start
# (the start completes, the daemon goes on), and destroy ending the job in
# flight instead of waiting for it: a save hanging in its migration (to a
# FIFO nobody reads) and a start held at the gate, each with an error for
# its own caller and nothing left behind.
source "$(dirname "$0")/lib.sh"
source "$CVIRT_SRC/tests/guest/kit/cases.sh"
source "$(dirname "$0")/daemon_lib.sh"

PY=${CVIRT_PYTHON3:-/usr/bin/python3}
daemon_require virsh
if ! "$PY" -c 'import libvirt' 2>/dev/null; then
    tap_fail "python3-libvirt is required (scripts/deps.sh installs it)"
    tap_done
    exit 1
fi
daemon_root
daemon_counter_kit

start_gated_daemon
check "cvirtd serves with the gated VMM" test -S "$SOCK"

counter_domxml gated >"$ROOT/gated.xml"
check "define" v define "$ROOT/gated.xml"

# The Python part's checks, numbered here; it must report all 30 of them
# and exit 0 (a crash half-way is a failure, not a shorter run).
npy=0 pyrc=none
while IFS= read -r line; do
    case $line in
        "ok - "*) tap_ok "${line#ok - }"; npy=$((npy + 1)) ;;
        "not ok - "*) tap_fail "${line#not ok - }"; npy=$((npy + 1)) ;;
        "exit "*) pyrc=${line#exit } ;;
        *) echo "# $line" ;;
    esac
done < <(timeout 600 "$PY" "$(dirname "$0")/daemon_deferred.py" "$URI" "$GATE" gated 2>&1;
         echo "exit $?")
check "python3-libvirt's part ran to its end (exit $pyrc, $npy checks)" \
    test "$pyrc" = 0 -a "$npy" = 30
check "cvirtd still runs" kill -0 "$PID"
check "no VMM left running" bash -c '! ls "$0"/run/cvirt/qemu/*.pid 2>/dev/null' "$ROOT"
tap_done
