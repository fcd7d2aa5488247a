/* HTTP/1.1 server on libmicrohttpd: one handler per server, a body limit counted by us (MHD has
 * none), correlation ids in and out, and all per-request memory in one struct freed by MHD's
 * completion callback. */
#include "gf/http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gf/clock.h"
#include "gf/config.h"
#include "gf/log.h"
#include "gf/metrics.h"
#include "gf/uuid.h"

#define CID_HEADER "X-Correlation-Id"

struct gf_http_server {
    struct MHD_Daemon *daemon;
    gf_http_handler handler;
    void *app;
    size_t max_body;
    struct sockaddr_storage sa; /* MHD reads it during MHD_start_daemon only; kept for clarity */
    struct gf_log_ratelimit mhd_log_rl; /* per server, so a new server's bind error is shown */
};

/* Everything one request owns; created by the first access call, freed in on_completed. */
struct gf_http_request {
    struct MHD_Connection *conn;
    char *method;
    char *path;
    char *body; /* NUL-terminated; NULL until the first chunk */
    size_t body_len, body_cap;
    bool too_big;  /* the body passed max_body: its rest is discarded, the answer is 413 */
    bool answered; /* a response is queued already (early 413) */
    int64_t start_us;
    char cid[GF_UUID_STRLEN + 1];
};

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
    return MHD_YES;
}

/* Last call: the whole body is here (or was too large); run the handler and answer. */
static enum MHD_Result final_call(struct gf_http_server *srv, struct gf_http_request *req)
{
    if (req->answered)
        return MHD_YES;
    if (req->too_big)
        return queue_too_large(req, srv->max_body);
    struct gf_http_response resp = {0};
    srv->handler(srv->app, req, &resp);
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
        ret = first_call(srv, req);
    } else if (*upload_data_size != 0) {
        /* A chunk: never answered here, see STACK-NOTES. */
        gf_log_set_cid(req->cid);
        if (!req->answered)
            append_chunk(req, upload_data, *upload_data_size, srv->max_body);
        *upload_data_size = 0; /* always consumed, or MHD calls again with the same bytes */
        ret = MHD_YES;
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
    request_free(*con_cls);
    *con_cls = NULL;
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
        opt->max_connections < opt->threads || opt->connection_timeout_s < 0) {
        GF_ERROR("http invalid server options: need a handler, threads>=1, "
                 "max_connections>=threads, connection_timeout_s>=0");
        goto out;
    }
    srv = calloc(1, sizeof *srv);
    if (srv == NULL) {
        GF_ERROR("http out of memory starting a server");
        goto out;
    }
    srv->handler = opt->handler;
    srv->app = opt->app;
    srv->max_body = opt->max_body;
    if (resolve(srv, opt->addr, host, sizeof host, &port) != GF_OK)
        goto out;

    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (srv->sa.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* MHD warns about a pool of one thread, so the pool size is only given when > 1: an
     * option array can end early, a variadic list cannot. */
    struct MHD_OptionItem limits[] = {
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)opt->max_connections, NULL},
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
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&srv->sa, MHD_OPTION_END);
    if (srv->daemon == NULL) {
        GF_ERROR("http cannot start the server addr=%s", opt->addr);
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    int bound = info ? (int)info->port : port;
    GF_INFO("http listening host=%s port=%d threads=%d max_connections=%d max_body=%zu", host,
            bound, opt->threads, opt->max_connections, opt->max_body);
    if (bound_port != NULL)
        *bound_port = bound;
    res = srv;
    srv = NULL;
out:
    if (srv != NULL) {
        if (srv->daemon != NULL)
            MHD_stop_daemon(srv->daemon);
        free(srv);
    }
    return res;
}

void gf_http_server_stop(struct gf_http_server *srv)
{
    if (srv == NULL)
        return;
    /* Closes the listening socket, waits for the pool threads (and so for running handlers). */
    MHD_stop_daemon(srv->daemon);
    GF_INFO("http stopped");
    free(srv);
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
