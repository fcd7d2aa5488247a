/* Unit tests for lib/src/http_api.c, the services' HTTP front end: the status → HTTP table and
 * path ids (pure), then a real server on 127.0.0.1 with a small route table, driven by the raw
 * client: 404 and 405 (Allow lists every method of the path, GET with HEAD), the readiness gate,
 * the error body (its fallback when the message is not UTF-8, the defaults of a status), the
 * end of a request (Retry-After on every 503 that has none, one only), and the metric shape
 * <service>_http_requests_total{route,method,code}, _request_duration_seconds{route,method},
 * _http_errors_total{status,error}. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "raw_client.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gf/http.h"
#include "gf/http_api.h"
#include "gf/log.h"
#include "gf/metrics.h"

/* ---- pure ------------------------------------------------------------------------------- */

static void the_status_table_maps_every_status(void **state)
{
    (void)state;
    static const struct {
        enum gf_status st;
        int code;
    } table[] = {
        {GF_OK, 200},         {GF_EINVAL, 400},
        {GF_ENOTFOUND, 404},  {GF_EEXISTS, 409},
        {GF_ECONFLICT, 409},  {GF_EPRECONDITION, 412},
        {GF_ERANGE, 400},     {GF_EUNAVAILABLE, 503},
        {GF_ESHUTDOWN, 503},  {GF_ETIMEOUT, 504},
        {GF_ETOOBIG, 413},    {GF_ENOMEM, 503},
        {GF_EUNKNOWN, 503},   {GF_EINTERNAL, 500},
        {GF_PENDING, 500},    {GF_EUNAUTHENTICATED, 401},
        {GF_EFORBIDDEN, 403}, {GF_ERATELIMITED, 429},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        assert_int_equal(gf_http_api_code(table[i].st), table[i].code);
    assert_int_equal(gf_http_api_code((enum gf_status)999), 500);
    assert_string_equal(gf_http_api_message(400), "the request is invalid");
    assert_string_equal(gf_http_api_message(503), "a dependency is unavailable; retry later");
    assert_string_equal(gf_http_api_message(413), "internal error"); /* no message of its own */
}

static void path_ids_are_positive_integers_up_to_2_pow_53(void **state)
{
    (void)state;
    int64_t id = -1;
    assert_true(gf_http_path_id("1", &id));
    assert_int_equal(id, 1);
    assert_true(gf_http_path_id("9007199254740992", &id));
    assert_true(id == GF_HTTP_ID_MAX);
    assert_true(gf_http_path_id("007", &id));
    assert_int_equal(id, 7);
    static const char *const bad[] = {
        "0", "", "abc", "1a", "-1", "+1", "1.0", " 1", "9007199254740993", "99999999999999999999",
        NULL};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        id = -1;
        if (gf_http_path_id(bad[i], &id))
            fail_msg("accepted %s", bad[i] ? bad[i] : "(null)");
        assert_int_equal(id, -1);
    }
}

static void log_safe_keeps_visible_ascii_only(void **state)
{
    (void)state;
    char out[8];
    gf_log_safe(out, sizeof out, "a b\"c\x01\xff");
    assert_string_equal(out, "a?b?c??");
    gf_log_safe(out, sizeof out, "0123456789");
    assert_string_equal(out, "0123456");
    gf_log_safe(out, sizeof out, NULL);
    assert_string_equal(out, "");
    gf_log_safe(out, 1, "abc");
    assert_string_equal(out, "");
}

/* ---- the routes of the test api ---------------------------------------------------------- */

static atomic_bool g_ready;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t g_seen_id;      /* the path id the last /thing/:id saw */
static unsigned g_seen_method; /* and its method */

static void run_thing(struct gf_http_ctx *c)
{
    gf_http_api_reply_json(c, 200, json_pack("{s:s}", "thing", "yes"));
}

static void run_thing_id(struct gf_http_ctx *c)
{
    pthread_mutex_lock(&g_lock);
    g_seen_id = c->path_id;
    g_seen_method = c->method;
    pthread_mutex_unlock(&g_lock);
    gf_http_api_reply_json(c, 200, json_pack("{s:I}", "id", (json_int_t)c->path_id));
}

static void run_busy(struct gf_http_ctx *c)
{
    gf_http_api_reply_status(c, GF_EUNAVAILABLE, NULL, NULL);
}

static void run_busy_own(struct gf_http_ctx *c)
{
    gf_http_add_header(c->resp, "Retry-After", "7");
    gf_http_api_reply_error(c, 503, "draining", "come back later");
}

static void run_not_utf8(struct gf_http_ctx *c)
{
    gf_http_api_reply_error(c, 400, "Bad-Code", "cut \xc3");
}

static void run_conflict(struct gf_http_ctx *c)
{
    gf_http_api_reply_status(c, GF_ECONFLICT, NULL, "");
}

static const struct gf_http_route routes[] = {
    {"/thing", GF_HTTP_GET, false, NULL, run_thing, GF_HTTP_PUBLIC},
    {"/thing/:id", GF_HTTP_GET | GF_HTTP_DELETE, false, NULL, run_thing_id, GF_HTTP_PUBLIC},
    {"/thing/:id", GF_HTTP_PATCH, false, NULL, run_thing_id, GF_HTTP_PUBLIC},
    {"/gated", GF_HTTP_GET, true, NULL, run_thing, GF_HTTP_PUBLIC},
    {"/busy", GF_HTTP_GET, false, NULL, run_busy, GF_HTTP_PUBLIC},
    {"/busy-own", GF_HTTP_GET, false, NULL, run_busy_own, GF_HTTP_PUBLIC},
    {"/not-utf8", GF_HTTP_POST, false, NULL, run_not_utf8, GF_HTTP_PUBLIC},
    {"/conflict", GF_HTTP_GET, false, NULL, run_conflict, GF_HTTP_PUBLIC},
    {"/metrics", GF_HTTP_GET, false, NULL, gf_http_api_reply_metrics, GF_HTTP_PUBLIC},
};

static struct gf_http_server *g_srv;
static int g_port;

static int start_server(void **state)
{
    (void)state;
    struct gf_http_server_options opt = {
        .addr = "127.0.0.1:0",
        .threads = 2,
        .max_connections = 16,
        .connection_timeout_s = 10,
        .max_body = 1024,
    };
    g_srv =
        gf_http_api_start(&(struct gf_http_api_options){.service = "tapi",
                                                        .routes = routes,
                                                        .nroutes = sizeof routes / sizeof routes[0],
                                                        .ready = &g_ready},
                          &opt, &g_port);
    return g_srv != NULL ? 0 : -1;
}

static int stop_server(void **state)
{
    (void)state;
    gf_http_server_stop(g_srv); /* frees the api */
    g_srv = NULL;
    return 0;
}

/* ---- a request and its answer ------------------------------------------------------------ */

struct answer {
    int status;
    char raw[65536];
    const char *body; /* in raw */
};

/* Sends method path (with a body when not NULL) on a connection of its own and reads the
 * answer whole (the server closes: Connection: close). */
static void request(const char *method, const char *path, const char *body, struct answer *a)
{
    char head[512];
    snprintf(head, sizeof head,
             "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n",
             method, path, body ? strlen(body) : 0);
    int fd = client_connect(g_port);
    send_str(fd, head);
    if (body != NULL)
        send_str(fd, body);
    a->status = client_read_answer(fd, a->raw, sizeof a->raw, NULL);
    close(fd);
    char *end = strstr(a->raw, "\r\n\r\n");
    assert_non_null(end);
    a->body = end + 4;
}

/* How many headers of this name the answer has; the first one's value into out. */
static int header(const struct answer *a, const char *name, char *out, size_t n)
{
    return client_header(a->raw, name, out, n);
}

/* The answer is the error body with these message and code, and the answer's correlation id. */
static void assert_error(const struct answer *a, int status, const char *code, const char *message)
{
    assert_int_equal(a->status, status);
    char cid[64];
    assert_int_equal(header(a, "X-Correlation-Id", cid, sizeof cid), 1);
    json_error_t jerr;
    json_t *o = json_loads(a->body, 0, &jerr);
    if (o == NULL)
        fail_msg("not JSON: %s", a->body);
    assert_int_equal(json_object_size(o), 3);
    assert_string_equal(json_string_value(json_object_get(o, "message")), message);
    assert_string_equal(json_string_value(json_object_get(o, "error")), code);
    assert_string_equal(json_string_value(json_object_get(o, "correlationId")), cid);
    json_decref(o);
}

/* ---- routing ----------------------------------------------------------------------------- */

static void an_unknown_path_is_404_whatever_the_method(void **state)
{
    (void)state;
    struct answer a;
    request("GET", "/nothing", NULL, &a);
    assert_error(&a, 404, "not_found", "no such path");
    request("BREW", "/nothing", NULL, &a);
    assert_error(&a, 404, "not_found", "no such path");
    /* A path id must be a positive integer, else the path names nothing. */
    request("GET", "/thing/0", NULL, &a);
    assert_error(&a, 404, "not_found", "no such path");
    request("GET", "/thing/abc", NULL, &a);
    assert_error(&a, 404, "not_found", "no such path");
    request("GET", "/thing/", NULL, &a);
    assert_error(&a, 404, "not_found", "no such path");
}

static void a_known_path_with_another_method_is_405_with_allow(void **state)
{
    (void)state;
    struct answer a;
    char allow[64];
    request("POST", "/thing/5", "{}", &a);
    assert_error(&a, 405, "method_not_allowed", "this method is not allowed on this path");
    assert_int_equal(header(&a, "Allow", allow, sizeof allow), 1);
    assert_string_equal(allow, "GET, HEAD, PATCH, DELETE"); /* from both routes of the path */
    request("DELETE", "/thing", NULL, &a);
    assert_error(&a, 405, "method_not_allowed", "this method is not allowed on this path");
    assert_int_equal(header(&a, "Allow", allow, sizeof allow), 1);
    assert_string_equal(allow, "GET, HEAD");
    request("GET", "/not-utf8", NULL, &a);
    assert_int_equal(header(&a, "Allow", allow, sizeof allow), 1);
    assert_string_equal(allow, "POST");
}

static void routes_run_with_their_path_id_and_method(void **state)
{
    (void)state;
    struct answer a;
    request("PATCH", "/thing/9007199254740992", "{}", &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "{\"id\":9007199254740992}");
    pthread_mutex_lock(&g_lock);
    assert_true(g_seen_id == GF_HTTP_ID_MAX);
    assert_int_equal(g_seen_method, GF_HTTP_PATCH);
    pthread_mutex_unlock(&g_lock);
    request("HEAD", "/thing/12", NULL, &a); /* GET's route, no body sent */
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "");
    pthread_mutex_lock(&g_lock);
    assert_int_equal(g_seen_id, 12);
    assert_int_equal(g_seen_method, GF_HTTP_GET);
    pthread_mutex_unlock(&g_lock);
    request("DELETE", "/thing/3", NULL, &a);
    assert_int_equal(a.status, 200);
    pthread_mutex_lock(&g_lock);
    assert_int_equal(g_seen_method, GF_HTTP_DELETE);
    pthread_mutex_unlock(&g_lock);
}

static void a_route_that_needs_readiness_waits_for_it(void **state)
{
    (void)state;
    struct answer a;
    char v[16];
    atomic_store(&g_ready, false);
    request("GET", "/gated", NULL, &a);
    assert_error(&a, 503, "not_ready", "the service is starting; retry later");
    assert_int_equal(header(&a, "Retry-After", v, sizeof v), 1);
    assert_string_equal(v, "1");
    request("GET", "/thing", NULL, &a); /* the others answer meanwhile */
    assert_int_equal(a.status, 200);
    atomic_store(&g_ready, true);
    request("GET", "/gated", NULL, &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body, "{\"thing\":\"yes\"}");
}

/* ---- answers ----------------------------------------------------------------------------- */

static void every_503_has_one_retry_after(void **state)
{
    (void)state;
    struct answer a;
    char v[16];
    request("GET", "/busy", NULL, &a);
    assert_error(&a, 503, "unavailable", "a dependency is unavailable; retry later");
    assert_int_equal(header(&a, "Retry-After", v, sizeof v), 1);
    assert_string_equal(v, "1");
    request("GET", "/busy-own", NULL, &a); /* the route's own is kept, none added */
    assert_error(&a, 503, "draining", "come back later");
    assert_int_equal(header(&a, "Retry-After", v, sizeof v), 1);
    assert_string_equal(v, "7");
    request("GET", "/conflict", NULL, &a); /* not a 503: none */
    assert_int_equal(header(&a, "Retry-After", v, sizeof v), 0);
}

static void error_bodies_fall_back_to_the_status_defaults(void **state)
{
    (void)state;
    struct answer a;
    /* A message cut inside a UTF-8 character gives way to the status's own. */
    request("POST", "/not-utf8", "", &a);
    assert_error(&a, 400, "Bad-Code", "the request is invalid");
    /* A status alone: its name as the code, the default message for its HTTP status. */
    request("GET", "/conflict", NULL, &a);
    assert_error(&a, 409, "conflict", "the request conflicts with the current state");
}

/* ---- metrics ------------------------------------------------------------------------------ */

/* The value of the sample written exactly so in the exposition, or -1 when it is not there. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; (p = strstr(p, series)) != NULL; p += n) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    }
    return -1;
}

static void requests_are_counted_by_route_method_and_exact_code(void **state)
{
    (void)state;
    struct answer a;
    /* Each test above left its figures; these add their own, then the page is read once. */
    for (int i = 0; i < 3; i++)
        request("GET", "/thing/77", NULL, &a);
    request("HEAD", "/thing/77", NULL, &a);
    request("GET", "/metrics", NULL, &a);
    assert_int_equal(a.status, 200);
    char ct[64];
    header(&a, "Content-Type", ct, sizeof ct);
    assert_string_equal(ct, "text/plain; version=0.0.4");
    const char *m = a.body;
    /* 3 GETs here, 1 HEAD here and 1 in routes_run_with_their_path_id_and_method. */
    assert_true(sample(m, "tapi_http_requests_total{route=\"/thing/:id\",method=\"GET\","
                          "code=\"200\"}") == 5);
    assert_true(sample(m, "tapi_http_requests_total{route=\"/thing/:id\",method=\"PATCH\","
                          "code=\"200\"}") == 1);
    assert_true(sample(m, "tapi_http_requests_total{route=\"/thing/:id\",method=\"DELETE\","
                          "code=\"200\"}") == 1);
    assert_true(sample(m, "tapi_http_requests_total{route=\"/busy\",method=\"GET\","
                          "code=\"503\"}") == 1);
    assert_true(sample(m, "tapi_http_requests_total{route=\"/gated\",method=\"GET\","
                          "code=\"503\"}") == 1);
    assert_true(sample(m, "tapi_http_requests_total{route=\"/gated\",method=\"GET\","
                          "code=\"200\"}") == 1);
    /* 404s and 405s belong to no route. */
    assert_true(sample(m, "tapi_http_requests_total{route=\"unmatched\",method=\"\","
                          "code=\"404\"}") == 5);
    assert_true(sample(m, "tapi_http_requests_total{route=\"unmatched\",method=\"\","
                          "code=\"405\"}") == 3);
    /* A code a route never answered has no series. */
    assert_true(sample(m, "tapi_http_requests_total{route=\"/thing\",method=\"GET\","
                          "code=\"404\"}") == -1);
    /* Latency per route and method, registered at start: the idle ones too. */
    assert_true(sample(m, "tapi_http_request_duration_seconds_count{route=\"/thing/:id\","
                          "method=\"GET\"}") == 5);
    assert_true(sample(m, "tapi_http_request_duration_seconds_count{route=\"/metrics\","
                          "method=\"GET\"}") == 0);
    assert_true(sample(m, "tapi_http_request_duration_seconds_count{route=\"unmatched\","
                          "method=\"\"}") == 8);
    /* Errors by status and code; a code that is not snake_case is "other". */
    assert_true(sample(m, "tapi_http_errors_total{status=\"404\",error=\"not_found\"}") == 5);
    assert_true(sample(m, "tapi_http_errors_total{status=\"405\",error=\"method_not_allowed\"}") ==
                3);
    assert_true(sample(m, "tapi_http_errors_total{status=\"503\",error=\"not_ready\"}") == 1);
    assert_true(sample(m, "tapi_http_errors_total{status=\"503\",error=\"unavailable\"}") == 1);
    assert_true(sample(m, "tapi_http_errors_total{status=\"503\",error=\"draining\"}") == 1);
    assert_true(sample(m, "tapi_http_errors_total{status=\"400\",error=\"other\"}") == 1);
    assert_true(sample(m, "tapi_http_errors_total{status=\"409\",error=\"conflict\"}") == 2);
    assert_non_null(strstr(m, "# TYPE tapi_http_requests_total counter\n"));
    assert_non_null(strstr(m, "# TYPE tapi_http_request_duration_seconds histogram\n"));
    assert_non_null(strstr(m, "# TYPE tapi_http_errors_total counter\n"));
}

static void bad_route_tables_are_refused(void **state)
{
    (void)state;
    static const struct gf_http_route no_run[] = {
        {"/x", GF_HTTP_GET, false, NULL, NULL, GF_HTTP_PUBLIC}};
    static const struct gf_http_route no_method[] = {
        {"/x", 0, false, NULL, run_thing, GF_HTTP_PUBLIC}};
    static const struct gf_http_route quote[] = {
        {"/x\"", GF_HTTP_GET, false, NULL, run_thing, GF_HTTP_PUBLIC}};
    static const struct gf_http_route relative[] = {
        {"x", GF_HTTP_GET, false, NULL, run_thing, GF_HTTP_PUBLIC}};
    const struct gf_http_route *bad[] = {no_run, no_method, quote, relative};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_null(gf_http_api_new(
            &(struct gf_http_api_options){.service = "tbad", .routes = bad[i], .nroutes = 1}));
    assert_null(gf_http_api_new(&(struct gf_http_api_options){.routes = routes, .nroutes = 1}));
    /* A route that needs a token in an api with no keys to verify one. */
    static const struct gf_http_route guarded[] = {
        {"/x", GF_HTTP_GET, false, NULL, run_thing, GF_HTTP_SIGNED_IN}};
    assert_null(gf_http_api_new(
        &(struct gf_http_api_options){.service = "tbad", .routes = guarded, .nroutes = 1}));

    assert_null(gf_http_api_new(&(struct gf_http_api_options){.service = "tbad"}));
    gf_http_api_free(NULL);
}

/* ---- who may call what ---------------------------------------------------------------------- */

static struct gf_auth_keys *g_keys;
static char g_keydir[64];

/* ?userId=N: answers 200 when the caller may act for N. */
static void run_mine(struct gf_http_ctx *c)
{
    const char *q = gf_http_query(c->req, "userId");
    if (!gf_http_api_may_act_for(c, q != NULL ? atoll(q) : 0))
        return;
    gf_http_api_reply_json(c, 200,
                           json_pack("{s:I,s:s}", "sub", (json_int_t)c->who.user_id, "role",
                                     gf_role_name(c->who.role)));
}

/* The api's admit hook: refuses a request whose query says shed=1, and counts its calls. */
static atomic_int g_admit_calls;
static bool admit_unless_shed(struct gf_http_ctx *c)
{
    atomic_fetch_add(&g_admit_calls, 1);
    const char *q = gf_http_query(c->req, "shed");
    if (q == NULL || strcmp(q, "1") != 0)
        return true;
    gf_http_api_reply_error(c, 503, "overloaded", "shed by the hook");
    return false;
}

static const struct gf_http_route guarded_routes[] = {
    {"/open", GF_HTTP_GET, false, NULL, run_thing, GF_HTTP_PUBLIC},
    {"/mine", GF_HTTP_GET, false, NULL, run_mine, GF_HTTP_SIGNED_IN},
    {"/admin", GF_HTTP_GET, false, NULL, run_mine, GF_HTTP_ADMIN},
};

static int start_guarded(void **state)
{
    (void)state;
    char priv[128], pub[128], why[256];
    snprintf(g_keydir, sizeof g_keydir, "/tmp/gf-http-api-XXXXXX");
    if (mkdtemp(g_keydir) == NULL)
        return -1;
    snprintf(priv, sizeof priv, "%s/k.pem", g_keydir);
    snprintf(pub, sizeof pub, "%s/k.pub.pem", g_keydir);
    if (gf_auth_keygen(priv, pub) != GF_OK)
        return -1;
    g_keys = gf_auth_keys_load(g_keydir, priv, "gf-svc", "gf-svc-api", why, sizeof why);
    unlink(priv);
    unlink(pub);
    rmdir(g_keydir);
    if (g_keys == NULL)
        return -1;
    struct gf_http_server_options opt = {
        .addr = "127.0.0.1:0",
        .threads = 2,
        .max_connections = 16,
        .connection_timeout_s = 10,
        .max_body = 1024,
    };
    g_srv = gf_http_api_start(
        &(struct gf_http_api_options){.service = "tauth",
                                      .routes = guarded_routes,
                                      .nroutes = sizeof guarded_routes / sizeof guarded_routes[0],
                                      .auth = g_keys,
                                      .auth_leeway_s = 5,
                                      .admit = admit_unless_shed},
        &opt, &g_port);
    return g_srv != NULL ? 0 : -1;
}

static int stop_guarded(void **state)
{
    stop_server(state);
    gf_auth_keys_free(g_keys);
    return 0;
}

/* GET path with an Authorization header (NULL: none). */
static void request_auth(const char *path, const char *authorization, struct answer *a)
{
    char head[GF_AUTH_TOKEN_MAX + 256];
    snprintf(head, sizeof head, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s%s%s\r\n",
             path, authorization ? "Authorization: " : "", authorization ? authorization : "",
             authorization ? "\r\n" : "");
    int fd = client_connect(g_port);
    send_str(fd, head);
    a->status = client_read_answer(fd, a->raw, sizeof a->raw, NULL);
    close(fd);
    char *end = strstr(a->raw, "\r\n\r\n");
    assert_non_null(end);
    a->body = end + 4;
}

static char *bearer(enum gf_role role, int64_t sub, int64_t at, int64_t ttl)
{
    struct gf_auth_claims c = {.user_id = sub, .role = role, .name = "someone"};
    char *token = NULL;
    assert_int_equal(gf_auth_sign(g_keys, &c, at, ttl, &token), GF_OK);
    char *h = NULL;
    assert_true(asprintf(&h, "Bearer %s", token) > 0);
    free(token);
    return h;
}

static void expect(const char *path, const char *authorization, int status, const char *code)
{
    struct answer a;
    request_auth(path, authorization, &a);
    if (a.status != status || (code != NULL && strstr(a.body, code) == NULL))
        fail_msg("GET %s: %d %s, want %d %s", path, a.status, a.body, status, code ? code : "");
    char v[128];
    if (status == 401)
        assert_int_equal(header(&a, "WWW-Authenticate", v, sizeof v), 1);
}

static void routes_answer_by_who_calls(void **state)
{
    (void)state;
    int64_t now = (int64_t)time(NULL);
    char *user = bearer(GF_ROLE_USER, 7, now, 600);
    char *admin = bearer(GF_ROLE_ADMIN, 1, now, 600);
    char *expired = bearer(GF_ROLE_ADMIN, 1, now - 700, 600);
    char *early = bearer(GF_ROLE_ADMIN, 1, now + 600, 600);
    expect("/open", NULL, 200, NULL);
    expect("/open", "Bearer nonsense", 200, NULL); /* a public route does not look */
    expect("/mine?userId=7", NULL, 401, "\"error\":\"unauthenticated\"");
    expect("/mine?userId=7", "Basic dTpw", 401, "\"error\":\"invalid_token\"");
    expect("/mine?userId=7", "Bearer", 401, "\"error\":\"invalid_token\"");
    expect("/mine?userId=7", "Bearer a.b.c", 401, "\"error\":\"invalid_token\"");
    expect("/mine?userId=7", expired, 401, "\"error\":\"token_expired\"");
    expect("/mine?userId=7", early, 401, "\"error\":\"invalid_token\"");
    expect("/mine?userId=7", user, 200, "\"sub\":7");
    expect("/mine?userId=8", user, 403, "\"error\":\"forbidden\"");
    expect("/mine?userId=8", admin, 200, "\"role\":\"admin\"");
    expect("/admin?userId=7", user, 403, "\"error\":\"forbidden\"");
    expect("/admin?userId=7", admin, 200, NULL);
    /* The scheme is case-insensitive, spaces before the token are allowed. */
    char lower[GF_AUTH_TOKEN_MAX + 16];
    snprintf(lower, sizeof lower, "bearer   %s", user + 7);
    expect("/mine?userId=7", lower, 200, NULL);
    free(user);
    free(admin);
    free(expired);
    free(early);
}

/* The admit hook runs once the route is found and before the token is looked at: a request
 * it refuses is answered its way whatever its token; one it lets through meets the checks. */
static void the_admit_hook_runs_after_routing_and_before_authentication(void **state)
{
    (void)state;
    int64_t now = (int64_t)time(NULL);
    char *user = bearer(GF_ROLE_USER, 7, now, 600);
    atomic_store(&g_admit_calls, 0);
    expect("/mine?userId=7&shed=1", NULL, 503, "\"error\":\"overloaded\"");
    expect("/mine?userId=7&shed=1", "Bearer a.b.c", 503, "\"error\":\"overloaded\"");
    expect("/admin?userId=7&shed=1", user, 503, "\"error\":\"overloaded\"");
    expect("/open?shed=1", NULL, 503, "\"error\":\"overloaded\"");
    assert_int_equal(atomic_load(&g_admit_calls), 4);
    expect("/nowhere?shed=1", NULL, 404, "\"error\":\"not_found\""); /* no route: no call */
    assert_int_equal(atomic_load(&g_admit_calls), 4);
    expect("/mine?userId=7&shed=0", NULL, 401, "\"error\":\"unauthenticated\"");
    expect("/mine?userId=7&shed=0", user, 200, "\"sub\":7");
    assert_int_equal(atomic_load(&g_admit_calls), 6);
    free(user);
}

int main(void)
{
    gf_log_init("test", GF_LOG_ERROR);
    atomic_init(&g_ready, true);
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(the_status_table_maps_every_status),
        cmocka_unit_test(path_ids_are_positive_integers_up_to_2_pow_53),
        cmocka_unit_test(log_safe_keeps_visible_ascii_only),
        cmocka_unit_test(bad_route_tables_are_refused),
    };
    /* In this order: the last one counts what the others answered. */
    const struct CMUnitTest served[] = {
        cmocka_unit_test(an_unknown_path_is_404_whatever_the_method),
        cmocka_unit_test(a_known_path_with_another_method_is_405_with_allow),
        cmocka_unit_test(routes_run_with_their_path_id_and_method),
        cmocka_unit_test(a_route_that_needs_readiness_waits_for_it),
        cmocka_unit_test(every_503_has_one_retry_after),
        cmocka_unit_test(error_bodies_fall_back_to_the_status_defaults),
        cmocka_unit_test(requests_are_counted_by_route_method_and_exact_code),
    };
    const struct CMUnitTest guarded[] = {
        cmocka_unit_test(routes_answer_by_who_calls),
        cmocka_unit_test(the_admit_hook_runs_after_routing_and_before_authentication),
    };
    int failed = cmocka_run_group_tests_name("pure", pure, NULL, NULL);
    failed += cmocka_run_group_tests_name("served", served, start_server, stop_server);
    return failed + cmocka_run_group_tests_name("guarded", guarded, start_guarded, stop_guarded);
}
