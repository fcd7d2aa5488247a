/* Unary gRPC server on the C core. Every worker thread waits on ONE shared completion queue:
 * a handler that blocks on the database holds one thread, never the calls queued behind it
 * (a queue per thread was measured stalling calls for 1.2 s). Each registered method keeps
 * a few requests posted; a served slot is re-posted once its answer batch completes. */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gf/clock.h"
#include "gf/grpc.h"
#include "gf/log.h"
#include "gf/metrics.h"
#include "gf/uuid.h"
#include "grpc_tls.h"

/* Calls of one method that can be in progress at once: handlers that return GF_PENDING
 * free their thread, so this is not bounded by the thread count. */
#define MIN_SLOTS_PER_METHOD 64
#define SLOTS_PER_THREAD 2
#define GENERIC_SLOTS 2
#define NCODES 17

struct method_state {
    struct gf_grpc_method m;
    void *handle;
    struct gf_counter *_Atomic by_code[NCODES];
    struct gf_histogram *latency;
};

/* Per-call arena: chained blocks freed together when the call ends. */
struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    max_align_t data[];
};

enum slot_state { SLOT_WAITING, SLOT_ANSWERING };

struct gf_grpc_call {
    struct gf_grpc_server *srv;
    struct method_state *method; /* NULL for the generic (unknown method) slots */
    enum slot_state state;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_call_details details; /* generic slots only */
    grpc_byte_buffer *payload; /* registered slots only */
    grpc_byte_buffer *answer;
    ProtobufCMessage *req;  /* unpacked request, freed when answered */
    ProtobufCMessage *resp; /* in the arena */
    grpc_slice status_details;
    bool has_status_details;
    int cancelled;
    int64_t started_us;
    char cid[GF_UUID_STRLEN + 1];
    char error[256];
    struct arena_block *arena;
};

struct gf_grpc_server {
    grpc_server *server;
    grpc_completion_queue *cq;
    struct method_state *methods;
    int nmethods;
    void *app;
    grpc_status_code (*grpc_code)(enum gf_status);
    int nthreads;
    pthread_t *threads;
    atomic_bool stopping;
};

/* ---- per-call memory ------------------------------------------------------------------ */

void *gf_grpc_alloc(struct gf_grpc_call *call, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    struct arena_block *b = call->arena;
    if (b == NULL || b->cap - b->used < n) {
        size_t cap = n > 4096 ? n : 4096;
        b = malloc(sizeof *b + cap);
        if (b == NULL)
            return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = call->arena;
        call->arena = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *gf_grpc_strdup(struct gf_grpc_call *call, const char *s)
{
    size_t len = strlen(s);
    char *d = gf_grpc_alloc(call, len + 1);
    if (d)
        memcpy(d, s, len + 1);
    return d;
}

static void arena_free(struct gf_grpc_call *call)
{
    while (call->arena) {
        struct arena_block *next = call->arena->next;
        free(call->arena);
        call->arena = next;
    }
}

const char *gf_grpc_call_cid(const struct gf_grpc_call *call)
{
    return call->cid;
}

int64_t gf_grpc_call_time_left_ms(const struct gf_grpc_call *call)
{
    gpr_timespec inf = gpr_inf_future(call->deadline.clock_type);
    if (gpr_time_cmp(call->deadline, inf) == 0)
        return INT64_MAX;
    gpr_timespec d = gpr_convert_clock_type(call->deadline, GPR_CLOCK_MONOTONIC);
    gpr_timespec left = gpr_time_sub(d, gpr_now(GPR_CLOCK_MONOTONIC));
    return (int64_t)gpr_time_to_millis(left);
}

void gf_grpc_set_error(struct gf_grpc_call *call, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(call->error, sizeof call->error, fmt, ap);
    va_end(ap);
}

/* ---- slots ---------------------------------------------------------------------------- */

static bool post_slot(struct gf_grpc_server *srv, struct gf_grpc_call *slot)
{
    grpc_call_error e;
    slot->state = SLOT_WAITING;
    slot->call = NULL;
    slot->payload = NULL;
    grpc_metadata_array_init(&slot->md);
    if (slot->method) {
        e = grpc_server_request_registered_call(srv->server, slot->method->handle, &slot->call,
                                                &slot->deadline, &slot->md, &slot->payload, srv->cq,
                                                srv->cq, slot);
    } else {
        grpc_call_details_init(&slot->details);
        e = grpc_server_request_call(srv->server, &slot->call, &slot->details, &slot->md, srv->cq,
                                     srv->cq, slot);
    }
    if (e != GRPC_CALL_OK) {
        GF_ERROR("grpc request_call failed error=%d", (int)e);
        grpc_metadata_array_destroy(&slot->md);
        if (!slot->method)
            grpc_call_details_destroy(&slot->details);
        return false;
    }
    return true;
}

static void slot_reset(struct gf_grpc_call *slot)
{
    grpc_metadata_array_destroy(&slot->md);
    if (slot->method == NULL)
        grpc_call_details_destroy(&slot->details);
    if (slot->payload)
        grpc_byte_buffer_destroy(slot->payload);
    if (slot->answer)
        grpc_byte_buffer_destroy(slot->answer);
    if (slot->has_status_details)
        grpc_slice_unref(slot->status_details);
    if (slot->call)
        grpc_call_unref(slot->call);
    slot->payload = NULL;
    slot->answer = NULL;
    if (slot->req)
        protobuf_c_message_free_unpacked(slot->req, NULL);
    slot->req = NULL;
    slot->resp = NULL;
    slot->has_status_details = false;
    slot->call = NULL;
    slot->cid[0] = '\0';
    slot->error[0] = '\0';
    arena_free(slot);
}

static void take_cid(struct gf_grpc_call *slot)
{
    for (size_t i = 0; i < slot->md.count; i++) {
        if (grpc_slice_str_cmp(slot->md.metadata[i].key, GF_GRPC_CID_KEY) != 0)
            continue;
        grpc_slice v = slot->md.metadata[i].value;
        gf_uuid_normalize((const char *)GRPC_SLICE_START_PTR(v), GRPC_SLICE_LENGTH(v), slot->cid);
        break;
    }
    gf_log_set_cid(slot->cid[0] ? slot->cid : NULL);
}

static void count(struct method_state *ms, grpc_status_code code, int64_t us)
{
    int idx = (code >= 0 && code < NCODES) ? (int)code : GRPC_STATUS_UNKNOWN;
    struct gf_counter *c = atomic_load_explicit(&ms->by_code[idx], memory_order_acquire);
    if (c == NULL) {
        char labels[192];
        snprintf(labels, sizeof labels, "method=\"%s\",code=\"%s\"", ms->m.path,
                 gf_grpc_code_str((grpc_status_code)idx));
        c = gf_metrics_counter("gf_grpc_server_handled_total",
                               "gRPC calls answered, by method and status code", labels);
        atomic_store_explicit(&ms->by_code[idx], c, memory_order_release);
    }
    gf_counter_add(c, 1);
    gf_histogram_observe_us(ms->latency, us);
}

/* Sends the answer: resp packed if the code is OK, else the status and its text. */
static void answer(struct gf_grpc_call *slot, grpc_status_code code)
{
    struct gf_grpc_server *srv = slot->srv;
    struct method_state *ms = slot->method;
    if (code == GRPC_STATUS_OK && slot->resp) {
        size_t size = protobuf_c_message_get_packed_size(slot->resp);
        grpc_slice s = grpc_slice_malloc(size);
        protobuf_c_message_pack(slot->resp, GRPC_SLICE_START_PTR(s));
        slot->answer = grpc_raw_byte_buffer_create(&s, 1);
        grpc_slice_unref(s);
    }
    if (slot->req) {
        protobuf_c_message_free_unpacked(slot->req, NULL);
        slot->req = NULL;
    }
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n++].data.send_initial_metadata.count = 0;
    if (slot->answer) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = slot->answer;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.trailing_metadata_count = 0;
    ops[n].data.send_status_from_server.status = code;
    if (code != GRPC_STATUS_OK) {
        slot->status_details = grpc_slice_from_copied_string(slot->error);
        slot->has_status_details = true;
        ops[n].data.send_status_from_server.status_details = &slot->status_details;
    }
    n++;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &slot->cancelled;

    if (ms) {
        count(ms, code, gf_mono_us() - slot->started_us);
        if (code != GRPC_STATUS_OK)
            GF_DEBUG("rpc failed method=%s code=%s details=%s", ms->m.path, gf_grpc_code_str(code),
                     slot->error);
    }
    slot->state = SLOT_ANSWERING;
    grpc_call_error e = grpc_call_start_batch(slot->call, ops, n, slot, NULL);
    if (e != GRPC_CALL_OK) {
        GF_ERROR("grpc start_batch failed error=%d", (int)e);
        /* No completion will come for this batch: recycle the slot here. */
        slot_reset(slot);
        if (atomic_load(&srv->stopping) || !post_slot(srv, slot))
            free(slot);
    }
}

static void complete(struct gf_grpc_call *slot, enum gf_status st)
{
    grpc_status_code code = st == GF_OK ? GRPC_STATUS_OK : slot->srv->grpc_code(st);
    if (code != GRPC_STATUS_OK && slot->error[0] == '\0')
        gf_grpc_set_error(slot, "%s", gf_status_str(st));
    answer(slot, code);
}

void gf_grpc_finish(struct gf_grpc_call *call, enum gf_status st)
{
    gf_log_set_cid(call->cid[0] ? call->cid : NULL);
    complete(call, st == GF_PENDING ? GF_EINTERNAL : st);
    gf_log_set_cid(NULL);
}

/* Unpacks the request and runs the handler; answers now unless the handler deferred. */
static void serve(struct gf_grpc_server *srv, struct gf_grpc_call *slot)
{
    struct method_state *ms = slot->method;
    slot->started_us = gf_mono_us();
    take_cid(slot);

    if (ms == NULL) {
        gf_grpc_set_error(slot, "unknown method");
        answer(slot, GRPC_STATUS_UNIMPLEMENTED);
        goto out;
    }
    if (slot->payload == NULL) {
        gf_grpc_set_error(slot, "the request carries no message");
        answer(slot, GRPC_STATUS_INVALID_ARGUMENT);
        goto out;
    }
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, slot->payload)) {
        gf_grpc_set_error(slot, "the request message cannot be read");
        answer(slot, GRPC_STATUS_INVALID_ARGUMENT);
        goto out;
    }
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    slot->req = protobuf_c_message_unpack(ms->m.request, NULL, GRPC_SLICE_LENGTH(all),
                                          GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    if (slot->req == NULL) {
        gf_grpc_set_error(slot, "the request is not a valid %s message", ms->m.request->name);
        answer(slot, GRPC_STATUS_INVALID_ARGUMENT);
        goto out;
    }
    slot->resp = gf_grpc_alloc(slot, ms->m.response->sizeof_message);
    if (slot->resp == NULL) {
        gf_grpc_set_error(slot, "out of memory");
        answer(slot, GRPC_STATUS_RESOURCE_EXHAUSTED);
        goto out;
    }
    ms->m.response->message_init(slot->resp);
    enum gf_status st = ms->m.handler(slot, srv->app, slot->req, slot->resp);
    /* GF_PENDING: the call may already be answered and recycled by another thread. */
    if (st != GF_PENDING)
        complete(slot, st);
out:
    gf_log_set_cid(NULL);
}

static void *worker(void *arg)
{
    struct gf_grpc_server *srv = arg;
    for (;;) {
        grpc_event ev =
            grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        struct gf_grpc_call *slot = ev.tag;
        if (slot->state == SLOT_WAITING) {
            if (!ev.success) { /* the server is shutting down: nothing arrived */
                slot_reset(slot);
                free(slot);
                continue;
            }
            serve(srv, slot);
        } else {
            slot_reset(slot);
            if (atomic_load(&srv->stopping) || !post_slot(srv, slot))
                free(slot);
        }
    }
    return NULL;
}

static bool add_slot(struct gf_grpc_server *srv, struct method_state *ms)
{
    struct gf_grpc_call *slot = calloc(1, sizeof *slot);
    if (slot == NULL)
        return false;
    slot->srv = srv;
    slot->method = ms;
    if (!post_slot(srv, slot)) {
        free(slot);
        return false;
    }
    return true;
}

struct gf_grpc_server *gf_grpc_server_start(const struct gf_grpc_server_options *opt,
                                            int *bound_port)
{
    grpc_init();
    struct gf_grpc_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL) {
        grpc_shutdown();
        return NULL;
    }
    srv->app = opt->app;
    srv->grpc_code = opt->grpc_code;
    srv->nmethods = opt->nmethods;
    srv->nthreads = opt->threads > 0 ? opt->threads : 4;
    srv->methods = calloc((size_t)opt->nmethods, sizeof *srv->methods);
    srv->threads = calloc((size_t)srv->nthreads, sizeof *srv->threads);
    if (srv->methods == NULL || srv->threads == NULL)
        goto fail;

    /* Keepalive (see GF_GRPC_CLIENT_KEEPALIVE_MS): accept the clients' pings, idle
     * connections included (without these, a ping on a connection with no call open counts
     * as abuse and two of them get GOAWAY too_many_pings), and ping idle clients. */
    grpc_arg args[] = {
        {.type = GRPC_ARG_INTEGER,
         .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = opt->max_message_bytes > 0 ? opt->max_message_bytes : 4 << 20},
        {.type = GRPC_ARG_INTEGER,
         .key = (char *)GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
         .value.integer = GF_GRPC_SERVER_MIN_PING_INTERVAL_MS},
        {.type = GRPC_ARG_INTEGER,
         .key = (char *)GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS,
         .value.integer = 1},
        {.type = GRPC_ARG_INTEGER,
         .key = (char *)GRPC_ARG_KEEPALIVE_TIME_MS,
         .value.integer = GF_GRPC_SERVER_KEEPALIVE_MS},
        {.type = GRPC_ARG_INTEGER,
         .key = (char *)GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
         .value.integer = GF_GRPC_KEEPALIVE_TIMEOUT_MS},
    };
    grpc_channel_args chargs = {.num_args = sizeof args / sizeof args[0], .args = args};
    srv->server = grpc_server_create(&chargs, NULL);
    srv->cq = grpc_completion_queue_create_for_next(NULL);
    for (int i = 0; i < opt->nmethods; i++) {
        struct method_state *ms = &srv->methods[i];
        ms->m = opt->methods[i];
        ms->handle = grpc_server_register_method(srv->server, ms->m.path, NULL,
                                                 GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
        char labels[160];
        snprintf(labels, sizeof labels, "method=\"%s\"", ms->m.path);
        ms->latency = gf_metrics_histogram("gf_grpc_server_handling_seconds",
                                           "gRPC handling time, by method", labels);
    }
    grpc_server_register_completion_queue(srv->server, srv->cq, NULL);
    grpc_server_credentials *creds =
        opt->tls ? gf_grpc_tls_server_creds(opt->tls) : grpc_insecure_server_credentials_create();
    if (creds == NULL)
        goto fail;
    /* With TLS, gRPC parses the certificate and key here: a pair it refuses fails the bind. */
    int port = grpc_server_add_http2_port(srv->server, opt->addr, creds);
    grpc_server_credentials_release(creds);
    if (port == 0) {
        GF_ERROR("grpc cannot bind addr=%s%s", opt->addr,
                 opt->tls ? " (or the TLS certificate and key were refused: do they match?)" : "");
        goto fail;
    }
    grpc_server_start(srv->server);
    int slots = srv->nthreads * SLOTS_PER_THREAD;
    if (slots < MIN_SLOTS_PER_METHOD)
        slots = MIN_SLOTS_PER_METHOD;
    for (int i = 0; i < opt->nmethods; i++)
        for (int k = 0; k < slots; k++)
            if (!add_slot(srv, &srv->methods[i]))
                goto fail_started;
    for (int k = 0; k < GENERIC_SLOTS; k++)
        if (!add_slot(srv, NULL))
            goto fail_started;
    for (int i = 0; i < srv->nthreads; i++) {
        if (pthread_create(&srv->threads[i], NULL, worker, srv) != 0) {
            srv->nthreads = i;
            goto fail_started;
        }
    }
    GF_INFO("grpc listening addr=%s port=%d threads=%d tls=%s", opt->addr, port, srv->nthreads,
            opt->tls ? "mutual" : "off");
    if (bound_port)
        *bound_port = port;
    return srv;

fail_started:
    gf_grpc_server_stop(srv, 0);
    return NULL;
fail:
    if (srv->server) {
        srv->nthreads = 0;              /* none started: stop drains the queue itself */
        grpc_server_start(srv->server); /* shutdown needs a started server */
        gf_grpc_server_stop(srv, 0);
        return NULL;
    }
    free(srv->methods);
    free(srv->threads);
    free(srv);
    grpc_shutdown();
    return NULL;
}

void gf_grpc_server_stop(struct gf_grpc_server *srv, int grace_ms)
{
    if (srv == NULL)
        return;
    atomic_store(&srv->stopping, true);
    grpc_completion_queue *scq = grpc_completion_queue_create_for_pluck(NULL);
    int tag = 0;
    grpc_server_shutdown_and_notify(srv->server, scq, &tag);
    gpr_timespec until =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(grace_ms, GPR_TIMESPAN));
    grpc_event ev = grpc_completion_queue_pluck(scq, &tag, until, NULL);
    if (ev.type == GRPC_QUEUE_TIMEOUT) {
        GF_WARN("grpc shutdown grace period over: cancelling calls grace_ms=%d", grace_ms);
        grpc_server_cancel_all_calls(srv->server);
        grpc_completion_queue_pluck(scq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    }
    grpc_completion_queue_shutdown(scq);
    grpc_completion_queue_destroy(scq);

    /* Threads that never started (start failure) leave the queue to be drained here. */
    grpc_completion_queue_shutdown(srv->cq);
    if (srv->nthreads > 0) {
        for (int i = 0; i < srv->nthreads; i++)
            pthread_join(srv->threads[i], NULL);
    } else {
        worker(srv);
    }
    grpc_server_destroy(srv->server);
    grpc_completion_queue_destroy(srv->cq);
    free(srv->methods);
    free(srv->threads);
    free(srv);
    grpc_shutdown();
}

const char *gf_grpc_code_str(grpc_status_code code)
{
    static const char *const names[NCODES] = {"OK",
                                              "CANCELLED",
                                              "UNKNOWN",
                                              "INVALID_ARGUMENT",
                                              "DEADLINE_EXCEEDED",
                                              "NOT_FOUND",
                                              "ALREADY_EXISTS",
                                              "PERMISSION_DENIED",
                                              "RESOURCE_EXHAUSTED",
                                              "FAILED_PRECONDITION",
                                              "ABORTED",
                                              "OUT_OF_RANGE",
                                              "UNIMPLEMENTED",
                                              "INTERNAL",
                                              "UNAVAILABLE",
                                              "DATA_LOSS",
                                              "UNAUTHENTICATED"};
    return (code >= 0 && code < NCODES) ? names[code] : "UNKNOWN";
}
