#!/usr/bin/env bash
# End to end: the whole local system as `make up` starts it (scripts/stack.sh: three clusters,
# RabbitMQ, two gxp, eventlog, two backends, nginx as the ingress), on free ports and a
# private state directory (never the user's 30080 stack), driven with the real `gf` through
# nginx exactly as the seed's README lists the sequence, logged in by `up` as the operator into
# a token file of the test's own (never the user's ~/.config). Then the trust boundary through
# the ingress (issue 18): no token, a user's own login, tokens for curl, /metrics and a wrong
# password. The operator console's page and API through the ingress. Then: `up` twice changes
# nothing, a killed backend replica leaves the other paths working and shows in `status`,
# `down` and `up` again keep the data. Last, an auction's saga from bids to settlement.
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
# gf's logins (the admin's, by `up`) go to a file of this run's; GF_TOKEN would override them.
export GF_TOKEN_FILE=$GF_STATE_DIR/gf/tokens.json
unset GF_TOKEN
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
grep -q "gf is logged in as admin" <<<"$out" || fail "up did not log gf in: $out"
[[ $(stat -c %a "$GF_TOKEN_FILE") == 600 && $(stat -c %a "${GF_TOKEN_FILE%/*}") == 700 ]] ||
    fail "the token file is not 0600 in a 0700 directory"
ok "up logged gf in as admin (token file 0600, directory 0700)"

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

# The trust boundary, through the ingress.
ADMIN_TOKEN=$("$GF" auth token) || fail "gf auth token"
code() { curl -s -o "$GF_STATE_DIR/auth.b" -w '%{http_code}' --max-time 20 "$@"; }
[[ $(code -H 'Content-Type: application/json' --data '{"userId":1,"amount":1000}' \
    "$GF_URL/user/gxp/add") == 401 ]] || fail "POST /user/gxp/add without a token: not 401"
grep -q '"error":"unauthenticated"' "$GF_STATE_DIR/auth.b" || fail "no unauthenticated error body"
[[ $(code -H "Authorization: Bearer $ADMIN_TOKEN.x" "$GF_URL/user") == 401 ]] ||
    fail "GET /user with a damaged token: not 401"
listing=$(gf_run ls)
if [[ $(grep -c COMMITTED <<<"$listing") != 2 ]] || grep -q PENDING <<<"$listing"; then
    fail "a request without a token made a transaction: $listing"
fi
expect "balance 90, reserved 0" "a request without a token changed the balance" user-gxp 1
ok "no token (or a damaged one): 401, nothing minted"

[[ $(code -H "Authorization: Bearer $ADMIN_TOKEN" "$GF_URL/user") == 200 ]] ||
    fail "curl with \$(gf auth token) on GET /user: not 200"
grep -q '"name":"my-name"' "$GF_STATE_DIR/auth.b" || fail "GET /user with the token: no my-name"
ok "gf auth token works with curl"

[[ $(code "$GF_URL/metrics") == 404 ]] || fail "/metrics through the ingress: not 404"
[[ $(code -H 'Content-Type: application/json' --data '{"name":"buyer","password":"not-the-password"}' \
    "$GF_URL/auth/login") == 401 ]] || fail "a login with a wrong password: not 401"
grep -q '"error":"invalid_credentials"' "$GF_STATE_DIR/auth.b" || fail "no invalid_credentials"
ok "/metrics is 404 through the ingress; a wrong password is 401"

# A user with a password of the admin's making logs in with gf (a token file of its own) and
# buys for itself, but not for another user.
expect "user 2 created" "create-user --password-stdin" create-user buyer --password-stdin \
    <<<"buyer-password-1"
gf_run user-gxp-add 2 50 >/dev/null
buyer() { GF_TOKEN_FILE=$GF_STATE_DIR/gf/buyer.json "$GF" "$@"; }
refused() { # EXIT PATTERN COMMAND...: the command exits EXIT and prints PATTERN
    local want=$1 pattern=$2 o rc=0
    shift 2
    o=$("$@" 2>&1) || rc=$?
    ((rc == want)) && grep -q -- "$pattern" <<<"$o" && return 0
    fail "$* exited $rc (want $want and '$pattern'): $o"
}
refused 1 "the name or the password is wrong" buyer login buyer <<<"wrong-password-1"
o=$(buyer login buyer <<<"buyer-password-1") || fail "gf login buyer: $o"
[[ $o == "logged in as buyer (user, until "*")" ]] || fail "gf login buyer said: $o"
[[ $(stat -c %a "$GF_STATE_DIR/gf/buyer.json") == 600 ]] || fail "buyer.json is not 0600"
for _ in $(seq 1 100); do # the add-gxp committed: the buy sees the balance
    [[ $(buyer user-gxp 2) == *"balance 50, reserved 0"* ]] && break
    sleep 0.1
done
o=$(buyer buy-marketplace-item 2 1) || fail "the user's own buy: $o"
[[ $o == "user 2 bought item 1"* ]] || fail "the user's own buy said: $o"
refused 1 "HTTP 403" buyer buy-marketplace-item 1 1
[[ $(code -H "Authorization: Bearer $(buyer auth token)" "$GF_URL/user") == 403 ]] ||
    fail "GET /user with a user's token: not 403"
buyer logout >/dev/null || fail "gf logout"
refused 1 "(gf login NAME)" buyer user-gxp 2
expect "balance 90, reserved 0" "the admin's login was touched by the user's" user-gxp 1
ok "a user logs in with gf, buys for itself, gets 403 for another user; logout forgets it"

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
cid=$(answer 200 -H "Authorization: Bearer $ADMIN_TOKEN" "$GF_URL/user/gxp?userId=1")
grep -q "cid=$cid " "$GF_STATE_DIR/log/ingress.access.log" ||
    fail "the backend answered with $cid, not the id nginx made"
head -c 70000 /dev/zero | tr '\0' a >"$GF_STATE_DIR/big.json"
for _ in $(seq 10); do
    answer 413 -H 'Content-Type: application/json' -H 'Expect:' --data-binary "@$GF_STATE_DIR/big.json" \
        "$GF_URL/user/create" >/dev/null
done
ok "the ingress: 404 and 413 in the error body with X-Correlation-Id; the backend uses nginx's id"

# The operator console through the ingress: its page is the files `up` built
# (scripts/console-build.sh into run/console), served by nginx with the page's CSP (once) and
# its script as JavaScript; its API (backend-svc-1) answers a request without a token 401.
CONSOLE_CSP="default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
header() { tr -d '\r' <"$H" | sed -n "s/^$1: //Ip"; }
for f in index.html app.js style.css vendor/uPlot.iife.min.js vendor/uPlot.min.css; do
    [[ -s $GF_STATE_DIR/run/console/$f ]] || fail "up did not build the console's $f"
done
st=$(curl -s -o "$B" -D "$H" -w '%{http_code}' --max-time 20 "$GF_URL/console/")
[[ $st == 200 ]] || fail "GET /console/ answered $st: $(head -c 200 "$B")"
[[ $(header Content-Type) == text/html* ]] || fail "GET /console/: Content-Type $(header Content-Type)"
[[ $(header Content-Security-Policy) == "$CONSOLE_CSP" ]] ||
    fail "GET /console/: Content-Security-Policy $(header Content-Security-Policy)"
[[ $(header Cache-Control) == no-cache ]] || fail "GET /console/: Cache-Control $(header Cache-Control)"
cmp -s "$B" "$GF_STATE_DIR/run/console/index.html" || fail "GET /console/ is not the built index.html"
st=$(curl -s -o "$B" -D "$H" -w '%{http_code}' --max-time 20 "$GF_URL/console")
[[ $st == 301 && $(header Location) == /console/ ]] || fail "GET /console answered $st, Location $(header Location)"
st=$(curl -s -o "$B" -D "$H" -w '%{http_code}' --max-time 20 "$GF_URL/console/app.js")
[[ $st == 200 && $(header Content-Type) == application/javascript* ]] ||
    fail "GET /console/app.js answered $st, Content-Type $(header Content-Type)"
[[ $(header Content-Security-Policy) == "$CONSOLE_CSP" ]] || fail "GET /console/app.js: not the page's CSP"
cmp -s "$B" "$GF_STATE_DIR/run/console/app.js" || fail "GET /console/app.js is not the built app.js"
answer 401 -H 'Accept: text/event-stream' "$GF_URL/console/api/stream" >/dev/null
[[ $(header Content-Type) == application/json* ]] || fail "GET /console/api/stream without a token: Content-Type $(header Content-Type)"
grep -q '"error":"unauthenticated"' "$B" || fail "GET /console/api/stream without a token: $(head -c 200 "$B")"
ok "the console: /console/ is the built page with its CSP, app.js is JavaScript; /console/api/stream without a token is 401 JSON"

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

# An auction through the ingress (/auction -> backend-svc-1), with gf as the admin: user 1 sells
# the unit of user item 1 for 5 s, user 2 bids 20 and a new user 30; the saga settles it: the
# unit to the winner, the outbid bid refunded, the winning amount paid to the seller.
expect "user 3 created" "create-user auction-bidder" create-user auction-bidder
gf_run user-gxp-add 3 100 >/dev/null
for _ in $(seq 1 100); do # the add-gxp committed: the bid sees the balance
    [[ $(gf_run user-gxp 3) == *"balance 100, reserved 0"* ]] && break
    sleep 0.1
done
o=$(gf_run auction-create 1 1 10 5)
re='^auction ([0-9]+) created, ends at '
[[ $o =~ $re ]] || fail "auction-create said: $o"
auction=${BASH_REMATCH[1]}
expect "user 2 bid 20 on auction $auction: bid " "the first bid" auction-bid "$auction" 2 20
expect "user 3 bid 30 on auction $auction: bid " "the second bid" auction-bid "$auction" 3 30
refused 1 "auction_has_bids" "$GF" auction-cancel "$auction" 1
step() { # OUTPUT KIND: "state userId amount" of the saga's step of that kind
    awk -v k="$2" '/^saga steps$/ {s = 1; next} s && /^  / && $2 == k {print $3, $4, $5; exit}' <<<"$1"
}
for _ in $(seq 1 75); do # due 5 s after its creation; up to 15 s for a saga runner to settle it
    o=$(gf_run auction "$auction")
    grep -q "^saga complete: " <<<"$o" && break
    sleep 0.2
done
grep -q "^saga complete: 7 steps, none pending$" <<<"$o" || fail "the auction's saga did not complete: $o"
grep -q "^  status    settled$" <<<"$o" || fail "the auction is not settled: $o"
[[ $(step "$o" refund) == "done 2 20" ]] || fail "the outbid bid's refund is not done: $o"
[[ $(step "$o" payout) == "done 1 30" ]] || fail "the seller's payout is not done: $o"
[[ $(step "$o" deliver) == "done 3 1" ]] || fail "the unit was not delivered to user 3: $o"
re='the unit went to user item ([0-9]+)'
[[ $o =~ $re ]] || fail "no result user item: $o"
won=${BASH_REMATCH[1]}
listing=$(gf_run ls)
grep -Eq "^ +$won +3 +1 +1 " <<<"$listing" ||
    fail "user 3 does not hold the unit of item 1 in user item $won: $listing"
expect "settled" "gf auctions --status settled does not list it" auctions --status settled
for _ in $(seq 1 100); do # gxp commits what the saga decided
    [[ $(gf_run user-gxp 2) == *"balance 40, reserved 0"* &&
        $(gf_run user-gxp 3) == *"balance 70, reserved 0"* &&
        $(gf_run user-gxp 1) == *"balance 120, reserved 0"* ]] && break
    sleep 0.1
done
expect "balance 40, reserved 0" "user 2's bid was not refunded" user-gxp 2
expect "balance 70, reserved 0" "user 3 did not pay 30" user-gxp 3
expect "balance 120, reserved 0" "the seller was not paid 30" user-gxp 1
ok "an auction with gf: two bids, settled after 5 s, the unit to the winner, refund and payout done"

printf 'e2e: all %d checks passed\n' "$checks"
