#!/bin/bash
# The real Linux guest on cvirt-vmm with --rng and --vconsole, in one boot,
# checked from inside: the virtio PCI functions are listed in sysfs with
# MSI-X in use, /dev/hwrng yields 64 bytes from virtio-rng, and hvc0
# carries a line each way to a peer on the host end of the console socket.
# The lines carry random tokens made here, so nothing can pass by echo.
source "$(dirname "$0")/lib.sh"

GUEST=$CVIRT_SRC/tests/guest/linux
TIMEOUT=${CVIRT_GUEST_TIMEOUT:-240}

# Percent-encodes a command for cvirt.run= (see tests/guest/linux/init).
encode() {
    python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe="/;=$|<>&-_.,:()"))' "$1"
}

# The host end of hvc0: connects, waits for the guest's line, answers,
# then records everything until cvirt-vmm closes the socket.
peer() {
    python3 - "$@" <<'EOF'
import socket, sys, time
path, expect, reply, out = sys.argv[1:5]
deadline = time.time() + float(sys.argv[5])
s = socket.socket(socket.AF_UNIX)
while True:
    try:
        s.connect(path)
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("no console socket at " + path)
        time.sleep(0.1)
buf = b""
replied = False
s.settimeout(1)
while time.time() < deadline:
    try:
        d = s.recv(4096)
    except socket.timeout:
        continue
    if not d:
        break
    buf += d
    if not replied and expect.encode() in buf:
        s.sendall(reply.encode() + b"\n")
        replied = True
open(out, "wb").write(buf)
EOF
}

run_test() {
    local tmp out rc
    tmp=$(mktemp -d)
    out=$tmp/console
    local sock=$tmp/hvc.sock
    local up="GUEST-TO-HOST-$RANDOM$RANDOM" down="HOST-TO-GUEST-$RANDOM$RANDOM"
    local script
    script="for d in /sys/bus/pci/devices/*; do echo PCIDEV \$(cat \$d/vendor):\$(cat \$d/device) \
MODES=\$(cat \$d/msi_irqs/* 2>/dev/null | sort -u | tr '\\n' ,); done; \
echo HWRNG-BYTES=\$(head -c 64 /dev/hwrng | wc -c); \
echo HWRNG-SOURCE=\$(cat /sys/class/misc/hw_random/rng_current); \
exec 3<>/dev/hvc0; stty -F /dev/hvc0 raw -echo; echo $up >&3; \
read -t 60 -r l <&3; echo HVC-GOT=\$l"
    peer "$sock" "$up" "$down" "$tmp/peer" "$TIMEOUT" 2>"$tmp/peer.err" &
    local peer_pid=$!
    timeout "$TIMEOUT" "$VMM" --kernel "$KERNEL" --initrd "$INITRD" --memory 256M \
        --no-reboot --rng --vconsole "socket=$sock" \
        --append "$(cat "$CMDLINE_FILE") cvirt.run=$(encode "$script")" \
        </dev/null 2>"$out.err" | tr -d '\r' >"$out"
    rc=${PIPESTATUS[0]}
    wait "$peer_pid"
    if [ "$rc" = 124 ]; then
        tap_fail "guest powered off within ${TIMEOUT}s (timed out)"
    else
        check "guest powered off, cvirt-vmm exited 0 (status $rc)" [ "$rc" = 0 ]
    fi
    check "cvirt.run command exited 0" grep -qx 'CVIRT-RUN-EXIT=0' "$out"
    check "virtio-rng (1af4:1044) in /sys/bus/pci/devices with MSI-X" \
        grep -qx 'PCIDEV 0x1af4:0x1044 MODES=msix,' "$out"
    check "virtio-console (1af4:1043) in /sys/bus/pci/devices with MSI-X" \
        grep -qx 'PCIDEV 0x1af4:0x1043 MODES=msix,' "$out"
    check "head -c 64 /dev/hwrng gives 64 bytes" grep -qx 'HWRNG-BYTES=64' "$out"
    check "the hwrng source is virtio-rng" grep -q '^HWRNG-SOURCE=virtio_rng' "$out"
    check "a guest line written to hvc0 reached the host socket" \
        grep -q "$up" "$tmp/peer"
    check "a host line sent on the socket was read from hvc0 in the guest" \
        grep -qx "HVC-GOT=$down" "$out"
    check "no device was marked broken" bash -c "! grep -q 'needs a reset' '$out.err'"
    check "the console socket is gone after exit" [ ! -e "$sock" ]
    sed 's/^/# /' "$out" | grep -v 'Command line' | tail -n 30
    sed 's/^/# stderr: /' "$out.err" "$tmp/peer.err"
    rm -rf "$tmp"
}

if have_kvm; then
    if env=$("$GUEST/prepare.sh"); then
        eval "$env"
        run_test
    else
        tap_fail "building the guest kernel and initramfs (see stderr)"
    fi
fi
tap_done
