/* eventlog's HTTP port: GET /eventlog/events (the log, keyset-paged) and the service endpoints
 * /healthz, /readyz and /metrics, on lib's front end (gf/http_api.h: routes, the error model,
 * the per-route metrics). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog.h"
#include "gf/http.h"
#include "gf/http_api.h"
#include "gf/log.h"
#include "gf/metrics.h"

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
        gf_log_safe(key, sizeof key, q.nul_key);
        snprintf(err->message, sizeof err->message, "query parameter %s holds a NUL byte", key);
        err->code = "invalid_parameter";
        return -1;
    }
    return (long)q.n;
}

/* {"events":[...],"next":N|null}. Newest first without after=, and next is then the newest
 * id (after=next follows what comes later); with after=, oldest first, and next is the last
 * id when the page is full (null: nothing more now). */
static void run_events(struct gf_http_ctx *c)
{
    struct eventlog_app *app = c->app;
    struct query_arg args[8];
    struct api_err err = {0};
    struct events_query q;
    long n = query_args(c->req, args, sizeof args / sizeof args[0], &err);
    if (n < 0 || query_parse(args, (size_t)n, app->cfg->list_cap, &q, &err) != GF_OK) {
        gf_http_api_reply_error(c, 400, err.code, err.message);
        return;
    }
    /* An admin reads anyone's events; a user only its own (without ?userId=, its own). */
    if (c->who.role != GF_ROLE_ADMIN) {
        if (q.user_id == 0)
            q.user_id = c->who.user_id;
        else if (!gf_http_api_may_act_for(c, q.user_id))
            return;
    }
    json_t *events = NULL;
    int64_t first = 0, last = 0;
    enum gf_status st = store_list(app->pool, &q, &events, &first, &last);
    if (st != GF_OK) {
        gf_http_api_reply_status(c, st, NULL, NULL);
        return;
    }
    int64_t next = 0;
    if (q.after < 0)
        next = first;
    else if ((int64_t)json_array_size(events) == q.limit)
        next = last;
    gf_http_api_reply_json(c, 200,
                           json_pack("{s:o,s:o}", "events", events, "next",
                                     next > 0 ? json_integer((json_int_t)next) : json_null()));
}

static void run_healthz(struct gf_http_ctx *c)
{
    gf_http_api_reply_json(c, 200, json_pack("{s:s}", "status", "ok"));
}

/* Ready when the schema is in place, eventlog-db answers and the consumer is connected. */
static void run_readyz(struct gf_http_ctx *c)
{
    struct eventlog_app *app = c->app;
    bool migrated = atomic_load(&app->migrated);
    enum gf_status db = gf_db_ping(app->pool);
    pthread_mutex_lock(&app->consumer_mu);
    bool consuming = consumer_ready(app->consumer);
    pthread_mutex_unlock(&app->consumer_mu);
    bool ready = migrated && db == GF_OK && consuming;
    if (!ready) {
        c->error = "not_ready";
        c->expected = true;
    }
    gf_http_api_reply_json(c, ready ? 200 : 503,
                           json_pack("{s:s,s:s,s:s,s:s}", "status", ready ? "ready" : "unavailable",
                                     "schema", migrated ? "ready" : "pending", "database",
                                     gf_status_str(db), "broker",
                                     consuming ? "consuming" : "disconnected"));
}

/* ---- routes --------------------------------------------------------------------------------- */

/* Every route is GET (and HEAD); "/eventlog/events/" is the same as without the slash. */
static const struct gf_http_route routes[] = {
    {"/eventlog/events", GF_HTTP_GET, true, NULL, run_events, GF_HTTP_SIGNED_IN},
    {"/eventlog/events/", GF_HTTP_GET, true, NULL, run_events, GF_HTTP_SIGNED_IN},
    {"/healthz", GF_HTTP_GET, false, NULL, run_healthz, GF_HTTP_PUBLIC},
    {"/readyz", GF_HTTP_GET, false, NULL, run_readyz, GF_HTTP_PUBLIC},
    {"/metrics", GF_HTTP_GET, false, NULL, gf_http_api_reply_metrics, GF_HTTP_PUBLIC},
};

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
    gf_metrics_gauge_fn("eventlog_consumer_connected",
                        "1 while the consumer is connected and consuming eventlog.events", "",
                        consumer_connected, app);
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
    };
    return gf_http_api_start(
        &(struct gf_http_api_options){.service = "eventlog",
                                      .routes = routes,
                                      .nroutes = sizeof routes / sizeof routes[0],
                                      .ready = &app->migrated,
                                      .app = app,
                                      .auth = app->keys,
                                      .auth_leeway_s = app->cfg->auth_leeway_s},
        &opt, NULL);
}
