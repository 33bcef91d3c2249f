# Sourced after lib.sh by the tests that drive cvirtd under a temporary
# --root: the binaries' check, the root and its cleanup, starting and
# stopping the daemon, and the virsh wrapper.  Not a test itself (not
# executable).

CVIRTD=$CVIRT_BUILD/src/daemon/cvirtd

# daemon_require [--no-vmm] TOOL...: fail the whole test unless cvirtd (and
# cvirt-vmm, unless --no-vmm) are built and every TOOL is on PATH.
daemon_require() {
    local need_vmm=1 t
    if [ "$1" = --no-vmm ]; then need_vmm=; shift; fi
    for t in "$@"; do
        if ! command -v "$t" >/dev/null; then
            tap_fail "$t is required (scripts/deps.sh installs it)"
            tap_done
            exit 1
        fi
    done
    if [ ! -x "$CVIRTD" ] || { [ -n "$need_vmm" ] && [ ! -x "$VMM" ]; }; then
        tap_fail "cvirtd and cvirt-vmm must be built ($CVIRTD, $VMM)"
        tap_done
        exit 1
    fi
}

# daemon_root: a fresh ROOT removed on exit with everything started in it,
# and the socket paths and URIs under it.  A test with processes of its own
# to stop defines daemon_test_cleanup, which runs first.
daemon_root() {
    ROOT=$(mktemp -d)
    PID=
    SOCK=$ROOT/run/cvirt/cvirt-sock
    SOCK_RO=$ROOT/run/cvirt/cvirt-sock-ro
    URI="qemu+unix:///system?socket=$SOCK"
    URI_RO="qemu+unix:///system?socket=$SOCK_RO"
    trap daemon_cleanup EXIT
}

daemon_cleanup() {
    declare -F daemon_test_cleanup >/dev/null && daemon_test_cleanup
    # VMMs and dnsmasqs outlive the daemon by design: stop every one this
    # test started.
    local f
    for f in "$ROOT"/run/cvirt/qemu/*.pid "$ROOT"/run/cvirt/networks/*.pid; do
        [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
    done
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    daemon_sanitizer_check
    rm -rf "$ROOT"
}

# One failure naming every log under ROOT (cvirtd's, the VMMs') that holds
# a sanitizer report; run once the daemon has exited, so that its leak
# report at exit is in.  A test that already stopped the daemon has it too.
daemon_sanitizer_check() {
    local f bad=()
    while IFS= read -r f; do
        grep -qE 'AddressSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer|ThreadSanitizer|: runtime error: ' \
            "$f" 2>/dev/null && bad+=("${f#"$ROOT"/}")
    done < <({ [ -f "$ROOT/cvirtd.log" ] && echo "$ROOT/cvirtd.log"
               find "$ROOT" -path '*/qemu/*.log' -type f 2>/dev/null; })
    [ ${#bad[@]} -eq 0 ] || tap_fail "sanitizer report in ${bad[*]} (under the test root)"
}

# start_daemon [ARG...]: cvirtd in the background (its pid in PID, its log
# appended to ROOT/cvirtd.log); true once both sockets are there.  Sockets
# left by a daemon that was killed are removed first, so that an old one is
# not taken for the new daemon's.
start_daemon() {
    rm -f "$SOCK" "$SOCK_RO"
    CVIRT_VMM=$VMM "$CVIRTD" --root "$ROOT" --verbose "$@" 2>>"$ROOT/cvirtd.log" &
    PID=$!
    for _ in $(seq 100); do [ -S "$SOCK" ] && [ -S "$SOCK_RO" ] && break; sleep 0.1; done
    [ -S "$SOCK" ] && [ -S "$SOCK_RO" ]
}
stop_daemon() { kill "$PID" && wait "$PID" 2>/dev/null; PID=; }

# v ARG...: Debian's virsh on the read-write socket; VIRSH_TIMEOUT bounds
# each call.
v() { timeout "${VIRSH_TIMEOUT:-60}" virsh -c "$URI" "$@"; }

# state NAME: what `virsh domstate --reason` prints.
state() { v domstate --reason "$1" 2>&1 | head -1; }
# wait_state NAME TEXT SECONDS
wait_state() {
    for _ in $(seq $(($3 * 10))); do [ "$(state "$1")" = "$2" ] && return 0; sleep 0.1; done
    echo "state of $1: $(state "$1"), wanted $2" >&2
    return 1
}

# counter_domxml NAME [CMDLINE] [DEVICES] [AFTER_NAME]: a domain running
# the kit's counter program; CMDLINE is added to the guest's command line,
# DEVICES to <devices>, AFTER_NAME goes after <name> (a uuid).
counter_domxml() {
    cat <<EOX
<domain type='kvm'>
  <name>$1</name>${4:-}
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type><kernel>$KIT/counter.elf</kernel>
      <cmdline>cpus=1${2:+ $2}</cmdline></os>
  <devices><serial type='pty'/>${3:-}</devices>
</domain>
EOX
}

# daemon_counter_kit: the counter kit guest the lifecycle tests boot, built
# into $KIT; without KVM the test ends here (have_kvm says why), and a kit
# that does not build is one failure.
daemon_counter_kit() {
    if ! have_kvm; then
        tap_done
        exit 0
    fi
    if ! kit_build "$KIT" >&2 || [ ! -f "$KIT/counter.elf" ]; then
        tap_fail "building the guest test kit (see stderr)"
        tap_done
        exit 1
    fi
}

# start_gated_daemon: cvirtd whose VMM is a wrapper that holds every VMM
# start at a gate in $GATE: it touches started, waits for go, and exits 1
# instead of running cvirt-vmm when fail exists. gate_open, gate_close and
# wait_started (a start waits at the gate, 30 s at most) drive it.
start_gated_daemon() {
    GATE=$ROOT/gate
    mkdir -p "$GATE"
    local wrap=$ROOT/gated-vmm real=$VMM
    cat >"$wrap" <<EOW
#!/bin/bash
# The listening control socket is inherited through exec like any
# descriptor without close-on-exec.
touch "$GATE/started"
while [ ! -e "$GATE/go" ]; do sleep 0.05; done
if [ -e "$GATE/fail" ]; then
    echo "gated-vmm: told to fail" >&2
    exit 1
fi
exec "$real" "\$@"
EOW
    chmod +x "$wrap"
    VMM=$wrap
    start_daemon
    VMM=$real
}
gate_open() { rm -f "$GATE/started" "$GATE/fail"; touch "$GATE/go"; }
gate_close() { rm -f "$GATE/started" "$GATE/go" "$GATE/fail"; }
wait_started() {
    local i
    for ((i = 0; i < 600; i++)); do
        [ -e "$GATE/started" ] && return 0
        sleep 0.05
    done
    return 1
}

# daemon_b_init: a second daemon, B, for the migration tests, with its own
# root under ROOT and its own socket. start_daemon_b starts it (running
# VMM_B, when set, as its VMM); daemon_b_cleanup, called from the test's
# daemon_test_cleanup, stops B's VMMs and B; vb and stateb are v and state
# against B.
daemon_b_init() {
    ROOTB=$ROOT/b
    SOCKB=$ROOTB/run/cvirt/cvirt-sock
    URIB="qemu+unix:///system?socket=$SOCKB"
    PIDB=
}
daemon_b_cleanup() {
    local f
    for f in "$ROOTB"/run/cvirt/qemu/*.pid; do
        [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
    done
    [ -n "$PIDB" ] && kill "$PIDB" 2>/dev/null && wait "$PIDB" 2>/dev/null
}
start_daemon_b() {
    mkdir -p "$ROOTB"
    rm -f "$SOCKB"
    CVIRT_VMM=${VMM_B:-$VMM} "$CVIRTD" --root "$ROOTB" --verbose 2>>"$ROOTB/cvirtd.log" &
    PIDB=$!
    for _ in $(seq 100); do [ -S "$SOCKB" ] && break; sleep 0.1; done
    [ -S "$SOCKB" ]
}
vb() { timeout "${VIRSH_TIMEOUT:-60}" virsh -c "$URIB" "$@"; }
stateb() { vb domstate --reason "$1" 2>&1 | head -1; }

# ---- domains booting the real Linux test guest ----
# daemon_linux_guest: its kernel and initramfs (KERNEL, INITRD,
# CMDLINE_FILE from tests/guest/linux/prepare.sh); without KVM the test
# ends here, and a guest that does not build is one failure.
daemon_linux_guest() {
    if ! have_kvm; then
        tap_done
        exit 0
    fi
    local env
    if ! env=$("$CVIRT_SRC/tests/guest/linux/prepare.sh"); then
        tap_fail "building the guest kernel and initramfs (see stderr)"
        tap_done
        exit 1
    fi
    eval "$env"
}
xml_escape() { python3 -c 'import html, sys; print(html.escape(sys.argv[1]))' "$1"; }
# linux_domxml NAME CMDLINE: a domain booting that guest with CMDLINE, a
# pty console and ROOT/cold.img as its raw vda.
linux_domxml() {
    cat <<EOX
<domain type='kvm'>
  <name>$1</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type><kernel>$KERNEL</kernel><initrd>$INITRD</initrd>
      <cmdline>$(xml_escape "$2")</cmdline></os>
  <devices><serial type='pty'/>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/>
      <source file='$ROOT/cold.img'/><target dev='vda' bus='virtio'/></disk>
  </devices>
</domain>
EOX
}
# dom_console_to VIRSH_FN NAME FILE: copies domain NAME's console to FILE
# in the background for TIMEOUT seconds (the copier's pid joins CATS).
dom_console_to() {
    local pty
    pty=$("$1" dumpxml "$2" | sed -n "s|.*<source path='\(/dev/pts/[0-9]*\)'/>.*|\1|p" | head -1)
    [ -n "$pty" ] || return 1
    timeout "$TIMEOUT" cat "$pty" >"$3" 2>/dev/null &
    CATS+=($!)
}
# vmm_disk_slot SOCK TARGET: the slot the VMM on control socket SOCK has
# the daemon's device for disk TARGET in, "" when none.
vmm_disk_slot() {
    python3 "$(dirname "${BASH_SOURCE[0]}")/qmp.py" "$1" query-pci 2>/dev/null |
        python3 -c 'import json, sys
print(" ".join(str(d["slot"]) for b in json.load(sys.stdin) for d in b["devices"]
               if d["qdev_id"] == "virtio-disk-" + sys.argv[1]))' "$2"
}
# xml_disk_slot VIRSH_FN NAME TARGET: the PCI slot (decimal) of disk
# TARGET's <address> in NAME's live XML, "" when it has none; "bad" for an
# address that is not bus 0's.
xml_disk_slot() {
    "$1" dumpxml "$2" 2>/dev/null | python3 -c 'import sys, xml.etree.ElementTree as ET
for d in ET.parse(sys.stdin).findall("devices/disk"):
    if d.find("target").get("dev") != sys.argv[1]:
        continue
    a = d.find("address")
    if a is None:
        break
    ok = (a.get("type"), int(a.get("domain"), 0), int(a.get("bus"), 0),
          int(a.get("function"), 0)) == ("pci", 0, 0, 0)
    print(int(a.get("slot"), 0) if ok else "bad")' "$3"
}
# dom_vmm_argv ROOT NAME: the command line of the VMM running NAME under
# daemon root ROOT, one argument a line.
dom_vmm_argv() {
    local f=$1/run/cvirt/qemu/$2.pid
    [ -f "$f" ] && tr '\0' '\n' <"/proc/$(cat "$f")/cmdline"
}
