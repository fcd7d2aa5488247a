/* The world a gxp integration test runs in: backend-db (publisher of the decisions),
 * gxp-db (subscriber), a stand-in coordinator serving backend.Backend/ResolveTransaction
 * in-process, and the real gxp binary — all on free ports, all stopped at the end. */
#ifndef GXP_FIXTURE_H
#define GXP_FIXTURE_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "coordinator.h"
#include "gf/grpc.h"
#include "gxp.pb-c.h"
#include "harness.h"
#include "sql_helpers.h"

struct gxp_world {
    struct h_pg backend_db, gxp_db;
    PGconn *backend, *gxp; /* test's own connections, for setup and checks */
    int grpc_port, http_port, coordinator_port;
    pid_t gxp_pid;
    char gxp_log[600];
    struct gf_grpc_client *client;   /* to gxp */
    struct coordinator *coordinator; /* stand-in serving ResolveTransaction */
    int pending_timeout_ms;
};

/* The world of this test program, and cmocka hooks on it: stop it all (failing when gxp
 * did not exit cleanly), and check the invariants after each test. */
extern struct gxp_world W;
int world_teardown(void **state);
int world_check(void **state);

/* Starts everything; pending_timeout_ms is passed to gxp as GXP_PENDING_TIMEOUT_MS. */
int world_start(struct gxp_world *w, int pending_timeout_ms);
/* Stops everything; -1 when gxp did not exit cleanly (0) on SIGTERM. */
int world_stop(struct gxp_world *w);

/* Starts (another) gxp process on this world; ports 0 = pick free ones. */
pid_t world_spawn_gxp(struct gxp_world *w, int grpc_port, int http_port, const char *log_name);
/* Waits until gxp answers GetAll on grpc_port. */
int world_wait_gxp(int grpc_port, int timeout_ms);

/* RPC helpers (to gxp). */
grpc_status_code rpc_create_balance(struct gxp_world *w, uint32_t user);
grpc_status_code rpc_prepare(struct gxp_world *w, uint32_t user, int type, uint32_t amount,
                             const char *cid);
grpc_status_code rpc_balance(struct gxp_world *w, uint32_t user, uint32_t *balance,
                             uint32_t *reserved);

/* Decides on backend-db, as the coordinator does: INSERT, never upsert. */
void decide(struct gxp_world *w, const char *cid, const char *state);
/* Waits until gxp-db's transaction for cid has status (0..2), or -1 on timeout. */
int wait_status(struct gxp_world *w, const char *cid, int status, int timeout_ms);
/* Waits until gxp-db has received a decision for cid. */
int wait_decision(struct gxp_world *w, const char *cid, int timeout_ms);

/* Gives a user a committed balance of amount (create + ADD prepare + succeeded). */
void fund(struct gxp_world *w, uint32_t user, uint32_t amount);

/* SPEC §5's invariants on gxp-db; fails the test on any violation. */
void check_invariants(struct gxp_world *w);

#endif
