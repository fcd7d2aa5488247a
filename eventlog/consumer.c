/* The broker's deliveries into the store: each batch is decoded (event.c), what cannot ever
 * be stored is dead-lettered, the rest is stored in one transaction (store.c), and only then
 * does the consumer thread (lib amqp_consumer.c) ack. While eventlog-db is down, the batch is
 * refused: the broker keeps the events and redelivers them after the consumer's back-off. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog.h"
#include "gf/clock.h"
#include "gf/console_feed.h"
#include "gf/log.h"
#include "gf/metrics.h"

#define WHY_MAX 200
#define OUTAGE_REMINDER_MS 60000 /* while eventlog-db stays down, say so again this often */

struct consumer {
    struct eventlog_app *app;
    struct gf_amqp_consumer *amqp;
    /* The consumer thread's own state (the handler runs on it only). */
    bool outage;
    int64_t outage_since_ms, reminded_ms;
};

static struct gf_counter *m_stored, *m_duplicates, *m_dead[EVENT_NVERDICTS];
static struct gf_histogram *m_batch, *m_lag;
/* For the gauges (written by the consumer thread, read by /metrics): the lag of the newest
 * event stored and when a batch last stored one (-1: none yet), and the outage flag. */
static _Atomic int64_t last_lag_us = -1, last_stored_us = -1;
static atomic_bool store_outage;
static _Atomic long long dead_lettered; /* since start, for the console */

static double last_lag_gauge(void *arg)
{
    (void)arg;
    int64_t us = atomic_load(&last_lag_us);
    return us < 0 ? NAN : (double)us / 1e6;
}

static double last_stored_gauge(void *arg)
{
    (void)arg;
    int64_t us = atomic_load(&last_stored_us);
    return us < 0 ? NAN : (double)us / 1e6;
}

static double outage_gauge(void *arg)
{
    (void)arg;
    return atomic_load(&store_outage) ? 1 : 0;
}

static void metrics_init(void)
{
    m_stored = gf_metrics_counter("eventlog_events_stored_total",
                                  "events stored (first delivery of each)", "");
    m_duplicates = gf_metrics_counter("eventlog_events_duplicate_total",
                                      "deliveries of events stored before (redeliveries)", "");
    for (int v = EVENT_OK + 1; v < EVENT_NVERDICTS; v++) {
        char labels[64];
        snprintf(labels, sizeof labels, "reason=\"%s\"", event_verdict_str((enum event_verdict)v));
        m_dead[v] =
            gf_metrics_counter("eventlog_events_dead_lettered_total",
                               "deliveries rejected to the dead-letter queue, by reason", labels);
    }
    m_batch = gf_metrics_histogram("eventlog_store_batch_seconds",
                                   "time to decode and store one batch of deliveries", "");
    m_lag = gf_metrics_histogram("eventlog_event_lag_seconds",
                                 "from the event's occurred_at to its storing", "");
    gf_metrics_gauge_fn("eventlog_last_event_lag_seconds",
                        "lag of the newest event stored (occurred_at to storing; NaN before one)",
                        "", last_lag_gauge, NULL);
    gf_metrics_gauge_fn("eventlog_last_stored_timestamp_seconds",
                        "when a batch last stored a new event (Unix time; NaN before one)", "",
                        last_stored_gauge, NULL);
    gf_metrics_gauge_fn("eventlog_store_outage",
                        "1 while eventlog-db refuses batches (the broker keeps the events)", "",
                        outage_gauge, NULL);
}

/* One delivery of the batch: its verdict, and its record when it is to be stored. */
struct item {
    enum event_verdict verdict;
    int first; /* index of the first delivery of the same event in this batch (itself: -1) */
    struct event_record rec;
    char why[WHY_MAX];
};

static bool same_event(const struct event_record *a, const struct event_record *b)
{
    return a->name == b->name && strcmp(a->message_id, b->message_id) == 0;
}

/* Stores the valid records; when the database refuses the batch as a whole (a constraint),
 * stores them one by one, so that the one it refuses is dead-lettered and the others kept. */
static enum gf_status store_valid(struct eventlog_app *app, struct item *items, int n)
{
    struct event_record **recs = calloc((size_t)n + 1, sizeof *recs);
    if (recs == NULL)
        return GF_ENOMEM;
    int nrec = 0;
    for (int i = 0; i < n; i++) {
        if (items[i].verdict == EVENT_OK && items[i].first < 0)
            recs[nrec++] = &items[i].rec;
    }
    enum gf_status st = store_events(app->pool, recs, nrec);
    if (st == GF_EINVAL) {
        GF_WARN("consumer the database refused a batch of %d events: storing one by one", nrec);
        st = GF_OK;
        for (int i = 0; i < n && st == GF_OK; i++) {
            if (items[i].verdict != EVENT_OK || items[i].first >= 0)
                continue;
            struct event_record *one = &items[i].rec;
            st = store_events(app->pool, &one, 1);
            if (st == GF_EINVAL) {
                items[i].verdict = EVENT_REJECTED_BY_DATABASE;
                snprintf(items[i].why, sizeof items[i].why,
                         "eventlog-db refused it (a constraint of the table)");
                st = GF_OK;
            }
        }
    }
    free(recs);
    return st;
}

/* The correlation id for the log lines of a delivery: the event's, else the property's when
 * it is a UUID. */
static void log_cid(const struct item *it, const struct gf_amqp_delivery *d)
{
    char cid[GF_UUID_STRLEN + 1];
    if (it->verdict == EVENT_OK || it->rec.correlation_id[0] != '\0')
        gf_log_set_cid(it->rec.correlation_id);
    else if (d->correlation_id != NULL &&
             gf_uuid_normalize(d->correlation_id, strlen(d->correlation_id), cid))
        gf_log_set_cid(cid);
    else
        gf_log_set_cid(NULL);
}

/* The console's feed (gf/console_feed.h): an event stored is the last stage of the
 * transaction that wrote it, and a line of the console's event stream. */
static void note_stored(const struct event_record *r)
{
    char at[25];
    gf_iso8601_ms(gf_wall_us(), at);
    gf_console_note_tx(r->correlation_id, "", r->user_id, -1, 0, "stored",
                       json_pack("{s:s}", "event", r->name));
    gf_console_note(json_pack("{s:s,s:s,s:s,s:I,s:s,s:s}", "t", "event", "name", r->name,
                              "correlationId", r->correlation_id, "userId", (json_int_t)r->user_id,
                              "text", r->text, "at", at));
}

json_t *consumer_console_stats(void *arg)
{
    (void)arg;
    return json_pack("{s:I}", "deadLettered", (json_int_t)atomic_load(&dead_lettered));
}

/* Logs, counts and marks each delivery of a batch that was handled. */
static void settle(struct item *items, struct gf_amqp_delivery *d, int n)
{
    for (int i = 0; i < n; i++) {
        struct item *it = &items[i];
        /* A second copy in the batch goes where the first went. */
        if (it->first >= 0 && it->first != i && items[it->first].verdict != EVENT_OK) {
            it->verdict = items[it->first].verdict;
            memmove(it->why, items[it->first].why, sizeof it->why);
        }
        log_cid(it, &d[i]);
        if (it->verdict != EVENT_OK) {
            char mid[48];
            gf_log_safe(mid, sizeof mid, d[i].message_id);
            GF_WARN("consumer dead-lettered delivery=%llu message_id=%s redelivered=%d reason=%s "
                    "why=\"%s\"",
                    (unsigned long long)d[i].tag, mid[0] ? mid : "-", d[i].redelivered ? 1 : 0,
                    event_verdict_str(it->verdict), it->why);
            gf_counter_add(m_dead[it->verdict], 1);
            atomic_fetch_add(&dead_lettered, 1);
            d[i].disposition = GF_AMQP_DEAD_LETTER;
            continue;
        }
        d[i].disposition = GF_AMQP_ACK;
        if (it->rec.stored) {
            int64_t lag = it->rec.lag_us > 0 ? it->rec.lag_us : 0;
            gf_counter_add(m_stored, 1);
            gf_histogram_observe_us(m_lag, lag);
            atomic_store(&last_lag_us, lag);
            atomic_store(&last_stored_us, gf_wall_us());
            GF_DEBUG("consumer stored event=%s user=%lld lag_us=%lld", it->rec.name,
                     (long long)it->rec.user_id, (long long)it->rec.lag_us);
            note_stored(&it->rec);
        } else {
            gf_counter_add(m_duplicates, 1);
            GF_DEBUG("consumer duplicate event=%s redelivered=%d", it->rec.name,
                     d[i].redelivered ? 1 : 0);
        }
    }
    gf_log_set_cid(NULL);
}

/* The database's availability, as the batches find it: one line when it goes, a reminder
 * every OUTAGE_REMINDER_MS while it stays away, one line when it is back. */
static void track_outage(struct consumer *c, enum gf_status st)
{
    bool down = st == GF_EUNAVAILABLE || st == GF_ETIMEOUT;
    int64_t now = gf_mono_ms();
    atomic_store(&store_outage, down);
    if (down && !c->outage) {
        c->outage = true;
        c->outage_since_ms = c->reminded_ms = now;
        GF_WARN("consumer cannot store events: eventlog-db is unavailable (%s); the broker keeps "
                "them until it is back",
                gf_status_str(st));
    } else if (down && now - c->reminded_ms >= OUTAGE_REMINDER_MS) {
        c->reminded_ms = now;
        GF_WARN("consumer eventlog-db still unavailable after %lld ms",
                (long long)(now - c->outage_since_ms));
    } else if (st == GF_OK && c->outage) {
        c->outage = false;
        GF_INFO("consumer eventlog-db is back after %lld ms",
                (long long)(now - c->outage_since_ms));
    } else if (st != GF_OK && !down) {
        GF_LOG_RL(GF_LOG_ERROR, 10000, "consumer batch not stored: %s", gf_status_str(st));
    }
}

/* The batch handler (gf_amqp_batch_fn), on the consumer's thread. */
static enum gf_status handle_batch(void *arg, struct gf_amqp_delivery *d, int n)
{
    struct consumer *c = arg;
    int64_t t0 = gf_mono_us();
    int64_t now = gf_wall_us();
    struct item *items = calloc((size_t)n + 1, sizeof *items);
    if (items == NULL) {
        GF_LOG_RL(GF_LOG_ERROR, 10000, "consumer out of memory for a batch of %d", n);
        return GF_ENOMEM;
    }
    for (int i = 0; i < n; i++) {
        items[i].first = -1;
        items[i].verdict = event_decode(&d[i], now, &items[i].rec, items[i].why, WHY_MAX);
        for (int j = 0; items[i].verdict == EVENT_OK && j < i; j++) {
            if (items[j].verdict == EVENT_OK && items[j].first < 0 &&
                same_event(&items[i].rec, &items[j].rec)) {
                items[i].first = j;
                break;
            }
        }
    }
    enum gf_status st = store_valid(c->app, items, n);
    track_outage(c, st);
    if (st == GF_OK) {
        settle(items, d, n);
        gf_histogram_observe_us(m_batch, gf_mono_us() - t0);
    }
    for (int i = 0; i < n; i++)
        event_record_cleanup(&items[i].rec);
    free(items);
    return st;
}

struct consumer *consumer_start(struct eventlog_app *app)
{
    const struct eventlog_config *cfg = app->cfg;
    struct consumer *c = calloc(1, sizeof *c);
    if (c == NULL) {
        GF_ERROR("consumer out of memory");
        return NULL;
    }
    c->app = app;
    metrics_init();
    struct gf_amqp_consumer_options opt = {
        .conn =
            {
                .url = cfg->amqp_url,
                .password = cfg->amqp_password,
                .ca_file = cfg->amqp_ca,
                .name = "eventlog-consumer",
                .heartbeat_s = (int)cfg->amqp_heartbeat_s,
                .timeout_ms = 5000,
            },
        .queue = &gf_events_eventlog_queue,
        .prefetch = (int)cfg->prefetch,
        .batch_max = (int)cfg->batch_max,
        .batch_wait_ms = (int)cfg->batch_wait_ms,
        .handle = handle_batch,
        .arg = c,
        .metrics_prefix = "eventlog_consumer",
    };
    c->amqp = gf_amqp_consumer_start(&opt);
    if (c->amqp == NULL) {
        GF_ERROR("consumer cannot start its thread");
        free(c);
        return NULL;
    }
    return c;
}

void consumer_stop(struct consumer *c)
{
    if (c == NULL)
        return;
    gf_amqp_consumer_stop(c->amqp);
    free(c);
}

bool consumer_ready(const struct consumer *c)
{
    return c != NULL && gf_amqp_consumer_ready(c->amqp);
}
