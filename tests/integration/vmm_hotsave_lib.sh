# Sourced by the tests that move a VM with a hot-added disk (vmm_hotsave.sh,
# daemon_hotsave.sh): the real Linux guest's side. Not a test itself (not
# executable).
#
# guest_script TOKEN: the guest waits for /dev/vdb, prints VDB-PCI=its PCI
# address, writes "TOKEN\n" repeated (1 MiB) at 1 MiB and prints WROTE;
# then it polls sector 8 until it reads "GO-" and the first 9 characters
# of TOKEN, which the host writes only once the VM runs in its new process
# (so what it reads after that went through the moved disk), prints
# GOT-MARK=polls, AFTER-PCI=the address again and AFTER-SHA=the sha256 of
# the 1 MiB at 1 MiB, and waits for vdb to go (VDB-GONE or
# VDB-STILL-THERE). Waits are bounded so that a broken monitor ends it.

# Percent-encodes a command for cvirt.run= (see tests/guest/linux/init).
encode() {
    python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe="/;=$|<>&-_.,:()"))' "$1"
}

# whole_lines FILE: FILE's complete lines, without CRs. The guest's serial
# port sends a line a few bytes at a time, so a copy of the console may
# end in the start of a line whose end is yet to come (half a sha256 is
# not the guest's answer).
whole_lines() {
    python3 -c 'import sys
d = open(sys.argv[1], "rb").read().replace(b"\r", b"")
sys.stdout.buffer.write(d[:d.rfind(b"\n") + 1])' "$1" 2>/dev/null
}
# console_value FILE KEY: the value of KEY= on a whole line of FILE,
# waiting up to TIMEOUT seconds for it.
console_value() {
    local i
    for ((i = 0; i < TIMEOUT * 5; i++)); do
        if whole_lines "$1" | grep -q "^$2"; then
            whole_lines "$1" | sed -n "s/^$2=\{0,1\}//p" | head -1
            return 0
        fi
        sleep 0.2
    done
    return 1
}
console_has() { console_value "$@" >/dev/null; }

# The guest's side (bounded waits, so a broken monitor ends the run).
guest_script() {
    local token=$1
    cat <<EOF
echo WAITING-VDB; i=0; while [ ! -e /sys/block/vdb ] && [ \$i -lt 1500 ]; do sleep 0.2; i=\$((i+1)); done;
[ -e /sys/block/vdb ] || { echo VDB-NEVER-CAME; exit 1; };
while [ ! -b /dev/vdb ]; do sleep 0.1; done;
echo VDB-PCI=\$(basename \$(dirname \$(readlink -f /sys/block/vdb/device)));
yes $token | head -c 1048576 >/tmp/pat;
dd if=/tmp/pat of=/dev/vdb bs=65536 seek=16 conv=fsync 2>/dev/null;
echo WROTE;
i=0; while [ "\$(echo 3 >/proc/sys/vm/drop_caches; dd if=/dev/vdb bs=512 skip=8 count=1 2>/dev/null | head -c 12)" != GO-${token:0:9} ] && [ \$i -lt 3000 ]; do sleep 0.2; i=\$((i+1)); done;
echo GOT-MARK=\$i;
echo AFTER-PCI=\$(basename \$(dirname \$(readlink -f /sys/block/vdb/device)));
echo 3 >/proc/sys/vm/drop_caches;
echo AFTER-SHA=\$(dd if=/dev/vdb bs=65536 skip=16 count=16 2>/dev/null | sha256sum | cut -d' ' -f1);
i=0; while [ -e /sys/block/vdb ] && [ \$i -lt 1500 ]; do sleep 0.2; i=\$((i+1)); done;
[ -e /sys/block/vdb ] && echo VDB-STILL-THERE || echo VDB-GONE
EOF
}

