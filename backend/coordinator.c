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

#include "backend.h"
#include "backend.pb-c.h"
#include "gf/amqp.h"
#include "gf/clock.h"
#include "gf/failpoint.h"
#include "gf/log.h"
#include "gf/metrics.h"
#include "gf/uuid.h"
#include "gxp.pb-c.h"
#include "validate.h"

/* ---- metrics ------------------------------------------------------------------------------
 * Every series is registered by coord_metrics_init (or on the first use of a gRPC code), so
 * the hot path is one relaxed atomic add: no lock, no allocation. */

enum tx_kind { KIND_BUY, KIND_ADD_GXP, NKINDS };
static const char *const kind_names[NKINDS] = {"buy", "add_gxp"};

/* What the prepare phase of a transaction ended with (after prepare_subtract's retries). */
enum prepare_result {
    PREP_PREPARED,
    PREP_REFUSED,
    PREP_UNAVAILABLE,
    PREP_TIMEOUT,
    PREP_ERROR,
    NPREP
};
static const char *const prepare_names[NPREP] = {"prepared", "refused", "unavailable", "timeout",
                                                 "error"};

/* The decision that stands when the coordinator is done with a transaction; unknown when it
 * could not be read (backend-db down): gxp's resolver settles it later. */
enum outcome { OUTCOME_SUCCEEDED, OUTCOME_FAILED, OUTCOME_UNKNOWN, NOUTCOMES };
static const char *const outcome_names[NOUTCOMES] = {"succeeded", "failed", "unknown"};

/* Who inserted a decision row: a buy or add-gxp, or ResolveTransaction (asked by gxp). */
enum decider { DECIDER_BUY, DECIDER_ADD_GXP, DECIDER_RESOLVE, NDECIDERS };
static const char *const decider_names[NDECIDERS] = {"buy", "add_gxp", "resolve"};

enum resolve_answer {
    RESOLVE_SUCCEEDED,
    RESOLVE_FAILED,
    RESOLVE_UNAVAILABLE,
    RESOLVE_INVALID,
    NRESOLVE
};
static const char *const resolve_names[NRESOLVE] = {"succeeded", "failed", "unavailable",
                                                    "invalid"};

/* The gxp methods the coordinator calls, for the client-side call metrics. */
static const char *const gxp_paths[] = {"/gxp.Gxp/TransactionPrepare", "/gxp.Gxp/CreateUserBalance",
                                        "/gxp.Gxp/GetUserBalance", "/gxp.Gxp/GetAll",
                                        "/gxp.Gxp/GetTransaction"};
#define NGXP_PATHS (sizeof gxp_paths / sizeof gxp_paths[0])
#define NGRPC_CODES 17 /* OK .. UNAUTHENTICATED */

static struct gf_counter *m_started[NKINDS], *m_prepared[NKINDS][NPREP],
    *m_outcome[NKINDS][NOUTCOMES], *m_decided[NDECIDERS][2], *m_resolve[NRESOLVE],
    *m_prepare_retries, *m_lock_conflicts_buy, *m_lock_retries_buy, *m_lock_exhausted_buy;
static struct gf_histogram *m_gxp_latency[NGXP_PATHS];
static _Atomic(struct gf_counter *) m_gxp_calls[NGXP_PATHS][NGRPC_CODES];

void coord_metrics_init(void)
{
    char labels[128];
    for (int k = 0; k < NKINDS; k++) {
        snprintf(labels, sizeof labels, "kind=\"%s\"", kind_names[k]);
        m_started[k] = gf_metrics_counter(
            "backend_2pc_started_total",
            "two-phase transactions begun (id claimed, prepare about to be sent), by kind", labels);
        for (int r = 0; r < NPREP; r++) {
            snprintf(labels, sizeof labels, "kind=\"%s\",result=\"%s\"", kind_names[k],
                     prepare_names[r]);
            m_prepared[k][r] = gf_metrics_counter(
                "backend_2pc_prepares_total",
                "prepare phases ended, by kind and result (refused: gxp said no)", labels);
        }
        for (int o = 0; o < NOUTCOMES; o++) {
            snprintf(labels, sizeof labels, "kind=\"%s\",outcome=\"%s\"", kind_names[k],
                     outcome_names[o]);
            m_outcome[k][o] = gf_metrics_counter(
                "backend_2pc_outcomes_total",
                "two-phase transactions ended, by kind and the decision that stands", labels);
        }
    }
    for (int d = 0; d < NDECIDERS; d++) {
        for (int s = 0; s < 2; s++) {
            snprintf(labels, sizeof labels, "kind=\"%s\",decision=\"%s\"", decider_names[d],
                     s == 0 ? "succeeded" : "failed");
            m_decided[d][s] = gf_metrics_counter(
                "backend_2pc_decisions_total",
                "decisions this process inserted into transaction_outbox, by who and which",
                labels);
        }
    }
    for (int a = 0; a < NRESOLVE; a++) {
        snprintf(labels, sizeof labels, "answer=\"%s\"", resolve_names[a]);
        m_resolve[a] = gf_metrics_counter("backend_resolve_transaction_total",
                                          "ResolveTransaction calls answered (gxp's resolver), by "
                                          "answer",
                                          labels);
    }
    m_prepare_retries = gf_metrics_counter(
        "backend_2pc_prepare_retries_total",
        "SUBTRACT prepares sent again after insufficient funds (a just-added GXP may lag)",
        "kind=\"buy\"");
    m_lock_conflicts_buy = gf_metrics_counter(
        "backend_lock_conflicts_total",
        "optimistic-lock conflicts: an update named a version that had changed, by operation",
        "op=\"buy\"");
    m_lock_retries_buy =
        gf_metrics_counter("backend_lock_retries_total",
                           "transactions re-run after an optimistic-lock conflict", "op=\"buy\"");
    m_lock_exhausted_buy = gf_metrics_counter(
        "backend_lock_exhausted_total",
        "operations that lost every optimistic-lock retry (answered 409 lock_conflict)",
        "op=\"buy\"");
    for (size_t p = 0; p < NGXP_PATHS; p++) {
        snprintf(labels, sizeof labels, "method=\"%s\"", gxp_paths[p]);
        m_gxp_latency[p] = gf_metrics_histogram("backend_gxp_call_duration_seconds",
                                                "calls to gxp, each attempt, by method", labels);
    }
}

/* One attempt of a call to gxp: counted by method and code, timed. */
static void count_gxp_call(const char *path, grpc_status_code code, int64_t us)
{
    size_t p = 0;
    while (p < NGXP_PATHS && strcmp(gxp_paths[p], path) != 0)
        p++;
    if (p == NGXP_PATHS)
        return;
    int idx = code >= 0 && code < NGRPC_CODES ? (int)code : GRPC_STATUS_UNKNOWN;
    struct gf_counter *c = atomic_load_explicit(&m_gxp_calls[p][idx], memory_order_acquire);
    if (c == NULL) {
        /* Two threads may both register: the registry returns the same series to both. */
        char labels[128];
        snprintf(labels, sizeof labels, "method=\"%s\",code=\"%s\"", gxp_paths[p],
                 gf_grpc_code_str((grpc_status_code)idx));
        c = gf_metrics_counter("backend_gxp_calls_total",
                               "calls to gxp, each attempt, by method and gRPC status code",
                               labels);
        atomic_store_explicit(&m_gxp_calls[p][idx], c, memory_order_release);
    }
    gf_counter_add(c, 1);
    gf_histogram_observe_us(m_gxp_latency[p], us);
}

static enum prepare_result prepare_result_of(enum gf_status st)
{
    switch (st) {
    case GF_OK:
        return PREP_PREPARED;
    case GF_ECONFLICT:
    case GF_ENOTFOUND:
        return PREP_REFUSED;
    case GF_EUNAVAILABLE:
        return PREP_UNAVAILABLE;
    case GF_ETIMEOUT:
        return PREP_TIMEOUT;
    default:
        return PREP_ERROR;
    }
}

static void count_outcome(enum tx_kind k, const char *state)
{
    enum outcome o = strcmp(state, "succeeded") == 0 ? OUTCOME_SUCCEEDED
                     : strcmp(state, "failed") == 0  ? OUTCOME_FAILED
                                                     : OUTCOME_UNKNOWN;
    gf_counter_add(m_outcome[k][o], 1);
}

/* ---- calls to gxp ------------------------------------------------------------------------ */

/* Maps a failed gxp call to the client's answer. */
static enum gf_status gxp_failed(grpc_status_code code, const char *details, struct be_err *err)
{
    switch (code) {
    case GRPC_STATUS_DEADLINE_EXCEEDED:
        be_err_set(err, "gxp_timeout", "the GXP service did not answer in time");
        return GF_ETIMEOUT;
    case GRPC_STATUS_FAILED_PRECONDITION:
        be_err_set(err, "insufficient_gxp", "not enough GXP: %s", details);
        return GF_ECONFLICT;
    case GRPC_STATUS_OUT_OF_RANGE:
        be_err_set(err, "gxp_balance_limit", "the GXP balance would exceed its limit");
        return GF_ECONFLICT;
    case GRPC_STATUS_NOT_FOUND:
        be_err_set(err, "gxp_balance_not_found", "the user has no GXP balance");
        return GF_ENOTFOUND;
    case GRPC_STATUS_ALREADY_EXISTS:
        be_err_set(err, "correlation_id_reused",
                   "this correlation id already names another transaction");
        return GF_ECONFLICT;
    case GRPC_STATUS_INVALID_ARGUMENT:
        GF_ERROR("gxp refused a request of ours code=%s details=%s", gf_grpc_code_str(code),
                 details);
        be_err_set(err, "internal", "internal error");
        return GF_EINTERNAL;
    default:
        GF_LOG_RL(GF_LOG_WARN, 5000, "gxp unavailable code=%s details=%s", gf_grpc_code_str(code),
                  details);
        be_err_set(err, "gxp_unavailable", "the GXP service is unavailable, try again");
        return GF_EUNAVAILABLE;
    }
}

/* One call to gxp with the request's correlation id and the configured deadline. A gxp
 * that is down answers UNAVAILABLE at once; the call is then tried once more, waiting for
 * the channel to become ready for a short while (it may be reconnecting after a gxp
 * restart) — every call made here is idempotent on gxp. Still not ready: UNAVAILABLE (503). */
static grpc_status_code gxp_call(struct backend_app *app, const char *path,
                                 const ProtobufCMessage *req,
                                 const ProtobufCMessageDescriptor *desc, ProtobufCMessage **resp,
                                 const char *cid, char *details, size_t detailsz)
{
    int deadline = (int)app->cfg->gxp_deadline_ms;
    int64_t t0 = gf_mono_us();
    grpc_status_code code =
        gf_grpc_client_call(app->gxp, path, req, desc, resp, deadline, cid, 0, details, detailsz);
    int64_t t1 = gf_mono_us();
    count_gxp_call(path, code, t1 - t0);
    if (code != GRPC_STATUS_UNAVAILABLE)
        return code;
    code = gf_grpc_client_call(app->gxp, path, req, desc, resp, deadline < 500 ? deadline : 500,
                               cid, GF_GRPC_WAIT_FOR_READY, details, detailsz);
    count_gxp_call(path, code, gf_mono_us() - t1);
    return code == GRPC_STATUS_DEADLINE_EXCEEDED ? GRPC_STATUS_UNAVAILABLE : code;
}

/* A call whose answer carries nothing we need: OK, or the client's answer for the failure. */
static enum gf_status gxp_command(struct backend_app *app, const char *path,
                                  const ProtobufCMessage *req,
                                  const ProtobufCMessageDescriptor *desc, const char *cid,
                                  struct be_err *err)
{
    ProtobufCMessage *resp = NULL;
    char details[256];
    grpc_status_code code = gxp_call(app, path, req, desc, &resp, cid, details, sizeof details);
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    return code == GRPC_STATUS_OK ? GF_OK : gxp_failed(code, details, err);
}

static void timestamp_now(Google__Protobuf__Timestamp *ts)
{
    int64_t us = gf_wall_us();
    ts->seconds = us / 1000000;
    ts->nanos = (int32_t)(us % 1000000) * 1000;
}

static enum gf_status prepare(struct backend_app *app, int64_t user_id, int type, int64_t amount,
                              const char *cid, struct be_err *err)
{
    Gxp__TransactionPrepareRequest req = GXP__TRANSACTION_PREPARE_REQUEST__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    timestamp_now(&ts);
    req.userid = (uint32_t)user_id;
    req.type = (Gxp__TransactionType)type;
    req.amount = (uint32_t)amount;
    req.correlationid = (char *)cid;
    req.correlationtimestamp = &ts;
    return gxp_command(app, "/gxp.Gxp/TransactionPrepare", &req.base,
                       &gxp__transaction_prepare_response__descriptor, cid, err);
}

/* Gxp.GetTransaction of tx_cid: the gRPC code, *resp (the caller frees it) when OK. */
static grpc_status_code get_transaction(struct backend_app *app, const char *tx_cid,
                                        const char *cid, ProtobufCMessage **resp, char *details,
                                        size_t detailsz)
{
    Gxp__GetTransactionRequest req = GXP__GET_TRANSACTION_REQUEST__INIT;
    req.correlationid = (char *)tx_cid;
    return gxp_call(app, "/gxp.Gxp/GetTransaction", &req.base,
                    &gxp__get_transaction_response__descriptor, resp, cid, details, detailsz);
}

/* The status of transaction tx_cid on gxp (a Gxp__TransactionStatus), -1 when gxp cannot
 * tell (down, or it never prepared it). */
static int gxp_status(struct backend_app *app, const char *tx_cid, const char *cid)
{
    ProtobufCMessage *resp = NULL;
    char details[256];
    grpc_status_code code = get_transaction(app, tx_cid, cid, &resp, details, sizeof details);
    int status = -1;
    if (code == GRPC_STATUS_OK) {
        const Gxp__GetTransactionResponse *r = (const Gxp__GetTransactionResponse *)resp;
        if (r->transaction != NULL)
            status = (int)r->transaction->status;
    }
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    return status;
}

/* Read-your-writes: has the user GXP that the backend committed (an add-gxp whose decision
 * 'succeeded' is in, so its client was answered 200) but gxp has not finalized yet? Its three
 * newest such adds of the last minutes are asked for on gxp. Only on the refusal path. */
static bool adds_in_flight(struct backend_app *app, int64_t user_id, const char *cid)
{
    char u[24];
    snprintf(u, sizeof u, "%" PRId64, user_id);
    const char *params[1] = {u};
    PGresult *res = NULL;
    struct be_err ignored = {0};
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
        pending = gxp_status(app, PQgetvalue(res, r, 0), cid) == GXP__TRANSACTION_STATUS__PENDING;
    PQclear(res);
    return pending;
}

static bool insufficient(enum gf_status st, const struct be_err *err)
{
    return st == GF_ECONFLICT && err->code != NULL && strcmp(err->code, "insufficient_gxp") == 0;
}

/* A SUBTRACT refused for lack of funds is tried again a few times over ~35 ms, then — only
 * while GXP the user was told were added is still on its way to gxp (replication lag) — with
 * back-off up to BACKEND_RYW_WAIT_MS: a client that adds then buys expects to spend what it
 * was told it has. Prepare is idempotent per id. */
static enum gf_status prepare_subtract(struct backend_app *app, int64_t user_id, int64_t amount,
                                       const char *cid, struct be_err *err)
{
    enum gf_status st = GF_EINTERNAL;
    int64_t deadline = gf_mono_us() + app->cfg->ryw_wait_ms * 1000;
    int delay = 5;
    for (int attempt = 0;; attempt++) {
        st = prepare(app, user_id, GXP__TRANSACTION_TYPE__SUBTRACT, amount, cid, err);
        if (!insufficient(st, err))
            break;
        if (attempt >= 3 &&
            (gf_mono_us() + delay * 1000 > deadline || !adds_in_flight(app, user_id, cid)))
            break;
        gf_sleep_ms(delay, NULL);
        delay = delay < 100 ? delay * 2 : 200;
        gf_counter_add(m_prepare_retries, 1);
    }
    return st;
}

/* Claims cid for one transaction of ours before anything else happens under it: a client's
 * X-Correlation-Id names one transaction at most, so a reused id can never touch, decide or
 * answer for another request's transaction. GF_EEXISTS when cid names one already (see
 * settle_existing). */
static enum gf_status claim(struct backend_app *app, const char *cid, const char *kind,
                            int64_t user_id, int64_t item_id, int64_t amount, struct be_err *err)
{
    char u[24], i[24], a[24];
    snprintf(u, sizeof u, "%" PRId64, user_id);
    snprintf(i, sizeof i, "%" PRId64, item_id);
    snprintf(a, sizeof a, "%" PRId64, amount);
    const char *params[5] = {cid, kind, u, item_id > 0 ? i : NULL, a};
    enum gf_status st = store_exec(app, "be_claim",
                                   "INSERT INTO coord_transactions"
                                   " (correlation_id, kind, user_id, item_id, amount)"
                                   " VALUES ($1::uuid, $2, $3::bigint, $4::bigint, $5::bigint)",
                                   5, params, NULL, err);
    if (st == GF_OK || st == GF_EEXISTS)
        return st;
    return store_db_failed(st, err);
}

/* ---- decisions ------------------------------------------------------------------------- */

/* Records 'failed' unless a decision exists, and answers the decision that stands ("" when
 * the database cannot be reached: gxp's resolver will ask again later). Two statements: an
 * INSERT that waited for a concurrent commit of the same id needs a fresh snapshot to see it.
 * who is counted as the decider when this INSERT is the one that wrote the row. A free buy
 * (free) has no decision for gxp: its outcome in coord_transactions is settled the same way. */
static void decide_failed(struct backend_app *app, const char *cid, enum decider who, bool is_free,
                          char state[16])
{
    struct gf_db_conn *c = NULL;
    PGresult *ins = NULL, *res = NULL;
    const char *params[1] = {cid};
    state[0] = '\0';
    if (gf_db_acquire(app->pool, &c) != GF_OK)
        return;
    if (is_free) {
        if (gf_db_exec(c, "be_fail_free",
                       "UPDATE coord_transactions SET outcome = 'failed'"
                       " WHERE correlation_id = $1::uuid AND outcome IS NULL",
                       1, params, NULL) == GF_OK &&
            gf_db_exec(c, "be_read_outcome",
                       "SELECT outcome FROM coord_transactions WHERE correlation_id = $1::uuid", 1,
                       params, &res) == GF_OK &&
            PQntuples(res) == 1)
            snprintf(state, 16, "%s", PQgetvalue(res, 0, 0));
        goto out;
    }
    if (gf_db_exec(c, "be_decide_failed",
                   "INSERT INTO transaction_outbox (correlation_id, state)"
                   " VALUES ($1::uuid, 'failed') ON CONFLICT DO NOTHING",
                   1, params, &ins) != GF_OK)
        goto out;
    if (strcmp(PQcmdTuples(ins), "1") == 0)
        gf_counter_add(m_decided[who][1], 1);
    if (gf_db_exec(c, "be_read_decision",
                   "SELECT state FROM transaction_outbox WHERE correlation_id = $1::uuid", 1,
                   params, &res) == GF_OK &&
        PQntuples(res) == 1)
        snprintf(state, 16, "%s", PQgetvalue(res, 0, 0));
out:
    PQclear(ins);
    PQclear(res);
    gf_db_release(app->pool, c);
    if (state[0] == '\0')
        GF_WARN("decision not recorded (gxp's resolver will ask) state=failed");
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
    char age[24];
    snprintf(age, sizeof age, "%.3f", (double)app->cfg->idempotency_takeover_ms / 1e3);
    const char *params[2] = {cid, age};
    for (int round = 0; round < 2; round++) {
        PGresult *res = NULL;
        enum gf_status st = store_exec(
            app, "be_settle_existing",
            "SELECT c.kind, c.user_id, coalesce(c.item_id, 0), c.amount,"
            " coalesce(o.state, c.outcome, ''),"
            " c.created_at < now() - make_interval(secs => $2::float8), coalesce(ui.id, 0)"
            " FROM coord_transactions c LEFT JOIN transaction_outbox o USING (correlation_id)"
            " LEFT JOIN user_items ui ON ui.user_id = c.user_id AND ui.item_id = c.item_id"
            " WHERE c.correlation_id = $1::uuid",
            2, params, &res, err);
        if (st != GF_OK)
            return store_db_failed(st, err);
        if (PQntuples(res) != 1) { /* claims are never deleted: a bug */
            PQclear(res);
            be_err_set(err, "internal", "internal error");
            return GF_EINTERNAL;
        }
        bool same = strcmp(PQgetvalue(res, 0, 0), kind_names[kind]) == 0 &&
                    strtoll(PQgetvalue(res, 0, 1), NULL, 10) == user_id &&
                    strtoll(PQgetvalue(res, 0, 2), NULL, 10) == item_id &&
                    (kind == KIND_BUY || strtoll(PQgetvalue(res, 0, 3), NULL, 10) == amount);
        bool is_free = kind == KIND_BUY && strcmp(PQgetvalue(res, 0, 3), "0") == 0;
        char state[16];
        snprintf(state, sizeof state, "%s", PQgetvalue(res, 0, 4));
        bool old = strcmp(PQgetvalue(res, 0, 5), "t") == 0;
        int64_t ui = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
        PQclear(res);
        if (!same) {
            be_err_set(err, "correlation_id_reused",
                       "this correlation id already names another transaction: send a new one");
            return GF_ECONFLICT;
        }
        if (strcmp(state, "succeeded") == 0) {
            *user_item_id = ui;
            *replayed = true;
            return GF_OK;
        }
        if (strcmp(state, "failed") == 0) {
            be_err_set(err, "transaction_failed",
                       "the transaction with this correlation id failed and changed nothing; "
                       "send a new correlation id to try again");
            return GF_ECONFLICT;
        }
        if (!old || round > 0) {
            be_err_set(err, "request_in_progress",
                       "a request with this correlation id is still in progress; retry later");
            return GF_ECONFLICT;
        }
        decide_failed(app, cid, kind == KIND_BUY ? DECIDER_BUY : DECIDER_ADD_GXP, is_free, state);
        if (state[0] == '\0')
            return store_db_failed(GF_EUNAVAILABLE, err);
    }
    be_err_set(err, "request_in_progress",
               "a request with this correlation id is still in progress; retry later");
    return GF_ECONFLICT;
}

/* ---- create-user ---------------------------------------------------------------------- */

enum gf_status coord_create_user(struct backend_app *app, const char *name, const char *cid,
                                 const struct be_idem *idem, int64_t *user_id, struct be_err *err)
{
    struct gf_db_conn *c = NULL;
    PGresult *res = NULL;
    enum gf_status st =
        atomic_load(&app->migrated) ? gf_db_acquire(app->pool, &c) : GF_EUNAVAILABLE;
    if (st != GF_OK)
        return store_db_failed(st, err);
    /* The user stays invisible until its gxp balance exists: both, or neither. */
    st = gf_db_exec_simple(c, "BEGIN");
    const char *params[1] = {name};
    if (st == GF_OK)
        st = gf_db_exec(c, "be_create_user", "INSERT INTO users (name) VALUES ($1) RETURNING id", 1,
                        params, &res);
    if (st == GF_EEXISTS) {
        /* The name is not echoed: answers never reflect client text back. */
        be_err_set(err, "name_taken", "a user with this name exists already");
        goto rollback;
    }
    if (st == GF_EINVAL) {
        be_err_set(err, "invalid_field", "the name is not valid");
        goto rollback;
    }
    if (st != GF_OK) {
        st = store_db_failed(st, err);
        goto rollback;
    }
    int64_t id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    res = NULL;

    Gxp__CreateUserBalanceRequest req = GXP__CREATE_USER_BALANCE_REQUEST__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    timestamp_now(&ts);
    req.userid = (uint32_t)id;
    req.correlationid = (char *)cid;
    req.correlationtimestamp = &ts;
    st = gxp_command(app, "/gxp.Gxp/CreateUserBalance", &req.base,
                     &gxp__create_user_balance_response__descriptor, cid, err);
    if (st != GF_OK)
        goto rollback;
    bool unknown;
    st = idem_commit(c, idem, id, &unknown, err);
    if (st != GF_OK) {
        /* A zero balance may be left on gxp for an id never shown: harmless, and re-used by
         * no one (ids come from a sequence). idem_commit rolled back or filled err. */
        goto out;
    }
    GF_INFO("user created user=%" PRId64, id);
    *user_id = id;
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
    const char *cid;
    int64_t user_item_id;
};

/* Looks up the buyer, the item's cost and its stock; 404 and out-of-stock before anything
 * is reserved. */
static enum gf_status buy_check(struct backend_app *app, struct buy *b, struct be_err *err)
{
    char u[24], i[24];
    snprintf(u, sizeof u, "%" PRId64, b->user_id);
    snprintf(i, sizeof i, "%" PRId64, b->item_id);
    const char *params[2] = {u, i};
    PGresult *res = NULL;
    enum gf_status st = store_exec(app, "be_buy_check",
                                   "SELECT (SELECT count(*) FROM users WHERE id = $1::bigint),"
                                   " i.cost, m.count"
                                   " FROM (SELECT 1) one"
                                   " LEFT JOIN items i ON i.id = $2::bigint"
                                   " LEFT JOIN marketplace_items m ON m.item_id = i.id",
                                   2, params, &res, err);
    if (st != GF_OK)
        return store_db_failed(st, err);
    st = GF_OK;
    if (strcmp(PQgetvalue(res, 0, 0), "0") == 0) {
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
    }
    PQclear(res);
    return st;
}

enum local_outcome {
    LOCAL_DONE,
    LOCAL_OUT_OF_STOCK,
    LOCAL_LOST_RACE,
    LOCAL_PRICE_CHANGED, /* the cost changed since it was prepared */
    LOCAL_DECIDED,       /* a decision stood already: 'failed', by the resolver or a settle */
    LOCAL_ANSWERED,      /* idem_commit refused or lost the COMMIT: err says so */
    LOCAL_FAILED
};

/* One attempt of the local transaction: user item + 1, the decision and the event, then
 * stock − 1 naming the version read — all or nothing. The cost is read with the stock and
 * must be the one prepared: a PATCH of the price moves the stock row's version too, so a buy
 * commits only at the price in force at its commit. */
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
    *st = gf_db_exec_simple(c, "BEGIN");
    if (*st != GF_OK)
        return LOCAL_FAILED;
    *st = gf_db_exec(c, "be_stock_read",
                     "SELECT m.count, m.version, i.cost FROM marketplace_items m"
                     " JOIN items i ON i.id = m.item_id WHERE m.item_id = $1::bigint",
                     1, pi, &res);
    if (*st != GF_OK)
        goto rollback;
    if (PQntuples(res) == 0 || strcmp(PQgetvalue(res, 0, 0), "0") == 0) {
        out = LOCAL_OUT_OF_STOCK;
        goto rollback;
    }
    if (strtoll(PQgetvalue(res, 0, 2), NULL, 10) != b->cost) {
        out = LOCAL_PRICE_CHANGED;
        goto rollback;
    }
    char version[24];
    snprintf(version, sizeof version, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    res = NULL;
    const char *pu[2] = {u, i};
    *st = gf_db_exec(c, "be_user_item_add",
                     "INSERT INTO user_items (user_id, item_id, count) VALUES ($1::bigint,"
                     " $2::bigint, 1) ON CONFLICT (user_id, item_id) DO UPDATE"
                     " SET count = user_items.count + 1, version = user_items.version + 1,"
                     " updated_at = now() RETURNING id",
                     2, pu, &res);
    if (*st != GF_OK)
        goto rollback;
    b->user_item_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    res = NULL;
    /* The event goes out through the outbox, written in this same transaction: it exists
     * iff the buy commits (SPEC §4); the relay publishes it. */
    char payload[2 * EVENTS_PAYLOAD_MAX + 3];
    *st = events_buy_payload(b->user_id, b->item_id, b->user_item_id, b->cid, payload,
                             sizeof payload);
    if (*st != GF_OK)
        goto rollback;
    const char *pe[2] = {b->cid, payload};
    if (b->cost > 0) {
        /* The decision 'succeeded' commits the distributed transaction (SPEC §5). */
        *st = gf_db_exec(c, "be_decide_succeeded",
                         "WITH decision AS (INSERT INTO transaction_outbox (correlation_id, state)"
                         " VALUES ($1::uuid, 'succeeded'))"
                         " INSERT INTO event_outbox (event_name, correlation_id, payload)"
                         " VALUES ('" GF_EVENT_BUY_ITEM "', $1::uuid, $2::bytea)",
                         2, pe, NULL);
        if (*st == GF_EEXISTS) {
            out = LOCAL_DECIDED; /* gxp's resolver recorded 'failed' first: that stands */
            goto rollback;
        }
    } else {
        /* A free buy's outcome is written once in its claim, fenced like a decision. */
        *st = gf_db_exec(c, "be_buy_free",
                         "WITH o AS (UPDATE coord_transactions SET outcome = 'succeeded'"
                         " WHERE correlation_id = $1::uuid AND outcome IS NULL RETURNING 1)"
                         " INSERT INTO event_outbox (event_name, correlation_id, payload)"
                         " SELECT '" GF_EVENT_BUY_ITEM "', $1::uuid, $2::bytea FROM o",
                         2, pe, &res);
        if (*st == GF_OK && strcmp(PQcmdTuples(res), "1") != 0) {
            out = LOCAL_DECIDED; /* settled 'failed' by a resent correlation id */
            goto rollback;
        }
        PQclear(res);
        res = NULL;
    }
    if (*st != GF_OK)
        goto rollback;
    /* The stock last: its row stays locked only from here to COMMIT, the window in which
     * every other buyer of the item must wait (and then loses the race). */
    const char *pv[2] = {i, version};
    *st = gf_db_exec(c, "be_stock_take",
                     "UPDATE marketplace_items SET count = count - 1, version = version + 1,"
                     " updated_at = now() WHERE item_id = $1::bigint AND version = $2::bigint"
                     " AND count > 0 RETURNING 1",
                     2, pv, &res);
    if (*st != GF_OK)
        goto rollback;
    if (PQntuples(res) == 0) {
        out = LOCAL_LOST_RACE; /* another buyer changed the row since we read it */
        goto rollback;
    }
    PQclear(res);
    res = NULL;
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

/* The local transaction, re-run while it loses optimistic-lock races. */
static enum local_outcome buy_commit(struct backend_app *app, struct buy *b,
                                     const struct be_idem *idem, bool *unknown, enum gf_status *st,
                                     struct be_err *err)
{
    struct gf_backoff bo;
    gf_backoff_init(&bo, 2, 50);
    enum local_outcome out = LOCAL_FAILED;
    *unknown = false;
    for (int attempt = 0; attempt < app->cfg->lock_retries; attempt++) {
        struct gf_db_conn *c = NULL;
        *st = gf_db_acquire(app->pool, &c);
        if (*st != GF_OK)
            return LOCAL_FAILED;
        out = buy_local(c, b, idem, unknown, st, err);
        gf_db_release(app->pool, c);
        if (out != LOCAL_LOST_RACE)
            break;
        gf_counter_add(m_lock_conflicts_buy, 1);
        if (attempt + 1 < app->cfg->lock_retries)
            gf_counter_add(m_lock_retries_buy, 1);
        gf_sleep_ms(gf_backoff_next(&bo), NULL);
    }
    return out;
}

/* The answer of a buy whose local transaction did not commit, or whose COMMIT's answer was
 * lost: the decision that stands decides. */
static enum gf_status buy_not_done(struct backend_app *app, const struct buy *b,
                                   enum local_outcome out, bool unknown, enum gf_status st,
                                   int64_t *user_item_id, struct be_err *err)
{
    char state[16];
    decide_failed(app, b->cid, DECIDER_BUY, b->cost == 0, state);
    if (b->cost > 0)
        count_outcome(KIND_BUY, state);
    if (strcmp(state, "succeeded") == 0) {
        /* Our COMMIT did happen; only its answer was lost. */
        if (b->cost > 0)
            gf_counter_add(m_decided[DECIDER_BUY][0], 1);
        *user_item_id = b->user_item_id;
        return GF_OK;
    }
    if (state[0] == '\0' && unknown)
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
    case LOCAL_LOST_RACE:
        gf_counter_add(m_lock_exhausted_buy, 1);
        be_err_set(err, "lock_conflict",
                   "too many concurrent changes of item %" PRId64 ", try again", b->item_id);
        return GF_ECONFLICT;
    case LOCAL_DECIDED:
        be_err_set(err, "transaction_aborted",
                   "the transaction was aborted while it waited (timed out), try again");
        return GF_ECONFLICT;
    case LOCAL_ANSWERED:
        if (unknown) { /* the COMMIT did not happen after all: the decision says failed */
            be_err_set(err, "database_unavailable", "the database is unavailable, try again");
            return GF_EUNAVAILABLE;
        }
        return st;
    default:
        return store_db_failed(st, err);
    }
}

enum gf_status coord_buy(struct backend_app *app, int64_t user_id, int64_t item_id, const char *cid,
                         const struct be_idem *idem, int64_t *user_item_id, bool *replayed,
                         struct be_err *err)
{
    struct buy b = {.user_id = user_id, .item_id = item_id, .cid = cid};
    *replayed = false;
    enum gf_status st = buy_check(app, &b, err);
    if (st != GF_OK)
        return st;
    /* Free buys claim their id too: it names their event, and one transaction at most. */
    st = claim(app, cid, "buy", user_id, item_id, b.cost, err);
    if (st == GF_EEXISTS)
        return settle_existing(app, cid, KIND_BUY, user_id, item_id, b.cost, user_item_id, replayed,
                               err);
    if (st != GF_OK)
        return st;
    if (b.cost > 0) {
        gf_counter_add(m_started[KIND_BUY], 1);
        st = prepare_subtract(app, user_id, b.cost, cid, err);
        gf_counter_add(m_prepared[KIND_BUY][prepare_result_of(st)], 1);
        if (st != GF_OK) {
            char state[16];
            decide_failed(app, cid, DECIDER_BUY, false, state); /* it may have reached gxp */
            count_outcome(KIND_BUY, state);
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
        gf_counter_add(m_decided[DECIDER_BUY][0], 1);
        gf_counter_add(m_outcome[KIND_BUY][OUTCOME_SUCCEEDED], 1);
    }
    relay_kick(app->relay); /* publish the event now rather than at the next poll */
    *user_item_id = b.user_item_id;
    GF_INFO("bought user=%" PRId64 " item=%" PRId64 " cost=%" PRId64, user_id, item_id, b.cost);
    return GF_OK;
}

/* ---- add-gxp -------------------------------------------------------------------------- */

/* The commit point of an add-gxp: its decision 'succeeded' (with the key's answer, in one
 * transaction, when the request has an Idempotency-Key). GF_EEXISTS when a decision stood
 * already (the resolver's 'failed'). */
static enum gf_status decide_added(struct backend_app *app, const char *cid,
                                   const struct be_idem *idem, bool *unknown, struct be_err *err)
{
    struct gf_db_conn *c = NULL;
    const char *params[1] = {cid};
    static const char sql[] = "INSERT INTO transaction_outbox (correlation_id, state)"
                              " VALUES ($1::uuid, 'succeeded')";
    *unknown = false;
    enum gf_status st = gf_db_acquire(app->pool, &c);
    if (st != GF_OK)
        return store_db_failed(st, err);
    if (idem == NULL || idem->key == NULL) {
        st = gf_db_exec(c, "be_decide_add", sql, 1, params, NULL);
        if (st != GF_OK && st != GF_EEXISTS) {
            *unknown = PQstatus(gf_db_pgconn(c)) != CONNECTION_OK;
            st = store_db_failed(*unknown ? GF_EUNKNOWN : st, err);
        }
        goto out;
    }
    st = gf_db_exec_simple(c, "BEGIN");
    if (st == GF_OK)
        st = gf_db_exec(c, "be_decide_add", sql, 1, params, NULL);
    if (st != GF_OK) {
        gf_db_rollback(c);
        if (st != GF_EEXISTS)
            st = store_db_failed(st, err);
        goto out;
    }
    st = idem_commit(c, idem, 0, unknown, err);
out:
    gf_db_release(app->pool, c);
    return st;
}

enum gf_status coord_add_gxp(struct backend_app *app, int64_t user_id, int64_t amount,
                             const char *cid, const struct be_idem *idem, bool *replayed,
                             struct be_err *err)
{
    *replayed = false;
    enum gf_status st = store_user_exists(app, user_id, err);
    if (st != GF_OK)
        return st;
    st = claim(app, cid, "add_gxp", user_id, 0, amount, err);
    if (st == GF_EEXISTS) {
        int64_t none;
        return settle_existing(app, cid, KIND_ADD_GXP, user_id, 0, amount, &none, replayed, err);
    }
    if (st != GF_OK)
        return st;
    gf_counter_add(m_started[KIND_ADD_GXP], 1);
    st = prepare(app, user_id, GXP__TRANSACTION_TYPE__ADD, amount, cid, err);
    gf_counter_add(m_prepared[KIND_ADD_GXP][prepare_result_of(st)], 1);
    char state[16];
    if (st != GF_OK) {
        decide_failed(app, cid, DECIDER_ADD_GXP, false, state);
        count_outcome(KIND_ADD_GXP, state);
        return st;
    }
    gf_failpoint("add_gxp.after_prepare");
    bool unknown = false;
    st = decide_added(app, cid, idem, &unknown, err);
    if (st == GF_OK) {
        gf_failpoint("add_gxp.after_commit");
        gf_counter_add(m_decided[DECIDER_ADD_GXP][0], 1);
        gf_counter_add(m_outcome[KIND_ADD_GXP][OUTCOME_SUCCEEDED], 1);
        GF_INFO("gxp added user=%" PRId64 " amount=%" PRId64, user_id, amount);
        return GF_OK;
    }
    if (st == GF_EEXISTS) {
        gf_counter_add(m_outcome[KIND_ADD_GXP][OUTCOME_FAILED], 1);
        be_err_set(err, "transaction_aborted",
                   "the transaction was aborted while it waited (timed out), try again");
        return GF_ECONFLICT;
    }
    decide_failed(app, cid, DECIDER_ADD_GXP, false, state);
    count_outcome(KIND_ADD_GXP, state);
    if (strcmp(state, "succeeded") == 0) {
        gf_counter_add(m_decided[DECIDER_ADD_GXP][0], 1); /* ours; only the answer was lost */
        return GF_OK;
    }
    if (state[0] != '\0' && unknown) { /* the COMMIT did not happen after all */
        be_err_set(err, "database_unavailable", "the database is unavailable, try again");
        return GF_EUNAVAILABLE;
    }
    return st;
}

/* ---- reads from gxp -------------------------------------------------------------------- */

static json_t *iso_of(const Google__Protobuf__Timestamp *ts)
{
    char out[25];
    gf_iso8601_ms(ts ? ts->seconds * 1000000 + ts->nanos / 1000 : 0, out);
    return json_string(out);
}

enum gf_status coord_user_gxp(struct backend_app *app, int64_t user_id, const char *cid,
                              json_t **out, struct be_err *err)
{
    enum gf_status st = store_user_exists(app, user_id, err);
    if (st != GF_OK)
        return st;
    Gxp__GetUserBalanceRequest req = GXP__GET_USER_BALANCE_REQUEST__INIT;
    req.userid = (uint32_t)user_id;
    req.correlationid = (char *)cid;
    ProtobufCMessage *resp = NULL;
    char details[256];
    grpc_status_code code =
        gxp_call(app, "/gxp.Gxp/GetUserBalance", &req.base,
                 &gxp__get_user_balance_response__descriptor, &resp, cid, details, sizeof details);
    if (code != GRPC_STATUS_OK)
        return gxp_failed(code, details, err);
    Gxp__GetUserBalanceResponse *r = (Gxp__GetUserBalanceResponse *)resp;
    *out = json_pack("{s:I,s:I,s:o}", "balance", (json_int_t)r->balance, "reserved",
                     (json_int_t)r->reserved, "updatedAt", iso_of(r->updatedat));
    protobuf_c_message_free_unpacked(resp, NULL);
    if (*out == NULL) {
        be_err_set(err, "out_of_memory", "out of memory");
        return GF_ENOMEM;
    }
    return GF_OK;
}

/* ---- the life of one transaction (gf trace) ---------------------------------------------- */

static json_t *iso_us(const char *us)
{
    char out[25];
    gf_iso8601_ms(strtoll(us, NULL, 10), out);
    return json_string(out);
}

/* gxp's side of the transaction: its object, json_null() when gxp never prepared it. */
static enum gf_status gxp_side(struct backend_app *app, const char *tx_cid, const char *cid,
                               json_t **out, struct be_err *err)
{
    static const char *const statuses[] = {"PENDING", "ABORTED", "COMMITTED"};
    ProtobufCMessage *resp = NULL;
    char details[256];
    grpc_status_code code = get_transaction(app, tx_cid, cid, &resp, details, sizeof details);
    if (code == GRPC_STATUS_NOT_FOUND) {
        *out = json_null();
        return GF_OK;
    }
    if (code != GRPC_STATUS_OK)
        return gxp_failed(code, details, err);
    Gxp__GetTransactionResponse *r = (Gxp__GetTransactionResponse *)resp;
    const Gxp__Transaction *t = r->transaction;
    if (t == NULL || (unsigned)t->status > 2 || (unsigned)t->type > 1) {
        protobuf_c_message_free_unpacked(resp, NULL);
        be_err_set(err, "internal_error", "gxp answered an unexpected transaction");
        return GF_EINTERNAL;
    }
    *out = json_pack("{s:s,s:s,s:I,s:o,s:o,s:o}", "status", statuses[t->status], "type",
                     t->type == GXP__TRANSACTION_TYPE__ADD ? "ADD" : "SUBTRACT", "amount",
                     (json_int_t)t->amount, "createdAt", iso_of(r->createdat), "updatedAt",
                     iso_of(t->updated_at), "finalizedAt",
                     r->finalizedat ? iso_of(r->finalizedat) : json_null());
    protobuf_c_message_free_unpacked(resp, NULL);
    if (*out == NULL) {
        be_err_set(err, "out_of_memory", "out of memory");
        return GF_ENOMEM;
    }
    return GF_OK;
}

enum gf_status coord_transaction(struct backend_app *app, const char *tx_cid, const char *cid,
                                 json_t **out, struct be_err *err)
{
    const char *p[1] = {tx_cid};
    PGresult *res = NULL;
    enum gf_status st = store_exec(
        app, "be_trace",
        "SELECT c.kind, c.user_id, c.item_id, c.amount,"
        " (extract(epoch FROM c.created_at) * 1000000)::bigint, o.state,"
        " (extract(epoch FROM o.created_at) * 1000000)::bigint"
        " FROM coord_transactions c LEFT JOIN transaction_outbox o USING (correlation_id)"
        " WHERE c.correlation_id = $1::uuid",
        1, p, &res, err);
    if (st != GF_OK)
        return st;
    if (PQntuples(res) == 0) {
        PQclear(res);
        be_err_set(err, "unknown_transaction", "no transaction has correlation id %s", tx_cid);
        return GF_ENOTFOUND;
    }
    json_t *decision = PQgetisnull(res, 0, 5)
                           ? json_null()
                           : json_pack("{s:s,s:o}", "state", PQgetvalue(res, 0, 5), "createdAt",
                                       iso_us(PQgetvalue(res, 0, 6)));
    json_t *t = json_pack(
        "{s:s,s:s,s:I,s:o,s:I,s:o,s:o}", "correlationId", tx_cid, "kind", PQgetvalue(res, 0, 0),
        "userId", (json_int_t)strtoll(PQgetvalue(res, 0, 1), NULL, 10), "itemId",
        PQgetisnull(res, 0, 2) ? json_null()
                               : json_integer(strtoll(PQgetvalue(res, 0, 2), NULL, 10)),
        "amount", (json_int_t)strtoll(PQgetvalue(res, 0, 3), NULL, 10), "createdAt",
        iso_us(PQgetvalue(res, 0, 4)), "decision", decision);
    bool free_buy =
        strcmp(PQgetvalue(res, 0, 0), "buy") == 0 && strcmp(PQgetvalue(res, 0, 3), "0") == 0;
    PQclear(res);
    if (t == NULL) {
        be_err_set(err, "out_of_memory", "out of memory");
        return GF_ENOMEM;
    }
    /* A free buy never involves gxp. */
    json_t *gxp = json_null();
    if (!free_buy && (st = gxp_side(app, tx_cid, cid, &gxp, err)) != GF_OK) {
        json_decref(t);
        return st;
    }
    json_object_set_new(t, "gxp", gxp);
    *out = t;
    return GF_OK;
}

enum gf_status coord_gxp_get_all(struct backend_app *app, const struct be_gxp_page *page,
                                 const char *cid, json_t **out, struct be_err *err)
{
    Gxp__GetAllRequest req = GXP__GET_ALL_REQUEST__INIT;
    req.limit = (uint32_t)page->limit;
    req.after_transaction = (uint64_t)page->after_tx;
    req.after_balance = (uint32_t)page->after_balance;
    req.newest_first = page->newest_first;
    ProtobufCMessage *resp = NULL;
    char details[256];
    grpc_status_code code =
        gxp_call(app, "/gxp.Gxp/GetAll", &req.base, &gxp__get_all_response__descriptor, &resp, cid,
                 details, sizeof details);
    if (code != GRPC_STATUS_OK)
        return gxp_failed(code, details, err);
    Gxp__GetAllResponse *r = (Gxp__GetAllResponse *)resp;
    json_t *balances = json_array(), *transactions = json_array();
    for (size_t i = 0; balances && i < r->n_balances; i++)
        json_array_append_new(balances, json_pack("{s:I,s:I,s:o}", "balance",
                                                  (json_int_t)r->balances[i]->balance, "reserved",
                                                  (json_int_t)r->balances[i]->reserved, "updatedAt",
                                                  iso_of(r->balances[i]->updated_at)));
    for (size_t i = 0; transactions && i < r->n_transactions; i++) {
        Gxp__Transaction *t = r->transactions[i];
        json_array_append_new(transactions,
                              json_pack("{s:I,s:I,s:i,s:i,s:s,s:o}", "balanceId",
                                        (json_int_t)t->balance_id, "amount", (json_int_t)t->amount,
                                        "type", (int)t->type, "status", (int)t->status,
                                        "correlationId", t->correlation_id ? t->correlation_id : "",
                                        "updatedAt", iso_of(t->updated_at)));
    }
    json_t *next_tx = r->next_after_transaction
                          ? json_integer((json_int_t)r->next_after_transaction)
                          : json_null();
    json_t *next_b =
        r->next_after_balance ? json_integer((json_int_t)r->next_after_balance) : json_null();
    bool cursors = page->paged || r->next_after_transaction || r->next_after_balance;
    protobuf_c_message_free_unpacked(resp, NULL);
    *out = json_pack("{s:o,s:o}", "balances", balances, "transactions", transactions);
    if (*out != NULL && cursors) {
        json_object_set_new(*out, "nextAfter", next_tx);
        json_object_set_new(*out, "nextAfterBalance", next_b);
    } else {
        json_decref(next_tx);
        json_decref(next_b);
    }
    if (*out == NULL) {
        be_err_set(err, "out_of_memory", "out of memory");
        return GF_ENOMEM;
    }
    return GF_OK;
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
        gf_counter_add(m_resolve[RESOLVE_INVALID], 1);
        gf_grpc_set_error(call, "correlationId must be a UUID");
        return GF_EINVAL;
    }
    gf_log_set_cid(cid);
    if (!atomic_load(&app->migrated)) {
        gf_counter_add(m_resolve[RESOLVE_UNAVAILABLE], 1);
        gf_grpc_set_error(call, "the backend database is not ready");
        return GF_EUNAVAILABLE;
    }
    char state[16];
    gf_failpoint("resolve.before_decide");
    decide_failed(app, cid, DECIDER_RESOLVE, false, state);
    gf_failpoint("resolve.after_decide");
    if (state[0] == '\0') {
        gf_counter_add(m_resolve[RESOLVE_UNAVAILABLE], 1);
        gf_grpc_set_error(call, "the backend database is unavailable");
        return GF_EUNAVAILABLE;
    }
    gf_counter_add(m_resolve[strcmp(state, "succeeded") == 0 ? RESOLVE_SUCCEEDED : RESOLVE_FAILED],
                   1);
    GF_INFO("transaction resolved for gxp state=%s", state);
    resp->correlationid = gf_grpc_strdup(call, cid);
    resp->state = gf_grpc_strdup(call, state);
    return resp->correlationid && resp->state ? GF_OK : GF_ENOMEM;
}

const struct gf_grpc_method coord_methods[] = {
    {"/backend.Backend/ResolveTransaction", &backend__resolve_transaction_request__descriptor,
     &backend__resolve_transaction_response__descriptor, resolve_transaction},
};
const int coord_nmethods = sizeof coord_methods / sizeof coord_methods[0];
