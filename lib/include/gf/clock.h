/* Time helpers: monotonic milliseconds for deadlines, wall-clock for timestamps, and
 * jittered exponential back-off. */
#ifndef GF_CLOCK_H
#define GF_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

int64_t gf_mono_ms(void); /* monotonic clock, milliseconds */
int64_t gf_mono_us(void); /* monotonic clock, microseconds */
int64_t gf_wall_us(void); /* Unix epoch, microseconds */

/* Sleeps ms milliseconds, or less when *stop becomes true (checked every 50 ms; stop may
 * be NULL). Returns false when stopped early. */
bool gf_sleep_ms(int64_t ms, const volatile bool *stop);

/* Back-off state: base doubles per attempt up to max, with "full jitter" in [base/2, base]. */
struct gf_backoff {
    int64_t initial_ms;
    int64_t max_ms;
    int64_t current_ms;
};
void gf_backoff_init(struct gf_backoff *b, int64_t initial_ms, int64_t max_ms);
int64_t gf_backoff_next(struct gf_backoff *b); /* the next delay to wait, ms */
void gf_backoff_reset(struct gf_backoff *b);

/* Formats epoch microseconds as ISO-8601 UTC with milliseconds: 2026-11-26T05:43:31.712Z.
 * out must hold 25 bytes. */
void gf_iso8601_ms(int64_t epoch_us, char out[25]);

#endif
