#!/usr/bin/env bash
# Bytes per sample on disk for real node_exporter data, OMP and Prometheus side by side.
#
# 1. Capture: TARGETS real prometheus-node-exporter processes on loopback scraped every 15 s
#    for SCRAPES rounds (125 = 31 min: every series gets one full 120-sample chunk), written
#    as OpenMetrics with timestamps — or reuse FILE from an earlier run.
# 2. The same file stored by both: `omp bench tsdb-file` (segments: chunks + index records,
#    every chunk closed and written) and `promtool tsdb create-blocks-from openmetrics`
#    (block chunks + index).
#
# Needs: prometheus-node-exporter, promtool (Debian's prometheus), python3.
# Usage: packaging/bench/node-bytes.sh [FILE]   (env: TARGETS SCRAPES)
set -euo pipefail
cd "$(dirname "$0")/../.."
TARGETS=${TARGETS:-4}
SCRAPES=${SCRAPES:-125}
MUSL=target/x86_64-unknown-linux-musl/release/omp
if [ -z "${OMP:-}" ]; then
  if [ -x "$MUSL" ]; then OMP=$MUSL; else OMP=target/release/omp; fi
fi
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

FILE=${1:-}
if [ -z "$FILE" ]; then
  FILE=node-capture.om
  PORTS=()
  for i in $(seq "$TARGETS"); do
    prometheus-node-exporter --web.listen-address=127.0.0.1:0 >"$WORK/ne$i.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do grep -q 'Listening on' "$WORK/ne$i.log" && break; sleep 0.1; done
    PORTS+=("$(grep -m1 'Listening on' "$WORK/ne$i.log" | sed 's/.*address=127.0.0.1://')")
  done
  echo "capturing $TARGETS node exporters every 15 s, $SCRAPES rounds, into $FILE"
  python3 - "$SCRAPES" "$FILE" "${PORTS[@]}" <<'PY'
import sys, time, urllib.request
n, path, ports = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
with open(path, 'w') as out:
    for _ in range(n):
        t0 = time.time()
        for p in ports:
            body = urllib.request.urlopen(f'http://127.0.0.1:{p}/metrics', timeout=5).read().decode()
            ts = time.time()
            for l in body.splitlines():
                if not l or l.startswith('#'):
                    continue
                series, v = l.rsplit(' ', 1)
                inst = f'instance="127.0.0.1:{p}"'
                if '{' in series:
                    name, rest = series.split('{', 1)
                    series = f'{name}{{{inst},{rest}'
                else:
                    series = f'{series}{{{inst}}}'
                out.write(f'{series} {v} {ts:.3f}\n')
        time.sleep(max(0, 15 - (time.time() - t0)))
    out.write('# EOF\n')
PY
fi

echo "omp:        $("$OMP" bench tsdb-file "$FILE")"
promtool tsdb create-blocks-from openmetrics "$FILE" "$WORK/prom" >/dev/null
python3 - "$WORK/prom" "$FILE" <<'PY'
import os, sys
root, path = sys.argv[1], sys.argv[2]
samples = sum(1 for l in open(path) if l and not l.startswith('#'))
chunks = index = 0
for b in os.listdir(root):
    d = os.path.join(root, b)
    if not os.path.isdir(os.path.join(d, 'chunks')):
        continue
    chunks += sum(os.path.getsize(os.path.join(d, 'chunks', f)) for f in os.listdir(os.path.join(d, 'chunks')))
    index += os.path.getsize(os.path.join(d, 'index'))
print(f"prometheus: {samples} samples: {chunks} bytes of chunks + {index} of index, "
      f"{chunks / samples:.3f} bytes/sample (chunks), {(chunks + index) / samples:.3f} with the index")
PY
