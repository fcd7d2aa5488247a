/* GET /metrics of every service, against the real backend, gxp and eventlog, three PostgreSQL
 * clusters and the run's RabbitMQ node. After a few operations — a user, GXP added, an item on
 * the marketplace, a buy, a buy refused for lack of GXP (409), a stale If-Match (412), reads,
 * ResolveTransaction — each service answers valid Prometheus text (HELP and TYPE before the
 * samples, metric and label syntax, numeric values, histograms cumulative with +Inf ==
 * _count), carries every metric of its list below (a renamed or missing metric fails here),
 * and the counters moved as the operations say. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend_fixture.h"
#include "gf/clock.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define WAIT_MS 15000

/* ---- the metrics each service must expose (families: the names of their TYPE lines) ---- */

static const char *const backend_metrics[] = {
    /* HTTP API */
    "backend_http_requests_total",
    "backend_http_request_duration_seconds",
    "backend_http_errors_total",
    /* gRPC server (ResolveTransaction) and client (calls to gxp) */
    "gf_grpc_server_handled_total",
    "gf_grpc_server_handling_seconds",
    "backend_gxp_calls_total",
    "backend_gxp_call_duration_seconds",
    /* 2PC, coordinator side */
    "backend_2pc_started_total",
    "backend_2pc_prepares_total",
    "backend_2pc_prepare_retries_total",
    "backend_2pc_decisions_total",
    "backend_2pc_outcomes_total",
    "backend_resolve_transaction_total",
    /* optimistic locking */
    "backend_lock_conflicts_total",
    /* the buy's conditional stock update */
    "backend_buy_stock_take_seconds",
    /* outbox, relay, replication of the decisions */
    "backend_relay_published_total",
    "backend_relay_returned_total",
    "backend_relay_nacked_total",
    "backend_relay_unconfirmed_total",
    "backend_relay_connects_total",
    "backend_relay_batch_failures_total",
    "backend_relay_lag_seconds",
    "backend_relay_connected",
    "backend_outbox_pruned_total",
    "backend_outbox_pending",
    "backend_outbox_oldest_pending_age_seconds",
    "backend_decisions_replication_lag_bytes",
    /* admission control (off in the fixture: registered all the same) */
    "backend_shed_total",
    "backend_admission_state",
    "backend_admission_shed_ratio",
    "backend_admission_decisions_lag_seconds",
    "backend_admission_outbox_age_seconds",
    /* the read cache of GET /user and GET /item */
    "backend_read_cache_answers_total",
    "backend_read_cache_probes_total",
    "backend_read_cache_bytes",
    /* the auction saga's runners */
    "backend_saga_steps_total",
    "backend_saga_step_delay_seconds",
    /* pools, the event-log watcher */
    "gf_db_pool_in_use",
    "gf_db_pool_open",
    "events_log_deliveries_total",
    "events_log_acked_total",
    "events_log_dead_lettered_total",
    "events_log_redelivered_total",
    "events_log_reconnects_total",
    "events_log_handler_failures_total",
};

static const char *const gxp_metrics[] = {
    "gxp_http_requests_total",
    "gxp_http_request_duration_seconds",
    "gf_grpc_server_handled_total",
    "gf_grpc_server_handling_seconds",
    "gxp_prepares_total",
    "gxp_pipeline_in_flight",
    "gxp_transactions_pending",
    "gxp_pending_oldest_age_seconds",
    "gxp_resolver_asked_total",
    "gxp_resolver_applied_total",
    "gxp_resolver_failures_total",
    "gxp_resolver_finalized_total",
    "gxp_subscription_ready",
    "gf_db_pool_in_use",
    "gf_db_pool_open",
    "gf_db_pipeline_statements_total",
    "gf_db_pipeline_batches_total",
    "gf_db_pipeline_connection_failures_total",
    "events_log_deliveries_total",
    "events_log_acked_total",
    "events_log_dead_lettered_total",
    "events_log_redelivered_total",
    "events_log_reconnects_total",
    "events_log_handler_failures_total",
};

static const char *const eventlog_metrics[] = {
    "eventlog_http_requests_total",
    "eventlog_http_request_duration_seconds",
    "eventlog_events_stored_total",
    "eventlog_events_duplicate_total",
    "eventlog_events_dead_lettered_total",
    "eventlog_store_batch_seconds",
    "eventlog_event_lag_seconds",
    "eventlog_last_event_lag_seconds",
    "eventlog_last_stored_timestamp_seconds",
    "eventlog_store_outage",
    "eventlog_consumer_connected",
    "eventlog_consumer_deliveries_total",
    "eventlog_consumer_acked_total",
    "eventlog_consumer_dead_lettered_total",
    "eventlog_consumer_redelivered_total",
    "eventlog_consumer_reconnects_total",
    "eventlog_consumer_handler_failures_total",
    "gf_db_pool_in_use",
    "gf_db_pool_open",
};

/* ---- the exposition format, parsed and checked ------------------------------------------ */

struct label {
    char *name, *value; /* value unescaped */
};

struct sample {
    char *name;
    struct label *labels;
    int nlabels;
    double value;
};

struct family {
    char *name, *type;
    bool help;
};

struct scrape {
    const char *service;
    struct sample *s;
    int ns, cap_s;
    struct family *f;
    int nf, cap_f;
};

static void scrape_free(struct scrape *sc)
{
    for (int i = 0; i < sc->ns; i++) {
        for (int j = 0; j < sc->s[i].nlabels; j++) {
            free(sc->s[i].labels[j].name);
            free(sc->s[i].labels[j].value);
        }
        free(sc->s[i].labels);
        free(sc->s[i].name);
    }
    for (int i = 0; i < sc->nf; i++) {
        free(sc->f[i].name);
        free(sc->f[i].type);
    }
    free(sc->s);
    free(sc->f);
    memset(sc, 0, sizeof *sc);
}

static bool name_char(char c, bool first, bool colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':') ||
           (!first && c >= '0' && c <= '9');
}

/* The length of a metric name (colon) or label name at p; 0 when there is none. */
static size_t name_len(const char *p, bool colon)
{
    size_t n = 0;
    while (name_char(p[n], n == 0, colon))
        n++;
    return n;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* A sample value: a float, or NaN / +Inf / -Inf. */
static bool parse_value(const char *p, size_t n, double *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, p, n);
    buf[n] = '\0';
    if (strcmp(buf, "NaN") == 0) {
        *out = NAN;
        return true;
    }
    if (strcmp(buf, "+Inf") == 0 || strcmp(buf, "-Inf") == 0) {
        *out = buf[0] == '+' ? INFINITY : -INFINITY;
        return true;
    }
    /* strtod would also take "inf", "nan(...)" and hex: the format does not. */
    for (size_t i = 0; i < n; i++) {
        if (!strchr("0123456789+-.eE", buf[i]))
            return false;
    }
    char *end;
    *out = strtod(buf, &end);
    return *end == '\0';
}

static struct family *family_of(struct scrape *sc, const char *name)
{
    for (int i = 0; i < sc->nf; i++) {
        if (strcmp(sc->f[i].name, name) == 0)
            return &sc->f[i];
    }
    return NULL;
}

/* The family a sample name belongs to, given the family being written. */
static bool sample_in_family(const struct family *f, const char *name)
{
    if (strcmp(f->type, "histogram") != 0)
        return strcmp(name, f->name) == 0;
    size_t n = strlen(f->name);
    return strncmp(name, f->name, n) == 0 &&
           (strcmp(name + n, "_bucket") == 0 || strcmp(name + n, "_sum") == 0 ||
            strcmp(name + n, "_count") == 0);
}

#define BAD(...)                                                                                   \
    do {                                                                                           \
        snprintf(why, whyn, __VA_ARGS__);                                                          \
        return -1;                                                                                 \
    } while (0)

/* Parses `{a="x",b="y"}` at *pp into s's labels. */
static int parse_labels(const char **pp, struct sample *s, char *why, size_t whyn)
{
    const char *p = *pp + 1;
    while (*p != '}') {
        size_t n = name_len(p, false);
        if (n == 0 || (n >= 2 && p[0] == '_' && p[1] == '_'))
            BAD("bad label name at '%.20s'", p);
        if (p[n] != '=' || p[n + 1] != '"')
            BAD("label without =\"value\" at '%.20s'", p);
        char *lname = strndup(p, n);
        for (int j = 0; j < s->nlabels; j++) {
            if (strcmp(s->labels[j].name, lname) == 0) {
                free(lname);
                BAD("label %.*s twice", (int)n, p);
            }
        }
        p += n + 2;
        char val[512];
        size_t vn = 0;
        while (*p != '"') {
            if (*p == '\0' || *p == '\n' || vn + 1 >= sizeof val) {
                free(lname);
                BAD("unterminated label value");
            }
            if (*p == '\\') {
                p++;
                if (*p != '\\' && *p != '"' && *p != 'n') {
                    free(lname);
                    BAD("bad escape \\%c in a label value", *p);
                }
                val[vn++] = *p == 'n' ? '\n' : *p;
                p++;
                continue;
            }
            val[vn++] = *p++;
        }
        val[vn] = '\0';
        p++;
        struct label *l = realloc(s->labels, sizeof *l * (size_t)(s->nlabels + 1));
        assert_non_null(l);
        s->labels = l;
        s->labels[s->nlabels++] = (struct label){.name = lname, .value = strdup(val)};
        if (*p == ',')
            p++;
        else if (*p != '}')
            BAD("expected , or } after a label at '%.20s'", p);
    }
    *pp = p + 1;
    return 0;
}

/* One line that is neither HELP nor TYPE nor a comment: name{labels} value [timestamp]. */
static int parse_sample(struct scrape *sc, const char *line, const struct family *cur, char *why,
                        size_t whyn)
{
    size_t n = name_len(line, true);
    if (n == 0)
        BAD("bad metric name");
    struct sample s = {.name = strndup(line, n)};
    const char *p = line + n;
    int rc = -1;
    if (*p == '{' && parse_labels(&p, &s, why, whyn) != 0)
        goto out;
    if (*p != ' ') {
        snprintf(why, whyn, "expected a space before the value");
        goto out;
    }
    p++;
    size_t vn = strcspn(p, " ");
    if (!parse_value(p, vn, &s.value)) {
        snprintf(why, whyn, "bad value '%.*s'", (int)vn, p);
        goto out;
    }
    p += vn;
    if (*p == ' ') { /* an optional timestamp: an integer */
        p++;
        if (*p == '-')
            p++;
        if (*p == '\0' || strspn(p, "0123456789") != strlen(p)) {
            snprintf(why, whyn, "bad timestamp '%s'", p);
            goto out;
        }
    }
    if (cur == NULL || !sample_in_family(cur, s.name)) {
        snprintf(why, whyn, "sample %s outside its family's HELP/TYPE block", s.name);
        goto out;
    }
    if (sc->ns == sc->cap_s) {
        sc->cap_s = sc->cap_s ? 2 * sc->cap_s : 256;
        sc->s = realloc(sc->s, sizeof *sc->s * (size_t)sc->cap_s);
        assert_non_null(sc->s);
    }
    sc->s[sc->ns++] = s;
    return 0;
out:
    for (int j = 0; j < s.nlabels; j++) {
        free(s.labels[j].name);
        free(s.labels[j].value);
    }
    free(s.labels);
    free(s.name);
    return rc;
}

/* "# HELP name text" and "# TYPE name type"; other comments are allowed and skipped. */
static int parse_comment(struct scrape *sc, const char *line, struct family **cur, char *why,
                         size_t whyn)
{
    bool help = strncmp(line, "# HELP ", 7) == 0, type = strncmp(line, "# TYPE ", 7) == 0;
    if (!help && !type)
        return 0;
    const char *p = line + 7;
    size_t n = name_len(p, true);
    if (n == 0 || (p[n] != ' ' && !(help && p[n] == '\0')))
        BAD("bad name in '%s'", line);
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)n, p);
    const char *rest = p[n] ? p + n + 1 : "";
    struct family *f = family_of(sc, name);
    if (f != NULL && f != *cur)
        BAD("family %s comes back after another one", name);
    if (f == NULL) {
        if (sc->nf == sc->cap_f) {
            sc->cap_f = sc->cap_f ? 2 * sc->cap_f : 64;
            sc->f = realloc(sc->f, sizeof *sc->f * (size_t)sc->cap_f);
            assert_non_null(sc->f);
        }
        f = &sc->f[sc->nf++];
        *f = (struct family){.name = strdup(name)};
        *cur = f;
    }
    if (help) {
        if (f->help || f->type != NULL)
            BAD("HELP of %s twice, or after its TYPE", name);
        for (const char *c = rest; *c; c++) {
            if (*c == '\\' && c[1] != '\\' && c[1] != 'n')
                BAD("bad escape in the HELP of %s", name);
            if (*c == '\\')
                c++;
        }
        f->help = true;
        return 0;
    }
    if (f->type != NULL)
        BAD("TYPE of %s twice", name);
    static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
    for (size_t i = 0; i < N(types); i++) {
        if (strcmp(rest, types[i]) == 0)
            f->type = strdup(rest);
    }
    if (f->type == NULL)
        BAD("unknown TYPE '%s' of %s", rest, name);
    return 0;
}

/* The labels of s but le, as one comparable string. */
static void series_key(const struct sample *s, bool without_le, char *out, size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    /* Sorted by name, so {a,b} and {b,a} are one series. */
    bool used[16] = {false};
    for (int k = 0; k < s->nlabels && k < 16; k++) {
        int best = -1;
        for (int j = 0; j < s->nlabels && j < 16; j++) {
            if (!used[j] && (best < 0 || strcmp(s->labels[j].name, s->labels[best].name) < 0))
                best = j;
        }
        used[best] = true;
        if (without_le && strcmp(s->labels[best].name, "le") == 0)
            continue;
        len += (size_t)snprintf(out + len, len < n ? n - len : 0, "%s=%s,", s->labels[best].name,
                                s->labels[best].value);
    }
}

static const char *label_of(const struct sample *s, const char *name)
{
    for (int j = 0; j < s->nlabels; j++) {
        if (strcmp(s->labels[j].name, name) == 0)
            return s->labels[j].value;
    }
    return NULL;
}

/* Every family: HELP and TYPE; counters end in _total and are finite and >= 0; histograms end
 * in _seconds and each of their series has increasing le, cumulative buckets, +Inf last and
 * equal to _count, and a _sum. No series twice. */
static int check_families(struct scrape *sc, char *why, size_t whyn)
{
    char k1[1024], k2[1024];
    for (int i = 0; i < sc->ns; i++) {
        series_key(&sc->s[i], false, k1, sizeof k1);
        for (int j = i + 1; j < sc->ns; j++) {
            if (strcmp(sc->s[i].name, sc->s[j].name) != 0)
                continue;
            series_key(&sc->s[j], false, k2, sizeof k2);
            if (strcmp(k1, k2) == 0)
                BAD("series %.100s{%.200s} twice", sc->s[i].name, k1);
        }
    }
    for (int fi = 0; fi < sc->nf; fi++) {
        struct family *f = &sc->f[fi];
        if (!f->help || f->type == NULL)
            BAD("family %s lacks its HELP or TYPE", f->name);
        bool counter = strcmp(f->type, "counter") == 0, hist = strcmp(f->type, "histogram") == 0;
        if (counter && !ends_with(f->name, "_total"))
            BAD("counter %s does not end in _total", f->name);
        if (hist && !ends_with(f->name, "_seconds"))
            BAD("histogram %s does not end in _seconds", f->name);
        for (int i = 0; i < sc->ns && counter; i++) {
            double v = sc->s[i].value;
            if (strcmp(sc->s[i].name, f->name) == 0 && (!isfinite(v) || v < 0))
                BAD("counter %s has value %g", f->name, v);
        }
        if (!hist)
            continue;
        char bucket[300], sum[300], count[300];
        snprintf(bucket, sizeof bucket, "%s_bucket", f->name);
        snprintf(sum, sizeof sum, "%s_sum", f->name);
        snprintf(count, sizeof count, "%s_count", f->name);
        for (int i = 0; i < sc->ns; i++) { /* each series: its first bucket starts it */
            if (strcmp(sc->s[i].name, bucket) != 0)
                continue;
            series_key(&sc->s[i], true, k1, sizeof k1);
            bool first = true;
            for (int j = 0; j < i; j++) {
                if (strcmp(sc->s[j].name, bucket) == 0) {
                    series_key(&sc->s[j], true, k2, sizeof k2);
                    first &= strcmp(k1, k2) != 0;
                }
            }
            if (!first)
                continue;
            double prev_le = -INFINITY, prev = 0, inf = NAN, n_sum = NAN, n_count = NAN;
            for (int j = i; j < sc->ns; j++) {
                series_key(&sc->s[j], true, k2, sizeof k2);
                if (strcmp(k1, k2) != 0)
                    continue;
                const struct sample *s = &sc->s[j];
                if (strcmp(s->name, bucket) == 0) {
                    const char *le = label_of(s, "le");
                    double lev;
                    if (le == NULL || !parse_value(le, strlen(le), &lev) || isnan(lev))
                        BAD("%s{%.200s} has no valid le", bucket, k1);
                    if (lev <= prev_le)
                        BAD("%s{%.200s}: le %s does not increase", bucket, k1, le);
                    if (s->value < prev)
                        BAD("%s{%.200s}: bucket le=%s is not cumulative", bucket, k1, le);
                    prev_le = lev;
                    prev = s->value;
                    if (isinf(lev))
                        inf = s->value;
                } else if (strcmp(s->name, sum) == 0) {
                    n_sum = s->value;
                } else if (strcmp(s->name, count) == 0) {
                    n_count = s->value;
                }
            }
            if (!isinf(prev_le) || isnan(inf))
                BAD("%s{%.200s} has no +Inf bucket last", bucket, k1);
            if (isnan(n_sum) || n_sum < 0)
                BAD("%s{%.200s} has no valid _sum", f->name, k1);
            if (isnan(n_count) || n_count != inf)
                BAD("%s{%.200s}: _count %g differs from the +Inf bucket %g", f->name, k1, n_count,
                    inf);
        }
    }
    return 0;
}

/* Parses the whole text; fails the test with the line at fault. */
static void parse_exposition(const char *service, const char *text, struct scrape *sc)
{
    memset(sc, 0, sizeof *sc);
    sc->service = service;
    size_t len = strlen(text);
    if (len == 0 || text[len - 1] != '\n')
        fail_msg("%s: /metrics is empty or does not end with a newline", service);
    struct family *cur = NULL;
    char why[2048];
    int lineno = 0;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        char *line = strndup(p, (size_t)(nl - p));
        lineno++;
        int rc = line[0] == '#'    ? parse_comment(sc, line, &cur, why, sizeof why)
                 : line[0] == '\0' ? 0 /* blank lines are allowed */
                                   : parse_sample(sc, line, cur, why, sizeof why);
        if (rc != 0)
            fail_msg("%s /metrics line %d '%.200s': %s", service, lineno, line, why);
        free(line);
        p = nl + 1;
    }
    if (check_families(sc, why, sizeof why) != 0)
        fail_msg("%s /metrics: %s", service, why);
}

/* ---- reading values ------------------------------------------------------------------- */

/* Whether s carries every k="v" of filter ("" or NULL: any). */
static bool matches(const struct sample *s, const char *filter)
{
    const char *p = filter ? filter : "";
    while (*p) {
        size_t n = name_len(p, false);
        assert_true(n > 0 && p[n] == '=' && p[n + 1] == '"');
        const char *v = p + n + 2, *e = strchr(v, '"');
        assert_non_null(e);
        bool found = false;
        for (int j = 0; j < s->nlabels && !found; j++)
            found = strlen(s->labels[j].name) == n && strncmp(s->labels[j].name, p, n) == 0 &&
                    strlen(s->labels[j].value) == (size_t)(e - v) &&
                    strncmp(s->labels[j].value, v, (size_t)(e - v)) == 0;
        if (!found)
            return false;
        p = e + 1;
        if (*p == ',')
            p++;
    }
    return true;
}

/* The sum of the samples called name that match filter; NAN when there is none. */
static double value_of(const struct scrape *sc, const char *name, const char *filter)
{
    double sum = 0;
    int n = 0;
    for (int i = 0; i < sc->ns; i++) {
        if (strcmp(sc->s[i].name, name) == 0 && matches(&sc->s[i], filter)) {
            sum += sc->s[i].value;
            n++;
        }
    }
    return n ? sum : NAN;
}

/* GET /metrics on port: checked for the format and parsed into *sc. */
static void scrape(const char *service, int port, struct scrape *sc)
{
    int saved = W.http_port;
    W.http_port = port; /* http() talks to W.http_port */
    struct http_res r;
    long st = http(&W, "GET", "/metrics", NULL, NULL, &r);
    W.http_port = saved;
    if (st != 200)
        fail_msg("%s /metrics answered %ld: %s%s", service, st, r.error, r.body);
    char ct[128];
    assert_non_null(http_header(&r, "Content-Type", ct, sizeof ct));
    if (strncmp(ct, "text/plain", 10) != 0 || strstr(ct, "version=0.0.4") == NULL)
        fail_msg("%s /metrics Content-Type is '%s'", service, ct);
    if (getenv("GF_METRICS_DUMP")) /* to read what a service exposes */
        fprintf(stderr, "---- %s /metrics\n%s", service, r.body);
    parse_exposition(service, r.body, sc);
    http_res_free(&r);
}

static void has_families(const struct scrape *sc, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (int j = 0; j < sc->nf && !found; j++)
            found = strcmp(sc->f[j].name, names[i]) == 0;
        if (!found)
            fail_msg("%s /metrics lacks %s", sc->service, names[i]);
    }
}

/* name{filter} must equal want. */
static void value_is(const struct scrape *sc, const char *name, const char *filter, double want)
{
    double v = value_of(sc, name, filter);
    if (isnan(v))
        fail_msg("%s /metrics has no %s{%s}", sc->service, name, filter ? filter : "");
    if (v != want)
        fail_msg("%s: %s{%s} is %g, expected %g", sc->service, name, filter ? filter : "", v, want);
}

/* name{filter} must be at least least. */
static void value_at_least(const struct scrape *sc, const char *name, const char *filter,
                           double least)
{
    double v = value_of(sc, name, filter);
    if (isnan(v) || v < least)
        fail_msg("%s: %s{%s} is %g, expected at least %g", sc->service, name, filter ? filter : "",
                 v, least);
}

/* Each pool gauge series names its pool (pool="..."), and there are npools of each: a pool
 * registered without a name, or twice, would show here. */
static void pool_series_are_named(const struct scrape *sc, int npools)
{
    static const char *const gauges[] = {"gf_db_pool_open", "gf_db_pool_in_use"};
    for (size_t g = 0; g < N(gauges); g++) {
        int n = 0;
        for (int i = 0; i < sc->ns; i++) {
            if (strcmp(sc->s[i].name, gauges[g]) != 0)
                continue;
            n++;
            if (sc->s[i].nlabels != 1 || strcmp(sc->s[i].labels[0].name, "pool") != 0)
                fail_msg("%s: a %s series without its pool=\"...\" label", sc->service, gauges[g]);
        }
        if (n != npools)
            fail_msg("%s: %d %s series, expected %d (one per pool)", sc->service, n, gauges[g],
                     npools);
    }
}

/* Scrapes until name{filter} equals want (values measured in the background), then leaves
 * the last scrape in *sc. */
static void wait_value(const char *service, int port, const char *name, const char *filter,
                       double want, struct scrape *sc)
{
    int64_t end = gf_mono_ms() + WAIT_MS;
    for (;;) {
        scrape(service, port, sc);
        if (value_of(sc, name, filter) == want || gf_mono_ms() > end)
            break;
        scrape_free(sc);
        usleep(100 * 1000);
    }
    value_is(sc, name, filter, want);
}

/* ---- the test --------------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    struct world_options o = {.events = true};
    return world_start(&W, &o);
}

/* The events operate() makes: one buy's, and an audit event per operator's change (5). */
#define EVENTS 6

/* The operations the values below count. */
struct done {
    char buy_cid[37];
};

static void operate(struct done *d)
{
    long long user = api_create_user(&W, "metered");
    long long item = api_create_item(&W, "meter", 10);
    api_create_marketplace_item(&W, item, 5);
    api_add_gxp(&W, user, 15, NULL);

    char body[96], path[64];
    struct http_res r;
    snprintf(body, sizeof body, "{\"userId\":%lld,\"itemId\":%lld}", user, item);
    http(&W, "POST", "/marketplace/item/buy", body, NULL, &r);
    assert_ok(&r, "correlationId,buyItemResponse");
    snprintf(d->buy_cid, sizeof d->buy_cid, "%s", jstr(r.json, "correlationId"));
    http_res_free(&r);
    /* 5 GXP left for a cost of 10: refused by gxp. */
    http(&W, "POST", "/marketplace/item/buy", body, NULL, &r);
    assert_error(&r, 409, "insufficient_gxp");
    http_res_free(&r);

    /* A PATCH naming a version that is not the item's: 412. */
    snprintf(path, sizeof path, "/item/%lld", item);
    const char *stale[] = {"If-Match: \"987654\"", NULL};
    http(&W, "PATCH", path, "{\"cost\":11}", stale, &r);
    assert_error(&r, 412, "version_mismatch");
    http_res_free(&r);

    static const char *const reads[] = {"/user", "/item", "/marketplace/item", "/user/item"};
    for (size_t i = 0; i < N(reads); i++) {
        http(&W, "GET", reads[i], NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        http_res_free(&r);
    }
    balance_is(&W, user, 5, 0);
    http(&W, "GET", "/no/such/path", NULL, NULL, &r);
    assert_error(&r, 404, "not_found");
    http_res_free(&r);

    /* gxp's questions: a decided transaction, one nobody started, garbage. */
    char st[16];
    assert_int_equal(rpc_resolve(&W, d->buy_cid, st, sizeof st), GRPC_STATUS_OK);
    assert_string_equal(st, "succeeded");
    assert_int_equal(rpc_resolve(&W, "00000000-0000-4000-8000-00000000abcd", st, sizeof st),
                     GRPC_STATUS_OK);
    assert_string_equal(st, "failed");
    assert_int_equal(rpc_resolve(&W, "not-a-uuid", NULL, 0), GRPC_STATUS_INVALID_ARGUMENT);

    assert_int_equal(wait_events(&W, 1, WAIT_MS), 0);
    assert_int_equal(wait_no_pending(&W, WAIT_MS), 0);
}

static void backend_metrics_count_the_2pc_the_locks_and_the_outbox(const struct done *d)
{
    (void)d;
    struct scrape sc;
    /* The relay marks and counts after the broker's confirm, eventlog may store first. The
     * events: the buy's BuyItemEvent and the operator's five AdminActionEvents (the user, the
     * item, its stock, the mint and the buy on the user's behalf). */
    wait_value("backend", W.http_port, "backend_relay_published_total", NULL, EVENTS, &sc);
    scrape_free(&sc);
    wait_value("backend", W.http_port, "backend_outbox_pending", NULL, 0, &sc);
    has_families(&sc, backend_metrics, N(backend_metrics));

    value_is(&sc, "backend_outbox_oldest_pending_age_seconds", NULL, 0);
    value_at_least(&sc, "backend_decisions_replication_lag_bytes", NULL, 0);
    value_is(&sc, "backend_relay_lag_seconds_count", NULL, EVENTS);
    value_at_least(&sc, "backend_relay_connected", NULL, 1);
    value_is(&sc, "backend_admission_state", NULL, 0); /* off here: never sheds */
    value_is(&sc, "backend_admission_shed_ratio", NULL, 0);
    value_is(&sc, "backend_shed_total", "reason=\"decisions_lag\"", 0);

    value_is(&sc, "backend_2pc_started_total", "kind=\"add_gxp\"", 1);
    value_is(&sc, "backend_2pc_started_total", "kind=\"buy\"", 2);
    value_is(&sc, "backend_2pc_prepares_total", "kind=\"add_gxp\",result=\"prepared\"", 1);
    value_is(&sc, "backend_2pc_prepares_total", "kind=\"buy\",result=\"prepared\"", 1);
    value_is(&sc, "backend_2pc_prepares_total", "kind=\"buy\",result=\"refused\"", 1);
    value_is(&sc, "backend_2pc_prepares_total", "result=\"unavailable\"", 0);
    value_is(&sc, "backend_2pc_prepare_retries_total", NULL, 3);
    value_is(&sc, "backend_2pc_outcomes_total", "kind=\"buy\",outcome=\"succeeded\"", 1);
    value_is(&sc, "backend_2pc_outcomes_total", "kind=\"buy\",outcome=\"failed\"", 1);
    value_is(&sc, "backend_2pc_outcomes_total", "kind=\"add_gxp\",outcome=\"succeeded\"", 1);
    value_is(&sc, "backend_2pc_outcomes_total", "outcome=\"unknown\"", 0);
    value_is(&sc, "backend_2pc_decisions_total", "kind=\"buy\",decision=\"succeeded\"", 1);
    value_is(&sc, "backend_2pc_decisions_total", "kind=\"buy\",decision=\"failed\"", 1);
    value_is(&sc, "backend_2pc_decisions_total", "kind=\"add_gxp\",decision=\"succeeded\"", 1);
    value_is(&sc, "backend_2pc_decisions_total", "kind=\"resolve\",decision=\"failed\"", 1);
    value_is(&sc, "backend_resolve_transaction_total", "answer=\"succeeded\"", 1);
    value_is(&sc, "backend_resolve_transaction_total", "answer=\"failed\"", 1);
    value_is(&sc, "backend_resolve_transaction_total", "answer=\"invalid\"", 1);
    value_is(&sc, "gf_grpc_server_handled_total",
             "method=\"/backend.Backend/ResolveTransaction\",code=\"OK\"", 2);
    value_is(&sc, "gf_grpc_server_handled_total",
             "method=\"/backend.Backend/ResolveTransaction\",code=\"INVALID_ARGUMENT\"", 1);

    /* The first buy prepared once; the refused one was asked 1 + 3 times. */
    value_is(&sc, "backend_gxp_calls_total", "method=\"/gxp.Gxp/TransactionPrepare\",code=\"OK\"",
             2);
    value_is(&sc, "backend_gxp_calls_total",
             "method=\"/gxp.Gxp/TransactionPrepare\",code=\"FAILED_PRECONDITION\"", 4);
    value_is(&sc, "backend_gxp_calls_total", "method=\"/gxp.Gxp/CreateUserBalance\",code=\"OK\"",
             1);
    value_is(&sc, "backend_gxp_call_duration_seconds_count",
             "method=\"/gxp.Gxp/TransactionPrepare\"", 6);

    value_is(&sc, "backend_lock_conflicts_total", "op=\"item_patch\"", 1);
    /* Buys wait for the stock row's lock instead of retrying: one take, the one buy's. */
    value_is(&sc, "backend_buy_stock_take_seconds_count", "", 1);

    value_is(&sc, "backend_http_errors_total", "status=\"409\",error=\"insufficient_gxp\"", 1);
    value_is(&sc, "backend_http_errors_total", "status=\"412\",error=\"version_mismatch\"", 1);
    value_at_least(&sc, "backend_http_errors_total", "status=\"404\",error=\"not_found\"", 1);
    /* HTTP requests by route, method and exact status code. */
    value_is(&sc, "backend_http_requests_total",
             "route=\"/marketplace/item/buy\",method=\"POST\",code=\"200\"", 1);
    value_is(&sc, "backend_http_requests_total",
             "route=\"/marketplace/item/buy\",method=\"POST\",code=\"409\"", 1);
    value_is(&sc, "backend_http_requests_total",
             "route=\"/item/:id\",method=\"PATCH\",code=\"412\"", 1);
    value_is(&sc, "backend_http_requests_total", "route=\"/item/:id\",method=\"PATCH\"", 1);
    value_is(&sc, "backend_http_request_duration_seconds_count",
             "route=\"/marketplace/item/buy\",method=\"POST\"", 2);
    value_at_least(&sc, "backend_http_requests_total", "route=\"/user\",method=\"GET\"", 1);

    /* Every pool of the process, each by name: the API's and the relay's own. */
    value_at_least(&sc, "gf_db_pool_open", "pool=\"main\"", 1);
    value_at_least(&sc, "gf_db_pool_in_use", "pool=\"main\"", 0);
    value_at_least(&sc, "gf_db_pool_open", "pool=\"relay\"", 1);
    value_at_least(&sc, "gf_db_pool_in_use", "pool=\"relay\"", 0);
    pool_series_are_named(&sc, 3); /* main, relay, saga */
    scrape_free(&sc);
    /* The watcher logs every event too. */
    wait_value("backend", W.http_port, "events_log_acked_total", "queue=\"backend.events.log\"",
               EVENTS, &sc);
    scrape_free(&sc);
}

static void gxp_metrics_count_the_prepares_and_the_pending(void)
{
    struct scrape sc;
    /* A scrape first, so that the next one counts it among the HTTP requests. */
    scrape("gxp", W.gxp_http_port, &sc);
    scrape_free(&sc);
    /* The resolver measures the PENDING rows at each pass. */
    wait_value("gxp", W.gxp_http_port, "gxp_transactions_pending", NULL, 0, &sc);
    has_families(&sc, gxp_metrics, N(gxp_metrics));
    value_at_least(&sc, "gxp_http_requests_total", "route=\"/metrics\",method=\"GET\",code=\"200\"",
                   1);
    value_is(&sc, "gxp_pending_oldest_age_seconds", NULL, 0);
    value_is(&sc, "gxp_prepares_total", "type=\"add\",result=\"prepared\"", 1);
    value_is(&sc, "gxp_prepares_total", "type=\"subtract\",result=\"prepared\"", 1);
    value_is(&sc, "gxp_prepares_total", "type=\"subtract\",result=\"insufficient_funds\"", 4);
    value_is(&sc, "gxp_prepares_total", "result=\"unavailable\"", 0);
    value_is(&sc, "gxp_prepares_total", NULL, 6);
    value_is(&sc, "gxp_pipeline_in_flight", NULL, 0);
    value_is(&sc, "gf_grpc_server_handled_total",
             "method=\"/gxp.Gxp/TransactionPrepare\",code=\"OK\"", 2);
    value_is(&sc, "gf_grpc_server_handled_total",
             "method=\"/gxp.Gxp/TransactionPrepare\",code=\"FAILED_PRECONDITION\"", 4);
    value_is(&sc, "gf_grpc_server_handling_seconds_count", "method=\"/gxp.Gxp/TransactionPrepare\"",
             6);
    value_at_least(&sc, "gf_db_pipeline_statements_total", NULL, 7);
    value_at_least(&sc, "gf_db_pipeline_batches_total", NULL, 1);
    value_is(&sc, "gxp_subscription_ready", NULL, 1);
    value_is(&sc, "gxp_resolver_finalized_total", NULL, 0); /* replication finalized them all */
    /* The pool (GetAll, resolver, subscription) and the pipeline's connections (the RPCs): both
     * used by now; a pipeline connection is in use while it carries a batch. */
    value_at_least(&sc, "gf_db_pool_open", "pool=\"main\"", 1);
    value_at_least(&sc, "gf_db_pool_open", "pool=\"pipeline\"", 1);
    double pl_open = value_of(&sc, "gf_db_pool_open", "pool=\"pipeline\"");
    double pl_busy = value_of(&sc, "gf_db_pool_in_use", "pool=\"pipeline\"");
    if (!(pl_busy >= 0 && pl_busy <= pl_open))
        fail_msg("gxp: pipeline connections in use %g, open %g", pl_busy, pl_open);
    pool_series_are_named(&sc, 2);
    scrape_free(&sc);
    wait_value("gxp", W.gxp_http_port, "events_log_acked_total", "queue=\"gxp.events.log\"", EVENTS,
               &sc);
    scrape_free(&sc);
}

static void eventlog_metrics_count_the_stored_event(void)
{
    struct scrape sc;
    wait_value("eventlog", W.eventlog_port, "eventlog_consumer_acked_total",
               "queue=\"eventlog.events\"", EVENTS, &sc);
    has_families(&sc, eventlog_metrics, N(eventlog_metrics));
    value_is(&sc, "eventlog_events_stored_total", NULL, EVENTS);
    value_is(&sc, "eventlog_events_duplicate_total", NULL, 0);
    value_is(&sc, "eventlog_events_dead_lettered_total", NULL, 0);
    value_is(&sc, "eventlog_event_lag_seconds_count", NULL, EVENTS);
    value_at_least(&sc, "eventlog_store_batch_seconds_count", NULL, 1);
    value_at_least(&sc, "eventlog_last_event_lag_seconds", NULL, 0);
    double stored = value_of(&sc, "eventlog_last_stored_timestamp_seconds", NULL);
    double now = (double)gf_wall_us() / 1e6;
    if (!(stored > now - 600 && stored <= now + 5))
        fail_msg("eventlog_last_stored_timestamp_seconds is %f, now is %f", stored, now);
    value_is(&sc, "eventlog_store_outage", NULL, 0);
    value_is(&sc, "eventlog_consumer_connected", NULL, 1);
    value_is(&sc, "eventlog_consumer_deliveries_total", "queue=\"eventlog.events\"", EVENTS);
    value_at_least(&sc, "eventlog_http_requests_total",
                   "route=\"/readyz\",method=\"GET\",code=\"200\"", 1);
    value_is(&sc, "eventlog_http_request_duration_seconds_count",
             "route=\"/eventlog/events\",method=\"GET\"", 0);
    value_at_least(&sc, "gf_db_pool_open", "pool=\"main\"", 1);
    pool_series_are_named(&sc, 1);
    scrape_free(&sc);
}

static void every_service_exposes_its_metrics_in_the_prometheus_format(void **state)
{
    (void)state;
    struct done d;
    operate(&d);
    backend_metrics_count_the_2pc_the_locks_and_the_outbox(&d);
    gxp_metrics_count_the_prepares_and_the_pending();
    eventlog_metrics_count_the_stored_event();
}

/* The checker itself: it must refuse what the format does not allow. */
static void the_format_checker_refuses_broken_expositions(void **state)
{
    (void)state;
    static const char *const good =
        "# HELP a_total A.\n# TYPE a_total counter\na_total{k=\"v\",e=\"a\\\"b\\\\c\\nd\"} 3\n"
        "# HELP h_seconds H.\n# TYPE h_seconds histogram\n"
        "h_seconds_bucket{le=\"0.5\"} 1\nh_seconds_bucket{le=\"+Inf\"} 2\n"
        "h_seconds_sum 0.7\nh_seconds_count 2\n"
        "# HELP g G.\n# TYPE g gauge\ng NaN\n";
    struct scrape sc;
    parse_exposition("good", good, &sc);
    assert_true(value_of(&sc, "a_total", "k=\"v\"") == 3);
    assert_string_equal(label_of(&sc.s[0], "e"), "a\"b\\c\nd");
    scrape_free(&sc);
    static const char *const bad[] = {
        "a_total 1\n",                                                       /* no HELP/TYPE */
        "# HELP a_total A.\n# TYPE a_total counter\na_total one\n",          /* value */
        "# HELP a_total A.\n# TYPE a_total counter\na_total{k=v} 1\n",       /* label syntax */
        "# HELP a_total A.\n# TYPE a_total counter\na_total -1\n",           /* negative counter */
        "# HELP a A.\n# TYPE a counter\na 1\n",                              /* no _total */
        "# HELP 1a_total A.\n# TYPE 1a_total counter\n1a_total 1\n",         /* name */
        "# HELP a_total A.\n# TYPE a_total counter\na_total 1\na_total 2\n", /* twice */
        "# HELP h_seconds H.\n# TYPE h_seconds histogram\n"
        "h_seconds_bucket{le=\"0.5\"} 2\nh_seconds_bucket{le=\"+Inf\"} 1\n"
        "h_seconds_sum 1\nh_seconds_count 1\n", /* not cumulative */
        "# HELP h_seconds H.\n# TYPE h_seconds histogram\n"
        "h_seconds_bucket{le=\"0.5\"} 1\nh_seconds_bucket{le=\"+Inf\"} 2\n"
        "h_seconds_sum 1\nh_seconds_count 3\n", /* +Inf != _count */
    };
    for (size_t i = 0; i < N(bad); i++) {
        struct scrape b = {0};
        char why[2048];
        struct family *cur = NULL;
        int rc = 0;
        for (const char *p = bad[i]; *p && rc == 0;) {
            const char *nl = strchr(p, '\n');
            char *line = strndup(p, (size_t)(nl - p));
            rc = line[0] == '#' ? parse_comment(&b, line, &cur, why, sizeof why)
                                : parse_sample(&b, line, cur, why, sizeof why);
            free(line);
            p = nl + 1;
        }
        if (rc == 0)
            rc = check_families(&b, why, sizeof why);
        if (rc == 0)
            fail_msg("the checker accepted broken exposition #%zu:\n%s", i, bad[i]);
        scrape_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_format_checker_refuses_broken_expositions),
        cmocka_unit_test_teardown(every_service_exposes_its_metrics_in_the_prometheus_format,
                                  world_check),
    };
    if (getenv("GF_TEST_FILTER"))
        cmocka_set_test_filter(getenv("GF_TEST_FILTER"));
    return cmocka_run_group_tests_name("metrics", tests, setup, world_teardown);
}
