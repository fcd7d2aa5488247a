/* The read cache (read_cache.h): GET /user and GET /item from memory, never stale.
 *
 * Every transaction that changes users or items raises that table's version in table_versions
 * as it commits (sql/backend/013_read_versions.sql). An answer is kept with the version read in
 * the same snapshot as its rows (store_list_users/_items). A request first learns the versions
 * as they are now, then serves the kept answer only if its version is still the table's: the
 * rows cannot have changed in between, since any change would have raised it.
 *
 * "Now" means a probe sent after the request arrived, so that every change committed before
 * the request is seen, whichever backend committed it. The probe is a one-row-per-table SELECT;
 * what makes the cache pay is that requests share it: a request that arrives while a probe is in
 * flight cannot use that one (it may have been sent before the change the request must see), so
 * it waits for the next, which one waiting request sends and all of them then use. At 32
 * concurrent readers one probe answers most of them, at the price of at most two probe round
 * trips of latency. */
#include "read_cache.h"

#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gf/log.h"
#include "gf/metrics.h"
#include "gf/testable.h"

#define SLOTS 8 /* answers kept per table: the pages asked for most recently */

/* An answer, shared by the cache and the requests copying it (the last to let go frees it). */
struct body {
    atomic_int refs;
    size_t len;
    char text[];
};

struct entry {
    struct body *body; /* NULL: a free slot */
    int64_t after;
    int limit;
    int64_t version;
    uint64_t used; /* the cache's tick at its last use: the least recently used goes first */
};

typedef enum gf_status (*read_probe_fn)(void *arg, int64_t versions[READ_TABLES]);

/* A probe's outcome, written by the one thread that sent the probe and read by any number of
 * others without a lock: a sequence lock (seq odd while it is written). */
struct read_answer {
    atomic_uint seq;
    atomic_uint probe; /* the number of the probe whose outcome this is */
    atomic_int st;
    _Atomic int64_t versions[READ_TABLES];
};

/* Probes shared by the requests that wait for the same one. Numbers count modulo 2^32 (compared
 * by their difference): `started` probes were sent, the last answered is `done`, so one is in
 * flight exactly when they differ. `done` is also the futex the waiters sleep on: a request
 * that waits costs one futex wait and shares one wake-up with all the others, and takes no lock
 * before or after (a mutex and condition variable cost five futex calls per request here, most
 * of them in the convoy of waiters re-taking the mutex after each broadcast). */
struct read_gate {
    atomic_uint started;
    atomic_uint done;
    atomic_int waiters;            /* asleep on done, or about to be */
    struct read_answer answers[2]; /* probe k's in answers[k % 2] */
};

struct read_cache {
    size_t max_bytes;
    pthread_mutex_t mu; /* the entries, bytes and tick */
    size_t bytes;
    uint64_t tick;
    struct entry entries[READ_TABLES][SLOTS];
    struct read_gate gate;
};

static struct gf_counter *m_hits[READ_TABLES], *m_misses[READ_TABLES], *m_probes;

GF_TESTABLE enum gf_status read_gate_probe(struct read_cache *rc, read_probe_fn fn, void *arg,
                                           int64_t versions[READ_TABLES]);
GF_TESTABLE bool read_cache_lookup(struct read_cache *rc, enum read_table t,
                                   const struct be_page *page, int64_t version, char **out,
                                   size_t *len);
GF_TESTABLE void read_cache_keep(struct read_cache *rc, enum read_table t,
                                 const struct be_page *page, int64_t version, const char *text,
                                 size_t len);
GF_TESTABLE size_t read_cache_bytes(struct read_cache *rc);

/* a - b as a signed distance: probe numbers wrap. */
static int32_t probe_diff(unsigned a, unsigned b)
{
    return (int32_t)(a - b);
}

static void futex_wait(atomic_uint *word, unsigned seen)
{
    /* Returns at once when *word is no longer seen; EINTR and spurious wake-ups are fine: the
     * caller looks again. */
    (void)syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
}

static void futex_wake_all(atomic_uint *word)
{
    (void)syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* Probe n's outcome into its slot, then n becomes `done` and the sleepers wake. */
static void publish(struct read_gate *g, unsigned n, enum gf_status st,
                    const int64_t versions[READ_TABLES])
{
    struct read_answer *a = &g->answers[n % 2];
    unsigned seq = atomic_load_explicit(&a->seq, memory_order_relaxed);
    atomic_store_explicit(&a->seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&a->probe, n, memory_order_relaxed);
    atomic_store_explicit(&a->st, (int)st, memory_order_relaxed);
    for (int t = 0; t < READ_TABLES; t++)
        atomic_store_explicit(&a->versions[t], versions[t], memory_order_relaxed);
    atomic_store_explicit(&a->seq, seq + 2, memory_order_release);
    atomic_store(&g->done, n); /* seq_cst, against the waiters' count below */
    if (atomic_load(&g->waiters) > 0)
        futex_wake_all(&g->done);
}

/* The outcome of the last answered probe if it is want or later: false when a later probe is
 * being written over the slot meanwhile (the caller looks again). */
static bool read_answer(struct read_gate *g, unsigned want, enum gf_status *st,
                        int64_t versions[READ_TABLES])
{
    unsigned d = atomic_load(&g->done);
    struct read_answer *a = &g->answers[d % 2];
    unsigned seq = atomic_load_explicit(&a->seq, memory_order_acquire);
    if (seq % 2 != 0)
        return false;
    unsigned n = atomic_load_explicit(&a->probe, memory_order_relaxed);
    int s = atomic_load_explicit(&a->st, memory_order_relaxed);
    int64_t v[READ_TABLES];
    for (int t = 0; t < READ_TABLES; t++)
        v[t] = atomic_load_explicit(&a->versions[t], memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&a->seq, memory_order_relaxed) != seq || probe_diff(n, want) < 0)
        return false;
    *st = (enum gf_status)s;
    memcpy(versions, v, sizeof v);
    return true;
}

/* The versions as read by a probe sent after this call began: the first such probe, or a later
 * one. When this call begins, `started` probes have been sent, so it needs the answer of probe
 * started + 1 or later. If none is in flight, it sends one itself (the compare-and-swap on
 * `started` makes one thread the sender); otherwise it sleeps until the one in flight is
 * answered and looks again: whoever is awake first then sends the next. A failed probe fails
 * every request that takes its answer (with its status). */
GF_TESTABLE enum gf_status read_gate_probe(struct read_cache *rc, read_probe_fn fn, void *arg,
                                           int64_t versions[READ_TABLES])
{
    struct read_gate *g = &rc->gate;
    unsigned want = atomic_load(&g->started) + 1;
    for (;;) {
        unsigned d = atomic_load(&g->done);
        enum gf_status st;
        if (probe_diff(d, want) >= 0) {
            if (read_answer(g, want, &st, versions))
                return st;
            continue; /* a later probe is being published: its answer will do */
        }
        unsigned s = d; /* none in flight exactly when started == done */
        if (atomic_compare_exchange_strong(&g->started, &s, d + 1)) {
            int64_t got[READ_TABLES];
            for (int t = 0; t < READ_TABLES; t++)
                got[t] = -1;
            st = fn(arg, got);
            gf_counter_add(m_probes, 1);
            publish(g, d + 1, st, got);
            if (st == GF_OK)
                memcpy(versions, got, sizeof got);
            return st;
        }
        atomic_fetch_add(&g->waiters, 1);
        if (atomic_load(&g->done) == d)
            futex_wait(&g->done, d);
        atomic_fetch_sub(&g->waiters, 1);
    }
}

/* The probe: every table's version, one row each. A table without its row keeps -1, which no
 * kept answer has: never served from memory. */
static enum gf_status probe_versions(void *arg, int64_t versions[READ_TABLES])
{
    struct be_err ignored; /* each waiter makes its own from the status */
    static const char *const names[READ_TABLES] = {[READ_USERS] = "users", [READ_ITEMS] = "items"};
    PGresult *res = NULL;
    enum gf_status st =
        store_exec(arg, "be_read_versions", "SELECT name, version FROM table_versions", 0, NULL,
                   &res, &ignored);
    if (st != GF_OK)
        return st;
    for (int i = 0; i < PQntuples(res); i++)
        for (int t = 0; t < READ_TABLES; t++)
            if (strcmp(PQgetvalue(res, i, 0), names[t]) == 0)
                versions[t] = strtoll(PQgetvalue(res, i, 1), NULL, 10);
    PQclear(res);
    return GF_OK;
}

static void body_release(struct body *b)
{
    if (b != NULL && atomic_fetch_sub(&b->refs, 1) == 1)
        free(b);
}

/* Frees the slot's answer (mu held). */
static void drop_locked(struct read_cache *rc, struct entry *e)
{
    rc->bytes -= e->body->len;
    body_release(e->body);
    e->body = NULL;
}

struct read_cache *read_cache_new(size_t max_bytes)
{
    if (max_bytes == 0)
        return NULL;
    struct read_cache *rc = calloc(1, sizeof *rc);
    if (rc == NULL) {
        GF_WARN("no memory for the read cache: lists are read from the database every time");
        return NULL;
    }
    rc->max_bytes = max_bytes;
    pthread_mutex_init(&rc->mu, NULL);
    return rc;
}

void read_cache_free(struct read_cache *rc)
{
    if (rc == NULL)
        return;
    for (int t = 0; t < READ_TABLES; t++)
        for (int i = 0; i < SLOTS; i++)
            if (rc->entries[t][i].body != NULL)
                drop_locked(rc, &rc->entries[t][i]);
    pthread_mutex_destroy(&rc->mu);
    free(rc);
}

/* The bytes of the answers kept now. */
GF_TESTABLE size_t read_cache_bytes(struct read_cache *rc)
{
    pthread_mutex_lock(&rc->mu);
    size_t n = rc->bytes;
    pthread_mutex_unlock(&rc->mu);
    return n;
}

static double bytes_gauge(void *rc)
{
    return (double)read_cache_bytes(rc);
}

void read_cache_register_metrics(struct read_cache *rc)
{
    if (rc == NULL)
        return;
    static const char *const labels[READ_TABLES][2] = {
        [READ_USERS] = {"table=\"users\",outcome=\"memory\"", "table=\"users\",outcome=\"read\""},
        [READ_ITEMS] = {"table=\"items\",outcome=\"memory\"", "table=\"items\",outcome=\"read\""},
    };
    const char *help = "GET /user and GET /item answered from the read cache (memory) or the "
                       "table (read)";
    for (int t = 0; t < READ_TABLES; t++) {
        m_hits[t] = gf_metrics_counter("backend_read_cache_answers_total", help, labels[t][0]);
        m_misses[t] = gf_metrics_counter("backend_read_cache_answers_total", help, labels[t][1]);
    }
    gf_metrics_gauge_fn("backend_read_cache_bytes",
                        "bytes of the answers kept (at most BACKEND_READ_CACHE_BYTES)", "",
                        bytes_gauge, rc);
    m_probes = gf_metrics_counter("backend_read_cache_probes_total",
                                  "version probes of the read cache, each shared by the requests "
                                  "waiting for it",
                                  "");
}

/* The kept answer of this page if it was read at version, copied into *out. */
GF_TESTABLE bool read_cache_lookup(struct read_cache *rc, enum read_table t,
                                   const struct be_page *page, int64_t version, char **out,
                                   size_t *len)
{
    struct body *b = NULL;
    pthread_mutex_lock(&rc->mu);
    for (int i = 0; i < SLOTS; i++) {
        struct entry *e = &rc->entries[t][i];
        if (e->body != NULL && e->after == page->after && e->limit == page->limit &&
            e->version == version) {
            e->used = ++rc->tick;
            b = e->body;
            atomic_fetch_add(&b->refs, 1);
            break;
        }
    }
    pthread_mutex_unlock(&rc->mu);
    if (b == NULL)
        return false;
    /* The copy outside the lock: the HTTP layer frees the body it is given. */
    char *copy = malloc(b->len + 1);
    if (copy != NULL) {
        memcpy(copy, b->text, b->len + 1);
        *out = copy;
        *len = b->len;
    }
    body_release(b);
    return copy != NULL;
}

/* Keeps an answer read at version, unless the page's slot holds one read at a later version
 * (a slower read finishing after a newer one) or the answer is over a quarter of the cache. */
GF_TESTABLE void read_cache_keep(struct read_cache *rc, enum read_table t,
                                 const struct be_page *page, int64_t version, const char *text,
                                 size_t len)
{
    if (version < 0 || len > rc->max_bytes / 4)
        return;
    struct body *b = malloc(sizeof *b + len + 1);
    if (b == NULL)
        return;
    atomic_init(&b->refs, 1);
    b->len = len;
    memcpy(b->text, text, len + 1);
    pthread_mutex_lock(&rc->mu);
    struct entry *slot = NULL;
    for (int i = 0; i < SLOTS && slot == NULL; i++) {
        struct entry *e = &rc->entries[t][i];
        if (e->body != NULL && e->after == page->after && e->limit == page->limit)
            slot = e;
    }
    if (slot != NULL && slot->version > version) {
        pthread_mutex_unlock(&rc->mu);
        body_release(b);
        return;
    }
    if (slot == NULL) { /* a free slot, else the least recently used */
        slot = &rc->entries[t][0];
        for (int i = 1; i < SLOTS && slot->body != NULL; i++) {
            struct entry *e = &rc->entries[t][i];
            if (e->body == NULL || e->used < slot->used)
                slot = e;
        }
    }
    if (slot->body != NULL)
        drop_locked(rc, slot);
    /* Room: the least recently used answers of any table go first. */
    while (rc->bytes + len > rc->max_bytes) {
        struct entry *old = NULL;
        for (int u = 0; u < READ_TABLES; u++)
            for (int i = 0; i < SLOTS; i++) {
                struct entry *e = &rc->entries[u][i];
                if (e->body != NULL && (old == NULL || e->used < old->used))
                    old = e;
            }
        drop_locked(rc, old); /* bytes > 0, so some slot holds an answer */
    }
    slot->body = b;
    slot->after = page->after;
    slot->limit = page->limit;
    slot->version = version;
    slot->used = ++rc->tick;
    rc->bytes += len;
    pthread_mutex_unlock(&rc->mu);
}

enum gf_status read_cache_list(struct backend_app *app, enum read_table t,
                               const struct be_page *page, const char *key, char **out, size_t *len,
                               struct be_err *err)
{
    enum gf_status (*read)(struct backend_app *, const struct be_page *, const char *, int64_t *,
                           char **, size_t *, struct be_err *) =
        t == READ_USERS ? store_list_users : store_list_items;
    struct read_cache *rc = app->reads;
    int64_t version;
    if (rc == NULL)
        return read(app, page, key, &version, out, len, err);
    /* key is the same for every request of a table (the route's), so it is not part of what
     * identifies an answer: the table and the page are. */
    int64_t now[READ_TABLES];
    enum gf_status st = read_gate_probe(rc, probe_versions, app, now);
    if (st != GF_OK)
        return be_db_failed(st, err);
    if (now[t] >= 0 && read_cache_lookup(rc, t, page, now[t], out, len)) {
        gf_counter_add(m_hits[t], 1);
        return GF_OK;
    }
    gf_counter_add(m_misses[t], 1);
    st = read(app, page, key, &version, out, len, err);
    if (st == GF_OK)
        read_cache_keep(rc, t, page, version, *out, *len);
    return st;
}
