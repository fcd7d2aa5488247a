#!/usr/bin/env bash
# make bench: the whole system as `make up` runs it (scripts/stack.sh: three clusters, RabbitMQ,
# two gxp, eventlog, two backends, nginx), on free ports and a private state directory, measured
# through nginx at 1, 8 and 32 connections with wrk: buy, add-gxp, GET /item, GET /user, and
# auction bids (each one above the last on its auction; the 200s and the 409s of lost races
# counted apart). Then the auction saga's settlement: 1,000 auctions that end in the same
# second, each with one bid, timed from their end until every one is settled and its seller
# paid out.
# Beside our figures, the floor: pgbench running exactly the SQL of a buy and of an add-gxp on
# the same clusters at the same concurrency (bench/floor).
# Hot items (part hot): buys over 8 items only, at 8 and 32 connections, with the lock
# conflicts and retries the backends counted (their /metrics before and after) per buy.
# A read floor (part reads): pgbench running GET /user?limit=100's and GET /item's SELECT on
# backend-db at the same concurrency, right after the same route's run through nginx.
# History sizes (part big, BENCH_HISTORY): the tables grown step by step (bench/load_rows.sh),
# buy and add-gxp at the highest concurrency after each step, and pg_stat_statements' top
# statements and every index's size per database at each size.
#
# Authenticated like any client: the operator (admin, its password in the admin.password file
# of the stack's secrets directory) logs in, and every request carries its bearer token (admin acts for
# every user). The backend verifies it on the routes that need one (the seeding, GET /user,
# add-gxp, buy); GET /item is public, its token unread, but it goes with one too: the ingress
# limits clients without a token per address (50 r/s) and those with one per token, which the
# local stack leaves high, so that the benchmark measures the system, not the limiter. The
# cost of verifying: bench/auth_bench (CPU per gf_auth_verify) runs first. A stack without an operator's password (a tree from before authentication) is driven
# anonymously, so that the same script measures both.
#
# Prints the report (Markdown) and writes it with its data and gnuplot's plots under
# bench/results/<time>/ (git-ignored).
#
# Environment: BENCH_SECONDS (10 per run), BENCH_CONCURRENCY ("1 8 32"), BENCH_USERS (1000),
# BENCH_ITEMS (32: the buys spread over this many items, in the runs and the floor alike — one
# item would make every buy race for one stock row, which measures the optimistic lock's
# back-off rather than the system), BENCH_BIG_ROWS (1000000: BENCH_HISTORY is "0 BENCH_BIG_ROWS"
# unless set; 0 and no BENCH_HISTORY skip the history sizes), GF_BUILD_DIR (build),
# BENCH_ONLY (all: a part of the suite, any of: auth get-item get-user add-gxp buy bid settle
# console floor big hot reads open; e.g. "get-item buy" for the throughput of those two), BENCH_SELLERS (32: users
# 1..32 sell, the others bid), BENCH_AUCTIONS (256: the open auctions the bids go to),
# BENCH_SETTLE_AUCTIONS (1000), BENCH_SETTLE_LEAD_S (30: the auctions end this long after their
# creation starts; creation and bids must be done by then), BENCH_PORT_BASE (unset: a free block at
# random; else the stack's 17 ports from there), GF_BENCH_TMP (/tmp/gf-bench-<uid>: the stack's
# state goes to its stack/). The part `open` (buys and add-gxps at a fixed arrival rate, 0.5x, 1x
# and 2x the closed-loop peak) has its own settings: see bench/open.sh.
# BENCH_HOT_ITEMS (8: the items the hot run's buys go to), BENCH_HOT_CONCURRENCY ("8 32"),
# BENCH_READS_CONCURRENCY (32: the read floor's clients), BENCH_HISTORY (history sizes in rows,
# ascending, each a total; "0 $BENCH_BIG_ROWS" by default, e.g. "0 1000000 3000000 10000000"),
# BENCH_HISTORY_RUNS (1: the buy and add-gxp runs at each history size, alternated; history.tsv
# has their median, history-runs.tsv each run), BENCH_HISTORY_AFTER (1: after the largest size,
# a fresh stack with no history is seeded and measured the same way, history-after.tsv; 0: not),
# BENCH_PGSS (1 when big is wanted: the clusters load pg_stat_statements; 0: they do not).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
export GF_BUILD_DIR=${GF_BUILD_DIR:-$REPO/build}
SECS=${BENCH_SECONDS:-10}
CONCURRENCY=${BENCH_CONCURRENCY:-"1 8 32"}
USERS=${BENCH_USERS:-1000}
ITEMS=${BENCH_ITEMS:-32}
BIG_ROWS=${BENCH_BIG_ROWS:-1000000}
SELLERS=${BENCH_SELLERS:-32}
AUCTIONS=${BENCH_AUCTIONS:-256}
SETTLE_AUCTIONS=${BENCH_SETTLE_AUCTIONS:-1000}
SETTLE_LEAD_S=${BENCH_SETTLE_LEAD_S:-30}
ONLY=${BENCH_ONLY:-auth get-item get-user add-gxp buy bid settle console floor big hot reads open}
for part in $ONLY; do
    case $part in
    auth | get-item | get-user | add-gxp | buy | bid | settle | console | floor | big | hot | reads | open) ;;
    *)
        printf 'bench: BENCH_ONLY: unknown part %s (auth get-item get-user add-gxp buy bid settle console floor big hot reads open)\n' \
            "$part" >&2
        exit 2
        ;;
    esac
done
wanted() { [[ " $ONLY " == *" $1 "* ]]; }

# ---- settings of the parts hot, reads and big (history sizes) -------------------------------
HOT_ITEMS=${BENCH_HOT_ITEMS:-8}
HOT_CONCURRENCY=${BENCH_HOT_CONCURRENCY:-"8 32"}
READS_C=${BENCH_READS_CONCURRENCY:-32}
HISTORY=${BENCH_HISTORY:-"0 $BIG_ROWS"}
HISTORY_RUNS=${BENCH_HISTORY_RUNS:-1}
HISTORY_AFTER=${BENCH_HISTORY_AFTER:-1}
((BIG_ROWS > 0)) || [[ -n ${BENCH_HISTORY:-} ]] || HISTORY=''
PGSS=${BENCH_PGSS:-$(wanted big && [[ -n $HISTORY ]] && echo 1 || echo 0)}
bad_setting() {
    printf 'bench: %s\n' "$*" >&2
    exit 2
}
[[ $HOT_ITEMS =~ ^[1-9][0-9]*$ ]] && ((HOT_ITEMS <= ${BENCH_ITEMS:-32})) ||
    bad_setting "BENCH_HOT_ITEMS must be in 1..BENCH_ITEMS (the items the suite creates)"
for c in $HOT_CONCURRENCY $READS_C; do
    [[ $c =~ ^[1-9][0-9]*$ ]] && ((c <= 1000)) ||
        bad_setting "BENCH_HOT_CONCURRENCY and BENCH_READS_CONCURRENCY must be connection counts (1..1000)"
done
prev=-1
for h in $HISTORY; do
    [[ $h =~ ^(0|[1-9][0-9]{0,9})$ ]] && ((h > prev && h <= 1000000000)) ||
        bad_setting "BENCH_HISTORY must be row counts in ascending order (e.g. \"0 1000000 3000000\"), at most 1000000000"
    prev=$h
done
[[ $PGSS == 0 || $PGSS == 1 ]] || bad_setting "BENCH_PGSS must be 0 or 1"
[[ $HISTORY_RUNS =~ ^[1-9]$ ]] || bad_setting "BENCH_HISTORY_RUNS must be 1..9 (runs of each op per history size)"
[[ $HISTORY_AFTER == 0 || $HISTORY_AFTER == 1 ]] || bad_setting "BENCH_HISTORY_AFTER must be 0 or 1"
PG_BIN=${GF_PG_BIN:-/usr/lib/postgresql/15/bin}
OUT=$REPO/bench/results/$(date -u +%Y%m%dT%H%M%SZ)
TMP=${GF_BENCH_TMP:-/tmp/gf-bench-$(id -u)}
export GF_STATE_DIR=$TMP/stack GF_READY_TIMEOUT=60
STACK=$REPO/scripts/stack.sh
WRK_DIR=$REPO/bench/wrk
TCK=$(getconf CLK_TCK)

say() { printf 'bench: %s\n' "$*" >&2; }
die() {
    say "$*"
    exit 1
}

# shellcheck source=tests/harness/ports.sh
source "$REPO/tests/harness/ports.sh"
if [[ -n ${BENCH_PORT_BASE:-} ]]; then
    if ! [[ $BENCH_PORT_BASE =~ ^[0-9]+$ ]] || ((BENCH_PORT_BASE < 1024 || BENCH_PORT_BASE > 65519)); then
        die "BENCH_PORT_BASE must be a port number (1024..65519)"
    fi
    pick_ports() { # the block from BENCH_PORT_BASE, if it is free
        local p
        for ((p = BENCH_PORT_BASE; p < BENCH_PORT_BASE + $1; p++)); do
            port_free "$p" || return 1
            printf '%s\n' "$p"
        done
    }
fi
stack_ports || die "no block of free ports"
INGRESS=http://127.0.0.1:$GF_INGRESS_PORT

mkdir -p "$OUT" "$TMP"
printf '%s\n' "$ONLY" >"$OUT/parts"

# ---- the cost of authentication on one core (no stack needed) --------------------------------
if wanted auth; then
    if [[ -x $GF_BUILD_DIR/bin/auth_bench ]]; then
        "$GF_BUILD_DIR/bin/auth_bench" >"$OUT/auth.txt" || die "auth_bench failed"
        say "$(head -n 1 "$OUT/auth.txt")"
    else
        say "no $GF_BUILD_DIR/bin/auth_bench (a tree without authentication): skipped"
    fi
fi

rm -rf "$GF_STATE_DIR"
cleanup() { bash "$STACK" down >"$OUT/stack-down.log" 2>&1 || true; }
trap cleanup EXIT
say "starting the stack on ports $GF_GXP_DB_PORT.. (state: $GF_STATE_DIR)"
# pg_stat_statements for the history sizes' "where the time goes": loaded at the clusters'
# start (it needs shared memory), every statement counted, those inside gxp's functions and
# triggers too (track = all). Its cost per statement is a hash lookup and a spinlock.
if ((PGSS)); then
    export GF_PG_EXTRA_CONF="shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
pg_stat_statements.max = 2000"
fi
# The closed-loop runs measure the unthrottled system: the backends start with admission control
# off (ARCHITECTURE §3, "Admission control"); the part open turns it on for its own runs, since
# shedding under an offered load is what it judges, and off again afterwards (bench/open.sh).
export GF_EXTRA_ENV="${GF_EXTRA_ENV:-} BACKEND_ADMIT=false"
bash "$STACK" up >"$OUT/stack-up.log" 2>&1 || die "stack up failed: see $OUT/stack-up.log"

# PostgreSQL over TCP wants postgres's password (scram): the PGPASSFILE `up` wrote, for psql
# here and for pgbench and psql in floor/ and load_rows.sh.
if [[ -s $GF_STATE_DIR/secrets/pgpass ]]; then
    export PGPASSFILE=$GF_STATE_DIR/secrets/pgpass
fi

# ---- the operator's token --------------------------------------------------------------------
# login: a fresh token into TOKEN (tokens live an hour; each wrk run gets its own), or none when
# the stack has no operator (a tree from before authentication: anonymous requests).
ADMIN_PW_FILE=$GF_STATE_DIR/secrets/admin.password
TOKEN=''
login() {
    [[ -s $ADMIN_PW_FILE ]] || return 0
    local body
    body=$(jq -cn --rawfile pw "$ADMIN_PW_FILE" '{name: "admin", password: ($pw | rtrimstr("\n"))}')
    TOKEN=$(curl -fsS -H 'Content-Type: application/json' --data-binary @- "$INGRESS/auth/login" \
        <<<"$body" | jq -er .token) || die "POST /auth/login as admin failed"
}
login
if [[ -n $TOKEN ]]; then
    say "logged in as admin: requests to routes that need a token carry its bearer token"
    AUTH_HDR=(-H "Authorization: Bearer $TOKEN")
    echo bearer >"$OUT/auth-mode"
else
    say "no operator in this stack ($ADMIN_PW_FILE): anonymous requests"
    AUTH_HDR=()
    echo anonymous >"$OUT/auth-mode"
fi

psql_at() { # PORT SQL: one value
    "$PG_BIN/psql" -X -q -A -t -h 127.0.0.1 -p "$1" -U postgres -d postgres -v ON_ERROR_STOP=1 -c "$2"
}

# ---- processes: pid of each measured unit, and CPU time of a process tree ------------------
pid_of_prog() { awk '{print $1; exit}' "$GF_STATE_DIR/run/$1.pid"; }
pid_of_pg() { sed -n 1p "$GF_STATE_DIR/data/$1/postmaster.pid"; }
pid_of_broker() { sed -n 's/^beam=\([0-9]*\).*/\1/p' "$GF_STATE_DIR/data/broker/pids"; }
declare -A PID=() PEAK_KIB=()
UNITS=(backend-svc-1 backend-svc-2 gxp-1 gxp-2 eventlog ingress backend-db gxp-db eventlog-db broker)
SERVICES=(backend-svc-1 backend-svc-2 gxp-1 gxp-2 eventlog)
# stack_pids: the pid of each measured unit of the running stack
stack_pids() {
    local u
    for u in backend-svc-1 backend-svc-2 gxp-1 gxp-2 eventlog ingress; do PID[$u]=$(pid_of_prog "$u"); done
    for u in backend-db gxp-db eventlog-db; do PID[$u]=$(pid_of_pg "$u"); done
    PID[broker]=$(pid_of_broker)
    for u in "${UNITS[@]}"; do [[ -d /proc/${PID[$u]:-0} ]] || die "no process for $u"; done
}
stack_pids
# keep_peaks: each service's and the broker's peak RSS so far into PEAK_KIB, kept across a
# restart of the stack (the history's fresh stack) or of the backends (the part open)
keep_peaks() {
    local u k
    for u in "${SERVICES[@]}" broker; do
        k=$(awk '/^VmHWM:/ {print $2}' "/proc/${PID[$u]}/status" 2>/dev/null || echo 0)
        ((k > ${PEAK_KIB[$u]:-0})) && PEAK_KIB[$u]=$k
    done
    return 0
}

# stat_ticks, tree_ticks: CPU time of a process tree
source "$REPO/bench/cpu.sh"
declare -A T0=()
cpu_mark() { for u in "${UNITS[@]}"; do T0[$u]=$(tree_ticks "${PID[$u]}"); done; }
# cpu_per_req N: "unit=ms ..." CPU ms per request of each unit since cpu_mark.
cpu_per_req() {
    local n=$1 u out=()
    for u in "${UNITS[@]}"; do
        out+=("$u=$(awk -v a="${T0[$u]}" -v b="$(tree_ticks "${PID[$u]}")" -v t="$TCK" -v n="$n" \
            'BEGIN { printf "%.3f", (n > 0 ? (b - a) * 1000 / t / n : 0) }')")
    done
    echo "${out[*]}"
}

# ---- seed: users with plenty of GXP, ITEMS items of cost 1 with stock that cannot run out ----
say "seeding $USERS users"
seed_cfg=$TMP/seed.curl
# seed_send CFG: curl's parallel POSTs of CFG, sent again whole (up to 10 times, 1 s apart) while
# any failed: admission control sheds POSTs with 503 overloaded when replication or the outbox
# falls behind (ARCHITECTURE §3, "Admission control"), and each request carries its own
# Idempotency-Key, so what succeeded before is only replayed.
SEED_RUN=$$-$(date +%s)
seed_send() {
    local try
    for try in 1 2 3 4 5 6 7 8 9 10; do
        curl --no-progress-meter -Z --parallel-max 8 -K "$1" 2>"$TMP/seed.err" && return 0
        say "seeding: $(grep -c . "$TMP/seed.err") requests failed (try $try), sending again"
        sleep 1
    done
    cat "$TMP/seed.err" >&2
    return 1
}

# curl_each PATH BODY-FORMAT: one POST per user (the format gets the user's number), 8 at a
# time over kept-alive connections. `next` starts each request's own options.
curl_each() {
    local i
    for ((i = 1; i <= USERS; i++)); do
        ((i == 1)) || echo next
        # shellcheck disable=SC2059 # the format is the caller's
        printf "url = \"%s%s\"\nheader = \"Content-Type: application/json\"\ndata = \"$2\"\noutput = \"/dev/null\"\nfail\nsilent\nshow-error\n" \
            "$INGRESS" "$1" "$i"
        printf 'header = "Idempotency-Key: bench-%s-%s-%d"\n' "$SEED_RUN" "${1//\//-}" "$i"
        [[ -z $TOKEN ]] || printf 'header = "Authorization: Bearer %s"\n' "$TOKEN"
    done >"$seed_cfg"
    seed_send "$seed_cfg"
}
# seed_all: the users, their GXP and the items, on the stack just started
seed_all() {
    local i users_made
    curl_each /user/create '{\\"name\\":\\"bench-user-%d\\"}' || die "creating users failed"
    users_made=$(psql_at "$GF_BACKEND_DB_PORT" "SELECT count(*) FROM users")
    ((users_made == USERS)) || die "$users_made users, want $USERS"
    curl_each /user/gxp/add '{\\"userId\\":%d,\\"amount\\":1000000000}' || die "adding GXP failed"
    for ((i = 1; i <= ITEMS; i++)); do
        curl -fsS -o /dev/null -H 'Content-Type: application/json' "${AUTH_HDR[@]}" \
            -d "{\"name\":\"bench-item-$i\",\"cost\":1}" "$INGRESS/item/create"
        curl -fsS -o /dev/null -H 'Content-Type: application/json' "${AUTH_HDR[@]}" \
            -d "{\"itemId\":$i,\"count\":2000000000}" "$INGRESS/marketplace/item/create"
    done || die "creating items failed"
}
seed_all
export USERS ITEMS

# Waits until gxp has nothing PENDING and eventlog has stored every event: a quiet system.
quiesce() {
    local deadline=$((SECONDS + 120)) pending events outbox steps
    while ((SECONDS < deadline)); do
        pending=$(psql_at "$GF_GXP_DB_PORT" "SELECT count(*) FROM gxp_transaction WHERE status = 0")
        outbox=$(psql_at "$GF_BACKEND_DB_PORT" "SELECT count(*) FROM event_outbox WHERE published_at IS NULL")
        # the newest event's id (an identity: it only grows), not count(*), which read the
        # whole table every second once history had grown it (0.75 s at 2M rows)
        events=$(psql_at "$GF_EVENTLOG_DB_PORT" "SELECT coalesce(max(id), 0) FROM event")
        steps=$(psql_at "$GF_BACKEND_DB_PORT" "SELECT count(*) FROM saga_steps
            WHERE state = 'pending' AND due_at <= now()")
        [[ $pending == 0 && $outbox == 0 && $steps == 0 && $events == "${LAST_EVENTS:-x}" ]] &&
            return 0
        LAST_EVENTS=$events
        sleep 1
    done
    say "the system did not quiesce in 120 s (pending=$pending outbox=$outbox saga steps due=$steps)"
}

# ---- one wrk run ------------------------------------------------------------------------------
# run_wrk LABEL SCRIPT PATH CONNS: appends a line to $OUT/runs.tsv; wrk's whole output stays in
# WRK_RAW (a script's own report lines). Every request carries the operator's bearer token (a
# fresh one: BENCH_TOKEN, the wrk scripts read it); WRK_THREADS tells a script wrk's -t.
printf 'label\tconns\trps\tp50\tp90\tp99\tmax\terrors\tnon2xx\tcpu\n' >"$OUT/runs.tsv"
run_wrk() {
    local label=$1 script=$2 path=$3 c=$4 threads line
    threads=$((c < 2 ? c : 2))
    login
    quiesce
    cpu_mark
    WRK_RAW=$(GF_WRK_REPORT=$WRK_DIR/report.lua BENCH_TOKEN=$TOKEN WRK_THREADS=$threads \
        wrk -t"$threads" -c"$c" -d"${SECS}s" --timeout 5s -s "$WRK_DIR/$script" "$INGRESS$path" 2>&1)
    line=$(sed -n 's/^GFBENCH //p' <<<"$WRK_RAW")
    [[ -n $line ]] || die "wrk printed no report for $label c=$c"
    field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$line"; }
    local rps p50 p90 p99 max errors non2xx
    rps=$(field rps) p50=$(field p50) p90=$(field p90) p99=$(field p99) max=$(field max)
    errors=$(field errors) non2xx=$(field non2xx)
    # CPU per request over the run and the tail it caused (replication, relay, eventlog).
    quiesce
    local n
    n=$(awk -v r="$rps" -v s="$SECS" 'BEGIN { printf "%d", r * s }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$c" "$rps" "$p50" "$p90" "$p99" \
        "$max" "$errors" "$non2xx" "$(cpu_per_req "$n")" >>"$OUT/runs.tsv"
    say "$label c=$c: $rps req/s, p99 $p99 ms, errors $errors"
}

# Finalization latency of the gxp transactions created since a mark: the decision's commit on
# backend-db (its created_at, carried by replication; the decision transaction's start, so
# this is an upper bound) to COMMITTED/ABORTED on gxp-db.
fin_mark() { FIN0=$(psql_at "$GF_GXP_DB_PORT" "SELECT coalesce(max(id), 0) FROM gxp_transaction"); }
fin_latency() { # -> "p50 p99 n" in ms
    psql_at "$GF_GXP_DB_PORT" "SELECT coalesce(round((percentile_cont(0.5) WITHIN GROUP (ORDER BY d))::numeric, 2), 0)
        || ' ' || coalesce(round((percentile_cont(0.99) WITHIN GROUP (ORDER BY d))::numeric, 2), 0) || ' ' || count(*)
        FROM (SELECT extract(epoch FROM t.finalized_at - o.created_at) * 1000 AS d
              FROM gxp_transaction t JOIN transaction_outbox o USING (correlation_id)
              WHERE t.id > $FIN0 AND t.finalized_at IS NOT NULL) x"
}
# Event lag since a mark: the buy's commit (occurredAt) to eventlog's commit (stored_at).
ev_mark() { EV0=$(psql_at "$GF_EVENTLOG_DB_PORT" "SELECT coalesce(max(id), 0) FROM event"); }
ev_lag() { # -> "p50 p99 n" in ms
    psql_at "$GF_EVENTLOG_DB_PORT" "SELECT coalesce(round((percentile_cont(0.5) WITHIN GROUP (ORDER BY d))::numeric, 2), 0)
        || ' ' || coalesce(round((percentile_cont(0.99) WITHIN GROUP (ORDER BY d))::numeric, 2), 0) || ' ' || count(*)
        FROM (SELECT extract(epoch FROM stored_at - occurred_at) * 1000 AS d FROM event WHERE id > $EV0) x"
}

# ---- auctions ---------------------------------------------------------------------------------
# curl_posts PATH: one POST of each JSON body read from stdin (a line each), 8 at a time over
# kept-alive connections, with the operator's token.
curl_posts() {
    local body first=1 cfg=$TMP/posts.curl n=0 batch
    batch=$(date +%s%N) # this call's: a key names one request of one call
    while IFS= read -r body; do
        ((first)) || echo next
        first=0
        n=$((n + 1))
        printf 'url = "%s%s"\nheader = "Content-Type: application/json"\ndata = "%s"\n' \
            "$INGRESS" "$1" "${body//\"/\\\"}"
        printf 'output = "/dev/null"\nfail\nsilent\nshow-error\n'
        printf 'header = "Idempotency-Key: bench-%s-%s-%d-%d"\n' "$SEED_RUN" "${1//\//-}" "$batch" "$n"
        [[ -z $TOKEN ]] || printf 'header = "Authorization: Bearer %s"\n' "$TOKEN"
    done >"$cfg"
    seed_send "$cfg"
}

# Users 1..SELLERS hold units of an item not on sale (bench-auction-item): the sellers. Each
# auction puts one unit of one of them up (minimum bid 1); the others bid.
declare -A SELLER_UI=()
auction_setup() {
    local item i u ui
    login
    item=$(curl -fsS -H 'Content-Type: application/json' "${AUTH_HDR[@]}" \
        -d '{"name":"bench-auction-item","cost":1}' "$INGRESS/item/create" | jq -er .itemId) ||
        die "creating the auctions' item failed"
    for ((i = 1; i <= SELLERS; i++)); do
        printf '{"userId":%d,"itemId":%d,"count":1000000}\n' "$i" "$item"
    done | curl_posts /user/item/create || die "giving the sellers their units failed"
    while IFS='|' read -r u ui; do
        SELLER_UI[$u]=$ui
    done < <(psql_at "$GF_BACKEND_DB_PORT" "SELECT user_id, id FROM user_items WHERE item_id = $item")
    ((${#SELLER_UI[@]} == SELLERS)) || die "${#SELLER_UI[@]} sellers have units, want $SELLERS"
}
# create_auctions FROM TO DURATION: auctions FROM..TO-1 (seller: 1 + the number mod SELLERS).
create_auctions() {
    local i s
    for ((i = $1; i < $2; i++)); do
        s=$((1 + i % SELLERS))
        printf '{"userId":%d,"userItemId":%d,"minBid":1,"durationSeconds":%d}\n' "$s" \
            "${SELLER_UI[$s]}" "$3"
    done | curl_posts /auction/create
}
max_auction() { psql_at "$GF_BACKEND_DB_PORT" "SELECT coalesce(max(id), 0) FROM auctions"; }

# The auctions the bids go to: AUCTIONS of them, open for a day (the suite ends first).
BID_FIRST=0
bid_setup() {
    local mark got
    mark=$(max_auction)
    login
    create_auctions 0 "$AUCTIONS" 86400 || die "creating the auctions to bid on failed"
    got=$(psql_at "$GF_BACKEND_DB_PORT" "SELECT count(*) || ' ' || (max(id) - min(id) + 1)
        FROM auctions WHERE id > $mark")
    [[ $got == "$AUCTIONS $AUCTIONS" ]] || die "auctions to bid on: $got made, want $AUCTIONS in a row"
    BID_FIRST=$((mark + 1))
    say "$AUCTIONS open auctions to bid on (ids $BID_FIRST..$((BID_FIRST + AUCTIONS - 1)))"
}

# run_bid CONNS: bids through wrk (bid.lua), each above the last one on its auction; the 200s
# and 409s apart, and how long the refunds of the outbid bids took (a saga step each, from the
# commit of the bid that outbid it: done_at - created_at) into bids.tsv.
run_bid() {
    local c=$1 s0 n200 n409 nother
    s0=$(psql_at "$GF_BACKEND_DB_PORT" "SELECT coalesce(max(id), 0) FROM saga_steps")
    BID_BASE=$(psql_at "$GF_BACKEND_DB_PORT" "SELECT coalesce(max(leading_amount), 0) + 1
        FROM auctions WHERE id >= $BID_FIRST AND id < $((BID_FIRST + AUCTIONS))")
    AUCTION_FIRST=$BID_FIRST
    export AUCTION_FIRST AUCTIONS SELLERS BID_BASE
    run_wrk bid bid.lua / "$c"
    n200=$(sed -n 's/^GFBID .*n200=\([0-9]*\).*/\1/p' <<<"$WRK_RAW")
    n409=$(sed -n 's/^GFBID .*n409=\([0-9]*\).*/\1/p' <<<"$WRK_RAW")
    nother=$(sed -n 's/^GFBID .*nother=\([0-9]*\).*/\1/p' <<<"$WRK_RAW")
    [[ -n $n200 && -n $n409 && -n $nother ]] || die "bid.lua printed no GFBID line"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$SECS" "$n200" "$n409" "$nother" \
        "$(psql_at "$GF_BACKEND_DB_PORT" "SELECT
            coalesce(round((percentile_cont(0.5) WITHIN GROUP (ORDER BY d))::numeric, 1), 0) || E'\t' ||
            coalesce(round((percentile_cont(0.99) WITHIN GROUP (ORDER BY d))::numeric, 1), 0) || E'\t' ||
            count(*) FROM (SELECT extract(epoch FROM done_at - created_at) * 1000 AS d
            FROM saga_steps WHERE id > $s0 AND kind = 'refund' AND state = 'done') x")" \
        >>"$OUT/bids.tsv"
    say "bid c=$c: $(awk -v n="$n200" -v s="$SECS" 'BEGIN { printf "%.0f", n / s }') accepted/s," \
        "$(awk -v n="$n409" -v s="$SECS" 'BEGIN { printf "%.0f", n / s }') refused 409/s, other $nother"
}

# The settlement: SETTLE_AUCTIONS auctions that end in the same second, SETTLE_LEAD_S after
# the start (each creation's durationSeconds is that second minus its own start), then one bid
# on each; timed from their end until every one is settled and every payout done, from
# backend-db's own times (closed_at, the payout step's done_at) and gxp-db's (the payouts'
# finalized_at).
settle_bench() {
    local n=$SETTLE_AUCTIONS mark end_s t0 t1 t2 k dur open paid deadline cids ends0 row applied
    quiesce
    login
    mark=$(max_auction)
    t0=$(date +%s%3N)
    end_s=$((t0 / 1000 + SETTLE_LEAD_S))
    for ((k = 0; k < n; k += 100)); do
        dur=$((end_s - $(date +%s)))
        ((dur >= 5)) || die "settle: creating $n auctions took too long for BENCH_SETTLE_LEAD_S=$SETTLE_LEAD_S"
        create_auctions "$k" "$((k + 100 < n ? k + 100 : n))" "$dur" ||
            die "settle: creating auctions failed"
    done
    t1=$(date +%s%3N)
    [[ $(psql_at "$GF_BACKEND_DB_PORT" "SELECT count(*) FROM auctions WHERE id > $mark") == "$n" ]] ||
        die "settle: not $n auctions made"
    psql_at "$GF_BACKEND_DB_PORT" "SELECT id FROM auctions WHERE id > $mark ORDER BY id" |
        awk -v s="$SELLERS" -v u="$USERS" \
            '{ printf "{\"auctionId\":%d,\"userId\":%d,\"amount\":1}\n", $1, s + 1 + NR % (u - s) }' |
        curl_posts /auction/bid || die "settle: bidding failed"
    t2=$(date +%s%3N)
    [[ $(psql_at "$GF_BACKEND_DB_PORT" "SELECT count(*) FROM auction_bids b JOIN auctions a
        ON a.id = b.auction_id WHERE a.id > $mark AND b.created_at < a.ends_at") == "$n" ]] ||
        die "settle: not $n bids before the end (BENCH_SETTLE_LEAD_S=$SETTLE_LEAD_S too short?)"
    say "settle: $n auctions created in $((t1 - t0)) ms and bid on in $((t2 - t1)) ms; they end at $(date -u -d "@$end_s" +%H:%M:%S)"
    deadline=$((end_s + 180))
    while :; do
        read -r open paid <<<"$(psql_at "$GF_BACKEND_DB_PORT" "SELECT
            (SELECT count(*) FROM auctions WHERE id > $mark AND status = 'open') || ' ' ||
            (SELECT count(*) FROM saga_steps WHERE auction_id > $mark AND kind = 'payout'
             AND state = 'done')")"
        [[ $open == 0 && $paid == "$n" ]] && break
        (($(date +%s) < deadline)) || die "settle: $open still open, $paid of $n paid out 180 s after the end"
        sleep 0.25
    done
    quiesce # the payouts applied on gxp
    row=$(psql_at "$GF_BACKEND_DB_PORT" "SELECT
        round((extract(epoch FROM max(a.ends_at) - min(a.ends_at)) * 1000)::numeric) || E'\t' ||
        round((extract(epoch FROM max(a.closed_at) - min(a.ends_at)) * 1000)::numeric) || E'\t' ||
        round((extract(epoch FROM max(p.done_at) - min(a.ends_at)) * 1000)::numeric) || E'\t' ||
        round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM p.done_at - a.ends_at)))::numeric * 1000) || E'\t' ||
        round((percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM p.done_at - a.ends_at)))::numeric * 1000)
        FROM auctions a JOIN saga_steps p ON p.auction_id = a.id AND p.kind = 'payout'
        WHERE a.id > $mark")
    ends0=$(psql_at "$GF_BACKEND_DB_PORT" "SELECT extract(epoch FROM min(ends_at)) FROM auctions WHERE id > $mark")
    cids=$(psql_at "$GF_BACKEND_DB_PORT" "SELECT string_agg(correlation_id::text, ',') FROM saga_steps
        WHERE auction_id > $mark AND kind = 'payout'")
    applied=$(psql_at "$GF_GXP_DB_PORT" "SELECT round(((extract(epoch FROM max(finalized_at)) - $ends0) * 1000)::numeric)
        || ' ' || count(*) FILTER (WHERE status = 2) FROM gxp_transaction
        WHERE correlation_id = ANY (string_to_array('$cids', ',')::uuid[])")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$((t1 - t0))" "$((t2 - t1))" "$row" \
        "${applied% *}" "${applied#* }" >>"$OUT/settle.tsv"
    say "settle: $n auctions ending within $(cut -f1 <<<"$row") ms of each other: all settled $(cut -f2 <<<"$row") ms and all paid out $(cut -f3 <<<"$row") ms after the first end"
}

if wanted bid || wanted settle; then
    auction_setup
fi
printf 'conns\tsecs\tn200\tn409\tnother\trefund_p50\trefund_p99\trefunds\n' >"$OUT/bids.tsv"
printf 'auctions\tcreate_ms\tbid_ms\tends_spread_ms\tsettled_ms\tpaid_ms\tpaid_p50_ms\tpaid_p99_ms\tapplied_ms\tapplied_n\n' \
    >"$OUT/settle.tsv"
if wanted bid; then
    bid_setup
fi

# ---- the read floor (part reads) -------------------------------------------------------------
# read_floor ROUTE: pgbench on backend-db running the SELECT the backend runs for ROUTE
# (bench/floor/get-item.sql, get-user.sql) with READS_C clients, right after the route's own run
# through nginx at READS_C (the main loop's, or read_route's), so that both see the same
# machine; a line in reads.tsv. The route's answer and the SELECT must give as many rows.
printf 'route\tconns\tfloor_tps\tfloor_lat_ms\trows\n' >"$OUT/reads.tsv"
LIST_CAP=10000 # BACKEND_LIST_CAP's default (backend/config.c), which scripts/stack.sh leaves
read_floor() {
    local route=$1 script limit sql path key out tps lat rows api_rows
    case $route in
    "GET /item") script=get-item.sql limit=$LIST_CAP path=/item key=items
        sql="SELECT count(*) FROM (SELECT id FROM items WHERE id > 0 ORDER BY id LIMIT $limit) x" ;;
    "GET /user") script=get-user.sql limit=100 path="/user?limit=100" key=users
        sql="SELECT count(*) FROM (SELECT id FROM users WHERE id > 0 ORDER BY id LIMIT $limit) x" ;;
    esac
    rows=$(psql_at "$GF_BACKEND_DB_PORT" "$sql")
    api_rows=$(curl -fsS "${AUTH_HDR[@]}" "$INGRESS$path" | jq -er ".$key | length") ||
        die "reads: $route failed"
    [[ $rows == "$api_rows" ]] || die "reads: $route answered $api_rows rows, its SELECT $rows"
    quiesce
    out=$("$PG_BIN/pgbench" -n -M prepared -c "$READS_C" -j "$((READS_C < 2 ? READS_C : 2))" \
        -T "$SECS" -h 127.0.0.1 -p "$GF_BACKEND_DB_PORT" -U postgres -D limit="$limit" \
        -f "$REPO/bench/floor/$script" postgres 2>&1) || die "reads: pgbench for $route failed: $out"
    tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -n 1)
    lat=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' <<<"$out" | head -n 1)
    [[ -n $tps && -n $lat ]] || die "reads: no tps in pgbench's output for $route: $out"
    printf '%s\t%s\t%s\t%s\t%s\n' "$route" "$READS_C" "$tps" "$lat" "$rows" >>"$OUT/reads.tsv"
    say "read floor $route c=$READS_C: $tps SELECTs/s ($rows rows each)"
}
# read_route ROUTE PATH [C]: the route's run through nginx, then its floor when the part is
# wanted and C is the floor's concurrency.
read_route() {
    run_wrk "$1" get.lua "$2" "$3"
    if wanted reads && (($3 == READS_C)); then read_floor "$1"; fi
}

printf 'label\tconns\tfin_p50\tfin_p99\tfin_n\tev_p50\tev_p99\tev_n\n' >"$OUT/lags.tsv"
for c in $CONCURRENCY; do
    if wanted get-item; then read_route "GET /item" /item "$c"; fi
    if wanted get-user; then read_route "GET /user" "/user?limit=100" "$c"; fi
    if wanted add-gxp; then
        fin_mark
        run_wrk add-gxp add_gxp.lua / "$c"
        read -r fp50 fp99 fn <<<"$(fin_latency)"
        printf 'add-gxp\t%s\t%s\t%s\t%s\t-\t-\t0\n' "$c" "$fp50" "$fp99" "$fn" >>"$OUT/lags.tsv"
    fi
    if wanted buy; then
        fin_mark
        ev_mark
        run_wrk buy buy.lua / "$c"
        read -r fp50 fp99 fn <<<"$(fin_latency)"
        read -r ep50 ep99 en <<<"$(ev_lag)"
        printf 'buy\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$fp50" "$fp99" "$fn" "$ep50" "$ep99" "$en" >>"$OUT/lags.tsv"
    fi
    if wanted bid; then
        fin_mark
        run_bid "$c"
        read -r fp50 fp99 fn <<<"$(fin_latency)"
        printf 'bid\t%s\t%s\t%s\t%s\t-\t-\t0\n' "$c" "$fp50" "$fp99" "$fn" >>"$OUT/lags.tsv"
    fi
done
# The read floor of a route the main loop did not run at READS_C: both runs here.
if wanted reads; then
    if ! wanted get-item || [[ " $CONCURRENCY " != *" $READS_C "* ]]; then
        read_route "GET /item" /item "$READS_C"
    fi
    if ! wanted get-user || [[ " $CONCURRENCY " != *" $READS_C "* ]]; then
        read_route "GET /user" "/user?limit=100" "$READS_C"
    fi
fi

# ---- hot items (part hot) ---------------------------------------------------------------------
# Buys over HOT_ITEMS items only (1..HOT_ITEMS, each with a stock that cannot run out), at each
# of HOT_CONCURRENCY: many buys meet on one stock row. A buy takes the stock with a conditional
# UPDATE and waits for the row's lock (ARCHITECTURE §3, "Hot rows"); what the backends measured of
# that meanwhile, from their /metrics before and after: backend_buy_stock_take_seconds (the
# UPDATE, its wait for the lock included), its count and sum.
stock_takes() { # -> "count sum_seconds", both backends summed
    local p m n=0 sum=0 c s
    for p in "$GF_BACKEND1_HTTP_PORT" "$GF_BACKEND2_HTTP_PORT"; do
        m=$(curl -fsS --max-time 5 "http://127.0.0.1:$p/metrics") || die "hot: no /metrics on port $p"
        c=$(awk '$1 == "backend_buy_stock_take_seconds_count" { print $2 }' <<<"$m")
        s=$(awk '$1 == "backend_buy_stock_take_seconds_sum" { print $2 }' <<<"$m")
        n=$((n + ${c:-0}))
        sum=$(awk -v a="$sum" -v b="${s:-0}" 'BEGIN { printf "%.6f", a + b }')
    done
    echo "$n $sum"
}
printf 'conns\titems\tbuys\trps\tp50\tp99\tnon2xx\ttakes\ttake_mean_ms\n' >"$OUT/hot.tsv"
if wanted hot; then
    all_items=$ITEMS
    ITEMS=$HOT_ITEMS # buy.lua's items: 1..ITEMS
    for c in $HOT_CONCURRENCY; do
        read -r n0 s0 <<<"$(stock_takes)"
        run_wrk "buy (hot, $HOT_ITEMS items)" buy.lua / "$c"
        read -r n1 s1 <<<"$(stock_takes)"
        line=$(sed -n 's/^GFBENCH //p' <<<"$WRK_RAW")
        read -r rps p50 p99 non2xx < <(awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            print v["rps"], v["p50"], v["p99"], v["non2xx"] }' <<<"$line")
        buys=$(awk -v r="$rps" -v s="$SECS" 'BEGIN { printf "%d", r * s }')
        take_ms=$(awk -v n="$((n1 - n0))" -v a="$s0" -v b="$s1" 'BEGIN { printf "%.3f", (n > 0 ? 1000 * (b - a) / n : 0) }')
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$HOT_ITEMS" "$buys" "$rps" "$p50" "$p99" \
            "$non2xx" "$((n1 - n0))" "$take_ms" >>"$OUT/hot.tsv"
        say "hot c=$c: $rps buys/s, p99 $p99 ms; $((n1 - n0)) stock takes, $take_ms ms each on average (the row lock's wait included)"
    done
    ITEMS=$all_items
fi

if wanted settle; then
    settle_bench
fi

# ---- open loop: a fixed arrival rate at 0.5x, 1x and 2x the peak (bench/open.sh) --------------
if wanted open; then
    # shellcheck source=bench/open.sh
    source "$REPO/bench/open.sh"
    open_part
fi

# ---- the console's cost: the buy at the highest concurrency, console closed and open ---------
# Open = an operator's stream (GET /console/api/stream through the ingress, as the console's
# page reads it) receiving every stage of every buy for the whole run; the stages it got are
# counted, so that a stream that was not streaming cannot pass for a cheap one. Closed = no
# process takes notes: 10 s after the last stream no backend consumes the feed, 15 s later its
# queue is gone and the services stop noting (ARCHITECTURE §3e); the runs wait 30 s for that,
# and a closed run during which a service sent notes is reported as not closed.
# This machine's throughput drifts by tens of percent between runs a minute apart, so the runs
# alternate: closed, open, closed, open, closed, open, closed; each open run is set against the
# mean of the closed runs beside it, and the median of those three ratios is the figure.
rps_of() { awk -F'\t' -v l="$1" -v c="$2" '$1 == l && $2 == c { r = $3 } END { print r }' "$OUT/runs.tsv"; }
notes_sent() { # the notes every service sent to gf.console so far
    local p total=0 v
    for p in "$GF_BACKEND1_HTTP_PORT" "$GF_BACKEND2_HTTP_PORT" "$GF_GXP_HTTP_PORT" "$GF_GXP2_HTTP_PORT" \
        "$GF_EVENTLOG_HTTP_PORT"; do
        v=$(curl -fsS --max-time 5 "http://127.0.0.1:$p/metrics" |
            awk '$1 == "gf_console_notes_sent_total" { print $2 }') || v=0
        total=$((total + ${v:-0}))
    done
    echo "$total"
}
if wanted console; then
    cmax=0
    for c in $CONCURRENCY; do ((c > cmax)) && cmax=$c; done
    # A warm-up first: the first runs on a fresh stack are the fastest (small tables, empty
    # caches of the broker and eventlog).
    run_wrk "buy (console warm-up)" buy.lua / "$cmax"
    printf 'round\tclosed_before\topen\tclosed_after\tstages\tclosed_ok\n' >"$OUT/console-runs.tsv"
    closed_run() { # K: one closed run; CLOSED_OK=yes when no note was sent during it
        local n0 n1
        n0=$(notes_sent)
        run_wrk "buy (console closed $1)" buy.lua / "$cmax"
        n1=$(notes_sent)
        CLOSED_OK=yes
        if ((n1 != n0)); then
            say "console: $((n1 - n0)) notes were sent during the closed run $1"
            CLOSED_OK=no
        fi
    }
    closed_run 1
    ok=$CLOSED_OK
    for k in 1 2 3; do
        login
        stream=$OUT/console-stream-$k.txt
        curl -sN --max-time $((SECS + 120)) -H "Authorization: Bearer $TOKEN" "$INGRESS/console/api/stream" >"$stream" &
        stream_pid=$!
        sleep 2 # the services hear that a console watches (their probes, every 500 ms)
        run_wrk "buy (console open $k)" buy.lua / "$cmax"
        kill "$stream_pid" 2>/dev/null || true
        wait "$stream_pid" 2>/dev/null || true
        # the stages in the "txs" frames (each frame carries a feed message's worth)
        stages=$(awk '/^event: txs$/ { getline; n += gsub(/"stage":/, "") } END { print n + 0 }' "$stream")
        sleep 30
        closed_run $((k + 1))
        ok2=$CLOSED_OK
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$k" "$(rps_of "buy (console closed $k)" "$cmax")" \
            "$(rps_of "buy (console open $k)" "$cmax")" "$(rps_of "buy (console closed $((k + 1)))" "$cmax")" \
            "$stages" "$([[ $ok == yes && $ok2 == yes ]] && echo yes || echo no)" >>"$OUT/console-runs.tsv"
        ok=$ok2
    done
    # conns, closed (the mean of the closed runs), open (the mean of the open runs), the stages
    # streamed, the median of the three open/closed-beside ratios, whether every closed run was
    read -r closed opened stages ratio allok < <(awk -F'\t' 'NR > 1 {
            c = ($2 + $4) / 2; r[NR - 1] = $3 / c; o += $3; s += $5; if ($6 != "yes") bad = 1
            cs[NR - 1] = $2; cl = $4; n++ }
        END {
            for (i = 1; i <= n; i++) cm += cs[i]; cm = (cm + cl) / (n + 1)
            # the median of n (3) ratios
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (r[j] < r[i]) { t = r[i]; r[i] = r[j]; r[j] = t }
            printf "%.1f %.1f %d %.4f %s\n", cm, o / n, s, r[int((n + 1) / 2)], bad ? "no" : "yes" }' "$OUT/console-runs.tsv")
    printf 'conns\tclosed_rps\topen_rps\tstages\tmedian_ratio\tclosed_ok\n%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$cmax" "$closed" "$opened" "$stages" "$ratio" "$allok" >"$OUT/console.tsv"
    say "console: buy c=$cmax $closed/s closed, $opened/s open (means); open/closed beside it, median of 3: $ratio ($stages stages streamed)"
fi

# ---- the floor: the same SQL with no service in between --------------------------------------
printf 'op\tconns\ttps\tbackend_tps\tgxp_tps\tbackend_cpu_ms\tgxp_cpu_ms\n' >"$OUT/floor.tsv"
floor_ops='buy add'
wanted floor || floor_ops=''
for op in $floor_ops; do
    for c in $CONCURRENCY; do
        quiesce
        line=$(BACKEND_DB_PORT=$GF_BACKEND_DB_PORT GXP_DB_PORT=$GF_GXP_DB_PORT \
            FLOOR_USERS=$USERS FLOOR_ITEMS=$ITEMS \
            FLOOR_CPU_PIDS="backend=${PID[backend-db]} gxp=${PID[gxp-db]}" \
            bash "$REPO/bench/floor/floor.sh" "$op" "$c" "$SECS") || die "floor $op c=$c failed"
        line=$(grep '^FLOOR ' <<<"$line" | tail -1)
        tps=$(sed -n 's/.* tps=\([0-9.]*\).*/\1/p' <<<"$line")
        btps=$(sed -n 's/.*backend_tps=\([0-9.]*\).*/\1/p' <<<"$line")
        gtps=$(sed -n 's/.*gxp_tps=\([0-9.]*\).*/\1/p' <<<"$line")
        bcpu=$(sed -n 's/.*backend_cpu_ms=\([0-9.]*\).*/\1/p' <<<"$line")
        gcpu=$(sed -n 's/.*gxp_cpu_ms=\([0-9.]*\).*/\1/p' <<<"$line")
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$op" "$c" "$tps" "$btps" "$gtps" "${bcpu:--}" "${gcpu:--}" >>"$OUT/floor.tsv"
        say "floor $op c=$c: $tps tx/s; CPU per transaction: backend-db ${bcpu:--} ms, gxp-db ${gcpu:--} ms"
    done
done

# ---- history sizes (part big) -----------------------------------------------------------------
# For each size of BENCH_HISTORY (a total of history rows), grown to it by bench/load_rows.sh
# (through the same tables and replication as the real thing, in chunks), the buy and the add-gxp
# runs at the highest concurrency, with their finalization and event lag: a line each in
# history.tsv. With pg_stat_statements (PGSS), its counters are reset before each size's runs
# and read after them: the statements of those runs alone, by total time, per database
# (pgss-<rows>-<cluster>.tsv), and every index's size (indexes-<rows>-<cluster>.tsv).
big_c=$(tr ' ' '\n' <<<"$CONCURRENCY" | tail -1)
HIST_DBS=(backend-db gxp-db eventlog-db)
declare -A HIST_PORT=([backend-db]=$GF_BACKEND_DB_PORT [gxp-db]=$GF_GXP_DB_PORT
    [eventlog-db]=$GF_EVENTLOG_DB_PORT)
pgss_reset() {
    local db
    ((PGSS)) || return 0
    for db in "${HIST_DBS[@]}"; do
        psql_at "${HIST_PORT[$db]}" "SELECT pg_stat_statements_reset()" >/dev/null
    done
}
# history_stats ROWS: the statements since pgss_reset (the 25 with the most time, their calls,
# mean and total ms, rows and shared blocks hit and read per call; toplevel f = run inside a
# function or trigger) and the indexes' sizes, per database. Only the services' statements
# (their roles, and the subscription's apply worker): the suite's own, as postgres (quiesce,
# the latencies), are left out.
history_stats() {
    local db port
    for db in "${HIST_DBS[@]}"; do
        port=${HIST_PORT[$db]}
        "$PG_BIN/psql" -X -q -A -F $'\t' -h 127.0.0.1 -p "$port" -U postgres -d postgres \
            -v ON_ERROR_STOP=1 -c "SELECT relname AS table, indexrelname AS index,
                pg_relation_size(indexrelid) AS bytes, idx_scan AS scans
            FROM pg_stat_user_indexes ORDER BY pg_relation_size(indexrelid) DESC" \
            -P footer=off >"$OUT/indexes-$1-$db.tsv"
        ((PGSS)) || continue
        "$PG_BIN/psql" -X -q -A -F $'\t' -h 127.0.0.1 -p "$port" -U postgres -d postgres \
            -v ON_ERROR_STOP=1 -c "SELECT queryid, toplevel, calls,
                round(mean_exec_time::numeric, 4) AS mean_ms, round(total_exec_time::numeric, 1) AS total_ms,
                round(rows::numeric / calls, 2) AS rows_per_call,
                round(shared_blks_hit::numeric / calls, 2) AS hit_per_call,
                round(shared_blks_read::numeric / calls, 2) AS read_per_call,
                regexp_replace(left(query, 300), '\s+', ' ', 'g') AS query
            FROM pg_stat_statements WHERE calls > 0 AND userid <> 'postgres'::regrole
            ORDER BY total_exec_time DESC LIMIT 25" -P footer=off >"$OUT/pgss-$1-$db.tsv"
    done
}
# history_runs ROWS LOAD_S TSV: HISTORY_RUNS buy and add-gxp runs at the highest concurrency,
# alternated, each a line of history-runs.tsv, then per op the median of the runs, column by
# column, a line of TSV (history.tsv; history-after.tsv for the fresh stack measured after the
# largest size)
history_runs() {
    local rows=$1 load_s=$2 tsv=$3 run op fp50 fp99 fn ep50 ep99 en line
    for ((run = 1; run <= HISTORY_RUNS; run++)); do
        for op in buy add-gxp; do
            fin_mark
            ev_mark
            if [[ $op == buy ]]; then
                run_wrk "buy (history $rows)" buy.lua / "$big_c"
            else
                run_wrk "add-gxp (history $rows)" add_gxp.lua / "$big_c"
            fi
            read -r fp50 fp99 fn <<<"$(fin_latency)"
            if [[ $op == buy ]]; then read -r ep50 ep99 en <<<"$(ev_lag)"; else ep50=- ep99=- en=0; fi
            printf '%s (history %s)\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$op" "$rows" "$big_c" "$fp50" "$fp99" \
                "$fn" "$ep50" "$ep99" "$en" >>"$OUT/lags.tsv"
            line=$(sed -n 's/^GFBENCH //p' <<<"$WRK_RAW")
            awk -v rows="$rows" -v op="$op" -v c="$big_c" -v f="$fp99" -v e="$ep99" -v l="$load_s" -v run="$run" '{
                for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", rows, op, c, v["rps"], v["p50"], v["p99"], f, e, l, run
            }' <<<"$line" >>"$OUT/history-runs.tsv"
        done
    done
    # history.tsv: per op, the median of this size's runs, column by column (the runs
    # alternate buy and add-gxp, so a burst of the shared machine's other work moves one
    # run of each rather than every run of one)
    for op in buy add-gxp; do
        awk -F'\t' -v rows="$rows" -v op="$op" '
            function med(col,   n, i, j, t, a) {
                n = 0
                for (i = 1; i <= k; i++) if (val[i, col] != "-") a[++n] = val[i, col] + 0
                if (n == 0) return "-"
                for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
                return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
            }
            $1 == rows && $2 == op { k++; for (c = 4; c <= 8; c++) val[k, c] = $c; conns = $3; load = $9 }
            END { printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", rows, op, conns, med(4), med(5), med(6), med(7), med(8), load }
        ' "$OUT/history-runs.tsv" >>"$tsv"
    done
}
HISTORY_HEADER=$'rows\top\tconns\trps\tp50\tp99\tfin_p99\tev_p99\tload_s'
printf '%s\n' "$HISTORY_HEADER" >"$OUT/history.tsv"
printf 'rows\top\tconns\trps\tp50\tp99\tfin_p99\tev_p99\tload_s\trun\n' >"$OUT/history-runs.tsv"
if [[ -n $HISTORY ]] && wanted big; then
    if ((PGSS)); then
        for db in "${HIST_DBS[@]}"; do
            psql_at "${HIST_PORT[$db]}" "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null ||
                die "cannot create pg_stat_statements on $db"
        done
    fi
    loaded=0
    for rows in $HISTORY; do
        load_s=0
        if ((rows > loaded)); then
            say "history: adding $((rows - loaded)) rows ($rows in all)"
            t0=$SECONDS
            BACKEND_DB_PORT=$GF_BACKEND_DB_PORT GXP_DB_PORT=$GF_GXP_DB_PORT EVENTLOG_DB_PORT=$GF_EVENTLOG_DB_PORT \
                bash "$REPO/bench/load_rows.sh" "$((rows - loaded))" >>"$OUT/load-rows.log" 2>&1 ||
                die "loading rows failed: see $OUT/load-rows.log"
            load_s=$((SECONDS - t0))
            say "history: $rows rows after $load_s s ($(tail -n 1 "$OUT/load-rows.log"))"
            loaded=$rows
        fi
        pgss_reset
        history_runs "$rows" "$load_s" "$OUT/history.tsv"
        history_stats "$rows"
    done
    # The largest size beside no history, measured minutes apart: this machine's speed drifts by
    # 20 % and more over the half hour a load of ten million rows takes, so the first size's
    # runs alone cannot tell the history's cost from the drift. A fresh stack (the same ports,
    # settings and seeding, no history) is measured right after the largest size's runs, and
    # the report compares the largest size with it too (history-after.tsv).
    if ((HISTORY_AFTER && loaded > 0)); then
        keep_peaks
        say "history: a fresh stack with no history, measured right after the $loaded rows"
        bash "$STACK" down >>"$OUT/stack-down.log" 2>&1 || die "stack down failed: see $OUT/stack-down.log"
        rm -rf "$GF_STATE_DIR"
        bash "$STACK" up >>"$OUT/stack-up.log" 2>&1 || die "stack up failed: see $OUT/stack-up.log"
        stack_pids
        login
        [[ -z $TOKEN ]] || AUTH_HDR=(-H "Authorization: Bearer $TOKEN")
        SEED_RUN=$$-$(date +%s)
        seed_all
        quiesce
        printf '%s\n' "$HISTORY_HEADER" >"$OUT/history-after.tsv"
        history_runs "0 after" 0 "$OUT/history-after.tsv"
    fi
fi

# ---- peak memory ------------------------------------------------------------------------------
# A process restarted (the backends by the part open, every service for the history's fresh
# stack): the larger of its peaks (PEAK_KIB).
printf 'unit\tpeak_rss_kib\n' >"$OUT/rss.tsv"
keep_peaks
for u in "${SERVICES[@]}" broker; do
    printf '%s\t%s\n' "$u" "${PEAK_KIB[$u]}" >>"$OUT/rss.tsv"
done
for u in ingress backend-db gxp-db eventlog-db; do # the largest process of the tree
    best=0
    for p in ${PID[$u]} $(pgrep -P "${PID[$u]}"); do
        k=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        ((k > best)) && best=$k
    done
    printf '%s (largest process)\t%s\n' "$u" "$best" >>"$OUT/rss.tsv"
done

bash "$REPO/bench/report.sh" "$OUT" | tee "$OUT/report.md"
say "written: $OUT/report.md, $OUT/throughput.png, $OUT/latency.png"
