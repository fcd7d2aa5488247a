/* Shared by http.c (the server) and http_guard.c (its connection guard, the reaper); not part
 * of the library's interface. */
#ifndef GF_HTTP_INTERNAL_H
#define GF_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "gf/status.h"

/* Request head, URL and the read buffer of one connection must fit in this (MHD's default,
 * set explicitly): larger heads get 431, longer URLs 414, from MHD itself. */
#define GF_HTTP__CONNECTION_MEMORY 32768

/* Where a connection is in its request/response cycle; the guard cuts by phase:
 *   HEAD    incomplete past header_timeout: 408 and close;
 *   BODY    incomplete past body_timeout:   408 and close;
 *   HANDLER the request is here whole (its body complete, or its handler running): never cut;
 *   SENDING the answer is not taken past body_timeout: closed without writing anything.
 * A connection waiting on the server (bytes unread in the kernel, an answer not yet written,
 * the process paused) is never the client's fault and is not cut. The phase and a generation
 * count share one atomic word, and the guard cuts by compare-and-swap from the very state it
 * judged: a request whose head or body completes at the same moment either wins (its handler
 * runs, nothing is cut) or loses (it is refused and its handler never runs), so a 408 always
 * means the work was not done. */
enum gf_http__phase {
    GF_HTTP__HEAD,    /* waiting for (the rest of) a request head, or idle between requests */
    GF_HTTP__BODY,    /* head read: the body is arriving */
    GF_HTTP__HANDLER, /* the request arrived whole; its handler runs or is about to: never cut */
    GF_HTTP__SENDING, /* an answer is queued: the client is taking it */
};

/* The guard of one server: every open connection, and the reaper thread that watches them. */
struct gf_http__guard;
/* One open connection, registered from MHD's "started" notification to its "closed" one. */
struct gf_http__conn;

/* Registers the guard's process-wide metrics (connections cut, by reason; connections open).
 * Once per process, before the first guard. */
void gf_http__guard_metrics_init(void);
/* A guard for a server of at most max_connections; NULL (logged) on a resource failure. */
struct gf_http__guard *gf_http__guard_new(int max_connections, int64_t header_timeout_us,
                                          int64_t body_timeout_us);
/* Starts the reaper thread (once MHD serves). */
enum gf_status gf_http__guard_start(struct gf_http__guard *g) GF_MUSTCHECK;
/* Stops the reaper: before MHD_stop_daemon, which closes (and so unregisters) every connection. */
void gf_http__guard_stop(struct gf_http__guard *g);
/* Frees the guard, after MHD_stop_daemon. NULL is a no-op. */
void gf_http__guard_free(struct gf_http__guard *g);

/* Registers the connection of descriptor fd; NULL when it cannot (out of memory: it is served
 * all the same, only never cut). */
struct gf_http__conn *gf_http__conn_open(struct gf_http__guard *g, int fd);
/* Unregisters and frees t (NULL is a no-op); MHD closes the descriptor only afterwards. */
void gf_http__conn_close(struct gf_http__guard *g, struct gf_http__conn *t);
/* Moves the connection to phase, unless the reaper cut it: false then, and the caller must
 * neither run a handler nor answer (the connection is closing). NULL (untracked) always moves. */
bool gf_http__conn_set(struct gf_http__conn *t, enum gf_http__phase phase);
/* The server took body bytes just now; left of them are still to come (-1: not known). */
void gf_http__conn_progress(struct gf_http__conn *t, long long left);

/* Server-sent events (sse.c): the streaming response of a client made by gf_http_reply_sse,
 * bound to its connection (NULL, the client freed, when it cannot be made); and the release
 * of a client whose response is never queued. */
struct MHD_Connection;
struct MHD_Response;
struct gf_sse__client;
struct MHD_Response *gf_sse__response(struct gf_sse__client *c, struct MHD_Connection *conn);
void gf_sse__abandon(struct gf_sse__client *c);

#endif
