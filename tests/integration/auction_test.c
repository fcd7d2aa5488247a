/* Auctions, a durable saga (issue 16): the API's answers and refusals, the saga's steps run to
 * the end by the backend's runners (settlement at endsAt, refunds of outbid bids, the payout),
 * a cancellation, many bidders at once, and a backend killed between each pair of the saga's
 * steps (failpoints) resuming where it was. Every test ends with SPEC §5's invariants and the
 * saga's (backend_fixture.c: GXP conserved, escrow = leading bids of open auctions, each
 * outbid bid refunded once, each unit one owner, one event per settlement/outbid/cancel). */
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
#include "gf/uuid.h"

/* Short leases so that a killed runner's steps are taken over within the test. */
#define LEASE "BACKEND_SAGA_LEASE_MS=3000"
#define POLL "BACKEND_SAGA_POLL_MS=50"
#define DEADLINE "BACKEND_GXP_DEADLINE_MS=2500"
static const char *const normal_env[] = {LEASE, POLL, DEADLINE, NULL};

static int setup_world(void **state)
{
    (void)state;
    struct world_options o = {.pending_timeout_ms = 1000,
                              .resolve_interval_ms = 100,
                              .extra_env = normal_env,
                              .events = true};
    return world_start(&W, &o);
}

/* ---- helpers ------------------------------------------------------------------------------ */

static long post(const char *path, const char *body, struct http_res *r)
{
    return http(&W, "POST", path, body, NULL, r);
}

/* A user with gxp GXP. */
static long long bidder(const char *name, long long gxp)
{
    long long u = api_create_user(&W, name);
    if (gxp > 0)
        api_add_gxp(&W, u, gxp, NULL);
    return u;
}

/* A seller with count units of a fresh item: *user_item. */
static long long seller(const char *name, long long count, long long *item, long long *user_item)
{
    long long u = api_create_user(&W, name);
    char iname[80];
    snprintf(iname, sizeof iname, "%s-lot", name);
    *item = api_create_item(&W, iname, 7);
    *user_item = api_create_user_item(&W, u, *item, count);
    return u;
}

static long long create_auction(long long seller_id, long long user_item, long long min_bid,
                                int duration_s)
{
    char body[160];
    snprintf(body, sizeof body,
             "{\"userId\":%lld,\"userItemId\":%lld,\"minBid\":%lld,\"durationSeconds\":%d}",
             seller_id, user_item, min_bid, duration_s);
    struct http_res r = {0};
    if (post("/auction/create", body, &r) != 200)
        fail_msg("auction create: %ld %s", r.status, r.body);
    assert_ok(&r, "auctionId,correlationId,endsAt");
    assert_iso8601_ms(jstr(r.json, "endsAt"));
    long long id = jint(r.json, "auctionId");
    http_res_free(&r);
    return id;
}

static long bid(long long auction, long long user, long long amount, struct http_res *r)
{
    char body[128];
    snprintf(body, sizeof body, "{\"auctionId\":%lld,\"userId\":%lld,\"amount\":%lld}", auction,
             user, amount);
    return post("/auction/bid", body, r);
}

static long long bid_ok(long long auction, long long user, long long amount)
{
    struct http_res r = {0};
    if (bid(auction, user, amount, &r) != 200)
        fail_msg("bid %lld by %lld on %lld: %ld %s", amount, user, auction, r.status, r.body);
    assert_ok(&r, "bidId,correlationId");
    long long id = jint(r.json, "bidId");
    http_res_free(&r);
    return id;
}

static void bid_refused(long long auction, long long user, long long amount, long status,
                        const char *code)
{
    struct http_res r = {0};
    bid(auction, user, amount, &r);
    assert_error(&r, status, code);
    http_res_free(&r);
}

/* GET /auction/:id, parsed (the caller json_decref's it). */
static json_t *get_auction(long long id)
{
    char path[64];
    snprintf(path, sizeof path, "/auction/%lld", id);
    struct http_res r = {0};
    if (http(&W, "GET", path, NULL, NULL, &r) != 200)
        fail_msg("GET %s: %ld %s", path, r.status, r.body);
    json_t *j = json_incref(r.json);
    http_res_free(&r);
    return j;
}

static const char *status_of(long long id)
{
    static char s[16];
    json_t *a = get_auction(id);
    snprintf(s, sizeof s, "%s", jstr(a, "status"));
    json_decref(a);
    return s;
}

/* Waits until the auction is no longer open (its settlement ran). */
static void wait_closed(long long id, int timeout_ms)
{
    int64_t end = gf_mono_ms() + timeout_ms;
    while (strcmp(status_of(id), "open") == 0) {
        if (gf_mono_ms() > end)
            fail_msg("auction %lld still open after %d ms", id, timeout_ms);
        usleep(50 * 1000);
    }
}

static long long steps(long long auction, const char *kind, const char *state)
{
    return sql_ll(W.backend,
                  "SELECT count(*) FROM saga_steps WHERE auction_id = %lld AND kind = '%s'"
                  " AND state = '%s'",
                  auction, kind, state);
}

static long long units(long long user, long long item)
{
    return sql_ll(W.backend,
                  "SELECT coalesce(sum(count), 0) FROM user_items WHERE user_id = %lld"
                  " AND item_id = %lld",
                  user, item);
}

static void restart_backend(const char *const *env)
{
    assert_int_equal(world_crash_backend(&W), 0);
    http_thread_done();
    assert_int_equal(world_start_backend(&W, false, env), 0);
}

/* ---- the tour ------------------------------------------------------------------------------- */

/* An auction from start to end: escrow, bids, the refund of the outbid bid, refusals, the
 * settlement at endsAt, the item to the winner and the winning amount to the seller. */
static void an_auction_runs_to_its_end(void **state)
{
    (void)state;
    long long item, lot;
    long long s = seller("tour-seller", 2, &item, &lot);
    long long b1 = bidder("tour-b1", 500), b2 = bidder("tour-b2", 500), poor = bidder("tour-p", 5);
    int64_t t0 = gf_mono_ms();
    long long a = create_auction(s, lot, 100, 5);
    assert_int_equal(units(s, item), 1); /* one unit in escrow */

    long long first = bid_ok(a, b1, 100);
    assert_int_equal(wait_no_pending(&W, 10000), 0);
    balance_is(&W, b1, 400, 0); /* taken (committed), not held as a reservation */
    bid_refused(a, b2, 100, 409, "bid_too_low");
    bid_refused(a, b2, 99, 409, "bid_too_low");
    bid_refused(a, s, 500, 409, "seller_cannot_bid");
    bid_refused(a, poor, 200, 409, "insufficient_gxp");
    bid_refused(a + 1000, b2, 200, 404, "auction_not_found");
    long long second = bid_ok(a, b2, 150);
    assert_int_not_equal(first, second);
    assert_int_equal(wait_saga_idle(&W, 10000), 0);
    assert_int_equal(wait_no_pending(&W, 10000), 0);
    balance_is(&W, b1, 500, 0); /* refunded */
    balance_is(&W, b2, 350, 0);

    /* A cancellation is refused once there are bids. */
    char body[96];
    snprintf(body, sizeof body, "{\"auctionId\":%lld,\"userId\":%lld}", a, s);
    struct http_res r = {0};
    post("/auction/cancel", body, &r);
    assert_error(&r, 409, "auction_has_bids");
    http_res_free(&r);

    json_t *open = get_auction(a);
    assert_string_equal(jstr(open, "status"), "open");
    json_t *lead = json_object_get(open, "leadingBid");
    assert_int_equal(jint(lead, "bidId"), second);
    assert_int_equal(jint(lead, "userId"), b2);
    assert_int_equal(jint(lead, "amount"), 150);
    assert_int_equal(json_array_size(jarr(open, "bids")), 2);
    json_decref(open);

    wait_closed(a, 10000);
    int64_t settled_ms = gf_mono_ms() - t0;
    assert_true(settled_ms >= 4900);
    assert_int_equal(wait_saga_idle(&W, 10000), 0);
    assert_int_equal(wait_no_pending(&W, 10000), 0);
    json_t *done = get_auction(a);
    assert_string_equal(jstr(done, "status"), "settled");
    assert_iso8601_ms(jstr(done, "closedAt"));
    assert_int_equal(units(b2, item), 1);
    assert_int_equal(units(s, item), 1);
    assert_int_equal(jint(done, "resultUserItemId"),
                     sql_ll(W.backend,
                            "SELECT id FROM user_items WHERE user_id = %lld AND"
                            " item_id = %lld",
                            b2, item));
    balance_is(&W, s, 150, 0);
    balance_is(&W, b2, 350, 0);
    /* The saga's timeline: every step, in order, done. */
    json_t *st = jarr(done, "steps");
    const char *kinds[] = {"escrow_item", "settle", "bid", "bid", "refund", "deliver", "payout"};
    assert_int_equal(json_array_size(st), sizeof kinds / sizeof kinds[0]);
    for (size_t i = 0; i < json_array_size(st); i++) {
        json_t *x = json_array_get(st, i);
        assert_string_equal(jstr(x, "kind"), kinds[i]);
        assert_string_equal(jstr(x, "state"), "done");
        assert_iso8601_ms(jstr(x, "doneAt"));
    }
    json_decref(done);
    /* Closed: no more bids. */
    bid_refused(a, b1, 1000, 409, "auction_closed");
    /* One settlement event, one outbid event. */
    assert_int_equal(sql_ll(W.backend,
                            "SELECT count(*) FROM event_outbox WHERE event_name ="
                            " 'AuctionSettledEvent' AND correlation_id = (SELECT"
                            " correlation_id FROM auctions WHERE id = %lld)",
                            a),
                     1);
    assert_int_equal(sql_ll(W.backend,
                            "SELECT count(*) FROM event_outbox WHERE event_name ="
                            " 'AuctionOutbidEvent' AND correlation_id = (SELECT correlation_id"
                            " FROM auction_bids WHERE id = %lld)",
                            second),
                     1);
    /* ... stored by eventlog, under the outbid user and the seller. */
    int64_t end = gf_mono_ms() + 10000;
    while (sql_ll(W.eventlog,
                  "SELECT count(*) FROM event WHERE event_name LIKE 'Auction%%'"
                  " AND user_id IN (%lld, %lld)",
                  b1, s) < 2 &&
           gf_mono_ms() < end)
        usleep(50 * 1000);
    assert_int_equal(sql_ll(W.eventlog,
                            "SELECT count(*) FROM event WHERE event_name ="
                            " 'AuctionOutbidEvent' AND user_id = %lld",
                            b1),
                     1);
    assert_int_equal(sql_ll(W.eventlog,
                            "SELECT count(*) FROM event WHERE event_name ="
                            " 'AuctionSettledEvent' AND user_id = %lld",
                            s),
                     1);
}

/* No bids: the unit goes back to the seller; a cancellation before any bid does the same. */
static void without_bids_the_unit_goes_back(void **state)
{
    (void)state;
    long long item, lot;
    long long s = seller("nobid-seller", 1, &item, &lot);
    long long a = create_auction(s, lot, 10, 5);
    assert_int_equal(units(s, item), 0);
    /* No unit left to auction. */
    char body[160];
    snprintf(body, sizeof body,
             "{\"userId\":%lld,\"userItemId\":%lld,\"minBid\":1,\"durationSeconds\":5}", s, lot);
    struct http_res r = {0};
    post("/auction/create", body, &r);
    assert_error(&r, 409, "no_units");
    http_res_free(&r);
    wait_closed(a, 10000);
    assert_string_equal(status_of(a), "settled");
    assert_int_equal(units(s, item), 1);
    assert_int_equal(steps(a, "return_item", "done"), 1);
    assert_int_equal(steps(a, "payout", "done") + steps(a, "payout", "pending"), 0);

    long long c = create_auction(s, lot, 10, 3600);
    long long other = bidder("nobid-other", 0);
    snprintf(body, sizeof body, "{\"auctionId\":%lld,\"userId\":%lld}", c, other);
    post("/auction/cancel", body, &r);
    assert_error(&r, 403, "not_seller");
    http_res_free(&r);
    snprintf(body, sizeof body, "{\"auctionId\":%lld,\"userId\":%lld}", c, s);
    if (post("/auction/cancel", body, &r) != 200)
        fail_msg("cancel: %ld %s", r.status, r.body);
    assert_ok(&r, "auctionId,correlationId");
    http_res_free(&r);
    assert_int_equal(units(s, item), 1);
    assert_string_equal(status_of(c), "cancelled");
    assert_int_equal(steps(c, "settle", "skipped"), 1);
    post("/auction/cancel", body, &r);
    assert_error(&r, 409, "auction_closed");
    http_res_free(&r);
    bid_refused(c, other, 100, 409, "auction_closed");
}

/* Bad input gets a clear error and changes nothing; a user acts only for itself. */
static void bad_input_changes_nothing(void **state)
{
    (void)state;
    long long item, lot;
    long long s = seller("bad-seller", 1, &item, &lot);
    long long other = bidder("bad-other", 100);
    long long a = create_auction(s, lot, 10, 3600);
    char before[4096], after[4096];
    snapshot(&W, true, before, sizeof before);
    char b[256];
    struct {
        const char *path;
        char body[200];
        long status;
        const char *code;
    } cases[] = {
        {"/auction/create", "", 400, NULL},
        {"/auction/create", "{\"userId\":1}", 400, "missing_field"},
        {"/auction/create", "", 400, "invalid_field"},       /* duration 4 */
        {"/auction/create", "", 400, "invalid_field"},       /* duration 604801 */
        {"/auction/create", "", 400, "invalid_field"},       /* minBid 0 */
        {"/auction/create", "", 404, "user_item_not_found"}, /* another's user item */
        {"/auction/create", "", 400, "unknown_field"},
        {"/auction/bid", "{\"auctionId\":\"x\",\"userId\":1,\"amount\":5}", 400, "invalid_field"},
        {"/auction/bid", "", 400, "invalid_field"}, /* amount 0 */
        {"/auction/bid", "", 400, "invalid_field"}, /* amount 2^31 */
        {"/auction/bid", "", 404, "user_not_found"},
        {"/auction/cancel", "{\"auctionId\":1}", 400, "missing_field"},
        {"/auction/cancel", "", 404, "auction_not_found"},
    };
    snprintf(cases[2].body, sizeof cases[2].body,
             "{\"userId\":%lld,\"userItemId\":%lld,\"minBid\":1,\"durationSeconds\":4}", s, lot);
    snprintf(cases[3].body, sizeof cases[3].body,
             "{\"userId\":%lld,\"userItemId\":%lld,\"minBid\":1,\"durationSeconds\":604801}", s,
             lot);
    snprintf(cases[4].body, sizeof cases[4].body,
             "{\"userId\":%lld,\"userItemId\":%lld,\"minBid\":0,\"durationSeconds\":60}", s, lot);
    snprintf(cases[5].body, sizeof cases[5].body,
             "{\"userId\":%lld,\"userItemId\":%lld,\"minBid\":1,\"durationSeconds\":60}", other,
             lot);
    snprintf(cases[6].body, sizeof cases[6].body,
             "{\"userId\":%lld,\"userItemId\":%lld,\"minBid\":1,\"durationSeconds\":60,"
             "\"x\":1}",
             s, lot);
    snprintf(cases[8].body, sizeof cases[8].body,
             "{\"auctionId\":%lld,\"userId\":%lld,\"amount\":0}", a, other);
    snprintf(cases[9].body, sizeof cases[9].body,
             "{\"auctionId\":%lld,\"userId\":%lld,\"amount\":2147483648}", a, other);
    snprintf(cases[10].body, sizeof cases[10].body,
             "{\"auctionId\":%lld,\"userId\":%lld,\"amount\":50}", a, other + 100000);
    snprintf(cases[12].body, sizeof cases[12].body, "{\"auctionId\":%lld,\"userId\":%lld}",
             a + 100000, s);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct http_res r = {0};
        post(cases[i].path, cases[i].body, &r);
        if (r.status != cases[i].status)
            fail_msg("case %zu %s %s: %ld %s", i, cases[i].path, cases[i].body, r.status, r.body);
        assert_error(&r, cases[i].status, cases[i].code);
        http_res_free(&r);
    }
    struct http_res r = {0};
    http(&W, "GET", "/auction?status=bogus", NULL, NULL, &r);
    assert_error(&r, 400, "invalid_field");
    http_res_free(&r);
    http(&W, "GET", "/auction/999999999", NULL, NULL, &r);
    assert_error(&r, 404, "auction_not_found");
    http_res_free(&r);

    /* A user's token acts for that user only. */
    char *tok = world_token(&W, GF_ROLE_USER, other, 0, 600);
    const char *h[] = {world_bearer(tok), NULL};
    snprintf(b, sizeof b, "{\"auctionId\":%lld,\"userId\":%lld,\"amount\":50}", a, s);
    http(&W, "POST", "/auction/bid", b, h, &r);
    assert_error(&r, 403, "forbidden");
    http_res_free(&r);
    snprintf(b, sizeof b, "{\"auctionId\":%lld,\"userId\":%lld}", a, s);
    http(&W, "POST", "/auction/cancel", b, h, &r);
    assert_error(&r, 403, "forbidden");
    http_res_free(&r);
    const char *none[] = {"Authorization:", NULL};
    http(&W, "GET", "/auction", NULL, none, &r);
    assert_int_equal(r.status, 401);
    http_res_free(&r);
    snapshot(&W, true, after, sizeof after);
    assert_string_equal(before, after);

    /* ... and its own bid goes through, audited as nobody's but its own. */
    snprintf(b, sizeof b, "{\"auctionId\":%lld,\"userId\":%lld,\"amount\":50}", a, other);
    if (http(&W, "POST", "/auction/bid", b, h, &r) != 200)
        fail_msg("own bid: %ld %s", r.status, r.body);
    http_res_free(&r);
    free(tok);
    /* Lists: by status, paged. */
    http(&W, "GET", "/auction?status=open&limit=1", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *list = jarr(r.json, "auctions");
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(jstr(json_array_get(list, 0), "status"), "open");
    http_res_free(&r);
    /* Settle the open auction now rather than in an hour, for the invariants. */
    sql_ll(W.backend,
           "WITH u AS (UPDATE auctions SET ends_at = now() WHERE id = %lld RETURNING 1),"
           " s AS (UPDATE saga_steps SET due_at = now() WHERE auction_id = %lld AND kind ="
           " 'settle' RETURNING 1) SELECT count(*) FROM u",
           a, a);
    wait_closed(a, 10000);
}

/* An Idempotency-Key on create and bid: the retry answers the first answer, endsAt included. */
static void retries_with_a_key_replay(void **state)
{
    (void)state;
    long long item, lot;
    long long s = seller("idem-seller", 2, &item, &lot);
    long long u = bidder("idem-bidder", 300);
    char body[160];
    snprintf(body, sizeof body,
             "{\"userId\":%lld,\"userItemId\":%lld,\"minBid\":5,\"durationSeconds\":5}", s, lot);
    const char *h[] = {"Idempotency-Key: auction-create-1", NULL};
    struct http_res r1 = {0}, r2 = {0};
    assert_int_equal(http(&W, "POST", "/auction/create", body, h, &r1), 200);
    assert_int_equal(http(&W, "POST", "/auction/create", body, h, &r2), 200);
    assert_string_equal(r1.body, r2.body);
    long long a = jint(r1.json, "auctionId");
    http_res_free(&r1);
    http_res_free(&r2);
    assert_int_equal(units(s, item), 1);
    snprintf(body, sizeof body, "{\"auctionId\":%lld,\"userId\":%lld,\"amount\":40}", a, u);
    const char *hb[] = {"Idempotency-Key: auction-bid-1", NULL};
    assert_int_equal(http(&W, "POST", "/auction/bid", body, hb, &r1), 200);
    assert_int_equal(http(&W, "POST", "/auction/bid", body, hb, &r2), 200);
    assert_string_equal(r1.body, r2.body);
    http_res_free(&r1);
    http_res_free(&r2);
    wait_closed(a, 10000);
    assert_int_equal(wait_saga_idle(&W, 10000), 0);
    assert_int_equal(wait_no_pending(&W, 10000), 0);
    balance_is(&W, u, 260, 0);
    balance_is(&W, s, 40, 0);
}

/* A client that lost an answer resends its X-Correlation-Id: a create, a bid and a cancel each
 * answer their first outcome again (the bid although it leads now, which a new bid of that
 * amount could not), and a correlation id reused for another request is refused. */
static void resent_correlation_ids_answer_the_first_outcome(void **state)
{
    (void)state;
    long long item, lot;
    long long s = seller("resend-seller", 2, &item, &lot);
    long long u = bidder("resend-bidder", 300);
    char cid[40], hdr[80], body[160];
    struct http_res r1 = {0}, r2 = {0};
    snprintf(body, sizeof body,
             "{\"userId\":%lld,\"userItemId\":%lld,\"minBid\":5,\"durationSeconds\":3600}", s, lot);
    gf_uuid_generate(cid);
    snprintf(hdr, sizeof hdr, "X-Correlation-Id: %s", cid);
    const char *h[] = {hdr, NULL};
    assert_int_equal(http(&W, "POST", "/auction/create", body, h, &r1), 200);
    assert_int_equal(http(&W, "POST", "/auction/create", body, h, &r2), 200);
    assert_string_equal(r1.body, r2.body);
    long long a = jint(r1.json, "auctionId");
    http_res_free(&r1);
    http_res_free(&r2);
    assert_int_equal(units(s, item), 1);
    /* The same id for another request. */
    snprintf(body, sizeof body,
             "{\"userId\":%lld,\"userItemId\":%lld,\"minBid\":6,\"durationSeconds\":3600}", s, lot);
    http(&W, "POST", "/auction/create", body, h, &r1);
    assert_error(&r1, 409, "correlation_id_reused");
    http_res_free(&r1);
    assert_int_equal(units(s, item), 1);

    snprintf(body, sizeof body, "{\"auctionId\":%lld,\"userId\":%lld,\"amount\":50}", a, u);
    gf_uuid_generate(cid);
    snprintf(hdr, sizeof hdr, "X-Correlation-Id: %s", cid);
    assert_int_equal(http(&W, "POST", "/auction/bid", body, h, &r1), 200);
    assert_int_equal(http(&W, "POST", "/auction/bid", body, h, &r2), 200);
    assert_int_equal(jint(r1.json, "bidId"), jint(r2.json, "bidId"));
    http_res_free(&r1);
    http_res_free(&r2);
    assert_int_equal(
        sql_ll(W.backend, "SELECT count(*) FROM auction_bids WHERE auction_id = %lld", a), 1);
    /* Settle it now rather than in an hour. */
    sql_ll(W.backend,
           "WITH u AS (UPDATE auctions SET ends_at = now() WHERE id = %lld RETURNING 1),"
           " s AS (UPDATE saga_steps SET due_at = now() WHERE auction_id = %lld AND kind ="
           " 'settle' RETURNING 1) SELECT count(*) FROM u",
           a, a);
    wait_closed(a, 10000);

    long long c = create_auction(s, lot, 5, 3600);
    snprintf(body, sizeof body, "{\"auctionId\":%lld,\"userId\":%lld}", c, s);
    gf_uuid_generate(cid);
    snprintf(hdr, sizeof hdr, "X-Correlation-Id: %s", cid);
    assert_int_equal(http(&W, "POST", "/auction/cancel", body, h, &r1), 200);
    assert_int_equal(http(&W, "POST", "/auction/cancel", body, h, &r2), 200);
    assert_string_equal(r1.body, r2.body);
    http_res_free(&r1);
    http_res_free(&r2);
    assert_int_equal(units(s, item), 1);
}

/* ---- many bidders at once ----------------------------------------------------------------- */

struct storm {
    long long auction, user;
    int ok;
};

static void *storm_bidder(void *arg)
{
    struct storm *s = arg;
    char path[64];
    snprintf(path, sizeof path, "/auction/%lld", s->auction);
    for (int i = 0; i < 6; i++) {
        struct http_res r = {0};
        long long top = 0;
        if (http(&W, "GET", path, NULL, NULL, &r) == 200 && r.json != NULL) {
            json_t *lead = json_object_get(r.json, "leadingBid");
            top = json_integer_value(json_object_get(lead, "amount"));
        }
        http_res_free(&r);
        if (bid(s->auction, s->user, top + 1 + (s->user % 3), &r) == 200)
            s->ok++;
        http_res_free(&r);
    }
    http_thread_done();
    return NULL;
}

/* Eight bidders race on one auction: every bid that got 200 took its GXP; one leads at the end
 * and wins; every other is refunded exactly once. */
static void many_bidders_race(void **state)
{
    (void)state;
    long long item, lot;
    long long s = seller("storm-seller", 1, &item, &lot);
    struct storm st[8];
    pthread_t t[8];
    long long a = create_auction(s, lot, 1, 6);
    for (int i = 0; i < 8; i++) {
        char name[32];
        snprintf(name, sizeof name, "storm-%d", i);
        st[i] = (struct storm){.auction = a, .user = bidder(name, 10000)};
    }
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&t[i], NULL, storm_bidder, &st[i]), 0);
    int ok = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        ok += st[i].ok;
    }
    assert_true(ok > 0);
    assert_int_equal(
        sql_ll(W.backend, "SELECT count(*) FROM auction_bids WHERE auction_id = %lld", a), ok);
    wait_closed(a, 15000);
    assert_int_equal(wait_saga_idle(&W, 15000), 0);
    assert_int_equal(steps(a, "refund", "done"), ok - 1);
    assert_int_equal(steps(a, "payout", "done"), 1);
}

/* ---- a backend killed between each pair of the saga's steps -------------------------------- */

/* The backend dies at failpoint fp (kill) while the scenario runs; restarted without it, the
 * saga resumes where it was: the auction settles, the refund and payout happen once. */
static void killed_between_steps(const char *fp, bool bid_dies)
{
    long long item, lot;
    char name[96];
    snprintf(name, sizeof name, "fp-%s", fp);
    long long s = seller(name, 1, &item, &lot);
    snprintf(name, sizeof name, "fp-%s-1", fp);
    long long b1 = bidder(name, 1000);
    snprintf(name, sizeof name, "fp-%s-2", fp);
    long long b2 = bidder(name, 1000);
    long long a = create_auction(s, lot, 10, 5);
    char env_fp[128];
    snprintf(env_fp, sizeof env_fp, "GF_FAILPOINTS=%s=kill", fp);
    const char *env[] = {LEASE, POLL, DEADLINE, env_fp, NULL};
    bid_ok(a, b1, 100);
    restart_backend(env);
    struct http_res r = {0};
    long st = bid(a, b2, 200, &r);
    http_res_free(&r);
    if (bid_dies) {
        assert_int_equal(st, 0); /* no answer: the backend died in the bid */
    } else {
        /* The refund (it may kill the process before the bid's answer leaves), the settlement
         * or the payout kills it: wait for the death. */
        assert_true(st == 200 || st == 0);
        int64_t end = gf_mono_ms() + 20000;
        struct http_res h = {0};
        while (http(&W, "GET", "/healthz", NULL, NULL, &h) != 0 && gf_mono_ms() < end) {
            http_res_free(&h);
            usleep(50 * 1000);
        }
        http_res_free(&h);
        assert_true(gf_mono_ms() < end);
    }
    restart_backend(normal_env);
    wait_closed(a, 20000);
    assert_int_equal(wait_saga_idle(&W, 20000), 0);
    assert_int_equal(wait_no_pending(&W, 15000), 0);
    bool second_in =
        sql_ll(W.backend, "SELECT count(*) FROM auction_bids WHERE auction_id = %lld", a) == 2;
    long long price = second_in ? 200 : 100;
    long long winner = second_in ? b2 : b1;
    balance_is(&W, s, price, 0);
    balance_is(&W, winner, 1000 - price, 0);
    balance_is(&W, winner == b1 ? b2 : b1, 1000, 0);
    assert_int_equal(units(winner, item), 1);
    assert_int_equal(check_invariants(&W), 0);
}

/* One failpoint per window of the saga; bid_dies: the bid's own request dies with it. */
struct window {
    const char *failpoint;
    bool bid_dies;
};
static struct window windows[] = {
    {"auction.bid_after_prepare", true},  {"auction.bid_after_commit", true},
    {"saga.refund_after_prepare", false}, {"saga.refund_after_commit", false},
    {"saga.settle_before_commit", false}, {"saga.settle_after_commit", false},
    {"saga.payout_after_prepare", false}, {"saga.payout_after_commit", false},
};

static void killed_in_a_window(void **state)
{
    const struct window *w = *state;
    print_message("failpoint %s\n", w->failpoint);
    killed_between_steps(w->failpoint, w->bid_dies);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(an_auction_runs_to_its_end, world_check),
        cmocka_unit_test_teardown(without_bids_the_unit_goes_back, world_check),
        cmocka_unit_test_teardown(bad_input_changes_nothing, world_check),
        cmocka_unit_test_teardown(retries_with_a_key_replay, world_check),
        cmocka_unit_test_teardown(resent_correlation_ids_answer_the_first_outcome, world_check),
        cmocka_unit_test_teardown(many_bidders_race, world_check),
        cmocka_unit_test_prestate_setup_teardown(killed_in_a_window, NULL, world_check,
                                                 &windows[0]),
        cmocka_unit_test_prestate_setup_teardown(killed_in_a_window, NULL, world_check,
                                                 &windows[1]),
        cmocka_unit_test_prestate_setup_teardown(killed_in_a_window, NULL, world_check,
                                                 &windows[2]),
        cmocka_unit_test_prestate_setup_teardown(killed_in_a_window, NULL, world_check,
                                                 &windows[3]),
        cmocka_unit_test_prestate_setup_teardown(killed_in_a_window, NULL, world_check,
                                                 &windows[4]),
        cmocka_unit_test_prestate_setup_teardown(killed_in_a_window, NULL, world_check,
                                                 &windows[5]),
        cmocka_unit_test_prestate_setup_teardown(killed_in_a_window, NULL, world_check,
                                                 &windows[6]),
        cmocka_unit_test_prestate_setup_teardown(killed_in_a_window, NULL, world_check,
                                                 &windows[7]),
    };
    return cmocka_run_group_tests(tests, setup_world, world_teardown);
}
