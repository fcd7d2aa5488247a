#!/usr/bin/env bash
# One fuzz target as a test (tests/fuzz/CMakeLists.txt): replays every input of
# regressions/<target>/ (the crashes found before), then fuzzes for <seconds> starting from the
# checked-in corpus/<target>/, which it only reads: new inputs go to a scratch corpus. Fails on
# any crash, leak, undefined behaviour, slow input or memory blow-up. The whole libFuzzer log
# is kept in <scratch>/fuzz.log; the summary line is printed and kept in <scratch>/summary.
# usage: run.sh <fuzzer> <target> <tests/fuzz dir> <scratch dir> <seconds> <rss MB>
set -euo pipefail
exe=$1 target=$2 src=$3 scratch=$4
seconds=${GF_FUZZ_SECONDS:-$5}
rss=$6

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:symbolize=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
opts=(-rss_limit_mb="$rss" -timeout=10 -max_len=4096)
if [[ -f $src/dict/$target.dict ]]; then
    opts+=(-dict="$src/dict/$target.dict")
fi

rm -rf "$scratch"
mkdir -p "$scratch/corpus" "$scratch/artifacts"

shopt -s nullglob
regressions=("$src/regressions/$target"/*)
if ((${#regressions[@]} > 0)); then
    if ! "$exe" "${opts[@]}" "${regressions[@]}" >"$scratch/regressions.log" 2>&1; then
        tail -n 60 "$scratch/regressions.log"
        printf 'fuzz %s: a regression input fails again (see above)\n' "$target"
        exit 1
    fi
fi

status=0
"$exe" "${opts[@]}" -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="$scratch/artifacts/" "$scratch/corpus" "$src/corpus/$target" \
    >"$scratch/fuzz.log" 2>&1 || status=$?
runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 runs in \2 s/p' "$scratch/fuzz.log")
new=$(find "$scratch/corpus" -type f | wc -l)
summary="fuzz $target: ${runs:-no runs}, ${#regressions[@]} regression inputs replayed, $new new corpus inputs"
printf '%s\n' "$summary" | tee "$scratch/summary"
if ((status != 0)); then
    tail -n 80 "$scratch/fuzz.log"
    artifacts=("$scratch/artifacts"/*)
    printf 'fuzz %s FAILED (exit %d); input: %s\n' "$target" "$status" "${artifacts[*]:-none}"
    printf 'fix it, then keep the input as tests/fuzz/regressions/%s/<name>\n' "$target"
    exit 1
fi
