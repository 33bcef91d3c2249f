#!/bin/bash
# Disk hotplug on the real Linux guest: over QMP the host adds a raw image
# (blockdev-add, device_add virtio-blk-pci), the guest sees /dev/vdb
# appear (ACPI PCI hotplug), reads its first 64 KiB, writes a pattern at
# 1 MiB and reads it back; the host compares both hashes with the file's
# bytes and the pattern it computes itself. Then device_del: the guest
# ejects the slot, DEVICE_DELETED arrives and /dev/vdb vanishes in the
# guest. Refusals along the way: a missing file, an unknown drive, a
# duplicate id, an unknown id, a node in use, a second device_del.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/qmp_lib.sh"

GUEST=$CVIRT_SRC/tests/guest/linux
QMP_PY=$(dirname "$0")/qmp.py
TIMEOUT=${CVIRT_GUEST_TIMEOUT:-300}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT

# Percent-encodes a command for cvirt.run= (see tests/guest/linux/init).
encode() {
    python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe="/;=$|<>&-_.,:()"))' "$1"
}

# The guest's side: wait for vdb, report what it reads and writes, wait
# for it to go. Bounded waits so a broken monitor ends the run.
guest_script() {
    local token=$1
    cat <<EOF
echo WAITING-VDB; i=0; while [ ! -e /sys/block/vdb ] && [ \$i -lt 1500 ]; do sleep 0.2; i=\$((i+1)); done;
[ -e /sys/block/vdb ] || { echo VDB-NEVER-CAME; exit 1; };
while [ ! -b /dev/vdb ]; do sleep 0.1; done;
echo VDB-SERIAL=\$(cat /sys/block/vdb/serial);
echo VDB-SIZE=\$(cat /sys/block/vdb/size);
echo PRE-SHA=\$(dd if=/dev/vdb bs=65536 count=1 2>/dev/null | sha256sum | cut -d' ' -f1);
yes $token | head -c 1048576 >/tmp/pat;
dd if=/tmp/pat of=/dev/vdb bs=65536 seek=16 conv=fsync 2>/dev/null;
echo 3 >/proc/sys/vm/drop_caches;
echo VDB-SHA=\$(dd if=/dev/vdb bs=65536 skip=16 count=16 2>/dev/null | sha256sum | cut -d' ' -f1);
i=0; while [ -e /sys/block/vdb ] && [ \$i -lt 1500 ]; do sleep 0.2; i=\$((i+1)); done;
[ -e /sys/block/vdb ] && echo VDB-STILL-THERE || echo VDB-GONE
EOF
}

# The host's side over QMP; prints PASS/FAIL lines.
drive() {
    python3 - "$QMP_PY" "$tmp/vm.sock" "$tmp/out" "$TIMEOUT" "$tmp/hot.img" "$1" <<'EOF' 2>&1
import hashlib, os, re, sys, time
sys.path.insert(0, os.path.dirname(sys.argv[1]))
import qmp
sock, out, timeout, img, token = sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5], sys.argv[6]
def check(cond, desc):
    print(("PASS " if cond else "FAIL ") + desc, flush=True)
    return cond
def console_value(key):
    """The value of KEY= on the guest console, waiting for it (each wait
    gets the whole timeout: a loaded host slows every step)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(out, errors="replace") as f:
            m = re.search(r"^" + key + r"=?(.*?)\r?$", f.read(), re.M)
        if m:
            return m.group(1)
        time.sleep(0.3)
    return None
def error_of(r):
    e = r.get("error") or {}
    return e.get("class"), e.get("desc", "")
def file_sha(off, n):
    with open(img, "rb") as f:
        f.seek(off)
        return hashlib.sha256(f.read(n)).hexdigest()

c = qmp.Client(sock)
c.negotiate()
missing = img + ".missing"
cls, desc = error_of(c.cmd("blockdev-add", {"driver": "raw", "node-name": "d1",
                     "file": {"driver": "file", "filename": missing}}))
check(cls == "GenericError" and missing in desc,
      "blockdev-add of a missing file: GenericError naming it (%s: %s)" % (cls, desc))
cls, desc = error_of(c.cmd("device_add", {"driver": "virtio-blk-pci", "drive": "nosuch",
                                          "id": "hd1"}))
check(cls == "GenericError" and "nosuch" in desc,
      "device_add with an unknown drive: GenericError (%s)" % desc)
cls, desc = error_of(c.cmd("device_del", {"id": "nosuch"}))
check(cls == "DeviceNotFound", "device_del of an unknown id: DeviceNotFound (%s)" % desc)
cls, desc = error_of(c.cmd("device_add", {"driver": "e1000", "id": "n1"}))
check(cls == "GenericError", "device_add of an unsupported model: GenericError (%s)" % desc)
r = c.cmd("blockdev-add", {"driver": "raw", "node-name": "d1", "file": img})
check(r.get("return") == {}, "blockdev-add with the file name shorthand returns {} (%s)" % r)
cls, desc = error_of(c.cmd("blockdev-add", {"driver": "raw", "node-name": "d1",
                                            "file": {"driver": "file", "filename": img}}))
check(cls == "GenericError", "blockdev-add of a taken node-name: GenericError (%s)" % desc)

pre = file_sha(0, 65536)
head_before = file_sha(0, 1 << 20)
tail_before = file_sha(2 << 20, 2 << 20)
up = console_value("WAITING-VDB") is not None
check(up, "the guest booted and waits for /dev/vdb")
if up:
    r = c.cmd("device_add", {"driver": "virtio-blk-pci", "drive": "d1", "id": "hd1",
                             "serial": "S" + token[8:27]})
    check(r.get("return") == {}, "device_add virtio-blk-pci returns {} (%s)" % r)
    cls, desc = error_of(c.cmd("device_add", {"driver": "virtio-blk-pci", "drive": "d1",
                                              "id": "hd1"}))
    check(cls == "GenericError", "device_add with a duplicate id: GenericError (%s)" % desc)
    cls, desc = error_of(c.cmd("blockdev-del", {"node-name": "d1"}))
    check(cls == "GenericError", "blockdev-del of a node in use: GenericError (%s)" % desc)
    serial = console_value("VDB-SERIAL")
    check(serial == "S" + token[8:27], "/dev/vdb appeared with the serial given (%s)" % serial)
    def hot_functions():
        devs = c.execute("query-pci")[0]["devices"]
        return [(d["slot"], d["id"]["vendor"], d["id"]["device"]) for d in devs
                if d["qdev_id"] == "hd1"]
    hot = hot_functions()
    check(len(hot) == 1 and hot[0][1:] == (0x1af4, 0x1042),
          "query-pci lists hd1 as a virtio-blk function (%s)" % hot)
    size = console_value("VDB-SIZE")
    check(size == str(os.path.getsize(img) // 512),
          "its size in sectors is the file's (%s)" % size)
    g_pre = console_value("PRE-SHA")
    check(g_pre == pre, "the guest read the file's first 64 KiB (sha256 %s)" % g_pre)
    g_sha = console_value("VDB-SHA")
    pattern = ((token + "\n").encode() * (1048576 // (len(token) + 1) + 1))[:1048576]
    want = hashlib.sha256(pattern).hexdigest()
    check(g_sha == want, "the guest read back the pattern it wrote (%s)" % g_sha)
    check(file_sha(1 << 20, 1 << 20) == want, "the file holds the pattern at 1 MiB")
    check(file_sha(0, 1 << 20) == head_before and file_sha(2 << 20, 2 << 20) == tail_before,
          "the rest of the file is unchanged")
    r = c.cmd("device_del", {"id": "hd1"})
    check(r.get("return") == {}, "device_del returns {} (%s)" % r)
    cls, desc = error_of(c.cmd("device_del", {"id": "hd1"}))
    check(cls == "GenericError",
          "a second device_del while the first is pending: GenericError (%s)" % desc)
    try:
        ev = c.wait_event("DEVICE_DELETED", timeout=timeout)
        check(ev.get("data") == {"device": "hd1", "path": "/machine/peripheral/hd1"},
              "DEVICE_DELETED for hd1 (%s)" % ev.get("data"))
    except (TimeoutError, EOFError) as e:
        check(False, "DEVICE_DELETED for hd1 (%s)" % e)
    check(hot_functions() == [] and
          all(d["slot"] != hot[0][0] for d in c.execute("query-pci")[0]["devices"]),
          "query-pci: its slot is empty again")
    gone = console_value("VDB-(?:GONE|STILL-THERE)")
    check(gone == "" and "VDB-GONE" in open(out, errors="replace").read(),
          "/dev/vdb vanished in the guest")
    cls, desc = error_of(c.cmd("device_del", {"id": "hd1"}))
    check(cls == "DeviceNotFound", "hd1 is gone: device_del says DeviceNotFound (%s)" % cls)
    r = c.cmd("blockdev-del", {"node-name": "d1"})
    check(r.get("return") == {}, "blockdev-del of the released node returns {} (%s)" % r)
    cls, desc = error_of(c.cmd("blockdev-del", {"node-name": "d1"}))
    check(cls == "GenericError", "blockdev-del of an unknown node: GenericError (%s)" % desc)
EOF
}

# Resets with a slot event pending: an insertion the guest has not seen
# survives the reset (the next boot finds the disk and reads it, so its
# interrupts were bound again on the new KVM VM); a removal is completed by
# the reset (DEVICE_DELETED, the next boot has no vdb). Then a removal the
# paused guest cannot act on stays pending and quit still ends the VM.
reset_drive() {
    python3 - "$QMP_PY" "$tmp/vm2.sock" "$tmp/out2" "$TIMEOUT" "$tmp/hot.qcow2" \
        "$tmp/hot.img" <<'EOF' 2>&1
import hashlib, os, re, sys, time
sys.path.insert(0, os.path.dirname(sys.argv[1]))
import qmp
sock, out, timeout, qcow, raw = sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5], sys.argv[6]
def check(cond, desc):
    print(("PASS " if cond else "FAIL ") + desc, flush=True)
    return cond
def boots(n):
    """(BOOT-VDB, BOOT-SHA) of the first n boots, waiting for them (the
    whole timeout for each boot)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(out, errors="replace") as f:
            text = f.read().replace("\r", "")
        if text.count("READY") >= n:
            return re.findall(r"^BOOT-VDB=(\S*)\n(?:BOOT-SHA=(\S*)\n)?READY", text, re.M)[:n]
        time.sleep(0.3)
    return None
def event(name, timeout):
    try:
        return c.wait_event(name, timeout=timeout)
    except (TimeoutError, EOFError) as e:
        return {"missing": str(e)}
with open(raw, "rb") as f:
    want = hashlib.sha256(f.read(65536)).hexdigest()
c = qmp.Client(sock)
c.negotiate()
b = boots(1)
if check(b is not None and len(b) == 1 and b[0][0] == "no", "first boot: no vdb (%s)" % b):
    r = c.cmd("blockdev-add", {"driver": "qcow2", "node-name": "q1",
                               "file": {"driver": "file", "filename": qcow}})
    check(r.get("return") == {}, "blockdev-add of a qcow2 image (%s)" % r)
    r1 = c.cmd("device_add", {"driver": "virtio-blk-pci", "drive": "q1", "id": "hd2"})
    r2 = c.cmd("system_reset")
    check(r1.get("return") == {} and r2.get("return") == {},
          "device_add, then system_reset at once (%s, %s)" % (r1, r2))
    ev = event("RESET", 30)
    check("event" in ev, "RESET event (%s)" % ev.get("data", ev))
    b = boots(2)
    check(b is not None and len(b) == 2 and b[1][0] == "yes",
          "the insertion survived the reset: the next boot found vdb (%s)" % b)
    check(b is not None and len(b) == 2 and b[1][1] == want,
          "the guest read the qcow2 disk's first 64 KiB, the raw bytes qemu-img converted")
    r1 = c.cmd("device_del", {"id": "hd2"})
    r2 = c.cmd("system_reset")
    check(r1.get("return") == {} and r2.get("return") == {},
          "device_del, then system_reset at once (%s, %s)" % (r1, r2))
    ev = event("DEVICE_DELETED", timeout)
    check(ev.get("data", {}).get("device") == "hd2",
          "the reset completed the removal: DEVICE_DELETED (%s)" % ev.get("data", ev))
    b = boots(3)
    check(b is not None and len(b) == 3 and b[2][0] == "no",
          "the boot after it has no vdb (%s)" % b)
    check(c.execute("stop") == {}, "stop")
    r1 = c.cmd("device_add", {"driver": "virtio-blk-pci", "drive": "q1", "id": "hd3"})
    r2 = c.cmd("device_del", {"id": "hd3"})
    check(r1.get("return") == {} and r2.get("return") == {},
          "device_add and device_del on the paused guest, the node reused (%s, %s)" % (r1, r2))
    check(c.execute("quit") == {}, "quit with the removal still pending returns {}")
    ev = event("SHUTDOWN", 30)
    check(ev.get("data", {}).get("reason") == "host-qmp-quit",
          "SHUTDOWN (%s)" % ev.get("data", ev))
EOF
}

# Waits up to $TIMEOUT s for cvirt-vmm (pid $1) to end; sets rc to its
# status, or to "hung" after killing it.
wait_exit() {
    local pid=$1 i
    for ((i = 0; i < TIMEOUT * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid"
        wait "$pid"
        rc=hung
    else
        wait "$pid"
        rc=$?
    fi
}

wait_socket() {
    local i
    for ((i = 0; i < 100; i++)); do
        [ -S "$1" ] && return
        sleep 0.1
    done
}

hotplug_run() {
    local token="hotplug-$RANDOM$RANDOM" rc
    # The disk on the command line is vda, so the hot-added one is vdb.
    "$VMM" --kernel "$KERNEL" --initrd "$INITRD" --memory 256M --no-reboot \
        --disk "$tmp/cold.img" --control "$tmp/vm.sock" \
        --append "$(cat "$CMDLINE_FILE") cvirt.run=$(encode "$(guest_script "$token")")" \
        </dev/null >"$tmp/out" 2>"$tmp/err" &
    local pid=$!
    wait_socket "$tmp/vm.sock"
    qmp_report < <(drive "$token")
    wait_exit $pid
    check "the guest powers off after its command, cvirt-vmm exits 0 (got $rc)" [ "$rc" = 0 ]
    check "the guest's command exited 0" grep -q 'CVIRT-RUN-EXIT=0' "$tmp/out"
    check "no device was marked broken" bash -c '! grep -q "needs a reset" "$1"' _ "$tmp/err"
    tr -d '\r' <"$tmp/out" | grep -v 'Command line' | tail -n 12 | sed 's/^/# /'
    sed 's/^/# stderr: /' "$tmp/err"
}

reset_run() {
    local rc
    local script='if [ -e /sys/block/vdb ]; then echo BOOT-VDB=yes; echo BOOT-SHA=$(dd if=/dev/vdb bs=65536 count=1 2>/dev/null | sha256sum | cut -d" " -f1); else echo BOOT-VDB=no; fi; echo READY; sleep 600'
    if ! qemu-img convert -f raw -O qcow2 "$tmp/hot.img" "$tmp/hot.qcow2"; then
        tap_fail "qemu-img convert to qcow2"
        return
    fi
    "$VMM" --kernel "$KERNEL" --initrd "$INITRD" --memory 256M \
        --disk "$tmp/cold.img" --control "$tmp/vm2.sock" \
        --append "$(cat "$CMDLINE_FILE") cvirt.run=$(encode "$script")" \
        </dev/null >"$tmp/out2" 2>"$tmp/err2" &
    local pid=$!
    wait_socket "$tmp/vm2.sock"
    qmp_report < <(reset_drive)
    wait_exit $pid
    check "cvirt-vmm exits with status 0 after quit (got $rc)" [ "$rc" = 0 ]
    check "no device was marked broken" bash -c '! grep -q "needs a reset" "$1"' _ "$tmp/err2"
    tr -d '\r' <"$tmp/out2" | grep -v 'Command line' | tail -n 25 | sed 's/^/# /'
    sed 's/^/# stderr: /' "$tmp/err2"
}

main() {
    have_kvm || return
    local env
    if ! env=$("$GUEST/prepare.sh"); then
        tap_fail "building the guest kernel and initramfs (see stderr)"
        return
    fi
    eval "$env"
    head -c $((4 << 20)) /dev/urandom >"$tmp/hot.img"
    head -c $((1 << 20)) /dev/zero >"$tmp/cold.img"
    hotplug_run
    reset_run
}

main
tap_done
