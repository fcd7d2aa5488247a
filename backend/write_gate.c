/* The write gate: a counting semaphore whose waiters are served in arrival order, each for a
 * bounded time.
 *
 * Why a limit at all: on two cores, 32 buys at once do not finish sooner than 4 at once; they
 * take turns on the CPU, hold 32 pooled connections and queue on the same rows' locks, and the
 * ones the scheduler keeps losing make the tail (ARCHITECTURE §3b, "The write gate").
 *
 * Why FIFO and not a plain semaphore or the pool's own wait: a condition variable wakes
 * whoever the scheduler picks, and a thread just back from its last request can take the
 * place before one that has waited for ten. Each waiter here sleeps on its own condition
 * variable, in a queue; a leaving request hands its place to the queue's head directly (the
 * place never becomes free in between, so no newcomer can barge in), and wakes that one thread
 * only. A waiter whose time is up unlinks itself, unless the place was handed to it first. */
#include "write_gate.h"

#include <pthread.h>
#include <stdlib.h>

#include "gf/clock.h"
#include "gf/metrics.h"

struct waiter {
    pthread_cond_t cv; /* on CLOCK_MONOTONIC, as gf_deadline_mono_ts needs */
    bool granted;
    struct waiter *prev, *next;
};

struct write_gate {
    pthread_mutex_t mu;
    int limit, running, waiting;
    struct waiter *head, *tail;
    struct gf_histogram *wait; /* NULL until write_gate_register_metrics */
    struct gf_counter *timeouts;
};

struct write_gate *write_gate_new(int limit)
{
    if (limit <= 0)
        return NULL;
    struct write_gate *g = calloc(1, sizeof *g);
    if (g == NULL)
        return NULL;
    if (pthread_mutex_init(&g->mu, NULL) != 0) {
        free(g);
        return NULL;
    }
    g->limit = limit;
    return g;
}

void write_gate_free(struct write_gate *g)
{
    if (g == NULL)
        return;
    pthread_mutex_destroy(&g->mu);
    free(g);
}

static void unlink_waiter(struct write_gate *g, struct waiter *w)
{
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        g->head = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    else
        g->tail = w->prev;
    g->waiting--;
}

bool write_gate_enter(struct write_gate *g, int64_t max_wait_ms)
{
    if (g == NULL)
        return true;
    pthread_mutex_lock(&g->mu);
    if (g->head == NULL && g->running < g->limit) {
        g->running++;
        pthread_mutex_unlock(&g->mu);
        if (g->wait != NULL)
            gf_histogram_observe_us(g->wait, 0);
        return true;
    }
    int64_t t0 = gf_mono_us();
    struct gf_deadline deadline = gf_deadline_in_ms(max_wait_ms);
    struct waiter w = {.granted = false, .prev = g->tail, .next = NULL};
    gf_cond_init_mono(&w.cv);
    if (g->tail != NULL)
        g->tail->next = &w;
    else
        g->head = &w;
    g->tail = &w;
    g->waiting++;
    while (!w.granted && !gf_deadline_passed(deadline)) {
        struct timespec ts = gf_deadline_mono_ts(deadline, -1);
        pthread_cond_timedwait(&w.cv, &g->mu, &ts);
    }
    bool granted = w.granted; /* granted: write_gate_leave unlinked w and counted it running */
    if (!granted)
        unlink_waiter(g, &w);
    pthread_mutex_unlock(&g->mu);
    pthread_cond_destroy(&w.cv);
    if (granted && g->wait != NULL)
        gf_histogram_observe_us(g->wait, gf_mono_us() - t0);
    if (!granted && g->timeouts != NULL)
        gf_counter_add(g->timeouts, 1);
    return granted;
}

void write_gate_leave(struct write_gate *g)
{
    if (g == NULL)
        return;
    pthread_mutex_lock(&g->mu);
    struct waiter *w = g->head;
    if (w != NULL) { /* the place goes to the head of the queue: running stays the same */
        unlink_waiter(g, w);
        w->granted = true;
        pthread_cond_signal(&w->cv);
    } else {
        g->running--;
    }
    pthread_mutex_unlock(&g->mu);
}

void write_gate_load(struct write_gate *g, int *running, int *waiting)
{
    *running = *waiting = 0;
    if (g == NULL)
        return;
    pthread_mutex_lock(&g->mu);
    *running = g->running;
    *waiting = g->waiting;
    pthread_mutex_unlock(&g->mu);
}

static double running_gauge(void *arg)
{
    int running, waiting;
    write_gate_load(arg, &running, &waiting);
    return running;
}

static double waiting_gauge(void *arg)
{
    int running, waiting;
    write_gate_load(arg, &running, &waiting);
    return waiting;
}

void write_gate_register_metrics(struct write_gate *g)
{
    gf_metrics_gauge_fn("backend_write_gate_running",
                        "buys and add-gxps running now (at most BACKEND_WRITE_CONCURRENCY)", "",
                        running_gauge, g);
    gf_metrics_gauge_fn("backend_write_gate_waiting",
                        "buys and add-gxps waiting now for their turn to run", "", waiting_gauge,
                        g);
    struct gf_histogram *h = gf_metrics_histogram(
        "backend_write_gate_wait_seconds",
        "each buy's and add-gxp's wait for its turn (0 when a place was free)", "");
    struct gf_counter *t = gf_metrics_counter(
        "backend_write_gate_timeouts_total",
        "buys and add-gxps answered 503 overloaded after BACKEND_WRITE_WAIT_MS in the queue", "");
    if (g != NULL) { /* before any request: main registers them ahead of the API */
        g->wait = h;
        g->timeouts = t;
    }
}
