/* The auction saga's runners (ARCHITECTURE.md §3d): a few threads in every backend replica that
 * claim due steps from saga_steps and run them. A step is claimed under a lease (its runner's
 * token and an expiry, taken with SKIP LOCKED, so two runners never hold one step at once and
 * a dead runner's steps are taken over once its lease expires), run, and marked done by the
 * transaction that does its work, fenced by the token: the lease is an optimization, the fence
 * is what makes a step happen once.
 *
 *   settle   at ends_at, one local transaction: the auction closes (the bids' optimistic lock
 *            on the auction row orders it with every bid), the unit goes to the winner (or back
 *            to the seller), the payout step is written, AuctionSettledEvent.
 *   refund   an outbid bid paid back, payout the winning amount credited to the seller: a
 *            two-phase commit with gxp (ADD) under a correlation id derived from the saga and
 *            the step, so a step run again prepares the same transaction; its decision
 *            'succeeded' and the step's 'done' commit together. If gxp's resolver decided that
 *            transaction 'failed' first, the step moves on to its next attempt's id: an
 *            attempt's decision is final, and only one attempt's can be 'succeeded'. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator.h"
#include "gf/clock.h"
#include "gf/console_feed.h"
#include "gf/failpoint.h"
#include "gf/log.h"
#include "gf/metrics.h"
#include "gf/uuid.h"

#define SAGA_WORKERS_MAX 16
#define GXP_RETRY_S "1" /* a gxp step that could not reach gxp is due again after this */

enum step_kind { STEP_SETTLE, STEP_REFUND, STEP_PAYOUT, NSTEP_KINDS };
static const char *const step_names[NSTEP_KINDS] = {"settle", "refund", "payout"};
enum step_result { STEP_DONE, STEP_RETRY, STEP_LOST, STEP_FAILED, NSTEP_RESULTS };
static const char *const result_names[NSTEP_RESULTS] = {"done", "retry", "lease_lost", "failed"};

struct step {
    int64_t id, auction_id, bid_id, user_id, amount;
    enum step_kind kind;
    char cid[GF_UUID_STRLEN + 1];
    int64_t late_us; /* from due_at to the claim */
};

struct saga;
struct runner {
    struct saga *s;
    int index;
    pthread_t thread;
    bool started;
    uint64_t seen_kicks;
};

struct saga {
    struct backend_app *app;
    struct gf_db_pool *pool; /* its own: under load request threads hold every pooled one */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t kicks;
    atomic_bool stop;
    int n;
    struct runner runners[SAGA_WORKERS_MAX];
    struct gf_counter *steps[NSTEP_KINDS][NSTEP_RESULTS];
    struct gf_histogram *late;
};

void saga_kick(struct saga *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->kicks++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void wait_kick(struct runner *r, int64_t ms)
{
    struct saga *s = r->s;
    struct timespec until = gf_deadline_mono_ts(gf_deadline_in_ms(ms), -1);
    pthread_mutex_lock(&s->mu);
    while (s->kicks == r->seen_kicks && !s->stop) {
        if (pthread_cond_timedwait(&s->cv, &s->mu, &until) != 0)
            break;
    }
    r->seen_kicks = s->kicks;
    pthread_mutex_unlock(&s->mu);
}

#define I64(buf, v) snprintf(buf, sizeof buf, "%" PRId64, (int64_t)(v))

/* ---- the fence ------------------------------------------------------------------------------ */

static const char SQL_STEP_DONE[] =
    "UPDATE saga_steps SET state = 'done', done_at = clock_timestamp(), lease_owner = NULL,"
    " lease_until = NULL, last_error = NULL"
    " WHERE id = $1::bigint AND lease_owner = $2::uuid AND state = 'pending' RETURNING 1";

/* Marks the step done inside the open transaction on c, if this runner still holds it:
 * GF_OK, or GF_ECONFLICT when its lease went to another runner (the caller rolls back). */
static enum gf_status step_done(struct gf_db_conn *c, const struct step *st, const char *token,
                                struct be_err *err)
{
    char id[24];
    I64(id, st->id);
    const char *p[2] = {id, token};
    PGresult *res = NULL;
    enum gf_status rc = store_run(c, "sg_done", SQL_STEP_DONE, 2, p, &res, err);
    if (rc == GF_OK && PQntuples(res) != 1)
        rc = GF_ECONFLICT;
    PQclear(res);
    return rc;
}

/* Gives the step back, due again after delay_s, with why it did not finish. */
static void step_release(struct gf_db_conn *c, const struct step *st, const char *token,
                         const char *delay_s, const char *why)
{
    char id[24];
    I64(id, st->id);
    const char *p[4] = {id, token, delay_s, why};
    struct be_err ignored;
    if (store_run(c, "sg_release",
                  "UPDATE saga_steps SET lease_owner = NULL, lease_until = NULL,"
                  " due_at = clock_timestamp() + make_interval(secs => $3::float8),"
                  " last_error = $4 WHERE id = $1::bigint AND lease_owner = $2::uuid"
                  " AND state = 'pending'",
                  4, p, NULL, &ignored) != GF_OK)
        GF_WARN("saga step not released (its lease will expire) step=%" PRId64, st->id);
}

/* ---- settle ------------------------------------------------------------------------------- */

static enum step_result run_settle(struct saga *s, struct gf_db_conn *c, const struct step *st,
                                   const char *token)
{
    struct be_err err = {0};
    PGresult *res = NULL;
    char a[24], sid[24];
    I64(a, st->auction_id);
    I64(sid, st->id);
    if (gf_db_exec_simple(c, "BEGIN") != GF_OK)
        return STEP_FAILED;
    const char *p1[1] = {a};
    /* Closes the auction: the same row every bid's optimistic lock names. */
    enum gf_status rc =
        store_run(c, "sg_settle_close",
                  "UPDATE auctions SET status = 'settled', closed_at = clock_timestamp(),"
                  " updated_at = clock_timestamp(), version = version + 1"
                  " WHERE id = $1::bigint AND status = 'open' AND ends_at <= clock_timestamp()"
                  " RETURNING seller_id, item_id, user_item_id, coalesce(leading_bid_id, 0),"
                  " coalesce(leading_user_id, 0), coalesce(leading_amount, 0), correlation_id",
                  1, p1, &res, &err);
    if (rc != GF_OK)
        goto failed;
    if (PQntuples(res) == 0) { /* cancelled (its step is skipped then), or not yet due */
        PQclear(res);
        res = NULL;
        const char *p[2] = {sid, token};
        rc = store_run(c, "sg_settle_skip",
                       "UPDATE saga_steps SET state = 'skipped', done_at = clock_timestamp(),"
                       " lease_owner = NULL, lease_until = NULL"
                       " WHERE id = $1::bigint AND lease_owner = $2::uuid AND state = 'pending'"
                       " AND EXISTS (SELECT 1 FROM auctions WHERE id = saga_steps.auction_id"
                       " AND status <> 'open')",
                       2, p, NULL, &err);
        if (rc != GF_OK)
            goto failed;
        return gf_db_exec_simple(c, "COMMIT") == GF_OK ? STEP_DONE : STEP_FAILED;
    }
    struct events_auction e = {.kind = EVENTS_AUCTION_SETTLED,
                               .auction_id = st->auction_id,
                               .user_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10),
                               .item_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10),
                               .bid_id = strtoll(PQgetvalue(res, 0, 3), NULL, 10),
                               .winner_id = strtoll(PQgetvalue(res, 0, 4), NULL, 10),
                               .amount = strtoll(PQgetvalue(res, 0, 5), NULL, 10)};
    char auction_cid[GF_UUID_STRLEN + 1], seller[24], item[24], seller_ui[24], bid[24], winner[24],
        amount[24];
    snprintf(auction_cid, sizeof auction_cid, "%s", PQgetvalue(res, 0, 6));
    snprintf(seller, sizeof seller, "%s", PQgetvalue(res, 0, 0));
    snprintf(item, sizeof item, "%s", PQgetvalue(res, 0, 1));
    snprintf(seller_ui, sizeof seller_ui, "%s", PQgetvalue(res, 0, 2));
    snprintf(bid, sizeof bid, "%s", PQgetvalue(res, 0, 3));
    snprintf(winner, sizeof winner, "%s", PQgetvalue(res, 0, 4));
    snprintf(amount, sizeof amount, "%s", PQgetvalue(res, 0, 5));
    e.cid = auction_cid;
    PQclear(res);
    res = NULL;
    const bool won = e.winner_id > 0;
    /* The unit: to the winner (their user item of the item, made if need be), or back. */
    const char *p2[7] = {a, won ? winner : seller, item, seller_ui, bid, amount, won ? "1" : "0"};
    rc = store_run(
        c, "sg_settle_deliver",
        "WITH ui AS (INSERT INTO user_items (user_id, item_id, count)"
        " SELECT $2::bigint, $3::bigint, 1 WHERE $7::int = 1"
        " ON CONFLICT (user_id, item_id) DO UPDATE SET count = user_items.count + 1,"
        " version = user_items.version + 1, updated_at = now() RETURNING id),"
        " back AS (UPDATE user_items SET count = count + 1, version = version + 1,"
        " updated_at = now() WHERE id = $4::bigint AND $7::int = 0 RETURNING id),"
        " dest AS (SELECT id FROM ui UNION ALL SELECT id FROM back),"
        " res AS (UPDATE auctions SET result_user_item_id = (SELECT id FROM dest)"
        " WHERE id = $1::bigint),"
        " steps AS (INSERT INTO saga_steps (auction_id, kind, state, bid_id, user_id, amount,"
        " correlation_id, done_at)"
        " SELECT $1::bigint, CASE WHEN $7::int = 1 THEN 'deliver' ELSE 'return_item' END, 'done',"
        " nullif($5::bigint, 0), $2::bigint, 1, NULL, clock_timestamp()"
        " UNION ALL SELECT $1::bigint, 'payout', 'pending', $5::bigint, a.seller_id, $6::bigint,"
        " saga_step_cid(a.correlation_id, 'payout', $5::bigint, 0), NULL"
        " FROM auctions a WHERE a.id = $1::bigint AND $7::int = 1)"
        " SELECT id FROM dest",
        7, p2, &res, &err);
    if (rc != GF_OK)
        goto failed;
    if (PQntuples(res) != 1) {
        GF_ERROR("auction settlement found no user item to put the unit in auction=%" PRId64,
                 st->auction_id);
        goto failed;
    }
    e.user_item_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    res = NULL;
    if (auction_put_event(c, &e, &err) != GF_OK)
        goto failed;
    rc = step_done(c, st, token, &err);
    if (rc == GF_ECONFLICT) {
        gf_db_rollback(c);
        return STEP_LOST;
    }
    if (rc != GF_OK)
        goto failed;
    gf_failpoint("saga.settle_before_commit");
    if (gf_db_exec_simple(c, "COMMIT") != GF_OK)
        return STEP_FAILED; /* not committed, or unknown: either way the step runs again */
    gf_failpoint("saga.settle_after_commit");
    relay_kick(s->app->relay);
    if (won)
        saga_kick(s); /* the payout is due */
    GF_INFO("auction settled auction=%" PRId64 " winner=%" PRId64 " amount=%" PRId64,
            st->auction_id, e.winner_id, e.amount);
    return STEP_DONE;
failed:
    PQclear(res);
    gf_db_rollback(c);
    return STEP_FAILED;
}

/* ---- refund and payout: ADD on gxp ---------------------------------------------------------- */

/* The decision that stands for cid ('' when none), or NULL when it could not be read. */
static enum outcome decision_of(struct gf_db_conn *c, const char *cid, bool *none)
{
    const char *p[1] = {cid};
    PGresult *res = NULL;
    struct be_err ignored;
    *none = false;
    if (store_run(c, "sg_decision",
                  "SELECT state FROM transaction_outbox WHERE correlation_id = $1::uuid", 1, p,
                  &res, &ignored) != GF_OK)
        return OUTCOME_UNKNOWN;
    enum outcome o = OUTCOME_UNKNOWN;
    if (PQntuples(res) == 0)
        *none = true;
    else
        o = coord_outcome_of(PQgetvalue(res, 0, 0));
    PQclear(res);
    return o;
}

/* The attempt's transaction was decided 'failed' (gxp's resolver got there first): the step
 * moves on to the next attempt's correlation id, due at once. */
static enum step_result next_attempt(struct gf_db_conn *c, const struct step *st, const char *token)
{
    char id[24];
    I64(id, st->id);
    const char *p[3] = {id, token, st->cid};
    struct be_err err;
    PGresult *res = NULL;
    if (store_run(c, "sg_next_attempt",
                  "UPDATE saga_steps s SET attempts = s.attempts + 1,"
                  " correlation_id = saga_step_cid(a.correlation_id, s.kind,"
                  " coalesce(s.bid_id, 0), s.attempts + 1),"
                  " lease_owner = NULL, lease_until = NULL, due_at = clock_timestamp(),"
                  " last_error = 'the attempt''s transaction was aborted; trying a new one'"
                  " FROM auctions a WHERE s.id = $1::bigint AND a.id = s.auction_id"
                  " AND s.lease_owner = $2::uuid AND s.state = 'pending'"
                  " AND s.correlation_id = $3::uuid RETURNING 1",
                  3, p, &res, &err) != GF_OK)
        return STEP_FAILED;
    bool moved = PQntuples(res) == 1;
    PQclear(res);
    GF_WARN("saga step attempt aborted, next attempt step=%" PRId64 " kind=%s", st->id,
            step_names[st->kind]);
    return moved ? STEP_RETRY : STEP_LOST;
}

static enum step_result run_gxp_step(struct saga *s, struct gf_db_conn *c, const struct step *st,
                                     const char *token)
{
    struct backend_app *app = s->app;
    struct be_err err = {0};
    const enum tx_kind kind = st->kind == STEP_REFUND ? KIND_REFUND : KIND_PAYOUT;
    char u[24], a[24], amt[24];
    I64(u, st->user_id);
    I64(a, st->auction_id);
    I64(amt, st->amount);
    gf_log_set_cid(st->cid);
    /* The transaction is ours (coord_transactions), whichever runner claims it first. */
    const char *pc[5] = {st->cid, coord_kind_names[kind], u, a, amt};
    if (store_run(c, "sg_claim_tx",
                  "INSERT INTO coord_transactions (correlation_id, kind, user_id, item_id, amount)"
                  " VALUES ($1::uuid, $2, $3::bigint, $4::bigint, $5::bigint)"
                  " ON CONFLICT DO NOTHING",
                  5, pc, NULL, &err) != GF_OK)
        return STEP_FAILED;
    /* The console's claim note (item = the auction), once per attempt that runs the step. */
    gf_console_note_tx(st->cid, coord_kind_names[kind], st->user_id, st->auction_id, st->amount,
                       "claimed", NULL);
    bool none = false;
    enum outcome o = decision_of(c, st->cid, &none);
    if (!none && o == OUTCOME_FAILED)
        return next_attempt(c, st, token);
    if (!none && o != OUTCOME_SUCCEEDED)
        return STEP_FAILED;
    if (none) {
        coord_count_started(kind);
        enum gf_status rc =
            coord_prepare(app, st->user_id, GXP__TRANSACTION_TYPE__ADD, st->amount, st->cid, &err);
        coord_count_prepared(kind, rc);
        if (rc == GF_EPRECONDITION) /* gxp holds a decision for it: 'failed' */
            return next_attempt(c, st, token);
        if (rc != GF_OK) {
            step_release(c, st, token, GXP_RETRY_S, err.message);
            return STEP_RETRY;
        }
        if (st->kind == STEP_REFUND)
            gf_failpoint("saga.refund_after_prepare");
        else
            gf_failpoint("saga.payout_after_prepare");
    }
    /* The decision and the step's end: one transaction (a decision 'succeeded' exists only
     * for a step marked done, so one found above means the step is done: it is marked so). */
    if (gf_db_exec_simple(c, "BEGIN") != GF_OK)
        return STEP_FAILED;
    const char *pd[1] = {st->cid};
    enum gf_status rc = GF_OK;
    if (none) {
        rc = store_run(c, "sg_decide",
                       "INSERT INTO transaction_outbox (correlation_id, state)"
                       " VALUES ($1::uuid, 'succeeded')",
                       1, pd, NULL, &err);
        if (rc == GF_EEXISTS) { /* the resolver's 'failed' came first: that stands */
            gf_db_rollback(c);
            return next_attempt(c, st, token);
        }
        if (rc != GF_OK)
            goto failed;
    }
    rc = step_done(c, st, token, &err);
    if (rc == GF_ECONFLICT) {
        gf_db_rollback(c);
        return STEP_LOST;
    }
    if (rc != GF_OK)
        goto failed;
    if (gf_db_exec_simple(c, "COMMIT") != GF_OK)
        return STEP_FAILED;
    if (st->kind == STEP_REFUND)
        gf_failpoint("saga.refund_after_commit");
    else
        gf_failpoint("saga.payout_after_commit");
    if (none) {
        coord_count_decided(DECIDER_SAGA, OUTCOME_SUCCEEDED, st->cid);
        coord_count_outcome(kind, OUTCOME_SUCCEEDED);
    }
    GF_INFO("saga step done kind=%s auction=%" PRId64 " user=%" PRId64 " amount=%" PRId64,
            step_names[st->kind], st->auction_id, st->user_id, st->amount);
    return STEP_DONE;
failed:
    gf_db_rollback(c);
    return STEP_FAILED;
}

/* ---- the runner ----------------------------------------------------------------------------- */

/* Claims up to saga_batch due steps for token and runs them: the number claimed, -1 when the
 * database failed. */
static int run_due(struct runner *r)
{
    struct saga *s = r->s;
    const struct backend_config *cfg = s->app->cfg;
    struct gf_db_conn *c = NULL;
    if (gf_db_acquire(s->pool, &c) != GF_OK)
        return -1;
    char token[GF_UUID_STRLEN + 1], batch[24], lease[32];
    gf_uuid_generate(token);
    I64(batch, cfg->saga_batch);
    snprintf(lease, sizeof lease, "%.3f", (double)cfg->saga_lease_ms / 1e3);
    const char *p[3] = {token, batch, lease};
    PGresult *res = NULL;
    struct be_err err;
    if (store_run(c, "sg_claim",
                  "WITH due AS (SELECT id FROM saga_steps WHERE state = 'pending'"
                  " AND due_at <= clock_timestamp()"
                  " AND (lease_until IS NULL OR lease_until < clock_timestamp())"
                  " ORDER BY due_at LIMIT $2::int FOR UPDATE SKIP LOCKED)"
                  " UPDATE saga_steps s SET lease_owner = $1::uuid,"
                  " lease_until = clock_timestamp() + make_interval(secs => $3::float8)"
                  " FROM due WHERE s.id = due.id"
                  " RETURNING s.id, s.kind, s.auction_id, coalesce(s.bid_id, 0),"
                  " coalesce(s.user_id, 0), coalesce(s.amount, 0),"
                  " coalesce(s.correlation_id::text, ''),"
                  " (extract(epoch FROM clock_timestamp() - s.due_at) * 1e6)::bigint",
                  3, p, &res, &err) != GF_OK) {
        gf_db_release(s->pool, c);
        return -1;
    }
    int n = PQntuples(res);
    bool gxp_down = false;
    for (int i = 0; i < n && !atomic_load(&s->stop); i++) {
        struct step st = {
            .id = strtoll(PQgetvalue(res, i, 0), NULL, 10),
            .auction_id = strtoll(PQgetvalue(res, i, 2), NULL, 10),
            .bid_id = strtoll(PQgetvalue(res, i, 3), NULL, 10),
            .user_id = strtoll(PQgetvalue(res, i, 4), NULL, 10),
            .amount = strtoll(PQgetvalue(res, i, 5), NULL, 10),
            .late_us = strtoll(PQgetvalue(res, i, 7), NULL, 10),
        };
        const char *kind = PQgetvalue(res, i, 1);
        snprintf(st.cid, sizeof st.cid, "%s", PQgetvalue(res, i, 6));
        if (strcmp(kind, "settle") == 0)
            st.kind = STEP_SETTLE;
        else if (strcmp(kind, "refund") == 0)
            st.kind = STEP_REFUND;
        else if (strcmp(kind, "payout") == 0)
            st.kind = STEP_PAYOUT;
        else {
            GF_ERROR("saga step of an unknown kind step=%" PRId64, st.id);
            continue;
        }
        gf_histogram_observe_us(s->late, st.late_us > 0 ? st.late_us : 0);
        enum step_result out;
        if (st.kind == STEP_SETTLE) {
            out = run_settle(s, c, &st, token);
        } else if (gxp_down) { /* the rest of the batch waits for gxp, not its deadline each */
            step_release(c, &st, token, GXP_RETRY_S, "the GXP service is unavailable");
            out = STEP_RETRY;
        } else {
            out = run_gxp_step(s, c, &st, token);
            gxp_down = out == STEP_RETRY;
        }
        gf_log_set_cid(NULL);
        gf_counter_add(s->steps[st.kind][out], 1);
        /* A connection that broke mid-step: the rest of the batch waits for its lease. */
        if (PQstatus(gf_db_pgconn(c)) != CONNECTION_OK)
            break;
    }
    PQclear(res);
    gf_db_release(s->pool, c);
    return n;
}

static void *run(void *arg)
{
    struct runner *r = arg;
    struct saga *s = r->s;
    struct gf_backoff bo;
    gf_backoff_init(&bo, 100, 5000);
    while (!atomic_load(&s->stop)) {
        if (!atomic_load(&s->app->migrated)) {
            wait_kick(r, 100);
            continue;
        }
        int n = run_due(r);
        if (n < 0) {
            gf_sleep_ms(gf_backoff_next(&bo), &s->stop);
            continue;
        }
        gf_backoff_reset(&bo);
        if (n >= s->app->cfg->saga_batch)
            continue; /* probably more due */
        wait_kick(r, s->app->cfg->saga_poll_ms);
    }
    return NULL;
}

struct saga *saga_start(struct backend_app *app)
{
    struct saga *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->app = app;
    s->n = (int)app->cfg->saga_workers;
    if (s->n > SAGA_WORKERS_MAX)
        s->n = SAGA_WORKERS_MAX;
    struct gf_db_pool_options popt = {
        .conninfo = app->cfg->db_url,
        .password = app->cfg->db_password,
        .size = s->n,
        .acquire_timeout_ms = 2000,
        .statement_timeout_ms = (int)app->cfg->db_statement_timeout_ms,
        .lock_timeout_ms = (int)app->cfg->db_lock_timeout_ms,
        .application_name = "backend-saga",
    };
    s->pool = gf_db_pool_new(&popt);
    if (s->pool == NULL) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    gf_cond_init_mono(&s->cv);
    for (int k = 0; k < NSTEP_KINDS; k++) {
        for (int o = 0; o < NSTEP_RESULTS; o++) {
            char labels[64];
            snprintf(labels, sizeof labels, "kind=\"%s\",result=\"%s\"", step_names[k],
                     result_names[o]);
            s->steps[k][o] = gf_metrics_counter(
                "backend_saga_steps_total",
                "auction saga steps run, by kind and result (retry: gxp away or a new attempt)",
                labels);
        }
    }
    s->late = gf_metrics_histogram("backend_saga_step_delay_seconds",
                                   "from a step's due time to its claim by a runner", "");
    for (int i = 0; i < s->n; i++) {
        struct runner *r = &s->runners[i];
        r->s = s;
        r->index = i;
        r->started = pthread_create(&r->thread, NULL, run, r) == 0;
        if (!r->started) {
            saga_stop(s);
            return NULL;
        }
    }
    gf_db_pool_register_metrics(s->pool, "saga");
    return s;
}

void saga_stop(struct saga *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->stop, true);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->n; i++) {
        if (s->runners[i].started)
            pthread_join(s->runners[i].thread, NULL);
    }
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    gf_db_pool_free(s->pool);
    free(s);
}
