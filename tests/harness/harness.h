/* Test harness for integration and e2e tests: free ports, a per-process run directory,
 * spawned programs and throwaway PostgreSQL clusters that are always stopped again.
 * Everything started here is recorded under $GF_TEST_TMP (pids/, clusters/) so that
 * tests/harness/reap.sh can stop leftovers when a test process was killed. */
#ifndef GF_TEST_HARNESS_H
#define GF_TEST_HARNESS_H

#include <sys/types.h>

/* h_pg_start flags: publisher side (wal_level=logical) and subscriber side of logical
 * replication. */
#define H_PG_LOGICAL 0x1
#define H_PG_SUBSCRIBER 0x2
/* pg-cluster.sh --scram: TCP clients (postgres too) give a scram-sha-256 password; the Unix
 * socket in the data directory stays trusted. The conninfo below then needs a password. */
#define H_PG_SCRAM 0x4

/* A running throwaway cluster; connect with conninfo (user postgres, database postgres). */
struct h_pg {
    char datadir[512];
    int port;
    char conninfo[600];
};

/* A TCP port on 127.0.0.1 for a service of this process, or -1: from 31000-32767 (outside
 * the kernel's ephemeral range), free when picked, and given to no other process using this
 * function while this one runs (a lock file per port in /tmp/gf-port-locks). So a test can
 * stop a service and start it again on its ports. */
int h_free_port(void);

/* This process's scratch directory, $GF_TEST_TMP (default <cwd>/test-tmp) + /<program>-<pid>,
 * created (mode 0755) on first call. Returns NULL if it cannot be created. */
const char *h_run_dir(void);

/* Starts argv[0] (a path, or a name looked up in PATH) with the current environment plus
 * envp_extra ("K=V" entries, NULL-terminated, may be NULL; they override), stdin from /dev/null,
 * stdout and stderr appended to log_path. The child gets SIGTERM if this thread dies. Returns
 * the pid, or -1 if the program could not be started (exec failures are detected). */
pid_t h_spawn(const char *const argv[], const char *const envp_extra[], const char *log_path);

/* Stops a pid returned by h_spawn: SIGTERM, up to grace_ms for it to exit, then SIGKILL.
 * Also collects a process that already exited by itself. Returns the status as stored by
 * waitpid (use WIFEXITED & co), or -1. */
int h_stop(pid_t pid, int grace_ms);

/* Starts a cluster in h_run_dir()/name on a free port (a few ports are tried). flags is a
 * combination of H_PG_LOGICAL and H_PG_SUBSCRIBER. Fills *pg and returns 0, or -1. The same
 * name can be started again after h_pg_stop (same data, new port). */
int h_pg_start(struct h_pg *pg, const char *name, int flags);

/* Stops a cluster started by h_pg_start (fast, then immediate, then SIGKILL); keeps its data,
 * and the harness keeps knowing it, so h_pg_restart brings it back. Returns 0, or -1. */
int h_pg_stop(struct h_pg *pg);

/* Stops (if running) and starts the cluster again: same data directory, same port, same
 * flags. Also for a cluster stopped with h_pg_stop. Returns 0, or -1. */
int h_pg_restart(struct h_pg *pg);

/* Waits until 127.0.0.1:port accepts a TCP connection. Returns 0, or -1 after timeout_ms. */
int h_wait_tcp(int port, int timeout_ms);

/* ---- the run's RabbitMQ node --------------------------------------------------------------
 * One private node per ctest run, started by the `broker` fixture (tests/harness/rabbitmq.sh
 * start $GF_TEST_TMP/broker) and stopped by its cleanup; it listens on 127.0.0.1 only, with
 * its own node name, ports, epmd and data directory. Each test process works in a vhost of
 * its own, so tests never see each other's queues. */
struct h_rmq {
    int port;       /* AMQP port on 127.0.0.1 */
    char vhost[64]; /* this process's private vhost */
    char url[256];  /* amqp://guest:guest@127.0.0.1:<port>/<vhost> */
};

/* Finds the run's node (from $GF_TEST_TMP/broker/env) and creates a fresh, empty vhost for
 * this process (name from the program and pid; guest may do everything in it). Deleted again
 * by h_cleanup_all. 0, or -1 when there is no broker (the fixture did not run). */
int h_rmq_open(struct h_rmq *r);

/* Runs rabbitmqctl against the run's node with args (NULL-terminated, without the program
 * name); stdout (trailing blanks trimmed) into out[n] when out is not NULL. Returns its exit
 * code, or -1 when it could not run. */
int h_rmq_ctl(const char *const args[], char *out, size_t n);

/* Forcibly closes (rabbitmqctl close_connection) every connection in r's vhost whose
 * client-provided connection_name contains name_part (every one when NULL). Returns how many
 * were closed, or -1. */
int h_rmq_close_connections(const struct h_rmq *r, const char *name_part);

/* Messages in queue (ready + unacknowledged) in r's vhost, or -1 (no such queue, error). */
long h_rmq_queue_depth(const struct h_rmq *r, const char *queue);

/* Deletes a queue of r's vhost. 0 or -1. */
int h_rmq_delete_queue(const struct h_rmq *r, const char *queue);

/* Stops every program and cluster this process started and has not stopped yet. Also runs
 * from atexit (installed on first use); does nothing in a forked child. */
void h_cleanup_all(void);

#endif
