/* Retention (issue 19): the real backend, gxp and eventlog prune what is past its retention, and
 * only that. Rows are made old by moving their timestamps back (the retentions stay at their
 * defaults: days), passes run every 200 ms in batches of 3. Proven here: exactly the eligible
 * rows go on each database; recent rows, undecided claims, PENDING gxp transactions, decisions
 * gxp-db has not applied yet, open auctions and sagas with a pending step stay; a correlation id
 * resent within the retention gets its stored outcome, one resent after the backend forgot it is
 * refused (gxp still knows it), never bought twice; and pruning while buys run breaks none of
 * SPEC §5's ledger invariants. */
#include <errno.h>
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

#define OLD "now() - interval '30 days'"

static const char *const backend_env[] = {"BACKEND_RETENTION_INTERVAL_MS=200",
                                          "BACKEND_RETENTION_BATCH=3",
                                          "BACKEND_RETENTION_ROUNDS=1000",
                                          "BACKEND_SAGA_LEASE_MS=3000",
                                          "BACKEND_SAGA_POLL_MS=50",
                                          "BACKEND_GXP_DEADLINE_MS=2500",
                                          NULL};
static const char *const gxp_env[] = {"GXP_RETENTION_INTERVAL_MS=200", "GXP_RETENTION_BATCH=3",
                                      "GXP_RETENTION_ROUNDS=1000", NULL};
static const char *const eventlog_env[] = {"EVENTLOG_RETENTION_INTERVAL_MS=200",
                                           "EVENTLOG_RETENTION_BATCH=3", NULL};

static int setup_world(void **state)
{
    (void)state;
    /* A PENDING transaction must stay PENDING here: the resolver waits a minute. */
    struct world_options o = {.pending_timeout_ms = 60000,
                              .resolve_interval_ms = 100,
                              .extra_env = backend_env,
                              .gxp_env = gxp_env,
                              .eventlog_env = eventlog_env,
                              .events = true};
    return world_start(&W, &o);
}

/* ---- helpers ------------------------------------------------------------------------------ */

/* POST buy of item by user under cid; the status, *replayed set from Idempotent-Replayed. */
static long buy(long long user, long long item, const char *cid, struct http_res *r, bool *replayed)
{
    char body[96], ch[96], rep[16];
    snprintf(body, sizeof body, "{\"userId\":%lld,\"itemId\":%lld}", user, item);
    snprintf(ch, sizeof ch, "X-Correlation-Id: %s", cid);
    const char *h[] = {ch, NULL};
    long st = http(&W, "POST", "/marketplace/item/buy", body, h, r);
    if (replayed != NULL)
        *replayed = http_header(r, "Idempotent-Replayed", rep, sizeof rep) != NULL;
    return st;
}

static void buy_ok(long long user, long long item, char cid[37])
{
    new_cid(cid);
    struct http_res r = {0};
    if (buy(user, item, cid, &r, NULL) != 200)
        fail_msg("buy: %ld %s", r.status, r.body);
    http_res_free(&r);
}

/* "'a','b',..." of n cids, for IN lists. */
static void cid_list(char *out, size_t n, char (*cids)[37], int count)
{
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < count; i++)
        len += (size_t)snprintf(out + len, n - len, "%s'%s'", i ? "," : "", cids[i]);
}

/* Waits until sql (a count on c) answers want; fails the test after timeout_ms. */
static void wait_count(PGconn *c, const char *what, long long want, int timeout_ms, const char *fmt,
                       ...) __attribute__((format(printf, 5, 6)));
static void wait_count(PGconn *c, const char *what, long long want, int timeout_ms, const char *fmt,
                       ...)
{
    char sql[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    int64_t end = gf_mono_ms() + timeout_ms;
    long long got = -1;
    while (gf_mono_ms() < end) {
        if ((got = sql_ll(c, "%s", sql)) == want)
            return;
        usleep(50 * 1000);
    }
    fail_msg("%s: %lld, not %lld, after %d ms", what, got, want, timeout_ms);
}

/* Several passes of every pruner (200 ms apart): what is still there then is kept. */
static void let_passes_run(void)
{
    usleep(1500 * 1000);
}

/* SPEC §5 on gxp-db, with what retention carried out of the history (balance_pruned). */
static void gxp_ledger_holds(void)
{
    assert_int_equal(sql_ll(W.gxp, GXP_LEDGER_VIOLATIONS_SQL), 0);
    assert_int_equal(sql_ll(W.gxp, "SELECT count(*) FROM gxp_transaction t"
                                   " LEFT JOIN decision d USING (correlation_id)"
                                   " WHERE (t.status = 2 AND d.state IS DISTINCT FROM 'succeeded')"
                                   "    OR (t.status = 1 AND d.state IS DISTINCT FROM 'failed')"),
                     0);
}

/* ---- the tests ------------------------------------------------------------------------------ */

/* Backend-db and gxp-db: exactly the eligible decisions, claims and transactions go. */
static void only_what_is_due_goes(void **state)
{
    (void)state;
    long long u = api_create_user(&W, "ret-buyer");
    char add_cid[37];
    api_add_gxp(&W, u, 1000, add_cid);
    /* A PENDING transaction, as old as the oldest: prepared on gxp-db (5 reserved), never
     * decided, and kept from the resolver. */
    char pending[37];
    new_cid(pending);
    assert_int_equal(
        sql_ll(W.gxp, "SELECT gxp_prepare(%lld, 1::smallint, 5, '%s', now())", u, pending), 0);
    sql_exec(W.gxp,
             "UPDATE gxp_transaction SET created_at = " OLD ", next_resolve_at = now() + interval"
             " '1 day' WHERE correlation_id = '%s'",
             pending);
    long long item = api_create_item(&W, "ret-item", 10);
    api_create_marketplace_item(&W, item, 100);
    long long free_item = api_create_item(&W, "ret-free", 0);
    api_create_marketplace_item(&W, free_item, 10);
    char buys[6][37], frees[2][37];
    for (int i = 0; i < 6; i++) {
        buy_ok(u, item, buys[i]);
        assert_int_equal(wait_until_finalized(&W, buys[i], 10000), 0);
    }
    for (int i = 0; i < 2; i++)
        buy_ok(u, free_item, frees[i]);
    /* A claim that was never decided (its request died before a decision), as old. */
    char undecided[37];
    new_cid(undecided);
    sql_exec(W.backend,
             "INSERT INTO coord_transactions (correlation_id, kind, user_id, item_id, amount,"
             " created_at) VALUES ('%s', 'buy', %lld, %lld, 10, " OLD ")",
             undecided, u, item);

    /* Decisions gxp-db recorded without a transaction, as old: one that applied nothing (it
     * goes), one whose application failed (it stays: the resolver and the operators need it). */
    char no_prepare[37], errored[37];
    new_cid(no_prepare);
    new_cid(errored);
    sql_exec(W.gxp,
             "INSERT INTO decision (correlation_id, state, source, outcome, received_at) VALUES"
             " ('%s', 'failed', 'replication', 'no_prepare', " OLD "),"
             " ('%s', 'failed', 'replication', 'error: planted', " OLD ")",
             no_prepare, errored);

    /* Old: the add-gxp, buys 0-2 and free buy 0, on both sides (on gxp-db the oldest ids). */
    char old[4][37], in_old[256], in_recent[512];
    memcpy(old[0], add_cid, 37);
    for (int i = 0; i < 3; i++)
        memcpy(old[i + 1], buys[i], 37);
    cid_list(in_old, sizeof in_old, old, 4);
    cid_list(in_recent, sizeof in_recent, buys + 3, 3);
    sql_exec(W.backend,
             "UPDATE transaction_outbox SET created_at = " OLD " WHERE correlation_id IN (%s)",
             in_old);
    sql_exec(W.backend,
             "UPDATE coord_transactions SET created_at = " OLD
             " WHERE correlation_id IN (%s, '%s')",
             in_old, frees[0]);
    sql_exec(W.gxp,
             "UPDATE gxp_transaction SET created_at = " OLD ", finalized_at = " OLD
             " WHERE correlation_id IN (%s)",
             in_old);
    sql_exec(W.gxp, "UPDATE decision SET received_at = " OLD " WHERE correlation_id IN (%s)",
             in_old);

    /* Backend: the old decisions and their claims, and the old free buy. */
    wait_count(W.backend, "old decisions left on backend-db", 0, 15000,
               "SELECT count(*) FROM transaction_outbox WHERE correlation_id IN (%s)", in_old);
    wait_count(W.backend, "old claims left", 0, 15000,
               "SELECT count(*) FROM coord_transactions WHERE correlation_id IN (%s, '%s')", in_old,
               frees[0]);
    /* gxp: the old finalized transactions with their decisions; the replica shrank by the
     * replicated DELETEs. */
    wait_count(W.gxp, "old gxp transactions left", 0, 15000,
               "SELECT count(*) FROM gxp_transaction WHERE correlation_id IN (%s)", in_old);
    wait_count(W.gxp, "old decisions left on gxp-db", 0, 15000,
               "SELECT count(*) FROM decision WHERE correlation_id IN (%s)", in_old);
    wait_count(W.gxp, "the old decision that applied nothing", 0, 15000,
               "SELECT count(*) FROM decision WHERE correlation_id = '%s'", no_prepare);
    wait_count(W.gxp, "old rows left in gxp-db's replica", 0, 15000,
               "SELECT count(*) FROM transaction_outbox WHERE correlation_id IN (%s)", in_old);
    let_passes_run();

    /* What stays: recent decisions and claims, the recent free buy, the undecided claim, the
     * PENDING transaction, recent gxp transactions and decisions. */
    assert_int_equal(sql_ll(W.backend,
                            "SELECT count(*) FROM transaction_outbox WHERE correlation_id IN (%s)",
                            in_recent),
                     3);
    assert_int_equal(sql_ll(W.backend,
                            "SELECT count(*) FROM coord_transactions WHERE correlation_id IN"
                            " (%s, '%s', '%s')",
                            in_recent, frees[1], undecided),
                     5);
    assert_int_equal(sql_ll(W.gxp,
                            "SELECT count(*) FROM gxp_transaction WHERE correlation_id IN"
                            " (%s, '%s')",
                            in_recent, pending),
                     4);
    assert_int_equal(
        sql_ll(W.gxp, "SELECT status FROM gxp_transaction WHERE correlation_id = '%s'", pending),
        0);
    assert_int_equal(sql_ll(W.gxp,
                            "SELECT count(*) FROM decision WHERE correlation_id IN (%s, '%s')",
                            in_recent, errored),
                     4);
    sql_exec(W.gxp, "DELETE FROM decision WHERE correlation_id = '%s'", errored);
    /* What went is carried: +1000 added, 3 × 10 bought. */
    assert_int_equal(sql_ll(W.gxp, "SELECT net FROM balance_pruned WHERE user_id = %lld", u),
                     1000 - 30);
    gxp_ledger_holds();
    balance_is(&W, u, 1000 - 60, 5);

    /* The counters say so. */
    struct http_res r = {0};
    assert_int_equal(http(&W, "GET", "/metrics", NULL, NULL, &r), 200);
    assert_non_null(strstr(r.body, "backend_pruned_total{table=\"transaction_outbox\"} 4"));
    assert_non_null(strstr(r.body, "backend_pruned_total{table=\"coord_transactions\"} 5"));
    http_res_free(&r);

    /* A resent id within the retention: the stored outcome, nothing bought again. */
    bool replayed = false;
    assert_int_equal(buy(u, item, buys[4], &r, &replayed), 200);
    assert_true(replayed);
    http_res_free(&r);

    /* An id the backend forgot (past BACKEND_RETENTION_S) that gxp still knows (within
     * GXP_RETENTION_S): refused, not bought a second time. */
    sql_exec(W.backend,
             "UPDATE transaction_outbox SET created_at = now() - interval '7 days 12 hours'"
             " WHERE correlation_id = '%s'",
             buys[3]);
    sql_exec(W.backend,
             "UPDATE coord_transactions SET created_at = now() - interval '7 days 12 hours'"
             " WHERE correlation_id = '%s'",
             buys[3]);
    wait_count(W.backend, "forgotten decision", 0, 15000,
               "SELECT count(*) FROM transaction_outbox WHERE correlation_id = '%s'", buys[3]);
    long long stock =
        sql_ll(W.backend, "SELECT count FROM marketplace_items WHERE item_id = %lld", item);
    assert_int_equal(buy(u, item, buys[3], &r, &replayed), 409);
    assert_error(&r, 409, "correlation_id_reused");
    http_res_free(&r);
    assert_int_equal(
        sql_ll(W.backend, "SELECT count FROM marketplace_items WHERE item_id = %lld", item), stock);
    balance_is(&W, u, 1000 - 60, 5);
    assert_int_equal(
        sql_ll(W.gxp, "SELECT status FROM gxp_transaction WHERE correlation_id = '%s'", buys[3]),
        2);

    /* Leave the databases as SPEC §5 wants them: the planted PENDING one decided (the
     * backend answers the resolver 'failed'), the refused resend's attempt gone from both. */
    sql_exec(W.gxp, "UPDATE gxp_transaction SET next_resolve_at = NULL WHERE correlation_id = '%s'",
             pending);
    assert_int_equal(wait_until_finalized(&W, pending, 15000), 0);
    sql_exec(W.gxp,
             "UPDATE gxp_transaction SET created_at = " OLD ", finalized_at = " OLD
             " WHERE correlation_id = '%s'",
             buys[3]);
    sql_exec(W.backend,
             "UPDATE transaction_outbox SET created_at = " OLD " WHERE correlation_id = '%s'",
             buys[3]);
    sql_exec(W.backend,
             "UPDATE coord_transactions SET created_at = " OLD
             " WHERE correlation_id IN ('%s', '%s')",
             buys[3], undecided);
    sql_exec(W.backend, "DELETE FROM coord_transactions WHERE correlation_id = '%s'", undecided);
    wait_count(W.gxp, "forgotten transaction on gxp-db", 0, 15000,
               "SELECT count(*) FROM gxp_transaction WHERE correlation_id = '%s'", buys[3]);
    wait_count(W.backend, "the refused resend's decision", 0, 15000,
               "SELECT count(*) FROM transaction_outbox WHERE correlation_id = '%s'", buys[3]);
    gxp_ledger_holds();
}

/* A decision is pruned only once gxp-db has applied it: with the subscription disabled, an
 * old decision stays on backend-db; enabled again, it is applied, then it goes. */
static void a_decision_waits_for_gxp(void **state)
{
    (void)state;
    long long u = api_create_user(&W, "ret-lagged");
    api_add_gxp(&W, u, 100, NULL);
    long long item = api_create_item(&W, "ret-lagged-item", 10);
    api_create_marketplace_item(&W, item, 10);
    sql_exec(W.gxp, "ALTER SUBSCRIPTION transaction_outbox_sub DISABLE");
    char cid[37];
    buy_ok(u, item, cid);
    sql_exec(W.backend,
             "UPDATE transaction_outbox SET created_at = " OLD " WHERE correlation_id = '%s'", cid);
    sql_exec(W.backend,
             "UPDATE coord_transactions SET created_at = " OLD " WHERE correlation_id = '%s'", cid);
    let_passes_run();
    let_passes_run();
    assert_int_equal(sql_ll(W.backend,
                            "SELECT count(*) FROM transaction_outbox WHERE correlation_id = '%s'",
                            cid),
                     1);
    assert_int_equal(
        sql_ll(W.gxp, "SELECT status FROM gxp_transaction WHERE correlation_id = '%s'", cid), 0);
    sql_exec(W.gxp, "ALTER SUBSCRIPTION transaction_outbox_sub ENABLE");
    assert_int_equal(wait_until_finalized(&W, cid, 15000), 0);
    assert_int_equal(
        sql_ll(W.gxp, "SELECT status FROM gxp_transaction WHERE correlation_id = '%s'", cid), 2);
    wait_count(W.backend, "the applied decision", 0, 30000,
               "SELECT count(*) FROM transaction_outbox WHERE correlation_id = '%s'", cid);
    gxp_ledger_holds();
}

/* Auctions: a finished one goes with its bids, steps, claims and decisions; an open one, and a
 * finished one with a step still pending, stay with theirs. */
static long long auction(long long seller_id, long long user_item, int duration_s)
{
    char body[160];
    snprintf(body, sizeof body,
             "{\"userId\":%lld,\"userItemId\":%lld,\"minBid\":5,\"durationSeconds\":%d}", seller_id,
             user_item, duration_s);
    struct http_res r = {0};
    if (http(&W, "POST", "/auction/create", body, NULL, &r) != 200)
        fail_msg("auction create: %ld %s", r.status, r.body);
    long long id = jint(r.json, "auctionId");
    http_res_free(&r);
    return id;
}

static void bid(long long auction_id, long long user, long long amount)
{
    char body[128];
    snprintf(body, sizeof body, "{\"auctionId\":%lld,\"userId\":%lld,\"amount\":%lld}", auction_id,
             user, amount);
    struct http_res r = {0};
    if (http(&W, "POST", "/auction/bid", body, NULL, &r) != 200)
        fail_msg("bid: %ld %s", r.status, r.body);
    http_res_free(&r);
}

static void finished_auctions_go(void **state)
{
    (void)state;
    long long seller = api_create_user(&W, "ret-seller");
    long long bidder = api_create_user(&W, "ret-bidder");
    api_add_gxp(&W, bidder, 100, NULL);
    long long lot = api_create_item(&W, "ret-lot", 7);
    long long ui = api_create_user_item(&W, seller, lot, 3);
    long long done = auction(seller, ui, 5), open = auction(seller, ui, 3600);
    long long stuck = auction(seller, ui, 5);
    bid(done, bidder, 10);
    bid(open, bidder, 10);
    assert_int_equal(wait_saga_idle(&W, 20000), 0);
    wait_count(W.backend, "settled auctions", 2, 20000,
               "SELECT count(*) FROM auctions WHERE id IN (%lld, %lld) AND status = 'settled'",
               done, stuck);
    assert_int_equal(wait_saga_idle(&W, 20000), 0);
    /* A step of `stuck` still to run (far in the future). */
    sql_exec(W.backend,
             "UPDATE saga_steps SET state = 'pending', due_at = now() + interval '1 day'"
             " WHERE id = (SELECT max(id) FROM saga_steps WHERE auction_id = %lld)",
             stuck);
    long long saga_claims = sql_ll(W.backend,
                                   "SELECT count(*) FROM coord_transactions WHERE item_id = %lld"
                                   " AND kind IN ('bid', 'auction_refund', 'auction_payout')",
                                   done);
    assert_true(saga_claims >= 2); /* the bid and the payout */
    sql_exec(W.backend,
             "UPDATE auctions SET closed_at = now() - interval '60 days' WHERE id IN (%lld, %lld)",
             done, stuck);
    sql_exec(W.backend,
             "UPDATE transaction_outbox SET created_at = " OLD " WHERE correlation_id IN"
             " (SELECT correlation_id FROM coord_transactions WHERE item_id IN (%lld, %lld, %lld)"
             "   AND kind IN ('bid', 'auction_refund', 'auction_payout'))",
             done, open, stuck);
    sql_exec(W.backend,
             "UPDATE coord_transactions SET created_at = " OLD
             " WHERE item_id IN (%lld, %lld, %lld)"
             " AND kind IN ('bid', 'auction_refund', 'auction_payout')",
             done, open, stuck);

    wait_count(W.backend, "the finished auction", 0, 15000,
               "SELECT count(*) FROM auctions WHERE id = %lld", done);
    assert_int_equal(
        sql_ll(W.backend, "SELECT count(*) FROM auction_bids WHERE auction_id = %lld", done), 0);
    assert_int_equal(
        sql_ll(W.backend, "SELECT count(*) FROM saga_steps WHERE auction_id = %lld", done), 0);
    wait_count(W.backend, "the finished auction's claims", 0, 15000,
               "SELECT count(*) FROM coord_transactions WHERE item_id = %lld"
               " AND kind IN ('bid', 'auction_refund', 'auction_payout')",
               done);
    let_passes_run();
    assert_int_equal(
        sql_ll(W.backend, "SELECT count(*) FROM auctions WHERE id IN (%lld, %lld)", open, stuck),
        2);
    assert_true(
        sql_ll(W.backend, "SELECT count(*) FROM saga_steps WHERE auction_id = %lld", stuck) > 0);
    assert_true(sql_ll(W.backend,
                       "SELECT count(*) FROM transaction_outbox o JOIN coord_transactions c"
                       " USING (correlation_id) WHERE c.item_id = %lld AND c.kind = 'bid'",
                       open) == 1);
    /* The stuck step is done after all: then the auction goes too. */
    sql_exec(W.backend, "UPDATE saga_steps SET state = 'done' WHERE auction_id = %lld", stuck);
    wait_count(W.backend, "the auction once its steps are done", 0, 15000,
               "SELECT count(*) FROM auctions WHERE id = %lld", stuck);
}

/* eventlog: the oldest events (stored longer ago than the retention) go, the others stay. */
static void old_events_go(void **state)
{
    (void)state;
    assert_true(sql_ll(W.eventlog, "SELECT count(*) FROM event") >= 6);
    long long newest_old = sql_ll(W.eventlog, "SELECT max(id) FROM (SELECT id FROM event"
                                              " ORDER BY id LIMIT 5) x");
    long long newest = sql_ll(W.eventlog, "SELECT max(id) FROM event");
    long long recent = sql_ll(W.eventlog, "SELECT count(*) FROM event WHERE id > %lld", newest_old);
    sql_exec(W.eventlog,
             "UPDATE event SET stored_at = now() - interval '60 days'"
             " WHERE id <= %lld",
             newest_old);
    wait_count(W.eventlog, "old events", 0, 15000, "SELECT count(*) FROM event WHERE id <= %lld",
               newest_old);
    let_passes_run();
    assert_int_equal(sql_ll(W.eventlog, "SELECT count(*) FROM event WHERE id > %lld AND id <= %lld",
                            newest_old, newest),
                     recent);
    struct http_res r = {0};
    char path[64];
    snprintf(path, sizeof path, "/metrics");
    assert_int_equal(http_eventlog(&W, path, &r), 200);
    assert_non_null(strstr(r.body, "eventlog_pruned_total{table=\"event\"} 5"));
    http_res_free(&r);
}

/* Buys run while every decided row is made old again and again, so that the pruners delete
 * while the buys commit: every buy is answered and right, the ledger holds. */
struct buyer {
    long long user, item;
    int ok, refused;
};

static void *buyer_run(void *arg)
{
    struct buyer *b = arg;
    for (int i = 0; i < 25; i++) {
        char cid[37];
        new_cid(cid);
        struct http_res r = {0};
        long st = buy(b->user, b->item, cid, &r, NULL);
        if (st == 200)
            b->ok++;
        else if (st == 409)
            b->refused++;
        http_res_free(&r);
    }
    http_thread_done();
    return NULL;
}

static void pruning_during_buys_breaks_nothing(void **state)
{
    (void)state;
    long long item = api_create_item(&W, "ret-live", 3);
    api_create_marketplace_item(&W, item, 1000);
    struct buyer b[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "ret-live-%d", i);
        b[i] = (struct buyer){.user = api_create_user(&W, name), .item = item};
        api_add_gxp(&W, b[i].user, 1000, NULL);
    }
    long long before =
        sql_ll(W.backend, "SELECT count FROM marketplace_items WHERE item_id = %lld", item);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, buyer_run, &b[i]), 0);
    int64_t end = gf_mono_ms() + 60000;
    bool running = true;
    while (running && gf_mono_ms() < end) {
        sql_exec(W.backend, "UPDATE transaction_outbox SET created_at = " OLD
                            " WHERE created_at > now() - interval '1 day'");
        sql_exec(W.backend, "UPDATE coord_transactions SET created_at = " OLD
                            " WHERE created_at > now() - interval '1 day'");
        sql_exec(W.gxp, "UPDATE gxp_transaction SET created_at = " OLD ", finalized_at = " OLD
                        " WHERE status <> 0 AND created_at > now() - interval '1 day'");
        usleep(100 * 1000);
        running = false;
        for (int i = 0; i < 4; i++)
            running |= pthread_tryjoin_np(t[i], NULL) == EBUSY;
    }
    int ok = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ok += b[i].ok;
        assert_int_equal(b[i].ok + b[i].refused, 25);
    }
    assert_true(ok > 0);
    assert_int_equal(wait_no_pending(&W, 15000), 0);
    /* Every 200 took one unit and its cost; nothing else moved. */
    assert_int_equal(
        sql_ll(W.backend, "SELECT count FROM marketplace_items WHERE item_id = %lld", item),
        before - ok);
    long long spent = 0;
    for (int i = 0; i < 4; i++) {
        long long balance = 0, reserved = 0;
        api_user_gxp(&W, b[i].user, &balance, &reserved);
        assert_int_equal(reserved, 0);
        assert_int_equal(balance, 1000 - 3 * b[i].ok);
        spent += 1000 - balance;
    }
    assert_int_equal(spent, 3 * ok);
    /* The last buys were finalized on gxp after the loop's last UPDATE (asynchronously, by the
     * apply worker, seconds behind on a loaded machine): made old once more, they go too. */
    sql_exec(W.gxp, "UPDATE gxp_transaction SET created_at = " OLD ", finalized_at = " OLD
                    " WHERE status <> 0 AND created_at > now() - interval '1 day'");
    wait_count(W.gxp, "pruned live transactions", 0, 30000,
               "SELECT count(*) FROM gxp_transaction WHERE status <> 0"
               " AND created_at > now() - interval '1 day'");
    gxp_ledger_holds();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(only_what_is_due_goes),
        cmocka_unit_test(a_decision_waits_for_gxp),
        cmocka_unit_test(finished_auctions_go),
        cmocka_unit_test(old_events_go),
        cmocka_unit_test(pruning_during_buys_breaks_nothing),
    };
    if (getenv("GF_TEST_FILTER"))
        cmocka_set_test_filter(getenv("GF_TEST_FILTER"));
    return cmocka_run_group_tests(tests, setup_world, world_teardown);
}
