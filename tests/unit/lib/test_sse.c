/* Server-sent events (lib/src/sse.c) on a real server on 127.0.0.1: a stream gets its first
 * block and then every published event in order; waiting streams hold no server thread (a
 * one-thread server still answers other requests); a full hub answers 503; a client that falls
 * behind is ended; freeing the hub ends every stream cleanly; bad events are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "raw_client.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gf/clock.h"
#include "gf/http.h"
#include "gf/metrics.h"
#include "gf/sse.h"

static struct gf_sse_hub *g_hub;

static void handler(void *app, const struct gf_http_request *req, struct gf_http_response *resp)
{
    (void)app;
    if (strcmp(gf_http_path(req), "/stream") == 0) {
        char *first = NULL;
        size_t n = 0;
        (void)gf_sse_frame(&first, &n, "hello", "{\"snapshot\":true}");
        gf_http_reply_sse(resp, g_hub, first, gf_http_cid(req));
        free(first);
    } else {
        gf_http_set_body(resp, 200, "text/plain", "plain");
    }
}

static struct gf_http_server *start(int threads, int *port)
{
    struct gf_http_server_options o = {.addr = "127.0.0.1:0",
                                       .threads = threads,
                                       .max_connections = 64,
                                       .connection_timeout_s = 30,
                                       .max_body = 1024,
                                       .handler = handler};
    struct gf_http_server *s = gf_http_server_start(&o, port);
    assert_non_null(s);
    return s;
}

/* Reads from fd into buf (appending at *len) until needle is in it or ms pass; true if found. */
static bool read_until(int fd, char *buf, size_t cap, size_t *len, const char *needle, int ms)
{
    int64_t end = gf_mono_ms() + ms;
    for (;;) {
        buf[*len] = '\0';
        if (strstr(buf, needle) != NULL)
            return true;
        int left = (int)(end - gf_mono_ms());
        if (left <= 0 || *len + 1 >= cap)
            return false;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, left) <= 0)
            return false;
        ssize_t r = recv(fd, buf + *len, cap - 1 - *len, 0);
        if (r <= 0)
            return false;
        *len += (size_t)r;
    }
}

static int open_stream(int port, char *buf, size_t cap, size_t *len)
{
    int fd = client_connect(port);
    send_str(fd, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
    *len = 0;
    if (!read_until(fd, buf, cap, len, "data: {\"snapshot\":true}\n\n", 5000))
        fail_msg("no snapshot; got %zu bytes: %s", *len, buf);
    return fd;
}

static void wait_clients(int n)
{
    int64_t end = gf_mono_ms() + 5000;
    while (gf_sse_clients(g_hub) != n && gf_mono_ms() < end)
        usleep(10 * 1000);
    assert_int_equal(gf_sse_clients(g_hub), n);
}

static void a_stream_gets_its_snapshot_then_every_event_in_order(void **state)
{
    (void)state;
    g_hub = gf_sse_hub_new("t1", 4, 1 << 20);
    int port;
    struct gf_http_server *s = start(2, &port);
    char buf[8192];
    size_t len;
    int fd = open_stream(port, buf, sizeof buf, &len);
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    char v[64];
    assert_int_equal(client_header(buf, "Content-Type", v, sizeof v), 1);
    assert_string_equal(v, "text/event-stream; charset=utf-8");
    assert_int_equal(client_header(buf, "X-Accel-Buffering", v, sizeof v), 1);
    assert_string_equal(v, "no");
    wait_clients(1);
    for (int i = 0; i < 50; i++) {
        char data[32];
        snprintf(data, sizeof data, "{\"n\":%d}", i);
        assert_true(gf_sse_publish(g_hub, "tx", data));
    }
    assert_true(read_until(fd, buf, sizeof buf, &len, "data: {\"n\":49}\n\n", 5000));
    const char *at = buf;
    for (int i = 0; i < 50; i++) { /* in order, each whole */
        char frame[48];
        snprintf(frame, sizeof frame, "event: tx\ndata: {\"n\":%d}\n\n", i);
        const char *f = strstr(at, frame);
        if (f == NULL)
            fail_msg("event %d missing or out of order", i);
        at = f + strlen(frame);
    }
    /* The client goes: its stream is freed once the server notices (at the next bytes). */
    close(fd);
    int64_t end = gf_mono_ms() + 5000;
    while (gf_sse_clients(g_hub) > 0 && gf_mono_ms() < end) {
        (void)gf_sse_publish(g_hub, "tx", "{}");
        usleep(20 * 1000);
    }
    assert_int_equal(gf_sse_clients(g_hub), 0);
    assert_false(gf_sse_publish(g_hub, "tx", "{}")); /* nobody listens: nothing sent */
    gf_sse_hub_free(g_hub);
    gf_http_server_stop(s);
}

static void waiting_streams_hold_no_server_thread(void **state)
{
    (void)state;
    g_hub = gf_sse_hub_new("t2", 8, 1 << 20);
    int port;
    struct gf_http_server *s = start(1, &port); /* one thread for everything */
    char buf[4096];
    size_t len;
    int fds[3];
    for (int i = 0; i < 3; i++)
        fds[i] = open_stream(port, buf, sizeof buf, &len);
    wait_clients(3);
    int fd = client_connect(port);
    int64_t t0 = gf_mono_ms();
    send_str(fd, "GET /plain HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(client_read_answer(fd, buf, sizeof buf, NULL), 200);
    assert_true(gf_mono_ms() - t0 < 2000);
    close(fd);
    /* ... and the streams still get their events. */
    assert_true(gf_sse_publish(g_hub, "tx", "{\"after\":1}"));
    for (int i = 0; i < 3; i++) {
        len = 0;
        assert_true(read_until(fds[i], buf, sizeof buf, &len, "{\"after\":1}", 5000));
        close(fds[i]);
    }
    gf_sse_hub_free(g_hub);
    gf_http_server_stop(s);
}

static void a_full_hub_answers_503_and_a_lagging_client_is_ended(void **state)
{
    (void)state;
    g_hub = gf_sse_hub_new("t3", 1, 4096);
    int port;
    struct gf_http_server *s = start(2, &port);
    char buf[4096];
    size_t len;
    int fd = open_stream(port, buf, sizeof buf, &len);
    wait_clients(1);
    int fd2 = client_connect(port);
    send_str(fd2, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(client_read_answer(fd2, buf, sizeof buf, NULL), 503);
    assert_non_null(strstr(buf, "\"error\":\"too_many_streams\""));
    char v[16];
    assert_int_equal(client_header(buf, "Retry-After", v, sizeof v), 1);
    close(fd2);
    /* fd never reads: megabytes published fill the socket, then the 4 KiB backlog. */
    static char big[2048];
    memset(big, 'x', sizeof big - 1);
    for (int i = 0; i < 20000; i++)
        (void)gf_sse_publish(g_hub, "tx", big);
    size_t mlen;
    char *m = gf_metrics_render(&mlen);
    assert_non_null(m);
    assert_non_null(strstr(m, "gf_sse_dropped_total{hub=\"t3\"} 1"));
    free(m);
    close(fd); /* its connection ends; the stream is freed */
    wait_clients(0);
    gf_sse_hub_free(g_hub);
    gf_http_server_stop(s);
}

static void freeing_the_hub_ends_every_stream_cleanly(void **state)
{
    (void)state;
    g_hub = gf_sse_hub_new("t4", 4, 1 << 20);
    int port;
    struct gf_http_server *s = start(2, &port);
    char buf[4096];
    size_t len;
    int fd = open_stream(port, buf, sizeof buf, &len);
    wait_clients(1);
    gf_sse_hub_free(g_hub); /* the last chunk of a chunked answer: "0\r\n\r\n" */
    assert_true(read_until(fd, buf, sizeof buf, &len, "\r\n0\r\n\r\n", 5000));
    close(fd);
    gf_http_server_stop(s);
}

static void bad_events_are_refused(void **state)
{
    (void)state;
    char *b = NULL;
    size_t n = 0;
    assert_false(gf_sse_frame(&b, &n, "tx", "two\nlines"));
    assert_false(gf_sse_frame(&b, &n, "tx", "cr\r"));
    assert_false(gf_sse_frame(&b, &n, "has space", "{}"));
    assert_false(gf_sse_frame(&b, &n, "", "{}"));
    assert_false(gf_sse_frame(&b, &n, "colon:", "{}"));
    assert_int_equal(n, 0);
    assert_true(gf_sse_frame(&b, &n, "tx", "{}"));
    assert_string_equal(b, "event: tx\ndata: {}\n\n");
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_stream_gets_its_snapshot_then_every_event_in_order),
        cmocka_unit_test(waiting_streams_hold_no_server_thread),
        cmocka_unit_test(a_full_hub_answers_503_and_a_lagging_client_is_ended),
        cmocka_unit_test(freeing_the_hub_ends_every_stream_cleanly),
        cmocka_unit_test(bad_events_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
