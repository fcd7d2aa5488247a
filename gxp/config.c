/* The gxp service's configuration: every environment variable it reads, declared once. */
#include <libpq-fe.h>
#include <stddef.h>
#include <string.h>

#include "gf/amqp.h"
#include "gf/log.h"
#include "gxp.h"

#define F(field) offsetof(struct gxp_config, field)

const struct gf_config_def gxp_config_defs[] = {
    {"GXP_GRPC_ADDR", GF_CFG_ADDR, "0.0.0.0:30002", 0, 0, false, F(grpc_addr),
     "gRPC listen address of gxp.Gxp (port 0 = ephemeral)"},
    {"GXP_HTTP_ADDR", GF_CFG_ADDR, "0.0.0.0:30003", 0, 0, false, F(http_addr),
     "HTTP listen address of /healthz, /readyz and /metrics"},
    {"GXP_HTTP_MAX_CONNECTIONS", GF_CFG_INT, "4096", 16, 1000000, false, F(http_max_connections),
     "HTTP connections open at once at most, idle ones included (cut to what RLIMIT_NOFILE "
     "allows); past 90% the idle ones are closed, oldest first"},
    {"GXP_HTTP_IDLE_TIMEOUT_S", GF_CFG_INT, "30", 1, 3600, false, F(http_idle_timeout_s),
     "an HTTP connection without a byte for this long is closed"},
    {"GXP_HTTP_HEADER_TIMEOUT_MS", GF_CFG_INT, "10000", 100, 600000, false,
     F(http_header_timeout_ms),
     "a request head that began must be complete within this, or the connection is cut (408); "
     "a body or the taking of an answer gets three times as long"},
    {"GXP_DB_URL", GF_CFG_CONNINFO, "host=localhost port=5432 dbname=gxp user=gxp", 0, 0, false,
     F(db_url),
     "libpq conninfo of gxp-db: the ledger's role, which owns gxp's tables (also the "
     "subscription's when GXP_SUBSCRIPTION_ADMIN_URL is empty: then a superuser on PostgreSQL 15)"},
    {"GXP_DB_PASSWORD", GF_CFG_STRING, "", 0, 0, true, F(db_password),
     "password of gxp-db (kept out of GXP_DB_URL so it can come from a Secret)"},
    {"GXP_DB_POOL_SIZE", GF_CFG_INT, "4", 1, 200, false, F(db_pool_size),
     "pooled database connections at most (GetAll, resolver, subscription, probes)"},
    {"GXP_DB_PIPELINES", GF_CFG_INT, "2", 1, 64, false, F(db_pipelines),
     "pipelined database connections carrying prepare and the other one-statement RPCs"},
    {"GXP_DB_STATEMENT_TIMEOUT_MS", GF_CFG_INT, "5000", 0, 600000, false,
     F(db_statement_timeout_ms), "statement_timeout of every connection (0 = none)"},
    {"GXP_THREADS", GF_CFG_INT, "16", 1, 256, false, F(threads),
     "gRPC worker threads (each waits for its statement's result)"},
    {"GXP_PUBLISHER_CONNINFO", GF_CFG_CONNINFO, "", 0, 0, false, F(publisher_conninfo),
     "conninfo gxp-db uses to reach backend-db for the subscription (empty = no subscription)"},
    {"GXP_PUBLISHER_PASSWORD", GF_CFG_STRING, "", 0, 0, true, F(publisher_password),
     "password gxp-db's subscription uses to reach backend-db; appended to GXP_PUBLISHER_CONNINFO"
     " (which must then hold none)"},
    {"GXP_SUBSCRIPTION_ADMIN_URL", GF_CFG_CONNINFO, "", 0, 0, false, F(subscription_admin_url),
     "libpq conninfo of gxp-db for the subscription manager only: a superuser, as CREATE/ALTER "
     "SUBSCRIPTION need on PostgreSQL 15 (empty = GXP_DB_URL's role does it)"},
    {"GXP_SUBSCRIPTION_ADMIN_PASSWORD", GF_CFG_STRING, "", 0, 0, true,
     F(subscription_admin_password),
     "password of GXP_SUBSCRIPTION_ADMIN_URL's role (kept out of the URL so it can come from a "
     "Secret)"},
    {"GXP_BACKEND_ADDR", GF_CFG_GRPC_TARGET, "localhost:30090", 0, 0, false, F(backend_addr),
     "gRPC target of backend.Backend (asked about stuck transactions): host:port or ipv4:h:p,h:p"},
    {"GXP_TLS_CA", GF_CFG_STRING, "", 0, 0, false, F(tls_ca),
     "PEM file of the private CA: the backend's client certificate (calling gxp.Gxp) and its "
     "server certificate (ResolveTransaction) must chain to it"},
    {"GXP_TLS_CERT", GF_CFG_STRING, "", 0, 0, false, F(tls_cert),
     "PEM file of this gxp's certificate, shown to the backend both as gRPC server and as client"},
    {"GXP_TLS_KEY", GF_CFG_STRING, "", 0, 0, false, F(tls_key),
     "PEM file of that certificate's private key (unencrypted; read once at start)"},
    {"GXP_GRPC_INSECURE", GF_CFG_BOOL, "false", 0, 0, false, F(grpc_insecure),
     "true: gRPC in plaintext, without the GXP_TLS_* files (tests only; logs a warning)"},
    {"GXP_BACKEND_DEADLINE_MS", GF_CFG_INT, "2000", 10, 60000, false, F(backend_deadline_ms),
     "deadline of each ResolveTransaction call"},
    {"GXP_PENDING_TIMEOUT_MS", GF_CFG_INT, "30000", 100, 86400000, false, F(pending_timeout_ms),
     "a PENDING transaction older than this is resolved with the coordinator"},
    {"GXP_RESOLVE_INTERVAL_MS", GF_CFG_INT, "1000", 50, 600000, false, F(resolve_interval_ms),
     "how often the resolver looks for stuck transactions"},
    {"GXP_RESOLVE_BATCH", GF_CFG_INT, "8", 1, 1000, false, F(resolve_batch),
     "stuck transactions claimed per resolver pass"},
    {"GXP_RETENTION_S", GF_CFG_INT, "691200", 60, 31536000, false, F(retention_s),
     "finalized transactions and their decisions are deleted this many seconds after their "
     "finalization (keep it above BACKEND_RETENTION_S); PENDING ones never"},
    {"GXP_RETENTION_INTERVAL_MS", GF_CFG_INT, "60000", 100, 86400000, false,
     F(retention_interval_ms), "how often a retention pass runs (one replica at a time)"},
    {"GXP_RETENTION_BATCH", GF_CFG_INT, "2000", 1, 100000, false, F(retention_batch),
     "rows a retention statement deletes at most (one short transaction each)"},
    {"GXP_RETENTION_ROUNDS", GF_CFG_INT, "10", 1, 10000, false, F(retention_rounds),
     "batches per table and pass at most"},
    {"GXP_GETALL_CAP", GF_CFG_INT, "10000", 1, 1000000, false, F(getall_cap),
     "rows of each kind GetAll answers at most per page"},
    {"GXP_SHUTDOWN_GRACE_MS", GF_CFG_INT, "5000", 0, 600000, false, F(shutdown_grace_ms),
     "on SIGTERM, in-flight calls get this long to finish; a drain not over 1 s after that ends "
     "the process anyway (status 1)"},
    {"GXP_AMQP_URL", GF_CFG_AMQP_URL, "amqp://guest:guest@localhost:5672/", 0, 0, false,
     F(amqp_url), "RabbitMQ whose events gxp logs (amqp://user[:password]@host:port/vhost)"},
    {"GXP_AMQP_PASSWORD", GF_CFG_STRING, "", 0, 0, true, F(amqp_password),
     "RabbitMQ password, replacing the URL's (so it can come from a Secret)"},
    {"GXP_AMQP_CA", GF_CFG_STRING, "", 0, 0, false, F(amqp_ca),
     "PEM file of the CA the broker's certificate chains to (required with an amqps:// URL)"},
    {"GXP_EVENT_LOG", GF_CFG_BOOL, "true", 0, 0, false, F(event_log),
     "subscribe to the events (queue gxp.events.log) and log each one"},
    {"GXP_LOG_LEVEL", GF_CFG_LOGLEVEL, "info", 0, 0, false, F(log_level),
     "debug, info, warn or error"},
};
const size_t gxp_config_ndefs = sizeof gxp_config_defs / sizeof gxp_config_defs[0];

/* True when conninfo names a password itself: password=..., user:password@ or ?password= in a
 * URI. gf_config_load has parsed it already: only a lack of memory can fail here, and the
 * start will meet that again right after. */
static bool has_password(const char *conninfo)
{
    bool has = false;
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++) {
        if (strcmp(o->keyword, "password") == 0 && o->val != NULL)
            has = true;
    }
    PQconninfoFree(opts);
    return has;
}

enum gf_status gxp_config_check(const struct gxp_config *cfg)
{
    const char *pw = cfg->publisher_password;
    if (pw != NULL && pw[0] != '\0' && cfg->publisher_conninfo != NULL &&
        has_password(cfg->publisher_conninfo)) {
        GF_ERROR(
            "config invalid var=GXP_PUBLISHER_PASSWORD value='****' rule='GXP_PUBLISHER_CONNINFO"
            " has a password of its own: keep it in one of the two'");
        GF_ERROR("config invalid_count=1");
        return GF_EINVAL;
    }
    if (gf_amqp_config_check("GXP", cfg->amqp_url, cfg->amqp_ca) != GF_OK)
        return GF_EINVAL;
    return gf_grpc_tls_config_check("GXP", cfg->tls_ca, cfg->tls_cert, cfg->tls_key,
                                    cfg->grpc_insecure);
}
