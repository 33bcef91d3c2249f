# Shared by the benchmarks (sourced): side-by-side rows of min/median.
: "${CVIRT_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${CVIRT_BUILD:=$CVIRT_SRC/build}"
MEASURE=$CVIRT_BUILD/bench/measure
VMM=$CVIRT_BUILD/src/vmm/cvirt-vmm

# stats V1 V2 ...: prints "MIN MEDIAN" of the numbers.
stats() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan nan"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.3f %.3f\n", v[1], m }'
}

# field KEY LINE: the value of KEY=... in a measure output line.
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

bench_header() {
    printf '| %-44s | %-21s | %-21s | %-7s |\n' "$1" "cvirt min / median" "$2 min / median" "ratio"
    printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..46})" "$(printf -- '-%.0s' {1..23})" \
        "$(printf -- '-%.0s' {1..23})" "$(printf -- '-%.0s' {1..9})"
}

# bench_row LABEL "OURS_MIN OURS_MED" "PEER_MIN PEER_MED": ratio of medians.
bench_row() {
    local label=$1 ours=($2) peer=($3)
    local ratio
    ratio=$(awk -v a="${ours[1]}" -v b="${peer[1]}" 'BEGIN {
        if (b + 0 == 0 || a == "nan" || b == "nan") print "n/a"; else printf "%.2fx", a / b }')
    printf '| %-44s | %9s / %-9s | %9s / %-9s | %-7s |\n' "$label" "${ours[0]}" "${ours[1]}" \
        "${peer[0]}" "${peer[1]}" "$ratio"
}
