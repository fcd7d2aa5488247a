/* The outbox backlog and gxp's replication slot, measured by the relay for /metrics
 * (relay_backlog.c). */
#ifndef BACKEND_RELAY_BACKLOG_H
#define BACKEND_RELAY_BACKLOG_H

#include <stdint.h>

#include "gf/db.h"

/* Registers the gauges backend_outbox_pending, backend_outbox_oldest_pending_age_seconds and
 * backend_decisions_* (once, at the relay's start). */
void relay_backlog_register_metrics(void);

/* Measures the backlog and the slot on a connection of pool; what the database does not
 * answer becomes unknown (NaN) until the next measure. */
void relay_backlog_measure(struct gf_db_pool *pool);

/* The last measure, for the console: outbox rows waiting and the decisions' replication lag
 * in bytes (-1: unknown). */
void relay_backlog_figures(int64_t *outbox_rows, int64_t *slot_lag_bytes);

#endif
