/* PostgreSQL: a small pool of libpq connections, a transaction helper that re-runs on
 * serialization failure or deadlock, prepared statements per connection, and the
 * mapping of SQLSTATEs to statuses. */
#ifndef GF_DB_H
#define GF_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "gf/status.h"

struct gf_db_pool;

/* Bounds on a peer that stops answering (every connection of the pool and the pipeline).
 *
 * A session idle inside a transaction is ended by the server after
 * GF_DB_IDLE_IN_TX_TIMEOUT_MS (idle_in_transaction_session_timeout, SET by us at connect, so it
 * holds whatever the server's configuration says). That is what frees the locks of a client
 * that is paused (SIGSTOP, VM pause: its kernel still ACKs TCP keepalives, so only this timeout
 * notices) or cut off (a partition: the next statement never arrives) inside a transaction.
 * Lock hold by such a client: at most GF_DB_IDLE_IN_TX_TIMEOUT_MS after its last statement
 * ended, i.e. at most statement_timeout + GF_DB_IDLE_IN_TX_TIMEOUT_MS after it was sent (5 s
 * + 5 s with the services' defaults; in practice 5 s, as statements take milliseconds). It
 * must exceed every wait a service makes inside a transaction: create-user's gxp call (the gxp
 * deadline, 2 s, plus one 500 ms retry) and the relay's wait for broker confirms (pass a
 * larger value for that pool). A service that wakes after its session was ended gets a lost
 * connection at its next statement or COMMIT: GF_EUNAVAILABLE, nothing committed.
 *
 * The client side notices a dead server or a cut link through TCP: keepalive probes after
 * GF_DB_KEEPALIVES_IDLE_S of silence, and TCP_USER_TIMEOUT (GF_DB_TCP_USER_TIMEOUT_MS) for
 * sent bytes that stay unacknowledged and, with keepalives on, for probes that stay unanswered:
 * a statement waiting on a cut link fails within about GF_DB_TCP_USER_TIMEOUT_MS (+ the idle
 * time when the link went quiet first) instead of the kernel's ~2 h (15 min of retransmits).
 * A live server that is just slow keeps ACKing the probes, so slow statements are not cut.
 * These are libpq defaults placed BEFORE the caller's conninfo: a conninfo (DB_URL) that names
 * keepalives_idle, tcp_user_timeout, connect_timeout, ... overrides them. */
#define GF_DB_IDLE_IN_TX_TIMEOUT_MS 5000
#define GF_DB_CONNECT_TIMEOUT_S 3
#define GF_DB_KEEPALIVES_IDLE_S 2
#define GF_DB_KEEPALIVES_INTERVAL_S 1
#define GF_DB_KEEPALIVES_COUNT 3
#define GF_DB_TCP_USER_TIMEOUT_MS 5000

struct gf_db_pool_options {
    const char *conninfo;     /* libpq conninfo (copied) */
    const char *password;     /* optional, added to conninfo when set (copied) */
    int size;                 /* connections at most */
    int acquire_timeout_ms;   /* wait for a free connection at most this long */
    int statement_timeout_ms; /* SET statement_timeout on each connection (0 = none) */
    const char *application_name;
    /* SET idle_in_transaction_session_timeout on each connection: 0 = GF_DB_IDLE_IN_TX_TIMEOUT_MS,
     * < 0 = leave the server's setting. */
    int idle_in_transaction_timeout_ms;
    /* SET lock_timeout on each connection (0 = none): a statement queued behind a row lock
     * gives up after this long. Without it, statements a paused process had already sent
     * queue on the row its dead session held and each takes the lock in turn, so a pause
     * holds the row for one idle-in-transaction limit per queued statement. */
    int lock_timeout_ms;
};

/* Creates the pool; connects lazily, so this succeeds while the database is down. */
struct gf_db_pool *gf_db_pool_new(const struct gf_db_pool_options *opt);
void gf_db_pool_free(struct gf_db_pool *pool);

/* A connection lent by the pool to one thread. */
struct gf_db_conn;

/* Lends a healthy connection (connecting one if needed, at most one reconnect in flight,
 * with jittered back-off after failures). GF_EUNAVAILABLE when the database cannot be
 * reached, GF_ETIMEOUT when every connection stayed busy for acquire_timeout_ms. */
enum gf_status gf_db_acquire(struct gf_db_pool *pool, struct gf_db_conn **out) GF_MUSTCHECK;

/* Returns the connection; it is kept only if healthy and idle (not inside a transaction). */
void gf_db_release(struct gf_db_pool *pool, struct gf_db_conn *conn);

PGconn *gf_db_pgconn(struct gf_db_conn *conn);

/* Executes a statement by name on this connection, preparing it (from sql) the first time
 * the connection sees that name. params are text values (NULL = SQL NULL). On success
 * *res_out holds the result (caller PQclears); on failure the error is logged and mapped
 * with gf_db_status. res_out may be NULL when the rows are not wanted. */
enum gf_status gf_db_exec(struct gf_db_conn *conn, const char *name, const char *sql, int nparams,
                          const char *const *params, PGresult **res_out) GF_MUSTCHECK;

/* One statement of gf_db_exec_batch: gf_db_exec's arguments. */
struct gf_db_stmt {
    const char *name, *sql;
    int nparams;
    const char *const *params;
};

#define GF_DB_BATCH_MAX 8

/* Runs n (1..GF_DB_BATCH_MAX) statements as gf_db_exec would, one after the other, in one
 * round trip: they are sent together (libpq's pipeline mode, one Sync after the last) and the
 * server runs them back to back. For statements whose parameters do not depend on each other's
 * answers: a transaction's BEGIN and its first statement, or two writes. Outside a transaction
 * they form one implicit transaction (all or nothing), as a multi-statement text would. The
 * first that fails ends the batch: the server skips those after it, its status is returned
 * (logged and mapped as gf_db_exec's) and *failed (may be NULL) gets its index; on success
 * *failed = n. res (may be NULL) gets each statement's result (caller PQclears; NULL for one
 * that did not succeed). */
enum gf_status gf_db_exec_batch(struct gf_db_conn *conn, const struct gf_db_stmt *stmts, int n,
                                PGresult **res, int *failed) GF_MUSTCHECK;

/* Runs an SQL text with no parameters (simple query protocol; may hold several statements). */
enum gf_status gf_db_exec_simple(struct gf_db_conn *conn, const char *sql) GF_MUSTCHECK;

/* The status for a failed result: 40001/40P01 → GF_ECONFLICT, 23505 → GF_EEXISTS,
 * 23503 → GF_ENOTFOUND, other 23xxx/22xxx → GF_EINVAL, 57014 → GF_ETIMEOUT, connection classes
 * 08xxx/57P0x, 25P03 (the session was ended for idling in a transaction) or a broken connection →
 * GF_EUNAVAILABLE, else GF_EINTERNAL. */
enum gf_status gf_db_status(const PGresult *res, PGconn *conn);

/* True when the result's SQLSTATE equals sqlstate (5 chars). */
bool gf_db_sqlstate_is(const PGresult *res, const char *sqlstate);

/* Ends the open transaction on conn with ROLLBACK when the connection still stands (a broken
 * one is dropped by the pool on release, and the server rolls back when its session ends);
 * a failed ROLLBACK leaves the connection mid-transaction, which the pool will not lend again.
 * Every hand-run transaction (BEGIN ... COMMIT outside gf_db_transaction) ends through this
 * on its failure paths. */
void gf_db_rollback(struct gf_db_conn *conn);

/* The body of a transaction: runs statements on conn; returns GF_OK to commit. */
typedef enum gf_status (*gf_db_tx_fn)(struct gf_db_conn *conn, void *arg);

/* BEGIN; fn; COMMIT — re-run whole (bounded, jittered back-off) when it fails with
 * serialization failure or deadlock (40001/40P01), never for other errors; ROLLBACK when
 * fn fails. fn must therefore be safe to run again (write its outputs only at the end or
 * reset them at the start). Returns fn's status, or the COMMIT's. */
enum gf_status gf_db_transaction(struct gf_db_conn *conn, gf_db_tx_fn fn, void *arg) GF_MUSTCHECK;

/* Pool figures for /metrics and /readyz. */
struct gf_db_pool_stats {
    int size, open, in_use;
    uint64_t acquired, timeouts, connect_failures;
};
void gf_db_pool_stats(struct gf_db_pool *pool, struct gf_db_pool_stats *out);

/* Registers the gauges gf_db_pool_in_use and gf_db_pool_open for this pool, labelled
 * pool="<name>" (a plain word: main, relay, ...), so that every pool of a process is shown.
 * The pool must outlive every /metrics render: free it after the HTTP server has stopped. */
void gf_db_pool_register_metrics(struct gf_db_pool *pool, const char *name);

/* Acquires a connection, runs SELECT 1, releases: GF_OK when the database answers. */
enum gf_status gf_db_ping(struct gf_db_pool *pool) GF_MUSTCHECK;

/* ---- pipelined single statements ----------------------------------------------------- */

/* A few connections in libpq pipeline mode, each driven by its own thread. Callers on any
 * thread submit ONE statement that is its own transaction (a Sync follows each) and wait
 * for its result; statements that arrive while a batch is in flight go out together in the
 * next one. Many concurrent short statements then cost the server one wake-up per batch
 * instead of one per statement. Not for multi-statement transactions: use the pool. */
struct gf_db_pipeline;

/* opt->size is the number of pipelined connections (threads). Connects lazily. */
struct gf_db_pipeline *gf_db_pipeline_new(const struct gf_db_pool_options *opt);
/* Fails what is queued with GF_ESHUTDOWN, joins the threads, frees. NULL is a no-op. */
void gf_db_pipeline_free(struct gf_db_pipeline *pl);
/* The pool's gauges for the pipeline's connections, labelled pool="<name>": gf_db_pool_open
 * counts those connected, gf_db_pool_in_use those carrying a batch (when it equals open, new
 * statements wait for the next batch). Same lifetime rule as gf_db_pool_register_metrics. */
void gf_db_pipeline_register_metrics(struct gf_db_pipeline *pl, const char *name);

/* Same contract as gf_db_exec (prepared by name on first use per connection; on success
 * *res_out holds the result), but the statement runs through the pipeline; the caller
 * waits for it. Fails fast with GF_EUNAVAILABLE while the database is unreachable. */
enum gf_status gf_db_pipeline_exec(struct gf_db_pipeline *pl, const char *name, const char *sql,
                                   int nparams, const char *const *params,
                                   PGresult **res_out) GF_MUSTCHECK;

/* The result of a submitted statement: res (NULL unless st is GF_OK) is the callee's to
 * PQclear. Runs on a pipeline thread — or on the submitting thread when the statement could
 * not be queued — and must not block; it may submit again. */
typedef void (*gf_db_done_fn)(void *arg, enum gf_status st, PGresult *res);

/* The same without waiting: done(arg, ...) is called exactly once. name, sql and params
 * must stay valid until then. */
void gf_db_pipeline_submit(struct gf_db_pipeline *pl, const char *name, const char *sql,
                           int nparams, const char *const *params, gf_db_done_fn done, void *arg);

#endif
