#!/bin/bash
# Live migration between two cvirt-vmm processes: the kit counter guest
# (two vCPUs) moves from a source to a destination started with
# --incoming, in two network namespaces joined by a veth pair (plain
# loopback when namespaces cannot be made, said in a comment line). The
# destination's console must go on from the source's last number without
# a step lost or repeated. The kit's blk_writer is migrated while it
# writes its virtio-blk disk (a file both sides open); after it finishes
# on the destination the disk must hold exactly what it says it wrote. migrate_cancel, a destination that dies
# mid-stream and one with other machine options leave the source running.
# A destination may differ in host-side options only: a qcow2 disk opened
# inactive=on and another tap for the NIC are accepted (and a later save
# records neither), another MAC is refused.
source "$(dirname "$0")/lib.sh"

COUNTER=$KIT/counter.elf
QMP_PY=$(dirname "$0")/qmp.py
QMP_MIG=$(dirname "$0")/qmp_migrate.py
tmp=$(mktemp -d)
NSA=cvmigA$$ NSB=cvmigB$$
cleanup() {
    kill $(jobs -p) 2>/dev/null
    ip netns del $NSA 2>/dev/null
    ip netns del $NSB 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

# Two namespaces, 10.201.0.1 (source) and 10.201.0.2 (destination).
INA=() INB=() DST=127.0.0.1
if ip netns add $NSA 2>/dev/null && ip netns add $NSB 2>/dev/null &&
    ip link add cvma$$ netns $NSA type veth peer name cvmb$$ netns $NSB 2>/dev/null &&
    ip -n $NSA addr add 10.201.0.1/24 dev cvma$$ && ip -n $NSB addr add 10.201.0.2/24 dev cvmb$$ &&
    ip -n $NSA link set cvma$$ up && ip -n $NSB link set cvmb$$ up &&
    ip -n $NSA link set lo up && ip -n $NSB link set lo up; then
    INA=(ip netns exec $NSA) INB=(ip netns exec $NSB) DST=10.201.0.2
else
    echo "# network namespaces unavailable here: source and destination share loopback"
fi

numbers() { sed -n 's/^counter \([0-9]*\)$/\1/p' "$1"; }
count() { numbers "$1" | wc -l; }
wait_lines() {
    local i
    for ((i = 0; i < 150; i++)); do
        [ "$(count "$1")" -ge "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
consecutive() {
    numbers "$1" | awk -v first="$2" 'NR == 1 && $1 != first { bad = 1 }
        NR > 1 && $1 != prev + 1 { bad = 1 } { prev = $1 } END { exit (bad || NR == 0) }'
}
wait_sock() {
    local i
    for ((i = 0; i < 100; i++)); do
        [ -S "$1" ] && return 0
        sleep 0.1
    done
    return 1
}
# wait_exit PID [SECONDS]: its status, or 124 (and SIGKILL) after SECONDS
# (default 10).
wait_exit() {
    local i
    for ((i = 0; i < ${2:-10} * 10; i++)); do
        if ! kill -0 "$1" 2>/dev/null; then
            wait "$1"
            return
        fi
        sleep 0.1
    done
    kill -KILL "$1"; wait "$1"
    return 124
}

# start_src NAME: the counter guest in the source namespace; sets spid.
start_src() {
    "${INA[@]}" "$VMM" --kernel "$COUNTER" --memory 64M --cpus 2 --append "cpus=2" \
        --control "$tmp/$1.sock" </dev/null >"$tmp/$1.out" 2>"$tmp/$1.err" &
    spid=$!
    wait_sock "$tmp/$1.sock" && wait_lines "$tmp/$1.out" 3
}

# migrate SOCK URI [cancel]: runs migrate (and migrate_cancel at once with
# "cancel"); prints the MIGRATION statuses, query-migrate's status and
# downtime, and query-status's status.
migrate() {
    python3 "$QMP_MIG" migrate "$1" "$2" --downtime-limit 50 ${3:+--cancel} 2>&1
}

# still_running NAME: the source's counter goes on.
still_running() {
    local before
    before=$(count "$tmp/$1.out")
    wait_lines "$tmp/$1.out" $((before + 2))
}

# disk_matches DISK CONSOLE: DISK holds exactly what blk_writer says on
# CONSOLE it wrote (qmp_migrate.py disk-matches).
disk_matches() {
    python3 "$QMP_MIG" disk-matches "$1" "$2"
}

# A fake destination: accepts one connection, reads N bytes (or nothing,
# then never answers), then closes.
fake_dest() {
    "${INB[@]}" python3 - "$DST" "$1" "$2" <<'PY' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
c, _ = s.accept()
want = int(sys.argv[3])
if want < 0:
    time.sleep(30)
got = 0
while got < want:
    d = c.recv(65536)
    if not d:
        break
    got += len(d)
c.close()
PY
    fpid=$!
    sleep 0.5
}

main() {
    have_kvm || return
    if [ ! -f "$COUNTER" ]; then
        tap_fail "kit program $COUNTER is missing (make kit)"
        return
    fi
    local out rc last port=4710
    # 1. A live migration.
    if ! start_src a; then
        tap_fail "the source guest starts ($(head -c 200 "$tmp/a.err"))"
        return
    fi
    "${INB[@]}" "$VMM" --kernel "$COUNTER" --memory 64M --cpus 2 --append "cpus=2" \
        --control "$tmp/b.sock" --incoming "tcp:$DST:$port" </dev/null >"$tmp/b.out" 2>"$tmp/b.err" &
    local dpid=$!
    wait_sock "$tmp/b.sock"
    out=$(python3 "$QMP_PY" "$tmp/b.sock" query-status 2>&1)
    check "the tcp: destination answers QMP while it waits: query-status inmigrate ($out)" \
        grep -q '"status": "inmigrate".*"running": false' <<<"$out"
    out=$(python3 "$QMP_PY" "$tmp/b.sock" migrate '{"uri": "file:/dev/null"}' 2>&1)
    check "migrate on the waiting destination is refused ($out)" \
        grep -q "Guest is waiting for an incoming migration" <<<"$out"
    out=$(python3 "$QMP_PY" "$tmp/b.sock" system_reset 2>&1)
    check "system_reset on the waiting destination is refused ($out)" \
        grep -q "Guest is waiting for an incoming migration" <<<"$out"
    out=$(migrate "$tmp/a.sock" "tcp:$DST:$port")
    read -r statuses qstatus downtime runstate <<<"$out"
    check "migrate tcp: goes setup, active, completed ($out)" \
        [ "$statuses" = "setup,active,completed" ] && [ "$qstatus" = completed ]
    check "the source stays paused after the migration, in QEMU's postmigrate: $runstate" [ "$runstate" = postmigrate ]
    echo "# downtime reported by the source: $downtime ms"
    check "downtime is reported and under 1000 ms ($downtime)" [ "$downtime" != - ] && [ "$downtime" -lt 1000 ]
    last=$(numbers "$tmp/a.out" | tail -1)
    wait_lines "$tmp/b.out" 5
    check "the destination counts on from $((last + 1)) with no step lost or repeated ($(numbers "$tmp/b.out" | head -3 | tr '\n' ' ')...)" \
        consecutive "$tmp/b.out" $((last + 1))
    sleep 0.3
    check "the source prints nothing after the migration" [ "$(numbers "$tmp/a.out" | tail -1)" = "$last" ]
    python3 "$QMP_PY" "$tmp/a.sock" quit >/dev/null; wait_exit "$spid"; rc=$?
    check "the source quits with status 0 (got $rc)" [ $rc = 0 ]
    python3 "$QMP_PY" "$tmp/b.sock" quit >/dev/null; wait_exit $dpid; rc=$?
    check "the destination quits with status 0 (got $rc)" [ $rc = 0 ]

    # 1b. A guest writing its disk (virtio-blk, four requests in flight),
    # migrated while it writes; the disk is the same file on both sides.
    local bargs=(--kernel "$KIT/blk_writer.elf" --memory 64M --disk "$tmp/disk.raw"
                 --append "seed=4242 count=12000 k=16 depth=4")
    truncate -s 32M "$tmp/disk.raw"
    "${INA[@]}" "$VMM" "${bargs[@]}" --control "$tmp/w1.sock" </dev/null >"$tmp/w1.out" 2>"$tmp/w1.err" &
    local w1=$!
    # This destination waits for QMP migrate-incoming (--incoming defer).
    "${INB[@]}" "$VMM" "${bargs[@]}" --control "$tmp/w2.sock" --incoming defer \
        </dev/null >"$tmp/w2.out" 2>"$tmp/w2.err" &
    local w2=$!
    wait_sock "$tmp/w2.sock"
    out=$(python3 "$QMP_PY" "$tmp/w2.sock" migrate-incoming '{"uri": "file:/nonexistent"}' 2>&1)
    check "migrate-incoming refuses a URI it cannot take ($out)" grep -q "expected tcp:HOST:PORT" <<<"$out"
    out=$(python3 "$QMP_PY" "$tmp/w2.sock" query-status 2>&1)
    check "the waiting destination's query-status is inmigrate, not running ($out)" \
        grep -q '"status": "inmigrate".*"running": false' <<<"$out"
    check "migrate-incoming tcp: on a deferred destination" \
        "${INB[@]}" python3 "$QMP_PY" "$tmp/w2.sock" migrate-incoming "{\"uri\": \"tcp:$DST:$((port + 5))\"}"
    local i
    for ((i = 0; i < 100; i++)); do
        [ "$(grep -c '^flushed' "$tmp/w1.out")" -ge 30 ] && break
        sleep 0.1
    done
    out=$(migrate "$tmp/w1.sock" "tcp:$DST:$((port + 5))")
    check "blk_writer: migrated while writing ($out)" grep -q "^setup,active,completed completed" <<<"$out"
    local src_last
    src_last=$(sed -n 's/^flushed //p' "$tmp/w1.out" | tail -1)
    wait_exit $w2 180; rc=$?
    check "blk_writer: the destination finishes the run and powers off (status $rc)" \
        [ $rc = 0 ] && grep -q "^ok 2 - writes and flushes complete with OK" "$tmp/w2.out"
    check "blk_writer: the source had written part of it ($src_last flushed) and the destination went on from there" \
        [ -n "$src_last" ] && [ "$src_last" -lt 12000 ] &&
        [ "$(sed -n 's/^flushed //p' "$tmp/w2.out" | head -1)" = $((src_last + 16)) ]
    cat "$tmp/w1.out" "$tmp/w2.out" >"$tmp/w.out"
    check "blk_writer: the disk's checksum matches every write the guest made" disk_matches "$tmp/disk.raw" "$tmp/w.out"
    # The check itself: one sector of the disk put back to zeros must fail it.
    cp "$tmp/disk.raw" "$tmp/bad.raw"
    local sec
    sec=$(python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); print(next(i for i in range(len(d)//512) if any(d[i*512:i*512+512])))' "$tmp/bad.raw")
    dd if=/dev/zero of="$tmp/bad.raw" bs=512 seek="$sec" count=1 conv=notrunc status=none
    if disk_matches "$tmp/bad.raw" "$tmp/w.out" >/dev/null; then
        tap_fail "blk_writer: the disk check notices one lost write"
    else
        tap_ok "blk_writer: the disk check notices one lost write"
    fi
    python3 "$QMP_PY" "$tmp/w1.sock" quit >/dev/null; wait_exit $w1

    # 1c. A deferred destination told to quit before any migration: it
    # exits 0 and its guest never ran.
    "$VMM" --kernel "$COUNTER" --memory 64M --control "$tmp/q.sock" --incoming defer \
        </dev/null >"$tmp/q.out" 2>"$tmp/q.err" &
    local qpid=$!
    wait_sock "$tmp/q.sock"
    python3 "$QMP_PY" "$tmp/q.sock" quit >/dev/null; wait_exit $qpid; rc=$?
    check "a deferred destination quits with status 0 before its guest runs (status $rc, $(count "$tmp/q.out") counter lines)" \
        [ $rc = 0 ] && [ "$(count "$tmp/q.out")" = 0 ]

    # 1d. SIGTERM ends a tcp: destination waiting for its source, and one
    # whose source connected and stalled mid-stream.
    "$VMM" --kernel "$COUNTER" --memory 64M --console none --incoming "tcp:127.0.0.1:$((port + 6))" \
        </dev/null >/dev/null 2>"$tmp/t.err" &
    qpid=$!
    sleep 0.5
    kill -TERM $qpid
    wait_exit $qpid 5; rc=$?
    check "SIGTERM ends a destination waiting for its source (status $rc)" [ $rc = 0 ]
    "$VMM" --kernel "$COUNTER" --memory 64M --console none --incoming "tcp:127.0.0.1:$((port + 7))" \
        </dev/null >/dev/null 2>"$tmp/t2.err" &
    qpid=$!
    sleep 0.5
    python3 -c 'import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"CVIRTMIG")
time.sleep(3)' $((port + 7)) &
    local cpid=$!
    sleep 0.5
    kill -TERM $qpid
    wait_exit $qpid 5; rc=$?
    check "SIGTERM ends a destination whose stream stalled (status $rc)" [ $rc = 0 ]
    wait $cpid 2>/dev/null

    # 1e. Host-side options a destination may have that its source has
    # not: a qcow2 disk opened inactive=on (read-only until the state
    # loads) and another tap for the same NIC. A later save must record
    # neither inactive=on nor the source's tap; a destination whose NIC has
    # another MAC is refused, naming it.
    local mac=52:54:00:5e:00:01 qimg=$tmp/q.qcow2
    qemu-img create -q -f qcow2 "$qimg" 16M
    local eargs=(--kernel "$COUNTER" --memory 64M --cpus 2 --append "cpus=2")
    "${INA[@]}" "$VMM" "${eargs[@]}" --disk "$qimg,format=qcow2" --net "tap=cvqa$$,mac=$mac" \
        --control "$tmp/e1.sock" </dev/null >"$tmp/e1.out" 2>"$tmp/e1.err" &
    local e1=$!
    "${INB[@]}" "$VMM" "${eargs[@]}" --disk "$qimg,format=qcow2,inactive=on" \
        --net "tap=cvqb$$,mac=$mac" --control "$tmp/e2.sock" --incoming "tcp:$DST:$((port + 8))" \
        </dev/null >"$tmp/e2.out" 2>"$tmp/e2.err" &
    local e2=$!
    if ! wait_sock "$tmp/e1.sock" || ! wait_lines "$tmp/e1.out" 3 || ! wait_sock "$tmp/e2.sock"; then
        tap_fail "a source with a qcow2 disk and a NIC starts ($(head -c 300 "$tmp/e1.err"))"
    else
        out=$(migrate "$tmp/e1.sock" "tcp:$DST:$((port + 8))")
        check "a destination with inactive=on and another tap is accepted ($out; $(tail -1 "$tmp/e2.err"))" \
            grep -q "^setup,active,completed completed" <<<"$out"
        last=$(numbers "$tmp/e1.out" | tail -1)
        wait_lines "$tmp/e2.out" 3
        check "that destination counts on from $((last + 1))" consecutive "$tmp/e2.out" $((last + 1))
        out=$(python3 "$QMP_MIG" migrate "$tmp/e2.sock" "file:$tmp/e.snap" 2>&1)
        check "the migrated VM saves to a file ($out)" grep -q "^setup,active,completed completed" <<<"$out"
        check "the save records the disk and the destination's tap, without inactive=on ($(grep -ac 'inactive=' "$tmp/e.snap") mentions)" \
            bash -c "grep -aq '$qimg,format=qcow2' '$tmp/e.snap' && grep -aq 'tap=cvqb$$,mac=$mac' '$tmp/e.snap' &&
                ! grep -aq 'inactive=' '$tmp/e.snap'"
        python3 "$QMP_PY" "$tmp/e2.sock" cont >/dev/null
        "${INB[@]}" "$VMM" "${eargs[@]}" --disk "$qimg,format=qcow2,inactive=on" \
            --net "tap=cvqc$$,mac=${mac%1}2" --console none --incoming "tcp:$DST:$((port + 9))" \
            </dev/null >/dev/null 2>"$tmp/e3.err" &
        local e3=$!
        sleep 0.5
        out=$(migrate "$tmp/e2.sock" "tcp:$DST:$((port + 9))")
        wait_exit $e3; rc=$?
        check "a destination whose NIC has another MAC refuses the VM, naming it (status $rc: $(tail -1 "$tmp/e3.err"))" \
            [ $rc = 1 ] && grep -q "failed failed - running" <<<"$out" &&
            grep -q -- "--net 1 differs.*mac=$mac.*mac=${mac%1}2" "$tmp/e3.err"
        check "the migrated VM keeps counting after that" still_running e2
    fi
    python3 "$QMP_PY" "$tmp/e1.sock" quit >/dev/null; wait_exit $e1
    python3 "$QMP_PY" "$tmp/e2.sock" quit >/dev/null; wait_exit $e2; rc=$?
    check "the migrated VM quits with status 0 (got $rc)" [ $rc = 0 ]

    # 2. migrate_cancel while the destination never answers.
    start_src c
    fake_dest $((port + 1)) -1
    out=$(migrate "$tmp/c.sock" "tcp:$DST:$((port + 1))" cancel)
    check "migrate_cancel: the migration ends cancelled and the source runs ($out)" \
        grep -q "cancelled cancelled - running" <<<"$out"
    check "migrate_cancel: the source's guest keeps counting" still_running c
    kill $fpid 2>/dev/null; wait $fpid 2>/dev/null

    # 3. A destination that dies mid-stream.
    fake_dest $((port + 2)) 20000
    out=$(migrate "$tmp/c.sock" "tcp:$DST:$((port + 2))")
    check "a destination gone mid-way: the migration fails and the source runs ($out)" \
        grep -q "failed failed - running" <<<"$out"
    check "a destination gone mid-way: the source's guest keeps counting" still_running c
    wait $fpid 2>/dev/null

    # 4. A destination with other machine options refuses the VM.
    "${INB[@]}" "$VMM" --kernel "$COUNTER" --memory 128M --cpus 2 --append "cpus=2" \
        --console none --incoming "tcp:$DST:$((port + 3))" </dev/null >/dev/null 2>"$tmp/d.err" &
    dpid=$!
    sleep 0.5
    out=$(migrate "$tmp/c.sock" "tcp:$DST:$((port + 3))")
    check "a destination with other options: the migration fails, the source runs ($out)" \
        grep -q "failed failed - running" <<<"$out"
    wait_exit $dpid; rc=$?
    check "that destination exits 1 saying why: $(tail -1 "$tmp/d.err")" \
        [ $rc = 1 ] && grep -q "memory" "$tmp/d.err"
    check "the source's guest keeps counting" still_running c
    python3 "$QMP_PY" "$tmp/c.sock" quit >/dev/null; wait_exit "$spid"
}

main
tap_done
