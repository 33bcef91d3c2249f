#!/bin/bash
# Storage pools and volumes through Debian's real virsh and virt-install
# against cvirtd --root: pool-define-as, pool-build, pool-start, pool-list,
# pool-info (sizes checked against statfs), vol-create-as raw and qcow2
# (qemu-img info is the judge of what was created), a qemu-img image found
# in the folder, vol-list/vol-info/vol-path/vol-dumpxml, vol-upload and
# vol-download (cmp against the file), vol-clone (qemu-img compare),
# vol-delete, python3-libvirt for the
# calls virsh does not make (transient pools, legacy lists, lookups by uuid
# and key, pool delete), the
# refusals, autostart across a daemon restart, pool-destroy/pool-undefine,
# and virt-install --import with --disk path=...,size=N creating its pool,
# its qcow2 volume and a running domain, Debian's virt-clone of it, then
# undefine --remove-all-storage;
# and virt-install --disk size=N making libvirt's default pool under --root.
source "$(dirname "$0")/lib.sh"
source "$CVIRT_SRC/tests/guest/kit/cases.sh"

source "$(dirname "$0")/daemon_lib.sh"

daemon_require virsh virt-install qemu-img
daemon_root
CONF=$ROOT/etc/cvirt/storage
P1=$ROOT/pool1

# qemu-img's view of an image: one field of its JSON.
qi() { qemu-img info --output=json "$1" | sed -n "s/^ *\"$2\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" | head -1; }
# One "Name: value" line of virsh's output.
field() { sed -n "s/^$1: *//p" <<<"$2" | sed 's/ bytes$//' | head -1; }

start_daemon
check "cvirtd serves under --root" test -S "$SOCK"

# ---- pools: define, build, start, list, info ----
out=$(v pool-list --all --name 2>&1)
check "pool-list --all is empty at first" test -z "$(tr -d '[:space:]' <<<"$out")"
out=$(v pool-define-as p1 dir --target "$P1/" 2>&1)
check "pool-define-as: virsh reports the pool defined" grep -q "Pool p1 defined" <<<"$out"
check "the definition is kept in CONFIG/storage/p1.xml with the target path" \
    grep -q "<path>$P1</path>" "$CONF/p1.xml"
out=$(v pool-start p1 2>&1)
check "pool-start before pool-build fails, naming the missing folder" \
    grep -q "cannot open directory '$P1'" <<<"$out"
out=$(v pool-build p1 2>&1)
check "pool-build creates the folder" test -d "$P1"
out=$(v pool-start p1 2>&1)
check "pool-start: virsh reports the pool started" grep -q "Pool p1 started" <<<"$out"
out=$(v pool-list --all 2>&1)
check "pool-list --all: p1 active, no autostart" grep -Eq '^ *p1 +active +no *$' <<<"$out"
out=$(v pool-info --bytes p1 2>&1)
check "pool-info: running and persistent" \
    test "$(field State "$out")/$(field Persistent "$out")" = "running/yes"
# statfs of the folder is the oracle of the sizes.
read -r bsize blocks bavail < <(stat -f -c '%S %b %a' "$P1")
check "pool-info: capacity is the file system's size ($((bsize * blocks)))" \
    test "$(field Capacity "$out")" = "$((bsize * blocks))"
avail=$(field Available "$out")
check "pool-info: available is what statfs gives (within 64 MiB of churn)" \
    test $(( (avail - bsize * bavail) / 1048576 )) -gt -64 -a \
         $(( (avail - bsize * bavail) / 1048576 )) -lt 64
out=$(v pool-dumpxml p1 2>&1)
check "pool-dumpxml: a dir pool with its uuid and path" \
    bash -c 'grep -q "<pool type=.dir.>" <<<"$0" && grep -q "<path>$1</path>" <<<"$0" &&
             grep -q "<uuid>$2</uuid>" <<<"$0"' "$out" "$P1" "$(v pool-uuid p1)"

# ---- volumes ----
out=$(v vol-create-as p1 a.raw 10M 2>&1)
check "vol-create-as raw: virsh reports it created" grep -q "Vol a.raw created" <<<"$out"
check "qemu-img: a.raw is raw, 10 MiB" \
    test "$(qi "$P1/a.raw" format)/$(qi "$P1/a.raw" virtual-size)" = "raw/10485760"
check "a.raw is sparse" test "$(stat -c %b "$P1/a.raw")" -lt 2048
out=$(v vol-create-as p1 b.qcow2 1G --format qcow2 2>&1)
check "vol-create-as qcow2: virsh reports it created" grep -q "Vol b.qcow2 created" <<<"$out"
check "qemu-img: b.qcow2 is qcow2, 1 GiB" \
    test "$(qi "$P1/b.qcow2" format)/$(qi "$P1/b.qcow2" virtual-size)" = "qcow2/1073741824"
check "qemu-img check finds b.qcow2 clean" qemu-img check -q "$P1/b.qcow2"
qemu-img create -q -f qcow2 "$P1/c.qcow2" 3G
check "pool-refresh" v pool-refresh p1
out=$(v vol-list p1 2>&1)
check "vol-list: the three volumes with their paths" \
    bash -c 'for n in a.raw b.qcow2 c.qcow2; do grep -Eq "^ *$n +$1/$n *$" <<<"$0" || exit 1; done' \
    "$out" "$P1"
out=$(v vol-info --bytes --pool p1 c.qcow2 2>&1)
check "vol-info of qemu-img's image: capacity is its virtual size" \
    test "$(field Capacity "$out")" = "$(qi "$P1/c.qcow2" virtual-size)"
check "vol-info: allocation is what the file occupies" \
    test "$(field Allocation "$out")" = "$(( $(stat -c '%b * %B' "$P1/c.qcow2") ))"
check "vol-info: type file" test "$(field Type "$out")" = file
out=$(v vol-path --pool p1 b.qcow2 2>&1)
check "vol-path" test "$out" = "$P1/b.qcow2"
out=$(v vol-dumpxml "$P1/b.qcow2" 2>&1)
check "vol-dumpxml by path: qcow2, key = path" \
    bash -c 'grep -q "<format type=.qcow2./>" <<<"$0" && grep -q "<key>$1</key>" <<<"$0"' \
    "$out" "$P1/b.qcow2"
qemu-io -c "write -P 0x5a 1M 3M" -c "write -P 0x11 900M 64k" "$P1/b.qcow2" >/dev/null
out=$(v vol-clone --pool p1 b.qcow2 b2.qcow2 2>&1)
check "vol-clone: virsh reports the clone" grep -q "Vol b2.qcow2 cloned from b.qcow2" <<<"$out"
check "qemu-img compare: the clone reads as the original" \
    qemu-img compare -q "$P1/b.qcow2" "$P1/b2.qcow2"
check "the clone is qcow2 and sparse" \
    test "$(qi "$P1/b2.qcow2" format)" = qcow2 -a "$(stat -c %b "$P1/b2.qcow2")" -lt 65536
v vol-delete --pool p1 b2.qcow2 >/dev/null 2>&1
out=$(v vol-key "$P1//b.qcow2" 2>&1)
check "a volume path with a doubled '/' is found" test "$out" = "$P1/b.qcow2"
out=$(v vol-pool "$P1/a.raw" 2>&1)
check "vol-pool finds the pool of a path" test "$out" = p1

# ---- refusals ----
sum_before=$(sha256sum "$P1/b.qcow2")
out=$(v vol-create-as p1 b.qcow2 5M 2>&1)
check "vol-create-as over an existing volume fails" grep -q "already in use" <<<"$out"
check "... and leaves the image as it was" test "$(sha256sum "$P1/b.qcow2")" = "$sum_before"
out=$(v vol-create-as p1 ../escape.raw 1M 2>&1)
check "a volume name with '/' is refused" grep -q "cannot contain '/'" <<<"$out"
check "... and nothing is created outside the pool" test ! -e "$ROOT/escape.raw"
out=$(v vol-create-as p1 d.vmdk 1M --format vmdk 2>&1)
check "an unsupported volume format is refused by name" grep -q "unsupported volume format 'vmdk'" <<<"$out"
out=$(v pool-define-as p1 dir --target "$ROOT/other" 2>&1)
check "a second pool named p1 is refused" grep -q "pool 'p1' already exists" <<<"$out"
out=$(v pool-define-as p2 dir --target "$P1" 2>&1)
check "a second pool on p1's folder is refused" grep -q "Storage source conflict with pool: 'p1'" <<<"$out"
out=$(v pool-define-as p3 logical --source-name vg 2>&1)
check "a pool type other than dir is refused by name" grep -q "unsupported storage pool type 'logical'" <<<"$out"
out=$(timeout 60 virsh -c "$URI_RO" pool-define-as ro1 dir --target "$ROOT/ro1" 2>&1)
check "the read-only socket refuses pool-define" test ! -e "$CONF/ro1.xml" -a -n "$out"
out=$(v vol-info --pool p1 nosuch 2>&1)
# virsh tries the name, then the key, then the path: the last error shows.
check "vol-info of a missing volume: Storage volume not found" \
    grep -q "Storage volume not found: no storage vol with matching path 'nosuch'" <<<"$out"
out=$(v pool-info nosuch 2>&1)
check "pool-info of a missing pool: Storage pool not found" grep -q "Storage pool not found" <<<"$out"
out=$(v pool-undefine p1 2>&1)
check "pool-undefine of an active pool fails" grep -q "still active" <<<"$out"

# ---- vol-upload / vol-download: the bytes of the file over a stream ----
head -c $((9 << 20)) /dev/urandom > "$ROOT/up.bin"
v vol-upload --pool p1 a.raw "$ROOT/up.bin" >/dev/null 2>&1
check "vol-upload writes the data into the volume's file" cmp -n $((9 << 20)) "$ROOT/up.bin" "$P1/a.raw"
check "... and leaves the volume's size" test "$(stat -c %s "$P1/a.raw")" = 10485760
v vol-download --pool p1 a.raw "$ROOT/down.bin" >/dev/null 2>&1
check "vol-download gives the whole file back" cmp "$ROOT/down.bin" "$P1/a.raw"
v vol-download --pool p1 a.raw "$ROOT/part.bin" --offset 4097 --length 100000 >/dev/null 2>&1
check "vol-download --offset --length gives that range" \
    cmp "$ROOT/part.bin" <(tail -c +4098 "$P1/a.raw" | head -c 100000)
out=$(v vol-download --pool p1 a.raw "$ROOT/x.bin" --offset $((11 << 20)) 2>&1)
check "vol-download past the end is refused" grep -q "lies beyond the end" <<<"$out"
cp "$P1/a.raw" "$ROOT/a.before"
out=$(timeout 60 virsh -c "$URI_RO" vol-upload --pool p1 a.raw "$ROOT/part.bin" 2>&1)
check "the read-only socket refuses vol-upload" cmp "$ROOT/a.before" "$P1/a.raw"
timeout 60 virsh -c "$URI_RO" vol-download --pool p1 a.raw "$ROOT/ro.bin" >/dev/null 2>&1
check "the read-only socket refuses vol-download" test ! -s "$ROOT/ro.bin"

out=$(v vol-delete --pool p1 a.raw 2>&1)
check "vol-delete: virsh reports it deleted" grep -q "Vol a.raw deleted" <<<"$out"
check "... and the file is gone" test ! -e "$P1/a.raw"

# ---- autostart and a daemon restart ----
v pool-autostart p1 >/dev/null 2>&1
check "pool-autostart makes CONFIG/storage/autostart/p1.xml" test -L "$CONF/autostart/p1.xml"
stop_daemon
start_daemon
out=$(v pool-list --all 2>&1)
check "after a restart p1 is active and autostarted" grep -Eq '^ *p1 +active +yes *$' <<<"$out"
out=$(v vol-list p1 2>&1)
check "after a restart the volumes are listed" grep -q "b.qcow2" <<<"$out"

# ---- destroy, undefine ----
out=$(v pool-destroy p1 2>&1)
check "pool-destroy: virsh reports it destroyed" grep -q "Pool p1 destroyed" <<<"$out"
out=$(v vol-list p1 2>&1)
check "vol-list of an inactive pool fails" grep -q "is not active" <<<"$out"
v pool-autostart --disable p1 >/dev/null 2>&1
out=$(v pool-undefine p1 2>&1)
check "pool-undefine: virsh reports it undefined" grep -q "Pool p1 has been undefined" <<<"$out"
check "the definition is gone" test ! -e "$CONF/p1.xml" -a ! -e "$CONF/autostart/p1.xml"
check "the volumes' files stay" test -f "$P1/b.qcow2" -a -f "$P1/c.qcow2"
out=$(v pool-list --all --name 2>&1)
check "pool-list --all is empty again" test -z "$(tr -d '[:space:]' <<<"$out")"

# ---- python3-libvirt: the calls virsh does not make ----
pyout=$(/usr/bin/python3 - "$URI" "$ROOT" 2>&1 <<'EOF'
import sys, libvirt
uri, root = sys.argv[1], sys.argv[2]
c = libvirt.open(uri)
def out(name, ok): print(("ok" if ok else "fail") + " " + name)
x = "<pool type='dir'><name>t1</name><target><path>%s/t1</path></target></pool>" % root
import os; os.mkdir(root + "/t1")
p = c.storagePoolCreateXML(x, 0)
out("createXML: transient and active", p.isActive() == 1 and p.isPersistent() == 0)
out("legacy lists: active t1 counted", c.numOfStoragePools() == 1 and c.listStoragePools() == ["t1"])
out("legacy lists: no defined pool", c.numOfDefinedStoragePools() == 0 and c.listDefinedStoragePools() == [])
out("lookupByUUID", c.storagePoolLookupByUUID(p.UUID()).name() == "t1")
v = p.createXML("<volume><name>v1</name><capacity unit='MiB'>3</capacity></volume>", 0)
out("vol key is the path", v.key() == root + "/t1/v1" and v.path() == v.key())
out("lookupByKey", c.storageVolLookupByKey(v.key()).name() == "v1")
out("listAllVolumes", [x.name() for x in p.listAllVolumes(0)] == ["v1"])
out("vol info", v.info() == [0, 3 << 20, v.info()[2]])
v.delete(0)
out("numOfVolumes after delete", p.numOfVolumes() == 0)
p.destroy()
out("a destroyed transient pool is gone", "t1" not in c.listDefinedStoragePools() and
    all(x.name() != "t1" for x in c.listAllStoragePools(0)))
p = c.storagePoolDefineXML(x, 0)
p.delete(0)
out("pool delete removes the empty folder", not os.path.exists(root + "/t1"))
p.undefine()
print("end")
EOF
)
while read -r verdict name; do
    case $verdict in
    ok) tap_ok "python3-libvirt: $name" ;;
    fail) tap_fail "python3-libvirt: $name" ;;
    esac
done <<<"$pyout"
check "python3-libvirt: the script ran to its end" grep -qx end <<<"$pyout"
grep -qx end <<<"$pyout" || echo "$pyout" | sed 's/^/# /'

# ---- virt-install --import with a new qcow2 disk ----
daemon_counter_kit
mkdir -p "$ROOT/images"
DISK=$ROOT/images/k1.qcow2
out=$(timeout 300 virt-install --connect "$URI" --import --name k1 --memory 64 --vcpus 1 \
    --disk "path=$DISK,size=1,format=qcow2" --boot "kernel=$KIT/counter.elf" \
    --network none --graphics none --noautoconsole --osinfo detect=on,require=off 2>&1)
rc=$?
check "virt-install --import completes" \
    bash -c '[ "$1" = 0 ] && grep -q "Domain creation completed" <<<"$0"' "$out" "$rc"
[ "$rc" = 0 ] || echo "$out" | sed 's/^/# /'
check "qemu-img: virt-install's disk is qcow2, 1 GiB" \
    test "$(qi "$DISK" format)/$(qi "$DISK" virtual-size)" = "qcow2/1073741824"
out=$(v pool-list --all 2>&1)
check "virt-install made an autostarted pool for the folder" \
    grep -Eq '^ *images +active +yes *$' <<<"$out"
out=$(v vol-list images 2>&1)
check "the disk is a volume of that pool" grep -Eq "^ *k1.qcow2 +$DISK *$" <<<"$out"
out=$(v domstate k1 2>&1)
check "the domain is running" test "$(head -1 <<<"$out")" = running
out=$(v dumpxml k1 2>&1)
check "dumpxml shows the disk" grep -q "<source file='$DISK'/>" <<<"$out"
check "destroy k1" v destroy k1
# Debian's virt-clone copies a managed disk through its pool (createXMLFrom).
out=$(timeout 300 virt-clone --connect "$URI" -o k1 -n k1c --auto-clone 2>&1)
rc=$?
check "virt-clone -o k1 -n k1c --auto-clone completes" \
    bash -c '[ "$1" = 0 ] && grep -q "Clone .k1c. created successfully" <<<"$0"' "$out" "$rc"
[ "$rc" = 0 ] || echo "$out" | sed 's/^/# /'
CDISK=$ROOT/images/k1c.qcow2
check "qemu-img compare: the clone's disk reads as k1's" qemu-img compare -q "$DISK" "$CDISK"
out=$(v dumpxml k1c 2>&1)
check "dumpxml k1c shows the cloned disk" grep -q "<source file='$CDISK'/>" <<<"$out"
out=$(v undefine k1c --remove-all-storage 2>&1)
check "undefine k1c --remove-all-storage removes its disk" test ! -e "$CDISK"
out=$(v undefine k1 --remove-all-storage 2>&1)
check "undefine --remove-all-storage removes the domain and its volume" \
    bash -c 'grep -q "Volume .* removed" <<<"$0" && [ ! -e "$1" ]' "$out" "$DISK"

# ---- virt-install --disk size=N: the default pool, kept under --root ----
out=$(timeout 300 virt-install --connect "$URI" --import --name k2 --memory 64 --vcpus 1 \
    --disk size=1 --boot "kernel=$KIT/counter.elf" \
    --network none --graphics none --noautoconsole --osinfo detect=on,require=off 2>&1)
rc=$?
check "virt-install --disk size=1 completes" \
    bash -c '[ "$1" = 0 ] && grep -q "Domain creation completed" <<<"$0"' "$out" "$rc"
[ "$rc" = 0 ] || echo "$out" | sed 's/^/# /'
DEF=$ROOT/var/lib/libvirt/images
out=$(v pool-dumpxml default 2>&1)
check "virt-install's default pool (libvirt's data folder) lies under --root" \
    grep -q "<path>$DEF</path>" <<<"$out"
check "qemu-img: its new disk is qcow2, 1 GiB" \
    test "$(qi "$DEF/k2.qcow2" format)/$(qi "$DEF/k2.qcow2" virtual-size)" = "qcow2/1073741824"
out=$(v dumpxml k2 2>&1)
check "dumpxml k2 shows the disk in the default pool" grep -q "<source file='$DEF/k2.qcow2'/>" <<<"$out"
v destroy k2 >/dev/null 2>&1
out=$(v undefine k2 --remove-all-storage 2>&1)
check "undefine k2 --remove-all-storage removes its volume" test ! -e "$DEF/k2.qcow2"

out=$(v list --all --name 2>&1)
check "no domain is left" test -z "$(tr -d '[:space:]' <<<"$out")"
tap_done
