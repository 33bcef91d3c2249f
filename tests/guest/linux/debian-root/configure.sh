#!/bin/bash
# Configures the Debian tree DIR made by debootstrap for the test guest,
# without chroot: only files written and links made, as systemctl enable
# would make them.
#
#   configure.sh DIR
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
root=${1:?usage: configure.sh DIR}
[ -x "$root/sbin/init" ] || { echo "configure.sh: $root has no /sbin/init" >&2; exit 1; }

echo cvirt-debian >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tcvirt-debian\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
    >"$root/etc/hosts"
# The initramfs mounts the disk read-only; systemd-remount-fs applies this.
# No fsck at boot: the image is made fresh and copied for every boot.
printf '/dev/vda\t/\text4\trw,errors=remount-ro\t0\t0\n' >"$root/etc/fstab"

# Root without a password (PAM's pam_unix has nullok in Debian).
sed -i 's/^root:[^:]*:/root::/' "$root/etc/shadow"

# Each image its own machine id. A filled-in id also means systemd does not
# treat the boot as the first one, whose systemd-firstboot asks questions on
# the console.
od -A n -N 16 -t x1 /dev/urandom | tr -d ' \n' >"$root/etc/machine-id"
echo >>"$root/etc/machine-id"

sysd=$root/etc/systemd/system
mkdir -p "$sysd/serial-getty@ttyS0.service.d" "$sysd/multi-user.target.wants"
install -m 644 "$HERE/autologin.conf" "$sysd/serial-getty@ttyS0.service.d/autologin.conf"
install -m 644 "$HERE/cvirt-debian-up.service" "$sysd/cvirt-debian-up.service"
ln -sfn /etc/systemd/system/cvirt-debian-up.service \
    "$sysd/multi-user.target.wants/cvirt-debian-up.service"
# A scan for old e2scrub snapshots (there are none): seconds of boot when
# the guest's kernel mode is emulated.
ln -sfn /dev/null "$sysd/e2scrub_reap.service"
install -m 755 "$HERE/cvirt-debian-up" "$root/usr/local/sbin/cvirt-debian-up"

# Nothing reads the downloaded package lists or the documentation.
rm -rf "$root"/var/lib/apt/lists/*_Packages "$root"/usr/share/doc/* \
    "$root"/usr/share/man/* "$root"/usr/share/info/*
