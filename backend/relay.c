/* The outbox relay: carries event_outbox rows to RabbitMQ (SPEC §4), with
 * BACKEND_RELAY_WORKERS threads per backend process, each with its own broker connection. A
 * batch is claimed with FOR UPDATE SKIP LOCKED inside a transaction that stays open while the
 * broker confirms, so two workers or replicas never publish the same row at once and a crashed
 * relay's rows are free again the moment its connection drops. A row is marked published only
 * after its confirm; a returned (unroutable) or refused row waits and is published again.
 * At-least-once: a row whose confirm arrived but whose mark was lost is published again, and
 * consumers store it once.
 *
 * Each event goes out twice: mandatory to topic_exchange, where only durable subscribers
 * (eventlog's queue) are bound, and as a best-effort copy (not mandatory, outcome ignored) to
 * the watchers' exchange, where the queues that only log it are bound. Only the first decides
 * the row's fate, so "returned" means "no durable queue took it": were the watchers bound to
 * topic_exchange with `#`, every event would be routable, confirmed and marked published even
 * with eventlog's queue gone, and lost. One more publish per event is the price; an
 * alternate exchange or a queue check before publishing cannot tell which queues an event
 * reached, and a check after the confirm races a queue deleted and declared again. */
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "gf/amqp.h"
#include "gf/clock.h"
#include "gf/failpoint.h"
#include "gf/log.h"
#include "gf/metrics.h"
#include "relay_backlog.h"

#define PRUNE_CHUNK "10000"
#define PRUNE_ROUNDS 20
#define PUMP_EVERY_MS 1000 /* heartbeats are only served inside library calls */
#define RELAY_MIN_GAP_MS 5 /* between two claims: see run() */

#define RELAY_WORKERS_MAX 16
#define BACKLOG_EVERY_MS 1000 /* how often worker 0 measures the outbox backlog */

struct relay;

/* One publishing thread with its own broker connection. Several workers keep several batches
 * in flight: while one waits for the broker's confirms (which come after the broker's fsync),
 * another claims and publishes the rows that arrived meanwhile (SKIP LOCKED splits them). */
struct worker {
    struct relay *r;
    int index;
    pthread_t thread;
    bool started;
    struct gf_amqp_conn *conn;
    struct gf_amqp_options amqp;
    char conn_name[128];
    uint64_t seen_kicks;
    struct gf_deadline next_prune;   /* worker 0 prunes */
    struct gf_deadline next_backlog; /* worker 0 measures the backlog */
};

struct relay {
    struct backend_app *app;
    /* Its own connections (one per worker): under load the request threads hold every pooled
     * one, and a relay waiting behind them lets the events fall seconds behind the buys. */
    struct gf_db_pool *pool;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t kicks; /* under mu: bumped by every kick; each worker remembers what it saw */
    atomic_bool stop;
    int nworkers;
    struct worker workers[RELAY_WORKERS_MAX];
    struct gf_counter *published, *returned, *nacked, *unconfirmed, *pruned, *connects, *failures;
    struct gf_histogram *lag;
};

/* One relay per process; a count outside it so /metrics never reads a freed relay. */
static atomic_int relay_connections;

static double connected_gauge(void *arg)
{
    (void)arg;
    return atomic_load(&relay_connections);
}

bool relay_connected(const struct relay *r)
{
    return r != NULL && atomic_load(&relay_connections) > 0;
}

void relay_kick(struct relay *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->kicks++;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Waits for a kick this worker has not seen, stop, or ms; true when kicked. */
static bool wait_kick(struct worker *w, int64_t ms)
{
    struct relay *r = w->r;
    struct timespec until = gf_deadline_mono_ts(gf_deadline_in_ms(ms), -1); /* r->cv: monotonic */
    pthread_mutex_lock(&r->mu);
    while (r->kicks == w->seen_kicks && !r->stop) {
        if (pthread_cond_timedwait(&r->cv, &r->mu, &until) != 0)
            break;
    }
    bool kicked = r->kicks != w->seen_kicks;
    w->seen_kicks = r->kicks;
    pthread_mutex_unlock(&r->mu);
    return kicked;
}

/* A broker connection ready to publish: both exchanges and the eventlog's queue declared (so
 * an event published before eventlog ever ran waits for it), confirms on. */
static enum gf_status connect_broker(struct worker *w)
{
    enum gf_status st;
    w->conn = gf_amqp_connect(&w->amqp, &st);
    if (w->conn == NULL)
        return st;
    st = gf_amqp_declare_exchange(w->conn, GF_EVENTS_EXCHANGE);
    if (st == GF_OK)
        st = gf_amqp_declare_exchange(w->conn, GF_EVENTS_WATCH_EXCHANGE);
    if (st == GF_OK)
        st = gf_amqp_declare_queue(w->conn, &gf_events_eventlog_queue);
    if (st == GF_OK)
        st = gf_amqp_confirm_select(w->conn);
    if (st != GF_OK) {
        gf_amqp_close(w->conn);
        w->conn = NULL;
        return st;
    }
    atomic_fetch_add(&relay_connections, 1);
    return GF_OK;
}

static void drop_broker(struct worker *w)
{
    if (w->conn != NULL)
        atomic_fetch_sub(&relay_connections, 1);
    gf_amqp_close(w->conn);
    w->conn = NULL;
}

/* Appends id to a Postgres array literal "{1,2,...}" being built in buf. */
static void add_id(char *buf, size_t n, size_t *len, const char *id)
{
    int w = snprintf(buf + *len, n - *len, "%s%s", *len > 1 ? "," : "", id);
    if (w > 0 && (size_t)w < n - *len)
        *len += (size_t)w;
}

/* The rows of one claimed batch. */
struct batch {
    int n;
    struct gf_amqp_message *msg; /* 2 per row: [0, n) to topic_exchange, [n, 2n) the copies */
    unsigned char **payload;     /* PQunescapeBytea'd bodies */
    char (*ids)[24];
    int64_t *created_us;
};

static void batch_free(struct batch *b)
{
    for (int i = 0; i < b->n; i++)
        PQfreemem(b->payload[i]);
    b->n = 0;
}

/* Publishes one batch inside the open transaction of c. Returns the rows claimed (0 = none
 * pending), or -1 when the broker or the database failed. */
static int publish_claimed(struct worker *w, struct gf_db_conn *c, struct batch *b, PGresult *rows)
{
    struct relay *r = w->r;
    int n = PQntuples(rows);
    for (int i = 0; i < n; i++) {
        size_t len = 0;
        b->payload[i] = PQunescapeBytea((const unsigned char *)PQgetvalue(rows, i, 3), &len);
        if (b->payload[i] == NULL) {
            b->n = i;
            return -1;
        }
        snprintf(b->ids[i], sizeof b->ids[i], "%s", PQgetvalue(rows, i, 0));
        b->created_us[i] = strtoll(PQgetvalue(rows, i, 4), NULL, 10);
        b->msg[i] = (struct gf_amqp_message){
            .exchange = GF_EVENTS_EXCHANGE,
            .routing_key = PQgetvalue(rows, i, 1),
            .body = b->payload[i],
            .len = len,
            .content_type = GF_EVENTS_CONTENT_TYPE,
            .type = PQgetvalue(rows, i, 1),
            .message_id = PQgetvalue(rows, i, 2),
            .correlation_id = PQgetvalue(rows, i, 2),
            .occurred_at_us = b->created_us[i],
        };
    }
    b->n = n;
    if (n == 0)
        return 0;
    for (int i = 0; i < n; i++) {
        b->msg[n + i] = b->msg[i];
        b->msg[n + i].exchange = GF_EVENTS_WATCH_EXCHANGE;
        b->msg[n + i].best_effort = true;
    }
    enum gf_status pst =
        gf_amqp_publish(w->conn, b->msg, 2 * n, (int)r->app->cfg->relay_confirm_timeout_ms);
    /* The window where a death publishes the batch twice (consumers must absorb it). */
    gf_failpoint("relay.after_publish");

    /* Whatever came back confirmed is marked, even when the connection broke afterwards. */
    size_t cap = (size_t)n * 22 + 3, ok_len = 1, bad_len = 1;
    char *ok = malloc(cap), *bad = malloc(cap);
    if (ok == NULL || bad == NULL) {
        free(ok);
        free(bad);
        return -1;
    }
    strcpy(ok, "{");
    strcpy(bad, "{");
    int64_t now = gf_wall_us();
    int nok = 0, nbad = 0;
    for (int i = 0; i < n; i++) {
        switch (b->msg[i].outcome) {
        case GF_AMQP_CONFIRMED:
            add_id(ok, cap, &ok_len, b->ids[i]);
            gf_histogram_observe_us(r->lag, now - b->created_us[i]);
            nok++;
            break;
        case GF_AMQP_RETURNED:
        case GF_AMQP_NACKED:
            gf_counter_add(b->msg[i].outcome == GF_AMQP_RETURNED ? r->returned : r->nacked, 1);
            add_id(bad, cap, &bad_len, b->ids[i]);
            nbad++;
            break;
        default:
            gf_counter_add(r->unconfirmed, 1); /* left as it is: the next attempt is at once */
        }
    }
    strcpy(ok + ok_len, "}");
    strcpy(bad + bad_len, "}");
    enum gf_status st = GF_OK;
    if (nok > 0) {
        const char *p[1] = {ok};
        st = gf_db_exec(c, "relay_mark",
                        "UPDATE event_outbox SET published_at = clock_timestamp()"
                        " WHERE id = ANY($1::bigint[])",
                        1, p, NULL);
    }
    if (st == GF_OK && nbad > 0) {
        /* Unroutable or refused: retried with back-off, never dropped (0.1 s doubling to 60 s). */
        const char *p[1] = {bad};
        st = gf_db_exec(c, "relay_retry_later",
                        "UPDATE event_outbox SET attempts = attempts + 1,"
                        " next_attempt_at = clock_timestamp() + make_interval(secs =>"
                        " least(60, 0.1 * power(2, least(attempts, 10))))"
                        " WHERE id = ANY($1::bigint[])",
                        1, p, NULL);
        GF_LOG_RL(GF_LOG_WARN, 5000, "relay events not accepted by the broker count=%d", nbad);
    }
    free(ok);
    free(bad);
    if (st != GF_OK)
        return -1;
    gf_counter_add(r->published, (uint64_t)nok);
    return pst == GF_OK ? n : -1;
}

/* Claims up to relay_batch pending rows and publishes them. Returns the rows claimed, or
 * -1 on failure (broker or database). */
static int relay_batch(struct worker *w, struct batch *b)
{
    struct relay *r = w->r;
    struct gf_db_conn *c = NULL;
    if (gf_db_acquire(r->pool, &c) != GF_OK)
        return -1;
    char limit[24];
    snprintf(limit, sizeof limit, "%" PRId64, r->app->cfg->relay_batch);
    const char *p[1] = {limit};
    PGresult *rows = NULL;
    int n = -1;
    if (gf_db_exec_simple(c, "BEGIN") != GF_OK)
        goto out;
    if (gf_db_exec(c, "relay_claim",
                   "SELECT id, event_name, correlation_id, payload,"
                   " (extract(epoch FROM created_at) * 1000000)::bigint FROM event_outbox"
                   " WHERE published_at IS NULL AND (next_attempt_at IS NULL"
                   " OR next_attempt_at <= clock_timestamp())"
                   " ORDER BY id LIMIT $1::int FOR UPDATE SKIP LOCKED",
                   1, p, &rows) != GF_OK)
        goto rollback;
    n = publish_claimed(w, c, b, rows);
    PQclear(rows);
    batch_free(b);
    if (n >= 0 || w->conn == NULL || !gf_amqp_ok(w->conn)) {
        /* Commit the marks of what was confirmed, even when the broker failed after. */
        if (gf_db_exec_simple(c, "COMMIT") != GF_OK)
            n = -1;
        goto out;
    }
rollback:
    n = -1;
    gf_db_rollback(c);
out:
    gf_db_release(r->pool, c);
    return n;
}

/* Deletes published rows older than the retention, in chunks. */
static void prune(struct relay *r)
{
    char secs[24];
    snprintf(secs, sizeof secs, "%" PRId64, r->app->cfg->outbox_retention_s);
    const char *p[1] = {secs};
    struct gf_db_conn *c = NULL;
    if (gf_db_acquire(r->pool, &c) != GF_OK)
        return;
    for (int round = 0; round < PRUNE_ROUNDS && !r->stop; round++) {
        PGresult *res = NULL;
        if (gf_db_exec(c, "relay_prune",
                       "DELETE FROM event_outbox WHERE id IN (SELECT id FROM event_outbox"
                       " WHERE published_at < clock_timestamp() - make_interval(secs => $1::int)"
                       " ORDER BY published_at LIMIT " PRUNE_CHUNK ")",
                       1, p, &res) != GF_OK)
            break;
        long deleted = strtol(PQcmdTuples(res), NULL, 10);
        PQclear(res);
        gf_counter_add(r->pruned, (uint64_t)deleted);
        if (deleted < atol(PRUNE_CHUNK))
            break;
    }
    gf_db_release(r->pool, c);
}

/* Worker 0 measures the backlog and gxp's slot for /metrics every BACKLOG_EVERY_MS. */
static void measure_backlog(struct worker *w)
{
    struct relay *r = w->r;
    if (w->index != 0 || !gf_deadline_passed(w->next_backlog) || !atomic_load(&r->app->migrated))
        return;
    w->next_backlog = gf_deadline_in_ms(BACKLOG_EVERY_MS);
    relay_backlog_measure(r->pool);
}

/* Test builds only: BACKEND_FAILPOINT_RELAY_HOLD=1 keeps the relay from publishing, which
 * freezes a process between the commit of its events and their publication. */
static bool failpoint_hold(void)
{
#ifdef GF_FAILPOINTS
    const char *v = getenv("BACKEND_FAILPOINT_RELAY_HOLD");
    return v != NULL && strcmp(v, "1") == 0;
#else
    return false;
#endif
}

static void *run(void *arg)
{
    struct worker *w = arg;
    struct relay *r = w->r;
    const struct backend_config *cfg = r->app->cfg;
    struct gf_backoff bo;
    gf_backoff_init(&bo, 100, 5000);
    int cap = (int)cfg->relay_batch;
    struct gf_deadline next_claim = {0};
    struct batch b = {
        .msg = calloc(2 * (size_t)cap, sizeof *b.msg),
        .payload = calloc((size_t)cap, sizeof *b.payload),
        .ids = calloc((size_t)cap, sizeof *b.ids),
        .created_us = calloc((size_t)cap, sizeof *b.created_us),
    };
    if (b.msg == NULL || b.payload == NULL || b.ids == NULL || b.created_us == NULL) {
        GF_ERROR("relay cannot allocate its batch: events stay in the outbox");
        goto out;
    }
    while (!r->stop) {
        measure_backlog(w);
        if (w->conn == NULL || !gf_amqp_ok(w->conn)) {
            drop_broker(w);
            if (connect_broker(w) != GF_OK) {
                gf_sleep_ms(gf_backoff_next(&bo), &r->stop);
                continue;
            }
            gf_counter_add(r->connects, 1);
        }
        /* The schema may not be there yet on a first start (gf_service_migrate runs
         * concurrently): wait for it. */
        if (!atomic_load(&r->app->migrated) || failpoint_hold()) {
            (void)wait_kick(w, 100);
            continue;
        }
        /* Under load every buy kicks: claiming once per kick would cost backend-db a
         * transaction per event. Claims are at least RELAY_MIN_GAP_MS apart, so the rows of
         * that window go out together; an idle relay still claims at once. */
        if (!gf_deadline_passed(next_claim))
            gf_sleep_ms(gf_deadline_left_ms(next_claim), &r->stop);
        next_claim = gf_deadline_in_ms(RELAY_MIN_GAP_MS);
        int n = relay_batch(w, &b);
        if (n < 0) {
            gf_counter_add(r->failures, 1);
            gf_sleep_ms(gf_backoff_next(&bo), &r->stop);
            continue;
        }
        gf_backoff_reset(&bo);
        if (n == cap)
            continue; /* probably more waiting */
        if (w->index == 0 && gf_deadline_passed(w->next_prune)) {
            prune(r);
            w->next_prune = gf_deadline_in_ms(cfg->outbox_prune_interval_ms);
        }
        /* Idle: until a buy kicks us or the poll interval passes, serving heartbeats. */
        struct gf_deadline poll = gf_deadline_in_ms(cfg->relay_poll_ms);
        while (!r->stop) {
            int64_t left = gf_deadline_left_ms(poll);
            if (left == 0 || wait_kick(w, left < PUMP_EVERY_MS ? left : PUMP_EVERY_MS))
                break;
            if (gf_amqp_pump(w->conn, 0) != GF_OK)
                break;
            measure_backlog(w);
        }
    }
out:
    drop_broker(w);
    free(b.msg);
    free(b.payload);
    free(b.ids);
    free(b.created_us);
    return NULL;
}

struct relay *relay_start(struct backend_app *app)
{
    struct relay *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->app = app;
    struct gf_db_pool_options popt = {
        .conninfo = app->cfg->db_url,
        .password = app->cfg->db_password,
        .size = (int)app->cfg->relay_workers,
        .acquire_timeout_ms = 2000,
        .statement_timeout_ms = (int)app->cfg->db_statement_timeout_ms,
        .application_name = "backend-relay",
        /* A batch's claim stays open while the broker confirms it (up to the confirm
         * timeout): the session must outlive that wait, and still free its rows within
         * seconds when this process is paused or cut off. */
        .idle_in_transaction_timeout_ms = (int)app->cfg->relay_confirm_timeout_ms + 5000,
    };
    r->pool = gf_db_pool_new(&popt);
    if (r->pool == NULL) {
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    gf_cond_init_mono(&r->cv);
    r->nworkers = (int)app->cfg->relay_workers;
    if (r->nworkers > RELAY_WORKERS_MAX)
        r->nworkers = RELAY_WORKERS_MAX;
    for (int i = 0; i < r->nworkers; i++) {
        struct worker *w = &r->workers[i];
        w->r = r;
        w->index = i;
        snprintf(w->conn_name, sizeof w->conn_name, "backend-relay %s #%d",
                 app->cfg->deployment_name, i + 1);
        w->amqp = (struct gf_amqp_options){
            .url = app->cfg->amqp_url,
            .password = app->cfg->amqp_password,
            .ca_file = app->cfg->amqp_ca,
            .name = w->conn_name,
            .heartbeat_s = (int)app->cfg->amqp_heartbeat_s,
            .timeout_ms = 5000,
        };
    }
    r->published = gf_metrics_counter("backend_relay_published_total",
                                      "events the broker confirmed (then marked published)", "");
    r->returned = gf_metrics_counter("backend_relay_returned_total",
                                     "events returned as unroutable (retried later)", "");
    r->nacked = gf_metrics_counter("backend_relay_nacked_total",
                                   "events the broker refused (retried later)", "");
    r->unconfirmed = gf_metrics_counter("backend_relay_unconfirmed_total",
                                        "events with no confirm when the connection ended", "");
    r->connects = gf_metrics_counter("backend_relay_connects_total",
                                     "broker connections the relay opened", "");
    r->failures = gf_metrics_counter("backend_relay_batch_failures_total",
                                     "batches that failed (broker or database): retried", "");
    r->pruned = gf_metrics_counter("backend_outbox_pruned_total",
                                   "published events deleted after the retention", "");
    r->lag = gf_metrics_histogram("backend_relay_lag_seconds",
                                  "from the event's commit to the broker's confirm", "");
    gf_metrics_gauge_fn("backend_relay_connected", "broker connections the relay holds now", "",
                        connected_gauge, NULL);
    relay_backlog_register_metrics();
    for (int i = 0; i < r->nworkers; i++) {
        struct worker *w = &r->workers[i];
        w->started = pthread_create(&w->thread, NULL, run, w) == 0;
        if (!w->started) {
            relay_stop(r);
            return NULL;
        }
    }
    /* Only now: from here the relay (and its pool) lives until relay_stop, which main calls
     * after the HTTP server, the only reader of /metrics, has stopped. */
    gf_db_pool_register_metrics(r->pool, "relay");
    return r;
}

void relay_stop(struct relay *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < r->nworkers; i++) {
        if (r->workers[i].started)
            pthread_join(r->workers[i].thread, NULL);
    }
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    gf_db_pool_free(r->pool);
    free(r);
}
