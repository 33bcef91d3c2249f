# Shared setup for the cvirt-img tests (sourced after lib.sh).
IMG=$CVIRT_BUILD/src/tools/cvirt-img
if [ ! -x "$IMG" ]; then
    tap_fail "cvirt-img not built at $IMG"
    tap_done
    exit 1
fi
if ! command -v qemu-img >/dev/null; then
    tap_fail "qemu-img (the oracle) is not installed"
    tap_done
    exit 1
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/cvirt-img.XXXXXX")
trap 'rm -rf "$T"' EXIT

# mixed_raw FILE SIZE_MB: random, zero, repeated-pattern and text regions.
mixed_raw() {
    python3 - "$1" "$2" <<'PY'
import os, random, sys
path, mb = sys.argv[1], int(sys.argv[2])
rnd = random.Random(1234)
size = mb << 20
with open(path, "wb") as f:
    f.truncate(size)
    off = 0
    while off < size:
        n = min(size - off, rnd.choice([4096, 65536, 300000, 1 << 20]))
        kind = rnd.randrange(4)
        if kind == 0:
            f.seek(off); f.write(rnd.randbytes(n))
        elif kind == 1:
            f.seek(off); f.write((b"cvirt-img " * (n // 10 + 1))[:n])
        elif kind == 2:
            f.seek(off); f.write(bytes([rnd.randrange(1, 256)]) * n)
        off += n
PY
}

# json_same A B KEYS...: both JSON documents agree on the given keys
# (dotted paths), reporting the first difference.
json_same() {
    python3 - "$@" <<'PY'
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
if isinstance(a, list) != isinstance(b, list):
    sys.exit("shape differs")
pairs = list(zip(a, b)) if isinstance(a, list) else [(a, b)]
if isinstance(a, list) and len(a) != len(b):
    sys.exit("lengths differ: %d vs %d" % (len(a), len(b)))
for x, y in pairs:
    for k in sys.argv[3:]:
        vx, vy = x, y
        for part in k.split("."):
            vx = vx.get(part) if isinstance(vx, dict) else None
            vy = vy.get(part) if isinstance(vy, dict) else None
        if vx != vy:
            sys.exit("%s: %r != %r" % (k, vx, vy))
PY
}
