#!/usr/bin/env bash
# The SQL floor of a buy or an add-gxp: pgbench runs exactly the SQL one such request performs
# on each database (bench/floor/<op>-backend.sql on backend-db, <op>-gxp.sql on gxp-db), on
# both databases AT THE SAME TIME (in the real system both work on every request, on the same
# cores), with <clients> clients each (-j 2, -M prepared, -n), for <seconds> seconds. A whole
# request completes only when both sides did their part: the floor is the lower of the rates.
#
#   bench/floor/floor.sh <buy|add> <clients> <seconds>
#
# prints one line on stdout (diagnostics go to stderr):
#   FLOOR op=buy clients=8 tps=<min of the two> backend_tps=<..> gxp_tps=<..> backend_lat_ms=<avg> gxp_lat_ms=<avg> backend_cpu_ms=<..|-> gxp_cpu_ms=<..|->
# and exits non-zero (without that line) if the setup fails, a pgbench fails (exit status, an
# aborted client, "number of failed transactions" > 0) or the run cannot be trusted (see below).
#
# backend_tps counts the requests that succeeded: a request whose decision is 'failed' is left
# out of the rate and counted on stderr (the fixture makes none). gxp_tps is the rate of gxp's
# request-path work (TransactionPrepare). Latencies are pgbench's averages per script.
#
# Finalization (see README.md). In the real system gxp-db finalizes each decision in ONE
# process, its replication apply worker (a trigger on the replicated transaction_outbox). Here
# FLOOR_FINALIZERS more pgbench clients on gxp-db (finalize-gxp.sql) call the same function
# (gxp_apply_decision) for the PENDING transactions, one per transaction, during the run. The
# floor runs on the services' clusters, where replication is live: every decision the backend
# script INSERTs on backend-db reaches gxp-db too. Both sides use the same correlation ids
# (md5(run-client-n)), and the gxp side gets a head start (ids prepared and finalized before
# the clock starts), so that a replicated decision never arrives before its prepare: it finds
# its id finalized already (the trigger's cheap 'duplicate' path), or finalizes it itself
# (then the finalizer skips it), as the real one would.
#
# The databases must already be migrated by the services; the fixture is loaded first
# (setup-backend.sql, setup-gxp.sql: idempotent, ids 2000000001.., names floor-*). Nothing is
# left PENDING: what the finalizer had not reached when the run ended is aborted, as gxp's
# resolver would. Environment:
#   BACKEND_DB_PORT (30541), GXP_DB_PORT (30542)  the clusters (scripts/stack.sh's defaults,
#                                                  GF_BACKEND_DB_PORT / GF_GXP_DB_PORT there)
#   PGHOST (127.0.0.1), PGUSER (postgres)
#   BACKEND_DB_NAME, GXP_DB_NAME (postgres: tests/harness/pg-cluster.sh creates no other database)
#   PG_BIN (/usr/lib/postgresql/15/bin)           psql and pgbench from there
#   FLOOR_USERS (1000)   users the requests are spread over (bench/wrk: BENCH_USERS, 1000)
#   FLOOR_ITEMS (1)      items the buys are spread over (bench/suite.sh passes BENCH_ITEMS)
#   FLOOR_HEADSTART_RATE (1000)  head start of the gxp side, in requests per second of the run
#                        (how much faster than the gxp side the backend side may be); a pass in
#                        which more than 1% of the decisions still arrived before their
#                        prepare is run again with twice the head start (twice at most)
#   FLOOR_REPLICATION_WAIT (120)  seconds to wait for replication (before, after the run)
#   FLOOR_RATE_BACKEND, FLOOR_RATE_GXP (unset)  pgbench -R for that side: throttles it to that
#                        many scripts per second (both sides share the cores: a side running
#                        faster than the other takes CPU that the real, coupled system would
#                        give to the slower one; see README.md)
#   FLOOR_FINALIZERS (2)  pgbench clients running finalize-gxp.sql (the apply worker is one
#                        process, but pays no network round trip per decision)
#   FLOOR_CPU_PIDS (unset)  "backend=PID gxp=PID": the postmasters of the two clusters, whose
#                        process trees' CPU time during the run is reported per transaction
#                        (backend_cpu_ms=, gxp_cpu_ms=: backend-db's per buy or add committed,
#                        gxp-db's per prepare, its finalization and replication included)
#   FLOOR_PASSES (1)     measurements: each pass after the first throttles the side that was
#                        faster in the previous one to 1.25 x the other's rate; the last pass
#                        is reported (each pass takes <seconds> plus its head start and
#                        resolution)
set -euo pipefail

usage() {
    echo "usage: ${0##*/} <buy|add> <clients> <seconds>" >&2
    exit 2
}
(($# == 3)) || usage
OP=$1 CLIENTS=$2 SECONDS_=$3
[[ $OP == buy || $OP == add ]] || usage
[[ $CLIENTS =~ ^[1-9][0-9]*$ && $SECONDS_ =~ ^[1-9][0-9]*$ ]] || usage
((CLIENTS <= 1000)) || usage

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PGHOST=${PGHOST:-127.0.0.1}
PGUSER=${PGUSER:-postgres}
BACKEND_DB_PORT=${BACKEND_DB_PORT:-30541}
GXP_DB_PORT=${GXP_DB_PORT:-30542}
BACKEND_DB_NAME=${BACKEND_DB_NAME:-postgres}
GXP_DB_NAME=${GXP_DB_NAME:-postgres}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
FLOOR_USERS=${FLOOR_USERS:-1000}
FLOOR_ITEMS=${FLOOR_ITEMS:-1}
FLOOR_HEADSTART_RATE=${FLOOR_HEADSTART_RATE:-1000}
FLOOR_REPLICATION_WAIT=${FLOOR_REPLICATION_WAIT:-120}
FLOOR_RATE_BACKEND=${FLOOR_RATE_BACKEND:-}
FLOOR_PASSES=${FLOOR_PASSES:-1}
FLOOR_FINALIZERS=${FLOOR_FINALIZERS:-2}
FLOOR_RATE_GXP=${FLOOR_RATE_GXP:-}
BASE=2000000000  # floor ids are BASE + 1 ... (uint32, like every id of the API)
COST=1           # each floor item's cost = the amount a buy prepares (as bench/suite.sh's items)
AMOUNT=1         # GXP per add (as bench/wrk/add_gxp.lua)
STOCK=2000000000 # each floor item's stock when created (as bench/suite.sh's items)
CHUNK=500        # ledger calls per transaction outside the run (each holds an advisory lock)

fail_usage() {
    echo "floor: $*" >&2
    exit 2
}
[[ $FLOOR_USERS =~ ^[1-9][0-9]*$ ]] && ((FLOOR_USERS <= 1000000)) ||
    fail_usage "FLOOR_USERS must be in 1..1000000"
[[ $FLOOR_ITEMS =~ ^[1-9][0-9]*$ ]] && ((FLOOR_ITEMS <= 1000)) ||
    fail_usage "FLOOR_ITEMS must be in 1..1000"
[[ $FLOOR_HEADSTART_RATE =~ ^[0-9]+$ && $FLOOR_REPLICATION_WAIT =~ ^[1-9][0-9]*$ ]] ||
    fail_usage "FLOOR_HEADSTART_RATE and FLOOR_REPLICATION_WAIT must be integers"
[[ $FLOOR_RATE_BACKEND =~ ^([1-9][0-9]*)?$ && $FLOOR_RATE_GXP =~ ^([1-9][0-9]*)?$ ]] ||
    fail_usage "FLOOR_RATE_BACKEND and FLOOR_RATE_GXP must be empty or positive integers"
[[ $FLOOR_PASSES =~ ^[1-9]$ ]] || fail_usage "FLOOR_PASSES must be in 1..9"
[[ $FLOOR_FINALIZERS =~ ^[1-9]$ ]] || fail_usage "FLOOR_FINALIZERS must be in 1..9"
CPU_BACKEND='' CPU_GXP=''
for kv in ${FLOOR_CPU_PIDS:-}; do
    case $kv in
    backend=[1-9]*) CPU_BACKEND=${kv#*=} ;;
    gxp=[1-9]*) CPU_GXP=${kv#*=} ;;
    *) fail_usage "FLOOR_CPU_PIDS: '$kv' is not backend=PID or gxp=PID" ;;
    esac
done
for pid in $CPU_BACKEND $CPU_GXP; do
    [[ $pid =~ ^[0-9]+$ && -d /proc/$pid ]] || fail_usage "FLOOR_CPU_PIDS: no process $pid"
done
# shellcheck source=bench/cpu.sh
source "$(dirname "${BASH_SOURCE[0]}")/../cpu.sh"
TCK=$(getconf CLK_TCK)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/floor.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

die() {
    echo "floor: $*" >&2
    exit 1
}
note() { echo "floor: $*" >&2; }

psql_on() { # PORT DBNAME [psql args...]
    local port=$1 db=$2
    shift 2
    "$PG_BIN/psql" -X -q -h "$PGHOST" -p "$port" -U "$PGUSER" -d "$db" -v ON_ERROR_STOP=1 "$@"
}
psql_backend() { psql_on "$BACKEND_DB_PORT" "$BACKEND_DB_NAME" "$@"; }
psql_gxp() { psql_on "$GXP_DB_PORT" "$GXP_DB_NAME" "$@"; }
FLOOR_RANGE="user_id BETWEEN $BASE + 1 AND $BASE + $FLOOR_USERS"

# ---- the fixture ----------------------------------------------------------------------------
out=$(psql_backend -v base=$BASE -v users="$FLOOR_USERS" -v items="$FLOOR_ITEMS" -v cost=$COST \
    -v stock=$STOCK -f "$HERE/setup-backend.sql" 2>&1) ||
    die "setup of backend-db (port $BACKEND_DB_PORT) failed: $out"
[[ $(tail -n 1 <<<"$out") == ok ]] || die "setup of backend-db: $out"
out=$(psql_gxp -v base=$BASE -v users="$FLOOR_USERS" -f "$HERE/setup-gxp.sql" 2>&1) ||
    die "setup of gxp-db (port $GXP_DB_PORT) failed: $out"
[[ $(tail -n 1 <<<"$out") == ok ]] || die "setup of gxp-db: $out"

# ---- replication: live? caught up? ----------------------------------------------------------
# A barrier: a decision 'failed' for a fresh id that no one prepared (what ResolveTransaction
# records for an unknown id), INSERTed on backend-db; once gxp-db has recorded it, every
# decision committed before it has been applied there too.
RUN=$(od -An -N6 -tu8 /dev/urandom | tr -d ' ') # replaced by each pass's own
MARKS=0
replication_barrier() { # TIMEOUT_S: 0 once gxp-db recorded the marker
    local cid deadline=$((SECONDS + $1))
    MARKS=$((MARKS + 1))
    cid=$(psql_backend -At -c "INSERT INTO transaction_outbox (correlation_id, state)
        VALUES (md5('floor-barrier-$RUN-$MARKS')::uuid, 'failed') ON CONFLICT DO NOTHING
        RETURNING correlation_id") || return 1
    while ((SECONDS < deadline)); do
        [[ $(psql_gxp -At -c "SELECT count(*) FROM decision WHERE correlation_id = '$cid'") == 1 ]] &&
            return 0
        sleep 0.05
    done
    return 1
}

REPLICATION=0
live=$(psql_gxp -At -c "SELECT count(*) FROM pg_subscription p JOIN pg_stat_subscription s
    ON s.subid = p.oid WHERE p.subname = 'transaction_outbox_sub' AND p.subenabled
    AND s.pid IS NOT NULL AND s.relid IS NULL") || die "cannot read gxp-db's subscription"
# What ran before (the service benchmark) is applied first: its backlog is not ours.
if ((live > 0)) && replication_barrier "$FLOOR_REPLICATION_WAIT"; then
    REPLICATION=1
else
    note "decisions INSERTed on backend-db do not reach gxp-db: no replication during the floor"
fi
if [[ $OP == buy ]]; then TYPE=1 AMT=$COST; else TYPE=0 AMT=$AMOUNT; fi

run_pgbench() { # NAME PORT DBNAME SCRIPT RUN FIRST_N RATE(empty: none) [CLIENTS]
    local rate=() c=${8:-$CLIENTS}
    [[ -n $7 ]] && rate=(-R "$7")
    "$PG_BIN/pgbench" -n -M prepared -r -c "$c" -j "$((c < 2 ? c : 2))" -T "$SECONDS_" "${rate[@]}" \
        -h "$PGHOST" -p "$2" -U "$PGUSER" -f "$HERE/$4" \
        -D base=$BASE -D users="$FLOOR_USERS" -D items="$FLOOR_ITEMS" -D cost=$COST \
        -D amount=$AMOUNT -D cts="$CTS" -D window="$WINDOW" \
        -D finalizers="$FLOOR_FINALIZERS" -D pause=50 \
        -D run="$5" -D n="$6" "$3" >"$TMP/$1.out" 2>"$TMP/$1.err"
}

# One measurement: head start, both pgbench at once, checks, resolution. Sets BTPS (the
# succeeded requests' rate), GTPS, BLAT, GLAT, and the seconds each phase took.
one_pass() { # RATE_BACKEND RATE_GXP (empty: unthrottled)
    local headstart=0 out start side rc_var problem failed succeeded
    local failed_decided undecided bad=0 t0=$SECONDS t1 t2 gdone prepared slack
    local rc_backend=0 rc_gxp=0 rc_finalizer=0 lag
    EARLY_BAD=0
    RUN=$(od -An -N6 -tu8 /dev/urandom | tr -d ' ') # this pass's ids: md5(RUN-client-n)
    CTS=$(date +%s%6N) # the correlation timestamp gxp stores (epoch µs); marks this pass's rows
    CTS_SQL="'epoch'::timestamptz + $CTS * interval '1 microsecond'"

    # -- the head start of the gxp side. With replication live, the backend side's decision for
    # id n of client k reaches gxp-db, where it must find that id already prepared and
    # finalized by the gxp side (then the trigger has nothing to do), as in the real order.
    # Before the clock starts, each gxp client's first ids are prepared and finalized, so
    # that the backend side may outrun the gxp side by that many.
    if ((REPLICATION)); then
        headstart=$(((HEADSTART_RATE * SECONDS_ + CLIENTS - 1) / CLIENTS))
        out=$(psql_gxp -At -c "
DO \$\$
DECLARE
    i    bigint;
    k    integer;
    m    integer := 0;
    cid  uuid;
BEGIN
    FOR i IN 1 .. $headstart LOOP
        FOR k IN 0 .. $CLIENTS - 1 LOOP
            cid := md5('$RUN-' || k || '-' || i)::uuid;
            IF gxp_prepare($BASE + 1 + floor(random() * $FLOOR_USERS)::bigint, $TYPE::smallint,
                           $AMT, cid, $CTS_SQL) <> 0
               OR gxp_apply_decision(cid, 'succeeded', 'floor-headstart') <> 'applied' THEN
                RAISE EXCEPTION 'floor: the head start failed';
            END IF;
            m := m + 1;
            IF m % $CHUNK = 0 THEN
                COMMIT;
            END IF;
        END LOOP;
    END LOOP;
END \$\$;" 2>&1) || die "the head start on gxp-db failed: $out"
    fi
    HEADSTART=$headstart
    # The gxp side prepares id n once the backend side's decision for id n - WINDOW is here:
    # at most the head start and SLACK ids ahead (without replication: no pacing). SLACK
    # covers what the backend side decides while a paced gxp client sleeps (up to 20 ms);
    # 64 ids in all, 4 at least per client.
    slack=$((64 / CLIENTS > 4 ? 64 / CLIENTS : 4))
    if ((REPLICATION)); then WINDOW=$((headstart + slack)); else WINDOW=4611686018427387904; fi
    t1=$SECONDS

    # -- both databases at once
    start=$(psql_backend -At -c "SELECT now()")
    local cb0=0 cg0=0
    [[ -z $CPU_BACKEND ]] || cb0=$(tree_ticks "$CPU_BACKEND")
    [[ -z $CPU_GXP ]] || cg0=$(tree_ticks "$CPU_GXP")
    run_pgbench backend "$BACKEND_DB_PORT" "$BACKEND_DB_NAME" "$OP-backend.sql" "$RUN" 0 "$1" &
    PIDS+=($!)
    run_pgbench gxp "$GXP_DB_PORT" "$GXP_DB_NAME" "$OP-gxp.sql" "$RUN" "$headstart" "$2" &
    PIDS+=($!)
    run_pgbench finalizer "$GXP_DB_PORT" "$GXP_DB_NAME" finalize-gxp.sql "$RUN" 0 "" \
        "$FLOOR_FINALIZERS" &
    PIDS+=($!)
    wait "${PIDS[0]}" || rc_backend=$?
    wait "${PIDS[1]}" || rc_gxp=$?
    wait "${PIDS[2]}" || rc_finalizer=$?
    PIDS=()
    local cb1=0 cg1=0
    [[ -z $CPU_BACKEND ]] || cb1=$(tree_ticks "$CPU_BACKEND")
    [[ -z $CPU_GXP ]] || cg1=$(tree_ticks "$CPU_GXP")
    # Left PENDING by the end of the run: what the finalizer had not reached yet.
    lag=$(psql_gxp -At -c "SELECT count(*) FROM gxp_transaction WHERE $FLOOR_RANGE AND status = 0") ||
        die "cannot read gxp-db"
    t2=$SECONDS

    # -- what pgbench said
    for side in backend gxp finalizer; do
        rc_var=rc_$side
        problem=''
        if ((${!rc_var} != 0)); then
            problem="pgbench exited with status ${!rc_var}"
        elif grep -q 'aborted' "$TMP/$side.out" "$TMP/$side.err"; then
            problem="a client aborted"
        elif ! grep -q '^tps = ' "$TMP/$side.out"; then
            problem="no tps in pgbench's output"
        else
            failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$TMP/$side.out")
            if [[ -n $failed && $failed != 0 ]]; then
                problem="$failed failed transactions"
            fi
        fi
        if [[ -n $problem ]]; then
            bad=1
            note "$OP on $side-db: $problem; pgbench's output:"
            cat "$TMP/$side.out" >&2
            grep -v 'aborted in command' "$TMP/$side.err" >&2 || true
            grep 'aborted in command' "$TMP/$side.err" |
                sed 's/^pgbench: error: client [0-9]* /pgbench: error: client N /' |
                sort | uniq -c | sort -rn | head -n 5 >&2 || true
        fi
    done

    # -- the decisions of the pass
    read -r succeeded failed_decided undecided < <(psql_backend -At -F ' ' -c "
        SELECT count(*) FILTER (WHERE t.state = 'succeeded'),
               count(*) FILTER (WHERE t.state = 'failed'), count(*) FILTER (WHERE t.state IS NULL)
          FROM coord_transactions c LEFT JOIN transaction_outbox t USING (correlation_id)
         WHERE c.$FLOOR_RANGE AND c.created_at >= '$start'") ||
        die "cannot count the run's decisions on backend-db"
    if ((failed_decided > 0)); then
        note "$failed_decided of $((succeeded + failed_decided)) ${OP}s failed ; left out of backend_tps"
    fi

    # -- decisions 'succeeded' that reached gxp-db before the gxp side had prepared their id
    # (the backend side outran the head start): gxp-db did less for them than for a request.
    EARLY=0
    if ((REPLICATION)); then
        replication_barrier "$FLOOR_REPLICATION_WAIT" ||
            die "replication did not apply the run's decisions within ${FLOOR_REPLICATION_WAIT} s"
        EARLY=$(psql_gxp -At -c "SELECT count(*) FROM decision WHERE received_at >= '$start'
            AND outcome = 'no_prepare' AND state = 'succeeded'") || die "cannot read gxp-db"
        if ((EARLY > 0)); then
            note "$EARLY of $succeeded decisions 'succeeded' reached gxp-db before their prepare"
            # More than 1%: not the real work; the caller runs the pass again, with a longer
            # head start.
            ((EARLY * 100 <= succeeded)) || EARLY_BAD=1
        fi
    fi
    # -- leave nothing PENDING: what the finalizer had not reached when the run ended (and a
    # script cut between its prepare and the end) is aborted, as gxp's resolver would have it
    # after GXP_PENDING_TIMEOUT_MS when the backend side never decided its id; CHUNK per
    # transaction (one advisory lock each).
    psql_gxp -At -c "
DO \$\$
DECLARE
    r record;
    m integer := 0;
BEGIN
    FOR r IN SELECT correlation_id FROM gxp_transaction WHERE $FLOOR_RANGE AND status = 0 LOOP
        PERFORM gxp_apply_decision(r.correlation_id, 'failed', 'floor-cleanup');
        m := m + 1;
        IF m % $CHUNK = 0 THEN
            COMMIT;
        END IF;
    END LOOP;
END \$\$;" >/dev/null || die "could not resolve the floor's PENDING transactions on gxp-db"
    ((bad == 0)) || exit 1
    ((EARLY_BAD == 0)) || return 0

    BTPS=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$TMP/backend.out" | head -n 1)
    GTPS=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$TMP/gxp.out" | head -n 1)
    BLAT=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$TMP/backend.out" | head -n 1)
    # the prepare statement's own latency (pgbench -r), pacing probes included
    GLAT=$(awk '/SELECT CASE WHEN/ { print $1; exit }' "$TMP/gxp.out")
    gdone=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$TMP/gxp.out")
    [[ -n $BTPS && -n $GTPS && -n $BLAT && -n $GLAT && -n $gdone ]] ||
        die "cannot read pgbench's output"
    # The gxp side's script runs are prepares or pacing waits: its rate is that of the prepares
    # of this pass (their correlation timestamp, after the head start) and of the ids found
    # decided already (answer 4).
    prepared=$(psql_gxp -At -c "SELECT count(*) FROM gxp_transaction WHERE $FLOOR_RANGE
        AND correlation_ts = $CTS_SQL AND created_at >= '$start'") || die "cannot read gxp-db"
    GTPS=$(awk -v g="$GTPS" -v p="$((prepared + EARLY))" -v d="$gdone" \
        'BEGIN { printf("%.1f", (d > 0) ? g * p / d : 0) }')
    # the requests that succeeded
    BTPS=$(awk -v b="$BTPS" -v ok="$succeeded" -v ko="$failed_decided" \
        'BEGIN { printf("%.1f", (ok + ko > 0) ? b * ok / (ok + ko) : b) }')
    # CPU ms per transaction of each cluster's tree over the run: backend-db's per request
    # decided (succeeded or failed), gxp-db's per prepare of this pass
    BCPU=- GCPU=-
    [[ -z $CPU_BACKEND ]] || BCPU=$(awk -v t="$((cb1 - cb0))" -v h="$TCK" -v n="$((succeeded + failed_decided))" \
        'BEGIN { printf("%.3f", n > 0 ? t * 1000 / h / n : 0) }')
    [[ -z $CPU_GXP ]] || GCPU=$(awk -v t="$((cg1 - cg0))" -v h="$TCK" -v n="$((prepared + EARLY))" \
        'BEGIN { printf("%.3f", n > 0 ? t * 1000 / h / n : 0) }')
    note "pass: backend ${BTPS}/s${1:+ (-R $1)}, gxp ${GTPS}/s${2:+ (-R $2)}, PENDING at the end (finalizer lag) $lag; replication $((REPLICATION ? 1 : 0)), gxp head start $headstart ids per client, run $RUN; seconds: head start $((t1 - t0)), run $((t2 - t1)), checks $((SECONDS - t2))"
}

# ---- the passes -----------------------------------------------------------------------------
# Pass 1 runs both sides as fast as they go. Each further pass (FLOOR_PASSES) throttles the side
# that was faster to 1.25 x the other's rate, so that it leaves the CPU it does not need to the
# slower side, as the coupled system would; the last pass is reported.
rate_backend=$FLOOR_RATE_BACKEND rate_gxp=$FLOOR_RATE_GXP
HEADSTART_RATE=$FLOOR_HEADSTART_RATE
for ((pass = 1; pass <= FLOOR_PASSES; pass++)); do
    for ((again = 0; ; again++)); do
        one_pass "$rate_backend" "$rate_gxp"
        ((EARLY_BAD)) || break
        ((again < 2)) || die "the backend side keeps outrunning the gxp side's head start (FLOOR_HEADSTART_RATE)"
        HEADSTART_RATE=$((HEADSTART_RATE >= 500 ? HEADSTART_RATE * 2 : 1000))
        note "running the pass again with a head start of $HEADSTART_RATE requests/s"
    done
    read -r rate_backend rate_gxp < <(awk -v b="$BTPS" -v g="$GTPS" 'BEGIN {
        if (b + 0 < g + 0) printf("- %d\n", b * 1.25 + 1); else printf("%d -\n", g * 1.25 + 1) }')
    [[ $rate_backend == - ]] && rate_backend=''
    [[ $rate_gxp == - ]] && rate_gxp=''
done

awk -v op="$OP" -v c="$CLIENTS" -v b="$BTPS" -v g="$GTPS" -v bl="$BLAT" -v gl="$GLAT" \
    -v bc="$BCPU" -v gc="$GCPU" 'BEGIN {
    printf("FLOOR op=%s clients=%d tps=%.1f backend_tps=%.1f gxp_tps=%.1f backend_lat_ms=%.3f gxp_lat_ms=%.3f backend_cpu_ms=%s gxp_cpu_ms=%s\n",
        op, c, (b + 0 < g + 0) ? b : g, b, g, bl, gl, bc, gc)
}'
