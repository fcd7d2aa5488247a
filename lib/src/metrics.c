/* Prometheus metrics: a process-wide registry of series created at start (locked), updated
 * lock-free with relaxed atomics, and rendered in the text exposition format 0.0.4. */
#include "gf/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gf/buf.h"
#include "gf/clock.h"
#include "gf/log.h"

#define MAX_SERIES 512
#define RENDER_MAX (8u << 20) /* bytes of text: 512 histograms fit in well under 8 MiB */
#define NBUCKETS 14           /* finite buckets; +Inf is one more */

/* Upper bounds in microseconds, so observing compares integers exactly. */
static const int64_t bucket_us[NBUCKETS] = {500,     1000,    2500,    5000,    10000,
                                            25000,   50000,   100000,  250000,  500000,
                                            1000000, 2500000, 5000000, 10000000};
static const char *const bucket_le[NBUCKETS + 1] = {"0.0005", "0.001", "0.0025", "0.005", "0.01",
                                                    "0.025",  "0.05",  "0.1",    "0.25",  "0.5",
                                                    "1",      "2.5",   "5",      "10",    "+Inf"};

struct gf_counter {
    _Atomic uint64_t value;
};

struct gf_histogram {
    _Atomic uint64_t buckets[NBUCKETS + 1]; /* per bucket, not cumulative: one add per observe */
    _Atomic uint64_t sum_us;
};

enum kind { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM };

struct series {
    enum kind kind;
    char *name, *help, *labels;
    struct gf_counter counter;
    struct gf_histogram hist;
    double (*fn)(void *arg);
    void *arg;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct series *g_series[MAX_SERIES]; /* registration order; reachable until exit */
static size_t g_nseries;
static bool g_full_logged;

/* Handed out when the registry is full or a registration is invalid, so callers never need
 * a NULL check on the hot path; never rendered. */
static struct gf_counter g_dummy_counter;
static struct gf_histogram g_dummy_hist;

static const char *kind_str(enum kind k)
{
    return k == KIND_COUNTER ? "counter" : k == KIND_GAUGE ? "gauge" : "histogram";
}

static bool valid_name(const char *s)
{
    if (s == NULL || *s == '\0' || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == ':'))
            return false;
    }
    return true;
}

static void series_free(struct series *s)
{
    if (s == NULL)
        return;
    free(s->name);
    free(s->help);
    free(s->labels);
    free(s);
}

/* Finds or creates the series name{labels}; NULL when it cannot (already logged). */
static struct series *register_locked(enum kind kind, const char *name, const char *help,
                                      const char *labels)
{
    struct series *s = NULL;
    if (labels == NULL)
        labels = "";
    if (!valid_name(name)) {
        GF_ERROR("metrics invalid name=%s", name ? name : "(null)");
        goto out;
    }
    for (size_t i = 0; i < g_nseries; i++) {
        struct series *e = g_series[i];
        if (strcmp(e->name, name) != 0)
            continue;
        if (e->kind != kind) {
            /* One name, one type: the exposition format cannot say two TYPE lines. */
            GF_ERROR("metrics type clash name=%s registered=%s asked=%s", name, kind_str(e->kind),
                     kind_str(kind));
            goto out;
        }
        if (strcmp(e->labels, labels) == 0) {
            s = e;
            goto out;
        }
    }
    if (g_nseries == MAX_SERIES) {
        if (!g_full_logged)
            GF_ERROR("metrics registry full max_series=%d name=%s: further series are dropped",
                     MAX_SERIES, name);
        g_full_logged = true;
        goto out;
    }
    struct series *n = calloc(1, sizeof *n);
    if (n == NULL || (n->name = strdup(name)) == NULL ||
        (n->help = strdup(help ? help : "")) == NULL || (n->labels = strdup(labels)) == NULL) {
        GF_ERROR("metrics out of memory name=%s", name);
        series_free(n);
        goto out;
    }
    n->kind = kind;
    g_series[g_nseries++] = n;
    s = n;
out:
    return s;
}

struct gf_counter *gf_metrics_counter(const char *name, const char *help, const char *labels)
{
    pthread_mutex_lock(&g_lock);
    struct series *s = register_locked(KIND_COUNTER, name, help, labels);
    pthread_mutex_unlock(&g_lock);
    return s ? &s->counter : &g_dummy_counter;
}

void gf_counter_add(struct gf_counter *c, uint64_t n)
{
    if (c != NULL)
        atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

struct gf_histogram *gf_metrics_histogram(const char *name, const char *help, const char *labels)
{
    pthread_mutex_lock(&g_lock);
    struct series *s = register_locked(KIND_HISTOGRAM, name, help, labels);
    pthread_mutex_unlock(&g_lock);
    return s ? &s->hist : &g_dummy_hist;
}

void gf_histogram_observe_us(struct gf_histogram *h, int64_t microseconds)
{
    if (h == NULL)
        return;
    if (microseconds < 0)
        microseconds = 0; /* a clock step must not make the sum go backwards */
    int b = 0;
    while (b < NBUCKETS && microseconds > bucket_us[b])
        b++;
    atomic_fetch_add_explicit(&h->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (uint64_t)microseconds, memory_order_relaxed);
}

/* A second registration replaces fn/arg: the newest owner (e.g. a pool re-created in a test)
 * is the live one, and keeping the old arg could call into freed memory. */
void gf_metrics_gauge_fn(const char *name, const char *help, const char *labels,
                         double (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&g_lock);
    struct series *s = register_locked(KIND_GAUGE, name, help, labels);
    if (s != NULL) {
        s->fn = fn;
        s->arg = arg;
    }
    pthread_mutex_unlock(&g_lock);
}

static double backlog_rows(void *arg)
{
    struct gf_backlog *b = arg;
    int64_t n = atomic_load(&b->rows);
    return n < 0 ? NAN : (double)n;
}

static double backlog_age(void *arg)
{
    struct gf_backlog *b = arg;
    int64_t n = atomic_load(&b->rows), oldest = atomic_load(&b->oldest_us);
    if (n < 0)
        return NAN;
    if (n == 0 || oldest < 0)
        return 0;
    int64_t age = gf_wall_us() - oldest;
    return age > 0 ? (double)age / 1e6 : 0;
}

void gf_metrics_backlog(struct gf_backlog *b, const char *rows_name, const char *rows_help,
                        const char *age_name, const char *age_help)
{
    gf_metrics_gauge_fn(rows_name, rows_help, "", backlog_rows, b);
    gf_metrics_gauge_fn(age_name, age_help, "", backlog_age, b);
}

void gf_backlog_set(struct gf_backlog *b, int64_t rows, int64_t oldest_us)
{
    atomic_store(&b->oldest_us, oldest_us);
    atomic_store(&b->rows, rows);
}

/* --- rendering ------------------------------------------------------------------------- */

/* HELP text escapes backslash and newline, per the exposition format. */
static void out_help(struct gf_buf *o, const struct series *s)
{
    gf_buf_printf(o, "# HELP %s ", s->name);
    for (const char *c = s->help; *c; c++) {
        if (*c == '\\')
            gf_buf_addstr(o, "\\\\");
        else if (*c == '\n')
            gf_buf_addstr(o, "\\n");
        else
            gf_buf_add(o, c, 1);
    }
    gf_buf_printf(o, "\n# TYPE %s %s\n", s->name, kind_str(s->kind));
}

/* Shortest of %.15g / %.17g that reads back as the same double; NaN and infinities as the
 * format spells them. */
static void format_double(double v, char out[40])
{
    if (isnan(v)) {
        strcpy(out, "NaN");
    } else if (isinf(v)) {
        strcpy(out, v > 0 ? "+Inf" : "-Inf");
    } else {
        snprintf(out, 40, "%.15g", v);
        if (strtod(out, NULL) != v)
            snprintf(out, 40, "%.17g", v);
    }
}

static void out_series(struct gf_buf *o, const struct series *s)
{
    const char *lb = *s->labels ? "{" : "", *le = *s->labels ? "}" : "";
    switch (s->kind) {
    case KIND_COUNTER:
        gf_buf_printf(
            o, "%s%s%s%s %llu\n", s->name, lb, s->labels, le,
            (unsigned long long)atomic_load_explicit(&s->counter.value, memory_order_relaxed));
        break;
    case KIND_GAUGE: {
        char num[40];
        format_double(s->fn ? s->fn(s->arg) : NAN, num);
        gf_buf_printf(o, "%s%s%s%s %s\n", s->name, lb, s->labels, le, num);
        break;
    }
    case KIND_HISTOGRAM: {
        /* _count is the +Inf bucket as read here, so the two always agree. */
        uint64_t cum = 0;
        const char *sep = *s->labels ? "," : "";
        for (int b = 0; b <= NBUCKETS; b++) {
            cum += atomic_load_explicit(&s->hist.buckets[b], memory_order_relaxed);
            gf_buf_printf(o, "%s_bucket{%s%sle=\"%s\"} %llu\n", s->name, s->labels, sep,
                          bucket_le[b], (unsigned long long)cum);
        }
        /* Integer microseconds printed as exact decimal seconds: no float noise. */
        uint64_t sum = atomic_load_explicit(&s->hist.sum_us, memory_order_relaxed);
        gf_buf_printf(o, "%s_sum%s%s%s %llu.%06llu\n", s->name, lb, s->labels, le,
                      (unsigned long long)(sum / 1000000), (unsigned long long)(sum % 1000000));
        gf_buf_printf(o, "%s_count%s%s%s %llu\n", s->name, lb, s->labels, le,
                      (unsigned long long)cum);
        break;
    }
    }
}

/* Gauge callbacks run under the registry lock: they must not register metrics. */
char *gf_metrics_render(size_t *len)
{
    bool done[MAX_SERIES] = {false};
    struct gf_buf o;
    gf_buf_init(&o, RENDER_MAX);
    pthread_mutex_lock(&g_lock);
    /* The format wants all series of one name together, under one HELP/TYPE. */
    for (size_t i = 0; i < g_nseries; i++) {
        if (done[i])
            continue;
        out_help(&o, g_series[i]);
        for (size_t j = i; j < g_nseries; j++) {
            if (!done[j] && strcmp(g_series[j]->name, g_series[i]->name) == 0) {
                out_series(&o, g_series[j]);
                done[j] = true;
            }
        }
    }
    pthread_mutex_unlock(&g_lock);
    char *res = gf_buf_take(&o, len);
    if (res == NULL)
        GF_ERROR("metrics render failed status=%s max=%u", gf_status_str(gf_buf_status(&o)),
                 RENDER_MAX);
    return res;
}
