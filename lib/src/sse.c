/* See sse.h. One mutex per hub guards its clients and their buffers. A client's connection is
 * suspended by the content reader when it has nothing to send, and resumed by whoever gives
 * it bytes (a publish, the heartbeat, the end); libmicrohttpd allows both from any thread.
 * The response's free callback is the one place a client is unlinked and freed, so the hub
 * waits for it before it goes. */
#include "gf/sse.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gf/buf.h"
#include "gf/clock.h"
#include "gf/log.h"
#include "gf/metrics.h"
#include "http_internal.h"

#define HEARTBEAT_MS 15000
#define FREE_WAIT_MS 5000
#define NAMES_MAX 8
#define NAME_MAX_LEN 32
#define EVENT_MAX 32

/* Per hub name, for the metrics: series live until exit, hubs may not. */
struct sse_series {
    char name[NAME_MAX_LEN];
    atomic_int streams;
    struct gf_counter *events, *dropped;
};

static struct sse_series g_series[NAMES_MAX];
static int g_nseries;
static pthread_mutex_t g_series_mu = PTHREAD_MUTEX_INITIALIZER;

struct gf_sse__client {
    struct gf_sse_hub *hub;
    struct MHD_Connection *conn; /* set when queued; NULL before */
    struct gf_buf out;           /* frames not yet given to the server */
    size_t off;                  /* bytes of out already given */
    bool suspended;
    bool ended;
    struct gf_sse__client *prev, *next;
};

struct gf_sse_hub {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a client was freed; the heartbeat's stop */
    struct gf_sse__client *head;
    int nclients; /* linked (queued or about to be) */
    int max_clients;
    size_t max_backlog;
    bool closing;
    pthread_t heartbeat;
    struct sse_series *series;
};

static double series_streams(void *arg)
{
    return (double)atomic_load(&((struct sse_series *)arg)->streams);
}

static struct sse_series *series_for(const char *name)
{
    pthread_mutex_lock(&g_series_mu);
    struct sse_series *s = NULL;
    for (int i = 0; i < g_nseries && s == NULL; i++) {
        if (strcmp(g_series[i].name, name) == 0)
            s = &g_series[i];
    }
    if (s == NULL && g_nseries < NAMES_MAX && strlen(name) < NAME_MAX_LEN) {
        s = &g_series[g_nseries++];
        snprintf(s->name, sizeof s->name, "%s", name);
        char labels[NAME_MAX_LEN + 16];
        snprintf(labels, sizeof labels, "hub=\"%s\"", name);
        gf_metrics_gauge_fn("gf_sse_streams", "Server-sent event streams open now.", labels,
                            series_streams, s);
        s->events = gf_metrics_counter("gf_sse_events_total",
                                       "Events published to the streams of a hub.", labels);
        s->dropped = gf_metrics_counter(
            "gf_sse_dropped_total",
            "Streams ended because their client fell more than the backlog limit behind.", labels);
    }
    pthread_mutex_unlock(&g_series_mu);
    return s;
}

/* Gives c bytes, or ends it when it is too far behind; resumes its connection. Hub locked. */
static void give(struct gf_sse_hub *h, struct gf_sse__client *c, const char *frame, size_t n)
{
    if (c->ended)
        return;
    if (gf_buf_len(&c->out) - c->off + n > h->max_backlog ||
        gf_buf_add(&c->out, frame, n) != GF_OK) {
        c->ended = true;
        if (h->series != NULL)
            gf_counter_add(h->series->dropped, 1);
        GF_LOG_RL(GF_LOG_WARN, 5000, "sse stream ended: its client fell %zu bytes behind",
                  gf_buf_len(&c->out) - c->off);
    }
    if (c->suspended && c->conn != NULL) {
        c->suspended = false;
        MHD_resume_connection(c->conn);
    }
}

static void *heartbeat_run(void *arg)
{
    struct gf_sse_hub *h = arg;
    static const char ping[] = ": keep-alive\n\n";
    pthread_mutex_lock(&h->mu);
    while (!h->closing) {
        struct timespec until = gf_deadline_mono_ts(gf_deadline_in_ms(HEARTBEAT_MS), -1);
        int rc = 0;
        while (!h->closing && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&h->cv, &h->mu, &until);
        if (h->closing)
            break;
        for (struct gf_sse__client *c = h->head; c != NULL; c = c->next) {
            if (gf_buf_len(&c->out) == c->off) /* idle: a comment keeps it open */
                give(h, c, ping, sizeof ping - 1);
        }
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

struct gf_sse_hub *gf_sse_hub_new(const char *name, int max_clients, size_t max_backlog)
{
    struct gf_sse_hub *h = calloc(1, sizeof *h);
    if (h == NULL) {
        GF_ERROR("sse out of memory for a hub");
        return NULL;
    }
    h->max_clients = max_clients > 0 ? max_clients : 1;
    h->max_backlog = max_backlog > 0 ? max_backlog : 1 << 20;
    h->series = series_for(name != NULL ? name : "sse");
    pthread_mutex_init(&h->mu, NULL);
    gf_cond_init_mono(&h->cv);
    if (pthread_create(&h->heartbeat, NULL, heartbeat_run, h) != 0) {
        GF_ERROR("sse cannot start the heartbeat thread");
        pthread_cond_destroy(&h->cv);
        pthread_mutex_destroy(&h->mu);
        free(h);
        return NULL;
    }
    return h;
}

/* Ends every stream and waits (at most FREE_WAIT_MS) until the server let go of them; the
 * streams still held then. */
static int close_streams(struct gf_sse_hub *h)
{
    pthread_mutex_lock(&h->mu);
    bool first = !h->closing;
    h->closing = true;
    pthread_cond_broadcast(&h->cv);
    for (struct gf_sse__client *c = h->head; c != NULL; c = c->next) {
        c->ended = true;
        if (c->suspended && c->conn != NULL) {
            c->suspended = false;
            MHD_resume_connection(c->conn);
        }
    }
    pthread_mutex_unlock(&h->mu);
    if (first)
        pthread_join(h->heartbeat, NULL);
    pthread_mutex_lock(&h->mu);
    struct timespec until = gf_deadline_mono_ts(gf_deadline_in_ms(FREE_WAIT_MS), -1);
    int rc = 0;
    while (h->nclients > 0 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&h->cv, &h->mu, &until);
    int left = h->nclients;
    pthread_mutex_unlock(&h->mu);
    return left;
}

void gf_sse_hub_close(struct gf_sse_hub *h)
{
    if (h != NULL)
        (void)close_streams(h);
}

void gf_sse_hub_free(struct gf_sse_hub *h)
{
    if (h == NULL)
        return;
    int left = close_streams(h);
    if (left > 0) {
        /* The server still holds streams of this hub: freeing it would leave them a dangling
         * pointer. Leaked instead (a shutdown that is ending the process anyway). */
        GF_ERROR("sse hub freed with %d streams still held by the server: left allocated", left);
        return;
    }
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static bool valid_token(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        if (n >= max || s[n] == '\n' || s[n] == '\r' || s[n] == ':' || s[n] == ' ')
            return false;
    }
    return n > 0;
}

bool gf_sse_frame(char **buf, size_t *len, const char *event, const char *data)
{
    if (event == NULL || data == NULL || !valid_token(event, EVENT_MAX) ||
        strpbrk(data, "\r\n") != NULL)
        return false;
    size_t n = strlen(event) + strlen(data) + 16;
    char *b = realloc(*buf, *len + n + 1);
    if (b == NULL)
        return false;
    int w = snprintf(b + *len, n + 1, "event: %s\ndata: %s\n\n", event, data);
    *buf = b;
    *len += (size_t)w;
    return true;
}

bool gf_sse_publish(struct gf_sse_hub *h, const char *event, const char *data)
{
    if (h == NULL)
        return false;
    pthread_mutex_lock(&h->mu);
    bool any = h->head != NULL && !h->closing;
    pthread_mutex_unlock(&h->mu);
    if (!any)
        return false;
    char *frame = NULL;
    size_t n = 0;
    if (!gf_sse_frame(&frame, &n, event, data)) {
        free(frame);
        return false;
    }
    pthread_mutex_lock(&h->mu);
    for (struct gf_sse__client *c = h->head; c != NULL; c = c->next)
        give(h, c, frame, n);
    pthread_mutex_unlock(&h->mu);
    free(frame);
    if (h->series != NULL)
        gf_counter_add(h->series->events, 1);
    return true;
}

int gf_sse_clients(struct gf_sse_hub *h)
{
    pthread_mutex_lock(&h->mu);
    int n = h->nclients;
    pthread_mutex_unlock(&h->mu);
    return n;
}

/* Unlinks and frees c (the response's free callback, or a response never queued). */
static void client_free(void *cls)
{
    struct gf_sse__client *c = cls;
    struct gf_sse_hub *h = c->hub;
    pthread_mutex_lock(&h->mu);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        h->head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    h->nclients--;
    if (h->series != NULL)
        atomic_fetch_sub(&h->series->streams, 1);
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    gf_buf_reset(&c->out);
    free(c);
}

/* libmicrohttpd asks for the next bytes: what is waiting, the end, or (nothing yet) a
 * suspension until give() has bytes. */
static ssize_t client_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct gf_sse__client *c = cls;
    struct gf_sse_hub *h = c->hub;
    pthread_mutex_lock(&h->mu);
    size_t have = gf_buf_len(&c->out) - c->off;
    ssize_t ret;
    if (have > 0) {
        size_t n = have < max ? have : max;
        memcpy(buf, c->out.p + c->off, n);
        c->off += n;
        if (c->off == gf_buf_len(&c->out)) {
            gf_buf_reset(&c->out); /* all given: the next frame starts a new buffer */
            c->off = 0;
        }
        ret = (ssize_t)n;
    } else if (c->ended) {
        ret = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        c->suspended = true;
        MHD_suspend_connection(c->conn);
        ret = 0;
    }
    pthread_mutex_unlock(&h->mu);
    return ret;
}

bool gf_http_reply_sse(struct gf_http_response *resp, struct gf_sse_hub *h, const char *first,
                       const char *cid)
{
    pthread_mutex_lock(&h->mu);
    bool full = h->closing || h->nclients >= h->max_clients;
    pthread_mutex_unlock(&h->mu);
    if (full) {
        gf_http_set_body(resp, 503, "application/json",
                         "{\"message\":\"too many event streams are open: retry later\","
                         "\"error\":\"too_many_streams\",\"correlationId\":\"%s\"}",
                         cid != NULL ? cid : "");
        gf_http_add_header(resp, "Retry-After", "5");
        return true;
    }
    struct gf_sse__client *c = calloc(1, sizeof *c);
    if (c != NULL)
        gf_buf_init(&c->out, 0); /* bounded by max_backlog in give(), not by the buffer */
    if (c == NULL || (first != NULL && gf_buf_add(&c->out, first, strlen(first)) != GF_OK)) {
        if (c != NULL)
            gf_buf_reset(&c->out);
        free(c);
        gf_http_set_body(resp, 500, "application/json",
                         "{\"message\":\"out of memory\",\"error\":\"internal\","
                         "\"correlationId\":\"%s\"}",
                         cid != NULL ? cid : "");
        return false;
    }
    c->hub = h;
    pthread_mutex_lock(&h->mu);
    c->next = h->head;
    if (h->head != NULL)
        h->head->prev = c;
    h->head = c;
    h->nclients++;
    if (h->series != NULL)
        atomic_fetch_add(&h->series->streams, 1);
    pthread_mutex_unlock(&h->mu);
    resp->status = 200;
    resp->content_type = "text/event-stream; charset=utf-8";
    resp->stream = c;
    gf_http_add_header(resp, "Cache-Control", "no-store");
    gf_http_add_header(resp, "X-Accel-Buffering", "no"); /* nginx: pass each event at once */
    return true;
}

struct MHD_Response *gf_sse__response(struct gf_sse__client *c, struct MHD_Connection *conn)
{
    struct gf_sse_hub *h = c->hub;
    pthread_mutex_lock(&h->mu);
    c->conn = conn;
    pthread_mutex_unlock(&h->mu);
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, client_read, c, client_free);
    if (r == NULL)
        client_free(c);
    return r;
}

void gf_sse__abandon(struct gf_sse__client *c)
{
    client_free(c);
}
