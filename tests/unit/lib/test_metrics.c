/* Unit tests for lib/src/metrics.c: the Prometheus text rendered for counters, gauges and
 * histograms, series identity, and the bound on the number of series. The registry is
 * process-wide, so every test uses its own metric names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gf/clock.h"
#include "gf/log.h"
#include "gf/metrics.h"

static char *render(void)
{
    size_t len = 0;
    char *text = gf_metrics_render(&len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

static int occurrences(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* The block must appear exactly once and contiguously: HELP/TYPE once, series grouped. */
static void assert_block(const char *text, const char *block)
{
    if (occurrences(text, block) != 1)
        fail_msg("block not found once in render.\n--- want:\n%s--- render:\n%s", block, text);
}

static void counters_render_with_help_and_type(void **state)
{
    (void)state;
    struct gf_counter *ok =
        gf_metrics_counter("tc_requests_total", "Requests served.", "method=\"GET\",code=\"200\"");
    /* Another name in between: the two series of tc_requests_total must still be grouped. */
    struct gf_counter *other = gf_metrics_counter("tc_other_total", "Other.", "");
    struct gf_counter *err =
        gf_metrics_counter("tc_requests_total", "Requests served.", "method=\"GET\",code=\"500\"");
    assert_non_null(ok);
    assert_true(ok != err);
    gf_counter_add(ok, 3);
    gf_counter_add(ok, 4);
    gf_counter_add(err, 1);
    gf_counter_add(other, 0);
    char *text = render();
    assert_block(text, "# HELP tc_requests_total Requests served.\n"
                       "# TYPE tc_requests_total counter\n"
                       "tc_requests_total{method=\"GET\",code=\"200\"} 7\n"
                       "tc_requests_total{method=\"GET\",code=\"500\"} 1\n"
                       "# HELP tc_other_total Other.\n"
                       "# TYPE tc_other_total counter\n"
                       "tc_other_total 0\n");
    assert_int_equal(occurrences(text, "# TYPE tc_requests_total "), 1);
    free(text);
}

static void same_name_and_labels_is_same_series(void **state)
{
    (void)state;
    struct gf_counter *a = gf_metrics_counter("tc_same_total", "Same.", "k=\"v\"");
    struct gf_counter *b = gf_metrics_counter("tc_same_total", "Same.", "k=\"v\"");
    struct gf_counter *c = gf_metrics_counter("tc_same_total", "Same.", "k=\"w\"");
    assert_ptr_equal(a, b);
    assert_ptr_not_equal(a, c);
    gf_counter_add(a, 2);
    gf_counter_add(b, 5);
    struct gf_histogram *h1 = gf_metrics_histogram("tc_same_seconds", "H.", "");
    struct gf_histogram *h2 = gf_metrics_histogram("tc_same_seconds", "H.", "");
    assert_ptr_equal(h1, h2);
    char *text = render();
    assert_block(text, "tc_same_total{k=\"v\"} 7\ntc_same_total{k=\"w\"} 0\n");
    assert_int_equal(occurrences(text, "# HELP tc_same_seconds "), 1);
    assert_int_equal(occurrences(text, "tc_same_seconds_count 0\n"), 1);
    free(text);
}

static void histogram_buckets_are_cumulative(void **state)
{
    (void)state;
    struct gf_histogram *h =
        gf_metrics_histogram("tc_latency_seconds", "Call latency.", "method=\"Prepare\"");
    gf_histogram_observe_us(h, 400);      /* le 0.0005 */
    gf_histogram_observe_us(h, 500);      /* le 0.0005: bounds are inclusive */
    gf_histogram_observe_us(h, -5);       /* clamped to 0 */
    gf_histogram_observe_us(h, 501);      /* le 0.001 */
    gf_histogram_observe_us(h, 2000000);  /* le 2.5 */
    gf_histogram_observe_us(h, 20000000); /* +Inf only */
    char *text = render();
    assert_block(text, "# HELP tc_latency_seconds Call latency.\n"
                       "# TYPE tc_latency_seconds histogram\n"
                       "tc_latency_seconds_bucket{method=\"Prepare\",le=\"0.0005\"} 3\n"
                       "tc_latency_seconds_bucket{method=\"Prepare\",le=\"0.001\"} 4\n"
                       "tc_latency_seconds_bucket{method=\"Prepare\",le=\"0.0025\"} 4\n"
                       "tc_latency_seconds_bucket{method=\"Prepare\",le=\"0.005\"} 4\n"
                       "tc_latency_seconds_bucket{method=\"Prepare\",le=\"0.01\"} 4\n"
                       "tc_latency_seconds_bucket{method=\"Prepare\",le=\"0.025\"} 4\n"
                       "tc_latency_seconds_bucket{method=\"Prepare\",le=\"0.05\"} 4\n"
                       "tc_latency_seconds_bucket{method=\"Prepare\",le=\"0.1\"} 4\n"
                       "tc_latency_seconds_bucket{method=\"Prepare\",le=\"0.25\"} 4\n"
                       "tc_latency_seconds_bucket{method=\"Prepare\",le=\"0.5\"} 4\n"
                       "tc_latency_seconds_bucket{method=\"Prepare\",le=\"1\"} 4\n"
                       "tc_latency_seconds_bucket{method=\"Prepare\",le=\"2.5\"} 5\n"
                       "tc_latency_seconds_bucket{method=\"Prepare\",le=\"5\"} 5\n"
                       "tc_latency_seconds_bucket{method=\"Prepare\",le=\"10\"} 5\n"
                       "tc_latency_seconds_bucket{method=\"Prepare\",le=\"+Inf\"} 6\n"
                       "tc_latency_seconds_sum{method=\"Prepare\"} 22.001401\n"
                       "tc_latency_seconds_count{method=\"Prepare\"} 6\n");
    free(text);
}

static void histogram_without_labels(void **state)
{
    (void)state;
    struct gf_histogram *h = gf_metrics_histogram("tc_plain_seconds", "Plain.", "");
    gf_histogram_observe_us(h, 10000000); /* exactly 10 s: le 10 */
    gf_histogram_observe_us(h, 1);
    char *text = render();
    assert_block(text, "tc_plain_seconds_bucket{le=\"0.0005\"} 1\n");
    assert_block(text, "tc_plain_seconds_bucket{le=\"5\"} 1\n"
                       "tc_plain_seconds_bucket{le=\"10\"} 2\n"
                       "tc_plain_seconds_bucket{le=\"+Inf\"} 2\n"
                       "tc_plain_seconds_sum 10.000001\n"
                       "tc_plain_seconds_count 2\n");
    free(text);
}

static double read_double(void *arg)
{
    return *(double *)arg;
}

static void gauge_reads_fn_at_render(void **state)
{
    (void)state;
    static double v = 2.5;
    static double w = 0.1;
    gf_metrics_gauge_fn("tc_pool_in_use", "Connections lent.", "pool=\"main\"", read_double, &v);
    char *text = render();
    assert_block(text, "# HELP tc_pool_in_use Connections lent.\n"
                       "# TYPE tc_pool_in_use gauge\n"
                       "tc_pool_in_use{pool=\"main\"} 2.5\n");
    free(text);
    v = 3;
    text = render();
    assert_block(text, "tc_pool_in_use{pool=\"main\"} 3\n");
    free(text);
    /* Registering again replaces the callback: the newest owner is the live one. */
    gf_metrics_gauge_fn("tc_pool_in_use", "Connections lent.", "pool=\"main\"", read_double, &w);
    text = render();
    assert_block(text, "tc_pool_in_use{pool=\"main\"} 0.1\n");
    assert_int_equal(occurrences(text, "tc_pool_in_use{"), 1);
    free(text);
}

/* A backlog's two gauges: NaN until measured and after a failed measure, then the rows and the
 * oldest's age, which grows at render between two measures; 0 s when nothing waits. */
static void backlog_rows_and_age(void **state)
{
    (void)state;
    static struct gf_backlog b = GF_BACKLOG_INIT;
    gf_metrics_backlog(&b, "tc_backlog_rows", "Rows waiting.", "tc_backlog_age_seconds",
                       "Age of the oldest.");
    char *text = render();
    assert_block(text, "tc_backlog_rows NaN\n");
    assert_block(text, "tc_backlog_age_seconds NaN\n");
    free(text);
    gf_backlog_set(&b, 0, -1);
    text = render();
    assert_block(text, "tc_backlog_rows 0\n");
    assert_block(text, "tc_backlog_age_seconds 0\n");
    free(text);
    gf_backlog_set(&b, 7, gf_wall_us() - 90 * 1000000LL);
    text = render();
    assert_block(text, "tc_backlog_rows 7\n");
    const char *age = strstr(text, "\ntc_backlog_age_seconds ");
    assert_non_null(age);
    double seconds = strtod(age + strlen("\ntc_backlog_age_seconds "), NULL);
    assert_true(seconds >= 90 && seconds < 95);
    free(text);
    gf_backlog_set(&b, -1, -1); /* a failed measure */
    text = render();
    assert_block(text, "tc_backlog_rows NaN\n");
    free(text);
}

static void help_is_escaped_and_bad_names_refused(void **state)
{
    (void)state;
    gf_counter_add(gf_metrics_counter("tc_escaped_total", "back\\slash\nnewline", ""), 1);
    /* Invalid names and type clashes get a series that works but is never rendered. */
    struct gf_counter *bad = gf_metrics_counter("9starts_with_digit", "Bad.", "");
    assert_non_null(bad);
    gf_counter_add(bad, 1);
    struct gf_histogram *clash = gf_metrics_histogram("tc_escaped_total", "Clash.", "");
    assert_non_null(clash);
    gf_histogram_observe_us(clash, 1);
    char *text = render();
    assert_block(text, "# HELP tc_escaped_total back\\\\slash\\nnewline\n"
                       "# TYPE tc_escaped_total counter\n"
                       "tc_escaped_total 1\n");
    assert_null(strstr(text, "9starts_with_digit"));
    assert_null(strstr(text, "tc_escaped_total_bucket"));
    free(text);
}

static void every_line_is_well_formed(void **state)
{
    (void)state;
    char *text = render();
    assert_true(strlen(text) > 0);
    assert_int_equal(text[strlen(text) - 1], '\n');
    for (char *line = text; *line;) {
        char *end = strchr(line, '\n');
        assert_non_null(end);
        *end = '\0';
        if (line[0] == '#') {
            assert_true(strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0);
        } else {
            /* name[{labels}] SP value */
            char *sp = strrchr(line, ' ');
            assert_non_null(sp);
            assert_true(sp > line);
            assert_true(strchr("0123456789+-N", sp[1]) != NULL);
        }
        line = end + 1;
    }
    free(text);
}

/* Last: fills the registry. */
static void registry_is_bounded(void **state)
{
    (void)state;
    struct gf_counter *before = gf_metrics_counter("tc_before_fill_total", "Before.", "");
    struct gf_counter *prev = NULL;
    int same = 0;
    char labels[32];
    for (int i = 0; i < 600; i++) {
        snprintf(labels, sizeof labels, "i=\"%d\"", i);
        struct gf_counter *c = gf_metrics_counter("tc_fill_total", "Fill.", labels);
        assert_non_null(c);
        gf_counter_add(c, 1);
        if (c == prev)
            same++;
        prev = c;
    }
    /* Past 512 series every new one is the same dummy. */
    assert_true(same > 0);
    assert_ptr_equal(gf_metrics_counter("tc_fill_total", "Fill.", "i=\"599\""),
                     gf_metrics_counter("tc_other_after_fill", "X.", ""));
    gf_counter_add(before, 9); /* registered before the limit: still counted */
    char *text = render();
    assert_int_equal(occurrences(text, "tc_fill_total{"), 600 - same - 1);
    assert_block(text, "tc_fill_total{i=\"0\"} 1\n");
    assert_null(strstr(text, "tc_fill_total{i=\"599\"}"));
    assert_null(strstr(text, "tc_other_after_fill"));
    assert_block(text, "tc_before_fill_total 9\n");
    /* Exactly 512 series rendered: one line each, histograms counted by their _count line. */
    int series = 0;
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t n = (size_t)(e - p);
        char *line = strndup(p, n);
        if (line[0] != '#' && !strstr(line, "_bucket{") && !strstr(line, "_sum"))
            series++;
        free(line);
        p = e + 1;
    }
    assert_int_equal(series, 512);
    free(text);
}

int main(void)
{
    gf_log_init("test", GF_LOG_DEBUG);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counters_render_with_help_and_type),
        cmocka_unit_test(same_name_and_labels_is_same_series),
        cmocka_unit_test(histogram_buckets_are_cumulative),
        cmocka_unit_test(histogram_without_labels),
        cmocka_unit_test(gauge_reads_fn_at_render),
        cmocka_unit_test(backlog_rows_and_age),
        cmocka_unit_test(help_is_escaped_and_bad_names_refused),
        cmocka_unit_test(every_line_is_well_formed),
        cmocka_unit_test(registry_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
