/* The consumer thread of gf/amqp.h: connect, declare, consume in batches, settle (ack or
 * dead-letter) only after the handler committed, reconnect with back-off. Anything not
 * settled when a connection ends is redelivered by the broker, so nothing is lost; the
 * handler makes redeliveries harmless. */
#include <amqp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "amqp_internal.h"
#include "gf/amqp.h"
#include "gf/clock.h"
#include "gf/log.h"
#include "gf/metrics.h"

#define CHANNEL 1
#define IDLE_WAIT_MS 200 /* how often an idle consumer checks for stop */

struct gf_amqp_consumer {
    struct gf_amqp_consumer_options opt;
    pthread_t thread;
    atomic_bool stop;
    atomic_bool ready;
    amqp_envelope_t *env; /* the batch in hand */
    struct gf_amqp_delivery *d;
    char **strs; /* per delivery: its NUL-terminated strings, one allocation */
    struct gf_counter *delivered, *acked, *dead, *redelivered, *reconnects, *handler_failed;
};

static void register_metrics(struct gf_amqp_consumer *c)
{
    const char *p = c->opt.metrics_prefix ? c->opt.metrics_prefix : "amqp_consumer";
    char name[128], labels[160];
    snprintf(labels, sizeof labels, "queue=\"%s\"", c->opt.queue->name);
#define COUNTER(field, suffix, help)                                                               \
    snprintf(name, sizeof name, "%s_" suffix, p);                                                  \
    c->field = gf_metrics_counter(name, help, labels)
    COUNTER(delivered, "deliveries_total", "messages received from the broker");
    COUNTER(acked, "acked_total", "messages acknowledged after the handler committed them");
    COUNTER(dead, "dead_lettered_total", "messages rejected to the dead-letter queue");
    COUNTER(redelivered, "redelivered_total", "messages the broker delivered again");
    COUNTER(reconnects, "reconnects_total", "connections (re)established to the broker");
    COUNTER(handler_failed, "handler_failures_total",
            "batches the handler could not commit (left to be redelivered)");
#undef COUNTER
}

/* Copies an AMQP short string property (or "") after *p; returns where it starts. */
static const char *put(char **p, const amqp_basic_properties_t *props, amqp_flags_t flag,
                       const amqp_bytes_t *b)
{
    char *start = *p;
    if ((props == NULL || (props->_flags & flag)) && b->len > 0) {
        memcpy(start, b->bytes, b->len);
        start[b->len] = '\0';
        *p += b->len + 1;
    } else {
        start[0] = '\0';
        *p += 1;
    }
    return start;
}

static int64_t header_i64(const amqp_basic_properties_t *props, const char *key)
{
    if (!(props->_flags & AMQP_BASIC_HEADERS_FLAG))
        return 0;
    size_t klen = strlen(key);
    for (int i = 0; i < props->headers.num_entries; i++) {
        const amqp_table_entry_t *e = &props->headers.entries[i];
        if (e->key.len != klen || memcmp(e->key.bytes, key, klen) != 0)
            continue;
        switch (e->value.kind) {
        case AMQP_FIELD_KIND_I64:
            return e->value.value.i64;
        case AMQP_FIELD_KIND_U64:
        case AMQP_FIELD_KIND_TIMESTAMP:
            return (int64_t)e->value.value.u64;
        case AMQP_FIELD_KIND_I32:
            return e->value.value.i32;
        default:
            return 0;
        }
    }
    return 0;
}

/* Fills c->d[i] from c->env[i]. Returns false on allocation failure. */
static bool to_delivery(struct gf_amqp_consumer *c, int i)
{
    const amqp_envelope_t *e = &c->env[i];
    const amqp_basic_properties_t *p = &e->message.properties;
    size_t need = e->routing_key.len + p->content_type.len + p->type.len + p->message_id.len +
                  p->correlation_id.len + 5;
    char *s = malloc(need);
    if (s == NULL)
        return false;
    c->strs[i] = s;
    struct gf_amqp_delivery *d = &c->d[i];
    *d = (struct gf_amqp_delivery){.tag = e->delivery_tag, .redelivered = e->redelivered};
    d->routing_key = put(&s, NULL, 0, &e->routing_key);
    d->content_type = put(&s, p, AMQP_BASIC_CONTENT_TYPE_FLAG, &p->content_type);
    d->type = put(&s, p, AMQP_BASIC_TYPE_FLAG, &p->type);
    d->message_id = put(&s, p, AMQP_BASIC_MESSAGE_ID_FLAG, &p->message_id);
    d->correlation_id = put(&s, p, AMQP_BASIC_CORRELATION_ID_FLAG, &p->correlation_id);
    d->timestamp_s = (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG) ? (int64_t)p->timestamp : 0;
    d->occurred_at_us = header_i64(p, "x-occurred-at-us");
    d->body = e->message.body.bytes;
    d->len = e->message.body.len;
    return true;
}

static void free_batch(struct gf_amqp_consumer *c, int n)
{
    for (int i = 0; i < n; i++) {
        amqp_destroy_envelope(&c->env[i]);
        free(c->strs[i]);
        c->strs[i] = NULL;
    }
}

/* Waits up to wait_ms for one delivery into c->env[i]. 1 = got one, 0 = none in time,
 * -1 = the connection broke. */
static int next_delivery(struct gf_amqp_consumer *c, struct gf_amqp_conn *conn, int i, int wait_ms)
{
    struct timeval tv = {.tv_sec = wait_ms / 1000, .tv_usec = (wait_ms % 1000) * 1000};
    amqp_maybe_release_buffers(conn->state);
    amqp_rpc_reply_t r = amqp_consume_message(conn->state, &c->env[i], &tv, 0);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 1;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT)
        return 0;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
        /* Not a delivery: a close from the broker, a cancel, a stray ack. */
        amqp_frame_t f;
        struct timeval zero = {0};
        int rc = amqp_simple_wait_frame_noblock(conn->state, &f, &zero);
        if (rc == AMQP_STATUS_OK) {
            gf_amqp_handle_stray(conn, &f);
            return conn->broken ? -1 : 0;
        }
        if (rc == AMQP_STATUS_TIMEOUT)
            return 0;
    }
    GF_LOG_RL(GF_LOG_WARN, 5000, "amqp consume failed name=%s reason='%s'", conn->name,
              r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
                  ? amqp_error_string2(r.library_error)
                  : "broker closed the channel or connection");
    conn->broken = true;
    return -1;
}

/* Settles a handled batch: one multiple-ack when all are acked, else one by one. */
static enum gf_status settle(struct gf_amqp_consumer *c, struct gf_amqp_conn *conn, int n)
{
    int dead = 0;
    for (int i = 0; i < n; i++)
        dead += c->d[i].disposition == GF_AMQP_DEAD_LETTER;
    int rc = AMQP_STATUS_OK;
    if (dead == 0) {
        rc = amqp_basic_ack(conn->state, CHANNEL, c->d[n - 1].tag, 1);
    } else {
        for (int i = 0; i < n && rc == AMQP_STATUS_OK; i++) {
            if (c->d[i].disposition == GF_AMQP_DEAD_LETTER)
                rc = amqp_basic_reject(conn->state, CHANNEL, c->d[i].tag, 0);
            else
                rc = amqp_basic_ack(conn->state, CHANNEL, c->d[i].tag, 0);
        }
    }
    if (rc != AMQP_STATUS_OK) {
        GF_LOG_RL(GF_LOG_WARN, 5000, "amqp ack failed name=%s reason='%s'", conn->name,
                  amqp_error_string2(rc));
        conn->broken = true;
        return GF_EUNAVAILABLE;
    }
    gf_counter_add(c->acked, (uint64_t)(n - dead));
    gf_counter_add(c->dead, (uint64_t)dead);
    return GF_OK;
}

/* Consumes on one connection until it breaks, the handler fails, or stop. The back-off is
 * reset only once a batch was handled: a handler that keeps failing (its database is down)
 * makes the reconnections slow down too. */
static enum gf_status serve(struct gf_amqp_consumer *c, struct gf_amqp_conn *conn,
                            struct gf_backoff *bo)
{
    const struct gf_amqp_consumer_options *o = &c->opt;
    amqp_basic_qos(conn->state, CHANNEL, 0, (uint16_t)o->prefetch, 0);
    if (gf_amqp_check_reply(conn, "basic.qos") != GF_OK)
        return GF_EUNAVAILABLE;
    amqp_basic_consume(conn->state, CHANNEL, amqp_cstring_bytes(o->queue->name), amqp_empty_bytes,
                       0, 0, 0, amqp_empty_table);
    if (gf_amqp_check_reply(conn, "basic.consume") != GF_OK)
        return GF_EUNAVAILABLE;
    atomic_store(&c->ready, true);
    GF_INFO("amqp consuming name=%s queue=%s prefetch=%d", conn->name, o->queue->name, o->prefetch);
    while (!c->stop) {
        int n = 0, got = next_delivery(c, conn, 0, IDLE_WAIT_MS);
        if (got < 0)
            return GF_EUNAVAILABLE;
        if (got == 0)
            continue;
        n = 1;
        struct gf_deadline until = gf_deadline_in_ms(o->batch_wait_ms);
        while (n < o->batch_max) {
            got = next_delivery(c, conn, n, (int)gf_deadline_left_ms(until));
            if (got != 1)
                break;
            n++;
        }
        if (conn->broken) {
            free_batch(c, n); /* unsettled: the broker redelivers them */
            return GF_EUNAVAILABLE;
        }
        enum gf_status st = GF_OK;
        for (int i = 0; i < n && st == GF_OK; i++) {
            if (!to_delivery(c, i))
                st = GF_ENOMEM;
            else if (c->d[i].redelivered)
                gf_counter_add(c->redelivered, 1);
        }
        gf_counter_add(c->delivered, (uint64_t)n);
        if (st == GF_OK)
            st = o->handle(o->arg, c->d, n);
        if (st == GF_OK)
            st = settle(c, conn, n);
        else
            gf_counter_add(c->handler_failed, 1);
        if (st == GF_OK)
            gf_backoff_reset(bo);
        free_batch(c, n);
        if (st != GF_OK)
            return st;
    }
    return GF_OK;
}

static void *run(void *arg)
{
    struct gf_amqp_consumer *c = arg;
    struct gf_backoff bo;
    gf_backoff_init(&bo, 100, 5000);
    while (!c->stop) {
        enum gf_status st;
        struct gf_amqp_conn *conn = gf_amqp_connect(&c->opt.conn, &st);
        if (conn != NULL && gf_amqp_declare_queue(conn, c->opt.queue) == GF_OK) {
            gf_counter_add(c->reconnects, 1);
            st = serve(c, conn, &bo);
            if (st == GF_OK || c->stop) {
                atomic_store(&c->ready, false);
                gf_amqp_close(conn);
                break;
            }
            /* A handler failure (its database, say) also drops the connection: the broker
             * redelivers what was not settled once we are back. */
            if (!conn->broken)
                GF_LOG_RL(GF_LOG_WARN, 5000, "amqp consumer backing off name=%s queue=%s reason=%s",
                          conn->name, c->opt.queue->name, gf_status_str(st));
        }
        atomic_store(&c->ready, false);
        gf_amqp_close(conn);
        gf_sleep_ms(gf_backoff_next(&bo), &c->stop);
    }
    return NULL;
}

struct gf_amqp_consumer *gf_amqp_consumer_start(const struct gf_amqp_consumer_options *opt)
{
    struct gf_amqp_consumer *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->opt = *opt;
    if (c->opt.prefetch <= 0)
        c->opt.prefetch = 100;
    if (c->opt.prefetch > 65535)
        c->opt.prefetch = 65535;
    if (c->opt.batch_max <= 0 || c->opt.batch_max > c->opt.prefetch)
        c->opt.batch_max = c->opt.prefetch;
    if (c->opt.batch_wait_ms < 0)
        c->opt.batch_wait_ms = 0;
    size_t n = (size_t)c->opt.batch_max;
    c->env = calloc(n, sizeof *c->env);
    c->d = calloc(n, sizeof *c->d);
    c->strs = calloc(n, sizeof *c->strs);
    atomic_init(&c->ready, false);
    if (c->env == NULL || c->d == NULL || c->strs == NULL)
        goto fail;
    register_metrics(c);
    if (pthread_create(&c->thread, NULL, run, c) != 0)
        goto fail;
    return c;
fail:
    free(c->env);
    free(c->d);
    free(c->strs);
    free(c);
    return NULL;
}

void gf_amqp_consumer_stop(struct gf_amqp_consumer *c)
{
    if (c == NULL)
        return;
    c->stop = true;
    pthread_join(c->thread, NULL);
    free(c->env);
    free(c->d);
    free(c->strs);
    free(c);
}

bool gf_amqp_consumer_ready(const struct gf_amqp_consumer *c)
{
    return c != NULL && atomic_load(&c->ready);
}
