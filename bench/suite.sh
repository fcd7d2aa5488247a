#!/usr/bin/env bash
# make bench: the whole system as `make up` runs it (scripts/stack.sh: three clusters, RabbitMQ,
# two gxp, eventlog, two backends, nginx), on free ports and a private state directory, measured
# through nginx at 1, 8 and 32 connections with wrk: buy, add-gxp, GET /item, GET /user.
# Beside our figures, the floor: pgbench running exactly the SQL of a buy and of an add-gxp on
# the same clusters at the same concurrency (bench/floor). Then the buy run again after loading
# a million rows into the tables a buy grows.
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
# back-off rather than the system), BENCH_BIG_ROWS (1000000; 0 skips the large-table run), GF_BUILD_DIR (build),
# BENCH_ONLY (all: a part of the suite, any of: auth get-item get-user add-gxp buy floor big;
# e.g. "get-item buy" for the throughput of those two), BENCH_PORT_BASE (unset: a free block at
# random; else the stack's 17 ports from there), GF_BENCH_TMP (/tmp/gf-bench-<uid>: the stack's
# state goes to its stack/).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
export GF_BUILD_DIR=${GF_BUILD_DIR:-$REPO/build}
SECS=${BENCH_SECONDS:-10}
CONCURRENCY=${BENCH_CONCURRENCY:-"1 8 32"}
USERS=${BENCH_USERS:-1000}
ITEMS=${BENCH_ITEMS:-32}
BIG_ROWS=${BENCH_BIG_ROWS:-1000000}
ONLY=${BENCH_ONLY:-auth get-item get-user add-gxp buy floor big}
for part in $ONLY; do
    case $part in
    auth | get-item | get-user | add-gxp | buy | floor | big) ;;
    *)
        printf 'bench: BENCH_ONLY: unknown part %s (auth get-item get-user add-gxp buy floor big)\n' \
            "$part" >&2
        exit 2
        ;;
    esac
done
wanted() { [[ " $ONLY " == *" $1 "* ]]; }
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
declare -A PID=()
UNITS=(backend-svc-1 backend-svc-2 gxp-1 gxp-2 eventlog ingress backend-db gxp-db eventlog-db broker)
SERVICES=(backend-svc-1 backend-svc-2 gxp-1 gxp-2 eventlog)
for u in backend-svc-1 backend-svc-2 gxp-1 gxp-2 eventlog ingress; do PID[$u]=$(pid_of_prog "$u"); done
for u in backend-db gxp-db eventlog-db; do PID[$u]=$(pid_of_pg "$u"); done
PID[broker]=$(pid_of_broker)
for u in "${UNITS[@]}"; do [[ -d /proc/${PID[$u]:-0} ]] || die "no process for $u"; done

# Clock ticks used by a process and its descendants, the exited ones it waited for included
# (a postmaster's ended backends, nginx's old workers).
stat_ticks() { # PID [with_waited_children]
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || {
        echo 0
        return
    }
    s=${s##*) }
    read -r -a f <<<"$s"
    # fields after comm: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    if [[ ${2:-} == 1 ]]; then echo $((f[11] + f[12] + f[13] + f[14])); else echo $((f[11] + f[12])); fi
}
tree_ticks() { # PID
    local total c
    total=$(stat_ticks "$1" 1)
    for c in $(pgrep -P "$1" 2>/dev/null); do total=$((total + $(tree_ticks "$c"))); done
    echo "$total"
}
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
# curl_each PATH BODY-FORMAT: one POST per user (the format gets the user's number), 8 at a
# time over kept-alive connections. `next` starts each request's own options.
curl_each() {
    local i
    for ((i = 1; i <= USERS; i++)); do
        ((i == 1)) || echo next
        # shellcheck disable=SC2059 # the format is the caller's
        printf "url = \"%s%s\"\nheader = \"Content-Type: application/json\"\ndata = \"$2\"\noutput = \"/dev/null\"\nfail\nsilent\nshow-error\n" \
            "$INGRESS" "$1" "$i"
        [[ -z $TOKEN ]] || printf 'header = "Authorization: Bearer %s"\n' "$TOKEN"
    done >"$seed_cfg"
    curl --no-progress-meter -Z --parallel-max 8 -K "$seed_cfg"
}
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
export USERS ITEMS

# Waits until gxp has nothing PENDING and eventlog has stored every event: a quiet system.
quiesce() {
    local deadline=$((SECONDS + 120)) pending events outbox
    while ((SECONDS < deadline)); do
        pending=$(psql_at "$GF_GXP_DB_PORT" "SELECT count(*) FROM gxp_transaction WHERE status = 0")
        outbox=$(psql_at "$GF_BACKEND_DB_PORT" "SELECT count(*) FROM event_outbox WHERE published_at IS NULL")
        events=$(psql_at "$GF_EVENTLOG_DB_PORT" "SELECT count(*) FROM event")
        [[ $pending == 0 && $outbox == 0 && $events == "${LAST_EVENTS:-x}" ]] && return 0
        LAST_EVENTS=$events
        sleep 1
    done
    say "the system did not quiesce in 120 s (pending=$pending outbox=$outbox)"
}

# ---- one wrk run ------------------------------------------------------------------------------
# run_wrk LABEL SCRIPT PATH CONNS: appends a line to $OUT/runs.tsv. Every request carries the
# operator's bearer token (a fresh one: BENCH_TOKEN, the wrk scripts read it).
printf 'label\tconns\trps\tp50\tp90\tp99\tmax\terrors\tnon2xx\tcpu\n' >"$OUT/runs.tsv"
run_wrk() {
    local label=$1 script=$2 path=$3 c=$4 threads line
    threads=$((c < 2 ? c : 2))
    login
    quiesce
    cpu_mark
    line=$(GF_WRK_REPORT=$WRK_DIR/report.lua BENCH_TOKEN=$TOKEN wrk -t"$threads" -c"$c" \
        -d"${SECS}s" --timeout 5s -s "$WRK_DIR/$script" "$INGRESS$path" 2>&1 |
        sed -n 's/^GFBENCH //p')
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

printf 'label\tconns\tfin_p50\tfin_p99\tfin_n\tev_p50\tev_p99\tev_n\n' >"$OUT/lags.tsv"
for c in $CONCURRENCY; do
    if wanted get-item; then run_wrk "GET /item" get.lua /item "$c"; fi
    if wanted get-user; then run_wrk "GET /user" get.lua "/user?limit=100" "$c"; fi
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
done

# ---- the floor: the same SQL with no service in between --------------------------------------
printf 'op\tconns\ttps\tbackend_tps\tgxp_tps\n' >"$OUT/floor.tsv"
floor_ops='buy add'
wanted floor || floor_ops=''
for op in $floor_ops; do
    for c in $CONCURRENCY; do
        quiesce
        line=$(BACKEND_DB_PORT=$GF_BACKEND_DB_PORT GXP_DB_PORT=$GF_GXP_DB_PORT \
            FLOOR_USERS=$USERS FLOOR_ITEMS=$ITEMS \
            bash "$REPO/bench/floor/floor.sh" "$op" "$c" "$SECS") || die "floor $op c=$c failed"
        line=$(grep '^FLOOR ' <<<"$line" | tail -1)
        tps=$(sed -n 's/.* tps=\([0-9.]*\).*/\1/p' <<<"$line")
        btps=$(sed -n 's/.*backend_tps=\([0-9.]*\).*/\1/p' <<<"$line")
        gtps=$(sed -n 's/.*gxp_tps=\([0-9.]*\).*/\1/p' <<<"$line")
        printf '%s\t%s\t%s\t%s\t%s\n' "$op" "$c" "$tps" "$btps" "$gtps" >>"$OUT/floor.tsv"
        say "floor $op c=$c: $tps tx/s"
    done
done

# ---- a million rows later ---------------------------------------------------------------------
big_c=$(tr ' ' '\n' <<<"$CONCURRENCY" | tail -1)
if ((BIG_ROWS > 0)) && wanted big; then
    say "loading $BIG_ROWS rows into the tables a buy grows"
    BACKEND_DB_PORT=$GF_BACKEND_DB_PORT GXP_DB_PORT=$GF_GXP_DB_PORT EVENTLOG_DB_PORT=$GF_EVENTLOG_DB_PORT \
        bash "$REPO/bench/load_rows.sh" "$BIG_ROWS" >"$OUT/load-rows.log" 2>&1 ||
        die "loading rows failed: see $OUT/load-rows.log"
    fin_mark
    ev_mark
    run_wrk "buy (+${BIG_ROWS} rows)" buy.lua / "$big_c"
    read -r fp50 fp99 fn <<<"$(fin_latency)"
    read -r ep50 ep99 en <<<"$(ev_lag)"
    printf 'buy (+%s rows)\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$BIG_ROWS" "$big_c" "$fp50" "$fp99" "$fn" \
        "$ep50" "$ep99" "$en" >>"$OUT/lags.tsv"
fi

# ---- peak memory ------------------------------------------------------------------------------
printf 'unit\tpeak_rss_kib\n' >"$OUT/rss.tsv"
for u in "${SERVICES[@]}" broker; do
    printf '%s\t%s\n' "$u" "$(awk '/^VmHWM:/ {print $2}' "/proc/${PID[$u]}/status")" >>"$OUT/rss.tsv"
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
