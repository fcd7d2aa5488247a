/* The shared library's PostgreSQL parts against a real cluster: the pool, the transaction
 * helper's retry rule, and migrations run by several replicas at once. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gf/clock.h"
#include "gf/db.h"
#include "gf/log.h"
#include "gf/migrate.h"
#include "harness.h"

static struct h_pg PG;

static int setup(void **state)
{
    (void)state;
    gf_log_init("db-test", GF_LOG_ERROR);
    return h_pg_start(&PG, "db", 0);
}

static int teardown(void **state)
{
    (void)state;
    h_cleanup_all();
    return 0;
}

static struct gf_db_pool *pool_new(int size, int timeout_ms)
{
    struct gf_db_pool_options o = {.conninfo = PG.conninfo,
                                   .size = size,
                                   .acquire_timeout_ms = timeout_ms,
                                   .application_name = "t"};
    struct gf_db_pool *p = gf_db_pool_new(&o);
    assert_non_null(p);
    return p;
}

static long long scalar(struct gf_db_pool *p, const char *sql)
{
    struct gf_db_conn *c = NULL;
    PGresult *r = NULL;
    assert_int_equal(gf_db_acquire(p, &c), GF_OK);
    assert_int_equal(gf_db_exec(c, sql, sql, 0, NULL, &r), GF_OK);
    long long v = PQntuples(r) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : -1;
    PQclear(r);
    gf_db_release(p, c);
    return v;
}

static const struct gf_migration M[] = {
    {1, "001_table.sql",
     "CREATE TABLE mig_t (id int PRIMARY KEY);"
     "CREATE TABLE mig_runs (n int);"},
    {2, "002_row.sql", "INSERT INTO mig_runs VALUES (1); INSERT INTO mig_t VALUES (1);"},
    {5, "005_more.sql", "ALTER TABLE mig_t ADD COLUMN name text;"},
};

static void *migrate_thread(void *arg)
{
    enum gf_status *out = arg;
    struct gf_db_pool *p = pool_new(1, 5000);
    struct gf_db_conn *c = NULL;
    *out = gf_db_acquire(p, &c);
    if (*out == GF_OK) {
        *out = gf_migrate(c, "svc", M, 3);
        gf_db_release(p, c);
    }
    gf_db_pool_free(p);
    return NULL;
}

static void migrations_apply_once_with_four_replicas_starting_together(void **state)
{
    (void)state;
    pthread_t th[4];
    enum gf_status st[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, migrate_thread, &st[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(st[i], GF_OK);
    }
    struct gf_db_pool *p = pool_new(1, 5000);
    assert_int_equal(scalar(p, "SELECT count(*) FROM mig_runs"), 1);
    assert_int_equal(scalar(p, "SELECT count(*) FROM gf_schema_migrations WHERE service = 'svc'"),
                     3);
    assert_int_equal(scalar(p, "SELECT count(*) FROM information_schema.columns"
                               " WHERE table_name = 'mig_t' AND column_name = 'name'"),
                     1);
    /* Run again: nothing to do. */
    enum gf_status again;
    migrate_thread(&again);
    assert_int_equal(again, GF_OK);
    assert_int_equal(scalar(p, "SELECT count(*) FROM mig_runs"), 1);
    gf_db_pool_free(p);
}

static void an_edited_or_broken_migration_is_refused_and_leaves_nothing_behind(void **state)
{
    (void)state;
    struct gf_db_pool *p = pool_new(1, 5000);
    struct gf_db_conn *c = NULL;
    struct gf_migration edited[3] = {M[0], M[1], M[2]};
    edited[1].sql = "INSERT INTO mig_runs VALUES (2);";
    assert_int_equal(gf_db_acquire(p, &c), GF_OK);
    assert_int_equal(gf_migrate(c, "svc", edited, 3), GF_ECONFLICT);
    /* A migration that fails halfway is rolled back whole and not recorded. */
    const struct gf_migration broken[] = {
        {1, "001_half.sql", "CREATE TABLE half_t (id int); SELECT no_such_function();"}};
    assert_int_not_equal(gf_migrate(c, "other", broken, 1), GF_OK);
    gf_db_release(p, c);
    assert_int_equal(scalar(p, "SELECT count(*) FROM pg_tables WHERE tablename = 'half_t'"), 0);
    assert_int_equal(scalar(p, "SELECT count(*) FROM gf_schema_migrations WHERE service = 'other'"),
                     0);
    /* Out-of-order versions are a programming error, refused before touching anything. */
    const struct gf_migration disorder[] = {{2, "002_a.sql", "SELECT 1"},
                                            {1, "001_b.sql", "SELECT 1"}};
    assert_int_equal(gf_db_acquire(p, &c), GF_OK);
    assert_int_equal(gf_migrate(c, "disorder", disorder, 2), GF_EINVAL);
    gf_db_release(p, c);
    gf_db_pool_free(p);
}

/* The body fails with 40001 on its first two runs (the sequence survives rollbacks). */
static enum gf_status flaky_body(struct gf_db_conn *c, void *arg)
{
    (void)arg;
    return gf_db_exec(c, "flaky", "SELECT flaky()", 0, NULL, NULL);
}

static enum gf_status unique_body2(struct gf_db_conn *c, void *arg)
{
    (void)arg;
    enum gf_status st = gf_db_exec(c, "tries", "SELECT nextval('tries')", 0, NULL, NULL);
    if (st == GF_OK)
        st = gf_db_exec(c, "dup_insert", "INSERT INTO uniq VALUES (1)", 0, NULL, NULL);
    return st;
}

static void transactions_rerun_on_serialization_failure_but_not_on_constraint_errors(void **state)
{
    (void)state;
    struct gf_db_pool *p = pool_new(1, 5000);
    struct gf_db_conn *c = NULL;
    assert_int_equal(gf_db_acquire(p, &c), GF_OK);
    assert_int_equal(
        gf_db_exec_simple(c, "CREATE SEQUENCE tries; CREATE TABLE uniq (id int PRIMARY KEY);"
                             "INSERT INTO uniq VALUES (1);"
                             "CREATE FUNCTION flaky() RETURNS void LANGUAGE plpgsql AS $$"
                             " BEGIN IF nextval('tries') < 3 THEN"
                             "   RAISE EXCEPTION 'conflict' USING ERRCODE = '40001';"
                             " END IF; END $$;"),
        GF_OK);
    assert_int_equal(gf_db_transaction(c, flaky_body, NULL), GF_OK);
    assert_int_equal(gf_db_exec_simple(c, "SELECT setval('tries', 100)"), GF_OK);
    assert_int_equal(gf_db_transaction(c, unique_body2, NULL), GF_EEXISTS);
    gf_db_release(p, c);
    /* flaky ran 3 times (1, 2 failed; 3 passed); the duplicate insert ran once. */
    assert_int_equal(scalar(p, "SELECT last_value FROM tries"), 101);
    gf_db_pool_free(p);
}

static void the_pool_lends_at_most_size_connections_and_times_out(void **state)
{
    (void)state;
    struct gf_db_pool *p = pool_new(2, 300);
    struct gf_db_conn *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(gf_db_acquire(p, &a), GF_OK);
    assert_int_equal(gf_db_acquire(p, &b), GF_OK);
    int64_t t0 = gf_mono_ms();
    assert_int_equal(gf_db_acquire(p, &c), GF_ETIMEOUT);
    int64_t waited = gf_mono_ms() - t0;
    assert_true(waited >= 250 && waited < 2000);
    gf_db_release(p, a);
    assert_int_equal(gf_db_acquire(p, &c), GF_OK);
    /* A connection given back inside a transaction is closed, not lent again. */
    assert_int_equal(gf_db_exec_simple(c, "BEGIN"), GF_OK);
    gf_db_release(p, c);
    struct gf_db_pool_stats s;
    gf_db_pool_stats(p, &s);
    assert_int_equal(s.open, 1);
    assert_int_equal(s.in_use, 1);
    gf_db_release(p, b);
    gf_db_pool_free(p);
}

static void the_pool_fails_fast_while_the_database_is_down_and_recovers(void **state)
{
    (void)state;
    struct gf_db_pool *p = pool_new(2, 2000);
    assert_int_equal(scalar(p, "SELECT 1"), 1);
    assert_int_equal(h_pg_stop(&PG), 0);
    /* The idle connection is stale: its first use reports unavailable and it is dropped. */
    struct gf_db_conn *c = NULL;
    assert_int_equal(gf_db_acquire(p, &c), GF_OK);
    assert_int_equal(gf_db_exec(c, "one", "SELECT 1", 0, NULL, NULL), GF_EUNAVAILABLE);
    gf_db_release(p, c);
    for (int i = 0; i < 5; i++) {
        int64_t t0 = gf_mono_ms();
        assert_int_equal(gf_db_acquire(p, &c), GF_EUNAVAILABLE);
        assert_true(gf_mono_ms() - t0 < 1000);
    }
    assert_int_equal(h_pg_restart(&PG), 0);
    int64_t end = gf_mono_ms() + 15000;
    enum gf_status st = GF_EUNAVAILABLE;
    while (gf_mono_ms() < end && (st = gf_db_ping(p)) != GF_OK)
        gf_sleep_ms(100, NULL);
    assert_int_equal(st, GF_OK);
    gf_db_pool_free(p);
}

struct pl_worker {
    struct gf_db_pipeline *pl;
    int id, ok, failed;
};

/* Even workers insert a fresh row, odd ones a duplicate key: failures must stay their own. */
/* gf_db_exec_batch: statements sent together run in order; the first failure ends the batch,
 * names its index and leaves the connection usable; outside a transaction the batch is all or
 * nothing. */
static void batched_statements_run_in_order_and_stop_at_the_first_failure(void **state)
{
    (void)state;
    struct gf_db_pool *p = pool_new(1, 5000);
    struct gf_db_conn *c = NULL;
    assert_int_equal(gf_db_acquire(p, &c), GF_OK);
    assert_int_equal(gf_db_exec_simple(c, "CREATE TABLE bt (id int PRIMARY KEY, v int)"), GF_OK);
    const char *one[1] = {"1"}, *two[1] = {"2"}, *three[1] = {"3"};
    const char *ins = "INSERT INTO bt VALUES ($1::int, 0) RETURNING id * 10";
    PGresult *r[3];
    int failed = -1;

    /* BEGIN and a first statement in one round trip; the transaction stays open. */
    struct gf_db_stmt open[2] = {{"bt_begin", "BEGIN", 0, NULL}, {"bt_ins", ins, 1, one}};
    assert_int_equal(gf_db_exec_batch(c, open, 2, r, &failed), GF_OK);
    assert_int_equal(failed, 2);
    assert_string_equal(PQgetvalue(r[1], 0, 0), "10");
    PQclear(r[0]);
    PQclear(r[1]);
    assert_int_equal(PQtransactionStatus(gf_db_pgconn(c)), PQTRANS_INTRANS);
    assert_int_equal(gf_db_exec_simple(c, "COMMIT"), GF_OK);

    /* Outside a transaction: one implicit transaction. The duplicate fails, so 2 is not kept
     * either, and nothing after the failure runs. */
    struct gf_db_stmt dup[3] = {{"bt_ins", ins, 1, two},
                                {"bt_ins", ins, 1, one},
                                {"bt_upd", "UPDATE bt SET v = v + 1", 0, NULL}};
    assert_int_equal(gf_db_exec_batch(c, dup, 3, r, &failed), GF_EEXISTS);
    assert_int_equal(failed, 1);
    for (int i = 0; i < 3; i++)
        assert_null(r[i]);
    assert_int_equal(PQtransactionStatus(gf_db_pgconn(c)), PQTRANS_IDLE);

    /* Inside a transaction: the failure aborts it; ROLLBACK, and the connection goes on. */
    struct gf_db_stmt in_tx[3] = {
        {"bt_begin", "BEGIN", 0, NULL}, {"bt_ins", ins, 1, one}, {"bt_ins", ins, 1, three}};
    assert_int_equal(gf_db_exec_batch(c, in_tx, 3, NULL, &failed), GF_EEXISTS);
    assert_int_equal(failed, 1);
    assert_int_equal(PQtransactionStatus(gf_db_pgconn(c)), PQTRANS_INERROR);
    gf_db_rollback(c);

    /* A statement the server cannot parse fails the batch at its index too. */
    struct gf_db_stmt bad[2] = {{"bt_ins", ins, 1, three}, {"bt_bad", "SELEC 1", 0, NULL}};
    assert_int_equal(gf_db_exec_batch(c, bad, 2, r, &failed), GF_EINTERNAL);
    assert_int_equal(failed, 1);
    assert_int_equal(gf_db_exec_batch(c, bad, 0, r, &failed), GF_EINVAL);
    gf_db_release(p, c);

    /* The pool kept the connection (idle, out of pipeline mode): it answers, and only the
     * first BEGIN's row is there. */
    assert_int_equal(scalar(p, "SELECT count(*) * 100 + sum(v) * 10 + max(id) FROM bt"), 101);
    assert_int_equal(gf_db_acquire(p, &c), GF_OK);
    assert_int_equal(gf_db_exec_batch(c, dup + 2, 1, r, &failed), GF_OK);
    assert_string_equal(PQcmdTuples(r[0]), "1");
    PQclear(r[0]);
    gf_db_release(p, c);
    gf_db_pool_free(p);
}

static void *pl_work(void *arg)
{
    struct pl_worker *w = arg;
    for (int i = 0; i < 200; i++) {
        char key[32];
        snprintf(key, sizeof key, "%d", (w->id % 2) ? 0 : w->id * 1000 + i + 1);
        const char *params[1] = {key};
        PGresult *res = NULL;
        enum gf_status st = gf_db_pipeline_exec(
            w->pl, "pl_insert", "INSERT INTO pl_t VALUES ($1::int) RETURNING id", 1, params, &res);
        if (st == GF_OK) {
            w->ok += PQntuples(res) == 1 && atoi(PQgetvalue(res, 0, 0)) == atoi(key);
            PQclear(res);
        } else if (st == GF_EEXISTS) {
            w->failed++;
        }
    }
    return NULL;
}

static void pipelined_statements_are_separate_transactions_under_concurrency(void **state)
{
    (void)state;
    struct gf_db_pool *p = pool_new(1, 5000);
    struct gf_db_conn *c = NULL;
    assert_int_equal(gf_db_acquire(p, &c), GF_OK);
    assert_int_equal(gf_db_exec_simple(c, "CREATE TABLE pl_t (id int PRIMARY KEY);"
                                          "INSERT INTO pl_t VALUES (0)"),
                     GF_OK);
    gf_db_release(p, c);
    struct gf_db_pool_options o = {.conninfo = PG.conninfo, .size = 2, .application_name = "pl"};
    struct gf_db_pipeline *pl = gf_db_pipeline_new(&o);
    assert_non_null(pl);
    pthread_t th[8];
    struct pl_worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (struct pl_worker){.pl = pl, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, pl_work, &w[i]), 0);
    }
    int ok = 0, failed = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        ok += w[i].ok;
        failed += w[i].failed;
    }
    assert_int_equal(ok, 4 * 200);
    assert_int_equal(failed, 4 * 200);
    assert_int_equal(scalar(p, "SELECT count(*) FROM pl_t"), 4 * 200 + 1);
    /* A statement that cannot even be prepared fails alone. */
    assert_int_equal(
        gf_db_pipeline_exec(pl, "pl_bad", "SELECT * FROM no_such_table", 0, NULL, NULL),
        GF_EINTERNAL);
    PGresult *res = NULL;
    assert_int_equal(gf_db_pipeline_exec(pl, "pl_one", "SELECT 1", 0, NULL, &res), GF_OK);
    PQclear(res);
    gf_db_pipeline_free(pl);
    gf_db_pool_free(p);
}

static void the_pipeline_fails_fast_while_the_database_is_down_and_recovers(void **state)
{
    (void)state;
    struct gf_db_pool_options o = {.conninfo = PG.conninfo, .size = 2, .application_name = "pl"};
    struct gf_db_pipeline *pl = gf_db_pipeline_new(&o);
    assert_non_null(pl);
    assert_int_equal(gf_db_pipeline_exec(pl, "pl_one", "SELECT 1", 0, NULL, NULL), GF_OK);
    assert_int_equal(gf_db_pipeline_exec(pl, "pl_one", "SELECT 1", 0, NULL, NULL), GF_OK);
    assert_int_equal(h_pg_stop(&PG), 0);
    for (int i = 0; i < 10; i++) {
        int64_t t0 = gf_mono_ms();
        assert_int_equal(gf_db_pipeline_exec(pl, "pl_one", "SELECT 1", 0, NULL, NULL),
                         GF_EUNAVAILABLE);
        assert_true(gf_mono_ms() - t0 < 1000);
    }
    assert_int_equal(h_pg_restart(&PG), 0);
    int64_t end = gf_mono_ms() + 15000;
    enum gf_status st = GF_EUNAVAILABLE;
    while (gf_mono_ms() < end &&
           (st = gf_db_pipeline_exec(pl, "pl_one", "SELECT 1", 0, NULL, NULL)) != GF_OK)
        gf_sleep_ms(100, NULL);
    assert_int_equal(st, GF_OK);
    gf_db_pipeline_free(pl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(migrations_apply_once_with_four_replicas_starting_together),
        cmocka_unit_test(an_edited_or_broken_migration_is_refused_and_leaves_nothing_behind),
        cmocka_unit_test(transactions_rerun_on_serialization_failure_but_not_on_constraint_errors),
        cmocka_unit_test(the_pool_lends_at_most_size_connections_and_times_out),
        cmocka_unit_test(the_pool_fails_fast_while_the_database_is_down_and_recovers),
        cmocka_unit_test(batched_statements_run_in_order_and_stop_at_the_first_failure),
        cmocka_unit_test(pipelined_statements_are_separate_transactions_under_concurrency),
        cmocka_unit_test(the_pipeline_fails_fast_while_the_database_is_down_and_recovers),
    };
    return cmocka_run_group_tests_name("db", tests, setup, teardown);
}
