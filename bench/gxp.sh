#!/usr/bin/env bash
# make bench: runs bench/gxp_bench (servers on free ports, stopped at the end) and keeps its
# table under bench/results/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
out=bench/results/gxp-$(date -u +%Y%m%dT%H%M%SZ).md
export GF_TEST_TMP=${GF_TEST_TMP:-/tmp/gf-bench-$(id -u)}
rm -rf "$GF_TEST_TMP"
export GXP_BIN=${GXP_BIN:-$PWD/build/bin/gxp}
trap 'bash tests/harness/reap.sh "$GF_TEST_TMP" >/dev/null 2>&1 || true' EXIT
./build/bin/gxp_bench | tee "$out"
echo "written: $out"
