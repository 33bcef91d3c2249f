#!/bin/bash
# Save/restore of cvirt-vmm: the kit counter guest (two vCPUs) is saved over
# QMP (migrate file:), its process quits, a new one restores it with
# --restore and the guest counts on from the next number; the restored VM
# is saved again while running and restored once more. Bad files (cut
# short, corrupt, foreign, missing) are refused with one clear line. The
# kit's blk_writer, saved while it writes a qcow2 disk, finishes its run
# after the restore and the disk holds exactly what it wrote.
source "$(dirname "$0")/lib.sh"

COUNTER=$KIT/counter.elf
QMP_PY=$(dirname "$0")/qmp.py
QMP_MIG=$(dirname "$0")/qmp_migrate.py
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT

# start NAME ARGS...: a cvirt-vmm with its socket at $tmp/NAME.sock and
# console in $tmp/NAME.out; sets pid; waits for the socket.
start() {
    local name=$1 i
    shift
    "$VMM" --control "$tmp/$name.sock" "$@" </dev/null >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pid=$!
    for ((i = 0; i < 100; i++)); do
        [ -S "$tmp/$name.sock" ] && return 0
        kill -0 $pid 2>/dev/null || return 1
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

# The counter numbers in a console file, one per line.
numbers() { sed -n 's/^counter \([0-9]*\)$/\1/p' "$1"; }
count() { numbers "$1" | wc -l; }
# wait_lines FILE N: until FILE holds N counter lines (15 s at most).
wait_lines() {
    local i
    for ((i = 0; i < 150; i++)); do
        [ "$(count "$1")" -ge "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
# consecutive FILE FIRST: the numbers run FIRST, FIRST+1, ... without gaps
# or repeats (and at least one of them).
consecutive() {
    numbers "$1" | awk -v first="$2" 'NR == 1 && $1 != first { bad = 1 }
        NR > 1 && $1 != prev + 1 { bad = 1 } { prev = $1 } END { exit (bad || NR == 0) }'
}

# save SOCK FILE: migrate file:FILE over QMP; prints the MIGRATION statuses
# seen, then query-migrate's status and downtime and query-status's.
save() {
    python3 "$QMP_MIG" migrate "$1" "file:$2" 2>&1
}

# save_and_quit NAME FILE [SECONDS]: saves NAME's VM, checks its console
# stays still for SECONDS (default 0.5; several of its lines would come in
# that time were it running), quits it.
save_and_quit() {
    local name=$1 file=$2 quiet=${3:-0.5} out before after rc
    out=$(save "$tmp/$name.sock" "$file")
    check "$name: migrate file: goes setup, active, completed; VM in postmigrate ($out)" \
        grep -qx "setup,active,completed completed [0-9]* postmigrate" <<<"$out"
    before=$(stat -c %s "$tmp/$name.out")
    sleep "$quiet"
    after=$(stat -c %s "$tmp/$name.out")
    check "$name: the saved guest prints nothing more ($before -> $after bytes in ${quiet}s)" \
        [ "$before" = "$after" ]
    python3 "$QMP_PY" "$tmp/$name.sock" quit >/dev/null
    wait_exit "$pid"; rc=$?
    check "$name: quits with status 0 after the save (got $rc)" [ $rc = 0 ]
}

# restore NAME FILE FIRST [args]: restores FILE; its first line must be
# counter FIRST and the next ones follow without a gap.
restore() {
    local name=$1 file=$2 first=$3
    shift 3
    if ! start "$name" --restore "$file" "$@"; then
        tap_fail "$name: --restore $file starts ($(head -c 300 "$tmp/$name.err"))"
        return 1
    fi
    tap_ok "$name: --restore starts a new process from the file"
    wait_lines "$tmp/$name.out" 5
    check "$name: counts on from $first with no step lost or repeated ($(numbers "$tmp/$name.out" | head -3 | tr '\n' ' ')...)" \
        consecutive "$tmp/$name.out" "$first"
}

# disk_matches DISK CONSOLE: DISK holds exactly what blk_writer says on
# CONSOLE it wrote (qmp_migrate.py disk-matches).
disk_matches() {
    python3 "$QMP_MIG" disk-matches "$1" "$2"
}

# bad_file DESC FILE PATTERN: --restore FILE fails with one line naming
# the file and matching PATTERN, and no guest output.
bad_file() {
    local desc=$1 file=$2 pattern=$3 rc
    timeout 20 "$VMM" --restore "$file" --console stdio </dev/null >"$tmp/bad.out" 2>"$tmp/bad.err"
    rc=$?
    local msg
    msg=$(cat "$tmp/bad.err")
    check "$desc: refused (status $rc) with one line: $msg" \
        [ $rc != 0 ] && [ $rc != 124 ] && [ "$(wc -l <"$tmp/bad.err")" = 1 ] &&
        grep -q -- "$pattern" "$tmp/bad.err" && grep -qF -- "$file" "$tmp/bad.err" &&
        [ ! -s "$tmp/bad.out" ]
}

# A guest reset after a restore starts from zeroed memory, not from the
# snapshot's: the restored RAM is a private mapping of the file until the
# reset, and the counter starts again from 1.
reset_after_restore() {
    local last
    last=$(numbers "$tmp/a.out" | tail -1)
    restore r "$tmp/s1" $((last + 1)) || return
    check "r: the restored RAM is backed by the snapshot file" grep -qF "$tmp/s1" /proc/$pid/maps
    local before
    before=$(count "$tmp/r.out")
    python3 "$QMP_PY" "$tmp/r.sock" system_reset >/dev/null
    wait_lines "$tmp/r.out" $((before + 8))
    # The numbers from the last 1 on: the run after the reset.
    local after
    after=$(numbers "$tmp/r.out" | awk '$1 == 1 { n = 0 } { a[n++] = $1 } END { for (i = 0; i < n; i++) print a[i] }' | tr '\n' ' ')
    check "r: after system_reset the counter starts again from 1 ($after)" \
        awk 'BEGIN { n = split(ARGV[1], t, " "); ARGV[1] = ""; ok = n >= 3 && t[1] == 1;
            for (i = 2; i <= n; i++) if (t[i] != t[i - 1] + 1) ok = 0; exit !ok }' "$after"
    check "r: after the reset no guest memory maps the snapshot file" \
        bash -c '! grep -qF "$1" "/proc/$2/maps"' _ "$tmp/s1" $pid
    python3 "$QMP_PY" "$tmp/r.sock" quit >/dev/null
    wait_exit $pid
}

main() {
    have_kvm || return
    if [ ! -f "$COUNTER" ]; then
        tap_fail "kit program $COUNTER is missing (make kit)"
        return
    fi
    if ! start a --kernel "$COUNTER" --memory 64M --cpus 2 --append "cpus=2"; then
        tap_fail "the counter guest starts"
        return
    fi
    tap_ok "the counter guest starts"
    wait_lines "$tmp/a.out" 5
    save_and_quit a "$tmp/s1"
    local last size alloc
    last=$(numbers "$tmp/a.out" | tail -1)
    size=$(stat -c %s "$tmp/s1")
    alloc=$(($(stat -c %b "$tmp/s1") * $(stat -c %B "$tmp/s1")))
    check "the snapshot is sparse: $alloc bytes stored of $size (zero pages are holes)" \
        [ "$size" -gt $((64 << 20)) ] && [ "$alloc" -lt $((8 << 20)) ]

    # First restore, then a save of the running restored VM.
    restore b "$tmp/s1" $((last + 1)) || return
    save_and_quit b "$tmp/s2"
    last=$(numbers "$tmp/b.out" | tail -1)
    # Second restore in a row, paused until cont.
    if start c --restore "$tmp/s2" --paused; then
        sleep 0.5
        check "c: --paused prints nothing before cont" [ "$(count "$tmp/c.out")" = 0 ]
        python3 "$QMP_PY" "$tmp/c.sock" cont >/dev/null
        wait_lines "$tmp/c.out" 5
        check "c: after cont, counts on from $((last + 1)) with no step lost or repeated" \
            consecutive "$tmp/c.out" $((last + 1))
        python3 "$QMP_PY" "$tmp/c.sock" quit >/dev/null
        wait_exit $pid
    else
        tap_fail "c: --restore --paused starts ($(head -c 300 "$tmp/c.err"))"
    fi

    reset_after_restore

    # Bad files.
    head -c $((2 << 20)) "$tmp/s1" >"$tmp/cut"
    bad_file "a truncated snapshot" "$tmp/cut" "truncated"
    cp "$tmp/s1" "$tmp/corrupt"
    printf '\x55' | dd of="$tmp/corrupt" bs=1 seek=5000 conv=notrunc status=none
    bad_file "a corrupt snapshot" "$tmp/corrupt" "checksum mismatch"
    qemu-img create -q -f qcow2 "$tmp/foreign.qcow2" 64M
    bad_file "a foreign file (qcow2)" "$tmp/foreign.qcow2" "not a cvirt snapshot"
    bad_file "a missing file" "$tmp/nonexistent" "cannot open"
    "$VMM" --restore "$tmp/s1" --memory 128M </dev/null >/dev/null 2>"$tmp/opt.err"
    check "--restore with a machine option is refused: $(cat "$tmp/opt.err")" \
        grep -q "cannot be given with it" "$tmp/opt.err"

    # A guest writing a qcow2 disk through virtio-blk (four requests in
    # flight), saved mid-run and restored: its requests in flight complete
    # before the save, and the restored guest finishes the run. The disk,
    # converted to raw by qemu-img, holds exactly what the guest says it
    # wrote.
    qemu-img create -q -f qcow2 "$tmp/d.qcow2" 32M
    local wargs=(--kernel "$KIT/blk_writer.elf" --memory 64M --disk "$tmp/d.qcow2,format=qcow2"
                 --append "seed=99 count=6000 k=16 depth=4")
    if start w "${wargs[@]}"; then
        local i rc
        for ((i = 0; i < 100; i++)); do
            [ "$(grep -c '^flushed' "$tmp/w.out")" -ge 30 ] && break
            sleep 0.1
        done
        out=$(save "$tmp/w.sock" "$tmp/s4")
        check "blk_writer: saved while writing ($out)" \
            grep -qx "setup,active,completed completed [0-9]* postmigrate" <<<"$out"
        python3 "$QMP_PY" "$tmp/w.sock" quit >/dev/null
        wait_exit $pid
        local saved_last
        saved_last=$(sed -n 's/^flushed //p' "$tmp/w.out" | tail -1)
        "$VMM" --restore "$tmp/s4" </dev/null >"$tmp/w2.out" 2>"$tmp/w2.err" &
        pid=$!
        wait_exit $pid 180; rc=$?
        check "blk_writer: the restored guest finishes the run and powers off (status $rc)" \
            [ $rc = 0 ] && grep -q "^ok 2 - writes and flushes complete with OK" "$tmp/w2.out"
        check "blk_writer: it went on from the saved point ($saved_last flushed before the save)" \
            [ -n "$saved_last" ] && [ "$(sed -n 's/^flushed //p' "$tmp/w2.out" | head -1)" = $((saved_last + 16)) ]
        qemu-img convert -O raw "$tmp/d.qcow2" "$tmp/d.raw"
        cat "$tmp/w.out" "$tmp/w2.out" >"$tmp/wall.out"
        check "blk_writer: the disk (qemu-img convert to raw) matches every write the guest made" \
            disk_matches "$tmp/d.raw" "$tmp/wall.out"
        check "blk_writer: qemu-img check finds the qcow2 image clean" qemu-img check -q "$tmp/d.qcow2"
    else
        tap_fail "blk_writer with a qcow2 disk starts ($(head -c 300 "$tmp/w.err"))"
    fi
}

# The real Linux guest (PVH vmlinux, virtio-rng and virtio-blk) saved while
# a shell loop prints tick-N and reads the hardware RNG, restored by a new
# process: the ticks go on from the next number and the RNG still answers
# through the restored virtqueue. The guest picks its clocksource itself:
# cvirt-vmm hides the invariant TSC, as QEMU does, so Linux keeps
# kvm-clock, which the restore sets back; with the TSC, on hosts whose KVM
# cannot offset the guest's TSC (PVM), the restored guest would see the
# whole time it spent in the file pass at once and fall behind its ticks.
# The guest's own report of its clocksource is checked.
linux_guest() {
    local env
    if ! env=$("$CVIRT_SRC/tests/guest/linux/prepare.sh"); then
        tap_fail "Linux: building the guest kernel and initramfs (see stderr)"
        return
    fi
    eval "$env"
    local run='cat%20/sys/devices/system/clocksource/clocksource0/current_clocksource;i=0;while%20[%20$i%20-lt%20400%20];do%20echo%20tick-$i;head%20-c%2016%20/dev/hwrng>/dev/null&&echo%20rng-$i;i=$((i+1));sleep%200.2;done'
    truncate -s 16M "$tmp/lx.raw"
    if ! start lx --kernel "$KERNEL" --initrd "$INITRD" --memory 256M --rng --disk "$tmp/lx.raw" \
        --append "$(cat "$CMDLINE_FILE") cvirt.run=$run"; then
        tap_fail "Linux: the guest starts"
        return
    fi
    local i
    for ((i = 0; i < 480; i++)); do
        grep -q '^rng-3' "$tmp/lx.out" && break
        sleep 0.5
    done
    if ! grep -q '^rng-3' "$tmp/lx.out"; then
        tap_fail "Linux: the tick loop runs within 240 s ($(tail -c 200 "$tmp/lx.out" | tr -d '\r'))"
        python3 "$QMP_PY" "$tmp/lx.sock" quit >/dev/null
        wait_exit $pid
        return
    fi
    check "Linux: the guest chose kvm-clock ($(tr -d '\r' <"$tmp/lx.out" | grep -m1 -x -e tsc -e kvm-clock -e refined-jiffies -e jiffies))" \
        grep -qx kvm-clock <(tr -d '\r' <"$tmp/lx.out")
    save_and_quit lx "$tmp/ls" 5
    local last
    last=$(tr -d '\r' <"$tmp/lx.out" | sed -n 's/^tick-\([0-9]*\)$/\1/p' | tail -1)
    if ! start lr --restore "$tmp/ls"; then
        tap_fail "Linux: --restore starts ($(head -c 300 "$tmp/lr.err"))"
        return
    fi
    for ((i = 0; i < 240; i++)); do
        [ "$(tr -d '\r' <"$tmp/lr.out" | grep -c '^rng-')" -ge 3 ] && break
        sleep 0.5
    done
    local ticks
    ticks=$(tr -d '\r' <"$tmp/lr.out" | sed -n 's/^tick-\([0-9]*\)$/\1/p' | tr '\n' ' ')
    check "Linux: the restored guest ticks on from $((last + 1)) with no step lost or repeated ($ticks)" \
        awk -v first=$((last + 1)) 'BEGIN { n = split(ARGV[1], t, " "); ARGV[1] = "";
            ok = n >= 2 && t[1] == first; for (i = 2; i <= n; i++) if (t[i] != t[i - 1] + 1) ok = 0;
            exit !ok }' "$ticks"
    check "Linux: virtio-rng answers the restored guest" \
        grep -q "^rng-$((last + 1))" <(tr -d '\r' <"$tmp/lr.out")
    # The guest enabled the power button's SCI before the save; only the
    # restored ACPI registers let acpid see the press and power it off.
    local rc
    python3 "$QMP_PY" "$tmp/lr.sock" system_powerdown >/dev/null
    wait_exit $pid 60; rc=$?
    check "Linux: system_powerdown powers the restored guest off (status $rc)" [ $rc = 0 ]
    check "Linux: the tick loop did not finish on its own" \
        bash -c '! grep -q "^tick-399" "$1"' _ "$tmp/lr.out"
}

main
if have_kvm >/dev/null; then
    linux_guest
fi
tap_done
