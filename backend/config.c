/* The backend's configuration: every environment variable it reads, declared once. */
#include <stddef.h>

#include "backend.h"

#define F(field) offsetof(struct backend_config, field)

const struct gf_config_def backend_config_defs[] = {
    {"BACKEND_HTTP_ADDR", GF_CFG_ADDR, "0.0.0.0:30080", 0, 0, false, F(http_addr),
     "HTTP listen address of the API, /healthz, /readyz and /metrics (port 0 = ephemeral)"},
    {"BACKEND_GRPC_ADDR", GF_CFG_ADDR, "0.0.0.0:30090", 0, 0, false, F(grpc_addr),
     "gRPC listen address of backend.Backend (ResolveTransaction, asked by gxp)"},
    {"BACKEND_DB_URL", GF_CFG_CONNINFO, "host=localhost port=5432 dbname=backend user=backend", 0,
     0, false, F(db_url), "libpq conninfo of backend-db (wal_level=logical)"},
    {"BACKEND_DB_PASSWORD", GF_CFG_STRING, "", 0, 0, true, F(db_password),
     "password of backend-db (kept out of BACKEND_DB_URL so it can come from a Secret)"},
    {"BACKEND_DB_POOL_SIZE", GF_CFG_INT, "24", 1, 500, false, F(db_pool_size),
     "database connections at most"},
    {"BACKEND_DB_STATEMENT_TIMEOUT_MS", GF_CFG_INT, "5000", 0, 600000, false,
     F(db_statement_timeout_ms), "statement_timeout of every connection (0 = none)"},
    {"BACKEND_HTTP_THREADS", GF_CFG_INT, "32", 1, 1024, false, F(http_threads),
     "HTTP threads: a request holds one while it waits for the database or gxp"},
    {"BACKEND_MAX_BODY", GF_CFG_INT, "65536", 1024, 16777216, false, F(max_body),
     "request bodies over this many bytes get 413"},
    {"BACKEND_GXP_ADDR", GF_CFG_ADDR, "localhost:30002", 0, 0, false, F(gxp_addr),
     "gRPC address of gxp.Gxp"},
    {"BACKEND_GXP_DEADLINE_MS", GF_CFG_INT, "2000", 10, 60000, false, F(gxp_deadline_ms),
     "deadline of each call to gxp"},
    {"DEPLOYMENT_NAME", GF_CFG_STRING, "backend-svc-1", 0, 0, false, F(deployment_name),
     "named by the */svc-info endpoints"},
    {"BACKEND_LIST_CAP", GF_CFG_INT, "10000", 1, 1000000, false, F(list_cap),
     "rows a list answers at most (unpaged requests included)"},
    {"BACKEND_LOCK_RETRIES", GF_CFG_INT, "30", 1, 1000, false, F(lock_retries),
     "attempts of an optimistic update before 409"},
    {"BACKEND_IDEMPOTENCY_TTL_S", GF_CFG_INT, "86400", 60, 31536000, false, F(idempotency_ttl_s),
     "how long an Idempotency-Key's answer is kept"},
    {"BACKEND_SHUTDOWN_GRACE_MS", GF_CFG_INT, "5000", 0, 600000, false, F(shutdown_grace_ms),
     "on SIGTERM, in-flight requests get this long to finish"},
    {"BACKEND_LOG_LEVEL", GF_CFG_LOGLEVEL, "info", 0, 0, false, F(log_level),
     "debug, info, warn or error"},
};
const size_t backend_config_ndefs = sizeof backend_config_defs / sizeof backend_config_defs[0];
