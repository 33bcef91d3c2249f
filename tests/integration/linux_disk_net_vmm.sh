#!/bin/bash
# The real Linux guest on cvirt-vmm with virtio-blk and virtio-net, in two
# boots. Boot 1 has an ext4 disk (made by tests/guest/linux/mk-disk.sh,
# holding the script the guest runs), a read-only raw disk and a tap in a
# network namespace this test makes: the guest writes a file generated
# from a random seed, fails to write the read-only disk but reads its
# first sector, and pings the host end of the tap. Boot 2 mounts the ext4
# disk again and hashes the file. The host computes the same content and
# its sha256 itself, reads the file out of the image with debugfs, runs
# e2fsck -fn on the image and checks the read-only file did not change.
source "$(dirname "$0")/lib.sh"

GUEST=$CVIRT_SRC/tests/guest/linux
TIMEOUT=${CVIRT_GUEST_TIMEOUT:-180}
GUEST_IP=10.0.2.15
PEER_IP=10.0.2.2
MAC=52:54:00:$(printf '%02x:%02x:%02x' $((RANDOM % 256)) $((RANDOM % 256)) $((RANDOM % 256)))
SEED=$RANDOM$RANDOM
SERIAL=cvirt-$RANDOM$RANDOM
TAP=cvlx$$
TAP=${TAP:0:15}
WORK="" NS=""

cleanup() {
    [ -n "$NS" ] && ip netns del "$NS" 2>/dev/null
    [ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT

# Percent-encodes a command for cvirt.run= (see tests/guest/linux/init).
encode() {
    python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe="/;=$|<>&-_.,:()"))' "$1"
}

# The guest's content for SEED, made here the way guest-test.sh makes it.
gen() { seq 1 4096 | sed "s/.*/cvirt disk test seed $1 line &/"; }
sum_of() { sha256sum | cut -d' ' -f1; }

# val FILE KEY: the value of the guest's KEY=VALUE line (the last one).
val() { sed -n "s/^$2=//p" "$1" | tail -n 1; }

# boot NAME RUN VMM-ARGS...: one boot, console in $WORK/NAME, status in
# $WORK/NAME.rc. cvirt-vmm runs inside the namespace so it sees the tap.
boot() {
    local name=$1 run=$2
    shift 2
    local -a wrap=()
    [ -n "$NS" ] && wrap=(ip netns exec "$NS")
    timeout "$TIMEOUT" "${wrap[@]}" "$VMM" --kernel "$KERNEL" --initrd "$INITRD" \
        --memory 256M --no-reboot "$@" \
        --append "$(cat "$CMDLINE_FILE") cvirt.run=$(encode "$run")" \
        </dev/null 2>"$WORK/$name.err" | tr -d '\r' >"$WORK/$name"
    echo "${PIPESTATUS[0]}" >"$WORK/$name.rc"
}

# booted NAME: the cases every boot shares.
booted() {
    local name=$1 rc
    rc=$(cat "$WORK/$name.rc")
    if [ "$rc" = 124 ]; then
        tap_fail "$name: guest powered off within ${TIMEOUT}s (timed out)"
    else
        check "$name: guest powered off, cvirt-vmm exited 0 (status $rc)" [ "$rc" = 0 ]
    fi
    check "$name: the guest's command ran to its end" grep -qx 'CVIRT-RUN-EXIT=0' "$WORK/$name"
    check "$name: no device was marked broken" bash -c "! grep -q 'needs a reset' '$WORK/$name.err'"
}

dump() {
    sed 's/^/# /' "$WORK/$1" | grep -v 'Command line' | tail -n 40
    sed 's/^/# stderr: /' "$WORK/$1.err"
}

# fsck_ok IMAGE LOG: e2fsck -fn finds nothing to fix (its report goes to
# LOG and, on failure, to the TAP output as comments).
fsck_ok() {
    e2fsck -fn "$1" >"$2" 2>&1 && return 0
    sed 's/^/# e2fsck: /' "$2"
    return 1
}

netns_up() {
    NS=cvirtlx-$$-$RANDOM
    ip netns add "$NS" && ip netns exec "$NS" ip tuntap add dev "$TAP" mode tap &&
        ip netns exec "$NS" ip addr add "$PEER_IP/24" dev "$TAP" &&
        ip netns exec "$NS" ip link set "$TAP" up
}

run_test() {
    WORK=$(mktemp -d --tmpdir cvirt-lxdisk.XXXXXX)
    local img=$WORK/a.ext4 ro=$WORK/b.raw want token
    if ! DISK_MB=16 "$GUEST/mk-disk.sh" "$img" >/dev/null; then
        tap_fail "mk-disk.sh builds the ext4 image"
        return
    fi
    want=$(gen "$SEED" | sum_of)
    # The read-only disk: a token then random bytes, 1 MiB.
    token="CVIRT-RO-DISK-$RANDOM$RANDOM"
    { printf '%s' "$token"; head -c $((1024 * 1024 - ${#token})) /dev/urandom; } >"$ro"
    local ro_md5 sector0
    ro_md5=$(md5sum <"$ro")
    sector0=$(head -c 512 "$ro" | sum_of)

    if ! netns_up; then
        tap_fail "a tap in a private network namespace # ip netns / ip tuntap failed"
        return
    fi
    local mount="mkdir -p /mnt; mount -t ext4 /dev/vda /mnt && cp /mnt/guest-test.sh /t.sh &&"
    boot boot1 "$mount sh /t.sh write $SEED $GUEST_IP $PEER_IP" \
        --disk "$img,format=raw,serial=$SERIAL" --disk "$ro,format=raw,readonly=on" \
        --net "tap=$TAP,mac=$MAC"
    local o=$WORK/boot1 wsum
    booted boot1
    wsum=$(val "$o" WRITE-SUM)
    check "boot1: the file written through virtio-blk has the host's sha256 ($want)" \
        [ "$wsum" = "$want" ]
    check "boot1: /mnt unmounted cleanly" [ "$(val "$o" UMOUNT-RC)" = 0 ]
    check "boot1: vda carries the serial given on --disk" [ "$(val "$o" VDA-SERIAL)" = "$SERIAL" ]
    check "boot1: vdb is read-only in the guest (blockdev --getro)" [ "$(val "$o" VDB-RO)" = 1 ]
    check "boot1: a write to the read-only vdb fails (the same dd to a file works)" \
        bash -c "[ '$(val "$o" CONTROL-WRITE-RC)' = 0 ] && [ -n '$(val "$o" VDB-WRITE-RC)' ] &&
            [ '$(val "$o" VDB-WRITE-RC)' != 0 ]"
    check "boot1: vdb's first sector reads back what the host put there" \
        [ "$(val "$o" VDB-SECTOR0-SUM)" = "$sector0" ]
    check "boot1: eth0 has the MAC given on --net" [ "$(val "$o" ETH0-MAC)" = "$MAC" ]
    check "boot1: the guest's three pings of the tap's address in the namespace are answered" \
        [ "$(val "$o" PING-REPLIES)" = 3 ]
    check "host: the read-only raw file is unchanged" [ "$(md5sum <"$ro")" = "$ro_md5" ]
    check "host: e2fsck -fn passes on the image after boot1" fsck_ok "$img" "$WORK/fsck1"
    check "host: debugfs reads the guest's file with the host's sha256" \
        [ "$(debugfs -R 'cat /data.txt' "$img" 2>/dev/null | sum_of)" = "$want" ]
    dump boot1

    # Boot 2: the disk alone; the file must have survived the power-off.
    boot boot2 "$mount sh /t.sh read" --disk "$img,format=raw"
    o=$WORK/boot2
    booted boot2
    check "boot2: the file reads back with the host's sha256 and boot1's" \
        bash -c "[ '$(val "$o" READ-SUM)' = '$want' ] && [ '$(val "$o" READ-SUM)' = '$wsum' ]"
    check "host: e2fsck -fn passes on the image after boot2" fsck_ok "$img" "$WORK/fsck2"
    dump boot2
}

if have_kvm; then
    if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
        tap_skip "needs root and iproute2 for the network namespace and tap"
    elif ! command -v mke2fs >/dev/null || ! command -v debugfs >/dev/null; then
        tap_fail "e2fsprogs (mke2fs, e2fsck, debugfs) is required"
    elif env=$("$GUEST/prepare.sh"); then
        eval "$env"
        run_test
    else
        tap_fail "building the guest kernel and initramfs (see stderr)"
    fi
fi
tap_done
