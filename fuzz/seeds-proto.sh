# Seeds for the protocol fuzz targets, sourced by make-seeds.sh:
#   seeds_for TARGET DIR
# Each seed is built here from the protocol's documented shape (docs/qmp.md,
# docs/snapshot.md), so that the fuzzers start past the framing.

# Little-endian integers as printf escapes.
le32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) \
    $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }
le64() { le32 $(($1 & 0xffffffff)); le32 $(($1 >> 32)); }

# A state section: tag, instance, length, body (body given as escapes).
section() {
    local body_len
    body_len=$(printf "$3" | wc -c)
    printf '%s' "$1"; printf "$(le32 "$2")$(le32 "$body_len")"; printf "$3"
}

snapshot_state() {
    section CONF 0 "$(le32 2)$(le32 8)--memory$(le32 3)64K"
    section PLAT 4 "$(le32 6)serial$(le64 0)$(le64 0)"
    section CLCK 0 "$(le64 123456)"
    section PIT' ' 0 "$(le32 1)"
    section 'END ' 0 ""
}

seeds_for() {
    local t=$1 out=$2
    case $t in
    qmp)
        printf '\x00{"execute":"qmp_capabilities"}{"execute":"typed","arguments":{"n":3,"flag":true,"name":"dev0"}}' >"$out/caps"
        printf '\x03{"execute": "query-commands"}\r\n{"execute":"typed","arguments":{"n":"x"},"id":[1]}\n{"execute":"fail"} 12 ] {"execute":"query-version"}' >"$out/mixed"
        printf '\x00{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}{"exec-oob":"typed"}"str\\"ing" [1,{"a":[]}]' >"$out/odd"
        ;;
    vmm_client)
        printf '{"QMP":{"version":{"qemu":{"major":0,"minor":1,"micro":0}},"capabilities":[]}}\r\n{"return":{},"id":1}\r\n{"event":"STOP","data":{},"timestamp":{"seconds":1,"microseconds":2}}\r\n{"return":{"status":"paused","running":false},"id":2}\r\n{"error":{"class":"GenericError","desc":"no"},"id":3}\r\n' >"$out/session"
        printf '{"QMP":{}} {"return":{},"id":1}{"event":"BALLOON_CHANGE","data":{"actual":1}}{"id":2}' >"$out/tight"
        ;;
    client_reply)
        # a REPLY to serial 0, proc 273 (list all domains): no domains, ret 0
        { printf "$(be32 36)$(be32 0x20008086)$(be32 1)$(be32 273)$(be32 1)$(be32 0)$(be32 0)"
          printf "$(be32 0)$(be32 0)"; } >"$out/list"
        # an error reply to serial 1 (proc 14): a remote_error with a message
        { printf "$(be32 72)$(be32 0x20008086)$(be32 1)$(be32 14)$(be32 1)$(be32 1)$(be32 1)"
          printf "$(be32 42)$(be32 10)$(be32 1)$(be32 8)no domain$(be32 2)"
          printf '\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00'; } >"$out/error"
        ;;
    snapshot_file)
        { printf '\x01'; snapshot_state; } >"$out/state"
        { printf '\x00CVIRTSNP'; printf "$(le32 1)$(le32 4096)"; } >"$out/header"
        ;;
    migrate_stream)
        { printf '\x01'; printf "$(le32 2)$(le64 4096)$(le32 1)$(le64 8192)"
          printf 'x%.0s' $(seq 4096)
          printf "$(le32 4)"; } >"$out/pages"
        { printf '\x00CVIRTMIG'; printf "$(le32 1)$(le64 65536)$(le32 0)$(le32 4)"; } >"$out/header"
        ;;
    balloon)
        # inflate queue: one descriptor at 0x8000 of 8 bytes, two PFNs
        python3 - "$out/inflate" <<'PY'
import struct, sys
m = bytearray(0x9000)
m[0:16] = struct.pack('<QIHH', 0x8000, 8, 0, 0)
m[0x100:0x106] = struct.pack('<HHH', 0, 1, 0)
m[0x1000:0x1010] = struct.pack('<QIHH', 0x8100, 20, 0, 0)   # deflate
m[0x1100:0x1106] = struct.pack('<HHH', 0, 1, 0)
m[0x2000:0x2010] = struct.pack('<QIHH', 0x8200, 30, 0, 0)   # stats
m[0x2100:0x2106] = struct.pack('<HHH', 0, 1, 0)
m[0x3000:0x3004] = struct.pack('<I', 2)
m[0x8000:0x8008] = struct.pack('<II', 5, 0x100000)
m[0x8100:0x8114] = struct.pack('<IIIII', 5, 6, 0xffffffff, 0x100010, 7)
m[0x8200:0x821e] = struct.pack('<HQHQHQ', 0, 1, 4, 2, 99, 3)
open(sys.argv[1], 'wb').write(bytes([0b11100100, 6]) + bytes(m))
PY
        ;;
    *)
        echo "make-seeds.sh: no seeds for $t" >&2
        return 1
        ;;
    esac
}

be32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) \
    $(($1 >> 8 & 255)) $(($1 & 255)); }
