/* backend benchmark: buy, add-gxp and GET /item through the HTTP API, straight to one
 * backend (no ingress yet), with backend-db, gxp-db, eventlog-db, RabbitMQ, gxp, eventlog and
 * the backend on the same cores. The load generator is wrk (scripts in bench/wrk). During the
 * buy run every event goes outbox → relay → broker → eventlog; the event figures (events/s
 * stored, lag from the buy's commit to eventlog's commit) come from eventlog-db. Brings up its
 * own servers on free ports with the test harness and stops them at the end.
 *
 * Environment: BENCH_SECONDS (10), BENCH_CONNECTIONS (32), BENCH_USERS (1000),
 * BACKEND_BIN / GXP_BIN / EVENTLOG_BIN (build/bin/...), BENCH_WRK_DIR (bench/wrk),
 * BENCH_RABBITMQ (tests/harness/rabbitmq.sh), BENCH_PACED_RATE (300: buys/s offered by the paced
 * run, which shows the event lag below saturation). */
#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "gf/clock.h"
#include "gf/log.h"
#include "harness.h"

struct run {
    const char *name, *script, *path;
    int conns, pace_ms; /* 0: the default connections, no pacing */
    double rps, p50, p90, p99, max;
    long errors, non2xx;
    double cpu_backend, cpu_gxp, cpu_backend_db, cpu_gxp_db, cpu_broker; /* ms per request */
};

static size_t discard(void *p, size_t s, size_t n, void *u)
{
    (void)p, (void)u;
    return s * n;
}

/* One request with libcurl; returns the HTTP status (0 when it failed). */
static long http(CURL *h, const char *method, const char *url, const char *body)
{
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdr);
    return status;
}

static void must(long status, long want, const char *what)
{
    if (status != want) {
        fprintf(stderr, "backend_bench: %s answered %ld\n", what, status);
        die("setup failed");
    }
}

static void wrk(struct run *r, const char *dir, int port, int conns, int seconds)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "GF_WRK_REPORT=%s/report.lua wrk -t2 -c%d -d%ds --timeout 5s -s %s/%s"
             " http://127.0.0.1:%d%s 2>&1",
             dir, r->conns > 0 ? r->conns : conns, seconds, dir, r->script, port, r->path);
    char pace[16];
    snprintf(pace, sizeof pace, "%d", r->pace_ms);
    setenv("PACE_MS", pace, 1);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        die("wrk");
    char line[512];
    while (fgets(line, sizeof line, p)) {
        if (strncmp(line, "GFBENCH ", 8) == 0)
            sscanf(line + 8, "rps=%lf p50=%lf p90=%lf p99=%lf max=%lf errors=%ld non2xx=%ld",
                   &r->rps, &r->p50, &r->p90, &r->p99, &r->max, &r->errors, &r->non2xx);
    }
    if (pclose(p) != 0)
        die("wrk failed (is it installed? make deps)");
}

/* The AMQP port of the node rabbitmq.sh started in dir (its env file: port=...). */
static int broker_port(const char *dir)
{
    char path[700], line[128];
    snprintf(path, sizeof path, "%s/env", dir);
    FILE *f = fopen(path, "r");
    int port = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "port=%d", &port) == 1)
            break;
    if (f)
        fclose(f);
    if (port <= 0)
        die("no broker port");
    return port;
}

static size_t collect(void *p, size_t s, size_t n, void *u)
{
    FILE *f = u;
    return fwrite(p, s, n, f);
}

/* Prints " name=value" for each series of url (a /metrics page) whose name starts with prefix
 * (histogram buckets left out). */
static void print_metrics(CURL *h, const char *url, const char *prefix)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL)
        return;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    CURLcode rc = curl_easy_perform(h);
    fclose(f);
    for (char *line = rc == CURLE_OK ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        if (strncmp(line, prefix, strlen(prefix)) == 0 && strstr(line, "_bucket") == NULL)
            printf(" %s;", line);
    }
    free(text);
}

/* The pid of the node's beam.smp (its pids file: beam=PID START). */
static pid_t broker_beam_pid(const char *dir)
{
    char path[700], line[128];
    snprintf(path, sizeof path, "%s/pids", dir);
    FILE *f = fopen(path, "r");
    int pid = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "beam=%d", &pid) == 1)
            break;
    if (f)
        fclose(f);
    if (pid <= 0)
        die("no broker pid");
    return (pid_t)pid;
}

/* The event figures of the buy run, from eventlog-db. */
struct events {
    const char *run;
    long long before, stored;
    double t0, buys, rate, p50, p99, max, cpu0, cpu_per_event;
};

static void events_begin(struct events *ev, PGconn *e, pid_t eventlog)
{
    ev->before = sql_ll(e, "SELECT coalesce(max(id), 0) FROM event");
    ev->t0 = (double)gf_mono_ms();
    ev->cpu0 = cpu_ms(eventlog);
}

static void events_end(struct events *ev, PGconn *e, pid_t eventlog, double buys)
{
    /* Let the tail arrive: stop waiting once nothing new came for 2 s. */
    long long last = -1, now;
    while ((now = sql_ll(e, "SELECT count(*) FROM event")) != last) {
        last = now;
        usleep(2000 * 1000);
    }
    char q[512];
    snprintf(q, sizeof q, "SELECT count(*) FROM event WHERE id > %lld", ev->before);
    ev->stored = sql_ll(e, q);
    ev->buys = buys;
    snprintf(q, sizeof q,
             "SELECT (extract(epoch FROM max(stored_at) - min(occurred_at)) * 1000)::bigint"
             " FROM event WHERE id > %lld",
             ev->before);
    double span_ms = (double)sql_ll(e, q);
    ev->rate = span_ms > 0 ? ev->stored * 1000.0 / span_ms : 0;
    const char *pcts[] = {"0.5", "0.99", "1"};
    double *out[] = {&ev->p50, &ev->p99, &ev->max};
    for (int i = 0; i < 3; i++) {
        snprintf(q, sizeof q,
                 "SELECT (percentile_cont(%s) WITHIN GROUP (ORDER BY extract(epoch FROM"
                 " stored_at - occurred_at)) * 1000000)::bigint FROM event WHERE id > %lld",
                 pcts[i], ev->before);
        *out[i] = sql_ll(e, q) / 1000.0;
    }
    ev->cpu_per_event = ev->stored > 0 ? (cpu_ms(eventlog) - ev->cpu0) / ev->stored : 0;
}

int main(void)
{
    int seconds = env_int("BENCH_SECONDS", 10);
    int conns = env_int("BENCH_CONNECTIONS", 32);
    int users = env_int("BENCH_USERS", 1000);
    int paced_rate = env_int("BENCH_PACED_RATE", 300);
    if (paced_rate < 1)
        paced_rate = 1;
    const char *backend_bin = getenv("BACKEND_BIN") ? getenv("BACKEND_BIN") : "build/bin/backend";
    const char *gxp_bin = getenv("GXP_BIN") ? getenv("GXP_BIN") : "build/bin/gxp";
    const char *wrk_dir = getenv("BENCH_WRK_DIR") ? getenv("BENCH_WRK_DIR") : "bench/wrk";
    gf_log_init("backend-bench", GF_LOG_WARN);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    const char *eventlog_bin =
        getenv("EVENTLOG_BIN") ? getenv("EVENTLOG_BIN") : "build/bin/eventlog";
    const char *rabbitmq =
        getenv("BENCH_RABBITMQ") ? getenv("BENCH_RABBITMQ") : "tests/harness/rabbitmq.sh";
    struct h_pg bdb, gdb, edb;
    if (h_pg_start(&bdb, "backend-db", H_PG_LOGICAL) != 0 ||
        h_pg_start(&gdb, "gxp-db", H_PG_SUBSCRIBER) != 0 || h_pg_start(&edb, "eventlog-db", 0) != 0)
        die("cannot start the clusters");
    char broker_dir[600], cmd[1400];
    snprintf(broker_dir, sizeof broker_dir, "%s/broker", h_run_dir());
    snprintf(cmd, sizeof cmd, "bash '%s' start '%s' 0 >&2", rabbitmq, broker_dir);
    if (system(cmd) != 0)
        die("cannot start RabbitMQ");
    int amqp_port = broker_port(broker_dir);
    pid_t beam = broker_beam_pid(broker_dir);
    int http_port = h_free_port(), grpc_port = h_free_port(), gxp_port = h_free_port(),
        gxp_http = h_free_port();
    char b1[64], b2[64], b3[700], b4[64], g1[64], g2[64], g3[700], g4[700], g5[64];
    snprintf(b1, sizeof b1, "BACKEND_HTTP_ADDR=127.0.0.1:%d", http_port);
    snprintf(b2, sizeof b2, "BACKEND_GRPC_ADDR=127.0.0.1:%d", grpc_port);
    snprintf(b3, sizeof b3, "BACKEND_DB_URL=%s", bdb.conninfo);
    snprintf(b4, sizeof b4, "BACKEND_GXP_ADDR=127.0.0.1:%d", gxp_port);
    snprintf(g1, sizeof g1, "GXP_GRPC_ADDR=127.0.0.1:%d", gxp_port);
    snprintf(g2, sizeof g2, "GXP_HTTP_ADDR=127.0.0.1:%d", gxp_http);
    snprintf(g3, sizeof g3, "GXP_DB_URL=%s", gdb.conninfo);
    snprintf(g4, sizeof g4, "GXP_PUBLISHER_CONNINFO=%s", bdb.conninfo);
    snprintf(g5, sizeof g5, "GXP_BACKEND_ADDR=127.0.0.1:%d", grpc_port);
    char b5[128], g6[128], e1[128], e2[700], e3[64];
    snprintf(b5, sizeof b5, "BACKEND_AMQP_URL=amqp://guest:guest@127.0.0.1:%d/", amqp_port);
    snprintf(g6, sizeof g6, "GXP_AMQP_URL=amqp://guest:guest@127.0.0.1:%d/", amqp_port);
    snprintf(e1, sizeof e1, "EVENTLOG_AMQP_URL=amqp://guest:guest@127.0.0.1:%d/", amqp_port);
    snprintf(e2, sizeof e2, "EVENTLOG_DB_URL=%s", edb.conninfo);
    int eventlog_port = h_free_port();
    snprintf(e3, sizeof e3, "EVENTLOG_HTTP_ADDR=127.0.0.1:%d", eventlog_port);
    const char *benv[] = {b1, b2, b3, b4, b5, "BACKEND_LOG_LEVEL=warn", NULL};
    const char *genv[] = {g1, g2, g3, g4, g5, g6, "GXP_LOG_LEVEL=warn", NULL};
    const char *eenv[] = {e1, e2, e3, "EVENTLOG_LOG_LEVEL=warn", NULL};
    const char *eargv[] = {eventlog_bin, NULL};
    char elog[600];
    snprintf(elog, sizeof elog, "%s/eventlog.log", h_run_dir());
    pid_t eventlog = h_spawn(eargv, eenv, elog);
    const char *bargv[] = {backend_bin, NULL}, *gargv[] = {gxp_bin, NULL};
    char blog[600], glog[600];
    snprintf(blog, sizeof blog, "%s/backend.log", h_run_dir());
    snprintf(glog, sizeof glog, "%s/gxp.log", h_run_dir());
    pid_t backend = h_spawn(bargv, benv, blog);
    pid_t gxp = h_spawn(gargv, genv, glog);
    if (backend < 0 || gxp < 0 || eventlog < 0)
        die("cannot start the services");

    char base[64], url[256], body[256];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", http_port);
    CURL *h = curl_easy_init();
    int64_t end = gf_mono_ms() + 30000;
    snprintf(url, sizeof url, "%s/readyz", base);
    while (http(h, "GET", url, NULL) != 200 && gf_mono_ms() < end)
        usleep(100 * 1000);
    must(http(h, "GET", url, NULL), 200, "readyz");

    /* Users with plenty of GXP, one item of cost 1 with a stock that will not run out. */
    for (int i = 1; i <= users; i++) {
        snprintf(url, sizeof url, "%s/user/create", base);
        snprintf(body, sizeof body, "{\"name\":\"bench-user-%d\"}", i);
        must(http(h, "POST", url, body), 200, "create-user");
        snprintf(url, sizeof url, "%s/user/gxp/add", base);
        snprintf(body, sizeof body, "{\"userId\":%d,\"amount\":1000000}", i);
        must(http(h, "POST", url, body), 200, "add-gxp");
    }
    snprintf(url, sizeof url, "%s/item/create", base);
    must(http(h, "POST", url, "{\"name\":\"bench-item\",\"cost\":1}"), 200, "create-item");
    snprintf(url, sizeof url, "%s/marketplace/item/create", base);
    must(http(h, "POST", url, "{\"itemId\":1,\"count\":2000000000}"), 200, "marketplace");
    PGconn *g = PQconnectdb(gdb.conninfo);
    end = gf_mono_ms() + 60000;
    while (gf_mono_ms() < end &&
           sql_ll(g, "SELECT count(*) FROM gxp_transaction WHERE status = 0") != 0)
        usleep(100 * 1000);

    char env_users[32];
    snprintf(env_users, sizeof env_users, "%d", users);
    setenv("USERS", env_users, 1);
    setenv("ITEM", "1", 1);
    struct run runs[] = {
        {.name = "GET /item", .script = "get.lua", .path = "/item"},
        {.name = "GET /user", .script = "get.lua", .path = "/user?limit=100"},
        {.name = "POST /user/gxp/add", .script = "add_gxp.lua", .path = "/"},
        {.name = "POST /marketplace/item/buy", .script = "buy.lua", .path = "/"},
        /* Below saturation: 16 connections, each pausing so that together they offer about
         * BENCH_PACED_RATE buys/s (less what their latency takes). */
        {.name = "POST /marketplace/item/buy (paced)",
         .script = "buy.lua",
         .path = "/",
         .conns = 16,
         .pace_ms = 16 * 1000 / paced_rate},
    };
    pid_t bpm = postmaster_pid(&bdb), gpm = postmaster_pid(&gdb);
    PGconn *e = PQconnectdb(edb.conninfo);
    struct events ev[2] = {{0}};
    int nev = 0;
    const char *only = getenv("BENCH_ONLY");
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
        struct run *r = &runs[i];
        if (only != NULL && strstr(r->name, only) == NULL)
            continue;
        bool buys = strcmp(r->script, "buy.lua") == 0;
        if (buys)
            events_begin(&ev[nev], e, eventlog);
        double c0 = cpu_ms(backend), c1 = cpu_ms(gxp), c2 = children_cpu_ms(bpm),
               c3 = children_cpu_ms(gpm), c4 = cpu_ms(beam);
        wrk(r, wrk_dir, http_port, conns, seconds);
        double n = r->rps * seconds > 0 ? r->rps * seconds : 1;
        r->cpu_backend = (cpu_ms(backend) - c0) / n;
        r->cpu_gxp = (cpu_ms(gxp) - c1) / n;
        r->cpu_backend_db = (children_cpu_ms(bpm) - c2) / n;
        r->cpu_gxp_db = (children_cpu_ms(gpm) - c3) / n;
        r->cpu_broker = (cpu_ms(beam) - c4) / n;
        fprintf(stderr, "%s: %.0f/s\n", r->name, r->rps);
        if (buys) {
            ev[nev].run = r->name;
            events_end(&ev[nev], e, eventlog, r->rps * seconds);
            nev++;
        }
    }
    long hwm = rss_kib(backend, "VmHWM:"), ghwm = rss_kib(gxp, "VmHWM:");

    printf("\n## backend benchmark (wrk, %d connections, %d s each, %d users, direct to one"
           " backend)\n\n",
           conns, seconds, users);
    printf("| request | req/s | p50 / p90 / p99 / max ms | errors, non-2xx | CPU ms per request:"
           " backend / gxp / backend-db / gxp-db / RabbitMQ |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
        struct run *r = &runs[i];
        if (r->rps <= 0)
            continue; /* not run (BENCH_ONLY) */
        printf("| %s | %.0f | %.2f / %.2f / %.2f / %.2f | %ld, %ld | %.3f / %.3f / %.3f / %.3f / "
               "%.3f |\n",
               r->name, r->rps, r->p50, r->p90, r->p99, r->max, r->errors, r->non2xx,
               r->cpu_backend, r->cpu_gxp, r->cpu_backend_db, r->cpu_gxp_db, r->cpu_broker);
    }
    printf("\nTargets: buy >= 300/s, add-gxp >= 400/s, GET /item >= 10,000/s, no error.\n");
    printf("Peak RSS: backend %.1f MiB (target <= 32 MiB), gxp %.1f MiB.\n", hwm / 1024.0,
           ghwm / 1024.0);

    printf("\n## events during the buy runs (outbox → relay → RabbitMQ → eventlog)\n\n");
    printf("| run | buys committed | events stored | events/s | lag p50 / p99 / max ms (buy"
           " commit → eventlog commit) | eventlog CPU ms per event |\n"
           "|---|---|---|---|---|---|\n");
    for (int i = 0; i < nev; i++)
        printf("| %s | %.0f | %lld | %.0f | %.1f / %.1f / %.1f | %.3f |\n", ev[i].run, ev[i].buys,
               ev[i].stored, ev[i].rate, ev[i].p50, ev[i].p99, ev[i].max, ev[i].cpu_per_event);
    printf("\neventlog peak RSS %.1f MiB. The relay's counters at the end:",
           rss_kib(eventlog, "VmHWM:") / 1024.0);
    snprintf(url, sizeof url, "%s/metrics", base);
    print_metrics(h, url, "backend_relay_");
    printf("\n");
    printf("\nTarget: every buy's event stored; lag p99 <= 50 ms at >= 500 buys/s.\n");

    curl_easy_cleanup(h);
    PQfinish(g);
    PQfinish(e);
    h_stop(eventlog, 10000);
    snprintf(cmd, sizeof cmd, "bash '%s' stop '%s' >&2", rabbitmq, broker_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "backend_bench: RabbitMQ did not stop cleanly\n");
    h_stop(backend, 10000);
    h_stop(gxp, 10000);
    h_cleanup_all();
    curl_global_cleanup();
    return 0;
}
