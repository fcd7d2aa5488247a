/* The console's stream (issue 17), server side: GET /console/api/stream answers operators only;
 * a buy made through the API shows up on an open stream with every stage — claimed, prepared,
 * decided (backend), finalized (gxp, heard with LISTEN on gxp-db), stored (eventlog) — each
 * noted by the process that saw it and carried over the gf.console exchange; a new stream
 * starts from the recent transactions; figures come once a second; a full hub answers 503.
 * One world with events, the real backend, gxp and eventlog; streams read from raw sockets. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend_fixture.h"
#include "gf/clock.h"
#include "raw_client.h"

/* One open stream, read by a thread of its own into a growing buffer. */
struct stream {
    int fd;
    pthread_t th;
    pthread_mutex_t mu;
    char *buf;
    size_t len, cap;
    bool done;
};

static void *reader(void *arg)
{
    struct stream *s = arg;
    char tmp[8192];
    for (;;) {
        ssize_t r = recv(s->fd, tmp, sizeof tmp, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        pthread_mutex_lock(&s->mu);
        if (r <= 0) {
            s->done = true;
            pthread_mutex_unlock(&s->mu);
            return NULL;
        }
        if (s->len + (size_t)r + 1 > s->cap) {
            s->cap = (s->len + (size_t)r + 1) * 2;
            s->buf = realloc(s->buf, s->cap);
        }
        memcpy(s->buf + s->len, tmp, (size_t)r);
        s->len += (size_t)r;
        s->buf[s->len] = '\0';
        pthread_mutex_unlock(&s->mu);
    }
}

/* Opens a stream with token (NULL: none) and starts its reader. */
static void stream_open(struct stream *s, const char *token)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->fd = client_connect_timeout(W.http_port, 30);
    char req[2048];
    snprintf(req, sizeof req,
             "GET /console/api/stream HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n%s%s%s"
             "\r\n",
             token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "");
    send_str(s->fd, req);
    assert_int_equal(pthread_create(&s->th, NULL, reader, s), 0);
}

static void stream_close(struct stream *s)
{
    shutdown(s->fd, SHUT_RDWR);
    pthread_join(s->th, NULL);
    close(s->fd);
    free(s->buf);
    pthread_mutex_destroy(&s->mu);
}

/* Waits until the stream's text holds needle; true if it did within ms. */
static bool stream_wait(struct stream *s, const char *needle, int ms)
{
    int64_t end = gf_mono_ms() + ms;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        bool found = s->buf != NULL && strstr(s->buf, needle) != NULL;
        bool done = s->done;
        pthread_mutex_unlock(&s->mu);
        if (found)
            return true;
        if (done || gf_mono_ms() >= end)
            return false;
        usleep(10 * 1000);
    }
}

/* Calls fn for each transaction frame of the stream's "txs" events so far, in order. */
static void each_tx_frame(struct stream *s, void (*fn)(json_t *f, void *arg), void *arg)
{
    pthread_mutex_lock(&s->mu);
    char *copy = strdup(s->buf != NULL ? s->buf : "");
    pthread_mutex_unlock(&s->mu);
    for (char *p = copy; (p = strstr(p, "event: txs\ndata: ")) != NULL;) {
        p += strlen("event: txs\ndata: ");
        char *nl = strchr(p, '\n');
        if (nl == NULL)
            break;
        *nl = '\0';
        json_t *arr = json_loads(p, 0, NULL);
        p = nl + 1;
        size_t k;
        json_t *f;
        json_array_foreach(arr, k, f)
        {
            fn(f, arg);
        }
        json_decref(arr);
    }
    free(copy);
}

/* A frame's field as a string ("" when it is not one). */
static const char *fstr(json_t *f, const char *key)
{
    const char *v = json_string_value(json_object_get(f, key));
    return v != NULL ? v : "";
}

struct stages {
    const char *cid;
    unsigned got;
    json_t **frames;
};

static void stage_seen(json_t *f, void *arg)
{
    static const char *const names[5] = {"claimed", "prepared", "decided", "finalized", "stored"};
    struct stages *st = arg;
    for (int i = 0; strcmp(fstr(f, "correlationId"), st->cid) == 0 && i < 5; i++) {
        if (strcmp(fstr(f, "stage"), names[i]) == 0) {
            st->got |= 1u << i;
            if (st->frames != NULL) {
                json_decref(st->frames[i]);
                st->frames[i] = json_incref(f);
            }
        }
    }
}

/* The stages of cid in the stream's "txs" frames so far: which arrived (a bit per stage of
 * "claimed,prepared,decided,finalized,stored"), the last of each kept in frames. */
static unsigned stages_of(struct stream *s, const char *cid, json_t *frames[5])
{
    struct stages st = {cid, 0, frames};
    each_tx_frame(s, stage_seen, &st);
    return st.got;
}

struct stored {
    const char *cid, *name;
    bool seen;
};

static void stored_seen(json_t *f, void *arg)
{
    struct stored *st = arg;
    if (strcmp(fstr(f, "correlationId"), st->cid) == 0 && strcmp(fstr(f, "stage"), "stored") == 0 &&
        strcmp(fstr(json_object_get(f, "detail"), "event"), st->name) == 0)
        st->seen = true;
}

/* Whether the stream's "txs" frames so far hold cid's stage "stored" for the event name. */
static bool stored_event(struct stream *s, const char *cid, const char *name)
{
    struct stored st = {cid, name, false};
    each_tx_frame(s, stored_seen, &st);
    return st.seen;
}

static bool stored_event_within(struct stream *s, const char *cid, const char *name, int ms)
{
    int64_t end = gf_mono_ms() + ms;
    while (!stored_event(s, cid, name)) {
        if (gf_mono_ms() >= end)
            return false;
        usleep(20 * 1000);
    }
    return true;
}

static long long g_user, g_item;

static int setup(void **state)
{
    (void)state;
    struct world_options o = {.events = true};
    if (world_start(&W, &o) != 0)
        return -1;
    return 0;
}

/* A user with GXP and an item with stock, through the API. */
static void shop(void)
{
    if (g_user != 0)
        return;
    g_user = api_create_user(&W, "console-buyer");
    api_add_gxp(&W, g_user, 1000, NULL);
    g_item = api_create_item(&W, "console-item", 7);
    api_create_marketplace_item(&W, g_item, 100);
}

/* Buys once; the buy's correlation id into cid. */
static void buy(char cid[40])
{
    char body[96];
    snprintf(body, sizeof body, "{\"userId\":%lld,\"itemId\":%lld}", g_user, g_item);
    struct http_res r;
    assert_int_equal(http(&W, "POST", "/marketplace/item/buy", body, NULL, &r), 200);
    snprintf(cid, 40, "%s", jstr(r.json, "correlationId"));
    http_res_free(&r);
}

static void the_stream_is_for_operators_only(void **state)
{
    (void)state;
    static struct stream s; /* static: a failed assertion leaves its reader running */
    stream_open(&s, NULL);
    assert_true(stream_wait(&s, "\r\n\r\n", 5000));
    assert_non_null(strstr(s.buf, "HTTP/1.1 401"));
    assert_non_null(strstr(s.buf, "\"error\":\"unauthenticated\""));
    stream_close(&s);
    char *user = world_token(&W, GF_ROLE_USER, 1, 0, 300);
    stream_open(&s, user);
    assert_true(stream_wait(&s, "\r\n\r\n", 5000));
    assert_non_null(strstr(s.buf, "HTTP/1.1 403"));
    stream_close(&s);
    free(user);
    char *expired = world_token(&W, GF_ROLE_ADMIN, 1, 0, -120);
    stream_open(&s, expired);
    assert_true(stream_wait(&s, "\r\n\r\n", 5000));
    assert_non_null(strstr(s.buf, "HTTP/1.1 401"));
    stream_close(&s);
    free(expired);
}

static void a_buy_shows_every_stage_on_an_open_stream(void **state)
{
    (void)state;
    shop();
    static struct stream s; /* static: a failed assertion leaves its reader running */
    stream_open(&s, W.admin_token);
    assert_true(stream_wait(&s, "event: hello\ndata: {", 5000));
    assert_non_null(strstr(s.buf, "HTTP/1.1 200"));
    assert_non_null(strstr(s.buf, "Content-Type: text/event-stream"));
    /* The feed starts when a console watches: every service is heard within a second or so
     * (their probes), and the figures say so. */
    assert_true(stream_wait(&s, "\"feeding\":3", 10000));
    char cid[40];
    int64_t t0 = gf_mono_ms();
    buy(cid);
    json_t *frames[5] = {0};
    unsigned got = 0;
    int64_t all_ms = -1;
    while (gf_mono_ms() - t0 < 10000) {
        got = stages_of(&s, cid, frames);
        if (got == 0x1f) {
            all_ms = gf_mono_ms() - t0;
            break;
        }
        usleep(20 * 1000);
    }
    if (got != 0x1f)
        fail_msg("stages of %s seen: 0x%x (want claimed..stored, 0x1f); stream: %.2000s", cid, got,
                 s.buf);
    printf("every stage of the buy on the stream after %lld ms\n", (long long)all_ms);
    /* The claim carries the kind, user, item and amount; a stage heard before the claim (gxp's
     * and eventlog's notes can overtake the backend's) carries what was known then, and never
     * anything else. */
    for (int i = 0; i < 5; i++) {
        const char *kind = jstr(frames[i], "kind");
        if (i == 0 || kind[0] != '\0') {
            assert_string_equal(kind, "buy");
            assert_int_equal(jint(frames[i], "userId"), g_user);
            assert_int_equal(jint(frames[i], "itemId"), g_item);
            assert_int_equal(jint(frames[i], "amount"), 7);
        }
        assert_iso8601_ms(jstr(frames[i], "at"));
    }
    json_t *d = json_object_get(frames[2], "detail");
    assert_string_equal(jstr(d, "outcome"), "succeeded");
    d = json_object_get(frames[3], "detail");
    assert_string_equal(jstr(d, "status"), "COMMITTED");
    assert_string_equal(jstr(d, "source"), "replication");
    /* The buy stores its event; an operator's buy (this test's token is an admin's) stores
     * its audit first, under the same correlation id: both are the stage "stored". */
    d = json_object_get(frames[4], "detail");
    const char *ev = jstr(d, "event");
    assert_true(strcmp(ev, "BuyItemEvent") == 0 || strcmp(ev, "AdminActionEvent") == 0);
    assert_true(stored_event_within(&s, cid, "BuyItemEvent", 5000));
    assert_true(stored_event_within(&s, cid, "AdminActionEvent", 5000));
    for (int i = 0; i < 5; i++)
        json_decref(frames[i]);
    /* The stored event is on the event stream too. */
    char needle[80];
    snprintf(needle, sizeof needle, "\"correlationId\":\"%s\"", cid);
    assert_true(stream_wait(&s, "event: events\ndata: [{", 5000));
    /* Figures once a second. */
    assert_true(stream_wait(&s, "event: stats\ndata: {", 3000));
    stream_close(&s);

    /* A new stream starts from the recent transactions: the buy is in its hello. */
    stream_open(&s, W.admin_token);
    assert_true(stream_wait(&s, "event: hello\ndata: {", 5000));
    assert_true(stream_wait(&s, "\n\n", 5000));
    assert_true(stream_wait(&s, needle, 1000));
    /* ... whole: every stage of it with the claim's kind, user and amount. */
    char *h = strstr(s.buf, "event: hello\ndata: ") + strlen("event: hello\ndata: ");
    char *end = strchr(h, '\n');
    json_t *hello = json_loadb(h, (size_t)(end - h), 0, NULL);
    assert_non_null(hello);
    size_t i, seen = 0;
    json_t *f;
    json_array_foreach(jarr(hello, "recent"), i, f)
    {
        if (strcmp(jstr(f, "correlationId"), cid) != 0)
            continue;
        seen++;
        assert_string_equal(jstr(f, "kind"), "buy");
        assert_int_equal(jint(f, "userId"), g_user);
        assert_int_equal(jint(f, "amount"), 7);
    }
    assert_int_equal(seen, 5);
    json_decref(hello);
    stream_close(&s);
}

static void a_full_hub_answers_503_and_frees_up(void **state)
{
    (void)state;
    static struct stream s[17];
    /* Streams the earlier tests closed count until the server notices (at their next bytes:
     * the figures, every second), so a 503 while filling the hub is retried a while. */
    int64_t until = gf_mono_ms() + 15000;
    for (int i = 0; i < 16; i++) {
        stream_open(&s[i], W.admin_token);
        while (!stream_wait(&s[i], "event: hello", 5000)) {
            assert_true(gf_mono_ms() < until);
            stream_close(&s[i]);
            usleep(500 * 1000);
            stream_open(&s[i], W.admin_token);
        }
    }
    stream_open(&s[16], W.admin_token);
    assert_true(stream_wait(&s[16], "\r\n\r\n", 5000));
    assert_non_null(strstr(s[16].buf, "HTTP/1.1 503"));
    assert_non_null(strstr(s[16].buf, "too_many_streams"));
    stream_close(&s[16]);
    for (int i = 0; i < 16; i++)
        stream_close(&s[i]);
    /* The closed streams are let go (noticed at the next bytes, a figure within a second). */
    int64_t end = gf_mono_ms() + 10000;
    bool opened = false;
    while (!opened && gf_mono_ms() < end) {
        static struct stream t;
        stream_open(&t, W.admin_token);
        opened = stream_wait(&t, "event: hello", 2000);
        stream_close(&t);
    }
    assert_true(opened);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_stream_is_for_operators_only),
        cmocka_unit_test(a_buy_shows_every_stage_on_an_open_stream),
        cmocka_unit_test(a_full_hub_answers_503_and_frees_up),
    };
    if (getenv("GF_TEST_FILTER"))
        cmocka_set_test_filter(getenv("GF_TEST_FILTER"));
    return cmocka_run_group_tests_name("console", tests, setup, world_teardown);
}
