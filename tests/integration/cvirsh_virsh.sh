#!/bin/bash
# cvirsh against Debian's real virsh as the oracle, both talking to the
# same cvirtd --root: for each command, stdout, stderr and the exit code
# must be the same byte for byte (version's client-library lines aside).
# Read-only commands, the error cases (unknown command, missing argument,
# bad option, unknown domain), the shell on piped input and command
# strings; then, with /dev/kvm, a kit guest (the counter program) through
# define, start, list, dominfo, suspend, resume, setmem, attach/detach-disk,
# autostart, console, destroy and undefine, where each changing command is
# run by virsh on one domain and by cvirsh on its twin.
source "$(dirname "$0")/lib.sh"
source "$CVIRT_SRC/tests/guest/kit/cases.sh"
source "$(dirname "$0")/daemon_lib.sh"

CVIRSH=$CVIRT_BUILD/src/client/cvirsh
for bin in "$CVIRTD" "$CVIRSH" "$VMM"; do
    if [ ! -x "$bin" ]; then
        tap_fail "$bin is not built"
        tap_done
        exit 1
    fi
done
if ! command -v virsh >/dev/null || ! command -v script >/dev/null; then
    tap_fail "virsh and script are required (libvirt-clients, bsdutils)"
    tap_done
    exit 1
fi

daemon_root
FPID= KPID= HPID=
daemon_test_cleanup() {
    [ -n "$FPID" ] && kill "$FPID" 2>/dev/null
    [ -n "$KPID" ] && kill "$KPID" 2>/dev/null
    [ -n "$HPID" ] && kill "$HPID" 2>/dev/null
}
OUT=$ROOT/out
mkdir -p "$OUT"

start_daemon
check "cvirtd serves under --root" test -S "$SOCK"

# run_both NAME [FILTER] -- ARGS...: runs virsh and cvirsh with ARGS; the
# outputs land in $OUT/NAME.{virsh,cvirsh}.{out,err,rc}. FILTER (a sed
# script) is applied to both outputs before they are compared.
run_both() {
    local name=$1; shift
    local filter=""
    if [ "$1" != -- ]; then filter=$1; shift; fi
    shift
    timeout 30 virsh "$@" >"$OUT/$name.virsh.out" 2>"$OUT/$name.virsh.err" </dev/null
    echo $? >"$OUT/$name.virsh.rc"
    timeout 30 "$CVIRSH" "$@" >"$OUT/$name.cvirsh.out" 2>"$OUT/$name.cvirsh.err" </dev/null
    echo $? >"$OUT/$name.cvirsh.rc"
    if [ -n "$filter" ]; then
        local f
        for f in "$OUT/$name".*.out "$OUT/$name".*.err; do sed -i -e "$filter" "$f"; done
    fi
}

# same NAME DESC: the two runs agree on stdout, stderr and exit code.
same() {
    local name=$1 desc=$2 k bad=""
    for k in out err rc; do
        if ! cmp -s "$OUT/$name.virsh.$k" "$OUT/$name.cvirsh.$k"; then
            bad="$bad $k"
            diff -u "$OUT/$name.virsh.$k" "$OUT/$name.cvirsh.$k" | sed 's/^/# /' >&2
        fi
    done
    if [ -z "$bad" ]; then
        tap_ok "$desc (exit $(cat "$OUT/$name.virsh.rc"))"
    else
        tap_fail "$desc: cvirsh differs from virsh in$bad"
    fi
}

# compare DESC ARGS...: run_both + same with a name made from the args.
n=0
compare() {
    local desc=$1; shift
    n=$((n + 1))
    run_both "c$n" -- -c "$URI" "$@"
    same "c$n" "$desc"
}

# ---- read-only commands ----
compare "list --all on an empty daemon" list --all
compare "list" list
compare "list --inactive --name" list --inactive --name
compare "nodeinfo" nodeinfo
compare "hostname" hostname
compare "uri" uri
compare "capabilities" capabilities
compare "-q list --all" -q list --all
compare "-r list --all (read-only connection)" -r list --all
# The client library's own version lines legitimately differ.
run_both version '/^Compiled against library\|^Using library\|^Using API/d' -- -c "$URI" version
same version "version (daemon's lines)"
check "version's client lines name cvirt" grep -q '^Using library: cvirt ' <(timeout 30 "$CVIRSH" -c "$URI" version)

# ---- errors ----
compare "unknown command" nosuchcommand
compare "missing <domain>" dominfo
compare "missing --size" setmem vm
compare "unsupported option" list --bogus
compare "option given twice" list --all --all
compare "'=' after a bool option" domstate vm --reason=1
compare "unexpected data" domstate vm extra
compare "option without its value" dominfo --domain
compare "unknown domain: dominfo" dominfo nosuch
compare "unknown domain: domstate" domstate nosuch
compare "unknown domain: start" start nosuch
compare "unknown domain: destroy" destroy nosuch
compare "unknown domain by id" domname 42
compare "unknown domain by uuid" dominfo 00000000-0000-0000-0000-00000000abcd
compare "malformed size" setmem nosuch abc
compare "--current with --live" setmaxmem nosuch 1G --current --live
compare "define of a missing file" define "$ROOT/missing.xml"
# Global options (before the command).
run_both g1 -- -e abc -c "$URI" hostname; same g1 "-e with a bad escape"
run_both g2 -- -k x -c "$URI" hostname; same g2 "-k with a bad value"
run_both g3 -- -d 9 -k 0 -K 3 -l /dev/null -c "$URI" hostname; same g3 "-d out of range, -k 0, -K, -l"
run_both g4 -- -z -c "$URI" hostname; same g4 "an unknown global option"
run_both g5 's/^(Time: [0-9.]* ms)$/(Time: N ms)/' -- -t -c "$URI" hostname; same g5 "-t: the time after each command"
run_both g6 -- -q -c "$URI" dominfo nosuch; same g6 "-q with an error"
run_both g7 -- -c; same g7 "-c without its URI"
run_both g8 -- --connect; same g8 "--connect without its URI"
out=$(timeout 30 "$CVIRSH" -c "$URI" migrate nosuch qemu+ssh://elsewhere/system 2>&1); rc=$?
check "migrate of an unknown domain: virsh's lookup error, exit 1" \
    test "$rc:$out" = "1:error: failed to get domain 'nosuch'"
run_both noconn -- -c "qemu+unix:///system?socket=$ROOT/nothing-here" list
same noconn "connection refused: failed to connect to the hypervisor"

# help needs no daemon: compare with the test driver's virsh.
for c in dominfo domstate setmem hostname event events nosuch; do
    run_both "help-$c" -- -c test:///default help "$c"
    same "help-$c" "help $c"
done

# ---- command strings and the shell on piped input ----
compare "a command string with ';'" "list --all; nodeinfo; dominfo nosuch"
compare "a command string with an open double quote" 'dominfo "nosuch'
compare "a command string with an open single quote" "hostname; dominfo 'no such"
compare "an empty command string" ""
compare "a comment after a command" "hostname # and nothing else"
printf 'list --all\nhostname\nnosuch\ndominfo "nosuch"\nquit\n' >"$ROOT/shell.in"
timeout 30 virsh -c "$URI" <"$ROOT/shell.in" >"$OUT/shell.virsh.out" 2>"$OUT/shell.virsh.err"
echo $? >"$OUT/shell.virsh.rc"
timeout 30 "$CVIRSH" -c "$URI" <"$ROOT/shell.in" >"$OUT/shell.cvirsh.out" 2>"$OUT/shell.cvirsh.err"
echo $? >"$OUT/shell.cvirsh.rc"
sed -i 's/^virsh # /cvirsh # /; s/Welcome to virsh,/Welcome to cvirsh,/' "$OUT"/shell.virsh.out
same shell "interactive shell on piped input (prompt and banner named cvirsh)"

# An idle shell on a daemon that pings every second and drops a client
# after 6 unanswered pings: cvirsh must answer them as virsh does.
KROOT=$ROOT/ka
mkdir -p "$KROOT"
"$CVIRTD" --root "$KROOT" --keepalive 1 2>"$KROOT/cvirtd.log" &
KPID=$!
for _ in $(seq 50); do [ -S "$KROOT/run/cvirt/cvirt-sock" ] && break; sleep 0.1; done
KURI="qemu+unix:///system?socket=$KROOT/run/cvirt/cvirt-sock"
for who in virsh cvirsh; do
    bin=virsh; [ $who = cvirsh ] && bin=$CVIRSH
    (echo hostname; sleep 9; echo hostname) | timeout 30 "$bin" -c "$KURI" \
        >"$OUT/ka.$who.out" 2>"$OUT/ka.$who.err"
    echo $? >"$OUT/ka.$who.rc"
done
sed -i 's/^virsh # /cvirsh # /; s/Welcome to virsh,/Welcome to cvirsh,/' "$OUT"/ka.virsh.out
same ka "a shell idle for 9 s under 1 s keepalive stays connected"
# The same daemon goes away under two idle shells: both notice, and each
# later command fails to reconnect.
gone_pids=()
for who in virsh cvirsh; do
    bin=virsh; [ $who = cvirsh ] && bin=$CVIRSH
    (echo hostname; sleep 3; echo hostname; echo list) | timeout 30 "$bin" -c "$KURI" \
        >"$OUT/gone.$who.out" 2>&1 &
    gone_pids+=($!)
done
sleep 1
kill "$KPID"; wait "$KPID" 2>/dev/null
wait "${gone_pids[@]}"
for who in virsh cvirsh; do : >"$OUT/gone.$who.err"; echo 0 >"$OUT/gone.$who.rc"; done
sed -i 's/^virsh # /cvirsh # /; s/Welcome to virsh,/Welcome to cvirsh,/' "$OUT"/gone.virsh.out
same gone "the daemon stops under an idle shell: disconnected, then failed reconnects"
printf 'hostname\nlist\n' >"$ROOT/two.in"
timeout 30 virsh -c "$KURI" <"$ROOT/two.in" >"$OUT/noshell.virsh.out" 2>"$OUT/noshell.virsh.err"
echo $? >"$OUT/noshell.virsh.rc"
timeout 30 "$CVIRSH" -c "$KURI" <"$ROOT/two.in" >"$OUT/noshell.cvirsh.out" 2>"$OUT/noshell.cvirsh.err"
echo $? >"$OUT/noshell.cvirsh.rc"
same noshell "a shell without a daemon quits at once"
check "... and answered hostname both times" test "$(grep -c "^$(hostname)\$" "$OUT/ka.cvirsh.out")" = 2

# ---- the console stream, on a scripted daemon ----
# cvirtd may not offer consoles yet; a small python daemon does: it answers
# the handshake, the lookup and the state, opens the stream with a line of
# "guest" output after a keepalive PING, echoes typed bytes in brackets,
# and confirms the client's end of stream. Both clients run on a pty.
PY=${CVIRT_PYTHON3:-/usr/bin/python3}
cat >"$ROOT/fake.py" <<'PYEOF'
import os, socket, struct, sys, time

PROG, KEEP = 0x20008086, 0x6b656570
path, log = sys.argv[1], open(sys.argv[2], "a")
UUID = bytes(range(16))

def s_str(s):
    b = s.encode()
    return struct.pack(">I", len(b)) + b + b"\0" * ((4 - len(b) % 4) % 4)

DOM = s_str("g") + UUID + struct.pack(">i", 7)

def chars(b):       # rpcgen's char x<>: one XDR word per character
    return struct.pack(">I", len(b)) + b"".join(struct.pack(">i", c) for c in b)

def i32(*v):
    return b"".join(struct.pack(">i", x) for x in v)

def snap(name):
    return s_str(name) + DOM

SNAPXML = ("<domainsnapshot>\n  <name>%s</name>\n  <state>%s</state>\n"
           "  <creationTime>%d</creationTime>\n</domainsnapshot>\n")
# Canned answers for the success paths, so both clients print them.
CANNED = {
    3: s_str("QEMU"),
    4: struct.pack(">Q", 7002000),
    6: b"".join(struct.pack(">i", c) for c in b"x86_64".ljust(32, b"\0"))
       + struct.pack(">Q", 16314252) + i32(8, 2400, 1, 1, 4, 2),
    7: s_str("<capabilities>\n  <host/>\n</capabilities>\n"),
    11: DOM,
    15: i32(1),
    16: i32(3) + struct.pack(">QQ", 1048576, 524288) + i32(2) + struct.pack(">Q", 123456789012),
    19: s_str("hvm"),
    59: s_str("fakehost"),
    121: chars(b"system_u:system_r:svirt_t:s0:c1,c2\0") + i32(1),
    122: chars(b"selinux\0") + chars(b"0\0"),
    151: i32(1),
    157: struct.pack(">Q", 9000000),
    183: i32(0),
    187: i32(2),
    189: snap("s1"),
    190: i32(1),
    191: snap("s2"),
    212: i32(3, 1),
    274: struct.pack(">I", 2) + snap("s2") + snap("s1") + i32(2),
    426: struct.pack(">I", 2) + s_str("tainted: custom-argv") + s_str("tainted: host-cpu"),
}

def send(c, prog, proc, typ, serial, status, payload=b""):
    c.sendall(struct.pack(">IIIiIII", 28 + len(payload), prog, 1, proc, typ, serial, status) + payload)

def recv(c):
    hdr = b""
    while len(hdr) < 4:
        d = c.recv(4 - len(hdr))
        if not d:
            return None
        hdr += d
    n = struct.unpack(">I", hdr)[0]
    body = b""
    while len(body) < n - 4:
        d = c.recv(n - 4 - len(body))
        if not d:
            return None
        body += d
    prog, vers, proc, typ, serial, status = struct.unpack(">IIiIII", body[:24])
    return prog, proc, typ, serial, status, body[24:]

def serve(c):
    stream = None
    while True:
        m = recv(c)
        if m is None:
            return
        prog, proc, typ, serial, status, pl = m
        if prog == KEEP:
            log.write("pong\n" if proc == 2 else "ping from client\n")
            log.flush()
            continue
        if typ == 3:        # stream message from the client
            if status == 2 and pl:
                send(c, PROG, proc, 3, serial, 2, b"[" + pl + b"]")
            elif status == 0:
                log.write("stream finished\n")
                send(c, PROG, proc, 3, serial, 0)
            else:
                log.write("stream aborted\n")
            log.flush()
            continue
        ret = b""
        if proc in (273, 204, 160, 161, 8, 13, 185, 316, 14, 231, 27):
            # Record the arguments so both clients' can be compared.
            log.write("%d %s\n" % (proc, pl.hex()))
            log.flush()
        if proc == 273:
            ret = struct.pack(">II", 0, 0)
        elif proc == 185:
            ret = s_str("s1") + DOM
        elif proc == 316:
            ret = struct.pack(">i", 1)
        elif proc == 150:
            ret = struct.pack(">i", 1)
        elif proc == 14:
            ret = s_str("<domain type='kvm'>\n  <name>g</name>\n  <devices>\n"
                        "    <disk type='file' device='disk'>\n"
                        "      <driver name='qemu' type='qcow2'/>\n"
                        "      <source file='/img/g &amp; h.qcow2'/>\n"
                        "      <target dev='vda' bus='virtio'/>\n    </disk>\n"
                        "  </devices>\n</domain>\n")
        if proc == 66:
            ret = struct.pack(">II", 1, 0)
        elif proc == 60:
            ret = struct.pack(">i", 1)
        elif proc in (23, 22, 24):
            ret = DOM
        elif proc == 186:
            # the snapshot's name is the first string after the header
            n = struct.unpack(">I", pl[:4])[0]
            name = pl[4:4 + n].decode()
            ret = s_str(SNAPXML % (name, "running" if name == "s1" else "shutoff",
                                   1700000000 if name == "s1" else 1700003600))
        elif proc in CANNED:
            ret = CANNED[proc]
        send(c, PROG, proc, 1, serial, 0, ret)
        if proc == 201:
            # A ping first: the client must answer it while it streams.
            send(c, KEEP, 1, 2, 0, 0)
            send(c, PROG, 201, 3, serial, 2, b"guest says hello\r\n")

srv = socket.socket(socket.AF_UNIX)
srv.bind(path)
srv.listen(4)
open(path + ".ready", "w").close()
while True:
    c, _ = srv.accept()
    serve(c)
    c.close()
PYEOF
"$PY" "$ROOT/fake.py" "$ROOT/fake-sock" "$ROOT/fake.log" &
FPID=$!
for _ in $(seq 50); do [ -e "$ROOT/fake-sock.ready" ] && break; sleep 0.1; done
FURI="qemu+unix:///system?socket=$ROOT/fake-sock"
# console_both NAME ESC_OPTION ESC_BYTE: types "abc", then the escape.
console_both() {
    local name=$1 opt=$2 esc=$3 who bin
    for who in virsh cvirsh; do
        bin=virsh; [ $who = cvirsh ] && bin=$CVIRSH
        : >"$ROOT/fake.log"
        (sleep 1; printf 'abc'; sleep 1; printf "$esc") |
            timeout 30 script -qfec "$bin $opt -c '$FURI' console g" /dev/null |
            tr -d '\r' | grep -v '^Authorization not available' >"$OUT/$name.$who.out"
        echo "${PIPESTATUS[1]}" >"$OUT/$name.$who.rc"
        : >"$OUT/$name.$who.err"
        cp "$ROOT/fake.log" "$OUT/$name.$who.log"
    done
}
console_both fcons "" '\035'
console_both fcons_e "-e ^a" '\001'
same fcons_e "console -e ^a: its banner, and ^A leaves"
# The arguments on the wire, byte for byte, for calls whose flags cvirsh
# works out from the options.
for args in "list" "list --all" "list --inactive" "list --state-shutoff" \
            "list --state-running --state-paused" "list --persistent --autostart" \
            "list --transient --no-autostart --all" "list --with-snapshot --without-managed-save" \
            "setmem g 64M" "setmem g 64M --config" "setmem g 1G --live --config" \
            "setmem g 2048 --current" "setmaxmem g 1G" "setmaxmem g 1G --config" \
            "attach-disk g /img vdb --config" "attach-disk g /img vdb --live --targetbus virtio --mode readonly" \
            "attach-disk g /img vdb --driver qemu --subdriver qcow2 --config --sourcetype file" \
            "snapshot-create-as g s1" "snapshot-create-as g --name s1 --description 'a <b>'" \
            "detach-disk g vda --persistent" "detach-disk g '/img/g & h.qcow2' --live" \
            "dumpxml g --inactive" "undefine g" "reboot g" \
            "event --event lifecycle --timeout 1" "event g --event lifecycle --timeout 1"; do
    for who in virsh cvirsh; do
        bin=virsh; [ $who = cvirsh ] && bin=$CVIRSH
        : >"$ROOT/fake.log"
        eval timeout 30 "$bin" -c "'$FURI'" "$args" >/dev/null 2>&1
        grep -v '^pong$' "$ROOT/fake.log" >"$OUT/fargs.$who"
    done
    if [ -s "$OUT/fargs.virsh" ] && cmp -s "$OUT/fargs.virsh" "$OUT/fargs.cvirsh"; then
        tap_ok "same arguments on the wire as virsh: $args"
    else
        tap_fail "same arguments on the wire as virsh: $args (virsh: $(cat "$OUT/fargs.virsh"); cvirsh: $(cat "$OUT/fargs.cvirsh"))"
    fi
done
# Success paths the daemon may not have yet, on the scripted one.
n=0
for args in "dominfo g" "dominfo 7" "domstate g" "domstate g --reason" "domid g" \
            "domuuid g" "domname 7" "version" "version --daemon" "nodeinfo" "hostname" \
            "capabilities" "snapshot-list g" "snapshot-list g --name" "snapshot-current g" \
            "snapshot-current g --name" "snapshot-revert g s1" "snapshot-delete g s1" \
            "snapshot-create-as g s1" "save g /x" "restore /x" "destroy g" "suspend g" \
            "resume g" "reboot g" "shutdown g" "autostart g" "autostart g --disable" \
            "undefine g" "setmem g 64M" "setmaxmem g 1G --config" "migrate g qemu:///x" \
            "detach-disk g vda --persistent" "attach-disk g /i vdb --config" "start g" \
            "dumpxml g" "define $ROOT/g.xml"; do
    n=$((n + 1))
    echo "<domain type='kvm'><name>g</name></domain>" >"$ROOT/g.xml"
    [ "${args%% *}" = migrate ] && continue     # virsh would dial the destination
    eval run_both "f$n" "'s/^Compiled against.*//; s/^Using .*//'" -- -c "'$FURI'" "$args"
    same "f$n" "on the scripted daemon: $args"
done
kill "$FPID" 2>/dev/null; wait "$FPID" 2>/dev/null
same fcons "console: guest output, typed keys and ^] as virsh shows them"
check "... the guest's line came through the stream" grep -q '^guest says hello$' "$OUT/fcons.cvirsh.out"
check "... cvirsh answered the PING during the stream" grep -q '^pong$' "$OUT/fcons.cvirsh.log"
check "... and ended the stream (status OK) after ^]" grep -q '^stream finished$' "$OUT/fcons.cvirsh.log"

# ---- a hostile daemon: each broken first reply is one clean error ----
cat >"$ROOT/hostile.py" <<'PYEOF'
import socket, struct, sys
path, mode = sys.argv[1], sys.argv[2]
srv = socket.socket(socket.AF_UNIX); srv.bind(path); srv.listen(1)
open(path + ".ready", "w").close()
c, _ = srv.accept()
hdr = c.recv(28)
proc, serial = struct.unpack(">i", hdr[12:16])[0], struct.unpack(">I", hdr[20:24])[0]
def reply(payload, status=0, prog=0x20008086, typ=1, length=None):
    n = 28 + len(payload) if length is None else length
    c.sendall(struct.pack(">IIIiIII", n, prog, 1, proc, typ, serial, status) + payload)
if mode == "close":
    c.close()
    sys.exit(0)
elif mode == "huge":
    reply(b"", length=0xffffffff)
elif mode == "short":
    reply(b"", length=8)
elif mode == "badlist":
    reply(struct.pack(">I", 1000000) + b"\0" * 64)
elif mode == "trailing":
    reply(struct.pack(">II", 1, 0) + b"junk")
elif mode == "badprog":
    reply(struct.pack(">II", 1, 0), prog=0x12345678)
elif mode == "badtype":
    reply(struct.pack(">II", 1, 0), typ=9)
elif mode == "errgarbage":
    reply(b"\xff" * 12, status=1)
try:
    c.recv(100)
except OSError:
    pass
c.close()
PYEOF
for mode in close huge short badlist trailing badprog badtype errgarbage; do
    rm -f "$ROOT/hostile-sock" "$ROOT/hostile-sock.ready"
    "$PY" "$ROOT/hostile.py" "$ROOT/hostile-sock" "$mode" 2>/dev/null &
    HPID=$!
    for _ in $(seq 50); do [ -e "$ROOT/hostile-sock.ready" ] && break; sleep 0.1; done
    out=$(timeout 20 "$CVIRSH" -c "qemu+unix:///system?socket=$ROOT/hostile-sock" list 2>&1); rc=$?
    kill "$HPID" 2>/dev/null; wait "$HPID" 2>/dev/null
    if [ "$rc" = 1 ] && [ "$(head -1 <<<"$out")" = "error: failed to connect to the hypervisor" ] &&
       [ "$(wc -l <<<"$out")" = 2 ]; then
        tap_ok "hostile daemon ($mode): exit 1, two error lines ($(tail -1 <<<"$out"))"
    else
        tap_fail "hostile daemon ($mode): exit $rc, output: $out"
    fi
    if [ "$mode" = close ]; then
        check "... the same words as virsh for a daemon that hangs up" \
            test "$(tail -1 <<<"$out")" = "error: End of file while reading data: Input/output error"
    fi
done

# ---- a kit guest through both clients ----
if ! have_kvm; then tap_done; exit 0; fi
if ! kit_build "$KIT"; then
    tap_fail "the guest kit does not build"
    tap_done
    exit 1
fi

counter_domxml va >"$ROOT/va.xml"
counter_domxml vb >"$ROOT/vb.xml"
truncate -s 16M "$ROOT/disk.img"

# twin DESC ARGS...: virsh runs ARGS on va, cvirsh the same on vb; the
# outputs must agree once va is read as vb.
twin() {
    local desc=$1; shift
    n=$((n + 1))
    local a=() b=() x
    for x in "$@"; do a+=("${x//@/va}"); b+=("${x//@/vb}"); done
    timeout 60 virsh -c "$URI" "${a[@]}" >"$OUT/c$n.virsh.out" 2>"$OUT/c$n.virsh.err" </dev/null
    echo $? >"$OUT/c$n.virsh.rc"
    timeout 60 "$CVIRSH" -c "$URI" "${b[@]}" >"$OUT/c$n.cvirsh.out" 2>"$OUT/c$n.cvirsh.err" </dev/null
    echo $? >"$OUT/c$n.cvirsh.rc"
    sed -i 's/\bva\b/vb/g' "$OUT/c$n.virsh.out" "$OUT/c$n.virsh.err"
    same "c$n" "$desc"
}

twin "define" define "$ROOT/@.xml"
compare "list --all with two defined domains" list --all
compare "list --all --name" list --all --name
compare "list --uuid --all" list --uuid --all
compare "dominfo of a shut-off domain" dominfo va
compare "domstate --reason, shut off" domstate vb --reason
compare "domid of a shut-off domain" domid va
compare "domuuid" domuuid vb
compare "dumpxml" dumpxml va
compare "dumpxml --inactive" dumpxml vb --inactive
compare "suspend of a shut-off domain" suspend va
twin "setmem --config" setmem @ 48M --config
twin "setmaxmem --config" setmaxmem @ 96M --config
compare "dominfo after setmem/setmaxmem" dominfo vb
twin "autostart" autostart @
compare "dominfo with autostart" dominfo va
twin "autostart --disable" autostart --disable @
twin "attach-disk --config" attach-disk @ "$ROOT/disk.img" vdb --config --targetbus virtio --mode readonly
compare "dumpxml --inactive with the attached disk" dumpxml va --inactive
twin "detach-disk --config" detach-disk @ vdb --config
twin "detach-disk of a missing disk, no disk left" detach-disk @ vdz --config
twin "setmem without flags: the running domain only" setmem @ 40M
twin "setmem --current" setmem @ 40M --current
twin "setmaxmem without flags" setmaxmem @ 100M
twin "attach-disk without flags" attach-disk @ "$ROOT/disk.img" vdc
twin "attach-disk --current" attach-disk @ "$ROOT/disk.img" vdc --current
twin "detach-disk of a missing disk" detach-disk @ vdz
twin "detach-disk without flags" detach-disk @ vdc
twin "detach-disk --current" detach-disk @ vdc --current

# Snapshots: whatever the daemon answers, both clients must print it alike.
twin "snapshot-create-as" snapshot-create-as @ s1
twin "snapshot-create-as --name --description" snapshot-create-as @ --name s2 --description "second one"
twin "snapshot-list" snapshot-list @
twin "snapshot-list --name" snapshot-list @ --name
twin "snapshot-current --name" snapshot-current @ --name
twin "snapshot-revert" snapshot-revert @ s1
twin "snapshot-delete" snapshot-delete @ s2
twin "snapshot-delete of a missing snapshot" snapshot-delete @ nosuch
twin "restore of a missing file" restore "$ROOT/@.missing"

# Lifecycle events: both clients listen while the domains change.
# listen NAME ARGS...: starts virsh and cvirsh `event ARGS` in the background.
listen() {
    local name=$1 who bin; shift
    for who in virsh cvirsh; do
        bin=virsh; [ $who = cvirsh ] && bin=$CVIRSH
        timeout 60 "$bin" -c "$URI" event "$@" >"$OUT/$name.$who.out" 2>"$OUT/$name.$who.err" &
        echo $! >"$OUT/$name.$who.pid"
    done
    sleep 1     # registered before anything happens
}
heard() {
    local name=$1 who
    for who in virsh cvirsh; do
        wait "$(cat "$OUT/$name.$who.pid")"
        echo $? >"$OUT/$name.$who.rc"
    done
}
listen ev1 --domain vb --event lifecycle --timeout 30
# The wire: the procedures each command sends, in order, as virsh's own
# debug log and cvirsh's (CVIRT_LOG=debug) show them.
procs_virsh() {
    LIBVIRT_LOG_FILTERS=1:rpc LIBVIRT_LOG_OUTPUTS=1:stderr timeout 30 virsh -c "$URI" "$@" 2>&1 >/dev/null |
        grep RPC_CLIENT_MSG_TX_QUEUE | grep -o 'proc=[0-9]*' | tr '\n' ' '
}
procs_cvirsh() {
    CVIRT_LOG=debug timeout 30 "$CVIRSH" -c "$URI" "$@" 2>&1 >/dev/null |
        grep -o 'call proc=[0-9]*' | sed 's/^call //' | tr '\n' ' '
}
uuid_b=$(timeout 30 "$CVIRSH" -c "$URI" domuuid vb)
for c in "list --all" "list --name" "dominfo va" "dominfo $uuid_b" "domstate vb --reason" \
         "domid va" "domuuid vb" "dumpxml va --inactive" "version --daemon" "nodeinfo" \
         "hostname" "uri" "capabilities" "snapshot-list va" "save nosuch /x" "undefine nosuch" \
         "setmem va 40M --config" "autostart vb --disable"; do
    a=$(procs_virsh $c) b=$(procs_cvirsh $c)
    if [ -n "$a" ] && [ "$a" = "$b" ]; then
        tap_ok "same procedures as virsh: $c"
    else
        tap_fail "same procedures as virsh: $c (virsh: $a; cvirsh: $b)"
    fi
done

twin "start" start @
heard ev1
same ev1 "event (one-shot, one domain): the start"
check "... which is 'Started Booted'" grep -q "^event 'lifecycle' for domain 'vb': Started Booted$" "$OUT/ev1.cvirsh.out"
compare "list with two running domains" list
compare "list --all --name" list --all --name
# CPU time moves between the two runs (and is left out while it is 0).
run_both dominfo_va '/^CPU time:/d' -- -c "$URI" dominfo va
same dominfo_va "dominfo of a running domain (by name), CPU time aside"
# The console of the real daemon through both clients: script(1) gives
# each a terminal, ^] (0x1d) leaves.
for c in virsh "$CVIRSH"; do
    out=$( (sleep 2; printf '\035') | timeout 30 script -qec "$c -c '$URI' console va" /dev/null 2>&1); rc=$?
    check "$(basename "$c") console va shows the guest counting and ^] leaves with exit 0" \
        bash -c '[ "$1" = 0 ] && grep -q "^counter [0-9]" <<<"$(tr -d "\r" <<<"$0")"' "$out" "$rc"
done
id=$(timeout 30 "$CVIRSH" -c "$URI" domid vb)
check "domid of a running domain is a number" test -n "$id" -a "$id" -ge 0
run_both dominfo_id '/^CPU time:/d' -- -c "$URI" dominfo "$id"
same dominfo_id "dominfo by id, CPU time aside"
compare "domname by id" domname "$id"
compare "domid" domid vb
compare "domstate --reason, running" domstate va --reason
compare "start of a running domain" start va
listen ev2 --all --loop --timeout 6
twin "suspend" suspend @
compare "domstate --reason, paused" domstate vb --reason
compare "list --all with paused domains" list --all
twin "resume" resume @
compare "domstate --reason, resumed" domstate va --reason
compare "resume of a running domain" resume vb
heard ev2
same ev2 "event --loop --timeout: suspend and resume of both domains, then the timeout"
check "... four events" grep -q '^events received: 4$' "$OUT/ev2.cvirsh.out"

twin "save" save @ "$ROOT/@.save"
compare "domstate --reason after save" domstate va --reason
twin "restore" restore "$ROOT/@.save"
compare "domstate --reason after restore" domstate vb --reason
twin "-q suspend (no message)" -q suspend @
compare "-q list" -q list --all
twin "-q resume" -q resume @
twin "reboot" reboot @
twin "shutdown" shutdown @

# The console over a pty: both clients print the same until the guest's
# output starts (the daemon decides whether there is a stream at all).
for who in virsh cvirsh; do
    bin=virsh; [ $who = cvirsh ] && bin=$CVIRSH
    (sleep 3; printf '\035') | timeout 30 script -qfec "$bin -c '$URI' console va" /dev/null \
        | tr -d '\r' | grep -v '^Authorization not available' | head -4 >"$OUT/console.$who.out"
    : >"$OUT/console.$who.err"; echo 0 >"$OUT/console.$who.rc"
done
if grep -q '^counter [0-9]' "$OUT/console.cvirsh.out"; then
    check "console shows the guest's counter lines" grep -q "^Connected to domain 'va'" "$OUT/console.cvirsh.out"
else
    same console "console: the same banner and answer as virsh"
fi

twin "destroy" destroy @
twin "destroy of a shut-off domain" destroy @
compare "domstate --reason, destroyed" domstate vb --reason
compare "list --all after destroy" list --all
for o in "--inactive" "--state-shutoff" "--state-running" "--state-shutoff --state-running" \
         "--persistent" "--transient --all" "--autostart --all" "--no-autostart" \
         "--with-snapshot --all" "--managed-save --all" "--id --all" "--id --name --uuid --all" \
         "--uuid --name --inactive" "--name --table"; do
    compare "list $o" list $o
done
twin "undefine" undefine @
compare "list --all after undefine" list --all
compare "dominfo of an undefined domain" dominfo va

# ---- cvirt-install and cvirt-clone, judged by virsh and qemu-img ----
INSTALL=$CVIRT_BUILD/src/client/cvirt-install
CLONE=$CVIRT_BUILD/src/client/cvirt-clone
vq() { timeout 30 virsh -q -c "$URI" "$@"; }
out=$(timeout 60 "$INSTALL" --connect "$URI" --name vi --memory 64 --vcpus 1 \
      --disk "path=$ROOT/vi.qcow2,size=0.25" --boot "kernel=$KIT/counter.elf,kernel_args=cpus=1" \
      --import --noautoconsole --autostart 2>&1); rc=$?
check "cvirt-install defines and starts vi (exit 0)" test "$rc" = 0
check "... virsh sees it running" test "$(vq domstate vi)" = running
check "... autostarted, 64 MiB, 1 vCPU" bash -c "virsh -c '$URI' dominfo vi | grep -q '^Autostart: *enable' &&
    virsh -c '$URI' dominfo vi | grep -q '^Max memory: *65536 KiB' && virsh -c '$URI' dominfo vi | grep -q '^CPU(s): *1$'"
info=$(qemu-img info --output=json "$ROOT/vi.qcow2" 2>&1)
check "... qemu-img: the new disk is qcow2 of 0.25 GiB" \
    bash -c "grep -q '\"format\": \"qcow2\"' <<<'$info' && grep -q '\"virtual-size\": 268435456' <<<'$info'"
check "... qemu-img check finds it clean" qemu-img check -q "$ROOT/vi.qcow2"
check "... the domain's disk is that file, as qcow2" \
    bash -c "virsh -c '$URI' dumpxml vi | grep -q \"<source file='$ROOT/vi.qcow2'/>\" &&
             virsh -c '$URI' dumpxml vi | grep -q \"<driver name='qemu' type='qcow2'/>\""
out=$(timeout 30 "$INSTALL" --name vp --memory 64 --disk "path=$ROOT/vp.qcow2,size=1" \
      --boot "kernel=$KIT/counter.elf" --print-xml 2>&1); rc=$?
check "cvirt-install --print-xml prints a definition and creates nothing" \
    bash -c "[ $rc = 0 ] && grep -q '<name>vp</name>' <<<\"\$0\" && [ ! -e '$ROOT/vp.qcow2' ]" "$out"
out=$(timeout 30 "$INSTALL" --connect "$URI" --name vx --memory 64 --boot "kernel=$KIT/counter.elf" \
      --graphics vnc 2>&1); rc=$?
check "cvirt-install --graphics vnc is refused in one line" \
    test "$rc:$out" = "1:ERROR    --graphics vnc: cvirt has no display, use --graphics none"

out=$(timeout 30 "$CLONE" --connect "$URI" -o vi -n vc 2>&1); rc=$?
check "cvirt-clone refuses a running original" \
    test "$rc:$out" = "1:ERROR    Domain with devices to clone must be paused or shutoff."
vq destroy vi >/dev/null
out=$(timeout 60 "$CLONE" --connect "$URI" -o vi -n vc 2>&1); rc=$?
check "cvirt-clone -o vi -n vc (exit 0)" test "$rc" = 0
check "... a full copy of the disk, byte for byte" cmp "$ROOT/vi.qcow2" "$ROOT/vc.qcow2"
check "... a new UUID" test "$(vq domuuid vc)" != "$(vq domuuid vi)"
check "... using the copy" bash -c "virsh -c '$URI' dumpxml vc | grep -q \"<source file='$ROOT/vc.qcow2'/>\""
out=$(timeout 60 "$CLONE" --connect "$URI" -o vi -n vo --overlay 2>&1); rc=$?
check "cvirt-clone --overlay (exit 0)" test "$rc" = 0
info=$(qemu-img info --output=json "$ROOT/vo.qcow2" 2>&1)
check "... qemu-img: a qcow2 overlay backed by the original" \
    bash -c "grep -q '\"backing-filename\": \"$ROOT/vi.qcow2\"' <<<'$info' &&
             grep -q '\"backing-filename-format\": \"qcow2\"' <<<'$info'"
check "... the clone starts" bash -c "timeout 60 '$CVIRSH' -q -c '$URI' start vo && test \"\$(virsh -c '$URI' domstate vo)\" = running"
out=$(timeout 30 "$CLONE" --connect "$URI" -o vi -n vc 2>&1); rc=$?
check "cvirt-clone onto an existing image is refused, nothing left behind" \
    bash -c "[ $rc = 1 ] && grep -q 'existing storage' <<<'$out' && [ \"\$(virsh -q -c '$URI' list --all --name | grep -c '^vc\$')\" = 1 ]"
tap_done
