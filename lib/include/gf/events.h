/* The events of SPEC §4 as the services that only watch them see them: each such service
 * has its own queue and logs every event it receives, with its correlation id. The queue is
 * bound to the watchers' exchange (GF_EVENTS_WATCH_EXCHANGE), which the relay feeds with a
 * best-effort copy of every event, never to topic_exchange, where only durable subscribers
 * bind (so that an event no durable queue takes is returned to the relay and kept). */
#ifndef GF_EVENTS_H
#define GF_EVENTS_H

#include "gf/amqp.h"

/* Starts a consumer on the queue "<svc>.events.log" (bound to every event of the watchers'
 * exchange; its binding to topic_exchange from earlier versions is removed) that logs one line per
 * event. Several replicas of svc share the queue: each event is logged once per service. The
 * queue only feeds log lines, so it costs the broker little: transient (never written to disk;
 * it is declared again after a broker restart) and bounded to the newest 10,000 messages (a
 * stopped service cannot fill the broker). The event log (eventlog) is the durable record.
 * NULL on a resource failure; stop with gf_amqp_consumer_stop. */
struct gf_amqp_consumer *gf_events_log_start(const char *svc, const struct gf_amqp_options *conn);

#endif
