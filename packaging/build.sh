#!/usr/bin/env bash
# Builds the offline tarball dist/omp-VERSION-linux-x86_64.tar.gz: one folder omp-VERSION/
# with bin/omp (the static musl binary, UI and scripts embedded), systemd/ units, the
# commented default omp.toml, README.md, LICENSE, VERSION and SHA256SUMS (sha256sum format:
# `sha256sum -c SHA256SUMS` checks it), optionally SHA256SUMS.sig (Ed25519, omp sign).
#
#   packaging/build.sh [--binary PATH] [--version V] [--out DIR] [--sign-key FILE]
#
# --binary   package this omp binary instead of building the release one (tests pass the
#            debug build); it is copied, never modified in place
# --version  version to stamp into the copied binary (default: Cargo.toml's); the stamp is
#            a fixed area in the binary that `omp version` and the server report, so a
#            second version needs no second compilation
# --out      output directory (default dist/)
# --sign-key private key from `omp keygen` to sign SHA256SUMS
# Environment: OMP_BUILD_GZIP_LEVEL (1-9, default 9; the tests use 1 for speed)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

binary='' version='' out="$root/dist" sign_key=''
die() { echo "build.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="${2:?--binary needs a path}"; shift 2 ;;
    --version) version="${2:?--version needs a value}"; shift 2 ;;
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --sign-key) sign_key="${2:?--sign-key needs a file}"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[ -n "$version" ] || version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
[[ "$version" =~ ^[0-9]{1,9}\.[0-9]{1,9}\.[0-9]{1,9}([-+][0-9A-Za-z.+-]*)?$ ]] && [ ${#version} -le 46 ] \
  || die "bad --version $version: use MAJOR.MINOR.PATCH with an optional -suffix"

if [ -z "$binary" ]; then
  echo "==> building the static release binary (x86_64 musl)"
  cargo build --release --locked --target x86_64-unknown-linux-musl
  binary="$root/target/x86_64-unknown-linux-musl/release/omp"
fi
[ -f "$binary" ] && [ -x "$binary" ] || die "--binary $binary is not an executable file"

name="omp-$version"
work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT
top="$work/$name"
mkdir -p "$top/bin" "$top/systemd"
cp -- "$binary" "$top/bin/omp"
chmod 755 "$top/bin/omp"

# Stamp the version: find the one marker, write the version after it, NUL-padded.
marker='OMP-VERSION-STAMP:'
offsets=$(LC_ALL=C grep -obUaF -- "$marker" "$top/bin/omp" | cut -d: -f1 || true)
[ "$(printf '%s\n' "$offsets" | grep -c .)" = 1 ] \
  || die "$binary has no (or more than one) version stamp area: is it an omp binary?"
at=$((offsets + ${#marker}))
dd if=/dev/zero of="$top/bin/omp" bs=1 seek="$at" count=$((64 - ${#marker})) conv=notrunc status=none
printf '%s' "$version" | dd of="$top/bin/omp" bs=1 seek="$at" conv=notrunc status=none

cp -- systemd/omp.service systemd/omp-agent.service "$top/systemd/"
cp -- packaging/omp.example.toml "$top/omp.toml"
cp -- README.md "$top/README.md"
if [ -f LICENSE ]; then
  cp -- LICENSE "$top/LICENSE"
else
  cat > "$top/LICENSE" <<'TXT'
OMP is licensed under the Apache License, Version 2.0 (SPDX: Apache-2.0), as declared in
its Cargo.toml. The licence text: https://www.apache.org/licenses/LICENSE-2.0
TXT
fi
printf '%s\n' "$version" > "$top/VERSION"

(cd "$top" && find . -type f ! -name SHA256SUMS ! -name SHA256SUMS.sig | sed 's|^\./||' | LC_ALL=C sort \
  | while IFS= read -r f; do sha256sum -- "$f"; done > SHA256SUMS)
if [ -n "$sign_key" ]; then
  "$top/bin/omp" sign --key "$sign_key" "$top/SHA256SUMS" > "$top/SHA256SUMS.sig"
fi
[ "$("$top/bin/omp" version 2>/dev/null || true)" = "omp $version" ] || [ -n "${OMP_BUILD_NO_RUN:-}" ] \
  || echo "build.sh: warning: $top/bin/omp version does not print 'omp $version'" >&2

mkdir -p -- "$out"
tarball="$out/$name-linux-x86_64.tar.gz"
# Reproducible: fixed owners, order and times; gzip without a name or timestamp.
tar -C "$work" --owner=0 --group=0 --numeric-owner --sort=name --mtime=@0 -cf - "$name" \
  | gzip -n "-${OMP_BUILD_GZIP_LEVEL:-9}" > "$tarball.tmp"
mv -f -- "$tarball.tmp" "$tarball"
echo "$tarball"
