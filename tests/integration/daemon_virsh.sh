#!/bin/bash
# cvirtd against real libvirt clients: Debian's virsh (read-write and
# read-only sockets) and python3-libvirt, plus hostile raw frames sent from
# python3, after each of which the daemon must still serve virsh.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"

# Debian's interpreter: python3-libvirt is installed for it, not for any
# other python3 first in PATH.
PY=${CVIRT_PYTHON3:-/usr/bin/python3}
daemon_require --no-vmm virsh
if ! command -v virsh >/dev/null || ! "$PY" -c 'import libvirt' 2>/dev/null; then
    tap_fail "virsh and python3-libvirt are required (scripts/deps.sh installs them)"
    tap_done
    exit 1
fi

daemon_root
VIRSH_TIMEOUT=20

start_daemon
check "cvirtd listens on both sockets under --root" test -S "$SOCK" -a -S "$SOCK_RO"
check "socket modes are 0700 (read-write) and 0777 (read-only)" \
    test "$(stat -c %a "$SOCK") $(stat -c %a "$SOCK_RO")" = "700 777"
check "pid file holds the daemon's pid" test "$(cat "$ROOT/run/cvirt/cvirtd.pid")" = "$PID"

out=$(v version 2>&1)
check "virsh version: hypervisor type and version from the daemon" \
    grep -q "Running hypervisor: QEMU 7.2.0" <<<"$out"
out=$(v version --daemon 2>&1)
check "virsh version --daemon: library version 9.0.0" \
    grep -q "Running against daemon: 9.0.0" <<<"$out"
out=$(v hostname 2>&1)
check "virsh hostname matches the host's" test "$out" = "$(hostname)"
out=$(v nodeinfo 2>&1)
cpus=$(nproc)
check "virsh nodeinfo: $cpus CPUs and the host's memory" \
    bash -c "grep -qE '^CPU\(s\): +$cpus\$' <<<'$out' &&
             grep -q \"Memory size: *$(awk '/MemTotal/ {print $2}' /proc/meminfo) KiB\" <<<'$out'"
out=$(v capabilities 2>&1)
check "virsh capabilities: x86_64 hvm guests, kvm domain type, cvirt-vmm emulator" \
    bash -c "grep -q '<os_type>hvm</os_type>' <<<\"\$0\" && grep -q \"<domain type='kvm'/>\" <<<\"\$0\" &&
             grep -q '<emulator>.*cvirt-vmm</emulator>' <<<\"\$0\"" "$out"
if [ -r /etc/machine-id ]; then
    mid=$(sed -E 's/^(.{8})(.{4})(.{4})(.{4})(.{12})$/\1-\2-\3-\4-\5/' /etc/machine-id)
    check "virsh capabilities: host uuid from /etc/machine-id" \
        grep -q "<uuid>$mid</uuid>" <<<"$out"
fi
out=$(v list --all 2>&1); rc=$?
check "virsh list --all: the empty table, exit 0" \
    bash -c "[ $rc = 0 ] && grep -q 'Id   Name   State' <<<\"\$0\"" "$out"
out=$(v uri 2>&1)
check "virsh uri" test "$out" = "$URI"

out=$(timeout 20 virsh -r -c "$URI_RO" list --all 2>&1); rc=$?
check "virsh -r on the read-only socket lists domains" test "$rc" = 0
# A mutating call on the read-only socket, made directly from python.
out=$(timeout 20 "$PY" - "$URI_RO" <<'EOF' 2>&1
import sys, libvirt
c = libvirt.open(sys.argv[1])
try:
    c.defineXML("<domain type='kvm'><name>x</name></domain>")
    print("no error")
except libvirt.libvirtError as e:
    print(e.get_error_code(), e.get_error_message())
print("alive", c.getHostname() != "")
EOF
)
check "a mutating call on the read-only socket: operation forbidden (29), connection kept" \
    bash -c "grep -q '^29 operation forbidden: read only access prevents virDomainDefineXML' <<<\"\$0\" &&
             grep -q 'alive True' <<<\"\$0\"" "$out"

# python3-libvirt as a second real client.
out=$(timeout 20 "$PY" - "$URI" <<'EOF' 2>&1
import sys, libvirt
c = libvirt.open(sys.argv[1])
print("type", c.getType())
print("lib", c.getLibVersion())
print("uri", c.getURI())
print("domains", len(c.listAllDomains(0)))
print("alive", c.isAlive())
try:
    c.lookupByName("nope")
except libvirt.libvirtError as e:
    print("lookup error", e.get_error_code())
c.close()
EOF
)
check "python3-libvirt: type, library version, URI, domain list" \
    bash -c "grep -q '^type QEMU' <<<\"\$0\" && grep -q '^lib 9000000' <<<\"\$0\" &&
             grep -q '^uri qemu+unix:///system' <<<\"\$0\" && grep -q '^domains 0' <<<\"\$0\" &&
             grep -q '^alive 1' <<<\"\$0\"" "$out"

# Raw frames. Each case prints one line describing what came back.
raw() {
    timeout 20 "$PY" - "$SOCK" "$1" <<'EOF'
import socket, struct, sys
path, case = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
s.settimeout(10)
def hdr(length, prog, vers, proc, typ=0, serial=0, status=0):
    return struct.pack(">7I", length, prog, vers, proc & 0xffffffff, typ, serial, status)
def recv_msg():
    try:
        return recv_msg1()
    except ConnectionResetError:
        return None
def recv_msg1():
    head = b""
    while len(head) < 4:
        b = s.recv(4 - len(head))
        if not b:
            return None
        head += b
    n = struct.unpack(">I", head)[0]
    body = b""
    while len(body) < n - 4:
        b = s.recv(n - 4 - len(body))
        if not b:
            return None
        body += b
    return head + body
def xstr(b, off):
    n = struct.unpack(">I", b[off:off + 4])[0]
    return b[off + 4:off + 4 + n].decode(), off + 4 + ((n + 3) & ~3)
def error(m):
    code, dom, flag = struct.unpack(">3i", m[28:40])
    msg, _ = xstr(m, 40) if flag else ("", 0)
    return "error %d %d %s" % (code, dom, msg)
if case == "unknown-proc":
    s.sendall(hdr(28, 0x20008086, 1, 9999, serial=4))
    print(error(recv_msg()))
elif case == "unknown-prog":
    s.sendall(hdr(28, 0x12345678, 1, 1))
    print(error(recv_msg()))
elif case == "not-open":
    s.sendall(hdr(28, 0x20008086, 1, 3))
    print(error(recv_msg()))
elif case == "truncated":
    s.sendall(hdr(40, 0x20008086, 1, 3)[:20])
    s.shutdown(socket.SHUT_WR)
    print("closed" if recv_msg() is None else "answered")
elif case == "oversized":
    s.sendall(struct.pack(">I", 0x7fffffff) + b"\0" * 24)
    print("closed" if recv_msg() is None else "answered")
elif case == "bad-payload":
    s.sendall(hdr(32, 0x20008086, 1, 1) + struct.pack(">I", 7))
    print(error(recv_msg()))
EOF
}
alive() { v hostname >/dev/null 2>&1; }

out=$(raw unknown-proc)
check "raw unknown procedure 9999: code 39 domain 7 'unknown procedure: 9999'" \
    test "$out" = "error 39 7 unknown procedure: 9999"
check "daemon still serves virsh after the unknown procedure" alive
out=$(raw unknown-prog)
check "raw unknown program: 'Cannot find program 305419896 version 1'" \
    test "$out" = "error 39 7 Cannot find program 305419896 version 1"
check "daemon still serves virsh after the unknown program" alive
out=$(raw not-open)
check "raw call before CONNECT_OPEN: code 1 'hypervisor connection not open'" \
    test "$out" = "error 1 7 internal error: hypervisor connection not open"
out=$(raw truncated)
check "raw truncated frame: connection closed without a reply" test "$out" = "closed"
check "daemon still serves virsh after the truncated frame" alive
out=$(raw oversized)
check "raw oversized length: connection closed without a reply" test "$out" = "closed"
check "daemon still serves virsh after the oversized length" alive
out=$(raw bad-payload)
check "raw undecodable CONNECT_OPEN arguments: code 39 'Unable to decode message payload'" \
    test "$out" = "error 39 7 Unable to decode message payload"
check "daemon still serves virsh after the bad payload" alive

# Keepalive, on a second daemon that pings after 1 s of silence: a raw
# client that asked for it and never answers is pinged 6 times, then
# dropped; virsh, which answers, stays connected through the same silence.
ROOT2=$ROOT/ka
"$CVIRTD" --root "$ROOT2" --keepalive 1 2>"$ROOT/ka.log" &
PID2=$!
for _ in $(seq 50); do [ -S "$ROOT2/run/cvirt/cvirt-sock" ] && break; sleep 0.1; done
timeout 30 "$PY" - "$ROOT2/run/cvirt/cvirt-sock" >"$ROOT/ka.out" <<'EOF' &
import socket, struct, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(struct.pack(">8I", 32, 0x20008086, 1, 60, 0, 0, 0, 10))
start = time.time()
pings = 0
buf = b""
while True:
    try:
        b = s.recv(4096)
    except ConnectionResetError:
        b = b""
    if not b:
        break
    buf += b
    while len(buf) >= 4 and len(buf) >= struct.unpack(">I", buf[:4])[0]:
        n = struct.unpack(">I", buf[:4])[0]
        prog, vers, proc, typ = struct.unpack(">4I", buf[4:20])
        if prog == 0x6b656570 and proc == 1 and typ == 2:
            pings += 1
        buf = buf[n:]
print("pings %d dropped after %d s" % (pings, round(time.time() - start)))
EOF
RAWKA=$!
out=$(timeout 30 virsh -c "qemu+unix:///system?socket=$ROOT2/run/cvirt/cvirt-sock" \
      event --all --timeout 9 2>&1)
check "virsh answers the daemon's pings and stays connected for 9 s of silence" \
    bash -c "grep -q 'event loop timed out' <<<\"\$0\" && ! grep -qi 'error' <<<\"\$0\"" "$out"
wait "$RAWKA"
out=$(cat "$ROOT/ka.out")
check "a client that never answers is pinged 6 times and dropped ($out)" \
    bash -c "grep -qE '^pings 6 dropped after ([6-9]|10) s' <<<\"\$0\"" "$out"
kill "$PID2"; wait "$PID2"

# Session mode: an unprivileged user's daemon under its XDG folders.
if id nobody >/dev/null 2>&1; then
    S=$ROOT/session
    mkdir -p "$S/home" "$S/rt"
    chmod 755 "$ROOT" "$S"
    chown nobody "$S/home" "$S/rt"
    chmod 700 "$S/rt"
    setpriv --reuid=nobody --regid=nogroup --clear-groups \
        env HOME="$S/home" XDG_RUNTIME_DIR="$S/rt" XDG_CONFIG_HOME= XDG_DATA_HOME= \
        "$CVIRTD" 2>"$ROOT/session.log" &
    PID3=$!
    for _ in $(seq 50); do [ -S "$S/rt/cvirt/cvirt-sock-ro" ] && break; sleep 0.1; done
    check "session mode: sockets in \$XDG_RUNTIME_DIR/cvirt, owned by the user" \
        test "$(stat -c '%U %a' "$S/rt/cvirt/cvirt-sock")" = "nobody 700"
    check "session mode: state in ~/.local/share/cvirt, config in ~/.config/cvirt" \
        test -d "$S/home/.local/share/cvirt" -a -d "$S/home/.config/cvirt"
    out=$(timeout 20 virsh -c "qemu+unix:///session?socket=$S/rt/cvirt/cvirt-sock" hostname 2>&1)
    check "session mode: virsh connects with qemu:///session" test "$out" = "$(hostname)"
    out=$(timeout 20 virsh -c "qemu+unix:///system?socket=$S/rt/cvirt/cvirt-sock" hostname 2>&1)
    check "session mode: qemu:///system is refused with libvirt's message" \
        grep -q "unexpected QEMU URI path '/system', try qemu:///session" <<<"$out"
    kill "$PID3"; wait "$PID3"
else
    tap_fail "no user 'nobody' to run a session daemon as"
fi

mkdir -p "$ROOT/bad/run/cvirt"
touch "$ROOT/bad/run/cvirt/cvirt-sock"
"$CVIRTD" --root "$ROOT/bad" 2>"$ROOT/bad.log"; rc=$?
check "a file that is not a socket at the socket path is refused, not replaced" \
    bash -c "[ $rc != 0 ] && grep -q 'exists and is not a socket' '$ROOT/bad.log' &&
             test -f '$ROOT/bad/run/cvirt/cvirt-sock'"

"$CVIRTD" --root "$ROOT" 2>"$ROOT/second.log"; rc=$?
check "a second cvirtd on the same root is refused" \
    bash -c "[ $rc != 0 ] && grep -q 'another cvirtd (pid $PID)' '$ROOT/second.log'"
check "the first daemon keeps serving after the refused second one" alive

kill -TERM "$PID"
wait "$PID"; rc=$?
PID=
check "SIGTERM: clean exit" test "$rc" = 0
check "SIGTERM: sockets and pid file removed" \
    test ! -e "$SOCK" -a ! -e "$SOCK_RO" -a ! -e "$ROOT/run/cvirt/cvirtd.pid"

tap_done
