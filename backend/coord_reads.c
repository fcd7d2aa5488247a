/* The reads that go to gxp: a user's balance, a page of gxp's balances and transactions
 * (GET /gxp/get-all), and the life of one transaction on both sides (GET /gxp/transaction,
 * `gf trace`). */
#include <stdlib.h>

#include "coordinator.h"
#include "gf/clock.h"

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
    grpc_status_code code = coord_gxp_call(app, "/gxp.Gxp/GetUserBalance", &req.base,
                                           &gxp__get_user_balance_response__descriptor, &resp, cid,
                                           details, sizeof details);
    if (code != GRPC_STATUS_OK)
        return coord_gxp_failed(code, details, err);
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

/* ---- the life of one transaction (gf trace) ------------------------------------------------ */

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
    grpc_status_code code = coord_get_transaction(app, tx_cid, cid, &resp, details, sizeof details);
    if (code == GRPC_STATUS_NOT_FOUND) {
        *out = json_null();
        return GF_OK;
    }
    if (code != GRPC_STATUS_OK)
        return coord_gxp_failed(code, details, err);
    Gxp__GetTransactionResponse *r = (Gxp__GetTransactionResponse *)resp;
    const Gxp__Transaction *t = r->transaction;
    if (t == NULL || (unsigned)t->status > 2 || (unsigned)t->type > 1) {
        protobuf_c_message_free_unpacked(resp, NULL);
        be_err_set(err, "internal", "gxp answered an unexpected transaction");
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
        " (extract(epoch FROM o.created_at) * 1000000)::bigint, c.kind = 'buy' AND c.amount = 0"
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
    bool free_buy = PQgetvalue(res, 0, 7)[0] == 't';
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
        coord_gxp_call(app, "/gxp.Gxp/GetAll", &req.base, &gxp__get_all_response__descriptor, &resp,
                       cid, details, sizeof details);
    if (code != GRPC_STATUS_OK)
        return coord_gxp_failed(code, details, err);
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
