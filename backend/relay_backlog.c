/* What the relay measures for /metrics besides its own counters: the event_outbox backlog
 * (rows waiting, the oldest's age) and the replication slot of gxp's subscription on
 * backend-db (its lag, the WAL it retains, its wal_status). The values live outside any relay,
 * so a render never reads a freed one; NaN until the first measure. */
#include "relay_backlog.h"

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gf/clock.h"
#include "gf/metrics.h"

#define BACKLOG_COUNT_MAX "100000" /* the backlog is counted up to this (a bounded index scan) */

/* The backlog as last measured (-1: not yet, or the database did not answer): unpublished
 * rows and the creation time of the oldest, and the WAL bytes of backend-db that gxp's
 * subscription has not confirmed (the decisions' way to gxp). */
static struct gf_backlog backlog = GF_BACKLOG_INIT;
static _Atomic int64_t decisions_lag_bytes = -1;

/* The slot of gxp's subscription on backend-db, as last measured: the WAL it keeps
 * from being recycled (current position − restart_lsn; -1 unknown or none), how much more may
 * be written before max_slot_wal_keep_size invalidates it (safe_wal_size, negative once past
 * it; SAFE_UNKNOWN when unknown or unbounded), and its wal_status as an index into
 * slot_statuses (-1: not measured yet). */
#define SAFE_UNKNOWN INT64_MIN
static _Atomic int64_t slot_retained_bytes = -1, slot_safe_bytes = SAFE_UNKNOWN;
static atomic_int slot_status = -1;
static const char *const slot_statuses[] = {"missing", "reserved", "extended", "unreserved",
                                            "lost"};
#define SLOT_NSTATUSES ((int)(sizeof slot_statuses / sizeof slot_statuses[0]))

static double decisions_lag_gauge(void *arg)
{
    (void)arg;
    int64_t b = atomic_load(&decisions_lag_bytes);
    return b < 0 ? NAN : (double)b;
}

static double slot_retained_gauge(void *arg)
{
    (void)arg;
    int64_t b = atomic_load(&slot_retained_bytes);
    return b < 0 ? NAN : (double)b;
}

static double slot_safe_gauge(void *arg)
{
    (void)arg;
    int64_t b = atomic_load(&slot_safe_bytes);
    return b == SAFE_UNKNOWN ? NAN : (double)b;
}

/* 1 for the slot's current wal_status, 0 for the others; NaN until measured. */
static double slot_status_gauge(void *arg)
{
    int now = atomic_load(&slot_status);
    if (now < 0)
        return NAN;
    return now == (int)(intptr_t)arg ? 1 : 0;
}

static int slot_status_index(const char *s)
{
    for (int i = 1; i < SLOT_NSTATUSES; i++) {
        if (strcmp(s, slot_statuses[i]) == 0)
            return i;
    }
    return -1;
}

/* One measure (worker 0 of the relay calls it every second): one statement over the partial
 * index of pending rows, bounded, and the replication slot of gxp's subscription (its lag, the
 * WAL it retains and its wal_status: backend-db's disk is what a long gxp-db outage fills, up
 * to max_slot_wal_keep_size, past which the slot is lost and the subscription must be
 * re-created: scripts/replication-recover.sh). */
void relay_backlog_measure(struct gf_db_pool *pool)
{
    struct gf_db_conn *c = NULL;
    PGresult *res = NULL;
    int64_t rows = -1, oldest = -1, lag = -1, retained = -1, safe = SAFE_UNKNOWN;
    int status = -1;
    if (gf_db_acquire(pool, &c) != GF_OK)
        goto out;
    if (gf_db_exec(c, "relay_backlog",
                   "SELECT (SELECT count(*) FROM (SELECT 1 FROM event_outbox"
                   "         WHERE published_at IS NULL LIMIT " BACKLOG_COUNT_MAX ") p),"
                   " (SELECT (extract(epoch FROM created_at) * 1000000)::bigint FROM event_outbox"
                   "   WHERE published_at IS NULL ORDER BY id LIMIT 1),"
                   " s.lag, s.retained, s.wal_status, s.safe_wal_size, s.slot IS NOT NULL"
                   " FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT slot_name AS slot,"
                   "   pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint AS lag,"
                   "   pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS retained,"
                   "   wal_status, safe_wal_size"
                   "   FROM pg_replication_slots WHERE slot_name = 'transaction_outbox_sub') s"
                   " ON true",
                   0, NULL, &res) == GF_OK) {
        rows = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        if (!PQgetisnull(res, 0, 1))
            oldest = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        if (!PQgetisnull(res, 0, 2))
            lag = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
        if (!PQgetisnull(res, 0, 3))
            retained = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
        if (!PQgetisnull(res, 0, 5))
            safe = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
        if (strcmp(PQgetvalue(res, 0, 6), "t") != 0)
            status = 0; /* no slot: the subscription is gone (or was never made) */
        else if (!PQgetisnull(res, 0, 4))
            status = slot_status_index(PQgetvalue(res, 0, 4));
        PQclear(res);
    }
    gf_db_release(pool, c);
out:
    gf_backlog_set(&backlog, rows, oldest);
    atomic_store(&decisions_lag_bytes, lag);
    atomic_store(&slot_retained_bytes, retained);
    atomic_store(&slot_safe_bytes, safe);
    atomic_store(&slot_status, status);
}

void relay_backlog_register_metrics(void)
{
    gf_metrics_backlog(&backlog, "backend_outbox_pending",
                       "event_outbox rows not yet published (counted up to " BACKLOG_COUNT_MAX
                       ", measured every second; NaN until measured)",
                       "backend_outbox_oldest_pending_age_seconds",
                       "age of the oldest unpublished event_outbox row (0 when none)");
    gf_metrics_gauge_fn("backend_decisions_replication_lag_bytes",
                        "backend-db WAL not yet confirmed by gxp's subscription "
                        "(slot transaction_outbox_sub; NaN while there is none)",
                        "", decisions_lag_gauge, NULL);
    gf_metrics_gauge_fn("backend_decisions_slot_retained_wal_bytes",
                        "backend-db WAL kept for gxp's subscription (current LSN - the slot's "
                        "restart_lsn): grows while gxp-db is away; NaN without a slot",
                        "", slot_retained_gauge, NULL);
    gf_metrics_gauge_fn("backend_decisions_slot_safe_wal_bytes",
                        "WAL that may still be written before max_slot_wal_keep_size "
                        "invalidates the slot (safe_wal_size; NaN when unbounded or lost)",
                        "", slot_safe_gauge, NULL);
    for (int i = 0; i < SLOT_NSTATUSES; i++) {
        char labels[48];
        snprintf(labels, sizeof labels, "status=\"%s\"", slot_statuses[i]);
        gf_metrics_gauge_fn("backend_decisions_slot_wal_status",
                            "1 for the wal_status of gxp's slot on backend-db (missing: no slot; "
                            "lost: invalidated, run scripts/replication-recover.sh)",
                            labels, slot_status_gauge, (void *)(intptr_t)i);
    }
}

void relay_backlog_figures(int64_t *outbox_rows, int64_t *slot_lag_bytes)
{
    *outbox_rows = atomic_load(&backlog.rows);
    *slot_lag_bytes = atomic_load(&decisions_lag_bytes);
}
