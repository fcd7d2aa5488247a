#!/usr/bin/env bash
# make bench (backend part): runs bench/backend_bench (servers on free ports, stopped at the
# end) and keeps its table under bench/results/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
out=bench/results/backend-$(date -u +%Y%m%dT%H%M%SZ).md
export GF_TEST_TMP=${GF_TEST_TMP:-/tmp/gf-bench-backend-$(id -u)}
rm -rf "$GF_TEST_TMP"
export BACKEND_BIN=${BACKEND_BIN:-$PWD/build/bin/backend} GXP_BIN=${GXP_BIN:-$PWD/build/bin/gxp}
export EVENTLOG_BIN=${EVENTLOG_BIN:-$PWD/build/bin/eventlog} BENCH_RABBITMQ=$PWD/tests/harness/rabbitmq.sh
export BENCH_WRK_DIR=$PWD/bench/wrk
trap 'bash tests/harness/reap.sh "$GF_TEST_TMP" >/dev/null 2>&1 || true' EXIT
./build/bin/backend_bench | tee "$out"
echo "written: $out"
