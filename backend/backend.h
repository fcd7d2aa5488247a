/* The backend: the core "monolith" (users, items, marketplace, user items) behind an HTTP/JSON
 * API, and the coordinator of every cross-service transaction. Shared declarations of its
 * files, one file per concern (see ARCHITECTURE.md). */
#ifndef BACKEND_H
#define BACKEND_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "gf/auth.h"
#include "gf/config.h"
#include "gf/db.h"
#include "gf/grpc.h"
#include "gf/http.h"
#include "gf/status.h"

/* ---- config.c ------------------------------------------------------------------------ */
struct backend_config {
    char *http_addr;
    char *grpc_addr;
    char *db_url;
    char *db_password;
    int64_t db_pool_size;
    int64_t db_statement_timeout_ms;
    int64_t db_lock_timeout_ms;
    int64_t http_threads;
    int64_t http_workers;
    int64_t http_max_connections;
    int64_t http_max_inflight;
    int64_t http_idle_timeout_s;
    int64_t http_header_timeout_ms;
    int64_t http_body_timeout_ms;
    int64_t max_body;
    char *gxp_addr;
    char *tls_ca, *tls_cert, *tls_key; /* PEM files: mutual TLS on both gRPC sides */
    bool grpc_insecure;
    int64_t gxp_deadline_ms;
    char *deployment_name;
    int64_t list_cap;
    int64_t read_cache_bytes;
    int64_t lock_retries;
    int64_t idempotency_ttl_s;
    int64_t idempotency_takeover_ms;
    int64_t ryw_wait_ms;
    int64_t shutdown_grace_ms;
    char *amqp_url;
    char *amqp_password;
    char *amqp_ca;
    int64_t amqp_heartbeat_s;
    int64_t relay_batch;
    int64_t relay_workers;
    int64_t relay_poll_ms;
    int64_t relay_confirm_timeout_ms;
    int64_t outbox_retention_s;
    int64_t outbox_prune_interval_ms;
    int64_t retention_s;
    int64_t auction_retention_s;
    int64_t retention_interval_ms;
    int64_t retention_batch;
    int64_t retention_rounds;
    bool event_log;
    int log_level;
    char *auth_keys_dir;
    char *auth_signing_key;
    char *auth_issuer;
    char *auth_audience;
    int64_t auth_token_ttl_s;
    int64_t auth_leeway_s;
    int64_t login_max_failures;
    char *admin_name;
    char *admin_password;
    int64_t saga_workers;
    int64_t saga_poll_ms;
    int64_t saga_lease_ms;
    int64_t saga_batch;
    bool admit; /* admission control (admission.c) */
    int64_t admit_interval_ms;
    int64_t admit_lag_ms;
    int64_t admit_outbox_age_ms;
    int64_t admit_target_pct;
    int64_t admit_retry_after_s;
    int64_t write_concurrency;
    int64_t write_wait_ms;
};
extern const struct gf_config_def backend_config_defs[];
extern const size_t backend_config_ndefs;
/* The rules that span variables, after gf_config_load: BACKEND_TLS_CA/_CERT/_KEY all set, or
 * none and BACKEND_GRPC_INSECURE=true (gf_grpc_tls_config_check). GF_EINVAL means exit 78. */
enum gf_status backend_config_check(const struct backend_config *cfg) GF_MUSTCHECK;

/* ---- the process-wide state ----------------------------------------------------------- */
struct backend_app {
    const struct backend_config *cfg;
    struct gf_db_pool *pool;
    struct gf_grpc_client *gxp;
    struct relay *relay;
    struct saga *saga;
    struct console *console;     /* the operators' console (console.c); NULL until it runs */
    struct admission *admission; /* admission.c; NULL admits everything */
    struct write_gate *writes;   /* write_gate.c: buys and add-gxps; NULL lets all through */
    struct gf_auth_keys *keys;   /* verify every token; sign those of POST /auth/login */
    struct read_cache *reads;    /* read_cache.c: GET /user and GET /item; NULL reads the table */
    atomic_bool migrated;
    /* The schema is in place and the first operator made: /readyz and the routes answer. */
    atomic_bool serving;
};

/* ---- err.c: what a failed operation tells the client -------------------------------------
 * Every operation below returns a status; on failure it fills err with one human sentence
 * (no SQL, no internals) and a stable snake_case code (a static string, for the wire only:
 * control flow looks at the status, never at the code or the message). The HTTP layer maps
 * the status to the HTTP code with its one table. */
struct be_err {
    char message[256];
    const char *code;
};
void be_err_set(struct be_err *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The one mapping of a database status to the client's answer (err filled): GF_ETIMEOUT →
 * database_timeout (504); GF_EUNAVAILABLE, GF_ESHUTDOWN and a lost serialization race or
 * deadlock (GF_ECONFLICT: retryable) → GF_EUNAVAILABLE database_unavailable (503); GF_EUNKNOWN →
 * outcome_unknown (503); GF_ENOMEM → out_of_memory; anything unexpected → GF_EINTERNAL. The
 * answers about the data — GF_EEXISTS (a unique key), GF_ENOTFOUND (a reference), GF_EINVAL (a
 * CHECK) — keep their status with a generic err, which the caller replaces with what they mean
 * for its operation. Idempotent: mapping a mapped status changes nothing. */
enum gf_status be_db_failed(enum gf_status st, struct be_err *err);

/* ---- idempotency.c: Idempotency-Key (the protocol is described at the top of the file) --- */
/* The shape of a POST's 200 body: {"<id_key>":id,"correlationId"} (creates), the buy's
 * {"correlationId","buyItemResponse":{"userItemId","correlationId"}}, or {"correlationId"}. */
enum be_shape { BE_SHAPE_CREATED, BE_SHAPE_BUY, BE_SHAPE_CID, BE_SHAPE_AUCTION };
/* A request's Idempotency-Key and how its success answer looks. Operations that take one
 * (NULL or key NULL: none) store their answer in their own local transaction. */
struct be_idem {
    const char *key;   /* NULL: the request sent none */
    const char *owner; /* the correlation id of this attempt, which holds the claim */
    enum be_shape shape;
    const char *id_key; /* BE_SHAPE_CREATED: "userId", "itemId", ... */
    char ends_at[32];   /* BE_SHAPE_AUCTION: {"auctionId","correlationId","endsAt"} */
};
/* The 200 body of a POST (malloc'd; NULL without memory). */
char *be_answer_body(const struct be_idem *idem, int64_t id, const char *cid);
/* Ends the open local transaction on c: stores the success answer (id) under the key if this
 * attempt still owns it, then COMMITs; rolls back and answers GF_ECONFLICT
 * (idempotency_key_superseded) when a retry took the key over. On failure err is filled and
 * *unknown tells whether the COMMIT may have happened (connection lost: outcome_unknown). */
enum gf_status idem_commit(struct gf_db_conn *c, const struct be_idem *idem, int64_t id,
                           bool *unknown, struct be_err *err) GF_MUSTCHECK;
enum idem_verdict {
    IDEM_RUN,         /* the claim is ours: run the request */
    IDEM_REPLAY,      /* answered before: *replay holds the answer */
    IDEM_REUSED,      /* the key was used with another request: 422 */
    IDEM_IN_PROGRESS, /* another attempt holds it and may still be running: 409 */
};
struct idem_replay {
    int status;
    const char *content_type; /* static */
    char *body;               /* malloc'd, the caller's */
};
/* Claims key for the request (attempt cid). A database failure is returned mapped, err
 * filled (nothing done). */
enum gf_status idem_claim(struct backend_app *app, const struct gf_http_request *req,
                          const char *key, const char *cid, enum idem_verdict *verdict,
                          struct idem_replay *replay, struct be_err *err) GF_MUSTCHECK;
/* After the request ran: keeps a 4xx answer, releases the claim after a 5xx (unless an answer
 * committed meanwhile: it stays). Failures are logged only: the client has its answer. */
void idem_finish(struct backend_app *app, const struct be_idem *idem,
                 const struct gf_http_response *resp);

/* Paging of lists: rows with id > after, at most limit (the caller caps it). */
struct be_page {
    int64_t after;
    int limit;
    int64_t user_id; /* lists of user items: only this user's (0: everyone's) */
};

/* ---- store.c: the local data (shared helpers first) ------------------------------------
 * Every statement of the backend goes through these, and every failure comes out of them
 * mapped by be_db_failed with err filled: callers never map a database status again. */
/* Runs one statement on a pooled connection (GF_EUNAVAILABLE before the schema is in place). */
enum gf_status store_exec(struct backend_app *app, const char *name, const char *sql, int n,
                          const char *const *params, PGresult **res,
                          struct be_err *err) GF_MUSTCHECK;
/* store_exec for a change: a connection lost after the statement was sent is GF_EUNKNOWN (it
 * may have committed: answered 503 outcome_unknown), not GF_EUNAVAILABLE. */
enum gf_status store_write(struct backend_app *app, const char *name, const char *sql, int n,
                           const char *const *params, PGresult **res,
                           struct be_err *err) GF_MUSTCHECK;
/* A pooled connection (GF_EUNAVAILABLE before the schema is in place); *c is NULL on
 * failure. Release it with gf_db_release. */
enum gf_status store_acquire(struct backend_app *app, struct gf_db_conn **c,
                             struct be_err *err) GF_MUSTCHECK;
/* A pooled connection with a transaction begun on it, for work of several statements (end it
 * with idem_commit, or gf_db_rollback then gf_db_release). *c is NULL on failure. */
enum gf_status store_begin(struct backend_app *app, struct gf_db_conn **c,
                           struct be_err *err) GF_MUSTCHECK;
/* One statement on a connection of store_acquire or store_begin (inside a transaction nothing
 * commits before the caller's COMMIT, so a lost connection is GF_EUNAVAILABLE). */
enum gf_status store_run(struct gf_db_conn *c, const char *name, const char *sql, int n,
                         const char *const *params, PGresult **res,
                         struct be_err *err) GF_MUSTCHECK;
struct events_admin; /* events.c, below */
/* Writes the AdminActionEvent a of request cid into event_outbox on c, inside the caller's
 * transaction: the audit exists iff the change commits. Kick the relay after the COMMIT. */
enum gf_status store_audit(struct gf_db_conn *c, const struct events_admin *a, const char *cid,
                           struct be_err *err) GF_MUSTCHECK;

/* ---- store.c: the local data (users, items, marketplace, user items) --------------------
 * Lists answer JSON arrays in the original's shapes (ids as numbers, updatedAt as ISO-8601
 * UTC with milliseconds): users [{id,name,updatedAt}], items [{id,name,cost,updatedAt}],
 * marketplace [{id,itemId,count,updatedAt}], user items [{id,itemId,userId,count,updatedAt}].
 * The answer is the whole body {"<key>":[...]} as JSON text: *out (malloc'd, NUL-terminated,
 * *len bytes) is the caller's. */
/* Users and items also give *version: the table's version (sql/backend/013_read_versions.sql)
 * read in the same snapshot as the rows, -1 when the page has no row to carry it (the read
 * cache, read_cache.h, keeps an answer with the version it was read at). */
enum gf_status store_list_users(struct backend_app *app, const struct be_page *page,
                                const char *key, int64_t *version, char **out, size_t *len,
                                struct be_err *err) GF_MUSTCHECK;
enum gf_status store_list_items(struct backend_app *app, const struct be_page *page,
                                const char *key, int64_t *version, char **out, size_t *len,
                                struct be_err *err) GF_MUSTCHECK;
enum gf_status store_list_marketplace(struct backend_app *app, const struct be_page *page,
                                      const char *key, char **out, size_t *len,
                                      struct be_err *err) GF_MUSTCHECK;
enum gf_status store_list_user_items(struct backend_app *app, const struct be_page *page,
                                     const char *key, char **out, size_t *len,
                                     struct be_err *err) GF_MUSTCHECK;

/* The changes an operator makes (who, request cid) write their AdminActionEvent in their own
 * transaction (store_audit). GF_EINVAL-free: inputs are validated by the caller (api.c). */
enum gf_status store_create_item(struct backend_app *app, const struct gf_auth_claims *who,
                                 const char *name, int64_t cost, const char *cid,
                                 const struct be_idem *idem, int64_t *item_id,
                                 struct be_err *err) GF_MUSTCHECK;
/* One item {id,name,cost,updatedAt} and its version (the ETag). GF_ENOTFOUND. */
enum gf_status store_get_item(struct backend_app *app, int64_t id, json_t **out, int64_t *version,
                              struct be_err *err) GF_MUSTCHECK;
/* Changes name (NULL = keep) and/or cost (-1 = keep) if the item still has version
 * if_match: GF_EPRECONDITION when stale (412), GF_ENOTFOUND. Answers the new item and version. */
enum gf_status store_patch_item(struct backend_app *app, const struct gf_auth_claims *who,
                                int64_t id, int64_t if_match, const char *name, int64_t cost,
                                const char *cid, json_t **out, int64_t *version,
                                struct be_err *err) GF_MUSTCHECK;
/* GF_ENOTFOUND (unknown item), GF_EEXISTS (the item is already on the marketplace). */
enum gf_status store_create_marketplace_item(struct backend_app *app,
                                             const struct gf_auth_claims *who, int64_t item_id,
                                             int64_t count, const char *cid,
                                             const struct be_idem *idem, int64_t *id,
                                             struct be_err *err) GF_MUSTCHECK;
/* GF_ENOTFOUND (unknown user or item), GF_EEXISTS (the user already has that item). */
enum gf_status store_create_user_item(struct backend_app *app, const struct gf_auth_claims *who,
                                      int64_t user_id, int64_t item_id, int64_t count,
                                      const char *cid, const struct be_idem *idem, int64_t *id,
                                      struct be_err *err) GF_MUSTCHECK;
/* Registers the store's metrics (backend_lock_conflicts_total{op="item_patch"}): at start. */
void store_metrics_init(void);
/* GF_ENOTFOUND when the user does not exist. */
enum gf_status store_user_exists(struct backend_app *app, int64_t user_id,
                                 struct be_err *err) GF_MUSTCHECK;

/* ---- coordinator.c: the operations that span backend and gxp (SPEC §5) ---------------- */
/* Registers the coordinator's metrics (2PC phases and outcomes, ResolveTransaction answers,
 * optimistic-lock conflicts of buys, calls to gxp), so that they are shown from the start. */
void coord_metrics_init(void);
/* Creates the user and its gxp balance: both exist or neither is visible. GF_EEXISTS when
 * the name is taken. The operator who (its AdminActionEvent is in the same transaction). */
/* password_hash: NULL, or the argon2id string the user logs in with (auth_hash_password). */
enum gf_status coord_create_user(struct backend_app *app, const struct gf_auth_claims *who,
                                 const char *name, const char *password_hash, const char *cid,
                                 const struct be_idem *idem, int64_t *user_id,
                                 struct be_err *err) GF_MUSTCHECK;
/* Buys one unit of item_id for user_id: prepare SUBTRACT of the cost on gxp, then one local
 * transaction (stock − 1, user item + 1, decision 'succeeded', the BuyItemEvent and, when the
 * caller who is an admin, its AdminActionEvent item_bought_for_user). GF_ENOTFOUND (user, item or
 * marketplace row), GF_ECONFLICT with code out_of_stock / insufficient_gxp / lock_conflict /
 * transaction_aborted, GF_EUNAVAILABLE / GF_ETIMEOUT (gxp or database). */
enum gf_status coord_buy(struct backend_app *app, const struct gf_auth_claims *who, int64_t user_id,
                         int64_t item_id, const char *cid, const struct be_idem *idem,
                         int64_t *user_item_id, bool *replayed, struct be_err *err) GF_MUSTCHECK;
/* Adds amount GXP to the user: prepare ADD, then the decision 'succeeded' with the
 * AdminActionEvent gxp_minted of the operator who, in one statement or transaction. */
enum gf_status coord_add_gxp(struct backend_app *app, const struct gf_auth_claims *who,
                             int64_t user_id, int64_t amount, const char *cid,
                             const struct be_idem *idem, bool *replayed,
                             struct be_err *err) GF_MUSTCHECK;
/* A correlation id names one transaction (X-Correlation-Id resent by a client): when buy or
 * add-gxp find cid claimed already, the outcome of THAT transaction is answered if it is the
 * same request (*replayed = true on success; 409 transaction_failed when it failed; 409
 * request_in_progress while it may still run), 409 correlation_id_reused if it is another. */
/* {balance, reserved, updatedAt} of the user, from gxp. GF_ENOTFOUND for an unknown user. */
enum gf_status coord_user_gxp(struct backend_app *app, int64_t user_id, const char *cid,
                              json_t **out, struct be_err *err) GF_MUSTCHECK;
/* {balances:[{balance,reserved,updatedAt}], transactions:[{balanceId,amount,type,status,
 * correlationId,updatedAt}]} from gxp's GetAll (type and status as numbers). */
/* A page of GET /gxp/get-all: limit rows of each kind (0 = gxp's cap), transactions after
 * after_tx (below it when newest_first), balances after after_balance. The answer adds the
 * cursors of the next page, nextAfter (transactions) and nextAfterBalance, null when there is
 * nothing more: always when paged, else only when there is more (never a silent cut). */
struct be_gxp_page {
    int64_t limit, after_tx, after_balance;
    bool newest_first;
    bool paged; /* a paging parameter was given: the cursors are always answered (otherwise
                   only when the answer is cut, so the original's shape stays exact) */
};
enum gf_status coord_gxp_get_all(struct backend_app *app, const struct be_gxp_page *page,
                                 const char *cid, json_t **out, struct be_err *err) GF_MUSTCHECK;
/* The life of one transaction for GET /gxp/transaction (gf trace): {correlationId, kind,
 * userId, itemId|null, amount, createdAt, decision: {state, createdAt}|null, gxp: {status,
 * type, amount, createdAt, updatedAt, finalizedAt|null}|null}. GF_ENOTFOUND when the backend
 * never started a transaction with that id. */
enum gf_status coord_transaction(struct backend_app *app, const char *tx_cid, const char *cid,
                                 json_t **out, struct be_err *err) GF_MUSTCHECK;
/* The gRPC service backend.Backend/ResolveTransaction. */
extern const struct gf_grpc_method coord_methods[];
extern const int coord_nmethods;
grpc_status_code coord_grpc_code(enum gf_status st);

/* ---- events.c: the encoding of the events the backend emits ---------------------------- */
/* The largest protobuf encoding of a BuyItemEvent (4 varints + a 36-byte id, with room). */
#define EVENTS_PAYLOAD_MAX 96
/* Encodes BuyItemEvent{userId, itemId, userItemId, correlationId} as a bytea literal in hex
 * ("\\x..."), the text form an INSERT into event_outbox takes. GF_ERANGE for ids that do not
 * fit the proto's uint32. */
enum gf_status events_buy_payload(int64_t user_id, int64_t item_id, int64_t user_item_id,
                                  const char *cid, char *out, size_t n) GF_MUSTCHECK;

/* The audit of an operator's change: AdminActionEvent (proto/backend.proto says which fields
 * each action sets; 0 = not set). who is the caller (its token's sub, name and role). */
struct events_admin {
    const char *action; /* EVENTS_ACTION_* */
    const struct gf_auth_claims *who;
    int64_t user_id, target_id, item_id, amount, count, cost, version;
    const char *fields[2]; /* item_changed: "name", "cost" */
    int nfields;
};
#define EVENTS_ACTION_USER_CREATED "user_created"
#define EVENTS_ACTION_ITEM_CREATED "item_created"
#define EVENTS_ACTION_ITEM_CHANGED "item_changed"
#define EVENTS_ACTION_MARKETPLACE_ITEM_CREATED "marketplace_item_created"
#define EVENTS_ACTION_USER_ITEM_CREATED "user_item_created"
#define EVENTS_ACTION_GXP_MINTED "gxp_minted"
#define EVENTS_ACTION_BOUGHT_FOR_USER "item_bought_for_user"
#define EVENTS_ACTION_PASSWORD_SET "password_set"
/* Its largest encoding: a 255-byte name, two ids, the action and ten varints, with room. */
#define EVENTS_ADMIN_PAYLOAD_MAX 512
/* Encodes a (with a fresh eventId and correlationId cid) as a bytea literal in hex, as
 * events_buy_payload. GF_ERANGE for numbers past the proto's, GF_ETOOBIG when out is short. */
enum gf_status events_admin_payload(const struct events_admin *a, const char *cid, char *out,
                                    size_t n) GF_MUSTCHECK;
/* Room for the text of an AdminActionEvent's payload. */
#define EVENTS_ADMIN_HEX_MAX (2 * EVENTS_ADMIN_PAYLOAD_MAX + 3)

/* The auction saga's events (proto/backend.proto). Outbid: user_id the outbid bidder, bid_id
 * and amount its bid, new_bid_id and new_amount the bid that outbid it. Settled: user_id the
 * seller, winner_id, bid_id and amount the winning bid (0: none), user_item_id where the unit
 * went. Cancelled: user_id the seller, user_item_id where the unit went back. */
enum events_auction_kind {
    EVENTS_AUCTION_OUTBID,
    EVENTS_AUCTION_SETTLED,
    EVENTS_AUCTION_CANCELLED
};
struct events_auction {
    enum events_auction_kind kind;
    int64_t auction_id, user_id, item_id, bid_id, amount, new_bid_id, new_amount, winner_id,
        user_item_id;
    const char *cid; /* the event's correlation id, which names it */
};
#define EVENTS_AUCTION_PAYLOAD_MAX 128
#define EVENTS_AUCTION_HEX_MAX (2 * EVENTS_AUCTION_PAYLOAD_MAX + 3)
/* The event's name (its routing key). */
const char *events_auction_name(enum events_auction_kind k);
/* Encodes a as a bytea literal in hex, as events_buy_payload. GF_ERANGE for numbers past the
 * proto's. */
enum gf_status events_auction_payload(const struct events_auction *a, char *out,
                                      size_t n) GF_MUSTCHECK;
#define EVENTS_ACTION_AUCTION_CREATED_FOR_USER "auction_created_for_user"
#define EVENTS_ACTION_AUCTION_BID_FOR_USER "auction_bid_for_user"
#define EVENTS_ACTION_AUCTION_CANCELLED_FOR_USER "auction_cancelled_for_user"

/* ---- auction.c: auctions, a durable saga (ARCHITECTURE.md §3d) --------------------------
 * Requests run the saga's first steps in their own transactions; saga.c runs the rest. A user
 * acts for itself (the caller checks who may act for user_id); an admin acting for another
 * user is audited (AdminActionEvent auction_*_for_user). */
/* Registers the auctions' metrics (their optimistic-lock conflicts): at start. */
void auction_metrics_init(void);
#define AUCTION_DURATION_MIN_S 5
#define AUCTION_DURATION_MAX_S 604800
/* One unit of user item user_item_id (of user_id) into escrow, the auction open until now +
 * duration_s, its settlement due then (idem->ends_at: ISO-8601). GF_ENOTFOUND (no such user item
 * of that user), GF_ECONFLICT no_units / lock_conflict. A correlation id resent (X-Correlation-Id)
 * answers the auction it made (*replayed) when the request is the same, else 409
 * correlation_id_reused; bids and cancellations likewise. */
enum gf_status auction_create(struct backend_app *app, const struct gf_auth_claims *who,
                              int64_t user_id, int64_t user_item_id, int64_t min_bid,
                              int64_t duration_s, const char *cid, struct be_idem *idem,
                              int64_t *auction_id, bool *replayed, struct be_err *err) GF_MUSTCHECK;
/* A bid: the bidder's GXP taken through the two-phase commit with gxp (SUBTRACT), the bid
 * leading, a refund of the bid it outbid due at once. GF_ENOTFOUND auction_not_found /
 * user_not_found, GF_ECONFLICT auction_closed / bid_too_low / seller_cannot_bid /
 * insufficient_gxp / lock_conflict. */
enum gf_status auction_bid(struct backend_app *app, const struct gf_auth_claims *who,
                           int64_t auction_id, int64_t user_id, int64_t amount, const char *cid,
                           const struct be_idem *idem, int64_t *bid_id, bool *replayed,
                           struct be_err *err) GF_MUSTCHECK;
/* The seller's cancellation before any bid and before the end: the unit goes back.
 * GF_EFORBIDDEN not_seller, GF_ECONFLICT auction_closed / auction_has_bids. */
enum gf_status auction_cancel(struct backend_app *app, const struct gf_auth_claims *who,
                              int64_t auction_id, int64_t user_id, const char *cid,
                              const struct be_idem *idem, bool *replayed,
                              struct be_err *err) GF_MUSTCHECK;
/* {"auctions":[...]} of status (NULL: any), keyset-paged by id. */
enum gf_status auction_list(struct backend_app *app, const char *status, const struct be_page *page,
                            char **out, size_t *len, struct be_err *err) GF_MUSTCHECK;
/* One auction with its bids and its saga's steps. GF_ENOTFOUND. */
enum gf_status auction_get(struct backend_app *app, int64_t id, char **out, size_t *len,
                           struct be_err *err) GF_MUSTCHECK;

/* Writes the saga's event e into event_outbox on c, inside the caller's transaction (the
 * event exists iff the change it announces commits). Kick the relay after the COMMIT. */
enum gf_status auction_put_event(struct gf_db_conn *c, const struct events_auction *e,
                                 struct be_err *err) GF_MUSTCHECK;

/* ---- saga.c: the saga's due steps, run by any replica ---------------------------------- */
struct saga;
/* Starts the step runners (BACKEND_SAGA_WORKERS threads, their own database connections): each
 * claims due steps under a lease and runs them. NULL only on a resource failure. */
struct saga *saga_start(struct backend_app *app);
/* A step is due now (a bid wrote a refund): run it without waiting for the poll. */
void saga_kick(struct saga *s);
void saga_stop(struct saga *s);

/* ---- relay.c: event_outbox → RabbitMQ (a few threads; safe with several replicas) ----- */
struct relay;
/* Starts the relay's threads: each connects to the broker (retrying with back-off), publishes
 * pending outbox rows in batches with publisher confirms and marks them published after the
 * confirm, and prunes published rows past the retention. NULL only on a resource failure. */
struct relay *relay_start(struct backend_app *app);
/* Wakes the relay: a buy just committed an event. Cheap; NULL is a no-op. */
void relay_kick(struct relay *r);
/* Stops the thread (the batch in hand is finished) and frees. NULL is a no-op. */
void relay_stop(struct relay *r);

/* ---- retention.c: decided transactions and finished auctions deleted past their retention,
 * in batches, by one replica at a time (safety conditions at the top of the file) ---------- */
struct gf_pruner;
/* Starts the passes (every BACKEND_RETENTION_INTERVAL_MS, once the schema is in place); NULL
 * when it cannot. Stop with gf_pruner_stop (gf/prune.h). */
struct gf_pruner *retention_start(struct backend_app *app);
/* True while the relay has a working broker connection (for /readyz and /metrics). */
bool relay_connected(const struct relay *r);

/* ---- api.c: the HTTP API (routing, validation, errors, idempotency) -------------------- */
struct gf_http_server *api_start(struct backend_app *app);

/* ---- auth.c: logins, passwords, the first operator ------------------------------------- */

/* A new password by the policy (weak_password), hashed (argon2id). */
enum gf_status auth_hash_password(const char *pw, char out[GF_AUTH_HASH_SIZE],
                                  struct be_err *err) GF_MUSTCHECK;
/* POST /auth/login: a signed token (*token malloc'd) valid until *expires_at (epoch s). 401
 * invalid_credentials, or 429 login_throttled with *retry_after_s. */
enum gf_status auth_login(struct backend_app *app, const char *name, const char *password,
                          char **token, int64_t *expires_at, int64_t *retry_after_s,
                          struct be_err *err) GF_MUSTCHECK;
/* POST /auth/password: the caller's own password (current required), or, by an admin, user
 * user_id's (0: the caller's own), audited (AdminActionEvent password_set of request cid). */
enum gf_status auth_change_password(struct backend_app *app, const struct gf_auth_claims *who,
                                    const char *current, int64_t user_id, const char *new_pw,
                                    const char *cid, struct be_err *err) GF_MUSTCHECK;
/* Creates the operator BACKEND_ADMIN_NAME with BACKEND_ADMIN_PASSWORD when it does not exist
 * (after the migrations; a no-op when the name is unset). */
enum gf_status auth_bootstrap_admin(struct backend_app *app) GF_MUSTCHECK;

/* ---- console.c: the operators' console, server side (issue 17) ------------------------- */
struct console;
struct gf_amqp_options;
struct gf_http_response;
/* Consumes the console feed (gf.console) and serves its streams; NULL (logged) on failure. */
struct console *console_start(struct backend_app *app, const struct gf_amqp_options *amqp);
/* Ends the open streams and refuses new ones: before the HTTP server stops. */
void console_close(struct console *c);
void console_stop(struct console *c); /* NULL is a no-op */
/* Answers GET /console/api/stream: a snapshot, then every note (server-sent events). */
bool console_stream(struct console *c, struct gf_http_response *resp, const char *cid);

#endif
