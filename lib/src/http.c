/* HTTP/1.1 server on libmicrohttpd: one handler per server, a body limit counted by us (MHD has
 * none), correlation ids in and out, and all per-request memory in one struct freed by MHD's
 * completion callback. Against hostile clients: an admission limit on running handlers (503
 * beyond it) and the connection guard of http_guard.c, told each connection's phase from here.
 * Optionally, handlers of writes run on workers of their own while their connection is
 * suspended (options.workers), so that a write that waits does not hold up the other
 * connections of the pool thread it arrived on. */
#include "gf/http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "gf/buf.h"
#include "gf/clock.h"
#include "gf/config.h"
#include "gf/log.h"
#include "gf/metrics.h"
#include "gf/uuid.h"
#include "http_internal.h"

#define CID_HEADER "X-Correlation-Id"

#define DEFAULT_HEADER_TIMEOUT_MS 10000
#define DEFAULT_BODY_TIMEOUT_MS 30000
/* Descriptors left for everything else (database, broker, gRPC, logs) below RLIMIT_NOFILE. */
#define FD_HEADROOM 256

static const char *const default_unlimited[] = {"/healthz", "/readyz", "/metrics", NULL};

struct gf_http_server {
    struct MHD_Daemon *daemon;
    gf_http_handler handler;
    void *app;
    void (*app_free)(void *app);
    size_t max_body;
    struct sockaddr_storage sa; /* MHD reads it during MHD_start_daemon only; kept for clarity */
    struct gf_log_ratelimit mhd_log_rl; /* per server, so a new server's bind error is shown */
    /* Admission: limited handlers running now, and the most allowed. */
    atomic_int inflight;
    int max_inflight;
    const char *const *unlimited;
    int max_connections;
    struct gf_http__guard *guard; /* the open connections and the reaper that watches them */
    /* Workers (options.workers > 0): the requests handed to them, first in first out. */
    pthread_mutex_t work_mu;
    pthread_cond_t work_cv;
    struct gf_http_request *work_head, *work_tail;
    bool work_stopping; /* set by server_free: new requests run on their pool thread */
    int nworkers;       /* started */
    pthread_t *workers;
};

/* Process-wide figures (every server of the process together), for /metrics. */
static atomic_llong g_handlers_running;
static struct gf_counter *g_shed;
static pthread_once_t g_metrics_once = PTHREAD_ONCE_INIT;

/* Everything one request owns; created by the first access call, freed in on_completed. */
struct gf_http_request {
    struct MHD_Connection *conn;
    char *method;
    char *path;
    struct gf_buf body; /* up to max_body bytes */
    bool too_big;       /* the body passed max_body: its rest is discarded, the answer is 413 */
    long long content_length;    /* announced; -1 when none (chunked) */
    long long received;          /* body bytes taken so far, discarded ones included */
    bool answered;               /* a response is queued already (early 413) */
    struct gf_http__conn *track; /* the connection's; NULL if it could not be tracked */
    int64_t start_us;
    char cid[GF_UUID_STRLEN + 1];
    /* Handed to a worker (its connection suspended meanwhile): */
    struct gf_http_request *next_work; /* in the server's work queue */
    bool limited;                      /* counted in inflight until the handler returns */
    bool handled;                      /* the worker ran the handler: resp is the answer */
    struct gf_http_response resp;
};

static double handlers_running(void *arg)
{
    (void)arg;
    return (double)atomic_load(&g_handlers_running);
}

/* In the order /metrics shows them. */
static void metrics_init(void)
{
    g_shed = gf_metrics_counter("gf_http_shed_total",
                                "requests answered 503 at once: max_inflight handlers were running",
                                "reason=\"overloaded\"");
    gf_http__guard_metrics_init();
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
        *len = gf_buf_len(&req->body);
    return gf_buf_str(&req->body);
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
    if (resp->stream != NULL) /* never queued */
        gf_sse__abandon(resp->stream);
    resp->stream = NULL;
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
    if (resp->stream != NULL && status == 200) {
        r = gf_sse__response(resp->stream, req->conn);
        resp->stream = NULL; /* the response owns it now, or it was freed */
    } else if (resp->body != NULL && resp->body_len > 0) {
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
    if (!gf_http__conn_set(req->track, GF_HTTP__SENDING))
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
                                           const char *method, size_t max_body)
{
    struct gf_http_request *req = calloc(1, sizeof *req);
    if (req == NULL)
        return NULL;
    req->conn = conn;
    gf_buf_init(&req->body, max_body);
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
        gf_uuid_generate_v7(req->cid); /* a key in every table it names: time-ordered */
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
    response_cleanup(&req->resp); /* an answer never queued (the connection closed first) */
    free(req->method);
    free(req->path);
    gf_buf_reset(&req->body);
    free(req);
}

/* Appends one chunk, up to max_body; past it the body is dropped (and so is a body that finds
 * no memory: the request cannot be held, it is answered like an oversized one). */
static void append_chunk(struct gf_http_request *req, const char *data, size_t n, size_t max_body)
{
    if (req->too_big)
        return;
    /* gf_buf's maximum 0 means no limit: a max_body of 0 allows no byte at all. */
    enum gf_status st = max_body == 0 ? GF_ETOOBIG : gf_buf_add(&req->body, data, n);
    if (st == GF_OK)
        return;
    if (st == GF_ENOMEM)
        GF_ERROR("http out of memory for a request body bytes=%zu", gf_buf_len(&req->body) + n);
    req->too_big = true;
    gf_buf_reset(&req->body); /* nobody will read it: released now, not at completion */
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

/* --- workers ----------------------------------------------------------------------------
 * A pool thread serves every connection it accepted, one request at a time: while a handler
 * waits (a row lock, the write gate, gxp's answer), the requests of the thread's other
 * kept-alive connections wait behind it, and MHD gives one thread up to ten connections from a
 * burst of accepts. With workers, a write's connection is suspended and its request queued
 * for a worker; the worker runs the handler and resumes the connection, and the pool thread,
 * called again for it, queues the answer. Reads stay on the pool thread: they are short, and a
 * hand-over costs two wake-ups. */

/* Writes go to the workers: any method but GET and HEAD. */
static bool is_write(const struct gf_http_request *req)
{
    return strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0;
}

/* Queues req for a worker and suspends its connection: true. False (run it here) without
 * workers, for a read, or once the server is stopping. */
static bool work_hand_over(struct gf_http_server *srv, struct gf_http_request *req)
{
    if (srv->nworkers == 0 || !is_write(req))
        return false;
    pthread_mutex_lock(&srv->work_mu);
    bool ok = !srv->work_stopping;
    if (ok) {
        /* Suspended before a worker can see it: the worker's resume must find it suspended. */
        MHD_suspend_connection(req->conn);
        req->next_work = NULL;
        if (srv->work_tail != NULL)
            srv->work_tail->next_work = req;
        else
            srv->work_head = req;
        srv->work_tail = req;
        pthread_cond_signal(&srv->work_cv);
    }
    pthread_mutex_unlock(&srv->work_mu);
    return ok;
}

/* A worker: runs queued requests until the server stops and the queue is empty. */
static void *work_run(void *arg)
{
    struct gf_http_server *srv = arg;
    for (;;) {
        pthread_mutex_lock(&srv->work_mu);
        while (srv->work_head == NULL && !srv->work_stopping)
            pthread_cond_wait(&srv->work_cv, &srv->work_mu);
        struct gf_http_request *req = srv->work_head;
        if (req != NULL) {
            srv->work_head = req->next_work;
            if (srv->work_head == NULL)
                srv->work_tail = NULL;
        }
        pthread_mutex_unlock(&srv->work_mu);
        if (req == NULL)
            return NULL; /* stopping, and nothing left */
        gf_log_set_cid(req->cid);
        atomic_fetch_add(&g_handlers_running, 1);
        srv->handler(srv->app, req, &req->resp);
        atomic_fetch_sub(&g_handlers_running, 1);
        if (req->limited)
            atomic_fetch_sub(&srv->inflight, 1);
        req->handled = true;
        gf_log_set_cid(NULL);
        /* From here req is MHD's again: the pool thread answers and may free it at once. */
        MHD_resume_connection(req->conn);
    }
}

/* Starts n workers; false (none left running) if a thread cannot be created. */
static bool work_start(struct gf_http_server *srv, int n)
{
    srv->workers = calloc((size_t)n, sizeof *srv->workers);
    if (srv->workers == NULL)
        return false;
    for (; srv->nworkers < n; srv->nworkers++) {
        if (pthread_create(&srv->workers[srv->nworkers], NULL, work_run, srv) != 0)
            return false; /* server_free stops those started */
    }
    return true;
}

/* Lets the workers finish every queued request (resuming each connection), then joins them.
 * Requests that arrive meanwhile run on their pool thread. */
static void work_stop(struct gf_http_server *srv)
{
    pthread_mutex_lock(&srv->work_mu);
    srv->work_stopping = true;
    pthread_cond_broadcast(&srv->work_cv);
    pthread_mutex_unlock(&srv->work_mu);
    for (int i = 0; i < srv->nworkers; i++)
        pthread_join(srv->workers[i], NULL);
    srv->nworkers = 0;
    free(srv->workers);
    srv->workers = NULL;
}

/* Last call: the whole body is here (or was too large); admit, run the handler and answer.
 * Beyond max_inflight the answer is 503 at once rather than a wait: a waiting request would
 * hold its pool thread, and the threads kept free are what answers the probes. */
static enum MHD_Result final_call(struct gf_http_server *srv, struct gf_http_request *req)
{
    if (req->handled) /* resumed: a worker ran the handler */
        return queue(req, &req->resp);
    if (req->answered)
        return MHD_YES;
    if (req->too_big)
        return queue_too_large(req, srv->max_body);
    /* The request is here whole: from now on the reaper leaves the connection alone. If it
     * cut it first (408 sent), the handler must not run: that answer said "not received". */
    if (!gf_http__conn_set(req->track, GF_HTTP__HANDLER))
        return MHD_NO;
    bool limited = !is_unlimited(srv, req->path);
    if (limited && atomic_fetch_add(&srv->inflight, 1) >= srv->max_inflight) {
        atomic_fetch_sub(&srv->inflight, 1);
        return queue_overloaded(req);
    }
    req->limited = limited;
    if (limited && work_hand_over(srv, req))
        return MHD_YES; /* answered when the worker resumes the connection */
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
        req = request_new(conn, url, method, srv->max_body);
        if (req == NULL) {
            GF_ERROR("http out of memory for a request");
            return MHD_NO;
        }
        *con_cls = req;
        gf_log_set_cid(req->cid);
        /* A head the reaper already answered 408 is refused: MHD closes the connection. */
        ret = gf_http__conn_set(req->track, GF_HTTP__BODY) ? first_call(srv, req) : MHD_NO;
        gf_http__conn_progress(req->track, req->content_length);
    } else if (*upload_data_size != 0) {
        /* A chunk: never answered here (an answer queued before the upload ends makes MHD
         * close the connection unread); a body found too large gets its 413 in the last call. */
        gf_log_set_cid(req->cid);
        if (!req->answered)
            append_chunk(req, upload_data, *upload_data_size, srv->max_body);
        req->received += (long long)*upload_data_size;
        *upload_data_size = 0; /* always consumed, or MHD calls again with the same bytes */
        gf_http__conn_progress(req->track,
                               req->content_length >= 0 ? req->content_length - req->received : -1);
        ret = MHD_YES;
        /* The whole announced body is here: the request is received and no longer cut (if the
         * reaper won the race, the connection is closing: stop). */
        if (!req->answered && !req->too_big && req->content_length >= 0 &&
            (long long)gf_buf_len(&req->body) == req->content_length &&
            !gf_http__conn_set(req->track, GF_HTTP__HANDLER))
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
        (void)gf_http__conn_set(req->track, GF_HTTP__HEAD);
    request_free(req);
    *con_cls = NULL;
}

/* Registers a connection with the guard when it opens, unregisters it when it closes. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct gf_http_server *srv = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci != NULL ? gf_http__conn_open(srv->guard, ci->connect_fd) : NULL;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        gf_http__conn_close(srv->guard, *socket_context);
        *socket_context = NULL;
    }
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

/* Stops the reaper, then MHD (which closes every connection: each is unregistered), frees. */
static void server_free(struct gf_http_server *srv)
{
    gf_http__guard_stop(srv->guard);
    /* Before MHD stops: it closes suspended connections, whose requests a worker may hold. */
    work_stop(srv);
    /* Closes the listening socket, waits for the pool threads (and so for running handlers). */
    if (srv->daemon != NULL)
        MHD_stop_daemon(srv->daemon);
    gf_http__guard_free(srv->guard);
    if (srv->app_free != NULL)
        srv->app_free(srv->app);
    pthread_mutex_destroy(&srv->work_mu);
    pthread_cond_destroy(&srv->work_cv);
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
        opt->max_inflight < 0 || opt->header_timeout_ms < 0 || opt->body_timeout_ms < 0 ||
        opt->workers < 0 || opt->workers > GF_HTTP_WORKERS_MAX) {
        GF_ERROR("http invalid server options: need a handler, threads>=1, "
                 "max_connections>=threads, connection_timeout_s>=0, max_inflight>=0, "
                 "header_timeout_ms>=0, body_timeout_ms>=0, workers in 0..%d",
                 GF_HTTP_WORKERS_MAX);
        goto out;
    }
    pthread_once(&g_metrics_once, metrics_init);
    srv = calloc(1, sizeof *srv);
    if (srv == NULL) {
        GF_ERROR("http out of memory starting a server");
        goto out;
    }
    pthread_mutex_init(&srv->work_mu, NULL);
    pthread_cond_init(&srv->work_cv, NULL);
    srv->handler = opt->handler;
    srv->app = opt->app;
    srv->max_body = opt->max_body;
    /* A waiting handler holds a pool thread, or a worker: at most threads + workers. */
    int cap = opt->threads + opt->workers;
    srv->max_inflight = opt->max_inflight == 0    ? gf_http_default_inflight(opt->threads, 0)
                        : opt->max_inflight < cap ? opt->max_inflight
                                                  : cap;
    srv->unlimited = opt->unlimited_paths != NULL ? opt->unlimited_paths : default_unlimited;
    srv->max_connections = fit_fd_limit(opt->max_connections, opt->threads);
    int64_t header_timeout_us =
        1000LL * (opt->header_timeout_ms ? opt->header_timeout_ms : DEFAULT_HEADER_TIMEOUT_MS);
    int64_t body_timeout_us =
        1000LL * (opt->body_timeout_ms ? opt->body_timeout_ms : DEFAULT_BODY_TIMEOUT_MS);
    atomic_init(&srv->inflight, 0);
    srv->guard = gf_http__guard_new(srv->max_connections, header_timeout_us, body_timeout_us);
    if (srv->guard == NULL)
        goto out;
    if (resolve(srv, opt->addr, host, sizeof host, &port) != GF_OK)
        goto out;

    /* MHD_USE_ITC: MHD_stop_daemon wakes each pool thread through its own eventfd. Without it
     * only the listening socket's shutdown does, and with thousands of connections open some
     * threads slept on until the next idle timeout (18 s measured with 3,000; for ever with
     * none). */
    unsigned int flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG |
        MHD_ALLOW_SUSPEND_RESUME; /* event streams (sse.c) wait suspended, not on a thread */
    if (srv->sa.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* MHD warns about a pool of one thread, so the pool size is only given when > 1: an
     * option array can end early, a variadic list cannot. */
    struct MHD_OptionItem limits[] = {
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)srv->max_connections, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)GF_HTTP__CONNECTION_MEMORY, NULL},
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
    if (gf_http__guard_start(srv->guard) != GF_OK) {
        GF_ERROR("http cannot start the connection reaper addr=%s", opt->addr);
        goto out;
    }
    if (opt->workers > 0 && !work_start(srv, opt->workers)) {
        GF_ERROR("http cannot start %d workers addr=%s", opt->workers, opt->addr);
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    int bound = info ? (int)info->port : port;
    GF_INFO("http listening host=%s port=%d threads=%d workers=%d max_connections=%d "
            "max_inflight=%d idle_timeout_s=%d header_timeout_ms=%lld body_timeout_ms=%lld "
            "max_body=%zu",
            host, bound, opt->threads, opt->workers, srv->max_connections, srv->max_inflight,
            opt->connection_timeout_s, (long long)(header_timeout_us / 1000),
            (long long)(body_timeout_us / 1000), opt->max_body);
    if (bound_port != NULL)
        *bound_port = bound;
    srv->app_free = opt->app_free; /* the server's from now on */
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
