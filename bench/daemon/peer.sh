# shellcheck shell=bash
# The peer of bench/daemon/run (sourced): Debian's libvirtd with its QEMU
# driver, run by the benchmark itself and never as the host's service.
#
# libvirtd 9.0 as root reads /etc/libvirt/qemu.conf and keeps its state in
# /run/libvirt, /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt,
# paths fixed at build time; so it runs in a private mount namespace
# (unshare -m) where folders of this run are bound over those five. What a
# container without systemd cannot give it is turned off in qemu.conf:
#   security_driver "none"     no AppArmor or SELinux, no DAC relabelling
#   user, group "root"         no libvirt-qemu account (only
#                              libvirt-daemon-system creates it)
#   cgroup_controllers []      no cgroup placement (no systemd, no machined)
#   namespaces []              no private /dev per QEMU
#   stdio_handler "file"       QEMU's log written directly, no virtlogd
# and libvirtd resolves the default account libvirt-qemu before it reads
# qemu.conf, so the namespace also gets a passwd and group file with that
# name when the host has none. D-Bus, firewalld, dnsmasq and dmidecode are
# missing or fail; libvirtd logs that and goes on (nothing here uses
# networks). Needs: $here, $work, $LV, $LV_URI; sets LV_PID (the reaper
# below) and LVD_PID (libvirtd), or peer_why.

PEER_PACKAGES=$here/packages.txt

# Installs the packages of packages.txt that are missing, as scripts/deps.sh
# does for the project's own list.
peer_install() {
    local want missing=() p st
    mapfile -t want < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$PEER_PACKAGES" | grep -v '^$')
    for p in "${want[@]}"; do
        st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        [ "$st" = "install ok installed" ] || missing+=("$p")
    done
    [ ${#missing[@]} = 0 ] && return 0
    echo "bench/daemon: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null 2>&1 &&
          DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
              "${missing[@]}" >/dev/null 2>&1; }
}

peer_config() {
    mkdir -p "$LV"/etc "$LV"/run "$LV"/lib "$LV"/cache "$LV"/log
    cat >"$LV/etc/libvirtd.conf" <<'EOF'
auth_unix_rw = "none"
auth_unix_ro = "none"
unix_sock_rw_perms = "0700"
EOF
    cat >"$LV/etc/qemu.conf" <<'EOF'
security_driver = "none"
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
EOF
    cp /etc/passwd "$LV/passwd"
    cp /etc/group "$LV/group"
    getent passwd libvirt-qemu >/dev/null ||
        echo "libvirt-qemu:x:64055:64055::/nonexistent:/usr/sbin/nologin" >>"$LV/passwd"
    getent group libvirt-qemu >/dev/null || echo "libvirt-qemu:x:64055:" >>"$LV/group"
}

# The namespace's side: bind the run's folders, then run libvirtd under a
# reaper (below), which becomes LV_PID.
PEER_NS_SCRIPT='
set -e
d=$1
mount --make-rprivate /
for p in etc:/etc/libvirt run:/run/libvirt lib:/var/lib/libvirt \
         cache:/var/cache/libvirt log:/var/log/libvirt; do
    mkdir -p "${p#*:}"
    mount --bind "$d/${p%%:*}" "${p#*:}"
done
mount --bind "$d/passwd" /etc/passwd
mount --bind "$d/group" /etc/group
exec /usr/bin/python3 -c "$2" libvirtd --config /etc/libvirt/libvirtd.conf \
    --pid-file /run/libvirt/libvirtd.pid
'

# libvirtd starts each QEMU as a daemon, so an exited QEMU waits for
# whoever adopts it to reap it, and virsh destroy returns only once the
# process is gone. systemd reaps at once; a container's init may take
# seconds (this one: about 1.5 s), which would be charged to libvirtd. So
# libvirtd runs under a child subreaper (prctl PR_SET_CHILD_SUBREAPER) that
# reaps at once, as systemd would, and passes SIGTERM on.
PEER_REAPER='
import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGTERM))
signal.signal(signal.SIGINT, lambda *_: os.kill(pid, signal.SIGTERM))
while True:
    try:
        p, st = os.wait()
    except ChildProcessError:
        sys.exit(0)
    if p == pid:
        sys.exit(os.waitstatus_to_exitcode(st) & 0xff)
'

peer_start() {
    if [ "$(id -u)" != 0 ]; then
        peer_why="needs root (libvirtd's qemu:///system in a private mount namespace)"
        return
    fi
    command -v unshare >/dev/null || { peer_why="unshare (util-linux) is missing"; return; }
    peer_install || { peer_why="cannot install the packages of $PEER_PACKAGES"; return; }
    command -v libvirtd >/dev/null || { peer_why="no libvirtd after installing"; return; }
    command -v qemu-system-x86_64 >/dev/null || { peer_why="no qemu-system-x86_64"; return; }
    peer_config
    unshare -m bash -c "$PEER_NS_SCRIPT" peer "$LV" "$PEER_REAPER" >"$work/libvirtd.log" 2>&1 &
    LV_PID=$!
    # The first connection waits for the QEMU driver, which probes QEMU's
    # capabilities (seconds) when its cache is empty, as it is here.
    local i
    for ((i = 0; i < 60; i++)); do
        if ! kill -0 "$LV_PID" 2>/dev/null; then
            peer_why="libvirtd exited: $(grep -m1 -E 'error|Error' "$work/libvirtd.log")"
            LV_PID=
            return
        fi
        if [ -S "$LV/run/libvirt-sock" ] &&
            timeout 60 virsh -c "$LV_URI" version >/dev/null 2>&1; then
            LVD_PID=$(cat "$LV/run/libvirtd.pid" 2>/dev/null)
            [ -n "$LVD_PID" ] && [ -e "/proc/$LVD_PID" ] && return
            peer_why="libvirtd runs but its pid file $LV/run/libvirtd.pid is missing"
            return
        fi
        sleep 1
    done
    peer_why="libvirtd did not answer within a minute: $(grep -m1 -E 'error|Error' "$work/libvirtd.log")"
}

# targets START_OURS START_PEER LIST_OURS RSS_OURS (each "MIN MEDIAN"):
# the issue's three targets, judged on medians.
targets() {
    local s=($1) p=($2) l=($3) m=($4)
    awk -v s="${s[1]}" -v p="${p[1]}" -v l="${l[1]}" -v m="${m[1]}" -v n="$COUNT" 'BEGIN {
        if (p == "nan" || s + 0 == 0)
            printf "target: start of %d at least 5x faster than libvirtd+QEMU: no peer figure\n", n
        else
            printf "target: start of %d at least 5x faster than libvirtd+QEMU: %s (%.1fx)\n", n,
                (p / s >= 5) ? "met" : "NOT met", p / s
        printf "target: listAllDomains with %d under 20 ms: %s (%.3f ms)\n", n,
            (l < 20) ? "met" : "NOT met", l
        printf "target: cvirtd VmRSS under 10 MiB: %s (%.2f MiB)\n", (m < 10) ? "met" : "NOT met", m
    }'
}
