/* The backend as the coordinator of SPEC §5's two-phase commit, against the real gxp and both
 * databases: concurrent buys sell exactly the stock and never overdraw a balance; the race
 * that broke the original (gxp's timeout against a late local commit) has exactly one
 * outcome on both sides; ResolveTransaction answers the decision that stands; gxp down means
 * 503 and no change. A world per test; every test ends with the invariants across both
 * databases. */
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
#include "gf/clock.h"

static int setup_default(void **state)
{
    (void)state;
    return world_start(&W, NULL);
}

/* 200 buyers at once straight at one replica: more than its admission limit (36), which would
 * answer some 503 overloaded at once (tests/integration/hostile_test.c covers that). These
 * tests are about what concurrent buys do to the data, so every request gets a handler:
 * the limit is all 48 threads, the writes run on them (no workers, which would leave the
 * threads free to read the rest and shed it), and the rest wait for a thread. */
static int setup_every_request_handled(void **state)
{
    (void)state;
    static const char *const env[] = {"BACKEND_HTTP_MAX_INFLIGHT=48", "BACKEND_HTTP_WORKERS=0",
                                      NULL};
    struct world_options o = {.extra_env = env};
    return world_start(&W, &o);
}

/* The race: each buy pauses 3 s between its prepare and its local commit; gxp asks about a
 * transaction pending for 500 ms. */
static int setup_slow_buys(void **state)
{
    (void)state;
    struct world_options o = {.failpoints = true,
                              .buy_pause_ms = 3000,
                              .pending_timeout_ms = 500,
                              .resolve_interval_ms = 100};
    return world_start(&W, &o);
}

/* Slow buys that gxp would not time out. */
static int setup_slow_buys_patient_gxp(void **state)
{
    (void)state;
    struct world_options o = {.failpoints = true, .buy_pause_ms = 1500};
    return world_start(&W, &o);
}

static int setup_short_timeout(void **state)
{
    (void)state;
    struct world_options o = {.pending_timeout_ms = 500, .resolve_interval_ms = 100};
    return world_start(&W, &o);
}

/* ---- concurrent buyers ---------------------------------------------------------------- */

struct buyer {
    long long user, item;
    const char *cid; /* X-Correlation-Id to send, or NULL */
    pthread_barrier_t *start;
    atomic_bool done;
    /* results */
    long status;
    char code[64];
    char cid_out[40];
    char retry_after[32];
    char replayed[16]; /* Idempotent-Replayed, "" when absent */
    long long user_item;
    char error[256];
};

static void *buy_thread(void *arg)
{
    struct buyer *b = arg;
    char body[96], hdr[96];
    snprintf(body, sizeof body, "{\"userId\":%lld,\"itemId\":%lld}", b->user, b->item);
    snprintf(hdr, sizeof hdr, "X-Correlation-Id: %s", b->cid ? b->cid : "");
    const char *h[] = {hdr, NULL};
    if (b->start)
        pthread_barrier_wait(b->start);
    struct http_res r;
    http(&W, "POST", "/marketplace/item/buy", body, b->cid ? h : NULL, &r);
    b->status = r.status;
    json_t *code = json_object_get(r.json, "error");
    json_t *cid = json_object_get(r.json, "correlationId");
    snprintf(b->code, sizeof b->code, "%s", json_is_string(code) ? json_string_value(code) : "");
    snprintf(b->cid_out, sizeof b->cid_out, "%s",
             json_is_string(cid) ? json_string_value(cid) : "");
    if (http_header(&r, "Retry-After", b->retry_after, sizeof b->retry_after) == NULL)
        b->retry_after[0] = '\0';
    if (http_header(&r, "Idempotent-Replayed", b->replayed, sizeof b->replayed) == NULL)
        b->replayed[0] = '\0';
    json_t *bir = json_object_get(json_object_get(r.json, "buyItemResponse"), "userItemId");
    b->user_item = json_is_integer(bir) ? (long long)json_integer_value(bir) : 0;
    snprintf(b->error, sizeof b->error, "%s%s", r.error, r.json ? "" : r.body);
    http_res_free(&r);
    http_thread_done();
    atomic_store(&b->done, true);
    return NULL;
}

/* Runs n buys at once (one thread and one curl handle each). */
static void buy_all(struct buyer *b, int n)
{
    pthread_t *th = calloc((size_t)n, sizeof *th);
    pthread_barrier_t start;
    assert_non_null(th);
    assert_int_equal(pthread_barrier_init(&start, NULL, (unsigned)n), 0);
    for (int i = 0; i < n; i++) {
        b[i].start = &start;
        assert_int_equal(pthread_create(&th[i], NULL, buy_thread, &b[i]), 0);
    }
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    free(th);
}

/* One buy on this thread; the answer's status. */
static long buy_once(long long user, long long item, struct buyer *out)
{
    memset(out, 0, sizeof *out);
    out->user = user;
    out->item = item;
    buy_thread(out);
    return out->status;
}

static long long gxp_ll(const char *col, long long user)
{
    return sql_ll(W.gxp, "SELECT %s FROM balance WHERE user_id = %lld", col, user);
}

#define BUYERS 200
#define STOCK 50

static void concurrent_buys_of_a_scarce_item_sell_exactly_the_stock(void **state)
{
    (void)state;
    static struct buyer b[BUYERS];
    memset(b, 0, sizeof b);
    long long item = api_create_item(&W, "scarce", 10);
    api_create_marketplace_item(&W, item, STOCK);
    for (int i = 0; i < BUYERS; i++) {
        char name[32];
        snprintf(name, sizeof name, "buyer-%d", i);
        b[i].user = api_create_user(&W, name);
        b[i].item = item;
        api_add_gxp(&W, b[i].user, 100, NULL);
    }
    buy_all(b, BUYERS);
    int ok = 0, out_of_stock = 0;
    for (int i = 0; i < BUYERS; i++) {
        if (b[i].status == 200)
            ok++;
        else if (b[i].status == 409 && strcmp(b[i].code, "out_of_stock") == 0)
            out_of_stock++;
        else
            fprintf(stderr, "buyer %d: %ld %s %s\n", i, b[i].status, b[i].code, b[i].error);
    }
    assert_int_equal(ok, STOCK);
    assert_int_equal(out_of_stock, BUYERS - STOCK);
    assert_int_equal(
        sql_ll(W.backend, "SELECT count FROM marketplace_items WHERE item_id = %lld", item), 0);
    assert_int_equal(
        sql_ll(W.backend, "SELECT sum(count) FROM user_items WHERE item_id = %lld", item), STOCK);
    assert_int_equal(wait_no_pending(&W, 15000), 0);
    for (int i = 0; i < BUYERS; i++) {
        long long want = b[i].status == 200 ? 90 : 100;
        if (gxp_ll("balance", b[i].user) != want || gxp_ll("reserved", b[i].user) != 0)
            fail_msg("buyer %d (%ld): balance %lld reserved %lld, expected %lld and 0", i,
                     b[i].status, gxp_ll("balance", b[i].user), gxp_ll("reserved", b[i].user),
                     want);
        assert_int_equal(sql_ll(W.backend,
                                "SELECT coalesce(sum(count), 0) FROM user_items"
                                " WHERE user_id = %lld",
                                b[i].user),
                         b[i].status == 200 ? 1 : 0);
    }
}

/* backend_buy_stock_take_seconds_count from the backend's /metrics. */
static long long stock_takes(void)
{
    struct http_res r;
    long st = http(&W, "GET", "/metrics", NULL, NULL, &r);
    if (st != 200)
        fail_msg("/metrics answered %ld: %s", st, r.error);
    const char *line = strstr(r.body, "\nbackend_buy_stock_take_seconds_count ");
    if (line == NULL)
        fail_msg("/metrics has no backend_buy_stock_take_seconds_count");
    long long n = strtoll(line + strlen("\nbackend_buy_stock_take_seconds_count "), NULL, 10);
    http_res_free(&r);
    return n;
}

#define HOT_BUYERS 32

/* Buyers of one item queue on its stock row (a conditional UPDATE) instead of losing an
 * optimistic-lock race and running the local transaction again: 32 at once all succeed, each
 * taking the stock exactly once. */
static void buyers_of_one_item_wait_for_the_row_instead_of_retrying(void **state)
{
    (void)state;
    static struct buyer b[HOT_BUYERS];
    memset(b, 0, sizeof b);
    long long item = api_create_item(&W, "hot", 10);
    api_create_marketplace_item(&W, item, 100);
    for (int i = 0; i < HOT_BUYERS; i++) {
        char name[32];
        snprintf(name, sizeof name, "hot-buyer-%d", i);
        b[i].user = api_create_user(&W, name);
        b[i].item = item;
        api_add_gxp(&W, b[i].user, 10, NULL);
    }
    long long takes = stock_takes();
    buy_all(b, HOT_BUYERS);
    for (int i = 0; i < HOT_BUYERS; i++)
        if (b[i].status != 200)
            fail_msg("buyer %d: %ld %s %s", i, b[i].status, b[i].code, b[i].error);
    assert_int_equal(stock_takes() - takes, HOT_BUYERS);
    assert_int_equal(
        sql_ll(W.backend, "SELECT count FROM marketplace_items WHERE item_id = %lld", item),
        100 - HOT_BUYERS);
    assert_int_equal(wait_no_pending(&W, 15000), 0);
    for (int i = 0; i < HOT_BUYERS; i++)
        balance_is(&W, b[i].user, 0, 0);
}

static void concurrent_buys_never_overdraw_a_balance(void **state)
{
    (void)state;
    struct buyer b[10];
    memset(b, 0, sizeof b);
    long long u = api_create_user(&W, "three-buys");
    api_add_gxp(&W, u, 30, NULL);
    long long item = api_create_item(&W, "cost-10", 10);
    api_create_marketplace_item(&W, item, 100);
    for (int i = 0; i < 10; i++)
        b[i].user = u, b[i].item = item;
    buy_all(b, 10);
    int ok = 0, insufficient = 0;
    for (int i = 0; i < 10; i++) {
        if (b[i].status == 200)
            ok++;
        else if (b[i].status == 409 && strcmp(b[i].code, "insufficient_gxp") == 0)
            insufficient++;
        else
            fprintf(stderr, "buy %d: %ld %s %s\n", i, b[i].status, b[i].code, b[i].error);
    }
    assert_int_equal(ok, 3);
    assert_int_equal(insufficient, 7);
    assert_int_equal(wait_no_pending(&W, 15000), 0);
    balance_is(&W, u, 0, 0);
    assert_int_equal(
        sql_ll(W.backend, "SELECT count FROM marketplace_items WHERE item_id = %lld", item), 97);
    assert_int_equal(sql_ll(W.backend, "SELECT count FROM user_items WHERE user_id = %lld", u), 3);
}

/* ---- the race of the original: a timeout against a late commit -------------------------- */

static void a_buy_outliving_the_pending_timeout_is_aborted_on_both_sides(void **state)
{
    (void)state;
    long long u = api_create_user(&W, "late-buyer");
    api_add_gxp(&W, u, 100, NULL);
    long long item = api_create_item(&W, "slow", 10);
    api_create_marketplace_item(&W, item, 5);
    char cid[37];
    new_cid(cid);
    struct buyer b = {.user = u, .item = item, .cid = cid};
    pthread_t th;
    int64_t t0 = gf_mono_ms();
    assert_int_equal(pthread_create(&th, NULL, buy_thread, &b), 0);
    /* gxp's resolver asks during the pause; the backend records 'failed'; gxp aborts —
     * all while the buy still waits to commit. */
    int aborted = -1;
    while (gf_mono_ms() - t0 < 2800 && aborted != 0)
        if (sql_ll(W.gxp,
                   "SELECT count(*) FROM gxp_transaction WHERE correlation_id = '%s'"
                   " AND status = 1",
                   cid) == 1)
            aborted = 0;
        else
            usleep(10 * 1000);
    bool answered_early = atomic_load(&b.done);
    pthread_join(th, NULL);
    assert_int_equal(aborted, 0);
    assert_false(answered_early);
    /* The late commit lost: one outcome on both sides. */
    assert_int_equal(b.status, 409);
    assert_string_equal(b.code, "transaction_aborted");
    assert_string_equal(b.cid_out, cid);
    char state_s[16];
    assert_string_equal(sql_text(W.backend, state_s, sizeof state_s,
                                 "SELECT state FROM transaction_outbox WHERE correlation_id = '%s'",
                                 cid),
                        "failed");
    assert_int_equal(
        sql_ll(W.backend, "SELECT count FROM marketplace_items WHERE item_id = %lld", item), 5);
    assert_int_equal(sql_ll(W.backend, "SELECT count(*) FROM user_items WHERE user_id = %lld", u),
                     0);
    assert_int_equal(
        sql_ll(W.gxp, "SELECT status FROM gxp_transaction WHERE correlation_id = '%s'", cid), 1);
    balance_is(&W, u, 100, 0);
}

/* A client that reuses the correlation id of someone's transaction in flight must not be
 * able to decide it. */
static void a_request_reusing_a_pending_correlation_id_cannot_abort_it(void **state)
{
    (void)state;
    long long a = api_create_user(&W, "victim"), m = api_create_user(&W, "meddler");
    api_add_gxp(&W, a, 100, NULL);
    api_add_gxp(&W, m, 100, NULL);
    long long item = api_create_item(&W, "contested", 10), cheap = api_create_item(&W, "cheap", 3);
    api_create_marketplace_item(&W, item, 5);
    api_create_marketplace_item(&W, cheap, 5);
    char cid[37];
    new_cid(cid);
    /* The victim's buy waits 1.5 s between its prepare and its commit; gxp's timeout is far. */
    struct buyer victim = {.user = a, .item = item, .cid = cid};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, buy_thread, &victim), 0);
    usleep(200 * 1000);
    struct buyer meddler = {.user = m, .item = cheap, .cid = cid};
    buy_thread(&meddler);
    pthread_join(th, NULL);
    assert_true(meddler.status != 200);
    if (victim.status != 200)
        fail_msg("the victim's buy failed: %ld %s (the meddler got %ld %s)", victim.status,
                 victim.code, meddler.status, meddler.code);
    assert_int_equal(wait_no_pending(&W, 15000), 0);
    balance_is(&W, a, 90, 0);
    balance_is(&W, m, 100, 0);
    assert_int_equal(sql_ll(W.backend, "SELECT count(*) FROM user_items WHERE user_id = %lld", m),
                     0);
}

static void resolve_transaction_answers_the_decision_that_stands(void **state)
{
    (void)state;
    long long u = api_create_user(&W, "resolved");
    api_add_gxp(&W, u, 100, NULL);
    long long item = api_create_item(&W, "kept", 10);
    api_create_marketplace_item(&W, item, 5);
    struct buyer b;
    assert_int_equal(buy_once(u, item, &b), 200);
    assert_int_equal(wait_until_finalized(&W, b.cid_out, 15000), 0);
    usleep(1000 * 1000); /* well past the pending timeout: the resolver had its chance */
    char before[1200], after[1200], st[32];
    snapshot(&W, true, before, sizeof before);
    /* A committed buy asked about later: succeeded, nothing changes. */
    assert_int_equal(rpc_resolve(&W, b.cid_out, st, sizeof st), GRPC_STATUS_OK);
    assert_string_equal(st, "succeeded");
    snapshot(&W, true, after, sizeof after);
    assert_string_equal(before, after);
    balance_is(&W, u, 90, 0);
    assert_int_equal(
        sql_ll(W.gxp, "SELECT status FROM gxp_transaction WHERE correlation_id = '%s'", b.cid_out),
        2);

    /* An id nobody decided: failed, recorded once. */
    char unknown[37];
    new_cid(unknown);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(rpc_resolve(&W, unknown, st, sizeof st), GRPC_STATUS_OK);
        assert_string_equal(st, "failed");
        assert_int_equal(sql_ll(W.backend,
                                "SELECT count(*) FROM transaction_outbox WHERE correlation_id ="
                                " '%s' AND state = 'failed'",
                                unknown),
                         1);
    }
    /* Not an id. */
    assert_int_equal(rpc_resolve(&W, "not-a-uuid", NULL, 0), GRPC_STATUS_INVALID_ARGUMENT);
    assert_int_equal(rpc_resolve(&W, "", NULL, 0), GRPC_STATUS_INVALID_ARGUMENT);
    assert_int_equal(rpc_resolve(&W, "'; DROP TABLE transaction_outbox; --", NULL, 0),
                     GRPC_STATUS_INVALID_ARGUMENT);
}

/* A client resends its X-Correlation-Id (a tracing id) after losing an answer: the same buy
 * again is answered with the outcome of the first — replayed, the same user item, nothing
 * bought twice — and a different buy under that id is refused (409 correlation_id_reused).
 * Every non-replayed 200 is an item delivered and paid. */
static void a_reused_correlation_id_never_answers_a_buy_that_did_not_happen(void **state)
{
    (void)state;
    long long u = api_create_user(&W, "reuser");
    api_add_gxp(&W, u, 100, NULL);
    long long item = api_create_item(&W, "twice", 10);
    long long other = api_create_item(&W, "twice-other", 10);
    api_create_marketplace_item(&W, item, 5);
    api_create_marketplace_item(&W, other, 5);
    char cid[37];
    new_cid(cid);
    struct buyer b1 = {.user = u, .item = item, .cid = cid}, b2 = b1, b3 = b1;
    b3.item = other;
    buy_thread(&b1);
    assert_int_equal(b1.status, 200);
    assert_string_equal(b1.replayed, "");
    assert_int_equal(wait_until_finalized(&W, cid, 15000), 0);
    buy_thread(&b2);
    if (b2.status != 200 || strcmp(b2.replayed, "true") != 0 || b2.user_item != b1.user_item)
        fail_msg("the same buy resent with its correlation id: %ld %s replayed=%s", b2.status,
                 b2.code, b2.replayed);
    buy_thread(&b3);
    assert_int_equal(b3.status, 409);
    assert_string_equal(b3.code, "correlation_id_reused");
    assert_int_equal(wait_no_pending(&W, 15000), 0);
    long long items = sql_ll(W.backend,
                             "SELECT coalesce(sum(count), 0) FROM user_items"
                             " WHERE user_id = %lld",
                             u);
    assert_int_equal(items, 1);
    balance_is(&W, u, 90, 0);
}

/* A client that adds GXP and buys right after the 200 must not be refused for lack of the
 * GXP it was just told were added. A fresh world: the first decisions replicate slowest. */
static void gxp_added_is_spendable_as_soon_as_the_add_answers(void **state)
{
    (void)state;
    long long item = api_create_item(&W, "right-away", 10);
    api_create_marketplace_item(&W, item, 10);
    int refused = 0;
    for (int i = 0; i < 5; i++) {
        char name[32], body[96];
        snprintf(name, sizeof name, "eager-%d", i);
        long long u = api_create_user(&W, name);
        struct http_res r;
        snprintf(body, sizeof body, "{\"userId\":%lld,\"amount\":10}", u);
        http(&W, "POST", "/user/gxp/add", body, NULL, &r);
        assert_ok(&r, "correlationId");
        http_res_free(&r);
        struct buyer b;
        if (buy_once(u, item, &b) != 200) {
            fprintf(stderr, "buy %d right after add: %ld %s\n", i, b.status, b.code);
            refused++;
        }
    }
    assert_int_equal(refused, 0);
}

/* ---- gxp down ----------------------------------------------------------------------------- */

static void with_gxp_down_a_buy_is_503_and_changes_nothing_then_works_again(void **state)
{
    (void)state;
    long long u = api_create_user(&W, "patient");
    api_add_gxp(&W, u, 100, NULL);
    long long item = api_create_item(&W, "later", 10);
    api_create_marketplace_item(&W, item, 5);
    assert_int_equal(world_stop_gxp(&W), 0);

    char before[1200], after[1200];
    snapshot(&W, false, before, sizeof before);
    struct buyer b;
    buy_once(u, item, &b);
    if (b.status != 503 && b.status != 504)
        fail_msg("buy with gxp down: %ld %s %s", b.status, b.code, b.error);
    assert_true(b.retry_after[0] != '\0');
    assert_true(atoi(b.retry_after) >= 1);
    struct http_res r;
    char path[64];
    snprintf(path, sizeof path, "/user/gxp?userId=%lld", u);
    http(&W, "GET", path, NULL, NULL, &r);
    assert_true(r.status == 503 || r.status == 504);
    assert_error(&r, r.status, NULL);
    http_res_free(&r);
    char body[96];
    snprintf(body, sizeof body, "{\"userId\":%lld,\"amount\":5}", u);
    http(&W, "POST", "/user/gxp/add", body, NULL, &r);
    assert_true(r.status == 503 || r.status == 504);
    assert_error(&r, r.status, NULL);
    http_res_free(&r);
    http(&W, "POST", "/user/create", "{\"name\":\"while-gxp-is-down\"}", NULL, &r);
    assert_true(r.status == 503 || r.status == 504);
    assert_error(&r, r.status, NULL);
    http_res_free(&r);
    snapshot(&W, false, after, sizeof after);
    assert_string_equal(before, after);
    /* Local reads keep working. */
    http(&W, "GET", "/item", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    http_res_free(&r);

    assert_int_equal(world_start_gxp(&W), 0);
    int64_t end = gf_mono_ms() + 20000;
    while (buy_once(u, item, &b) != 200 && gf_mono_ms() < end) {
        if (b.status != 503 && b.status != 504)
            fail_msg("buy after gxp restart: %ld %s %s", b.status, b.code, b.error);
        usleep(200 * 1000);
    }
    assert_int_equal(b.status, 200);
    assert_int_equal(wait_until_finalized(&W, b.cid_out, 15000), 0);
    balance_is(&W, u, 90, 0);
    assert_int_equal(
        sql_ll(W.backend, "SELECT count FROM marketplace_items WHERE item_id = %lld", item), 4);
    api_create_user(&W, "after-gxp-is-back");
}

/* A backend that kept trying gxp through a long outage reaches it again within seconds of its
 * return: gRPC's own reconnect back-off grows to 120 s, and after 40 s of outage the backend
 * answered 503 for 26 s more; the client caps it at GF_GRPC_CLIENT_MAX_BACKOFF_MS (1 s). */
static void after_a_long_gxp_outage_the_backend_reconnects_within_seconds(void **state)
{
    (void)state;
    long long u = api_create_user(&W, "reconnect");
    api_add_gxp(&W, u, 10, NULL);
    char path[64];
    snprintf(path, sizeof path, "/user/gxp?userId=%lld", u);
    assert_int_equal(world_stop_gxp(&W), 0);
    /* 30 s of calls that fail: with gRPC's default back-off the next attempt would then be
     * 10 s or more away. */
    int64_t end = gf_mono_ms() + 30000;
    struct http_res r;
    while (gf_mono_ms() < end) {
        http(&W, "GET", path, NULL, NULL, &r);
        if (r.status != 503 && r.status != 504)
            fail_msg("GET %s with gxp down: %ld %s", path, r.status, r.body);
        http_res_free(&r);
        usleep(500 * 1000);
    }
    assert_int_equal(world_start_gxp(&W), 0); /* gxp answers its /readyz */
    int64_t back = gf_mono_ms();
    long status = 0;
    while (status != 200 && gf_mono_ms() - back < 20000) {
        http(&W, "GET", path, NULL, NULL, &r);
        status = r.status;
        http_res_free(&r);
        if (status != 200)
            usleep(100 * 1000);
    }
    int64_t took = gf_mono_ms() - back;
    printf("the backend reached gxp again %lld ms after gxp was ready\n", (long long)took);
    assert_int_equal(status, 200);
    if (took > 4000)
        fail_msg("the backend took %lld ms to reach gxp again (at most 4000)", (long long)took);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(concurrent_buys_of_a_scarce_item_sell_exactly_the_stock,
                                        setup_every_request_handled, world_check_and_stop),
        cmocka_unit_test_setup_teardown(buyers_of_one_item_wait_for_the_row_instead_of_retrying,
                                        setup_every_request_handled, world_check_and_stop),
        cmocka_unit_test_setup_teardown(concurrent_buys_never_overdraw_a_balance,
                                        setup_every_request_handled, world_check_and_stop),
        cmocka_unit_test_setup_teardown(
            a_buy_outliving_the_pending_timeout_is_aborted_on_both_sides, setup_slow_buys,
            world_check_and_stop),
        cmocka_unit_test_setup_teardown(a_request_reusing_a_pending_correlation_id_cannot_abort_it,
                                        setup_slow_buys_patient_gxp, world_check_and_stop),
        cmocka_unit_test_setup_teardown(resolve_transaction_answers_the_decision_that_stands,
                                        setup_short_timeout, world_check_and_stop),
        cmocka_unit_test_setup_teardown(
            a_reused_correlation_id_never_answers_a_buy_that_did_not_happen, setup_default,
            world_check_and_stop),
        cmocka_unit_test_setup_teardown(gxp_added_is_spendable_as_soon_as_the_add_answers,
                                        setup_default, world_check_and_stop),
        cmocka_unit_test_setup_teardown(
            with_gxp_down_a_buy_is_503_and_changes_nothing_then_works_again, setup_default,
            world_check_and_stop),
        cmocka_unit_test_setup_teardown(
            after_a_long_gxp_outage_the_backend_reconnects_within_seconds, setup_default,
            world_check_and_stop),
    };
    /* GF_TEST_FILTER=pattern (cmocka's * and ?) runs the matching tests only. */
    if (getenv("GF_TEST_FILTER"))
        cmocka_set_test_filter(getenv("GF_TEST_FILTER"));
    return cmocka_run_group_tests_name("backend_coord", tests, NULL, NULL);
}
