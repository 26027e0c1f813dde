#!/bin/bash
# Runs inside the VM of packaging/vmtest/run.sh (as a systemd oneshot unit).
# Install, ctl, upgrade, rollback and uninstall with systemd units; output goes to ttyS0.
set -x
healthz() { exec 3<>/dev/tcp/127.0.0.1/19001 && printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3 && head -c 300 <&3; exec 3>&-; echo; }
cd /tmp && tar -xzf /mnt/omp-0.1.0-linux-x86_64.tar.gz && cd omp-0.1.0
./bin/omp install --prefix /opt/omp --data-dir /var/lib/omp --listen 127.0.0.1:19001 --yes; echo "INSTALL rc=$?"
systemctl is-active omp.service; systemctl is-enabled omp.service
systemctl show omp.service -p User -p NRestarts -p ExecMainStatus -p ActiveState
healthz
/opt/omp/bin/omp ctl status; echo "CTL rc=$?"
ls -l /var/lib/omp
/opt/omp/bin/omp ctl restart; echo "RESTART rc=$?"; systemctl show omp.service -p NRestarts -p ActiveState -p MainPID
/opt/omp/bin/omp upgrade /mnt/omp-0.2.0-linux-x86_64.tar.gz; echo "UPGRADE rc=$?"
/opt/omp/bin/omp version; healthz
systemctl show omp.service -p ActiveState -p NRestarts
/opt/omp/bin/omp rollback; echo "ROLLBACK rc=$?"
/opt/omp/bin/omp version; healthz
journalctl -u omp.service --no-pager | tail -25
/opt/omp/bin/omp uninstall --prefix /opt/omp --yes; echo "UNINSTALL rc=$?"
systemctl status omp.service --no-pager 2>&1 | head -3; ls /var/lib/omp | head
echo OMP-VM-TEST-DONE
