/* A small HTTP/1.1 server on libmicrohttpd for JSON APIs and probes: a thread pool, a
 * body limit, correlation ids in and out, and one handler per server (the services' routes,
 * error model and request metrics are gf/http_api.h's, on top of it). */
#ifndef GF_HTTP_H
#define GF_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "gf/status.h"

struct gf_http_request;
struct gf_sse__client;

/* The answer a handler fills in. body is malloc'd by the handler (or NULL) and freed by
 * the server; headers are copied when set. */
#define GF_HTTP_MAX_HEADERS 8
struct gf_http_response {
    int status;               /* default 200 */
    const char *content_type; /* static string; default "application/json" */
    char *body;
    size_t body_len;
    int nheaders;
    char *header_names[GF_HTTP_MAX_HEADERS];
    char *header_values[GF_HTTP_MAX_HEADERS];
    struct gf_sse__client *stream; /* set by gf_http_reply_sse (gf/sse.h): body is ignored */
};

/* Called once per request, after the whole body arrived, on a server thread. */
typedef void (*gf_http_handler)(void *app, const struct gf_http_request *req,
                                struct gf_http_response *resp);

/* Hostile clients (see ARCHITECTURE.md, "HTTP under attack"): a connection whose request head
 * has started but is not complete after header_timeout_ms, or whose body lasts longer than
 * body_timeout_ms, is answered 408 and closed, and its handler never runs; a request that
 * arrived whole is never answered 408 (bytes the server has not read yet, its handler running,
 * time the process was stopped: none counts against the client), and an answer not taken
 * within body_timeout_ms is closed without any status; idle
 * connections are closed after connection_timeout_s, and sooner, oldest first, while the open
 * connections pass 90% of max_connections. At most max_inflight handlers run at once, except on
 * the unlimited paths (probes, metrics): a request beyond it is answered 503 with Retry-After
 * at once, so that threads stay free to accept and answer the probes. */
#define GF_HTTP_WORKERS_MAX 1024

struct gf_http_server_options {
    const char *addr;         /* "host:port"; port 0 = ephemeral (the bound one is logged) */
    int threads;              /* thread pool size */
    int max_connections;      /* concurrent connections at most; must be >= threads; cut to
                               * what RLIMIT_NOFILE allows (with a warning) */
    int connection_timeout_s; /* idle connections are closed after this (0 = never) */
    size_t max_body;          /* larger bodies get 413 */
    int max_inflight;         /* handlers at once, unlimited paths aside; 0 = threads minus a
                               * quarter (at least 1 thread kept); at most threads + workers */
    int header_timeout_ms;    /* 0 = 10000 */
    int body_timeout_ms;      /* 0 = 30000 */
    const char *const *unlimited_paths; /* NULL-terminated; NULL = /healthz, /readyz, /metrics */
    /* 0: every handler runs on the pool thread that read its request. > 0: the handlers of
     * writes (any method but GET and HEAD; the unlimited paths aside) run on this many threads
     * of their own while their connection is suspended, so that a write that waits (a lock,
     * a queue, another service) does not hold up the other connections of its pool thread.
     * Workers beyond max_inflight are never busy. At most GF_HTTP_WORKERS_MAX. */
    int workers;
    gf_http_handler handler;
    void *app;
    /* Called with app when the server stops (NULL: app stays the caller's). Only a server that
     * started takes app: when gf_http_server_start fails, app is still the caller's. */
    void (*app_free)(void *app);
};

struct gf_http_server;

/* Starts serving; *bound_port (may be NULL) receives the port really bound. */
struct gf_http_server *gf_http_server_start(const struct gf_http_server_options *opt,
                                            int *bound_port);
/* The max_inflight a server uses for threads and the option's value: 0 means threads minus a
 * quarter of them (at least one kept free for probes); never above threads, never below 1. */
int gf_http_default_inflight(int threads, int max_inflight);
/* Stops accepting, finishes in-flight requests, frees. NULL is a no-op. */
void gf_http_server_stop(struct gf_http_server *srv);

/* Request accessors; strings live until the handler returns. */
const char *gf_http_method(const struct gf_http_request *req);
const char *gf_http_path(const struct gf_http_request *req); /* without the query */
const char *gf_http_query(const struct gf_http_request *req, const char *key); /* NULL if absent */
/* Calls fn for every query parameter, in order, duplicates included; value is NULL for a key
 * without one, and value_len is its decoded length (a value holding a NUL byte has
 * strlen(value) < value_len: refuse it). Returns how many parameters there were. */
typedef void (*gf_http_param_fn)(void *arg, const char *key, const char *value, size_t value_len);
int gf_http_query_each(const struct gf_http_request *req, gf_http_param_fn fn, void *arg);
const char *gf_http_header(const struct gf_http_request *req,
                           const char *name);                             /* case-insensitive */
const char *gf_http_body(const struct gf_http_request *req, size_t *len); /* NUL-terminated */
const char *gf_http_cid(const struct gf_http_request *req); /* the request's correlation id */

/* Response helpers. Formatting failures leave a 500 with an empty body. */
void gf_http_set_body(struct gf_http_response *resp, int status, const char *content_type,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void gf_http_add_header(struct gf_http_response *resp, const char *name, const char *value);
/* Answers obj (a new reference, taken) as compact JSON. A NULL obj, or one that cannot be
 * serialized (a bug or no memory), is answered 500 {"message","error":"internal",
 * "correlationId":cid} and logged; false then. */
bool gf_http_reply_json(struct gf_http_response *resp, int status, json_t *obj, const char *cid);
/* Answers every registered metric in the Prometheus text format; false (nothing answered)
 * when they cannot be rendered. */
bool gf_http_reply_metrics(struct gf_http_response *resp);

#endif
