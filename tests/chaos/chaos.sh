#!/usr/bin/env bash
# The chaos test: the whole local system (scripts/stack.sh) on free ports in a private state
# directory, N clients sending a seeded random mix of create-user, add-gxp, buy and item PATCHes
# through nginx (gf-chaos load), while this script follows a seeded fault schedule: kill -9 of a
# service process (either backend replica, either gxp, eventlog) and its restart, an immediate
# restart of a PostgreSQL cluster, RabbitMQ closing every client connection. Then the load stops,
# the system quiesces, and gf-chaos check verifies SPEC §5's invariants and every request's
# effect against its answer, and prints the summary. Exit 0 only with zero violations.
#
#   tests/chaos/chaos.sh            (make chaos; ctest chaos_short runs a short one)
#
# Environment: CHAOS_SEED (random when unset; printed), CHAOS_SECONDS (120), CHAOS_CLIENTS (16),
# CHAOS_THINK_MS (100: a client's pause between requests, at most), CHAOS_PENDING_TIMEOUT_MS
# (2000: gxp's GXP_PENDING_TIMEOUT_MS here), CHAOS_LAG_MS (15000: the replication and resolver lag
# allowed on top of it), CHAOS_FAULTS (one per 6 s of load; at least 3: one of each kind),
# CHAOS_QUIESCE_S (90), GF_BUILD_DIR (build), CHAOS_BIN (gf-chaos),
# GF_TEST_TMP (set by ctest: the state goes under it; otherwise a new mktemp directory).
# The same seed gives the same operations, parameters and fault schedule; outcomes that depend
# on timing may differ.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export GF_BUILD_DIR=${GF_BUILD_DIR:-$REPO/build}
BIN=${CHAOS_BIN:-$GF_BUILD_DIR/tests-bin/gf-chaos}
STACK=$REPO/scripts/stack.sh
RABBITMQ=$REPO/tests/harness/rabbitmq.sh
PG_BIN=${GF_PG_BIN:-/usr/lib/postgresql/15/bin}
SECONDS_LOAD=${CHAOS_SECONDS:-120}
CLIENTS=${CHAOS_CLIENTS:-16}
THINK_MS=${CHAOS_THINK_MS:-100}
PENDING_TIMEOUT_MS=${CHAOS_PENDING_TIMEOUT_MS:-2000}
LAG_MS=${CHAOS_LAG_MS:-15000}
QUIESCE_S=${CHAOS_QUIESCE_S:-90}
if [[ -z ${CHAOS_SEED:-} ]]; then
    CHAOS_SEED=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
fi
SEED=$CHAOS_SEED
[[ $SEED =~ ^[0-9]+$ ]] || {
    echo "chaos: CHAOS_SEED must be a non-negative integer" >&2
    exit 2
}

if [[ -n ${GF_TEST_TMP:-} ]]; then
    TMP=$GF_TEST_TMP/chaos
    if [[ -f $TMP/stack/build-dir ]]; then # a run killed before its trap: stop its stack first
        GF_STATE_DIR=$TMP/stack bash "$STACK" down >/dev/null 2>&1 || true
    fi
    rm -rf "$TMP"
    mkdir -p "$TMP"
    chmod 755 "$GF_TEST_TMP"
else
    TMP=$(mktemp -d /tmp/gf-chaos-XXXXXX)
fi
chmod 755 "$TMP" # PostgreSQL (the postgres user when we are root) must reach its clusters
export GF_STATE_DIR=$TMP/stack GF_READY_TIMEOUT=60
WORK=$TMP/run
mkdir -p "$WORK" "$GF_STATE_DIR"
chmod 755 "$GF_STATE_DIR"
printf '%s\n' "$GF_BUILD_DIR" >"$GF_STATE_DIR/build-dir"

T_START=$SECONDS
say() { printf 'chaos: [%3ds] %s\n' "$((SECONDS - T_START))" "$*" >&2; }
die() {
    say "FAILED: $*"
    exit 1
}

[[ -x $BIN ]] || die "$BIN is missing (build first)"
[[ -x $GF_BUILD_DIR/bin/backend ]] || die "$GF_BUILD_DIR/bin/backend is missing (build first)"

# shellcheck source=../harness/ports.sh
source "$REPO/tests/harness/ports.sh"
stack_ports || die "no block of free ports"
INGRESS=http://127.0.0.1:$GF_INGRESS_PORT
# gxp asks the coordinator about a PENDING transaction after this long (default 30 s).
GXP_EXTRA="GXP_PENDING_TIMEOUT_MS=$PENDING_TIMEOUT_MS GXP_RESOLVE_INTERVAL_MS=250"
export GF_EXTRA_ENV_GXP_1=$GXP_EXTRA GF_EXTRA_ENV_GXP_2=$GXP_EXTRA

LOAD_PID=''
cleanup() {
    local rc=$?
    if [[ -n $LOAD_PID ]] && kill -0 "$LOAD_PID" 2>/dev/null; then
        kill -TERM "$LOAD_PID" 2>/dev/null || true
        wait "$LOAD_PID" 2>/dev/null || true
    fi
    bash "$STACK" down >>"$WORK/stack.log" 2>&1 || true
    say "stack stopped; records, faults and logs kept in $TMP (stack logs: $GF_STATE_DIR/log)"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "seed $SEED (CHAOS_SEED=$SEED reproduces the operations and the fault schedule)"
say "$SECONDS_LOAD s of load, $CLIENTS clients; state in $TMP"

stack_up() { bash "$STACK" up >>"$WORK/stack.log" 2>&1; }
stack_up || {
    tail -n 40 "$WORK/stack.log" >&2
    die "stack up"
}
say "stack up on free ports (ingress $GF_INGRESS_PORT)"

psql_at() { # PORT SQL: one value
    "$PG_BIN/psql" -X -q -A -t -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2" 2>/dev/null
}
conninfo() { printf 'host=127.0.0.1 port=%s user=postgres dbname=postgres' "$1"; }

# ---- faults ------------------------------------------------------------------------------------
as_pg() {
    if [[ $EUID -eq 0 ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

prog_pid() {
    local pid=''
    read -r pid 2>/dev/null <"$GF_STATE_DIR/run/$1.pid" || true
    printf '%s' "$pid"
}

# kill -9 a program of the stack (by the pid its pid file records), then `stack.sh up` after
# DOWN ms restarts it (up starts what is not running, and waits until every program is ready).
fault_kill() {
    local name=$1 down=$2 pid new
    pid=$(prog_pid "$name")
    if ! [[ $pid =~ ^[0-9]+$ ]] || ! kill -0 "$pid" 2>/dev/null; then
        say "kill $name: not running"
        return 1
    fi
    kill -KILL "$pid"
    say "killed $name (pid $pid); restarting it in $down ms"
    sleep "$(printf '%d.%03d' $((down / 1000)) $((down % 1000)))"
    stack_up || return 1
    new=$(prog_pid "$name")
    if [[ -z $new || $new == "$pid" ]] || ! kill -0 "$new" 2>/dev/null; then
        return 1
    fi
    say "$name back (pid $new)"
}

# An immediate shutdown of a cluster (no checkpoint: crash recovery at the next start), then
# `stack.sh up` after DOWN ms starts it again.
fault_pg() {
    local name=$1 down=$2 dir=$GF_STATE_DIR/data/$1
    as_pg "$PG_BIN/pg_ctl" -D "$dir" -m immediate -w -t 20 stop >>"$WORK/stack.log" 2>&1 || return 1
    say "stopped $name (immediate); starting it in $down ms"
    sleep "$(printf '%d.%03d' $((down / 1000)) $((down % 1000)))"
    stack_up || return 1
    say "$name back"
}

# The broker closes every client connection (relays, consumers): each reconnects.
fault_broker() {
    local out
    out=$(bash "$RABBITMQ" ctl "$GF_STATE_DIR/data/broker" close_all_connections --global \
        "chaos test" 2>&1) || {
        printf '%s\n' "$out" >>"$WORK/stack.log"
        return 1
    }
    say "broker: $(tail -n 1 <<<"$out")"
}

# ---- the run -----------------------------------------------------------------------------------
"$BIN" schedule --seed "$SEED" --seconds "$SECONDS_LOAD" --faults "${CHAOS_FAULTS:-0}" \
    >"$WORK/schedule" || die "schedule"
say "fault schedule (ms after the load starts, kind, target, down ms):"
sed 's/^/chaos:        /' "$WORK/schedule" >&2

"$BIN" setup --url "$INGRESS" --seed "$SEED" --out "$WORK/setup.tsv" || die "setup"
say "setup done: $(wc -l <"$WORK/setup.tsv") requests"

: >"$WORK/faults.tsv"
"$BIN" load --url "$INGRESS" --seed "$SEED" --seconds "$SECONDS_LOAD" --clients "$CLIENTS" \
    --think-ms "$THINK_MS" --setup "$WORK/setup.tsv" --out "$WORK/load.tsv" \
    --stop-file "$WORK/stop" &
LOAD_PID=$!
LOAD_T0=$(date +%s%3N)
while read -r -u 3 at kind target down; do
    now=$(($(date +%s%3N) - LOAD_T0))
    if ((at > now)); then
        sleep "$(printf '%d.%03d' $(((at - now) / 1000)) $(((at - now) % 1000)))"
    fi
    t=$(($(date +%s%3N) - LOAD_T0))
    result=ok
    case $kind in
    kill) fault_kill "$target" "$down" || result=failed ;;
    pg) fault_pg "$target" "$down" || result=failed ;;
    broker) fault_broker || result=failed ;;
    *) result=unknown ;;
    esac
    [[ $result == ok ]] || say "fault $kind $target did not complete: $result (see $WORK/stack.log)"
    printf '%s %s %s %s\n' "$t" "$kind" "$target" "$result" >>"$WORK/faults.tsv"
done 3<"$WORK/schedule"
say "fault schedule done; the load stops ${SECONDS_LOAD} s after its start, or now if later"
touch "$WORK/stop"
load_rc=0
wait "$LOAD_PID" || load_rc=$?
LOAD_PID=''
((load_rc == 0)) || die "the load generator failed (exit $load_rc)"

# ---- quiescence: every program up, nothing PENDING, the outbox drained, every event stored -------
stack_up || die "the stack could not be brought back up (see $WORK/stack.log)"
say "load stopped; waiting for the system to quiesce (at most $QUIESCE_S s)"
deadline=$((SECONDS + QUIESCE_S))
quiet=0
while ((SECONDS < deadline)); do
    pending=$(psql_at "$GF_GXP_DB_PORT" "SELECT count(*) FROM gxp_transaction WHERE status = 0")
    unpublished=$(psql_at "$GF_BACKEND_DB_PORT" \
        "SELECT count(*) FROM event_outbox WHERE published_at IS NULL")
    outbox=$(psql_at "$GF_BACKEND_DB_PORT" "SELECT count(*) FROM event_outbox")
    decisions=$(psql_at "$GF_BACKEND_DB_PORT" "SELECT count(*) FROM transaction_outbox")
    replicated=$(psql_at "$GF_GXP_DB_PORT" "SELECT count(*) FROM transaction_outbox")
    stored=$(psql_at "$GF_EVENTLOG_DB_PORT" "SELECT count(*) FROM event")
    consumer=$(curl -s -m 2 "http://127.0.0.1:$GF_EVENTLOG_HTTP_PORT/metrics" |
        awk '$1 == "eventlog_consumer_connected" {print $2}')
    state="pending=$pending unpublished=$unpublished decisions=$decisions/$replicated"
    state+=" events=$stored/$outbox consumer=${consumer:-?}"
    if [[ $pending == 0 && $unpublished == 0 && -n $decisions && $decisions == "$replicated" &&
        -n $stored && $stored == "$outbox" ]]; then
        quiet=1
        break
    fi
    sleep 0.5
done
if ((quiet)); then
    say "quiet after $((SECONDS - deadline + QUIESCE_S)) s: $state"
else
    say "NOT quiet after $QUIESCE_S s: $state (the checker names what is stuck)"
fi

check_rc=0
"$BIN" check --seed "$SEED" --records "$WORK/setup.tsv" --records "$WORK/load.tsv" \
    --faults "$WORK/faults.tsv" --pending-limit-ms $((PENDING_TIMEOUT_MS + LAG_MS)) \
    --backend-db "$(conninfo "$GF_BACKEND_DB_PORT")" --gxp-db "$(conninfo "$GF_GXP_DB_PORT")" \
    --eventlog-db "$(conninfo "$GF_EVENTLOG_DB_PORT")" | tee "$WORK/summary.txt" || check_rc=$?
failed_faults=$(grep -vc ' ok$' "$WORK/faults.tsv" || true)

# No program died on its own: `stack.sh up` restarts whatever is down, so a crash between two
# faults would otherwise pass unseen. Each program must have started once, plus once per kill
# of it; and, stopped cleanly now, no log may hold a sanitizer's report (the ASan build).
bash "$STACK" down >>"$WORK/stack.log" 2>&1 || true
crashed=0
for name in backend-svc-1 backend-svc-2 gxp-1 gxp-2 eventlog; do
    log=$GF_STATE_DIR/log/$name.log
    starts=$(grep -c 'stack.sh: starting' "$log" 2>/dev/null || true)
    kills=$(awk -v n="$name" '$2 == "kill" && $3 == n && $4 == "ok"' "$WORK/faults.tsv" | wc -l)
    if ((starts != kills + 1)); then
        say "VIOLATION: $name started $starts times but was killed $kills times: it died on its own (see $log)"
        crashed=1
    fi
    if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log" 2>/dev/null; then
        say "VIOLATION: a sanitizer report in $log"
        crashed=1
    fi
done
((crashed == 0)) && say "every program started once plus once per kill; no sanitizer report"
say "run time $((SECONDS - T_START)) s"
((crashed == 0)) || die "a program crashed or a sanitizer reported (seed $SEED)"
if ((check_rc != 0)); then
    die "violations found (seed $SEED): see above, $WORK/summary.txt and $GF_STATE_DIR/log"
fi
((failed_faults == 0)) || die "$failed_faults faults could not be injected as planned (see $WORK/stack.log)"
say "passed: violations = 0 (seed $SEED)"
