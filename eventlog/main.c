/* eventlog: consumes the system's events from RabbitMQ and keeps a per-user event log.
 * The story: command line (--help, --check-config) → logging → config → database pool →
 * HTTP port → schema → consumer → wait for SIGTERM/SIGINT → drain (the consumer's batch, then
 * HTTP) → clean up. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "eventlog.h"
#include "gf/console_feed.h"
#include "gf/http.h"
#include "gf/log.h"
#include "gf/migrate.h"
#include "gf/prune.h"
#include "gf/service.h"

extern const struct gf_migration eventlog_migrations[];
extern const int eventlog_migrations_count;

static enum gf_status check_config(const void *cfg)
{
    return eventlog_config_check((const struct eventlog_config *)cfg);
}

int main(int argc, char **argv)
{
    int rc = EXIT_FAILURE;
    struct eventlog_config cfg = {0};
    struct eventlog_app app = {.cfg = &cfg, .consumer_mu = PTHREAD_MUTEX_INITIALIZER};
    struct gf_http_server *http = NULL;
    struct consumer *consumer = NULL;
    struct gf_pruner *retention = NULL;
    bool feeding = false;

    int early = gf_service_configure(argc, argv, "eventlog", eventlog_config_defs,
                                     eventlog_config_ndefs, &cfg, check_config);
    if (early >= 0)
        return early;

    /* Signals are taken by sigwait in this thread only: block them before any thread starts,
     * so every thread inherits the mask. */
    sigset_t signals;
    gf_service_block_signals(&signals);

    gf_log_init("eventlog", (enum gf_log_level)cfg.log_level);
    gf_config_log(eventlog_config_defs, eventlog_config_ndefs, &cfg);

    char why[256];
    app.keys = gf_auth_keys_load(cfg.auth_keys_dir, NULL, cfg.auth_issuer, cfg.auth_audience, why,
                                 sizeof why);
    if (app.keys == NULL) {
        GF_ERROR("EVENTLOG_AUTH_KEYS: %s", why);
        rc = GF_EX_CONFIG;
        goto out;
    }

    struct gf_db_pool_options popt = {
        .conninfo = cfg.db_url,
        .password = cfg.db_password,
        .size = (int)cfg.db_pool_size,
        .acquire_timeout_ms = 2000,
        .statement_timeout_ms = (int)cfg.db_statement_timeout_ms,
        .application_name = "eventlog",
    };
    app.pool = gf_db_pool_new(&popt);
    if (app.pool == NULL) {
        GF_ERROR("cannot create the database pool");
        goto out;
    }
    gf_db_pool_register_metrics(app.pool, "main");
    http = api_start(&app);
    if (http == NULL)
        goto out;
    enum gf_startup started = gf_service_migrate(app.pool, "eventlog", eventlog_migrations,
                                                 eventlog_migrations_count, &signals);
    if (started != GF_STARTED) {
        rc = started == GF_STOPPED ? EXIT_SUCCESS : EXIT_FAILURE;
        goto out;
    }
    atomic_store(&app.migrated, true);

    /* The console's feed (gf/console_feed.h): each event stored, best effort. */
    char replica[64];
    gf_console_replica(replica, sizeof replica);
    struct gf_console_feed_options fopt = {.amqp = {.url = cfg.amqp_url,
                                                    .password = cfg.amqp_password,
                                                    .ca_file = cfg.amqp_ca,
                                                    .heartbeat_s = (int)cfg.amqp_heartbeat_s,
                                                    .timeout_ms = 5000},
                                           .service = "eventlog",
                                           .replica = replica,
                                           .stats = consumer_console_stats};
    feeding = gf_console_feed_start(&fopt) == GF_OK;
    if (!feeding) {
        GF_ERROR("cannot start the console feed");
        goto out;
    }
    /* Only now: a batch needs the table. Until then the broker keeps the events. */
    consumer = consumer_start(&app);
    if (consumer == NULL)
        goto out;
    if ((retention = retention_start(&app)) == NULL)
        goto out;
    pthread_mutex_lock(&app.consumer_mu);
    app.consumer = consumer;
    pthread_mutex_unlock(&app.consumer_mu);
    GF_INFO("eventlog ready");

    gf_service_wait_signal(&signals, -1);
    rc = EXIT_SUCCESS;

out:
    /* Drain, bounded by the watchdog: the consumer finishes its batch (stored and acked, or
     * left to the broker), then in-flight HTTP requests finish, then the pool goes. */
    gf_service_drain_begin(cfg.shutdown_grace_ms);
    pthread_mutex_lock(&app.consumer_mu);
    consumer = app.consumer;
    app.consumer = NULL;
    pthread_mutex_unlock(&app.consumer_mu);
    consumer_stop(consumer);
    gf_pruner_stop(retention);
    if (feeding)
        gf_console_feed_stop();
    gf_http_server_stop(http);
    gf_db_pool_free(app.pool);
    gf_auth_keys_free(app.keys);
    gf_service_drain_end();
    GF_INFO("eventlog stopped rc=%d", rc);
    gf_config_free(eventlog_config_defs, eventlog_config_ndefs, &cfg);
    pthread_mutex_destroy(&app.consumer_mu);
    return rc;
}
