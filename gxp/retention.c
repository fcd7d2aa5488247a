/* Retention of gxp-db (issue 19): finalized transactions and their decisions are deleted past
 * GXP_RETENTION_S, in small batches (lib/src/prune.c runs the passes, one replica at a time).
 * What the statements enforce:
 *   - a transaction only once finalized (never PENDING: its reservation is in a balance and the
 *     resolver still has to settle it) and finalized longer ago than the retention; its decision
 *     goes with it, and its effect on the balance is carried into balance_pruned, so that the
 *     balance still equals the sum of its history;
 *   - a decision without a transaction (it applied nothing: no prepare, an invalid state) only
 *     past the retention and while no transaction of its id exists; never one whose application
 *     failed ('error: ...'), which the resolver and the operators still need.
 * Why no prepare can still refer to what goes: a prepare comes from a coordinator within its gRPC
 * deadline (seconds), and the backend's own retention (BACKEND_RETENTION_S, shorter by default)
 * forgets the id first. A prepare of an id gxp still knows finalized is refused
 * (sql/gxp/003_retention.sql); once gxp forgot it too, the id is new — the end of the window in
 * which a correlation id is deduplicated. The replica transaction_outbox is not pruned here: gxp
 * never writes to it (a write would stall the apply worker); it shrinks by the DELETEs the
 * backend's retention replicates. */
#include <inttypes.h>
#include <stdio.h>

#include "gf/prune.h"
#include "gxp.h"

/* pg_try_advisory_xact_lock key of gxp's pruning. */
#define RETENTION_LOCK_KEY 7077019002

/* The transactions' id follows their creation (a sequence): the primary key finds the oldest,
 * and the first id created within the retention bounds the scan (a transaction created earlier
 * but finalized later waits for a later pass). */
static const char SQL_TRANSACTIONS[] =
    "WITH b AS (SELECT coalesce((SELECT id FROM gxp_transaction"
    "   WHERE created_at >= now() - make_interval(secs => $2::int) ORDER BY id LIMIT 1),"
    "   9223372036854775807) AS id),"
    " cand AS (SELECT t.id FROM gxp_transaction t, b"
    "   WHERE t.id < b.id AND t.status <> 0"
    "     AND t.finalized_at < now() - make_interval(secs => $2::int)"
    "   ORDER BY t.id LIMIT $1::int FOR UPDATE OF t SKIP LOCKED),"
    " d_tx AS (DELETE FROM gxp_transaction t USING cand WHERE t.id = cand.id"
    "   RETURNING t.correlation_id, t.user_id, t.type, t.amount, t.status),"
    /* What the balances' history loses, carried over (sql/gxp/003_retention.sql). */
    " carry AS (INSERT INTO balance_pruned AS p (user_id, net, transactions)"
    "   SELECT user_id, sum(CASE WHEN status = 2 AND type = 0 THEN amount"
    "                            WHEN status = 2 AND type = 1 THEN -amount ELSE 0 END), count(*)"
    "     FROM d_tx GROUP BY user_id"
    "   ON CONFLICT (user_id) DO UPDATE SET net = p.net + EXCLUDED.net,"
    "     transactions = p.transactions + EXCLUDED.transactions RETURNING 1),"
    " d_dec AS (DELETE FROM decision d USING d_tx"
    "   WHERE d.correlation_id = d_tx.correlation_id RETURNING 1)"
    " SELECT (SELECT count(*) FROM d_tx), (SELECT count(*) FROM d_dec)";

/* Decisions that applied nothing (the partial index decision_unapplied_received). */
static const char SQL_DECISIONS[] =
    "WITH d AS (DELETE FROM decision WHERE correlation_id IN ("
    "   SELECT d.correlation_id FROM decision d"
    "    WHERE d.outcome <> 'applied' AND d.outcome NOT LIKE 'error%'"
    "      AND d.received_at < now() - make_interval(secs => $2::int)"
    "      AND NOT EXISTS (SELECT 1 FROM gxp_transaction t"
    "                       WHERE t.correlation_id = d.correlation_id)"
    "    ORDER BY d.received_at LIMIT $1::int) RETURNING 1)"
    " SELECT count(*) FROM d";

static char retention_s[24];
static const char *const params[] = {retention_s};

static const struct gf_prune_stmt stmts[] = {
    {"ret_transactions", SQL_TRANSACTIONS, {"gxp_transaction", "decision", NULL}, params, 1},
    {"ret_decisions", SQL_DECISIONS, {"decision", NULL}, params, 1},
};

struct gf_pruner *retention_start(struct gxp_app *app)
{
    const struct gxp_config *cfg = app->cfg;
    snprintf(retention_s, sizeof retention_s, "%" PRId64, cfg->retention_s);
    struct gf_pruner_options opt = {
        .service = "gxp",
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
