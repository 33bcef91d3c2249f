#!/bin/bash
# cvirt-vmm --control fd=N: a listening control socket inherited from the
# parent, as cvirtd hands it over. The parent connects before the VMM runs
# (the backlog holds the connection) and gets the greeting once the VMM is
# ready; SO_PEERCRED of later connections names the VMM; the socket file is
# the parent's and survives the VMM; a VMM that dies before serving resets
# the queued connection at once; a descriptor that is no listening socket
# is refused.
source "$(dirname "$0")/lib.sh"

have_kvm || { tap_done; exit 0; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

python3 - "$VMM" "$KIT/counter.elf" "$tmp" >"$tmp/out" 2>&1 <<'PY'
import json, os, socket, struct, subprocess, sys, time
vmm, kernel, tmp = sys.argv[1:4]

def say(ok, what):
    print(("PASS " if ok else "FAIL ") + what, flush=True)

def listener(name):
    path = os.path.join(tmp, name)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(8)
    return s, path

def read_msg(f):
    while True:
        line = f.readline()
        if not line:
            return None
        m = json.loads(line)
        if "event" not in m:
            return m

def spawn(fdarg, keep, kern=kernel):
    return subprocess.Popen([vmm, "--kernel", kern, "--memory", "64M",
                             "--control", fdarg], pass_fds=(keep,),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)

# A working VMM: connected before it runs.
s, path = listener("a.sock")
early = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
early.connect(path)
p = spawn("%s,fd=%d" % (path, s.fileno()), s.fileno())
s.close()
early.settimeout(20)
f = early.makefile("r")
g = read_msg(f)
say(g is not None and "QMP" in g, "the connection made before the VMM ran gets the greeting")
early.sendall(b'{"execute":"qmp_capabilities"}\n')
say(read_msg(f) == {"return": {}}, "qmp_capabilities on it")
early.sendall(b'{"execute":"query-status"}\n')
r = read_msg(f) or {}
say(r.get("return", {}).get("status") == "running", "query-status: running")
late = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
late.connect(path)
cred = late.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
pid = struct.unpack("3i", cred)[0]
say(pid == p.pid, "SO_PEERCRED of a later connection is the VMM (%d), not the parent" % pid)
late.close()
early.sendall(b'{"execute":"quit"}\n')
try:
    rc = p.wait(timeout=20)
except subprocess.TimeoutExpired:
    p.kill()
    rc = None
say(rc == 0, "quit: the VMM exits with status 0 (got %s)" % rc)
say(os.path.exists(path), "the socket file stays: it belongs to the parent")

# A VMM that fails before serving: the queued connection ends at once.
s, path = listener("b.sock")
early = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
early.connect(path)
p = spawn("fd=%d" % s.fileno(), s.fileno(), kern=os.path.join(tmp, "missing.elf"))
s.close()
early.settimeout(20)
try:
    data = early.recv(4096)
except (ConnectionResetError, socket.timeout) as ex:
    data = ex
rc = p.wait(timeout=20)
say(rc != 0, "a VMM without its kernel fails (status %d)" % rc)
say(data == b"" or isinstance(data, ConnectionResetError),
    "the queued connection is closed, not left waiting (%r)" % (data,))

# A descriptor that is not a listening socket.
fd = os.open(os.path.join(tmp, "plain"), os.O_RDWR | os.O_CREAT, 0o600)
p = spawn("fd=%d" % fd, fd)
err = p.communicate(timeout=20)[1].decode(errors="replace")
say(p.returncode != 0 and "not a listening UNIX stream socket" in err,
    "a plain file as the control socket is refused")
os.close(fd)
p = spawn("fd=junk", 0)
err = p.communicate(timeout=20)[1].decode(errors="replace")
say(p.returncode != 0 and "not a file descriptor number" in err, "fd=junk is refused")
PY
# Every PASS/FAIL line is a case; a scenario that stops early is a failure.
n=0
while IFS= read -r line; do
    case $line in
    PASS\ *) tap_ok "${line#PASS }"; n=$((n + 1)) ;;
    FAIL\ *) tap_fail "${line#FAIL }"; n=$((n + 1)) ;;
    *) echo "# $line" ;;
    esac
done <"$tmp/out"
[ $n -eq 10 ] || tap_fail "the scenario reported $n of its 10 cases"
tap_done
