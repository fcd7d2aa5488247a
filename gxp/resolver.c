/* The resolver: a PENDING transaction older than GXP_PENDING_TIMEOUT_MS is never aborted
 * by gxp on its own. gxp asks the coordinator (backend.Backend/ResolveTransaction), which
 * records "failed" only when no decision exists and answers the decision that stands;
 * gxp applies that answer at once (replication will bring the same decision later and
 * find it applied). Replicas share the work safely: a pass claims rows with FOR UPDATE
 * SKIP LOCKED and leases them (next_resolve_at) before calling out. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.pb-c.h"
#include "gf/clock.h"
#include "gf/log.h"
#include "gf/metrics.h"
#include "gxp.h"

#define MAX_BATCH 1000
#define PENDING_COUNT_MAX "100000" /* PENDING transactions are counted up to this */

struct resolver {
    struct gxp_app *app;
    struct gf_grpc_client *backend;
    pthread_t thread;
    struct gf_counter *asked, *applied, *failures, *finalized[2];
};

/* PENDING transactions as the resolver last measured them (-1: not yet, or gxp-db did not
 * answer) and the creation time of the oldest. Outside the resolver, so /metrics never reads a
 * freed one. */
static struct gf_backlog pending = GF_BACKLOG_INIT;

/* One bounded scan of the partial index of PENDING rows, once per pass. */
static void measure_pending(struct resolver *r)
{
    struct gf_db_conn *c = NULL;
    PGresult *res = NULL;
    int64_t rows = -1, oldest = -1;
    if (gf_db_acquire(r->app->pool, &c) != GF_OK)
        goto out;
    if (gf_db_exec(c, "gxp_resolver_pending",
                   "SELECT count(*), (extract(epoch FROM min(created_at)) * 1000000)::bigint"
                   " FROM (SELECT created_at FROM gxp_transaction WHERE status = 0"
                   "       ORDER BY created_at LIMIT " PENDING_COUNT_MAX ") p",
                   0, NULL, &res) == GF_OK) {
        rows = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        if (!PQgetisnull(res, 0, 1))
            oldest = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        PQclear(res);
    }
    gf_db_release(r->app->pool, c);
out:
    gf_backlog_set(&pending, rows, oldest);
}

/* Claims up to $2 stuck transactions. The lease ($3 ms) outlasts asking about the whole
 * batch one after the other, each within the call deadline, so no other replica takes a row
 * while it is being asked about (and a replica that dies holding it frees it then). */
static const char CLAIM_SQL[] =
    "UPDATE gxp_transaction t"
    "   SET resolve_attempts = t.resolve_attempts + 1,"
    "       next_resolve_at = now() + $3::bigint * interval '1 millisecond'"
    " WHERE t.id IN (SELECT id FROM gxp_transaction"
    "                 WHERE status = 0"
    "                   AND created_at < now() - $1::bigint * interval '1 millisecond'"
    "                   AND (next_resolve_at IS NULL OR next_resolve_at <= now())"
    "                 ORDER BY created_at LIMIT $2::int"
    "                 FOR UPDATE SKIP LOCKED)"
    " RETURNING t.correlation_id::text";

/* After an attempt that did not resolve (the coordinator unreachable, or slow while a paused
 * or cut-off backend session still held the decision's row): ask again after 250 ms doubling
 * per attempt, at most RESOLVE_RETRY_MAX_MS — so a transaction is resolved within that of the
 * fault ending (SPEC §5: nothing stays PENDING past the timeout plus a stated bound), without
 * hammering a coordinator that stays away. */
#define RESOLVE_RETRY_MAX_MS "5000"
static const char RETRY_SQL[] =
    "UPDATE gxp_transaction SET next_resolve_at = now() + least(" RESOLVE_RETRY_MAX_MS
    ", 250 * power(2, least(resolve_attempts, 10))) * interval '1 millisecond'"
    " WHERE correlation_id = $1::uuid AND status = 0";

static void retry_later(struct resolver *r, const char *cid)
{
    struct gf_db_conn *c = NULL;
    const char *params[1] = {cid};
    if (gf_db_acquire(r->app->pool, &c) != GF_OK)
        return; /* the lease expires and a later pass asks again */
    if (gf_db_exec(c, "gxp_resolver_retry", RETRY_SQL, 1, params, NULL) != GF_OK)
        GF_WARN("resolver could not reschedule a stuck transaction: its lease decides");
    gf_db_release(r->app->pool, c);
}

static int claim(struct resolver *r, char (*cids)[37], int max)
{
    struct gf_db_conn *c = NULL;
    PGresult *res = NULL;
    int n = 0;
    char timeout[24], batch[16], lease[24];
    snprintf(timeout, sizeof timeout, "%lld", (long long)r->app->cfg->pending_timeout_ms);
    snprintf(batch, sizeof batch, "%d", max);
    snprintf(lease, sizeof lease, "%lld", (long long)r->app->cfg->backend_deadline_ms * max + 1000);
    const char *params[3] = {timeout, batch, lease};
    if (gf_db_acquire(r->app->pool, &c) != GF_OK)
        return 0;
    if (gf_db_exec(c, "gxp_resolver_claim", CLAIM_SQL, 3, params, &res) == GF_OK) {
        n = PQntuples(res);
        for (int i = 0; i < n && i < max; i++)
            snprintf(cids[i], 37, "%s", PQgetvalue(res, i, 0));
        PQclear(res);
    }
    gf_db_release(r->app->pool, c);
    return n;
}

/* The coordinator's decision, as ResolveTransaction answers it. */
enum decision { DECISION_SUCCEEDED, DECISION_FAILED, NDECISIONS };
static const char *const decision_names[NDECISIONS] = {"succeeded", "failed"};

/* The decision a state names; false for any other text (the one place it is read). */
static bool decision_of(const char *state, enum decision *out)
{
    for (int d = 0; state != NULL && d < NDECISIONS; d++) {
        if (strcmp(state, decision_names[d]) == 0) {
            *out = (enum decision)d;
            return true;
        }
    }
    return false;
}

static void apply(struct resolver *r, const char *cid, enum decision d)
{
    struct gf_db_conn *c = NULL;
    PGresult *res = NULL;
    const char *params[2] = {cid, decision_names[d]};
    if (gf_db_acquire(r->app->pool, &c) != GF_OK)
        return; /* the lease expires and a later pass asks again */
    /* The function's outcome, and whether it is 'applied': this call moved it out of
     * PENDING (not: someone finalized it first). */
    if (gf_db_exec(c, "gxp_resolver_apply",
                   "SELECT o, o = 'applied' FROM gxp_apply_decision($1::uuid, $2, 'resolver') o", 2,
                   params, &res) == GF_OK) {
        GF_INFO("stuck transaction resolved state=%s outcome=%s", decision_names[d],
                PQgetvalue(res, 0, 0));
        gf_counter_add(r->applied, 1);
        if (PQgetvalue(res, 0, 1)[0] == 't')
            gf_counter_add(r->finalized[d], 1);
        PQclear(res);
    }
    gf_db_release(r->app->pool, c);
}

static void resolve_one(struct resolver *r, const char *cid)
{
    gf_log_set_cid(cid);
    Backend__ResolveTransactionRequest req = BACKEND__RESOLVE_TRANSACTION_REQUEST__INIT;
    req.correlationid = (char *)cid;
    ProtobufCMessage *out = NULL;
    char details[256];
    gf_counter_add(r->asked, 1);
    grpc_status_code code =
        gf_grpc_client_call(r->backend, "/backend.Backend/ResolveTransaction", &req.base,
                            &backend__resolve_transaction_response__descriptor, &out,
                            (int)r->app->cfg->backend_deadline_ms, cid, 0, details, sizeof details);
    if (code != GRPC_STATUS_OK) {
        gf_counter_add(r->failures, 1);
        GF_LOG_RL(GF_LOG_WARN, 5000, "coordinator did not resolve code=%s details=%s",
                  gf_grpc_code_str(code), details);
        retry_later(r, cid);
        goto out;
    }
    Backend__ResolveTransactionResponse *resp = (Backend__ResolveTransactionResponse *)out;
    enum decision d;
    if (!decision_of(resp->state, &d)) {
        gf_counter_add(r->failures, 1);
        GF_ERROR("coordinator answered an unknown state=%.32s", resp->state ? resp->state : "");
        goto out;
    }
    apply(r, cid, d);
out:
    if (out)
        protobuf_c_message_free_unpacked(out, NULL);
    gf_log_set_cid(NULL);
}

static void *loop(void *arg)
{
    struct resolver *r = arg;
    int batch = (int)r->app->cfg->resolve_batch;
    char(*cids)[37] = calloc((size_t)batch, sizeof *cids);
    if (cids == NULL) {
        GF_ERROR("resolver out of memory");
        return NULL;
    }
    while (!r->app->stopping) {
        if (atomic_load(&r->app->migrated)) {
            measure_pending(r);
            int n = claim(r, cids, batch);
            for (int i = 0; i < n && !r->app->stopping; i++)
                resolve_one(r, cids[i]);
            if (n == batch)
                continue; /* more may be waiting */
        }
        gf_sleep_ms(r->app->cfg->resolve_interval_ms, &r->app->stopping);
    }
    free(cids);
    return NULL;
}

struct resolver *resolver_start(struct gxp_app *app)
{
    struct resolver *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->app = app;
    r->backend = gf_grpc_client_new_tls(app->cfg->backend_addr, app->tls);
    r->asked = gf_metrics_counter("gxp_resolver_asked_total",
                                  "ResolveTransaction calls made for stuck transactions", "");
    r->applied = gf_metrics_counter("gxp_resolver_applied_total",
                                    "decisions obtained by the resolver and applied", "");
    r->failures = gf_metrics_counter("gxp_resolver_failures_total",
                                     "ResolveTransaction calls that failed", "");
    for (int i = 0; i < 2; i++)
        r->finalized[i] = gf_metrics_counter(
            "gxp_resolver_finalized_total",
            "PENDING transactions the resolver finalized itself (before replication did), by "
            "the status they took",
            i == 0 ? "status=\"committed\"" : "status=\"aborted\"");
    gf_metrics_backlog(&pending, "gxp_transactions_pending",
                       "PENDING transactions on gxp-db (counted up to " PENDING_COUNT_MAX
                       ", measured at each resolver pass; NaN until measured)",
                       "gxp_pending_oldest_age_seconds",
                       "age of the oldest PENDING transaction (0 when none)");
    if (r->backend == NULL || pthread_create(&r->thread, NULL, loop, r) != 0) {
        gf_grpc_client_free(r->backend);
        free(r);
        return NULL;
    }
    return r;
}

void resolver_stop(struct resolver *r)
{
    if (r == NULL)
        return;
    pthread_join(r->thread, NULL);
    gf_grpc_client_free(r->backend);
    free(r);
}

int64_t resolver_pending_rows(void)
{
    return atomic_load(&pending.rows);
}
