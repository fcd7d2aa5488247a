/* See service.h. */
#include "gf/service.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "gf/clock.h"
#include "gf/failpoint.h"
#include "gf/log.h"

enum gf_service_mode gf_service_args(int argc, char **argv, const char *program)
{
    enum gf_service_mode mode = GF_SERVICE_RUN;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            mode = GF_SERVICE_HELP;
        } else if (strcmp(argv[i], "--check-config") == 0) {
            if (mode != GF_SERVICE_HELP)
                mode = GF_SERVICE_CHECK_CONFIG;
        } else {
            fprintf(stderr, "%s: unknown argument '%s' (try --help)\n", program, argv[i]);
            return GF_SERVICE_BAD_ARGS;
        }
    }
    return mode;
}

void gf_service_block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Failpoints are read here, at start, so that an invalid GF_FAILPOINTS is reported at
     * once rather than the first time a point is reached. */
    if (!gf_failpoints_init())
        GF_WARN("failpoints disabled: GF_FAILPOINTS is invalid");
}

bool gf_service_wait_signal(const sigset_t *set, int64_t ms)
{
    struct gf_deadline until = gf_deadline_in_ms(ms);
    for (;;) {
        /* sigtimedwait takes a relative time: what is left, so an interruption does not
         * restart the whole wait. */
        int64_t left = gf_deadline_left_ms(until);
        struct timespec ts = {.tv_sec = (time_t)(left / 1000),
                              .tv_nsec = (long)(left % 1000) * 1000000L};
        int sig = ms < 0 ? sigwaitinfo(set, NULL) : sigtimedwait(set, NULL, &ts);
        if (sig > 0) {
            GF_INFO("signal received sig=%d: shutting down", sig);
            return true;
        }
        if (errno == EAGAIN)
            return false;
        /* EINTR: wait again */
    }
}

enum gf_startup gf_service_migrate(struct gf_db_pool *pool, const char *service,
                                   const struct gf_migration *migrations, int n,
                                   const sigset_t *signals)
{
    struct gf_backoff bo;
    gf_backoff_init(&bo, 200, 10000);
    for (;;) {
        struct gf_db_conn *c = NULL;
        enum gf_status st = gf_db_acquire(pool, &c);
        if (st == GF_OK) {
            st = gf_migrate(c, service, migrations, n);
            gf_db_release(pool, c);
            if (st == GF_OK)
                return GF_STARTED;
            if (st == GF_ECONFLICT || st == GF_EINVAL || st == GF_EINTERNAL)
                return GF_START_FAILED;
        }
        GF_LOG_RL(GF_LOG_WARN, 10000, "database not ready, retrying service=%s status=%s", service,
                  gf_status_str(st));
        if (gf_service_wait_signal(signals, gf_backoff_next(&bo)))
            return GF_STOPPED;
    }
}

/* Every open connection costs a descriptor, and the soft limit is often 1024: the services
 * take the hard limit, so thousands of idle clients cannot lock the probes out. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        GF_WARN("cannot raise RLIMIT_NOFILE from %llu to %llu: %s", (unsigned long long)was,
                (unsigned long long)rl.rlim_max, strerror(errno));
        return;
    }
    GF_INFO("RLIMIT_NOFILE raised from %llu to %llu", (unsigned long long)was,
            (unsigned long long)rl.rlim_max);
}

int gf_service_configure(int argc, char **argv, const char *program,
                         const struct gf_config_def *defs, size_t n, void *cfg,
                         enum gf_status (*check)(const void *cfg))
{
    enum gf_service_mode mode = gf_service_args(argc, argv, program);
    if (mode == GF_SERVICE_BAD_ARGS)
        return GF_EX_USAGE;
    if (mode == GF_SERVICE_HELP)
        return gf_config_usage(stdout, program, defs, n) == GF_OK ? EXIT_SUCCESS : EXIT_FAILURE;

    gf_log_init(program, GF_LOG_INFO);
    if (gf_config_load(defs, n, cfg) != GF_OK || (check != NULL && check(cfg) != GF_OK)) {
        GF_ERROR("invalid configuration: exiting");
        gf_config_free(defs, n, cfg);
        return GF_EX_CONFIG;
    }
    if (mode == GF_SERVICE_CHECK_CONFIG) {
        /* The same load as a start, then nothing more: no connection, no thread. */
        bool ok = gf_config_print(stdout, defs, n, cfg) == GF_OK;
        gf_config_free(defs, n, cfg);
        return ok ? EXIT_SUCCESS : EXIT_FAILURE;
    }
    raise_fd_limit();
    return -1;
}

/* ---- the shutdown watchdog ---------------------------------------------------------------- */

/* One per process: the main thread's drain. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* on CLOCK_MONOTONIC: a wall clock step must not move the limit */
    pthread_t thread;
    bool started, done;
    int64_t limit_ms;
    struct gf_deadline until;
} g_watchdog = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void *watchdog_run(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_watchdog.mu);
    while (!g_watchdog.done && !gf_deadline_passed(g_watchdog.until)) {
        struct timespec ts = gf_deadline_mono_ts(g_watchdog.until, -1);
        pthread_cond_timedwait(&g_watchdog.cv, &g_watchdog.mu, &ts);
    }
    bool late = !g_watchdog.done;
    pthread_mutex_unlock(&g_watchdog.mu);
    if (late) {
        GF_ERROR("shutdown took longer than %lld ms: exiting now", (long long)g_watchdog.limit_ms);
        _exit(EXIT_FAILURE);
    }
    return NULL;
}

struct gf_deadline gf_service_drain_begin(int64_t grace_ms)
{
    struct gf_deadline grace = gf_deadline_in_ms(grace_ms);
    if (g_watchdog.started)
        return grace;
    g_watchdog.limit_ms = grace_ms + GF_SERVICE_DRAIN_SLACK_MS;
    g_watchdog.until = gf_deadline_in_ms(g_watchdog.limit_ms);
    g_watchdog.done = false;
    gf_cond_init_mono(&g_watchdog.cv);
    g_watchdog.started = pthread_create(&g_watchdog.thread, NULL, watchdog_run, NULL) == 0;
    if (!g_watchdog.started) {
        GF_WARN("cannot start the shutdown watchdog: the drain is not bounded");
        pthread_cond_destroy(&g_watchdog.cv);
    }
    return grace;
}

void gf_service_drain_end(void)
{
    if (!g_watchdog.started)
        return;
    pthread_mutex_lock(&g_watchdog.mu);
    g_watchdog.done = true;
    pthread_cond_signal(&g_watchdog.cv);
    pthread_mutex_unlock(&g_watchdog.mu);
    pthread_join(g_watchdog.thread, NULL);
    pthread_cond_destroy(&g_watchdog.cv);
    g_watchdog.started = false;
}
