/* PostgreSQL connection pool, prepared statements per connection, and the transaction
 * helper. A connection is used by one thread at a time; a broken or mid-transaction
 * connection is never handed out again; at most one connect is in flight, and after a
 * failed connect the pool waits a jittered, growing delay before trying again. */
#include "gf/db.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db_internal.h"
#include "gf/clock.h"
#include "gf/log.h"
#include "gf/metrics.h"

#define MAX_PREPARED 64
#define TX_MAX_ATTEMPTS 6

struct gf_db_conn {
    PGconn *pg;
    int nprepared;
    const char *prepared[MAX_PREPARED]; /* statement names (static strings of the callers) */
    char last_sqlstate[6];
};

struct gf_db_pool {
    char *conninfo;
    char *password;
    char *appname;
    int size;
    int acquire_timeout_ms;
    int statement_timeout_ms;
    int idle_in_tx_ms;   /* 0 = leave the server's */
    int lock_timeout_ms; /* 0 = none */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct gf_db_conn **idle; /* stack of connected, idle connections */
    int nidle;
    int open; /* connections that exist (idle + in use + being connected) */
    int in_use;
    bool connecting;                 /* one connect in flight */
    struct gf_deadline next_connect; /* after a failed connect: no new one before this */
    struct gf_backoff backoff;
    uint64_t acquired, timeouts, connect_failures;
};

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

struct gf_db_pool *gf_db_pool_new(const struct gf_db_pool_options *opt)
{
    struct gf_db_pool *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->conninfo = dup_or_null(opt->conninfo ? opt->conninfo : "");
    p->password = opt->password && opt->password[0] ? strdup(opt->password) : NULL;
    p->appname = dup_or_null(opt->application_name ? opt->application_name : "gf");
    p->size = opt->size > 0 ? opt->size : 1;
    p->acquire_timeout_ms = opt->acquire_timeout_ms > 0 ? opt->acquire_timeout_ms : 5000;
    p->statement_timeout_ms = opt->statement_timeout_ms;
    p->idle_in_tx_ms = gf_db__idle_in_tx_ms(opt->idle_in_transaction_timeout_ms);
    p->lock_timeout_ms = opt->lock_timeout_ms > 0 ? opt->lock_timeout_ms : 0;
    p->idle = calloc((size_t)p->size, sizeof *p->idle);
    if (p->conninfo == NULL || p->appname == NULL || p->idle == NULL ||
        (opt->password && opt->password[0] && p->password == NULL)) {
        gf_db_pool_free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    gf_cond_init_mono(&p->cv);
    gf_backoff_init(&p->backoff, 100, 5000);
    return p;
}

static void conn_free(struct gf_db_conn *c)
{
    if (c == NULL)
        return;
    if (c->pg)
        PQfinish(c->pg);
    free(c);
}

void gf_db_pool_free(struct gf_db_pool *p)
{
    if (p == NULL)
        return;
    if (p->idle) {
        for (int i = 0; i < p->nidle; i++)
            conn_free(p->idle[i]);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
    }
    free(p->idle);
    free(p->conninfo);
    free(p->password);
    free(p->appname);
    free(p);
}

PGconn *gf_db_pgconn(struct gf_db_conn *conn)
{
    return conn->pg;
}

/* Server notices ("relation already exists, skipping", ...) go to the log, not stderr raw. */
static void notice_to_log(void *arg, const char *message)
{
    (void)arg;
    size_t n = strlen(message);
    GF_DEBUG("database notice: %.*s", (int)(n && message[n - 1] == '\n' ? n - 1 : n), message);
}

/* Written before the caller's conninfo in the keyword list, so that the conninfo overrides
 * any of them (see GF_DB_TCP_USER_TIMEOUT_MS and its neighbours in db.h). */
#define STR_(x) #x
#define STR(x) STR_(x)
static const char *const tcp_keys[] = {"connect_timeout",  "keepalives",
                                       "keepalives_idle",  "keepalives_interval",
                                       "keepalives_count", "tcp_user_timeout"};
static const char *const tcp_vals[] = {
    STR(GF_DB_CONNECT_TIMEOUT_S), "1",
    STR(GF_DB_KEEPALIVES_IDLE_S), STR(GF_DB_KEEPALIVES_INTERVAL_S),
    STR(GF_DB_KEEPALIVES_COUNT),  STR(GF_DB_TCP_USER_TIMEOUT_MS)};
#define NTCP (sizeof tcp_keys / sizeof tcp_keys[0])

int gf_db__idle_in_tx_ms(int opt)
{
    return opt == 0 ? GF_DB_IDLE_IN_TX_TIMEOUT_MS : opt < 0 ? 0 : opt;
}

PGconn *gf_db__open(const char *conninfo, const char *password, const char *app,
                    int statement_timeout_ms, int idle_in_tx_ms, int lock_timeout_ms)
{
    const char *keys[NTCP + 4];
    const char *vals[NTCP + 4];
    size_t n = 0;
    for (size_t i = 0; i < NTCP; i++)
        keys[n] = tcp_keys[i], vals[n++] = tcp_vals[i];
    keys[n] = "dbname", vals[n++] = conninfo; /* expanded: may hold a whole conninfo */
    keys[n] = "application_name", vals[n++] = app;
    if (password)
        keys[n] = "password", vals[n++] = password;
    keys[n] = NULL, vals[n] = NULL;

    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
        GF_LOG_RL(GF_LOG_WARN, 5000, "database connect failed app=%s error=%s", app,
                  pg ? PQerrorMessage(pg) : "out of memory");
        PQfinish(pg);
        return NULL;
    }
    PQsetNoticeProcessor(pg, notice_to_log, NULL);
    /* Session settings in one round trip. Set here rather than left to the server's
     * configuration, so that the bounds hold on any deployment. */
    char sql[224];
    int len = 0;
    if (statement_timeout_ms > 0)
        len += snprintf(sql + len, sizeof sql - (size_t)len, "SET statement_timeout = %d;",
                        statement_timeout_ms);
    if (idle_in_tx_ms > 0)
        len += snprintf(sql + len, sizeof sql - (size_t)len,
                        "SET idle_in_transaction_session_timeout = %d;", idle_in_tx_ms);
    if (lock_timeout_ms > 0)
        len += snprintf(sql + len, sizeof sql - (size_t)len, "SET lock_timeout = %d;",
                        lock_timeout_ms);
    if (len > 0) {
        PGresult *r = PQexec(pg, sql);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
            GF_WARN("database session setup failed error=%s", PQerrorMessage(pg));
            PQfinish(pg);
            return NULL;
        }
    }
    return pg;
}

/* Opens one connection (outside the pool lock). */
static struct gf_db_conn *conn_open(struct gf_db_pool *p)
{
    struct gf_db_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->pg = gf_db__open(p->conninfo, p->password, p->appname, p->statement_timeout_ms,
                        p->idle_in_tx_ms, p->lock_timeout_ms);
    if (c->pg == NULL) {
        free(c);
        return NULL;
    }
    return c;
}

enum gf_status gf_db_acquire(struct gf_db_pool *p, struct gf_db_conn **out)
{
    enum gf_status st = GF_ETIMEOUT;
    struct gf_deadline deadline = gf_deadline_in_ms(p->acquire_timeout_ms);

    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->nidle > 0) {
            *out = p->idle[--p->nidle];
            p->in_use++;
            p->acquired++;
            st = GF_OK;
            break;
        }
        bool may_connect = p->open < p->size && !p->connecting;
        if (may_connect && gf_deadline_passed(p->next_connect)) {
            p->connecting = true;
            p->open++;
            pthread_mutex_unlock(&p->mu);
            struct gf_db_conn *c = conn_open(p);
            pthread_mutex_lock(&p->mu);
            p->connecting = false;
            if (c != NULL) {
                gf_backoff_reset(&p->backoff);
                p->next_connect = (struct gf_deadline){0};
                p->in_use++;
                p->acquired++;
                *out = c;
                st = GF_OK;
            } else {
                p->open--;
                p->connect_failures++;
                p->next_connect = gf_deadline_in_ms(gf_backoff_next(&p->backoff));
                st = GF_EUNAVAILABLE;
            }
            pthread_cond_broadcast(&p->cv);
            break;
        }
        /* Nothing open and the back-off forbids a new attempt: fail fast, the caller
         * answers "unavailable" instead of holding a request for the whole timeout. */
        if (p->open == 0 && !p->connecting) {
            st = GF_EUNAVAILABLE;
            break;
        }
        if (gf_deadline_passed(deadline)) {
            p->timeouts++;
            st = GF_ETIMEOUT;
            break;
        }
        /* Until a connection comes back, the deadline, or the back-off's end (p->cv is on
         * CLOCK_MONOTONIC). */
        struct timespec ts =
            gf_deadline_mono_ts(deadline, may_connect ? gf_deadline_left_ms(p->next_connect) : -1);
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    }
    pthread_mutex_unlock(&p->mu);
    if (st == GF_ETIMEOUT)
        GF_LOG_RL(GF_LOG_WARN, 5000, "database pool exhausted app=%s size=%d", p->appname, p->size);
    return st;
}

void gf_db_release(struct gf_db_pool *p, struct gf_db_conn *c)
{
    if (c == NULL)
        return;
    bool keep = PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) == PQTRANS_IDLE &&
                PQpipelineStatus(c->pg) == PQ_PIPELINE_OFF;
    pthread_mutex_lock(&p->mu);
    p->in_use--;
    if (keep) {
        p->idle[p->nidle++] = c;
        c = NULL;
    } else {
        p->open--;
    }
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    conn_free(c);
}

bool gf_db_sqlstate_is(const PGresult *res, const char *sqlstate)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s != NULL && strcmp(s, sqlstate) == 0;
}

enum gf_status gf_db_status(const PGresult *res, PGconn *conn)
{
    if (conn != NULL && PQstatus(conn) != CONNECTION_OK)
        return GF_EUNAVAILABLE;
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (s == NULL || strlen(s) != 5)
        return GF_EUNAVAILABLE; /* no SQLSTATE: the client side failed (lost connection) */
    if (strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0)
        return GF_ECONFLICT;
    if (strcmp(s, "23505") == 0)
        return GF_EEXISTS;
    if (strcmp(s, "23503") == 0)
        return GF_ENOTFOUND;
    if (strncmp(s, "23", 2) == 0 || strncmp(s, "22", 2) == 0)
        return GF_EINVAL;
    if (strcmp(s, "57014") == 0 || strcmp(s, "55P03") == 0)
        return GF_ETIMEOUT;
    if (strncmp(s, "08", 2) == 0 || strncmp(s, "57P", 3) == 0 || strncmp(s, "53", 2) == 0 ||
        strcmp(s, "25006") == 0 || strcmp(s, "25P03") == 0)
        return GF_EUNAVAILABLE;
    return GF_EINTERNAL;
}

enum gf_status gf_db__failed(PGconn *pg, const char *what, const PGresult *res)
{
    enum gf_status st = gf_db_status(res, pg);
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(pg);
    if (st == GF_EUNAVAILABLE || st == GF_EINTERNAL || st == GF_ETIMEOUT)
        GF_LOG_RL(GF_LOG_ERROR, 1000, "database error stmt=%s sqlstate=%s status=%s error=%s", what,
                  s ? s : "-", gf_status_str(st), msg);
    else
        GF_DEBUG("database refused stmt=%s sqlstate=%s error=%s", what, s ? s : "-", msg);
    return st;
}

/* Records the SQLSTATE of a failed result (for the transaction helper) and logs it. */
static enum gf_status fail(struct gf_db_conn *c, const char *what, PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    snprintf(c->last_sqlstate, sizeof c->last_sqlstate, "%s", s ? s : "");
    return gf_db__failed(c->pg, what, res);
}

static bool ok_result(const PGresult *res)
{
    ExecStatusType t = PQresultStatus(res);
    return t == PGRES_TUPLES_OK || t == PGRES_COMMAND_OK;
}

static bool is_prepared(const struct gf_db_conn *c, const char *name)
{
    for (int i = 0; i < c->nprepared; i++) {
        if (c->prepared[i] == name || strcmp(c->prepared[i], name) == 0)
            return true;
    }
    return false;
}

static void note_prepared(struct gf_db_conn *c, const char *name)
{
    if (c->nprepared < MAX_PREPARED)
        c->prepared[c->nprepared++] = name;
}

enum gf_status gf_db_exec(struct gf_db_conn *c, const char *name, const char *sql, int nparams,
                          const char *const *params, PGresult **res_out)
{
    enum gf_status st = GF_EINTERNAL;
    PGresult *res = NULL;
    if (!is_prepared(c, name)) {
        res = PQprepare(c->pg, name, sql, nparams, NULL);
        if (!ok_result(res)) {
            st = fail(c, name, res);
            goto out;
        }
        PQclear(res);
        res = NULL;
        note_prepared(c, name);
    }
    res = PQexecPrepared(c->pg, name, nparams, params, NULL, NULL, 0);
    if (!ok_result(res)) {
        st = fail(c, name, res);
        goto out;
    }
    c->last_sqlstate[0] = '\0';
    if (res_out) {
        *res_out = res;
        res = NULL;
    }
    st = GF_OK;
out:
    PQclear(res);
    return st;
}

/* One result of a batch: GF_OK, or the failure it reports (the first one is logged and kept);
 * a statement skipped after an earlier failure (PGRES_PIPELINE_ABORTED) is not a new one. */
static enum gf_status batch_result(struct gf_db_conn *c, const char *what, PGresult *r,
                                   enum gf_status *first)
{
    if (r == NULL) { /* the answer never came: the connection broke */
        if (*first == GF_OK)
            *first = fail(c, what, NULL);
        return GF_EUNAVAILABLE;
    }
    if (ok_result(r))
        return GF_OK;
    if (PQresultStatus(r) != PGRES_PIPELINE_ABORTED && *first == GF_OK)
        *first = fail(c, what, r);
    return GF_EINTERNAL;
}

/* The next result of a batch and the NULL that ends it; *broken when either is not there (the
 * connection broke, or the answers are out of step). */
static PGresult *batch_next(PGconn *pg, bool *broken)
{
    PGresult *r = PQgetResult(pg);
    if (r == NULL) {
        *broken = true;
        return NULL;
    }
    PGresult *end = PQgetResult(pg);
    if (end != NULL) {
        PQclear(end);
        *broken = true;
    }
    return r;
}

enum gf_status gf_db_exec_batch(struct gf_db_conn *c, const struct gf_db_stmt *s, int n,
                                PGresult **res, int *failed)
{
    bool prep[GF_DB_BATCH_MAX];
    if (n < 1 || n > GF_DB_BATCH_MAX)
        return GF_EINVAL;
    for (int i = 0; res != NULL && i < n; i++)
        res[i] = NULL;
    if (failed)
        *failed = n;
    PGconn *pg = c->pg;
    if (PQenterPipelineMode(pg) != 1)
        return fail(c, s[0].name, NULL);
    bool sent = true;
    for (int i = 0; i < n && sent; i++) {
        prep[i] = !is_prepared(c, s[i].name);
        if (prep[i])
            sent = PQsendPrepare(pg, s[i].name, s[i].sql, s[i].nparams, NULL) == 1;
        sent = sent &&
               PQsendQueryPrepared(pg, s[i].name, s[i].nparams, s[i].params, NULL, NULL, 0) == 1;
    }
    if (!sent || PQpipelineSync(pg) != 1) {
        /* Only a broken connection refuses to queue or flush: the pool drops it (release). */
        enum gf_status st = fail(c, "pipeline send", NULL);
        return st == GF_OK ? GF_EUNAVAILABLE : st;
    }
    enum gf_status first = GF_OK;
    int bad = n;
    bool broken = false;
    /* Each statement's results in order (its Parse's, then its Execute's); then the Sync's. */
    for (int i = 0; i < n && !broken; i++) {
        PGresult *r;
        if (prep[i]) {
            r = batch_next(pg, &broken);
            if (batch_result(c, s[i].name, r, &first) == GF_OK)
                note_prepared(c, s[i].name);
            else if (bad == n)
                bad = i;
            PQclear(r);
            if (broken)
                break;
        }
        r = batch_next(pg, &broken);
        if (batch_result(c, s[i].name, r, &first) != GF_OK) {
            if (bad == n)
                bad = i;
        } else if (res != NULL) {
            res[i] = r;
            r = NULL;
        }
        PQclear(r);
    }
    if (!broken) {
        PGresult *sync = PQgetResult(pg);
        broken = sync == NULL || PQresultStatus(sync) != PGRES_PIPELINE_SYNC;
        PQclear(sync);
    }
    if (broken || PQexitPipelineMode(pg) != 1) {
        /* Left in pipeline mode with answers unread: not reusable. The pool drops it on
         * release (it keeps only idle connections out of pipeline mode). */
        if (first == GF_OK)
            first = fail(c, "pipeline", NULL);
        if (first == GF_OK)
            first = GF_EUNAVAILABLE;
    }
    if (first != GF_OK) {
        for (int i = 0; res != NULL && i < n; i++) {
            PQclear(res[i]);
            res[i] = NULL;
        }
        if (failed)
            *failed = bad;
        return first;
    }
    c->last_sqlstate[0] = '\0';
    return GF_OK;
}

enum gf_status gf_db_exec_simple(struct gf_db_conn *c, const char *sql)
{
    enum gf_status st = GF_OK;
    /* PQexec returns the last result of a multi-statement text; an error stops the text. */
    PGresult *res = PQexec(c->pg, sql);
    if (!ok_result(res) && PQresultStatus(res) != PGRES_EMPTY_QUERY) {
        char head[48];
        snprintf(head, sizeof head, "%.40s", sql);
        st = fail(c, head, res);
    }
    PQclear(res);
    return st;
}

void gf_db_rollback(struct gf_db_conn *c)
{
    if (PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        enum gf_status rb = gf_db_exec_simple(c, "ROLLBACK");
        (void)rb; /* the pool drops a connection left mid-transaction */
    }
}

enum gf_status gf_db_transaction(struct gf_db_conn *c, gf_db_tx_fn fn, void *arg)
{
    enum gf_status st = GF_EINTERNAL;
    struct gf_backoff bo;
    gf_backoff_init(&bo, 5, 200);
    for (int attempt = 1; attempt <= TX_MAX_ATTEMPTS; attempt++) {
        c->last_sqlstate[0] = '\0';
        st = gf_db_exec_simple(c, "BEGIN");
        if (st != GF_OK)
            return st;
        st = fn(c, arg);
        if (st == GF_OK)
            st = gf_db_exec_simple(c, "COMMIT");
        else
            gf_db_rollback(c);
        bool retry =
            strcmp(c->last_sqlstate, "40001") == 0 || strcmp(c->last_sqlstate, "40P01") == 0;
        if (st == GF_OK || !retry)
            return st;
        gf_db_rollback(c); /* a failed COMMIT's transaction */
        GF_DEBUG("transaction retry attempt=%d sqlstate=%s", attempt, c->last_sqlstate);
        gf_sleep_ms(gf_backoff_next(&bo), NULL);
    }
    GF_WARN("transaction gave up after %d attempts sqlstate=%s", TX_MAX_ATTEMPTS, c->last_sqlstate);
    return st;
}

void gf_db_pool_stats(struct gf_db_pool *p, struct gf_db_pool_stats *out)
{
    pthread_mutex_lock(&p->mu);
    out->size = p->size;
    out->open = p->open;
    out->in_use = p->in_use;
    out->acquired = p->acquired;
    out->timeouts = p->timeouts;
    out->connect_failures = p->connect_failures;
    pthread_mutex_unlock(&p->mu);
}

static double gauge_in_use(void *arg)
{
    struct gf_db_pool_stats s;
    gf_db_pool_stats(arg, &s);
    return s.in_use;
}

static double gauge_open(void *arg)
{
    struct gf_db_pool_stats s;
    gf_db_pool_stats(arg, &s);
    return s.open;
}

void gf_db__register_gauges(const char *name, double (*in_use)(void *), double (*open)(void *),
                            void *arg)
{
    char labels[96];
    snprintf(labels, sizeof labels, "pool=\"%s\"", name);
    gf_metrics_gauge_fn("gf_db_pool_in_use", "database connections lent out", labels, in_use, arg);
    gf_metrics_gauge_fn("gf_db_pool_open", "database connections open", labels, open, arg);
}

void gf_db_pool_register_metrics(struct gf_db_pool *p, const char *name)
{
    gf_db__register_gauges(name, gauge_in_use, gauge_open, p);
}

enum gf_status gf_db_ping(struct gf_db_pool *p)
{
    struct gf_db_conn *c = NULL;
    enum gf_status st = gf_db_acquire(p, &c);
    if (st != GF_OK)
        return st;
    st = gf_db_exec(c, "gf_ping", "SELECT 1", 0, NULL, NULL);
    gf_db_release(p, c);
    return st;
}
