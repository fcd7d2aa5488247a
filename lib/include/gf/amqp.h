/* RabbitMQ (AMQP 0-9-1) on rabbitmq-c: connections with timeouts and heartbeats, durable
 * topology, publishing with publisher confirms, and a consumer thread that reconnects with
 * back-off and acks only what its handler committed. A connection belongs to one thread. */
#ifndef GF_AMQP_H
#define GF_AMQP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gf/status.h"

/* The event topology of SPEC §4: one durable topic exchange; routing key = event name. Only
 * durable subscribers (eventlog) bind to it, so that a mandatory publish to it is returned when
 * no durable queue takes the event. The services that only watch events (gf/events.h) bind to
 * the watchers' exchange instead, which the relay feeds with a best-effort copy of each event
 * (same routing key and properties): were they bound to topic_exchange, every event would be
 * routable and a missing durable queue would lose events unnoticed. */
#define GF_EVENTS_EXCHANGE "topic_exchange"
#define GF_EVENTS_WATCH_EXCHANGE "topic_exchange.watchers"
#define GF_EVENT_BUY_ITEM "BuyItemEvent"
#define GF_EVENT_ADMIN_ACTION "AdminActionEvent"     /* the audit of an operator's change */
#define GF_EVENT_AUCTION_OUTBID "AuctionOutbidEvent" /* the auction saga's (issue 16) */
#define GF_EVENT_AUCTION_SETTLED "AuctionSettledEvent"
#define GF_EVENT_AUCTION_CANCELLED "AuctionCancelledEvent"
#define GF_EVENTS_CONTENT_TYPE "application/x-protobuf"

struct gf_amqp_options {
    const char *url;      /* amqp://user@host:port/vhost, or amqps:// for TLS (port 5671 by
                             default); the password may be in it or below */
    const char *password; /* when non-empty, replaces the URL's password */
    const char *ca_file;  /* amqps: PEM file of the CA the broker's certificate must chain to;
                             the certificate must also name the URL's host (required) */
    const char *name;     /* connection_name shown by `rabbitmqctl list_connections` */
    int heartbeat_s;      /* negotiated heartbeat; 0 = none */
    int timeout_ms;       /* connect, and every synchronous call */
};

/* A durable queue bound to `exchange` with routing_keys. When dead_letter_queue is set, it
 * is declared too, and messages the consumer rejects are routed to it (through the default
 * exchange). max_length > 0 bounds the queue (oldest dropped first), for queues whose
 * messages nobody must keep. Every declarer of a queue must pass the same arguments (the
 * broker refuses a redeclaration that differs), so each queue is described once, in code. */
struct gf_amqp_queue {
    const char *name;
    const char *exchange;
    const char *const *routing_keys;
    int nkeys;
    const char *dead_letter_queue;
    int64_t max_length;
    bool transient;     /* not durable: gone with a broker restart (declared again on reconnect) and
                           its messages never written to disk; for watchers that only log */
    int64_t expires_ms; /* > 0: the broker deletes the queue once it has had no consumer for
                           this long (x-expires): for a queue of one process, named after it */
    const char *unbind_exchange; /* when set, the routing keys are also unbound from this
                                    exchange (declared first): bindings an earlier version made */
};

/* The queue of the eventlog service: every event, kept until eventlog stored it. Declared by
 * eventlog and also by the backend's relay before it publishes, so that no event published
 * before eventlog ever started is lost (see ARCHITECTURE.md). */
extern const struct gf_amqp_queue gf_events_eventlog_queue;

struct gf_amqp_conn;

/* Checks a service's broker settings together (for its configuration check): with amqps://
 * the CA file <prefix>_AMQP_CA is required, and without it a CA file makes no sense. Logs each
 * problem once; GF_EINVAL when there is one. */
enum gf_status gf_amqp_config_check(const char *prefix, const char *url,
                                    const char *ca_file) GF_MUSTCHECK;

/* Connects (over TLS for amqps://, verifying the broker's certificate chain and host name),
 * logs in and opens channel 1. NULL on failure (*st says why: GF_EINVAL for a bad URL or an
 * amqps:// URL without a CA file, GF_EUNAVAILABLE when the broker cannot be reached, its
 * certificate did not verify or it refused the login). */
struct gf_amqp_conn *gf_amqp_connect(const struct gf_amqp_options *opt, enum gf_status *st);
/* Closes (politely when the connection still works) and frees. NULL is a no-op. */
void gf_amqp_close(struct gf_amqp_conn *c);
/* False once the connection broke; it must then be closed and a new one made. */
bool gf_amqp_ok(const struct gf_amqp_conn *c);

/* Declares a durable topic exchange. */
enum gf_status gf_amqp_declare_exchange(struct gf_amqp_conn *c, const char *name) GF_MUSTCHECK;
/* Declares q's exchange, q (with its dead-letter queue) and its bindings. */
enum gf_status gf_amqp_declare_queue(struct gf_amqp_conn *c,
                                     const struct gf_amqp_queue *q) GF_MUSTCHECK;

/* ---- publishing with confirms ------------------------------------------------------------ */
enum gf_amqp_outcome {
    GF_AMQP_UNCONFIRMED = 0, /* no answer yet (or the connection broke first) */
    GF_AMQP_CONFIRMED,       /* routed to at least one queue and persisted */
    GF_AMQP_RETURNED,        /* unroutable: no queue is bound for its routing key */
    GF_AMQP_NACKED,          /* the broker refused it */
};

struct gf_amqp_message {
    const char *exchange;
    const char *routing_key;
    const void *body;
    size_t len;
    const char *content_type;
    const char *type;             /* the event name */
    const char *message_id;       /* required, unique within one gf_amqp_publish call */
    const char *correlation_id;   /* may be NULL */
    int64_t occurred_at_us;       /* timestamp (seconds) and header x-occurred-at-us; 0 = none */
    bool best_effort;             /* not mandatory: routed to no queue it is simply dropped (and
                                     still CONFIRMED); never matched to a basic.return */
    enum gf_amqp_outcome outcome; /* out */
};

/* Puts the channel in confirm mode (once per connection, before publishing). */
enum gf_status gf_amqp_confirm_select(struct gf_amqp_conn *c) GF_MUSTCHECK;

/* Publishes the n messages (persistent; mandatory unless best_effort) and waits up to timeout_ms
 * for the broker's confirms. Each message's outcome tells what became of it; only CONFIRMED
 * messages are safe. GF_OK when every message got an answer; GF_ETIMEOUT when some did not
 * in time (the connection is then unusable: close it); GF_EUNAVAILABLE when it broke;
 * GF_EINVAL (nothing sent) without confirm mode or when a message has no message_id. */
enum gf_status gf_amqp_publish(struct gf_amqp_conn *c, struct gf_amqp_message *m, int n,
                               int timeout_ms) GF_MUSTCHECK;

/* Serves the connection while idle (heartbeats, a close from the broker) for up to wait_ms.
 * GF_OK while the connection works, GF_EUNAVAILABLE once it broke. */
enum gf_status gf_amqp_pump(struct gf_amqp_conn *c, int wait_ms) GF_MUSTCHECK;

/* ---- consuming --------------------------------------------------------------------------- */
enum gf_amqp_disposition {
    GF_AMQP_ACK = 0,     /* handled (committed): acked */
    GF_AMQP_DEAD_LETTER, /* cannot ever be handled: rejected without requeue → dead-letter queue */
};

/* One delivery. Strings are NUL-terminated ("" when the property is absent) and live until
 * the handler returns. */
struct gf_amqp_delivery {
    uint64_t tag;
    bool redelivered;
    const char *routing_key;
    const char *content_type;
    const char *type;
    const char *message_id;
    const char *correlation_id;
    int64_t timestamp_s;    /* 0 when absent */
    int64_t occurred_at_us; /* header x-occurred-at-us; 0 when absent */
    const void *body;
    size_t len;
    enum gf_amqp_disposition disposition; /* set by the handler; ACK by default */
};

/* Handles a batch of deliveries (in delivery order) and sets each one's disposition. GF_OK:
 * the consumer acks/rejects them as told. Any other status: nothing is acked; the consumer
 * disconnects (the broker redelivers the batch), backs off and reconnects. Handlers must
 * therefore be idempotent. Runs on the consumer's thread. */
typedef enum gf_status (*gf_amqp_batch_fn)(void *arg, struct gf_amqp_delivery *d, int n);

struct gf_amqp_consumer_options {
    struct gf_amqp_options conn;
    const struct gf_amqp_queue *queue;
    int prefetch;      /* unacked deliveries the broker may send ahead (basic.qos) */
    int batch_max;     /* deliveries handed to the handler at most at once (<= prefetch) */
    int batch_wait_ms; /* how long a batch waits for more deliveries once one arrived */
    gf_amqp_batch_fn handle;
    void *arg;
    const char *metrics_prefix; /* e.g. "eventlog_consumer": counters of deliveries */
};

struct gf_amqp_consumer;

/* Starts the consumer's thread; it connects (retrying with jittered back-off), declares the
 * queue and consumes until stopped. opt is copied, but the strings and the queue it points
 * to must outlive the consumer (they are read again at each reconnection). NULL only on a
 * resource failure. */
struct gf_amqp_consumer *gf_amqp_consumer_start(const struct gf_amqp_consumer_options *opt);
/* Stops: the batch in hand is finished first, then the connection is closed. NULL no-op. */
void gf_amqp_consumer_stop(struct gf_amqp_consumer *c);
/* True while connected and consuming (for /readyz). */
bool gf_amqp_consumer_ready(const struct gf_amqp_consumer *c);

#endif
