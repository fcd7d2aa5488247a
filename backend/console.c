/* The operators' console, server side (issue 17): GET /console/api/stream, server-sent events
 * of every transaction's stages, the event stream and the system's figures.
 *
 * Where the stages come from: every process of the system notes what it sees (gf/console_feed.h)
 * — the backends their claims, prepares and decisions, gxp each finalization (heard with LISTEN
 * on gxp-db, console.c there), eventlog each event stored — and sends its notes to the topic
 * exchange gf.console. Each backend consumes them on a queue of its own (transient, bounded,
 * deleted by the broker 15 s after its consumer is gone), merges them per correlation id
 * into the newest CONSOLE_RECENT transactions, and fans the notes out to the open streams (a
 * gf/sse.h hub): a feed message's stages as one "txs" frame, its events as one "events". A
 * stream starts with a snapshot ("hello"); a ticker sends the figures ("stats") once a second.
 * Nothing here is on a request's path: a console that is not open costs the notes and their
 * messages, nothing else. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "coordinator.h"
#include "gf/clock.h"
#include "gf/console_feed.h"
#include "gf/log.h"
#include "gf/sse.h"
#include "gf/testable.h"
#include "relay_backlog.h"

#define CONSOLE_RECENT 256 /* transactions kept for a new stream's snapshot */
#define CONSOLE_EVENTS 64  /* events kept for it */
#define CONSOLE_STREAMS 16 /* open streams at most (operators, not users) */
#define CONSOLE_BACKLOG (1 << 20)
#define CONSOLE_QUEUE_MAX 20000 /* notes messages waiting at most; the oldest are dropped */
#define LATENCY_WINDOW 2048     /* finalization samples of the last seconds */
#define CONSUME_IDLE_MS 10000   /* the feed is consumed this long after the last stream */
#define QUEUE_EXPIRES_MS 15000  /* the queue outlives its consumer this long (x-expires) */
#define ORPHANS 64              /* stored notes waiting for their claim */
#define ORPHAN_KEEP_US 5000000
#define STAGE_STORED 4
#define NSTAGES 5
#define RECHECK_AFTER_US 3000000 /* unfinalized this long: gxp is asked (a note may be lost) */
#define RECHECK_MAX 16           /* transactions asked per pass at most */

static const char *const stage_names[NSTAGES] = {"claimed", "prepared", "decided", "finalized",
                                                 "stored"};

/* One transaction as the console has heard of it so far. */
struct tx {
    char cid[37];
    char kind[16];
    long long user_id, item_id, amount;
    int64_t at_us[NSTAGES];  /* 0: not reached */
    json_t *frames[NSTAGES]; /* the note of each stage reached, as sent */
    uint64_t seq;            /* recency: the slot with the smallest is reused */
};

struct orphan {
    char cid[37];
    json_t *note;
    int64_t at_us;
};

struct sample {
    int64_t at_us, finalize_us, replication_us;
};

struct console {
    struct backend_app *app;
    struct gf_sse_hub *hub;
    /* The feed is consumed only while streams are open (and 10 s after the last one, time
     * for a page to reconnect): a console nobody watches costs the backends nothing but
     * their own notes. */
    pthread_mutex_t cmu;
    struct gf_amqp_consumer *consumer; /* NULL while nobody watches */
    struct gf_amqp_consumer_options copt;
    int64_t idle_since_ms;
    struct gf_amqp_queue queue;
    char qname[128];
    const char *keys[1];
    pthread_mutex_t mu;
    struct tx recent[CONSOLE_RECENT];
    uint64_t seq;
    json_t *events[CONSOLE_EVENTS]; /* a ring of the newest events */
    int nevents, next_event;
    /* Figures of the current second, and the latest of each other service. */
    long long decided_buys, decided_adds;
    struct sample samples[LATENCY_WINDOW];
    int nsamples, next_sample;
    json_t *gxp_stats, *eventlog_stats;
    int64_t heard_ms[3];            /* when backend, gxp, eventlog were last heard on the feed */
    struct orphan orphans[ORPHANS]; /* a ring */
    int next_orphan;
    pthread_t ticker;
    atomic_bool stop;
};

static const char *str_or_empty(const json_t *v)
{
    const char *s = json_string_value(v);
    return s != NULL ? s : "";
}

static int stage_of(const char *s)
{
    for (int i = 0; i < NSTAGES; i++) {
        if (strcmp(stage_names[i], s) == 0)
            return i;
    }
    return -1;
}

/* The record of cid, or NULL. Locked. */
static struct tx *tx_find(struct console *c, const char *cid)
{
    for (int i = 0; i < CONSOLE_RECENT; i++) {
        struct tx *t = &c->recent[i];
        if (t->seq != 0 && strcmp(t->cid, cid) == 0)
            return t;
    }
    return NULL;
}

/* A new record for cid, in the least recent slot. Locked. */
static struct tx *tx_new(struct console *c, const char *cid)
{
    struct tx *oldest = &c->recent[0];
    for (int i = 1; i < CONSOLE_RECENT; i++) {
        if (c->recent[i].seq < oldest->seq)
            oldest = &c->recent[i];
    }
    for (int i = 0; i < NSTAGES; i++)
        json_decref(oldest->frames[i]);
    memset(oldest, 0, sizeof *oldest);
    snprintf(oldest->cid, sizeof oldest->cid, "%s", cid);
    oldest->item_id = -1;
    oldest->seq = ++c->seq;
    return oldest;
}

static void keep_orphan(struct console *c, const char *cid, json_t *note)
{
    struct orphan *o = &c->orphans[c->next_orphan];
    json_decref(o->note);
    snprintf(o->cid, sizeof o->cid, "%s", cid);
    o->note = json_incref(note);
    o->at_us = gf_wall_us();
    c->next_orphan = (c->next_orphan + 1) % ORPHANS;
}

static int64_t iso_us(const char *s)
{
    /* "YYYY-MM-DDTHH:MM:SS.mmmZ" */
    struct tm tm = {0};
    int ms = 0;
    if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000000 + ms * 1000;
}

static void add_sample(struct console *c, int64_t finalize_us, int64_t replication_us)
{
    c->samples[c->next_sample] = (struct sample){gf_wall_us(), finalize_us > 0 ? finalize_us : 0,
                                                 replication_us > 0 ? replication_us : -1};
    c->next_sample = (c->next_sample + 1) % LATENCY_WINDOW;
    if (c->nsamples < LATENCY_WINDOW)
        c->nsamples++;
}

/* Merges one "tx" note into its record and completes it with what the record knows (the kind,
 * user, item and amount come from the claim); returns the frame to send (a new reference). */
static json_t *merge_tx(struct console *c, json_t *note)
{
    const char *cid = json_string_value(json_object_get(note, "correlationId"));
    const char *stage = json_string_value(json_object_get(note, "stage"));
    int s = stage != NULL ? stage_of(stage) : -1;
    if (cid == NULL || strlen(cid) != 36 || s < 0)
        return NULL;
    struct tx *t = tx_find(c, cid);
    if (t == NULL && s == STAGE_STORED) {
        /* An event stored under an id no transaction of ours claimed (yet): an operator's
         * audit of a create, or a claim still in the backend's next batch. Kept aside; a
         * claim within ORPHAN_KEEP_US adopts it (take_message). */
        keep_orphan(c, cid, note);
        return NULL;
    }
    if (t == NULL)
        t = tx_new(c, cid);
    const char *kind = json_string_value(json_object_get(note, "kind"));
    if (kind != NULL && kind[0] != '\0' && t->kind[0] == '\0')
        snprintf(t->kind, sizeof t->kind, "%s", kind);
    json_int_t v;
    if ((v = json_integer_value(json_object_get(note, "userId"))) > 0 && t->user_id == 0)
        t->user_id = v;
    if ((v = json_integer_value(json_object_get(note, "itemId"))) > 0 && t->item_id < 0)
        t->item_id = v;
    if ((v = json_integer_value(json_object_get(note, "amount"))) > 0 && t->amount == 0)
        t->amount = v;
    int64_t at = iso_us(json_string_value(json_object_get(note, "at")));
    bool first = t->at_us[s] == 0;
    if (first)
        t->at_us[s] = at > 0 ? at : gf_wall_us();
    json_t *frame = json_copy(note); /* shallow: the detail is shared, never changed */
    if (frame == NULL)
        return NULL;
    json_object_del(frame, "t");
    json_object_set_new(frame, "kind", json_string(t->kind));
    json_object_set_new(frame, "userId", json_integer(t->user_id));
    json_object_set_new(frame, "itemId", t->item_id > 0 ? json_integer(t->item_id) : json_null());
    json_object_set_new(frame, "amount", json_integer(t->amount));
    if (first) {
        json_decref(t->frames[s]);
        t->frames[s] = json_incref(frame);
    }
    json_t *detail = json_object_get(note, "detail");
    if (first && s == 2 &&
        strcmp(str_or_empty(json_object_get(detail, "outcome")), "succeeded") == 0) {
        if (strcmp(t->kind, "buy") == 0)
            c->decided_buys++;
        else if (strcmp(t->kind, "add_gxp") == 0)
            c->decided_adds++;
    }
    if (first && s == 3 && t->at_us[0] > 0) {
        bool replicated =
            strcmp(str_or_empty(json_object_get(detail, "source")), "replication") == 0;
        add_sample(c, t->at_us[3] - t->at_us[0],
                   replicated && t->at_us[2] > 0 ? t->at_us[3] - t->at_us[2] : -1);
    }
    return frame;
}

static void keep_event(struct console *c, json_t *ev)
{
    json_decref(c->events[c->next_event]);
    c->events[c->next_event] = json_incref(ev);
    c->next_event = (c->next_event + 1) % CONSOLE_EVENTS;
    if (c->nevents < CONSOLE_EVENTS)
        c->nevents++;
}

static void publish(struct console *c, const char *event, json_t *obj)
{
    char *data = json_dumps(obj, JSON_COMPACT);
    if (data != NULL)
        (void)gf_sse_publish(c->hub, event, data);
    free(data);
}

/* The stored notes kept aside for cid, merged now that its record exists, oldest first (a
 * transaction can store two events: an operator's buy its audit, then the buy); their frames
 * go to txs. Locked. */
static void adopt_orphans(struct console *c, const char *cid, json_t *txs)
{
    int64_t now = gf_wall_us();
    for (int k = 0; k < ORPHANS; k++) {
        struct orphan *o = &c->orphans[(c->next_orphan + k) % ORPHANS]; /* the ring's oldest on */
        if (o->note == NULL || now - o->at_us > ORPHAN_KEEP_US || strcmp(o->cid, cid) != 0)
            continue;
        json_t *note = o->note;
        o->note = NULL;
        json_t *frame = merge_tx(c, note);
        if (frame != NULL)
            json_array_append_new(txs, frame);
        json_decref(note);
    }
}

/* One message of the feed: {"service","replica","notes":[...],"stats"?}. Its notes go to the
 * streams as one "txs" frame (an array of transaction stages) and one "events" frame: a
 * message carries a process's notes of 200 ms, and one frame each keeps a busy system's
 * streams to a few frames a second. */
GF_TESTABLE void take_message(struct console *c, const char *body, size_t len)
{
    json_error_t jerr;
    json_t *msg = json_loadb(body, len, 0, &jerr);
    if (!json_is_object(msg)) {
        GF_LOG_RL(GF_LOG_WARN, 10000, "console: a feed message that is not JSON was dropped");
        json_decref(msg);
        return;
    }
    const char *service = json_string_value(json_object_get(msg, "service"));
    json_t *notes = json_object_get(msg, "notes");
    json_t *stats = json_object_get(msg, "stats");
    size_t i;
    json_t *n;
    pthread_mutex_lock(&c->mu);
    static const char *const services[3] = {"backend", "gxp", "eventlog"};
    for (int k = 0; k < 3 && service != NULL; k++) {
        if (strcmp(service, services[k]) == 0)
            c->heard_ms[k] = gf_mono_ms();
    }
    if (json_is_object(stats) && service != NULL) {
        json_t **slot = strcmp(service, "gxp") == 0        ? &c->gxp_stats
                        : strcmp(service, "eventlog") == 0 ? &c->eventlog_stats
                                                           : NULL;
        if (slot != NULL) {
            json_decref(*slot);
            *slot = json_incref(stats);
        }
    }
    json_t *txs = json_array(), *events = json_array();
    json_array_foreach(notes, i, n)
    {
        const char *t = json_string_value(json_object_get(n, "t"));
        if (t != NULL && strcmp(t, "tx") == 0) {
            json_t *frame = merge_tx(c, n);
            if (frame != NULL) {
                json_array_append_new(txs, frame);
                adopt_orphans(c, json_string_value(json_object_get(n, "correlationId")), txs);
            }
        } else if (t != NULL && strcmp(t, "event") == 0) {
            json_t *ev = json_copy(n);
            if (ev != NULL) {
                json_object_del(ev, "t");
                keep_event(c, ev);
                json_array_append_new(events, ev);
            }
        }
    }
    if (json_array_size(txs) > 0)
        publish(c, "txs", txs);
    if (json_array_size(events) > 0)
        publish(c, "events", events);
    pthread_mutex_unlock(&c->mu);
    json_decref(txs);
    json_decref(events);
    json_decref(msg);
}

static enum gf_status handle_batch(void *arg, struct gf_amqp_delivery *d, int n)
{
    struct console *c = arg;
    for (int i = 0; i < n; i++) {
        take_message(c, (const char *)d[i].body, d[i].len);
        d[i].disposition = GF_AMQP_ACK;
    }
    return GF_OK;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The q quantile (0..1) in ms of the samples' field of the last window_us; NULL when none. */
static json_t *quantile_ms(const struct console *c, int64_t since_us, bool replication, double q)
{
    static int64_t v[LATENCY_WINDOW];
    int m = 0;
    for (int i = 0; i < c->nsamples; i++) {
        const struct sample *s = &c->samples[i];
        int64_t x = replication ? s->replication_us : s->finalize_us;
        if (s->at_us >= since_us && x >= 0)
            v[m++] = x;
    }
    if (m == 0)
        return json_null();
    qsort(v, (size_t)m, sizeof v[0], cmp_i64);
    int k = (int)(q * (m - 1) + 0.5);
    return json_real((double)v[k] / 1000.0);
}

static json_t *stat_of(json_t *stats, const char *key)
{
    json_t *v = json_object_get(stats, key);
    return v != NULL ? json_incref(v) : json_null();
}

/* How many of the three services were heard on the feed in the last 2 s (3: every stage of a
 * transaction will be on the streams). Locked. */
static int feeding(const struct console *c)
{
    int n = 0;
    for (int k = 0; k < 3; k++)
        n += c->heard_ms[k] != 0 && gf_mono_ms() - c->heard_ms[k] < 2000;
    return n;
}

/* Once a second: the figures of the last second (latencies over the last 5 s). Locked. */
static json_t *figures(struct console *c, double secs)
{
    int64_t now = gf_wall_us(), rows, lag_bytes;
    relay_backlog_figures(&rows, &lag_bytes);
    char at[25];
    gf_iso8601_ms(now, at);
    json_t *f = json_pack(
        "{s:s,s:i,s:f,s:f,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "at", at, "feeding", feeding(c),
        "buysPerSec", (double)c->decided_buys / secs, "addGxpPerSec",
        (double)c->decided_adds / secs, "finalizeP50Ms", quantile_ms(c, now - 5000000, false, 0.5),
        "finalizeP99Ms", quantile_ms(c, now - 5000000, false, 0.99), "replicationLagMs",
        quantile_ms(c, now - 5000000, true, 0.5), "replicationLagBytes",
        lag_bytes >= 0 ? json_integer(lag_bytes) : json_null(), "relayBacklog",
        rows >= 0 ? json_integer(rows) : json_null(), "dlq",
        stat_of(c->eventlog_stats, "deadLettered"), "pendingOnGxp",
        stat_of(c->gxp_stats, "pendingOnGxp"), "streams", json_integer(gf_sse_clients(c->hub)));
    c->decided_buys = c->decided_adds = 0;
    return f;
}

/* A finalization whose note never came (gxp was down when its decision was applied, or the
 * broker was away): every second, the oldest transactions that are decided, not finalized
 * and older than RECHECK_AFTER_US are looked up on gxp (GetTransaction, as GET
 * /gxp/transaction does), at most RECHECK_MAX, and a finalization found is noted as if heard,
 * with source "lookup". Only while a stream is open. */
static void recheck(struct console *c)
{
    char cids[RECHECK_MAX][37];
    int n = 0;
    int64_t now = gf_wall_us();
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < CONSOLE_RECENT && n < RECHECK_MAX; i++) {
        const struct tx *t = &c->recent[i];
        if (t->seq != 0 && t->at_us[2] > 0 && t->at_us[3] == 0 && t->amount > 0 &&
            now - t->at_us[2] > RECHECK_AFTER_US)
            snprintf(cids[n++], sizeof cids[0], "%s", t->cid);
    }
    pthread_mutex_unlock(&c->mu);
    static const char *const statuses[] = {"PENDING", "ABORTED", "COMMITTED"};
    for (int i = 0; i < n && !atomic_load(&c->stop); i++) {
        ProtobufCMessage *resp = NULL;
        char details[128];
        grpc_status_code code =
            coord_get_transaction(c->app, cids[i], cids[i], &resp, details, sizeof details);
        const char *status = NULL;
        if (code == GRPC_STATUS_NOT_FOUND) {
            status = "NOT_PREPARED"; /* decided, and gxp never held it: nothing to finalize */
        } else if (code == GRPC_STATUS_OK) {
            const Gxp__GetTransactionResponse *r = (const Gxp__GetTransactionResponse *)resp;
            if (r->transaction != NULL && r->transaction->status > 0 && r->transaction->status <= 2)
                status = statuses[r->transaction->status];
        }
        if (resp != NULL)
            protobuf_c_message_free_unpacked(resp, NULL);
        if (status == NULL)
            continue; /* still PENDING, or gxp cannot be asked now: next pass */
        char at[25];
        gf_iso8601_ms(gf_wall_us(), at);
        json_t *note = json_pack("{s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s}}", "t", "tx", "correlationId",
                                 cids[i], "kind", "", "stage", "finalized", "at", at, "detail",
                                 "status", status, "source", "lookup");
        pthread_mutex_lock(&c->mu);
        json_t *frame = note != NULL ? merge_tx(c, note) : NULL;
        pthread_mutex_unlock(&c->mu);
        json_t *txs = frame != NULL ? json_pack("[o]", frame) : NULL;
        if (txs != NULL)
            publish(c, "txs", txs);
        json_decref(txs);
        json_decref(note);
    }
}

static void stop_consuming_when_idle(struct console *c);

static void *ticker_run(void *arg)
{
    struct console *c = arg;
    gf_log_set_cid(NULL);
    int64_t last = gf_mono_us();
    while (gf_sleep_ms(1000, &c->stop)) {
        int64_t now = gf_mono_us();
        pthread_mutex_lock(&c->mu);
        json_t *f = figures(c, (double)(now - last) / 1e6);
        pthread_mutex_unlock(&c->mu);
        last = now;
        if (f != NULL && gf_sse_clients(c->hub) > 0) {
            publish(c, "stats", f);
            recheck(c);
        }
        json_decref(f);
        stop_consuming_when_idle(c);
    }
    return NULL;
}

struct console *console_start(struct backend_app *app, const struct gf_amqp_options *amqp)
{
    struct console *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->app = app;
    pthread_mutex_init(&c->mu, NULL);
    atomic_init(&c->stop, false);
    c->hub = gf_sse_hub_new("console", CONSOLE_STREAMS, CONSOLE_BACKLOG);
    char replica[64];
    gf_console_replica(replica, sizeof replica);
    snprintf(c->qname, sizeof c->qname, "backend.console.%s", replica);
    c->keys[0] = "console.#";
    c->queue = (struct gf_amqp_queue){.name = c->qname,
                                      .exchange = GF_CONSOLE_EXCHANGE,
                                      .routing_keys = c->keys,
                                      .nkeys = 1,
                                      .max_length = CONSOLE_QUEUE_MAX,
                                      .transient = true,
                                      .expires_ms = QUEUE_EXPIRES_MS};
    c->copt = (struct gf_amqp_consumer_options){.conn = *amqp,
                                                .queue = &c->queue,
                                                .prefetch = 64,
                                                .batch_max = 32,
                                                .batch_wait_ms = 0,
                                                .handle = handle_batch,
                                                .arg = c,
                                                .metrics_prefix = "backend_console_consumer"};
    c->copt.conn.name = "backend-console";
    pthread_mutex_init(&c->cmu, NULL);
    if (c->hub == NULL || pthread_create(&c->ticker, NULL, ticker_run, c) != 0) {
        GF_ERROR("console: cannot start");
        gf_sse_hub_free(c->hub);
        pthread_mutex_destroy(&c->cmu);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return NULL;
    }
    return c;
}

void console_close(struct console *c)
{
    if (c != NULL)
        gf_sse_hub_close(c->hub);
}

void console_stop(struct console *c)
{
    if (c == NULL)
        return;
    atomic_store(&c->stop, true);
    pthread_join(c->ticker, NULL);
    gf_amqp_consumer_stop(c->consumer);
    pthread_mutex_destroy(&c->cmu);
    gf_sse_hub_free(c->hub);
    for (int i = 0; i < CONSOLE_RECENT; i++) {
        for (int s = 0; s < NSTAGES; s++)
            json_decref(c->recent[i].frames[s]);
    }
    for (int i = 0; i < CONSOLE_EVENTS; i++)
        json_decref(c->events[i]);
    for (int i = 0; i < ORPHANS; i++)
        json_decref(c->orphans[i].note);
    json_decref(c->gxp_stats);
    json_decref(c->eventlog_stats);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static int by_seq(const void *a, const void *b)
{
    const struct tx *x = *(const struct tx *const *)a, *y = *(const struct tx *const *)b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The first frame of a stream: {"serverTime","replica","recent":[TX...],"events":[EV...]},
 * oldest first. NULL when out of memory. */
GF_TESTABLE char *hello(struct console *c)
{
    static const struct tx *order[CONSOLE_RECENT];
    char at[25], replica[64];
    gf_iso8601_ms(gf_wall_us(), at);
    gf_console_replica(replica, sizeof replica);
    json_t *recent = json_array(), *events = json_array();
    pthread_mutex_lock(&c->mu);
    int m = 0;
    for (int i = 0; i < CONSOLE_RECENT; i++) {
        if (c->recent[i].seq != 0)
            order[m++] = &c->recent[i];
    }
    qsort(order, (size_t)m, sizeof order[0], by_seq);
    for (int i = 0; i < m; i++) {
        const struct tx *t = order[i];
        for (int s = 0; s < NSTAGES; s++) {
            if (t->frames[s] == NULL)
                continue;
            /* As the record knows it now: a stage heard before the claim gets its fields. */
            json_t *f = json_copy(t->frames[s]);
            if (f == NULL)
                continue;
            json_object_set_new(f, "kind", json_string(t->kind));
            json_object_set_new(f, "userId", json_integer(t->user_id));
            json_object_set_new(f, "itemId",
                                t->item_id > 0 ? json_integer(t->item_id) : json_null());
            json_object_set_new(f, "amount", json_integer(t->amount));
            json_array_append_new(recent, f);
        }
    }
    for (int i = 0; i < c->nevents; i++) {
        int k = (c->next_event - c->nevents + i + CONSOLE_EVENTS) % CONSOLE_EVENTS;
        json_array_append(events, c->events[k]);
    }
    pthread_mutex_unlock(&c->mu);
    json_t *h = json_pack("{s:s,s:s,s:o,s:o}", "serverTime", at, "replica", replica, "recent",
                          recent, "events", events);
    char *data = h != NULL ? json_dumps(h, JSON_COMPACT) : NULL;
    json_decref(h);
    char *frame = NULL;
    size_t len = 0;
    bool ok = data != NULL && gf_sse_frame(&frame, &len, "hello", data);
    free(data);
    if (!ok) {
        free(frame);
        return NULL;
    }
    return frame;
}

/* Starts consuming the feed if nobody did, and waits (at most 2 s) until the queue is bound:
 * a buy right after the stream opened is on it. */
static void start_consuming(struct console *c)
{
    pthread_mutex_lock(&c->cmu);
    if (c->consumer == NULL && (c->consumer = gf_amqp_consumer_start(&c->copt)) == NULL)
        GF_ERROR("console: cannot start consuming the feed");
    struct gf_amqp_consumer *k = c->consumer;
    c->idle_since_ms = 0;
    pthread_mutex_unlock(&c->cmu);
    int64_t end = gf_mono_ms() + 2000;
    while (k != NULL && !gf_amqp_consumer_ready(k) && gf_mono_ms() < end)
        gf_sleep_ms(10, NULL);
}

/* From the ticker: no stream for CONSUME_IDLE_MS, the consumer goes (its queue expires
 * QUEUE_EXPIRES_MS later, with the notes nobody read). */
static void stop_consuming_when_idle(struct console *c)
{
    int64_t now = gf_mono_ms();
    pthread_mutex_lock(&c->cmu);
    if (gf_sse_clients(c->hub) > 0 || c->consumer == NULL) {
        c->idle_since_ms = 0;
    } else if (c->idle_since_ms == 0) {
        c->idle_since_ms = now;
    } else if (now - c->idle_since_ms > CONSUME_IDLE_MS) {
        gf_amqp_consumer_stop(c->consumer);
        c->consumer = NULL;
        c->idle_since_ms = 0;
    }
    pthread_mutex_unlock(&c->cmu);
}

bool console_stream(struct console *c, struct gf_http_response *resp, const char *cid)
{
    start_consuming(c);
    char *first = hello(c);
    if (first == NULL)
        return false;
    bool ok = gf_http_reply_sse(resp, c->hub, first, cid);
    free(first);
    return ok;
}
