/* The coordinator's calls to gxp (gxp.Gxp over gRPC): each attempt counted and timed, one
 * retry of an UNAVAILABLE channel, and the one mapping of gxp's answers to the client's. */
#include <string.h>

#include "coordinator.h"
#include "gf/clock.h"
#include "gf/console_feed.h"
#include "gf/log.h"

enum gf_status coord_gxp_failed(grpc_status_code code, const char *details, struct be_err *err)
{
    switch (code) {
    case GRPC_STATUS_DEADLINE_EXCEEDED:
        be_err_set(err, "gxp_timeout", "the GXP service did not answer in time");
        return GF_ETIMEOUT;
    case GRPC_STATUS_FAILED_PRECONDITION:
        be_err_set(err, "insufficient_gxp", "not enough GXP: %s", details);
        return GF_EPRECONDITION;
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

/* A gxp that is down answers UNAVAILABLE at once; the call is then tried once more, waiting
 * for the channel to become ready for a short while (it may be reconnecting after a gxp
 * restart). Still not ready: UNAVAILABLE (503). */
grpc_status_code coord_gxp_call(struct backend_app *app, const char *path,
                                const ProtobufCMessage *req, const ProtobufCMessageDescriptor *desc,
                                ProtobufCMessage **resp, const char *cid, char *details,
                                size_t detailsz)
{
    int deadline = (int)app->cfg->gxp_deadline_ms;
    int64_t t0 = gf_mono_us();
    grpc_status_code code =
        gf_grpc_client_call(app->gxp, path, req, desc, resp, deadline, cid, 0, details, detailsz);
    int64_t t1 = gf_mono_us();
    coord_count_gxp_call(path, code, t1 - t0);
    if (code != GRPC_STATUS_UNAVAILABLE)
        return code;
    code = gf_grpc_client_call(app->gxp, path, req, desc, resp, deadline < 500 ? deadline : 500,
                               cid, GF_GRPC_WAIT_FOR_READY, details, detailsz);
    coord_count_gxp_call(path, code, gf_mono_us() - t1);
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
    grpc_status_code code =
        coord_gxp_call(app, path, req, desc, &resp, cid, details, sizeof details);
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    return code == GRPC_STATUS_OK ? GF_OK : coord_gxp_failed(code, details, err);
}

static void timestamp_now(Google__Protobuf__Timestamp *ts)
{
    int64_t us = gf_wall_us();
    ts->seconds = us / 1000000;
    ts->nanos = (int32_t)(us % 1000000) * 1000;
}

enum gf_status coord_prepare(struct backend_app *app, int64_t user_id, int type, int64_t amount,
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
    enum gf_status st = gxp_command(app, "/gxp.Gxp/TransactionPrepare", &req.base,
                                    &gxp__transaction_prepare_response__descriptor, cid, err);
    if (st == GF_OK)
        gf_console_note_tx(cid, "", user_id, -1, amount, "prepared",
                           json_pack("{s:s,s:s}", "status", "PENDING", "type",
                                     type == GXP__TRANSACTION_TYPE__ADD ? "ADD" : "SUBTRACT"));
    return st;
}

enum gf_status coord_create_balance(struct backend_app *app, int64_t user_id, const char *cid,
                                    struct be_err *err)
{
    Gxp__CreateUserBalanceRequest req = GXP__CREATE_USER_BALANCE_REQUEST__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    timestamp_now(&ts);
    req.userid = (uint32_t)user_id;
    req.correlationid = (char *)cid;
    req.correlationtimestamp = &ts;
    return gxp_command(app, "/gxp.Gxp/CreateUserBalance", &req.base,
                       &gxp__create_user_balance_response__descriptor, cid, err);
}

grpc_status_code coord_get_transaction(struct backend_app *app, const char *tx_cid, const char *cid,
                                       ProtobufCMessage **resp, char *details, size_t detailsz)
{
    Gxp__GetTransactionRequest req = GXP__GET_TRANSACTION_REQUEST__INIT;
    req.correlationid = (char *)tx_cid;
    return coord_gxp_call(app, "/gxp.Gxp/GetTransaction", &req.base,
                          &gxp__get_transaction_response__descriptor, resp, cid, details, detailsz);
}

int coord_gxp_status(struct backend_app *app, const char *tx_cid, const char *cid)
{
    ProtobufCMessage *resp = NULL;
    char details[256];
    grpc_status_code code = coord_get_transaction(app, tx_cid, cid, &resp, details, sizeof details);
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
