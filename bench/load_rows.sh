#!/usr/bin/env bash
# Adds N rows of history to every table a buy or an add-gxp grows, for bench/suite.sh's `big`
# part (history sizes, BENCH_HISTORY) and `make history ROWS=N`: N users, each with one
# committed add-gxp of 1 GXP, recorded the way the system records it — backend-db: users,
# coord_transactions, transaction_outbox (carried to gxp-db by replication); gxp-db: balance,
# gxp_transaction, decision; eventlog-db: event. The gxp side stays consistent (balance = Σ
# committed ADD); the events are history for those users. Ids start at 3,000,000,001, far from
# the benchmark's own rows and the floor's (2,000,000,001 on); history row i is user
# 3,000,000,000 + i with correlation id md5('gf-history-' || i).
#
# The rows go after those a previous load left (the last history event on eventlog-db says how
# many: each chunk writes its events last), so that loads add up (BENCH_HISTORY="0 1000000
# 3000000" loads 1M, then 2M more) and a load cut short resumes where it stopped: every INSERT
# skips rows that are there already (ON CONFLICT DO NOTHING).
#
# Ten million rows in bounded pieces: chunks of LOAD_CHUNK (100,000) rows, each on each
# database in its own transactions, and the next chunk only once replication has carried this
# one's decisions to gxp-db. What that bounds:
#   memory   no statement materialises more than a chunk (generate_series in FROM is one);
#   locks    the decisions go in transactions of 1,000: gxp's apply trigger may take an
#            advisory lock per decision, held to the end of the apply transaction (a decision
#            transaction of 50,000 rows once ran gxp-db out of lock slots and stalled
#            replication; sql/gxp/002_apply_without_lock_slots.sql made that rarer, not
#            impossible);
#   WAL      the replication slot must keep all WAL back to the oldest decision gxp-db has not
#            confirmed, and backend-db invalidates a slot that holds more than
#            max_slot_wal_keep_size (1 GB, tests/harness/pg-cluster.sh): one transaction of
#            10M users would pass it; a chunk's ~40 MB does not, and waiting for each chunk
#            keeps it so.
#   BACKEND_DB_PORT=.. GXP_DB_PORT=.. EVENTLOG_DB_PORT=.. bench/load_rows.sh N
# Environment: LOAD_CHUNK (100000; 1000..1000000), GF_PG_BIN, PGPASSFILE (postgres's password
# over TCP: the stack's secrets/pgpass).
set -euo pipefail
usage() {
    echo "usage: BACKEND_DB_PORT=.. GXP_DB_PORT=.. EVENTLOG_DB_PORT=.. ${0##*/} N (1..1000000000 rows to add)" >&2
    exit 2
}
(($# == 1)) || usage
N=$1
[[ $N =~ ^[1-9][0-9]{0,9}$ ]] && ((N <= 1000000000)) || usage
CHUNK=${LOAD_CHUNK:-100000}
[[ $CHUNK =~ ^[1-9][0-9]*$ ]] && ((CHUNK >= 1000 && CHUNK <= 1000000)) || {
    echo "${0##*/}: LOAD_CHUNK must be in 1000..1000000" >&2
    exit 2
}
for v in BACKEND_DB_PORT GXP_DB_PORT EVENTLOG_DB_PORT; do
    [[ ${!v:-} =~ ^[0-9]+$ ]] || {
        echo "${0##*/}: $v (the cluster's port) is not set" >&2
        usage
    }
done
PG_BIN=${GF_PG_BIN:-/usr/lib/postgresql/15/bin}
sql() { "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres -d postgres -p "$1" -c "$2"; }
BASE=3000000000
CID="md5('gf-history-' || i)::uuid"
start=$(date +%s)
elapsed() { echo $(($(date +%s) - start)); }

HAVE=$(sql "$EVENTLOG_DB_PORT" "SELECT coalesce(max(user_id) - $BASE, 0) FROM event WHERE user_id > $BASE")
LAST=$((HAVE + N))
((BASE + LAST <= 4294967295)) || {
    echo "${0##*/}: $HAVE rows of history already; $N more would pass the largest user id" >&2
    exit 2
}
echo "history: $HAVE rows there, adding $N in chunks of $CHUNK"

# Replication carries the decisions to gxp-db; applied in commit order: once the last
# decision of a chunk is there, every earlier one is.
wait_replicated() { # I: the history row whose decision must have reached gxp-db
    local deadline=$((SECONDS + 900))
    while :; do
        [[ $(sql "$GXP_DB_PORT" "SELECT count(*) FROM transaction_outbox
            WHERE correlation_id = md5('gf-history-$1')::uuid") == 1 ]] && return 0
        ((SECONDS < deadline)) || {
            echo "replication did not carry the decisions up to history row $1 in 900 s" >&2
            exit 1
        }
        sleep 0.5
    done
}

for ((lo = HAVE + 1; lo <= LAST; lo += CHUNK)); do
    hi=$((lo + CHUNK - 1 < LAST ? lo + CHUNK - 1 : LAST))
    range="generate_series($lo, $hi) i"
    t0=$(date +%s%3N)
    # gxp-db first, decisions included: when the replicated decision arrives, gxp finds it
    # already applied ('duplicate') instead of recording an unprepared one.
    sql "$GXP_DB_PORT" "
BEGIN;
INSERT INTO balance (user_id, balance) SELECT $BASE + i, 1 FROM $range ON CONFLICT DO NOTHING;
INSERT INTO gxp_transaction (correlation_id, user_id, type, amount, status, finalized_at)
    SELECT $CID, $BASE + i, 0, 1, 2, now() FROM $range ON CONFLICT DO NOTHING;
INSERT INTO decision (correlation_id, state, source, outcome)
    SELECT $CID, 'succeeded', 'replication', 'applied' FROM $range ON CONFLICT DO NOTHING;
COMMIT;"
    sql "$BACKEND_DB_PORT" "
BEGIN;
INSERT INTO users (id, name) SELECT $BASE + i, 'history-' || i FROM $range ON CONFLICT DO NOTHING;
INSERT INTO coord_transactions (correlation_id, kind, user_id, amount)
    SELECT $CID, 'add_gxp', $BASE + i, 1 FROM $range ON CONFLICT DO NOTHING;
COMMIT;"
    # The decisions in transactions of 1,000, from one session (see "locks" above).
    for ((k = lo; k <= hi; k += 1000)); do
        printf "INSERT INTO transaction_outbox (correlation_id, state) SELECT %s, 'succeeded' FROM generate_series(%d, %d) i ON CONFLICT DO NOTHING;\n" \
            "$CID" "$k" "$((k + 999 < hi ? k + 999 : hi))"
    done | "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres -d postgres -p "$BACKEND_DB_PORT" >/dev/null
    # Last: the chunk's events, whose highest user says how far the history goes.
    sql "$EVENTLOG_DB_PORT" "
INSERT INTO event (event_name, message_id, user_id, text, correlation_id, data, occurred_at, stored_at)
    SELECT 'BuyItemEvent', $CID, $BASE + i, 'history', $CID,
           jsonb_build_object('userId', $BASE + i, 'itemId', 1, 'userItemId', i),
           now() - interval '1 day', now() - interval '1 day'
      FROM $range ON CONFLICT DO NOTHING;"
    t1=$(date +%s%3N)
    wait_replicated "$hi"
    t2=$(date +%s%3N)
    echo "history rows $lo..$hi: written in $((t1 - t0)) ms, replicated $((t2 - t1)) ms later ($(elapsed) s in all)"
done
echo "loaded: $N rows of history (users, coordinator transactions, decisions, gxp transactions, balances, events), $LAST in all ($(elapsed) s)"

# Settle before the measurement: the bulk load leaves every page of the new rows dirty and
# without hint bits or visibility map; a VACUUM (ANALYZE) and a checkpoint now, rather than
# during the run that follows (what a system would have done over the months these rows stand
# for).
for port in "$BACKEND_DB_PORT" "$GXP_DB_PORT" "$EVENTLOG_DB_PORT"; do
    sql "$port" "VACUUM (ANALYZE)" >/dev/null
    sql "$port" "CHECKPOINT" >/dev/null
done
echo "settled: VACUUM (ANALYZE) and CHECKPOINT on the three clusters ($(elapsed) s)"
