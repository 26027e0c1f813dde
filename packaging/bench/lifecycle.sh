#!/usr/bin/env bash
# Lifecycle figures for the README "Performance" section: tarball size, install to healthy,
# upgrade and rollback times, in a throwaway root without systemd (pidfile mode).
# Usage: packaging/bench/lifecycle.sh [BINARY]   (default: the static release binary)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-target/x86_64-unknown-linux-musl/release/omp}
[ -x "$bin" ] || { echo "build it first: cargo build --release --locked --target x86_64-unknown-linux-musl"; exit 1; }
work=$(mktemp -d)
prefix="$work/opt/omp"
cleanup() { [ -x "$prefix/bin/omp" ] && "$prefix/bin/omp" ctl stop --prefix "$prefix" >/dev/null 2>&1 || true; rm -rf -- "$work"; }
trap cleanup EXIT
ms() { echo $(( ($2 - $1) / 1000000 )); }

t1=$(packaging/build.sh --binary "$bin" --version 1.0.0 --out "$work/dist")
t2=$(packaging/build.sh --binary "$bin" --version 1.1.0 --out "$work/dist")
echo "tarball: $(stat -c %s "$t1") bytes ($(basename "$t1"))"
mkdir -p "$work/u" && tar -xzf "$t1" -C "$work/u"
port=$((20000 + RANDOM % 20000))

a=$(date +%s%N)
OMP_ADMIN_PASSWORD=Bench-pass-123 "$work/u/omp-1.0.0/bin/omp" install --prefix "$prefix" \
  --data-dir "$work/data" --listen "127.0.0.1:$port" --no-systemd --yes >/dev/null
b=$(date +%s%N)
echo "install to healthy: $(ms "$a" "$b") ms"

a=$(date +%s%N)
"$prefix/bin/omp" upgrade "$t2" --prefix "$prefix" >/dev/null
b=$(date +%s%N)
echo "upgrade 1.0.0 -> 1.1.0 (to healthy): $(ms "$a" "$b") ms"

a=$(date +%s%N)
"$prefix/bin/omp" rollback --prefix "$prefix" >/dev/null
b=$(date +%s%N)
echo "rollback to 1.0.0 (to healthy): $(ms "$a" "$b") ms"
