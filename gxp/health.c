/* gxp's small HTTP port: /healthz (the process answers), /readyz (its database answers, the
 * schema is in place and — when GXP_PUBLISHER_CONNINFO names backend-db — the subscription is
 * streaming: without it decisions reach gxp only through the resolver, after the pending
 * timeout, so a replica that cannot see them is not fit to serve) and /metrics (Prometheus). */
#include <stdlib.h>
#include <string.h>

#include "gf/http.h"
#include "gf/log.h"
#include "gf/metrics.h"
#include "gxp.h"

static double subscribed(void *arg)
{
    struct gxp_app *app = arg;
    return atomic_load(&app->subscribed) ? 1 : 0;
}

static void handle(void *arg, const struct gf_http_request *req, struct gf_http_response *resp)
{
    struct gxp_app *app = arg;
    const char *path = gf_http_path(req);
    bool get = strcmp(gf_http_method(req), "GET") == 0 || strcmp(gf_http_method(req), "HEAD") == 0;
    if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
        strcmp(path, "/metrics") == 0) {
        if (!get) {
            gf_http_add_header(resp, "Allow", "GET, HEAD");
            gf_http_set_body(resp, 405, "application/json",
                             "{\"message\":\"method not allowed\",\"error\":\"method_not_allowed\","
                             "\"correlationId\":\"%s\"}",
                             gf_http_cid(req));
            return;
        }
    }
    if (strcmp(path, "/healthz") == 0) {
        gf_http_set_body(resp, 200, "application/json", "{\"status\":\"ok\"}");
    } else if (strcmp(path, "/readyz") == 0) {
        bool migrated = atomic_load(&app->migrated);
        enum gf_status st = migrated ? gf_db_ping(app->pool) : GF_EUNAVAILABLE;
        bool sub = atomic_load(&app->subscribed);
        bool wanted = app->cfg->publisher_conninfo != NULL && app->cfg->publisher_conninfo[0];
        bool ready = st == GF_OK && (sub || !wanted);
        /* Why not, in gxp_subscription_state{state} and the log. */
        gf_http_set_body(resp, ready ? 200 : 503, "application/json",
                         "{\"status\":\"%s\",\"database\":\"%s\",\"schema\":\"%s\","
                         "\"subscription\":\"%s\"}",
                         ready ? "ready" : "unavailable", gf_status_str(st),
                         migrated ? "ready" : "pending",
                         !wanted ? "none"
                         : sub   ? "streaming"
                                 : "not_streaming");
        if (!ready)
            gf_http_add_header(resp, "Retry-After", "1");
    } else if (strcmp(path, "/metrics") == 0) {
        if (!gf_http_reply_metrics(resp))
            gf_http_set_body(resp, 503, "text/plain", "metrics unavailable\n");
    } else {
        gf_http_set_body(resp, 404, "application/json",
                         "{\"message\":\"no such path\",\"error\":\"not_found\","
                         "\"correlationId\":\"%s\"}",
                         gf_http_cid(req));
    }
}

struct gf_http_server *health_start(struct gxp_app *app)
{
    gf_db_pool_register_metrics(app->pool);
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
        .handler = handle,
        .app = app,
    };
    return gf_http_server_start(&opt, NULL);
}
