/* What every service's main does the same way: signal handling, and applying its schema
 * while waiting for its database (any start order works). */
#ifndef GF_SERVICE_H
#define GF_SERVICE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "gf/db.h"
#include "gf/migrate.h"

/* Blocks SIGTERM and SIGINT in the calling thread and ignores SIGPIPE. Call it first, before
 * any thread (gRPC's included) starts, so that every thread inherits the mask and the signals
 * are taken only by gf_service_wait_signal. *set receives the two signals. */
void gf_service_block_signals(sigset_t *set);

/* Waits up to ms (forever when negative) for one of the signals in set; true when one came. */
bool gf_service_wait_signal(const sigset_t *set, int64_t ms);

enum gf_startup { GF_STARTED, GF_STOPPED, GF_START_FAILED };

/* Applies `service`'s migrations, retrying with jittered back-off while the database is
 * unreachable. GF_STOPPED when a signal came first; GF_START_FAILED when a migration is
 * broken or was edited (that will not fix itself). */
enum gf_startup gf_service_migrate(struct gf_db_pool *pool, const char *service,
                                   const struct gf_migration *migrations, int n,
                                   const sigset_t *signals);

#endif
