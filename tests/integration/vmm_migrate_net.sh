#!/bin/bash
# virtio-net across save/restore and live migration, judged from inside
# the real Linux guest. The test re-executes itself in a network namespace
# of its own ("host A": a bridge with address 10.0.2.2, two persistent
# taps) and makes a second one ("host B": a bridge with 10.0.2.3 and a tap
# of another name), the two bridges joined by a veth pair like two hosts
# on one switch.
#
# The guest (10.0.2.15, a random MAC) runs a loop that stays silent on the
# network until the host pings it; each time it has been pinged it pings
# the host three times itself and prints one ROUND line: its own round
# counter, the echo requests it received, the replies it got, its
# interface's carrier, operstate, MAC, packet and error counters. A round
# is asked for (a) after boot, (b) after a save to a file, the source's
# exit and a --restore onto host A's other tap (--net-tap), (c) after a
# live migration over TCP from host A to host B, whose destination is
# given host B's tap (--net-tap), (d) after a save on host B and a
# --restore there without --net-tap, which must find host B's tap
# recorded. The round counter must go on (1, 2, 3, 4: the same guest, no
# restart), every ping in both directions must be answered, each bridge
# must forward the guest's MAC to the tap given last, and the guest's
# interface must report no error. Because the
# guest sends nothing before it is pinged, host A's bridge can only learn
# that the guest's MAC moved to the wire through the announce the
# destination sends after loading (without one, the host's pings would go
# to the source's tap until the bridge forgets the address).
source "$(dirname "$0")/lib.sh"

if [ -z "${CVIRT_NETNS_CHILD:-}" ]; then
    if ! have_kvm; then
        tap_done
        exit 0
    fi
    if [ "$(id -u)" != 0 ] || ! command -v unshare nsenter ip bridge busybox >/dev/null; then
        tap_fail "needs root, unshare, nsenter, iproute2 and busybox (namespaces, bridges, taps, ping)"
        tap_done
        exit 1
    fi
    CVIRT_NETNS_CHILD=1 exec unshare -n "$0" "$@"
fi

GUEST=$CVIRT_SRC/tests/guest/linux
QMP_PY=$(dirname "$0")/qmp.py
BOOT_TIMEOUT=${CVIRT_GUEST_TIMEOUT:-240}
GUEST_IP=10.0.2.15 HOST_A=10.0.2.2 HOST_B=10.0.2.3
MAC=52:54:00:$(printf '%02x:%02x:%02x' $((RANDOM % 256)) $((RANDOM % 256)) $((RANDOM % 256)))
TAP=cvnet0 TAP2=cvnet1 TAPB=cvnetb PORT=4444
tmp="" holder="" pids=()

cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null
    done
    [ -n "$holder" ] && kill "$holder" 2>/dev/null
    wait 2>/dev/null
    [ -n "$tmp" ] && rm -rf "$tmp"
}
trap cleanup EXIT

# B CMD...: runs CMD in host B's namespace.
B() { nsenter -t "$holder" -n "$@"; }

# Host A is this namespace; host B a namespace a sleeping process holds.
hosts_up() {
    ip link set lo up &&
        ip link add br0 type bridge && ip link set br0 up &&
        ip addr add "$HOST_A/24" dev br0 &&
        ip tuntap add dev "$TAP" mode tap && ip link set "$TAP" master br0 up &&
        ip tuntap add dev "$TAP2" mode tap && ip link set "$TAP2" master br0 up || return 1
    unshare -n sleep 3600 &
    holder=$!
    local i
    for ((i = 0; i < 50; i++)); do
        [ "$(readlink /proc/$holder/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break
        sleep 0.1
    done
    ip link add wireA type veth peer name wireB &&
        ip link set wireB netns "$holder" &&
        ip link set wireA master br0 up &&
        B ip link set lo up &&
        B ip link add br0 type bridge && B ip link set br0 up &&
        B ip addr add "$HOST_B/24" dev br0 &&
        B ip link set wireB master br0 up &&
        B ip tuntap add dev "$TAPB" mode tap && B ip link set "$TAPB" master br0 up
}

# The guest's loop (see the top). Only shell builtins between rounds, so
# that waiting costs the emulated guest kernel next to nothing.
guest_script() {
    cat <<EOF
ip link set eth0 up && ip addr add $GUEST_IP/24 dev eth0 || exit 1
echos() { E=0; while read a b c d e f g h i j rest; do
    [ "\$a" = Icmp: ] && [ "\$b" != InMsgs ] && E=\$j; done </proc/net/snmp; }
s() { read v </sys/class/net/eth0/\$1; echo "\$v"; }
echo NET-READY
n=0; echos; last=\$E
while :; do
    echos
    if [ "\$E" != "\$last" ]; then
        n=\$((n + 1)); ok=0
        for k in 1 2 3; do timeout 10 ping -c 1 $HOST_A >/dev/null 2>&1 && ok=\$((ok + 1)); done
        echos; last=\$E
        st=statistics
        echo "ROUND \$n echos=\$E replies=\$ok carrier=\$(s carrier) oper=\$(s operstate)" \
            "mac=\$(s address) rx=\$(s \$st/rx_packets) tx=\$(s \$st/tx_packets)" \
            "errors=\$((\$(s \$st/rx_errors) + \$(s \$st/tx_errors))) end"
    fi
    sleep 1
done
EOF
}

# Percent-encodes a command for cvirt.run= (see tests/guest/linux/init).
encode() {
    python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe="/;=$|<>&-_.,:()"))' "$1"
}

# wait_for FILE PATTERN SECONDS: FILE gets a line matching PATTERN.
wait_for() {
    local i
    for ((i = 0; i < $3 * 5; i++)); do
        tr -d '\r' <"$1" 2>/dev/null | grep -q -- "$2" && return 0
        sleep 0.2
    done
    return 1
}

# wait_exit PID [SECONDS]: its status, or 124 (and SIGKILL) after SECONDS.
wait_exit() {
    local i
    for ((i = 0; i < ${2:-20} * 10; i++)); do
        if ! kill -0 "$1" 2>/dev/null; then
            wait "$1"
            return
        fi
        sleep 0.1
    done
    kill -KILL "$1"
    wait "$1"
    return 124
}

# migrate SOCK URI: runs QMP migrate and prints the MIGRATION statuses
# seen, query-migrate's status and query-status's.
migrate() {
    python3 - "$QMP_PY" "$@" <<'PY' 2>&1
import os, sys
sys.path.insert(0, os.path.dirname(sys.argv[1]))
import qmp
with qmp.Client(sys.argv[2]) as c:
    c.negotiate()
    c.execute("migrate", {"uri": sys.argv[3]})
    seen = []
    while not seen or seen[-1] not in ("completed", "failed", "cancelled"):
        seen.append(c.wait_event("MIGRATION", timeout=120)["data"]["status"])
    print(",".join(seen), c.execute("query-migrate")["status"],
          c.execute("query-status")["status"])
PY
}

# running SOCK: the VMM behind SOCK answers query-status with "running".
running() {
    local i
    for ((i = 0; i < 100; i++)); do
        [ -S "$1" ] && break
        sleep 0.1
    done
    python3 "$QMP_PY" "$1" query-status 2>/dev/null | grep -q '"running"'
}

# stopped_after OUT: migrate's output says the migration completed and
# the source does not run on (QEMU's "postmigrate"; "paused" also stops).
stopped_after() {
    [ "$1" = "setup,active,completed completed postmigrate" ] ||
        [ "$1" = "setup,active,completed completed paused" ]
}

quit_vmm() {
    python3 "$QMP_PY" "$1" quit >/dev/null
}

# field LINE KEY: KEY's value in a ROUND line.
field() { sed -n "s/.* $2=\([^ ]*\) .*/\1/p" <<<"$1"; }

# host_pings: busybox ping's "N packets received" for three echo requests
# from host A to the guest.
host_pings() {
    busybox ping -c 3 -W 5 "$GUEST_IP" 2>&1 | sed -n 's/.* \([0-9]*\) packets received.*/\1/p'
}

# round NAME OUT N: host A pings the guest, whose console is OUT; the
# guest must answer every ping and print ROUND N with all its pings
# answered and its interface healthy. Sets LAST to that ROUND line.
round() {
    local name=$1 out=$2 want=$3 got line
    got=$(host_pings)
    check "$name: host A's three pings of the guest are all answered (got ${got:-none})" \
        [ "$got" = 3 ]
    if ! wait_for "$out" "^ROUND $want " 90; then
        tap_fail "$name: the guest prints ROUND $want after being pinged"
        tr -d '\r' <"$out" | tail -n 15 | sed 's/^/# /'
        return 1
    fi
    line=$(tr -d '\r' <"$out" | grep "^ROUND $want " | tail -n 1)
    echo "# $name: $line"
    check "$name: the guest's three pings of host A are all answered" \
        [ "$(field "$line" replies)" = 3 ]
    check "$name: eth0 keeps carrier 1, operstate up, MAC $MAC" \
        [ "$(field "$line" carrier)/$(field "$line" oper)/$(field "$line" mac)" = "1/up/$MAC" ]
    check "$name: eth0 counts no receive or transmit error" [ "$(field "$line" errors)" = 0 ]
    if [ -n "$LAST" ]; then
        check "$name: the guest's packet and echo counters went on from the last round" \
            [ "$(field "$line" tx)" -gt "$(field "$LAST" tx)" ] &&
            [ "$(field "$line" rx)" -gt "$(field "$LAST" rx)" ] &&
            [ "$(field "$line" echos)" -gt "$(field "$LAST" echos)" ]
    fi
    LAST=$line
}

# clean NAME OUT ERR: nothing in the guest's log or the VMM's stderr
# (read after it exited) says a device broke, the guest's network driver
# gave up, or a sanitizer found something.
clean() {
    check "$1: no device was marked broken ($(grep -c 'needs a reset' "$3") lines)" \
        bash -c "! grep -q 'needs a reset' '$3'"
    check "$1: no sanitizer report on the VMM's stderr" \
        bash -c "! grep -Eq 'runtime error|Sanitizer' '$3'"
    check "$1: the guest logged no transmit timeout, oops or virtio error" \
        bash -c "! tr -d '\r' <'$2' | grep -Eiq 'NETDEV WATCHDOG|timed out|Call Trace|BUG:|virtio.*(error|fail)'"
}

# fdb_port BR-HOST: the port host A's (or B's) bridge forwards the
# guest's MAC to.
fdb_port() {
    "$@" bridge fdb show br br0 | awk -v m="$MAC" '$1 == m { for (i = 2; i < NF; i++) if ($i == "dev") print $(i + 1) }' | head -n 1
}

run_test() {
    tmp=$(mktemp -d --tmpdir=/var/tmp cvirt-migrate-net.XXXXXX)
    if ! hosts_up; then
        tap_fail "two network namespaces with a bridge and a tap each, joined by a veth pair"
        return
    fi
    local -a mach=(--kernel "$KERNEL" --initrd "$INITRD" --memory 256M
        --append "$(cat "$CMDLINE_FILE") cvirt.run=$(encode "$(guest_script)")"
        --net "tap=$TAP,mac=$MAC")
    local pid out
    LAST=""

    # (a) boot on host A
    "$VMM" "${mach[@]}" --control "$tmp/a.sock" </dev/null >"$tmp/a.out" 2>"$tmp/a.err" &
    pid=$!
    pids+=("$pid")
    if ! wait_for "$tmp/a.out" '^NET-READY' "$BOOT_TIMEOUT"; then
        tap_fail "boot: the guest brings eth0 up within ${BOOT_TIMEOUT}s"
        tr -d '\r' <"$tmp/a.out" | tail -n 20 | sed 's/^/# /'
        sed 's/^/# stderr: /' "$tmp/a.err"
        return
    fi
    tap_ok "boot: the guest brings eth0 up"
    round boot "$tmp/a.out" 1 || return
    check "boot: host A's bridge learned the guest's MAC on the tap" [ "$(fdb_port)" = "$TAP" ]

    # (b) save to a file, quit, restore onto host A's other tap
    out=$(migrate "$tmp/a.sock" "file:$tmp/vm.snap")
    check "save: migrate file: completes, the source stays stopped ($out)" stopped_after "$out"
    quit_vmm "$tmp/a.sock"
    wait_exit "$pid"
    check "save: the source quits with status 0 (got $?)" [ $? = 0 ]
    clean save "$tmp/a.out" "$tmp/a.err"
    net_tap_errors
    "$VMM" --restore "$tmp/vm.snap" --net-tap "$TAP2" --control "$tmp/b.sock" \
        </dev/null >"$tmp/b.out" 2>"$tmp/b.err" &
    pid=$!
    pids+=("$pid")
    if ! running "$tmp/b.sock"; then
        tap_fail "restore: --restore --net-tap $TAP2 starts ($(head -c 300 "$tmp/b.err"))"
        return
    fi
    tap_ok "restore: --restore --net-tap $TAP2 opens the other tap and runs the guest"
    round restore "$tmp/b.out" 2 || return
    check "restore: host A's bridge forwards the guest's MAC to $TAP2 (got $(fdb_port))" \
        [ "$(fdb_port)" = "$TAP2" ]
    check "restore: the restored guest printed no ROUND 1 again (no reboot, no replay)" \
        bash -c "! tr -d '\r' <'$tmp/b.out' | grep -q '^ROUND 1 '"

    # (c) live migration to host B, whose tap has another name: the
    # destination gets the source's machine options and its own tap.
    B "$VMM" "${mach[@]}" --net-tap "$TAPB" --control "$tmp/c.sock" --incoming "tcp:0.0.0.0:$PORT" \
        </dev/null >"$tmp/c.out" 2>"$tmp/c.err" &
    local dpid=$!
    pids+=("$dpid")
    local i
    # The destination takes one connection: look for its socket, not connect.
    for ((i = 0; i < 100; i++)); do
        B ss -Hltn "sport = :$PORT" | grep -q . && break
        sleep 0.1
    done
    out=$(migrate "$tmp/b.sock" "tcp:$HOST_B:$PORT")
    check "migrate: tcp migration to host B completes, the source stays stopped ($out)" \
        stopped_after "$out"
    local port=""
    for ((i = 0; i < 20; i++)); do
        port=$(fdb_port)
        [ "$port" = wireA ] && break
        sleep 0.1
    done
    check "migrate: host A's bridge moved the guest's MAC to the wire before the guest sent anything (the announce; port ${port:-none})" \
        [ "$port" = wireA ]
    round migrate "$tmp/c.out" 3
    check "migrate: host B's bridge has the guest's MAC on $TAPB (got $(fdb_port B))" \
        [ "$(fdb_port B)" = "$TAPB" ]
    quit_vmm "$tmp/b.sock"
    wait_exit "$pid"
    check "migrate: the source quits with status 0 (got $?)" [ $? = 0 ]

    # (d) save on host B and restore there without --net-tap: the
    # snapshot names the tap the destination was given, not the source's.
    out=$(migrate "$tmp/c.sock" "file:$tmp/vm2.snap")
    check "resave: the migrated VM saves to a file ($out)" stopped_after "$out"
    quit_vmm "$tmp/c.sock"
    wait_exit "$dpid"
    check "migrate: the destination quits with status 0 (got $?)" [ $? = 0 ]
    B "$VMM" --restore "$tmp/vm2.snap" --control "$tmp/d.sock" </dev/null >"$tmp/d.out" 2>"$tmp/d.err" &
    pid=$!
    pids+=("$pid")
    if running "$tmp/d.sock"; then
        tap_ok "resave: --restore on host B runs the guest"
        round resave "$tmp/d.out" 4
        check "resave: host B's bridge forwards the guest's MAC to $TAPB, the tap the snapshot recorded (got $(fdb_port B))" \
            [ "$(fdb_port B)" = "$TAPB" ]
        quit_vmm "$tmp/d.sock"
        wait_exit "$pid"
        check "resave: the restored VM quits with status 0 (got $?)" [ $? = 0 ]
        clean resave "$tmp/d.out" "$tmp/d.err"
    else
        tap_fail "resave: --restore on host B starts ($(head -c 300 "$tmp/d.err"))"
    fi
    clean restore "$tmp/b.out" "$tmp/b.err"
    clean migrate "$tmp/c.out" "$tmp/c.err"
}

# usage_error NAME PATTERN ARGS...: cvirt-vmm ARGS exits 2 with one line
# on stderr matching PATTERN, before it opens anything.
usage_error() {
    local name=$1 pat=$2 rc
    shift 2
    "$VMM" "$@" </dev/null >"$tmp/u.out" 2>"$tmp/u.err"
    rc=$?
    check "$name: exit 2 with one line (status $rc: $(head -c 200 "$tmp/u.err"))" \
        [ $rc = 2 ] && [ "$(wc -l <"$tmp/u.err")" = 1 ] && grep -q -- "$pat" "$tmp/u.err"
}

# --net-tap's errors: more than the machine's --net (the snapshot has
# one), a --net without tap= to replace, a name that is not one.
net_tap_errors() {
    usage_error "--net-tap twice on a snapshot with one --net" \
        "--net-tap x2: 2 --net-tap given, but the machine has only 1 --net" \
        --restore "$tmp/vm.snap" --net-tap x1 --net-tap x2 --control "$tmp/u.sock"
    usage_error "--net-tap with no --net" "--net-tap x1: 1 --net-tap given, but the machine has only 0 --net" \
        --kernel "$KERNEL" --net-tap x1
    usage_error "--net-tap on a --net without tap=" "--net-tap x1: --net 1 ('mac=$MAC') has no tap= to replace" \
        --kernel "$KERNEL" --net "mac=$MAC" --net-tap x1
    usage_error "--net-tap with a comma" "--net-tap 'x,mac=$MAC': not an interface name" \
        --kernel "$KERNEL" --net "tap=$TAP" --net-tap "x,mac=$MAC"
    check "--net-tap errors: no tap x1 or x2 was created" \
        bash -c "! ip link show x1 2>/dev/null && ! ip link show x2 2>/dev/null"
}

if env=$("$GUEST/prepare.sh"); then
    eval "$env"
    run_test
else
    tap_fail "building the guest kernel and initramfs (see stderr)"
fi
tap_done
