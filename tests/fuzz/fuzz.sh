#!/usr/bin/env bash
# make fuzz: every fuzz target of <build dir> (configured with GF_FUZZ=ON) for <seconds>, after
# replaying its regressions; the new inputs that add coverage are merged into the checked-in
# corpus (tests/fuzz/corpus/<target>/, libFuzzer -merge=1). Prints a table target →
# executions → new corpus files, and fails when a target crashed (its input is named).
# usage: fuzz.sh <build dir> <seconds>
set -uo pipefail
build=$1 seconds=$2
src=$(cd "$(dirname "$0")" && pwd)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:symbolize=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
opts=(-rss_limit_mb=2048 -timeout=10 -max_len=4096)

shopt -s nullglob
rows=() failed=()
for exe in "$build"/fuzz-bin/fuzz_*; do
    target=${exe##*/fuzz_}
    run=$build/fuzz-run/make-fuzz/$target
    corpus=$src/corpus/$target
    rm -rf "$run"
    mkdir -p "$run/new" "$run/artifacts" "$corpus"
    printf 'fuzz %s: %s s...\n' "$target" "$seconds"
    dict=()
    [[ -f $src/dict/$target.dict ]] && dict=(-dict="$src/dict/$target.dict")
    regressions=("$src/regressions/$target"/*)
    if ((${#regressions[@]} > 0)) &&
        ! "$exe" "${opts[@]}" "${regressions[@]}" >"$run/regressions.log" 2>&1; then
        tail -n 40 "$run/regressions.log"
        failed+=("$target: a regression input fails again ($run/regressions.log)")
        rows+=("$(printf '%-16s %12s %16s  %s' "$target" - - "regression fails")")
        continue
    fi
    status=0
    "$exe" "${opts[@]}" "${dict[@]}" -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="$run/artifacts/" "$run/new" "$corpus" >"$run/fuzz.log" 2>&1 || status=$?
    runs=$(sed -n 's/^Done \([0-9]*\) runs in .*/\1/p' "$run/fuzz.log")
    before=$(find "$corpus" -type f | wc -l)
    "$exe" -merge=1 "${opts[@]}" "$corpus" "$run/new" >"$run/merge.log" 2>&1 ||
        failed+=("$target: merge failed ($run/merge.log)")
    after=$(find "$corpus" -type f | wc -l)
    note=ok
    if ((status != 0)); then
        artifacts=("$run/artifacts"/*)
        tail -n 40 "$run/fuzz.log"
        failed+=("$target: crashed on ${artifacts[*]:-?} (log $run/fuzz.log)")
        note="CRASH"
    fi
    rows+=("$(printf '%-16s %12s %16s  %s' "$target" "${runs:-?}" "$((after - before))" "$note")")
done

printf '\n%-16s %12s %16s\n' target executions "new corpus files"
printf '%s\n' "${rows[@]}"
if ((${#failed[@]} > 0)); then
    printf '\nFAILED:\n'
    printf '  %s\n' "${failed[@]}"
    printf 'Fix each, and keep its input as tests/fuzz/regressions/<target>/<name>.\n'
    exit 1
fi
