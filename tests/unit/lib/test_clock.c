/* ISO-8601 formatting, back-off growth and jitter, and stoppable sleeps. */
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
    volatile bool stop = true;
    int64_t t0 = gf_mono_ms();
    assert_false(gf_sleep_ms(5000, &stop));
    assert_true(gf_mono_ms() - t0 < 1000);
    t0 = gf_mono_ms();
    assert_true(gf_sleep_ms(30, NULL));
    assert_true(gf_mono_ms() - t0 >= 30);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(iso8601_has_milliseconds_and_utc),
        cmocka_unit_test(iso8601_agrees_with_gmtime),
        cmocka_unit_test(backoff_doubles_with_jitter_up_to_the_max),
        cmocka_unit_test(sleep_stops_early_when_asked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
