/* The gxp service: the GXP points ledger and participant of the two-phase commit.
 * Shared declarations of its files (one file per concern, see ARCHITECTURE.md). */
#ifndef GXP_H
#define GXP_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "gf/config.h"
#include "gf/db.h"
#include "gf/grpc.h"
#include "gf/status.h"
#include "gf/testable.h"
#include "gxp.pb-c.h"

/* ---- config.c -------------------------------------------------------------------------- */
struct gxp_config {
    char *grpc_addr;
    char *http_addr;
    int64_t http_max_connections;
    int64_t http_idle_timeout_s;
    int64_t http_header_timeout_ms;
    char *db_url;
    char *db_password;
    int64_t db_pool_size;
    int64_t db_pipelines;
    int64_t db_statement_timeout_ms;
    int64_t threads;
    char *publisher_conninfo;
    char *publisher_password;
    char *subscription_admin_url; /* "" = the subscription uses pool */
    char *subscription_admin_password;
    char *backend_addr;
    /* PEM files: mutual TLS on both gRPC sides, unless grpc_insecure. */
    char *tls_ca, *tls_cert, *tls_key;
    bool grpc_insecure;
    int64_t backend_deadline_ms;
    int64_t pending_timeout_ms;
    int64_t resolve_interval_ms;
    int64_t resolve_batch;
    int64_t getall_cap;
    int64_t retention_s;
    int64_t retention_interval_ms;
    int64_t retention_batch;
    int64_t retention_rounds;
    int64_t shutdown_grace_ms;
    char *amqp_url;
    char *amqp_password;
    char *amqp_ca;
    bool event_log;
    int log_level;
};
extern const struct gf_config_def gxp_config_defs[];
extern const size_t gxp_config_ndefs;
/* The rules that span variables, after gf_config_load: GXP_PUBLISHER_PASSWORD is refused when
 * GXP_PUBLISHER_CONNINFO carries a password of its own (libpq would take whichever comes
 * last: one place only); GXP_TLS_CA/_CERT/_KEY all set, or none and GXP_GRPC_INSECURE=true
 * (gf_grpc_tls_config_check). Logs each problem like gf_config_load; GF_EINVAL means exit 78. */
enum gf_status gxp_config_check(const struct gxp_config *cfg) GF_MUSTCHECK;

/* ---- the process-wide state the threads share ------------------------------------------ */
struct gxp_app {
    const struct gxp_config *cfg;
    const struct gf_grpc_tls *tls;   /* NULL: plaintext gRPC (GXP_GRPC_INSECURE) */
    struct gf_db_pool *pool;         /* multi-statement work: GetAll, resolver, subscription */
    struct gf_db_pool *admin_pool;   /* the subscription's, as a superuser; NULL = pool */
    struct gf_db_pipeline *pipeline; /* the single-statement RPCs */
    atomic_bool migrated;            /* the schema is in place: RPCs may run */
    atomic_bool subscribed;          /* transaction_outbox_sub exists and carries the table */
    atomic_bool stopping;            /* set once at shutdown; threads watch it */
};

/* ---- retention.c: finalized transactions and their decisions deleted past GXP_RETENTION_S,
 * in batches, by one replica at a time (safety conditions at the top of the file) ---------- */
struct gf_pruner;
/* Starts the passes (once the schema is in place); NULL when it cannot. Stop with
 * gf_pruner_stop (gf/prune.h). */
struct gf_pruner *retention_start(struct gxp_app *app);

/* ---- ledger.c: the RPC handlers -------------------------------------------------------- */
/* Registers the ledger's metrics (gxp_prepares_total, gxp_pipeline_in_flight): at start. */
void ledger_metrics_init(void);
extern const struct gf_grpc_method ledger_methods[];
extern const int ledger_nmethods;
/* The service's one table from status to gRPC code. */
grpc_status_code ledger_grpc_code(enum gf_status st);

/* The validation each RPC runs before any database work (pure): declared here for the fuzz
 * target, tests/fuzz/fuzz_gxp_rpc.c, which links gxp_core as it is; unit-tested too. */
/* A prepare request: on success writes the normalized correlation id and the correlation
 * time (epoch µs, or INT64_MIN when none was sent). */
enum gf_status ledger_check_prepare(const Gxp__TransactionPrepareRequest *req, char cid[37],
                                    int64_t *cts_us, const char **why) GF_MUSTCHECK;
/* The fields CreateUserBalance and GetUserBalance share (pure): userId positive, an optional
 * correlationId that must be a UUID (cid_out gets it normalized, or "" when absent) and an
 * optional correlationTimestamp in range. *why says what is wrong on GF_EINVAL. */
enum gf_status ledger_check_user(uint32_t user, const char *cid,
                                 const Google__Protobuf__Timestamp *ts, char cid_out[37],
                                 const char **why) GF_MUSTCHECK;
/* GetTransaction's request (pure): its correlationId must be a UUID; cid gets it normalized. */
enum gf_status ledger_check_get_transaction(const Gxp__GetTransactionRequest *req, char cid[37],
                                            const char **why) GF_MUSTCHECK;
/* GetAll's request (pure): after_transaction must fit a bigint; *limit is the page size, the
 * request's limit cut to cap (0 = cap). */
enum gf_status ledger_check_get_all(const Gxp__GetAllRequest *req, int64_t cap, int64_t *limit,
                                    const char **why) GF_MUSTCHECK;

/* ---- resolver.c: PENDING transactions past the timeout ask the coordinator ------------ */
struct resolver;
struct resolver *resolver_start(struct gxp_app *app);
void resolver_stop(struct resolver *r); /* joins; NULL is a no-op */

/* ---- subscription.c: gxp-db subscribes to backend-db's outbox ------------------------- */
struct subscription;
struct subscription *subscription_start(struct gxp_app *app);
void subscription_stop(struct subscription *s);

/* ---- health.c: /healthz, /readyz, /metrics ---------------------------------------------- */
struct gf_http_server;
struct gf_http_server *health_start(struct gxp_app *app);

/* ---- console.c: gxp's part of the console feed (gf/console_feed.h) -------------------------- */
struct gxp_console;
/* Starts the thread that LISTENs for gxp_finalized and notes each finalization; NULL (logged)
 * when it cannot. */
struct gxp_console *gxp_console_start(struct gxp_app *app);
void gxp_console_stop(struct gxp_console *c); /* NULL is a no-op */
/* gxp's figures for the feed, once a second (gf_console_feed_options.stats). */
json_t *gxp_console_stats(void *arg);
/* The PENDING transactions the resolver counted at its last pass; -1 before the first. */
int64_t resolver_pending_rows(void);

#endif
