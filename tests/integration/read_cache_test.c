/* The read cache (backend/read_cache.c) against the real backend and backend-db: GET /item and
 * GET /user answered from memory are never stale. A change committed anywhere (through the API,
 * or by another writer straight into the database, as another replica would) is in the very
 * next answer, pages included; a transaction still open changes nothing and blocks no reader;
 * concurrent readers share the version probes; with backend-db down the answer is 503, never a
 * kept list. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend_fixture.h"
#include "gf/clock.h"

static int setup(void **state)
{
    (void)state;
    return world_start(&W, NULL);
}

/* The name of item id in GET path's answer (items), copied to out; NULL when absent. */
static const char *item_name(const char *path, long long id, char *out, size_t n)
{
    struct http_res r;
    const char *found = NULL;
    if (http(&W, "GET", path, NULL, NULL, &r) != 200)
        fail_msg("GET %s: %ld %s", path, r.status, r.body);
    json_t *items = jarr(r.json, "items");
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        if (jint(it, "id") == id) {
            snprintf(out, n, "%s", jstr(it, "name"));
            found = out;
        }
    }
    http_res_free(&r);
    return found;
}

static bool user_listed(const char *path, long long id)
{
    struct http_res r;
    bool found = false;
    if (http(&W, "GET", path, NULL, NULL, &r) != 200)
        fail_msg("GET %s: %ld %s", path, r.status, r.body);
    size_t i;
    json_t *u;
    json_array_foreach(jarr(r.json, "users"), i, u) found |= jint(u, "id") == id;
    http_res_free(&r);
    return found;
}

/* Each change is committed, then the next GET shows it: through the API (create, PATCH) and
 * straight into backend-db by another connection (what another backend's commit looks like
 * to this one), a hundred times, with the list kept in memory between the changes. */
static void a_change_committed_anywhere_is_in_the_next_answer(void **state)
{
    (void)state;
    long long a = api_create_item(&W, "rc-a", 5);
    long long b = api_create_item(&W, "rc-b", 6);
    char name[300], path[96];
    assert_non_null(item_name("/item", a, name, sizeof name));
    assert_string_equal(name, "rc-a");
    double memory0 = world_metric(&W, "backend_read_cache_answers_total{table=\"items\","
                                      "outcome=\"memory\"}");
    for (int i = 0; i < 3; i++) /* unchanged: from memory */
        assert_non_null(item_name("/item", a, name, sizeof name));
    double memory1 = world_metric(&W, "backend_read_cache_answers_total{table=\"items\","
                                      "outcome=\"memory\"}");
    if (memory1 < memory0 + 3)
        fail_msg("three unchanged reads: %.0f answers from memory, was %.0f", memory1, memory0);

    snprintf(path, sizeof path, "/item?limit=1&after=%lld", a); /* b's page, kept on its own */
    for (int i = 0; i < 100; i++) {
        char want[32];
        snprintf(want, sizeof want, "rc-direct-%d", i);
        sql_exec(W.backend, "UPDATE items SET name = '%s' WHERE id = %lld", want, i % 2 ? a : b);
        if (item_name(i % 4 ? "/item" : path, i % 2 ? a : b, name, sizeof name) == NULL)
            fail_msg("round %d: the item is not in the answer", i);
        if (strcmp(name, want) != 0)
            fail_msg("round %d: a committed rename is not in the next answer: %s, want %s", i, name,
                     want);
    }

    /* A PATCH through the API, and a new item. */
    snprintf(path, sizeof path, "/item/%lld", a);
    struct http_res r;
    http(&W, "GET", path, NULL, NULL, &r);
    char etag[40], ifm[64];
    assert_non_null(http_header(&r, "ETag", etag, sizeof etag));
    http_res_free(&r);
    snprintf(ifm, sizeof ifm, "If-Match: %s", etag);
    const char *h[] = {ifm, NULL};
    assert_int_equal(http(&W, "PATCH", path, "{\"name\":\"rc-patched\"}", h, &r), 200);
    http_res_free(&r);
    assert_non_null(item_name("/item", a, name, sizeof name));
    assert_string_equal(name, "rc-patched");
    long long c = api_create_item(&W, "rc-c", 7);
    assert_non_null(item_name("/item", c, name, sizeof name));

    /* Users: created through the API, then straight into the database. */
    assert_true(user_listed("/user", api_create_user(&W, "rc-user-1")));
    assert_true(user_listed("/user?limit=100", api_create_user(&W, "rc-user-2")));
    long long direct =
        sql_ll(W.backend, "INSERT INTO users (name) VALUES ('rc-user-3') RETURNING id");
    assert_true(user_listed("/user", direct));
    assert_true(user_listed("/user?limit=100", direct));
    sql_exec(W.backend, "DELETE FROM users WHERE id = %lld", direct);
    assert_false(user_listed("/user", direct));
}

/* A transaction that changed items and raised the version (its deferred trigger fired early by
 * SET CONSTRAINTS) but has not committed: readers are neither blocked nor shown its change; once
 * it commits, they are. A rolled-back change is never shown. */
static void an_open_transaction_blocks_no_reader_and_shows_nothing(void **state)
{
    (void)state;
    long long a = api_create_item(&W, "rc-open", 5);
    char name[300];
    assert_non_null(item_name("/item", a, name, sizeof name));
    PGconn *other = PQconnectdb(W.backend_db.conninfo);
    assert_int_equal(PQstatus(other), CONNECTION_OK);
    sql_exec(other, "BEGIN");
    sql_exec(other, "UPDATE items SET name = 'rc-open-2' WHERE id = %lld", a);
    sql_exec(other, "SET CONSTRAINTS ALL IMMEDIATE"); /* the version row is now locked */
    int64_t t0 = gf_mono_ms();
    for (int i = 0; i < 5; i++) {
        assert_non_null(item_name("/item", a, name, sizeof name));
        assert_string_equal(name, "rc-open");
    }
    if (gf_mono_ms() - t0 > 3000)
        fail_msg("five reads took %lld ms beside an open transaction",
                 (long long)(gf_mono_ms() - t0));
    sql_exec(other, "ROLLBACK");
    assert_non_null(item_name("/item", a, name, sizeof name));
    assert_string_equal(name, "rc-open");
    sql_exec(other, "BEGIN");
    sql_exec(other, "UPDATE items SET name = 'rc-open-3' WHERE id = %lld", a);
    assert_non_null(item_name("/item", a, name, sizeof name));
    assert_string_equal(name, "rc-open");
    sql_exec(other, "COMMIT");
    assert_non_null(item_name("/item", a, name, sizeof name));
    assert_string_equal(name, "rc-open-3");
    PQfinish(other);
}

static atomic_int committed_round; /* the last rename committed (read_loop) */

struct reader {
    atomic_bool *stop;
    long long id;
    int reads, stale;
    char error[200];
};

/* GETs /item until told to stop; counts answers older than the rename committed before the
 * GET was sent (the item's name carries a round number that only grows). */
static void *read_loop(void *arg)
{
    struct reader *rd = arg;
    while (!atomic_load(rd->stop)) {
        int floor = atomic_load(&committed_round);
        struct http_res r;
        if (http(&W, "GET", "/item", NULL, NULL, &r) != 200) {
            snprintf(rd->error, sizeof rd->error, "GET /item: %ld %s", r.status, r.body);
            http_res_free(&r);
            break;
        }
        size_t i;
        json_t *it;
        json_array_foreach(json_object_get(r.json, "items"), i, it)
        {
            if (json_integer_value(json_object_get(it, "id")) != rd->id)
                continue;
            int round = -1;
            sscanf(json_string_value(json_object_get(it, "name")), "rc-race-%d", &round);
            rd->stale += round < floor;
        }
        rd->reads++;
        http_res_free(&r);
    }
    http_thread_done();
    return NULL;
}

/* Eight readers against one writer renaming an item 200 times: no answer is older than the
 * rename committed before its request, and the readers share probes (fewer probes than
 * requests). */
static void concurrent_readers_share_probes_and_never_see_the_past(void **state)
{
    (void)state;
    long long a = api_create_item(&W, "rc-race-0", 5);
    atomic_store(&committed_round, 0);
    double probes0 = world_metric(&W, "backend_read_cache_probes_total");
    atomic_bool stop = false;
    struct reader rd[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        rd[i] = (struct reader){.stop = &stop, .id = a};
        assert_int_equal(pthread_create(&th[i], NULL, read_loop, &rd[i]), 0);
    }
    for (int round = 1; round <= 200; round++) {
        sql_exec(W.backend, "UPDATE items SET name = 'rc-race-%d' WHERE id = %lld", round, a);
        atomic_store(&committed_round, round);
        usleep(2000);
    }
    usleep(200 * 1000);
    atomic_store(&stop, true);
    int reads = 0, stale = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        if (rd[i].error[0] != '\0')
            fail_msg("reader %d: %s", i, rd[i].error);
        reads += rd[i].reads;
        stale += rd[i].stale;
    }
    double probes = world_metric(&W, "backend_read_cache_probes_total") - probes0;
    printf("# %d reads by 8 readers, %.0f probes, %d stale\n", reads, probes, stale);
    assert_int_equal(stale, 0);
    assert_true(reads >= 200);
    if (probes >= reads)
        fail_msg("%d reads sent %.0f probes: none shared", reads, probes);
}

/* backend-db down: 503 database_unavailable, not the list kept in memory. */
static void with_the_database_down_the_answer_is_503_not_a_kept_list(void **state)
{
    (void)state;
    char name[300];
    long long a = api_create_item(&W, "rc-down", 5);
    assert_non_null(item_name("/item", a, name, sizeof name));
    assert_non_null(item_name("/item", a, name, sizeof name));
    assert_int_equal(h_pg_stop(&W.backend_db), 0);
    struct http_res r;
    http(&W, "GET", "/item", NULL, NULL, &r);
    assert_error(&r, 503, "database_unavailable");
    http_res_free(&r);
    http(&W, "GET", "/user", NULL, NULL, &r);
    assert_error(&r, 503, "database_unavailable");
    http_res_free(&r);
    assert_int_equal(h_pg_restart(&W.backend_db), 0);
    PQfinish(W.backend);
    W.backend = PQconnectdb(W.backend_db.conninfo);
    assert_int_equal(PQstatus(W.backend), CONNECTION_OK);
    /* Same port: the backend reconnects by itself. */
    int64_t end = gf_mono_ms() + 20000;
    while (http(&W, "GET", "/item", NULL, NULL, &r) != 200 && gf_mono_ms() < end) {
        http_res_free(&r);
        usleep(100 * 1000);
    }
    http_res_free(&r);
    assert_non_null(item_name("/item", a, name, sizeof name));
    assert_string_equal(name, "rc-down");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(a_change_committed_anywhere_is_in_the_next_answer, world_check),
        cmocka_unit_test_teardown(an_open_transaction_blocks_no_reader_and_shows_nothing,
                                  world_check),
        cmocka_unit_test_teardown(concurrent_readers_share_probes_and_never_see_the_past,
                                  world_check),
        cmocka_unit_test_teardown(with_the_database_down_the_answer_is_503_not_a_kept_list,
                                  world_check),
    };
    return cmocka_run_group_tests(tests, setup, world_teardown);
}
