#!/usr/bin/env bash
# Loads N rows of history into every table a buy or an add-gxp grows, for bench/suite.sh's
# "a million rows later" run: N users, each with one committed add-gxp of 1 GXP, recorded the
# way the system records it — backend-db: users, coord_transactions, transaction_outbox (carried
# to gxp-db by replication); gxp-db: balance, gxp_transaction, decision; eventlog-db: event.
# The gxp side stays consistent (balance = Σ committed ADD); the events are history for those
# users. Ids start at 3,000,000,001, far from the benchmark's own rows and the floor's (2,000,000,001 on).
#   BACKEND_DB_PORT=.. GXP_DB_PORT=.. EVENTLOG_DB_PORT=.. bench/load_rows.sh N
set -euo pipefail
N=${1:?rows}
PG_BIN=${GF_PG_BIN:-/usr/lib/postgresql/15/bin}
sql() { "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres -d postgres -p "$1" -c "$2"; }
BASE=3000000000
CID="md5('gf-history-' || i)::uuid"
start=$(date +%s)

# gxp-db first, decisions included: when the replicated decision arrives, gxp finds it already
# applied ('duplicate') instead of recording an unprepared one.
sql "$GXP_DB_PORT" "
BEGIN;
INSERT INTO balance (user_id, balance) SELECT $BASE + i, 1 FROM generate_series(1, $N) i;
INSERT INTO gxp_transaction (correlation_id, user_id, type, amount, status, finalized_at)
    SELECT $CID, $BASE + i, 0, 1, 2, now() FROM generate_series(1, $N) i;
INSERT INTO decision (correlation_id, state, source, outcome)
    SELECT $CID, 'succeeded', 'replication', 'applied' FROM generate_series(1, $N) i;
COMMIT;
ANALYZE balance; ANALYZE gxp_transaction; ANALYZE decision;"
echo "gxp-db: $N balances, transactions and decisions ($(($(date +%s) - start)) s)"

sql "$BACKEND_DB_PORT" "
BEGIN;
INSERT INTO users (id, name) SELECT $BASE + i, 'history-' || i FROM generate_series(1, $N) i;
INSERT INTO coord_transactions (correlation_id, kind, user_id, amount)
    SELECT $CID, 'add_gxp', $BASE + i, 1 FROM generate_series(1, $N) i;
COMMIT;
ANALYZE users; ANALYZE coord_transactions;"
# The decisions in transactions of 1,000, from one session. gxp's apply trigger takes an
# advisory lock per decision, held to the end of the apply transaction: a decision transaction
# of 50,000 rows ran gxp-db out of lock slots ("out of shared memory") and stalled replication.
for ((lo = 1; lo <= N; lo += 1000)); do
    printf "INSERT INTO transaction_outbox (correlation_id, state) SELECT %s, 'succeeded' FROM generate_series(%d, %d) i;\n" \
        "$CID" "$lo" "$((lo + 999 < N ? lo + 999 : N))"
done | "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres -d postgres -p "$BACKEND_DB_PORT" >/dev/null
sql "$BACKEND_DB_PORT" "ANALYZE transaction_outbox"
echo "backend-db: $N users, coordinator transactions and decisions ($(($(date +%s) - start)) s)"

sql "$EVENTLOG_DB_PORT" "
INSERT INTO event (event_name, message_id, user_id, text, correlation_id, data, occurred_at, stored_at)
    SELECT 'BuyItemEvent', $CID, $BASE + i, 'history', $CID,
           jsonb_build_object('userId', $BASE + i, 'itemId', 1, 'userItemId', i),
           now() - interval '1 day', now() - interval '1 day'
      FROM generate_series(1, $N) i;
ANALYZE event;"
echo "eventlog-db: $N events ($(($(date +%s) - start)) s)"

# Replication carries the decisions to gxp-db; the benchmark waits until it has.
deadline=$((SECONDS + 900))
while :; do
    # Applied in commit order: once the last decision is there, every one is.
    got=$(sql "$GXP_DB_PORT" "SELECT count(*) FROM transaction_outbox
        WHERE correlation_id = md5('gf-history-$N')::uuid")
    ((got == 1)) && break
    ((SECONDS < deadline)) || {
        echo "replication did not carry the decisions in 900 s" >&2
        exit 1
    }
    sleep 2
done
sql "$GXP_DB_PORT" "ANALYZE transaction_outbox"
echo "replicated: $N decisions in gxp-db's transaction_outbox ($(($(date +%s) - start)) s)"

# Settle before the measurement: the bulk load leaves every page of the new rows dirty and
# without hint bits or visibility map; a checkpoint and a VACUUM now, rather than during the
# run that follows (what a system would have done over the months these rows stand for).
for port in "$BACKEND_DB_PORT" "$GXP_DB_PORT" "$EVENTLOG_DB_PORT"; do
    sql "$port" "VACUUM" >/dev/null
    sql "$port" "CHECKPOINT" >/dev/null
done
echo "settled: VACUUM and CHECKPOINT on the three clusters ($(($(date +%s) - start)) s)"
