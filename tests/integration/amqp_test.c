/* The shared library's RabbitMQ layer (gf/amqp.h) against the run's real node: connecting,
 * topology, publishing with confirms, the consumer thread (properties, acks, dead letters,
 * redelivery after a failed batch, reconnection after the broker dropped it) and the services'
 * event watcher (gf/events.h: its log lines). */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <unistd.h>

#include "backend.pb-c.h"
#include "gf/amqp.h"
#include "gf/clock.h"
#include "gf/events.h"
#include "gf/log.h"
#include "gf/metrics.h"
#include "harness.h"

#define TIMEOUT_MS 5000
#define WAIT_MS 20000 /* bound of every wait for the consumer or the broker */
#define MAX_MSGS 3000

static struct h_rmq R;

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    gf_log_init("amqp-test", GF_LOG_WARN);
    return h_rmq_open(&R);
}

static int teardown(void **state)
{
    (void)state;
    h_cleanup_all();
    return 0;
}

static struct gf_amqp_conn *conn_new(const char *name)
{
    struct gf_amqp_options o = {.url = R.url, .name = name, .timeout_ms = TIMEOUT_MS};
    enum gf_status st = GF_EINTERNAL;
    struct gf_amqp_conn *c = gf_amqp_connect(&o, &st);
    assert_int_equal(st, GF_OK);
    assert_non_null(c);
    assert_true(gf_amqp_ok(c));
    return c;
}

/* A publisher in confirm mode. */
static struct gf_amqp_conn *publisher_new(void)
{
    struct gf_amqp_conn *c = conn_new("amqp-test-publisher");
    assert_int_equal(gf_amqp_confirm_select(c), GF_OK);
    return c;
}

/* Polls the queue's depth (each look costs a rabbitmqctl call) until it is want. */
static long wait_depth(const char *queue, long want)
{
    int64_t deadline = gf_mono_ms() + WAIT_MS;
    long depth;
    while ((depth = h_rmq_queue_depth(&R, queue)) != want && gf_mono_ms() < deadline)
        gf_sleep_ms(200, NULL);
    return depth;
}

/* ---- what a consumer saw ------------------------------------------------------------------ */

/* Messages are named <prefix>-<i>, i < MAX_MSGS; the handler checks every property against
 * what batch_fill published and counts mistakes instead of asserting off the test thread. */
struct seen {
    pthread_mutex_t mu;
    const char *prefix;
    int handled[MAX_MSGS];      /* times handed to the handler */
    bool redelivered[MAX_MSGS]; /* seen at least once with the redelivered flag */
    int calls, total, bad, max_batch;
    int fail_calls;          /* this many first calls return GF_EUNAVAILABLE */
    bool failed[MAX_MSGS];   /* in a batch that failed */
    const char *dead_ids[4]; /* message ids to dead-letter */
    int block_at;            /* >0: the call that brings total to this waits for unblock */
    bool blocked, unblock;
};

static void seen_init(struct seen *s, const char *prefix)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->prefix = prefix;
}

static int msg_index(const struct seen *s, const char *id)
{
    size_t n = strlen(s->prefix);
    if (strncmp(id, s->prefix, n) != 0 || id[n] != '-')
        return -1;
    int i = atoi(id + n + 1);
    return i >= 0 && i < MAX_MSGS ? i : -1;
}

static const int64_t OCCURRED_BASE_US = 1764000000000000LL; /* 2025-11-24 */

static bool delivery_ok(const struct seen *s, const struct gf_amqp_delivery *d, int i)
{
    char want[64];
    snprintf(want, sizeof want, "body of %s-%d", s->prefix, i);
    if (d->len != strlen(want) || memcmp(d->body, want, d->len) != 0)
        return false;
    snprintf(want, sizeof want, "corr-%d", i);
    if (strcmp(d->correlation_id, i % 2 ? want : "") != 0) /* odd ones carry one */
        return false;
    int64_t occurred = OCCURRED_BASE_US + i * 1001;
    return strcmp(d->type, "TestEvent") == 0 &&
           strcmp(d->content_type, GF_EVENTS_CONTENT_TYPE) == 0 && d->occurred_at_us == occurred &&
           d->timestamp_s == occurred / 1000000 && d->disposition == GF_AMQP_ACK;
}

static enum gf_status record(void *arg, struct gf_amqp_delivery *d, int n)
{
    struct seen *s = arg;
    enum gf_status st = GF_OK;
    pthread_mutex_lock(&s->mu);
    s->calls++;
    if (n > s->max_batch)
        s->max_batch = n;
    if (s->calls <= s->fail_calls)
        st = GF_EUNAVAILABLE;
    for (int k = 0; k < n; k++) {
        int i = msg_index(s, d[k].message_id);
        if (i < 0 || !delivery_ok(s, &d[k], i)) {
            s->bad++;
            continue;
        }
        if (d[k].redelivered)
            s->redelivered[i] = true;
        if (st != GF_OK) {
            s->failed[i] = true;
            continue;
        }
        s->handled[i]++;
        s->total++;
        for (int j = 0; j < 4 && s->dead_ids[j]; j++)
            if (strcmp(d[k].message_id, s->dead_ids[j]) == 0)
                d[k].disposition = GF_AMQP_DEAD_LETTER;
    }
    if (s->block_at > 0 && s->total >= s->block_at && !s->blocked) {
        /* Hold this batch (unsettled) until the test has had the connection closed. */
        s->blocked = true;
        int64_t deadline = gf_mono_ms() + WAIT_MS;
        while (!s->unblock && gf_mono_ms() < deadline) {
            pthread_mutex_unlock(&s->mu);
            gf_sleep_ms(10, NULL);
            pthread_mutex_lock(&s->mu);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return st;
}

/* Messages first..first+n-1 of prefix: distinct properties per message (see delivery_ok). */
#define BATCH_MAX 1000
struct batch {
    struct gf_amqp_message m[BATCH_MAX];
    char ids[BATCH_MAX][32], corr[BATCH_MAX][32], body[BATCH_MAX][64];
};

static void batch_fill(struct batch *b, const char *routing_key, const char *prefix, int first,
                       int n)
{
    for (int k = 0; k < n; k++) {
        int i = first + k;
        snprintf(b->ids[k], sizeof b->ids[k], "%s-%d", prefix, i);
        snprintf(b->corr[k], sizeof b->corr[k], "corr-%d", i);
        snprintf(b->body[k], sizeof b->body[k], "body of %s-%d", prefix, i);
        b->m[k] = (struct gf_amqp_message){
            .exchange = GF_EVENTS_EXCHANGE,
            .routing_key = routing_key,
            .body = b->body[k],
            .len = strlen(b->body[k]),
            .content_type = GF_EVENTS_CONTENT_TYPE,
            .type = "TestEvent",
            .message_id = b->ids[k],
            .correlation_id = i % 2 ? b->corr[k] : NULL,
            .occurred_at_us = OCCURRED_BASE_US + i * 1001,
        };
    }
}

/* Publishes prefix-0 .. prefix-(n-1) in confirmed batches of 500; all must be CONFIRMED. */
static void publish_n(struct gf_amqp_conn *c, const char *routing_key, const char *prefix, int n)
{
    struct batch *b = malloc(sizeof *b);
    assert_non_null(b);
    for (int first = 0; first < n; first += 500) {
        int k = n - first < 500 ? n - first : 500;
        batch_fill(b, routing_key, prefix, first, k);
        assert_int_equal(gf_amqp_publish(c, b->m, k, 10000), GF_OK);
        for (int j = 0; j < k; j++)
            assert_int_equal(b->m[j].outcome, GF_AMQP_CONFIRMED);
    }
    free(b);
}

static struct gf_amqp_consumer *consumer_new(const struct gf_amqp_queue *q, const char *name,
                                             struct seen *s, int prefetch, int batch_max)
{
    struct gf_amqp_consumer_options o = {
        .conn = {.url = R.url, .name = name, .heartbeat_s = 5, .timeout_ms = TIMEOUT_MS},
        .queue = q,
        .prefetch = prefetch,
        .batch_max = batch_max,
        .batch_wait_ms = 20,
        .handle = record,
        .arg = s,
        .metrics_prefix = name,
    };
    struct gf_amqp_consumer *c = gf_amqp_consumer_start(&o);
    assert_non_null(c);
    return c;
}

static int total_of(struct seen *s)
{
    pthread_mutex_lock(&s->mu);
    int t = s->total;
    pthread_mutex_unlock(&s->mu);
    return t;
}

/* Waits until the handler has taken want messages in all (with GF_OK). */
static int wait_total(struct seen *s, int want)
{
    int64_t deadline = gf_mono_ms() + WAIT_MS;
    int t;
    while ((t = total_of(s)) < want && gf_mono_ms() < deadline)
        gf_sleep_ms(10, NULL);
    return t;
}

static bool wait_ready(struct gf_amqp_consumer *c, int timeout_ms)
{
    int64_t deadline = gf_mono_ms() + timeout_ms;
    while (!gf_amqp_consumer_ready(c) && gf_mono_ms() < deadline)
        gf_sleep_ms(10, NULL);
    return gf_amqp_consumer_ready(c);
}

/* The value of a counter series in the metrics text ("name{labels} value"), or -1. */
static long long metric(const char *series)
{
    size_t len;
    char *text = gf_metrics_render(&len);
    long long v = -1;
    assert_non_null(text);
    for (const char *p = text; (p = strstr(p, series)) != NULL; p++) {
        if ((p == text || p[-1] == '\n') && p[strlen(series)] == ' ') {
            v = strtoll(p + strlen(series) + 1, NULL, 10);
            break;
        }
    }
    free(text);
    return v;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void connect_refuses_a_bad_url_and_fails_fast_on_a_closed_port(void **state)
{
    (void)state;
    enum gf_status st = GF_OK;
    struct gf_amqp_options o = {.url = "http://127.0.0.1/", .name = "t", .timeout_ms = 3000};
    assert_null(gf_amqp_connect(&o, &st));
    assert_int_equal(st, GF_EINVAL);
    o.url = "amqp://guest:guest@127.0.0.1:notaport/";
    st = GF_OK;
    assert_null(gf_amqp_connect(&o, &st));
    assert_int_equal(st, GF_EINVAL);

    char url[128];
    int port = h_free_port();
    assert_true(port > 0);
    snprintf(url, sizeof url, "amqp://guest:guest@127.0.0.1:%d/", port);
    o.url = url;
    st = GF_OK;
    int64_t t0 = gf_mono_ms();
    assert_null(gf_amqp_connect(&o, &st));
    assert_int_equal(st, GF_EUNAVAILABLE);
    assert_true(gf_mono_ms() - t0 < 1000);

    /* A refused login is unavailable too; the password option replaces the URL's. */
    snprintf(url, sizeof url, "amqp://guest:wrong@127.0.0.1:%d/%s", R.port, R.vhost);
    st = GF_OK;
    assert_null(gf_amqp_connect(&o, &st));
    assert_int_equal(st, GF_EUNAVAILABLE);
    o.password = "guest";
    struct gf_amqp_conn *c = gf_amqp_connect(&o, &st);
    assert_int_equal(st, GF_OK);
    assert_non_null(c);
    gf_amqp_close(c);
    gf_amqp_close(NULL);
}

static void declaring_the_eventlog_queue_twice_is_idempotent(void **state)
{
    (void)state;
    struct gf_amqp_conn *c = conn_new("amqp-test-declare");
    assert_int_equal(gf_amqp_declare_queue(c, &gf_events_eventlog_queue), GF_OK);
    assert_int_equal(gf_amqp_declare_queue(c, &gf_events_eventlog_queue), GF_OK);
    assert_true(gf_amqp_ok(c));
    gf_amqp_close(c);
    /* A second connection (another replica) declares it again. */
    c = conn_new("amqp-test-declare-2");
    assert_int_equal(gf_amqp_declare_queue(c, &gf_events_eventlog_queue), GF_OK);
    gf_amqp_close(c);
    assert_int_equal(h_rmq_queue_depth(&R, gf_events_eventlog_queue.name), 0);
    assert_int_equal(h_rmq_queue_depth(&R, gf_events_eventlog_queue.dead_letter_queue), 0);
}

static const char *const batch_keys[] = {"BatchEvent"};
static const struct gf_amqp_queue batch_q = {
    .name = "t.batch", .exchange = GF_EVENTS_EXCHANGE, .routing_keys = batch_keys, .nkeys = 1};

static void a_batch_of_1000_is_confirmed_and_queued(void **state)
{
    (void)state;
    struct gf_amqp_conn *c = publisher_new();
    assert_int_equal(gf_amqp_declare_queue(c, &batch_q), GF_OK);
    struct batch *b = malloc(sizeof *b);
    assert_non_null(b);
    batch_fill(b, "BatchEvent", "batch", 0, 1000);
    int64_t t0 = gf_mono_us();
    assert_int_equal(gf_amqp_publish(c, b->m, 1000, 10000), GF_OK);
    int64_t us = gf_mono_us() - t0;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(b->m[i].outcome, GF_AMQP_CONFIRMED);
    print_message("1000 persistent messages confirmed in %.1f ms\n", (double)us / 1000.0);
    assert_int_equal(h_rmq_queue_depth(&R, batch_q.name), 1000);
    /* The connection is still good for the next batch. */
    assert_true(gf_amqp_ok(c));
    assert_int_equal(gf_amqp_publish(c, b->m, 1, 5000), GF_OK);
    assert_int_equal(b->m[0].outcome, GF_AMQP_CONFIRMED);
    free(b);
    gf_amqp_close(c);
    assert_int_equal(h_rmq_delete_queue(&R, batch_q.name), 0);
}

static void an_unroutable_message_is_returned_not_confirmed(void **state)
{
    (void)state;
    struct gf_amqp_conn *c = publisher_new();
    assert_int_equal(gf_amqp_declare_queue(c, &batch_q), GF_OK);
    struct batch *b = malloc(sizeof *b);
    assert_non_null(b);
    batch_fill(b, "BatchEvent", "ret", 0, 5);
    b->m[1].routing_key = "Nobody.Listens";
    b->m[3].routing_key = "Nobody.Either";
    assert_int_equal(gf_amqp_publish(c, b->m, 5, 5000), GF_OK);
    assert_int_equal(b->m[0].outcome, GF_AMQP_CONFIRMED);
    assert_int_equal(b->m[1].outcome, GF_AMQP_RETURNED);
    assert_int_equal(b->m[2].outcome, GF_AMQP_CONFIRMED);
    assert_int_equal(b->m[3].outcome, GF_AMQP_RETURNED);
    assert_int_equal(b->m[4].outcome, GF_AMQP_CONFIRMED);
    /* The next batch is not confused by the earlier returns. */
    batch_fill(b, "BatchEvent", "ret", 5, 2);
    assert_int_equal(gf_amqp_publish(c, b->m, 2, 5000), GF_OK);
    assert_int_equal(b->m[0].outcome, GF_AMQP_CONFIRMED);
    assert_int_equal(b->m[1].outcome, GF_AMQP_CONFIRMED);
    assert_true(gf_amqp_ok(c));
    free(b);
    gf_amqp_close(c);
    assert_int_equal(h_rmq_queue_depth(&R, batch_q.name), 5);
    assert_int_equal(h_rmq_delete_queue(&R, batch_q.name), 0);
}

static void pump_notices_a_connection_the_broker_closed(void **state)
{
    (void)state;
    struct gf_amqp_conn *c = conn_new("amqp-test-pumped");
    assert_int_equal(gf_amqp_pump(c, 50), GF_OK);
    assert_int_equal(h_rmq_close_connections(&R, "amqp-test-pumped"), 1);
    int64_t deadline = gf_mono_ms() + WAIT_MS;
    enum gf_status st = GF_OK;
    while (st == GF_OK && gf_mono_ms() < deadline)
        st = gf_amqp_pump(c, 100);
    assert_int_equal(st, GF_EUNAVAILABLE);
    assert_false(gf_amqp_ok(c));
    gf_amqp_close(c);
}

static const char *const props_keys[] = {"PropsEvent"};
static const struct gf_amqp_queue props_q = {.name = "t.props",
                                             .exchange = GF_EVENTS_EXCHANGE,
                                             .routing_keys = props_keys,
                                             .nkeys = 1,
                                             .dead_letter_queue = "t.props.dead"};

static void the_consumer_delivers_every_message_with_its_properties_and_acks_it(void **state)
{
    (void)state;
    static struct seen s;
    seen_init(&s, "props");
    assert_false(gf_amqp_consumer_ready(NULL));
    struct gf_amqp_consumer *cons = consumer_new(&props_q, "amqp_test_props", &s, 50, 20);
    assert_true(wait_ready(cons, WAIT_MS));
    struct gf_amqp_conn *c = publisher_new();
    publish_n(c, "PropsEvent", "props", 400);
    assert_int_equal(wait_total(&s, 400), 400);
    pthread_mutex_lock(&s.mu);
    assert_int_equal(s.bad, 0);
    for (int i = 0; i < 400; i++)
        assert_int_equal(s.handled[i], 1);
    assert_true(s.max_batch <= 20);
    assert_true(s.calls < 400); /* they did come in batches */
    pthread_mutex_unlock(&s.mu);
    assert_int_equal(wait_depth(props_q.name, 0), 0);
    assert_true(gf_amqp_consumer_ready(cons));
    assert_int_equal(metric("amqp_test_props_acked_total{queue=\"t.props\"}"), 400);
    gf_amqp_consumer_stop(cons);
    gf_amqp_close(c);
}

static const char *const dl_keys[] = {"DeadEvent"};
static const struct gf_amqp_queue dl_q = {.name = "t.dl",
                                          .exchange = GF_EVENTS_EXCHANGE,
                                          .routing_keys = dl_keys,
                                          .nkeys = 1,
                                          .dead_letter_queue = "t.dl.dead"};
static const struct gf_amqp_queue dl_dead_q = {.name = "t.dl.dead", .exchange = GF_EVENTS_EXCHANGE};

static void
a_dead_lettered_message_goes_to_the_dead_letter_queue_and_the_consumer_goes_on(void **state)
{
    (void)state;
    static struct seen s, dead;
    seen_init(&s, "dl");
    seen_init(&dead, "dl");
    s.dead_ids[0] = "dl-3";
    s.dead_ids[1] = "dl-7";
    struct gf_amqp_consumer *cons = consumer_new(&dl_q, "amqp_test_dl", &s, 10, 5);
    assert_true(wait_ready(cons, WAIT_MS));
    struct gf_amqp_conn *c = publisher_new();
    publish_n(c, "DeadEvent", "dl", 10);
    assert_int_equal(wait_total(&s, 10), 10);
    /* It carries on: the next messages are handled too. */
    struct batch *b = malloc(sizeof *b);
    assert_non_null(b);
    batch_fill(b, "DeadEvent", "dl", 10, 5);
    assert_int_equal(gf_amqp_publish(c, b->m, 5, 5000), GF_OK);
    free(b);
    assert_int_equal(wait_total(&s, 15), 15);
    assert_true(gf_amqp_consumer_ready(cons));
    gf_amqp_consumer_stop(cons);
    pthread_mutex_lock(&s.mu);
    assert_int_equal(s.bad, 0);
    for (int i = 0; i < 15; i++)
        assert_int_equal(s.handled[i], 1); /* the rejected ones did not come back */
    pthread_mutex_unlock(&s.mu);
    assert_int_equal(wait_depth(dl_q.name, 0), 0);
    assert_int_equal(wait_depth(dl_dead_q.name, 2), 2);
    /* And the dead-letter queue holds exactly those two, intact. */
    struct gf_amqp_consumer *dc = consumer_new(&dl_dead_q, "amqp_test_dl_dead", &dead, 10, 10);
    assert_int_equal(wait_total(&dead, 2), 2);
    gf_amqp_consumer_stop(dc);
    assert_int_equal(dead.bad, 0);
    assert_int_equal(dead.total, 2);
    assert_int_equal(dead.handled[3], 1);
    assert_int_equal(dead.handled[7], 1);
    gf_amqp_close(c);
}

static const char *const redo_keys[] = {"RedoEvent"};
static const struct gf_amqp_queue redo_q = {
    .name = "t.redo", .exchange = GF_EVENTS_EXCHANGE, .routing_keys = redo_keys, .nkeys = 1};

static void a_batch_the_handler_could_not_commit_is_redelivered_then_acked(void **state)
{
    (void)state;
    static struct seen s;
    seen_init(&s, "redo");
    s.fail_calls = 1;
    struct gf_amqp_conn *c = publisher_new();
    assert_int_equal(gf_amqp_declare_queue(c, &redo_q), GF_OK);
    publish_n(c, "RedoEvent", "redo", 30); /* queued before the consumer starts: one batch */
    struct gf_amqp_consumer *cons = consumer_new(&redo_q, "amqp_test_redo", &s, 30, 10);
    assert_int_equal(wait_total(&s, 30), 30);
    assert_true(wait_ready(cons, WAIT_MS));
    pthread_mutex_lock(&s.mu);
    assert_int_equal(s.bad, 0);
    int failed = 0;
    for (int i = 0; i < 30; i++) {
        assert_int_equal(s.handled[i], 1);
        if (s.failed[i]) {
            failed++;
            assert_true(s.redelivered[i]); /* came back flagged as such */
        }
    }
    assert_true(failed > 0);
    pthread_mutex_unlock(&s.mu);
    assert_int_equal(wait_depth(redo_q.name, 0), 0);
    assert_int_equal(metric("amqp_test_redo_handler_failures_total{queue=\"t.redo\"}"), 1);
    gf_amqp_consumer_stop(cons);
    gf_amqp_close(c);
}

static const char *const re_keys[] = {"ReconnectEvent"};
static const struct gf_amqp_queue re_q = {.name = "t.reconnect",
                                          .exchange = GF_EVENTS_EXCHANGE,
                                          .routing_keys = re_keys,
                                          .nkeys = 1,
                                          .dead_letter_queue = "t.reconnect.dead"};

static void the_consumer_reconnects_after_the_broker_closed_it_and_loses_nothing(void **state)
{
    (void)state;
    static struct seen s;
    seen_init(&s, "re");
    s.block_at = 1000; /* the handler holds the batch that reaches 1,000 until the close */
    struct gf_amqp_conn *c = publisher_new();
    assert_int_equal(gf_amqp_declare_queue(c, &re_q), GF_OK);
    publish_n(c, "ReconnectEvent", "re", MAX_MSGS);
    struct gf_amqp_consumer *cons = consumer_new(&re_q, "amqp_test_reconnect", &s, 100, 50);
    int64_t deadline = gf_mono_ms() + WAIT_MS;
    bool blocked = false;
    while (!blocked && gf_mono_ms() < deadline) {
        gf_sleep_ms(10, NULL);
        pthread_mutex_lock(&s.mu);
        blocked = s.blocked;
        pthread_mutex_unlock(&s.mu);
    }
    assert_true(blocked);
    assert_true(gf_amqp_consumer_ready(cons));
    assert_int_equal(metric("amqp_test_reconnect_reconnects_total{queue=\"t.reconnect\"}"), 1);
    /* Only the consumer's connection, not the publisher's. */
    assert_int_equal(h_rmq_close_connections(&R, "amqp_test_reconnect"), 1);
    pthread_mutex_lock(&s.mu);
    s.unblock = true;
    pthread_mutex_unlock(&s.mu);

    int total = wait_total(&s, MAX_MSGS);
    deadline = gf_mono_ms() + WAIT_MS;
    bool all = false;
    while (!all && gf_mono_ms() < deadline) {
        all = true;
        pthread_mutex_lock(&s.mu);
        for (int i = 0; i < MAX_MSGS && all; i++)
            all = s.handled[i] > 0;
        pthread_mutex_unlock(&s.mu);
        if (!all)
            gf_sleep_ms(10, NULL);
    }
    assert_true(all);
    assert_true(total >= MAX_MSGS);
    assert_true(wait_ready(cons, WAIT_MS));
    assert_int_equal(metric("amqp_test_reconnect_reconnects_total{queue=\"t.reconnect\"}"), 2);
    assert_int_equal(wait_depth(re_q.name, 0), 0);
    pthread_mutex_lock(&s.mu);
    int redelivered = 0;
    for (int i = 0; i < MAX_MSGS; i++)
        redelivered += s.redelivered[i];
    assert_int_equal(s.bad, 0);
    print_message("%d messages handled for %d published; %d came back redelivered\n", s.total,
                  MAX_MSGS, redelivered);
    assert_true(redelivered > 0); /* at least the batch held across the close */
    pthread_mutex_unlock(&s.mu);
    assert_true(gf_amqp_ok(c)); /* the publisher was left alone */
    gf_amqp_consumer_stop(cons);
    gf_amqp_close(c);
}

static const char *const ready_keys[] = {"ReadyEvent"};
static const struct gf_amqp_queue ready_q = {
    .name = "t.ready", .exchange = GF_EVENTS_EXCHANGE, .routing_keys = ready_keys, .nkeys = 1};

static void consumer_ready_follows_the_connection(void **state)
{
    (void)state;
    static struct seen s;
    seen_init(&s, "ready");
    /* Nobody listens on the port: never ready, and stop does not hang in its back-off. */
    char url[128];
    int port = h_free_port();
    assert_true(port > 0);
    snprintf(url, sizeof url, "amqp://guest:guest@127.0.0.1:%d/", port);
    struct gf_amqp_consumer_options o = {
        .conn = {.url = url, .name = "amqp_test_nowhere", .timeout_ms = 1000},
        .queue = &ready_q,
        .prefetch = 10,
        .handle = record,
        .arg = &s,
        .metrics_prefix = "amqp_test_nowhere",
    };
    struct gf_amqp_consumer *cons = gf_amqp_consumer_start(&o);
    assert_non_null(cons);
    assert_false(wait_ready(cons, 700));
    int64_t t0 = gf_mono_ms();
    gf_amqp_consumer_stop(cons);
    assert_true(gf_mono_ms() - t0 < 2000);
    /* The real broker: ready once it consumes. */
    cons = consumer_new(&ready_q, "amqp_test_ready", &s, 10, 10);
    assert_true(wait_ready(cons, WAIT_MS));
    struct gf_amqp_conn *c = publisher_new();
    publish_n(c, "ReadyEvent", "ready", 3);
    assert_int_equal(wait_total(&s, 3), 3);
    assert_true(gf_amqp_consumer_ready(cons));
    gf_amqp_consumer_stop(cons);
    gf_amqp_close(c);
}

static const char *const gone_keys[] = {"GoneEvent"};
static const struct gf_amqp_queue gone_q = {
    .name = "t.gone", .exchange = GF_EVENTS_EXCHANGE, .routing_keys = gone_keys, .nkeys = 1};

/* The broker cancels the consumers of a deleted queue (basic.cancel, sent only to clients
 * that announce the capability consumer_cancel_notify): the consumer must notice, reconnect,
 * declare the queue again and consume from it, not sit ready on a queue that is gone. */
static void a_consumer_whose_queue_is_deleted_declares_it_again_and_goes_on(void **state)
{
    (void)state;
    static struct seen s;
    seen_init(&s, "gone");
    struct gf_amqp_consumer *cons = consumer_new(&gone_q, "amqp_test_gone", &s, 10, 10);
    assert_true(wait_ready(cons, WAIT_MS));
    assert_int_equal(h_rmq_delete_queue(&R, gone_q.name), 0);
    int64_t deadline = gf_mono_ms() + WAIT_MS;
    while (metric("amqp_test_gone_reconnects_total{queue=\"t.gone\"}") < 2 &&
           gf_mono_ms() < deadline)
        gf_sleep_ms(10, NULL);
    assert_int_equal(metric("amqp_test_gone_reconnects_total{queue=\"t.gone\"}"), 2);
    assert_true(wait_ready(cons, WAIT_MS));
    struct gf_amqp_conn *c = publisher_new();
    publish_n(c, "GoneEvent", "gone", 3);
    assert_int_equal(wait_total(&s, 3), 3);
    gf_amqp_consumer_stop(cons);
    gf_amqp_close(c);
}

/* Lines of file holding s. */
static int file_lines_with(const char *file, const char *s)
{
    FILE *fp = fopen(file, "r");
    if (fp == NULL)
        return 0;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, fp) != NULL)
        n += strstr(line, s) != NULL;
    fclose(fp);
    return n;
}

/* The services' event watcher (lib/src/events_log.c) logs one line per event it receives, with
 * the event's key fields and its correlation id; a body that is not the event its name says is
 * logged as not understood. Shown for the auction's events. */
static void the_event_watcher_logs_each_auction_event_with_its_fields(void **state)
{
    (void)state;
    static const char cid[] = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d";
    Backend__AuctionOutbidEvent o = BACKEND__AUCTION_OUTBID_EVENT__INIT;
    o.auctionid = 7, o.userid = 3, o.bidid = 12, o.amount = 50, o.newbidid = 13;
    o.newamount = 60, o.itemid = 2, o.correlationid = (char *)cid;
    Backend__AuctionSettledEvent st = BACKEND__AUCTION_SETTLED_EVENT__INIT;
    st.auctionid = 7, st.sellerid = 3, st.winnerid = 4, st.itemid = 2, st.amount = 60;
    st.bidid = 13, st.useritemid = 21, st.correlationid = (char *)cid;
    Backend__AuctionCancelledEvent c = BACKEND__AUCTION_CANCELLED_EVENT__INIT;
    c.auctionid = 8, c.sellerid = 3, c.itemid = 2, c.useritemid = 20, c.correlationid = (char *)cid;
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff};
    uint8_t bodies[3][128];
    const ProtobufCMessage *pb[] = {&o.base, &st.base, &c.base};
    const char *names[] = {GF_EVENT_AUCTION_OUTBID, GF_EVENT_AUCTION_SETTLED,
                           GF_EVENT_AUCTION_CANCELLED, GF_EVENT_AUCTION_SETTLED};
    const char *mids[] = {"watch-1", "watch-2", "watch-3", "watch-4"};
    struct gf_amqp_message m[4];
    for (int i = 0; i < 4; i++) {
        m[i] = (struct gf_amqp_message){
            .exchange = GF_EVENTS_WATCH_EXCHANGE,
            .routing_key = names[i],
            .body = i < 3 ? (const void *)bodies[i] : garbage,
            .len = i < 3 ? protobuf_c_message_pack(pb[i], bodies[i]) : sizeof garbage,
            .content_type = GF_EVENTS_CONTENT_TYPE,
            .type = names[i],
            .message_id = mids[i],
            .correlation_id = cid,
        };
    }

    /* The watcher's lines go to stderr: into a file for the length of the test. */
    char log[700];
    snprintf(log, sizeof log, "%s/watcher.log", h_run_dir());
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    close(fd);
    gf_log_init("amqp-test", GF_LOG_INFO);
    struct gf_amqp_options wo = {
        .url = R.url, .name = "amqp-test-watcher", .timeout_ms = TIMEOUT_MS};
    struct gf_amqp_consumer *w = gf_events_log_start("amqptest", &wo);
    bool ready = w != NULL && wait_ready(w, WAIT_MS);
    struct gf_amqp_conn *p = publisher_new();
    /* Mandatory: confirmed only when routed, i.e. once the watcher's queue is bound. */
    enum gf_status pst = ready ? gf_amqp_publish(p, m, 4, TIMEOUT_MS) : GF_EUNAVAILABLE;
    int64_t deadline = gf_mono_ms() + WAIT_MS;
    while (pst == GF_OK && file_lines_with(log, "msg=\"event ") < 4 && gf_mono_ms() < deadline)
        gf_sleep_ms(20, NULL);
    gf_amqp_close(p);
    gf_amqp_consumer_stop(w);
    gf_log_init("amqp-test", GF_LOG_WARN);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);

    assert_true(ready);
    assert_int_equal(pst, GF_OK);
    for (int i = 0; i < 4; i++)
        assert_int_equal(m[i].outcome, GF_AMQP_CONFIRMED);
    static const char *const want[] = {
        "cid=5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d msg=\"event received name=AuctionOutbidEvent "
        "auctionId=7 userId=3 bidId=12 amount=50 newBidId=13 newAmount=60 itemId=2 "
        "redelivered=0\"",
        "cid=5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d msg=\"event received name=AuctionSettledEvent "
        "auctionId=7 sellerId=3 winnerId=4 itemId=2 amount=60 bidId=13 userItemId=21 "
        "redelivered=0\"",
        "cid=5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d msg=\"event received "
        "name=AuctionCancelledEvent auctionId=8 sellerId=3 itemId=2 userItemId=20 "
        "redelivered=0\"",
        "msg=\"event not understood type='AuctionSettledEvent' routing_key='AuctionSettledEvent' "
        "bytes=4 ",
    };
    for (int i = 0; i < 4; i++) {
        if (file_lines_with(log, want[i]) != 1)
            fail_msg("not one line with %s in %s", want[i], log);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(connect_refuses_a_bad_url_and_fails_fast_on_a_closed_port),
        cmocka_unit_test(declaring_the_eventlog_queue_twice_is_idempotent),
        cmocka_unit_test(a_batch_of_1000_is_confirmed_and_queued),
        cmocka_unit_test(an_unroutable_message_is_returned_not_confirmed),
        cmocka_unit_test(pump_notices_a_connection_the_broker_closed),
        cmocka_unit_test(the_consumer_delivers_every_message_with_its_properties_and_acks_it),
        cmocka_unit_test(
            a_dead_lettered_message_goes_to_the_dead_letter_queue_and_the_consumer_goes_on),
        cmocka_unit_test(a_batch_the_handler_could_not_commit_is_redelivered_then_acked),
        cmocka_unit_test(the_consumer_reconnects_after_the_broker_closed_it_and_loses_nothing),
        cmocka_unit_test(consumer_ready_follows_the_connection),
        cmocka_unit_test(a_consumer_whose_queue_is_deleted_declares_it_again_and_goes_on),
        cmocka_unit_test(the_event_watcher_logs_each_auction_event_with_its_fields),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
