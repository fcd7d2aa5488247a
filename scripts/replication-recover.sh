#!/usr/bin/env bash
# Recovers gxp-db's subscription to backend-db's decisions (transaction_outbox_sub) when its slot
# on backend-db is stale or lost (wal_status 'lost' once max_slot_wal_keep_size was exceeded
# during a long gxp-db outage), or when the subscription is stuck, then proves that no decision
# was lost: every decision on backend-db is on gxp-db, recorded and applied.
#
#   scripts/replication-recover.sh [--check-only] [--timeout SECONDS]
#
# Steps (see ARCHITECTURE.md, "Replication: health, WAL retention and recovery"):
#   1. report both sides (subscription, table state, apply worker, errors; the slot's wal_status
#      and retained WAL);
#   2. drop the subscription without touching the publisher (DISABLE, slot_name = NONE, DROP),
#      then drop its old slot on backend-db (terminating a walsender that still holds it);
#   3. create it again under gxp's advisory lock (72707, 2), unless a running gxp already did:
#      gxp-db's replica is emptied first and the copy of backend-db's table re-applies every
#      decision — idempotently: gxp_apply_decision records one decision per correlation id and
#      answers 'duplicate' for one already recorded;
#   4. wait until it streams (table state 'r', an apply worker), then until every decision of
#      backend-db is in gxp-db's replica and in its decision table with the same state and an
#      outcome that is not an error, and no transaction with a decision is left PENDING.
# --check-only does 1 and 4 only. Exit 0 when the check holds, 1 otherwise, 2 on bad usage.
#
# Environment: the services' own variables.
#   GXP_DB_URL, GXP_DB_PASSWORD           gxp-db (a superuser: CREATE SUBSCRIPTION on PG 15)
#   BACKEND_DB_URL, BACKEND_DB_PASSWORD   backend-db (may drop the slot: superuser or replication)
#   GXP_PUBLISHER_CONNINFO, GXP_PUBLISHER_PASSWORD
#                                         what gxp-db uses to reach backend-db (default
#                                         BACKEND_DB_URL); the TCP keepalives gxp adds are added
#                                         here too, so gxp finds the conninfo it would build
set -euo pipefail
export LC_ALL=C

SUB=transaction_outbox_sub
PUB=transaction_outbox_pub
TIMEOUT=300
CHECK_ONLY=0
while (($# > 0)); do
    case $1 in
    --check-only) CHECK_ONLY=1 ;;
    --timeout)
        TIMEOUT=${2:?--timeout needs seconds}
        shift
        ;;
    -h | --help)
        sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        printf 'replication-recover: unknown argument %s (see --help)\n' "$1" >&2
        exit 2
        ;;
    esac
    shift
done
: "${GXP_DB_URL:?set GXP_DB_URL (gxp-db)}"
: "${BACKEND_DB_URL:?set BACKEND_DB_URL (backend-db)}"
PUBLISHER=${GXP_PUBLISHER_CONNINFO:-$BACKEND_DB_URL}

say() { printf 'replication-recover: %s\n' "$*" >&2; }
gxp_sql() { PGPASSWORD=${GXP_DB_PASSWORD:-${PGPASSWORD:-}} psql "$GXP_DB_URL" -X -q -v ON_ERROR_STOP=1 "$@"; }
backend_sql() { PGPASSWORD=${BACKEND_DB_PASSWORD:-${PGPASSWORD:-}} psql "$BACKEND_DB_URL" -X -q -v ON_ERROR_STOP=1 "$@"; }
gxp_val() { gxp_sql -At -c "$1"; }
backend_val() { backend_sql -At -c "$1"; }

report() {
    say "gxp-db: $(gxp_val "SELECT coalesce((SELECT format('subscription enabled=%s table=%s worker=%s apply_errors=%s sync_errors=%s',
        s.subenabled,
        coalesce((SELECT r.srsubstate::text FROM pg_subscription_rel r WHERE r.srsubid = s.oid), 'none'),
        coalesce((SELECT w.pid::text FROM pg_stat_subscription w WHERE w.subid = s.oid AND w.relid IS NULL), 'none'),
        coalesce(e.apply_error_count, 0), coalesce(e.sync_error_count, 0))
      FROM pg_subscription s LEFT JOIN pg_stat_subscription_stats e ON e.subid = s.oid
     WHERE s.subname = '$SUB'), 'no subscription')")"
    say "backend-db: $(backend_val "SELECT coalesce((SELECT format('slot active=%s wal_status=%s retained_bytes=%s safe_wal_bytes=%s',
        active, wal_status, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), safe_wal_size)
      FROM pg_replication_slots WHERE slot_name = '$SUB'), 'no slot')")"
}

# The conninfo gxp builds (gxp/subscription.c): the link's TCP settings it lacks, then the password.
urlencode() {
    local s=$1 out='' c i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case $c in
        [a-zA-Z0-9.~_-]) out+=$c ;;
        *) printf -v c '%%%02X' "'$c" && out+=$c ;;
        esac
    done
    printf '%s' "$out"
}
conninfo() {
    local ci=$PUBLISHER uri=0 kv k v
    [[ $ci == postgres://* || $ci == postgresql://* ]] && uri=1
    for kv in keepalives=1 keepalives_idle=5 keepalives_interval=2 keepalives_count=3 \
        tcp_user_timeout=10000 connect_timeout=10; do
        k=${kv%%=*}
        [[ $ci =~ (^|[[:space:]?&])${k}[[:space:]]*= ]] && continue
        if ((uri)); then
            if [[ $ci != *\?* ]]; then ci+='?'; elif [[ $ci != *\? && $ci != *\& ]]; then ci+='&'; fi
            ci+=$kv
        else
            ci+=" $kv"
        fi
    done
    if [[ -n ${GXP_PUBLISHER_PASSWORD:-} ]]; then
        if ((uri)); then
            if [[ $ci != *\?* ]]; then ci+='?'; elif [[ $ci != *\? && $ci != *\& ]]; then ci+='&'; fi
            ci+="password=$(urlencode "$GXP_PUBLISHER_PASSWORD")"
        else
            v=${GXP_PUBLISHER_PASSWORD//\\/\\\\}
            ci+=" password='${v//\'/\\\'}'"
        fi
    fi
    printf '%s' "$ci"
}

drop_subscription() {
    # Without the publisher: a lost slot, or a backend-db that cannot be reached, must not stop us.
    gxp_sql <<SQL
SELECT count(*) > 0 AS has_sub FROM pg_subscription WHERE subname = '$SUB' \gset
\if :has_sub
ALTER SUBSCRIPTION $SUB DISABLE;
ALTER SUBSCRIPTION $SUB SET (slot_name = NONE);
DROP SUBSCRIPTION $SUB;
\endif
SQL
    say "subscription dropped (if it existed)"
    local deadline=$((SECONDS + 30)) active
    while :; do
        active=$(backend_val "SELECT coalesce((SELECT active::text FROM pg_replication_slots WHERE slot_name = '$SUB'), 'none')")
        case $active in
        none) break ;;
        false)
            backend_val "SELECT pg_drop_replication_slot('$SUB')" >/dev/null && say "old slot dropped on backend-db" && break
            ;;
        true)
            # A walsender still holds it (a cut link is noticed only after wal_sender_timeout).
            if ((SECONDS + 25 > deadline)); then
                backend_val "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '$SUB' AND active" >/dev/null || true
            fi
            ;;
        esac
        ((SECONDS < deadline)) || {
            say "the old slot on backend-db is still in use: giving up"
            exit 1
        }
        sleep 0.5
    done
}

create_subscription() {
    # Under gxp's lock: when a running gxp created it meanwhile (it does so within a second of
    # seeing it missing, emptying the replica the same way), there is nothing left to do.
    gxp_sql -v conninfo="$(conninfo)" <<SQL
SET log_min_error_statement = panic;
SET log_statement = none;
SET log_min_duration_statement = -1;
SELECT pg_advisory_lock(72707, 2) \gset
SELECT count(*) = 0 AS missing FROM pg_subscription WHERE subname = '$SUB' \gset
\if :missing
TRUNCATE transaction_outbox;
CREATE SUBSCRIPTION $SUB CONNECTION :'conninfo' PUBLICATION $PUB;
\echo replication-recover: subscription created, the replica on gxp-db emptied first
\else
\echo replication-recover: subscription already created again (by gxp)
\endif
SELECT pg_advisory_unlock(72707, 2) \gset
SQL
}

wait_streaming() {
    local deadline=$((SECONDS + TIMEOUT))
    until [[ $(gxp_val "SELECT count(*) FROM pg_subscription s
        JOIN pg_subscription_rel r ON r.srsubid = s.oid AND r.srsubstate = 'r'
        JOIN pg_stat_subscription w ON w.subid = s.oid AND w.relid IS NULL AND w.pid IS NOT NULL
        WHERE s.subname = '$SUB' AND s.subenabled") == 1 ]]; do
        ((SECONDS < deadline)) || {
            say "not streaming after ${TIMEOUT} s"
            report
            return 1
        }
        sleep 1
    done
    say "streaming"
}

# Every decision of backend-db (taken first) is on gxp-db: in the replica, and recorded with the
# same state and an outcome that is not an error; no transaction with a decision is PENDING, and
# each is COMMITTED iff its decision succeeded.
verify() {
    local tmp deadline=$((SECONDS + TIMEOUT)) lost_replica lost_applied wrong
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' RETURN
    backend_sql -At -c "COPY (SELECT correlation_id || ' ' || state FROM transaction_outbox) TO STDOUT" |
        sort >"$tmp/backend"
    while :; do
        gxp_sql -At -c "COPY (SELECT correlation_id || ' ' || coalesce(state, '') FROM transaction_outbox) TO STDOUT" |
            sort >"$tmp/replica"
        gxp_sql -At -c "COPY (SELECT correlation_id || ' ' || state FROM decision WHERE outcome NOT LIKE 'error%') TO STDOUT" |
            sort >"$tmp/applied"
        lost_replica=$(comm -23 "$tmp/backend" "$tmp/replica" | wc -l)
        lost_applied=$(comm -23 "$tmp/backend" "$tmp/applied" | wc -l)
        wrong=$(gxp_val "SELECT count(*) FROM gxp_transaction t JOIN decision d USING (correlation_id)
            WHERE d.outcome NOT LIKE 'error%' AND (t.status = 0
               OR (t.status = 2) <> (d.state = 'succeeded') OR (t.status = 1) <> (d.state = 'failed'))")
        if ((lost_replica == 0 && lost_applied == 0 && wrong == 0)); then
            say "check ok: all $(wc -l <"$tmp/backend") decisions of backend-db are on gxp-db and applied"
            return 0
        fi
        if ((SECONDS >= deadline)); then
            say "check FAILED: of $(wc -l <"$tmp/backend") decisions, $lost_replica not in gxp-db's replica, $lost_applied not recorded and applied; $wrong transactions disagree with their decision"
            comm -23 "$tmp/backend" "$tmp/applied" | head -10 | sed 's/^/replication-recover:   missing /' >&2
            return 1
        fi
        sleep 1
    done
}

report
if ((!CHECK_ONLY)); then
    drop_subscription
    create_subscription
    wait_streaming
    report
fi
verify
