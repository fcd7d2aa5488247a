/* gxp's subscription to backend-db's decisions, watched for real (issue 20, item 5): readiness
 * and the metrics say "not streaming" when it is disabled, when its apply worker keeps
 * failing, or while it is missing or copying; a subscription re-created over a replica that
 * still holds rows streams again (the replica is emptied, the copy applies every decision once
 * more, idempotently) instead of failing its copy for ever; and the replication link carries
 * TCP keepalives and a user timeout. One world (gxp, both clusters, the stand-in coordinator);
 * every test ends with SPEC §5's invariants on gxp-db. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "gf/clock.h"
#include "gxp_fixture.h"

#define WAIT_MS 20000

static uint32_t next_user = 1;

static int setup(void **state)
{
    (void)state;
    /* A long pending timeout: decisions here must arrive by replication, not the resolver. */
    return world_start(&W, 600000);
}

/* GET path on gxp's HTTP port into out (the body, or the status code with code_only). */
static void get(const char *path, bool code_only, char *out, size_t n)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "curl -s -m 5 %s http://127.0.0.1:%d%s",
             code_only ? "-o /dev/null -w '%{http_code}'" : "", W.http_port, path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t len = fread(out, 1, n - 1, p);
    out[len] = '\0';
    pclose(p);
}

static int readyz(void)
{
    char out[16];
    get("/readyz", true, out, sizeof out);
    return atoi(out);
}

/* The value of the series whose line starts with series (name and labels), or -1. */
static double metric(const char *series)
{
    static char body[1 << 20];
    get("/metrics", false, body, sizeof body);
    size_t n = strlen(series);
    for (char *line = body; line != NULL && *line;) {
        char *next = strchr(line, '\n');
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
        line = next ? next + 1 : NULL;
    }
    return -1;
}

/* Waits until /readyz answers code and gxp_subscription_state{state} is 1. */
static int wait_health(int code, const char *state, int timeout_ms)
{
    char series[96];
    snprintf(series, sizeof series, "gxp_subscription_state{state=\"%s\"}", state);
    int64_t end = gf_mono_ms() + timeout_ms;
    int got = -1;
    double m = -1;
    do {
        got = readyz();
        m = metric(series);
        if (got == code && m == 1)
            return 0;
        usleep(200 * 1000);
    } while (gf_mono_ms() < end);
    fprintf(stderr, "readyz %d (want %d), %s = %g (log %s)\n", got, code, series, m, W.gxp_log);
    return -1;
}

static void the_replication_link_has_keepalives_and_a_user_timeout(void **state)
{
    (void)state;
    assert_int_equal(wait_health(200, "streaming", WAIT_MS), 0);
    assert_true(metric("gxp_subscription_ready") == 1);
    char conninfo[1024];
    sql_text(W.gxp, conninfo, sizeof conninfo,
             "SELECT subconninfo FROM pg_subscription WHERE subname = 'transaction_outbox_sub'");
    static const char *const want[] = {"keepalives=1",           "keepalives_idle=5",
                                       "keepalives_interval=2",  "keepalives_count=3",
                                       "tcp_user_timeout=10000", NULL};
    for (int i = 0; want[i]; i++) {
        if (strstr(conninfo, want[i]) == NULL)
            fail_msg("the subscription's conninfo lacks %s: %s", want[i], conninfo);
    }
}

static void a_disabled_subscription_turns_readiness_red_until_enabled(void **state)
{
    (void)state;
    assert_int_equal(wait_health(200, "streaming", WAIT_MS), 0);
    sql_exec(W.gxp, "ALTER SUBSCRIPTION transaction_outbox_sub DISABLE");
    assert_int_equal(wait_health(503, "disabled", WAIT_MS), 0);
    assert_true(metric("gxp_subscription_ready") == 0);
    /* gxp never enables it behind the operator's back. */
    usleep(2000 * 1000);
    assert_int_equal(readyz(), 503);
    sql_exec(W.gxp, "ALTER SUBSCRIPTION transaction_outbox_sub ENABLE");
    assert_int_equal(wait_health(200, "streaming", WAIT_MS), 0);
    uint32_t u = next_user++;
    fund(&W, u, 10);
}

/* The apply worker keeps failing on a row (a constraint planted on gxp-db's replica refuses
 * one decision): the table stays in state 'r' and a worker keeps being restarted, which is
 * what the old check called ready. */
static void an_apply_worker_that_keeps_failing_turns_readiness_red(void **state)
{
    (void)state;
    uint32_t u = next_user++;
    fund(&W, u, 100);
    assert_int_equal(wait_health(200, "streaming", WAIT_MS), 0);
    char poisoned[37], after[37];
    new_cid(poisoned);
    new_cid(after);
    assert_int_equal(rpc_prepare(&W, u, 1, 10, after), GRPC_STATUS_OK);
    sql_exec(W.gxp,
             "ALTER TABLE transaction_outbox ADD CONSTRAINT test_poison"
             " CHECK (correlation_id <> '%s') NOT VALID",
             poisoned);
    decide(&W, poisoned, "failed");
    decide(&W, after, "succeeded");
    assert_int_equal(wait_health(503, "erroring", WAIT_MS), 0);
    assert_true(metric("gxp_subscription_ready") == 0);
    assert_true(metric("gxp_subscription_apply_errors") >= 1);
    /* Stalled: the decision behind the refused row waits. */
    assert_int_equal(
        sql_ll(W.gxp, "SELECT status FROM gxp_transaction WHERE correlation_id = '%s'", after), 0);
    /* The cause removed, both arrive, and readiness comes back once the errors stopped. */
    sql_exec(W.gxp, "ALTER TABLE transaction_outbox DROP CONSTRAINT test_poison");
    assert_int_equal(wait_status(&W, after, 2, WAIT_MS), 0);
    assert_int_equal(wait_decision(&W, poisoned, WAIT_MS), 0);
    assert_int_equal(wait_health(200, "streaming", 30000), 0);
}

/* Regression (issue 20, item 5): a subscription created again over a replica that still held
 * the earlier one's rows copied into them, failed on the primary key, and retried for ever. */
static void a_subscription_recreated_over_a_full_replica_streams_and_loses_no_decision(void **state)
{
    (void)state;
    uint32_t u = next_user++;
    fund(&W, u, 100);
    char c[4][37];
    for (int i = 0; i < 4; i++) {
        new_cid(c[i]);
        assert_int_equal(rpc_prepare(&W, u, i % 2, 10, c[i]), GRPC_STATUS_OK);
    }
    assert_true(sql_ll(W.gxp, "SELECT count(*) FROM transaction_outbox") > 0);
    /* gxp stopped; the subscription dropped (its slot with it), as an operator recovering a
     * lost slot would; decisions committed meanwhile reach no slot at all. */
    int status = h_stop(W.gxp_pid, 10000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    W.gxp_pid = -1;
    sql_exec(W.gxp, "DROP SUBSCRIPTION transaction_outbox_sub");
    for (int i = 0; i < 4; i++)
        decide(&W, c[i], i < 2 ? "succeeded" : "failed");
    long long decisions = sql_ll(W.backend, "SELECT count(*) FROM transaction_outbox");
    W.gxp_pid = world_spawn_gxp(&W, W.grpc_port, W.http_port, "gxp-recreate.log");
    assert_true(W.gxp_pid > 0);
    assert_int_equal(world_wait_gxp(W.grpc_port, WAIT_MS), 0);
    /* Created again, the replica emptied and copied: every decision arrives once. */
    for (int i = 0; i < 4; i++)
        assert_int_equal(wait_status(&W, c[i], i < 2 ? 2 : 1, WAIT_MS), 0);
    assert_int_equal(wait_health(200, "streaming", WAIT_MS), 0);
    assert_int_equal(
        sql_ll(W.gxp, "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate = 'r'"), 1);
    assert_int_equal(sql_ll(W.gxp, "SELECT count(*) FROM transaction_outbox"), decisions);
    assert_int_equal(sql_ll(W.gxp, "SELECT count(*) FROM decision"), decisions);
    assert_true(metric("gxp_subscription_created_total") == 1);
    /* +10 (ADD c0), -10 (SUBTRACT c1), the failed ones change nothing; nothing applied twice. */
    uint32_t balance = 0, reserved = 0;
    assert_int_equal(rpc_balance(&W, u, &balance, &reserved), GRPC_STATUS_OK);
    assert_int_equal(balance, 100);
    assert_int_equal(reserved, 0);
    /* And it streams: a decision made now arrives. */
    char later[37];
    new_cid(later);
    assert_int_equal(rpc_prepare(&W, u, 1, 5, later), GRPC_STATUS_OK);
    decide(&W, later, "succeeded");
    assert_int_equal(wait_status(&W, later, 2, WAIT_MS), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(the_replication_link_has_keepalives_and_a_user_timeout,
                                  world_check),
        cmocka_unit_test_teardown(a_disabled_subscription_turns_readiness_red_until_enabled,
                                  world_check),
        cmocka_unit_test_teardown(an_apply_worker_that_keeps_failing_turns_readiness_red,
                                  world_check),
        cmocka_unit_test_teardown(
            a_subscription_recreated_over_a_full_replica_streams_and_loses_no_decision,
            world_check),
    };
    if (getenv("GF_TEST_FILTER"))
        cmocka_set_test_filter(getenv("GF_TEST_FILTER"));
    return cmocka_run_group_tests_name("gxp_subscription", tests, setup, world_teardown);
}
