/* Events end to end (SPEC §4), against the real backend, gxp and eventlog, three PostgreSQL
 * clusters and the run's RabbitMQ node: every successful buy is stored exactly once in the
 * event log — with eventlog down for a while, with broker connections cut mid-run, with a
 * queue missing (unroutable events are retried, also with the watchers of gxp and the backend
 * on), with garbage on the queue, and with the backend killed between the commit of its events
 * and their publication; and every change an operator makes is audited once (AdminActionEvent),
 * a refused, failed or replayed one never. Buyers buy with their own tokens (an operator's buy
 * for a user is audited). A world per test; every test ends with the invariants, events
 * included. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend_fixture.h"
#include "gf/amqp.h"
#include "gf/clock.h"
#include "gf/uuid.h"

static int setup_events(void **state)
{
    (void)state;
    struct world_options o = {.events = true, .watchers_off = true};
    return world_start(&W, &o);
}

/* POST /marketplace/item/buy of user for item with the user's own token (no audit). */
static long buy_as_user(long long user, long long item, struct http_res *r)
{
    char *token = world_token(&W, GF_ROLE_USER, user, 0, 3600);
    char body[96];
    snprintf(body, sizeof body, "{\"userId\":%lld,\"itemId\":%lld}", user, item);
    long st = http(&W, "POST", "/marketplace/item/buy", body,
                   (const char *const[]){world_bearer(token), NULL}, r);
    free(token);
    return st;
}

/* Waits until every event of the outbox (the setup's audit events included) is published and
 * eventlog's queue is empty: before a test stops eventlog or deletes its queue. */
static void settle_events(void)
{
    int64_t end = gf_mono_ms() + 15000;
    while (
        (sql_ll(W.backend, "SELECT count(*) FROM event_outbox WHERE published_at IS NULL") != 0 ||
         h_rmq_queue_depth(&W.rmq, "eventlog.events") != 0) &&
        gf_mono_ms() < end)
        usleep(20 * 1000);
    assert_int_equal(
        sql_ll(W.backend, "SELECT count(*) FROM event_outbox WHERE published_at IS NULL"), 0);
    assert_int_equal(h_rmq_queue_depth(&W.rmq, "eventlog.events"), 0);
}

/* ---- load: n buys spread over threads, each thread its own user and item ------------- */

#define THREADS 8

struct load {
    long long users[THREADS], items[THREADS];
    int per_thread;
    int pace_ms; /* pause between two buys of a thread */
    atomic_int ok, refused, failed;
    atomic_bool stop;
};

struct load_arg {
    struct load *l;
    int t;
};

static void *load_thread(void *arg)
{
    struct load_arg *a = arg;
    struct load *l = a->l;
    for (int i = 0; i < l->per_thread && !atomic_load(&l->stop); i++) {
        struct http_res r;
        long st = buy_as_user(l->users[a->t], l->items[a->t], &r);
        if (st == 200)
            atomic_fetch_add(&l->ok, 1);
        else if (st >= 400 && st < 500)
            atomic_fetch_add(&l->refused, 1);
        else
            atomic_fetch_add(&l->failed, 1);
        if (st != 200 && atomic_load(&l->failed) + atomic_load(&l->refused) < 5)
            fprintf(stderr, "buy answered %ld: %s%s\n", st, r.error, r.body);
        http_res_free(&r);
        if (l->pace_ms > 0)
            usleep((useconds_t)l->pace_ms * 1000);
    }
    http_thread_done();
    return NULL;
}

/* THREADS buyers, each with GXP for every buy and an item of cost 1 in stock. */
static void load_prepare(struct load *l, int per_thread)
{
    memset(l, 0, sizeof *l);
    l->per_thread = per_thread;
    for (int t = 0; t < THREADS; t++) {
        char name[32];
        snprintf(name, sizeof name, "buyer-%d", t);
        l->users[t] = api_create_user(&W, name);
        snprintf(name, sizeof name, "item-%d", t);
        l->items[t] = api_create_item(&W, name, 1);
        api_create_marketplace_item(&W, l->items[t], per_thread);
        api_add_gxp(&W, l->users[t], per_thread, NULL);
    }
    settle_events(); /* the setup's audit events are stored before the load begins */
}

static pthread_t load_threads[THREADS];
static struct load_arg load_args[THREADS];

static void load_start(struct load *l)
{
    for (int t = 0; t < THREADS; t++) {
        load_args[t] = (struct load_arg){.l = l, .t = t};
        assert_int_equal(pthread_create(&load_threads[t], NULL, load_thread, &load_args[t]), 0);
    }
}

static void load_wait(struct load *l)
{
    for (int t = 0; t < THREADS; t++)
        pthread_join(load_threads[t], NULL);
    fprintf(stderr, "load: %d ok, %d refused, %d failed\n", atomic_load(&l->ok),
            atomic_load(&l->refused), atomic_load(&l->failed));
    assert_int_equal(atomic_load(&l->failed), 0);
    assert_int_equal(atomic_load(&l->refused), 0);
}

static long long events_count(void)
{
    return sql_ll(W.eventlog, "SELECT count(*) FROM event WHERE event_name = 'BuyItemEvent'");
}

/* ---- tests ------------------------------------------------------------------------------ */

static void every_successful_buy_is_stored_once_with_its_fields(void **state)
{
    (void)state;
    long long user = api_create_user(&W, "my-name");
    long long item = api_create_item(&W, "my-item", 10);
    long long free_item = api_create_item(&W, "free-item", 0);
    api_create_marketplace_item(&W, item, 12);
    api_create_marketplace_item(&W, free_item, 2);
    api_add_gxp(&W, user, 100, NULL);

    char cids[6][40];
    long long user_items[6];
    for (int i = 0; i < 6; i++) {
        struct http_res r;
        assert_int_equal(buy_as_user(user, i < 4 ? item : free_item, &r), 200);
        snprintf(cids[i], sizeof cids[i], "%s", jstr(r.json, "correlationId"));
        user_items[i] = jint(json_object_get(r.json, "buyItemResponse"), "userItemId");
        http_res_free(&r);
    }
    /* A refused buy (out of stock) has no event. */
    struct http_res r;
    assert_int_equal(buy_as_user(user, free_item, &r), 409);
    http_res_free(&r);

    assert_int_equal(wait_events(&W, 6, 15000), 0);
    settle_events();
    char path[128];
    snprintf(path, sizeof path, "/eventlog/events?userId=%lld", user);
    assert_int_equal(http_eventlog(&W, path, &r), 200);
    json_t *events = jarr(r.json, "events");
    /* The six buys, and the operator's two changes for the user: its creation and the mint
     * (a user's own buys are not audited). */
    assert_int_equal(json_array_size(events), 8);
    bool seen[6] = {false};
    int audits = 0;
    for (size_t k = 0; k < 8; k++) {
        /* The list is in store order, newest first. Two relay workers may store two quick
         * buys in either order, so each event is matched to its buy by correlation id. */
        json_t *e = json_array_get(events, k);
        if (strcmp(jstr(e, "event"), "AdminActionEvent") == 0) {
            const char *action = jstr(json_object_get(e, "data"), "action");
            assert_true(strcmp(action, "user_created") == 0 || strcmp(action, "gxp_minted") == 0);
            audits++;
            continue;
        }
        assert_string_equal(jstr(e, "event"), "BuyItemEvent");
        int i = 0;
        while (i < 6 && strcmp(jstr(e, "correlationId"), cids[i]) != 0)
            i++;
        assert_true(i < 6);
        assert_false(seen[i]);
        seen[i] = true;
        assert_int_equal(jint(e, "userId"), user);
        json_t *data = json_object_get(e, "data");
        assert_non_null(data);
        assert_int_equal(jint(data, "userId"), user);
        assert_int_equal(jint(data, "itemId"), i < 4 ? item : free_item);
        assert_int_equal(jint(data, "userItemId"), user_items[i]);
        assert_iso8601_ms(jstr(e, "occurredAt"));
        assert_iso8601_ms(jstr(e, "storedAt"));
    }
    assert_int_equal(audits, 2);
    http_res_free(&r);
    /* The broker's copy carried SPEC §4's properties: what eventlog stored came from them. */
    assert_int_equal(sql_ll(W.eventlog,
                            "SELECT count(*) FROM event WHERE event_name ="
                            " 'BuyItemEvent' AND user_id = %lld",
                            user),
                     6);
}

static void events_committed_while_eventlog_is_down_all_arrive_once(void **state)
{
    (void)state;
    static struct load l;
    load_prepare(&l, 500 / THREADS + 1); /* 504 buys */
    long long before = events_count();
    assert_int_equal(world_stop_eventlog(&W), 0);
    load_start(&l);
    load_wait(&l);
    /* They wait on the durable queue (declared by the relay even before eventlog exists). */
    long depth = -1;
    int64_t end = gf_mono_ms() + 10000;
    while ((depth = h_rmq_queue_depth(&W.rmq, "eventlog.events")) < atomic_load(&l.ok) &&
           gf_mono_ms() < end)
        usleep(100 * 1000);
    assert_int_equal(depth, atomic_load(&l.ok));
    int64_t t0 = gf_mono_ms();
    assert_int_equal(world_start_eventlog(&W), 0);
    assert_int_equal(wait_events(&W, before + atomic_load(&l.ok), 30000), 0);
    fprintf(stderr, "eventlog caught up with %d events in %lld ms (start included)\n",
            atomic_load(&l.ok), (long long)(gf_mono_ms() - t0));
}

/* Waits until eventlog-db holds n buy events, for at most 30 s. */
static void wait_stored(long long n)
{
    int64_t end = gf_mono_ms() + 30000;
    while (events_count() < n && gf_mono_ms() < end)
        usleep(20 * 1000);
}

static void broker_connections_cut_mid_run_lose_and_double_nothing(void **state)
{
    (void)state;
    static struct load l;
    /* Far more than will be bought: the load runs until it is stopped after the cuts, however
     * long rabbitmqctl takes (seconds a call on a loaded machine). */
    load_prepare(&l, 100000);
    l.pace_ms = 25; /* ~300 buys/s: leaves CPU for rabbitmqctl, which is slow */
    long long before = events_count();
    load_start(&l);
    /* The relay's connection, then eventlog's, then both, each while buys keep coming. */
    wait_stored(before + 100);
    int relay_cuts = h_rmq_close_connections(&W.rmq, "backend-relay");
    wait_stored(events_count() + 200);
    int consumer_cuts = h_rmq_close_connections(&W.rmq, "eventlog");
    wait_stored(events_count() + 200);
    relay_cuts += h_rmq_close_connections(&W.rmq, "backend-relay");
    consumer_cuts += h_rmq_close_connections(&W.rmq, "eventlog");
    long long stored_at_last_cut = events_count() - before;
    int ok_at_last_cut = atomic_load(&l.ok);
    usleep(500 * 1000);
    atomic_store(&l.stop, true);
    load_wait(&l);
    fprintf(stderr, "connections cut: relay %d, eventlog %d; %lld of %d events stored then\n",
            relay_cuts, consumer_cuts, stored_at_last_cut, atomic_load(&l.ok));
    assert_true(relay_cuts >= 2);
    assert_true(consumer_cuts >= 2);
    /* The cuts happened mid-run: buys were still being made, and more were made after. */
    assert_true(ok_at_last_cut < THREADS * l.per_thread);
    assert_true(stored_at_last_cut < atomic_load(&l.ok));
    assert_int_equal(wait_events(&W, before + atomic_load(&l.ok), 30000), 0);
}

static void unroutable_events_are_retried_until_a_queue_takes_them(void **state)
{
    (void)state;
    long long user = api_create_user(&W, "early-buyer");
    long long item = api_create_item(&W, "early-item", 1);
    api_create_marketplace_item(&W, item, 5);
    api_add_gxp(&W, user, 5, NULL);
    settle_events();
    /* No queue is bound to BuyItemEvent any more: the broker returns what the relay sends. */
    assert_int_equal(world_stop_eventlog(&W), 0);
    assert_int_equal(h_rmq_delete_queue(&W.rmq, "eventlog.events"), 0);
    for (int i = 0; i < 5; i++) {
        struct http_res r;
        assert_int_equal(buy_as_user(user, item, &r), 200);
        http_res_free(&r);
    }
    int64_t end = gf_mono_ms() + 10000;
    while (sql_ll(W.backend, "SELECT count(*) FROM event_outbox WHERE attempts > 0"
                             " AND published_at IS NULL") < 5 &&
           gf_mono_ms() < end)
        usleep(50 * 1000);
    assert_int_equal(sql_ll(W.backend, "SELECT count(*) FROM event_outbox WHERE attempts > 0"
                                       " AND published_at IS NULL"),
                     5);
    /* eventlog declares its queue again; the relay's next attempt is taken. */
    assert_int_equal(world_start_eventlog(&W), 0);
    assert_int_equal(wait_events(&W, 5, 30000), 0);
}

static int setup_events_watchers_on(void **state)
{
    (void)state;
    struct world_options o = {.events = true}; /* gxp's and the backend's watchers, as deployed */
    return world_start(&W, &o);
}

/* How many lines of the log at path contain both needles. */
static int log_lines_with(const char *path, const char *a, const char *b)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f) != NULL)
        n += strstr(line, a) != NULL && strstr(line, b) != NULL;
    fclose(f);
    return n;
}

/* Regression (issue 20, item 4): the watchers' queues were bound to `#` on topic_exchange, so
 * with eventlog's durable queue gone every event was still routable: confirmed, marked
 * published, and never stored. Now only the durable queue decides: the events stay in the
 * outbox, retried, until eventlog declares its queue again, then are stored exactly once. */
static void with_watchers_on_events_no_durable_queue_takes_wait_in_the_outbox(void **state)
{
    (void)state;
    long long user = api_create_user(&W, "watched-buyer");
    long long item = api_create_item(&W, "watched-item", 1);
    api_create_marketplace_item(&W, item, 7);
    api_add_gxp(&W, user, 7, NULL);
    struct http_res r;
    assert_int_equal(buy_as_user(user, item, &r), 200);
    http_res_free(&r);
    assert_int_equal(wait_events(&W, 1, 15000), 0);
    settle_events();
    /* The watchers are there and consuming. */
    assert_true(h_rmq_queue_depth(&W.rmq, "gxp.events.log") >= 0);
    assert_true(h_rmq_queue_depth(&W.rmq, "backend.events.log") >= 0);

    assert_int_equal(world_stop_eventlog(&W), 0);
    assert_int_equal(h_rmq_delete_queue(&W.rmq, "eventlog.events"), 0);
    char cids[5][40];
    for (int i = 0; i < 5; i++) {
        assert_int_equal(buy_as_user(user, item, &r), 200);
        snprintf(cids[i], sizeof cids[i], "%s", jstr(r.json, "correlationId"));
        http_res_free(&r);
    }
    /* Returned (no durable queue), retried, never marked published: wait for two attempts
     * each, so the rows are seen going round at least once more. */
    int64_t end = gf_mono_ms() + 15000;
    while (sql_ll(W.backend, "SELECT count(*) FROM event_outbox WHERE attempts >= 2"
                             " AND published_at IS NULL") < 5 &&
           gf_mono_ms() < end)
        usleep(50 * 1000);
    assert_int_equal(sql_ll(W.backend, "SELECT count(*) FROM event_outbox WHERE attempts >= 2"
                                       " AND published_at IS NULL"),
                     5);
    assert_int_equal(sql_ll(W.backend, "SELECT count(*) FROM event_outbox"
                                       " WHERE published_at IS NOT NULL"
                                       " AND event_name = 'BuyItemEvent'"),
                     1);
    /* The watchers still saw them (a best-effort copy per attempt). */
    end = gf_mono_ms() + 10000;
    while (log_lines_with(W.gxp_log, "event received", cids[4]) < 1 && gf_mono_ms() < end)
        usleep(50 * 1000);
    assert_true(log_lines_with(W.gxp_log, "event received", cids[4]) >= 1);
    assert_true(log_lines_with(W.backend_log, "event received", cids[4]) >= 1);

    /* eventlog declares its queue again; the next attempt is taken, and each event is stored
     * once. */
    assert_int_equal(world_start_eventlog(&W), 0);
    assert_int_equal(wait_events(&W, 6, 90000), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(
            sql_ll(W.eventlog, "SELECT count(*) FROM event WHERE message_id = '%s'", cids[i]), 1);
    end = gf_mono_ms() + 10000;
    while (sql_ll(W.backend, "SELECT count(*) FROM event_outbox WHERE published_at IS NULL") > 0 &&
           gf_mono_ms() < end)
        usleep(50 * 1000);
    assert_int_equal(
        sql_ll(W.backend, "SELECT count(*) FROM event_outbox WHERE published_at IS NULL"), 0);

    /* Deleted under a running eventlog, the queue comes back by itself: the broker cancels
     * eventlog's consumer, which reconnects and declares it again. */
    assert_int_equal(h_rmq_delete_queue(&W.rmq, "eventlog.events"), 0);
    end = gf_mono_ms() + 15000;
    while (h_rmq_queue_depth(&W.rmq, "eventlog.events") < 0 && gf_mono_ms() < end)
        usleep(100 * 1000);
    assert_true(h_rmq_queue_depth(&W.rmq, "eventlog.events") >= 0);
    assert_int_equal(buy_as_user(user, item, &r), 200);
    http_res_free(&r);
    assert_int_equal(wait_events(&W, 7, 30000), 0);
}

static void garbage_on_the_queue_is_dead_lettered_and_the_consumer_carries_on(void **state)
{
    (void)state;
    struct gf_amqp_options o = {.url = W.rmq.url, .name = "test-garbage", .timeout_ms = 5000};
    enum gf_status st;
    struct gf_amqp_conn *c = gf_amqp_connect(&o, &st);
    assert_non_null(c);
    assert_int_equal(gf_amqp_confirm_select(c), GF_OK);
    static const unsigned char junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x80};
    struct gf_amqp_message m = {.exchange = GF_EVENTS_EXCHANGE,
                                .routing_key = GF_EVENT_BUY_ITEM,
                                .body = junk,
                                .len = sizeof junk,
                                .content_type = GF_EVENTS_CONTENT_TYPE,
                                .type = GF_EVENT_BUY_ITEM,
                                .message_id = "not-a-uuid"};
    assert_int_equal(gf_amqp_publish(c, &m, 1, 5000), GF_OK);
    assert_int_equal(m.outcome, GF_AMQP_CONFIRMED);
    gf_amqp_close(c);

    int64_t end = gf_mono_ms() + 10000;
    while (h_rmq_queue_depth(&W.rmq, "eventlog.events.dead") != 1 && gf_mono_ms() < end)
        usleep(100 * 1000);
    assert_int_equal(h_rmq_queue_depth(&W.rmq, "eventlog.events.dead"), 1);
    /* Still serving: the next buy is stored. */
    long long user = api_create_user(&W, "after-garbage");
    long long item = api_create_item(&W, "after-item", 0);
    api_create_marketplace_item(&W, item, 1);
    char body[96];
    snprintf(body, sizeof body, "{\"userId\":%lld,\"itemId\":%lld}", user, item);
    struct http_res r;
    assert_int_equal(http(&W, "POST", "/marketplace/item/buy", body, NULL, &r), 200);
    http_res_free(&r);
    assert_int_equal(wait_events(&W, 1, 15000), 0);
    assert_int_equal(h_rmq_queue_depth(&W.rmq, "eventlog.events.dead"), 1);
}

static void a_backend_killed_between_commit_and_publish_publishes_after_restart(void **state)
{
    (void)state;
    long long user = api_create_user(&W, "crash-buyer");
    long long item = api_create_item(&W, "crash-item", 2);
    api_create_marketplace_item(&W, item, 10);
    api_add_gxp(&W, user, 20, NULL);
    settle_events();
    /* A backend whose relay commits nothing to the broker: its buys' events stay behind. */
    static const char *const hold[] = {"BACKEND_FAILPOINT_RELAY_HOLD=1", NULL};
    assert_int_equal(world_crash_backend(&W), 0);
    assert_int_equal(world_start_backend(&W, true, hold), 0);
    for (int i = 0; i < 10; i++) {
        struct http_res r;
        assert_int_equal(buy_as_user(user, item, &r), 200);
        http_res_free(&r);
    }
    usleep(500 * 1000);
    assert_int_equal(sql_ll(W.backend, "SELECT count(*) FROM event_outbox"
                                       " WHERE published_at IS NULL"),
                     10);
    assert_int_equal(events_count(), 0);
    /* kill -9 now: committed, never published. The next backend publishes them. */
    static const char *const none[] = {NULL};
    assert_int_equal(world_crash_backend(&W), 0);
    assert_int_equal(world_start_backend(&W, false, none), 0);
    assert_int_equal(wait_events(&W, 10, 15000), 0);
}

static int setup_short_retention(void **state)
{
    (void)state;
    static const char *const env[] = {"BACKEND_OUTBOX_RETENTION_S=1",
                                      "BACKEND_OUTBOX_PRUNE_INTERVAL_MS=200", NULL};
    struct world_options o = {.events = true, .watchers_off = true, .extra_env = env};
    return world_start(&W, &o);
}

static void published_events_are_pruned_after_the_retention_and_pending_ones_kept(void **state)
{
    (void)state;
    long long user = api_create_user(&W, "pruned-buyer");
    long long item = api_create_item(&W, "pruned-item", 0);
    api_create_marketplace_item(&W, item, 10);
    for (int i = 0; i < 5; i++) {
        struct http_res r;
        assert_int_equal(buy_as_user(user, item, &r), 200);
        http_res_free(&r);
    }
    assert_int_equal(wait_events(&W, 5, 15000), 0);
    settle_events();
    /* A pending row (eventlog's queue gone: returned, retried) must outlive the retention. */
    assert_int_equal(world_stop_eventlog(&W), 0);
    assert_int_equal(h_rmq_delete_queue(&W.rmq, "eventlog.events"), 0);
    struct http_res r;
    assert_int_equal(buy_as_user(user, item, &r), 200);
    http_res_free(&r);
    int64_t end = gf_mono_ms() + 15000;
    while (sql_ll(W.backend, "SELECT count(*) FROM event_outbox") > 1 && gf_mono_ms() < end)
        usleep(100 * 1000);
    assert_int_equal(sql_ll(W.backend, "SELECT count(*) FROM event_outbox"), 1);
    usleep(1500 * 1000); /* past the retention: still there, because it is not published */
    assert_int_equal(sql_ll(W.backend, "SELECT count(*) FROM event_outbox"
                                       " WHERE published_at IS NULL"),
                     1);
    assert_int_equal(world_start_eventlog(&W), 0);
    assert_int_equal(wait_events(&W, 6, 30000), 0);
}

/* ---- audit events (AdminActionEvent) ------------------------------------------------------ */

static char *operator_token; /* an operator of its own: id 7, named test-admin-7 */

/* A request as the operator (or with token), under correlation id cid, with one more header
 * (may be NULL). */
static long as(const char *token, const char *method, const char *path, const char *body,
               const char *cid, const char *extra, struct http_res *r)
{
    char cid_h[80];
    snprintf(cid_h, sizeof cid_h, "X-Correlation-Id: %s", cid);
    const char *headers[4] = {world_bearer(token != NULL ? token : operator_token), cid_h, extra,
                              NULL};
    return http(&W, method, path, body, headers, r);
}

/* The audit events eventlog stored under cid: how many, and (exactly one) its data and text. */
static int audits_of(const char *cid, json_t **data, char *text, size_t n)
{
    int count = (int)sql_ll(W.eventlog,
                            "SELECT count(*) FROM event WHERE event_name = 'AdminActionEvent'"
                            " AND correlation_id = '%s'",
                            cid);
    if (count == 1 && data != NULL) {
        char buf[4096];
        sql_text(W.eventlog, buf, sizeof buf,
                 "SELECT data::text FROM event WHERE event_name = 'AdminActionEvent'"
                 " AND correlation_id = '%s'",
                 cid);
        *data = json_loads(buf, 0, NULL);
        assert_non_null(*data);
        sql_text(W.eventlog, text, n,
                 "SELECT text FROM event WHERE event_name = 'AdminActionEvent'"
                 " AND correlation_id = '%s'",
                 cid);
    }
    return count;
}

/* Exactly one audit under cid, of action by the operator; *data is the caller's. */
static json_t *one_audit(const char *cid, const char *action, const char *text)
{
    json_t *d = NULL;
    char t[256];
    if (audits_of(cid, &d, t, sizeof t) != 1)
        fail_msg("%s: not exactly one audit event under %s", action, cid);
    assert_string_equal(jstr(d, "action"), action);
    assert_int_equal(jint(d, "actorId"), 7);
    assert_string_equal(jstr(d, "actorName"), "test-admin-7");
    assert_string_equal(jstr(d, "actorRole"), "admin");
    assert_string_equal(jstr(d, "correlationId"), cid);
    assert_uuid(jstr(d, "eventId"));
    if (text != NULL)
        assert_string_equal(t, text);
    return d;
}

static void every_operator_change_is_audited_once_and_nothing_else_is(void **state)
{
    (void)state;
    operator_token = world_token(&W, GF_ROLE_ADMIN, 7, 0, 3600);
    struct http_res r;
    char cid[12][37], body[256], path[96], text[160];
    for (int i = 0; i < 12; i++)
        new_cid(cid[i]);

    /* The changes, each as the operator under a correlation id of the test's. */
    assert_int_equal(as(NULL, "POST", "/user/create",
                        "{\"name\":\"audited\",\"password\":\"audited-secret-4711\"}", cid[0], NULL,
                        &r),
                     200);
    long long user = jint(r.json, "userId");
    http_res_free(&r);
    assert_int_equal(
        as(NULL, "POST", "/item/create", "{\"name\":\"ledger\",\"cost\":5}", cid[1], NULL, &r),
        200);
    long long item = jint(r.json, "itemId");
    http_res_free(&r);
    snprintf(path, sizeof path, "/item/%lld", item);
    assert_int_equal(as(NULL, "PATCH", path, "{\"cost\":6}", cid[2], "If-Match: \"0\"", &r), 200);
    http_res_free(&r);
    snprintf(body, sizeof body, "{\"itemId\":%lld,\"count\":3}", item);
    assert_int_equal(as(NULL, "POST", "/marketplace/item/create", body, cid[3], NULL, &r), 200);
    long long market = jint(r.json, "marketplaceItemId");
    atomic_fetch_add(&W.stock_created, 3); /* for the invariants */
    http_res_free(&r);
    long long item2 = api_create_item(&W, "quill", 1); /* by the world's operator (id 1) */
    snprintf(body, sizeof body, "{\"userId\":%lld,\"itemId\":%lld,\"count\":2}", user, item2);
    assert_int_equal(as(NULL, "POST", "/user/item/create", body, cid[4], NULL, &r), 200);
    long long user_item2 = jint(r.json, "userItemId");
    atomic_fetch_add(&W.stock_created, 2);
    http_res_free(&r);
    snprintf(body, sizeof body, "{\"userId\":%lld,\"amount\":100}", user);
    assert_int_equal(as(NULL, "POST", "/user/gxp/add", body, cid[5], NULL, &r), 200);
    http_res_free(&r);
    assert_int_equal(wait_until_finalized(&W, cid[5], 10000), 0);
    snprintf(body, sizeof body, "{\"userId\":%lld,\"itemId\":%lld}", user, item);
    assert_int_equal(as(NULL, "POST", "/marketplace/item/buy", body, cid[6], NULL, &r), 200);
    long long bought = jint(json_object_get(r.json, "buyItemResponse"), "userItemId");
    http_res_free(&r);
    snprintf(body, sizeof body, "{\"userId\":%lld,\"newPassword\":\"audited-second-0815\"}", user);
    assert_int_equal(as(NULL, "POST", "/auth/password", body, cid[7], NULL, &r), 200);
    http_res_free(&r);

    /* What is not audited: the user's own buy; refusals (403, 409, 412); a buy for a user
     * without the GXP (409 insufficient_gxp); an Idempotency-Key replay. */
    char *user_token = world_token(&W, GF_ROLE_USER, user, 0, 3600);
    snprintf(body, sizeof body, "{\"userId\":%lld,\"itemId\":%lld}", user, item);
    assert_int_equal(as(user_token, "POST", "/marketplace/item/buy", body, cid[8], NULL, &r), 200);
    http_res_free(&r);
    char refused[6][37];
    for (int i = 0; i < 6; i++)
        new_cid(refused[i]);
    assert_int_equal(as(user_token, "POST", "/item/create", "{\"name\":\"nope\",\"cost\":1}",
                        refused[0], NULL, &r),
                     403);
    http_res_free(&r);
    assert_int_equal(
        as(NULL, "POST", "/user/create", "{\"name\":\"audited\"}", refused[1], NULL, &r), 409);
    http_res_free(&r);
    assert_int_equal(
        as(NULL, "PATCH", path, "{\"name\":\"stale\"}", refused[2], "If-Match: \"0\"", &r), 412);
    http_res_free(&r);
    long long poor = api_create_user(&W, "poor");
    snprintf(body, sizeof body, "{\"userId\":%lld,\"itemId\":%lld}", poor, item);
    assert_int_equal(as(NULL, "POST", "/marketplace/item/buy", body, refused[3], NULL, &r), 409);
    assert_string_equal(jstr(r.json, "error"), "insufficient_gxp");
    http_res_free(&r);
    assert_int_equal(as(NULL, "POST", "/item/create", "{\"name\":\"keyed\",\"cost\":2}", cid[9],
                        "Idempotency-Key: audit-key-1", &r),
                     200);
    long long keyed = jint(r.json, "itemId");
    http_res_free(&r);
    assert_int_equal(as(NULL, "POST", "/item/create", "{\"name\":\"keyed\",\"cost\":2}", refused[4],
                        "Idempotency-Key: audit-key-1", &r),
                     200);
    assert_non_null(http_header(&r, "Idempotent-Replayed", text, sizeof text));
    assert_int_equal(jint(r.json, "itemId"), keyed);
    http_res_free(&r);
    snprintf(body, sizeof body, "{\"userId\":%lld,\"amount\":5}", user);
    assert_int_equal(
        as(NULL, "POST", "/user/gxp/add", body, cid[10], "Idempotency-Key: mint-1", &r), 200);
    http_res_free(&r);
    assert_int_equal(
        as(NULL, "POST", "/user/gxp/add", body, refused[5], "Idempotency-Key: mint-1", &r), 200);
    http_res_free(&r);
    /* A correlation id a client sends twice names two changes: both are audited. */
    assert_int_equal(
        as(NULL, "POST", "/item/create", "{\"name\":\"twin-a\",\"cost\":1}", cid[11], NULL, &r),
        200);
    http_res_free(&r);
    assert_int_equal(
        as(NULL, "POST", "/item/create", "{\"name\":\"twin-b\",\"cost\":1}", cid[11], NULL, &r),
        200);
    http_res_free(&r);

    /* Everything is in eventlog once the outbox is published and the queue drained. */
    assert_int_equal(wait_events(&W, 2, 15000), 0);
    settle_events();
    assert_int_equal(sql_ll(W.eventlog, "SELECT count(*) FROM event"
                                        " WHERE event_name = 'AdminActionEvent'"),
                     sql_ll(W.backend, "SELECT count(*) FROM event_outbox"
                                       " WHERE event_name = 'AdminActionEvent'"));

    json_t *d;
    char want[160];
    snprintf(want, sizeof want, "admin test-admin-7 (id 7) created user %lld", user);
    d = one_audit(cid[0], "user_created", want);
    assert_int_equal(jint(d, "userId"), user);
    assert_int_equal(jint(d, "targetId"), user);
    json_decref(d);
    d = one_audit(cid[1], "item_created", NULL);
    assert_int_equal(jint(d, "targetId"), item);
    assert_int_equal(jint(d, "itemId"), item);
    assert_int_equal(jint(d, "cost"), 5);
    assert_int_equal(jint(d, "userId"), 0);
    json_decref(d);
    snprintf(want, sizeof want, "admin test-admin-7 (id 7) changed cost of item %lld (version 1)",
             item);
    d = one_audit(cid[2], "item_changed", want);
    assert_int_equal(jint(d, "version"), 1);
    assert_int_equal(jint(d, "cost"), 6);
    assert_int_equal(json_array_size(jarr(d, "fields")), 1);
    assert_string_equal(json_string_value(json_array_get(jarr(d, "fields"), 0)), "cost");
    json_decref(d);
    assert_int_equal(sql_ll(W.eventlog,
                            "SELECT count(*) FROM event WHERE correlation_id = '%s'"
                            " AND user_id IS NULL",
                            cid[2]),
                     1);
    d = one_audit(cid[3], "marketplace_item_created", NULL);
    assert_int_equal(jint(d, "targetId"), market);
    assert_int_equal(jint(d, "itemId"), item);
    assert_int_equal(jint(d, "count"), 3);
    json_decref(d);
    d = one_audit(cid[4], "user_item_created", NULL);
    assert_int_equal(jint(d, "targetId"), user_item2);
    assert_int_equal(jint(d, "userId"), user);
    assert_int_equal(jint(d, "itemId"), item2);
    assert_int_equal(jint(d, "count"), 2);
    json_decref(d);
    snprintf(want, sizeof want, "admin test-admin-7 (id 7) minted 100 GXP for user %lld", user);
    d = one_audit(cid[5], "gxp_minted", want);
    assert_int_equal(jint(d, "amount"), 100);
    json_decref(d);
    d = one_audit(cid[6], "item_bought_for_user", NULL);
    assert_int_equal(jint(d, "userId"), user);
    assert_int_equal(jint(d, "itemId"), item);
    assert_int_equal(jint(d, "targetId"), bought);
    assert_int_equal(jint(d, "cost"), 6);
    json_decref(d);
    assert_int_equal(sql_ll(W.eventlog,
                            "SELECT count(*) FROM event WHERE correlation_id = '%s'"
                            " AND event_name = 'BuyItemEvent'",
                            cid[6]),
                     1);
    d = one_audit(cid[7], "password_set", NULL);
    assert_int_equal(jint(d, "userId"), user);
    json_decref(d);
    assert_int_equal(sql_ll(W.eventlog, "SELECT count(*) FROM event WHERE data::text LIKE"
                                        " '%%audited-second%%' OR text LIKE '%%audited-second%%'"
                                        " OR data::text LIKE '%%audited-secret%%'"),
                     0);
    assert_int_equal(audits_of(cid[8], NULL, NULL, 0), 0); /* the user's own buy */
    assert_int_equal(
        sql_ll(W.eventlog, "SELECT count(*) FROM event WHERE correlation_id = '%s'", cid[8]), 1);
    for (int i = 0; i < 6; i++)
        if (audits_of(refused[i], NULL, NULL, 0) != 0)
            fail_msg("refused or replayed request %d was audited", i);
    d = one_audit(cid[9], "item_created", NULL);
    json_decref(d);
    d = one_audit(cid[10], "gxp_minted", NULL);
    assert_int_equal(jint(d, "amount"), 5);
    json_decref(d);
    assert_int_equal(audits_of(cid[11], NULL, NULL, 0), 2);

    /* GET /eventlog/events: the user sees the changes made for it, never an item's; an admin
     * sees the item change, without a user. */
    struct backend_world ev = {.http_port = W.eventlog_port, .admin_token = user_token};
    assert_int_equal(http(&ev, "GET", "/eventlog/events?limit=100", NULL, NULL, &r), 200);
    json_t *events = jarr(r.json, "events");
    int user_audits = 0;
    for (size_t k = 0; k < json_array_size(events); k++) {
        json_t *e = json_array_get(events, k);
        assert_int_equal(jint(e, "userId"), user);
        if (strcmp(jstr(e, "event"), "AdminActionEvent") == 0)
            user_audits++;
    }
    assert_int_equal(user_audits, 6); /* created, user item, 2 mints, buy for it, password */
    http_res_free(&r);
    snprintf(path, sizeof path, "/eventlog/events?correlationId=%s", cid[2]);
    assert_int_equal(http_eventlog(&W, path, &r), 200);
    events = jarr(r.json, "events");
    assert_int_equal(json_array_size(events), 1);
    assert_true(json_is_null(json_object_get(json_array_get(events, 0), "userId")));
    http_res_free(&r);
    free(user_token);
    free(operator_token);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(every_successful_buy_is_stored_once_with_its_fields,
                                        setup_events, world_check_and_stop),
        cmocka_unit_test_setup_teardown(events_committed_while_eventlog_is_down_all_arrive_once,
                                        setup_events, world_check_and_stop),
        cmocka_unit_test_setup_teardown(broker_connections_cut_mid_run_lose_and_double_nothing,
                                        setup_events, world_check_and_stop),
        cmocka_unit_test_setup_teardown(unroutable_events_are_retried_until_a_queue_takes_them,
                                        setup_events, world_check_and_stop),
        cmocka_unit_test_setup_teardown(
            with_watchers_on_events_no_durable_queue_takes_wait_in_the_outbox,
            setup_events_watchers_on, world_check_and_stop),
        cmocka_unit_test_setup_teardown(
            garbage_on_the_queue_is_dead_lettered_and_the_consumer_carries_on, setup_events,
            world_check_and_stop),
        cmocka_unit_test_setup_teardown(
            a_backend_killed_between_commit_and_publish_publishes_after_restart, setup_events,
            world_check_and_stop),
        cmocka_unit_test_setup_teardown(
            published_events_are_pruned_after_the_retention_and_pending_ones_kept,
            setup_short_retention, world_check_and_stop),
        cmocka_unit_test_setup_teardown(every_operator_change_is_audited_once_and_nothing_else_is,
                                        setup_events, world_check_and_stop),
    };
    if (getenv("GF_TEST_FILTER"))
        cmocka_set_test_filter(getenv("GF_TEST_FILTER"));
    return cmocka_run_group_tests_name("events", tests, NULL, NULL);
}
