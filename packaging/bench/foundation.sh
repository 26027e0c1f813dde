#!/usr/bin/env bash
# Foundation figures for the README "Performance" section: static binary size, cold start
# to the first 200 from /healthz (fresh data dir, median of N runs, includes creating the
# store and hashing the admin password), and idle RSS after start-up and once the start-up
# pages of the binary are released.
# Usage: packaging/bench/foundation.sh [BINARY] [RUNS]
set -euo pipefail
bin=${1:-target/x86_64-unknown-linux-musl/release/omp}
runs=${2:-10}
[ -x "$bin" ] || { echo "build it first: cargo build --release --target x86_64-unknown-linux-musl"; exit 1; }
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

echo "binary: $bin"
echo "size: $(stat -c %s "$bin") bytes ($(file -b "$bin" | cut -d, -f1-2))"

port_base=$((20000 + RANDOM % 20000))
starts=()
for i in $(seq 1 "$runs"); do
  port=$((port_base + i))
  d="$work/run$i"
  t0=$(date +%s%N)
  OMP_ADMIN_PASSWORD=Bench-pass-123 "$bin" serve --data-dir "$d" --listen "127.0.0.1:$port" --no-local-agent >/dev/null 2>&1 &
  pid=$!
  until curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do :; done
  t1=$(date +%s%N)
  starts+=($(( (t1 - t0) / 1000000 )))
  if [ "$i" -eq "$runs" ]; then
    # Idle RSS: let it settle, then read it.
    sleep 5
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
    echo "idle RSS after 5 s: ${rss} KiB (peak ${hwm} KiB)"
    # At 30 s the server releases its binary's start-up pages (src/memtrim.rs).
    sleep 30
    awk '/VmRSS/ {r = $2} /RssAnon/ {a = $2} /RssFile/ {f = $2}
      END {print "idle RSS after 35 s: " r " KiB (anonymous " a ", file-backed " f ")"}' "/proc/$pid/status"
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
sorted=$(printf '%s\n' "${starts[@]}" | sort -n)
median=$(echo "$sorted" | sed -n "$(( (runs + 1) / 2 ))p")
echo "cold start to first /healthz 200 (ms, $runs runs): median $median, min $(echo "$sorted" | head -1), max $(echo "$sorted" | tail -1)"
