#!/bin/sh
# OMP agent installer, served by the OMP server at /api/agent/v1/install.sh and run by the
# one-line command from the UI (Hosts → Add host). It downloads the agent binary from that
# same server (no internet needed), pinned to the server's key, enrolls once with the
# one-time token, then runs the agent under systemd, or in the background without systemd.
#
# Options (after `sh -s --`): --server URL --enroll-token TOKEN
# Environment: OMP_AGENT_PREFIX (default /opt/omp-agent), OMP_AGENT_DATA_DIR
# (default /var/lib/omp-agent), OMP_AGENT_FOREGROUND=1 (run in the foreground, no service),
# OMP_AGENT_BINARY (an agent binary already copied here, as SSH push does: no download).
set -eu

pin='@CURL_PIN@'
server=''
token=''
while [ $# -gt 0 ]; do
  case "$1" in
    --server) server="${2:-}"; shift 2 ;;
    --enroll-token) token="${2:-}"; shift 2 ;;
    *) echo "omp-agent install: unknown option: $1" >&2; exit 2 ;;
  esac
done
[ -n "$server" ] || { echo "omp-agent install: --server is required" >&2; exit 2; }
[ -n "$token" ] || { echo "omp-agent install: --enroll-token is required" >&2; exit 2; }
case "$server" in https://*) ;; *) echo "omp-agent install: --server must be https://" >&2; exit 2 ;; esac

prefix="${OMP_AGENT_PREFIX:-/opt/omp-agent}"
data="${OMP_AGENT_DATA_DIR:-/var/lib/omp-agent}"
bin="$prefix/bin/omp"

echo "==> checking the target"
[ "$(uname -s)" = Linux ] || { echo "omp-agent install: only Linux is supported" >&2; exit 1; }
mkdir -p -- "$prefix/bin" "$data"
chmod 700 -- "$data"

if [ -n "${OMP_AGENT_BINARY:-}" ] && [ -x "$OMP_AGENT_BINARY" ]; then
  echo "==> using the agent binary at $OMP_AGENT_BINARY"
  [ "$OMP_AGENT_BINARY" = "$bin" ] || cp -f -- "$OMP_AGENT_BINARY" "$bin"
else
  command -v curl >/dev/null 2>&1 || { echo "omp-agent install: curl is required" >&2; exit 1; }
  echo "==> downloading the agent from $server"
  tmp="$bin.download.$$"
  trap 'rm -f -- "$tmp"' EXIT
  curl -fsSk --pinnedpubkey "$pin" -H "Authorization: Enroll $token" -o "$tmp" -- "$server/api/agent/v1/binary"
  chmod 755 -- "$tmp"
  "$tmp" version >/dev/null
  mv -f -- "$tmp" "$bin"
  trap - EXIT
fi

echo "==> enrolling"
"$bin" agent --server "$server" --enroll-token "$token" --data-dir "$data" --enroll-only

if [ "${OMP_AGENT_FOREGROUND:-0}" = 1 ]; then
  echo "==> running in the foreground"
  exec "$bin" agent --server "$server" --data-dir "$data"
elif [ -d /run/systemd/system ] && [ "$(id -u)" = 0 ]; then
  echo "==> installing the systemd service omp-agent"
  cat > /etc/systemd/system/omp-agent.service <<UNIT
[Unit]
Description=OMP agent
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=$bin agent --server $server --data-dir $data
Restart=always
RestartSec=5s
# The agent runs commands and terminals for OMP users with its own rights: it stays root
# unless you change User= here, and is hardened only where that does not break them.
NoNewPrivileges=no
PrivateTmp=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectClock=yes

[Install]
WantedBy=multi-user.target
UNIT
  systemctl daemon-reload
  systemctl enable --now omp-agent.service
  echo "==> done: systemctl status omp-agent"
else
  echo "==> starting in the background (no systemd)"
  nohup "$bin" agent --server "$server" --data-dir "$data" </dev/null >"$data/agent.log" 2>&1 &
  echo "==> done: log in $data/agent.log"
fi
