#!/usr/bin/env bash
# A service's command line, run on the built program with an empty environment: --help lists
# every variable, --check-config prints each one (secrets masked) and exits 0, or 78 with the
# bad variables on stderr, and an unknown argument exits 2 with one line. Nothing is started.
#   service_cli_test.sh <binary> <program> [+VAR=value...] [-- VAR=value... ]...
# +VAR=value: the least a valid environment holds (a required variable), in every run. Each
# group after a `--` is an invalid environment; its last variable is the one blamed.
set -u
bin=$1 prog=$2
shift 2
base=()
while (($# > 0)) && [[ $1 == +* ]]; do
    base+=("${1#+}")
    shift
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# An environment of our own: the caller's BACKEND_* and friends must not change the answer.
keep=()
for v in LD_LIBRARY_PATH ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS; do
    [[ -n ${!v:-} ]] && keep+=("$v=${!v}")
done
run() { # run <name> [VAR=value...] -- <args...>: rc, stdout and stderr in $tmp/<name>.*
    local name=$1
    shift
    local envs=()
    while [[ $1 != -- ]]; do envs+=("$1") && shift; done
    shift
    env -i "${keep[@]}" "${base[@]}" "${envs[@]}" "$bin" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
    echo $? >"$tmp/$name.rc"
}
rc() { cat "$tmp/$1.rc"; }

run help -- --help
[[ $(rc help) == 0 ]] || fail "--help exited $(rc help)"
[[ -s $tmp/help.err ]] && fail "--help wrote to stderr: $(cat "$tmp/help.err")"
[[ $(head -1 "$tmp/help.out") == "usage: $prog [--help] [--check-config]" ]] ||
    fail "--help's first line: $(head -1 "$tmp/help.out")"
mapfile -t vars < <(sed -n 's/^  \([A-Z][A-Z0-9_]*\) .*/\1/p' "$tmp/help.out")
((${#vars[@]} >= 5)) || fail "--help lists ${#vars[@]} variables"
[[ $(grep -c '^  ' "$tmp/help.out") == "${#vars[@]}" ]] || fail "--help has odd indented lines"

run h -- -h
cmp -s "$tmp/help.out" "$tmp/h.out" && [[ $(rc h) == 0 ]] || fail "-h differs from --help"

# Every secret set to a value that must not come out; each listed variable printed once.
secrets=()
for v in "${vars[@]}"; do
    [[ $v == *PASSWORD ]] && secrets+=("$v=cli-s3cret")
done
((${#secrets[@]} > 0)) || fail "no *PASSWORD variable in --help"
run check "${secrets[@]}" -- --check-config
[[ $(rc check) == 0 ]] || fail "--check-config with the defaults exited $(rc check)"
[[ -s $tmp/check.err ]] && fail "--check-config wrote to stderr: $(cat "$tmp/check.err")"
mapfile -t printed < <(sed 's/=.*//' "$tmp/check.out")
[[ ${printed[*]} == "${vars[*]}" ]] || fail "--check-config printed ${printed[*]}, not ${vars[*]}"
grep -q s3cret "$tmp/check.out" && fail "--check-config printed a secret"
for s in "${secrets[@]}"; do
    grep -qx "${s%%=*}=\*\*\*\*" "$tmp/check.out" || fail "${s%%=*} not shown as ****"
done

n=0
while (($# > 0)); do
    [[ $1 == -- ]] || { fail "bad arguments: $1" && break; }
    shift
    envs=()
    while (($# > 0)) && [[ $1 != -- ]]; do envs+=("$1") && shift; done
    n=$((n + 1))
    blamed=${envs[-1]%%=*}
    run bad$n "${envs[@]}" -- --check-config
    [[ $(rc bad$n) == 78 ]] || fail "--check-config with ${envs[*]} exited $(rc bad$n), not 78"
    [[ -s $tmp/bad$n.out ]] && fail "--check-config with ${envs[*]} wrote to stdout"
    grep 'config invalid' "$tmp/bad$n.err" | grep -q "$blamed" ||
        fail "--check-config with ${envs[*]} did not blame $blamed: $(cat "$tmp/bad$n.err")"
    grep -q s3cret "$tmp/bad$n.err" && fail "a secret reached stderr: $(cat "$tmp/bad$n.err")"
done

run bogus -- --check-config --bogus
[[ $(rc bogus) == 2 ]] || fail "an unknown argument exited $(rc bogus), not 2"
[[ -s $tmp/bogus.out ]] && fail "an unknown argument wrote to stdout"
[[ $(cat "$tmp/bogus.err") == "$prog: unknown argument '--bogus' (try --help)" ]] ||
    fail "an unknown argument said: $(cat "$tmp/bogus.err")"

((failures == 0)) && echo "ok: $prog --help, -h, --check-config ($n invalid cases), --bogus"
exit $((failures > 0))
