/* The decisions' replication from backend-db to gxp-db when gxp-db stays away too long
 * (issue 20, item 5), against the real backend and gxp: the backend's metrics show the WAL
 * gxp's slot retains and its wal_status; with max_slot_wal_keep_size set, the slot is lost;
 * gxp's readiness turns red; scripts/replication-recover.sh drops and re-creates the
 * subscription and proves that every decision of backend-db reached gxp-db and was applied
 * once; the invariants across both databases hold at the end. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend_fixture.h"
#include "gf/clock.h"

#define WAIT_MS 20000

static int setup(void **state)
{
    (void)state;
    /* Decisions must come by replication (or not at all), not through the resolver. */
    struct world_options o = {.pending_timeout_ms = 600000, .watchers_off = true};
    return world_start(&W, &o);
}

static int wait_metric_at_least(const char *series, double min)
{
    int64_t end = gf_mono_ms() + WAIT_MS;
    double v = NAN;
    while (gf_mono_ms() < end) {
        v = world_metric(&W, series);
        if (v >= min)
            return 0;
        usleep(200 * 1000);
    }
    fprintf(stderr, "%s = %g, wanted at least %g\n", series, v, min);
    return -1;
}

static long gxp_readyz(void)
{
    int port = W.http_port;
    W.http_port = W.gxp_http_port; /* http() talks to W.http_port */
    struct http_res r;
    long st = http(&W, "GET", "/readyz", NULL, NULL, &r);
    http_res_free(&r);
    W.http_port = port;
    return st;
}

static int wait_gxp_readyz(long code)
{
    int64_t end = gf_mono_ms() + WAIT_MS;
    long st = 0;
    while (gf_mono_ms() < end) {
        if ((st = gxp_readyz()) == code)
            return 0;
        usleep(200 * 1000);
    }
    fprintf(stderr, "gxp /readyz %ld, wanted %ld (log %s)\n", st, code, W.gxp_log);
    return -1;
}

static const char *slot_status(char *out, size_t n)
{
    return sql_text(W.backend, out, n,
                    "SELECT coalesce((SELECT wal_status FROM pg_replication_slots"
                    " WHERE slot_name = 'transaction_outbox_sub'), 'none')");
}

/* Some WAL, then a segment switch, on backend-db. */
static void write_wal(int segments)
{
    sql_exec(W.backend, "CREATE TABLE IF NOT EXISTS test_wal_filler (x text)");
    for (int i = 0; i < segments; i++) {
        sql_exec(W.backend, "INSERT INTO test_wal_filler SELECT repeat('x', 2000)"
                            " FROM generate_series(1, 200)");
        sql_exec(W.backend, "SELECT pg_switch_wal()");
    }
}

static int run_recovery(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "GXP_DB_URL='%s' BACKEND_DB_URL='%s' bash '%s/scripts/replication-recover.sh' %s"
             " >>'%s/replication-recover.log' 2>&1",
             W.gxp_db.conninfo, W.backend_db.conninfo, GF_SOURCE_DIR, args, h_run_dir());
    int rc = system(cmd);
    if (!(WIFEXITED(rc) && WEXITSTATUS(rc) == 0)) {
        fprintf(stderr,
                "replication-recover.sh %s failed (rc %d): see %s/replication-recover.log\n", args,
                rc, h_run_dir());
        return -1;
    }
    return 0;
}

static void a_lost_slot_is_recovered_by_the_script_and_no_decision_is_lost(void **state)
{
    (void)state;
    long long user = api_create_user(&W, "outage-buyer");
    long long item = api_create_item(&W, "outage-item", 3);
    api_create_marketplace_item(&W, item, 10);
    api_add_gxp(&W, user, 100, NULL);
    assert_int_equal(
        wait_metric_at_least("backend_decisions_slot_wal_status{status=\"reserved\"}", 1), 0);
    assert_true(world_metric(&W, "backend_decisions_slot_retained_wal_bytes") >= 0);
    assert_int_equal(run_recovery("--check-only --timeout 10"), 0);

    /* gxp-db stops taking decisions (its subscription disabled: the slot is left behind). */
    assert_int_equal(wait_gxp_readyz(200), 0);
    sql_exec(W.gxp, "ALTER SUBSCRIPTION transaction_outbox_sub DISABLE");
    assert_int_equal(wait_gxp_readyz(503), 0);
    /* Buys and an add-gxp keep committing their decisions on backend-db. */
    char body[96];
    snprintf(body, sizeof body, "{\"userId\":%lld,\"itemId\":%lld}", user, item);
    for (int i = 0; i < 3; i++) {
        struct http_res r;
        assert_int_equal(http(&W, "POST", "/marketplace/item/buy", body, NULL, &r), 200);
        http_res_free(&r);
    }
    snprintf(body, sizeof body, "{\"userId\":%lld,\"amount\":%d}", user, 50);
    struct http_res r;
    assert_int_equal(http(&W, "POST", "/user/gxp/add", body, NULL, &r), 200);
    http_res_free(&r);
    balance_is(&W, user, 100, 9); /* reserved, not finalized: no decision reached gxp */

    /* The slot holds backend-db's WAL back, and the metric shows it. */
    write_wal(2);
    assert_int_equal(wait_metric_at_least("backend_decisions_slot_retained_wal_bytes", 16 << 20),
                     0);
    /* Past max_slot_wal_keep_size the next checkpoint invalidates the slot. */
    sql_exec(W.backend, "ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'");
    sql_exec(W.backend, "SELECT pg_reload_conf()");
    char status[32];
    for (int round = 0; round < 10 && strcmp(slot_status(status, sizeof status), "lost") != 0;
         round++) {
        write_wal(2);
        sql_exec(W.backend, "CHECKPOINT");
    }
    assert_string_equal(slot_status(status, sizeof status), "lost");
    assert_int_equal(wait_metric_at_least("backend_decisions_slot_wal_status{status=\"lost\"}", 1),
                     0);
    /* Enabled again, it cannot go on from a lost slot: still not ready. */
    sql_exec(W.gxp, "ALTER SUBSCRIPTION transaction_outbox_sub ENABLE");
    usleep(3000 * 1000);
    assert_int_equal(gxp_readyz(), 503);
    assert_int_equal(run_recovery("--check-only --timeout 2"), -1); /* decisions missing */

    /* The documented recovery: drop and re-create, then the check that nothing is lost. */
    assert_int_equal(run_recovery("--timeout 60"), 0);
    assert_int_equal(wait_gxp_readyz(200), 0);
    assert_int_equal(wait_no_pending(&W, WAIT_MS), 0);
    balance_is(&W, user, 100 - 9 + 50, 0);
    assert_int_equal(
        wait_metric_at_least("backend_decisions_slot_wal_status{status=\"reserved\"}", 1), 0);
    /* And it streams: a buy now is finalized by replication. */
    snprintf(body, sizeof body, "{\"userId\":%lld,\"itemId\":%lld}", user, item);
    assert_int_equal(http(&W, "POST", "/marketplace/item/buy", body, NULL, &r), 200);
    http_res_free(&r);
    assert_int_equal(wait_no_pending(&W, WAIT_MS), 0);
    balance_is(&W, user, 100 - 12 + 50, 0);
    sql_exec(W.backend, "ALTER SYSTEM RESET max_slot_wal_keep_size");
    sql_exec(W.backend, "SELECT pg_reload_conf()");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            a_lost_slot_is_recovered_by_the_script_and_no_decision_is_lost, setup,
            world_check_and_stop),
    };
    if (getenv("GF_TEST_FILTER"))
        cmocka_set_test_filter(getenv("GF_TEST_FILTER"));
    return cmocka_run_group_tests_name("replication", tests, NULL, NULL);
}
