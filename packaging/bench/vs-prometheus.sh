#!/usr/bin/env bash
# Side by side in one run: Debian's prometheus (2.42) and OMP (release build) on the same
# scrape load and the same backfilled data, with the issue's targets (CPU ≤ 1/3 of
# Prometheus's, RSS ≤ 1/5, query latency ≤ 1/2, identical results).
#
# 1. Scrape load: TARGETS real prometheus-node-exporter processes on loopback, scraped every
#    15 s by both for LOAD_SECS; CPU seconds (utime + stime from /proc/PID/stat) spent during
#    that time and RSS at its end (VmRSS) of each server.
# 2. Query data: SERIES counters × HOURS at 15 s, one OpenMetrics file backfilled into both
#    (promtool tsdb create-blocks-from openmetrics; omp tsdb import), servers restarted.
# 3. Queries: each query_range RUNS times against both (median wall time from curl), and the
#    answers compared (same series, timestamps and values as printed).
#
# Needs: prometheus, promtool, prometheus-node-exporter, curl, python3 (Debian packages).
# Usage: packaging/bench/vs-prometheus.sh   (env: TARGETS LOAD_SECS SERIES HOURS RUNS)
set -euo pipefail
cd "$(dirname "$0")/../.."

TARGETS=${TARGETS:-4}
LOAD_SECS=${LOAD_SECS:-180}
SERIES=${SERIES:-1000}
HOURS=${HOURS:-24}
RUNS=${RUNS:-5}
# The binary that ships (static musl) when built, else the host build.
MUSL=target/x86_64-unknown-linux-musl/release/omp
if [ -z "${OMP:-}" ]; then
  if [ -x "$MUSL" ]; then OMP=$MUSL; else OMP=target/release/omp; fi
fi
PASSWORD='Bench-pass-123'

for bin in prometheus promtool prometheus-node-exporter curl python3; do
  command -v "$bin" >/dev/null || { echo "vs-prometheus: $bin is missing (apt-get install prometheus prometheus-node-exporter curl python3)" >&2; exit 1; }
done
[ -x "$OMP" ] || cargo build --release
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Waits until FILE has a line matching REGEX (a server's start-up log), at most 60 s.
wait_log() {
  local file=$1 regex=$2 i
  for i in $(seq 600); do
    grep -qE "$regex" "$file" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "vs-prometheus: no '$regex' in $file:" >&2; cat "$file" >&2; exit 1
}

cpu_secs() { # utime + stime of PID in seconds
  awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
# RSS split: anonymous (heap, stacks) / file-backed (the binary's own pages, mapped files).
rss_split() { awk '/RssAnon/ {a = $2} /RssFile/ {f = $2} END {printf "%.1f / %.1f", a / 1024, f / 1024}' "/proc/$1/status"; }

start_prometheus() { # storage dir, config → sets PROM_PID, PROM
  prometheus --config.file="$2" --storage.tsdb.path="$1" --storage.tsdb.retention.time=30d \
    --web.listen-address=127.0.0.1:0 >"$WORK/prom.log" 2>&1 &
  PROM_PID=$!; PIDS+=("$PROM_PID")
  wait_log "$WORK/prom.log" 'Server is ready'
  wait_log "$WORK/prom.log" 'msg="Listening on"' # logged by another goroutine, either first
  PROM="http://$(grep -m1 'msg="Listening on"' "$WORK/prom.log" | sed 's/.*address=//')"
}

start_omp() { # data dir, config → sets OMP_PID, OMPURL
  rm -f "$WORK/omp.addr"
  OMP_ADMIN_PASSWORD=$PASSWORD "$OMP" serve --config "$2" --data-dir "$1" --listen 127.0.0.1:0 \
    --listen-addr-file "$WORK/omp.addr" --no-local-agent >"$WORK/omp.log" 2>&1 &
  OMP_PID=$!; PIDS+=("$OMP_PID")
  wait_log "$WORK/omp.log" 'OMP is serving'
  OMPURL="http://$(cat "$WORK/omp.addr")"
}

stop() { kill "$1"; wait "$1" 2>/dev/null || true; }

# --- 1. Scrape load -----------------------------------------------------------------------
TARGET_LIST=()
for i in $(seq "$TARGETS"); do
  prometheus-node-exporter --web.listen-address=127.0.0.1:0 >"$WORK/ne$i.log" 2>&1 &
  PIDS+=($!)
  wait_log "$WORK/ne$i.log" 'Listening on'
  TARGET_LIST+=("$(grep -m1 'Listening on' "$WORK/ne$i.log" | sed 's/.*address=//')")
done
{
  echo "global: {scrape_interval: 15s, evaluation_interval: 1m}"
  echo "scrape_configs:"
  echo "  - job_name: node"
  echo "    static_configs: [{targets: [$(printf '"%s",' "${TARGET_LIST[@]}" | sed 's/,$//')]}]"
} >"$WORK/prometheus.yml"
: >"$WORK/omp.toml"
for t in "${TARGET_LIST[@]}"; do
  printf '[[scrape]]\njob = "node"\ntarget = "%s"\ninterval_secs = 15\n\n' "$t" >>"$WORK/omp.toml"
done
mkdir -p "$WORK/prom" "$WORK/omp"
start_prometheus "$WORK/prom" "$WORK/prometheus.yml"
start_omp "$WORK/omp" "$WORK/omp.toml"
echo "scrape load: $TARGETS node exporters every 15 s for $LOAD_SECS s"
p0=$(cpu_secs "$PROM_PID"); o0=$(cpu_secs "$OMP_PID")
sleep "$LOAD_SECS"
p1=$(cpu_secs "$PROM_PID"); o1=$(cpu_secs "$OMP_PID")
PROM_RSS=$(rss_mib "$PROM_PID"); OMP_RSS=$(rss_mib "$OMP_PID")
PROM_SPLIT=$(rss_split "$PROM_PID"); OMP_SPLIT=$(rss_split "$OMP_PID")
OMP_CPU=$(python3 -c "print(round($o1 - $o0, 2))")
PROM_CPU=$(python3 -c "print(round($p1 - $p0, 2))")
SCRAPED=$(curl -fsS "$PROM/api/v1/query" --data-urlencode 'query=count({job="node"})' |
  python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)')
stop "$PROM_PID"; stop "$OMP_PID"

# --- 2. Backfill the same data ------------------------------------------------------------
END=$(( ($(date +%s) - 600) / 60 * 60 ))
START=$(( END - HOURS * 3600 ))
echo "backfill: $SERIES counters × $HOURS h at 15 s"
python3 - "$SERIES" "$START" "$END" >"$WORK/bench.om" <<'EOF'
import sys
series, start, end = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
out = sys.stdout
out.write("# TYPE bench_requests counter\n")
vals = [0.0] * series
for t in range(start, end + 1, 15):
    for s in range(series):
        vals[s] += (s * 7 + t // 15) % 13
        out.write('bench_requests_total{job="j%d",instance="i%d"} %g %d\n' % (s % 10, s, vals[s], t))
out.write("# EOF\n")
EOF
promtool tsdb create-blocks-from openmetrics "$WORK/bench.om" "$WORK/prom" >/dev/null
"$OMP" tsdb import "$WORK/bench.om" --data-dir "$WORK/omp" >/dev/null
start_prometheus "$WORK/prom" "$WORK/prometheus.yml"
start_omp "$WORK/omp" "$WORK/omp.toml"
COOKIES="$WORK/cookies"
CSRF=$(curl -fsS -c "$COOKIES" -H 'content-type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" "$OMPURL/api/v1/auth/login" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["csrf_token"])')
TOKEN=$(curl -fsS -b "$COOKIES" -H "x-csrf-token: $CSRF" -H 'content-type: application/json' \
  -d '{"name":"bench"}' "$OMPURL/api/v1/tokens" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

# --- 3. Queries ---------------------------------------------------------------------------
QS=$((START + 300)); QE=$END
QUERIES=(
  'rate(bench_requests_total[5m])'
  'sum by (job) (rate(bench_requests_total[5m]))'
  'max_over_time(bench_requests_total[1h])'
)
time_query() { # base url, auth header, query → median seconds over RUNS; answer in $WORK/answer
  local i times=()
  for i in $(seq "$RUNS"); do
    times+=("$(curl -fsS -o "$WORK/answer" -w '%{time_total}' -H "$2" "$1" \
      --data-urlencode "query=$3" -d "start=$QS" -d "end=$QE" -d step=60)")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"
}
same_answers() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
key = lambda r: sorted((json.dumps(s["metric"], sort_keys=True), s["values"]) for s in r["data"]["result"])
print("identical" if a["status"] == b["status"] == "success" and key(a) == key(b) else "DIFFERENT")
EOF
}
ratio() { python3 -c "print('%.2f' % ($1 / $2) if $2 > 0 else 'n/a')"; }

echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}'), omp $("$OMP" version | awk '{print $2}') ($OMP)"
echo
printf '%-48s %12s %12s %8s  %s\n' "measure" "prometheus" "omp" "ratio" "target"
printf '%-48s %12s %12s %8s  %s\n' "CPU seconds, scraping $SCRAPED series for ${LOAD_SECS}s" "$PROM_CPU" "$OMP_CPU" "$(ratio "$OMP_CPU" "$PROM_CPU")" "≤ 0.33"
printf '%-48s %12s %12s %8s  %s\n' "RSS MiB after the scrape load" "$PROM_RSS" "$OMP_RSS" "$(ratio "$OMP_RSS" "$PROM_RSS")" "≤ 0.20"
printf '%-48s %12s %12s\n' "  of which anonymous / file-backed MiB" "$PROM_SPLIT" "$OMP_SPLIT"
for q in "${QUERIES[@]}"; do
  pt=$(time_query "$PROM/api/v1/query_range" "x-none: 1" "$q"); cp "$WORK/answer" "$WORK/p.json"
  ot=$(time_query "$OMPURL/prometheus/api/v1/query_range" "authorization: Bearer $TOKEN" "$q"); cp "$WORK/answer" "$WORK/o.json"
  printf '%-48s %11ss %11ss %8s  %s (%s)\n' "$q" "$pt" "$ot" "$(ratio "$ot" "$pt")" "≤ 0.50" "$(same_answers "$WORK/p.json" "$WORK/o.json")"
done
echo "(query_range over $SERIES series × $HOURS h at 60 s steps, median of $RUNS runs)"
