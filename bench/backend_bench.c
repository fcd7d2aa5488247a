/* backend benchmark (issue 3's figures): buy, add-gxp and GET /item through the HTTP API,
 * straight to one backend (no ingress yet), with backend-db, gxp-db, gxp and the backend on
 * the same cores. The load generator is wrk (scripts in bench/wrk). Brings up its own servers on
 * free ports with the test harness and stops them at the end.
 *
 * Environment: BENCH_SECONDS (10), BENCH_CONNECTIONS (32), BENCH_USERS (1000),
 * BACKEND_BIN / GXP_BIN (build/bin/...), BENCH_WRK_DIR (bench/wrk). */
#include <curl/curl.h>
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
    double rps, p50, p90, p99, max;
    long errors, non2xx;
    double cpu_backend, cpu_gxp, cpu_backend_db, cpu_gxp_db; /* ms per request */
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
             dir, conns, seconds, dir, r->script, port, r->path);
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

int main(void)
{
    int seconds = env_int("BENCH_SECONDS", 10);
    int conns = env_int("BENCH_CONNECTIONS", 32);
    int users = env_int("BENCH_USERS", 1000);
    const char *backend_bin = getenv("BACKEND_BIN") ? getenv("BACKEND_BIN") : "build/bin/backend";
    const char *gxp_bin = getenv("GXP_BIN") ? getenv("GXP_BIN") : "build/bin/gxp";
    const char *wrk_dir = getenv("BENCH_WRK_DIR") ? getenv("BENCH_WRK_DIR") : "bench/wrk";
    gf_log_init("backend-bench", GF_LOG_WARN);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    struct h_pg bdb, gdb;
    if (h_pg_start(&bdb, "backend-db", H_PG_LOGICAL) != 0 ||
        h_pg_start(&gdb, "gxp-db", H_PG_SUBSCRIBER) != 0)
        die("cannot start the clusters");
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
    const char *benv[] = {b1, b2, b3, b4, "BACKEND_LOG_LEVEL=warn", NULL};
    const char *genv[] = {g1, g2, g3, g4, g5, "GXP_LOG_LEVEL=warn", NULL};
    const char *bargv[] = {backend_bin, NULL}, *gargv[] = {gxp_bin, NULL};
    char blog[600], glog[600];
    snprintf(blog, sizeof blog, "%s/backend.log", h_run_dir());
    snprintf(glog, sizeof glog, "%s/gxp.log", h_run_dir());
    pid_t backend = h_spawn(bargv, benv, blog);
    pid_t gxp = h_spawn(gargv, genv, glog);
    if (backend < 0 || gxp < 0)
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
    };
    pid_t bpm = postmaster_pid(&bdb), gpm = postmaster_pid(&gdb);
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
        struct run *r = &runs[i];
        double c0 = cpu_ms(backend), c1 = cpu_ms(gxp), c2 = children_cpu_ms(bpm),
               c3 = children_cpu_ms(gpm);
        wrk(r, wrk_dir, http_port, conns, seconds);
        double n = r->rps * seconds > 0 ? r->rps * seconds : 1;
        r->cpu_backend = (cpu_ms(backend) - c0) / n;
        r->cpu_gxp = (cpu_ms(gxp) - c1) / n;
        r->cpu_backend_db = (children_cpu_ms(bpm) - c2) / n;
        r->cpu_gxp_db = (children_cpu_ms(gpm) - c3) / n;
        fprintf(stderr, "%s: %.0f/s\n", r->name, r->rps);
    }
    long hwm = rss_kib(backend, "VmHWM:"), ghwm = rss_kib(gxp, "VmHWM:");

    printf("\n## backend benchmark (wrk, %d connections, %d s each, %d users, direct to one"
           " backend)\n\n",
           conns, seconds, users);
    printf("| request | req/s | p50 / p90 / p99 / max ms | errors, non-2xx | CPU ms per request:"
           " backend / gxp / backend-db / gxp-db |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
        struct run *r = &runs[i];
        printf("| %s | %.0f | %.2f / %.2f / %.2f / %.2f | %ld, %ld | %.3f / %.3f / %.3f / %.3f |\n",
               r->name, r->rps, r->p50, r->p90, r->p99, r->max, r->errors, r->non2xx,
               r->cpu_backend, r->cpu_gxp, r->cpu_backend_db, r->cpu_gxp_db);
    }
    printf("\nTargets: buy >= 300/s, add-gxp >= 400/s, GET /item >= 10,000/s, no error.\n");
    printf("Peak RSS: backend %.1f MiB (target <= 32 MiB), gxp %.1f MiB.\n", hwm / 1024.0,
           ghwm / 1024.0);

    curl_easy_cleanup(h);
    PQfinish(g);
    h_stop(backend, 10000);
    h_stop(gxp, 10000);
    h_cleanup_all();
    curl_global_cleanup();
    return 0;
}
