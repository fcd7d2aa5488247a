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

/* A running throwaway cluster; connect with conninfo (user postgres, database postgres). */
struct h_pg {
    char datadir[512];
    int port;
    char conninfo[600];
};

/* A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close), or -1.
 * Racy by nature: callers that bind it later retry on failure. */
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

/* Stops every program and cluster this process started and has not stopped yet. Also runs
 * from atexit (installed on first use); does nothing in a forked child. */
void h_cleanup_all(void);

#endif
