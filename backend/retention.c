/* Retention of backend-db (issue 19): decided distributed transactions and finished auctions are
 * deleted past their retention, in small batches (lib/src/prune.c runs the passes). Each
 * statement carries its own safety condition, so a replica that prunes while another does, or a
 * retention set too short, can lose history but never a row the protocol still needs:
 *   - a decision (transaction_outbox) only once gxp-db has applied it: its transaction is older
 *     than a retention mark the subscription's slot has confirmed (sql/backend/012_retention.sql).
 *     Until then gxp's resolver may still ask ResolveTransaction about it, and the answer must be
 *     this decision, not a fresh 'failed'. Its DELETE reaches gxp-db after its INSERT (commit
 *     order), where it removes the replica's row and fires no trigger (INSERT/UPDATE only);
 *   - a claim (coord_transactions) only together with its decision, or a free buy's once its
 *     outcome is written: never an undecided claim, which a resent id and the resolver settle;
 *   - a saga's claims and decisions only once its auction is gone, and an auction (with its
 *     bids and steps) only when it is settled or cancelled and no step is pending.
 * gxp keeps its transactions longer (GXP_RETENTION_S > BACKEND_RETENTION_S by default), and
 * refuses a prepare of an id it finalized: an id the backend forgot is refused, never run twice.
 * event_outbox (relay.c) and idempotency_keys (idempotency.c) are pruned where they are used. */
#include <inttypes.h>
#include <stdio.h>

#include "backend.h"
#include "gf/prune.h"

/* pg_try_advisory_xact_lock key of the backend's pruning ("gf-backend-retention"). */
#define RETENTION_LOCK_KEY 7077019001

/* A mark of how far the subscription must get for the decisions before it to be applied on
 * gxp-db; the marks it has passed, but the newest of them, are dropped (and any older than the
 * retention: rows that old are compared with newer marks anyway). */
static const char SQL_MARK[] =
    "WITH used AS (SELECT max(m.id) AS id FROM retention_marks m"
    "   JOIN pg_replication_slots s ON s.slot_name = 'transaction_outbox_sub'"
    "    AND s.confirmed_flush_lsn >= m.lsn),"
    " d AS (DELETE FROM retention_marks WHERE id < (SELECT id FROM used)"
    "   OR (taken_at < now() - make_interval(secs => $2::int)"
    "       AND id IS DISTINCT FROM (SELECT id FROM used)) RETURNING 1),"
    /* The snapshot's xmin first, then the WAL position: every transaction older than that xmin
     * has written its commit record before this position. */
    " i AS (INSERT INTO retention_marks (snap_xmin, lsn)"
    "   SELECT pg_snapshot_xmin(pg_current_snapshot()), pg_current_wal_insert_lsn()"
    "   WHERE (SELECT count(*) FROM d) < $1::int RETURNING 1)"
    " SELECT (SELECT count(*) FROM d)";

/* Finished auctions: the saga is over (no pending step) and nothing refers to them any more.
 * The foreign keys among the three tables are checked at the end of the statement. */
static const char SQL_AUCTIONS[] =
    "WITH a AS (SELECT a.id FROM auctions a"
    "   WHERE a.status IN ('settled', 'cancelled')"
    "     AND a.closed_at < now() - make_interval(secs => $2::int)"
    "     AND NOT EXISTS (SELECT 1 FROM saga_steps s"
    "                      WHERE s.auction_id = a.id AND s.state = 'pending')"
    "   ORDER BY a.id LIMIT $1::int FOR UPDATE OF a SKIP LOCKED),"
    " d_steps AS (DELETE FROM saga_steps s USING a WHERE s.auction_id = a.id RETURNING 1),"
    " d_bids AS (DELETE FROM auction_bids b USING a WHERE b.auction_id = a.id RETURNING 1),"
    " d_auctions AS (DELETE FROM auctions x USING a WHERE x.id = a.id RETURNING 1)"
    " SELECT (SELECT count(*) FROM d_auctions), (SELECT count(*) FROM d_bids),"
    "        (SELECT count(*) FROM d_steps)";

/* Decisions gxp-db has applied (their transaction is older than the newest mark the slot has
 * confirmed: xmin compared by age, which is wraparound-safe; a frozen row's age is the largest),
 * with their claims. A saga's only once its auction is gone: the saga reads its steps'
 * decisions. */
static const char SQL_DECISIONS[] =
    "WITH h AS (SELECT m.snap_xmin, m.taken_at FROM retention_marks m"
    "   JOIN pg_replication_slots s ON s.slot_name = 'transaction_outbox_sub'"
    "    AND s.confirmed_flush_lsn >= m.lsn"
    "   ORDER BY m.id DESC LIMIT 1),"
    " cand AS (SELECT o.correlation_id FROM transaction_outbox o CROSS JOIN h"
    "   LEFT JOIN coord_transactions c ON c.correlation_id = o.correlation_id"
    "   WHERE o.created_at < now() - make_interval(secs => $2::int)"
    "     AND o.created_at < h.taken_at AND age(o.xmin) > age(xid(h.snap_xmin))"
    "     AND (c.kind IS NULL OR c.kind IN ('buy', 'add_gxp')"
    "          OR NOT EXISTS (SELECT 1 FROM auctions a WHERE a.id = c.item_id))"
    "   ORDER BY o.created_at LIMIT $1::int FOR UPDATE OF o SKIP LOCKED),"
    " d_out AS (DELETE FROM transaction_outbox o USING cand"
    "   WHERE o.correlation_id = cand.correlation_id RETURNING o.correlation_id),"
    " d_claims AS (DELETE FROM coord_transactions c USING d_out"
    "   WHERE c.correlation_id = d_out.correlation_id RETURNING 1)"
    " SELECT (SELECT count(*) FROM d_out), (SELECT count(*) FROM d_claims)";

/* Free buys: gxp took no part, the outcome in the claim is the decision. */
static const char SQL_FREE_BUYS[] =
    "WITH d AS (DELETE FROM coord_transactions WHERE correlation_id IN ("
    "   SELECT c.correlation_id FROM coord_transactions c"
    "    WHERE c.outcome IS NOT NULL AND c.created_at < now() - make_interval(secs => $2::int)"
    "      AND NOT EXISTS (SELECT 1 FROM transaction_outbox o"
    "                       WHERE o.correlation_id = c.correlation_id)"
    "    ORDER BY c.created_at LIMIT $1::int) RETURNING 1)"
    " SELECT count(*) FROM d";

static char retention_s[24], auction_retention_s[24];
static const char *const retention_params[] = {retention_s};
static const char *const auction_params[] = {auction_retention_s};

/* In this order: an auction pruned in a pass lets its decisions go in the same pass. */
static const struct gf_prune_stmt stmts[] = {
    {"ret_mark", SQL_MARK, {"retention_marks", NULL}, retention_params, 1},
    {"ret_auctions",
     SQL_AUCTIONS,
     {"auctions", "auction_bids", "saga_steps", NULL},
     auction_params,
     1},
    {"ret_decisions",
     SQL_DECISIONS,
     {"transaction_outbox", "coord_transactions", NULL},
     retention_params,
     1},
    {"ret_free_buys", SQL_FREE_BUYS, {"coord_transactions", NULL}, retention_params, 1},
};

struct gf_pruner *retention_start(struct backend_app *app)
{
    const struct backend_config *cfg = app->cfg;
    snprintf(retention_s, sizeof retention_s, "%" PRId64, cfg->retention_s);
    snprintf(auction_retention_s, sizeof auction_retention_s, "%" PRId64, cfg->auction_retention_s);
    struct gf_pruner_options opt = {
        .service = "backend",
        .pool = app->pool,
        .interval_ms = cfg->retention_interval_ms,
        .batch = cfg->retention_batch,
        .rounds = cfg->retention_rounds,
        .lock_key = RETENTION_LOCK_KEY,
        .stmts = stmts,
        .nstmts = sizeof stmts / sizeof stmts[0],
        .ready = &app->migrated,
    };
    return gf_pruner_start(&opt);
}
