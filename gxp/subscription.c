/* gxp-db's subscription to backend-db's decisions. Created by gxp itself, idempotently,
 * with back-off until backend-db answers, so any start order works; then watched, since a
 * subscription made before the publication had its table carries nothing until refreshed.
 * CREATE/ALTER SUBSCRIPTION cannot run in a transaction block: a session advisory lock
 * keeps two replicas from creating it at once. The conninfo may hold a password: it goes into
 * no log line, gxp's or (through the statement's text) gxp-db's. */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gf/clock.h"
#include "gf/log.h"
#include "gxp.h"

#define SUB_NAME "transaction_outbox_sub"
#define PUB_NAME "transaction_outbox_pub"
#define SUB_LOCK "SELECT pg_advisory_lock(72707, 2)"
#define SUB_UNLOCK "SELECT pg_advisory_unlock(72707, 2)"
#define WATCH_INTERVAL_MS 10000
/* The server logs a failed statement's text (log_min_error_statement), every DDL with
 * log_statement=ddl and slow ones with log_min_duration_*: not CREATE SUBSCRIPTION, whose
 * conninfo may hold a password. Superuser settings, as CREATE SUBSCRIPTION is on PG 15. */
#define LOG_QUIET                                                                                  \
    "SET log_min_error_statement = panic; SET log_statement = none;"                               \
    " SET log_min_duration_statement = -1; SET log_min_duration_sample = -1"
#define LOG_RESET                                                                                  \
    "RESET log_min_error_statement; RESET log_statement; RESET log_min_duration_statement;"        \
    " RESET log_min_duration_sample"

struct subscription {
    struct gxp_app *app;
    pthread_t thread;
};

enum sub_state { SUB_MISSING, SUB_NO_TABLE, SUB_READY };

static bool is_uri(const char *s)
{
    return strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0;
}

enum gf_status subscription_conninfo_build(const char *conninfo, const char *password, char **out)
{
    if (conninfo == NULL)
        return GF_EINVAL;
    if (password == NULL || password[0] == '\0') {
        char *copy = strdup(conninfo);
        if (copy == NULL)
            return GF_ENOMEM;
        *out = copy;
        return GF_OK;
    }
    size_t len = strlen(conninfo), plen = strlen(password);
    char *res = malloc(len + 3 * plen + sizeof " password=''"); /* the worst case of both forms */
    if (res == NULL)
        return GF_ENOMEM;
    memcpy(res, conninfo, len);
    char *p = res + len;
    if (is_uri(conninfo)) {
        /* libpq decodes %XX in a URI's parameters; only the unreserved characters go as is. */
        static const char hex[] = "0123456789ABCDEF";
        const char *q = strchr(conninfo, '?');
        if (q == NULL)
            *p++ = '?';
        else if (conninfo[len - 1] != '?' && conninfo[len - 1] != '&')
            *p++ = '&';
        p = stpcpy(p, "password=");
        for (const unsigned char *c = (const unsigned char *)password; *c; c++) {
            if (isalnum(*c) || *c == '-' || *c == '.' || *c == '_' || *c == '~') {
                *p++ = (char)*c;
            } else {
                *p++ = '%';
                *p++ = hex[*c >> 4];
                *p++ = hex[*c & 15];
            }
        }
    } else {
        p = stpcpy(p, len > 0 ? " password='" : "password='");
        for (const char *c = password; *c; c++) {
            if (*c == '\'' || *c == '\\')
                *p++ = '\\';
            *p++ = *c;
        }
        *p++ = '\'';
    }
    *p = '\0';
    *out = res;
    return GF_OK;
}

char *subscription_redact_dup(const char *text, const char *secret)
{
    if (secret == NULL || secret[0] == '\0')
        return strdup(text);
    size_t slen = strlen(secret), n = 0;
    for (const char *c = strstr(text, secret); c != NULL; c = strstr(c + slen, secret))
        n++;
    /* **** may be longer than the secret it replaces. */
    char *res = malloc(strlen(text) + n * 4 + 1);
    if (res == NULL)
        return NULL;
    char *p = res;
    for (const char *c = text;;) {
        const char *hit = strstr(c, secret);
        if (hit == NULL) {
            strcpy(p, c);
            break;
        }
        memcpy(p, c, (size_t)(hit - c));
        p = stpcpy(p + (hit - c), "****");
        c = hit + slen;
    }
    return res;
}

static enum gf_status sub_state(struct gf_db_conn *c, enum sub_state *out)
{
    PGresult *res = NULL;
    enum gf_status st = gf_db_exec(
        c, "gxp_sub_state",
        "SELECT s.oid, EXISTS (SELECT 1 FROM pg_subscription_rel r"
        "                       WHERE r.srsubid = s.oid"
        "                         AND r.srrelid = 'public.transaction_outbox'::regclass)"
        "  FROM pg_subscription s"
        " WHERE s.subname = '" SUB_NAME "' AND s.subdbid = (SELECT oid FROM pg_database"
        "                                                  WHERE datname = current_database())",
        0, NULL, &res);
    if (st != GF_OK)
        return st;
    if (PQntuples(res) == 0)
        *out = SUB_MISSING;
    else
        *out = strcmp(PQgetvalue(res, 0, 1), "t") == 0 ? SUB_READY : SUB_NO_TABLE;
    PQclear(res);
    return GF_OK;
}

/* One attempt to bring the subscription to SUB_READY; GF_OK when it is. */
static enum gf_status ensure(struct gxp_app *app, struct gf_db_conn *c)
{
    enum sub_state s;
    enum gf_status st = sub_state(c, &s);
    if (st != GF_OK || s == SUB_READY)
        return st;

    PGconn *pg = gf_db_pgconn(c);
    char *sql = NULL;
    if (s == SUB_MISSING) {
        /* DDL takes no parameters: the conninfo goes in as an escaped literal. */
        char *conninfo = NULL;
        st = subscription_conninfo_build(app->cfg->publisher_conninfo, app->cfg->publisher_password,
                                         &conninfo);
        if (st != GF_OK)
            return st;
        char *lit = PQescapeLiteral(pg, conninfo, strlen(conninfo));
        free(conninfo);
        if (lit == NULL)
            return GF_ENOMEM;
        size_t n = strlen(lit) + 128;
        sql = malloc(n);
        if (sql)
            snprintf(sql, n, "CREATE SUBSCRIPTION " SUB_NAME " CONNECTION %s PUBLICATION " PUB_NAME,
                     lit);
        PQfreemem(lit);
        if (sql == NULL)
            return GF_ENOMEM;
    } else {
        sql = strdup("ALTER SUBSCRIPTION " SUB_NAME " REFRESH PUBLICATION");
        if (sql == NULL)
            return GF_ENOMEM;
    }
    /* Were the settings refused (another PostgreSQL's rules), gf_db has said so: go on. */
    bool quiet = s == SUB_MISSING && gf_db_exec_simple(c, LOG_QUIET) == GF_OK;
    PGresult *res = PQexec(pg, sql);
    free(sql);
    if (quiet) {
        enum gf_status rs = gf_db_exec_simple(c, LOG_RESET);
        (void)rs; /* a connection that cannot take a RESET is not kept by the pool */
    }
    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
        if (s == SUB_MISSING)
            GF_INFO("subscription created name=" SUB_NAME);
        else
            GF_DEBUG("subscription refreshed name=" SUB_NAME);
        st = GF_OK;
    } else if (gf_db_sqlstate_is(res, "42710")) {
        st = GF_OK; /* another replica created it first */
    } else {
        st = gf_db_status(res, pg);
        if (st != GF_EUNAVAILABLE && st != GF_ETIMEOUT)
            st = GF_EUNAVAILABLE; /* the publisher side is not ready: try again later */
        /* The server's message is about connecting with our conninfo: were it ever to quote
         * the password, the log line must not. */
        char *msg =
            subscription_redact_dup(PQresultErrorMessage(res), app->cfg->publisher_password);
        GF_LOG_RL(GF_LOG_WARN, 10000,
                  "subscription not ready yet (backend-db down, or its publication missing)"
                  " sqlstate=%s error=%s",
                  PQresultErrorField(res, PG_DIAG_SQLSTATE)
                      ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
                      : "-",
                  msg ? msg : "(out of memory)");
        free(msg);
    }
    PQclear(res);
    if (st != GF_OK)
        return st;
    /* Check again: a subscription made before the publication had the table carries nothing. */
    st = sub_state(c, &s);
    if (st == GF_OK && s != SUB_READY) {
        GF_LOG_RL(GF_LOG_WARN, 60000,
                  "subscription waits for backend-db's publication " PUB_NAME
                  " to carry transaction_outbox");
        st = GF_EUNAVAILABLE;
    }
    return st;
}

static void *loop(void *arg)
{
    struct gxp_app *app = arg;
    struct gf_backoff bo;
    gf_backoff_init(&bo, 200, 10000);
    while (!app->stopping) {
        int64_t wait = WATCH_INTERVAL_MS;
        if (atomic_load(&app->migrated)) {
            struct gf_db_conn *c = NULL;
            enum gf_status st = gf_db_acquire(app->pool, &c);
            if (st == GF_OK) {
                st = gf_db_exec_simple(c, SUB_LOCK);
                if (st == GF_OK) {
                    st = ensure(app, c);
                    enum gf_status ul = gf_db_exec_simple(c, SUB_UNLOCK);
                    (void)ul; /* a lost connection drops the lock with it */
                }
                gf_db_release(app->pool, c);
            }
            bool was = atomic_exchange(&app->subscribed, st == GF_OK);
            if (st == GF_OK) {
                if (!was)
                    GF_INFO("subscription ready name=" SUB_NAME);
                gf_backoff_reset(&bo);
            } else {
                wait = gf_backoff_next(&bo);
            }
        } else {
            wait = 200;
        }
        gf_sleep_ms(wait, &app->stopping);
    }
    return NULL;
}

struct subscription *subscription_start(struct gxp_app *app)
{
    if (app->cfg->publisher_conninfo == NULL || app->cfg->publisher_conninfo[0] == '\0') {
        GF_WARN("GXP_PUBLISHER_CONNINFO is empty: no subscription, decisions reach gxp only"
                " through the resolver");
        return NULL;
    }
    struct subscription *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->app = app;
    if (pthread_create(&s->thread, NULL, loop, app) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

void subscription_stop(struct subscription *s)
{
    if (s == NULL)
        return;
    pthread_join(s->thread, NULL);
    free(s);
}
