/* Events end to end (SPEC §4), against the real backend, gxp and eventlog, three PostgreSQL
 * clusters and the run's RabbitMQ node: every successful buy is stored exactly once in the
 * event log — with eventlog down for a while, with broker connections cut mid-run, with a
 * queue missing (unroutable events are retried, also with the watchers of gxp and the backend
 * on), with garbage on the queue, and with the backend killed between the commit of its events
 * and their publication. A world per test; every test ends with the invariants, events
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

static int setup_events(void **state)
{
    (void)state;
    struct world_options o = {.events = true, .watchers_off = true};
    return world_start(&W, &o);
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
    char body[96];
    snprintf(body, sizeof body, "{\"userId\":%lld,\"itemId\":%lld}", l->users[a->t],
             l->items[a->t]);
    for (int i = 0; i < l->per_thread && !atomic_load(&l->stop); i++) {
        struct http_res r;
        long st = http(&W, "POST", "/marketplace/item/buy", body, NULL, &r);
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
    return sql_ll(W.eventlog, "SELECT count(*) FROM event");
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
        char body[96];
        snprintf(body, sizeof body, "{\"userId\":%lld,\"itemId\":%lld}", user,
                 i < 4 ? item : free_item);
        struct http_res r;
        assert_int_equal(http(&W, "POST", "/marketplace/item/buy", body, NULL, &r), 200);
        snprintf(cids[i], sizeof cids[i], "%s", jstr(r.json, "correlationId"));
        user_items[i] = jint(json_object_get(r.json, "buyItemResponse"), "userItemId");
        http_res_free(&r);
    }
    /* A refused buy (out of stock) has no event. */
    char body[96];
    snprintf(body, sizeof body, "{\"userId\":%lld,\"itemId\":%lld}", user, free_item);
    struct http_res r;
    assert_int_equal(http(&W, "POST", "/marketplace/item/buy", body, NULL, &r), 409);
    http_res_free(&r);

    assert_int_equal(wait_events(&W, 6, 15000), 0);
    char path[128];
    snprintf(path, sizeof path, "/eventlog/events?userId=%lld", user);
    assert_int_equal(http_eventlog(&W, path, &r), 200);
    json_t *events = jarr(r.json, "events");
    assert_int_equal(json_array_size(events), 6);
    bool seen[6] = {false};
    for (size_t k = 0; k < 6; k++) {
        /* The list is in store order, newest first. Two relay workers may store two quick
         * buys in either order, so each event is matched to its buy by correlation id. */
        json_t *e = json_array_get(events, k);
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

/* Waits until eventlog-db holds n events or the load is over. */
static void wait_stored(long long n, struct load *l)
{
    int64_t end = gf_mono_ms() + 30000;
    while (events_count() < n && gf_mono_ms() < end &&
           atomic_load(&l->ok) < THREADS * l->per_thread)
        usleep(20 * 1000);
}

static void broker_connections_cut_mid_run_lose_and_double_nothing(void **state)
{
    (void)state;
    static struct load l;
    load_prepare(&l, 2000); /* more than will be bought: the load is stopped after the cuts */
    l.pace_ms = 25;         /* ~300 buys/s: leaves CPU for rabbitmqctl, which is slow */
    load_start(&l);
    /* The relay's connection, then eventlog's, then both, each while buys keep coming. */
    wait_stored(100, &l);
    int relay_cuts = h_rmq_close_connections(&W.rmq, "backend-relay");
    wait_stored(300, &l);
    int consumer_cuts = h_rmq_close_connections(&W.rmq, "eventlog");
    wait_stored(500, &l);
    relay_cuts += h_rmq_close_connections(&W.rmq, "backend-relay");
    consumer_cuts += h_rmq_close_connections(&W.rmq, "eventlog");
    long long stored_at_last_cut = events_count();
    usleep(500 * 1000);
    atomic_store(&l.stop, true);
    load_wait(&l);
    fprintf(stderr, "connections cut: relay %d, eventlog %d; %lld of %d events stored then\n",
            relay_cuts, consumer_cuts, stored_at_last_cut, atomic_load(&l.ok));
    assert_true(relay_cuts >= 2);
    assert_true(consumer_cuts >= 2);
    assert_true(stored_at_last_cut < atomic_load(&l.ok)); /* the cuts happened mid-run */
    assert_int_equal(wait_events(&W, atomic_load(&l.ok), 30000), 0);
}

static void unroutable_events_are_retried_until_a_queue_takes_them(void **state)
{
    (void)state;
    long long user = api_create_user(&W, "early-buyer");
    long long item = api_create_item(&W, "early-item", 1);
    api_create_marketplace_item(&W, item, 5);
    api_add_gxp(&W, user, 5, NULL);
    /* No queue is bound to BuyItemEvent any more: the broker returns what the relay sends. */
    assert_int_equal(world_stop_eventlog(&W), 0);
    assert_int_equal(h_rmq_delete_queue(&W.rmq, "eventlog.events"), 0);
    for (int i = 0; i < 5; i++) {
        char body[96];
        snprintf(body, sizeof body, "{\"userId\":%lld,\"itemId\":%lld}", user, item);
        struct http_res r;
        assert_int_equal(http(&W, "POST", "/marketplace/item/buy", body, NULL, &r), 200);
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
    char body[96];
    snprintf(body, sizeof body, "{\"userId\":%lld,\"itemId\":%lld}", user, item);
    struct http_res r;
    assert_int_equal(http(&W, "POST", "/marketplace/item/buy", body, NULL, &r), 200);
    http_res_free(&r);
    assert_int_equal(wait_events(&W, 1, 15000), 0);
    /* The watchers are there and consuming. */
    assert_true(h_rmq_queue_depth(&W.rmq, "gxp.events.log") >= 0);
    assert_true(h_rmq_queue_depth(&W.rmq, "backend.events.log") >= 0);

    assert_int_equal(world_stop_eventlog(&W), 0);
    assert_int_equal(h_rmq_delete_queue(&W.rmq, "eventlog.events"), 0);
    char cids[5][40];
    for (int i = 0; i < 5; i++) {
        assert_int_equal(http(&W, "POST", "/marketplace/item/buy", body, NULL, &r), 200);
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
                                       " WHERE published_at IS NOT NULL"),
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
    assert_int_equal(http(&W, "POST", "/marketplace/item/buy", body, NULL, &r), 200);
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
    /* A backend whose relay commits nothing to the broker: its buys' events stay behind. */
    static const char *const hold[] = {"BACKEND_FAILPOINT_RELAY_HOLD=1", NULL};
    assert_int_equal(world_crash_backend(&W), 0);
    assert_int_equal(world_start_backend(&W, true, hold), 0);
    for (int i = 0; i < 10; i++) {
        char body[96];
        snprintf(body, sizeof body, "{\"userId\":%lld,\"itemId\":%lld}", user, item);
        struct http_res r;
        assert_int_equal(http(&W, "POST", "/marketplace/item/buy", body, NULL, &r), 200);
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
    char body[96];
    snprintf(body, sizeof body, "{\"userId\":%lld,\"itemId\":%lld}", user, item);
    for (int i = 0; i < 5; i++) {
        struct http_res r;
        assert_int_equal(http(&W, "POST", "/marketplace/item/buy", body, NULL, &r), 200);
        http_res_free(&r);
    }
    assert_int_equal(wait_events(&W, 5, 15000), 0);
    /* A pending row (eventlog's queue gone: returned, retried) must outlive the retention. */
    assert_int_equal(world_stop_eventlog(&W), 0);
    assert_int_equal(h_rmq_delete_queue(&W.rmq, "eventlog.events"), 0);
    struct http_res r;
    assert_int_equal(http(&W, "POST", "/marketplace/item/buy", body, NULL, &r), 200);
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
    };
    if (getenv("GF_TEST_FILTER"))
        cmocka_set_test_filter(getenv("GF_TEST_FILTER"));
    return cmocka_run_group_tests_name("events", tests, NULL, NULL);
}
