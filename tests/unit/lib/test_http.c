/* Unit tests for lib/src/http.c: a real server on 127.0.0.1 with an ephemeral port, driven
 * by a plain socket client so the exact bytes on the wire are under the test's control. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "raw_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "gf/clock.h"
#include "gf/http.h"
#include "gf/log.h"
#include "gf/uuid.h"

#define MAX_BODY 64

/* --- what the handler saw (it runs on a server thread) --------------------------------- */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int calls;
    char method[16];
    char path[128];
    char body[256];
    size_t body_len;
    char query_q[64];
    char header[64];
    char cid[64];
    char log_cid[64];
    void *app;
} g_seen;

/* /block waits here until the test opens it (or 5 s pass). */
static pthread_cond_t g_open_cv = PTHREAD_COND_INITIALIZER;
static bool g_open;
static int g_blocked;            /* handlers waiting in /block now */
static char g_block_log_cid[64]; /* the log's correlation id in /block, once let go */

static void block_until_open(void)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&g_lock);
    g_blocked++;
    while (!g_open && pthread_cond_timedwait(&g_open_cv, &g_lock, &until) == 0) {
    }
    g_blocked--;
    pthread_mutex_unlock(&g_lock);
}

static void open_blocks(bool open)
{
    pthread_mutex_lock(&g_lock);
    g_open = open;
    pthread_cond_broadcast(&g_open_cv);
    pthread_mutex_unlock(&g_lock);
}

static int blocked_now(void)
{
    pthread_mutex_lock(&g_lock);
    int n = g_blocked;
    pthread_mutex_unlock(&g_lock);
    return n;
}

static void handler(void *app, const struct gf_http_request *req, struct gf_http_response *resp)
{
    size_t len;
    const char *body = gf_http_body(req, &len);
    const char *q = gf_http_query(req, "q");
    const char *h = gf_http_header(req, "X-Test");
    pthread_mutex_lock(&g_lock);
    g_seen.calls++;
    g_seen.app = app; /* checked by the test thread: cmocka asserts must not run here */
    snprintf(g_seen.method, sizeof g_seen.method, "%s", gf_http_method(req));
    snprintf(g_seen.path, sizeof g_seen.path, "%s", gf_http_path(req));
    g_seen.body_len = len;
    snprintf(g_seen.body, sizeof g_seen.body, "%s", body);
    snprintf(g_seen.query_q, sizeof g_seen.query_q, "%s", q ? q : "(absent)");
    snprintf(g_seen.header, sizeof g_seen.header, "%s", h ? h : "(absent)");
    snprintf(g_seen.cid, sizeof g_seen.cid, "%s", gf_http_cid(req));
    snprintf(g_seen.log_cid, sizeof g_seen.log_cid, "%s", gf_log_cid());
    pthread_mutex_unlock(&g_lock);

    const char *path = gf_http_path(req);
    if (strcmp(path, "/hello") == 0) {
        gf_http_set_body(resp, 200, NULL, "{\"hello\":\"world\"}");
    } else if (strcmp(path, "/echo") == 0) {
        gf_http_set_body(resp, 201, "text/plain", "%.*s", (int)len, body);
    } else if (strcmp(path, "/teapot") == 0) {
        gf_http_set_body(resp, 500, NULL, "replaced");
        gf_http_set_body(resp, 418, "text/plain", "short and %s", "stout");
        gf_http_add_header(resp, "X-Extra", "yes");
    } else if (strcmp(path, "/query") == 0) {
        gf_http_set_body(resp, 200, "text/plain", "q=%s", q ? q : "(absent)");
    } else if (strcmp(path, "/block") == 0) {
        block_until_open();
        pthread_mutex_lock(&g_lock);
        snprintf(g_block_log_cid, sizeof g_block_log_cid, "%s", gf_log_cid());
        pthread_mutex_unlock(&g_lock);
        gf_http_set_body(resp, 200, "text/plain", "unblocked %s", gf_http_method(req));
    } else if (strcmp(path, "/slow") == 0) {
        usleep(300 * 1000);
        gf_http_set_body(resp, 200, "text/plain", "slow");
    }
    /* anything else: status left 0, no body */
}

/* --- a tiny HTTP/1.1 client ------------------------------------------------------------ */

struct reply {
    int status;
    char head[4096]; /* status line and headers */
    char body[4096];
    size_t body_len;
};

/* Returns the value of header name in r (case-insensitive), copied into out, or NULL. */
static const char *reply_header(const struct reply *r, const char *name, char *out, size_t outsz)
{
    return client_header(r->head, name, out, outsz) > 0 ? out : NULL;
}

/* Reads one whole response (headers, then Content-Length bytes). 0 on success, -1 when the
 * peer closed or timed out before a full response. */
static int read_reply(int fd, struct reply *r)
{
    char buf[8192];
    size_t have = 0;
    char *end = NULL;
    memset(r, 0, sizeof *r);
    while (end == NULL) {
        if (have == sizeof buf - 1)
            return -1;
        ssize_t n = recv(fd, buf + have, sizeof buf - 1 - have, 0);
        if (n <= 0)
            return -1;
        have += (size_t)n;
        buf[have] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    size_t head_len = (size_t)(end - buf) + 2;
    assert_true(head_len < sizeof r->head);
    memcpy(r->head, buf, head_len);
    assert_int_equal(sscanf(r->head, "HTTP/1.1 %d", &r->status), 1);
    char cl[32];
    assert_non_null(reply_header(r, "Content-Length", cl, sizeof cl));
    size_t want = (size_t)strtoul(cl, NULL, 10);
    assert_true(want < sizeof r->body);
    size_t body_start = head_len + 2;
    while (have - body_start < want) {
        ssize_t n = recv(fd, buf + have, sizeof buf - 1 - have, 0);
        if (n <= 0)
            return -1;
        have += (size_t)n;
    }
    assert_int_equal(have - body_start, want); /* nothing pipelined after it */
    memcpy(r->body, buf + body_start, want);
    r->body_len = want;
    return 0;
}

/* True when the server closed the connection (recv returns 0 or a reset). */
static bool peer_closed(int fd)
{
    char c;
    ssize_t n = recv(fd, &c, 1, 0);
    return n <= 0;
}

/* --- fixture ---------------------------------------------------------------------------- */

static struct gf_http_server *g_srv;
static int g_port;

static int start_server(void **state)
{
    (void)state;
    struct gf_http_server_options opt = {
        .addr = "127.0.0.1:0",
        .threads = 2,
        .max_connections = 32,
        .connection_timeout_s = 10,
        .max_body = MAX_BODY,
        .handler = handler,
        .app = &g_seen,
    };
    g_srv = gf_http_server_start(&opt, &g_port);
    return g_srv != NULL && g_port > 0 ? 0 : -1;
}

static int stop_server(void **state)
{
    (void)state;
    gf_http_server_stop(g_srv);
    g_srv = NULL;
    return 0;
}

static int reset_seen(void **state)
{
    (void)state;
    pthread_mutex_lock(&g_lock);
    memset(&g_seen, 0, sizeof g_seen);
    pthread_mutex_unlock(&g_lock);
    return 0;
}

static int seen_calls(void)
{
    pthread_mutex_lock(&g_lock);
    int n = g_seen.calls;
    pthread_mutex_unlock(&g_lock);
    return n;
}

/* One request on a fresh connection. */
static void roundtrip(const char *request, struct reply *r)
{
    int fd = client_connect(g_port);
    send_str(fd, request);
    assert_int_equal(read_reply(fd, r), 0);
    close(fd);
}

/* --- tests ------------------------------------------------------------------------------ */

static void get_answers_with_body_and_generated_cid(void **state)
{
    (void)state;
    struct reply r;
    char v[128];
    roundtrip("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, strlen("{\"hello\":\"world\"}"));
    assert_memory_equal(r.body, "{\"hello\":\"world\"}", r.body_len);
    assert_string_equal(reply_header(&r, "Content-Type", v, sizeof v), "application/json");
    assert_non_null(reply_header(&r, "X-Correlation-Id", v, sizeof v));
    assert_true(gf_uuid_valid(v, strlen(v)));
    assert_int_equal(seen_calls(), 1);
    assert_ptr_equal(g_seen.app, &g_seen);
    assert_string_equal(g_seen.method, "GET");
    assert_string_equal(g_seen.path, "/hello");
    assert_int_equal(g_seen.body_len, 0);
    assert_string_equal(g_seen.body, "");
    /* The handler saw the id it answered with, and its log lines carried it. */
    assert_string_equal(g_seen.cid, v);
    assert_string_equal(g_seen.log_cid, v);
}

static void valid_cid_is_echoed(void **state)
{
    (void)state;
    struct reply r;
    char v[128];
    roundtrip("GET /hello HTTP/1.1\r\nHost: t\r\n"
              "X-Correlation-Id: 0b8a1c1e-4f0a-4c7e-9a43-1d2e3f405162\r\n\r\n",
              &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(reply_header(&r, "X-Correlation-Id", v, sizeof v),
                        "0b8a1c1e-4f0a-4c7e-9a43-1d2e3f405162");
    assert_string_equal(g_seen.cid, "0b8a1c1e-4f0a-4c7e-9a43-1d2e3f405162");

    /* Upper case is valid and comes back in the canonical lower case. */
    roundtrip("GET /hello HTTP/1.1\r\nHost: t\r\n"
              "x-correlation-id: 0B8A1C1E-4F0A-4C7E-9A43-1D2E3F405162\r\n\r\n",
              &r);
    assert_string_equal(reply_header(&r, "X-Correlation-Id", v, sizeof v),
                        "0b8a1c1e-4f0a-4c7e-9a43-1d2e3f405162");
}

static void invalid_cid_is_replaced(void **state)
{
    (void)state;
    const char *bad[] = {"not-a-uuid", "0b8a1c1e-4f0a-4c7e-9a43-1d2e3f40516",
                         "0b8a1c1e-4f0a-4c7e-9a43-1d2e3f4051620",
                         "0b8a1c1e_4f0a_4c7e_9a43_1d2e3f405162"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct reply r;
        char req[256], v[128];
        snprintf(req, sizeof req, "GET /hello HTTP/1.1\r\nHost: t\r\nX-Correlation-Id: %s\r\n\r\n",
                 bad[i]);
        roundtrip(req, &r);
        assert_int_equal(r.status, 200);
        assert_non_null(reply_header(&r, "X-Correlation-Id", v, sizeof v));
        assert_string_not_equal(v, bad[i]);
        assert_true(gf_uuid_valid(v, strlen(v)));
        assert_string_equal(g_seen.cid, v);
    }
}

static void post_body_delivered_whole(void **state)
{
    (void)state;
    struct reply r;
    char v[128];
    roundtrip("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
              "Content-Length: 13\r\n\r\n{\"amount\":42}",
              &r);
    assert_int_equal(r.status, 201);
    assert_int_equal(r.body_len, 13);
    assert_memory_equal(r.body, "{\"amount\":42}", 13);
    assert_string_equal(reply_header(&r, "Content-Type", v, sizeof v), "text/plain");
    assert_string_equal(g_seen.method, "POST");
    assert_int_equal(g_seen.body_len, 13);
    assert_string_equal(g_seen.body, "{\"amount\":42}");
    assert_int_equal(seen_calls(), 1);
}

static void post_body_in_several_writes(void **state)
{
    (void)state;
    struct reply r;
    int fd = client_connect(g_port);
    send_str(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 26\r\n\r\n");
    usleep(50 * 1000);
    send_str(fd, "abcdefghij");
    usleep(50 * 1000);
    send_str(fd, "klmnop");
    usleep(50 * 1000);
    send_str(fd, "qrstuvwxyz");
    assert_int_equal(read_reply(fd, &r), 0);
    close(fd);
    assert_int_equal(r.status, 201);
    assert_int_equal(g_seen.body_len, 26);
    assert_string_equal(g_seen.body, "abcdefghijklmnopqrstuvwxyz");
    assert_int_equal(seen_calls(), 1);

    /* Chunked transfer encoding: no Content-Length, the body is counted as it comes. */
    fd = client_connect(g_port);
    send_str(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n");
    usleep(50 * 1000);
    send_str(fd, "6\r\n world\r\n0\r\n\r\n");
    assert_int_equal(read_reply(fd, &r), 0);
    close(fd);
    assert_int_equal(r.status, 201);
    assert_string_equal(g_seen.body, "hello world");
    assert_int_equal(g_seen.body_len, 11);
}

static void body_at_limit_is_accepted(void **state)
{
    (void)state;
    char req[512], body[MAX_BODY + 1];
    memset(body, 'x', MAX_BODY);
    body[MAX_BODY] = '\0';
    snprintf(req, sizeof req, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s",
             MAX_BODY, body);
    struct reply r;
    roundtrip(req, &r);
    assert_int_equal(r.status, 201);
    assert_int_equal(g_seen.body_len, MAX_BODY);
    assert_string_equal(g_seen.body, body);

    /* Chunked, counted as it comes: exactly max_body in two chunks is still whole. */
    snprintf(req, sizeof req,
             "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
             "%x\r\n%.*s\r\n%x\r\n%s\r\n0\r\n\r\n",
             MAX_BODY / 2, MAX_BODY / 2, body, MAX_BODY - MAX_BODY / 2, body + MAX_BODY / 2);
    roundtrip(req, &r);
    assert_int_equal(r.status, 201);
    assert_int_equal(g_seen.body_len, MAX_BODY);
    assert_string_equal(g_seen.body, body);
}

static void assert_413(const struct reply *r)
{
    char cid[128], want[256], v[128];
    assert_int_equal(r->status, 413);
    assert_non_null(reply_header(r, "X-Correlation-Id", cid, sizeof cid));
    assert_true(gf_uuid_valid(cid, strlen(cid)));
    snprintf(want, sizeof want,
             "{\"message\":\"request body too large\",\"error\":\"payload_too_large\","
             "\"correlationId\":\"%s\"}",
             cid);
    assert_int_equal(r->body_len, strlen(want));
    assert_memory_equal(r->body, want, r->body_len);
    assert_string_equal(reply_header(r, "Content-Type", v, sizeof v), "application/json");
}

static void body_over_limit_is_413_without_handler(void **state)
{
    (void)state;
    char req[512], body[MAX_BODY + 2];
    memset(body, 'x', MAX_BODY + 1);
    body[MAX_BODY + 1] = '\0';
    struct reply r;

    /* Announced by Content-Length: refused before the body is read. */
    snprintf(req, sizeof req, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s",
             MAX_BODY + 1, body);
    roundtrip(req, &r);
    assert_413(&r);
    /* A length that overflows is refused by MHD itself (its own 413 page; 0.9.75 even sends
     * its headers twice), still without calling the handler. */
    int fd = client_connect(g_port);
    send_str(fd,
             "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999999\r\n\r\n");
    char raw[64] = {0};
    assert_true(recv(fd, raw, sizeof raw - 1, MSG_WAITALL) > 12);
    assert_memory_equal(raw, "HTTP/1.1 413", 12);
    close(fd);

    /* Chunked: only counting finds it; the answer comes after the last chunk. */
    fd = client_connect(g_port);
    send_str(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 3; i++) {
        send_str(fd, "20\r\n01234567890123456789012345678901\r\n");
        usleep(20 * 1000);
    }
    send_str(fd, "0\r\n\r\n");
    assert_int_equal(read_reply(fd, &r), 0);
    assert_413(&r);
    /* The body was read to its end, so the connection stays usable. */
    send_str(fd, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(read_reply(fd, &r), 0);
    assert_int_equal(r.status, 200);
    close(fd);

    assert_int_equal(seen_calls(), 1); /* only the GET */
    assert_string_equal(g_seen.path, "/hello");
}

static void keep_alive_serves_several_requests(void **state)
{
    (void)state;
    struct reply r;
    char v[128];
    int fd = client_connect(g_port);
    send_str(fd, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(read_reply(fd, &r), 0);
    assert_int_equal(r.status, 200);
    assert_null(reply_header(&r, "Connection", v, sizeof v)); /* no "close" */
    char first_cid[64];
    assert_non_null(reply_header(&r, "X-Correlation-Id", first_cid, sizeof first_cid));

    send_str(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok");
    assert_int_equal(read_reply(fd, &r), 0);
    assert_int_equal(r.status, 201);
    assert_memory_equal(r.body, "ok", 2);
    assert_non_null(reply_header(&r, "X-Correlation-Id", v, sizeof v));
    assert_string_not_equal(v, first_cid); /* a new id per request */

    send_str(fd, "GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(read_reply(fd, &r), 0);
    assert_int_equal(r.status, 200); /* status left 0 by the handler */
    assert_int_equal(r.body_len, 0);
    close(fd);
    assert_int_equal(seen_calls(), 3);
}

static void query_and_headers_are_looked_up(void **state)
{
    (void)state;
    struct reply r;
    roundtrip("GET /query?x=1&q=hello%20world HTTP/1.1\r\nHost: t\r\nx-test: abc\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, strlen("q=hello world"));
    assert_memory_equal(r.body, "q=hello world", r.body_len);
    assert_string_equal(g_seen.path, "/query"); /* without the query */
    assert_string_equal(g_seen.query_q, "hello world");
    assert_string_equal(g_seen.header, "abc"); /* looked up as X-Test */

    roundtrip("GET /query HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_memory_equal(r.body, "q=(absent)", r.body_len);
    assert_string_equal(g_seen.header, "(absent)");
}

static void handler_status_type_and_headers_are_sent(void **state)
{
    (void)state;
    struct reply r;
    char v[128];
    roundtrip("GET /teapot HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_int_equal(r.status, 418);
    assert_int_equal(r.body_len, strlen("short and stout"));
    assert_memory_equal(r.body, "short and stout", r.body_len);
    assert_string_equal(reply_header(&r, "Content-Type", v, sizeof v), "text/plain");
    assert_string_equal(reply_header(&r, "X-Extra", v, sizeof v), "yes");
}

static void set_body_replaces_and_helpers_bound(void **state)
{
    (void)state;
    struct gf_http_response resp = {0};
    gf_http_set_body(&resp, 400, "application/json", "{\"n\":%d}", 1);
    gf_http_set_body(&resp, 409, NULL, "{\"n\":%d}", 22);
    assert_int_equal(resp.status, 409);
    assert_null(resp.content_type);
    assert_int_equal(resp.body_len, 8);
    assert_string_equal(resp.body, "{\"n\":22}");
    for (int i = 0; i < GF_HTTP_MAX_HEADERS + 2; i++)
        gf_http_add_header(&resp, "X-N", "v");
    assert_int_equal(resp.nheaders, GF_HTTP_MAX_HEADERS);
    assert_string_equal(resp.header_names[0], "X-N");
    for (int i = 0; i < resp.nheaders; i++) {
        free(resp.header_names[i]);
        free(resp.header_values[i]);
    }
    free(resp.body);
}

static void stop_while_idle_and_with_open_connection(void **state)
{
    (void)state;
    struct gf_http_server_options opt = {
        .addr = "0.0.0.0:0",
        .threads = 1,
        .max_connections = 4,
        .connection_timeout_s = 30,
        .max_body = 16,
        .handler = handler,
        .app = &g_seen,
    };
    int port = 0;
    struct gf_http_server *s = gf_http_server_start(&opt, &port);
    assert_non_null(s);
    assert_true(port > 0);
    int64_t t0 = gf_mono_ms();
    gf_http_server_stop(s);
    assert_true(gf_mono_ms() - t0 < 2000);

    /* Again, with a keep-alive connection left open after a request. */
    s = gf_http_server_start(&opt, &port);
    assert_non_null(s);
    int fd = client_connect(port);
    struct reply r;
    send_str(fd, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(read_reply(fd, &r), 0);
    assert_int_equal(r.status, 200);
    t0 = gf_mono_ms();
    gf_http_server_stop(s);
    assert_true(gf_mono_ms() - t0 < 2000);
    assert_true(peer_closed(fd));
    close(fd);
}

static void stop_waits_for_in_flight_handler(void **state)
{
    (void)state;
    struct gf_http_server_options opt = {
        .addr = "127.0.0.1:0",
        .threads = 1,
        .max_connections = 4,
        .connection_timeout_s = 5,
        .max_body = 16,
        .handler = handler,
        .app = &g_seen,
    };
    int port = 0;
    struct gf_http_server *s = gf_http_server_start(&opt, &port);
    assert_non_null(s);
    int fd = client_connect(port);
    send_str(fd, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
    for (int i = 0; i < 100 && seen_calls() == 0; i++)
        usleep(5 * 1000); /* until the handler has started */
    assert_int_equal(seen_calls(), 1);
    gf_http_server_stop(s); /* returns only after the 300 ms handler */
    assert_string_equal(g_seen.path, "/slow");
    close(fd);
}

/* A server with one pool thread, so that every connection shares it. */
static struct gf_http_server *start_one_thread(int workers, int *port)
{
    struct gf_http_server_options opt = {
        .addr = "127.0.0.1:0",
        .threads = 1,
        .workers = workers,
        .max_inflight = 4,
        .max_connections = 8,
        .connection_timeout_s = 10,
        .max_body = MAX_BODY,
        .handler = handler,
        .app = &g_seen,
    };
    struct gf_http_server *s = gf_http_server_start(&opt, port);
    assert_non_null(s);
    return s;
}

static void wait_blocked(int n)
{
    for (int i = 0; i < 400 && blocked_now() < n; i++)
        usleep(5 * 1000);
    assert_int_equal(blocked_now(), n);
}

/* With workers, a write that waits runs on a worker and its connection is suspended: a read on
 * another connection of the same (only) pool thread is answered meanwhile. The write's answer
 * comes once it is let go, on its kept-alive connection, which then serves the next request;
 * the handler saw the request's correlation id as its log's. Without workers the same read
 * waits behind the write (the head-of-line wait the workers remove). */
static void a_waiting_write_on_a_worker_does_not_hold_up_its_thread(void **state)
{
    (void)state;
    for (int workers = 2; workers >= 0; workers -= 2) {
        open_blocks(false);
        int port = 0;
        struct gf_http_server *s = start_one_thread(workers, &port);
        int a = client_connect(port);
        send_str(a, "POST /block HTTP/1.1\r\nHost: t\r\nX-Correlation-Id: "
                    "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\r\nContent-Length: 2\r\n\r\nhi");
        wait_blocked(1);
        int b = client_connect_timeout(port, 1);
        send_str(b, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
        struct reply r;
        int64_t t0 = gf_mono_ms();
        int got = read_reply(b, &r);
        int64_t waited = gf_mono_ms() - t0;
        if (workers > 0) {
            assert_int_equal(got, 0);
            assert_int_equal(r.status, 200);
            assert_true(waited < 900);
            pthread_mutex_lock(&g_lock);
            /* the last handler to run was the read's; the write's is still waiting */
            assert_string_equal(g_seen.path, "/hello");
            pthread_mutex_unlock(&g_lock);
        } else {
            assert_int_not_equal(got, 0); /* nothing within the 1 s timeout */
        }
        open_blocks(true);
        assert_int_equal(read_reply(a, &r), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "unblocked POST");
        pthread_mutex_lock(&g_lock);
        assert_string_equal(g_block_log_cid, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
        pthread_mutex_unlock(&g_lock);
        send_str(a, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
        assert_int_equal(read_reply(a, &r), 0);
        assert_int_equal(r.status, 201);
        assert_string_equal(r.body, "abc");
        close(a);
        close(b);
        gf_http_server_stop(s);
    }
}

/* A write beyond the workers waits for one (max_inflight, at most threads + workers, counts it);
 * stopping the server lets the workers finish every write they were handed (each handler runs
 * once, and its answer is sent) before MHD closes the connections. */
static void stop_lets_the_workers_finish_their_writes(void **state)
{
    (void)state;
    open_blocks(false);
    int port = 0;
    struct gf_http_server *s = start_one_thread(1, &port);
    int fd[2];
    for (int i = 0; i < 2; i++) {
        fd[i] = client_connect(port);
        send_str(fd[i], "PUT /block HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    }
    wait_blocked(1); /* one worker: the other write waits behind it */
    usleep(100 * 1000);
    assert_int_equal(blocked_now(), 1);
    int before = seen_calls();
    open_blocks(true);
    gf_http_server_stop(s);
    assert_int_equal(seen_calls(), before + 1); /* the queued one ran too */
    assert_int_equal(blocked_now(), 0);
    for (int i = 0; i < 2; i++) {
        struct reply r;
        if (read_reply(fd[i], &r) == 0) /* sent before MHD closed, as a rule; not promised */
            assert_int_equal(r.status, 200);
        close(fd[i]);
    }
}

static void bad_options_are_refused(void **state)
{
    (void)state;
    struct gf_http_server_options opt = {
        .addr = "nonsense",
        .threads = 1,
        .max_connections = 4,
        .connection_timeout_s = 5,
        .max_body = 16,
        .handler = handler,
    };
    int port = -1;
    assert_null(gf_http_server_start(&opt, &port));
    assert_int_equal(port, -1);
    opt.addr = "127.0.0.1:99999";
    assert_null(gf_http_server_start(&opt, &port));
    /* The port the fixture server holds is taken. */
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", g_port);
    opt.addr = addr;
    assert_null(gf_http_server_start(&opt, &port));
    assert_int_equal(port, -1);
    opt.addr = "127.0.0.1:0";
    /* More threads than connections would leave a pool thread without any, and MHD then
     * never returns from MHD_stop_daemon. */
    opt.threads = 2;
    opt.max_connections = 1;
    assert_null(gf_http_server_start(&opt, &port));
    opt.threads = 1;
    opt.workers = -1;
    assert_null(gf_http_server_start(&opt, &port));
    opt.workers = GF_HTTP_WORKERS_MAX + 1;
    assert_null(gf_http_server_start(&opt, &port));
    opt.workers = 0;
    opt.handler = NULL;
    assert_null(gf_http_server_start(&opt, &port));
    assert_int_equal(port, -1);
    gf_http_server_stop(NULL); /* no-op */
}

int main(void)
{
    gf_log_init("test", GF_LOG_DEBUG);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(get_answers_with_body_and_generated_cid, reset_seen),
        cmocka_unit_test_setup(valid_cid_is_echoed, reset_seen),
        cmocka_unit_test_setup(invalid_cid_is_replaced, reset_seen),
        cmocka_unit_test_setup(post_body_delivered_whole, reset_seen),
        cmocka_unit_test_setup(post_body_in_several_writes, reset_seen),
        cmocka_unit_test_setup(body_at_limit_is_accepted, reset_seen),
        cmocka_unit_test_setup(body_over_limit_is_413_without_handler, reset_seen),
        cmocka_unit_test_setup(keep_alive_serves_several_requests, reset_seen),
        cmocka_unit_test_setup(query_and_headers_are_looked_up, reset_seen),
        cmocka_unit_test_setup(handler_status_type_and_headers_are_sent, reset_seen),
        cmocka_unit_test_setup(set_body_replaces_and_helpers_bound, reset_seen),
        cmocka_unit_test_setup(stop_while_idle_and_with_open_connection, reset_seen),
        cmocka_unit_test_setup(stop_waits_for_in_flight_handler, reset_seen),
        cmocka_unit_test_setup(a_waiting_write_on_a_worker_does_not_hold_up_its_thread, reset_seen),
        cmocka_unit_test_setup(stop_lets_the_workers_finish_their_writes, reset_seen),
        cmocka_unit_test_setup(bad_options_are_refused, reset_seen),
    };
    return cmocka_run_group_tests(tests, start_server, stop_server);
}
