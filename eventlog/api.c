/* eventlog's HTTP port: GET /eventlog/events (the log, keyset-paged), the service endpoints
 * /healthz, /readyz and /metrics, the error model {message,error,correlationId} and the
 * per-route metrics. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "eventlog.h"
#include "gf/clock.h"
#include "gf/http.h"
#include "gf/log.h"
#include "gf/metrics.h"

#define JSON_TYPE "application/json"

/* ---- the one table from status to HTTP code ----------------------------------------------- */

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
    case GF_PENDING:
        return 500;
    }
    return 500;
}

/* ---- one request ---------------------------------------------------------------------------- */

struct ctx {
    struct eventlog_app *app;
    const struct gf_http_request *req;
    struct gf_http_response *resp;
    const char *cid;
    const char *error; /* the error code answered, for the log line */
};

static const char *default_message(int status)
{
    switch (status) {
    case 400:
        return "the request is invalid";
    case 404:
        return "not found";
    case 503:
        return "a dependency is unavailable; retry later";
    case 504:
        return "a dependency did not answer in time; retry later";
    default:
        return "internal error";
    }
}

/* Answers obj (a new reference, taken) as compact JSON; a NULL obj (building it failed) is a
 * 500. */
static void reply_json(struct ctx *c, int status, json_t *obj)
{
    if (!gf_http_reply_json(c->resp, status, obj, c->cid))
        c->error = "internal";
}

static void reply_error(struct ctx *c, int status, const char *code, const char *message)
{
    c->error = code;
    reply_json(
        c, status,
        json_pack("{s:s,s:s,s:s}", "message", message, "error", code, "correlationId", c->cid));
}

/* A failed read: its status through the one table; no internal detail reaches the client. */
static void reply_status(struct ctx *c, enum gf_status st)
{
    int status = api_http_code(st);
    reply_error(c, status, gf_status_str(st), default_message(status));
}

/* ---- the operations ------------------------------------------------------------------------- */

/* The query string as query_parse wants it. The lib looks parameters up by name only, so the
 * known names are looked up; see query.c for the rules. */
struct query_collect {
    struct query_arg *args;
    size_t n, max, total;
    const char *nul_key; /* a parameter whose value holds a NUL byte */
};

static void collect_one(void *arg, const char *key, const char *value, size_t value_len)
{
    struct query_collect *q = arg;
    q->total++;
    if (value != NULL && strlen(value) != value_len && q->nul_key == NULL)
        q->nul_key = key;
    if (q->n < q->max)
        q->args[q->n++] = (struct query_arg){key, value};
}

/* Every query parameter as given, duplicates and unknown names included (query_parse refuses
 * them). -1 when there are more than max or a value holds a NUL byte (err filled). */
static long query_args(const struct gf_http_request *req, struct query_arg *args, size_t max,
                       struct api_err *err)
{
    struct query_collect q = {.args = args, .max = max};
    gf_http_query_each(req, collect_one, &q);
    if (q.total > max) {
        snprintf(err->message, sizeof err->message, "too many query parameters (at most %zu)", max);
        err->code = "invalid_parameter";
        return -1;
    }
    if (q.nul_key != NULL) {
        char key[40];
        event_log_safe(key, sizeof key, q.nul_key);
        snprintf(err->message, sizeof err->message, "query parameter %s holds a NUL byte", key);
        err->code = "invalid_parameter";
        return -1;
    }
    return (long)q.n;
}

/* {"events":[...],"next":N|null}. Newest first without after=, and next is then the newest
 * id (after=next follows what comes later); with after=, oldest first, and next is the last
 * id when the page is full (null: nothing more now). */
static void run_events(struct ctx *c)
{
    struct query_arg args[8];
    struct api_err err = {0};
    struct events_query q;
    long n = query_args(c->req, args, sizeof args / sizeof args[0], &err);
    if (n < 0 || query_parse(args, (size_t)n, c->app->cfg->list_cap, &q, &err) != GF_OK) {
        reply_error(c, 400, err.code, err.message);
        return;
    }
    json_t *events = NULL;
    int64_t first = 0, last = 0;
    enum gf_status st = store_list(c->app->pool, &q, &events, &first, &last);
    if (st != GF_OK) {
        reply_status(c, st);
        return;
    }
    int64_t next = 0;
    if (q.after < 0)
        next = first;
    else if ((int64_t)json_array_size(events) == q.limit)
        next = last;
    reply_json(c, 200,
               json_pack("{s:o,s:o}", "events", events, "next",
                         next > 0 ? json_integer((json_int_t)next) : json_null()));
}

static void run_healthz(struct ctx *c)
{
    reply_json(c, 200, json_pack("{s:s}", "status", "ok"));
}

/* Ready when the schema is in place, eventlog-db answers and the consumer is connected. */
static void run_readyz(struct ctx *c)
{
    bool migrated = atomic_load(&c->app->migrated);
    enum gf_status db = gf_db_ping(c->app->pool);
    pthread_mutex_lock(&c->app->consumer_mu);
    bool consuming = consumer_ready(c->app->consumer);
    pthread_mutex_unlock(&c->app->consumer_mu);
    bool ready = migrated && db == GF_OK && consuming;
    if (!ready)
        c->error = "not_ready";
    reply_json(c, ready ? 200 : 503,
               json_pack("{s:s,s:s,s:s,s:s}", "status", ready ? "ready" : "unavailable", "schema",
                         migrated ? "ready" : "pending", "database", gf_status_str(db), "broker",
                         consuming ? "consuming" : "disconnected"));
}

static void run_metrics(struct ctx *c)
{
    if (!gf_http_reply_metrics(c->resp))
        reply_error(c, 503, "out_of_memory", "metrics unavailable");
}

/* ---- routes --------------------------------------------------------------------------------- */

struct route {
    const char *path;
    bool needs_schema; /* answers 503 until the migrations ran */
    void (*run)(struct ctx *c);
};

/* Every route is GET (and HEAD). */
static const struct route routes[] = {
    {"/eventlog/events", true, run_events},
    {"/healthz", false, run_healthz},
    {"/readyz", false, run_readyz},
    {"/metrics", false, run_metrics},
};
#define NROUTES (sizeof routes / sizeof routes[0])
#define UNMATCHED NROUTES /* the metrics slot of 404 */

/* The route of path, or UNMATCHED. "/eventlog/events/" is the same as without the slash. */
static size_t route_of(const char *path)
{
    for (size_t i = 0; i < NROUTES; i++) {
        size_t n = strlen(routes[i].path);
        if (strncmp(path, routes[i].path, n) == 0 &&
            (path[n] == '\0' || (i == 0 && path[n] == '/' && path[n + 1] == '\0')))
            return i;
    }
    return UNMATCHED;
}

/* ---- metrics -------------------------------------------------------------------------------- */

/* Per route a latency histogram registered at start, and a counter per status code
 * registered on its first use (most routes never see most codes). */
static struct gf_histogram *route_latency[NROUTES + 1];
static _Atomic(struct gf_counter *) route_count[NROUTES + 1][600];

static const char *route_label(size_t ri)
{
    return ri == UNMATCHED ? "unmatched" : routes[ri].path;
}

/* Under consumer_mu, so a consumer being stopped is never read (registry lock, then it). */
static double consumer_connected(void *arg)
{
    struct eventlog_app *app = arg;
    pthread_mutex_lock(&app->consumer_mu);
    bool ready = consumer_ready(app->consumer);
    pthread_mutex_unlock(&app->consumer_mu);
    return ready ? 1 : 0;
}

static void metrics_init(struct eventlog_app *app)
{
    for (size_t ri = 0; ri <= NROUTES; ri++) {
        char labels[96];
        snprintf(labels, sizeof labels, "route=\"%s\"", route_label(ri));
        route_latency[ri] = gf_metrics_histogram("eventlog_http_request_duration_seconds",
                                                 "HTTP handling time, by route", labels);
    }
    gf_db_pool_register_metrics(app->pool);
    gf_metrics_gauge_fn("eventlog_consumer_connected",
                        "1 while the consumer is connected and consuming eventlog.events", "",
                        consumer_connected, app);
}

static void count(size_t ri, int status, int64_t us)
{
    if (status < 100 || status > 599)
        status = 500;
    struct gf_counter *c = atomic_load_explicit(&route_count[ri][status], memory_order_acquire);
    if (c == NULL) {
        /* Two threads may both register: the registry returns the same series to both. */
        char labels[128];
        snprintf(labels, sizeof labels, "route=\"%s\",code=\"%d\"", route_label(ri), status);
        c = gf_metrics_counter("eventlog_http_requests_total",
                               "HTTP requests answered, by route and status code", labels);
        atomic_store_explicit(&route_count[ri][status], c, memory_order_release);
    }
    gf_counter_add(c, 1);
    gf_histogram_observe_us(route_latency[ri], us);
}

/* ---- the request's life --------------------------------------------------------------------- */

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
    /* Not being ready yet is an answer, not a failure: probes ask often. */
    bool expected = c->error != NULL && strcmp(c->error, "not_ready") == 0;
    enum gf_log_level level = status >= 500 && !expected ? GF_LOG_WARN : GF_LOG_DEBUG;
    if (status < 400 || !gf_log_enabled(level))
        return;
    char method[16], path[96];
    event_log_safe(method, sizeof method, gf_http_method(c->req));
    event_log_safe(path, sizeof path, gf_http_path(c->req));
    gf_log(level, "api request failed method=%s path=%s status=%d error=%s us=%lld", method, path,
           status, c->error ? c->error : "-", (long long)us);
}

static void handle(void *arg, const struct gf_http_request *req, struct gf_http_response *resp)
{
    int64_t t0 = gf_mono_us();
    struct ctx c = {.app = arg, .req = req, .resp = resp, .cid = gf_http_cid(req)};
    const char *method = gf_http_method(req);
    size_t ri = route_of(gf_http_path(req));
    if (ri == UNMATCHED) {
        reply_error(&c, 404, "not_found", "no such path");
    } else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        gf_http_add_header(resp, "Allow", "GET, HEAD");
        reply_error(&c, 405, "method_not_allowed", "this method is not allowed on this path");
    } else if (routes[ri].needs_schema && !atomic_load(&c.app->migrated)) {
        reply_error(&c, 503, "not_ready", "the service is starting; retry later");
    } else {
        routes[ri].run(&c);
    }
    finish(&c, ri, gf_mono_us() - t0);
}

struct gf_http_server *api_start(struct eventlog_app *app)
{
    metrics_init(app);
    int threads = (int)app->cfg->http_threads;
    int max_connections = (int)app->cfg->http_max_connections;
    /* By default no more handlers than database connections, two kept for /readyz and the
     * background work: beyond that a request would only wait for the pool, holding a thread. */
    int max_inflight = (int)app->cfg->http_max_inflight;
    if (max_inflight == 0) {
        int pool = (int)app->cfg->db_pool_size - 2;
        max_inflight = gf_http_default_inflight(threads, 0);
        if (max_inflight > pool)
            max_inflight = pool > 1 ? pool : 1;
    }
    struct gf_http_server_options opt = {
        .addr = app->cfg->http_addr,
        .threads = threads,
        .max_connections = max_connections > threads ? max_connections : threads,
        .connection_timeout_s = (int)app->cfg->http_idle_timeout_s,
        .max_body = 4096, /* every route is a GET: no body is wanted */
        .max_inflight = max_inflight,
        .header_timeout_ms = (int)app->cfg->http_header_timeout_ms,
        .body_timeout_ms = (int)app->cfg->http_body_timeout_ms,
        .handler = handle,
        .app = app,
    };
    return gf_http_server_start(&opt, NULL);
}
