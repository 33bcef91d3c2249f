# Sourced after lib.sh by the tests whose QMP client (a python3 script on
# tests/integration/qmp.py) prints "PASS desc" / "FAIL desc" lines.

# qmp_report [NAME [WHO]]: each PASS/FAIL line on stdin becomes one TAP
# case, prefixed "NAME: " when NAME is given; other lines become comments.
# A client that stops on an exception or reports nothing is a failure,
# never a silent pass; WHO names it in that message (default: the QMP
# client).
qmp_report() {
    local pre=${1:+$1: } who=${2:-the QMP client} line n=0
    while IFS= read -r line; do
        case $line in
        PASS\ *) tap_ok "$pre${line#PASS }"; n=$((n + 1)) ;;
        FAIL\ *) tap_fail "$pre${line#FAIL }"; n=$((n + 1)) ;;
        Traceback*) tap_fail "${pre}$who stopped on an exception"; n=$((n + 1)) ;;
        *) echo "# $line" ;;
        esac
    done
    [ $n -gt 0 ] || tap_fail "${pre}$who reported nothing"
}
