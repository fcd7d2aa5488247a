#!/usr/bin/env bash
# The operators' console in a real browser (issue 17): the whole local stack as `make up`
# starts it (scripts/stack.sh, on free ports and a private state directory), then
# tests/browser/console.mjs drives Debian's headless Chromium through the ingress with
# puppeteer-core (tests/browser/package-lock.json, installed by scripts/deps.sh). The
# screenshots of each state go to $GF_BUILD_DIR/test-output/console/ (replaced by each run, so
# a failing run's stay until the next).
#
#   tests/e2e/console_test.sh        (env: GF_BUILD_DIR, default build; GF_TEST_TMP)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export GF_BUILD_DIR=${GF_BUILD_DIR:-$REPO/build}
STACK=$REPO/scripts/stack.sh
TMP=${GF_TEST_TMP:-/tmp/gf-test-e2e}
export GF_STATE_DIR=$TMP/e2e-console
export GF_READY_TIMEOUT=60
SHOTS=$GF_BUILD_DIR/test-output/console

fail() {
    printf 'e2e console: FAILED: %s\n' "$*" >&2
    exit 1
}

[[ -x /usr/bin/chromium ]] || fail "Debian's chromium is not installed (make deps)"
[[ -d $REPO/tests/browser/node_modules/puppeteer-core ]] ||
    fail "tests/browser's node packages are not installed (make deps)"

# shellcheck source=../harness/ports.sh
source "$REPO/tests/harness/ports.sh"
stack_ports || fail "no block of free ports"
export GF_URL=http://127.0.0.1:$GF_INGRESS_PORT

rm -rf "$GF_STATE_DIR" "$SHOTS"
mkdir -p "$GF_STATE_DIR" "$SHOTS"
export GF_TOKEN_FILE=$GF_STATE_DIR/gf/tokens.json
unset GF_TOKEN
chmod 755 "$TMP" "$GF_STATE_DIR"
printf '%s\n' "$GF_BUILD_DIR" >"$GF_STATE_DIR/build-dir" # for tests/harness/reap.sh
cleanup() {
    bash "$STACK" down >/dev/null 2>&1 || true
}
trap cleanup EXIT

# The browser test holds one buy after its prepare while it kills every gxp: backend-svc-1's
# failpoint buy.after_prepare waits while the gate file is missing (it exists from the start,
# so every other buy goes straight on).
export BUY_GATE=$GF_STATE_DIR/buy-gate
touch "$BUY_GATE"
export GF_EXTRA_ENV_BACKEND_SVC_1="GF_FAILPOINTS=buy.after_prepare=wait:$BUY_GATE"
out=$(bash "$STACK" up 2>&1) || {
    printf '%s\n' "$out" >&2
    fail "stack up"
}
printf 'e2e console: stack up on free ports (ingress %s)\n' "$GF_INGRESS_PORT"

run=$GF_STATE_DIR/run
# Every gxp killed (SIGKILL, as a crash), and started again by `up`, which starts what is
# missing and leaves the rest.
export GXP_KILL="kill -9 \$(cat '$run/gxp-1.pid' '$run/gxp-2.pid')"
export GXP_START="bash '$STACK' up >/dev/null"
[[ -s $GF_STATE_DIR/secrets/pgpass ]] && export PGPASSFILE=$GF_STATE_DIR/secrets/pgpass
export GXP_PSQL="${GF_PG_BIN:-/usr/lib/postgresql/15/bin}/psql -X -q -A -t -h 127.0.0.1 -p $GF_GXP_DB_PORT -U postgres -d postgres -v ON_ERROR_STOP=1"
export GF_ADMIN_NAME=admin
GF_ADMIN_PASSWORD=$(<"$GF_STATE_DIR/secrets/admin.password")
export GF_ADMIN_PASSWORD
export SHOTS_DIR=$SHOTS
node "$REPO/tests/browser/console.mjs" || fail "the console in the browser (screenshots: $SHOTS)"
printf 'e2e console: all checks passed; screenshots in %s\n' "$SHOTS"
