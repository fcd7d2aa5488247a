/* What the coordinator's files share, and nothing else of the backend needs (its interface is
 * in backend.h): coordinator.c runs the protocol (SPEC §5), coord_gxp.c calls gxp,
 * coord_reads.c answers the reads that go to gxp (balances, get-all, gf trace), and
 * coord_metrics.c counts what happens. */
#ifndef BACKEND_COORDINATOR_H
#define BACKEND_COORDINATOR_H

#include <stdint.h>

#include "backend.h"
#include "gxp.pb-c.h"

/* The kinds of transaction the coordinator runs, as coord_transactions.kind names them. */
/* bid, refund and payout are the auction saga's gxp steps (auction.c, saga.c). */
enum tx_kind { KIND_BUY, KIND_ADD_GXP, KIND_BID, KIND_REFUND, KIND_PAYOUT, NKINDS };
extern const char *const coord_kind_names[NKINDS];

/* The decision that stands for a transaction; unknown when it could not be read (backend-db
 * down): gxp's resolver settles it later. */
enum outcome { OUTCOME_SUCCEEDED, OUTCOME_FAILED, OUTCOME_UNKNOWN, NOUTCOMES };
extern const char *const coord_outcome_names[NOUTCOMES];
/* A decision as the database stores it ('succeeded', 'failed'); anything else is unknown. The
 * one place where its text is read. */
enum outcome coord_outcome_of(const char *state);

/* Who inserted a decision row: a buy, add-gxp or bid, a saga step (refund, payout), or
 * ResolveTransaction (asked by gxp). */
enum decider {
    DECIDER_BUY,
    DECIDER_ADD_GXP,
    DECIDER_RESOLVE,
    DECIDER_BID,
    DECIDER_SAGA,
    NDECIDERS
};

enum resolve_answer {
    RESOLVE_SUCCEEDED,
    RESOLVE_FAILED,
    RESOLVE_UNAVAILABLE,
    RESOLVE_INVALID,
    NRESOLVE
};

/* ---- coordinator.c: the protocol's pieces that the auction saga shares ------------------- */
/* Claims cid for one transaction (coord_transactions) before anything happens under it.
 * GF_EEXISTS when cid names one already. item_id 0: none. */
enum gf_status coord_claim(struct backend_app *app, const char *cid, enum tx_kind kind,
                           int64_t user_id, int64_t item_id, int64_t amount,
                           struct be_err *err) GF_MUSTCHECK;
/* Prepares SUBTRACT of amount under cid, waiting out replication lag of the user's recent
 * adds; a refusal that stands is GF_ECONFLICT insufficient_gxp. */
enum gf_status coord_prepare_subtract(struct backend_app *app, int64_t user_id, int64_t amount,
                                      const char *cid, struct be_err *err) GF_MUSTCHECK;
/* Records 'failed' for cid unless a decision exists; answers the decision that stands. */
enum outcome coord_decide_failed(struct backend_app *app, const char *cid, enum decider who);

/* ---- coord_metrics.c: every series registered by coord_metrics_init (backend.h) or on the
 * first use of a gRPC code, so the hot path is one relaxed atomic add ----------------------- */
void coord_count_started(enum tx_kind k);
/* The prepare phase ended with st (after prepare_subtract's retries). */
void coord_count_prepared(enum tx_kind k, enum gf_status st);
void coord_count_outcome(enum tx_kind k, enum outcome o);
/* A decision row this process inserted (o: succeeded or failed). */
/* A decision written by us (counted by who wrote it) and noted for the console's feed. */
void coord_count_decided(enum decider who, enum outcome o, const char *cid);
void coord_count_resolve(enum resolve_answer a);
void coord_count_prepare_retry(void);
/* The stock take of a buy (its wait for the row lock included) took us. */
void coord_time_stock_take(int64_t us);
/* One attempt of a call to gxp: counted by method and code, timed. */
void coord_count_gxp_call(const char *path, grpc_status_code code, int64_t us);

/* ---- coord_gxp.c: calls to gxp ------------------------------------------------------------- */
/* One call with the request's correlation id and the configured deadline; a gxp that answers
 * UNAVAILABLE is tried once more, waiting a short while for the channel (every call made is
 * idempotent on gxp). */
grpc_status_code coord_gxp_call(struct backend_app *app, const char *path,
                                const ProtobufCMessage *req, const ProtobufCMessageDescriptor *desc,
                                ProtobufCMessage **resp, const char *cid, char *details,
                                size_t detailsz);
/* The client's answer for a failed call: DEADLINE_EXCEEDED → GF_ETIMEOUT gxp_timeout; a refused
 * prepare → FAILED_PRECONDITION: GF_EPRECONDITION insufficient_gxp, OUT_OF_RANGE: GF_ECONFLICT
 * gxp_balance_limit, NOT_FOUND: GF_ENOTFOUND; ALREADY_EXISTS → GF_ECONFLICT
 * correlation_id_reused; INVALID_ARGUMENT (a bug of ours) → GF_EINTERNAL; else GF_EUNAVAILABLE. */
enum gf_status coord_gxp_failed(grpc_status_code code, const char *details, struct be_err *err);
/* TransactionPrepare of type (Gxp__TransactionType) for amount under cid. */
enum gf_status coord_prepare(struct backend_app *app, int64_t user_id, int type, int64_t amount,
                             const char *cid, struct be_err *err);
/* CreateUserBalance of user_id. */
enum gf_status coord_create_balance(struct backend_app *app, int64_t user_id, const char *cid,
                                    struct be_err *err);
/* GetTransaction of tx_cid: the gRPC code, *resp (the caller frees it) when OK. */
grpc_status_code coord_get_transaction(struct backend_app *app, const char *tx_cid, const char *cid,
                                       ProtobufCMessage **resp, char *details, size_t detailsz);
/* The status of transaction tx_cid on gxp (a Gxp__TransactionStatus), -1 when gxp cannot tell
 * (down, or it never prepared it). */
int coord_gxp_status(struct backend_app *app, const char *tx_cid, const char *cid);

#endif
