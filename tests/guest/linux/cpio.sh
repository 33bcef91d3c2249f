# Sourced by mk-initramfs.sh and mk-stock-initramfs.sh: the newc cpio
# writer and the cache's write-then-rename.  The archive is written here
# byte by byte (newc headers are ASCII), so no root is needed for device
# nodes, and it is reproducible (all times zero).

_cpio_ino=0
# cpio_entry NAME MODE RDEVMAJOR RDEVMINOR [FILE | -s TARGET]
#   One newc member on stdout: the 110-byte header, the name and the data,
#   the name and the data each padded with zeros to a multiple of 4 bytes.
cpio_entry() {
    local name=$1 mode=$2 rmaj=$3 rmin=$4 size=0 nlen
    shift 4
    case ${1:-} in
    -s) size=${#2} ;;
    '') ;;
    *) size=$(stat -L -c %s "$1") ;;
    esac
    nlen=$((${#name} + 1))
    _cpio_ino=$((_cpio_ino + 1))
    # magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
    # devminor, rdevmajor, rdevminor, namesize, check
    printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
        "$_cpio_ino" "$mode" 0 0 1 0 "$size" 0 0 "$rmaj" "$rmin" "$nlen" 0
    printf '%s\0' "$name"
    head -c $(((4 - (110 + nlen) % 4) % 4)) /dev/zero
    case ${1:-} in
    -s) printf '%s' "$2" ;;
    '') ;;
    *) cat "$1" ;;
    esac
    head -c $(((4 - size % 4) % 4)) /dev/zero
}

# cpio_publish CACHE KEY FILE COMMAND...: COMMAND's output becomes
# CACHE/KEY/FILE.  It is written into a temporary folder renamed into place
# at the end, so an interrupted run leaves no result; returns nonzero if
# the file is not there afterwards.
cpio_publish() {
    local cache=$1 key=$2 file=$3 tmp
    shift 3
    mkdir -p "$cache"
    # Leftovers of interrupted runs (not of a run still going on).
    find "$cache" -maxdepth 1 -name "*.tmp.*" -mmin +60 -exec rm -rf {} +
    tmp=$cache/$key.tmp.$$
    mkdir -p "$tmp"
    trap "rm -rf $(printf %q "$tmp")" EXIT
    "$@" >"$tmp/$file"
    trap - EXIT
    if ! mv -T "$tmp" "$cache/$key" 2>/dev/null; then
        # Someone else finished the same archive first; theirs is identical.
        rm -rf "$tmp"
    fi
    [ -f "$cache/$key/$file" ]
}
