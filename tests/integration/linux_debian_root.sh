#!/bin/bash
# A Debian 12 minbase root with systemd (tests/guest/linux/mk-debian-root.sh)
# booted from a virtio-blk disk by Debian's stock kernel and the initramfs
# of mk-stock-initramfs.sh, which loads virtio_pci, virtio_blk and ext4.
# The guest must reach multi-user.target (CVIRT-DEBIAN-UP), report from
# inside through cvirt.run= and power itself off, leaving a clean ext4.
#
# On QEMU with TCG everywhere: the stock kernel's guest kernel mode needs
# no KVM there, and QEMU is the oracle for the guest. On cvirt-vmm only
# where the CPU has VMX or SVM: on a KVM that emulates guest kernel mode
# (PVM) that kernel does not boot.
#
# The root image is cached. A missing one is built first only with
# CVIRT_SLOW_TESTS=1 (debootstrap: about 100 MB of downloads and 1 to 5
# minutes; the test says how long it took); without it the boots of the root
# are skipped with a line saying so.
source "$(dirname "$0")/lib.sh"

GUEST=$CVIRT_SRC/tests/guest/linux
TIMEOUT=${CVIRT_GUEST_TIMEOUT:-300}
MEM=512M
tmpdir=$(mktemp -d)
trap 'rm -rf "$tmpdir"' EXIT

# What the guest runs, percent-encoded for the kernel command line (space
# %20, '"' %22, '%' %25): one KEY=VALUE line per fact. PCT checks the
# decoding of %25 and %22 on the way in.
RUN='echo%20STATE=$(systemctl%20is-system-running%20--wait);'
RUN+='echo%20VERSION=$(cat%20/etc/debian_version);'
RUN+='echo%20PID1=$(cat%20/proc/1/comm);'
RUN+='echo%20ROOTFS=$(findmnt%20-no%20SOURCE,FSTYPE%20/|tr%20-s%20%22%20%22%20,);'
RUN+='echo%20ROOTRW=$(findmnt%20-no%20OPTIONS%20/|cut%20-d,%20-f1);'
RUN+='echo%20HOST=$(hostname);echo%20KREL=$(uname%20-r);'
RUN+='echo%20%22PCT=100%25%22;'
# The serial getty's autologin: root's login on ttyS0 in utmp, which may
# come a moment after multi-user.target.
RUN+='for%20i%20in%20$(seq%20100);do%20who|grep%20-q%20ttyS0&&break;sleep%200.1;done;'
RUN+='echo%20LOGIN=$(who|sed%20-n%20%22s/%20.*ttyS0.*//p%22)'

# has_modules ORDER NAME...: each NAME is a line of the load order ORDER.
has_modules() {
    local order=$1 m
    shift
    for m; do grep -qxF "$m" "$order" || return 1; done
}

# fsck_clean IMAGE: unmounted (ext4 clears needs_recovery only when it
# unmounts or remounts read-only) and e2fsck finds nothing to fix; the
# output of both in fsck.log.
fsck_clean() {
    dumpe2fs -h "$1" >"$tmpdir/fsck.log" 2>&1 &&
        grep -q '^Filesystem features:' "$tmpdir/fsck.log" &&
        ! grep -q '^Filesystem features:.*needs_recovery' "$tmpdir/fsck.log" &&
        e2fsck -fn "$1" >"$tmpdir/fsck.log" 2>&1
}

# same A B: A is not empty and equal to B.
same() { [ -n "$1" ] && [ "$1" = "$2" ]; }

# value KEY FILE: the value of the console line KEY=VALUE.
value() { sed -n "s/^$1=//p" "$2" | head -n 1; }

# judge NAME RC CONSOLE IMAGE: the checks of one boot.
judge() {
    local name=$1 rc=$2 out=$3 img=$4
    if [ "$rc" = 124 ]; then
        tap_fail "$name: guest powered off within ${TIMEOUT}s (timed out)"
    else
        check "$name: exited with status 0 (got $rc)" [ "$rc" = 0 ]
    fi
    # Both also end with status 0 when the guest resets under -no-reboot.
    if [ "$rc" = 0 ]; then
        check "$name: the kernel's last word is a power-down, not a restart" \
            grep -q 'reboot: Power down' "$out"
    fi
    check "$name: systemd reached multi-user.target (CVIRT-DEBIAN-UP)" \
        grep -qx 'CVIRT-DEBIAN-UP' "$out"
    check "$name: cvirt.run command exited 0" grep -qx 'CVIRT-RUN-EXIT=0' "$out"
    local v
    v=$(value STATE "$out")
    check "$name: systemctl is-system-running --wait says running (got '$v')" \
        [ "$v" = running ]
    v=$(value VERSION "$out")
    check "$name: /etc/debian_version is the image's, $want_version (got '$v')" \
        same "$v" "$want_version"
    v=$(value PID1 "$out")
    check "$name: PID 1 is systemd (got '$v')" [ "$v" = systemd ]
    v=$(value ROOTFS "$out")
    check "$name: / is /dev/vda, ext4 (got '$v')" [ "$v" = /dev/vda,ext4 ]
    v=$(value ROOTRW "$out")
    check "$name: / remounted read-write from fstab (got '$v')" [ "$v" = rw ]
    v=$(value HOST "$out")
    check "$name: hostname cvirt-debian (got '$v')" [ "$v" = cvirt-debian ]
    v=$(value KREL "$out")
    check "$name: running the stock kernel $want_krel (got '$v')" same "$v" "$want_krel"
    v=$(value PCT "$out")
    check "$name: cvirt.run= decodes %25 and %22 (got '$v')" [ "$v" = '100%' ]
    v=$(value LOGIN "$out")
    check "$name: root logged in on ttyS0 without a password (who: '$v')" [ "$v" = root ]
    # A clean shutdown unmounts the root: the journal is empty, nothing to fix.
    check "$name: the root file system is clean after the power-off (e2fsck -fn)" \
        fsck_clean "$img"
    sed 's/^/# e2fsck: /' "$tmpdir/fsck.log" | tail -n 3
    # The console helps whoever reads a failure.
    sed 's/^/# /' "$out" | tail -n 40
}

# Both boots give the guest a virtio-rng: without one, systemd-random-seed
# waits seconds for the kernel's entropy when kernel mode is emulated.
boot_qemu() {
    local img=$tmpdir/qemu.img out=$tmpdir/qemu.out rc
    cp --sparse=always "$ROOT_IMG" "$img"
    timeout "$TIMEOUT" qemu-system-x86_64 -accel tcg -M q35 -smp 2 -m $MEM \
        -nodefaults -no-user-config -display none -no-reboot \
        -serial "file:$out.raw" \
        -kernel "$STOCK_KERNEL" -initrd "$STOCK_INITRD" \
        -drive "file=$img,format=raw,if=none,id=root" \
        -device virtio-blk-pci,drive=root -device virtio-rng-pci \
        -append "console=ttyS0 panic=-1 quiet cvirt.run=$RUN" </dev/null >&2
    rc=$?
    tr -d '\r' <"$out.raw" >"$out"
    judge "QEMU TCG" "$rc" "$out" "$img"
}

boot_vmm() {
    local img=$tmpdir/vmm.img out=$tmpdir/vmm.out rc
    cp --sparse=always "$ROOT_IMG" "$img"
    timeout "$TIMEOUT" "$VMM" --kernel "$STOCK_KERNEL" --initrd "$STOCK_INITRD" \
        --memory $MEM --cpus 2 --no-reboot --disk "$img" --rng \
        --append "console=ttyS0 panic=-1 quiet cvirt.run=$RUN" \
        </dev/null 2>"$out.err" | tr -d '\r' >"$out"
    rc=${PIPESTATUS[0]}
    judge "cvirt-vmm" "$rc" "$out" "$img"
    sed 's/^/# stderr: /' "$out.err"
}

# Without a disk the initramfs goes on as the busybox guest (what
# `make run STOCK=1` gives): its init runs cvirt.run= and powers off.
boot_qemu_no_disk() {
    local out=$tmpdir/nodisk.out rc
    timeout "$TIMEOUT" qemu-system-x86_64 -accel tcg -M q35 -smp 1 -m $MEM \
        -nodefaults -no-user-config -display none -no-reboot \
        -serial "file:$out.raw" \
        -kernel "$STOCK_KERNEL" -initrd "$STOCK_INITRD" \
        -append "console=ttyS0 panic=-1 quiet cvirt.run=echo%20MODS=\$(grep%20-c%20.%20/proc/modules)" \
        </dev/null >&2
    rc=$?
    tr -d '\r' <"$out.raw" >"$out"
    check "no disk: QEMU exited 0 (status $rc)" [ "$rc" = 0 ]
    check "no disk: the busybox guest ran (CVIRT-GUEST-UP)" grep -qx CVIRT-GUEST-UP "$out"
    local want got
    want=$(grep -c . "$(dirname "$STOCK_KERNEL")/modules/order")
    got=$(value MODS "$out")
    check "no disk: every module of the initramfs loaded ($want; got '$got')" \
        [ "$got" = "$want" ]
    grep -q 'reboot: Power down' "$out" || sed 's/^/# /' "$out" | tail -n 20
}

# prepare_kernel: the stock kernel and its initramfs, from the cache or
# built now. Sets STOCK_KERNEL and STOCK_INITRD.
prepare_kernel() {
    if ! STOCK_KERNEL=$("$GUEST/stock-kernel.sh" | tail -n 1) || [ ! -f "$STOCK_KERNEL" ]; then
        tap_fail "fetching Debian's stock kernel (see stderr)"
        return 1
    fi
    local mods
    mods=$(dirname "$STOCK_KERNEL")/modules/order
    check "stock kernel fetched with virtio_pci, virtio_blk and ext4 modules" \
        has_modules "$mods" virtio_pci.ko virtio_blk.ko ext4.ko
    if ! STOCK_INITRD=$("$GUEST/mk-stock-initramfs.sh" "$STOCK_KERNEL" | tail -n 1) ||
        [ ! -f "$STOCK_INITRD" ]; then
        tap_fail "building the stock kernel's initramfs (see stderr)"
        return 1
    fi
    tap_ok "stock kernel's initramfs built"
}

# prepare_root: the root image, from the cache or built now. Sets ROOT_IMG
# and the oracles want_version and want_krel.
prepare_root() {
    local t args=() rc
    # Building the root on a fresh machine (debootstrap) took 2 to 5 minutes
    # here, depending on the load: only when asked for. Without debootstrap
    # it takes seconds.
    [ "${CVIRT_SLOW_TESTS:-0}" = 1 ] || args=(--no-debootstrap)
    t=$SECONDS
    ROOT_IMG=$(set -o pipefail; "$GUEST/mk-debian-root.sh" "${args[@]}" | tail -n 1)
    rc=$?
    if [ "$rc" = 3 ]; then
        tap_skip "no cached Debian root: building it (debootstrap, about 100 MB" \
            "of downloads, minutes) only with CVIRT_SLOW_TESTS=1, or run" \
            "tests/guest/linux/mk-debian-root.sh as root once"
        return 1
    fi
    if [ "$rc" != 0 ] && [ "$(id -u)" != 0 ]; then
        tap_skip "no cached Debian root, and building it needs root;" \
            "run tests/guest/linux/mk-debian-root.sh as root once"
        return 1
    fi
    if [ "$rc" != 0 ] || [ ! -f "$ROOT_IMG" ]; then
        tap_fail "building the Debian root image (see stderr)"
        return 1
    fi
    echo "# Debian root image: $ROOT_IMG ($((SECONDS - t))s)"
    tap_ok "Debian root image ready ($((SECONDS - t))s)"

    # The oracles: the image's own files, read without booting it.
    want_version=$(debugfs -R 'cat /etc/debian_version' "$ROOT_IMG" 2>/dev/null)
    want_krel=$(basename "$(dirname "$STOCK_KERNEL")")
    want_krel=${want_krel#linux-image-}
    check "the image holds /etc/debian_version (debugfs: '$want_version')" \
        [ -n "$want_version" ]
}

run_test() {
    local q
    for q in qemu-system-x86_64 debugfs dumpe2fs e2fsck; do
        if ! command -v $q >/dev/null; then
            tap_fail "missing tool '$q' (scripts/packages.txt lists its package)"
            return
        fi
    done
    prepare_kernel || return
    boot_qemu_no_disk
    prepare_root || return
    boot_qemu
    if ! grep -qwE 'vmx|svm' /proc/cpuinfo; then
        tap_skip "cvirt-vmm: stock kernel needs VMX/SVM; this host's KVM emulates guest kernel mode"
        return
    fi
    have_kvm || return
    boot_vmm
}

run_test
tap_done
