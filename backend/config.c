/* The backend's configuration: every environment variable it reads, declared once. */
#include <stddef.h>
#include <stdio.h>

#include "backend.h"
#include "gf/amqp.h"
#include "gf/log.h"

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
    {"BACKEND_DB_LOCK_TIMEOUT_MS", GF_CFG_INT, "2000", 0, 600000, false, F(db_lock_timeout_ms),
     "lock_timeout of every connection (0 = none): a statement waits this long at most for a "
     "row another session holds, so a paused backend's queued statements cannot chain its "
     "locks"},
    {"BACKEND_HTTP_THREADS", GF_CFG_INT, "48", 1, 1024, false, F(http_threads),
     "HTTP threads: a request holds one while it waits for the database or gxp"},
    {"BACKEND_HTTP_WORKERS", GF_CFG_INT, "36", 0, 1024, false, F(http_workers),
     "threads that run the writes (buys, add-gxps, every method but GET) while their "
     "connection is suspended, so that a write waiting for the gate, a lock or gxp does not "
     "hold up the other connections of its HTTP thread; 0 = writes run on the HTTP threads"},
    {"BACKEND_HTTP_MAX_CONNECTIONS", GF_CFG_INT, "10000", 16, 1000000, false,
     F(http_max_connections),
     "HTTP connections open at once at most, idle ones included (cut to what RLIMIT_NOFILE "
     "allows); past 90% the idle ones are closed, oldest first"},
    {"BACKEND_HTTP_MAX_INFLIGHT", GF_CFG_INT, "0", 0, 1024, false, F(http_max_inflight),
     "HTTP requests handled at once (/healthz, /readyz, /metrics aside): more are answered 503 "
     "with Retry-After at once; 0 = BACKEND_HTTP_THREADS minus a quarter; at most "
     "BACKEND_HTTP_THREADS + BACKEND_HTTP_WORKERS"},
    {"BACKEND_HTTP_IDLE_TIMEOUT_S", GF_CFG_INT, "30", 1, 3600, false, F(http_idle_timeout_s),
     "an HTTP connection without a byte for this long is closed"},
    {"BACKEND_HTTP_HEADER_TIMEOUT_MS", GF_CFG_INT, "10000", 100, 600000, false,
     F(http_header_timeout_ms),
     "a request head that began must be complete within this, or the connection is cut (408)"},
    {"BACKEND_HTTP_BODY_TIMEOUT_MS", GF_CFG_INT, "30000", 100, 600000, false,
     F(http_body_timeout_ms),
     "a request body must arrive, and its answer be taken, within this, or the connection is cut"},
    {"BACKEND_MAX_BODY", GF_CFG_INT, "65536", 1024, 16777216, false, F(max_body),
     "request bodies over this many bytes get 413"},
    {"BACKEND_GXP_ADDR", GF_CFG_GRPC_TARGET, "localhost:30002", 0, 0, false, F(gxp_addr),
     "gRPC target of gxp.Gxp: host:port, or ipv4:h:p,h:p for several replicas (round-robin)"},
    {"BACKEND_TLS_CA", GF_CFG_STRING, "", 0, 0, false, F(tls_ca),
     "PEM file of the private CA: gxp's certificate (as server) and gxp's client certificate "
     "(calling ResolveTransaction) must chain to it"},
    {"BACKEND_TLS_CERT", GF_CFG_STRING, "", 0, 0, false, F(tls_cert),
     "PEM file of this backend's certificate, shown to gxp both as gRPC server and as client"},
    {"BACKEND_TLS_KEY", GF_CFG_STRING, "", 0, 0, false, F(tls_key),
     "PEM file of that certificate's private key (unencrypted; read once at start)"},
    {"BACKEND_GRPC_INSECURE", GF_CFG_BOOL, "false", 0, 0, false, F(grpc_insecure),
     "true: gRPC in plaintext, without the BACKEND_TLS_* files (tests only; logs a warning)"},
    {"BACKEND_GXP_DEADLINE_MS", GF_CFG_INT, "2000", 10, 60000, false, F(gxp_deadline_ms),
     "deadline of each call to gxp"},
    {"DEPLOYMENT_NAME", GF_CFG_STRING, "backend-svc-1", 0, 0, false, F(deployment_name),
     "named by the */svc-info endpoints"},
    {"BACKEND_LIST_CAP", GF_CFG_INT, "10000", 1, 1000000, false, F(list_cap),
     "rows a list answers at most (unpaged requests included)"},
    {"BACKEND_READ_CACHE_BYTES", GF_CFG_INT, "8388608", 0, 1073741824, false, F(read_cache_bytes),
     "memory for answers of GET /user and GET /item kept between requests (checked against "
     "the table's version on every request: never stale); 0 = read the table every time"},
    {"BACKEND_LOCK_RETRIES", GF_CFG_INT, "30", 1, 1000, false, F(lock_retries),
     "attempts of an optimistic update before 409"},
    {"BACKEND_IDEMPOTENCY_TTL_S", GF_CFG_INT, "86400", 60, 31536000, false, F(idempotency_ttl_s),
     "how long an Idempotency-Key's answer is kept"},
    {"BACKEND_IDEMPOTENCY_TAKEOVER_MS", GF_CFG_INT, "5000", 100, 600000, false,
     F(idempotency_takeover_ms),
     "a retry may take over an Idempotency-Key (or a resent correlation id) whose first attempt "
     "left no answer after this long; the first attempt can then no longer commit"},
    {"BACKEND_RYW_WAIT_MS", GF_CFG_INT, "5000", 0, 60000, false, F(ryw_wait_ms),
     "a buy refused for lack of GXP waits up to this long while GXP the user was told were "
     "added (200) is still being finalized on gxp (replication lag)"},
    {"BACKEND_SHUTDOWN_GRACE_MS", GF_CFG_INT, "5000", 0, 600000, false, F(shutdown_grace_ms),
     "on SIGTERM, in-flight requests get this long to finish; a drain not over 1 s after that "
     "ends the process anyway (status 1)"},
    {"BACKEND_AMQP_URL", GF_CFG_AMQP_URL, "amqp://guest:guest@localhost:5672/", 0, 0, false,
     F(amqp_url), "RabbitMQ the events are published to (amqp://user[:password]@host:port/vhost)"},
    {"BACKEND_AMQP_PASSWORD", GF_CFG_STRING, "", 0, 0, true, F(amqp_password),
     "RabbitMQ password, replacing the URL's (so it can come from a Secret)"},
    {"BACKEND_AMQP_CA", GF_CFG_STRING, "", 0, 0, false, F(amqp_ca),
     "PEM file of the CA the broker's certificate chains to (required with an amqps:// URL)"},
    {"BACKEND_AMQP_HEARTBEAT_S", GF_CFG_INT, "10", 0, 3600, false, F(amqp_heartbeat_s),
     "AMQP heartbeat: a dead broker connection is noticed within about twice this"},
    {"BACKEND_RELAY_BATCH", GF_CFG_INT, "200", 1, 10000, false, F(relay_batch),
     "outbox rows the relay publishes per batch (one wait for the broker's confirms)"},
    {"BACKEND_RELAY_WORKERS", GF_CFG_INT, "2", 1, 16, false, F(relay_workers),
     "relay threads, each with its own broker connection: batches in flight at once"},
    {"BACKEND_RELAY_POLL_MS", GF_CFG_INT, "1000", 10, 600000, false, F(relay_poll_ms),
     "how often the relay looks for rows it was not told about (other replicas, retries)"},
    {"BACKEND_RELAY_CONFIRM_TIMEOUT_MS", GF_CFG_INT, "5000", 100, 600000, false,
     F(relay_confirm_timeout_ms), "how long the relay waits for confirms before reconnecting"},
    {"BACKEND_OUTBOX_RETENTION_S", GF_CFG_INT, "86400", 0, 31536000, false, F(outbox_retention_s),
     "published events are deleted from event_outbox after this many seconds"},
    {"BACKEND_OUTBOX_PRUNE_INTERVAL_MS", GF_CFG_INT, "60000", 100, 86400000, false,
     F(outbox_prune_interval_ms),
     "how often the relay deletes published events past the retention"},
    {"BACKEND_RETENTION_S", GF_CFG_INT, "604800", 60, 31536000, false, F(retention_s),
     "decided transactions (claim and decision) are deleted this many seconds after their "
     "decision, once gxp has applied it: a resent correlation id is deduplicated this long "
     "(keep it below GXP_RETENTION_S)"},
    {"BACKEND_AUCTION_RETENTION_S", GF_CFG_INT, "2592000", 60, 31536000, false,
     F(auction_retention_s),
     "a settled or cancelled auction whose steps are all done is deleted (with its bids and "
     "steps) this many seconds after it closed"},
    {"BACKEND_RETENTION_INTERVAL_MS", GF_CFG_INT, "60000", 100, 86400000, false,
     F(retention_interval_ms), "how often a retention pass runs (one replica at a time)"},
    {"BACKEND_RETENTION_BATCH", GF_CFG_INT, "2000", 1, 100000, false, F(retention_batch),
     "rows a retention statement deletes at most (one short transaction each)"},
    {"BACKEND_RETENTION_ROUNDS", GF_CFG_INT, "10", 1, 10000, false, F(retention_rounds),
     "batches per table and pass at most"},
    {"BACKEND_EVENT_LOG", GF_CFG_BOOL, "true", 0, 0, false, F(event_log),
     "subscribe to the events (queue backend.events.log) and log each one"},
    {"BACKEND_LOG_LEVEL", GF_CFG_LOGLEVEL, "info", 0, 0, false, F(log_level),
     "debug, info, warn or error"},
    {"BACKEND_AUTH_KEYS", GF_CFG_STRING, "", 0, 0, false, F(auth_keys_dir),
     "directory of the Ed25519 keys (*.pem) whose tokens are accepted (required): public keys, "
     "or private ones; two during a key rotation"},
    {"BACKEND_AUTH_SIGNING_KEY", GF_CFG_STRING, "", 0, 0, false, F(auth_signing_key),
     "the Ed25519 private key (PEM file) POST /auth/login signs tokens with (required)"},
    {"BACKEND_AUTH_ISSUER", GF_CFG_STRING, "gf-svc", 0, 0, false, F(auth_issuer),
     "iss of the tokens signed and accepted"},
    {"BACKEND_AUTH_AUDIENCE", GF_CFG_STRING, "gf-svc-api", 0, 0, false, F(auth_audience),
     "aud of the tokens signed and accepted"},
    {"BACKEND_AUTH_TOKEN_TTL_S", GF_CFG_INT, "3600", 60, 86400, false, F(auth_token_ttl_s),
     "how long a token from POST /auth/login is valid"},
    {"BACKEND_AUTH_LEEWAY_S", GF_CFG_INT, "30", 0, 300, false, F(auth_leeway_s),
     "clock skew allowed on a token's exp and nbf"},
    {"BACKEND_LOGIN_MAX_FAILURES", GF_CFG_INT, "5", 1, 1000, false, F(login_max_failures),
     "failed logins in a row after which a name is locked (1 s, doubling up to 15 min)"},
    {"BACKEND_ADMIN_NAME", GF_CFG_STRING, "", 0, 0, false, F(admin_name),
     "an operator (role admin) created at start when no one has this name (empty: none)"},
    {"BACKEND_ADMIN_PASSWORD", GF_CFG_STRING, "", 0, 0, true, F(admin_password),
     "that operator's first password (used only to create it)"},
    {"BACKEND_SAGA_WORKERS", GF_CFG_INT, "2", 1, 16, false, F(saga_workers),
     "threads that run the auction saga's due steps (settlements, refunds, payouts)"},
    {"BACKEND_SAGA_POLL_MS", GF_CFG_INT, "200", 10, 60000, false, F(saga_poll_ms),
     "how often an idle saga worker looks for due steps (a due settlement waits at most this)"},
    {"BACKEND_SAGA_LEASE_MS", GF_CFG_INT, "15000", 1000, 600000, false, F(saga_lease_ms),
     "how long a claimed step is its runner's; a dead replica's steps are taken over after it"},
    {"BACKEND_SAGA_BATCH", GF_CFG_INT, "32", 1, 1000, false, F(saga_batch),
     "due steps a worker claims at once"},
    {"BACKEND_ADMIT", GF_CFG_BOOL, "true", 0, 0, false, F(admit),
     "admission control: buys, add-gxp and auction bids/creates are answered 503 overloaded "
     "(with Retry-After) while gxp's replication or the event outbox is behind (false: never)"},
    {"BACKEND_ADMIT_INTERVAL_MS", GF_CFG_INT, "25", 5, 1000, false, F(admit_interval_ms),
     "how often admission control measures both (one query on a connection of its own)"},
    {"BACKEND_ADMIT_LAG_MS", GF_CFG_INT, "150", 1, 600000, false, F(admit_lag_ms),
     "shed all while the oldest backend-db WAL gxp's subscription has not applied is older "
     "than this (the delay a decision made now waits before gxp finalizes it)"},
    {"BACKEND_ADMIT_OUTBOX_AGE_MS", GF_CFG_INT, "150", 1, 600000, false, F(admit_outbox_age_ms),
     "shed all while the oldest unpublished event_outbox row is older than this"},
    {"BACKEND_ADMIT_TARGET_PCT", GF_CFG_INT, "50", 1, 100, false, F(admit_target_pct),
     "below the bounds, the share of those requests shed is adjusted every interval to hold "
     "the larger figure near this percentage of its bound (past a bound all are shed)"},
    {"BACKEND_WRITE_CONCURRENCY", GF_CFG_INT, "0", 0, 1024, false, F(write_concurrency),
     "buys and add-gxps run at once at most; more wait their turn, first come first served "
     "(0: twice the CPUs this process may run on)"},
    {"BACKEND_WRITE_WAIT_MS", GF_CFG_INT, "1000", 1, 600000, false, F(write_wait_ms),
     "a buy or add-gxp waits this long at most for its turn, then is answered 503 overloaded "
     "with Retry-After, nothing done"},
    {"BACKEND_ADMIT_RETRY_AFTER_S", GF_CFG_INT, "1", 1, 60, false, F(admit_retry_after_s),
     "the Retry-After (seconds) of a 503 overloaded"},
};
const size_t backend_config_ndefs = sizeof backend_config_defs / sizeof backend_config_defs[0];

enum gf_status backend_config_check(const struct backend_config *cfg)
{
    bool ok = true;
    if (cfg->saga_lease_ms <= cfg->gxp_deadline_ms) {
        /* A lease shorter than a gxp call would hand every slow step to a second runner (the
         * fence keeps that correct, but it is work done twice). */
        GF_ERROR("config invalid var=BACKEND_SAGA_LEASE_MS value=%lld rule='more than "
                 "BACKEND_GXP_DEADLINE_MS (%lld)'",
                 (long long)cfg->saga_lease_ms, (long long)cfg->gxp_deadline_ms);
        ok = false;
    }
    if (cfg->auth_keys_dir[0] == '\0') {
        GF_ERROR("config invalid var=BACKEND_AUTH_KEYS value='' rule='required: the directory of "
                 "the Ed25519 keys whose tokens are accepted (gf-keygen makes a pair)'");
        ok = false;
    }
    if (cfg->auth_signing_key[0] == '\0') {
        GF_ERROR("config invalid var=BACKEND_AUTH_SIGNING_KEY value='' rule='required: the "
                 "Ed25519 private key (PEM) that signs the tokens of POST /auth/login'");
        ok = false;
    }
    if (cfg->admin_name[0] != '\0' && cfg->admin_password[0] == '\0') {
        GF_ERROR("config invalid var=BACKEND_ADMIN_PASSWORD value='' rule='required with "
                 "BACKEND_ADMIN_NAME: the operator's first password'");
        ok = false;
    }
    if (!ok)
        return GF_EINVAL;
    if (gf_amqp_config_check("BACKEND", cfg->amqp_url, cfg->amqp_ca) != GF_OK)
        return GF_EINVAL;
    return gf_grpc_tls_config_check("BACKEND", cfg->tls_ca, cfg->tls_cert, cfg->tls_key,
                                    cfg->grpc_insecure);
}
