/* Forward-only schema migrations: numbered SQL files (sql/<service>/NNN_name.sql) embedded
 * in the binary at build time, applied once each, in order, and recorded in the table
 * gf_schema_migrations. Safe at every start and for several replicas starting at once
 * (an advisory lock serializes them; each migration runs in its own transaction). */
#ifndef GF_MIGRATE_H
#define GF_MIGRATE_H

#include "gf/db.h"
#include "gf/status.h"

struct gf_migration {
    int version;      /* NNN of the file name */
    const char *name; /* file name */
    const char *sql;  /* its text */
};

/* Applies the migrations of `service` not yet recorded. A recorded migration whose text
 * changed since is refused (GF_ECONFLICT): migrations are never edited, only added. */
enum gf_status gf_migrate(struct gf_db_conn *conn, const char *service,
                          const struct gf_migration *migrations, int n) GF_MUSTCHECK;

#endif
