#!/bin/bash
# cvirt-vmm's QMP control socket against a kit guest that prints a counter:
# every command, the protocol's errors, several clients (one of them never
# reading), events, stop/cont freezing the guest's console, reset, quit,
# the socket file's life cycle. The client is tests/integration/qmp.py;
# its scenarios print "PASS desc" / "FAIL desc" lines that become TAP here.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/qmp_lib.sh"

COUNTER=$KIT/counter.elf
QMP_PY=$(dirname "$0")/qmp.py
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT

# The scenario's PASS/FAIL lines as TAP cases named after it.
report() { qmp_report "$1" "the scenario"; }

# start_vmm NAME [args...]: the counter guest with a control socket at
# $tmp/NAME.sock, console on $tmp/NAME.out; sets pid. Waits for the socket.
start_vmm() {
    local name=$1 i
    shift
    "$VMM" --kernel "$COUNTER" --memory 64M --control "$tmp/$name.sock" "$@" \
        </dev/null >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pid=$!
    for ((i = 0; i < 100; i++)); do
        [ -S "$tmp/$name.sock" ] && return 0
        kill -0 $pid 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# wait_count FILE N: until FILE has N lines "counter 1" (10 s).
wait_count() {
    local i
    for ((i = 0; i < 100; i++)); do
        [ "$(tr -d '\r' <"$1" | grep -cx 'counter 1')" -ge "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

# wait_exit PID: its status, or 124 (and SIGKILL) after 10 s.
wait_exit() {
    local i
    for ((i = 0; i < 100; i++)); do
        if ! kill -0 "$1" 2>/dev/null; then
            wait "$1"
            return
        fi
        sleep 0.1
    done
    kill -KILL "$1"; wait "$1"
    return 124
}

scenario() {
    python3 - "$QMP_PY" "$@" <<'EOF' 2>&1
import json, os, socket, stat, sys, time
sys.path.insert(0, os.path.dirname(sys.argv[1]))
import qmp
what, args = sys.argv[2], sys.argv[3:]

def check(cond, desc):
    print(("PASS " if cond else "FAIL ") + desc, flush=True)
    return cond

def lines(path):
    with open(path) as f:
        return [int(l.split()[1]) for l in f if l.startswith("counter ")]

def err_class(r):
    return r.get("error", {}).get("class")

if what == "basics":
    sock, pid, qcow, raw = args
    check(stat.S_IMODE(os.stat(sock).st_mode) == 0o600, "the socket is mode 0600")
    c = qmp.Client(sock)
    v = c.greeting["QMP"]["version"]
    check(set(v["qemu"]) == {"major", "minor", "micro"} and
          c.greeting["QMP"]["capabilities"] == [] and v["package"].startswith("cvirt-vmm"),
          "greeting has QEMU's shape")
    r = c.cmd("query-status")
    check(err_class(r) == "CommandNotFound" and r.get("id") == c.next_id,
          "a command before qmp_capabilities: CommandNotFound, id echoed")
    check(c.negotiate() == {}, "qmp_capabilities returns {}")
    check(err_class(c.cmd("qmp_capabilities")) == "CommandNotFound",
          "a second qmp_capabilities: CommandNotFound")
    check(c.execute("query-version") == v, "query-version matches the greeting")
    names = {x["name"] for x in c.execute("query-commands")}
    want = {"qmp_capabilities", "query-version", "query-commands", "query-status", "stop",
            "cont", "system_reset", "system_powerdown", "quit", "query-cpus-fast",
            "query-block"}
    check(want <= names, "query-commands lists every command (missing: %s)" % (want - names))
    st = c.execute("query-status")
    check(st == {"status": "running", "running": True, "singlestep": False},
          "query-status: running (%s)" % st)
    cpus = c.execute("query-cpus-fast")
    tids = sorted(x["thread-id"] for x in cpus)
    real = sorted(int(t) for t in os.listdir("/proc/%s/task" % pid))
    check([x["cpu-index"] for x in cpus] == [0, 1] and
          all(x["target"] == "x86_64" and "core-id" in x["props"] and x["qom-path"] for x in cpus),
          "query-cpus-fast: two vCPUs with QEMU's members")
    check(len(set(tids)) == 2 and all(t in real and t != int(pid) for t in tids),
          "query-cpus-fast: thread-ids are this process's vCPU threads (%s)" % tids)
    blk = c.execute("query-block")
    byfile = {b["inserted"]["file"]: b for b in blk}
    check(len(blk) == 2 and [b["device"] for b in blk] == ["virtio0", "virtio1"],
          "query-block: both disks, in order (%s)" % [b["device"] for b in blk])
    q, rw = byfile.get(qcow, {}).get("inserted", {}), byfile.get(raw, {}).get("inserted", {})
    check(q.get("drv") == "qcow2" and q.get("ro") is False, "query-block: the qcow2 disk, writable")
    check(rw.get("drv") == "raw" and rw.get("ro") is True, "query-block: the raw disk, read-only")
    # The protocol's errors leave the connection usable.
    c.send_raw('{"execute": "query-status", "id": }\n')
    r = c.reply()
    check(err_class(r) == "GenericError" and "JSON parse error" in r["error"]["desc"],
          "bad JSON: GenericError 'JSON parse error...'")
    c.send_raw("42\n")
    check(err_class(c.reply()) == "GenericError", "a request that is not an object: GenericError")
    r = c.cmd("no-such-command")
    check(err_class(r) == "CommandNotFound", "unknown command: CommandNotFound")
    r = c.cmd("stop", {"force": True})
    check(err_class(r) == "GenericError" and "'force'" in r["error"]["desc"],
          "an extra argument: GenericError naming it (%s)" % r.get("error"))
    c2 = qmp.Client(sock)
    r = c2.cmd("qmp_capabilities", {"enable": "oob"})
    check(err_class(r) == "GenericError" and "'enable'" in r["error"]["desc"],
          "a wrong argument type: GenericError naming it (%s)" % r.get("error"))
    c2.send_raw('{"execute": "query-status", "id": "frag')
    time.sleep(0.2)
    c2.send_raw('mented"}')
    r = c2.reply()
    check(r.get("id") == "fragmented", "a request split across writes is answered once whole")
    check(c.execute("query-status")["status"] == "running", "the first client still works")
    # As `echo ... | socat - UNIX-CONNECT:...` does: requests, then the
    # client shuts its sending side; the replies still come, then EOF.
    c3 = qmp.Client(sock)
    c3.send_raw('{"execute": "qmp_capabilities", "id": 1}\n{"execute": "query-status", "id": 2}\n')
    c3.sock.shutdown(socket.SHUT_WR)
    got = []
    try:
        while True:
            got.append(c3.recv(timeout=5))
    except EOFError:
        pass
    check([r.get("id") for r in got] == [1, 2] and got[1]["return"]["status"] == "running",
          "a client that shuts down its side gets its replies, then EOF (%s)" % got)
    c.close(); c2.close(); c3.close()

elif what == "pause":
    sock, out = args
    a, b = qmp.Client(sock), qmp.Client(sock)
    a.negotiate(); b.negotiate()
    time.sleep(0.5)
    before = lines(out)
    a.execute("stop")
    ev_a, ev_b = a.wait_event("STOP"), b.wait_event("STOP")
    check(ev_a and ev_b and "seconds" in ev_a["timestamp"], "stop: STOP goes to both clients")
    st = b.execute("query-status")
    check(st["status"] == "paused" and st["running"] is False, "query-status: paused (%s)" % st)
    frozen = lines(out)
    time.sleep(1.5)
    after = lines(out)
    check(len(before) > 0 and frozen == after,
          "the console stays still while paused (%d then %d lines)" % (len(frozen), len(after)))
    check(a.execute("stop") == {} and b.execute("query-status")["status"] == "paused",
          "stop when paused: nothing changes")
    b.execute("cont")
    check(a.wait_event("RESUME") is not None, "cont: RESUME")
    check(a.execute("query-status")["status"] == "running", "query-status: running again")
    time.sleep(1.5)
    resumed = lines(out)
    check(len(resumed) > len(after) and resumed[len(after)] == after[-1] + 1,
          "the counter carries on from where it stopped (%d -> %s)" %
          (after[-1] if after else -1, resumed[len(after):len(after) + 1]))
    a.execute("stop"); a.wait_event("STOP")
    a.execute("system_reset")
    ev = a.wait_event("RESET")
    check(ev["data"] == {"guest": False, "reason": "host-qmp-system-reset"},
          "system_reset while paused: RESET from the host (%s)" % ev.get("data"))
    n = len(lines(out))
    time.sleep(1)
    check(a.execute("query-status")["status"] == "paused" and len(lines(out)) == n,
          "the reset guest stays paused")
    a.execute("cont"); a.wait_event("RESUME")
    deadline = time.time() + 20
    while time.time() < deadline and lines(out)[n:n + 1] != [1]:
        time.sleep(0.2)
    check(lines(out)[n:n + 1] == [1], "after cont the guest starts again from 1")
    a.execute("system_powerdown")
    check(a.wait_event("POWERDOWN") is not None, "system_powerdown: POWERDOWN")

elif what == "stuck":
    sock, out = args
    # One client floods requests and never reads a reply; another keeps
    # working and the guest keeps running; the flooder gets dropped.
    flood = qmp.Client(sock)
    # A send that blocks this long means the server stopped reading
    # without dropping the client: an exception, so a failure.
    flood.sock.settimeout(30)
    req = b'{"execute": "qmp_capabilities"}\n' + b'{"execute": "query-commands"}\n' * 100
    good = qmp.Client(sock)
    good.negotiate()
    n0 = len(lines(out))
    dropped, worst = False, 0.0
    for i in range(400):
        try:
            flood.send_raw(req)
        except (BrokenPipeError, ConnectionResetError):
            dropped = True
            break
        if i % 20 == 0:
            t = time.monotonic()
            good.execute("query-status")
            worst = max(worst, time.monotonic() - t)
    check(dropped, "a client that never reads its replies is dropped")
    check(worst < 2.0, "the other client is answered meanwhile (slowest %.2f s)" % worst)
    time.sleep(0.5)
    check(len(lines(out)) > n0, "the guest keeps running")
    idle = qmp.Client(sock)            # connected, negotiated, never reads again
    idle.negotiate()
    for i in range(5):
        good.execute("stop"); good.execute("cont")
    check(good.execute("query-status")["status"] == "running",
          "an idle client that reads no events stalls nobody")
    huge = qmp.Client(sock)
    try:
        huge.send_raw(b'{"execute": "' + b"x" * (256 * 1024) + b'"}\n')
        huge.recv(timeout=5)
        check(False, "a request larger than the limit drops the client")
    except (EOFError, BrokenPipeError, ConnectionResetError):
        check(True, "a request larger than the limit drops the client")
    check(good.execute("query-status")["running"], "the server still serves the others")

elif what == "oracle":
    # The same requests to QEMU (a machine without guest, two QMP sockets
    # since QEMU serves one client per socket) and to cvirt-vmm: the same
    # error classes and texts, the same reply shapes.
    vmm, q1, q2 = args
    def session(path, path2):
        out = []
        early = qmp.Client(path2)
        out.append(("before negotiation", early.cmd("query-status")))
        out.append(("enable of the wrong type",
                    early.cmd("qmp_capabilities", {"enable": "oob"})))
        early.close()
        c = qmp.Client(path)
        out.append(("greeting members", sorted(c.greeting["QMP"])))
        out.append(("version members", sorted(c.greeting["QMP"]["version"]["qemu"])))
        out.append(("qmp_capabilities", c.cmd("qmp_capabilities")))
        out.append(("second qmp_capabilities", c.cmd("qmp_capabilities")))
        for raw in ['{"execute": }', "42", '{"arguments": {}}', '{"execute": 5}',
                    '{"execute": "query-status", "foo": 1}',
                    '{"execute": "query-status", "arguments": [1]}']:
            c.send_raw(raw + "\n")
            out.append((raw, c.reply()))
        out.append(("unknown command", c.cmd("no-such-command")))
        out.append(("extra argument", c.cmd("stop", {"force": True})))
        out.append(("query-status", c.cmd("query-status")))
        out.append(("stop", c.cmd("stop")))
        out.append(("STOP event", sorted(c.wait_event("STOP"))))
        out.append(("query-status paused", c.cmd("query-status")))
        out.append(("cont", c.cmd("cont")))
        out.append(("RESUME event", sorted(c.wait_event("RESUME"))))
        names = {x["name"] for x in c.execute("query-commands")}
        c.close()
        return out, names
    mine, my_names = session(vmm, vmm)
    theirs, q_names = session(q1, q2)
    def norm(v):
        # Ids differ with the order of commands; JSON parse errors differ
        # past their fixed prefix.
        if isinstance(v, dict):
            v = {k: x for k, x in v.items() if k != "id"}
            e = v.get("error")
            if e and e.get("desc", "").startswith("JSON parse error"):
                v["error"] = dict(e, desc="JSON parse error")
        return v
    for (what_m, m), (_, q) in zip(mine, theirs):
        check(norm(m) == norm(q), "like QEMU: %s (%s / QEMU %s)" % (what_m, norm(m), norm(q)))
    missing = my_names - q_names
    check(not missing, "every command has QEMU's name (not in QEMU: %s)" % sorted(missing))

elif what == "quit":
    sock, = args
    c = qmp.Client(sock)
    c.negotiate()
    c.execute("stop")
    c.wait_event("STOP")
    check(c.execute("quit") == {}, "quit on a paused VM returns {}")
    ev = c.wait_event("SHUTDOWN")
    check(ev["data"] == {"guest": False, "reason": "host-qmp-quit"},
          "quit: SHUTDOWN from the host (%s)" % ev.get("data"))

elif what == "watch":
    # Waits for an event (the guest's own or a signal's) and prints its
    # data; pauses the VM first when asked to.
    sock, name, pause = args
    c = qmp.Client(sock)
    c.negotiate()
    if pause == "paused":
        c.execute("stop")
        c.wait_event("STOP")
    print("READY", flush=True)
    ev = c.wait_event(name, timeout=30)
    print("DATA " + json.dumps(ev.get("data"), sort_keys=True), flush=True)
EOF
}

# watch_event SOCK EVENT running|paused ACTION: the data of EVENT as a
# client sees it while the VM ends or resets by itself or by ACTION (run
# once the client is ready, the VM paused first when asked).
watch_event() {
    local sock=$1 event=$2 pause=$3 action=$4
    scenario watch "$sock" "$event" "$pause" >"$tmp/watch" &
    local wpid=$! i
    for ((i = 0; i < 50; i++)); do
        grep -q READY "$tmp/watch" && break
        sleep 0.1
    done
    eval "$action"
    wait $wpid
    sed -n 's/^DATA //p' "$tmp/watch"
}

main() {
    have_kvm || return
    if [ ! -f "$COUNTER" ]; then
        tap_fail "kit program $COUNTER is missing (make kit)"
        return
    fi
    # The counter guest itself, judged on QEMU first: three lines, then it
    # powers off; cvirt-vmm must print the same.
    local run=$CVIRT_SRC/tests/guest/kit/run.sh q v
    q=$(CVIRT_KIT_TIMEOUT=20 "$run" qemu "$COUNTER" 1 count=3; echo "status $?")
    check "the counter guest on QEMU prints counter 1..3 and powers off" \
        [ "$(echo "$q" | tr -d '\r')" = "$(printf 'counter %s\n' 1 2 3; echo 'status 0')" ]
    v=$(CVIRT_KIT_TIMEOUT=20 "$run" vmm "$COUNTER" 1 count=3; echo "status $?")
    check "the counter guest on cvirt-vmm prints the same" \
        [ "$(echo "$v" | tr -d '\r')" = "$(echo "$q" | tr -d '\r')" ]

    qemu-img create -q -f qcow2 "$tmp/a.qcow2" 16M
    truncate -s 8M "$tmp/b.raw"

    if start_vmm main --cpus 2 --append "cpus=2" --disk "$tmp/a.qcow2,format=qcow2" \
        --disk "$tmp/b.raw,readonly=on"; then
        tap_ok "cvirt-vmm listens on --control"
    else
        tap_fail "cvirt-vmm listens on --control"
        return
    fi
    local main=$pid
    report "basics" < <(scenario basics "$tmp/main.sock" $main "$tmp/a.qcow2" "$tmp/b.raw")
    report "pause" < <(scenario pause "$tmp/main.sock" "$tmp/main.out")
    report "slow clients" < <(scenario stuck "$tmp/main.sock" "$tmp/main.out")

    # QEMU as the oracle for the protocol: no guest, two QMP sockets.
    qemu-system-x86_64 -machine none -nodefaults -display none -serial none -monitor none \
        -qmp "unix:$tmp/q1.sock,server=on,wait=off" -qmp "unix:$tmp/q2.sock,server=on,wait=off" \
        </dev/null >"$tmp/qemu.out" 2>&1 &
    local qpid=$! i
    for ((i = 0; i < 100; i++)); do
        [ -S "$tmp/q1.sock" ] && [ -S "$tmp/q2.sock" ] && break
        sleep 0.1
    done
    if [ -S "$tmp/q2.sock" ]; then
        report "oracle" < <(scenario oracle "$tmp/main.sock" "$tmp/q1.sock" "$tmp/q2.sock")
    else
        tap_fail "QEMU's QMP sockets for the oracle ($(cat "$tmp/qemu.out"))"
    fi
    kill $qpid 2>/dev/null
    wait $qpid 2>/dev/null

    # A live socket is refused to a second monitor; the first is untouched.
    "$VMM" --kernel "$COUNTER" --memory 64M --console none --control "$tmp/main.sock" \
        </dev/null >/dev/null 2>"$tmp/second.err"
    local rc=$?
    check "a second monitor on a live socket exits 1 (got $rc)" [ $rc = 1 ]
    check "it says the socket is in use" grep -q "another process is listening" "$tmp/second.err"
    report "quit" < <(scenario quit "$tmp/main.sock")
    wait_exit $main; rc=$?
    check "quit: exit status 0 (got $rc)" [ $rc = 0 ]
    check "quit: the socket file is removed" [ ! -e "$tmp/main.sock" ]

    # A stale socket file (its process gone) is replaced.
    python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' \
        "$tmp/stale.sock"
    if start_vmm stale --console none; then
        local data
        data=$(watch_event "$tmp/stale.sock" SHUTDOWN paused "kill -TERM $pid")
        tap_ok "a stale socket file is replaced"
        check "SIGTERM on a paused VM: SHUTDOWN from the host ($data)" \
            [ "$data" = '{"guest": false, "reason": "host-signal"}' ]
        wait_exit $pid; rc=$?
        check "SIGTERM: exit status 0 (got $rc)" [ $rc = 0 ]
    else
        tap_fail "a stale socket file is replaced ($(cat "$tmp/stale.err"))"
    fi

    # The guest powers itself off: SHUTDOWN from the guest.
    if start_vmm off --console none --append "count=20"; then
        local data
        data=$(watch_event "$tmp/off.sock" SHUTDOWN running :)
        check "guest power-off: SHUTDOWN from the guest ($data)" \
            [ "$data" = '{"guest": true, "reason": "guest-shutdown"}' ]
        wait_exit $pid; rc=$?
        check "guest power-off: exit status 0 (got $rc)" [ $rc = 0 ]
    else
        tap_fail "the power-off guest starts"
    fi

    # The guest resets itself: RESET from the guest, and it runs again;
    # under --no-reboot, SHUTDOWN from the guest and status 3.
    if start_vmm reset --append "reset=15"; then
        local data
        data=$(watch_event "$tmp/reset.sock" RESET running :)
        check "guest reset: RESET from the guest ($data)" \
            [ "$data" = '{"guest": true, "reason": "guest-reset"}' ]
        check "guest reset: the guest counts from 1 again" wait_count "$tmp/reset.out" 2
        kill -TERM $pid
        wait_exit $pid
    else
        tap_fail "the resetting guest starts"
    fi
    if start_vmm noreboot --console none --no-reboot --append "reset=15"; then
        local data
        data=$(watch_event "$tmp/noreboot.sock" SHUTDOWN running :)
        check "guest reset under --no-reboot: SHUTDOWN from the guest ($data)" \
            [ "$data" = '{"guest": true, "reason": "guest-reset"}' ]
        wait_exit $pid; rc=$?
        check "guest reset under --no-reboot: exit status 3 (got $rc)" [ $rc = 3 ]
    else
        tap_fail "the --no-reboot guest starts"
    fi
}

main
tap_done
