/* Auctions: a business process that runs for seconds to days, built as a saga (ARCHITECTURE.md
 * §3d). Nothing is held for the auction's life: each step is a short transaction of its own,
 * written into saga_steps by the transaction that makes it necessary, and the saga moves on by
 * compensation instead of locks.
 *
 *   create   one local transaction: one unit of the seller's user item leaves it (optimistic
 *            lock on its count) into escrow; the auction; its settlement step, due at ends_at.
 *   bid      a two-phase commit with gxp, as a buy: SUBTRACT of the amount prepared under the
 *            bid's correlation id, then one local transaction: the bid leads (optimistic lock on
 *            the auction's version), the decision 'succeeded' (the GXP is taken: escrow by
 *            transfer, no reservation outlives the request), and — when it outbid a bid — that
 *            bid's refund step, due now, and the AuctionOutbidEvent.
 *   cancel   one local transaction: the seller's, before any bid; the unit goes back.
 * saga.c runs the due steps: the settlement, refunds and the payout. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator.h"
#include "gf/amqp.h"
#include "gf/clock.h"
#include "gf/failpoint.h"
#include "gf/log.h"
#include "gf/metrics.h"
#include "gf/uuid.h"

#define I64(buf, v) snprintf(buf, sizeof buf, "%" PRId64, (int64_t)(v))

/* The optimistic locks of auctions: a unit's count at creation, the auction's version at a bid. */
static struct gf_counter *m_conflict_create, *m_conflict_bid;

void auction_metrics_init(void)
{
    static const char help[] =
        "optimistic-lock conflicts: an update named a version that had changed, by operation";
    m_conflict_create =
        gf_metrics_counter("backend_lock_conflicts_total", help, "op=\"auction_create\"");
    m_conflict_bid = gf_metrics_counter("backend_lock_conflicts_total", help, "op=\"auction_bid\"");
}

/* An event of the saga into event_outbox on c (inside the caller's transaction). */
enum gf_status auction_put_event(struct gf_db_conn *c, const struct events_auction *e,
                                 struct be_err *err)
{
    char payload[EVENTS_AUCTION_HEX_MAX];
    if (events_auction_payload(e, payload, sizeof payload) != GF_OK) {
        GF_ERROR("auction event not encoded (a number past the proto's) auction=%" PRId64,
                 e->auction_id);
        return be_db_failed(GF_EINTERNAL, err);
    }
    const char *params[3] = {events_auction_name(e->kind), e->cid, payload};
    return store_run(c, "au_event",
                     "INSERT INTO event_outbox (event_name, correlation_id, payload)"
                     " VALUES ($1, $2::uuid, $3::bytea)",
                     3, params, NULL, err);
}

/* An admin acting for another user leaves its audit in the same transaction. */
static enum gf_status audit_for(struct gf_db_conn *c, const struct gf_auth_claims *who,
                                const char *action, int64_t user_id, int64_t auction_id,
                                int64_t item_id, int64_t amount, const char *cid,
                                struct be_err *err)
{
    if (who == NULL || who->role != GF_ROLE_ADMIN) /* a user's own act is not an audit's */
        return GF_OK;
    struct events_admin a = {.action = action,
                             .who = who,
                             .user_id = user_id,
                             .target_id = auction_id,
                             .item_id = item_id,
                             .amount = amount};
    return store_audit(c, &a, cid, err);
}

/* ---- create ------------------------------------------------------------------------------ */

/* The auction a resent correlation id created: its answer (*replayed) if it is the same request
 * (seller, user item, minimum bid), else 409 correlation_id_reused. */
static enum gf_status create_existing(struct backend_app *app, int64_t user_id,
                                      int64_t user_item_id, int64_t min_bid, const char *cid,
                                      struct be_idem *idem, int64_t *auction_id, bool *replayed,
                                      struct be_err *err)
{
    char u[24], ui[24], mb[24];
    I64(u, user_id);
    I64(ui, user_item_id);
    I64(mb, min_bid);
    const char *params[4] = {cid, u, ui, mb};
    PGresult *res = NULL;
    enum gf_status st = store_exec(app, "au_create_existing",
                                   "SELECT id, gf_iso(ends_at), seller_id = $2::bigint"
                                   " AND user_item_id = $3::bigint AND min_bid = $4::bigint"
                                   " FROM auctions WHERE correlation_id = $1::uuid",
                                   4, params, &res, err);
    if (st != GF_OK)
        return st;
    if (PQntuples(res) == 1 && PQgetvalue(res, 0, 2)[0] == 't') {
        *auction_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        snprintf(idem->ends_at, sizeof idem->ends_at, "%s", PQgetvalue(res, 0, 1));
        *replayed = true;
        PQclear(res);
        return GF_OK;
    }
    PQclear(res);
    be_err_set(err, "correlation_id_reused",
               "this correlation id already names another request: send a new one");
    return GF_ECONFLICT;
}

enum gf_status auction_create(struct backend_app *app, const struct gf_auth_claims *who,
                              int64_t user_id, int64_t user_item_id, int64_t min_bid,
                              int64_t duration_s, const char *cid, struct be_idem *idem,
                              int64_t *auction_id, bool *replayed, struct be_err *err)
{
    *replayed = false;
    char u[24], ui[24], mb[24], d[24];
    I64(u, user_id);
    I64(ui, user_item_id);
    I64(mb, min_bid);
    I64(d, duration_s);
    struct gf_db_conn *c = NULL;
    PGresult *res = NULL;
    bool unknown = false;
    enum gf_status st = store_begin(app, &c, err);
    if (st != GF_OK)
        return st;
    int64_t item_id = 0;
    bool taken = false;
    for (int attempt = 0; attempt < app->cfg->lock_retries && !taken; attempt++) {
        const char *p1[2] = {ui, u};
        st = store_run(c, "au_item_read",
                       "SELECT item_id, count, version FROM user_items"
                       " WHERE id = $1::bigint AND user_id = $2::bigint",
                       2, p1, &res, err);
        if (st != GF_OK)
            goto rollback;
        if (PQntuples(res) == 0) {
            be_err_set(err, "user_item_not_found", "user %" PRId64 " has no user item %" PRId64,
                       user_id, user_item_id);
            st = GF_ENOTFOUND;
            goto rollback;
        }
        item_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        if (strcmp(PQgetvalue(res, 0, 1), "0") == 0) {
            be_err_set(err, "no_units", "user item %" PRId64 " has no unit left to auction",
                       user_item_id);
            st = GF_ECONFLICT;
            goto rollback;
        }
        const char *p2[2] = {ui, PQgetvalue(res, 0, 2)};
        PGresult *upd = NULL;
        /* The count's optimistic lock: the version read, or another round. */
        st = store_run(c, "au_item_take",
                       "UPDATE user_items SET count = count - 1, version = version + 1,"
                       " updated_at = now() WHERE id = $1::bigint AND version = $2::bigint"
                       " AND count > 0 RETURNING 1",
                       2, p2, &upd, err);
        PQclear(res);
        res = NULL;
        if (st != GF_OK)
            goto rollback;
        taken = PQntuples(upd) == 1;
        PQclear(upd);
        if (!taken)
            gf_counter_add(m_conflict_create, 1);
    }
    if (!taken) {
        be_err_set(err, "lock_conflict",
                   "too many concurrent changes of user item %" PRId64 ", try again", user_item_id);
        st = GF_ECONFLICT;
        goto rollback;
    }
    char it[24];
    I64(it, item_id);
    const char *p3[6] = {u, ui, it, mb, d, cid};
    st = store_run(c, "au_create",
                   "WITH a AS (INSERT INTO auctions (seller_id, user_item_id, item_id, min_bid,"
                   " ends_at, correlation_id) VALUES ($1::bigint, $2::bigint, $3::bigint,"
                   " $4::bigint, clock_timestamp() + make_interval(secs => $5::int), $6::uuid)"
                   " RETURNING id, ends_at),"
                   " s AS (INSERT INTO saga_steps (auction_id, kind, state, user_id, amount,"
                   " due_at, done_at) SELECT a.id, k.kind, k.state, $1::bigint, k.amount,"
                   " CASE WHEN k.kind = 'settle' THEN a.ends_at ELSE clock_timestamp() END,"
                   " CASE WHEN k.state = 'done' THEN clock_timestamp() END FROM a, (VALUES"
                   " ('escrow_item', 'done', 1), ('settle', 'pending', NULL::bigint))"
                   " k(kind, state, amount))"
                   " SELECT id, gf_iso(ends_at) FROM a",
                   6, p3, &res, err);
    if (st == GF_EEXISTS) { /* a resent correlation id: that auction's answer, if the same */
        PQclear(res);
        gf_db_rollback(c);
        gf_db_release(app->pool, c);
        return create_existing(app, user_id, user_item_id, min_bid, cid, idem, auction_id, replayed,
                               err);
    }
    if (st != GF_OK)
        goto rollback;
    int64_t id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    snprintf(idem->ends_at, sizeof idem->ends_at, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    res = NULL;
    st = audit_for(c, who, EVENTS_ACTION_AUCTION_CREATED_FOR_USER, user_id, id, item_id, 0, cid,
                   err);
    if (st != GF_OK)
        goto rollback;
    gf_failpoint("auction.create_before_commit");
    st = idem_commit(c, idem, id, &unknown, err);
    gf_db_release(app->pool, c);
    if (st != GF_OK)
        return st;
    relay_kick(app->relay);
    *auction_id = id;
    GF_INFO("auction created auction=%" PRId64 " seller=%" PRId64 " item=%" PRId64 " ends=%s", id,
            user_id, item_id, idem->ends_at);
    return GF_OK;
rollback:
    PQclear(res);
    gf_db_rollback(c);
    gf_db_release(app->pool, c);
    return st;
}

/* ---- bid --------------------------------------------------------------------------------- */

struct bid {
    int64_t auction_id, user_id, amount;
    const char *cid;
    const struct gf_auth_claims *who;
    /* As read (bid_load): the auction's item and version, its leading bid (0: none), and the id
     * the new bid takes (drawn with the read, so that one statement can write everything). */
    int64_t item_id, bid_id, prev_bid, prev_user, prev_amount;
    char version[24];
};

/* The reasons a bid is refused, whether before the prepare or after a lost race. */
static enum gf_status bid_refusal(const PGresult *res, const struct bid *b, struct be_err *err)
{
    /* seller, open (status open and before ends_at), min_bid, leading amount, bidder exists */
    int64_t seller = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    bool open = PQgetvalue(res, 0, 1)[0] == 't';
    int64_t min_bid = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    int64_t leading = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    bool bidder = PQgetvalue(res, 0, 4)[0] == 't';
    if (!bidder) {
        be_err_set(err, "user_not_found", "no user %" PRId64, b->user_id);
        return GF_ENOTFOUND;
    }
    if (!open) {
        be_err_set(err, "auction_closed", "auction %" PRId64 " is not open for bids",
                   b->auction_id);
        return GF_ECONFLICT;
    }
    if (seller == b->user_id) {
        be_err_set(err, "seller_cannot_bid", "the seller cannot bid in their own auction");
        return GF_ECONFLICT;
    }
    if (b->amount < min_bid) {
        be_err_set(err, "bid_too_low", "a bid must be at least the minimum bid, %" PRId64, min_bid);
        return GF_ECONFLICT;
    }
    if (b->amount <= leading) {
        be_err_set(err, "bid_too_low", "a bid must be above the leading bid, %" PRId64, leading);
        return GF_ECONFLICT;
    }
    return GF_OK;
}

/* Reads the auction for bid b and says whether the bid may go in now: GF_ENOTFOUND
 * auction_not_found, a refusal (bid_refusal), or GF_OK with b's read fields filled. */
static enum gf_status bid_load(struct backend_app *app, struct bid *b, struct be_err *err)
{
    char a[24], u[24];
    I64(a, b->auction_id);
    I64(u, b->user_id);
    const char *params[2] = {a, u};
    PGresult *res = NULL;
    enum gf_status st = store_exec(
        app, "au_bid_read",
        "SELECT a.seller_id, a.status = 'open' AND a.ends_at > clock_timestamp(), a.min_bid,"
        " coalesce(a.leading_amount, 0), EXISTS (SELECT 1 FROM users WHERE id = $2::bigint),"
        " a.version, coalesce(a.leading_bid_id, 0), coalesce(a.leading_user_id, 0), a.item_id,"
        " nextval('auction_bids_id_seq') FROM auctions a WHERE a.id = $1::bigint",
        2, params, &res, err);
    if (st != GF_OK)
        return st;
    if (PQntuples(res) == 0) {
        PQclear(res);
        be_err_set(err, "auction_not_found", "no auction %" PRId64, b->auction_id);
        return GF_ENOTFOUND;
    }
    st = bid_refusal(res, b, err);
    if (st == GF_OK) {
        b->prev_amount = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
        snprintf(b->version, sizeof b->version, "%s", PQgetvalue(res, 0, 5));
        b->prev_bid = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
        b->prev_user = strtoll(PQgetvalue(res, 0, 7), NULL, 10);
        b->item_id = strtoll(PQgetvalue(res, 0, 8), NULL, 10);
        b->bid_id = strtoll(PQgetvalue(res, 0, 9), NULL, 10);
    }
    PQclear(res);
    return st;
}

enum bid_local { BID_DONE, BID_LOST_RACE, BID_DECIDED, BID_FAILED };

/* The commit point of the bid's two-phase commit, one statement: the bid leads if the auction
 * is as read (its version: the optimistic lock; the settlement's UPDATE takes the same row, so a
 * bid and the end never both win) and still open; with it the bid, its decision 'succeeded',
 * the refund of the bid it outbid (due now) and its AuctionOutbidEvent, the bid's step, and an
 * operator's audit. With an Idempotency-Key, the key's answer in the same transaction. */
static const char SQL_BID_COMMIT[] =
    "WITH up AS (UPDATE auctions SET version = version + 1, updated_at = clock_timestamp(),"
    " leading_bid_id = $6::bigint, leading_user_id = $2::bigint, leading_amount = $3::bigint"
    " WHERE id = $1::bigint AND version = $5::bigint AND status = 'open'"
    " AND ends_at > clock_timestamp() RETURNING id, correlation_id),"
    " bid AS (INSERT INTO auction_bids (id, auction_id, user_id, amount, correlation_id)"
    " SELECT $6::bigint, id, $2::bigint, $3::bigint, $4::uuid FROM up RETURNING id),"
    " decision AS (INSERT INTO transaction_outbox (correlation_id, state)"
    " SELECT $4::uuid, 'succeeded' FROM bid),"
    " prev AS (UPDATE auction_bids SET outbid_by = $6::bigint"
    " WHERE id = $7::bigint AND EXISTS (SELECT 1 FROM bid) RETURNING id, user_id, amount),"
    " steps AS (INSERT INTO saga_steps (auction_id, kind, state, bid_id, user_id, amount,"
    " correlation_id, done_at)"
    " SELECT $1::bigint, 'bid', 'done', id, $2::bigint, $3::bigint, $4::uuid,"
    " clock_timestamp() FROM bid"
    " UNION ALL SELECT $1::bigint, 'refund', 'pending', prev.id, prev.user_id, prev.amount,"
    " saga_step_cid(up.correlation_id, 'refund', prev.id, 0), NULL FROM prev, up),"
    " ev AS (INSERT INTO event_outbox (event_name, correlation_id, payload)"
    " SELECT e.name, $4::uuid, e.payload FROM bid, (VALUES"
    " (1, '" GF_EVENT_AUCTION_OUTBID "', $8::bytea),"
    " (2, '" GF_EVENT_ADMIN_ACTION "', $9::bytea)) e(ord, name, payload)"
    " WHERE e.payload IS NOT NULL ORDER BY e.ord)"
    " SELECT count(*) FROM bid";

static enum bid_local bid_commit(struct backend_app *app, const struct bid *b,
                                 const struct be_idem *idem, bool *unknown, enum gf_status *st,
                                 struct be_err *err)
{
    char a[24], u[24], amt[24], id[24], prev[24];
    char outbid[EVENTS_AUCTION_HEX_MAX], audit[EVENTS_ADMIN_HEX_MAX];
    I64(a, b->auction_id);
    I64(u, b->user_id);
    I64(amt, b->amount);
    I64(id, b->bid_id);
    I64(prev, b->prev_bid);
    *unknown = false;
    struct events_auction e = {.kind = EVENTS_AUCTION_OUTBID,
                               .auction_id = b->auction_id,
                               .user_id = b->prev_user,
                               .item_id = b->item_id,
                               .bid_id = b->prev_bid,
                               .amount = b->prev_amount,
                               .new_bid_id = b->bid_id,
                               .new_amount = b->amount,
                               .cid = b->cid};
    bool admin = b->who != NULL && b->who->role == GF_ROLE_ADMIN;
    struct events_admin ad = {.action = EVENTS_ACTION_AUCTION_BID_FOR_USER,
                              .who = b->who,
                              .user_id = b->user_id,
                              .target_id = b->auction_id,
                              .item_id = b->item_id,
                              .amount = b->amount};
    if ((b->prev_bid > 0 && events_auction_payload(&e, outbid, sizeof outbid) != GF_OK) ||
        (admin && events_admin_payload(&ad, b->cid, audit, sizeof audit) != GF_OK)) {
        GF_ERROR("bid events not encoded (a number past the proto's) auction=%" PRId64,
                 b->auction_id);
        *st = be_db_failed(GF_EINTERNAL, err);
        return BID_FAILED;
    }
    const char *p[9] = {a,
                        u,
                        amt,
                        b->cid,
                        b->version,
                        id,
                        prev,
                        b->prev_bid > 0 ? outbid : NULL,
                        admin ? audit : NULL};
    PGresult *res = NULL;
    struct gf_db_conn *c = NULL;
    bool keyed = idem != NULL && idem->key != NULL;
    if (keyed) {
        *st = store_begin(app, &c, err);
        if (*st != GF_OK)
            return BID_FAILED;
        *st = store_run(c, "au_bid_commit", SQL_BID_COMMIT, 9, p, &res, err);
    } else { /* one statement, its own transaction */
        *st = store_write(app, "au_bid_commit", SQL_BID_COMMIT, 9, p, &res, err);
        *unknown = *st == GF_EUNKNOWN;
    }
    enum bid_local out = BID_FAILED;
    if (*st == GF_EEXISTS) /* the decision: gxp's resolver recorded 'failed' first */
        out = BID_DECIDED;
    else if (*st == GF_OK)
        out = strcmp(PQgetvalue(res, 0, 0), "1") == 0 ? BID_DONE : BID_LOST_RACE;
    PQclear(res);
    if (keyed) {
        if (out == BID_DONE) {
            gf_failpoint("auction.bid_before_commit");
            *st = idem_commit(c, idem, b->bid_id, unknown, err);
            out = *st == GF_OK ? BID_DONE : BID_FAILED;
        } else {
            gf_db_rollback(c);
        }
        gf_db_release(app->pool, c);
    }
    return out;
}

/* A correlation id that names a transaction already: this bid's again (the bid committed:
 * its answer; failed: 409 transaction_failed; else in progress), or another's. */
static enum gf_status bid_existing(struct backend_app *app, const struct bid *b, int64_t *bid_id,
                                   bool *replayed, struct be_err *err)
{
    char a[24], u[24], amt[24];
    I64(a, b->auction_id);
    I64(u, b->user_id);
    I64(amt, b->amount);
    const char *params[4] = {b->cid, a, u, amt};
    PGresult *res = NULL;
    enum gf_status st = store_exec(
        app, "au_bid_existing",
        "SELECT c.kind = 'bid' AND c.user_id = $3::bigint AND c.item_id = $2::bigint"
        " AND c.amount = $4::bigint, coalesce(o.state, ''), coalesce(ab.id, 0)"
        " FROM coord_transactions c LEFT JOIN transaction_outbox o USING (correlation_id)"
        " LEFT JOIN auction_bids ab ON ab.correlation_id = c.correlation_id"
        " WHERE c.correlation_id = $1::uuid",
        4, params, &res, err);
    if (st != GF_OK)
        return st;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return be_db_failed(GF_EINTERNAL, err);
    }
    bool same = PQgetvalue(res, 0, 0)[0] == 't';
    enum outcome o = coord_outcome_of(PQgetvalue(res, 0, 1));
    int64_t id = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    PQclear(res);
    if (!same) {
        be_err_set(err, "correlation_id_reused",
                   "this correlation id already names another transaction: send a new one");
        return GF_ECONFLICT;
    }
    if (o == OUTCOME_SUCCEEDED && id > 0) {
        *bid_id = id;
        *replayed = true;
        return GF_OK;
    }
    if (o == OUTCOME_FAILED) {
        be_err_set(err, "transaction_failed",
                   "the bid with this correlation id failed and took nothing; send a new "
                   "correlation id to try again");
        return GF_ECONFLICT;
    }
    be_err_set(err, "request_in_progress",
               "a request with this correlation id is still in progress; retry later");
    return GF_ECONFLICT;
}

/* Does cid name a transaction already? (false when it cannot be told: the caller answers as
 * if not.) */
static bool cid_claimed(struct backend_app *app, const char *cid)
{
    const char *params[1] = {cid};
    PGresult *res = NULL;
    struct be_err ignored;
    if (store_exec(app, "au_cid_claimed",
                   "SELECT 1 FROM coord_transactions WHERE correlation_id = $1::uuid", 1, params,
                   &res, &ignored) != GF_OK)
        return false;
    bool claimed = PQntuples(res) == 1;
    PQclear(res);
    return claimed;
}

enum gf_status auction_bid(struct backend_app *app, const struct gf_auth_claims *who,
                           int64_t auction_id, int64_t user_id, int64_t amount, const char *cid,
                           const struct be_idem *idem, int64_t *bid_id, bool *replayed,
                           struct be_err *err)
{
    struct bid b = {
        .auction_id = auction_id, .user_id = user_id, .amount = amount, .cid = cid, .who = who};
    *replayed = false;
    /* Refused before anything is reserved: unknown, closed, too low, the seller's own. */
    enum gf_status st = bid_load(app, &b, err);
    if (st != GF_OK) {
        /* A resent correlation id whose bid committed is refused by now (it leads, or the
         * auction ended): its answer is that bid's. */
        if (st == GF_ECONFLICT && cid_claimed(app, cid))
            return bid_existing(app, &b, bid_id, replayed, err);
        return st;
    }
    st = coord_claim(app, cid, KIND_BID, user_id, auction_id, amount, err);
    if (st == GF_EEXISTS)
        return bid_existing(app, &b, bid_id, replayed, err);
    if (st != GF_OK)
        return st;
    coord_count_started(KIND_BID);
    st = coord_prepare_subtract(app, user_id, amount, cid, err);
    coord_count_prepared(KIND_BID, st);
    if (st != GF_OK) {
        coord_count_outcome(KIND_BID, coord_decide_failed(app, cid, DECIDER_BID));
        return st;
    }
    gf_failpoint("auction.bid_after_prepare");
    bool unknown = false, refused = false;
    enum bid_local out = BID_FAILED;
    struct gf_backoff bo;
    gf_backoff_init(&bo, 2, 50);
    for (int attempt = 0; attempt < app->cfg->lock_retries; attempt++) {
        out = bid_commit(app, &b, idem, &unknown, &st, err);
        if (out != BID_LOST_RACE)
            break;
        gf_counter_add(m_conflict_bid, 1);
        gf_sleep_ms(gf_backoff_next(&bo), NULL);
        /* Another bid (or the end) came first: read again; a refusal now ends the bid. */
        st = bid_load(app, &b, err);
        if (st != GF_OK) {
            refused = true;
            break;
        }
    }
    if (out == BID_DONE) {
        gf_failpoint("auction.bid_after_commit");
        coord_count_decided(DECIDER_BID, OUTCOME_SUCCEEDED, cid);
        coord_count_outcome(KIND_BID, OUTCOME_SUCCEEDED);
        relay_kick(app->relay);
        saga_kick(app->saga); /* the refund of the bid it outbid is due */
        *bid_id = b.bid_id;
        GF_INFO("bid auction=%" PRId64 " bid=%" PRId64 " user=%" PRId64 " amount=%" PRId64,
                auction_id, b.bid_id, user_id, amount);
        return GF_OK;
    }
    /* Not committed (or its answer lost): the decision that stands decides. */
    enum outcome o = coord_decide_failed(app, cid, DECIDER_BID);
    coord_count_outcome(KIND_BID, o);
    if (o == OUTCOME_SUCCEEDED) { /* our COMMIT happened; only its answer was lost */
        struct be_err ignored;
        saga_kick(app->saga);
        if (bid_existing(app, &b, bid_id, replayed, &ignored) == GF_OK) {
            *replayed = false;
            return GF_OK;
        }
        return be_db_failed(GF_EUNKNOWN, err);
    }
    if (o == OUTCOME_UNKNOWN && unknown)
        return GF_EUNKNOWN;
    if (refused)
        return st; /* closed, or another bid leads now (err says which) */
    switch (out) {
    case BID_LOST_RACE:
        be_err_set(err, "lock_conflict",
                   "too many concurrent bids on auction %" PRId64 ", try again", auction_id);
        return GF_ECONFLICT;
    case BID_DECIDED:
        be_err_set(err, "transaction_aborted",
                   "the bid was aborted while it waited (timed out), try again");
        return GF_ECONFLICT;
    default:
        return unknown ? be_db_failed(GF_EUNAVAILABLE, err) : st;
    }
}

/* ---- cancel ------------------------------------------------------------------------------ */

enum gf_status auction_cancel(struct backend_app *app, const struct gf_auth_claims *who,
                              int64_t auction_id, int64_t user_id, const char *cid,
                              const struct be_idem *idem, bool *replayed, struct be_err *err)
{
    *replayed = false;
    char a[24];
    I64(a, auction_id);
    struct gf_db_conn *c = NULL;
    PGresult *res = NULL;
    bool unknown = false;
    enum gf_status st = store_begin(app, &c, err);
    if (st != GF_OK)
        return st;
    const char *p1[2] = {a, cid};
    /* The row lock orders the cancellation with bids and the settlement. */
    st = store_run(c, "au_cancel_read",
                   "SELECT seller_id, status, leading_bid_id IS NOT NULL, user_item_id, item_id,"
                   " correlation_id, ends_at > clock_timestamp(), EXISTS (SELECT 1 FROM"
                   " saga_steps s WHERE s.auction_id = a.id AND s.kind = 'cancel'"
                   " AND s.correlation_id = $2::uuid)"
                   " FROM auctions a WHERE id = $1::bigint FOR UPDATE",
                   2, p1, &res, err);
    if (st != GF_OK)
        goto rollback;
    if (PQntuples(res) == 0) {
        be_err_set(err, "auction_not_found", "no auction %" PRId64, auction_id);
        st = GF_ENOTFOUND;
        goto rollback;
    }
    int64_t seller = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    if (seller != user_id) {
        be_err_set(err, "not_seller", "only the seller may cancel auction %" PRId64, auction_id);
        st = GF_EFORBIDDEN;
        goto rollback;
    }
    if (PQgetvalue(res, 0, 7)[0] == 't') { /* a resent correlation id: this cancellation's */
        *replayed = true;
        goto rollback; /* st is GF_OK: nothing to change */
    }
    if (strcmp(PQgetvalue(res, 0, 1), "open") != 0) {
        be_err_set(err, "auction_closed", "auction %" PRId64 " is %s already", auction_id,
                   PQgetvalue(res, 0, 1));
        st = GF_ECONFLICT;
        goto rollback;
    }
    if (PQgetvalue(res, 0, 6)[0] != 't') {
        be_err_set(err, "auction_closed",
                   "auction %" PRId64 " has ended: it is being settled, not cancelled", auction_id);
        st = GF_ECONFLICT;
        goto rollback;
    }
    if (PQgetvalue(res, 0, 2)[0] == 't') {
        be_err_set(err, "auction_has_bids",
                   "auction %" PRId64 " has bids: it can no longer be cancelled", auction_id);
        st = GF_ECONFLICT;
        goto rollback;
    }
    struct events_auction e = {.kind = EVENTS_AUCTION_CANCELLED,
                               .auction_id = auction_id,
                               .user_id = seller,
                               .item_id = strtoll(PQgetvalue(res, 0, 4), NULL, 10),
                               .user_item_id = strtoll(PQgetvalue(res, 0, 3), NULL, 10)};
    char auction_cid[GF_UUID_STRLEN + 1];
    snprintf(auction_cid, sizeof auction_cid, "%s", PQgetvalue(res, 0, 5));
    e.cid = auction_cid;
    PQclear(res);
    res = NULL;
    /* The unit goes back; the settlement will not run; the cancellation is the saga's step. */
    const char *p2[2] = {a, cid};
    st = store_run(c, "au_cancel",
                   "WITH a AS (UPDATE auctions SET status = 'cancelled', version = version + 1,"
                   " closed_at = clock_timestamp(), updated_at = clock_timestamp(),"
                   " result_user_item_id = user_item_id WHERE id = $1::bigint"
                   " RETURNING user_item_id, seller_id),"
                   " back AS (UPDATE user_items SET count = count + 1, version = version + 1,"
                   " updated_at = now() WHERE id = (SELECT user_item_id FROM a)),"
                   " skip AS (UPDATE saga_steps SET state = 'skipped', done_at = clock_timestamp(),"
                   " lease_owner = NULL, lease_until = NULL"
                   " WHERE auction_id = $1::bigint AND kind = 'settle' AND state = 'pending')"
                   " INSERT INTO saga_steps (auction_id, kind, state, user_id, amount,"
                   " correlation_id, done_at)"
                   " SELECT $1::bigint, k, 'done', a.seller_id, 1, $2::uuid, clock_timestamp()"
                   " FROM a, unnest(ARRAY['cancel', 'return_item']) k",
                   2, p2, NULL, err);
    if (st != GF_OK)
        goto rollback;
    st = auction_put_event(c, &e, err);
    if (st == GF_OK)
        st = audit_for(c, who, EVENTS_ACTION_AUCTION_CANCELLED_FOR_USER, user_id, auction_id,
                       e.item_id, 0, cid, err);
    if (st != GF_OK)
        goto rollback;
    st = idem_commit(c, idem, auction_id, &unknown, err);
    gf_db_release(app->pool, c);
    if (st == GF_OK) {
        relay_kick(app->relay);
        GF_INFO("auction cancelled auction=%" PRId64, auction_id);
    }
    return st;
rollback:
    PQclear(res);
    gf_db_rollback(c);
    gf_db_release(app->pool, c);
    return st;
}

/* ---- reads ------------------------------------------------------------------------------- */

/* One auction as JSON, built by PostgreSQL (the row a, with its leading bid). */
#define AUCTION_JSON                                                                               \
    "json_build_object('id', a.id, 'sellerId', a.seller_id, 'userItemId', a.user_item_id,"         \
    " 'itemId', a.item_id, 'minBid', a.min_bid, 'status', a.status,"                               \
    " 'endsAt', gf_iso(a.ends_at), 'leadingBid', CASE WHEN a.leading_bid_id IS NULL THEN"          \
    " NULL ELSE json_build_object('bidId', a.leading_bid_id, 'userId', a.leading_user_id,"         \
    " 'amount', a.leading_amount) END, 'resultUserItemId', a.result_user_item_id,"                 \
    " 'correlationId', a.correlation_id, 'version', a.version,"                                    \
    " 'createdAt', gf_iso(a.created_at), 'updatedAt', gf_iso(a.updated_at),"                       \
    " 'closedAt', gf_iso(a.closed_at))"

static enum gf_status text_answer(PGresult *res, char **out, size_t *len, struct be_err *err)
{
    const char *t = PQgetvalue(res, 0, 0);
    *len = strlen(t);
    *out = strdup(t);
    PQclear(res);
    return *out != NULL ? GF_OK : be_db_failed(GF_ENOMEM, err);
}

enum gf_status auction_list(struct backend_app *app, const char *status, const struct be_page *page,
                            char **out, size_t *len, struct be_err *err)
{
    char after[24], limit[24];
    I64(after, page->after);
    I64(limit, page->limit);
    const char *params[3] = {status, after, limit};
    PGresult *res = NULL;
    enum gf_status st = store_exec(
        app, "au_list",
        "SELECT json_build_object('auctions', coalesce(json_agg(x.j ORDER BY x.id), '[]'))::text"
        " FROM (SELECT a.id, " AUCTION_JSON " AS j FROM auctions a"
        " WHERE ($1::text IS NULL OR a.status = $1) AND a.id > $2::bigint"
        " ORDER BY a.id LIMIT $3::int) x",
        3, params, &res, err);
    if (st != GF_OK)
        return st;
    return text_answer(res, out, len, err);
}

enum gf_status auction_get(struct backend_app *app, int64_t id, char **out, size_t *len,
                           struct be_err *err)
{
    char a[24];
    I64(a, id);
    const char *params[1] = {a};
    PGresult *res = NULL;
    enum gf_status st = store_exec(
        app, "au_get",
        "SELECT (" AUCTION_JSON "::jsonb || jsonb_build_object("
        " 'bids', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', b.id, 'userId', b.user_id,"
        " 'amount', b.amount, 'correlationId', b.correlation_id, 'outbidBy', b.outbid_by,"
        " 'createdAt', gf_iso(b.created_at)) ORDER BY b.id), '[]')"
        " FROM auction_bids b WHERE b.auction_id = a.id),"
        " 'steps', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', s.id, 'kind', s.kind,"
        " 'state', s.state, 'bidId', s.bid_id, 'userId', s.user_id, 'amount', s.amount,"
        " 'correlationId', s.correlation_id, 'attempts', s.attempts,"
        " 'dueAt', gf_iso(s.due_at), 'createdAt', gf_iso(s.created_at),"
        " 'doneAt', gf_iso(s.done_at), 'lastError', s.last_error) ORDER BY s.id), '[]')"
        " FROM saga_steps s WHERE s.auction_id = a.id)))::text"
        " FROM auctions a WHERE a.id = $1::bigint",
        1, params, &res, err);
    if (st != GF_OK)
        return st;
    if (PQntuples(res) == 0) {
        PQclear(res);
        be_err_set(err, "auction_not_found", "no auction %" PRId64, id);
        return GF_ENOTFOUND;
    }
    return text_answer(res, out, len, err);
}
