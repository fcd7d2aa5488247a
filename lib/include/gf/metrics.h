/* Prometheus metrics: counters, gauges read by callback, and latency histograms, each a
 * series registered once at start (name + fixed label set), updated lock-free, rendered in
 * the Prometheus text exposition format for GET /metrics. */
#ifndef GF_METRICS_H
#define GF_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct gf_counter;
struct gf_histogram;

/* labels is the inside of the braces, e.g. "method=\"GetAll\",code=\"OK\"", or "" for none.
 * Registering the same name+labels twice returns the same series. Series live until exit. */
struct gf_counter *gf_metrics_counter(const char *name, const char *help, const char *labels);
void gf_counter_add(struct gf_counter *c, uint64_t n);

/* Histogram of seconds with fixed buckets 0.0005 .. 10 s. */
struct gf_histogram *gf_metrics_histogram(const char *name, const char *help, const char *labels);
void gf_histogram_observe_us(struct gf_histogram *h, int64_t microseconds);

/* A gauge whose value is read from fn(arg) at render time. */
void gf_metrics_gauge_fn(const char *name, const char *help, const char *labels,
                         double (*fn)(void *arg), void *arg);

/* A backlog shown as two gauges: how many rows wait, and how old the oldest is in seconds
 * (computed at render from its time, so the age grows between two measures; 0 when none
 * waits). Both are NaN until the first measure and after a failed one. Static storage: the
 * gauges read it until exit. */
struct gf_backlog {
    _Atomic int64_t rows;      /* -1: not measured */
    _Atomic int64_t oldest_us; /* epoch µs of the oldest row, -1: none */
};
#define GF_BACKLOG_INIT                                                                            \
    {                                                                                              \
        -1, -1                                                                                     \
    }
void gf_metrics_backlog(struct gf_backlog *b, const char *rows_name, const char *rows_help,
                        const char *age_name, const char *age_help);
/* One measure: rows (-1 when it failed) and the oldest row's epoch µs (-1: none). */
void gf_backlog_set(struct gf_backlog *b, int64_t rows, int64_t oldest_us);

/* Renders every series; returns a malloc'd NUL-terminated text (caller frees) or NULL. */
char *gf_metrics_render(size_t *len);

#endif
