#!/bin/bash
# A disk hot-added to the real Linux guest survives save/restore and live
# migration. The guest waits for /dev/vdb, writes a pattern at 1 MiB and
# then polls sector 8 of the disk for a marker only the host writes, and
# only once the VM runs in its new process: so the guest's own reads after
# the restore (or migration) prove the disk is there and answers; it then
# reads the pattern back and reports the PCI address of vdb again, and
# waits for the disk to go. The host ejects it with device_del on the new
# process and waits for DEVICE_DELETED.
#
# Save/restore: device_add, migrate file:, --restore (the snapshot's
# machine options carry --disk ...,slot=N,id=hd1). Live migration over tcp
# on localhost: a destination without the disk is refused naming the slot
# and the source runs on; one started with --incoming defer and the
# matching --disk ...,slot=N,id=ID says "inmigrate" until the VM arrives,
# the source "postmigrate" after. Refusals: --disk slot=/id= that are
# invalid or taken (usage errors, status 2, one line), and a snapshot in
# the old shape (the disk in the PCI state, not in the machine options),
# refused naming the slot.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/qmp_lib.sh"
source "$(dirname "$0")/vmm_hotsave_lib.sh"

GUEST=$CVIRT_SRC/tests/guest/linux
QMP_PY=$(dirname "$0")/qmp.py
QMP_MIG=$(dirname "$0")/qmp_migrate.py
TIMEOUT=${CVIRT_GUEST_TIMEOUT:-300}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT

# The QMP steps, one python program: "hotadd" on the first process, "after"
# on the restored or migrated one. PASS/FAIL lines; the slot goes to a file.
drive() {
    python3 - "$QMP_PY" "$TIMEOUT" "$@" <<'EOF' 2>&1
import hashlib, os, re, sys, time
sys.path.insert(0, os.path.dirname(sys.argv[1]))
import qmp
timeout = float(sys.argv[2])
step, sock, out, img, dev, token, slotfile = sys.argv[3:10]
addr = sys.argv[10] if len(sys.argv) > 10 else None
def check(cond, desc):
    print(("PASS " if cond else "FAIL ") + desc, flush=True)
    return cond
def console_value(key):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(out, errors="replace") as f:
            # Whole lines only: the serial port sends a line in pieces.
            m = re.search(r"^" + key + r"=?(.*?)\r?\n", f.read(), re.M)
        if m:
            return m.group(1)
        time.sleep(0.3)
    return None
def slot_of(c, qdev):
    return [d["slot"] for d in c.execute("query-pci")[0]["devices"] if d["qdev_id"] == qdev]
pattern = ((token + "\n").encode() * (1048576 // (len(token) + 1) + 1))[:1048576]
want = hashlib.sha256(pattern).hexdigest()
c = qmp.Client(sock)
c.negotiate()
if step == "hotadd":
    if not check(console_value("WAITING-VDB") is not None, "%s: the guest booted" % dev):
        sys.exit(0)
    node = "n-" + dev
    r1 = c.cmd("blockdev-add", {"driver": "raw", "node-name": node,
                                "file": {"driver": "file", "filename": img}})
    args = {"driver": "virtio-blk-pci", "drive": node, "id": dev}
    if addr:
        for bad, why in (("0x1", "PCI slot 1 is taken by blk"), ("0x20", "doesn't take value")):
            e = c.cmd("device_add", dict(args, addr=bad)).get("error", {})
            check(e.get("class") == "GenericError" and why in e.get("desc", ""),
                  "%s: device_add addr=%s is refused (%s)" % (dev, bad, e.get("desc")))
        args["addr"] = addr
    r2 = c.cmd("device_add", args)
    check(r1.get("return") == {} and r2.get("return") == {},
          "%s: blockdev-add and device_add%s on the running guest (%s, %s)"
          % (dev, " addr=" + addr if addr else "", r1, r2))
    slots = slot_of(c, dev)
    check(len(slots) == 1 and (not addr or slots[0] == int(addr, 16)),
          "%s: query-pci shows it in slot %s" % (dev, slots))
    pci = console_value("VDB-PCI")
    check(slots and pci == "0000:00:%02x.0" % slots[0],
          "%s: the guest found vdb at PCI %s" % (dev, pci))
    check(console_value("WROTE") is not None, "%s: the guest wrote its pattern" % dev)
    with open(img, "rb") as f:
        f.seek(1 << 20)
        check(hashlib.sha256(f.read(1 << 20)).hexdigest() == want,
              "%s: the file holds the guest's pattern at 1 MiB" % dev)
    with open(slotfile, "w") as f:
        f.write("%d\n%s\n" % (slots[0] if slots else 0, pci))
    sys.exit(0)
# "after": the VM runs in its new process.
slot, pci = open(slotfile).read().split()
st = c.execute("query-status")
check(st["status"] == "running" and st["running"],
      "%s: the new process runs the guest (query-status %s)" % (dev, st))
slots = slot_of(c, dev)
check(slots == [int(slot)], "%s: query-pci has it in the same slot %s (%s)" % (dev, slot, slots))
with open(img, "r+b") as f:
    f.seek(4096)
    f.write(("GO-" + token[:9]).encode())
got = console_value("GOT-MARK")
check(got is not None and int(got) < 3000,
      "%s: the guest read the marker the host wrote after the move (%s polls)" % (dev, got))
after = console_value("AFTER-PCI")
check(after == pci, "%s: inside the guest vdb is still PCI %s (%s)" % (dev, pci, after))
sha = console_value("AFTER-SHA")
check(sha == want, "%s: the guest reads back the pattern it wrote before the move" % dev)
r = c.cmd("device_del", {"id": dev})
check(r.get("return") == {}, "%s: device_del on the new process returns {} (%s)" % (dev, r))
try:
    ev = c.wait_event("DEVICE_DELETED", timeout=timeout)
    check(ev.get("data") == {"device": dev, "path": "/machine/peripheral/" + dev},
          "%s: DEVICE_DELETED (%s)" % (dev, ev.get("data")))
except (TimeoutError, EOFError) as e:
    check(False, "%s: DEVICE_DELETED (%s)" % (dev, e))
check(slot_of(c, dev) == [], "%s: query-pci no longer lists it" % dev)
r = c.cmd("blockdev-del", {"node-name": "n-" + dev})
check(r.get("return") == {},
      "%s: its drive kept its node name n-%s across the move: blockdev-del (%s)" % (dev, dev, r))
gone = console_value("VDB-(?:GONE|STILL-THERE)")
check(gone is not None and "VDB-GONE" in open(out, errors="replace").read(),
      "%s: /dev/vdb vanished in the guest" % dev)
EOF
}

# wait_exit PID [SECONDS]: sets rc to its status, or "hung" (killed).
wait_exit() {
    local pid=$1 i
    for ((i = 0; i < ${2:-$TIMEOUT} * 10; i++)); do
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
        [ -S "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

# Machine options of the guest (the hot disk comes later).
machine() {
    MACHINE=(--kernel "$KERNEL" --initrd "$INITRD" --memory 256M --no-reboot
             --disk "$tmp/cold.img"
             --append "$(cat "$CMDLINE_FILE") cvirt.run=$(encode "$(guest_script "$1")")")
}

# usage_error DESC PATTERN ARGS...: cvirt-vmm refuses ARGS before any
# guest runs, status 2, one line matching PATTERN.
usage_error() {
    local desc=$1 pattern=$2 st
    shift 2
    timeout 20 "$VMM" --kernel "$KERNEL" --console none "$@" </dev/null >/dev/null 2>"$tmp/u.err"
    st=$?
    check "$desc: status $st, $(cat "$tmp/u.err")" \
        [ $st = 2 ] && [ "$(wc -l <"$tmp/u.err")" = 1 ] && grep -q -- "$pattern" "$tmp/u.err"
}

usage_errors() {
    usage_error "--disk slot=0 (the host bridge's)" "slot=0: must be a PCI slot number from 1 to 31" \
        --disk "$tmp/cold.img,slot=0"
    usage_error "--disk slot=32" "slot=32: must be" --disk "$tmp/cold.img,slot=32"
    usage_error "--disk slot=abc" "slot=abc: must be" --disk "$tmp/cold.img,slot=abc"
    usage_error "two disks asking for slot 5" "slot=5 is taken by --disk $tmp/cold.img" \
        --disk "$tmp/cold.img,slot=5" --disk "$tmp/hot.img,slot=5"
    usage_error "a disk asking for slot 0x05 after one in slot 5" "slot=5 is taken" \
        --disk "$tmp/cold.img,slot=5" --disk "$tmp/hot.img,slot=0x05"
    usage_error "--disk id= that is not an id" "id=1x: an id is a letter" \
        --disk "$tmp/cold.img,id=1x"
    usage_error "two disks with one id" "id=d0 is taken" \
        --disk "$tmp/cold.img,id=d0" --disk "$tmp/hot.img,id=d0"
    usage_error "--disk slot= given twice" "slot= is given twice" --disk "$tmp/cold.img,slot=4,slot=6"
    usage_error "two disks with one node name" "node dr is taken" \
        --disk "$tmp/cold.img,id=a,node=dr" --disk "$tmp/hot.img,id=dr"
    usage_error "--disk node= without id=" "node= names the drive of a disk with an id=" \
        --disk "$tmp/cold.img,node=dr"
}

# old_style SNAPSHOT OUT ARG: OUT is SNAPSHOT with the machine option ARG
# (and the --disk before it) taken out of its CONF section, checksums
# redone: the shape a save had before hot-added disks were recorded.
old_style() {
    cp --sparse=always "$1" "$2" && python3 - "$2" "$3" <<'EOF'
import struct, sys
path, drop = sys.argv[1], sys.argv[2]
def crc32c(data, crc=0):
    table = crc32c.table
    crc ^= 0xffffffff
    for b in data:
        crc = table[(crc ^ b) & 0xff] ^ (crc >> 8)
    return crc ^ 0xffffffff
crc32c.table = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82f63b78 if c & 1 else c >> 1
    crc32c.table.append(c)
with open(path, "r+b") as f:
    hdr = bytearray(f.read(4096))
    soff, slen = struct.unpack_from("<QQ", hdr, 16)
    f.seek(soff)
    state = f.read(slen)
    tag, inst, blen = struct.unpack_from("<III", state, 0)
    body = state[12:12 + blen]
    n, = struct.unpack_from("<I", body, 0)
    pos, args = 4, []
    for _ in range(n):
        l, = struct.unpack_from("<I", body, pos)
        args.append(body[pos + 4:pos + 4 + l])
        pos += 4 + l
    i = args.index(drop.encode())
    del args[i - 1:i + 1]
    nb = struct.pack("<I", len(args)) + b"".join(struct.pack("<I", len(a)) + a for a in args)
    new = struct.pack("<III", tag, inst, len(nb)) + nb + state[12 + blen:]
    struct.pack_into("<QI", hdr, 24, len(new), crc32c(new))
    struct.pack_into("<I", hdr, 60, crc32c(bytes(hdr[:60])))
    f.seek(0)
    f.write(hdr)
    f.seek(soff)
    f.write(new + bytes(slen - len(new)))
EOF
}

save_restore() {
    local token="hotsave-$RANDOM$RANDOM" rc out
    machine "$token"
    "$VMM" "${MACHINE[@]}" --control "$tmp/a.sock" </dev/null >"$tmp/a.out" 2>"$tmp/a.err" &
    local pid=$!
    wait_socket "$tmp/a.sock"
    # Slot 9, not the first free one (2): the restore must place it there.
    qmp_report "save" < <(drive hotadd "$tmp/a.sock" "$tmp/a.out" "$tmp/hot.img" hd1 "$token" \
        "$tmp/slot1" 0x9)
    local slot
    slot=$(head -1 "$tmp/slot1" 2>/dev/null)
    out=$(python3 "$QMP_MIG" migrate "$tmp/a.sock" "file:$tmp/s1" 2>&1)
    check "save: migrate file: completes, the source in postmigrate ($out)" \
        grep -qx "setup,active,completed completed [0-9]* postmigrate" <<<"$out"
    check "save: the snapshot's machine options rebuild hd1 in slot $slot" \
        grep -qaF "$tmp/hot.img,format=raw,slot=$slot,id=hd1,node=n-hd1" "$tmp/s1"
    python3 "$QMP_PY" "$tmp/a.sock" quit >/dev/null
    wait_exit $pid 30
    check "save: the saved process quits with status 0 (got $rc)" [ "$rc" = 0 ]

    # The old shape: refused, the slot named.
    if old_style "$tmp/s1" "$tmp/s1-old" "$tmp/hot.img,format=raw,slot=$slot,id=hd1,node=n-hd1"; then
        timeout 60 "$VMM" --restore "$tmp/s1-old" --console none </dev/null >/dev/null 2>"$tmp/old.err"
        rc=$?
        check "a snapshot whose options lack the hot-added disk is refused naming slot $slot: $(cat "$tmp/old.err")" \
            [ $rc = 1 ] && [ "$(wc -l <"$tmp/old.err")" = 1 ] &&
            grep -q "slot $slot: the snapshot has blk.*this machine nothing" "$tmp/old.err"
    else
        tap_fail "rewriting the snapshot in the old shape"
    fi

    "$VMM" --restore "$tmp/s1" --control "$tmp/b.sock" </dev/null >"$tmp/b.out" 2>"$tmp/b.err" &
    pid=$!
    if ! wait_socket "$tmp/b.sock"; then
        tap_fail "restore: --restore starts ($(head -c 300 "$tmp/b.err"))"
        return
    fi
    qmp_report "restore" < <(drive after "$tmp/b.sock" "$tmp/b.out" "$tmp/hot.img" hd1 "$token" "$tmp/slot1")
    wait_exit $pid
    check "restore: the guest powers off after its command, status 0 (got $rc)" [ "$rc" = 0 ]
    check "restore: the guest's command exited 0" grep -q 'CVIRT-RUN-EXIT=0' "$tmp/b.out"
    tr -d '\r' <"$tmp/b.out" | grep -E '^(GOT-MARK|AFTER-|VDB-)' | sed 's/^/# /'
    sed 's/^/# stderr: /' "$tmp/b.err"
}

live_migration() {
    local token="hotmig-$RANDOM$RANDOM" rc out port=$((47000 + $$ % 1000))
    machine "$token"
    "$VMM" "${MACHINE[@]}" --control "$tmp/c.sock" </dev/null >"$tmp/c.out" 2>"$tmp/c.err" &
    local spid=$!
    wait_socket "$tmp/c.sock"
    qmp_report "migrate" < <(drive hotadd "$tmp/c.sock" "$tmp/c.out" "$tmp/hot2.img" hd2 "$token" "$tmp/slot2")
    local slot
    slot=$(head -1 "$tmp/slot2" 2>/dev/null)

    # A destination built from the command line alone.
    "$VMM" "${MACHINE[@]}" --console none --incoming "tcp:127.0.0.1:$port" \
        </dev/null >/dev/null 2>"$tmp/d1.err" &
    local dpid=$!
    sleep 0.5
    out=$(python3 "$QMP_MIG" migrate "$tmp/c.sock" "tcp:127.0.0.1:$port" 2>&1)
    check "migrate: a destination without the disk fails the migration, the source runs ($out)" \
        grep -q "failed failed - running" <<<"$out"
    wait_exit $dpid 30
    check "migrate: that destination exits 1 naming slot $slot: $(tail -1 "$tmp/d1.err")" \
        [ "$rc" = 1 ] && grep -q "PCI slot $slot: the source has --disk $tmp/hot2.img.*this machine nothing" "$tmp/d1.err"

    "$VMM" "${MACHINE[@]}" --disk "$tmp/hot2.img,slot=$slot,id=hd2,node=n-hd2" --control "$tmp/d.sock" \
        --incoming defer </dev/null >"$tmp/d.out" 2>"$tmp/d.err" &
    dpid=$!
    wait_socket "$tmp/d.sock"
    out=$(python3 "$QMP_PY" "$tmp/d.sock" query-status 2>&1)
    check "migrate: the waiting destination says inmigrate ($out)" \
        grep -q '"status": "inmigrate".*"running": false' <<<"$out"
    out=$(python3 "$QMP_PY" "$tmp/d.sock" migrate-incoming "{\"uri\": \"tcp:127.0.0.1:$((port + 1))\"}" 2>&1)
    check "migrate: migrate-incoming on the destination ($out)" [ "$out" = "{}" ]
    sleep 0.3
    out=$(python3 "$QMP_MIG" migrate "$tmp/c.sock" "tcp:127.0.0.1:$((port + 1))" 2>&1)
    check "migrate: to the destination with --disk ...,slot=$slot,id=hd2,node=n-hd2: completed, the source in postmigrate ($out)" \
        grep -qx "setup,active,completed completed [0-9]* postmigrate" <<<"$out"
    qmp_report "migrate" < <(drive after "$tmp/d.sock" "$tmp/d.out" "$tmp/hot2.img" hd2 "$token" "$tmp/slot2")
    wait_exit $dpid
    check "migrate: the destination's guest powers off after its command, status 0 (got $rc)" [ "$rc" = 0 ]
    python3 "$QMP_PY" "$tmp/c.sock" quit >/dev/null
    wait_exit $spid 30
    check "migrate: the source quits with status 0 (got $rc)" [ "$rc" = 0 ]
    tr -d '\r' <"$tmp/d.out" | grep -E '^(GOT-MARK|AFTER-|VDB-)' | sed 's/^/# /'
    sed 's/^/# stderr: /' "$tmp/d.err"
}

# A removal the guest has not carried out when the VM is saved (it is
# paused): the disk is saved as present, as QEMU does, with the eject
# request pending; the restored guest carries it out.
pending_unplug() {
    local token="hotpend-$RANDOM$RANDOM" rc
    machine "$token"
    "$VMM" "${MACHINE[@]}" --control "$tmp/e.sock" </dev/null >"$tmp/e.out" 2>"$tmp/e.err" &
    local pid=$!
    wait_socket "$tmp/e.sock"
    qmp_report "pending" < <(drive hotadd "$tmp/e.sock" "$tmp/e.out" "$tmp/hot3.img" hd3 "$token" \
        "$tmp/slot3")
    qmp_report "pending" < <(python3 - "$QMP_PY" "$tmp/e.sock" "$tmp/s3" <<'PY' 2>&1
import os, sys
sys.path.insert(0, os.path.dirname(sys.argv[1]))
import qmp
def check(cond, desc):
    print(("PASS " if cond else "FAIL ") + desc, flush=True)
c = qmp.Client(sys.argv[2])
c.negotiate()
check(c.execute("stop") == {}, "hd3: stop, so the guest cannot eject")
r = c.cmd("device_del", {"id": "hd3"})
check(r.get("return") == {}, "hd3: device_del on the paused guest returns {} (%s)" % r)
c.execute("migrate", {"uri": "file:" + sys.argv[3]})
ev = c.wait_event("MIGRATION", timeout=30)
while ev["data"]["status"] not in ("completed", "failed"):
    ev = c.wait_event("MIGRATION", timeout=30)
check(ev["data"]["status"] == "completed", "hd3: saved with its removal pending (%s)" % ev["data"])
check(not any(e["event"] == "DEVICE_DELETED" for e in c.events),
      "hd3: no DEVICE_DELETED before the save")
c.execute("quit")
PY
)
    wait_exit $pid 30
    local slot
    slot=$(head -1 "$tmp/slot3" 2>/dev/null)
    check "pending: the snapshot still records hd3 in slot $slot" \
        grep -qaF "$tmp/hot3.img,format=raw,slot=$slot,id=hd3,node=n-hd3" "$tmp/s3"
    "$VMM" --restore "$tmp/s3" --control "$tmp/f.sock" </dev/null >"$tmp/f.out" 2>"$tmp/f.err" &
    pid=$!
    if ! wait_socket "$tmp/f.sock"; then
        tap_fail "pending: --restore starts ($(head -c 300 "$tmp/f.err"))"
        return
    fi
    qmp_report "pending" < <(python3 - "$QMP_PY" "$tmp/f.sock" "$slot" "$TIMEOUT" <<'PY' 2>&1
import os, sys
sys.path.insert(0, os.path.dirname(sys.argv[1]))
import qmp
def check(cond, desc):
    print(("PASS " if cond else "FAIL ") + desc, flush=True)
c = qmp.Client(sys.argv[2])
c.negotiate()
slots = [d["slot"] for d in c.execute("query-pci")[0]["devices"] if d["qdev_id"] == "hd3"]
r = c.cmd("device_del", {"id": "hd3"})
e = r.get("error", {})
# The guest may already have ejected it: then DEVICE_DELETED came first.
gone = any(ev["event"] == "DEVICE_DELETED" for ev in c.events)
check(gone or (slots == [int(sys.argv[3])] and "already in the process of unplug" in e.get("desc", "")),
      "hd3: the restored VM has it in slot %s with its removal pending (%s, %s)"
      % (sys.argv[3], slots, e or r))
try:
    ev = c.wait_event("DEVICE_DELETED", timeout=float(sys.argv[4]))
    check(ev.get("data", {}).get("device") == "hd3",
          "hd3: the restored guest carried the eject out: DEVICE_DELETED (%s)" % ev.get("data"))
except (TimeoutError, EOFError) as ex:
    check(False, "hd3: the restored guest carried the eject out: DEVICE_DELETED (%s)" % ex)
slots = [d["slot"] for d in c.execute("query-pci")[0]["devices"]]
check(int(sys.argv[3]) not in slots, "hd3: slot %s is empty again (%s)" % (sys.argv[3], slots))
c.execute("quit")
PY
)
    wait_exit $pid 30
    check "pending: the restored VM quits with status 0 (got $rc)" [ "$rc" = 0 ]
}

main() {
    have_kvm || return
    local env
    if ! env=$("$GUEST/prepare.sh"); then
        tap_fail "building the guest kernel and initramfs (see stderr)"
        return
    fi
    eval "$env"
    head -c $((1 << 20)) /dev/zero >"$tmp/cold.img"
    truncate -s 4M "$tmp/hot.img" "$tmp/hot2.img" "$tmp/hot3.img"
    usage_errors
    save_restore
    live_migration
    pending_unplug
}

main
tap_done
