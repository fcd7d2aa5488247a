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
#include <math.h>
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

#define PRUNE_CHUNK "10000"
#define PRUNE_ROUNDS 20
#define PUMP_EVERY_MS 1000 /* heartbeats are only served inside library calls */
#define RELAY_MIN_GAP_MS 5 /* between two claims: see run() */

#define RELAY_WORKERS_MAX 16
#define BACKLOG_EVERY_MS 1000      /* how often worker 0 measures the outbox backlog */
#define BACKLOG_COUNT_MAX "100000" /* the backlog is counted up to this (a bounded index scan) */

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
    int64_t next_prune_ms;   /* worker 0 prunes */
    int64_t next_backlog_ms; /* worker 0 measures the backlog */
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

/* The backlog as worker 0 last measured it (-1: not yet, or the database did not answer):
 * unpublished rows and the creation time of the oldest, and the WAL bytes of backend-db that
 * gxp's subscription has not confirmed (the decisions' way to gxp). Outside the relay too. */
static _Atomic int64_t backlog_rows = -1, backlog_oldest_us = -1, decisions_lag_bytes = -1;

/* The slot of gxp's subscription on backend-db, as worker 0 last measured it: the WAL it keeps
 * from being recycled (current position − restart_lsn; -1 unknown or none), how much more may
 * be written before max_slot_wal_keep_size invalidates it (safe_wal_size, negative once past
 * it; SAFE_UNKNOWN when unknown or unbounded), and its wal_status as an index into
 * slot_statuses (-1: not measured yet). */
#define SAFE_UNKNOWN INT64_MIN
static _Atomic int64_t slot_retained_bytes = -1, slot_safe_bytes = SAFE_UNKNOWN;
static atomic_int slot_status = -1;
static const char *const slot_statuses[] = {"missing", "reserved", "extended", "unreserved",
                                            "lost"};
#define SLOT_NSTATUSES ((int)(sizeof slot_statuses / sizeof slot_statuses[0]))

static double connected_gauge(void *arg)
{
    (void)arg;
    return atomic_load(&relay_connections);
}

static double backlog_rows_gauge(void *arg)
{
    (void)arg;
    int64_t n = atomic_load(&backlog_rows);
    return n < 0 ? NAN : (double)n;
}

/* Computed at render from the oldest row's time, so the age grows between two measures. */
static double backlog_age_gauge(void *arg)
{
    (void)arg;
    int64_t n = atomic_load(&backlog_rows), oldest = atomic_load(&backlog_oldest_us);
    if (n < 0)
        return NAN;
    if (n == 0 || oldest < 0)
        return 0;
    int64_t age = gf_wall_us() - oldest;
    return age > 0 ? (double)age / 1e6 : 0;
}

static double decisions_lag_gauge(void *arg)
{
    (void)arg;
    int64_t b = atomic_load(&decisions_lag_bytes);
    return b < 0 ? NAN : (double)b;
}

static double slot_retained_gauge(void *arg)
{
    (void)arg;
    int64_t b = atomic_load(&slot_retained_bytes);
    return b < 0 ? NAN : (double)b;
}

static double slot_safe_gauge(void *arg)
{
    (void)arg;
    int64_t b = atomic_load(&slot_safe_bytes);
    return b == SAFE_UNKNOWN ? NAN : (double)b;
}

/* 1 for the slot's current wal_status, 0 for the others; NaN until measured. */
static double slot_status_gauge(void *arg)
{
    int now = atomic_load(&slot_status);
    if (now < 0)
        return NAN;
    return now == (int)(intptr_t)arg ? 1 : 0;
}

static int slot_status_index(const char *s)
{
    for (int i = 1; i < SLOT_NSTATUSES; i++) {
        if (strcmp(s, slot_statuses[i]) == 0)
            return i;
    }
    return -1;
}

static double pool_in_use_gauge(void *arg)
{
    struct gf_db_pool_stats s;
    gf_db_pool_stats(arg, &s);
    return s.in_use;
}

static double pool_open_gauge(void *arg)
{
    struct gf_db_pool_stats s;
    gf_db_pool_stats(arg, &s);
    return s.open;
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
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
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

/* Measures the backlog for /metrics (worker 0, every BACKLOG_EVERY_MS): one statement over the
 * partial index of pending rows, bounded, and the replication slot of gxp's subscription (its
 * lag, the WAL it retains and its wal_status: backend-db's disk is what a long gxp-db outage
 * fills, up to max_slot_wal_keep_size, past which the slot is lost and the subscription must
 * be re-created: scripts/replication-recover.sh). */
static void measure_backlog(struct worker *w)
{
    struct relay *r = w->r;
    if (w->index != 0 || gf_mono_ms() < w->next_backlog_ms || !atomic_load(&r->app->migrated))
        return;
    w->next_backlog_ms = gf_mono_ms() + BACKLOG_EVERY_MS;
    struct gf_db_conn *c = NULL;
    PGresult *res = NULL;
    int64_t rows = -1, oldest = -1, lag = -1, retained = -1, safe = SAFE_UNKNOWN;
    int status = -1;
    if (gf_db_acquire(r->pool, &c) != GF_OK)
        goto out;
    if (gf_db_exec(c, "relay_backlog",
                   "SELECT (SELECT count(*) FROM (SELECT 1 FROM event_outbox"
                   "         WHERE published_at IS NULL LIMIT " BACKLOG_COUNT_MAX ") p),"
                   " (SELECT (extract(epoch FROM created_at) * 1000000)::bigint FROM event_outbox"
                   "   WHERE published_at IS NULL ORDER BY id LIMIT 1),"
                   " s.lag, s.retained, s.wal_status, s.safe_wal_size, s.slot IS NOT NULL"
                   " FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT slot_name AS slot,"
                   "   pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint AS lag,"
                   "   pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS retained,"
                   "   wal_status, safe_wal_size"
                   "   FROM pg_replication_slots WHERE slot_name = 'transaction_outbox_sub') s"
                   " ON true",
                   0, NULL, &res) == GF_OK) {
        rows = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        if (!PQgetisnull(res, 0, 1))
            oldest = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        if (!PQgetisnull(res, 0, 2))
            lag = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
        if (!PQgetisnull(res, 0, 3))
            retained = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
        if (!PQgetisnull(res, 0, 5))
            safe = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
        if (strcmp(PQgetvalue(res, 0, 6), "t") != 0)
            status = 0; /* no slot: the subscription is gone (or was never made) */
        else if (!PQgetisnull(res, 0, 4))
            status = slot_status_index(PQgetvalue(res, 0, 4));
        PQclear(res);
    }
    gf_db_release(r->pool, c);
out:
    atomic_store(&backlog_oldest_us, oldest);
    atomic_store(&backlog_rows, rows);
    atomic_store(&decisions_lag_bytes, lag);
    atomic_store(&slot_retained_bytes, retained);
    atomic_store(&slot_safe_bytes, safe);
    atomic_store(&slot_status, status);
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
    int64_t last_claim_ms = 0;
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
        int64_t gap = last_claim_ms + RELAY_MIN_GAP_MS - gf_mono_ms();
        if (gap > 0)
            gf_sleep_ms(gap, &r->stop);
        last_claim_ms = gf_mono_ms();
        int n = relay_batch(w, &b);
        if (n < 0) {
            gf_counter_add(r->failures, 1);
            gf_sleep_ms(gf_backoff_next(&bo), &r->stop);
            continue;
        }
        gf_backoff_reset(&bo);
        if (n == cap)
            continue; /* probably more waiting */
        if (w->index == 0 && gf_mono_ms() >= w->next_prune_ms) {
            prune(r);
            w->next_prune_ms = gf_mono_ms() + cfg->outbox_prune_interval_ms;
        }
        /* Idle: until a buy kicks us or the poll interval passes, serving heartbeats. */
        int64_t until = gf_mono_ms() + cfg->relay_poll_ms;
        while (!r->stop) {
            int64_t left = until - gf_mono_ms();
            if (left <= 0 || wait_kick(w, left < PUMP_EVERY_MS ? left : PUMP_EVERY_MS))
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
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
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
    gf_metrics_gauge_fn("backend_outbox_pending",
                        "event_outbox rows not yet published (counted up to " BACKLOG_COUNT_MAX
                        ", measured every second; NaN until measured)",
                        "", backlog_rows_gauge, NULL);
    gf_metrics_gauge_fn("backend_outbox_oldest_pending_age_seconds",
                        "age of the oldest unpublished event_outbox row (0 when none)", "",
                        backlog_age_gauge, NULL);
    gf_metrics_gauge_fn("backend_decisions_replication_lag_bytes",
                        "backend-db WAL not yet confirmed by gxp's subscription "
                        "(slot transaction_outbox_sub; NaN while there is none)",
                        "", decisions_lag_gauge, NULL);
    gf_metrics_gauge_fn("backend_decisions_slot_retained_wal_bytes",
                        "backend-db WAL kept for gxp's subscription (current LSN - the slot's "
                        "restart_lsn): grows while gxp-db is away; NaN without a slot",
                        "", slot_retained_gauge, NULL);
    gf_metrics_gauge_fn("backend_decisions_slot_safe_wal_bytes",
                        "WAL that may still be written before max_slot_wal_keep_size "
                        "invalidates the slot (safe_wal_size; NaN when unbounded or lost)",
                        "", slot_safe_gauge, NULL);
    for (int i = 0; i < SLOT_NSTATUSES; i++) {
        char labels[48];
        snprintf(labels, sizeof labels, "status=\"%s\"", slot_statuses[i]);
        gf_metrics_gauge_fn("backend_decisions_slot_wal_status",
                            "1 for the wal_status of gxp's slot on backend-db (missing: no slot; "
                            "lost: invalidated, run scripts/replication-recover.sh)",
                            labels, slot_status_gauge, (void *)(intptr_t)i);
    }
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
    gf_metrics_gauge_fn("gf_db_pool_in_use", "database connections lent out", "pool=\"relay\"",
                        pool_in_use_gauge, r->pool);
    gf_metrics_gauge_fn("gf_db_pool_open", "database connections open", "pool=\"relay\"",
                        pool_open_gauge, r->pool);
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
