/* Shared by db.c and db_pipeline.c; not part of the library's interface. */
#ifndef GF_DB_INTERNAL_H
#define GF_DB_INTERNAL_H

#include <libpq-fe.h>

#include "gf/status.h"

/* Opens a connection: the TCP bounds of db.h as defaults, conninfo expanded over them,
 * password and application_name added, notices routed to the log, statement_timeout and
 * idle_in_transaction_session_timeout set (each when > 0). NULL (logged, rate-limited) on
 * failure. */
PGconn *gf_db__open(const char *conninfo, const char *password, const char *app,
                    int statement_timeout_ms, int idle_in_tx_ms, int lock_timeout_ms);

/* The idle_in_transaction_session_timeout to SET for an options value (0 = the default,
 * < 0 = none, i.e. 0 returned). */
int gf_db__idle_in_tx_ms(int opt);

/* Registers gf_db_pool_in_use and gf_db_pool_open{pool="<name>"} read from in_use(arg) and
 * open(arg): the pool's and the pipeline's connections are shown alike. */
void gf_db__register_gauges(const char *name, double (*in_use)(void *), double (*open)(void *),
                            void *arg);

/* Maps and logs a failed result: expected refusals at debug, the rest as errors. */
enum gf_status gf_db__failed(PGconn *pg, const char *what, const PGresult *res);

#endif
