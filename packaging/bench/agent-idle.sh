#!/usr/bin/env bash
# Idle cost of a real `omp agent` beside Debian's prometheus-node-exporter, in one run on
# the same machine: RSS and CPU over a window, and the ratios. node_exporter is scraped
# every 15 s (as Prometheus would); the agent sends its heartbeats and its host metrics
# (every 15 s by default), and releases its start-up pages after 30 s (src/memtrim.rs).
# Usage: packaging/bench/agent-idle.sh [BINARY] [SECONDS]
set -euo pipefail
bin=${1:-target/x86_64-unknown-linux-musl/release/omp}
window=${2:-60}
[ -x "$bin" ] || { echo "build it first: cargo build --release --target x86_64-unknown-linux-musl"; exit 1; }
ne=$(command -v prometheus-node-exporter || true)
if [ -z "$ne" ]; then
  apt-get install -y -qq prometheus-node-exporter >/dev/null
  ne=$(command -v prometheus-node-exporter)
fi
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
hz=$(getconf CLK_TCK)

OMP_ADMIN_PASSWORD=Bench-pass-123 "$bin" serve --data-dir "$work/server" --listen 127.0.0.1:0 \
  --listen-addr-file "$work/addr" --no-local-agent >/dev/null 2>&1 &
pids+=($!)
until [ -s "$work/addr" ]; do sleep 0.05; done
addr=$(cat "$work/addr")
curl -fs -c "$work/cj" -H 'content-type: application/json' \
  -d '{"username":"admin","password":"Bench-pass-123"}' "http://$addr/api/v1/auth/login" > "$work/login.json"
csrf=$(sed 's/.*"csrf_token":"\([0-9a-f]*\)".*/\1/' "$work/login.json")
token=$(curl -fs -b "$work/cj" -H "x-csrf-token: $csrf" -H 'content-type: application/json' \
  -d '{"ttl_minutes":5}' "http://$addr/api/v1/hosts/enroll-tokens" | sed 's/.*"token":"\([^"]*\)".*/\1/')
"$bin" agent --server "https://$addr" --enroll-token "$token" --data-dir "$work/agent" >/dev/null 2>&1 &
agent=$!; pids+=($agent)
port=$((30000 + RANDOM % 20000))
"$ne" --web.listen-address="127.0.0.1:$port" >/dev/null 2>&1 &
nexp=$!; pids+=($nexp)
sleep 3
( while sleep 15; do curl -fs "http://127.0.0.1:$port/metrics" >/dev/null || true; done ) &
pids+=($!)
curl -fs "http://127.0.0.1:$port/metrics" >/dev/null

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
a0=$(cpu $agent); n0=$(cpu $nexp)
sleep "$window"
a1=$(cpu $agent); n1=$(cpu $nexp)
ar=$(rss $agent); nr=$(rss $nexp)
awk -v a=$((a1 - a0)) -v n=$((n1 - n0)) -v w="$window" -v hz="$hz" -v ar="$ar" -v nr="$nr" 'BEGIN {
  ac = 100 * a / hz / w; nc = 100 * n / hz / w;
  printf "window: %d s\n", w;
  printf "omp agent:          RSS %.1f MiB, CPU %.3f%% of a core\n", ar / 1024, ac;
  printf "node_exporter 1.5:  RSS %.1f MiB, CPU %.3f%% of a core (scraped every 15 s)\n", nr / 1024, nc;
  printf "ratio agent/node_exporter: RSS %.2f, CPU %s\n", ar / nr, (n > 0 ? sprintf("%.2f", a / n) : "n/a (exporter used 0 ticks)");
}'
