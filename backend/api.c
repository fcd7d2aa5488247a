/* The backend's HTTP API (SPEC §2): one route table, strict input validation (validate.c),
 * the error model, Idempotency-Key for POSTs, per-route metrics, and the service endpoints
 * /healthz, /readyz and /metrics. */
#include <assert.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backend.h"
#include "gf/clock.h"
#include "gf/http.h"
#include "gf/log.h"
#include "gf/metrics.h"
#include "gf/uuid.h"
#include "gxp.pb-c.h"
#include "validate.h"

#define JSON_TYPE "application/json"
#define TEXT_TYPE "text/plain; charset=utf-8"

#define READYZ_GXP_DEADLINE_MS 500

/* ---- the one table from status to HTTP code ------------------------------------------- */

int api_http_code(enum gf_status st)
{
    switch (st) {
    case GF_OK:
        return 200;
    case GF_EINVAL:
    case GF_ERANGE:
        return 400;
    case GF_ENOTFOUND:
        return 404;
    case GF_EEXISTS:
    case GF_ECONFLICT:
        return 409;
    case GF_EPRECONDITION:
        return 412;
    case GF_ETOOBIG:
        return 413;
    case GF_EUNAVAILABLE:
    case GF_ESHUTDOWN:
    case GF_EUNKNOWN:
    case GF_ENOMEM:
        return 503;
    case GF_ETIMEOUT:
        return 504;
    case GF_EINTERNAL:
    case GF_PENDING: /* a synchronous handler never pends: a bug */
        return 500;
    }
    return 500;
}

/* ---- one request ---------------------------------------------------------------------- */

struct route;

struct ctx {
    struct backend_app *app;
    const struct gf_http_request *req;
    struct gf_http_response *resp;
    const char *cid;
    const struct route *route;  /* NULL when no route answered (404, 405) */
    const char *error;          /* the error code answered, for the log line */
    int64_t path_id;            /* :id of /item/:id */
    int64_t if_match;           /* the version If-Match names (PATCH) */
    struct be_idem idem;        /* the Idempotency-Key (idem.key NULL: none) */
    struct validate_value v[3]; /* the body's fields, in the order of route->body->fields */
};

/* ---- answers -------------------------------------------------------------------------- */

static const char *default_message(int status)
{
    switch (status) {
    case 400:
        return "the request is invalid";
    case 404:
        return "not found";
    case 409:
        return "the request conflicts with the current state";
    case 412:
        return "the resource changed since it was read";
    case 503:
        return "a dependency is unavailable; retry later";
    case 504:
        return "a dependency did not answer in time; retry later";
    default:
        return "internal error";
    }
}

/* Answers obj (a new reference, taken) as compact JSON. A NULL obj means building it
 * failed: a bug or no memory, answered 500. */
static void reply_json(struct ctx *c, int status, json_t *obj)
{
    if (!gf_http_reply_json(c->resp, status, obj, c->cid))
        c->error = "internal";
}

static void reply_error(struct ctx *c, int status, const char *code, const char *message)
{
    c->error = code;
    json_t *o =
        json_pack("{s:s,s:s,s:s}", "message", message, "error", code, "correlationId", c->cid);
    if (o == NULL) /* a message cut inside a UTF-8 character: say less rather than nothing */
        o = json_pack("{s:s,s:s,s:s}", "message", default_message(status), "error", code,
                      "correlationId", c->cid);
    reply_json(c, status, o);
}

/* The answer to a failed operation: its status through the one table, its be_err. */
static void reply_status(struct ctx *c, enum gf_status st, const struct be_err *err)
{
    int status = api_http_code(st);
    const char *code = err != NULL && err->code != NULL ? err->code : gf_status_str(st);
    const char *msg =
        err != NULL && err->message[0] != '\0' ? err->message : default_message(status);
    reply_error(c, status, code, msg);
}

/* The 200 of a POST in its route's shape (c->idem.shape, set by the run_ function), the very
 * bytes idem_commit stored for a retry. */
static void reply_success(struct ctx *c, int64_t id, bool replayed)
{
    char *body = be_answer_body(&c->idem, id, c->cid);
    if (body == NULL) {
        reply_json(c, 500, NULL);
        return;
    }
    free(c->resp->body);
    c->resp->status = 200;
    c->resp->content_type = JSON_TYPE;
    c->resp->body = body;
    c->resp->body_len = strlen(body);
    if (replayed)
        gf_http_add_header(c->resp, "Idempotent-Replayed", "true");
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
    gf_http_add_header(c->resp, "ETag", etag);
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
    struct be_page page;
    char *body = NULL;
    size_t len = 0;
    enum gf_status st =
        validate_page(gf_http_query(c->req, "limit"), gf_http_query(c->req, "after"),
                      c->app->cfg->list_cap, &page, &err);
    if (st == GF_OK)
        st = fn(c->app, &page, key, &body, &len, &err);
    if (st != GF_OK) {
        reply_status(c, st, &err);
        return;
    }
    free(c->resp->body);
    c->resp->status = 200;
    c->resp->content_type = "application/json";
    c->resp->body = body;
    c->resp->body_len = len;
}

static void run_list_users(struct ctx *c)
{
    run_list(c, "users", store_list_users);
}

static void run_list_items(struct ctx *c)
{
    run_list(c, "items", store_list_items);
}

static void run_list_marketplace(struct ctx *c)
{
    run_list(c, "marketplaceItems", store_list_marketplace);
}

static void run_list_user_items(struct ctx *c)
{
    run_list(c, "userItems", store_list_user_items);
}

static void run_create_user(struct ctx *c)
{
    struct be_err err = {0};
    int64_t id = 0;
    c->idem.shape = BE_SHAPE_CREATED;
    c->idem.id_key = "userId";
    enum gf_status st = coord_create_user(c->app, c->v[0].str, c->cid, &c->idem, &id, &err);
    reply_created(c, st, &err, "userId", id);
}

static void run_create_item(struct ctx *c)
{
    struct be_err err = {0};
    int64_t id = 0;
    c->idem.shape = BE_SHAPE_CREATED;
    c->idem.id_key = "itemId";
    enum gf_status st = store_create_item(c->app, c->v[0].str, c->v[1].num, &c->idem, &id, &err);
    reply_created(c, st, &err, "itemId", id);
}

static void run_create_marketplace_item(struct ctx *c)
{
    struct be_err err = {0};
    int64_t id = 0;
    c->idem.shape = BE_SHAPE_CREATED;
    c->idem.id_key = "marketplaceItemId";
    enum gf_status st =
        store_create_marketplace_item(c->app, c->v[0].num, c->v[1].num, &c->idem, &id, &err);
    reply_created(c, st, &err, "marketplaceItemId", id);
}

static void run_create_user_item(struct ctx *c)
{
    struct be_err err = {0};
    int64_t id = 0;
    c->idem.shape = BE_SHAPE_CREATED;
    c->idem.id_key = "userItemId";
    enum gf_status st =
        store_create_user_item(c->app, c->v[0].num, c->v[1].num, c->v[2].num, &c->idem, &id, &err);
    reply_created(c, st, &err, "userItemId", id);
}

static void run_buy(struct ctx *c)
{
    struct be_err err = {0};
    int64_t id = 0;
    bool replayed = false;
    c->idem.shape = BE_SHAPE_BUY;
    enum gf_status st =
        coord_buy(c->app, c->v[0].num, c->v[1].num, c->cid, &c->idem, &id, &replayed, &err);
    if (st != GF_OK) {
        reply_status(c, st, &err);
        return;
    }
    reply_success(c, id, replayed);
}

static void run_add_gxp(struct ctx *c)
{
    struct be_err err = {0};
    bool replayed = false;
    c->idem.shape = BE_SHAPE_CID;
    enum gf_status st =
        coord_add_gxp(c->app, c->v[0].num, c->v[1].num, c->cid, &c->idem, &replayed, &err);
    if (st != GF_OK) {
        reply_status(c, st, &err);
        return;
    }
    reply_success(c, 0, replayed);
}

static void run_user_gxp(struct ctx *c)
{
    struct be_err err = {0};
    int64_t user_id;
    json_t *out = NULL;
    enum gf_status st =
        validate_query_id(gf_http_query(c->req, "userId"), "userId", &user_id, &err);
    if (st == GF_OK)
        st = coord_user_gxp(c->app, user_id, c->cid, &out, &err);
    if (st != GF_OK) {
        reply_status(c, st, &err);
        return;
    }
    if (out != NULL && json_object_set_new(out, "correlationId", json_string(c->cid)) != 0) {
        json_decref(out);
        out = NULL;
    }
    reply_json(c, 200, out);
}

static void run_gxp_transaction(struct ctx *c)
{
    struct be_err err = {0};
    char tx_cid[GF_UUID_STRLEN + 1];
    json_t *out = NULL;
    enum gf_status st =
        validate_query_uuid(gf_http_query(c->req, "correlationId"), "correlationId", tx_cid, &err);
    if (st == GF_OK)
        st = coord_transaction(c->app, tx_cid, c->cid, &out, &err);
    if (st != GF_OK) {
        reply_status(c, st, &err);
        return;
    }
    reply_json(c, 200, out);
}

static void run_gxp_get_all(struct ctx *c)
{
    struct be_err err = {0};
    json_t *out = NULL;
    struct be_gxp_page page = {0};
    enum gf_status st = validate_gxp_page(
        gf_http_query(c->req, "limit"), gf_http_query(c->req, "after"),
        gf_http_query(c->req, "afterBalance"), gf_http_query(c->req, "order"), &page, &err);
    if (st == GF_OK)
        st = coord_gxp_get_all(c->app, &page, c->cid, &out, &err);
    if (st != GF_OK) {
        reply_status(c, st, &err);
        return;
    }
    reply_json(c, 200, out);
}

static void run_get_item(struct ctx *c)
{
    struct be_err err = {0};
    json_t *item = NULL;
    int64_t version = 0;
    enum gf_status st = store_get_item(c->app, c->path_id, &item, &version, &err);
    reply_item(c, st, &err, item, version);
}

/* If-Match was read by check_preconditions; the fields are name (v[0]) and cost (v[1]). */
static void run_patch_item(struct ctx *c)
{
    struct be_err err = {0};
    int64_t version = 0;
    json_t *item = NULL;
    if (!c->v[0].present && !c->v[1].present) {
        reply_error(c, 400, "missing_field",
                    "the body must set at least one of \"name\" and \"cost\"");
        return;
    }
    enum gf_status st =
        store_patch_item(c->app, c->path_id, c->if_match, c->v[0].present ? c->v[0].str : NULL,
                         c->v[1].present ? c->v[1].num : -1, &item, &version, &err);
    reply_item(c, st, &err, item, version);
}

/* "/item/svc-info endpoint serviced by backend-svc-1", as the original answered. */
static void run_svc_info(struct ctx *c)
{
    gf_http_set_body(c->resp, 200, TEXT_TYPE, "%s endpoint serviced by %s", gf_http_path(c->req),
                     c->app->cfg->deployment_name);
}

static void run_healthz(struct ctx *c)
{
    reply_json(c, 200, json_pack("{s:s}", "status", "ok"));
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
                                                READYZ_GXP_DEADLINE_MS, c->cid, 0, NULL, 0);
    if (code != GRPC_STATUS_OK)
        return code == GRPC_STATUS_DEADLINE_EXCEEDED ? GF_ETIMEOUT : GF_EUNAVAILABLE;
    protobuf_c_message_free_unpacked(out, NULL);
    return GF_OK;
}

/* Ready when the schema is in place and both backend-db and gxp answer (SPEC §2). */
static void run_readyz(struct ctx *c)
{
    bool migrated = atomic_load(&c->app->migrated);
    enum gf_status db = gf_db_ping(c->app->pool);
    enum gf_status gxp = gxp_ping(c);
    bool ready = migrated && db == GF_OK && gxp == GF_OK;
    if (!ready)
        c->error = "not_ready";
    /* The broker does not gate readiness: buys keep working while it is away, their events
     * wait in the outbox. */
    reply_json(c, ready ? 200 : 503,
               json_pack("{s:s,s:s,s:s,s:s,s:s}", "status", ready ? "ready" : "unavailable",
                         "schema", migrated ? "ready" : "pending", "database", gf_status_str(db),
                         "gxp", gf_status_str(gxp), "broker",
                         relay_connected(c->app->relay) ? "ok" : "unavailable"));
}

static void run_metrics(struct ctx *c)
{
    if (!gf_http_reply_metrics(c->resp))
        reply_error(c, 503, "out_of_memory", "metrics unavailable");
}

/* ---- routes ----------------------------------------------------------------------------- */

enum method { M_GET, M_POST, M_PATCH }; /* GET includes HEAD: MHD sends no body for it */
static const char *const method_names[] = {"GET", "POST", "PATCH"};

struct route {
    const char *path; /* exact, or ending in "/:id": a positive integer id */
    enum method method;
    bool needs_schema;                    /* answers 503 until the migrations ran */
    const struct validate_body_def *body; /* the JSON body's fields, NULL for no body */
    void (*run)(struct ctx *c);
};

#define NOBODY NULL
#define BODY(k) (&validate_bodies[k])

/* A path id that is not a positive integer matches no route: 404, since /item/abc names
 * nothing that could exist (and /item/create, /item/svc-info are routes of their own). */
static const struct route routes[] = {
    {"/user", M_GET, true, NOBODY, run_list_users},
    {"/user/", M_GET, true, NOBODY, run_list_users},
    {"/user/create", M_POST, true, BODY(VALIDATE_BODY_USER_CREATE), run_create_user},
    {"/item", M_GET, true, NOBODY, run_list_items},
    {"/item/create", M_POST, true, BODY(VALIDATE_BODY_ITEM_CREATE), run_create_item},
    {"/item/:id", M_GET, true, NOBODY, run_get_item},
    {"/item/:id", M_PATCH, true, BODY(VALIDATE_BODY_ITEM_PATCH), run_patch_item},
    {"/marketplace/item", M_GET, true, NOBODY, run_list_marketplace},
    {"/marketplace/item/create", M_POST, true, BODY(VALIDATE_BODY_MARKETPLACE_CREATE),
     run_create_marketplace_item},
    {"/marketplace/item/buy", M_POST, true, BODY(VALIDATE_BODY_BUY), run_buy},
    {"/user/item", M_GET, true, NOBODY, run_list_user_items},
    {"/user/item/create", M_POST, true, BODY(VALIDATE_BODY_USER_ITEM_CREATE), run_create_user_item},
    {"/user/gxp/add", M_POST, true, BODY(VALIDATE_BODY_GXP_ADD), run_add_gxp},
    {"/user/gxp", M_GET, true, NOBODY, run_user_gxp},
    {"/gxp/get-all", M_GET, false, NOBODY, run_gxp_get_all},
    {"/gxp/transaction", M_GET, true, NOBODY, run_gxp_transaction},
    {"/item/svc-info", M_GET, false, NOBODY, run_svc_info},
    {"/user/svc-info", M_GET, false, NOBODY, run_svc_info},
    {"/marketplace/svc-info", M_GET, false, NOBODY, run_svc_info},
    {"/gxp/svc-info", M_GET, false, NOBODY, run_svc_info},
    {"/healthz", M_GET, false, NOBODY, run_healthz},
    {"/readyz", M_GET, false, NOBODY, run_readyz},
    {"/metrics", M_GET, false, NOBODY, run_metrics},
};
#define NROUTES (sizeof routes / sizeof routes[0])
#define UNMATCHED NROUTES /* the metrics slot of 404 and 405 */

/* ---- metrics ---------------------------------------------------------------------------- */

/* Per route: a latency histogram registered at start, and a counter per status class
 * registered on first use (most routes never see most classes). */
static struct gf_histogram *route_latency[NROUTES + 1];
static _Atomic(struct gf_counter *) route_count[NROUTES + 1][5];

static void route_labels(size_t ri, char *buf, size_t n)
{
    if (ri == UNMATCHED)
        snprintf(buf, n, "route=\"unmatched\",method=\"\"");
    else
        snprintf(buf, n, "route=\"%s\",method=\"%s\"", routes[ri].path,
                 method_names[routes[ri].method]);
}

static void metrics_init(struct backend_app *app)
{
    char labels[128];
    for (size_t ri = 0; ri <= NROUTES; ri++) {
        route_labels(ri, labels, sizeof labels);
        route_latency[ri] = gf_metrics_histogram("backend_http_request_duration_seconds",
                                                 "HTTP handling time, by route", labels);
    }
    gf_db_pool_register_metrics(app->pool);
    coord_metrics_init();
    store_metrics_init();
}

static void count(size_t ri, int status, int64_t us)
{
    int cls = status / 100 - 1;
    if (cls < 0 || cls > 4)
        cls = 4;
    struct gf_counter *c = atomic_load_explicit(&route_count[ri][cls], memory_order_acquire);
    if (c == NULL) {
        /* Two threads may both register: the registry returns the same series to both. */
        char labels[160];
        route_labels(ri, labels, sizeof labels);
        size_t n = strlen(labels);
        snprintf(labels + n, sizeof labels - n, ",code=\"%dxx\"", cls + 1);
        c = gf_metrics_counter("backend_http_requests_total",
                               "HTTP requests answered, by route and status class", labels);
        atomic_store_explicit(&route_count[ri][cls], c, memory_order_release);
    }
    gf_counter_add(c, 1); /* both accept NULL: a failed registration only loses figures */
    gf_histogram_observe_us(route_latency[ri], us);
}

/* Error answers by status and the body's error code: a few dozen series at most, since codes
 * are the API's own constants. Each HTTP thread remembers the series it met, so an error costs
 * the registry's lock only the first time a thread answers it. */
#define ERROR_CODE_MAX 48
#define ERROR_CACHE 32

struct error_series {
    int status;
    char code[ERROR_CODE_MAX];
    struct gf_counter *counter;
};
static _Thread_local struct error_series error_cache[ERROR_CACHE];
static _Thread_local int error_cached;

/* A label value we put out as it is: our snake_case codes, nothing else. */
static bool plain_code(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
            return false;
    }
    return n > 0 && n < ERROR_CODE_MAX;
}

static void count_error(int status, const char *code)
{
    if (code == NULL || code[0] == '\0')
        code = "unknown";
    for (int i = 0; i < error_cached; i++) {
        if (error_cache[i].status == status && strcmp(error_cache[i].code, code) == 0) {
            gf_counter_add(error_cache[i].counter, 1);
            return;
        }
    }
    bool plain = plain_code(code);
    char labels[128];
    snprintf(labels, sizeof labels, "status=\"%d\",error=\"%s\"", status, plain ? code : "other");
    struct gf_counter *c =
        gf_metrics_counter("backend_http_errors_total",
                           "error answers, by HTTP status and the body's error code", labels);
    if (plain && error_cached < ERROR_CACHE) {
        struct error_series *e = &error_cache[error_cached++];
        e->status = status;
        snprintf(e->code, sizeof e->code, "%s", code);
        e->counter = c;
    }
    gf_counter_add(c, 1);
}

/* ---- routing and the request's life ------------------------------------------------------ */

static int method_of(const char *m)
{
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
        return M_GET;
    if (strcmp(m, "POST") == 0)
        return M_POST;
    if (strcmp(m, "PATCH") == 0)
        return M_PATCH;
    return -1;
}

static bool path_matches(const struct route *r, const char *path, int64_t *id)
{
    size_t n = strlen(r->path);
    if (n > 4 && strcmp(r->path + n - 4, "/:id") == 0)
        return strncmp(path, r->path, n - 3) == 0 && validate_path_id(path + n - 3, id);
    return strcmp(path, r->path) == 0;
}

/* The route of this path and method, or UNMATCHED after answering 404 or 405 (with Allow). */
static size_t route_find(struct ctx *c)
{
    const char *path = gf_http_path(c->req);
    int m = method_of(gf_http_method(c->req));
    unsigned allowed = 0;
    for (size_t i = 0; i < NROUTES; i++) {
        int64_t id = 0;
        if (!path_matches(&routes[i], path, &id))
            continue;
        if ((int)routes[i].method == m) {
            c->route = &routes[i];
            c->path_id = id;
            return i;
        }
        allowed |= 1u << routes[i].method;
    }
    if (allowed == 0) {
        reply_error(c, 404, "not_found", "no such path");
        return UNMATCHED;
    }
    char allow[32] = "";
    static const char *const allow_names[] = {"GET, HEAD", "POST", "PATCH"};
    for (int k = M_GET; k <= M_PATCH; k++) {
        if (allowed & (1u << k))
            snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s",
                     allow[0] ? ", " : "", allow_names[k]);
    }
    gf_http_add_header(c->resp, "Allow", allow);
    reply_error(c, 405, "method_not_allowed", "this method is not allowed on this path");
    return UNMATCHED;
}

/* The headers a method requires: If-Match for PATCH (428 when absent), a well-formed
 * Idempotency-Key for POST when one is sent (*key). false when c->resp holds the answer. */
static bool check_preconditions(struct ctx *c, const char **key)
{
    *key = NULL;
    if (c->route->method == M_PATCH) {
        const char *h = gf_http_header(c->req, "If-Match");
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
    } else if (c->route->method == M_POST) {
        const char *h = gf_http_header(c->req, "Idempotency-Key");
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
 * false: c->resp holds the answer (a replay, 409, 422, or 503 when the database is down:
 * before any work). */
static bool claim_key(struct ctx *c, const char *key)
{
    enum idem_verdict verdict = IDEM_IN_PROGRESS;
    struct idem_replay replay = {0};
    c->idem.key = key;
    c->idem.owner = c->cid;
    struct be_err err = {0};
    enum gf_status st = idem_claim(c->app, c->req, key, c->cid, &verdict, &replay, &err);
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
        gf_http_add_header(c->resp, "Retry-After", "1");
        reply_error(c, 409, "request_in_progress",
                    "a request with this Idempotency-Key is still in progress; retry later");
        return false;
    case IDEM_REPLAY:
        free(c->resp->body);
        c->resp->status = replay.status;
        c->resp->content_type = replay.content_type;
        c->resp->body = replay.body;
        c->resp->body_len = strlen(replay.body);
        gf_http_add_header(c->resp, "Idempotent-Replayed", "true");
        c->error = replay.status >= 400 ? "replayed" : NULL;
        return false;
    }
    return false;
}

static void serve(struct ctx *c)
{
    const struct route *r = c->route;
    json_t *root = NULL;
    const char *key;
    struct be_err err = {0};
    if (r->needs_schema && !atomic_load(&c->app->migrated)) {
        reply_error(c, 503, "not_ready", "the service is starting; retry later");
        return;
    }
    if (!check_preconditions(c, &key))
        return;
    if (r->body != NULL) {
        size_t len;
        const char *body = gf_http_body(c->req, &len);
        assert(r->body->nfields <= sizeof c->v / sizeof c->v[0]);
        if (validate_body(body, len, r->body->fields, r->body->nfields, &root, c->v, &err) !=
            GF_OK) {
            reply_status(c, GF_EINVAL, &err);
            return;
        }
    }
    if (key == NULL) {
        r->run(c);
    } else if (claim_key(c, key)) {
        r->run(c);
        idem_finish(c->app, &c->idem, c->resp);
    }
    json_decref(root);
}

/* Copies s for a log line: at most n-1 bytes, anything but visible ASCII (quotes included)
 * as '?', so a client cannot forge fields or lines. */
static void log_safe(char *out, size_t n, const char *s)
{
    size_t i = 0;
    for (; s != NULL && s[i] != '\0' && i + 1 < n; i++)
        out[i] = (s[i] > 0x20 && s[i] < 0x7f && s[i] != '"') ? s[i] : '?';
    out[i] = '\0';
}

static bool has_header(const struct gf_http_response *resp, const char *name)
{
    for (int i = 0; i < resp->nheaders; i++) {
        if (strcasecmp(resp->header_names[i], name) == 0)
            return true;
    }
    return false;
}

/* Retry-After on every 503, the metrics, and one log line per failed request. */
static void finish(struct ctx *c, size_t ri, int64_t us)
{
    int status = c->resp->status ? c->resp->status : 200;
    if (status == 503 && !has_header(c->resp, "Retry-After"))
        gf_http_add_header(c->resp, "Retry-After", "1");
    count(ri, status, us);
    if (status >= 400)
        count_error(status, c->error);
    enum gf_log_level level = status >= 500 ? GF_LOG_WARN : GF_LOG_DEBUG;
    if (status < 400 || !gf_log_enabled(level))
        return;
    char method[16], path[96];
    log_safe(method, sizeof method, gf_http_method(c->req));
    log_safe(path, sizeof path, gf_http_path(c->req));
    gf_log(level, "api request failed method=%s path=%s status=%d error=%s us=%lld", method, path,
           status, c->error ? c->error : "-", (long long)us);
}

static void handle(void *arg, const struct gf_http_request *req, struct gf_http_response *resp)
{
    int64_t t0 = gf_mono_us();
    struct ctx c = {.app = arg, .req = req, .resp = resp, .cid = gf_http_cid(req)};
    size_t ri = route_find(&c);
    if (c.route != NULL)
        serve(&c);
    finish(&c, ri, gf_mono_us() - t0);
}

struct gf_http_server *api_start(struct backend_app *app)
{
    metrics_init(app);
    int threads = (int)app->cfg->http_threads;
    int max_connections = (int)app->cfg->http_max_connections;
    /* By default a quarter of the threads stay free for the probes. Not capped by the
     * database pool: a buy holds a connection only per step and none while it waits for gxp,
     * so more handlers than connections is the normal case, not an overload (the benchmark's
     * 32 connections on one replica must not be shed). */
    int max_inflight = gf_http_default_inflight(threads, (int)app->cfg->http_max_inflight);
    struct gf_http_server_options opt = {
        .addr = app->cfg->http_addr,
        .threads = threads,
        .max_connections = max_connections > threads ? max_connections : threads,
        .connection_timeout_s = (int)app->cfg->http_idle_timeout_s,
        .max_body = (size_t)app->cfg->max_body,
        .max_inflight = max_inflight,
        .header_timeout_ms = (int)app->cfg->http_header_timeout_ms,
        .body_timeout_ms = (int)app->cfg->http_body_timeout_ms,
        .handler = handle,
        .app = app,
    };
    return gf_http_server_start(&opt, NULL);
}
