/* Pipelined single-statement transactions (see gf_db_pipeline in db.h). Each connection
 * has a thread and a queue. The thread takes everything queued, sends it as one pipeline
 * (Prepare if new to this connection, Execute, Sync — per statement, so each one is its own
 * transaction and one failure touches no other), flushes once, reads the results in order
 * and wakes the callers. What arrives meanwhile forms the next batch. A lost connection
 * fails its batch with GF_EUNAVAILABLE; the next statement reconnects after a back-off,
 * and until then callers fail fast instead of queueing behind a dead server. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db_internal.h"
#include "gf/clock.h"
#include "gf/db.h"
#include "gf/log.h"
#include "gf/metrics.h"

#define MAX_PREPARED 64
#define MAX_BATCH 256

struct pl_req {
    const char *name, *sql;
    int nparams;
    const char *const *params;
    PGresult *res;
    enum gf_status st;
    bool done;
    bool answered; /* its results were read */
    bool send_prepare;
    pthread_cond_t cv;     /* gf_db_pipeline_exec: signalled once, when done */
    gf_db_done_fn done_fn; /* gf_db_pipeline_submit: called once, when done */
    void *done_arg;
    struct pl_req *next;
};

struct pl_conn {
    struct gf_db_pipeline *pl;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work; /* a request was queued, or stop */
    struct pl_req *head, *tail;
    bool stopping;
    bool up;                     /* connected */
    struct gf_deadline retry_at; /* while down: fail fast until then */
    struct gf_backoff backoff;
    PGconn *pg; /* owned by the thread */
    int nprepared;
    const char *prepared[MAX_PREPARED];
};

struct gf_db_pipeline {
    struct gf_counter *statements, *batches, *failures;
    char *conninfo, *password, *appname;
    int statement_timeout_ms;
    int idle_in_tx_ms;
    int n;
    struct pl_conn *conns;
    atomic_uint next;
    atomic_int open, busy; /* connections connected / running a batch: for the gauges */
};

/* ---- the connection thread ------------------------------------------------------------ */

static bool is_prepared(struct pl_conn *c, const char *name)
{
    for (int i = 0; i < c->nprepared; i++)
        if (c->prepared[i] == name || strcmp(c->prepared[i], name) == 0)
            return true;
    return false;
}

static void forget_prepared(struct pl_conn *c, const char *name)
{
    for (int i = 0; i < c->nprepared; i++) {
        if (c->prepared[i] == name || strcmp(c->prepared[i], name) == 0) {
            c->prepared[i] = c->prepared[--c->nprepared];
            return;
        }
    }
}

static void disconnect(struct pl_conn *c)
{
    if (c->pg != NULL)
        atomic_fetch_sub(&c->pl->open, 1);
    PQfinish(c->pg);
    c->pg = NULL;
    c->nprepared = 0;
}

static bool connect_pl(struct pl_conn *c)
{
    struct gf_db_pipeline *pl = c->pl;
    c->pg = gf_db__open(pl->conninfo, pl->password, pl->appname, pl->statement_timeout_ms,
                        pl->idle_in_tx_ms, 0); /* one-statement transactions: no lock queue */
    if (c->pg == NULL)
        return false;
    atomic_fetch_add(&pl->open, 1);
    if (!PQenterPipelineMode(c->pg)) {
        GF_ERROR("database pipeline mode refused error=%s", PQerrorMessage(c->pg));
        disconnect(c);
        return false;
    }
    return true;
}

/* Reads one statement's results, up to and including its Sync, and sets r->st and r->res.
 * The Sync is where the statement's implicit transaction commits: libpq answers it with
 * PGRES_PIPELINE_SYNC, preceded by an error when the COMMIT failed (a deferred constraint, a
 * serialization failure detected at commit). So r->st is GF_OK only when the Execute
 * succeeded AND its Sync came back clean; a COMMIT failure replaces the Execute's good result
 * with the status of its SQLSTATE. Returns false when the connection broke; r->st is then a
 * definite failure of the statement itself, or GF_EUNAVAILABLE (outcome unknown), never GF_OK. */
static bool read_one(struct pl_conn *c, struct pl_req *r)
{
    enum gf_status prep_st = GF_OK, st = GF_EINTERNAL;
    PGresult *res, *good = NULL;
    if (r->send_prepare) {
        res = PQgetResult(c->pg);
        if (res == NULL)
            return false;
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            prep_st = gf_db__failed(c->pg, r->name, res);
            forget_prepared(c, r->name);
        }
        PQclear(res);
        if ((res = PQgetResult(c->pg)) != NULL) { /* the end of the Prepare's results */
            PQclear(res);
            return false;
        }
    }
    r->answered = true;
    /* The Execute's results, ended by NULL. */
    while ((res = PQgetResult(c->pg)) != NULL) {
        ExecStatusType t = PQresultStatus(res);
        if (good == NULL && st == GF_EINTERNAL && (t == PGRES_TUPLES_OK || t == PGRES_COMMAND_OK)) {
            good = res;
            st = GF_OK;
            continue;
        }
        if (t == PGRES_PIPELINE_ABORTED)
            st = prep_st != GF_OK ? prep_st : GF_EINTERNAL;
        else if (t != PGRES_TUPLES_OK && t != PGRES_COMMAND_OK)
            st = gf_db__failed(c->pg, r->name, res);
        PQclear(res);
        if (PQstatus(c->pg) != CONNECTION_OK)
            goto broken;
    }
    /* The Sync: PGRES_PIPELINE_SYNC, after an error result (and its closing NULL) when the
     * COMMIT failed. */
    bool after_error = false;
    for (;;) {
        res = PQgetResult(c->pg);
        if (res == NULL) {
            if (!after_error || PQstatus(c->pg) != CONNECTION_OK)
                goto broken;
            after_error = false;
            continue;
        }
        ExecStatusType t = PQresultStatus(res);
        if (t == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            break;
        }
        /* Anything else here is the COMMIT failing: the statement did not take effect. */
        st = t == PGRES_FATAL_ERROR ? gf_db__failed(c->pg, r->name, res) : GF_EINTERNAL;
        if (t != PGRES_FATAL_ERROR)
            GF_ERROR("database pipeline: unexpected result at sync stmt=%s status=%s", r->name,
                     PQresStatus(t));
        PQclear(res);
        PQclear(good);
        good = NULL;
        after_error = true;
        if (PQstatus(c->pg) != CONNECTION_OK)
            goto broken;
    }
    r->st = st;
    r->res = good;
    return true;
broken:
    /* No clean Sync: a statement that had succeeded may or may not have committed. */
    PQclear(good);
    r->res = NULL;
    r->st = st == GF_OK || st == GF_EINTERNAL ? GF_EUNAVAILABLE : st;
    return false;
}

static void run_batch(struct pl_conn *c, struct pl_req *batch)
{
    struct pl_req *r;
    bool ok = true;
    uint64_t n = 0;
    for (r = batch; r; r = r->next)
        n++;
    gf_counter_add(c->pl->statements, n);
    gf_counter_add(c->pl->batches, 1);
    for (r = batch; r && ok; r = r->next) {
        r->send_prepare = false;
        if (!is_prepared(c, r->name)) {
            ok = PQsendPrepare(c->pg, r->name, r->sql, r->nparams, NULL) == 1;
            r->send_prepare = true;
            if (ok && c->nprepared < MAX_PREPARED)
                c->prepared[c->nprepared++] = r->name;
        }
        ok = ok && PQsendQueryPrepared(c->pg, r->name, r->nparams, r->params, NULL, NULL, 0) == 1;
        ok = ok && PQpipelineSync(c->pg) == 1;
    }
    ok = ok && PQflush(c->pg) == 0;
    for (r = batch; r && ok; r = r->next)
        ok = read_one(c, r);
    if (!ok) {
        gf_counter_add(c->pl->failures, 1);
        GF_LOG_RL(GF_LOG_ERROR, 1000, "database connection lost in a pipeline app=%s error=%s",
                  c->pl->appname, PQerrorMessage(c->pg));
        for (r = batch; r; r = r->next) {
            if (!r->answered) {
                PQclear(r->res);
                r->res = NULL;
                r->st = GF_EUNAVAILABLE;
            }
        }
        disconnect(c);
    }
}

/* Hands a request back (the connection's lock is held): a waiting caller is woken; a
 * callback is put on *later, to run once the lock is released (it may submit again). */
static void finish(struct pl_req *r, struct pl_req **later)
{
    if (r->done_fn) {
        r->next = *later;
        *later = r;
        return;
    }
    r->done = true;
    pthread_cond_signal(&r->cv);
}

static void run_callbacks(struct pl_req *later)
{
    while (later) {
        struct pl_req *r = later;
        later = r->next;
        if (r->st != GF_OK) {
            PQclear(r->res);
            r->res = NULL;
        }
        r->done_fn(r->done_arg, r->st, r->res);
        free(r);
    }
}

static void *conn_thread(void *arg)
{
    struct pl_conn *c = arg;
    struct pl_req *later = NULL;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (c->head == NULL && !c->stopping)
            pthread_cond_wait(&c->work, &c->mu);
        if (c->head == NULL && c->stopping)
            break;
        struct pl_req *batch = c->head, *last = batch;
        int n = 1;
        while (last->next && n < MAX_BATCH)
            last = last->next, n++;
        c->head = last->next;
        if (c->head == NULL)
            c->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&c->mu);

        bool connected = c->pg != NULL || connect_pl(c);
        if (connected) {
            atomic_fetch_add(&c->pl->busy, 1);
            run_batch(c, batch);
            atomic_fetch_sub(&c->pl->busy, 1);
        } else
            for (struct pl_req *r = batch; r; r = r->next)
                r->st = GF_EUNAVAILABLE;

        pthread_mutex_lock(&c->mu);
        c->up = c->pg != NULL;
        if (c->up) {
            gf_backoff_reset(&c->backoff);
        } else {
            c->retry_at = gf_deadline_in_ms(gf_backoff_next(&c->backoff));
            /* Fail what queued behind the dead connection too: its callers would only wait. */
            for (struct pl_req *r = c->head, *next; r; r = next) {
                next = r->next;
                r->st = GF_EUNAVAILABLE;
                finish(r, &later);
            }
            c->head = c->tail = NULL;
        }
        for (struct pl_req *r = batch, *next; r; r = next) {
            next = r->next; /* r belongs to its caller again once finished */
            finish(r, &later);
        }
        if (later) {
            pthread_mutex_unlock(&c->mu);
            run_callbacks(later);
            later = NULL;
            pthread_mutex_lock(&c->mu);
        }
    }
    /* Stopping: fail what is still queued. */
    for (struct pl_req *r = c->head, *next; r; r = next) {
        next = r->next;
        r->st = GF_ESHUTDOWN;
        finish(r, &later);
    }
    c->head = c->tail = NULL;
    pthread_mutex_unlock(&c->mu);
    run_callbacks(later);
    disconnect(c);
    return NULL;
}

/* ---- callers -------------------------------------------------------------------------- */

/* Queues r on a usable connection (round-robin, skipping connections in back-off) and
 * returns that connection still locked, or NULL when none is usable. */
static struct pl_conn *enqueue(struct gf_db_pipeline *pl, struct pl_req *r)
{
    unsigned start = atomic_fetch_add(&pl->next, 1);
    for (int i = 0; i < pl->n; i++) {
        struct pl_conn *c = &pl->conns[(start + (unsigned)i) % (unsigned)pl->n];
        pthread_mutex_lock(&c->mu);
        if ((c->up || gf_deadline_passed(c->retry_at)) && !c->stopping) {
            if (c->tail)
                c->tail->next = r;
            else
                c->head = r;
            c->tail = r;
            pthread_cond_signal(&c->work);
            return c;
        }
        pthread_mutex_unlock(&c->mu);
    }
    return NULL;
}

enum gf_status gf_db_pipeline_exec(struct gf_db_pipeline *pl, const char *name, const char *sql,
                                   int nparams, const char *const *params, PGresult **res_out)
{
    struct pl_req req = {
        .name = name, .sql = sql, .nparams = nparams, .params = params, .st = GF_EINTERNAL};
    pthread_cond_init(&req.cv, NULL);
    struct pl_conn *c = enqueue(pl, &req);
    if (c == NULL) {
        pthread_cond_destroy(&req.cv);
        return GF_EUNAVAILABLE;
    }
    while (!req.done)
        pthread_cond_wait(&req.cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    pthread_cond_destroy(&req.cv);
    if (req.st == GF_OK && res_out)
        *res_out = req.res;
    else
        PQclear(req.res);
    return req.st;
}

void gf_db_pipeline_submit(struct gf_db_pipeline *pl, const char *name, const char *sql,
                           int nparams, const char *const *params, gf_db_done_fn done, void *arg)
{
    struct pl_req *r = calloc(1, sizeof *r);
    if (r == NULL) {
        done(arg, GF_ENOMEM, NULL);
        return;
    }
    *r = (struct pl_req){.name = name,
                         .sql = sql,
                         .nparams = nparams,
                         .params = params,
                         .st = GF_EINTERNAL,
                         .done_fn = done,
                         .done_arg = arg};
    struct pl_conn *c = enqueue(pl, r);
    if (c == NULL) {
        free(r);
        done(arg, GF_EUNAVAILABLE, NULL);
        return;
    }
    pthread_mutex_unlock(&c->mu);
}

struct gf_db_pipeline *gf_db_pipeline_new(const struct gf_db_pool_options *opt)
{
    struct gf_db_pipeline *pl = calloc(1, sizeof *pl);
    if (pl == NULL)
        return NULL;
    pl->n = opt->size > 0 ? opt->size : 1;
    pl->conninfo = strdup(opt->conninfo ? opt->conninfo : "");
    pl->password = opt->password && opt->password[0] ? strdup(opt->password) : NULL;
    pl->appname = strdup(opt->application_name ? opt->application_name : "gf");
    pl->statement_timeout_ms = opt->statement_timeout_ms;
    pl->idle_in_tx_ms = gf_db__idle_in_tx_ms(opt->idle_in_transaction_timeout_ms);
    char labels[128];
    snprintf(labels, sizeof labels, "app=\"%s\"", pl->appname ? pl->appname : "gf");
    pl->statements = gf_metrics_counter("gf_db_pipeline_statements_total",
                                        "statements sent through the database pipeline", labels);
    pl->batches =
        gf_metrics_counter("gf_db_pipeline_batches_total",
                           "pipeline batches sent (statements / batches = batch size)", labels);
    pl->failures = gf_metrics_counter("gf_db_pipeline_connection_failures_total",
                                      "pipelined connections lost mid-batch", labels);
    pl->conns = calloc((size_t)pl->n, sizeof *pl->conns);
    if (!pl->conninfo || !pl->appname || !pl->conns ||
        (opt->password && opt->password[0] && !pl->password)) {
        free(pl->conninfo), free(pl->password), free(pl->appname), free(pl->conns), free(pl);
        return NULL;
    }
    for (int i = 0; i < pl->n; i++) {
        struct pl_conn *c = &pl->conns[i];
        c->pl = pl;
        pthread_mutex_init(&c->mu, NULL);
        pthread_cond_init(&c->work, NULL);
        gf_backoff_init(&c->backoff, 100, 5000);
        if (pthread_create(&c->thread, NULL, conn_thread, c) != 0) {
            pl->n = i;
            gf_db_pipeline_free(pl);
            return NULL;
        }
    }
    return pl;
}

static double gauge_open(void *arg)
{
    return atomic_load(&((struct gf_db_pipeline *)arg)->open);
}

static double gauge_busy(void *arg)
{
    return atomic_load(&((struct gf_db_pipeline *)arg)->busy);
}

void gf_db_pipeline_register_metrics(struct gf_db_pipeline *pl, const char *name)
{
    gf_db__register_gauges(name, gauge_busy, gauge_open, pl);
}

void gf_db_pipeline_free(struct gf_db_pipeline *pl)
{
    if (pl == NULL)
        return;
    for (int i = 0; i < pl->n; i++) {
        struct pl_conn *c = &pl->conns[i];
        pthread_mutex_lock(&c->mu);
        c->stopping = true;
        pthread_cond_signal(&c->work);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->thread, NULL);
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->work);
    }
    free(pl->conns);
    free(pl->conninfo);
    free(pl->password);
    free(pl->appname);
    free(pl);
}
