/* The eventlog service's configuration: every environment variable it reads, declared once. */
#include <stddef.h>

#include "eventlog.h"
#include "gf/log.h"

#define F(field) offsetof(struct eventlog_config, field)

const struct gf_config_def eventlog_config_defs[] = {
    {"EVENTLOG_HTTP_ADDR", GF_CFG_ADDR, "0.0.0.0:30070", 0, 0, false, F(http_addr),
     "HTTP listen address of /eventlog/events, /healthz, /readyz and /metrics (port 0 = "
     "ephemeral)"},
    {"EVENTLOG_DB_URL", GF_CFG_CONNINFO, "host=localhost port=5432 dbname=eventlog user=eventlog",
     0, 0, false, F(db_url), "libpq conninfo of eventlog-db"},
    {"EVENTLOG_DB_PASSWORD", GF_CFG_STRING, "", 0, 0, true, F(db_password),
     "password of eventlog-db (kept out of EVENTLOG_DB_URL so it can come from a Secret)"},
    {"EVENTLOG_DB_POOL_SIZE", GF_CFG_INT, "4", 2, 200, false, F(db_pool_size),
     "pooled database connections at most (one for the consumer, the rest for HTTP reads)"},
    {"EVENTLOG_DB_STATEMENT_TIMEOUT_MS", GF_CFG_INT, "5000", 0, 600000, false,
     F(db_statement_timeout_ms), "statement_timeout of every connection (0 = none)"},
    {"EVENTLOG_AMQP_URL", GF_CFG_AMQP_URL, "amqp://guest:guest@localhost:5672/", 0, 0, false,
     F(amqp_url),
     "RabbitMQ to consume the events from: amqp://user[:password]@host[:port][/vhost]"},
    {"EVENTLOG_AMQP_PASSWORD", GF_CFG_STRING, "", 0, 0, true, F(amqp_password),
     "password of the broker, replacing the URL's (so it can come from a Secret)"},
    {"EVENTLOG_AMQP_CA", GF_CFG_STRING, "", 0, 0, false, F(amqp_ca),
     "PEM file of the CA the broker's certificate chains to (required with an amqps:// URL)"},
    {"EVENTLOG_AMQP_HEARTBEAT_S", GF_CFG_INT, "10", 0, 600, false, F(amqp_heartbeat_s),
     "AMQP heartbeat: a dead broker connection is noticed after about twice this (0 = none)"},
    {"EVENTLOG_PREFETCH", GF_CFG_INT, "200", 1, 65535, false, F(prefetch),
     "unacknowledged deliveries the broker may send ahead (basic.qos)"},
    {"EVENTLOG_BATCH_MAX", GF_CFG_INT, "100", 1, 10000, false, F(batch_max),
     "deliveries stored in one database transaction at most (<= EVENTLOG_PREFETCH)"},
    {"EVENTLOG_BATCH_WAIT_MS", GF_CFG_INT, "5", 0, 10000, false, F(batch_wait_ms),
     "how long a batch waits for more deliveries once one arrived"},
    {"EVENTLOG_HTTP_THREADS", GF_CFG_INT, "4", 1, 256, false, F(http_threads),
     "HTTP worker threads (each waits for its read's result)"},
    {"EVENTLOG_HTTP_MAX_CONNECTIONS", GF_CFG_INT, "10000", 16, 1000000, false,
     F(http_max_connections),
     "HTTP connections open at once at most, idle ones included (cut to what RLIMIT_NOFILE "
     "allows); past 90% the idle ones are closed, oldest first"},
    {"EVENTLOG_HTTP_MAX_INFLIGHT", GF_CFG_INT, "0", 0, 256, false, F(http_max_inflight),
     "HTTP requests handled at once (/healthz, /readyz, /metrics aside): more are answered 503 "
     "with Retry-After at once; 0 = EVENTLOG_HTTP_THREADS minus a quarter, at most "
     "EVENTLOG_DB_POOL_SIZE minus 2"},
    {"EVENTLOG_HTTP_IDLE_TIMEOUT_S", GF_CFG_INT, "30", 1, 3600, false, F(http_idle_timeout_s),
     "an HTTP connection without a byte for this long is closed"},
    {"EVENTLOG_HTTP_HEADER_TIMEOUT_MS", GF_CFG_INT, "10000", 100, 600000, false,
     F(http_header_timeout_ms),
     "a request head that began must be complete within this, or the connection is cut (408)"},
    {"EVENTLOG_HTTP_BODY_TIMEOUT_MS", GF_CFG_INT, "30000", 100, 600000, false,
     F(http_body_timeout_ms),
     "a request body must arrive, and its answer be taken, within this, or the connection is cut"},
    {"EVENTLOG_LIST_CAP", GF_CFG_INT, "1000", 1, 100000, false, F(list_cap),
     "events one GET /eventlog/events answers at most (larger limits are cut to it)"},
    {"EVENTLOG_RETENTION_S", GF_CFG_INT, "2592000", 60, 315360000, false, F(retention_s),
     "events are deleted this many seconds after they were stored; a redelivery of an older "
     "event is stored again (not deduplicated)"},
    {"EVENTLOG_RETENTION_INTERVAL_MS", GF_CFG_INT, "60000", 100, 86400000, false,
     F(retention_interval_ms), "how often a retention pass runs (one replica at a time)"},
    {"EVENTLOG_RETENTION_BATCH", GF_CFG_INT, "2000", 1, 100000, false, F(retention_batch),
     "events a retention statement deletes at most (one short transaction each)"},
    {"EVENTLOG_RETENTION_ROUNDS", GF_CFG_INT, "10", 1, 10000, false, F(retention_rounds),
     "batches per pass at most"},
    {"EVENTLOG_SHUTDOWN_GRACE_MS", GF_CFG_INT, "10000", 100, 600000, false, F(shutdown_grace_ms),
     "on SIGTERM, the batch in hand and in-flight requests get this long; a drain not over 1 s "
     "after that ends the process anyway (status 1)"},
    {"EVENTLOG_LOG_LEVEL", GF_CFG_LOGLEVEL, "info", 0, 0, false, F(log_level),
     "debug, info, warn or error"},
    {"EVENTLOG_AUTH_KEYS", GF_CFG_STRING, "", 0, 0, false, F(auth_keys_dir),
     "directory of the Ed25519 public keys (*.pem) whose tokens are accepted (required)"},
    {"EVENTLOG_AUTH_ISSUER", GF_CFG_STRING, "gf-svc", 0, 0, false, F(auth_issuer),
     "iss of the tokens accepted"},
    {"EVENTLOG_AUTH_AUDIENCE", GF_CFG_STRING, "gf-svc-api", 0, 0, false, F(auth_audience),
     "aud of the tokens accepted"},
    {"EVENTLOG_AUTH_LEEWAY_S", GF_CFG_INT, "30", 0, 300, false, F(auth_leeway_s),
     "clock skew allowed on a token's exp and nbf"},
};
const size_t eventlog_config_ndefs = sizeof eventlog_config_defs / sizeof eventlog_config_defs[0];

enum gf_status eventlog_config_check(const struct eventlog_config *cfg)
{
    if (cfg->auth_keys_dir[0] == '\0') {
        GF_ERROR("config invalid: EVENTLOG_AUTH_KEYS is required (a directory of the Ed25519 "
                 "public keys whose tokens are accepted)");
        return GF_EINVAL;
    }
    if (cfg->batch_max > cfg->prefetch) {
        GF_ERROR("config invalid EVENTLOG_BATCH_MAX=%lld: at most EVENTLOG_PREFETCH=%lld, since "
                 "a batch is made of deliveries the broker sent ahead",
                 (long long)cfg->batch_max, (long long)cfg->prefetch);
        return GF_EINVAL;
    }
    return gf_amqp_config_check("EVENTLOG", cfg->amqp_url, cfg->amqp_ca);
}
