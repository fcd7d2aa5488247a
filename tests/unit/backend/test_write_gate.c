/* Unit tests of backend/write_gate.c: the limit holds, the waiters are served in the order
 * they came (a leaving request hands its place to the first, no newcomer barges in), a
 * waiter whose time is up leaves the queue without a place and without breaking the order of
 * those behind it, and no gate lets everything through. Threads and real waits, no mocks. */
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "gf/clock.h"
#include "write_gate.h"

static void wait_for_waiting(struct write_gate *g, int n)
{
    int running, waiting;
    int64_t end = gf_mono_ms() + 5000;
    do {
        write_gate_load(g, &running, &waiting);
        if (waiting == n)
            return;
        usleep(1000);
    } while (gf_mono_ms() < end);
    fail_msg("%d waiting, expected %d", waiting, n);
}

/* ---- a queue of numbered waiters -------------------------------------------------------- */

#define N 8

struct queued {
    struct write_gate *g;
    int64_t max_wait_ms;
    int id;
    bool entered;
    int *order; /* where each thread writes its id when it gets a place */
    atomic_int *next;
    sem_t *hold; /* when set, the place is held until it is posted */
};

static void *queued_thread(void *arg)
{
    struct queued *q = arg;
    q->entered = write_gate_enter(q->g, q->max_wait_ms);
    if (q->entered) {
        q->order[atomic_fetch_add(q->next, 1)] = q->id;
        if (q->hold != NULL)
            sem_wait(q->hold);
        write_gate_leave(q->g);
    }
    return NULL;
}

static void waiters_get_their_place_in_the_order_they_came(void **state)
{
    (void)state;
    struct write_gate *g = write_gate_new(2);
    assert_non_null(g);
    /* Two places, both taken here. */
    assert_true(write_gate_enter(g, 10));
    assert_true(write_gate_enter(g, 10));
    int running, waiting;
    write_gate_load(g, &running, &waiting);
    assert_int_equal(running, 2);
    assert_int_equal(waiting, 0);

    int order[N];
    atomic_int next = 0;
    struct queued q[N];
    sem_t hold[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) { /* queued one at a time: their order is known */
        sem_init(&hold[i], 0, 0);
        q[i] = (struct queued){
            .g = g, .max_wait_ms = 10000, .id = i, .order = order, .next = &next, .hold = &hold[i]};
        assert_int_equal(pthread_create(&t[i], NULL, queued_thread, &q[i]), 0);
        wait_for_waiting(g, i + 1);
    }
    /* A place given back goes to the head of the queue, never free in between: waiter 0 now
     * holds it, and a newcomer, queue or not, finds none. */
    write_gate_leave(g);
    wait_for_waiting(g, N - 1);
    for (int64_t end = gf_mono_ms() + 5000; atomic_load(&next) < 1 && gf_mono_ms() < end;)
        usleep(1000); /* waiter 0 wakes and writes its id */
    write_gate_load(g, &running, &waiting);
    assert_int_equal(running, 2);
    assert_int_equal(atomic_load(&next), 1);
    assert_int_equal(order[0], 0);
    assert_false(write_gate_enter(g, 0));
    wait_for_waiting(g, N - 1); /* the newcomer gave up its turn */
    /* One place goes round the queue (the test keeps the other), so the order in which the
     * waiters write their ids is the order in which they got it. */
    for (int i = 0; i < N; i++)
        sem_post(&hold[i]);
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        sem_destroy(&hold[i]);
    }
    write_gate_leave(g);
    assert_int_equal(atomic_load(&next), N);
    for (int i = 0; i < N; i++) {
        assert_true(q[i].entered);
        assert_int_equal(order[i], i);
    }
    write_gate_load(g, &running, &waiting);
    assert_int_equal(running, 0);
    assert_int_equal(waiting, 0);
    write_gate_free(g);
}

static void a_waiter_out_of_time_leaves_the_queue_and_the_rest_keep_their_order(void **state)
{
    (void)state;
    struct write_gate *g = write_gate_new(1);
    assert_true(write_gate_enter(g, 10));
    int order[3];
    atomic_int next = 0;
    /* 0 waits long, 1 gives up after 100 ms, 2 waits long. */
    struct queued q[3] = {
        {.g = g, .max_wait_ms = 10000, .id = 0, .order = order, .next = &next},
        {.g = g, .max_wait_ms = 100, .id = 1, .order = order, .next = &next},
        {.g = g, .max_wait_ms = 10000, .id = 2, .order = order, .next = &next},
    };
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, queued_thread, &q[i]), 0);
        wait_for_waiting(g, i + 1);
    }
    int64_t t0 = gf_mono_ms();
    pthread_join(t[1], NULL); /* gave up, from the middle of the queue */
    assert_true(gf_mono_ms() - t0 < 5000);
    assert_false(q[1].entered);
    wait_for_waiting(g, 2);
    write_gate_leave(g);
    pthread_join(t[0], NULL);
    pthread_join(t[2], NULL);
    assert_true(q[0].entered);
    assert_true(q[2].entered);
    assert_int_equal(atomic_load(&next), 2);
    assert_int_equal(order[0], 0);
    assert_int_equal(order[1], 2);
    int running, waiting;
    write_gate_load(g, &running, &waiting);
    assert_int_equal(running, 0);
    assert_int_equal(waiting, 0);
    /* The last waiter giving up empties the queue: a newcomer gets the free place at once. */
    assert_true(write_gate_enter(g, 0));
    assert_false(write_gate_enter(g, 50)); /* alone in the queue, out of time */
    write_gate_load(g, &running, &waiting);
    assert_int_equal(running, 1);
    assert_int_equal(waiting, 0);
    write_gate_leave(g);
    write_gate_free(g);
}

/* ---- the limit under contention --------------------------------------------------------- */

struct busy {
    struct write_gate *g;
    atomic_int inside, most, done, refused;
};

static void *busy_thread(void *arg)
{
    struct busy *b = arg;
    for (int i = 0; i < 200; i++) {
        if (!write_gate_enter(b->g, 10000)) {
            atomic_fetch_add(&b->refused, 1);
            continue;
        }
        int now = atomic_fetch_add(&b->inside, 1) + 1;
        int most = atomic_load(&b->most);
        while (now > most && !atomic_compare_exchange_weak(&b->most, &most, now))
            ;
        usleep(100);
        atomic_fetch_sub(&b->inside, 1);
        write_gate_leave(b->g);
        atomic_fetch_add(&b->done, 1);
    }
    return NULL;
}

static void never_more_than_the_limit_inside_and_every_one_gets_through(void **state)
{
    (void)state;
    struct busy b = {.g = write_gate_new(3)};
    pthread_t t[16];
    for (int i = 0; i < 16; i++)
        assert_int_equal(pthread_create(&t[i], NULL, busy_thread, &b), 0);
    for (int i = 0; i < 16; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&b.done), 16 * 200);
    assert_int_equal(atomic_load(&b.refused), 0);
    assert_int_equal(atomic_load(&b.most), 3);
    write_gate_free(b.g);
}

static void no_gate_lets_everything_through(void **state)
{
    (void)state;
    assert_null(write_gate_new(0));
    for (int i = 0; i < 100; i++)
        assert_true(write_gate_enter(NULL, 0));
    write_gate_leave(NULL);
    int running = -1, waiting = -1;
    write_gate_load(NULL, &running, &waiting);
    assert_int_equal(running, 0);
    assert_int_equal(waiting, 0);
    write_gate_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(waiters_get_their_place_in_the_order_they_came),
        cmocka_unit_test(a_waiter_out_of_time_leaves_the_queue_and_the_rest_keep_their_order),
        cmocka_unit_test(never_more_than_the_limit_inside_and_every_one_gets_through),
        cmocka_unit_test(no_gate_lets_everything_through),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
