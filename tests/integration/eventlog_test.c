/* The eventlog binary against a real eventlog-db and the run's RabbitMQ node: what it stores
 * (every field), exactly once (duplicates, redeliveries, a backlog, a dropped broker
 * connection, a restarted database), what it dead-letters, what its HTTP API answers, when it
 * is ready, and that SIGTERM ends it cleanly. The tests share one world and run in order. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "backend.pb-c.h"
#include "gf/amqp.h"
#include "gf/auth.h"
#include "gf/clock.h"
#include "gf/log.h"
#include "gf/uuid.h"
#include "harness.h"
#include "sql_helpers.h"

#define WAIT_MS 30000
#define CONFIRM_MS 10000
#define LIST_CAP 50
#define DEAD_QUEUE "eventlog.events.dead"
#define CONSUMER_NAME "eventlog-consumer"

static struct {
    struct h_pg pg;
    struct h_rmq rmq;
    PGconn *db;
    struct gf_amqp_conn *pub; /* the test thread's publisher, in confirm mode */
    int http_port;
    pid_t pid;
    char log[600];
    uint32_t next_user;
    char auth_dir[600]; /* the public key eventlog accepts */
    char *admin_token;  /* sent with every request (who may read what: the auth test's) */
} W;

/* ---- the eventlog process ------------------------------------------------------------------ */

static pid_t spawn(const char *amqp_url)
{
    char http[64], db[700], amqp[400], cap[48];
    snprintf(http, sizeof http, "EVENTLOG_HTTP_ADDR=127.0.0.1:%d", W.http_port);
    snprintf(db, sizeof db, "EVENTLOG_DB_URL=%s", W.pg.conninfo);
    snprintf(amqp, sizeof amqp, "EVENTLOG_AMQP_URL=%s", amqp_url);
    snprintf(cap, sizeof cap, "EVENTLOG_LIST_CAP=%d", LIST_CAP);
    char keys[640];
    snprintf(keys, sizeof keys, "EVENTLOG_AUTH_KEYS=%s", W.auth_dir);
    const char *env[] = {keys,
                         http,
                         db,
                         amqp,
                         cap,
                         "EVENTLOG_LOG_LEVEL=info",
                         "EVENTLOG_AMQP_HEARTBEAT_S=5",
                         "EVENTLOG_SHUTDOWN_GRACE_MS=8000",
                         "EVENTLOG_DB_STATEMENT_TIMEOUT_MS=15000",
                         NULL};
    const char *argv[] = {GF_EVENTLOG_BIN, NULL};
    snprintf(W.log, sizeof W.log, "%s/eventlog.log", h_run_dir());
    pid_t pid = h_spawn(argv, env, W.log);
    assert_true(pid > 0);
    return pid;
}

/* SIGTERM; the process must exit 0 (a sanitizer report or a crash would not). */
static void stop_eventlog(void)
{
    if (W.pid <= 0)
        return;
    int status = h_stop(W.pid, 15000);
    W.pid = -1;
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        fail_msg("eventlog did not exit 0 on SIGTERM: status=%d (log %s)", status, W.log);
}

/* ---- HTTP -------------------------------------------------------------------------------------
 */

struct res {
    long status;
    char *body;
    size_t len, cap;
    json_t *json;
    char cid_header[64];
    char allow[64];
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct res *r = ud;
    size_t n = size * nmemb;
    if (r->len + n + 1 > r->cap) {
        size_t cap = (r->len + n + 1) * 2;
        char *p = realloc(r->body, cap);
        if (p == NULL)
            return 0;
        r->body = p, r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

static void header_value(const char *line, size_t n, const char *name, char *out, size_t outsz)
{
    size_t k = strlen(name);
    if (n <= k || strncasecmp(line, name, k) != 0)
        return;
    const char *v = line + k;
    size_t vlen = n - k;
    while (vlen > 0 && (*v == ' '))
        v++, vlen--;
    while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n'))
        vlen--;
    snprintf(out, outsz, "%.*s", (int)vlen, v);
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    struct res *r = ud;
    size_t n = size * nmemb;
    header_value(data, n, "X-Correlation-Id:", r->cid_header, sizeof r->cid_header);
    header_value(data, n, "Allow:", r->allow, sizeof r->allow);
    return n;
}

static void res_free(struct res *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

/* One request to eventlog; *r is filled (res_free it). Returns the status (0: no answer). */
static long req(const char *method, const char *path, struct res *r)
{
    memset(r, 0, sizeof *r);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    char url[4096];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", W.http_port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    char auth[GF_AUTH_TOKEN_MAX + 32];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", W.admin_token);
    struct curl_slist *hl = curl_slist_append(NULL, auth);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(c);
    curl_slist_free_all(hl);
    if (r->body == NULL)
        r->body = strdup("");
    r->json = json_loads(r->body, 0, NULL);
    return r->status;
}

static long get(const char *path, struct res *r)
{
    return req("GET", path, r);
}

/* Waits until GET path answers want. */
static bool wait_status(const char *path, long want, int timeout_ms)
{
    int64_t end = gf_mono_ms() + timeout_ms;
    while (gf_mono_ms() < end) {
        struct res r;
        long st = get(path, &r);
        res_free(&r);
        if (st == want)
            return true;
        gf_sleep_ms(100, NULL);
    }
    return false;
}

/* The value of a Prometheus series (the whole line up to the value), 0 when absent. */
static double metric(const char *series)
{
    struct res r;
    assert_int_equal(get("/metrics", &r), 200);
    double v = 0;
    size_t n = strlen(series);
    for (const char *line = r.body; line != NULL && *line; line = strchr(line, '\n')) {
        if (*line == '\n')
            line++;
        if (strncmp(line, series, n) == 0 && line[n] == ' ') {
            v = strtod(line + n + 1, NULL);
            break;
        }
    }
    res_free(&r);
    return v;
}

/* The error shape: {message, error, correlationId} and the same id in the header. */
static void assert_error_shape(const struct res *r, const char *code)
{
    assert_non_null(r->json);
    const char *message = json_string_value(json_object_get(r->json, "message"));
    const char *error = json_string_value(json_object_get(r->json, "error"));
    const char *cid = json_string_value(json_object_get(r->json, "correlationId"));
    assert_non_null(message);
    assert_non_null(error);
    assert_non_null(cid);
    assert_int_equal(json_object_size(r->json), 3);
    assert_true(gf_uuid_valid(cid, strlen(cid)));
    assert_string_equal(cid, r->cid_header);
    if (code != NULL)
        assert_string_equal(error, code);
    assert_null(strcasestr(message, "select"));
    assert_null(strcasestr(message, "sql"));
}

/* ---- publishing -------------------------------------------------------------------------------
 */

struct ev {
    uint32_t user, item, user_item;
    char cid[37];
    int64_t occurred_us;
};

static void ev_new(struct ev *e, uint32_t user, int i)
{
    e->user = user;
    e->item = 1000 + (uint32_t)i;
    e->user_item = 5000 + (uint32_t)i;
    new_cid(e->cid);
    e->occurred_us = gf_wall_us();
}

/* Publishes the n events as the backend does (SPEC §4), in confirmed batches of at most 250. */
static void publish_on(struct gf_amqp_conn *c, const struct ev *e, int n)
{
    enum { B = 250 };
    struct gf_amqp_message m[B];
    uint8_t bodies[B][128];
    for (int first = 0; first < n; first += B) {
        int k = n - first < B ? n - first : B;
        for (int j = 0; j < k; j++) {
            const struct ev *x = &e[first + j];
            Backend__BuyItemEvent pb = BACKEND__BUY_ITEM_EVENT__INIT;
            pb.userid = x->user;
            pb.itemid = x->item;
            pb.useritemid = x->user_item;
            pb.correlationid = (char *)x->cid;
            m[j] = (struct gf_amqp_message){
                .exchange = GF_EVENTS_EXCHANGE,
                .routing_key = GF_EVENT_BUY_ITEM,
                .body = bodies[j],
                .len = backend__buy_item_event__pack(&pb, bodies[j]),
                .content_type = GF_EVENTS_CONTENT_TYPE,
                .type = GF_EVENT_BUY_ITEM,
                .message_id = x->cid,
                .correlation_id = x->cid,
                .occurred_at_us = x->occurred_us,
            };
        }
        assert_int_equal(gf_amqp_publish(c, m, k, CONFIRM_MS), GF_OK);
        for (int j = 0; j < k; j++)
            assert_int_equal(m[j].outcome, GF_AMQP_CONFIRMED);
    }
}

static void publish(const struct ev *e, int n)
{
    publish_on(W.pub, e, n);
}

/* One raw message (for the ones that must be dead-lettered). */
static void publish_raw(const char *type, const char *content_type, const void *body, size_t len,
                        const char *message_id)
{
    struct gf_amqp_message m = {
        .exchange = GF_EVENTS_EXCHANGE,
        .routing_key = GF_EVENT_BUY_ITEM,
        .body = body,
        .len = len,
        .content_type = content_type,
        .type = type,
        .message_id = message_id,
        .occurred_at_us = gf_wall_us(),
    };
    assert_int_equal(gf_amqp_publish(W.pub, &m, 1, CONFIRM_MS), GF_OK);
    assert_int_equal(m.outcome, GF_AMQP_CONFIRMED);
}

static struct gf_amqp_conn *publisher_new(const char *url)
{
    struct gf_amqp_options o = {.url = url, .name = "test-publisher", .timeout_ms = 5000};
    enum gf_status st = GF_EINTERNAL;
    struct gf_amqp_conn *c = gf_amqp_connect(&o, &st);
    assert_int_equal(st, GF_OK);
    assert_int_equal(gf_amqp_declare_queue(c, &gf_events_eventlog_queue), GF_OK);
    assert_int_equal(gf_amqp_confirm_select(c), GF_OK);
    return c;
}

/* ---- the store, seen from the test ------------------------------------------------------------
 */

static long long count_user(uint32_t user)
{
    return sql_ll(W.db, "SELECT count(*) FROM event WHERE user_id = %u", user);
}

/* Waits until user has want events stored; returns how many it has then. */
static long long wait_user(uint32_t user, long long want)
{
    int64_t end = gf_mono_ms() + WAIT_MS;
    long long have;
    while ((have = count_user(user)) < want && gf_mono_ms() < end)
        gf_sleep_ms(20, NULL);
    return have;
}

static long wait_depth(const char *queue, long want)
{
    int64_t end = gf_mono_ms() + WAIT_MS;
    long depth;
    while ((depth = h_rmq_queue_depth(&W.rmq, queue)) != want && gf_mono_ms() < end)
        gf_sleep_ms(200, NULL);
    return depth;
}

static uint32_t fresh_user(void)
{
    return W.next_user++;
}

/* Every event of user was stored exactly once: n rows, n distinct correlation ids, and each of
 * the n published ids among them. */
static void assert_stored_once(uint32_t user, const struct ev *e, int n)
{
    assert_int_equal(wait_user(user, n), n);
    gf_sleep_ms(300, NULL); /* a late double would show now */
    assert_int_equal(count_user(user), n);
    assert_int_equal(sql_ll(W.db,
                            "SELECT count(DISTINCT correlation_id) FROM event"
                            " WHERE user_id = %u",
                            user),
                     n);
    for (int i = 0; i < n; i += 97)
        assert_int_equal(
            sql_ll(W.db, "SELECT count(*) FROM event WHERE correlation_id = '%s'", e[i].cid), 1);
}

/* ---- the world ------------------------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    gf_log_init("eventlog-test", GF_LOG_WARN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    W.pid = -1;
    W.next_user = 700000 + (uint32_t)(gf_wall_us() % 100000);
    W.http_port = h_free_port();
    if (h_rmq_open(&W.rmq) != 0 || h_pg_start(&W.pg, "eventlog-db", 0) != 0)
        return -1;
    /* A key pair of its own: eventlog holds the public key, the test signs an admin's token. */
    char priv[700], pub[700], why[256];
    snprintf(W.auth_dir, sizeof W.auth_dir, "%s/auth", h_run_dir());
    snprintf(priv, sizeof priv, "%s/auth.key.pem", h_run_dir());
    snprintf(pub, sizeof pub, "%s/token.pub.pem", W.auth_dir);
    if (mkdir(W.auth_dir, 0755) != 0 || gf_auth_keygen(priv, pub) != GF_OK)
        return -1;
    struct gf_auth_keys *keys =
        gf_auth_keys_load(W.auth_dir, priv, "gf-svc", "gf-svc-api", why, sizeof why);
    struct gf_auth_claims admin = {.user_id = 1, .role = GF_ROLE_ADMIN, .name = "test-admin"};
    enum gf_status st = keys != NULL
                            ? gf_auth_sign(keys, &admin, (int64_t)time(NULL), 86400, &W.admin_token)
                            : GF_EINVAL;
    gf_auth_keys_free(keys);
    return st == GF_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    if (W.pid > 0)
        h_stop(W.pid, 15000);
    gf_amqp_close(W.pub);
    if (W.db != NULL)
        PQfinish(W.db);
    h_cleanup_all();
    curl_global_cleanup();
    free(W.admin_token);
    return 0;
}

/* ---- the tests --------------------------------------------------------------------------------
 */

/* Started before its database and before its broker's vhost exists: alive at once, ready only
 * once both are there, and storing from then on. */
static void readyz_waits_for_database_and_broker(void **state)
{
    (void)state;
    assert_int_equal(h_pg_stop(&W.pg), 0);
    /* A vhost that does not exist yet: the broker refuses the login until it does. */
    struct h_rmq late = W.rmq;
    snprintf(late.vhost, sizeof late.vhost, "%.40s-late", W.rmq.vhost);
    snprintf(late.url, sizeof late.url, "amqp://guest:guest@127.0.0.1:%d/%s", W.rmq.port,
             late.vhost);
    W.pid = spawn(late.url);

    assert_true(wait_status("/healthz", 200, WAIT_MS));
    struct res r;
    assert_int_equal(get("/readyz", &r), 503);
    assert_string_equal(json_string_value(json_object_get(r.json, "schema")), "pending");
    res_free(&r);
    assert_int_equal(get("/eventlog/events", &r), 503);
    assert_error_shape(&r, "not_ready");
    res_free(&r);

    /* The database comes: the schema is applied, still not ready without the broker. */
    assert_int_equal(h_pg_restart(&W.pg), 0);
    W.db = connect_or_fail(W.pg.conninfo);
    int64_t end = gf_mono_ms() + WAIT_MS;
    bool migrated = false;
    while (!migrated && gf_mono_ms() < end) {
        assert_int_equal(get("/readyz", &r), 503);
        const char *schema = json_string_value(json_object_get(r.json, "schema"));
        migrated = schema != NULL && strcmp(schema, "ready") == 0;
        if (migrated) {
            assert_string_equal(json_string_value(json_object_get(r.json, "database")), "ok");
            assert_string_equal(json_string_value(json_object_get(r.json, "broker")),
                                "disconnected");
        }
        res_free(&r);
        gf_sleep_ms(100, NULL);
    }
    assert_true(migrated);
    gf_sleep_ms(500, NULL);
    assert_int_equal(get("/readyz", &r), 503);
    res_free(&r);

    /* The broker's vhost comes: ready. */
    const char *add[] = {"add_vhost", late.vhost, NULL};
    const char *perm[] = {"set_permissions", "-p", late.vhost, "guest", ".*", ".*", ".*", NULL};
    assert_int_equal(h_rmq_ctl(add, NULL, 0), 0);
    assert_int_equal(h_rmq_ctl(perm, NULL, 0), 0);
    assert_true(wait_status("/readyz", 200, WAIT_MS));
    W.pub = publisher_new(late.url);
    struct ev e;
    ev_new(&e, fresh_user(), 0);
    publish(&e, 1);
    assert_int_equal(wait_user(e.user, 1), 1);

    /* The rest of the tests work in this process's own vhost. */
    stop_eventlog();
    gf_amqp_close(W.pub);
    const char *del[] = {"delete_vhost", late.vhost, NULL};
    assert_int_equal(h_rmq_ctl(del, NULL, 0), 0);
    W.pub = publisher_new(W.rmq.url);
    W.pid = spawn(W.rmq.url);
    assert_true(wait_status("/readyz", 200, WAIT_MS));
}

/* Every field of the row, and the same through the API. */
static void a_valid_event_is_stored_with_every_field_and_served(void **state)
{
    (void)state;
    struct ev e;
    ev_new(&e, fresh_user(), 1);
    e.occurred_us = 1764000000123456LL; /* 2025-11-24T16:00:00.123456Z */
    publish(&e, 1);
    assert_int_equal(wait_user(e.user, 1), 1);

    PGresult *q = sql_checked(
        PQexec(W.db, "SELECT id, event_name, message_id, user_id, text, correlation_id, data,"
                     " (extract(epoch FROM occurred_at) * 1000000)::bigint,"
                     " stored_at > occurred_at, stored_at <= now() FROM event ORDER BY id DESC"
                     " LIMIT 1"),
        "last event");
    char text[80];
    snprintf(text, sizeof text, "user %u bought item %u (user item %u)", e.user, e.item,
             e.user_item);
    assert_string_equal(PQgetvalue(q, 0, 1), "BuyItemEvent");
    assert_string_equal(PQgetvalue(q, 0, 2), e.cid);
    assert_int_equal(strtoll(PQgetvalue(q, 0, 3), NULL, 10), e.user);
    assert_string_equal(PQgetvalue(q, 0, 4), text);
    assert_string_equal(PQgetvalue(q, 0, 5), e.cid);
    json_t *data = json_loads(PQgetvalue(q, 0, 6), 0, NULL);
    assert_non_null(data);
    assert_int_equal(json_integer_value(json_object_get(data, "userId")), e.user);
    assert_int_equal(json_integer_value(json_object_get(data, "itemId")), e.item);
    assert_int_equal(json_integer_value(json_object_get(data, "userItemId")), e.user_item);
    assert_string_equal(json_string_value(json_object_get(data, "correlationId")), e.cid);
    assert_int_equal(json_object_size(data), 4);
    assert_true(strtoll(PQgetvalue(q, 0, 7), NULL, 10) == e.occurred_us);
    assert_string_equal(PQgetvalue(q, 0, 8), "t");
    assert_string_equal(PQgetvalue(q, 0, 9), "t");
    long long id = strtoll(PQgetvalue(q, 0, 0), NULL, 10);
    PQclear(q);

    char path[200];
    snprintf(path, sizeof path, "/eventlog/events?correlationId=%s", e.cid);
    struct res r;
    assert_int_equal(get(path, &r), 200);
    json_t *events = json_object_get(r.json, "events");
    assert_int_equal(json_array_size(events), 1);
    json_t *ev = json_array_get(events, 0);
    assert_int_equal(json_integer_value(json_object_get(ev, "id")), id);
    assert_string_equal(json_string_value(json_object_get(ev, "event")), "BuyItemEvent");
    assert_int_equal(json_integer_value(json_object_get(ev, "userId")), e.user);
    assert_string_equal(json_string_value(json_object_get(ev, "text")), text);
    assert_string_equal(json_string_value(json_object_get(ev, "correlationId")), e.cid);
    assert_string_equal(json_string_value(json_object_get(ev, "occurredAt")),
                        "2025-11-24T16:00:00.123Z");
    const char *stored = json_string_value(json_object_get(ev, "storedAt"));
    assert_non_null(stored);
    assert_int_equal(strlen(stored), 24);
    assert_int_equal(stored[23], 'Z');
    assert_true(json_equal(json_object_get(ev, "data"), data));
    assert_int_equal(json_object_size(ev), 8);
    /* Newest-first page: next is the newest id (after=next follows what comes later). */
    assert_int_equal(json_integer_value(json_object_get(r.json, "next")), id);
    json_decref(data);
    res_free(&r);
    assert_true(metric("eventlog_events_stored_total") >= 1);
    assert_true(metric("eventlog_event_lag_seconds_count") >= 1);
    assert_true(metric("eventlog_store_batch_seconds_count") >= 1);
    assert_true(metric("gf_db_pool_open{pool=\"main\"}") >= 1);
    /* The same through the user filter, and with a trailing slash. */
    snprintf(path, sizeof path, "/eventlog/events/?userId=%u", e.user);
    assert_int_equal(get(path, &r), 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "events")), 1);
    res_free(&r);
}

/* Published twice (two publishes, so the broker holds two messages): stored once, the second
 * counted as a duplicate. */
static void the_same_event_twice_is_stored_once(void **state)
{
    (void)state;
    double dups = metric("eventlog_events_duplicate_total");
    struct ev e[3];
    uint32_t user = fresh_user();
    for (int i = 0; i < 3; i++)
        ev_new(&e[i], user, i);
    publish(e, 3);
    publish(&e[1], 1);
    publish(e, 2);
    assert_stored_once(user, e, 3);
    assert_int_equal(wait_depth(gf_events_eventlog_queue.name, 0), 0);
    assert_true(metric("eventlog_events_duplicate_total") >= dups + 3);
}

/* 500 events wait in the queue while eventlog is stopped; started, it stores them all. */
static void a_backlog_of_500_is_stored_exactly_once(void **state)
{
    (void)state;
    enum { N = 500 };
    stop_eventlog();
    uint32_t user = fresh_user();
    struct ev *e = calloc(N, sizeof *e);
    assert_non_null(e);
    for (int i = 0; i < N; i++)
        ev_new(&e[i], user, i);
    publish(e, N);
    assert_int_equal(h_rmq_queue_depth(&W.rmq, gf_events_eventlog_queue.name), N);

    int64_t t0 = gf_mono_us();
    W.pid = spawn(W.rmq.url);
    assert_int_equal(wait_user(user, N), N);
    int64_t all_us = gf_mono_us() - t0;
    assert_stored_once(user, e, N);
    char span[64];
    sql_text(W.db, span, sizeof span,
             "SELECT extract(epoch FROM max(stored_at) - min(stored_at)) * 1000000"
             " FROM event WHERE user_id = %u",
             user);
    double span_us = strtod(span, NULL);
    print_message("backlog: %d events stored %.0f ms after the start; first to last stored in "
                  "%.1f ms = %.0f events/s\n",
                  N, all_us / 1000.0, span_us / 1000.0,
                  span_us > 0 ? (N - 1) / (span_us / 1e6) : 0.0);
    assert_int_equal(wait_depth(gf_events_eventlog_queue.name, 0), 0);
    free(e);
}

/* Each message that can never be stored goes to the dead-letter queue with one log line; the
 * good event behind them is stored. */
static void poison_messages_are_dead_lettered_and_do_not_block(void **state)
{
    (void)state;
    long dead0 = h_rmq_queue_depth(&W.rmq, DEAD_QUEUE);
    assert_true(dead0 >= 0);
    char cid[37];
    new_cid(cid);
    uint8_t body[128];
    Backend__BuyItemEvent pb = BACKEND__BUY_ITEM_EVENT__INIT;
    pb.userid = 1, pb.itemid = 2, pb.useritemid = 3, pb.correlationid = cid;
    size_t len = backend__buy_item_event__pack(&pb, body);
    static const uint8_t garbage[] = {0xff, 0xfe, 0x00, 0x13, 0x37, 0xff, 0xff, 0xff, 0xff};

    /* Our publisher needs a message_id (returns are matched by it); any will do here, the
     * bodies are judged first. */
    publish_raw(GF_EVENT_BUY_ITEM, GF_EVENTS_CONTENT_TYPE, garbage, sizeof garbage, "poison-1");
    publish_raw("SellItemEvent", GF_EVENTS_CONTENT_TYPE, body, len, cid);
    pb.userid = 0;
    size_t zlen = backend__buy_item_event__pack(&pb, body + 64);
    publish_raw(GF_EVENT_BUY_ITEM, GF_EVENTS_CONTENT_TYPE, body + 64, zlen, cid);
    publish_raw(GF_EVENT_BUY_ITEM, "application/json", body, len, cid);
    publish_raw(GF_EVENT_BUY_ITEM, GF_EVENTS_CONTENT_TYPE, body, len,
                "6f1d3c2b-0000-4000-8000-000000000001");
    pb.userid = 1, pb.correlationid = "not-a-uuid";
    size_t blen = backend__buy_item_event__pack(&pb, body + 64);
    publish_raw(GF_EVENT_BUY_ITEM, GF_EVENTS_CONTENT_TYPE, body + 64, blen, "poison-2");
    publish_raw(GF_EVENT_BUY_ITEM, GF_EVENTS_CONTENT_TYPE, "", 0, "poison-3");
    struct ev good;
    ev_new(&good, fresh_user(), 0);
    publish(&good, 1);

    assert_int_equal(wait_user(good.user, 1), 1);
    assert_int_equal(wait_depth(DEAD_QUEUE, dead0 + 7), dead0 + 7);
    assert_int_equal(wait_depth(gf_events_eventlog_queue.name, 0), 0);
    assert_int_equal(sql_ll(W.db, "SELECT count(*) FROM event WHERE correlation_id = '%s'", cid),
                     0);
    assert_true(metric("eventlog_events_dead_lettered_total{reason=\"undecodable\"}") >= 1);
    assert_true(metric("eventlog_events_dead_lettered_total{reason=\"unknown_type\"}") >= 1);
    assert_true(metric("eventlog_events_dead_lettered_total{reason=\"invalid_field\"}") >= 2);
    assert_true(metric("eventlog_events_dead_lettered_total{reason=\"bad_content_type\"}") >= 1);
    assert_true(metric("eventlog_events_dead_lettered_total{reason=\"message_id_mismatch\"}") >= 1);
    assert_true(metric("eventlog_events_dead_lettered_total{reason=\"bad_correlation_id\"}") >= 1);
    struct res r;
    assert_int_equal(get("/readyz", &r), 200);
    res_free(&r);
}

/* A publisher on its own thread and connection, at a steady pace, while the test breaks
 * things. */
struct feeder {
    pthread_t thread;
    struct ev *e;
    int n, per_batch, pause_ms;
    atomic_int published;
    bool ok;
};

static void *feed(void *arg)
{
    struct feeder *f = arg;
    struct gf_amqp_options o = {.url = W.rmq.url, .name = "test-feeder", .timeout_ms = 5000};
    enum gf_status st;
    struct gf_amqp_conn *c = gf_amqp_connect(&o, &st);
    f->ok = c != NULL && gf_amqp_confirm_select(c) == GF_OK;
    for (int i = 0; f->ok && i < f->n; i += f->per_batch) {
        int k = f->n - i < f->per_batch ? f->n - i : f->per_batch;
        struct gf_amqp_message m[64];
        uint8_t bodies[64][128];
        for (int j = 0; j < k; j++) {
            const struct ev *x = &f->e[i + j];
            Backend__BuyItemEvent pb = BACKEND__BUY_ITEM_EVENT__INIT;
            pb.userid = x->user, pb.itemid = x->item, pb.useritemid = x->user_item;
            pb.correlationid = (char *)x->cid;
            m[j] = (struct gf_amqp_message){
                .exchange = GF_EVENTS_EXCHANGE,
                .routing_key = GF_EVENT_BUY_ITEM,
                .body = bodies[j],
                .len = backend__buy_item_event__pack(&pb, bodies[j]),
                .content_type = GF_EVENTS_CONTENT_TYPE,
                .type = GF_EVENT_BUY_ITEM,
                .message_id = x->cid,
                .correlation_id = x->cid,
                .occurred_at_us = gf_wall_us(),
            };
        }
        f->ok = gf_amqp_publish(c, m, k, CONFIRM_MS) == GF_OK;
        for (int j = 0; f->ok && j < k; j++)
            f->ok = m[j].outcome == GF_AMQP_CONFIRMED;
        atomic_fetch_add(&f->published, k);
        gf_sleep_ms(f->pause_ms, NULL);
    }
    gf_amqp_close(c);
    return NULL;
}

static struct feeder *feeder_start(uint32_t user, int n, int per_batch, int pause_ms)
{
    struct feeder *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->e = calloc((size_t)n, sizeof *f->e);
    assert_non_null(f->e);
    for (int i = 0; i < n; i++)
        ev_new(&f->e[i], user, i);
    f->n = n, f->per_batch = per_batch, f->pause_ms = pause_ms;
    assert_int_equal(pthread_create(&f->thread, NULL, feed, f), 0);
    return f;
}

static void feeder_join(struct feeder *f)
{
    pthread_join(f->thread, NULL);
    assert_true(f->ok);
}

static void feeder_free(struct feeder *f)
{
    free(f->e);
    free(f);
}

/* The broker drops the consumer's connection while events stream in; then again while a batch
 * is held inside its INSERT (by a lock of the test's): that batch commits after the connection
 * is gone, so its ack cannot arrive and the broker delivers it again. Every event is stored
 * once. */
static void a_dropped_broker_connection_loses_and_doubles_nothing(void **state)
{
    (void)state;
    enum { N = 1200, M = 300 };
    uint32_t user = fresh_user(), held_user = fresh_user();
    double reconnects = metric("eventlog_consumer_reconnects_total{queue=\"eventlog.events\"}");
    double redelivered = metric("eventlog_consumer_redelivered_total{queue=\"eventlog.events\"}");
    double dups = metric("eventlog_events_duplicate_total");
    struct feeder *f = feeder_start(user, N, 10, 10);
    assert_true(wait_user(user, 200) >= 200);
    assert_true(h_rmq_close_connections(&W.rmq, CONSUMER_NAME) >= 1);
    feeder_join(f);
    assert_stored_once(user, f->e, N);

    struct ev *e = calloc(M, sizeof *e);
    assert_non_null(e);
    for (int i = 0; i < M; i++)
        ev_new(&e[i], held_user, i);
    sql_exec(W.db, "BEGIN");
    sql_exec(W.db, "LOCK TABLE event IN SHARE MODE"); /* reads pass, the INSERT waits */
    publish(e, M);
    gf_sleep_ms(300, NULL);
    assert_true(h_rmq_close_connections(&W.rmq, CONSUMER_NAME) >= 1);
    sql_exec(W.db, "COMMIT");
    assert_stored_once(held_user, e, M);

    assert_int_equal(wait_depth(gf_events_eventlog_queue.name, 0), 0);
    assert_true(wait_status("/readyz", 200, WAIT_MS));
    assert_true(metric("eventlog_consumer_reconnects_total{queue=\"eventlog.events\"}") >=
                reconnects + 2);
    double again =
        metric("eventlog_consumer_redelivered_total{queue=\"eventlog.events\"}") - redelivered;
    double doubled = metric("eventlog_events_duplicate_total") - dups;
    print_message("broker drops: %.0f deliveries came again, %.0f of them stored already\n", again,
                  doubled);
    assert_true(doubled > 0);
    feeder_free(f);
    free(e);
}

/* Lines of the eventlog log holding s. */
static int log_lines_with(const char *s)
{
    FILE *fp = fopen(W.log, "r");
    assert_non_null(fp);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, fp) != NULL)
        n += strstr(line, s) != NULL;
    fclose(fp);
    return n;
}

/* eventlog-db restarts while events stream in: the refused batches stay with the broker and
 * are stored once it is back; the outage is logged once. */
static void a_restarted_database_loses_nothing(void **state)
{
    (void)state;
    enum { N = 1200 };
    uint32_t user = fresh_user();
    int outage_lines = log_lines_with("eventlog-db is unavailable");
    int back_lines = log_lines_with("eventlog-db is back");
    int reminders = log_lines_with("eventlog-db still unavailable");
    double failures = metric("eventlog_consumer_handler_failures_total{queue=\"eventlog.events\"}");
    struct feeder *f = feeder_start(user, N, 20, 10);
    assert_true(wait_user(user, 300) >= 300);
    assert_int_equal(h_pg_restart(&W.pg), 0);
    PQreset(W.db);
    assert_int_equal(PQstatus(W.db), CONNECTION_OK);
    feeder_join(f);
    assert_stored_once(user, f->e, N);
    assert_int_equal(wait_depth(gf_events_eventlog_queue.name, 0), 0);
    assert_true(wait_status("/readyz", 200, WAIT_MS));
    print_message("database restart: %.0f batches refused while it was down\n",
                  metric("eventlog_consumer_handler_failures_total{queue=\"eventlog.events\"}") -
                      failures);
    assert_int_equal(log_lines_with("eventlog-db is unavailable"), outage_lines + 1);
    assert_int_equal(log_lines_with("eventlog-db is back"), back_lines + 1);
    assert_int_equal(log_lines_with("eventlog-db still unavailable"), reminders);
    feeder_free(f);
}

/* ---- the auction saga's events ------------------------------------------------------------- */

/* One event as the backend's relay publishes it: routing key and type the name, mandatory (so
 * CONFIRMED proves that eventlog.events is bound to the name), message_id as given. */
static void publish_event(const char *name, const ProtobufCMessage *pb, const char *message_id,
                          const char *cid)
{
    uint8_t body[256];
    assert_true(protobuf_c_message_get_packed_size(pb) <= sizeof body);
    struct gf_amqp_message m = {
        .exchange = GF_EVENTS_EXCHANGE,
        .routing_key = name,
        .body = body,
        .len = protobuf_c_message_pack(pb, body),
        .content_type = GF_EVENTS_CONTENT_TYPE,
        .type = name,
        .message_id = message_id,
        .correlation_id = cid,
        .occurred_at_us = gf_wall_us(),
    };
    assert_int_equal(gf_amqp_publish(W.pub, &m, 1, CONFIRM_MS), GF_OK);
    assert_int_equal(m.outcome, GF_AMQP_CONFIRMED);
}

/* Lines of the eventlog log holding both a and b. */
static int log_lines_with_both(const char *a, const char *b)
{
    FILE *fp = fopen(W.log, "r");
    assert_non_null(fp);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, fp) != NULL)
        n += strstr(line, a) != NULL && strstr(line, b) != NULL;
    fclose(fp);
    return n;
}

/* The auction's three events, each published twice, are stored once each under the user they
 * concern (the outbid bidder, the seller) with their fields and sentence, and served; invalid
 * ones are dead-lettered with their reason and stored nowhere. */
static void auction_events_are_stored_once_and_invalid_ones_dead_lettered(void **state)
{
    (void)state;
    uint32_t bidder = fresh_user(), seller = fresh_user(), winner = fresh_user();
    uint32_t nobody = fresh_user(); /* the invalid events' user: nothing may be stored for it */
    long dead0 = h_rmq_queue_depth(&W.rmq, DEAD_QUEUE);
    assert_true(dead0 >= 0);
    double invalid0 = metric("eventlog_events_dead_lettered_total{reason=\"invalid_field\"}");
    double badcid0 = metric("eventlog_events_dead_lettered_total{reason=\"bad_correlation_id\"}");
    char outbid_cid[37], won_cid[37], unsold_cid[37], cancelled_cid[37];
    new_cid(outbid_cid), new_cid(won_cid), new_cid(unsold_cid), new_cid(cancelled_cid);

    Backend__AuctionOutbidEvent o = BACKEND__AUCTION_OUTBID_EVENT__INIT;
    o.auctionid = 70, o.userid = bidder, o.bidid = 120, o.amount = 50, o.newbidid = 130;
    o.newamount = 60, o.itemid = 2, o.correlationid = outbid_cid;
    Backend__AuctionSettledEvent won = BACKEND__AUCTION_SETTLED_EVENT__INIT;
    won.auctionid = 70, won.sellerid = seller, won.winnerid = winner, won.itemid = 2;
    won.amount = 60, won.bidid = 130, won.useritemid = 210, won.correlationid = won_cid;
    Backend__AuctionSettledEvent unsold = BACKEND__AUCTION_SETTLED_EVENT__INIT;
    unsold.auctionid = 71, unsold.sellerid = seller, unsold.itemid = 2, unsold.useritemid = 200;
    unsold.correlationid = unsold_cid;
    Backend__AuctionCancelledEvent c = BACKEND__AUCTION_CANCELLED_EVENT__INIT;
    c.auctionid = 72, c.sellerid = seller, c.itemid = 2, c.useritemid = 200;
    c.correlationid = cancelled_cid;
    for (int round = 0; round < 2; round++) { /* the second round: duplicates */
        publish_event(GF_EVENT_AUCTION_OUTBID, &o.base, outbid_cid, outbid_cid);
        publish_event(GF_EVENT_AUCTION_SETTLED, &won.base, won_cid, won_cid);
        publish_event(GF_EVENT_AUCTION_SETTLED, &unsold.base, unsold_cid, unsold_cid);
        publish_event(GF_EVENT_AUCTION_CANCELLED, &c.base, cancelled_cid, cancelled_cid);
    }

    /* Invalid: a required field 0 (invalid_field) and a correlation id that is no UUID
     * (bad_correlation_id), one of each per event. */
    struct {
        const char *name;
        ProtobufCMessage *pb;
        char mid[48];
        const char *reason;
    } bad[6];
    Backend__AuctionOutbidEvent bo[2] = {o, o};
    bo[0].userid = nobody, bo[0].newamount = 0;
    bo[1].userid = nobody, bo[1].correlationid = "bid-130";
    Backend__AuctionSettledEvent bs[2] = {won, won};
    bs[0].sellerid = nobody, bs[0].bidid = 0; /* a winner without the winning bid */
    bs[1].sellerid = nobody, bs[1].correlationid = "";
    Backend__AuctionCancelledEvent bc[2] = {c, c};
    bc[0].sellerid = nobody, bc[0].useritemid = 0;
    bc[1].sellerid = nobody, bc[1].correlationid = "72";
    for (int i = 0; i < 6; i++) {
        bad[i].reason = i % 2 == 0 ? "invalid_field" : "bad_correlation_id";
        snprintf(bad[i].mid, sizeof bad[i].mid, "auction-poison-%d-%u", i, nobody);
    }
    bad[0].name = bad[1].name = GF_EVENT_AUCTION_OUTBID;
    bad[0].pb = &bo[0].base, bad[1].pb = &bo[1].base;
    bad[2].name = bad[3].name = GF_EVENT_AUCTION_SETTLED;
    bad[2].pb = &bs[0].base, bad[3].pb = &bs[1].base;
    bad[4].name = bad[5].name = GF_EVENT_AUCTION_CANCELLED;
    bad[4].pb = &bc[0].base, bad[5].pb = &bc[1].base;
    for (int i = 0; i < 6; i++)
        publish_event(bad[i].name, bad[i].pb, bad[i].mid, NULL);

    assert_int_equal(wait_user(bidder, 1), 1);
    assert_int_equal(wait_user(seller, 3), 3);
    assert_int_equal(wait_depth(DEAD_QUEUE, dead0 + 6), dead0 + 6);
    assert_int_equal(wait_depth(gf_events_eventlog_queue.name, 0), 0);
    gf_sleep_ms(300, NULL); /* a late double would show now */
    assert_int_equal(count_user(bidder), 1);
    assert_int_equal(count_user(seller), 3);
    assert_int_equal(count_user(winner), 0); /* a settlement is the seller's */
    assert_int_equal(count_user(nobody), 0);
    assert_int_equal(
        sql_ll(W.db,
               "SELECT count(*) FROM event WHERE data->>'auctionId' IN ('70','71','72')"
               " AND user_id NOT IN (%u, %u)",
               bidder, seller),
        0);
    for (int i = 0; i < 6; i++) {
        if (log_lines_with_both(bad[i].mid, bad[i].reason) != 1)
            fail_msg("%s %s: not dead-lettered once with reason %s (log %s)", bad[i].name,
                     bad[i].mid, bad[i].reason, W.log);
    }
    assert_true(metric("eventlog_events_dead_lettered_total{reason=\"invalid_field\"}") ==
                invalid0 + 3);
    assert_true(metric("eventlog_events_dead_lettered_total{reason=\"bad_correlation_id\"}") ==
                badcid0 + 3);

    /* Each row: name, identity, user, sentence and fields. */
    static const char *const fmt_text[] = {
        "user %u was outbid on auction 70: bid 120 of 50 GXP refunded, new bid 130 of 60",
        "auction 70 settled: user %u won item 2 for 60 GXP from user %u",
        "auction 71 ended without bids: item 2 went back to user %u",
        "auction 72 cancelled by user %u: item 2 went back",
    };
    const char *cids[] = {outbid_cid, won_cid, unsold_cid, cancelled_cid};
    const char *names[] = {GF_EVENT_AUCTION_OUTBID, GF_EVENT_AUCTION_SETTLED,
                           GF_EVENT_AUCTION_SETTLED, GF_EVENT_AUCTION_CANCELLED};
    char texts[4][160];
    snprintf(texts[0], sizeof texts[0], fmt_text[0], bidder);
    snprintf(texts[1], sizeof texts[1], fmt_text[1], winner, seller);
    snprintf(texts[2], sizeof texts[2], fmt_text[2], seller);
    snprintf(texts[3], sizeof texts[3], fmt_text[3], seller);
    for (int i = 0; i < 4; i++) {
        char sql[400];
        snprintf(sql, sizeof sql,
                 "SELECT event_name, message_id, user_id, text, data FROM event"
                 " WHERE correlation_id = '%s'",
                 cids[i]);
        PGresult *q = sql_checked(PQexec(W.db, sql), sql);
        assert_int_equal(PQntuples(q), 1);
        assert_string_equal(PQgetvalue(q, 0, 0), names[i]);
        assert_string_equal(PQgetvalue(q, 0, 1), cids[i]);
        assert_int_equal(strtoll(PQgetvalue(q, 0, 2), NULL, 10), i == 0 ? bidder : seller);
        assert_string_equal(PQgetvalue(q, 0, 3), texts[i]);
        json_t *data = json_loads(PQgetvalue(q, 0, 4), 0, NULL);
        assert_non_null(data);
        assert_string_equal(json_string_value(json_object_get(data, "correlationId")), cids[i]);
        assert_int_equal(json_integer_value(json_object_get(data, "auctionId")),
                         70 + (i > 1) + (i > 2));
        assert_int_equal(json_object_size(data), i < 3 ? 8 : 5);
        if (i == 0) {
            assert_int_equal(json_integer_value(json_object_get(data, "newBidId")), 130);
            assert_int_equal(json_integer_value(json_object_get(data, "newAmount")), 60);
        } else if (i == 1) {
            assert_int_equal(json_integer_value(json_object_get(data, "winnerId")), winner);
            assert_int_equal(json_integer_value(json_object_get(data, "userItemId")), 210);
        }
        json_decref(data);
        PQclear(q);
    }

    /* Served: the seller's log holds its three auction events, newest first. */
    char path[200];
    snprintf(path, sizeof path, "/eventlog/events?userId=%u", seller);
    struct res r;
    assert_int_equal(get(path, &r), 200);
    json_t *events = json_object_get(r.json, "events");
    assert_int_equal(json_array_size(events), 3);
    for (int i = 0; i < 3; i++) {
        json_t *ev = json_array_get(events, (size_t)i);
        assert_string_equal(json_string_value(json_object_get(ev, "event")), names[3 - i]);
        assert_string_equal(json_string_value(json_object_get(ev, "text")), texts[3 - i]);
        assert_string_equal(json_string_value(json_object_get(ev, "correlationId")), cids[3 - i]);
    }
    res_free(&r);
}

/* Newest first without after=; after= pages forward with next; filters. */
static void http_pages_and_filters(void **state)
{
    (void)state;
    enum { N = 25 };
    uint32_t user = fresh_user(), other = fresh_user();
    struct ev e[N], o;
    for (int i = 0; i < N; i++)
        ev_new(&e[i], user, i);
    ev_new(&o, other, 0);
    publish(e, N);
    publish(&o, 1);
    assert_int_equal(wait_user(user, N), N);
    assert_int_equal(wait_user(other, 1), 1);
    long long ids[N];
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT id FROM event WHERE user_id = %u ORDER BY id", user);
    PGresult *q = sql_checked(PQexec(W.db, sql), sql);
    assert_int_equal(PQntuples(q), N);
    for (int i = 0; i < N; i++)
        ids[i] = strtoll(PQgetvalue(q, i, 0), NULL, 10);
    PQclear(q);

    struct res r;
    char path[256];
    /* Newest first. */
    snprintf(path, sizeof path, "/eventlog/events?userId=%u&limit=10", user);
    assert_int_equal(get(path, &r), 200);
    json_t *events = json_object_get(r.json, "events");
    assert_int_equal(json_array_size(events), 10);
    for (int i = 0; i < 10; i++) {
        json_t *ev = json_array_get(events, (size_t)i);
        assert_int_equal(json_integer_value(json_object_get(ev, "id")), ids[N - 1 - i]);
        assert_int_equal(json_integer_value(json_object_get(ev, "userId")), user);
    }
    assert_int_equal(json_integer_value(json_object_get(r.json, "next")), ids[N - 1]);
    res_free(&r);

    /* Forward from the start: 10, 10, 5, next null on the last page. */
    long long after = 0;
    int seen = 0;
    for (int page = 0; page < 3; page++) {
        snprintf(path, sizeof path, "/eventlog/events?limit=10&userId=%u&after=%lld", user, after);
        assert_int_equal(get(path, &r), 200);
        events = json_object_get(r.json, "events");
        size_t n = json_array_size(events);
        assert_int_equal(n, page < 2 ? 10 : 5);
        for (size_t i = 0; i < n; i++, seen++)
            assert_int_equal(json_integer_value(json_object_get(json_array_get(events, i), "id")),
                             ids[seen]);
        json_t *next = json_object_get(r.json, "next");
        if (page < 2) {
            assert_int_equal(json_integer_value(next), ids[seen - 1]);
            after = json_integer_value(next);
        } else {
            assert_true(json_is_null(next));
        }
        res_free(&r);
    }
    assert_int_equal(seen, N);

    /* Nothing after the last one. */
    snprintf(path, sizeof path, "/eventlog/events?userId=%u&after=%lld", user, ids[N - 1]);
    assert_int_equal(get(path, &r), 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "events")), 0);
    assert_true(json_is_null(json_object_get(r.json, "next")));
    res_free(&r);

    /* Correlation id, alone and with the right and the wrong user. */
    snprintf(path, sizeof path, "/eventlog/events?correlationId=%s", e[7].cid);
    assert_int_equal(get(path, &r), 200);
    events = json_object_get(r.json, "events");
    assert_int_equal(json_array_size(events), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(events, 0), "id")), ids[7]);
    res_free(&r);
    snprintf(path, sizeof path, "/eventlog/events?correlationId=%s&userId=%u&after=0", e[7].cid,
             user);
    assert_int_equal(get(path, &r), 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "events")), 1);
    res_free(&r);
    snprintf(path, sizeof path, "/eventlog/events?correlationId=%s&userId=%u", e[7].cid, other);
    assert_int_equal(get(path, &r), 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "events")), 0);
    assert_true(json_is_null(json_object_get(r.json, "next")));
    res_free(&r);

    /* Every user: newest first, and a limit cut to EVENTLOG_LIST_CAP. */
    assert_int_equal(get("/eventlog/events?limit=100000", &r), 200);
    events = json_object_get(r.json, "events");
    assert_int_equal(json_array_size(events), LIST_CAP);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(events, 0), "userId")),
                     other);
    res_free(&r);
    assert_int_equal(get("/eventlog/events", &r), 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "events")), LIST_CAP);
    res_free(&r);
    assert_int_equal(get("/eventlog/events?after=0", &r), 200);
    events = json_object_get(r.json, "events");
    assert_int_equal(json_array_size(events), LIST_CAP);
    assert_int_equal(
        json_integer_value(json_object_get(r.json, "next")),
        json_integer_value(json_object_get(json_array_get(events, LIST_CAP - 1), "id")));
    res_free(&r);

    /* Methods and paths. */
    assert_int_equal(req("POST", "/eventlog/events", &r), 405);
    assert_error_shape(&r, "method_not_allowed");
    assert_string_equal(r.allow, "GET, HEAD");
    res_free(&r);
    assert_int_equal(req("DELETE", "/readyz", &r), 405);
    res_free(&r);
    assert_int_equal(get("/eventlog/event", &r), 404);
    assert_error_shape(&r, "not_found");
    res_free(&r);
    assert_int_equal(get("/eventlog/events/1", &r), 404);
    res_free(&r);
    assert_int_equal(get("/", &r), 404);
    res_free(&r);
    assert_int_equal(req("HEAD", "/eventlog/events", &r), 200);
    res_free(&r);
}

/* Bad query strings: 400 with the error shape, never SQL text. */
static void bad_query_strings_are_400(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "userId=0",
        "userId=-1",
        "userId=abc",
        "userId=1.5",
        "userId=",
        "userId=4294967296",
        "userId=%201",
        "userId=0000000000000000000000000000000000000000000000000000000000000000000001",
        "limit=0",
        "limit=-1",
        "limit=ten",
        "limit=1e3",
        "limit=99999999999999999999",
        "after=-1",
        "after=x",
        "after=9223372036854775808",
        "correlationId=nope",
        "correlationId=0b7f6f3e-2a4c-4d0e-9f51-3c1d2b7a9e100",
        "correlationId=0b7f6f3e2a4c4d0e9f513c1d2b7a9e10",
        "correlationId=%27%3B%20DROP%20TABLE%20event%3B--",
        "userId=1&limit=0",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "/eventlog/events?%s", bad[i]);
        struct res r;
        long st = get(path, &r);
        if (st != 400)
            fail_msg("%s answered %ld: %s", path, st, r.body);
        assert_error_shape(&r, "invalid_parameter");
        res_free(&r);
    }
    static const struct {
        const char *query, *code;
    } named[] = {
        {"user=1", "unknown_parameter"},
        {"userId=1&userId=2", "duplicate_parameter"},
        {"limit=5&limit=5", "duplicate_parameter"},
        {"userId=1%00", "invalid_parameter"},
        {"userId=1&sort=id", "unknown_parameter"},
    };
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "/eventlog/events?%s", named[i].query);
        struct res r;
        long st = get(path, &r);
        if (st != 400)
            fail_msg("%s answered %ld: %s", path, st, r.body);
        assert_error_shape(&r, named[i].code);
        res_free(&r);
    }
    assert_true(sql_ll(W.db, "SELECT count(*) FROM event") > 0);
    assert_true(metric("eventlog_http_requests_total{route=\"/eventlog/events\",method=\"GET\","
                       "code=\"400\"}") >=
                (double)(sizeof bad / sizeof bad[0] + sizeof named / sizeof named[0]));
    assert_true(metric("eventlog_http_errors_total{status=\"400\",error=\"invalid_parameter\"}") >=
                (double)(sizeof bad / sizeof bad[0]));
}

/* SIGTERM while events stream in: exit 0 at once, the batch in hand settled or left to the
 * broker; the next start stores the rest, each event once. */
static void sigterm_under_load_loses_nothing(void **state)
{
    (void)state;
    enum { N = 1000 };
    uint32_t user = fresh_user();
    struct feeder *f = feeder_start(user, N, 20, 5);
    assert_true(wait_user(user, 200) >= 200);
    int64_t t0 = gf_mono_ms();
    stop_eventlog();
    assert_true(gf_mono_ms() - t0 < 5000);
    long long stored = count_user(user);
    feeder_join(f);
    W.pid = spawn(W.rmq.url);
    assert_true(wait_status("/readyz", 200, WAIT_MS));
    assert_stored_once(user, f->e, N);
    print_message("SIGTERM under load: %lld of %d stored before the stop\n", stored, N);
    feeder_free(f);
}

/* SIGTERM while idle: exit 0 (under ASan: no leak). */
static void sigterm_exits_0(void **state)
{
    (void)state;
    stop_eventlog();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(readyz_waits_for_database_and_broker),
        cmocka_unit_test(a_valid_event_is_stored_with_every_field_and_served),
        cmocka_unit_test(the_same_event_twice_is_stored_once),
        cmocka_unit_test(a_backlog_of_500_is_stored_exactly_once),
        cmocka_unit_test(poison_messages_are_dead_lettered_and_do_not_block),
        cmocka_unit_test(auction_events_are_stored_once_and_invalid_ones_dead_lettered),
        cmocka_unit_test(a_dropped_broker_connection_loses_and_doubles_nothing),
        cmocka_unit_test(a_restarted_database_loses_nothing),
        cmocka_unit_test(http_pages_and_filters),
        cmocka_unit_test(bad_query_strings_are_400),
        cmocka_unit_test(sigterm_under_load_loses_nothing),
        cmocka_unit_test(sigterm_exits_0),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
