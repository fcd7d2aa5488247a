/* The four RPCs of gxp.Gxp: validation of every field, then one SQL round trip each
 * (the ledger's logic lives in sql/gxp/001_ledger.sql so that prepare is atomic and
 * finalize can run inside the replication apply worker). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gf/clock.h"
#include "gf/log.h"
#include "gf/metrics.h"
#include "gf/uuid.h"
#include "gxp.h"

/* Timestamps PostgreSQL can hold and we accept: years 1..9999. */
#define TS_MIN_SECONDS (-62135596800LL)
#define TS_MAX_SECONDS (253402300799LL)
#define SINGLE_STATEMENT_ATTEMPTS 3

/* ---- metrics: registered at start, then one relaxed atomic add per call ------------------ */

/* What a TransactionPrepare came to: the codes of gxp_prepare (0..7), then the failures. */
enum prepare_result {
    PREPARE_PREPARED,
    PREPARE_REPLAYED,
    PREPARE_NO_BALANCE,
    PREPARE_INSUFFICIENT_FUNDS,
    PREPARE_ALREADY_DECIDED,
    PREPARE_OTHER_ARGUMENTS,
    PREPARE_BALANCE_LIMIT,
    PREPARE_FINALIZED,   /* the id names a transaction finalized earlier (sql/gxp/003) */
    PREPARE_UNAVAILABLE, /* gxp-db did not answer (or in time) */
    PREPARE_ERROR,
    NPREPARE
};
static const char *const prepare_names[NPREPARE] = {"prepared",        "replayed",
                                                    "no_balance",      "insufficient_funds",
                                                    "already_decided", "other_arguments",
                                                    "balance_limit",   "already_finalized",
                                                    "unavailable",     "error"};

static struct gf_counter *m_prepares[2][NPREPARE]; /* [type: ADD, SUBTRACT] */
static atomic_long in_flight;                      /* statements submitted, not yet answered */

static double in_flight_gauge(void *arg)
{
    (void)arg;
    return (double)atomic_load_explicit(&in_flight, memory_order_relaxed);
}

void ledger_metrics_init(void)
{
    for (int t = 0; t < 2; t++) {
        for (int r = 0; r < NPREPARE; r++) {
            char labels[96];
            snprintf(labels, sizeof labels, "type=\"%s\",result=\"%s\"",
                     t == GXP__TRANSACTION_TYPE__ADD ? "add" : "subtract", prepare_names[r]);
            m_prepares[t][r] = gf_metrics_counter(
                "gxp_prepares_total",
                "TransactionPrepare calls answered, by type and result (refusals by reason)",
                labels);
        }
    }
    gf_metrics_gauge_fn("gxp_pipeline_in_flight",
                        "RPC statements submitted to the database pipeline and not yet answered",
                        "", in_flight_gauge, NULL);
}

grpc_status_code ledger_grpc_code(enum gf_status st)
{
    switch (st) {
    case GF_OK:
        return GRPC_STATUS_OK;
    case GF_EINVAL:
        return GRPC_STATUS_INVALID_ARGUMENT;
    case GF_ENOTFOUND:
        return GRPC_STATUS_NOT_FOUND;
    case GF_EEXISTS:
        return GRPC_STATUS_ALREADY_EXISTS;
    case GF_ECONFLICT:
        return GRPC_STATUS_ABORTED;
    case GF_EPRECONDITION:
        return GRPC_STATUS_FAILED_PRECONDITION;
    case GF_ERANGE:
        return GRPC_STATUS_OUT_OF_RANGE;
    case GF_EUNAVAILABLE:
        return GRPC_STATUS_UNAVAILABLE;
    case GF_ESHUTDOWN:
    case GF_EUNKNOWN:
        return GRPC_STATUS_UNAVAILABLE;
    case GF_ETIMEOUT:
        return GRPC_STATUS_DEADLINE_EXCEEDED;
    case GF_EUNAUTHENTICATED:
        return GRPC_STATUS_UNAUTHENTICATED;
    case GF_EFORBIDDEN:
        return GRPC_STATUS_PERMISSION_DENIED;
    case GF_ERATELIMITED:
        return GRPC_STATUS_RESOURCE_EXHAUSTED;
    case GF_ENOMEM:
        return GRPC_STATUS_RESOURCE_EXHAUSTED;
    case GF_ETOOBIG:
        return GRPC_STATUS_RESOURCE_EXHAUSTED;
    case GF_EINTERNAL:
    case GF_PENDING: /* never an answer: the glue does not map it */
        return GRPC_STATUS_INTERNAL;
    }
    return GRPC_STATUS_INTERNAL;
}

/* A Timestamp fits a PostgreSQL timestamptz and the proto rules (nanos 0..999,999,999). */
GF_TESTABLE bool ledger_timestamp_ok(const Google__Protobuf__Timestamp *ts)
{
    return ts->seconds >= TS_MIN_SECONDS && ts->seconds <= TS_MAX_SECONDS && ts->nanos >= 0 &&
           ts->nanos <= 999999999;
}

/* Fills *ts from epoch microseconds. */
GF_TESTABLE void ledger_timestamp_set(Google__Protobuf__Timestamp *ts, int64_t epoch_us)
{
    int64_t s = epoch_us / 1000000, r = epoch_us % 1000000;
    if (r < 0) {
        r += 1000000;
        s--;
    }
    ts->seconds = s;
    ts->nanos = (int32_t)(r * 1000);
}

/* An optional correlation id must be a UUID when given; *out gets it normalized or "". */
static bool optional_cid(const char *in, char out[37])
{
    out[0] = '\0';
    if (in == NULL || in[0] == '\0')
        return true;
    return gf_uuid_normalize(in, strlen(in), out);
}

enum gf_status ledger_check_prepare(const Gxp__TransactionPrepareRequest *req, char cid[37],
                                    int64_t *cts_us, const char **why)
{
    if (req->userid == 0) {
        *why = "userId must be a positive integer";
        return GF_EINVAL;
    }
    if (req->type != GXP__TRANSACTION_TYPE__ADD && req->type != GXP__TRANSACTION_TYPE__SUBTRACT) {
        *why = "type must be ADD (0) or SUBTRACT (1)";
        return GF_EINVAL;
    }
    if (req->amount == 0) {
        *why = "amount must be at least 1";
        return GF_EINVAL;
    }
    if (req->correlationid == NULL ||
        !gf_uuid_normalize(req->correlationid, strlen(req->correlationid), cid)) {
        *why = "correlationId must be a UUID";
        return GF_EINVAL;
    }
    *cts_us = INT64_MIN;
    if (req->correlationtimestamp) {
        if (!ledger_timestamp_ok(req->correlationtimestamp)) {
            *why = "correlationTimestamp is out of range";
            return GF_EINVAL;
        }
        *cts_us =
            req->correlationtimestamp->seconds * 1000000 + req->correlationtimestamp->nanos / 1000;
    }
    return GF_OK;
}

static enum gf_status unavailable(struct gf_grpc_call *call, enum gf_status st)
{
    if (st == GF_ETIMEOUT)
        gf_grpc_set_error(call, "the ledger database did not answer in time");
    else if (st == GF_EUNAVAILABLE || st == GF_ECONFLICT || st == GF_ESHUTDOWN)
        gf_grpc_set_error(call, "the ledger database is unavailable, try again");
    else
        gf_grpc_set_error(call, "internal error");
    return st == GF_ECONFLICT || st == GF_ESHUTDOWN ? GF_EUNAVAILABLE : st;
}

/* One RPC's one statement, in flight through the pipeline. The handler fills it in (in the
 * call's arena) and returns GF_PENDING; stmt_done answers the call when the result comes,
 * after re-running the statement on a deadlock or serialization failure (a single
 * statement can be re-run whole). The handler's thread is free meanwhile. */
struct stmt {
    struct gxp_app *app;
    struct gf_grpc_call *call;
    const char *name, *sql;
    int nparams, attempts;
    const char *params[5];
    /* Reads the result into the response; returns the call's status. */
    enum gf_status (*on_result)(struct stmt *s, PGresult *res);
    ProtobufCMessage *resp;
    char cid[37], user[16], type[4], amount[16], cts[24];
    int tx_type; /* TransactionPrepare: ADD or SUBTRACT, for its metrics */
};

static void count_prepare(const struct stmt *s, enum prepare_result r)
{
    gf_counter_add(m_prepares[s->tx_type == GXP__TRANSACTION_TYPE__ADD ? 0 : 1][r], 1);
}

static enum gf_status prepared(struct stmt *s, PGresult *res);

static void stmt_done(void *arg, enum gf_status st, PGresult *res)
{
    struct stmt *s = arg;
    if (st == GF_ECONFLICT && ++s->attempts < SINGLE_STATEMENT_ATTEMPTS) {
        gf_db_pipeline_submit(s->app->pipeline, s->name, s->sql, s->nparams, s->params, stmt_done,
                              s);
        return;
    }
    atomic_fetch_sub_explicit(&in_flight, 1, memory_order_relaxed);
    gf_log_set_cid(s->cid[0] ? s->cid : NULL);
    if (st != GF_OK && s->on_result == prepared)
        count_prepare(s, PREPARE_UNAVAILABLE);
    st = st == GF_OK ? s->on_result(s, res) : unavailable(s->call, st);
    PQclear(res);
    gf_grpc_finish(s->call, st);
}

static struct stmt *stmt_new(struct gf_grpc_call *call, void *app, ProtobufCMessage *resp)
{
    struct stmt *s = gf_grpc_alloc(call, sizeof *s);
    if (s) {
        s->app = app;
        s->call = call;
        s->resp = resp;
    }
    return s;
}

static enum gf_status stmt_start(struct stmt *s)
{
    if (!atomic_load(&s->app->migrated))
        return unavailable(s->call, GF_EUNAVAILABLE);
    atomic_fetch_add_explicit(&in_flight, 1, memory_order_relaxed);
    gf_db_pipeline_submit(s->app->pipeline, s->name, s->sql, s->nparams, s->params, stmt_done, s);
    return GF_PENDING;
}

static enum gf_status prepared(struct stmt *s, PGresult *res)
{
    Gxp__TransactionPrepareResponse *resp = (Gxp__TransactionPrepareResponse *)s->resp;
    struct gf_grpc_call *call = s->call;
    int code = atoi(PQgetvalue(res, 0, 0));
    count_prepare(s, code >= 0 && code <= PREPARE_FINALIZED ? (enum prepare_result)code
                                                            : PREPARE_ERROR);
    switch (code) {
    case 0:
    case 1:
        GF_DEBUG("prepared user=%s type=%s amount=%s replay=%d", s->user, s->type, s->amount, code);
        resp->correlationid = s->cid;
        return GF_OK;
    case 2:
        gf_grpc_set_error(call, "no balance for user %s", s->user);
        return GF_ENOTFOUND;
    case 3:
        gf_grpc_set_error(call, "insufficient funds: user %s cannot reserve %s", s->user,
                          s->amount);
        return GF_EPRECONDITION;
    case 4:
        gf_grpc_set_error(call, "a decision for correlation id %s already exists", s->cid);
        return GF_EPRECONDITION;
    case 5:
        gf_grpc_set_error(call, "correlation id %s was prepared with other arguments", s->cid);
        return GF_EEXISTS;
    case 6:
        gf_grpc_set_error(call, "the balance of user %s would exceed 4294967295", s->user);
        return GF_ERANGE;
    case 7:
        /* ALREADY_EXISTS, as another request's id: the coordinator that sends it has forgotten
         * the transaction (its retention), so to it the id names another one. */
        gf_grpc_set_error(call, "correlation id %s names a transaction finalized earlier", s->cid);
        return GF_EEXISTS;
    }
    GF_ERROR("gxp_prepare answered an unknown code=%d", code);
    gf_grpc_set_error(call, "internal error");
    return GF_EINTERNAL;
}

static enum gf_status transaction_prepare(struct gf_grpc_call *call, void *app,
                                          const ProtobufCMessage *msg, ProtobufCMessage *out)
{
    const Gxp__TransactionPrepareRequest *req = (const Gxp__TransactionPrepareRequest *)msg;
    struct stmt *s = stmt_new(call, app, out);
    if (s == NULL)
        return GF_ENOMEM;
    int64_t cts_us;
    const char *why = NULL;
    enum gf_status st = ledger_check_prepare(req, s->cid, &cts_us, &why);
    if (st != GF_OK) {
        gf_grpc_set_error(call, "%s", why);
        return st;
    }
    gf_log_set_cid(s->cid);
    snprintf(s->user, sizeof s->user, "%" PRIu32, req->userid);
    snprintf(s->type, sizeof s->type, "%d", (int)req->type);
    snprintf(s->amount, sizeof s->amount, "%" PRIu32, req->amount);
    snprintf(s->cts, sizeof s->cts, "%" PRId64, cts_us);
    s->tx_type = (int)req->type;
    s->name = "gxp_prepare";
    s->sql = "SELECT gxp_prepare($1::bigint, $2::smallint, $3::bigint, $4::uuid,"
             " 'epoch'::timestamptz + $5::bigint * interval '1 microsecond')";
    s->nparams = 5;
    s->params[0] = s->user;
    s->params[1] = s->type;
    s->params[2] = s->amount;
    s->params[3] = s->cid;
    s->params[4] = cts_us == INT64_MIN ? NULL : s->cts;
    s->on_result = prepared;
    return stmt_start(s);
}

enum gf_status ledger_check_user(uint32_t user, const char *cid,
                                 const Google__Protobuf__Timestamp *ts, char cid_out[37],
                                 const char **why)
{
    if (user == 0) {
        *why = "userId must be a positive integer";
        return GF_EINVAL;
    }
    if (!optional_cid(cid, cid_out)) {
        *why = "correlationId must be a UUID";
        return GF_EINVAL;
    }
    if (ts && !ledger_timestamp_ok(ts)) {
        *why = "correlationTimestamp is out of range";
        return GF_EINVAL;
    }
    return GF_OK;
}

/* The fields CreateUserBalance and GetUserBalance share: a user id, and optionally a
 * correlation id (a UUID) and its timestamp. Fills s->user and s->cid. */
static enum gf_status check_user(struct gf_grpc_call *call, struct stmt *s, uint32_t user,
                                 const char *cid, const Google__Protobuf__Timestamp *ts)
{
    const char *why = NULL;
    enum gf_status st = ledger_check_user(user, cid, ts, s->cid, &why);
    if (st != GF_OK) {
        gf_grpc_set_error(call, "%s", why);
        return st;
    }
    if (s->cid[0])
        gf_log_set_cid(s->cid);
    snprintf(s->user, sizeof s->user, "%" PRIu32, user);
    return GF_OK;
}

static enum gf_status balance_created(struct stmt *s, PGresult *res)
{
    Gxp__CreateUserBalanceResponse *resp = (Gxp__CreateUserBalanceResponse *)s->resp;
    if (PQntuples(res) == 1)
        GF_INFO("balance created user=%s", s->user);
    resp->correlationid = s->cid[0] ? s->cid : (char *)gf_grpc_call_cid(s->call);
    return GF_OK;
}

static enum gf_status create_user_balance(struct gf_grpc_call *call, void *app,
                                          const ProtobufCMessage *msg, ProtobufCMessage *out)
{
    const Gxp__CreateUserBalanceRequest *req = (const Gxp__CreateUserBalanceRequest *)msg;
    struct stmt *s = stmt_new(call, app, out);
    if (s == NULL)
        return GF_ENOMEM;
    enum gf_status st =
        check_user(call, s, req->userid, req->correlationid, req->correlationtimestamp);
    if (st != GF_OK)
        return st;
    s->name = "gxp_create_balance";
    s->sql = "INSERT INTO balance (user_id) VALUES ($1::bigint)"
             " ON CONFLICT (user_id) DO NOTHING RETURNING 1";
    s->nparams = 1;
    s->params[0] = s->user;
    s->on_result = balance_created;
    return stmt_start(s);
}

static Google__Protobuf__Timestamp *timestamp_new(struct gf_grpc_call *call, const char *us)
{
    Google__Protobuf__Timestamp *ts = gf_grpc_alloc(call, sizeof *ts);
    if (ts) {
        google__protobuf__timestamp__init(ts);
        ledger_timestamp_set(ts, strtoll(us, NULL, 10));
    }
    return ts;
}

static enum gf_status balance_read(struct stmt *s, PGresult *res)
{
    Gxp__GetUserBalanceResponse *resp = (Gxp__GetUserBalanceResponse *)s->resp;
    if (PQntuples(res) == 0) {
        gf_grpc_set_error(s->call, "no balance for user %s", s->user);
        return GF_ENOTFOUND;
    }
    resp->balance = (uint32_t)strtoul(PQgetvalue(res, 0, 0), NULL, 10);
    resp->reserved = (uint32_t)strtoul(PQgetvalue(res, 0, 1), NULL, 10);
    resp->updatedat = timestamp_new(s->call, PQgetvalue(res, 0, 2));
    resp->correlationid = s->cid[0] ? s->cid : (char *)gf_grpc_call_cid(s->call);
    return resp->updatedat ? GF_OK : GF_ENOMEM;
}

static enum gf_status get_user_balance(struct gf_grpc_call *call, void *app,
                                       const ProtobufCMessage *msg, ProtobufCMessage *out)
{
    const Gxp__GetUserBalanceRequest *req = (const Gxp__GetUserBalanceRequest *)msg;
    struct stmt *s = stmt_new(call, app, out);
    if (s == NULL)
        return GF_ENOMEM;
    enum gf_status st =
        check_user(call, s, req->userid, req->correlationid, req->correlationtimestamp);
    if (st != GF_OK)
        return st;
    s->name = "gxp_get_balance";
    s->sql = "SELECT balance, reserved, (extract(epoch FROM updated_at) * 1000000)::bigint"
             " FROM balance WHERE user_id = $1::bigint";
    s->nparams = 1;
    s->params[0] = s->user;
    s->on_result = balance_read;
    return stmt_start(s);
}

static enum gf_status transaction_read(struct stmt *s, PGresult *res)
{
    Gxp__GetTransactionResponse *resp = (Gxp__GetTransactionResponse *)s->resp;
    if (PQntuples(res) == 0) {
        gf_grpc_set_error(s->call, "no transaction with correlation id %s", s->cid);
        return GF_ENOTFOUND;
    }
    Gxp__Transaction *t = gf_grpc_alloc(s->call, sizeof *t);
    if (t == NULL)
        return GF_ENOMEM;
    gxp__transaction__init(t);
    t->balance_id = (uint32_t)strtoul(PQgetvalue(res, 0, 0), NULL, 10);
    t->amount = (uint32_t)strtoul(PQgetvalue(res, 0, 1), NULL, 10);
    t->type = (Gxp__TransactionType)atoi(PQgetvalue(res, 0, 2));
    t->status = (Gxp__TransactionStatus)atoi(PQgetvalue(res, 0, 3));
    t->correlation_id = s->cid;
    t->updated_at = timestamp_new(s->call, PQgetvalue(res, 0, 4));
    resp->transaction = t;
    resp->createdat = timestamp_new(s->call, PQgetvalue(res, 0, 5));
    if (!PQgetisnull(res, 0, 6))
        resp->finalizedat = timestamp_new(s->call, PQgetvalue(res, 0, 6));
    bool ok = t->updated_at && resp->createdat && (PQgetisnull(res, 0, 6) || resp->finalizedat);
    return ok ? GF_OK : GF_ENOMEM;
}

enum gf_status ledger_check_get_transaction(const Gxp__GetTransactionRequest *req, char cid[37],
                                            const char **why)
{
    if (req->correlationid == NULL || req->correlationid[0] == '\0' ||
        !optional_cid(req->correlationid, cid)) {
        *why = "correlationId must be a UUID";
        return GF_EINVAL;
    }
    return GF_OK;
}

static enum gf_status get_transaction(struct gf_grpc_call *call, void *app,
                                      const ProtobufCMessage *msg, ProtobufCMessage *out)
{
    const Gxp__GetTransactionRequest *req = (const Gxp__GetTransactionRequest *)msg;
    struct stmt *s = stmt_new(call, app, out);
    if (s == NULL)
        return GF_ENOMEM;
    const char *why = NULL;
    enum gf_status st = ledger_check_get_transaction(req, s->cid, &why);
    if (st != GF_OK) {
        gf_grpc_set_error(call, "%s", why);
        return st;
    }
    gf_log_set_cid(s->cid);
    s->name = "gxp_get_transaction";
    s->sql = "SELECT user_id, amount, type, status,"
             " (extract(epoch FROM updated_at) * 1000000)::bigint,"
             " (extract(epoch FROM created_at) * 1000000)::bigint,"
             " (extract(epoch FROM finalized_at) * 1000000)::bigint"
             " FROM gxp_transaction WHERE correlation_id = $1::uuid";
    s->nparams = 1;
    s->params[0] = s->cid;
    s->on_result = transaction_read;
    return stmt_start(s);
}

struct getall_tx {
    char limit[16], after_b[16], after_t[24];
    bool newest_first;
    PGresult *balances, *transactions;
};

static enum gf_status getall_body(struct gf_db_conn *c, void *arg)
{
    struct getall_tx *g = arg;
    PQclear(g->balances);
    PQclear(g->transactions);
    g->balances = g->transactions = NULL;
    /* Both lists from one snapshot: no transaction without its balance change. */
    enum gf_status st =
        gf_db_exec(c, "gxp_getall_rr", "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                   0, NULL, NULL);
    const char *pb[2] = {g->after_b, g->limit};
    const char *pt[2] = {g->after_t, g->limit};
    if (st == GF_OK)
        st = gf_db_exec(c, "gxp_getall_balances",
                        "SELECT user_id, balance, reserved,"
                        " (extract(epoch FROM updated_at) * 1000000)::bigint"
                        " FROM balance WHERE user_id > $1::bigint ORDER BY user_id LIMIT $2::int",
                        2, pb, &g->balances);
    if (st == GF_OK && !g->newest_first)
        st = gf_db_exec(c, "gxp_getall_transactions",
                        "SELECT id, user_id, amount, type, status, correlation_id,"
                        " (extract(epoch FROM updated_at) * 1000000)::bigint"
                        " FROM gxp_transaction WHERE id > $1::bigint ORDER BY id LIMIT $2::int",
                        2, pt, &g->transactions);
    else if (st == GF_OK)
        st = gf_db_exec(c, "gxp_getall_transactions_newest",
                        "SELECT id, user_id, amount, type, status, correlation_id,"
                        " (extract(epoch FROM updated_at) * 1000000)::bigint"
                        " FROM gxp_transaction WHERE id < $1::bigint"
                        " ORDER BY id DESC LIMIT $2::int",
                        2, pt, &g->transactions);
    return st;
}

enum gf_status ledger_check_get_all(const Gxp__GetAllRequest *req, int64_t cap, int64_t *limit,
                                    const char **why)
{
    if (req->after_transaction > INT64_MAX) {
        *why = "after_transaction is out of range";
        return GF_EINVAL;
    }
    *limit = req->limit == 0 || req->limit > cap ? cap : (int64_t)req->limit;
    return GF_OK;
}

static enum gf_status get_all(struct gf_grpc_call *call, void *arg, const ProtobufCMessage *msg,
                              ProtobufCMessage *out)
{
    struct gxp_app *app = arg;
    const Gxp__GetAllRequest *req = (const Gxp__GetAllRequest *)msg;
    Gxp__GetAllResponse *resp = (Gxp__GetAllResponse *)out;
    struct getall_tx g = {0};
    int64_t limit;
    const char *why = NULL;
    if (ledger_check_get_all(req, app->cfg->getall_cap, &limit, &why) != GF_OK) {
        gf_grpc_set_error(call, "%s", why);
        return GF_EINVAL;
    }
    snprintf(g.limit, sizeof g.limit, "%" PRId64, limit);
    snprintf(g.after_b, sizeof g.after_b, "%" PRIu32, req->after_balance);
    snprintf(g.after_t, sizeof g.after_t, "%" PRIu64, req->after_transaction);
    g.newest_first = req->newest_first;
    if (g.newest_first && req->after_transaction == 0) /* from the newest: below any id */
        snprintf(g.after_t, sizeof g.after_t, "%" PRId64, INT64_MAX);
    if (!atomic_load(&app->migrated))
        return unavailable(call, GF_EUNAVAILABLE);

    struct gf_db_conn *c = NULL;
    enum gf_status st = gf_db_acquire(app->pool, &c);
    if (st != GF_OK)
        return unavailable(call, st);
    st = gf_db_transaction(c, getall_body, &g);
    gf_db_release(app->pool, c);
    if (st != GF_OK) {
        st = unavailable(call, st);
        goto out;
    }

    int nb = PQntuples(g.balances), nt = PQntuples(g.transactions);
    resp->balances = gf_grpc_alloc(call, sizeof(Gxp__Balance *) * (size_t)(nb ? nb : 1));
    resp->transactions = gf_grpc_alloc(call, sizeof(Gxp__Transaction *) * (size_t)(nt ? nt : 1));
    st = GF_ENOMEM;
    if (resp->balances == NULL || resp->transactions == NULL)
        goto out;
    for (int i = 0; i < nb; i++) {
        Gxp__Balance *b = gf_grpc_alloc(call, sizeof *b);
        if (b == NULL)
            goto out;
        gxp__balance__init(b);
        b->balance = (uint32_t)strtoul(PQgetvalue(g.balances, i, 1), NULL, 10);
        b->reserved = (uint32_t)strtoul(PQgetvalue(g.balances, i, 2), NULL, 10);
        b->updated_at = timestamp_new(call, PQgetvalue(g.balances, i, 3));
        if (b->updated_at == NULL)
            goto out;
        resp->balances[resp->n_balances++] = b;
    }
    for (int i = 0; i < nt; i++) {
        Gxp__Transaction *t = gf_grpc_alloc(call, sizeof *t);
        if (t == NULL)
            goto out;
        gxp__transaction__init(t);
        t->balance_id = (uint32_t)strtoul(PQgetvalue(g.transactions, i, 1), NULL, 10);
        t->amount = (uint32_t)strtoul(PQgetvalue(g.transactions, i, 2), NULL, 10);
        t->type = (Gxp__TransactionType)atoi(PQgetvalue(g.transactions, i, 3));
        t->status = (Gxp__TransactionStatus)atoi(PQgetvalue(g.transactions, i, 4));
        t->correlation_id = gf_grpc_strdup(call, PQgetvalue(g.transactions, i, 5));
        t->updated_at = timestamp_new(call, PQgetvalue(g.transactions, i, 6));
        if (t->correlation_id == NULL || t->updated_at == NULL)
            goto out;
        resp->transactions[resp->n_transactions++] = t;
    }
    if (nb == limit)
        resp->next_after_balance = (uint32_t)strtoul(PQgetvalue(g.balances, nb - 1, 0), NULL, 10);
    if (nt == limit)
        resp->next_after_transaction = strtoull(PQgetvalue(g.transactions, nt - 1, 0), NULL, 10);
    st = GF_OK;
out:
    PQclear(g.balances);
    PQclear(g.transactions);
    return st;
}

const struct gf_grpc_method ledger_methods[] = {
    {"/gxp.Gxp/TransactionPrepare", &gxp__transaction_prepare_request__descriptor,
     &gxp__transaction_prepare_response__descriptor, transaction_prepare},
    {"/gxp.Gxp/CreateUserBalance", &gxp__create_user_balance_request__descriptor,
     &gxp__create_user_balance_response__descriptor, create_user_balance},
    {"/gxp.Gxp/GetUserBalance", &gxp__get_user_balance_request__descriptor,
     &gxp__get_user_balance_response__descriptor, get_user_balance},
    {"/gxp.Gxp/GetAll", &gxp__get_all_request__descriptor, &gxp__get_all_response__descriptor,
     get_all},
    {"/gxp.Gxp/GetTransaction", &gxp__get_transaction_request__descriptor,
     &gxp__get_transaction_response__descriptor, get_transaction},
};
const int ledger_nmethods = sizeof ledger_methods / sizeof ledger_methods[0];
