#!/usr/bin/env bash
# End to end: the whole local system as `make up` starts it (scripts/stack.sh: three clusters,
# RabbitMQ, two gxp, eventlog, two backends, nginx as the ingress), on free ports and a
# private state directory (never the user's 30080 stack), driven with the real `gf` through
# nginx exactly as the seed's README lists the sequence. Then: `up` twice changes nothing,
# a killed backend replica leaves the other paths working and shows in `status`, `down` and
# `up` again keep the data.
#
#   tests/e2e/stack_test.sh        (env: GF_BUILD_DIR, default build; GF_TEST_TMP)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export GF_BUILD_DIR=${GF_BUILD_DIR:-$REPO/build}
GF=$GF_BUILD_DIR/bin/gf
STACK=$REPO/scripts/stack.sh
TMP=${GF_TEST_TMP:-/tmp/gf-test-e2e}
export GF_STATE_DIR=$TMP/e2e-stack
export GF_READY_TIMEOUT=60

checks=0
fail() {
    printf 'e2e: FAILED: %s\n' "$*" >&2
    exit 1
}
ok() {
    checks=$((checks + 1))
    printf 'e2e: ok %d - %s\n' "$checks" "$*"
}

# shellcheck source=../harness/ports.sh
source "$REPO/tests/harness/ports.sh"
stack_ports || fail "no block of free ports"
export GF_URL=http://127.0.0.1:$GF_INGRESS_PORT

rm -rf "$GF_STATE_DIR"
mkdir -p "$GF_STATE_DIR"
chmod 755 "$TMP" "$GF_STATE_DIR"
# For tests/harness/reap.sh, should this script be killed before its trap runs.
printf '%s\n' "$GF_BUILD_DIR" >"$GF_STATE_DIR/build-dir"
cleanup() {
    bash "$STACK" down >/dev/null 2>&1 || true
}
trap cleanup EXIT

[[ -x $GF ]] || fail "$GF is missing (build first)"

out=$(bash "$STACK" up 2>&1) || {
    printf '%s\n' "$out" >&2
    fail "stack up"
}
ok "stack up on free ports (ingress $GF_INGRESS_PORT)"

# The seed's sequence, with gf, through nginx.
# shellcheck disable=SC2034 # run by seed.sh's gf_run
GF_CMD=("$GF")
# shellcheck source=../harness/seed.sh
source "$REPO/tests/harness/seed.sh"
run() { gf_run "$@"; }
expect() { seed_expect "$@"; }
seed_sequence
seed_event
expect COMMITTED "trace does not show the commit" trace "$SEED_BUY_CID"
ok "gf trace shows the transaction's life"
seed_routes

# nginx's own answers carry a correlation id; the id nginx makes is the one the backend uses;
# a body over the limit is refused by nginx itself, never 502 (issue 20, items 8 and 10).
H=$GF_STATE_DIR/ingress.h B=$GF_STATE_DIR/ingress.b
answer() { # STATUS curl-args...: the body's correlationId, also the X-Correlation-Id header
    local want=$1 code cid
    shift
    code=$(curl -s -o "$B" -D "$H" -w '%{http_code}' --max-time 20 "$@")
    cid=$(sed -n 's/.*"correlationId":"\([0-9a-f-]\{36\}\)".*/\1/p' "$B")
    [[ $code == "$want" && -n $cid ]] || fail "$* answered $code, want $want with a correlationId: $(head -c 200 "$B")"
    grep -qi "^X-Correlation-Id: $cid" "$H" || fail "$*: no X-Correlation-Id $cid"
    printf '%s' "$cid"
}
answer 404 "$GF_URL/no/such/path" >/dev/null
cid=$(answer 200 "$GF_URL/user/gxp?userId=1")
grep -q "cid=$cid " "$GF_STATE_DIR/log/ingress.access.log" ||
    fail "the backend answered with $cid, not the id nginx made"
head -c 70000 /dev/zero | tr '\0' a >"$GF_STATE_DIR/big.json"
for _ in $(seq 10); do
    answer 413 -H 'Content-Type: application/json' -H 'Expect:' --data-binary "@$GF_STATE_DIR/big.json" \
        "$GF_URL/user/create" >/dev/null
done
ok "the ingress: 404 and 413 in the error body with X-Correlation-Id; the backend uses nginx's id"

# up again: nothing changes.
before=$(bash "$STACK" status)
bash "$STACK" up >/dev/null 2>&1 || fail "second up"
after=$(bash "$STACK" status)
[[ $before == "$after" ]] || fail "a second up changed something: $before // $after"
ok "a second up changes nothing"

# Kill backend-svc-2: /gxp and /marketplace keep working; status shows it.
pid=$(awk '$1 == "backend-svc-2" {print $2}' <<<"$after")
[[ $pid =~ ^[0-9]+$ ]] || fail "no pid for backend-svc-2"
kill -KILL "$pid"
sleep 0.5
expect backend-svc-1 "/gxp stopped working" gxp-svc-info
expect backend-svc-1 "/marketplace stopped working" marketplace-svc-info
set +e
"$GF" user-svc-info >/dev/null 2>&1
rc=$?
set -e
((rc != 0)) || fail "user-svc-info answered although backend-svc-2 is dead"
answer 502 "$GF_URL/user/svc-info" >/dev/null
status=$(bash "$STACK" status)
grep -E '^backend-svc-2 ' <<<"$status" | grep crashed >/dev/null || fail "status does not show the crash"
ok "backend-svc-2 killed: the other paths work, status shows it crashed"
bash "$STACK" up >/dev/null 2>&1 || fail "up after the crash"
expect backend-svc-2 "backend-svc-2 did not come back" user-svc-info
ok "up restarts the crashed replica"

# down, up: the data is kept.
bash "$STACK" down >/dev/null 2>&1 || fail "down"
status=$(bash "$STACK" status)
grep running <<<"$status" >/dev/null && fail "down left units running"
bash "$STACK" up >/dev/null 2>&1 || fail "up after down"
expect my-name "the data did not survive down and up" ls
expect "balance 90" "the balance did not survive down and up" user-gxp 1
ok "down then up keeps the data"

printf 'e2e: all %d checks passed\n' "$checks"
