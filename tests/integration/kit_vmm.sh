#!/bin/bash
# The guest test kit on cvirt-vmm, judged against QEMU in the same run:
# every program with 1 and 2 vCPUs runs on QEMU (the oracle, as in
# kit_qemu.sh) and on cvirt-vmm. Each cvirt-vmm case is reported, plus one
# case per run that cvirt-vmm gave the same cases and results as QEMU (a
# disagreement fails even when both say "ok" to different things).
source "$(dirname "$0")/lib.sh"
source "$CVIRT_SRC/tests/guest/kit/cases.sh"

# Case lines without their details: "ok<TAB>desc" / "not ok<TAB>desc".
summary() { cut -f1,2 <<<"$1" | sort; }

report_vmm() {
    local name=$1 status desc detail
    while IFS=$'\t' read -r status desc detail; do
        [ -z "$status" ] && continue
        if [ "$status" = ok ]; then tap_ok "$name: $desc"; else tap_fail "$name: $desc # $detail"; fi
    done <<<"$KIT_CASES"
    if [ "$KIT_VERDICT" = ok ]; then
        tap_ok "$name: powered off with every planned case reported"
    else
        tap_fail "$name: powered off with every planned case reported # $KIT_WHY"
        sed 's/^/#   /' <<<"$KIT_CONSOLE"
        [ -n "$KIT_STDERR" ] && sed 's/^/#   stderr: /' <<<"$KIT_STDERR"
    fi
}

# compare NAME PROG CPUS [extra-append]
compare() {
    local name=$1 prog=$2 cpus=$3 extra=${4:-}
    kit_run qemu "$KIT/$prog.elf" "$cpus" $extra
    local q_sum q_verdict=$KIT_VERDICT
    q_sum=$(summary "$KIT_CASES")
    kit_run vmm "$KIT/$prog.elf" "$cpus" $extra
    report_vmm "$name"
    local v_sum
    v_sum=$(summary "$KIT_CASES")
    if [ "$q_verdict" != ok ] || grep -q '^not ok' <<<"$q_sum"; then
        tap_fail "$name: QEMU, the oracle, passes this program # the kit is not trusted here"
    elif [ "$q_sum" = "$v_sum" ] && [ "$KIT_VERDICT" = "$q_verdict" ]; then
        tap_ok "$name: same cases and results as QEMU"
    else
        tap_fail "$name: same cases and results as QEMU"
        diff <(echo "$q_sum") <(echo "$v_sum") | sed 's/^/#   /'
    fi
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
