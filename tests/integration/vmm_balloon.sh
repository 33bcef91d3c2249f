#!/bin/bash
# virtio-balloon with the real Linux guest on cvirt-vmm: the guest touches
# memory (a tmpfs file, filled then deleted, so the pages it frees are
# backed on the host), then a QMP peer lowers the target with `balloon`.
# Measured, not assumed: inside the guest MemTotal falls by exactly the
# ballooned size (Linux 6.1 takes ballooned pages out of the managed count
# unless DEFLATE_ON_OOM is negotiated, which --balloon does not offer by
# default); on the host cvirt-vmm's VmRSS falls; query-balloon and the
# BALLOON_CHANGE event give the new size; the guest's statistics, fetched
# after the inflation, carry the new total. A second boot with
# deflate-on-oom=on shows the other accounting: MemTotal stays, MemFree
# falls.
source "$(dirname "$0")/lib.sh"

GUEST=$CVIRT_SRC/tests/guest/linux
TIMEOUT=${CVIRT_GUEST_TIMEOUT:-400}
RAM_MB=${CVIRT_BALLOON_RAM_MB:-256}
BALLOON_MB=${CVIRT_BALLOON_MB:-64}      # given back (64 MiB: 16384 balloon pages)
FILL_MB=${CVIRT_BALLOON_FILL_MB:-48}    # touched in the guest first
# The RSS must fall by at least half the fill. Not every ballooned page
# was backed on the host (a page the guest never touched costs nothing to
# give back), but the pages the fill freed are the guest's first choice.
MIN_RSS_DROP_MB=$((FILL_MB / 2))
OOM_BALLOON_MB=32               # the deflate-on-oom boot, without a fill

encode() {
    python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe="/;=$|<>&-_.,:()"))' "$1"
}

# The host side: waits for the guest's BALLOON-READY line, reads VmRSS,
# sets the target, waits for the guest to reach it, reads VmRSS again and
# fetches the guest's statistics twice (the first fetch asks for fresh
# ones). Writes JSON to OUT.
peer() {   # peer SOCK CONSOLE PID TARGET OUT
    PYTHONPATH=$CVIRT_SRC/tests/integration python3 - "$@" "$TIMEOUT" <<'EOF'
import json, os, sys, time
import qmp
sock, console, pid, target, out, limit = sys.argv[1:7]
target, deadline = int(target), time.time() + float(limit)
res = {}

def rss_kb():
    for line in open("/proc/%s/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %s" % pid)

def wait_for(pred, what):
    while not pred():
        if time.time() > deadline:
            raise RuntimeError("timed out waiting for " + what)
        time.sleep(0.2)

try:
    wait_for(lambda: os.path.exists(sock), "the control socket")
    with qmp.Client(sock) as c:
        c.negotiate()
        wait_for(lambda: "BALLOON-READY" in open(console, errors="replace").read(),
                 "the guest's BALLOON-READY line")
        t0 = time.time()
        res["rss_before_kb"] = rss_kb()
        res["query_before"] = c.execute("query-balloon")["actual"]
        c.execute("balloon", {"value": target})
        wait_for(lambda: c.execute("query-balloon")["actual"] == target,
                 "query-balloon to reach the target")
        res["query_after"] = c.execute("query-balloon")["actual"]
        res["rss_after_kb"] = rss_kb()
        res["inflate_seconds"] = round(time.time() - t0, 1)
        c.execute("query-balloon-stats")
        time.sleep(2)
        res["stats"] = c.execute("query-balloon-stats")
        res["events"] = [e["data"]["actual"] for e in c.events if e["event"] == "BALLOON_CHANGE"]
except Exception as e:
    res["error"] = "%s: %s" % (type(e).__name__, e)
json.dump(res, open(out, "w"))
EOF
}

field() {
    python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2" \
        2>/dev/null
}

# boot BALLOON-OPT TARGET SCRIPT: boots the guest with the balloon option
# and the peer; leaves the console in $out, the peer's JSON in $tmp/peer.json
# and reports the boot's own cases.
boot() {
    local opt=$1 target=$2 script=$3 rc
    # Expanded here, so the background job is timeout itself and its one
    # child is cvirt-vmm, whose RSS the peer reads.
    local append
    append="$(cat "$CMDLINE_FILE") cvirt.run=$(encode "$script")"
    timeout "$TIMEOUT" "$VMM" --kernel "$KERNEL" --initrd "$INITRD" --memory ${RAM_MB}M \
        --no-reboot "$opt" --control "$tmp/qmp.sock" --append "$append" \
        </dev/null >"$out" 2>"$out.err" &
    local tpid=$! vpid="" p
    for _ in $(seq 100); do
        for p in $(cat "/proc/$tpid/task/$tpid/children" 2>/dev/null); do
            [ "$(cat "/proc/$p/comm" 2>/dev/null)" = cvirt-vmm ] && vpid=$p
        done
        [ -n "$vpid" ] && break
        sleep 0.1
    done
    [ -n "$vpid" ] || echo "# cvirt-vmm's pid not found under timeout ($tpid)"
    peer "$tmp/qmp.sock" "$out" "${vpid:-0}" "$target" "$tmp/peer.json" 2>"$tmp/peer.err"
    wait "$tpid"
    rc=$?
    if [ "$rc" = 124 ]; then
        tap_fail "$opt: guest powered off within ${TIMEOUT}s (timed out)"
    else
        check "$opt: guest powered off, cvirt-vmm exited 0 (status $rc)" [ "$rc" = 0 ]
    fi
    check "$opt: cvirt.run command exited 0" grep -qx 'CVIRT-RUN-EXIT=0' <(tr -d '\r' <"$out")
    local err
    err=$(field "$tmp/peer.json" 'r.get("error", "")')
    if [ -s "$tmp/peer.json" ] && [ -z "$err" ]; then
        tap_ok "$opt: the QMP peer did its part"
    else
        tap_fail "$opt: the QMP peer did its part # ${err:-no result}"
    fi
    local q0 q1 ev
    q0=$(field "$tmp/peer.json" 'r["query_before"]')
    q1=$(field "$tmp/peer.json" 'r["query_after"]')
    check "$opt: query-balloon: the whole RAM before, the target after ($q0 -> $q1)" \
        eval '[ "$q0" = $((RAM_MB << 20)) ] && [ "$q1" = "$target" ]'
    ev=$(field "$tmp/peer.json" 'r["events"][-1]')
    check "$opt: the last BALLOON_CHANGE event carries the target ($ev)" [ "$ev" = "$target" ]
    check "$opt: no device was marked broken" bash -c "! grep -q 'needs a reset' '$out.err'"
}

# What the guest printed as NAME=VALUE.
guest_val() { tr -d '\r' <"$out" | sed -n "s/^$1=//p"; }

show() {
    tr -d '\r' <"$out" | grep -v 'Command line' | tail -n 12 | sed 's/^/# /'
    sed 's/^/# stderr: /' "$out.err" "$tmp/peer.err"
    sed 's/^/# peer: /' "$tmp/peer.json"
    echo
}

MEMINFO_FN="mi() { sed -n \"s/^\$1: *\\([0-9]*\\) kB/\\1/p\" /proc/meminfo; }"

run_test() {
    local tmp out target=$(((RAM_MB - BALLOON_MB) << 20)) script
    tmp=$(mktemp -d)
    out=$tmp/console
    # The wait ends when MemTotal has fallen by the whole balloon or after
    # a bound; the guest stays up a little for the peer's statistics fetch.
    script="$MEMINFO_FN; b=\$(mi MemTotal); echo MEMTOTAL-BEFORE=\$b; mkdir -p /t; \
mount -t tmpfs -o size=$((FILL_MB + 8))M tmpfs /t; \
dd if=/dev/zero of=/t/fill bs=1M count=$FILL_MB 2>/dev/null; rm /t/fill; echo BALLOON-READY; \
i=0; while [ \$(mi MemTotal) -gt \$((b - $BALLOON_MB * 1024)) ] && [ \$i -lt $((TIMEOUT - 60)) ]; do \
sleep 1; i=\$((i + 1)); done; echo MEMTOTAL-AFTER=\$(mi MemTotal); sleep 8"
    boot --balloon "$target" "$script"

    local before after
    before=$(guest_val MEMTOTAL-BEFORE)
    after=$(guest_val MEMTOTAL-AFTER)
    check "guest: MemTotal fell by the ballooned ${BALLOON_MB} MiB ($before kB -> $after kB)" \
        eval '[ -n "$before" ] && [ -n "$after" ] && [ "$((before - after))" = "$((BALLOON_MB * 1024))" ]'
    local rb ra
    rb=$(field "$tmp/peer.json" 'r["rss_before_kb"]')
    ra=$(field "$tmp/peer.json" 'r["rss_after_kb"]')
    check "host: cvirt-vmm's VmRSS fell by at least ${MIN_RSS_DROP_MB} MiB ($rb kB -> $ra kB)" \
        eval '[ -n "$rb" ] && [ -n "$ra" ] && [ "$((rb - ra))" -ge $((MIN_RSS_DROP_MB * 1024)) ]'
    local tot free
    tot=$(field "$tmp/peer.json" 'r["stats"]["stats"]["stat-total-memory"]')
    free=$(field "$tmp/peer.json" 'r["stats"]["stats"]["stat-free-memory"]')
    check "guest statistics: stat-total-memory is the new MemTotal ($tot bytes)" \
        eval '[ -n "$after" ] && [ "$tot" = "$((after * 1024))" ]'
    check "guest statistics: stat-free-memory is below it ($free bytes)" \
        eval '[ -n "$free" ] && [ -n "$tot" ] && [ "$free" -gt 0 ] && [ "$free" -lt "$tot" ]'
    show
    rm -rf "$tmp"
}

# With DEFLATE_ON_OOM Linux leaves ballooned pages in MemTotal (they can
# come back under memory pressure): MemFree falls instead.
run_oom() {
    local tmp out mb=$OOM_BALLOON_MB target=$(((RAM_MB - OOM_BALLOON_MB) << 20)) script
    tmp=$(mktemp -d)
    out=$tmp/console
    script="$MEMINFO_FN; t=\$(mi MemTotal); f=\$(mi MemFree); echo MEMTOTAL-BEFORE=\$t; \
echo MEMFREE-BEFORE=\$f; echo FEATURES=\$(cat /sys/bus/virtio/devices/*/features | grep -m1 .); \
echo BALLOON-READY; i=0; \
while [ \$(mi MemFree) -gt \$((f - $mb * 1024 + 4096)) ] && [ \$i -lt $((TIMEOUT - 60)) ]; do \
sleep 1; i=\$((i + 1)); done; echo MEMTOTAL-AFTER=\$(mi MemTotal); echo MEMFREE-AFTER=\$(mi MemFree); sleep 4"
    boot --balloon=deflate-on-oom=on "$target" "$script"

    local tb ta fb fa feat
    tb=$(guest_val MEMTOTAL-BEFORE)
    ta=$(guest_val MEMTOTAL-AFTER)
    fb=$(guest_val MEMFREE-BEFORE)
    fa=$(guest_val MEMFREE-AFTER)
    feat=$(guest_val FEATURES)
    check "deflate-on-oom: the guest's driver accepted DEFLATE_ON_OOM (features ${feat:0:8})" \
        [ "${feat:2:1}" = 1 ]
    check "deflate-on-oom: MemTotal stays ($tb kB -> $ta kB)" eval '[ -n "$tb" ] && [ "$tb" = "$ta" ]'
    check "deflate-on-oom: MemFree fell by about ${mb} MiB ($fb kB -> $fa kB)" \
        eval '[ -n "$fb" ] && [ -n "$fa" ] && [ "$((fb - fa))" -ge $(((mb - 4) * 1024)) ] && [ "$((fb - fa))" -le $(((mb + 8) * 1024)) ]'
    show
    rm -rf "$tmp"
}

if have_kvm; then
    if env=$("$GUEST/prepare.sh"); then
        eval "$env"
        run_test
        run_oom
    else
        tap_fail "building the guest kernel and initramfs (see stderr)"
    fi
fi
tap_done
