#!/bin/bash
# The domain XML cvirt formats is libvirt's: every expected output in
# tests/data/domxml (which test_domain_conf proves is exactly what the
# formatter writes) passes libvirt's own schema, through virt-xml-validate
# from Debian's libvirt-clients; so do the inputs taken from libvirt's
# documentation and from virt-install.
source "$(dirname "$0")/lib.sh"
DATA=$CVIRT_SRC/tests/data/domxml

if ! command -v virt-xml-validate >/dev/null; then
    tap_fail "virt-xml-validate not found (libvirt-clients, scripts/packages.txt)"
    tap_done
    exit 0
fi

validate() {
    local out
    if out=$(virt-xml-validate "$1" domain 2>&1); then
        return 0
    fi
    echo "$out" | head -5 | sed 's/^/# /'
    return 1
}

n=0
for f in "$DATA"/*.out.xml; do
    [ -e "$f" ] || continue
    n=$((n + 1))
    check "libvirt's schema accepts $(basename "$f")" validate "$f"
done
# The golden set must not quietly shrink to nothing.
check "golden outputs found ($n)" test "$n" -ge 10

for f in "$DATA"/docs-*.xml "$DATA"/virt-install-*.xml; do
    case $f in *.out.xml) continue ;; esac
    check "libvirt's schema accepts input $(basename "$f")" validate "$f"
done
tap_done
