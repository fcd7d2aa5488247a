/* The backend's HTTP API (SPEC §2) on lib's front end (gf/http_api.h: routing, the error model,
 * per-route metrics): its route table, strict input validation (validate.c), If-Match on items,
 * Idempotency-Key for POSTs, and the service endpoints /healthz, /readyz and /metrics. */
#include <assert.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admission.h"
#include "backend.h"
#include "gf/clock.h"
#include "gf/http.h"
#include "gf/http_api.h"
#include "gf/uuid.h"
#include "gxp.pb-c.h"
#include "read_cache.h"
#include "validate.h"
#include "write_gate.h"

#define JSON_TYPE "application/json"
#define TEXT_TYPE "text/plain; charset=utf-8"

#define READYZ_GXP_DEADLINE_MS 500

/* ---- one request ---------------------------------------------------------------------- */

/* What the backend keeps of a request beyond lib's context, which comes first: the routes run
 * with &c->http and find the rest with ctx_of. */
struct ctx {
    struct gf_http_ctx http;
    struct backend_app *app;
    int64_t if_match;                             /* the version If-Match names (PATCH) */
    struct be_idem idem;                          /* the Idempotency-Key (idem.key NULL: none) */
    struct validate_value v[VALIDATE_FIELDS_MAX]; /* the body's fields, in the route's order */
    int64_t list_user; /* a list of user items cut to this user (0: everyone's) */
};

static struct ctx *ctx_of(struct gf_http_ctx *h)
{
    return GF_HTTP_CTX_OF(struct ctx, http, h);
}

/* ---- answers -------------------------------------------------------------------------- */

static void reply_json(struct ctx *c, int status, json_t *obj)
{
    gf_http_api_reply_json(&c->http, status, obj);
}

static void reply_error(struct ctx *c, int status, const char *code, const char *message)
{
    gf_http_api_reply_error(&c->http, status, code, message);
}

/* The answer to a failed operation: its status through the one table, its be_err. */
static void reply_status(struct ctx *c, enum gf_status st, const struct be_err *err)
{
    gf_http_api_reply_status(&c->http, st, err != NULL ? err->code : NULL,
                             err != NULL ? err->message : NULL);
}

/* The 200 of a POST in its route's shape (c->idem.shape, set by the run_ function), the very
 * bytes idem_commit stored for a retry. */
static void reply_success(struct ctx *c, int64_t id, bool replayed)
{
    char *body = be_answer_body(&c->idem, id, c->http.cid);
    if (body == NULL) {
        reply_json(c, 500, NULL);
        return;
    }
    free(c->http.resp->body);
    c->http.resp->status = 200;
    c->http.resp->content_type = JSON_TYPE;
    c->http.resp->body = body;
    c->http.resp->body_len = strlen(body);
    if (replayed)
        gf_http_add_header(c->http.resp, "Idempotent-Replayed", "true");
}

/* {"<key>": id, "correlationId": cid}: the answer of every create. */
static void reply_created(struct ctx *c, enum gf_status st, const struct be_err *err,
                          const char *key, int64_t id)
{
    if (st != GF_OK) {
        reply_status(c, st, err);
        return;
    }
    c->idem.shape = BE_SHAPE_CREATED;
    c->idem.id_key = key;
    reply_success(c, id, false);
}

/* An item and its ETag: the answer of GET and PATCH /item/:id. */
static void reply_item(struct ctx *c, enum gf_status st, const struct be_err *err, json_t *item,
                       int64_t version)
{
    if (st != GF_OK) {
        json_decref(item);
        reply_status(c, st, err);
        return;
    }
    char etag[32];
    snprintf(etag, sizeof etag, "\"%lld\"", (long long)version);
    gf_http_add_header(c->http.resp, "ETag", etag);
    reply_json(c, 200, item);
}

/* ---- the operations --------------------------------------------------------------------- */

typedef enum gf_status (*list_fn)(struct backend_app *app, const struct be_page *page,
                                  const char *key, char **out, size_t *len, struct be_err *err);

/* {"<key>": [...]}, paged by ?limit=&after=; unpaged requests get the first list_cap rows.
 * The store writes the whole body (no JSON objects in between). */
static void run_list(struct ctx *c, const char *key, list_fn fn)
{
    struct be_err err = {0};
    struct be_page page = {0};
    char *body = NULL;
    size_t len = 0;
    enum gf_status st =
        validate_page(gf_http_query(c->http.req, "limit"), gf_http_query(c->http.req, "after"),
                      c->app->cfg->list_cap, &page, &err);
    page.user_id = c->list_user;
    if (st == GF_OK)
        st = fn(c->app, &page, key, &body, &len, &err);
    if (st != GF_OK) {
        reply_status(c, st, &err);
        return;
    }
    free(c->http.resp->body);
    c->http.resp->status = 200;
    c->http.resp->content_type = "application/json";
    c->http.resp->body = body;
    c->http.resp->body_len = len;
}

static enum gf_status list_users(struct backend_app *app, const struct be_page *page,
                                 const char *key, char **out, size_t *len, struct be_err *err)
{
    return read_cache_list(app, READ_USERS, page, key, out, len, err);
}

static enum gf_status list_items(struct backend_app *app, const struct be_page *page,
                                 const char *key, char **out, size_t *len, struct be_err *err)
{
    return read_cache_list(app, READ_ITEMS, page, key, out, len, err);
}

static void run_list_users(struct gf_http_ctx *h)
{
    run_list(ctx_of(h), "users", list_users);
}

static void run_list_items(struct gf_http_ctx *h)
{
    run_list(ctx_of(h), "items", list_items);
}

static void run_list_marketplace(struct gf_http_ctx *h)
{
    run_list(ctx_of(h), "marketplaceItems", store_list_marketplace);
}

/* An admin sees every user's items (or one user's: ?userId=), a user its own only. */
static void run_list_user_items(struct gf_http_ctx *h)
{
    struct ctx *c = ctx_of(h);
    const char *q = gf_http_query(c->http.req, "userId");
    if (q != NULL) {
        struct be_err err = {0};
        if (validate_query_id(q, "userId", &c->list_user, &err) != GF_OK) {
            reply_status(c, GF_EINVAL, &err);
            return;
        }
        if (!gf_http_api_may_act_for(h, c->list_user))
            return;
    } else if (h->who.role != GF_ROLE_ADMIN) {
        c->list_user = h->who.user_id;
    }
    run_list(c, "userItems", store_list_user_items);
}

static void run_create_user(struct gf_http_ctx *h)
{
    struct ctx *c = ctx_of(h);
    struct be_err err = {0};
    int64_t id = 0;
    char hash[GF_AUTH_HASH_SIZE];
    c->idem.shape = BE_SHAPE_CREATED;
    c->idem.id_key = "userId";
    enum gf_status st = GF_OK;
    if (c->v[1].present) /* before the transaction: a hash takes ~50 ms */
        st = auth_hash_password(c->v[1].str, hash, &err);
    if (st == GF_OK)
        st = coord_create_user(c->app, &h->who, c->v[0].str, c->v[1].present ? hash : NULL,
                               c->http.cid, &c->idem, &id, &err);
    reply_created(c, st, &err, "userId", id);
}

static void run_create_item(struct gf_http_ctx *h)
{
    struct ctx *c = ctx_of(h);
    struct be_err err = {0};
    int64_t id = 0;
    c->idem.shape = BE_SHAPE_CREATED;
    c->idem.id_key = "itemId";
    enum gf_status st = store_create_item(c->app, &h->who, c->v[0].str, c->v[1].num, c->http.cid,
                                          &c->idem, &id, &err);
    reply_created(c, st, &err, "itemId", id);
}

static void run_create_marketplace_item(struct gf_http_ctx *h)
{
    struct ctx *c = ctx_of(h);
    struct be_err err = {0};
    int64_t id = 0;
    c->idem.shape = BE_SHAPE_CREATED;
    c->idem.id_key = "marketplaceItemId";
    enum gf_status st = store_create_marketplace_item(c->app, &h->who, c->v[0].num, c->v[1].num,
                                                      c->http.cid, &c->idem, &id, &err);
    reply_created(c, st, &err, "marketplaceItemId", id);
}

static void run_create_user_item(struct gf_http_ctx *h)
{
    struct ctx *c = ctx_of(h);
    struct be_err err = {0};
    int64_t id = 0;
    c->idem.shape = BE_SHAPE_CREATED;
    c->idem.id_key = "userItemId";
    enum gf_status st = store_create_user_item(c->app, &h->who, c->v[0].num, c->v[1].num,
                                               c->v[2].num, c->http.cid, &c->idem, &id, &err);
    reply_created(c, st, &err, "userItemId", id);
}

static void run_buy(struct gf_http_ctx *h)
{
    struct ctx *c = ctx_of(h);
    struct be_err err = {0};
    int64_t id = 0;
    bool replayed = false;
    c->idem.shape = BE_SHAPE_BUY;
    if (!gf_http_api_may_act_for(h, c->v[0].num))
        return;
    enum gf_status st = coord_buy(c->app, &h->who, c->v[0].num, c->v[1].num, c->http.cid, &c->idem,
                                  &id, &replayed, &err);
    if (st != GF_OK) {
        reply_status(c, st, &err);
        return;
    }
    reply_success(c, id, replayed);
}

static void run_add_gxp(struct gf_http_ctx *h)
{
    struct ctx *c = ctx_of(h);
    struct be_err err = {0};
    bool replayed = false;
    c->idem.shape = BE_SHAPE_CID;
    enum gf_status st = coord_add_gxp(c->app, &h->who, c->v[0].num, c->v[1].num, c->http.cid,
                                      &c->idem, &replayed, &err);
    if (st != GF_OK) {
        reply_status(c, st, &err);
        return;
    }
    reply_success(c, 0, replayed);
}

/* ---- auctions (auction.c) -------------------------------------------------------------- */

static void run_auction_create(struct gf_http_ctx *h)
{
    struct ctx *c = ctx_of(h);
    struct be_err err = {0};
    int64_t id = 0;
    bool replayed = false;
    c->idem.shape = BE_SHAPE_AUCTION;
    if (!gf_http_api_may_act_for(h, c->v[0].num))
        return;
    if (c->v[3].num < AUCTION_DURATION_MIN_S || c->v[3].num > AUCTION_DURATION_MAX_S) {
        reply_error(c, 400, "invalid_field",
                    "\"durationSeconds\" must be an integer from 5 to 604800 (7 days)");
        return;
    }
    enum gf_status st = auction_create(c->app, &h->who, c->v[0].num, c->v[1].num, c->v[2].num,
                                       c->v[3].num, c->http.cid, &c->idem, &id, &replayed, &err);
    if (st != GF_OK) {
        reply_status(c, st, &err);
        return;
    }
    reply_success(c, id, replayed);
}

static void run_auction_bid(struct gf_http_ctx *h)
{
    struct ctx *c = ctx_of(h);
    struct be_err err = {0};
    int64_t id = 0;
    bool replayed = false;
    c->idem.shape = BE_SHAPE_CREATED;
    c->idem.id_key = "bidId";
    if (!gf_http_api_may_act_for(h, c->v[1].num))
        return;
    enum gf_status st = auction_bid(c->app, &h->who, c->v[0].num, c->v[1].num, c->v[2].num,
                                    c->http.cid, &c->idem, &id, &replayed, &err);
    if (st != GF_OK) {
        reply_status(c, st, &err);
        return;
    }
    reply_success(c, id, replayed);
}

static void run_auction_cancel(struct gf_http_ctx *h)
{
    struct ctx *c = ctx_of(h);
    struct be_err err = {0};
    c->idem.shape = BE_SHAPE_CREATED;
    c->idem.id_key = "auctionId";
    if (!gf_http_api_may_act_for(h, c->v[1].num))
        return;
    bool replayed = false;
    enum gf_status st = auction_cancel(c->app, &h->who, c->v[0].num, c->v[1].num, c->http.cid,
                                       &c->idem, &replayed, &err);
    if (st != GF_OK) {
        reply_status(c, st, &err);
        return;
    }
    reply_success(c, c->v[0].num, replayed);
}

/* The answer body the store wrote (JSON text), or its error. */
static void reply_text(struct ctx *c, enum gf_status st, const struct be_err *err, char *body,
                       size_t len)
{
    if (st != GF_OK) {
        reply_status(c, st, err);
        return;
    }
    free(c->http.resp->body);
    c->http.resp->status = 200;
    c->http.resp->content_type = JSON_TYPE;
    c->http.resp->body = body;
    c->http.resp->body_len = len;
}

/* GET /auction?status=open|settled|cancelled&limit=&after= */
static void run_auction_list(struct gf_http_ctx *h)
{
    struct ctx *c = ctx_of(h);
    struct be_err err = {0};
    struct be_page page = {0};
    char *body = NULL;
    size_t len = 0;
    const char *status = gf_http_query(c->http.req, "status");
    if (status != NULL && strcmp(status, "open") != 0 && strcmp(status, "settled") != 0 &&
        strcmp(status, "cancelled") != 0) {
        reply_error(c, 400, "invalid_field", "status must be open, settled or cancelled");
        return;
    }
    enum gf_status st =
        validate_page(gf_http_query(c->http.req, "limit"), gf_http_query(c->http.req, "after"),
                      c->app->cfg->list_cap, &page, &err);
    if (st == GF_OK)
        st = auction_list(c->app, status, &page, &body, &len, &err);
    reply_text(c, st, &err, body, len);
}

static void run_auction_get(struct gf_http_ctx *h)
{
    struct ctx *c = ctx_of(h);
    struct be_err err = {0};
    char *body = NULL;
    size_t len = 0;
    enum gf_status st = auction_get(c->app, c->http.path_id, &body, &len, &err);
    reply_text(c, st, &err, body, len);
}

static void run_user_gxp(struct gf_http_ctx *h)
{
    struct ctx *c = ctx_of(h);
    struct be_err err = {0};
    int64_t user_id;
    json_t *out = NULL;
    enum gf_status st =
        validate_query_id(gf_http_query(c->http.req, "userId"), "userId", &user_id, &err);
    if (st == GF_OK && !gf_http_api_may_act_for(h, user_id))
        return;
    if (st == GF_OK)
        st = coord_user_gxp(c->app, user_id, c->http.cid, &out, &err);
    if (st != GF_OK) {
        reply_status(c, st, &err);
        return;
    }
    if (out != NULL && json_object_set_new(out, "correlationId", json_string(c->http.cid)) != 0) {
        json_decref(out);
        out = NULL;
    }
    reply_json(c, 200, out);
}

static void run_gxp_transaction(struct gf_http_ctx *h)
{
    struct ctx *c = ctx_of(h);
    struct be_err err = {0};
    char tx_cid[GF_UUID_STRLEN + 1];
    json_t *out = NULL;
    enum gf_status st = validate_query_uuid(gf_http_query(c->http.req, "correlationId"),
                                            "correlationId", tx_cid, &err);
    if (st == GF_OK)
        st = coord_transaction(c->app, tx_cid, c->http.cid, &out, &err);
    if (st != GF_OK) {
        reply_status(c, st, &err);
        return;
    }
    reply_json(c, 200, out);
}

/* The console's live stream (console.c): server-sent events, for operators only. */
static void run_console_stream(struct gf_http_ctx *h)
{
    struct ctx *c = ctx_of(h);
    if (c->app->console == NULL || !console_stream(c->app->console, h->resp, c->http.cid)) {
        struct be_err err = {0};
        be_err_set(&err, "unavailable", "the console's stream cannot be opened now");
        reply_status(c, GF_EUNAVAILABLE, &err);
    }
}

static void run_gxp_get_all(struct gf_http_ctx *h)
{
    struct ctx *c = ctx_of(h);
    struct be_err err = {0};
    json_t *out = NULL;
    struct be_gxp_page page = {0};
    enum gf_status st =
        validate_gxp_page(gf_http_query(c->http.req, "limit"), gf_http_query(c->http.req, "after"),
                          gf_http_query(c->http.req, "afterBalance"),
                          gf_http_query(c->http.req, "order"), &page, &err);
    if (st == GF_OK)
        st = coord_gxp_get_all(c->app, &page, c->http.cid, &out, &err);
    if (st != GF_OK) {
        reply_status(c, st, &err);
        return;
    }
    reply_json(c, 200, out);
}

static void run_get_item(struct gf_http_ctx *h)
{
    struct ctx *c = ctx_of(h);
    struct be_err err = {0};
    json_t *item = NULL;
    int64_t version = 0;
    enum gf_status st = store_get_item(c->app, c->http.path_id, &item, &version, &err);
    reply_item(c, st, &err, item, version);
}

/* If-Match was read by check_preconditions; the fields are name (v[0]) and cost (v[1]). */
static void run_patch_item(struct gf_http_ctx *h)
{
    struct ctx *c = ctx_of(h);
    struct be_err err = {0};
    int64_t version = 0;
    json_t *item = NULL;
    if (!c->v[0].present && !c->v[1].present) {
        reply_error(c, 400, "missing_field",
                    "the body must set at least one of \"name\" and \"cost\"");
        return;
    }
    enum gf_status st = store_patch_item(
        c->app, &h->who, c->http.path_id, c->if_match, c->v[0].present ? c->v[0].str : NULL,
        c->v[1].present ? c->v[1].num : -1, c->http.cid, &item, &version, &err);
    reply_item(c, st, &err, item, version);
}

/* POST /auth/login {name, password} → {token, expiresAt, role}. */
static void run_login(struct gf_http_ctx *h)
{
    struct ctx *c = ctx_of(h);
    struct be_err err = {0};
    char *token = NULL;
    int64_t expires_at = 0, retry_after = 0;
    enum gf_status st =
        auth_login(c->app, c->v[0].str, c->v[1].str, &token, &expires_at, &retry_after, &err);
    if (st != GF_OK) {
        if (retry_after > 0) {
            char ra[24];
            snprintf(ra, sizeof ra, "%" PRId64, retry_after);
            gf_http_add_header(c->http.resp, "Retry-After", ra);
        }
        reply_status(c, st, &err);
        return;
    }
    char when[25];
    gf_iso8601_ms(expires_at * 1000000, when);
    gf_http_add_header(c->http.resp, "Cache-Control", "no-store");
    reply_json(c, 200,
               json_pack("{s:s,s:s,s:s,s:s}", "token", token, "expiresAt", when, "tokenType",
                         "Bearer", "correlationId", c->http.cid));
    free(token);
}

/* POST /auth/password {password, newPassword} (one's own), or an admin's {userId, newPassword}. */
static void run_password(struct gf_http_ctx *h)
{
    struct ctx *c = ctx_of(h);
    struct be_err err = {0};
    enum gf_status st =
        auth_change_password(c->app, &h->who, c->v[0].present ? c->v[0].str : NULL,
                             c->v[2].present ? c->v[2].num : 0, c->v[1].str, c->http.cid, &err);
    if (st != GF_OK) {
        reply_status(c, st, &err);
        return;
    }
    reply_json(c, 200, json_pack("{s:b,s:s}", "success", 1, "correlationId", c->http.cid));
}

/* "/item/svc-info endpoint serviced by backend-svc-1", as the original answered. */
static void run_svc_info(struct gf_http_ctx *h)
{
    struct ctx *c = ctx_of(h);
    gf_http_set_body(c->http.resp, 200, TEXT_TYPE, "%s endpoint serviced by %s",
                     gf_http_path(c->http.req), c->app->cfg->deployment_name);
}

static void run_healthz(struct gf_http_ctx *h)
{
    gf_http_api_reply_json(h, 200, json_pack("{s:s}", "status", "ok"));
}

/* One GetAll of a single row, with a short deadline: does gxp answer at all? */
static enum gf_status gxp_ping(struct ctx *c)
{
    if (c->app->gxp == NULL)
        return GF_EUNAVAILABLE;
    Gxp__GetAllRequest rq = GXP__GET_ALL_REQUEST__INIT;
    rq.limit = 1;
    ProtobufCMessage *out = NULL;
    grpc_status_code code = gf_grpc_client_call(c->app->gxp, "/gxp.Gxp/GetAll", &rq.base,
                                                &gxp__get_all_response__descriptor, &out,
                                                READYZ_GXP_DEADLINE_MS, c->http.cid, 0, NULL, 0);
    if (code != GRPC_STATUS_OK)
        return code == GRPC_STATUS_DEADLINE_EXCEEDED ? GF_ETIMEOUT : GF_EUNAVAILABLE;
    protobuf_c_message_free_unpacked(out, NULL);
    return GF_OK;
}

/* Ready when the schema is in place and both backend-db and gxp answer (SPEC §2). */
static void run_readyz(struct gf_http_ctx *h)
{
    struct ctx *c = ctx_of(h);
    bool migrated = atomic_load(&c->app->serving);
    enum gf_status db = gf_db_ping(c->app->pool);
    enum gf_status gxp = gxp_ping(c);
    bool ready = migrated && db == GF_OK && gxp == GF_OK;
    if (!ready) {
        c->http.error = "not_ready";
        c->http.expected = true;
    }
    /* The broker does not gate readiness: buys keep working while it is away, their events
     * wait in the outbox. */
    reply_json(c, ready ? 200 : 503,
               json_pack("{s:s,s:s,s:s,s:s,s:s}", "status", ready ? "ready" : "unavailable",
                         "schema", migrated ? "ready" : "pending", "database", gf_status_str(db),
                         "gxp", gf_status_str(gxp), "broker",
                         relay_connected(c->app->relay) ? "ok" : "unavailable"));
}

/* ---- routes ----------------------------------------------------------------------------- */

/* Each route's data is its JSON body's definition (validate.c), NULL for no body. */
#define NOBODY NULL
#define BODY(k) (&validate_bodies[k])

/* A path id that is not a positive integer matches no route: 404, since /item/abc names
 * nothing that could exist (and /item/create, /item/svc-info are routes of their own). */
/* Who may call what (ARCHITECTURE.md, "Who may call what"): catalog reads, svc-info and the
 * probes are public; a user acts for itself only (gf_http_api_may_act_for in the route); an
 * admin for anyone. /metrics is never routed by the ingress. */
#define ADMIN GF_HTTP_ADMIN
#define SIGNED_IN GF_HTTP_SIGNED_IN
#define PUBLIC GF_HTTP_PUBLIC
static const struct gf_http_route routes[] = {
    {"/user", GF_HTTP_GET, true, NOBODY, run_list_users, ADMIN},
    {"/user/", GF_HTTP_GET, true, NOBODY, run_list_users, ADMIN},
    {"/user/create", GF_HTTP_POST, true, BODY(VALIDATE_BODY_USER_CREATE), run_create_user, ADMIN},
    {"/item", GF_HTTP_GET, true, NOBODY, run_list_items, PUBLIC},
    {"/item/create", GF_HTTP_POST, true, BODY(VALIDATE_BODY_ITEM_CREATE), run_create_item, ADMIN},
    {"/item/:id", GF_HTTP_GET, true, NOBODY, run_get_item, PUBLIC},
    {"/item/:id", GF_HTTP_PATCH, true, BODY(VALIDATE_BODY_ITEM_PATCH), run_patch_item, ADMIN},
    {"/marketplace/item", GF_HTTP_GET, true, NOBODY, run_list_marketplace, PUBLIC},
    {"/marketplace/item/create", GF_HTTP_POST, true, BODY(VALIDATE_BODY_MARKETPLACE_CREATE),
     run_create_marketplace_item, ADMIN},
    {"/marketplace/item/buy", GF_HTTP_POST, true, BODY(VALIDATE_BODY_BUY), run_buy, SIGNED_IN},
    {"/user/item", GF_HTTP_GET, true, NOBODY, run_list_user_items, SIGNED_IN},
    {"/user/item/create", GF_HTTP_POST, true, BODY(VALIDATE_BODY_USER_ITEM_CREATE),
     run_create_user_item, ADMIN},
    {"/user/gxp/add", GF_HTTP_POST, true, BODY(VALIDATE_BODY_GXP_ADD), run_add_gxp, ADMIN},
    {"/user/gxp", GF_HTTP_GET, true, NOBODY, run_user_gxp, SIGNED_IN},
    {"/gxp/get-all", GF_HTTP_GET, false, NOBODY, run_gxp_get_all, ADMIN},
    {"/gxp/transaction", GF_HTTP_GET, true, NOBODY, run_gxp_transaction, ADMIN},
    {"/console/api/stream", GF_HTTP_GET, true, NOBODY, run_console_stream, ADMIN},
    {"/auction", GF_HTTP_GET, true, NOBODY, run_auction_list, SIGNED_IN},
    {"/auction/create", GF_HTTP_POST, true, BODY(VALIDATE_BODY_AUCTION_CREATE), run_auction_create,
     SIGNED_IN},
    {"/auction/bid", GF_HTTP_POST, true, BODY(VALIDATE_BODY_AUCTION_BID), run_auction_bid,
     SIGNED_IN},
    {"/auction/cancel", GF_HTTP_POST, true, BODY(VALIDATE_BODY_AUCTION_CANCEL), run_auction_cancel,
     SIGNED_IN},
    {"/auction/:id", GF_HTTP_GET, true, NOBODY, run_auction_get, SIGNED_IN},
    {"/auth/login", GF_HTTP_POST, true, BODY(VALIDATE_BODY_LOGIN), run_login, PUBLIC},
    {"/auth/password", GF_HTTP_POST, true, BODY(VALIDATE_BODY_PASSWORD), run_password, SIGNED_IN},
    {"/item/svc-info", GF_HTTP_GET, false, NOBODY, run_svc_info, PUBLIC},
    {"/user/svc-info", GF_HTTP_GET, false, NOBODY, run_svc_info, PUBLIC},
    {"/marketplace/svc-info", GF_HTTP_GET, false, NOBODY, run_svc_info, PUBLIC},
    {"/gxp/svc-info", GF_HTTP_GET, false, NOBODY, run_svc_info, PUBLIC},
    {"/healthz", GF_HTTP_GET, false, NOBODY, run_healthz, PUBLIC},
    {"/readyz", GF_HTTP_GET, false, NOBODY, run_readyz, PUBLIC},
    {"/metrics", GF_HTTP_GET, false, NOBODY, gf_http_api_reply_metrics, PUBLIC},
};

/* ---- the request's life ------------------------------------------------------------------ */

/* The headers a method requires: If-Match for PATCH (428 when absent), a well-formed
 * Idempotency-Key for POST when one is sent (*key). false when c->http.resp holds the answer. */
static bool check_preconditions(struct ctx *c, const char **key)
{
    *key = NULL;
    if (c->http.method == GF_HTTP_PATCH) {
        const char *h = gf_http_header(c->http.req, "If-Match");
        if (h == NULL) {
            reply_error(c, 428, "precondition_required",
                        "an If-Match header naming the version read (its ETag) is required");
            return false;
        }
        if (!validate_if_match(h, &c->if_match)) {
            reply_error(c, 400, "invalid_header",
                        "If-Match must name one version, as the ETag gave it: \"<version>\"");
            return false;
        }
    } else if (c->http.method == GF_HTTP_POST && c->http.route->run != run_login &&
               c->http.route->run != run_password) {
        /* Not for /auth: a stored answer would keep a token, and both are safe to resend. */
        const char *h = gf_http_header(c->http.req, "Idempotency-Key");
        if (h != NULL && !validate_idempotency_key(h)) {
            reply_error(c, 400, "invalid_header",
                        "Idempotency-Key must be 1 to 255 printable ASCII characters");
            return false;
        }
        *key = h;
    }
    return true;
}

/* Claims the request's Idempotency-Key (idempotency.c). true: the caller runs the request.
 * false: c->http.resp holds the answer (a replay, 409, 422, or 503 when the database is down:
 * before any work). */
static bool claim_key(struct ctx *c, const char *key)
{
    enum idem_verdict verdict = IDEM_IN_PROGRESS;
    struct idem_replay replay = {0};
    c->idem.key = key;
    c->idem.owner = c->http.cid;
    struct be_err err = {0};
    enum gf_status st = idem_claim(c->app, c->http.req, key, c->http.cid, &verdict, &replay, &err);
    if (st != GF_OK) {
        reply_status(c, st, &err);
        return false;
    }
    switch (verdict) {
    case IDEM_RUN:
        return true;
    case IDEM_REUSED:
        reply_error(c, 422, "idempotency_key_reused",
                    "this Idempotency-Key was used with a different request");
        return false;
    case IDEM_IN_PROGRESS:
        gf_http_add_header(c->http.resp, "Retry-After", "1");
        reply_error(c, 409, "request_in_progress",
                    "a request with this Idempotency-Key is still in progress; retry later");
        return false;
    case IDEM_REPLAY:
        free(c->http.resp->body);
        c->http.resp->status = replay.status;
        c->http.resp->content_type = replay.content_type;
        c->http.resp->body = replay.body;
        c->http.resp->body_len = strlen(replay.body);
        gf_http_add_header(c->http.resp, "Idempotent-Replayed", "true");
        c->http.error = replay.status >= 400 ? "replayed" : NULL;
        return false;
    }
    return false;
}

/* The routes whose work queues behind gxp's apply worker (a decision) or the relay (an event),
 * and that a client makes at a rate: buys, add-gxp, auction bids and creates. Reads, probes,
 * /metrics, the console, logins and the operators' rare changes are never shed. */
static bool sheddable(const struct gf_http_route *r)
{
    return r->run == run_buy || r->run == run_add_gxp || r->run == run_auction_bid ||
           r->run == run_auction_create;
}

/* 503 overloaded with Retry-After: nothing was done, the same request may be sent again. */
static void reply_overloaded(struct gf_http_ctx *c, const char *why)
{
    const struct backend_app *app = c->app;
    char ra[24], msg[200];
    snprintf(ra, sizeof ra, "%lld", (long long)app->cfg->admit_retry_after_s);
    gf_http_add_header(c->resp, "Retry-After", ra);
    snprintf(msg, sizeof msg, "the service is overloaded (%s); nothing was done: retry after %s s",
             why, ra);
    gf_http_api_reply_error(c, 503, "overloaded", msg);
    c->expected = true; /* counted in backend_shed_total or the gate's timeouts */
}

/* Admission control (admission.c): lib's admit hook, called once the route is known and
 * before anything else — the token's signature, the body's validation, the Idempotency-Key's
 * claim — so a shed request costs little and writes nothing, and the same request retried
 * later runs as if first sent. false: c->resp holds the 503 overloaded. */
static bool admit(struct gf_http_ctx *c)
{
    if (!sheddable(c->route))
        return true;
    const struct backend_app *app = c->app;
    enum admission_reason why = admission_check(app->admission);
    if (why == ADMISSION_OPEN)
        return true;
    reply_overloaded(c, admission_reason_text(why));
    return false;
}

/* The write gate (write_gate.c): buys and add-gxps, the two-phase commits a client makes at a
 * rate, run a few at a time, in arrival order. */
static bool gated(const struct gf_http_route *r)
{
    return r->run == run_buy || r->run == run_add_gxp;
}

/* After lib's routing, admission control, the token's check and the readiness gate: the
 * method's headers, the body, the key's claim, then the route. */
static void serve(struct ctx *c)
{
    const struct gf_http_route *r = c->http.route;
    const struct validate_body_def *def = r->data;
    json_t *root = NULL;
    const char *key;
    struct be_err err = {0};
    if (!check_preconditions(c, &key))
        return;
    if (def != NULL) {
        size_t len;
        const char *body = gf_http_body(c->http.req, &len);
        assert(def->nfields <= sizeof c->v / sizeof c->v[0]);
        if (validate_body(body, len, def->fields, def->nfields, &root, c->v, &err) != GF_OK) {
            reply_status(c, GF_EINVAL, &err);
            return;
        }
    }
    /* The gate before the key's claim: a request that times out in it has claimed nothing. */
    bool gate = gated(r);
    if (gate && !write_gate_enter(c->app->writes, c->app->cfg->write_wait_ms)) {
        reply_overloaded(&c->http, "too many buys and add-gxps are waiting");
        json_decref(root);
        return;
    }
    if (key == NULL) {
        r->run(&c->http);
    } else if (claim_key(c, key)) {
        r->run(&c->http);
        idem_finish(c->app, &c->idem, c->http.resp);
    }
    if (gate)
        write_gate_leave(c->app->writes);
    json_decref(root);
}

static void handle(void *api, const struct gf_http_request *req, struct gf_http_response *resp)
{
    struct ctx c = {0};
    if (gf_http_api_begin(api, &c.http, req, resp)) {
        c.app = c.http.app;
        serve(&c);
    }
    gf_http_api_end(&c.http);
}

struct gf_http_server *api_start(struct backend_app *app)
{
    coord_metrics_init();
    store_metrics_init();
    auction_metrics_init();
    int threads = (int)app->cfg->http_threads;
    int max_connections = (int)app->cfg->http_max_connections;
    /* By default a quarter of the threads stay free for the probes (0: lib's default); a
     * setting may go up to threads + workers. Not capped by the database pool: a buy holds a
     * connection only per step and none while it waits for gxp, so more handlers than
     * connections is the normal case, not an overload (the benchmark's 32 connections on one
     * replica must not be shed). */
    int max_inflight = (int)app->cfg->http_max_inflight;
    struct gf_http_server_options opt = {
        .addr = app->cfg->http_addr,
        .threads = threads,
        .max_connections = max_connections > threads ? max_connections : threads,
        .connection_timeout_s = (int)app->cfg->http_idle_timeout_s,
        .max_body = (size_t)app->cfg->max_body,
        .max_inflight = max_inflight,
        .workers = (int)app->cfg->http_workers,
        .header_timeout_ms = (int)app->cfg->http_header_timeout_ms,
        .body_timeout_ms = (int)app->cfg->http_body_timeout_ms,
        .handler = handle,
    };
    return gf_http_api_start(
        &(struct gf_http_api_options){.service = "backend",
                                      .routes = routes,
                                      .nroutes = sizeof routes / sizeof routes[0],
                                      .ready = &app->serving,
                                      .app = app,
                                      .auth = app->keys,
                                      .auth_leeway_s = app->cfg->auth_leeway_s,
                                      .admit = admit},
        &opt, NULL);
}
