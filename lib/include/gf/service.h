/* What every service's main does the same way: its command line, signal handling, applying
 * its schema while waiting for its database (any start order works), and a bounded drain. */
#ifndef GF_SERVICE_H
#define GF_SERVICE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "gf/clock.h"
#include "gf/config.h"
#include "gf/db.h"
#include "gf/migrate.h"

enum gf_service_mode {
    GF_SERVICE_RUN,          /* no argument: start the service */
    GF_SERVICE_HELP,         /* --help or -h: print gf_config_usage to stdout, exit 0 */
    GF_SERVICE_CHECK_CONFIG, /* --check-config: load the configuration as a start does, print
                                it with gf_config_print, exit 0 or GF_EX_CONFIG */
    GF_SERVICE_BAD_ARGS,     /* anything else: already reported; exit GF_EX_USAGE */
};

#define GF_EX_USAGE 2

/* Reads a service's command line. --help wins over --check-config when both are given; an
 * argument that is neither is reported on stderr as one line, `<program>: unknown argument
 * '<arg>' (try --help)`, and gives GF_SERVICE_BAD_ARGS. Touches nothing else. */
enum gf_service_mode gf_service_args(int argc, char **argv, const char *program);

/* A service's first step, shared by every main: reads the command line, then the
 * configuration. --help prints the table; --check-config loads and checks it as a start
 * would, prints it and stops; a start loads and checks it (invalid variables are logged) and
 * goes on. `check` (may be NULL) adds the program's cross-variable rules. Returns -1 when the
 * service should start (cfg loaded; the caller logs it and frees it at exit), otherwise the
 * exit code to return (cfg already freed). */
int gf_service_configure(int argc, char **argv, const char *program,
                         const struct gf_config_def *defs, size_t n, void *cfg,
                         enum gf_status (*check)(const void *cfg));

/* Blocks SIGTERM and SIGINT in the calling thread and ignores SIGPIPE. Call it first, before
 * any thread (gRPC's included) starts, so that every thread inherits the mask and the signals
 * are taken only by gf_service_wait_signal. *set receives the two signals. */
void gf_service_block_signals(sigset_t *set);

/* Waits up to ms (forever when negative) for one of the signals in set; true when one came. */
bool gf_service_wait_signal(const sigset_t *set, int64_t ms);

enum gf_startup { GF_STARTED, GF_STOPPED, GF_START_FAILED };

/* Applies `service`'s migrations, retrying with jittered back-off while the database is
 * unreachable. GF_STOPPED when a signal came first; GF_START_FAILED when a migration is
 * broken or was edited (that will not fix itself). */
enum gf_startup gf_service_migrate(struct gf_db_pool *pool, const char *service,
                                   const struct gf_migration *migrations, int n,
                                   const sigset_t *signals);

/* The shutdown watchdog. What follows a service's signal — in-flight work finishing, threads
 * joined, pools closed — must end: a drain stuck on a hung peer would keep a stopping process
 * (a pod) alive until SIGKILL, holding its connections. gf_service_drain_begin starts a
 * thread that, unless gf_service_drain_end comes within grace_ms + GF_SERVICE_DRAIN_SLACK_MS,
 * logs one error line and ends the process at once with _exit(EXIT_FAILURE): in-flight work
 * gets grace_ms (the returned deadline: pass what is left of it to what takes a grace period,
 * such as gf_grpc_server_stop), closing down after it the slack. Call it once, from the main
 * thread after gf_service_block_signals (so the thread inherits the mask), when the drain
 * begins; gf_service_drain_end stops and joins the thread (a no-op without a begin). If the
 * thread cannot start, the drain runs unbounded and a warning says so. */
#define GF_SERVICE_DRAIN_SLACK_MS 1000
struct gf_deadline gf_service_drain_begin(int64_t grace_ms);
void gf_service_drain_end(void);

#endif
