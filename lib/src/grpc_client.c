/* Synchronous unary gRPC client: one channel per target (plaintext or mutual TLS), methods
 * registered once per channel, a private pluck queue per call, a deadline on every call. */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gf/grpc.h"
#include "gf/log.h"
#include "grpc_tls.h"

#define MAX_METHODS 32

struct gf_grpc_client {
    grpc_channel *channel;
    pthread_mutex_t mu;
    int nmethods;
    char *paths[MAX_METHODS];
    void *handles[MAX_METHODS];
};

/* The host a TLS client checks the server's certificate against, when gRPC's own choice
 * would be wrong: for an ipv4:/ipv6: target gRPC takes the whole list ("a:p,b:p") as the
 * name, which no certificate holds, so the first address's host is used. Empty otherwise
 * (gRPC takes the target's host: a dns: name or host:port). */
static void tls_server_name(const char *target, char *out, size_t outsz)
{
    out[0] = '\0';
    const char *p = NULL;
    if (strncmp(target, "ipv4:", 5) == 0)
        p = target + 5;
    else if (strncmp(target, "ipv6:", 5) == 0)
        p = target + 5;
    if (p == NULL)
        return;
    size_t n = strcspn(p, ",");
    const char *end = p + n;
    if (*p == '[') { /* [v6]:port */
        const char *close = memchr(p, ']', n);
        if (close == NULL)
            return;
        p++;
        end = close;
    } else {
        const char *colon = NULL;
        for (const char *q = p; q < end; q++)
            if (*q == ':')
                colon = q;
        if (colon != NULL && strncmp(target, "ipv4:", 5) == 0)
            end = colon;
    }
    if ((size_t)(end - p) < outsz) {
        memcpy(out, p, (size_t)(end - p));
        out[end - p] = '\0';
    }
}

struct gf_grpc_client *gf_grpc_client_new(const char *target)
{
    return gf_grpc_client_new_tls(target, NULL);
}

struct gf_grpc_client *gf_grpc_client_new_tls(const char *target, const struct gf_grpc_tls *tls)
{
    grpc_init();
    struct gf_grpc_client *c = calloc(1, sizeof *c);
    if (c == NULL) {
        grpc_shutdown();
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    grpc_channel_credentials *creds =
        tls ? gf_grpc_tls_channel_creds(tls) : grpc_insecure_credentials_create();
    char server_name[256];
    tls_server_name(target, server_name, sizeof server_name);
    /* round_robin: a target that resolves to several servers (ipv4:a:p,b:p, or a DNS name
     * with several addresses, as a headless Kubernetes Service has) spreads the calls over
     * all of them, and a server that goes away is skipped; one address works as before. */
    grpc_arg a[8] = {
        {.type = GRPC_ARG_STRING,
         .key = (char *)GRPC_ARG_SERVICE_CONFIG,
         .value.string = (char *)"{\"loadBalancingConfig\":[{\"round_robin\":{}}]}"},
        /* Keepalive (see GF_GRPC_CLIENT_KEEPALIVE_MS): a cut-off server is noticed in seconds,
         * also on an idle channel, and without a ping limit between calls. */
        {.type = GRPC_ARG_INTEGER,
         .key = (char *)GRPC_ARG_KEEPALIVE_TIME_MS,
         .value.integer = GF_GRPC_CLIENT_KEEPALIVE_MS},
        {.type = GRPC_ARG_INTEGER,
         .key = (char *)GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
         .value.integer = GF_GRPC_KEEPALIVE_TIMEOUT_MS},
        {.type = GRPC_ARG_INTEGER,
         .key = (char *)GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS,
         .value.integer = 1},
        {.type = GRPC_ARG_INTEGER,
         .key = (char *)GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA,
         .value.integer = 0},
        /* A server that is back is found within a second (GF_GRPC_CLIENT_MAX_BACKOFF_MS). */
        {.type = GRPC_ARG_INTEGER,
         .key = (char *)GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
         .value.integer = GF_GRPC_CLIENT_INITIAL_BACKOFF_MS},
        {.type = GRPC_ARG_INTEGER,
         .key = (char *)GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
         .value.integer = GF_GRPC_CLIENT_MAX_BACKOFF_MS},
        {.type = GRPC_ARG_STRING,
         .key = (char *)GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
         .value.string = server_name},
    };
    size_t nargs = sizeof a / sizeof a[0];
    if (tls == NULL || server_name[0] == '\0')
        nargs--; /* the override goes last */
    grpc_channel_args args = {.num_args = nargs, .args = a};
    c->channel = grpc_channel_create(target, creds, &args);
    grpc_channel_credentials_release(creds);
    return c;
}

void gf_grpc_client_free(struct gf_grpc_client *c)
{
    if (c == NULL)
        return;
    grpc_channel_destroy(c->channel);
    for (int i = 0; i < c->nmethods; i++)
        free(c->paths[i]);
    pthread_mutex_destroy(&c->mu);
    free(c);
    grpc_shutdown();
}

static void *method_handle(struct gf_grpc_client *c, const char *path)
{
    void *h = NULL;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->nmethods; i++) {
        if (strcmp(c->paths[i], path) == 0) {
            h = c->handles[i];
            goto out;
        }
    }
    if (c->nmethods < MAX_METHODS) {
        char *p = strdup(path);
        if (p == NULL)
            goto out;
        h = grpc_channel_register_call(c->channel, p, NULL, NULL);
        c->paths[c->nmethods] = p;
        c->handles[c->nmethods++] = h;
    }
out:
    pthread_mutex_unlock(&c->mu);
    return h;
}

static void set_details(char *details, size_t detailsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_details(char *details, size_t detailsz, const char *fmt, ...)
{
    if (details == NULL || detailsz == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(details, detailsz, fmt, ap);
    va_end(ap);
}

static void copy_details(grpc_slice s, char *details, size_t detailsz)
{
    if (details == NULL || detailsz == 0)
        return;
    size_t n = GRPC_SLICE_LENGTH(s);
    if (n >= detailsz)
        n = detailsz - 1;
    memcpy(details, GRPC_SLICE_START_PTR(s), n);
    details[n] = '\0';
}

grpc_status_code gf_grpc_client_call_raw(struct gf_grpc_client *c, const char *path,
                                         const uint8_t *data, size_t len, uint8_t **resp,
                                         size_t *resp_len, int timeout_ms, const char *cid,
                                         unsigned flags, char *details, size_t detailsz)
{
    grpc_status_code code = GRPC_STATUS_INTERNAL;
    if (details && detailsz)
        details[0] = '\0';
    void *h = method_handle(c, path);
    if (h == NULL) {
        set_details(details, detailsz, "too many methods on one channel");
        return GRPC_STATUS_RESOURCE_EXHAUSTED;
    }
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
    grpc_call *call = grpc_channel_create_registered_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS,
                                                          cq, h, deadline, NULL);
    grpc_slice payload = grpc_slice_from_copied_buffer((const char *)data, len);
    grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&payload, 1);
    grpc_slice_unref(payload);

    grpc_metadata md[1];
    size_t nmd = 0;
    if (cid && cid[0]) {
        md[0].key = grpc_slice_from_static_string(GF_GRPC_CID_KEY);
        md[0].value = grpc_slice_from_copied_string(cid);
        nmd = 1;
    }
    grpc_metadata_array recv_initial, trailing;
    grpc_metadata_array_init(&recv_initial);
    grpc_metadata_array_init(&trailing);
    grpc_byte_buffer *recv = NULL;
    grpc_slice status_details = grpc_empty_slice();

    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = nmd;
    ops[0].data.send_initial_metadata.metadata = nmd ? md : NULL;
    ops[0].flags = (flags & GF_GRPC_WAIT_FOR_READY) ? GRPC_INITIAL_METADATA_WAIT_FOR_READY : 0;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &recv_initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
    ops[5].data.recv_status_on_client.status = &code;
    ops[5].data.recv_status_on_client.status_details = &status_details;

    int tag = 0;
    grpc_call_error e = grpc_call_start_batch(call, ops, 6, &tag, NULL);
    if (e != GRPC_CALL_OK) {
        code = GRPC_STATUS_INTERNAL;
        set_details(details, detailsz, "start_batch failed: %d", (int)e);
    } else {
        grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        copy_details(status_details, details, detailsz);
        if (code == GRPC_STATUS_OK && resp) {
            *resp = NULL;
            *resp_len = 0;
            if (recv) {
                grpc_byte_buffer_reader reader;
                if (grpc_byte_buffer_reader_init(&reader, recv)) {
                    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
                    grpc_byte_buffer_reader_destroy(&reader);
                    size_t n = GRPC_SLICE_LENGTH(all);
                    *resp = malloc(n ? n : 1);
                    if (*resp) {
                        memcpy(*resp, GRPC_SLICE_START_PTR(all), n);
                        *resp_len = n;
                    } else {
                        code = GRPC_STATUS_RESOURCE_EXHAUSTED;
                    }
                    grpc_slice_unref(all);
                }
            }
        }
    }
    if (nmd)
        grpc_slice_unref(md[0].value);
    grpc_slice_unref(status_details);
    grpc_metadata_array_destroy(&recv_initial);
    grpc_metadata_array_destroy(&trailing);
    grpc_byte_buffer_destroy(send);
    if (recv)
        grpc_byte_buffer_destroy(recv);
    grpc_call_unref(call);
    /* The batch's only event was plucked above: the queue is empty and can go. */
    grpc_completion_queue_shutdown(cq);
    grpc_completion_queue_destroy(cq);
    return code;
}

grpc_status_code gf_grpc_client_call(struct gf_grpc_client *c, const char *path,
                                     const ProtobufCMessage *req,
                                     const ProtobufCMessageDescriptor *resp_desc,
                                     ProtobufCMessage **resp_out, int timeout_ms, const char *cid,
                                     unsigned flags, char *details, size_t detailsz)
{
    size_t size = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return GRPC_STATUS_RESOURCE_EXHAUSTED;
    protobuf_c_message_pack(req, buf);
    uint8_t *rbuf = NULL;
    size_t rlen = 0;
    grpc_status_code code = gf_grpc_client_call_raw(c, path, buf, size, &rbuf, &rlen, timeout_ms,
                                                    cid, flags, details, detailsz);
    free(buf);
    if (code == GRPC_STATUS_OK) {
        ProtobufCMessage *m = protobuf_c_message_unpack(resp_desc, NULL, rlen, rbuf);
        if (m == NULL) {
            code = GRPC_STATUS_INTERNAL;
            set_details(details, detailsz, "the response is not a valid %s", resp_desc->name);
        } else {
            *resp_out = m;
        }
    }
    free(rbuf);
    return code;
}
