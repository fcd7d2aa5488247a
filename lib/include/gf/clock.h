/* Time helpers: monotonic milliseconds for deadlines, wall-clock for timestamps, and
 * jittered exponential back-off. */
#ifndef GF_CLOCK_H
#define GF_CLOCK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

int64_t gf_mono_ms(void); /* monotonic clock, milliseconds */
int64_t gf_mono_us(void); /* monotonic clock, microseconds */
int64_t gf_wall_us(void); /* Unix epoch, microseconds */

/* Sleeps ms milliseconds, or less when *stop becomes true (checked every 50 ms; stop may
 * be NULL). Returns false when stopped early. */
bool gf_sleep_ms(int64_t ms, const atomic_bool *stop);

/* A point on the monotonic clock by which something must be done: one way to say "at most
 * this long" across loops, retries and condition waits. */
struct gf_deadline {
    int64_t at_us;
};
/* The deadline ms milliseconds from now (negative ms: already passed). */
struct gf_deadline gf_deadline_in_ms(int64_t ms);
/* Milliseconds left, rounded up, never negative: 0 once passed. */
int64_t gf_deadline_left_ms(struct gf_deadline d);
bool gf_deadline_passed(struct gf_deadline d);
/* The earlier of the deadline and ms from now, as an absolute CLOCK_MONOTONIC time for
 * pthread_cond_timedwait on a condition variable created with that clock (ms < 0: the
 * deadline alone). */
struct timespec gf_deadline_mono_ts(struct gf_deadline d, int64_t ms);
/* The same for a condition variable on CLOCK_REALTIME (the default clock). */
struct timespec gf_deadline_real_ts(struct gf_deadline d, int64_t ms);
/* Initialises *cv to wait on CLOCK_MONOTONIC, so that a timed wait on it (with
 * gf_deadline_mono_ts) is neither cut short nor stretched when the wall clock is set. Returns 0,
 * or the error of pthread_condattr_* / pthread_cond_init (then *cv is not initialised). */
int gf_cond_init_mono(pthread_cond_t *cv);

/* Back-off state: base doubles per attempt up to max, with "full jitter" in [base/2, base]. */
struct gf_backoff {
    int64_t initial_ms;
    int64_t max_ms;
    int64_t current_ms;
};
void gf_backoff_init(struct gf_backoff *b, int64_t initial_ms, int64_t max_ms);
int64_t gf_backoff_next(struct gf_backoff *b); /* the next delay to wait, ms */
void gf_backoff_reset(struct gf_backoff *b);

/* A uniform draw in [0, 1) from a generator of the calling thread's own (xorshift64*, seeded
 * from the clock and the thread): for probabilities on hot paths, no lock, no shared state.
 * Not for anything secret. */
double gf_rand_unit(void);

/* Formats epoch microseconds as ISO-8601 UTC with milliseconds: 2026-11-26T05:43:31.712Z.
 * out must hold 25 bytes. */
void gf_iso8601_ms(int64_t epoch_us, char out[25]);

#endif
