/* ISO-8601 formatting, back-off growth and jitter, and stoppable sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

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
        cmocka_unit_test(backoff_doubles_with_jitter_up_to_the_max),
        cmocka_unit_test(sleep_stops_early_when_asked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
