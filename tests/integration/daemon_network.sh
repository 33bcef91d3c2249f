#!/bin/bash
# Virtual networks through Debian's real virsh against cvirtd --root, all
# inside a private network namespace (the host's interfaces, nftables and
# DHCP are never touched): net-define/net-start/net-list/net-info/
# net-dumpxml/net-autostart/net-destroy/net-undefine of a NAT network,
# its bridge with the address, its nftables table and its dnsmasq while it
# runs and none of them after; refusals (overlapping subnet, taken bridge,
# a range outside the subnet); an isolated network without a table; a
# daemon restart that reattaches a running network; busybox udhcpc behind
# the bridge getting leases from dnsmasq; transient and bridged networks;
# kit guests with <interface type='network'> and <interface type='bridge'>
# whose taps sit on the bridge while they run and are gone after destroy;
# the real Linux guest pinging the bridge; python3-libvirt's extra calls.
source "$(dirname "$0")/lib.sh"
source "$CVIRT_SRC/tests/guest/kit/cases.sh"

source "$(dirname "$0")/daemon_lib.sh"

daemon_require virsh ip nft dnsmasq unshare
# Everything below runs in a network namespace of its own.
in_private_netns "$0" "$@"

daemon_root
CONF=$ROOT/etc/cvirt/networks
field() { sed -n "s/^$1: *//p" <<<"$2" | head -1; }
dnsmasq_pid() { cat "$ROOT/run/cvirt/networks/$1.pid" 2>/dev/null; }
# A dnsmasq that exited may stay a zombie: its parent is whatever adopted it.
alive() {
    [ -n "$1" ] && [ "$(cat /proc/$1/comm 2>/dev/null)" = dnsmasq ] &&
        [ "$(awk '{print $3}' /proc/$1/stat 2>/dev/null)" != Z ]
}
not_alive() { ! alive "$1"; }

start_daemon
check "cvirtd serves under --root in its own network namespace" test -S "$SOCK"

cat >"$ROOT/nat.xml" <<'EOF'
<network>
  <name>natnet</name>
  <forward mode='nat'/>
  <bridge name='virbr7' stp='off' delay='0'/>
  <ip address='192.168.150.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.150.10' end='192.168.150.99'/>
      <host mac='52:54:00:aa:bb:cc' name='fixed' ip='192.168.150.5'/>
    </dhcp>
  </ip>
</network>
EOF

# ---- define, list, info ----
out=$(v net-define "$ROOT/nat.xml" 2>&1)
check "net-define: virsh reports the network defined" grep -q "Network natnet defined" <<<"$out"
check "net-define: the definition is saved under CONFIG/networks" test -f "$CONF/natnet.xml"
out=$(v net-list --all 2>&1)
check "net-list --all shows it inactive, not autostarted, persistent" \
    grep -qE '^ natnet +inactive +no +yes' <<<"$out"
check "the bridge does not exist before net-start" bash -c '! ip link show virbr7 2>/dev/null'

# ---- start: bridge, address, nftables, dnsmasq ----
out=$(v net-start natnet 2>&1)
check "net-start: virsh reports the network started" grep -q "Network natnet started" <<<"$out"
check "the bridge virbr7 exists and is up" bash -c "ip -o link show virbr7 | grep -q 'UP'"
check "the bridge has the network's address" \
    bash -c "ip -o -4 addr show dev virbr7 | grep -q 'inet 192.168.150.1/24'"
rules=$(nft list ruleset 2>&1)
check "nft list ruleset shows table ip cvirt_natnet" grep -q "table ip cvirt_natnet" <<<"$rules"
check "... with masquerade for the subnet" \
    grep -qE "ip saddr 192.168.150.0/24 ip daddr != 192.168.150.0/24 masquerade" <<<"$rules"
check "IPv4 forwarding is on in the namespace" test "$(cat /proc/sys/net/ipv4/ip_forward)" = 1
dpid=$(dnsmasq_pid natnet)
check "dnsmasq runs for the network (pid file)" alive "$dpid"
check "dnsmasq's config has the range and the host entry" \
    grep -q "dhcp-range=192.168.150.10,192.168.150.99,255.255.255.0" \
    "$ROOT/run/cvirt/networks/natnet.conf"
check "dnsmasq listens for DHCP on the namespace's port 67" \
    bash -c "grep -qi ':0043 ' /proc/net/udp"
out=$(v net-list 2>&1)
check "net-list shows it active" grep -qE '^ natnet +active +no +yes' <<<"$out"
out=$(v net-info natnet 2>&1)
check "net-info: Active yes" test "$(field Active "$out")" = yes
check "net-info: Bridge virbr7" test "$(field Bridge "$out")" = virbr7
check "net-info: Persistent yes" test "$(field Persistent "$out")" = yes
check "net-info: the uuid is the one in the saved file" \
    grep -q "<uuid>$(field UUID "$out")</uuid>" "$CONF/natnet.xml"
xml=$(v net-dumpxml natnet 2>&1)
check "net-dumpxml has the nat forward, bridge and dhcp range" \
    bash -c "grep -q \"<forward mode='nat'>\" <<<\"\$1\" && grep -q \"<bridge name='virbr7' stp='off' delay='0'/>\" <<<\"\$1\" && grep -q \"<range start='192.168.150.10' end='192.168.150.99'/>\" <<<\"\$1\"" _ "$xml"
check "net-dumpxml keeps the host entry" \
    grep -q "<host mac='52:54:00:aa:bb:cc' name='fixed' ip='192.168.150.5'/>" <<<"$xml"
out=$(v net-dhcp-leases natnet 2>&1); rc=$?
check "net-dhcp-leases answers for a running network" test $rc = 0

# ---- a DHCP client behind the bridge: busybox udhcpc in a namespace of
# its own, on a veth whose other end is on virbr7 ----
dhcp_client() {
    local mac=$1 out=$2 holder
    unshare -n sleep 120 &
    holder=$!
    sleep 0.2
    ip link add cvcl0 type veth peer name cvbr0 &&
        ip link set cvbr0 master virbr7 up &&
        ip link set cvcl0 address "$mac" netns "$holder" &&
        printf '#!/bin/sh\n[ "$1" = bound ] || exit 0\nip addr add "$ip/$mask" dev "$interface"\necho "$ip" >%s\n' \
            "$out" >"$ROOT/udhcpc.sh" && chmod +x "$ROOT/udhcpc.sh" &&
        nsenter -t "$holder" -n sh -c "ip link set lo up; ip link set cvcl0 up &&
            timeout 30 busybox udhcpc -i cvcl0 -n -q -t 5 -T 2 -s '$ROOT/udhcpc.sh' >'$out.log' 2>&1 &&
            busybox ping -c 2 -W 2 192.168.150.1 >'$out.ping' 2>&1"
    local rc=$?
    kill "$holder" 2>/dev/null
    wait "$holder" 2>/dev/null
    ip link del cvbr0 2>/dev/null
    return $rc
}
if command -v busybox >/dev/null && command -v nsenter >/dev/null; then
    dhcp_client 52:54:00:aa:bb:cc "$ROOT/lease1"; rc=$?
    check "busybox udhcpc behind the bridge gets a lease and pings the bridge (rc $rc)" test $rc = 0
    check "the lease is the <host> entry's address 192.168.150.5" \
        test "$(cat "$ROOT/lease1" 2>/dev/null)" = 192.168.150.5
    dhcp_client 52:54:00:aa:bb:01 "$ROOT/lease2"; rc=$?
    ip2=$(cat "$ROOT/lease2" 2>/dev/null)
    check "a client without a <host> entry gets an address in the range ($ip2)" \
        bash -c "[ $rc = 0 ] && [[ '$ip2' =~ ^192\.168\.150\.([0-9]+)$ ]] && (( \${BASH_REMATCH[1]} >= 10 && \${BASH_REMATCH[1]} <= 99 ))"
    out=$(v net-dhcp-leases natnet 2>&1)
    check "net-dhcp-leases lists both leases with their macs" \
        bash -c "grep -q '52:54:00:aa:bb:cc .*192.168.150.5/24' <<<\"\$1\" && grep -q \"52:54:00:aa:bb:01 .*$ip2/24\" <<<\"\$1\"" _ "$out"
    out=$(v net-dhcp-leases natnet --mac 52:54:00:aa:bb:01 2>&1)
    check "net-dhcp-leases --mac picks one lease" \
        bash -c "grep -q '$ip2' <<<\"\$1\" && ! grep -q 192.168.150.5/ <<<\"\$1\"" _ "$out"
else
    tap_fail "busybox and nsenter are needed for the DHCP client"
fi

# ---- autostart ----
out=$(v net-autostart natnet 2>&1)
check "net-autostart: virsh reports it" grep -q "Network natnet marked as autostarted" <<<"$out"
check "the autostart link exists" test -L "$CONF/autostart/natnet.xml"
out=$(v net-info natnet 2>&1)
check "net-info: Autostart yes" test "$(field Autostart "$out")" = yes

# ---- refusals ----
sed -e 's/natnet/clash1/' -e 's/virbr7/virbr8/' -e 's/192.168.150.1\x27 netmask=\x27255.255.255.0/192.168.150.129\x27 netmask=\x27255.255.255.128/' \
    -e '/range/d' -e '/host/d' -e '/dhcp>/d' "$ROOT/nat.xml" >"$ROOT/clash1.xml"
out=$(v net-define "$ROOT/clash1.xml" 2>&1); rc=$?
check "an overlapping subnet is refused" \
    bash -c "[ $rc != 0 ] && grep -q 'overlaps network' <<<\"\$1\"" _ "$out"
sed -e 's/natnet/clash2/' -e 's/192.168.150/192.168.151/g' "$ROOT/nat.xml" >"$ROOT/clash2.xml"
out=$(v net-define "$ROOT/clash2.xml" 2>&1); rc=$?
check "a bridge name in use is refused" \
    bash -c "[ $rc != 0 ] && grep -q \"bridge name 'virbr7' is already in use\" <<<\"\$1\"" _ "$out"
sed -e 's/natnet/clash3/' -e 's/virbr7/virbr9/' -e 's/192.168.150/192.168.152/g' \
    -e "s/end='192.168.152.99'/end='192.168.153.99'/" "$ROOT/nat.xml" >"$ROOT/clash3.xml"
out=$(v net-define "$ROOT/clash3.xml" 2>&1); rc=$?
check "a DHCP range outside the subnet is refused" \
    bash -c "[ $rc != 0 ] && grep -q 'not entirely within' <<<\"\$1\"" _ "$out"
check "no refused network was saved" \
    bash -c "! ls '$CONF' | grep -q clash"

# ---- an isolated network: bridge and dnsmasq, no table ----
cat >"$ROOT/iso.xml" <<'EOF'
<network>
  <name>isonet</name>
  <ip address='10.77.0.1' prefix='24'>
    <dhcp><range start='10.77.0.100' end='10.77.0.120'/></dhcp>
  </ip>
</network>
EOF
v net-define "$ROOT/iso.xml" >/dev/null 2>&1
out=$(v net-start isonet 2>&1)
check "isolated network starts" grep -q "Network isonet started" <<<"$out"
isobr=$(field Bridge "$(v net-info isonet 2>&1)")
check "isolated network got a virbrN bridge ($isobr)" \
    bash -c "[[ '$isobr' == virbr* ]] && ip -o -4 addr show dev '$isobr' | grep -q 10.77.0.1/24"
check "isolated network has dnsmasq" alive "$(dnsmasq_pid isonet)"
check "isolated network adds no nftables table" \
    bash -c "! nft list ruleset | grep -q cvirt_isonet"

# ---- transient networks and bridged networks ----
sed -e 's/isonet/transnet/' -e 's/10.77.0/10.78.0/g' "$ROOT/iso.xml" >"$ROOT/trans.xml"
out=$(v net-create "$ROOT/trans.xml" 2>&1)
check "net-create starts a transient network" grep -q "Network transnet created" <<<"$out"
out=$(v net-list --all 2>&1)
check "net-list shows it active and not persistent" grep -qE '^ transnet +active +no +no' <<<"$out"
check "a transient network leaves no definition file" test ! -e "$CONF/transnet.xml"
v net-destroy transnet >/dev/null 2>&1
out=$(v net-list --all 2>&1)
check "a destroyed transient network is gone" bash -c "! grep -q transnet <<<\"\$1\"" _ "$out"
cat >"$ROOT/hostbr.xml" <<'EOF'
<network>
  <name>hostbr</name>
  <forward mode='bridge'/>
  <bridge name='cvhostbr0'/>
</network>
EOF
v net-define "$ROOT/hostbr.xml" >/dev/null 2>&1
out=$(v net-start hostbr 2>&1); rc=$?
check "a bridged network does not start without its host bridge" \
    bash -c "[ $rc != 0 ] && grep -q \"bridge 'cvhostbr0' of network 'hostbr' does not exist\" <<<\"\$1\"" _ "$out"
ip link add cvhostbr0 type bridge && ip link set cvhostbr0 up
out=$(v net-start hostbr 2>&1)
check "with the host bridge there, the bridged network starts" \
    grep -q "Network hostbr started" <<<"$out"
check "a bridged network runs no dnsmasq and adds no table" \
    bash -c "[ ! -e '$ROOT/run/cvirt/networks/hostbr.pid' ] && ! nft list ruleset | grep -q cvirt_hostbr"

# ---- daemon restart: running networks are reattached ----
stop_daemon
check "the bridge outlives the daemon" bash -c "ip link show virbr7 >/dev/null"
start_daemon
out=$(v net-list --all 2>&1)
check "after a restart natnet is active and autostarted" \
    grep -qE '^ natnet +active +yes +yes' <<<"$out"
check "after a restart the same dnsmasq serves natnet" test "$(dnsmasq_pid natnet)" = "$dpid"
# A dnsmasq that died while the daemon was down is started again; a
# network whose bridge vanished meanwhile is shown stopped.
stop_daemon
isopid=$(dnsmasq_pid isonet)
kill -9 "$isopid"
cat >"$ROOT/gone.xml" <<'EOF'
<network><name>gonenet</name><bridge name='cvgone1'/><ip address='10.79.0.1' prefix='24'/></network>
EOF
start_daemon
v net-define "$ROOT/gone.xml" >/dev/null 2>&1
v net-start gonenet >/dev/null 2>&1
check "a network starts on a fresh bridge (cvgone1)" bash -c "ip link show cvgone1 >/dev/null"
stop_daemon
ip link del cvgone1
start_daemon
newpid=$(dnsmasq_pid isonet)
check "a dead dnsmasq is started again on reattach (pid $isopid -> $newpid)" \
    test -n "$newpid" -a "$newpid" != "$isopid"
check "... and the new one runs" alive "$newpid"
out=$(v net-list --all 2>&1)
check "a network whose bridge vanished is inactive after a restart" \
    grep -qE '^ gonenet +inactive' <<<"$out"
v net-undefine gonenet >/dev/null 2>&1

# ---- domains on the network and on a bridge ----
if have_kvm && kit_build "$KIT" >&2 && [ -f "$KIT/counter.elf" ]; then
    counter_domxml netdom "" "<interface type='network'><source network='natnet'/><mac address='52:54:00:12:34:56'/><model type='virtio'/></interface>" >"$ROOT/netdom.xml"
    v define "$ROOT/netdom.xml" >/dev/null 2>&1
    out=$(v start netdom 2>&1)
    check "a domain with <interface type='network'> starts" grep -q "Domain 'netdom' started" <<<"$out"
    tap=$(v domiflist netdom 2>/dev/null | awk '$2 == "network" {print $1}')
    [ -n "$tap" ] || tap=$(v dumpxml netdom | sed -n "s/.*<target dev='\(vnet[0-9]*\)'.*/\1/p" | head -1)
    check "the domain's tap ($tap) is a vnetN" bash -c "[[ '$tap' == vnet* ]]"
    check "the tap is on the network's bridge (ip link show master virbr7)" \
        bash -c "ip -o link show master virbr7 | grep -q ': $tap[:@]'"
    check "the tap is up" bash -c "ip -o link show '$tap' | grep -q 'UP'"
    counter_domxml brdom "" "<interface type='bridge'><source bridge='$isobr'/><model type='virtio'/></interface>" >"$ROOT/brdom.xml"
    out=$(v create "$ROOT/brdom.xml" 2>&1)
    check "a domain with <interface type='bridge'> starts" grep -q "Domain 'brdom' created" <<<"$out"
    brtap=$(v dumpxml brdom | sed -n "s/.*<target dev='\(vnet[0-9]*\)'.*/\1/p" | head -1)
    check "its tap ($brtap) is on bridge $isobr" \
        bash -c "[ -n '$brtap' ] && ip -o link show master '$isobr' | grep -q ': $brtap[:@]'"
    stop_daemon
    start_daemon
    check "a daemon restart keeps the running domain's tap" bash -c "ip link show '$tap' >/dev/null"
    v destroy netdom >/dev/null 2>&1
    v destroy brdom >/dev/null 2>&1
    check "the network domain's tap is gone after destroy" bash -c "! ip link show '$tap' 2>/dev/null"
    check "the bridge domain's tap is gone after destroy" \
        bash -c "[ -n '$brtap' ] && ! ip link show '$brtap' 2>/dev/null"
    out=$(v start netdom 2>&1)
    check "the domain starts again with a fresh tap" \
        bash -c "grep -q started <<<\"\$1\" && ip -o link show master virbr7 | grep -q vnet" _ "$out"
    # Save, let another domain take the freed tap name, restore: the
    # restored VMM gets the tap made for it, not the name in the file.
    oldtap=$(v dumpxml netdom | sed -n "s/.*<target dev='\(vnet[0-9]*\)'.*/\1/p" | head -1)
    out=$(v save netdom "$ROOT/netdom.save" 2>&1)
    check "save of a domain on a network ($out)" grep -q "Domain 'netdom' saved" <<<"$out"
    v create "$ROOT/brdom.xml" >/dev/null 2>&1
    brtap=$(v dumpxml brdom | sed -n "s/.*<target dev='\(vnet[0-9]*\)'.*/\1/p" | head -1)
    echo "# netdom had $oldtap, brdom now has $brtap"
    out=$(v restore "$ROOT/netdom.save" 2>&1)
    check "restore of it ($out)" grep -q "Domain restored from" <<<"$out"
    newtap=$(v dumpxml netdom | sed -n "s/.*<target dev='\(vnet[0-9]*\)'.*/\1/p" | head -1)
    check "the restored domain's tap ($newtap) is not brdom's ($brtap)" \
        bash -c '[ -n "$0" ] && [ "$0" != "$1" ]' "$newtap" "$brtap"
    check "... it is on the network's bridge with the VMM attached (LOWER_UP)" \
        bash -c "ip -o link show master virbr7 | grep ': $newtap[:@]' | grep -q LOWER_UP"
    check "... brdom's tap still has its own VMM (LOWER_UP)" \
        bash -c "ip -o link show '$brtap' | grep -q LOWER_UP"
    check "... the restored domain runs" test "$(v domstate netdom 2>&1 | head -1)" = running
    v destroy brdom >/dev/null 2>&1
    v destroy netdom >/dev/null 2>&1
    v undefine netdom >/dev/null 2>&1
    counter_domxml hbdom "" "<interface type='network'><source network='hostbr'/><model type='virtio'/></interface>" >"$ROOT/hbdom.xml"
    out=$(v create "$ROOT/hbdom.xml" 2>&1)
    hbtap=$(v dumpxml hbdom 2>/dev/null | sed -n "s/.*<target dev='\(vnet[0-9]*\)'.*/\1/p" | head -1)
    check "a domain on the bridged network has its tap ($hbtap) on the host bridge" \
        bash -c "grep -q created <<<\"\$1\" && [ -n '$hbtap' ] && ip -o link show master cvhostbr0 | grep -q ': $hbtap[:@]'" _ "$out"
    v destroy hbdom >/dev/null 2>&1
    check "its tap is gone after destroy, the host bridge stays" \
        bash -c "[ -n '$hbtap' ] && ! ip link show '$hbtap' 2>/dev/null && ip link show cvhostbr0 >/dev/null"
    counter_domxml nonet "" "<interface type='network'><source network='nosuch'/></interface>" >"$ROOT/nonet.xml"
    out=$(v create "$ROOT/nonet.xml" 2>&1); rc=$?
    check "a domain on an unknown network is refused" \
        bash -c "[ $rc != 0 ] && grep -q \"no network with matching name 'nosuch'\" <<<\"\$1\"" _ "$out"
    check "no tap is left behind" bash -c "! ip -o link | grep -q vnet"
fi

# ---- the real Linux guest on the NAT network ----
# Its kernel has no packet sockets, so no DHCP client: it takes an address
# of the subnet itself and pings the bridge; the host then finds the
# guest's mac in the bridge's neighbour table and pings the guest back.
encode() {
    python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe="/;=$|<>&-_.,:()"))' "$1"
}
linux_guest() {
    local gmac=52:54:00:12:34:57 gip=192.168.150.50 run xml=$ROOT/lx.xml
    run="ip link set eth0 up; ip addr add $gip/24 dev eth0; ok=0;"
    run+=" for i in 1 2 3; do timeout 10 ping -c 1 192.168.150.1 && ok=\$((ok+1)); done;"
    run+=" echo PING-REPLIES=\$ok; sleep 600"
    cat >"$xml" <<EOF
<domain type='kvm'>
  <name>lxnet</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type><kernel>$KERNEL</kernel><initrd>$INITRD</initrd>
      <cmdline>$(cat "$CMDLINE_FILE") cvirt.run=$(encode "$run" | sed 's/&/\&amp;/g; s/</\&lt;/g; s/>/\&gt;/g')</cmdline></os>
  <devices><serial type='pty'/>
    <interface type='network'><source network='natnet'/><mac address='$gmac'/></interface>
  </devices>
</domain>
EOF
    out=$(v create "$xml" 2>&1)
    check "the Linux guest starts on the NAT network" grep -q "Domain 'lxnet' created" <<<"$out"
    local seen=1
    if ! grep -q created <<<"$out"; then
        echo "# $out"
        tap_fail "the guest's ping reached the bridge # the guest did not start"
        tap_fail "the host pings the guest through the tap # the guest did not start"
        return
    fi
    for _ in $(seq "${CVIRT_GUEST_TIMEOUT:-180}"); do
        ip neigh show dev virbr7 | grep -q "$gip .*$gmac" && { seen=0; break; }
        sleep 1
    done
    check "the guest's ping reached the bridge (its mac is in virbr7's neighbour table)" \
        test $seen = 0
    check "the host pings the guest through the tap" \
        bash -c "[ $seen = 0 ] && busybox ping -c 2 -W 3 $gip >/dev/null"
    v destroy lxnet >/dev/null 2>&1
}
if have_kvm; then
    if env=$("$CVIRT_SRC/tests/guest/linux/prepare.sh"); then
        eval "$env"
        linux_guest
    else
        tap_fail "building the guest kernel and initramfs (see stderr)"
    fi
fi

# ---- python3-libvirt: the calls virsh does not make ----
pyout=$(/usr/bin/python3 - "$URI" 2>&1 <<'EOF'
import sys, libvirt
c = libvirt.open(sys.argv[1])
before = (c.numOfNetworks(), c.numOfDefinedNetworks())
n = c.networkDefineXML("<network><name>pynet</name><ip address='10.90.0.1' prefix='24'/></network>")
print("DEFINED", c.numOfDefinedNetworks() - before[1], "pynet" in c.listDefinedNetworks())
n.create()
print("ACTIVE", c.numOfNetworks() - before[0], "pynet" in c.listNetworks(), n.isActive())
print("BYUUID", c.networkLookupByUUIDString(n.UUIDString()).name())
print("BRIDGE", n.bridgeName().startswith("virbr"))
n.destroy()
t = c.networkCreateXML("<network><name>pytrans</name></network>")
print("TRANSIENT", t.isPersistent(), t.isActive())
t.destroy()
try:
    c.networkLookupByName("pytrans")
except libvirt.libvirtError as e:
    print("GONE", e.get_error_code(), e.get_error_domain())
n.undefine()
EOF
)
check "python3-libvirt: define shows in the legacy defined list" grep -qx "DEFINED 1 True" <<<"$pyout"
check "python3-libvirt: create shows in the legacy active list" grep -qx "ACTIVE 1 True 1" <<<"$pyout"
check "python3-libvirt: lookup by uuid" grep -qx "BYUUID pynet" <<<"$pyout"
check "python3-libvirt: bridge name" grep -qx "BRIDGE True" <<<"$pyout"
check "python3-libvirt: networkCreateXML is transient and active" grep -qx "TRANSIENT 0 1" <<<"$pyout"
check "python3-libvirt: a destroyed transient network is VIR_ERR_NO_NETWORK from VIR_FROM_NETWORK" \
    grep -qx "GONE 43 19" <<<"$pyout"

# ---- destroy and undefine ----
out=$(v net-destroy natnet 2>&1)
check "net-destroy: virsh reports it" grep -q "Network natnet destroyed" <<<"$out"
check "the bridge is gone after net-destroy" bash -c "! ip link show virbr7 2>/dev/null"
check "our table is gone from nft list ruleset" bash -c "! nft list ruleset | grep -q cvirt_natnet"
check "dnsmasq stopped" not_alive "$dpid"
out=$(v net-list --all 2>&1)
check "net-list --all shows it inactive" grep -qE '^ natnet +inactive +yes +yes' <<<"$out"
v net-autostart --disable natnet >/dev/null 2>&1
check "net-autostart --disable removes the link" test ! -e "$CONF/autostart/natnet.xml"
out=$(v net-undefine natnet 2>&1)
check "net-undefine: virsh reports it" grep -q "Network natnet has been undefined" <<<"$out"
check "the definition file is removed" test ! -e "$CONF/natnet.xml"
out=$(v net-info natnet 2>&1); rc=$?
check "net-info of an undefined network fails with libvirt's message" \
    bash -c "[ $rc != 0 ] && grep -q \"Network not found: no network with matching name 'natnet'\" <<<\"\$1\"" _ "$out"
v net-destroy isonet >/dev/null 2>&1
check "the isolated network's bridge is gone after net-destroy" \
    bash -c "! ip link show '$isobr' 2>/dev/null"
v net-undefine isonet >/dev/null 2>&1
v net-destroy hostbr >/dev/null 2>&1
check "destroying a bridged network leaves the host bridge alone" \
    bash -c "ip link show cvhostbr0 >/dev/null"
v net-undefine hostbr >/dev/null 2>&1
out=$(v net-list --all 2>&1)
check "net-list --all is empty at the end" bash -c "! grep -qE 'natnet|isonet|hostbr' <<<\"\$1\"" _ "$out"
stop_daemon
tap_done
