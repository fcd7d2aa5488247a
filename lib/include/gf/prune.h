/* Retention by pruning: a thread that deletes rows past their retention in small batches, a
 * bounded number of rounds per pass, one pass every interval. Each batch is its own short
 * transaction that first takes a transaction-level advisory lock without waiting, so that of
 * several replicas one prunes at a time; the statements themselves carry every safety
 * condition, so two replicas pruning at once (or a lock that is not there) would only repeat
 * work, never delete a row that must stay. */
#ifndef GF_PRUNE_H
#define GF_PRUNE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "gf/db.h"

#define GF_PRUNE_TABLES_MAX 4

/* One pruning statement. $1 is the batch (rows of its driving table a run deletes at most),
 * $2.. its params (text; typically the retention in seconds). It answers one row: the rows it
 * deleted in each table, in the order of tables[] (NULL-terminated); the first is the driving
 * table, and a count below the batch there means nothing more is due this pass. */
struct gf_prune_stmt {
    const char *name; /* prepared statement name */
    const char *sql;
    const char *tables[GF_PRUNE_TABLES_MAX + 1];
    const char *const *params; /* must outlive the pruner */
    int nparams;
};

struct gf_pruner_options {
    const char *service;     /* counters <service>_pruned_total{table} */
    struct gf_db_pool *pool; /* one connection is taken per pass */
    int64_t interval_ms;     /* between two passes */
    int64_t batch;           /* $1 of every statement */
    int64_t rounds;          /* runs of each statement per pass at most */
    int64_t lock_key;        /* pg_try_advisory_xact_lock key of this service's pruning */
    const struct gf_prune_stmt *stmts;
    size_t nstmts;
    const atomic_bool *ready; /* may be NULL: passes wait until it is true (schema migrated) */
};

struct gf_pruner;

/* Registers the counters (at 0) and starts the thread; NULL when it cannot. The options'
 * arrays and strings must outlive the pruner. */
struct gf_pruner *gf_pruner_start(const struct gf_pruner_options *opt);
/* Stops the thread (a batch in flight finishes) and frees it; NULL is a no-op. */
void gf_pruner_stop(struct gf_pruner *p);

#endif
