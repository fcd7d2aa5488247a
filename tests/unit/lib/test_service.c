/* Unit tests for lib/src/service.c: what each argument of the command line selects, the one
 * line an unknown argument gets on stderr, and the shutdown watchdog (a stuck drain ends the
 * process, a quick one does not). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gf/clock.h"
#include "gf/log.h"
#include "gf/service.h"

/* Runs gf_service_args on argv (NULL-terminated) and returns what it wrote to stderr in
 * *err (caller frees). */
static enum gf_service_mode args(char **argv, char **err)
{
    int argc = 0;
    while (argv[argc] != NULL)
        argc++;
    fflush(stderr);
    FILE *cap = tmpfile();
    assert_non_null(cap);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(cap), STDERR_FILENO) >= 0);
    enum gf_service_mode mode = gf_service_args(argc, argv, "svc");
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    long n = ftell(cap);
    assert_true(n >= 0);
    *err = calloc(1, (size_t)n + 1);
    assert_non_null(*err);
    rewind(cap);
    assert_int_equal(fread(*err, 1, (size_t)n, cap), (size_t)n);
    fclose(cap);
    return mode;
}

static void each_argument_selects_its_mode_silently(void **state)
{
    (void)state;
    struct {
        char *argv[4];
        enum gf_service_mode want;
    } cases[] = {
        {{"svc", NULL}, GF_SERVICE_RUN},
        {{"svc", "--help", NULL}, GF_SERVICE_HELP},
        {{"svc", "-h", NULL}, GF_SERVICE_HELP},
        {{"svc", "--check-config", NULL}, GF_SERVICE_CHECK_CONFIG},
        {{"svc", "--check-config", "--help", NULL}, GF_SERVICE_HELP},
        {{"svc", "--help", "--check-config", NULL}, GF_SERVICE_HELP},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err = NULL;
        assert_int_equal(args(cases[i].argv, &err), cases[i].want);
        assert_string_equal(err, "");
        free(err);
    }
}

static void an_unknown_argument_is_named_on_one_line(void **state)
{
    (void)state;
    char *cases[][4] = {
        {"svc", "--bogus", NULL},
        {"svc", "--check-config", "--bogus", NULL},
        {"svc", "--bogus", "--help", NULL}, /* even with --help: a typo must not go unnoticed */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err = NULL;
        assert_int_equal(args(cases[i], &err), GF_SERVICE_BAD_ARGS);
        assert_string_equal(err, "svc: unknown argument '--bogus' (try --help)\n");
        free(err);
    }
    char *near[][3] = {{"svc", "--HELP", NULL},
                       {"svc", "help", NULL},
                       {"svc", "--check-config=1", NULL},
                       {"svc", "", NULL}};
    for (size_t i = 0; i < sizeof near / sizeof near[0]; i++) {
        char *err = NULL;
        assert_int_equal(args(near[i], &err), GF_SERVICE_BAD_ARGS);
        char want[128];
        snprintf(want, sizeof want, "svc: unknown argument '%s' (try --help)\n", near[i][1]);
        assert_string_equal(err, want);
        free(err);
    }
}

/* ---- the shutdown watchdog ----------------------------------------------------------- */

#define GRACE_MS 100
#define LIMIT_MS (GRACE_MS + GF_SERVICE_DRAIN_SLACK_MS)

struct child {
    int status;     /* as waitpid gives it */
    int64_t ms;     /* from fork to exit */
    char log[1024]; /* what it wrote to stderr */
};

/* Runs body in a child process whose stderr is captured, waits for it (killing it after 20 s,
 * which fails the test), and fills *c. */
static void run_child(void (*body)(void), struct child *c)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    int64_t start = gf_mono_ms();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        gf_log_init("svc", GF_LOG_INFO);
        body();
        _exit(0);
    }
    close(fds[1]);
    int status = 0;
    pid_t got = 0;
    while ((got = waitpid(pid, &status, WNOHANG)) == 0 && gf_mono_ms() - start < 20000)
        gf_sleep_ms(10, NULL);
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("the child did not end within 20 s");
    }
    c->ms = gf_mono_ms() - start;
    c->status = status;
    ssize_t n = read(fds[0], c->log, sizeof c->log - 1);
    c->log[n > 0 ? n : 0] = '\0';
    close(fds[0]);
}

/* A drain that never ends: the process must not outlive the watchdog's limit by much. */
static void stuck_drain(void)
{
    gf_service_drain_begin(GRACE_MS);
    sleep(30);
}

/* A drain that ends in time, then a process that lives on past the limit: nothing fires. */
static void quick_drain(void)
{
    gf_service_drain_begin(GRACE_MS);
    gf_service_drain_end();
    gf_sleep_ms(LIMIT_MS + 500, NULL);
}

static void a_stuck_shutdown_ends_the_process_after_its_grace_and_slack(void **state)
{
    (void)state;
    struct child c;
    run_child(stuck_drain, &c);
    assert_true(WIFEXITED(c.status));
    assert_int_equal(WEXITSTATUS(c.status), EXIT_FAILURE);
    if (c.ms < LIMIT_MS || c.ms > LIMIT_MS + 5000)
        fail_msg("the stuck child ended after %lld ms, the limit is %d ms", (long long)c.ms,
                 LIMIT_MS);
    assert_non_null(strstr(c.log, "level=error"));
    assert_non_null(strstr(c.log, "shutdown took longer than 1100 ms: exiting now"));
}

static void a_quick_shutdown_is_left_alone(void **state)
{
    (void)state;
    struct child c;
    run_child(quick_drain, &c);
    assert_true(WIFEXITED(c.status));
    assert_int_equal(WEXITSTATUS(c.status), 0);
    assert_true(c.ms >= LIMIT_MS + 500); /* it lived past the limit */
    assert_string_equal(c.log, "");
}

/* The deadline handed back is the grace period alone (the slack is the watchdog's), and an
 * end without a begin, or a second end, is harmless. */
static void the_drain_deadline_is_the_grace_period(void **state)
{
    (void)state;
    gf_service_drain_end();
    struct gf_deadline d = gf_service_drain_begin(5000);
    int64_t left = gf_deadline_left_ms(d);
    assert_true(left > 4000 && left <= 5000);
    gf_service_drain_end();
    gf_service_drain_end();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_argument_selects_its_mode_silently),
        cmocka_unit_test(an_unknown_argument_is_named_on_one_line),
        cmocka_unit_test(a_stuck_shutdown_ends_the_process_after_its_grace_and_slack),
        cmocka_unit_test(a_quick_shutdown_is_left_alone),
        cmocka_unit_test(the_drain_deadline_is_the_grace_period),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
