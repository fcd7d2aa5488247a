/* Admission control: one thread measures, every BACKEND_ADMIT_INTERVAL_MS on a connection of
 * its own, how far gxp's apply worker is behind on backend-db's WAL (as a time) and how old the
 * oldest unpublished event is; from those a controller (shed_control.c) sets the share of the
 * routes that create such work to answer 503 overloaded: all of them past a bound, a share
 * that holds the queues near a target below it (ARCHITECTURE.md, "Admission control"). */
#include "admission.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "gf/clock.h"
#include "gf/log.h"
#include "gf/metrics.h"
#include "shed_control.h"

/* Samples of backend-db's WAL head kept to turn a position into the time it was written:
 * 512 × the 25 ms default reach back 12.8 s, far past any bound worth having (a lag older
 * than the oldest sample is reported as that sample's age, a lower bound). */
#define RING 512

struct sample {
    int64_t ms;  /* monotonic time of the measure */
    int64_t lsn; /* pg_current_wal_lsn() then */
};

struct admission {
    struct backend_app *app;
    struct gf_db_pool *pool; /* one connection: the measure never waits behind requests */
    pthread_t thread;
    bool started;
    atomic_bool stop;
    struct sample ring[RING];
    int ring_n, ring_head; /* samples held; index of the next one written */
    struct shed_control control;
    int64_t shed_since_ms; /* when the current shedding began */
    double shed_peak;      /* the largest share shed since then */
    bool logged;           /* whether its beginning was logged */
    int64_t logged_at_ms;  /* when a beginning was last logged (0: never) */
    int unlogged;          /* beginnings not logged since */
};

static struct gf_counter *shed_decisions, *shed_outbox;

/* The state the routes read (an enum admission_reason, and the share of requests to shed in
 * millionths) and the last figures (-1: unknown), outside the struct so that a render of the
 * gauges never reads a freed one. */
static atomic_int admit_state = ADMISSION_OPEN;
static atomic_int shed_ppm = 0;
static _Atomic int64_t lag_now_ms = -1, outbox_now_ms = -1;
#define PPM 1000000

const char *admission_reason_text(enum admission_reason r)
{
    switch (r) {
    case ADMISSION_DECISIONS_LAG:
        return "gxp's replication of the decisions is behind";
    case ADMISSION_OUTBOX_BACKLOG:
        return "the event outbox is backed up";
    case ADMISSION_OPEN:
        break;
    }
    return "admitting";
}

static const char *reason_label(enum admission_reason r)
{
    return r == ADMISSION_DECISIONS_LAG ? "decisions_lag" : "outbox_backlog";
}

enum admission_reason admission_check(struct admission *a)
{
    if (a == NULL)
        return ADMISSION_OPEN;
    enum admission_reason r = (enum admission_reason)atomic_load(&admit_state);
    if (r == ADMISSION_OPEN)
        return r;
    int ppm = atomic_load(&shed_ppm);
    if (ppm < PPM && gf_rand_unit() * PPM >= ppm)
        return ADMISSION_OPEN; /* this one falls in the share admitted */
    if (r == ADMISSION_DECISIONS_LAG)
        gf_counter_add(shed_decisions, 1);
    else if (r == ADMISSION_OUTBOX_BACKLOG)
        gf_counter_add(shed_outbox, 1);
    return r;
}

/* How long ago the WAL head was last at or below lsn: the age of the oldest WAL after lsn,
 * to within one interval (0 when nothing after lsn was written). */
static int64_t age_of(const struct admission *a, int64_t lsn, int64_t now)
{
    int64_t first_after = -1; /* time of the oldest sample already past lsn */
    for (int i = 1; i <= a->ring_n; i++) {
        const struct sample *s = &a->ring[(a->ring_head - i + RING) % RING];
        if (s->lsn <= lsn)
            break;
        first_after = s->ms;
    }
    return first_after < 0 ? 0 : now - first_after;
}

/* One measure, in one statement: the WAL head; the position gxp's subscription has applied
 * (pg_stat_replication's replay_lsn, which the apply worker reports per applied transaction
 * and which this role may read, else the slot's confirmed_flush_lsn, which also waits for
 * gxp-db's own flush); the age of the oldest unpublished event (the partial index of pending
 * rows gives it at once). Unknown figures are -1. */
static void measure(struct admission *a, int64_t *lag_ms, int64_t *outbox_ms)
{
    struct gf_db_conn *c = NULL;
    PGresult *res = NULL;
    *lag_ms = *outbox_ms = -1;
    if (!atomic_load(&a->app->migrated) || gf_db_acquire(a->pool, &c) != GF_OK)
        return;
    enum gf_status st = gf_db_exec(
        c, "admission_measure",
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint,"
        " (SELECT pg_wal_lsn_diff(GREATEST(s.confirmed_flush_lsn, r.replay_lsn), '0/0')::bigint"
        "    FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid"
        "   WHERE s.slot_name = 'transaction_outbox_sub'),"
        " (SELECT (extract(epoch FROM clock_timestamp() - created_at) * 1000)::bigint"
        "    FROM event_outbox WHERE published_at IS NULL ORDER BY id LIMIT 1)",
        0, NULL, &res);
    int64_t now = gf_mono_ms();
    if (st == GF_OK) {
        int64_t head = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        a->ring[a->ring_head] = (struct sample){.ms = now, .lsn = head};
        a->ring_head = (a->ring_head + 1) % RING;
        if (a->ring_n < RING)
            a->ring_n++;
        if (!PQgetisnull(res, 0, 1))
            *lag_ms = age_of(a, strtoll(PQgetvalue(res, 0, 1), NULL, 10), now);
        /* No pending row: no backlog. A created_at ahead of the clock (another replica's
         * transaction began a moment later) is no backlog either. */
        *outbox_ms = PQgetisnull(res, 0, 2) ? 0 : strtoll(PQgetvalue(res, 0, 2), NULL, 10);
        if (*outbox_ms < 0)
            *outbox_ms = 0;
        PQclear(res);
    } else {
        GF_LOG_RL(GF_LOG_WARN, 10000, "admission cannot measure: admitting everything");
    }
    gf_db_release(a->pool, c);
}

static void *run(void *arg)
{
    struct admission *a = arg;
    const struct backend_config *cfg = a->app->cfg;
    const struct shed_params prm = {.lag_bound_ms = cfg->admit_lag_ms,
                                    .outbox_bound_ms = cfg->admit_outbox_age_ms,
                                    .target = (double)cfg->admit_target_pct / 100.0,
                                    .interval_ms = cfg->admit_interval_ms};
    while (!atomic_load(&a->stop)) {
        int64_t lag_ms, outbox_ms;
        measure(a, &lag_ms, &outbox_ms);
        atomic_store(&lag_now_ms, lag_ms);
        atomic_store(&outbox_now_ms, outbox_ms);
        enum admission_reason was = (enum admission_reason)atomic_load(&admit_state);
        double p = shed_control_step(&a->control, &prm, lag_ms, outbox_ms);
        enum admission_reason next = a->control.reason;
        /* The share first, then the state: a request that sees the new state sees its share. */
        atomic_store(&shed_ppm, (int)(p * PPM));
        atomic_store(&admit_state, (int)next);
        if (next != ADMISSION_OPEN && p > a->shed_peak)
            a->shed_peak = p;
        /* A line when shedding begins and one when it ends. A controller holding a queue at
         * its target may begin and end many times a second: a beginning is logged at most
         * every 10 s (with how many went unlogged), and an end only of a logged one. */
        if (was == ADMISSION_OPEN && next != ADMISSION_OPEN) {
            int64_t now = gf_mono_ms();
            a->shed_since_ms = now;
            a->shed_peak = p;
            a->logged = a->logged_at_ms == 0 || now - a->logged_at_ms >= 10000;
            if (a->logged) {
                GF_WARN("admission shedding reason=%s share=%.2f decisions_lag_ms=%lld "
                        "outbox_age_ms=%lld unlogged_since=%d",
                        reason_label(next), p, (long long)lag_ms, (long long)outbox_ms,
                        a->unlogged);
                a->logged_at_ms = now;
                a->unlogged = 0;
            } else {
                a->unlogged++;
            }
        } else if (was != ADMISSION_OPEN && next == ADMISSION_OPEN && a->logged) {
            GF_INFO("admission open shed_for_ms=%lld peak_share=%.2f decisions_lag_ms=%lld "
                    "outbox_age_ms=%lld",
                    (long long)(gf_mono_ms() - a->shed_since_ms), a->shed_peak, (long long)lag_ms,
                    (long long)outbox_ms);
        }
        gf_sleep_ms(cfg->admit_interval_ms, &a->stop);
    }
    return NULL;
}

static double state_gauge(void *arg)
{
    (void)arg;
    return atomic_load(&admit_state) == ADMISSION_OPEN ? 0 : 1;
}

static double share_gauge(void *arg)
{
    (void)arg;
    return atomic_load(&admit_state) == ADMISSION_OPEN ? 0 : (double)atomic_load(&shed_ppm) / PPM;
}

static double lag_gauge(void *arg)
{
    int64_t v = atomic_load((_Atomic int64_t *)arg);
    return v < 0 ? NAN : (double)v / 1000.0;
}

struct admission *admission_start(struct backend_app *app)
{
    const struct backend_config *cfg = app->cfg;
    struct admission *a = calloc(1, sizeof *a);
    if (a == NULL)
        return NULL;
    a->app = app;
    atomic_init(&a->stop, false);
    shed_decisions = gf_metrics_counter(
        "backend_shed_total",
        "requests answered 503 overloaded by admission control, by the signal past its bound",
        "reason=\"decisions_lag\"");
    shed_outbox = gf_metrics_counter(
        "backend_shed_total",
        "requests answered 503 overloaded by admission control, by the signal past its bound",
        "reason=\"outbox_backlog\"");
    gf_metrics_gauge_fn("backend_admission_state",
                        "1 while a share of buys, add-gxp and auction bids/creates is shed (503 "
                        "overloaded), 0 while all are admitted (always 0 with BACKEND_ADMIT=false)",
                        "", state_gauge, NULL);
    gf_metrics_gauge_fn("backend_admission_shed_ratio",
                        "the share of buys, add-gxp and auction bids/creates answered 503 "
                        "overloaded now: 1 past a bound, less while the controller holds the "
                        "queues near their target (0: all admitted)",
                        "", share_gauge, NULL);
    gf_metrics_gauge_fn("backend_admission_decisions_lag_seconds",
                        "age of the oldest backend-db WAL gxp's subscription has not applied, as "
                        "admission control last measured it (NaN: unknown or off)",
                        "", lag_gauge, &lag_now_ms);
    gf_metrics_gauge_fn("backend_admission_outbox_age_seconds",
                        "age of the oldest unpublished event_outbox row, as admission control "
                        "last measured it (0: none; NaN: unknown or off)",
                        "", lag_gauge, &outbox_now_ms);
    if (!cfg->admit) {
        GF_INFO("admission control off (BACKEND_ADMIT=false)");
        return a;
    }
    struct gf_db_pool_options popt = {
        .conninfo = cfg->db_url,
        .password = cfg->db_password,
        .size = 1,
        .acquire_timeout_ms = 1000,
        /* A measure slower than this is an answer in itself; the next one comes soon. */
        .statement_timeout_ms = 1000,
        .application_name = "backend-admission",
    };
    a->pool = gf_db_pool_new(&popt);
    if (a->pool == NULL || pthread_create(&a->thread, NULL, run, a) != 0) {
        GF_ERROR("cannot start admission control");
        gf_db_pool_free(a->pool);
        free(a);
        return NULL;
    }
    a->started = true;
    return a;
}

void admission_stop(struct admission *a)
{
    if (a == NULL)
        return;
    atomic_store(&a->stop, true);
    if (a->started)
        pthread_join(a->thread, NULL);
    gf_db_pool_free(a->pool);
    free(a);
}
