/* The write gate (write_gate.c): at most N buys and add-gxps run at once in a backend; the
 * others wait their turn, first come first served, instead of all contending at once for the
 * two cores, the pool's connections and the hot rows' locks. A wait has a bound: past it the
 * request is answered 503 overloaded, nothing done. */
#ifndef BACKEND_WRITE_GATE_H
#define BACKEND_WRITE_GATE_H

#include <stdbool.h>
#include <stdint.h>

struct write_gate;

/* A gate that lets limit requests through at once; limit 0 means no gate (NULL, which every
 * function below takes as "let everything through"). NULL too on a resource failure: the gate
 * is an optimisation, never a reason not to serve. */
struct write_gate *write_gate_new(int limit);
void write_gate_free(struct write_gate *g);
/* Waits until it is the caller's turn (FIFO) and a place is free, then takes it: true. false
 * when max_wait_ms passed first: the caller has no place, and its turn is given up. */
bool write_gate_enter(struct write_gate *g, int64_t max_wait_ms);
/* Gives the place back: to the first waiter directly, if there is one. */
void write_gate_leave(struct write_gate *g);
/* Exposes the gate on /metrics: backend_write_gate_running and _waiting (gauges),
 * backend_write_gate_wait_seconds (each wait that got a place, 0 when one was free) and
 * backend_write_gate_timeouts_total. Once per process; a NULL g shows zeros. */
void write_gate_register_metrics(struct write_gate *g);
/* Now: the places taken and the requests waiting (for the metrics and the tests). */
void write_gate_load(struct write_gate *g, int *running, int *waiting);

#endif
