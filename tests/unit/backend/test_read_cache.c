/* Unit tests of backend/read_cache.c (compiled in): the shared version probe never answers a
 * request with a probe sent before it arrived, one probe is in flight at a time, requests share
 * probes, a failed probe fails those that take its answer and only them; kept answers are
 * served only at their version, the newer of two reads of a page wins, and the byte bound
 * holds. Threads and real waits; the probe is a function of the test that reads a counter of
 * "commits" the way the real one reads table_versions. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "read_cache.h"

typedef enum gf_status (*read_probe_fn)(void *arg, int64_t versions[READ_TABLES]);
enum gf_status read_gate_probe(struct read_cache *rc, read_probe_fn fn, void *arg,
                               int64_t versions[READ_TABLES]);
bool read_cache_lookup(struct read_cache *rc, enum read_table t, const struct be_page *page,
                       int64_t version, char **out, size_t *len);
void read_cache_keep(struct read_cache *rc, enum read_table t, const struct be_page *page,
                     int64_t version, const char *text, size_t len);
size_t read_cache_bytes(struct read_cache *rc);

/* ---- the probe ------------------------------------------------------------------------- */

struct world {
    atomic_llong commits; /* the "table version": raised by each writer, read by the probe */
    atomic_int in_flight; /* probes running now: never more than one */
    atomic_int max_flight;
    atomic_llong probes;
    atomic_int failing; /* nonzero: probes fail with GF_EUNAVAILABLE */
};

static enum gf_status fake_probe(void *arg, int64_t versions[READ_TABLES])
{
    struct world *w = arg;
    int n = atomic_fetch_add(&w->in_flight, 1) + 1;
    int m = atomic_load(&w->max_flight);
    while (n > m && !atomic_compare_exchange_weak(&w->max_flight, &m, n))
        ;
    versions[READ_USERS] = atomic_load(&w->commits); /* read when "sent" */
    versions[READ_ITEMS] = -1;
    usleep(200); /* the round trip */
    atomic_fetch_add(&w->probes, 1);
    atomic_fetch_sub(&w->in_flight, 1);
    return atomic_load(&w->failing) ? GF_EUNAVAILABLE : GF_OK;
}

#define THREADS 16
#define ROUNDS 1500

struct client {
    struct read_cache *rc;
    struct world *w;
    int stale, calls, failed;
};

/* Each round: a commit, then a probe that must see it (or a later one). */
static void *client_run(void *arg)
{
    struct client *c = arg;
    for (int i = 0; i < ROUNDS; i++) {
        long long mine = atomic_fetch_add(&c->w->commits, 1) + 1;
        int64_t v[READ_TABLES];
        enum gf_status st = read_gate_probe(c->rc, fake_probe, c->w, v);
        c->calls++;
        if (st != GF_OK) {
            c->failed++;
            continue;
        }
        c->stale += v[READ_USERS] < mine;
    }
    return NULL;
}

static void run_clients(struct read_cache *rc, struct world *w, struct client *c)
{
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        c[i] = (struct client){.rc = rc, .w = w};
        assert_int_equal(pthread_create(&th[i], NULL, client_run, &c[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
}

static void
every_answer_comes_from_a_probe_sent_after_the_request_and_probes_are_shared(void **state)
{
    (void)state;
    struct read_cache *rc = read_cache_new(1 << 20);
    assert_non_null(rc);
    struct world w = {0};
    struct client c[THREADS];
    run_clients(rc, &w, c);
    int stale = 0, calls = 0, failed = 0;
    for (int i = 0; i < THREADS; i++) {
        stale += c[i].stale;
        calls += c[i].calls;
        failed += c[i].failed;
    }
    printf("# %d requests, %lld probes, at most %d in flight\n", calls,
           (long long)atomic_load(&w.probes), atomic_load(&w.max_flight));
    assert_int_equal(stale, 0);
    assert_int_equal(failed, 0);
    assert_int_equal(calls, THREADS * ROUNDS);
    assert_int_equal(atomic_load(&w.max_flight), 1);
    /* 16 threads, a 200 µs round trip: most requests wait for a probe someone else sends. */
    if (atomic_load(&w.probes) * 2 > calls)
        fail_msg("%lld probes for %d requests: not shared", (long long)atomic_load(&w.probes),
                 calls);
    read_cache_free(rc);
}

/* While probes fail, requests fail with the probe's status; once they succeed again, so do the
 * requests (a failure is never kept). Alone, a request sends its own probe every time. */
static void a_failed_probe_fails_its_requests_and_is_not_kept(void **state)
{
    (void)state;
    struct read_cache *rc = read_cache_new(1 << 20);
    struct world w = {0};
    int64_t v[READ_TABLES];
    for (int i = 0; i < 5; i++)
        assert_int_equal(read_gate_probe(rc, fake_probe, &w, v), GF_OK);
    assert_int_equal(atomic_load(&w.probes), 5);
    atomic_store(&w.failing, 1);
    struct client c[THREADS];
    run_clients(rc, &w, c);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(c[i].failed, ROUNDS);
    atomic_store(&w.failing, 0);
    assert_int_equal(read_gate_probe(rc, fake_probe, &w, v), GF_OK);
    assert_int_equal(v[READ_USERS], atomic_load(&w.commits));
    read_cache_free(rc);
}

/* ---- kept answers ------------------------------------------------------------------------ */

static void take(struct read_cache *rc, enum read_table t, int64_t after, int limit,
                 int64_t version, const char *want)
{
    struct be_page p = {.after = after, .limit = limit};
    char *out = NULL;
    size_t len = 0;
    bool hit = read_cache_lookup(rc, t, &p, version, &out, &len);
    if (want == NULL) {
        assert_false(hit);
        return;
    }
    assert_true(hit);
    assert_int_equal(len, strlen(want));
    assert_string_equal(out, want);
    free(out);
}

static void put(struct read_cache *rc, enum read_table t, int64_t after, int limit, int64_t version,
                const char *text)
{
    struct be_page p = {.after = after, .limit = limit};
    read_cache_keep(rc, t, &p, version, text, strlen(text));
}

static void answers_are_served_at_their_version_only_and_the_newer_read_wins(void **state)
{
    (void)state;
    struct read_cache *rc = read_cache_new(1 << 20);
    put(rc, READ_ITEMS, 0, 100, 7, "{\"items\":[1]}");
    take(rc, READ_ITEMS, 0, 100, 7, "{\"items\":[1]}");
    take(rc, READ_ITEMS, 0, 100, 8, NULL); /* the table moved on */
    take(rc, READ_ITEMS, 0, 99, 7, NULL);  /* another page */
    take(rc, READ_ITEMS, 1, 100, 7, NULL);
    take(rc, READ_USERS, 0, 100, 7, NULL);             /* another table */
    put(rc, READ_ITEMS, 0, 100, 6, "{\"items\":[0]}"); /* a slower, older read: ignored */
    take(rc, READ_ITEMS, 0, 100, 7, "{\"items\":[1]}");
    take(rc, READ_ITEMS, 0, 100, 6, NULL);
    put(rc, READ_ITEMS, 0, 100, 9, "{\"items\":[1,2]}");
    take(rc, READ_ITEMS, 0, 100, 9, "{\"items\":[1,2]}");
    take(rc, READ_ITEMS, 0, 100, 7, NULL);
    put(rc, READ_ITEMS, 5, 100, -1, "{\"items\":[]}"); /* no version (no row): not kept */
    take(rc, READ_ITEMS, 5, 100, -1, NULL);
    assert_int_equal(read_cache_bytes(rc), strlen("{\"items\":[1,2]}"));
    read_cache_free(rc);
    read_cache_free(NULL);
    assert_null(read_cache_new(0));
}

static void the_byte_bound_holds_and_the_least_recently_used_go_first(void **state)
{
    (void)state;
    size_t max = 4096;
    struct read_cache *rc = read_cache_new(max);
    char big[1026]; /* 1025 characters: over a quarter of 4096 */
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    put(rc, READ_USERS, 0, 1, 1, big); /* over a quarter of the cache: not kept */
    take(rc, READ_USERS, 0, 1, 1, NULL);
    assert_int_equal(read_cache_bytes(rc), 0);
    big[1000] = '\0';
    for (int i = 0; i < 40; i++) {
        put(rc, i % 2 ? READ_USERS : READ_ITEMS, i, 10, 1, big);
        if (read_cache_bytes(rc) > max)
            fail_msg("after %d answers the cache holds %zu bytes, more than %zu", i + 1,
                     read_cache_bytes(rc), max);
        take(rc, i % 2 ? READ_USERS : READ_ITEMS, i, 10, 1, big); /* the newest is kept */
    }
    assert_int_equal(read_cache_bytes(rc), 4 * 1000);
    take(rc, READ_ITEMS, 36, 10, 1, big);
    take(rc, READ_USERS, 37, 10, 1, big);
    take(rc, READ_ITEMS, 0, 10, 1, NULL); /* the oldest went */
    /* 36 was just used: the next answer evicts 38, the least recently used. */
    put(rc, READ_USERS, 100, 10, 1, big);
    take(rc, READ_ITEMS, 36, 10, 1, big);
    take(rc, READ_ITEMS, 38, 10, 1, NULL);
    /* Eight pages a table at most, however small. */
    struct read_cache *small = read_cache_new(1 << 20);
    for (int i = 0; i < 20; i++)
        put(small, READ_ITEMS, i, 10, 1, "{}");
    assert_int_equal(read_cache_bytes(small), 8 * 2);
    take(small, READ_ITEMS, 19, 10, 1, "{}");
    take(small, READ_ITEMS, 11, 10, 1, NULL);
    read_cache_free(small);
    read_cache_free(rc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            every_answer_comes_from_a_probe_sent_after_the_request_and_probes_are_shared),
        cmocka_unit_test(a_failed_probe_fails_its_requests_and_is_not_kept),
        cmocka_unit_test(answers_are_served_at_their_version_only_and_the_newer_read_wins),
        cmocka_unit_test(the_byte_bound_holds_and_the_least_recently_used_go_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
