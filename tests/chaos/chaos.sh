#!/usr/bin/env bash
# The chaos test: the whole local system (scripts/stack.sh) on free ports in a private state
# directory, N clients sending a seeded random mix of create-user, add-gxp, buy, item PATCHes
# and auctions (sellers put a unit up for 5-10 s, many bidders outbid each other, a few
# cancellations) through nginx (gf-chaos load) — some buys, add-gxps, bids, auction creations
# and cancellations with an Idempotency-Key, retried with it until a definite answer, some buys,
# add-gxps and bids resending their X-Correlation-Id after no answer; each with
# a bearer token: the operator's (admin, who acts for anyone; its password is in the
# admin.password file of the stack's secrets directory), or for a buy often the buyer's own (setup creates the users with
# passwords and logs each in); a few with none (must be 401) or with a user's token acting for
# another user or on an admin route (must be 403) — while this script follows a seeded fault
# schedule:
#   kill    kill -9 of a service process (either backend replica, either gxp, eventlog), restart
#   pg      an immediate stop of a PostgreSQL cluster, start
#   broker  RabbitMQ closes every client connection
#   cut     a network link drops every packet for a while (tests/harness/netfault.sh: services ↔
#           backend-db, gxp ↔ gxp-db, the replication gxp-db → backend-db, backend ↔ gxp gRPC,
#           services ↔ RabbitMQ), then heals
#   delay   a link holds every packet 50-500 ms for a while
#   pause   SIGSTOP of a program, SIGCONT after longer than gxp's pending timeout; a pause of
#           backend-svc-1 waits for a buy sitting at its buy.before_commit failpoint (stock row
#           and decision locked) and probe buys of that item through backend-svc-2 measure how
#           long the locks blocked them
# and the backends run with failpoints armed at small probabilities (kills in every window of
# the protocol: after prepare, after commit, inside ResolveTransaction, in the relay between
# publish and mark, and the auction saga's: a bid's, a settlement's before and after its commit,
# a refund's and a payout's after prepare and after commit); a program that died at a failpoint
# is restarted at once and counted as
# killed. gf-chaos sample records the oldest PENDING transaction, open transactions and lock
# waits twice a second. Then the load stops, the system quiesces (every auction ended, no saga
# step pending), and gf-chaos check verifies SPEC §5's invariants, the auction saga's (GXP
# conserved per user, escrow = leading bids of open auctions, each outbid bid refunded once, each
# won auction paid out once, each unit one owner, one event per settlement, cancellation and
# outbid bid, each settlement in time after its end or the fault then), every request's effect
# against its answer, at most one effect per Idempotency-Key (the one its 2xx names), nothing
# PENDING past timeout + lag after a fault ended, and prints the summary. Exit 0 only with zero
# violations.
#
#   tests/chaos/chaos.sh            (make chaos; ctest chaos_short runs a short one)
#
# Environment: CHAOS_SEED (random when unset; printed), CHAOS_SECONDS (120), CHAOS_CLIENTS (16),
# CHAOS_THINK_MS (100: a client's pause between requests, at most), CHAOS_PENDING_TIMEOUT_MS
# (2000: gxp's GXP_PENDING_TIMEOUT_MS here), CHAOS_LAG_MS (15000: the replication, resolver and
# fault-recovery lag allowed on top of it), CHAOS_SETTLE_LIMIT_MS (LAG_MS + 15000, the backends'
# BACKEND_SAGA_LEASE_MS: how late a settlement may come after its auction's end or after the
# fault going on then), CHAOS_FAULTS (one per 6 s of load; at least 10: one
# kill, pg, broker, delay and pause, and a cut of each link), CHAOS_QUIESCE_S (90),
# CHAOS_FAILPOINTS_1 / CHAOS_FAILPOINTS_2 (GF_FAILPOINTS of backend-svc-1 / -2; "" disarms),
# CHAOS_FP_SAGA (the saga's failpoints in both, by default the rates below),
# CHAOS_LOCK_WAIT_S (20: how long a pause of backend-svc-1 waits for a buy at buy.before_commit),
# GF_BUILD_DIR (build), CHAOS_BIN (gf-chaos), GF_TEST_TMP (set by ctest: the state goes under
# it; otherwise a new mktemp directory). Needs root (iptables) for the network faults.
# The same seed gives the same operations, parameters and fault schedule; outcomes that depend
# on timing (and which failpoints fire) differ.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export GF_BUILD_DIR=${GF_BUILD_DIR:-$REPO/build}
BIN=${CHAOS_BIN:-$GF_BUILD_DIR/tests-bin/gf-chaos}
STACK=$REPO/scripts/stack.sh
RABBITMQ=$REPO/tests/harness/rabbitmq.sh
NETFAULT=$REPO/tests/harness/netfault.sh
PG_BIN=${GF_PG_BIN:-/usr/lib/postgresql/15/bin}
SECONDS_LOAD=${CHAOS_SECONDS:-120}
CLIENTS=${CHAOS_CLIENTS:-16}
THINK_MS=${CHAOS_THINK_MS:-100}
PENDING_TIMEOUT_MS=${CHAOS_PENDING_TIMEOUT_MS:-2000}
LAG_MS=${CHAOS_LAG_MS:-15000}
QUIESCE_S=${CHAOS_QUIESCE_S:-90}
LOCK_WAIT_S=${CHAOS_LOCK_WAIT_S:-20}
# A settlement whose runner died holding its lease waits for the lease to expire (15 s).
SETTLE_LIMIT_MS=${CHAOS_SETTLE_LIMIT_MS:-$((LAG_MS + 15000))}
# Failpoints (lib/include/gf/failpoint.h), each window of the protocol: backend-svc-1 serves the
# buys (nginx routes /marketplace to it), backend-svc-2 the add-gxps; both answer gxp's
# ResolveTransaction and run a relay. buy.before_commit pauses rather than kills: a pause of
# backend-svc-1 waits for a buy sitting there to stop the process with its locks held.
# About one kill a window per minute of load at this load's rates. Resolutions come in bursts
# after each partition (hundreds), and a restarted backend is asked at once: a higher
# probability kills it again while it starts.
# The auctions' requests go to backend-svc-1 (nginx routes /auction to it), their saga steps
# to whichever replica claims them first: the saga's failpoints are armed in both (a step runs
# in one of them). At this load's rates (12 clients: bids ~11/s, auctions ~2.5/s, so
# settlements ~2/s, refunds ~3.5/s, payouts ~1.5/s) that is again about one kill a window per
# minute of load. A settlement killed before its commit waits for its lease (15 s).
FP_COMMON=resolve.before_decide=kill@0.005,resolve.after_decide=kill@0.005,relay.after_publish=kill@0.0005
# A restarted backend claims at once the due steps whose leases ran out (up to 32 per runner),
# so at these rates a start dies at a saga failpoint about half the time, and while the load
# keeps making steps the deaths can feed each other: CHAOS_FP_SAGA sets other rates (the
# short run in `make test` takes a quarter of these, see tests/chaos/CMakeLists.txt).
FP_SAGA=${CHAOS_FP_SAGA:-saga.settle_before_commit=kill@0.008,saga.settle_after_commit=kill@0.008,saga.refund_after_prepare=kill@0.005,saga.refund_after_commit=kill@0.005,saga.payout_after_prepare=kill@0.01,saga.payout_after_commit=kill@0.01}
FP_AUCTION=auction.create_before_commit=kill@0.006,auction.bid_after_prepare=kill@0.0015,auction.bid_before_commit=kill@0.0015,auction.bid_after_commit=kill@0.0015
FAILPOINTS_1=${CHAOS_FAILPOINTS_1-buy.after_prepare=kill@0.0005,buy.before_commit=pause:3000@0.01,buy.after_commit=kill@0.0005,$FP_AUCTION,$FP_SAGA,$FP_COMMON}
FAILPOINTS_2=${CHAOS_FAILPOINTS_2-add_gxp.after_prepare=kill@0.001,add_gxp.after_commit=kill@0.001,$FP_SAGA,$FP_COMMON}
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
bash "$NETFAULT" check 2>"$WORK/netfault-check.log" || {
    cat "$WORK/netfault-check.log" >&2
    die "network faults cannot be injected here (tests/harness/netfault.sh check)"
}
[[ -x $GF_BUILD_DIR/bin/backend ]] || die "$GF_BUILD_DIR/bin/backend is missing (build first)"

# shellcheck source=../harness/ports.sh
source "$REPO/tests/harness/ports.sh"
stack_ports || die "no block of free ports"
INGRESS=http://127.0.0.1:$GF_INGRESS_PORT
# gxp asks the coordinator about a PENDING transaction after this long (default 30 s).
GXP_EXTRA="GXP_PENDING_TIMEOUT_MS=$PENDING_TIMEOUT_MS GXP_RESOLVE_INTERVAL_MS=250"
export GF_EXTRA_ENV_GXP_1=$GXP_EXTRA GF_EXTRA_ENV_GXP_2=$GXP_EXTRA
# The backends start without failpoints: setup must see no fault (a failpoint's kill of a
# backend during setup answered one of its POSTs 502, and the run failed before any fault).
# They are restarted with them armed once setup is done (arm_failpoints).
export GF_EXTRA_ENV_BACKEND_SVC_1='' GF_EXTRA_ENV_BACKEND_SVC_2=''
# The network faults of this run: rules commented gf-netfault-$NETRUN, healed by our trap (or by
# reap.sh's `netfault.sh reap` once this shell is gone).
NETRUN=chaos-$$-$SEED
export NETFAULT_OWNER_PID=$$
printf '%s\n' "$NETRUN" >"$WORK/netfault-run"

LOAD_PID='' WATCHER_PID='' SAMPLER_PID='' PROBE_PID=''
stop_pid() { # PID: TERM, then KILL after 5 s (only our own children)
    local pid=$1 i
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$? pid
    touch "$WORK/stop" "$WORK/stop-watcher" "$WORK/stop-sampler"
    stop_pid "$LOAD_PID"
    stop_pid "$PROBE_PID"
    stop_pid "$WATCHER_PID"
    stop_pid "$SAMPLER_PID"
    bash "$NETFAULT" heal "$NETRUN" >>"$WORK/stack.log" 2>&1 || true
    if [[ -f $WORK/paused ]]; then # a pause interrupted: let its program go on, to stop it
        while read -r pid; do
            kill -CONT "$pid" 2>/dev/null || true
        done <"$WORK/paused"
    fi
    bash "$STACK" down >>"$WORK/stack.log" 2>&1 || true
    say "stack stopped; records, faults and logs kept in $TMP (stack logs: $GF_STATE_DIR/log)"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "seed $SEED (CHAOS_SEED=$SEED reproduces the operations and the fault schedule)"
say "$SECONDS_LOAD s of load, $CLIENTS clients; state in $TMP"

# One `stack.sh up` at a time: the fault loop and the failpoint watcher both start programs. A
# kill or a cluster restart holds the lock from the stop to the restart, so that the watcher
# neither restarts its target early nor waits for a cluster that is down. The lock's descriptor
# is not passed on to the programs `up` starts.
open_stack_lock() { exec {STACK_LOCK_FD}>>"$WORK/stack.lock"; }
lock_stack() { flock "$STACK_LOCK_FD"; }
unlock_stack() { flock -u "$STACK_LOCK_FD"; }
stack_up_once() { bash "$STACK" up >>"$WORK/stack.log" 2>&1 {STACK_LOCK_FD}>&-; }
# A failpoint may kill a program while `up` waits for every program to be ready (then `up`
# fails: "the process exited during start"): up to six tries. After a cluster restart a backend
# starts on a backlog of due saga steps, each a chance for a kill failpoint, and three starts in
# a row were killed once (seed 202621303, pg backend-db); each kill comes after a step committed,
# so the backlog shrinks from try to try.
stack_up_locked() {
    local try
    for try in 1 2 3 4 5 6; do
        stack_up_once && return 0
    done
    return 1
}
stack_up() {
    local rc=0
    lock_stack
    stack_up_locked || rc=$?
    unlock_stack
    return "$rc"
}
open_stack_lock
stack_up || {
    tail -n 40 "$WORK/stack.log" >&2
    die "stack up"
}
say "stack up on free ports (ingress $GF_INGRESS_PORT)"
# The operator's password (the backends create admin with it at their first start) and the
# tokens setup gets by logging in (renewed by the load when old). PostgreSQL over TCP wants
# postgres's password (scram): the PGPASSFILE `up` writes, for any connection not on a socket.
ADMIN_PW=$GF_STATE_DIR/secrets/admin.password
TOKENS=$WORK/tokens.tsv
export PGPASSFILE=$GF_STATE_DIR/secrets/pgpass
[[ -s $ADMIN_PW ]] || die "$ADMIN_PW is missing (scripts/stack.sh up writes it)"

# The driver reaches the clusters over their Unix sockets (in their data directories), which the
# network faults (TCP on loopback) do not touch; TCP when a path is too long for a socket.
pg_host() { # PORT
    local name
    case $1 in
    "$GF_BACKEND_DB_PORT") name=backend-db ;;
    "$GF_GXP_DB_PORT") name=gxp-db ;;
    *) name=eventlog-db ;;
    esac
    if [[ -S $GF_STATE_DIR/data/$name/.s.PGSQL.$1 ]]; then
        printf '%s' "$GF_STATE_DIR/data/$name"
    else
        printf '127.0.0.1'
    fi
}
psql_at() { # PORT SQL: one value
    "$PG_BIN/psql" -X -q -A -t -h "$(pg_host "$1")" -p "$1" -U postgres -d postgres -c "$2" \
        2>/dev/null
}
conninfo() {
    printf 'host=%s port=%s user=postgres dbname=postgres connect_timeout=3' "$(pg_host "$1")" "$1"
}
now_ms() { date +%s%3N; }

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

# Alive and not a zombie.
alive() {
    local stat
    [[ $1 =~ ^[0-9]+$ ]] || return 1
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

# running_pid NAME: waits (at most 120 s) until NAME runs and prints its pid. The failpoints
# may kill it again and again for a while (a restarted backend is asked at once about every
# transaction a partition left PENDING, and claims the saga's due steps), so it is looked at
# every 100 ms, between the failpoint watcher's restarts, and not only after a whole `up`
# (one of which waits for every program, and under the sanitizers fails whenever any of them
# dies during its start: five rounds of `up` once went by without finding it alive). `up`
# runs every 5 s in case nobody else starts it.
running_pid() {
    local name=$1 pid i
    for ((i = 0; i < 1200; i++)); do
        pid=$(prog_pid "$name")
        if alive "$pid"; then
            printf '%s' "$pid"
            return 0
        fi
        if ((i % 50 == 0)); then
            stack_up || true
        else
            sleep 0.1
        fi
    done
    return 1
}

sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }

# A fault record: T_REL KIND TARGET RESULT T0 T1 (epoch ms) [DETAIL].
record_fault() {
    printf '%s %s %s %s %s %s%s\n' "$(($4 - LOAD_T0))" "$1" "$2" "$3" "$4" "$5" "${6:+ $6}" \
        >>"$WORK/faults.tsv"
}

# kill -9 a program of the stack (by the pid its pid file records), then `stack.sh up` after
# DOWN ms restarts it (up starts what is not running, and waits until every program is ready).
fault_kill() {
    local rc=0
    lock_stack
    fault_kill_locked "$@" || rc=$?
    unlock_stack
    return "$rc"
}
fault_kill_locked() {
    local name=$1 down=$2 pid new i
    for ((i = 0; i < 15; i++)); do # a program a failpoint killed comes back first
        pid=$(prog_pid "$name")
        alive "$pid" && break
        stack_up_once || true # looked at after each `up`, not after three (see running_pid)
    done
    if ! alive "$pid"; then
        say "kill $name: not running"
        return 1
    fi
    kill -KILL "$pid"
    say "killed $name (pid $pid); restarting it in $down ms"
    sleep_ms "$down"
    # The new process may die at once at a failpoint (a saga step due at its start, a burst
    # of resolutions): that death is the failpoint's (its log says so), and `up` again brings
    # it back. The target is looked at after each `up`: one that fails because another
    # program died during its start may well have brought the target back.
    for ((i = 0; i < 15; i++)); do
        stack_up_once || true
        new=$(prog_pid "$name")
        [[ -n $new && $new != "$pid" ]] && alive "$new" && break
    done
    if [[ -z $new || $new == "$pid" ]] || ! alive "$new"; then
        return 1
    fi
    say "$name back (pid $new)"
}

# An immediate shutdown of a cluster (no checkpoint: crash recovery at the next start), then
# `stack.sh up` after DOWN ms starts it again.
fault_pg() {
    local rc=0
    lock_stack
    fault_pg_locked "$@" || rc=$?
    unlock_stack
    return "$rc"
}
fault_pg_locked() {
    local name=$1 down=$2 dir=$GF_STATE_DIR/data/$1
    as_pg "$PG_BIN/pg_ctl" -D "$dir" -m immediate -w -t 20 stop >>"$WORK/stack.log" 2>&1 || return 1
    say "stopped $name (immediate); starting it in $down ms"
    sleep_ms "$down"
    stack_up_locked || return 1
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

# A link drops every packet for MS, then heals (tests/harness/netfault.sh).
fault_cut() {
    local link=$1 ms=$2
    bash "$NETFAULT" cut "$NETRUN" "$link" 2>>"$WORK/stack.log" || return 1
    say "cut $link for $ms ms (packets dropped)"
    sleep_ms "$ms"
    bash "$NETFAULT" heal "$NETRUN" "$link" 2>>"$WORK/stack.log" || return 1
    say "healed $link"
}

# A link holds every packet DELAY ms for MS.
fault_delay() {
    local link=$1 ms=$2 delay=$3
    bash "$NETFAULT" delay "$NETRUN" "$delay" "$link" 2>>"$WORK/stack.log" || return 1
    say "delaying $link by $delay ms each way for $ms ms"
    sleep_ms "$ms"
    bash "$NETFAULT" heal "$NETRUN" "$link" 2>>"$WORK/stack.log" || return 1
    say "healed $link"
}

# SIGSTOP a program for MS, then SIGCONT. backend-svc-1 is stopped while one of its buys sits
# at buy.before_commit (its failpoint pauses there, stock row and decision locked; we wait up to
# LOCK_WAIT_S for one), and probe buys of that item through backend-svc-2 measure how long
# the locks blocked other buyers (lock-probes.tsv).
fault_pause() {
    local name=$1 ms=$2 pid log off line='' cid='' item='' deadline t0 out
    pid=$(running_pid "$name") || { # a failpoint may kill it at any moment
        say "pause $name: not running"
        return 1
    }
    if [[ $name == backend-svc-1 && $FAILPOINTS_1 == *buy.before_commit=pause* ]]; then
        log=$GF_STATE_DIR/log/$name.log
        off=$(stat -c %s "$log")
        deadline=$((SECONDS + LOCK_WAIT_S))
        while ((SECONDS < deadline)); do
            line=$(tail -c +"$((off + 1))" "$log" |
                grep -m 1 'failpoint fired name=buy.before_commit action=pause' || true)
            [[ -n $line ]] && break
            sleep 0.05
        done
        if [[ -n $line && $(prog_pid "$name") == "$pid" ]]; then
            cid=$(sed -n 's/.* cid=\([0-9a-f-]\{36\}\) .*/\1/p' <<<"$line")
        else
            say "pause $name: no buy reached buy.before_commit in $LOCK_WAIT_S s; a plain pause"
        fi
    fi
    pid=$(running_pid "$name") || return 1 # a failpoint may have killed it meanwhile
    kill -STOP "$pid" || return 1
    t0=$(now_ms)
    printf '%s\n' "$pid" >>"$WORK/paused"
    if [[ -n $cid ]]; then
        item=$(psql_at "$GF_BACKEND_DB_PORT" \
            "SELECT item_id FROM coord_transactions WHERE correlation_id = '$cid'")
    fi
    if [[ $item =~ ^[0-9]+$ ]]; then
        "$BIN" probe --url "http://127.0.0.1:$GF_BACKEND2_HTTP_PORT" --setup "$WORK/setup.tsv" \
            --tokens "$TOKENS" --admin-password-file "$ADMIN_PW" \
            --item "$item" --seed "$SEED" --out "$WORK/probes.tsv" --max-ms $((ms + 20000)) \
            >"$WORK/probe.out" 2>>"$WORK/probe.log" &
        PROBE_PID=$!
        say "paused $name (pid $pid) for $ms ms inside buy $cid of item $item; probing item $item"
    else
        say "paused $name (pid $pid) for $ms ms"
    fi
    sleep_ms "$ms"
    kill -CONT "$pid" || return 1
    say "$name continued" # (a failpoint may kill it right after: the watcher restarts it)
    if [[ -n $PROBE_PID ]]; then
        wait "$PROBE_PID" || true
        PROBE_PID=''
        out=$(cat "$WORK/probe.out" 2>/dev/null || true)
        printf '%s %s %s %s %s\n' "$t0" "$name" "$ms" "$item" "${out:-blocked_ms=-1 no answer}" \
            >>"$WORK/lock-probes.tsv"
        say "probe buys of item $item: ${out:-no answer}"
    fi
}

# ---- failpoint kills -------------------------------------------------------------------------------
# A program that died at a failpoint (its log's last line since its start says `failpoint fired
# name=X action=kill`) is restarted at once and recorded as a fault `fpkill` (target: the
# program, detail: the failpoint). A program that died otherwise is left to the next `up`, and
# the final count of starts names it.
watch_failpoints() {
    local name pid log line ts at fp
    declare -A handled=()
    exec {STACK_LOCK_FD}>&- # a lock of our own: the shell's descriptor is shared with it
    open_stack_lock
    while [[ ! -e $WORK/stop-watcher ]]; do
        for name in backend-svc-1 backend-svc-2 gxp-1 gxp-2 eventlog; do
            pid=$(prog_pid "$name")
            alive "$pid" && continue
            log=$GF_STATE_DIR/log/$name.log
            line=$(awk '/stack.sh: starting/ {l = ""} /failpoint fired name=[^ ]* action=kill/ {l = $0}
                END {print l}' "$log" 2>/dev/null || true)
            [[ -n $line ]] || continue
            ts=$(sed -n 's/^ts=\([^ ]*\) .*/\1/p' <<<"$line")
            fp=$(sed -n 's/.*failpoint fired name=\([^ ]*\) .*/\1/p' <<<"$line")
            if [[ -z ${handled[$name$ts]:-} ]]; then
                handled[$name$ts]=1
                at=$(date -d "$ts" +%s%3N 2>/dev/null || now_ms)
                say "$name died at failpoint $fp: restarting it"
                if stack_up; then
                    record_fault fpkill "$name" ok "$at" "$(now_ms)" "$fp"
                else
                    record_fault fpkill "$name" failed "$at" "$(now_ms)" "$fp"
                fi
            else
                stack_up || true
            fi
        done
        sleep 0.3
    done
}

# ---- the run -----------------------------------------------------------------------------------
"$BIN" schedule --seed "$SEED" --seconds "$SECONDS_LOAD" --faults "${CHAOS_FAULTS:-0}" \
    --pause-min-ms $((PENDING_TIMEOUT_MS + 1000)) >"$WORK/schedule" || die "schedule"
say "fault schedule (ms after the load starts, kind, target, down ms):"
sed 's/^/chaos:        /' "$WORK/schedule" >&2

"$BIN" setup --url "$INGRESS" --seed "$SEED" --out "$WORK/setup.tsv" --tokens "$TOKENS" \
    --admin-password-file "$ADMIN_PW" || die "setup"
say "setup done: $(wc -l <"$WORK/setup.tsv") requests, $(wc -l <"$TOKENS") logins (admin and each user)"

# Each backend stopped gracefully (SIGTERM: it drains) and started again with its failpoints.
arm_failpoints() {
    local name pid i
    export GF_EXTRA_ENV_BACKEND_SVC_1="GF_FAILPOINTS=$FAILPOINTS_1"
    export GF_EXTRA_ENV_BACKEND_SVC_2="GF_FAILPOINTS=$FAILPOINTS_2"
    for name in backend-svc-1 backend-svc-2; do
        pid=$(prog_pid "$name")
        alive "$pid" || return 1
        kill -TERM "$pid"
        for ((i = 0; i < 200; i++)); do
            alive "$pid" || break
            sleep 0.1
        done
        alive "$pid" && return 1
        stack_up || return 1
        printf '%s\n' "$name" >>"$WORK/rearmed" # a start of its own in the final count
    done
}
arm_failpoints || die "restarting the backends with their failpoints"
say "failpoints: backend-svc-1 ${FAILPOINTS_1:-none}; backend-svc-2 ${FAILPOINTS_2:-none}"

: >"$WORK/faults.tsv"
: >"$WORK/probes.tsv"
: >"$WORK/lock-probes.tsv"
"$BIN" sample --gxp-db "$(conninfo "$GF_GXP_DB_PORT")" --backend-db "$(conninfo "$GF_BACKEND_DB_PORT")" \
    --out "$WORK/samples.tsv" --stop-file "$WORK/stop-sampler" 2>>"$WORK/sample.log" &
SAMPLER_PID=$!
LOAD_T0=$(now_ms)
watch_failpoints 2>>"$WORK/watcher.log" &
WATCHER_PID=$!
"$BIN" load --url "$INGRESS" --seed "$SEED" --seconds "$SECONDS_LOAD" --clients "$CLIENTS" \
    --think-ms "$THINK_MS" --setup "$WORK/setup.tsv" --out "$WORK/load.tsv" \
    --tokens "$TOKENS" --admin-password-file "$ADMIN_PW" --stop-file "$WORK/stop" &
LOAD_PID=$!
while read -r -u 3 at kind target down arg; do
    now=$(($(now_ms) - LOAD_T0))
    if ((at > now)); then
        sleep_ms $((at - now))
    fi
    t0=$(now_ms)
    result=ok
    case $kind in
    kill) fault_kill "$target" "$down" || result=failed ;;
    pg) fault_pg "$target" "$down" || result=failed ;;
    broker) fault_broker || result=failed ;;
    cut) fault_cut "$target" "$down" || result=failed ;;
    delay) fault_delay "$target" "$down" "$arg" || result=failed ;;
    pause) fault_pause "$target" "$down" || result=failed ;;
    *) result=unknown ;;
    esac
    [[ $result == ok ]] || say "fault $kind $target did not complete: $result (see $WORK/stack.log)"
    record_fault "$kind" "$target" "$result" "$t0" "$(now_ms)" "${arg:-}"
done 3<"$WORK/schedule"
bash "$NETFAULT" heal "$NETRUN" 2>>"$WORK/stack.log" || die "could not heal the network"
say "fault schedule done; the load stops ${SECONDS_LOAD} s after its start, or now if later"
touch "$WORK/stop"
load_rc=0
wait "$LOAD_PID" || load_rc=$?
LOAD_PID=''
((load_rc == 0)) || die "the load generator failed (exit $load_rc)"

# ---- quiescence: every program up, nothing PENDING, every auction ended and its saga done, the
# outbox drained, every event stored -------------------------------------------------------------
# (Failpoints stay armed: a resolution or a publish may still kill a backend, and the watcher
# restarts it.)
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
    auctions=$(psql_at "$GF_BACKEND_DB_PORT" "SELECT count(*) FROM auctions WHERE status = 'open'")
    steps=$(psql_at "$GF_BACKEND_DB_PORT" "SELECT count(*) FROM saga_steps WHERE state = 'pending'")
    consumer=$(curl -s -m 2 "http://127.0.0.1:$GF_EVENTLOG_HTTP_PORT/metrics" |
        awk '$1 == "eventlog_consumer_connected" {print $2}')
    state="pending=$pending unpublished=$unpublished decisions=$decisions/$replicated"
    state+=" events=$stored/$outbox consumer=${consumer:-?} open-auctions=$auctions"
    state+=" pending-saga-steps=$steps"
    if [[ $pending == 0 && $unpublished == 0 && -n $decisions && $decisions == "$replicated" &&
        -n $stored && $stored == "$outbox" && $auctions == 0 && $steps == 0 ]]; then
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

touch "$WORK/stop-watcher" "$WORK/stop-sampler"
wait "$WATCHER_PID" || true
wait "$SAMPLER_PID" || true
WATCHER_PID='' SAMPLER_PID=''

# Failpoint hits, from every program's log: NAME ACTION COUNT (armed ones that never fired: 0).
{
    cat "$GF_STATE_DIR"/log/*.log 2>/dev/null |
        grep -o 'failpoint fired name=[^ ]* action=[a-z]*' |
        sed 's/failpoint fired name=\([^ ]*\) action=\([a-z]*\)/\1 \2/' | sort | uniq -c |
        awk '{print $2, $3, $1}'
    for fp in ${FAILPOINTS_1//,/ } ${FAILPOINTS_2//,/ }; do
        a=${fp#*=}
        printf '%s %s 0\n' "${fp%%=*}" "${a%%[:@]*}"
    done
} | awk '{k = $1 " " $2; if (!(k in n) || $3 > n[k]) n[k] = $3} END {for (k in n) print k, n[k]}' |
    sort >"$WORK/failpoints.tsv"

check_rc=0
"$BIN" check --seed "$SEED" --records "$WORK/setup.tsv" --records "$WORK/load.tsv" \
    --records "$WORK/probes.tsv" --faults "$WORK/faults.tsv" --samples "$WORK/samples.tsv" \
    --failpoints "$WORK/failpoints.tsv" --lock-probes "$WORK/lock-probes.tsv" \
    --pending-timeout-ms "$PENDING_TIMEOUT_MS" --pending-limit-ms $((PENDING_TIMEOUT_MS + LAG_MS)) \
    --settle-limit-ms "$SETTLE_LIMIT_MS" \
    --backend-db "$(conninfo "$GF_BACKEND_DB_PORT")" --gxp-db "$(conninfo "$GF_GXP_DB_PORT")" \
    --eventlog-db "$(conninfo "$GF_EVENTLOG_DB_PORT")" | tee "$WORK/summary.txt" || check_rc=$?
failed_faults=$(awk '$4 != "ok" && $2 != "fpkill"' "$WORK/faults.tsv" | wc -l)

# No program died on its own: `stack.sh up` restarts whatever is down, so a crash between two
# faults would otherwise pass unseen. Each program must have started once, plus once per kill
# of it (by this script, or by itself at a failpoint: its log says so), plus the backends'
# restart with their failpoints armed; and, stopped cleanly
# now, no log may hold a sanitizer's report (the ASan build).
bash "$STACK" down >>"$WORK/stack.log" 2>&1 || true
crashed=0
for name in backend-svc-1 backend-svc-2 gxp-1 gxp-2 eventlog; do
    log=$GF_STATE_DIR/log/$name.log
    starts=$(grep -c 'stack.sh: starting' "$log" 2>/dev/null || true)
    kills=$(awk -v n="$name" '$2 == "kill" && $3 == n && $4 == "ok"' "$WORK/faults.tsv" | wc -l)
    # failpoint kills before the last start (one at `down`, while draining, needs no restart)
    fpkills=$(awk '/stack.sh: starting/ {n += seg; seg = 0}
        /failpoint fired name=[^ ]* action=kill/ {seg = 1} END {print n + 0}' "$log" 2>/dev/null ||
        echo 0)
    rearmed=$(grep -cx "$name" "$WORK/rearmed" 2>/dev/null || true)
    if ((starts != kills + fpkills + rearmed + 1)); then
        say "VIOLATION: $name started $starts times but was killed $kills times by the driver and $fpkills times at a failpoint: it died on its own (see $log)"
        crashed=1
    fi
    if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log" 2>/dev/null; then
        say "VIOLATION: a sanitizer report in $log"
        crashed=1
    fi
done
((crashed == 0)) && say "every program started once plus once per kill (failpoint kills included); no sanitizer report"
say "run time $((SECONDS - T_START)) s"
((crashed == 0)) || die "a program crashed or a sanitizer reported (seed $SEED)"
if ((check_rc != 0)); then
    die "violations found (seed $SEED): see above, $WORK/summary.txt and $GF_STATE_DIR/log"
fi
((failed_faults == 0)) || die "$failed_faults faults could not be injected as planned (see $WORK/stack.log)"
say "passed: violations = 0 (seed $SEED)"
