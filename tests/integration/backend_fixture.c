/* See backend_fixture.h. The real backend replaces the harness's stand-in coordinator: gxp
 * asks it, and the invariants are checked across backend-db and gxp-db. */
#include "backend_fixture.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "gf/clock.h"
#include "gf/log.h"
#include "gf/uuid.h"
#include "gxp.pb-c.h"

/* ---- SQL -------------------------------------------------------------------------------- */

/* The first field of a one-parameter query (parameters can be long: lists of ids). */
static long long sql_ll_param(PGconn *c, const char *sql, const char *param)
{
    const char *params[1] = {param};
    PGresult *r = sql_checked(PQexecParams(c, sql, 1, NULL, params, NULL, NULL, 0), sql);
    long long v = PQntuples(r) > 0 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return v;
}

/* The first field of a query, malloc'd. */
static char *sql_dup(PGconn *c, const char *sql)
{
    PGresult *r = sql_checked(PQexec(c, sql), sql);
    char *s = strdup(PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    assert_non_null(s);
    return s;
}

/* ---- tokens ------------------------------------------------------------------------------- */

/* This world's key pair (run dir), its key set, and an operator's token for http(). */
static int make_keys(struct backend_world *w, int g)
{
    char pub[700], why[256];
    snprintf(w->auth_dir, sizeof w->auth_dir, "%s/auth-%d", h_run_dir(), g);
    snprintf(w->auth_key, sizeof w->auth_key, "%s/auth-%d.key.pem", h_run_dir(), g);
    snprintf(pub, sizeof pub, "%s/token.pub.pem", w->auth_dir);
    if (mkdir(w->auth_dir, 0755) != 0 && errno != EEXIST) {
        perror(w->auth_dir);
        return -1;
    }
    if (gf_auth_keygen(w->auth_key, pub) != GF_OK) {
        fprintf(stderr, "cannot make a key pair in %s\n", w->auth_dir);
        return -1;
    }
    w->keys = gf_auth_keys_load(w->auth_dir, w->auth_key, "gf-svc", "gf-svc-api", why, sizeof why);
    if (w->keys == NULL) {
        fprintf(stderr, "keys: %s\n", why);
        return -1;
    }
    w->admin_token = world_token(w, GF_ROLE_ADMIN, 1, 0, 86400);
    return w->admin_token != NULL ? 0 : -1;
}

char *world_token(struct backend_world *w, enum gf_role role, int64_t sub, int64_t nbf_s,
                  int64_t ttl_s)
{
    struct gf_auth_claims c = {.user_id = sub, .role = role};
    snprintf(c.name, sizeof c.name, "%s-%lld", role == GF_ROLE_ADMIN ? "test-admin" : "user",
             (long long)sub);
    char *token = NULL;
    /* Signed as if at now + nbf_s, so that nbf (and exp) move with it. */
    int64_t at = (int64_t)time(NULL) + nbf_s;
    if (ttl_s < 0) { /* expired -ttl_s seconds ago */
        at += ttl_s - 3600;
        ttl_s = 3600;
    }
    if (gf_auth_sign(w->keys, &c, at, ttl_s, &token) != GF_OK)
        return NULL;
    return token;
}

const char *world_bearer(const char *token)
{
    static _Thread_local char h[GF_AUTH_TOKEN_MAX + 32];
    snprintf(h, sizeof h, "Authorization: Bearer %s", token != NULL ? token : "");
    return h;
}

/* ---- processes -------------------------------------------------------------------------- */

static int generation;

static pid_t spawn_backend(struct backend_world *w)
{
    char http_addr[64], grpc_addr[64], db_url[700], gxp_addr[64], deployment[128], pause[64],
        amqp[320];
    snprintf(amqp, sizeof amqp, "BACKEND_AMQP_URL=%s", w->rmq.url);
    snprintf(http_addr, sizeof http_addr, "BACKEND_HTTP_ADDR=127.0.0.1:%d", w->http_port);
    snprintf(grpc_addr, sizeof grpc_addr, "BACKEND_GRPC_ADDR=127.0.0.1:%d", w->grpc_port);
    snprintf(db_url, sizeof db_url, "BACKEND_DB_URL=%s", w->backend_db.conninfo);
    snprintf(gxp_addr, sizeof gxp_addr, "BACKEND_GXP_ADDR=127.0.0.1:%d", w->gxp_grpc_port);
    snprintf(deployment, sizeof deployment, "DEPLOYMENT_NAME=%s", w->opt.deployment);
    snprintf(pause, sizeof pause, "BACKEND_FAILPOINT_BUY_PAUSE_MS=%d", w->opt.buy_pause_ms);
    char keys[640], signing[640];
    snprintf(keys, sizeof keys, "BACKEND_AUTH_KEYS=%s", w->auth_dir);
    snprintf(signing, sizeof signing, "BACKEND_AUTH_SIGNING_KEY=%s", w->auth_key);
    const char *env[48] = {
        keys, signing, http_addr, grpc_addr, db_url, gxp_addr, deployment,
        "BACKEND_LOG_LEVEL=debug", "BACKEND_GXP_DEADLINE_MS=2000", "BACKEND_SHUTDOWN_GRACE_MS=3000",
        amqp, "BACKEND_AMQP_HEARTBEAT_S=5", "BACKEND_RELAY_POLL_MS=200",
        w->opt.watchers_off ? "BACKEND_EVENT_LOG=false" : "BACKEND_EVENT_LOG=true",
        /* Plaintext gRPC: mutual TLS has its own test (grpc_tls). */
        "BACKEND_GRPC_INSECURE=true",
        /* Admission control has its own test (admission): the others pause replication or
         * the relay on purpose, and a loaded machine lags now and then, which must not turn
         * their requests into 503 overloaded. */
        "BACKEND_ADMIT=false"};
    int n = 0;
    while (env[n] != NULL) /* the entries above */
        n++;
    if (w->opt.failpoints)
        env[n++] = pause;
    /* An extra variable replaces a default of the same name. */
    int kept = 0;
    for (int d = 0; d < n; d++) {
        size_t name_len = strcspn(env[d], "=") + 1;
        bool replaced = false;
        for (int i = 0; w->opt.extra_env && w->opt.extra_env[i]; i++)
            replaced |= strncmp(env[d], w->opt.extra_env[i], name_len) == 0;
        if (!replaced)
            env[kept++] = env[d];
    }
    n = kept;
    for (int i = 0; w->opt.extra_env && w->opt.extra_env[i] && n < 47; i++)
        env[n++] = w->opt.extra_env[i];
    env[n] = NULL;
    const char *argv[] = {w->opt.failpoints ? GF_BACKEND_FP_BIN : GF_BACKEND_BIN, NULL};
    return h_spawn(argv, env, w->backend_log);
}

/* Appends extra ("K=V", NULL-terminated, may be NULL) to env, a NULL-terminated array of n
 * slots, as far as it has room (the last slot stays NULL). */
static void add_env(const char **env, size_t n, const char *const *extra)
{
    size_t used = 0;
    while (used < n && env[used] != NULL)
        used++;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && used + 1 < n; i++)
        env[used++] = extra[i];
}

static pid_t spawn_gxp(struct backend_world *w)
{
    char grpc_addr[64], http_addr[64], db_url[700], pub[700], backend_addr[64], timeout[64],
        interval[64];
    snprintf(grpc_addr, sizeof grpc_addr, "GXP_GRPC_ADDR=127.0.0.1:%d", w->gxp_grpc_port);
    snprintf(http_addr, sizeof http_addr, "GXP_HTTP_ADDR=127.0.0.1:%d", w->gxp_http_port);
    snprintf(db_url, sizeof db_url, "GXP_DB_URL=%s", w->gxp_db.conninfo);
    snprintf(pub, sizeof pub, "GXP_PUBLISHER_CONNINFO=%s", w->backend_db.conninfo);
    snprintf(backend_addr, sizeof backend_addr, "GXP_BACKEND_ADDR=127.0.0.1:%d", w->grpc_port);
    snprintf(timeout, sizeof timeout, "GXP_PENDING_TIMEOUT_MS=%d", w->opt.pending_timeout_ms);
    snprintf(interval, sizeof interval, "GXP_RESOLVE_INTERVAL_MS=%d", w->opt.resolve_interval_ms);
    char amqp[320];
    snprintf(amqp, sizeof amqp, "GXP_AMQP_URL=%s", w->rmq.url);
    const char *env[] = {grpc_addr,
                         amqp,
                         w->opt.watchers_off ? "GXP_EVENT_LOG=false" : "GXP_EVENT_LOG=true",
                         http_addr,
                         db_url,
                         pub,
                         backend_addr,
                         timeout,
                         interval,
                         "GXP_LOG_LEVEL=debug",
                         "GXP_BACKEND_DEADLINE_MS=1000",
                         "GXP_SHUTDOWN_GRACE_MS=3000",
                         "GXP_GRPC_INSECURE=true", /* mutual TLS has its own test (grpc_tls) */
                         NULL,
                         NULL,
                         NULL,
                         NULL,
                         NULL};
    add_env(env, sizeof env / sizeof env[0], w->opt.gxp_env);
    const char *argv[] = {GF_GXP_BIN, NULL};
    return h_spawn(argv, env, w->gxp_log);
}

static pid_t spawn_eventlog(struct backend_world *w)
{
    char http_addr[64], db_url[700], amqp[320];
    snprintf(http_addr, sizeof http_addr, "EVENTLOG_HTTP_ADDR=127.0.0.1:%d", w->eventlog_port);
    snprintf(db_url, sizeof db_url, "EVENTLOG_DB_URL=%s", w->eventlog_db.conninfo);
    snprintf(amqp, sizeof amqp, "EVENTLOG_AMQP_URL=%s", w->rmq.url);
    char keys[640];
    snprintf(keys, sizeof keys, "EVENTLOG_AUTH_KEYS=%s", w->auth_dir);
    const char *env[] = {keys,
                         http_addr,
                         db_url,
                         amqp,
                         "EVENTLOG_LOG_LEVEL=debug",
                         "EVENTLOG_AMQP_HEARTBEAT_S=5",
                         "EVENTLOG_SHUTDOWN_GRACE_MS=3000",
                         NULL,
                         NULL,
                         NULL,
                         NULL,
                         NULL};
    add_env(env, sizeof env / sizeof env[0], w->opt.eventlog_env);
    const char *argv[] = {GF_EVENTLOG_BIN, NULL};
    return h_spawn(argv, env, w->eventlog_log);
}

static int wait_gxp(struct backend_world *w, int timeout_ms)
{
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", w->gxp_grpc_port);
    struct gf_grpc_client *c = gf_grpc_client_new(target);
    int64_t end = gf_mono_ms() + timeout_ms;
    int rc = -1;
    while (rc != 0 && gf_mono_ms() < end) {
        Gxp__GetAllRequest req = GXP__GET_ALL_REQUEST__INIT;
        req.limit = 1;
        ProtobufCMessage *out = NULL;
        if (gf_grpc_client_call(c, "/gxp.Gxp/GetAll", &req.base, &gxp__get_all_response__descriptor,
                                &out, 1000, NULL, 0, NULL, 0) == GRPC_STATUS_OK)
            rc = 0;
        else
            usleep(50 * 1000);
        if (out)
            protobuf_c_message_free_unpacked(out, NULL);
    }
    gf_grpc_client_free(c);
    return rc;
}

/* Exit status of a stopped service: a clean SIGTERM shutdown exits 0; a sanitizer report or
 * a crash does not, and fails the suite. */
static int stopped_cleanly(pid_t pid, const char *what, const char *log)
{
    int status = h_stop(pid, 10000);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    fprintf(stderr, "%s did not exit cleanly: status=%d (log %s)\n", what, status, log);
    return -1;
}

int world_stop_gxp(struct backend_world *w)
{
    int rc = 0;
    if (w->gxp_pid > 0)
        rc = stopped_cleanly(w->gxp_pid, "gxp", w->gxp_log);
    w->gxp_pid = -1;
    return rc;
}

int world_start_gxp(struct backend_world *w)
{
    w->gxp_pid = spawn_gxp(w);
    if (w->gxp_pid < 0 || wait_gxp(w, 20000) != 0) {
        fprintf(stderr, "gxp did not come up; log: %s\n", w->gxp_log);
        return -1;
    }
    return 0;
}

static int wait_http_200(struct backend_world *w, const char *path, int timeout_ms)
{
    int64_t end = gf_mono_ms() + timeout_ms;
    do {
        struct http_res r;
        long st = http(w, "GET", path, NULL, NULL, &r);
        http_res_free(&r);
        if (st == 200)
            return 0;
        usleep(50 * 1000);
    } while (gf_mono_ms() < end);
    return -1;
}

int world_start(struct backend_world *w, const struct world_options *opt)
{
    static bool curl_ready;
    if (w->running)
        (void)world_stop(w);
    memset(w, 0, sizeof *w);
    atomic_init(&w->stock_created, 0);
    if (opt)
        w->opt = *opt;
    if (w->opt.pending_timeout_ms == 0)
        w->opt.pending_timeout_ms = 60000;
    if (w->opt.resolve_interval_ms == 0)
        w->opt.resolve_interval_ms = 100;
    if (w->opt.deployment == NULL)
        w->opt.deployment = "backend-svc-test";
    w->backend_pid = w->gxp_pid = w->eventlog_pid = -1;
    gf_log_init("backend-test", GF_LOG_WARN);
    if (!curl_ready && curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
        return -1;
    curl_ready = true;
    w->running = true;

    int g = generation++;
    char name[64];
    snprintf(name, sizeof name, "backend-db-%d", g);
    if (h_pg_start(&w->backend_db, name, H_PG_LOGICAL) != 0)
        return -1;
    snprintf(name, sizeof name, "gxp-db-%d", g);
    if (h_pg_start(&w->gxp_db, name, H_PG_SUBSCRIBER) != 0)
        return -1;
    w->backend = connect_or_fail(w->backend_db.conninfo);
    w->gxp = connect_or_fail(w->gxp_db.conninfo);
    if (h_rmq_open(&w->rmq) != 0) {
        fprintf(stderr, "no broker: this test needs the ctest fixture 'broker'\n");
        return -1;
    }
    if (w->opt.events) {
        snprintf(name, sizeof name, "eventlog-db-%d", g);
        if (h_pg_start(&w->eventlog_db, name, 0) != 0)
            return -1;
        w->eventlog = connect_or_fail(w->eventlog_db.conninfo);
        w->eventlog_port = h_free_port();
        snprintf(w->eventlog_log, sizeof w->eventlog_log, "%s/eventlog-%d.log", h_run_dir(), g);
    }
    w->http_port = h_free_port();
    w->grpc_port = h_free_port();
    w->gxp_grpc_port = h_free_port();
    w->gxp_http_port = h_free_port();
    snprintf(w->backend_log, sizeof w->backend_log, "%s/backend-%d.log", h_run_dir(), g);
    snprintf(w->gxp_log, sizeof w->gxp_log, "%s/gxp-%d.log", h_run_dir(), g);

    if (make_keys(w, g) != 0)
        return -1;

    /* The backend first: it must create its schema and publication by itself. */
    w->backend_pid = spawn_backend(w);
    if (w->backend_pid < 0 || h_wait_tcp(w->http_port, 30000) != 0) {
        fprintf(stderr, "backend did not come up; log: %s\n", w->backend_log);
        return -1;
    }
    if (world_start_gxp(w) != 0)
        return -1;
    if (wait_http_200(w, "/readyz", 30000) != 0) {
        fprintf(stderr, "backend /readyz never answered 200; log: %s\n", w->backend_log);
        return -1;
    }
    /* Decisions flow only once the subscription has copied the table and is streaming. */
    int64_t end = gf_mono_ms() + 30000;
    while (sql_ll(w->gxp, "SELECT count(*) FROM pg_subscription_rel r"
                          " JOIN pg_subscription s ON s.oid = r.srsubid"
                          " WHERE s.subname = 'transaction_outbox_sub'"
                          "   AND r.srsubstate = 'r'") != 1) {
        if (gf_mono_ms() > end) {
            fprintf(stderr, "the subscription never streamed; log: %s\n", w->gxp_log);
            return -1;
        }
        usleep(50 * 1000);
    }
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", w->grpc_port);
    w->backend_grpc = gf_grpc_client_new(target);
    if (w->opt.events && world_start_eventlog(w) != 0)
        return -1;
    return 0;
}

int world_stop_eventlog(struct backend_world *w)
{
    int rc = 0;
    if (w->eventlog_pid > 0)
        rc = stopped_cleanly(w->eventlog_pid, "eventlog", w->eventlog_log);
    w->eventlog_pid = -1;
    return rc;
}

long http_eventlog(struct backend_world *w, const char *path, struct http_res *res)
{
    int port = w->http_port;
    w->http_port = w->eventlog_port; /* http() talks to w->http_port */
    long st = http(w, "GET", path, NULL, NULL, res);
    w->http_port = port;
    return st;
}

int world_start_eventlog(struct backend_world *w)
{
    w->eventlog_pid = spawn_eventlog(w);
    int64_t end = gf_mono_ms() + 30000;
    while (w->eventlog_pid > 0 && gf_mono_ms() < end) {
        struct http_res res;
        long st = http_eventlog(w, "/readyz", &res);
        http_res_free(&res);
        if (st == 200)
            return 0;
        usleep(50 * 1000);
    }
    fprintf(stderr, "eventlog /readyz never answered 200; log: %s\n", w->eventlog_log);
    return -1;
}

int world_crash_backend(struct backend_world *w)
{
    if (w->backend_pid > 0) {
        kill(w->backend_pid, SIGKILL);
        (void)h_stop(w->backend_pid, 1000); /* collects it */
    }
    w->backend_pid = -1;
    return 0;
}

int world_start_backend(struct backend_world *w, bool failpoints, const char *const *extra_env)
{
    if (extra_env != NULL)
        w->opt.extra_env = extra_env;
    w->opt.failpoints = failpoints;
    w->backend_pid = spawn_backend(w);
    if (w->backend_pid < 0 || wait_http_200(w, "/readyz", 30000) != 0) {
        fprintf(stderr, "backend did not come back; log: %s\n", w->backend_log);
        return -1;
    }
    return 0;
}

int wait_events(struct backend_world *w, long long n, int timeout_ms)
{
    int64_t end = gf_mono_ms() + timeout_ms;
    long long have = -1;
    while (gf_mono_ms() < end) {
        have = sql_ll(w->eventlog, "SELECT count(*) FROM event WHERE event_name = 'BuyItemEvent'");
        if (have == n)
            return 0;
        usleep(20 * 1000);
    }
    fprintf(stderr, "eventlog holds %lld buy events, expected %lld (logs %s, %s)\n", have, n,
            w->eventlog_log, w->backend_log);
    return -1;
}

int world_stop(struct backend_world *w)
{
    int rc = 0;
    if (world_stop_eventlog(w) != 0)
        rc = -1;
    if (w->backend_pid > 0 && stopped_cleanly(w->backend_pid, "backend", w->backend_log) != 0)
        rc = -1;
    w->backend_pid = -1;
    if (world_stop_gxp(w) != 0)
        rc = -1;
    gf_grpc_client_free(w->backend_grpc);
    w->backend_grpc = NULL;
    if (w->backend)
        PQfinish(w->backend);
    if (w->gxp)
        PQfinish(w->gxp);
    if (w->eventlog)
        PQfinish(w->eventlog);
    w->backend = w->gxp = w->eventlog = NULL;
    http_thread_done();
    h_cleanup_all();
    free(w->admin_token);
    w->admin_token = NULL;
    gf_auth_keys_free(w->keys);
    w->keys = NULL;
    w->running = false;
    return rc;
}

/* ---- API shortcuts ---------------------------------------------------------------------- */

static long long post_id(struct backend_world *w, const char *path, json_t *body, const char *key)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    struct http_res r;
    http(w, "POST", path, text, NULL, &r);
    free(text);
    char keys[64];
    snprintf(keys, sizeof keys, "%s,correlationId", key);
    assert_ok(&r, keys);
    long long id = jint(r.json, key);
    assert_true(id > 0);
    http_res_free(&r);
    return id;
}

long long api_create_user(struct backend_world *w, const char *name)
{
    return post_id(w, "/user/create", json_pack("{s:s}", "name", name), "userId");
}

long long api_create_item(struct backend_world *w, const char *name, long long cost)
{
    return post_id(w, "/item/create", json_pack("{s:s,s:I}", "name", name, "cost", cost), "itemId");
}

long long api_create_marketplace_item(struct backend_world *w, long long item_id, long long count)
{
    long long id =
        post_id(w, "/marketplace/item/create",
                json_pack("{s:I,s:I}", "itemId", item_id, "count", count), "marketplaceItemId");
    atomic_fetch_add(&w->stock_created, count);
    return id;
}

long long api_create_user_item(struct backend_world *w, long long user, long long item,
                               long long count)
{
    long long id = post_id(
        w, "/user/item/create",
        json_pack("{s:I,s:I,s:I}", "userId", user, "itemId", item, "count", count), "userItemId");
    atomic_fetch_add(&w->stock_created, count);
    return id;
}

void api_add_gxp(struct backend_world *w, long long user, long long amount, char cid_out[37])
{
    char body[128];
    snprintf(body, sizeof body, "{\"userId\":%lld,\"amount\":%lld}", user, amount);
    struct http_res r;
    http(w, "POST", "/user/gxp/add", body, NULL, &r);
    assert_ok(&r, "correlationId");
    char cid[37];
    snprintf(cid, sizeof cid, "%s", jstr(r.json, "correlationId"));
    http_res_free(&r);
    assert_int_equal(wait_until_finalized(w, cid, 15000), 0);
    assert_int_equal(
        sql_ll(w->gxp, "SELECT status FROM gxp_transaction WHERE correlation_id = '%s'", cid), 2);
    if (cid_out)
        memcpy(cid_out, cid, 37);
}

void api_user_gxp(struct backend_world *w, long long user, long long *balance, long long *reserved)
{
    char path[64];
    snprintf(path, sizeof path, "/user/gxp?userId=%lld", user);
    struct http_res r;
    http(w, "GET", path, NULL, NULL, &r);
    assert_ok(&r, "balance,reserved,updatedAt,correlationId");
    assert_iso8601_ms(jstr(r.json, "updatedAt"));
    *balance = jint(r.json, "balance");
    *reserved = jint(r.json, "reserved");
    http_res_free(&r);
}

void balance_is(struct backend_world *w, long long user, long long balance, long long reserved)
{
    long long b = -1, r = -1;
    api_user_gxp(w, user, &b, &r);
    if (b != balance || r != reserved)
        fail_msg("user %lld: balance %lld reserved %lld, expected %lld and %lld", user, b, r,
                 balance, reserved);
}

/* ---- waiting, snapshots, invariants ------------------------------------------------------ */

int wait_until_finalized(struct backend_world *w, const char *cid, int timeout_ms)
{
    int64_t end = gf_mono_ms() + timeout_ms;
    do {
        if (sql_ll(w->gxp,
                   "SELECT count(*) FROM gxp_transaction WHERE correlation_id = '%s'"
                   " AND status <> 0",
                   cid) == 1)
            return 0;
        usleep(5 * 1000);
    } while (gf_mono_ms() < end);
    return -1;
}

int wait_no_pending(struct backend_world *w, int timeout_ms)
{
    int64_t end = gf_mono_ms() + timeout_ms;
    do {
        if (sql_ll(w->gxp, "SELECT count(*) FROM gxp_transaction WHERE status = 0") == 0)
            return 0;
        usleep(10 * 1000);
    } while (gf_mono_ms() < end);
    return -1;
}

void snapshot(struct backend_world *w, bool strict, char *out, size_t n)
{
    char b[512], g[512];
    (void)wait_no_pending(w, 15000);
    sql_text(
        w->backend, b, sizeof b,
        "SELECT format('users=%%s items=%%s/%%s/%%s mp=%%s/%%s ui=%%s/%%s',"
        " (SELECT count(*) FROM users), (SELECT count(*) FROM items),"
        " (SELECT coalesce(sum(cost), 0) FROM items),"
        " (SELECT coalesce(sum(version), 0) FROM items),"
        " (SELECT count(*) FROM marketplace_items),"
        " (SELECT coalesce(sum(count), 0) FROM marketplace_items),"
        " (SELECT count(*) FROM user_items), (SELECT coalesce(sum(count), 0) FROM user_items))"
        " || CASE WHEN %s THEN format(' outbox=%%s', (SELECT count(*) FROM transaction_outbox))"
        "      ELSE '' END",
        strict ? "true" : "false");
    sql_text(w->gxp, g, sizeof g,
             "SELECT format('balances=%%s sum=%%s reserved=%%s',"
             " (SELECT count(*) FROM balance), (SELECT coalesce(sum(balance), 0) FROM balance),"
             " (SELECT coalesce(sum(reserved), 0) FROM balance))"
             " || CASE WHEN %s THEN format(' tx=%%s', (SELECT count(*) FROM gxp_transaction))"
             "      ELSE '' END",
             strict ? "true" : "false");
    snprintf(out, n, "%s | %s", b, g);
}

static int violation(long long bad, const char *what)
{
    if (bad == 0)
        return 0;
    fprintf(stderr, "INVARIANT VIOLATED (%lld): %s\n", bad, what);
    return 1;
}

/* The backend's decisions as "cid=state,..." and its user ids as "1,2,...". */
static const char OUTBOX_SQL[] =
    "SELECT coalesce(string_agg(correlation_id || '=' || state, ','), '') FROM transaction_outbox";
static const char DECISIONS_CTE[] =
    "WITH o AS (SELECT split_part(x, '=', 1)::uuid AS cid, split_part(x, '=', 2) AS state"
    "             FROM unnest(string_to_array($1, ',')) x) ";

/* Every event of backend-db's outbox (a BuyItemEvent per successful buy, written in the buy's
 * own transaction; an AdminActionEvent per audited change of an operator, written in the
 * change's) is stored in eventlog-db, once, and nothing else is. */
static int check_event_invariants(struct backend_world *w)
{
    int bad = violation(sql_ll(w->backend, "SELECT count(*) FROM event_outbox e LEFT JOIN"
                                           " coord_transactions c USING (correlation_id)"
                                           " WHERE e.event_name = 'BuyItemEvent'"
                                           " AND c.kind IS DISTINCT FROM 'buy'"),
                        "every outbox buy event belongs to a buy");
    bad += violation(sql_ll(w->backend, "SELECT count(*) FROM event_outbox WHERE event_name"
                                        " NOT IN ('BuyItemEvent', 'AdminActionEvent',"
                                        " 'AuctionOutbidEvent', 'AuctionSettledEvent',"
                                        " 'AuctionCancelledEvent')"),
                     "the outbox holds known events only");
    /* Published rows may have been pruned from the outbox: what must hold is that every
     * event still there is stored, every succeeded buy is stored, and nothing else is. */
    char *outbox = sql_dup(w->backend, "SELECT coalesce(string_agg(correlation_id::text, ','),"
                                       " '') FROM event_outbox WHERE event_name = 'BuyItemEvent'");
    static const char missing_sql[] =
        "SELECT count(*) FROM unnest(string_to_array($1, ',')::uuid[]) o(cid)"
        " WHERE NOT EXISTS (SELECT 1 FROM event e WHERE e.correlation_id = o.cid"
        " AND e.event_name = 'BuyItemEvent')";
    int64_t end = gf_mono_ms() + 20000;
    while (sql_ll_param(w->eventlog, missing_sql, outbox) != 0 && gf_mono_ms() < end)
        usleep(20 * 1000);
    bad += violation(sql_ll_param(w->eventlog, missing_sql, outbox),
                     "every event of the outbox is stored in eventlog-db");
    free(outbox);
    /* Audit events: per correlation id, eventlog holds at least as many as the outbox still
     * does (each is stored once by its eventId; a client may reuse a correlation id). */
    char *audits = sql_dup(w->backend, "SELECT coalesce(string_agg(cid || '=' || n, ','), '')"
                                       " FROM (SELECT correlation_id::text AS cid, count(*) AS n"
                                       " FROM event_outbox WHERE event_name = 'AdminActionEvent'"
                                       " GROUP BY correlation_id) a");
    static const char audits_missing_sql[] =
        "SELECT count(*) FROM (SELECT split_part(x, '=', 1)::uuid AS cid,"
        " split_part(x, '=', 2)::int AS n FROM unnest(string_to_array($1, ',')) x) o"
        " WHERE (SELECT count(*) FROM event e WHERE e.correlation_id = o.cid"
        " AND e.event_name = 'AdminActionEvent') < o.n";
    while (sql_ll_param(w->eventlog, audits_missing_sql, audits) != 0 && gf_mono_ms() < end)
        usleep(20 * 1000);
    bad += violation(sql_ll_param(w->eventlog, audits_missing_sql, audits),
                     "every audit event of the outbox is stored in eventlog-db");
    free(audits);
    /* The auction saga's events: each (name, correlation id) of the outbox stored once. */
    char *auction = sql_dup(w->backend, "SELECT coalesce(string_agg(event_name || '=' ||"
                                        " correlation_id, ','), '') FROM event_outbox"
                                        " WHERE event_name LIKE 'Auction%%Event'");
    static const char auction_missing_sql[] =
        "SELECT count(*) FROM (SELECT split_part(x, '=', 1) AS name,"
        " split_part(x, '=', 2)::uuid AS cid FROM unnest(string_to_array($1, ',')) x) o"
        " WHERE (SELECT count(*) FROM event e WHERE e.correlation_id = o.cid"
        " AND e.event_name = o.name) <> 1";
    while (sql_ll_param(w->eventlog, auction_missing_sql, auction) != 0 && gf_mono_ms() < end)
        usleep(20 * 1000);
    bad += violation(sql_ll_param(w->eventlog, auction_missing_sql, auction),
                     "every auction event of the outbox is stored in eventlog-db, once");
    free(auction);
    bad += violation(sql_ll(w->eventlog, "SELECT count(*) FROM event a WHERE a.event_name ="
                                         " 'AdminActionEvent' AND a.data->>'action' ="
                                         " 'item_bought_for_user' AND NOT EXISTS (SELECT 1"
                                         " FROM event b WHERE b.event_name = 'BuyItemEvent'"
                                         " AND b.correlation_id = a.correlation_id)"),
                     "every audited buy for a user has its buy event");
    char *succeeded =
        sql_dup(w->backend, "SELECT coalesce(string_agg(correlation_id::text, ','), '') FROM"
                            " coord_transactions c JOIN transaction_outbox t USING"
                            " (correlation_id) WHERE c.kind = 'buy' AND t.state = 'succeeded'");
    bad += violation(sql_ll_param(w->eventlog, missing_sql, succeeded),
                     "every succeeded buy has its event stored");
    free(succeeded);
    char *possible =
        sql_dup(w->backend, "SELECT coalesce(string_agg(correlation_id::text, ','), '') FROM"
                            " coord_transactions c LEFT JOIN transaction_outbox t USING"
                            " (correlation_id) WHERE c.kind = 'buy'"
                            " AND t.state IS DISTINCT FROM 'failed'");
    bad += violation(sql_ll_param(w->eventlog,
                                  "SELECT count(*) FROM event e WHERE e.event_name ="
                                  " 'BuyItemEvent' AND e.correlation_id <> ALL"
                                  " (string_to_array($1, ',')::uuid[])",
                                  possible),
                     "eventlog-db holds events of buys that happened only");
    free(possible);
    bad += violation(sql_ll(w->eventlog, "SELECT count(*) - count(DISTINCT correlation_id)"
                                         " FROM event WHERE event_name = 'BuyItemEvent'"),
                     "no buy event is stored twice");
    end = gf_mono_ms() + 10000; /* the marks commit just after the confirms */
    while (sql_ll(w->backend, "SELECT count(*) FROM event_outbox WHERE published_at IS NULL") &&
           gf_mono_ms() < end)
        usleep(20 * 1000);
    bad += violation(sql_ll(w->backend, "SELECT count(*) FROM event_outbox"
                                        " WHERE published_at IS NULL") != 0,
                     "the relay published every event");
    return bad;
}

int wait_saga_idle(struct backend_world *w, int timeout_ms)
{
    int64_t end = gf_mono_ms() + timeout_ms;
    do {
        if (sql_ll(w->backend, "SELECT count(*) FROM saga_steps WHERE state = 'pending'"
                               " AND due_at < now() + interval '1 second'") == 0)
            return 0;
        usleep(50 * 1000);
    } while (gf_mono_ms() < end);
    fprintf(stderr, "saga steps still pending:\n");
    PGresult *r = PQexec(w->backend, "SELECT id, auction_id, kind, attempts, due_at, lease_until,"
                                     " last_error FROM saga_steps WHERE state = 'pending'");
    for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r) && i < 20; i++)
        fprintf(stderr, "  step %s auction %s %s attempts %s due %s lease %s error %s\n",
                PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
                PQgetvalue(r, i, 4), PQgetvalue(r, i, 5), PQgetvalue(r, i, 6));
    PQclear(r);
    return -1;
}

/* The succeeded decisions of backend-db's gxp transactions, signed as they move a user's GXP:
 * (user_id, kind, delta). */
#define LEDGER_CTE                                                                                 \
    "WITH l AS (SELECT c.user_id, c.kind, CASE WHEN c.kind IN ('buy', 'bid') THEN -c.amount"       \
    " ELSE c.amount END AS delta FROM coord_transactions c JOIN transaction_outbox o"              \
    " USING (correlation_id) WHERE o.state = 'succeeded' AND c.amount > 0) "

/* The auction saga (issue 16), at a quiescent point: GXP is conserved — for every user, the
 * balance gxp holds = its credits − its buys − its bids + its refunds + its proceeds, all from
 * backend-db's succeeded decisions; what the bids took and the saga has not paid back or out
 * (escrow) = the leading bids of open auctions; every outbid bid refunded exactly once, every
 * won auction paid out once; every unit auctioned has one owner; no auction open past its end;
 * one event per settlement, outbid bid and cancellation. */
static int check_auction_invariants(struct backend_world *w)
{
    int bad = 0;
    char *ledger = sql_dup(w->backend, LEDGER_CTE
                           "SELECT coalesce(string_agg(user_id || ':' || s, ','), '') FROM"
                           " (SELECT user_id, sum(delta) s FROM l GROUP BY user_id) x");
    bad += violation(
        sql_ll_param(w->gxp,
                     "WITH x AS (SELECT split_part(e, ':', 1)::bigint u,"
                     " split_part(e, ':', 2)::bigint s FROM unnest(string_to_array($1, ',')) e)"
                     " SELECT count(*) FROM balance b FULL JOIN x ON x.u = b.user_id"
                     " WHERE coalesce(b.balance, 0) <> coalesce(x.s, 0)",
                     ledger),
        "GXP conserved: each balance = credits - buys - bids + refunds + proceeds");
    free(ledger);
    bad += violation(sql_ll(w->backend,
                            LEDGER_CTE "SELECT (SELECT coalesce(-sum(delta), 0) FROM l"
                                       " WHERE kind IN ('bid', 'auction_refund', 'auction_payout'))"
                                       " - (SELECT coalesce(sum(leading_amount), 0) FROM auctions"
                                       " WHERE status = 'open')") != 0,
                     "escrow (bids - refunds - payouts) = the leading bids of open auctions");
    bad += violation(
        sql_ll(w->backend,
               "SELECT count(*) FROM auction_bids b WHERE (b.outbid_by IS NOT NULL) <>"
               " EXISTS (SELECT 1 FROM saga_steps s WHERE s.kind = 'refund' AND s.bid_id = b.id"
               " AND s.state = 'done')"
               " OR (SELECT count(*) FROM saga_steps s JOIN transaction_outbox o"
               " ON o.correlation_id = s.correlation_id WHERE s.kind = 'refund'"
               " AND s.bid_id = b.id AND o.state = 'succeeded') > 1"),
        "every outbid bid refunded once (a done refund step), no other bid refunded");
    bad += violation(sql_ll(w->backend,
                            "SELECT count(*) FROM auctions a WHERE a.status = 'settled' AND"
                            " (a.leading_bid_id IS NOT NULL) <> EXISTS (SELECT 1 FROM saga_steps s"
                            " WHERE s.auction_id = a.id AND s.kind = 'payout' AND s.state = 'done'"
                            " AND s.amount = a.leading_amount AND s.user_id = a.seller_id)"),
                     "every won auction's seller paid out the winning amount once");
    bad += violation(
        sql_ll(w->backend,
               "SELECT count(*) FROM auctions WHERE (status = 'open') = (result_user_item_id IS"
               " NOT NULL) OR (status = 'open' AND ends_at < now() - interval '5 seconds')"
               " OR (status = 'settled' AND leading_user_id IS NOT NULL AND"
               " (SELECT user_id FROM user_items WHERE id = result_user_item_id)"
               " <> leading_user_id)"),
        "every auctioned unit has one owner (the winner, or the seller again); none open "
        "past its end + 5 s");
    bad += violation(
        sql_ll(w->backend,
               "SELECT (SELECT count(*) FROM auctions a WHERE status <> 'open' AND"
               " (SELECT count(*) FROM event_outbox e WHERE e.correlation_id = a.correlation_id"
               " AND e.event_name = CASE a.status WHEN 'settled' THEN 'AuctionSettledEvent'"
               " ELSE 'AuctionCancelledEvent' END) <> 1)"
               " + (SELECT count(*) FROM auction_bids b JOIN auction_bids n ON n.id = b.outbid_by"
               " WHERE (SELECT count(*) FROM event_outbox e WHERE e.correlation_id ="
               " n.correlation_id AND e.event_name = 'AuctionOutbidEvent') <> 1)"
               " + (SELECT count(*) FROM event_outbox e WHERE e.event_name LIKE 'Auction%%Event'"
               " AND NOT EXISTS (SELECT 1 FROM auctions a WHERE a.correlation_id ="
               " e.correlation_id) AND NOT EXISTS (SELECT 1 FROM auction_bids b"
               " WHERE b.correlation_id = e.correlation_id))"),
        "one event per settlement, cancellation and outbid bid, and no other");
    return bad;
}

int check_invariants(struct backend_world *w)
{
    /* Quiescent means the auction saga too: a payout or refund still due would prepare and
     * commit on gxp between the reads of the two databases below. */
    int bad = violation(wait_saga_idle(w, 20000) != 0,
                        "the saga's due steps all ran (none pending past its due time)");
    bad += violation(wait_no_pending(w, 15000) != 0,
                     "a gxp transaction stayed PENDING although the system is quiescent");
    /* gxp-db: balance = Σ committed ADD − Σ committed SUBTRACT (with what retention pruned of
     * them: balance_pruned); reserved = Σ pending SUBTRACT; incoming = Σ pending ADD;
     * 0 ≤ reserved ≤ balance. */
    bad += violation(sql_ll(w->gxp, GXP_LEDGER_VIOLATIONS_SQL),
                     "gxp balances match their committed and pending transactions");
    bad += violation(sql_ll(w->gxp, "SELECT count(*) FROM gxp_transaction t"
                                    " LEFT JOIN decision d USING (correlation_id)"
                                    " WHERE (t.status = 2 AND d.state IS DISTINCT FROM 'succeeded')"
                                    "    OR (t.status = 1 AND d.state IS DISTINCT FROM 'failed')"
                                    "    OR (t.status = 0 AND d.outcome = 'applied')"),
                     "gxp: COMMITTED iff its recorded decision is succeeded, ABORTED iff failed");
    bad += violation(sql_ll(w->gxp, "SELECT count(*) FROM decision WHERE outcome LIKE 'error%%'"),
                     "gxp applied every decision without error");

    /* Across: gxp-db follows backend-db's decisions, both ways. */
    char *outbox = sql_dup(w->backend, OUTBOX_SQL);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "%sSELECT count(*) FROM gxp_transaction t LEFT JOIN o ON o.cid = t.correlation_id"
             " WHERE (t.status = 2 AND o.state IS DISTINCT FROM 'succeeded')"
             "    OR (t.status = 1 AND o.state IS DISTINCT FROM 'failed')",
             DECISIONS_CTE);
    bad += violation(sql_ll_param(w->gxp, sql, outbox),
                     "every COMMITTED gxp transaction is 'succeeded' in backend-db's outbox and "
                     "every ABORTED one 'failed'");
    snprintf(sql, sizeof sql,
             "%sSELECT count(*) FROM o LEFT JOIN gxp_transaction t ON t.correlation_id = o.cid"
             " WHERE o.state = 'succeeded' AND t.status IS DISTINCT FROM 2",
             DECISIONS_CTE);
    bad += violation(sql_ll_param(w->gxp, sql, outbox),
                     "every 'succeeded' decision of backend-db has a COMMITTED gxp transaction");
    free(outbox);

    /* Stock: nothing created or lost — user items + marketplace stock + the units in escrow
     * (one per open auction) = stock ever created. */
    long long stock =
        sql_ll(w->backend, "SELECT (SELECT coalesce(sum(count), 0) FROM user_items)"
                           " + (SELECT coalesce(sum(count), 0) FROM marketplace_items)"
                           " + (SELECT count(*) FROM auctions WHERE status = 'open')");
    long long created = atomic_load(&w->stock_created);
    if (stock != created)
        fprintf(stderr, "stock: %lld in user items and marketplace, %lld created\n", stock,
                created);
    bad += violation(stock != created, "user items + marketplace stock = stock ever created");

    /* Every backend user has a gxp balance. */
    char *users = sql_dup(w->backend, "SELECT coalesce(string_agg(id::text, ','), '') FROM users");
    bad +=
        violation(sql_ll_param(w->gxp,
                               "SELECT count(*) FROM unnest(string_to_array($1, ',')::bigint[]) u"
                               " LEFT JOIN balance b ON b.user_id = u WHERE b.user_id IS NULL",
                               users),
                  "every backend user has a gxp balance");
    free(users);
    bad += check_auction_invariants(w);
    if (w->opt.events && w->eventlog != NULL)
        bad += check_event_invariants(w);
    return bad;
}

grpc_status_code rpc_resolve(struct backend_world *w, const char *cid, char *state, size_t n)
{
    Backend__ResolveTransactionRequest req = BACKEND__RESOLVE_TRANSACTION_REQUEST__INIT;
    req.correlationid = (char *)cid;
    ProtobufCMessage *out = NULL;
    grpc_status_code code = gf_grpc_client_call(
        w->backend_grpc, "/backend.Backend/ResolveTransaction", &req.base,
        &backend__resolve_transaction_response__descriptor, &out, 5000, NULL, 0, NULL, 0);
    if (out) {
        Backend__ResolveTransactionResponse *r = (Backend__ResolveTransactionResponse *)out;
        assert_string_equal(r->correlationid, cid);
        if (state)
            snprintf(state, n, "%s", r->state);
        protobuf_c_message_free_unpacked(out, NULL);
    }
    return code;
}

/* ---- cmocka hooks ------------------------------------------------------------------------ */

struct backend_world W;

int world_check(void **state)
{
    (void)state;
    return check_invariants(&W) == 0 ? 0 : -1;
}

int world_teardown(void **state)
{
    (void)state;
    return world_stop(&W);
}

int world_check_and_stop(void **state)
{
    (void)state;
    int bad = W.running ? check_invariants(&W) : 0;
    int rc = world_stop(&W);
    return bad == 0 && rc == 0 ? 0 : -1;
}
