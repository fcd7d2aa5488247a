/* gf-chaos sample: what the faults do to waiting, measured from the databases twice a second
 * while the chaos run goes on — the oldest PENDING transaction on gxp-db (how long a partition
 * or a pause leaves a reservation undecided), and on backend-db the oldest open transaction
 * of a service session and the longest lock wait (how long a paused or cut-off backend holds
 * its locks and blocks others). The driver connects over the clusters' Unix sockets, which the
 * network faults (TCP on loopback) do not touch. One TSV line per sample:
 *   epoch_ms pending_n pending_max_ms pending_oldest_cid open_tx_max_ms lock_waits lock_wait_max_ms
 *   oldest_open_tx (application_name:pid:state:query, blanks as '_', for reading)
 * -1 where a database did not answer (a cluster being restarted). */
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chaos.h"

static PGconn *reconnect(PGconn *c, const char *conninfo)
{
    if (c != NULL && PQstatus(c) == CONNECTION_OK)
        return c;
    PQfinish(c);
    c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        PQfinish(c);
        return NULL;
    }
    PGresult *r = PQexec(c, "SET statement_timeout = 2000");
    PQclear(r);
    return c;
}

/* Runs sql (one row) and copies its columns into out[] (as text); false when it failed. */
static bool one_row(PGconn **c, const char *conninfo, const char *sql, int ncols, char out[][40])
{
    *c = reconnect(*c, conninfo);
    if (*c == NULL)
        return false;
    PGresult *r = PQexec(*c, sql);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) == ncols;
    for (int i = 0; ok && i < ncols; i++)
        snprintf(out[i], 40, "%s", PQgetisnull(r, 0, i) ? "-" : PQgetvalue(r, 0, i));
    PQclear(r);
    if (!ok && PQstatus(*c) != CONNECTION_OK) {
        PQfinish(*c);
        *c = NULL;
    }
    return ok;
}

int chaos_sample(int argc, char **argv)
{
    const char *gconn = NULL, *bconn = NULL, *out = NULL, *stop_file = NULL;
    long interval_ms = 500;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--gxp-db") == 0)
            gconn = v;
        else if (strcmp(k, "--backend-db") == 0)
            bconn = v;
        else if (strcmp(k, "--out") == 0)
            out = v;
        else if (strcmp(k, "--stop-file") == 0)
            stop_file = v;
        else if (strcmp(k, "--interval-ms") == 0)
            interval_ms = strtol(v, NULL, 10);
    }
    if (!gconn || !bconn || !out || !stop_file || interval_ms < 50) {
        fprintf(stderr,
                "chaos sample: --gxp-db, --backend-db, --out and --stop-file are required\n");
        return 2;
    }
    FILE *f = fopen(out, "w");
    if (!f) {
        perror(out);
        return 1;
    }
    PGconn *g = NULL, *b = NULL;
    while (access(stop_file, F_OK) != 0) {
        int64_t t = now_ms();
        char pend[3][40], back[4][40];
        if (!one_row(
                &g, gconn,
                "SELECT count(*), coalesce(max((extract(epoch FROM now() - created_at) * "
                "1000)::bigint), 0), (SELECT correlation_id FROM gxp_transaction WHERE "
                "status = 0 ORDER BY created_at LIMIT 1) FROM gxp_transaction WHERE status = 0",
                3, pend)) {
            snprintf(pend[0], 40, "-1");
            snprintf(pend[1], 40, "-1");
            snprintf(pend[2], 40, "-");
        }
        /* Service sessions only: not the walsenders, not this one. */
        if (!one_row(&b, bconn,
                     "SELECT coalesce(max((extract(epoch FROM now() - xact_start) * 1000)"
                     "::bigint) FILTER (WHERE state LIKE 'idle in transaction%'), 0),"
                     " count(*) FILTER (WHERE wait_event_type = 'Lock'),"
                     " coalesce(max((extract(epoch FROM now() - query_start) * 1000)::bigint)"
                     " FILTER (WHERE wait_event_type = 'Lock'), 0),"
                     " (SELECT translate(left(application_name || ':' || pid || ':' || state ||"
                     " ':' || query, 39), E' \\t\\n', '___') FROM pg_stat_activity"
                     " WHERE backend_type = 'client backend' AND xact_start IS NOT NULL"
                     " AND pid <> pg_backend_pid() ORDER BY xact_start LIMIT 1)"
                     " FROM pg_stat_activity WHERE backend_type = 'client backend'"
                     " AND pid <> pg_backend_pid()",
                     4, back)) {
            for (int i = 0; i < 3; i++)
                snprintf(back[i], 40, "-1");
            snprintf(back[3], 40, "-");
        }
        fprintf(f, "%" PRId64 "\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t, pend[0], pend[1], pend[2],
                back[0], back[1], back[2], back[3]);
        fflush(f);
        int64_t left = t + interval_ms - now_ms();
        if (left > 0) {
            struct timespec ts = {left / 1000, (long)(left % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    PQfinish(g);
    PQfinish(b);
    fclose(f);
    return 0;
}
