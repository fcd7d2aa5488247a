/* The pipeline reports a statement done only when its transaction committed: a failure at
 * COMMIT time (a deferred constraint, or a serialization failure detected at commit) must come
 * back as a failure mapped from its SQLSTATE, never as GF_OK with the Execute's good result.
 * Regression test for a read_one that kept GF_OK when the Sync did not come back clean. */
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
#include "harness.h"
#include "sql_helpers.h"

static struct h_pg PG;
static PGconn *ADMIN;

static int setup(void **state)
{
    (void)state;
    gf_log_init("pipeline-commit-test", GF_LOG_ERROR);
    if (h_pg_start(&PG, "plc", 0) != 0)
        return -1;
    ADMIN = PQconnectdb(PG.conninfo);
    if (PQstatus(ADMIN) != CONNECTION_OK)
        return -1;
    /* Deferred checks run at COMMIT, i.e. at the pipeline's Sync, after the INSERT itself
     * answered INSERT 0 1. */
    PGresult *r =
        PQexec(ADMIN, "CREATE TABLE plc_parent (id int PRIMARY KEY);"
                      "INSERT INTO plc_parent VALUES (1);"
                      "CREATE TABLE plc_child (id int PRIMARY KEY, parent int"
                      "  REFERENCES plc_parent DEFERRABLE INITIALLY DEFERRED);"
                      "CREATE TABLE plc_uniq (k int UNIQUE DEFERRABLE INITIALLY DEFERRED);"
                      "INSERT INTO plc_uniq VALUES (1);"
                      "CREATE TABLE plc_ser (id int);"
                      "CREATE FUNCTION plc_refuse() RETURNS trigger LANGUAGE plpgsql AS $$"
                      " BEGIN RAISE EXCEPTION 'refused at commit'"
                      "   USING ERRCODE = '40001'; END $$;"
                      "CREATE CONSTRAINT TRIGGER plc_ser_refuse AFTER INSERT ON plc_ser"
                      "  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
                      "  EXECUTE FUNCTION plc_refuse();");
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "setup: %s\n", PQresultErrorMessage(r));
    PQclear(r);
    return ok ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    PQfinish(ADMIN);
    h_cleanup_all();
    return 0;
}

static struct gf_db_pipeline *pipeline_new(int size)
{
    struct gf_db_pool_options o = {
        .conninfo = PG.conninfo, .size = size, .application_name = "plc"};
    struct gf_db_pipeline *pl = gf_db_pipeline_new(&o);
    assert_non_null(pl);
    return pl;
}

static void a_deferred_constraint_violated_at_commit_is_a_failure_not_ok(void **state)
{
    (void)state;
    struct gf_db_pipeline *pl = pipeline_new(1);
    /* The INSERT itself succeeds (the check is deferred); its COMMIT fails with 23503. */
    PGresult *res = NULL;
    enum gf_status st = gf_db_pipeline_exec(
        pl, "plc_orphan", "INSERT INTO plc_child VALUES (1, 999) RETURNING id", 0, NULL, &res);
    assert_int_equal(st, GF_ENOTFOUND); /* 23503, as gf_db_status maps it */
    assert_null(res);
    assert_int_equal(sql_ll(ADMIN, "SELECT count(*) FROM plc_child"), 0);
    /* A deferred unique violation: 23505 → GF_EEXISTS. */
    st = gf_db_pipeline_exec(pl, "plc_dup", "INSERT INTO plc_uniq VALUES (1)", 0, NULL, NULL);
    assert_int_equal(st, GF_EEXISTS);
    assert_int_equal(sql_ll(ADMIN, "SELECT count(*) FROM plc_uniq"), 1);
    /* A serialization failure raised at commit: 40001 → GF_ECONFLICT (callers re-submit). */
    st = gf_db_pipeline_exec(pl, "plc_ser", "INSERT INTO plc_ser VALUES (1)", 0, NULL, NULL);
    assert_int_equal(st, GF_ECONFLICT);
    assert_int_equal(sql_ll(ADMIN, "SELECT count(*) FROM plc_ser"), 0);
    /* The connection goes on: a good statement after the failures is GF_OK and committed. */
    st = gf_db_pipeline_exec(pl, "plc_good", "INSERT INTO plc_child VALUES (2, 1) RETURNING id", 0,
                             NULL, &res);
    assert_int_equal(st, GF_OK);
    assert_non_null(res);
    assert_int_equal(atoi(PQgetvalue(res, 0, 0)), 2);
    PQclear(res);
    assert_int_equal(sql_ll(ADMIN, "SELECT count(*) FROM plc_child WHERE id = 2"), 1);
    gf_db_pipeline_free(pl);
}

struct outcome {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pending;
    enum gf_status st[64];
    int rows[64];
};

struct slot {
    struct outcome *o;
    int i;
    char key[16];
    const char *params[1];
};

static void slot_done(void *arg, enum gf_status st, PGresult *res)
{
    struct slot *s = arg;
    pthread_mutex_lock(&s->o->mu);
    s->o->st[s->i] = st;
    s->o->rows[s->i] = res ? PQntuples(res) : -1;
    if (--s->o->pending == 0)
        pthread_cond_signal(&s->o->cv);
    pthread_mutex_unlock(&s->o->mu);
    PQclear(res);
}

/* Many statements in one batch, every third one violating the deferred key: each gets its own
 * outcome — the failures fail alone, the others are GF_OK and committed. */
static void commit_failures_in_a_batch_fail_alone_and_others_commit(void **state)
{
    (void)state;
    struct gf_db_pipeline *pl = pipeline_new(1);
    enum { N = 60 };
    struct outcome o = {.pending = N};
    pthread_mutex_init(&o.mu, NULL);
    pthread_cond_init(&o.cv, NULL);
    struct slot slots[N];
    for (int i = 0; i < N; i++) {
        slots[i] = (struct slot){.o = &o, .i = i};
        /* ids 100.., parent 1 (exists) or 999 (does not: fails at commit) */
        snprintf(slots[i].key, sizeof slots[i].key, "%d", 100 + i);
        slots[i].params[0] = slots[i].key;
        if (i % 3 == 0)
            gf_db_pipeline_submit(pl, "plc_bad_row",
                                  "INSERT INTO plc_child VALUES ($1::int, 999) RETURNING id", 1,
                                  slots[i].params, slot_done, &slots[i]);
        else
            gf_db_pipeline_submit(pl, "plc_good_row",
                                  "INSERT INTO plc_child VALUES ($1::int, 1) RETURNING id", 1,
                                  slots[i].params, slot_done, &slots[i]);
    }
    pthread_mutex_lock(&o.mu);
    while (o.pending > 0)
        pthread_cond_wait(&o.cv, &o.mu);
    pthread_mutex_unlock(&o.mu);
    for (int i = 0; i < N; i++) {
        if (i % 3 == 0) {
            assert_int_equal(o.st[i], GF_ENOTFOUND);
            assert_int_equal(o.rows[i], -1);
        } else {
            assert_int_equal(o.st[i], GF_OK);
            assert_int_equal(o.rows[i], 1);
        }
    }
    assert_int_equal(sql_ll(ADMIN, "SELECT count(*) FROM plc_child WHERE id >= 100"), N - N / 3);
    pthread_cond_destroy(&o.cv);
    pthread_mutex_destroy(&o.mu);
    gf_db_pipeline_free(pl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_deferred_constraint_violated_at_commit_is_a_failure_not_ok),
        cmocka_unit_test(commit_failures_in_a_batch_fail_alone_and_others_commit),
    };
    return cmocka_run_group_tests_name("pipeline_commit", tests, setup, teardown);
}
