/* The services' HTTP front end of gf/http_api.h: routes, the error model, and the end of every
 * request (Retry-After, metrics, the log line). */
#include "gf/http_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gf/clock.h"
#include "gf/log.h"
#include "gf/metrics.h"

#define SERVICE_MAX 32
#define NMETHODS 5
/* Exact status codes remembered per route and method; a route answering more of them still
 * counts them all, through the registry's lock. */
#define CODE_SLOTS 16
/* Error series remembered per HTTP thread (most threads meet a handful). */
#define ERROR_CODE_MAX 48
#define ERROR_CACHE 32
/* A route's path is a label value: it fits in LABELS_MAX with the other labels. */
#define PATH_MAX_LEN 160
#define LABELS_MAX (PATH_MAX_LEN + 64)
/* Tokens a service remembers as verified (gf_auth_cache): a slot holds ~400 bytes, so ~400 KiB. */
#define TOKEN_SLOTS 1024

static const char *const method_names[NMETHODS] = {"GET", "POST", "PATCH", "PUT", "DELETE"};
static const char *const allow_names[NMETHODS] = {"GET, HEAD", "POST", "PATCH", "PUT", "DELETE"};

struct code_slot {
    atomic_int code; /* 0: free */
    _Atomic(struct gf_counter *) counter;
};

/* The figures of one route and method (and, last, of the requests no route took). */
struct route_figures {
    struct gf_histogram *latency;
    struct code_slot codes[CODE_SLOTS];
};

struct gf_http_api {
    char service[SERVICE_MAX];
    const struct gf_http_route *routes;
    size_t nroutes;
    const atomic_bool *ready;
    void *app;
    const struct gf_auth_keys *auth;
    struct gf_auth_cache *tokens; /* the tokens auth verified: a signature is checked once */
    int64_t auth_leeway_s;
    bool (*admit)(struct gf_http_ctx *c);
    struct route_figures *figures; /* nroutes * NMETHODS, then the unmatched one */
};

/* ---- the one table from status to HTTP code -------------------------------------------- */

int gf_http_api_code(enum gf_status st)
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
    case GF_EUNAUTHENTICATED:
        return 401;
    case GF_EFORBIDDEN:
        return 403;
    case GF_ERATELIMITED:
        return 429;
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

const char *gf_http_api_message(int status)
{
    switch (status) {
    case 400:
        return "the request is invalid";
    case 401:
        return "this request needs a valid bearer token (POST /auth/login gives one)";
    case 403:
        return "you are not allowed to do this";
    case 404:
        return "not found";
    case 409:
        return "the request conflicts with the current state";
    case 412:
        return "the resource changed since it was read";
    case 429:
        return "too many requests; retry later";
    case 503:
        return "a dependency is unavailable; retry later";
    case 504:
        return "a dependency did not answer in time; retry later";
    default:
        return "internal error";
    }
}

bool gf_http_path_id(const char *s, int64_t *id)
{
    if (s == NULL || *s == '\0')
        return false;
    int64_t v = 0;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return false;
        int d = *s - '0';
        if (v > (GF_HTTP_ID_MAX - d) / 10) /* v * 10 + d would pass the maximum */
            return false;
        v = v * 10 + d;
    }
    if (v < 1)
        return false;
    *id = v;
    return true;
}

/* ---- the api ------------------------------------------------------------------------------ */

static size_t figures_of(const struct gf_http_api *api, const struct gf_http_route *r,
                         unsigned method)
{
    if (r == NULL)
        return api->nroutes * NMETHODS;
    size_t mi = 0;
    while (mi + 1 < NMETHODS && !(method & (1u << mi)))
        mi++;
    return (size_t)(r - api->routes) * NMETHODS + mi;
}

static void route_labels(const struct gf_http_api *api, size_t fi, char *buf, size_t n)
{
    if (fi == api->nroutes * NMETHODS)
        snprintf(buf, n, "route=\"unmatched\",method=\"\"");
    else
        snprintf(buf, n, "route=\"%s\",method=\"%s\"", api->routes[fi / NMETHODS].path,
                 method_names[fi % NMETHODS]);
}

static bool valid_route(const struct gf_http_route *r)
{
    if (r->path == NULL || r->path[0] != '/' || strlen(r->path) > PATH_MAX_LEN || r->run == NULL ||
        r->methods == 0 || r->methods >= 1u << NMETHODS)
        return false;
    /* A label value we put out as it is: no quote, backslash or control character. */
    for (const char *p = r->path; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\')
            return false;
    }
    return true;
}

struct gf_http_api *gf_http_api_new(const struct gf_http_api_options *opt)
{
    struct gf_http_api *api = NULL;
    struct gf_http_api *res = NULL;
    if (opt == NULL || opt->service == NULL || opt->service[0] == '\0' ||
        strlen(opt->service) >= SERVICE_MAX || opt->routes == NULL || opt->nroutes == 0) {
        GF_ERROR("http api invalid options: need a service name and routes");
        goto out;
    }
    for (size_t i = 0; i < opt->nroutes; i++) {
        if (!valid_route(&opt->routes[i])) {
            GF_ERROR("http api invalid route #%zu path=%s", i,
                     opt->routes[i].path ? opt->routes[i].path : "(null)");
            goto out;
        }
        if (opt->routes[i].access != GF_HTTP_PUBLIC && opt->auth == NULL) {
            GF_ERROR("http api route %s needs a token and the api has no keys to verify one",
                     opt->routes[i].path);
            goto out;
        }
    }
    api = calloc(1, sizeof *api);
    if (api == NULL ||
        (api->figures = calloc(opt->nroutes * NMETHODS + 1, sizeof *api->figures)) == NULL) {
        GF_ERROR("http api out of memory service=%s", opt->service);
        goto out;
    }
    snprintf(api->service, sizeof api->service, "%s", opt->service);
    api->routes = opt->routes;
    api->nroutes = opt->nroutes;
    api->ready = opt->ready;
    api->app = opt->app;
    api->auth = opt->auth;
    if (opt->auth != NULL && (api->tokens = gf_auth_cache_new(opt->auth, TOKEN_SLOTS)) == NULL) {
        GF_ERROR("http api out of memory for its token cache service=%s", opt->service);
        goto out;
    }
    api->auth_leeway_s = opt->auth_leeway_s;
    api->admit = opt->admit;
    char name[SERVICE_MAX + 40], labels[LABELS_MAX];
    snprintf(name, sizeof name, "%s_http_request_duration_seconds", api->service);
    for (size_t fi = 0; fi <= api->nroutes * NMETHODS; fi++) {
        if (fi < api->nroutes * NMETHODS &&
            !(api->routes[fi / NMETHODS].methods & (1u << (fi % NMETHODS))))
            continue;
        route_labels(api, fi, labels, sizeof labels);
        api->figures[fi].latency =
            gf_metrics_histogram(name, "HTTP handling time, by route and method", labels);
    }
    res = api;
    api = NULL;
out:
    gf_http_api_free(api);
    return res;
}

void gf_http_api_free(struct gf_http_api *api)
{
    if (api == NULL)
        return;
    gf_auth_cache_free(api->tokens);
    free(api->figures);
    free(api);
}

void gf_http_api_free_app(void *api)
{
    gf_http_api_free(api);
}

struct gf_http_server *gf_http_api_start(const struct gf_http_api_options *api_opt,
                                         struct gf_http_server_options *srv_opt, int *bound_port)
{
    struct gf_http_api *api = gf_http_api_new(api_opt);
    if (api == NULL)
        return NULL;
    if (srv_opt->handler == NULL)
        srv_opt->handler = gf_http_api_handle;
    srv_opt->app = api;
    srv_opt->app_free = gf_http_api_free_app;
    struct gf_http_server *srv = gf_http_server_start(srv_opt, bound_port);
    if (srv == NULL)
        gf_http_api_free(api);
    return srv;
}

/* ---- routing ------------------------------------------------------------------------------ */

static unsigned method_of(const char *m)
{
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
        return GF_HTTP_GET;
    for (unsigned i = 1; i < NMETHODS; i++) {
        if (strcmp(m, method_names[i]) == 0)
            return 1u << i;
    }
    return 0;
}

static bool path_matches(const struct gf_http_route *r, const char *path, int64_t *id)
{
    size_t n = strlen(r->path);
    if (n > 4 && strcmp(r->path + n - 4, "/:id") == 0)
        return strncmp(path, r->path, n - 3) == 0 && gf_http_path_id(path + n - 3, id);
    return strcmp(path, r->path) == 0;
}

/* The route of the request's path and method into c; else answers 404 or 405 (with Allow). */
static bool route_find(struct gf_http_ctx *c)
{
    const struct gf_http_api *api = c->api;
    const char *path = gf_http_path(c->req);
    unsigned m = method_of(gf_http_method(c->req));
    unsigned allowed = 0;
    for (size_t i = 0; i < api->nroutes; i++) {
        int64_t id = 0;
        if (!path_matches(&api->routes[i], path, &id))
            continue;
        if (api->routes[i].methods & m) {
            c->route = &api->routes[i];
            c->method = m;
            c->path_id = id;
            return true;
        }
        allowed |= api->routes[i].methods;
    }
    if (allowed == 0) {
        gf_http_api_reply_error(c, 404, "not_found", "no such path");
        return false;
    }
    char allow[64] = "";
    for (int k = 0; k < NMETHODS; k++) {
        size_t len = strlen(allow);
        if (allowed & (1u << k))
            snprintf(allow + len, sizeof allow - len, "%s%s", len ? ", " : "", allow_names[k]);
    }
    gf_http_add_header(c->resp, "Allow", allow);
    gf_http_api_reply_error(c, 405, "method_not_allowed",
                            "this method is not allowed on this path");
    return false;
}

/* ---- who calls ------------------------------------------------------------------------------ */

/* 401 with the challenge of RFC 6750: the scheme, and why a token was refused. */
static void reply_unauthenticated(struct gf_http_ctx *c, const char *code, const char *message,
                                  bool token_sent)
{
    gf_http_add_header(c->resp, "WWW-Authenticate",
                       token_sent ? "Bearer realm=\"gf-svc\", error=\"invalid_token\""
                                  : "Bearer realm=\"gf-svc\"");
    gf_http_api_reply_error(c, 401, code, message);
}

/* The bearer token of the request, verified, into c->who; then the route's access. false: the
 * answer (401 or 403) is in c->resp. */
static bool authenticate(struct gf_http_ctx *c)
{
    const char *h = gf_http_header(c->req, "Authorization");
    if (h == NULL || h[0] == '\0') {
        reply_unauthenticated(c, "unauthenticated",
                              "this request needs a bearer token: Authorization: Bearer <token> "
                              "(POST /auth/login gives one)",
                              false);
        return false;
    }
    /* The scheme is case-insensitive (RFC 7235); one or more spaces before the token. */
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        reply_unauthenticated(c, "invalid_token",
                              "the Authorization header must be: Bearer <token>", true);
        return false;
    }
    const char *token = h + 7;
    while (*token == ' ')
        token++;
    enum gf_auth_error e = gf_auth_cache_verify(
        c->api->tokens, token, strlen(token), (int64_t)time(NULL), c->api->auth_leeway_s, &c->who);
    if (e != GF_AUTH_OK) {
        reply_unauthenticated(c, e == GF_AUTH_EXPIRED ? "token_expired" : "invalid_token",
                              gf_auth_error_message(e), true);
        return false;
    }
    c->signed_in = true;
    if (c->route->access == GF_HTTP_ADMIN && c->who.role != GF_ROLE_ADMIN) {
        gf_http_api_reply_error(c, 403, "forbidden", "this needs the admin role");
        return false;
    }
    return true;
}

bool gf_http_api_may_act_for(struct gf_http_ctx *c, int64_t user_id)
{
    if (c->signed_in && (c->who.role == GF_ROLE_ADMIN || c->who.user_id == user_id))
        return true;
    gf_http_api_reply_error(c, 403, "forbidden",
                            "a user may act only for itself: this names another user");
    return false;
}

bool gf_http_api_begin(struct gf_http_api *api, struct gf_http_ctx *c,
                       const struct gf_http_request *req, struct gf_http_response *resp)
{
    *c = (struct gf_http_ctx){.api = api,
                              .app = api->app,
                              .req = req,
                              .resp = resp,
                              .cid = gf_http_cid(req),
                              .start_us = gf_mono_us()};
    if (!route_find(c))
        return false;
    if (api->admit != NULL && !api->admit(c))
        return false;
    if (c->route->access != GF_HTTP_PUBLIC && !authenticate(c))
        return false;
    if (c->route->needs_ready && api->ready != NULL && !atomic_load(api->ready)) {
        gf_http_api_reply_error(c, 503, "not_ready", "the service is starting; retry later");
        c->expected = true;
        return false;
    }
    return true;
}

void gf_http_api_handle(void *api, const struct gf_http_request *req, struct gf_http_response *resp)
{
    struct gf_http_ctx c;
    if (gf_http_api_begin(api, &c, req, resp))
        c.route->run(&c);
    gf_http_api_end(&c);
}

/* ---- answers ------------------------------------------------------------------------------ */

void gf_http_api_reply_json(struct gf_http_ctx *c, int status, json_t *obj)
{
    if (!gf_http_reply_json(c->resp, status, obj, c->cid))
        c->error = "internal";
}

void gf_http_api_reply_error(struct gf_http_ctx *c, int status, const char *code,
                             const char *message)
{
    c->error = code;
    json_t *o =
        json_pack("{s:s,s:s,s:s}", "message", message, "error", code, "correlationId", c->cid);
    if (o == NULL) /* a message cut inside a UTF-8 character: say less rather than nothing */
        o = json_pack("{s:s,s:s,s:s}", "message", gf_http_api_message(status), "error", code,
                      "correlationId", c->cid);
    gf_http_api_reply_json(c, status, o);
}

void gf_http_api_reply_status(struct gf_http_ctx *c, enum gf_status st, const char *code,
                              const char *message)
{
    int status = gf_http_api_code(st);
    gf_http_api_reply_error(c, status, code != NULL ? code : gf_status_str(st),
                            message != NULL && message[0] != '\0' ? message
                                                                  : gf_http_api_message(status));
}

void gf_http_api_reply_metrics(struct gf_http_ctx *c)
{
    if (!gf_http_reply_metrics(c->resp))
        gf_http_api_reply_error(c, 503, "out_of_memory", "metrics unavailable");
}

bool gf_http_response_has_header(const struct gf_http_response *resp, const char *name)
{
    for (int i = 0; i < resp->nheaders; i++) {
        if (strcasecmp(resp->header_names[i], name) == 0)
            return true;
    }
    return false;
}

/* ---- the end of a request: metrics and the log line --------------------------------------- */

static struct gf_counter *register_requests(const struct gf_http_api *api, size_t fi, int status)
{
    char name[SERVICE_MAX + 40], labels[LABELS_MAX];
    snprintf(name, sizeof name, "%s_http_requests_total", api->service);
    route_labels(api, fi, labels, sizeof labels);
    size_t n = strlen(labels);
    snprintf(labels + n, sizeof labels - n, ",code=\"%d\"", status);
    return gf_metrics_counter(name, "HTTP requests answered, by route, method and status", labels);
}

/* The counter of this route, method and exact status: a slot claims the status, then holds its
 * series. Two threads may both register one: the registry hands both the same series. */
static struct gf_counter *request_counter(struct gf_http_api *api, size_t fi, int status)
{
    struct code_slot *slots = api->figures[fi].codes;
    for (int i = 0; i < CODE_SLOTS; i++) {
        int code = atomic_load_explicit(&slots[i].code, memory_order_acquire);
        if (code == 0 && atomic_compare_exchange_strong(&slots[i].code, &code, status)) {
            struct gf_counter *ctr = register_requests(api, fi, status);
            atomic_store_explicit(&slots[i].counter, ctr, memory_order_release);
            return ctr;
        }
        if (code != status)
            continue;
        struct gf_counter *ctr = atomic_load_explicit(&slots[i].counter, memory_order_acquire);
        if (ctr != NULL)
            return ctr;
        break; /* another thread is registering it this very moment */
    }
    return register_requests(api, fi, status);
}

/* Error answers by status and the body's error code: a few dozen series at most, since codes
 * are the API's own constants. Each HTTP thread remembers the series it met, so an error costs
 * the registry's lock only the first time a thread answers it. */
struct error_series {
    char service[SERVICE_MAX]; /* not the api's address: a freed api's may be reused */
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

static void count_error(const struct gf_http_api *api, int status, const char *code)
{
    if (code == NULL || code[0] == '\0')
        code = "unknown";
    for (int i = 0; i < error_cached; i++) {
        const struct error_series *e = &error_cache[i];
        if (e->status == status && strcmp(e->code, code) == 0 &&
            strcmp(e->service, api->service) == 0) {
            gf_counter_add(e->counter, 1);
            return;
        }
    }
    bool plain = plain_code(code);
    char name[SERVICE_MAX + 40], labels[128];
    snprintf(name, sizeof name, "%s_http_errors_total", api->service);
    snprintf(labels, sizeof labels, "status=\"%d\",error=\"%s\"", status, plain ? code : "other");
    struct gf_counter *ctr =
        gf_metrics_counter(name, "error answers, by HTTP status and the body's error code", labels);
    if (plain && error_cached < ERROR_CACHE) {
        struct error_series *e = &error_cache[error_cached++];
        snprintf(e->service, sizeof e->service, "%s", api->service);
        e->status = status;
        snprintf(e->code, sizeof e->code, "%s", code);
        e->counter = ctr;
    }
    gf_counter_add(ctr, 1);
}

void gf_http_api_end(struct gf_http_ctx *c)
{
    struct gf_http_api *api = c->api;
    int64_t us = gf_mono_us() - c->start_us;
    int status = c->resp->status ? c->resp->status : 200;
    if (status == 503 && !gf_http_response_has_header(c->resp, "Retry-After"))
        gf_http_add_header(c->resp, "Retry-After", "1");
    int code = status >= 100 && status <= 599 ? status : 500; /* the server answers 500 then */
    size_t fi = figures_of(api, c->route, c->method);
    gf_counter_add(request_counter(api, fi, code), 1);
    gf_histogram_observe_us(api->figures[fi].latency, us);
    if (code < 400)
        return;
    count_error(api, code, c->error);
    /* Not being ready yet is an answer, not a failure: probes ask often. */
    bool expected = c->expected;
    enum gf_log_level level = code >= 500 && !expected ? GF_LOG_WARN : GF_LOG_DEBUG;
    if (!gf_log_enabled(level))
        return;
    char method[16], path[96];
    gf_log_safe(method, sizeof method, gf_http_method(c->req));
    gf_log_safe(path, sizeof path, gf_http_path(c->req));
    gf_log(level, "api request failed method=%s path=%s status=%d error=%s us=%lld", method, path,
           status, c->error ? c->error : "-", (long long)us);
}
