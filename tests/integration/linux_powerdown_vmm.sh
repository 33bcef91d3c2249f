#!/bin/bash
# Graceful power-down of the real Linux guest on cvirt-vmm: QMP
# system_powerdown presses the ACPI power button, the guest's acpid runs
# poweroff, and the monitor exits 0 after a SHUTDOWN event that says the
# guest did it. The guest is told to sleep for far longer than the test
# waits, so only the button can end it in time. The same guest and client
# run on QEMU first, to show the guest's side works on the reference.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/qmp_lib.sh"

GUEST=$CVIRT_SRC/tests/guest/linux
QMP_PY=$(dirname "$0")/qmp.py
TIMEOUT=${CVIRT_GUEST_TIMEOUT:-240}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT

# Waits for the marker, presses the button, reports what the client saw.
powerdown() {
    python3 - "$QMP_PY" "$tmp/vm.sock" "$tmp/out" "$TIMEOUT" <<'EOF' 2>&1
import os, sys, time
sys.path.insert(0, os.path.dirname(sys.argv[1]))
import qmp
sock, out, timeout = sys.argv[2], sys.argv[3], float(sys.argv[4])
def check(cond, desc):
    print(("PASS " if cond else "FAIL ") + desc, flush=True)
c = qmp.Client(sock)
c.negotiate()
deadline = time.monotonic() + timeout
up = False
while time.monotonic() < deadline and not up:
    with open(out, errors="replace") as f:
        up = "SLEEPING" in f.read()
    time.sleep(0.5)
check(up, "the guest booted and its command is running")
if up:
    check(c.execute("system_powerdown") == {}, "system_powerdown returns {}")
    check(c.wait_event("POWERDOWN", timeout=10) is not None, "POWERDOWN event")
    t = time.monotonic()
    try:
        ev = c.wait_event("SHUTDOWN", timeout=120)
        check(ev.get("data") == {"guest": True, "reason": "guest-shutdown"},
              "SHUTDOWN from the guest (%s), %.1f s after the button" %
              (ev.get("data"), time.monotonic() - t))
    except (TimeoutError, EOFError) as e:
        check(False, "SHUTDOWN from the guest (%s)" % e)
EOF
}

# press NAME PID: the client's checks, then the process's exit, prefixed
# with NAME; the VM's console is $tmp/out, its QMP socket $tmp/vm.sock.
press() {
    local name=$1 pid=$2 i rc
    for ((i = 0; i < 100; i++)); do
        [ -S "$tmp/vm.sock" ] && break
        sleep 0.1
    done
    qmp_report "$name" < <(powerdown)
    for ((i = 0; i < 300; i++)); do
        kill -0 $pid 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 $pid 2>/dev/null; then
        kill -KILL $pid
        wait $pid
        tap_fail "$name: the process exits after the guest powers off (still running 30 s later)"
    else
        wait $pid; rc=$?
        check "$name: the process exits with status 0 (got $rc)" [ "$rc" = 0 ]
    fi
    check "$name: the guest's command did not finish on its own" \
        bash -c '! grep -q CVIRT-RUN-EXIT "$1"' _ "$tmp/out"
    tr -d '\r' <"$tmp/out" | tail -n 6 | sed 's/^/# /'
}

main() {
    have_kvm || return
    local env
    if ! env=$("$GUEST/prepare.sh"); then
        tap_fail "building the guest kernel and initramfs (see stderr)"
        return
    fi
    eval "$env"
    # The command sleeps 10 minutes: the guest must not power off by itself.
    local append="$(cat "$CMDLINE_FILE") cvirt.run=echo%20SLEEPING;sleep%20600"

    # QEMU first, the oracle for the guest's half: its microvm's ACPI power
    # button (a GED event) must power the same guest off too.
    if command -v qemu-system-x86_64 >/dev/null; then
        # PV IPIs and PV yield are hypercalls, which PVM hosts do not complete.
        qemu-system-x86_64 -accel kvm -cpu host,kvm-pv-ipi=off,kvm-pv-sched-yield=off \
            -M microvm -m 256M -nodefaults -no-user-config -display none \
            -serial "file:$tmp/out" -no-reboot -kernel "$KERNEL" -initrd "$INITRD" \
            -qmp "unix:$tmp/vm.sock,server=on,wait=off" -append "$append" \
            </dev/null >"$tmp/err" 2>&1 &
        press QEMU $!
        rm -f "$tmp/vm.sock" "$tmp/out"
    else
        tap_fail "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"
    fi

    "$VMM" --kernel "$KERNEL" --initrd "$INITRD" --memory 256M --no-reboot \
        --control "$tmp/vm.sock" --append "$append" </dev/null >"$tmp/out" 2>"$tmp/err" &
    press cvirt-vmm $!
    check "cvirt-vmm: the control socket is removed" [ ! -e "$tmp/vm.sock" ]
    sed 's/^/# stderr: /' "$tmp/err"
}

main
tap_done
