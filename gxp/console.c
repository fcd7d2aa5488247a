/* gxp's part of the console feed (gf/console_feed.h): every finalization, whoever made it.
 *
 * gxp_apply_decision ends with pg_notify('gxp_finalized', cid), in the replication apply
 * worker's transaction or the resolver's, so a LISTEN on gxp-db hears each decision applied
 * once its transaction commits, with no extra write on the hot path. One thread holds that
 * LISTEN on a connection of its own, reads the notified transactions back in one query per
 * wake-up (status, source, amounts) and notes them "finalized"; and once a second it gives
 * the feed gxp's own figures: the PENDING transactions and the replication's last message.
 * While no console watches (gf_console_feed_watched) the notifications are drained and
 * nothing is read back; the LISTEN itself stays, so a console that opens hears the very next
 * finalization (a LISTEN begun then would miss those of its first moments). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gf/clock.h"
#include "gf/console_feed.h"
#include "gf/db.h"
#include "gf/log.h"
#include "gxp.h"

#define WAKE_MS 200
#define CIDS_MAX 512 /* notified ids read back per query */
#define BATCH_MS 100 /* after a wake-up, notifications gathered this long before the query */
#define LISTENER_RETRY_MS 5000
#define LISTENER_LOCK "7077017" /* pg_try_advisory_lock key of gxp's one console listener */

struct gxp_console {
    struct gxp_app *app;
    struct gf_db_pool *listen_pool; /* one connection: the LISTEN */
    pthread_t thread;
    atomic_bool stop;
    char replica[64];
};

static const char *const SQL_FINALIZED =
    "SELECT d.correlation_id, t.user_id, t.type, t.amount,"
    " CASE t.status WHEN 0 THEN 'PENDING' WHEN 1 THEN 'ABORTED' WHEN 2 THEN 'COMMITTED'"
    " ELSE 'NOT_PREPARED' END, d.source, d.outcome"
    " FROM decision d LEFT JOIN gxp_transaction t USING (correlation_id)"
    " WHERE d.correlation_id = ANY ($1::uuid[])";

/* Notes each of the n notified correlation ids (a '{a,b,...}' array literal in arr). */
static void note_finalized(struct gf_db_conn *conn, const char *arr)
{
    PGresult *res = NULL;
    const char *p[1] = {arr};
    if (gf_db_exec(conn, "console_finalized", SQL_FINALIZED, 1, p, &res) != GF_OK) {
        GF_LOG_RL(GF_LOG_WARN, 10000, "console: finalized transactions not read back");
        PQclear(res);
        return;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        bool prepared = !PQgetisnull(res, i, 1);
        json_t *detail = json_pack("{s:s,s:s,s:s}", "status", PQgetvalue(res, i, 4), "source",
                                   PQgetvalue(res, i, 5), "outcome", PQgetvalue(res, i, 6));
        if (prepared)
            json_object_set_new(
                detail, "type",
                json_string(strcmp(PQgetvalue(res, i, 2), "0") == 0 ? "ADD" : "SUBTRACT"));
        gf_console_note_tx(PQgetvalue(res, i, 0), "", prepared ? atoll(PQgetvalue(res, i, 1)) : 0,
                           -1, prepared ? atoll(PQgetvalue(res, i, 3)) : 0, "finalized", detail);
    }
    PQclear(res);
}

/* Whether this session became gxp-db's one console listener (a session advisory lock, gone
 * with the session). */
static bool take_listener_lock(struct gf_db_conn *conn)
{
    PGresult *res = NULL;
    bool got =
        gf_db_exec(conn, "console_listener_lock", "SELECT pg_try_advisory_lock(" LISTENER_LOCK ")",
                   0, NULL, &res) == GF_OK &&
        PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return got;
}

/* Drains the notifications waiting on pg into one query's worth of ids; how many. */
static int collect(PGconn *pg, char *arr, size_t cap)
{
    int n = 0;
    size_t len = 1;
    arr[0] = '{';
    PGnotify *nt;
    while (n < CIDS_MAX && (nt = PQnotifies(pg)) != NULL) {
        size_t l = strlen(nt->extra);
        if (l == 36 && len + l + 2 < cap) { /* a UUID, as gxp_apply_decision sends it */
            if (n > 0)
                arr[len++] = ',';
            memcpy(arr + len, nt->extra, l);
            len += l;
            n++;
        }
        PQfreemem(nt);
    }
    arr[len++] = '}';
    arr[len] = '\0';
    return n;
}

static void *listen_run(void *arg)
{
    struct gxp_console *c = arg;
    gf_log_set_cid(NULL);
    static char arr[CIDS_MAX * 38 + 4];
    struct gf_backoff bo;
    gf_backoff_init(&bo, 200, 5000);
    while (!atomic_load(&c->stop)) {
        struct gf_db_conn *conn = NULL;
        if (gf_db_acquire(c->listen_pool, &conn) != GF_OK) {
            gf_sleep_ms(gf_backoff_next(&bo), &c->stop);
            continue;
        }
        /* One listener per gxp-db, whichever replica holds the session lock: every replica
         * would hear and read back the same finalizations. The others try again later. */
        if (!take_listener_lock(conn)) {
            gf_db_release(c->listen_pool, conn);
            gf_sleep_ms(LISTENER_RETRY_MS, &c->stop);
            continue;
        }
        if (gf_db_exec_simple(conn, "LISTEN gxp_finalized") != GF_OK) {
            gf_db_release(c->listen_pool, conn);
            gf_sleep_ms(gf_backoff_next(&bo), &c->stop);
            continue;
        }
        gf_backoff_reset(&bo);
        PGconn *pg = gf_db_pgconn(conn);
        bool broken = false;
        while (!atomic_load(&c->stop) && !broken) {
            struct pollfd p = {.fd = PQsocket(pg), .events = POLLIN};
            int rc = poll(&p, 1, WAKE_MS);
            if (rc < 0 && errno != EINTR)
                broken = true;
            /* Woken: the notifications of the next BATCH_MS are read back with these, in one
             * query, rather than one query per finalization. */
            if (rc > 0 && !gf_sleep_ms(BATCH_MS, &c->stop))
                break;
            if (rc > 0 && PQconsumeInput(pg) == 0)
                broken = true;
            int n;
            while (!broken && (n = collect(pg, arr, sizeof arr)) > 0) {
                if (!gf_console_feed_watched())
                    continue; /* drained, not read back: nobody watches */
                note_finalized(conn, arr);
                broken = PQstatus(pg) != CONNECTION_OK;
                if (n < CIDS_MAX)
                    break;
            }
        }
        if (broken)
            GF_LOG_RL(GF_LOG_WARN, 10000, "console: the LISTEN connection to gxp-db broke");
        if (!broken && (gf_db_exec_simple(conn, "UNLISTEN *") != GF_OK ||
                        gf_db_exec_simple(conn, "SELECT pg_advisory_unlock_all()") != GF_OK))
            GF_DEBUG(
                "console: UNLISTEN failed (the connection goes back to the pool all the same)");
        gf_db_release(c->listen_pool, conn);
    }
    return NULL;
}

json_t *gxp_console_stats(void *arg)
{
    (void)arg;
    int64_t pending = resolver_pending_rows();
    return json_pack("{s:o}", "pendingOnGxp", pending >= 0 ? json_integer(pending) : json_null());
}

struct gxp_console *gxp_console_start(struct gxp_app *app)
{
    struct gxp_console *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->app = app;
    atomic_init(&c->stop, false);
    struct gf_db_pool_options o = {.conninfo = app->cfg->db_url,
                                   .password = app->cfg->db_password,
                                   .size = 1,
                                   .acquire_timeout_ms = 5000,
                                   .statement_timeout_ms = 5000,
                                   .application_name = "gxp-console"};
    c->listen_pool = gf_db_pool_new(&o);
    if (c->listen_pool == NULL || pthread_create(&c->thread, NULL, listen_run, c) != 0) {
        gf_db_pool_free(c->listen_pool);
        free(c);
        return NULL;
    }
    return c;
}

void gxp_console_stop(struct gxp_console *c)
{
    if (c == NULL)
        return;
    atomic_store(&c->stop, true);
    pthread_join(c->thread, NULL);
    gf_db_pool_free(c->listen_pool);
    free(c);
}
