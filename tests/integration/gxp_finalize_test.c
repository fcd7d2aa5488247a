/* Finalization of decisions carried by logical replication from backend-db, the resolver
 * of stuck transactions, and two gxp replicas sharing one gxp-db. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
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

#define PENDING_TIMEOUT_MS 1500

static uint32_t next_user = 2000;

static int setup(void **state)
{
    (void)state;
    return world_start(&W, PENDING_TIMEOUT_MS);
}

static void balance_is(uint32_t u, uint32_t want_balance, uint32_t want_reserved)
{
    uint32_t b = 0, r = 0;
    assert_int_equal(rpc_balance(&W, u, &b, &r), GRPC_STATUS_OK);
    assert_int_equal(b, want_balance);
    assert_int_equal(r, want_reserved);
}

static void add_succeeded_commits_and_add_failed_aborts(void **state)
{
    (void)state;
    uint32_t u = next_user++;
    char ok[37], ko[37];
    new_cid(ok), new_cid(ko);
    assert_int_equal(rpc_create_balance(&W, u), GRPC_STATUS_OK);
    assert_int_equal(rpc_prepare(&W, u, 0, 70, ok), GRPC_STATUS_OK);
    assert_int_equal(rpc_prepare(&W, u, 0, 30, ko), GRPC_STATUS_OK);
    balance_is(u, 0, 0); /* pending adds are not spendable */
    decide(&W, ok, "succeeded");
    decide(&W, ko, "failed");
    assert_int_equal(wait_status(&W, ok, 2, 10000), 0);
    assert_int_equal(wait_status(&W, ko, 1, 10000), 0);
    balance_is(u, 70, 0);
}

static void subtract_succeeded_releases_the_reservation_and_failed_returns_it(void **state)
{
    (void)state;
    uint32_t u = next_user++;
    char ok[37], ko[37];
    new_cid(ok), new_cid(ko);
    fund(&W, u, 100);
    assert_int_equal(rpc_prepare(&W, u, 1, 40, ok), GRPC_STATUS_OK);
    assert_int_equal(rpc_prepare(&W, u, 1, 25, ko), GRPC_STATUS_OK);
    balance_is(u, 100, 65);
    decide(&W, ok, "succeeded");
    assert_int_equal(wait_status(&W, ok, 2, 10000), 0);
    /* The original's bug: a committed SUBTRACT kept its reservation. */
    balance_is(u, 60, 25);
    decide(&W, ko, "failed");
    assert_int_equal(wait_status(&W, ko, 1, 10000), 0);
    balance_is(u, 60, 0);
}

static void a_duplicate_or_changed_decision_changes_nothing(void **state)
{
    (void)state;
    uint32_t u = next_user++;
    char cid[37];
    new_cid(cid);
    fund(&W, u, 100);
    assert_int_equal(rpc_prepare(&W, u, 1, 10, cid), GRPC_STATUS_OK);
    decide(&W, cid, "failed");
    assert_int_equal(wait_status(&W, cid, 1, 10000), 0);
    balance_is(u, 100, 0);
    /* The row changed on the publisher, then deleted and inserted again: the first
     * decision stands, nothing is applied twice. */
    sql_exec(W.backend,
             "UPDATE transaction_outbox SET state = 'succeeded' WHERE correlation_id = '%s'", cid);
    sql_exec(W.backend, "DELETE FROM transaction_outbox WHERE correlation_id = '%s'", cid);
    decide(&W, cid, "succeeded");
    /* A marker decided after them: once it arrives, the others have too (one apply stream). */
    char marker[37];
    new_cid(marker);
    decide(&W, marker, "failed");
    assert_int_equal(wait_decision(&W, marker, 10000), 0);
    assert_int_equal(
        sql_ll(W.gxp, "SELECT status FROM gxp_transaction WHERE correlation_id = '%s'", cid), 1);
    balance_is(u, 100, 0);
    assert_int_equal(sql_ll(W.gxp,
                            "SELECT count(*) FROM decision WHERE correlation_id = '%s'"
                            " AND state = 'failed'",
                            cid),
                     1);
}

static void a_decision_before_its_prepare_makes_the_prepare_fail(void **state)
{
    (void)state;
    uint32_t u = next_user++;
    char cid[37];
    new_cid(cid);
    fund(&W, u, 100);
    decide(&W, cid, "failed");
    assert_int_equal(wait_decision(&W, cid, 10000), 0);
    assert_int_equal(rpc_prepare(&W, u, 1, 10, cid), GRPC_STATUS_FAILED_PRECONDITION);
    balance_is(u, 100, 0);
    assert_string_equal("no_prepare",
                        sql_ll(W.gxp,
                               "SELECT count(*) FROM decision WHERE correlation_id = '%s'"
                               " AND outcome = 'no_prepare'",
                               cid) == 1
                            ? "no_prepare"
                            : "?");
}

static void a_bad_row_or_a_failing_apply_never_stalls_replication(void **state)
{
    (void)state;
    uint32_t u = next_user++;
    char bogus[37], blocked[37], after[37];
    new_cid(bogus), new_cid(blocked), new_cid(after);
    fund(&W, u, 100);
    assert_int_equal(rpc_prepare(&W, u, 1, 10, blocked), GRPC_STATUS_OK);
    assert_int_equal(rpc_prepare(&W, u, 1, 20, after), GRPC_STATUS_OK);
    /* A state no coordinator should write, and a decision whose application fails (a
     * constraint planted on gxp-db makes recording it impossible). */
    sql_exec(
        W.backend,
        "ALTER TABLE transaction_outbox DROP CONSTRAINT IF EXISTS transaction_outbox_state_check");
    sql_exec(W.gxp, "ALTER TABLE decision ADD CONSTRAINT test_block CHECK (correlation_id <> '%s')",
             blocked);
    sql_exec(W.backend,
             "INSERT INTO transaction_outbox (correlation_id, state) VALUES ('%s', 'bogus')",
             bogus);
    decide(&W, blocked, "succeeded");
    decide(&W, after, "failed");
    /* Decisions behind them still arrive and apply. */
    assert_int_equal(wait_status(&W, after, 1, 10000), 0);
    assert_int_equal(sql_ll(W.gxp,
                            "SELECT count(*) FROM decision WHERE correlation_id = '%s'"
                            " AND outcome = 'invalid_state'",
                            bogus),
                     1);
    assert_int_equal(
        sql_ll(W.gxp, "SELECT status FROM gxp_transaction WHERE correlation_id = '%s'", blocked),
        0);
    balance_is(u, 100, 10); /* the failed application left nothing half-done */
    /* Once the cause is gone, the resolver finishes it: the coordinator's decision stands. */
    sql_exec(W.gxp, "ALTER TABLE decision DROP CONSTRAINT test_block");
    assert_int_equal(wait_status(&W, blocked, 2, PENDING_TIMEOUT_MS + 20000), 0);
    balance_is(u, 90, 0);
}

static void decisions_committed_while_gxp_is_stopped_are_finalized(void **state)
{
    (void)state;
    uint32_t u = next_user++;
    char c[4][37];
    fund(&W, u, 100);
    for (int i = 0; i < 4; i++) {
        new_cid(c[i]);
        assert_int_equal(rpc_prepare(&W, u, i % 2, 10, c[i]), GRPC_STATUS_OK);
    }
    int status = h_stop(W.gxp_pid, 10000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0); /* graceful SIGTERM */
    W.gxp_pid = -1;
    for (int i = 0; i < 4; i++)
        decide(&W, c[i], i < 2 ? "succeeded" : "failed");
    for (int i = 0; i < 4; i++)
        assert_int_equal(wait_status(&W, c[i], i < 2 ? 2 : 1, 10000), 0);
    W.gxp_pid = world_spawn_gxp(&W, W.grpc_port, W.http_port, "gxp-restarted.log");
    assert_true(W.gxp_pid > 0);
    assert_int_equal(world_wait_gxp(W.grpc_port, 20000), 0);
    /* +10 (ADD c0 succeeded), -10 (SUBTRACT c1 succeeded), failed ones change nothing. */
    balance_is(u, 100, 0);
}

static void a_stuck_transaction_is_resolved_with_the_coordinator(void **state)
{
    (void)state;
    uint32_t u = next_user++;
    char cid[37];
    new_cid(cid);
    fund(&W, u, 100);
    int calls = coordinator_calls(W.coordinator);
    assert_int_equal(rpc_prepare(&W, u, 1, 30, cid), GRPC_STATUS_OK);
    /* Not before the timeout: gxp never aborts on its own. */
    usleep((PENDING_TIMEOUT_MS / 2) * 1000);
    assert_int_equal(
        sql_ll(W.gxp, "SELECT status FROM gxp_transaction WHERE correlation_id = '%s'", cid), 0);
    /* Then the coordinator is asked; it records "failed" and gxp aborts. */
    assert_int_equal(wait_status(&W, cid, 1, PENDING_TIMEOUT_MS + 10000), 0);
    assert_true(coordinator_calls(W.coordinator) > calls);
    /* Waited for, not read once: PostgreSQL writes a commit's WAL record before the committing
     * session shows the commit to other sessions, so logical replication can apply a decision
     * on gxp-db a moment before a new snapshot on backend-db sees it (once, on a loaded ASan
     * run, this read found 0 rows while gxp-db had already aborted the transaction). */
    int64_t end = gf_mono_ms() + 5000;
    long long n;
    while ((n = sql_ll(W.backend,
                       "SELECT count(*) FROM transaction_outbox"
                       " WHERE correlation_id = '%s' AND state = 'failed'",
                       cid)) != 1 &&
           gf_mono_ms() < end)
        usleep(5 * 1000);
    assert_int_equal(n, 1);
    balance_is(u, 100, 0);
}

static void the_resolver_applies_a_success_that_replication_has_not_brought(void **state)
{
    (void)state;
    uint32_t u = next_user++;
    char cid[37];
    new_cid(cid);
    fund(&W, u, 100);
    assert_int_equal(rpc_prepare(&W, u, 1, 30, cid), GRPC_STATUS_OK);
    /* The coordinator committed, but replication is held back. */
    sql_exec(W.gxp, "ALTER SUBSCRIPTION transaction_outbox_sub DISABLE");
    decide(&W, cid, "succeeded");
    assert_int_equal(wait_status(&W, cid, 2, PENDING_TIMEOUT_MS + 10000), 0);
    assert_int_equal(sql_ll(W.gxp,
                            "SELECT count(*) FROM decision WHERE correlation_id = '%s'"
                            " AND source = 'resolver'",
                            cid),
                     1);
    balance_is(u, 70, 0);
    /* Replication resumes and brings the same decision: nothing changes. */
    sql_exec(W.gxp, "ALTER SUBSCRIPTION transaction_outbox_sub ENABLE");
    int64_t end = gf_mono_ms() + 10000;
    while (gf_mono_ms() < end &&
           sql_ll(W.gxp, "SELECT count(*) FROM transaction_outbox WHERE correlation_id = '%s'",
                  cid) == 0)
        usleep(10000);
    assert_int_equal(
        sql_ll(W.gxp, "SELECT count(*) FROM transaction_outbox WHERE correlation_id = '%s'", cid),
        1);
    balance_is(u, 70, 0);
}

static void two_replicas_resolve_each_stuck_transaction_once(void **state)
{
    (void)state;
    uint32_t u = next_user++;
    fund(&W, u, 1000);
    int http2 = h_free_port(), grpc2 = h_free_port();
    pid_t second = world_spawn_gxp(&W, grpc2, http2, "gxp-replica2.log");
    assert_true(second > 0);
    assert_int_equal(world_wait_gxp(grpc2, 20000), 0);
    int calls = coordinator_calls(W.coordinator);
    enum { N = 20 };
    char c[N][37];
    for (int i = 0; i < N; i++) {
        new_cid(c[i]);
        assert_int_equal(rpc_prepare(&W, u, 1, 1, c[i]), GRPC_STATUS_OK);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(wait_status(&W, c[i], 1, PENDING_TIMEOUT_MS + 15000), 0);
    int status = h_stop(second, 10000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* Each was asked about exactly once, though two resolvers were scanning. */
    assert_int_equal(coordinator_calls(W.coordinator) - calls, N);
    balance_is(u, 1000, 0);
}

static void gxp_rides_out_a_restart_of_its_database(void **state)
{
    (void)state;
    uint32_t u = next_user++;
    fund(&W, u, 100);
    assert_int_equal(h_pg_stop(&W.gxp_db), 0);
    /* While gxp-db is down: a clear UNAVAILABLE, fast, and the process stays up. */
    for (int i = 0; i < 5; i++) {
        char cid[37];
        new_cid(cid);
        int64_t t0 = gf_mono_ms();
        assert_int_equal(rpc_prepare(&W, u, 1, 1, cid), GRPC_STATUS_UNAVAILABLE);
        assert_true(gf_mono_ms() - t0 < 3000);
    }
    assert_int_equal(h_pg_restart(&W.gxp_db), 0);
    PQreset(W.gxp);
    assert_int_equal(PQstatus(W.gxp), CONNECTION_OK);
    int64_t end = gf_mono_ms() + 20000;
    uint32_t b = 0, r = 0;
    grpc_status_code code = GRPC_STATUS_UNAVAILABLE;
    while (gf_mono_ms() < end && (code = rpc_balance(&W, u, &b, &r)) != GRPC_STATUS_OK)
        usleep(100 * 1000);
    assert_int_equal(code, GRPC_STATUS_OK);
    assert_int_equal(b, 100);
    /* And finalization flows again. */
    char cid[37];
    new_cid(cid);
    assert_int_equal(rpc_prepare(&W, u, 1, 10, cid), GRPC_STATUS_OK);
    decide(&W, cid, "succeeded");
    assert_int_equal(wait_status(&W, cid, 2, 15000), 0);
    balance_is(u, 90, 0);
}

static void any_start_order_works_gxp_before_both_databases(void **state)
{
    (void)state;
    /* Two fresh clusters, created then stopped so that their ports are known but nothing
     * answers; gxp starts first and must wait for them by itself. */
    struct h_pg gdb, bdb;
    assert_int_equal(h_pg_start(&gdb, "late-gxp-db", H_PG_SUBSCRIBER), 0);
    assert_int_equal(h_pg_start(&bdb, "late-backend-db", H_PG_LOGICAL), 0);
    assert_int_equal(h_pg_stop(&gdb), 0);
    assert_int_equal(h_pg_stop(&bdb), 0);
    struct gxp_world late = W;
    late.gxp_db = gdb;
    late.backend_db = bdb;
    int grpc = h_free_port(), http = h_free_port();
    pid_t pid = world_spawn_gxp(&late, grpc, http, "gxp-late.log");
    assert_true(pid > 0);
    usleep(1500 * 1000);
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0); /* still running, waiting */

    assert_int_equal(h_pg_restart(&gdb), 0);
    assert_int_equal(world_wait_gxp(grpc, 20000), 0);
    assert_int_equal(h_pg_restart(&bdb), 0);
    PGconn *b = PQconnectdb(bdb.conninfo), *g = PQconnectdb(gdb.conninfo);
    assert_int_equal(PQstatus(b), CONNECTION_OK);
    assert_int_equal(PQstatus(g), CONNECTION_OK);
    sql_exec(b, "%s", COORDINATOR_OUTBOX_SQL);
    char cid[37];
    new_cid(cid);
    sql_exec(b, "INSERT INTO transaction_outbox (correlation_id, state) VALUES ('%s', 'failed')",
             cid);
    /* The subscription appears, picks up the table, and the decision arrives. */
    int64_t end = gf_mono_ms() + 30000;
    while (gf_mono_ms() < end &&
           sql_ll(g, "SELECT count(*) FROM decision WHERE correlation_id = '%s'", cid) == 0)
        usleep(100 * 1000);
    assert_int_equal(sql_ll(g, "SELECT count(*) FROM decision WHERE correlation_id = '%s'", cid),
                     1);
    PQfinish(b);
    PQfinish(g);
    int status = h_stop(pid, 10000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

struct slow_call {
    uint32_t user;
    char cid[37];
    grpc_status_code code;
};

static void *slow_prepare(void *arg)
{
    struct slow_call *sc = arg;
    sc->code = rpc_prepare(&W, sc->user, 1, 5, sc->cid);
    return NULL;
}

static void sigterm_lets_an_in_flight_call_finish(void **state)
{
    (void)state;
    struct slow_call sc = {.user = next_user++};
    new_cid(sc.cid);
    fund(&W, sc.user, 100);
    /* Hold the balance row so that the prepare is still running when SIGTERM arrives. */
    sql_exec(W.gxp, "BEGIN");
    sql_exec(W.gxp, "SELECT 1 FROM balance WHERE user_id = %u FOR UPDATE", sc.user);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, slow_prepare, &sc), 0);
    int64_t end = gf_mono_ms() + 5000;
    PGconn *watch = PQconnectdb(W.gxp_db.conninfo);
    while (gf_mono_ms() < end &&
           sql_ll(watch, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'") ==
               0)
        usleep(10 * 1000);
    PQfinish(watch);
    assert_int_equal(kill(W.gxp_pid, SIGTERM), 0);
    usleep(300 * 1000);
    sql_exec(W.gxp, "COMMIT");
    pthread_join(th, NULL);
    assert_int_equal(sc.code, GRPC_STATUS_OK);
    int status = h_stop(W.gxp_pid, 10000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* The answered prepare was committed: its reservation is there. */
    assert_int_equal(sql_ll(W.gxp, "SELECT reserved FROM balance WHERE user_id = %u", sc.user), 5);
    W.gxp_pid = world_spawn_gxp(&W, W.grpc_port, W.http_port, "gxp-after-sigterm.log");
    assert_true(W.gxp_pid > 0);
    assert_int_equal(world_wait_gxp(W.grpc_port, 20000), 0);
    /* Aborted by the decision, or earlier by the resolver if the pending timeout passed
     * (then the coordinator has recorded "failed" already: the decision is written once). */
    sql_exec(W.backend,
             "INSERT INTO transaction_outbox (correlation_id, state) VALUES ('%s', 'failed')"
             " ON CONFLICT DO NOTHING",
             sc.cid);
    assert_int_equal(wait_status(&W, sc.cid, 1, 10000), 0);
    balance_is(sc.user, 100, 0);
}

static void health_endpoints_answer(void **state)
{
    (void)state;
    char cid[37];
    new_cid(cid);
    assert_int_equal(rpc_prepare(&W, 3999999998u, 1, 1, cid), GRPC_STATUS_NOT_FOUND);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "curl -s -o /dev/null -w '%%{http_code}' http://127.0.0.1:%d/readyz",
             W.http_port);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[16] = {0};
    assert_non_null(fgets(out, sizeof out, p));
    pclose(p);
    assert_string_equal(out, "200");
    snprintf(cmd, sizeof cmd, "curl -s http://127.0.0.1:%d/metrics", W.http_port);
    p = popen(cmd, "r");
    assert_non_null(p);
    char line[512];
    bool handled = false, resolver = false, pipeline = false;
    while (fgets(line, sizeof line, p)) {
        handled |=
            strstr(line, "gf_grpc_server_handled_total{method=\"/gxp.Gxp/TransactionPrepare\"") !=
            NULL;
        resolver |= strncmp(line, "gxp_resolver_asked_total", 24) == 0;
        pipeline |= strstr(line, "gf_db_pipeline_statements_total{app=\"gxp\"} ") == line;
    }
    pclose(p);
    assert_true(handled);
    assert_true(resolver);
    assert_true(pipeline);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(add_succeeded_commits_and_add_failed_aborts, world_check),
        cmocka_unit_test_teardown(subtract_succeeded_releases_the_reservation_and_failed_returns_it,
                                  world_check),
        cmocka_unit_test_teardown(a_duplicate_or_changed_decision_changes_nothing, world_check),
        cmocka_unit_test_teardown(a_decision_before_its_prepare_makes_the_prepare_fail,
                                  world_check),
        cmocka_unit_test_teardown(a_bad_row_or_a_failing_apply_never_stalls_replication,
                                  world_check),
        cmocka_unit_test_teardown(decisions_committed_while_gxp_is_stopped_are_finalized,
                                  world_check),
        cmocka_unit_test_teardown(a_stuck_transaction_is_resolved_with_the_coordinator,
                                  world_check),
        cmocka_unit_test_teardown(the_resolver_applies_a_success_that_replication_has_not_brought,
                                  world_check),
        cmocka_unit_test_teardown(two_replicas_resolve_each_stuck_transaction_once, world_check),
        cmocka_unit_test_teardown(gxp_rides_out_a_restart_of_its_database, world_check),
        cmocka_unit_test_teardown(any_start_order_works_gxp_before_both_databases, world_check),
        cmocka_unit_test_teardown(sigterm_lets_an_in_flight_call_finish, world_check),
        cmocka_unit_test_teardown(health_endpoints_answer, world_check),
    };
    return cmocka_run_group_tests_name("gxp_finalize", tests, setup, world_teardown);
}
