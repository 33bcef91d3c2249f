# Sourced by the virtio kit tests (after lib.sh): the host side of the
# guest's disk and network, shared by the QEMU and the cvirt-vmm runs.
# Uses DISK_SECTORS, TAP and PEER_IP from the caller; sets NS.

# The line the guest writes for sector s with salt t: the first 31 bytes
# of each sector.
pattern_line() { printf 'sec %08x salt %08x ln 0' "$1" "$2"; }

# disk_holds FILE SALT: the sectors the program writes carry the pattern,
# the ones between them are still zero.
disk_holds() {
    local file=$1 salt=$2 s got
    for s in 2 5 8 15 20 23 $((DISK_SECTORS - 1)); do
        got=$(dd if="$file" bs=512 skip="$s" count=1 status=none | head -c 31)
        [ "$got" = "$(pattern_line "$s" "$salt")" ] || { echo "# sector $s: $got"; return 1; }
    done
    for s in 0 1 6 7 16 19 24; do
        got=$(dd if="$file" bs=512 skip="$s" count=1 status=none | tr -d '\0' | wc -c)
        [ "$got" = 0 ] || { echo "# sector $s is not zero"; return 1; }
    done
}

# netns_up PREFIX: a private network namespace (NS, named PREFIX-PID-RANDOM)
# holding the tap TAP at PEER_IP/24. Needs root; a skip case without it.
netns_up() {
    if [ "$(id -u)" != 0 ]; then
        tap_skip "virtio-net runs: creating a network namespace and tap needs root"
        return 1
    fi
    NS=$1-$$-$RANDOM
    if ! ip netns add "$NS" || ! ip netns exec "$NS" ip tuntap add dev "$TAP" mode tap ||
        ! ip netns exec "$NS" ip addr add "$PEER_IP/24" dev "$TAP" ||
        ! ip netns exec "$NS" ip link set "$TAP" up; then
        tap_fail "network namespace $NS with tap $TAP and $PEER_IP/24"
        return 1
    fi
    tap_ok "network namespace with a tap at $PEER_IP/24"
}
