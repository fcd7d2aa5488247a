/* One database error path (issue 14): whatever statement of whatever route the database
 * fails, the client gets the same mapping — a lost serialization race or a deadlock (40001,
 * 40P01: retryable) is 503 database_unavailable with Retry-After, a cancelled statement (57014)
 * is 504 database_timeout, anything unexpected is 500 internal — and nothing changes.
 *
 * The failures are real SQLSTATEs raised by backend-db itself: the test shadows the tables a
 * route reads with views in the schema "postgres", which comes first on the backend's
 * search_path ("$user", public), whose rows are filtered by a function that raises the planted
 * SQLSTATE. The backend is restarted after planting so that its statements are prepared
 * against the views. Before this issue, GET /gxp/transaction answered a 40001 with 409
 * "conflict" and a 57014 with 504 "timeout": it returned the raw status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "backend_fixture.h"

static long long user, item;
static char buy_cid[37];

static int setup_world(void **state)
{
    (void)state;
    struct world_options o = {0};
    if (world_start(&W, &o) != 0)
        return -1;
    /* The test's own connection never sees the planted views. */
    sql_exec(W.backend, "SET search_path = public");
    user = api_create_user(&W, "db-errors-user");
    item = api_create_item(&W, "db-errors-item", 10);
    api_create_marketplace_item(&W, item, 5);
    api_add_gxp(&W, user, 100, NULL);
    char body[128];
    snprintf(body, sizeof body, "{\"userId\":%lld,\"itemId\":%lld}", user, item);
    struct http_res r;
    if (http(&W, "POST", "/marketplace/item/buy", body, NULL, &r) != 200) {
        fprintf(stderr, "setup buy: %ld %s\n", r.status, r.body);
        http_res_free(&r);
        return -1;
    }
    snprintf(buy_cid, sizeof buy_cid, "%s",
             json_string_value(json_object_get(r.json, "correlationId")));
    http_res_free(&r);
    /* The views: reads through them raise the planted SQLSTATE; writes too (CHECK OPTION). */
    sql_exec(W.backend,
             "CREATE SCHEMA postgres;"
             "CREATE TABLE postgres.planted (code text NOT NULL);"
             "INSERT INTO postgres.planted VALUES ('40001');"
             "CREATE FUNCTION postgres.planted_failure() RETURNS boolean LANGUAGE plpgsql VOLATILE"
             " AS $$ DECLARE c text; BEGIN SELECT code INTO c FROM postgres.planted;"
             " RAISE EXCEPTION 'planted failure' USING ERRCODE = c; END $$;"
             "CREATE VIEW postgres.users AS SELECT * FROM public.users"
             " WHERE postgres.planted_failure() WITH CASCADED CHECK OPTION;"
             "CREATE VIEW postgres.items AS SELECT * FROM public.items"
             " WHERE postgres.planted_failure() WITH CASCADED CHECK OPTION;"
             "CREATE VIEW postgres.coord_transactions AS SELECT * FROM public.coord_transactions"
             " WHERE postgres.planted_failure();"
             /* the restarted backend's migrator must find its record, not create a new one */
             "CREATE VIEW postgres.gf_schema_migrations AS"
             " SELECT * FROM public.gf_schema_migrations;");
    /* Fresh connections: statements prepared from now on resolve to the views. */
    if (world_crash_backend(&W) != 0)
        return -1;
    http_thread_done();
    return world_start_backend(&W, false, NULL);
}

static int teardown_world(void **state)
{
    sql_exec(W.backend, "DROP SCHEMA postgres CASCADE");
    /* The backend's prepared statements named the views: they are re-planned on next use. */
    int rc = world_check(state);
    return world_teardown(state) != 0 ? -1 : rc;
}

struct route {
    const char *method, *path, *body, *if_match, *key;
};

/* Every route below reads users, items or coord_transactions before it changes anything. */
static void routes_answer(const char *sqlstate, long status, const char *code)
{
    char body_buy[128], body_add[128], body_ui[128], path_item[64], path_user[64], path_tx[128];
    snprintf(body_buy, sizeof body_buy, "{\"userId\":%lld,\"itemId\":%lld}", user, item);
    snprintf(body_add, sizeof body_add, "{\"userId\":%lld,\"amount\":5}", user);
    snprintf(body_ui, sizeof body_ui, "{\"userId\":%lld,\"itemId\":%lld,\"count\":1}", user, item);
    snprintf(path_item, sizeof path_item, "/item/%lld", item);
    snprintf(path_user, sizeof path_user, "/user/gxp?userId=%lld", user);
    snprintf(path_tx, sizeof path_tx, "/gxp/transaction?correlationId=%s", buy_cid);
    const struct route routes[] = {
        {"GET", path_tx, NULL, NULL, NULL},
        {"GET", path_user, NULL, NULL, NULL},
        {"GET", path_item, NULL, NULL, NULL},
        {"GET", "/user", NULL, NULL, NULL},
        {"GET", "/item?limit=5", NULL, NULL, NULL},
        {"POST", "/marketplace/item/buy", body_buy, NULL, NULL},
        {"POST", "/marketplace/item/buy", body_buy, NULL, "db-errors-buy"},
        {"POST", "/user/gxp/add", body_add, NULL, NULL},
        {"POST", "/user/create", "{\"name\":\"db-errors-new\"}", NULL, NULL},
        {"POST", "/user/create", "{\"name\":\"db-errors-new\"}", NULL, "db-errors-create"},
        {"POST", "/item/create", "{\"name\":\"db-errors-new\",\"cost\":3}", NULL, NULL},
        {"POST", "/user/item/create", body_ui, NULL, "db-errors-ui"},
        {"PATCH", path_item, "{\"cost\":11}", "If-Match: \"1\"", NULL},
    };
    sql_exec(W.backend, "UPDATE postgres.planted SET code = '%s'", sqlstate);
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const struct route *rt = &routes[i];
        char before[1200], after[1200], key[96];
        const char *headers[3];
        int nh = 0;
        if (rt->if_match)
            headers[nh++] = rt->if_match;
        if (rt->key) {
            snprintf(key, sizeof key, "Idempotency-Key: %s-%s", rt->key, sqlstate);
            headers[nh++] = key;
        }
        headers[nh] = NULL;
        snapshot(&W, true, before, sizeof before);
        struct http_res r;
        http(&W, rt->method, rt->path, rt->body, headers, &r);
        if (r.status != status)
            fail_msg("SQLSTATE %s, %s %s: expected %ld %s, got %ld: %s", sqlstate, rt->method,
                     rt->path, status, code, r.status, r.body);
        assert_error(&r, status, code);
        char retry[16];
        if (status == 503 && http_header(&r, "Retry-After", retry, sizeof retry) == NULL)
            fail_msg("SQLSTATE %s, %s %s: a 503 without Retry-After", sqlstate, rt->method,
                     rt->path);
        http_res_free(&r);
        snapshot(&W, true, after, sizeof after);
        if (strcmp(before, after) != 0)
            fail_msg("SQLSTATE %s, %s %s changed something:\n  %s\n  %s", sqlstate, rt->method,
                     rt->path, before, after);
    }
}

static void a_serialization_failure_is_503_database_unavailable(void **state)
{
    (void)state;
    routes_answer("40001", 503, "database_unavailable");
}

static void a_deadlock_is_503_database_unavailable(void **state)
{
    (void)state;
    routes_answer("40P01", 503, "database_unavailable");
}

static void a_cancelled_statement_is_504_database_timeout(void **state)
{
    (void)state;
    routes_answer("57014", 504, "database_timeout");
}

static void an_unexpected_error_is_500_internal(void **state)
{
    (void)state;
    routes_answer("XX000", 500, "internal");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_serialization_failure_is_503_database_unavailable),
        cmocka_unit_test(a_deadlock_is_503_database_unavailable),
        cmocka_unit_test(a_cancelled_statement_is_504_database_timeout),
        cmocka_unit_test(an_unexpected_error_is_500_internal),
    };
    return cmocka_run_group_tests(tests, setup_world, teardown_world);
}
