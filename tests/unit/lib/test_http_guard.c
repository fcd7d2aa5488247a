/* Unit tests for the HTTP server against hostile clients — its connection guard
 * (lib/src/http_guard.c) and admission limit (lib/src/http.c): a real server on 127.0.0.1 driven
 * by raw sockets. A trickled request head or body is cut after its deadline (408) while an idle
 * connection is left alone; requests beyond max_inflight get 503 + Retry-After at once while
 * the unlimited paths still answer; oversized heads and URLs get MHD's 431 and 414; idle
 * connections are closed, oldest first, when the connection limit nears. Per phase: a head
 * or body still incomplete gets 408 and its handler never runs; a request that arrived whole
 * (even if the server, busy or paused, had not read it yet) is never answered 408; a handler
 * is never cut; an answer the client does not take is closed without any status. */
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
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gf/clock.h"
#include "gf/http.h"
#include "gf/log.h"

/* How many times /count ran: the work a request did. */
static atomic_int g_count;
#define BIG_ANSWER (32 * 1024 * 1024)

static void handler(void *app, const struct gf_http_request *req, struct gf_http_response *resp)
{
    (void)app;
    const char *path = gf_http_path(req);
    if (strcmp(path, "/slow") == 0)
        usleep(600 * 1000);
    if (strcmp(path, "/block") == 0)
        usleep(1500 * 1000);
    if (strcmp(path, "/block3") == 0)
        usleep(3000 * 1000);
    if (strcmp(path, "/count") == 0)
        atomic_fetch_add(&g_count, 1);
    if (strcmp(path, "/big") == 0) {
        char *body = malloc(BIG_ANSWER);
        assert_non_null(body);
        memset(body, 'b', BIG_ANSWER);
        resp->status = 200;
        resp->content_type = "text/plain";
        resp->body = body;
        resp->body_len = BIG_ANSWER;
        return;
    }
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
    int status = client_read_answer(fd, buf, n, &have);
    if (status < 0)
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
    /* A reaper tick late by over a second while the process used almost no CPU looks like a
     * pause to it and restarts every timer (a busy machine under ASan does that): the shedding
     * may then come a second later, or later again when ticks keep coming late (the suite's
     * first seconds, two PostgreSQL clusters and RabbitMQ starting on both cores), so it is
     * awaited for up to 10 s rather than expected by a fixed time (failed under load at 4 s). */
    bool gone[OPEN] = {false};
    int closed = 0;
    for (int64_t end = gf_mono_ms() + 10000; closed < OPEN - MAX * 8 / 10 && gf_mono_ms() < end;) {
        for (int i = 0; i < OPEN; i++) {
            if (!gone[i] && closed_within(fds[i], 1)) {
                gone[i] = true;
                closed++;
            }
        }
        usleep(20 * 1000);
    }
    usleep(600 * 1000); /* a few more ticks: it must stop at 80%, not shed them all */
    for (int i = 0; i < OPEN; i++) {
        if (!gone[i] && closed_within(fds[i], 1)) {
            gone[i] = true;
            closed++;
        }
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

/* Phase "head", server behind: a keep-alive connection idle past the header deadline sends a
 * whole request while the only pool thread is busy in another handler for longer than both
 * deadlines. The request waits in the kernel, unread: that is the server's delay, not the
 * client's, so it is served (200, its work done once), never answered 408. Before the fix the
 * reaper answered 408 and then the handler ran anyway. */
static void whole_head_behind_a_busy_thread_is_served(void **state)
{
    (void)state;
    atomic_store(&g_count, 0);
    int port;
    struct gf_http_server *srv = start(1, 8, 0, 300, 300, &port);
    char buf[2048];
    int a = client_connect(port);
    send_str(a, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_status(a, buf, sizeof buf), 200);
    usleep(400 * 1000); /* idle past the header deadline */
    int b = client_connect(port);
    send_str(b, "GET /block HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(100 * 1000); /* b's handler holds the thread */
    send_str(a, "POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}");
    assert_int_equal(read_status(a, buf, sizeof buf), 200);
    assert_int_equal(read_status(b, buf, sizeof buf), 200);
    assert_int_equal(atomic_load(&g_count), 1);
    close(a);
    close(b);
    gf_http_server_stop(srv);
}

/* Phase "body", server behind: the rest of a body arrives while the thread is busy for longer
 * than the body deadline: served (200, once), never 408. */
static void whole_body_behind_a_busy_thread_is_served(void **state)
{
    (void)state;
    atomic_store(&g_count, 0);
    int port;
    struct gf_http_server *srv = start(1, 8, 0, 300, 300, &port);
    char buf[2048];
    int a = client_connect(port);
    send_str(a, "POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{\"a\":");
    usleep(100 * 1000); /* the head is read: a's body is arriving */
    int b = client_connect(port);
    send_str(b, "GET /block HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(100 * 1000);
    send_str(a, "12345");
    assert_int_equal(read_status(a, buf, sizeof buf), 200);
    assert_int_equal(read_status(b, buf, sizeof buf), 200);
    assert_int_equal(atomic_load(&g_count), 1);
    close(a);
    close(b);
    gf_http_server_stop(srv);
}

/* The server behind, but the request incomplete even counting what waits unread: a head
 * without its end, a body short of its Content-Length. Those are a trickler's, cut (408) on
 * time although the only thread is busy, and their handler never runs. */
static void incomplete_request_behind_a_busy_thread_is_still_cut(void **state)
{
    (void)state;
    atomic_store(&g_count, 0);
    int port;
    struct gf_http_server *srv = start(1, 8, 0, 300, 300, &port);
    char buf[2048];
    int a = client_connect(port);
    send_str(a, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_status(a, buf, sizeof buf), 200);
    int c = client_connect(port);
    send_str(c, "POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{\"a\":");
    usleep(400 * 1000); /* a idle past the head deadline; c's body is arriving */
    int b = client_connect(port);
    send_str(b, "GET /block3 HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(100 * 1000); /* b's handler holds the thread for 3 s */
    int64_t t0 = gf_mono_ms();
    send_str(a, "POST /count HTTP/1.1\r\nHost: x\r\nX-Slow: a");
    send_str(c, "1");
    int st_a = read_status(a, buf, sizeof buf);
    int64_t took_a = gf_mono_ms() - t0;
    int st_c = read_status(c, buf, sizeof buf);
    int64_t took_c = gf_mono_ms() - t0;
    assert_true(st_a == 408 || st_a == -1);
    assert_true(st_c == 408 || st_c == -1);
    /* Before b's handler let the thread go: an idle connection is looked at once a second,
     * then the grace, then a tick. */
    assert_true(took_a < 2500);
    assert_true(took_c < 2500);
    assert_int_equal(read_status(b, buf, sizeof buf), 200);
    usleep(100 * 1000);
    assert_int_equal(atomic_load(&g_count), 0);
    close(a);
    close(b);
    close(c);
    gf_http_server_stop(srv);
}

/* Phase "body", client late: 408, and the handler never runs for that request, even when the
 * rest of the body comes after the 408. */
static void incomplete_body_is_408_and_never_runs(void **state)
{
    (void)state;
    atomic_store(&g_count, 0);
    int port;
    struct gf_http_server *srv = start(2, 8, 0, 300, 300, &port);
    char buf[2048];
    int a = client_connect(port);
    send_str(a, "POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{\"a\":");
    struct pollfd p = {.fd = a, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 3000), 1);
    (void)send(a, "12345", 5, MSG_NOSIGNAL); /* too late */
    int st = read_status(a, buf, sizeof buf);
    assert_true(st == 408 || st == -1); /* a reset may beat the 408 */
    usleep(200 * 1000);
    assert_int_equal(atomic_load(&g_count), 0);
    close(a);
    gf_http_server_stop(srv);
}

/* Phase "handler": a handler running far past both deadlines is never cut. */
static void running_handler_is_never_cut(void **state)
{
    (void)state;
    int port;
    struct gf_http_server *srv = start(2, 8, 0, 200, 200, &port);
    char buf[2048];
    int a = client_connect(port);
    send_str(a, "POST /block HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}");
    assert_int_equal(read_status(a, buf, sizeof buf), 200);
    close(a);
    gf_http_server_stop(srv);
}

/* Phase "sending": an answer the client does not take is closed after the body deadline
 * without any status written after it: the client sees the start of its 200, then the close,
 * never a 408 (the request was received and its work done). */
static void untaken_answer_is_closed_without_a_status(void **state)
{
    (void)state;
    int port;
    struct gf_http_server *srv = start(2, 8, 0, 300, 300, &port);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    send_str(fd, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(1500 * 1000); /* not taking it */
    size_t total = 0;
    bool head_ok = false, saw_408 = false;
    char buf[65536];
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf - 1, 0);
        if (r <= 0)
            break;
        buf[r] = '\0';
        if (total == 0)
            head_ok = strncmp(buf, "HTTP/1.1 200", 12) == 0;
        if (memmem(buf, (size_t)r, " 408 ", 5) != NULL)
            saw_408 = true;
        total += (size_t)r;
    }
    assert_true(head_ok);
    assert_false(saw_408);
    assert_true(total < BIG_ANSWER); /* cut, not served whole */
    close(fd);
    gf_http_server_stop(srv);
}

/* The process is stopped (SIGSTOP, as a paused container or VM) for longer than both
 * deadlines while one client sends a whole request on an idle keep-alive connection and
 * another the rest of its body; after SIGCONT both are served once, never 408. A child process
 * plays both clients, since this one is stopped. */
static void paused_server_serves_what_arrived_meanwhile(void **state)
{
    (void)state;
    atomic_store(&g_count, 0);
    int port;
    /* Both handlers may run at once after the pause: admit two (the default keeps one of the
     * two threads for probes, and the second request would be shed with 503). */
    struct gf_http_server *srv = start(2, 8, 2, 300, 300, &port);
    char buf[2048];
    int a = client_connect(port);
    send_str(a, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_status(a, buf, sizeof buf), 200);
    int b = client_connect(port);
    send_str(b, "POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{\"a\":");
    usleep(100 * 1000);
    static const char req_a[] = "POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
    pid_t parent = getpid();
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        /* Only async-signal-safe calls here. */
        kill(parent, SIGSTOP);
        struct timespec d = {.tv_sec = 0, .tv_nsec = 100 * 1000000L};
        nanosleep(&d, NULL);
        (void)send(a, req_a, sizeof req_a - 1, MSG_NOSIGNAL);
        (void)send(b, "12345", 5, MSG_NOSIGNAL);
        d.tv_sec = 1;
        d.tv_nsec = 200 * 1000000L;
        nanosleep(&d, NULL);
        kill(parent, SIGCONT);
        _exit(0);
    }
    int wst;
    assert_int_equal(waitpid(child, &wst, 0), child);
    assert_int_equal(read_status(a, buf, sizeof buf), 200);
    assert_int_equal(read_status(b, buf, sizeof buf), 200);
    assert_int_equal(atomic_load(&g_count), 2);
    close(a);
    close(b);
    gf_http_server_stop(srv);
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
        cmocka_unit_test(whole_head_behind_a_busy_thread_is_served),
        cmocka_unit_test(whole_body_behind_a_busy_thread_is_served),
        cmocka_unit_test(incomplete_request_behind_a_busy_thread_is_still_cut),
        cmocka_unit_test(incomplete_body_is_408_and_never_runs),
        cmocka_unit_test(running_handler_is_never_cut),
        cmocka_unit_test(untaken_answer_is_closed_without_a_status),
        cmocka_unit_test(paused_server_serves_what_arrived_meanwhile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
