/* gxp's small HTTP port: /healthz (the process answers), /readyz (its database answers, the
 * schema is in place and — when GXP_PUBLISHER_CONNINFO names backend-db — the subscription is
 * streaming: without it decisions reach gxp only through the resolver, after the pending
 * timeout, so a replica that cannot see them is not fit to serve) and /metrics (Prometheus),
 * on lib's front end (gf/http_api.h). */
#include "gf/http.h"
#include "gf/http_api.h"
#include "gf/metrics.h"
#include "gxp.h"

static double subscribed(void *arg)
{
    struct gxp_app *app = arg;
    return atomic_load(&app->subscribed) ? 1 : 0;
}

static void run_healthz(struct gf_http_ctx *c)
{
    gf_http_api_reply_json(c, 200, json_pack("{s:s}", "status", "ok"));
}

static void run_readyz(struct gf_http_ctx *c)
{
    struct gxp_app *app = c->app;
    bool migrated = atomic_load(&app->migrated);
    enum gf_status st = migrated ? gf_db_ping(app->pool) : GF_EUNAVAILABLE;
    bool sub = atomic_load(&app->subscribed);
    bool wanted = app->cfg->publisher_conninfo != NULL && app->cfg->publisher_conninfo[0];
    bool ready = st == GF_OK && (sub || !wanted);
    /* Why not, in gxp_subscription_state{state} and the log. Retry-After comes with the 503. */
    if (!ready) {
        c->error = "not_ready";
        c->expected = true;
    }
    gf_http_api_reply_json(c, ready ? 200 : 503,
                           json_pack("{s:s,s:s,s:s,s:s}", "status", ready ? "ready" : "unavailable",
                                     "database", gf_status_str(st), "schema",
                                     migrated ? "ready" : "pending", "subscription",
                                     !wanted ? "none"
                                     : sub   ? "streaming"
                                             : "not_streaming"));
}

static const struct gf_http_route routes[] = {
    {"/healthz", GF_HTTP_GET, false, NULL, run_healthz, GF_HTTP_PUBLIC},
    {"/readyz", GF_HTTP_GET, false, NULL, run_readyz, GF_HTTP_PUBLIC},
    {"/metrics", GF_HTTP_GET, false, NULL, gf_http_api_reply_metrics, GF_HTTP_PUBLIC},
};

struct gf_http_server *health_start(struct gxp_app *app)
{
    gf_metrics_gauge_fn("gxp_subscription_ready",
                        "1 when transaction_outbox_sub is streaming: table copied (state r), an "
                        "apply worker running, no worker error in the last 15 s",
                        "", subscribed, app);
    /* Probes and scrapes only: every path is unlimited, so no admission limit applies. */
    struct gf_http_server_options opt = {
        .addr = app->cfg->http_addr,
        .threads = 2,
        .max_connections = (int)app->cfg->http_max_connections,
        .connection_timeout_s = (int)app->cfg->http_idle_timeout_s,
        .max_body = 4096,
        .header_timeout_ms = (int)app->cfg->http_header_timeout_ms,
        .body_timeout_ms = 3 * (int)app->cfg->http_header_timeout_ms,
    };
    return gf_http_api_start(
        &(struct gf_http_api_options){.service = "gxp",
                                      .routes = routes,
                                      .nroutes = sizeof routes / sizeof routes[0],
                                      .app = app},
        &opt, NULL);
}
