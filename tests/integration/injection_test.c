/* Hostile text in every field a client controls: SQL injection strings in names, query
 * parameters, numeric fields, path ids and headers are stored verbatim or refused with 400,
 * and nothing else happens (no table dropped, no statement run, no sleep). And the secrets a
 * service is given never reach its log. Against the real backend, gxp, eventlog and their
 * databases; SPEC §5's invariants after every test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "backend_fixture.h"
#include "gf/clock.h"

/* Each would change or stall something if it reached SQL as text. */
static const char *const EVIL[] = {
    "'; DROP TABLE users; --",
    "' OR '1'='1",
    "Robert'); DROP TABLE item;--",
    "x'; SELECT pg_sleep(3); --",
    "1; SELECT pg_sleep(3)",
    "1 OR 1=1",
    "$$; DELETE FROM balance; $$",
    "%' OR name LIKE '%",
    "\" OR \"\"=\"",
    "admin'--",
    "') UNION SELECT version(), NULL, NULL --",
    "\\'; TRUNCATE transaction_outbox; --",
    "$1",
    "; COMMIT; UPDATE balance SET balance = 1000000; --",
    "\xca\xbc OR \xca\xbc"
    "1\xca\xbc=\xca\xbc"
    "1", /* U+02BC, folded to ' by some drivers */
    "-1 UNION SELECT 1",
    "9999999999999999999999",
    "0x1",
};
#define NEVIL (sizeof EVIL / sizeof EVIL[0])
/* No answer may take as long as the pg_sleep(3) above would. */
#define FAST_MS 2500

static const char *SECRET = "Gf-Test-Secret-7c1d9e"; /* only ever in the environment */

static int setup(void **state)
{
    (void)state;
    static const struct world_options o = {.events = true};
    return world_start(&W, &o);
}

/* The text as a JSON string literal (quotes included); malloc'd. */
static char *json_lit(const char *s)
{
    json_t *j = json_string_nocheck(s);
    assert_non_null(j);
    char *out = json_dumps(j, JSON_ENCODE_ANY);
    json_decref(j);
    assert_non_null(out);
    return out;
}

static char *url_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    assert_non_null(e);
    char *out = strdup(e);
    curl_free(e);
    assert_non_null(out);
    return out;
}

/* The array's element whose "id" is id, or fails. */
static json_t *by_id(json_t *arr, long long id)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        if (json_integer_value(json_object_get(e, "id")) == id)
            return e;
    }
    fail_msg("id %lld not listed", id);
    return NULL;
}

static long timed(const char *method, const char *path, const char *body,
                  const char *const headers[], struct http_res *r)
{
    int64_t t0 = gf_mono_ms();
    long st = http(&W, method, path, body, headers, r);
    int64_t ms = gf_mono_ms() - t0;
    if (ms > FAST_MS)
        fail_msg("%s %s took %lld ms", method, path, (long long)ms);
    return st;
}

static void names_are_stored_verbatim_and_looked_up_exactly(void **state)
{
    (void)state;
    long long users[NEVIL], items[NEVIL];
    struct http_res r;
    for (size_t i = 0; i < NEVIL; i++) {
        char *name = json_lit(EVIL[i]);
        char body[512];
        snprintf(body, sizeof body, "{\"name\":%s}", name);
        timed("POST", "/user/create", body, NULL, &r);
        assert_ok(&r, "userId,correlationId");
        users[i] = jint(r.json, "userId");
        http_res_free(&r);
        /* The same name again is a duplicate: the lookup compared the exact text. */
        timed("POST", "/user/create", body, NULL, &r);
        assert_error(&r, 409, NULL);
        http_res_free(&r);
        snprintf(body, sizeof body, "{\"name\":%s,\"cost\":%zu}", name, i + 1);
        timed("POST", "/item/create", body, NULL, &r);
        assert_ok(&r, "itemId,correlationId");
        items[i] = jint(r.json, "itemId");
        http_res_free(&r);
        free(name);
    }
    json_t *list;
    timed("GET", "/user", NULL, NULL, &r);
    assert_ok(&r, "users");
    list = jarr(r.json, "users");
    for (size_t i = 0; i < NEVIL; i++)
        assert_string_equal(jstr(by_id(list, users[i]), "name"), EVIL[i]);
    http_res_free(&r);
    timed("GET", "/item", NULL, NULL, &r);
    assert_ok(&r, "items");
    list = jarr(r.json, "items");
    for (size_t i = 0; i < NEVIL; i++)
        assert_string_equal(jstr(by_id(list, items[i]), "name"), EVIL[i]);
    http_res_free(&r);

    /* A PATCH renames with the text too, and If-Match with hostile text is refused. */
    char path[64], body[512], im[600];
    snprintf(path, sizeof path, "/item/%lld", items[0]);
    for (size_t i = 0; i < NEVIL; i++) {
        snprintf(im, sizeof im, "If-Match: %s", EVIL[i]);
        const char *h[] = {im, NULL};
        char *name = json_lit("unchanged?");
        snprintf(body, sizeof body, "{\"name\":%s}", name);
        free(name);
        long st = timed("PATCH", path, body, h, &r);
        if (st != 400 && st != 412)
            fail_msg("If-Match: %s answered %ld", EVIL[i], st);
        assert_error(&r, st, NULL);
        http_res_free(&r);
    }
    timed("GET", path, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    char etag[64];
    assert_non_null(http_header(&r, "ETag", etag, sizeof etag));
    http_res_free(&r);
    snprintf(im, sizeof im, "If-Match: %s", etag);
    const char *h[] = {im, NULL};
    char *name = json_lit(EVIL[2]);
    snprintf(body, sizeof body, "{\"name\":%s}", name);
    free(name);
    timed("PATCH", path, body, h, &r);
    assert_int_equal(r.status, 200);
    http_res_free(&r);
    timed("GET", path, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "name"), EVIL[2]);
    http_res_free(&r);

    /* Everything is still there: the tables, and exactly the rows made. */
    assert_int_equal(sql_ll(W.backend, "SELECT count(*) FROM users WHERE id BETWEEN %lld AND %lld",
                            users[0], users[NEVIL - 1]),
                     NEVIL);
    assert_int_equal(sql_ll(W.backend, "SELECT count(*) FROM items WHERE id BETWEEN %lld AND %lld",
                            items[0], items[NEVIL - 1]),
                     NEVIL);
}

/* Every query parameter, path id and numeric body field given hostile text: 400 (404 for a
 * path id), quickly, and nothing changes. */
static void query_parameters_ids_and_numbers_refuse_it(void **state)
{
    (void)state;
    long long user = api_create_user(&W, "injection-victim");
    api_add_gxp(&W, user, 50, NULL);
    char before[1024], after[1024];
    snapshot(&W, true, before, sizeof before);
    static const char *const backend_queries[] = {
        "/user?limit=%s",      "/user?after=%s",
        "/item?limit=%s",      "/item?after=%s",
        "/user/gxp?userId=%s", "/gxp/transaction?correlationId=%s",
        "/user/item?after=%s", "/marketplace/item?limit=%s",
    };
    static const char *const eventlog_queries[] = {
        "/eventlog/events?userId=%s",
        "/eventlog/events?limit=%s",
        "/eventlog/events?after=%s",
        "/eventlog/events?correlationId=%s",
    };
    static const char *const bodies[] = {
        "/marketplace/item/buy|{\"userId\":%s,\"itemId\":1}",
        "/marketplace/item/buy|{\"userId\":1,\"itemId\":%s}",
        "/user/gxp/add|{\"userId\":%s,\"amount\":5}",
        "/user/gxp/add|{\"userId\":1,\"amount\":%s}",
        "/item/create|{\"name\":\"n\",\"cost\":%s}",
        "/marketplace/item/create|{\"itemId\":%s,\"count\":1}",
        "/user/item/create|{\"userId\":1,\"itemId\":1,\"count\":%s}",
    };
    struct http_res r;
    char path[1024], body[1024];
    int checked = 0;
    for (size_t i = 0; i < NEVIL; i++) {
        char *q = url_escape(EVIL[i]);
        char *js = json_lit(EVIL[i]);
        for (size_t k = 0; k < sizeof backend_queries / sizeof *backend_queries; k++) {
            snprintf(path, sizeof path, backend_queries[k], q);
            timed("GET", path, NULL, NULL, &r);
            if (r.status != 400)
                fail_msg("GET %s answered %ld: %s", path, r.status, r.body);
            assert_error(&r, 400, NULL);
            http_res_free(&r);
            checked++;
        }
        for (size_t k = 0; k < sizeof eventlog_queries / sizeof *eventlog_queries; k++) {
            snprintf(path, sizeof path, eventlog_queries[k], q);
            int64_t t0 = gf_mono_ms();
            http_eventlog(&W, path, &r);
            assert_true(gf_mono_ms() - t0 < FAST_MS);
            if (r.status != 400)
                fail_msg("eventlog GET %s answered %ld: %s", path, r.status, r.body);
            http_res_free(&r);
            checked++;
        }
        snprintf(path, sizeof path, "/item/%s", q);
        long st = timed("GET", path, NULL, NULL, &r);
        if (st != 400 && st != 404)
            fail_msg("GET %s answered %ld", path, st);
        http_res_free(&r);
        for (size_t k = 0; k < sizeof bodies / sizeof *bodies; k++) {
            const char *bar = strchr(bodies[k], '|');
            snprintf(path, sizeof path, "%.*s", (int)(bar - bodies[k]), bodies[k]);
            /* Both as a JSON string and, where it parses as JSON at all, bare. */
            snprintf(body, sizeof body, bar + 1, js);
            timed("POST", path, body, NULL, &r);
            if (r.status != 400)
                fail_msg("POST %s %s answered %ld", path, body, r.status);
            assert_error(&r, 400, NULL);
            http_res_free(&r);
            snprintf(body, sizeof body, bar + 1, EVIL[i]);
            st = timed("POST", path, body, NULL, &r);
            if (st != 400)
                fail_msg("POST %s %s answered %ld", path, body, st);
            http_res_free(&r);
            checked += 2;
        }
        free(q);
        free(js);
    }
    snapshot(&W, true, after, sizeof after);
    assert_string_equal(before, after);
    printf("injection: %d hostile requests refused, nothing changed\n", checked);
}

/* Headers: an Idempotency-Key and a correlation id made of injection text. */
static void headers_with_it_change_nothing_else(void **state)
{
    (void)state;
    struct http_res r, r2;
    for (size_t i = 0; i < NEVIL; i++) {
        char key[600], cid[600], body[128];
        snprintf(key, sizeof key, "Idempotency-Key: %s", EVIL[i]);
        snprintf(cid, sizeof cid, "X-Correlation-Id: %s", EVIL[i]);
        snprintf(body, sizeof body, "{\"name\":\"idem-%zu\"}", i);
        const char *h[] = {key, cid, NULL};
        long st = timed("POST", "/user/create", body, h, &r);
        if (st == 200) {
            /* The key works as a key: the replay answers the same user. */
            timed("POST", "/user/create", body, h, &r2);
            assert_int_equal(r2.status, 200);
            assert_int_equal(jint(r2.json, "userId"), jint(r.json, "userId"));
            http_res_free(&r2);
        } else {
            assert_error(&r, 400, NULL);
        }
        /* The correlation id was not taken: a fresh UUID came back. */
        char got[64];
        assert_non_null(http_header(&r, "X-Correlation-Id", got, sizeof got));
        assert_uuid(got);
        http_res_free(&r);
    }
}

static int count_in_file(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[8192];
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return n;
}

/* The database password, given as a Secret would give it (BACKEND_DB_PASSWORD) and inside
 * the URL, is used and never written to any log: not at start (the configuration is logged
 * masked), not when the database refuses the connection. */
static void secrets_never_reach_the_log(void **state)
{
    (void)state;
    sql_exec(W.backend, "DROP ROLE IF EXISTS gf_secretive");
    sql_exec(W.backend, "CREATE ROLE gf_secretive LOGIN SUPERUSER PASSWORD '%s'", SECRET);
    char url[700], url_pw[700], pw[128];
    snprintf(url, sizeof url, "BACKEND_DB_URL=postgresql://gf_secretive@127.0.0.1:%d/postgres",
             W.backend_db.port);
    snprintf(url_pw, sizeof url_pw,
             "BACKEND_DB_URL=postgresql://gf_secretive:%s@127.0.0.1:%d/postgres", SECRET,
             W.backend_db.port);
    snprintf(pw, sizeof pw, "BACKEND_DB_PASSWORD=%s", SECRET);
    const char *const by_secret[] = {url, pw, NULL};
    const char *const in_url[] = {url_pw, NULL};
    const char *const *ways[] = {by_secret, in_url};
    static const char *const defaults[] = {NULL};
    for (int k = 0; k < 2; k++) {
        assert_int_equal(world_crash_backend(&W), 0);
        assert_int_equal(world_start_backend(&W, false, ways[k]), 0);
        char name[32];
        snprintf(name, sizeof name, "secret-keeper-%d", k);
        assert_true(api_create_user(&W, name) > 0);
        /* The role is refused under it: new connections fail, and are logged, while it
         * runs. */
        sql_exec(W.backend, "ALTER ROLE gf_secretive NOLOGIN");
        sql_exec(W.backend, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                            " WHERE usename = 'gf_secretive'");
        struct http_res r;
        for (int i = 0; i < 5; i++) {
            http(&W, "POST", "/user/create", "{\"name\":\"while-refused\"}", NULL, &r);
            assert_true(r.status == 503 || r.status == 200);
            http_res_free(&r);
        }
        sql_exec(W.backend, "ALTER ROLE gf_secretive LOGIN");
        assert_int_equal(world_crash_backend(&W), 0);
        assert_int_equal(count_in_file(W.backend_log, SECRET), 0);
        /* The settings were logged (masked), so the check read the right log. */
        assert_true(count_in_file(W.backend_log, "gf_secretive") > 0);
        assert_true(count_in_file(W.backend_log, "BACKEND_DB_PASSWORD=****") > 0);
    }
    assert_int_equal(world_start_backend(&W, false, defaults), 0);
    /* Nor in any other log of this world, the databases' included. */
    assert_int_equal(count_in_file(W.gxp_log, SECRET), 0);
    assert_int_equal(count_in_file(W.eventlog_log, SECRET), 0);
    char pglog[700];
    snprintf(pglog, sizeof pglog, "%s/postgres.log", W.backend_db.datadir);
    assert_true(count_in_file(pglog, "gf_secretive") > 0);
    assert_int_equal(count_in_file(pglog, SECRET), 0);
}

/* Passwords (the first operator's from its variable, a user's at creation, at login, at a
 * change, a wrong one), the tokens and the signing key's text never reach a log: the services'
 * nor PostgreSQL's (a password travels to the database only as its argon2id hash). */
static void passwords_tokens_and_keys_never_reach_a_log(void **state)
{
    (void)state;
    static const char *const admin_env[] = {"BACKEND_ADMIN_NAME=keeper",
                                            "BACKEND_ADMIN_PASSWORD=Adm1n-Pa55-8a1f7c", NULL};
    assert_int_equal(world_crash_backend(&W), 0);
    assert_int_equal(world_start_backend(&W, false, admin_env), 0);
    const char *const none[] = {"Authorization:", NULL};
    struct http_res r;
    http(&W, "POST", "/auth/login", "{\"name\":\"keeper\",\"password\":\"Adm1n-Pa55-8a1f7c\"}",
         none, &r);
    assert_int_equal(r.status, 200);
    char *token = strdup(jstr(r.json, "token"));
    http_res_free(&r);
    http(&W, "POST", "/auth/login", "{\"name\":\"keeper\",\"password\":\"Wr0ng-Gu3ss-55d2\"}", none,
         &r);
    assert_int_equal(r.status, 401);
    http_res_free(&r);
    http(&W, "POST", "/user/create", "{\"name\":\"pw-keeper\",\"password\":\"Us3r-Pa55-0c9e1b\"}",
         NULL, &r);
    assert_int_equal(r.status, 200);
    http_res_free(&r);
    http(&W, "POST", "/auth/login", "{\"name\":\"pw-keeper\",\"password\":\"Us3r-Pa55-0c9e1b\"}",
         none, &r);
    assert_int_equal(r.status, 200);
    char *user_token = strdup(jstr(r.json, "token"));
    http_res_free(&r);
    http(&W, "POST", "/auth/password",
         "{\"password\":\"Us3r-Pa55-0c9e1b\",\"newPassword\":\"Us3r-N3w-77ab40\"}",
         (const char *[]){world_bearer(user_token), NULL}, &r);
    assert_int_equal(r.status, 200);
    http_res_free(&r);
    http(&W, "GET", "/user", NULL, (const char *[]){world_bearer(token), NULL}, &r);
    assert_int_equal(r.status, 200);
    http_res_free(&r);
    /* The signing key's base64 body: its second line. */
    char key_line[128] = "";
    FILE *f = fopen(W.auth_key, "r");
    assert_non_null(f);
    assert_non_null(fgets(key_line, sizeof key_line, f));
    assert_non_null(fgets(key_line, sizeof key_line, f));
    fclose(f);
    key_line[strcspn(key_line, "\n")] = '\0';
    assert_true(strlen(key_line) > 20);
    const char *secrets[] = {"Adm1n-Pa55-8a1f7c",
                             "Wr0ng-Gu3ss-55d2",
                             "Us3r-Pa55-0c9e1b",
                             "Us3r-N3w-77ab40",
                             token,
                             user_token,
                             W.admin_token,
                             key_line};
    char pglog[700];
    snprintf(pglog, sizeof pglog, "%s/postgres.log", W.backend_db.datadir);
    const char *logs[] = {W.backend_log, W.gxp_log, W.eventlog_log, pglog};
    for (size_t l = 0; l < sizeof logs / sizeof logs[0]; l++)
        for (size_t k = 0; k < sizeof secrets / sizeof secrets[0]; k++)
            if (count_in_file(logs[l], secrets[k]) != 0)
                fail_msg("%s holds secret #%zu", logs[l], k);
    /* The right logs were read: the logins are there, without their passwords. */
    assert_true(count_in_file(W.backend_log, "login role=admin") > 0);
    free(token);
    free(user_token);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(names_are_stored_verbatim_and_looked_up_exactly, world_check),
        cmocka_unit_test_teardown(query_parameters_ids_and_numbers_refuse_it, world_check),
        cmocka_unit_test_teardown(headers_with_it_change_nothing_else, world_check),
        cmocka_unit_test_teardown(secrets_never_reach_the_log, world_check),
        cmocka_unit_test_teardown(passwords_tokens_and_keys_never_reach_a_log, world_check),
    };
    return cmocka_run_group_tests_name("injection", tests, setup, world_teardown);
}
