# Sourced by integration tests: runs kit programs and turns their TAP output
# into cases a test script can report, so every harness judges a run the
# same way (QEMU as the oracle, cvirt-vmm as the subject).
#
#   KIT_PROGRAMS            the programs, in the order tests run them
#   KIT_VIRTIO_PROGRAMS     the PCI and virtio programs
#   kit_build OUT           builds every program into OUT (absolute)
#   kit_run MODE ELF CPUS [extra-append]
#       runs one program through run.sh and sets
#         KIT_CONSOLE   the serial output (CR stripped)
#         KIT_STDERR    the emulator's or monitor's stderr
#         KIT_STATUS    run.sh's exit status (124: timed out)
#         KIT_CASES     one line per TAP case: "ok<TAB>desc" or
#                       "not ok<TAB>desc<TAB>detail"
#         KIT_VERDICT   "ok" or "not ok"  for the run as a whole: the guest
#                       printed one plan, exactly that many cases, no
#                       "Bail out!", and powered itself off (status 0)
#         KIT_WHY       why the run as a whole failed
#   (KIT_VERDICT does not look at the cases: a caller reports those apart.)

KIT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KIT_PROGRAMS="acpi smp rtc timer poweroff reboot_kbd reboot_triple"
KIT_VIRTIO_PROGRAMS="pci virtio_rng virtio_blk virtio_net virtio_console"

kit_build() {
    make -s -C "$KIT_DIR" OUT="$1" >&2
}

kit_run() {
    local outf errf
    outf=$(mktemp)
    errf=$(mktemp)
    "$KIT_DIR/run.sh" "$@" >"$outf" 2>"$errf"
    KIT_STATUS=$?
    KIT_CONSOLE=$(tr -d '\r' <"$outf")
    KIT_STDERR=$(cat "$errf")
    rm -f "$outf" "$errf"
    KIT_CASES=""
    local line plan="" nplans=0 ncases=0 bail="" re='^(not )?ok [0-9]+ - ([^#]*)( # (.*))?$'
    while IFS= read -r line; do
        if [[ $line =~ ^1\.\.([0-9]+)$ ]]; then
            plan=${BASH_REMATCH[1]}
            nplans=$((nplans + 1))
        elif [[ $line =~ $re ]]; then
            local desc=${BASH_REMATCH[2]%% }
            ncases=$((ncases + 1))
            if [ -n "${BASH_REMATCH[1]}" ]; then
                KIT_CASES+=$'not ok\t'"$desc"$'\t'"${BASH_REMATCH[4]}"$'\n'
            else
                KIT_CASES+=$'ok\t'"$desc"$'\n'
            fi
        elif [[ $line == "Bail out!"* ]]; then
            bail=$line
        fi
    done <<<"$KIT_CONSOLE"
    KIT_CASES=${KIT_CASES%$'\n'}
    KIT_VERDICT="not ok"
    if [ "$KIT_STATUS" = 124 ] || [ "$KIT_STATUS" = 137 ]; then
        KIT_WHY="timed out: the guest hung or never powered off"
    elif [ "$KIT_STATUS" != 0 ]; then
        KIT_WHY="exit status $KIT_STATUS instead of a guest power-off"
    elif [ -n "$bail" ]; then
        KIT_WHY=$bail
    elif [ "$nplans" != 1 ]; then
        KIT_WHY="$nplans TAP plans printed, expected one"
    elif [ "$ncases" != "$plan" ]; then
        KIT_WHY="$ncases cases printed, $plan planned"
    else
        KIT_VERDICT="ok"
        KIT_WHY=""
    fi
}

# The functions below report through tests/integration/lib.sh (tap_ok,
# tap_fail), which the integration tests source before this file.

# kit_report NAME: the last run's cases as TAP cases, plus one for the run
# as a whole; the console goes to the log as comments when anything failed.
kit_report() {
    local name=$1 status desc detail bad=0
    while IFS=$'\t' read -r status desc detail; do
        [ -z "$status" ] && continue
        if [ "$status" = ok ]; then
            tap_ok "$name: $desc"
        else
            tap_fail "$name: $desc # $detail"
            bad=1
        fi
    done <<<"$KIT_CASES"
    if [ "$KIT_VERDICT" = ok ]; then
        tap_ok "$name: powered off with every planned case reported"
    else
        tap_fail "$name: powered off with every planned case reported # $KIT_WHY"
        bad=1
    fi
    if [ "$bad" = 1 ]; then
        sed 's/^/#   /' <<<"$KIT_CONSOLE"
        [ -n "$KIT_STDERR" ] && sed 's/^/#   stderr: /' <<<"$KIT_STDERR"
    fi
}

# Case lines without their details, sorted: "ok<TAB>desc" / "not ok<TAB>desc".
kit_summary() { cut -f1,2 <<<"$1" | sort; }

# kit_oracle PROG CPUS [extra-append]: the QEMU run that judges the next
# kit_subject (extra QEMU arguments in CVIRT_KIT_QEMU_ARGS).
kit_oracle() {
    kit_run qemu "$KIT/$1.elf" "$2" ${3:+"$3"}
    KIT_Q_VERDICT=$KIT_VERDICT
    KIT_Q_SUM=$(kit_summary "$KIT_CASES")
    KIT_Q_CONSOLE=$KIT_CONSOLE
}

# kit_subject NAME PROG CPUS [extra-append]: the same program on cvirt-vmm
# (extra arguments in CVIRT_KIT_VMM_ARGS), reported, then one case that it
# gave the same cases and results as the last kit_oracle run.
kit_subject() {
    local name=$1 v_sum
    kit_run vmm "$KIT/$2.elf" "$3" ${4:+"$4"}
    kit_report "$name"
    v_sum=$(kit_summary "$KIT_CASES")
    if [ "$KIT_Q_VERDICT" != ok ] || grep -q '^not ok' <<<"$KIT_Q_SUM"; then
        tap_fail "$name: QEMU, the oracle, passes this program # the kit is not trusted here"
        sed 's/^/#   qemu: /' <<<"$KIT_Q_CONSOLE"
    elif [ "$KIT_Q_SUM" = "$v_sum" ] && [ "$KIT_VERDICT" = "$KIT_Q_VERDICT" ]; then
        tap_ok "$name: same cases and results as QEMU"
    else
        tap_fail "$name: same cases and results as QEMU"
        diff <(echo "$KIT_Q_SUM") <(echo "$v_sum") | sed 's/^/#   /'
    fi
}
