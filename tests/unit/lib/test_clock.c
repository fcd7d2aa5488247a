/* ISO-8601 formatting, back-off growth and jitter, and stoppable sleeps. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "gf/clock.h"

static void iso8601_has_milliseconds_and_utc(void **state)
{
    (void)state;
    char out[25];
    gf_iso8601_ms(1795671811712345LL, out); /* 2026-11-26T05:43:31.712345Z */
    assert_string_equal(out, "2026-11-26T05:43:31.712Z");
    gf_iso8601_ms(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    gf_iso8601_ms(-1000, out); /* one millisecond before the epoch */
    assert_string_equal(out, "1969-12-31T23:59:59.999Z");
}

/* The direct calendar agrees with gmtime_r: every day boundary and leap day from 1900 to 2400,
 * and a spread of instants (negative ones too) up to the slow path past 9999. */
static void iso8601_agrees_with_gmtime(void **state)
{
    (void)state;
    char out[25], want[80];
    int checked = 0;
    for (int64_t s = -2208988800LL; s < 13569465600LL; s += 86400 - 1) {
        for (int64_t us = s * 1000000 - 1000; us <= s * 1000000 + 1000; us += 1000) {
            int64_t secs = us / 1000000, rem = us % 1000000;
            if (rem < 0) {
                rem += 1000000;
                secs -= 1;
            }
            time_t t = (time_t)secs;
            struct tm tm;
            gmtime_r(&t, &tm);
            snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(rem / 1000));
            gf_iso8601_ms(us, out);
            if (strcmp(out, want) != 0)
                fail_msg("epoch_us %lld: %s, gmtime_r says %s", (long long)us, out, want);
            checked++;
        }
    }
    assert_true(checked > 500000);
    gf_iso8601_ms(253402300800000000LL, out); /* 10000-01-01: the slow path, cut to 24 */
    assert_int_equal(strlen(out), 24);
}

static void backoff_doubles_with_jitter_up_to_the_max(void **state)
{
    (void)state;
    struct gf_backoff b;
    gf_backoff_init(&b, 100, 1000);
    int64_t bases[] = {100, 200, 400, 800, 1000, 1000};
    for (int i = 0; i < 6; i++) {
        int64_t d = gf_backoff_next(&b);
        assert_true(d >= bases[i] / 2);
        assert_true(d <= bases[i]);
    }
    gf_backoff_reset(&b);
    int64_t d = gf_backoff_next(&b);
    assert_true(d >= 50 && d <= 100);
}

static void sleep_stops_early_when_asked(void **state)
{
    (void)state;
    atomic_bool stop = true;
    int64_t t0 = gf_mono_ms();
    assert_false(gf_sleep_ms(5000, &stop));
    assert_true(gf_mono_ms() - t0 < 1000);
    t0 = gf_mono_ms();
    assert_true(gf_sleep_ms(30, NULL));
    assert_true(gf_mono_ms() - t0 >= 30);
}

/* A deadline counts down on the monotonic clock, rounds up, stops at zero, and its absolute
 * form for a condition wait is the earlier of itself and the cap. */
static void deadline_counts_down_and_caps_waits(void **state)
{
    (void)state;
    struct gf_deadline d = gf_deadline_in_ms(200);
    int64_t left = gf_deadline_left_ms(d);
    assert_true(left > 150 && left <= 200);
    assert_false(gf_deadline_passed(d));
    struct gf_deadline past = gf_deadline_in_ms(-5);
    assert_true(gf_deadline_passed(past));
    assert_int_equal(gf_deadline_left_ms(past), 0);
    struct gf_deadline tiny = {gf_mono_us() + 1};
    assert_true(gf_deadline_left_ms(tiny) <= 1); /* rounds up: not 0 while time is left */

    struct timespec now, ts;
    clock_gettime(CLOCK_MONOTONIC, &now);
    ts = gf_deadline_mono_ts(d, 10); /* capped at 10 ms from now */
    int64_t ahead_ms =
        ((int64_t)ts.tv_sec - now.tv_sec) * 1000 + (ts.tv_nsec - now.tv_nsec) / 1000000;
    assert_true(ahead_ms >= 9 && ahead_ms <= 11);
    assert_true(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000);
    ts = gf_deadline_mono_ts(d, -1); /* uncapped: the deadline */
    ahead_ms = ((int64_t)ts.tv_sec - now.tv_sec) * 1000 + (ts.tv_nsec - now.tv_nsec) / 1000000;
    assert_true(ahead_ms > 150 && ahead_ms <= 201);
    clock_gettime(CLOCK_REALTIME, &now);
    ts = gf_deadline_real_ts(past, 1000); /* passed: now */
    ahead_ms = ((int64_t)ts.tv_sec - now.tv_sec) * 1000 + (ts.tv_nsec - now.tv_nsec) / 1000000;
    assert_true(ahead_ms >= 0 && ahead_ms <= 1);
}

/* gf_cond_init_mono: a timed wait 100 ms ahead on the monotonic clock waits about that long.
 * On the default clock (CLOCK_REALTIME) the same time, counted from boot, lies in 1970 and
 * the wait would return at once. */
static void cond_init_mono_waits_on_the_monotonic_clock(void **state)
{
    (void)state;
    pthread_cond_t cv;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    assert_int_equal(gf_cond_init_mono(&cv), 0);
    pthread_mutex_lock(&mu);
    int64_t t0 = gf_mono_ms();
    struct timespec ts = gf_deadline_mono_ts(gf_deadline_in_ms(100), -1);
    int rc = 0;
    while (rc == 0) /* a spurious wake-up waits again */
        rc = pthread_cond_timedwait(&cv, &mu, &ts);
    int64_t waited = gf_mono_ms() - t0;
    pthread_mutex_unlock(&mu);
    assert_int_equal(rc, ETIMEDOUT);
    assert_true(waited >= 99);
    assert_true(waited < 5000);
    pthread_cond_destroy(&cv);
}

/* gf_rand_unit: every draw in [0, 1), and 100,000 of them spread evenly over ten bins (each
 * within 5 % of its tenth; a stuck or biased generator fails). */
static void rand_unit_draws_evenly_in_zero_to_one(void **state)
{
    (void)state;
    int bins[10] = {0};
    for (int i = 0; i < 100000; i++) {
        double u = gf_rand_unit();
        assert_true(u >= 0.0 && u < 1.0);
        bins[(int)(u * 10)]++;
    }
    for (int b = 0; b < 10; b++)
        assert_true(bins[b] > 9500 && bins[b] < 10500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(iso8601_has_milliseconds_and_utc),
        cmocka_unit_test(iso8601_agrees_with_gmtime),
        cmocka_unit_test(backoff_doubles_with_jitter_up_to_the_max),
        cmocka_unit_test(sleep_stops_early_when_asked),
        cmocka_unit_test(deadline_counts_down_and_caps_waits),
        cmocka_unit_test(rand_unit_draws_evenly_in_zero_to_one),
        cmocka_unit_test(cond_init_mono_waits_on_the_monotonic_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
