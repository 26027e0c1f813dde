#!/usr/bin/env bash
# Installs, upgrades, rolls back and uninstalls OMP from real tarballs under a real systemd:
# a Debian 12 VM (debootstrap + qemu, software emulation: CI machines have no usable KVM),
# the hardened unit as `omp install` writes it, results on the serial console.
# Usage: packaging/vmtest/run.sh [OMP_BINARY]   (default target/release/omp; as root)
# Needs: debootstrap, qemu-system-x86 (--no-install-recommends), e2fsprogs. Takes ~5 min
# (the Debian bootstrap is cached in $VM_DIR, default /var/tmp/omp-vmtest).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-target/release/omp}
vm=${VM_DIR:-/var/tmp/omp-vmtest}
mkdir -p "$vm/share"
if [ ! -x "$vm/rootfs/bin/systemctl" ]; then
  debootstrap --variant=minbase --include=systemd,systemd-sysv,udev,passwd,linux-image-amd64,kmod,procps \
    bookworm "$vm/rootfs" http://deb.debian.org/debian > "$vm/debootstrap.log"
fi
r=$vm/rootfs
echo omp-vm > "$r/etc/hostname"
printf '/dev/vda / ext4 defaults 0 1\n/dev/vdb /mnt ext4 ro 0 0\n' > "$r/etc/fstab"
# The serial getty would hang up the console the test writes to.
ln -sf /dev/null "$r/etc/systemd/system/serial-getty@ttyS0.service"
ln -sf /dev/null "$r/etc/systemd/system/getty@tty1.service"
cat > "$r/etc/systemd/system/omp-vmtest.service" <<'UNIT'
[Unit]
Description=OMP install/upgrade test under systemd
After=multi-user.target mnt.mount
Requires=mnt.mount

[Service]
Type=oneshot
TimeoutStartSec=infinity
ExecStart=/mnt/guest-test.sh
ExecStartPost=/bin/systemctl poweroff --no-block
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
UNIT
ln -sf /etc/systemd/system/omp-vmtest.service "$r/etc/systemd/system/multi-user.target.wants/omp-vmtest.service"
rm -f "$vm"/share/*.tar.gz
bash packaging/build.sh --binary "$bin" --version 0.1.0 --out "$vm/share" >/dev/null
bash packaging/build.sh --binary "$bin" --version 0.2.0 --out "$vm/share" >/dev/null
cp packaging/vmtest/guest-test.sh "$vm/share/"
rm -f "$vm/root.img" "$vm/share.img"
truncate -s 2G "$vm/root.img" && mkfs.ext4 -q -d "$r" "$vm/root.img"
truncate -s 64M "$vm/share.img" && mkfs.ext4 -q -d "$vm/share" "$vm/share.img"
kernel=$(ls "$r"/boot/vmlinuz-* | tail -1)
initrd=$(ls "$r"/boot/initrd.img-* | tail -1)
timeout 1500 qemu-system-x86_64 -accel tcg,thread=multi -cpu qemu64 -m 1536 -smp 2 -nographic -no-reboot \
  -kernel "$kernel" -initrd "$initrd" -append "root=/dev/vda rw console=ttyS0" \
  -drive file="$vm/root.img",format=raw,if=virtio \
  -drive file="$vm/share.img",format=raw,if=virtio,readonly=on -nic none > "$vm/console.log" 2>&1 || true
grep -a -E 'rc=|^active|^enabled|^User=|^NRestarts|^ActiveState|x-omp-version|^omp [0-9]|OMP-VM-TEST-DONE' "$vm/console.log"
for want in 'INSTALL rc=0' 'UPGRADE rc=0' 'ROLLBACK rc=0' 'UNINSTALL rc=0' 'User=omp' 'x-omp-version: 0.2.0' 'OMP-VM-TEST-DONE'; do
  grep -a -q "$want" "$vm/console.log" || { echo "vmtest: missing '$want' (see $vm/console.log)"; exit 1; }
done
echo "vmtest: install, ctl, upgrade, rollback, uninstall under systemd passed"
