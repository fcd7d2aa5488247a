/* Retention of eventlog-db (issue 19): events stored longer ago than EVENTLOG_RETENTION_S are
 * deleted in small batches (lib/src/prune.c runs the passes, one replica at a time). Nothing
 * else refers to an event. What goes is also gone from the deduplication: a delivery of an
 * event older than the retention (a relay that kept it, a message left in the broker that
 * long) is stored again, as new. */
#include <inttypes.h>
#include <stdio.h>

#include "eventlog.h"
#include "gf/prune.h"

/* pg_try_advisory_xact_lock key of eventlog's pruning. */
#define RETENTION_LOCK_KEY 7077019003

/* The id is an identity, in storing order: the primary key finds the oldest, and the first
 * event stored within the retention bounds the scan, so a pass with nothing to do reads a few
 * index entries, and no index is added to the consumer's inserts. */
static const char SQL_EVENTS[] =
    "WITH b AS (SELECT coalesce((SELECT id FROM event"
    "   WHERE stored_at >= now() - make_interval(secs => $2::int) ORDER BY id LIMIT 1),"
    "   9223372036854775807) AS id),"
    " d AS (DELETE FROM event WHERE id IN (SELECT e.id FROM event e, b"
    "   WHERE e.id < b.id AND e.stored_at < now() - make_interval(secs => $2::int)"
    "   ORDER BY e.id LIMIT $1::int) RETURNING 1)"
    " SELECT count(*) FROM d";

static char retention_s[24];
static const char *const params[] = {retention_s};

static const struct gf_prune_stmt stmts[] = {
    {"ret_events", SQL_EVENTS, {"event", NULL}, params, 1},
};

struct gf_pruner *retention_start(struct eventlog_app *app)
{
    const struct eventlog_config *cfg = app->cfg;
    snprintf(retention_s, sizeof retention_s, "%" PRId64, cfg->retention_s);
    struct gf_pruner_options opt = {
        .service = "eventlog",
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
