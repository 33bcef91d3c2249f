#!/bin/bash
# The guest test kit on cvirt-vmm, judged against QEMU in the same run:
# every program with 1 and 2 vCPUs runs on QEMU (the oracle, as in
# kit_qemu.sh) and on cvirt-vmm. Each cvirt-vmm case is reported, plus one
# case per run that cvirt-vmm gave the same cases and results as QEMU (a
# disagreement fails even when both say "ok" to different things).
source "$(dirname "$0")/lib.sh"
source "$CVIRT_SRC/tests/guest/kit/cases.sh"

# compare NAME PROG CPUS [extra-append]
compare() {
    kit_oracle "$2" "$3" "${4:-}"
    kit_subject "$1" "$2" "$3" "${4:-}"
}

# A guest reset under --no-reboot ends cvirt-vmm with status 3, after the
# first boot and without a second one.
no_reboot() {
    local tmp rc
    tmp=$(mktemp)
    timeout 30 "$VMM" --kernel "$KIT/reboot_kbd.elf" --append "cpus=1" --memory 64M \
        --no-reboot </dev/null >"$tmp" 2>/dev/null
    rc=$?
    check "--no-reboot: i8042 reset exits with status 3 (got $rc)" [ "$rc" = 3 ]
    check "--no-reboot: first boot ran, no second boot" \
        bash -c 'grep -q "first boot" "$1" && ! grep -q "^ok" "$1"' _ "$tmp"
    timeout 30 "$VMM" --kernel "$KIT/reboot_triple.elf" --append "cpus=1" --memory 64M \
        --no-reboot </dev/null >"$tmp" 2>&1
    rc=$?
    check "--no-reboot: triple fault exits with status 3 (got $rc)" [ "$rc" = 3 ]
    rm -f "$tmp"
}

main() {
    have_kvm || return
    if ! kit_build "$KIT"; then
        tap_fail "building the guest test kit (see stderr)"
        return
    fi
    local prog cpus
    for prog in $KIT_PROGRAMS; do
        for cpus in 1 2; do
            compare "$prog ${cpus}cpu" "$prog" "$cpus"
        done
    done
    compare "acpi 1cpu rsdp-scan" acpi 1 kit.rsdp=scan
    no_reboot
}

main
tap_done
