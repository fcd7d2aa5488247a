/* The chaos checker's auction part: once the system is quiet, every auction has ended and its
 * saga has nothing left to do, and what the saga moved adds up — GXP conserved per user from
 * backend-db's decisions (credits - buys - bids + refunds + payouts = gxp's balance), escrow
 * (bids - refunds - payouts) = the leading bids of open auctions, every outbid bid refunded
 * once across all its step's attempts, every won auction paid out once, every unit with one
 * owner, one stored event per settlement, cancellation and outbid bid — the SQL of
 * tests/integration/backend_fixture.c's check_auction_invariants, per row. And for each recorded
 * auction request, its effect (check.c holds its answer against it). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* auctions, by id:
 *  0 id, 1 seller_id, 2 user_item_id, 3 item_id, 4 min_bid, 5 status, 6 leading_bid_id (0),
 *  7 leading_user_id (0), 8 leading_amount (0), 9 result_user_item_id (0), 10 correlation_id,
 *  11 ends_at (epoch ms), 12 closed_at (epoch ms, 0), 13 the result user item's user (0),
 *  14 pending steps, 15 payout steps, 16 the payout's state (''), 17 its user, 18 its amount,
 *  19 succeeded decisions among its attempts' transactions, 20 its attempts, 21 the steps
 *  (kind:state, in order) */
static const char SQL_AUCTIONS[] =
    "SELECT a.id, a.seller_id, a.user_item_id, a.item_id, a.min_bid, a.status,"
    " coalesce(a.leading_bid_id, 0), coalesce(a.leading_user_id, 0),"
    " coalesce(a.leading_amount, 0), coalesce(a.result_user_item_id, 0), a.correlation_id,"
    " (extract(epoch FROM a.ends_at) * 1000)::bigint,"
    " coalesce((extract(epoch FROM a.closed_at) * 1000)::bigint, 0),"
    " coalesce((SELECT user_id FROM user_items WHERE id = a.result_user_item_id), 0),"
    " (SELECT count(*) FROM saga_steps s WHERE s.auction_id = a.id AND s.state = 'pending'),"
    " (SELECT count(*) FROM saga_steps s WHERE s.auction_id = a.id AND s.kind = 'payout'),"
    " coalesce(p.state, ''), coalesce(p.user_id, 0), coalesce(p.amount, 0),"
    " (SELECT count(*) FROM generate_series(0, coalesce(p.attempts, 0)) k"
    "  JOIN transaction_outbox o ON o.correlation_id ="
    "  saga_step_cid(a.correlation_id, 'payout', coalesce(a.leading_bid_id, 0), k)"
    "  WHERE o.state = 'succeeded'),"
    " coalesce(p.attempts, 0),"
    " coalesce((SELECT string_agg(s.kind || ':' || s.state, ',' ORDER BY s.id) FROM saga_steps s"
    "  WHERE s.auction_id = a.id), '')"
    " FROM auctions a LEFT JOIN saga_steps p ON p.auction_id = a.id AND p.kind = 'payout'";

/* bids, by correlation id:
 *  0 correlation_id, 1 id, 2 auction_id, 3 user_id, 4 amount, 5 outbid_by (0), 6 the refund's
 *  state (''), 7 its user, 8 its amount, 9 succeeded decisions among its attempts'
 *  transactions, 10 its attempts, 11 the outbidding bid's correlation id (''), 12 it leads */
static const char SQL_BIDS[] =
    "SELECT b.correlation_id, b.id, b.auction_id, b.user_id, b.amount, coalesce(b.outbid_by, 0),"
    " coalesce(s.state, ''), coalesce(s.user_id, 0), coalesce(s.amount, 0),"
    " (SELECT count(*) FROM generate_series(0, coalesce(s.attempts, 0)) k"
    "  JOIN transaction_outbox o ON o.correlation_id ="
    "  saga_step_cid(a.correlation_id, 'refund', b.id, k) WHERE o.state = 'succeeded'),"
    " coalesce(s.attempts, 0), coalesce(n.correlation_id::text, ''), a.leading_bid_id = b.id"
    " FROM auction_bids b JOIN auctions a ON a.id = b.auction_id"
    " LEFT JOIN auction_bids n ON n.id = b.outbid_by"
    " LEFT JOIN saga_steps s ON s.auction_id = b.auction_id AND s.kind = 'refund'"
    " AND s.bid_id = b.id";

/* What each user's GXP should be, from backend-db's succeeded decisions (LEDGER_CTE of the
 * fixture): user_id, credits - buys - bids + refunds + payouts. */
static const char SQL_LEDGER[] =
    "SELECT c.user_id, sum(CASE WHEN c.kind IN ('buy', 'bid') THEN -c.amount ELSE c.amount END)"
    " FROM coord_transactions c JOIN transaction_outbox o USING (correlation_id)"
    " WHERE o.state = 'succeeded' AND c.amount > 0 GROUP BY c.user_id";

static const char SQL_ESCROW[] =
    "SELECT (SELECT coalesce(sum(CASE WHEN c.kind = 'bid' THEN c.amount ELSE -c.amount END), 0)"
    " FROM coord_transactions c JOIN transaction_outbox o USING (correlation_id)"
    " WHERE o.state = 'succeeded' AND c.kind IN ('bid', 'auction_refund', 'auction_payout')),"
    " (SELECT coalesce(sum(leading_amount), 0) FROM auctions WHERE status = 'open')";

/* Auction events, keyed "S/cid" (settled), "C/cid" (cancelled), "O/cid" (outbid): the key
 * must fit a map's 40 bytes. */
#define EVENT_KEY "substr(event_name, 8, 1) || '/' || correlation_id"

static struct table a_auc, a_bids, a_cancel, a_ledger, a_moves, a_open, a_obox, a_elog;
static int64_t *settle_ms; /* closed_at - ends_at of each settlement */
static long n_settle_ms;
static struct map a_by_cid; /* auction correlation id -> row of a_auc */
static PGresult *a_escrow;

void auction_load(PGconn *b, PGconn *e)
{
    table_load(&a_auc, b, "auctions", SQL_AUCTIONS);
    map_init(&a_by_cid, (size_t)a_auc.n);
    for (long i = 0; i < a_auc.n; i++)
        map_put(&a_by_cid, V(a_auc.r, i, 10), i);
    table_load(&a_bids, b, "auction bids", SQL_BIDS);
    table_load(&a_cancel, b, "cancellations",
               "SELECT correlation_id, auction_id FROM saga_steps WHERE kind = 'cancel'");
    table_load(&a_ledger, b, "ledger", SQL_LEDGER);
    a_escrow = check_query(b, "escrow", SQL_ESCROW);
    table_load(&a_moves, b, "auctioned units",
               "SELECT id, sum(taken), sum(returned) FROM (SELECT user_item_id AS id, 1 AS taken,"
               " 0 AS returned FROM auctions UNION ALL SELECT result_user_item_id, 0, 1"
               " FROM auctions WHERE result_user_item_id IS NOT NULL) x GROUP BY id");
    table_load(&a_open, b, "open auctions",
               "SELECT item_id, count(*) FROM auctions WHERE status = 'open' GROUP BY item_id");
    table_load(&a_obox, b, "auction events (outbox)",
               "SELECT " EVENT_KEY ", count(*), count(published_at), min(event_name),"
               " max(event_name) FROM event_outbox WHERE event_name LIKE 'Auction%Event'"
               " GROUP BY 1");
    table_load(&a_elog, e, "auction events (eventlog)",
               "SELECT " EVENT_KEY ", count(*) FROM event WHERE event_name LIKE 'Auction%Event'"
               " GROUP BY 1");
}

void auction_free(void)
{
    struct table *all[] = {&a_auc,   &a_bids, &a_cancel, &a_ledger,
                           &a_moves, &a_open, &a_obox,   &a_elog};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        table_free(all[i]);
    map_free(&a_by_cid);
    PQclear(a_escrow);
    free(settle_ms);
    settle_ms = NULL;
}

void auction_units_of(const char *user_item_id, int64_t *taken, int64_t *returned)
{
    long m = row_of(&a_moves, user_item_id);
    *taken = m < 0 ? 0 : NUM(a_moves.r, m, 1);
    *returned = m < 0 ? 0 : NUM(a_moves.r, m, 2);
}

int64_t auction_escrowed(int64_t item_id)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, item_id);
    long m = row_of(&a_open, id);
    return m < 0 ? 0 : NUM(a_open.r, m, 1);
}

/* ---- the effect of one request --------------------------------------------------------------- */

static int create_effect(const struct rec *r, char *why, size_t n)
{
    long a = map_get(&a_by_cid, r->cid);
    if (a < 0) {
        snprintf(why, n, "no auction of this correlation id");
        return 0;
    }
    snprintf(why, n, "auction %s: seller %s, user item %s, min bid %s", V(a_auc.r, a, 0),
             V(a_auc.r, a, 1), V(a_auc.r, a, 2), V(a_auc.r, a, 4));
    bool same = NUM(a_auc.r, a, 1) == r->user && NUM(a_auc.r, a, 2) == r->item &&
                NUM(a_auc.r, a, 4) == r->amount;
    if (r->status / 100 == 2 && NUM(a_auc.r, a, 0) != r->res_id)
        same = false;
    return same ? 1 : -1;
}

static int bid_effect(const struct rec *r, char *why, size_t n)
{
    long b = row_of(&a_bids, r->cid), t = row_of(&g_tx, r->cid);
    const char *d = dec_of(r->cid);
    int status = t < 0 ? -1 : (int)NUM(g_tx.r, t, 4);
    snprintf(why, n, "bid %s, decision %s, gxp status %d (amount %s)",
             b < 0 ? "none" : V(a_bids.r, b, 1), d, status, t < 0 ? "-" : V(g_tx.r, t, 3));
    if (b < 0 && strcmp(d, "succeeded") != 0 && status != 2 && status != 0)
        return 0;
    bool full = b >= 0 && strcmp(d, "succeeded") == 0 && status == 2 &&
                NUM(g_tx.r, t, 1) == r->user && NUM(g_tx.r, t, 2) == 1 &&
                NUM(g_tx.r, t, 3) == r->amount && NUM(a_bids.r, b, 2) == r->item &&
                NUM(a_bids.r, b, 3) == r->user && NUM(a_bids.r, b, 4) == r->amount;
    if (full && r->status / 100 == 2 && NUM(a_bids.r, b, 1) != r->res_id)
        full = false;
    return full ? 1 : -1;
}

static int cancel_effect(const struct rec *r, char *why, size_t n)
{
    long c = row_of(&a_cancel, r->cid);
    if (c < 0) {
        snprintf(why, n, "no cancellation of this correlation id");
        return 0;
    }
    long a = row_of(&a_auc, V(a_cancel.r, c, 1));
    snprintf(why, n, "cancellation of auction %s, which is %s", V(a_cancel.r, c, 1),
             a < 0 ? "missing" : V(a_auc.r, a, 5));
    return NUM(a_cancel.r, c, 1) == r->item && a >= 0 && strcmp(V(a_auc.r, a, 5), "cancelled") == 0
               ? 1
               : -1;
}

int auction_effect(const struct rec *r, char *why, size_t n)
{
    switch (r->kind) {
    case K_AU_CREATE:
        return create_effect(r, why, n);
    case K_BID:
        return bid_effect(r, why, n);
    case K_AU_CANCEL:
        return cancel_effect(r, why, n);
    default:
        snprintf(why, n, "-");
        return 1;
    }
}

/* ---- the saga's invariants --------------------------------------------------------------------
 */

/* An event that must exist once (kind S, C or O, of correlation id cid): in the outbox,
 * published, and stored once by eventlog. */
static void check_event_once(char kind, const char *cid, const char *what)
{
    char key[40];
    snprintf(key, sizeof key, "%c/%s", kind, cid);
    long o = row_of(&a_obox, key), e = row_of(&a_elog, key);
    check(I_AU_EVENT,
          o >= 0 && NUM(a_obox.r, o, 1) == 1 && NUM(a_obox.r, o, 2) == 1 && e >= 0 &&
              NUM(a_elog.r, e, 1) == 1,
          "%s: %s outbox events (%s published), %s stored", what, o < 0 ? "0" : V(a_obox.r, o, 1),
          o < 0 ? "0" : V(a_obox.r, o, 2), e < 0 ? "0" : V(a_elog.r, e, 1));
}

static long n_won, n_unsold, n_cancelled, n_open, n_outbid, n_retried_refunds, n_retried_payouts;
static int64_t settle_max, settle_max_auction;

static void check_auction_rows(int64_t settle_limit_ms)
{
    settle_ms = calloc((size_t)a_auc.n + 1, sizeof *settle_ms);
    for (long i = 0; i < a_auc.n; i++) {
        const char *id = V(a_auc.r, i, 0), *status = V(a_auc.r, i, 5), *cid = V(a_auc.r, i, 10);
        const char *steps = V(a_auc.r, i, 21);
        bool open = strcmp(status, "open") == 0, settled = strcmp(status, "settled") == 0;
        bool won = settled && NUM(a_auc.r, i, 6) > 0;
        int64_t ends = NUM(a_auc.r, i, 11), closed = NUM(a_auc.r, i, 12);
        n_open += open;
        n_cancelled += strcmp(status, "cancelled") == 0;
        n_won += won;
        n_unsold += settled && !won;
        n_retried_payouts += NUM(a_auc.r, i, 20) > 0;
        check(I_AU_ENDED, !open && NUM(a_auc.r, i, 14) == 0,
              "auction %s is %s %+.1f s after its end, %s steps pending (%s)", id, status,
              (double)(closed > 0 ? closed - ends : now_ms() - ends) / 1e3, V(a_auc.r, i, 14),
              steps);
        if (settled) {
            /* From its end, or from the end of a fault going on then (a kill holding the
             * step's lease, a cut from backend-db): at most settle_limit_ms. */
            int64_t from = ends, fault = fault_end_between(ends - 5000, closed);
            if (fault > from)
                from = fault;
            check(I_AU_TIMELY, closed - from <= settle_limit_ms,
                  "auction %s settled %" PRId64 " ms after its end (%" PRId64
                  " ms after the last fault then ended; limit %" PRId64 " ms)",
                  id, closed - ends, closed - from, settle_limit_ms);
            if (n_settle_ms == 0 || closed - ends > settle_max) {
                settle_max = closed - ends;
                settle_max_auction = NUM(a_auc.r, i, 0);
            }
            settle_ms[n_settle_ms++] = closed - ends;
        }
        /* The unit: in escrow while open; then the winner's, or back in the seller's user item. */
        bool unit_ok = open  ? NUM(a_auc.r, i, 9) == 0
                       : won ? NUM(a_auc.r, i, 13) == NUM(a_auc.r, i, 7)
                             : NUM(a_auc.r, i, 9) == NUM(a_auc.r, i, 2);
        check(I_AU_UNIT, unit_ok,
              "auction %s (%s, leader %s): the unit went to user item %s of user %s; the seller's "
              "is %s",
              id, status, V(a_auc.r, i, 7), V(a_auc.r, i, 9), V(a_auc.r, i, 13), V(a_auc.r, i, 2));
        /* The payout: once, the winning amount to the seller, for a won auction only. */
        bool pay_ok = won ? NUM(a_auc.r, i, 15) == 1 && strcmp(V(a_auc.r, i, 16), "done") == 0 &&
                                NUM(a_auc.r, i, 17) == NUM(a_auc.r, i, 1) &&
                                NUM(a_auc.r, i, 18) == NUM(a_auc.r, i, 8) &&
                                NUM(a_auc.r, i, 19) == 1
                          : NUM(a_auc.r, i, 15) == 0 && NUM(a_auc.r, i, 19) == 0;
        check(I_AU_PAYOUT, pay_ok,
              "auction %s (%s, leading %s by user %s, seller %s): %s payout steps (%s, %s to "
              "user %s), %s succeeded payout transactions",
              id, status, V(a_auc.r, i, 8), V(a_auc.r, i, 7), V(a_auc.r, i, 1), V(a_auc.r, i, 15),
              V(a_auc.r, i, 16), V(a_auc.r, i, 18), V(a_auc.r, i, 17), V(a_auc.r, i, 19));
        /* Its closing event, once; none while open. */
        if (!open) {
            char what[96];
            snprintf(what, sizeof what, "auction %s %s", id, status);
            check_event_once(settled ? 'S' : 'C', cid, what);
        } else {
            char s_key[40], c_key[40];
            snprintf(s_key, sizeof s_key, "S/%s", cid);
            snprintf(c_key, sizeof c_key, "C/%s", cid);
            check(I_AU_EVENT, row_of(&a_obox, s_key) < 0 && row_of(&a_obox, c_key) < 0,
                  "open auction %s has a closing event", id);
        }
    }
}

static void check_bid_rows(struct map *outbidders)
{
    for (long i = 0; i < a_bids.n; i++) {
        const char *cid = V(a_bids.r, i, 0), *id = V(a_bids.r, i, 1);
        bool outbid = NUM(a_bids.r, i, 5) > 0;
        n_retried_refunds += NUM(a_bids.r, i, 10) > 0;
        if (outbid) {
            n_outbid++;
            check(I_AU_REFUND,
                  strcmp(V(a_bids.r, i, 6), "done") == 0 &&
                      NUM(a_bids.r, i, 7) == NUM(a_bids.r, i, 3) &&
                      NUM(a_bids.r, i, 8) == NUM(a_bids.r, i, 4) && NUM(a_bids.r, i, 9) == 1,
                  "bid %s (%s, user %s, amount %s, auction %s) outbid by %s: refund step %s (%s "
                  "to user %s), %s succeeded refund transactions over %s attempts",
                  id, cid, V(a_bids.r, i, 3), V(a_bids.r, i, 4), V(a_bids.r, i, 2),
                  V(a_bids.r, i, 5), V(a_bids.r, i, 6)[0] ? V(a_bids.r, i, 6) : "none",
                  V(a_bids.r, i, 8), V(a_bids.r, i, 7), V(a_bids.r, i, 9), V(a_bids.r, i, 10));
            char what[96];
            snprintf(what, sizeof what, "bid %s outbid by bid %s", id, V(a_bids.r, i, 5));
            check_event_once('O', V(a_bids.r, i, 11), what);
            map_put(outbidders, V(a_bids.r, i, 11), i);
        } else {
            check(I_AU_REFUND,
                  V(a_bids.r, i, 6)[0] == '\0' && NUM(a_bids.r, i, 9) == 0 &&
                      strcmp(V(a_bids.r, i, 12), "t") == 0,
                  "bid %s (%s, auction %s) not outbid: leads %s, refund step %s, %s succeeded "
                  "refund transactions",
                  id, cid, V(a_bids.r, i, 2), V(a_bids.r, i, 12),
                  V(a_bids.r, i, 6)[0] ? V(a_bids.r, i, 6) : "none", V(a_bids.r, i, 9));
        }
    }
}

/* Every auction event in the outbox belongs to a closed auction of its kind or to a bid that
 * outbid another; every one eventlog stored was in the outbox. */
static void check_event_rows(const struct map *outbidders)
{
    for (long i = 0; i < a_obox.n; i++) {
        const char *key = V(a_obox.r, i, 0), *cid = key + 2;
        bool ok = false;
        if (key[0] == 'O') {
            ok = map_get(outbidders, cid) >= 0;
        } else {
            long a = map_get(&a_by_cid, cid);
            ok = a >= 0 && strcmp(V(a_auc.r, a, 5), key[0] == 'S' ? "settled" : "cancelled") == 0;
        }
        ok = ok && strcmp(V(a_obox.r, i, 3), V(a_obox.r, i, 4)) == 0 &&
             (strcmp(V(a_obox.r, i, 3), "AuctionSettledEvent") == 0 ||
              strcmp(V(a_obox.r, i, 3), "AuctionCancelledEvent") == 0 ||
              strcmp(V(a_obox.r, i, 3), "AuctionOutbidEvent") == 0);
        check(I_AU_EVENT, ok, "outbox event %s of %s belongs to no auction or bid it names",
              V(a_obox.r, i, 3), cid);
    }
    for (long i = 0; i < a_elog.n; i++)
        check(I_AU_EVENT, row_of(&a_obox, V(a_elog.r, i, 0)) >= 0,
              "eventlog stored auction event %s that the outbox never had", V(a_elog.r, i, 0));
}

/* GXP conserved: each gxp balance = what backend-db's succeeded decisions moved. */
static void check_ledger_rows(void)
{
    for (long b = 0; b < g_bal.n; b++) {
        const char *user = V(g_bal.r, b, 0);
        long l = row_of(&a_ledger, user);
        int64_t want = l < 0 ? 0 : NUM(a_ledger.r, l, 1);
        check(I_AU_GXP, NUM(g_bal.r, b, 1) == want,
              "user %s: gxp balance %s, but backend-db's succeeded decisions make %" PRId64, user,
              V(g_bal.r, b, 1), want);
    }
    for (long l = 0; l < a_ledger.n; l++)
        if (row_of(&g_bal, V(a_ledger.r, l, 0)) < 0)
            check(I_AU_GXP, NUM(a_ledger.r, l, 1) == 0,
                  "user %s: no gxp balance, but backend-db's succeeded decisions make %s",
                  V(a_ledger.r, l, 0), V(a_ledger.r, l, 1));
    check(I_AU_ESCROW, NUM(a_escrow, 0, 0) == NUM(a_escrow, 0, 1),
          "escrow: bids - refunds - payouts = %s, the leading bids of open auctions %s",
          V(a_escrow, 0, 0), V(a_escrow, 0, 1));
}

void check_auctions(int64_t settle_limit_ms)
{
    struct map outbidders;
    map_init(&outbidders, (size_t)a_bids.n);
    check_auction_rows(settle_limit_ms);
    check_bid_rows(&outbidders);
    check_event_rows(&outbidders);
    check_ledger_rows();
    map_free(&outbidders);
}

static int cmp_ms(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

void auction_print_summary(void)
{
    printf("auctions: %ld (settled %ld: won %ld, unsold %ld; cancelled %ld; open %ld); bids %ld "
           "(outbid and refunded %ld); saga steps that took a new attempt: refunds %ld, "
           "payouts %ld\n",
           a_auc.n, n_won + n_unsold, n_won, n_unsold, n_cancelled, n_open, a_bids.n, n_outbid,
           n_retried_refunds, n_retried_payouts);
    if (n_settle_ms > 0) {
        qsort(settle_ms, (size_t)n_settle_ms, sizeof *settle_ms, cmp_ms);
        printf("  settlement after the auction's end: p50 %" PRId64 " ms, p99 %" PRId64
               " ms, max %" PRId64 " ms (auction %" PRId64 ")\n",
               settle_ms[(n_settle_ms - 1) / 2], settle_ms[(n_settle_ms - 1) * 99 / 100],
               settle_max, settle_max_auction);
    }
    free(settle_ms);
    settle_ms = NULL;
}
