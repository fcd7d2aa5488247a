/* Shared by db.c and db_pipeline.c; not part of the library's interface. */
#ifndef GF_DB_INTERNAL_H
#define GF_DB_INTERNAL_H

#include <libpq-fe.h>

#include "gf/status.h"

/* Opens a connection: conninfo expanded, password and application_name added, notices
 * routed to the log, statement_timeout set. NULL (logged, rate-limited) on failure. */
PGconn *gf_db__open(const char *conninfo, const char *password, const char *app,
                    int statement_timeout_ms);

/* Maps and logs a failed result: expected refusals at debug, the rest as errors. */
enum gf_status gf_db__failed(PGconn *pg, const char *what, const PGresult *res);

#endif
