/* gxp: the GXP points ledger, participant of the backend's two-phase commit.
 * The story: command line (--help, --check-config) → logging → config → TLS material →
 * database pool and pipeline → health port → schema → gRPC server, resolver, subscription and
 * event log → wait for SIGTERM/SIGINT → drain → clean up. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gf/console_feed.h"
#include "gf/events.h"
#include "gf/http.h"
#include "gf/log.h"
#include "gf/migrate.h"
#include "gf/prune.h"
#include "gf/service.h"
#include "gxp.h"

extern const struct gf_migration gxp_migrations[];
extern const int gxp_migrations_count;

static enum gf_status check_config(const void *cfg)
{
    return gxp_config_check((const struct gxp_config *)cfg);
}

int main(int argc, char **argv)
{
    int rc = EXIT_FAILURE;
    struct gxp_config cfg = {0};
    struct gxp_app app = {.cfg = &cfg};
    struct gf_http_server *http = NULL;
    struct gf_grpc_server *grpc = NULL;
    struct resolver *resolver = NULL;
    struct gf_pruner *retention = NULL;
    struct subscription *subscription = NULL;
    struct gf_amqp_consumer *event_log = NULL;
    struct gxp_console *console = NULL;
    bool feeding = false;
    struct gf_grpc_tls *tls = NULL; /* both gRPC sides: gxp.Gxp and the resolver's channel */

    int early = gf_service_configure(argc, argv, "gxp", gxp_config_defs, gxp_config_ndefs, &cfg,
                                     check_config);
    if (early >= 0)
        return early;

    /* Signals are taken by sigwait in this thread only: block them before any thread
     * (gRPC's included) starts, so every thread inherits the mask. */
    sigset_t signals;
    gf_service_block_signals(&signals);

    gf_log_init("gxp", (enum gf_log_level)cfg.log_level);
    gf_config_log(gxp_config_defs, gxp_config_ndefs, &cfg);
    if (cfg.grpc_insecure) {
        GF_WARN("grpc without TLS (GXP_GRPC_INSECURE=true): peers are not authenticated and "
                "calls travel in plaintext");
    } else if (gf_grpc_tls_load("GXP", cfg.tls_ca, cfg.tls_cert, cfg.tls_key, &tls) != GF_OK) {
        GF_ERROR("invalid configuration: exiting");
        rc = GF_EX_CONFIG;
        goto out;
    }
    app.tls = tls;

    struct gf_db_pool_options popt = {
        .conninfo = cfg.db_url,
        .password = cfg.db_password,
        .size = (int)cfg.db_pool_size,
        .acquire_timeout_ms = 2000,
        .statement_timeout_ms = (int)cfg.db_statement_timeout_ms,
        .application_name = "gxp",
    };
    app.pool = gf_db_pool_new(&popt);
    popt.size = (int)cfg.db_pipelines;
    app.pipeline = gf_db_pipeline_new(&popt);
    if (app.pool == NULL || app.pipeline == NULL) {
        GF_ERROR("cannot create the database pool");
        goto out;
    }
    gf_db_pool_register_metrics(app.pool, "main");
    /* PostgreSQL 15 lets only a superuser create or alter a subscription: when one is
     * configured, the subscription manager alone uses it (one connection), and the ledger's
     * connections stay with its least-privileged role. */
    if (cfg.subscription_admin_url[0] != '\0') {
        struct gf_db_pool_options aopt = {
            .conninfo = cfg.subscription_admin_url,
            .password = cfg.subscription_admin_password,
            .size = 1,
            .acquire_timeout_ms = 2000,
            .statement_timeout_ms = (int)cfg.db_statement_timeout_ms,
            .application_name = "gxp-subscription",
        };
        app.admin_pool = gf_db_pool_new(&aopt);
        if (app.admin_pool == NULL) {
            GF_ERROR("cannot create the subscription's database pool");
            goto out;
        }
        gf_db_pool_register_metrics(app.admin_pool, "subscription");
    }
    gf_db_pipeline_register_metrics(app.pipeline, "pipeline");
    ledger_metrics_init(); /* before the port that shows them */
    http = health_start(&app);
    if (http == NULL)
        goto out;
    enum gf_startup started =
        gf_service_migrate(app.pool, "gxp", gxp_migrations, gxp_migrations_count, &signals);
    if (started != GF_STARTED) {
        rc = started == GF_STOPPED ? EXIT_SUCCESS : EXIT_FAILURE;
        goto out;
    }
    atomic_store(&app.migrated, true);

    struct gf_grpc_server_options gopt = {
        .addr = cfg.grpc_addr,
        .threads = (int)cfg.threads,
        .max_message_bytes = 64 * 1024,
        .methods = ledger_methods,
        .nmethods = ledger_nmethods,
        .app = &app,
        .grpc_code = ledger_grpc_code,
        .tls = tls,
    };
    grpc = gf_grpc_server_start(&gopt, NULL);
    if (grpc == NULL)
        goto out;
    resolver = resolver_start(&app);
    if (resolver == NULL)
        goto out;
    if ((retention = retention_start(&app)) == NULL)
        goto out;
    subscription = subscription_start(&app);
    struct gf_amqp_options amqp = {.url = cfg.amqp_url,
                                   .password = cfg.amqp_password,
                                   .ca_file = cfg.amqp_ca,
                                   .name = "gxp-event-log",
                                   .heartbeat_s = 30,
                                   .timeout_ms = 5000};
    if (cfg.event_log && (event_log = gf_events_log_start("gxp", &amqp)) == NULL)
        goto out;
    /* The console's feed: every finalization, heard on gxp-db (console.c), best effort. */
    char replica[64];
    gf_console_replica(replica, sizeof replica);
    struct gf_console_feed_options fopt = {
        .amqp = amqp, .service = "gxp", .replica = replica, .stats = gxp_console_stats};
    feeding = gf_console_feed_start(&fopt) == GF_OK;
    if (!feeding || (console = gxp_console_start(&app)) == NULL) {
        GF_ERROR("cannot start the console feed");
        goto out;
    }
    GF_INFO("gxp ready");

    gf_service_wait_signal(&signals, -1);
    rc = EXIT_SUCCESS;

out:
    /* Drain, bounded by the watchdog: in-flight calls finish first, then the background
     * threads, then the pools. */
    gf_service_drain_begin(cfg.shutdown_grace_ms);
    app.stopping = true;
    gf_grpc_server_stop(grpc, (int)cfg.shutdown_grace_ms);
    resolver_stop(resolver);
    gf_pruner_stop(retention);
    subscription_stop(subscription);
    gf_amqp_consumer_stop(event_log);
    gxp_console_stop(console);
    if (feeding)
        gf_console_feed_stop();
    gf_http_server_stop(http);
    gf_db_pipeline_free(app.pipeline);
    gf_db_pool_free(app.pool);
    gf_db_pool_free(app.admin_pool);
    gf_grpc_tls_free(tls);
    gf_service_drain_end();
    GF_INFO("gxp stopped rc=%d", rc);
    gf_config_free(gxp_config_defs, gxp_config_ndefs, &cfg);
    return rc;
}
