/* The world a backend integration test runs in: backend-db (publisher of the decisions),
 * gxp-db (subscriber), the real gxp and the real backend, all on free ports and stopped at
 * the end; an HTTP client on libcurl, JSON and SQL helpers, and SPEC §5's invariants checked
 * across both databases. */
#ifndef BACKEND_FIXTURE_H
#define BACKEND_FIXTURE_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend.pb-c.h"
#include "gf/auth.h"
#include "gf/grpc.h"
#include "harness.h"
#include "sql_helpers.h"

/* How a world is started; zero values mean the defaults noted. */
struct world_options {
    bool failpoints;                 /* run GF_BACKEND_FP_BIN instead of GF_BACKEND_BIN */
    int buy_pause_ms;                /* BACKEND_FAILPOINT_BUY_PAUSE_MS (failpoint binary only) */
    int pending_timeout_ms;          /* GXP_PENDING_TIMEOUT_MS, default 60000 */
    int resolve_interval_ms;         /* GXP_RESOLVE_INTERVAL_MS, default 100 */
    const char *deployment;          /* DEPLOYMENT_NAME, default backend-svc-test */
    const char *const *extra_env;    /* more "K=V" for the backend (replacing a default of the
                                        same name), NULL-terminated, may be NULL */
    const char *const *gxp_env;      /* more "K=V" for gxp, NULL-terminated (4 at most) */
    const char *const *eventlog_env; /* the same for eventlog */
    bool events;                     /* also eventlog-db and eventlog; invariants cover events */
    bool watchers_off; /* gxp and the backend do not log events: eventlog's is the only queue */
};

struct backend_world {
    struct world_options opt;
    struct h_pg backend_db, gxp_db;
    PGconn *backend, *gxp;            /* the test's own connections, for setup and checks */
    int http_port, grpc_port;         /* the backend's */
    int gxp_grpc_port, gxp_http_port; /* gxp's */
    pid_t backend_pid, gxp_pid;
    char backend_log[600], gxp_log[600];
    struct gf_grpc_client *backend_grpc; /* to backend.Backend */
    struct h_rmq rmq;                    /* the run's broker, a vhost of this world's own */
    struct h_pg eventlog_db;             /* opt.events only, as the three below */
    PGconn *eventlog;
    int eventlog_port;
    pid_t eventlog_pid;
    char eventlog_log[600];
    atomic_llong stock_created; /* units created through the API (stock + user items) */
    bool running;
    /* Tokens: a key pair of this world's own (auth_dir holds the public key the services
     * verify with, auth_key the private key the backend signs with); the tests sign tokens
     * with it too (world_token). http() sends admin_token unless the request names its own
     * Authorization header ("Authorization:" alone sends none). */
    char auth_dir[600], auth_key[600];
    struct gf_auth_keys *keys;
    char *admin_token;
};

/* The world of this test program. cmocka hooks: world_check fails when an invariant does not
 * hold; world_teardown stops everything and fails when a process did not exit 0 on SIGTERM;
 * world_check_and_stop does both (for a world per test). */
extern struct backend_world W;
int world_check(void **state);
int world_teardown(void **state);
int world_check_and_stop(void **state);

/* Starts both databases, the backend (first: it creates its schema and publication by itself),
 * then gxp; waits for the backend's /readyz and for the subscription to stream. 0 or -1. */
int world_start(struct backend_world *w, const struct world_options *opt);
/* Stops everything; -1 when a process did not exit cleanly (0) on SIGTERM. */
int world_stop(struct backend_world *w);
/* Stops gxp alone (SIGTERM, -1 unless it exits 0) and starts it again on the same ports. */
int world_stop_gxp(struct backend_world *w);
int world_start_gxp(struct backend_world *w);
/* The same for eventlog (opt.events); start waits for its /readyz. */
int world_stop_eventlog(struct backend_world *w);
int world_start_eventlog(struct backend_world *w);
/* Kills the backend with SIGKILL (no drain, nothing flushed) and starts it again on the same
 * ports, with extra_env replacing opt.extra_env when not NULL and the failpoint binary when
 * failpoints; waits for /readyz. */
int world_crash_backend(struct backend_world *w);
int world_start_backend(struct backend_world *w, bool failpoints, const char *const *extra_env);

/* A token signed with the world's key: role, sub (the user's id; an operator's id for an
 * admin), valid from now + nbf_s for ttl_s seconds (negative: expired -ttl_s s ago). malloc'd. */
char *world_token(struct backend_world *w, enum gf_role role, int64_t sub, int64_t nbf_s,
                  int64_t ttl_s);
/* "Authorization: Bearer <token>" for a headers array (static per thread, so one at a time). */
const char *world_bearer(const char *token);

/* ---- HTTP (backend_http.c: libcurl, one handle per thread, kept for keep-alive) ------- */
struct http_res {
    long status; /* 0 when no answer came (transport error) */
    char *body;  /* NUL-terminated, "" when empty */
    size_t body_len;
    json_t *json;    /* the body parsed, NULL when it is not JSON */
    char *headers;   /* the header lines of the final answer */
    char error[256]; /* curl's message on a transport error */
};
/* One request to the backend. headers: "Name: value" strings, NULL-terminated, may be NULL.
 * body may be NULL (no body). Returns the status (0 on transport error); *res is filled
 * (free with http_res_free). Safe on any thread; never asserts. */
long http(struct backend_world *w, const char *method, const char *path, const char *body,
          const char *const headers[], struct http_res *res);
long http_n(struct backend_world *w, const char *method, const char *path, const char *body,
            size_t body_len, const char *const headers[], struct http_res *res);
void http_res_free(struct http_res *res);
/* The value of one series of the backend's /metrics ("name{labels}" as written), or -1 when
 * it is absent or the scrape failed. */
double world_metric(struct backend_world *w, const char *series);
/* The value of a response header (case-insensitive name), copied to out; NULL when absent. */
const char *http_header(const struct http_res *res, const char *name, char *out, size_t n);
/* Frees this thread's curl handle (call at the end of a thread that used http). */
void http_thread_done(void);

/* ---- events (opt.events) ------------------------------------------------------------------ */
/* GET on eventlog's HTTP port. */
long http_eventlog(struct backend_world *w, const char *path, struct http_res *res);
/* Waits until eventlog-db holds n BuyItemEvents (the audit events of the operator's changes
 * are not counted). 0, or -1 after timeout_ms (prints what it has). */
int wait_events(struct backend_world *w, long long n, int timeout_ms);

/* ---- JSON and shapes (assert; main thread only) ---------------------------------------- */
/* obj is an object whose keys are exactly those of the comma-separated list. */
void assert_keys(const json_t *obj, const char *keys);
long long jint(const json_t *obj, const char *key);   /* asserts an integer member */
const char *jstr(const json_t *obj, const char *key); /* asserts a string member */
json_t *jarr(const json_t *obj, const char *key);     /* asserts an array member */
void assert_iso8601_ms(const char *s);                /* 2026-11-26T05:43:31.712Z */
void assert_uuid(const char *s);
/* A 200 answer whose JSON has exactly keys; its correlationId (when a key) equals the
 * X-Correlation-Id header. */
void assert_ok(const struct http_res *res, const char *keys);
/* An error answer: status, exactly {message,error,correlationId}, error a snake_case code
 * (equal to code when not NULL), a message without SQL, the header's correlation id. */
void assert_error(const struct http_res *res, long status, const char *code);

/* ---- API shortcuts (assert 200; main thread only) -------------------------------------- */
long long api_create_user(struct backend_world *w, const char *name);
long long api_create_item(struct backend_world *w, const char *name, long long cost);
long long api_create_marketplace_item(struct backend_world *w, long long item_id, long long count);
long long api_create_user_item(struct backend_world *w, long long user, long long item,
                               long long count);
/* Adds GXP and waits until gxp committed it; cid_out (may be NULL) gets its correlation id. */
void api_add_gxp(struct backend_world *w, long long user, long long amount, char cid_out[37]);
/* GET /user/gxp?userId=. */
void api_user_gxp(struct backend_world *w, long long user, long long *balance, long long *reserved);
/* Asserts the user's gxp balance and reservation. */
void balance_is(struct backend_world *w, long long user, long long balance, long long reserved);

/* What a request may not change, as one comparable line: row counts and sums on backend-db
 * and gxp-db. strict also covers decisions and gxp transactions (a refused buy may record a
 * 'failed' decision and an aborted transaction; a request refused as bad input may not). */
void snapshot(struct backend_world *w, bool strict, char *out, size_t n);

/* gxp-db's transaction for cid left PENDING (status <> 0). 0, or -1 after timeout_ms. */
int wait_until_finalized(struct backend_world *w, const char *cid, int timeout_ms);
/* No PENDING transaction left on gxp-db. 0, or -1 after timeout_ms. */
int wait_no_pending(struct backend_world *w, int timeout_ms);

/* No auction saga step pending that is due (within a second). 0, or -1 after timeout_ms
 * (prints what is left). */
int wait_saga_idle(struct backend_world *w, int timeout_ms);

/* SPEC §5 across both databases (waits for pending transactions first); prints each
 * violation and returns how many invariants failed. */
int check_invariants(struct backend_world *w);

/* backend.Backend/ResolveTransaction on the backend's gRPC port; state (may be NULL) gets
 * the answer's state. */
grpc_status_code rpc_resolve(struct backend_world *w, const char *cid, char *state, size_t n);

/* SPEC §5 on gxp-db: the balances that do not match their transactions (balance = Σ committed
 * ADD − Σ committed SUBTRACT, with what retention carried out of the history in balance_pruned;
 * reserved = Σ pending SUBTRACT; incoming = Σ pending ADD; 0 ≤ reserved ≤ balance), counted. */
#define GXP_LEDGER_VIOLATIONS_SQL                                                                  \
    "SELECT count(*) FROM balance b LEFT JOIN LATERAL ("                                           \
    "  SELECT coalesce(sum(CASE WHEN status = 2 AND type = 0 THEN amount"                          \
    "                           WHEN status = 2 AND type = 1 THEN -amount END), 0) net,"           \
    "         coalesce(sum(amount) FILTER (WHERE status = 0 AND type = 1), 0) AS res,"             \
    "         coalesce(sum(amount) FILTER (WHERE status = 0 AND type = 0), 0) AS inc"              \
    "    FROM gxp_transaction t WHERE t.user_id = b.user_id) s ON true"                            \
    " LEFT JOIN balance_pruned p ON p.user_id = b.user_id"                                         \
    " WHERE b.balance <> s.net + coalesce(p.net, 0) OR b.reserved <> s.res"                        \
    "    OR b.incoming <> s.inc OR b.reserved < 0 OR b.reserved > b.balance"

#endif
