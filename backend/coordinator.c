/* The coordinator of the two-phase commit with gxp (SPEC §5). A buy or an add-gxp prepares
 * on gxp, then commits locally; that local commit, which INSERTs the decision 'succeeded'
 * into transaction_outbox, is the commit point of the whole transaction. On any failure
 * after the prepare the decision 'failed' is INSERTed unless one exists — never upserted —
 * and ResolveTransaction (asked by gxp about stuck transactions) does the same, so exactly
 * one decision stands for each correlation id and replication carries it to gxp-db. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.pb-c.h"
#include "coordinator.h"
#include "gf/amqp.h"
#include "gf/clock.h"
#include "gf/console_feed.h"
#include "gf/failpoint.h"
#include "gf/log.h"
#include "validate.h"

/* Read-your-writes: has the user GXP that the backend committed (an add-gxp whose decision
 * 'succeeded' is in, so its client was answered 200) but gxp has not finalized yet? Its three
 * newest such adds of the last minutes are asked for on gxp. Only on the refusal path. */
static bool adds_in_flight(struct backend_app *app, int64_t user_id, const char *cid)
{
    char u[24];
    snprintf(u, sizeof u, "%" PRId64, user_id);
    const char *params[1] = {u};
    PGresult *res = NULL;
    struct be_err ignored;
    if (store_exec(app, "be_recent_adds",
                   "SELECT c.correlation_id FROM coord_transactions c"
                   " JOIN transaction_outbox o USING (correlation_id)"
                   " WHERE c.kind = 'add_gxp' AND c.user_id = $1::bigint"
                   " AND c.created_at > now() - interval '5 minutes' AND o.state = 'succeeded'"
                   " ORDER BY c.created_at DESC LIMIT 3",
                   1, params, &res, &ignored) != GF_OK)
        return false;
    bool pending = false;
    for (int r = 0; r < PQntuples(res) && !pending; r++)
        pending =
            coord_gxp_status(app, PQgetvalue(res, r, 0), cid) == GXP__TRANSACTION_STATUS__PENDING;
    PQclear(res);
    return pending;
}

/* A SUBTRACT refused for lack of funds (GF_EPRECONDITION) is tried again a few times over
 * ~35 ms, then — only while GXP the user was told were added is still on its way to gxp
 * (replication lag) — with back-off up to BACKEND_RYW_WAIT_MS: a client that adds then buys
 * expects to spend what it was told it has. Prepare is idempotent per id. A refusal that
 * stands ends the buy as a conflict with the balance: 409 insufficient_gxp (SPEC §2). */
enum gf_status coord_prepare_subtract(struct backend_app *app, int64_t user_id, int64_t amount,
                                      const char *cid, struct be_err *err)
{
    enum gf_status st = GF_EINTERNAL;
    struct gf_deadline deadline = gf_deadline_in_ms(app->cfg->ryw_wait_ms);
    int delay = 5;
    for (int attempt = 0;; attempt++) {
        st = coord_prepare(app, user_id, GXP__TRANSACTION_TYPE__SUBTRACT, amount, cid, err);
        if (st != GF_EPRECONDITION)
            return st;
        if (attempt >= 3 &&
            (gf_deadline_left_ms(deadline) < delay || !adds_in_flight(app, user_id, cid)))
            return GF_ECONFLICT;
        gf_sleep_ms(delay, NULL);
        delay = delay < 100 ? delay * 2 : 200;
        coord_count_prepare_retry();
    }
}

/* Claims cid for one transaction of ours before anything else happens under it: a client's
 * X-Correlation-Id names one transaction at most, so a reused id can never touch, decide or
 * answer for another request's transaction. GF_EEXISTS when cid names one already (see
 * settle_existing). */
enum gf_status coord_claim(struct backend_app *app, const char *cid, enum tx_kind kind,
                           int64_t user_id, int64_t item_id, int64_t amount, struct be_err *err)
{
    char u[24], i[24], a[24];
    snprintf(u, sizeof u, "%" PRId64, user_id);
    snprintf(i, sizeof i, "%" PRId64, item_id);
    snprintf(a, sizeof a, "%" PRId64, amount);
    const char *params[5] = {cid, coord_kind_names[kind], u, item_id > 0 ? i : NULL, a};
    enum gf_status st = store_exec(app, "be_claim",
                                   "INSERT INTO coord_transactions"
                                   " (correlation_id, kind, user_id, item_id, amount)"
                                   " VALUES ($1::uuid, $2, $3::bigint, $4::bigint, $5::bigint)",
                                   5, params, NULL, err);
    if (st == GF_OK)
        gf_console_note_tx(cid, coord_kind_names[kind], user_id, item_id > 0 ? item_id : -1, amount,
                           "claimed", NULL);
    return st; /* GF_EEXISTS: claimed already */
}

/* ---- decisions ------------------------------------------------------------------------- */

/* Records 'failed' unless a decision exists, and answers the decision that stands
 * (OUTCOME_UNKNOWN when the database cannot be reached: gxp's resolver will ask again later).
 * Two statements: an INSERT that waited for a concurrent commit of the same id needs a fresh
 * snapshot to see it. who is counted as the decider when this INSERT is the one that wrote the
 * row. A free buy (is_free) has no decision for gxp: its outcome in coord_transactions is
 * settled the same way. */
static enum outcome decide_failed(struct backend_app *app, const char *cid, enum decider who,
                                  bool is_free)
{
    struct gf_db_conn *c = NULL;
    PGresult *ins = NULL, *res = NULL;
    const char *params[1] = {cid};
    struct be_err ignored; /* what failed is logged; the caller answers with the outcome */
    enum outcome o = OUTCOME_UNKNOWN;
    if (store_acquire(app, &c, &ignored) != GF_OK)
        goto out;
    if (is_free) {
        if (store_run(c, "be_fail_free",
                      "UPDATE coord_transactions SET outcome = 'failed'"
                      " WHERE correlation_id = $1::uuid AND outcome IS NULL",
                      1, params, NULL, &ignored) == GF_OK &&
            store_run(c, "be_read_outcome",
                      "SELECT outcome FROM coord_transactions WHERE correlation_id = $1::uuid", 1,
                      params, &res, &ignored) == GF_OK &&
            PQntuples(res) == 1)
            o = coord_outcome_of(PQgetvalue(res, 0, 0));
        goto out;
    }
    if (store_run(c, "be_decide_failed",
                  "INSERT INTO transaction_outbox (correlation_id, state)"
                  " VALUES ($1::uuid, 'failed') ON CONFLICT DO NOTHING",
                  1, params, &ins, &ignored) != GF_OK)
        goto out;
    if (strcmp(PQcmdTuples(ins), "1") == 0)
        coord_count_decided(who, OUTCOME_FAILED, cid);
    if (store_run(c, "be_read_decision",
                  "SELECT state FROM transaction_outbox WHERE correlation_id = $1::uuid", 1, params,
                  &res, &ignored) == GF_OK &&
        PQntuples(res) == 1)
        o = coord_outcome_of(PQgetvalue(res, 0, 0));
out:
    PQclear(ins);
    PQclear(res);
    if (c != NULL)
        gf_db_release(app->pool, c);
    if (o == OUTCOME_UNKNOWN)
        GF_WARN("decision not recorded (gxp's resolver will ask) state=failed");
    return o;
}

enum outcome coord_decide_failed(struct backend_app *app, const char *cid, enum decider who)
{
    return decide_failed(app, cid, who, false);
}

/* A correlation id that names a transaction already (a client resent its X-Correlation-Id,
 * e.g. after a lost answer): the answer is that transaction's outcome, never a second one.
 * The same request (kind, user, item; for add-gxp the amount too): succeeded → its success
 * (*replayed); failed → 409 transaction_failed; undecided and younger than the takeover delay
 * → 409 request_in_progress; older → settled now with 'failed' unless its commit got there
 * first (the decision row is the fence, as for ResolveTransaction). Another request: 409
 * correlation_id_reused. */
static enum gf_status settle_existing(struct backend_app *app, const char *cid, enum tx_kind kind,
                                      int64_t user_id, int64_t item_id, int64_t amount,
                                      int64_t *user_item_id, bool *replayed, struct be_err *err)
{
    char age[24], u[24], i[24], a[24];
    snprintf(age, sizeof age, "%.3f", (double)app->cfg->idempotency_takeover_ms / 1e3);
    snprintf(u, sizeof u, "%" PRId64, user_id);
    snprintf(i, sizeof i, "%" PRId64, item_id);
    snprintf(a, sizeof a, "%" PRId64, amount);
    const char *params[6] = {cid, age, coord_kind_names[kind], u, i, a};
    for (int round = 0; round < 2; round++) {
        PGresult *res = NULL;
        /* same request?, the decision, old enough to settle?, the user item, free? */
        enum gf_status st = store_exec(
            app, "be_settle_existing",
            "SELECT c.kind = $3 AND c.user_id = $4::bigint AND coalesce(c.item_id, 0) = $5::bigint"
            " AND (c.kind = 'buy' OR c.amount = $6::bigint), coalesce(o.state, c.outcome, ''),"
            " c.created_at < now() - make_interval(secs => $2::float8), coalesce(ui.id, 0),"
            " c.amount = 0"
            " FROM coord_transactions c LEFT JOIN transaction_outbox o USING (correlation_id)"
            " LEFT JOIN user_items ui ON ui.user_id = c.user_id AND ui.item_id = c.item_id"
            " WHERE c.correlation_id = $1::uuid",
            6, params, &res, err);
        if (st != GF_OK)
            return st;
        if (PQntuples(res) != 1) { /* claims are never deleted: a bug */
            PQclear(res);
            return be_db_failed(GF_EINTERNAL, err);
        }
        bool same = PQgetvalue(res, 0, 0)[0] == 't';
        enum outcome o = coord_outcome_of(PQgetvalue(res, 0, 1));
        bool old = PQgetvalue(res, 0, 2)[0] == 't';
        int64_t ui = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
        bool is_free = kind == KIND_BUY && PQgetvalue(res, 0, 4)[0] == 't';
        PQclear(res);
        if (!same) {
            be_err_set(err, "correlation_id_reused",
                       "this correlation id already names another transaction: send a new one");
            return GF_ECONFLICT;
        }
        if (o == OUTCOME_SUCCEEDED) {
            *user_item_id = ui;
            *replayed = true;
            return GF_OK;
        }
        if (o == OUTCOME_FAILED) {
            be_err_set(err, "transaction_failed",
                       "the transaction with this correlation id failed and changed nothing; "
                       "send a new correlation id to try again");
            return GF_ECONFLICT;
        }
        if (!old || round > 0)
            break;
        if (decide_failed(app, cid, kind == KIND_BUY ? DECIDER_BUY : DECIDER_ADD_GXP, is_free) ==
            OUTCOME_UNKNOWN)
            return be_db_failed(GF_EUNAVAILABLE, err);
    }
    be_err_set(err, "request_in_progress",
               "a request with this correlation id is still in progress; retry later");
    return GF_ECONFLICT;
}

/* ---- create-user ---------------------------------------------------------------------- */

enum gf_status coord_create_user(struct backend_app *app, const struct gf_auth_claims *who,
                                 const char *name, const char *password_hash, const char *cid,
                                 const struct be_idem *idem, int64_t *user_id, struct be_err *err)
{
    struct gf_db_conn *c = NULL;
    PGresult *res = NULL;
    /* The user stays invisible until its gxp balance exists: both, or neither. */
    enum gf_status st = store_begin(app, &c, err);
    if (st != GF_OK)
        return st;
    const char *params[1] = {name};
    st = store_run(c, "be_create_user", "INSERT INTO users (name) VALUES ($1) RETURNING id", 1,
                   params, &res, err);
    if (st == GF_EEXISTS) /* the name is not echoed: answers never reflect client text back */
        be_err_set(err, "name_taken", "a user with this name exists already");
    else if (st == GF_EINVAL)
        be_err_set(err, "invalid_field", "the name is not valid");
    if (st != GF_OK)
        goto rollback;
    int64_t id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    if (password_hash != NULL) { /* it logs in with its name: one name space with operators */
        char uid[24];
        snprintf(uid, sizeof uid, "%" PRId64, id);
        const char *cred[3] = {name, uid, password_hash};
        PQclear(res);
        res = NULL;
        st = store_run(c, "be_create_credentials",
                       "INSERT INTO credentials (name, role, user_id, password_hash)"
                       " VALUES ($1, 'user', $2::bigint, $3)",
                       3, cred, &res, err);
        if (st == GF_EEXISTS)
            be_err_set(err, "name_taken", "an operator has this name");
        if (st != GF_OK)
            goto rollback;
    }
    st = coord_create_balance(app, id, cid, err);
    if (st != GF_OK)
        goto rollback;
    struct events_admin audit = {
        .action = EVENTS_ACTION_USER_CREATED, .who = who, .user_id = id, .target_id = id};
    st = store_audit(c, &audit, cid, err);
    if (st != GF_OK)
        goto rollback;
    bool unknown;
    /* On failure idem_commit rolled back and filled err. A zero balance may be left on gxp for
     * an id never shown: harmless, and re-used by no one (ids come from a sequence). */
    st = idem_commit(c, idem, id, &unknown, err);
    if (st == GF_OK) {
        relay_kick(app->relay);
        GF_INFO("user created user=%" PRId64, id);
        *user_id = id;
    }
    goto out;
rollback:
    gf_db_rollback(c);
out:
    PQclear(res);
    gf_db_release(app->pool, c);
    return st;
}

/* ---- buy ------------------------------------------------------------------------------ */

struct buy {
    int64_t user_id, item_id, cost;
    char price_version[24]; /* the stock row's version when the cost was read (buy_local) */
    const char *cid;
    const struct gf_auth_claims *who; /* an admin's buy for a user is audited */
    int64_t user_item_id;
};

/* Looks up the buyer, the item's cost and its stock, and claims cid for the buy when they
 * allow it — one statement, one round trip: 404 and out-of-stock before anything is claimed or
 * reserved; GF_EEXISTS when cid names a transaction already (coord_claim's answer). */
static enum gf_status buy_check_and_claim(struct backend_app *app, struct buy *b,
                                          struct be_err *err)
{
    char u[24], i[24];
    snprintf(u, sizeof u, "%" PRId64, b->user_id);
    snprintf(i, sizeof i, "%" PRId64, b->item_id);
    const char *params[3] = {b->cid, u, i};
    PGresult *res = NULL;
    enum gf_status st = store_exec(
        app, "be_buy_check_claim",
        "WITH chk AS (SELECT EXISTS (SELECT 1 FROM users WHERE id = $2::bigint) AS user_found,"
        " i.cost, m.count, m.version FROM (SELECT 1) one"
        " LEFT JOIN items i ON i.id = $3::bigint"
        " LEFT JOIN marketplace_items m ON m.item_id = i.id),"
        " claim AS (INSERT INTO coord_transactions (correlation_id, kind, user_id, item_id, amount)"
        " SELECT $1::uuid, 'buy', $2::bigint, $3::bigint, chk.cost FROM chk"
        " WHERE chk.user_found AND chk.count > 0"
        " ON CONFLICT (correlation_id) DO NOTHING RETURNING 1)"
        " SELECT chk.user_found, chk.cost, chk.count, (SELECT count(*) FROM claim), chk.version"
        " FROM chk",
        3, params, &res, err);
    if (st != GF_OK)
        return st;
    if (PQgetvalue(res, 0, 0)[0] != 't') {
        be_err_set(err, "user_not_found", "no user %" PRId64, b->user_id);
        st = GF_ENOTFOUND;
    } else if (PQgetisnull(res, 0, 1)) {
        be_err_set(err, "item_not_found", "no item %" PRId64, b->item_id);
        st = GF_ENOTFOUND;
    } else if (PQgetisnull(res, 0, 2)) {
        be_err_set(err, "not_on_marketplace", "item %" PRId64 " is not on the marketplace",
                   b->item_id);
        st = GF_ENOTFOUND;
    } else if (strcmp(PQgetvalue(res, 0, 2), "0") == 0) {
        be_err_set(err, "out_of_stock", "item %" PRId64 " is out of stock", b->item_id);
        st = GF_ECONFLICT;
    } else {
        b->cost = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        snprintf(b->price_version, sizeof b->price_version, "%s", PQgetvalue(res, 0, 4));
        if (strcmp(PQgetvalue(res, 0, 3), "1") == 0)
            gf_console_note_tx(b->cid, coord_kind_names[KIND_BUY], b->user_id, b->item_id, b->cost,
                               "claimed", NULL);
        else
            st = GF_EEXISTS; /* claimed already */
    }
    PQclear(res);
    return st;
}

enum local_outcome {
    LOCAL_DONE,
    LOCAL_OUT_OF_STOCK,
    LOCAL_PRICE_CHANGED, /* the cost changed since it was prepared */
    LOCAL_DECIDED,       /* a decision stood already: 'failed', by the resolver or a settle */
    LOCAL_ANSWERED,      /* idem_commit refused or lost the COMMIT: err says so */
    LOCAL_FAILED
};

/* The local transaction: user item + 1, the decision and the event, then stock − 1 — all or
 * nothing. The stock is taken by a conditional UPDATE (count > 0), not under optimistic
 * locking: buyers of one item do not edit what they read, they decrement a counter, so a
 * concurrent buyer waits for the row lock (for one commit) instead of losing a race and running
 * the whole transaction again (ARCHITECTURE §3, "Hot rows"). The price is checked once the row
 * is locked: a PATCH of the price bumps the stock row's version in the same statement (store.c),
 * and nothing else changes that version, so the version the UPDATE returns (the row's newest,
 * after any wait for its lock) equals the one read with the cost in buy_check_and_claim iff no
 * price change has committed since. Only when it moved is the cost read again, in a statement of
 * its own (a fresh snapshot, after the lock): the cost in force at this buy's commit must be the
 * one prepared. Three round trips in all: BEGIN with the user item, the decision with the stock
 * (gf_db_exec_batch), COMMIT. */
static enum local_outcome buy_local(struct gf_db_conn *c, struct buy *b, const struct be_idem *idem,
                                    bool *unknown, enum gf_status *st, struct be_err *err)
{
    char u[24], i[24];
    snprintf(u, sizeof u, "%" PRId64, b->user_id);
    snprintf(i, sizeof i, "%" PRId64, b->item_id);
    const char *pi[1] = {i};
    PGresult *res = NULL;
    enum local_outcome out = LOCAL_FAILED;

    *unknown = false;
    /* Round trip 1: BEGIN and the user item, sent together (gf_db_exec_batch). */
    const char *pu[2] = {u, i};
    const struct gf_db_stmt open[2] = {
        {"be_begin", "BEGIN", 0, NULL},
        {"be_user_item_add",
         "INSERT INTO user_items (user_id, item_id, count) VALUES ($1::bigint,"
         " $2::bigint, 1) ON CONFLICT (user_id, item_id) DO UPDATE"
         " SET count = user_items.count + 1, version = user_items.version + 1,"
         " updated_at = now() RETURNING id",
         2, pu},
    };
    PGresult *ro[2];
    *st = be_db_failed(gf_db_exec_batch(c, open, 2, ro, NULL), err);
    if (*st != GF_OK)
        goto rollback;
    PQclear(ro[0]);
    b->user_item_id = strtoll(PQgetvalue(ro[1], 0, 0), NULL, 10);
    PQclear(ro[1]);
    /* The event goes out through the outbox, written in this same transaction: it exists
     * iff the buy commits (SPEC §4); the relay publishes it. An admin's buy for a user is
     * audited too, by the same statement ($3, NULL for a user's own buy): the act first, then
     * the buy it made (the outbox's order is the order of publication). */
    char payload[2 * EVENTS_PAYLOAD_MAX + 3], audit[EVENTS_ADMIN_HEX_MAX];
    if (events_buy_payload(b->user_id, b->item_id, b->user_item_id, b->cid, payload,
                           sizeof payload) != GF_OK) {
        *st = be_db_failed(GF_EINTERNAL, err); /* ids past the event's uint32: a bug */
        goto rollback;
    }
    bool audited = b->who->role == GF_ROLE_ADMIN;
    if (audited) {
        struct events_admin a = {.action = EVENTS_ACTION_BOUGHT_FOR_USER,
                                 .who = b->who,
                                 .user_id = b->user_id,
                                 .target_id = b->user_item_id,
                                 .item_id = b->item_id,
                                 .cost = b->cost};
        if (events_admin_payload(&a, b->cid, audit, sizeof audit) != GF_OK) {
            *st = be_db_failed(GF_EINTERNAL, err);
            goto rollback;
        }
    }
    /* Round trip 2: the decision with the event, then the stock, sent together. The stock
     * last: its row stays locked only from here to COMMIT, the window in which every other
     * buyer of the item waits. A buy leaves the version alone: it counts the item's price
     * changes. */
    const char *pe[3] = {b->cid, payload, audited ? audit : NULL};
    const struct gf_db_stmt decide_and_take[2] = {
        b->cost > 0
            /* The decision 'succeeded' commits the distributed transaction (SPEC §5). */
            ? (struct gf_db_stmt){"be_decide_succeeded",
                                  "WITH decision AS (INSERT INTO transaction_outbox"
                                  " (correlation_id, state) VALUES ($1::uuid, 'succeeded'))"
                                  " INSERT INTO event_outbox (event_name, correlation_id, payload)"
                                  " SELECT e.name, $1::uuid, e.payload FROM (VALUES"
                                  " (1, '" GF_EVENT_ADMIN_ACTION "', $3::bytea),"
                                  " (2, '" GF_EVENT_BUY_ITEM "', $2::bytea)) e(ord, name, payload)"
                                  " WHERE e.payload IS NOT NULL ORDER BY e.ord",
                                  3, pe}
            /* A free buy's outcome is written once in its claim, fenced like a decision. */
            : (struct gf_db_stmt){"be_buy_free",
                                  "WITH o AS (UPDATE coord_transactions SET outcome = 'succeeded'"
                                  " WHERE correlation_id = $1::uuid AND outcome IS NULL"
                                  " RETURNING 1)"
                                  " INSERT INTO event_outbox (event_name, correlation_id, payload)"
                                  " SELECT e.name, $1::uuid, e.payload FROM o, (VALUES"
                                  " (1, '" GF_EVENT_ADMIN_ACTION "', $3::bytea),"
                                  " (2, '" GF_EVENT_BUY_ITEM "', $2::bytea)) e(ord, name, payload)"
                                  " WHERE e.payload IS NOT NULL ORDER BY e.ord",
                                  3, pe},
        {"be_stock_take",
         "UPDATE marketplace_items SET count = count - 1, updated_at = now()"
         " WHERE item_id = $1::bigint AND count > 0 RETURNING version",
         1, pi},
    };
    PGresult *rd[2];
    int failed;
    int64_t t0 = gf_mono_us();
    *st = be_db_failed(gf_db_exec_batch(c, decide_and_take, 2, rd, &failed), err);
    coord_time_stock_take(gf_mono_us() - t0);
    if (*st == GF_EEXISTS && failed == 0 && b->cost > 0) {
        out = LOCAL_DECIDED; /* gxp's resolver recorded 'failed' first: that stands */
        goto rollback;
    }
    if (*st != GF_OK)
        goto rollback;
    bool settled = b->cost == 0 && strcmp(PQcmdTuples(rd[0]), "0") == 0;
    PQclear(rd[0]);
    res = rd[1];
    if (settled) {
        out = LOCAL_DECIDED; /* a free buy settled 'failed' by a resent correlation id */
        goto rollback;
    }
    if (PQntuples(res) == 0) {
        out = LOCAL_OUT_OF_STOCK; /* sold out (or off the marketplace) since buy_check */
        goto rollback;
    }
    bool repriced = strcmp(PQgetvalue(res, 0, 0), b->price_version) != 0;
    PQclear(res);
    res = NULL;
    if (repriced) { /* a PATCH of the item committed since the cost was read: read it again */
        *st = store_run(c, "be_cost_read", "SELECT cost FROM items WHERE id = $1::bigint", 1, pi,
                        &res, err);
        if (*st != GF_OK)
            goto rollback;
        if (PQntuples(res) == 0 || strtoll(PQgetvalue(res, 0, 0), NULL, 10) != b->cost) {
            out = LOCAL_PRICE_CHANGED;
            goto rollback;
        }
        PQclear(res);
        res = NULL;
    }
    gf_failpoint("buy.before_commit"); /* the stock row and the decision are locked here */
    *st = idem_commit(c, idem, b->user_item_id, unknown, err);
    return *st == GF_OK ? LOCAL_DONE : LOCAL_ANSWERED;
rollback:
    PQclear(res);
    gf_db_rollback(c);
    return out;
}

static int failpoint_buy_pause_ms(void)
{
#ifdef GF_FAILPOINTS
    const char *v = getenv("BACKEND_FAILPOINT_BUY_PAUSE_MS");
    return v ? atoi(v) : 0;
#else
    return 0;
#endif
}

/* The local transaction on a connection of its own (buy_local begins it). */
static enum local_outcome buy_commit(struct backend_app *app, struct buy *b,
                                     const struct be_idem *idem, bool *unknown, enum gf_status *st,
                                     struct be_err *err)
{
    struct gf_db_conn *c = NULL;
    *unknown = false;
    *st = store_acquire(app, &c, err);
    if (*st != GF_OK)
        return LOCAL_FAILED;
    enum local_outcome out = buy_local(c, b, idem, unknown, st, err);
    gf_db_release(app->pool, c);
    return out;
}

/* The answer of a buy whose local transaction did not commit, or whose COMMIT's answer was
 * lost: the decision that stands decides. st comes mapped (err filled) from store_run,
 * store_begin or idem_commit. */
static enum gf_status buy_not_done(struct backend_app *app, const struct buy *b,
                                   enum local_outcome out, bool unknown, enum gf_status st,
                                   int64_t *user_item_id, struct be_err *err)
{
    enum outcome o = decide_failed(app, b->cid, DECIDER_BUY, b->cost == 0);
    if (b->cost > 0)
        coord_count_outcome(KIND_BUY, o);
    if (o == OUTCOME_SUCCEEDED) {
        /* Our COMMIT did happen; only its answer was lost. */
        if (b->cost > 0)
            coord_count_decided(DECIDER_BUY, OUTCOME_SUCCEEDED, b->cid);
        *user_item_id = b->user_item_id;
        return GF_OK;
    }
    if (o == OUTCOME_UNKNOWN && unknown)
        return GF_EUNKNOWN; /* outcome_unknown, said by idem_commit */
    switch (out) {
    case LOCAL_OUT_OF_STOCK:
        be_err_set(err, "out_of_stock", "item %" PRId64 " is out of stock", b->item_id);
        return GF_ECONFLICT;
    case LOCAL_PRICE_CHANGED:
        be_err_set(err, "price_changed",
                   "the price of item %" PRId64 " changed during the buy; nothing was charged, "
                   "buy again at the new price",
                   b->item_id);
        return GF_ECONFLICT;
    case LOCAL_DECIDED:
        be_err_set(err, "transaction_aborted",
                   "the transaction was aborted while it waited (timed out), try again");
        return GF_ECONFLICT;
    case LOCAL_ANSWERED: /* the COMMIT did not happen after all: the decision says failed */
        return unknown ? be_db_failed(GF_EUNAVAILABLE, err) : st;
    default:
        return st;
    }
}

enum gf_status coord_buy(struct backend_app *app, const struct gf_auth_claims *who, int64_t user_id,
                         int64_t item_id, const char *cid, const struct be_idem *idem,
                         int64_t *user_item_id, bool *replayed, struct be_err *err)
{
    struct buy b = {.user_id = user_id, .item_id = item_id, .cid = cid, .who = who};
    *replayed = false;
    /* Free buys claim their id too: it names their event, and one transaction at most. */
    enum gf_status st = buy_check_and_claim(app, &b, err);
    if (st == GF_EEXISTS)
        return settle_existing(app, cid, KIND_BUY, user_id, item_id, b.cost, user_item_id, replayed,
                               err);
    if (st != GF_OK)
        return st;
    if (b.cost > 0) {
        coord_count_started(KIND_BUY);
        st = coord_prepare_subtract(app, user_id, b.cost, cid, err);
        coord_count_prepared(KIND_BUY, st);
        if (st != GF_OK) { /* it may have reached gxp: decide */
            coord_count_outcome(KIND_BUY, decide_failed(app, cid, DECIDER_BUY, false));
            return st;
        }
    }
    int pause = failpoint_buy_pause_ms();
    if (pause > 0)
        gf_sleep_ms(pause, NULL);
    gf_failpoint("buy.after_prepare");

    bool unknown = false;
    enum local_outcome out = buy_commit(app, &b, idem, &unknown, &st, err);
    if (out != LOCAL_DONE)
        return buy_not_done(app, &b, out, unknown, st, user_item_id, err);
    gf_failpoint("buy.after_commit");
    if (b.cost > 0) {
        coord_count_decided(DECIDER_BUY, OUTCOME_SUCCEEDED, cid);
        coord_count_outcome(KIND_BUY, OUTCOME_SUCCEEDED);
    }
    relay_kick(app->relay); /* publish the event now rather than at the next poll */
    *user_item_id = b.user_item_id;
    GF_INFO("bought user=%" PRId64 " item=%" PRId64 " cost=%" PRId64, user_id, item_id, b.cost);
    return GF_OK;
}

/* ---- add-gxp -------------------------------------------------------------------------- */

/* The commit point of an add-gxp: its decision 'succeeded' and the operator's audit event
 * (AdminActionEvent gxp_minted) in one statement — with the key's answer, in one transaction,
 * when the request has an Idempotency-Key. A mint that fails leaves no audit. GF_EEXISTS when
 * a decision stood already (the resolver's 'failed'); *unknown when the COMMIT's answer was
 * lost. */
static enum gf_status decide_added(struct backend_app *app, const struct events_admin *audit,
                                   const char *cid, const struct be_idem *idem, bool *unknown,
                                   struct be_err *err)
{
    struct gf_db_conn *c = NULL;
    char payload[EVENTS_ADMIN_HEX_MAX];
    *unknown = false;
    if (events_admin_payload(audit, cid, payload, sizeof payload) != GF_OK) {
        GF_ERROR("audit event not encoded (a number past the proto's) action=%s", audit->action);
        return be_db_failed(GF_EINTERNAL, err);
    }
    const char *params[2] = {cid, payload};
    static const char sql[] = "WITH decision AS (INSERT INTO transaction_outbox"
                              " (correlation_id, state) VALUES ($1::uuid, 'succeeded'))"
                              " INSERT INTO event_outbox (event_name, correlation_id, payload)"
                              " VALUES ('" GF_EVENT_ADMIN_ACTION "', $1::uuid, $2::bytea)";
    if (idem == NULL || idem->key == NULL) {
        enum gf_status st = store_write(app, "be_decide_add", sql, 2, params, NULL, err);
        *unknown = st == GF_EUNKNOWN;
        return st;
    }
    enum gf_status st = store_begin(app, &c, err);
    if (st != GF_OK)
        return st;
    st = store_run(c, "be_decide_add", sql, 2, params, NULL, err);
    if (st == GF_OK)
        st = idem_commit(c, idem, 0, unknown, err);
    else
        gf_db_rollback(c);
    gf_db_release(app->pool, c);
    return st;
}

/* Looks up the user and claims cid for the add when it exists — one statement, one round trip:
 * 404 before anything is claimed; GF_EEXISTS when cid names a transaction already. */
static enum gf_status add_check_and_claim(struct backend_app *app, const char *cid, int64_t user_id,
                                          int64_t amount, struct be_err *err)
{
    char u[24], a[24];
    snprintf(u, sizeof u, "%" PRId64, user_id);
    snprintf(a, sizeof a, "%" PRId64, amount);
    const char *params[3] = {cid, u, a};
    PGresult *res = NULL;
    enum gf_status st = store_exec(
        app, "be_add_check_claim",
        "WITH chk AS (SELECT EXISTS (SELECT 1 FROM users WHERE id = $2::bigint) AS user_found),"
        " claim AS (INSERT INTO coord_transactions (correlation_id, kind, user_id, amount)"
        " SELECT $1::uuid, 'add_gxp', $2::bigint, $3::bigint FROM chk WHERE chk.user_found"
        " ON CONFLICT (correlation_id) DO NOTHING RETURNING 1)"
        " SELECT chk.user_found, (SELECT count(*) FROM claim) FROM chk",
        3, params, &res, err);
    if (st != GF_OK)
        return st;
    if (PQgetvalue(res, 0, 0)[0] != 't') {
        be_err_set(err, "user_not_found", "no user %" PRId64, user_id);
        st = GF_ENOTFOUND;
    } else if (strcmp(PQgetvalue(res, 0, 1), "1") == 0) {
        gf_console_note_tx(cid, coord_kind_names[KIND_ADD_GXP], user_id, -1, amount, "claimed",
                           NULL);
    } else {
        st = GF_EEXISTS; /* claimed already */
    }
    PQclear(res);
    return st;
}

enum gf_status coord_add_gxp(struct backend_app *app, const struct gf_auth_claims *who,
                             int64_t user_id, int64_t amount, const char *cid,
                             const struct be_idem *idem, bool *replayed, struct be_err *err)
{
    *replayed = false;
    enum gf_status st = add_check_and_claim(app, cid, user_id, amount, err);
    if (st == GF_EEXISTS) {
        int64_t none;
        return settle_existing(app, cid, KIND_ADD_GXP, user_id, 0, amount, &none, replayed, err);
    }
    if (st != GF_OK)
        return st;
    coord_count_started(KIND_ADD_GXP);
    st = coord_prepare(app, user_id, GXP__TRANSACTION_TYPE__ADD, amount, cid, err);
    coord_count_prepared(KIND_ADD_GXP, st);
    if (st != GF_OK) {
        coord_count_outcome(KIND_ADD_GXP, decide_failed(app, cid, DECIDER_ADD_GXP, false));
        return st;
    }
    gf_failpoint("add_gxp.after_prepare");
    bool unknown = false;
    struct events_admin audit = {
        .action = EVENTS_ACTION_GXP_MINTED, .who = who, .user_id = user_id, .amount = amount};
    st = decide_added(app, &audit, cid, idem, &unknown, err);
    if (st == GF_OK) {
        relay_kick(app->relay);
        gf_failpoint("add_gxp.after_commit");
        coord_count_decided(DECIDER_ADD_GXP, OUTCOME_SUCCEEDED, cid);
        coord_count_outcome(KIND_ADD_GXP, OUTCOME_SUCCEEDED);
        GF_INFO("gxp added user=%" PRId64 " amount=%" PRId64, user_id, amount);
        return GF_OK;
    }
    if (st == GF_EEXISTS) {
        coord_count_outcome(KIND_ADD_GXP, OUTCOME_FAILED);
        be_err_set(err, "transaction_aborted",
                   "the transaction was aborted while it waited (timed out), try again");
        return GF_ECONFLICT;
    }
    enum outcome o = decide_failed(app, cid, DECIDER_ADD_GXP, false);
    coord_count_outcome(KIND_ADD_GXP, o);
    if (o == OUTCOME_SUCCEEDED) {
        coord_count_decided(DECIDER_ADD_GXP, OUTCOME_SUCCEEDED,
                            cid); /* ours; the answer was lost */
        return GF_OK;
    }
    if (o == OUTCOME_FAILED && unknown) /* the COMMIT did not happen after all */
        return be_db_failed(GF_EUNAVAILABLE, err);
    return st;
}

/* ---- backend.Backend/ResolveTransaction ----------------------------------------------- */

grpc_status_code coord_grpc_code(enum gf_status st)
{
    switch (st) {
    case GF_OK:
        return GRPC_STATUS_OK;
    case GF_EINVAL:
        return GRPC_STATUS_INVALID_ARGUMENT;
    case GF_ETIMEOUT:
        return GRPC_STATUS_DEADLINE_EXCEEDED;
    case GF_EINTERNAL:
    case GF_PENDING:
        return GRPC_STATUS_INTERNAL;
    default:
        return GRPC_STATUS_UNAVAILABLE;
    }
}

static enum gf_status resolve_transaction(struct gf_grpc_call *call, void *arg,
                                          const ProtobufCMessage *msg, ProtobufCMessage *out)
{
    struct backend_app *app = arg;
    const Backend__ResolveTransactionRequest *req = (const Backend__ResolveTransactionRequest *)msg;
    Backend__ResolveTransactionResponse *resp = (Backend__ResolveTransactionResponse *)out;
    char cid[37];
    if (!validate_resolve_request(req, cid)) {
        coord_count_resolve(RESOLVE_INVALID);
        gf_grpc_set_error(call, "correlationId must be a UUID");
        return GF_EINVAL;
    }
    gf_log_set_cid(cid);
    if (!atomic_load(&app->migrated)) {
        coord_count_resolve(RESOLVE_UNAVAILABLE);
        gf_grpc_set_error(call, "the backend database is not ready");
        return GF_EUNAVAILABLE;
    }
    gf_failpoint("resolve.before_decide");
    enum outcome o = decide_failed(app, cid, DECIDER_RESOLVE, false);
    gf_failpoint("resolve.after_decide");
    if (o == OUTCOME_UNKNOWN) {
        coord_count_resolve(RESOLVE_UNAVAILABLE);
        gf_grpc_set_error(call, "the backend database is unavailable");
        return GF_EUNAVAILABLE;
    }
    coord_count_resolve(o == OUTCOME_SUCCEEDED ? RESOLVE_SUCCEEDED : RESOLVE_FAILED);
    GF_INFO("transaction resolved for gxp state=%s", coord_outcome_names[o]);
    resp->correlationid = gf_grpc_strdup(call, cid);
    resp->state = gf_grpc_strdup(call, coord_outcome_names[o]);
    return resp->correlationid && resp->state ? GF_OK : GF_ENOMEM;
}

const struct gf_grpc_method coord_methods[] = {
    {"/backend.Backend/ResolveTransaction", &backend__resolve_transaction_request__descriptor,
     &backend__resolve_transaction_response__descriptor, resolve_transaction},
};
const int coord_nmethods = sizeof coord_methods / sizeof coord_methods[0];
