/* gRPC glue for protobuf-c messages on the gRPC C core: a unary server (one completion
 * queue shared by a pool of threads, so a slow handler never delays a fast call) and a
 * synchronous unary client with deadlines. The correlation id travels as the metadata
 * key x-correlation-id. */
#ifndef GF_GRPC_H
#define GF_GRPC_H

#include <grpc/grpc.h>
#include <grpc/status.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gf/status.h"

#define GF_GRPC_CID_KEY "x-correlation-id"

/* Bounds on a peer that stops answering (partition, paused or dead host). Clients send an
 * HTTP/2 keepalive ping after GF_GRPC_CLIENT_KEEPALIVE_MS without activity, calls or not, and
 * drop the transport when it is not acknowledged within GF_GRPC_KEEPALIVE_TIMEOUT_MS; gRPC
 * also sets TCP_USER_TIMEOUT to that timeout, so bytes that stay unacknowledged that long end
 * the connection too. A channel to a cut-off server is thus known dead within about
 * KEEPALIVE + TIMEOUT (10 s) and reconnects or moves to another address; each call is bounded
 * by its own deadline meanwhile. Servers accept such pings (one per
 * GF_GRPC_SERVER_MIN_PING_INTERVAL_MS at most, even with no call open, instead of answering
 * GOAWAY too_many_pings) and ping idle clients themselves every GF_GRPC_SERVER_KEEPALIVE_MS,
 * so a vanished client's transport is freed within about 15 s. */
#define GF_GRPC_CLIENT_KEEPALIVE_MS 5000
#define GF_GRPC_SERVER_KEEPALIVE_MS 10000
#define GF_GRPC_KEEPALIVE_TIMEOUT_MS 5000
#define GF_GRPC_SERVER_MIN_PING_INTERVAL_MS 1000

/* A peer that comes back is reconnected to within about GF_GRPC_CLIENT_MAX_BACKOFF_MS. gRPC's
 * own reconnect back-off grows by 1.6 a failure up to 120 s, so a backend that had been
 * trying gxp for 40 s answered 503 for 26 s more after gxp was back. A connect attempt a
 * second to a server that is down costs nothing worth saving. */
#define GF_GRPC_CLIENT_INITIAL_BACKOFF_MS 200
#define GF_GRPC_CLIENT_MAX_BACKOFF_MS 1000

/* ---- mutual TLS ---------------------------------------------------------------------- */

/* A process's TLS material, read once at start from three PEM files: the private CA that
 * signed every peer, and the process's own certificate (chain) and key, which it shows both
 * as a server and as a client. gRPC's own TLS does the rest: a server given this material
 * requires a client certificate and verifies it against the CA; a client verifies the
 * server's certificate against the CA and the server name (see gf_grpc_client_new_tls). */
struct gf_grpc_tls;

/* The variables <prefix>_TLS_CA, <prefix>_TLS_CERT, <prefix>_TLS_KEY and <prefix>_GRPC_INSECURE
 * follow one rule: the three files all set (mutual TLS), or none of them and the explicit
 * opt-in insecure (plaintext). Anything else is logged like gf_config_load's problems, one
 * line each, and gives GF_EINVAL (exit 78). Reads no file: --check-config runs it on
 * manifests whose paths exist only in the container. */
enum gf_status gf_grpc_tls_config_check(const char *prefix, const char *ca, const char *cert,
                                        const char *key, bool insecure) GF_MUSTCHECK;

/* Reads the three PEM files into a new gf_grpc_tls (*out, on success only). A file that
 * cannot be read, is empty or over 1 MiB, holds no PEM block of its kind, or an encrypted
 * key, is logged naming the variable (<prefix>_TLS_CA, ...) and the file, and gives GF_EINVAL.
 * cert and key may both be NULL: a client that shows no certificate (for tests). */
enum gf_status gf_grpc_tls_load(const char *prefix, const char *ca, const char *cert,
                                const char *key, struct gf_grpc_tls **out) GF_MUSTCHECK;
void gf_grpc_tls_free(struct gf_grpc_tls *tls); /* NULL is a no-op */

/* ---- server ------------------------------------------------------------------------ */

struct gf_grpc_call; /* one call being served */

/* A handler fills resp (already initialized for the method's response type) and returns
 * GF_OK, or returns a failure status after gf_grpc_set_error. Memory for resp's strings
 * and arrays comes from gf_grpc_alloc: it lives until the answer is sent.
 * A handler that waits for something (a database result) need not hold its thread: it
 * returns GF_PENDING and later, from any thread, calls gf_grpc_finish exactly once. After
 * returning GF_PENDING it must not touch call; req and resp stay valid until the finish. */
typedef enum gf_status (*gf_grpc_handler)(struct gf_grpc_call *call, void *app,
                                          const ProtobufCMessage *req, ProtobufCMessage *resp);

struct gf_grpc_method {
    const char *path; /* "/gxp.Gxp/GetAll" */
    const ProtobufCMessageDescriptor *request;
    const ProtobufCMessageDescriptor *response;
    gf_grpc_handler handler;
};

struct gf_grpc_server_options {
    const char *addr;      /* "host:port"; port 0 = ephemeral */
    int threads;           /* worker threads on the shared completion queue */
    int max_message_bytes; /* larger requests are refused by gRPC (RESOURCE_EXHAUSTED) */
    const struct gf_grpc_method *methods;
    int nmethods;
    void *app; /* passed to every handler */
    /* The service's one table from status to gRPC code. */
    grpc_status_code (*grpc_code)(enum gf_status st);
    /* NULL = plaintext. Otherwise mutual TLS: a client without a certificate the CA signed
     * cannot connect (material without a certificate of its own is refused at start). */
    const struct gf_grpc_tls *tls;
};

struct gf_grpc_server;

/* Binds, registers the methods and starts the threads. *bound_port gets the real port. */
struct gf_grpc_server *gf_grpc_server_start(const struct gf_grpc_server_options *opt,
                                            int *bound_port);

/* Stops accepting calls, lets in-flight calls finish for up to grace_ms, cancels the rest,
 * joins the threads and frees everything. NULL is a no-op. */
void gf_grpc_server_stop(struct gf_grpc_server *srv, int grace_ms);

void *gf_grpc_alloc(struct gf_grpc_call *call, size_t n); /* zeroed; NULL when out of memory */
char *gf_grpc_strdup(struct gf_grpc_call *call, const char *s);
const char *gf_grpc_call_cid(const struct gf_grpc_call *call); /* "" when none came */
/* Remaining time before the caller's deadline, ms (INT64_MAX when it set none). */
int64_t gf_grpc_call_time_left_ms(const struct gf_grpc_call *call);
/* Answers a call whose handler returned GF_PENDING: resp as filled if st is GF_OK, else
 * the status and the text of gf_grpc_set_error. Must not be called twice. */
void gf_grpc_finish(struct gf_grpc_call *call, enum gf_status st);
/* The status details sent with a failure: one human sentence, no internals. */
void gf_grpc_set_error(struct gf_grpc_call *call, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- client ------------------------------------------------------------------------ */

struct gf_grpc_client;

/* A channel to target, connected lazily: "host:port", or several servers as
 * "ipv4:host:port,host:port" (or a DNS name with several addresses); calls go round-robin
 * over the servers that are up. */
struct gf_grpc_client *gf_grpc_client_new(const char *target);
/* The same over TLS when tls is not NULL (plaintext when it is): the server's certificate
 * must chain to tls's CA and name the target's host (a DNS name or an IP address in its
 * subjectAltName). For an ipv4:/ipv6: list of several servers that host is the first
 * address's: every server in the list must hold a certificate naming it. The client shows
 * tls's own certificate, if it has one. */
struct gf_grpc_client *gf_grpc_client_new_tls(const char *target, const struct gf_grpc_tls *tls);
void gf_grpc_client_free(struct gf_grpc_client *c);

#define GF_GRPC_WAIT_FOR_READY 1u /* wait (until the deadline) for a server that is not up */

/* One unary call. On GRPC_STATUS_OK *resp_out holds the unpacked response (free with
 * protobuf_c_message_free_unpacked(*resp_out, NULL)). details (may be NULL) receives the
 * status text. cid may be NULL or "". */
grpc_status_code gf_grpc_client_call(struct gf_grpc_client *c, const char *path,
                                     const ProtobufCMessage *req,
                                     const ProtobufCMessageDescriptor *resp_desc,
                                     ProtobufCMessage **resp_out, int timeout_ms, const char *cid,
                                     unsigned flags, char *details, size_t detailsz);

/* The same with raw request bytes (for tests of hostile payloads); the raw response bytes
 * land in *resp (malloc'd, caller frees) when resp is not NULL. */
grpc_status_code gf_grpc_client_call_raw(struct gf_grpc_client *c, const char *path,
                                         const uint8_t *data, size_t len, uint8_t **resp,
                                         size_t *resp_len, int timeout_ms, const char *cid,
                                         unsigned flags, char *details, size_t detailsz);

/* "OK", "INVALID_ARGUMENT", ... */
const char *gf_grpc_code_str(grpc_status_code code);

#endif
