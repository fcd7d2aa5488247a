/* The events of SPEC §4 as the services that only watch them see them: each such service
 * has its own durable queue and logs every event it receives, with its correlation id. */
#ifndef GF_EVENTS_H
#define GF_EVENTS_H

#include "gf/amqp.h"

/* Starts a consumer on the queue "<svc>.events.log" (bound to every event) that logs one line per
 * event. Several replicas of svc share the queue: each event is logged once per service. The
 * queue only feeds log lines, so it costs the broker little: transient (never written to disk;
 * it is declared again after a broker restart) and bounded to the newest 10,000 messages (a
 * stopped service cannot fill the broker). The event log (eventlog) is the durable record.
 * NULL on a resource failure; stop with gf_amqp_consumer_stop. */
struct gf_amqp_consumer *gf_events_log_start(const char *svc, const struct gf_amqp_options *conn);

#endif
