/* Server-sent events (text/event-stream) on the HTTP server of gf/http.h: a hub fans each
 * published event out to every open stream. A stream holds no server thread while it waits:
 * its connection is suspended (libmicrohttpd's suspend/resume) until the hub has bytes for it,
 * so a browser left open costs a buffer, not one of the pool's threads.
 *
 *     struct gf_sse_hub *hub = gf_sse_hub_new("console", 16, 1 << 20);
 *     ... in a handler:   gf_http_reply_sse(resp, hub, snapshot_frames, cid);
 *     ... from any thread: gf_sse_publish(hub, "tx", "{\"correlationId\":...}");
 *     ... at shutdown, before gf_http_server_stop: gf_sse_hub_free(hub);
 *
 * A stream whose client does not keep up (more than max_backlog bytes waiting) is ended; the
 * browser's EventSource reconnects by itself and gets a fresh snapshot. Every 15 s an idle
 * stream gets a comment line, so that proxies keep it open and a vanished client is noticed. */
#ifndef GF_SSE_H
#define GF_SSE_H

#include <stdbool.h>
#include <stddef.h>

#include "gf/http.h"

struct gf_sse_hub;

/* A hub for at most max_clients streams at once, each with at most max_backlog bytes waiting;
 * name labels its metrics (gf_sse_streams{hub}, gf_sse_events_total{hub},
 * gf_sse_dropped_total{hub}). NULL (logged) when out of memory or a thread cannot start. */
struct gf_sse_hub *gf_sse_hub_new(const char *name, int max_clients, size_t max_backlog);

/* Ends every stream and refuses new ones (503), waiting (at most 5 s) until the server has let
 * go of them: before the HTTP server stops, while routes may still run. NULL is a no-op. */
void gf_sse_hub_close(struct gf_sse_hub *h);
/* Closes (if not yet) and frees the hub, once no route can reach it. NULL is a no-op. */
void gf_sse_hub_free(struct gf_sse_hub *h);

/* Sends one event to every open stream: "event: <event>\ndata: <data>\n\n". data must be one
 * line (JSON without raw newlines); event a short token. false (nothing sent) when they are
 * not, or when no stream is open (then it costs one lock). */
bool gf_sse_publish(struct gf_sse_hub *h, const char *event, const char *data);

/* Streams open now. */
int gf_sse_clients(struct gf_sse_hub *h);

/* Answers the request with a stream of the hub's events from now on (200 text/event-stream,
 * no caching, nginx told not to buffer it). first, when not NULL, is sent before any of them:
 * whole frames, e.g. a snapshot built with gf_sse_frame. A full hub answers 503
 * {"error":"too_many_streams"} with Retry-After. false when out of memory (answered 500). */
bool gf_http_reply_sse(struct gf_http_response *resp, struct gf_sse_hub *h, const char *first,
                       const char *cid);

/* Appends the frame of one event to *buf (malloc'd, grown; *buf may be NULL, *len its length):
 * for building a first block. false when out of memory or the event is not valid. */
bool gf_sse_frame(char **buf, size_t *len, const char *event, const char *data);

#endif
