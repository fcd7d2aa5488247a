/* backend: the core system behind the HTTP API, and the coordinator of the two-phase commit
 * with gxp. The story: command line (--help, --check-config) → logging → config → TLS
 * material → database pool and gxp channel → admission control → HTTP API → event relay and
 * event log → schema → gRPC (ResolveTransaction) → wait for SIGTERM/SIGINT → drain → clean
 * up. */
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "admission.h"
#include "backend.h"
#include "gf/console_feed.h"
#include "gf/events.h"
#include "gf/http.h"
#include "gf/log.h"
#include "gf/migrate.h"
#include "gf/prune.h"
#include "gf/service.h"
#include "read_cache.h"
#include "write_gate.h"

extern const struct gf_migration backend_migrations[];
extern const int backend_migrations_count;

static enum gf_status check_config(const void *cfg)
{
    return backend_config_check((const struct backend_config *)cfg);
}

int main(int argc, char **argv)
{
    int rc = EXIT_FAILURE;
    struct backend_config cfg = {0};
    struct backend_app app = {.cfg = &cfg};
    struct gf_http_server *http = NULL;
    struct gf_grpc_server *grpc = NULL;
    struct gf_amqp_consumer *event_log = NULL;
    struct gf_pruner *retention = NULL;
    bool feeding = false;
    struct gf_grpc_tls *tls = NULL; /* both gRPC sides: the gxp channel and ResolveTransaction */
    struct gf_deadline grace;       /* of the drain */

    int early = gf_service_configure(argc, argv, "backend", backend_config_defs,
                                     backend_config_ndefs, &cfg, check_config);
    if (early >= 0)
        return early;

    sigset_t signals;
    gf_service_block_signals(&signals);

    gf_log_init("backend", (enum gf_log_level)cfg.log_level);
    gf_config_log(backend_config_defs, backend_config_ndefs, &cfg);
    if (cfg.grpc_insecure) {
        GF_WARN("grpc without TLS (BACKEND_GRPC_INSECURE=true): peers are not authenticated and "
                "calls travel in plaintext");
    } else if (gf_grpc_tls_load("BACKEND", cfg.tls_ca, cfg.tls_cert, cfg.tls_key, &tls) != GF_OK) {
        GF_ERROR("invalid configuration: exiting");
        rc = GF_EX_CONFIG;
        goto out;
    }

    char why[256];
    app.keys = gf_auth_keys_load(cfg.auth_keys_dir, cfg.auth_signing_key, cfg.auth_issuer,
                                 cfg.auth_audience, why, sizeof why);
    if (app.keys == NULL) {
        GF_ERROR("BACKEND_AUTH_KEYS / BACKEND_AUTH_SIGNING_KEY: %s", why);
        rc = GF_EX_CONFIG;
        goto out;
    }
    GF_INFO("token keys loaded keys=%zu signing_kid=%s", gf_auth_key_count(app.keys),
            gf_auth_signing_kid(app.keys));

    struct gf_db_pool_options popt = {
        .conninfo = cfg.db_url,
        .password = cfg.db_password,
        .size = (int)cfg.db_pool_size,
        .acquire_timeout_ms = 2000,
        .statement_timeout_ms = (int)cfg.db_statement_timeout_ms,
        .application_name = "backend",
        /* The one wait inside a transaction of ours is create-user's call to gxp (its deadline
         * and one short retry): above it, a paused or cut-off backend holds locks no longer
         * (5 s with the default 2 s deadline). */
        .idle_in_transaction_timeout_ms = (int)cfg.gxp_deadline_ms + 3000,
        /* Below that limit: statements a paused backend had already sent must not take a
         * row lock one after the other once its stuck session is ended. */
        .lock_timeout_ms = (int)cfg.db_lock_timeout_ms,
    };
    app.pool = gf_db_pool_new(&popt);
    app.gxp = gf_grpc_client_new_tls(cfg.gxp_addr, tls);
    if (app.pool == NULL || app.gxp == NULL) {
        GF_ERROR("cannot create the database pool or the gxp channel");
        goto out;
    }
    gf_db_pool_register_metrics(app.pool, "main"); /* the relay registers its own */
    /* Before the API: the routes read its state from their first request. */
    app.admission = admission_start(&app);
    if (app.admission == NULL)
        goto out;
    int writes = (int)cfg.write_concurrency;
    if (writes == 0) {
        cpu_set_t cpus;
        writes = sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? 2 * CPU_COUNT(&cpus) : 4;
    }
    app.writes = write_gate_new(writes);
    if (app.writes == NULL)
        GF_WARN("no memory for the write gate: buys and add-gxps run without a limit");
    else
        GF_INFO("write gate: %d buys and add-gxps at once, %lld ms of wait at most", writes,
                (long long)cfg.write_wait_ms);
    write_gate_register_metrics(app.writes);
    app.reads = read_cache_new((size_t)cfg.read_cache_bytes);
    read_cache_register_metrics(app.reads);
    http = api_start(&app);
    if (http == NULL)
        goto out;
    /* The relay publishes the outbox's events; it waits for the schema by itself. */
    app.relay = relay_start(&app);
    if (app.relay == NULL)
        goto out;
    /* The auction saga's runners; they too wait for the schema by themselves. */
    app.saga = saga_start(&app);
    if (app.saga == NULL)
        goto out;
    /* Retention: waits for the schema by itself, like the two above. */
    if ((retention = retention_start(&app)) == NULL)
        goto out;
    struct gf_amqp_options amqp = {.url = cfg.amqp_url,
                                   .password = cfg.amqp_password,
                                   .ca_file = cfg.amqp_ca,
                                   .name = "backend-event-log",
                                   .heartbeat_s = (int)cfg.amqp_heartbeat_s,
                                   .timeout_ms = 5000};
    if (cfg.event_log && (event_log = gf_events_log_start("backend", &amqp)) == NULL)
        goto out;
    /* The console: this process's notes go out on the feed (gf/console_feed.h), and every
     * process's notes come back to its streams (console.c). Both best effort. */
    char replica[64];
    gf_console_replica(replica, sizeof replica);
    struct gf_console_feed_options fopt = {.amqp = amqp, .service = "backend", .replica = replica};
    feeding = gf_console_feed_start(&fopt) == GF_OK;
    if (!feeding || (app.console = console_start(&app, &amqp)) == NULL) {
        GF_ERROR("cannot start the console");
        goto out;
    }
    enum gf_startup started = gf_service_migrate(app.pool, "backend", backend_migrations,
                                                 backend_migrations_count, &signals);
    if (started != GF_STARTED) {
        rc = started == GF_STOPPED ? EXIT_SUCCESS : EXIT_FAILURE;
        goto out;
    }
    atomic_store(&app.migrated, true);
    /* Before the first ready answer: a client told "ready" can log in as the operator. */
    if (auth_bootstrap_admin(&app) != GF_OK)
        goto out;
    atomic_store(&app.serving, true);
    struct gf_grpc_server_options gopt = {
        .addr = cfg.grpc_addr,
        .threads = 4,
        .max_message_bytes = 64 * 1024,
        .methods = coord_methods,
        .nmethods = coord_nmethods,
        .app = &app,
        .grpc_code = coord_grpc_code,
        .tls = tls,
    };
    grpc = gf_grpc_server_start(&gopt, NULL);
    if (grpc == NULL)
        goto out;
    GF_INFO("backend ready deployment=%s", cfg.deployment_name);

    gf_service_wait_signal(&signals, -1);
    rc = EXIT_SUCCESS;

out:
    /* Drain, bounded by the watchdog: in-flight HTTP requests and gRPC calls finish first
     * (sharing the grace period), then the pools. */
    grace = gf_service_drain_begin(cfg.shutdown_grace_ms);
    console_close(app.console); /* its streams would hold the HTTP server's stop */
    gf_http_server_stop(http);
    gf_grpc_server_stop(grpc, (int)gf_deadline_left_ms(grace));
    gf_amqp_consumer_stop(event_log);
    console_stop(app.console);
    if (feeding)
        gf_console_feed_stop();
    gf_pruner_stop(retention);
    saga_stop(app.saga);
    relay_stop(app.relay);
    admission_stop(app.admission);
    write_gate_free(app.writes);
    read_cache_free(app.reads);
    gf_grpc_client_free(app.gxp);
    gf_db_pool_free(app.pool);
    gf_grpc_tls_free(tls);
    gf_auth_keys_free(app.keys);
    gf_service_drain_end();
    GF_INFO("backend stopped rc=%d", rc);
    gf_config_free(backend_config_defs, backend_config_ndefs, &cfg);
    return rc;
}
