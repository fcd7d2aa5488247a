/* The services' HTTP front end, once: the status → HTTP table, a route table with its lookup
 * (404, 405 with Allow) and readiness gate (503 not_ready), the request context the routes
 * run with, the error body {"message","error","correlationId"}, and the end of every request
 * (Retry-After on a 503, metrics, one log line per failed request).
 *
 * Metrics, per service prefix P (registered in the process-wide registry of gf/metrics.h):
 *   P_http_requests_total{route,method,code}       counter: requests answered, by exact status
 *                                                  (each series registered on its first use)
 *   P_http_request_duration_seconds{route,method}  histogram: handling time (registered at start)
 *   P_http_errors_total{status,error}              counter: answers >= 400 by the body's error
 *                                                  code ("other" for anything but snake_case)
 * route is the route's path as written in its table ("/item/:id"), method its method's name
 * ("GET" for HEAD too); a request no route takes (404, 405) is route="unmatched",method="". */
#ifndef GF_HTTP_API_H
#define GF_HTTP_API_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gf/auth.h"
#include "gf/http.h"
#include "gf/status.h"

/* The one table from status to HTTP code (GF_OK 200, GF_EINVAL 400, ... anything unknown 500). */
int gf_http_api_code(enum gf_status st);
/* The message an error answer of this HTTP status carries when its caller has none. */
const char *gf_http_api_message(int status);

/* A route's methods: a set. GF_HTTP_GET answers HEAD too (the server sends no body then). */
enum {
    GF_HTTP_GET = 1u << 0,
    GF_HTTP_POST = 1u << 1,
    GF_HTTP_PATCH = 1u << 2,
    GF_HTTP_PUT = 1u << 3,
    GF_HTTP_DELETE = 1u << 4,
};

struct gf_http_ctx;

/* Who may call a route. Anything but GF_HTTP_PUBLIC needs a bearer token that the api's keys
 * verify (gf/auth.h): no token, or one that proves nothing, is answered 401 with
 * WWW-Authenticate; a valid token of a role the route does not take is answered 403. A table
 * entry that leaves it out does not build (-Wextra's missing-field-initializers), and the zero
 * value is the strictest anyway: a route nobody classed is for admins only. What
 * a signed-in user may do to whom (its own id only) is the route's own check, on c->who. */
enum gf_http_access {
    GF_HTTP_ADMIN = 0,     /* role admin */
    GF_HTTP_SIGNED_IN = 1, /* any valid token: role user or admin */
    GF_HTTP_PUBLIC = 2,    /* no token needed (a token sent is not looked at) */
};

/* One entry of a service's route table (a static array that outlives the api). */
struct gf_http_route {
    const char *path; /* exact, or ending in "/:id": a positive integer (gf_http_path_id) */
    unsigned methods; /* GF_HTTP_GET | ... */
    bool needs_ready; /* answered 503 not_ready while the api's ready flag is false */
    const void *data; /* the service's own, per route (the backend's body definition) */
    void (*run)(struct gf_http_ctx *c);
    enum gf_http_access access;
};

/* The :id of a path: decimal digits only, 1 to 2^53 (a JSON-safe integer). */
#define GF_HTTP_ID_MAX 9007199254740992LL
bool gf_http_path_id(const char *s, int64_t *id) GF_MUSTCHECK;

struct gf_http_api_options {
    const char *service; /* the metrics' prefix: "backend" gives backend_http_requests_total */
    const struct gf_http_route *routes;
    size_t nroutes;
    const atomic_bool *ready; /* needs_ready routes wait for it; NULL: always ready */
    void *app;                /* handed to the routes as ctx->app */
    /* Verifies the bearer tokens of routes that are not public (it outlives the api). NULL:
     * every route must be GF_HTTP_PUBLIC, or gf_http_api_new refuses the table. */
    const struct gf_auth_keys *auth;
    int64_t auth_leeway_s; /* clock skew allowed on a token's exp and nbf */
    /* Load shedding that must stay cheap: called once a request's route is found, before its
     * token is verified or anything else is done, so that a refused request costs no
     * signature check (the backend's admission control). false: c->resp holds the answer.
     * NULL: every request goes on. */
    bool (*admit)(struct gf_http_ctx *c);
};

struct gf_http_api;

/* Registers the api's latency histograms; NULL (logged) on a bad table or no memory. */
struct gf_http_api *gf_http_api_new(const struct gf_http_api_options *opt);
/* NULL is a no-op. Only once no request can run (its server stopped). */
void gf_http_api_free(struct gf_http_api *api);
/* For gf_http_server_options.app_free. */
void gf_http_api_free_app(void *api);
/* An api (api_opt) and the server that serves it (srv_opt, whose handler, app and app_free
 * are filled in: the handler stays when set — a service's own handler around
 * gf_http_api_begin/_end — else gf_http_api_handle). The server owns the api and frees it when
 * it stops; NULL (nothing left behind) when either cannot start. */
struct gf_http_server *gf_http_api_start(const struct gf_http_api_options *api_opt,
                                         struct gf_http_server_options *srv_opt, int *bound_port);

/* One request, as the route's run function sees it. A service that needs more per request
 * embeds this as the first member of its own struct and converts back with
 * GF_HTTP_CTX_OF (see backend/api.c). */
struct gf_http_ctx {
    struct gf_http_api *api;
    void *app; /* the api's */
    const struct gf_http_request *req;
    struct gf_http_response *resp;
    const char *cid;
    const struct gf_http_route *route; /* NULL when no route took the request (404, 405) */
    unsigned method;                   /* the route's method that took it: GF_HTTP_GET, ... */
    int64_t path_id;                   /* the :id of a "/:id" route */
    /* The error code answered (a constant that outlives the request), for the metrics and the
     * log line; set by the reply helpers, or by a route answering an error itself. */
    const char *error;
    /* A failure that is an expected answer — not ready yet, which probes ask often: logged at
     * debug, not warn. Set by the readiness gate, or by a route answering its own readiness. */
    bool expected;
    int64_t start_us;
    /* Who called: valid when signed_in (set for every route but a public one). */
    bool signed_in;
    struct gf_auth_claims who;
};
#define GF_HTTP_CTX_OF(type, member, c) ((type *)((char *)(c)-offsetof(type, member)))

/* The whole life of a request: begin, the route's run, end. The gf_http_handler of a server
 * whose app is the api. */
void gf_http_api_handle(void *api, const struct gf_http_request *req,
                        struct gf_http_response *resp);
/* Fills c and finds the route of the request's path and method. true: c->route should run.
 * false: c->resp holds the answer already — 404 not_found, 405 method_not_allowed with
 * Allow naming every method of the path, the api's admit hook's (before anything else),
 * 401 (unauthenticated, token_expired, invalid_token) or 403 forbidden by the route's access,
 * or 503 not_ready (needs_ready, and not ready). */
bool gf_http_api_begin(struct gf_http_api *api, struct gf_http_ctx *c,
                       const struct gf_http_request *req, struct gf_http_response *resp);
/* Ends every request begun: Retry-After: 1 on a 503 that has none, the metrics, and one log
 * line for a failed request (warn for a 5xx but not_ready, which probes expect; debug for a
 * 4xx) with its method and path made safe. */
void gf_http_api_end(struct gf_http_ctx *c);

/* Answers obj (a new reference, taken) as compact JSON (gf_http_reply_json); a NULL obj
 * (building it failed) is answered 500 internal. */
void gf_http_api_reply_json(struct gf_http_ctx *c, int status, json_t *obj);
/* Answers {"message","error":code,"correlationId"}; a message that is not valid UTF-8 (one cut
 * inside a character) gives way to the status's default message. */
void gf_http_api_reply_error(struct gf_http_ctx *c, int status, const char *code,
                             const char *message);
/* The answer to a failed operation: its HTTP status by the one table, code (NULL:
 * gf_status_str(st)) and message (NULL or empty: the status's default message). */
void gf_http_api_reply_status(struct gf_http_ctx *c, enum gf_status st, const char *code,
                              const char *message);
/* Answers GET /metrics: every registered metric, or 503 out_of_memory when they cannot be
 * rendered. */
void gf_http_api_reply_metrics(struct gf_http_ctx *c);

/* Whether the caller may act for user_id: an admin for anyone, a user for itself only. When
 * not, answers 403 forbidden and returns false. */
bool gf_http_api_may_act_for(struct gf_http_ctx *c, int64_t user_id);

/* Whether resp has a header of this name (case-insensitive). */
bool gf_http_response_has_header(const struct gf_http_response *resp, const char *name);

#endif
