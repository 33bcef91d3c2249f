#!/bin/bash
# The kit's virtio_balloon program on QEMU (the oracle) and then on
# cvirt-vmm, each with a QMP peer on its control socket doing the host's
# part: it sets the target with `balloon` (the program waits for num_pages
# to become pages=), collects the BALLOON_CHANGE events the guest's writes
# to actual cause, reads query-balloon and the guest's statistics (QEMU:
# qom-get guest-stats; cvirt-vmm: query-balloon-stats, which also asks the
# guest for a fresh report; QEMU is told to ask by a polling interval).
# The host's view is checked against what the program was told to do and
# to report, on both.
source "$(dirname "$0")/lib.sh"
source "$CVIRT_SRC/tests/guest/kit/cases.sh"

RAM=$((64 << 20))               # run.sh gives both machines 64 MiB
NOT_REPORTED=18446744073709551615   # QEMU's value for a statistic never sent
WORK=""
trap '[ -n "$WORK" ] && rm -rf "$WORK"' EXIT

# balloon_peer KIND SOCK TARGET OUT: the host side of one run, written to
# OUT as JSON (or {"error": ...}).
balloon_peer() {
    PYTHONPATH=$CVIRT_SRC/tests/integration python3 - "$@" <<'EOF'
import json, os, sys, time
import qmp
kind, path, target, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ram = 64 << 20
res = {"events": []}
try:
    deadline = time.time() + 30
    while not os.path.exists(path):
        if time.time() > deadline:
            raise RuntimeError("no socket at %s after 30 s" % path)
        time.sleep(0.05)
    c = None
    while c is None:
        try:
            c = qmp.Client(path)
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)
    c.negotiate()
    c.execute("balloon", {"value": target})
    # Until the guest has given the pages and taken them all back.
    seen_target = False
    while True:
        ev = c.wait_event("BALLOON_CHANGE", timeout=40)
        a = ev["data"]["actual"]
        res["events"].append(a)
        seen_target = seen_target or a == target
        if seen_target and a == ram:
            break
    res["query"] = c.execute("query-balloon")["actual"]
    if kind == "qemu":
        path_q = "/machine/peripheral/bal0"
        st = c.execute("qom-get", {"path": path_q, "property": "guest-stats"})
        c.execute("qom-set", {"path": path_q, "property": "guest-stats-polling-interval",
                              "value": 1})
    else:
        st = c.execute("query-balloon-stats")
        res["ignored-pfns"] = st["ignored-pfns"]
    res["stats"] = st["stats"]
    res["last-update"] = st["last-update"]
except Exception as e:
    res["error"] = "%s: %s" % (type(e).__name__, e)
json.dump(res, open(out, "w"))
EOF
}

# field FILE EXPR: a value from the peer's JSON (python expression on r).
field() {
    python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2" \
        2>/dev/null
}

# host_checks NAME FILE PAGES MEMFREE SWAPIN
host_checks() {
    local name=$1 f=$2 pages=$3 memfree=$4 swapin=$5 err
    err=$(field "$f" 'r.get("error", "")')
    if [ ! -s "$f" ] || [ -n "$err" ]; then
        tap_fail "$name: the QMP peer did its part # ${err:-no result}"
        return
    fi
    tap_ok "$name: the QMP peer did its part"
    local want="[$((RAM - pages * 4096)), $RAM]" got
    got=$(field "$f" 'r["events"]')
    check "$name: BALLOON_CHANGE reports the inflated then the deflated size (got $got)" \
        [ "$got" = "$want" ]
    got=$(field "$f" 'r["query"]')
    check "$name: query-balloon's actual is the whole RAM again (got $got)" [ "$got" = "$RAM" ]
    got=$(field "$f" '[r["stats"][k] for k in ("stat-free-memory", "stat-total-memory", "stat-swap-in", "stat-major-faults")]')
    check "$name: the guest's statistics as it reported them (got $got)" \
        [ "$got" = "[$((memfree * 4096)), $RAM, $swapin, $NOT_REPORTED]" ]
    got=$(field "$f" 'r["last-update"]')
    check "$name: statistics carry their time of arrival (got $got)" \
        [ "${got:-0}" -gt 1000000000 ]
}

main() {
    have_kvm || return
    if ! command -v "${CVIRT_KIT_QEMU:-qemu-system-x86_64}" >/dev/null; then
        tap_fail "qemu-system-x86_64 is installed (apt-get install qemu-system-x86)"
        return
    fi
    if ! kit_build "$KIT" || [ ! -f "$KIT/virtio_balloon.elf" ]; then
        tap_fail "building the guest test kit with virtio_balloon (see stderr)"
        return
    fi
    tap_ok "guest test kit built with virtio_balloon"
    WORK=$(mktemp -d)
    # More pages than one inflate buffer holds; numbers the guest could
    # not guess.
    local pages=$((257 + RANDOM % 250)) memfree=$((1000 + RANDOM % 9000)) swapin=$((RANDOM + 1))
    local target=$((RAM - pages * 4096)) peer
    local args="pages=$pages memfree=$memfree memtot=$((RAM / 4096)) swapin=$swapin"

    balloon_peer qemu "$WORK/q.sock" "$target" "$WORK/q.json" &
    peer=$!
    CVIRT_KIT_QEMU_ARGS="-device virtio-balloon-pci,id=bal0,disable-legacy=on -qmp unix:$WORK/q.sock,server=on,wait=off" \
        kit_oracle virtio_balloon 1 "$args"
    wait "$peer"
    host_checks "QEMU" "$WORK/q.json" "$pages" "$memfree" "$swapin"

    balloon_peer cvirt "$WORK/v.sock" "$target" "$WORK/v.json" &
    peer=$!
    CVIRT_KIT_VMM_ARGS="--balloon --control $WORK/v.sock" \
        kit_subject "virtio_balloon" virtio_balloon 1 "$args"
    wait "$peer"
    host_checks "cvirt-vmm" "$WORK/v.json" "$pages" "$memfree" "$swapin"
    local ign
    ign=$(field "$WORK/v.json" 'r["ignored-pfns"]')
    check "cvirt-vmm: query-balloon-stats counts the 3 page numbers outside RAM (got $ign)" \
        [ "$ign" = 3 ]
    local qs vs
    qs=$(field "$WORK/q.json" 'sorted(r["stats"].items())')
    vs=$(field "$WORK/v.json" 'sorted(r["stats"].items())')
    if [ -n "$qs" ] && [ "$qs" = "$vs" ]; then
        tap_ok "cvirt-vmm: every statistic equals QEMU's"
    else
        tap_fail "cvirt-vmm: every statistic equals QEMU's # QEMU $qs, cvirt-vmm $vs"
    fi
}

main
tap_done
