#!/bin/bash
# Network and storage pool events through Debian's real virsh against
# cvirtd --root, inside a private network namespace: `virsh net-event` and
# `virsh pool-event` loops (for every object, for one object, on the
# read-only socket, lifecycle and refresh) run in the background while
# another virsh defines, starts, destroys and undefines a network and a dir
# pool (a volume upload refreshes it); every event line they print is
# checked, in order, and a refused operation sends none. python3-libvirt's callbacks check the event and
# detail numbers and deregistration.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"

daemon_require --no-vmm virsh ip unshare
# The networks' bridges are made in a network namespace of its own.
in_private_netns "$0" "$@"

daemon_root
WATCHERS=()
daemon_test_cleanup() {
    local p
    for p in "${WATCHERS[@]}"; do kill "$p" 2>/dev/null; done
}
start_daemon
check "cvirtd serves under --root in its own network namespace" test -S "$SOCK"

# netxml NAME N: an isolated network on bridge virbrN, subnet 192.168.N.0/24.
netxml() {
    cat <<EOF
<network>
  <name>$1</name>
  <bridge name='virbr$2' stp='off' delay='0'/>
  <ip address='192.168.$2.1' netmask='255.255.255.0'/>
</network>
EOF
}
netxml evnet 181 >"$ROOT/evnet.xml"
netxml othernet 182 >"$ROOT/othernet.xml"
netxml probenet 183 >"$ROOT/probenet.xml"

# watch NAME URI VIRSH-ARGS...: a virsh event loop in the background, what
# it prints in ROOT/NAME.out.
watch() {
    local name=$1 uri=$2
    shift 2
    timeout 300 virsh -c "$uri" "$@" --loop --timeout 240 >"$ROOT/$name.out" 2>&1 &
    WATCHERS+=($!)
}
# settle NAME PATTERN CMD...: runs CMD until NAME's loop printed PATTERN,
# which proves it registered before what follows.
settle() {
    local name=$1 pattern=$2
    shift 2
    for _ in $(seq 50); do
        "$@" >/dev/null 2>&1
        sleep 0.1
        grep -q "$pattern" "$ROOT/$name.out" && return 0
    done
    echo "$name: no '$pattern' in: $(cat "$ROOT/$name.out")" >&2
    return 1
}
# events NAME OBJECT...: the event lines NAME's loop printed about the
# objects (names matched whole).
events() {
    local name=$1 re
    shift
    re=$(IFS='|'; echo "$*")
    grep -E "^event '[a-z]+' for (network|storage pool) ($re)(:|$)" "$ROOT/$name.out"
}
# expect DESC NAME OBJECTS EXPECTED: one case comparing events NAME OBJECTS
# (OBJECTS space-separated) with EXPECTED, lines in order.
expect() {
    local got
    # shellcheck disable=SC2086
    got=$(events "$2" $3)
    if [ "$got" = "$4" ]; then
        tap_ok "$1"
    else
        tap_fail "$1"
        diff <(echo "$4") <(echo "$got") | sed 's/^/#   /'
    fi
}
# q VIRSH-ARGS...: v without what virsh prints on success.
q() { v "$@" >/dev/null; }
probe_net() { v net-define "$ROOT/probenet.xml" && v net-undefine probenet; }

# ---- networks ----
check "net-define othernet (watched on its own)" q net-define "$ROOT/othernet.xml"
# The loop for othernet first: the events that prove it registered are then
# over before the loops for every network start.
watch net_other "$URI" net-event --network othernet --event lifecycle
check "net-event --network othernet registers (othernet's own events arrive)" \
    settle net_other "network othernet: Stopped" \
    bash -c "virsh -c '$URI' net-start othernet; virsh -c '$URI' net-destroy othernet"
watch net_all "$URI" net-event --event lifecycle
watch net_ro "$URI_RO" net-event --event lifecycle
check "net-event --loop for every network registers (a probe network's events arrive)" \
    settle net_all "network probenet: Undefined" probe_net
check "... on the read-only socket too" settle net_ro "network probenet: Undefined" probe_net

check "net-define evnet" q net-define "$ROOT/evnet.xml"
check "net-start evnet" q net-start evnet
check "a second net-start is refused" bash -c "! virsh -c '$URI' net-start evnet 2>/dev/null"
check "net-destroy evnet" q net-destroy evnet
check "net-undefine evnet" q net-undefine evnet
check "net-create evnet (transient)" q net-create "$ROOT/evnet.xml"
check "net-destroy of the transient evnet" q net-destroy evnet
check "net-undefine othernet" q net-undefine othernet
sleep 0.5

NET_EXPECTED="event 'lifecycle' for network evnet: Defined
event 'lifecycle' for network evnet: Started
event 'lifecycle' for network evnet: Stopped
event 'lifecycle' for network evnet: Undefined
event 'lifecycle' for network evnet: Started
event 'lifecycle' for network evnet: Stopped
event 'lifecycle' for network othernet: Undefined"
expect "net-event for every network printed each lifecycle event of evnet and othernet, in order" \
    net_all "evnet othernet" "$NET_EXPECTED"
expect "net-event on the read-only socket printed the same" net_ro "evnet othernet" \
    "$NET_EXPECTED"
expect "net-event --network othernet printed nothing about evnet" net_other evnet ""
check "... and othernet's undefine as its last event" \
    bash -c "grep '^event ' '$ROOT/net_other.out' | tail -1 |
             grep -qx \"event 'lifecycle' for network othernet: Undefined\""

# ---- storage pools ----
probe_pool() {
    v pool-define-as probepool dir --target "$ROOT/probepool" && v pool-undefine probepool
}
check "pool-define-as otherpool, pool-build, pool-start (watched on its own)" \
    bash -c "{ virsh -c '$URI' pool-define-as otherpool dir --target '$ROOT/otherpool' &&
               virsh -c '$URI' pool-build otherpool &&
               virsh -c '$URI' pool-start otherpool; } >/dev/null"
watch pool_all "$URI" pool-event --event lifecycle
watch pool_refresh "$URI_RO" pool-event --event refresh
watch pool_other "$URI" pool-event --pool otherpool --event lifecycle
check "pool-event --loop for every pool registers (a probe pool's events arrive)" \
    settle pool_all "storage pool probepool: Undefined" probe_pool
check "pool-event --event refresh registers (otherpool's refresh arrives)" \
    settle pool_refresh "storage pool otherpool$" v pool-refresh otherpool
check "pool-event --pool otherpool registers (otherpool's own events arrive)" \
    settle pool_other "storage pool otherpool: Started" \
    bash -c "virsh -c '$URI' pool-destroy otherpool; virsh -c '$URI' pool-start otherpool"

check "pool-define-as evpool" q pool-define-as evpool dir --target "$ROOT/evpool"
check "pool-build evpool" q pool-build evpool
check "pool-start evpool" q pool-start evpool
check "a second pool-start is refused" bash -c "! virsh -c '$URI' pool-start evpool 2>/dev/null"
check "pool-refresh evpool" q pool-refresh evpool
head -c 65536 /dev/urandom >"$ROOT/upload.bin"
check "vol-create-as and vol-upload into evpool" \
    bash -c "virsh -c '$URI' vol-create-as evpool v1 1M >/dev/null &&
             virsh -c '$URI' vol-upload --pool evpool v1 '$ROOT/upload.bin'"
check "vol-delete from evpool" q vol-delete --pool evpool v1
check "pool-destroy evpool" q pool-destroy evpool
check "pool-delete evpool" q pool-delete evpool
check "pool-undefine evpool" q pool-undefine evpool
mkdir -p "$ROOT/evtrans"
check "pool-create-as evtrans (transient)" q pool-create-as evtrans dir --target "$ROOT/evtrans"
check "pool-destroy of the transient evtrans" q pool-destroy evtrans
check "pool-destroy otherpool" q pool-destroy otherpool
check "pool-undefine otherpool" q pool-undefine otherpool
sleep 0.5

expect "pool-event for every pool printed each lifecycle event of evpool and evtrans, in order" \
    pool_all "evpool evtrans" "event 'lifecycle' for storage pool evpool: Defined
event 'lifecycle' for storage pool evpool: Created
event 'lifecycle' for storage pool evpool: Started
event 'lifecycle' for storage pool evpool: Stopped
event 'lifecycle' for storage pool evpool: Deleted
event 'lifecycle' for storage pool evpool: Undefined
event 'lifecycle' for storage pool evtrans: Started
event 'lifecycle' for storage pool evtrans: Stopped"
expect "pool-event --event refresh printed evpool's refresh and the one after the upload" \
    pool_refresh "evpool evtrans" "event 'refresh' for storage pool evpool
event 'refresh' for storage pool evpool"
expect "pool-event --pool otherpool printed nothing about evpool or evtrans" pool_other \
    "evpool evtrans" ""
check "... and otherpool's stop and undefine as its last events" \
    bash -c "grep '^event ' '$ROOT/pool_other.out' | tail -2 | tr '\n' '|' |
             grep -qx \"event 'lifecycle' for storage pool otherpool: Stopped|event 'lifecycle' for storage pool otherpool: Undefined|\""

# ---- python3-libvirt: the numbers behind what virsh prints ----
# Event and detail values as libvirt's callbacks get them, then nothing
# once the callbacks are deregistered.
netxml pynet 184 >"$ROOT/pynet.xml"
pyout=$(timeout 60 /usr/bin/python3 - "$URI" "$(cat "$ROOT/pynet.xml")" "$ROOT/pypool" 2>&1 <<'EOF'
import sys, threading, time, libvirt
uri, xml, pooldir = sys.argv[1], sys.argv[2], sys.argv[3]
libvirt.virEventRegisterDefaultImpl()
def loop():
    while True:
        libvirt.virEventRunDefaultImpl()
threading.Thread(target=loop, daemon=True).start()
conn = libvirt.open(uri)
seen = []
def net_cb(c, net, event, detail, opaque):
    seen.append("net %s %d %d %s" % (net.name(), event, detail, opaque))
def pool_cb(c, pool, event, detail, opaque):
    seen.append("pool %s %d %d %s" % (pool.name(), event, detail, opaque))
def refresh_cb(c, pool, opaque):
    seen.append("pool %s refresh %s" % (pool.name(), opaque))
ids = [conn.networkEventRegisterAny(None, libvirt.VIR_NETWORK_EVENT_ID_LIFECYCLE, net_cb, "all"),
       conn.storagePoolEventRegisterAny(None, libvirt.VIR_STORAGE_POOL_EVENT_ID_LIFECYCLE, pool_cb, "all"),
       conn.storagePoolEventRegisterAny(None, libvirt.VIR_STORAGE_POOL_EVENT_ID_REFRESH, refresh_cb, "all")]
other = libvirt.open(uri)
net = other.networkDefineXML(xml); net.create(); net.destroy(); net.undefine()
pool = other.storagePoolDefineXML(
    "<pool type='dir'><name>pypool</name><target><path>%s</path></target></pool>" % pooldir)
pool.build(); pool.create(); pool.refresh(); pool.destroy(); pool.undefine()
for _ in range(50):
    if len(seen) >= 10: break
    time.sleep(0.1)
conn.networkEventDeregisterAny(ids[0])
for i in ids[1:]: conn.storagePoolEventDeregisterAny(i)
net = other.networkDefineXML(xml); net.undefine()
time.sleep(0.3)
print("\n".join(seen))
EOF
)
PY_EXPECTED="net pynet 0 0 all
net pynet 2 0 all
net pynet 3 0 all
net pynet 1 0 all
pool pypool 0 0 all
pool pypool 4 0 all
pool pypool 2 0 all
pool pypool refresh all
pool pypool 3 0 all
pool pypool 1 0 all"
if [ "$pyout" = "$PY_EXPECTED" ]; then
    tap_ok "python3-libvirt's callbacks got each event and detail value, in order, and none after deregistering"
else
    tap_fail "python3-libvirt's callbacks got each event and detail value, in order, and none after deregistering"
    diff <(echo "$PY_EXPECTED") <(echo "$pyout") | sed 's/^/#   /'
fi

# ---- the loops end as virsh ends them ----
for p in "${WATCHERS[@]}"; do kill -INT "$p" 2>/dev/null; done
for p in "${WATCHERS[@]}"; do wait "$p" 2>/dev/null; done
WATCHERS=()
for n in net_all net_ro net_other pool_all pool_refresh pool_other; do
    check "$n: the loop was interrupted cleanly, no error" \
        bash -c "grep -q '^events received: [1-9]' '$ROOT/$n.out' &&
                 ! grep -q '^error' '$ROOT/$n.out'"
done
check "the daemon logged no warning" bash -c "! grep -qi 'warning' '$ROOT/cvirtd.log'"
stop_daemon
tap_done
