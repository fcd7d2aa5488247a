/* Forward-only migrations, applied under a session advisory lock so that replicas
 * starting together apply each migration once; each one commits with its record. */
#include "gf/migrate.h"

#include <stdio.h>
#include <string.h>

#include "gf/log.h"

/* Advisory lock class for migrations (the two-int key space; other users take one bigint). */
#define MIGRATE_LOCK_CLASS "72707"

static const char *const CREATE_TABLE = "CREATE TABLE IF NOT EXISTS gf_schema_migrations ("
                                        " service text NOT NULL,"
                                        " version integer NOT NULL,"
                                        " name text NOT NULL,"
                                        " checksum text NOT NULL,"
                                        " applied_at timestamptz NOT NULL DEFAULT now(),"
                                        " PRIMARY KEY (service, version))";

static enum gf_status apply_one(struct gf_db_conn *conn, const char *service,
                                const struct gf_migration *m)
{
    enum gf_status st = GF_EINTERNAL;
    char version[16];
    snprintf(version, sizeof version, "%d", m->version);
    const char *params[4] = {service, version, m->name, m->sql};

    st = gf_db_exec_simple(conn, "BEGIN");
    if (st != GF_OK)
        return st;
    st = gf_db_exec_simple(conn, m->sql);
    if (st != GF_OK) {
        GF_ERROR("migration failed service=%s migration=%s", service, m->name);
        goto out;
    }
    st = gf_db_exec(conn, "gf_migrate_record",
                    "INSERT INTO gf_schema_migrations (service, version, name, checksum)"
                    " VALUES ($1, $2::integer, $3, md5($4))",
                    4, params, NULL);
    if (st != GF_OK)
        goto out;
    st = gf_db_exec_simple(conn, "COMMIT");
    if (st == GF_OK)
        GF_INFO("migration applied service=%s migration=%s", service, m->name);
    return st;
out:
    gf_db_rollback(conn);
    return st;
}

/* GF_OK when recorded with the same text, GF_ENOTFOUND when not recorded yet. */
static enum gf_status check_recorded(struct gf_db_conn *conn, const char *service,
                                     const struct gf_migration *m)
{
    char version[16];
    snprintf(version, sizeof version, "%d", m->version);
    const char *params[3] = {service, version, m->sql};
    PGresult *res = NULL;
    enum gf_status st = gf_db_exec(conn, "gf_migrate_check",
                                   "SELECT checksum = md5($3) FROM gf_schema_migrations"
                                   " WHERE service = $1 AND version = $2::integer",
                                   3, params, &res);
    if (st != GF_OK)
        return st;
    if (PQntuples(res) == 0)
        st = GF_ENOTFOUND;
    else if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        GF_ERROR("migration was edited after it was applied service=%s migration=%s:"
                 " add a new migration instead",
                 service, m->name);
        st = GF_ECONFLICT;
    }
    PQclear(res);
    return st;
}

enum gf_status gf_migrate(struct gf_db_conn *conn, const char *service,
                          const struct gf_migration *migrations, int n)
{
    enum gf_status st = GF_EINTERNAL;
    const char *params[1] = {service};
    bool locked = false;

    for (int i = 1; i < n; i++) {
        if (migrations[i].version <= migrations[i - 1].version) {
            GF_ERROR("migrations out of order or duplicated service=%s migration=%s", service,
                     migrations[i].name);
            return GF_EINVAL;
        }
    }
    st = gf_db_exec(conn, "gf_migrate_lock",
                    "SELECT pg_advisory_lock(" MIGRATE_LOCK_CLASS ", hashtext($1))", 1, params,
                    NULL);
    if (st != GF_OK)
        goto out;
    locked = true;
    st = gf_db_exec_simple(conn, CREATE_TABLE);
    if (st != GF_OK)
        goto out;
    int applied = 0;
    for (int i = 0; i < n; i++) {
        st = check_recorded(conn, service, &migrations[i]);
        if (st == GF_ENOTFOUND) {
            st = apply_one(conn, service, &migrations[i]);
            applied++;
        }
        if (st != GF_OK)
            goto out;
    }
    GF_INFO("migrations up to date service=%s total=%d applied_now=%d", service, n, applied);
out:
    if (locked && PQstatus(gf_db_pgconn(conn)) == CONNECTION_OK) {
        enum gf_status ul = gf_db_exec(
            conn, "gf_migrate_unlock",
            "SELECT pg_advisory_unlock(" MIGRATE_LOCK_CLASS ", hashtext($1))", 1, params, NULL);
        (void)ul;
    }
    return st;
}
