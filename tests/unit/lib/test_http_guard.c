/* Unit tests for lib/src/http.c against hostile clients: a real server on 127.0.0.1 driven by
 * raw sockets. A trickled request head or body is cut after its deadline (408) while an idle
 * connection is left alone; requests beyond max_inflight get 503 + Retry-After at once while
 * the unlimited paths still answer; oversized heads and URLs get MHD's 431 and 414; idle
 * connections are closed, oldest first, when the connection limit nears. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "raw_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "gf/clock.h"
#include "gf/http.h"
#include "gf/log.h"

static void handler(void *app, const struct gf_http_request *req, struct gf_http_response *resp)
{
    (void)app;
    if (strcmp(gf_http_path(req), "/slow") == 0)
        usleep(600 * 1000);
    gf_http_set_body(resp, 200, "text/plain", "ok");
}

static struct gf_http_server *start(int threads, int max_connections, int max_inflight,
                                    int header_ms, int body_ms, int *port)
{
    struct gf_http_server_options opt = {
        .addr = "127.0.0.1:0",
        .threads = threads,
        .max_connections = max_connections,
        .connection_timeout_s = 20,
        .max_body = 1024,
        .max_inflight = max_inflight,
        .header_timeout_ms = header_ms,
        .body_timeout_ms = body_ms,
        .handler = handler,
    };
    struct gf_http_server *srv = gf_http_server_start(&opt, port);
    assert_non_null(srv);
    return srv;
}

/* Reads until the peer closes or a whole head arrived (and the body, by Content-Length, when
 * small); the status of that head, 0 when none came, -1 when the peer closed without one. */
static int read_status(int fd, char *buf, size_t n)
{
    size_t have = 0;
    buf[0] = '\0';
    for (;;) {
        ssize_t r = recv(fd, buf + have, n - 1 - have, 0);
        if (r <= 0)
            break;
        have += (size_t)r;
        buf[have] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end != NULL) {
            const char *cl = strcasestr(buf, "Content-Length:");
            size_t want = cl != NULL && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
            if (have >= (size_t)(end + 4 - buf) + want)
                break;
        }
        if (have == n - 1)
            break;
    }
    int status = 0;
    if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
        return have == 0 ? -1 : 0;
    return status;
}

/* True once the peer closed (EOF or reset) within ms; draining whatever it sent first. */
static bool closed_within(int fd, int ms)
{
    int64_t end = gf_mono_ms() + ms;
    for (;;) {
        int64_t left = end - gf_mono_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0)
            return false;
        char buf[512];
        ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            return true;
    }
}

static int get(int port, const char *path, char *buf, size_t n)
{
    int fd = client_connect(port);
    char req[256];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    send_all(fd, req, strlen(req));
    int st = read_status(fd, buf, n);
    close(fd);
    return st;
}

static void default_inflight_keeps_threads_free(void **state)
{
    (void)state;
    assert_int_equal(gf_http_default_inflight(32, 0), 24);
    assert_int_equal(gf_http_default_inflight(4, 0), 3);
    assert_int_equal(gf_http_default_inflight(2, 0), 1);
    assert_int_equal(gf_http_default_inflight(1, 0), 1);
    assert_int_equal(gf_http_default_inflight(8, 5), 5);
    assert_int_equal(gf_http_default_inflight(8, 100), 8);
}

/* A head trickled one byte at a time is cut after the header deadline (plus at most a
 * second's grace and a reaper tick), while a connection that sends nothing stays open. */
static void trickled_head_is_cut_idle_connection_is_not(void **state)
{
    (void)state;
    int port;
    struct gf_http_server *srv = start(2, 64, 0, 500, 5000, &port);
    int idle = client_connect(port);
    int slow = client_connect(port);
    const char *head = "GET /x HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    int64_t t0 = gf_mono_ms();
    bool cut = false;
    for (size_t i = 0; head[i] != '\0' && !cut; i++) {
        if (send(slow, head + i, 1, MSG_NOSIGNAL) != 1)
            break;
        cut = closed_within(slow, 100);
    }
    if (!cut)
        cut = closed_within(slow, 3000);
    int64_t took = gf_mono_ms() - t0;
    assert_true(cut);
    assert_true(took >= 450);
    assert_true(took < 2500);
    /* The idle one outlived the trickler, and still serves. */
    assert_false(closed_within(idle, 10));
    send_all(idle, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n", 28);
    char buf[2048];
    assert_int_equal(read_status(idle, buf, sizeof buf), 200);
    close(idle);
    close(slow);
    gf_http_server_stop(srv);
}

/* A body trickled one byte at a time is answered 408 and closed after the body deadline. */
static void trickled_body_is_cut_with_408(void **state)
{
    (void)state;
    int port;
    struct gf_http_server *srv = start(2, 64, 0, 5000, 500, &port);
    int fd = client_connect(port);
    const char *head = "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n";
    send_all(fd, head, strlen(head));
    int64_t t0 = gf_mono_ms();
    for (int i = 0; i < 30; i++) {
        if (send(fd, "a", 1, MSG_NOSIGNAL) != 1)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) > 0)
            break;
    }
    char buf[2048];
    int st = read_status(fd, buf, sizeof buf);
    int64_t took = gf_mono_ms() - t0;
    assert_true(st == 408 || st == -1); /* a reset may beat the 408 */
    assert_true(took >= 450);
    assert_true(took < 2000);
    assert_true(closed_within(fd, 2000));
    close(fd);
    gf_http_server_stop(srv);
}

/* One slow request holds the only admission slot: a second gets 503 + Retry-After in the
 * JSON error shape at once, /healthz still answers, and once the slot is free, 200 again. */
static void beyond_max_inflight_is_503_and_probes_pass(void **state)
{
    (void)state;
    int port;
    struct gf_http_server *srv = start(4, 64, 1, 0, 0, &port);
    int busy = client_connect(port);
    send_all(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n", 31);
    usleep(150 * 1000);
    char buf[4096];
    int64_t t0 = gf_mono_us();
    assert_int_equal(get(port, "/other", buf, sizeof buf), 503);
    assert_true(gf_mono_us() - t0 < 300000); /* not queued behind /slow */
    assert_non_null(strcasestr(buf, "\r\nRetry-After: 1\r\n"));
    assert_non_null(strstr(buf, "\"error\":\"overloaded\""));
    assert_non_null(strstr(buf, "\"correlationId\":\""));
    assert_non_null(strcasestr(buf, "Content-Type: application/json"));
    t0 = gf_mono_us();
    assert_int_equal(get(port, "/healthz", buf, sizeof buf), 200);
    assert_int_equal(get(port, "/metrics", buf, sizeof buf), 200);
    assert_true(gf_mono_us() - t0 < 300000);
    assert_int_equal(read_status(busy, buf, sizeof buf), 200);
    assert_int_equal(get(port, "/other", buf, sizeof buf), 200);
    close(busy);
    gf_http_server_stop(srv);
}

/* Heads and URLs past the connection's memory get MHD's 431 and 414 and a close; the server
 * serves on. */
static void oversized_head_and_url_are_refused(void **state)
{
    (void)state;
    int port;
    struct gf_http_server *srv = start(2, 64, 0, 0, 0, &port);
    size_t big = 64 * 1024;
    char *req = malloc(big + 128);
    assert_non_null(req);
    int n = snprintf(req, 128, "GET /x HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(req + n, 'a', big);
    memcpy(req + n + big, "\r\n\r\n", 5);
    char buf[4096];
    int fd = client_connect(port);
    (void)send(fd, req, strlen(req), MSG_NOSIGNAL); /* the server may stop reading midway */
    assert_int_equal(read_status(fd, buf, sizeof buf), 431);
    assert_true(closed_within(fd, 2000));
    close(fd);

    n = snprintf(req, 128, "GET /");
    memset(req + n, 'u', big);
    memcpy(req + n + big, " HTTP/1.1\r\nHost: x\r\n\r\n", 23);
    fd = client_connect(port);
    (void)send(fd, req, strlen(req), MSG_NOSIGNAL);
    int st = read_status(fd, buf, sizeof buf);
    assert_true(st == 414 || st == 431);
    close(fd);
    free(req);
    assert_int_equal(get(port, "/x", buf, sizeof buf), 200);
    gf_http_server_stop(srv);
}

/* Past 90% of max_connections, idle connections are closed (oldest first) down to 80%, so a
 * new client still gets in. */
static void idle_connections_give_way_near_the_limit(void **state)
{
    (void)state;
    int port;
    enum { MAX = 40, OPEN = 38 };
    struct gf_http_server *srv = start(2, MAX, 0, 0, 0, &port);
    int fds[OPEN];
    for (int i = 0; i < OPEN; i++)
        fds[i] = client_connect(port);
    usleep(1600 * 1000); /* idle for more than a second: eligible */
    int closed = 0;
    for (int i = 0; i < OPEN; i++) {
        if (closed_within(fds[i], i < 8 ? 500 : 20))
            closed++;
    }
    assert_true(closed >= OPEN - MAX * 8 / 10);
    assert_true(closed < OPEN);
    char buf[2048];
    assert_int_equal(get(port, "/x", buf, sizeof buf), 200);
    for (int i = 0; i < OPEN; i++)
        close(fds[i]);
    gf_http_server_stop(srv);
}

/* Stopping with thousands of connections open (two being cut among them) is quick: without
 * MHD_USE_ITC some pool threads slept until the next idle timeout (18 s measured). */
static void stop_with_many_connections_is_quick(void **state)
{
    (void)state;
    int port;
    enum { OPEN = 3000 };
    struct gf_http_server *srv = start(32, 10000, 0, 500, 500, &port);
    int fds[OPEN];
    for (int i = 0; i < OPEN; i++)
        fds[i] = client_connect(port);
    const char *head = "GET /x HTTP/1.1\r\nHost: x\r\nX-A: b";
    const char *body = "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab";
    send_all(fds[0], head, strlen(head));
    send_all(fds[1], body, strlen(body));
    usleep(1500 * 1000); /* the reaper cut the two */
    int64_t t0 = gf_mono_ms();
    gf_http_server_stop(srv);
    assert_true(gf_mono_ms() - t0 < 3000);
    for (int i = 0; i < OPEN; i++)
        close(fds[i]);
}

int main(void)
{
    gf_log_init("test_http_guard", GF_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(default_inflight_keeps_threads_free),
        cmocka_unit_test(trickled_head_is_cut_idle_connection_is_not),
        cmocka_unit_test(trickled_body_is_cut_with_408),
        cmocka_unit_test(beyond_max_inflight_is_503_and_probes_pass),
        cmocka_unit_test(oversized_head_and_url_are_refused),
        cmocka_unit_test(idle_connections_give_way_near_the_limit),
        cmocka_unit_test(stop_with_many_connections_is_quick),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
