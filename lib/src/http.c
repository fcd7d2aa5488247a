/* HTTP/1.1 server on libmicrohttpd: one handler per server, a body limit counted by us (MHD has
 * none), correlation ids in and out, and all per-request memory in one struct freed by MHD's
 * completion callback. Against hostile clients: an admission limit on running handlers (503
 * beyond it) and a reaper thread that cuts connections whose request head or body trickles in
 * (MHD's timeout only measures inactivity) and idle ones when the connection limit nears. */
#include "gf/http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "gf/clock.h"
#include "gf/config.h"
#include "gf/log.h"
#include "gf/metrics.h"
#include "gf/uuid.h"

#define CID_HEADER "X-Correlation-Id"

#define DEFAULT_HEADER_TIMEOUT_MS 10000
#define DEFAULT_BODY_TIMEOUT_MS 30000
/* Request head, URL and the read buffer of one connection must fit in this (MHD's default,
 * set explicitly): larger heads get 431, longer URLs 414, from MHD itself. */
#define CONNECTION_MEMORY 32768
#define REAPER_TICK_MS 200
/* An idle connection's socket is looked at no more often than this. */
#define IDLE_RECHECK_US 1000000
/* Received bytes within this of a phase's start may belong to the previous request (the
 * kernel counts in jiffies). */
#define RECV_SLOP_US 20000
/* A reaper tick later than this after the previous one, with the process's CPU time grown by
 * less than a tenth of it, means the process did not run: SIGSTOP, a frozen container or VM.
 * That time is the server's, not the clients'. (A reaper late because the other threads are
 * busy is not a pause: their CPU time grew.) */
#define STALL_US 1000000
/* Descriptors left for everything else (database, broker, gRPC, logs) below RLIMIT_NOFILE. */
#define FD_HEADROOM 256

static const char *const default_unlimited[] = {"/healthz", "/readyz", "/metrics", NULL};

/* Where a connection is in its request/response cycle; the reaper cuts by phase:
 *   HEAD    incomplete past header_timeout: 408 and close;
 *   BODY    incomplete past body_timeout:   408 and close;
 *   HANDLER the request is here whole (its body complete, or its handler running): never cut;
 *   SENDING the answer is not taken past body_timeout: closed without writing anything.
 * A connection waiting on the server (bytes unread in the kernel, an answer not yet written,
 * the process paused) is never the client's fault and is not cut. The phase and a generation
 * count share one atomic word, and the reaper cuts by compare-and-swap to PHASE_CUT from the
 * very state it judged: a request whose head or body completes at the same moment either wins
 * (its handler runs, nothing is cut) or loses (it is refused and its handler never runs), so a
 * 408 always means the work was not done. */
enum conn_phase {
    PHASE_HEAD,    /* waiting for (the rest of) a request head, or idle between requests */
    PHASE_BODY,    /* head read: the body is arriving */
    PHASE_HANDLER, /* the request arrived whole; its handler runs or is about to: never cut */
    PHASE_SENDING, /* an answer is queued: the client is taking it */
    PHASE_CUT,     /* the reaper cut it: nothing more runs or is answered on it */
};
#define PHASE_BITS 3u
#define PHASE_MASK ((1u << PHASE_BITS) - 1)

enum cut_reason { CUT_NONE, CUT_HEADER, CUT_BODY, CUT_SEND, CUT_PRESSURE, CUT_NREASONS };
static const char *const cut_reason_names[CUT_NREASONS] = {"none", "header_timeout", "body_timeout",
                                                           "send_timeout", "connection_pressure"};

/* One open connection, registered from MHD's "started" notification to its "closed" one
 * (MHD closes the descriptor only after the latter): while registered, fd is this
 * connection's, so the reaper may shut it down under conns_mu without hitting a reused fd. */
struct conn_track {
    struct conn_track *prev, *next; /* srv->conns_*, under conns_mu */
    int fd;
    /* (generation << PHASE_BITS) | enum conn_phase: the MHD thread moves it on (track_set),
     * the reaper only ever swaps it to PHASE_CUT. */
    atomic_uint state;
    atomic_llong phase_us;    /* gf_mono_us() when the phase began (stored before state) */
    atomic_llong progress_us; /* when the server last took body bytes (or the phase began) */
    atomic_llong body_left;   /* body bytes still to come by Content-Length; -1: not known */
    /* The reaper's own, under conns_mu: */
    unsigned seen_gen;
    int64_t head_seen_us;  /* unprocessed bytes first noticed (0: not yet) in this phase */
    int64_t next_check_us; /* an idle one is looked at again from then on */
    bool cut;
};

struct gf_http_server {
    struct MHD_Daemon *daemon;
    gf_http_handler handler;
    void *app;
    size_t max_body;
    struct sockaddr_storage sa; /* MHD reads it during MHD_start_daemon only; kept for clarity */
    struct gf_log_ratelimit mhd_log_rl; /* per server, so a new server's bind error is shown */
    /* Admission: limited handlers running now, and the most allowed. */
    atomic_int inflight;
    int max_inflight;
    const char *const *unlimited;
    int max_connections;
    int64_t header_timeout_us, body_timeout_us;
    /* The reaper's: when its previous pass ran, and when it last found it had not run for
     * STALL_US (ages count from then: a paused server gives every client its time again). */
    int64_t last_reap_us, last_cpu_us, resumed_us;
    char *peek; /* the reaper's: CONNECTION_MEMORY bytes to look at a head waiting unread */
    /* The open connections, oldest first, and the reaper that watches them. */
    pthread_mutex_t conns_mu;
    struct conn_track *conns_head, *conns_tail;
    int nconns;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv; /* on CLOCK_MONOTONIC */
    bool stopping;          /* under stop_mu */
    bool sync_ready, reaper_started;
    pthread_t reaper;
};

/* Process-wide figures (every server of the process together), for /metrics. */
static atomic_llong g_open_connections;
static atomic_llong g_handlers_running;
static struct gf_counter *g_shed;
static struct gf_counter *g_cut[CUT_NREASONS];
static pthread_once_t g_metrics_once = PTHREAD_ONCE_INIT;

/* Everything one request owns; created by the first access call, freed in on_completed. */
struct gf_http_request {
    struct MHD_Connection *conn;
    char *method;
    char *path;
    char *body; /* NUL-terminated; NULL until the first chunk */
    size_t body_len, body_cap;
    bool too_big; /* the body passed max_body: its rest is discarded, the answer is 413 */
    long long content_length; /* announced; -1 when none (chunked) */
    long long received;       /* body bytes taken so far, discarded ones included */
    bool answered;            /* a response is queued already (early 413) */
    struct conn_track *track; /* the connection's; NULL if it could not be tracked */
    int64_t start_us;
    char cid[GF_UUID_STRLEN + 1];
};

/* --- connection phases and figures ------------------------------------------------------ */

/* Moves the connection to phase, unless the reaper cut it: false then, and the caller must
 * neither run a handler nor answer (the connection is closing). Untracked ones always move. */
static bool track_set(struct conn_track *t, enum conn_phase phase)
{
    if (t == NULL)
        return true;
    unsigned cur = atomic_load(&t->state);
    for (;;) {
        if ((cur & PHASE_MASK) == PHASE_CUT)
            return false;
        unsigned next = (((cur >> PHASE_BITS) + 1) << PHASE_BITS) | (unsigned)phase;
        long long now = (long long)gf_mono_us();
        atomic_store(&t->phase_us, now);
        atomic_store(&t->progress_us, now);
        if (atomic_compare_exchange_weak(&t->state, &cur, next))
            return true;
    }
}

/* The server took body bytes just now; left of them are still to come (-1: not known). */
static void track_progress(struct conn_track *t, long long left)
{
    if (t == NULL)
        return;
    atomic_store(&t->body_left, left);
    atomic_store(&t->progress_us, (long long)gf_mono_us());
}

static double open_connections(void *arg)
{
    (void)arg;
    return (double)atomic_load(&g_open_connections);
}

static double handlers_running(void *arg)
{
    (void)arg;
    return (double)atomic_load(&g_handlers_running);
}

static void metrics_init(void)
{
    g_shed = gf_metrics_counter("gf_http_shed_total",
                                "requests answered 503 at once: max_inflight handlers were running",
                                "reason=\"overloaded\"");
    for (int r = CUT_HEADER; r < CUT_NREASONS; r++) {
        char labels[64];
        snprintf(labels, sizeof labels, "reason=\"%s\"", cut_reason_names[r]);
        g_cut[r] = gf_metrics_counter(
            "gf_http_connections_cut_total",
            "connections closed by the server: a head or body too slow, an answer not taken, or "
            "idle while the connection limit neared",
            labels);
    }
    gf_metrics_gauge_fn("gf_http_connections_open", "HTTP connections open now", "",
                        open_connections, NULL);
    gf_metrics_gauge_fn("gf_http_requests_in_flight", "HTTP handlers running now", "",
                        handlers_running, NULL);
}

/* --- request accessors ----------------------------------------------------------------- */

const char *gf_http_method(const struct gf_http_request *req)
{
    return req->method;
}

const char *gf_http_path(const struct gf_http_request *req)
{
    return req->path;
}

const char *gf_http_query(const struct gf_http_request *req, const char *key)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

struct query_each {
    gf_http_param_fn fn;
    void *arg;
};

static enum MHD_Result query_each_one(void *cls, enum MHD_ValueKind kind, const char *key,
                                      size_t key_size, const char *value, size_t value_size)
{
    (void)kind, (void)key_size;
    struct query_each *q = cls;
    q->fn(q->arg, key, value, value_size);
    return MHD_YES;
}

int gf_http_query_each(const struct gf_http_request *req, gf_http_param_fn fn, void *arg)
{
    struct query_each q = {fn, arg};
    return MHD_get_connection_values_n(req->conn, MHD_GET_ARGUMENT_KIND, query_each_one, &q);
}

const char *gf_http_header(const struct gf_http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *gf_http_body(const struct gf_http_request *req, size_t *len)
{
    if (len != NULL)
        *len = req->body_len;
    return req->body ? req->body : "";
}

const char *gf_http_cid(const struct gf_http_request *req)
{
    return req->cid;
}

/* --- response helpers ------------------------------------------------------------------ */

void gf_http_set_body(struct gf_http_response *resp, int status, const char *content_type,
                      const char *fmt, ...)
{
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
    resp->content_type = content_type;
    resp->status = status;

    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf != NULL) {
        va_start(ap, fmt);
        int m = vsnprintf(buf, (size_t)n + 1, fmt, ap);
        va_end(ap);
        if (m == n) {
            resp->body = buf;
            resp->body_len = (size_t)n;
            return;
        }
        free(buf);
    }
    GF_ERROR("http response body formatting failed status=%d", status);
    resp->status = 500;
}

void gf_http_add_header(struct gf_http_response *resp, const char *name, const char *value)
{
    if (resp->nheaders >= GF_HTTP_MAX_HEADERS) {
        GF_ERROR("http too many response headers max=%d dropped=%s", GF_HTTP_MAX_HEADERS, name);
        return;
    }
    char *n = strdup(name);
    char *v = strdup(value);
    if (n == NULL || v == NULL) {
        GF_ERROR("http out of memory adding header=%s", name);
        free(n);
        free(v);
        return;
    }
    resp->header_names[resp->nheaders] = n;
    resp->header_values[resp->nheaders] = v;
    resp->nheaders++;
}

static void response_cleanup(struct gf_http_response *resp)
{
    free(resp->body);
    resp->body = NULL;
    for (int i = 0; i < resp->nheaders; i++) {
        free(resp->header_names[i]);
        free(resp->header_values[i]);
    }
    resp->nheaders = 0;
}

/* Queues resp on the connection (taking its body) and releases everything resp holds.
 * Called with the request's cid set for logging. */
static enum MHD_Result queue(struct gf_http_request *req, struct gf_http_response *resp)
{
    enum MHD_Result ret = MHD_NO;
    struct MHD_Response *r = NULL;
    int status = resp->status ? resp->status : 200;
    if (status < 100 || status > 599) {
        GF_ERROR("http handler set an invalid status=%d path=%s", status, req->path);
        status = 500;
        free(resp->body);
        resp->body = NULL;
    }
    if (resp->body != NULL && resp->body_len > 0) {
        r = MHD_create_response_from_buffer(resp->body_len, resp->body, MHD_RESPMEM_MUST_FREE);
        if (r != NULL)
            resp->body = NULL; /* MHD frees it with the response */
    } else {
        r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    }
    if (r == NULL) {
        GF_ERROR("http cannot create a response path=%s", req->path);
        goto out;
    }
    const char *ctype = resp->content_type ? resp->content_type : "application/json";
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES ||
        MHD_add_response_header(r, CID_HEADER, req->cid) != MHD_YES) {
        GF_ERROR("http cannot add the standard headers path=%s", req->path);
        goto out;
    }
    for (int i = 0; i < resp->nheaders; i++) {
        if (MHD_add_response_header(r, resp->header_names[i], resp->header_values[i]) != MHD_YES)
            GF_ERROR("http invalid response header=%s path=%s", resp->header_names[i], req->path);
    }
    /* Only answers of a request still in a phase the reaper may cut (an early 413) can find
     * it cut: then it was answered 408 already and MHD must just close. */
    if (!track_set(req->track, PHASE_SENDING))
        goto out;
    ret = MHD_queue_response(req->conn, (unsigned int)status, r);
    if (ret != MHD_YES)
        GF_ERROR("http cannot queue the response status=%d path=%s", status, req->path);
    else
        req->answered = true;
    GF_DEBUG("http request method=%s path=%s status=%d us=%lld", req->method, req->path, status,
             (long long)(gf_mono_us() - req->start_us));
out:
    if (r != NULL)
        MHD_destroy_response(r);
    response_cleanup(resp);
    return ret;
}

static enum MHD_Result queue_too_large(struct gf_http_request *req, size_t max_body)
{
    GF_WARN("http request body too large method=%s path=%s max_body=%zu", req->method, req->path,
            max_body);
    struct gf_http_response resp = {0};
    gf_http_set_body(&resp, 413, "application/json",
                     "{\"message\":\"request body too large\",\"error\":\"payload_too_large\","
                     "\"correlationId\":\"%s\"}",
                     req->cid);
    return queue(req, &resp);
}

/* 503 with Retry-After, in the services' error shape: max_inflight handlers are running. */
static enum MHD_Result queue_overloaded(struct gf_http_request *req)
{
    gf_counter_add(g_shed, 1);
    GF_LOG_RL(GF_LOG_WARN, 5000, "http overloaded: request shed method=%s path=%s", req->method,
              req->path);
    struct gf_http_response resp = {0};
    gf_http_set_body(&resp, 503, "application/json",
                     "{\"message\":\"the service is overloaded: retry later\","
                     "\"error\":\"overloaded\",\"correlationId\":\"%s\"}",
                     req->cid);
    gf_http_add_header(&resp, "Retry-After", "1");
    return queue(req, &resp);
}

/* --- MHD callbacks --------------------------------------------------------------------- */

static struct gf_http_request *request_new(struct MHD_Connection *conn, const char *url,
                                           const char *method)
{
    struct gf_http_request *req = calloc(1, sizeof *req);
    if (req == NULL)
        return NULL;
    req->conn = conn;
    req->start_us = gf_mono_us();
    req->method = strdup(method);
    req->path = strdup(url);
    if (req->method == NULL || req->path == NULL) {
        free(req->method);
        free(req->path);
        free(req);
        return NULL;
    }
    /* Keep the caller's id when it is a UUID, so one id follows the work across services;
     * anything else could be used to forge or flood log lines, so it is replaced. */
    const char *cid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, CID_HEADER);
    if (cid == NULL || !gf_uuid_normalize(cid, strlen(cid), req->cid))
        gf_uuid_generate(req->cid);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    req->track = ci != NULL ? ci->socket_context : NULL;
    req->content_length = -1;
    return req;
}

static void request_free(struct gf_http_request *req)
{
    if (req == NULL)
        return;
    free(req->method);
    free(req->path);
    free(req->body);
    free(req);
}

/* Appends one chunk, growing the buffer up to max_body; past it the body is dropped. */
static void append_chunk(struct gf_http_request *req, const char *data, size_t n, size_t max_body)
{
    if (req->too_big)
        return;
    if (n > max_body - req->body_len) {
        req->too_big = true;
        free(req->body); /* nobody will read it: release it now, not at completion */
        req->body = NULL;
        req->body_len = req->body_cap = 0;
        return;
    }
    size_t need = req->body_len + n + 1;
    if (need > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap * 2 : 1024;
        if (cap < need)
            cap = need;
        if (cap > max_body + 1)
            cap = max_body + 1;
        char *p = realloc(req->body, cap);
        if (p == NULL) {
            /* Out of memory is answered like an oversized body: the request cannot be held. */
            GF_ERROR("http out of memory for a request body bytes=%zu", need);
            req->too_big = true;
            free(req->body);
            req->body = NULL;
            req->body_len = req->body_cap = 0;
            return;
        }
        req->body = p;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, n);
    req->body_len += n;
    req->body[req->body_len] = '\0';
}

/* First call: headers only. Queuing here would make MHD close the connection, so only a
 * body announced as too large is answered now (MHD then closes, which is fine). */
static enum MHD_Result first_call(struct gf_http_server *srv, struct gf_http_request *req)
{
    const char *cl =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl == NULL)
        return MHD_YES;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(cl, &end, 10);
    if (end != cl && *end == '\0' && (errno == ERANGE || v > srv->max_body))
        return queue_too_large(req, srv->max_body);
    if (end != cl && *end == '\0')
        req->content_length = (long long)v;
    return MHD_YES;
}

static bool is_unlimited(const struct gf_http_server *srv, const char *path)
{
    for (const char *const *p = srv->unlimited; *p != NULL; p++) {
        if (strcmp(*p, path) == 0)
            return true;
    }
    return false;
}

/* Last call: the whole body is here (or was too large); admit, run the handler and answer.
 * Beyond max_inflight the answer is 503 at once rather than a wait: a waiting request would
 * hold its pool thread, and the threads kept free are what answers the probes. */
static enum MHD_Result final_call(struct gf_http_server *srv, struct gf_http_request *req)
{
    if (req->answered)
        return MHD_YES;
    if (req->too_big)
        return queue_too_large(req, srv->max_body);
    /* The request is here whole: from now on the reaper leaves the connection alone. If it
     * cut it first (408 sent), the handler must not run: that answer said "not received". */
    if (!track_set(req->track, PHASE_HANDLER))
        return MHD_NO;
    bool limited = !is_unlimited(srv, req->path);
    if (limited && atomic_fetch_add(&srv->inflight, 1) >= srv->max_inflight) {
        atomic_fetch_sub(&srv->inflight, 1);
        return queue_overloaded(req);
    }
    atomic_fetch_add(&g_handlers_running, 1);
    struct gf_http_response resp = {0};
    srv->handler(srv->app, req, &resp);
    atomic_fetch_sub(&g_handlers_running, 1);
    if (limited)
        atomic_fetch_sub(&srv->inflight, 1);
    return queue(req, &resp);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct gf_http_server *srv = cls;
    struct gf_http_request *req = *con_cls;
    enum MHD_Result ret;

    if (req == NULL) {
        req = request_new(conn, url, method);
        if (req == NULL) {
            GF_ERROR("http out of memory for a request");
            return MHD_NO;
        }
        *con_cls = req;
        gf_log_set_cid(req->cid);
        /* A head the reaper already answered 408 is refused: MHD closes the connection. */
        ret = track_set(req->track, PHASE_BODY) ? first_call(srv, req) : MHD_NO;
        track_progress(req->track, req->content_length);
    } else if (*upload_data_size != 0) {
        /* A chunk: never answered here, see STACK-NOTES. */
        gf_log_set_cid(req->cid);
        if (!req->answered)
            append_chunk(req, upload_data, *upload_data_size, srv->max_body);
        req->received += (long long)*upload_data_size;
        *upload_data_size = 0; /* always consumed, or MHD calls again with the same bytes */
        track_progress(req->track,
                       req->content_length >= 0 ? req->content_length - req->received : -1);
        ret = MHD_YES;
        /* The whole announced body is here: the request is received and no longer cut (if the
         * reaper won the race, the connection is closing: stop). */
        if (!req->answered && !req->too_big && req->content_length >= 0 &&
            (long long)req->body_len == req->content_length &&
            !track_set(req->track, PHASE_HANDLER))
            ret = MHD_NO;
    } else {
        gf_log_set_cid(req->cid);
        ret = final_call(srv, req);
    }
    gf_log_set_cid(NULL); /* the pool thread serves other requests next */
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct gf_http_request *req = *con_cls;
    if (req != NULL) /* the connection waits for its next request (unless it was cut) */
        (void)track_set(req->track, PHASE_HEAD);
    request_free(req);
    *con_cls = NULL;
}

/* Registers a connection for the reaper when it opens, unregisters it when it closes. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct gf_http_server *srv = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct conn_track *t = ci != NULL ? calloc(1, sizeof *t) : NULL;
        *socket_context = t;
        if (t == NULL) {
            /* Served all the same, only never cut by the reaper. */
            GF_LOG_RL(GF_LOG_ERROR, 5000, "http cannot track a connection: out of memory");
            return;
        }
        t->fd = ci->connect_fd;
        atomic_init(&t->state, PHASE_HEAD);
        atomic_init(&t->phase_us, (long long)gf_mono_us());
        atomic_init(&t->progress_us, (long long)gf_mono_us());
        atomic_init(&t->body_left, -1);
        pthread_mutex_lock(&srv->conns_mu);
        t->prev = srv->conns_tail;
        if (srv->conns_tail != NULL)
            srv->conns_tail->next = t;
        else
            srv->conns_head = t;
        srv->conns_tail = t;
        srv->nconns++;
        pthread_mutex_unlock(&srv->conns_mu);
        atomic_fetch_add(&g_open_connections, 1);
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        struct conn_track *t = *socket_context;
        *socket_context = NULL;
        if (t == NULL)
            return;
        pthread_mutex_lock(&srv->conns_mu);
        if (t->prev != NULL)
            t->prev->next = t->next;
        else
            srv->conns_head = t->next;
        if (t->next != NULL)
            t->next->prev = t->prev;
        else
            srv->conns_tail = t->prev;
        srv->nconns--;
        pthread_mutex_unlock(&srv->conns_mu);
        atomic_fetch_sub(&g_open_connections, 1);
        free(t);
    }
}

/* --- the reaper -------------------------------------------------------------------------- */

/* Bytes the kernel holds for this connection that MHD has not read yet: the server is behind
 * (its thread busy in another connection's handler, or the process was paused), so whatever
 * the client sent is not late. -1 when it cannot tell. */
static int unread_bytes(int fd)
{
    int n = 0;
    return ioctl(fd, FIONREAD, &n) == 0 ? n : -1;
}

/* Bytes wait unread in the kernel (the server is behind: its thread busy in another
 * connection's handler): do they complete the request's head, or its body? Then the request
 * arrived whole and is not cut. A head is looked for in the unread bytes (the end of a head
 * split across MHD's buffer and the kernel's counts too, leniently); a body is complete when
 * the unread bytes cover what Content-Length still wants (unknown, chunked: not cut while
 * behind). What stays incomplete even with them is a trickler's, judged as usual. */
static bool waiting_whole(struct gf_http_server *srv, struct conn_track *t, int phase, int unread)
{
    if (phase == PHASE_BODY) {
        long long left = (long long)atomic_load(&t->body_left);
        return left < 0 || (long long)unread >= left;
    }
    ssize_t n = recv(t->fd, srv->peek, CONNECTION_MEMORY, MSG_PEEK | MSG_DONTWAIT);
    if (n <= 0)
        return false;
    const char *b = srv->peek;
    size_t len = (size_t)n;
    return memmem(b, len, "\r\n\r\n", 4) != NULL || memmem(b, len, "\n\n", 2) != NULL ||
           b[0] == '\n' || (len >= 2 && b[0] == '\r' && b[1] == '\n') ||
           len == CONNECTION_MEMORY; /* too large to tell: MHD answers 431 itself */
}

/* When the kernel last received data on fd (gf_mono_us() time), or -1. */
static int64_t last_recv_us(int fd, int64_t now)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
        return -1;
    return now - (int64_t)ti.tcpi_last_data_recv * 1000;
}

/* A head or body past its deadline: is the client slow, or the server behind? Bytes waiting
 * unread in the kernel that complete the request mean the server is behind (waiting_whole):
 * never cut then. Other bytes that came after the server last made progress (the phase's
 * start for a head, the last chunk taken for a body) may be in MHD's hands this very moment,
 * or form a head or chunk framing that is still incomplete: they get min(timeout, 1 s) from
 * when they were first noticed (the kernel only tells when the last byte came). A head with
 * no byte since its phase began is an idle keep-alive connection: MHD's idle timeout's. A
 * body with nothing unprocessed is late. Called under conns_mu. */
static enum cut_reason late_verdict(struct gf_http_server *srv, struct conn_track *t, int64_t now,
                                    int phase, int64_t timeout_us)
{
    int unread = unread_bytes(t->fd);
    int64_t recv_us = last_recv_us(t->fd, now);
    if (unread < 0 || recv_us < 0)
        return CUT_NONE;
    if (unread > 0 && waiting_whole(srv, t, phase, unread))
        return CUT_NONE;
    int64_t since = (int64_t)atomic_load(&t->progress_us);
    if (recv_us <= since + RECV_SLOP_US) {
        if (phase == PHASE_BODY)
            return CUT_BODY;
        t->next_check_us = now + IDLE_RECHECK_US;
        return CUT_NONE;
    }
    if (t->head_seen_us == 0)
        t->head_seen_us = now;
    int64_t grace = timeout_us < 1000000 ? timeout_us : 1000000;
    if (now - t->head_seen_us >= grace)
        return phase == PHASE_BODY ? CUT_BODY : CUT_HEADER;
    return CUT_NONE;
}

/* An answer older than the body timeout: cut only when the client is not taking it (the
 * socket's send buffer is full); a writable socket means MHD has not written yet. */
static enum cut_reason send_verdict(struct conn_track *t)
{
    struct pollfd p = {.fd = t->fd, .events = POLLOUT};
    int rc = poll(&p, 1, 0);
    return rc == 0 ? CUT_SEND : CUT_NONE;
}

/* Cuts t, if it is still in the state the verdict was about (seen): the swap to PHASE_CUT
 * makes sure no handler runs on it afterwards, and none is running now. */
static bool cut(struct conn_track *t, unsigned seen, enum cut_reason why)
{
    static const char timeout_408[] = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                                      "Content-Length: 0\r\n\r\n";
    unsigned next = (seen & ~PHASE_MASK) | PHASE_CUT;
    if (!atomic_compare_exchange_strong(&t->state, &seen, next))
        return false; /* it moved on meanwhile: judged again next tick */
    t->cut = true;
    /* Nothing is being written on a connection still reading its request, and nothing will
     * be (the swap above): a 408 cannot interleave with an answer. An answer the client does
     * not take is closed without a status: a 408 would claim the request was not received.
     * Best effort; the close follows anyway. */
    if (why == CUT_HEADER || why == CUT_BODY)
        (void)send(t->fd, timeout_408, sizeof timeout_408 - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    /* MHD sees the end of the stream and closes the connection in its own thread. */
    shutdown(t->fd, SHUT_RDWR);
    gf_counter_add(g_cut[why], 1);
    GF_LOG_RL(GF_LOG_WARN, 5000, "http connection cut reason=%s", cut_reason_names[why]);
    return true;
}

/* One pass over the open connections. */
static void reap(struct gf_http_server *srv, int64_t now)
{
    /* Time the process did not run (stopped, frozen) is not the clients': every phase's age
     * counts from the end of such a gap. */
    struct timespec ts;
    int64_t cpu = clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0
                      ? (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000
                      : 0;
    int64_t gap = now - srv->last_reap_us;
    if (srv->last_reap_us != 0 && gap > STALL_US && cpu - srv->last_cpu_us < gap / 10) {
        srv->resumed_us = now;
        GF_WARN("http server did not run for ms=%lld: connection deadlines restart",
                (long long)(gap / 1000));
    }
    srv->last_reap_us = now;
    srv->last_cpu_us = cpu;
    pthread_mutex_lock(&srv->conns_mu);
    /* Near the limit MHD would refuse new connections (probes included): idle ones go first,
     * oldest first, down to 80%. */
    int high = srv->max_connections - srv->max_connections / 10;
    int excess = srv->nconns > high ? srv->nconns - srv->max_connections * 8 / 10 : 0;
    for (struct conn_track *t = srv->conns_head; t != NULL; t = t->next) {
        if (t->cut)
            continue;
        unsigned state = atomic_load(&t->state);
        int phase = (int)(state & PHASE_MASK);
        int64_t phase_us = (int64_t)atomic_load(&t->phase_us);
        unsigned gen = state >> PHASE_BITS;
        if (gen != t->seen_gen) {
            t->seen_gen = gen;
            t->head_seen_us = 0;
            t->next_check_us = 0;
        }
        int64_t age = now - (phase_us > srv->resumed_us ? phase_us : srv->resumed_us);
        enum cut_reason why = CUT_NONE;
        if (phase == PHASE_HEAD) {
            if (excess > 0 && age > IDLE_RECHECK_US && unread_bytes(t->fd) == 0)
                why = CUT_PRESSURE;
            else if (age > srv->header_timeout_us && now >= t->next_check_us)
                why = late_verdict(srv, t, now, phase, srv->header_timeout_us);
        } else if (phase == PHASE_BODY && age > srv->body_timeout_us && now >= t->next_check_us) {
            why = late_verdict(srv, t, now, phase, srv->body_timeout_us);
        } else if (phase == PHASE_SENDING && age > srv->body_timeout_us) {
            why = send_verdict(t);
        }
        if (why != CUT_NONE && cut(t, state, why) && why == CUT_PRESSURE)
            excess--;
    }
    pthread_mutex_unlock(&srv->conns_mu);
}

static void *reaper_run(void *arg)
{
    struct gf_http_server *srv = arg;
    gf_log_set_cid(NULL);
    pthread_mutex_lock(&srv->stop_mu);
    while (!srv->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += REAPER_TICK_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L)
            until.tv_sec++, until.tv_nsec -= 1000000000L;
        int rc = 0;
        while (!srv->stopping && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&srv->stop_cv, &srv->stop_mu, &until);
        if (srv->stopping)
            break;
        pthread_mutex_unlock(&srv->stop_mu);
        reap(srv, gf_mono_us());
        pthread_mutex_lock(&srv->stop_mu);
    }
    pthread_mutex_unlock(&srv->stop_mu);
    return NULL;
}

/* MHD's own messages (bind failures, resource limits, broken clients): rate-limited, since
 * a misbehaving client can trigger one per connection. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct gf_http_server *srv = cls;
    uint32_t suppressed;
    if (!gf_log_enabled(GF_LOG_WARN) || !gf_log_ratelimit_pass(&srv->mhd_log_rl, 1000, &suppressed))
        return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\r\n")] = '\0';
    GF_WARN("http mhd: %s suppressed=%u", msg, suppressed);
}

/* --- server ---------------------------------------------------------------------------- */

/* Resolves "host:port" into srv->sa; numeric hosts and names both work. */
static enum gf_status resolve(struct gf_http_server *srv, const char *addr, char *host,
                              size_t hostsz, int *port)
{
    enum gf_status st = GF_EINVAL;
    struct addrinfo *ai = NULL;
    if (gf_config_split_addr(addr, host, hostsz, port) != GF_OK) {
        GF_ERROR("http invalid listen addr=%s: want host:port", addr ? addr : "(null)");
        goto out;
    }
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%d", *port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    int rc = getaddrinfo(host, portstr, &hints, &ai);
    if (rc != 0 || ai == NULL) {
        GF_ERROR("http cannot resolve listen addr=%s: %s", addr, gai_strerror(rc));
        st = GF_EUNAVAILABLE;
        goto out;
    }
    if (ai->ai_addrlen > sizeof srv->sa) {
        GF_ERROR("http unsupported address family addr=%s", addr);
        goto out;
    }
    memcpy(&srv->sa, ai->ai_addr, ai->ai_addrlen);
    st = GF_OK;
out:
    if (ai != NULL)
        freeaddrinfo(ai);
    return st;
}

int gf_http_default_inflight(int threads, int max_inflight)
{
    if (threads < 1)
        return 1;
    if (max_inflight <= 0) {
        int keep = threads / 4 > 1 ? threads / 4 : 1;
        max_inflight = threads - keep;
    }
    if (max_inflight > threads)
        max_inflight = threads;
    return max_inflight < 1 ? 1 : max_inflight;
}

/* max_connections, cut so that connections cannot run the process out of descriptors (MHD
 * would then fail accepts instead of refusing cleanly); never below threads. */
static int fit_fd_limit(int want, int threads)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return want;
    long long room = (long long)rl.rlim_cur - FD_HEADROOM;
    if (room < (long long)rl.rlim_cur / 2)
        room = (long long)rl.rlim_cur / 2;
    if (want <= room)
        return want;
    int fit = room > threads ? (int)room : threads;
    GF_WARN("http max_connections=%d cut to %d: RLIMIT_NOFILE is %llu (raise it)", want, fit,
            (unsigned long long)rl.rlim_cur);
    return fit;
}

static enum gf_status sync_init(struct gf_http_server *srv)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0) {
        GF_ERROR("http cannot create the reaper's condition");
        return GF_EUNAVAILABLE;
    }
    bool ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
              pthread_cond_init(&srv->stop_cv, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (!ok) {
        GF_ERROR("http cannot create the reaper's condition");
        return GF_EUNAVAILABLE;
    }
    pthread_mutex_init(&srv->conns_mu, NULL);
    pthread_mutex_init(&srv->stop_mu, NULL);
    srv->sync_ready = true;
    return GF_OK;
}

/* Stops the reaper, then MHD (which closes every connection: each is unregistered), frees. */
static void server_free(struct gf_http_server *srv)
{
    if (srv->reaper_started) {
        pthread_mutex_lock(&srv->stop_mu);
        srv->stopping = true;
        pthread_cond_signal(&srv->stop_cv);
        pthread_mutex_unlock(&srv->stop_mu);
        pthread_join(srv->reaper, NULL);
    }
    /* Closes the listening socket, waits for the pool threads (and so for running handlers). */
    if (srv->daemon != NULL)
        MHD_stop_daemon(srv->daemon);
    if (srv->sync_ready) {
        struct conn_track *t = srv->conns_head;
        while (t != NULL) { /* none left after MHD_stop_daemon; freed should one be */
            struct conn_track *next = t->next;
            free(t);
            t = next;
        }
        pthread_cond_destroy(&srv->stop_cv);
        pthread_mutex_destroy(&srv->stop_mu);
        pthread_mutex_destroy(&srv->conns_mu);
    }
    free(srv->peek);
    free(srv);
}

struct gf_http_server *gf_http_server_start(const struct gf_http_server_options *opt,
                                            int *bound_port)
{
    struct gf_http_server *srv = NULL;
    struct gf_http_server *res = NULL;
    char host[256];
    int port;
    /* MHD splits the connection limit among the pool threads; a thread left with none makes
     * MHD_stop_daemon hang for ever (measured on 0.9.75), hence threads <= max_connections. */
    if (opt == NULL || opt->handler == NULL || opt->threads < 1 ||
        opt->max_connections < opt->threads || opt->connection_timeout_s < 0 ||
        opt->max_inflight < 0 || opt->header_timeout_ms < 0 || opt->body_timeout_ms < 0) {
        GF_ERROR("http invalid server options: need a handler, threads>=1, "
                 "max_connections>=threads, connection_timeout_s>=0, max_inflight>=0, "
                 "header_timeout_ms>=0, body_timeout_ms>=0");
        goto out;
    }
    pthread_once(&g_metrics_once, metrics_init);
    srv = calloc(1, sizeof *srv);
    if (srv == NULL) {
        GF_ERROR("http out of memory starting a server");
        goto out;
    }
    srv->handler = opt->handler;
    srv->app = opt->app;
    srv->max_body = opt->max_body;
    srv->max_inflight = gf_http_default_inflight(opt->threads, opt->max_inflight);
    srv->unlimited = opt->unlimited_paths != NULL ? opt->unlimited_paths : default_unlimited;
    srv->max_connections = fit_fd_limit(opt->max_connections, opt->threads);
    srv->header_timeout_us =
        1000LL * (opt->header_timeout_ms ? opt->header_timeout_ms : DEFAULT_HEADER_TIMEOUT_MS);
    srv->body_timeout_us =
        1000LL * (opt->body_timeout_ms ? opt->body_timeout_ms : DEFAULT_BODY_TIMEOUT_MS);
    atomic_init(&srv->inflight, 0);
    srv->peek = malloc(CONNECTION_MEMORY);
    if (srv->peek == NULL) {
        GF_ERROR("http out of memory starting a server");
        goto out;
    }
    if (sync_init(srv) != GF_OK)
        goto out;
    if (resolve(srv, opt->addr, host, sizeof host, &port) != GF_OK)
        goto out;

    /* MHD_USE_ITC: MHD_stop_daemon wakes each pool thread through its own eventfd. Without it
     * only the listening socket's shutdown does, and with thousands of connections open some
     * threads slept on until the next idle timeout (18 s measured with 3,000; for ever with
     * none). */
    unsigned int flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (srv->sa.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* MHD warns about a pool of one thread, so the pool size is only given when > 1: an
     * option array can end early, a variadic list cannot. */
    struct MHD_OptionItem limits[] = {
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)srv->max_connections, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)CONNECTION_MEMORY, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)opt->connection_timeout_s, NULL},
        {opt->threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t)opt->threads,
         NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    /* Variadic options need the exact types MHD reads. The logger goes first so that
     * start-up errors reach our log too. */
    srv->daemon = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER,
        (MHD_LogCallback)on_mhd_log, (void *)srv, MHD_OPTION_ARRAY, limits,
        MHD_OPTION_NOTIFY_COMPLETED, (MHD_RequestCompletedCallback)on_completed, (void *)srv,
        MHD_OPTION_NOTIFY_CONNECTION, (MHD_NotifyConnectionCallback)on_connection, (void *)srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&srv->sa, MHD_OPTION_END);
    if (srv->daemon == NULL) {
        GF_ERROR("http cannot start the server addr=%s", opt->addr);
        goto out;
    }
    if (pthread_create(&srv->reaper, NULL, reaper_run, srv) != 0) {
        GF_ERROR("http cannot start the connection reaper addr=%s", opt->addr);
        goto out;
    }
    srv->reaper_started = true;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    int bound = info ? (int)info->port : port;
    GF_INFO("http listening host=%s port=%d threads=%d max_connections=%d max_inflight=%d "
            "idle_timeout_s=%d header_timeout_ms=%lld body_timeout_ms=%lld max_body=%zu",
            host, bound, opt->threads, srv->max_connections, srv->max_inflight,
            opt->connection_timeout_s, (long long)(srv->header_timeout_us / 1000),
            (long long)(srv->body_timeout_us / 1000), opt->max_body);
    if (bound_port != NULL)
        *bound_port = bound;
    res = srv;
    srv = NULL;
out:
    if (srv != NULL)
        server_free(srv);
    return res;
}

void gf_http_server_stop(struct gf_http_server *srv)
{
    if (srv == NULL)
        return;
    server_free(srv);
    GF_INFO("http stopped");
}

/* Moves body (malloc'd, len bytes) into resp as its answer. */
static void set_owned_body(struct gf_http_response *resp, int status, const char *content_type,
                           char *body, size_t len)
{
    free(resp->body);
    resp->status = status;
    resp->content_type = content_type;
    resp->body = body;
    resp->body_len = len;
}

bool gf_http_reply_json(struct gf_http_response *resp, int status, json_t *obj, const char *cid)
{
    char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (text == NULL) {
        GF_ERROR("http cannot build a JSON answer status=%d", status);
        /* No client data inside: only a canonical UUID. */
        gf_http_set_body(resp, 500, "application/json",
                         "{\"message\":\"internal error\",\"error\":\"internal\","
                         "\"correlationId\":\"%s\"}",
                         cid);
        return false;
    }
    set_owned_body(resp, status, "application/json", text, strlen(text));
    return true;
}

bool gf_http_reply_metrics(struct gf_http_response *resp)
{
    size_t len = 0;
    char *text = gf_metrics_render(&len);
    if (text == NULL)
        return false;
    set_owned_body(resp, 200, "text/plain; version=0.0.4", text, len);
    return true;
}
