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

/* Renders every series; returns a malloc'd NUL-terminated text (caller frees) or NULL. */
char *gf_metrics_render(size_t *len);

#endif
