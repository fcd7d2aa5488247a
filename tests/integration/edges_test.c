/* Exactly once at the edges (issue 20): a request retried with its Idempotency-Key, or its
 * X-Correlation-Id resent, after the backend died, paused or lost its database in every
 * window of a buy and an add-gxp, is done once and answered with its first outcome; a buy
 * racing a price change is charged the price in force at its commit; a buy right after an
 * add-gxp's 200 succeeds while replication lags by seconds. The windows are hit with the
 * failpoints every program reads from GF_FAILPOINTS. A world per test; each ends with SPEC §5's
 * invariants across both databases. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend_fixture.h"
#include "gf/clock.h"

/* A generous gxp deadline: these tests pause processes on a loaded 2-core machine. */
#define TAKEOVER "BACKEND_IDEMPOTENCY_TAKEOVER_MS=1000"
#define DEADLINE "BACKEND_GXP_DEADLINE_MS=10000"
static const char *const normal_env[] = {TAKEOVER, DEADLINE, NULL};

static int setup_world(void **state)
{
    (void)state;
    struct world_options o = {
        .pending_timeout_ms = 500, .resolve_interval_ms = 100, .extra_env = normal_env};
    return world_start(&W, &o);
}

/* gxp never times a transaction out by itself here: only replication finalizes. */
static int setup_patient_gxp(void **state)
{
    (void)state;
    struct world_options o = {.extra_env = normal_env};
    return world_start(&W, &o);
}

/* Restarts the backend (dead by a failpoint, or alive) with env; the HTTP handles of this
 * thread are dropped so that no request rides a dead connection. */
static void restart_backend(const char *const *env)
{
    assert_int_equal(world_crash_backend(&W), 0);
    http_thread_done();
    assert_int_equal(world_start_backend(&W, false, env), 0);
}

struct call {
    const char *path, *body;
    char key[80], cid[40];
    struct http_res r;
    char replayed[16];
};

/* POSTs with the call's Idempotency-Key (if any) and X-Correlation-Id (if any). */
static long post(struct call *c)
{
    char kh[128], ch[96];
    const char *h[3];
    int n = 0;
    if (c->key[0]) {
        snprintf(kh, sizeof kh, "Idempotency-Key: %s", c->key);
        h[n++] = kh;
    }
    if (c->cid[0]) {
        snprintf(ch, sizeof ch, "X-Correlation-Id: %s", c->cid);
        h[n++] = ch;
    }
    h[n] = NULL;
    http(&W, "POST", c->path, c->body, n ? h : NULL, &c->r);
    if (http_header(&c->r, "Idempotent-Replayed", c->replayed, sizeof c->replayed) == NULL)
        c->replayed[0] = '\0';
    return c->r.status;
}

/* Waits until the backend's log holds needle (a failpoint fired). 0, or -1 after timeout_ms. */
static int wait_log(const char *needle, int timeout_ms)
{
    int64_t end = gf_mono_ms() + timeout_ms;
    while (gf_mono_ms() < end) {
        FILE *f = fopen(W.backend_log, "r");
        char line[2048];
        bool found = false;
        while (f != NULL && !found && fgets(line, sizeof line, f) != NULL)
            found = strstr(line, needle) != NULL;
        if (f != NULL)
            fclose(f);
        if (found)
            return 0;
        usleep(20 * 1000);
    }
    return -1;
}

/* Drops this thread's kept-alive connection, so that its next request opens a new one: a
 * libmicrohttpd pool thread serves only its own connections, and while it is held inside a
 * paused request every request on a connection it accepted waits too (ARCHITECTURE.md,
 * thread model of the backend); the backend's readiness probe may have left this thread's
 * connection on exactly that thread. */
static void new_connection(void)
{
    http_thread_done();
}

/* A failpoint's "wait:" file for this run: the paused thread goes on once it exists. */
static void release_path(const char *name, char *path, size_t n)
{
    snprintf(path, n, "%s/release-%s-%d", h_run_dir(), name, W.http_port);
    unlink(path);
}

/* Creates the file path (empty): the failpoint waiting for it goes on. false if it cannot. */
static bool touch(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f != NULL)
        fclose(f);
    return f != NULL;
}

/* Releases a waiting failpoint once the backend has logged needle (from a thread: the test's
 * own thread is inside a request that needs the release). */
struct releaser {
    const char *needle, *path;
    int found;
};

static void *release_on_log(void *arg)
{
    struct releaser *r = arg;
    r->found = wait_log(r->needle, 30000) == 0;
    (void)touch(r->path); /* released either way: a stuck first attempt would hide the failure */
    return NULL;
}

static long long user_items(long long u)
{
    return sql_ll(W.backend, "SELECT coalesce(sum(count), 0) FROM user_items WHERE user_id = %lld",
                  u);
}

/* The buy world: a user with 100 GXP, an item at cost with stock 10. */
static void shop(const char *name, long long cost, long long *u, long long *item, char body[96])
{
    *u = api_create_user(&W, name);
    api_add_gxp(&W, *u, 100, NULL);
    char iname[64];
    snprintf(iname, sizeof iname, "%s-item", name);
    *item = api_create_item(&W, iname, cost);
    api_create_marketplace_item(&W, *item, 10);
    snprintf(body, 96, "{\"userId\":%lld,\"itemId\":%lld}", *u, *item);
}

/* The backend dies right after its local commit (buy.after_commit), before answering: the
 * retry with the key replays the first answer; nothing is bought twice. A paid buy, a free
 * buy and an add-gxp, each in its window. */
static void a_retry_after_a_death_after_commit_replays_the_first_outcome(void **state)
{
    (void)state;
    long long u, item, free_item;
    char body[96], free_body[96], add_body[96];
    shop("died-after-commit", 10, &u, &item, body);
    free_item = api_create_item(&W, "free-after-commit", 0);
    api_create_marketplace_item(&W, free_item, 10);
    snprintf(free_body, sizeof free_body, "{\"userId\":%lld,\"itemId\":%lld}", u, free_item);
    snprintf(add_body, sizeof add_body, "{\"userId\":%lld,\"amount\":5}", u);

    struct {
        const char *failpoint, *path, *body;
    } cases[] = {
        {"GF_FAILPOINTS=buy.after_commit=kill", "/marketplace/item/buy", body},
        {"GF_FAILPOINTS=buy.after_commit=kill", "/marketplace/item/buy", free_body},
        {"GF_FAILPOINTS=add_gxp.after_commit=kill", "/user/gxp/add", add_body},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *env[] = {TAKEOVER, DEADLINE, cases[k].failpoint, NULL};
        restart_backend(env);
        struct call first = {.path = cases[k].path, .body = cases[k].body};
        snprintf(first.key, sizeof first.key, "after-commit-%zu", k);
        assert_int_equal(post(&first), 0); /* no answer: it died */
        http_res_free(&first.r);
        restart_backend(normal_env);
        struct call retry = first;
        memset(&retry.r, 0, sizeof retry.r);
        if (post(&retry) != 200 || strcmp(retry.replayed, "true") != 0)
            fail_msg("case %zu: retry answered %ld replayed=%s %s", k, retry.r.status,
                     retry.replayed, retry.r.body);
        http_res_free(&retry.r);
    }
    assert_int_equal(wait_no_pending(&W, 15000), 0);
    assert_int_equal(user_items(u), 2);
    balance_is(&W, u, 100 - 10 + 5, 0);
}

/* The backend dies between its prepare and its local commit: a retry within the takeover
 * delay hears 409 request_in_progress, one after it runs the buy once; the first attempt's
 * reservation is aborted by gxp's resolver. The same for a correlation id resent without a
 * key: the transaction it names is settled 'failed', and said so. */
static void a_retry_after_a_death_before_commit_runs_once_after_the_takeover(void **state)
{
    (void)state;
    long long u, item;
    char body[96];
    shop("died-before-commit", 10, &u, &item, body);
    const char *env[] = {TAKEOVER, DEADLINE, "GF_FAILPOINTS=buy.after_prepare=kill", NULL};
    restart_backend(env);
    struct call first = {.path = "/marketplace/item/buy", .body = body, .key = "before-commit"};
    new_cid(first.cid);
    assert_int_equal(post(&first), 0);
    http_res_free(&first.r);
    restart_backend(normal_env);

    struct call early = first;
    new_cid(early.cid);
    assert_int_equal(post(&early), 409);
    assert_string_equal(jstr(early.r.json, "error"), "request_in_progress");
    http_res_free(&early.r);
    usleep(1100 * 1000);
    struct call retry = first;
    new_cid(retry.cid);
    if (post(&retry) != 200 || retry.replayed[0] != '\0')
        fail_msg("retry after the takeover: %ld replayed=%s %s", retry.r.status, retry.replayed,
                 retry.r.body);
    http_res_free(&retry.r);
    struct call again = retry;
    new_cid(again.cid);
    assert_int_equal(post(&again), 200);
    assert_string_equal(again.replayed, "true");
    http_res_free(&again.r);

    /* The first attempt's correlation id, resent without a key: its transaction failed. */
    struct call resend = {.path = "/marketplace/item/buy", .body = body};
    memcpy(resend.cid, first.cid, sizeof resend.cid);
    assert_int_equal(post(&resend), 409);
    assert_string_equal(jstr(resend.r.json, "error"), "transaction_failed");
    http_res_free(&resend.r);

    assert_int_equal(wait_no_pending(&W, 15000), 0);
    assert_int_equal(user_items(u), 1);
    balance_is(&W, u, 90, 0);
}

/* The first attempt pauses inside its local transaction (buy.before_commit, locks held) for
 * longer than the takeover delay; the retry takes the key over and waits for its locks. When
 * the first wakes up it cannot commit (409 idempotency_key_superseded); the retry's 200 is the
 * one effect, and every later retry replays it. */
static void *post_thread(void *arg)
{
    struct call *c = arg;
    post(c);
    http_thread_done();
    return NULL;
}

static void a_paused_first_attempt_is_fenced_off_by_the_takeover(void **state)
{
    (void)state;
    long long u, item;
    char body[96];
    shop("paused-first", 10, &u, &item, body);
    /* The first attempt waits, holding its locks, until the retry has taken the key over (a
     * fixed pause once ran out first on a loaded machine, and the retry replayed the first
     * attempt's answer); the retry waits for those locks for longer than the default
     * lock_timeout (2 s), and the sessions' idle-in-transaction limit (DEADLINE + 3 s) is
     * longer than the whole staging. */
    char go[512], fp[600];
    release_path("takeover", go, sizeof go);
    snprintf(fp, sizeof fp, "GF_FAILPOINTS=buy.before_commit=wait:%s", go);
    const char *env[] = {TAKEOVER, DEADLINE, "BACKEND_DB_LOCK_TIMEOUT_MS=10000", fp, NULL};
    restart_backend(env);
    struct call first = {.path = "/marketplace/item/buy", .body = body, .key = "paused"};
    pthread_t th, rel;
    assert_int_equal(pthread_create(&th, NULL, post_thread, &first), 0);
    assert_int_equal(wait_log("failpoint fired name=buy.before_commit", 5000), 0);
    usleep(1100 * 1000);
    struct releaser r = {.needle = "idempotency key taken over", .path = go};
    assert_int_equal(pthread_create(&rel, NULL, release_on_log, &r), 0);
    struct call retry = first;
    memset(&retry.r, 0, sizeof retry.r);
    new_connection();
    long status = post(&retry);
    pthread_join(rel, NULL);
    assert_true(r.found);
    if (status != 200 || retry.replayed[0] != '\0')
        fail_msg("the retry that takes the key over: %ld replayed=%s %s", retry.r.status,
                 retry.replayed, retry.r.body);
    pthread_join(th, NULL);
    if (first.r.status != 409 || strcmp(jstr(first.r.json, "error"), "idempotency_key_superseded"))
        fail_msg("the fenced first attempt answered %ld %s", first.r.status, first.r.body);
    struct call later = first;
    memset(&later.r, 0, sizeof later.r);
    assert_int_equal(post(&later), 200);
    assert_string_equal(later.replayed, "true");
    assert_string_equal(later.r.body, retry.r.body);
    http_res_free(&first.r);
    http_res_free(&retry.r);
    http_res_free(&later.r);
    restart_backend(normal_env);
    assert_int_equal(wait_no_pending(&W, 15000), 0);
    assert_int_equal(user_items(u), 1);
    balance_is(&W, u, 90, 0);
}

/* The backend is stopped (SIGSTOP) inside a buy's local transaction, holding the stock row, for
 * longer than its sessions' idle-in-transaction limit: backend-db frees the row within the
 * bound (measured from the test's own connection, which updates that row), gxp's resolver
 * settles the reservation, and when the backend runs again it answers 5xx — never 200 — for
 * the buy that did not commit. */
static void a_paused_backend_frees_its_locks_and_never_answers_200(void **state)
{
    (void)state;
    long long u, item;
    char body[96];
    shop("stopped", 10, &u, &item, body);
    /* The default gxp deadline (2 s): the sessions' limit is then 5 s. */
    const char *env[] = {TAKEOVER, "GF_FAILPOINTS=buy.before_commit=pause:300", NULL};
    restart_backend(env);
    struct call buy = {.path = "/marketplace/item/buy", .body = body};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, post_thread, &buy), 0);
    assert_int_equal(wait_log("failpoint fired name=buy.before_commit", 5000), 0);
    assert_int_equal(kill(W.backend_pid, SIGSTOP), 0);
    int64_t t0 = gf_mono_ms();
    sql_exec(W.backend, "UPDATE marketplace_items SET updated_at = updated_at WHERE item_id = %lld",
             item);
    long long held = (long long)(gf_mono_ms() - t0);
    fprintf(stderr, "the stopped backend's stock row was freed after %lld ms\n", held);
    /* The bound: the backend's idle-in-transaction limit (gxp deadline + 3 s = 5 s), plus
     * scheduling slack on a loaded machine. */
    assert_true(held < 5000 + 3000);
    usleep(2000 * 1000); /* past gxp's pending timeout: the resolver settles the reservation */
    assert_int_equal(kill(W.backend_pid, SIGCONT), 0);
    pthread_join(th, NULL);
    if (buy.r.status < 500)
        fail_msg("a buy whose session was killed answered %ld %s", buy.r.status, buy.r.body);
    http_res_free(&buy.r);
    restart_backend(normal_env);
    assert_int_equal(wait_no_pending(&W, 20000), 0);
    assert_int_equal(user_items(u), 0);
    balance_is(&W, u, 100, 0);
}

/* backend-db goes away while a keyed buy waits to COMMIT: the answer is 503 outcome_unknown,
 * never a 200 or a definite refusal; the retry once backend-db is back settles it (here: the
 * COMMIT never happened, so the buy runs once). */
static void an_unknown_outcome_is_said_and_settled_by_the_retry(void **state)
{
    (void)state;
    long long u, item;
    char body[96];
    shop("unknown", 10, &u, &item, body);
    const char *env[] = {TAKEOVER, DEADLINE, "GF_FAILPOINTS=tx.before_commit=pause:8000", NULL};
    restart_backend(env);
    struct call first = {.path = "/marketplace/item/buy", .body = body, .key = "unknown-1"};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, post_thread, &first), 0);
    assert_int_equal(wait_log("failpoint fired name=tx.before_commit", 5000), 0);
    assert_int_equal(h_pg_stop(&W.backend_db), 0);
    pthread_join(th, NULL);
    if (first.r.status != 503 || strcmp(jstr(first.r.json, "error"), "outcome_unknown") != 0)
        fail_msg("a buy whose COMMIT was cut answered %ld %s", first.r.status, first.r.body);
    http_res_free(&first.r);
    assert_int_equal(h_pg_restart(&W.backend_db), 0);
    PQfinish(W.backend);
    W.backend = PQconnectdb(W.backend_db.conninfo);
    assert_int_equal(PQstatus(W.backend), CONNECTION_OK);
    restart_backend(normal_env);
    usleep(1100 * 1000);
    struct call retry = first;
    memset(&retry.r, 0, sizeof retry.r);
    if (post(&retry) != 200)
        fail_msg("the retry after backend-db came back: %ld %s", retry.r.status, retry.r.body);
    http_res_free(&retry.r);
    assert_int_equal(wait_no_pending(&W, 20000), 0);
    assert_int_equal(user_items(u), 1);
    balance_is(&W, u, 90, 0);
}

/* A buy prepared at the old price that reaches its local transaction after a PATCH of the cost
 * fails cleanly (409 price_changed, nothing charged); a buy that holds the stock row when the
 * PATCH comes commits first, at the price in force at its commit. */
static void a_buy_racing_a_price_change_is_charged_the_price_at_its_commit(void **state)
{
    (void)state;
    long long u, item;
    char body[96];
    shop("pricey", 10, &u, &item, body);
    char path[64], patch[64], ifm[64];
    snprintf(path, sizeof path, "/item/%lld", item);

    /* 1: prepared at 10, the price becomes 20 before the local transaction: the buy waits
     * after its prepare until the PATCH has answered (fixed pauses of 3 s, then 8 s, both ran
     * out before the PATCH on loaded CI runs). */
    char go[512], fp[600];
    release_path("price", go, sizeof go);
    snprintf(fp, sizeof fp, "GF_FAILPOINTS=buy.after_prepare=wait:%s", go);
    const char *env1[] = {DEADLINE, fp, NULL};
    restart_backend(env1);
    struct call buy = {.path = "/marketplace/item/buy", .body = body};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, post_thread, &buy), 0);
    assert_int_equal(wait_log("failpoint fired name=buy.after_prepare", 5000), 0);
    snprintf(ifm, sizeof ifm, "If-Match: \"%lld\"",
             sql_ll(W.backend, "SELECT version FROM items WHERE id = %lld", item));
    const char *h[] = {ifm, NULL};
    struct http_res r;
    new_connection();
    http(&W, "PATCH", path, "{\"cost\":20}", h, &r);
    assert_int_equal(r.status, 200);
    http_res_free(&r);
    assert_true(touch(go));
    pthread_join(th, NULL);
    if (buy.r.status != 409 || strcmp(jstr(buy.r.json, "error"), "price_changed") != 0)
        fail_msg("a buy prepared at the old price answered %ld %s", buy.r.status, buy.r.body);
    http_res_free(&buy.r);
    assert_int_equal(wait_no_pending(&W, 15000), 0);
    balance_is(&W, u, 100, 0);

    /* 2: the buy holds the stock row (before its COMMIT) when the PATCH to 30 comes. */
    const char *env2[] = {DEADLINE, "GF_FAILPOINTS=buy.before_commit=pause:1500", NULL};
    restart_backend(env2);
    memset(&buy.r, 0, sizeof buy.r);
    assert_int_equal(pthread_create(&th, NULL, post_thread, &buy), 0);
    assert_int_equal(wait_log("failpoint fired name=buy.before_commit", 5000), 0);
    snprintf(ifm, sizeof ifm, "If-Match: \"%lld\"",
             sql_ll(W.backend, "SELECT version FROM items WHERE id = %lld", item));
    snprintf(patch, sizeof patch, "{\"cost\":30}");
    new_connection();
    http(&W, "PATCH", path, patch, h, &r);
    assert_int_equal(r.status, 200);
    http_res_free(&r);
    pthread_join(th, NULL);
    assert_int_equal(buy.r.status, 200);
    http_res_free(&buy.r);
    restart_backend(normal_env);
    assert_int_equal(wait_no_pending(&W, 15000), 0);
    balance_is(&W, u, 80, 0); /* charged 20: the price when it committed */
    assert_int_equal(user_items(u), 1);
}

/* Replication paused for 2 s: a buy sent right after add-gxp's 200 waits for the added GXP
 * (bounded) and succeeds; a user without GXP on its way is refused at once. */
struct delayed {
    int ms;
};

static void *enable_later(void *arg)
{
    const struct delayed *d = arg;
    usleep((useconds_t)d->ms * 1000);
    sql_exec(W.gxp, "ALTER SUBSCRIPTION transaction_outbox_sub ENABLE");
    return NULL;
}

static void a_buy_right_after_add_gxp_waits_out_replication_lag(void **state)
{
    (void)state;
    long long u = api_create_user(&W, "eager-lagged");
    long long poor = api_create_user(&W, "poor-lagged");
    long long item = api_create_item(&W, "lagged-item", 10);
    api_create_marketplace_item(&W, item, 10);
    sql_exec(W.gxp, "ALTER SUBSCRIPTION transaction_outbox_sub DISABLE");
    usleep(300 * 1000); /* the apply worker stops */
    char body[96];
    snprintf(body, sizeof body, "{\"userId\":%lld,\"amount\":10}", u);
    struct http_res r;
    http(&W, "POST", "/user/gxp/add", body, NULL, &r);
    assert_int_equal(r.status, 200);
    char add_cid[40];
    snprintf(add_cid, sizeof add_cid, "%s", jstr(r.json, "correlationId"));
    http_res_free(&r);

    int64_t t0 = gf_mono_ms();
    snprintf(body, sizeof body, "{\"userId\":%lld,\"itemId\":%lld}", poor, item);
    http(&W, "POST", "/marketplace/item/buy", body, NULL, &r);
    assert_int_equal(r.status, 409);
    assert_string_equal(jstr(r.json, "error"), "insufficient_gxp");
    http_res_free(&r);
    if (gf_mono_ms() - t0 > 1000)
        fail_msg("a refusal with no GXP on its way took %lld ms", (long long)(gf_mono_ms() - t0));

    /* The add is committed on the backend and still PENDING on gxp: replication is off. */
    assert_int_equal(sql_ll(W.gxp,
                            "SELECT count(*) FROM gxp_transaction WHERE correlation_id = '%s'"
                            " AND status = 0",
                            add_cid),
                     1);
    struct delayed d = {.ms = 2000};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, enable_later, &d), 0);
    t0 = gf_mono_ms();
    snprintf(body, sizeof body, "{\"userId\":%lld,\"itemId\":%lld}", u, item);
    http(&W, "POST", "/marketplace/item/buy", body, NULL, &r);
    long long waited = (long long)(gf_mono_ms() - t0);
    pthread_join(th, NULL);
    if (r.status != 200)
        fail_msg("a buy right after add-gxp's 200 with replication 2 s behind: %ld %s (%lld ms)",
                 r.status, r.body, waited);
    http_res_free(&r);
    fprintf(stderr, "buy waited %lld ms for the added GXP to be finalized\n", waited);
    assert_true(waited >= 1500);
    assert_int_equal(wait_no_pending(&W, 15000), 0);
    balance_is(&W, u, 0, 0);
}

/* GET /gxp/get-all pages like the other lists (item 11): ?limit= with ?order=newest answers the
 * newest transactions first with a cursor to the next page; following the cursors visits
 * every transaction once; bad paging parameters are 400; without parameters the original's
 * shape stays exact while nothing is cut. */
static void gxp_get_all_pages_newest_first_with_cursors(void **state)
{
    (void)state;
    long long u = api_create_user(&W, "paged");
    for (int i = 1; i <= 5; i++)
        api_add_gxp(&W, u, i, NULL);
    assert_int_equal(wait_no_pending(&W, 15000), 0);
    char path[128], seen[5][40];
    int n = 0;
    long long after = 0;
    for (int page = 0; page < 4; page++) {
        if (after == 0)
            snprintf(path, sizeof path, "/gxp/get-all?order=newest&limit=2");
        else
            snprintf(path, sizeof path, "/gxp/get-all?order=newest&limit=2&after=%lld", after);
        struct http_res r;
        http(&W, "GET", path, NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        json_t *txs = json_object_get(r.json, "transactions");
        assert_true(json_array_size(txs) <= 2);
        for (size_t i = 0; i < json_array_size(txs); i++) {
            assert_true(n < 5);
            snprintf(seen[n++], sizeof seen[0], "%s",
                     jstr(json_array_get(txs, i), "correlationId"));
        }
        json_t *next = json_object_get(r.json, "nextAfter");
        assert_non_null(next); /* paged: the cursor is always there, null at the end */
        after = json_is_integer(next) ? (long long)json_integer_value(next) : 0;
        http_res_free(&r);
        if (after == 0)
            break;
    }
    assert_int_equal(n, 5);
    /* Newest first: the amounts 5, 4, 3, 2, 1. */
    for (int i = 0; i < 5; i++)
        assert_int_equal(sql_ll(W.gxp,
                                "SELECT amount FROM gxp_transaction WHERE correlation_id"
                                " = '%s'",
                                seen[i]),
                         5 - i);
    struct http_res r;
    http(&W, "GET", "/gxp/get-all", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_null(json_object_get(r.json, "nextAfter"));
    assert_int_equal(json_array_size(json_object_get(r.json, "transactions")), 5);
    http_res_free(&r);
    static const char *const bad[] = {"/gxp/get-all?limit=0", "/gxp/get-all?limit=x",
                                      "/gxp/get-all?order=sideways", "/gxp/get-all?after=-1",
                                      "/gxp/get-all?afterBalance=99999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        http(&W, "GET", bad[i], NULL, NULL, &r);
        if (r.status != 400)
            fail_msg("%s answered %ld", bad[i], r.status);
        assert_string_equal(jstr(r.json, "error"), "invalid_field");
        http_res_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            a_retry_after_a_death_after_commit_replays_the_first_outcome, setup_world,
            world_check_and_stop),
        cmocka_unit_test_setup_teardown(
            a_retry_after_a_death_before_commit_runs_once_after_the_takeover, setup_world,
            world_check_and_stop),
        cmocka_unit_test_setup_teardown(a_paused_first_attempt_is_fenced_off_by_the_takeover,
                                        setup_patient_gxp, world_check_and_stop),
        cmocka_unit_test_setup_teardown(a_paused_backend_frees_its_locks_and_never_answers_200,
                                        setup_world, world_check_and_stop),
        cmocka_unit_test_setup_teardown(an_unknown_outcome_is_said_and_settled_by_the_retry,
                                        setup_world, world_check_and_stop),
        cmocka_unit_test_setup_teardown(
            a_buy_racing_a_price_change_is_charged_the_price_at_its_commit, setup_patient_gxp,
            world_check_and_stop),
        cmocka_unit_test_setup_teardown(a_buy_right_after_add_gxp_waits_out_replication_lag,
                                        setup_patient_gxp, world_check_and_stop),
        cmocka_unit_test_setup_teardown(gxp_get_all_pages_newest_first_with_cursors,
                                        setup_patient_gxp, world_check_and_stop),
    };
    if (getenv("GF_TEST_FILTER"))
        cmocka_set_test_filter(getenv("GF_TEST_FILTER"));
    return cmocka_run_group_tests_name("edges", tests, NULL, NULL);
}
