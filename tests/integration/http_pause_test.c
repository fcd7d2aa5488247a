/* A paused backend (SIGSTOP, as a frozen container or VM) must not answer 408 to requests that
 * arrived whole while it slept, and every 200 must match its effect. The backend runs with
 * short head and body deadlines (300 ms) and few threads; buys are sent on keep-alive
 * connections idle past the head deadline, some whole and some split (head before the pause,
 * the rest of the body during it), half of them with an Idempotency-Key, plus a few sent just
 * before the stop so that their handlers are caught mid-flight. The pause lasts five times the
 * deadlines. After SIGCONT: no 408 anywhere; keyed buys are retried with their key until a
 * definite answer; the user's items of that item equal the 200s (keyed once each), within the
 * unkeyed answers that came back without a status; SPEC §5's invariants hold. Before the fix
 * the connection guard answered 408 to requests it then served. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend_fixture.h"
#include "gf/clock.h"
#include "raw_client.h"

#define DEADLINE_MS 300
#define PAUSE_MS (5 * DEADLINE_MS)
#define WHOLE 24 /* whole buys sent during the pause on idle keep-alive connections */
#define SPLIT 12 /* head before the pause, the rest of the body during it */
#define EARLY 4  /* sent right before the stop: handlers caught mid-flight */
#define NCONN (WHOLE + SPLIT + EARLY)
#define STOCK 1000

static void buy_head(char *out, size_t n, int i, const char *body)
{
    char key[64] = "";
    if (i % 2 == 0)
        snprintf(key, sizeof key, "Idempotency-Key: pause-buy-%d\r\n", i);
    snprintf(out, n,
             "POST /marketplace/item/buy HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "%sContent-Length: %zu\r\n\r\n",
             key, strlen(body));
}

static long long user_items(long long user, long long item)
{
    struct http_res r;
    assert_int_equal(http(&W, "GET", "/user/item", NULL, NULL, &r), 200);
    long long n = 0;
    json_t *rows = jarr(r.json, "userItems");
    size_t k;
    json_t *row;
    json_array_foreach(rows, k, row)
    {
        if (jint(row, "userId") == user && jint(row, "itemId") == item)
            n += jint(row, "count");
    }
    http_res_free(&r);
    return n;
}

static void paused_backend_never_answers_408_to_whole_requests(void **state)
{
    (void)state;
    long long user = api_create_user(&W, "pause-buyer");
    api_add_gxp(&W, user, 10 * STOCK, NULL);
    long long item = api_create_item(&W, "pause-item", 1);
    api_create_marketplace_item(&W, item, STOCK);
    long long before = user_items(user, item);

    char body[128], head[512], buf[8192];
    snprintf(body, sizeof body, "{\"userId\":%lld,\"itemId\":%lld}", user, item);
    int fds[NCONN];
    for (int i = 0; i < NCONN; i++) {
        fds[i] = client_connect_timeout(W.http_port, 30);
        send_str(fds[i], "GET /item/svc-info HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_int_equal(client_read_answer(fds[i], buf, sizeof buf, NULL), 200);
    }
    usleep(2 * DEADLINE_MS * 1000); /* every connection idle past the head deadline */
    for (int i = WHOLE; i < WHOLE + SPLIT; i++) {
        buy_head(head, sizeof head, i, body);
        send_str(fds[i], head);
        char first[8];
        snprintf(first, sizeof first, "%.5s", body);
        send_str(fds[i], first);
    }
    usleep(100 * 1000); /* the split heads are read: their bodies are arriving */
    for (int i = WHOLE + SPLIT; i < NCONN; i++) {
        buy_head(head, sizeof head, i, body);
        send_str(fds[i], head);
        send_str(fds[i], body);
    }
    assert_int_equal(kill(W.backend_pid, SIGSTOP), 0);
    int64_t t0 = gf_mono_ms();
    for (int i = 0; i < WHOLE; i++) {
        buy_head(head, sizeof head, i, body);
        send_str(fds[i], head);
        send_str(fds[i], body);
    }
    for (int i = WHOLE; i < WHOLE + SPLIT; i++)
        send_str(fds[i], body + 5);
    usleep(PAUSE_MS * 1000);
    assert_int_equal(kill(W.backend_pid, SIGCONT), 0);
    printf("# paused %lld ms with %d buys waiting\n", (long long)(gf_mono_ms() - t0), NCONN);

    int ok = 0, refused = 0, unknown = 0, n408 = 0, other = 0, retried = 0;
    for (int i = 0; i < NCONN; i++) {
        int st = client_read_answer(fds[i], buf, sizeof buf, NULL);
        close(fds[i]);
        if (st == 408) {
            n408++;
            fprintf(stderr, "connection %d answered 408 (%s)\n", i,
                    i < WHOLE           ? "whole"
                    : i < WHOLE + SPLIT ? "split"
                                        : "early");
        }
        bool keyed = i % 2 == 0;
        /* Keyed: the same key until a definite answer, as a careful client does. */
        for (int attempt = 0;
             keyed && (st < 0 || st >= 500 || st == 408 || st == 409) && attempt < 40; attempt++) {
            if (st == 409 && strstr(buf, "request_in_progress") == NULL)
                break; /* a definite refusal */
            usleep(250 * 1000);
            char key[80];
            snprintf(key, sizeof key, "Idempotency-Key: pause-buy-%d", i);
            const char *h[] = {key, "Content-Type: application/json", NULL};
            struct http_res r;
            st = (int)http(&W, "POST", "/marketplace/item/buy", body, h, &r);
            snprintf(buf, sizeof buf, "%s", r.body);
            http_res_free(&r);
            if (st == 0)
                st = -1;
            retried++;
        }
        if (st == 200)
            ok++;
        else if (st < 0 || (st >= 500 && !keyed))
            unknown++;
        else if (st >= 400 && st < 500)
            refused++;
        else
            other++;
    }
    long long got = user_items(user, item) - before;
    printf("# answers: 200=%d refused=%d unknown=%d 408=%d other=%d (keyed retries %d); "
           "items bought %lld\n",
           ok, refused, unknown, n408, other, retried, got);
    assert_int_equal(n408, 0);
    assert_int_equal(other, 0);
    assert_true(got >= ok);
    assert_true(got <= ok + unknown);
}

static int setup(void **state)
{
    (void)state;
    static const char *const env[] = {
        "BACKEND_HTTP_HEADER_TIMEOUT_MS=300", /* DEADLINE_MS */
        "BACKEND_HTTP_BODY_TIMEOUT_MS=300",
        "BACKEND_HTTP_THREADS=4", /* connections share threads: a thread gets behind */
        "BACKEND_HTTP_MAX_INFLIGHT=4", NULL};
    struct world_options o = {.extra_env = env, .watchers_off = true};
    return world_start(&W, &o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(paused_backend_never_answers_408_to_whole_requests, world_check),
    };
    return cmocka_run_group_tests_name("http_pause", tests, setup, world_teardown);
}
