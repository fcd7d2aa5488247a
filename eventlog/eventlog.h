/* The eventlog service: consumes the system's events from RabbitMQ, keeps a per-user event
 * log in eventlog-db and serves it over HTTP. Shared declarations of its files (one file per
 * concern: config, event decoding, store, consumer, query parsing, HTTP API). */
#ifndef EVENTLOG_H
#define EVENTLOG_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gf/amqp.h"
#include "gf/auth.h"
#include "gf/config.h"
#include "gf/db.h"
#include "gf/status.h"
#include "gf/testable.h" /* its helpers are static but for unit tests */
#include "gf/uuid.h"

/* ---- config.c ---------------------------------------------------------------------------- */
struct eventlog_config {
    char *http_addr;
    char *db_url;
    char *db_password;
    int64_t db_pool_size;
    int64_t db_statement_timeout_ms;
    char *amqp_url;
    char *amqp_password;
    char *amqp_ca;
    int64_t amqp_heartbeat_s;
    int64_t prefetch;
    int64_t batch_max;
    int64_t batch_wait_ms;
    int64_t http_threads;
    int64_t http_max_connections;
    int64_t http_max_inflight;
    int64_t http_idle_timeout_s;
    int64_t http_header_timeout_ms;
    int64_t http_body_timeout_ms;
    int64_t list_cap;
    int64_t retention_s;
    int64_t retention_interval_ms;
    int64_t retention_batch;
    int64_t retention_rounds;
    int64_t shutdown_grace_ms;
    int log_level;
    char *auth_keys_dir;
    char *auth_issuer;
    char *auth_audience;
    int64_t auth_leeway_s;
};
extern const struct gf_config_def eventlog_config_defs[];
extern const size_t eventlog_config_ndefs;
/* The rules between variables (a batch fits in the prefetch window); logs each violation. */
enum gf_status eventlog_config_check(const struct eventlog_config *cfg) GF_MUSTCHECK;

/* ---- the process-wide state the threads share -------------------------------------------- */
struct consumer;

struct eventlog_app {
    const struct eventlog_config *cfg;
    struct gf_db_pool *pool;   /* the consumer's batches and the HTTP reads */
    atomic_bool migrated;      /* the schema is in place: the API may read */
    struct gf_auth_keys *keys; /* the public keys whose tokens are accepted */
    pthread_mutex_t consumer_mu;
    struct consumer *consumer; /* under consumer_mu; NULL until started and after stopping */
};

/* ---- retention.c: events deleted past EVENTLOG_RETENTION_S, in batches, by one replica at
 * a time ------------------------------------------------------------------------------------ */
struct gf_pruner;
/* Starts the passes (once the schema is in place); NULL when it cannot. Stop with
 * gf_pruner_stop (gf/prune.h). */
struct gf_pruner *retention_start(struct eventlog_app *app);

/* ---- event.c: a delivery decoded and validated (pure; unit-tested) ------------------------ */
#define EVENT_TEXT_MAX 160

/* What the store keeps of one event. */
struct event_record {
    const char *name; /* the known event's name (static) */
    int64_t user_id;  /* 0: the event concerns no user (stored NULL; only admins read it) */
    char correlation_id[GF_UUID_STRLEN + 1];
    /* The event's identity, stored once per name: the correlation id (= the delivery's
     * message_id, SPEC §4), or an AdminActionEvent's eventId. */
    char message_id[GF_UUID_STRLEN + 1];
    char text[EVENT_TEXT_MAX];
    json_t *data; /* the decoded fields, owned */
    int64_t occurred_at_us;
    /* Written by the store: */
    bool stored;    /* inserted now (false: it was there already) */
    int64_t lag_us; /* stored_at - occurred_at */
};

/* What becomes of a delivery: stored (EVENT_OK) or dead-lettered, for this reason. */
enum event_verdict {
    EVENT_OK = 0,
    EVENT_UNKNOWN_TYPE,         /* type / routing key names no event we know */
    EVENT_BAD_CONTENT_TYPE,     /* content_type set and not application/x-protobuf */
    EVENT_UNDECODABLE,          /* the body is not the protobuf message of that name */
    EVENT_INVALID_FIELD,        /* a required field is missing or zero */
    EVENT_BAD_CORRELATION_ID,   /* correlationId is not a UUID */
    EVENT_MESSAGE_ID_MISMATCH,  /* message_id is set and is not the correlationId */
    EVENT_REJECTED_BY_DATABASE, /* valid here, refused by a constraint there (set by the consumer)
                                 */
    EVENT_NVERDICTS
};

/* Stable snake_case name of a verdict, for logs and metric labels. */
const char *event_verdict_str(enum event_verdict v);

/* Decodes and validates d. EVENT_OK: *out is filled (release with event_record_cleanup).
 * Otherwise *out holds nothing to release and why[0..whysz) says what was wrong, in words
 * safe for a log line. now_us is occurred_at when the delivery carries no time. Never fails
 * on any content of d. */
enum event_verdict event_decode(const struct gf_amqp_delivery *d, int64_t now_us,
                                struct event_record *out, char *why, size_t whysz);
void event_record_cleanup(struct event_record *r);

/* ---- store.c: eventlog-db ------------------------------------------------------------------ */

/* Stores the n records in one statement (its own transaction), skipping those stored
 * before, and sets each record's stored and lag_us. GF_OK only once committed; GF_EINVAL when
 * the database refused the data (a constraint: retry record by record to find which);
 * GF_EUNAVAILABLE / GF_ETIMEOUT when it could not be reached or did not answer. */
enum gf_status store_events(struct gf_db_pool *pool, struct event_record *const *recs,
                            int n) GF_MUSTCHECK;

/* A read of the log (see query.c for where the fields come from). */
struct events_query {
    int64_t user_id; /* 0 = every user */
    bool has_correlation_id;
    char correlation_id[GF_UUID_STRLEN + 1];
    int64_t after; /* -1: the newest events, newest first; else ids > after, oldest first */
    int64_t limit; /* 1.. */
};

/* Reads one page: *events_out is a new JSON array of
 * {id,event,userId,text,correlationId,occurredAt,storedAt,data} (caller decrefs; userId null for
 * an event about no user), *first_id
 * and *last_id the ids of its first and last elements (0 when it is empty). */
enum gf_status store_list(struct gf_db_pool *pool, const struct events_query *q,
                          json_t **events_out, int64_t *first_id, int64_t *last_id) GF_MUSTCHECK;

/* ---- consumer.c: the broker's deliveries into the store ----------------------------------- */

/* Registers the consumer's metrics and starts its thread (gf_amqp_consumer_start on
 * gf_events_eventlog_queue). NULL on a resource failure. */
struct consumer *consumer_start(struct eventlog_app *app);
/* The consumer's figures for the console feed (gf_console_feed_options.stats). */
json_t *consumer_console_stats(void *arg);
/* Stops: the batch in hand is finished (stored and acked, or left to the broker). NULL is a
 * no-op. */
void consumer_stop(struct consumer *c);
/* Connected to the broker and consuming. */
bool consumer_ready(const struct consumer *c);

/* ---- query.c: the query string of GET /eventlog/events (pure; unit-tested) ---------------- */
#define QUERY_LIMIT_DEFAULT 100
#define QUERY_VALUE_MAX 64          /* bytes of one parameter's value */
#define QUERY_USER_MAX 4294967295LL /* user ids are the events' uint32 */

struct query_arg {
    const char *key;
    const char *value; /* NULL: the key came without a value */
};

/* An error answered to a client: a stable code and a sentence (no internal detail). */
struct api_err {
    const char *code;
    char message[200];
};

/* Parses userId, limit, after and correlationId from args. limit defaults to
 * min(QUERY_LIMIT_DEFAULT, cap) and is cut to cap; every value must be well-formed. Any
 * other key, a key given twice, an empty or over-long value is GF_EINVAL with err set
 * (codes unknown_parameter, duplicate_parameter, invalid_parameter). */
enum gf_status query_parse(const struct query_arg *args, size_t n, int64_t cap,
                           struct events_query *out, struct api_err *err) GF_MUSTCHECK;

/* ---- api.c: GET /eventlog/events, /healthz, /readyz, /metrics ----------------------------- */
struct gf_http_server;
/* Registers the HTTP metrics and starts serving (the API answers 503 until migrated). */
struct gf_http_server *api_start(struct eventlog_app *app);

#endif
