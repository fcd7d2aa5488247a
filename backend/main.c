/* backend: the core system behind the HTTP API, and the coordinator of the two-phase commit
 * with gxp. The story: logging → config → database pool and gxp channel → HTTP API →
 * schema → gRPC (ResolveTransaction) → wait for SIGTERM/SIGINT → drain → clean up. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "backend.h"
#include "gf/clock.h"
#include "gf/http.h"
#include "gf/log.h"
#include "gf/migrate.h"

extern const struct gf_migration backend_migrations[];
extern const int backend_migrations_count;

/* Waits up to ms (forever when negative) for SIGTERM/SIGINT; true when one came. */
static bool wait_signal(const sigset_t *set, int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    for (;;) {
        int sig = ms < 0 ? sigwaitinfo(set, NULL) : sigtimedwait(set, NULL, &ts);
        if (sig > 0) {
            GF_INFO("signal received sig=%d: shutting down", sig);
            return true;
        }
        if (errno == EAGAIN)
            return false;
    }
}

enum startup { STARTED, STOPPED, FAILED };

/* Applies the schema (and the publication), retrying while backend-db is unreachable. */
static enum startup migrate(struct backend_app *app, const sigset_t *signals)
{
    struct gf_backoff bo;
    gf_backoff_init(&bo, 200, 10000);
    for (;;) {
        struct gf_db_conn *c = NULL;
        enum gf_status st = gf_db_acquire(app->pool, &c);
        if (st == GF_OK) {
            st = gf_migrate(c, "backend", backend_migrations, backend_migrations_count);
            gf_db_release(app->pool, c);
            if (st == GF_OK) {
                atomic_store(&app->migrated, true);
                return STARTED;
            }
            if (st == GF_ECONFLICT || st == GF_EINVAL || st == GF_EINTERNAL)
                return FAILED;
        }
        GF_LOG_RL(GF_LOG_WARN, 10000, "backend-db not ready, retrying status=%s",
                  gf_status_str(st));
        if (wait_signal(signals, gf_backoff_next(&bo)))
            return STOPPED;
    }
}

int main(void)
{
    int rc = EXIT_FAILURE;
    struct backend_config cfg = {0};
    struct backend_app app = {.cfg = &cfg};
    struct gf_http_server *http = NULL;
    struct gf_grpc_server *grpc = NULL;

    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    gf_log_init("backend", GF_LOG_INFO);
    if (gf_config_load(backend_config_defs, backend_config_ndefs, &cfg) != GF_OK) {
        GF_ERROR("invalid configuration: exiting");
        gf_config_free(backend_config_defs, backend_config_ndefs, &cfg);
        return GF_EX_CONFIG;
    }
    gf_log_init("backend", (enum gf_log_level)cfg.log_level);
    gf_config_log(backend_config_defs, backend_config_ndefs, &cfg);

    struct gf_db_pool_options popt = {
        .conninfo = cfg.db_url,
        .password = cfg.db_password,
        .size = (int)cfg.db_pool_size,
        .acquire_timeout_ms = 2000,
        .statement_timeout_ms = (int)cfg.db_statement_timeout_ms,
        .application_name = "backend",
    };
    app.pool = gf_db_pool_new(&popt);
    app.gxp = gf_grpc_client_new(cfg.gxp_addr);
    if (app.pool == NULL || app.gxp == NULL) {
        GF_ERROR("cannot create the database pool or the gxp channel");
        goto out;
    }
    http = api_start(&app);
    if (http == NULL)
        goto out;
    enum startup started = migrate(&app, &signals);
    if (started != STARTED) {
        rc = started == STOPPED ? EXIT_SUCCESS : EXIT_FAILURE;
        goto out;
    }
    struct gf_grpc_server_options gopt = {
        .addr = cfg.grpc_addr,
        .threads = 4,
        .max_message_bytes = 64 * 1024,
        .methods = coord_methods,
        .nmethods = coord_nmethods,
        .app = &app,
        .grpc_code = coord_grpc_code,
    };
    grpc = gf_grpc_server_start(&gopt, NULL);
    if (grpc == NULL)
        goto out;
    GF_INFO("backend ready deployment=%s", cfg.deployment_name);

    wait_signal(&signals, -1);
    rc = EXIT_SUCCESS;

out:
    /* Drain: in-flight HTTP requests and gRPC calls finish first, then the pools. */
    gf_http_server_stop(http);
    gf_grpc_server_stop(grpc, (int)cfg.shutdown_grace_ms);
    gf_grpc_client_free(app.gxp);
    gf_db_pool_free(app.pool);
    GF_INFO("backend stopped rc=%d", rc);
    gf_config_free(backend_config_defs, backend_config_ndefs, &cfg);
    return rc;
}
