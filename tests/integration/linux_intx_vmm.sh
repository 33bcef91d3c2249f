#!/bin/bash
# The real Linux guest on cvirt-vmm with pci=nomsi: virtio-rng and
# virtio-blk must work through PCI INTx alone. Checked from inside the
# guest: neither function has MSI vectors, each one's IRQ is the IOAPIC
# input the DSDT's _PRT gives for its slot (16 + slot % 4 for INTA#),
# /proc/interrupts shows that IO-APIC line counting for the device while
# /dev/hwrng yields bytes and /dev/vda is read, and the disk's bytes match
# the file on the host (random content made here, so nothing passes by
# accident). The same boot shows that Linux's ACPI PCI hotplug driver took
# the DSDT's hotplug slots: /sys/bus/pci/slots lists 1..31.
source "$(dirname "$0")/lib.sh"

GUEST=$CVIRT_SRC/tests/guest/linux
TIMEOUT=${CVIRT_GUEST_TIMEOUT:-240}
DISK_KIB=256

# Percent-encodes a command for cvirt.run= (see tests/guest/linux/init).
encode() {
    python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe="/;=$|<>&-_.,:()"))' "$1"
}

# The guest's line for device VENDOR:DEVICE:
#   PCIDEV <vendor>:<device> SLOT=<hex> IRQ=<n> MSI=<count> NAME=<virtioN>
pcidev() { grep -m1 "^PCIDEV $1 " "$OUT"; }
field() { sed -nE "s/.* $1=([^ ]*).*/\\1/p" <<<"$2"; }

# count TAG NAME: the interrupt count (all CPUs) on the IO-APIC line of
# virtio device NAME in the /proc/interrupts copy printed after TAG.
count() {
    awk -v tag="$1" -v name="$2" '
        $0 == tag { on = 1; next }
        /^END-/ { on = 0 }
        on && $NF == name && /IO-APIC/ {
            n = 0
            for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i
            print n
            exit
        }' "$OUT"
}

grew() { [ -n "$1" ] && [ -n "$2" ] && [ "$2" -gt "$1" ]; }

# check_device LABEL VENDOR:DEVICE BEFORE-TAG AFTER-TAG
check_device() {
    local label=$1 line slot irq msi name want before after
    line=$(pcidev "$2")
    if [ -z "$line" ]; then
        tap_fail "$label ($2) is listed in /sys/bus/pci/devices"
        return
    fi
    slot=$(field SLOT "$line")
    irq=$(field IRQ "$line")
    msi=$(field MSI "$line")
    name=$(field NAME "$line")
    want=$((16 + 16#$slot % 4))
    check "$label: no MSI/MSI-X vectors under pci=nomsi ($msi)" [ "$msi" = 0 ]
    check "$label at slot $slot uses IRQ $irq, the _PRT's GSI $want" [ "$irq" = "$want" ]
    before=$(count "$3" "$name")
    after=$(count "$4" "$name")
    check "$label: /proc/interrupts has an IO-APIC line for $name" [ -n "$before" ]
    check "$label: its IO-APIC line counted while data moved (${before:-none} -> ${after:-none})" \
        grew "$before" "$after"
}

run_test() {
    local tmp rc script disk
    tmp=$(mktemp -d)
    OUT=$tmp/console
    disk=$tmp/disk.raw
    head -c $((DISK_KIB * 1024)) /dev/urandom >"$disk"
    script="echo CMDLINE=\$(cat /proc/cmdline); for d in /sys/bus/pci/devices/*; do \
echo PCIDEV \$(cat \$d/vendor):\$(cat \$d/device) SLOT=\$(basename \$d | cut -d: -f3 | cut -d. -f1) \
IRQ=\$(cat \$d/irq) MSI=\$(ls \$d/msi_irqs 2>/dev/null | wc -l) \
NAME=\$(basename \$(ls -d \$d/virtio* 2>/dev/null | head -n1) 2>/dev/null); done; \
echo BEGIN-IRQ0; cat /proc/interrupts; echo END-IRQ0; \
echo HWRNG-BYTES=\$(head -c 256 /dev/hwrng | wc -c); \
echo BEGIN-IRQ1; cat /proc/interrupts; echo END-IRQ1; \
echo VDA-MD5=\$(head -c $((DISK_KIB * 1024)) /dev/vda | md5sum | cut -d' ' -f1); \
echo BEGIN-IRQ2; cat /proc/interrupts; echo END-IRQ2; \
echo SLOTS=\$(ls /sys/bus/pci/slots | sort -n | tr '\\n' ,)"
    timeout "$TIMEOUT" "$VMM" --kernel "$KERNEL" --initrd "$INITRD" --memory 256M \
        --no-reboot --rng --disk "$disk,format=raw" \
        --append "$(cat "$CMDLINE_FILE") pci=nomsi cvirt.run=$(encode "$script")" \
        </dev/null 2>"$OUT.err" | tr -d '\r' >"$OUT"
    rc=${PIPESTATUS[0]}
    if [ "$rc" = 124 ]; then
        tap_fail "guest powered off within ${TIMEOUT}s (timed out)"
    else
        check "guest powered off, cvirt-vmm exited 0 (status $rc)" [ "$rc" = 0 ]
    fi
    check "cvirt.run command exited 0" grep -qx 'CVIRT-RUN-EXIT=0' "$OUT"
    check "the kernel ran with pci=nomsi" grep -qE '^CMDLINE=.* pci=nomsi ' "$OUT"
    check_device "virtio-rng" 0x1af4:0x1044 BEGIN-IRQ0 BEGIN-IRQ1
    check_device "virtio-blk" 0x1af4:0x1042 BEGIN-IRQ1 BEGIN-IRQ2
    check "head -c 256 /dev/hwrng gives 256 bytes through INTx" grep -qx 'HWRNG-BYTES=256' "$OUT"
    check "the first $DISK_KIB KiB of /dev/vda match the host file" \
        grep -qx "VDA-MD5=$(md5sum <"$disk" | cut -d' ' -f1)" "$OUT"
    check "acpiphp registered hotplug slots 1..31 from the DSDT" \
        grep -qx "SLOTS=$(seq 1 31 | tr '\n' ,)" "$OUT"
    check "no device was marked broken" bash -c "! grep -q 'needs a reset' '$OUT.err'"
    grep -E '^PCIDEV|IO-APIC|^HWRNG|^VDA|^SLOTS' "$OUT" | sed 's/^/# /' | tail -n 30
    sed 's/^/# stderr: /' "$OUT.err"
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
