# Shared helpers for integration tests (sourced). Each test prints TAP.
#   plan N / ok COND DESC / skip DESC WHY / need_kvm
: "${CVIRT_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${CVIRT_BUILD:=$CVIRT_SRC/build}"
: "${CVIRT_CACHE:=$HOME/.cache/cvirt}"
VMM=$CVIRT_BUILD/src/vmm/cvirt-vmm
KIT=$CVIRT_BUILD/kit
_tap_n=0

tap_ok()   { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $*"; }
tap_fail() { _tap_n=$((_tap_n + 1)); echo "not ok $_tap_n - $*"; }
tap_skip() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n # SKIP $*"; }
# check DESC CMD...: one case, passing when CMD succeeds.
check() { local d=$1; shift; if "$@"; then tap_ok "$d"; else tap_fail "$d"; fi; }
tap_done() { echo "1..$_tap_n"; }

# KVM tests must run where /dev/kvm exists; CVIRT_REQUIRE_KVM=1 turns a
# missing /dev/kvm into a failure instead of a skip.
have_kvm() {
    if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then return 0; fi
    if [ "${CVIRT_REQUIRE_KVM:-0}" = 1 ]; then
        tap_fail "/dev/kvm is required (CVIRT_REQUIRE_KVM=1) but not usable"
    else
        tap_skip "no usable /dev/kvm"
    fi
    return 1
}

# in_private_netns SCRIPT ARGS...: the first call re-executes the test in a
# network namespace of its own (unshare -n), so bridges, taps and addresses
# it makes never touch the host's; in that child it brings up lo and returns.
# Without root there is no namespace: one failing case, and the test ends.
in_private_netns() {
    if [ -n "${CVIRT_NETNS_CHILD:-}" ]; then
        ip link set lo up
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        tap_fail "creating a network namespace needs root"
        tap_done
        exit 1
    fi
    CVIRT_NETNS_CHILD=1 exec unshare -n "$@"
}
