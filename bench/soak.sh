#!/usr/bin/env bash
# make soak: the whole system (scripts/stack.sh, on free ports and a private state directory, as
# bench/suite.sh starts it) under open-loop buys and add-gxps at half its peak for SOAK_SECONDS
# (1800), sampled every SOAK_SAMPLE_SECONDS (30): the size of each cluster's database and of its
# largest tables, the WAL the replication slots retain on backend-db, the services' RSS, and of
# the last interval the latency from arrival (p50/p99 of the 2xx), the shed requests, the
# finalization latency and the event lag. Its question: does the system reach a steady state,
# disk use and latency flat, once retention runs? Not part of `make test`.
#
# Half the peak: the closed-loop rate of buy and of add-gxp at c=32 (wrk, SOAK_PEAK_SECONDS each)
# is measured first, then buys arrive at a quarter of the buy peak and add-gxps at a quarter of
# theirs, both at once (bench/openloop.c, two generators), which together ask half of what the
# system serves. SOAK_BUY_RATE and SOAK_ADD_RATE (per second) set the rates instead (no peak run).
#
# Retention: SOAK_ENV="VAR=value ..." adds environment to every service (scripts/stack.sh's
# GF_EXTRA_ENV), e.g. the retention settings with periods of minutes rather than days, so that
# pruning starts within the run and the tables reach their steady size before it ends; with the
# defaults (days) a 30-minute soak only shows growth.
#
# Writes under bench/results/soak-<time>/: soak.tsv (a row per sample), soak-tables.tsv (the
# largest tables of each cluster per sample), the generators' own 30-second rows
# (soak-buy.tsv, soak-add-gxp.tsv), the Markdown report (bench/soak_report.sh) and the plots
# soak-disk.png, soak-latency.png and soak-rss.png.
#
# Environment: SOAK_SECONDS (1800; at most 3000: the bearer token lives an hour),
# SOAK_SAMPLE_SECONDS (30), SOAK_PEAK_SECONDS (10), SOAK_BUY_RATE, SOAK_ADD_RATE, SOAK_ENV,
# SOAK_CONNS (64: each generator's connections), BENCH_USERS (1000), BENCH_ITEMS (32),
# GF_BUILD_DIR (build), GF_BENCH_TMP (/tmp/gf-bench-<uid>: the stack's state goes to its soak/).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
export GF_BUILD_DIR=${GF_BUILD_DIR:-$REPO/build}
SOAK_SECONDS=${SOAK_SECONDS:-1800}
SAMPLE=${SOAK_SAMPLE_SECONDS:-30}
PEAK_SECONDS=${SOAK_PEAK_SECONDS:-10}
CONNS=${SOAK_CONNS:-64}
USERS=${BENCH_USERS:-1000}
ITEMS=${BENCH_ITEMS:-32}
PG_BIN=${GF_PG_BIN:-/usr/lib/postgresql/15/bin}
OUT=$REPO/bench/results/soak-$(date -u +%Y%m%dT%H%M%SZ)
TMP=${GF_BENCH_TMP:-/tmp/gf-bench-$(id -u)}
export GF_STATE_DIR=$TMP/soak GF_READY_TIMEOUT=60
STACK=$REPO/scripts/stack.sh
OPENLOOP=$GF_BUILD_DIR/bin/openloop

say() { printf 'soak: %s\n' "$*" >&2; }
die() {
    say "$*"
    exit 1
}

# ---- settings, checked before anything starts -------------------------------------------------
whole() { # NAME VALUE MIN MAX
    if ! [[ $2 =~ ^[0-9]+$ ]] || (($2 < $3 || $2 > $4)); then
        die "$1 must be a whole number in $3..$4, not '$2'"
    fi
}
whole SOAK_SECONDS "$SOAK_SECONDS" 10 3000
whole SOAK_SAMPLE_SECONDS "$SAMPLE" 5 600
whole SOAK_PEAK_SECONDS "$PEAK_SECONDS" 1 600
whole SOAK_CONNS "$CONNS" 1 4096
whole BENCH_USERS "$USERS" 1 1000000
whole BENCH_ITEMS "$ITEMS" 1 100000
for r in SOAK_BUY_RATE SOAK_ADD_RATE; do
    [[ -z ${!r:-} || ${!r} =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$r must be a rate per second, not '${!r}'"
done
extra=()
read -r -a extra <<<"${SOAK_ENV:-}"
for kv in "${extra[@]}"; do
    [[ $kv =~ ^[A-Z_][A-Z0-9_]*=[^[:space:]]*$ ]] || die "SOAK_ENV: '$kv' is not VAR=value"
done
export GF_EXTRA_ENV="${GF_EXTRA_ENV:-} ${SOAK_ENV:-}"
[[ -x $OPENLOOP ]] || die "no $OPENLOOP: build the tree (make build) first"

# shellcheck source=tests/harness/ports.sh
source "$REPO/tests/harness/ports.sh"
stack_ports || die "no block of free ports"
INGRESS=http://127.0.0.1:$GF_INGRESS_PORT
mkdir -p "$OUT" "$TMP"

rm -rf "$GF_STATE_DIR"
GEN_PIDS=()
cleanup() {
    local p
    for p in "${GEN_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    bash "$STACK" down >"$OUT/stack-down.log" 2>&1 || true
}
trap cleanup EXIT
say "starting the stack on ports $GF_GXP_DB_PORT.. (state: $GF_STATE_DIR; extra environment: ${SOAK_ENV:-none})"
bash "$STACK" up >"$OUT/stack-up.log" 2>&1 || die "stack up failed: see $OUT/stack-up.log"
if [[ -s $GF_STATE_DIR/secrets/pgpass ]]; then
    export PGPASSFILE=$GF_STATE_DIR/secrets/pgpass
fi
psql_at() { # PORT SQL
    "$PG_BIN/psql" -X -q -A -t -F $'\t' -h 127.0.0.1 -p "$1" -U postgres -d postgres \
        -v ON_ERROR_STOP=1 -c "$2"
}

# ---- the operator's token and the seed (as bench/suite.sh: users with plenty of GXP, items
# whose stock cannot run out) -------------------------------------------------------------------
ADMIN_PW_FILE=$GF_STATE_DIR/secrets/admin.password
[[ -s $ADMIN_PW_FILE ]] || die "no operator's password in $ADMIN_PW_FILE"
TOKEN=$(jq -cn --rawfile pw "$ADMIN_PW_FILE" '{name: "admin", password: ($pw | rtrimstr("\n"))}' |
    curl -fsS -H 'Content-Type: application/json' --data-binary @- "$INGRESS/auth/login" |
    jq -er .token) || die "POST /auth/login as admin failed"
say "seeding $USERS users and $ITEMS items"
seed_each() { # PATH FORMAT: one POST per user, 8 at a time
    local i cfg=$TMP/soak-seed.curl
    for ((i = 1; i <= USERS; i++)); do
        ((i == 1)) || echo next
        # shellcheck disable=SC2059 # the format is the caller's
        printf "url = \"%s%s\"\nheader = \"Content-Type: application/json\"\nheader = \"Authorization: Bearer %s\"\ndata = \"$2\"\noutput = \"/dev/null\"\nfail\nsilent\nshow-error\n" \
            "$INGRESS" "$1" "$TOKEN" "$i"
    done >"$cfg"
    curl --no-progress-meter -Z --parallel-max 8 -K "$cfg"
}
seed_each /user/create '{\\"name\\":\\"soak-user-%d\\"}' || die "creating users failed"
seed_each /user/gxp/add '{\\"userId\\":%d,\\"amount\\":1000000000}' || die "adding GXP failed"
for ((i = 1; i <= ITEMS; i++)); do
    curl -fsS -o /dev/null -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" \
        -d "{\"name\":\"soak-item-$i\",\"cost\":1}" "$INGRESS/item/create"
    curl -fsS -o /dev/null -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" \
        -d "{\"itemId\":$i,\"count\":2000000000}" "$INGRESS/marketplace/item/create"
done || die "creating items failed"

# ---- the rates: a quarter of each op's closed-loop peak, or as given --------------------------
peak() { # SCRIPT: wrk's rate at c=32
    local line
    line=$(GF_WRK_REPORT=$REPO/bench/wrk/report.lua BENCH_TOKEN=$TOKEN USERS=$USERS ITEMS=$ITEMS \
        WRK_THREADS=2 wrk -t2 -c32 -d"${PEAK_SECONDS}s" --timeout 5s -s "$REPO/bench/wrk/$1" \
        "$INGRESS/" 2>&1 | sed -n 's/^GFBENCH rps=\([0-9.]*\).*/\1/p')
    [[ -n $line ]] || die "wrk $1 printed no report"
    echo "$line"
}
BUY_RATE=${SOAK_BUY_RATE:-}
ADD_RATE=${SOAK_ADD_RATE:-}
if [[ -z $BUY_RATE ]]; then
    p=$(peak buy.lua)
    BUY_RATE=$(awk -v p="$p" 'BEGIN { printf "%.1f", p / 4 }')
    say "buy peak (closed loop, c=32): $p/s"
fi
if [[ -z $ADD_RATE ]]; then
    p=$(peak add_gxp.lua)
    ADD_RATE=$(awk -v p="$p" 'BEGIN { printf "%.1f", p / 4 }')
    say "add-gxp peak (closed loop, c=32): $p/s"
fi
printf 'soak_seconds\t%s\nsample_seconds\t%s\nbuy_rate\t%s\nadd_rate\t%s\nsoak_env\t%s\n' \
    "$SOAK_SECONDS" "$SAMPLE" "$BUY_RATE" "$ADD_RATE" "${SOAK_ENV:-}" >"$OUT/settings.tsv"

# ---- what a sample reads ----------------------------------------------------------------------
pid_of_prog() { awk '{print $1; exit}' "$GF_STATE_DIR/run/$1.pid"; }
SERVICES=(backend-svc-1 backend-svc-2 gxp-1 gxp-2 eventlog)
declare -A PID=()
for u in "${SERVICES[@]}"; do PID[$u]=$(pid_of_prog "$u"); done
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
CLUSTERS=(backend-db gxp-db eventlog-db)
declare -A CPORT=([backend-db]=$GF_BACKEND_DB_PORT [gxp-db]=$GF_GXP_DB_PORT
    [eventlog-db]=$GF_EVENTLOG_DB_PORT)
# The largest tables of a cluster, a partitioned table counted whole (its partitions summed
# under its root), indexes and TOAST included.
TABLES_SQL="SELECT coalesce(pg_partition_root(c.oid), c.oid)::regclass::text AS t,
        sum(pg_total_relation_size(c.oid))::bigint AS b
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    GROUP BY 1 ORDER BY 2 DESC LIMIT 5"
pct() { # SQL of a column d over rows: "p50 p99 n"
    printf "SELECT coalesce(round((percentile_cont(0.5) WITHIN GROUP (ORDER BY d))::numeric, 1), 0)
        || ' ' || coalesce(round((percentile_cont(0.99) WITHIN GROUP (ORDER BY d))::numeric, 1), 0)
        || ' ' || count(*) FROM (%s) x" "$1"
}
FIN0=$(psql_at "$GF_GXP_DB_PORT" "SELECT coalesce(max(id), 0) FROM gxp_transaction")
EV0=$(psql_at "$GF_EVENTLOG_DB_PORT" "SELECT coalesce(max(id), 0) FROM event")
iv_row() { # FILE T: the generator's row of the interval that ended at T s: ok shed p50 p99
    awk -F'\t' -v t="$2" 'NR > 1 && $1 + 0 == t { r = $3 " " $4 " " $9 " " $10 }
        END { print (r == "" ? "0 0 0 0" : r) }' "$1"
}

printf 't_s\tbackend_db_bytes\tgxp_db_bytes\teventlog_db_bytes\twal_retained_bytes\trss_backend1_kib\trss_backend2_kib\trss_gxp1_kib\trss_gxp2_kib\trss_eventlog_kib\tbuy_ok\tbuy_shed\tbuy_p50_ms\tbuy_p99_ms\tadd_ok\tadd_shed\tadd_p50_ms\tadd_p99_ms\tfin_p50_ms\tfin_p99_ms\tfin_n\tev_p50_ms\tev_p99_ms\tev_n\n' \
    >"$OUT/soak.tsv"
printf 't_s\tcluster\ttable\tbytes\n' >"$OUT/soak-tables.tsv"
sample() { # T: one row of soak.tsv, the tables of each cluster into soak-tables.tsv
    local t=$1 c sizes=() wal fin ev f1 e1 row
    for c in "${CLUSTERS[@]}"; do
        sizes+=("$(psql_at "${CPORT[$c]}" "SELECT pg_database_size(current_database())")")
        psql_at "${CPORT[$c]}" "$TABLES_SQL" | awk -F'\t' -v t="$t" -v c="$c" \
            '{ print t "\t" c "\t" $1 "\t" $2 }' >>"$OUT/soak-tables.tsv"
    done
    wal=$(psql_at "$GF_BACKEND_DB_PORT" "SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(),
        restart_lsn)), 0)::bigint FROM pg_replication_slots")
    # The transactions and events of the interval: those created since the last sample's marks.
    f1=$(psql_at "$GF_GXP_DB_PORT" "SELECT coalesce(max(id), 0) FROM gxp_transaction")
    fin=$(psql_at "$GF_GXP_DB_PORT" "$(pct "SELECT extract(epoch FROM t.finalized_at - o.created_at) * 1000 AS d
        FROM gxp_transaction t JOIN transaction_outbox o USING (correlation_id)
        WHERE t.id > $FIN0 AND t.id <= $f1 AND t.finalized_at IS NOT NULL")")
    e1=$(psql_at "$GF_EVENTLOG_DB_PORT" "SELECT coalesce(max(id), 0) FROM event")
    ev=$(psql_at "$GF_EVENTLOG_DB_PORT" "$(pct "SELECT extract(epoch FROM stored_at - occurred_at) * 1000 AS d
        FROM event WHERE id > $EV0 AND id <= $e1")")
    FIN0=$f1 EV0=$e1
    row=("$t" "${sizes[@]}" "$wal")
    for u in "${SERVICES[@]}"; do row+=("$(rss "${PID[$u]}")"); done
    # shellcheck disable=SC2206,SC2207 # words of numbers
    row+=($(iv_row "$OUT/soak-buy.tsv" "$t") $(iv_row "$OUT/soak-add-gxp.tsv" "$t") $fin $ev)
    (IFS=$'\t' && echo "${row[*]}") >>"$OUT/soak.tsv"
    say "t=${t}s: dbs $((sizes[0] >> 20))/$((sizes[1] >> 20))/$((sizes[2] >> 20)) MiB, WAL retained $((wal >> 20)) MiB, buy p99 ${row[13]} ms, finalization p99 ${row[19]} ms, event lag p99 ${row[22]} ms"
}

# ---- the run ----------------------------------------------------------------------------------
say "open loop for ${SOAK_SECONDS}s: buys at $BUY_RATE/s and add-gxps at $ADD_RATE/s, a sample every ${SAMPLE}s (into $OUT)"
BENCH_TOKEN=$TOKEN "$OPENLOOP" --url "$INGRESS" --op buy --rate "$BUY_RATE" --seconds "$SOAK_SECONDS" \
    --conns "$CONNS" --users "$USERS" --items "$ITEMS" --poisson --seed 1 --interval "$SAMPLE" \
    --tsv "$OUT/soak-buy.tsv" >"$OUT/openloop-buy.txt" &
GEN_PIDS+=($!)
BENCH_TOKEN=$TOKEN "$OPENLOOP" --url "$INGRESS" --op add-gxp --rate "$ADD_RATE" --seconds "$SOAK_SECONDS" \
    --conns "$CONNS" --users "$USERS" --poisson --seed 2 --interval "$SAMPLE" \
    --tsv "$OUT/soak-add-gxp.tsv" >"$OUT/openloop-add-gxp.txt" &
GEN_PIDS+=($!)
start=$(date +%s%N)
for ((k = 1; k * SAMPLE <= SOAK_SECONDS; k++)); do
    # a second after the generators closed the interval (their rows are written at its end)
    wait_ns=$((start + (k * SAMPLE + 1) * 1000000000 - $(date +%s%N)))
    ((wait_ns <= 0)) || sleep "$(awk -v n="$wait_ns" 'BEGIN { printf "%.3f", n / 1e9 }')"
    sample $((k * SAMPLE))
    if ((k * SAMPLE < SOAK_SECONDS)); then # before the end, a generator gone is a failure
        for p in "${GEN_PIDS[@]}"; do
            kill -0 "$p" 2>/dev/null || die "a generator stopped early (see $OUT/openloop-*.txt)"
        done
    fi
done
for p in "${GEN_PIDS[@]}"; do wait "$p" || die "a generator failed (see $OUT/openloop-*.txt)"; done
GEN_PIDS=()
say "buy: $(sed -n 's/^OPENLOOP //p' "$OUT/openloop-buy.txt")"
say "add-gxp: $(sed -n 's/^OPENLOOP //p' "$OUT/openloop-add-gxp.txt")"

bash "$REPO/bench/soak_report.sh" "$OUT" | tee "$OUT/soak.md"
say "written: $OUT/soak.md, soak-disk.png, soak-latency.png, soak-rss.png"
