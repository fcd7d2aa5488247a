# shellcheck shell=bash
# Sourced by the end-to-end tests (tests/e2e/stack_test.sh: the local stack, and
# tests/containers/compose_test.sh: the compose stack): the seed README's sequence with gf and
# the checks both make of it. The caller sets GF_CMD (an array: how gf is run) and defines
# fail MESSAGE and ok MESSAGE. The API wants a token (issue 18): the gf that GF_CMD runs must be
# logged in as an admin — `gf login` into its token file (the local stack's `up` does it), or
# GF_TOKEN in its environment (seed_token gets one without gf, for a gf in a container).

seed_token() { # URL NAME PASSWORD_FILE: a token from POST URL/auth/login (curl), on stdout
    local pw body token
    pw=$(<"$3")
    pw=${pw//\\/\\\\}
    pw=${pw//\"/\\\"}
    body=$(curl -s --max-time 20 -H 'Content-Type: application/json' \
        --data-binary @- "$1/auth/login" <<<"{\"name\":\"$2\",\"password\":\"$pw\"}") ||
        fail "POST $1/auth/login: no answer"
    token=$(sed -n 's/.*"token":"\([A-Za-z0-9_.-]*\)".*/\1/p' <<<"$body")
    [[ -n $token ]] || fail "POST $1/auth/login as $2 gave no token: $(head -c 200 <<<"$body")"
    printf '%s\n' "$token"
}

gf_run() { # gf's output (stdout); a non-zero exit fails the test. What gf says on stderr (its
    # errors, or a notice such as "the system is overloaded; sending again in 1 s") goes to the
    # test's stderr, not into the output the test compares.
    local o e rc=0
    e=$(mktemp)
    o=$("${GF_CMD[@]}" "$@" 2>"$e") || rc=$?
    cat "$e" >&2
    rm -f "$e"
    if ((rc != 0)); then
        printf '%s\n' "$o" >&2
        fail "gf $* exited non-zero"
    fi
    printf '%s\n' "$o"
}

# `gf_run ... | grep -q` would be wrong under pipefail: grep -q exits at its first match, and the
# writer then dies of SIGPIPE. seed_expect captures the whole output first.
seed_expect() { # PATTERN MESSAGE gf-args...: gf's output must contain PATTERN
    local pattern=$1 message=$2 o
    shift 2
    o=$(gf_run "$@")
    grep -q -- "$pattern" <<<"$o" || {
        printf '%s\n' "$o" >&2
        fail "$message"
    }
}

# The seed's commands on an empty system: user 1, item 1 at 10 GXP, 12 on sale, 100 GXP added,
# one buy; then both transactions COMMITTED, stock 11, balance 90. Sets SEED_BUY_CID.
seed_sequence() {
    local listing
    gf_run ls >/dev/null
    seed_expect "user 1" "create-user did not name user 1" create-user my-name
    seed_expect "item 1" "create-item did not name item 1" create-item my-item 10
    seed_expect "1" "create-marketplace-item" create-marketplace-item 1 12
    gf_run user-gxp-add 1 100 >/dev/null
    SEED_BUY_CID=$(gf_run --json buy-marketplace-item 1 1 | sed -n 's/.*"correlationId":"\([0-9a-f-]*\)".*/\1/p')
    [[ $SEED_BUY_CID =~ ^[0-9a-f-]{36}$ ]] || fail "buy answered no correlation id"
    for _ in $(seq 1 100); do
        listing=$(gf_run ls)
        [[ $(grep -c COMMITTED <<<"$listing") == 2 ]] && break
        sleep 0.1
    done
    grep -Eq '^ +1 +1 +11 ' <<<"$listing" || fail "marketplace stock is not 11: $listing"
    grep -Eq '^ +90 +0 ' <<<"$listing" || fail "balance is not 90, reserved 0: $listing"
    [[ $(grep -c COMMITTED <<<"$listing") == 2 ]] || fail "both transactions are not COMMITTED"
    seed_expect "balance 90, reserved 0" "user-gxp 1" user-gxp 1
    ok "the seed's sequence with gf: stock 11, balance 90, reserved 0, both transactions COMMITTED"
}

# The buy's BuyItemEvent in the event log, once, with the buy's correlation id.
seed_event() {
    local events
    for _ in $(seq 1 100); do
        events=$(gf_run events 1)
        grep -q BuyItemEvent <<<"$events" && break
        sleep 0.1
    done
    [[ $(grep -c BuyItemEvent <<<"$events") == 1 ]] || fail "not exactly one BuyItemEvent: $events"
    grep -q "$SEED_BUY_CID" <<<"$events" || fail "the event does not carry the buy's correlation id"
    ok "one BuyItemEvent in the event log, with the buy's correlation id"
}

# Each path served by the replica the ingress routes it to.
seed_routes() {
    local svc line
    declare -A replica=([marketplace]=backend-svc-1 [user]=backend-svc-2 [item]=backend-svc-2
        [gxp]=backend-svc-1)
    for svc in marketplace user item gxp; do
        line=$(gf_run "$svc-svc-info")
        [[ $line == "/$svc/svc-info endpoint serviced by ${replica[$svc]}" ]] ||
            fail "$svc-svc-info answered '$line'"
    done
    ok "each path served by the right replica (the ingress's routes)"
}
